// SPDX-License-Identifier: MIT
// ucm/detail/frame_cache.hpp: the per-thread cache frame blocks come from and go back to, and the
// frames' serials. Nothing here is public API.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>

#include "ucm/detail/config.hpp"
#include "ucm/detail/frame_layout.hpp"

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

/// Freed frame blocks this thread keeps for its next frames: a call window builds and frees one
/// frame, and taking a block from here costs a few instructions where operator new and delete
/// cost tens of nanoseconds. Blocks come in four size classes (192 to 1536 bytes: a delta, or a
/// complete frame of up to about 20 small values); bigger or over-aligned frames go to operator
/// new directly. A block
/// may be freed on a different thread than the one that allocated it: it then joins the freeing
/// thread's cache (it is plain operator new memory, so any thread may reuse or delete it), and a
/// thread that only frees sends what its cache cannot hold back to operator delete. At most
/// `depth` blocks per class stay cached, plus a spare for call windows (see take_window_block);
/// a thread's cache is emptied when the thread exits.
/// Trivially destructible and constant-initialised: reaching it is a plain TLS access.
struct FrameCache {
  static constexpr std::uint32_t class_count = 4;
  static constexpr std::uintptr_t no_spare = 1;
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
  /// How many more blocks each class may take: `depth` less those it holds while the cache is
  /// open, and 0 before (see cache_block_without_room) and after (closed), so that putting a block
  /// back tests one number.
  std::uint32_t room[class_count] = {};
  /// Each class's spare block, which call windows take first and give back first: the block's
  /// address, 0 for none, or no_spare while the cache is not open (before its first block, and
  /// once the thread is exiting), so that taking it and giving it back test one word each.
  std::uintptr_t spare[class_count] = {no_spare, no_spare, no_spare, no_spare};
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
/// per 4,096 frames a thread reads (see assign_serial).
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

/// A serial for a window's frame built inline, drawn by the first lookup that needs one (a frame
/// that is never read, as most call windows' are not, draws none); every other frame has one
/// from the moment another thread could read it (the general builder draws it, promote for a
/// window's frame). So this runs on a frame still private to the chain of windows that built it
/// (borrowed_parent), and stores it plainly. The compare-and-swap (the loser taking the winner's)
/// is a safeguard: no lookup writes to a frame another thread may be reading.
[[gnu::noinline]] inline std::uint64_t assign_serial(const FrameData* f) noexcept {
  const std::uint64_t fresh = next_serial(frame_cache());
  // Relaxed: a serial only has to be unique, and the same for every thread once it is set.
  if ((f->flags & borrowed_parent) != 0) {
    f->serial.store(fresh, std::memory_order_relaxed);
    return fresh;
  }
  std::uint64_t expected = 0;
  if (f->serial.compare_exchange_strong(expected, fresh, std::memory_order_relaxed)) return fresh;
  return expected;
}

/// A `get()` that missed the lookup cache: walks the frame and remembers the answer in the
/// cache, under the frame's serial (drawn now if it has none).
[[gnu::noinline]] inline const void* lookup_and_remember(const FrameData* f, VariableId id,
                                                         LookupCache& cache) noexcept {
  const FrameEntry* found = find_entry(f, id);
  const void* value = found == nullptr ? nullptr : found->value;
  std::uint64_t serial = f->serial.load(std::memory_order_relaxed);
  if (serial == 0) serial = assign_serial(f);
  cache.slot(serial, id) = LookupCache::Entry{serial, id, value};
  return value;
}

/// The value of `id` in `f` (nullptr for no value, a tombstone or no frame), through `cache`:
/// what `get()` reads in the thread's `current` frame. A hit is a few loads whatever the frame's
/// shape (see LookupCache); a miss finds the entry (find_entry) and remembers the answer.
inline const void* lookup(const FrameData* f, VariableId id, LookupCache& cache) noexcept {
  if (f == nullptr) return nullptr;
  const std::uint64_t serial = f->serial.load(std::memory_order_relaxed);
  const LookupCache::Entry& e = cache.slot(serial, id);
  if (e.serial == serial && e.id == id) [[likely]]
    return e.value;
  return lookup_and_remember(f, id, cache);
}

/// Sends every block cached by this thread back to operator delete.
inline void trim_frame_cache() noexcept {
  FrameCache& c = frame_cache();
  for (std::uint32_t k = 0; k < FrameCache::class_count; ++k) {
    while (FrameCache::Block* b = c.head[k]) {
      c.head[k] = b->next;
      ::operator delete (static_cast<void*>(b), std::align_val_t{block_alignment});
    }
    if (c.spare[k] > FrameCache::no_spare) {
      ::operator delete (reinterpret_cast<void*>(c.spare[k]), std::align_val_t{block_alignment});
    }
    const bool open = c.state == FrameCache::State::open;
    c.room[k] = open ? FrameCache::depth : 0;
    c.spare[k] = open ? 0 : FrameCache::no_spare;
  }
}

/// Empties the cache when its thread exits, and closes it: frames released later in the thread's
/// exit (by other thread_local destructors) free their blocks directly.
struct FrameCacheExit {
  FrameCacheExit() = default;
  FrameCacheExit(const FrameCacheExit&) = delete;
  FrameCacheExit& operator=(const FrameCacheExit&) = delete;
  ~FrameCacheExit() {
    frame_cache().state = FrameCache::State::closed;  // ucm: not after resume: thread exit
    trim_frame_cache();
  }
};

/// A block for class `k` of a cache without room for it: the first block this thread caches
/// (register the drain at thread exit, open the cache, then cache it), or one for a full class
/// or a cache closed because the thread is exiting (delete it).
[[gnu::cold, gnu::noinline]] inline void cache_block_without_room(FrameCache& c, void* memory,
                                                                  std::uint32_t k) noexcept {
  if (c.state == FrameCache::State::unregistered) {
    static thread_local FrameCacheExit on_exit;  // constructing it registers its destructor
    (void)&on_exit;
    c.state = FrameCache::State::open;
    for (std::uint32_t& room : c.room) room = FrameCache::depth;
    for (std::uintptr_t& spare : c.spare) spare = 0;
  }
  if (c.room[k] == 0) {
    ::operator delete (memory, std::align_val_t{block_alignment});
    return;
  }
  c.head[k] = ::new (memory) FrameCache::Block{c.head[k]};
  --c.room[k];
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

/// A block of cache class `k` from the cache `c`, or nullptr if it holds none.
inline void* take_cached_block(FrameCache& c, std::uint32_t k) noexcept {
  FrameCache::Block* const b = c.head[k];
  if (b != nullptr) [[likely]] {
    c.head[k] = b->next;
    ++c.room[k];
  }
  return b;
}

/// A block of `bytes` aligned to `alignment` (at least block_alignment) for a frame whose cache
/// class is `k` (see cache_class).
// NOTE: this and free_block are reached only through the non-inlined builders and destroy_frames
// (and the non-inlined new_link and delete_link of ucm/detail/asio_shared.hpp), which compute the
// cache's address afresh on each call, so the plain access is right even in a coroutine body on
// clang < 16 (see after_resume in config.hpp).
inline void* allocate_block(std::size_t bytes, std::size_t alignment, std::uint32_t k) {
  if (k != no_cache_class) {
    if (void* b = take_cached_block(frame_cache(), k)) [[likely]]
      return b;
    // The whole class size, so the block can serve any frame of its class once cached.
    return ::operator new (FrameCache::smallest << k, std::align_val_t{block_alignment});
  }
  return ::operator new ((bytes + alignment - 1) & ~(alignment - 1), std::align_val_t{alignment});
}

/// Puts a block of cache class `k` (see cache_class) in the cache `c`, or deletes it when the
/// class is full or the cache closed.
inline void cache_block(FrameCache& c, void* memory, std::uint32_t k) noexcept {
  if (c.room[k] != 0) [[likely]] {
    c.head[k] = ::new (memory) FrameCache::Block{c.head[k]};
    --c.room[k];
  } else {
    cache_block_without_room(c, memory, k);
  }
}

/// take_window_block when the class has no spare: a block from its list, else a new one while
/// the cache is open (a window's frame may be of a smaller class than the general builder makes
/// for the same values, so windows of that shape may be all that ever feed the class); nullptr
/// before the cache is open (the general path opens it), or if the allocation fails (the general
/// path then reports it).
[[gnu::noinline]] inline void* take_window_block_slow(FrameCache& c, std::uint32_t k) noexcept {
  if (void* b = take_cached_block(c, k)) return b;
  if (c.state != FrameCache::State::open) return nullptr;
  return ::operator new (FrameCache::smallest << k, std::align_val_t{block_alignment},
                         std::nothrow);
}

/// A block of cache class `k` for a call window's frame (try_build_window_delta): the class's
/// spare, else one from its list or a new one; nullptr before the cache is open.
inline void* take_window_block(FrameCache& c, std::uint32_t k) noexcept {
  const std::uintptr_t spare = c.spare[k];
  if (spare > FrameCache::no_spare) [[likely]] {
    c.spare[k] = 0;
    return reinterpret_cast<void*>(spare);
  }
  return take_window_block_slow(c, k);
}

/// Gives back a call window's block of cache class `k`: as the class's spare if it has none, else
/// as cache_block.
inline void give_window_block(FrameCache& c, void* memory, std::uint32_t k) noexcept {
  if (c.spare[k] == 0) [[likely]] {
    c.spare[k] = reinterpret_cast<std::uintptr_t>(memory);
    return;
  }
  cache_block(c, memory, k);
}

/// Gives back a block from allocate_block: to this thread's cache while it has room, else to
/// operator delete. Also takes back the blocks of use_task's operation links
/// (ucm/detail/asio_shared.hpp).
inline void free_cached_block(void* memory, std::size_t alignment, std::uint32_t k) noexcept {
  if (k != no_cache_class) {
    cache_block(frame_cache(), memory, k);
    return;
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

}  // namespace ucm::detail
