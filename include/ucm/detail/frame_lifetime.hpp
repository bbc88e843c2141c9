// SPDX-License-Identifier: MIT
// ucm/detail/frame_lifetime.hpp: reference counting of frames: views (retain, release) and holds on
// their values (retain_values, release_values), the promotion of a window's frame that borrowed
// its parent, and the destruction of frames whose last count went. Nothing here is public API.
#pragma once

#include <atomic>
#include <cstdint>

#include "ucm/detail/frame_cache.hpp"
#include "ucm/detail/frame_layout.hpp"

namespace ucm::detail {

/// Takes the parent references that `f` and the deltas below it borrowed (see borrowed_parent),
/// before `f` gets a second view: from then on it may outlive the windows that lent them, and
/// other threads may see it. Runs in the chain that built `f` (the only one that can reach it).
[[gnu::noinline]] inline void promote(FrameData* f) noexcept {
  while (f != nullptr && (f->flags & borrowed_parent) != 0) {
    f->flags = static_cast<std::uint8_t>(f->flags & ~borrowed_parent);
    // A serial now, while the frame is still this chain's alone (a window's frame built inline
    // draws none until a lookup needs it): other threads' lookups then only read it.
    if (f->serial.load(std::memory_order_relaxed) == 0) {
      f->serial.store(next_serial(frame_cache()), std::memory_order_relaxed);
    }
    FrameData* const parent = f->owners[0];
    // Relaxed, as retain: the window that lent the parent still holds it.
    parent->refs.fetch_add(1, std::memory_order_relaxed);
    f = parent;  // which may have borrowed its own
  }
}

inline void retain(FrameData* f) noexcept {
  if (f != nullptr) {
    if ((f->flags & borrowed_parent) != 0) [[unlikely]]
      promote(f);
    // Relaxed: taking a new reference needs no ordering; the caller already holds one.
    f->refs.fetch_add(1, std::memory_order_relaxed);
  }
}

/// Keeps `f`'s own values alive (not `f` as a frame: not what it shows of other frames).
inline void retain_values(FrameData* f) noexcept {
  // Relaxed, as retain: the caller holds a view of `f`, a frame that holds its values, or a
  // hold of its own (a bound callable being copied).
  if (f != nullptr) f->holds.fetch_add(1, std::memory_order_relaxed);
}

/// Drops one count the caller holds; true if it was the last one.
// NOTE: a count of 1 is the caller's own, and nobody can take a new one from it concurrently
// (that needs a count, or a borrowed pointer whose lender is the caller, which is about to give
// it up): so the frame is ours and the locked decrement can be skipped. This is the common case
// of a call window's own frame, which nobody captured. The acquire load pairs with the release
// half of other threads' decrements, as the fetch_sub would.
inline bool drop_count(std::atomic<std::uint32_t>& count) noexcept {
  return count.load(std::memory_order_acquire) == 1 ||
         count.fetch_sub(1, std::memory_order_acq_rel) == 1;
}
inline bool drop_reference(FrameData* f) noexcept { return drop_count(f->refs); }

/// Destroys the values constructed in `f`'s block and frees the block: the end of a frame whose
/// views and holds are all gone (what it showed of other frames was released with its views).
inline void destroy_block(FrameData* f) noexcept {
  for (std::uint32_t i = f->owned_count; i-- > 0;) {
    // No destructor to call for trivially destructible values (see destroy_function).
    if (f->owned[i].destroy != nullptr) f->owned[i].destroy(f->owned[i].object);
  }
  free_block(f);
}

/// After the last hold on the values of a frame without views.
[[gnu::noinline]] inline void destroy_husk(FrameData* f) noexcept { destroy_block(f); }

/// Takes `f`, whose last view went, and every frame that goes with it. A frame without views
/// gives up at once what it shows of other frames (its parent, other frames' values), and its own
/// values when nothing uses them any more either: so a frame that only lends values (to a
/// complete frame built over it, to a bound callable) keeps no frame behind it alive, and chains
/// of changes keep no history. Iterative over parents, so releasing a long chain of deltas cannot
/// overflow the stack.
[[gnu::noinline]] inline void destroy_frames(FrameData* f) noexcept {
  f->next_release = nullptr;
  while (f != nullptr) {
    FrameData* next = f->next_release;
    for (std::uint32_t i = 0; i < f->owner_count; ++i) {
      FrameData* owner = f->owners[i];
      // acq_rel (in drop_count): the release half publishes our reads of the owner's values
      // before the count drops; the acquire half makes the last owner see every other thread's.
      if (i == 0 && f->depth != 0) {  // a delta's parent: a view, unless borrowed
        if ((f->flags & borrowed_parent) != 0) continue;
        if (drop_count(owner->refs)) {
          owner->next_release = next;
          next = owner;
        }
      } else if (drop_count(owner->holds)) {
        destroy_husk(owner);
      }
    }
    // The views' own hold. Otherwise a husk: its values outlive its views while a frame or a
    // bound callable uses them, and nothing reads it as a frame any more.
    if (drop_count(f->holds)) destroy_block(f);
    f = next;
  }
}

inline void release(FrameData* f) noexcept {
  if (f != nullptr && drop_reference(f)) [[unlikely]] {
    destroy_frames(f);
  }
}

/// References a thread keeps in reserve for one frame, to hand out and take back without an
/// atomic read-modify-write (see ThreadContext::reserved, take_reserved). `count` references of
/// `frame` (possibly none yet) are counted in its `refs` and belong to the reservation, which never
/// lends its last one.
struct Reservation {
  FrameData* frame;
  std::uint32_t count;
};

/// References a reservation takes at once (one atomic increment): enough that a thread capturing
/// and dropping one frame in a loop refills rarely, few enough to stay far from the count's limit.
inline constexpr std::uint32_t reservation_batch = 16;

/// Gives back the references `r` holds (one atomic decrement, which may destroy the frame; none
/// if it holds none) and empties it. Emptied first: a value's destructor may capture, and so
/// reserve, again.
[[gnu::noinline]] inline void return_reservation(Reservation& r) noexcept {
  FrameData* const f = r.frame;
  const std::uint32_t n = r.count;
  r = Reservation{};
  if (n == 0) return;
  // acq_rel, as drop_count: publishes this thread's reads; the last one sees every thread's.
  if (f->refs.fetch_sub(n, std::memory_order_acq_rel) == n) destroy_frames(f);
}

/// Gives up a count taken with retain_values.
inline void release_values(FrameData* f) noexcept {
  if (f != nullptr && drop_count(f->holds)) [[unlikely]] {
    destroy_husk(f);
  }
}

}  // namespace ucm::detail
