// SPDX-License-Identifier: MIT
// A tiny thread pool for the examples: a mutex-protected queue and N workers. It knows nothing of
// ucm; the examples hand it work through ucm::ContextFrame::bind, or move a ucm::Task onto it with
// `co_await pool.schedule()`.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace example {

class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& w : workers_) w.join();
  }
  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(task));
    }
    ready_.notify_one();
  }
  /// `co_await pool.schedule()` continues on a pool thread. Inside a ucm::Task the coroutine
  /// keeps its context; nothing here knows about ucm.
  auto schedule() {
    struct Awaiter {
      ThreadPool* pool;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) const {
        pool->post([h] { h.resume(); });
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{this};
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace example
