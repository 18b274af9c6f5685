"""Istio's canary upgrade played on the sandbox: istiod at 1.29.8 and revision `canary` at 1.30.3,
both from the sandbox's chart repository, in one cluster; each istiod serves its own clusterz and
reads the remote secrets as the other does, and each injects the pods its webhooks select (a
revision tag's webhook with the revision the tag points at) with its own revision and proxy."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import kubernetes.client
import kubernetes.watch

from meshwright import clients, helm, istio_values, kube
from meshwright.clients import MeshwrightTarget
from meshwright.models import ChartRef, ClusterAccess
from tasks.istio import ensure_helm_release, prepare_namespace
from tasks.remote_secrets import exchange_remote_secret
from tasks.upgrade import TAG_WEBHOOK, move_revision_tag
from tasks.verify import istiod_pods
from tests.istio.support import api, bring_up, primary_remote

NS = "istio-system"


def _charts(target: MeshwrightTarget, version: str) -> dict[str, ChartRef]:
    refs = helm.resolve_charts(clients.cloud(target).default_charts, version, hint="")
    return {r.chart: r for r in refs}


def _until(check: Any, what: str, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {within}s")


def _clusterz(client: kubernetes.client.ApiClient, access: ClusterAccess, pod: str) -> list[dict[str, str]]:
    status, body = kube.forward_get(
        client, NS, pod, 15014, "/debug/clusterz", cluster=access.name, step="test", what="clusterz"
    )
    assert status == 200
    return list(json.loads(body))


def _injected(client: kubernetes.client.ApiClient, ns: str, labels: dict[str, str]) -> Any:
    """A Deployment's pod in a new namespace with `labels`, once the ReplicaSet created it."""
    core, apps = kubernetes.client.CoreV1Api(client), kubernetes.client.AppsV1Api(client)
    core.create_namespace({"metadata": {"name": ns, "labels": labels}})
    selector = {"app": "shop"}
    template = {"metadata": {"labels": selector}, "spec": {"containers": [{"name": "shop", "image": "shop"}]}}
    apps.create_namespaced_deployment(
        ns,
        {"metadata": {"name": "shop"}, "spec": {"selector": {"matchLabels": selector}, "template": template}},
    )
    return _until(lambda: core.list_namespaced_pod(ns).items, f"pod in {ns}")[0]


def test_two_revisions_from_two_chart_versions_each_serve_clusterz_and_inject(
    target: MeshwrightTarget,
) -> None:
    spec = primary_remote()
    clusters = bring_up(spec, target)
    central, west = clusters["central"], clusters["west"]
    old, new = _charts(target, "1.29.8"), _charts(target, "1.30.3")
    for access in (central, west):
        prepare_namespace.fn(spec, access, target=target)
        base = istio_values.release(spec, spec.cluster(access.name), "istio-base")
        ensure_helm_release(target, access, old["base"], base.name, base.values, step="test")
    istiod = istio_values.release(spec, spec.cluster("central"), "istiod", rev="", tagged=False).values
    ensure_helm_release(target, central, old["istiod"], "istiod", istiod, step="test")
    canary = {**istiod, "revision": "canary", "revisionTags": ["prod"]}
    ensure_helm_release(target, central, new["istiod"], "istiod-canary", canary, step="test")
    reader = istio_values.release(spec, spec.cluster("west"), "istiod", remote_pilot_address="10.9.9.9")
    ensure_helm_release(target, west, old["istiod"], reader.name, reader.values, step="test")  # reader RBAC
    exchange_remote_secret.fn(west, central, target=target)

    client = api(target, central)
    pods = _until(lambda: len(p := istiod_pods(kubernetes.client.CoreV1Api(client))) == 2 and p, "istiods")
    for pod in pods:  # one per revision, each with its own clusterz listing the same remote
        entries = _until(lambda pod=pod: (z := _clusterz(client, central, pod))[1:] and z, "synced west")
        assert [(e["id"], e["syncStatus"]) for e in entries] == [("central", "synced"), ("west", "synced")]

    injected = {
        ns: _injected(client, ns, labels)
        for ns, labels in {
            "shop-canary": {"istio.io/rev": "canary"},
            "shop-tagged": {"istio.io/rev": "prod"},
            "shop-legacy": {"istio-injection": "enabled"},
        }.items()
    }
    seen = {
        ns: (
            p.metadata.annotations["istio.io/rev"],
            next(c.image for c in p.spec.containers if c.name == "istio-proxy"),
        )
        for ns, p in injected.items()
    }
    assert seen == {
        "shop-canary": ("canary", "docker.io/istio/proxyv2:1.30.3"),
        "shop-tagged": ("canary", "docker.io/istio/proxyv2:1.30.3"),
        "shop-legacy": ("default", "docker.io/istio/proxyv2:1.29.8"),
    }


