// SPDX-License-Identifier: MIT
// A thread's reserved references (detail::ThreadContext::reserved): capturing the current frame,
// copying a handle and dropping one on the thread that holds the reservation cost no atomic
// operation. What must never change with it: a frame's values die exactly when its last
// reference goes, whichever thread drops it and whatever the reserving thread does next (even
// when it blocks), never later; and never earlier. Each test observes the destruction of values
// with per-test counters, at the moment it must happen. Run under AddressSanitizer (a reference
// counted once too few is a use after free), LeakSanitizer (once too many is a leak) and
// ThreadSanitizer (handles moving between the owner and four other threads).
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "coroutine_support.hpp"
#include "test_support.hpp"
#include "thread_pool.hpp"
#include "ucm/task.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;
using ucm::ContextVariableScope;
using ucm_test::Failures;

namespace {

/// A value that counts its destructions in a counter of the test's own (moved-from values don't).
struct Counted {
  std::atomic<int>* destroyed;
  int id = 0;
  Counted(std::atomic<int>* d, int i) noexcept : destroyed(d), id(i) {}
  Counted(Counted&& other) noexcept
      : destroyed(std::exchange(other.destroyed, nullptr)), id(other.id) {}
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  Counted& operator=(Counted&&) = delete;
  ~Counted() {
    if (destroyed != nullptr) ++*destroyed;
  }
};

/// A one-shot gate between two threads.
class Gate {
 public:
  void open() {
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace

TEST_CASE("captures and drops on one thread leave the values to die when their window closes",
          "[reservation]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  {
    const ContextVariableScope scope(v, Counted(&destroyed, 1));
    for (int i = 0; i < 1000; ++i) {
      ContextFrame a = ContextFrame::current();
      const ContextFrame b = a;               // NOLINT(performance-unnecessary-copy-initialization)
      std::vector<ContextFrame> many(40, a);  // more than one reservation's batch at once
      a = ContextFrame{};
      CHECK(b.get(v)->id == 1);
    }
    CHECK(destroyed == 0);
  }
  CHECK(destroyed == 1);  // at the scope's exit: no reference was left in reserve
}

TEST_CASE(
    "a frame captured on one thread dies on the thread that drops it last, while the first "
    "one blocks",
    "[reservation][threads]") {
  // What biased reference counting would get wrong: the capturing thread has moved on and waits;
  // nothing it does later may be needed to destroy the values.
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> destroyed{0};
    ContextVariable<Counted> v;
    Gate handed;
    Gate checked;
    std::optional<ContextFrame> slot;
    Failures failures;
    std::thread owner([&] {
      {
        const ContextVariableScope scope(v, Counted(&destroyed, 2));
        const ContextFrame keep = ContextFrame::current();  // reserved here
        slot = ContextFrame::current();                     // lent from the reservation
        EXPECT(failures, keep.get(v)->id == 2);
      }
      EXPECT(failures, destroyed == 0);  // the other thread's handle still holds the values
      handed.open();
      checked.wait();  // blocked until the other thread has checked
    });
    std::thread other([&] {
      handed.wait();
      EXPECT(failures, slot->get(v)->id == 2);
      slot.reset();                      // the last reference
      EXPECT(failures, destroyed == 1);  // destroyed here and now, not by the blocked owner
      checked.open();
    });
    other.join();
    owner.join();
    CHECK_NO_FAILURES(failures);
    CHECK(destroyed == 1);
  }
}

TEST_CASE("handles dropped on another thread first leave the values to the reserving window",
          "[reservation][threads]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  {
    const ContextVariableScope scope(v, Counted(&destroyed, 3));
    std::vector<ContextFrame> handles;
    for (int i = 0; i < 100; ++i) handles.push_back(ContextFrame::current());
    std::thread other([moved = std::move(handles)]() mutable { moved.clear(); });
    other.join();
    CHECK(destroyed == 0);  // the reservation and the scope still hold the frame
    ContextFrame again = ContextFrame::current();
    CHECK(again.get(v)->id == 3);
  }
  CHECK(destroyed == 1);
}

TEST_CASE("handles taken on other threads and dropped on the reserving one are counted once",
          "[reservation][threads]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  std::vector<ContextFrame> from_other;
  {
    const ContextVariableScope scope(v, Counted(&destroyed, 4));
    const ContextFrame mine = ContextFrame::current();  // reserves
    std::thread other([&] {
      // Copies made on another thread: plain references, taken atomically there.
      for (int i = 0; i < 100; ++i) from_other.push_back(mine);
    });
    other.join();
    from_other.clear();  // dropped here: they go into the reservation
    CHECK(destroyed == 0);
  }
  CHECK(destroyed == 1);
}

