// SPDX-License-Identifier: MIT
// ucm/detail/slots.hpp: the per-thread slots (current, inherited, base), the windows that swap
// them, what keeps their frames alive, and the misuse path. Nothing here is public API except
// through misuse.hpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "ucm/detail/frame_layout.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/frame_window.hpp"
#include "ucm/misuse.hpp"

namespace ucm {
class ContextFrame;
}

namespace ucm::detail {

/// Every branch's final frame after a when_all, as ContextFrame::inherited_all() shows them
/// (count >= 1), at the start of the block that owns the frames (detail::MergeResult), which
/// `destroy` frees.
struct MergeView {
  const ContextFrame* frames;
  std::size_t count;
  void (*destroy)(const MergeView*) noexcept;
};

/// What a window keeps alive for `inherited` after a return path (a `co_await` of a Task, a
/// when_all) in it: 0, a FrameData* (one reference), or a MergeView* tagged with
/// `returned_merge` (the merge block, owned). A window's exit releases it, so a return path never
/// outlives the window in which it happened.
using Returned = std::uintptr_t;
inline constexpr Returned returned_merge = 1;
static_assert(alignof(FrameData) > returned_merge && alignof(MergeView) > returned_merge);

inline Returned returned_frame(FrameData* f) noexcept { return reinterpret_cast<Returned>(f); }

/// Releases what a Returned word (or a kept frame, which is one too) holds.
inline void release_returned(Returned r) noexcept {
  if ((r & returned_merge) != 0) [[unlikely]] {
    const auto* view = reinterpret_cast<const MergeView*>(r & ~returned_merge);
    view->destroy(view);
  } else {
    release(reinterpret_cast<FrameData*>(r));
  }
}

/// What a window saves and restores, and a coroutine swaps in and out: everything in the slots.
/// An aggregate without default member initialisers, so that a coroutine's promise can leave its
/// copies unwritten until they are needed: `Slots{}` is the empty state (every field zero).
///
/// Slots never own `current`, `inherited` or `base`: whoever opened the window does (a scope, a
/// bound callable, a coroutine). They own `owned`, the frame made by `enter` in the innermost
/// window, and `returned`, what keeps a return path's `inherited` alive; that window's exit
/// releases both.
///
/// Aligned to 16 bytes, as copy_slots moves them: a 16-byte move across two cache lines (one in
/// four, at an 8-byte offset) costs a split load or store, in the thread's slots and in every
/// copy a window saves.
struct alignas(16) Slots {
  FrameData* current;
  FrameData* inherited;
  FrameData* base;
  FrameData* owned;
  const MergeView* merged;  // after a when_all: every branch's final frame; else null
  Returned returned;
  /// The innermost open window (the address of its saved state): a window that closes while it
  /// is not the innermost was closed out of order. Null at the top of a thread.
  const void* window;
  /// Which chain of windows these slots are (see Chain): a thread's own, or a coroutine's.
  std::uintptr_t chain;
};
static_assert(sizeof(Slots) <= 64, "a slot swap moves one cache line");

/// Copies the slots: what a window saves and restores, and a coroutine swaps in and out.
///
// NOTE: in four 16-byte moves, always the same four, rather than as one 64-byte block (which g++
// -O2 may copy with `rep movsl`, sixteen 4-byte moves with a microcoded start) or field by field
// (which the compiler pairs into 16-byte loads of fields just stored 8 bytes at a time: a load
// that two stores must feed stalls on store forwarding, measured at a fifth of a call window).
inline void copy_slots(Slots& to, const Slots& from) noexcept {
  static_assert(sizeof(Slots) == 64 && std::is_trivially_copyable_v<Slots>);
  // Through a chunk type that may alias anything: a plain struct type would access the slots'
  // pointers through another type, which g++ assumes cannot alias them (a restore it then
  // reordered past a read of `current`, with the slots reached through a pointer as
  // slots_after_resume gives them: tests/slots_copy_test.cpp).
  struct alignas(16) [[gnu::may_alias]] Chunk {
    std::uint64_t word[2];
  };
  auto* const out = reinterpret_cast<Chunk*>(&to);
  const auto* const in = reinterpret_cast<const Chunk*>(&from);
  out[0] = in[0];
  out[1] = in[1];
  out[2] = in[2];
  out[3] = in[3];
}

/// What a thread reads on every `get()` and capture: its slots, the references it keeps in
/// reserve for its current frame and its lookup cache, in one thread_local so that one TLS
/// address reaches all three (one call of __tls_get_addr at most, in a shared library).
struct ThreadContext {
  Slots slots;
  /// References to a frame that was `current` in this thread's own chain of windows when it was
  /// captured, held in reserve so that capturing it again, copying a handle to it and dropping one
  /// on this thread cost no atomic read-modify-write (see reserve_current, take_reserved,
  /// release_handle). Given back, in one atomic decrement, as soon as that frame is no longer
  /// `current` (settle_reservation: at `enter`, clear(), a misordered close, and the close of a
  /// window marked by reserve_current or carry_reservation_mark) and at thread exit:
  /// so a reservation never keeps a frame alive longer than the window that shows it, and a
  /// handle dropped on another thread releases its own reference there, as ever. The frame is
  /// alive while it is noted here, even with no reference reserved: it is current (or below a
  /// window, or a coroutine's slots, opened on top of it) until the restore that settles it.
  Reservation reserved;
  LookupCache cache;
};

/// This thread's slots and lookup cache. One instance per program and thread: an inline
/// function's static is shared by every translation unit (tested with two translation units in
/// one program). Trivially destructible and constant-initialised, so reaching it is a plain TLS
/// access with no initialisation guard; what needs releasing at thread exit is handled by a
/// separate guard registered only on the paths that leave something behind.
UCM_SHARED_STATE inline ThreadContext& thread_context() noexcept {
  static thread_local constinit ThreadContext instance{};
  return instance;
}

/// This thread's slots. Not for code that can run after a coroutine resumption (awaiters, promise
/// hooks, destructors, coroutine bodies, and the helpers they call): that uses
/// slots_after_resume. The rule is at after_resume (config.hpp); scripts/check_slot_access.py
/// checks it.
inline Slots& slots() noexcept { return thread_context().slots; }

/// This thread's slots, from code that can run after a coroutine resumption (see after_resume).
///
// NOTE: under g++ the address goes through an empty asm, so that g++ treats it as a pointer
// (`%fs:0` plus the offset, one register) rather than as a TLS symbol, for which it gives each
// 16-byte chunk that copy_slots moves an offset register of its own (four registers held across
// a window, or spilled). Safe after a resumption: g++ recomputes `%fs:0` in each resumption of a
// coroutine (its body is split at every suspension point), as for the plain access.
inline Slots& slots_after_resume() noexcept {
#if defined(__GNUC__) && !defined(__clang__)
  Slots* s = &after_resume<&slots>();
  asm("" : "+r"(s));
  return *s;
#else
  return after_resume<&slots>();
#endif
}

/// This thread's slots and reservation, from code that can run after a coroutine resumption.
inline ThreadContext& thread_context_after_resume() noexcept {
  return after_resume<&thread_context>();
}

// ---- chains of windows, and what misuse keeps ---------------------------------------------------

/// A chain is the stack of windows opened by one thread outside coroutines, or by one coroutine
/// (whose slots follow it from thread to thread). Windows close in the chain they were opened in;
/// one that does not (a scope destroyed on another thread, or after its coroutine was gone) must
/// not restore pointers from a chain that may already have freed them.
///
/// A chain's id is drawn, the first time a window opens in it, from a process-wide sequence (in
/// blocks per thread, so drawing one costs no atomic): never reused, unlike the address of an
/// exited thread's slots or of a destroyed coroutine's promise. Until then a thread's slots hold
/// 0 and a coroutine's `unassigned_coroutine_chain`.
inline constexpr std::uintptr_t unassigned_coroutine_chain = 2;
inline constexpr std::uintptr_t first_chain_id = 16;
inline constexpr std::uintptr_t chain_id_block = 1024;

UCM_SHARED_STATE inline std::atomic<std::uintptr_t>& chain_ids() noexcept {
  static std::atomic<std::uintptr_t> next{first_chain_id};
  return next;
}

/// What a thread keeps beyond its slots. Trivially destructible and constant-initialised.
struct ThreadState {
  enum class Exit : std::uint8_t {
    unregistered,  // nothing to release at exit yet: the guard is not registered
    registered,    // ThreadExitGuard releases the slots and `kept` at exit
    done,          // the guard has run: the thread is exiting
  };
  std::uintptr_t chain;       // this thread's own chain id, 0 until its first window
  std::uintptr_t next_chain;  // the block of chain ids this thread draws from
  std::uintptr_t end_chain;
  std::vector<Returned>* kept;  // frames misordered windows kept (see keep_for_chain)
  Exit exit;
};

UCM_SHARED_STATE inline ThreadState& thread_state() noexcept {
  static thread_local constinit ThreadState instance{};
  return instance;
}

/// Releases, at thread exit, what the slots own at the top of the thread (`enter`, and what it
/// made current) and what misuse kept. A value's destructor may itself `enter`: that is released
/// in the next round.
struct ThreadExitGuard {
  ThreadExitGuard() = default;
  ThreadExitGuard(const ThreadExitGuard&) = delete;
  ThreadExitGuard& operator=(const ThreadExitGuard&) = delete;
  ~ThreadExitGuard() {
    ThreadState& t = thread_state();  // ucm: not after resume: runs at thread exit
    // Bounded: a value whose destructor enters a value whose destructor enters ... would not end.
    for (int round = 0; round < 64; ++round) {
      Slots& s = slots();  // ucm: not after resume: runs at thread exit
      FrameData* const owned = s.owned;
      const Returned returned = s.returned;
      std::vector<Returned>* const kept = t.kept;
      Reservation& reserved = thread_context().reserved;  // ucm: not after resume: thread exit
      if (owned == nullptr && returned == 0 && kept == nullptr && reserved.frame == nullptr) break;
      // Empty first: the values' destructors see no context, and anything they set is caught here.
      s = Slots{};
      t.kept = nullptr;
      if (reserved.frame != nullptr) return_reservation(reserved);
      release(owned);
      release_returned(returned);
      if (kept != nullptr) {
        for (Returned r : *kept) release_returned(r);
        delete kept;
      }
    }
    t.exit = ThreadState::Exit::done;
  }
};

/// Registers the thread-exit guard, once. After it has run (a thread_local's destructor running
/// later in the thread's exit), returns false: nothing would release what is left any more.
UCM_SHARED_STATE [[gnu::cold, gnu::noinline]] inline bool register_thread_exit() noexcept {
  ThreadState& t = thread_state();
  if (t.exit == ThreadState::Exit::unregistered) {
    static thread_local ThreadExitGuard guard;  // constructing it registers its destructor
    (void)&guard;
    t.exit = ThreadState::Exit::registered;
  }
  return t.exit == ThreadState::Exit::registered;
}

/// Frames kept until the process exits: those of a window closed in another chain than its own
/// (its chain, perhaps on a thread still running, may restore them at any time). Never destroyed,
/// so they stay reachable (no leak report) and safe to restore whatever exits first.
struct KeptForever {
  std::mutex mutex;
  std::vector<Returned> kept;
};
UCM_SHARED_STATE inline KeptForever& kept_forever() noexcept {
  static KeptForever* const instance = new KeptForever;
  return *instance;
}

/// Adds `r` (a FrameData* or a tagged merge, one reference, transferred) to `list`, allocating the
/// list on first use. Out of memory, it leaks `r`: leaking one frame beats a dangling pointer.
inline void keep_in(std::vector<Returned>*& list, Returned r) noexcept {
  if (r == 0) return;
  try {
    if (list == nullptr) list = new std::vector<Returned>;
    list->push_back(r);
  } catch (...) {
  }
}

/// Keeps `r` for as long as `chain` may restore a pointer to it: this thread's own chain until
/// the thread exits; any other (a coroutine's, which may go on elsewhere, or another thread's)
/// until the process exits.
[[gnu::cold]] inline void keep_for_chain(std::uintptr_t chain, Returned r) noexcept {
  if (r == 0) return;
  ThreadState& t = thread_state();
  if (chain != 0 && chain == t.chain && register_thread_exit()) {
    keep_in(t.kept, r);
  } else {
    KeptForever& k = kept_forever();
    const std::lock_guard lock(k.mutex);
    std::vector<Returned>* list = &k.kept;
    keep_in(list, r);
  }
}

/// A new chain id (see unassigned_coroutine_chain).
inline std::uintptr_t fresh_chain_id() noexcept {
  ThreadState& t = thread_state();
  if (t.next_chain == t.end_chain) {
    // Relaxed: the ids only have to be unique.
    t.next_chain = chain_ids().fetch_add(chain_id_block, std::memory_order_relaxed);
    t.end_chain = t.next_chain + chain_id_block;
  }
  return t.next_chain++;
}

/// The first window of a chain: draws its id. A thread's own chain also registers the thread-exit
/// guard, since what `enter` leaves in a window later closed on another thread stays in these
/// slots until the thread exits.
[[gnu::cold, gnu::noinline]] inline void assign_chain(Slots& s) noexcept {
  if (s.chain == 0) {
    ThreadState& t = thread_state();
    if (t.chain == 0) {
      t.chain = fresh_chain_id();
      (void)register_thread_exit();
    }
    s.chain = t.chain;
  } else {
    s.chain = fresh_chain_id();
  }
}

/// The chain `s` is (see unassigned_coroutine_chain).
inline std::uintptr_t chain_of(Slots& s) noexcept {
  if (s.chain <= unassigned_coroutine_chain) [[unlikely]]
    assign_chain(s);
  return s.chain;
}

// ---- reserved references (ThreadContext::reserved) ----------------------------------------------

/// A window token (Slots::window) marked: a frame was noted for the thread's reservation while
/// that window was the innermost. Tokens are addresses of SavedSlots (aligned to 16) or of
/// promises, so bit 0 is free.
inline const void* reservation_mark(const void* window) noexcept {
  return reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(window) | 1);
}

