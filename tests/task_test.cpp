// SPDX-License-Identifier: MIT
// Tests of ucm/task.hpp: Task, sync_wait, when_all and propagate, on real threads. Catch2 v2 is
// not thread-safe: code that runs on pool threads records into atomics, and the main thread
// checks them.
#include "ucm/task.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "coroutine_support.hpp"
#include "test_support.hpp"
#include "thread_pool.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextFrameScope;
using ucm::ContextVariable;
using ucm::ContextVariableScope;
using ucm::Task;
using ucm_test::Detached;
using ucm_test::Failures;
using ucm_test::Hop;
using ucm_test::ThreadPool;
using ucm_test::Tracked;

namespace {

/// Records the handle it was given, then resumes it on a pool thread.
struct RecordingHop {
  ThreadPool* pool;
  void** given;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    *given = h.address();
    pool->post([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

/// The thread's raw slots, to check they are left exactly as they were.
struct RawSlots {
  const void* current;
  const void* inherited;
  const void* base;
  const void* owned;
  const void* merged;
  std::uintptr_t returned;
  const void* window;
  static RawSlots now() noexcept {
    const ucm::detail::Slots& s = ucm::detail::slots();
    return {s.current, s.inherited, s.base, s.owned, s.merged, s.returned, s.window};
  }
  friend bool operator==(const RawSlots&, const RawSlots&) = default;
};

bool thread_is_clean() noexcept {
  const RawSlots s = RawSlots::now();
  return s.current == nullptr && s.inherited == nullptr && s.base == nullptr &&
         s.owned == nullptr && s.merged == nullptr && s.returned == 0 && s.window == nullptr;
}

template <class T>
int value_of(const T* p, int none = -1) {
  return p == nullptr ? none : *p;
}

}  // namespace

// ---- basics -------------------------------------------------------------------------------------

TEST_CASE("a Task is lazy and delivers values, references, void and move-only results", "[task]") {
  bool ran = false;
  auto make = [&]() -> Task<int> {
    ran = true;
    co_return 42;
  };
  Task<int> t = make();
  CHECK_FALSE(ran);
  CHECK(ucm::sync_wait(std::move(t)) == 42);
  CHECK(ran);

  int target = 1;
  auto ref = [](int& x) -> Task<int&> { co_return x; };
  int& r = ucm::sync_wait(ref(target));
  CHECK(&r == &target);

  auto unique = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  auto outer = [&]() -> Task<int> {
    std::unique_ptr<int> p = co_await unique();
    Task<int&> lvalue = ref(target);
    int& same = co_await lvalue;  // an lvalue task gives a reference into it
    co_return *p + (&same == &target ? 100 : 0);
  };
  CHECK(ucm::sync_wait(outer()) == 107);

  auto nothing = []() -> Task<> { co_return; };
  ucm::sync_wait(nothing());
  CHECK(thread_is_clean());
}

TEST_CASE("an rvalue task's result is moved out, an lvalue task's is a reference into it",
          "[task]") {
  auto unique = [](int n) -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(n); };
  auto in_task = [&]() -> Task<int> {
    Task<std::unique_ptr<int>> kept = unique(1);
    std::unique_ptr<int>& ref = co_await kept;  // still owned by `kept`
    std::unique_ptr<int> moved = co_await unique(2);
    auto [a, b] = co_await ucm::when_all(unique(3), unique(4));
    co_return *ref + *moved + *a + *b + (ref != nullptr ? 100 : 0);
  };
  CHECK(ucm::sync_wait(in_task()) == 110);
  CHECK(*ucm::sync_wait(unique(5)) == 5);

  // The same from a coroutine type that knows nothing of ucm.
  int sum = 0;
  auto foreign = [&]() -> Detached {
    Task<std::unique_ptr<int>> kept = unique(6);
    std::unique_ptr<int>& ref = co_await kept;
    std::unique_ptr<int> moved = co_await unique(7);
    sum = *ref + *moved + (ref != nullptr ? 100 : 0);
  };
  const Detached d = foreign();
  CHECK(sum == 113);
}

TEST_CASE("a Task captures nothing when created: it starts from its awaiter's context", "[task]") {
  ContextVariable<int> v;
  auto read = [&]() -> Task<int> { co_return value_of(v.get()); };
  Task<int> t = v.run(1, read);  // created while v == 1
  const int seen = v.run(2, [&] { return ucm::sync_wait(std::move(t)); });
  CHECK(seen == 2);
}

TEST_CASE("co_await child is a call: values active in the parent are active in the child",
          "[task]") {
  ContextVariable<std::string> span;
  auto child = [&]() -> Task<bool> {
    co_return *span.get() == "parent" && *span.get_active() == "parent";
  };
  auto parent = [&]() -> Task<bool> {
    ContextVariableScope s(span, "parent");
    co_return co_await child();
  };
  CHECK(ucm::sync_wait(parent()));
  // From a continuation window, an inherited value stays inherited in the child.
  const ContextFrame frame = ContextFrame{}.with(span, "request");
  auto inherited_child = [&]() -> Task<bool> {
    co_return *span.get() == "request" &&
        span.get_active() == nullptr&&* span.get_inherited() == "request";
  };
  CHECK(frame.inherit([&] { return ucm::sync_wait(inherited_child()); }));
}

TEST_CASE("co_await of an empty Task throws", "[task]") {
  auto t = []() -> Task<int> {
    Task<int> empty;
    co_return co_await std::move(empty);
  };
  CHECK_THROWS_AS(ucm::sync_wait(t()), std::logic_error);
  CHECK_THROWS_AS(ucm::sync_wait(Task<int>{}), std::logic_error);
}

// ---- threads ------------------------------------------------------------------------------------

TEST_CASE("a task resumed by a different thread sees its own values after every co_await",
          "[task][threads]") {
  ContextVariable<int> v;
  ContextVariable<std::string> name;
  ThreadPool pool(2);
  Failures failures;
  std::atomic<int> on_pool{0};
  const auto main_id = std::this_thread::get_id();
  auto body = [&]() -> Task<> {
    ContextVariableScope s(v, 1);
    for (int i = 0; i < 20; ++i) {
      co_await Hop{&pool};
      on_pool += std::this_thread::get_id() != main_id;
      EXPECT(failures, value_of(v.get()) == 1 && value_of(v.get_active()) == 1);
      EXPECT(failures, name.get() != nullptr && *name.get() == "n");
    }
    name.enter("entered");
    co_await Hop{&pool};
    EXPECT(failures, *name.get() == "entered" && value_of(v.get()) == 1);
  };
  name.run("n", [&] { ucm::sync_wait(body()); });
  CHECK_NO_FAILURES(failures);
  CHECK(on_pool == 20);
  CHECK(thread_is_clean());
}

TEST_CASE("a ContextVariableScope spanning a co_await that migrates threads restores correctly",
          "[task][threads]") {
  ContextVariable<int> v;
  ThreadPool pool(3);
  Failures failures;
  auto body = [&]() -> Task<> {
    EXPECT(failures, value_of(v.get()) == 0);
    {
      ContextVariableScope outer(v, 1);
      co_await Hop{&pool};
      {
        ContextVariableScope inner(v, 2);
        co_await Hop{&pool};
        EXPECT(failures, value_of(v.get()) == 2);
      }
      EXPECT(failures, value_of(v.get()) == 1);  // restored on whatever thread this is
      co_await Hop{&pool};
      EXPECT(failures, value_of(v.get()) == 1);
    }
    EXPECT(failures, value_of(v.get()) == 0);
    co_await Hop{&pool};
    EXPECT(failures, value_of(v.get()) == 0);
  };
  v.run(0, [&] { ucm::sync_wait(body()); });
  CHECK_NO_FAILURES(failures);
  CHECK(thread_is_clean());
}

TEST_CASE("1,000 concurrent tasks on 4 threads never see each other's values",
          "[task][threads][stress]") {
  ContextVariable<int> request;
  ContextVariable<int> step;
  ContextVariable<std::string> user;
  ThreadPool pool(4);
  Failures failures;
  std::atomic<int> finished{0};

  auto child = [&](int id) -> Task<int> {
    EXPECT(failures, value_of(request.get()) == id);
    step.enter(id * 10);
    co_await Hop{&pool};
    EXPECT(failures, value_of(step.get()) == id * 10 && value_of(request.get()) == id);
    co_return id;
  };
  auto one = [&](int id) -> Task<int> {
    ContextVariableScope r(request, id);
    user.enter("user-" + std::to_string(id));
    co_await Hop{&pool};
    for (int round = 0; round < 3; ++round) {
      EXPECT(failures,
             value_of(request.get()) == id && *user.get() == "user-" + std::to_string(id));
      EXPECT(failures, step.get_active() == nullptr);
      const int got = co_await child(id);
      EXPECT(failures, got == id && value_of(step.get_inherited()) == id * 10 &&
                           step.get_active() == nullptr);
      {
        ContextVariableScope s(step, -id);
        co_await Hop{&pool};
        EXPECT(failures, value_of(step.get()) == -id && value_of(step.get_active()) == -id);
      }
      co_await Hop{&pool};
    }
    ++finished;
    co_return id;
  };
  std::vector<Task<int>> tasks;
  for (int id = 0; id < 1000; ++id) tasks.push_back(one(id));
  const std::vector<int> ids = ucm::sync_wait(ucm::when_all(std::move(tasks)));
  REQUIRE(ids.size() == 1000);
  int out_of_order = 0;
  for (int id = 0; id < 1000; ++id) out_of_order += ids[static_cast<std::size_t>(id)] != id;
  CHECK(out_of_order == 0);
  CHECK(finished == 1000);
  CHECK_NO_FAILURES(failures);
  CHECK(thread_is_clean());
}

TEST_CASE("a pool thread's slots are untouched after it resumed tasks", "[task][threads]") {
  ContextVariable<int> v;
  ThreadPool pool(1);
  Failures failures;
  // The pool thread has a value of its own, entered at its top.
  pool.post([&] { v.enter(99); });
  pool.wait_idle();
  auto task = [&](int i) -> Task<> {
    ContextVariableScope s(v, i);
    co_await Hop{&pool};
    v.enter(-i);
    co_await Hop{&pool};
    EXPECT(failures, value_of(v.get()) == -i);
  };
  for (int i = 0; i < 50; ++i) ucm::sync_wait(task(i));
  std::atomic<int> pool_value{0};
  std::atomic<bool> pool_active{false};
  pool.post([&] {
    pool_value = value_of(v.get());
    pool_active = v.get_active() != nullptr;
  });
  pool.wait_idle();
  CHECK(pool_value == 99);
  CHECK(pool_active);

  // A task posted without context sees nothing, on a pool thread that has nothing.
  ThreadPool clean(2);
  auto hopper = [&](int i) -> Task<> {
    v.enter(i);
    co_await Hop{&clean};
    co_await Hop{&clean};
  };
  for (int i = 0; i < 50; ++i) {
    ucm::sync_wait(hopper(i));
    clean.post([&] { EXPECT(failures, thread_is_clean() && v.get() == nullptr); });
  }
  clean.wait_idle();
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("a task resumed inline by another task keeps both contexts apart", "[task]") {
  // An event that resumes its waiter inside set(), on the setter's thread and stack.
  struct Event {
    std::coroutine_handle<> waiter;
    void set() {
      if (auto h = std::exchange(waiter, nullptr)) h.resume();
    }
    struct Awaiter {
      Event* event;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) const noexcept { event->waiter = h; }
      void await_resume() const noexcept {}
    };
    Awaiter operator co_await() noexcept { return Awaiter{this}; }
  };
  ContextVariable<int> v;
  Event event;
  auto child = [&](int expected) -> Task<bool> {
    const bool ok = value_of(v.get()) == expected;
    v.enter(expected * 10);
    co_return ok;
  };
  auto waiter = [&]() -> Task<bool> {
    ContextVariableScope s(v, 1);
    co_await event;
    bool ok = value_of(v.get()) == 1;
    ok = ok && co_await child(1);
    co_return ok&& value_of(v.get()) == 1 && value_of(v.get_inherited()) == 10;
  };
  auto setter = [&]() -> Task<bool> {
    ContextVariableScope s(v, 2);
    event.set();  // runs the waiter right here
    bool ok = value_of(v.get()) == 2 && value_of(v.get_active()) == 2;
    ok = ok && co_await child(2);
    co_return ok&& value_of(v.get()) == 2;
  };
  auto [a, b] = ucm::sync_wait(ucm::when_all(waiter(), setter()));
  CHECK(a);
  CHECK(b);
  CHECK(thread_is_clean());
}

namespace {
/// Declines to suspend (await_suspend returns false), or throws from await_suspend.
struct Declines {
  bool throws = false;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<>) const {
    if (throws) throw std::runtime_error("await_suspend");
    return false;
  }
  int await_resume() const noexcept { return 3; }
};
/// Resumes the coroutine at once by symmetric transfer to itself.
struct ToSelf {
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) const noexcept { return h; }
  void await_resume() const noexcept {}
};
}  // namespace

