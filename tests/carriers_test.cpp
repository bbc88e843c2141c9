// SPDX-License-Identifier: MIT
// tests/carriers_test.cpp: the carriers of W3C headers (ucm/propagation/carriers.hpp): header
// maps, carriers of one's own, CarrierTraits and the environment, through inject and extract.
#include "ucm/propagation/carriers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ucm/propagation/w3c.hpp"
#include "w3c_support.hpp"

// ---- carriers -----------------------------------------------------------------------------

TEST_CASE("header lookup in a map is case-insensitive and an exact key wins", "[w3c][carrier]") {
  const Headers mixed{{"TraceParent", std::string(spec_traceparent)}};
  const auto frame = ucm::w3c::extract(ucm::ContextFrame{}, mixed);
  REQUIRE(frame.get(ucm::w3c::trace_context) != nullptr);

  const Headers both{{"TRACEPARENT", std::string(suite_traceparent)},
                     {"traceparent", std::string(spec_traceparent)}};
  const auto exact = ucm::w3c::extract(ucm::ContextFrame{}, both);
  REQUIRE(exact.get(ucm::w3c::trace_context) != nullptr);
  CHECK(exact.get(ucm::w3c::trace_context)->traceparent() == spec_traceparent);
}

TEST_CASE("inject writes lower-case names and replaces entries of any case", "[w3c][carrier]") {
  const auto context = TraceContext::parse(spec_traceparent, "congo=t61rcWkgMzE");
  REQUIRE(context);
  std::unordered_map<std::string, std::string> headers{
      {"TraceParent", "stale"}, {"TRACESTATE", "stale=1"}, {"content-type", "text/plain"}};
  ucm::w3c::trace_context.run(*context, [&] { ucm::w3c::inject(headers); });
  CHECK(headers.size() == 3);
  CHECK(headers.at("traceparent") == spec_traceparent);
  CHECK(headers.at("tracestate") == "congo=t61rcWkgMzE");
  CHECK(headers.at("content-type") == "text/plain");
}

TEST_CASE("inject only sets what the context has and never leaves a stale tracestate",
          "[w3c][carrier]") {
  // Like OpenTelemetry: what the caller put in a map stays when the context has nothing for it.
  Headers headers{{"traceparent", std::string(spec_traceparent)}, {"baggage", "k=v"}};
  ucm::ContextFrame{}.inherit([&] { ucm::w3c::inject(headers); });
  CHECK(headers == Headers{{"traceparent", std::string(spec_traceparent)}, {"baggage", "k=v"}});

  // A tracestate belongs to its traceparent: a new traceparent without one removes the old one.
  headers = {{"TraceState", "stale=1"}, {"other", "kept"}};
  ucm::w3c::trace_context.run(*TraceContext::parse(spec_traceparent),
                              [&] { ucm::w3c::inject(headers); });
  CHECK(headers == Headers{{"other", "kept"}, {"traceparent", std::string(spec_traceparent)}});
}

TEST_CASE("repeated tracestate and baggage headers are combined in order", "[w3c][carrier]") {
  const std::multimap<std::string, std::string> headers{
      {"traceparent", std::string(suite_traceparent)},
      {"tracestate", "foo=1,bar=2"},
      {"tracestate", "rojo=1,congo=2"},
      {"tracestate", ""},
      {"tracestate", "baz=3"},
      {"baggage", "userId=alice"},
      {"baggage", "serverNode=DF%2028,isProduction=false"}};
  const auto frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  const TraceContext* context = frame.get(ucm::w3c::trace_context);
  REQUIRE(context);
  CHECK(context->tracestate() == "foo=1,bar=2,rojo=1,congo=2,baz=3");
  const Baggage* baggage = frame.get(ucm::w3c::baggage);
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "userId=alice,serverNode=DF%2028,isProduction=false");
}

