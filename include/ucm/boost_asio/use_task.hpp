// SPDX-License-Identifier: MIT
// ucm/boost_asio/use_task.hpp: ucm::boost_asio::use_task, a completion token that makes a
// Boost.Asio operation awaitable from a ucm::Task (or any coroutine). Part of ucm/boost_asio.hpp
// (target ucm::boost_asio); the same for standalone Asio is ucm/asio/use_task.hpp, from the same
// implementation (ucm/detail/asio_use_task.hpp).
#pragma once

#include <boost/asio.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include "ucm/boost_asio/detail/associators.hpp"

#define UCM_ASIO_NS boost::asio
#define UCM_ASIO_UCM_NS boost_asio
#define UCM_ASIO_ERROR_NS boost::system
#include "ucm/detail/asio_use_task.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
