"""What Istio's sidecar injector webhooks do to a pod being created. Pure over a `Mesh` snapshot.

The API server calls the webhooks of the MutatingWebhookConfigurations in the cluster, configurations
in name order and webhooks in their order (k8s.io/apiserver pkg/admission/configuration
mutating_webhook_manager.go sorts them by name), each one whose namespaceSelector matches the pod's
namespace labels and whose objectSelector the pod's labels. Istio's are the webhooks named
`*sidecar-injector.istio.io`: each revision's `istio-sidecar-injector[-<rev>]` (istio.io/rev=<rev>;
for the default revision also `istio-injection=enabled` and the `sidecar.istio.io/inject` pod label)
and each revision tag's `istio-revision-tag-<tag>` (istio.io/rev=<tag>, calling the revision the tag
points at), as istio-discovery/templates/mutatingwebhook.yaml and revision-tags-mwc.yaml render them.

A matching webhook calls an istiod, which must answer:

- `clientConfig.service` istiod[-<rev>] in istio-system: the Service must exist in the pod's cluster
  and lead to a ready istiod: the one its selector picks in that cluster (a primary), or, for a
  remote, the one behind the east-west gateway address its EndpointSlices / Endpoints (or
  ExternalName) name, which the gateway reaches on 15017 by the SNI `<service>.istio-system.svc`
  (expose-istiod's Gateway and VirtualService; see `tlsroute`);
- `clientConfig.url`: its host must be such an east-west gateway address.

The first webhook whose istiod answers injects, with that istiod's revision: the pod gets an
`istio-proxy` container (image `proxyv2` at the istiod's hub and tag), the `istio-init` init container,
`security.istio.io/tlsMode=istio`, and the annotations `istio.io/rev: <revision>` (Istio's injection
template, files/injection-template.yaml) and `sidecar.istio.io/status` with the same `revision`
(pkg/kube/inject/webhook.go getInjectionStatus). The pod's *label* `istio.io/rev` is left as it was:
Istio deliberately does not set it, so that a pod selecting a tag keeps the tag. Not reachable: with
`failurePolicy: Fail` (Istio's) the creation is refused with the API server's message; with `Ignore`
the pod goes in without a sidecar. Annotation `sidecar.istio.io/inject: "false"` on the pod is
honoured as the injector does (it answers without a patch).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh.dataplane import ISTIO_NS, WEBHOOK_PORT, Mesh
from meshwright.sandbox.mesh.revisions import REVISION, ControlPlane

WEBHOOKS_TYPE = "admissionregistration.k8s.io/mutatingwebhookconfigurations"
INJECTOR_SUFFIX = "sidecar-injector.istio.io"
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
    for config in sorted(c.list(WEBHOOKS_TYPE), key=lambda w: str(w["metadata"]["name"])):
        for hook in config.get("webhooks") or []:
            if (
                str(hook.get("name", "")).endswith(INJECTOR_SUFFIX)
                and selects(hook.get("namespaceSelector"), ns_labels)
                and selects(hook.get("objectSelector"), pod_labels)
            ):
                found.append(hook)
    return found


def _service_target(mesh: Mesh, cluster: str, service: dict[str, Any]) -> ControlPlane | str:
    """The istiod that answers behind the webhook's Service; else why it leads nowhere that answers."""
    c = mesh.clusters[cluster]
    ns, name = service.get("namespace", ISTIO_NS), service.get("name", "istiod")
    svc = next((s for s in c.list("/services", ns) if s["metadata"]["name"] == name), None)
    if svc is None:
        return f'service "{name}" not found'
    if dotted.get(svc, "spec.selector") and (local := mesh.istiod_behind(cluster, svc)):
        return local
    addresses = mesh.service_addresses(cluster, svc)
    sni = f"{name}.{ns}.svc"  # what the API server dials a webhook Service as
    found = (p for a in addresses if (p := mesh.exposed_istiod(a, port=WEBHOOK_PORT, sni=sni)))
    answering = next(found, None)
    if answering is not None:
        return answering
    if not addresses:
        return f'service "{name}" has no endpoints'  # the API server's own words for an empty Service
    port = service.get("port", 443)
    target = next(
        (p.get("targetPort", port) for p in dotted.get(svc, "spec.ports", []) or [] if p.get("port") == port),
        port,
    )
    return f"dial tcp {addresses[0]}:{target}: connect: connection refused"


