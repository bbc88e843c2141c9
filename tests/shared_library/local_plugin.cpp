// SPDX-License-Identifier: MIT
// A plugin as a host loads it with dlopen(RTLD_LOCAL): built twice, as ucm_test_local_plugin_a
// (its variable holds a std::string) and ucm_test_local_plugin_b (a long), with hidden
// visibility. Under clang, which gives inline statics no STB_GNU_UNIQUE binding, each copy has
// its own ucm state, variable id source included: plugins_test.cpp checks that the two never
// give out the same id, so a frame made in one never shows its value under the other's
// variable, of another type. Only the extern "C" functions below are exported.
#include <cstdint>
#include <string>

#include "ucm/frame.hpp"
#include "ucm/variable.hpp"

#define UCM_PLUGIN_EXPORT extern "C" [[gnu::visibility("default")]]

namespace {
#if defined(UCM_PLUGIN_HOLDS_LONG)
using Value = long;
Value value() { return 42; }
#else
using Value = std::string;
Value value() { return "a std::string from plugin a, not a long"; }
#endif

const ucm::ContextVariable<Value>& variable() {
  static const ucm::ContextVariable<Value> instance;
  return instance;
}
}  // namespace

/// The id of this plugin's variable (a test-only hook through detail::VariableAccess).
UCM_PLUGIN_EXPORT std::uint64_t ucm_plugin_variable_id() {
  return ucm::detail::VariableAccess::id(variable());
}

/// The id of a variable created (and destroyed) now.
UCM_PLUGIN_EXPORT std::uint64_t ucm_plugin_new_variable_id() {
  const ucm::ContextVariable<Value> fresh;
  return ucm::detail::VariableAccess::id(fresh);
}

/// A new frame binding this plugin's variable; free it with ucm_plugin_free_frame.
UCM_PLUGIN_EXPORT void* ucm_plugin_make_frame() {
  return new ucm::ContextFrame(ucm::ContextFrame().with(variable(), value()));
}

UCM_PLUGIN_EXPORT void ucm_plugin_free_frame(void* frame) {
  delete static_cast<ucm::ContextFrame*>(frame);
}

/// Whether this plugin's variable has a value in `frame` (made by either plugin).
UCM_PLUGIN_EXPORT bool ucm_plugin_reads(const void* frame) {
  return static_cast<const ucm::ContextFrame*>(frame)->get(variable()) != nullptr;
}
