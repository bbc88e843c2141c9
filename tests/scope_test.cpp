// SPDX-License-Identifier: MIT
// Tests of ucm/scope.hpp: ContextVariableScope, ContextFrameScope and ucm::clear.
#include "ucm/scope.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <thread>

#include "ucm/frame.hpp"
#include "ucm/variable.hpp"

using ucm::ContextFrame;
using ucm::ContextFrameScope;
using ucm::ContextVariable;
using ucm::ContextVariableScope;

TEST_CASE("ContextVariableScope sets a value until the end of the block", "[scope]") {
  ContextVariable<std::string> v;
  {
    ContextVariableScope outer(v, "outer");  // T deduced from the variable
    CHECK(*v.get() == "outer");
    CHECK(*v.get_active() == "outer");
    {
      ContextVariableScope<std::string> inner(v, std::string("inner"));
      CHECK(*v.get() == "inner");
    }
    CHECK(*v.get() == "outer");
  }
  CHECK(v.get() == nullptr);
}

TEST_CASE("ContextVariableScope restores during unwinding", "[scope][exceptions]") {
  ContextVariable<int> v;
  auto throws = [&] {
    ContextVariableScope s(v, 1);
    throw std::runtime_error("x");
  };
  CHECK_THROWS_AS(throws(), std::runtime_error);
  CHECK(v.get() == nullptr);
}

TEST_CASE("ContextFrameScope over a frame opens a continuation window", "[scope]") {
  ContextVariable<int> v;
  const ContextFrame frame = ContextFrame{}.with(v, 3);
  v.run(1, [&] {
    {
      ContextFrameScope s(frame);
      CHECK(*v.get() == 3);
      CHECK(v.get_active() == nullptr);
      CHECK(*v.get_inherited() == 3);
      CHECK(ContextFrame::current() == frame);
    }
    CHECK(*v.get() == 1);
    CHECK(*v.get_active() == 1);
    CHECK(v.get_inherited() == nullptr);
  });
}

TEST_CASE("ContextFrameScope with call_window changes only current", "[scope]") {
  ContextVariable<int> v;
  const ContextFrame inherited = ContextFrame{}.with(v, 1);
  const ContextFrame called = ContextFrame{}.with(v, 2);
  inherited.inherit([&] {
    {
      ContextFrameScope s(ucm::call_window, called);
      CHECK(*v.get() == 2);
      CHECK(*v.get_active() == 2);
      CHECK(*v.get_inherited() == 1);
    }
    CHECK(*v.get() == 1);
    CHECK(ContextFrame::current() == inherited);
  });
}

TEST_CASE("ContextFrameScope keeps its frame alive, even a temporary", "[scope]") {
  ContextVariable<std::string> v;
  {
    ContextFrameScope s(ContextFrame{}.with(v, "temporary"));
    CHECK(*v.get() == "temporary");
  }
  CHECK(v.get() == nullptr);
}

TEST_CASE("clear resets this thread's slots and enclosing windows still restore",
          "[scope][clear]") {
  ContextVariable<int> v;
  const ContextFrame frame = ContextFrame{}.with(v, 1);
  frame.inherit([&] {
    v.run(2, [&] {
      ucm::clear();
      CHECK(v.get() == nullptr);
      CHECK(v.get_inherited() == nullptr);
      CHECK(ContextFrame::current() == ContextFrame{});
      v.enter(3);
      CHECK(*v.get() == 3);
    });
    // The call window restored everything it saved, inherited included: nothing outlives it.
    CHECK(*v.get() == 1);
    CHECK(ContextFrame::current() == frame);
    CHECK(*v.get_inherited() == 1);
  });
  CHECK(v.get() == nullptr);
  frame.inherit([&] {
    ucm::clear();
    CHECK(v.get() == nullptr);
  });
  CHECK(ContextFrame::inherited() == ContextFrame{});
  CHECK(ContextFrame::current() == ContextFrame{});
}

TEST_CASE("a new thread starts with all three slots empty", "[scope][threads]") {
  ContextVariable<int> v;
  v.run(1, [&] {
    bool empty = false;
    std::thread t([&] {
      empty = v.get() == nullptr && v.get_inherited() == nullptr && v.get_active() == nullptr &&
              ContextFrame::current() == ContextFrame{} &&
              ContextFrame::inherited() == ContextFrame{};
    });
    t.join();
    CHECK(empty);
  });
}
