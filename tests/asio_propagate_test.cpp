// SPDX-License-Identifier: MIT
// tests/asio_propagate_test.cpp: propagate(token) (ucm/asio/propagate.hpp,
// ucm/boost_asio/propagate.hpp): callbacks, Asio's binders, associators and cancellation, legacy
// hooks, deferred operations and use_awaitable coroutines. Built as asio_test against standalone
// Asio and as boost_asio_test against Boost.Asio (see tests/asio_support.hpp).
#if defined(UCM_TEST_BOOST_ASIO)
#include "ucm/boost_asio/propagate.hpp"
#else
#include "ucm/asio/propagate.hpp"
#endif

#include <catch2/catch.hpp>

#include "asio_support.hpp"

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
        EXPECT(seen.failures, threads.on_io_thread());
        request_id.enter(-1);  // must not leak into the next handler on this thread
      }));
    });
    // Posted without context: whatever thread runs it must show nothing.
    net::post(threads.io, [&seen] { EXPECT(seen.failures, slots_empty()); });
  }
  CHECK(slots_empty());  // initiating changed nothing here
  threads.finish();
  CHECK(seen.ran == operations);
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
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
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
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
  ucm_test::Failures failures;
  std::atomic<int> ran{0};
  net::steady_timer timer(threads.io, 1ms);
  ContextFrame{}.inherit([&] {
    timer.async_wait(propagate([&](error_code) {
      EXPECT(failures, slots_empty());
      ++ran;
    }));
  });
  threads.finish();
  CHECK(ran == 1);
  CHECK_NO_FAILURES(failures);
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
  std::vector<std::unique_ptr<net::steady_timer>> timers;
  int inside_strand = 0;  // touched only on the strand: a data race here would show under TSan
  for (int i = 0; i < 100; ++i) {
    timers.push_back(std::make_unique<net::steady_timer>(threads.io, (i % 3) * 1ms));
    auto handler = [&, i](error_code) {
      seen.check(i, seen_id());
      EXPECT(seen.failures, strand.running_in_this_thread());
      ++inside_strand;
    };
    request_id.run(i, [&] { wait(i, *timers.back(), strand, handler); });
  }
  threads.finish();
  CHECK(seen.ran == 100);
  CHECK_NO_FAILURES(seen.failures);
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
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
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
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
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
