// SPDX-License-Identifier: MIT
// "Nothing outlives its window": what a window set, and what flowed into it (a return path, a
// merge), is unreachable once it closed; values are destroyed after the restore; misuse (scopes
// closed out of order, on another thread) never restores freed memory; an awaiter's
// await_suspend runs in the Task's context; a Task destroyed while a resumption waits in the run
// queue unlinks it. Each case failed before its fix (most under AddressSanitizer).
#include <catch2/catch.hpp>

#include <atomic>
#include <coroutine>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coroutine_support.hpp"
#include "plain_task.hpp"
#include "test_support.hpp"
#include "thread_pool.hpp"
#include "ucm/task.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextFrameScope;
using ucm::ContextVariable;
using ucm::ContextVariableScope;
using ucm::Task;
using ucm_test::Detached;
using ucm_test::Failures;
using ucm_test::Hop;
using ucm_test::Parked;
using ucm_test::ThreadPool;
using ucm_test::Tracked;

namespace {

using HandlerGuard = ucm_test::MisuseCounter;
auto& reports = ucm_test::MisuseCounter::reports;

}  // namespace

// ---- defect 1: the return path of a request handled inside a scope -----------------------------

TEST_CASE("a connection loop never shows a request's values to the next request",
          "[window][task][return-path][threads]") {
  ContextVariable<int> rid;
  ContextVariable<std::string> trace;
  ThreadPool pool(2);
  Failures failures;
  auto child = [&](int expected) -> Task<> {
    EXPECT(failures, rid.get() != nullptr && *rid.get() == expected);
    co_await Hop{&pool};
    trace.enter("trace-" + std::to_string(expected));  // left on the return path
    co_return;
  };
  auto loop = [&]() -> Task<> {
    for (int request = 1; request <= 200; ++request) {
      // Before the request's own values: nothing of the previous request, through any read.
      EXPECT(failures, rid.get() == nullptr && trace.get() == nullptr);
      EXPECT(failures, rid.get_inherited() == nullptr && trace.get_inherited() == nullptr);
      for (const ContextFrame& f : ContextFrame::inherited_all()) EXPECT(failures, f.empty());
      {
        ContextVariableScope s(rid, request);
        co_await child(request);
        EXPECT(failures, trace.get() == nullptr);  // the child's value: only through get_inherited
        EXPECT(failures, trace.get_inherited() != nullptr &&
                             *trace.get_inherited() == "trace-" + std::to_string(request));
        if (request % 3 == 0) {
          co_await ucm::when_all(child(request), child(request));
          EXPECT(failures, ContextFrame::inherited_all().size() == 2);
        }
      }
      EXPECT(failures,
             rid.get() == nullptr && trace.get() == nullptr && trace.get_inherited() == nullptr);
      EXPECT(failures,
             ContextFrame::inherited_all().size() == 1 && ContextFrame::inherited().empty());
      co_await Hop{&pool};
    }
  };
  ucm::sync_wait(loop());
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("a continuation window inside a Task restores the return path and merge that flowed in",
          "[window][task][return-path]") {
  ContextVariable<std::string> span;
  auto setting = [&](std::string value) -> Task<> {
    span.enter(std::move(value));
    co_return;
  };
  auto parent = [&]() -> Task<> {
    co_await ucm::when_all(setting("a"), setting("b"));
    {
      ContextFrameScope window(ContextFrame{}.with(span, "window"));
      co_await setting("inside");
      CHECK(*span.get_inherited() == "inside");
      CHECK(ContextFrame::inherited_all().size() == 1);
    }
    CHECK(ContextFrame::inherited_all().size() == 2);
    CHECK(*ContextFrame::inherited_all()[1].get(span) == "b");
    CHECK(*span.get_inherited() == "a");
  };
  ucm::sync_wait(parent());
}

// ---- defect 2: value destructors run after the restore -----------------------------------------

namespace {
/// Reads and captures the context as it is destroyed: an RAII span logging its request id.
struct Span {
  const ContextVariable<int>* rid;
  std::vector<int>* seen;
  std::vector<ContextFrame>* captured;
  Span(const ContextVariable<int>& r, std::vector<int>& s, std::vector<ContextFrame>& c)
      : rid(&r), seen(&s), captured(&c) {}
  Span(Span&& other) noexcept
      : rid(other.rid),
        seen(std::exchange(other.seen, nullptr)),
        captured(std::exchange(other.captured, nullptr)) {}
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  Span& operator=(Span&&) = delete;
  ~Span() {
    if (seen == nullptr) return;
    const int* id = rid->get();
    seen->push_back(id == nullptr ? 0 : *id);
    captured->push_back(ContextFrame::current());
  }
};
}  // namespace

TEST_CASE("a value's destructor sees the context outside its window, never a dying frame",
          "[window][lifetime]") {
  ContextVariable<int> rid;
  ContextVariable<Span> span;
  std::vector<int> seen;
  std::vector<ContextFrame> captured;
  rid.run(42, [&] {
    span.run(Span(rid, seen, captured), [&] { rid.enter(7); });
    {
      ContextVariableScope s(span, Span(rid, seen, captured));
      ContextVariableScope r(rid, 8);
    }
    ucm::with(span, Span(rid, seen, captured)).with(rid, 9).run([] {});
    ContextFrame{}.with(span, Span(rid, seen, captured)).inherit([] {});
  });
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == 42);
  CHECK(seen[1] == 42);
  CHECK(seen[2] == 42);
  CHECK(seen[3] == 42);
  // The captures are of the live frame outside the window: still readable now.
  for (const ContextFrame& f : captured) {
    REQUIRE(f.get(rid) != nullptr);
    CHECK(*f.get(rid) == 42);
    CHECK(f.get(span) == nullptr);
  }
}

