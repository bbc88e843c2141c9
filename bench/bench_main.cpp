// SPDX-License-Identifier: MIT
// The benchmarks' main: starts and joins one thread before measuring anything, because glibc
// takes faster paths (plain instead of locked atomics in malloc, no TLS destructor lists) while a
// process has never started a thread, and a real user of ucm always has.
#include <benchmark/benchmark.h>

#include <thread>

int main(int argc, char** argv) {
  std::thread([] {}).join();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
