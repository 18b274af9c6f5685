"""Google's rate limits, as the sandbox answers them through the real clients, are transient: the
step fails with TransientError, which the tasks' retry rule retries with exponential backoff."""

from __future__ import annotations

import pytest

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.errors import TransientError
from meshwright.sandbox.faults import FaultRule
from meshwright.sandbox.world import World
from tasks.clusters import create_cluster
from tasks.common import retry_if_transient
from tasks.network import ensure_firewall
from tests.support import mesh

# GKE over its per-minute API quota (cloud.google.com/kubernetes-engine/quotas: requests per minute,
# enforced every 100 s): 429 RESOURCE_EXHAUSTED.
GKE_PER_MINUTE = (
    "Quota exceeded for quota metric 'Cluster write requests' and limit 'Cluster write requests per "
    "minute per project' of service 'container.googleapis.com' for consumer 'project_number:1'."
)


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def result(self) -> None:
        raise self.error


def test_a_create_over_gkes_per_minute_quota_is_retried_and_frees_its_slot(
    sandbox: World, target: MeshwrightTarget
) -> None:
    sandbox.faults.replace(
        [FaultRule(api="gke", method="POST", path="/clusters$", status=429, message=GKE_PER_MINUTE)]
    )
    with pytest.raises(TransientError, match="per minute") as failed:
        create_cluster.fn(mesh(), "central", target=target, expires=None)
    assert retry_if_transient(None, None, _Failed(failed.value))
    assert clients.cloud(target).creates.held == frozenset()


def test_computes_concurrent_operation_quota_is_retried(sandbox: World, target: MeshwrightTarget) -> None:
    # cloud.google.com/compute/operations-quota: 403, "Rate Limit Exceeded", reason rateLimitExceeded.
    rule = FaultRule(
        api="compute", method="POST", path="/firewalls$", status=403, message="Rate Limit Exceeded",
        reason="rateLimitExceeded",
    )  # fmt: skip
    sandbox.faults.replace([rule])
    with pytest.raises(TransientError, match="Rate Limit Exceeded") as failed:
        ensure_firewall.fn(mesh(), ["10.8.0.0/14"], target=target, expires=None)
    assert retry_if_transient(None, None, _Failed(failed.value))
