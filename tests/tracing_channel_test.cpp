// SPDX-License-Identifier: MIT
// Tests of ucm/tracing_channel.hpp: TracingChannel, the five events of trace_sync, trace_task and
// trace_callback, also on exceptions and on other threads. Catch2 v2 is not thread-safe: code on
// other threads records into a mutex-protected log or atomics, and the main thread checks them.
#include "ucm/tracing_channel.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "coroutine_support.hpp"
#include "thread_pool.hpp"
#include "ucm/task.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;
using ucm::Subscription;
using ucm::Task;
using ucm::TracingChannel;
using ucm_test::Hop;
using ucm_test::ThreadPool;

namespace {

/// What events were published, from any thread.
class EventLog {
 public:
  void add(std::string event) {
    const std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> take() {
    const std::lock_guard lock(mutex_);
    return std::exchange(events_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> events_;
};

struct Query {
  // A constructor, not an aggregate: g++ 12 miscompiles an aggregate temporary made with braces
  // inside a co_await expression (`co_await f(Query{"q"})` frees a pointer it never allocated;
  // reproduced without ucm).
  explicit Query(std::string s) : sql(std::move(s)) {}
  std::string sql;
  int span = 0;  // set by a subscriber at start, read at end
};

std::string text_of(const int* v) { return v == nullptr ? "-" : std::to_string(*v); }

}  // namespace

TEST_CASE("a tracing channel can be constant-initialised, for use during static initialisation",
          "[channel][tracing]") {
  static constinit TracingChannel<Query> tracing;
  CHECK_FALSE(tracing.has_subscribers());
}

// ---- TracingChannel: trace_sync ----------------------------------------------------------------

namespace {

/// Records every event of a TracingChannel<Query> with the context it was published in.
struct Recorder {
  Recorder(TracingChannel<Query>& channel, ContextVariable<int>& span, EventLog& log) {
    auto record = [&span, &log](const char* event) {
      return [&span, &log, event](Query& q) {
        log.add(std::string(event) + " " + q.sql + " get=" + text_of(span.get()) + " active=" +
                text_of(span.get_active()) + " inherited=" + text_of(span.get_inherited()));
      };
    };
    subs.push_back(channel.start.subscribe(record("start")));
    subs.push_back(channel.end.subscribe(record("end")));
    subs.push_back(channel.async_start.subscribe(record("async_start")));
    subs.push_back(channel.async_end.subscribe(record("async_end")));
    subs.push_back(channel.error.subscribe([&log](Query& q) {
      std::string what = "?";
      try {
        throw;  // the error being published
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      log.add("error " + q.sql + " " + what);
    }));
  }
  std::vector<Subscription> subs;
};

}  // namespace

TEST_CASE("trace_sync publishes start, then end, around the call with the start stores set",
          "[channel][tracing]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  const Recorder recorder(channel, span, log);
  Subscription store = channel.start.bind_store(span, [](Query& q) { return q.span = 2; });
  const int result = span.run(1, [&] {
    return channel.trace_sync(
        Query{"q"},
        [&](int x) {
          log.add("call get=" + text_of(span.get()));
          return x + 1;
        },
        41);
  });
  CHECK(result == 42);
  CHECK(log.take() == std::vector<std::string>{
                          "start q get=2 active=2 inherited=-",
                          "call get=2",
                          "end q get=2 active=2 inherited=-",
                      });
}

TEST_CASE("trace_sync publishes start, error, end when the call throws, and rethrows",
          "[channel][tracing]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  const Recorder recorder(channel, span, log);
  CHECK_THROWS_WITH(channel.trace_sync(Query{"q"}, [] { throw std::runtime_error("boom"); }),
                    "boom");
  CHECK(log.take() == std::vector<std::string>{
                          "start q get=- active=- inherited=-",
                          "error q boom",
                          "end q get=- active=- inherited=-",
                      });
}

TEST_CASE("a subscriber attaches state to the message at start and reads it at end",
          "[channel][tracing]") {
  TracingChannel<Query> channel;
  int next_span = 100;
  std::vector<int> ended;
  Subscription start = channel.start.subscribe([&](Query& q) { q.span = ++next_span; });
  Subscription end = channel.end.subscribe([&](Query& q) { ended.push_back(q.span); });
  Query q{"q"};
  channel.trace_sync(q, [] {});
  channel.trace_sync(Query{"r"}, [] {});
  CHECK(q.span == 101);
  CHECK(ended == std::vector<int>{101, 102});
}

TEST_CASE("with no subscriber a traced call is a plain call", "[channel][tracing]") {
  TracingChannel<Query> channel;
  CHECK_FALSE(channel.has_subscribers());
  int target = 0;
  int& r = channel.trace_sync(Query{"q"}, [&]() -> int& { return target; });
  CHECK(&r == &target);
  auto task = [&]() -> Task<int> { co_return 5; };
  CHECK(ucm::sync_wait(channel.trace_task(Query{"q"}, task())) == 5);
  int called = 0;
  channel.trace_callback(
      Query{"q"}, [](auto cb) { cb(3); }, [&](int x) { called = x; });
  CHECK(called == 3);
}

// ---- TracingChannel: trace_task ----------------------------------------------------------------

TEST_CASE(
    "trace_task publishes start and end when awaited, async_start and async_end in the "
    "awaiter's context when the task completes on another thread",
    "[channel][tracing][task][threads]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  ThreadPool pool(2);
  const Recorder recorder(channel, span, log);
  Subscription store = channel.start.bind_store(span, [](Query&) { return 2; });
  std::atomic<bool> async_on_pool{false};
  Subscription where =
      channel.async_start.subscribe([&](Query&) { async_on_pool = pool.on_pool_thread(); });

  auto query = [&]() -> Task<int> {
    log.add("task starts get=" + text_of(span.get()) + " active=" + text_of(span.get_active()));
    co_await Hop{&pool};
    // The store holds for the task's whole run, on whatever thread.
    log.add("task resumed get=" + text_of(span.get()));
    span.enter(3);  // what the task leaves
    co_return 42;
  };
  auto awaiter = [&]() -> Task<int> {
    span.enter(1);
    Task<int> traced = channel.trace_task(Query{"q"}, query());
    log.add("created");  // lazy: nothing published yet
    const int r = co_await std::move(traced);
    // As if it had awaited the task directly: the awaiter inherits what the task left.
    log.add("after get=" + text_of(span.get()) + " inherited=" + text_of(span.get_inherited()));
    co_return r;
  };
  CHECK(ucm::sync_wait(awaiter()) == 42);
  CHECK(async_on_pool);
  CHECK(log.take() == std::vector<std::string>{
                          "created",
                          "start q get=2 active=2 inherited=-",
                          "end q get=2 active=2 inherited=-",
                          "task starts get=2 active=2",
                          "task resumed get=2",
                          "async_start q get=1 active=1 inherited=3",
                          "async_end q get=1 active=1 inherited=3",
                          "after get=1 inherited=3",
                      });
}

TEST_CASE(
    "trace_task of a task that throws publishes start, end, error, async_start, "
    "async_end, and the awaiter gets the exception",
    "[channel][tracing][task][threads]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  ThreadPool pool(1);
  const Recorder recorder(channel, span, log);
  auto failing = [&]() -> Task<void> {
    co_await Hop{&pool};
    throw std::runtime_error("db down");
  };
  auto awaiter = [&]() -> Task<std::string> {
    span.enter(1);
    try {
      co_await channel.trace_task(Query{"q"}, failing());
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "nothing";
  };
  CHECK(ucm::sync_wait(awaiter()) == "caught db down");
  CHECK(log.take() == std::vector<std::string>{
                          "start q get=1 active=1 inherited=-",
                          "end q get=1 active=1 inherited=-",
                          "error q db down",
                          "async_start q get=1 active=1 inherited=1",
                          "async_end q get=1 active=1 inherited=1",
                      });
}

TEST_CASE("trace_task keeps the message for the task's whole run, and returns references",
          "[channel][tracing][task]") {
  TracingChannel<Query> channel;
  std::vector<int> seen;
  Subscription start = channel.start.subscribe([](Query& q) { q.span = 7; });
  Subscription end = channel.async_end.subscribe([&](Query& q) { seen.push_back(q.span); });
  int target = 0;
  auto ref = [&]() -> Task<int&> { co_return target; };
  int& r = ucm::sync_wait(channel.trace_task(Query{"q"}, ref()));
  CHECK(&r == &target);
  auto nothing = []() -> Task<> { co_return; };
  ucm::sync_wait(channel.trace_task(Query{"v"}, nothing()));
  CHECK(seen == std::vector<int>{7, 7});
}

TEST_CASE("traced tasks in a when_all are each child-of the awaiter", "[channel][tracing][task]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  ThreadPool pool(2);
  int next = 10;
  std::mutex next_mutex;
  Subscription store = channel.start.bind_store(span, [&](Query& q) {
    log.add("start " + q.sql + " parent=" + text_of(span.get_active()));
    const std::lock_guard lock(next_mutex);
    return ++next;
  });
  auto leaf = [&]() -> Task<int> {
    co_await Hop{&pool};
    co_return *span.get();
  };
  auto parent = [&]() -> Task<int> {
    span.enter(1);
    auto [a, b] = co_await ucm::when_all(channel.trace_task(Query{"a"}, leaf()),
                                         channel.trace_task(Query{"b"}, leaf()));
    // The merge: each branch leaves its own span.
    std::vector<int> branches;
    for (const ContextFrame& f : ContextFrame::inherited_all()) branches.push_back(*f.get(span));
    log.add("merged " + std::to_string(branches.size()) + " " + std::to_string(branches[0]) + " " +
            std::to_string(branches[1]));
    co_return a + b;
  };
  CHECK(ucm::sync_wait(parent()) == 23);
  CHECK(log.take() ==
        std::vector<std::string>{"start a parent=1", "start b parent=1", "merged 2 11 12"});
}

// ---- TracingChannel: trace_callback ------------------------------------------------------------

TEST_CASE(
    "trace_callback publishes start and end around the call, then async_start, the "
    "callback and async_end where the callback runs, with the start stores set",
    "[channel][tracing][callback][threads]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  ThreadPool pool(1);
  const Recorder recorder(channel, span, log);
  Subscription store = channel.start.bind_store(span, [](Query&) { return 2; });
  std::atomic<bool> callback_on_pool{false};
  // The pool's one thread waits until the traced call has returned, so the completion comes
  // after `end`, as an asynchronous completion does (otherwise the order of `end` and the pool's
  // events would depend on scheduling).
  std::promise<void> gate;
  pool.post([opened = gate.get_future().share()] { opened.wait(); });

  // The library: posts the completion to a pool thread, without any context of its own.
  auto read_async = [&](int key, std::function<void(std::error_code, int)> done) {
    log.add("initiate get=" + text_of(span.get()));
    pool.post([key, done = std::move(done)] { done(std::error_code(), key * 2); });
    return true;
  };
  span.run(1, [&] {
    const bool started =
        channel.trace_callback(Query{"q"}, read_async, 21, [&](std::error_code ec, int value) {
          callback_on_pool = pool.on_pool_thread();
          log.add("callback " + std::to_string(value) + " ok=" + std::to_string(!ec) +
                  " get=" + text_of(span.get()));
        });
    CHECK(started);
  });
  gate.set_value();
  pool.wait_idle();
  CHECK(callback_on_pool);
  // The callback runs as a continuation of the start window's context, whatever thread calls it:
  // the store holds, nothing is active (a continuation), the start window's context flowed in.
  CHECK(log.take() == std::vector<std::string>{
                          "start q get=2 active=2 inherited=-",
                          "initiate get=2",
                          "end q get=2 active=2 inherited=-",
                          "async_start q get=2 active=- inherited=2",
                          "callback 42 ok=1 get=2",
                          "async_end q get=2 active=- inherited=2",
                      });
}

TEST_CASE(
    "trace_callback publishes error for an error_code or exception_ptr given to the "
    "callback, and for an initiation that throws",
    "[channel][tracing][callback]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  const Recorder recorder(channel, span, log);

  channel.trace_callback(
      Query{"ec"}, [](auto cb) { cb(std::make_error_code(std::errc::timed_out)); },
      [](std::error_code) {});
  channel.trace_callback(
      Query{"ex"}, [](auto cb) { cb(std::make_exception_ptr(std::runtime_error("lost"))); },
      [](std::exception_ptr) {});
  CHECK_THROWS_AS(channel.trace_callback(
                      Query{"init"}, [](auto) { throw std::logic_error("no route"); }, [] {}),
                  std::logic_error);
  const std::vector<std::string> events = log.take();
  REQUIRE(events.size() == 13);
  CHECK(events[0] == "start ec get=- active=- inherited=-");
  CHECK(events[1].rfind("error ec ", 0) == 0);  // the system_error's text
  CHECK(events[2] == "async_start ec get=- active=- inherited=-");
  CHECK(events[3] == "async_end ec get=- active=- inherited=-");
  CHECK(events[4] == "end ec get=- active=- inherited=-");
  CHECK(events[5] == "start ex get=- active=- inherited=-");
  CHECK(events[6] == "error ex lost");
  CHECK(events[7] == "async_start ex get=- active=- inherited=-");
  CHECK(events[8] == "async_end ex get=- active=- inherited=-");
  CHECK(events[9] == "end ex get=- active=- inherited=-");
  CHECK(events[10] == "start init get=- active=- inherited=-");
  CHECK(events[11] == "error init no route");
  CHECK(events[12] == "end init get=- active=- inherited=-");
}

TEST_CASE("a traced callback may be copied, and each call is traced", "[channel][tracing]") {
  TracingChannel<Query> channel;
  int async_ends = 0;
  Subscription s = channel.async_end.subscribe([&](Query&) { ++async_ends; });
  std::function<void(int)> kept;
  int sum = 0;
  channel.trace_callback(
      Query{"q"}, [&](std::function<void(int)> cb) { kept = cb; }, [&](int x) { sum += x; });
  std::function<void(int)> copy = kept;
  kept(1);
  copy(2);
  CHECK(sum == 3);
  CHECK(async_ends == 2);
}

TEST_CASE(
    "trace_callback of a callback alone publishes start and end now, and traces each call "
    "wherever it runs",
    "[channel][tracing][callback][threads]") {
  TracingChannel<Query> channel;
  ContextVariable<int> span;
  EventLog log;
  ThreadPool pool(1);
  {
    const Recorder recorder(channel, span, log);
    Subscription store = channel.start.bind_store(span, [](Query&) { return 2; });
    span.run(1, [&] {
      auto done = channel.trace_callback(Query("q"), [&](int rows) {
        log.add("callback " + std::to_string(rows) + " get=" + text_of(span.get()));
      });
      log.add("returned get=" + text_of(span.get()));
      pool.post([done]() mutable { done(3); });
    });
    pool.wait_idle();
  }
  CHECK(log.take() == std::vector<std::string>{
                          "start q get=2 active=2 inherited=-",
                          "end q get=2 active=2 inherited=-",
                          "returned get=1",
                          "async_start q get=2 active=- inherited=2",
                          "callback 3 get=2",
                          "async_end q get=2 active=- inherited=2",
                      });
  // Nobody listening: the wrapper only calls the callback.
  int called = 0;
  auto plain = channel.trace_callback(Query("r"), [&](int x) { called = x; });
  plain(4);
  CHECK(called == 4);
  CHECK(log.take().empty());
}
