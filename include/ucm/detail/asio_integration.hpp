// SPDX-License-Identifier: MIT
// ucm/detail/asio_integration.hpp: ucm's Asio integration, written once for either Asio.
// ucm/asio.hpp includes it for standalone Asio and ucm/boost_asio.hpp for Boost.Asio, each once,
// with three macros naming the Asio:
//
//   UCM_ASIO_NS         the Asio namespace, without the leading `::`:  asio  /  boost::asio
//   UCM_ASIO_UCM_NS     ucm's namespace for it, inside ucm::           asio  /  boost_asio
//   UCM_ASIO_ERROR_NS   where its error_code and system_error live:    std   /  boost::system
//
// so both may be included in one program: what names an Asio (the associator and async_result
// specialisations, ContextExecutor, the tokens) exists once per Asio, and what does not
// (ucm/detail/asio_shared.hpp) once in all. Without the macros (compiled on its own, as the
// header-set check does) it declares nothing. Not a public header: include ucm/asio.hpp or
// ucm/boost_asio.hpp.
//
// Every `::UCM_ASIO_NS::` below is fully qualified: inside namespace ucm, `asio` is ucm::asio.
// The documentation speaks of `ucm::asio` and `asio::`; for Boost.Asio read `ucm::boost_asio`
// and `boost::asio::`.
// NOTE: no include guard. The including header's own `#pragma once` is the guard of its
// instantiation.

#if defined(UCM_ASIO_NS) && defined(UCM_ASIO_UCM_NS) && defined(UCM_ASIO_ERROR_NS)

#include <concepts>
#include <exception>
#include <type_traits>
#include <utility>

#include "ucm/detail/asio_shared.hpp"
#include "ucm/detail/bound_continuation.hpp"
#include "ucm/frame.hpp"

// =============================================================================================
// The binder behind ContextFrame::bind, propagate's handlers and ContextExecutor's functions
// =============================================================================================

namespace UCM_ASIO_NS {

/// Every associator (executor, allocator, cancellation slot) of the binder behind
/// `ContextFrame::bind`, `propagate`'s handlers and ContextExecutor's functions is the wrapped
/// callable's: `propagate(bind_executor(strand, h))` and
/// `ContextFrame::bind(bind_executor(strand, h))` complete on the strand, and
/// `bind_cancellation_slot(slot, propagate(h))` / `propagate(bind_cancellation_slot(slot, h))`
/// are both cancellable.
template <template <class, class> class Associator, class F, class DefaultCandidate>
struct associator<Associator, ::ucm::detail::BoundContinuation<F>, DefaultCandidate>
    : Associator<F, DefaultCandidate> {
  static typename Associator<F, DefaultCandidate>::type get(
      const ::ucm::detail::BoundContinuation<F>& h,
      const DefaultCandidate& c = DefaultCandidate()) noexcept {
    return Associator<F, DefaultCandidate>::get(h.get(), c);
  }
};

}  // namespace UCM_ASIO_NS

namespace ucm::UCM_ASIO_UCM_NS {

// =============================================================================================
// propagate(token)
// =============================================================================================

/// A completion token adapter: the operation's completion handler runs in a continuation window
/// of the frame that was current when the operation was initiated, whatever thread completes
/// it. Made by `propagate(token)`; works with any token (callbacks, `asio::use_awaitable`,
/// `asio::experimental::deferred`, `use_task`, Asio's binders in either order).
///
/// Cost: one reference-count increment at initiation, a few pointer swaps around the handler;
/// the frame travels inside the handler (one pointer), so no allocation of its own.
/// A propagate_t may be copied and reused for any number of operations: each captures anew.
template <class CompletionToken>
class propagate_t {
 public:
  /// Default-constructs the wrapped token (for default tokens such as `use_awaitable_t<>`).
  constexpr propagate_t() requires std::default_initializable<CompletionToken>
  = default;

