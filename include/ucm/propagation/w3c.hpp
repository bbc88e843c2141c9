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
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "ucm/propagation/detail/w3c_text.hpp"
#include "ucm/ucm.hpp"

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
// tracestate
// =============================================================================================

/// The `tracestate` list: vendor-specific key/value pairs, left-most the most recent, at most
/// 32, keys unique. Keys follow Trace Context level 1 (`vendor` or `tenant@system`, lower case);
/// values are 1 to 256 printable ASCII characters other than `,` and `=`, not ending in a space.
///
/// `parse` is all-or-nothing, as the spec requires: a header with a malformed member, a
/// duplicate key or more than 32 members is invalid as a whole. Empty and whitespace-only
/// members are allowed and skipped. Nothing is truncated: the spec asks to propagate at least
/// 512 characters and ucm propagates the whole list (32 members at most).
class TraceState {
 public:
  /// The most members a tracestate may have.
  static constexpr std::size_t max_members = 32;

  /// One list-member.
  struct Member {
    std::string key;    ///< a valid tracestate key
    std::string value;  ///< a valid tracestate value
    /// Member-wise equality.
    friend bool operator==(const Member&, const Member&) = default;
  };
  using const_iterator = std::vector<Member>::const_iterator;

  /// The empty list.
  TraceState() = default;

  /// Whether `key` is a valid tracestate key (simple or multi-tenant, level 1 grammar).
  [[nodiscard]] static constexpr bool is_valid_key(std::string_view key) noexcept {
    return detail::is_tracestate_key(key);
  }
  /// Whether `value` is a valid tracestate value.
  [[nodiscard]] static constexpr bool is_valid_value(std::string_view value) noexcept {
    return detail::is_tracestate_value(value);
  }

  /// Parses a (combined) `tracestate` header value. `nullopt` when the header is invalid:
  /// a member without `=`, an invalid key or value, a duplicate key, or more than 32 members.
  /// OWS around commas and empty members are accepted. Never throws (allocation failure also
  /// gives `nullopt`).
  [[nodiscard]] static std::optional<TraceState> parse(std::string_view header) noexcept {
    try {
      TraceState state;
      bool valid = true;
      ucm::w3c::detail::for_each_list_member(header, [&](std::string_view piece) {
        if (!valid) return;
        const std::string_view member = detail::trim_ows(piece);
        if (member.empty()) return;
        const std::size_t eq = member.find('=');
        if (eq == std::string_view::npos) {
          valid = false;
          return;
        }
        const std::string_view key = member.substr(0, eq);
        const std::string_view value = member.substr(eq + 1);
        if (!is_valid_key(key) || !is_valid_value(value) || state.members_.size() == max_members ||
            state.find(key) != state.members_.end()) {
          valid = false;
          return;
        }
        state.members_.push_back(Member{std::string(key), std::string(value)});
      });
      if (!valid) return std::nullopt;
      return state;
    } catch (...) {
      return std::nullopt;
    }
  }

  /// The header value: `key=value` pairs joined by `,`, no whitespace. Empty for an empty list
  /// (inject then sends no tracestate header).
  [[nodiscard]] std::string to_header() const {
    std::string out;
    std::size_t size = 0;
    for (const Member& m : members_) size += m.key.size() + m.value.size() + 2;
    out.reserve(size);
    for (const Member& m : members_) {
      if (!out.empty()) out.push_back(',');
      out.append(m.key).push_back('=');
      out.append(m.value);
    }
    return out;
  }

  /// The value of `key`, or nullptr. Valid until this list changes.
  [[nodiscard]] const std::string* get(std::string_view key) const noexcept {
    const auto it = find(key);
    return it == members_.end() ? nullptr : &it->value;
  }

  /// Sets `key` to `value` and moves it to the front (left), as the spec's "update" and "add"
  /// mutations require. Adding a 33rd member drops the right-most one. Throws
  /// `std::invalid_argument` when the key or value is invalid.
  void set(std::string_view key, std::string_view value) {
    if (!is_valid_key(key)) throw std::invalid_argument("ucm::w3c: invalid tracestate key");
    if (!is_valid_value(value)) throw std::invalid_argument("ucm::w3c: invalid tracestate value");
    Member member{std::string(key), std::string(value)};
    if (const auto it = find(key); it != members_.end()) {
      members_.erase(it);
    } else if (members_.size() == max_members) {
      members_.pop_back();
    }
    members_.insert(members_.begin(), std::move(member));
  }

