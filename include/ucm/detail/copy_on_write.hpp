// SPDX-License-Identifier: MIT
// ucm/detail/copy_on_write.hpp: a value that many threads read without a lock while a few
// replace it, for registries (the manager's contexts). Nothing here is public API.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ucm::detail {

/// A `T` read without a lock and changed by copy on write: `update` copies the current value,
/// changes the copy and publishes it, so a reader sees the value before or after a change, never
/// one in progress. Writers are serialised by a mutex. A replaced value is freed once no reader
/// can still hold it.
///
///     CopyOnWrite<std::vector<int>> numbers;
///     numbers.update([](std::vector<int>& v) { v.push_back(1); });
///     const auto reader = numbers.read();   // *reader: the vector, valid while reader lives
template <class T>
class CopyOnWrite {
 public:
  // Readers take no lock: they announce themselves in `readers_`, then load the value. A writer
  // publishes a new value and frees retired ones only when it sees no reader after publishing
  // (seq_cst on both sides: a reader that arrives later loads the new value). Under a steady
  // stream of readers, retired values wait for the next write that sees none, or the destructor.
  class [[nodiscard]] Reader {
   public:
    explicit Reader(const CopyOnWrite& owner) noexcept : owner_(owner) {
      owner_.readers_.fetch_add(1, std::memory_order_seq_cst);
      value_ = owner_.current_.load(std::memory_order_seq_cst);
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() { owner_.readers_.fetch_sub(1, std::memory_order_release); }

    /// The value current when this reader was made, valid while it lives.
    const T& operator*() const noexcept { return *value_; }
    const T* operator->() const noexcept { return value_; }

   private:
    const CopyOnWrite& owner_;
    const T* value_;
  };

  CopyOnWrite() : current_(new T()) {}
  CopyOnWrite(const CopyOnWrite&) = delete;
  CopyOnWrite& operator=(const CopyOnWrite&) = delete;
  ~CopyOnWrite() {
    delete current_.load(std::memory_order_relaxed);
    for (const T* r : retired_) delete r;
  }

  /// A reader of the current value: no lock, two atomic read-modify-writes.
  Reader read() const noexcept { return Reader(*this); }

  /// Calls `change(copy)` on a copy of the current value, then publishes the copy. If `change`
  /// (or the copy) throws, nothing is published.
  template <class Change>
  void update(Change&& change) {
    const std::lock_guard lock(write_mutex_);
    const T* old = current_.load(std::memory_order_relaxed);
    auto next = std::make_unique<T>(*old);
    std::forward<Change>(change)(*next);
    retired_.reserve(retired_.size() + 1);
    current_.store(next.release(), std::memory_order_seq_cst);
    retired_.push_back(old);
    if (readers_.load(std::memory_order_seq_cst) == 0) {
      for (const T* r : retired_) delete r;
      retired_.clear();
    }
  }

 private:
  std::atomic<const T*> current_;
  mutable std::atomic<std::size_t> readers_{0};
  std::mutex write_mutex_;
  std::vector<const T*> retired_;
};

}  // namespace ucm::detail
