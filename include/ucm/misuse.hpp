// SPDX-License-Identifier: MIT
// ucm/misuse.hpp: what happens when the library is misused (a scope closed out of order).
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "ucm/detail/config.hpp"

namespace ucm {

/// Called with a short description when ucm detects misuse it can recover from, such as a scope
/// destroyed out of LIFO order. It must not throw. The library has already made the state
/// defined (the scope restored exactly what it saved) before it calls the handler.
using misuse_handler = void (*)(const char* what) noexcept;

namespace detail {
UCM_SHARED_STATE inline std::atomic<misuse_handler>& misuse_handler_slot() noexcept {
  static std::atomic<misuse_handler> handler{nullptr};
  return handler;
}
}  // namespace detail

/// Installs `handler` (nullptr restores the default) and returns the previous one. The default
/// prints the description and aborts in debug builds (like `assert`), and does nothing when
/// `NDEBUG` is defined. Thread-safe.
inline misuse_handler set_misuse_handler(misuse_handler handler) noexcept {
  return detail::misuse_handler_slot().exchange(handler, std::memory_order_acq_rel);
}

namespace detail {
[[gnu::cold]] inline void report_misuse(const char* what) noexcept {
  if (misuse_handler handler = misuse_handler_slot().load(std::memory_order_acquire)) {
    handler(what);
    return;
  }
#ifndef NDEBUG
  std::fprintf(stderr, "ucm: misuse: %s\n", what);
  std::abort();
#endif
}
}  // namespace detail

}  // namespace ucm