  /// Removes `key`; returns whether it was there.
  bool erase(std::string_view key) {
    const auto it = find(key);
    if (it == members_.end()) return false;
    members_.erase(it);
    return true;
  }

  /// Number of members.
  [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }
  /// Whether the list is empty.
  [[nodiscard]] bool empty() const noexcept { return members_.empty(); }
  /// The members, left-most first.
  [[nodiscard]] const_iterator begin() const noexcept { return members_.begin(); }
  /// End of the members.
  [[nodiscard]] const_iterator end() const noexcept { return members_.end(); }

  /// Member-wise equality.
  friend bool operator==(const TraceState&, const TraceState&) = default;

 private:
  [[nodiscard]] const_iterator find(std::string_view key) const noexcept {
    return std::find_if(members_.begin(), members_.end(),
                        [key](const Member& m) { return m.key == key; });
  }

  std::vector<Member> members_;
};

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

// =============================================================================================
// baggage
// =============================================================================================

/// A property of a baggage member: `;key` or `;key=value`. The spec leaves properties opaque,
/// so ucm keeps them exactly as received (not percent-decoded), OWS trimmed.
struct BaggageProperty {
  std::string key;                   ///< a token
  std::optional<std::string> value;  ///< baggage-octets, as on the wire; nullopt for `;key`
  /// Member-wise equality.
  friend bool operator==(const BaggageProperty&, const BaggageProperty&) = default;
};

/// One baggage list-member: a key, its decoded value and its properties.
struct BaggageMember {
  std::string key;    ///< a token (RFC 7230), case-sensitive
  std::string value;  ///< the decoded value: UTF-8 text (ill-formed sequences became U+FFFD)
  std::vector<BaggageProperty> properties;  ///< in header order
  /// Member-wise equality.
  friend bool operator==(const BaggageMember&, const BaggageMember&) = default;
};

/// W3C Baggage: application key/value pairs that travel with a request. An ordered list with
/// unique keys (a duplicate key in a header keeps its first position and its last value, as
/// OpenTelemetry does; the spec allows de-duplication). Values are percent-decoded on parse
/// and percent-encoded on format.
///
/// Limits: a header carries at most 64 members and 8192 bytes (the spec's minimums, which
/// every conforming peer accepts). When a list exceeds them, members are taken in order and a
/// member that does not fit is dropped while later ones that fit are kept (OpenTelemetry's
/// rule). `parse` applies the same rule, so a parsed Baggage always formats in full.
///
///     ucm::w3c::Baggage b;
///     b.set("user.id", "alice");
///     ucm::w3c::baggage.run(b, handle);   // inject() now sends baggage: user.id=alice
class Baggage {
 public:
  /// The most members a header carries.
  static constexpr std::size_t max_members = 64;
  /// The most bytes a header carries.
  static constexpr std::size_t max_bytes = 8192;

  using const_iterator = std::vector<BaggageMember>::const_iterator;

  /// The empty baggage.
  Baggage() = default;

  /// Whether `key` is a valid baggage key (an RFC 7230 token).
  [[nodiscard]] static constexpr bool is_valid_key(std::string_view key) noexcept {
    return detail::is_token(key);
  }

