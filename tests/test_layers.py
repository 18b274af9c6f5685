"""Layers never import upward: meshwright/ knows nothing of tasks/ or flows/; the sandbox stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


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
