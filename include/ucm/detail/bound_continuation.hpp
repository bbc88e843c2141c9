// SPDX-License-Identifier: MIT
// ucm/detail/bound_continuation.hpp: the one binder of "a frame plus a callable run in a
// continuation window of it", behind ContextFrame::bind, ucm::asio::propagate's handlers and the
// functions ucm::asio::ContextExecutor submits, and their Boost.Asio twins (ucm/asio.hpp and
// ucm/boost_asio.hpp forward their Asio's associators through it). Included by ucm/frame.hpp after
// ContextFrame, which it holds. Nothing here is public API.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"

namespace ucm::detail {

/// A frame and a callable: calling it runs the callable in a continuation window of the frame
/// (`current`, `inherited` and the base become the frame; all three are restored on exit, also on
/// exception), forwarding arguments and the return value. A few pointer swaps per call, no
/// allocation. Copyable when `F` is (a copy is one reference-count increment more).
///
/// It is what `ContextFrame::bind` returns, the completion handler `ucm::asio::propagate` makes,
/// and the function `ucm::asio::ContextExecutor` submits (and the same of ucm::boost_asio).
/// Where ucm/asio.hpp or ucm/boost_asio.hpp is included, its associated executor, allocator and
/// cancellation slot, for that Asio, are the wrapped callable's.
template <class F>
class BoundContinuation {
 public:
  template <class G>
  BoundContinuation(ContextFrame frame, G&& fn)
      : frame_(std::move(frame)), fn_(std::forward<G>(fn)) {}

  // The lvalue calls borrow the stored frame: the object outlives the call (unless `fn_` destroys
  // it, which only the one-shot rvalue call allows for).
  template <class... Args>
  requires std::invocable<F&, Args...>
  decltype(auto) operator()(Args&&... args) & {
    ContinuationWindow window(FrameAccess::data(frame_));
    return std::invoke(fn_, std::forward<Args>(args)...);
  }

  template <class... Args>
  requires std::invocable<const F&, Args...>
  decltype(auto) operator()(Args&&... args) const& {
    ContinuationWindow window(FrameAccess::data(frame_));
    return std::invoke(fn_, std::forward<Args>(args)...);
  }

  /// One-shot call (how Asio calls a handler): the frame moves to the stack first, so the window
  /// stays valid even if `fn` destroys the object it was called on.
  template <class... Args>
  requires std::invocable<F&&, Args...>
  decltype(auto) operator()(Args&&... args) && {
    const ContextFrame frame = std::move(frame_);
    ContinuationWindow window(FrameAccess::data(frame));
    return std::invoke(std::move(fn_), std::forward<Args>(args)...);
  }

  /// The wrapped callable.
  [[nodiscard]] F& get() noexcept { return fn_; }
  [[nodiscard]] const F& get() const noexcept { return fn_; }
  /// The captured frame.
  [[nodiscard]] const ContextFrame& frame() const noexcept { return frame_; }

 private:
  ContextFrame frame_;
  F fn_;
};

}  // namespace ucm::detail
