// SPDX-License-Identifier: MIT
// Tests of ucm/variable.hpp: reading (get, get_active, get_inherited, value_or, is_bound) and
// changing (run, enter, update, per-variable bind) a ContextVariable.
#include "ucm/variable.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "test_support.hpp"
#include "ucm/frame.hpp"
#include "ucm/scope.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;
using ucm_test::Tracked;

TEST_CASE("a variable outside any window reads nullptr, or its default", "[variable][read]") {
  ContextVariable<int> plain;
  ContextVariable<std::string> with_default{"fallback"};
  CHECK(plain.get() == nullptr);
  CHECK_FALSE(plain.is_bound());
  CHECK(plain.value_or(3) == 3);
  REQUIRE(with_default.get() != nullptr);
  CHECK(*with_default.get() == "fallback");
  CHECK(with_default.get() == with_default.default_value());
  CHECK_FALSE(with_default.is_bound());
  CHECK(with_default.value_or("other") == "fallback");  // the default counts
  CHECK(with_default.get_active() == nullptr);
  CHECK(with_default.get_inherited() == nullptr);
  ContextVariable<std::string> in_place{std::in_place, 3, 'x'};
  CHECK(*in_place.get() == "xxx");
}

TEST_CASE("run sets the value for the call and restores it after", "[variable][run]") {
  ContextVariable<std::string> v{"default"};
  const std::string result = v.run("outer", [&] {
    CHECK(*v.get() == "outer");
    CHECK(v.is_bound());
    CHECK(v.value_or("x") == "outer");
    return *v.get() + "!";
  });
  CHECK(result == "outer!");
  CHECK(*v.get() == "default");
}

TEST_CASE("run forwards arguments and the return value, references included", "[variable][run]") {
  ContextVariable<int> v;
  int target = 0;
  int& r = v.run(
      1,
      [](int& t, std::unique_ptr<int> p) -> int& {
        t = *p;
        return t;
      },
      target, std::make_unique<int>(4));
  CHECK(&r == &target);
  CHECK(target == 4);
  struct Adder {
    int base;
    int add(int n) const { return base + n; }
  };
  const Adder adder{10};
  CHECK(v.run(1, &Adder::add, adder, 5) == 15);  // any invocable, as std::invoke
}

TEST_CASE("nested windows stack and sibling windows do not see each other", "[variable][run]") {
  ContextVariable<int> v;
  v.run(1, [&] {
    v.run(2, [&] {
      CHECK(*v.get() == 2);
      v.run(3, [&] { CHECK(*v.get() == 3); });
      CHECK(*v.get() == 2);
    });
    CHECK(*v.get() == 1);
    v.run(4, [&] { CHECK(*v.get() == 4); });
    CHECK(*v.get() == 1);
  });
  CHECK(v.get() == nullptr);
}

TEST_CASE("run restores when fn throws and the exception reaches the caller",
          "[variable][run][exceptions]") {
  ContextVariable<int> v;
  ContextVariable<int> w;
  v.run(1, [&] {
    try {
      w.run(2, [&] { v.run(3, [] { throw std::logic_error("deep"); }); });
      FAIL("no exception");
    } catch (const std::logic_error& e) {
      CHECK(std::string(e.what()) == "deep");
    }
    CHECK(*v.get() == 1);
    CHECK(w.get() == nullptr);
  });
  CHECK(v.get() == nullptr);
}

TEST_CASE("get_active sees values bound since the continuation began; get_inherited what flowed in",
          "[variable][active]") {
  ContextVariable<int> span;
  ContextVariable<int> other;
  // At the top of a thread, a call window binds an active value.
  span.run(1, [&] {
    CHECK(*span.get_active() == 1);
    CHECK(span.get_inherited() == nullptr);
  });
  auto continuation = span.run(1, [&] {
    return ContextFrame::bind([&] {
      // Flowed in: visible, inherited, not active (follows-from).
      CHECK(*span.get() == 1);
      CHECK(span.get_active() == nullptr);
      CHECK(*span.get_inherited() == 1);
      // A call window inside a continuation: active is the new value, inherited the old one.
      span.run(2, [&] {
        CHECK(*span.get() == 2);
        CHECK(*span.get_active() == 2);
        CHECK(*span.get_inherited() == 1);
      });
      // Changing another variable does not make this one active: identity, not presence.
      other.run(5, [&] {
        CHECK(span.get_active() == nullptr);
        CHECK(*other.get_active() == 5);
      });
      // An equal value bound again is a new value object: active.
      span.run(1, [&] { CHECK(span.get_active() != nullptr); });
      CHECK(span.get_active() == nullptr);
    });
  });
  span.run(9, continuation);
  continuation();
}