/// After a settle that kept the reservation (its frame is `current` again, at the level just
/// restored: a window over the frame that was already current, as a handler bound to a frame
/// calling another bound to it): that level's window takes the mark, so that its own close
/// settles in turn. At the top of the thread `enter`, clear() and the thread's exit do.
inline void carry_reservation_mark(Slots& s) noexcept {
  if (thread_context_after_resume().reserved.frame != nullptr && s.window != nullptr) {
    s.window = reservation_mark(s.window);
  }
}

/// Gives back this thread's reserved references if their frame is no longer `current`. Called
/// after every change of the thread's own `current` that can end a frame's time there: `enter`,
/// clear(), a window closed out of order, and the close of the window that was innermost when the
/// frame was noted (marked: see reservation_mark, carry_reservation_mark); other windows restore
/// the frame that was current when they opened. A coroutine's slots replace the thread's only
/// while it runs on top of them, and put them back exactly, so the reserved frame is current
/// again when they return.
/// Giving back early is always safe: it costs the next capture one atomic increment.
inline void settle_reservation(const FrameData* current) noexcept {
  Reservation& r = thread_context_after_resume().reserved;
  if (r.frame != nullptr && r.frame != current) [[unlikely]]
    return_reservation(r);
}
inline void settle_reservation() noexcept {
  settle_reservation(thread_context_after_resume().slots.current);
}

