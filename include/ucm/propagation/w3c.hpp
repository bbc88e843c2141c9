// SPDX-License-Identifier: MIT
// ucm/propagation/w3c.hpp: W3C Trace Context (traceparent, tracestate; level 1 plus level 2's
// random-trace-id flag) and W3C Baggage across process boundaries, interoperable with
// OpenTelemetry. Value types with strict parsing and formatting, the context variables that
// hold them, carriers (header maps, the environment of a child process), codecs that let a
// user's own ContextVariable<T> ride in baggage, and inject/extract.
//
//     ucm::w3c::inject(request.headers);                       // client: current frame -> headers
//     ucm::ContextFrameScope scope(ucm::w3c::extract(headers)); // server: continue the caller
//
// The choices the specifications leave open are documented in docs/w3c.md.
//
// Each part has a header of its own, which this one includes: ucm/propagation/trace_context.hpp
// (traceparent: TraceId, SpanId, TraceContext), trace_state.hpp (TraceState), baggage.hpp
// (Baggage), carriers.hpp (the carrier concepts, CarrierTraits, EnvironmentCarrier) and
// baggage_codecs.hpp (register_baggage_codec). This header adds the context variables
// `trace_context` and `baggage`, and inject/extract.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ucm/propagation/baggage.hpp"
#include "ucm/propagation/baggage_codecs.hpp"
#include "ucm/propagation/carriers.hpp"
#include "ucm/propagation/detail/w3c_text.hpp"
#include "ucm/propagation/trace_context.hpp"
#include "ucm/propagation/trace_state.hpp"
#include "ucm/ucm.hpp"

