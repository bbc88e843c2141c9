// SPDX-License-Identifier: MIT
// ucm/detail/trampoline.hpp: the per-thread run queue through which ucm's coroutines hand
// control to each other, so that awaiting and completing a Task never grows the stack, whatever
// the compiler does with symmetric transfer. Nothing here is public API.
#pragma once

#include <coroutine>

#include "ucm/detail/config.hpp"

namespace ucm::detail {

/// A coroutine that is ready to run, linked into a thread's run queue. Every ucm promise is one (a
/// coroutine is ready at most once at a time, so one node is enough), and so is the promise of the
/// helper that resumes a foreign coroutine. Never allocated by the queue.
struct ReadyNode {
  ReadyNode* next = nullptr;
  std::coroutine_handle<> handle;
  /// Called on the resuming thread just before `handle` is resumed through the queue or handed
  /// control by `hand_off`: a Task's promise installs its slots there. Null: nothing to do.
  void (*prepare)(ReadyNode*) noexcept = nullptr;
  /// Whether it is linked in a run queue (see unlink_ready).
  bool queued = false;

  /// Prepares and returns the handle to resume now, on this thread.
  std::coroutine_handle<> ready_to_run() noexcept {
    if (prepare != nullptr) prepare(this);
    return handle;
  }
};

/// How many hand-offs by symmetric transfer may nest before one goes through the loop instead.
inline constexpr unsigned transfer_budget = 64;

/// The trampoline of one thread: a FIFO of ready coroutines, whether a loop is draining it, and
/// how many more hand-offs may use symmetric transfer before control must return to that loop.
///
/// Why: with symmetric transfer alone (`await_suspend` returning the next handle), every hand-off
/// is a call that only a tail-call optimisation removes; g++ at -O1 with AddressSanitizer does not
/// perform it, so 20,000 nested `co_await`s of Tasks would take 40,000 stack frames. So ucm's
/// awaiters hand off by symmetric transfer (free where it is a tail call) only while a loop runs
/// on the thread and fewer than `transfer_budget` hand-offs happened since the loop last had
/// control; otherwise they append the next coroutine here and return. The loop (`run_ready`, run
/// by the outermost resumer on the thread) resumes them one after the other and renews the
/// budget. Without tail calls the stack therefore holds at most `transfer_budget` nested frames;
/// with them, one hand-off in `transfer_budget` goes through the loop.
/// Trivially destructible and constant-initialised: reaching it is a plain TLS access.
struct SlotStash;

struct RunQueue {
  ReadyNode* head = nullptr;
  ReadyNode* tail = nullptr;
  bool running = false;  // a run_ready loop on this thread will pick up what is appended
  unsigned budget = 0;   // symmetric transfers left before control returns to the loop; 0 when
                         // no loop runs
  SlotStash* stash = nullptr;  // where the running ucm coroutine's root keeps this thread's slots
                               // (detail/promise_base.hpp)
  RunQueue* outer = nullptr;   // the queue a nested loop set aside while it runs (run_nested)
};

/// This thread's run queue. One instance per program and thread (inline function static).
UCM_SHARED_STATE inline RunQueue& run_queue() noexcept {
  static thread_local constinit RunQueue instance{};
  return instance;
}

/// This thread's run queue, from code that can run after a coroutine resumption (see
/// after_resume in config.hpp).
inline RunQueue& run_queue_after_resume() noexcept { return after_resume<&run_queue>(); }

/// Appends `n` without running anything.
inline void push_ready(RunQueue& q, ReadyNode* n) noexcept {
  n->next = nullptr;
  n->queued = true;
  if (q.tail != nullptr) {
    q.tail->next = n;
  } else {
    q.head = n;
  }
  q.tail = n;
}

/// Takes `n` out of `q`, or out of a queue a nested loop set aside (see run_nested), if it is
/// waiting there (a coroutine destroyed while its resumption was queued on this thread). Walks
/// the queues only for a node that is queued.
inline void unlink_ready(RunQueue& q, ReadyNode* n) noexcept {
  if (!n->queued) [[likely]]
    return;
  n->queued = false;
  for (RunQueue* r = &q; r != nullptr; r = r->outer) {
    ReadyNode* previous = nullptr;
    for (ReadyNode* m = r->head; m != nullptr; previous = m, m = m->next) {
      if (m != n) continue;
      (previous == nullptr ? r->head : previous->next) = m->next;
      if (r->tail == m) r->tail = previous;
      return;
    }
  }
}

/// Resumes every ready coroutine of `q` until none is left, renewing the transfer budget before
/// each. A normal function: its `q` stays this thread's across the resumptions (a resumed
/// coroutine always returns to the thread that resumed it).
[[gnu::noinline]] inline void run_ready(RunQueue& q) noexcept {
  q.running = true;
  while (ReadyNode* n = q.head) {
    q.head = n->next;
    if (q.head == nullptr) q.tail = nullptr;
    n->queued = false;
    q.budget = transfer_budget;
    // The node may be reused (even re-appended) as soon as its coroutine runs: nothing touches
    // it after this.
    n->ready_to_run().resume();
  }
  q.running = false;
  q.budget = 0;
}

/// Whether the next hand-off may be a symmetric transfer (and counts it): a loop runs on this
/// thread, so the chain of transfers ends by returning to it, and the budget is not spent.
inline bool may_transfer(RunQueue& q) noexcept {
  if (q.budget == 0) return false;
  --q.budget;
  return true;
}

/// Appends `n` and, unless a loop already runs on this thread (it will pick `n` up), runs one.
inline void schedule(RunQueue& q, ReadyNode* n) noexcept {
  push_ready(q, n);
  if (!q.running) run_ready(q);
}

/// Hands control to `n` from an `await_suspend` (whose coroutine is suspended): by symmetric
/// transfer when `may_transfer`, otherwise through the queue (starting a loop here if none
/// runs). Returns what `await_suspend` returns.
inline std::coroutine_handle<> hand_off(RunQueue& q, ReadyNode* n) noexcept {
  if (may_transfer(q)) return n->ready_to_run();
  schedule(q, n);
  // NOTE: the loop may have resumed and destroyed the caller's coroutine: the caller returns this
  // at once and touches nothing.
  return std::noop_coroutine();
}

/// Runs `n` and everything it makes ready in a loop of its own, even if a loop is already running
/// on this thread (sync_wait blocks the thread, so the outer loop cannot make progress meanwhile).
/// What the outer loop had queued stays queued for it (and can still leave it: unlink_ready).
inline void run_nested(ReadyNode* n) noexcept {
  RunQueue& q = run_queue_after_resume();
  RunQueue outer = q;
  q = RunQueue{};
  q.outer = &outer;
  push_ready(q, n);
  run_ready(q);
  q = outer;
}

}  // namespace ucm::detail
