#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Python's contextvars, measured the way ucm's suite measures ucm: each operation beside
baselines of its own language timed in the same process, repetitions interleaved (so an
operation and its baselines sample the same moments of a noisy machine), medians.

    python3 bench/peers/py_contextvars.py [--repetitions=N] [--ms=M]

Prints JSON on stdout. Standard library only. Each benchmark is a loop whose body repeats the
operation UNROLL times (generated source, so the bytecode is the operation and nothing else);
the empty loop (`for _ in range(n): pass`) is timed beside them, and its cost per iteration is
subtracted: `median_ns` is per operation, loop excluded; `raw_median_ns` includes the loop's
share (reported as `loop`). The garbage collector is off while timing, as in timeit.

Operations (the rows of bench/report.py's "ucm and its peers" table), run in a context where 8
variables are set (ucm's benchmarks use a frame of 8):
  get           var.get()
  capture       contextvars.copy_context(), taken and dropped
  continuation  ctx.run(fn) of a copied context, fn an empty function
  call_window   token = var.set(v); var.reset(token)
  with_4        4 variables set, then reset in reverse order
Baselines: a global read (read), a call of the same empty function (call), object() allocated
and dropped (alloc: pymalloc's allocation and free, as ucm's baseline is malloc+free).
"""

import contextvars
import gc
import json
import platform
import random
import statistics
import sys
import time

UNROLL = 10

GLOBAL = 1

variables = [contextvars.ContextVar(f"v{i}") for i in range(8)]
for i, v in enumerate(variables):
    v.set(i)
four = [contextvars.ContextVar(f"w{i}") for i in range(4)]


def empty():
    pass


# name: (setup lines, statement repeated UNROLL times)
BENCHMARKS = {
    "loop": ([], "pass"),
    "baseline_read": ([], "x = GLOBAL"),
    "baseline_call": (["f = empty"], "x = f()"),
    "baseline_alloc": (["new = object"], "x = new()"),
    "get": (["var = variables[3]"], "x = var.get()"),
    "capture": (["copy = contextvars.copy_context"], "x = copy()"),
    "continuation": (["ctx = contextvars.copy_context()", "f = empty"], "x = ctx.run(f)"),
    "call_window": (["var = contextvars.ContextVar('call_window')", "v = 7"],
                    "t = var.set(v); var.reset(t)"),
    "with_4": (["a, b, c, d = four", "v = 7"],
               "t1 = a.set(v); t2 = b.set(v); t3 = c.set(v); t4 = d.set(v); "
               "d.reset(t4); c.reset(t3); b.reset(t2); a.reset(t1)"),
}


def compile_benchmark(name, setup, statement):
    # The loop body is UNROLL copies of the statement, except the empty loop (the overhead that
    # is subtracted), whose body is just `pass`.
    body = ["        pass"] if name == "loop" else [f"        {statement}"] * UNROLL
    lines = ["def bench(n):", "    x = None"] + [f"    {s}" for s in setup]
    lines += ["    for _ in range(n):"] + body + ["    return x"]
    namespace = {"GLOBAL": GLOBAL, "empty": empty, "variables": variables, "four": four,
                 "contextvars": contextvars}
    exec(compile("\n".join(lines), f"<bench {name}>", "exec"), namespace)
    return namespace["bench"]


def time_ns(fn, n):
    start = time.perf_counter_ns()
    fn(n)
    return time.perf_counter_ns() - start


def calibrate(fn, target_ns):
    """Grows n until one run takes a tenth of the target, then sizes n from the fastest of 3
    more runs."""
    n = 100
    fn(n)
    while time_ns(fn, n) < target_ns / 10 and n < 1e9:
        n *= 4
    best = min(time_ns(fn, n) for _ in range(3))
    return max(100, round(n * target_ns / best))


def main(argv):
    options = dict(a.lstrip("-").split("=", 1) for a in argv[1:] if "=" in a)
    repetitions = int(options.get("repetitions", 11))
    target_ns = float(options.get("ms", 40)) * 1e6

    functions = {name: compile_benchmark(name, *spec) for name, spec in BENCHMARKS.items()}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        iterations = {name: calibrate(fn, target_ns) for name, fn in functions.items()}
        # ns per loop iteration (the UNROLL operations and the loop's own step)
        samples = {name: [] for name in functions}
        for _ in range(repetitions):
            order = list(functions)
            random.shuffle(order)
            for name in order:
                samples[name].append(time_ns(functions[name], iterations[name]) /
                                     iterations[name])
    finally:
        if gc_was_enabled:
            gc.enable()

    loop = statistics.median(samples["loop"])  # per iteration
    result = {
        "implementation": "python",
        "version": platform.python_version(),
        "api": "contextvars (standard library)",
        "repetitions": repetitions,
        "unroll": UNROLL,
        "unit": "ns per operation; median_ns excludes the loop, raw_median_ns includes its share",
        "benchmarks": {},
    }
    for name, xs in samples.items():
        if name == "loop":
            result["benchmarks"][name] = {"median_ns": loop / UNROLL,
                                          "raw_median_ns": loop / UNROLL,
                                          "loop_ns_per_iteration": loop,
                                          "iterations": iterations[name]}
            continue
        net = [(x - loop) / UNROLL for x in xs]
        result["benchmarks"][name] = {
            "median_ns": statistics.median(net),
            "min_ns": min(net),
            "max_ns": max(net),
            "raw_median_ns": statistics.median(xs) / UNROLL,
            "iterations": iterations[name] * UNROLL,
        }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
