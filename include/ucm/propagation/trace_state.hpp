// SPDX-License-Identifier: MIT
// ucm/propagation/trace_state.hpp: W3C Trace Context's `tracestate` list (TraceState): vendor
// key/value pairs with strict parsing and formatting. Part of ucm/propagation/w3c.hpp, which
// includes it.
#pragma once

#include <algorithm>
#include <cstddef>
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

}  // namespace ucm::w3c
