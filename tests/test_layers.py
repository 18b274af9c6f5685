"""Layers never import upward: meshwright/ knows nothing of tasks/ or flows/; the sandbox stands alone;
the product reaches the sandbox only through its contract, and only from the client factory and CLI."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = "meshwright.sandbox"
CONTRACT = "meshwright.sandbox.contract"
# Who outside the sandbox may import which of its modules.
ALLOWED_SANDBOX_IMPORTS = {
    "meshwright/clients.py": {CONTRACT},
    "meshwright/cli/commands.py": {CONTRACT},
    # The sandbox's own command line: starts, stops and serves daemons.
    "meshwright/cli/sandbox.py": {CONTRACT, "meshwright.sandbox.daemon", "meshwright.sandbox.settings"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from meshwright.sandbox import daemon` imports the module meshwright.sandbox.daemon
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == SANDBOX)
    return names


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def production_files() -> list[Path]:
    files = [*(ROOT / "tasks").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]
    files += [
        p for p in (ROOT / "meshwright").rglob("*.py") if (ROOT / "meshwright" / "sandbox") not in p.parents
    ]
    return sorted(files)


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("meshwright", ("tasks", "flows")),
        ("meshwright/sandbox", ("tasks", "flows", "prefect")),
        ("tasks", ("flows",)),
    ],
)
def test_no_upward_imports(folder: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(folder, forbidden) == []


def test_only_the_client_factory_and_cli_touch_the_sandbox_and_only_its_contract() -> None:
    found = []
    for path in production_files():
        rel = str(path.relative_to(ROOT))
        touched = {n for n in imported_modules(path) if n == SANDBOX or n.startswith(SANDBOX + ".")}
        touched.discard(SANDBOX)  # the package itself, as in `from meshwright.sandbox import contract`
        found += [f"{rel} imports {n}" for n in sorted(touched - ALLOWED_SANDBOX_IMPORTS.get(rel, set()))]
    assert found == []


def loaded_sandbox_modules(*modules: str) -> list[str]:
    """The meshwright.sandbox modules a fresh interpreter holds after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(n for n in sys.modules if n.startswith({SANDBOX + '.'!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return list(json.loads(out.stdout))


def test_client_factory_and_every_task_and_flow_load_only_the_sandbox_contract() -> None:
    modules = ["meshwright.clients", "meshwright.status"]
    modules += [f"tasks.{p.stem}" for p in sorted((ROOT / "tasks").glob("*.py")) if p.stem != "__init__"]
    modules += [f"flows.{p.stem}" for p in sorted((ROOT / "flows").glob("*.py")) if p.stem != "__init__"]
    assert loaded_sandbox_modules(*modules) == [CONTRACT]


def test_cli_start_loads_no_emulator_and_no_google_client() -> None:
    code = (
        "import sys, meshwright.cli\n"
        "print(sorted(n for n in sys.modules if n.startswith(('google.cloud', 'kubernetes', 'prefect', "
        "'meshwright.sandbox.world', 'meshwright.sandbox.kube', 'meshwright.sandbox.gcp', 'cryptography'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# What the sandbox may use of the product: plain building blocks, nothing that talks to a cloud.
SANDBOX_MAY_IMPORT = {"meshwright.errors", "meshwright.files", "meshwright.pki", "meshwright.kubeconfig"}
# `python -m meshwright.sandbox serve` is the daemon's launcher: it runs the sandbox's command group.
SANDBOX_LAUNCHER = {"meshwright/sandbox/__main__.py": {"meshwright.cli.sandbox"}}


def test_the_sandbox_uses_only_errors_files_pki_and_kubeconfig_of_the_product() -> None:
    found = []
    for path in sorted((ROOT / "meshwright" / "sandbox").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        product = {
            n for n in imported_modules(path) if n.startswith("meshwright.") and not n.startswith(SANDBOX)
        }
        allowed = SANDBOX_MAY_IMPORT | SANDBOX_LAUNCHER.get(rel, set())
        found += [f"{rel} imports {n}" for n in sorted(product - allowed)]
    assert found == []


def module_graph() -> dict[str, set[str]]:
    """The product's modules and what each imports of the product, type-only imports included
    (`from pkg import sub` counts as importing pkg.sub, not pkg's __init__)."""
    paths = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in production_files()
    }
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & paths.keys()
                deps |= subs if len(subs) == len(node.names) else {node.module, *subs}
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_the_product() -> None:
    graph = module_graph()
    assert {"meshwright.spec", "tasks.istio", "flows.mesh"} <= graph.keys()
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]  # the check sees one


def test_flows_only_compose_they_define_no_task() -> None:
    found = []
    for path in sorted((ROOT / "flows").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for d in node.decorator_list:
                    called = d.func if isinstance(d, ast.Call) else d
                    if ast.unparse(called).split(".")[-1] == "task":
                        found.append(f"{path.name}: @task {node.name}")
    assert found == []


# Only the client factory knows which target it talks to and builds clients.
FACTORY_ONLY = (
    "Target.SANDBOX",
    "Target.GKE",
    "kube.connect(",
    "cluster_command(",
    "ApiClient(",
    "Client(credentials",
)


def test_tasks_and_flows_never_name_a_target_nor_build_a_client() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {needle}"
        for folder in ("tasks", "flows")
        for path in sorted((ROOT / folder).glob("*.py"))
        for needle in FACTORY_ONLY
        if needle in path.read_text()
    ]
    assert found == []
