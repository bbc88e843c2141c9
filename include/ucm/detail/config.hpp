// SPDX-License-Identifier: MIT
// ucm/detail/config.hpp: macros every ucm header may need. Nothing here is public API.
#pragma once

// UCM_SHARED_STATE: marks the inline functions whose statics must be one per program (the
// variable id counter, the per-thread slots, block cache and run queue, the misuse handler) as
// exported even when a shared library is built with -fvisibility=hidden or
// -fvisibility-inlines-hidden. Without it, each such library would get its own copies: context
// set in one would be invisible in another, and two variables in different libraries could be
// given the same id.
#if defined(__GNUC__) || defined(__clang__)
#define UCM_SHARED_STATE [[gnu::visibility("default")]]
#else
#define UCM_SHARED_STATE
#endif
