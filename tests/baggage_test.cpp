// SPDX-License-Identifier: MIT
// tests/baggage_test.cpp: W3C Baggage (ucm/propagation/baggage.hpp): parsing, formatting and
// the limits. Each case is named after the rule it checks; the header examples come from the spec.
#include "ucm/propagation/baggage.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "w3c_support.hpp"

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