  /// Parses a (combined) `baggage` header value. `nullopt` when the header does not follow the
  /// grammar: a member without `=`, a key that is not a token, a character outside
  /// baggage-octet in a value, a `%` not followed by two hex digits, a malformed property.
  /// The whole header is then ignored, never applied in part. OWS around members, keys,
  /// values and properties is trimmed; empty members and empty properties are skipped.
  /// Members beyond the limits are dropped (see the class comment). Never throws.
  [[nodiscard]] static std::optional<Baggage> parse(std::string_view header) noexcept {
    try {
      Baggage baggage;
      bool valid = true;
      std::string decoded;
      ucm::w3c::detail::for_each_list_member(header, [&](std::string_view piece) {
        if (!valid) return;
        const std::string_view member = detail::trim_ows(piece);
        if (member.empty()) return;
        const std::size_t semicolon = member.find(';');
        const std::string_view pair = member.substr(0, semicolon);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos) {
          valid = false;
          return;
        }
        const std::string_view key = detail::trim_ows(pair.substr(0, eq));
        const std::string_view raw_value = detail::trim_ows(pair.substr(eq + 1));
        if (!is_valid_key(key) || !detail::is_baggage_value_text(raw_value) ||
            !detail::percent_decode(raw_value, decoded)) {
          valid = false;
          return;
        }
        BaggageMember parsed{std::string(key), decoded, {}};
        if (semicolon != std::string_view::npos) {
          valid = parse_properties(member.substr(semicolon + 1), parsed.properties);
          if (!valid) return;
        }
        baggage.members_.push_back(std::move(parsed));
      });
      if (!valid) return std::nullopt;
      baggage.deduplicate();
      baggage.apply_limits();
      return baggage;
    } catch (...) {
      return std::nullopt;
    }
  }

  /// The header value: `key=value;property` members joined by `,`, values percent-encoded
  /// (every byte outside baggage-octet, and `%`, as `%XX`). Members beyond the limits are
  /// dropped (see the class comment). Empty when there is nothing to send.
  [[nodiscard]] std::string to_header() const {
    std::string out;
    std::size_t count = 0;
    std::size_t used = 0;
    for (const BaggageMember& member : members_) {
      const std::size_t size = encoded_size(member);
      const std::size_t needed = size + (count == 0 ? 0 : 1);
      if (count == max_members) break;
      if (used + needed > max_bytes) continue;
      if (count != 0) out.push_back(',');
      append_encoded(member, out);
      used += needed;
      ++count;
    }
    return out;
  }

  /// The decoded value of `key`, or nullptr. Valid until this baggage changes.
  [[nodiscard]] const std::string* get(std::string_view key) const noexcept {
    const BaggageMember* member = find(key);
    return member == nullptr ? nullptr : &member->value;
  }

  /// The member with `key`, or nullptr.
  [[nodiscard]] const BaggageMember* find(std::string_view key) const noexcept {
    const auto it = std::find_if(members_.begin(), members_.end(),
                                 [key](const BaggageMember& m) { return m.key == key; });
    return it == members_.end() ? nullptr : &*it;
  }

  /// Sets `key` to `value` (any bytes; encoded on the wire) with `properties`, replacing an
  /// existing member in place or appending a new one. Throws `std::invalid_argument` when the
  /// key or a property key is not a token, or a property value is not baggage-octets.
  void set(std::string_view key, std::string_view value,
           std::vector<BaggageProperty> properties = {}) {
    if (!is_valid_key(key)) throw std::invalid_argument("ucm::w3c: invalid baggage key");
    for (const BaggageProperty& p : properties) {
      if (!detail::is_token(p.key) || (p.value && !detail::is_baggage_value_text(*p.value))) {
        throw std::invalid_argument("ucm::w3c: invalid baggage property");
      }
    }
    const auto it = std::find_if(members_.begin(), members_.end(),
                                 [key](const BaggageMember& m) { return m.key == key; });
    if (it != members_.end()) {
      it->value.assign(value);
      it->properties = std::move(properties);
    } else {
      members_.push_back(
          BaggageMember{std::string(key), std::string(value), std::move(properties)});
    }
  }

  /// A copy of this baggage with `key` set, for `ucm::w3c::baggage.run(b.with("k", "v"), fn)`.
  [[nodiscard]] Baggage with(std::string_view key, std::string_view value,
                             std::vector<BaggageProperty> properties = {}) const {
    Baggage copy = *this;
    copy.set(key, value, std::move(properties));
    return copy;
  }

  /// Removes `key`; returns whether it was there.
  bool erase(std::string_view key) {
    const auto it = std::find_if(members_.begin(), members_.end(),
                                 [key](const BaggageMember& m) { return m.key == key; });
    if (it == members_.end()) return false;
    members_.erase(it);
    return true;
  }

  /// Number of members.
  [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }
  /// Whether there are no members.
  [[nodiscard]] bool empty() const noexcept { return members_.empty(); }
  /// The members, in order.
  [[nodiscard]] const_iterator begin() const noexcept { return members_.begin(); }
  /// End of the members.
  [[nodiscard]] const_iterator end() const noexcept { return members_.end(); }

  /// Member-wise equality.
  friend bool operator==(const Baggage&, const Baggage&) = default;

 private:
  /// Parses `;`-separated properties (the text after the first `;`).
  static bool parse_properties(std::string_view text, std::vector<BaggageProperty>& out) {
    std::size_t start = 0;
    while (start <= text.size()) {
      std::size_t end = text.find(';', start);
      if (end == std::string_view::npos) end = text.size();
      const std::string_view property = detail::trim_ows(text.substr(start, end - start));
      start = end + 1;
      if (property.empty()) continue;
      const std::size_t eq = property.find('=');
      const std::string_view key = detail::trim_ows(property.substr(0, eq));
      if (!detail::is_token(key)) return false;
      if (eq == std::string_view::npos) {
        out.push_back(BaggageProperty{std::string(key), std::nullopt});
      } else {
        const std::string_view value = detail::trim_ows(property.substr(eq + 1));
        if (!detail::is_baggage_value_text(value)) return false;
        out.push_back(BaggageProperty{std::string(key), std::string(value)});
      }
    }
    return true;
  }

  /// Merges duplicate keys: first position, last value. O(n log n) whatever the input, so a
  /// hostile header with many members costs no quadratic time.
  void deduplicate() {
    if (members_.size() < 2) return;
    std::vector<std::size_t> order(members_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [this](std::size_t a, std::size_t b) {
      return members_[a].key < members_[b].key;
    });
    std::vector<bool> removed(members_.size(), false);
    bool any = false;
    for (std::size_t i = 0; i < order.size();) {
      std::size_t j = i + 1;
      while (j < order.size() && members_[order[j]].key == members_[order[i]].key) ++j;
      if (j - i > 1) {
        BaggageMember& first = members_[order[i]];
        BaggageMember& last = members_[order[j - 1]];
        first.value = std::move(last.value);
        first.properties = std::move(last.properties);
        for (std::size_t k = i + 1; k < j; ++k) removed[order[k]] = true;
        any = true;
      }
      i = j;
    }
    if (any) erase_marked(removed);
  }

  /// Drops the members that do not fit the limits (the rule `to_header` applies).
  void apply_limits() {
    std::vector<bool> removed(members_.size(), false);
    bool any = false;
    std::size_t count = 0;
    std::size_t used = 0;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      const std::size_t needed = encoded_size(members_[i]) + (count == 0 ? 0 : 1);
      if (count == max_members || used + needed > max_bytes) {
        removed[i] = true;
        any = true;
        continue;
      }
      used += needed;
      ++count;
    }
    if (any) erase_marked(removed);
  }

  void erase_marked(const std::vector<bool>& removed) {
    std::size_t out = 0;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (removed[i]) continue;
      if (out != i) members_[out] = std::move(members_[i]);
      ++out;
    }
    members_.resize(out);
  }

  static std::size_t encoded_size(const BaggageMember& member) noexcept {
    std::size_t size = member.key.size() + 1 + detail::percent_encoded_size(member.value);
    for (const BaggageProperty& p : member.properties) {
      size += 1 + p.key.size() + (p.value ? 1 + p.value->size() : 0);
    }
    return size;
  }

  static void append_encoded(const BaggageMember& member, std::string& out) {
    out.append(member.key).push_back('=');
    detail::percent_encode(member.value, out);
    for (const BaggageProperty& p : member.properties) {
      out.push_back(';');
      out.append(p.key);
      if (p.value) out.append("=").append(*p.value);
    }
  }

  std::vector<BaggageMember> members_;
};

