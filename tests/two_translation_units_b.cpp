// SPDX-License-Identifier: MIT
// Translation unit B: the header-only library must have exactly one set of per-thread slots per
// program, whatever translation unit reaches it.
#include <catch2/catch.hpp>

#include "shared_variable.hpp"

namespace ucm_test {
int read_in_b() { return shared_variable.value_or(-1); }
const void* slots_address_in_b() { return &ucm::detail::slots(); }
}  // namespace ucm_test

TEST_CASE("two translation units of one program share one set of thread slots", "[odr]") {
  CHECK(ucm_test::slots_address_in_a() == ucm_test::slots_address_in_b());
  CHECK(ucm_test::run_in_a_reading_b(17) == 17);
  CHECK(ucm_test::shared_variable.run(4, ucm_test::read_in_a) == 4);
  CHECK(ucm_test::read_in_a() == -1);
}
