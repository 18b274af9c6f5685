"""Plain data the tasks return and the flows report. Nothing here ever holds a credential."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel, Field

from meshwright.spec import MeshSpec


class Timing(BaseModel):
    """When a step started and ended (unix seconds)."""

    step: str
    cluster: str | None = None
    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class CreateResult(BaseModel):
    name: str
    location: str
    operation: str | None = None  # None: an existing cluster was adopted
    adopted: bool = False
    timing: Timing


class ClusterAccess(BaseModel):
    """How to reach a RUNNING cluster: public facts only (the CA certificate is public)."""

    name: str
    location: str
    status: str
    endpoint: str
    ca_certificate: str = Field(repr=False)
    pod_cidr: str
    services_cidr: str
    timing: Timing


class ClusterRef(BaseModel):
    name: str
    location: str
    status: str
    labels: dict[str, str] = Field(default_factory=dict)


class FirewallResult(BaseModel):
    name: str
    network: str
    source_ranges: list[str]
    action: str  # created | patched | unchanged | deleted | absent
    timing: Timing


class Span(BaseModel):
    """A run's start and end (unix seconds)."""

    started: float
    finished: float

    @property
    def seconds(self) -> float:
        return self.finished - self.started


class ProvisionReport(Span):
    mesh: str
    target: str
    project: str
    clusters: list[ClusterAccess]
    firewall: FirewallResult
    kubeconfig: str
    steps: list[Timing]

    @classmethod
    def of(
        cls,
        spec: MeshSpec,
        *,
        created: Iterable[CreateResult],
        clusters: list[ClusterAccess],
        firewall: FirewallResult,
        kubeconfig: str,
        started: float,
    ) -> Self:
        """The report of what a run built; its steps are the creates, the waits and the firewall."""
        steps = [r.timing for r in created] + [c.timing for c in clusters] + [firewall.timing]
        return cls(
            mesh=spec.name,
            target=spec.target.value,
            project=spec.project,
            clusters=clusters,
            firewall=firewall,
            kubeconfig=kubeconfig,
            steps=steps,
            started=started,
            finished=time.time(),
        )


class TeardownReport(BaseModel):
    mesh: str
    deleted_clusters: list[str]
    firewall: str
    waited: bool
    seconds: float