// =============================================================================================
// The context variables
// =============================================================================================

/// The trace context of the current operation: what `inject` sends as `traceparent` and
/// `tracestate`, and what `extract` binds from them. No default.
inline ucm::ContextVariable<TraceContext> trace_context;

/// The baggage of the current request: what `inject` sends as `baggage` (together with the
/// variables registered through `register_baggage_codec`), and what `extract` binds. No default.
inline ucm::ContextVariable<Baggage> baggage;

// =============================================================================================
// Carriers
// =============================================================================================

/// Header names, lower case as the specs recommend sending them.
inline constexpr std::string_view traceparent_header = "traceparent";
inline constexpr std::string_view tracestate_header = "tracestate";
inline constexpr std::string_view baggage_header = "baggage";

namespace detail {

template <class R>
concept optional_text = requires(const R& r) {
  { r.has_value() } -> std::convertible_to<bool>;
  { *r } -> std::convertible_to<std::string_view>;
};

/// What a carrier's `get` may return: an optional string (nullopt is absent), a pointer to a
/// string or `const char*` (nullptr is absent), or a string (empty is absent, OpenTelemetry's
/// convention).
template <class R>
concept header_value = optional_text<std::remove_cvref_t<R>> ||
    std::is_pointer_v<std::remove_cvref_t<R>> || std::convertible_to<R, std::string_view>;

template <class R>
std::optional<std::string> to_header_value(R&& result) {
  using Raw = std::remove_cvref_t<R>;
  if constexpr (optional_text<Raw>) {
    if (!result.has_value()) return std::nullopt;
    return std::string(std::string_view(*result));
  } else if constexpr (std::is_pointer_v<Raw>) {
    if (result == nullptr) return std::nullopt;
    if constexpr (std::convertible_to<Raw, const char*>) {
      return std::string(result);
    } else {
      return std::string(std::string_view(*result));
    }
  } else {
    const std::string_view text(result);
    if (text.empty()) return std::nullopt;
    return std::string(text);
  }
}

/// A carrier with its own `get(name)`.
template <class C>
concept custom_reader = requires(const C& carrier, const std::string& name) {
  { carrier.get(name) } -> header_value;
};

/// A carrier with its own `set(name, value)`.
template <class C>
concept custom_writer = requires(C& carrier, std::string name, std::string value) {
  carrier.set(std::move(name), std::move(value));
};

/// A standard associative container of strings: std::map, std::unordered_map, their multi
/// forms, and look-alikes such as httplib::Headers (a case-insensitive multimap).
template <class M>
concept header_map = requires(M& map, const M& cmap, const typename M::key_type& key) {
  typename M::key_type;
  typename M::mapped_type;
  requires std::constructible_from<typename M::key_type, std::string>;
  requires std::convertible_to<const typename M::key_type&, std::string_view>;
  requires std::constructible_from<typename M::mapped_type, std::string>;
  requires std::convertible_to<const typename M::mapped_type&, std::string_view>;
  cmap.equal_range(key);
  map.erase(map.begin());
  map.emplace(std::string(), std::string());
};

/// All values of header `name` in `map`, joined by `,` (RFC 7230 combination): an exact-key
/// lookup first (which a case-insensitive comparator makes case-insensitive), then, only when
/// that finds nothing, a case-insensitive scan.
template <header_map M>
std::optional<std::string> map_get(const M& map, std::string_view name) {
  std::optional<std::string> joined;
  const auto append = [&joined](std::string_view value) {
    if (!joined) {
      joined.emplace(value);
    } else {
      joined->push_back(',');
      joined->append(value);
    }
  };
  const typename M::key_type key(std::string{name});
  for (auto [it, end] = map.equal_range(key); it != end; ++it) append(it->second);
  if (!joined) {
    for (const auto& entry : map) {
      if (iequals(std::string_view(entry.first), name)) append(entry.second);
    }
  }
  return joined;
}

/// Removes every entry of `map` whose key equals `name` case-insensitively.
template <header_map M>
void map_erase(M& map, std::string_view name) {
  for (auto it = map.begin(); it != map.end();) {
    if (iequals(std::string_view(it->first), name)) {
      it = map.erase(it);
    } else {
      ++it;
    }
  }
}

template <class C>
std::optional<std::string> carrier_get(const C& carrier, std::string_view name) {
  if constexpr (custom_reader<C>) {
    const std::string key(name);
    return to_header_value(carrier.get(key));
  } else {
    return map_get(carrier, name);
  }
}

template <class C>
void carrier_set(C& carrier, std::string_view name, std::string value) {
  if constexpr (custom_writer<C>) {
    carrier.set(std::string(name), std::move(value));
  } else {
    map_erase(carrier, name);
    carrier.emplace(std::string(name), std::move(value));
  }
}

/// Whether `C` can remove a header: a carrier of its own with `erase(name)`, such as
/// EnvironmentCarrier. Such a carrier is made to describe exactly the injected context.
template <class C>
concept erasing_writer = custom_writer<C> && requires(C& carrier, std::string name) {
  carrier.erase(std::move(name));
};

/// Removes header `name`: from a map (any case) or through the carrier's `erase`; a carrier with
/// neither keeps it.
template <class C>
void carrier_erase(C& carrier, std::string_view name) {
  if constexpr (erasing_writer<C>) {
    carrier.erase(std::string(name));
  } else if constexpr (!custom_writer<C>) {
    map_erase(carrier, name);
  }
}

}  // namespace detail

