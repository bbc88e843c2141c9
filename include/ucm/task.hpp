// SPDX-License-Identifier: MIT
// ucm/task.hpp: coroutines that carry their context. ucm::Task<T> (lazy, like cppcoro's task),
// ucm::sync_wait, ucm::when_all (variadic and over a vector) and ucm::propagate for foreign
// awaitables and coroutine types.
//
// How a Task carries its context
// ------------------------------
// Every Task coroutine has slots of its own (current, inherited, base, what its `enter`s and
// return paths made, the merge view, its innermost window), kept in its promise while it is not
// running. When it gets
// control the thread's slots are stashed and the coroutine's installed; when it gives up control
// (any suspension, or its end) they are saved and the stash restored (detail/promise_base.hpp).
// Those are a few word copies, with no allocation, no lock and no reference-count traffic. So:
//   - whatever thread resumes a Task, the Task sees its own values, and a ContextVariableScope
//     spanning a `co_await` is still correct after it;
//   - the resuming thread gets its own slots back as soon as the Task suspends again or ends;
//   - `enter` in a Task body lasts until the Task completes, and never leaks into the thread
//     that resumed it or into the awaiter.
//
// `co_await child` is a call: the child starts with the awaiter's current, base and inherited
// (values active in the parent are active in the child: child-of). When it completes, the parent
// has its own current and base again and `inherited` is the child's final frame (the return
// path, RFC "Coroutines are internally synchronized"): `get_inherited()` sees what the child set
// (follows-from), `get_active()` still the parent's own values; `get()` never shows the child's.
// After `co_await when_all(...)`, `ContextFrame::inherited_all()` holds every branch's final frame
// in argument order and `inherited()` the first. This lasts until the parent's next `co_await` of
// a Task or when_all, or its end, or the end of the window (a scope, `var.run`) in which the
// `co_await` happened: that window owns the return path and restores the `inherited` it saved.
//
// The stack never grows
// ---------------------
// Control passes between Tasks by symmetric transfer only within a budget, and otherwise through
// a per-thread run queue (a trampoline, detail/trampoline.hpp): the awaiter appends the next
// coroutine and returns to the loop that resumed it. Symmetric transfer alone is only free when
// the compiler turns it into a tail call, which g++ does not do at -O1 with AddressSanitizer; with
// the budget and the queue, 20,000 nested co_awaits take a bounded amount of stack on every
// compiler. The loop is run by the outermost resumer on each thread: sync_wait, or the first ucm
// awaiter in a coroutine that a foreign resumer (a thread pool, an I/O loop) resumed directly. A
// consequence to know: a Task made ready while a loop runs on the thread may start once the
// current coroutine gives up control, not inside the call that made it ready.
#pragma once

#include <array>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ucm/detail/coroutine_slots.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/task_promise.hpp"
#include "ucm/detail/trampoline.hpp"
#include "ucm/frame.hpp"

namespace ucm {

/// A lazy coroutine that carries its own context (see the top of this header): nothing runs, and
/// nothing is captured, until it is awaited (`co_await`, `when_all`, `sync_wait`); it then starts
/// from the awaiter's context, as a call. Its result (`T`, `T&` or `void`) or exception is
/// delivered to the awaiter, with the awaiter's own context restored and the child's final frame
/// as `inherited` (the return path).
///
///     ucm::Task<int> child() { span.enter("child"); co_return 42; }
///     ucm::Task<> parent() {
///       int x = co_await child();       // child-of: child sees the parent's values
///       use(span.get_inherited());      // "child": follows-from, until the next co_await child
///     }
///
/// Move-only. A Task is awaited once. Cost: one coroutine frame (allocated by the compiler,
/// elided when it can prove the frame's lifetime); a `co_await` of a Task copies the parent's
/// slots (six words) out and back, and takes a reference only when the child's final frame is
/// new to the parent (the return path). Destroying a Task that is suspended (never started, or
/// waiting; whatever it waits on must then never resume it) runs its locals' destructors in its
/// own context, leaving the destroying thread's slots untouched.
/// Inside a Task, every `co_await` of a foreign awaitable propagates the context automatically
/// (as `ucm::propagate` does elsewhere). A Task can also be awaited from a coroutine type that
/// knows nothing of ucm; that coroutine then gets its context back as with `ucm::propagate`.
template <class T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  /// An empty task; awaiting it throws std::logic_error.
  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  /// Whether awaiting would not suspend: the task is empty or has completed.
  [[nodiscard]] bool is_ready() const noexcept { return !handle_ || handle_.done(); }

