// SPDX-License-Identifier: MIT
// ucm/detail/frame_data.hpp: the immutable, reference-counted block behind a ContextFrame,
// how it is built from a parent plus a few changes, how a value is found in it, and how it
// is released. Nothing here is public API.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace ucm::detail {

/// A variable's identity: drawn once from a process-wide counter and never reused, so a
/// variable created later never sees values stored under an earlier one at the same address.
using VariableId = std::uint64_t;

inline VariableId next_variable_id() noexcept {
  // Relaxed: the id only has to be unique; nothing is published through it.
  static std::atomic<VariableId> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// A value constructed inside a frame's block, destroyed when the frame dies.
struct OwnedValue {
  void* object;
  void (*destroy)(void*) noexcept;
};

/// The block behind a ContextFrame. One allocation holds, in order:
///   FrameData header
///   VariableId ids[size]            sorted ascending: what `find` scans
///   const void* values[size]        nullptr marks an explicit unbinding (a "tombstone")
///   FrameData* entry_owners[size]   the frame whose block holds each value (this one, or an
///   ancestor) FrameData* owners[owner_capacity]  other frames kept alive for the values borrowed
///   from them OwnedValue owned[owned_count]   values constructed in this block value storage
/// A child frame copies its parent's (id, value, owner) triples and takes one reference on each
/// distinct owner, never on the parent itself, so a chain of `enter`s that overwrite the same
/// variable keeps only the frames whose values are still visible, not the whole history.
struct alignas(16) FrameData {
  std::atomic<std::uint32_t> refs;
  std::uint32_t size;         // entries, tombstones included
  std::uint32_t bound;        // entries holding a value
  std::uint32_t owner_count;  // entries of owners[] in use
  std::uint32_t owned_count;  // entries of owned[]
  std::uint32_t alignment;    // what the block was allocated with
  std::size_t bytes;          // size of the block
  FrameData** owners;
  OwnedValue* owned;
  FrameData* next_release;  // intrusive stack used only while releasing

  VariableId* ids() noexcept { return reinterpret_cast<VariableId*>(this + 1); }
  const VariableId* ids() const noexcept { return reinterpret_cast<const VariableId*>(this + 1); }
  const void** values() noexcept { return reinterpret_cast<const void**>(ids() + size); }
  const void* const* values() const noexcept {
    return reinterpret_cast<const void* const*>(ids() + size);
  }
  FrameData** entry_owners() noexcept {
    return reinterpret_cast<FrameData**>(reinterpret_cast<unsigned char*>(this + 1) + owners_at());
  }
  FrameData* const* entry_owners() const noexcept {
    return reinterpret_cast<FrameData* const*>(reinterpret_cast<const unsigned char*>(this + 1) +
                                               owners_at());
  }
  std::size_t owners_at() const noexcept {
    return std::size_t{size} * (sizeof(VariableId) + sizeof(void*));
  }
};
static_assert(sizeof(FrameData) == 64, "the frame header is one cache line");
static_assert(alignof(FrameData) >= alignof(VariableId));

/// Where a variable's entry is in `f`: a pointer to its value slot (whose value is nullptr for a
/// tombstone), or nullptr if `f` has no entry for it. Linear scan of the sorted ids for small
/// frames (one or two cache lines, branch-predictable), binary search beyond.
inline const void* const* find(const FrameData* f, VariableId id) noexcept {
  if (f == nullptr) return nullptr;
  const VariableId* ids = f->ids();
  const std::uint32_t n = f->size;
  if (n <= 16) {
    for (std::uint32_t i = 0; i < n; ++i) {
      if (ids[i] == id) return f->values() + i;
    }
    return nullptr;
  }
  const VariableId* it = std::lower_bound(ids, ids + n, id);
  if (it == ids + n || *it != id) return nullptr;
  return f->values() + (it - ids);
}

/// Index of `id` in `f`, or -1.
inline std::ptrdiff_t index_of(const FrameData* f, VariableId id) noexcept {
  const void* const* slot = find(f, id);
  return slot == nullptr ? -1 : slot - f->values();
}

inline void retain(FrameData* f) noexcept {
  // Relaxed: taking a new reference needs no ordering; the caller already holds one.
  if (f != nullptr) f->refs.fetch_add(1, std::memory_order_relaxed);
}

inline void free_block(FrameData* f) noexcept {
  const std::size_t alignment = f->alignment;
  f->~FrameData();
  // Unsized: clang does not declare sized deallocation without -fsized-deallocation.
  if (alignment > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    ::operator delete (static_cast<void*>(f), std::align_val_t{alignment});
  } else {
    ::operator delete(static_cast<void*>(f));
  }
}

/// Destroys `f` (whose count reached zero) and every owner whose count drops to zero with it.
/// Iterative, so releasing a long chain of frames cannot overflow the stack.
[[gnu::noinline]] inline void destroy_frames(FrameData* f) noexcept {
  f->next_release = nullptr;
  while (f != nullptr) {
    FrameData* next = f->next_release;
    for (std::uint32_t i = f->owned_count; i-- > 0;) f->owned[i].destroy(f->owned[i].object);
    for (std::uint32_t i = 0; i < f->owner_count; ++i) {
      FrameData* owner = f->owners[i];
      // acq_rel: the release half publishes our reads of the owner's values before the count
      // drops; the acquire half makes the last owner see every other thread's reads.
      if (owner->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        owner->next_release = next;
        next = owner;
      }
    }
    free_block(f);
    f = next;
  }
}

inline void release(FrameData* f) noexcept {
  if (f != nullptr && f->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) [[unlikely]] {
    destroy_frames(f);
  }
}

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
  void (*destroy)(void* object) noexcept = nullptr;
  void* source = nullptr;
  // borrow
  const void* value = nullptr;
  FrameData* owner = nullptr;
};

