// SPDX-License-Identifier: MIT
// Counts this thread's calls to operator new while a CountAllocations object is alive.
#pragma once

#include <cstddef>

namespace ucm_test {

std::size_t& allocation_count() noexcept;
std::size_t& allocated_bytes() noexcept;
bool& counting_allocations() noexcept;

/// Counts the allocations made on this thread during its lifetime, and the bytes they asked
/// for (in total: what was freed since is not subtracted).
class CountAllocations {
 public:
  CountAllocations() noexcept {
    allocation_count() = 0;
    allocated_bytes() = 0;
    counting_allocations() = true;
  }
  ~CountAllocations() { counting_allocations() = false; }
  CountAllocations(const CountAllocations&) = delete;
  CountAllocations& operator=(const CountAllocations&) = delete;
  [[nodiscard]] std::size_t count() const noexcept { return allocation_count(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return allocated_bytes(); }
};

}  // namespace ucm_test