TEST_CASE("enter and clear give back a reservation of the frame they replace",
          "[reservation][enter]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  std::thread t([&] {
    // At the top of a thread: no window, only `enter`, whose frames the slots own.
    v.enter(Counted(&destroyed, 5));
    { const ContextFrame reserve = ContextFrame::current(); }
    v.enter(Counted(&destroyed, 6));  // the first frame is not current any more
    const int after_second_enter = destroyed;
    { const ContextFrame reserve = ContextFrame::current(); }
    ucm::clear();
    const int after_clear = destroyed;
    // Checked on this thread, before it exits (the exit would release anything left anyway).
    CHECK(after_second_enter == 1);
    CHECK(after_clear == 2);
  });
  t.join();
  CHECK(destroyed == 2);
}

TEST_CASE("a thread that exits with a reservation gives it back", "[reservation][exit]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  ContextFrame kept;
  std::thread t([&] {
    v.enter(Counted(&destroyed, 7));
    kept = ContextFrame::current();                      // one reference leaves the thread
    { const ContextFrame b = ContextFrame::current(); }  // and one returns to the reservation
  });
  t.join();
  CHECK(destroyed == 0);  // `kept` holds it
  CHECK(kept.get(v)->id == 7);
  kept = ContextFrame{};
  CHECK(destroyed == 1);

  // And with nothing but the reservation left: the thread's exit destroys the values.
  std::thread u([&] {
    v.enter(Counted(&destroyed, 8));
    { const ContextFrame b = ContextFrame::current(); }
  });
  u.join();
  CHECK(destroyed == 2);
}

TEST_CASE("a capture in a nested window leaves the outer frame's reservation intact",
          "[reservation]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  ContextVariable<int> n;
  std::vector<ContextFrame> inner_frames;
  {
    const ContextVariableScope scope(v, Counted(&destroyed, 9));
    const ContextFrame outer = ContextFrame::current();
    for (int i = 0; i < 50; ++i) {
      n.run(i, [&] { inner_frames.push_back(ContextFrame::current()); });
      const ContextFrame again = ContextFrame::current();
      CHECK(again == outer);
    }
    for (int i = 0; i < 50; ++i) CHECK(*inner_frames[static_cast<std::size_t>(i)].get(n) == i);
  }
  CHECK(destroyed == 0);  // the inner frames show v's value
  inner_frames.clear();
  CHECK(destroyed == 1);
}

TEST_CASE("a value destructor that captures, run by the drop of a reserved frame's handle",
          "[reservation][reentrant]") {
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  struct Capturing {
    std::vector<ContextFrame>* out;
    Capturing(const Capturing&) = delete;
    Capturing& operator=(const Capturing&) = delete;
    explicit Capturing(std::vector<ContextFrame>* o) : out(o) {}
    Capturing(Capturing&& other) noexcept : out(std::exchange(other.out, nullptr)) {}
    ~Capturing() {
      if (out != nullptr) {
        out->push_back(ContextFrame::current());  // reserves the frame current now
        { const ContextFrame more = ContextFrame::current(); }
      }
    }
  };
  ContextVariable<Capturing> c;
  std::vector<ContextFrame> captured_by_destructor;
  {
    const ContextVariableScope outer(v, Counted(&destroyed, 10));
    { const ContextFrame reserve_outer = ContextFrame::current(); }
    ContextFrame handle;
    {
      const ContextVariableScope inner(c, Capturing(&captured_by_destructor));
      handle = ContextFrame::current();  // reserves the inner frame in place of the outer
    }
    // The inner frame lives on in `handle` (its reservation went back with its scope); dropping
    // it destroys Capturing, whose destructor captures, and so reserves, the outer frame.
    handle = ContextFrame{};
    REQUIRE(captured_by_destructor.size() == 1);
    { const ContextFrame from_reservation = ContextFrame::current(); }
    CHECK(destroyed == 0);
  }
  CHECK(destroyed == 0);  // the destructor's capture shows the outer value
  CHECK(captured_by_destructor[0].get(v)->id == 10);
  captured_by_destructor.clear();
  CHECK(destroyed == 1);
}

