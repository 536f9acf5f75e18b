"""The import graph of `molvae/` has no cycle: every `import` statement counts, whether at module level,
inside a function (a lazy import) or under `if TYPE_CHECKING:` (a type-only import), because each is a
dependency a reader has to follow. Built with `ast`, so nothing is imported to check it."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "molvae"


def module_name(path: Path) -> str:
    """`molvae/generation/api.py` -> "molvae.generation.api"; a package's `__init__.py` -> the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The molvae modules the file imports. `from a.b import c` names the module a.b.c when c is a module,
    else a.b itself; relative imports are resolved against the file's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(path, name, set(found)) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (the first repeated at the end), or None. Depth-first search with
    the path kept on a stack: an edge back into the path closes a cycle."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_graph_is_built_from_every_kind_of_import() -> None:
    graph = import_graph()
    assert "molvae.chem" in graph["molvae.generation.api"]  # `from molvae import chem`: a module
    assert "molvae.model.inference" in graph["molvae.generation.api"]  # `from molvae.model import inference`
    assert len(graph) > 50


def test_find_cycle_reports_the_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_molvae_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("first", ["molvae.analysis", "molvae.generation"])
def test_either_side_imports_first(first: str) -> None:
    """`analysis` builds on `generation`, whose `MolVAE` calls `analysis` lazily: a fresh interpreter can
    import either one first (a module-level import the other way would meet a half-initialized module)."""
    done = subprocess.run([sys.executable, "-c", f"import {first}, molvae.analysis, molvae.generation"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
