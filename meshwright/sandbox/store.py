"""Files of the sandbox's state directory, written so that a crash never leaves half a file.

The state holds Kubernetes Secrets (objects' journals and snapshots), CA keys and tokens, so all of
it is private to the user running the sandbox: every directory 0700, every file 0600, from the
first byte on; `make_private` brings a state directory written by an older sandbox into line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, TextIO

from meshwright import files

__all__ = [
    "Journal",
    "ensure_dir",
    "make_private",
    "open_private",
    "read_json",
    "write_atomic",
    "write_json",
    "write_secret",
]

DIR_MODE, FILE_MODE = 0o700, 0o600


def ensure_dir(path: Path) -> None:
    """`path` and each missing parent, created with mode 0700 (mkdir's `mode` covers only the last)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits away; never adds any here


def make_private(root: Path) -> None:
    """`root` and every directory below it 0700, every file 0600 (symlinks are left alone)."""
    ensure_dir(root)
    os.chmod(root, DIR_MODE)
    for here, dirs, names in os.walk(root):
        for name, mode in [(d, DIR_MODE) for d in dirs] + [(n, FILE_MODE) for n in names]:
            path = Path(here, name)
            if not path.is_symlink():
                os.chmod(path, mode)


def write_atomic(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    ensure_dir(path.parent)
    files.write_atomic(path, data, mode=mode)


def write_secret(path: Path, data: bytes) -> None:
    write_atomic(path, data, mode=FILE_MODE)


def write_json(path: Path, data: Any, *, mode: int = FILE_MODE) -> None:
    # Compact: json's C encoder does not indent, and the GCP state is rewritten at every GCP write
    write_atomic(path, json.dumps(data, separators=(",", ":"), sort_keys=True).encode(), mode=mode)


def open_private(path: Path, mode: Literal["a", "w"] = "a") -> TextIO:
    """A text file opened for appending ("a") or rewriting ("w"), created 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return open(fd, mode, encoding="utf-8")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


class Journal:
    """Append-only log of JSON records with compaction into a snapshot.

    Each acknowledged change is one line flushed to the OS before the client hears back, so a
    daemon crash loses nothing; at start the snapshot is loaded and the journal replayed.
    """

    def __init__(self, directory: Path, *, compact_every: int = 5000) -> None:
        self.directory = directory
        self.snapshot = directory / "snapshot.json"
        self.log = directory / "journal.jsonl"
        self._compact_every = compact_every
        self._appended = 0
        ensure_dir(directory)
        self._fh = open_private(self.log, "a")

    def load(self) -> tuple[Any, list[Any]]:
        base = read_json(self.snapshot)
        records = []
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn last line from a crash mid-write: nothing after it was acknowledged
        return base, records

    def append(self, record: Any) -> bool:
        """Returns True when it is time to compact."""
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        self._appended += 1
        return self._appended >= self._compact_every

    def compact(self, state: Any) -> None:
        write_json(self.snapshot, state)
        self._fh.close()
        self._fh = open_private(self.log, "w")
        self._appended = 0

    def close(self) -> None:
        self._fh.close()
