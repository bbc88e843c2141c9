// SPDX-License-Identifier: MIT
// fuzz/fuzz_check.hpp: the assertion the fuzz targets use for the properties they check
// beyond "no crash, no sanitizer report": it stops the run with a message and a trap, so
// libFuzzer saves the input.
#pragma once

#include <cstdio>
#include <cstdlib>

#define UCM_FUZZ_CHECK(condition)                                                        \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
