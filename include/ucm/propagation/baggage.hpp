// SPDX-License-Identifier: MIT
// ucm/propagation/baggage.hpp: W3C Baggage (Baggage, BaggageMember, BaggageProperty): the
// members of a `baggage` header, percent-decoded and encoded, within the spec's limits (64
// members, 8192 bytes). Part of ucm/propagation/w3c.hpp, which includes it.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ucm/propagation/detail/w3c_text.hpp"

namespace ucm::w3c {

namespace detail {
struct HeaderLists;  // ucm/propagation/w3c.hpp: parses the pieces of a repeated header
}  // namespace detail

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

}  // namespace ucm::w3c
