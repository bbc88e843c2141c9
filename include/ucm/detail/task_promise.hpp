// SPDX-License-Identifier: MIT
// ucm/detail/task_promise.hpp: the promise behind ucm::Task and the awaiters around every
// `co_await` in its body: where a coroutine's slots live, how they are swapped in on resumption
// and out on suspension, how a child Task is started and finished (the return path), and the
// tagged union that holds a Task's result. Nothing here is public API; see ucm/task.hpp.
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "ucm/detail/coroutine_slots.hpp"
#include "ucm/detail/frame_lifetime.hpp"
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

/// What a Task's continuation is: the low bits of `PromiseBase::continuation_`.
enum class Continuation : std::uintptr_t {
  parent = 0,  // a ucm coroutine (PromiseBase) awaiting it: control may pass to it directly
  helper = 1,  // the resumption helper of a foreign coroutine awaiting it (kept in the return path)
  branch = 2,  // a when_all's BranchLatch: only the last branch to finish continues
};
inline constexpr std::uintptr_t continuation_kind_mask = 3;
static_assert(alignof(ReadyNode) > continuation_kind_mask);

/// Where a when_all's branches report: the last one to finish makes the when_all ready. A
/// ReadyNode only so that it can be a branch's continuation; it is never queued itself.
struct BranchLatch : ReadyNode {
  std::atomic<std::size_t> pending{0};
  ReadyNode* whole = nullptr;

  /// What to resume after one more branch finished: the when_all, or nothing yet.
  ReadyNode* arrive() noexcept {
    // acq_rel: the release half publishes this branch's result and final slots; the acquire half
    // lets the last branch, which resumes the when_all, see every other branch's.
    return pending.fetch_sub(1, std::memory_order_acq_rel) == 1 ? whole : nullptr;
  }
};

/// The thread's slots, kept while a ucm coroutine runs on it, and the stash that was there before
/// (an enclosing run on this thread's stack: a nested loop, or a coroutine resumed inline).
struct SlotStash {
  Slots slots;
  SlotStash* outer;
};

/// What every ucm coroutine (Task, and the helper of sync_wait) carries besides its result.
///
/// Where the slots are:
///   - `own_` holds the coroutine's own slots while it does not run (before it starts: the slots
///     it starts with; after its end: its final slots, or, when it handed control straight to
///     its parent, only its final `owned`, which the promise releases; the final `current` then
///     went to the thread's `inherited` slot, for the return path).
///   - While it runs, its slots are the thread's slots, and what the thread had before is kept in
///     a stash, which the thread's run queue points to (`RunQueue::stash`). A coroutine resumed by
///     a loop or a foreign resumer stashes the thread's slots in its own `stash_` (it is the root
///     of this run). A parent and child that hand control to each other directly on one thread (a
///     `co_await` of a Task and its completion, the common case) leave the stash where it is, so
///     such a hand-off copies only the parent's slots (six words), once each way.
///   - Giving up control to the thread (any other suspension, or the end) saves the slots in
///     `own_`, restores the stash to the thread and pops it.
/// Runs on one thread nest like calls (a root resumed inline gives control back before its
/// resumer continues), so the stashes form a stack through the roots' promises.
/// So whatever thread resumes a coroutine, it sees its own context, and the thread gets its own
/// back when the coroutine gives up control. No allocation, no lock, no reference counting.
///
/// A promise is also the coroutine's ReadyNode: what a run queue links when it becomes ready.
class PromiseBase : public ReadyNode {
 public:
  // `own_` and `stash_` are written before they are read (by whoever starts the coroutine, and at
  // each installation); of them only `own_.owned` and `own_.returned` are read by the destructor
  // of a Task never started, which also reads `extras_` (initialised by its own member
  // initialiser).
  PromiseBase() noexcept {
    own_.owned = nullptr;
    own_.returned = 0;
    prepare = &prepare_to_run;
  }
  PromiseBase(const PromiseBase&) = delete;
  PromiseBase& operator=(const PromiseBase&) = delete;
  ~PromiseBase() {
    // One test for the common case: nothing to release, no return path, no extras (which keep
    // the helper of a foreign awaiter, if any), nothing kept by misuse.
    if ((reinterpret_cast<std::uintptr_t>(own_.owned) | own_.returned | extras_.word()) != 0)
        [[unlikely]]
      release_rare();
  }

  /// What the destructor does when there is something to do.
  [[gnu::cold]] void release_rare() noexcept {
    // The coroutine's `enter`s and its last return path last until it completes; they are
    // released with it.
    release(own_.owned);
    release_returned(own_.returned);
    // Also destroys the helper of a foreign coroutine that awaited this Task and was never
    // resumed (this Task was destroyed first).
    extras_.clear();
  }

  /// At a resumption by a loop or a foreign resumer: stash the thread's slots, install ours.
  void enter_root(ThreadRefs thread) noexcept {
    copy_slots(stash_.slots, thread.slots);
    stash_.outer = thread.queue.stash;
    thread.queue.stash = &stash_;
    copy_slots(thread.slots, own_);
  }

  /// Whoever resumes a ucm coroutine installs its slots first, so the coroutine never checks:
  /// a parent and child handing control to each other directly (hand_to_child, hand_to_parent),
  /// the run queue and `hand_off` (through this), and a foreign resumer (through SlotAwaiter's
  /// await_resume, which runs first in the resumed coroutine).
  static void prepare_to_run(ReadyNode* n) noexcept {
    static_cast<PromiseBase*>(n)->enter_root(thread_refs_after_resume());
  }

  /// At a suspension that gives control back to the thread: keep our slots, restore the stash.
  void leave(ThreadRefs thread) noexcept {
    copy_slots(own_, thread.slots);
    SlotStash* const stash = thread.queue.stash;
    copy_slots(thread.slots, stash->slots);
    thread.queue.stash = stash->outer;
  }

  Slots own_;
  SlotStash stash_;  // the thread's slots, while this coroutine is the root
  /// What completes when this coroutine completes, and how (see set_continuation).
  void set_continuation(ReadyNode* node, Continuation kind) noexcept {
    continuation_ = reinterpret_cast<std::uintptr_t>(node) | static_cast<std::uintptr_t>(kind);
  }
  [[nodiscard]] bool started() const noexcept { return continuation_ != 0; }

  // The ReadyNode to complete, its Continuation kind in the low bits; 0 until the coroutine is
  // started (every start sets it). One word, so the common case (a parent) is one test.
  std::uintptr_t continuation_ = 0;
  PromiseExtras extras_;  // a when_all's merge for its awaiter; a foreign awaiter's helper
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
    if constexpr (Rvalue && std::is_object_v<T>) {
      return T(std::move(child.result()));
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
    if constexpr (Rvalue && std::is_object_v<T>) {
      return T(std::move(child_.promise().result()));
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

  T& result() {
    if (state_ == State::exception) std::rethrow_exception(exception_);
    return value_;
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

template <class T>
class TaskResult<T&> {
 public:
  void return_value(T& value) noexcept { value_ = std::addressof(value); }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }
  T& result() const {
    if (exception_) std::rethrow_exception(exception_);
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
