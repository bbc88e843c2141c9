// SPDX-License-Identifier: MIT
// Coroutine helpers shared by ucm's tests: a foreign awaitable that resumes on a pool thread, and
// a user's own coroutine type that knows nothing of ucm.
#pragma once

#include <coroutine>
#include <exception>
#include <utility>

#include "thread_pool.hpp"

namespace ucm_test {

/// A tiny scheduler: resumes the awaiting coroutine on a pool thread.
struct Hop {
  ThreadPool* pool;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    pool->post([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

/// Suspends and keeps the handle, for the test to resume or destroy its coroutine.
struct Parked {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

/// A user's own coroutine type that knows nothing of ucm: starts eagerly, keeps its frame at the
/// end so the test can destroy it.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept {
      return Detached{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
  Detached(const Detached&) = delete;
  Detached& operator=(const Detached&) = delete;
  Detached(Detached&& other) noexcept : handle(std::exchange(other.handle, nullptr)) {}
  explicit Detached(std::coroutine_handle<promise_type> h) noexcept : handle(h) {}
  ~Detached() {
    if (handle) handle.destroy();
  }
};

}  // namespace ucm_test
