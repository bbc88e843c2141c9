// SPDX-License-Identifier: MIT
// ucm/detail/asio_shared.hpp: what ucm's integrations of standalone Asio (ucm/asio.hpp) and of
// Boost.Asio (ucm/boost_asio.hpp) share, written once and independent of either: the deprecated
// handler hooks of the binder behind ContextFrame::bind, propagate's initiation wrapper, and the
// awaitable that use_task makes, with its per-thread state (one instance per program, whichever
// Asios it uses). The parts that name an Asio are in ucm/detail/asio_associators.hpp and one
// header per tool (ucm/detail/asio_propagate.hpp, asio_context_executor.hpp, asio_use_task.hpp).
// Nothing here is public API.
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ucm/detail/frame_cache.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/detail/task_promise.hpp"
#include "ucm/frame.hpp"

// =============================================================================================
// The deprecated handler hooks of the binder behind ContextFrame::bind, propagate's handlers
// and ContextExecutor's functions
// =============================================================================================

namespace ucm::detail {

// The deprecated handler hooks of BoundContinuation (ucm/detail/bound_continuation.hpp), forwarded
// to the wrapped callable as Asio's own adapters (as_tuple, redirect_error) do: legacy composed
// operations and `io_context::strand::wrap` still rely on them in standalone Asio 1.22 and
// Boost.Asio 1.81. Asio finds them by argument-dependent lookup, so they live in the binder's
// namespace, once for both Asios: each forwards to the hook that argument-dependent lookup finds
// for the wrapped callable (the callable's own, or the default of the Asio its type belongs to),
// and exists only where there is one. For any other callable (a lambda) the calling Asio uses
// its own default for the binder too, so memory is taken and given back by the same Asio.
// Returning what the wrapped hook returns keeps Asio's check under ASIO_NO_DEPRECATED /
// BOOST_ASIO_NO_DEPRECATED (that no hook returns anything but the "no longer used" types).

template <class F>
requires requires(std::size_t size, F* inner) { asio_handler_allocate(size, inner); }
inline decltype(auto) asio_handler_allocate(std::size_t size, BoundContinuation<F>* this_handler) {
  return asio_handler_allocate(size, std::addressof(this_handler->get()));
}

template <class F>
requires requires(void* pointer, std::size_t size, F* inner) {
  asio_handler_deallocate(pointer, size, inner);
}
inline decltype(auto) asio_handler_deallocate(void* pointer, std::size_t size,
                                              BoundContinuation<F>* this_handler) {
  return asio_handler_deallocate(pointer, size, std::addressof(this_handler->get()));
}

template <class F>
requires requires(F* inner) { asio_handler_is_continuation(inner); }
inline bool asio_handler_is_continuation(BoundContinuation<F>* this_handler) {
  return asio_handler_is_continuation(std::addressof(this_handler->get()));
}

template <class Function, class F>
requires requires(Function& function, F* inner) { asio_handler_invoke(function, inner); }
inline decltype(auto) asio_handler_invoke(Function& function, BoundContinuation<F>* this_handler) {
  return asio_handler_invoke(function, std::addressof(this_handler->get()));
}

template <class Function, class F>
requires requires(const Function& function, F* inner) { asio_handler_invoke(function, inner); }
inline decltype(auto) asio_handler_invoke(const Function& function,
                                          BoundContinuation<F>* this_handler) {
  return asio_handler_invoke(function, std::addressof(this_handler->get()));
}

}  // namespace ucm::detail

namespace ucm::detail::asio_shared {

// =============================================================================================
// propagate(token)
// =============================================================================================

/// The completion handler `propagate` hands to an operation: the frame captured at initiation
/// and the handler made from the wrapped token. Calling it runs the handler in a continuation
/// window of the frame (a few pointer swaps, no allocation); its associators are the wrapped
/// handler's (see the `associator` specialisations in ucm/detail/asio_associators.hpp), so the
/// completion is delivered exactly where it would be without `propagate`.
template <class Handler>
using PropagatingHandler = ::ucm::detail::BoundContinuation<Handler>;

/// Wraps an operation's initiation: when the operation is really initiated (the call for a
/// callback, the `co_await` for `use_awaitable`, the launch for `deferred`), it captures
/// `ContextFrame::current()` (one reference-count increment) and hands the operation a
/// PropagatingHandler instead of the raw handler.
template <class Initiation>
class PropagatingInitiation {
 public:
  template <class I>
  explicit PropagatingInitiation(I&& initiation) : initiation_(std::forward<I>(initiation)) {}