/// A carrier `extract` can read: a type with `get(name)` returning `std::optional<string>`,
/// a string (empty meaning absent) or a pointer (nullptr meaning absent); or a standard
/// associative container from string to string (`std::map`, `std::unordered_map`, the multi
/// forms, `httplib::Headers`), read case-insensitively with repeated headers joined by `,`.
template <class C>
concept ReadableCarrier = detail::custom_reader<C> || detail::header_map<C>;

/// A carrier `inject` can write: a type with `set(name, value)` (and, optionally,
/// `erase(name)`: see `inject`), or a standard associative container from string to string,
/// where `inject` replaces any entry whose key matches case-insensitively with one lower-case
/// key.
template <class C>
concept WritableCarrier = detail::custom_writer<C> || detail::header_map<C>;

/// The process environment as a carrier, the OpenTelemetry convention for a child process:
/// header `traceparent` is variable `TRACEPARENT`, `tracestate` is `TRACESTATE`, `baggage` is
/// `BAGGAGE` (upper case; other characters than letters and digits become `_`).
///
///     ucm::w3c::inject(ucm::w3c::EnvironmentCarrier{});   // parent, before fork/exec/spawn
///     ucm::ContextFrameScope s(ucm::w3c::extract(ucm::w3c::EnvironmentCarrier{}));  // child
///
/// `set` and `erase` change this process's environment (setenv/unsetenv), which children
/// inherit; like any environment change they must not race with other threads reading it.
/// Because it has `erase`, `inject` unsets the variables the context has nothing for, so a
/// child never receives what this process itself inherited.
class EnvironmentCarrier {
 public:
  /// The environment variable name for a header name.
  [[nodiscard]] static std::string variable_name(std::string_view header) {
    std::string name(header);
    for (char& c : name) {
      if (c >= 'a' && c <= 'z') {
        c = static_cast<char>(c - 'a' + 'A');
      } else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
        c = '_';
      }
    }
    return name;
  }

  /// The variable for `header`, or nullopt when unset.
  [[nodiscard]] std::optional<std::string> get(const std::string& header) const {
    const std::string name = variable_name(header);
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  }

  /// Sets the variable for `header` in this process's environment. Throws
  /// `std::system_error` when the environment cannot take it (out of memory).
  void set(const std::string& header, const std::string& value) const {
    const std::string name = variable_name(header);
#if defined(_WIN32)
    const int error = ::_putenv_s(name.c_str(), value.c_str());
#else
    const int error = ::setenv(name.c_str(), value.c_str(), 1) == 0 ? 0 : errno;  // NOLINT
#endif
    if (error != 0) {
      throw std::system_error(error, std::generic_category(), "ucm::w3c: setenv " + name);
    }
  }

  /// Removes the variable for `header` from this process's environment.
  void erase(const std::string& header) const {
    const std::string name = variable_name(header);
#if defined(_WIN32)
    ::_putenv_s(name.c_str(), "");
#else
    ::unsetenv(name.c_str());                                                     // NOLINT(concurrency-mt-unsafe)
#endif
  }
};

