// SPDX-License-Identifier: MIT
// Allocation counts of the core's windows, with the global allocation functions replaced by a
// per-thread counter (alloc_counter.cpp). Not built under sanitizers, which own those functions.
#include <catch2/catch.hpp>

#include <cstddef>

#include "alloc_counter.hpp"
#include "ucm/manager.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;

TEST_CASE("with builds one frame with one allocation however many variables it sets", "[with]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  ContextVariable<int> c;
  ContextVariable<int> d;
  a.run(0, [&] {
    auto set = ucm::with(a, 1).with(b, 2).with(c, 3).with(d, 4);
    std::size_t allocations = 0;
    {
      // Empty this thread's frame-block cache, so the window must take its block from
      // operator new and the count shows it.
      ucm::detail::trim_frame_cache();
      ucm_test::CountAllocations counter;
      std::move(set).run([&] {
        allocations = counter.count();
        CHECK(*d.get() == 4);
      });
    }
    CHECK(allocations == 1);
  });
}

TEST_CASE("a call window setting one variable allocates once", "[with][variable]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  b.run(1, [&] {
    std::size_t allocations = 0;
    {
      // Empty this thread's frame-block cache, so the window must take its block from
      // operator new and the count shows it.
      ucm::detail::trim_frame_cache();
      ucm_test::CountAllocations counter;
      a.run(2, [&] { allocations = counter.count(); });
    }
    CHECK(allocations == 1);
    std::size_t bound_calls = 0;
    auto bound = ContextFrame::bind([] {});
    {
      ucm_test::CountAllocations counter;
      bound();
      bound_calls = counter.count();
    }
    CHECK(bound_calls == 0);  // a continuation window allocates nothing
  });
}

TEST_CASE("run_all allocates one frame for N contexts", "[manager]") {
  ContextVariable<int> a;
  ContextVariable<int> b;
  ContextVariable<int> c;
  ContextVariable<int> d;
  ContextVariable<int> e;
  ucm::ContextManager<int> m;
  m.register_context("a", a, [](int r) { return r; })
      .register_context("b", b, [](int r) { return r + 1; })
      .register_context("c", c, [](int r) { return r + 2; })
      .register_context("d", d, [](int r) { return r + 3; })
      .register_context("e", e, [&a](int, const ucm::BuildView& v) { return *v.get(a) * 10; });
  std::size_t allocations = 0;
  {
    // See above: the window must take its block from operator new.
    ucm::detail::trim_frame_cache();
    ucm_test::CountAllocations counter;
    m.run_all(4, [&] {
      allocations = counter.count();
      CHECK(*e.get() == 40);
      CHECK(*d.get() == 7);
    });
  }
  CHECK(allocations == 1);
}
