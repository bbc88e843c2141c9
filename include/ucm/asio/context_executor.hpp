// SPDX-License-Identifier: MIT
// ucm/asio/context_executor.hpp: ucm::asio::ContextExecutor<Ex>, an executor adaptor for standalone
// Asio: submitted functions run in a continuation window of the frame captured at submission. Part
// of ucm/asio.hpp (target ucm::asio); the same for Boost.Asio is
// ucm/boost_asio/context_executor.hpp, from the same implementation
// (ucm/detail/asio_context_executor.hpp).
#pragma once

#include <asio.hpp>
#include <system_error>

#include "ucm/asio/detail/associators.hpp"

#define UCM_ASIO_NS asio
#define UCM_ASIO_UCM_NS asio
#define UCM_ASIO_ERROR_NS std
#include "ucm/detail/asio_context_executor.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
