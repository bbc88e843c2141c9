// SPDX-License-Identifier: MIT
// tests/both_asios_test.cpp: ucm/asio.hpp and ucm/boost_asio.hpp in one translation unit (one
// implementation, ucm/detail/asio_*.hpp, instantiated for each Asio): a Task that
// awaits both Asios' operations in turn, each on its own multi-threaded io_context, keeps its
// context, and each Asio's binders, errors and executors are its own.
#include "ucm/asio.hpp"
#include "ucm/boost_asio.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "test_support.hpp"
#include "ucm/task.hpp"
#include "ucm/ucm.hpp"

using namespace std::chrono_literals;

namespace {

ucm::ContextVariable<int> request_id;

int seen_id() { return request_id.value_or(-1); }

bool slots_empty() {
  return ucm::ContextFrame::current() == ucm::ContextFrame{} &&
         ucm::ContextFrame::inherited() == ucm::ContextFrame{};
}

/// An io_context of either Asio run by `threads` threads, which expect, in `failures`, to be
/// left with empty slots.
template <class IoContext>
class Threads {
 public:
  Threads(IoContext& io, int threads, ucm_test::Failures& failures) : io_(io) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, &failures] {
        io_.run();
        EXPECT(failures, slots_empty());
      });
    }
  }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;
  ~Threads() {
    for (auto& t : threads_) t.join();
  }

 private:
  IoContext& io_;
  std::vector<std::thread> threads_;
};

// Each Asio gets its own token types and awaitables, and its own error types.
using StandaloneWait =
    decltype(std::declval<asio::steady_timer&>().async_wait(ucm::asio::use_task));
using BoostWait =
    decltype(std::declval<boost::asio::steady_timer&>().async_wait(ucm::boost_asio::use_task));
static_assert(!std::is_same_v<ucm::asio::use_task_t, ucm::boost_asio::use_task_t>);
static_assert(!std::is_same_v<StandaloneWait, BoostWait>);
static_assert(!std::is_same_v<ucm::asio::ContextExecutor<asio::io_context::executor_type>,
                              ucm::boost_asio::ContextExecutor<asio::io_context::executor_type>>);

}  // namespace

