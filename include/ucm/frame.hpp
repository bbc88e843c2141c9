// SPDX-License-Identifier: MIT
// ucm/frame.hpp: ContextFrame, the immutable snapshot of every variable's value, and
// ContextFrame::bind, the way work scheduled now runs later with the context of now.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#include "ucm/detail/frame_build.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/slots.hpp"

namespace ucm {

template <class T>
class ContextVariable;

namespace detail {
/// Room for the one non-owning ContextFrame that `inherited_all()` shows outside a merge.
UCM_SHARED_STATE inline void* inherited_view() noexcept {
  alignas(void*) static thread_local constinit unsigned char buffer[sizeof(void*)]{};
  return buffer;
}

/// Reaches a variable's id without making it public: values are readable only through the key.
struct VariableAccess {
  template <class T>
  static VariableId id(const ContextVariable<T>& variable) noexcept {
    return variable.id_;
  }
};

template <class F>
class BoundContinuation;
struct FrameAccess;

/// What `ContextFrame::bind` and `ContextVariable::bind` accept: something that can be stored
/// (moved or copied into the binder) and may be callable with some arguments. The arguments are
/// known only at the call, so this checks the kind: a class type (a lambda, generic ones
/// included, or any type with an `operator()`), a pointer to a function or a pointer to a member.
/// Scalars, object pointers, `void*` and arrays (which decay to object pointers) cannot be called
/// and are rejected at the bind, not at the call.
template <class F>
concept bindable = std::constructible_from<std::decay_t<F>, F> &&
    (std::is_class_v<std::decay_t<F>> || std::is_union_v<std::decay_t<F>> ||
     std::is_member_pointer_v<std::decay_t<F>> ||
     (std::is_pointer_v<std::decay_t<F>> &&
      std::is_function_v<std::remove_pointer_t<std::decay_t<F>>>));
}  // namespace detail

/// Tag selecting a call window in `ContextFrameScope(ucm::call_window, frame)`.
struct call_window_t {
  explicit call_window_t() = default;
};
/// Selects a call window: the frame becomes `current` only, as with `frame.run`.
inline constexpr call_window_t call_window{};

/// An immutable, reference-counted map from variables to values: a snapshot of the context.
///
/// Copying a frame is one reference-count increment; a frame never changes after it is built and
/// may be shared freely between threads. A change (`with`) builds a new frame in one allocation
/// that shares the old frame's values. The default-constructed frame is the empty frame:
/// `ContextFrame{}.inherit(fn)` runs `fn` with no context at all.
///
///     auto frame = ucm::ContextFrame::current();          // capture: no atomic, usually
///     pool.post([frame] { frame.inherit(handle); });       // restore later, on any thread
class ContextFrame {
 public:
  /// The empty frame.
  constexpr ContextFrame() noexcept = default;
  ContextFrame(const ContextFrame& other) noexcept : data_(other.data_) {
    detail::retain_handle(data_);
  }
  ContextFrame(ContextFrame&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  ContextFrame& operator=(const ContextFrame& other) noexcept {
    ContextFrame(other).swap(*this);
    return *this;
  }
  ContextFrame& operator=(ContextFrame&& other) noexcept {
    ContextFrame(std::move(other)).swap(*this);
    return *this;
  }
  ~ContextFrame() { detail::release_handle(data_); }

  void swap(ContextFrame& other) noexcept { std::swap(data_, other.data_); }

  /// The effective frame of this thread: every visible value. Usually no atomic operation: the
  /// thread keeps references to its current frame in reserve (see detail::ThreadContext).
  [[nodiscard]] static ContextFrame current() noexcept {
    detail::ThreadContext& t = detail::thread_context_after_resume();
    detail::FrameData* const f = t.slots.current;
    if (detail::take_reserved(t.reserved, f)) [[likely]]
      return ContextFrame(unowned, f);
    return capture_unreserved(f);  // a tail call: the fast path needs no stack frame
  }

  /// The frame that flowed into the running continuation (follows-from). After a coroutine's
  /// `co_await` of a Task it is the child's final frame; after `when_all`, the first branch's.
  [[nodiscard]] static ContextFrame inherited() noexcept {
    return borrow(detail::slots().inherited);
  }

  /// Every frame that flowed into the running continuation: one per branch after a `when_all`
  /// (in argument order), otherwise exactly `inherited()`. Never empty. The span is valid until
  /// this thread's slots next change (a window opens or closes, a coroutine awaits); copy the
  /// frames out to keep them.
  [[nodiscard]] static std::span<const ContextFrame> inherited_all() noexcept {
    detail::Slots& s = detail::slots();
    if (s.merged != nullptr) return {s.merged->frames, s.merged->count};
    // A non-owning ContextFrame object over the slot: never destroyed, so it takes no reference.
    auto* view = ::new (detail::inherited_view()) ContextFrame(unowned, s.inherited);
    return {view, 1};
  }

  /// The value `variable` has in this frame, or nullptr (defaults are not part of frames).
  /// Valid while this frame, or any frame sharing the value, is alive.
  template <class T>
  [[nodiscard]] const T* get(const ContextVariable<T>& variable) const noexcept {
    const detail::FrameEntry* e = detail::find_entry(data_, detail::VariableAccess::id(variable));
    return e == nullptr ? nullptr : static_cast<const T*>(e->value);
  }

  /// Number of variables bound in this frame.
  [[nodiscard]] std::size_t size() const noexcept { return detail::count_bound(data_); }
  /// Whether no variable is bound in this frame.
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  /// Whether both handles are the same frame. Frames built separately are unequal even with
  /// equal values (T needs no `==`); all frames with no entries at all are equal. A frame that
  /// only unbinds variables has size() 0 but is not the empty frame: running it hides values.
  friend bool operator==(const ContextFrame& a, const ContextFrame& b) noexcept {
    return a.data_ == b.data_;
  }

  /// A new frame: this one plus `variable` bound to `T(std::forward<V>(value))`. This frame is
  /// unchanged. One allocation.
  template <class T, class V>
  requires std::constructible_from<T, V&&>
  [[nodiscard]] ContextFrame with(const ContextVariable<T>& variable, V&& value) const {
    detail::Binding binding =
        detail::forward_binding<T>(detail::VariableAccess::id(variable), std::forward<V>(value));
    return adopt(detail::build_frame(data_, &binding, 1));
  }

  /// Runs `fn(args...)` in a call window of this frame: it becomes `current`; `inherited` and the
  /// active/inherited distinction are unchanged. Returns what `fn` returns; restores on exit,
  /// also on exception. No allocation, no reference-count traffic; this frame must outlive the
  /// call.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  decltype(auto) run(F&& fn, Args&&... args) const {
    detail::CallWindow window(data_, false);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Runs `fn(args...)` in a continuation window of this frame: `current`, `inherited` and the
  /// base all become this frame, so `get_active()` sees nothing until a call window binds a
  /// value. Restores all three on exit, also on exception. No allocation, no reference-count
  /// traffic; this frame must outlive the call.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  decltype(auto) inherit(F&& fn, Args&&... args) const {
    detail::ContinuationWindow window(data_);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Captures `current()` now and returns a callable that runs `fn` in a continuation window of
  /// it, forwarding arguments and the return value. Capture costs one increment; each call
  /// costs a few pointer swaps. Copyable when `fn` is. Calling it as an rvalue consumes it.
  /// Where ucm/asio.hpp or ucm/boost_asio.hpp is included, the callable keeps `fn`'s associated
  /// executor, allocator and cancellation slot (`bind(asio::bind_executor(strand, h))` still
  /// completes on the strand). `fn` must be something that can be called (see detail::bindable): a
  /// scalar or an object pointer does not compile here.
  template <class F>
  requires detail::bindable<F>
  [[nodiscard]] static detail::BoundContinuation<std::decay_t<F>> bind(F&& fn) {
    return detail::BoundContinuation<std::decay_t<F>>(current(), std::forward<F>(fn));
  }

 private:
  template <class T>
  friend class ContextVariable;
  friend class ContextFrameScope;
  friend struct detail::FrameAccess;

  struct unowned_t {};
  static constexpr unowned_t unowned{};
  constexpr ContextFrame(unowned_t, detail::FrameData* data) noexcept : data_(data) {}

  /// Takes over a reference the caller owns.
  static ContextFrame adopt(detail::FrameData* data) noexcept {
    return ContextFrame(unowned, data);
  }
  /// current() where the reservation could not lend a reference.
  [[gnu::noinline]] static ContextFrame capture_unreserved(detail::FrameData* data) noexcept {
    detail::reserve_current(data);
    return ContextFrame(unowned, data);
  }
  /// Takes a new reference.
  static ContextFrame borrow(detail::FrameData* data) noexcept {
    detail::retain(data);
    return ContextFrame(unowned, data);
  }

  detail::FrameData* data_ = nullptr;
};
static_assert(sizeof(ContextFrame) == sizeof(void*), "a frame handle is one pointer");

namespace detail {

/// Internal access to a frame's block, for the library's own windows and integrations.
struct FrameAccess {
  static FrameData* data(const ContextFrame& frame) noexcept { return frame.data_; }
  static FrameData* release_data(ContextFrame& frame) noexcept {
    return std::exchange(frame.data_, nullptr);
  }
  static ContextFrame adopt(FrameData* data) noexcept { return ContextFrame::adopt(data); }
  static ContextFrame borrow(FrameData* data) noexcept { return ContextFrame::borrow(data); }
};

}  // namespace detail
}  // namespace ucm

// ContextFrame::bind's result, which holds a ContextFrame.
#include "ucm/detail/bound_continuation.hpp"
