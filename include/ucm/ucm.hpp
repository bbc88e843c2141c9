// SPDX-License-Identifier: MIT
// ucm/ucm.hpp: the core of ucm (universal context management). The optional integrations have
// headers of their own: ucm/task.hpp (coroutines), ucm/channel.hpp (window channels, which need
// Task), ucm/asio.hpp (Asio), ucm/manager.hpp, ucm/propagation/w3c.hpp, and the logging
// integrations ucm/fmt.hpp and ucm/spdlog.hpp.
#pragma once

#include "ucm/frame.hpp"     // IWYU pragma: export
#include "ucm/misuse.hpp"    // IWYU pragma: export
#include "ucm/names.hpp"     // IWYU pragma: export
#include "ucm/scope.hpp"     // IWYU pragma: export
#include "ucm/variable.hpp"  // IWYU pragma: export
#include "ucm/with.hpp"      // IWYU pragma: export
