// SPDX-License-Identifier: MIT
// fuzz/baggage_fuzz.cpp: libFuzzer target for Baggage::parse. Besides memory safety it checks
// the parsed baggage's invariants (within the limits, unique token keys, values well-formed
// UTF-8) and that it formats in full to a header that parses back to the same baggage.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "ucm/propagation/w3c.hpp"

namespace {
bool well_formed_utf8(const std::string& text) {
  std::string copy = text;
  ucm::w3c::detail::repair_utf8(copy);
  return copy == text;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto baggage = ucm::w3c::Baggage::parse(input);
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
