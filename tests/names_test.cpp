// SPDX-License-Identifier: MIT
// Tests of ucm/names.hpp: named variables (ucm::named) and ucm::describe, the debugging listing
// that prints only the values their owners exposed.
#include "ucm/names.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ucm/propagation/w3c.hpp"
#include "ucm/ucm.hpp"

using ucm::ContextFrame;
using ucm::ContextVariable;

namespace {

struct User {
  std::string name;
  std::string password;
};

std::string hex(std::uint64_t id) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(id));
  return buffer;
}

}  // namespace

TEST_CASE("a named variable has its name; an unnamed one an empty name", "[names]") {
  const ContextVariable<int> named{ucm::named("retries")};
  const ContextVariable<int> unnamed;
  CHECK(named.name() == "retries");
  CHECK(unnamed.name().empty());
  CHECK(named.get() == nullptr);
}

TEST_CASE("a name may come with a default value, and a string default keeps its meaning",
          "[names]") {
  const ContextVariable<long> retries{ucm::named("retries", 3)};
  CHECK(*retries.get() == 3);
  CHECK_FALSE(retries.is_bound());
  CHECK(retries.run(5L, [&] { return *retries.get(); }) == 5);
  // Not a name: a default value, as before names existed.
  const ContextVariable<std::string> text{"request_id"};
  CHECK(text.name().empty());
  CHECK(*text.get() == "request_id");
  const ContextVariable<std::string> named_text{ucm::named("label", "none").expose()};
  CHECK(named_text.name() == "label");
  CHECK(*named_text.get() == "none");
}

TEST_CASE("describe lists the frame by name and prints only the values their owner exposed",
          "[names]") {
  const ContextVariable<std::string> request_id{ucm::named("request_id").expose()};
  const ContextVariable<int> attempt{ucm::named("attempt").expose()};
  const ContextVariable<bool> admin{ucm::named("admin").expose()};
  const ContextVariable<User> user{ucm::named("user")};
  const ContextVariable<User> shown_user{
      ucm::named("shown_user").expose([](const User& u) { return u.name; })};
  const ContextVariable<std::string> secret;
  ucm::with(request_id, "r-42")
      .with(attempt, 2)
      .with(admin, true)
      .with(user, User{"alice", "hunter2"})
      .with(shown_user, User{"bob", "s3cr3t"})
      .with(secret, "token-xyz")
      .run([&] {
        const std::string listing = ucm::debug_string();
        CHECK(listing ==
              "{admin=true, attempt=2, request_id=r-42, shown_user=bob, user=<hidden>, "
              "<unnamed #" +
                  hex(ucm::describe()[5].id) + ">=<hidden>}");
        // Nothing the owners did not expose appears anywhere.
        CHECK(listing.find("hunter2") == std::string::npos);
        CHECK(listing.find("s3cr3t") == std::string::npos);
        CHECK(listing.find("token-xyz") == std::string::npos);
        const std::vector<ucm::BindingDescription> d = ucm::describe();
        REQUIRE(d.size() == 6);
        CHECK(d[3].name == "shown_user");
        CHECK(d[3].value == "bob");
        CHECK(d[4].name == "user");
        CHECK_FALSE(d[4].value.has_value());
        CHECK(d[5].name.empty());
        CHECK_FALSE(d[5].value.has_value());
      });
}

TEST_CASE("describe shows the nearest binding, and no unbound variable or default", "[names]") {
  const ContextVariable<int> a{ucm::named("a").expose()};
  const ContextVariable<int> b{ucm::named("b", 7).expose()};
  CHECK(ucm::debug_string() == "{}");
  CHECK(ucm::describe(ContextFrame{}).empty());
  a.run(1, [&] {
    a.run(2, [&] {
      CHECK(ucm::debug_string() == "{a=2}");
      // Captured while `b` is unbound: running it unbinds `b` (a tombstone), which hides it.
      auto hide = b.bind([&] { return ucm::debug_string(); });
      b.run(3, [&] {
        CHECK(ucm::debug_string() == "{a=2, b=3}");
        CHECK(hide() == "{a=2}");
      });
    });
    CHECK(ucm::debug_string() == "{a=1}");
  });
}

TEST_CASE("describe of a captured frame works on any thread", "[names][threads]") {
  const ContextVariable<std::string> id{ucm::named("id").expose()};
  const ContextFrame frame = id.run("r-1", [] { return ContextFrame::current(); });
  std::string seen;
  std::thread([&] { seen = ucm::debug_string(frame); }).join();
  CHECK(seen == "{id=r-1}");
}

TEST_CASE("a destroyed variable's name is forgotten, and its values show as unnamed", "[names]") {
  auto variable = std::make_unique<ContextVariable<int>>(ucm::named("gone").expose());
  const ContextFrame frame = variable->run(1, [] { return ContextFrame::current(); });
  CHECK(ucm::debug_string(frame) == "{gone=1}");
  const std::uint64_t id = ucm::describe(frame)[0].id;
  variable.reset();
  CHECK(ucm::debug_string(frame) == "{<unnamed #" + hex(id) + ">=<hidden>}");
}

TEST_CASE("two variables may share a name and stay distinct", "[names]") {
  const ContextVariable<int> first{ucm::named("n").expose()};
  const ContextVariable<int> second{ucm::named("n").expose()};
  first.run(1, [&] {
    CHECK(second.get() == nullptr);
    second.run(2, [&] { CHECK(ucm::debug_string() == "{n=1, n=2}"); });
  });
}

TEST_CASE("the W3C trace context shows as its traceparent, and baggage stays hidden",
          "[names][w3c]") {
  const auto trace =
      *ucm::w3c::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ucm::w3c::Baggage bag;
  bag.set("user.id", "alice");
  ucm::with(ucm::w3c::trace_context, trace).with(ucm::w3c::baggage, bag).run([] {
    CHECK(ucm::debug_string() ==
          "{w3c.baggage=<hidden>, "
          "w3c.trace_context=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01}");
  });
}