  /// Whether this task holds a coroutine.
  [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(handle_); }

  /// For coroutines that are not ucm Tasks (inside a Task, the promise's await_transform is used
  /// instead): the result as a reference into this task.
  auto operator co_await() & noexcept { return detail::ForeignTaskAwaiter<T, false>(handle_); }
  /// As above, the result moved out (by value).
  auto operator co_await() && noexcept { return detail::ForeignTaskAwaiter<T, true>(handle_); }

 private:
  friend class detail::TaskPromise<T>;
  friend struct detail::TaskAccess;

  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}

  void reset() noexcept {
    if (handle_) detail::destroy_coroutine(std::exchange(handle_, nullptr));
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

/// How sync_wait's thread learns that a task finished, possibly on another thread.
class SyncWaitEvent {
 public:
  void set() noexcept {
    // Notify under the lock: once it is released the waiter may return and destroy this event,
    // and nothing touches it after that.
    std::lock_guard lock(mutex_);
    done_ = true;
    ready_.notify_one();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [this] { return done_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  bool done_ = false;
};

class SyncWaitPromise;

/// sync_wait's helper coroutine: awaits the task like a Task would (so the task starts from the
/// caller's context as a call) and signals the caller at its end.
struct SyncWaitHelper {
  using promise_type = SyncWaitPromise;
  std::coroutine_handle<SyncWaitPromise> handle;
  explicit SyncWaitHelper(std::coroutine_handle<SyncWaitPromise> h) noexcept : handle(h) {}
  SyncWaitHelper(SyncWaitHelper&& other) noexcept : handle(std::exchange(other.handle, nullptr)) {}
  SyncWaitHelper& operator=(SyncWaitHelper&&) = delete;
  ~SyncWaitHelper();
};

class SyncWaitPromise final : public TaskPromiseBase {
 public:
  SyncWaitPromise() noexcept {}
  SyncWaitHelper get_return_object() noexcept {
    const auto h = std::coroutine_handle<SyncWaitPromise>::from_promise(*this);
    handle = h;
    return SyncWaitHelper(h);
  }

  struct SignalAwaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<SyncWaitPromise> h) const noexcept {
      SyncWaitPromise& p = h.promise();
      p.leave(thread_refs_after_resume());  // the thread that finishes gets its slots back
      SyncWaitEvent* const event = p.event_;
      event->set();  // NOTE: the caller may now destroy this coroutine: nothing touches it below
    }
    void await_resume() const noexcept {}
  };
  SignalAwaiter final_suspend() noexcept { return {}; }
  void return_void() noexcept {}
  [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }  // the body cannot throw

  SyncWaitEvent* event_ = nullptr;
};

inline SyncWaitHelper::~SyncWaitHelper() {
  if (handle) handle.destroy();
}

template <class T>
SyncWaitHelper make_sync_wait_helper(std::coroutine_handle<TaskPromise<T>> task) {
  co_await AwaitCompletion<T>{task};
}

template <class T>
using when_all_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
using when_all_range_t = std::conditional_t<
    std::is_void_v<T>, void,
    std::conditional_t<std::is_reference_v<T>,
                       std::vector<std::reference_wrapper<std::remove_reference_t<T>>>,
                       std::vector<T>>>;

/// The co_await inside when_all's own coroutine: starts every branch from the when_all's slots
/// (each branch is a call, child-of the awaiter), resumes the when_all once the last branch has
/// finished, wherever that happens, and leaves every branch's final frame for the awaiter.
class WhenAllAwaiter {
 public:
  using ucm_slot_aware = void;

  WhenAllAwaiter(PromiseBase* const* branches, std::size_t count) noexcept
      : branches_(branches), count_(count) {}

  bool await_ready() const noexcept { return count_ == 0; }

  template <class P>
  void await_suspend(std::coroutine_handle<P> self) noexcept {
    PromiseBase& w = self.promise();
    self_ = &w;
    w.leave(thread_refs_after_resume());
    // Relaxed: the branches start after this on this thread, or on another thread through the
    // hand-off that moved them there.
    latch_.pending.store(count_, std::memory_order_relaxed);
    latch_.whole = &w;
    RunQueue& q = run_queue_after_resume();
    // Every branch is queued before any runs, so none can finish before all are started.
    for (std::size_t i = 0; i < count_; ++i) {
      PromiseBase& b = *branches_[i];
      b.own_ = call_slots(w.own_, &b);
      b.set_continuation(&latch_, Continuation::branch);
      push_ready(q, &b);
    }
    if (!q.running) run_ready(q);
    // NOTE: the branches may all have finished and resumed the when_all: no access to `this`.
  }

  /// Back in the when_all: its own slots, and every branch's final frame (one increment each,
  /// one allocation for the array) handed to the awaiter, also when a branch threw.
  void await_resume() {
    if (self_ == nullptr) return;
    MergeResult merge(count_);
    for (std::size_t i = 0; i < count_; ++i) {
      merge[i] = FrameAccess::borrow(branches_[i]->own_.current);
    }
    self_->extras_.set_merge_out(std::move(merge));
  }

 private:
  PromiseBase* const* branches_;
  std::size_t count_;
  PromiseBase* self_ = nullptr;
  BranchLatch latch_;
};

template <class T>
PromiseBase* when_all_branch(const Task<T>& task) {
  if (!task) throw std::logic_error("ucm: when_all of an empty Task");
  return &TaskAccess::handle(task).promise();
}

template <class T>
decltype(auto) take_when_all_result(Task<T>& task) {
  auto& promise = TaskAccess::handle(task).promise();
  if constexpr (std::is_void_v<T>) {
    promise.result();
    return std::monostate{};
  } else {
    return std::move(promise).result();
  }
}

}  // namespace detail

