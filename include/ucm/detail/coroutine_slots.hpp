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

#include "ucm/detail/frame_data.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/trampoline.hpp"
#include "ucm/frame.hpp"

namespace ucm::detail {

static_assert(std::is_trivially_copyable_v<Slots>, "slots are swapped as plain memory");
static_assert(sizeof(Slots) <= 64, "a slot swap moves one cache line");

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
/// yet, and its body is a window of its own (depth 1, so `enter` inside it is released with it).
///
// NOTE: the pointers are borrowed, not counted. That is safe because every way of starting a
// coroutine keeps the awaiter's frames alive until the child completes: a parent Task stays
// suspended (its frames are held by its scopes, its promise and, by the same argument, its own
// awaiter), sync_wait blocks its thread, and a foreign awaiter holds counted references in its
// awaiter object.
inline Slots call_slots(const Slots& awaiter) noexcept {
  Slots s{};
  s.current = awaiter.current;
  s.inherited = awaiter.inherited;
  s.base = awaiter.base;
  s.owned = nullptr;
  s.merged = awaiter.merged;
  s.depth = 1;
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
    if (view_ == nullptr) return;
    auto* frames = reinterpret_cast<ContextFrame*>(view_ + 1);
    for (std::size_t i = view_->count; i-- > 0;) frames[i].~ContextFrame();
    ::operator delete(static_cast<void*>(view_));
  }

  explicit operator bool() const noexcept { return view_ != nullptr; }
  /// Frame `i` (< count); the result must not be empty.
  ContextFrame& operator[](std::size_t i) const noexcept {
    return reinterpret_cast<ContextFrame*>(view_ + 1)[i];
  }
  /// What the slots point to; null when empty.
  [[nodiscard]] const MergeView* view() const noexcept { return view_; }
  /// Gives up the block without freeing it (to leak rather than dangle, on the out-of-memory
  /// path of a window that may still restore a pointer to it).
  void leak() noexcept { view_ = nullptr; }

 private:
  MergeView* view_ = nullptr;
};

/// What a coroutine holds so that its `inherited` slot stays valid after `co_await child` (the
/// return path): the child's frames die with the child, so the awaiter counts its own reference.
/// It lasts until the next return path replaces it, or the coroutine ends.
///
/// One word, so that the common case costs one compare: null (nothing held), the frame held (one
/// reference), or, tagged in its low bit, a block allocated on demand for merges and the rare
/// cases, which then holds the frame. Trivially destructible: its owner calls clear() when
/// empty() is false (PromiseBase folds that test into its own).
class ReturnPath {
 public:
  ReturnPath() noexcept = default;
  ReturnPath(const ReturnPath&) = delete;
  ReturnPath& operator=(const ReturnPath&) = delete;

  /// Whether it holds nothing (the common case for a Task that awaited no Task).
  [[nodiscard]] bool empty() const noexcept { return word_ == 0; }
  /// The word itself, for an owner that tests several fields at once.
  [[nodiscard]] std::uintptr_t word() const noexcept { return word_; }

  /// Releases what it holds.
  [[gnu::cold]] void clear() noexcept {
    if (Rare* rare = rare_block()) {
      release(rare->frame);
      for (FrameData* f : rare->kept_frames) release(f);
      if (rare->helper) rare->helper.destroy();
      delete rare;
    } else {
      release(held());
    }
    word_ = 0;
  }

  /// After `co_await child`: `s` (the awaiter's slots, installed) inherits `f`, the child's final
  /// `current`. Takes no reference when one is already held: `f` is the frame held from the
  /// previous return path (awaiting children in a loop), the awaiter's base (alive for its whole
  /// run) or empty; so a child that changes nothing costs no reference-count traffic. A merge
  /// from an earlier when_all is dropped here, or, when `f` is the base, kept until the next
  /// merge, the next new frame or the end (it is no longer shown: `s.merged` is cleared).
  void inherit(Slots& s, FrameData* f) noexcept {
    s.inherited = f;
    inherit_slot(s);
  }
  /// inherit() of the frame already in `s.inherited` (where a Task's end leaves it).
  void inherit_slot(Slots& s) noexcept {
    FrameData* const f = s.inherited;
    // A tagged word never equals a frame's address (frames are aligned), so one compare covers
    // "already held, no block".
    if ((reinterpret_cast<std::uintptr_t>(f) != word_) & (f != s.base)) [[unlikely]]
      hold(s, f);
    s.merged = nullptr;
  }

  /// After `co_await when_all(...)`: `s` inherits the first branch's final frame and every
  /// branch's through `inherited_all()`. Takes over the frames of `result` (count >= 1).
  void merge(Slots& s, MergeResult&& result) noexcept {
    Rare* rare = ensure_rare();
    if (rare == nullptr) {
      // Out of memory: the first branch's frame, as after a single co_await, without the others.
      inherit(s, FrameAccess::data(result[0]));
      return;
    }
    if (rare->merged) drop_merge(s, *rare);
    drop(s, std::exchange(rare->frame, nullptr));
    rare->merged = std::move(result);
    s.inherited = FrameAccess::data(rare->merged[0]);
    s.merged = rare->merged.view();
  }

