// SPDX-License-Identifier: MIT
// Tests of ucm/asio.hpp and ucm/boost_asio.hpp on real multi-threaded io_contexts, with timers
// and loopback TCP sockets: propagate(token) with callbacks, use_awaitable, deferred, strands,
// associators and cancellation; ContextExecutor; use_task with ucm::Task.
//
// One source for both Asios: built as asio_test against standalone Asio, and as
// boost_asio_test with UCM_TEST_BOOST_ASIO against Boost.Asio. Only the include, the namespaces
// (`net` for the Asio, `ucmnet` for ucm's integration of it) and the error types differ.
//
// Catch2 v2 assertions are not thread-safe: handlers running on I/O threads only record what
// they saw (atomics, or vectors under a mutex) and the main thread checks it afterwards.
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

namespace {

ContextVariable<int> request_id;
ContextVariable<std::string> user;

/// The request id this thread sees right now, or -1.
int seen_id() { return request_id.value_or(-1); }

/// Whether this thread's three slots are empty.
bool slots_empty() {
  return ContextFrame::current() == ContextFrame{} && ContextFrame::inherited() == ContextFrame{} &&
         request_id.get() == nullptr && user.get() == nullptr;
}

/// An io_context run by several threads. When a thread's run() returns, it records whether its
/// slots were left empty (nothing leaked into the I/O thread).
class IoThreads {
 public:
  explicit IoThreads(int threads) : work_(net::make_work_guard(io)) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        io.run();
        if (!slots_empty()) ++dirty_threads;
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
  std::atomic<int> dirty_threads{0};

 private:
  void join() {
    for (auto& t : threads_) t.join();
    joined_ = true;
  }

  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  bool joined_ = false;
};

/// What handlers on I/O threads saw, checked on the main thread afterwards.
struct Seen {
  std::atomic<int> ran{0};
  std::atomic<int> wrong{0};      // saw a request id other than their own
  std::atomic<int> on_caller{0};  // ran on the main thread (must not happen for I/O)
  std::atomic<int> leaked{0};     // a handler without context saw a value