  template <class Handler, class... Args>
  void operator()(Handler&& handler, Args&&... args) && {
    std::move(initiation_)(PropagatingHandler<std::decay_t<Handler>>(
                               ContextFrame::current(), std::forward<Handler>(handler)),
                           std::forward<Args>(args)...);
  }

  template <class Handler, class... Args>
  void operator()(Handler&& handler, Args&&... args) const& {
    initiation_(PropagatingHandler<std::decay_t<Handler>>(ContextFrame::current(),
                                                          std::forward<Handler>(handler)),
                std::forward<Args>(args)...);
  }

 private:
  Initiation initiation_;
};

/// The wrapped token's `return_type`, when it has one: Asio's own binders (e.g.
/// `bind_cancellation_slot(slot, propagate(h))`) name it unconditionally.
template <class InnerResult>
struct ReturnTypeOf {};
template <class InnerResult>
requires requires { typename InnerResult::return_type; }
struct ReturnTypeOf<InnerResult> {
  using return_type = typename InnerResult::return_type;
};

/// The token type to pass on to the wrapped token's async_result: a reference when the
/// propagate_t was an lvalue or const (the token is copied, so one propagate_t serves many
/// operations), the value itself when it was a non-const rvalue (the token is moved).
template <class Raw, class Token>
using InnerToken =
    std::conditional_t<std::is_const_v<std::remove_reference_t<Raw>>, const Token&,
                       std::conditional_t<std::is_lvalue_reference_v<Raw>, Token&, Token>>;

// =============================================================================================
// use_task
// =============================================================================================

/// Whether a completion signature's first argument is an `E` (an error_code or exception_ptr
/// that use_task turns into an exception).
template <class E, class... Args>
inline constexpr bool first_is = false;
template <class E, class First, class... Rest>
inline constexpr bool first_is<E, First, Rest...> = std::same_as<std::decay_t<First>, E>;

/// Whether an initiation on another thread is still running in a ucm::Task's context (see
/// TaskOperation::suspend_in_task): until it is done, a handler running on another thread must
/// not resume the Task.
enum class Hand : unsigned char {
  initiating,  // the initiating thread still runs the initiation in a window of the Task's frame
  left,        // it is done (or the coroutine is not a ucm::Task): the handler may resume it
};

/// What the handler and the awaiter of one operation share, so that the handler can tell whether
/// the coroutine was destroyed while the operation was pending (it then drops the completion),
/// and the link is freed once, by whichever of the two goes last. One block per operation (see
/// new_link); the results stay in the coroutine frame.
///
/// The common path takes no locked instruction: a handler called while its awaiter lives
/// resumes the coroutine, whose await_resume frees the link, so the handler only reads it. The
/// rare ways to go (an awaiter destroyed while pending, a handler destroyed uncalled) record it
/// with an atomic or, as they may meet (a Task destroyed while its io_context shuts down).
// NOTE: an awaiter destroyed concurrently with its handler's call is a Task destroyed while
// another thread resumes it, which nothing can make safe. Destroyed before the call (the Task's
// destruction cancels the operation, or comes before its completion is run), the handler's
// acquire load sees it: the destruction happens before the call.
struct OperationLink {
  static constexpr unsigned char awaiter_gone = 1;
  static constexpr unsigned char handler_gone = 2;
  std::atomic<unsigned char> gone{0};

  /// Records that `who` went (the rare ways); true if the other had gone already: the caller
  /// frees the link.
  bool leave(unsigned char who) noexcept {
    // acq_rel: whoever frees the link sees everything the other did with it.
    return (gone.fetch_or(who, std::memory_order_acq_rel) & ~who) != 0;
  }

