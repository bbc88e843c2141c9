// SPDX-License-Identifier: MIT
// tests/beast_test.cpp: Boost.Beast's HTTP fields, requests and responses as W3C carriers
// (ucm/propagation/beast.hpp), read and written as the map carriers are (tests/w3c_test.cpp).
#include "ucm/propagation/beast.hpp"

#include <catch2/catch.hpp>

#include <boost/beast/http.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "ucm/ucm.hpp"

namespace {

namespace http = boost::beast::http;
using ucm::w3c::Baggage;
using ucm::w3c::TraceContext;

constexpr std::string_view spec_traceparent =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static_assert(ucm::w3c::ReadableCarrier<http::fields>);
static_assert(ucm::w3c::WritableCarrier<http::fields>);
static_assert(ucm::w3c::ReadableCarrier<http::request<http::string_body>>);
static_assert(ucm::w3c::WritableCarrier<http::request<http::string_body>>);
static_assert(ucm::w3c::ReadableCarrier<http::response<http::empty_body>>);
static_assert(ucm::w3c::WritableCarrier<http::response_header<>>);
static_assert(!ucm::w3c::WritableCarrier<const http::fields>);

/// Every value of header `name` in `fields`, in order, any case.
std::vector<std::string> values(const http::fields& fields, std::string_view name) {
  std::vector<std::string> out;
  for (auto [it, end] = fields.equal_range({name.data(), name.size()}); it != end; ++it) {
    out.emplace_back(it->value());
  }
  return out;
}

}  // namespace

TEST_CASE("inject writes a Beast request's headers, replacing those of any case",
          "[beast][w3c][carrier]") {
  const auto context = TraceContext::parse(spec_traceparent, "congo=t61rcWkgMzE");
  REQUIRE(context);
  http::request<http::string_body> request{http::verb::get, "/work", 11};
  request.set("TraceParent", "stale");
  request.insert("TRACESTATE", "stale=1");
  request.insert("tracestate", "stale=2");
  request.set(http::field::content_type, "text/plain");
  ucm::with(ucm::w3c::trace_context, *context)
      .with(ucm::w3c::baggage, Baggage{}.with("user", "alice smith"))
      .run([&] { ucm::w3c::inject(request); });
  CHECK(values(request, "traceparent") == std::vector<std::string>{std::string(spec_traceparent)});
  CHECK(values(request, "tracestate") == std::vector<std::string>{"congo=t61rcWkgMzE"});
  CHECK(values(request, "baggage") == std::vector<std::string>{"user=alice%20smith"});
  CHECK(request[http::field::content_type] == "text/plain");
  CHECK(request.target() == "/work");
}

TEST_CASE("inject only sets what the context has and never leaves a stale tracestate in Beast",
          "[beast][w3c][carrier]") {
  http::fields fields;
  fields.set("traceparent", std::string(spec_traceparent));
  fields.set("baggage", "k=v");
  ucm::ContextFrame{}.inherit([&] { ucm::w3c::inject(fields); });
  CHECK(values(fields, "traceparent") == std::vector<std::string>{std::string(spec_traceparent)});
  CHECK(values(fields, "baggage") == std::vector<std::string>{"k=v"});

  http::fields other;
  other.set("TraceState", "stale=1");
  ucm::w3c::trace_context.run(*TraceContext::parse(spec_traceparent),
                              [&] { ucm::w3c::inject(other); });
  CHECK(values(other, "tracestate").empty());
  CHECK(values(other, "traceparent") == std::vector<std::string>{std::string(spec_traceparent)});
}

TEST_CASE("extract reads a Beast request case-insensitively, repeated headers as one list",
          "[beast][w3c][carrier]") {
  http::request<http::empty_body> request{http::verb::get, "/", 11};
  request.insert("TRACEPARENT", std::string(spec_traceparent));
  request.insert("tracestate", "foo=1,bar=2");
  request.insert("TraceState", "rojo=1");
  request.insert("Baggage", "userId=alice");
  request.insert("baggage", "serverNode=DF%2028");
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, request);
  const TraceContext* context = frame.get(ucm::w3c::trace_context);
  REQUIRE(context);
  CHECK(context->traceparent() == spec_traceparent);
  CHECK(context->tracestate() == "foo=1,bar=2,rojo=1");
  const Baggage* baggage = frame.get(ucm::w3c::baggage);
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "userId=alice,serverNode=DF%2028");
}

TEST_CASE("malformed headers in a Beast message are ignored, each on its own",
          "[beast][w3c][carrier]") {
  http::response<http::string_body> response;
  response.set("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  response.set("baggage", "user=bob");
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, response);
  CHECK(frame.get(ucm::w3c::trace_context) == nullptr);
  REQUIRE(frame.get(ucm::w3c::baggage));
  CHECK(*frame.get(ucm::w3c::baggage)->get("user") == "bob");

  response.set("traceparent", std::string(spec_traceparent));
  response.set("baggage", "user=%zz");
  const ucm::ContextFrame other = ucm::w3c::extract(ucm::ContextFrame{}, response);
  CHECK(other.get(ucm::w3c::trace_context) != nullptr);
  CHECK(other.get(ucm::w3c::baggage) == nullptr);

  // Two traceparent headers are one invalid list, as in a map.
  response.insert("traceparent", std::string(spec_traceparent));
  CHECK(ucm::w3c::extract(ucm::ContextFrame{}, response).get(ucm::w3c::trace_context) == nullptr);
}

TEST_CASE("inject into a Beast request then extract gives the context back field for field",
          "[beast][w3c][carrier]") {
  const TraceContext trace = TraceContext::new_trace();
  const Baggage baggage = Baggage{}.with("tenant", "acme").with("user", "a,b;c=d");
  http::request<http::string_body> request{http::verb::post, "/inner", 11};
  ucm::with(ucm::w3c::trace_context, trace).with(ucm::w3c::baggage, baggage).run([&] {
    ucm::w3c::inject(request);
  });
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, request);
  REQUIRE(frame.get(ucm::w3c::trace_context));
  CHECK(*frame.get(ucm::w3c::trace_context) == trace);
  REQUIRE(frame.get(ucm::w3c::baggage));
  CHECK(frame.get(ucm::w3c::baggage)->to_header() == baggage.to_header());
}
