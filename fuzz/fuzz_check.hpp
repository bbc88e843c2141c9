// SPDX-License-Identifier: MIT
// fuzz/fuzz_check.hpp: the assertion the fuzz targets use for the properties they check
// beyond "no crash, no sanitizer report": it stops the run with a message and a trap, so
// libFuzzer saves the input.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#define UCM_FUZZ_CHECK(condition)                                                        \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)

namespace ucm_fuzz {
/// `text` cut at every comma: the repeated headers a carrier would hold for it (joined by `,`,
/// they give `text` back).
inline std::vector<std::string_view> split_at_commas(std::string_view text) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  for (std::size_t comma = text.find(','); comma != std::string_view::npos;
       comma = text.find(',', start)) {
    pieces.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  pieces.push_back(text.substr(start));
  return pieces;
}
}  // namespace ucm_fuzz
