// SPDX-License-Identifier: MIT
// Helpers shared by ucm's tests: a value type that counts its live instances and copies.
#pragma once

#include <atomic>
#include <string>
#include <utility>

#include "ucm/misuse.hpp"

namespace ucm_test {

/// A value that counts live instances and copies, to prove values are released and never copied
/// by propagation.
struct Tracked {
  static inline std::atomic<int> live{0};
  static inline std::atomic<int> copies{0};
  std::string text;

  explicit Tracked(std::string t) : text(std::move(t)) { ++live; }
  Tracked(const Tracked& other) : text(other.text) {
    ++live;
    ++copies;
  }
  Tracked(Tracked&& other) noexcept : text(std::move(other.text)) { ++live; }
  Tracked& operator=(const Tracked&) = delete;
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() { --live; }
};

/// Counts misuse reports instead of aborting, while it lives.
struct MisuseCounter {
  static inline std::atomic<int> reports{0};
  static void count(const char*) noexcept { ++reports; }
  ucm::misuse_handler previous = ucm::set_misuse_handler(&count);
  MisuseCounter() { reports = 0; }
  MisuseCounter(const MisuseCounter&) = delete;
  MisuseCounter& operator=(const MisuseCounter&) = delete;
  ~MisuseCounter() { ucm::set_misuse_handler(previous); }
};

}  // namespace ucm_test
