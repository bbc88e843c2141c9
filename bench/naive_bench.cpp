// SPDX-License-Identifier: MIT
// The alternative users write today, by hand: a thread_local std::shared_ptr to a copy-on-write
// std::unordered_map<std::type_index, std::any>, keyed by a tag type per value. Its get,
// capture and set (a scoped change), on a context of 8 values, so users see what ucm saves.
#include <benchmark/benchmark.h>

#include <any>
#include <memory>
#include <typeindex>
#include <unordered_map>
#include <utility>

#include "bench_support.hpp"

namespace {

using NaiveMap = std::unordered_map<std::type_index, std::any>;

std::shared_ptr<const NaiveMap>& naive_current() {
  static thread_local std::shared_ptr<const NaiveMap> current;
  return current;
}

template <class Tag>
const int* naive_get() {
  const auto& current = naive_current();
  if (!current) return nullptr;
  const auto it = current->find(typeid(Tag));
  return it == current->end() ? nullptr : std::any_cast<int>(&it->second);
}

// A scoped change: copy the map, change one entry, publish it, restore the old one on exit.
template <class Tag, class F>
void naive_run(int value, F&& fn) {
  auto& current = naive_current();
  auto changed = current ? std::make_shared<NaiveMap>(*current) : std::make_shared<NaiveMap>();
  (*changed)[typeid(Tag)] = value;
  std::shared_ptr<const NaiveMap> saved = std::exchange(current, std::move(changed));
  struct Restore {
    std::shared_ptr<const NaiveMap>& current;
    std::shared_ptr<const NaiveMap> saved;
    ~Restore() { current = std::move(saved); }
  } restore{current, std::move(saved)};
  std::forward<F>(fn)();
}

template <int N>
struct Tag {};

// Eight values bound, as in the ucm benchmarks' frame of 8.
struct NaiveContext {
  NaiveContext() {
    auto map = std::make_shared<NaiveMap>();
    (*map)[typeid(Tag<0>)] = 0;
    (*map)[typeid(Tag<1>)] = 1;
    (*map)[typeid(Tag<2>)] = 2;
    (*map)[typeid(Tag<3>)] = 3;
    (*map)[typeid(Tag<4>)] = 4;
    (*map)[typeid(Tag<5>)] = 5;
    (*map)[typeid(Tag<6>)] = 6;
    (*map)[typeid(Tag<7>)] = 7;
    naive_current() = std::move(map);
  }
  ~NaiveContext() { naive_current().reset(); }
};

void naive_get_hit(benchmark::State& state) {
  const NaiveContext context;
  for (auto _ : state) benchmark::DoNotOptimize(naive_get<Tag<3>>());
}
BENCHMARK(naive_get_hit);

void naive_capture(benchmark::State& state) {
  const NaiveContext context;
  for (auto _ : state) {
    std::shared_ptr<const NaiveMap> frame = naive_current();
    benchmark::DoNotOptimize(frame);
  }
}
BENCHMARK(naive_capture);

void naive_set(benchmark::State& state) {
  const NaiveContext context;
  int value = 0;
  for (auto _ : state) naive_run<Tag<8>>(++value, [] { benchmark::ClobberMemory(); });
}
BENCHMARK(naive_set);

// A continuation: the captured map made current around the same call ucm's bound callable
// makes (ucm_bench::work), and the old one restored.
void naive_continuation(benchmark::State& state) {
  const NaiveContext context;
  const std::shared_ptr<const NaiveMap> captured = naive_current();
  int x = 1;
  for (auto _ : state) {
    auto saved = std::exchange(naive_current(), captured);
    ucm_bench::work(&x);
    naive_current() = std::move(saved);
  }
}
BENCHMARK(naive_continuation);

}  // namespace
