// SPDX-License-Identifier: MIT
// ucm/detail/frame_data.hpp: the immutable, reference-counted block behind a ContextFrame,
// how it is built from a parent plus a few changes, how a value is found in it, how it is
// released, and the per-thread cache its blocks come from. Nothing here is public API.
// docs/performance.md explains the layout and the costs.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "ucm/detail/config.hpp"

// UCM_FRAME_CACHE: 1 keeps freed frame blocks in a small per-thread cache (the default), 0 sends
// every block back to operator delete. Off under AddressSanitizer, whose quarantine would
// otherwise not see a frame used after it was freed. Must be the same in a whole program.
#if !defined(UCM_FRAME_CACHE)
#if defined(__SANITIZE_ADDRESS__)
#define UCM_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UCM_FRAME_CACHE 0
#endif
#endif
#endif
#if !defined(UCM_FRAME_CACHE)
#define UCM_FRAME_CACHE 1
#endif

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

/// Index access to one field of the entries seen through a frame: a frame's own entries are
/// 0 to size - 1, then its parent's follow (a delta's).
template <class Frame, class Field, Field FrameEntry::*member>
class EntryField {
 public:
  explicit EntryField(Frame* f) noexcept : f_(f) {}
  auto& operator[](std::ptrdiff_t i) const noexcept {
    Frame* f = f_;
    while (static_cast<std::size_t>(i) >= f->size) {
      i -= f->size;
      f = f->owners[0];
    }
    return f->entries()[i].*member;
  }

