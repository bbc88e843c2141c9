// SPDX-License-Identifier: MIT
// ContextFrame: capture (ContextFrame::current() copied and dropped) against one atomic
// increment+decrement pair, and a bound continuation invoked against calling its function
// directly.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

#include "bench_support.hpp"

namespace {

using ucm::ContextFrame;
using ucm_bench::Context;

// Baseline: what capture must cost at least, one reference-count increment and its release.
std::atomic<std::uint32_t> counter{1};

void baseline_atomic_inc_dec(benchmark::State& state) {
  for (auto _ : state) {
    counter.fetch_add(1, std::memory_order_relaxed);
    counter.fetch_sub(1, std::memory_order_acq_rel);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(baseline_atomic_inc_dec);

void capture(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] {
    for (auto _ : state) {
      ContextFrame frame = ContextFrame::current();
      benchmark::DoNotOptimize(frame);
    }
  });
}
BENCHMARK(capture);

// Baseline: the work a continuation does (ucm_bench::work), called directly.
using ucm_bench::work;

void baseline_direct_call(benchmark::State& state) {
  int x = 1;
  for (auto _ : state) work(&x);
}
BENCHMARK(baseline_direct_call);

// A callable made by ContextFrame::bind, invoked: enter a continuation window (current,
// inherited and base become the captured frame) and leave it.
void continuation(benchmark::State& state) {
  const Context context(8);
  int x = 1;
  auto bound = context.frame.run([&] { return ContextFrame::bind([&x] { work(&x); }); });
  for (auto _ : state) bound();
}
BENCHMARK(continuation);

// frame.run: a call window over an existing frame (no frame built).
void frame_run(benchmark::State& state) {
  const Context context(8);
  int x = 1;
  for (auto _ : state) context.frame.run([&x] { work(&x); });
}
BENCHMARK(frame_run);

// The pattern of a handler that starts one asynchronous operation: a call window over an existing
// frame in which the frame is captured once, the capture dropped after the window closed.
void frame_run_capture_once(benchmark::State& state) {
  const Context context(8);
  for (auto _ : state) {
    ContextFrame captured;
    context.frame.run([&captured] { captured = ContextFrame::current(); });
    benchmark::DoNotOptimize(captured);
  }
}
BENCHMARK(frame_run_capture_once);

// frame.with: a new frame with one more binding, built and dropped (no window).
void frame_with(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const ucm::ContextVariable<int> extra;
  for (auto _ : state) {
    ContextFrame frame = context.frame.with(extra, 7);
    benchmark::DoNotOptimize(frame);
  }
}
BENCHMARK(frame_with)->Arg(1)->Arg(8)->Arg(64);

}  // namespace
