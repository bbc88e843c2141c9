#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes single_include/: ucm in one header, generated from include/ (Python's standard library only).

    python3 scripts/single_include.py           rewrites single_include/ from include/
    python3 scripts/single_include.py --check   fails if rewriting would change single_include/

single_include/ucm/ucm.hpp holds the core (ucm/ucm.hpp), Task (ucm/task.hpp), the manager
(ucm/manager.hpp), window channels (ucm/channel.hpp) and W3C (ucm/propagation/w3c.hpp and its
parts). The integrations that need another library (Asio and Boost.Asio, with a header per tool,
Beast, fmt, spdlog) stay separate headers under the same names, each including
single_include/ucm/ucm.hpp instead of the core's headers (and an umbrella its tools' headers), so
a program includes them exactly as it includes include/'s.

Each header is inlined where the preprocessor would first include it, once (the `#pragma once`
semantics of include/'s headers), so the order is the include order and every header follows
what it needs. Only ucm's own headers (quoted includes naming a file under include/) are inlined;
system and third-party includes stay where they are, and one already written outside any
conditional block is not repeated. A header without `#pragma once` (ucm/detail/asio_propagate.hpp
and the other parts of the Asio integration, instantiated once per Asio) is inlined at each
include. What several integrations share (ucm/detail/asio_shared.hpp, shared by both Asios, and
each Asio's ucm/asio/detail/associators.hpp, shared by its tools) is a header of its own under
the same name, which they include, and any other header that more than one integration inlines
gets an include guard, so any of the integrations can be included together in one program.
"""

import argparse
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"
OUTPUT = ROOT / "single_include"

# The headers that single_include/ucm/ucm.hpp holds, in this order.
CORE = ["ucm/ucm.hpp", "ucm/task.hpp", "ucm/manager.hpp", "ucm/channel.hpp", "ucm/propagation/w3c.hpp"]
# The integrations: each a header of its own, including the single header.
ASIO_TOOLS = ["propagate", "context_executor", "use_task"]
INTEGRATIONS = (["ucm/asio.hpp"] + [f"ucm/asio/{tool}.hpp" for tool in ASIO_TOOLS]
                + ["ucm/boost_asio.hpp"] + [f"ucm/boost_asio/{tool}.hpp" for tool in ASIO_TOOLS]
                + ["ucm/propagation/beast.hpp", "ucm/fmt.hpp", "ucm/spdlog.hpp"])
# What several integrations share: each a header of its own too, which they include.
SHARED = ["ucm/detail/asio_shared.hpp", "ucm/asio/detail/associators.hpp",
          "ucm/boost_asio/detail/associators.hpp"]

SPDX = "// SPDX-License-Identifier: MIT"
QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s*<([^>]+)>")
PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\b")
OPENS = re.compile(r"^\s*#\s*if(n?def)?\b")
CLOSES = re.compile(r"^\s*#\s*endif\b")


def read(name):
    return (INCLUDE / name).read_text().splitlines()


def has_pragma_once(name):
    return any(PRAGMA_ONCE.match(line) for line in read(name))


def guard(name):
    return "UCM_SINGLE_INCLUDE_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class Writer:
    """Inlines headers into `lines`, emulating the preprocessor's `#pragma once`."""

    def __init__(self, provided=(), guarded=False):
        self.lines = []
        self.once = set()            # the pragma-once headers already inlined here
        self.provided = dict(provided)  # header -> the single-include header that holds it
        self.written_provided = set()
        self.system = set()          # system includes written outside any conditional block
        self.guarded = guarded       # guard inlined pragma-once headers (integrations)

    def include(self, name, depth=0, top=False):
        if name in self.provided:
            target = self.provided[name]
            if target not in self.written_provided:
                self.written_provided.add(target)
                self.lines.append(f'#include "{target}"')
            return
        once = has_pragma_once(name)
        if once:
            if name in self.once:
                return
            self.once.add(name)
        wrap = once and self.guarded and not top
        if wrap:
            self.lines += [f"#ifndef {guard(name)}", f"#define {guard(name)}"]
            depth += 1
        self.lines.append(f"// ~~~~ include/{name} " + "~" * max(3, 80 - len(name)))
        nesting = 0
        for number, line in enumerate(read(name)):
            if number == 0 and line.strip() == SPDX:
                continue
            if PRAGMA_ONCE.match(line):
                continue
            quoted = QUOTED_INCLUDE.match(line)
            if quoted and (INCLUDE / quoted.group(1)).is_file():
                self.include(quoted.group(1), depth + nesting)
                continue
            system = SYSTEM_INCLUDE.match(line)
            if system and depth + nesting == 0:
                if system.group(1) in self.system:
                    continue
                self.system.add(system.group(1))
            if OPENS.match(line):
                nesting += 1
            elif CLOSES.match(line):
                nesting -= 1
            self.lines.append(line)
        if nesting != 0:
            sys.exit(f"single_include: unbalanced #if/#endif in include/{name}")
        if wrap:
            self.lines.append(f"#endif  // {guard(name)}")


def text(title, lines):
    body = []
    for line in lines:  # at most one blank line in a row, as clang-format keeps it
        if line.strip() == "" and (not body or body[-1].strip() == ""):
            continue
        body.append(line.rstrip())
    while body and body[-1] == "":
        body.pop()
    head = [SPDX] + [f"// {line}" for line in title] + [
        "// GENERATED by scripts/single_include.py from include/: do not edit. Edit include/ and",
        "// run `python3 scripts/single_include.py`.",
        "#pragma once",
        ""]
    return "\n".join(head + body) + "\n"


def generate():
    files = {}
    core = Writer()
    for name in CORE:
        core.include(name, top=True)
    files["ucm/ucm.hpp"] = text(
        ["ucm in one header: the core, Task, the manager, window channels and W3C,",
         "from " + ", ".join(CORE[:3]) + ",", ", ".join(CORE[3:]) + "."], core.lines)
    provided = {name: "ucm/ucm.hpp" for name in core.once}
    provided.update({name: name for name in INTEGRATIONS + SHARED})
    for name in INTEGRATIONS + SHARED:
        writer = Writer({k: v for k, v in provided.items() if k != name}, guarded=True)
        writer.include(name, top=True)
        files[name] = text([f"{name}, for single_include/ucm/ucm.hpp."], writer.lines)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if single_include/ is not what include/ generates")
    args = parser.parse_args()
    files = generate()
    existing = {p.relative_to(OUTPUT).as_posix() for p in OUTPUT.rglob("*") if p.is_file()} \
        if OUTPUT.is_dir() else set()
    stale = sorted(existing - set(files))
    if args.check:
        changed = [n for n, t in files.items()
                   if not (OUTPUT / n).is_file() or (OUTPUT / n).read_text() != t]
        for name in changed:
            old = (OUTPUT / name).read_text().splitlines() if (OUTPUT / name).is_file() else []
            diff = list(difflib.unified_diff(old, files[name].splitlines(), f"single_include/{name}",
                                             "generated", lineterm="", n=1))
            print("\n".join(diff[:40]) + ("\n..." if len(diff) > 40 else ""))
        if changed or stale:
            print(f"single_include: out of date ({', '.join(changed + stale)}): "
                  "run `python3 scripts/single_include.py` and commit single_include/",
                  file=sys.stderr)
            return 1
        print(f"single_include: up to date ({len(files)} headers)")
        return 0
    for name, content in files.items():
        path = OUTPUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != content:
            path.write_text(content)
            print(f"single_include: wrote single_include/{name}")
    for name in stale:
        (OUTPUT / name).unlink()
        print(f"single_include: removed single_include/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