/// Takes a reference to `f` from `r` if `r` holds `f`'s and can lend one (never its last).
inline bool take_reserved(Reservation& r, FrameData* f) noexcept {
  if (f != r.frame || r.count <= 1) return false;
  --r.count;
  return true;
}

/// Takes a reference to `f`, this thread's `current` (may be null), where take_reserved gave
/// none. The first capture of a frame on a thread takes a plain reference and only notes the frame
/// (a reservation of no references yet), in the thread's own chain of windows (a coroutine's frames
/// are not reserved: its windows may close on another thread): the common window that captures
/// once, for one callback, pays one atomic increment as before, and nothing more at its exit. A
/// second capture while the frame is still current reserves a batch, and so does one that finds
/// the reservation down to the reference it never lends.
inline void reserve_current(FrameData* f) noexcept {
  if (f == nullptr) return;
  ThreadContext& t = thread_context_after_resume();
  Reservation& r = t.reserved;
  if (r.frame == f) {
    // Noted or reserved while current (so promoted then), and current since: the same frame.
    // Promoted again all the same (a test of its flags), should a settle ever have been missed
    // and this be another frame in the same block.
    if ((f->flags & borrowed_parent) != 0) [[unlikely]]
      promote(f);
    // Relaxed, as retain: the caller's window holds it.
    f->refs.fetch_add(reservation_batch + 1 - r.count, std::memory_order_relaxed);
    r.count = reservation_batch;
    return;
  }
  retain(f);
  const std::uintptr_t chain = t.slots.chain;
  // The thread-exit guard gives back whatever the reservation holds if the thread ends with it.
  if ((chain != 0 && chain != thread_state().chain) || !register_thread_exit()) return;
  // The caller's reference is taken: whatever the previous frame's values' destructors do
  // (capture, enter, open windows), `f` stays alive.
  if (r.frame != nullptr) return_reservation(r);
  // Unless a destructor noted another frame, or changed `current`.
  if (r.frame == nullptr && t.slots.current == f) {
    r = Reservation{f, 0};
    // The innermost window closes out of line, to settle the reservation (close_marked_window).
    // At the top of the thread, `enter`, clear() and the thread's exit settle it.
    if (t.slots.window != nullptr) t.slots.window = reservation_mark(t.slots.window);
  }
}

