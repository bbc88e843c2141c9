// SPDX-License-Identifier: MIT
// Tests of ucm/with.hpp: several variables set with one frame.
#include "ucm/with.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "ucm/frame.hpp"
#include "ucm/variable.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;

TEST_CASE("with(...).with(...).run sets every variable in one window", "[with]") {
  ContextVariable<int> a;
  ContextVariable<std::string> b;
  ContextVariable<std::unique_ptr<int>> c;
  const int result = ucm::with(a, 1)
                         .with(b, "two")
                         .with(c, std::make_unique<int>(3))
                         .run(
                             [&](int add) {
                               CHECK(*a.get() == 1);
                               CHECK(*b.get() == "two");
                               CHECK(**c.get() == 3);
                               CHECK(*a.get_active() == 1);
                               CHECK(ContextFrame::current().size() == 3);
                               return *a.get() + add;
                             },
                             10);
  CHECK(result == 11);
  CHECK(a.get() == nullptr);
  CHECK(b.get() == nullptr);
}

TEST_CASE("with(...).frame() builds the frame on top of current without running", "[with]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  a.run(1, [&] {
    const ContextFrame frame = ucm::with(b, 2).frame();
    CHECK(b.get() == nullptr);
    CHECK(*frame.get(a) == 1);
    CHECK(*frame.get(b) == 2);
  });
}

TEST_CASE("a set of bindings held in a variable can be used more than once", "[with]") {
  ContextVariable<std::string> a;
  const auto set = ucm::with(a, std::string("again"));
  CHECK(set.run([&] { return *a.get(); }) == "again");
  CHECK(set.run([&] { return *a.get(); }) == "again");
  const ContextFrame f1 = set.frame();
  const ContextFrame f2 = set.frame();
  CHECK_FALSE(f1 == f2);
  CHECK(*f1.get(a) == *f2.get(a));
}

TEST_CASE("when a variable is set twice in one set, the later value wins", "[with]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  ucm::with(a, 1).with(b, 2).with(a, 3).run([&] {
    CHECK(*a.get() == 3);
    CHECK(*b.get() == 2);
    CHECK(ContextFrame::current().size() == 2);
  });
}

TEST_CASE("with(...).enter sets every variable for the rest of the window", "[with][enter]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  ContextFrame{}.inherit([&] {
    ucm::with(a, 1).with(b, 2).enter();
    CHECK(*a.get() == 1);
    CHECK(*b.get_active() == 2);
  });
  CHECK(a.get() == nullptr);
}
