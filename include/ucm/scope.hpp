// SPDX-License-Identifier: MIT
// ucm/scope.hpp: RAII windows (ContextVariableScope, ContextFrameScope) and ucm::clear().
#pragma once

#include <concepts>
#include <utility>

#include "ucm/detail/frame_window.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"
#include "ucm/variable.hpp"

namespace ucm {

/// Sets a variable for the rest of a block: the RAII form of `ContextVariable::run`, a call
/// window. Restores the previous frame on destruction. Neither copyable nor movable. Correct
/// across a `co_await` in a `ucm::Task` (the coroutine's slots follow it to whatever thread
/// resumes it). One allocation.
///
///     ucm::ContextVariableScope scope(request_id, "r-42");
///     handle();                                        // sees "r-42"
template <class T>
class [[nodiscard]] ContextVariableScope {
 public:
  // NOTE: always inlined, as var.run's window: out of line, the call and its register saves
  // cost a sixth of the window. Inlined into a coroutine body, it may run after a resumption,
  // so it reaches the slots as a destructor does (see after_resume), once.
  template <class V>
  [[gnu::always_inline]] ContextVariableScope(const ContextVariable<T>& variable,
                                              V&& value) requires std::constructible_from<T, V&&>
      : ContextVariableScope(detail::slots_after_resume(), variable, std::forward<V>(value)) {}
  ContextVariableScope(const ContextVariableScope&) = delete;
  ContextVariableScope& operator=(const ContextVariableScope&) = delete;
  ~ContextVariableScope() {
    detail::close_window<&detail::release_window_delta<T>>(detail::slots_after_resume(), saved_,
                                                           frame_, nullptr);
  }

 private:
  template <class V>
  [[gnu::always_inline]] ContextVariableScope(detail::Slots& s, const ContextVariable<T>& variable,
                                              V&& value)
      : frame_(detail::build_window_delta<T>(s.current, variable.id_, std::forward<V>(value))) {
    detail::open_call(s, saved_, frame_);
  }

  detail::FrameData* frame_;
  detail::SavedSlots saved_;
};

template <class T, class V>
ContextVariableScope(const ContextVariable<T>&, V&&) -> ContextVariableScope<T>;

/// Makes a captured frame the context for the rest of a block.
///
/// `ContextFrameScope s(frame);` opens a continuation window (as `frame.inherit`): `current`,
/// `inherited` and the base all become `frame`. `ContextFrameScope s(ucm::call_window, frame);`
/// opens a call window (as `frame.run`): only `current` changes. All that changed is restored on
/// destruction. The scope holds its own reference to the frame (pass an rvalue to avoid the
/// increment). Neither copyable nor movable.
class [[nodiscard]] ContextFrameScope {
 public:
  explicit ContextFrameScope(ContextFrame frame) noexcept : frame_(std::move(frame)) {
    detail::open_continuation(detail::slots(), saved_, detail::FrameAccess::data(frame_));
  }

  ContextFrameScope(call_window_t, ContextFrame frame) noexcept : frame_(std::move(frame)) {
    detail::open_call(detail::slots(), saved_, detail::FrameAccess::data(frame_));
  }

  ContextFrameScope(const ContextFrameScope&) = delete;
  ContextFrameScope& operator=(const ContextFrameScope&) = delete;

  ~ContextFrameScope() {
    detail::close_window(detail::slots_after_resume(), saved_,
                         detail::FrameAccess::release_data(frame_), nullptr);
  }

 private:
  ContextFrame frame_;
  detail::SavedSlots saved_;
};

/// Resets this thread's slots to the empty frame (and releases what `enter` set in the innermost
/// window, and what a return path left there). Windows still open restore their own saved frames
/// when they close.
inline void clear() noexcept {
  detail::Slots& s = detail::slots();
  detail::FrameData* const owned = s.owned;
  const detail::Returned returned = s.returned;
  s.current = nullptr;
  s.inherited = nullptr;
  s.base = nullptr;
  s.owned = nullptr;
  s.merged = nullptr;
  s.returned = 0;
  detail::settle_reservation();
  detail::release(owned);
  detail::release_returned(returned);
}

}  // namespace ucm
