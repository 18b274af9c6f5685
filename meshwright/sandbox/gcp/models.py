"""Typed records of the GCP emulator, and how they persist.

A record is what the API shows (`view`, exactly the JSON a client gets) plus the sandbox's own
bookkeeping as attributes. On disk a record is its view with the bookkeeping under `_` keys, the
shape `gcp.json` has always had. Loading checks every record: one that cannot be read back
(hand-edited, from an older sandbox that stored anything) is skipped with one log line, never
allowed to stop a start or break a list.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from meshwright.sandbox.gcp import validate

log = logging.getLogger(__name__)

CLUSTER_STATUSES = {"PROVISIONING", "RUNNING", "RECONCILING", "STOPPING", "ERROR", "DEGRADED"}
KEPT_OPERATIONS = 500
"""Finished operations kept per API; older ones are forgotten so gcp.json stays small."""


def operation_id() -> str:
    """A new operation's name, in Google's style: `operation-<ms>-<hex>`."""
    return f"operation-{int(time.time() * 1000)}-{secrets.token_hex(4)}"


def cluster_key(project: str, location: str, name: str) -> str:
    return f"{project}/{location}/{name}"


class _Located:
    """A GKE record whose API view carries its name and location."""

    view: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.view["name"])

    @property
    def location(self) -> str:
        return str(self.view["location"])


@dataclass
class ClusterRecord(_Located):
    """A GKE cluster: its API view, its project and whether the user chose its pod range."""

    project: str
    view: dict[str, Any]
    explicit_range: bool = False

    @property
    def id(self) -> str:
        return str(self.view["id"])

    @property
    def key(self) -> str:
        return cluster_key(self.project, self.location, self.name)

    @property
    def status(self) -> str:
        return str(self.view["status"])

    @property
    def pod_range(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.view["clusterIpv4Cidr"])

    def hooks_view(self) -> dict[str, Any]:
        """What the fleet reads: the view plus `_project` (INTERFACES item 2)."""
        return {**self.view, "_project": self.project}

    def to_json(self) -> dict[str, Any]:
        return {**self.view, "_project": self.project, "_explicit_range": self.explicit_range}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterRecord:
        view = {k: v for k, v in data.items() if not k.startswith("_")}
        record = cls(str(data["_project"]), view, bool(data.get("_explicit_range", False)))
        validate.project(record.project)
        validate.location(record.location)
        validate.gke_name(record.view["name"], "cluster.name")
        if record.status not in CLUSTER_STATUSES or not validate.SANDBOX_ID.fullmatch(record.id):
            raise ValueError(f"status {record.status!r} / id {record.id!r}")
        pools = view.get("nodePools")
        if not isinstance(view.get("network"), str) or not (
            isinstance(pools, list) and all(isinstance(p, dict) for p in pools)
        ):
            raise ValueError("network must be a string and nodePools a list of objects")
        record.pod_range  # noqa: B018 - it must parse, or every later create would fail on it
        ipaddress.IPv4Network(view["servicesIpv4Cidr"])
        return record


@dataclass
class GkeOperation(_Located):
    """A GKE long-running operation: due at `due`, then DONE, failed if `fail` says why."""

    project: str
    cluster: str
    started: float
    due: float
    view: dict[str, Any]
    done: bool = False
    fail: str | None = None

    @property
    def kind(self) -> str:
        return str(self.view["operationType"])

    @property
    def key(self) -> str:
        return f"{self.project}/{self.location}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        own = {"_project": self.project, "_cluster": self.cluster, "_started": self.started}
        return {**self.view, **own, "_due": self.due, "_done": self.done, "_fail": self.fail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GkeOperation:
        view = {k: v for k, v in data.items() if not k.startswith("_")}
        op = cls(
            project=str(data["_project"]),
            cluster=str(data["_cluster"]),
            started=float(data["_started"]),
            due=float(data["_due"]),
            view=view,
            done=bool(data["_done"]),
            fail=None if data.get("_fail") is None else str(data["_fail"]),
        )
        if not (isinstance(view["name"], str) and isinstance(view["location"], str)):
            raise ValueError("name and location must be strings")
        if op.kind not in ("CREATE_CLUSTER", "DELETE_CLUSTER"):
            raise ValueError(f"operationType {op.kind!r}")
        return op


@dataclass
class ComputeRecord:
    """A Compute network, firewall rule or global operation of one project."""

    project: str
    view: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.view["name"])

    @property
    def key(self) -> str:
        return f"{self.project}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {**self.view, "_project": self.project}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComputeRecord:
        record = cls(str(data["_project"]), {k: v for k, v in data.items() if not k.startswith("_")})
        validate.project(record.project)
        if not validate.COMPUTE_NAME.fullmatch(record.name) and not record.name.startswith("operation-"):
            raise ValueError(f"name {record.name!r}")
        return record


R = TypeVar("R", ClusterRecord, GkeOperation, ComputeRecord)


def forget_oldest(table: dict[str, R], *, finished: Callable[[R], bool], age: Callable[[R], Any]) -> None:
    """Drop the oldest finished records beyond KEPT_OPERATIONS (running ones always stay)."""
    done = [key for key, record in table.items() if finished(record)]
    if len(done) > KEPT_OPERATIONS:
        for key in sorted(done, key=lambda k: age(table[k]))[: len(done) - KEPT_OPERATIONS]:
            del table[key]


def load_table(
    stored: Any, parse: Callable[[dict[str, Any]], R], *, what: str, key: Callable[[R], str]
) -> dict[str, R]:
    """Every record of a stored table that reads back; each one that does not is named in the log."""
    table: dict[str, R] = {}
    for stored_key, data in _items(stored, what):
        try:
            record = parse(data)
        except Exception as err:  # any shape at all may be on disk
            log.warning("skipped %s %.80r in gcp.json: %s: %.120s", what, stored_key, type(err).__name__, err)
            continue
        table[key(record)] = record
    return table


def _items(stored: Any, what: str) -> Iterable[tuple[str, dict[str, Any]]]:
    if not isinstance(stored, dict):
        if stored is not None:
            log.warning("skipped every %s in gcp.json: not a mapping", what)
        return []
    return ((str(k), v if isinstance(v, dict) else {}) for k, v in stored.items())