def answering(mesh: Mesh, cluster: str, hook: dict[str, Any]) -> ControlPlane | str:
    """The istiod that answers the webhook; otherwise the dial error the API server reports."""
    client = hook.get("clientConfig") or {}
    if "service" in client:
        return _service_target(mesh, cluster, client["service"])
    url = urlsplit(str(client.get("url", "")))
    host, port = url.hostname or "", url.port or 443
    found = mesh.exposed_istiod(host, port=port, sni="" if _is_ip(host) else host)
    return found if found is not None else f"dial tcp {host}:{port}: connect: connection refused"


def unreachable(mesh: Mesh, cluster: str, hook: dict[str, Any]) -> str | None:
    """None when the webhook's istiod answers; otherwise the dial error the API server reports."""
    found = answering(mesh, cluster, hook)
    return found if isinstance(found, str) else None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def webhook_url(hook: dict[str, Any]) -> str:
    client = hook.get("clientConfig") or {}
    if "url" in client:
        return str(client["url"])
    svc = client.get("service") or {}
    return f"https://{svc.get('name')}.{svc.get('namespace')}.svc:{svc.get('port', 443)}{svc.get('path', '/inject')}"


def proxy_image(istiod_image: str) -> str:
    """The proxy an istiod injects: `proxyv2` at its own hub and tag (the chart's global.hub/tag)."""
    hub, _, rest = istiod_image.rpartition("/")
    tag = rest.partition(":")[2]
    return f"{hub}/proxyv2:{tag}" if hub and tag and "@" not in rest else PROXY_IMAGE


def inject(pod: dict[str, Any], *, revision: str = "default", image: str = PROXY_IMAGE) -> None:
    """What the injector's patch adds (the parts the sandbox's data plane and an operator read)."""
    spec = pod.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    proxy = next((c for c in containers if c.get("name") == PROXY), None)
    if proxy is None:
        containers.append(proxy := {"name": PROXY, "args": ["proxy", "sidecar"]})
    proxy["image"] = image
    proxy.setdefault("ports", [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}])
    inits = spec.setdefault("initContainers", [])
    init = next((c for c in inits if c.get("name") == "istio-init"), None)
    if init is None:
        inits.append(init := {"name": "istio-init"})
    init["image"] = image
    meta = pod["metadata"]
    meta.setdefault("labels", {})["security.istio.io/tlsMode"] = "istio"
    status = {
        "initContainers": ["istio-init"],
        "containers": [PROXY],
        "volumes": ["istio-envoy"],
        "imagePullSecrets": None,
        "revision": revision,
    }
    annotations = meta.setdefault("annotations", {})
    annotations[REVISION] = revision
    annotations["sidecar.istio.io/status"] = json.dumps(status, separators=(",", ":"))


def admit(mesh: Mesh, cluster: str, pod: dict[str, Any]) -> str | None:
    """Run the injector webhooks on a pod being created: mutate it, or say why it is refused.

    Every matching webhook is called in turn, as the API server calls them: each istiod that answers
    injects (overlapping webhooks of two revisions: the later one's revision stays, as its patch is
    applied last), and one that does not answer refuses the pod under `failurePolicy: Fail`.
    """
    if cluster not in mesh.clusters:
        return None
    annotations = pod["metadata"].get("annotations") or {}
    for hook in matching_webhooks(mesh, cluster, pod):
        found = answering(mesh, cluster, hook)
        if isinstance(found, ControlPlane):
            istiod = mesh.istiod(found)
            if annotations.get("sidecar.istio.io/inject") != "false" and istiod is not None:
                inject(pod, revision=istiod.revision, image=proxy_image(istiod.image))
            continue
        if hook.get("failurePolicy", "Fail") == "Fail":
            return (
                f'Internal error occurred: failed calling webhook "{hook.get("name")}": failed to call webhook: '
                f'Post "{webhook_url(hook)}?timeout={hook.get("timeoutSeconds", 10)}s": {found}'
            )
    return None
