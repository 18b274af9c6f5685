"""meshwright's own error tree, and the translation of SDK errors into it at the edge.

Retry decisions look at these classes only, never at google-api-core, kubernetes or pyhelm3
exceptions. Messages carry where (cluster) and what (step), never a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PAYLOAD_LIMIT = 300
KEY_NAME_MAX = 40
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,39}", re.ASCII)


class MeshwrightError(Exception):
    """Base of every error meshwright raises on purpose."""

    def __init__(self, message: str, *, cluster: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cluster = cluster
        self.step = step

    def __str__(self) -> str:
        where = " ".join(part for part in (self.step, f"[{self.cluster}]" if self.cluster else None) if part)
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments need an explicit recipe for pickling (Prefect pickles task errors).
        return (_rebuild, (type(self), self.message, self.cluster, self.step))


def _rebuild(
    cls: type[MeshwrightError], message: str, cluster: str | None, step: str | None
) -> MeshwrightError:
    return cls(message, cluster=cluster, step=step)


class TransientError(MeshwrightError):
    """Worth retrying: throttling, unavailability, a concurrent operation, a dropped connection."""


class Unreachable(TransientError):
    """The API endpoint could not be reached at all."""


class Unresponsive(Unreachable):
    """The endpoint took the connection and never answered (a control plane restarting, or wedged).

    Retried a few times only: a hung API server does not come back faster for being asked again,
    and its cluster's steps must fail in minutes, naming it, while the other clusters go on.
    """


class NotReady(TransientError):
    """A wait ran out of time: what was waited for (a rollout, a CRD) is not there yet."""


class PermanentError(MeshwrightError):
    """Retrying will not help; a person has to change something."""


class NotFound(PermanentError):
    """The resource does not exist."""


class Conflict(PermanentError):
    """The resource exists already, or in a state that forbids the request."""


class PermissionDenied(PermanentError):
    """The credentials are missing or not allowed to do this."""


class ServiceDisabled(PermissionDenied):
    """The project has not enabled an API meshwright calls (Google's 403 SERVICE_DISABLED)."""


class QuotaExceeded(PermanentError):
    """A quota stops the request; retrying the same request will fail the same way."""


class InvalidRequest(PermanentError):
    """The request itself is wrong (bad argument, unsupported value)."""


class Refused(PermanentError):
    """meshwright will not do what the run would need without the user's say-so (a flag)."""


class OperationFailed(PermanentError):
    """A long-running cloud operation ended with an error."""


class SandboxError(MeshwrightError):
    """The local sandbox world is not running or not usable."""


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a mesh spec: where (a field path) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def key_name(key: object) -> str:
    """How a key of a spec's document appears in a problem's path.

    A spec may be any file (a line of a config file parses as a key), and its problems reach logs
    and the Prefect UI: a key that looks like a field name shows as is, any other is escaped to
    ASCII and cut at KEY_NAME_MAX characters. Values are never quoted at all.
    """
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return key
    text = ascii(key)
    return text if len(text) <= KEY_NAME_MAX else text[: KEY_NAME_MAX - 3] + "..."


class SpecInvalid(MeshwrightError):
    """A mesh spec with one or more problems; all of them are listed at once."""

    def __init__(self, problems: list[SpecProblem], *, source: str = "spec") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: {len(problems)} problem(s)")

    def __str__(self) -> str:
        return "\n".join([f"{self.source} is invalid:", *(f"  {p}" for p in self.problems)])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_spec, (self.problems, self.source))


def _rebuild_spec(problems: list[SpecProblem], source: str) -> SpecInvalid:
    return SpecInvalid(problems, source=source)


def truncate(text: str, limit: int = _PAYLOAD_LIMIT) -> str:
    """Keep server payloads in messages short enough to read in one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_transient(error: BaseException) -> bool:
    """The one retry rule: meshwright's transient errors, nothing else."""
    return isinstance(error, TransientError)
