"""Which spec files may be read, and reading one: a regular file of at most MAX_SPEC_BYTES of UTF-8.

A path reaches a flow as its `spec` parameter (the Prefect UI's Run form, the API) and is read on
the runner, by whoever may start a run: there a spec file is read only under an allowed root, the
project's deployments/ or a directory of `MESHWRIGHT_SPEC_ROOTS` (`confined`). The person at the
keyboard of the CLI may name any file: the CLI reads it (`confined=False`) and hands the flow the
spec itself, never the path. Either way, a FIFO, a device or a huge file is one problem, not a hang.
Nothing here knows the spec's fields.
"""

from __future__ import annotations

from pathlib import Path

from meshwright.errors import SpecInvalid, SpecProblem
from meshwright.files import FileRefused, read_regular
from meshwright.settings import settings

# A spec is a few KiB; reading stops here, so a disk image is one clear problem.
MAX_SPEC_BYTES = 1024 * 1024
PROJECT_SPECS = Path(__file__).resolve().parents[1] / "deployments"


def spec_roots() -> list[Path]:
    """The directories whose spec files a flow reads when given a path, symbolic links resolved:
    the project's deployments/ (beside this package, and in the working directory, where an
    installed image such as the Dockerfile's runs its flows from: prefect.yaml's `spec:
    deployments/...`), then MESHWRIGHT_SPEC_ROOTS."""
    roots = (PROJECT_SPECS, Path.cwd() / "deployments", *settings().spec_roots)
    return [root.expanduser().resolve() for root in roots]


def read_spec_text(path: Path, *, confined: bool, source: str) -> str:
    """The text of the spec file at `path`; `confined`: only under `spec_roots()`.

    Raises SpecInvalid with one problem: outside the roots, not readable, no regular file, too large,
    or not UTF-8.
    """
    where = path.expanduser()
    if confined:
        where = _inside_roots(where, source=source)
    try:
        data = read_regular(where, limit=MAX_SPEC_BYTES)
    except FileRefused as e:
        raise _invalid(f"the spec is {e}; is this the right file?", source) from None
    except OSError as e:
        raise _invalid(f"cannot read the spec: {e.strerror}", source) from None
    return _decode(data, source=source)


def _inside_roots(path: Path, *, source: str) -> Path:
    """`path` with its links resolved, if that is under an allowed root (a link cannot lead out)."""
    resolved = path.resolve()
    if any(resolved.is_relative_to(root) for root in spec_roots()):
        return resolved
    reason = (
        "a spec path given to a flow must be under the project's deployments/ or a directory of "
        "MESHWRIGHT_SPEC_ROOTS; give the spec itself (the Run form's fields) instead"
    )
    raise _invalid(reason, source)


def _decode(data: bytes, *, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); a spec is a YAML file"
        raise _invalid(reason, source) from None


def _invalid(reason: str, source: str) -> SpecInvalid:
    return SpecInvalid([SpecProblem("", reason)], source=source)
