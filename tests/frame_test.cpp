// SPDX-License-Identifier: MIT
// Tests of ucm/frame.hpp: ContextFrame as an immutable, shareable snapshot; run and inherit
// windows; ContextFrame::bind.
#include "ucm/frame.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "ucm/scope.hpp"
#include "ucm/variable.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;
using ucm_test::Failures;
using ucm_test::Tracked;

TEST_CASE("the empty frame has no values and equals every other empty frame", "[frame]") {
  ContextFrame empty;
  CHECK(empty.size() == 0);
  CHECK(empty.empty());
  CHECK(empty == ContextFrame{});
  CHECK(ContextFrame::current() == ContextFrame{});
  ContextVariable<int> v;
  CHECK(empty.get(v) == nullptr);
}

TEST_CASE("with builds a new frame and leaves the original unchanged", "[frame]") {
  ContextVariable<int> a;
  ContextVariable<std::string> b;
  const ContextFrame one = ContextFrame{}.with(a, 1);
  const ContextFrame two = one.with(b, "two");
  const ContextFrame three = two.with(a, 3);
  CHECK(one.size() == 1);
  CHECK(two.size() == 2);
  CHECK(three.size() == 2);
  CHECK(*one.get(a) == 1);
  CHECK(one.get(b) == nullptr);
  CHECK(*two.get(a) == 1);
  CHECK(*two.get(b) == "two");
  CHECK(*three.get(a) == 3);
  CHECK(three.get(b) == two.get(b));  // shared, not copied
}

TEST_CASE("a copy equals its original and separately built frames are unequal", "[frame]") {
  struct NoEquality {
    int n;
  };
  ContextVariable<NoEquality> v;
  const ContextFrame a = ContextFrame{}.with(v, NoEquality{1});
  const ContextFrame b = ContextFrame{}.with(v, NoEquality{1});
  const ContextFrame a_copy = a;
  CHECK(a_copy == a);
  CHECK_FALSE(a == b);
  ContextFrame moved = ContextFrame(a_copy);
  CHECK(moved == a);
  ContextFrame assigned;
  assigned = a;
  CHECK(assigned == a);
  assigned = std::move(moved);
  CHECK(assigned == a);
}

TEST_CASE("frame.run is a call window: current changes, inherited does not", "[frame][window]") {
  ContextVariable<int> v;
  const ContextFrame outer = ContextFrame{}.with(v, 1);
  const ContextFrame inner = ContextFrame{}.with(v, 2);
  outer.inherit([&] {
    const int seen = inner.run([&](int add) { return *v.get() + add; }, 40);
    CHECK(seen == 42);
    inner.run([&] {
      CHECK(*v.get() == 2);
      CHECK(*v.get_active() == 2);  // bound in a call window since the continuation began
      CHECK(*v.get_inherited() == 1);
      CHECK(ContextFrame::current() == inner);
      CHECK(ContextFrame::inherited() == outer);
    });
    CHECK(*v.get() == 1);
    CHECK(ContextFrame::current() == outer);
  });
  CHECK(v.get() == nullptr);
}

TEST_CASE("frame.inherit is a continuation window: all three slots become the frame",
          "[frame][window]") {
  ContextVariable<int> v;
  const ContextFrame frame = ContextFrame{}.with(v, 7);
  frame.inherit([&] {
    CHECK(*v.get() == 7);
    CHECK(v.get_active() == nullptr);  // it flowed in; nothing bound it here
    CHECK(*v.get_inherited() == 7);
    CHECK(ContextFrame::current() == frame);
    CHECK(ContextFrame::inherited() == frame);
  });
  CHECK(v.get() == nullptr);
  CHECK(v.get_inherited() == nullptr);
  CHECK(ContextFrame::current() == ContextFrame{});
  CHECK(ContextFrame::inherited() == ContextFrame{});
}

TEST_CASE("run and inherit restore their slots when fn throws and the exception reaches the caller",
          "[frame][window][exceptions]") {
  ContextVariable<int> v;
  const ContextFrame outer = ContextFrame{}.with(v, 1);
  const ContextFrame inner = ContextFrame{}.with(v, 2);
  outer.inherit([&] {
    CHECK_THROWS_AS(inner.run([] { throw std::runtime_error("run"); }), std::runtime_error);
    CHECK(*v.get() == 1);
    CHECK(ContextFrame::current() == outer);
    CHECK_THROWS_AS(inner.inherit([] { throw std::runtime_error("inherit"); }), std::runtime_error);
    CHECK(*v.get() == 1);
    CHECK(ContextFrame::inherited() == outer);
    CHECK(v.get_active() == nullptr);
  });
}