// =============================================================================================
// Baggage codecs: a user's ContextVariable<T> riding in baggage
// =============================================================================================

/// How a `T` is written as a baggage value and read back. `encode` gives the raw value
/// (percent-encoding is applied on the wire); `decode` receives the decoded value and returns
/// nullopt when it is not a valid `T`.
template <class T>
struct BaggageCodec {
  std::function<std::string(const T&)> encode;               ///< T to text
  std::function<std::optional<T>(std::string_view)> decode;  ///< text to T, or nullopt
};

/// The codec `register_baggage_codec(variable, key)` uses: `std::string` as is, `bool` as
/// `true`/`false`, integers and floating-point numbers through std::to_chars/std::from_chars
/// (the whole value must parse). Other types need an explicit codec.
template <class T>
requires std::same_as<T, std::string> || std::is_arithmetic_v<T>
[[nodiscard]] BaggageCodec<T> default_baggage_codec() {
  if constexpr (std::same_as<T, std::string>) {
    return {[](const std::string& v) { return v; },
            [](std::string_view text) -> std::optional<std::string> { return std::string(text); }};
  } else if constexpr (std::same_as<T, bool>) {
    return {[](const bool& v) { return std::string(v ? "true" : "false"); },
            [](std::string_view text) -> std::optional<bool> {
              if (text == "true") return true;
              if (text == "false") return false;
              return std::nullopt;
            }};
  } else {
    return {[](const T& v) {
              std::array<char, 64> buffer{};
              const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), v);
              return std::string(buffer.data(), result.ptr);
            },
            [](std::string_view text) -> std::optional<T> {
              T value{};
              const char* end = text.data() + text.size();
              const auto result = std::from_chars(text.data(), end, value);
              if (result.ec != std::errc{} || result.ptr != end) return std::nullopt;
              return value;
            }};
  }
}

