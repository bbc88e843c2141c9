// SPDX-License-Identifier: MIT
// ucm/detail/task_promise.hpp: the promise behind ucm::Task and its own hand-off: how a child
// Task is started and finished by a ucm coroutine (the return path), how a Task ends, the
// transformation of every `co_await` in its body, the tagged union that holds a Task's result,
// and how a suspended Task is destroyed. Where a coroutine's slots live is
// detail/promise_base.hpp; the awaiters for foreign awaitables and coroutines are
// detail/foreign_await.hpp. Nothing here is public API; see ucm/task.hpp.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "ucm/detail/coroutine_slots.hpp"
#include "ucm/detail/foreign_await.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/promise_base.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/trampoline.hpp"
#include "ucm/frame.hpp"

namespace ucm {
template <class T>
class Task;
}  // namespace ucm

namespace ucm::detail {

template <class T>
class TaskPromise;

/// Reaches a Task's coroutine without making it public.
struct TaskAccess {
  template <class T>
  static std::coroutine_handle<TaskPromise<T>> handle(const Task<T>& task) noexcept {
    return task.handle_;
  }
};

/// Direct hand-off from a running parent to a child that runs next on this thread: the parent's
/// slots are kept in its promise, the thread's become the child's start (a call: the parent's,
/// owning nothing, in a window and chain of its own; see call_slots), and the stash stays where
/// it is.
inline void hand_to_child(Slots& s, PromiseBase& parent, PromiseBase& child) noexcept {
  copy_slots(parent.own_, s);
  s.owned = nullptr;
  s.returned = 0;
  s.window = &child;
  s.chain = unassigned_coroutine_chain;
}

/// Direct hand-off from a finished child back to its parent, which runs next on this thread: the
/// child's final `current` is left in the thread's `inherited` slot, for the return path the
/// parent runs as it resumes (TaskAwaiterBase::finish), the child keeps its final `owned` and
/// `returned` (its promise releases them), and the parent's slots are installed. If the child holds
/// the stash (it was the root of this run), the stash moves to the parent, since the child is about
/// to be destroyed; the parent's own is free, as it was suspended.
inline void hand_to_parent(ThreadRefs thread, PromiseBase& child, PromiseBase& parent) noexcept {
  Slots& s = thread.slots;
  s.inherited = s.current;
  child.own_.owned = s.owned;
  child.own_.returned = s.returned;
  // Only what the child's body may have changed for good; the merge view is the return path's.
  s.current = parent.own_.current;
  s.base = parent.own_.base;
  s.owned = parent.own_.owned;
  s.returned = parent.own_.returned;
  s.window = parent.own_.window;
  s.chain = parent.own_.chain;
  if (thread.queue.stash == &child.stash_) [[unlikely]] {
    copy_slots(parent.stash_.slots, child.stash_.slots);
    parent.stash_.outer = child.stash_.outer;
    thread.queue.stash = &parent.stash_;
  }
}

/// The last thing a Task does: give up its slots (the final ones stay in the promise for the
/// awaiter's return path) and hand control to the awaiter: directly when it is a ucm coroutine
/// and a symmetric transfer is allowed (see trampoline.hpp), else through the run queue.
struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <class P>
  [[gnu::always_inline]] std::coroutine_handle<> await_suspend(
      std::coroutine_handle<P> h) const noexcept {
    PromiseBase& c = h.promise();
    const ThreadRefs thread = thread_refs_after_resume();
    RunQueue& q = thread.queue;
    const std::uintptr_t continuation = c.continuation_;
    const auto kind = static_cast<Continuation>(continuation & continuation_kind_mask);
    if (kind == Continuation::parent) {  // tag 0: the word is the pointer
      auto& parent = static_cast<PromiseBase&>(*reinterpret_cast<ReadyNode*>(continuation));
      if (may_transfer(q)) [[likely]] {
        hand_to_parent(thread, c, parent);
        return parent.handle;
      }
      // Resumed from the queue, with its saved slots: the return path's frame goes there.
      parent.own_.inherited = thread.slots.current;
    }
    ReadyNode* next = reinterpret_cast<ReadyNode*>(continuation & ~continuation_kind_mask);
    c.leave(thread);
    // NOTE: once another branch may have finished (arrive), or the awaiter may run (hand_off),
    // this coroutine may be destroyed at any moment: nothing below touches `c`.
    if (kind == Continuation::branch) next = static_cast<BranchLatch*>(next)->arrive();
    if (next == nullptr) return std::noop_coroutine();
    return hand_off(q, next);
  }
  void await_resume() const noexcept {}
};

/// Starts a child Task from a ucm coroutine and finishes it: `co_await child` is a call.
template <class T>
class TaskAwaiterBase {
 public:
  using ucm_slot_aware = void;

