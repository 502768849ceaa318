#!/usr/bin/env python3
"""The import graph of a Rust crate's modules, from its `use crate::...`
paths and `crate::...` names: cycles between files, and files over a size.

    python3 tests/tools/imports.py lib/src            # the working tree
    python3 tests/tools/imports.py lib/src --rev HEAD~5  # as committed then

A node is a source file (a module); an arrow runs from a file to each module
file it names (the deepest file a path reaches: `crate::store::sync::Link`
is `store/sync.rs`; a private `use child::x` in a module with a child
`child` is that child, while a `pub use child::x` re-export is not an
arrow). Methods of one type spread over several files (`impl` blocks
by stage) call each other without an import: those calls are not arrows,
so a cycle through them does not show. Test modules (`tests.rs`, `*_tests.rs`, `tests/`) are
left out: they may name anything. Printed: every strongly connected set of
two or more files (a cycle), each with one loop through it; the arrows that
run up the layers below (a module naming one of a higher layer); and the
files over --max-lines lines.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

PATH = re.compile(
    r"(?<![a-z0-9_:])((?:crate|super|self)::(?:super::)*(?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)"
)
GROUP = re.compile(r"\buse ((?:crate|super|self)::[a-z0-9_:]*)\{([^;]*)\}", re.S)


# The crate's floors, lowest first: a module may name its own floor's and
# lower floors' modules. Foundations; AWS and HTTP plumbing; the mapping;
# the two APIs and the queue; the stores and the clients' start-up (both
# build adapters); the three flows; the operator's commands.
LAYERS = [
    ["time", "settings", "telemetry", "error", "metrics"],
    ["http", "aws", "secrets"],
    ["mapping"],
    ["warp", "hubspot", "queue"],
    ["store", "startup"],
    ["intake", "sync", "reconcile"],
    ["operate"],
]


def floor(name):
    top = name.split("/")[0].removesuffix(".rs")
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    return None


def files_at(root, rev):
    if rev is None:
        base = Path(root)
        return {
            str(p.relative_to(base)): p.read_text()
            for p in sorted(base.rglob("*.rs"))
        }
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, root],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    out = {}
    for name in names:
        if name.endswith(".rs"):
            text = subprocess.run(
                ["git", "show", f"{rev}:{name}"],
                check=True, capture_output=True, text=True,
            ).stdout
            out[name[len(root.rstrip("/")) + 1:]] = text
    return out


def is_test(name):
    parts = name.split("/")
    return (
        parts[-1] in ("tests.rs",)
        or parts[-1].endswith("_tests.rs")
        or "tests" in parts[:-1]
        or name.startswith("bin/")
    )


def module_of(name):
    """`store/sync.rs` -> ('store', 'sync'); `store/mod.rs` -> ('store',)."""
    parts = name[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        parts = []
    return tuple(parts)


def strip_tests(text):
    """The file without its `#[cfg(test)] mod tests { ... }` block."""
    at = text.find("#[cfg(test)]\nmod tests {")
    return text if at < 0 else text[:at]


def absolute(path, mod):
    """`super::x` and `self::x` in module `mod`, as a path from the crate."""
    parts = path.split("::")
    here = list(mod)
    if parts[0] == "crate":
        return parts[1:]
    if parts[0] == "self":
        parts = parts[1:]
    while parts and parts[0] == "super":
        here = here[:-1]
        parts = parts[1:]
    return here + parts


def paths_in(text):
    for m in GROUP.finditer(text):
        prefix = m.group(1)
        for item in re.split(r"[,\s]+", m.group(2)):
            item = item.strip().split(" as ")[0]
            if item and item != "self" and re.match(r"^[a-z_][a-z0-9_:]*", item):
                yield prefix + item
            elif item == "self":
                yield prefix.rstrip(":")
            elif item:
                yield prefix.rstrip(":")
    for m in PATH.finditer(text):
        yield m.group(1)


# A private `use child::x`: the parent's own code using its child. A
# `pub use child::x` is a facade (the parent re-exports what the child
# defines, and the child may use the parent's types): not an arrow.
CHILD_USE = re.compile(r"^\s*use ([a-z_][a-z0-9_]*)::", re.M)


def graph(files):
    modules = {module_of(n): n for n in files if not is_test(n)}
    edges = {n: set() for n in modules.values()}
    for mod, name in modules.items():
        text = strip_tests(files[name])
        children = [
            "self::" + m.group(1)
            for m in CHILD_USE.finditer(text)
            if mod + (m.group(1),) in modules
        ]
        for path in list(paths_in(text)) + children:
            parts = tuple(p for p in absolute(path, mod) if p)
            target = None
            for k in range(len(parts), 0, -1):
                if parts[:k] in modules:
                    target = modules[parts[:k]]
                    break
            if target and target != name:
                edges[name].add(target)
    return edges


def cycles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def loop_through(edges, comp):
    """One shortest loop from the set's first file back to itself."""
    start = comp[0]
    inside = set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v] & inside):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--rev")
    ap.add_argument("--max-lines", type=int, default=600)
    args = ap.parse_args()
    files = files_at(args.root, args.rev)
    edges = graph(files)
    found = cycles(edges)
    arrows = sum(len(e) for e in edges.values())
    print(f"{len(edges)} modules, {arrows} arrows, {len(found)} cycles")
    for comp in found:
        print(f"cycle of {len(comp)}: " + " -> ".join(loop_through(edges, comp)))
    up = sorted(
        (a, b)
        for a, targets in edges.items()
        for b in targets
        if floor(a) is not None and floor(b) is not None and floor(b) > floor(a)
    )
    print(f"{len(up)} arrows run up the floors")
    for a, b in up:
        print(f"  {a} -> {b}")
    big = sorted(
        ((n, t.count("\n")) for n, t in files.items() if not is_test(n)),
        key=lambda x: -x[1],
    )
    over = [(n, c) for n, c in big if c > args.max_lines]
    print(f"{len(over)} files over {args.max_lines} lines")
    for n, c in over:
        print(f"  {c:5} {n}")


if __name__ == "__main__":
    main()
