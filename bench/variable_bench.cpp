// SPDX-License-Identifier: MIT
// ContextVariable: reading (get hit on frames of 1, 8, 64 variables, miss with a default,
// get_active, get_inherited) against a raw thread_local pointer read, and var.run setting one
// variable against a thread_local swap-and-restore and a malloc+free of one small block.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <string>

#include "bench_support.hpp"

namespace {

using ucm_bench::Context;

// Baseline: the physical limit of a read, one thread_local pointer load.
void baseline_thread_local_read(benchmark::State& state) {
  ucm_bench::raw_slot() = &ucm_bench::raw_value;
  for (auto _ : state) {
    int* p = ucm_bench::raw_slot();
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(baseline_thread_local_read);

// get() of a bound variable. Each iteration reads the next variable of the frame in turn, so
// the figure is the average over every position in the frame, not the luckiest one.
void get_hit(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  const Context context(n);
  context.frame.run([&] {
    std::size_t i = 0;
    for (auto _ : state) {
      benchmark::DoNotOptimize(context.variables[i]->get());
      i = (i + 1) & (n - 1);
    }
  });
}
BENCHMARK(get_hit)->Arg(1)->Arg(8)->Arg(64);

// get() on the frame shapes real code builds (see ucm_bench::Shape): args are the shape and the
// Context's variable count; each iteration reads the next of the Context's variables, the
// deepest in the chain, in turn.
void get_shape(benchmark::State& state) {
  const auto shape = static_cast<ucm_bench::Shape>(state.range(0));
  const std::size_t n = static_cast<std::size_t>(state.range(1));
  const Context context(n);
  const Context layers(ucm_bench::shape_layers);
  ucm_bench::in_shape(shape, context, layers, [&] {
    std::size_t i = 0;
    for (auto _ : state) {
      benchmark::DoNotOptimize(context.variables[i]->get());
      i = (i + 1) & (n - 1);
    }
  });
}
BENCHMARK(get_shape)->ArgsProduct({{0, 1, 2, 3}, {1, 8, 64}})->ArgNames({"shape", "n"});

// get() of one fixed variable (the last id of the frame: the far end of a linear scan).
void get_hit_last(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  const Context context(n);
  const auto& variable = *context.variables[n - 1];
  context.frame.run([&] {
    for (auto _ : state) benchmark::DoNotOptimize(variable.get());
  });
}
BENCHMARK(get_hit_last)->Arg(1)->Arg(8)->Arg(64);

// get() of a variable that is not bound and has a default: the whole frame is searched.
void get_miss_default(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const ucm::ContextVariable<int> variable{7};
  context.frame.run([&] {
    for (auto _ : state) benchmark::DoNotOptimize(variable.get());
  });
}
BENCHMARK(get_miss_default)->Arg(8);

// get_active() of a value bound in a call window (two lookups: current and the base).
void get_active(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> variable;
  context.frame.inherit([&] {
    variable.run(1, [&] {
      for (auto _ : state) benchmark::DoNotOptimize(variable.get_active());
    });
  });
}
BENCHMARK(get_active);

// get_inherited() of a value that flowed into the continuation.
void get_inherited(benchmark::State& state) {
  const Context context(8);
  const auto& variable = *context.variables[3];
  context.frame.inherit([&] {
    for (auto _ : state) benchmark::DoNotOptimize(variable.get_inherited());
  });
}
BENCHMARK(get_inherited);

// Baseline: a window that allocates nothing, a thread_local pointer swapped and restored,
// inline (as issue 3 measured it: 0.57 ns; a call around it would add more than the swap).
inline void swap_and_restore(int* value) {
  int* saved = ucm_bench::raw_slot();
  ucm_bench::raw_slot() = value;
  benchmark::ClobberMemory();
  ucm_bench::raw_slot() = saved;
}

void baseline_thread_local_swap(benchmark::State& state) {
  for (auto _ : state) swap_and_restore(&ucm_bench::raw_value);
}
BENCHMARK(baseline_thread_local_swap);

// Baseline: the allocation a window that builds a frame cannot avoid without a free list.
void baseline_malloc_free(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(64);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(baseline_malloc_free);

// var.run setting one variable not yet in a frame of n variables: the new frame is built (one
// block, the value inline), made current, and released when the window ends.
void variable_run(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const ucm::ContextVariable<int> variable;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      variable.run(++value, [] { benchmark::ClobberMemory(); });
    }
  });
}
BENCHMARK(variable_run)->Arg(1)->Arg(8)->Arg(64);

// var.run overwriting a variable the frame already has.
void variable_run_overwrite(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const auto& variable = *context.variables[0];
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      variable.run(++value, [] { benchmark::ClobberMemory(); });
    }
  });
}
BENCHMARK(variable_run_overwrite)->Arg(8);

// The same window with a std::string value (one that owns memory of its own: short strings
// stay inline, so no second allocation).
void variable_run_string(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<std::string> variable;
  context.frame.run([&] {
    for (auto _ : state) {
      variable.run("r-42", [] { benchmark::ClobberMemory(); });
    }
  });
}
BENCHMARK(variable_run_string);

}  // namespace
