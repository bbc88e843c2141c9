// SPDX-License-Identifier: MIT
// ucm/asio.hpp: context propagation for standalone Asio (target ucm::asio).
//
//   ucm::asio::propagate(token)      a completion-token adapter: the completion handler runs in a
//                                    continuation window of the frame captured at initiation
//   ucm::asio::use_task              a completion token that makes an Asio operation awaitable
//                                    from a ucm::Task (or any coroutine)
//   ucm::asio::ContextExecutor<Ex>   an executor adaptor: submitted functions run in a
//                                    continuation window of the frame captured at submission
//
// Inside Asio's own `asio::awaitable` coroutines Asio offers no hook on resumption: there only
// `propagate(asio::use_awaitable)` (per operation) is available, and a ContextVariableScope that
// spans a `co_await` is not safe. `ucm::Task` with `use_task` restores the coroutine's slots on
// every resumption and is the fully correct way to mix Asio and context.
//
// Each tool has a header of its own, which this one includes: ucm/asio/propagate.hpp,
// ucm/asio/use_task.hpp and ucm/asio/context_executor.hpp. The same tools for Boost.Asio are in
// ucm/boost_asio.hpp (ucm::boost_asio), from the same implementation (ucm/detail/asio_*.hpp);
// both headers may be included in one program.
#pragma once

#include "ucm/asio/context_executor.hpp"
#include "ucm/asio/propagate.hpp"
#include "ucm/asio/use_task.hpp"
