// SPDX-License-Identifier: MIT
// The coroutine benchmarks' baseline: a plain lazy task with symmetric transfer and nothing else
// (cppcoro's shape), i.e. ucm::Task with propagation compiled out.
#pragma once

#include <coroutine>
#include <exception>
#include <utility>

namespace ucm_bench {

/// A lazy task: starts when awaited, resumes its awaiter by symmetric transfer when it ends.
template <class T>
class PlainTask {
 public:
  struct promise_type {
    std::coroutine_handle<> continuation;
    T value{};
    std::exception_ptr error;

    PlainTask get_return_object() noexcept {
      return PlainTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    void return_value(T v) noexcept { value = std::move(v); }
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };

  explicit PlainTask(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  PlainTask(PlainTask&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  PlainTask(const PlainTask&) = delete;
  PlainTask& operator=(const PlainTask&) = delete;
  PlainTask& operator=(PlainTask&&) = delete;
  ~PlainTask() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().continuation = awaiter;
    return handle_;
  }
  T await_resume() {
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
    return std::move(handle_.promise().value);
  }

  /// Runs a top-level task to completion on this thread (everything here is synchronous).
  T run() {
    handle_.promise().continuation = std::noop_coroutine();
    handle_.resume();
    return await_resume();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace ucm_bench
