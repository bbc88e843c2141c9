#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Instructions per operation, counted by valgrind's callgrind: runs `ucm_instructions <op> N`
and `ucm_instructions <op> 0` and divides the difference by N. Writes a JSON object
{operation: instructions} to the path given (bench/results/<date>-instructions.json).

    python3 bench/instructions.py build/bench/bench/ucm_instructions out.json
"""

import json
import re
import subprocess
import sys

OPERATIONS = ["thread_local_read", "get", "capture", "direct_call", "continuation", "var_run",
              "scope", "with_4", "malloc_free", "plain_task_await", "bare_task_await",
              "task_await"]
N = 20000


def instructions(binary, op, n):
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          binary, op, str(n)], capture_output=True, text=True)
    if run.returncode != 0:
        return None
    match = re.search(r"Collected : (\d+)", run.stderr)
    return int(match.group(1)) if match else None


def main(binary, out):
    result = {}
    for op in OPERATIONS:
        zero, many = instructions(binary, op, 0), instructions(binary, op, N)
        if zero is None or many is None:
            continue
        result[op] = round((many - zero) / N, 1)
        print(f"{op:20} {result[op]:8.1f} instructions")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
