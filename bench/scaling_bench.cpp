// SPDX-License-Identifier: MIT
// Scaling: 1 and 2 threads doing get, capture and call windows at the same time, each on its own
// context. Nothing on these paths shares a cache line between threads, so 2 threads should do
// nearly twice the work of one. The report divides the 2-thread throughput by the 1-thread one;
// the baseline (a thread_local swap, which shares nothing by construction) shows how much of a
// second core this machine really gives.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

namespace {

using ucm_bench::Context;

void scaling_baseline(benchmark::State& state) {
  int value = 0;
  for (auto _ : state) {
    int* saved = ucm_bench::raw_slot();
    ucm_bench::raw_slot() = &value;
    benchmark::ClobberMemory();
    ucm_bench::raw_slot() = saved;
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(scaling_baseline)->Threads(1)->Threads(2)->UseRealTime();

void scaling_get(benchmark::State& state) {
  const Context context(8);  // this thread's own variables and frame
  context.frame.run([&] {
    std::size_t i = 0;
    for (auto _ : state) {
      benchmark::DoNotOptimize(context.variables[i]->get());
      i = (i + 1) & 7;
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(scaling_get)->Threads(1)->Threads(2)->UseRealTime();

void scaling_capture(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] {
    for (auto _ : state) {
      ucm::ContextFrame frame = ucm::ContextFrame::current();
      benchmark::DoNotOptimize(frame);
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(scaling_capture)->Threads(1)->Threads(2)->UseRealTime();

void scaling_call_window(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> variable;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) variable.run(++value, [] { benchmark::ClobberMemory(); });
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(scaling_call_window)->Threads(1)->Threads(2)->UseRealTime();

// All three together, as a request handler mixes them.
void scaling_mixed(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> variable;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      variable.run(++value, [&] {
        benchmark::DoNotOptimize(context.variables[3]->get());
        ucm::ContextFrame frame = ucm::ContextFrame::current();
        benchmark::DoNotOptimize(frame);
      });
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(scaling_mixed)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
