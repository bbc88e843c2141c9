// SPDX-License-Identifier: MIT
// Replaces the global allocation functions to count allocations per thread (see
// alloc_counter.hpp). Everything still goes to malloc/free.
#include "alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace ucm_test {
std::size_t& allocation_count() noexcept {
  static thread_local std::size_t count = 0;
  return count;
}
std::size_t& allocated_bytes() noexcept {
  static thread_local std::size_t bytes = 0;
  return bytes;
}
bool& counting_allocations() noexcept {
  static thread_local bool counting = false;
  return counting;
}
}  // namespace ucm_test

namespace {
void* allocate(std::size_t size, std::size_t alignment) {
  if (ucm_test::counting_allocations()) {
    ++ucm_test::allocation_count();
    ucm_test::allocated_bytes() += size;
  }
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return allocate(size, 1); }
void* operator new[](std::size_t size) { return allocate(size, 1); }
void* operator new(std::size_t size, std::align_val_t a) {
  return allocate(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return allocate(size, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
