// SPDX-License-Identifier: MIT
// tests/trace_context_test.cpp: W3C Trace Context's traceparent
// (ucm/propagation/trace_context.hpp): the ids, the flags, parsing and formatting. Each case is
// named after the rule it checks; the header examples come from the spec and from the W3C
// trace-context test suite (test/test.py).
#include "ucm/propagation/trace_context.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "w3c_support.hpp"

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
