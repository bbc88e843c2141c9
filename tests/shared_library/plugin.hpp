// SPDX-License-Identifier: MIT
// A shared library built with -fvisibility=hidden and -fvisibility-inlines-hidden, as many
// plugins and large codebases are. ucm's per-program state (slots, run queue, variable ids,
// misuse handler) must still be one per program: shared_library_test.cpp checks that context
// crosses the boundary in both directions.
#pragma once

#include <map>
#include <string>

#include "ucm/task.hpp"
#include "ucm/variable.hpp"

#define UCM_PLUGIN_API [[gnu::visibility("default")]]

namespace plugin {

/// The value `v` has here, read inside the library; -1 when unbound.
UCM_PLUGIN_API int get(const ucm::ContextVariable<int>& v);

/// Runs `fn` with `v` set to `value`, the window opened inside the library.
UCM_PLUGIN_API void run(const ucm::ContextVariable<int>& v, int value, void (*fn)());

/// A variable created inside the library.
UCM_PLUGIN_API const ucm::ContextVariable<int>& variable();

/// Closes two scopes out of order, inside the library.
UCM_PLUGIN_API void close_scopes_out_of_order(const ucm::ContextVariable<int>& v);

/// A Task made in the library that awaits a child made in the library: `v` as the child saw it,
/// plus what the child set (`enter`) as the parent then sees it through get_inherited.
UCM_PLUGIN_API ucm::Task<int> task(const ucm::ContextVariable<int>& v);

/// `ucm::w3c::inject(headers)`, called inside the library.
UCM_PLUGIN_API void inject(std::map<std::string, std::string>& headers);

/// `ucm::w3c::extract(headers)` run as a continuation inside the library, calling `fn` there.
UCM_PLUGIN_API void extract_and_run(const std::map<std::string, std::string>& headers,
                                    void (*fn)());

/// Registers a codec for `v` under `key` inside the library (until `unregister_codec`).
UCM_PLUGIN_API void register_codec(const ucm::ContextVariable<int>& v, const char* key);
UCM_PLUGIN_API void unregister_codec();

}  // namespace plugin