TEST_CASE("ContextFrame{}.inherit runs with no context at all", "[frame][window]") {
  ContextVariable<int> v;
  ContextVariable<int> with_default{5};
  v.run(1, [&] {
    with_default.run(6, [&] {
      ContextFrame{}.inherit([&] {
        CHECK(v.get() == nullptr);
        CHECK(v.get_inherited() == nullptr);
        CHECK(*with_default.get() == 5);  // the default, not the value of the breaking caller
        CHECK_FALSE(with_default.is_bound());
      });
      CHECK(*v.get() == 1);
      CHECK(*with_default.get() == 6);
    });
  });
}

TEST_CASE("inherited_all holds exactly the inherited frame outside a merge", "[frame]") {
  ContextVariable<int> v;
  CHECK(ContextFrame::inherited_all().size() == 1);
  CHECK(ContextFrame::inherited_all()[0] == ContextFrame{});
  const ContextFrame frame = ContextFrame{}.with(v, 3);
  frame.inherit([&] {
    auto all = ContextFrame::inherited_all();
    REQUIRE(all.size() == 1);
    CHECK(all[0] == frame);
    CHECK(*all[0].get(v) == 3);
    const ContextFrame kept = all[0];  // copying out takes a reference of its own
    CHECK(kept == frame);
  });
}

TEST_CASE("ContextFrame::bind captures now and restores later, forwarding arguments and results",
          "[frame][bind]") {
  ContextVariable<std::string> v;
  auto bound = v.run("captured", [] {
    return ContextFrame::bind([](std::unique_ptr<int> p, int& out) -> int& {
      out = *p;
      return out;
    });
  });
  v.run("caller", [&] {
    int out = 0;
    int& r = bound(std::make_unique<int>(9), out);
    CHECK(&r == &out);
    CHECK(out == 9);
    auto reads = ContextFrame::bind([&] { return *v.get(); });
    CHECK(reads() == "caller");
  });
  auto check = v.run("captured", [&] { return ContextFrame::bind([&] { return *v.get(); }); });
  CHECK(check() == "captured");
  auto copy = check;  // copyable when fn is
  CHECK(copy() == "captured");
  CHECK(std::move(copy)() == "captured");
  CHECK(v.get() == nullptr);
}

namespace {

/// Whether `ContextFrame::bind(f)` compiles for an `F`.
template <class F>
concept frame_bindable = requires(F&& f) {
  ContextFrame::bind(std::forward<F>(f));
};

struct Callable {
  int operator()(int x) const { return x; }
};
struct NotCallable {};
int twice(int x) { return 2 * x; }

// Whatever may be called with some arguments binds, whatever never can is rejected at the bind
// (a requires-clause: the expression is ill-formed, not an error inside the library).
static_assert(frame_bindable<Callable>);
static_assert(frame_bindable<Callable&>);
static_assert(frame_bindable<const Callable&>);
static_assert(frame_bindable<decltype([](auto&&...) {})>);  // generic lambdas too
static_assert(frame_bindable<int (*)(int)>);
static_assert(frame_bindable<int (&)(int)>);  // decays to a function pointer
static_assert(frame_bindable<decltype(&Callable::operator())>);
static_assert(frame_bindable<decltype(&Tracked::text)>);
static_assert(frame_bindable<NotCallable>);  // a class type: what it accepts is known at the call
static_assert(!frame_bindable<int>);
static_assert(!frame_bindable<const double&>);
static_assert(!frame_bindable<int*>);
static_assert(!frame_bindable<void*>);
static_assert(!frame_bindable<const char (&)[4]>);  // decays to an object pointer
static_assert(!frame_bindable<std::nullptr_t>);

}  // namespace

TEST_CASE("ContextFrame::bind accepts functions, function pointers and member pointers",
          "[frame][bind]") {
  ContextVariable<int> v;
  auto by_pointer = v.run(4, [] { return ContextFrame::bind(&twice); });
  auto by_reference = v.run(4, [] { return ContextFrame::bind(twice); });
  CHECK(by_pointer(3) == 6);
  CHECK(by_reference(5) == 10);
  const Callable c;
  auto member = ContextFrame::bind(&Callable::operator());
  CHECK(member(c, 7) == 7);
}