TEST_CASE("get never falls back to the inherited frame when current lacks the value",
          "[variable][read]") {
  ContextVariable<int> v;
  ContextVariable<int> w;
  ContextVariable<int> with_default{7};
  const ContextFrame inherited = ContextFrame{}.with(v, 1).with(with_default, 8);
  const ContextFrame unrelated = ContextFrame{}.with(w, 2);
  inherited.inherit([&] {
    unrelated.run([&] {
      CHECK(v.get() == nullptr);  // only in inherited: read through get_inherited()
      CHECK_FALSE(v.is_bound());
      CHECK(v.value_or(0) == 0);
      CHECK(*v.get_inherited() == 1);
      CHECK(v.get_active() == nullptr);
      CHECK(*with_default.get() == 7);  // the default, not the inherited value
      CHECK(*w.get() == 2);
      // var.bind captures what get() finds: nothing.
      auto bound = v.bind([&] { return v.get() == nullptr; });
      CHECK(ContextFrame{}.with(v, 3).run(bound));
    });
  });
}

TEST_CASE("enter sets a value for the rest of the enclosing window", "[variable][enter]") {
  ContextVariable<int> v;
  ContextVariable<int> w;
  v.run(1, [&] {
    w.run(10, [&] {
      v.enter(2);
      CHECK(*v.get() == 2);
      CHECK(*v.get_active() == 2);
      CHECK(*w.get() == 10);
      v.enter(3);  // entering again replaces it
      CHECK(*v.get() == 3);
      v.run(4, [&] {
        v.enter(5);
        CHECK(*v.get() == 5);
      });
      CHECK(*v.get() == 3);  // the inner window undid its own enter
    });
    CHECK(*v.get() == 1);  // the enclosing window undid it
  });
  CHECK(v.get() == nullptr);
}

TEST_CASE("enter at the top of a thread lasts until clear", "[variable][enter]") {
  ContextVariable<std::string> v;
  std::thread t([&] {
    v.enter("top");
    CHECK(*v.get() == "top");
    CHECK(*v.get_active() == "top");
    v.run("inner", [&] { CHECK(*v.get() == "inner"); });
    CHECK(*v.get() == "top");
    ucm::clear();
    CHECK(v.get() == nullptr);
  });
  t.join();
}

TEST_CASE("enter inside a continuation is undone when the continuation ends", "[variable][enter]") {
  ContextVariable<int> v;
  auto task = v.run(1, [&] {
    return ContextFrame::bind([&] {
      v.enter(2);
      return *v.get();
    });
  });
  CHECK(task() == 2);
  CHECK(v.get() == nullptr);
  CHECK(task() == 2);  // the captured frame is unchanged
  v.run(7, [&] {
    CHECK(task() == 2);
    CHECK(*v.get() == 7);
  });
}

TEST_CASE("enter and clear leave what was entered in frames captured before", "[variable][enter]") {
  ContextVariable<int> v;
  std::thread t([&] {
    v.enter(1);
    const ContextFrame before = ContextFrame::current();
    v.enter(2);
    CHECK(*before.get(v) == 1);
    const ContextFrame second = ContextFrame::current();
    ucm::clear();
    CHECK(*second.get(v) == 2);
    CHECK(ContextFrame::current() == ContextFrame{});
  });
  t.join();
}

TEST_CASE("update applies a function to a copy of the value and enters the result",
          "[variable][update]") {
  struct User {
    std::string name;
    std::string role;
  };
  ContextVariable<User> user;
  ContextVariable<int> counter{0};
  user.run(User{"ada", "reader"}, [&] {
    const ContextFrame before = ContextFrame::current();
    user.update([](User& u) { u.role = "admin"; });
    CHECK(user.get()->role == "admin");
    CHECK(user.get()->name == "ada");
    CHECK(before.get(user)->role == "reader");  // frames stay immutable
    counter.update([](int n) { return n + 1; });
    counter.update([](int n) { return n + 1; });
    CHECK(*counter.get() == 2);
  });
  CHECK(*counter.get() == 0);
  CHECK(user.get() == nullptr);
  struct NoDefault {
    explicit NoDefault(int v) : n(v) {}
    int n;
  };
  ContextVariable<NoDefault> nd;
  ContextFrame{}.inherit([&] {
    CHECK_THROWS_AS(nd.update([](NoDefault& x) { ++x.n; }), ucm::unbound_variable);
    ContextVariable<int> fresh;
    fresh.update([](int& n) { n = 41; });  // starts from int{}
    CHECK(*fresh.get() == 41);
  });
}