TEST_CASE("awaitables that do not suspend, decline to, or throw leave the context as it was",
          "[task][propagate]") {
  ContextVariable<int> v;
  // (No co_await inside Catch's macros: g++ expands their argument more than once.)
  auto body = [&]() -> Task<> {
    ContextVariableScope s(v, 1);
    co_await std::suspend_never{};
    CHECK(*v.get() == 1);
    const int declined = co_await Declines{};
    CHECK(declined == 3);
    CHECK(*v.get_active() == 1);
    co_await ToSelf{};
    CHECK(*v.get() == 1);
    bool threw = false;
    try {
      (void)co_await Declines{true};
    } catch (const std::runtime_error&) {
      threw = true;
    }
    CHECK(threw);
    CHECK(*v.get() == 1);
    v.enter(2);
    const int propagated = co_await ucm::propagate(Declines{});
    CHECK(propagated == 3);
    CHECK(*v.get() == 2);
  };
  v.run(0, [&] {
    const RawSlots before = RawSlots::now();
    ucm::sync_wait(body());
    CHECK(RawSlots::now() == before);
  });
  // The same awaitables through propagate in a user-defined coroutine.
  int seen = 0;
  auto user = [&]() -> Detached {
    seen += co_await ucm::propagate(Declines{});
    co_await ucm::propagate(ToSelf{});
    seen += value_of(v.get());
  };
  Detached d = v.run(4, user);
  CHECK(seen == 7);
}

