// SPDX-License-Identifier: MIT
// The soak test's coroutine kit without ucm (tests/soak.hpp): a plain lazy task, an Asio
// completion token that resumes it, a one-shot event, a latch, a fire-and-forget starter and a
// when_all built from them. The soak server runs on this kit in its `--no-ucm` form (the ids
// passed explicitly: the baseline for instructions per request), and the soak client always does,
// so that the client never touches the context it checks. Nothing here includes ucm.
#pragma once

#include <asio.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "plain_task.hpp"

namespace ucm_soak {

// PlainTask<T>: lazy, symmetric transfer, exceptions to the awaiter (plain_task.hpp).
using ucm_test::PlainTask;

// =============================================================================================
// use_plain: an Asio completion token that resumes the awaiting coroutine from the handler
// =============================================================================================

/// The completion token type of `use_plain`.
struct use_plain_t {};
/// `co_await op(use_plain)`: initiates `op` when awaited and resumes the coroutine from the
/// completion handler, wherever Asio runs it; a leading error_code is thrown as system_error.
/// Asio never completes an operation inside its initiating function (it posts), so the handler
/// never runs inside `await_suspend`. No allocation of its own: the initiation, its arguments
/// and the results live in the awaiter, in the coroutine frame.
inline constexpr use_plain_t use_plain{};

namespace detail {

template <class... Args>
struct PlainCompletion {
  std::optional<std::tuple<std::decay_t<Args>...>> results;
  std::coroutine_handle<> continuation;
};

template <class... Args>
class PlainHandler {
 public:
  explicit PlainHandler(PlainCompletion<Args...>* completion) noexcept : completion_(completion) {}
  template <class... Actual>
  void operator()(Actual&&... args) {
    PlainCompletion<Args...>* const completion = completion_;
    completion->results.emplace(std::forward<Actual>(args)...);
    completion->continuation.resume();
  }

 private:
  PlainCompletion<Args...>* completion_;
};

template <class E, class... Args>
inline constexpr bool first_is = false;
template <class E, class First, class... Rest>
inline constexpr bool first_is<E, First, Rest...> = std::is_same_v<std::decay_t<First>, E>;

template <class Initiation, class Signature, class... InitArgs>
class PlainOperation;

template <class Initiation, class R, class... Args, class... InitArgs>
class [[nodiscard]] PlainOperation<Initiation, R(Args...), InitArgs...> {
  using Results = std::tuple<std::decay_t<Args>...>;
  static constexpr std::size_t skip = first_is<std::error_code, Args...> ? 1 : 0;

 public:
  template <class I, class... A>
  explicit PlainOperation(I&& initiation, A&&... args)
      : initiation_(std::forward<I>(initiation)), args_(std::forward<A>(args)...) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> continuation) {
    completion_.continuation = continuation;
    std::apply(
        [this](InitArgs&... a) {
          std::move(initiation_)(PlainHandler<Args...>(&completion_), std::move(a)...);
        },
        args_);
  }
  auto await_resume() {
    Results& results = *completion_.results;
    if constexpr (skip == 1) {
      if (const std::error_code ec = std::get<0>(results)) throw std::system_error(ec);
    }
    return values(results, std::make_index_sequence<sizeof...(Args) - skip>{});
  }

 private:
  template <std::size_t... I>
  static auto values(Results& results, std::index_sequence<I...>) {
    if constexpr (sizeof...(I) == 0) {
      return;
    } else {
      static_assert(sizeof...(I) == 1, "use_plain returns at most one value");
      return std::move(std::get<(skip + I)...>(results));
    }
  }

  Initiation initiation_;
  std::tuple<InitArgs...> args_;
  PlainCompletion<Args...> completion_;
};

}  // namespace detail

// =============================================================================================
// Event, Latch, spawn, when_all
// =============================================================================================

/// A one-shot event a coroutine awaits: `set` (from any thread, once) resumes it, or lets it
/// continue without suspending if it comes first; an exception passed to `set` is rethrown by
/// the `co_await`. The event lives in the awaiting coroutine's frame: `set` touches it only
/// before it resumes the coroutine.
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set(std::exception_ptr error = nullptr) noexcept {
    error_ = std::move(error);
    void* const waiter = state_.exchange(done_marker(), std::memory_order_acq_rel);
    if (waiter != nullptr) std::coroutine_handle<>::from_address(waiter).resume();
  }

  bool await_ready() const noexcept {
    return state_.load(std::memory_order_acquire) == done_marker();
  }
  bool await_suspend(std::coroutine_handle<> waiter) noexcept {
    void* expected = nullptr;
    // false: set() came first, the coroutine continues at once.
    return state_.compare_exchange_strong(expected, waiter.address(), std::memory_order_acq_rel,
                                          std::memory_order_acquire);
  }
  void await_resume() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  static void* done_marker() noexcept {
    static char marker;
    return &marker;
  }

  std::atomic<void*> state_{nullptr};
  std::exception_ptr error_;
};

/// Waits for `n` arrivals (from any threads); rethrows the exception of the lowest-numbered
/// arrival that brought one, as when_all does.
class Latch {
 public:
  explicit Latch(std::size_t n) : remaining_(n), errors_(n) {
    if (n == 0) event_.set();
  }

  void arrive(std::size_t index, std::exception_ptr error) noexcept {
    errors_[index] = std::move(error);
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) event_.set();
  }

  bool await_ready() const noexcept { return event_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> waiter) noexcept {
    return event_.await_suspend(waiter);
  }
  void await_resume() {
    event_.await_resume();
    for (std::exception_ptr& e : errors_) {
      if (e) std::rethrow_exception(e);
    }
  }

 private:
  std::atomic<std::size_t> remaining_;
  std::vector<std::exception_ptr> errors_;
  Event event_;
};

/// A fire-and-forget coroutine: starts at once, frees itself at its end.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

/// Starts `task` now (it runs until its first suspension on this thread) and calls
/// `done(exception_ptr)` when it has finished, wherever it finishes. Works for any lazy task
/// type a plain coroutine can await (a PlainTask, a ucm::Task).
template <class Task, class Done>
Detached spawn(Task task, Done done) {
  std::exception_ptr error;
  try {
    co_await std::move(task);
  } catch (...) {
    error = std::current_exception();
  }
  done(std::move(error));
}

/// Runs both tasks concurrently and completes when both have; rethrows the first exception in
/// argument order.
inline PlainTask<> plain_when_all(PlainTask<> a, PlainTask<> b) {
  Latch latch(2);
  spawn(std::move(a), [&latch](std::exception_ptr e) { latch.arrive(0, std::move(e)); });
  spawn(std::move(b), [&latch](std::exception_ptr e) { latch.arrive(1, std::move(e)); });
  co_await latch;
}

/// Every task of `tasks`, as above.
inline PlainTask<> plain_when_all(std::vector<PlainTask<>> tasks) {
  Latch latch(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    spawn(std::move(tasks[i]),
          [&latch, i](std::exception_ptr e) { latch.arrive(i, std::move(e)); });
  }
  co_await latch;
}

}  // namespace ucm_soak

namespace asio {

/// `op(ucm_soak::use_plain)` returns an awaitable that initiates `op` when awaited.
template <class R, class... Args>
class async_result<::ucm_soak::use_plain_t, R(Args...)> {
 public:
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& initiation, ::ucm_soak::use_plain_t, InitArgs&&... args) {
    return ::ucm_soak::detail::PlainOperation<std::decay_t<Initiation>, R(Args...),
                                              std::decay_t<InitArgs>...>(
        std::forward<Initiation>(initiation), std::forward<InitArgs>(args)...);
  }
};

}  // namespace asio