/// A new reference to `f` for a handle copied on this thread: from the reservation if it is `f`'s.
inline void retain_handle(FrameData* f) noexcept {
  if (f != nullptr && !take_reserved(thread_context_after_resume().reserved, f)) retain(f);
}

/// Drops a handle's reference to `f` on this thread: into the reservation if it is `f`'s (a
/// reference is a reference, whichever thread took it), else as release does.
inline void release_handle(FrameData* f) noexcept {
  if (f == nullptr) return;
  Reservation& r = thread_context_after_resume().reserved;
  if (f == r.frame) {
    ++r.count;
    return;
  }
  release(f);
}

// ---- windows ------------------------------------------------------------------------------------

/// What a window saves: all the slots. Its address is the window's token (Slots::window).
using SavedSlots = Slots;

/// Opens a call window over `f` (only `current` changes: `inherited`, the merge and the base stay,
/// and what the window's own `enter`s and return paths make is its own).
inline void open_call(Slots& s, SavedSlots& saved, FrameData* f) noexcept {
  chain_of(s);
  copy_slots(saved, s);
  s.current = f;
  s.owned = nullptr;
  s.returned = 0;
  s.window = &saved;
}

/// Opens a continuation window over `f`: `current`, `inherited` and `base` all become `f`.
inline void open_continuation(Slots& s, SavedSlots& saved, FrameData* f) noexcept {
  chain_of(s);
  copy_slots(saved, s);
  s.current = f;
  s.inherited = f;
  s.base = f;
  s.merged = nullptr;
  s.owned = nullptr;
  s.returned = 0;
  s.window = &saved;
}

