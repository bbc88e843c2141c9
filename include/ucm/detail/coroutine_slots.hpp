// SPDX-License-Identifier: MIT
// ucm/detail/coroutine_slots.hpp: how a coroutine carries its own slots. The swap a Task does on
// every resumption and suspension, the slots a child starts with, the references that keep the
// return path's frames alive, and the resumption helper through which `ucm::propagate` and
// foreign coroutines awaiting a Task get their context back on any thread. Nothing here is
// public API.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/trampoline.hpp"
#include "ucm/frame.hpp"

namespace ucm::detail {

static_assert(std::is_trivially_copyable_v<Slots>, "slots are swapped as plain memory");

/// This thread's slots and run queue, for code inside a coroutine body after a resumption: one
/// opaque call where clang before 16 needs one (see after_resume in config.hpp), rather than two.
struct ThreadRefs {
  Slots& slots;
  RunQueue& queue;
};
inline ThreadRefs thread_refs() noexcept { return ThreadRefs{slots(), run_queue()}; }
inline ThreadRefs thread_refs_after_resume() noexcept { return after_resume<&thread_refs>(); }

/// The slots a coroutine starts with when `awaiter` (the awaiting coroutine's or thread's slots)
/// awaits it: `co_await child` is a call, so the child sees the awaiter's `current`, `base`,
/// `inherited` and merge view (values active in the awaiter stay active: child-of), owns nothing
/// yet, and its body is a window of its own (`body`, a token no scope has: its promise's address)
/// in a chain of its own, so `enter` inside it is released with it.
///
// NOTE: the pointers are borrowed, not counted. That is safe because every way of starting a
// coroutine keeps the awaiter's frames alive until the child completes: a parent Task stays
// suspended (its frames are held by its scopes, its slots and, by the same argument, its own
// awaiter), sync_wait blocks its thread, and a foreign awaiter holds counted references in its
// awaiter object.
inline Slots call_slots(const Slots& awaiter, const void* body) noexcept {
  Slots s{};
  s.current = awaiter.current;
  s.inherited = awaiter.inherited;
  s.base = awaiter.base;
  s.merged = awaiter.merged;
  s.window = body;
  s.chain = unassigned_coroutine_chain;
  return s;
}

/// The branches' final frames a `when_all` hands to its awaiter, in one block that starts with
/// the MergeView the slots point to (Slots::merged), so that pointer stays valid while the block
/// lives. Empty, or count >= 1 frames. Move-only.
class MergeResult {
 public:
  MergeResult() noexcept = default;
  /// `count` (>= 1) empty frames. Throws std::bad_alloc.
  explicit MergeResult(std::size_t count)
      : view_(static_cast<MergeView*>(
            ::operator new(sizeof(MergeView) + count * sizeof(ContextFrame)))) {
    auto* frames = reinterpret_cast<ContextFrame*>(view_ + 1);
    for (std::size_t i = 0; i < count; ++i) ::new (static_cast<void*>(frames + i)) ContextFrame();
    view_->frames = frames;
    view_->count = count;
    view_->destroy = &destroy;
  }
  MergeResult(MergeResult&& other) noexcept : view_(std::exchange(other.view_, nullptr)) {}
  MergeResult& operator=(MergeResult&& other) noexcept {
    MergeResult old(std::move(*this));
    view_ = std::exchange(other.view_, nullptr);
    return *this;
  }
  MergeResult(const MergeResult&) = delete;
  MergeResult& operator=(const MergeResult&) = delete;
  ~MergeResult() {
    if (view_ != nullptr) destroy(view_);
  }

  explicit operator bool() const noexcept { return view_ != nullptr; }
  /// Frame `i` (< count); the result must not be empty.
  ContextFrame& operator[](std::size_t i) const noexcept {
    return reinterpret_cast<ContextFrame*>(view_ + 1)[i];
  }
  /// What the slots point to; null when empty.
  [[nodiscard]] const MergeView* view() const noexcept { return view_; }
  /// Gives up the block (to the slots' `returned` word, which frees it through its view).
  [[nodiscard]] const MergeView* release() noexcept { return std::exchange(view_, nullptr); }

 private:
  static void destroy(const MergeView* view) noexcept {
    auto* frames = reinterpret_cast<ContextFrame*>(const_cast<MergeView*>(view) + 1);
    for (std::size_t i = view->count; i-- > 0;) frames[i].~ContextFrame();
    ::operator delete(const_cast<MergeView*>(view));
  }

