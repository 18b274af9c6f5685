"""Writing files so that a crash never leaves half of one, and secrets are private from the first byte.

Both the product (kubeconfigs) and the sandbox (its state) write through here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SECRET_MODE = 0o600


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path` (created with `mode`), then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_secret(path: Path, data: bytes) -> None:
    """Keys, tokens and kubeconfigs with credentials: mode 0600 from the first byte on."""
    write_atomic(path, data, mode=SECRET_MODE)
