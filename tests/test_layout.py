"""The layout's rules, checked on the source with `ast` (issue 10): no import circles
between neve's modules, no function-level imports of neve modules (the usual way to
dodge a circle), and no module reaching into another object's private attributes."""
from __future__ import annotations

import ast
from pathlib import Path

NEVE = Path(__file__).resolve().parent.parent / "neve"

# The one module allowed to touch Unicorn's private attributes: its wrapper.
UNICORN_WRAPPER = NEVE / "core" / "cpu.py"
# Private names of the standard library that are public API.
STDLIB_PRIVATE = {"_exit", "_asdict", "_replace", "_fields", "_make"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(NEVE.rglob("*.py")):
        rel = p.relative_to(NEVE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _imports(tree: ast.Module, modname: str, known: set[str], top_level: bool):
    """(module imported, line) for each import of a neve module; top_level: only those
    executed at import time (not inside a function)."""
    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING":
                continue                # imports for annotations only: not run
            f = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if top_level and f:
                    continue
                if not top_level and not f:
                    continue
                for a in child.names:
                    sub = f"{child.module}.{a.name}"
                    if sub in known:
                        yield sub, child.lineno
                    elif child.module in known:
                        yield child.module, child.lineno
            elif isinstance(child, ast.Import):
                if top_level and f or not top_level and not f:
                    continue
                for a in child.names:
                    if a.name in known:
                        yield a.name, child.lineno
            yield from visit(child, f)
    yield from visit(tree, False)


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    g = {}
    for name, p in mods.items():
        tree = ast.parse(p.read_text())
        g[name] = {m for m, _ in _imports(tree, name, known, True) if m != name}
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
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

    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def test_no_import_circles():
    # A package imports its __init__; only real modules count.
    g = _graph()
    assert _cycles(g) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_function_level_imports_of_neve_modules():
    mods = _modules()
    known = set(mods)
    found = []
    for name, p in mods.items():
        tree = ast.parse(p.read_text())
        for m, line in _imports(tree, name, known, False):
            found.append(f"{p.relative_to(NEVE.parent)}:{line}: imports {m} inside a function")
    assert found == []


def test_no_reaching_into_private_attributes():
    found = []
    for p in sorted(NEVE.rglob("*.py")):
        if p == UNICORN_WRAPPER:
            continue
        for n in ast.walk(ast.parse(p.read_text())):
            if not (isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__")):
                continue
            if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                continue
            if n.attr in STDLIB_PRIVATE:
                continue
            found.append(f"{p.relative_to(NEVE.parent)}:{n.lineno}: {ast.unparse(n)}")
    assert found == []
