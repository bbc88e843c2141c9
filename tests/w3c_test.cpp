// SPDX-License-Identifier: MIT
// tests/w3c_test.cpp: W3C Trace Context and Baggage (ucm/propagation/w3c.hpp). Each case is
// named after the rule it checks; the header examples come from the specs and from the W3C
// trace-context test suite (test/test.py).
#include "ucm/propagation/w3c.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using ucm::w3c::Baggage;
using ucm::w3c::BaggageProperty;
using ucm::w3c::SpanId;
using ucm::w3c::TraceContext;
using ucm::w3c::TraceId;
using ucm::w3c::TraceState;

constexpr std::string_view spec_traceparent =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::string_view suite_traceparent =
    "00-12345678901234567890123456789012-1234567890123456-01";

bool traceparent_valid(std::string_view header) { return TraceContext::parse(header).has_value(); }

std::optional<TraceState> tracestate(std::string_view header) { return TraceState::parse(header); }

bool tracestate_valid(std::string_view header) { return TraceState::parse(header).has_value(); }

std::string repeat(char c, std::size_t n) { return std::string(n, c); }

using Headers = std::map<std::string, std::string>;

}  // namespace

// ---- traceparent --------------------------------------------------------------------------

TEST_CASE("a version-00 traceparent from the spec's examples parses into its fields",
          "[w3c][traceparent]") {
  const auto sampled = TraceContext::parse(spec_traceparent);
  REQUIRE(sampled);
  CHECK(sampled->trace_id.to_hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(sampled->parent_id.to_hex() == "00f067aa0ba902b7");
  CHECK(sampled->flags == 0x01);
  CHECK(sampled->sampled());
  CHECK(sampled->state.empty());

  const auto unsampled =
      TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(unsampled);
  CHECK_FALSE(unsampled->sampled());
  CHECK(unsampled->trace_id == sampled->trace_id);
}

TEST_CASE("formatting a parsed traceparent gives the same header back", "[w3c][traceparent]") {
  for (const std::string_view header :
       {spec_traceparent, suite_traceparent,
        std::string_view("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")}) {
    const auto context = TraceContext::parse(header);
    REQUIRE(context);
    CHECK(context->traceparent() == header);
  }
}

TEST_CASE("version ff is invalid", "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid("ff-12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("ff-12345678901234567890123456789012-1234567890123456-01-00"));
}

TEST_CASE("the version is exactly two lower-case hex digits followed by a dash",
          "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid(".0-12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("0.-12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("000-12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("0000-12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("0-12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("0A-12345678901234567890123456789012-1234567890123456-01"));
}

TEST_CASE("a version-00 traceparent must be exactly 55 characters", "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-01."));
  CHECK_FALSE(traceparent_valid(
      "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-01-"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-0"));
  CHECK_FALSE(traceparent_valid(""));
}

TEST_CASE("a higher version is parsed from its first 55 characters when a dash or the end follows",
          "[w3c][traceparent]") {
  const auto plain = TraceContext::parse("cc-12345678901234567890123456789012-1234567890123456-01");
  REQUIRE(plain);
  CHECK(plain->trace_id.to_hex() == "12345678901234567890123456789012");
  CHECK(plain->parent_id.to_hex() == "1234567890123456");
  CHECK(plain->sampled());

  const auto extended = TraceContext::parse(
      "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like");
  REQUIRE(extended);
  CHECK(extended->trace_id.to_hex() == "12345678901234567890123456789012");
  // Re-sent as the highest version this implementation knows.
  CHECK(extended->traceparent() == "00-12345678901234567890123456789012-1234567890123456-01");

  CHECK_FALSE(traceparent_valid(
      "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like"));
  CHECK_FALSE(traceparent_valid("cc-12345678901234567890123456789012-1234567890123456-0"));
  CHECK_FALSE(traceparent_valid("01-12345678901234567890123456789012-1234567890123456"));
}

TEST_CASE("a higher version keeps only the flags this version defines", "[w3c][traceparent]") {
  const auto future =
      TraceContext::parse("01-12345678901234567890123456789012-1234567890123456-ff");
  REQUIRE(future);
  CHECK(future->flags == TraceContext::known_flags);
}

TEST_CASE("an all-zero trace-id is invalid", "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid("00-00000000000000000000000000000000-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("cc-00000000000000000000000000000000-1234567890123456-01"));
}

TEST_CASE("an all-zero parent-id is invalid", "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-0000000000000000-01"));
}

