// SPDX-License-Identifier: MIT
// ucm/asio/detail/associators.hpp: ucm/detail/asio_associators.hpp for standalone Asio, once
// however many of ucm/asio/'s headers a program includes. Not a public header.
#pragma once

#include <asio.hpp>

#define UCM_ASIO_NS asio
#define UCM_ASIO_UCM_NS asio
#define UCM_ASIO_ERROR_NS std
#include "ucm/detail/asio_associators.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
