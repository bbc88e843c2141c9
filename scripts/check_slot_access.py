#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the rule of ucm/detail/config.hpp (after_resume): code that can run after a coroutine
resumption reaches the thread's state only through the accessor made for it.

    python3 scripts/check_slot_access.py     exits 1 and lists the violations, if any

Clang before 16 treats a thread_local's address as a constant within a function, so in a
coroutine it may compute it before a co_await and reuse it after the resumption, on another
thread. g++ does not, so a slip passes every test built with g++; this check catches it on any
compiler. It reads the headers under include/ucm (Python's standard library only, no compiler).

A violation is a call of a plain per-thread accessor (`slots()`, `thread_context()`,
`run_queue()`, `thread_refs()`, `thread_state()`, `frame_cache()`) in the body of:
  - an awaiter's or a promise's hook: await_ready, await_suspend, await_resume,
    initial_suspend, final_suspend, await_transform, yield_value, return_value, return_void,
    unhandled_exception;
  - a destructor (a scope's runs where its block ends, after any co_await in it);
  - a coroutine (a function whose body has co_await, co_yield or co_return).
Lambdas and local classes count as part of the function they are written in. Such code uses
`slots_after_resume()`, `thread_refs_after_resume()` or `run_queue_after_resume()` instead, or
gets the slots from its caller. A call that provably cannot run after a resumption of the code
around it (a [[gnu::noinline]] function computes the address afresh on each call; a thread-exit
destructor) carries the marker `ucm: not after resume` in a comment on its line or the line
before, with the reason.

Not checked (a review matter): helpers that such code calls, which must take the slots as an
argument (take_return, close_window) or use an accessor above themselves.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include" / "ucm"

ACCESSORS = ("slots", "thread_context", "run_queue", "thread_refs", "thread_state", "frame_cache")
HOOKS = {"await_ready", "await_suspend", "await_resume", "initial_suspend", "final_suspend",
         "await_transform", "yield_value", "return_value", "return_void", "unhandled_exception"}
MARKER = "ucm: not after resume"

# A plain accessor call: not a member (`.slots()`), not part of a longer name (`slots_after_resume`).
CALL = re.compile(r"(?<![\w.>])(?:(?:::)?ucm::detail::|detail::)?(" + "|".join(ACCESSORS) +
                  r")\s*\(\s*\)")
COROUTINE = re.compile(r"\bco_(?:await|yield|return)\b")
KEYWORDS_WITH_PARENS = {"decltype", "noexcept", "alignas", "requires", "sizeof", "alignof",
                        "static_assert", "explicit", "if", "for", "while", "switch", "catch",
                        "return", "operator"}


def blank_comments_and_literals(text):
    """The text with comments, string and character literals replaced by spaces (newlines kept),
    so that offsets and line numbers stay those of the file."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            k = text.find("(", i)
            delim = text[i + 2:k]
            j = text.find(")" + delim + '"', k)
            j = n if j < 0 else j + len(delim) + 2
            blank(i, j)
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # a digit separator: 1'000
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "#" and text[text.rfind("\n", 0, i) + 1:i].strip() == "":
            j = i  # a preprocessor line, with its continuations
            while True:
                j = text.find("\n", j)
                if j < 0 or text[j - 1] != "\\":
                    break
                j += 1
            j = n if j < 0 else j
            blank(i, j)
            i = j
        else:
            i += 1
    return "".join(out)


def matching(code, open_at):
    """The offset of the brace closing the one at `open_at`."""
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code)


def strip_groups(head, opener, closer):
    """`head` without the balanced groups that start with `opener` (e.g. "[[")."""
    while True:
        start = head.find(opener)
        if start < 0:
            return head
        depth, k = 0, start
        while k < len(head):
            if head.startswith(opener[0], k):
                depth += 1
            elif head[k] == closer:
                depth -= 1
                if depth == 0:
                    break
            k += 1
        head = head[:start] + " " + head[k + 1:]


def strip_template_heads(head):
    """`head` without its `template <...>` parameter lists."""
    while True:
        m = re.search(r"\btemplate\s*<", head)
        if m is None:
            return head
        depth, k = 0, m.end() - 1
        while k < len(head):
            if head[k] == "<":
                depth += 1
            elif head[k] == ">" and head[k - 1] != "-":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        head = head[:m.start()] + " " + head[k + 1:]


def function_name(head):
    """The name of the function whose body follows `head` (the text since the previous
    declaration), or None when the brace does not open a function body."""
    head = strip_groups(head, "[[", "]")
    head = re.sub(r"\balignas\s*\([^()]*\)", " ", head)
    head = strip_template_heads(head)
    head = re.sub(r"\boperator\s*(\w+)\s*\(", r"operator_\1(", head)
    head = re.sub(r"\boperator\s*(\(\)|[^\w\s(]+)\s*\(", "operator_(", head)
    if "(" not in head:
        return None
    # Angle brackets cannot be balanced reliably in text (`->`, `>>`), and they hold no
    # function name; the first name followed by `(` at parenthesis depth 0 is the function's.
    depth = 0
    for m in re.finditer(r"~?\b\w+\b\s*\(|[()]", head):
        token = m.group(0)
        if token == ")":
            depth -= 1
            continue
        if depth == 0 and token != "(":
            name = re.match(r"~?\w+", token).group(0)
            if name not in KEYWORDS_WITH_PARENS:
                before = head[:m.start()].rstrip()
                # `= [] (`, `= f(` at namespace or class scope: an initialiser, not a function.
                if re.search(r"(?<![=!<>])=\s*$|=\s*\[[^\]]*\]\s*$", before):
                    return None
                if re.search(r"(?<![=!<>])=(?!=)", strip_groups(before, "(", ")")):
                    return None
                return name
        depth += 1
    return None


def functions(code):
    """(name, body start, body end) of every function defined at namespace or class scope."""
    result = []
    i, last_end = 0, 0
    while True:
        k = code.find("{", i)
        if k < 0:
            return result
        # The head: the text since the last `;`, `{` or `}` before this brace.
        start = max(code.rfind(";", 0, k), code.rfind("{", 0, k), code.rfind("}", 0, k),
                    last_end)
        head = code[start + 1:k]
        # NOTE: a constructor's braced member initialiser (`: a_{x} {`) is taken for its body,
        # and the body for a function named after the next member. Constructors are never
        # hooks, destructors or coroutines, so nothing this script checks is lost.
        name = function_name(head)
        end = matching(code, k)
        if name is not None:
            result.append((name, k, end))
            i, last_end = end + 1, end
        elif re.search(r"\b(namespace|class|struct|union|enum)\b|^\s*$|extern", head):
            i = k + 1  # a scope: look inside it
        else:
            i, last_end = end + 1, end  # an initialiser, a requires-expression: skip
    return result


def check(path, checked):
    text = path.read_text()
    lines = text.splitlines()
    code = blank_comments_and_literals(text)
    problems = []
    for name, start, end in functions(code):
        body = code[start:end]
        if name in HOOKS:
            why, kind = f"in {name}()", "hooks"
        elif name.startswith("~"):
            why, kind = f"in the destructor {name}()", "destructors"
        elif COROUTINE.search(body):
            why, kind = f"in the coroutine {name}()", "coroutines"
        else:
            continue
        checked[kind] += 1
        for m in CALL.finditer(body):
            line = code.count("\n", 0, start + m.start())  # 0-based
            nearby = lines[line] + (lines[line - 1] if line > 0 else "")
            if MARKER in nearby:
                continue
            problems.append(f"{path.relative_to(ROOT)}:{line + 1}: {m.group(1)}() {why}: use the "
                            f"accessor for code after a resumption, or mark it '// {MARKER}: why'")
    return problems


def main():
    problems = []
    checked = {"hooks": 0, "destructors": 0, "coroutines": 0}
    for path in sorted(INCLUDE.rglob("*.hpp")):
        problems += check(path, checked)
    # A parser that stopped recognising functions would pass everything: ucm has several of each.
    if min(checked.values()) < 3:
        print(f"check_slot_access: found too few functions to check ({checked}): the parser in "
              "this script no longer understands the headers")
        return 1
    for p in problems:
        print(p)
    if problems:
        print(f"check_slot_access: {len(problems)} plain per-thread accessor call(s) in code that "
              "can run after a coroutine resumption (see after_resume in ucm/detail/config.hpp)")
        return 1
    print(f"check_slot_access: no plain per-thread accessor after a resumption ("
          f"{checked['hooks']} awaiter and promise hooks, {checked['destructors']} destructors, "
          f"{checked['coroutines']} coroutine bodies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