  /// `parent`: the promise of the coroutine whose await_transform made this awaiter.
  TaskAwaiterBase(std::coroutine_handle<TaskPromise<T>> child, PromiseBase& parent) noexcept
      : child_(child), parent_(&parent) {}

  bool await_ready() const noexcept { return !child_ || child_.done(); }

  template <class P>
  [[gnu::always_inline]] std::coroutine_handle<> await_suspend(std::coroutine_handle<P>) noexcept {
    static_assert(std::is_base_of_v<PromiseBase, P>);
    PromiseBase& p = *parent_;
    PromiseBase& c = child_.promise();
    c.set_continuation(&p, Continuation::parent);
    const ThreadRefs thread = thread_refs_after_resume();
    Slots& s = thread.slots;
    RunQueue& q = thread.queue;
    if (may_transfer(q)) {
      hand_to_child(s, p, c);
      return child_;
    }
    // The budget is spent: the child starts from the queue.
    p.leave(thread);
    c.own_ = call_slots(p.own_, &c);
    schedule(q, &c);
    // NOTE: the child may have completed and resumed the parent already: nothing touches `this`.
    return std::noop_coroutine();
  }

 protected:
  /// The parent is back: its own slots again, and the return path: `inherited` becomes the
  /// child's final `current`, which the child's end left in that slot (or every branch's, after
  /// when_all), held by the innermost window open in the parent (see take_return). The child
  /// must not be empty. When it had completed before (await_ready), nothing ran and the slot
  /// holds the parent's own `inherited`, which stays (the merge view of an earlier when_all is
  /// dropped).
  [[gnu::always_inline]] void finish() noexcept {
    Slots& s = slots_after_resume();
    PromiseBase& c = child_.promise();
    if (MergeResult* merge = c.extras_.merge_out(); merge == nullptr) [[likely]] {
      take_return(s);
    } else {
      take_merge(s, std::move(*merge));
    }
  }

  TaskPromise<T>& child_promise() const {
    if (!child_) throw std::logic_error("ucm: co_await of an empty Task");
    return child_.promise();
  }

 private:
  std::coroutine_handle<TaskPromise<T>> child_;
  PromiseBase* parent_;
};

/// `co_await task` in a Task body: the result as a reference into the task (lvalue task) or by
/// value (rvalue task; it dies at the end of the full expression).
template <class T, bool Rvalue>
class TaskAwaiter : public TaskAwaiterBase<T> {
 public:
  using TaskAwaiterBase<T>::TaskAwaiterBase;
  decltype(auto) await_resume() {
    TaskPromise<T>& child = this->child_promise();  // throws for an empty Task
    this->finish();
    if constexpr (Rvalue) {
      return std::move(child).result();
    } else {
      return child.result();
    }
  }
};

/// Waits for a Task to complete without taking its result (sync_wait's helper): the result, or
/// the exception, stays in the task. The task must not be empty.
template <class T>
class CompletionAwaiter : public TaskAwaiterBase<T> {
 public:
  using TaskAwaiterBase<T>::TaskAwaiterBase;
  void await_resume() noexcept { this->finish(); }
};

/// What sync_wait's helper awaits: its await_transform makes the CompletionAwaiter, which needs
/// the helper's promise.
template <class T>
struct AwaitCompletion {
  using value_type = T;
  std::coroutine_handle<TaskPromise<T>> task;
};
template <class A>
inline constexpr bool is_await_completion_v = false;
template <class T>
inline constexpr bool is_await_completion_v<AwaitCompletion<T>> = true;

template <class A>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<Task<T>> = true;

/// What the promises of Tasks and of sync_wait's helper share: the initial awaiter and the
/// transformation of every `co_await` in the body.
class TaskPromiseBase : public PromiseBase {
 public:
  /// Lazy: whoever starts the coroutine installs the slots it starts with (see prepare_to_run).
  std::suspend_always initial_suspend() noexcept { return {}; }

  template <class A>
  decltype(auto) await_transform(A&& a) {
    using D = std::remove_cvref_t<A>;
    if constexpr (is_task_v<D>) {
      return TaskAwaiter<typename D::value_type, !std::is_lvalue_reference_v<A>>(
          TaskAccess::handle(a), *this);
    } else if constexpr (is_await_completion_v<D>) {
      return CompletionAwaiter<typename D::value_type>(a.task, *this);
    } else if constexpr (slot_aware<D>) {
      return AwaiterRef<D>{&a};
    } else if constexpr (is_propagated_v<D>) {
      using Inner = std::remove_reference_t<decltype(a.inner())>;
      if constexpr (slot_aware<Inner>) {
        return AwaiterRef<Inner>{&a.inner()};
      } else {
        return SlotAwaiter<Inner&>([&]() -> Inner& { return a.inner(); }, *this);
      }
    } else {
      return SlotAwaiter<awaiter_t<A>>(
          [&]() -> decltype(auto) { return get_awaiter(std::forward<A>(a)); }, *this);
    }
  }
};

