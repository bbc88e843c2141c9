// SPDX-License-Identifier: MIT
// ucm/tracing_channel.hpp: TracingChannel<M>, Node's tracingChannel: five window channels
// (ucm/channel.hpp) that trace one kind of operation, and the helpers that publish them around a
// synchronous call (trace_sync), a Task (trace_task) and an operation completing through a
// callback (trace_callback).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ucm/channel.hpp"
#include "ucm/detail/frame_lifetime.hpp"
#include "ucm/detail/slots.hpp"
#include "ucm/frame.hpp"
#include "ucm/task.hpp"

namespace ucm {
namespace detail {

/// Publishes on a channel when it goes out of scope (the `finally` of Node's tracing helpers).
/// Publishing never throws, so this destructor does not either.
template <class M>
struct PublishOnExit {
  PublishOnExit(const WindowChannel<M&>& c, M& m) noexcept : channel(c), message(m) {}
  PublishOnExit(const PublishOnExit&) = delete;
  PublishOnExit& operator=(const PublishOnExit&) = delete;
  ~PublishOnExit() { channel.publish(message); }
  const WindowChannel<M&>& channel;
  M& message;
};

template <class F, class Wrap, class Refs, std::size_t... I>
decltype(auto) invoke_wrapping_last(F&& fn, Wrap&& wrap, Refs&& refs, std::index_sequence<I...>) {
  constexpr std::size_t last = sizeof...(I);
  return std::invoke(std::forward<F>(fn), std::get<I>(std::move(refs))...,
                     wrap(std::get<last>(std::move(refs))));
}

/// Calls `fn(args...)` with the last argument replaced by `wrap(last)`.
template <class F, class Wrap, class... Args>
decltype(auto) invoke_wrapping_last(F&& fn, Wrap&& wrap, Args&&... args) {
  return invoke_wrapping_last(std::forward<F>(fn), std::forward<Wrap>(wrap),
                              std::forward_as_tuple(std::forward<Args>(args)...),
                              std::make_index_sequence<sizeof...(Args) - 1>{});
}

/// An operation `fn(args...)` whose last argument is its completion callback.
template <class F, class... Args>
concept completes_through_callback = sizeof...(Args) >= 1 && std::invocable<F, Args...>;

template <class M>
struct CallbackTrace;
template <class M, class Callback>
class TracedCallback;

}  // namespace detail

/// Five channels that trace one kind of operation, as Node's `tracingChannel`: `start`, `end`,
/// `async_start`, `async_end` and `error`, each a `WindowChannel<M&>`, so subscribers receive
/// the message by non-const reference and can attach state at `start` (a span) and read it at
/// `end`. While an `error` event is published, `std::current_exception()` is the error.
///
///     // the library: announces, knows nothing of tracing
///     inline ucm::TracingChannel<Query> query_channel;
///     Rows run(std::string sql) {
///       return query_channel.trace_sync(Query{sql}, [&] { return execute(sql); });
///     }
///     // the instrumentation
///     auto s = query_channel.start.bind_store(current_span, [](Query& q) { return new_span(q); });
///
/// Event order, as Node's: `trace_sync`: start, [error], end. `trace_task`: start, end, [error],
/// async_start, async_end. `trace_callback`: start, [error], end for the initiating call; then
/// for each call of the callback, [error], async_start, async_end. Every helper is a plain call
/// of the traced function when nobody subscribed to any of the five (five relaxed loads).
/// The channel must outlive every operation it traces (a pending Task or callback included).
template <class M>
class TracingChannel {
  static_assert(std::is_object_v<M> && !std::is_const_v<M>,
                "TracingChannel<M>: M is the (non-const) message type");

 public:
  using message_type = M;

  /// Published when the operation starts, inside the window of the stores bound to it.
  WindowChannel<M&> start;
  /// Published when the synchronous part ends (also on exception), still inside that window.
  WindowChannel<M&> end;
  /// Published when an asynchronous operation completes, before its continuation runs.
  WindowChannel<M&> async_start;
  /// Published after that continuation (for a Task: right after async_start).
  WindowChannel<M&> async_end;
  /// Published when the operation fails; `std::current_exception()` is the error.
  WindowChannel<M&> error;

  constexpr TracingChannel() noexcept = default;
  TracingChannel(const TracingChannel&) = delete;
  TracingChannel& operator=(const TracingChannel&) = delete;

  /// Whether any of the five channels has a subscriber or a store.
  [[nodiscard]] bool has_subscribers() const noexcept {
    return start.has_subscribers() || end.has_subscribers() || async_start.has_subscribers() ||
           async_end.has_subscribers() || error.has_subscribers();
  }