TEST_CASE("two traceparent headers make the traceparent invalid", "[w3c][carrier]") {
  const std::multimap<std::string, std::string> headers{
      {"traceparent", "00-12345678901234567890123456789011-1234567890123456-01"},
      {"traceparent", "00-12345678901234567890123456789012-1234567890123456-01"}};
  CHECK(ucm::w3c::extract(ucm::ContextFrame{}, headers).get(ucm::w3c::trace_context) == nullptr);
}

TEST_CASE("repeated traceparent headers read as one value joined by a comma", "[w3c][carrier]") {
  // A later version reads its first 55 characters and the dash after them, so the comma may
  // come after its extra fields; each case parses as the joined value does.
  const std::string later = "cc-12345678901234567890123456789011-1234567890123456-01";
  const auto extracted = [](std::initializer_list<std::string> values) {
    std::multimap<std::string, std::string> headers;
    std::string joined;
    for (const std::string& v : values) {
      if (!headers.empty()) joined += ",";
      joined += v;
      headers.emplace("traceparent", v);
    }
    const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
    const TraceContext* context = frame.get(ucm::w3c::trace_context);
    const std::optional<TraceContext> parsed = TraceContext::parse(joined);
    CHECK(parsed.has_value() == (context != nullptr));
    if (parsed && context != nullptr) CHECK(*parsed == *context);
    return context != nullptr;
  };
  CHECK(extracted({later + "-extra", "anything"}));
  CHECK(extracted({"  " + later + "-", ""}));
  CHECK_FALSE(extracted({later, "-extra"}));  // the comma is where the dash must be
  CHECK_FALSE(extracted({later + " ", "x"}));
  CHECK_FALSE(extracted({"", later + "-extra"}));
  CHECK_FALSE(extracted({later.substr(0, 20), later.substr(20) + "-x"}));
}

TEST_CASE("misspelled header names are not read", "[w3c][carrier]") {
  const Headers headers{{"trace-parent", std::string(suite_traceparent)},
                        {"trace.parent", std::string(suite_traceparent)}};
  CHECK(ucm::w3c::extract(ucm::ContextFrame{}, headers).get(ucm::w3c::trace_context) == nullptr);
}

TEST_CASE("the environment carrier uses upper-case variables and drops what it inherited",
          "[w3c][carrier]") {
  CHECK(ucm::w3c::EnvironmentCarrier::variable_name("traceparent") == "TRACEPARENT");
  CHECK(ucm::w3c::EnvironmentCarrier::variable_name("x-my.header") == "X_MY_HEADER");
  const auto context = TraceContext::parse(spec_traceparent, "congo=t61rcWkgMzE");
  REQUIRE(context);
  Baggage baggage;
  baggage.set("user", "alice smith");
  ucm::with(ucm::w3c::trace_context, *context).with(ucm::w3c::baggage, baggage).run([] {
    ucm::w3c::inject(ucm::w3c::EnvironmentCarrier{});
  });
  CHECK(std::string(std::getenv("TRACEPARENT")) == spec_traceparent);
  CHECK(std::string(std::getenv("TRACESTATE")) == "congo=t61rcWkgMzE");
  CHECK(std::string(std::getenv("BAGGAGE")) == "user=alice%20smith");

  const auto frame = ucm::w3c::extract(ucm::ContextFrame{}, ucm::w3c::EnvironmentCarrier{});
  REQUIRE(frame.get(ucm::w3c::trace_context));
  CHECK(*frame.get(ucm::w3c::trace_context) == *context);
  REQUIRE(frame.get(ucm::w3c::baggage));
  CHECK(*frame.get(ucm::w3c::baggage) == baggage);

  ucm::ContextFrame{}.inherit([] { ucm::w3c::inject(ucm::w3c::EnvironmentCarrier{}); });
  CHECK(std::getenv("TRACEPARENT") == nullptr);
  CHECK(std::getenv("TRACESTATE") == nullptr);
  CHECK(std::getenv("BAGGAGE") == nullptr);
}

