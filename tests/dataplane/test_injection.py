"""The injector webhook as the API server runs it on pod creation (pure: hand-built snapshots)."""

from __future__ import annotations

from typing import Any

from meshwright.sandbox.mesh import injection
from tests.dataplane.meshes import healthy, primary_remote


def _pod(ns: str = "bookinfo", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": ns, "labels": labels or {"app": "reviews"}},
        "spec": {"containers": [{"name": "reviews"}]},
    }


def _containers(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"]["containers"]]


def test_a_pod_in_an_injected_namespace_of_a_primary_gets_its_proxy() -> None:
    mesh, _ = healthy(primary_remote())
    pod = _pod()
    assert injection.admit(mesh, "central", pod) is None
    assert _containers(pod) == ["reviews", "istio-proxy"]
    assert pod["metadata"]["labels"]["security.istio.io/tlsMode"] == "istio"
    assert "sidecar.istio.io/status" in pod["metadata"]["annotations"]


def test_a_remote_injects_through_its_primarys_eastwest_gateway() -> None:
    mesh, _ = healthy(primary_remote())
    pod = _pod()
    assert injection.admit(mesh, "west", pod) is None
    assert "istio-proxy" in _containers(pod)


def test_a_namespace_without_the_label_gets_no_proxy() -> None:
    mesh, _ = healthy(primary_remote())
    pod = _pod(ns="default")
    assert injection.admit(mesh, "central", pod) is None
    assert _containers(pod) == ["reviews"]


def test_a_gateway_pod_labelled_for_injection_gets_its_proxy_in_istio_system() -> None:
    mesh, _ = healthy(primary_remote())
    pod = _pod(ns="istio-system", labels={"sidecar.istio.io/inject": "true", "app": "istio-ingressgateway"})
    assert injection.admit(mesh, "central", pod) is None
    assert "istio-proxy" in _containers(pod)


def test_an_unreachable_istiod_refuses_the_pod_as_failure_policy_fail_does() -> None:
    mesh, _ = healthy(primary_remote())
    gateways = mesh.clusters["central"].objects["networking.istio.io/gateways"]
    gateways[:] = [g for g in gateways if g["metadata"]["name"] != "istiod-gateway"]  # expose-istiod missing
    refused = injection.admit(mesh, "west", _pod())
    assert refused is not None
    assert refused.startswith(
        'Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io"'
    )
    assert "https://istiod.istio-system.svc:443/inject?timeout=10s" in refused
    assert "connect: connection refused" in refused


def test_failure_policy_ignore_lets_the_pod_in_without_proxy() -> None:
    mesh, _ = healthy(primary_remote())
    for hook in mesh.clusters["west"].objects["admissionregistration.k8s.io/mutatingwebhookconfigurations"][
        0
    ]["webhooks"]:
        hook["failurePolicy"] = "Ignore"
    mesh.clusters["west"].objects["discovery.k8s.io/endpointslices"].clear()
    pod = _pod()
    assert injection.admit(mesh, "west", pod) is None
    assert _containers(pod) == ["reviews"]


def test_selectors_follow_kubernetes_label_selector_rules() -> None:
    expr = {
        "matchExpressions": [
            {"key": "a", "operator": "NotIn", "values": ["x"]},
            {"key": "b", "operator": "DoesNotExist"},
        ]
    }
    assert injection.selects(expr, {"a": "y"})
    assert injection.selects(expr, {})
    assert not injection.selects(expr, {"a": "x"})
    assert not injection.selects(expr, {"b": "1"})
    assert injection.selects(None, {"any": "thing"})