def test_moving_the_tag_off_an_unrevisioned_istiod_deactivates_its_webhook_and_moving_back_restores_it(
    target: MeshwrightTarget,
) -> None:
    spec = primary_remote()
    central = bring_up(spec, target)["central"]
    old, new = _charts(target, "1.29.8"), _charts(target, "1.30.3")
    prepare_namespace.fn(spec, central, target=target)
    base = istio_values.release(spec, spec.cluster("central"), "istio-base")
    ensure_helm_release(target, central, new["base"], base.name, base.values, step="test")
    for ref, rev in ((old["istiod"], ""), (new["istiod"], "1-30-3")):  # a mesh built before revisions
        plan = istio_values.release(spec, spec.cluster("central"), "istiod", rev=rev, tagged=False)
        ensure_helm_release(target, central, ref, plan.name, plan.values, step="test")
    client = api(target, central)
    _until(lambda: len(istiod_pods(kubernetes.client.CoreV1Api(client))) == 2, "istiods")

    move_revision_tag.fn(spec, central, list(new.values()), "1-30-3", target=target)
    moved = _injected(client, "shop-moved", {"istio-injection": "enabled"})
    move_revision_tag.fn(spec, central, list(new.values()), "", target=target)
    back = _injected(client, "shop-back", {"istio-injection": "enabled"})

    assert moved.metadata.annotations["istio.io/rev"] == "1-30-3"
    assert back.metadata.annotations["istio.io/rev"] == "default"


def _tag_events(
    client: kubernetes.client.ApiClient, seen: list[tuple[str, str]], stop: threading.Event
) -> None:
    """Every event of the tag's webhook until `stop`: (type, the istiod Service its first webhook calls)."""
    hooks = kubernetes.client.AdmissionregistrationV1Api(client)
    since: str | None = None  # each watch goes on from the last event: no event lost, none repeated
    while not stop.is_set():
        for event in kubernetes.watch.Watch().stream(
            hooks.list_mutating_webhook_configuration,
            field_selector=f"metadata.name={TAG_WEBHOOK}",
            resource_version=since,
            timeout_seconds=1,
        ):
            since = event["object"].metadata.resource_version
            service = event["object"].webhooks[0].client_config.service
            seen.append((event["type"], service.name if service else ""))


def test_the_tag_moves_between_revisions_in_place_never_leaving_a_moment_without_its_webhook(
    target: MeshwrightTarget,
) -> None:
    spec = primary_remote()
    central = bring_up(spec, target)["central"]
    charts = _charts(target, "1.30.3")
    prepare_namespace.fn(spec, central, target=target)
    base = istio_values.release(spec, spec.cluster("central"), "istio-base")
    ensure_helm_release(target, central, charts["base"], base.name, base.values, step="test")
    for version, tagged in (("1.29.8", True), ("1.30.3", False)):
        rev = version.replace(".", "-")
        plan = istio_values.release(spec, spec.cluster("central"), "istiod", rev=rev, tagged=tagged)
        ensure_helm_release(
            target, central, _charts(target, version)["istiod"], plan.name, plan.values, step="test"
        )
    client = api(target, central)
    seen: list[tuple[str, str]] = []
    stop = threading.Event()
    watching = threading.Thread(target=_tag_events, args=(api(target, central), seen, stop), daemon=True)
    watching.start()
    time.sleep(0.5)  # the watch lists the webhook as it is first
    try:
        move_revision_tag.fn(spec, central, list(charts.values()), "1-30-3", target=target)
        moved = _injected(client, "shop-moved", {"istio-injection": "enabled"})
        move_revision_tag.fn(spec, central, list(charts.values()), "1-29-8", target=target)
        back = _injected(client, "shop-back", {"istio-injection": "enabled"})
        time.sleep(0.5)
    finally:
        stop.set()
        watching.join()
    assert moved.metadata.annotations["istio.io/rev"] == "1-30-3"
    assert back.metadata.annotations["istio.io/rev"] == "1-29-8"
    assert [t for t, _ in seen if t != "MODIFIED"] == ["ADDED"], seen  # never DELETED, never re-ADDED
    assert "istiod-1-30-3" in [s for _, s in seen]
    assert seen[-1][1] == "istiod-1-29-8"