/// Runs `task` to completion and returns its result (or rethrows its exception), blocking the
/// calling thread until it completes, on whatever thread it completes. The task starts from the
/// caller's context, as a call; the caller's slots are exactly as they were when this returns.
/// May be called inside a coroutine (it blocks that thread). Allocates sync_wait's helper
/// coroutine, a mutex and a condition variable.
///
///     int n = ucm::sync_wait(count_users());
template <class T>
T sync_wait(Task<T> task) {
  if (!task) throw std::logic_error("ucm: sync_wait of an empty Task");
  const auto handle = detail::TaskAccess::handle(task);
  detail::SyncWaitEvent done;
  {
    detail::SyncWaitHelper helper = detail::make_sync_wait_helper<T>(handle);
    helper.handle.promise().event_ = &done;
    // Borrowed pointers are safe: this thread blocks until the task completes.
    helper.handle.promise().own_ =
        detail::call_slots(detail::slots_after_resume(), &helper.handle.promise());
    detail::run_nested(&helper.handle.promise());
    done.wait();
  }
  return std::move(handle.promise()).result();
}

/// A Task that runs every task concurrently (each starts from the awaiter's context, as a call;
/// those that suspend let the next start) and completes when all have completed, with a
/// std::tuple of their results in argument order (`void` gives std::monostate, `T&` a reference).
/// Waits for every branch even if one throws, then rethrows the first exception in argument
/// order. Afterwards the awaiter's `ContextFrame::inherited_all()` holds every branch's final
/// frame in argument order, and `inherited()` (so `get_inherited()`) the
/// first branch's, also when a branch threw. Lazy, like every Task. Allocates its coroutine frame
/// and the array of final frames.
///
///     auto [user, orders] = co_await ucm::when_all(load_user(id), load_orders(id));
template <class... Ts>
Task<std::tuple<detail::when_all_value_t<Ts>...>> when_all(Task<Ts>... tasks) {
  const std::array<detail::PromiseBase*, sizeof...(Ts)> branches{detail::when_all_branch(tasks)...};
  detail::WhenAllAwaiter all(branches.data(), branches.size());
  co_await all;
  (detail::TaskAccess::handle(tasks).promise().rethrow_if_exception(), ...);
  co_return std::tuple<detail::when_all_value_t<Ts>...>(detail::take_when_all_result(tasks)...);
}

