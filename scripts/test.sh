#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs ucm's whole test suite: the rule for per-thread state after a coroutine
# resumption (scripts/check_slot_access.py) and formatting, then every test (unit, concurrency,
# Asio, W3C interop, examples, consumer projects, fuzzing for a bounded time) with g++ and
# clang++, under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, and under
# ThreadSanitizer, then the packaging forms (scripts/packaging.sh).
# Warnings are errors everywhere. Pass preset names to run only those (dev clang asan-ubsan tsan).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

# First, and whatever the presets: g++ and clang 16 pass every test even where this rule is broken.
echo "== per-thread state after a coroutine resumption (scripts/check_slot_access.py)"
python3 scripts/check_slot_access.py

presets=("$@")
build_bench=0
if ((${#presets[@]} == 0)); then
  presets=(dev clang asan-ubsan tsan)
  build_bench=1
  echo "== format (clang-format, .clang-format)"
  git ls-files '*.hpp' '*.cpp' | xargs clang-format --dry-run -Werror
  echo "== single_include/ generated from include/ (python3 scripts/single_include.py)"
  python3 scripts/single_include.py --check
fi

for preset in "${presets[@]}"; do
  echo "== ${preset}"
  start=$SECONDS
  cmake --workflow --preset "${preset}"
  echo "== ${preset}: passed in $((SECONDS - start)) s"
done
if ((build_bench)); then
  echo "== bench (build only: the benchmarks compile; run them with scripts/bench.sh)"
  cmake --workflow --preset bench
  echo "== packaging: single header, Debian package, API reference (scripts/packaging.sh)"
  ./scripts/packaging.sh
fi
echo "== all test presets passed: ${presets[*]}"
