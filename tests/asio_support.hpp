// SPDX-License-Identifier: MIT
// tests/asio_support.hpp: what the Asio tests share (asio_propagate_test.cpp,
// asio_context_executor_test.cpp, asio_use_task_test.cpp), on real multi-threaded io_contexts
// with timers and loopback TCP sockets.
//
// One set of sources for both Asios: built as asio_test against standalone Asio, and as
// boost_asio_test with UCM_TEST_BOOST_ASIO against Boost.Asio. Only the include, the namespaces
// (`net` for the Asio, `ucmnet` for ucm's integration of it) and the error types differ.
//
// Catch2 v2 assertions are not thread-safe: handlers running on I/O threads only record what
// they saw (ucm_test::Failures, atomics, or vectors under a mutex) and the main thread checks it
// afterwards.
#pragma once

#if defined(UCM_TEST_BOOST_ASIO)
#include "ucm/boost_asio.hpp"
#else
#include "ucm/asio.hpp"
#endif

#include <catch2/catch.hpp>

#if defined(UCM_TEST_BOOST_ASIO)
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/deferred.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#else
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "test_support.hpp"
#include "ucm/task.hpp"
#include "ucm/ucm.hpp"

#if defined(UCM_TEST_BOOST_ASIO)
namespace net = ::boost::asio;
namespace ucmnet = ::ucm::boost_asio;
using error_code = ::boost::system::error_code;
using system_error = ::boost::system::system_error;
#else
namespace net = ::asio;
namespace ucmnet = ::ucm::asio;
using error_code = std::error_code;
using system_error = std::system_error;
#endif

using namespace std::chrono_literals;
using tcp = net::ip::tcp;
using ucm::ContextFrame;
using ucm::ContextVariable;
using ucmnet::ContextExecutor;
using ucmnet::propagate;

namespace asio_test {

inline ContextVariable<int> request_id;
inline ContextVariable<std::string> user;

/// The request id this thread sees right now, or -1.
inline int seen_id() { return request_id.value_or(-1); }

/// Whether this thread's three slots are empty.
inline bool slots_empty() {
  return ContextFrame::current() == ContextFrame{} && ContextFrame::inherited() == ContextFrame{} &&
         request_id.get() == nullptr && user.get() == nullptr;
}

/// An io_context run by several threads. When a thread's run() returns, it expects its slots to
/// be left empty (nothing leaked into the I/O thread), in `failures`.
class IoThreads {
 public:
  explicit IoThreads(int threads) : work_(net::make_work_guard(io)) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        io.run();
        EXPECT(failures, slots_empty());
      });
    }
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  ~IoThreads() {
    if (!joined_) {
      io.stop();
      join();
    }
  }

  /// Lets run() return once all outstanding work is done, and joins the threads.
  void finish() {
    work_.reset();
    join();
  }

  [[nodiscard]] bool on_io_thread() const {
    for (const auto& t : threads_) {
      if (t.get_id() == std::this_thread::get_id()) return true;
    }
    return false;
  }

  net::io_context io;
  ucm_test::Failures failures;  // checked on the I/O threads as they end

 private:
  void join() {
    for (auto& t : threads_) t.join();
    joined_ = true;
  }

  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  bool joined_ = false;
};

/// What handlers on I/O threads saw, checked on the main thread afterwards: how many ran, and
/// the expectations they checked (their own request id, running on an I/O thread, no value
/// seen without a context).
struct Seen {
  std::atomic<int> ran{0};
  ucm_test::Failures failures;

  /// Counts a handler that ran and expects it saw request id `expected`; `line` (the caller's)
  /// names it in the report.
  void check(int expected, int actual, int line = __builtin_LINE()) {
    ++ran;
    if (expected != actual) {
      failures.check(false,
                     "request id " + std::to_string(expected) + ", saw " + std::to_string(actual),
                     line);
    }
  }
};

/// A connected pair of loopback TCP sockets on an OS-chosen port.
struct SocketPair {
  tcp::socket client;
  tcp::socket server;

  explicit SocketPair(net::io_context& io) : client(io), server(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

}  // namespace asio_test

using namespace asio_test;  // NOLINT(google-global-names-in-headers): the tests' vocabulary
