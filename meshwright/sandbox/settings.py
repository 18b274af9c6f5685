"""Where a sandbox keeps its state, and how slow its simulated world is.

A sandbox is picked by `--state DIR`, else `MESHWRIGHT_SANDBOX_STATE`, else `.meshwright/sandbox/`,
so several can run side by side (`contract.state_dir`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from meshwright.sandbox.contract import DAEMON_FILE, OPERATOR_TOKEN_FILE, STATE_ENV, state_dir

__all__ = ["STATE_ENV", "Latency", "Layout", "parse_quotas", "state_dir"]

_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}$")
_METRIC = re.compile(r"^[A-Z][A-Z0-9_]{1,62}$")

# Per-cluster directories are named by an id the sandbox made, never by a user's string.
_CLUSTER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _checked(cluster_id: str) -> str:
    if not isinstance(cluster_id, str) or not _CLUSTER_ID.fullmatch(cluster_id):
        raise ValueError(f"not a sandbox cluster id: {cluster_id!r}")
    return cluster_id


@dataclass(frozen=True)
class Layout:
    """The files of one state directory."""

    root: Path

    @property
    def daemon(self) -> Path:
        return self.root / DAEMON_FILE

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
        return self.root / OPERATOR_TOKEN_FILE

    def ca_dir(self, cluster_id: str) -> Path:
        """A cluster's CA and token keys; ValueError unless `cluster_id` is a sandbox-made id."""
        return self.root / "ca" / _checked(cluster_id)

    def kube_dir(self, cluster_id: str) -> Path:
        """A cluster's objects and port; ValueError unless `cluster_id` is a sandbox-made id."""
        return self.root / "kube" / _checked(cluster_id)


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


def parse_quotas(path: str | Path | None) -> dict[str, dict[str, float]]:
    """`--quotas FILE`: YAML region -> metric -> limit, e.g. `us-central1: {CPUS: 24}`; the regions and
    metrics not named keep the sandbox's generous defaults. ValueError names what is wrong."""
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError("quotas must be a mapping of region -> metric -> limit")
    quotas: dict[str, dict[str, float]] = {}
    for region, limits in data.items():
        if not isinstance(region, str) or not _REGION.match(region) or not isinstance(limits, dict):
            raise ValueError(f"quotas: {str(region)[:40]!r} is not a region mapped to metric: limit")
        quotas[region] = {_metric(region, k): _limit(region, k, v) for k, v in limits.items()}
    return quotas


def _metric(region: str, metric: object) -> str:
    if not isinstance(metric, str) or not _METRIC.match(metric):
        raise ValueError(
            f"quotas: {region}: {str(metric)[:40]!r} is not a quota metric (CPUS, IN_USE_ADDRESSES, ...)"
        )
    return metric


def _limit(region: str, metric: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"quotas: {region}: {metric} must be a number of at least 0")
    return float(value)
