// SPDX-License-Identifier: MIT
// tests/baggage_codecs_test.cpp: baggage codecs (ucm/propagation/baggage_codecs.hpp): a user's
// ContextVariable<T> riding in W3C baggage through inject and extract.
#include "ucm/propagation/baggage_codecs.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ucm/propagation/w3c.hpp"
#include "w3c_support.hpp"

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
