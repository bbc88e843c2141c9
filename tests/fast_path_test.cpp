// SPDX-License-Identifier: MIT
// The fast paths of the core, tried where they could go wrong: a call window's frame borrows its
// parent instead of retaining it, and takes the reference only when something captures it
// (promotion); `get()` answers from a per-thread lookup cache keyed by frame serials, never by
// frame addresses, which the block cache reuses at once. Run under AddressSanitizer (a missed
// promotion is a use after free), LeakSanitizer (a promotion counted twice is a leak) and
// ThreadSanitizer (frames captured in windows and read on other threads).
#include <catch2/catch.hpp>

#include <atomic>
#include <coroutine>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
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
using ucm_test::Parked;
using ucm_test::Tracked;

TEST_CASE("a frame captured inside nested call windows keeps every value after they all closed",
          "[fast][borrowed]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> a;
    ContextVariable<Tracked> b;
    ContextVariable<Tracked> c;
    ContextFrame captured;
    a.run(Tracked("a"), [&] {
      b.run(Tracked("b"), [&] {
        const ContextVariableScope scope(c, Tracked("c"));
        captured = ContextFrame::current();
      });
    });
    // The windows are closed: only the capture keeps the three frames (each a delta over the
    // previous window's), which the capture had to take over from the windows that lent them.
    CHECK(Tracked::live == live_before + 3);
    CHECK(a.get() == nullptr);
    REQUIRE(captured.get(a) != nullptr);
    REQUIRE(captured.get(b) != nullptr);
    REQUIRE(captured.get(c) != nullptr);
    CHECK(captured.get(a)->text == "a");
    CHECK(captured.get(b)->text == "b");
    CHECK(captured.get(c)->text == "c");
    captured.inherit([&] { CHECK(b.get()->text == "b"); });
    CHECK(captured.size() == 3);
    captured = ContextFrame{};
    CHECK(Tracked::live == live_before);  // and nothing was retained twice
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("frames built over a window's frame keep it after the window closed",
          "[fast][borrowed]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> a;
    ContextVariable<Tracked> b;
    ContextFrame with_b;
    ContextFrame entered;
    a.run(Tracked("a"), [&] {
      with_b = ContextFrame::current().with(b, Tracked("with"));  // a delta over the window's
      b.run(Tracked("inner"), [&] {
        b.enter(Tracked("entered"));  // `enter` retains the window's frame it builds on
        entered = ContextFrame::current();
      });
    });
    CHECK(with_b.get(a)->text == "a");
    CHECK(with_b.get(b)->text == "with");
    CHECK(entered.get(a)->text == "a");
    CHECK(entered.get(b)->text == "entered");
    with_b = ContextFrame{};
    entered = ContextFrame{};
    CHECK(Tracked::live == live_before);
  }
}

