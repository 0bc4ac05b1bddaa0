#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Which library source file calls which, and whether that respects the layers.

A file "calls" another when it uses a function name (txstats_* or txstats__*) that the other
defines. Fails (exit 1) on a dependency cycle, on a file calling a file of its own layer or a
higher one, and on a source file missing from LAYERS. Prints the dependency list either way.

usage: check_architecture.py [SRC_DIR]   (default: libtxstats/src beside this script's parent)
"""
import os
import re
import sys

# The layers of libtxstats/src/internal.h: a file calls only files of lower layers.
LAYERS = {
    "alloc.c": 0, "amount.c": 0, "crc32c.c": 0, "error.c": 0, "time.c": 0,
    "fileio.c": 1, "distribution.c": 1, "image.c": 1, "amountset.c": 1, "timeindex.c": 1,
    "window.c": 2, "journal.c": 2, "keys.c": 2, "snapshot.c": 2, "image_json.c": 2,
    "entities.c": 2,
    "txstats.c": 3,
    "collect.c": 4, "install.c": 4, "quantile.c": 4, "ranking.c": 4, "spans.c": 4,
    "persist.c": 5,
    "recover.c": 6,
}

NAME = re.compile(r"\b(txstats_[a-z0-9_]+)\s*\(")


def strip(text):
    """Source without comments, string and character literals."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return re.sub(r"'(\\.|[^'\\])*'", "''", text)


def scan(text):
    """(defined, used): names defined at file scope and names called inside functions."""
    text = strip(text)
    defined, used = set(), set()
    depth = 0
    i = 0
    for m in NAME.finditer(text):
        depth += text.count("{", i, m.start()) - text.count("}", i, m.start())
        i = m.start()
        name = m.group(1)
        if depth > 0:
            used.add(name)
            continue
        # At file scope: a definition when the parenthesis closes into a body, not a ';'.
        j, level = m.end(), 1
        while j < len(text) and level:
            level += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        rest = text[j:].lstrip()
        is_static = re.search(r"(^|\n)static\b[^;{}]*$", text[:m.start()]) is not None
        if rest.startswith("{") and not is_static:
            defined.add(name)
    return defined, used


def graph(src):
    files = sorted(f for f in os.listdir(src) if f.endswith(".c"))
    info = {}
    for f in files:
        with open(os.path.join(src, f), encoding="utf-8") as fh:
            info[f] = scan(fh.read())
    owner = {}
    for f, (defined, _) in info.items():
        for name in defined:
            owner[name] = f
    edges = {f: {} for f in files}
    for f, (defined, used) in info.items():
        for name in sorted(used - defined):
            if name in owner:
                edges[f].setdefault(owner[name], []).append(name)
    return files, edges


def cycles(files, edges):
    found, state, stack = [], {}, []

    def visit(f):
        state[f] = 1
        stack.append(f)
        for g in sorted(edges[f]):
            if state.get(g) == 1:
                found.append(stack[stack.index(g):] + [g])
            elif g not in state:
                visit(g)
        stack.pop()
        state[f] = 2

    for f in files:
        if f not in state:
            visit(f)
    return found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "libtxstats", "src")
    files, edges = graph(src)
    problems = []
    print("library file dependencies (caller -> callee: names):")
    for f in files:
        for g, names in sorted(edges[f].items()):
            print(f"  {f} -> {g}: {', '.join(names)}")
    for f in files:
        if f not in LAYERS:
            problems.append(f"{f} is not in the layer table of check_architecture.py")
    for cyc in cycles(files, edges):
        problems.append("cycle: " + " -> ".join(cyc))
    for f in files:
        for g, names in sorted(edges[f].items()):
            if f in LAYERS and g in LAYERS and LAYERS[g] >= LAYERS[f]:
                problems.append(f"{f} (layer {LAYERS[f]}) calls {g} (layer {LAYERS[g]}): "
                                + ", ".join(names))
    for p in problems:
        print("FAIL " + p)
    print(f"{len(files)} files, {sum(len(e) for e in edges.values())} dependencies, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