template <class T>
void destroy_value(void* object) noexcept {
  static_cast<T*>(object)->~T();
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
  b.destroy = &destroy_value<T>;
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
  b.destroy = &destroy_value<T>;
  b.source = const_cast<void*>(static_cast<const volatile void*>(std::addressof(source)));
  return b;
}

inline std::size_t align_up(std::size_t n, std::size_t alignment) noexcept {
  return (n + alignment - 1) & ~(alignment - 1);
}

/// Sorts `bindings` by id and drops all but the last binding of each id (a later change to the
/// same variable wins, as with repeated assignment). Returns the new count.
inline std::size_t normalize(Binding* bindings, std::size_t n) {
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
      bindings[out++] = bindings[i];
    }
    n = out;
  }
  return n;
}

/// Builds a new frame: `base` (may be null) with `bindings` applied. One allocation. Returns a
/// block with one reference owned by the caller, or nullptr when the result has no entries.
/// Strong guarantee: if a value's constructor or the allocation throws, nothing changes.
inline FrameData* build_frame(const FrameData* base, Binding* bindings, std::size_t count) {
  count = normalize(bindings, count);
  const std::uint32_t base_size = base == nullptr ? 0 : base->size;
  const VariableId* base_ids = base == nullptr ? nullptr : base->ids();

  // Pass 1: count entries and lay the block out.
  std::size_t size = 0;
  std::size_t owner_capacity = 0;
  std::size_t owned_count = 0;
  std::size_t storage = 0;
  std::size_t alignment = alignof(FrameData);
  {
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < base_size || j < count) {
      if (j == count || (i < base_size && base_ids[i] < bindings[j].id)) {
        if (base->values()[i] != nullptr) ++owner_capacity;
        ++i;
      } else {
        if (i < base_size && base_ids[i] == bindings[j].id) ++i;  // replaced
        const Binding& b = bindings[j];
        if (b.kind == Binding::Kind::construct) {
          ++owned_count;
          storage = align_up(storage, b.alignment) + b.size;
          alignment = std::max(alignment, b.alignment);
        } else if (b.kind == Binding::Kind::borrow && b.owner != nullptr) {
          ++owner_capacity;
        }
        ++j;
      }
      ++size;
    }
  }
  if (size == 0) return nullptr;
  if (size > std::numeric_limits<std::uint32_t>::max() / 2)
    throw std::length_error("ucm: frame too large");

  std::size_t offset =
      sizeof(FrameData) + size * (sizeof(VariableId) + sizeof(void*) + sizeof(FrameData*));
  const std::size_t owners_offset = offset;
  offset += owner_capacity * sizeof(FrameData*);
  offset = align_up(offset, alignof(OwnedValue));
  const std::size_t owned_offset = offset;
  offset += owned_count * sizeof(OwnedValue);
  const std::size_t storage_offset = align_up(offset, alignment);
  const std::size_t bytes = storage_offset + storage;

  void* memory = alignment > __STDCPP_DEFAULT_NEW_ALIGNMENT__
                     ? ::operator new (bytes, std::align_val_t{alignment})
                     : ::operator new(bytes);
  auto* f = ::new (memory) FrameData;
  f->refs.store(1, std::memory_order_relaxed);
  f->size = static_cast<std::uint32_t>(size);
  f->bound = 0;
  f->owner_count = 0;
  f->owned_count = 0;
  f->alignment = static_cast<std::uint32_t>(alignment);
  f->bytes = bytes;
  auto* block = static_cast<unsigned char*>(memory);
  f->owners = reinterpret_cast<FrameData**>(block + owners_offset);
  f->owned = reinterpret_cast<OwnedValue*>(block + owned_offset);
  f->next_release = nullptr;

  // Pass 2: fill entries and construct the new values.
  VariableId* ids = f->ids();
  const void** values = f->values();
  FrameData** entry_owners = f->entry_owners();
  std::size_t storage_at = 0;
  try {
    std::size_t i = 0;
    std::size_t j = 0;
    std::size_t k = 0;
    while (i < base_size || j < count) {
      if (j == count || (i < base_size && base_ids[i] < bindings[j].id)) {
        ids[k] = base_ids[i];
        values[k] = base->values()[i];
        entry_owners[k] = base->entry_owners()[i];
        ++i;
      } else {
        if (i < base_size && base_ids[i] == bindings[j].id) ++i;
        const Binding& b = bindings[j];
        ids[k] = b.id;
        switch (b.kind) {
          case Binding::Kind::construct: {
            storage_at = align_up(storage_at, b.alignment);
            void* object = block + storage_offset + storage_at;
            b.construct(object, b.source);
            storage_at += b.size;
            f->owned[f->owned_count++] = OwnedValue{object, b.destroy};
            values[k] = object;
            entry_owners[k] = f;
            break;
          }
          case Binding::Kind::borrow:
            values[k] = b.value;
            entry_owners[k] = b.value == nullptr ? nullptr : b.owner;
            break;
          case Binding::Kind::unbind:
            values[k] = nullptr;
            entry_owners[k] = nullptr;
            break;
        }
        ++j;
      }
      if (values[k] != nullptr) ++f->bound;
      ++k;
    }
  } catch (...) {
    for (std::uint32_t n = f->owned_count; n-- > 0;) f->owned[n].destroy(f->owned[n].object);
    free_block(f);
    throw;
  }

  // Pass 3: one reference on each distinct frame we borrow values from. Owners are few and
  // usually repeat in runs, so skip adjacent repeats first and dedupe the rest in place.
  std::size_t n_owners = 0;
  for (std::size_t k = 0; k < size; ++k) {
    FrameData* owner = entry_owners[k];
    if (owner == nullptr || owner == f) continue;
    if (n_owners != 0 && f->owners[n_owners - 1] == owner) continue;
    f->owners[n_owners++] = owner;
  }
  if (n_owners > 1) {
    if (n_owners <= 8) {
      std::size_t out = 0;
      for (std::size_t a = 0; a < n_owners; ++a) {
        bool seen = false;
        for (std::size_t b = 0; b < out; ++b) seen = seen || f->owners[b] == f->owners[a];
        if (!seen) f->owners[out++] = f->owners[a];
      }
      n_owners = out;
    } else {
      std::sort(f->owners, f->owners + n_owners);
      n_owners = static_cast<std::size_t>(std::unique(f->owners, f->owners + n_owners) - f->owners);
    }
  }
  f->owner_count = static_cast<std::uint32_t>(n_owners);
  for (std::size_t a = 0; a < n_owners; ++a) retain(f->owners[a]);
  return f;
}

}  // namespace ucm::detail