TEST_CASE("trace-id, parent-id and trace-flags are lower-case hex only", "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"));
  CHECK_FALSE(traceparent_valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"));
  CHECK_FALSE(traceparent_valid("00-.2345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-1234567890123456789012345678901.-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-.234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-123456789012345.-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-.0"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-0."));
  CHECK_FALSE(traceparent_valid("00-1234567890123456789012345678901g-1234567890123456-01"));
}

TEST_CASE("each field of a traceparent has its exact length", "[w3c][traceparent]") {
  CHECK_FALSE(traceparent_valid("00-123456789012345678901234567890123-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-1234567890123456789012345678901-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-12345678901234567-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-123456789012345-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-001"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456-1"));
  CHECK_FALSE(traceparent_valid("00_12345678901234567890123456789012-1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012_1234567890123456-01"));
  CHECK_FALSE(traceparent_valid("00-12345678901234567890123456789012-1234567890123456_01"));
}

TEST_CASE("leading and trailing OWS around a traceparent is ignored", "[w3c][traceparent]") {
  for (const std::string ows : {" ", "\t", "\t ", " \t "}) {
    CHECK(traceparent_valid(ows + std::string(suite_traceparent)));
    CHECK(traceparent_valid(std::string(suite_traceparent) + ows));
    CHECK(traceparent_valid(ows + std::string(suite_traceparent) + ows));
  }
  CHECK_FALSE(traceparent_valid("\n" + std::string(suite_traceparent)));
}

TEST_CASE("flags are read by masking bits, not by comparing values", "[w3c][traceparent]") {
  const auto both = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
  REQUIRE(both);
  CHECK(both->sampled());
  CHECK(both->random_trace_id());
  const auto with_unknown =
      TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09");
  REQUIRE(with_unknown);
  CHECK(with_unknown->sampled());
  CHECK_FALSE(with_unknown->random_trace_id());
  const auto random_only =
      TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02");
  REQUIRE(random_only);
  CHECK_FALSE(random_only->sampled());
  CHECK(random_only->random_trace_id());
}

TEST_CASE("unknown flags are received as sent but always sent as zero", "[w3c][traceparent]") {
  const auto context =
      TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff");
  REQUIRE(context);
  CHECK(context->flags == 0xff);
  CHECK(context->traceparent() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
}

TEST_CASE("a new trace has random non-zero ids and the level-2 random flag", "[w3c][traceparent]") {
  const TraceContext a = TraceContext::new_trace();
  const TraceContext b = TraceContext::new_trace(false);
  CHECK(a.is_valid());
  CHECK(a.sampled());
  CHECK(a.random_trace_id());
  CHECK_FALSE(b.sampled());
  CHECK(b.random_trace_id());
  CHECK(a.trace_id != b.trace_id);
  const auto reparsed = TraceContext::parse(a.traceparent());
  REQUIRE(reparsed);
  CHECK(*reparsed == a);
}

TEST_CASE("a forked process never repeats its parent's ids", "[w3c][traceparent]") {
  static_cast<void>(SpanId::random());  // the parent's generator is seeded before the fork
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  const std::string id = SpanId::random().to_hex();
  if (pid == 0) {
    const bool written = ::write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size());
    ::_exit(written ? 0 : 1);
  }
  std::string child(16, '\0');
  const ssize_t got = ::read(fds[0], child.data(), child.size());
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(got == 16);
  CHECK(child != id);
}

TEST_CASE("a child keeps the trace-id, flags and tracestate with a fresh parent-id",
          "[w3c][traceparent]") {
  auto parent = TraceContext::parse(spec_traceparent, "congo=t61rcWkgMzE");
  REQUIRE(parent);
  const TraceContext child = parent->child();
  CHECK(child.trace_id == parent->trace_id);
  CHECK(child.flags == parent->flags);
  CHECK(child.state == parent->state);
  CHECK(child.parent_id != parent->parent_id);
  CHECK(child.parent_id.is_valid());
}

TEST_CASE("ids render as lower-case hex and parse back", "[w3c][traceparent]") {
  const auto id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c");
  REQUIRE(id);
  CHECK(id->to_hex() == "0af7651916cd43dd8448eb211c80319c");
  CHECK(id->bytes()[0] == 0x0a);
  CHECK(id->bytes()[15] == 0x9c);
  CHECK_FALSE(TraceId::from_hex("0AF7651916CD43DD8448EB211C80319C"));
  CHECK_FALSE(SpanId::from_hex("b7ad6b716920333"));
  const auto zero = SpanId::from_hex("0000000000000000");
  REQUIRE(zero);
  CHECK_FALSE(zero->is_valid());
  CHECK_FALSE(SpanId{}.is_valid());
}

// ---- tracestate ---------------------------------------------------------------------------

TEST_CASE("a tracestate from the spec's examples parses in order", "[w3c][tracestate]") {
  const auto state = tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  REQUIRE(state);
  REQUIRE(state->size() == 2);
  CHECK(state->begin()->key == "rojo");
  CHECK(*state->get("rojo") == "00f067aa0ba902b7");
  CHECK(*state->get("congo") == "t61rcWkgMzE");
  CHECK(state->to_header() == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

TEST_CASE("OWS around the commas of a tracestate is allowed", "[w3c][tracestate]") {
  for (const std::string_view header :
       {std::string_view("foo=1 \t , \t bar=2, \t baz=3"),
        std::string_view("foo=1\t \t,\t \tbar=2,\t \tbaz=3"),
        std::string_view(" foo=1,bar=2,baz=3 "), std::string_view("\tfoo=1,bar=2,baz=3\t")}) {
    const auto state = tracestate(header);
    REQUIRE(state);
    CHECK(state->to_header() == "foo=1,bar=2,baz=3");
  }
}

TEST_CASE("empty and whitespace-only tracestate members are allowed and skipped",
          "[w3c][tracestate]") {
  const auto empty = tracestate("");
  REQUIRE(empty);
  CHECK(empty->empty());
  const auto blanks = tracestate(" , \t ,");
  REQUIRE(blanks);
  CHECK(blanks->empty());
  const auto mixed = tracestate(",foo=1,, ,bar=2,");
  REQUIRE(mixed);
  CHECK(mixed->to_header() == "foo=1,bar=2");
}

TEST_CASE("duplicate tracestate keys make the whole tracestate invalid", "[w3c][tracestate]") {
  CHECK_FALSE(tracestate_valid("foo=1,foo=1"));
  CHECK_FALSE(tracestate_valid("foo=1,foo=2"));
  CHECK_FALSE(tracestate_valid("foo=1,bar=2,foo=3"));
}

TEST_CASE("a tracestate has at most 32 members", "[w3c][tracestate]") {
  std::string header;
  for (int i = 1; i <= 32; ++i) {
    if (!header.empty()) header += ',';
    header += "bar" + std::to_string(i) + '=' + std::to_string(i);
  }
  const auto full = tracestate(header);
  REQUIRE(full);
  CHECK(full->size() == 32);
  CHECK_FALSE(tracestate_valid(header + ",bar33=33"));
  CHECK(tracestate_valid(header + ", ,"));  // empty members do not count
}

TEST_CASE("tracestate keys follow the simple and multi-tenant grammar", "[w3c][tracestate]") {
  const std::string all_key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
  CHECK(tracestate_valid(all_key_chars + "=1"));
  CHECK(tracestate_valid(all_key_chars + "@a-z0-9_-*/=1"));
  CHECK(tracestate_valid(repeat('z', 256) + "=1"));
  CHECK_FALSE(tracestate_valid(repeat('z', 257) + "=1"));
  CHECK(tracestate_valid(repeat('t', 241) + "@" + repeat('v', 14) + "=1"));
  CHECK_FALSE(tracestate_valid(repeat('t', 242) + "@v=1"));
  CHECK_FALSE(tracestate_valid("t@" + repeat('v', 15) + "=1"));
  CHECK(tracestate_valid("1tenant@vendor=1"));  // a tenant may start with a digit
  CHECK_FALSE(tracestate_valid("1simple=1"));   // a simple key may not
  CHECK_FALSE(tracestate_valid("tenant@1vendor=1"));
  CHECK_FALSE(tracestate_valid("foo@=1,bar=2"));
  CHECK_FALSE(tracestate_valid("@foo=1,bar=2"));
  CHECK_FALSE(tracestate_valid("foo@@bar=1,bar=2"));
  CHECK_FALSE(tracestate_valid("foo@bar@baz=1,bar=2"));
  CHECK_FALSE(tracestate_valid("FOO=1"));
  CHECK_FALSE(tracestate_valid("foo.bar=1"));
  CHECK_FALSE(tracestate_valid("foo =1"));
  CHECK_FALSE(tracestate_valid("=1"));
}

TEST_CASE("tracestate values are printable ASCII without comma or equals, not ending in a space",
          "[w3c][tracestate]") {
  std::string all_value_chars;
  for (int c = 0x20; c <= 0x7E; ++c) {
    if (c != ',' && c != '=') all_value_chars.push_back(static_cast<char>(c));
  }
  const auto all = tracestate("foo=" + all_value_chars);
  REQUIRE(all);
  CHECK(*all->get("foo") == all_value_chars);

  const auto leading_space = tracestate("foo= bar");
  REQUIRE(leading_space);
  CHECK(*leading_space->get("foo") == " bar");  // leading spaces belong to the value
  const auto trailing_ows = tracestate("foo=bar \t");
  REQUIRE(trailing_ows);
  CHECK(*trailing_ows->get("foo") == "bar");  // trailing ones are OWS

  CHECK(tracestate_valid("foo=" + repeat('x', 256)));
  CHECK_FALSE(tracestate_valid("foo=" + repeat('x', 257)));
  CHECK_FALSE(tracestate_valid("foo=bar=baz"));
  CHECK_FALSE(tracestate_valid("foo=,bar=3"));
  CHECK_FALSE(tracestate_valid("foo=a\tb"));
  CHECK_FALSE(tracestate_valid("foo=a\x7f"));
  CHECK_FALSE(tracestate_valid("foo=caf\xc3\xa9"));
  CHECK_FALSE(tracestate_valid(std::string("foo=a\0b", 7)));
}

TEST_CASE("a tracestate member without an equals sign makes it invalid", "[w3c][tracestate]") {
  CHECK_FALSE(tracestate_valid("foo"));
  CHECK_FALSE(tracestate_valid("foo=1,bar"));
}

TEST_CASE("an invalid tracestate is dropped without affecting the traceparent",
          "[w3c][tracestate]") {
  const auto context = TraceContext::parse(suite_traceparent, "foo=1,foo=2");
  REQUIRE(context);
  CHECK(context->trace_id.to_hex() == "12345678901234567890123456789012");
  CHECK(context->state.empty());
  const auto valid = TraceContext::parse(suite_traceparent, "foo=1,bar=2");
  REQUIRE(valid);
  CHECK(valid->tracestate() == "foo=1,bar=2");
}

TEST_CASE("tracestate mutations move the key to the front and the 33rd drops the right-most",
          "[w3c][tracestate]") {
  auto state = tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  REQUIRE(state);
  state->set("congo", "ucfJifl5GOE");
  CHECK(state->to_header() == "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
  state->set("new", "1");
  CHECK(state->to_header() == "new=1,congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
  CHECK(state->erase("congo"));
  CHECK_FALSE(state->erase("congo"));

  TraceState full;
  for (int i = 32; i >= 1; --i) full.set("k" + std::to_string(i), "v");
  REQUIRE(full.size() == 32);
  CHECK(full.begin()->key == "k1");
  full.set("k0", "v");
  CHECK(full.size() == 32);
  CHECK(full.get("k32") == nullptr);
  CHECK(full.begin()->key == "k0");

  CHECK_THROWS_AS(full.set("Bad", "v"), std::invalid_argument);
  CHECK_THROWS_AS(full.set("ok", "a,b"), std::invalid_argument);
  CHECK_THROWS_AS(full.set("ok", ""), std::invalid_argument);
}

// ---- baggage ------------------------------------------------------------------------------

TEST_CASE("the spec's baggage example parses into members, values and properties",
          "[w3c][baggage]") {
  const auto baggage = Baggage::parse(
      "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue");
  REQUIRE(baggage);
  REQUIRE(baggage->size() == 3);
  const auto* key1 = baggage->find("key1");
  REQUIRE(key1);
  CHECK(key1->value == "value1");
  REQUIRE(key1->properties.size() == 2);
  CHECK(key1->properties[0] == BaggageProperty{"property1", std::nullopt});
  CHECK(key1->properties[1] == BaggageProperty{"property2", std::nullopt});
  CHECK(*baggage->get("key2") == "value2");
  const auto* key3 = baggage->find("key3");
  REQUIRE(key3);
  REQUIRE(key3->properties.size() == 1);
  CHECK(key3->properties[0] == BaggageProperty{"propertyKey", "propertyValue"});
  CHECK(baggage->to_header() ==
        "key1=value1;property1;property2,key2=value2,key3=value3;propertyKey=propertyValue");
}

TEST_CASE("baggage values are percent-decoded on parse and percent-encoded on format",
          "[w3c][baggage]") {
  const auto baggage = Baggage::parse("userId=alice,serverNode=DF%2028,isProduction=false");
  REQUIRE(baggage);
  CHECK(*baggage->get("userId") == "alice");
  CHECK(*baggage->get("serverNode") == "DF 28");
  CHECK(*baggage->get("isProduction") == "false");
  CHECK(baggage->to_header() == "userId=alice,serverNode=DF%2028,isProduction=false");

  const auto utf8 = Baggage::parse("check=%E2%9C%93,lower=%e2%9c%93,percent=100%25");
  REQUIRE(utf8);
  CHECK(*utf8->get("check") == "\xE2\x9C\x93");
  CHECK(*utf8->get("lower") == "\xE2\x9C\x93");
  CHECK(*utf8->get("percent") == "100%");
  CHECK(utf8->to_header() == "check=%E2%9C%93,lower=%E2%9C%93,percent=100%25");
}

TEST_CASE("baggage names and values may be surrounded by OWS", "[w3c][baggage]") {
  const auto baggage =
      Baggage::parse("userId =   alice\t,\tserverNode = DF%2028, isProduction = false");
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "userId=alice,serverNode=DF%2028,isProduction=false");
}

TEST_CASE("every byte of a baggage value survives encoding and decoding", "[w3c][baggage]") {
  std::string ascii;
  for (int c = 0; c < 0x80; ++c) ascii.push_back(static_cast<char>(c));
  ascii += "caf\xC3\xA9 \xF0\x9F\x98\x80";
  Baggage baggage;
  baggage.set("all", ascii);
  const std::string header = baggage.to_header();
  for (const char c : header.substr(4)) CHECK(ucm::w3c::detail::is_baggage_octet(c));
  const auto back = Baggage::parse(header);
  REQUIRE(back);
  CHECK(*back->get("all") == ascii);
}

TEST_CASE("percent-decoded bytes that are not UTF-8 become U+FFFD", "[w3c][baggage]") {
  const std::string fffd = "\xEF\xBF\xBD";
  const auto decoded = [](std::string_view header) {
    const auto baggage = Baggage::parse(header);
    REQUIRE(baggage);
    return *baggage->get("k");
  };
  CHECK(decoded("k=%FF") == fffd);
  CHECK(decoded("k=a%C3") == "a" + fffd);
  CHECK(decoded("k=%E2%9Cx") == fffd + "x");            // a truncated sequence: one replacement
  CHECK(decoded("k=%ED%A0%80") == fffd + fffd + fffd);  // a surrogate is ill-formed
  CHECK(decoded("k=%C0%AF") == fffd + fffd);            // an overlong form too
  CHECK(decoded("k=%F4%90%80%80") == fffd + fffd + fffd + fffd);  // above U+10FFFF
  CHECK(decoded("k=%F0%9F%98%80") == "\xF0\x9F\x98\x80");
}

TEST_CASE("a baggage value may contain equals signs", "[w3c][baggage]") {
  const auto baggage = Baggage::parse("k=a=b==");
  REQUIRE(baggage);
  CHECK(*baggage->get("k") == "a=b==");
}

TEST_CASE("an empty baggage value is valid", "[w3c][baggage]") {
  const auto baggage = Baggage::parse("k=,j= ");
  REQUIRE(baggage);
  CHECK(*baggage->get("k") == "");
  CHECK(*baggage->get("j") == "");
  CHECK(baggage->to_header() == "k=,j=");
}

TEST_CASE("a percent sign not followed by two hex digits makes the baggage invalid",
          "[w3c][baggage]") {
  CHECK_FALSE(Baggage::parse("k=100%"));
  CHECK_FALSE(Baggage::parse("k=%2"));
  CHECK_FALSE(Baggage::parse("k=%zz"));
  CHECK_FALSE(Baggage::parse("ok=1,k=%g0"));
}

TEST_CASE("baggage keys are RFC 7230 tokens", "[w3c][baggage]") {
  const auto tokens = Baggage::parse("!#$%&'*+-.^_`|~09AZaz=1");
  REQUIRE(tokens);
  CHECK(*tokens->get("!#$%&'*+-.^_`|~09AZaz") == "1");
  CHECK_FALSE(Baggage::parse("=1"));
  CHECK_FALSE(Baggage::parse("a b=1"));
  CHECK_FALSE(Baggage::parse("(k)=1"));
  CHECK_FALSE(Baggage::parse("k/v=1"));
  CHECK_FALSE(Baggage::parse("k\"=1"));
  CHECK_FALSE(Baggage::parse("caf\xC3\xA9=1"));
}

TEST_CASE("baggage values are baggage-octets only", "[w3c][baggage]") {
  CHECK_FALSE(Baggage::parse("k=\"quoted\""));
  CHECK_FALSE(Baggage::parse("k=a\\b"));
  CHECK_FALSE(Baggage::parse("k=a b"));
  CHECK_FALSE(Baggage::parse("k=a\tb"));
  CHECK_FALSE(Baggage::parse("k=caf\xC3\xA9"));
  CHECK_FALSE(Baggage::parse("k=a\x7f"));
}

TEST_CASE("a baggage member without an equals sign makes the baggage invalid", "[w3c][baggage]") {
  CHECK_FALSE(Baggage::parse("k"));
  CHECK_FALSE(Baggage::parse("k;p=1"));
  CHECK_FALSE(Baggage::parse("a=1,b,c=3"));
}

TEST_CASE("an invalid baggage member makes the whole header ignored, never applied in part",
          "[w3c][baggage]") {
  CHECK_FALSE(Baggage::parse("a=1,b c=2,d=3"));
  CHECK_FALSE(Baggage::parse("a=1;p q,d=3"));
  CHECK_FALSE(Baggage::parse("a=1;p=\"x\""));
}

TEST_CASE("empty baggage members and empty properties are skipped", "[w3c][baggage]") {
  const auto baggage = Baggage::parse(",a=1,, \t ,b=2;;p; ,");
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "a=1,b=2;p");
  const auto blank = Baggage::parse("  ");
  REQUIRE(blank);
  CHECK(blank->empty());
}

TEST_CASE("baggage properties are kept as received, key-only and key-value", "[w3c][baggage]") {
  const auto baggage = Baggage::parse("k=v; p1 ;p2 = x%20y;p3=a=b");
  REQUIRE(baggage);
  const auto* member = baggage->find("k");
  REQUIRE(member);
  REQUIRE(member->properties.size() == 3);
  CHECK(member->properties[0] == BaggageProperty{"p1", std::nullopt});
  CHECK(member->properties[1] == BaggageProperty{"p2", "x%20y"});
  CHECK(member->properties[2] == BaggageProperty{"p3", "a=b"});
  CHECK(baggage->to_header() == "k=v;p1;p2=x%20y;p3=a=b");
}

TEST_CASE("duplicate baggage keys keep the first position and the last value", "[w3c][baggage]") {
  const auto baggage = Baggage::parse("a=1,b=2,a=3;p,c=4,a=5");
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "a=5,b=2,c=4");
}

TEST_CASE("baggage beyond 64 members keeps the first 64", "[w3c][baggage]") {
  std::string header;
  for (int i = 0; i < 70; ++i) header += "k" + std::to_string(i) + "=v,";
  const auto baggage = Baggage::parse(header);
  REQUIRE(baggage);
  CHECK(baggage->size() == 64);
  CHECK(baggage->get("k63") != nullptr);
  CHECK(baggage->get("k64") == nullptr);

  Baggage built;
  for (int i = 0; i < 70; ++i) built.set("k" + std::to_string(i), "v");
  const auto sent = Baggage::parse(built.to_header());
  REQUIRE(sent);
  CHECK(sent->size() == 64);
}

TEST_CASE("baggage members that do not fit 8192 bytes are dropped and later ones that fit kept",
          "[w3c][baggage]") {
  const std::string big(5000, 'x');
  const std::string header = "a=" + big + ",b=" + big + ",c=small";
  const auto baggage = Baggage::parse(header);
  REQUIRE(baggage);
  CHECK(baggage->get("a") != nullptr);
  CHECK(baggage->get("b") == nullptr);
  CHECK(*baggage->get("c") == "small");
  CHECK(baggage->to_header().size() <= Baggage::max_bytes);

  // The limit counts encoded bytes: 3000 spaces are 9000 bytes on the wire.
  Baggage spaces;
  spaces.set("s", std::string(3000, ' '));
  spaces.set("t", "kept");
  CHECK(spaces.to_header() == "t=kept");

  // Exactly 8192 bytes fit.
  Baggage exact;
  exact.set("k", std::string(Baggage::max_bytes - 2, 'v'));
  CHECK(exact.to_header().size() == Baggage::max_bytes);
  exact.set("k", std::string(Baggage::max_bytes - 1, 'v'));
  CHECK(exact.to_header().empty());
}

TEST_CASE("a parsed baggage always formats in full", "[w3c][baggage]") {
  std::string header;
  for (int i = 0; i < 100; ++i)
    header += "key" + std::to_string(i) + "=" + std::string(150, 'v') + ",";
  const auto baggage = Baggage::parse(header);
  REQUIRE(baggage);
  const auto again = Baggage::parse(baggage->to_header());
  REQUIRE(again);
  CHECK(*again == *baggage);
}

TEST_CASE("a hostile baggage header with many members keeps the first 64", "[w3c][baggage]") {
  // allocation_test checks that such a header costs memory for what is kept only.
  std::string header;
  header.reserve(1 << 20);
  for (int i = 0; i < 100000; ++i)
    header += (i % 2 == 0) ? "a=1," : "k" + std::to_string(i) + "=2,";
  const auto baggage = Baggage::parse(header);
  REQUIRE(baggage);
  CHECK(baggage->size() == 64);
  CHECK(*baggage->get("a") == "1");
}

TEST_CASE("a later value of a kept baggage key replaces it only if the header still fits",
          "[w3c][baggage]") {
  const std::string big(5000, 'x');
  // a's later value fits: it replaces the first in place.
  auto baggage = Baggage::parse("a=1,b=" + big + ",a=" + std::string(3000, 'y'));
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "a=" + std::string(3000, 'y') + ",b=" + big);
  // It does not fit beside b: that later member is dropped, the kept value stays.
  baggage = Baggage::parse("a=1;p,b=" + big + ",a=" + big);
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "a=1;p,b=" + big);
  // A member dropped for room is forgotten: a later one with its key that fits is appended.
  baggage = Baggage::parse("a=" + big + ",b=" + big + ",c=3,b=2");
  REQUIRE(baggage);
  CHECK(baggage->to_header() == "a=" + big + ",c=3,b=2");
}

TEST_CASE("a baggage member's size counts its value as it would be sent", "[w3c][baggage]") {
  // %41 decodes to A (1 byte on the wire); %FF is not UTF-8 and becomes U+FFFD (%EF%BF%BD, 9
  // bytes); %20, a space, is sent as %20 (3 bytes).
  const std::string key = "k";
  const std::size_t room = Baggage::max_bytes - key.size() - 1;  // for the value
  const auto fits = [&](const std::string& value, std::size_t sent) {
    const auto baggage = Baggage::parse(key + "=" + value);
    REQUIRE(baggage);
    CHECK(baggage->size() == (sent <= room ? 1U : 0U));
    if (!baggage->empty()) CHECK(baggage->to_header().size() == key.size() + 1 + sent);
  };
  std::string a_escaped;
  for (std::size_t i = 0; i < room; ++i) a_escaped += "%41";
  fits(a_escaped, room);
  fits(a_escaped + "%41", room + 1);
  std::string invalid;
  for (std::size_t i = 0; i < room / 9; ++i) invalid += "%FF";
  fits(invalid, room / 9 * 9);
  fits(invalid + "%FF", room / 9 * 9 + 9);
  std::string spaces;
  for (std::size_t i = 0; i < room / 3; ++i) spaces += "%20";
  fits(spaces, room / 3 * 3);
  fits(spaces + "x", room / 3 * 3 + 1);
}

TEST_CASE("setting baggage validates keys and properties and replaces in place", "[w3c][baggage]") {
  Baggage baggage;
  baggage.set("a", "1");
  baggage.set("b", "2", {{"p", std::nullopt}, {"q", "x"}});
  baggage.set("a", "3");
  CHECK(baggage.to_header() == "a=3,b=2;p;q=x");
  const Baggage copy = baggage.with("c", "4");
  CHECK(baggage.size() == 2);
  CHECK(copy.size() == 3);
  CHECK(baggage.erase("a"));
  CHECK_FALSE(baggage.erase("a"));
  CHECK_THROWS_AS(baggage.set("a b", "1"), std::invalid_argument);
  CHECK_THROWS_AS(baggage.set("", "1"), std::invalid_argument);
  CHECK_THROWS_AS(baggage.set("k", "1", {{"bad key", std::nullopt}}), std::invalid_argument);
  CHECK_THROWS_AS(baggage.set("k", "1", {{"p", "has space"}}), std::invalid_argument);
}

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

// ---- codecs -------------------------------------------------------------------------------

namespace {
struct Tenant {
  std::string name;
  int shard = 0;
};
}  // namespace

TEST_CASE("a registered variable rides in baggage under its key", "[w3c][codec]") {
  static ucm::ContextVariable<int> user_id;
  const auto registration = ucm::w3c::register_baggage_codec(user_id, "user.id");
  Headers headers;
  user_id.run(42, [&] { ucm::w3c::inject(headers); });
  CHECK(headers == Headers{{"baggage", "user.id=42"}});

  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  REQUIRE(frame.get(user_id));
  CHECK(*frame.get(user_id) == 42);
  REQUIRE(frame.get(ucm::w3c::baggage));
  CHECK(*frame.get(ucm::w3c::baggage)->get("user.id") == "42");  // the member stays visible
}

TEST_CASE("a codec with its own encode and decode carries a user type", "[w3c][codec]") {
  static ucm::ContextVariable<Tenant> tenant;
  const auto registration = ucm::w3c::register_baggage_codec(
      tenant, "tenant", [](const Tenant& t) { return t.name + "/" + std::to_string(t.shard); },
      [](std::string_view text) -> std::optional<Tenant> {
        const auto slash = text.find('/');
        if (slash == std::string_view::npos) return std::nullopt;
        return Tenant{std::string(text.substr(0, slash)),
                      std::stoi(std::string(text.substr(slash + 1)))};
      });
  Headers headers;
  tenant.run(Tenant{"acme corp", 7}, [&] { ucm::w3c::inject(headers); });
  CHECK(headers.at("baggage") == "tenant=acme%20corp/7");
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  REQUIRE(frame.get(tenant));
  CHECK(frame.get(tenant)->name == "acme corp");
  CHECK(frame.get(tenant)->shard == 7);
}

TEST_CASE("a bound codec variable overrides a same-key baggage member and keeps its properties",
          "[w3c][codec]") {
  static ucm::ContextVariable<std::string> region;
  const auto registration = ucm::w3c::register_baggage_codec(region, "region");
  Baggage baggage;
  baggage.set("a", "1");
  baggage.set("region", "eu", {{"ttl", "5"}});
  Headers headers;
  ucm::with(ucm::w3c::baggage, baggage).with(region, std::string("us")).run([&] {
    ucm::w3c::inject(headers);
  });
  CHECK(headers.at("baggage") == "a=1,region=us;ttl=5");
  headers.clear();
  ucm::w3c::baggage.run(baggage, [&] { ucm::w3c::inject(headers); });  // unbound: member as is
  CHECK(headers.at("baggage") == "a=1,region=eu;ttl=5");
}

TEST_CASE("an unbound codec variable and its default are not sent", "[w3c][codec]") {
  static ucm::ContextVariable<int> level{3};
  const auto registration = ucm::w3c::register_baggage_codec(level, "level");
  Headers headers;
  ucm::ContextFrame{}.inherit([&] { ucm::w3c::inject(headers); });
  CHECK(headers.empty());
  CHECK(*level.get() == 3);
}

TEST_CASE("a value that fails to decode is skipped and the rest of the baggage applies",
          "[w3c][codec]") {
  static ucm::ContextVariable<int> count;
  const auto registration = ucm::w3c::register_baggage_codec(count, "count");
  const Headers headers{{"baggage", "count=12abc,other=x"}};
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  CHECK(frame.get(count) == nullptr);
  REQUIRE(frame.get(ucm::w3c::baggage));
  CHECK(*frame.get(ucm::w3c::baggage)->get("other") == "x");
}

TEST_CASE("a codec that throws is skipped by inject and extract", "[w3c][codec]") {
  static ucm::ContextVariable<int> fragile;
  const auto registration = ucm::w3c::register_baggage_codec(
      fragile, "fragile", [](const int&) -> std::string { throw std::runtime_error("encode"); },
      [](std::string_view) -> std::optional<int> { throw std::runtime_error("decode"); });
  Headers headers;
  Baggage baggage;
  baggage.set("kept", "1");
  ucm::with(fragile, 1).with(ucm::w3c::baggage, baggage).run([&] { ucm::w3c::inject(headers); });
  CHECK(headers.at("baggage") == "kept=1");
  const auto frame =
      ucm::w3c::extract(ucm::ContextFrame{}, Headers{{"baggage", "fragile=1,kept=1"}});
  CHECK(frame.get(fragile) == nullptr);
  CHECK(frame.get(ucm::w3c::baggage) != nullptr);
}

TEST_CASE("default codecs cover strings, booleans and numbers", "[w3c][codec]") {
  const auto ints = ucm::w3c::default_baggage_codec<long long>();
  CHECK(ints.encode(-1234567890123LL) == "-1234567890123");
  CHECK(ints.decode("-1234567890123") == -1234567890123LL);
  CHECK_FALSE(ints.decode("12 "));
  CHECK_FALSE(ints.decode(""));
  CHECK_FALSE(ints.decode("99999999999999999999"));
  const auto doubles = ucm::w3c::default_baggage_codec<double>();
  CHECK(doubles.decode(doubles.encode(0.1)) == 0.1);
  const auto bools = ucm::w3c::default_baggage_codec<bool>();
  CHECK(bools.encode(true) == "true");
  CHECK(bools.decode("false") == false);
  CHECK_FALSE(bools.decode("1"));
  const auto strings = ucm::w3c::default_baggage_codec<std::string>();
  CHECK(strings.decode("a b") == "a b");
}

TEST_CASE("a baggage key has one codec at a time and must be a token", "[w3c][codec]") {
  static ucm::ContextVariable<int> first;
  static ucm::ContextVariable<int> second;
  auto registration = ucm::w3c::register_baggage_codec(first, "shared");
  CHECK(static_cast<bool>(registration));
  CHECK_THROWS_AS(ucm::w3c::register_baggage_codec(second, "shared"), std::invalid_argument);
  CHECK_THROWS_AS(ucm::w3c::register_baggage_codec(second, "not a token"), std::invalid_argument);
  CHECK_THROWS_AS(ucm::w3c::register_baggage_codec(second, "k", ucm::w3c::BaggageCodec<int>{}),
                  std::invalid_argument);
  registration.reset();
  CHECK_FALSE(static_cast<bool>(registration));
  auto again = ucm::w3c::register_baggage_codec(second, "shared");
  ucm::w3c::BaggageCodecRegistration moved = std::move(again);
  CHECK(static_cast<bool>(moved));
  Headers headers;
  ucm::with(first, 1).with(second, 2).run([&] { ucm::w3c::inject(headers); });
  CHECK(headers.at("baggage") == "shared=2");
}
