"""meshwright/sandbox/kube keeps the layout moto gives a service: groups in one order, no import cycle.

Every import counts, at module level or inside a function or an `if TYPE_CHECKING:` block: an import
moved into a function to dodge a cycle is still an edge, so it cannot hide one here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KUBE = "meshwright.sandbox.kube"
KUBE_DIR = Path(__file__).resolve().parents[2] / "meshwright" / "sandbox" / "kube"
# The groups, lowest first: a module may import its own group and the groups before it, never one
# after. `root` is the package's shared vocabulary (registry, status: the errors, auth, rbac); `fleet` is
# a root module too, but the last one: it assembles one API server per cluster from all the others,
# and is what the rest of the sandbox imports.
ORDER = ("root", "schema", "store", "controllers", "http", "fleet")
TOP = {"fleet"}  # root modules that sit at the top of the order, not at its bottom
# Sandbox packages the Kubernetes emulator must not reach into.
FOREIGN = ("meshwright.sandbox.mesh", "meshwright.sandbox.gcp")


def modules() -> dict[str, Path]:
    """Every module of the package (packages by their own name), with its file."""
    found = {}
    for path in sorted(KUBE_DIR.rglob("*.py")):
        parts = path.relative_to(KUBE_DIR).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((KUBE, *parts))] = path
    return found


def group(path: Path) -> str:
    parts = path.relative_to(KUBE_DIR).parts
    if len(parts) > 1:
        return parts[0]  # a module of a subpackage, or its __init__
    return path.stem if path.stem in TOP else "root"


def imported(source: str, module: str, *, is_package: bool) -> set[str]:
    """What `source` imports anywhere in its tree: `from a import b` counts as `a` and as `a.b` (which
    is a module when b is a submodule; callers keep the names that are modules)."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def edges() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        found = imported(path.read_text(), name, is_package=path.name == "__init__.py")
        graph[name] = {n for n in found if n in mods and n != name}
    return graph


def test_the_walker_sees_imports_in_functions_and_type_checking_blocks() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from meshwright.sandbox.kube.store import patch as p\n"
        "if TYPE_CHECKING:\n"
        "    from meshwright.sandbox.kube.http.api import ClusterApi\n"
        "def f() -> None:\n"
        "    from . import managed\n"
        "    import meshwright.sandbox.kube.registry\n"
    )
    found = imported(source, f"{KUBE}.store.crud", is_package=False)
    assert {f"{KUBE}.store.patch", f"{KUBE}.store.managed", f"{KUBE}.http.api", f"{KUBE}.registry"} <= found


def test_every_module_sits_in_a_group_of_the_order() -> None:
    assert sorted({group(path) for path in modules().values()} - set(ORDER)) == []
    assert {group(path) for path in modules().values()} == set(ORDER)


def test_no_import_cycle() -> None:
    graph = edges()
    assert {f"{KUBE}.store.managed", f"{KUBE}.status"} <= graph[f"{KUBE}.store.patch"]  # the walker works
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], node, nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_every_edge_between_groups_points_down_the_order() -> None:
    mods = modules()
    wrong = [
        f"{name} ({group(mods[name])}) imports {target} ({group(mods[target])})"
        for name, targets in sorted(edges().items())
        for target in sorted(targets)
        if ORDER.index(group(mods[target])) > ORDER.index(group(mods[name]))
    ]
    assert wrong == []


def test_nothing_imports_the_mesh_or_gcp_emulators() -> None:
    mods = modules()
    found = [
        f"{name} imports {target}"
        for name, path in sorted(mods.items())
        for target in sorted(imported(path.read_text(), name, is_package=path.name == "__init__.py"))
        if any(target == f or target.startswith(f + ".") for f in FOREIGN)
    ]
    assert found == []


@pytest.mark.parametrize("package", [p for p in ORDER if (KUBE_DIR / p / "__init__.py").is_file()])
def test_a_group_package_holds_only_its_docstring(package: str) -> None:
    """No re-exports: importers name the module that defines what they use."""
    tree = ast.parse((KUBE_DIR / package / "__init__.py").read_text())
    assert ast.get_docstring(tree)
    assert len(tree.body) == 1
