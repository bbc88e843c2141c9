// SPDX-License-Identifier: MIT
// Executors: posting 1M tasks through ucm::asio::ContextExecutor against posting them through
// the raw io_context executor, then running them. The adaptor adds one capture per post and a
// continuation window per task.
#include <benchmark/benchmark.h>

#include <asio.hpp>
#include <cstddef>

#include "bench_support.hpp"
#include "ucm/asio.hpp"

namespace {

using ucm_bench::Context;

constexpr std::size_t tasks = 1'000'000;

template <class Executor>
void post_and_run(benchmark::State& state, asio::io_context& io, const Executor& executor) {
  const Context context(8);
  std::size_t done = 0;
  context.frame.run([&] {
    for (auto _ : state) {
      for (std::size_t i = 0; i < tasks; ++i) asio::post(executor, [&done] { ++done; });
      io.run();
      io.restart();
    }
  });
  benchmark::DoNotOptimize(done);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * tasks));
}

void baseline_post_raw_executor(benchmark::State& state) {
  asio::io_context io(1);
  post_and_run(state, io, io.get_executor());
}
BENCHMARK(baseline_post_raw_executor)->Unit(benchmark::kMillisecond);

void post_context_executor(benchmark::State& state) {
  asio::io_context io(1);
  post_and_run(state, io, ucm::asio::ContextExecutor(io.get_executor()));
}
BENCHMARK(post_context_executor)->Unit(benchmark::kMillisecond);

}  // namespace
