// SPDX-License-Identifier: MIT
// Translation unit A of the one-instance test (see two_translation_units_b.cpp).
#include "shared_variable.hpp"

namespace ucm_test {
int read_in_a() { return shared_variable.value_or(-1); }
int run_in_a_reading_b(int value) { return shared_variable.run(value, read_in_b); }
const void* slots_address_in_a() { return &ucm::detail::slots(); }
}  // namespace ucm_test