  /// Whether the awaiter went before its handler was called: the coroutine was destroyed.
  [[nodiscard]] bool awaiter_went() const noexcept {
    // Acquire: pairs with the awaiter's leave, so the handler then frees the link safely.
    return (gone.load(std::memory_order_acquire) & awaiter_gone) != 0;
  }
};

/// The cache class of a link's block (see new_link).
inline std::uint32_t link_class() noexcept {
  return ::ucm::detail::cache_class(sizeof(OperationLink), ::ucm::detail::block_alignment);
}

/// A new link, in a block from this thread's frame block cache: a few instructions where
/// operator new and delete cost tens of nanoseconds. Not inlined, like the frame builders, so
/// that it reaches the cache afresh even from a coroutine body (see after_resume in
/// ucm/detail/config.hpp).
[[gnu::noinline]] inline OperationLink* new_link() {
  return ::new (::ucm::detail::allocate_block(sizeof(OperationLink), ::ucm::detail::block_alignment,
                                              link_class())) OperationLink;
}

/// Frees a link from new_link.
[[gnu::noinline]] inline void delete_link(OperationLink* link) noexcept {
  link->~OperationLink();
  ::ucm::detail::free_cached_block(link, ::ucm::detail::block_alignment, link_class());
}

/// The state of one awaited operation, in the coroutine frame: the coroutine and its results.
template <class... Args>
struct TaskCompletion {
  std::optional<std::tuple<std::decay_t<Args>...>> results;
  std::coroutine_handle<> continuation;
  std::atomic<Hand> hand{Hand::left};
};

/// How an operation's completion handler ran with respect to the initiation (see TaskHandler).
enum class Inline : unsigned char {
  no,         // not inside it: the handler resumes the coroutine wherever Asio runs it
  resumed,    // inside it, and it resumed the coroutine there, inside the handler's invocation
  completed,  // inside it, too deeply nested to resume there: continue as the initiation returns
};

/// How many initiations may nest on one thread's stack before a completion inside one no longer
/// resumes its coroutine there. Each level is an await_suspend, Asio's dispatch and the
/// coroutine's resumption (about 500 bytes of stack with g++ -O2, 3 KB under AddressSanitizer),
/// so a coroutine that keeps dispatching onto the strand it runs on stays within 16 levels, and
/// on that strand.
inline constexpr unsigned inline_resume_limit = 16;

/// Marks, on the initiating thread's stack, the operation being initiated by await_suspend, so
/// that a handler invoked inside the initiation (a dispatch from within its executor) can tell.
struct InitiationMarker {
  const void* completion;
  InitiationMarker* previous;
  unsigned depth;  // initiations on this thread's stack, this one included
  Inline outcome;
  ::ucm::detail::FrameData* window;  // a ucm::Task's: the frame its initiation runs in
};

inline InitiationMarker*& initiation_marker() noexcept {
  static thread_local constinit InitiationMarker* marker = nullptr;
  return marker;
}

/// Runs `launch` with `marker` (on the caller's stack) pushed on this thread's markers, and, for
/// a ucm::Task, in a continuation window of `marker.window`. Not inlined: it reaches this
/// thread's state afresh, even when await_suspend is inlined into a coroutine body (see
/// after_resume in ucm/detail/config.hpp).
template <class Launch>
[[gnu::noinline]] void initiate(InitiationMarker& marker, const void* completion, Launch launch) {
  InitiationMarker*& top = initiation_marker();
  marker.completion = completion;
  marker.previous = top;
  marker.depth = top == nullptr ? 1 : top->depth + 1;
  marker.outcome = Inline::no;
  top = &marker;
  try {
    if (marker.window != nullptr) {
      ::ucm::detail::ContinuationWindow window(marker.window);
      launch();
    } else {
      launch();
    }
  } catch (...) {
    initiation_marker() = marker.previous;
    // Its handler resumed the coroutine inside it, then it threw: the coroutine has moved on,
    // so the exception has nowhere to go. (Asio's initiations never do this.)
    if (marker.outcome == Inline::resumed) std::terminate();
    throw;
  }
  initiation_marker() = marker.previous;
  // After the window closed: the reference a handler that resumed the Task inside took on it.
  if (marker.outcome == Inline::resumed) ::ucm::detail::release(marker.window);
}

/// The handler use_task gives the operation: stores the results and resumes the coroutine, so
/// the coroutine continues where Asio runs the completion (an I/O thread, the handler's strand).
/// Invoked inside the initiation itself (a dispatch onto an idle strand), it resumes the
/// coroutine there too, in a run loop of its own, so the coroutine runs inside the strand's
/// invocation until it next suspends, as with `asio::use_awaitable`; nested deeper than
/// inline_resume_limit, it only records the completion, and the coroutine continues as the
/// initiation returns (no unbounded recursion). If the coroutine was destroyed before the
/// completion, it drops it. Move-only: it owns its half of the link.
template <class... Args>
class TaskHandler {
 public:
  TaskHandler(TaskCompletion<Args...>* completion, OperationLink* link) noexcept
      : completion_(completion), link_(link) {}
  TaskHandler(TaskHandler&& other) noexcept
      : completion_(other.completion_), link_(std::exchange(other.link_, nullptr)) {}
  TaskHandler& operator=(TaskHandler&&) = delete;
  ~TaskHandler() {
    // Destroyed uncalled (its io_context destroyed with the operation pending): the coroutine is
    // never resumed; its owner must destroy it.
    if (link_ != nullptr && link_->leave(OperationLink::handler_gone)) delete_link(link_);
  }

