// SPDX-License-Identifier: MIT
// ucm/detail/asio_associators.hpp: the associators of the binder behind ContextFrame::bind,
// propagate's handlers and ContextExecutor's functions, for one Asio.
//
// ucm's Asio integration is written once for either Asio: this header, and one per tool
// (ucm/detail/asio_propagate.hpp, ucm/detail/asio_context_executor.hpp,
// ucm/detail/asio_use_task.hpp). Each tool's public header includes its part for its Asio
// (ucm/asio/*.hpp for standalone Asio, ucm/boost_asio/*.hpp for Boost.Asio), once, with three
// macros naming the Asio:
//
//   UCM_ASIO_NS         the Asio namespace, without the leading `::`:  asio  /  boost::asio
//   UCM_ASIO_UCM_NS     ucm's namespace for it, inside ucm::           asio  /  boost_asio
//   UCM_ASIO_ERROR_NS   where its error_code and system_error live:    std   /  boost::system
//
// so both Asios may be used in one program: what names an Asio (the associator and
// async_result specialisations, ContextExecutor, the tokens) exists once per Asio, and what does
// not (ucm/detail/asio_shared.hpp) once in all. Without the macros (compiled on its own, as the
// header-set check does) each part declares nothing. Not public headers: include ucm/asio.hpp
// or ucm/boost_asio.hpp, or one tool's header (ucm/asio/propagate.hpp, ...).
//
// Every `::UCM_ASIO_NS::` below is fully qualified: inside namespace ucm, `asio` is ucm::asio.
// The documentation speaks of `ucm::asio` and `asio::`; for Boost.Asio read `ucm::boost_asio`
// and `boost::asio::`.
// NOTE: no include guard. The including header's own `#pragma once` is the guard of its
// instantiation: for this part, ucm/asio/detail/associators.hpp and
// ucm/boost_asio/detail/associators.hpp, which every tool's header of their Asio includes.

#if defined(UCM_ASIO_NS) && defined(UCM_ASIO_UCM_NS) && defined(UCM_ASIO_ERROR_NS)

#include "ucm/detail/asio_shared.hpp"
#include "ucm/detail/bound_continuation.hpp"

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

#endif  // UCM_ASIO_NS && UCM_ASIO_UCM_NS && UCM_ASIO_ERROR_NS
