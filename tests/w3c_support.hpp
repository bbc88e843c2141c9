// SPDX-License-Identifier: MIT
// tests/w3c_support.hpp: what the W3C tests share (w3c_test.cpp and the tests of its parts):
// the spec's example headers and short names for the value types.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ucm/propagation/baggage.hpp"
#include "ucm/propagation/trace_context.hpp"
#include "ucm/propagation/trace_state.hpp"

namespace w3c_test {

using ucm::w3c::Baggage;
using ucm::w3c::BaggageProperty;
using ucm::w3c::SpanId;
using ucm::w3c::TraceContext;
using ucm::w3c::TraceId;
using ucm::w3c::TraceState;

inline constexpr std::string_view spec_traceparent =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
inline constexpr std::string_view suite_traceparent =
    "00-12345678901234567890123456789012-1234567890123456-01";

inline bool traceparent_valid(std::string_view header) {
  return TraceContext::parse(header).has_value();
}

inline std::optional<TraceState> tracestate(std::string_view header) {
  return TraceState::parse(header);
}

inline bool tracestate_valid(std::string_view header) {
  return TraceState::parse(header).has_value();
}

inline std::string repeat(char c, std::size_t n) { return std::string(n, c); }

using Headers = std::map<std::string, std::string>;

}  // namespace w3c_test

using namespace w3c_test;  // NOLINT(google-global-names-in-headers): the tests' vocabulary
