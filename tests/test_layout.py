"""The house: at most 10 top-level modules, no import cycle, and the device boundary, all read from the code's
imports (module-level and function-level alike), not from what happens to be imported at run time."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "edgelstm"

# what edgelstm.runtime may reach: the standard library, numpy, the three interpreters, pyserial, and these modules
DEVICE_EXTERNAL = {"numpy", "ai_edge_litert", "tflite_runtime", "onnxruntime", "serial"}
DEVICE_INTERNAL = (
    "edgelstm",
    "edgelstm.errors",
    "edgelstm.capabilities",
    "edgelstm.resources",
    "edgelstm.modelfile",
    "edgelstm.modelfile.read",
    "edgelstm.targets",
    "edgelstm.targets.profile",
)


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = ["edgelstm", *p.relative_to(PKG).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def imports(module: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in the module, resolved to absolute names; `from X
    import Y` names X.Y where that is a module of ours."""
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            if name == "__future__":
                continue
            subs = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in MODULES]
            found += [(s, node.lineno) for s in subs] or [(name, node.lineno)]
    return found


def internal_graph() -> dict[str, set[str]]:
    return {m: {i for i, _ in imports(m) if i in MODULES and i != m} for m in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def top_level_modules() -> list[str]:
    return sorted(p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))


def test_at_most_ten_top_level_modules():
    mods = top_level_modules()
    assert len(mods) <= 10, mods


def test_no_import_cycle_between_modules():
    assert cycles(internal_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def device_closure_violations(start: tuple[str, ...] = ("edgelstm.runtime", "edgelstm.runtime.__main__")):
    """Every import reachable from the device side that is not allowed there, as 'module:line imports name'."""
    stdlib = sys.stdlib_module_names
    seen, todo, bad = set(), list(start), []
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        # importing a submodule runs its parent packages' __init__ too
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES]
        for name, line in imports(m):
            top = name.split(".")[0]
            if top == "edgelstm":
                if name not in MODULES:
                    name = name.rsplit(".", 1)[0]
                if name.startswith("edgelstm.runtime") or name in DEVICE_INTERNAL:
                    todo.append(name)
                else:
                    bad.append(f"{m}:{line} imports {name}")
            elif top not in stdlib and top not in DEVICE_EXTERNAL:
                bad.append(f"{m}:{line} imports {name}")
    return sorted(bad), seen


def test_device_side_imports_only_stdlib_numpy_interpreters_and_device_safe_readers():
    bad, seen = device_closure_violations()
    assert bad == []
    assert "edgelstm.modelfile.read" in seen and "edgelstm.targets.profile" in seen


def test_the_boundary_walk_names_an_offending_import():
    """The same walk from a host module finds TensorFlow-side code, naming module and line."""
    bad, _ = device_closure_violations(("edgelstm.export.convert",))
    assert any(b.startswith("edgelstm.export.convert:") and "edgelstm.models" in b for b in bad), bad


def test_tf_lite_is_not_in_the_automatic_backend_order():
    from edgelstm.runtime import interpreter

    assert "tf" not in interpreter.TFLITE_ORDER and "tf" not in interpreter.ORDER
    assert "tf" in interpreter.MODULES  # a user can still name it


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("edgelstm.runtime")))
def test_each_device_module_is_inside_the_boundary(module):
    bad, _ = device_closure_violations((module,))
    assert bad == []
