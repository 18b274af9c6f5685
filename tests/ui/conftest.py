"""One real local Prefect server (and its flow runner) and one sandbox for the UI tests' session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from meshwright.cli import server
from meshwright.sandbox import daemon
from tests.ui.browser import chromium

SPEC = {
    "name": "uimesh",
    "project": "demo-project",
    "ttl": "1h",
    "clusters": [{"name": "ui-central", "location": "us-central1-a"}],
}


@dataclass
class Stack:
    api: server.Api
    env: dict[str, str]
    spec: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshwright", *args],
            env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs Debian's chromium package")
        pytest.skip("chromium is not installed (`make browser` installs Debian's package)")
    root = tmp_path_factory.mktemp("ui")
    home, state = root / "prefect", root / "sandbox"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update({server.HOME_ENV: str(home), "MESHWRIGHT_SANDBOX_STATE": str(state)})
    spec = root / "uimesh.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    daemon.start(state, latency="create=1,delete=0.2")
    try:
        yield Stack(api=server.start(home), env=env, spec=spec)
    finally:
        server.stop(home)
        daemon.reset(state)
