// SPDX-License-Identifier: MIT
// fuzz/extract_fuzz.cpp: libFuzzer target for ucm::w3c::extract on a std::map carrier. The
// input is split at its first two newlines into traceparent, tracestate and baggage (a part
// is absent when the input has fewer lines). Besides memory safety it checks that what was
// extracted survives inject then extract unchanged (flags: the known ones), including a
// ContextVariable<int> riding in baggage through a codec.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "ucm/propagation/w3c.hpp"

namespace {
ucm::ContextVariable<int> shard;
const auto shard_codec = ucm::w3c::register_baggage_codec(shard, "shard");
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> headers;
  static constexpr const char* names[] = {"traceparent", "tracestate", "baggage"};
  for (const char* name : names) {
    if (input.empty()) break;
    const std::size_t newline = input.find('\n');
    headers[name] = std::string(input.substr(0, newline));
    input = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  }

  const ucm::ContextFrame frame = ucm::w3c::extract(ucm::ContextFrame{}, headers);
  std::map<std::string, std::string> sent;
  ucm::w3c::inject(frame, sent);
  const ucm::ContextFrame back = ucm::w3c::extract(ucm::ContextFrame{}, sent);

  const auto* context = frame.get(ucm::w3c::trace_context);
  const auto* context_back = back.get(ucm::w3c::trace_context);
  UCM_FUZZ_CHECK((context == nullptr) == (context_back == nullptr));
  if (context != nullptr) {
    UCM_FUZZ_CHECK(context_back->trace_id == context->trace_id);
    UCM_FUZZ_CHECK(context_back->parent_id == context->parent_id);
    UCM_FUZZ_CHECK(context_back->flags == (context->flags & ucm::w3c::TraceContext::known_flags));
    UCM_FUZZ_CHECK(context_back->state == context->state);
  }
  const auto* baggage = frame.get(ucm::w3c::baggage);
  const auto* baggage_back = back.get(ucm::w3c::baggage);
  UCM_FUZZ_CHECK((baggage == nullptr) == (baggage_back == nullptr));
  const int* value = frame.get(shard);
  const int* value_back = back.get(shard);
  UCM_FUZZ_CHECK((value == nullptr) == (value_back == nullptr));
  if (value != nullptr) UCM_FUZZ_CHECK(*value_back == *value);
  if (baggage != nullptr) {
    // The codec re-encodes the variable, so its member comes back in canonical form ("007"
    // is sent as "7"); everything else comes back as it was.
    ucm::w3c::Baggage expected = *baggage;
    if (value != nullptr) {
      expected.set("shard", std::to_string(*value), expected.find("shard")->properties);
    }
    UCM_FUZZ_CHECK(*baggage_back == expected);
  }
  return 0;
}
