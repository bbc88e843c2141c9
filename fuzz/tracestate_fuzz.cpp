// SPDX-License-Identifier: MIT
// fuzz/tracestate_fuzz.cpp: libFuzzer target for TraceState::parse. Besides memory safety it
// checks the parsed list's invariants (at most 32 members, valid unique keys, valid values)
// and that it formats to a header that parses back to the same list, and that the input cut
// at its commas (repeated headers, which extract reads without joining them) parses the same.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "ucm/propagation/w3c.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto state = ucm::w3c::TraceState::parse(input);
  const std::vector<std::string_view> pieces = ucm_fuzz::split_at_commas(input);
  UCM_FUZZ_CHECK(ucm::w3c::detail::HeaderLists::tracestate(pieces.data(), pieces.size()) == state);
  if (!state) return 0;
  UCM_FUZZ_CHECK(state->size() <= ucm::w3c::TraceState::max_members);
  std::set<std::string> keys;
  for (const auto& member : *state) {
    UCM_FUZZ_CHECK(ucm::w3c::TraceState::is_valid_key(member.key));
    UCM_FUZZ_CHECK(ucm::w3c::TraceState::is_valid_value(member.value));
    UCM_FUZZ_CHECK(keys.insert(member.key).second);
  }
  const auto again = ucm::w3c::TraceState::parse(state->to_header());
  UCM_FUZZ_CHECK(again.has_value());
  UCM_FUZZ_CHECK(*again == *state);
  return 0;
}
