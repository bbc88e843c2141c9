// SPDX-License-Identifier: MIT
// ucm/detail/frame_layout.hpp: a frame's immutable block (FrameData): variable ids, entries, the
// hash index, how a variable's entry is found in a frame, and the per-thread lookup cache that
// `get()` reads through. Nothing here is public API. docs/performance.md explains the layout and
// the costs.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <type_traits>

#include "ucm/detail/config.hpp"

namespace ucm::detail {

/// A variable's identity: unique in the process and never reused, so a variable created later
/// never sees values stored under an earlier one at the same address, and two variables never
/// share an id even where ucm's state is duplicated (see next_variable_id).
using VariableId = std::uint64_t;

/// A block of ids: the addresses of its bytes. Reserved from operator new and never freed, so
/// no other block, of this copy of ucm or of another, can ever cover the same addresses.
struct VariableIdBlock {
  static constexpr std::size_t bytes = std::size_t{1} << 16;  // ids per block
  VariableIdBlock* previous;  // every block stays reachable from the newest (no leak reported)
  std::atomic<std::size_t> used;
};
static_assert(sizeof(VariableIdBlock) <= VariableIdBlock::bytes);

/// A new id: the address of the next unused byte of this copy's current block, never 0.
///
// NOTE: a counter would give the same ids in two copies of this function's static: with clang,
// which emits no STB_GNU_UNIQUE for inline statics, two plugins loaded with RTLD_LOCAL each have
// one, and a frame passed between them would show one plugin's value under the other's
// variable, of another type. Addresses inside memory the process-wide allocator gave one copy,
// and that nobody frees, are unique whatever is duplicated. Consecutive ids still differ in
// their low bits, which the frames' hash indexes use. The cost: one atomic increment, and one
// allocation of 64 KiB (mostly never touched) per 65,536 variables created.
UCM_SHARED_STATE inline VariableId next_variable_id() noexcept {
  static std::atomic<VariableIdBlock*> current{nullptr};
  VariableIdBlock* block = current.load(std::memory_order_acquire);
  for (;;) {
    if (block != nullptr) {
      // Relaxed: the id only has to be unique; nothing is published through it.
      const std::size_t k = block->used.fetch_add(1, std::memory_order_relaxed);
      if (k < VariableIdBlock::bytes) return reinterpret_cast<std::uintptr_t>(block) + k;
    }
    // No block yet, or this one is used up: reserve the next. Out of memory here terminates:
    // a variable's constructor is noexcept, and no id can be made without a block.
    void* memory = ::operator new(VariableIdBlock::bytes, std::nothrow);
    if (memory == nullptr) std::terminate();
    auto* next = ::new (memory) VariableIdBlock{block, {1}};  // id 0 of the block is ours
    if (current.compare_exchange_strong(block, next, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      return reinterpret_cast<std::uintptr_t>(next);
    }
    // Another thread installed a block first (now in `block`): ours gave out no id, free it.
    next->~VariableIdBlock();
    ::operator delete(memory);
  }
}

/// A value constructed inside a frame's block, destroyed when the frame dies.
struct OwnedValue {
  void* object;
  void (*destroy)(void*) noexcept;
};

struct FrameData;

/// One variable's entry in a frame: its id, its value (nullptr marks an explicit unbinding, a
/// "tombstone") and the frame whose block holds the value (this one, or an ancestor).
struct FrameEntry {
  VariableId id;
  const void* value;
  FrameData* owner;
};

/// The block behind a ContextFrame. A frame is either complete (`depth` 0: it holds an entry for
/// every variable it binds) or a delta (`depth` n > 0: a few entries of its own over a parent of
/// depth n - 1, which it keeps alive as owners[0]). One allocation holds, in order:
///   FrameData header                   one cache line
///   std::uint32_t index[mask + 1]      open-addressing hash index: entry + 1, or 0 for free
///   FrameEntry entries[size]           (id, value, owner) of this frame's own entries
///   FrameData* owners[owner_count]     frames kept alive for the values read through this one
///   OwnedValue owned[owned_count]      values constructed in this block
///   value storage
/// `find_entry` hashes a variable's id to a slot of the index (ids are drawn from a counter, so the
/// low bits already spread them: variables created together get distinct slots) and checks the one
/// entry it names: a hit costs two dependent loads whatever the frame's size, and so does a miss;
/// a delta that misses goes on to its parent. Call windows, scopes and small `with`s build deltas
/// (one small block, no copy of the parent: what makes a window cheap on a frame of any size);
/// after max_delta_depth deltas the next change builds a complete frame again, so a lookup probes
/// at most max_delta_depth + 1 indexes. A complete frame holds the values of each distinct frame
/// whose values it shows (`holds`, not `refs`: it does not view them, and not its parent), so it
/// keeps alive only values still visible, never the frames behind their holders (see
/// destroy_frames); changes on top of an `enter` build complete frames (see entered_frame), so a
/// chain of `enter`s keeps no history.
struct alignas(16) FrameData {
  std::atomic<std::uint32_t> refs;   // views: handles, windows, slots, deltas over it (retain)
  std::atomic<std::uint32_t> holds;  // frames and callables using its values (retain_values),
                                     // plus one for all the views while there are any
  std::uint32_t size;                // own entries, tombstones (and, with no index, repeats)
                                     // included
  std::uint32_t owner_count;         // entries of owners[] in use
  std::uint32_t owned_count;         // entries of owned[]
  std::uint32_t mask;                // index slots - 1, a power of two less 1; or linear_mask
  // For the lookup caches: unique in the process, never reused (see next_serial). A window's
  // frame built inline has 0 until a lookup needs one or it is promoted (see assign_serial).
  mutable std::atomic<std::uint64_t> serial;
  FrameData** owners;  // a delta's parent first
  OwnedValue* owned;
  union {
    std::size_t bytes;        // size of the block asked for (a cached block may be larger):
                              // for the memory benchmark only, while the frame lives
    FrameData* next_release;  // intrusive stack used only while releasing
  };
  std::uint32_t alignment;  // what the block was allocated with
  std::uint8_t block;       // the block's cache class, or no_cache_class (see free_block)
  std::uint8_t flags;       // entered_frame, borrowed_parent
  std::uint16_t depth;      // 0: complete; n: a delta over a frame of depth n - 1

  /// The frame a delta adds to (which it keeps alive); nullptr for a complete frame.
  FrameData* parent() const noexcept { return depth == 0 ? nullptr : owners[0]; }

  std::uint32_t* index() noexcept { return reinterpret_cast<std::uint32_t*>(this + 1); }
  const std::uint32_t* index() const noexcept {
    return reinterpret_cast<const std::uint32_t*>(this + 1);
  }
  std::size_t index_bytes() const noexcept {
    return (std::size_t{mask} + 1) * sizeof(std::uint32_t);
  }
  FrameEntry* entries() noexcept {
    return reinterpret_cast<FrameEntry*>(reinterpret_cast<unsigned char*>(this + 1) +
                                         index_bytes());
  }
  const FrameEntry* entries() const noexcept {
    return reinterpret_cast<const FrameEntry*>(reinterpret_cast<const unsigned char*>(this + 1) +
                                               index_bytes());
  }
};
static_assert(sizeof(FrameData) == 64, "the frame header is one cache line");
static_assert(alignof(FrameData) >= alignof(FrameEntry));
static_assert(sizeof(FrameEntry) == 24 && std::is_trivially_copyable_v<FrameEntry>);

/// FrameData::flags: the frame was made current by `enter` (see enter_frame). A change on top
/// of it builds a complete frame, not a delta, so that when that change is itself an `enter`
/// and replaces this frame, this frame (and the values it holds that are now hidden) can die: a
/// chain of `enter`s keeps only the values still visible.
inline constexpr std::uint8_t entered_frame = 1;

/// FrameData::flags: a delta built by a call window that borrows its parent instead of holding a
/// reference to it. The window restores the parent when it closes, so whatever made the parent
/// current keeps it alive at least as long as the window, and the delta dies with the window
/// unless something retains it: that retain (a capture, a delta over it) first takes the parent
/// reference the delta skipped (see promote), so the common window, which nobody captures, costs
/// no atomic read-modify-write on its parent. Such a frame is reachable only from the one chain
/// of windows that built it until it is promoted, so the flag is read and cleared without atomics.
inline constexpr std::uint8_t borrowed_parent = 2;

/// FrameData::flags: built by try_build_window_delta<Ts...>, so its owned values are exactly a
/// Ts... in order, which release_window_delta<Ts...> destroys without indirect calls.
inline constexpr std::uint8_t typed_window = 4;

/// Longest chain of deltas: a lookup that misses the per-thread lookup cache (see LookupCache)
/// probes at most this many indexes plus one.
inline constexpr std::uint16_t max_delta_depth = 8;
/// Most changes a delta takes at once; more build a complete frame.
inline constexpr std::size_t max_delta_bindings = 8;

/// Index slots for a new frame of `n` entries: a power of two, at least 1.5 n (so a probe meets
/// a free slot soon) and at least 4.
constexpr std::uint32_t index_slots(std::size_t n) noexcept {
  return static_cast<std::uint32_t>(std::bit_ceil(std::max<std::size_t>(4, n + (n + 1) / 2)));
}

/// Index slots for a child of `base` with `n` entries: the parent's own count while the index
/// stays at most three quarters full, so the child copies the parent's index as is (see
/// copy_entries); a fresh, roomier one otherwise.
inline std::uint32_t child_index_slots(const FrameData* base, std::size_t n) noexcept {
  if (base != nullptr && 4 * n <= 3 * (std::size_t{base->mask} + 1)) return base->mask + 1;
  return index_slots(n);
}

/// FrameData::mask of a frame with no hash index (a call window's, built inline: see
/// try_build_window_delta): its few entries are scanned, the last first, and a variable may
/// appear in more than one of them, the last one counting (as the later of two bindings in one
/// `ucm::with`). Two unused index slots keep the entries where entries() puts them. Never the
/// mask of an indexed frame, whose index has at least 4 slots (index_slots).
inline constexpr std::uint32_t linear_mask = 1;

/// The entry of `id` among `f`'s own entries (not its parent's), or -1. One slot of the hash
/// index, then the entry it names; linear probing past other variables whose ids share the low
/// bits. The index always has a free slot, so the probe ends. A frame with no index
/// (linear_mask): its entries, the last first.
inline std::ptrdiff_t find_own(const FrameData* f, VariableId id) noexcept {
  const std::uint32_t mask = f->mask;
  const FrameEntry* entries = f->entries();
  if (mask == linear_mask) {
    for (std::uint32_t i = f->size; i-- > 0;) {
      if (entries[i].id == id) return i;
    }
    return -1;
  }
  const std::uint32_t* index = f->index();
  for (std::uint32_t slot = static_cast<std::uint32_t>(id) & mask;; slot = (slot + 1) & mask) {
    const std::uint32_t entry = index[slot];
    if (entry == 0) return -1;
    if (entries[entry - 1].id == id) return entry - 1;
  }
}

/// The entry of `id` seen through `f` (its own, else its parent's, for a delta), or nullptr.
inline const FrameEntry* find_entry(const FrameData* f, VariableId id) noexcept {
  for (; f != nullptr; f = f->parent()) {
    const std::ptrdiff_t i = find_own(f, id);
    if (i >= 0) return f->entries() + i;
  }
  return nullptr;
}

/// Number of variables with a value seen through `f`: its own entries that are not tombstones,
/// and those of its parents that no nearer entry hides. Linear in the entries of the chain (a
/// diagnostic, not a hot path).
inline std::size_t count_bound(const FrameData* f) noexcept {
  std::size_t n = 0;
  for (const FrameData* g = f; g != nullptr; g = g->parent()) {
    const FrameEntry* own = g->entries();
    for (std::uint32_t i = 0; i < g->size; ++i) {
      if (own[i].value != nullptr && find_entry(f, own[i].id) == own + i) ++n;
    }
  }
  return n;
}

/// What this thread's `get()`s found lately: the value of a variable in a frame, remembered
/// under the frame's serial (never reused: see next_serial) and the variable's id, in a small
/// direct-mapped table. A frame never changes after it is built, so an entry stays right for as
/// long as its frame lives, and no later frame can match it: nothing is ever invalidated. A hit
/// costs the same few loads whatever the frame's shape (a chain of deltas, nested windows, a
/// frame of 64 variables); a miss walks the frame once and remembers the answer (nullptr for no
/// value). Trivially destructible and zero-initialised: an empty entry's id, 0, is no variable's
/// (see next_variable_id), so it matches nothing, even a frame that has no serial yet.
struct LookupCache {
  static constexpr std::uint32_t size = 64;
  struct Entry {
    std::uint64_t serial;
    VariableId id;
    const void* value;
  };
  Entry entries[size];

  /// The entry `id` in a frame of serial `serial` would use. Ids of variables created together
  /// differ in their low bits, and a thread's successive frames' serials too, so neither the
  /// variables of one frame nor one variable's successive frames evict each other.
  Entry& slot(std::uint64_t serial, VariableId id) noexcept {
    return entries[static_cast<std::uint32_t>(id + serial * 7) & (size - 1)];
  }
};

/// Records entry `entry` (holding `id`) in a hash index of `mask + 1` slots.
inline void index_insert(std::uint32_t* index, std::uint32_t mask, VariableId id,
                         std::uint32_t entry) noexcept {
  std::uint32_t slot = static_cast<std::uint32_t>(id) & mask;
  while (index[slot] != 0) slot = (slot + 1) & mask;
  index[slot] = entry + 1;
}

}  // namespace ucm::detail