TEST_CASE("a bound callable sees its captured values, not the values of the thread that runs it",
          "[frame][bind][threads]") {
  ContextVariable<int> v;
  auto bound = v.run(
      1, [&] { return ContextFrame::bind([&] { return std::pair(*v.get(), v.get_active()); }); });
  int seen = 0;
  const int* active = &seen;
  std::thread t([&] { v.run(2, [&] { std::tie(seen, active) = bound(); }); });
  t.join();
  CHECK(seen == 1);
  CHECK(active == nullptr);
}

TEST_CASE("the same bound callable can run twice and concurrently", "[frame][bind][threads]") {
  ContextVariable<int> v;
  Failures failures;
  const auto bound = v.run(11, [&] {
    return ContextFrame::bind([&](int own) {
      for (int i = 0; i < 2000; ++i) {
        EXPECT(failures, *v.get() == 11);
        v.run(own, [&] { EXPECT(failures, *v.get() == own); });
      }
    });
  });
  bound(1);
  bound(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { bound(100 + t); });
  for (auto& t : threads) t.join();
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("frames can be read by many threads at once", "[frame][threads]") {
  ContextVariable<std::string> v;
  ContextVariable<int> n;
  const ContextFrame frame = ContextFrame{}.with(v, "shared").with(n, 4);
  Failures failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, frame] {
      for (int i = 0; i < 5000; ++i) {
        ContextFrame copy = frame;
        EXPECT(failures, *copy.get(v) == "shared" && *copy.get(n) == 4);
        copy.inherit([&] { EXPECT(failures, *v.get() == "shared"); });
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK_NO_FAILURES(failures);
}

TEST_CASE("move-only values work and propagation never copies a value", "[frame][values]") {
  Tracked::copies = 0;
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> t;
    ContextVariable<std::unique_ptr<int>> p;
    const ContextFrame frame =
        ContextFrame{}.with(t, Tracked("x")).with(p, std::make_unique<int>(5));
    CHECK(**frame.get(p) == 5);
    frame.inherit([&] {
      auto bound = ContextFrame::bind([&] { return t.get()->text + std::to_string(**p.get()); });
      auto copy = bound;
      CHECK(copy() == "x5");
      ContextFrame captured = ContextFrame::current();
      CHECK(captured.get(t) == frame.get(t));
    });
    CHECK(Tracked::copies == 0);
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("a value's storage honours over-alignment", "[frame][values]") {
  struct alignas(64) Wide {
    int n;
  };
  ContextVariable<Wide> w;
  ContextVariable<char> c;
  const ContextFrame frame = ContextFrame{}.with(c, 'x').with(w, Wide{3});
  REQUIRE(frame.get(w) != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(frame.get(w)) % 64 == 0);
  CHECK(frame.get(w)->n == 3);
  CHECK(*frame.get(c) == 'x');
}

TEST_CASE("a value constructor that throws leaves the frame unchanged and leaks nothing",
          "[frame][values][exceptions]") {
  struct Throws {
    explicit Throws(int n) {
      if (n < 0) throw std::invalid_argument("negative");
    }
  };
  const int live_before = Tracked::live;
  ContextVariable<Tracked> t;
  ContextVariable<Throws> bad;
  const ContextFrame frame = ContextFrame{}.with(t, Tracked("kept"));
  CHECK_THROWS_AS(frame.with(bad, -1), std::invalid_argument);
  t.run(Tracked("running"), [&] {
    CHECK_THROWS_AS(bad.run(-1, [] {}), std::invalid_argument);
    CHECK(t.get()->text == "running");
  });
  CHECK(frame.get(t)->text == "kept");
  CHECK(Tracked::live == live_before + 1);
}

TEST_CASE("thousands of variables fit in one frame and each is found", "[frame][values]") {
  constexpr int count = 2000;
  std::vector<std::unique_ptr<ContextVariable<int>>> vars;
  ContextFrame frame;
  for (int i = 0; i < count; ++i) {
    vars.push_back(std::make_unique<ContextVariable<int>>());
    frame = frame.with(*vars.back(), i);
  }
  CHECK(frame.size() == count);
  Failures failures;
  for (int i = 0; i < count; ++i)
    EXPECT(failures, frame.get(*vars[static_cast<std::size_t>(i)]) != nullptr &&
                         *frame.get(*vars[static_cast<std::size_t>(i)]) == i);
  CHECK_NO_FAILURES(failures);
  frame.inherit([&] {
    CHECK(*vars[1234]->get() == 1234);
    vars[1321]->run(-1, [&] {
      CHECK(*vars[1321]->get() == -1);
      CHECK(*vars[1320]->get() == 1320);
      CHECK(ContextFrame::current().size() == count);
    });
  });
}

TEST_CASE("frames are released when the last handle goes, and with them their values",
          "[frame][values][leak]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> t;
    ContextVariable<int> n;
    ContextFrame keep;
    t.run(Tracked("a"), [&] { n.run(1, [&] { keep = ContextFrame::current(); }); });
    CHECK(Tracked::live == live_before + 1);  // kept alive through the child's borrowed value
    CHECK(keep.get(t)->text == "a");
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("chains of enters, and a frame rebuilt in a loop, keep only the visible values",
          "[frame][values][leak]") {
  const int live_before = Tracked::live;
  ContextVariable<Tracked> t;
  ContextVariable<Tracked> u;
  ContextVariable<int> other;
  ContextFrame{}.inherit([&] {
    SECTION("enter: one variable overwritten") {
      other.enter(1);
      for (int i = 0; i < 1000; ++i) t.enter(Tracked("t" + std::to_string(i)));
      CHECK(Tracked::live == live_before + 1);
      CHECK(*other.get() == 1);
      CHECK(t.get()->text == "t999");
    }
    SECTION("enter: two variables in turn") {
      for (int i = 0; i < 1000; ++i) {
        t.enter(Tracked("t" + std::to_string(i)));
        u.enter(Tracked("u" + std::to_string(i)));
      }
      CHECK(Tracked::live <= live_before + 4);  // the visible two, and at most one frame behind
      CHECK(t.get()->text == "t999");
      CHECK(u.get()->text == "u999");
    }
    SECTION("with: two variables in turn, on a frame kept outside any window") {
      ContextFrame frame;
      for (int i = 0; i < 1000; ++i) {
        frame = frame.with(t, Tracked("t" + std::to_string(i)));
        frame = frame.with(u, Tracked("u" + std::to_string(i)));
      }
      // Deltas on the current chain and the values they hide are kept; nothing older.
      CHECK(Tracked::live <= live_before + 16);
      CHECK(frame.get(t)->text == "t999");
      CHECK(frame.get(u)->text == "u999");
    }
  });
  CHECK(Tracked::live == live_before);
}

TEST_CASE("a value lent by a frame outlives the frame's views, and the frames behind it do not",
          "[frame][values][leak]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> t;
    ContextVariable<Tracked> u;
    ContextFrame behind = ContextFrame{}.with(u, Tracked("behind"));
    ContextFrame lender = behind.with(t, Tracked("lent"));  // a delta over `behind`
    auto bound = lender.run([&] { return t.bind([&] { return t.get()->text; }); });
    CHECK(Tracked::live == live_before + 2);
    behind = ContextFrame{};
    lender = ContextFrame{};  // no view left: `behind` goes, the lent value stays
    CHECK(Tracked::live == live_before + 1);
    CHECK(bound() == "lent");
    // A complete frame built over a lender keeps only the lender's values as well.
    ContextFrame complete;
    {
      ContextFrame base = ContextFrame{}.with(u, Tracked("hidden"));
      for (int i = 0; i < ucm::detail::max_delta_depth; ++i) {
        base = base.with(t, Tracked("t" + std::to_string(i)));
      }
      complete = base.with(u, Tracked("shown"));  // flattened: past max_delta_depth
    }
    // The complete frame uses the last t from the last delta, which no longer keeps the deltas
    // and the first frame behind it (the earlier t's, "hidden").
    CHECK(complete.get(t)->text == "t" + std::to_string(ucm::detail::max_delta_depth - 1));
    CHECK(complete.get(u)->text == "shown");
    CHECK(Tracked::live == live_before + 3);  // lent, t3, shown
  }
  CHECK(Tracked::live == live_before);
}