TEST_CASE("var.bind restores only that variable, on top of the running thread's other values",
          "[variable][bind]") {
  ContextVariable<std::string> span;
  ContextVariable<std::string> user;
  auto bound = span.run("captured-span", [&] {
    return user.run("captured-user", [&] {
      return span.bind(
          [&](int n) { return *span.get() + "/" + *user.get() + "/" + std::to_string(n); });
    });
  });
  const std::string seen =
      span.run("running-span", [&] { return user.run("running-user", [&] { return bound(3); }); });
  CHECK(seen == "captured-span/running-user/3");
  CHECK(span.get() == nullptr);
  auto copy = bound;
  CHECK(user.run("u", copy, 1) == "captured-span/u/1");
}

namespace {

/// Whether `variable.bind(f)` compiles for an `F`.
template <class F>
concept variable_bindable = requires(const ContextVariable<int>& variable, F&& f) {
  variable.bind(std::forward<F>(f));
};

struct Callable {
  int operator()() const { return 1; }
};

// Rejected at the bind (a requires-clause), not at the call: what can never be called.
static_assert(variable_bindable<Callable>);
static_assert(variable_bindable<const Callable&>);
static_assert(variable_bindable<decltype([](auto&&...) {})>);
static_assert(variable_bindable<int (*)()>);
static_assert(variable_bindable<int (Callable::*)() const>);
static_assert(!variable_bindable<int>);
static_assert(!variable_bindable<int*>);
static_assert(!variable_bindable<void*>);
static_assert(!variable_bindable<const char (&)[4]>);

}  // namespace

TEST_CASE("var.bind of an unbound variable runs with that variable unbound", "[variable][bind]") {
  ContextVariable<int> v{-1};
  auto bound = v.bind([&] { return std::pair(*v.get(), v.is_bound()); });
  const ContextFrame inherited = ContextFrame{}.with(v, 5);
  inherited.inherit([&] {
    v.run(6, [&] {
      const auto [value, is_bound] = bound();
      CHECK(value == -1);  // neither current's 6 nor inherited's 5: the default
      CHECK_FALSE(is_bound);
      CHECK(*v.get() == 6);
    });
  });
}

TEST_CASE("var.bind keeps the captured value alive after its window ended",
          "[variable][bind][leak]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> t;
    auto bound = t.run(Tracked("kept"), [&] { return t.bind([&] { return t.get()->text; }); });
    CHECK(Tracked::live == live_before + 1);
    std::string seen;
    std::thread th([&] { seen = bound(); });
    th.join();
    CHECK(seen == "kept");
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("var.bind of a value bound windows further out keeps the frame holding it alive",
          "[variable][bind][leak]") {
  const int live_before = Tracked::live;
  {
    ContextVariable<Tracked> t;
    ContextVariable<int> a;
    ContextVariable<int> b;
    // The current frame is two deltas over the one that holds t's value.
    auto bound = t.run(Tracked("deep"), [&] {
      return a.run(1, [&] {
        return b.run(2, [&] {
          return t.bind([&] { return t.get()->text + (a.get() == nullptr ? "" : "+a"); });
        });
      });
    });
    CHECK(Tracked::live == live_before + 1);
    std::string seen;
    std::thread th([&] { seen = bound(); });
    th.join();
    CHECK(seen == "deep");  // only t is restored
  }
  CHECK(Tracked::live == live_before);
}

TEST_CASE("a moved-from var.bind callable runs with the variable unbound, never a freed value",
          "[variable][bind]") {
  const int live_before = Tracked::live;
  ContextVariable<Tracked> t;
  auto bound = t.run(Tracked("kept"), [&] { return t.bind([&] { return t.get() != nullptr; }); });
  {
    auto moved = std::move(bound);
    CHECK(moved());
  }  // the last reference to the value's frame is gone
  CHECK(Tracked::live == live_before);
  CHECK_FALSE(bound());  // NOLINT(bugprone-use-after-move): valid but unspecified, and safe
}

TEST_CASE("a variable created later never sees values of a destroyed one", "[variable][identity]") {
  std::optional<ContextVariable<int>> slot;
  slot.emplace();
  const ContextFrame frame = ContextFrame{}.with(*slot, 42);
  CHECK(*frame.get(*slot) == 42);
  for (int i = 0; i < 100; ++i) {
    slot.reset();
    slot.emplace();  // very likely the same address
    CHECK(frame.get(*slot) == nullptr);
    frame.inherit([&] { CHECK(slot->get() == nullptr); });
  }
}

TEST_CASE("a destroyed variable's values stay in frames until the frames go", "[variable][leak]") {
  const int live_before = Tracked::live;
  ContextFrame frame;
  {
    ContextVariable<Tracked> t;
    frame = ContextFrame{}.with(t, Tracked("orphan"));
  }
  CHECK(Tracked::live == live_before + 1);
  CHECK(frame.size() == 1);
  frame = ContextFrame{};
  CHECK(Tracked::live == live_before);
}
