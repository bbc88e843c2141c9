// SPDX-License-Identifier: MIT
// Coroutines: `co_await` of a trivial ucm::Task against two baselines: the same task type with
// propagation compiled out (bare_task.hpp: ucm's trampoline, result type and checks, no slots),
// and a plain task with nothing but symmetric transfer (cppcoro's shape; tests/plain_task.hpp); and
// ucm::when_all of 8 trivial Tasks against 8 sequential awaits. Every task type allocates its
// coroutine frame with the global operator new.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "bare_task.hpp"
#include "bench_support.hpp"
#include "plain_task.hpp"
#include "ucm/task.hpp"

namespace {

using Clock = std::chrono::steady_clock;

using ucm_bench::BareTask;
using ucm_bench::Context;
using ucm_test::PlainTask;

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

// ---- Paired: the overhead measured in small alternating chunks -------------------------------
// On a shared machine the speed of the whole machine moves within a run (the same loop measures
// 34 to 54 ns per co_await from one repetition to the next, at the same addresses), so the
// difference of two medians taken seconds apart carries that noise. Here every iteration times
// one chunk of co_awaits of each task type, back to back, in alternating order, and the
// counters report the median of the per-chunk figures and of their differences: both sides of
// each difference saw the same moment of the machine.

constexpr long chunk = 256;

ucm::Task<long> ucm_timed_chunk(double& ns) {
  long sum = 0;
  const auto start = Clock::now();
  for (long i = 0; i < chunk; ++i) sum += co_await ucm_trivial();
  ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() / chunk;
  co_return sum;
}

BareTask<long> bare_timed_chunk(double& ns) {
  long sum = 0;
  const auto start = Clock::now();
  for (long i = 0; i < chunk; ++i) sum += co_await bare_trivial();
  ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() / chunk;
  co_return sum;
}

double median(std::vector<double>& v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

void task_await_paired(benchmark::State& state) {
  const Context context(8);
  std::vector<double> ucm_ns, bare_ns, over_ns;
  context.frame.run([&] {
    bool ucm_first = true;
    for (auto _ : state) {
      double u = 0;
      double b = 0;
      if (ucm_first) {
        benchmark::DoNotOptimize(ucm::sync_wait(ucm_timed_chunk(u)));
        benchmark::DoNotOptimize(bare_timed_chunk(b).run());
      } else {
        benchmark::DoNotOptimize(bare_timed_chunk(b).run());
        benchmark::DoNotOptimize(ucm::sync_wait(ucm_timed_chunk(u)));
      }
      ucm_first = !ucm_first;
      ucm_ns.push_back(u);
      bare_ns.push_back(b);
      over_ns.push_back(u - b);
    }
  });
  // Per co_await, medians over the chunks of this run.
  state.counters["ucm_ns"] = median(ucm_ns);
  state.counters["bare_ns"] = median(bare_ns);
  state.counters["over_ns"] = median(over_ns);
}
BENCHMARK(task_await_paired);

}  // namespace
