"""Where a sandbox keeps its state, and how slow its simulated world is.

A sandbox is picked by `--state DIR`, else `MESHWRIGHT_SANDBOX_STATE`, else `.meshwright/sandbox/`,
so several can run side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

STATE_ENV = "MESHWRIGHT_SANDBOX_STATE"
DEFAULT_STATE = Path(".meshwright") / "sandbox"


def state_dir(explicit: str | Path | None = None) -> Path:
    """The state directory of the sandbox a command means, as an absolute path."""
    chosen = explicit or os.environ.get(STATE_ENV) or DEFAULT_STATE
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    """The files of one state directory."""

    root: Path

    @property
    def daemon(self) -> Path:
        return self.root / "daemon.json"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def gcp(self) -> Path:
        return self.root / "gcp.json"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def operator_token(self) -> Path:
        return self.root / "operator-token"

    def ca_dir(self, cluster_id: str) -> Path:
        return self.root / "ca" / cluster_id

    def kube_dir(self, cluster_id: str) -> Path:
        return self.root / "kube" / cluster_id


@dataclass(frozen=True)
class Latency:
    """Seconds the simulated world takes. Small by default so the demo is quick."""

    create: float = 2.0  # cluster create: PROVISIONING -> RUNNING
    delete: float = 1.0  # cluster delete: STOPPING -> gone
    pending: float = 0.2  # an operation stays PENDING this long before RUNNING
    firewall: float = 0.05  # a Compute firewall change
    request: float = 0.0  # added to every API request
    rollout: float = 0.3  # a Deployment's pods become ready
    loadbalancer: float = 0.3  # a LoadBalancer Service gets an IP
    namespace: float = 0.0  # a Namespace becomes Active

    @classmethod
    def parse(cls, text: str | None) -> Latency:
        """`create=4,delete=2` or the path of a YAML mapping with the same keys."""
        if not text:
            return cls()
        if "=" not in text:
            data = yaml.safe_load(Path(text).read_text()) or {}
        else:
            data = dict(item.split("=", 1) for item in text.split(",") if item.strip())
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Latency:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown latency key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = {k.strip(): float(v) for k, v in data.items()}
        if any(v < 0 for v in values.values()):
            raise ValueError("latencies must not be negative")
        return replace(cls(), **values)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
