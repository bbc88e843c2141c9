// SPDX-License-Identifier: MIT
// ucm/boost_asio/detail/associators.hpp: ucm/detail/asio_associators.hpp for Boost.Asio, once
// however many of ucm/boost_asio/'s headers a program includes. Not a public header.
#pragma once

#include <boost/asio.hpp>

#define UCM_ASIO_NS boost::asio
#define UCM_ASIO_UCM_NS boost_asio
#define UCM_ASIO_ERROR_NS boost::system
#include "ucm/detail/asio_associators.hpp"
#undef UCM_ASIO_NS
#undef UCM_ASIO_UCM_NS
#undef UCM_ASIO_ERROR_NS
