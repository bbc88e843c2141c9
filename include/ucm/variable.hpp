// SPDX-License-Identifier: MIT
// ucm/variable.hpp: ContextVariable<T>, the key through which a context value is set and read.
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ucm/detail/frame_build.hpp"
#include "ucm/detail/frame_layout.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/frame_window.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"
#include "ucm/names.hpp"

namespace ucm {

/// Thrown by `ContextVariable::update` when there is no value to update and `T` has no default
/// constructor to start from.
class unbound_variable : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

template <class T>
class ContextVariableScope;

namespace detail {
template <class T>
class VariableBound;

/// Whether `update(fn)` calls `fn(T&)` for its side effect rather than using its result.
template <class F, class T>
consteval bool mutates_in_place() {
  if constexpr (std::invocable<F&, T&>) {
    return std::is_void_v<std::invoke_result_t<F&, T&>>;
  } else {
    return false;
  }
}

/// What `update(fn)` takes: `fn(T&)`, which changes the value in place, or a function whose
/// result converts to T.
template <class F, class T>
concept updater = std::invocable<F&, T&> || std::is_convertible_v<std::invoke_result_t<F&, T&&>, T>;
}  // namespace detail

/// A key for one context value of type `T`. It holds no value itself: values live in frames,
/// and a frame's values can be read only through their variable. Each variable has an identity
/// drawn once from a process-wide counter, so a variable created later never sees values stored
/// under an earlier one. Neither copyable nor movable: define it once (usually `inline` at
/// namespace scope) and share it by reference.
///
///     inline ucm::ContextVariable<std::string> request_id;
///     request_id.run("r-42", handle_request);            // a call window
///     const std::string* id = request_id.get();          // anywhere below; nullptr outside
///
/// Values may be move-only; propagation never copies a value.
template <class T>
class ContextVariable {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
                    !std::is_array_v<T>,
                "ContextVariable<T> needs a non-const, non-array object type");
  static_assert(std::is_nothrow_destructible_v<T>,
                "context values must not throw from destructors");

 public:
  using value_type = T;

  /// A variable with no default: `get()` is nullptr outside any binding.
  ContextVariable() noexcept : id_(detail::next_variable_id()) {}

  /// A variable whose `get()` falls back to `default_value` outside any binding (the "default
  /// singleton" of a migration from process-global state). The default is never in a frame.
  explicit ContextVariable(T default_value) requires std::move_constructible<T>
      : id_(detail::next_variable_id()),
        default_(std::make_unique<const T>(std::move(default_value))) {}

  /// A variable whose default is constructed in place from `args...`.
  template <class... Args>
  requires std::constructible_from<T, Args...>
  explicit ContextVariable(std::in_place_t, Args&&... args)
      : id_(detail::next_variable_id()),
        default_(std::make_unique<const T>(std::forward<Args>(args)...)) {}

  /// A named variable (`ucm::named`), for diagnostics: `ContextVariable<T> v{ucm::named("id")}`,
  /// with a default `ucm::named("retries", 3)`, with its value shown by `ucm::describe`
  /// `ucm::named("id").expose()` or `.expose(formatter)`. The name is registered in a
  /// process-wide registry (one small allocation and a lock, here and in the destructor); it
  /// changes nothing else: the identity is still the variable's own.
  template <class F>
  requires detail::formats<F, T>
  explicit ContextVariable(VariableName<detail::NoDefault, F> name)
      : id_(detail::next_variable_id()),
        name_(detail::register_name<T>(id_, name.name_, std::move(name.format_))) {}

  /// As above, with a default value.
  template <class D, class F>
  requires std::constructible_from<T, D&&> && detail::formats<F, T>
  explicit ContextVariable(VariableName<D, F> name)
      : id_(detail::next_variable_id()),
        default_(std::make_unique<const T>(std::move(name.default_))),
        name_(detail::register_name<T>(id_, name.name_, std::move(name.format_))) {}

  ContextVariable(const ContextVariable&) = delete;
  ContextVariable& operator=(const ContextVariable&) = delete;

  ~ContextVariable() {
    if (name_ != nullptr) detail::unregister_name(id_);
  }

  /// The name given with `ucm::named`, or empty.
  [[nodiscard]] std::string_view name() const noexcept {
    return name_ == nullptr ? std::string_view() : std::string_view(name_->name());
  }

