#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs ucm's benchmarks (bench/, preset `bench`: g++ -O2), then turns the results into
# a table and a plot. Writes bench/results/<date>.json (timings), <date>-memory.json (bytes per
# frame, operator new calls per operation) and <date>-instructions.json (callgrind instruction
# counts per operation) and <date>-peers.json (Node's AsyncLocalStorage and Python's contextvars,
# each beside baselines of its own language, bench/peers/), then docs/bench-table.md,
# docs/bench.svg and the table at the end of docs/performance.md.
# Medians of 5 repetitions, randomly interleaved (so an operation and its baselines sample the same
# moments of a noisy machine); compare ratios against the baselines of the same run, not absolute
# figures across runs. Extra arguments go to the timing binary (e.g. --benchmark_filter=get).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

cmake --workflow --preset bench

date=$(date +%F)
mkdir -p bench/results docs
# Recorded in the JSON's context, for the report's header. Commas would split the list.
model=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1 | tr -d ',')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
context="cpu_model=${model:-unknown},cores=$(nproc),commit=${commit},repetitions=5"
common=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true
        --benchmark_enable_random_interleaving=true
        --benchmark_out_format=json "--benchmark_context=${context}")

./build/bench/bench/ucm_bench "${common[@]}" --benchmark_out="bench/results/${date}.json" "$@"
# ucm's peers in the same run, right after ucm's timings (node and python3 come from
# install-deps.sh). Each prints its own JSON; the file holds both, with this run's context.
node_json=$(node bench/peers/node_als.mjs)
python_json=$(python3 bench/peers/py_contextvars.py)
printf '{\n"context": {"date": "%s", "cpu_model": "%s", "cores": %s, "commit": "%s"},\n"node": %s,\n"python": %s\n}\n' \
  "$(date -Iseconds)" "${model:-unknown}" "$(nproc)" "${commit}" "${node_json}" "${python_json}" \
  >"bench/results/${date}-peers.json"
./build/bench/bench/ucm_memory_bench "${common[@]}" \
  --benchmark_out="bench/results/${date}-memory.json"
# The scripts need nothing beyond Python's standard library (report.py draws its SVG itself).
python3 bench/instructions.py build/bench/bench/ucm_instructions \
  "bench/results/${date}-instructions.json"
python3 bench/report.py "bench/results/${date}.json"
