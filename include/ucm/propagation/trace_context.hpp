// SPDX-License-Identifier: MIT
// ucm/propagation/trace_context.hpp: W3C Trace Context's `traceparent` (level 1 plus level 2's
// random-trace-id flag): the ids (TraceId, SpanId) and TraceContext, with its flags, strict
// parsing and formatting, new traces and child spans. Part of ucm/propagation/w3c.hpp, which
// includes it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "ucm/propagation/detail/w3c_text.hpp"
#include "ucm/propagation/trace_state.hpp"

namespace ucm::w3c {

// =============================================================================================
// Identifiers
// =============================================================================================

namespace detail {
/// Counts fork()s in this process's history, so generators notice they were copied into a child.
inline std::atomic<unsigned>& fork_generation() noexcept {
  static std::atomic<unsigned> generation{0};
  return generation;
}

inline void note_fork() noexcept { fork_generation().fetch_add(1, std::memory_order_relaxed); }

/// This thread's generator of trace and span ids, seeded from std::random_device. It reseeds in
/// a forked child, which would otherwise repeat its parent's ids (a fork handler counts forks,
/// so the check costs a relaxed load, not a system call).
inline std::mt19937_64& random_engine() {
#if !defined(_WIN32)
  static const bool fork_handler = ::pthread_atfork(nullptr, nullptr, &note_fork) == 0;
  static_cast<void>(fork_handler);
#endif
  struct State {
    std::mt19937_64 engine;
    unsigned generation = 0;
    bool seeded = false;
  };
  static thread_local State state;
  const unsigned generation = fork_generation().load(std::memory_order_relaxed);
  if (!state.seeded || state.generation != generation) {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    state.engine.seed(seed);
    state.generation = generation;
    state.seeded = true;
  }
  return state.engine;
}
}  // namespace detail

/// An identifier of `N` bytes written as `2 * N` lower-case hex digits: `TraceId` (16 bytes)
/// and `SpanId` (8 bytes). The all-zero id, which a default-constructed one is, is invalid on
/// the wire. A plain value: copying is a memcpy.
template <std::size_t N>
class ByteId {
 public:
  /// Number of bytes.
  static constexpr std::size_t size = N;
  /// Number of hex digits in the text form.
  static constexpr std::size_t hex_size = 2 * N;

  /// The all-zero (invalid) id.
  constexpr ByteId() noexcept = default;
  /// The id with these bytes, most significant first (as written in hex).
  constexpr explicit ByteId(const std::array<std::uint8_t, N>& bytes) noexcept : bytes_(bytes) {}

  /// Parses exactly `2 * N` lower-case hex digits (upper case is invalid in traceparent).
  /// The all-zero id parses; check `is_valid()`. Never throws.
  [[nodiscard]] static constexpr std::optional<ByteId> from_hex(std::string_view hex) noexcept {
    if (hex.size() != hex_size) return std::nullopt;
    ByteId id;
    for (std::size_t i = 0; i < N; ++i) {
      const char hi = hex[2 * i];
      const char lo = hex[2 * i + 1];
      if (!detail::is_lower_hex(hi) || !detail::is_lower_hex(lo)) return std::nullopt;
      id.bytes_[i] = static_cast<std::uint8_t>(detail::hex_value(hi) * 16 + detail::hex_value(lo));
    }
    return id;
  }

  /// A random, non-zero id from this thread's generator (std::mt19937_64 seeded from
  /// std::random_device; not for secrets).
  [[nodiscard]] static ByteId random() {
    ByteId id;
    std::mt19937_64& engine = detail::random_engine();
    do {
      for (std::size_t i = 0; i < N; i += 8) {
        std::uint64_t word = engine();
        for (std::size_t j = i; j < N && j < i + 8; ++j) {
          id.bytes_[j] = static_cast<std::uint8_t>(word & 0xFF);
          word >>= 8;
        }
      }
    } while (!id.is_valid());
    return id;
  }

  /// Whether some byte is non-zero (the all-zero id is forbidden on the wire).
  [[nodiscard]] constexpr bool is_valid() const noexcept {
    for (const std::uint8_t b : bytes_) {
      if (b != 0) return true;
    }
    return false;
  }

  /// The bytes, most significant first.
  [[nodiscard]] constexpr const std::array<std::uint8_t, N>& bytes() const noexcept {
    return bytes_;
  }

  /// Appends the `2 * N` lower-case hex digits to `out`.
  void append_hex(std::string& out) const {
    for (const std::uint8_t b : bytes_) {
      out.push_back(detail::lower_hex_digits[b >> 4]);
      out.push_back(detail::lower_hex_digits[b & 0x0F]);
    }
  }

  /// The `2 * N` lower-case hex digits.
  [[nodiscard]] std::string to_hex() const {
    std::string out;
    out.reserve(hex_size);
    append_hex(out);
    return out;
  }

  /// Member-wise equality.
  friend constexpr bool operator==(const ByteId&, const ByteId&) noexcept = default;