 private:
  Frame* f_;
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
/// `find` hashes a variable's id to a slot of the index (ids are drawn from a counter, so the low
/// bits already spread them: variables created together get distinct slots) and checks the one
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
  std::uint32_t size;                // own entries, tombstones included
  std::uint32_t owner_count;         // entries of owners[] in use
  std::uint32_t owned_count;         // entries of owned[]
  std::uint32_t mask;                // index slots - 1; the slot count is a power of two
  std::uint64_t serial;              // unique in the process, never reused (see next_serial)
  FrameData** owners;                // a delta's parent first
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
  /// `values()[i]`: the value of the entry `index_of` numbered i (see there).
  auto values() noexcept { return EntryField<FrameData, const void*, &FrameEntry::value>(this); }
  auto values() const noexcept {
    return EntryField<const FrameData, const void*, &FrameEntry::value>(this);
  }
  /// `entry_owners()[i]`: the frame holding the value of that entry.
  auto entry_owners() noexcept {
    return EntryField<FrameData, FrameData*, &FrameEntry::owner>(this);
  }
  auto entry_owners() const noexcept {
    return EntryField<const FrameData, FrameData*, &FrameEntry::owner>(this);
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

/// The entry of `id` among `f`'s own entries (not its parent's), or -1. One slot of the hash
/// index, then the entry it names; linear probing past other variables whose ids share the low
/// bits. The index always has a free slot, so the probe ends.
inline std::ptrdiff_t find_own(const FrameData* f, VariableId id) noexcept {
  const std::uint32_t mask = f->mask;
  const std::uint32_t* index = f->index();
  const FrameEntry* entries = f->entries();
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

/// Where a variable's entry is in `f`: a pointer to its value slot (whose value is nullptr for a
/// tombstone), or nullptr if `f` has no entry for it.
inline const void* const* find(const FrameData* f, VariableId id) noexcept {
  const FrameEntry* e = find_entry(f, id);
  return e == nullptr ? nullptr : &e->value;
}

/// Number of `id`'s entry seen through `f`, for `values()[i]` and `entry_owners()[i]`, or -1.
inline std::ptrdiff_t index_of(const FrameData* f, VariableId id) noexcept {
  std::ptrdiff_t offset = 0;
  for (; f != nullptr; f = f->parent()) {
    const std::ptrdiff_t i = find_own(f, id);
    if (i >= 0) return offset + i;
    offset += f->size;
  }
  return -1;
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
/// value). Trivially destructible and zero-initialised (serial 0 matches no frame).
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

/// A `get()` that missed the lookup cache: walks the frame and remembers the answer in `e`.
[[gnu::noinline]] inline const void* lookup_and_remember(const FrameData* f, VariableId id,
                                                         LookupCache::Entry& e) noexcept {
  const FrameEntry* found = find_entry(f, id);
  const void* value = found == nullptr ? nullptr : found->value;
  e = LookupCache::Entry{f->serial, id, value};
  return value;
}

/// Records entry `entry` (holding `id`) in a hash index of `mask + 1` slots.
inline void index_insert(std::uint32_t* index, std::uint32_t mask, VariableId id,
                         std::uint32_t entry) noexcept {
  std::uint32_t slot = static_cast<std::uint32_t>(id) & mask;
  while (index[slot] != 0) slot = (slot + 1) & mask;
  index[slot] = entry + 1;
}

// ---- the per-thread block cache ------------------------------------------------------------

/// Freed frame blocks this thread keeps for its next frames: a call window builds and frees one
/// frame, and taking a block from here costs a few instructions where operator new and delete
/// cost tens of nanoseconds. Blocks come in four size classes (192 to 1536 bytes: a delta, or a
/// complete frame of up to about 20 small values); bigger or over-aligned frames go to operator
/// new directly. A block
/// may be freed on a different thread than the one that allocated it: it then joins the freeing
/// thread's cache (it is plain operator new memory, so any thread may reuse or delete it), and a
/// thread that only frees sends what its cache cannot hold back to operator delete. At most
/// `depth` blocks per class stay cached; a thread's cache is emptied when the thread exits.
/// Trivially destructible and constant-initialised: reaching it is a plain TLS access.
struct FrameCache {
  static constexpr std::uint32_t class_count = 4;
  static constexpr std::size_t smallest = 192;  // a delta with one value of up to 64 bytes
  static constexpr std::size_t largest = smallest << (class_count - 1);
  static constexpr std::uint32_t depth = 16;

  struct Block {
    Block* next;
  };
  enum class State : std::uint8_t {
    unregistered,  // nothing cached yet: the thread-exit drain is not registered
    open,          // caching
    closed,        // the thread is exiting: blocks go straight back to operator delete
  };
  Block* head[class_count] = {};
  std::uint32_t count[class_count] = {};
  State state = State::unregistered;
  std::uint64_t next_serial = 0;  // this thread's block of frame serials (see next_serial)
  std::uint64_t end_serial = 0;
};

/// FrameData::block of a block that came from operator new, not from a cache class.
inline constexpr std::uint8_t no_cache_class = 0xFF;

/// Every block starts on a cache line and fills whole lines: two threads' frames never share a
/// line, whatever the allocator puts next to each other, so one thread's reference counting and
/// frame building cannot slow another's reads (false sharing).
inline constexpr std::size_t block_alignment = 64;

/// This thread's block cache. One instance per program and thread (inline function static).
UCM_SHARED_STATE inline FrameCache& frame_cache() noexcept {
  static thread_local constinit FrameCache instance{};
  return instance;
}

/// The process-wide source of frame serials, drawn by threads in blocks.
inline constexpr std::uint64_t serial_block = 4096;
UCM_SHARED_STATE inline std::atomic<std::uint64_t>& frame_serials() noexcept {
  static std::atomic<std::uint64_t> next{1};  // 0 is never a serial: an empty cache entry
  return next;
}

/// A frame's serial: unique in the process and never reused, unlike its block's address, so the
/// per-thread lookup caches can remember what a frame holds under its serial and never mistake
/// a later frame in the same block for it. A 64-bit count: it does not wrap. One atomic addition
/// per 4,096 frames a thread builds.
[[gnu::noinline]] inline std::uint64_t draw_serials(FrameCache& c) noexcept {
  // Relaxed: serials only have to be unique.
  c.next_serial = frame_serials().fetch_add(serial_block, std::memory_order_relaxed);
  c.end_serial = c.next_serial + serial_block;
  return c.next_serial++;
}
inline std::uint64_t next_serial(FrameCache& c) noexcept {
  if (c.next_serial != c.end_serial) [[likely]]
    return c.next_serial++;
  return draw_serials(c);
}

/// Sends every block cached by this thread back to operator delete.
inline void trim_frame_cache() noexcept {
  FrameCache& c = frame_cache();
  for (std::uint32_t k = 0; k < FrameCache::class_count; ++k) {
    while (FrameCache::Block* b = c.head[k]) {
      c.head[k] = b->next;
      ::operator delete (static_cast<void*>(b), std::align_val_t{block_alignment});
    }
    c.count[k] = 0;
  }
}

/// Empties the cache when its thread exits, and closes it: frames released later in the thread's
/// exit (by other thread_local destructors) free their blocks directly.
struct FrameCacheExit {
  FrameCacheExit() = default;
  FrameCacheExit(const FrameCacheExit&) = delete;
  FrameCacheExit& operator=(const FrameCacheExit&) = delete;
  ~FrameCacheExit() {
    frame_cache().state = FrameCache::State::closed;
    trim_frame_cache();
  }
};

/// The first block this thread caches: register the drain at thread exit, then cache it. Once the
/// thread is exiting, blocks are deleted instead.
[[gnu::cold, gnu::noinline]] inline void cache_first_block(FrameCache& c, void* memory,
                                                           std::uint32_t k) noexcept {
  if (c.state == FrameCache::State::unregistered) {
    static thread_local FrameCacheExit on_exit;  // constructing it registers its destructor
    (void)&on_exit;
    c.state = FrameCache::State::open;
  }
  if (c.state == FrameCache::State::closed) {
    ::operator delete (memory, std::align_val_t{block_alignment});
    return;
  }
  c.head[k] = ::new (memory) FrameCache::Block{c.head[k]};
  ++c.count[k];
}

/// The cache class of a block of `bytes` aligned to `alignment` (192 << class bytes), or
/// no_cache_class for a block too big or over-aligned for the cache.
inline std::uint32_t cache_class(std::size_t bytes, std::size_t alignment) noexcept {
  static_assert(FrameCache::smallest % block_alignment == 0, "classes are whole cache lines");
#if UCM_FRAME_CACHE
  if (alignment <= block_alignment && bytes <= FrameCache::largest) {
    // smallest << k is the first class size >= bytes (the division is by a constant).
    return static_cast<std::uint32_t>(std::bit_width((bytes - 1) / FrameCache::smallest));
  }
#else
  (void)bytes;
  (void)alignment;
#endif
  return no_cache_class;
}

/// A block of `bytes` aligned to `alignment` (at least block_alignment) for a frame whose cache
/// class is `k` (see cache_class).
// NOTE: this and free_block are reached only through the non-inlined builders and destroy_frames
// (and the non-inlined new_link and delete_link of ucm/detail/asio_shared.hpp), which compute the
// cache's address afresh on each call, so the plain access is right even in a coroutine body on
// clang < 16 (see after_resume in config.hpp).
inline void* allocate_block(std::size_t bytes, std::size_t alignment, std::uint32_t k) {
  if (k != no_cache_class) {
    FrameCache& c = frame_cache();
    if (FrameCache::Block* b = c.head[k]) [[likely]] {
      c.head[k] = b->next;
      --c.count[k];
      return b;
    }
    // The whole class size, so the block can serve any frame of its class once cached.
    return ::operator new (FrameCache::smallest << k, std::align_val_t{block_alignment});
  }
  return ::operator new ((bytes + alignment - 1) & ~(alignment - 1), std::align_val_t{alignment});
}

/// Gives back a block from allocate_block: to this thread's cache while it has room, else to
/// operator delete. Also takes back the blocks of use_task's operation links
/// (ucm/detail/asio_shared.hpp).
inline void free_cached_block(void* memory, std::size_t alignment, std::uint32_t k) noexcept {
  if (k != no_cache_class) {
    FrameCache& c = frame_cache();
    if (c.count[k] < FrameCache::depth) [[likely]] {
      if (c.state == FrameCache::State::open) [[likely]] {
        c.head[k] = ::new (memory) FrameCache::Block{c.head[k]};
        ++c.count[k];
      } else {
        cache_first_block(c, memory, k);
      }
      return;
    }
  }
  // Unsized: clang does not declare sized deallocation without -fsized-deallocation.
  ::operator delete (memory, std::align_val_t{alignment});
}

inline void free_block(FrameData* f) noexcept {
  const std::size_t alignment = f->alignment;
  const std::uint32_t k = f->block;
  f->~FrameData();
  free_cached_block(f, alignment, k);
}

// ---- reference counting ----------------------------------------------------------------------

/// Takes the parent references that `f` and the deltas below it borrowed (see borrowed_parent),
/// before `f` gets a second view: from then on it may outlive the windows that lent them, and
/// other threads may see it. Runs in the chain that built `f` (the only one that can reach it).
[[gnu::noinline]] inline void promote(FrameData* f) noexcept {
  while (f != nullptr && (f->flags & borrowed_parent) != 0) {
    f->flags = static_cast<std::uint8_t>(f->flags & ~borrowed_parent);
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

/// Gives up a count taken with retain_values.
inline void release_values(FrameData* f) noexcept {
  if (f != nullptr && drop_count(f->holds)) [[unlikely]] {
    destroy_husk(f);
  }
}

// ---- building --------------------------------------------------------------------------------

/// One change to apply when building a frame.
struct Binding {
  enum class Kind : std::uint8_t {
    construct,  // construct a new value in the new block from `source`
    borrow,     // reuse `value`, kept alive by `owner` (per-variable bind)
    unbind,     // hide the variable (a tombstone), also from the inherited frame
  };
  VariableId id = 0;
  Kind kind = Kind::unbind;
  // construct
  std::size_t size = 0;
  std::size_t alignment = 1;
  void (*construct)(void* destination, void* source) = nullptr;  // may throw
  void (*destroy)(void* object) noexcept = nullptr;              // null: nothing to destroy
  void* source = nullptr;
  // borrow
  const void* value = nullptr;
  FrameData* owner = nullptr;
};

template <class T>
void destroy_value(void* object) noexcept {
  static_cast<T*>(object)->~T();
}

/// What destroys a T in a frame: nothing at all for a trivially destructible T, so releasing a
/// frame of ints or pointers makes no indirect call.
template <class T>
constexpr auto destroy_function() noexcept -> void (*)(void*) noexcept {
  if constexpr (std::is_trivially_destructible_v<T>) {
    return nullptr;
  } else {
    return &destroy_value<T>;
  }
}

/// A binding that constructs a T in the new frame by moving from `*source` (which must stay
/// alive until the frame is built).
template <class T>
Binding move_binding(VariableId id, T& source) noexcept {
  Binding b;
  b.id = id;
  b.kind = Binding::Kind::construct;
  b.size = sizeof(T);
  b.alignment = alignof(T);
  b.construct = [](void* destination, void* src) {
    ::new (destination) T(std::move(*static_cast<T*>(src)));
  };
  b.destroy = destroy_function<T>();
  b.source = &source;
  return b;
}

/// A binding that constructs a T in the new frame from `std::forward<V>(*source)`.
template <class T, class V>
Binding forward_binding(VariableId id, V&& source) noexcept {
  Binding b;
  b.id = id;
  b.kind = Binding::Kind::construct;
  b.size = sizeof(T);
  b.alignment = alignof(T);
  using Ref = V&&;
  using Source = std::remove_reference_t<V>;
  b.construct = [](void* destination, void* src) {
    ::new (destination) T(static_cast<Ref>(*static_cast<Source*>(src)));
  };
  b.destroy = destroy_function<T>();
  b.source = const_cast<void*>(static_cast<const volatile void*>(std::addressof(source)));
  return b;
}

constexpr std::size_t align_up(std::size_t n, std::size_t alignment) noexcept {
  return (n + alignment - 1) & ~(alignment - 1);
}

/// Sorts `bindings` by id and drops all but the last binding of each id (a later change to the
/// same variable wins, as with repeated assignment). Returns the new count.
inline std::size_t normalize(Binding* bindings, std::size_t n) {
  std::size_t sorted = 1;
  while (sorted < n && bindings[sorted - 1].id < bindings[sorted].id) ++sorted;
  if (sorted >= n) return n;  // the usual case: already in id order, no repeats
  if (n > 1) {
    if (n <= 32) {
      // Insertion sort: stable, and unlike std::stable_sort it never allocates a buffer.
      for (std::size_t i = 1; i < n; ++i) {
        const Binding b = bindings[i];
        std::size_t j = i;
        for (; j > 0 && bindings[j - 1].id > b.id; --j) bindings[j] = bindings[j - 1];
        bindings[j] = b;
      }
    } else {
      std::stable_sort(bindings, bindings + n,
                       [](const Binding& a, const Binding& b) { return a.id < b.id; });
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (i + 1 < n && bindings[i + 1].id == bindings[i].id) continue;  // a later one wins
      if (out != i) bindings[out] = bindings[i];
      ++out;
    }
    n = out;
  }
  return n;
}

/// Where the parts of a frame's block go.
struct FrameLayout {
  std::size_t owners_offset;
  std::size_t owned_offset;
  std::size_t storage_offset;
  std::size_t bytes;
  std::uint32_t slots;
};

inline FrameLayout frame_layout(std::uint32_t slots, std::size_t size, std::size_t owner_capacity,
                                std::size_t owned_count, std::size_t storage,
                                std::size_t alignment) noexcept {
  static_assert(alignof(OwnedValue) <= alignof(FrameData*));
  FrameLayout l;
  l.slots = slots;
  l.owners_offset =
      sizeof(FrameData) + std::size_t{l.slots} * sizeof(std::uint32_t) + size * sizeof(FrameEntry);
  l.owned_offset = l.owners_offset + owner_capacity * sizeof(FrameData*);
  l.storage_offset = align_up(l.owned_offset + owned_count * sizeof(OwnedValue), alignment);
  l.bytes = l.storage_offset + storage;
  return l;
}

/// A block for a frame of `size` entries laid out as `l`, with one reference, depth 0 and no
/// entries filled in yet (the index is not cleared).
inline FrameData* new_frame_block(const FrameLayout& l, std::size_t size,
                                  std::size_t value_alignment) {
  const std::uint32_t k = cache_class(l.bytes, value_alignment);
  const std::size_t alignment = std::max(value_alignment, block_alignment);
  void* memory = allocate_block(l.bytes, alignment, k);
  auto* f = ::new (memory) FrameData;
  auto* block = static_cast<unsigned char*>(memory);
  f->refs.store(1, std::memory_order_relaxed);
  f->holds.store(1, std::memory_order_relaxed);
  f->size = static_cast<std::uint32_t>(size);
  f->owner_count = 0;
  f->owned_count = 0;
  f->mask = l.slots - 1;
  f->serial = next_serial(frame_cache());
  f->owners = reinterpret_cast<FrameData**>(block + l.owners_offset);
  f->owned = reinterpret_cast<OwnedValue*>(block + l.owned_offset);
  f->bytes = l.bytes;
  f->alignment = static_cast<std::uint32_t>(alignment);
  f->block = static_cast<std::uint8_t>(k);
  f->flags = 0;
  f->depth = 0;
  return f;
}

/// Marks every slot of `f`'s index free. Fixed-size stores for the small indexes of deltas
/// (4 to 16 slots), which a memset call would cost more than.
inline void clear_index(FrameData* f) noexcept {
  std::uint32_t* index = f->index();
  const std::size_t slots = std::size_t{f->mask} + 1;
  if (slots > 16) {
    std::memset(index, 0, slots * sizeof(std::uint32_t));
    return;
  }
  std::memset(index, 0, 16);
  if (slots > 4) std::memset(index + 4, 0, 16);
  if (slots > 8) std::memset(index + 8, 0, 32);
}

/// What the bindings (normalized) need in a block: values constructed in it, their storage and
/// alignment, and how many borrowed values name an owner.
struct BindingNeeds {
  std::size_t owned_count = 0;
  std::size_t storage = 0;
  std::size_t alignment = alignof(FrameData);
  std::size_t borrowed = 0;
};

inline BindingNeeds binding_needs(const Binding* bindings, std::size_t count) noexcept {
  BindingNeeds n;
  for (std::size_t j = 0; j < count; ++j) {
    const Binding& b = bindings[j];
    if (b.kind == Binding::Kind::construct) {
      ++n.owned_count;
      n.storage = align_up(n.storage, b.alignment) + b.size;
      n.alignment = std::max(n.alignment, b.alignment);
    } else if (b.kind == Binding::Kind::borrow && b.owner != nullptr) {
      ++n.borrowed;
    }
  }
  return n;
}

/// Applies binding `b` to entry `e` of `f` (whose id is set): constructs the value in `f`'s
/// storage at `storage_at` (advanced), or borrows, or unbinds. May throw (the constructor).
inline void apply_binding(FrameData* f, FrameEntry& e, const Binding& b, unsigned char* storage,
                          std::size_t& storage_at) {
  switch (b.kind) {
    case Binding::Kind::construct: {
      storage_at = align_up(storage_at, b.alignment);
      void* object = storage + storage_at;
      b.construct(object, b.source);
      storage_at += b.size;
      f->owned[f->owned_count++] = OwnedValue{object, b.destroy};
      e.value = object;
      e.owner = f;
      break;
    }
    case Binding::Kind::borrow:
      e.value = b.value;
      e.owner = b.value == nullptr ? nullptr : b.owner;
      break;
    case Binding::Kind::unbind:
      e.value = nullptr;
      e.owner = nullptr;
      break;
  }
}

/// Undoes a build that threw: destroys the values constructed so far and frees the block (no
/// reference was taken yet).
[[gnu::cold]] inline void discard_frame(FrameData* f) noexcept {
  for (std::uint32_t n = f->owned_count; n-- > 0;) {
    if (f->owned[n].destroy != nullptr) f->owned[n].destroy(f->owned[n].object);
  }
  free_block(f);
}

/// Adds `owner` to `f`'s owners unless it is `f` itself, null or there already.
inline void add_owner(FrameData* f, FrameData* owner) noexcept {
  if (owner == nullptr || owner == f) return;
  FrameData** end = f->owners + f->owner_count;
  if (std::find(f->owners, end, owner) == end) f->owners[f->owner_count++] = owner;
}

/// A delta: `base` (may be null: then a small complete frame) plus `bindings` (normalized, at
/// most max_delta_bindings), in a block of its own that references `base` instead of copying
/// it. This is what a call window, a scope and `enter` build: one small block (from this
/// thread's cache when it holds one), the new values constructed in place, one reference on the
/// parent, whatever the parent's size. `borrowed`: the parent is lent by a call window (see
/// borrowed_parent) and not retained.
[[gnu::noinline]] inline FrameData* build_delta(const FrameData* base, const Binding* bindings,
                                                std::size_t count, bool borrowed) {
  const BindingNeeds needs = binding_needs(bindings, count);
  const std::size_t owner_capacity = (base == nullptr ? 0 : 1) + needs.borrowed;
  const FrameLayout l = frame_layout(index_slots(count), count, owner_capacity, needs.owned_count,
                                     needs.storage, needs.alignment);
  FrameData* f = new_frame_block(l, count, needs.alignment);
  auto* storage = reinterpret_cast<unsigned char*>(f) + l.storage_offset;
  clear_index(f);
  FrameEntry* entries = f->entries();
  std::size_t storage_at = 0;
  try {
    for (std::size_t j = 0; j < count; ++j) {
      const Binding& b = bindings[j];
      FrameEntry& e = entries[j];
      e.id = b.id;
      index_insert(f->index(), f->mask, b.id, static_cast<std::uint32_t>(j));
      apply_binding(f, e, b, storage, storage_at);
    }
  } catch (...) {
    discard_frame(f);
    throw;
  }
  if (base != nullptr) {
    f->depth = static_cast<std::uint16_t>(base->depth + 1);
    f->owners[f->owner_count++] = const_cast<FrameData*>(base);  // owners[0]: the parent
  }
  for (std::size_t j = 0; j < count; ++j) {
    if (bindings[j].kind == Binding::Kind::borrow && entries[j].value != nullptr) {
      add_owner(f, entries[j].owner);
    }
  }
  for (std::uint32_t i = 0; i < f->owner_count; ++i) {
    if (i == 0 && base != nullptr) {
      if (borrowed) {
        f->flags = borrowed_parent;
      } else {
        retain(f->owners[0]);  // the parent: a view
      }
    } else {
      retain_values(f->owners[i]);
    }
  }
  return f;
}

/// Whether a change on top of `base` may build a delta (see FrameData).
inline bool short_chain(const FrameData* base) noexcept {
  return base == nullptr || (base->depth < max_delta_depth && (base->flags & entered_frame) == 0);
}

/// build_delta for the change a call window, a scope or `enter` makes: one new value. The same
/// frame, built without loops over bindings: a 4-slot index, one entry, one owned value, the
/// parent as the only owner.
[[gnu::noinline]] inline FrameData* build_delta_one(const FrameData* base, const Binding& b,
                                                    bool borrowed) {
  constexpr std::uint32_t slots = 4;
  static_assert(slots == 4 && sizeof(std::uint32_t) * slots == 16);
  const std::size_t alignment = std::max(alignof(FrameData), b.alignment);
  FrameLayout l;
  l.slots = slots;
  l.owners_offset = sizeof(FrameData) + 16 + sizeof(FrameEntry);
  l.owned_offset = l.owners_offset + (base == nullptr ? 0 : sizeof(FrameData*));
  l.storage_offset = align_up(l.owned_offset + sizeof(OwnedValue), alignment);
  l.bytes = l.storage_offset + b.size;
  FrameData* f = new_frame_block(l, 1, alignment);
  void* object = reinterpret_cast<unsigned char*>(f) + l.storage_offset;
  try {
    b.construct(object, b.source);
  } catch (...) {
    free_block(f);
    throw;
  }
  clear_index(f);
  f->index()[static_cast<std::uint32_t>(b.id) & (slots - 1)] = 1;
  f->entries()[0] = FrameEntry{b.id, object, f};
  f->owned[0] = OwnedValue{object, b.destroy};
  f->owned_count = 1;
  if (base == nullptr) return f;
  f->depth = static_cast<std::uint16_t>(base->depth + 1);
  f->owners[0] = const_cast<FrameData*>(base);
  f->owner_count = 1;
  if (borrowed) {
    f->flags = borrowed_parent;
  } else {
    retain(f->owners[0]);
  }
  return f;
}

/// Copies a complete `base`'s entries (the first `base->size` of `f`) and its index. When `f`
/// has as many index slots as `base`, the index and the entries that follow it are laid out
/// identically in both blocks: one memcpy. Otherwise the index is rebuilt.
inline void copy_entries(FrameData* f, const FrameData* base) noexcept {
  if (base->mask == f->mask) {
    std::memcpy(f->index(), base->index(), f->index_bytes() + base->size * sizeof(FrameEntry));
  } else {
    std::memcpy(f->entries(), base->entries(), base->size * sizeof(FrameEntry));
    std::memset(f->index(), 0, f->index_bytes());
    const FrameEntry* entries = f->entries();
    for (std::uint32_t i = 0; i < base->size; ++i) {
      index_insert(f->index(), f->mask, entries[i].id, i);
    }
  }
}

/// A complete frame: every entry seen through `base` (flattening a chain of deltas: the
/// nearest entry of each variable wins), then `bindings` applied. Used for changes too big for a
/// delta and when the chain of deltas is at its longest.
[[gnu::noinline]] inline FrameData* build_complete(const FrameData* base, Binding* bindings,
                                                   std::size_t count) {
  // At most this many entries (a chain may repeat variables): the block has room for them all.
  std::size_t upper = count;
  for (const FrameData* g = base; g != nullptr; g = g->parent()) upper += g->size;
  if (upper == 0) return nullptr;
  if (upper > std::numeric_limits<std::uint32_t>::max() / 4)
    throw std::length_error("ucm: frame too large");
  const BindingNeeds needs = binding_needs(bindings, count);
  const bool complete_base = base != nullptr && base->depth == 0;
  // Owners: at most one per entry seen through base (each distinct owner holds at least one
  // visible value), plus the borrowed values' owners.
  const std::size_t owner_capacity = (upper - count) + needs.borrowed;
  const FrameLayout l =
      frame_layout(complete_base ? child_index_slots(base, upper) : index_slots(upper), upper,
                   owner_capacity, needs.owned_count, needs.storage, needs.alignment);
  FrameData* f = new_frame_block(l, upper, needs.alignment);
  auto* storage = reinterpret_cast<unsigned char*>(f) + l.storage_offset;
  FrameEntry* entries = f->entries();

  // Entries seen through base.
  std::uint32_t n = 0;
  if (complete_base) {
    copy_entries(f, base);
    n = base->size;
  } else {
    std::memset(f->index(), 0, f->index_bytes());
    for (const FrameData* g = base; g != nullptr; g = g->parent()) {
      const FrameEntry* own = g->entries();
      for (std::uint32_t i = 0; i < g->size; ++i) {
        if (find_own(f, own[i].id) >= 0) continue;  // hidden by a nearer delta
        entries[n] = own[i];
        index_insert(f->index(), f->mask, own[i].id, n);
        ++n;
      }
    }
  }

  // The bindings: a variable already there gets a new value in its entry, others are appended.
  bool replaces = false;
  std::size_t storage_at = 0;
  try {
    for (std::size_t j = 0; j < count; ++j) {
      const Binding& b = bindings[j];
      std::ptrdiff_t k = find_own(f, b.id);
      if (k >= 0) {
        replaces = true;
      } else {
        k = n++;
        entries[k].id = b.id;
        index_insert(f->index(), f->mask, b.id, static_cast<std::uint32_t>(k));
      }
      apply_binding(f, entries[k], b, storage, storage_at);
    }
  } catch (...) {
    discard_frame(f);
    throw;
  }
  f->size = n;

  // One hold on each distinct frame we show values of.
  if (complete_base && !replaces) {
    // Every entry of base is still visible: base's owners, and base itself if it holds values
    // of its own, stay owners (exactly). Only the borrowed values' owners can be new.
    const std::uint32_t inherited = base->owner_count;
    for (std::uint32_t i = 0; i < inherited; ++i) f->owners[i] = base->owners[i];
    f->owner_count = inherited;
    if (base->owned_count != 0) f->owners[f->owner_count++] = const_cast<FrameData*>(base);
    for (std::size_t j = 0; j < count; ++j) {
      if (bindings[j].kind == Binding::Kind::borrow && bindings[j].value != nullptr) {
        add_owner(f, bindings[j].owner);
      }
    }
  } else {
    // Recount from the entries. Owners are few and usually repeat in runs, so skip adjacent
    // repeats first and dedupe the rest in place.
    std::size_t n_owners = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
      FrameData* owner = entries[k].owner;
      if (owner == nullptr || owner == f) continue;
      if (n_owners != 0 && f->owners[n_owners - 1] == owner) continue;
      f->owners[n_owners++] = owner;
    }
    if (n_owners > 1) {
      if (n_owners <= 8) {
        std::size_t out = 0;
        for (std::size_t a = 0; a < n_owners; ++a) {
          bool seen = false;
          for (std::size_t c = 0; c < out; ++c) seen = seen || f->owners[c] == f->owners[a];
          if (!seen) f->owners[out++] = f->owners[a];
        }
        n_owners = out;
      } else {
        std::sort(f->owners, f->owners + n_owners);
        n_owners =
            static_cast<std::size_t>(std::unique(f->owners, f->owners + n_owners) - f->owners);
      }
    }
    f->owner_count = static_cast<std::uint32_t>(n_owners);
  }
  // Only their values: a complete frame reads nothing through them.
  for (std::uint32_t i = 0; i < f->owner_count; ++i) retain_values(f->owners[i]);
  return f;
}

/// Builds a new frame: `base` (may be null) with `bindings` applied. One allocation. Returns a
/// block with one reference owned by the caller, or nullptr when the result has no entries.
/// Strong guarantee: if a value's constructor or the allocation throws, nothing changes.
/// A few changes on a short chain make a delta (see FrameData); otherwise a complete frame.
/// `borrowed`: the frame is a call window's, which borrows `base` from the window's opener (see
/// borrowed_parent); the window must close before `base` dies.
inline FrameData* build_frame(const FrameData* base, Binding* bindings, std::size_t count,
                              bool borrowed = false) {
  if (count == 1 && bindings[0].kind == Binding::Kind::construct && short_chain(base)) [[likely]] {
    return build_delta_one(base, bindings[0], borrowed);
  }
  count = normalize(bindings, count);
  if (count <= max_delta_bindings && short_chain(base) && (count != 0 || base != nullptr)) {
    return build_delta(base, bindings, count, borrowed);
  }
  return build_complete(base, bindings, count);
}

}  // namespace ucm::detail

namespace ucm::detail {

/// Where try_build_window_delta puts things: the header, the index, one entry per value, the
/// parent, one owned value per value, then the values in order. The layout build_delta computes
/// at run time for the same changes, up to the order of the values in their storage.
template <class... Ts>
struct WindowDeltaLayout {
  static constexpr std::size_t count = sizeof...(Ts);
  static constexpr std::uint32_t slots = index_slots(count);
  static constexpr std::size_t alignment = std::max({alignof(FrameData), alignof(Ts)...});
  static constexpr std::size_t owners_offset =
      sizeof(FrameData) + slots * sizeof(std::uint32_t) + count * sizeof(FrameEntry);
  static constexpr std::size_t owned_offset = owners_offset + sizeof(FrameData*);
  /// Where each value goes, and (last) the block's size.
  static constexpr std::array<std::size_t, count + 1> offsets = [] {
    std::array<std::size_t, count + 1> o{};
    std::size_t at = owned_offset + count * sizeof(OwnedValue);
    std::size_t i = 0;
    ((at = align_up(at, alignof(Ts)), o[i++] = at, at += sizeof(Ts)), ...);
    o[count] = at;
    return o;
  }();
  static constexpr std::size_t bytes = offsets[count];
  /// Whether such a frame fits a class of the block cache, and which.
  static constexpr bool fits =
      UCM_FRAME_CACHE != 0 && bytes <= FrameCache::largest && alignment <= block_alignment;
  static constexpr std::uint32_t block_class =
      fits ? static_cast<std::uint32_t>(std::bit_width((bytes - 1) / FrameCache::smallest)) : 0;
};

/// Whether a variable appears twice in `ids`: every pair compared, unrolled.
template <std::size_t N>
bool repeats(const std::array<VariableId, N>& ids) noexcept {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    // Row I: ids[I] against every later id.
    auto row = [&]<std::size_t A, std::size_t... J>(std::index_sequence<J...>) {
      return (static_cast<unsigned>(ids[A] == ids[A + 1 + J]) | ... | 0U);
    };
    return (row.template operator()<I>(std::make_index_sequence<N - 1 - I>{}) | ... | 0U) != 0;
  }
  (std::make_index_sequence<N>{});
}

/// A call window's frame setting the variables `ids` to `Ts(std::forward<Sources>(sources))...`
/// over `base`: the delta build_frame would make (see borrowed_parent), built inline from a block
/// this thread's cache holds, the values constructed directly in it, no reference taken on
/// `base` and nothing but the values' constructors called. nullptr, with nothing constructed,
/// where build_frame's path must be taken instead: the first window on a thread (an empty
/// cache), a frame over no frame or over a chain at its longest, a variable given twice, values
/// too big for the cache's blocks. If a constructor throws, nothing is left behind.
template <class... Ts, class... Sources>
FrameData* try_build_window_delta(FrameData* base, const std::array<VariableId, sizeof...(Ts)>& ids,
                                  Sources&&... sources) {
  using L = WindowDeltaLayout<Ts...>;
  static_assert(sizeof...(Sources) == L::count);
  if constexpr (!L::fits) {
    return nullptr;
  } else {
    if (base == nullptr || !short_chain(base)) return nullptr;
    // A variable given twice: the later wins, which build_frame's normalization sorts out.
    if (repeats(ids)) return nullptr;
    constexpr std::uint32_t k = L::block_class;
    FrameCache& c = frame_cache();
    FrameCache::Block* const b = c.head[k];
    if (b == nullptr) [[unlikely]]
      return nullptr;
    c.head[k] = b->next;
    --c.count[k];
    auto* const block = reinterpret_cast<unsigned char*>(b);
    constexpr void (*destroys[])(void*) noexcept = {destroy_function<Ts>()...};
    std::size_t constructed = 0;
    try {
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((::new (block + L::offsets[I]) Ts(std::forward<Sources>(sources)), ++constructed), ...);
      }
      (std::index_sequence_for<Ts...>{});
    } catch (...) {
      while (constructed-- > 0) {
        if (destroys[constructed] != nullptr)
          destroys[constructed](block + L::offsets[constructed]);
      }
      free_cached_block(block, block_alignment, k);
      throw;
    }
    auto* const f = ::new (block) FrameData;
    f->refs.store(1, std::memory_order_relaxed);
    f->holds.store(1, std::memory_order_relaxed);
    f->size = static_cast<std::uint32_t>(L::count);
    f->owner_count = 1;
    f->owned_count = static_cast<std::uint32_t>(L::count);
    f->mask = L::slots - 1;
    f->serial = next_serial(c);
    f->owners = reinterpret_cast<FrameData**>(block + L::owners_offset);
    f->owned = reinterpret_cast<OwnedValue*>(block + L::owned_offset);
    f->bytes = L::bytes;
    f->alignment = static_cast<std::uint32_t>(block_alignment);
    f->block = static_cast<std::uint8_t>(k);
    f->flags = borrowed_parent | typed_window;
    f->depth = static_cast<std::uint16_t>(base->depth + 1);
    // Stored directly (an index built elsewhere and copied in would stall on store forwarding).
    std::uint32_t* const index = f->index();
    if constexpr (L::count == 1) {
      // Entry 1 in the id's slot of 4, 0 elsewhere: two 8-byte stores.
      static_assert(L::slots == 4);
      const std::uint32_t slot = static_cast<std::uint32_t>(ids[0]) & 3;
      constexpr std::uint32_t high_first = std::endian::native == std::endian::big ? 1 : 0;
      const std::uint64_t word = std::uint64_t{1} << (32 * ((slot & 1) ^ high_first));
      const std::uint64_t low = slot < 2 ? word : 0;
      const std::uint64_t high = slot < 2 ? 0 : word;
      std::memcpy(index, &low, sizeof(low));
      std::memcpy(index + 2, &high, sizeof(high));
    } else {
      std::memset(index, 0, L::slots * sizeof(std::uint32_t));
    }
    FrameEntry* const entries = f->entries();
    // Unrolled over the values (a fold, not a loop: -O2 does not unroll loops).
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      if constexpr (L::count > 1) {
        (index_insert(index, L::slots - 1, ids[I], static_cast<std::uint32_t>(I)), ...);
      }
      ((entries[I] = FrameEntry{ids[I], block + L::offsets[I], f}), ...);
      ((f->owned[I] = OwnedValue{block + L::offsets[I], destroys[I]}), ...);
    }
    (std::index_sequence_for<Ts...>{});
    f->owners[0] = base;
    return f;
  }
}

/// A call window's frame for one variable set to `T(std::forward<V>(value))` over `base`: see
/// try_build_window_delta, and build_frame where that does not apply.
template <class T, class V>
FrameData* build_window_delta(FrameData* base, VariableId id, V&& value) {
  if (FrameData* f = try_build_window_delta<T>(base, {id}, std::forward<V>(value))) [[likely]] {
    return f;
  }
  Binding binding = forward_binding<T>(id, std::forward<V>(value));
  return build_frame(base, &binding, 1, true);
}

/// Releases a window's own frame. The common case, a frame built for the window that nothing
/// retained (it still borrows its parent) and whose values nothing holds, is destroyed here
/// without an atomic read-modify-write; anything else goes through release.
inline void release_window_frame(FrameData* f) noexcept {
  if (f == nullptr) return;
  // borrowed_parent: never retained (a retain promotes it first), so its only view is ours; one
  // hold is the views' own, so nobody else can take one now; and with no owner but its parent,
  // it holds no other frame's values.
  if ((f->flags & borrowed_parent) != 0 && f->owner_count == 1 &&
      f->holds.load(std::memory_order_acquire) == 1) {
    destroy_block(f);
    return;
  }
  release(f);
}

/// release_window_frame for a window's frame that may be try_build_window_delta<Ts...>'s: the
/// common case destroys the values directly, by type, in reverse order.
template <class... Ts>
inline void release_window_delta(FrameData* f) noexcept {
  // As release_window_frame, and typed_window: the owned values are a Ts... (and not promoted,
  // not entered).
  if (f != nullptr && f->flags == (borrowed_parent | typed_window) && f->owner_count == 1 &&
      f->holds.load(std::memory_order_acquire) == 1) [[likely]] {
    // Constants: the compiler drops the trivially destructible and calls the others directly.
    constexpr void (*destroys[])(void*) noexcept = {destroy_function<Ts>()...};
    for (std::size_t j = sizeof...(Ts); j-- > 0;) {
      if (destroys[j] != nullptr) destroys[j](f->owned[j].object);
    }
    free_block(f);
    return;
  }
  release_window_frame(f);
}

}  // namespace ucm::detail