  template <class... Actual>
  requires std::constructible_from<std::tuple<std::decay_t<Args>...>, Actual &&...> void operator()(
      Actual&&... args) {
    OperationLink* const link = std::exchange(link_, nullptr);
    if (link->awaiter_went()) {
      delete_link(
          link);  // the coroutine was destroyed while the operation was pending: nobody waits
      return;
    }
    // NOTE: from here the awaiter frees the link (the results tell it the handler was called),
    // and the coroutine frame (which holds `completion`) lives at least until the coroutine is
    // resumed below.
    TaskCompletion<Args...>* const completion = completion_;
    completion->results.emplace(std::forward<Actual>(args)...);
    // Any initiation on this thread's stack, not only the innermost: an initiation may resume
    // a coroutine inline that initiates another operation, which completes this one.
    for (InitiationMarker* m = initiation_marker(); m != nullptr; m = m->previous) {
      if (m->completion != completion) continue;
      if (m->depth > inline_resume_limit) {
        m->outcome = Inline::completed;
        return;
      }
      m->outcome = Inline::resumed;
      // The coroutine may end before the initiation returns, and the initiation still runs in a
      // window of its frame: keep that frame alive until then (suspend_in_task releases it).
      ::ucm::detail::retain(m->window);
      resume_here(completion->continuation);
      return;
    }
    // A Task's initiation still running on another thread is a few instructions from its end
    // (it returned or is returning): wait for it, so that the frame it runs in outlives it.
    // Acquire: sees what the Task saved before its initiation.
    for (unsigned spins = 0; completion->hand.load(std::memory_order_acquire) == Hand::initiating;
         ++spins) {
      if (spins >= 64) std::this_thread::yield();  // it may have been descheduled
    }
    completion->continuation.resume();
  }

 private:
  /// Resumes the coroutine inside this invocation, and everything it makes ready, in a run loop
  /// of its own (as sync_wait does): what it hands control to runs here too, not later in a loop
  /// further down this thread's stack, outside the executor that runs this handler.
  static void resume_here(std::coroutine_handle<> coroutine) noexcept {
    ::ucm::detail::ReadyNode node;
    node.handle = coroutine;
    ::ucm::detail::run_nested(&node);
  }

  TaskCompletion<Args...>* completion_;
  OperationLink* link_;
};

/// An operation's initiation and its arguments, kept until the operation is awaited.
template <class Initiation, class... InitArgs>
struct Launcher {
  Initiation initiation;
  std::tuple<InitArgs...> args;

