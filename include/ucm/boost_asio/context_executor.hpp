// SPDX-License-Identifier: MIT
// ucm/boost_asio/context_executor.hpp: ucm::boost_asio::ContextExecutor<Ex>, an executor adaptor
// for Boost.Asio: submitted functions run in a continuation window of the frame captured at
// submission. Part of ucm/boost_asio.hpp (target ucm::boost_asio); the same for standalone Asio is
// ucm/asio/context_executor.hpp, from the same implementation
// (ucm/detail/asio_context_executor.hpp).
#pragma once

#include <boost/asio.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include "ucm/boost_asio/detail/associators.hpp"

#define UCM_ASIO_NS boost::asio
#define UCM_ASIO_UCM_NS boost_asio
#define UCM_ASIO_ERROR_NS boost::system
#include "ucm/detail/asio_context_executor.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