  // ---- reading ------------------------------------------------------------------------------

  /// The value in `current`; else the default; else nullptr. Never the value in `inherited`: what
  /// a child left on the return path is read through `get_inherited()`, so a child's values never
  /// appear in its parent's `get()`. Valid at least until the window that set it ends. One small
  /// lookup, no allocation, no lock.
  [[nodiscard]] const T* get() const noexcept {
    // Two hops: the thread's `current` frame, then this variable's value in it.
    detail::ThreadContext& t = detail::thread_context();
    if (const void* v = detail::lookup(t.slots.current, id_, t.cache))
      return static_cast<const T*>(v);
    return default_.get();
  }

  /// The value only if it was bound (by a call window or `enter`) since the running continuation
  /// began: it is not the very value object the continuation started from (identity, not
  /// equality). This is the child-of relation; nullptr otherwise.
  [[nodiscard]] const T* get_active() const noexcept {
    const detail::Slots& s = detail::slots();
    const detail::FrameEntry* mine = detail::find_entry(s.current, id_);
    if (mine == nullptr || mine->value == nullptr) return nullptr;
    const detail::FrameEntry* started = detail::find_entry(s.base, id_);
    if (started != nullptr && started->value == mine->value) return nullptr;
    return static_cast<const T*>(mine->value);
  }

  /// The value in `inherited` only: what flowed into the running continuation (follows-from).
  [[nodiscard]] const T* get_inherited() const noexcept {
    const detail::FrameEntry* e = detail::find_entry(detail::slots().inherited, id_);
    return e == nullptr ? nullptr : static_cast<const T*>(e->value);
  }

  /// A copy of `*get()` (the default included), or `T(fallback)` when `get()` is nullptr.
  template <class U>
  requires std::copy_constructible<T> && std::constructible_from<T, U&&>
  [[nodiscard]] T value_or(U&& fallback) const {
    if (const T* v = get()) return *v;
    return T(std::forward<U>(fallback));
  }

  /// Whether `get()` would find a value other than the default.
  [[nodiscard]] bool is_bound() const noexcept {
    detail::ThreadContext& t = detail::thread_context();
    return detail::lookup(t.slots.current, id_, t.cache) != nullptr;
  }

  /// The default value, or nullptr.
  [[nodiscard]] const T* default_value() const noexcept { return default_.get(); }

  // ---- changing -----------------------------------------------------------------------------