TEST_CASE("ucm::clear inside a task clears only the task's context", "[task]") {
  ContextVariable<int> v;
  auto child = [&]() -> Task<bool> {
    ucm::clear();
    co_return v.get() == nullptr;
  };
  auto parent = [&]() -> Task<bool> {
    ContextVariableScope s(v, 1);
    const bool cleared = co_await child();
    co_return cleared&&* v.get() == 1;
  };
  v.run(9, [&] {
    CHECK(ucm::sync_wait(parent()));
    CHECK(*v.get() == 9);
  });
}

// ---- the stack ----------------------------------------------------------------------------------

namespace {
/// The stack pointer where it is called (a normal function, so it is on the thread's stack even
/// when called from a coroutine body).
[[gnu::noinline]] std::uintptr_t stack_here() noexcept {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}
std::uintptr_t deepest = 0;  // stack_here() at the innermost level of nested(), pool-less runs

Task<int> nested(int n, ContextVariable<int>& depth, ThreadPool* pool, Failures& failures) {
  if (n == 0) {
    if (pool == nullptr) deepest = stack_here();
    if (pool != nullptr) co_await Hop{pool};  // complete the whole chain on a pool thread
    co_return 0;
  }
  if (n % 1000 == 0) depth.enter(n);
  const int below = co_await nested(n - 1, depth, pool, failures);
  // What this level or the nearest level above it (a multiple of 1000) entered.
  EXPECT(failures, value_of(depth.get()) == (n + 999) / 1000 * 1000);
  co_return below + 1;
}
}  // namespace

