// SPDX-License-Identifier: MIT
// tests/trace_state_test.cpp: W3C Trace Context's tracestate (ucm/propagation/trace_state.hpp).
// Each case is named after the rule it checks; the header examples come from the spec and from
// the W3C trace-context test suite (test/test.py).
#include "ucm/propagation/trace_state.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

#include "w3c_support.hpp"

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
