"""A retry of the same flow run finds the steps that changed the world already done (their cache
key ignores when the cluster became ready), while a different cluster or a new run does them again."""

from __future__ import annotations

from typing import Any, cast

from prefect.context import TaskRunContext
from pydantic import BaseModel

from meshwright.models import ClusterAccess, Timing
from tasks.common import ONCE_PER_RUN, StableInputs


def _access(endpoint: str = "127.0.0.1:4443", *, started: float = 1.0) -> ClusterAccess:
    return ClusterAccess(
        name="west",
        location="us-west1-b",
        status="RUNNING",
        endpoint=endpoint,
        ca_certificate="Q0E=",
        pod_cidr="10.4.0.0/14",
        services_cidr="34.118.224.0/20",
        timing=Timing(step="wait_cluster", cluster="west", started=started, finished=started + 5),
    )


def _key(**inputs: Any) -> str | None:
    # INPUTS reads only the inputs, never the task-run context.
    return StableInputs().compute_key(cast(TaskRunContext, None), inputs, {})


def test_a_rerun_wait_with_new_timing_keeps_the_key() -> None:
    assert _key(access=_access(started=1.0), release="istiod") == _key(
        access=_access(started=99.0), release="istiod"
    )


def test_another_endpoint_or_release_changes_the_key() -> None:
    base = _key(access=_access(), release="istiod")
    assert _key(access=_access("127.0.0.1:5555"), release="istiod") != base
    assert _key(access=_access(), release="istio-base") != base


def test_models_without_timing_are_hashed_whole() -> None:
    class Root(BaseModel):
        fingerprint: str

    assert _key(root=Root(fingerprint="a")) != _key(root=Root(fingerprint="b"))


def test_the_once_per_run_policy_keeps_its_timing_blind_inputs() -> None:
    # Prefect's compound policy swaps any Inputs it holds for a plain one; ours must survive.
    policies = ONCE_PER_RUN["cache_policy"].policies
    assert [type(p).__name__ for p in policies if "Inputs" in type(p).__name__] == ["StableInputs"]
