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
