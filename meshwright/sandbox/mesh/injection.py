"""What Istio's sidecar injector webhook does to a pod being created. Pure over a `Mesh` snapshot.

The API server calls every webhook of every MutatingWebhookConfiguration whose namespaceSelector
matches the pod's namespace labels and whose objectSelector matches the pod's labels (Istio's
`istio-sidecar-injector` holds four such webhooks, for `istio-injection=enabled`, `istio.io/rev`
and the `sidecar.istio.io/inject` pod label). A matching webhook must be reachable:

- `clientConfig.service` istiod in istio-system: the Service must exist in the pod's cluster and
  lead somewhere that answers: a ready istiod Deployment it selects in that cluster (a primary),
  or, for a remote, the east-west gateway address its EndpointSlices / Endpoints (or ExternalName)
  name, of a cluster whose istiod is ready and whose Gateway passes 15017 through (expose-istiod);
- `clientConfig.url`: its host must be such an east-west gateway address.

Reachable: the pod gets what the injector adds (an `istio-proxy` container, the `istio-init`
init container, `sidecar.istio.io/status`, `security.istio.io/tlsMode=istio`). Not reachable: with
`failurePolicy: Fail` (Istio's) the creation is refused with the API server's message; with
`Ignore` the pod goes in without a sidecar. Annotation `sidecar.istio.io/inject: "false"` on the pod
is honoured as the injector does (it answers without a patch).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh.dataplane import Mesh

WEBHOOKS_TYPE = "admissionregistration.k8s.io/mutatingwebhookconfigurations"
INJECTOR_PREFIX = "istio-sidecar-injector"
PROXY = "istio-proxy"
PROXY_IMAGE = "docker.io/istio/proxyv2"


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels + matchExpressions); an empty one selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and key in labels and labels[key] in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def matching_webhooks(mesh: Mesh, cluster: str, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The injector webhooks of `cluster` that the API server would call for this pod."""
    c = mesh.clusters[cluster]
    namespace = pod["metadata"].get("namespace", "default")
    ns = next((n for n in c.list("/namespaces") if n["metadata"]["name"] == namespace), None)
    ns_labels = {
        **((ns or {}).get("metadata", {}).get("labels") or {}),
        "kubernetes.io/metadata.name": namespace,
    }
    pod_labels = pod["metadata"].get("labels") or {}
    found = []
    for config in c.list(WEBHOOKS_TYPE):
        if not config["metadata"]["name"].startswith(INJECTOR_PREFIX):
            continue
        for hook in config.get("webhooks") or []:
            if selects(hook.get("namespaceSelector"), ns_labels) and selects(
                hook.get("objectSelector"), pod_labels
            ):
                found.append(hook)
    return found


def _service_target(mesh: Mesh, cluster: str, service: dict[str, Any]) -> str | None:
    """Why the webhook Service leads nowhere that answers; None when an istiod answers behind it."""
    c = mesh.clusters[cluster]
    ns, name = service.get("namespace", "istio-system"), service.get("name", "istiod")
    svc = next((s for s in c.list("/services", ns) if s["metadata"]["name"] == name), None)
    if svc is None:
        return f'service "{name}" not found'
    if dotted.get(svc, "spec.selector") and mesh.istiod_behind(cluster, svc):
        return None
    addresses = mesh.service_addresses(cluster, svc)
    if any(mesh.exposed_istiod(a) for a in addresses):
        return None
    if not addresses:
        return f'service "{name}" has no endpoints'  # the API server's own words for an empty Service
    port = service.get("port", 443)
    target = next(
        (p.get("targetPort", port) for p in dotted.get(svc, "spec.ports", []) or [] if p.get("port") == port),
        port,
    )
    return f"dial tcp {addresses[0]}:{target}: connect: connection refused"


def unreachable(mesh: Mesh, cluster: str, hook: dict[str, Any]) -> str | None:
    """None when the webhook's istiod answers; otherwise the dial error the API server reports."""
    client = hook.get("clientConfig") or {}
    if "service" in client:
        return _service_target(mesh, cluster, client["service"])
    host = urlsplit(str(client.get("url", ""))).hostname or ""
    if mesh.exposed_istiod(host):
        return None
    return f"dial tcp {host}:443: connect: connection refused"


def webhook_url(hook: dict[str, Any]) -> str:
    client = hook.get("clientConfig") or {}
    if "url" in client:
        return str(client["url"])
    svc = client.get("service") or {}
    return f"https://{svc.get('name')}.{svc.get('namespace')}.svc:{svc.get('port', 443)}{svc.get('path', '/inject')}"


def inject(pod: dict[str, Any]) -> None:
    """What the injector's patch adds (the parts the sandbox's data plane reads)."""
    spec = pod.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    proxy = next((c for c in containers if c.get("name") == PROXY), None)
    if proxy is None:
        containers.append(proxy := {"name": PROXY, "args": ["proxy", "sidecar"]})
    proxy["image"] = PROXY_IMAGE
    proxy.setdefault("ports", [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}])
    if not any(c.get("name") == "istio-init" for c in spec.get("initContainers") or []):
        spec.setdefault("initContainers", []).append({"name": "istio-init", "image": PROXY_IMAGE})
    meta = pod["metadata"]
    meta.setdefault("labels", {})["security.istio.io/tlsMode"] = "istio"
    status = {"initContainers": ["istio-init"], "containers": [PROXY], "volumes": ["istio-envoy"]}
    meta.setdefault("annotations", {})["sidecar.istio.io/status"] = json.dumps(status)


def admit(mesh: Mesh, cluster: str, pod: dict[str, Any]) -> str | None:
    """Run the injector webhooks on a pod being created: mutate it, or say why it is refused."""
    if cluster not in mesh.clusters:
        return None
    annotations = pod["metadata"].get("annotations") or {}
    for hook in matching_webhooks(mesh, cluster, pod):
        why = unreachable(mesh, cluster, hook)
        if why is None:
            if annotations.get("sidecar.istio.io/inject") != "false":
                inject(pod)
            return None
        if hook.get("failurePolicy", "Fail") == "Fail":
            return (
                f'Internal error occurred: failed calling webhook "{hook.get("name")}": failed to call webhook: '
                f'Post "{webhook_url(hook)}?timeout={hook.get("timeoutSeconds", 10)}s": {why}'
            )
    return None
