// SPDX-License-Identifier: MIT
// ucm/detail/asio_context_executor.hpp: ContextExecutor<Ex>, written once for either Asio, with
// the macros naming it (see ucm/detail/asio_associators.hpp). ucm/asio/context_executor.hpp
// includes it for standalone Asio, ucm/boost_asio/context_executor.hpp for Boost.Asio. Not a
// public header.
// NOTE: no include guard. The including header's own `#pragma once` is the guard of its
// instantiation.

#if defined(UCM_ASIO_NS) && defined(UCM_ASIO_UCM_NS) && defined(UCM_ASIO_ERROR_NS)

#include <concepts>
#include <type_traits>
#include <utility>

#include "ucm/detail/bound_continuation.hpp"
#include "ucm/frame.hpp"

namespace ucm::UCM_ASIO_UCM_NS {

// =============================================================================================
// ContextExecutor<Ex>
// =============================================================================================

template <class Executor>
class ContextExecutor;

namespace detail {

/// A submitted function and the frame captured at submission: calling it runs the function in a
/// continuation window of the frame.
template <class Function>
using ContextFunction = ::ucm::detail::BoundContinuation<Function>;

template <class T>
inline constexpr bool is_context_executor = false;
template <class Executor>
inline constexpr bool is_context_executor<ContextExecutor<Executor>> = true;

template <class F>
ContextFunction<std::decay_t<F>> capture_function(F&& f) {
  return ContextFunction<std::decay_t<F>>(ContextFrame::current(), std::forward<F>(f));
}

}  // namespace detail

/// An executor adaptor shaped like `asio::strand<Executor>`: every function submitted through it
/// (`execute`, and the `post`/`dispatch`/`defer` of both Asio executor models, so
/// `asio::post(ex, f)` and `ex.post(f, alloc)` alike) captures `ContextFrame::current()` at
/// submission and runs in a continuation window of it on whatever thread the inner executor
/// picks. Queries, requirements and preferences are forwarded to the inner executor (a
/// requirement returns a ContextExecutor of the result), so it converts to
/// `asio::any_io_executor` and serves as an I/O object's or a coroutine's executor.
///
///     ucm::asio::ContextExecutor ex(io.get_executor());   // CTAD
///     request_id.run("r-1", [&] { asio::post(ex, [] { log(); }); });   // log() sees "r-1"
///
/// Cost: what the inner executor costs, plus one reference-count increment per submission and a
/// few pointer swaps around the function; no allocation of its own (the frame is one pointer
/// inside the submitted function). Copying the adaptor copies the inner executor only.
///
/// Note that Asio submits an operation's completion through the handler's associated executor
/// from the thread that completes it, so as an I/O object's or a coroutine's executor this
/// adaptor captures that thread's context (usually nothing); use `propagate(token)` or
/// `use_task` to carry the context of the operation's initiator.
///
/// Put it outside a strand, `ContextExecutor(asio::make_strand(io))`, not inside one: a strand
/// over a ContextExecutor submits only its own invoker through it, so every function queued on
/// the strand would run in the context of whoever woke the strand.
template <class Executor>
class ContextExecutor {
 public:
  /// The type of the wrapped executor.
  using inner_executor_type = Executor;

  /// Wraps a default-constructed executor.
  ContextExecutor() requires std::default_initializable<Executor>
  = default;

  /// Wraps `inner` (an executor convertible to `Executor`, but not another ContextExecutor:
  /// checking that would recurse through Asio's executor concepts).
  template <class Inner>
  requires(
      !detail::is_context_executor<Inner> &&
      std::convertible_to<
          const Inner&,
          Executor>) explicit ContextExecutor(const Inner&
                                                  inner) noexcept(std::
                                                                      is_nothrow_constructible_v<
                                                                          Executor, const Inner&>)
      : inner_(inner) {}

  /// Converts from an adaptor of another executor type convertible to this one's.
  template <class Other>
  requires(!std::same_as<Other, Executor> && std::convertible_to<const Other&, Executor>)
      ContextExecutor(const ContextExecutor<Other>& other)
  noexcept(std::is_nothrow_constructible_v<Executor, const Other&>)
      : inner_(other.get_inner_executor()) {}

  /// The wrapped executor.
  [[nodiscard]] inner_executor_type get_inner_executor() const noexcept { return inner_; }

  /// Forwards a query to the inner executor.
  template <class Property>
  requires ::UCM_ASIO_NS::can_query<const Executor&, Property>::value
      typename ::UCM_ASIO_NS::query_result<const Executor&, Property>::type
      query(const Property& p) const
      noexcept(::UCM_ASIO_NS::is_nothrow_query<const Executor&, Property>::value) {
    return ::UCM_ASIO_NS::query(inner_, p);
  }

