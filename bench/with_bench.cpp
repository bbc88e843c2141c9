// SPDX-License-Identifier: MIT
// ucm::with: setting 4 variables at once builds one frame with one allocation. Compared in the
// report with var.run setting one (variable_bench) and malloc+free of one small block.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

namespace {

using ucm_bench::Context;

// The four variables both benchmarks set, on top of a frame of 8.
struct Four {
  ucm::ContextVariable<int> a, b, c, d;
};

// with(a).with(b).with(c).with(d).run on a frame of 8 variables.
void with_4(benchmark::State& state) {
  const Context context(8);
  const Four v;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      ++value;
      ucm::with(v.a, value).with(v.b, value).with(v.c, value).with(v.d, value).run([] {
        benchmark::ClobberMemory();
      });
    }
  });
}
BENCHMARK(with_4);

// Four nested var.run windows setting the same four variables: four frames, four blocks.
void nested_run_4(benchmark::State& state) {
  const Context context(8);
  const Four v;
  context.frame.run([&] {
    int value = 0;
    for (auto _ : state) {
      ++value;
      v.a.run(value, [&] {
        v.b.run(value, [&] {
          v.c.run(value, [&] { v.d.run(value, [] { benchmark::ClobberMemory(); }); });
        });
      });
    }
  });
}
BENCHMARK(nested_run_4);

}  // namespace
