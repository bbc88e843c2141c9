// SPDX-License-Identifier: MIT
// ucm/fmt.hpp: {fmt} formatters for ucm's types (CMake target `ucm::fmt`, Debian's libfmt-dev):
// W3C TraceContext, its ids and Baggage (ucm/propagation/w3c.hpp), and ContextFrame, written as
// the debugging listing of ucm/names.hpp. The core never includes this header.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "ucm/frame.hpp"
#include "ucm/names.hpp"
#include "ucm/propagation/w3c.hpp"

namespace ucm::detail {
/// Parses an optional one-letter presentation among `allowed`, then the closing brace.
constexpr const char* parse_presentation(fmt::format_parse_context& ctx, const char* allowed,
                                         char& presentation) {
  const char* it = ctx.begin();
  const char* const end = ctx.end();
  if (it != end && *it != '}') {
    for (const char* a = allowed; *a != '\0'; ++a) {
      if (*it == *a) {
        presentation = *it++;
        break;
      }
    }
  }
  if (it != end && *it != '}') throw fmt::format_error("invalid format specifier for a ucm type");
  return it;
}
}  // namespace ucm::detail

/// A trace-id or span-id: its lower-case hex digits, `{}`. No allocation.
template <std::size_t N>
struct fmt::formatter<ucm::w3c::ByteId<N>> {
  constexpr auto parse(format_parse_context& ctx) {
    char unused = 0;
    return ucm::detail::parse_presentation(ctx, "", unused);
  }
  template <class Context>
  auto format(const ucm::w3c::ByteId<N>& id, Context& ctx) const {
    std::array<char, 2 * N> digits{};
    std::size_t i = 0;
    for (const std::uint8_t b : id.bytes()) {
      digits[i++] = "0123456789abcdef"[b >> 4];
      digits[i++] = "0123456789abcdef"[b & 0x0F];
    }
    return fmt::format_to(ctx.out(), "{}", fmt::string_view(digits.data(), digits.size()));
  }
};

/// A W3C trace context: `{}` or `{:p}` its `traceparent` header value
/// (`00-<trace-id>-<parent-id>-<flags>`), `{:t}` the trace-id, `{:s}` the parent-id (the span).
/// No allocation.
template <>
struct fmt::formatter<ucm::w3c::TraceContext> {
  char presentation = 'p';

  constexpr auto parse(format_parse_context& ctx) {
    return ucm::detail::parse_presentation(ctx, "pts", presentation);
  }
  template <class Context>
  auto format(const ucm::w3c::TraceContext& context, Context& ctx) const {
    switch (presentation) {
      case 't':
        return fmt::format_to(ctx.out(), "{}", context.trace_id);
      case 's':
        return fmt::format_to(ctx.out(), "{}", context.parent_id);
      default:
        return fmt::format_to(
            ctx.out(), "00-{}-{}-{:02x}", context.trace_id, context.parent_id,
            static_cast<unsigned>(context.flags & ucm::w3c::TraceContext::known_flags));
    }
  }
};

/// W3C baggage: `{}` its `baggage` header value (`key=value,...`, values percent-encoded).
template <>
struct fmt::formatter<ucm::w3c::Baggage> {
  constexpr auto parse(format_parse_context& ctx) {
    char unused = 0;
    return ucm::detail::parse_presentation(ctx, "", unused);
  }
  template <class Context>
  auto format(const ucm::w3c::Baggage& baggage, Context& ctx) const {
    return fmt::format_to(ctx.out(), "{}", baggage.to_header());
  }
};

/// A frame, as `ucm::debug_string` lists it: `{request_id=r-42, user=<hidden>}`. Values appear
/// only for variables whose owner exposed them (`ucm::named(...).expose()`).
template <>
struct fmt::formatter<ucm::ContextFrame> {
  constexpr auto parse(format_parse_context& ctx) {
    char unused = 0;
    return ucm::detail::parse_presentation(ctx, "", unused);
  }
  template <class Context>
  auto format(const ucm::ContextFrame& frame, Context& ctx) const {
    return fmt::format_to(ctx.out(), "{}", ucm::debug_string(frame));
  }
};