  /// Traces a synchronous call (Node's `traceSync`): in `start.run_stores(message, ...)`, runs
  /// `fn(args...)`; publishes `error` if it throws (and rethrows), then `end` in any case, still
  /// inside the stores' window. Returns what `fn` returns.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  decltype(auto) trace_sync(M& message, F&& fn, Args&&... args) {
    if (!has_subscribers()) [[likely]] {
      return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    }
    return start.run_stores(message, [&]() -> decltype(auto) {
      const detail::PublishOnExit<M> publish_end{end, message};
      try {
        return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
      } catch (...) {
        error.publish(message);
        throw;
      }
    });
  }
  /// As above, with a temporary message.
  template <class F, class... Args>
  requires std::invocable<F, Args...>
  decltype(auto) trace_sync(M&& message, F&& fn, Args&&... args) {
    return trace_sync(message, std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Traces a Task (Node's `tracePromise`): returns a Task, lazy like every Task, that when
  /// awaited, in the awaiter's context:
  ///   - sets the stores bound to `start` and publishes `start` then `end` (a lazy Task's
  ///     creation has no synchronous part: it already happened), and runs `task` with those
  ///     stores for its whole run (it is child-of them);
  ///   - when `task` completes, wherever it completes, publishes `error` if it threw, then
  ///     `async_start` and `async_end`, in the awaiter's own values: there `get_active()` is the
  ///     awaiter's and `get_inherited()` what `task` left (its final frame);
  ///   - completes with `task`'s result or exception, and leaves `task`'s final frame to its own
  ///     awaiter, as if it had awaited `task` directly (a when_all's branches arrive as one
  ///     frame, its first branch's).
  /// The message is kept in the returned Task. With no subscriber when called: `task` itself.
  template <class T>
  [[nodiscard]] Task<T> trace_task(M message, Task<T> task) {
    if (!has_subscribers()) [[likely]] {
      return task;
    }
    return traced_task(*this, std::move(message), std::move(task));
  }

  /// Wraps a completion callback, for a library that starts the operation itself: publishes
  /// `start` and `end` now (in `start.run_stores(message, ...)`), and returns the callback
  /// wrapped as `trace_callback(message, fn, args..., callback)` below wraps it: each call runs in
  /// a continuation window of the start window's context and publishes [error], `async_start`,
  /// `async_end` around the callback. With no subscriber, the wrapper only calls the callback.
  ///
  ///     auto done = query_channel.trace_callback(QueryEvent{sql}, std::move(callback));
  ///     pool.post([done] () mutable { done(std::error_code(), rows); });
  template <class Callback>
  [[nodiscard]] detail::TracedCallback<M, std::decay_t<Callback>> trace_callback(
      M message, Callback&& callback) {
    using Traced = detail::TracedCallback<M, std::decay_t<Callback>>;
    if (!has_subscribers()) [[likely]] {
      return Traced(nullptr, ContextFrame(), std::forward<Callback>(callback));
    }
    auto trace = std::make_shared<detail::CallbackTrace<M>>(*this, std::move(message));
    M& msg = trace->message;
    return start.run_stores(msg, [&] {
      const detail::PublishOnExit<M> publish_end{end, msg};
      return Traced(trace, ContextFrame::current(), std::forward<Callback>(callback));
    });
  }

  /// Traces an operation that completes through a callback, its last argument (Node's
  /// `traceCallback` with position -1): in `start.run_stores(message, ...)`, calls
  /// `fn(args...)` with the callback wrapped; publishes `error` if that throws (and rethrows),
  /// then `end`. The wrapped callback runs, whenever and wherever it is called, in a
  /// continuation window of the context inside the start window (so the stores bound to `start`
  /// hold in it, whatever thread calls it): if its first argument is a non-null
  /// `std::exception_ptr` or a non-zero `std::error_code`, it publishes `error`; then, in
  /// `async_start.run_stores(message, ...)`, it calls the callback and publishes `async_end`.
  /// The message is shared by `fn`'s call and every copy of the wrapped callback (one
  /// allocation). Returns what `fn` returns.
  template <class F, class... Args>
  requires detail::completes_through_callback<F, Args...>
  decltype(auto) trace_callback(M message, F&& fn, Args&&... args) {
    if (!has_subscribers()) [[likely]] {
      return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    }
    auto trace = std::make_shared<detail::CallbackTrace<M>>(*this, std::move(message));
    M& msg = trace->message;
    return start.run_stores(msg, [&]() -> decltype(auto) {
      const detail::PublishOnExit<M> publish_end{end, msg};
      try {
        return detail::invoke_wrapping_last(
            std::forward<F>(fn),
            [&]<class C>(C&& callback) {
              // Captured here, inside the start window: the callback's context.
              return detail::TracedCallback<M, std::decay_t<C>>(trace, ContextFrame::current(),
                                                                std::forward<C>(callback));
            },
            std::forward<Args>(args)...);
      } catch (...) {
        error.publish(msg);
        throw;
      }
    });
  }

 private:
  template <class, class>
  friend class detail::TracedCallback;

  template <class T>
  static Task<T> traced_task(TracingChannel& channel, M message, Task<T> task) {
    // A Task starts from its awaiter's slots, as a call: this is the awaiter's context.
    const ContextFrame awaiter = ContextFrame::current();
    channel.start.enter_stores(message);
    channel.end.publish(message);
    std::exception_ptr failure;
    if constexpr (std::is_void_v<T>) {
      try {
        co_await std::move(task);
      } catch (...) {
        failure = std::current_exception();
      }
      channel.finish_task(awaiter, message, failure);
    } else if constexpr (std::is_reference_v<T>) {
      std::remove_reference_t<T>* result = nullptr;
      try {
        result = std::addressof(co_await std::move(task));
      } catch (...) {
        failure = std::current_exception();
      }
      channel.finish_task(awaiter, message, failure);
      co_return static_cast<T>(*result);
    } else {
      std::optional<T> result;
      try {
        result.emplace(co_await std::move(task));
      } catch (...) {
        failure = std::current_exception();
      }
      channel.finish_task(awaiter, message, failure);
      co_return std::move(*result);
    }
  }

  /// After the traced Task completed, on the thread that completed it: publishes the async
  /// events in the awaiter's values, leaves what the Task left, rethrows its exception.
  // NOTE: not inlined into the coroutine: clang before 16 may reuse a thread_local's address
  // computed before the co_await (see detail::after_resume); here it is computed afresh.
  [[gnu::noinline]] void finish_task(const ContextFrame& awaiter, M& message,
                                     const std::exception_ptr& failure) {
    detail::FrameData* const left = detail::slots().inherited;
    awaiter.run([&] {
      if (failure) publish_error(message, failure);
      async_start.publish(message);
      async_end.publish(message);
    });
    // Replaces the stores entered at the start: the awaiter inherits what the Task left.
    detail::retain(left);
    detail::enter_frame(left);
    if (failure) std::rethrow_exception(failure);
  }

  /// Publishes `error` with `failure` as the exception being handled.
  void publish_error(M& message, const std::exception_ptr& failure) const noexcept {
    if (!error.has_subscribers()) return;
    try {
      std::rethrow_exception(failure);
    } catch (...) {
      error.publish(message);
    }
  }
};

namespace detail {

/// What a traced callback shares with the call that initiated it.
template <class M>
struct CallbackTrace {
  CallbackTrace(TracingChannel<M>& c, M&& m) : channel(&c), message(std::move(m)) {}
  TracingChannel<M>* channel;
  M message;
};

/// The callback `trace_callback` hands to the traced function. Copyable when the callback is.
template <class M, class Callback>
class TracedCallback {
 public:
  template <class C>
  TracedCallback(std::shared_ptr<CallbackTrace<M>> trace, ContextFrame frame, C&& callback)
      : trace_(std::move(trace)), frame_(std::move(frame)), callback_(std::forward<C>(callback)) {}

  template <class... A>
  requires std::invocable<Callback&, A...>
  decltype(auto) operator()(A&&... a) {
    if (trace_ == nullptr) [[unlikely]] {
      return std::invoke(callback_, std::forward<A>(a)...);  // nobody listened when it was made
    }
    // On the stack: the window stays valid even if the callback destroys this object.
    const std::shared_ptr<CallbackTrace<M>> trace = trace_;
    const ContextFrame frame = frame_;
    return frame.inherit([&]() -> decltype(auto) {
      TracingChannel<M>& channel = *trace->channel;
      M& message = trace->message;
      if constexpr (sizeof...(A) > 0) publish_error(channel, message, a...);
      return channel.async_start.run_stores(message, [&]() -> decltype(auto) {
        const PublishOnExit<M> publish_end{channel.async_end, message};
        return std::invoke(callback_, std::forward<A>(a)...);
      });
    });
  }

 private:
  template <class First, class... Rest>
  static void publish_error(TracingChannel<M>& channel, M& message, const First& first,
                            const Rest&...) {
    using E = std::remove_cvref_t<First>;
    if constexpr (std::is_same_v<E, std::exception_ptr>) {
      if (first) channel.publish_error(message, first);
    } else if constexpr (std::is_same_v<E, std::error_code>) {
      if (first && channel.error.has_subscribers()) {
        try {
          throw std::system_error(first);
        } catch (...) {
          channel.error.publish(message);
        }
      }
    }
  }

  std::shared_ptr<CallbackTrace<M>> trace_;
  ContextFrame frame_;
  Callback callback_;
};

}  // namespace detail
}  // namespace ucm
