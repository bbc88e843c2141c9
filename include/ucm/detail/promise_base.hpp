// SPDX-License-Identifier: MIT
// ucm/detail/promise_base.hpp: what every ucm coroutine's promise carries besides its result:
// where the coroutine's slots live while it does not run, how they are swapped in on resumption
// and out on suspension, and what completes when it completes (its continuation). Nothing here
// is public API; see ucm/task.hpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ucm/detail/coroutine_slots.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/trampoline.hpp"

namespace ucm::detail {

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

}  // namespace ucm::detail
