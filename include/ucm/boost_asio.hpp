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
// implementation (ucm/detail/asio_*.hpp), so both headers may be included in one program. Errors
// are Boost's: use_task throws an operation's `boost::system::error_code` as a
// `boost::system::system_error`, as `boost::asio::use_awaitable` does. For W3C headers on Beast
// messages, include ucm/propagation/beast.hpp.
//
// Each tool has a header of its own, which this one includes: ucm/boost_asio/propagate.hpp,
// ucm/boost_asio/use_task.hpp and ucm/boost_asio/context_executor.hpp.
#pragma once

#include "ucm/boost_asio/context_executor.hpp"
#include "ucm/boost_asio/propagate.hpp"
#include "ucm/boost_asio/use_task.hpp"
