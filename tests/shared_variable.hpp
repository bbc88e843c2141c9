// SPDX-License-Identifier: MIT
// A variable and functions shared by two translation units of one test program.
#pragma once

#include "ucm/variable.hpp"

namespace ucm_test {
inline ucm::ContextVariable<int> shared_variable;
int read_in_a();
int read_in_b();
int run_in_a_reading_b(int value);
const void* slots_address_in_a();
const void* slots_address_in_b();
}  // namespace ucm_test
