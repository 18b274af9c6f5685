"""Writing files so that a crash never leaves half of one, and secrets are private from the first byte;
reading a file a user named so that no path makes the reader hang or swallow a device.

Both the product (kubeconfigs) and the sandbox (its state) write through here; spec files and the
root CA a spec names are read through here.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

SECRET_MODE = 0o600
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# Non-blocking: should a FIFO replace the file between the stat and the open, the open returns.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class FileRefused(Exception):
    """A file that is not read: not a regular file, or larger than the reader's limit."""


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path` (created with `mode`), then rename it over `path`. A
    secret's directories, made here, are their owner's alone (0700)."""
    private = mode & 0o077 == 0
    for directory in reversed([p for p in path.parents if not p.exists()]):
        directory.mkdir(exist_ok=True, mode=0o700 if private else 0o777)
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


def read_regular(path: Path, *, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes (symbolic links followed).

    It is looked at before it is opened: a FIFO would block the read until a writer comes, a device
    such as /dev/zero never ends, and opening some devices does something. What was opened is
    looked at again, and at most `limit` + 1 bytes are read, in case the file changed meanwhile.

    Raises:
        OSError: it cannot be looked at or opened (missing, no permission).
        FileRefused: it is no regular file, or larger than `limit`.
    """
    _refuse_unless_regular(os.stat(path), limit=limit)
    with os.fdopen(os.open(path, _READ_FLAGS), "rb") as f:
        _refuse_unless_regular(os.fstat(f.fileno()), limit=limit)
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"larger than {_size(limit)}")
    return data


def _refuse_unless_regular(info: os.stat_result, *, limit: int) -> None:
    """Raise FileRefused unless `info` is of a regular file of at most `limit` bytes."""
    for is_kind, kind in _KINDS:
        if is_kind(info.st_mode):
            raise FileRefused(f"not a regular file ({kind})")
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused("not a regular file")
    if info.st_size > limit:
        raise FileRefused(f"larger than {_size(limit)}")


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"
