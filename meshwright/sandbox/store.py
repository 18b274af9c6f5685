"""Files of the sandbox's state directory, written so that a crash never leaves half a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meshwright.files import write_atomic, write_secret

__all__ = ["Journal", "read_json", "write_atomic", "write_json", "write_secret"]


def write_json(path: Path, data: Any, *, mode: int = 0o644) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode(), mode=mode)


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
        directory.mkdir(parents=True, exist_ok=True)
        self._fh = self.log.open("a", encoding="utf-8")

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
        self._fh = self.log.open("w", encoding="utf-8")
        self._appended = 0

    def close(self) -> None:
        self._fh.close()
