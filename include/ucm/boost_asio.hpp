// SPDX-License-Identifier: MIT
// ucm/boost_asio.hpp: context propagation for Boost.Asio and Boost.Beast (target
// ucm::boost_asio). Tested with Boost 1.81 (Asio 1.26, Beast 345).
//
//   ucm::boost_asio::propagate(token)      a completion-token adapter: the completion handler
//                                          runs in a continuation window of the frame captured
//                                          at initiation
//   ucm::boost_asio::use_task              a completion token that makes a Boost.Asio (or Beast)
//                                          operation awaitable from a ucm::Task
//   ucm::boost_asio::ContextExecutor<Ex>   an executor adaptor: submitted functions run in a
//                                          continuation window of the frame captured at
//                                          submission
//
// Exactly the tools and semantics of ucm/asio.hpp for standalone Asio, from the same
// implementation (ucm/detail/asio_integration.hpp), so both headers may be included in one
// program. Errors are Boost's: use_task throws an operation's `boost::system::error_code` as a
// `boost::system::system_error`, as `boost::asio::use_awaitable` does. For W3C headers on Beast
// messages, include ucm/propagation/beast.hpp.
#pragma once

#include <boost/asio.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#define UCM_ASIO_NS boost::asio
#define UCM_ASIO_UCM_NS boost_asio
#define UCM_ASIO_ERROR_NS boost::system
#include "ucm/detail/asio_integration.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
