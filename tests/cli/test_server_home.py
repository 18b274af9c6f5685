"""The local Prefect server's home is its user's alone: its database holds Prefect's block encryption
key beside the encrypted blocks (the mesh's root CA among them)."""

from __future__ import annotations

import stat
from pathlib import Path

from meshwright.cli import server


def test_nothing_under_the_server_home_is_readable_by_other_users(prefect_home: Path) -> None:
    assert (prefect_home / "prefect.db").exists()
    opened = {
        str(p.relative_to(prefect_home)): oct(p.stat().st_mode & 0o077)
        for p in [prefect_home, *prefect_home.rglob("*")]
        if not p.is_symlink() and p.stat().st_mode & 0o077
    }
    assert opened == {}


def test_a_home_left_open_by_an_earlier_version_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / ".meshwright" / "prefect"
    (home / "storage").mkdir(parents=True, mode=0o755)
    (home / "prefect.db").write_bytes(b"")
    (home / "prefect.db").chmod(0o644)
    server.private(home)
    assert stat.S_IMODE((home / "prefect.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "storage").stat().st_mode) == 0o700
