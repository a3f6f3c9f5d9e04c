#!/usr/bin/env python3
"""Fails when two modules of one crate import each other, directly or
through others (ARCHITECTURE.md: no import cycles between a crate's modules).

A module is a top-level file or directory under a crate's `src/`; it depends
on another when its code (comments aside) names `crate::<other>`. The crate
root (lib.rs/main.rs) is left out: it declares every module.

    scripts/check_module_cycles.py [repo root]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
COMMENT = re.compile(r"^\s*//")
NAMED = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\buse crate::\{([^}]*)\}", re.S)


def modules(src):
    deps = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                continue
            top = parts[0]
            code = "\n".join(l for l in open(path, encoding="utf-8") if not COMMENT.match(l))
            named = set(NAMED.findall(code))
            for group in GROUP.findall(code):
                named |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
            deps.setdefault(top, set()).update(n for n in named if n != top)
    return {m: {d for d in ds if d in deps} for m, ds in deps.items()}


def cycles(graph):
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


bad = 0
for base in ("crates", "services", "tests"):
    top = os.path.join(root, base)
    if not os.path.isdir(top):
        continue
    for crate in sorted(os.listdir(top)):
        src = os.path.join(top, crate, "src")
        if os.path.isdir(src):
            for comp in cycles(modules(src)):
                bad += 1
                print(f"{base}/{crate}: modules import each other: {', '.join(comp)}")
if bad:
    sys.exit(1)
print("no import cycles between the modules of a crate")
