// SPDX-License-Identifier: MIT
// Tests of misuse with defined behaviour: scopes closed out of order.
#include "ucm/misuse.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <optional>
#include <thread>

#include "test_support.hpp"
#include "ucm/frame.hpp"
#include "ucm/scope.hpp"
#include "ucm/variable.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;
using ucm::ContextVariableScope;

namespace {
using HandlerGuard = ucm_test::MisuseCounter;
auto& reports = ucm_test::MisuseCounter::reports;
}  // namespace

TEST_CASE("a scope closed out of order restores what it saved and reports misuse", "[misuse]") {
  HandlerGuard guard;
  ContextVariable<int> v;
  std::thread t([&] {
    std::optional<ContextVariableScope<int>> a;
    std::optional<ContextVariableScope<int>> b;
    a.emplace(v, 1);
    b.emplace(v, 2);
    a.reset();  // out of order
    CHECK(reports == 1);
    CHECK(v.get() == nullptr);  // a restored what it saved
    b.reset();
    CHECK(*v.get() == 1);  // b restored what it saved: a's frame, still alive
    ucm::clear();
    CHECK(v.get() == nullptr);
    // The thread still works normally afterwards.
    v.run(5, [&] { CHECK(*v.get() == 5); });
  });
  t.join();
  CHECK(reports >= 1);
}

TEST_CASE("frames of misordered scopes are released at thread exit", "[misuse][leak]") {
  HandlerGuard guard;
  const int live_before = ucm_test::Tracked::live;
  {
    ContextVariable<ucm_test::Tracked> v;
    std::thread t([&] {
      auto a = std::make_unique<ContextVariableScope<ucm_test::Tracked>>(v, ucm_test::Tracked("a"));
      auto b = std::make_unique<ContextVariableScope<ucm_test::Tracked>>(v, ucm_test::Tracked("b"));
      a.reset();
      b.reset();
    });
    t.join();
  }
  CHECK(reports >= 1);
  CHECK(ucm_test::Tracked::live == live_before);
}

TEST_CASE("in-order use never reports misuse, enter at top level included", "[misuse]") {
  HandlerGuard guard;
  ContextVariable<int> v;
  std::thread t([&] {
    v.enter(1);
    {
      ContextVariableScope a(v, 2);
      v.enter(3);
      ContextVariableScope b(v, 4);
    }
    ContextFrame::current().inherit([&] { v.enter(5); });
    CHECK(*v.get() == 1);
  });
  t.join();
  CHECK(reports == 0);
}

TEST_CASE("an enter after scopes of empty frames closed out of order is released at thread exit",
          "[misuse][leak]") {
  HandlerGuard guard;
  const int live_before = ucm_test::Tracked::live;
  {
    ContextVariable<ucm_test::Tracked> v;
    std::thread t([&] {
      // Windows over empty frames own nothing, so closing them out of order keeps no frame, and
      // leaves the depth wrong (1 at the top of the thread).
      std::optional<ucm::ContextFrameScope> a;
      std::optional<ucm::ContextFrameScope> b;
      a.emplace(ContextFrame{});
      b.emplace(ContextFrame{});
      a.reset();
      b.reset();
      v.enter(ucm_test::Tracked("entered"));
      CHECK(v.get() != nullptr);
    });
    t.join();
  }
  CHECK(reports >= 1);
  CHECK(ucm_test::Tracked::live == live_before);
}
