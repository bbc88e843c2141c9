// SPDX-License-Identifier: MIT
// Memory: bytes per frame as a function of its variable count, and calls to operator new per
// operation (call windows, with, capture, continuation, get). Counters, not timings: this binary
// replaces the global operator new with the tests' counting one (tests/alloc_counter.cpp), which
// the timing binary does not.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <thread>

#include "alloc_counter.hpp"
#include "bench_support.hpp"

namespace {

using ucm_bench::Context;

// Reports operator new calls per iteration, counting only inside the timed loop.
class AllocationCounter {
 public:
  explicit AllocationCounter(benchmark::State& state) : state_(state) {}
  void start() {
    ucm_test::counting_allocations() = true;
    start_ = ucm_test::allocation_count();
  }
  ~AllocationCounter() {
    ucm_test::counting_allocations() = false;
    const std::size_t made = ucm_test::allocation_count() - start_;
    state_.counters["allocs_per_op"] =
        benchmark::Counter(static_cast<double>(made), benchmark::Counter::kAvgIterations);
  }

 private:
  benchmark::State& state_;
  std::size_t start_ = 0;
};

// The block of a frame binding n int variables, built at once: header, sorted ids, values,
// owners and the values inline.
void frame_bytes(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    const Context context(n);
    bytes = ucm::detail::FrameAccess::data(context.frame)->bytes;
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_variable"] = static_cast<double>(bytes) / static_cast<double>(n);
}
BENCHMARK(frame_bytes)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(64)->Iterations(1);

// Bytes of every frame a lookup may read through (the current frame and its parents) on each
// frame shape (see ucm_bench::Shape), and per visible value: args are the shape and n.
void shape_bytes(benchmark::State& state) {
  const auto shape = static_cast<ucm_bench::Shape>(state.range(0));
  const std::size_t n = static_cast<std::size_t>(state.range(1));
  const Context context(n);
  const Context layers(ucm_bench::shape_layers);
  std::size_t bytes = 0;
  std::size_t frames = 0;
  for (auto _ : state) {
    ucm_bench::in_shape(shape, context, layers, [&] {
      bytes = 0;
      frames = 0;
      for (const ucm::detail::FrameData* f = ucm::detail::slots().current; f != nullptr;
           f = f->parent()) {
        bytes += f->bytes;
        ++frames;
      }
    });
  }
  const std::size_t values = shape == ucm_bench::Shape::flat ? n : n + ucm_bench::shape_layers;
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["frames"] = static_cast<double>(frames);
  state.counters["bytes_per_value"] = static_cast<double>(bytes) / static_cast<double>(values);
}
BENCHMARK(shape_bytes)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 8, 64}})
    ->ArgNames({"shape", "n"})
    ->Iterations(1);

// The frame a call window builds when it sets one more variable on a frame of n.
void window_frame_bytes(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const ucm::ContextVariable<int> variable;
  std::size_t bytes = 0;
  context.frame.run([&] {
    for (auto _ : state) {
      variable.run(1, [&] { bytes = ucm::detail::slots().current->bytes; });
    }
  });
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(window_frame_bytes)->Arg(1)->Arg(8)->Arg(64)->Iterations(1);

void allocs_variable_run(benchmark::State& state) {
  const Context context(static_cast<std::size_t>(state.range(0)));
  const ucm::ContextVariable<int> variable;
  AllocationCounter counter(state);
  context.frame.run([&] {
    counter.start();
    for (auto _ : state) variable.run(1, [] { benchmark::ClobberMemory(); });
  });
}
BENCHMARK(allocs_variable_run)->Arg(1)->Arg(8)->Arg(64);

// The first window on a fresh thread: no block to reuse yet.
void allocs_first_window(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> variable;
  std::size_t total = 0;
  for (auto _ : state) {
    std::thread([&] {
      context.frame.inherit([&] {
        const ucm_test::CountAllocations counting;
        variable.run(1, [] { benchmark::ClobberMemory(); });
        total += counting.count();
      });
    }).join();
  }
  state.counters["allocs_per_op"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kAvgIterations);
}
BENCHMARK(allocs_first_window)->Iterations(100);

void allocs_variable_scope(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> variable;
  AllocationCounter counter(state);
  context.frame.run([&] {
    counter.start();
    for (auto _ : state) {
      const ucm::ContextVariableScope scope(variable, 1);
      benchmark::ClobberMemory();
    }
  });
}
BENCHMARK(allocs_variable_scope);

void allocs_with_4(benchmark::State& state) {
  const Context context(8);
  const ucm::ContextVariable<int> a;
  const ucm::ContextVariable<int> b;
  const ucm::ContextVariable<int> c;
  const ucm::ContextVariable<int> d;
  AllocationCounter counter(state);
  context.frame.run([&] {
    counter.start();
    for (auto _ : state) {
      ucm::with(a, 1).with(b, 2).with(c, 3).with(d, 4).run([] { benchmark::ClobberMemory(); });
    }
  });
}
BENCHMARK(allocs_with_4);

void allocs_capture(benchmark::State& state) {
  const Context context(8);
  AllocationCounter counter(state);
  context.frame.run([&] {
    counter.start();
    for (auto _ : state) {
      ucm::ContextFrame frame = ucm::ContextFrame::current();
      benchmark::DoNotOptimize(frame);
    }
  });
}
BENCHMARK(allocs_capture);

void allocs_continuation(benchmark::State& state) {
  const Context context(8);
  auto bound = context.frame.run([] { return ucm::ContextFrame::bind([] {}); });
  AllocationCounter counter(state);
  counter.start();
  for (auto _ : state) bound();
}
BENCHMARK(allocs_continuation);

void allocs_get(benchmark::State& state) {
  const Context context(8);
  AllocationCounter counter(state);
  context.frame.run([&] {
    counter.start();
    for (auto _ : state) benchmark::DoNotOptimize(context.variables[3]->get());
  });
}
BENCHMARK(allocs_get);

}  // namespace