namespace ucm::w3c {

namespace detail {

/// Parsing a header given as the pieces a carrier holds (repeated headers, read as one list
/// joined by `,`) without copying them.
struct HeaderLists {
  /// `TraceContext::parse` of `pieces` joined by `,`, copying at most 56 characters.
  static std::optional<TraceContext> traceparent(const std::string_view* pieces,
                                                 std::size_t count) noexcept {
    if (count == 1) return TraceContext::parse(pieces[0]);
    // Joined, the value holds a comma, which a version-00 value cannot (it is 55 characters of
    // hex digits and dashes), and a later version reads only its first 55 characters and the
    // `-` after them: those 56 characters after the leading OWS decide.
    constexpr std::size_t decisive = 56;
    std::array<char, decisive> prefix{};
    std::size_t n = 0;
    bool leading = true;
    const auto add = [&](char c) {
      if (n == decisive || (leading && detail::is_ows(c))) return;
      leading = false;
      prefix[n++] = c;
    };
    for (std::size_t i = 0; i < count && n < decisive; ++i) {
      if (i != 0) add(',');
      for (std::size_t k = 0; k < pieces[i].size() && n < decisive; ++k) add(pieces[i][k]);
    }
    if (n < decisive || prefix[decisive - 1] != '-') return std::nullopt;
    return TraceContext::parse(std::string_view(prefix.data(), decisive));
  }
  static std::optional<TraceState> tracestate(const std::string_view* pieces,
                                              std::size_t count) noexcept {
    return TraceState::parse_list(pieces, count);
  }
  static std::optional<Baggage> baggage(const std::string_view* pieces,
                                        std::size_t count) noexcept {
    return Baggage::parse_list(pieces, count);
  }
};

}  // namespace detail

// =============================================================================================
// The context variables
// =============================================================================================

namespace detail {
// One instance per program, like the core's state (see UCM_SHARED_STATE): as inline variables,
// a shared library built with -fvisibility=hidden would have copies of its own, with other
// ids, and its `inject` would not see what the program's `extract` bound. ucm's own code reads
// them through these functions, which work even before the references below are initialised.
// Named for ucm::describe: the trace context shows as its traceparent (it is sent on the wire
// anyway); baggage stays hidden (it may carry what an application would not print).
UCM_SHARED_STATE inline ucm::ContextVariable<TraceContext>& trace_context_variable() noexcept {
  static ucm::ContextVariable<TraceContext> instance{
      ucm::named("w3c.trace_context").expose([](const TraceContext& t) {
        return t.traceparent();
      })};
  return instance;
}
UCM_SHARED_STATE inline ucm::ContextVariable<Baggage>& baggage_variable() noexcept {
  static ucm::ContextVariable<Baggage> instance{ucm::named("w3c.baggage")};
  return instance;
}
}  // namespace detail

/// The trace context of the current operation: what `inject` sends as `traceparent` and
/// `tracestate`, and what `extract` binds from them. No default. One variable per program, also
/// across shared libraries built with hidden visibility.
inline ucm::ContextVariable<TraceContext>& trace_context = detail::trace_context_variable();

/// The baggage of the current request: what `inject` sends as `baggage` (together with the
/// variables registered through `register_baggage_codec`), and what `extract` binds. No default.
/// One variable per program, like `trace_context`.
inline ucm::ContextVariable<Baggage>& baggage = detail::baggage_variable();

// =============================================================================================
// inject / extract
// =============================================================================================

namespace detail {

template <class C>
void inject_from(const ContextFrame* frame, C& carrier) {
  const ContextVariable<TraceContext>& trace_var = trace_context_variable();
  const ContextVariable<Baggage>& baggage_var = baggage_variable();
  const TraceContext* trace = frame != nullptr ? frame->get(trace_var) : trace_var.get();
  const Baggage* bag = frame != nullptr ? frame->get(baggage_var) : baggage_var.get();

  if (trace != nullptr && trace->is_valid()) {
    carrier_set(carrier, traceparent_header, trace->traceparent());
    if (trace->state.empty()) {
      // A tracestate belongs to its traceparent: never leave another one's beside it.
      carrier_erase(carrier, tracestate_header);
    } else {
      carrier_set(carrier, tracestate_header, trace->tracestate());
    }
  } else if constexpr (erasing_writer<C>) {
    carrier_erase(carrier, traceparent_header);
    carrier_erase(carrier, tracestate_header);
  }

  const auto codecs = baggage_codecs();  // held while the codecs run
  std::string header;
  if (codecs->empty()) {
    if (bag != nullptr) header = bag->to_header();
  } else {
    // Codec-bound variables override same-key members; copy only when one is bound.
    std::optional<Baggage> merged;
    for (const auto& codec : *codecs) {
      if (!codec->active.load(std::memory_order_acquire)) continue;
      std::optional<std::string> value;
      try {
        value = codec->encode(frame);
      } catch (...) {
        continue;  // a codec that throws is skipped, like one whose variable is unbound
      }
      if (!value) continue;
      if (!merged) merged = bag != nullptr ? *bag : Baggage{};
      const BaggageMember* existing = merged->find(codec->key);
      std::vector<BaggageProperty> properties;
      if (existing != nullptr) properties = existing->properties;
      merged->set(codec->key, *value, std::move(properties));
    }
    if (merged) {
      header = merged->to_header();
    } else if (bag != nullptr) {
      header = bag->to_header();
    }
  }
  if (!header.empty()) {
    carrier_set(carrier, baggage_header, std::move(header));
  } else if constexpr (erasing_writer<C>) {
    carrier_erase(carrier, baggage_header);
  }
}

}  // namespace detail

/// Writes the current context into `carrier`: `traceparent` and `tracestate` from
/// `ucm::w3c::trace_context` (when valid), `baggage` from `ucm::w3c::baggage` plus the variables
/// registered with `register_baggage_codec`, reading as `get()` does. Like OpenTelemetry, it
/// only sets what the context has, with two exceptions that keep stale values from leaking:
/// writing a traceparent removes a tracestate the context lacks (a tracestate belongs to its
/// traceparent), and a carrier with `erase(name)`, such as EnvironmentCarrier (which a process
/// inherits from its own parent), also loses every header the context has nothing for. Throws
/// only what the carrier or allocation throws (a codec that throws is skipped).
///
///     httplib::Headers headers;
///     ucm::w3c::inject(headers);
template <class C>
requires WritableCarrier<std::remove_reference_t<C>>
void inject(C&& carrier) { detail::inject_from(nullptr, carrier); }

/// Writes `frame`'s trace context and baggage into `carrier` (see `inject(carrier)`).
template <class C>
requires WritableCarrier<std::remove_reference_t<C>>
void inject(const ContextFrame& frame, C&& carrier) { detail::inject_from(&frame, carrier); }

/// `base` plus what `carrier` carries: `ucm::w3c::trace_context` from a valid `traceparent`
/// (with `tracestate` when that is valid too), `ucm::w3c::baggage` from a valid, non-empty
/// `baggage` header (replacing any in `base`), and each registered codec's variable from its
/// baggage member. Each header applies whole or not at all: a missing or invalid one leaves
/// `base`'s value as it was, and the others still apply. Never throws: a carrier or codec that
/// throws, or an allocation failure, counts as a missing header.
template <class C>
requires ReadableCarrier<C>
[[nodiscard]] ContextFrame extract(ContextFrame base, const C& carrier) noexcept {
  // Each header is parsed where the carrier keeps it: a header of megabytes costs no copy.
  std::optional<TraceContext> trace;
  try {
    detail::read_header(carrier, traceparent_header,
                        [&](const std::string_view* pieces, std::size_t count) {
                          trace = detail::HeaderLists::traceparent(pieces, count);
                        });
  } catch (...) {
    trace.reset();
  }
  if (trace) {
    // Parsed only after a valid traceparent; its failure never affects the traceparent.
    try {
      detail::read_header(carrier, tracestate_header,
                          [&](const std::string_view* pieces, std::size_t count) {
                            if (auto state = detail::HeaderLists::tracestate(pieces, count)) {
                              trace->state = std::move(*state);
                            }
                          });
    } catch (...) {
    }
  }
  std::optional<Baggage> bag;
  try {
    detail::read_header(carrier, baggage_header,
                        [&](const std::string_view* pieces, std::size_t count) {
                          bag = detail::HeaderLists::baggage(pieces, count);
                          if (bag && bag->empty()) bag.reset();
                        });
  } catch (...) {
    bag.reset();
  }

  ContextFrame result = std::move(base);
  if (trace) {
    try {
      result = result.with(detail::trace_context_variable(), std::move(*trace));
    } catch (...) {
    }
  }
  if (bag) {
    try {
      const ContextVariable<Baggage>& baggage_var = detail::baggage_variable();
      const ContextFrame with_baggage = result.with(baggage_var, std::move(*bag));
      const Baggage& received = *with_baggage.get(baggage_var);
      ContextFrame next = with_baggage;
      const auto codecs = detail::baggage_codecs();  // held while the codecs run
      for (const auto& codec : *codecs) {
        if (!codec->active.load(std::memory_order_acquire)) continue;
        const std::string* value = received.get(codec->key);
        if (value == nullptr) continue;
        try {
          if (std::optional<ContextFrame> decoded = codec->decode(next, *value)) {
            next = std::move(*decoded);
          }
        } catch (...) {
          // A codec that throws is skipped; the baggage itself still applies.
        }
      }
      result = std::move(next);
    } catch (...) {
    }
  }
  return result;
}

/// The current frame plus what `carrier` carries (see `extract(base, carrier)`), to run as a
/// continuation of the caller:
///
///     ucm::ContextFrameScope scope(ucm::w3c::extract(request.headers));
///     ucm::w3c::extract(carrier).inherit(handle_request);
template <class C>
requires ReadableCarrier<C>
[[nodiscard]] ContextFrame extract(const C& carrier) noexcept {
  return extract(ContextFrame::current(), carrier);
}

}  // namespace ucm::w3c
