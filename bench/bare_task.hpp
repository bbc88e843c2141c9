// SPDX-License-Identifier: MIT
// The coroutine benchmarks' second baseline: ucm::Task with propagation compiled out. Everything
// a ucm::Task does that is not about context, built from ucm's own parts: lazy start, the result
// as ucm's tagged union (detail::TaskResult), the checks for an empty task, and hand-offs through
// ucm's trampoline (detail/trampoline.hpp: symmetric transfer within a budget, else the thread's
// run queue), which bounds the stack where the compiler does not turn symmetric transfer into a
// tail call. No slots are swapped, no stash is passed, no return path is kept. The difference
// between a ucm::Task's `co_await` and this one's is what propagation costs; the difference
// between this one and tests/plain_task.hpp's is what the stack bound and the checks cost.
// A benchmark baseline only: awaited from another BareTask (not from a ucm::Task), results of
// object type, run() on a non-empty task.
#pragma once

#include <coroutine>
#include <stdexcept>
#include <utility>

#include "ucm/detail/task_promise.hpp"
#include "ucm/detail/trampoline.hpp"

namespace ucm_bench {

template <class T>
class BareTask {
 public:
  struct promise_type : ucm::detail::ReadyNode, ucm::detail::TaskResult<T> {
    ucm::detail::ReadyNode* continuation = nullptr;

    BareTask get_return_object() noexcept {
      const auto h = std::coroutine_handle<promise_type>::from_promise(*this);
      handle = h;
      return BareTask(h);
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        ucm::detail::ReadyNode* const next = h.promise().continuation;
        if (next == nullptr) return std::noop_coroutine();
        return ucm::detail::hand_off(ucm::detail::run_queue_after_resume(), next);
      }
      void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
  };

  explicit BareTask(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  BareTask(BareTask&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  BareTask(const BareTask&) = delete;
  BareTask& operator=(const BareTask&) = delete;
  BareTask& operator=(BareTask&&) = delete;
  ~BareTask() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return !handle_ || handle_.done(); }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiter) noexcept {
    handle_.promise().continuation = &awaiter.promise();
    ucm::detail::RunQueue& q = ucm::detail::run_queue_after_resume();
    if (ucm::detail::may_transfer(q)) return handle_;
    ucm::detail::schedule(q, &handle_.promise());
    return std::noop_coroutine();
  }
  decltype(auto) await_resume() {
    if (!handle_) throw std::logic_error("co_await of an empty BareTask");
    return std::move(handle_.promise()).result();
  }

  /// Runs a top-level task to completion on this thread, in a loop of its own (as sync_wait).
  T run() {
    ucm::detail::run_nested(&handle_.promise());
    return std::move(handle_.promise()).result();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

}  // namespace ucm_bench
