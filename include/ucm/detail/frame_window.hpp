// SPDX-License-Identifier: MIT
// ucm/detail/frame_window.hpp: a call window's own frame: built inline, with its layout computed
// at compile time, from a block of the thread's cache, and released without an atomic
// read-modify-write when nothing retained it. Nothing here is public API.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "ucm/detail/frame_build.hpp"
#include "ucm/detail/frame_cache.hpp"
#include "ucm/detail/frame_layout.hpp"
#include "ucm/detail/frame_lifetime.hpp"

namespace ucm::detail {

/// Where try_build_window_delta puts things: the header, no index (two unused slots: see
/// linear_mask), one entry per value, the parent, one owned value per value that has a
/// destructor to run, then the values in order. The layout build_delta computes at run time for
/// the same changes, but for the index, the order of the values in their storage and the owned
/// values of trivially destructible ones (whose destroy is null, which destroy_block skips).
template <class... Ts>
struct WindowDeltaLayout {
  static constexpr std::size_t count = sizeof...(Ts);
  static constexpr std::size_t alignment = std::max({alignof(FrameData), alignof(Ts)...});
  static constexpr std::size_t entries_offset =
      sizeof(FrameData) + (linear_mask + 1) * sizeof(std::uint32_t);
  static constexpr std::size_t owners_offset = entries_offset + count * sizeof(FrameEntry);
  // owners[] holds FrameData*: NOLINTNEXTLINE(bugprone-sizeof-expression)
  static constexpr std::size_t owned_offset = owners_offset + sizeof(FrameData*);
  /// Each value's destructor, null for the trivially destructible.
  static constexpr std::array<void (*)(void*) noexcept, count> destroys = {
      destroy_function<Ts>()...};
  /// Which values have a destructor to run (as destroys[i] != nullptr, which is not a constant
  /// expression under the sanitizers), how many, and where each has its owned value.
  static constexpr std::array<bool, count> has_destructor = {
      !std::is_trivially_destructible_v<Ts>...};
  static constexpr std::uint32_t owned_count =
      static_cast<std::uint32_t>(std::count(has_destructor.begin(), has_destructor.end(), true));
  static constexpr std::array<std::uint32_t, count> owned_slot = [] {
    std::array<std::uint32_t, count> o{};
    std::uint32_t n = 0;
    for (std::size_t i = 0; i < count; ++i) o[i] = has_destructor[i] ? n++ : n;
    return o;
  }();
  /// Where each value goes, and (last) the block's size.
  static constexpr std::array<std::size_t, count + 1> offsets = [] {
    std::array<std::size_t, count + 1> o{};
    std::size_t at = owned_offset + owned_count * sizeof(OwnedValue);
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

/// short_chain(base) for a frame: its depth and flags, neighbours in the header, read as one
/// word and tested at once (two instructions, where two separate tests take four).
inline bool short_chain_word(const FrameData* base) noexcept {
  static_assert(std::endian::native == std::endian::little ||
                std::endian::native == std::endian::big);
  static_assert(std::has_single_bit(unsigned{max_delta_depth}));
  static_assert(offsetof(FrameData, flags) == offsetof(FrameData, block) + 1 &&
                offsetof(FrameData, depth) == offsetof(FrameData, block) + 2 &&
                sizeof(FrameData::depth) == 2);
  constexpr std::uint32_t depth_bits = 0xFFFFU & ~(std::uint32_t{max_delta_depth} - 1);
  constexpr std::uint32_t mask = std::endian::native == std::endian::little
                                     ? (std::uint32_t{entered_frame} << 8) | (depth_bits << 16)
                                     : (std::uint32_t{entered_frame} << 16) | depth_bits;
  std::uint32_t word;
  std::memcpy(&word, reinterpret_cast<const unsigned char*>(base) + offsetof(FrameData, block),
              sizeof(word));
  return (word & mask) == 0;
}

/// A call window's frame setting the variables `ids` to `Ts(std::forward<Sources>(sources))...`
/// over `base`: the delta build_frame would make (see borrowed_parent), but with no hash index
/// (see linear_mask), built inline from a block this thread's cache holds, the values
/// constructed directly in it, no reference taken on `base` and nothing but the values'
/// constructors called. A variable given twice gets two entries, the later counting. nullptr,
/// with nothing constructed, where build_frame's path must be taken instead: the first window on
/// a thread (an empty cache), a frame over no frame or over a chain at its longest, more than
/// max_delta_bindings values (build_frame builds a complete frame), values too big for the
/// cache's blocks. If a constructor throws, nothing is left behind.
///
// NOTE: no index, because a window's frame is rarely read more than once per variable (the
// thread's lookup cache answers after the first get) and holds few entries: placing each id in
// an index, and finding a variable given twice, cost more per value than scanning does on the
// first get (ucm::with of 4: 120 -> 92 instructions).
template <class... Ts, class... Sources>
[[gnu::always_inline]] inline FrameData* try_build_window_delta(
    FrameData* base, const std::array<VariableId, sizeof...(Ts)>& ids, Sources&&... sources) {
  using L = WindowDeltaLayout<Ts...>;
  static_assert(sizeof...(Sources) == L::count);
  if constexpr (!L::fits || L::count > max_delta_bindings) {  // more: a complete frame
    return nullptr;
  } else {
    if (base == nullptr || !short_chain_word(base)) return nullptr;
    constexpr std::uint32_t k = L::block_class;
    // Inlined into a scope's constructor, which may run in a coroutine body after a resumption.
    FrameCache& c = after_resume<&frame_cache>();
    auto* const block = static_cast<unsigned char*>(take_window_block(c, k));
    if (block == nullptr) [[unlikely]]
      return nullptr;
    constexpr auto destroys = L::destroys;
    if constexpr ((std::is_nothrow_constructible_v<Ts, Sources&&> && ...)) {
      // No handler to set up: the whole build can be inlined into the window.
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (::new (block + L::offsets[I]) Ts(std::forward<Sources>(sources)), ...);
      }
      (std::index_sequence_for<Ts...>{});
    } else {
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
    }
    auto* const f = ::new (block) FrameData;
    f->refs.store(1, std::memory_order_relaxed);
    f->holds.store(1, std::memory_order_relaxed);
    f->size = static_cast<std::uint32_t>(L::count);
    f->owner_count = 1;
    f->owned_count = L::owned_count;
    f->mask = linear_mask;
    f->serial.store(0, std::memory_order_relaxed);  // drawn on first need (see assign_serial)
    f->owners = reinterpret_cast<FrameData**>(block + L::owners_offset);
    f->owned = reinterpret_cast<OwnedValue*>(block + L::owned_offset);
    f->bytes = L::bytes;
    f->alignment = static_cast<std::uint32_t>(block_alignment);
    f->block = static_cast<std::uint8_t>(k);
    f->flags = borrowed_parent | typed_window;
    f->depth = static_cast<std::uint16_t>(base->depth + 1);
    auto* const entries = reinterpret_cast<FrameEntry*>(block + L::entries_offset);
    // Unrolled over the values (a fold, not a loop: -O2 does not unroll loops).
    [&]<std::size_t... I>(std::index_sequence<I...>) {
#if defined(__GNUC__) && defined(__SSE2__) && __SIZEOF_POINTER__ == 8
      if constexpr (L::count > 1) {
        // Each entry's value and owner in one 16-byte store (the frame's address in both lanes,
        // plus the value's offset in the first): stores, not instructions, bound this loop.
        using Pair = std::uint64_t __attribute__((vector_size(16)));
        static_assert(offsetof(FrameEntry, owner) == offsetof(FrameEntry, value) + 8);
        const auto at = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(block));
        const Pair both = {at, at};
        auto store = [&]<std::size_t J>() {
          entries[J].id = ids[J];
          const Pair pair = both + Pair{L::offsets[J], 0};
          std::memcpy(static_cast<void*>(&entries[J].value), &pair, sizeof(pair));
        };
        (store.template operator()<I>(), ...);
      } else {
        ((entries[I] = FrameEntry{ids[I], block + L::offsets[I], f}), ...);
      }
#else
      ((entries[I] = FrameEntry{ids[I], block + L::offsets[I], f}), ...);
#endif
      // Owned values only for the values with a destructor.
      auto own = [&]<std::size_t J>() {
        if constexpr (L::has_destructor[J])
          f->owned[L::owned_slot[J]] = OwnedValue{block + L::offsets[J], L::destroys[J]};
      };
      (own.template operator()<I>(), ...);
    }
    (std::index_sequence_for<Ts...>{});
    f->owners[0] = base;
    return f;
  }
}

/// A call window's frame for one variable set to `T(std::forward<V>(value))` over `base` where
/// try_build_window_delta could not build it, by build_frame.
template <class T, class V>
[[gnu::noinline]] FrameData* build_window_frame(FrameData* base, VariableId id, V&& value) {
  Binding binding = forward_binding<T>(id, std::forward<V>(value));
  return build_frame(base, &binding, 1, true);
}
/// As above for a value a register can carry: it comes by value, constructed only on this rare
/// path, so that the fast path need not put it in memory to pass its address.
template <class T>
[[gnu::noinline]] FrameData* build_window_frame_by_value(FrameData* base, VariableId id, T value) {
  Binding binding = move_binding<T>(id, value);
  return build_frame(base, &binding, 1, true);
}
template <class T, class V>
[[gnu::always_inline]] inline FrameData* build_window_delta(FrameData* base, VariableId id,
                                                            V&& value) {
  if (FrameData* f = try_build_window_delta<T>(base, {id}, std::forward<V>(value))) [[likely]] {
    return f;
  }
  if constexpr (std::is_trivially_copyable_v<T> && std::move_constructible<T> &&
                sizeof(T) <= 2 * sizeof(void*)) {
    return build_window_frame_by_value<T>(base, id, T(std::forward<V>(value)));
  } else {
    return build_window_frame<T>(base, id, std::forward<V>(value));
  }
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

/// release_window_frame for a window's frame that may be try_build_window_delta<Ts...>'s (never
/// null: it binds at least one value): the common case destroys the values directly, by type, in
/// reverse order.
template <class... Ts>
inline void release_window_delta(FrameData* f) noexcept {
  using L = WindowDeltaLayout<Ts...>;
  if constexpr (L::fits) {
    // As release_window_frame, and typed_window: built by try_build_window_delta<Ts...> (the
    // window's frame is built for the same Ts...), so its layout and cache class are L's, it has
    // no owner but its parent, and its owned values are a Ts...; and not promoted, not entered.
    if (f->flags == (borrowed_parent | typed_window) &&
        f->holds.load(std::memory_order_acquire) == 1) [[likely]] {
      // Constants: the compiler drops the trivially destructible and calls the others directly.
      constexpr auto destroys = L::destroys;
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        // In reverse order, as destroy_block.
        ((destroys[L::count - 1 - I] != nullptr
              ? destroys[L::count - 1 - I](reinterpret_cast<unsigned char*>(f) +
                                           L::offsets[L::count - 1 - I])
              : void()),
         ...);
      }
      (std::index_sequence_for<Ts...>{});
      // A scope's close may run after a resumption, on another thread (see after_resume).
      give_window_block(after_resume<&frame_cache>(), f, L::block_class);
      return;
    }
  }
  release_window_frame(f);
}

}  // namespace ucm::detail