/// A window closed out of order (see close_window): restores exactly what it saved if it belongs
/// to this chain, and keeps whatever a window still open may restore a pointer to.
[[gnu::cold, gnu::noinline]] inline void misordered_exit(Slots& s, const SavedSlots& saved,
                                                         FrameData* own,
                                                         FrameData* borrowed) noexcept {
  if (chain_of(s) == saved.chain) {
    // Every frame this chain can still restore becomes independent of the windows that lent
    // their parents (see borrowed_parent): those windows are being closed out of order.
    promote(s.current);
    promote(s.owned);
    promote(saved.current);
    promote(own);
    promote(borrowed);
    retain(borrowed);  // its holder may die now; a window opened inside this one may restore it
    // Out of order in its own chain: the windows opened inside it and still open may restore the
    // frames of the levels this restore drops.
    const FrameData* const owned = s.owned;
    const Returned returned = s.returned;
    copy_slots(s, saved);
    keep_for_chain(saved.chain, returned_frame(const_cast<FrameData*>(owned)));
    keep_for_chain(saved.chain, returned);
    keep_for_chain(saved.chain, returned_frame(own));
    keep_for_chain(saved.chain, returned_frame(borrowed));
    report_misuse(
        "a ucm window (scope) was closed out of order: it restored what it saved, and its frames "
        "are kept until its thread exits (a coroutine's: until the process exits)");
  } else {
    retain(borrowed);  // a handle's frame: never a window's own, so never borrowing a parent
    // Closed in another chain (another thread, or after its coroutine ended): nothing it saved
    // belongs here, so this chain is left as it is, and what the window held goes to the
    // process-wide keeper (its own chain may still restore it, whatever exits first).
    keep_for_chain(0, saved.returned);
    keep_for_chain(0, returned_frame(saved.owned));
    keep_for_chain(0, returned_frame(own));
    keep_for_chain(0, returned_frame(borrowed));
    report_misuse(
        "a ucm window (scope) was closed on another thread or coroutine than the one it was "
        "opened in: nothing was restored, and its frames are kept until the process exits");
  }
  settle_reservation();
  carry_reservation_mark(s);
}

