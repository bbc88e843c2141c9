// SPDX-License-Identifier: MIT
// ucm/detail/slots.hpp: the per-thread slots (current, inherited, base), the window primitives
// that swap them, and the misuse path. Nothing here is public API except through misuse.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ucm/detail/frame_data.hpp"
#include "ucm/misuse.hpp"

namespace ucm {
class ContextFrame;
}

namespace ucm::detail {

/// The per-thread state. Trivially destructible and constant-initialised, so reaching it is a
/// plain TLS access with no initialisation guard; what needs releasing at thread exit is handled
/// by a separate guard registered only on the paths that leave an owned frame behind.
/// Slots never own `current`, `inherited` or `base`: whoever opened the window does (a scope, a
/// bound callable, a coroutine). They own only `owned`, the frame made by `enter` in the
/// innermost window, which that window's exit releases.
/// Every branch's final frame after a when_all, as ContextFrame::inherited_all() shows them
/// (count >= 1). Lives in the block that owns the frames (detail::MergeResult).
struct MergeView {
  const ContextFrame* frames;
  std::size_t count;
};

/// An aggregate without default member initialisers, so that a coroutine's promise can leave its
/// copies unwritten until they are needed: `Slots{}` is the empty state (every field zero).
struct Slots {
  FrameData* current;
  FrameData* inherited;
  FrameData* base;
  FrameData* owned;
  const MergeView* merged;  // after a when_all: every branch's final frame; else null
  std::uint32_t depth;      // open windows; detects scopes closed out of order
  alignas(void*) unsigned char inherited_view[sizeof(void*)];  // see inherited_all()
};

/// This thread's slots. One instance per program and thread: an inline function's static is
/// shared by every translation unit (tested with two translation units in one program).
UCM_SHARED_STATE inline Slots& slots() noexcept {
  static thread_local constinit Slots instance{};
  return instance;
}

/// This thread's slots, from code that can run after a coroutine resumption (see after_resume).
inline Slots& slots_after_resume() noexcept { return after_resume<&slots>(); }

/// Frames this thread must release at exit: an `owned` frame left at the top of the thread and
/// the frames of scopes closed out of order (kept, not released, because a scope still open may
/// restore a pointer to them).
struct ThreadExitGuard {
  std::vector<FrameData*> kept;
  ThreadExitGuard() = default;
  ThreadExitGuard(const ThreadExitGuard&) = delete;
  ThreadExitGuard& operator=(const ThreadExitGuard&) = delete;
  ~ThreadExitGuard() {
    Slots& s = slots();
    FrameData* owned = s.owned;
    s = Slots{};
    release(owned);
    for (FrameData* f : kept) release(f);
  }
};

UCM_SHARED_STATE inline ThreadExitGuard& thread_exit_guard() noexcept {
  static thread_local ThreadExitGuard guard;
  return guard;
}

/// Keeps `f` (one reference, transferred) until the thread exits.
[[gnu::cold]] inline void keep_until_thread_exit(FrameData* f) noexcept {
  if (f == nullptr) return;
  try {
    thread_exit_guard().kept.push_back(f);
  } catch (...) {
    // Out of memory on the misuse path: leaking one frame beats a dangling pointer.
  }
}

/// What a call window saves: it changes only `current` (and collects its own `enter`s).
struct SavedCall {
  FrameData* current;
  FrameData* owned;
  std::uint32_t depth;
};

/// Copies the slots that matter (not the scratch space behind `inherited_all()`): what a
/// continuation window saves and restores, and a coroutine swaps in and out.
///
// NOTE: field by field rather than as one 64-byte block, which would also copy the scratch space
// and load wide over fields usually just stored one by one (a scope, `enter`, the return path).
// g++ -O2 still pairs neighbouring fields into 16-byte moves; forcing word-sized copies measured
// no difference (docs/performance.md, "Tried and not kept").
inline void copy_slots(Slots& to, const Slots& from) noexcept {
  to.current = from.current;
  to.inherited = from.inherited;
  to.base = from.base;
  to.owned = from.owned;
  to.merged = from.merged;
  to.depth = from.depth;
}

/// What a continuation window saves: all three slots and the merge view (the scratch space is
/// not copied).
using SavedContinuation = Slots;

[[gnu::cold]] inline void misordered_exit(Slots& s, FrameData* own) noexcept {
  report_misuse(
      "a ucm window (scope) was closed out of order: it restores what it saved, and its frames "
      "are kept until the thread exits");
  keep_until_thread_exit(s.owned);
  keep_until_thread_exit(own);
  // The depth no longer says whether this is the top of the thread (enter_frame registers the
  // guard only there): register it now, so that an `owned` left behind is released at exit.
  (void)thread_exit_guard();
}

/// What every window does as it closes, before restoring the slots it saved: release its `enter`s
/// and its own frame, or, closed out of order, report and keep them (see misordered_exit).
inline void release_window(Slots& s, std::uint32_t saved_depth, FrameData* own) noexcept {
  if (s.depth != saved_depth + 1) [[unlikely]] {
    misordered_exit(s, own);
  } else {
    release(s.owned);
    release(own);
  }
}

inline SavedCall enter_call(Slots& s, FrameData* f) noexcept {
  const SavedCall saved{s.current, s.owned, s.depth};
  s.current = f;
  s.owned = nullptr;
  s.depth = saved.depth + 1;
  return saved;
}

/// Closes a call window; `own` is the reference the window holds on its frame (may be null).
inline void exit_call(Slots& s, const SavedCall& saved, FrameData* own) noexcept {
  release_window(s, saved.depth, own);
  s.current = saved.current;
  s.owned = saved.owned;
  s.depth = saved.depth;
}

inline SavedContinuation enter_continuation(Slots& s, FrameData* f) noexcept {
  SavedContinuation saved;
  copy_slots(saved, s);
  s.current = f;
  s.inherited = f;
  s.base = f;
  s.owned = nullptr;
  s.merged = nullptr;
  s.depth = saved.depth + 1;
  return saved;
}

inline void exit_continuation(Slots& s, const SavedContinuation& saved, FrameData* own) noexcept {
  release_window(s, saved.depth, own);
  copy_slots(s, saved);
}

/// RAII call window over a frame someone else keeps alive (own == false) or whose reference it
/// takes over (own == true).
class CallWindow {
 public:
  CallWindow(FrameData* f, bool own) noexcept
      : slots_(slots()), own_(own ? f : nullptr), saved_(enter_call(slots_, f)) {}
  CallWindow(const CallWindow&) = delete;
  CallWindow& operator=(const CallWindow&) = delete;
  ~CallWindow() { exit_call(slots_, saved_, own_); }