  /// The merge a when_all's coroutine leaves for its awaiter, if any.
  [[nodiscard]] MergeResult* merge_out() const noexcept {
    Rare* rare = rare_block();
    return rare == nullptr || !rare->merge_out ? nullptr : &rare->merge_out;
  }
  /// Keeps the resumption helper of a foreign coroutine awaiting this coroutine's Task, to be
  /// destroyed with it unless it ran (a Task destroyed before it completed). Returns where it is
  /// kept, for the helper to empty as it runs; null when out of memory.
  [[nodiscard]] std::coroutine_handle<>* keep_helper(std::coroutine_handle<> helper) noexcept {
    Rare* rare = ensure_rare();
    if (rare == nullptr) return nullptr;
    rare->helper = helper;
    return &rare->helper;
  }

  /// Leaves `result` for the awaiter (when_all's own coroutine). May throw (allocation).
  void set_merge_out(MergeResult&& result) {
    Rare* rare = ensure_rare();
    if (rare == nullptr) throw std::bad_alloc();
    rare->merge_out = std::move(result);
  }

 private:
  static constexpr std::uintptr_t rare_tag = 1;

  struct Rare {
    FrameData* frame = nullptr;  // one reference, or null
    MergeResult merged;          // after a when_all: what s.merged points to
    MergeResult merge_out;       // a when_all's coroutine: for its awaiter
    // Frames given up while a window in the coroutine body may still restore a pointer to them.
    std::vector<FrameData*> kept_frames;
    std::vector<MergeResult> kept_merges;
    std::coroutine_handle<> helper;  // see keep_helper
  };
  // The tag bit is free in both kinds of pointer the word holds.
  static_assert(alignof(FrameData) > rare_tag && alignof(Rare) > rare_tag);

  [[nodiscard]] Rare* rare_block() const noexcept {
    return (word_ & rare_tag) != 0 ? reinterpret_cast<Rare*>(word_ & ~rare_tag) : nullptr;
  }
  [[nodiscard]] FrameData* held() const noexcept { return reinterpret_cast<FrameData*>(word_); }

  /// The block, allocated on first need (taking over the frame held); null when out of memory.
  Rare* ensure_rare() noexcept {
    if (Rare* rare = rare_block()) return rare;
    Rare* rare = new (std::nothrow) Rare;
    if (rare == nullptr) return nullptr;
    rare->frame = held();
    word_ = reinterpret_cast<std::uintptr_t>(rare) | rare_tag;
    return rare;
  }

  /// inherit()'s other cases: a new frame to hold, nothing to hold, or the block.
  [[gnu::noinline]] void hold(Slots& s, FrameData* f) noexcept {
    Rare* rare = rare_block();
    FrameData* const old = rare != nullptr ? rare->frame : held();
    const bool take = f != old && f != nullptr;
    // Before dropping a merge, which may hold the last reference to `f` (the first branch's
    // frame, still `inherited` when the parent awaits a Task that had already completed).
    if (take) retain(f);
    if (rare != nullptr && rare->merged) drop_merge(s, *rare);
    if (!take) return;
    if (rare != nullptr) {
      rare->frame = f;
    } else {
      word_ = reinterpret_cast<std::uintptr_t>(f);
    }
    drop(s, old);
  }

  // A window still open in the coroutine body (depth > 1) may have saved the pointer we are about
  // to give up, and restores it when it closes: keep it until the coroutine ends instead. Call
  // windows do not save `inherited`, but the depth does not tell them apart, and this is rare.
  void drop(const Slots& s, FrameData* old) noexcept {
    if (old == nullptr) return;
    if (s.depth <= 1) {
      release(old);
      return;
    }
    Rare* rare = ensure_rare();
    if (rare == nullptr) return;  // out of memory: leaking one frame beats a dangling pointer
    try {
      rare->kept_frames.push_back(old);
    } catch (...) {
      // As above.
    }
  }
  static void drop_merge(const Slots& s, Rare& rare) noexcept {
    if (s.depth <= 1) {
      rare.merged = MergeResult();
      return;
    }
    try {
      rare.kept_merges.push_back(std::move(rare.merged));
    } catch (...) {
      rare.merged.leak();  // leak rather than dangle
    }
  }

  std::uintptr_t word_ = 0;
};

/// The context of a coroutine that has no slots of its own (a foreign coroutine type), captured
/// when it suspends, with counted references: the thread it suspended on goes on and may close
/// the windows that own these frames.
struct CapturedContext {
  ContextFrame current;
  ContextFrame inherited;
  ContextFrame base;
  std::uint32_t depth = 0;

  void capture(const Slots& s) noexcept {
    current = FrameAccess::borrow(s.current);
    inherited = FrameAccess::borrow(s.inherited);
    base = FrameAccess::borrow(s.base);
    depth = s.depth;
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
  ReturnPath* child_return_path = nullptr;
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
    if (MergeResult* out = t->child_return_path->merge_out()) merge = std::move(*out);
  }

  Slots mine{};
  mine.current = FrameAccess::data(current);
  mine.base = FrameAccess::data(base);
  mine.depth = t->context.depth;
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
  FrameData* owned = s.owned;
  copy_slots(s, saved);
  release(owned);
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