  MergeView* view_ = nullptr;
};

/// The return path, after `co_await child` in the coroutine whose slots `s` are (installed):
/// `s.inherited` holds the child's final `current` (left there by the child's end), and the
/// innermost window's `returned` takes a reference to it, dropping the previous return path's.
/// No reference is taken when one is already held (awaiting children in a loop that change
/// nothing) or for the base (alive for the coroutine's whole run) or the empty frame. The previous
/// return path is safe to drop: a window that saved it is not open inside this one.
inline void take_return(Slots& s) noexcept {
  FrameData* const f = s.inherited;
  s.merged = nullptr;
  if (returned_frame(f) == s.returned) [[likely]]
    return;  // a tagged merge never equals a frame's address
  const Returned old = s.returned;
  // No reference for a frame this window's level keeps alive anyway: the base (alive for the
  // coroutine's whole run), the empty frame, or `current` when it is not an `enter`'s (the frame
  // of the window itself, or the one the coroutine started from): a child that changed nothing,
  // awaited inside a scope.
  if (f != s.base && f != nullptr && (f != s.current || f == s.owned)) {
    retain(f);  // before the old one goes: it may hold the last reference to `f`
    s.returned = returned_frame(f);
  } else {
    s.returned = 0;
  }
  release_returned(old);
}

/// After `co_await when_all(...)`: `s` inherits the first branch's final frame and every
/// branch's through `inherited_all()`; the innermost window takes over the merge (count >= 1).
inline void take_merge(Slots& s, MergeResult&& merge) noexcept {
  const Returned old = s.returned;
  const MergeView* view = merge.release();
  s.returned = reinterpret_cast<Returned>(view) | returned_merge;
  s.merged = view;
  s.inherited = FrameAccess::data(view->frames[0]);
  release_returned(old);
}

/// What a coroutine's promise rarely needs, allocated on first need: the merge a when_all's
/// coroutine leaves for its awaiter, and the resumption helper of a foreign coroutine awaiting
/// it. One word (null in the common case).
class PromiseExtras {
 public:
  PromiseExtras() noexcept = default;
  PromiseExtras(const PromiseExtras&) = delete;
  PromiseExtras& operator=(const PromiseExtras&) = delete;

  [[nodiscard]] bool empty() const noexcept { return rare_ == nullptr; }
  /// Takes over what `other` holds (empty before).
  void take(PromiseExtras& other) noexcept { rare_ = std::exchange(other.rare_, nullptr); }
  [[nodiscard]] std::uintptr_t word() const noexcept {
    return reinterpret_cast<std::uintptr_t>(rare_);
  }

  /// Releases what it holds. A helper that has not run (this Task was destroyed first) is taken
  /// out of this thread's run queue if it is waiting there, then destroyed with its capture.
  /// Reached from the promise's destructor, in the coroutine's destruction: hence the accessor
  /// for code after a resumption (see after_resume in config.hpp).
  [[gnu::cold]] void clear() noexcept {
    if (rare_ == nullptr) return;
    if (rare_->helper) {
      unlink_ready(run_queue_after_resume(), rare_->helper_node);
      rare_->helper.destroy();
    }
    delete rare_;
    rare_ = nullptr;
  }

  /// The merge a when_all's coroutine leaves for its awaiter, if any.
  [[nodiscard]] MergeResult* merge_out() const noexcept {
    return rare_ == nullptr || !rare_->merge_out ? nullptr : &rare_->merge_out;
  }
  /// Leaves `result` for the awaiter (when_all's own coroutine). May throw (allocation).
  void set_merge_out(MergeResult&& result) { ensure().merge_out = std::move(result); }

  /// Keeps the resumption helper (whose promise is `node`) of a foreign coroutine awaiting this
  /// coroutine's Task, to be destroyed with it unless it ran. Returns where it is kept, for the
  /// helper to empty as it runs. May throw (allocation).
  [[nodiscard]] std::coroutine_handle<>* keep_helper(std::coroutine_handle<> helper,
                                                     ReadyNode* node) {
    Rare& rare = ensure();
    rare.helper = helper;
    rare.helper_node = node;
    return &rare.helper;
  }

 private:
  struct Rare {
    MergeResult merge_out;           // a when_all's coroutine: for its awaiter
    std::coroutine_handle<> helper;  // see keep_helper
    ReadyNode* helper_node = nullptr;
  };
  Rare& ensure() {
    if (rare_ == nullptr) rare_ = new Rare;
    return *rare_;
  }