  /// Runs `fn(args...)` in a call window where this variable is `T(std::forward<V>(value))`, and
  /// returns what `fn` returns. Restores the previous frame on exit, also on exception. One
  /// allocation (the new frame, with the value stored inline).
  // NOTE: always inlined (only the window is: `fn` is called as the compiler decides), so that
  // the window's state stays in registers and its value is built in place. Inlined into a
  // coroutine body, it may run after a resumption, hence slots_after_resume (see after_resume).
  template <class V, class F, class... Args>
  requires std::constructible_from<T, V&&> && std::invocable<F, Args...>
  [[gnu::always_inline]] decltype(auto) run(V&& value, F&& fn, Args&&... args) const {
    detail::Slots& s = detail::slots_after_resume();
    detail::SavedSlots saved;
    detail::ValueWindow<T> window(
        s, detail::build_window_delta<T>(s.current, id_, std::forward<V>(value)), saved);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Sets this variable for the rest of the enclosing window (AsyncLocalStorage `enterWith`):
  /// the window's exit undoes it. At the top of a thread it lasts until `ucm::clear()` or the
  /// thread exits. Values bound this way are active (`get_active`).
  template <class V>
  requires std::constructible_from<T, V&&>
  void enter(V&& value) const { detail::enter_frame(make_frame(std::forward<V>(value))); }

  /// Applies `fn` to a copy of the current value and `enter`s the result, for record-style
  /// values: `user.update([](User& u) { u.role = "admin"; })` or `counter.update([](int n) {
  /// return n + 1; })`. The copy starts from `*get()` (the default included), else from `T{}`;
  /// with neither, throws `ucm::unbound_variable`. Frames stay immutable: code that captured the
  /// context before the update keeps the old value.
  template <class F>
  requires std::copy_constructible<T> && detail::updater<F, T>
  void update(F&& fn) const {
    std::optional<T> copy;
    if (const T* v = get()) {
      copy.emplace(*v);
    } else if constexpr (std::default_initializable<T>) {
      copy.emplace();
    } else {
      throw unbound_variable("ucm: update() of an unbound variable without a default");
    }
    if constexpr (detail::mutates_in_place<F, T>()) {
      std::invoke(fn, *copy);
      enter(std::move(*copy));
    } else {
      enter(T(std::invoke(fn, std::move(*copy))));
    }
  }

  /// Captures only this variable's current binding (what `get()` finds, ignoring the default).
  /// The returned callable runs `fn` in a call window with just that binding restored (or the
  /// variable unbound, if it was) on top of whatever the running thread has: the RFC's instance
  /// bind, for skipping internal paths. Each call allocates one frame.
  template <class F>
  requires detail::bindable<F>
  [[nodiscard]] detail::VariableBound<std::decay_t<F>> bind(F&& fn) const {
    const detail::FrameEntry* e = detail::find_entry(detail::slots().current, id_);
    const void* value = e == nullptr ? nullptr : e->value;
    detail::FrameData* owner = value == nullptr ? nullptr : e->owner;
    detail::retain_values(owner);  // the value only, not the frames behind it
    return detail::VariableBound<std::decay_t<F>>(id_, value, owner, std::forward<F>(fn));
  }

 private:
  friend struct detail::VariableAccess;
  template <class U>
  friend class ContextVariableScope;

  template <class V>
  detail::FrameData* make_frame(V&& value) const {
    detail::Binding binding = detail::forward_binding<T>(id_, std::forward<V>(value));
    return detail::build_frame(detail::slots().current, &binding, 1);
  }

  detail::VariableId id_;
  // NOTE: on the heap rather than in a std::optional, which g++ 12 -O2 reports as possibly
  // uninitialised when a variable without a default is destroyed (-Wmaybe-uninitialized, GCC bug
  // 80635) in users' code built with warnings as errors. One allocation per default.
  std::unique_ptr<const T> default_;
  const detail::VariableInfo* name_ = nullptr;  // owned by the name registry; null: unnamed
};

namespace detail {

/// The callable `ContextVariable::bind` returns.
template <class F>
class VariableBound {
 public:
  template <class G>
  VariableBound(VariableId id, const void* value, FrameData* owner, G&& fn)
      : id_(id), value_(value), owner_(owner), fn_(std::forward<G>(fn)) {}
  VariableBound(const VariableBound& other)
      : id_(other.id_), value_(other.value_), owner_(other.owner_), fn_(other.fn_) {
    retain_values(owner_);
  }
  VariableBound(VariableBound&& other) noexcept(std::is_nothrow_move_constructible_v<F>)
      : id_(other.id_),
        value_(std::exchange(other.value_, nullptr)),  // moved from: runs with it unbound
        owner_(std::exchange(other.owner_, nullptr)),
        fn_(std::move(other.fn_)) {}
  VariableBound& operator=(const VariableBound&) = delete;
  VariableBound& operator=(VariableBound&&) = delete;
  ~VariableBound() { release_values(owner_); }

  template <class... Args>
  requires std::invocable<F&, Args...>
  decltype(auto) operator()(Args&&... args) & {
    CallWindow window(restored(), true);
    return std::invoke(fn_, std::forward<Args>(args)...);
  }

  template <class... Args>
  requires std::invocable<const F&, Args...>
  decltype(auto) operator()(Args&&... args) const& {
    CallWindow window(restored(), true);
    return std::invoke(fn_, std::forward<Args>(args)...);
  }

  template <class... Args>
  requires std::invocable<F&&, Args...>
  decltype(auto) operator()(Args&&... args) && {
    CallWindow window(restored(), true);
    return std::invoke(std::move(fn_), std::forward<Args>(args)...);
  }

 private:
  FrameData* restored() const {
    Binding binding;
    binding.id = id_;
    if (value_ != nullptr) {
      binding.kind = Binding::Kind::borrow;
      binding.value = value_;
      binding.owner = owner_;
    }
    return build_frame(slots().current, &binding, 1, true);
  }

  VariableId id_;
  const void* value_;
  FrameData* owner_;
  F fn_;
};

}  // namespace detail
}  // namespace ucm
