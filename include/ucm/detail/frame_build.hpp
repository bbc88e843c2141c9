// SPDX-License-Identifier: MIT
// ucm/detail/frame_build.hpp: how a frame is built from a parent plus a few changes (bindings):
// a delta over the parent, or a complete frame. Nothing here is public API.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "ucm/detail/frame_cache.hpp"
#include "ucm/detail/frame_layout.hpp"
#include "ucm/detail/frame_lifetime.hpp"

namespace ucm::detail {

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
  // owners[] holds FrameData*: NOLINTNEXTLINE(bugprone-sizeof-expression)
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
  f->serial.store(next_serial(frame_cache()), std::memory_order_relaxed);
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
  // owners[] holds FrameData*: NOLINTNEXTLINE(bugprone-sizeof-expression)
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
        // Hidden by a later entry of its own frame (a frame with no index may repeat a variable).
        if (g->mask == linear_mask && find_own(g, own[i].id) != static_cast<std::ptrdiff_t>(i))
          continue;
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
