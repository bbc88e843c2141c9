// SPDX-License-Identifier: MIT
// ucm/detail/foreign_await.hpp: the awaiters between ucm and coroutine machinery that knows
// nothing of it. A foreign awaitable in a Task body (SlotAwaiter: the Task's slots out before the
// awaitable gets its handle, back in on resumption; its `await_suspend` in the Task's context), a
// Task awaited by a coroutine that is not a ucm Task (ForeignTaskAwaiter), and `ucm::propagate`'s
// awaiter for such coroutines (Propagated), the last two resumed through a resumption helper
// (detail/coroutine_slots.hpp). Nothing here is public API; see ucm/task.hpp.
#pragma once

#include <coroutine>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "ucm/detail/coroutine_slots.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/promise_base.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/trampoline.hpp"
#include "ucm/frame.hpp"

namespace ucm::detail {

template <class T>
class TaskPromise;

/// Awaiters the promise passes through as they are: they install and leave the slots themselves.
template <class A>
concept slot_aware = requires {
  typename A::ucm_slot_aware;
};

/// The awaiter `co_await a` uses: `a.operator co_await()`, `operator co_await(a)`, or `a` itself.
template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

template <class A>
using awaiter_t = decltype(get_awaiter(std::declval<A>()));

/// Where a foreign awaiter's `await_suspend` runs: the Task's context, as a continuation window of
/// the Task's frames on this thread (a foreign lazy coroutine started there sees the Task's values,
/// and whatever it `enter`s stays in this window, never reaching the resumer's slots). The Task
/// has already given up its slots, since the awaiter may resume it on another thread at once; it
/// may then close the windows that own these frames while `await_suspend` still runs here, so the
/// window counts its own references (the merge view, owned by the Task, is not shown).
class AwaitSuspendWindow {
 public:
  AwaitSuspendWindow(Slots& thread, const Slots& task) noexcept
      : slots_(thread),
        current_(FrameAccess::borrow(task.current)),
        // Each distinct frame counted once (they are often the same).
        inherited_(task.inherited == task.current ? ContextFrame()
                                                  : FrameAccess::borrow(task.inherited)),
        base_(task.base == task.current || task.base == task.inherited
                  ? ContextFrame()
                  : FrameAccess::borrow(task.base)) {
    open_continuation(slots_, saved_, task.current);
    slots_.inherited = task.inherited;
    slots_.base = task.base;
  }
  AwaitSuspendWindow(const AwaitSuspendWindow&) = delete;
  AwaitSuspendWindow& operator=(const AwaitSuspendWindow&) = delete;
  ~AwaitSuspendWindow() { close_window(slots_, saved_, nullptr, nullptr); }

 private:
  Slots& slots_;
  ContextFrame current_;
  ContextFrame inherited_;
  ContextFrame base_;
  SavedSlots saved_;
};

/// Wraps every foreign awaiter in a Task body (`await_transform`): swaps the Task's slots out
/// before handing its handle to the awaitable (which may resume it on another thread at once),
/// and back in when the coroutine continues, if it was suspended at all. `ucm::propagate` inside a
/// Task is this, too.
template <class Awaiter>
class SlotAwaiter {
 public:
  template <class Make>
  SlotAwaiter(Make&& make, PromiseBase& promise)
      : inner_(std::forward<Make>(make)()), promise_(&promise) {}

  bool await_ready() { return static_cast<bool>(inner_.await_ready()); }

  // The inner awaiter gets a type-erased handle: it must not take this Task for one whose slots
  // it may handle itself (a slot-aware awaiter wrapped in a user's), as they are left here.
  template <class P>
  auto await_suspend(std::coroutine_handle<P> typed) {
    const std::coroutine_handle<> h = typed;
    // Set before the hand-off: await_resume runs whenever the coroutine continues (also when
    // await_suspend returns false or the coroutine's own handle), and nothing may be written to
    // this awaiter once the handle is handed off.
    suspended_ = true;
    const ThreadRefs thread = thread_refs_after_resume();
    promise_->leave(thread);
    using Result = decltype(inner_.await_suspend(h));
    try {
      // In the Task's context (see AwaitSuspendWindow), not in the resumer's that `leave` put back.
      const AwaitSuspendWindow window(thread.slots, promise_->own_);
      if constexpr (std::is_void_v<Result> || std::is_same_v<Result, bool>) {
        return inner_.await_suspend(h);
      } else {
        // A coroutine the awaiter hands control to (a lazy task it starts, cppcoro-style) runs
        // here, inside the window, rather than after it closed: in the Task's context. The Task
        // itself may be resumed from in there (a lazy task's end transferring to it); it then
        // runs nested, from this window's slots, and nothing below touches `this`.
        const std::coroutine_handle<> next = inner_.await_suspend(h);
        if (next == h) return next;
        next.resume();
        return std::coroutine_handle<>(std::noop_coroutine());
      }
    } catch (...) {
      // The coroutine resumes with the exception and await_resume is not called.
      promise_->enter_root(thread_refs_after_resume());
      throw;
    }
  }