namespace {

ucm::Task<int> read_after_hops(const ContextVariable<Counted>& v, ucm_test::ThreadPool& pool,
                               std::vector<ContextFrame>& dropped_later) {
  ContextFrame at_start = ContextFrame::current();  // the caller's frame, in this coroutine
  co_await ucm_test::Hop{&pool};
  ContextFrame copy = at_start;  // copied on a pool thread
  dropped_later.push_back(std::move(copy));
  at_start = ContextFrame{};  // dropped on the pool thread
  co_await ucm_test::Hop{&pool};
  co_return ContextFrame::current().get(v)->id;
}

}  // namespace

TEST_CASE("a coroutine that captures its caller's reserved frame and drops it on other threads",
          "[reservation][coroutine]") {
  ucm_test::ThreadPool pool(2);
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  std::vector<ContextFrame> dropped_later;
  for (int round = 0; round < 50; ++round) {
    {
      const ContextVariableScope scope(v, Counted(&destroyed, 11));
      { const ContextFrame reserve = ContextFrame::current(); }
      CHECK(ucm::sync_wait(read_after_hops(v, pool, dropped_later)) == 11);
      // The pool thread that posted the last hop may still be returning from its await_suspend,
      // whose window holds the frame until then (the coroutine resumed and finished elsewhere).
      pool.wait_idle();
      CHECK(ContextFrame::current().get(v)->id == 11);
    }
    CHECK(destroyed == round);  // `dropped_later` still holds this round's frame
    dropped_later.clear();
    CHECK(destroyed == round + 1);
  }
}

TEST_CASE("one frame captured, copied and dropped by its owner and four other threads at once",
          "[reservation][threads][stress]") {
  // The owner captures through its reservation and hands handles out; the others copy and drop
  // them (atomically) and hand copies back, which the owner drops into its reservation.
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  constexpr int others = 4;
  constexpr int rounds = 2000;
  std::mutex mutex;
  std::vector<ContextFrame> to_others;
  std::vector<ContextFrame> to_owner;
  std::atomic<bool> done{false};
  Failures failures;
  std::vector<std::thread> threads;
  {
    const ContextVariableScope scope(v, Counted(&destroyed, 12));
    for (int t = 0; t < others; ++t) {
      threads.emplace_back([&] {
        while (!done.load(std::memory_order_acquire)) {
          std::optional<ContextFrame> mine;
          {
            const std::lock_guard lock(mutex);
            if (!to_others.empty()) {
              mine = std::move(to_others.back());
              to_others.pop_back();
            }
          }
          if (!mine) {
            std::this_thread::yield();
            continue;
          }
          EXPECT(failures, mine->get(v)->id == 12);
          const ContextFrame copy = *mine;
          mine->inherit([&] { EXPECT(failures, v.get()->id == 12); });
          const std::lock_guard lock(mutex);
          to_owner.push_back(copy);
          to_owner.push_back(std::move(*mine));
        }
      });
    }
    for (int i = 0; i < rounds; ++i) {
      ContextFrame a = ContextFrame::current();
      {
        const std::lock_guard lock(mutex);
        to_others.push_back(a);
        to_others.push_back(std::move(a));
        if (to_owner.size() > 64) to_owner.clear();  // dropped on the owner
      }
      const ContextFrame b = ContextFrame::current();
      EXPECT(failures, b.get(v)->id == 12);
    }
    done.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    EXPECT(failures, destroyed == 0);
    to_others.clear();
    to_owner.clear();
    EXPECT(failures, destroyed == 0);  // the scope still shows it
  }
  CHECK_NO_FAILURES(failures);
  CHECK(destroyed == 1);
}

TEST_CASE("scopes closed out of order while their frames are reserved", "[reservation][misuse]") {
  ucm_test::MisuseCounter misuse;
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> a;
  ContextVariable<Counted> b;
  ContextFrame captured;
  std::thread t([&] {
    std::optional<ContextVariableScope<Counted>> outer(std::in_place, a, Counted(&destroyed, 13));
    { const ContextFrame reserve = ContextFrame::current(); }
    std::optional<ContextVariableScope<Counted>> inner(std::in_place, b, Counted(&destroyed, 14));
    { const ContextFrame reserve = ContextFrame::current(); }
    outer.reset();  // out of order: restores what `outer` saved, keeps the frames until exit
    { const ContextFrame reserve = ContextFrame::current(); }
    inner.reset();  // restores `outer`'s frame, kept
    captured = ContextFrame::current();
  });
  t.join();
  CHECK(ucm_test::MisuseCounter::reports >= 2);
  REQUIRE(captured.get(a) != nullptr);
  CHECK(captured.get(a)->id == 13);
  CHECK(destroyed == 1);  // `inner`'s value went at the thread's exit; `outer`'s is captured
  captured = ContextFrame{};
  CHECK(destroyed == 2);
}

