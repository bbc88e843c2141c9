// SPDX-License-Identifier: MIT
// tests/asio_use_task_test.cpp: use_task (ucm/asio/use_task.hpp, ucm/boost_asio/use_task.hpp): Asio
// operations awaited from ucm::Task and other coroutines, results and errors, a Task destroyed
// while its operation is pending, operations completed inside their initiation. Built as asio_test
// against standalone Asio and as boost_asio_test against Boost.Asio (see tests/asio_support.hpp).
#if defined(UCM_TEST_BOOST_ASIO)
#include "ucm/boost_asio/use_task.hpp"
#else
#include "ucm/asio/use_task.hpp"
#endif

#include <catch2/catch.hpp>

#include "asio_support.hpp"

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
    EXPECT(seen.failures, threads.on_io_thread());  // every step after a co_await runs on I/O
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
  EXPECT(seen.failures, threads.on_io_thread());
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
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
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
  CHECK_NO_FAILURES(seen.failures);
  CHECK_NO_FAILURES(threads.failures);
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
  CHECK_NO_FAILURES(threads.failures);
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
  CHECK_NO_FAILURES(threads.failures);
}

TEST_CASE("a use_task operation completed on another thread while the Task initiates it",
          "[asio][use_task][threads]") {
  // Posts from an I/O thread to a pool of four: the handler often runs on another thread before
  // the initiating thread has given up the Task's slots. The Task then continues on the
  // initiating thread; either way it runs on one thread at a time, in its own context.
  IoThreads threads(4);
  ucm_test::Failures failures;
  auto task = [&](int id) -> ucm::Task<> {
    ucm::ContextVariableScope scope(request_id, id);
    co_await net::post(threads.io.get_executor(), ucmnet::use_task);  // onto the pool
    for (int i = 0; i < 200; ++i) {
      co_await net::post(threads.io.get_executor(), ucmnet::use_task);
      EXPECT(failures, seen_id() == id);
    }
  };
  std::vector<ucm::Task<>> tasks;
  for (int id = 1; id <= 8; ++id) tasks.push_back(task(id));
  ucm::sync_wait(ucm::when_all(std::move(tasks)));
  threads.finish();
  CHECK_NO_FAILURES(failures);
  CHECK_NO_FAILURES(threads.failures);
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
  CHECK_NO_FAILURES(threads.failures);
  CHECK(slots_empty());
}

TEST_CASE("an operation completed inside its initiation continues the Task on the strand",
          "[asio][use_task][strand]") {
  IoThreads threads(2);
  auto strand = net::make_strand(threads.io);
  bool on_strand = false;
  ucm_test::Failures stayed;
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
    for (int i = 0; i < 20000; ++i) {
      co_await net::dispatch(strand, ucmnet::use_task);
      EXPECT(stayed, strand.running_in_this_thread() && seen_id() == 12);
    }
    co_await net::post(threads.io, ucmnet::use_task);  // off the strand
    off_strand_later = !strand.running_in_this_thread() && seen_id() == 12;
  };
  request_id.run(-7, [&] { ucm::sync_wait(task()); });
  threads.finish();
  CHECK(on_strand);
  CHECK_NO_FAILURES(stayed);
  CHECK(off_strand_later);
  CHECK_NO_FAILURES(threads.failures);
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
