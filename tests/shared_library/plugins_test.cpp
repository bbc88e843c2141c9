// SPDX-License-Identifier: MIT
// Two plugins loaded with dlopen(RTLD_LOCAL), each with its own copy of ucm's state under clang
// (local_plugin.cpp): variable ids stay unique in the process, so a frame passed from one
// plugin to the other never shows a value under a variable of another type. With g++, whose
// inline statics are STB_GNU_UNIQUE, the copies share their state and this holds trivially.
// The program itself links no ucm library: its own variables draw ids from a third copy.
#include <dlfcn.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <string>

#include "ucm/variable.hpp"

namespace {

/// A plugin's exported functions. Plugins stay loaded: a host that unloads one also unmaps the
/// static that keeps its variable-id blocks reachable (they are never freed, so that no id is
/// ever given out again).
struct Plugin {
  explicit Plugin(const char* path) {
    handle = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
    INFO((handle == nullptr ? ::dlerror() : path));
    REQUIRE(handle != nullptr);
    variable_id = symbol<std::uint64_t (*)()>("ucm_plugin_variable_id");
    new_variable_id = symbol<std::uint64_t (*)()>("ucm_plugin_new_variable_id");
    make_frame = symbol<void* (*)()>("ucm_plugin_make_frame");
    free_frame = symbol<void (*)(void*)>("ucm_plugin_free_frame");
    reads = symbol<bool (*)(const void*)>("ucm_plugin_reads");
  }
  template <class F>
  F symbol(const char* name) const {
    void* address = ::dlsym(handle, name);
    INFO(name);
    REQUIRE(address != nullptr);
    return reinterpret_cast<F>(address);
  }

  void* handle = nullptr;
  std::uint64_t (*variable_id)() = nullptr;
  std::uint64_t (*new_variable_id)() = nullptr;
  void* (*make_frame)() = nullptr;
  void (*free_frame)(void*) = nullptr;
  bool (*reads)(const void*) = nullptr;
};

Plugin& plugin_a() {
  static Plugin plugin(UCM_LOCAL_PLUGIN_A);
  return plugin;
}
Plugin& plugin_b() {
  static Plugin plugin(UCM_LOCAL_PLUGIN_B);
  return plugin;
}

}  // namespace

TEST_CASE("variables of plugins loaded with RTLD_LOCAL never share an id",
          "[shared-library][plugins]") {
  Plugin& a = plugin_a();
  Plugin& b = plugin_b();
  std::set<std::uint64_t> ids;
  std::size_t drawn = 0;
  const auto add = [&](std::uint64_t id) {
    CHECK(id != 0);
    ids.insert(id);
    ++drawn;
  };
  add(a.variable_id());
  add(b.variable_id());
  for (int i = 0; i < 1000; ++i) {
    add(a.new_variable_id());
    add(b.new_variable_id());
    const ucm::ContextVariable<int> mine;
    add(ucm::detail::VariableAccess::id(mine));
  }
  CHECK(ids.size() == drawn);
}

TEST_CASE("a frame made in one plugin shows nothing under the other plugin's variable",
          "[shared-library][plugins]") {
  Plugin& a = plugin_a();
  Plugin& b = plugin_b();
  void* from_a = a.make_frame();
  void* from_b = b.make_frame();
  CHECK(a.reads(from_a));
  CHECK(b.reads(from_b));
  CHECK_FALSE(b.reads(from_a));  // plugin a's std::string read as plugin b's long
  CHECK_FALSE(a.reads(from_b));
  a.free_frame(from_a);
  b.free_frame(from_b);
}
