"""The ReplicaSet controller tries a refused pod creation again as kube-controller-manager does:
with client-go's default controller rate limiter, reset once a sync succeeds."""

from __future__ import annotations

import time
from typing import Any

import kubernetes.client
import pytest

from meshwright.sandbox.kube.controllers.ratelimit import BASE_DELAY, MAX_DELAY, ControllerRateLimiter
from meshwright.sandbox.world import World
from tests.sandbox.test_kube_api import apps, core, deployment

Client = kubernetes.client.ApiClient
ISTIOD_LABELS = {"app": "istiod", "istio": "pilot"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_failure_of_an_item_doubles_its_wait_up_to_the_cap_and_success_resets_it() -> None:
    clock = Clock()
    limiter = ControllerRateLimiter(clock=clock)
    waits = []
    for _ in range(20):
        waits.append(limiter.when("default/web"))
        clock.now += 60  # the bucket refills meanwhile: only the item's backoff counts
    assert waits[:4] == [BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY, 8 * BASE_DELAY]
    assert waits[-1] == MAX_DELAY
    assert limiter.when("default/other") == BASE_DELAY  # per item
    limiter.forget("default/web")
    assert limiter.requeues("default/web") == 0
    assert limiter.when("default/web") == BASE_DELAY


def test_the_whole_controller_retries_at_most_ten_a_second_past_a_burst_of_a_hundred() -> None:
    clock = Clock()
    limiter = ControllerRateLimiter(clock=clock)
    waits = [limiter.when(f"default/rs-{n}") for n in range(102)]
    assert waits[:100] == [BASE_DELAY] * 100
    assert waits[100:] == [pytest.approx(0.1), pytest.approx(0.2)]
    clock.now += 10.2  # the owed tokens and 100 more are back
    assert limiter.when("default/rs-new") == BASE_DELAY


def _injection_webhook() -> dict[str, Any]:
    """Istio's injector webhook for namespaces labelled istio-injection=enabled (failurePolicy Fail)."""
    service = {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}
    hook = {
        "name": "namespace.sidecar-injector.istio.io",
        "clientConfig": {"service": service},
        "namespaceSelector": {"matchLabels": {"istio-injection": "enabled"}},
        "rules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
        ],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    return {"metadata": {"name": "istio-sidecar-injector"}, "webhooks": [hook]}


def _istiod() -> dict[str, Any]:
    env = [{"name": "CLUSTER_ID", "value": "central"}]
    container = {"name": "discovery", "image": "docker.io/istio/pilot:1.24.0", "env": env}
    return {
        "metadata": {"name": "istiod", "labels": ISTIOD_LABELS},
        "spec": {
            "selector": {"matchLabels": ISTIOD_LABELS},
            "template": {"metadata": {"labels": ISTIOD_LABELS}, "spec": {"containers": [container]}},
        },
    }


def _wait(what: Any, *, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := what()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return found


def _replica_failure(kube: Client) -> Any:
    sets = apps(kube).list_namespaced_replica_set("apps").items
    conditions = (sets[0].status.conditions or []) if sets and sets[0].status else []
    return next((c for c in conditions if c.type == "ReplicaFailure"), None)


def test_a_pod_refused_while_istiod_is_not_ready_is_created_soon_after_it_is(kube: Client) -> None:
    for name, labels in (("istio-system", {}), ("apps", {"istio-injection": "enabled"})):
        core(kube).create_namespace({"metadata": {"name": name, "labels": labels}})
    port = {"name": "https-webhook", "port": 443, "targetPort": 15017}
    core(kube).create_namespaced_service(
        "istio-system", {"metadata": {"name": "istiod"}, "spec": {"selector": ISTIOD_LABELS, "ports": [port]}}
    )
    admission = kubernetes.client.AdmissionregistrationV1Api(kube)
    admission.create_mutating_webhook_configuration(_injection_webhook())
    apps(kube).create_namespaced_deployment("apps", deployment("web", replicas=1))
    failure = _wait(lambda: _replica_failure(kube), seconds=3)
    assert 'failed calling webhook "namespace.sidecar-injector.istio.io"' in failure.message
    time.sleep(0.5)  # refused all along: the retries are spaced further and further apart
    apps(kube).create_namespaced_deployment("istio-system", _istiod())
    _wait(
        lambda: apps(kube).read_namespaced_deployment("istiod", "istio-system").status.ready_replicas,
        seconds=3,
    )
    ready = time.monotonic()
    pods = _wait(lambda: core(kube).list_namespaced_pod("apps", label_selector="app=web").items, seconds=2)
    assert time.monotonic() - ready < 1.5
    assert [c.name for c in pods[0].spec.containers] == ["main", "istio-proxy"]
    _wait(lambda: apps(kube).read_namespaced_deployment("web", "apps").status.ready_replicas, seconds=2)
    assert _replica_failure(kube) is None


def test_a_creation_refused_again_and_again_is_retried_less_and_less_often(
    world: World, kube: Client
) -> None:
    calls: list[float] = []

    def refuse(cluster_id: str, pod: dict[str, Any]) -> str:
        calls.append(time.monotonic())
        return 'Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io"'

    world.fleet.pod_admission = refuse
    apps(kube).create_namespaced_deployment("default", deployment("web", replicas=1))
    time.sleep(1.5)
    assert 3 <= len(calls) <= 20  # not once per write of its own status, nor a fixed pace
    assert calls[-1] - calls[-2] >= 0.2
