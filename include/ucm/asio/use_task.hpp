// SPDX-License-Identifier: MIT
// ucm/asio/use_task.hpp: ucm::asio::use_task, a completion token that makes a standalone Asio
// operation awaitable from a ucm::Task (or any coroutine). Part of ucm/asio.hpp (target ucm::asio);
// the same for Boost.Asio is ucm/boost_asio/use_task.hpp, from the same implementation
// (ucm/detail/asio_use_task.hpp).
#pragma once

#include <asio.hpp>
#include <system_error>

#include "ucm/asio/detail/associators.hpp"

#define UCM_ASIO_NS asio
#define UCM_ASIO_UCM_NS asio
#define UCM_ASIO_ERROR_NS std
#include "ucm/detail/asio_use_task.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