namespace detail {

/// One registered codec, type-erased.
struct BaggageCodecEntry {
  std::string key;
  /// The variable's binding in `*frame` (or, for nullptr, in this thread's context, the
  /// default excluded) encoded; nullopt when unbound.
  std::function<std::optional<std::string>(const ContextFrame* frame)> encode;
  /// `frame` plus the variable bound to the decoded `value`; nullopt when decoding fails.
  std::function<std::optional<ContextFrame>(const ContextFrame& frame, std::string_view value)>
      decode;
  /// Cleared first when the registration ends, so a snapshot taken just before skips it.
  std::atomic<bool> active{true};
};

using BaggageCodecList = std::vector<std::shared_ptr<BaggageCodecEntry>>;

/// The process-wide codec registry: copy-on-write, so inject and extract take a snapshot under
/// the lock (one reference-count increment) and run the codecs without holding it.
struct BaggageCodecRegistry {
  std::mutex mutex;
  std::shared_ptr<const BaggageCodecList> codecs = std::make_shared<const BaggageCodecList>();
};

inline BaggageCodecRegistry& baggage_codec_registry() {
  static BaggageCodecRegistry registry;
  return registry;
}

inline std::shared_ptr<const BaggageCodecList> baggage_codecs() {
  BaggageCodecRegistry& registry = baggage_codec_registry();
  const std::lock_guard lock(registry.mutex);
  return registry.codecs;
}

}  // namespace detail

/// Keeps a baggage codec registered; unregisters it when destroyed or `reset`. Movable, not
/// copyable. Destroy it before the variable it refers to, and not while an `inject` or
/// `extract` may be running on another thread (defining both at namespace scope, the
/// registration after the variable, does this: it ends first).
class [[nodiscard]] BaggageCodecRegistration {
 public:
  /// An empty registration (registers nothing).
  BaggageCodecRegistration() noexcept = default;
  BaggageCodecRegistration(BaggageCodecRegistration&& other) noexcept
      : entry_(std::move(other.entry_)) {}
  BaggageCodecRegistration& operator=(BaggageCodecRegistration&& other) noexcept {
    if (this != &other) {
      reset();
      entry_ = std::move(other.entry_);
    }
    return *this;
  }
  BaggageCodecRegistration(const BaggageCodecRegistration&) = delete;
  BaggageCodecRegistration& operator=(const BaggageCodecRegistration&) = delete;
  ~BaggageCodecRegistration() { reset(); }

  /// Unregisters the codec now (no effect on an empty registration).
  void reset() noexcept {
    if (!entry_) return;
    entry_->active.store(false, std::memory_order_release);
    try {
      detail::BaggageCodecRegistry& registry = detail::baggage_codec_registry();
      const std::lock_guard lock(registry.mutex);
      auto next = std::make_shared<detail::BaggageCodecList>();
      next->reserve(registry.codecs->size());
      for (const auto& entry : *registry.codecs) {
        if (entry != entry_) next->push_back(entry);
      }
      registry.codecs = std::move(next);
    } catch (...) {
      // Out of memory: the entry stays in the list but inactive, and is skipped.
    }
    entry_.reset();
  }

  /// Whether a codec is registered through this object.
  [[nodiscard]] explicit operator bool() const noexcept { return entry_ != nullptr; }

 private:
  template <class T>
  friend BaggageCodecRegistration register_baggage_codec(const ContextVariable<T>&, std::string,
                                                         BaggageCodec<T>);
  explicit BaggageCodecRegistration(std::shared_ptr<detail::BaggageCodecEntry> entry) noexcept
      : entry_(std::move(entry)) {}

  std::shared_ptr<detail::BaggageCodecEntry> entry_;
};

