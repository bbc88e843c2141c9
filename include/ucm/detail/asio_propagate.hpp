// SPDX-License-Identifier: MIT
// ucm/detail/asio_propagate.hpp: propagate(token), written once for either Asio, with the
// macros naming it (see ucm/detail/asio_associators.hpp). ucm/asio/propagate.hpp includes it for
// standalone Asio, ucm/boost_asio/propagate.hpp for Boost.Asio. Not a public header.
// NOTE: no include guard. The including header's own `#pragma once` is the guard of its
// instantiation.

#if defined(UCM_ASIO_NS) && defined(UCM_ASIO_UCM_NS) && defined(UCM_ASIO_ERROR_NS)

#include <concepts>
#include <type_traits>
#include <utility>

#include "ucm/detail/asio_shared.hpp"

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

#endif  // UCM_ASIO_NS && UCM_ASIO_UCM_NS && UCM_ASIO_ERROR_NS