TEST_CASE("a value a window lent to a bound callable outlives the window", "[fast][borrowed]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> a;
    ContextVariable<Tracked> b;
    auto bound = a.run(Tracked("lent"), [&] {
      return b.run(Tracked("other"), [&] { return a.bind([&] { return a.get()->text; }); });
    });
    CHECK(Tracked::live == live_before + 1);  // only the bound value: the windows' frames went
    CHECK(bound() == "lent");
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("frames captured in windows are read and released on other threads", "[fast][threads]") {
  ContextVariable<int> request;
  ContextVariable<int> step;
  ucm_test::ThreadPool pool(4);
  Failures failures;
  std::atomic<int> done{0};
  constexpr int requests = 2000;
  for (int i = 0; i < requests; ++i) {
    request.run(i, [&] {
      step.run(i * 2, [&] {
        pool.post(ContextFrame::bind([&, i] {
          EXPECT(failures, request.get() != nullptr && *request.get() == i);
          EXPECT(failures, step.get() != nullptr && *step.get() == i * 2);
          ++done;
        }));
      });
    });
  }
  pool.wait_idle();
  CHECK(done == requests);
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("scopes closed out of order keep the frames their windows lent", "[fast][misuse]") {
  ucm_test::MisuseCounter misuse;
  ContextVariable<std::string> a;
  ContextVariable<std::string> b;
  ContextFrame captured;
  {
    std::optional<ContextVariableScope<std::string>> outer(std::in_place, a, "outer");
    std::optional<ContextVariableScope<std::string>> inner(std::in_place, b, "inner");
    outer.reset();  // out of order: restores what `outer` saved
    CHECK(a.get() == nullptr);
    inner.reset();  // out of order as well
    CHECK(ucm_test::MisuseCounter::reports >= 2);
  }
  // `inner`, closed out of order inside another window, restores what it saved: `outer`'s frame,
  // whose window had closed. It was kept (and took the parent it borrowed), not freed.
  {
    std::optional<ContextVariableScope<std::string>> outer(std::in_place, a, "outer");
    std::optional<ContextVariableScope<std::string>> inner(std::in_place, b, "inner");
    outer.reset();
    ucm::ContextFrameScope restore(ucm::call_window, ContextFrame{});
    inner.reset();
    captured = ContextFrame::current();
  }
  REQUIRE(captured.get(a) != nullptr);
  CHECK(*captured.get(a) == "outer");
  CHECK(captured.size() == 1);
}

TEST_CASE("get sees each window's own value while frame blocks are reused", "[fast][cache]") {
  ContextVariable<int> v;
  ContextVariable<int> w;
  Failures failures;
  // Each window's frame takes the block the previous one freed: a cache keyed by the frame's
  // address would answer with the previous window's value.
  for (int i = 0; i < 10000; ++i) {
    v.run(i, [&] {
      EXPECT(failures, v.get() != nullptr && *v.get() == i);
      EXPECT(failures, w.get() == nullptr);
      w.run(-i, [&] { EXPECT(failures, *v.get() == i && *w.get() == -i); });
      EXPECT(failures, w.get() == nullptr);
    });
  }
  CHECK_NO_FAILURES(failures);
  CHECK(v.get() == nullptr);
}

TEST_CASE("get finds every variable through deep chains and many variables", "[fast][cache]") {
  constexpr int n = 300;  // more than the lookup cache holds
  std::vector<std::unique_ptr<ContextVariable<int>>> vars;
  for (int i = 0; i < n; ++i) vars.push_back(std::make_unique<ContextVariable<int>>());
  // Nested windows, one variable each: every level checks every variable set so far.
  Failures failures;
  auto nest = [&](auto& self, int depth) -> void {
    if (depth == 40) return;
    vars[static_cast<std::size_t>(depth)]->run(depth, [&] {
      for (int k = 0; k < n; ++k) {
        const int* value = vars[static_cast<std::size_t>(k)]->get();
        EXPECT(failures, k <= depth ? value != nullptr && *value == k : value == nullptr);
      }
      self(self, depth + 1);
      for (int k = 0; k <= depth; ++k) {
        EXPECT(failures, *vars[static_cast<std::size_t>(k)]->get() == k);
      }
    });
  };
  nest(nest, 0);
  CHECK_NO_FAILURES(failures);
  // One frame of n variables, read round after round.
  ContextFrame all;
  for (int i = 0; i < n; ++i) all = all.with(*vars[static_cast<std::size_t>(i)], i * 3);
  all.run([&] {
    for (int round = 0; round < 3; ++round) {
      for (int k = 0; k < n; ++k) {
        EXPECT(failures, *vars[static_cast<std::size_t>(k)]->get() == k * 3);
      }
    }
  });
  CHECK_NO_FAILURES(failures);
  CHECK(all.size() == static_cast<std::size_t>(n));
}

TEST_CASE("threads reusing each other's frame blocks never see a stale cached value",
          "[fast][cache][threads]") {
  ContextVariable<int> v;
  Failures failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ContextFrame keep;
      for (int i = 0; i < 5000; ++i) {
        const int value = t * 100000 + i;
        // Frames captured here are released on whichever thread drops `keep` last: blocks move
        // between the threads' caches.
        v.run(value, [&] {
          EXPECT(failures, *v.get() == value);
          keep = ContextFrame::current();
        });
        keep.run([&] { EXPECT(failures, *v.get() == value); });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("frames first read by several threads at once agree on their values",
          "[fast][cache][threads]") {
  // Read first on four threads at once: a frame built by with() and a window's frame captured
  // before anything read it. Both have their serial (the lookup caches' key) before any other
  // thread can see them, so these lookups only read the frames.
  ContextVariable<int> a;
  ContextVariable<int> b;
  Failures failures;
  for (int round = 0; round < 300; ++round) {
    const ContextFrame built = ContextFrame{}.with(a, round).with(b, -round);
    ContextFrame captured;
    // Over a frame: a window's frame built inline.
    built.run([&] { a.run(round + 1, [&] { captured = ContextFrame::current(); }); });
    // Promoted with a serial: no other thread's lookup writes to the frame.
    CHECK(ucm::detail::FrameAccess::data(captured)->serial.load() != 0);
    CHECK(ucm::detail::FrameAccess::data(built)->serial.load() != 0);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        ready.fetch_add(1);
        while (ready.load() < 4) {
        }
        for (int i = 0; i < 3; ++i) {
          built.run([&] { EXPECT(failures, *a.get() == round && *b.get() == -round); });
          captured.run([&] { EXPECT(failures, *a.get() == round + 1 && *b.get() == -round); });
        }
      });
    }
    for (auto& thread : threads) thread.join();
    built.run([&] { EXPECT(failures, *a.get() == round && *b.get() == -round); });
  }
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("size counts the variables a chain of deltas shows", "[fast][size]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  ContextVariable<int> c;
  const ContextFrame f = ContextFrame{}.with(a, 1).with(b, 2).with(a, 3);
  CHECK(f.size() == 2);
  CHECK(f.with(c, 4).size() == 3);
  CHECK(ContextFrame{}.size() == 0);
  f.run([&] {
    // A bound callable that restores "a unbound" builds a tombstone over the current frame.
    auto unbound =
        ContextFrame{}.run([&] { return a.bind([] { return ContextFrame::current(); }); });
    const ContextFrame hidden = unbound();
    CHECK(hidden.get(a) == nullptr);
    CHECK(hidden.size() == 1);  // b only
  });
}

namespace {
/// Counts live objects; a move constructor throws once `moves_left` moves have succeeded.
struct Throwing {
  static inline int live = 0;
  static inline int moves_left = -1;  // -1: never throw
  Throwing() { ++live; }
  Throwing(const Throwing&) { ++live; }
  Throwing(Throwing&&) {
    if (moves_left == 0) throw std::runtime_error("move failed");
    if (moves_left > 0) --moves_left;
    ++live;
  }
  Throwing& operator=(const Throwing&) = delete;
  ~Throwing() { --live; }
};

/// Too big for the block cache's classes: the inline builders hand over to build_frame.
struct Big {
  char bytes[4096] = {};
  int value = 0;
};
}  // namespace

TEST_CASE("with(...).run built inline: values, destruction, the later of two bindings wins",
          "[fast][with]") {
  const int live_before = Tracked::live;
  ContextVariable<Tracked> a;
  ContextVariable<Tracked> b;
  ContextVariable<std::unique_ptr<int>> c;  // move-only
  ContextVariable<int> d;
  ContextFrame{}.with(d, 0).run([&] {  // over a frame: the inline path
    for (int i = 0; i < 100; ++i) {
      ucm::with(a, Tracked("a"))
          .with(b, Tracked("b"))
          .with(c, std::make_unique<int>(i))
          .with(d, i)
          .run([&] {
            CHECK(a.get()->text == "a");
            CHECK(b.get()->text == "b");
            CHECK(**c.get() == i);
            CHECK(*d.get() == i);
          });
      CHECK(*d.get() == 0);
      CHECK(a.get() == nullptr);
    }
    // The same variable twice: build_frame's path, the later value wins.
    ucm::with(a, Tracked("first")).with(b, Tracked("b")).with(a, Tracked("second")).run([&] {
      CHECK(a.get()->text == "second");
    });
    // A set used twice (copies), then consumed.
    const auto set = ucm::with(a, Tracked("kept")).with(d, 7);
    set.run([&] { CHECK(a.get()->text == "kept"); });
    set.run([&] { CHECK(*d.get() == 7); });
  });
  CHECK(Tracked::live == live_before);
}

TEST_CASE("with(...).run built inline places variables whose ids share an index slot",
          "[fast][with]") {
  // Four variables whose ids are equal in the low bits the 8-slot index of a 4-value window
  // hashes, and a fifth that is not in the set: every lookup probes past the others.
  std::vector<std::unique_ptr<ContextVariable<int>>> pool;
  std::vector<const ContextVariable<int>*> same;
  while (same.size() < 5) {
    pool.push_back(std::make_unique<ContextVariable<int>>());
    const auto id = ucm::detail::VariableAccess::id(*pool.back());
    if (same.empty() || (id & 7) == (ucm::detail::VariableAccess::id(*same[0]) & 7)) {
      same.push_back(pool.back().get());
    }
  }
  const ContextVariable<int>& a = *same[0];
  const ContextVariable<int>& b = *same[1];
  const ContextVariable<int>& c = *same[2];
  const ContextVariable<int>& d = *same[3];
  const ContextVariable<int>& outside = *same[4];
  ContextVariable<int> base;
  ContextFrame{}.with(base, 1).run([&] {  // over a frame: the inline path
    for (int i = 0; i < 20; ++i) {
      ucm::with(a, i).with(b, i + 1).with(c, i + 2).with(d, i + 3).run([&] {
        CHECK(*a.get() == i);
        CHECK(*b.get() == i + 1);
        CHECK(*c.get() == i + 2);
        CHECK(*d.get() == i + 3);
        CHECK(outside.get() == nullptr);
        CHECK(*base.get() == 1);
        // Captured in every other window: the promoted frame's release, and the fast one.
        if (i % 2 == 0) CHECK(ContextFrame::current().size() == 5);
      });
      // A variable given twice after a collision: the later value wins.
      ucm::with(a, i).with(b, 10).with(b, 11).run([&] {
        CHECK(*a.get() == i);
        CHECK(*b.get() == 11);
        if (i % 2 == 0) CHECK(ContextFrame::current().size() == 3);
      });
    }
  });
}

TEST_CASE("a variable given twice in one with: the later counts everywhere the frame is read",
          "[fast][with]") {
  // A window's frame built inline has no index and keeps both entries: every reader must see the
  // later one (get, size, describe, and a complete frame flattened over it).
  const ContextVariable<int> a{ucm::named("a").expose()};
  const ContextVariable<int> b{ucm::named("b").expose()};
  const ContextVariable<int> c{ucm::named("c").expose()};
  ContextFrame{}.with(c, 0).run([&] {  // over a frame: the inline path
    for (int i = 0; i < 3; ++i) {
      ucm::with(a, 1).with(b, 2).with(a, 3).with(b, 4).run([&] {
        CHECK(*a.get() == 3);
        CHECK(*b.get() == 4);
        CHECK(ContextFrame::current().size() == 3);
        CHECK(ucm::debug_string() == "{a=3, b=4, c=0}");
        // Deltas over it up to the longest chain, then a complete frame flattening them all.
        ContextFrame f = ContextFrame::current();
        for (int k = 0; k < 10; ++k) {
          f = f.with(c, k + 1);
          f.run([&] {
            CHECK(*a.get() == 3);
            CHECK(*b.get() == 4);
            CHECK(*c.get() == k + 1);
          });
        }
        CHECK(f.size() == 3);
        CHECK(ucm::describe(f).size() == 3);
        f.run([&] { CHECK(ucm::debug_string() == "{a=3, b=4, c=10}"); });
        // The later binding of a, hidden again by a nearer one.
        a.run(5, [&] { CHECK(ucm::debug_string() == "{a=5, b=4, c=0}"); });
      });
    }
  });
}

TEST_CASE("ucm::with of 4 values is built inline from the first window that can be",
          "[fast][with]") {
  // Its frame (no index) is of a smaller block class than the general builder's for the same
  // values: the class must be fed anyway, or every window of this shape takes the general path.
  std::thread([] {
    const ContextVariable<int> a, b, c, d, e;
    ContextFrame{}.with(e, 0).run([&] {
      for (int i = 0; i < 5; ++i) {
        ucm::with(a, i).with(b, i).with(c, i).with(d, i).run([&] {
          const ucm::detail::FrameData* f = ucm::detail::FrameAccess::data(ContextFrame::current());
          // The first window of the thread opens the block cache through the general path.
          // Without the cache (UCM_FRAME_CACHE 0, as under AddressSanitizer) every window does.
          if (UCM_FRAME_CACHE != 0 && i > 0) CHECK(f->mask == ucm::detail::linear_mask);
          CHECK(*d.get() == i);
        });
      }
    });
  }).join();
}

TEST_CASE("a with of more than 8 values builds a complete frame, of up to 8 a delta",
          "[fast][with]") {
  // A window's frame built inline has no index and is scanned: it takes at most
  // max_delta_bindings values, as any delta.
  std::vector<std::unique_ptr<ContextVariable<int>>> v;
  for (int i = 0; i < 9; ++i) v.push_back(std::make_unique<ContextVariable<int>>());
  auto depth = [] { return ucm::detail::FrameAccess::data(ContextFrame::current())->depth; };
  auto eight = [&] {
    return ucm::with(*v[0], 0)
        .with(*v[1], 1)
        .with(*v[2], 2)
        .with(*v[3], 3)
        .with(*v[4], 4)
        .with(*v[5], 5)
        .with(*v[6], 6)
        .with(*v[7], 7);
  };
  auto check = [&](int n) {
    for (int i = 0; i < n; ++i) CHECK(*v[static_cast<std::size_t>(i)]->get() == i);
  };
  ContextFrame{}.with(*v[0], -1).run([&] {
    for (int round = 0; round < 3; ++round) {
      eight().run([&] {
        CHECK(depth() == 1);  // a delta over the complete frame below
        check(8);
      });
      eight().with(*v[8], 8).run([&] {
        CHECK(depth() == 0);
        check(9);
      });
    }
  });
}

TEST_CASE("a window frame destroys each value with a destructor once, captured or not",
          "[fast][with]") {
  // Values with destructors between trivially destructible ones: the frame keeps an owned value
  // only for the former, which a captured frame's release destroys through.
  const int live_before = Tracked::live;
  ContextVariable<int> d;
  ContextVariable<Tracked> a;
  ContextVariable<int> e;
  ContextVariable<Tracked> b;
  ContextFrame{}.with(d, 0).run([&] {  // over a frame: the inline path
    for (int i = 0; i < 10; ++i) {
      ContextFrame captured;
      ucm::with(d, i).with(a, Tracked("a")).with(e, i + 1).with(b, Tracked("b")).run([&] {
        if (i % 2 == 0) captured = ContextFrame::current();
      });
      CHECK(Tracked::live == live_before + (i % 2 == 0 ? 2 : 0));
      if (i % 2 == 0) {
        captured.run([&] {
          CHECK(*d.get() == i);
          CHECK(a.get()->text == "a");
          CHECK(*e.get() == i + 1);
          CHECK(b.get()->text == "b");
        });
      }
      captured = ContextFrame{};
      CHECK(Tracked::live == live_before);
      // A scope of one value with a destructor, and one without.
      {
        ContextVariableScope s1(a, Tracked("s"));
        ContextVariableScope s2(e, i);
        CHECK(Tracked::live == live_before + 1);
      }
      CHECK(Tracked::live == live_before);
    }
  });
}

TEST_CASE("a value constructor that throws in an inline window leaves nothing behind",
          "[fast][with][exceptions]") {
  ContextVariable<Throwing> t;
  ContextVariable<Throwing> u;
  ContextVariable<int> d;
  ContextFrame{}.with(d, 1).run([&] {
    Throwing ok;
    auto set = ucm::with(t, ok).with(u, ok);
    const int live_before = Throwing::live;
    // Running the set moves its values into the window's block: the second move throws after
    // the first value was constructed there.
    Throwing::moves_left = 1;
    CHECK_THROWS_AS(std::move(set).run([] { FAIL("must not run"); }), std::runtime_error);
    CHECK(Throwing::moves_left == 0);
    CHECK(Throwing::live == live_before);
    CHECK_THROWS_AS(t.run(std::move(ok), [] { FAIL("must not run"); }), std::runtime_error);
    Throwing::moves_left = -1;
    CHECK(Throwing::live == live_before);
    CHECK(t.get() == nullptr);
    CHECK(*d.get() == 1);
    // The block went back to the cache: the next windows work.
    t.run(ok, [&] { CHECK(t.get() != nullptr); });
    CHECK(Throwing::live == live_before);
  });
}

namespace {
/// Trivially copyable, so a window's general path takes it by value; constructing it from a
/// negative number throws.
struct Checked {
  int value;
  explicit Checked(int v) : value(v) {
    if (v < 0) throw std::invalid_argument("negative");
  }
};
static_assert(std::is_trivially_copyable_v<Checked>);
}  // namespace

TEST_CASE("a window's general path takes its values by value and leaves nothing behind",
          "[fast][with][exceptions]") {
  // Over no frame, and on a thread whose block cache is still empty: the inline build does not
  // apply, and the values reach build_frame through copies made on that path only.
  ContextVariable<Checked> c;
  ContextVariable<Throwing> t;
  ContextVariable<Throwing> u;
  ContextVariable<int> d;
  auto check = [&] {
    CHECK_THROWS_AS(c.run(-1, [] { FAIL("must not run"); }), std::invalid_argument);
    CHECK(c.get() == nullptr);
    c.run(5, [&] { CHECK(c.get()->value == 5); });
    Throwing ok;
    const int live_before = Throwing::live;
    for (int moves = 0; moves < 8; ++moves) {
      // The moves into the path's copies, then into the frame: each one may throw in turn.
      Throwing::moves_left = moves;
      try {
        ucm::with(t, ok).with(u, ok).with(d, 3).run([&] {
          CHECK(t.get() != nullptr);
          CHECK(u.get() != nullptr);
          CHECK(*d.get() == 3);
        });
      } catch (const std::runtime_error&) {
      }
      Throwing::moves_left = -1;
      CHECK(Throwing::live == live_before);
      CHECK(t.get() == nullptr);
      CHECK(d.get() == nullptr);
    }
  };
  ucm::clear();
  check();  // over no frame
  std::thread([&] {
    ucm::ContextFrame{}.with(d, 1).run([&] {  // a fresh thread: no block cached yet
      CHECK_THROWS_AS(c.run(-2, [] { FAIL("must not run"); }), std::invalid_argument);
      c.run(6, [&] { CHECK(c.get()->value == 6); });
      CHECK(*d.get() == 1);
    });
    check();
  }).join();
}

TEST_CASE("values too big for the block cache take the general path", "[fast][with]") {
  ContextVariable<Big> big;
  ContextVariable<int> d;
  Big value;
  value.value = 42;
  ContextFrame{}.with(d, 1).run([&] {
    big.run(value, [&] { CHECK(big.get()->value == 42); });
    ucm::with(big, value).with(d, 2).run([&] {
      CHECK(big.get()->value == 42);
      CHECK(*d.get() == 2);
    });
    const ContextVariableScope scope(big, value);
    CHECK(big.get()->value == 42);
  });
}

TEST_CASE("a scope's frame in a Task is captured, read and released on the threads it hops to",
          "[fast][borrowed][task][threads]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<int> request;
    ContextVariable<Tracked> step;
    ucm_test::ThreadPool pool(3);
    Failures failures;
    auto handler = [&](int i) -> ucm::Task<> {
      const ContextVariableScope outer(request, i);
      co_await ucm_test::Hop{&pool};
      ContextFrame captured;
      {
        // A window frame built on this pool thread over the Task's own frame, captured (and so
        // promoted) after another hop, by whichever thread runs the Task then.
        const ContextVariableScope inner(step, Tracked(std::to_string(i)));
        co_await ucm_test::Hop{&pool};
        captured = ContextFrame::current();
        co_await ucm_test::Hop{&pool};
        EXPECT(failures, step.get() != nullptr && step.get()->text == std::to_string(i));
      }
      co_await ucm_test::Hop{&pool};
      EXPECT(failures, step.get() == nullptr && *request.get() == i);
      // The capture outlived the scope that built its frame, and the hops.
      EXPECT(failures,
             captured.get(step) != nullptr && captured.get(step)->text == std::to_string(i));
      EXPECT(failures, captured.get(request) != nullptr && *captured.get(request) == i);
      pool.post([captured, &request, &failures, i] {  // released on yet another thread
        EXPECT(failures, *captured.get(request) == i);
      });
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        ContextFrame{}.with(request, -1).run([&] {
          for (int i = 0; i < 100; ++i) ucm::sync_wait(handler(t * 1000 + i));
        });
      });
    }
    for (auto& thread : threads) thread.join();
    pool.wait_idle();
    CHECK_NO_FAILURES(failures);
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("a suspended Task destroyed with a window frame open releases it once",
          "[fast][borrowed][task][lifetime]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> a;
    ContextVariable<Tracked> b;
    std::coroutine_handle<> parked;
    ContextFrame captured;
    auto child = [&]() -> ucm::Task<> {
      const ContextVariableScope first(a, Tracked("a"));
      const ContextVariableScope second(b, Tracked("b"));  // borrows `first`'s frame
      captured = ContextFrame::current();                  // promotes both
      co_await Parked{&parked};
    };
    auto parent = [&]() -> ucm_test::Detached { co_await child(); };
    {
      ucm_test::Detached d = parent();
      REQUIRE(parked);
      CHECK(Tracked::live == live_before + 2);
    }  // destroys the parent, then the suspended child with its two scopes
    CHECK(a.get() == nullptr);
    REQUIRE(captured.get(a) != nullptr);
    CHECK(captured.get(a)->text == "a");
    CHECK(captured.get(b)->text == "b");
    CHECK(Tracked::live == live_before + 2);
    captured = ContextFrame{};
    CHECK(Tracked::live == live_before);
    // The same without a capture: the scopes' frames were never promoted.
    {
      auto plain = [&]() -> ucm::Task<> {
        const ContextVariableScope first(a, Tracked("a"));
        const ContextVariableScope second(b, Tracked("b"));
        co_await Parked{&parked};
      };
      auto parent2 = [&]() -> ucm_test::Detached { co_await plain(); };
      ucm_test::Detached d = parent2();
      CHECK(Tracked::live == live_before + 2);
    }
    CHECK(Tracked::live == live_before);
  }
}

TEST_CASE("one frame captured and released by its owner thread and 4 others at once",
          "[fast][threads][refcount]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> v;
    ContextVariable<int> n;
    std::atomic<bool> go{false};
    Failures failures;
    ContextFrame{}.with(n, 1).run([&] {
      v.run(Tracked("shared"), [&] {
        const ContextFrame shared = ContextFrame::current();  // promotes the window's frame
        std::vector<std::thread> others;
        for (int t = 0; t < 4; ++t) {
          others.emplace_back([&] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < 20000; ++i) {
              const ContextFrame copy = shared;  // cross-thread increment and decrement
              EXPECT(failures, copy.get(v) != nullptr && copy.get(v)->text == "shared");
            }
          });
        }
        go = true;
        for (int i = 0; i < 20000; ++i) {  // the owner captures the current frame meanwhile
          const ContextFrame mine = ContextFrame::current();
          EXPECT(failures, mine == shared && v.get()->text == "shared");
        }
        for (auto& thread : others) thread.join();
      });
    });
    CHECK_NO_FAILURES(failures);
  }
  CHECK(Tracked::live == live_before);
}