  /// Wraps `token`.
  template <class T>
  requires(!std::same_as<std::remove_cvref_t<T>, propagate_t> &&
           std::constructible_from<CompletionToken, T&&>) constexpr explicit propagate_t(T&& token)
      : token_(std::forward<T>(token)) {}

  /// The wrapped token.
  [[nodiscard]] constexpr CompletionToken& get() & noexcept { return token_; }
  [[nodiscard]] constexpr const CompletionToken& get() const& noexcept { return token_; }

 private:
  CompletionToken token_;
};

/// Adapts `token` so its completion runs in the context captured when the operation is
/// initiated: at the call for a callback, at the `co_await` for `asio::use_awaitable` (which
/// initiates there), at the launch of an `asio::experimental::deferred` operation.
///
///     timer.async_wait(ucm::asio::propagate([](std::error_code ec) { log(ec); }));
///     co_await sock.async_read_some(buf, ucm::asio::propagate(asio::use_awaitable));
///     timer.async_wait(ucm::asio::propagate(asio::bind_executor(strand, handler)));
template <class CompletionToken>
[[nodiscard]] constexpr propagate_t<std::decay_t<CompletionToken>> propagate(
    CompletionToken&& token) {
  return propagate_t<std::decay_t<CompletionToken>>(std::forward<CompletionToken>(token));
}

}  // namespace ucm::UCM_ASIO_UCM_NS

namespace UCM_ASIO_NS {

/// Initiating through a propagate_t wraps the initiation, then lets the wrapped token's own
/// async_result do whatever it does (call, return an awaitable, return a deferred operation).
template <class CompletionToken, class... Signatures>
class async_result<::ucm::UCM_ASIO_UCM_NS::propagate_t<CompletionToken>, Signatures...>
    : public ::ucm::detail::asio_shared::ReturnTypeOf<
          async_result<CompletionToken, Signatures...>> {
 public:
  template <class Initiation, class RawCompletionToken, class... Args>
  static auto initiate(Initiation&& initiation, RawCompletionToken&& token, Args&&... args)
      -> decltype(::UCM_ASIO_NS::async_initiate<
                  ::ucm::detail::asio_shared::InnerToken<RawCompletionToken, CompletionToken>,
                  Signatures...>(
          std::declval<
              ::ucm::detail::asio_shared::PropagatingInitiation<std::decay_t<Initiation>>>(),
          std::declval<std::remove_reference_t<RawCompletionToken>&>().get(),
          std::declval<Args&&>()...)) {
    return ::UCM_ASIO_NS::async_initiate<
        ::ucm::detail::asio_shared::InnerToken<RawCompletionToken, CompletionToken>, Signatures...>(
        ::ucm::detail::asio_shared::PropagatingInitiation<std::decay_t<Initiation>>(
            std::forward<Initiation>(initiation)),
        token.get(), std::forward<Args>(args)...);
  }
};

}  // namespace UCM_ASIO_NS

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

// =============================================================================================
// use_task
// =============================================================================================

/// The completion token type of `use_task`.
struct use_task_t {
  constexpr use_task_t() noexcept = default;
};

