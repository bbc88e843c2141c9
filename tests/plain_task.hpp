// SPDX-License-Identifier: MIT
// PlainTask<T>: a lazy task with symmetric transfer and exceptions to the awaiter, nothing else
// (cppcoro's task), i.e. ucm::Task with propagation compiled out. The soak test's coroutine kit
// (soak_plain.hpp) and the coroutine benchmarks' baseline (bench/task_bench.cpp). Nothing here
// includes ucm.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace ucm_test {

template <class T = void>
class PlainTask;

namespace plain_detail {

struct PlainPromiseBase {
  // Set by whoever starts the task: its awaiter, or PlainTask::run.
  std::coroutine_handle<> continuation;
  std::exception_ptr error;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      return h.promise().continuation;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct PlainPromise : PlainPromiseBase {
  std::optional<T> value;
  PlainTask<T> get_return_object() noexcept;
  template <class V>
  void return_value(V&& v) {
    value.emplace(std::forward<V>(v));
  }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct PlainPromise<void> : PlainPromiseBase {
  PlainTask<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace plain_detail

/// A lazy task: starts when awaited, resumes its awaiter by symmetric transfer when it ends.
template <class T>
class [[nodiscard]] PlainTask {
 public:
  using promise_type = plain_detail::PlainPromise<T>;

  explicit PlainTask(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  PlainTask(PlainTask&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  PlainTask(const PlainTask&) = delete;
  PlainTask& operator=(const PlainTask&) = delete;
  PlainTask& operator=(PlainTask&&) = delete;
  ~PlainTask() {
    if (handle_) handle_.destroy();
  }

  struct Awaiter {
    std::coroutine_handle<promise_type> handle;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
      handle.promise().continuation = awaiter;
      return handle;
    }
    T await_resume() { return handle.promise().take(); }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }

  /// Runs a top-level task to completion on this thread; everything it awaits must complete
  /// synchronously (the benchmarks).
  T run() {
    handle_.promise().continuation = std::noop_coroutine();
    handle_.resume();
    return handle_.promise().take();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

namespace plain_detail {
template <class T>
PlainTask<T> PlainPromise<T>::get_return_object() noexcept {
  return PlainTask<T>(std::coroutine_handle<PlainPromise<T>>::from_promise(*this));
}
inline PlainTask<void> PlainPromise<void>::get_return_object() noexcept {
  return PlainTask<void>(std::coroutine_handle<PlainPromise<void>>::from_promise(*this));
}
}  // namespace plain_detail

}  // namespace ucm_test