/// Releases what a window's level owned (see close_window), out of line: rare.
[[gnu::noinline]] inline void release_level(FrameData* owned, Returned returned) noexcept {
  release(owned);
  release_returned(returned);
}

/// Closes a window: restores the slots it saved, then releases what the window's level owned
/// (its `enter`s, its return paths) and `own`, the window's reference to its frame (may be null).
/// Values are destroyed only after the restore, so their destructors see the context outside the
/// window, never a frame being destroyed. `borrowed` is the frame the window showed without
/// owning it (frame.run, frame.inherit), kept alive if the window closes out of order.
/// `Release(own)` releases the window's own frame: release_window_frame, or a variant that
/// knows how the frame was built (release_window_delta).
/// close_window where the slots do not name this window as the innermost: it is marked (a frame
/// was noted for the thread's reservation while it was the innermost, see reserve_current), or
/// it closes out of order.
template <void (*Release)(FrameData*) noexcept>
[[gnu::noinline]] void close_marked_window(Slots& s, const SavedSlots& saved, FrameData* own,
                                           FrameData* borrowed) noexcept {
  if (s.window != reservation_mark(&saved)) {
    misordered_exit(s, saved, own, borrowed);
    return;
  }
  // Before the level's values go: the reservation's references are counted among their holders.
  // What was restored is read from `saved`: reading it back from `s` would wait for the stores
  // of copy_slots to forward.
  FrameData* const owned = s.owned;
  const Returned returned = s.returned;
  copy_slots(s, saved);
  settle_reservation(saved.current);
  carry_reservation_mark(s);
  if ((reinterpret_cast<std::uintptr_t>(owned) | returned) != 0) release_level(owned, returned);
  Release(own);
}

