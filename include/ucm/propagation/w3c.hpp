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

namespace detail {
struct HeaderLists;
}  // namespace detail

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
    return parse_list(&header, 1);
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
  friend struct detail::HeaderLists;

  /// `parse` of the list `pieces` form joined by `,` (repeated headers), without joining them.
  /// Memory: the members kept (at most 32 of at most 513 characters), whatever the input; it
  /// stops at the first invalid member.
  static std::optional<TraceState> parse_list(const std::string_view* pieces,
                                              std::size_t count) noexcept {
    try {
      TraceState state;
      const bool valid =
          ucm::w3c::detail::for_each_list_member(pieces, count, [&](std::string_view piece) {
            const std::string_view member = detail::trim_ows(piece);
            if (member.empty()) return true;
            const std::size_t eq = member.find('=');
            if (eq == std::string_view::npos) return false;
            const std::string_view key = member.substr(0, eq);
            const std::string_view value = member.substr(eq + 1);
            if (!is_valid_key(key) || !is_valid_value(value) ||
                state.members_.size() == max_members || state.find(key) != state.members_.end()) {
              return false;
            }
            state.members_.push_back(Member{std::string(key), std::string(value)});
            return true;
          });
      if (!valid) return std::nullopt;
      return state;
    } catch (...) {
      return std::nullopt;
    }
  }

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
/// rule). `parse` applies the same rule as it reads the header (see there), so a parsed
/// Baggage always formats in full, and parsing takes memory for what it keeps only.
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
  ///
  /// Members are taken in header order, each kept only if it fits the limits (counting its
  /// size as `to_header` would send it): a new key is appended while fewer than 64 members are
  /// kept and the header stays within 8192 bytes; a key already kept takes the later value and
  /// properties in place (first position, last value) if the header stays within 8192 bytes
  /// with them, else that later member is dropped. A dropped member is forgotten: a later one
  /// with its key that fits is appended. A header without duplicate keys that fits the limits
  /// parses whole.
  ///
  /// Linear time, and memory for the members kept only (at most 64 and 8192 bytes), however
  /// long the header: members that are not kept are checked in place, never copied. Never
  /// throws.
  [[nodiscard]] static std::optional<Baggage> parse(std::string_view header) noexcept {
    return parse_list(&header, 1);
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
  friend struct detail::HeaderLists;

  /// One member as it appears in a header, checked against the grammar but not decoded: views
  /// into the header.
  struct RawMember {
    std::string_view key;
    std::string_view value;       // percent-encoded, OWS trimmed
    std::string_view properties;  // the text after the first `;` (empty for none)
    std::size_t size;             // what the member takes in a header ucm sends
  };

  /// Which kept member has a key: a hash index over at most max_members keys, so checking a
  /// member of a long header for a duplicate costs one hash of its key, not a scan.
  class KeptKeys {
   public:
    /// The position of `key` among `kept`, or max_members.
    std::size_t find(std::string_view key, const RawMember* kept) const noexcept {
      for (std::size_t slot = hash(key);; slot = (slot + 1) % slots) {
        if (index_[slot] == 0) return max_members;
        if (kept[index_[slot] - 1].key == key) return index_[slot] - 1U;
      }
    }
    void insert(std::string_view key, std::size_t position) noexcept {
      std::size_t slot = hash(key);
      while (index_[slot] != 0) slot = (slot + 1) % slots;
      index_[slot] = static_cast<std::uint8_t>(position + 1);
    }

   private:
    static constexpr std::size_t slots = 2 * max_members;  // always a free slot
    static std::size_t hash(std::string_view key) noexcept {
      std::uint64_t h = 14695981039346656037ULL;  // FNV-1a
      for (const char c : key) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
      return static_cast<std::size_t>(h % slots);
    }
    std::array<std::uint8_t, slots> index_{};
  };
  static_assert(max_members < 255);

  /// Calls `fn(key, value)` (`value`: as on the wire, or nullopt for `;key`) for each property
  /// of `text` (the text after a member's first `;`), skipping empty ones. False when one is
  /// malformed (then `fn` may have seen some).
  template <class F>
  static bool for_each_property(std::string_view text, F&& fn) {
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
        fn(key, std::optional<std::string_view>());
      } else {
        const std::string_view value = detail::trim_ows(property.substr(eq + 1));
        if (!detail::is_baggage_value_text(value)) return false;
        fn(key, std::optional<std::string_view>(value));
      }
    }
    return true;
  }

  /// Checks `member` (OWS trimmed, not empty) against the grammar and views its parts in
  /// `out`, with its size as `to_header` would send it. False when it is malformed.
  static bool scan_member(std::string_view member, RawMember& out) noexcept {
    const std::size_t semicolon = member.find(';');
    const std::string_view pair = member.substr(0, semicolon);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return false;
    out.key = detail::trim_ows(pair.substr(0, eq));
    out.value = detail::trim_ows(pair.substr(eq + 1));
    if (!is_valid_key(out.key) || !detail::is_baggage_value_text(out.value) ||
        !detail::is_percent_encoded(out.value)) {
      return false;
    }
    out.properties =
        semicolon == std::string_view::npos ? std::string_view() : member.substr(semicolon + 1);
    std::size_t size = out.key.size() + 1 + detail::decoded_encoded_size(out.value);
    const bool valid = for_each_property(
        out.properties, [&size](std::string_view key, std::optional<std::string_view> value) {
          size += 1 + key.size() + (value ? 1 + value->size() : 0);
        });
    out.size = size;
    return valid;
  }

  /// `parse` of the list `pieces` form joined by `,` (repeated headers), without joining them.
  ///
  // NOTE: one pass over the header applies the limits as it goes, keeping views of at most
  // max_members members on the stack; only those are decoded and copied at the end. A header
  // of megabytes, valid or not, costs no more memory than one that fits (tested by counting
  // allocations: a hostile header once cost 25 times its size).
  static std::optional<Baggage> parse_list(const std::string_view* pieces,
                                           std::size_t count) noexcept {
    std::array<RawMember, max_members> kept;
    std::size_t kept_count = 0;
    std::size_t used = 0;  // bytes of the kept members, separators included
    KeptKeys keys;
    const bool valid =
        ucm::w3c::detail::for_each_list_member(pieces, count, [&](std::string_view piece) {
          const std::string_view text = detail::trim_ows(piece);
          if (text.empty()) return true;
          RawMember member;
          if (!scan_member(text, member)) return false;
          if (member.size > max_bytes) return true;  // can never fit
          const std::size_t same = keys.find(member.key, kept.data());
          if (same != max_members) {
            const std::size_t after = used - kept[same].size + member.size;
            if (after <= max_bytes) {
              kept[same] = member;
              used = after;
            }
            return true;
          }
          const std::size_t needed = member.size + (kept_count == 0 ? 0 : 1);
          if (kept_count == max_members || used + needed > max_bytes) return true;
          keys.insert(member.key, kept_count);
          kept[kept_count++] = member;
          used += needed;
          return true;
        });
    if (!valid) return std::nullopt;
    try {
      Baggage baggage;
      baggage.members_.reserve(kept_count);
      for (std::size_t i = 0; i < kept_count; ++i) {
        BaggageMember& member = baggage.members_.emplace_back();
        member.key.assign(kept[i].key);
        detail::percent_decode(kept[i].value, member.value);
        const auto add = [&member](std::string_view key, std::optional<std::string_view> value) {
          BaggageProperty& property = member.properties.emplace_back();
          property.key.assign(key);
          if (value) property.value.emplace(*value);
        };
        for_each_property(kept[i].properties, add);
      }
      return baggage;
    } catch (...) {
      return std::nullopt;
    }
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
// Carriers
// =============================================================================================

/// Header names, lower case as the specs recommend sending them.
inline constexpr std::string_view traceparent_header = "traceparent";
inline constexpr std::string_view tracestate_header = "tracestate";
inline constexpr std::string_view baggage_header = "baggage";

/// Makes a header container a carrier as it is, where it is neither a map nor a type with
/// `get`/`set` (ucm/propagation/beast.hpp does this for Beast's fields, requests and responses).
/// Specialise it with:
///
///     template <class F>
///     static void for_each(const C& carrier, std::string_view name, F&& visit);
///         // calls visit(std::string_view) with each value of header `name` (any case), in order
///     static void set(C& carrier, std::string_view name, std::string value);
///         // replaces every header `name` (any case) with one
///     static void erase(C& carrier, std::string_view name);
///         // removes every header `name` (any case)
///
/// `for_each` alone makes a ReadableCarrier, `set` and `erase` a WritableCarrier. The values
/// `visit` sees are read where the carrier keeps them, never copied, and repeated headers are
/// read as one list joined by `,`, as for maps.
template <class C>
struct CarrierTraits {};

namespace detail {

/// A header's values as `CarrierTraits::for_each` hands them out.
using HeaderVisitor = void (*)(std::string_view);

/// A carrier made one by a CarrierTraits specialisation, for reading.
template <class C>
concept adapted_reader = requires(const C& carrier, std::string_view name, HeaderVisitor visit) {
  CarrierTraits<C>::for_each(carrier, name, visit);
};

/// A carrier made one by a CarrierTraits specialisation, for writing (not through a const).
template <class C>
concept adapted_writer =
    !std::is_const_v<C> && requires(C & carrier, std::string_view name, std::string value) {
  CarrierTraits<C>::set(carrier, name, std::move(value));
  CarrierTraits<C>::erase(carrier, name);
};

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

/// A view of what a carrier's `get` returned (valid while the result lives), or nullopt when
/// the header is absent.
template <class R>
std::optional<std::string_view> header_view(const R& result) {
  if constexpr (optional_text<R>) {
    if (!result.has_value()) return std::nullopt;
    return std::string_view(*result);
  } else if constexpr (std::is_pointer_v<R>) {
    if (result == nullptr) return std::nullopt;
    if constexpr (std::convertible_to<R, const char*>) {
      return std::string_view(result);
    } else {
      return std::string_view(*result);
    }
  } else {
    const std::string_view text(result);
    if (text.empty()) return std::nullopt;
    return text;
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

/// Calls `read(pieces, count)` with the values `for_each(add)` passes to `add`, in order, to be
/// read as one list joined by `,` (RFC 7230 combination), viewed where the carrier keeps them,
/// not copied. Returns false, without calling `read`, when there is none.
template <class ForEach, class F>
bool read_values(ForEach&& for_each, F&& read) {
  std::array<std::string_view, 4> few;
  std::vector<std::string_view> many;  // only for a header repeated more than 4 times
  std::size_t count = 0;
  for_each([&](std::string_view value) {
    if (count < few.size()) {
      few[count] = value;
    } else {
      if (many.empty()) many.assign(few.begin(), few.end());
      many.push_back(value);
    }
    ++count;
  });
  if (count == 0) return false;
  read(count <= few.size() ? few.data() : many.data(), count);
  return true;
}

/// Calls `read(pieces, count)` with all values of header `name` in `map` (see read_values): an
/// exact-key lookup first (which a case-insensitive comparator makes case-insensitive), then,
/// only when that finds nothing, a case-insensitive scan. Returns false, without calling
/// `read`, when there is none.
template <header_map M, class F>
bool map_read(const M& map, std::string_view name, F&& read) {
  return read_values(
      [&](const auto& add) {
        const typename M::key_type key(std::string{name});
        bool found = false;
        for (auto [it, end] = map.equal_range(key); it != end; ++it) {
          add(std::string_view(it->second));
          found = true;
        }
        if (found) return;
        for (const auto& entry : map) {
          if (iequals(std::string_view(entry.first), name)) add(std::string_view(entry.second));
        }
      },
      std::forward<F>(read));
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

/// Calls `read(pieces, count)` with the value(s) of header `name` in `carrier`, viewed where
/// the carrier keeps them (a header of megabytes is never copied); false, without calling it,
/// when the header is absent.
template <class C, class F>
bool read_header(const C& carrier, std::string_view name, F&& read) {
  if constexpr (adapted_reader<C>) {
    return read_values([&](const auto& add) { CarrierTraits<C>::for_each(carrier, name, add); },
                       std::forward<F>(read));
  } else if constexpr (custom_reader<C>) {
    const std::string key(name);
    const auto& result = carrier.get(key);  // a temporary lives as long as the reference
    const std::optional<std::string_view> value = header_view(result);
    if (!value) return false;
    read(&*value, std::size_t{1});
    return true;
  } else {
    return map_read(carrier, name, std::forward<F>(read));
  }
}

template <class C>
void carrier_set(C& carrier, std::string_view name, std::string value) {
  if constexpr (adapted_writer<C>) {
    CarrierTraits<C>::set(carrier, name, std::move(value));
  } else if constexpr (custom_writer<C>) {
    carrier.set(std::string(name), std::move(value));
  } else {
    map_erase(carrier, name);
    carrier.emplace(std::string(name), std::move(value));
  }
}

/// Whether `C` can remove a header: a carrier of its own with `erase(name)`, such as
/// EnvironmentCarrier. Such a carrier is made to describe exactly the injected context. A
/// CarrierTraits specialisation takes precedence: its carrier is written as a map is (Beast's
/// fields have `set` and `erase` of their own, but are headers, not an environment).
template <class C>
concept erasing_writer =
    !adapted_writer<C> && custom_writer<C> && requires(C & carrier, std::string name) {
  carrier.erase(std::move(name));
};

/// Removes header `name`: from a map or an adapted carrier (any case) or through the carrier's
/// `erase`; a carrier with neither keeps it.
template <class C>
void carrier_erase(C& carrier, std::string_view name) {
  if constexpr (adapted_writer<C>) {
    CarrierTraits<C>::erase(carrier, name);
  } else if constexpr (erasing_writer<C>) {
    carrier.erase(std::string(name));
  } else if constexpr (!custom_writer<C>) {
    map_erase(carrier, name);
  }
}

}  // namespace detail

/// A carrier `extract` can read: a type with `get(name)` returning `std::optional<string>`,
/// a string (empty meaning absent) or a pointer (nullptr meaning absent); a standard
/// associative container from string to string (`std::map`, `std::unordered_map`, the multi
/// forms, `httplib::Headers`), read case-insensitively with repeated headers joined by `,`; or
/// a type made one by a CarrierTraits specialisation (Beast's fields, requests and responses
/// with ucm/propagation/beast.hpp), read the same way.
template <class C>
concept ReadableCarrier =
    detail::adapted_reader<C> || detail::custom_reader<C> || detail::header_map<C>;

/// A carrier `inject` can write: a type with `set(name, value)` (and, optionally,
/// `erase(name)`: see `inject`); a standard associative container from string to string,
/// where `inject` replaces any entry whose key matches case-insensitively with one lower-case
/// key; or a type made one by a CarrierTraits specialisation, written the same way.
template <class C>
concept WritableCarrier =
    detail::adapted_writer<C> || detail::custom_writer<C> || detail::header_map<C>;

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

/// One per program (see UCM_SHARED_STATE): a codec registered in one shared library is used by
/// `inject` and `extract` in another.
UCM_SHARED_STATE inline BaggageCodecRegistry& baggage_codec_registry() {
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
      const std::shared_ptr<const detail::BaggageCodecList> codecs = detail::baggage_codecs();
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