  template <class Handler>
  void launch(Handler handler) {
    // Moved to the stack first: a completion inside the initiation may resume the coroutine,
    // which may end and free the frame that holds this launcher while the initiation still runs.
    Launcher self(std::move(*this));
    std::apply(
        [&](InitArgs&... a) { std::move(self.initiation)(std::move(handler), std::move(a)...); },
        self.args);
  }
};

template <class Errors, class Signature>
class TaskOperation;

/// What `op(use_task)` returns: an awaitable that initiates `op` with a TaskHandler when it is
/// awaited. Its type depends on the Asio (`Errors`: its error code, see Errors in
/// ucm/detail/asio_use_task.hpp) and the completion signature only (like
/// `asio::awaitable<T>`), as Asio's adapters (`redirect_error`, `bind_cancellation_slot`) need:
/// the initiation and its arguments are type-erased, stored inline when they fit in 128 bytes
/// (Asio's initiations are a pointer or an executor, their arguments a few buffers or an
/// `any_io_executor` of 56 bytes) and otherwise in one allocation.
template <class Errors, class R, class... Args>
class [[nodiscard]] TaskOperation<Errors, R(Args...)> {
  using Results = std::tuple<std::decay_t<Args>...>;
  using Handler = TaskHandler<Args...>;
  using ErrorCode = typename Errors::error_code;
  static constexpr std::size_t skip =
      first_is<ErrorCode, Args...> || first_is<std::exception_ptr, Args...> ? 1 : 0;
  static constexpr std::size_t inline_size = 128;

  struct Operations {
    void (*launch)(void* launcher, Handler handler);
    void (*relocate)(void* from, void* to) noexcept;  // inline storage only
    void (*destroy)(void* launcher) noexcept;
  };

  template <class L>
  static constexpr bool fits_inline =
      sizeof(L) <= inline_size &&
      alignof(L) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<L>;

  template <class L>
  static constexpr Operations operations_for{
      [](void* launcher, Handler handler) {
        static_cast<L*>(launcher)->launch(std::move(handler));
      },
      [](void* from, void* to) noexcept {
        if constexpr (fits_inline<L>) {
          ::new (to) L(std::move(*static_cast<L*>(from)));
          static_cast<L*>(from)->~L();
        }
      },
      [](void* launcher) noexcept {
        if constexpr (fits_inline<L>) {
          static_cast<L*>(launcher)->~L();
        } else {
          delete static_cast<L*>(launcher);
        }
      }};

 public:
  template <class Initiation, class... InitArgs>
  explicit TaskOperation(Initiation&& initiation, InitArgs&&... args) {
    using L = Launcher<std::decay_t<Initiation>, std::decay_t<InitArgs>...>;
    if constexpr (fits_inline<L>) {
      launcher_ = ::new (static_cast<void*>(storage_))
          L{std::forward<Initiation>(initiation),
            std::tuple<std::decay_t<InitArgs>...>(std::forward<InitArgs>(args)...)};
    } else {
      launcher_ = new L{std::forward<Initiation>(initiation),
                        std::tuple<std::decay_t<InitArgs>...>(std::forward<InitArgs>(args)...)};
    }
    operations_ = &operations_for<L>;
  }

  /// Movable until awaited (a coroutine type may move it into an awaiter of its own).
  TaskOperation(TaskOperation&& other) noexcept : operations_(other.operations_) {
    if (other.launcher_ == static_cast<void*>(other.storage_)) {
      operations_->relocate(other.storage_, storage_);
      launcher_ = storage_;
    } else {
      launcher_ = other.launcher_;
    }
    other.launcher_ = nullptr;
  }
  TaskOperation(const TaskOperation&) = delete;
  TaskOperation& operator=(const TaskOperation&) = delete;
  TaskOperation& operator=(TaskOperation&&) = delete;
  ~TaskOperation() {
    if (launcher_ != nullptr) operations_->destroy(launcher_);
    // Destroyed while the operation is pending (its coroutine was destroyed): the handler will
    // drop the completion, or it went already (destroyed uncalled) and the link is freed here.
    // Results without await_resume: the handler completed inside an initiation that then threw,
    // and touches the link no more.
    if (link_ != nullptr &&
        (completion_.results.has_value() || link_->leave(OperationLink::awaiter_gone))) {
      delete_link(link_);
    }
  }

  /// Whether the initiation and its arguments are stored inline (no allocation). For tests.
  [[nodiscard]] bool stored_inline() const noexcept {
    return launcher_ == static_cast<const void*>(storage_);
  }

  /// In a ucm::Task the operation is initiated in the Task's context (an initiation that
  /// captures the context, such as a post or co_spawn on a ContextExecutor, captures the
  /// Task's), and the Task's slots are handled here (see suspend_in_task).
  using ucm_slot_aware = void;

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> continuation) {
    if constexpr (std::is_base_of_v<::ucm::detail::PromiseBase, P>) {
      return suspend_in_task(continuation, continuation.promise());
    } else {
      return suspend(continuation);
    }
  }