/// Closes a window: restores the slots it saved, then releases what the window's level owned
/// (its `enter`s, its return paths) and `own`, the window's reference to its frame (may be null).
/// Values are destroyed only after the restore, so their destructors see the context outside the
/// window, never a frame being destroyed. `borrowed` is the frame the window showed without
/// owning it (frame.run, frame.inherit), kept alive if the window closes out of order.
/// `Release(own)` releases the window's own frame: release_window_frame, or a variant that
/// knows how the frame was built (release_window_delta). A window in which the thread's
/// reservation noted a frame closes out of line, and settles the reservation (the one test on
/// the common path is the one that catches a window closed out of order).
template <void (*Release)(FrameData*) noexcept = release_window_frame>
inline void close_window(Slots& s, const SavedSlots& saved, FrameData* own,
                         FrameData* borrowed) noexcept {
  if (s.window != &saved) [[unlikely]] {
    close_marked_window<Release>(s, saved, own, borrowed);
    return;
  }
  FrameData* const owned = s.owned;
  const Returned returned = s.returned;
  copy_slots(s, saved);
  if ((reinterpret_cast<std::uintptr_t>(owned) | returned) != 0) [[unlikely]] {
    release_level(owned, returned);
  }
  Release(own);
}

/// RAII call window over a frame someone else keeps alive (own == false) or whose reference it
/// takes over (own == true).
class CallWindow {
 public:
  CallWindow(FrameData* f, bool own) noexcept : slots_(slots()), frame_(f), own_(own) {
    open_call(slots_, saved_, f);
  }
  CallWindow(const CallWindow&) = delete;
  CallWindow& operator=(const CallWindow&) = delete;
  ~CallWindow() { close_window(slots_, saved_, own_ ? frame_ : nullptr, own_ ? nullptr : frame_); }

 private:
  Slots& slots_;
  FrameData* frame_;
  bool own_;
  SavedSlots saved_;
};

/// RAII call window on the slots `s` over a frame built for it (one reference, taken over), by
/// try_build_window_delta<Ts...> where it could be, saving the slots in `saved`.
///
// NOTE: `saved` is the caller's, not a member: its address is the window's token and escapes
// into the slots, and a member would take the window's other fields with it, which the compiler
// must then store and reload around the call the window wraps rather than keep in registers.
template <class... Ts>
class ValueWindow {
 public:
  ValueWindow(Slots& s, FrameData* f, SavedSlots& saved) noexcept
      : slots_(s), frame_(f), saved_(saved) {
    open_call(slots_, saved_, f);
  }
  ValueWindow(const ValueWindow&) = delete;
  ValueWindow& operator=(const ValueWindow&) = delete;
  ~ValueWindow() { close_window<&release_window_delta<Ts...>>(slots_, saved_, frame_, nullptr); }

 private:
  Slots& slots_;
  FrameData* frame_;
  SavedSlots& saved_;
};

/// RAII continuation window over a frame someone else keeps alive.
class ContinuationWindow {
 public:
  explicit ContinuationWindow(FrameData* f) noexcept : slots_(slots()), frame_(f) {
    open_continuation(slots_, saved_, f);
  }
  ContinuationWindow(const ContinuationWindow&) = delete;
  ContinuationWindow& operator=(const ContinuationWindow&) = delete;
  ~ContinuationWindow() { close_window(slots_, saved_, nullptr, frame_); }

 private:
  Slots& slots_;
  FrameData* frame_;
  SavedSlots saved_;
};

/// Makes `f` (one reference, transferred) `current` for the rest of the innermost window.
inline void enter_frame(FrameData* f) noexcept {
  // Changes on top of an entered frame build complete frames (see entered_frame), so the next
  // `enter` lets this one die. Only a frame nobody else holds yet is marked: writing to one
  // that another thread can see would race.
  if (f != nullptr && f->refs.load(std::memory_order_relaxed) == 1) f->flags |= entered_frame;
  Slots& s = slots();
  if (s.window == nullptr && thread_state().exit != ThreadState::Exit::registered) [[unlikely]] {
    // The top of a thread with nothing to release at its exit yet. Once the thread's exit has
    // released its slots, nothing would release this frame later: the enter has no effect.
    if (!register_thread_exit()) {
      release(f);
      return;
    }
  }
  FrameData* const previous = s.owned;
  s.owned = f;
  s.current = f;
  settle_reservation();
  // Safe: windows nest, so no open window saved a pointer to an `owned` made in this one.
  release(previous);
}

}  // namespace ucm::detail