/// Makes `variable` ride in baggage under `key`: `inject` writes its binding (if bound; the
/// default is not sent) as a baggage member, replacing the value of a member with the same key
/// in `ucm::w3c::baggage`; `extract` decodes the member into the frame it returns (a value that
/// fails to decode is skipped, the rest of the baggage still applies). The member also stays in
/// `ucm::w3c::baggage`. Throws `std::invalid_argument` when `key` is not a token or another
/// live codec has it, or when `codec` lacks a function.
///
///     inline ucm::ContextVariable<int> tenant;
///     inline auto tenant_codec = ucm::w3c::register_baggage_codec(tenant, "tenant");
template <class T>
BaggageCodecRegistration register_baggage_codec(const ContextVariable<T>& variable, std::string key,
                                                BaggageCodec<T> codec) {
  static_assert(std::move_constructible<T>, "a decoded value is moved into the frame");
  if (!Baggage::is_valid_key(key)) throw std::invalid_argument("ucm::w3c: invalid baggage key");
  if (!codec.encode || !codec.decode) {
    throw std::invalid_argument("ucm::w3c: a baggage codec needs encode and decode");
  }
  auto entry = std::make_shared<detail::BaggageCodecEntry>();
  entry->key = key;
  entry->encode = [&variable,
                   encode = codec.encode](const ContextFrame* frame) -> std::optional<std::string> {
    const T* value = nullptr;
    if (frame != nullptr) {
      value = frame->get(variable);
    } else if (variable.is_bound()) {
      value = variable.get();
    }
    if (value == nullptr) return std::nullopt;
    return encode(*value);
  };
  entry->decode = [&variable, decode = codec.decode](
                      const ContextFrame& frame,
                      std::string_view text) -> std::optional<ContextFrame> {
    std::optional<T> value = decode(text);
    if (!value) return std::nullopt;
    return frame.with(variable, std::move(*value));
  };
  detail::BaggageCodecRegistry& registry = detail::baggage_codec_registry();
  const std::lock_guard lock(registry.mutex);
  for (const auto& other : *registry.codecs) {
    if (other->active.load(std::memory_order_acquire) && other->key == key) {
      throw std::invalid_argument("ucm::w3c: a baggage codec is already registered for " + key);
    }
  }
  auto next = std::make_shared<detail::BaggageCodecList>(*registry.codecs);
  next->push_back(entry);
  registry.codecs = std::move(next);
  return BaggageCodecRegistration(std::move(entry));
}

/// `register_baggage_codec` with separate encode and decode functions: `encode(const T&)`
/// returns something convertible to `std::string`, `decode(std::string_view)` something
/// convertible to `std::optional<T>`.
template <class T, class Encode, class Decode>
requires std::convertible_to<std::invoke_result_t<const Encode&, const T&>, std::string> &&
    std::convertible_to<std::invoke_result_t<const Decode&, std::string_view>, std::optional<T>>
        BaggageCodecRegistration register_baggage_codec(const ContextVariable<T>& variable,
                                                        std::string key, Encode encode,
                                                        Decode decode) {
  BaggageCodec<T> codec;
  codec.encode = [encode = std::move(encode)](const T& v) { return std::string(encode(v)); };
  codec.decode = [decode = std::move(decode)](std::string_view text) {
    return std::optional<T>(decode(text));
  };
  return register_baggage_codec(variable, std::move(key), std::move(codec));
}

/// `register_baggage_codec` with `default_baggage_codec<T>()` (strings, bool, numbers).
template <class T>
requires std::same_as<T, std::string> || std::is_arithmetic_v<T> BaggageCodecRegistration
register_baggage_codec(const ContextVariable<T>& variable, std::string key) {
  return register_baggage_codec(variable, std::move(key), default_baggage_codec<T>());
}

// =============================================================================================
// inject / extract
// =============================================================================================

namespace detail {

template <class C>
void inject_from(const ContextFrame* frame, C& carrier) {
  const TraceContext* trace =
      frame != nullptr ? frame->get(w3c::trace_context) : w3c::trace_context.get();
  const Baggage* bag = frame != nullptr ? frame->get(w3c::baggage) : w3c::baggage.get();

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

  const std::shared_ptr<const BaggageCodecList> codecs = baggage_codecs();
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
  std::optional<TraceContext> trace;
  try {
    if (std::optional<std::string> traceparent = detail::carrier_get(carrier, traceparent_header)) {
      trace = TraceContext::parse(*traceparent);
    }
  } catch (...) {
    trace.reset();
  }
  if (trace) {
    // Parsed only after a valid traceparent; its failure never affects the traceparent.
    try {
      if (std::optional<std::string> header = detail::carrier_get(carrier, tracestate_header)) {
        if (std::optional<TraceState> state = TraceState::parse(*header)) {
          trace->state = std::move(*state);
        }
      }
    } catch (...) {
    }
  }
  std::optional<Baggage> bag;
  try {
    if (std::optional<std::string> header = detail::carrier_get(carrier, baggage_header)) {
      bag = Baggage::parse(*header);
      if (bag && bag->empty()) bag.reset();
    }
  } catch (...) {
    bag.reset();
  }

  ContextFrame result = std::move(base);
  if (trace) {
    try {
      result = result.with(w3c::trace_context, std::move(*trace));
    } catch (...) {
    }
  }
  if (bag) {
    try {
      ContextFrame next = result.with(w3c::baggage, *bag);
      const std::shared_ptr<const detail::BaggageCodecList> codecs = detail::baggage_codecs();
      for (const auto& codec : *codecs) {
        if (!codec->active.load(std::memory_order_acquire)) continue;
        const std::string* value = bag->get(codec->key);
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
