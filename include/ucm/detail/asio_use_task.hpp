// SPDX-License-Identifier: MIT
// ucm/detail/asio_use_task.hpp: use_task, written once for either Asio, with the macros naming
// it (see ucm/detail/asio_associators.hpp); its machinery, the same for both Asios, is
// TaskOperation in ucm/detail/asio_shared.hpp. ucm/asio/use_task.hpp includes it for standalone
// Asio, ucm/boost_asio/use_task.hpp for Boost.Asio. Not a public header.
// NOTE: no include guard. The including header's own `#pragma once` is the guard of its
// instantiation.

#if defined(UCM_ASIO_NS) && defined(UCM_ASIO_UCM_NS) && defined(UCM_ASIO_ERROR_NS)

#include <exception>
#include <utility>

#include "ucm/detail/asio_shared.hpp"

namespace ucm::UCM_ASIO_UCM_NS {

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
