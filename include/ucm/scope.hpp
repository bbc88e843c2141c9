// SPDX-License-Identifier: MIT
// ucm/scope.hpp: RAII windows (ContextVariableScope, ContextFrameScope) and ucm::clear().
#pragma once

#include <concepts>
#include <utility>

#include "ucm/detail/frame_data.hpp"
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
  template <class V>
  requires std::constructible_from<T, V&&> ContextVariableScope(const ContextVariable<T>& variable,
                                                                V&& value)
      : frame_(variable.make_frame(std::forward<V>(value))),
        saved_(detail::enter_call(detail::slots(), frame_)) {}
  ContextVariableScope(const ContextVariableScope&) = delete;
  ContextVariableScope& operator=(const ContextVariableScope&) = delete;
  ~ContextVariableScope() { detail::exit_call(detail::slots_after_resume(), saved_, frame_); }

 private:
  detail::FrameData* frame_;
  detail::SavedCall saved_;
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
  explicit ContextFrameScope(ContextFrame frame) noexcept
      : frame_(std::move(frame)),
        saved_(detail::enter_continuation(detail::slots(), detail::FrameAccess::data(frame_))),
        call_(false) {}

  ContextFrameScope(call_window_t, ContextFrame frame) noexcept
      : frame_(std::move(frame)), saved_(), call_(true) {
    const detail::SavedCall saved =
        detail::enter_call(detail::slots(), detail::FrameAccess::data(frame_));
    saved_.current = saved.current;
    saved_.owned = saved.owned;
    saved_.depth = saved.depth;
  }

  ContextFrameScope(const ContextFrameScope&) = delete;
  ContextFrameScope& operator=(const ContextFrameScope&) = delete;

  ~ContextFrameScope() {
    detail::Slots& s = detail::slots_after_resume();
    detail::FrameData* own = detail::FrameAccess::release_data(frame_);
    if (call_) {
      detail::exit_call(s, detail::SavedCall{saved_.current, saved_.owned, saved_.depth}, own);
    } else {
      detail::exit_continuation(s, saved_, own);
    }
  }

 private:
  ContextFrame frame_;
  detail::SavedContinuation saved_;
  bool call_;
};

/// Resets this thread's slots to the empty frame (and releases what `enter` set in the innermost
/// window). Windows still open restore their own saved frames when they close.
inline void clear() noexcept {
  detail::Slots& s = detail::slots();
  detail::FrameData* owned = s.owned;
  s.current = nullptr;
  s.inherited = nullptr;
  s.base = nullptr;
  s.owned = nullptr;
  s.merged = nullptr;
  detail::release(owned);
}

}  // namespace ucm