namespace {
/// Enters another value as it is destroyed.
struct Entering {
  const ContextVariable<Tracked>* other;
  bool armed = true;
  explicit Entering(const ContextVariable<Tracked>& o) : other(&o) {}
  Entering(Entering&& e) noexcept : other(e.other), armed(std::exchange(e.armed, false)) {}
  Entering(const Entering&) = delete;
  Entering& operator=(const Entering&) = delete;
  Entering& operator=(Entering&&) = delete;
  ~Entering() {
    if (armed) other->enter(Tracked("entered by a destructor"));
  }
};
}  // namespace

TEST_CASE("a value whose destructor enters is released once, also at thread exit",
          "[window][lifetime][leak]") {
  const int before = Tracked::live;
  {
    ContextVariable<Tracked> other;
    ContextVariable<Entering> v;
    std::thread t([&] {
      // In a window: the destructor enters into the enclosing level, released with it.
      other.run(Tracked("outer"), [&] {
        v.run(Entering(other), [] {});
        // The destructor's enter replaced the enclosing window's value.
        REQUIRE(other.get() != nullptr);
      });
      // At the top of the thread: the thread's exit releases it and what its destructor enters.
      v.enter(Entering(other));
      v.enter(Entering(other));
    });
    t.join();
  }
  CHECK(Tracked::live == before);
}

// ---- defect 3: misuse never restores freed memory -----------------------------------------------

TEST_CASE("a scope outliving frame.run's window keeps the borrowed frame alive",
          "[window][misuse]") {
  HandlerGuard guard;
  const int before = Tracked::live;
  {
    ContextVariable<Tracked> v;
    ContextVariable<int> w;
    std::string seen;
    std::thread t([&] {
      auto frame = std::make_unique<ContextFrame>(ContextFrame{}.with(v, Tracked("borrowed")));
      std::unique_ptr<ContextFrameScope> inner;
      // The scope opens in run()'s window and outlives it: run's window closes out of order.
      frame->run([&] {
        inner = std::make_unique<ContextFrameScope>(ucm::call_window, ContextFrame{}.with(w, 3));
      });
      frame.reset();  // the frame run() borrowed: its holder is gone
      inner.reset();  // restores what it saved: run()'s frame, which must still be alive
      seen = v.get() == nullptr ? "" : v.get()->text;
      ucm::clear();
    });
    t.join();
    CHECK(seen == "borrowed");
  }
  CHECK(reports == 2);
  CHECK(Tracked::live == before);  // kept until the thread exited, then released
}

TEST_CASE("a scope destroyed on another thread after its thread exited leaves that thread alone",
          "[window][misuse][threads]") {
  HandlerGuard guard;
  const int before = Tracked::live;
  {
    ContextVariable<Tracked> v;
    std::unique_ptr<ContextFrameScope> moved;
    std::thread opener([&] {
      auto* outer = new ContextFrameScope(ContextFrame{}.with(v, Tracked("opener's frame")));
      moved = std::make_unique<ContextFrameScope>(ContextFrame{});
      delete outer;  // out of order: the scope above it is still open
    });
    opener.join();  // the opening thread exits
    std::string after;
    std::thread closer([&] {
      ContextVariableScope mine(v, Tracked("closer's"));
      moved.reset();  // closed in another chain: restores nothing here
      after = v.get() == nullptr ? "" : v.get()->text;
    });
    closer.join();
    CHECK(after == "closer's");
  }
  CHECK(reports == 2);
  // What a window closed in another chain held is kept until the process exits (reachable).
  CHECK(Tracked::live <= before + 1);
}

// ---- defect 4: await_suspend runs in the Task's context ----------------------------------------

