"""One local Prefect server (and flow runner) for the CLI tests that run flows, started once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshwright.cli import server


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cli-prefect")
    server.start(home)
    try:
        yield home
    finally:
        server.stop(home)


@pytest.fixture
def cli_env(prefect_home: Path) -> dict[str, str]:
    """The environment of a `meshwright` subprocess: the session's server, no outside API."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MESHWRIGHT_SANDBOX_STATE")}
    return {**env, server.HOME_ENV: str(prefect_home)}
