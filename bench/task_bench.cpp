// SPDX-License-Identifier: MIT
// Coroutines: `co_await` of a trivial ucm::Task against two baselines: the same task type with
// propagation compiled out (bare_task.hpp: ucm's trampoline, result type and checks, no slots),
// and a plain task with nothing but symmetric transfer (cppcoro's shape; plain_task.hpp); and
// ucm::when_all of 8 trivial Tasks against 8 sequential awaits. Every task type allocates its
// coroutine frame with the global operator new.
#include <benchmark/benchmark.h>

#include "bare_task.hpp"
#include "bench_support.hpp"
#include "plain_task.hpp"
#include "ucm/task.hpp"

namespace {

using ucm_bench::BareTask;
using ucm_bench::Context;
using ucm_bench::PlainTask;

BareTask<int> bare_trivial() { co_return 1; }

BareTask<int> bare_await_loop(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(co_await bare_trivial());
  co_return 0;
}

void baseline_bare_task_await(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] { bare_await_loop(state).run(); });
}
BENCHMARK(baseline_bare_task_await);

PlainTask<int> plain_trivial() { co_return 1; }

PlainTask<int> plain_await_loop(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(co_await plain_trivial());
  co_return 0;
}

PlainTask<int> plain_await_8_loop(benchmark::State& state) {
  for (auto _ : state) {
    for (int i = 0; i < 8; ++i) benchmark::DoNotOptimize(co_await plain_trivial());
  }
  co_return 0;
}

void baseline_plain_task_await(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] { plain_await_loop(state).run(); });
}
BENCHMARK(baseline_plain_task_await);

void baseline_plain_task_await_8(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] { plain_await_8_loop(state).run(); });
}
BENCHMARK(baseline_plain_task_await_8);

// ---- ucm::Task ------------------------------------------------------------------------------

ucm::Task<int> ucm_trivial() { co_return 1; }

ucm::Task<int> ucm_await_loop(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(co_await ucm_trivial());
  co_return 0;
}

ucm::Task<int> ucm_when_all_8_loop(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(co_await ucm::when_all(ucm_trivial(), ucm_trivial(), ucm_trivial(),
                                                    ucm_trivial(), ucm_trivial(), ucm_trivial(),
                                                    ucm_trivial(), ucm_trivial()));
  }
  co_return 0;
}

ucm::Task<int> ucm_await_8_loop(benchmark::State& state) {
  for (auto _ : state) {
    for (int i = 0; i < 8; ++i) benchmark::DoNotOptimize(co_await ucm_trivial());
  }
  co_return 0;
}

void task_await(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] { ucm::sync_wait(ucm_await_loop(state)); });
}
BENCHMARK(task_await);

void task_await_8(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] { ucm::sync_wait(ucm_await_8_loop(state)); });
}
BENCHMARK(task_await_8);

void task_when_all_8(benchmark::State& state) {
  const Context context(8);
  context.frame.run([&] { ucm::sync_wait(ucm_when_all_8_loop(state)); });
}
BENCHMARK(task_when_all_8);

}  // namespace