namespace {
/// A foreign awaiter whose await_suspend reads and enters context, then resumes elsewhere.
struct ContextualAwaiter {
  ThreadPool* pool;
  const ContextVariable<int>* v;
  std::atomic<int>* seen;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    const int* value = v->get();
    *seen = value == nullptr ? 0 : *value;
    v->enter(-1);  // must never land in the resuming thread's slots
    pool->post([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

/// A foreign lazy coroutine, cppcoro-style: awaited, it starts inside await_suspend.
ucm_test::PlainTask<> lazy_body(const ContextVariable<int>* v, std::atomic<int>* seen) {
  const int* value = v->get();
  *seen = value == nullptr ? 0 : *value;
  v->enter(-2);
  co_return;
}
}  // namespace

TEST_CASE("an awaiter's await_suspend runs in the Task's context and leaves the resumer alone",
          "[window][task][threads]") {
  ContextVariable<int> v;
  ThreadPool pool(2);
  std::atomic<int> seen_by_awaiter{0};
  std::atomic<int> seen_by_lazy{0};
  Failures failures;
  auto task = [&]() -> Task<> {
    ContextVariableScope s(v, 5);
    for (int i = 0; i < 50; ++i) {
      co_await ContextualAwaiter{&pool, &v, &seen_by_awaiter};
      EXPECT(failures, seen_by_awaiter == 5 && v.get() != nullptr && *v.get() == 5);
      co_await lazy_body(&v, &seen_by_lazy);
      EXPECT(failures, seen_by_lazy == 5 && v.get() != nullptr && *v.get() == 5);
    }
  };
  v.run(100, [&] {
    ucm::sync_wait(task());
    // The caller's slots are exactly as they were: nothing entered during await_suspend.
    CHECK(*v.get() == 100);
    CHECK(ContextFrame::current().size() == 1);
  });
  CHECK(v.get() == nullptr);
  CHECK_NO_FAILURES(failures);
  CHECK(seen_by_awaiter == 5);
}

// ---- defect 5: a Task destroyed while its foreign awaiter's resumption is queued ----------------

TEST_CASE("destroying a finished Task whose foreign awaiter's resumption is queued unlinks it",
          "[window][task]") {
  const int before = Tracked::live;
  {
    ContextVariable<Tracked> v;
    std::coroutine_handle<> parked;
    std::optional<Detached> foreign;
    auto child = [&]() -> Task<> {
      co_await Parked{&parked};
      v.enter(Tracked("child"));
    };
    auto awaiting = [&]() -> Detached {
      ucm::Task<> t = child();
      co_await t;  // through the foreign awaiter: resumed by a helper
      FAIL("the foreign coroutine was destroyed before its resumption ran");
    };
    auto driver = [&]() -> Task<> {
      // A run loop runs on this thread: the child is queued, starts, and parks.
      foreign.emplace(v.run(Tracked("awaiter"), awaiting));
      co_await ucm::when_all([&]() -> Task<> {
        // The child finishes here, with no symmetric transfer left (as after 64 nested
        // hand-offs): its foreign awaiter's helper waits in this thread's run queue.
        ucm::detail::run_queue().budget = 0;
        parked.resume();
        // Destroying the awaiting coroutine destroys the finished Task (a local of it) and,
        // with it, the queued helper: it must leave the queue.
        foreign.reset();
        co_return;
      }());
    };
    ucm::sync_wait(driver());
    CHECK(v.get() == nullptr);
  }
  CHECK(Tracked::live == before);
}

TEST_CASE("a Task destroyed inside a nested sync_wait leaves the outer loop's queue too",
          "[window][task][sync_wait]") {
  // As above, but the awaiting coroutine is destroyed by a task run in a nested loop (sync_wait
  // inside a Task): the helper waits in the outer loop's queue, which the nested loop set aside.
  const int before = Tracked::live;
  {
    ContextVariable<Tracked> v;
    std::coroutine_handle<> parked;
    std::optional<Detached> foreign;
    auto child = [&]() -> Task<> {
      co_await Parked{&parked};
      v.enter(Tracked("child"));
    };
    auto awaiting = [&]() -> Detached {
      ucm::Task<> t = child();
      co_await t;
      FAIL("the foreign coroutine was destroyed before its resumption ran");
    };
    auto driver = [&]() -> Task<> {
      foreign.emplace(v.run(Tracked("awaiter"), awaiting));
      co_await ucm::when_all([&]() -> Task<> {
        ucm::detail::run_queue().budget = 0;
        parked.resume();  // the helper is queued in this loop's queue
        ucm::sync_wait([&]() -> Task<> {
          foreign.reset();  // destroys the finished Task and its queued helper
          co_return;
        }());
        co_return;
      }());
    };
    ucm::sync_wait(driver());
    CHECK(v.get() == nullptr);
  }
  CHECK(Tracked::live == before);
}

// ---- from a review of the above (each failed before its fix)
// -------------------------------------

TEST_CASE("destroying a suspended Task awaited by a foreign coroutine destroys its values outside",
          "[window][task][lifetime]") {
  ContextVariable<int> rid;
  ContextVariable<Span> span;
  std::vector<int> seen;
  std::vector<ContextFrame> captured;
  std::coroutine_handle<> parked;
  auto child = [&]() -> Task<> { co_await Parked{&parked}; };
  {
    auto foreign = [&]() -> Detached {
      ucm::with(rid, 7).with(span, Span(rid, seen, captured)).enter();
      co_await child();
    };
    Detached d = foreign();
    ucm::clear();  // the foreign awaiter's capture now holds the last reference
  }  // the foreign coroutine, then the suspended Task and the helper with the capture, die here
  CHECK(seen == std::vector<int>{0});  // the value's destructor saw the destroying thread's context
  captured.clear();
}

TEST_CASE("a foreign coroutine resumed after the Task it started in ended has a chain of its own",
          "[window][misuse][task]") {
  HandlerGuard guard;
  ContextVariable<int> v;
  std::coroutine_handle<> parked;
  std::optional<Detached> d;
  int seen = -1;
  auto foreign = [&]() -> Detached {
    co_await ucm::propagate(Parked{&parked});
    std::optional<ContextVariableScope<int>> a;
    std::optional<ContextVariableScope<int>> b;
    a.emplace(v, 1);
    b.emplace(v, 2);
    a.reset();  // out of order: in the chain of this resumption, not the ended Task's
    b.reset();
    seen = v.get() == nullptr ? 0 : *v.get();
  };
  auto task = [&]() -> Task<> {
    d.emplace(foreign());
    co_return;
  };
  ucm::sync_wait(task());
  parked.resume();
  CHECK(reports == 2);
  CHECK(seen == 1);  // b restored what it saved: a's frame, kept
  d.reset();
}

namespace {
/// Opens a scope it never closes (open), or closes that scope (!open) and reports what it sees.
struct LaterCoroutine {
  ContextVariable<int> v;
  std::unique_ptr<ContextVariableScope<int>> leaked;
  std::uintptr_t chain_a = 0;
  std::uintptr_t chain_b = 0;
  int seen = -1;
  std::size_t merged = 0;
  Task<> run(bool open) {
    if (open) {
      leaked = std::make_unique<ContextVariableScope<int>>(v, 1);
      chain_a = ucm::detail::slots().chain;
    } else {
      ContextVariableScope own(v, 3);  // its first window: draws its chain id
      chain_b = ucm::detail::slots().chain;
      leaked.reset();  // opened in another coroutine: restores nothing here
      seen = v.get() == nullptr ? 0 : *v.get();
      merged = ContextFrame::inherited_all().size();
    }
    co_return;
  }
};
}  // namespace

TEST_CASE("a scope closed in a later coroutine is never taken for that coroutine's own",
          "[window][misuse][task]") {
  HandlerGuard guard;
  LaterCoroutine c;
  {
    ContextVariableScope outer(c.v, 42);
    ucm::sync_wait(c.run(true));
  }                              // the frame the first coroutine started from is freed here
  ucm::sync_wait(c.run(false));  // likely at the same address (glibc reuses it at once)
  CHECK(c.chain_a != c.chain_b);
  CHECK(c.seen == 3);
  CHECK(reports == 1);
}

TEST_CASE("a scope closed in a later coroutine never restores a merge that has gone",
          "[window][misuse][task]") {
  HandlerGuard guard;
  LaterCoroutine c;
  auto noop = []() -> Task<> { co_return; };
  auto parent = [&]() -> Task<> {
    co_await ucm::when_all(noop(), noop());
    co_await c.run(true);  // starts with the parent's merge view
  };
  ucm::sync_wait(parent());  // the parent's merge block is freed
  ucm::sync_wait(c.run(false));
  CHECK(c.chain_a != c.chain_b);
  CHECK(c.merged == 1);
  CHECK(reports == 1);
}

TEST_CASE("an enter inside a window closed on another thread is released at thread exit",
          "[window][misuse][leak]") {
  HandlerGuard guard;
  const int before = Tracked::live;
  {
    ContextVariable<Tracked> v;
    std::unique_ptr<ContextVariableScope<Tracked>> scope;
    std::thread t([&] {
      scope = std::make_unique<ContextVariableScope<Tracked>>(v, Tracked("scope"));
      v.enter(Tracked("entered"));  // in the scope's level; the thread exits with it
    });
    t.join();
    scope.reset();  // closed on another thread: restores nothing, keeps its frames
  }
  CHECK(reports == 1);
  CHECK(Tracked::live <= before + 1);  // the entered value went with its thread; the scope's
                                       // own value is kept until the process exits
}