namespace {
/// A carrier of its own: get returns an empty string for absent headers (OpenTelemetry's habit).
struct VectorCarrier {
  std::vector<std::pair<std::string, std::string>> fields;
  std::string get(std::string_view name) const {
    for (const auto& [k, v] : fields) {
      if (k == name) return v;
    }
    return {};
  }
  void set(std::string name, std::string value) {
    fields.emplace_back(std::move(name), std::move(value));
  }
};

/// A read-only carrier returning `const char*`.
struct PointerCarrier {
  const char* traceparent = nullptr;
  const char* get(const std::string& name) const {
    return name == "traceparent" ? traceparent : nullptr;
  }
};
}  // namespace

TEST_CASE("a carrier of one's own needs only get and set", "[w3c][carrier]") {
  static_assert(ucm::w3c::ReadableCarrier<VectorCarrier>);
  static_assert(ucm::w3c::WritableCarrier<VectorCarrier>);
  static_assert(ucm::w3c::ReadableCarrier<PointerCarrier>);
  static_assert(!ucm::w3c::WritableCarrier<PointerCarrier>);
  static_assert(!ucm::w3c::WritableCarrier<const Headers>);
  static_assert(ucm::w3c::ReadableCarrier<std::unordered_multimap<std::string, std::string>>);
  static_assert(!ucm::w3c::ReadableCarrier<std::map<std::string, int>>);

  VectorCarrier carrier;
  ucm::w3c::trace_context.run(*TraceContext::parse(spec_traceparent),
                              [&] { ucm::w3c::inject(carrier); });
  REQUIRE(carrier.fields.size() == 1);
  CHECK(carrier.fields[0].first == "traceparent");
  CHECK(ucm::w3c::extract(ucm::ContextFrame{}, carrier).get(ucm::w3c::trace_context) != nullptr);

  const std::string text(spec_traceparent);
  PointerCarrier pointer{text.c_str()};
  CHECK(ucm::w3c::extract(ucm::ContextFrame{}, pointer).get(ucm::w3c::trace_context) != nullptr);
}

namespace {
/// A header list of its own (a framework's), neither a map nor with get/set: made a carrier by a
/// CarrierTraits specialisation below.
struct HeaderList {
  std::vector<std::pair<std::string, std::string>> lines;
};

bool same_name(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}
}  // namespace

template <>
struct ucm::w3c::CarrierTraits<HeaderList> {
  template <class F>
  static void for_each(const HeaderList& list, std::string_view name, F&& visit) {
    for (const auto& [key, value] : list.lines) {
      if (same_name(key, name)) visit(std::string_view(value));
    }
  }
  static void set(HeaderList& list, std::string_view name, std::string value) {
    erase(list, name);
    list.lines.emplace_back(std::string(name), std::move(value));
  }
  static void erase(HeaderList& list, std::string_view name) {
    std::erase_if(list.lines, [&](const auto& line) { return same_name(line.first, name); });
  }
};

TEST_CASE("a CarrierTraits specialisation makes any header container a carrier, read like a map",
          "[w3c][carrier]") {
  static_assert(ucm::w3c::ReadableCarrier<HeaderList>);
  static_assert(ucm::w3c::WritableCarrier<HeaderList>);
  static_assert(!ucm::w3c::WritableCarrier<const HeaderList>);
  HeaderList list{{{"TraceState", "stale=1"}, {"BAGGAGE", "a=1"}, {"baggage", "b=2"}}};
  const ucm::ContextFrame read = ucm::w3c::extract(ucm::ContextFrame{}, list);
  REQUIRE(read.get(ucm::w3c::baggage));
  CHECK(read.get(ucm::w3c::baggage)->to_header() == "a=1,b=2");  // repeated: one list
  ucm::ContextFrame{}.inherit([&] { ucm::w3c::inject(list); });
  CHECK(list.lines.size() == 3);  // written as a map: nothing in the context, nothing removed
  ucm::w3c::trace_context.run(*TraceContext::parse(spec_traceparent),
                              [&] { ucm::w3c::inject(list); });
  using Lines = std::vector<std::pair<std::string, std::string>>;
  CHECK(list.lines == Lines{{"BAGGAGE", "a=1"},
                            {"baggage", "b=2"},
                            {"traceparent", std::string(spec_traceparent)}});
}