/// The range form: every task of `tasks`, as above. Returns a std::vector of the results in
/// order (`T&` gives std::reference_wrapper<T>); a vector of `Task<void>` gives `Task<void>`.
/// An empty vector completes at once and leaves `inherited` the awaiter's current frame.
template <class T>
Task<detail::when_all_range_t<T>> when_all(std::vector<Task<T>> tasks) {
  std::vector<detail::PromiseBase*> branches;
  branches.reserve(tasks.size());
  for (const Task<T>& task : tasks) branches.push_back(detail::when_all_branch(task));
  detail::WhenAllAwaiter all(branches.data(), branches.size());
  co_await all;
  for (const Task<T>& task : tasks)
    detail::TaskAccess::handle(task).promise().rethrow_if_exception();
  if constexpr (std::is_void_v<T>) {
    co_return;
  } else {
    detail::when_all_range_t<T> results;
    results.reserve(tasks.size());
    for (Task<T>& task : tasks) results.emplace_back(detail::take_when_all_result(task));
    co_return results;
  }
}

/// Makes a foreign awaitable (one that may resume the coroutine on another thread: a thread-pool
/// hop, an I/O operation) keep the awaiting coroutine's context, in any coroutine type, including
/// users' own coroutine types that know nothing of ucm:
///
///     co_await ucm::propagate(pool.schedule());   // same values after the hop
///
/// The context (current, inherited, base; up to three reference increments) is captured when the
/// coroutine suspends, and the awaitable is handed the handle of a small resumption helper (one
/// small allocation) instead of the coroutine's own: whichever thread resumes it installs the
/// captured context around the coroutine's run and gets its own slots back once the coroutine
/// suspends again or ends. If the awaitable does not suspend, nothing is captured. Inside a
/// ucm::Task every co_await already does this (and `propagate` is unwrapped for free).
///
/// What a foreign coroutine cannot have: slots of its own. While it runs its context is the
/// thread's, so values it reads, and `enter`s it makes, carry across each propagated co_await
/// (the capture holds them), but a ContextVariableScope cannot span a co_await that suspends:
/// when the coroutine suspends, the scope is still open on the thread that ran it (that thread's
/// own windows then close out of order), and once resumed the coroutine runs in a chain of
/// windows of its own, so the scope closes as misuse and restores nothing (the frames it saved may
/// be gone). Close scopes before each co_await, or write the coroutine as a ucm::Task, which has
/// its own slots. (This is the limit the contract states for Asio's own
/// `asio::awaitable` coroutines, for the same reason.) Lvalue awaitables are kept by reference.
template <class A>
[[nodiscard]] auto propagate(A&& awaitable) {
  using Awaiter = detail::awaiter_t<A>;
  // An awaitable that is its own awaiter and a temporary is moved in, so the result can outlive
  // the full expression; otherwise the awaiter (a value) or the lvalue awaitable is kept.
  using Stored = std::conditional_t<std::is_rvalue_reference_v<Awaiter>,
                                    std::remove_reference_t<Awaiter>, Awaiter>;
  return detail::Propagated<Stored>(
      [&]() -> decltype(auto) { return detail::get_awaiter(std::forward<A>(awaitable)); });
}

/// A Task already propagates: `propagate(task)` is the task itself.
template <class T>
[[nodiscard]] Task<T>&& propagate(Task<T>&& task) noexcept {
  return std::move(task);
}
/// As above, for an lvalue task.
template <class T>
[[nodiscard]] Task<T>& propagate(Task<T>& task) noexcept {
  return task;
}

}  // namespace ucm