  auto await_resume() {
    if (task_ != nullptr) task_->enter_root(::ucm::detail::thread_refs_after_resume());
    // The handler has gone: it resumed this coroutine, or completed inside the initiation.
    delete_link(std::exchange(link_, nullptr));
    return take_results();
  }

 private:
  /// Any other coroutine: initiates in the thread's context, and the handler resumes the
  /// coroutine wherever it runs.
  bool suspend(std::coroutine_handle<> continuation) {
    link_ = new_link();  // may throw: nothing happened yet
    completion_.continuation = continuation;
    InitiationMarker marker;
    marker.window = nullptr;
    launch(marker);
    // NOTE: the handler may have resumed the coroutine, here or on another thread, and that may
    // have destroyed this awaiter: from here on only the stack.
    return marker.outcome != Inline::completed;  // false: completed inside, continue now
  }

  /// A ucm::Task: gives up its slots, then initiates in a continuation window of its current
  /// frame, so the initiation captures the Task's values and a handler that resumes the Task
  /// inside the initiation installs its slots as any resumption does. A handler that runs on
  /// another thread before the initiation is over waits for it (`hand`, see TaskHandler).
  bool suspend_in_task(std::coroutine_handle<> continuation, ::ucm::detail::PromiseBase& task) {
    link_ = new_link();  // may throw: nothing happened yet
    const ::ucm::detail::ThreadRefs thread = ::ucm::detail::thread_refs_after_resume();
    InitiationMarker marker;
    // Borrowed: what holds it (the Task's scopes, `enter`s, awaiter) stays while the Task waits.
    marker.window = thread.slots.current;
    completion_.continuation = continuation;
    completion_.hand.store(Hand::initiating, std::memory_order_relaxed);
    task_ = &task;
    task.leave(thread);
    try {
      launch(marker);
    } catch (...) {
      // The Task resumes with the exception, not through await_resume: its slots again. An
      // initiation that threw after taking the handler is broken anyway; at least its handler
      // must not wait for an initiation that is over.
      completion_.hand.store(Hand::left, std::memory_order_release);
      task.enter_root(::ucm::detail::thread_refs_after_resume());
      throw;
    }
    // NOTE: resumed inside the initiation, the Task may have ended and been destroyed already.
    if (marker.outcome == Inline::resumed) return true;
    const bool completed = marker.outcome == Inline::completed;
    // Release: the initiation, which ran in a window of the Task's frame, is over.
    completion_.hand.store(Hand::left, std::memory_order_release);
    return !completed;  // NOTE: the handler may resume the Task at once: no access to `this`
  }

  /// Launches the operation with a TaskHandler, through `initiate`.
  void launch(InitiationMarker& marker) {
    initiate(marker, &completion_,
             [this] { operations_->launch(launcher_, Handler(&completion_, link_)); });
  }

  auto take_results() {
    Results& results = *completion_.results;
    if constexpr (first_is<ErrorCode, Args...>) {
      if (const ErrorCode& ec = std::get<0>(results)) Errors::raise(ec);
    } else if constexpr (first_is<std::exception_ptr, Args...>) {
      if (std::get<0>(results)) std::rethrow_exception(std::get<0>(results));
    }
    return values(results, std::make_index_sequence<sizeof...(Args) - skip>{});
  }

 private:
  template <std::size_t... I>
  static auto values(Results& results, std::index_sequence<I...>) {
    if constexpr (sizeof...(I) == 0) {
      return;
    } else if constexpr (sizeof...(I) == 1) {
      return std::move(std::get<(skip + I)...>(results));
    } else {
      return std::tuple<std::tuple_element_t<skip + I, Results>...>(
          std::move(std::get<skip + I>(results))...);
    }
  }

  alignas(std::max_align_t) unsigned char storage_[inline_size];
  void* launcher_;
  const Operations* operations_;
  TaskCompletion<Args...> completion_;
  OperationLink* link_ = nullptr;  // shared with the handler, from await_suspend to await_resume
  ::ucm::detail::PromiseBase* task_ = nullptr;  // the Task to install again when it resumes
};

}  // namespace ucm::detail::asio_shared
