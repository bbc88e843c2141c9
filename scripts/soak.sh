#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The soak and fault test's figures (docs/soak.md). Builds ucm_soak (bench/soak.cpp, preset
# `bench`: g++ -O2), then counts the server's instructions per request with ucm and without it
# (the same server passing the ids explicitly, `--no-ucm`) under valgrind's callgrind, and prints
# them with their ratio. With --full it then runs the full soak, 1,000,000 requests over 1,000
# connections, with ucm and without.
#
#     scripts/soak.sh            instructions per request (about a minute)
#     scripts/soak.sh --full     and the full runs (minutes on 2 cores)
#
# Callgrind counts only the server's threads (--toggle-collect on their entry point), so the
# client in the same process is left out; perf stat would count the whole process (and needs
# hardware counters, which VMs often lack). Each figure is the difference between a run of
# 2N and one of N requests over the same connections, divided by N: start-up, connection set-up
# and tear-down cancel out. Two forms: "checks", where every hop also reads get_inherited() and
# inherited_all() (the soak's own checks), and "lean" (--lean), where hops read only get(), as a
# server that logs its ids does: the cost of ucm itself.
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    *) echo "usage: scripts/soak.sh [--full]" >&2; exit 2 ;;
  esac
done

cmake --preset bench >/dev/null
cmake --build build/bench --target ucm_soak
soak=build/bench/bench/ucm_soak

connections=4
requests=500  # per connection: N = 2,000 requests, 2N = 4,000

# Instructions executed by the server's threads for `requests` per connection.
server_instructions() {
  local per_connection=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
    --toggle-collect='ucm_soak::run_server_thread*' \
    "$soak" --connections "$connections" --requests "$per_connection" "$@" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

per_request() {
  local one two
  one=$(server_instructions "$requests" "$@")
  two=$(server_instructions $((2 * requests)) "$@")
  echo $(((two - one) / (connections * requests)))
}

echo
echo "Server instructions per request (callgrind, $((connections * requests)) requests over" \
  "$connections connections; g++ -O2)"
printf '%-8s %14s %14s %8s\n' form "with ucm" "without ucm" ratio
for form in checks lean; do
  extra=()
  [ "$form" = lean ] && extra=(--lean)
  with=$(per_request "${extra[@]}")
  without=$(per_request --no-ucm "${extra[@]}")
  printf '%-8s %14s %14s %8s\n' "$form" "$with" "$without" \
    "$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.2fx", a / b }')"
done

if [ "$full" = 1 ]; then
  echo
  echo "Full soak with ucm: $soak --full"
  "$soak" --full || status=$?
  echo
  echo "Full soak without ucm: $soak --full --no-ucm"
  "$soak" --full --no-ucm
  exit "${status:-0}"
fi
