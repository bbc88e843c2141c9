// SPDX-License-Identifier: MIT
// ucm/with.hpp: ucm::with(a, va).with(b, vb): set several variables with one new frame.
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ucm/detail/frame_build.hpp"
#include "ucm/detail/frame_window.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"
#include "ucm/variable.hpp"

namespace ucm {

namespace detail {
template <class T>
struct PendingValue {
  VariableId id;  // the variable's: all a frame needs of it
  T value;
};

/// Whether every type of a set of bindings can be copied (to use the set more than once).
template <class... Ts>
concept all_copy_constructible = (std::copy_constructible<Ts> && ...);

/// A call window's frame setting `pending` over `base` where try_build_window_delta could not
/// build it, by build_frame. The values come by value, so that the caller's set of bindings,
/// which the fast path reads only in registers, need not be written to memory for this rare
/// call.
template <class... Ts>
[[gnu::noinline]] FrameData* build_window_fallback(FrameData* base, PendingValue<Ts>... pending) {
  std::array<Binding, sizeof...(Ts)> bindings{move_binding<Ts>(pending.id, pending.value)...};
  return build_frame(base, bindings.data(), bindings.size(), true);
}
}  // namespace detail

/// A set of bindings to apply together (the RFC's `runAll`): `run`, `enter` and `frame` build
/// **one** frame, with one allocation, however many variables are set. Made by `ucm::with`; the
/// values are stored in it until then. If the same variable appears twice, the later value wins.
///
///     ucm::with(request_id, "r-42").with(user, alice).run(handle, request);
template <class... Ts>
class [[nodiscard]] With {
 public:
  explicit With(detail::PendingValue<Ts>&&... pending) : pending_(std::move(pending)...) {}

  /// Adds one more binding.
  template <class U, class V>
  requires std::constructible_from<U, V&&> && std::move_constructible<U>
  [[nodiscard]] With<Ts..., U> with(const ContextVariable<U>& variable, V&& value) && {
    return std::apply(
        [&](detail::PendingValue<Ts>&... pending) {
          return With<Ts..., U>(std::move(pending)...,
                                detail::PendingValue<U>{detail::VariableAccess::id(variable),
                                                        U(std::forward<V>(value))});
        },
        pending_);
  }

  /// The frame `run` would use: `ContextFrame::current()` plus every binding. Consumes the
  /// stored values.
  [[nodiscard]] ContextFrame frame() && {
    return detail::FrameAccess::adopt(build(detail::slots().current, std::true_type{}));
  }
  /// As above, copying the stored values so the set can be used again.
  [[nodiscard]] ContextFrame frame() const& requires detail::all_copy_constructible<Ts...> {
    return detail::FrameAccess::adopt(build(detail::slots().current, std::false_type{}));
  }

  /// Runs `fn(args...)` in one call window with every binding set; returns what `fn` returns.
  /// Always inlined, as ContextVariable::run.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  [[gnu::always_inline]] decltype(auto) run(F&& fn, Args&&... args) && {
    detail::Slots& s = detail::slots_after_resume();  // see ContextVariable::run
    detail::SavedSlots saved;
    detail::ValueWindow<Ts...> window(s, window_frame(s.current, std::true_type{}), saved);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
  requires std::invocable<F, Args...> && detail::all_copy_constructible<Ts...>
  [[gnu::always_inline]] decltype(auto) run(F&& fn, Args&&... args) const& {
    detail::Slots& s = detail::slots_after_resume();
    detail::SavedSlots saved;
    detail::ValueWindow<Ts...> window(s, window_frame(s.current, std::false_type{}), saved);
    return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Sets every binding for the rest of the enclosing window, as `ContextVariable::enter`.
  void enter() && { detail::enter_frame(build(detail::slots().current, std::true_type{})); }
  void enter() const& requires detail::all_copy_constructible<Ts...> {
    detail::enter_frame(build(detail::slots().current, std::false_type{}));
  }

 private:
  template <class... Us>
  friend class With;

  /// The frame of a call window over `base` setting every binding: built inline when it can be
  /// (see detail::try_build_window_delta), else by build.
  template <bool Move>
  detail::FrameData* window_frame(detail::FrameData* base, std::bool_constant<Move>) const {
    detail::FrameData* const f = std::apply(
        [&](const detail::PendingValue<Ts>&... pending) {
          return detail::try_build_window_delta<Ts...>(base, {pending.id...},
                                                       source<Move>(pending)...);
        },
        pending_);
    if (f != nullptr) [[likely]]
      return f;
    return std::apply(
        [&](const detail::PendingValue<Ts>&... pending) {
          return detail::build_window_fallback<Ts...>(
              base, detail::PendingValue<Ts>{pending.id, source<Move>(pending)}...);
        },
        pending_);
  }

  /// What a binding's value is constructed from: the stored value, moved from when the set is
  /// consumed (an rvalue-qualified member: moving out of our own tuple is fine), else copied.
  template <bool Move, class T>
  static decltype(auto) source(const detail::PendingValue<T>& pending) noexcept {
    if constexpr (Move) {
      return std::move(const_cast<T&>(pending.value));
    } else {
      return (pending.value);
    }
  }

  template <bool Move>
  detail::FrameData* build(detail::FrameData* base, std::bool_constant<Move>) const {
    std::array<detail::Binding, sizeof...(Ts)> bindings;
    std::size_t i = 0;
    std::apply(
        [&](const detail::PendingValue<Ts>&... pending) {
          ((bindings[i++] = binding_for<Move>(pending)), ...);
        },
        pending_);
    return detail::build_frame(base, bindings.data(), bindings.size());
  }

  template <bool Move, class T>
  static detail::Binding binding_for(const detail::PendingValue<T>& pending) noexcept {
    const detail::VariableId id = pending.id;
    // Moving out of a `const&` view of our own tuple is fine: this path is reached only through
    // an rvalue-qualified member, which consumes the set.
    if constexpr (Move) {
      return detail::move_binding<T>(id, const_cast<T&>(pending.value));
    } else {
      return detail::forward_binding<T>(id, pending.value);
    }
  }

  std::tuple<detail::PendingValue<Ts>...> pending_;
};

/// Starts a set of bindings: `ucm::with(a, va).with(b, vb).run(fn)`.
template <class T, class V>
requires std::constructible_from<T, V&&> && std::move_constructible<T>
[[nodiscard]] With<T> with(const ContextVariable<T>& variable, V&& value) {
  return With<T>(
      detail::PendingValue<T>{detail::VariableAccess::id(variable), T(std::forward<V>(value))});
}

}  // namespace ucm