TEST_CASE("20,000 nested co_awaits do not grow the stack", "[task][stack]") {
  ContextVariable<int> depth;
  Failures failures;
  const std::uintptr_t top = stack_here();
  CHECK(ucm::sync_wait(nested(20'000, depth, nullptr, failures)) == 20'000);
  // 20,000 levels of resume calls would take megabytes; the trampoline bounds it to its budget
  // of 64 hand-offs (measured: 0.5 KiB at clang -O2, 15 KiB at g++ -O0, 45 KiB under ASan).
  CHECK(top - deepest < 128 * 1024);
  ThreadPool pool(1);
  CHECK(ucm::sync_wait(nested(20'000, depth, &pool, failures)) == 20'000);
  CHECK_NO_FAILURES(failures);
  // A long loop of awaits, and a wide when_all, too.
  auto leaf = []() -> Task<int> { co_return 1; };
  auto loop = [&]() -> Task<int> {
    int sum = 0;
    for (int i = 0; i < 100'000; ++i) sum += co_await leaf();
    co_return sum;
  };
  CHECK(ucm::sync_wait(loop()) == 100'000);
  std::vector<Task<int>> wide;
  for (int i = 0; i < 20'000; ++i) wide.push_back(leaf());
  CHECK(ucm::sync_wait(ucm::when_all(std::move(wide))).size() == 20'000);
}

// ---- exceptions ---------------------------------------------------------------------------------

TEST_CASE("an exception thrown in a child arrives in the parent with the parent's context",
          "[task][exceptions][threads]") {
  ContextVariable<int> v;
  ContextVariable<std::string> span;
  ThreadPool pool(2);
  Failures failures;
  std::atomic<int> caught{0};
  auto thrower = [&]() -> Task<int> {
    span.enter("child");  // at the top of the child: lasts until it ends
    ContextVariableScope s(v, 2);
    co_await Hop{&pool};
    throw std::runtime_error("boom");
  };
  auto parent = [&]() -> Task<> {
    ContextVariableScope s(v, 1);
    try {
      (void)co_await thrower();
    } catch (const std::runtime_error& e) {
      ++caught;
      EXPECT(failures, std::string(e.what()) == "boom");
      EXPECT(failures, value_of(v.get()) == 1 && value_of(v.get_active()) == 1);
      // The return path: what the child entered before throwing.
      EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "child");
      EXPECT(failures, span.get_active() == nullptr);
    }
    co_await Hop{&pool};
    EXPECT(failures, value_of(v.get()) == 1);
  };
  ucm::sync_wait(parent());
  CHECK(caught == 1);
  CHECK_NO_FAILURES(failures);

  auto direct = [&]() -> Task<> {
    ContextVariableScope s(v, 5);
    throw std::logic_error("direct");
    co_return;
  };
  CHECK_THROWS_AS(ucm::sync_wait(direct()), std::logic_error);
  CHECK(thread_is_clean());
}

// ---- the return path ----------------------------------------------------------------------------

TEST_CASE("after co_await child, get_inherited sees the child's values and get_active the parent's",
          "[task][return-path]") {
  ContextVariable<std::string> span;
  ContextVariable<std::string> other;
  auto child = [&]() -> Task<> {
    span.enter("child-span");
    other.enter("child-other");
    co_return;
  };
  auto parent = [&]() -> Task<> {
    ContextVariableScope s(span, "parent-span");
    co_await child();
    CHECK(*span.get() == "parent-span");
    CHECK(*span.get_active() == "parent-span");
    CHECK(*span.get_inherited() == "child-span");
    // get() never falls back to the child's value: only get_inherited() sees it.
    CHECK(other.get() == nullptr);
    CHECK(*other.get_inherited() == "child-other");
    CHECK(other.get_active() == nullptr);
    CHECK(*ContextFrame::inherited().get(span) == "child-span");
    CHECK(ContextFrame::inherited_all().size() == 1);
    CHECK(ContextFrame::inherited_all()[0] == ContextFrame::inherited());
  };
  ucm::sync_wait(parent());
  CHECK(span.get() == nullptr);
  CHECK(other.get() == nullptr);
}

TEST_CASE("co_await of a Task that already completed returns its result and keeps inherited",
          "[task][return-path]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> span;
    auto child = [&]() -> Task<int> {
      span.enter(Tracked("child"));
      co_return 7;
    };
    auto other = [&]() -> Task<> {
      span.enter(Tracked("other"));
      co_return;
    };
    auto parent = [&]() -> Task<> {
      Task<int> done = child();
      CHECK(co_await done == 7);
      CHECK(span.get_inherited()->text == "child");
      {
        ContextVariableScope scope(span, Tracked("scope"));
        co_await other();
        CHECK(span.get_inherited()->text == "other");
      }
      // Leaving the scope restored the return path that happened before it.
      CHECK(span.get_inherited()->text == "child");
      CHECK(co_await done == 7);  // nothing runs: inherited stays "child"
      CHECK(span.get_inherited()->text == "child");
      CHECK(co_await std::move(done) == 7);
      CHECK(span.get_inherited()->text == "child");
    };
    ucm::sync_wait(parent());
    // After a when_all, `inherited` is the first branch's frame, held only by the merge: a
    // completed Task awaited then keeps it (and drops the merge).
    auto after_merge = [&]() -> Task<> {
      Task<int> done = child();
      co_await done;
      co_await ucm::when_all(other(), child());
      CHECK(ContextFrame::inherited_all().size() == 2);
      CHECK(co_await done == 7);
      CHECK(span.get_inherited()->text == "other");
      CHECK(ContextFrame::inherited_all().size() == 1);
    };
    ucm::sync_wait(after_merge());
    // sync_wait of a completed task returns its result as well.
    auto completed = [&]() -> Task<int> {
      Task<int> t = child();
      co_await t;
      co_return ucm::sync_wait(std::move(t));
    };
    CHECK(ucm::sync_wait(completed()) == 7);
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("the inherited frame lasts until the next co_await of a Task or the end of its window",
          "[task][return-path][threads]") {
  ContextVariable<std::string> span;
  ThreadPool pool(2);
  Failures failures;
  auto setting = [&](std::string value) -> Task<> {
    span.enter(std::move(value));
    co_return;
  };
  auto plain = [&]() -> Task<> { co_return; };
  auto parent = [&]() -> Task<> {
    {
      ContextVariableScope s(span, "scoped");
      co_await setting("first");
    }
    // Leaving the scope undid the return path that happened in it: nothing outlives its window.
    EXPECT(failures, span.get_inherited() == nullptr);
    EXPECT(failures, span.get() == nullptr);
    co_await setting("first");
    EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "first");
    EXPECT(failures, span.get() == nullptr);  // never falls back to the child's value
    co_await Hop{&pool};  // a foreign awaitable is not a Task: the inherited frame stays
    EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "first");
    co_await setting("second");
    EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "second");
    // A child that sets nothing ends with the frame it started from: our current frame.
    co_await plain();
    EXPECT(failures, span.get_inherited() == nullptr);
    ContextVariableScope s(span, "mine");
    co_await plain();
    EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "mine");
  };
  ucm::sync_wait(parent());
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("a continuation window spanning co_await of a child restores the inherited frame",
          "[task][return-path]") {
  ContextVariable<std::string> span;
  auto setting = [&](std::string value) -> Task<> {
    span.enter(std::move(value));
    co_return;
  };
  auto parent = [&]() -> Task<> {
    co_await setting("before");
    {
      ContextFrameScope window(ContextFrame{}.with(span, "window"));
      co_await setting("inside");
      CHECK(*span.get_inherited() == "inside");
      co_await setting("inside again");
    }
    // The window restores what it saved: the frame that flowed in before it.
    CHECK(*span.get_inherited() == "before");
  };
  ucm::sync_wait(parent());
}

TEST_CASE("awaiting many children that enter values keeps only the last one alive",
          "[task][return-path]") {
  ContextVariable<Tracked> v;
  const int before = Tracked::live;
  const int copies_before = Tracked::copies;
  auto child = [&](int i) -> Task<> {
    v.enter(Tracked("value-" + std::to_string(i)));
    co_return;
  };
  auto parent = [&]() -> Task<int> {
    int most = 0;
    for (int i = 0; i < 1000; ++i) {
      co_await child(i);
      most = std::max(most, Tracked::live - before);
    }
    CHECK(v.get_inherited()->text == "value-999");
    co_return most;
  };
  CHECK(ucm::sync_wait(parent()) <= 2);
  CHECK(Tracked::live == before);
  CHECK(Tracked::copies == copies_before);
}

// ---- merging ------------------------------------------------------------------------------------

TEST_CASE("after when_all, inherited_all holds every branch's final frame in argument order",
          "[task][merge][threads]") {
  ContextVariable<std::string> span;
  ContextVariable<int> request;
  ThreadPool pool(3);
  Failures failures;
  auto branch = [&](std::string name, int hops) -> Task<std::string> {
    EXPECT(failures, value_of(request.get()) == 7 && value_of(request.get_active()) == 7);
    for (int i = 0; i < hops; ++i) co_await Hop{&pool};
    span.enter(name);
    co_return name;
  };
  auto nothing = [&]() -> Task<> { co_return; };
  auto parent = [&]() -> Task<> {
    ContextVariableScope r(request, 7);
    auto [a, b, c, d] =
        co_await ucm::when_all(branch("a", 3), branch("b", 0), branch("c", 1), nothing());
    EXPECT(failures, a == "a" && b == "b" && c == "c");
    static_assert(std::is_same_v<decltype(d), std::monostate>);
    const std::span<const ContextFrame> all = ContextFrame::inherited_all();
    EXPECT(failures, all.size() == 4);
    if (all.size() == 4) {
      EXPECT(failures,
             *all[0].get(span) == "a" && *all[1].get(span) == "b" && *all[2].get(span) == "c");
      EXPECT(failures, all[3].get(span) == nullptr);  // the void branch set nothing
      EXPECT(failures, all[3].get(request) != nullptr && *all[3].get(request) == 7);
    }
    EXPECT(failures, ContextFrame::inherited() == all[0]);
    EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "a");
    EXPECT(failures, span.get() == nullptr);  // never falls back to a branch's value
    EXPECT(failures, span.get_active() == nullptr);
    EXPECT(failures, value_of(request.get_active()) == 7);
    // The merge lasts until the next co_await of a Task.
    co_await Hop{&pool};
    EXPECT(failures, ContextFrame::inherited_all().size() == 4);
    co_await nothing();
    EXPECT(failures, ContextFrame::inherited_all().size() == 1);
  };
  ucm::sync_wait(parent());
  CHECK_NO_FAILURES(failures);
  CHECK(thread_is_clean());
}

TEST_CASE("a continuation window spanning when_all restores the merge that flowed in",
          "[task][merge][threads]") {
  ContextVariable<std::string> span;
  ThreadPool pool(2);
  Failures failures;
  auto branch = [&](std::string name, int hops) -> Task<> {
    for (int i = 0; i < hops; ++i) co_await Hop{&pool};
    span.enter(std::move(name));
  };
  auto names = [&]() {
    std::string out;
    for (const ContextFrame& f : ContextFrame::inherited_all()) {
      const std::string* v = f.get(span);
      out += v == nullptr ? "-" : *v;
    }
    return out;
  };
  auto parent = [&]() -> Task<> {
    co_await ucm::when_all(branch("a", 1), branch("b", 0));
    EXPECT(failures, names() == "ab");
    {
      // The window saves the merge view; the merges inside replace it (and are replaced in
      // turn) while the window is open, so each must stay valid until the coroutine ends.
      ContextFrameScope window(ContextFrame{}.with(span, "window"));
      EXPECT(failures, names() == "window");
      co_await ucm::when_all(branch("c", 2), branch("d", 0), branch("e", 1));
      EXPECT(failures, names() == "cde");
      co_await ucm::when_all(branch("f", 1));
      EXPECT(failures, names() == "f");
    }
    EXPECT(failures, names() == "ab");  // restored: the first merge, still alive
    co_await Hop{&pool};
    EXPECT(failures, names() == "ab");
  };
  ucm::sync_wait(parent());
  CHECK_NO_FAILURES(failures);
  CHECK(thread_is_clean());
}

TEST_CASE("when_all waits for every branch and rethrows the first exception in argument order",
          "[task][merge][exceptions][threads]") {
  ContextVariable<std::string> span;
  ThreadPool pool(2);
  std::atomic<int> finished{0};
  Failures failures;
  auto ok = [&](int hops) -> Task<int> {
    for (int i = 0; i < hops; ++i) co_await Hop{&pool};
    span.enter("ok");
    ++finished;
    co_return 1;
  };
  auto fails = [&](std::string what, int hops) -> Task<int> {
    span.enter("failing " + what);
    for (int i = 0; i < hops; ++i) co_await Hop{&pool};
    ++finished;
    throw std::runtime_error(what);
  };
  auto parent = [&]() -> Task<> {
    try {
      // The second branch throws last, the third first: the second's exception wins.
      (void)co_await ucm::when_all(ok(3), fails("second", 4), fails("third", 0), ok(5));
      failures.check(false, "the when_all to rethrow a branch's exception", __LINE__);
    } catch (const std::runtime_error& e) {
      EXPECT(failures, std::string(e.what()) == "second");
    }
    EXPECT(failures, finished == 4);
    const auto all = ContextFrame::inherited_all();
    EXPECT(failures, all.size() == 4);
    if (all.size() == 4) {
      EXPECT(failures,
             *all[1].get(span) == "failing second" && *all[2].get(span) == "failing third");
      EXPECT(failures, *all[0].get(span) == "ok");
    }
  };
  ucm::sync_wait(parent());
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("when_all over a vector returns results in order, and a vector of void gives void",
          "[task][merge]") {
  ContextVariable<int> v;
  auto square = [&](int i) -> Task<int> {
    v.enter(i);
    co_return i* i;
  };
  auto parent = [&]() -> Task<> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(square(i));
    const std::vector<int> squares = co_await ucm::when_all(std::move(tasks));
    CHECK(squares == std::vector<int>{0, 1, 4, 9, 16});
    const auto all = ContextFrame::inherited_all();
    REQUIRE(all.size() == 5);
    for (int i = 0; i < 5; ++i) CHECK(*all[static_cast<std::size_t>(i)].get(v) == i);

    int count = 0;
    auto bump = [&]() -> Task<> {
      ++count;
      co_return;
    };
    std::vector<Task<>> voids;
    voids.push_back(bump());
    voids.push_back(bump());
    static_assert(std::is_same_v<decltype(ucm::when_all(std::move(voids))), Task<void>>);
    co_await ucm::when_all(std::move(voids));
    CHECK(count == 2);

    int a = 1;
    int b = 2;
    auto ref = [](int& x) -> Task<int&> { co_return x; };
    std::vector<Task<int&>> refs;
    refs.push_back(ref(a));
    refs.push_back(ref(b));
    auto got = co_await ucm::when_all(std::move(refs));
    CHECK(&got[0].get() == &a);
    CHECK(&got[1].get() == &b);
    auto [ra, rb] = co_await ucm::when_all(ref(a), ref(b));
    CHECK(&ra == &a);
    CHECK(&rb == &b);

    // An empty when_all completes at once; inherited_all is never empty.
    const std::vector<int> none = co_await ucm::when_all(std::vector<Task<int>>{});
    CHECK(none.empty());
    CHECK(ContextFrame::inherited_all().size() == 1);
    (void)co_await ucm::when_all();
    CHECK(ContextFrame::inherited_all().size() == 1);
  };
  ucm::sync_wait(parent());
}

TEST_CASE("inherited_all outside a merge holds exactly inherited()", "[task][merge]") {
  ContextVariable<int> v;
  CHECK(ContextFrame::inherited_all().size() == 1);
  const ContextFrame frame = ContextFrame{}.with(v, 1);
  frame.inherit([&] {
    CHECK(ContextFrame::inherited_all().size() == 1);
    CHECK(ContextFrame::inherited_all()[0] == frame);
  });
}

// ---- enter, destruction, sync_wait --------------------------------------------------------------

TEST_CASE("enter inside a coroutine lasts until it completes and never leaks", "[task][enter]") {
  ContextVariable<Tracked> v;
  ThreadPool pool(1);
  const int before = Tracked::live;
  Failures failures;
  auto child = [&]() -> Task<> {
    v.enter(Tracked("child"));
    co_await Hop{&pool};
    EXPECT(failures, v.get()->text == "child");
  };
  auto parent = [&]() -> Task<> {
    ContextVariableScope s(v, Tracked("parent"));
    co_await child();
    EXPECT(failures, v.get()->text == "parent" && v.get_active()->text == "parent");
    EXPECT(failures, v.get_inherited()->text == "child");
  };
  ucm::sync_wait(parent());
  CHECK_NO_FAILURES(failures);
  CHECK(v.get() == nullptr);
  CHECK(Tracked::live == before);
  std::atomic<bool> pool_clean{false};
  pool.post([&] { pool_clean = thread_is_clean(); });
  pool.wait_idle();
  CHECK(pool_clean);
}

namespace {
/// Records, when destroyed, what a variable reads.
struct Probe {
  ContextVariable<int>* variable;
  int* seen;
  ~Probe() { *seen = value_of(variable->get()); }
};
struct Park {
  std::coroutine_handle<>* parked;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { *parked = h; }
  void await_resume() const noexcept {}
};
}  // namespace

TEST_CASE("destroying a suspended Task runs its scopes in its own context", "[task][destroy]") {
  ContextVariable<int> v;
  ContextVariable<Tracked> t;
  const int before = Tracked::live;
  std::coroutine_handle<> parked;
  int child_saw = 0;
  int parent_saw = 0;
  auto child = [&]() -> Task<> {
    ContextVariableScope a(v, 5);
    Probe probe{&v, &child_saw};
    ContextVariableScope b(v, 6);
    t.enter(Tracked("child"));
    co_await Park{&parked};
  };
  auto parent = [&]() -> Task<> {
    ContextVariableScope a(v, 1);
    Probe probe{&v, &parent_saw};
    ContextVariableScope b(v, 2);
    co_await child();
  };
  Task<> task = parent();
  auto starter = [](Task<>& awaited) -> Detached { co_await awaited; };
  Detached started = v.run(100, starter, task);
  CHECK(parked);  // suspended inside the child
  const RawSlots outside = v.run(200, [&] {
    const RawSlots mine = RawSlots::now();
    task = Task<>{};  // destroys parent and child: their scopes run in their own contexts
    CHECK(RawSlots::now() == mine);
    CHECK(*v.get() == 200);
    return mine;
  });
  (void)outside;
  CHECK(child_saw == 5);
  CHECK(parent_saw == 1);
  CHECK(Tracked::live == before);
  CHECK(thread_is_clean());
}

TEST_CASE("sync_wait leaves the caller's slots exactly as they were", "[task][sync_wait]") {
  ContextVariable<int> v;
  ContextVariable<std::string> s;
  ThreadPool pool(2);
  auto child = [&]() -> Task<int> {
    v.enter(3);
    co_await Hop{&pool};
    co_return 3;
  };
  auto body = [&]() -> Task<int> {
    ContextVariableScope scope(s, "inside");
    v.enter(2);
    int n = co_await child();
    auto [a, b] = co_await ucm::when_all(child(), child());
    co_await Hop{&pool};
    co_return n + a + b;
  };
  const ContextFrame frame = ContextFrame{}.with(s, "frame");
  frame.inherit([&] {
    ContextVariableScope scope(v, 1);
    v.enter(10);
    const RawSlots before = RawSlots::now();
    CHECK(ucm::sync_wait(body()) == 9);
    CHECK(RawSlots::now() == before);
    CHECK(*v.get() == 10);
    CHECK(*s.get() == "frame");
  });
  CHECK(thread_is_clean());
}

TEST_CASE("sync_wait inside a Task runs a nested loop", "[task][sync_wait]") {
  ContextVariable<int> v;
  auto leaf = [&]() -> Task<int> { co_return value_of(v.get()); };
  auto outer = [&]() -> Task<int> {
    ContextVariableScope s(v, 4);
    const int inner = ucm::sync_wait(leaf());  // blocks this coroutine's thread
    co_return inner + co_await leaf();
  };
  CHECK(ucm::sync_wait(outer()) == 8);
}

TEST_CASE("sync_wait inside a Task leaves what the outer loop had queued to that loop",
          "[task][sync_wait]") {
  // when_all queues every branch before the first runs, so while branch 1 blocks in sync_wait the
  // outer loop's queue holds branches 2 and 3: the nested loop must run only its own task, and
  // the outer loop must still run the others afterwards, each in its own context.
  ContextVariable<int> v;
  std::vector<std::string> log;
  auto leaf = [&]() -> Task<int> {
    log.push_back("leaf " + std::to_string(value_of(v.get())));
    co_return value_of(v.get());
  };
  auto first = [&]() -> Task<int> {
    ContextVariableScope s(v, 1);
    log.emplace_back("first begins");
    const int inner = ucm::sync_wait(leaf());
    log.emplace_back("first ends");
    co_return inner;
  };
  auto other = [&](int n) -> Task<int> {
    ContextVariableScope s(v, n);
    log.push_back("other " + std::to_string(value_of(v.get())));
    co_return value_of(v.get());
  };
  const auto [a, b, c] = ucm::sync_wait(ucm::when_all(first(), other(2), other(3)));
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(c == 3);
  CHECK(log ==
        std::vector<std::string>{"first begins", "leaf 1", "first ends", "other 2", "other 3"});
  CHECK(thread_is_clean());
}

// ---- propagate ----------------------------------------------------------------------------------

TEST_CASE("propagate keeps a user-defined coroutine's context across a thread hop",
          "[task][propagate][threads]") {
  ContextVariable<int> v;
  ThreadPool pool(2);
  Failures failures;
  std::atomic<int> done{0};
  std::vector<void*> given(21, nullptr);  // each coroutine writes its own element
  // A foreign coroutine has no slots of its own: what it sees is what the thread has, and
  // propagate carries that across each hop. (A scope spanning a co_await would stay open on the
  // thread that started it: use a ucm::Task for that.)
  auto user = [&](int id) -> Detached {
    EXPECT(failures, value_of(v.get()) == id);
    co_await ucm::propagate(Hop{&pool});
    EXPECT(failures, value_of(v.get()) == id && value_of(v.get_active()) == id);
    v.enter(id * 10);  // lasts across the next hop: the capture holds it
    co_await ucm::propagate(RecordingHop{&pool, &given[static_cast<std::size_t>(id)]});
    EXPECT(failures, value_of(v.get()) == id * 10 && value_of(v.get_active()) == id * 10);
    {
      ContextVariableScope s(v, -id);  // a scope that closes before the next co_await is fine
      EXPECT(failures, value_of(v.get()) == -id);
    }
    co_await ucm::propagate(Hop{&pool});
    EXPECT(failures, value_of(v.get()) == id * 10);
    ++done;
  };
  std::vector<Detached> running;
  for (int id = 1; id <= 20; ++id) running.push_back(v.run(id, user, id));
  pool.wait_idle();
  CHECK(done == 20);
  // The awaitable got a resumption helper, not the coroutine's own handle.
  for (int id = 1; id <= 20; ++id) {
    const void* g = given[static_cast<std::size_t>(id)];
    CHECK(g != nullptr);
    CHECK(g != running[static_cast<std::size_t>(id - 1)].handle.address());
  }
  for (int i = 0; i < 4; ++i) pool.post([&] { EXPECT(failures, thread_is_clean()); });
  pool.wait_idle();
  CHECK_NO_FAILURES(failures);
  CHECK(thread_is_clean());
}

TEST_CASE("propagate in a Task is the Task's own propagation", "[task][propagate][threads]") {
  ContextVariable<int> v;
  ThreadPool pool(2);
  Failures failures;
  auto leaf = [&]() -> Task<int> { co_return value_of(v.get()); };
  auto body = [&]() -> Task<> {
    ContextVariableScope s(v, 1);
    co_await ucm::propagate(Hop{&pool});
    EXPECT(failures, value_of(v.get()) == 1);
    EXPECT(failures, co_await ucm::propagate(leaf()) == 1);
  };
  ucm::sync_wait(body());
  CHECK_NO_FAILURES(failures);
}

namespace {
/// An awaitable that hands control to another coroutine (symmetric transfer), which later resumes
/// the handle it was given from a pool thread: the resumed handle is not the awaiter's own.
struct Mailbox {
  std::coroutine_handle<> letter;
  std::coroutine_handle<> postman;
};
struct SendVia {
  Mailbox* box;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) const noexcept {
    box->letter = h;
    return std::exchange(box->postman, nullptr);
  }
  void await_resume() const noexcept {}
};
struct WaitForLetter {
  Mailbox* box;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { box->postman = h; }
  void await_resume() const noexcept {}
};
}  // namespace

TEST_CASE("an awaitable that transfers to another coroutine, which resumes a different handle",
          "[task][propagate][threads]") {
  ContextVariable<int> v;
  ThreadPool pool(2);
  Failures failures;
  std::atomic<int> postman_saw{-2};
  auto postman = [&](Mailbox& box) -> Detached {
    co_await WaitForLetter{&box};
    postman_saw = value_of(v.get());  // runs from the awaiter's await_suspend: the Task's context
    pool.post([h = box.letter] { h.resume(); });
  };

  Mailbox in_task;
  Detached p1 = v.run(-1, postman, in_task);  // waits for a letter
  auto task = [&]() -> Task<> {
    ContextVariableScope s(v, 1);
    co_await SendVia{&in_task};
    EXPECT(failures, value_of(v.get()) == 1);
  };
  v.run(5, [&] { ucm::sync_wait(task()); });
  CHECK_NO_FAILURES(failures);
  CHECK(postman_saw == 1);  // the task's value: await_suspend runs in the Task's context

  Mailbox in_user;
  Detached p2 = postman(in_user);
  std::atomic<int> user_saw{0};
  auto user = [&]() -> Detached {
    v.enter(2);  // in the caller's window; the capture keeps it
    co_await ucm::propagate(SendVia{&in_user});
    user_saw = value_of(v.get());
  };
  Detached u = v.run(7, user);
  pool.wait_idle();
  CHECK(user_saw == 2);
  CHECK(thread_is_clean());
}

TEST_CASE("a Task awaited from a user-defined coroutine starts from its context and returns",
          "[task][propagate][threads]") {
  ContextVariable<int> v;
  ContextVariable<std::string> span;
  ThreadPool pool(2);
  Failures failures;
  std::atomic<int> done{0};
  auto child = [&]() -> Task<int> {
    EXPECT(failures, value_of(v.get()) == 1);
    span.enter("child");
    co_await Hop{&pool};
    co_return 5;
  };
  auto user = [&]() -> Detached {
    const int r = co_await child();  // resumed on a pool thread, with its context
    EXPECT(failures, r == 5 && value_of(v.get()) == 1 && value_of(v.get_active()) == 1);
    EXPECT(failures, span.get_inherited() != nullptr && *span.get_inherited() == "child");
    auto [a, b] = co_await ucm::when_all(child(), child());
    EXPECT(failures, a + b == 10 && ContextFrame::inherited_all().size() == 2);
    EXPECT(failures, value_of(v.get()) == 1);
    ++done;
  };
  Detached d = v.run(1, user);
  pool.wait_idle();
  CHECK(done == 1);
  for (int i = 0; i < 4; ++i) pool.post([&] { EXPECT(failures, thread_is_clean()); });
  pool.wait_idle();
  CHECK_NO_FAILURES(failures);
}