/// The result of a Task: a tagged union of nothing yet, a value, or an exception.
template <class T>
class TaskResult {
 public:
  TaskResult() noexcept {}
  TaskResult(const TaskResult&) = delete;
  TaskResult& operator=(const TaskResult&) = delete;
  ~TaskResult() {
    if (state_ == State::value) {
      value_.~T();
    } else if (state_ == State::exception) {
      exception_.~exception_ptr();
    }
  }

  template <class V>
  requires std::convertible_to<V&&, T>
  void return_value(V&& value) noexcept(std::is_nothrow_constructible_v<T, V&&>) {
    ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<V>(value));
    state_ = State::value;
  }

  void unhandled_exception() noexcept {
    ::new (static_cast<void*>(std::addressof(exception_)))
        std::exception_ptr(std::current_exception());
    state_ = State::exception;
  }

  /// The value, for an lvalue task: a reference into this result. Rethrows the exception.
  T& result() & {
    rethrow_if_exception();
    return value_;
  }

  /// The value, for an rvalue task: moved out, by value (the task may die at the end of the
  /// awaiter's full expression). Rethrows the exception.
  T result() && {
    rethrow_if_exception();
    return std::move(value_);
  }

  void rethrow_if_exception() const {
    if (state_ == State::exception) std::rethrow_exception(exception_);
  }

 private:
  enum class State : unsigned char { empty, value, exception };
  State state_ = State::empty;
  union {
    T value_;
    std::exception_ptr exception_;
  };
};

/// A reference result: the same reference for lvalue and rvalue tasks.
template <class T>
class TaskResult<T&> {
 public:
  void return_value(T& value) noexcept { value_ = std::addressof(value); }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  T& result() const {
    rethrow_if_exception();
    return *value_;
  }
  void rethrow_if_exception() const {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  T* value_ = nullptr;
  std::exception_ptr exception_;
};

template <>
class TaskResult<void> {
 public:
  void return_void() noexcept {}
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  void result() const {
    if (exception_) std::rethrow_exception(exception_);
  }
  void rethrow_if_exception() const { result(); }

 private:
  std::exception_ptr exception_;
};

/// The promise of `ucm::Task<T>`.
template <class T>
class TaskPromise final : public TaskPromiseBase, public TaskResult<T> {
 public:
  // User-provided, so that value-initialising the promise does not zero it all first.
  TaskPromise() noexcept {}
  Task<T> get_return_object() noexcept {
    const auto h = std::coroutine_handle<TaskPromise>::from_promise(*this);
    handle = h;
    return Task<T>(h);
  }
  FinalAwaiter final_suspend() noexcept { return {}; }
  using TaskResult<T>::unhandled_exception;
};

/// Destroys a suspended Task's coroutine (never started, or waiting at a co_await): its locals'
/// destructors (its scopes) run inside its own slots, installed for the purpose; the destroying
/// thread's slots are left exactly as they were, and what `enter` set in the coroutine is
/// released.
[[gnu::noinline]] inline void destroy_suspended(std::coroutine_handle<> h,
                                                PromiseBase& p) noexcept {
  Slots& s = slots();  // a normal, non-inlined function: computed here, on this thread
  // A coroutine whose resumption waits in this thread's run queue must leave it.
  unlink_ready(run_queue(), &p);
  Slots saved;
  copy_slots(saved, s);
  copy_slots(s, p.own_);
  p.own_ = Slots{};  // now the thread's, for the locals' destructors
  // The foreign awaiter's helper, if any, holds the frames these slots borrow: it goes after the
  // restore, with the rest.
  PromiseExtras extras;
  extras.take(p.extras_);
  h.destroy();
  FrameData* const owned = s.owned;
  const Returned returned = s.returned;
  copy_slots(s, saved);
  // After the restore: the values' destructors see the destroying thread's context.
  release(owned);
  release_returned(returned);
  extras.clear();
}

/// Destroys a Task's coroutine: at once when it has finished or never started (no locals),
/// otherwise as above.
template <class P>
void destroy_coroutine(std::coroutine_handle<P> h) noexcept {
  PromiseBase& p = h.promise();
  if (h.done() || !p.started()) [[likely]] {
    h.destroy();
  } else {
    destroy_suspended(h, p);
  }
}

}  // namespace ucm::detail