/// A completion token that makes an Asio operation awaitable from a `ucm::Task` (or any C++20
/// coroutine):
///
///     co_await timer.async_wait(ucm::asio::use_task);
///     std::size_t n = co_await sock.async_read_some(asio::buffer(data), ucm::asio::use_task);
///
/// The operation is initiated when it is awaited (lazily, like `asio::use_awaitable`). The
/// coroutine is resumed from the completion handler, wherever Asio runs it (an I/O thread, or
/// the strand of `asio::bind_executor(strand, ucm::asio::use_task)`). That holds too when the
/// operation completes inside its own initiation (`co_await asio::dispatch(strand, use_task)` on
/// an idle strand): the coroutine continues inside the handler's invocation, so it is still on
/// the strand afterwards, as with `asio::use_awaitable`; such inline completions nest at most 16
/// deep on one thread's stack, after which the coroutine continues as the initiation returns
/// (still inside the invocation that ran the previous level), so a loop of them never grows the
/// stack. A `ucm::Task` initiates the operation in its own context (what the initiation captures
/// is the Task's values) and restores its slots on every resumption, so a ContextVariableScope
/// spanning the `co_await` stays correct. In other coroutine types use
/// `ucm::propagate(op(use_task))` (see ucm/task.hpp); without it they resume with the completing
/// thread's context.
///
/// Results follow `asio::use_awaitable`: a leading error code (`std::error_code` in standalone
/// Asio, `boost::system::error_code` in Boost.Asio) is thrown as `std::system_error` (Boost:
/// `boost::system::system_error`) when set, a leading `std::exception_ptr` is rethrown when set,
/// and the rest is returned: nothing (`void`), the one value, or a `std::tuple` of several. For
/// `void(error_code, std::size_t)` that is a `std::size_t`. To look at the error code instead
/// of catching it, use `asio::redirect_error(ucm::asio::use_task, ec)` or
/// `asio::experimental::as_tuple(ucm::asio::use_task)`.
///
/// Lifetime: a coroutine (a `ucm::Task` going out of scope) may be destroyed while suspended on
/// an operation: the completion that comes afterwards is dropped, nothing is written into the
/// freed frame and nothing leaks (the Task's own I/O objects, destroyed with it, cancel the
/// operation; one that outlives it completes later, or is destroyed with its io_context). The
/// destruction must come before the completion runs, not during it: nothing can make destroying
/// a coroutine while another thread resumes it safe, so destroy a Task from the strand or thread
/// that runs its completions, or while they cannot run (its io_context stopped). If the
/// operation's handler is destroyed without being called, the coroutine is never resumed; its
/// owner must destroy it.
///
/// Cost: one block from the thread's frame block cache for the state the handler shares with
/// the awaiter (no locked instruction on the common path), and no other allocation beyond the
/// operation's own when the initiation and its arguments fit in 128 bytes (every operation tried
/// in Asio 1.22 and Boost.Asio 1.81: timers, sockets, accept, composed reads and writes, post,
/// co_spawn); they and
/// the results are stored in the awaiter, in the coroutine frame. Composes with Asio's adapters
/// (`bind_executor`, `bind_cancellation_slot`, `redirect_error`, `as_tuple`).
inline constexpr use_task_t use_task{};

namespace detail {

/// This Asio's error code, which use_task throws as its system_error when an operation completes
/// with one set (as `use_awaitable` does).
struct Errors {
  using error_code = ::UCM_ASIO_ERROR_NS::error_code;
  [[noreturn]] static void raise(const error_code& ec) {
    throw ::UCM_ASIO_ERROR_NS::system_error(ec);
  }
};

}  // namespace detail
}  // namespace ucm::UCM_ASIO_UCM_NS

namespace UCM_ASIO_NS {

/// `op(ucm::asio::use_task)` returns an awaitable that initiates `op` when awaited.
template <class R, class... Args>
class async_result<::ucm::UCM_ASIO_UCM_NS::use_task_t, R(Args...)> {
 public:
  /// The awaitable: its type depends on the signature only, as Asio's adapters require.
  using return_type =
      ::ucm::detail::asio_shared::TaskOperation<::ucm::UCM_ASIO_UCM_NS::detail::Errors, R(Args...)>;

  template <class Initiation, class... InitArgs>
  static return_type initiate(Initiation&& initiation, ::ucm::UCM_ASIO_UCM_NS::use_task_t,
                              InitArgs&&... args) {
    return return_type(std::forward<Initiation>(initiation), std::forward<InitArgs>(args)...);
  }
};

}  // namespace UCM_ASIO_NS

#endif  // UCM_ASIO_NS && UCM_ASIO_UCM_NS && UCM_ASIO_ERROR_NS
