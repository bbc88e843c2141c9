// SPDX-License-Identifier: MIT
// Helpers shared by ucm's tests: a value type that counts its live instances and copies, a
// misuse-report counter, and a failure log for expectations checked on other threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

/// Expectations checked where Catch2 v2 cannot be used (it is not thread-safe: other threads,
/// coroutines resumed there): each one that breaks is recorded, the first `kept` of them with
/// their text, and the main thread reports them all at once with CHECK_NO_FAILURES. Use
/// EXPECT(failures, condition), which records the condition's text and line.
class Failures {
 public:
  static constexpr std::size_t kept = 16;

  /// Records `what` (at `line`) unless `ok`. Returns `ok`. No lock when `ok`.
  bool check(bool ok, std::string_view what, int line) {
    if (ok) return true;
    const std::lock_guard lock(mutex_);
    if (++count_ <= kept) {
      messages_.push_back("line " + std::to_string(line) + ": expected " + std::string(what));
    }
    return false;
  }

  /// How many expectations broke.
  [[nodiscard]] std::size_t count() const {
    const std::lock_guard lock(mutex_);
    return count_;
  }

  /// Empty when none broke; otherwise how many did and the first `kept`, one a line.
  [[nodiscard]] std::string report() const {
    const std::lock_guard lock(mutex_);
    if (count_ == 0) return {};
    std::string out = std::to_string(count_) + " expectation(s) broke";
    if (count_ > messages_.size()) out += ", the first " + std::to_string(messages_.size());
    out += ":";
    for (const std::string& m : messages_) out += "\n  " + m;
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::size_t count_ = 0;
  std::vector<std::string> messages_;
};

}  // namespace ucm_test

/// Checks `condition` on any thread, recording it in the ucm_test::Failures `failures` if false.
#define EXPECT(failures, ...) \
  (failures).check(static_cast<bool>(__VA_ARGS__), #__VA_ARGS__, __LINE__)

/// On the main thread, in a Catch2 test case: no expectation recorded in `failures` broke. On
/// failure Catch2 prints the report (which ones, with their lines).
#define CHECK_NO_FAILURES(failures) CHECK((failures).report() == std::string())
