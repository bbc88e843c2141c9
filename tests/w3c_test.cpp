// SPDX-License-Identifier: MIT
// tests/w3c_test.cpp: inject and extract (ucm/propagation/w3c.hpp): the W3C context variables
// from and to carriers. The parts have tests of their own: trace_context_test.cpp,
// trace_state_test.cpp, baggage_test.cpp, carriers_test.cpp and baggage_codecs_test.cpp.
#include "ucm/propagation/w3c.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "w3c_support.hpp"

namespace {
/// A carrier whose reads of one header throw.
struct ThrowingCarrier {
  std::string throwing;
  Headers headers;
  std::optional<std::string> get(std::string_view name) const {
    if (name == throwing) throw std::runtime_error("carrier failure");
    const auto it = headers.find(std::string(name));
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};
}  // namespace

// ---- inject / extract ---------------------------------------------------------------------

TEST_CASE("extract adds the headers' context to the current frame", "[w3c][extract]") {
  static ucm::ContextVariable<std::string> request_id;
  const Headers headers{{"traceparent", std::string(spec_traceparent)},
                        {"tracestate", "congo=t61rcWkgMzE"},
                        {"baggage", "user=alice"}};
  request_id.run("r-42", [&] {
    const ucm::ContextFrame frame = ucm::w3c::extract(headers);
    REQUIRE(frame.get(request_id));
    CHECK(*frame.get(request_id) == "r-42");
    REQUIRE(frame.get(ucm::w3c::trace_context));
    CHECK(frame.get(ucm::w3c::trace_context)->tracestate() == "congo=t61rcWkgMzE");
    REQUIRE(frame.get(ucm::w3c::baggage));
    CHECK(*frame.get(ucm::w3c::baggage)->get("user") == "alice");
  });
}

TEST_CASE("the extracted frame runs as a continuation of the caller", "[w3c][extract]") {
  const Headers headers{{"traceparent", std::string(spec_traceparent)}, {"baggage", "user=alice"}};
  CHECK(ucm::w3c::trace_context.get() == nullptr);
  {
    ucm::ContextFrameScope scope(ucm::w3c::extract(headers));
    REQUIRE(ucm::w3c::trace_context.get());
    CHECK(ucm::w3c::trace_context.get()->traceparent() == spec_traceparent);
    // Inherited from the caller (follows-from), not bound here (child-of).
    CHECK(ucm::w3c::trace_context.get_active() == nullptr);
    CHECK(ucm::w3c::trace_context.get_inherited() != nullptr);
    // Work posted elsewhere keeps it.
    std::string seen;
    std::thread worker(
        ucm::ContextFrame::bind([&] { seen = *ucm::w3c::baggage.get()->get("user"); }));
    worker.join();
    CHECK(seen == "alice");
  }
  CHECK(ucm::w3c::trace_context.get() == nullptr);
  CHECK(ucm::w3c::baggage.get() == nullptr);

  const std::string user =
      ucm::w3c::extract(headers).inherit([] { return *ucm::w3c::baggage.get()->get("user"); });
  CHECK(user == "alice");
}

TEST_CASE("an invalid traceparent keeps the current trace context and baggage still applies",
          "[w3c][extract]") {
  const auto current = TraceContext::parse(suite_traceparent);
  REQUIRE(current);
  const Headers headers{{"traceparent", "00-00000000000000000000000000000000-1234567890123456-01"},
                        {"tracestate", "foo=1"},
                        {"baggage", "user=alice"}};
  ucm::w3c::trace_context.run(*current, [&] {
    const ucm::ContextFrame frame = ucm::w3c::extract(headers);
    REQUIRE(frame.get(ucm::w3c::trace_context));
    CHECK(*frame.get(ucm::w3c::trace_context) == *current);  // tracestate not parsed either
    REQUIRE(frame.get(ucm::w3c::baggage));
    CHECK(*frame.get(ucm::w3c::baggage)->get("user") == "alice");
  });
  const ucm::ContextFrame fresh = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  CHECK(fresh.get(ucm::w3c::trace_context) == nullptr);
}

TEST_CASE("an invalid baggage header is ignored whole and the trace context still applies",
          "[w3c][extract]") {
  Baggage before;
  before.set("kept", "yes");
  const Headers headers{{"traceparent", std::string(spec_traceparent)},
                        {"baggage", "good=1,bad value=2"}};
  ucm::w3c::baggage.run(before, [&] {
    const ucm::ContextFrame frame = ucm::w3c::extract(headers);
    REQUIRE(frame.get(ucm::w3c::trace_context));
    REQUIRE(frame.get(ucm::w3c::baggage));
    CHECK(*frame.get(ucm::w3c::baggage) == before);
  });
}

TEST_CASE("a valid baggage header replaces the current baggage and an empty one changes nothing",
          "[w3c][extract]") {
  Baggage before;
  before.set("old", "1");
  ucm::w3c::baggage.run(before, [&] {
    const auto replaced = ucm::w3c::extract(Headers{{"baggage", "new=2"}});
    CHECK(replaced.get(ucm::w3c::baggage)->to_header() == "new=2");
    const auto unchanged = ucm::w3c::extract(Headers{{"baggage", " , "}});
    CHECK(*unchanged.get(ucm::w3c::baggage) == before);
  });
}

TEST_CASE("extract never throws: a carrier that throws counts as a missing header",
          "[w3c][extract]") {
  static_assert(noexcept(ucm::w3c::extract(std::declval<const ThrowingCarrier&>())));
  ThrowingCarrier carrier{"baggage",
                          {{"traceparent", std::string(spec_traceparent)}, {"baggage", "a=1"}}};
  auto frame = ucm::w3c::extract(ucm::ContextFrame{}, carrier);
  CHECK(frame.get(ucm::w3c::trace_context) != nullptr);
  CHECK(frame.get(ucm::w3c::baggage) == nullptr);

  carrier.throwing = "tracestate";
  carrier.headers["tracestate"] = "a=1";
  frame = ucm::w3c::extract(ucm::ContextFrame{}, carrier);
  REQUIRE(frame.get(ucm::w3c::trace_context) != nullptr);
  CHECK(frame.get(ucm::w3c::trace_context)->state.empty());
  CHECK(frame.get(ucm::w3c::baggage) != nullptr);

  carrier.throwing = "traceparent";
  frame = ucm::w3c::extract(ucm::ContextFrame{}, carrier);
  CHECK(frame.get(ucm::w3c::trace_context) == nullptr);
  CHECK(frame.get(ucm::w3c::baggage) != nullptr);
}

TEST_CASE("inject then extract gives back the trace context and baggage field for field",
          "[w3c][extract]") {
  auto context = TraceContext::new_trace();
  context.state.set("rojo", "00f067aa0ba902b7");
  context.state.set("tenant@vendor", " value with spaces");
  Baggage baggage;
  baggage.set("user", "Zoë \"the admin\", 100%; ok=yes");
  baggage.set("flag", "", {{"ttl", "30"}, {"private", std::nullopt}});
  Headers headers;
  ucm::with(ucm::w3c::trace_context, context).with(ucm::w3c::baggage, baggage).run([&] {
    ucm::w3c::inject(headers);
  });
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  REQUIRE(frame.get(ucm::w3c::trace_context));
  CHECK(*frame.get(ucm::w3c::trace_context) == context);
  REQUIRE(frame.get(ucm::w3c::baggage));
  CHECK(*frame.get(ucm::w3c::baggage) == baggage);
}

TEST_CASE("inject reads the frame it is given", "[w3c][extract]") {
  const auto context = TraceContext::parse(spec_traceparent);
  REQUIRE(context);
  const ucm::ContextFrame frame = ucm::ContextFrame{}.with(ucm::w3c::trace_context, *context);
  Headers headers;
  ucm::w3c::inject(frame, headers);
  CHECK(headers == Headers{{"traceparent", std::string(spec_traceparent)}});
}

TEST_CASE("an invalid trace context is never injected", "[w3c][extract]") {
  Headers headers;
  ucm::w3c::trace_context.run(TraceContext{}, [&] { ucm::w3c::inject(headers); });
  CHECK(headers.empty());
  TraceContext zero_parent = TraceContext::new_trace();
  zero_parent.parent_id = SpanId{};
  ucm::w3c::trace_context.run(zero_parent, [&] { ucm::w3c::inject(headers); });
  CHECK(headers.empty());
}