 private:
  Slots& slots_;
  FrameData* own_;
  SavedCall saved_;
};

/// RAII continuation window over a frame someone else keeps alive.
class ContinuationWindow {
 public:
  explicit ContinuationWindow(FrameData* f) noexcept
      : slots_(slots()), saved_(enter_continuation(slots_, f)) {}
  ContinuationWindow(const ContinuationWindow&) = delete;
  ContinuationWindow& operator=(const ContinuationWindow&) = delete;
  ~ContinuationWindow() { exit_continuation(slots_, saved_, nullptr); }

 private:
  Slots& slots_;
  SavedContinuation saved_;
};

/// Makes `f` (one reference, transferred) `current` for the rest of the innermost window.
inline void enter_frame(FrameData* f) noexcept {
  // Changes on top of an entered frame build complete frames (see entered_frame), so the next
  // `enter` lets this one die. Only a frame nobody else holds yet is marked: writing to one
  // that another thread can see would race.
  if (f != nullptr && f->refs.load(std::memory_order_relaxed) == 1) f->flags |= entered_frame;
  Slots& s = slots();
  FrameData* previous = s.owned;
  s.owned = f;
  s.current = f;
  // Safe: windows nest, so no open window saved a pointer to an `owned` made in this one.
  release(previous);
  if (s.depth == 0) (void)thread_exit_guard();  // top of the thread: released at exit
}

/// The value `get()` sees for `id`: current first, then inherited; a tombstone stops the search.
inline const void* lookup(const Slots& s, VariableId id) noexcept {
  if (const void* const* v = find(s.current, id)) return *v;
  if (s.inherited != s.current) {
    if (const void* const* v = find(s.inherited, id)) return *v;
  }
  return nullptr;
}

}  // namespace ucm::detail
