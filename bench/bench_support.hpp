// SPDX-License-Identifier: MIT
// Helpers shared by ucm's benchmarks: a set of variables and a frame that binds them, built the
// way a request boundary builds one (one frame for all of them, as `ucm::with` or
// `ContextManager::build` do), and the raw thread_local the baselines read.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "ucm/ucm.hpp"

namespace ucm_bench {

/// `count` variables of type int and one frame binding each of them to its index.
struct Context {
  explicit Context(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      variables.push_back(std::make_unique<ucm::ContextVariable<int>>());
    }
    std::vector<int> values(count);
    std::vector<ucm::detail::Binding> bindings;
    for (std::size_t i = 0; i < count; ++i) {
      values[i] = static_cast<int>(i);
      bindings.push_back(ucm::detail::forward_binding<int>(
          ucm::detail::VariableAccess::id(*variables[i]), values[i]));
    }
    frame = ucm::detail::FrameAccess::adopt(
        ucm::detail::build_frame(nullptr, bindings.data(), bindings.size()));
  }

  std::vector<std::unique_ptr<ucm::ContextVariable<int>>> variables;
  ucm::ContextFrame frame;
};

/// How the frame a benchmark reads was built: the shapes real code makes, beyond one flat frame.
enum class Shape : int {
  flat,         // the Context's frame as it is: one frame for every variable
  with_chain,   // then 8 successive `f = f.with(extra, k)`, as middleware after middleware does
  nested_runs,  // then 8 nested `extra.run(k, ...)` windows
  enters,       // then a loop of 8 `extra.enter(k)` in a continuation window
};
inline constexpr int shape_layers = 8;

/// Runs `fn()` where the current frame is `context`'s built up as `shape` says, with the 8 extra
/// variables of `layers`.
template <class F>
void in_shape(Shape shape, const Context& context, const Context& layers, F&& fn) {
  switch (shape) {
    case Shape::flat:
      context.frame.run(fn);
      break;
    case Shape::with_chain: {
      ucm::ContextFrame f = context.frame;
      for (int k = 0; k < shape_layers; ++k) {
        f = f.with(*layers.variables[static_cast<std::size_t>(k)], k);
      }
      f.run(fn);
      break;
    }
    case Shape::nested_runs: {
      auto nest = [&](auto& self, int k) -> void {
        if (k == shape_layers) {
          fn();
          return;
        }
        layers.variables[static_cast<std::size_t>(k)]->run(k, [&] { self(self, k + 1); });
      };
      context.frame.run([&] { nest(nest, 0); });
      break;
    }
    case Shape::enters:
      context.frame.inherit([&] {
        for (int k = 0; k < shape_layers; ++k) {
          layers.variables[static_cast<std::size_t>(k)]->enter(k);
        }
        fn();
      });
      break;
  }
}

/// The baselines' thread_local pointer: what a hand-rolled "current request" global costs.
/// Reached the way ucm reaches its slots (a constant-initialised thread_local in an inline
/// function), so the two pay the same TLS access.
inline int*& raw_slot() noexcept {
  static thread_local constinit int* slot = nullptr;
  return slot;
}

/// A small value the baselines point their thread_local at.
inline int raw_value = 42;

/// The work a continuation runs in the benchmarks: not inlined, so every side (ucm's bound
/// callable, the direct call, the naive map's continuation) pays the same call and only the
/// context switching differs.
[[gnu::noinline]] inline void work(int* p) { asm volatile("" : : "r"(*p) : "memory"); }

}  // namespace ucm_bench