 private:
  std::array<std::uint8_t, N> bytes_{};
};

/// The 16-byte trace-id of W3C Trace Context: the whole distributed trace.
using TraceId = ByteId<16>;
/// The 8-byte parent-id (span id) of W3C Trace Context: one operation in the trace.
using SpanId = ByteId<8>;

// =============================================================================================
// traceparent + tracestate
// =============================================================================================

/// A W3C trace context: what `traceparent` and `tracestate` carry. As held in
/// `ucm::w3c::trace_context`, it describes the current operation: `inject` sends `parent_id`
/// as the receiver's parent. A plain value type.
///
///     auto ctx = ucm::w3c::TraceContext::new_trace();          // a new, sampled trace
///     ucm::w3c::trace_context.run(ctx, call_downstream);      // inject() sends it
///     ucm::w3c::trace_context.run(ctx.child(), next_step);    // a new span in the same trace
struct TraceContext {
  /// Trace flag bit: the caller may have recorded trace data (level 1).
  static constexpr std::uint8_t sampled_flag = 0x01;
  /// Trace flag bit: the right-most 7 bytes of the trace-id are random (level 2).
  static constexpr std::uint8_t random_flag = 0x02;
  /// The flag bits this implementation knows; `traceparent()` writes only these, since the
  /// spec requires unknown flags to be sent as zero.
  static constexpr std::uint8_t known_flags = sampled_flag | random_flag;

  /// The trace-id.
  TraceId trace_id;
  /// The parent-id: the span id of the operation that sends (or sent) the headers.
  SpanId parent_id;
  /// trace-flags as received (a version-00 header keeps all 8 bits; a higher version keeps only
  /// the known ones, as the spec's processing model says).
  std::uint8_t flags = 0;
  /// The tracestate list (empty when absent or invalid).
  TraceState state;

  /// Whether both ids are non-zero, so the context can be sent.
  [[nodiscard]] constexpr bool is_valid() const noexcept {
    return trace_id.is_valid() && parent_id.is_valid();
  }
  /// Whether the sampled flag is set.
  [[nodiscard]] constexpr bool sampled() const noexcept { return (flags & sampled_flag) != 0; }
  /// Whether the random-trace-id flag (level 2) is set.
  [[nodiscard]] constexpr bool random_trace_id() const noexcept {
    return (flags & random_flag) != 0;
  }

  /// Parses a `traceparent` header value (tracestate empty). Leading and trailing OWS is
  /// ignored. Version `00` must be exactly 55 characters; a higher version (not `ff`) is parsed
  /// as version 00 when its first 55 characters are followed by `-` or nothing; `ff`, upper-case
  /// hex, wrong lengths and all-zero ids are invalid. Never throws.
  [[nodiscard]] static std::optional<TraceContext> parse(std::string_view traceparent) noexcept {
    const std::string_view text = detail::trim_ows(traceparent);
    constexpr std::size_t length = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
    if (text.size() < length) return std::nullopt;
    if (!detail::is_lower_hex(text[0]) || !detail::is_lower_hex(text[1]) || text[2] != '-') {
      return std::nullopt;
    }
    const int version = detail::hex_value(text[0]) * 16 + detail::hex_value(text[1]);
    if (version == 0xff) return std::nullopt;
    if (version == 0 && text.size() != length) return std::nullopt;
    if (text.size() > length && text[length] != '-') return std::nullopt;
    if (text[35] != '-' || text[52] != '-') return std::nullopt;
    const auto trace_id = TraceId::from_hex(text.substr(3, 32));
    const auto parent_id = SpanId::from_hex(text.substr(36, 16));
    if (!trace_id || !parent_id || !trace_id->is_valid() || !parent_id->is_valid()) {
      return std::nullopt;
    }
    if (!detail::is_lower_hex(text[53]) || !detail::is_lower_hex(text[54])) return std::nullopt;
    auto flags =
        static_cast<std::uint8_t>(detail::hex_value(text[53]) * 16 + detail::hex_value(text[54]));
    if (version != 0) flags &= known_flags;
    TraceContext context;
    context.trace_id = *trace_id;
    context.parent_id = *parent_id;
    context.flags = flags;
    return context;
  }

  /// Parses `traceparent` and, only when it is valid, `tracestate`: an invalid tracestate is
  /// dropped (the context keeps an empty one) and never affects the traceparent. Never throws.
  [[nodiscard]] static std::optional<TraceContext> parse(std::string_view traceparent,
                                                         std::string_view tracestate) noexcept {
    std::optional<TraceContext> context = parse(traceparent);
    if (context) {
      if (std::optional<TraceState> state = TraceState::parse(tracestate)) {
        context->state = std::move(*state);
      }
    }
    return context;
  }

  /// The `traceparent` header value: version `00`, lower-case hex, unknown flag bits cleared.
  [[nodiscard]] std::string traceparent() const {
    std::string out;
    out.reserve(55);
    out.append("00-");
    trace_id.append_hex(out);
    out.push_back('-');
    parent_id.append_hex(out);
    out.push_back('-');
    const auto bits = static_cast<std::uint8_t>(flags & known_flags);
    out.push_back(detail::lower_hex_digits[bits >> 4]);
    out.push_back(detail::lower_hex_digits[bits & 0x0F]);
    return out;
  }

  /// The `tracestate` header value (empty when the list is).
  [[nodiscard]] std::string tracestate() const { return state.to_header(); }

  /// A new trace: random trace-id and parent-id, the random-trace-id flag set, and the sampled
  /// flag as asked. Use it where no caller's context arrived (or to restart at a trust boundary).
  [[nodiscard]] static TraceContext new_trace(bool sampled = true) {
    TraceContext context;
    context.trace_id = TraceId::random();
    context.parent_id = SpanId::random();
    context.flags = static_cast<std::uint8_t>(random_flag | (sampled ? sampled_flag : 0));
    return context;
  }

  /// The context of a new operation below this one: same trace-id, flags and tracestate, a
  /// fresh random parent-id (the spec's "update parent-id" mutation).
  [[nodiscard]] TraceContext child() const {
    TraceContext context = *this;
    context.parent_id = SpanId::random();
    return context;
  }

  /// Member-wise equality.
  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

}  // namespace ucm::w3c
