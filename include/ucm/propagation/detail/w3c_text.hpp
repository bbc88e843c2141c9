// SPDX-License-Identifier: MIT
// ucm/propagation/detail/w3c_text.hpp: the character classes and text codecs of W3C Trace
// Context and W3C Baggage (lower-case hex, OWS, RFC 7230 tokens, tracestate keys and values,
// baggage octets, percent-encoding, UTF-8 repair). Internal to ucm/propagation/w3c.hpp and
// its parts (trace_context.hpp, trace_state.hpp, baggage.hpp, carriers.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace ucm::w3c::detail {

/// OWS of RFC 7230 section 3.2.3: space or horizontal tab.
constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// `text` without leading and trailing OWS.
constexpr std::string_view trim_ows(std::string_view text) noexcept {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

/// HEXDIGLC of the traceparent grammar: `0-9` and `a-f` only (upper case is invalid there).
constexpr bool is_lower_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/// The value of a hex digit of either case, or -1.
constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline constexpr char lower_hex_digits[] = "0123456789abcdef";
inline constexpr char upper_hex_digits[] = "0123456789ABCDEF";

/// A lower-case ASCII letter.
constexpr bool is_lcalpha(char c) noexcept { return c >= 'a' && c <= 'z'; }
/// An ASCII digit.
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// `tchar` of RFC 7230 section 3.2.6: the characters of a baggage key.
constexpr bool is_tchar(char c) noexcept {
  if (is_lcalpha(c) || is_digit(c) || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

/// A `token` of RFC 7230: one or more tchars.
constexpr bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

/// `baggage-octet`: US-ASCII printable characters except space, DQUOTE, comma, semicolon and
/// backslash (%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E).
constexpr bool is_baggage_octet(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
         (c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

/// A baggage `value` as it appears on the wire: any number of baggage-octets.
constexpr bool is_baggage_value_text(std::string_view text) noexcept {
  for (const char c : text) {
    if (!is_baggage_octet(c)) return false;
  }
  return true;
}

/// `keychar` of the tracestate key grammar of Trace Context level 1.
constexpr bool is_tracestate_keychar(char c) noexcept {
  return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}

/// Whether every character of `text` is a tracestate keychar.
constexpr bool all_tracestate_keychars(std::string_view text) noexcept {
  for (const char c : text) {
    if (!is_tracestate_keychar(c)) return false;
  }
  return true;
}

/// A tracestate key of Trace Context level 1:
///   simple-key       = lcalpha 0*255( keychar )                       (1 to 256 characters)
///   multi-tenant-key = tenant-id "@" system-id
///   tenant-id        = ( lcalpha / DIGIT ) 0*240( keychar )           (1 to 241 characters)
///   system-id        = lcalpha 0*13( keychar )                        (1 to 14 characters)
constexpr bool is_tracestate_key(std::string_view key) noexcept {
  const std::size_t at = key.find('@');
  if (at == std::string_view::npos) {
    return !key.empty() && key.size() <= 256 && is_lcalpha(key.front()) &&
           all_tracestate_keychars(key);
  }
  const std::string_view tenant = key.substr(0, at);
  const std::string_view system = key.substr(at + 1);
  return !tenant.empty() && tenant.size() <= 241 &&
         (is_lcalpha(tenant.front()) || is_digit(tenant.front())) &&
         all_tracestate_keychars(tenant) && !system.empty() && system.size() <= 14 &&
         is_lcalpha(system.front()) && all_tracestate_keychars(system);
}

/// A tracestate value: 1 to 256 printable ASCII characters (0x20-0x7E) other than `,` and `=`,
/// the last of which is not a space:  value = 0*255( chr ) nblk-chr.
constexpr bool is_tracestate_value(std::string_view value) noexcept {
  if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E || c == ',' || c == '=') return false;
  }
  return true;
}

/// How a UTF-8 sequence whose first byte is `lead` (not ASCII) goes on: how many continuation
/// bytes follow (0: `lead` cannot start a sequence) and the range allowed for the first of them,
/// which excludes overlong forms, surrogates and code points above U+10FFFF.
struct Utf8Lead {
  std::size_t need;
  unsigned char lo;
  unsigned char hi;
};
constexpr Utf8Lead utf8_lead(unsigned char lead) noexcept {
  if (lead >= 0xC2 && lead <= 0xDF) return {1, 0x80, 0xBF};
  if (lead >= 0xE0 && lead <= 0xEF) {
    return {2, static_cast<unsigned char>(lead == 0xE0 ? 0xA0 : 0x80),  // no overlong forms
            static_cast<unsigned char>(lead == 0xED ? 0x9F : 0xBF)};    // no surrogates
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    return {3, static_cast<unsigned char>(lead == 0xF0 ? 0x90 : 0x80),  // no overlong forms
            static_cast<unsigned char>(lead == 0xF4 ? 0x8F : 0xBF)};    // nothing above U+10FFFF
  }
  return {0, 0, 0};
}

/// Replaces every ill-formed UTF-8 sequence of `text` with U+FFFD, one replacement per maximal
/// ill-formed subpart (the Unicode "best practice", as WHATWG's decoder does). Overlong forms,
/// surrogates and code points above U+10FFFF are ill-formed. Well-formed input is unchanged.
inline void repair_utf8(std::string& text) {
  static constexpr std::string_view replacement = "\xEF\xBF\xBD";
  std::size_t i = 0;
  // Most values are ASCII: only copy when something must change.
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  if (i == text.size()) return;
  std::string out(text, 0, i);
  out.reserve(text.size() + 8);
  const std::size_t n = text.size();
  while (i < n) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      out.push_back(static_cast<char>(lead));
      ++i;
      continue;
    }
    const auto [need, lo, hi] = utf8_lead(lead);
    if (need == 0) {
      out.append(replacement);  // a stray continuation byte or an invalid lead byte
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    std::size_t got = 0;
    while (got < need && j < n) {
      const auto c = static_cast<unsigned char>(text[j]);
      const unsigned char first_lo = got == 0 ? lo : 0x80;
      const unsigned char first_hi = got == 0 ? hi : 0xBF;
      if (c < first_lo || c > first_hi) break;
      ++j;
      ++got;
    }
    if (got == need) {
      out.append(text, i, j - i);
    } else {
      out.append(replacement);  // the maximal subpart i..j is replaced once
    }
    i = j;
  }
  text = std::move(out);
}

/// Whether every `%` of `text` is followed by two hex digits (either case).
constexpr bool is_percent_encoded(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') continue;
    if (i + 2 >= text.size() || hex_value(text[i + 1]) < 0 || hex_value(text[i + 2]) < 0) {
      return false;
    }
    i += 2;
  }
  return true;
}

/// Decodes a baggage value whose escapes are valid (`is_percent_encoded`): `%XX` becomes its
/// byte, then every maximal ill-formed UTF-8 subpart of the result becomes U+FFFD, exactly as
/// `repair_utf8` would repair it. One pass and no buffer: `emit(byte)` receives the decoded
/// value byte by byte, so its size can be known without building it.
template <class Emit>
constexpr void decode_baggage_value(std::string_view text, Emit&& emit) {
  std::size_t i = 0;
  const auto peek = [&]() noexcept {
    if (text[i] != '%') return static_cast<unsigned char>(text[i]);
    return static_cast<unsigned char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
  };
  const auto advance = [&]() noexcept { i += text[i] == '%' ? 3 : 1; };
  const auto emit_replacement = [&] {
    emit(static_cast<unsigned char>(0xEF));
    emit(static_cast<unsigned char>(0xBF));
    emit(static_cast<unsigned char>(0xBD));
  };
  while (i < text.size()) {
    const unsigned char lead = peek();
    advance();
    if (lead < 0x80) {
      emit(lead);
      continue;
    }
    const auto [need, lo, hi] = utf8_lead(lead);  // the same classes as repair_utf8
    if (need == 0) {
      emit_replacement();
      continue;
    }
    unsigned char sequence[4] = {lead, 0, 0, 0};
    std::size_t got = 0;
    while (got < need && i < text.size()) {
      const unsigned char c = peek();
      if (c < (got == 0 ? lo : 0x80) || c > (got == 0 ? hi : 0xBF)) break;  // not consumed
      sequence[++got] = c;
      advance();
    }
    if (got == need) {
      for (std::size_t k = 0; k <= need; ++k) emit(sequence[k]);
    } else {
      emit_replacement();
    }
  }
}

/// The length of `text` decoded by `decode_baggage_value`.
constexpr std::size_t decoded_size(std::string_view text) noexcept {
  std::size_t size = 0;
  decode_baggage_value(text, [&size](unsigned char) noexcept { ++size; });
  return size;
}

/// The length `percent_encode` gives `text` decoded by `decode_baggage_value`: what the value
/// takes in a header ucm sends.
constexpr std::size_t decoded_encoded_size(std::string_view text) noexcept {
  std::size_t size = 0;
  decode_baggage_value(text, [&size](unsigned char byte) noexcept {
    const auto c = static_cast<char>(byte);
    size += (is_baggage_octet(c) && c != '%') ? 1 : 3;
  });
  return size;
}

/// Decodes the percent-encoding of a baggage value (`%XX`, either case of hex digit) into
/// `out`, then repairs ill-formed UTF-8 with U+FFFD as the Baggage spec requires. A `%` not
/// followed by two hex digits makes the value malformed: returns false (`out` is then empty).
inline bool percent_decode(std::string_view text, std::string& out) {
  out.clear();
  if (!is_percent_encoded(text)) return false;
  out.reserve(decoded_size(text));
  decode_baggage_value(text,
                       [&out](unsigned char byte) { out.push_back(static_cast<char>(byte)); });
  return true;
}

/// Appends `value` to `out` with every byte that is not a baggage-octet, and `%` itself,
/// percent-encoded as `%XX` (upper-case hex, as RFC 3986 recommends).
inline void percent_encode(std::string_view value, std::string& out) {
  for (const char c : value) {
    if (is_baggage_octet(c) && c != '%') {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(upper_hex_digits[byte >> 4]);
      out.push_back(upper_hex_digits[byte & 0x0F]);
    }
  }
}

/// The length `percent_encode(value, out)` appends.
constexpr std::size_t percent_encoded_size(std::string_view value) noexcept {
  std::size_t size = 0;
  for (const char c : value) size += (is_baggage_octet(c) && c != '%') ? 1 : 3;
  return size;
}

/// ASCII case-insensitive equality (header names).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// Calls `fn(piece)` for each comma-separated piece of the list that `pieces` form when joined
/// by `,` (the values of a repeated header, RFC 7230), OWS included (callers trim), without
/// joining them, until `fn` returns false. Returns whether it went through the whole list.
template <class F>
bool for_each_list_member(const std::string_view* pieces, std::size_t count, F&& fn) {
  for (std::size_t p = 0; p < count; ++p) {
    const std::string_view list = pieces[p];
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = list.find(',', start);
      if (comma == std::string_view::npos) {
        if (!fn(list.substr(start))) return false;
        break;
      }
      if (!fn(list.substr(start, comma - start))) return false;
      start = comma + 1;
    }
  }
  return true;
}

}  // namespace ucm::w3c::detail
