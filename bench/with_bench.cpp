// SPDX-License-Identifier: MIT
// ucm::with: setting 4 variables at once builds one frame with one allocation. Compared in the
// report with var.run setting one (variable_bench) and malloc+free of one small block.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

namespace {

using ucm_bench::Context;

// with(a).with(b).with(c).with(d).run on a frame of 8 variables.
void with_4(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> a;
  const ucm::ContextVariable<int> b;
  const ucm::ContextVariable<int> c;
  const ucm::ContextVariable<int> d;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      ++value;
      ucm::with(a, value).with(b, value).with(c, value).with(d, value).run(
          [] { benchmark::ClobberMemory(); });
    }
  });
}
BENCHMARK(with_4);

// Four nested var.run windows setting the same four variables: four frames, four blocks.
void nested_run_4(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> a;
  const ucm::ContextVariable<int> b;
  const ucm::ContextVariable<int> c;
  const ucm::ContextVariable<int> d;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      ++value;
      a.run(value, [&] {
        b.run(value,
              [&] { c.run(value, [&] { d.run(value, [] { benchmark::ClobberMemory(); }); }); });
      });
    }
  });
}
BENCHMARK(nested_run_4);

}  // namespace
