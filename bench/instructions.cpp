// SPDX-License-Identifier: MIT
// Instructions per operation, for valgrind --tool=callgrind (bench/instructions.py runs it):
// `ucm_instructions <operation> <n>` runs one operation n times on a frame of 8 variables. The
// difference between n and 0 runs, divided by n, is the operation's cost in instructions, a
// figure that does not move with the machine's load as timings do.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include "bench_support.hpp"
#if __has_include("ucm/task.hpp")
#include "bare_task.hpp"
#include "plain_task.hpp"
#include "ucm/task.hpp"
#endif

namespace {

// Keeps `p` and everything it points to from being optimised away.
inline void keep(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

[[gnu::noinline]] void work(int* p) { keep(p); }

// The call windows, each in a loop of its own: in main, whose size makes g++ give up inlining
// here or there, the count would measure where its inlining budget ran out.
[[gnu::noinline]] void var_runs(const ucm::ContextVariable<int>& variable, long n) {
  for (long i = 0; i < n; ++i) variable.run(static_cast<int>(i), [] { keep(nullptr); });
}
[[gnu::noinline]] void scopes(const ucm::ContextVariable<int>& variable, long n) {
  for (long i = 0; i < n; ++i) {
    const ucm::ContextVariableScope scope(variable, static_cast<int>(i));
    keep(nullptr);
  }
}
[[gnu::noinline]] void withs(const ucm::ContextVariable<int>& a, const ucm::ContextVariable<int>& b,
                             const ucm::ContextVariable<int>& c, const ucm::ContextVariable<int>& d,
                             long n) {
  for (long i = 0; i < n; ++i) {
    ucm::with(a, 1).with(b, 2).with(c, 3).with(d, 4).run([] { keep(nullptr); });
  }
}

#if __has_include("ucm/task.hpp")
ucm::Task<int> ucm_trivial() { co_return 1; }
ucm::Task<int> ucm_awaits(long n) {
  int sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await ucm_trivial();
  co_return sum;
}
ucm_bench::BareTask<int> bare_trivial() { co_return 1; }
ucm_bench::BareTask<int> bare_awaits(long n) {
  int sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await bare_trivial();
  co_return sum;
}
ucm_test::PlainTask<int> plain_trivial() { co_return 1; }
ucm_test::PlainTask<int> plain_awaits(long n) {
  int sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await plain_trivial();
  co_return sum;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <operation> <n>\n", argv[0]);
    return 2;
  }
  std::thread([] {}).join();  // as in the timing benchmarks: a process that has started threads
  const std::string_view op = argv[1];
  const long n = std::atol(argv[2]);
  const ucm_bench::Context context(8);
  const ucm::ContextVariable<int> extra;
  const ucm::ContextVariable<int> a;
  const ucm::ContextVariable<int> b;
  const ucm::ContextVariable<int> c;
  const ucm::ContextVariable<int> d;
  int x = 1;
  auto bound = context.frame.run([&] { return ucm::ContextFrame::bind([&x] { work(&x); }); });
  bool known = true;
  context.frame.run([&] {
    if (op == "get") {
      for (long i = 0; i < n; ++i) keep(context.variables[static_cast<std::size_t>(i & 7)]->get());
    } else if (op == "thread_local_read") {
      ucm_bench::raw_slot() = &x;
      for (long i = 0; i < n; ++i) keep(ucm_bench::raw_slot());
    } else if (op == "capture") {
      for (long i = 0; i < n; ++i) {
        const ucm::ContextFrame frame = ucm::ContextFrame::current();
        keep(&frame);
      }
    } else if (op == "continuation") {
      for (long i = 0; i < n; ++i) bound();
    } else if (op == "direct_call") {
      for (long i = 0; i < n; ++i) work(&x);
    } else if (op == "var_run") {
      var_runs(extra, n);
    } else if (op == "scope") {
      scopes(extra, n);
    } else if (op == "with_4") {
      withs(a, b, c, d, n);
    } else if (op == "malloc_free") {
      for (long i = 0; i < n; ++i) {
        void* p = std::malloc(64);
        keep(p);
        std::free(p);
      }
#if __has_include("ucm/task.hpp")
    } else if (op == "task_await") {
      if (ucm::sync_wait(ucm_awaits(n)) != n) std::abort();
    } else if (op == "bare_task_await") {
      if (bare_awaits(n).run() != n) std::abort();
    } else if (op == "plain_task_await") {
      if (plain_awaits(n).run() != n) std::abort();
#endif
    } else {
      known = false;
    }
  });
  if (!known) {
    std::fprintf(stderr, "unknown operation %s\n", argv[1]);
    return 2;
  }
  return 0;
}