  /// Forwards a requirement to the inner executor; the result is adapted in turn.
  template <class Property>
  requires ::UCM_ASIO_NS::can_require<const Executor&, Property>::value ContextExecutor<
      std::decay_t<typename ::UCM_ASIO_NS::require_result<const Executor&, Property>::type>>
  require(const Property& p)
  const noexcept(::UCM_ASIO_NS::is_nothrow_require<const Executor&, Property>::value) {
    return ContextExecutor<
        std::decay_t<typename ::UCM_ASIO_NS::require_result<const Executor&, Property>::type>>(
        ::UCM_ASIO_NS::require(inner_, p));
  }

  /// Forwards a preference to the inner executor; the result is adapted in turn.
  template <class Property>
  requires ::UCM_ASIO_NS::can_prefer<const Executor&, Property>::value ContextExecutor<
      std::decay_t<typename ::UCM_ASIO_NS::prefer_result<const Executor&, Property>::type>>
  prefer(const Property& p)
  const noexcept(::UCM_ASIO_NS::is_nothrow_prefer<const Executor&, Property>::value) {
    return ContextExecutor<
        std::decay_t<typename ::UCM_ASIO_NS::prefer_result<const Executor&, Property>::type>>(
        ::UCM_ASIO_NS::prefer(inner_, p));
  }

  /// Submits `f` to the inner executor (standard executor model). Captures the current frame;
  /// `f` runs in a continuation window of it.
  template <class Function>
  requires ::UCM_ASIO_NS::execution::can_execute<
      const Executor&, detail::ContextFunction<std::decay_t<Function>>>::value void
  execute(Function&& f) const {
    ::UCM_ASIO_NS::execution::execute(inner_, detail::capture_function(std::forward<Function>(f)));
  }

  // ---- the networking-TS executor model, when the inner executor has it -------------------

  /// The inner executor's execution context.
  [[nodiscard]] ::UCM_ASIO_NS::execution_context& context() const noexcept requires
      requires(const Executor& e) {
    e.context();
  }
  { return inner_.context(); }

  /// Forwarded to the inner executor.
  void on_work_started() const noexcept requires requires(const Executor& e) {
    e.on_work_started();
  }
  { inner_.on_work_started(); }

  /// Forwarded to the inner executor.
  void on_work_finished() const noexcept requires requires(const Executor& e) {
    e.on_work_finished();
  }
  { inner_.on_work_finished(); }

  /// Runs `f` now if the inner executor allows, else as `post`; in a continuation window of the
  /// frame captured now.
  template <class Function, class Allocator>
  requires requires(const Executor& e, detail::ContextFunction<std::decay_t<Function>> g,
                    const Allocator& a) {
    e.dispatch(std::move(g), a);
  }
  void dispatch(Function&& f, const Allocator& a) const {
    inner_.dispatch(detail::capture_function(std::forward<Function>(f)), a);
  }

  /// Queues `f`; it runs in a continuation window of the frame captured now.
  template <class Function, class Allocator>
  requires requires(const Executor& e, detail::ContextFunction<std::decay_t<Function>> g,
                    const Allocator& a) {
    e.post(std::move(g), a);
  }
  void post(Function&& f, const Allocator& a) const {
    inner_.post(detail::capture_function(std::forward<Function>(f)), a);
  }

  /// Queues `f` as a continuation of the caller; it runs in a continuation window of the frame
  /// captured now.
  template <class Function, class Allocator>
  requires requires(const Executor& e, detail::ContextFunction<std::decay_t<Function>> g,
                    const Allocator& a) {
    e.defer(std::move(g), a);
  }
  void defer(Function&& f, const Allocator& a) const {
    inner_.defer(detail::capture_function(std::forward<Function>(f)), a);
  }

  /// Whether the inner executor (a strand, an io_context's executor) is running in this thread.
  [[nodiscard]] bool running_in_this_thread() const noexcept requires requires(const Executor& e) {
    e.running_in_this_thread();
  }
  { return inner_.running_in_this_thread(); }

  /// Equal when the inner executors are equal.
  friend bool operator==(const ContextExecutor& a, const ContextExecutor& b) noexcept {
    return a.inner_ == b.inner_;
  }

 private:
  Executor inner_;
};

/// `ContextExecutor ex(io.get_executor());` deduces ContextExecutor<io_context::executor_type>.
template <class Executor>
ContextExecutor(Executor) -> ContextExecutor<Executor>;

}  // namespace ucm::UCM_ASIO_UCM_NS

#endif  // UCM_ASIO_NS && UCM_ASIO_UCM_NS && UCM_ASIO_ERROR_NS
