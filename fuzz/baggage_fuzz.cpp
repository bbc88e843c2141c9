// SPDX-License-Identifier: MIT
// fuzz/baggage_fuzz.cpp: libFuzzer target for Baggage::parse. Besides memory safety it checks
// the parsed baggage's invariants (within the limits, unique token keys, values well-formed
// UTF-8), that it formats in full to a header that parses back to the same baggage, that the
// header cut at its commas into repeated headers extracts to the same baggage, and that the
// one-pass value decoder (which sizes members before anything is copied) agrees with decoding the
// bytes first and repairing the UTF-8 after.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "ucm/frame.hpp"
#include "ucm/propagation/w3c.hpp"

namespace {
bool well_formed_utf8(const std::string& text) {
  std::string copy = text;
  ucm::w3c::detail::repair_utf8(copy);
  return copy == text;
}
}  // namespace

/// The input as a baggage value, decoded the simple way: every escape, then the UTF-8 repair.
void check_value_decoding(std::string_view input) {
  namespace d = ucm::w3c::detail;
  if (!d::is_percent_encoded(input)) return;
  std::string reference;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (input[i] == '%') {
      reference.push_back(
          static_cast<char>(d::hex_value(input[i + 1]) * 16 + d::hex_value(input[i + 2])));
      i += 2;
    } else {
      reference.push_back(input[i]);
    }
  }
  d::repair_utf8(reference);
  std::string decoded;
  UCM_FUZZ_CHECK(d::percent_decode(input, decoded));
  UCM_FUZZ_CHECK(decoded == reference);
  UCM_FUZZ_CHECK(d::decoded_size(input) == reference.size());
  UCM_FUZZ_CHECK(d::decoded_encoded_size(input) == d::percent_encoded_size(reference));
}

/// The input cut at its commas into repeated baggage headers, as a multimap carrier holds them:
/// extract must read them as the one list they form.
void check_split(std::string_view input, const std::optional<ucm::w3c::Baggage>& whole) {
  std::multimap<std::string, std::string> carrier;
  for (const std::string_view piece : ucm_fuzz::split_at_commas(input)) {
    carrier.emplace("baggage", std::string(piece));
  }
  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame(), carrier);
  const ucm::w3c::Baggage* split = frame.get(ucm::w3c::baggage);
  if (!whole || whole->empty()) {
    UCM_FUZZ_CHECK(split == nullptr);
  } else {
    UCM_FUZZ_CHECK(split != nullptr && *split == *whole);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_value_decoding(input);
  const auto baggage = ucm::w3c::Baggage::parse(input);
  check_split(input, baggage);
  if (!baggage) return 0;
  UCM_FUZZ_CHECK(baggage->size() <= ucm::w3c::Baggage::max_members);
  std::set<std::string> keys;
  for (const auto& member : *baggage) {
    UCM_FUZZ_CHECK(ucm::w3c::Baggage::is_valid_key(member.key));
    UCM_FUZZ_CHECK(keys.insert(member.key).second);
    UCM_FUZZ_CHECK(well_formed_utf8(member.value));
  }
  const std::string header = baggage->to_header();
  UCM_FUZZ_CHECK(header.size() <= ucm::w3c::Baggage::max_bytes);
  const auto again = ucm::w3c::Baggage::parse(header);
  UCM_FUZZ_CHECK(again.has_value());
  UCM_FUZZ_CHECK(*again == *baggage);
  return 0;
}