// ---- from a review (each failed before its fix) -------------------------------------------------

TEST_CASE(
    "a frame reserved in a window over the frame already current is settled by the outer "
    "window",
    "[reservation][nested]") {
  // A continuation window over F, and inside it a call window over F again: the reservation made
  // in the inner one is kept at its close (F is still current), and must go with the outer one.
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  ContextFrame f = ContextFrame{}.with(v, Counted(&destroyed, 15));
  {
    const ucm::ContextFrameScope outer(f);
    f.run([] {
      const ContextFrame a = ContextFrame::current();  // noted
      const ContextFrame b = ContextFrame::current();  // reserved
    });
    CHECK(destroyed == 0);
  }
  CHECK(ContextFrame::current().empty());
  std::thread([g = std::move(f)]() mutable { g = ContextFrame{}; }).join();
  CHECK(destroyed == 1);  // on the other thread, with the last handle: nothing kept in reserve
}

TEST_CASE("a handler bound to a frame calling another bound to it leaves nothing in reserve",
          "[reservation][nested][continuation]") {
  // As an Asio strand dispatching a handler inline: two continuation windows over one frame,
  // the inner one starting two operations (two captures).
  std::atomic<int> destroyed{0};
  ContextVariable<Counted> v;
  std::function<void()> first;
  std::function<void()> second;
  std::function<void()> op1;
  std::function<void()> op2;
  v.run(Counted(&destroyed, 16), [&] {
    second = ContextFrame::bind([&] {
      op1 = ContextFrame::bind([] {});
      op2 = ContextFrame::bind([] {});
    });
    first = ContextFrame::bind([&] { second(); });
  });
  first();
  first = nullptr;
  second = nullptr;
  CHECK(destroyed == 0);
  std::thread([&] {
    op1 = nullptr;
    op2 = nullptr;
  }).join();
  CHECK(destroyed == 1);
}

namespace {

/// A frame noted for the reservation in a window over the frame already current, and destroyed
/// by the outer window's close: the defect left the note behind, for whatever frame the thread's
/// cache built next in the same block.
void note_and_destroy(const ContextFrame& frame) {
  const ucm::ContextFrameScope outer(frame);
  const ucm::ContextFrameScope inner(ucm::call_window, ContextFrame::inherited());
  ContextFrame h = ContextFrame::current();  // notes the frame
  std::thread([g = std::move(h)]() mutable { g = ContextFrame{}; }).join();
}

}  // namespace

TEST_CASE("a frame destroyed while noted leaves no note for the next frame in its block",
          "[reservation][nested][cache]") {
  std::atomic<int> first{0};
  std::atomic<int> second{0};
  ContextVariable<Counted> v;
  note_and_destroy(ContextFrame{}.with(v, Counted(&first, 17)));
  CHECK(first == 1);
  // Built now, it may take the freed block (the thread's cache gives it back first).
  ContextFrame g = ContextFrame{}.with(v, Counted(&second, 18));
  {
    const ucm::ContextFrameScope over_g(std::move(g));
    ContextFrame a = ContextFrame::current();
    std::thread([b = std::move(a)]() mutable { b = ContextFrame{}; }).join();
  }
  CHECK(second == 1);  // at its window's close: nothing kept in reserve
}

TEST_CASE(
    "a window delta in the block of a frame destroyed while noted takes its parent when "
    "captured",
    "[reservation][nested][cache]") {
  ContextVariable<std::string> outer_var;
  ContextVariable<std::string> inner_var;
  ContextFrame parent = ContextFrame{}.with(outer_var, std::string(40, 'p'));
  note_and_destroy(ContextFrame{}.with(inner_var, std::string(40, 'f')));
  ContextFrame escaped;
  {
    const ucm::ContextFrameScope p(std::move(parent));  // only this window holds the parent
    const ContextVariableScope delta(inner_var, std::string(40, 'g'));  // borrows the parent
    escaped = ContextFrame::current();
  }
  // The capture promoted the delta: the parent lives on with it (a use after free before).
  REQUIRE(escaped.get(outer_var) != nullptr);
  CHECK(*escaped.get(outer_var) == std::string(40, 'p'));
  CHECK(*escaped.get(inner_var) == std::string(40, 'g'));
}