  decltype(auto) await_resume() {
    if (suspended_) promise_->enter_root(thread_refs_after_resume());
    return inner_.await_resume();
  }

 private:
  Awaiter inner_;  // a reference when the awaitable is its own awaiter
  PromiseBase* promise_;
  bool suspended_ = false;
};

/// `co_await task` in a coroutine that is not a ucm Task (a user's own coroutine type): the same
/// as `ucm::propagate`. The context is captured (counted) at the co_await; the child starts from
/// it; the coroutine is resumed through a helper that installs it again, with the child's final
/// frame as `inherited`, until the coroutine next suspends.
template <class T, bool Rvalue>
class ForeignTaskAwaiter {
 public:
  explicit ForeignTaskAwaiter(std::coroutine_handle<TaskPromise<T>> child) noexcept
      : child_(child) {}

  bool await_ready() const noexcept { return !child_ || child_.done(); }

  void await_suspend(std::coroutine_handle<> coroutine) {
    // May throw (allocation): then nothing was started and the coroutine resumes with it.
    const ResumeHelper helper = make_resume_helper();
    PromiseBase& c = child_.promise();
    std::coroutine_handle<>* kept = nullptr;
    try {
      kept = c.extras_.keep_helper(helper.handle, &helper.handle.promise());
    } catch (...) {
      helper.handle.destroy();
      throw;
    }
    ResumeTarget& t = helper.handle.promise().target;
    t.coroutine = coroutine;
    t.context.capture(slots_after_resume());
    t.child_slots = &c.own_;
    t.child_extras = &c.extras_;
    t.child_keeps_helper = kept;
    // The child borrows the frames counted in the helper, which it owns until the helper runs
    // (after the child completed) or the child is destroyed.
    Slots start{};
    start.current = FrameAccess::data(t.context.current);
    start.inherited = FrameAccess::data(t.context.inherited);
    start.base = FrameAccess::data(t.context.base);
    start.window = &c;
    start.chain = unassigned_coroutine_chain;
    c.own_ = start;
    c.set_continuation(&helper.handle.promise(), Continuation::helper);
    schedule(run_queue_after_resume(), &c);
    // NOTE: the coroutine may have been resumed already: no access to `this`.
  }

  decltype(auto) await_resume() {
    if (!child_) throw std::logic_error("ucm: co_await of an empty Task");
    if constexpr (Rvalue) {
      return std::move(child_.promise()).result();
    } else {
      return child_.promise().result();
    }
  }

 private:
  std::coroutine_handle<TaskPromise<T>> child_;
};

/// What `ucm::propagate(awaitable)` returns. In a ucm Task it is unwrapped (every co_await there
/// already propagates). In any other coroutine it is an awaiter that hands the inner awaitable the
/// handle of a resumption helper (one small allocation) holding the captured context (up to three
/// reference increments) instead of the coroutine's own. The awaitable owns that handle as it
/// would the coroutine's: it resumes it (or destroys it, releasing the capture).
template <class Awaiter>
class Propagated {
 public:
  template <class Make>
  explicit Propagated(Make&& make) : inner_(std::forward<Make>(make)()) {}

  bool await_ready() { return static_cast<bool>(inner_.await_ready()); }

  template <class P>
  auto await_suspend(std::coroutine_handle<P> coroutine) {
    const auto helper_handle = make_resume_helper().handle;  // may throw: nothing happened yet
    ResumeTarget& t = helper_handle.promise().target;
    t.coroutine = coroutine;
    t.context.capture(slots_after_resume());
    const std::coroutine_handle<> helper = helper_handle;
    using Result = decltype(inner_.await_suspend(helper));
    try {
      if constexpr (std::is_void_v<Result>) {
        inner_.await_suspend(helper);
        // NOTE: the helper may already have resumed the coroutine: no access to `this`.
      } else if constexpr (std::is_same_v<Result, bool>) {
        if (inner_.await_suspend(helper)) return true;
        helper.destroy();  // resumed at once, on this thread, with its slots untouched
        return false;
      } else {
        std::coroutine_handle<> next = inner_.await_suspend(helper);
        if (next == helper) {
          helper.destroy();
          next = coroutine;
        }
        return next;
      }
    } catch (...) {
      helper.destroy();
      throw;
    }
  }

  decltype(auto) await_resume() { return inner_.await_resume(); }

  /// The inner awaiter, for a ucm Task's await_transform.
  Awaiter& inner() noexcept { return inner_; }

 private:
  Awaiter inner_;
};

/// Forwards to an awaiter that must not be copied: g++ 12 copies the awaiter an await_transform
/// returns, even when it returns a reference.
template <class A>
struct AwaiterRef {
  A* awaiter;
  bool await_ready() { return static_cast<bool>(awaiter->await_ready()); }
  template <class P>
  auto await_suspend(std::coroutine_handle<P> h) {
    return awaiter->await_suspend(h);
  }
  decltype(auto) await_resume() { return awaiter->await_resume(); }
};

template <class A>
inline constexpr bool is_propagated_v = false;
template <class A>
inline constexpr bool is_propagated_v<Propagated<A>> = true;

}  // namespace ucm::detail
