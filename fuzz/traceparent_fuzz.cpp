// SPDX-License-Identifier: MIT
// fuzz/traceparent_fuzz.cpp: libFuzzer target for TraceContext::parse (traceparent). Besides
// memory safety it checks that whatever parses is valid and formats to a header that parses
// back to the same ids and the known flags, and that the input cut at its commas (repeated
// headers, which extract reads without joining them) parses the same.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "ucm/propagation/w3c.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto context = ucm::w3c::TraceContext::parse(input);
  const std::vector<std::string_view> pieces = ucm_fuzz::split_at_commas(input);
  UCM_FUZZ_CHECK(ucm::w3c::detail::HeaderLists::traceparent(pieces.data(), pieces.size()) ==
                 context);
  if (!context) return 0;
  UCM_FUZZ_CHECK(context->is_valid());
  UCM_FUZZ_CHECK(context->state.empty());
  const std::string header = context->traceparent();
  UCM_FUZZ_CHECK(header.size() == 55);
  const auto again = ucm::w3c::TraceContext::parse(header);
  UCM_FUZZ_CHECK(again.has_value());
  UCM_FUZZ_CHECK(again->trace_id == context->trace_id);
  UCM_FUZZ_CHECK(again->parent_id == context->parent_id);
  UCM_FUZZ_CHECK(again->flags == (context->flags & ucm::w3c::TraceContext::known_flags));
  UCM_FUZZ_CHECK(again->traceparent() == header);
  return 0;
}
