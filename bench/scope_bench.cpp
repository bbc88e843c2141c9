// SPDX-License-Identifier: MIT
// ContextVariableScope and ContextFrameScope: the RAII windows, against the same baselines as
// var.run (a thread_local swap-and-restore, malloc+free of one small block; in variable_bench).
#include <benchmark/benchmark.h>

#include <cstddef>

#include "bench_support.hpp"

namespace {

using ucm_bench::Context;

// ContextVariableScope setting one variable not yet in a frame of n variables.
void variable_scope(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const ucm::ContextVariable<int> variable;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      const ucm::ContextVariableScope scope(variable, ++value);
      benchmark::ClobberMemory();
    }
  });
}
BENCHMARK(variable_scope)->Arg(1)->Arg(8)->Arg(64);

// ContextFrameScope over a captured frame (a continuation window; the scope takes the frame by
// value, so moving one in costs no increment).
void frame_scope(benchmark::State& state) {
  const Context context(8);
  for (auto _ : state) {
    const ucm::ContextFrameScope scope(context.frame);  // one copy: increment + release
    benchmark::ClobberMemory();
  }
}
BENCHMARK(frame_scope);

}  // namespace
