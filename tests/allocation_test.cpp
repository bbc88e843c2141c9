// SPDX-License-Identifier: MIT
// Allocation counts of the core's windows, with the global allocation functions replaced by a
// per-thread counter (alloc_counter.cpp). Not built under sanitizers, which own those functions.
#include <catch2/catch.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "alloc_counter.hpp"
#include "ucm/channel.hpp"
#include "ucm/manager.hpp"
#include "ucm/propagation/w3c.hpp"
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

TEST_CASE("run_all takes one frame block per context, from the block cache once warm",
          "[manager]") {
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
  // Each builder runs in a call window on the stores built before it (so that it reads them
  // through get()), and each store lives in a block of its own: five contexts, five blocks.
  // With an empty block cache each comes from operator new; the next run reuses them.
  std::size_t cold = 0;
  {
    ucm::detail::trim_frame_cache();
    ucm_test::CountAllocations counter;
    m.run_all(4, [&] {
      cold = counter.count();
      CHECK(*e.get() == 40);
      CHECK(*d.get() == 7);
    });
  }
  CHECK(cold == 5);
  std::size_t warm = 0;
  {
    ucm_test::CountAllocations counter;
    m.run_all(5, [&] {
      warm = counter.count();
      CHECK(*e.get() == 50);
    });
  }
  CHECK(warm == 0);
}

namespace {

/// Headers of at least `size` bytes made by repeating `member(i)` joined by `separator`.
std::string repeated(std::size_t size, const std::function<std::string(std::size_t)>& member,
                     const char* separator = ",") {
  std::string header;
  header.reserve(size + 16 * 1024);
  for (std::size_t i = 0; header.size() < size; ++i) {
    if (i != 0) header += separator;
    header += member(i);
  }
  return header;
}

/// The bytes `extract` allocates for `carrier` (a fresh frame: no current context).
std::size_t extract_bytes(const std::map<std::string, std::string>& carrier,
                          ContextFrame& extracted) {
  ucm_test::CountAllocations counter;
  extracted = ucm::w3c::extract(ContextFrame(), carrier);
  return counter.bytes();
}

// At most 64 members and 8 KiB of baggage, 32 tracestate members and one traceparent are kept:
// what extract may allocate is bounded by that, not by the header's size.
constexpr std::size_t bounded = 64 * 1024;

}  // namespace

TEST_CASE("extracting a baggage header of megabytes allocates a bounded amount", "[w3c][baggage]") {
  for (const std::size_t size : {std::size_t{1} << 20, std::size_t{8} << 20}) {
    INFO("header of " << size << " bytes");
    ContextFrame extracted;
    const auto baggage_of = [&](std::string header) {
      const std::map<std::string, std::string> carrier{{"baggage", std::move(header)}};
      const std::size_t bytes = extract_bytes(carrier, extracted);
      CHECK(bytes < bounded);
      return extracted.get(ucm::w3c::baggage);
    };

    // Many small members: the first 64 are kept.
    const ucm::w3c::Baggage* b =
        baggage_of(repeated(size, [](std::size_t i) { return "k" + std::to_string(i) + "=v"; }));
    REQUIRE(b != nullptr);
    CHECK(b->size() == ucm::w3c::Baggage::max_members);
    CHECK(b->get("k63") != nullptr);

    // One key repeated with percent-encoded bytes that are not UTF-8: the last value wins.
    b = baggage_of(repeated(
        size, [](std::size_t i) { return "a = %FF%C3%28" + std::to_string(i % 10) + " ;p=1;q"; }));
    REQUIRE(b != nullptr);
    REQUIRE(b->size() == 1);
    CHECK(b->begin()->properties.size() == 2);

    // Members too big to be kept, then one that fits.
    b = baggage_of(repeated(size,
                            [](std::size_t i) {
                              return "big" + std::to_string(i) + "=" + std::string(9000, 'x');
                            }) +
                   ",small=1");
    REQUIRE(b != nullptr);
    CHECK(b->size() == 1);
    CHECK(*b->get("small") == "1");

    // One member of megabytes: a value, then properties.
    b = baggage_of("huge=" + std::string(size, 'x') + ",small=1");
    REQUIRE(b != nullptr);
    CHECK(b->size() == 1);
    b = baggage_of("huge=1;" +
                   repeated(
                       size, [](std::size_t) { return "p=%41"; }, ";") +
                   ",small=2");
    REQUIRE(b != nullptr);
    CHECK(*b->get("small") == "2");

    // Megabytes of valid members, then an invalid one: the header is ignored.
    CHECK(baggage_of(repeated(size, [](std::size_t i) { return "k" + std::to_string(i) + "=v"; }) +
                     ",no-equals") == nullptr);
  }
}

TEST_CASE("extracting traceparent and tracestate headers of megabytes allocates a bounded amount",
          "[w3c][traceparent][tracestate]") {
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  for (const std::size_t size : {std::size_t{1} << 20, std::size_t{8} << 20}) {
    INFO("header of " << size << " bytes");
    ContextFrame extracted;

    // OWS around a traceparent, a later version's extra fields, a tracestate of empty members.
    std::map<std::string, std::string> carrier{
        {"traceparent", traceparent + std::string(size, ' ')},
        {"tracestate", "a=1," + repeated(size, [](std::size_t) { return " "; })}};
    CHECK(extract_bytes(carrier, extracted) < bounded);
    const ucm::w3c::TraceContext* trace = extracted.get(ucm::w3c::trace_context);
    REQUIRE(trace != nullptr);
    CHECK(*trace->state.get("a") == "1");

    carrier = {{"traceparent", "cc" + traceparent.substr(2) + "-" + std::string(size, 'x')},
               {"tracestate",
                repeated(size, [](std::size_t i) { return "k" + std::to_string(i) + "=v"; })}};
    CHECK(extract_bytes(carrier, extracted) < bounded);
    trace = extracted.get(ucm::w3c::trace_context);
    REQUIRE(trace != nullptr);
    CHECK(trace->state.empty());  // more than 32 members: invalid as a whole

    carrier = {{"traceparent", traceparent + std::string(size, 'x')}};
    CHECK(extract_bytes(carrier, extracted) < bounded);
    CHECK(extracted.get(ucm::w3c::trace_context) == nullptr);
  }
}

TEST_CASE("announcing on a channel nobody listens to allocates nothing", "[channel]") {
  struct Message {
    std::string text;
  };
  ucm::WindowChannel<Message> channel;
  ucm::TracingChannel<Message> tracing;
  const Message message{"a message long enough not to fit a small string buffer"};
  Message traced{"another message long enough not to fit a small string buffer"};
  std::size_t allocations = 0;
  int calls = 0;
  {
    ucm_test::CountAllocations counter;
    channel.publish(message);
    calls += channel.run_stores(message, [] { return 1; });
    tracing.trace_sync(traced, [&] { ++calls; });
    allocations = counter.count();
  }
  CHECK(allocations == 0);
  CHECK(calls == 2);
  // With a subscriber, a publish still allocates nothing (the list is read in place).
  int seen = 0;
  const ucm::Subscription sub = channel.subscribe([&](const Message&) { ++seen; });
  {
    ucm_test::CountAllocations counter;
    channel.publish(message);
    allocations = counter.count();
  }
  CHECK(allocations == 0);
  CHECK(seen == 1);
}
