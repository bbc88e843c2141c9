// SPDX-License-Identifier: MIT
// Window channels (ucm/channel.hpp): what announcing an operation costs a library. Each
// benchmark calls the same non-inlined function; the baseline calls it and nothing else, so the
// difference is the channel. With nobody subscribed, `has_subscribers`, `publish`, `run_stores`
// and `trace_sync` are one relaxed load and a branch (five for a TracingChannel).
#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "ucm/channel.hpp"

namespace {

using ucm_bench::work;

struct Message {
  int id;
};

/// The function a library would run (and announce): not inlined, as in the other benchmarks.
void baseline_channel_plain_call(benchmark::State& state) {
  int value = 0;
  for (auto _ : state) {
    ++value;
    work(&value);
  }
}
BENCHMARK(baseline_channel_plain_call);

void channel_has_subscribers_none(benchmark::State& state) {
  static ucm::WindowChannel<Message> channel;
  int value = 0;
  for (auto _ : state) {
    ++value;
    if (channel.has_subscribers()) channel.publish(Message{value});
    work(&value);
  }
}
BENCHMARK(channel_has_subscribers_none);

void channel_publish_none(benchmark::State& state) {
  static ucm::WindowChannel<Message> channel;
  int value = 0;
  for (auto _ : state) {
    ++value;
    channel.publish(Message{value});
    work(&value);
  }
}
BENCHMARK(channel_publish_none);

void channel_publish_one_subscriber(benchmark::State& state) {
  static ucm::WindowChannel<Message> channel;
  int seen = 0;
  const ucm::Subscription sub = channel.subscribe([&seen](const Message& m) { seen += m.id; });
  int value = 0;
  for (auto _ : state) {
    ++value;
    channel.publish(Message{value});
    work(&value);
  }
  benchmark::DoNotOptimize(seen);
}
BENCHMARK(channel_publish_one_subscriber);

void channel_run_stores_none(benchmark::State& state) {
  static ucm::WindowChannel<Message> channel;
  int value = 0;
  for (auto _ : state) {
    ++value;
    channel.run_stores(Message{value}, work, &value);
  }
}
BENCHMARK(channel_run_stores_none);

// One bound store: one call window with the transform's value (compare var.run in
// variable_bench), and the list announcement.
void channel_run_stores_one_store(benchmark::State& state) {
  static ucm::WindowChannel<Message> channel;
  static const ucm::ContextVariable<int> span;
  const ucm::Subscription store = channel.bind_store(span, [](const Message& m) { return m.id; });
  int value = 0;
  for (auto _ : state) {
    ++value;
    channel.run_stores(Message{value}, work, &value);
  }
}
BENCHMARK(channel_run_stores_one_store);

void tracing_trace_sync_none(benchmark::State& state) {
  static ucm::TracingChannel<Message> channel;
  int value = 0;
  for (auto _ : state) {
    ++value;
    channel.trace_sync(Message{value}, work, &value);
  }
}
BENCHMARK(tracing_trace_sync_none);

// A subscriber on start and end, as a metrics agent would have.
void tracing_trace_sync_start_end(benchmark::State& state) {
  static ucm::TracingChannel<Message> channel;
  int seen = 0;
  const ucm::Subscription start = channel.start.subscribe([&seen](Message& m) { seen += m.id; });
  const ucm::Subscription end = channel.end.subscribe([&seen](Message& m) { seen -= m.id; });
  int value = 0;
  for (auto _ : state) {
    ++value;
    channel.trace_sync(Message{value}, work, &value);
  }
  benchmark::DoNotOptimize(seen);
}
BENCHMARK(tracing_trace_sync_start_end);

}  // namespace
