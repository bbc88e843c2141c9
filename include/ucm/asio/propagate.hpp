// SPDX-License-Identifier: MIT
// ucm/asio/propagate.hpp: ucm::asio::propagate(token), a completion-token adapter for standalone
// Asio: the completion handler runs in a continuation window of the frame captured at initiation.
// Part of ucm/asio.hpp (target ucm::asio); the same for Boost.Asio is
// ucm/boost_asio/propagate.hpp, from the same implementation (ucm/detail/asio_propagate.hpp).
#pragma once

#include <asio.hpp>
#include <system_error>

#include "ucm/asio/detail/associators.hpp"

#define UCM_ASIO_NS asio
#define UCM_ASIO_UCM_NS asio
#define UCM_ASIO_ERROR_NS std
#include "ucm/detail/asio_propagate.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