  Rare* rare_ = nullptr;
};

/// The context of a coroutine that has no slots of its own (a foreign coroutine type), captured
/// when it suspends, with counted references: the thread it suspended on goes on and may close
/// the windows that own these frames.
struct CapturedContext {
  ContextFrame current;
  ContextFrame inherited;
  ContextFrame base;

  void capture(const Slots& s) noexcept {
    current = FrameAccess::borrow(s.current);
    inherited = FrameAccess::borrow(s.inherited);
    base = FrameAccess::borrow(s.base);
  }
};

/// What a foreign coroutine gets when it is resumed through a resumption helper. Lives in the
/// helper's promise, so its references live as long as the helper: until it has resumed the
/// coroutine, or is destroyed without having done so.
struct ResumeTarget {
  std::coroutine_handle<> coroutine;  // the awaiting coroutine
  CapturedContext context;
  // Set when the coroutine awaited a Task: the finished child's final slots and return path (for
  // a merge), and where it points to this helper. The child's final frame (or its branches',
  // after when_all) becomes `inherited` until the coroutine next suspends: the return path, as
  // far as a coroutine with no slots of its own can carry it.
  const Slots* child_slots = nullptr;
  PromiseExtras* child_extras = nullptr;
  std::coroutine_handle<>* child_keeps_helper = nullptr;
};

/// Resumes `t->coroutine` with its captured context installed on this thread, and restores this
/// thread's slots when control comes back (the coroutine suspended again or ended), releasing what
/// `enter` set meanwhile. The awaiting coroutine and the child it awaited may be destroyed during
/// the resumption, so everything needed afterwards is moved to this stack frame first.
[[gnu::noinline]] inline void resume_in_context(ResumeTarget* t) noexcept {
  const std::coroutine_handle<> coroutine = t->coroutine;
  const ContextFrame current = std::move(t->context.current);
  const ContextFrame inherited = std::move(t->context.inherited);
  const ContextFrame base = std::move(t->context.base);
  ContextFrame returned;
  MergeResult merge;
  if (t->child_slots != nullptr) {
    *t->child_keeps_helper = nullptr;  // running: the child must not destroy this helper
    returned = FrameAccess::borrow(t->child_slots->current);
    if (MergeResult* out = t->child_extras->merge_out()) merge = std::move(*out);
  }

  Slots mine{};
  mine.current = FrameAccess::data(current);
  mine.base = FrameAccess::data(base);
  // A window and chain of its own: the coroutine may have been started in another chain (a Task
  // that has ended since, a thread that has exited), whose windows must not be restored here. A
  // scope that spans the suspension therefore closes in another chain: reported as misuse, and
  // nothing is restored (see misordered_exit).
  mine.window = t;
  mine.chain = unassigned_coroutine_chain;
  if (merge) {
    mine.inherited = FrameAccess::data(merge[0]);
    mine.merged = merge.view();
  } else if (t->child_slots != nullptr) {
    mine.inherited = FrameAccess::data(returned);
  } else {
    mine.inherited = FrameAccess::data(inherited);
  }

  // A normal, non-inlined function: the slots' address is computed here, on this thread, and the
  // coroutine returns to this thread, so `s` stays this thread's throughout.
  Slots& s = slots();
  Slots saved;
  copy_slots(saved, s);
  copy_slots(s, mine);
  coroutine.resume();
  FrameData* const owned = s.owned;
  const Returned held = s.returned;
  copy_slots(s, saved);
  release(owned);
  release_returned(held);
}

/// The handle `ucm::propagate` (and a foreign coroutine's co_await of a Task) gives instead of
/// the awaiting coroutine's own: a tiny coroutine that, when resumed on any thread, resumes the
/// real one through `resume_in_context` and then ends (its frame frees itself). Its promise holds
/// the captured context and is a ReadyNode, so a finished Task can make it ready. One small
/// allocation per suspension.
struct ResumeHelper {
  struct promise_type : ReadyNode {
    ResumeTarget target;

    ResumeHelper get_return_object() noexcept {
      const auto h = std::coroutine_handle<promise_type>::from_promise(*this);
      handle = h;
      return ResumeHelper{h};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };

  /// Gives the helper's body its own promise, without suspending.
  struct OwnPromise {
    promise_type* promise = nullptr;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<promise_type> h) noexcept {
      promise = &h.promise();
      return false;
    }
    promise_type& await_resume() const noexcept { return *promise; }
  };

  std::coroutine_handle<promise_type> handle;
};

inline ResumeHelper make_resume_helper() {
  ResumeHelper::promise_type& self = co_await ResumeHelper::OwnPromise{};
  resume_in_context(&self.target);
}

}  // namespace ucm::detail