  void check(int expected, int actual) {
    ++ran;
    if (expected != actual) ++wrong;
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

}  // namespace

// =============================================================================================
// propagate(token) with callbacks
// =============================================================================================

TEST_CASE("a callback completion sees the context captured at initiation, not the I/O thread's",
          "[asio][propagate][threads]") {
  IoThreads threads(4);
  Seen seen;
  constexpr int operations = 200;
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (int i = 0; i < operations; ++i) {
    timers.push_back(std::make_unique<net::steady_timer>(threads.io, (i % 7) * 1ms));
    request_id.run(i, [&] {
      timers.back()->async_wait(propagate([&seen, &threads, i](error_code ec) {
        seen.check(i, ec ? -2 : seen_id());
        if (!threads.on_io_thread()) ++seen.on_caller;
        request_id.enter(-1);  // must not leak into the next handler on this thread
      }));
    });
    // Posted without context: whatever thread runs it must show nothing.
    net::post(threads.io, [&seen] {
      if (!slots_empty()) ++seen.leaked;
    });
  }
  CHECK(slots_empty());  // initiating changed nothing here
  threads.finish();
  CHECK(seen.ran == operations);
  CHECK(seen.wrong == 0);
  CHECK(seen.on_caller == 0);
  CHECK(seen.leaked == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE("a completion through propagate sees inherited and active values as a continuation",
          "[asio][propagate]") {
  IoThreads threads(2);
  net::steady_timer timer(threads.io, 1ms);
  std::mutex mutex;
  bool nothing_active = false;
  int inherited = 0;
  std::string who;
  ucm::with(request_id, 7).with(user, std::string("alice")).run([&] {
    timer.async_wait(propagate([&](error_code) {
      std::lock_guard lock(mutex);
      nothing_active = request_id.get_active() == nullptr;
      inherited = request_id.get_inherited() ? *request_id.get_inherited() : -1;
      who = user.value_or("");
    }));
  });
  threads.finish();
  CHECK(nothing_active);  // a continuation starts from the captured frame: nothing active yet
  CHECK(inherited == 7);
  CHECK(who == "alice");
}

TEST_CASE("loopback TCP reads and writes complete in the context of their initiation",
          "[asio][propagate][tcp]") {
  IoThreads threads(4);
  Seen seen;
  constexpr int connections = 24;
  tcp::acceptor acceptor(threads.io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  const tcp::endpoint endpoint = acceptor.local_endpoint();

  struct Connection {
    explicit Connection(net::io_context& io) : client(io), server(io) {}
    tcp::socket client;
    tcp::socket server;
    std::array<char, 4> client_buffer{};
    std::array<char, 4> server_buffer{};
  };
  std::vector<std::unique_ptr<Connection>> all;
  for (int i = 0; i < connections; ++i) all.push_back(std::make_unique<Connection>(threads.io));

  // Each connection is request i end to end: the server echoes 4 bytes, the client checks them.
  // Every handler initiates the next step from inside its own window, so the context carries on.
  for (int i = 0; i < connections; ++i) {
    Connection& c = *all[static_cast<std::size_t>(i)];
    request_id.run(i, [&, i] {
      c.client.async_connect(
          endpoint, propagate([&, i](error_code ec) {
            seen.check(i, ec ? -2 : seen_id());
            const std::string text = std::to_string(1000 + i);
            std::copy(text.begin(), text.end(), c.client_buffer.begin());
            net::async_write(c.client, net::buffer(c.client_buffer),
                             propagate([&, i](error_code ec2, std::size_t) {
                               seen.check(i, ec2 ? -2 : seen_id());
                               net::async_read(c.client, net::buffer(c.client_buffer),
                                               propagate([&, i](error_code ec3, std::size_t) {
                                                 const bool echoed =
                                                     std::string(c.client_buffer.data(), 4) ==
                                                     std::to_string(1000 + i);
                                                 seen.check(i, ec3 || !echoed ? -2 : seen_id());
                                               }));
                             }));
          }));
    });
  }
  // The server side: one accept at a time; each accepted socket becomes request 100 + n.
  int accepted = 0;
  std::function<void()> accept_next = [&] {
    if (accepted == connections) return;
    Connection& c = *all[static_cast<std::size_t>(accepted)];
    const int id = 100 + accepted++;
    request_id.run(id, [&, id] {
      acceptor.async_accept(c.server, propagate([&, id](error_code ec) {
                              seen.check(id, ec ? -2 : seen_id());
                              net::async_read(c.server, net::buffer(c.server_buffer),
                                              propagate([&, id](error_code ec2, std::size_t) {
                                                seen.check(id, ec2 ? -2 : seen_id());
                                                net::async_write(
                                                    c.server, net::buffer(c.server_buffer),
                                                    propagate([&, id](error_code ec3, std::size_t) {
                                                      seen.check(id, ec3 ? -2 : seen_id());
                                                    }));
                                              }));
                              // Accept the next connection outside this request's context.
                              ContextFrame{}.inherit(accept_next);
                            }));
    });
  };
  accept_next();
  threads.finish();
  CHECK(seen.ran == connections * 3 + connections * 3);
  CHECK(seen.wrong == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE("one propagate token serves many operations, each capturing its own context",
          "[asio][propagate]") {
  IoThreads threads(3);
  std::mutex mutex;
  std::vector<int> ids;
  const auto token = propagate([&](error_code) {
    std::lock_guard lock(mutex);
    ids.push_back(seen_id());
  });
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  for (int i = 0; i < 50; ++i) {
    timers.push_back(std::make_unique<net::steady_timer>(threads.io, 1ms));
    request_id.run(i, [&] { timers.back()->async_wait(token); });  // an lvalue: copied
  }
  threads.finish();
  std::sort(ids.begin(), ids.end());
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(ids == expected);
}

TEST_CASE("an operation initiated with no context completes with none", "[asio][propagate]") {
  IoThreads threads(2);
  std::atomic<int> dirty{0};
  std::atomic<int> ran{0};
  net::steady_timer timer(threads.io, 1ms);
  ContextFrame{}.inherit([&] {
    timer.async_wait(propagate([&](error_code) {
      dirty += !slots_empty();
      ++ran;
    }));
  });
  threads.finish();
  CHECK(ran == 1);
  CHECK(dirty == 0);
}

// =============================================================================================
// propagate(token) with Asio's binders, associators and cancellation
// =============================================================================================

namespace {

/// Starts 100 timer waits on 4 I/O threads, each under its own request id `i`: `wait(i, timer,
/// strand, handler)` starts one with `handler` (callable with an error code) bound to `strand`
/// its own way. Checks that every handler ran on the strand, in its own request's context.
template <class Wait>
void check_handlers_run_on_the_strand(Wait wait) {
  IoThreads threads(4);
  auto strand = net::make_strand(threads.io);
  Seen seen;
  std::atomic<int> off_strand{0};
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  int inside_strand = 0;  // touched only on the strand: a data race here would show under TSan
  for (int i = 0; i < 100; ++i) {
    timers.push_back(std::make_unique<net::steady_timer>(threads.io, (i % 3) * 1ms));
    auto handler = [&, i](error_code) {
      seen.check(i, seen_id());
      if (!strand.running_in_this_thread()) ++off_strand;
      ++inside_strand;
    };
    request_id.run(i, [&] { wait(i, *timers.back(), strand, handler); });
  }
  threads.finish();
  CHECK(seen.ran == 100);
  CHECK(seen.wrong == 0);
  CHECK(off_strand == 0);
  CHECK(inside_strand == 100);
}

}  // namespace

TEST_CASE("propagate composes with bind_executor in both orders: the handler runs on the strand",
          "[asio][propagate][strand]") {
  check_handlers_run_on_the_strand([](int i, auto& timer, auto& strand, auto& handler) {
    if (i % 2 == 0) {
      timer.async_wait(propagate(net::bind_executor(strand, handler)));
    } else {
      timer.async_wait(net::bind_executor(strand, propagate(handler)));
    }
  });
}

TEST_CASE("ContextFrame::bind keeps the wrapped handler's executor: the handler runs on the strand",
          "[asio][bind][strand]") {
  check_handlers_run_on_the_strand([](int i, auto& timer, auto& strand, auto& handler) {
    if (i % 2 == 0) {
      timer.async_wait(ContextFrame::bind(net::bind_executor(strand, handler)));
    } else {  // posted to the io_context, handed on to the strand
      net::post(timer.get_executor(), ContextFrame::bind(net::bind_executor(
                                          strand, [handler]() mutable { handler({}); })));
    }
  });
}

namespace {

/// An allocator with an identity, to see it come out of the wrapped handler.
template <class T>
struct TaggedAllocator {
  using value_type = T;
  int tag = 0;
  TaggedAllocator() = default;
  explicit TaggedAllocator(int t) : tag(t) {}
  template <class U>
  TaggedAllocator(const TaggedAllocator<U>& other) : tag(other.tag) {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  friend bool operator==(const TaggedAllocator& a, const TaggedAllocator<U>& b) {
    return a.tag == b.tag;
  }
};

/// A handler type that names its own executor and allocator through members.
struct HandlerWithAssociations {
  using executor_type = net::strand<net::io_context::executor_type>;
  using allocator_type = TaggedAllocator<void>;
  executor_type executor;
  allocator_type allocator;
  int* calls;
  executor_type get_executor() const noexcept { return executor; }
  allocator_type get_allocator() const noexcept { return allocator; }
  void operator()() const { ++*calls; }
};

/// A custom asynchronous operation that hands its completion handler to `inspect` and then
/// completes it at once: the way to look at the handler a token turns into.
template <class Token, class Inspect>
auto inspect_handler(Token&& token, Inspect inspect) {
  return net::async_initiate<Token, void()>(
      [inspect](auto&& handler) mutable {
        inspect(handler);
        std::move(handler)();
      },
      token);
}

/// Whether `a` and `b` have the same type and are equal (a different type, such as the default
/// executor instead of a strand, is a runtime failure, not a compile error).
template <class A, class B>
bool same_as(const A& a, const B& b) {
  if constexpr (std::is_same_v<A, B>) {
    return a == b;
  } else {
    return false;
  }
}

}  // namespace

TEST_CASE("the wrapped handler keeps its associated executor, allocator and cancellation slot",
          "[asio][propagate][associators]") {
  net::io_context io;
  auto strand = net::make_strand(io);
  net::cancellation_signal signal;
  int calls = 0;
  auto plain = [&calls] { ++calls; };

  SECTION("bound with Asio's binders") {
    bool same_executor = false;
    bool same_allocator = false;
    bool same_slot = false;
    inspect_handler(
        propagate(net::bind_cancellation_slot(
            signal.slot(),
            net::bind_allocator(TaggedAllocator<void>(42), net::bind_executor(strand, plain)))),
        [&](const auto& h) {
          same_executor = net::get_associated_executor(h) == strand;
          same_allocator = net::get_associated_allocator(h) == TaggedAllocator<void>(42);
          same_slot = net::get_associated_cancellation_slot(h) == signal.slot();
        });
    CHECK(same_executor);
    CHECK(same_allocator);
    CHECK(same_slot);
  }
  SECTION("named by the handler's own members") {
    bool same_executor = false;
    bool same_allocator = false;
    inspect_handler(propagate(HandlerWithAssociations{strand, TaggedAllocator<void>(7), &calls}),
                    [&](const auto& h) {
                      same_executor = net::get_associated_executor(h) == strand;
                      same_allocator = net::get_associated_allocator(h) == TaggedAllocator<void>(7);
                    });
    CHECK(same_executor);
    CHECK(same_allocator);
  }
  SECTION("none: the defaults, as for the bare handler") {
    bool default_executor = false;
    bool unconnected_slot = false;
    inspect_handler(propagate(plain), [&](const auto& h) {
      default_executor = net::get_associated_executor(h, io.get_executor()) == io.get_executor();
      unconnected_slot = !net::get_associated_cancellation_slot(h).is_connected();
    });
    CHECK(default_executor);
    CHECK(unconnected_slot);
  }
  CHECK(calls == 1);
}

TEST_CASE("ContextFrame::bind keeps the wrapped handler's allocator and cancellation slot",
          "[asio][bind][associators]") {
  net::io_context io;
  auto strand = net::make_strand(io);
  net::cancellation_signal signal;
  int calls = 0;
  bool same_executor = false;
  bool same_allocator = false;
  bool same_slot = false;
  auto bound = request_id.run(3, [&] {
    return ContextFrame::bind(net::bind_cancellation_slot(
        signal.slot(),
        net::bind_allocator(TaggedAllocator<void>(42),
                            net::bind_executor(strand, [&] { calls += seen_id(); }))));
  });
  inspect_handler(std::move(bound), [&](const auto& h) {
    same_executor = same_as(net::get_associated_executor(h), strand);
    same_allocator = same_as(net::get_associated_allocator(h), TaggedAllocator<void>(42));
    same_slot = same_as(net::get_associated_cancellation_slot(h), signal.slot());
  });
  CHECK(same_executor);
  CHECK(same_allocator);
  CHECK(same_slot);
  CHECK(calls == 3);
}

TEST_CASE("a timer is cancelled through a cancellation slot bound outside or inside propagate",
          "[asio][propagate][cancellation]") {
  IoThreads threads(3);
  // Long enough never to expire in a passing run, short enough that a cancellation that does not
  // work fails the checks below (success instead of operation_aborted) rather than the timeout.
  net::steady_timer outer_timer(threads.io, 30s);
  net::steady_timer inner_timer(threads.io, 30s);
  net::cancellation_signal outer_signal;
  net::cancellation_signal inner_signal;
  std::mutex mutex;
  std::vector<std::pair<error_code, int>> results;
  auto record = [&](error_code ec) {
    std::lock_guard lock(mutex);
    results.emplace_back(ec, seen_id());
  };
  request_id.run(1, [&] {
    outer_timer.async_wait(net::bind_cancellation_slot(outer_signal.slot(), propagate(record)));
  });
  request_id.run(2, [&] {
    inner_timer.async_wait(propagate(net::bind_cancellation_slot(inner_signal.slot(), record)));
  });
  // Emitted from the thread that installed the slots (a signal is not thread-safe).
  outer_signal.emit(net::cancellation_type::terminal);
  inner_signal.emit(net::cancellation_type::terminal);
  threads.finish();  // returns only because both waits were cancelled
  REQUIRE(results.size() == 2);
  std::sort(results.begin(), results.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  CHECK(results[0].first == net::error::operation_aborted);
  CHECK(results[0].second == 1);
  CHECK(results[1].first == net::error::operation_aborted);
  CHECK(results[1].second == 2);
}

namespace {

/// A legacy handler with its own (deprecated) invocation hook, as `io_context::strand::wrap`
/// makes: Asio runs the completion through the hook, which must see it through propagate too.
struct HookedHandler {
  std::atomic<int>* hooked;
  std::atomic<int>* seen;
  void operator()(error_code) const { *seen = seen_id(); }
  template <class Function>
  friend void asio_handler_invoke(Function& function, HookedHandler* self) {
    ++*self->hooked;
    function();
  }
};

}  // namespace

TEST_CASE("propagate keeps a legacy handler's invocation hook", "[asio][propagate][hooks]") {
  net::io_context io;
  std::atomic<int> hooked_bare{0};
  std::atomic<int> hooked_propagated{0};
  std::atomic<int> seen_bare{0};
  std::atomic<int> seen_propagated{0};
  net::steady_timer bare(io, 0ms);
  net::steady_timer propagated(io, 0ms);
  request_id.run(4, [&] {
    bare.async_wait(HookedHandler{&hooked_bare, &seen_bare});
    propagated.async_wait(propagate(HookedHandler{&hooked_propagated, &seen_propagated}));
  });
  io.run();
  CHECK(hooked_bare >= 1);
  CHECK(hooked_propagated == hooked_bare);
  CHECK(seen_bare == -1);
  CHECK(seen_propagated == 4);
}

TEST_CASE("a deferred operation captures the context when it is launched, not when it is made",
          "[asio][propagate][deferred]") {
  IoThreads threads(2);
  net::steady_timer timer(threads.io, 1ms);
  std::atomic<int> seen{0};
  auto operation =
      request_id.run(1, [&] { return timer.async_wait(propagate(net::experimental::deferred)); });
  request_id.run(2, [&] { std::move(operation)([&](error_code) { seen = seen_id(); }); });
  threads.finish();
  CHECK(seen == 2);
}

TEST_CASE("500 concurrent operations on 4 threads each see only their own request id",
          "[asio][propagate][stress]") {
  IoThreads threads(4);
  Seen seen;
  constexpr int requests = 500;
  auto strand = net::make_strand(threads.io);
  std::vector<std::unique_ptr<net::steady_timer>> timers(requests);
  // Requests are started from several threads at once (two producers and the I/O threads
  // themselves), and each runs three steps: a timer, a post and a strand dispatch.
  auto start = [&](int i) {
    request_id.run(i, [&, i] {
      user.run("user-" + std::to_string(i), [&, i] {
        auto& timer = timers[static_cast<std::size_t>(i)];
        timer = std::make_unique<net::steady_timer>(threads.io, (i % 5) * 1ms);
        timer->async_wait(propagate([&, i](error_code) {
          seen.check(i, user.value_or("") == "user-" + std::to_string(i) ? seen_id() : -3);
          net::post(threads.io, propagate([&, i] {
                      seen.check(i, seen_id());
                      net::dispatch(strand, propagate([&, i] { seen.check(i, seen_id()); }));
                    }));
        }));
      });
    });
  };
  std::thread a([&] {
    for (int i = 0; i < requests / 2; i += 2) start(i);
  });
  std::thread b([&] {
    for (int i = 1; i < requests / 2; i += 2) start(i);
  });
  for (int i = requests / 2; i < requests; ++i) {
    net::post(threads.io, [&, i] { start(i); });  // from inside the I/O threads
  }
  a.join();
  b.join();
  threads.finish();
  CHECK(seen.ran == requests * 3);
  CHECK(seen.wrong == 0);
  CHECK(threads.dirty_threads == 0);
}

// =============================================================================================
// propagate(asio::use_awaitable) in Asio's own coroutines
// =============================================================================================

namespace {

net::awaitable<void> wait_twice_and_read(Seen& seen, int id, tcp::socket& socket) {
  seen.check(id, seen_id());  // started through a ContextExecutor: the spawner's context
  auto executor = co_await net::this_coro::executor;
  net::steady_timer timer(executor, (id % 4) * 1ms);
  co_await timer.async_wait(propagate(net::use_awaitable));
  seen.check(id, seen_id());
  timer.expires_after(1ms);
  co_await timer.async_wait(propagate(net::use_awaitable));
  seen.check(id, seen_id());
  std::array<char, 4> data{};
  co_await net::async_read(socket, net::buffer(data), propagate(net::use_awaitable));
  seen.check(id, std::string(data.data(), 4) == std::to_string(1000 + id) ? seen_id() : -2);
}

net::awaitable<void> wait_without_propagate(std::atomic<int>& after) {
  net::steady_timer timer(co_await net::this_coro::executor, 1ms);
  co_await timer.async_wait(net::use_awaitable);
  after = seen_id();
}

}  // namespace

TEST_CASE("use_awaitable coroutines see the context captured at each co_await through propagate",
          "[asio][propagate][use_awaitable][tcp]") {
  IoThreads threads(4);
  Seen seen;
  constexpr int coroutines = 40;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < coroutines; ++i) pairs.push_back(std::make_unique<SocketPair>(threads.io));
  ContextExecutor executor(threads.io.get_executor());
  for (int i = 0; i < coroutines; ++i) {
    request_id.run(i, [&] {
      net::co_spawn(
          executor, wait_twice_and_read(seen, i, pairs[static_cast<std::size_t>(i)]->server),
          propagate([&seen, i](std::exception_ptr e) { seen.check(i, e ? -2 : seen_id()); }));
    });
  }
  for (int i = 0; i < coroutines; ++i) {
    const std::string text = std::to_string(1000 + i);
    net::write(pairs[static_cast<std::size_t>(i)]->client, net::buffer(text));
  }
  threads.finish();
  CHECK(seen.ran == coroutines * 5);
  CHECK(seen.wrong == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE(
    "a use_awaitable co_await without propagate resumes with the completing thread's "
    "context, that is none",
    "[asio][use_awaitable]") {
  // Documents the limit of Asio's own coroutines: there is no resumption hook, so only
  // operations awaited through propagate carry the context.
  IoThreads threads(2);
  std::atomic<int> after{-5};
  request_id.run(3, [&] {
    net::co_spawn(ContextExecutor(threads.io.get_executor()), wait_without_propagate(after),
                  net::detached);
  });
  threads.finish();
  CHECK(after == -1);
}

// =============================================================================================
// ContextExecutor
// =============================================================================================

namespace {
using IoExecutor = net::io_context::executor_type;
static_assert(net::execution::executor<ContextExecutor<IoExecutor>>);
static_assert(net::is_executor<ContextExecutor<IoExecutor>>::value);
static_assert(net::execution::executor<ContextExecutor<net::strand<IoExecutor>>>);
static_assert(net::execution::executor<ContextExecutor<net::any_io_executor>>);
static_assert(std::is_convertible_v<ContextExecutor<IoExecutor>, net::any_io_executor>);
static_assert(std::is_nothrow_copy_constructible_v<ContextExecutor<IoExecutor>>);
}  // namespace

TEST_CASE("ContextExecutor wraps an executor like asio::strand does", "[asio][executor]") {
  net::io_context io;
  net::io_context other;
  ContextExecutor executor(io.get_executor());  // CTAD
  static_assert(std::is_same_v<decltype(executor), ContextExecutor<IoExecutor>>);
  CHECK(executor.get_inner_executor() == io.get_executor());
  CHECK(executor == ContextExecutor(io.get_executor()));
  CHECK(executor != ContextExecutor(other.get_executor()));
  CHECK(&net::query(executor, net::execution::context) == &io);
  CHECK(&executor.context() == &io);
  CHECK(net::query(net::require(executor, net::execution::blocking.never),
                   net::execution::blocking) == net::execution::blocking.never);
  auto tracked = net::prefer(executor, net::execution::outstanding_work.tracked);
  static_assert(std::is_same_v<decltype(tracked.get_inner_executor()),
                               decltype(net::prefer(io.get_executor(),
                                                    net::execution::outstanding_work.tracked))>);
  CHECK(net::query(tracked, net::execution::outstanding_work) ==
        net::execution::outstanding_work.tracked);
  net::any_io_executor any = executor;
  CHECK(any.target<ContextExecutor<IoExecutor>>() != nullptr);
  ContextExecutor on_strand(net::make_strand(io));
  CHECK_FALSE(on_strand.running_in_this_thread());
}

TEST_CASE("ContextExecutor post, dispatch, defer and execute run in the context of submission",
          "[asio][executor][threads]") {
  IoThreads threads(4);
  Seen seen;
  ContextExecutor executor(threads.io.get_executor());
  net::any_io_executor any = executor;
  std::allocator<void> allocator;
  constexpr int rounds = 100;
  for (int i = 0; i < rounds; ++i) {
    request_id.run(i, [&, i] {
      auto check = [&seen, i] {
        seen.check(i, seen_id());
        request_id.enter(-1);  // must not leak
      };
      net::post(executor, check);
      net::dispatch(executor, check);
      net::defer(executor, check);
      executor.execute(check);
      net::execution::execute(any, check);
      executor.post(check, allocator);  // the networking-TS model
      executor.dispatch(check, allocator);
      executor.defer(check, allocator);
      // Submitted from an I/O thread, inside another context: captured there.
      net::post(threads.io, [&seen, &executor, i] {
        request_id.run(1000 + i, [&] {
          net::dispatch(executor, [&seen, i] { seen.check(1000 + i, seen_id()); });
          net::post(executor, [&seen, i] { seen.check(1000 + i, seen_id()); });
        });
      });
    });
    net::post(threads.io, [&seen] {
      if (!slots_empty()) ++seen.leaked;
    });
  }
  threads.finish();
  CHECK(seen.ran == rounds * 10);
  CHECK(seen.wrong == 0);
  CHECK(seen.leaked == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE("a coroutine spawned on a ContextExecutor starts in the spawner's context",
          "[asio][executor][use_awaitable]") {
  IoThreads threads(2);
  std::atomic<int> started{-5};
  request_id.run(9, [&] {
    net::co_spawn(
        ContextExecutor(threads.io.get_executor()),
        [&]() -> net::awaitable<void> {
          started = seen_id();
          co_return;
        },
        net::detached);
  });
  threads.finish();
  CHECK(started == 9);
}

// =============================================================================================
// use_task with ucm::Task
// =============================================================================================

namespace {

/// The server half of an echo exchange, as a Task: a scope that spans every co_await.
ucm::Task<std::size_t> echo_once(Seen& seen, const IoThreads& threads, tcp::socket& socket,
                                 int id) {
  ucm::ContextVariableScope scope(request_id, id);
  ucm::ContextVariableScope who(user, "user-" + std::to_string(id));
  const auto check = [&] {
    seen.check(id, user.value_or("") == "user-" + std::to_string(id) ? seen_id() : -3);
    if (!threads.on_io_thread()) ++seen.on_caller;  // every step after a co_await runs on I/O
  };
  net::steady_timer timer(socket.get_executor(), (id % 3) * 1ms);
  co_await timer.async_wait(ucmnet::use_task);
  check();
  std::array<char, 4> data{};
  const std::size_t n = co_await net::async_read(socket, net::buffer(data), ucmnet::use_task);
  check();
  co_await net::async_write(socket, net::buffer(data, n), ucmnet::use_task);
  check();
  co_await net::post(socket.get_executor(), ucmnet::use_task);  // a plain thread hop
  check();
  co_return n;
}

/// The client half: writes its id and checks the echo.
ucm::Task<> ask_once(Seen& seen, const IoThreads& threads, tcp::socket& socket, int id) {
  ucm::ContextVariableScope scope(request_id, id);
  const std::string text = std::to_string(1000 + id);
  co_await net::async_write(socket, net::buffer(text), ucmnet::use_task);
  seen.check(id, seen_id());
  std::array<char, 4> data{};
  co_await net::async_read(socket, net::buffer(data), ucmnet::use_task);
  seen.check(id, std::string(data.data(), 4) == text ? seen_id() : -2);
  if (!threads.on_io_thread()) ++seen.on_caller;
}

}  // namespace

TEST_CASE("Tasks awaiting timers and socket reads with use_task keep a scope across every co_await",
          "[asio][use_task][tcp][threads]") {
  IoThreads threads(4);
  Seen seen;
  constexpr int sessions = 40;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  for (int i = 0; i < sessions; ++i) pairs.push_back(std::make_unique<SocketPair>(threads.io));
  std::vector<ucm::Task<std::size_t>> servers;
  std::vector<ucm::Task<>> clients;
  for (int i = 0; i < sessions; ++i) {
    servers.push_back(echo_once(seen, threads, pairs[static_cast<std::size_t>(i)]->server, i));
    clients.push_back(
        ask_once(seen, threads, pairs[static_cast<std::size_t>(i)]->client, 1000 + i));
  }
  std::vector<std::size_t> sizes;
  request_id.run(-7, [&] {
    auto [echoed, asked] = ucm::sync_wait(
        ucm::when_all(ucm::when_all(std::move(servers)), ucm::when_all(std::move(clients))));
    (void)asked;
    sizes = std::move(echoed);
    seen.check(-7, seen_id());  // sync_wait left the caller's context as it was
  });
  CHECK(slots_empty());
  threads.finish();
  CHECK(sizes == std::vector<std::size_t>(sessions, 4));
  CHECK(seen.ran == sessions * 4 + sessions * 2 + 1);
  CHECK(seen.wrong == 0);
  CHECK(seen.on_caller == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE("500 concurrent Tasks on 4 I/O threads never see each other's values through use_task",
          "[asio][use_task][stress]") {
  IoThreads threads(4);
  Seen seen;
  constexpr int tasks = 500;
  auto strand = net::make_strand(threads.io);
  auto one = [&](int id) -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, id);
    net::steady_timer timer(threads.io, (id % 4) * 1ms);
    int expected = id;
    for (int step = 0; step < 3; ++step) {
      timer.expires_after((step + id) % 3 * 1ms);
      co_await timer.async_wait(ucmnet::use_task);
      seen.check(expected, seen_id());
      co_await net::post(strand, ucmnet::use_task);  // onto the strand, then off it
      seen.check(expected, seen_id());
      // Lasts until the Task ends, across the next awaits; never leaks elsewhere.
      expected = id + 100000 * (step + 1);
      request_id.enter(expected);
      seen.check(expected, seen_id());
    }
  };
  std::vector<ucm::Task<>> all;
  for (int i = 0; i < tasks; ++i) all.push_back(one(i));
  ucm::sync_wait(ucm::when_all(std::move(all)));
  CHECK(slots_empty());
  threads.finish();
  CHECK(seen.ran == tasks * 9);
  CHECK(seen.wrong == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE("use_task throws an error code as system_error, in the Task's own context",
          "[asio][use_task][tcp]") {
  IoThreads threads(3);
  SocketPair pair(threads.io);
  pair.client.shutdown(tcp::socket::shutdown_send);  // the server's read sees end of file
  error_code caught;
  int id_in_catch = 0;
  auto read_to_end = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 5);
    std::array<char, 8> data{};
    try {
      co_await pair.server.async_read_some(net::buffer(data), ucmnet::use_task);
    } catch (const system_error& e) {
      caught = e.code();
      id_in_catch = seen_id();
    }
  };
  ucm::sync_wait(read_to_end());
  threads.finish();
  CHECK(caught == net::error::eof);
  CHECK(id_in_catch == 5);
}

namespace {
net::awaitable<int> read_id() { co_return seen_id(); }
}  // namespace

TEST_CASE("in a Task, use_task initiates the operation in the Task's context",
          "[asio][use_task][context]") {
  IoThreads threads(2);
  int spawned_saw = 0;
  int after = 0;
  int after_propagate = 0;
  int caller_after = 0;
  auto task = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 5);
    // co_spawn on a ContextExecutor captures the context when it is initiated: the Task's, not
    // the one of the thread that runs the Task (-7 here).
    spawned_saw = co_await net::co_spawn(ContextExecutor(threads.io.get_executor()), read_id(),
                                         ucmnet::use_task);
    after = seen_id();
    // propagate is unwrapped in a Task: the same path.
    co_await ucm::propagate(net::post(threads.io.get_executor(), ucmnet::use_task));
    after_propagate = seen_id();
  };
  request_id.run(-7, [&] {
    ucm::sync_wait(task());
    caller_after = seen_id();
  });
  threads.finish();
  CHECK(spawned_saw == 5);
  CHECK(after == 5);
  CHECK(after_propagate == 5);
  CHECK(caller_after == -7);
  CHECK(threads.dirty_threads == 0);
}

namespace {
/// A user's awaitable whose operator co_await returns a use_task operation.
struct TimerTick {
  net::steady_timer* timer;
  auto operator co_await() const { return timer->async_wait(ucmnet::use_task); }
};
}  // namespace

TEST_CASE("a use_task operation behind a user's operator co_await keeps the Task's context",
          "[asio][use_task][context]") {
  IoThreads threads(2);
  int after = 0;
  auto task = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 6);
    net::steady_timer timer(threads.io, 1ms);
    co_await TimerTick{&timer};
    after = seen_id();
  };
  request_id.run(-7, [&] { ucm::sync_wait(task()); });
  threads.finish();
  CHECK(after == 6);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE("a use_task operation completed on another thread while the Task initiates it",
          "[asio][use_task][threads]") {
  // Posts from an I/O thread to a pool of four: the handler often runs on another thread before
  // the initiating thread has given up the Task's slots. The Task then continues on the
  // initiating thread; either way it runs on one thread at a time, in its own context.
  IoThreads threads(4);
  std::atomic<int> wrong{0};
  auto task = [&](int id) -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, id);
    co_await net::post(threads.io.get_executor(), ucmnet::use_task);  // onto the pool
    for (int i = 0; i < 200; ++i) {
      co_await net::post(threads.io.get_executor(), ucmnet::use_task);
      wrong += seen_id() != id;
    }
  };
  std::vector<ucm::Task<>> tasks;
  for (int id = 1; id <= 8; ++id) tasks.push_back(task(id));
  ucm::sync_wait(ucm::when_all(std::move(tasks)));
  threads.finish();
  CHECK(wrong == 0);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE(
    "use_task composes with bind_cancellation_slot: a cancelled wait throws operation_aborted",
    "[asio][use_task][cancellation]") {
  IoThreads threads(3);
  net::cancellation_signal signal;
  error_code caught;
  int id_in_catch = 0;
  auto long_wait = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 8);
    net::steady_timer timer(threads.io, 30s);  // expires only if cancellation fails
    try {
      co_await timer.async_wait(net::bind_cancellation_slot(signal.slot(), ucmnet::use_task));
    } catch (const system_error& e) {
      caught = e.code();
      id_in_catch = seen_id();
    }
  };
  auto cancel_soon = [&]() -> ucm::Task<> {
    // when_all starts this branch after the first one has suspended (its slot is installed);
    // the signal is emitted on an I/O thread after that, never concurrently with it.
    net::steady_timer timer(threads.io, 5ms);
    co_await timer.async_wait(ucmnet::use_task);
    signal.emit(net::cancellation_type::terminal);
  };
  ucm::sync_wait(ucm::when_all(long_wait(), cancel_soon()));
  threads.finish();
  CHECK(caught == net::error::operation_aborted);
  CHECK(id_in_catch == 8);
}

namespace {
net::awaitable<int> answer() { co_return 42; }
net::awaitable<int> fail() {
  throw std::runtime_error("asio coroutine failed");
  co_return 0;
}
}  // namespace

TEST_CASE("use_task returns what the operation completes with, as use_awaitable does",
          "[asio][use_task]") {
  IoThreads threads(2);
  tcp::acceptor acceptor(threads.io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(threads.io);
  client.connect(acceptor.local_endpoint());
  std::string failure;
  bool redirected = false;
  std::size_t tuple_size = 0;
  int answered = 0;
  bool accepted_open = false;
  bool inline_completion_ok = false;
  bool all_inline = false;
  auto run = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 11);
    // void(error_code, socket) gives the socket.
    auto accept = acceptor.async_accept(ucmnet::use_task);
    static_assert(std::is_same_v<decltype(accept.await_resume()), tcp::socket>);
    tcp::socket server = co_await std::move(accept);
    accepted_open = server.is_open() && seen_id() == 11;
    // Asio's initiations and their arguments fit in the awaiter: no allocation of use_task's own.
    std::string line;
    std::array<char, 4> buffer{};
    net::steady_timer timer(threads.io);
    all_inline = accept.stored_inline() && timer.async_wait(ucmnet::use_task).stored_inline() &&
                 server.async_read_some(net::buffer(buffer), ucmnet::use_task).stored_inline() &&
                 net::async_read(server, net::buffer(buffer), ucmnet::use_task).stored_inline() &&
                 net::async_read_until(server, net::dynamic_buffer(line), '\n', ucmnet::use_task)
                     .stored_inline() &&
                 net::async_write(server, net::buffer(buffer), ucmnet::use_task).stored_inline() &&
                 net::co_spawn(threads.io, answer(), ucmnet::use_task).stored_inline() &&
                 net::post(threads.io, ucmnet::use_task).stored_inline();
    // A larger initiation is stored in one allocation, and works the same. This one completes
    // inside its initiation: the Task continues at once.
    co_await net::async_initiate<const ucmnet::use_task_t&, void(int)>(
        [big = std::array<char, 256>{}](auto handler) mutable {
          std::move(handler)(int{big[0]} + 1);
        },
        ucmnet::use_task);
    // void(exception_ptr, int) gives the int, or rethrows.
    answered = co_await net::co_spawn(threads.io, answer(), ucmnet::use_task);
    try {
      co_await net::co_spawn(threads.io, fail(), ucmnet::use_task);
    } catch (const std::runtime_error& e) {
      failure = e.what();
    }
    // Asio's own adapters around use_task: everything as a tuple, or the error code by reference.
    // (Only one read after end of file: Asio's epoll reactor may not complete a second one.)
    std::array<char, 4> data{};
    net::write(client, net::buffer("abcd", 4));
    // async_read, not async_read_some: exactly these 4 bytes, so the next read sees end of file.
    const std::tuple<error_code, std::size_t> both = co_await net::async_read(
        server, net::buffer(data), net::experimental::as_tuple(ucmnet::use_task));
    tuple_size = !std::get<0>(both) ? std::get<1>(both) : 0;
    client.shutdown(tcp::socket::shutdown_send);
    error_code ec;
    co_await server.async_read_some(net::buffer(data), net::redirect_error(ucmnet::use_task, ec));
    redirected = ec == net::error::eof && seen_id() == 11;
    // On an I/O thread, a dispatch to its io_context completes inside the initiation: the Task
    // resumes at once, on this thread, in its own context.
    co_await net::dispatch(threads.io.get_executor(), ucmnet::use_task);
    inline_completion_ok = seen_id() == 11 && threads.on_io_thread();
  };
  ucm::sync_wait(run());
  threads.finish();
  CHECK(accepted_open);
  CHECK(all_inline);
  CHECK(answered == 42);
  CHECK(failure == "asio coroutine failed");
  CHECK(redirected);
  CHECK(tuple_size == 4);
  CHECK(inline_completion_ok);
}

TEST_CASE("use_task works in a coroutine type that knows nothing of ucm, through ucm::propagate",
          "[asio][use_task][propagate]") {
  // A minimal fire-and-forget coroutine type.
  struct Detached {
    struct promise_type {
      Detached get_return_object() noexcept { return {}; }
      std::suspend_never initial_suspend() noexcept { return {}; }
      std::suspend_never final_suspend() noexcept { return {}; }
      void return_void() noexcept {}
      void unhandled_exception() noexcept { std::terminate(); }
    };
  };
  IoThreads threads(2);
  std::atomic<int> after{-5};
  std::atomic<int> without{-5};
  auto body = [&](net::steady_timer& timer) -> Detached {
    co_await ucm::propagate(timer.async_wait(ucmnet::use_task));
    after = seen_id();
    co_await timer.async_wait(ucmnet::use_task);  // no propagate: the I/O thread's context
    without = seen_id();
    ContextFrame{}.inherit([] {});  // nothing to do; keeps the body's last step context-free
  };
  net::steady_timer timer(threads.io, 1ms);
  request_id.run(4, [&] { body(timer); });
  threads.finish();
  CHECK(after == 4);
  CHECK(without == -1);
}

// =============================================================================================
// use_task: a Task destroyed while its operation is pending, operations completed inline
// =============================================================================================

namespace {

/// A coroutine type that knows nothing of ucm, to start a Task without waiting for it: `start`
/// runs the Task until it first suspends and leaves it there. The Task must be completed or
/// destroyed before the Starter is.
struct Starter {
  struct promise_type {
    Starter get_return_object() noexcept {
      return Starter{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  explicit Starter(std::coroutine_handle<promise_type> h) noexcept : handle(h) {}
  Starter(Starter&& other) noexcept : handle(std::exchange(other.handle, nullptr)) {}
  Starter& operator=(Starter&&) = delete;
  ~Starter() {
    if (handle) handle.destroy();
  }
  std::coroutine_handle<promise_type> handle;
};

Starter start(ucm::Task<>& task) { co_await task; }

/// Waits on `timer` (or, when null, on a timer of its own that the Task's destruction cancels),
/// in a scope: `resumed` is set if it ever continues.
ucm::Task<> wait_on(net::io_context& io, net::steady_timer* timer, int id, bool& resumed) {
  ucm::ContextVariableScope scope(request_id, id);
  std::optional<net::steady_timer> own;
  if (timer == nullptr) timer = &own.emplace(io, 30s);
  co_await timer->async_wait(ucmnet::use_task);
  resumed = true;
}

}  // namespace

TEST_CASE("a Task destroyed while its use_task operation is pending drops the completion",
          "[asio][use_task][lifetime]") {
  net::io_context io;
  net::steady_timer outside(io, 30s);  // outlives the Task
  bool resumed = false;
  SECTION("the operation completes after the Task was destroyed") {
    ucm::Task<> task = wait_on(io, &outside, 1, resumed);
    Starter started = start(task);
    task = ucm::Task<>{};  // destroyed while suspended on the wait
    outside.cancel();      // completes the wait with operation_aborted: nobody to resume
    CHECK(io.run() == 1);
  }
  SECTION("the Task's own timer, cancelled by the Task's destruction") {
    ucm::Task<> task = wait_on(io, nullptr, 2, resumed);
    Starter started = start(task);
    task = ucm::Task<>{};
    CHECK(io.run() == 1);
  }
  SECTION("the io_context is destroyed with the completion still queued") {
    auto other = std::make_unique<net::io_context>();
    ucm::Task<> task = wait_on(*other, nullptr, 3, resumed);
    Starter started = start(task);
    task = ucm::Task<>{};
    other.reset();  // destroys the handler uncalled
  }
  SECTION("the io_context is destroyed first, then the Task") {
    auto other = std::make_unique<net::io_context>();
    auto timer = std::make_unique<net::steady_timer>(*other, 30s);
    ucm::Task<> task = wait_on(*other, timer.get(), 4, resumed);
    Starter started = start(task);
    timer.reset();         // cancels the wait: its completion is queued
    other.reset();         // and destroyed uncalled: the Task is never resumed
    task = ucm::Task<>{};  // then the awaiter goes
  }
  SECTION("a coroutine that knows nothing of ucm, destroyed while it waits") {
    auto direct = [&]() -> Starter {
      co_await outside.async_wait(ucmnet::use_task);
      resumed = true;
    };
    std::optional<Starter> waiting(direct());
    waiting.reset();
    outside.cancel();
    CHECK(io.run() == 1);
  }
  CHECK_FALSE(resumed);
  CHECK(slots_empty());
}

TEST_CASE("Tasks destroyed while their use_task operations are pending on 4 I/O threads",
          "[asio][use_task][lifetime][threads]") {
  IoThreads threads(4);
  constexpr int tasks = 200;
  std::vector<std::unique_ptr<net::steady_timer>> outside;
  std::vector<ucm::Task<>> waiting;
  std::vector<Starter> starters;
  bool resumed = false;  // written only if a Task continued, which would be a data race too
  for (int i = 0; i < tasks; ++i) {
    net::steady_timer* timer = nullptr;
    if (i % 2 == 1) {
      outside.push_back(std::make_unique<net::steady_timer>(threads.io, 30s));
      timer = outside.back().get();
    }
    waiting.push_back(wait_on(threads.io, timer, i, resumed));
    starters.push_back(start(waiting.back()));
  }
  // Each destruction cancels the Task's own timer: its completion runs on an I/O thread while
  // the next Tasks are being destroyed here. The outside timers complete once cancelled below.
  waiting.clear();
  for (auto& timer : outside) timer->cancel();
  threads.finish();
  CHECK_FALSE(resumed);
  CHECK(threads.dirty_threads == 0);
  CHECK(slots_empty());
}

TEST_CASE("an operation completed inside its initiation continues the Task on the strand",
          "[asio][use_task][strand]") {
  IoThreads threads(2);
  auto strand = net::make_strand(threads.io);
  bool on_strand = false;
  bool stayed = false;
  bool off_strand_later = false;
  auto task = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 12);
    co_await net::post(threads.io, ucmnet::use_task);  // onto an I/O thread
    // The strand is idle: it runs the completion inside the dispatch, and the Task continues
    // there, inside the strand's invocation, as with asio::use_awaitable.
    co_await net::dispatch(strand, ucmnet::use_task);
    on_strand = strand.running_in_this_thread() && seen_id() == 12;
    // Each of these completes inside its initiation too. The Task stays on the strand, and the
    // nesting is bounded: the stack does not grow with the count.
    int wrong = 0;
    for (int i = 0; i < 20000; ++i) {
      co_await net::dispatch(strand, ucmnet::use_task);
      wrong += !strand.running_in_this_thread() || seen_id() != 12;
    }
    stayed = wrong == 0;
    co_await net::post(threads.io, ucmnet::use_task);  // off the strand
    off_strand_later = !strand.running_in_this_thread() && seen_id() == 12;
  };
  request_id.run(-7, [&] { ucm::sync_wait(task()); });
  threads.finish();
  CHECK(on_strand);
  CHECK(stayed);
  CHECK(off_strand_later);
  CHECK(threads.dirty_threads == 0);
}

TEST_CASE(
    "a Task that ends inside its operation's initiation leaves the initiation a valid context",
    "[asio][use_task][lifetime]") {
  int after_handler = 0;
  int child_saw = 0;
  auto child = [&]() -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, 21);  // a frame freed as the child ends
    co_await net::async_initiate<const ucmnet::use_task_t&, void()>(
        [&](auto handler) {
          std::move(handler)();       // the child continues and ends inside this call
          after_handler = seen_id();  // still the child's value: its frame is kept until here
        },
        ucmnet::use_task);
    child_saw = seen_id();
  };
  auto parent = [&]() -> ucm::Task<> { co_await child(); };  // destroys the child as it ends
  request_id.run(-7, [&] { ucm::sync_wait(parent()); });
  CHECK(child_saw == 21);
  CHECK(after_handler == 21);
  CHECK(slots_empty());
}