TEST_CASE("a Task awaits standalone Asio and Boost.Asio operations in turn in its own context",
          "[asio][boost][use_task][threads]") {
  asio::io_context standalone;
  boost::asio::io_context boosted;
  auto standalone_work = asio::make_work_guard(standalone);
  auto boost_work = boost::asio::make_work_guard(boosted);
  ucm_test::Failures failures;
  {
    Threads standalone_threads(standalone, 2, failures);
    Threads boost_threads(boosted, 2, failures);
    auto one = [&](int id) -> ucm::Task<> {
      ucm::ContextVariableScope scope(request_id, id);
      asio::steady_timer a(standalone, 1ms);
      boost::asio::steady_timer b(boosted, 1ms);
      for (int step = 0; step < 20; ++step) {
        co_await asio::post(standalone, ucm::asio::use_task);
        EXPECT(failures, seen_id() == id);
        co_await boost::asio::post(boosted, ucm::boost_asio::use_task);
        EXPECT(failures, seen_id() == id);
        if (step % 5 == 0) {
          a.expires_after(1ms);
          co_await a.async_wait(ucm::asio::use_task);
          EXPECT(failures, seen_id() == id);
          b.expires_after(1ms);
          co_await b.async_wait(ucm::boost_asio::use_task);
          EXPECT(failures, seen_id() == id);
        }
      }
    };
    std::vector<ucm::Task<>> tasks;
    for (int id = 0; id < 16; ++id) tasks.push_back(one(id));
    request_id.run(-7, [&] { ucm::sync_wait(ucm::when_all(std::move(tasks))); });
    standalone_work.reset();
    boost_work.reset();
    CHECK(slots_empty());
    // Joined here.
  }
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("each Asio's binders and executors keep the context in one program",
          "[asio][boost][propagate][executor]") {
  asio::io_context standalone;
  boost::asio::io_context boosted;
  auto standalone_strand = asio::make_strand(standalone);
  auto boost_strand = boost::asio::make_strand(boosted);
  std::error_code standalone_error;
  boost::system::error_code boost_error;
  int standalone_seen = 0;
  int boost_seen = 0;
  bool standalone_on_strand = false;
  bool boost_on_strand = false;
  int posted_standalone = 0;
  int posted_boost = 0;
  asio::steady_timer a(standalone, 30s);
  boost::asio::steady_timer b(boosted, 30s);
  request_id.run(1, [&] {
    a.async_wait(
        ucm::asio::propagate(asio::bind_executor(standalone_strand, [&](std::error_code ec) {
          standalone_error = ec;
          standalone_seen = seen_id();
          standalone_on_strand = standalone_strand.running_in_this_thread();
        })));
    asio::post(ucm::asio::ContextExecutor(standalone.get_executor()),
               [&] { posted_standalone = seen_id(); });
  });
  request_id.run(2, [&] {
    b.async_wait(ucm::boost_asio::propagate(
        boost::asio::bind_executor(boost_strand, [&](boost::system::error_code ec) {
          boost_error = ec;
          boost_seen = seen_id();
          boost_on_strand = boost_strand.running_in_this_thread();
        })));
    boost::asio::post(ucm::boost_asio::ContextExecutor(boosted.get_executor()),
                      [&] { posted_boost = seen_id(); });
  });
  // ContextFrame::bind forwards each Asio's associators.
  const auto bound_standalone =
      ucm::ContextFrame::bind(asio::bind_executor(standalone_strand, [] {}));
  const auto bound_boost = ucm::ContextFrame::bind(boost::asio::bind_executor(boost_strand, [] {}));
  CHECK(asio::get_associated_executor(bound_standalone) == standalone_strand);
  CHECK(boost::asio::get_associated_executor(bound_boost) == boost_strand);
  a.cancel();
  b.cancel();
  standalone.run();
  boosted.run();
  CHECK(standalone_error == asio::error::operation_aborted);
  CHECK(boost_error == boost::asio::error::operation_aborted);
  CHECK(standalone_seen == 1);
  CHECK(boost_seen == 2);
  CHECK(standalone_on_strand);
  CHECK(boost_on_strand);
  CHECK(posted_standalone == 1);
  CHECK(posted_boost == 2);
}

TEST_CASE("use_task throws each Asio's own system_error in one program",
          "[asio][boost][use_task]") {
  asio::io_context standalone;
  boost::asio::io_context boosted;
  std::error_code standalone_error;
  boost::system::error_code boost_error;
  int id_in_catch = 0;
  ucm_test::Failures failures;
  auto task = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 5);
    asio::ip::tcp::acceptor closed(standalone);  // never opened: accepting fails
    try {
      co_await closed.async_accept(ucm::asio::use_task);
    } catch (const std::system_error& e) {
      standalone_error = e.code();
    }
    boost::asio::ip::tcp::acceptor boost_closed(boosted);
    try {
      co_await boost_closed.async_accept(ucm::boost_asio::use_task);
    } catch (const boost::system::system_error& e) {
      boost_error = e.code();
      id_in_catch = seen_id();
    }
  };
  {
    auto standalone_work = asio::make_work_guard(standalone);
    auto boost_work = boost::asio::make_work_guard(boosted);
    Threads standalone_threads(standalone, 1, failures);
    Threads boost_threads(boosted, 1, failures);
    ucm::sync_wait(task());
    standalone_work.reset();
    boost_work.reset();
  }
  CHECK(standalone_error == asio::error::bad_descriptor);
  CHECK(boost_error == boost::asio::error::bad_descriptor);
  CHECK(id_in_catch == 5);
  CHECK_NO_FAILURES(failures);
}
