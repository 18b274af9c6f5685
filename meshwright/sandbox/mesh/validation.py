"""istiod's config validation webhook, as the API server calls it on a write. Pure over a `Mesh` snapshot.

The API server calls each webhook of each ValidatingWebhookConfiguration whose rules cover the
write (operation, API group, resource) and whose namespaceSelector and objectSelector match. Istio's
charts render two such webhooks for its config groups: `validation.istio.io` (the default revision's,
base chart) and `rev.validation.istio.io` (a revision's own, istiod chart). A webhook whose istiod
answers (the same reachability as the injector's: see `injection.unreachable`) denies an invalid
config with `configuration is invalid: ...` (istio/istio `pkg/webhooks/validation/server/server.go`,
checks in `configcheck`); the API server prefixes `admission webhook "<name>" denied the request`.
One that does not answer is skipped under `failurePolicy: Ignore` (what the charts render until istiod
takes the webhook over) and fails the write under `Fail`.
"""

from __future__ import annotations

from typing import Any

from meshwright.sandbox.mesh import configcheck, injection
from meshwright.sandbox.mesh.dataplane import Mesh

WEBHOOKS_TYPE = "admissionregistration.k8s.io/validatingwebhookconfigurations"
ISTIO_GROUPS = frozenset(
    {"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io"}
)
WEBHOOK_SUFFIX = "validation.istio.io"
Verdict = tuple[int, str]


def _covers(rule: dict[str, Any], operation: str, group: str, plural: str) -> bool:
    def has(field: str, value: str) -> bool:
        values = rule.get(field) or []
        return "*" in values or value in values

    return has("operations", operation) and has("apiGroups", group) and has("resources", plural)


def _namespace_labels(mesh: Mesh, cluster: str, namespace: str) -> dict[str, str]:
    ns = next(
        (n for n in mesh.clusters[cluster].list("/namespaces") if n["metadata"]["name"] == namespace), {}
    )
    return {**((ns.get("metadata") or {}).get("labels") or {}), "kubernetes.io/metadata.name": namespace}


def matching(
    mesh: Mesh, cluster: str, operation: str, group: str, plural: str, obj: dict[str, Any]
) -> list[dict[str, Any]]:
    """Istio's validation webhooks of `cluster` that the API server would call for this write."""
    meta = obj.get("metadata") or {}
    ns_labels = _namespace_labels(mesh, cluster, meta.get("namespace") or "")
    found = []
    for config in mesh.clusters[cluster].list(WEBHOOKS_TYPE):
        for hook in config.get("webhooks") or []:
            if (
                str(hook.get("name", "")).endswith(WEBHOOK_SUFFIX)
                and any(_covers(r, operation, group, plural) for r in hook.get("rules") or [])
                and injection.selects(hook.get("namespaceSelector"), ns_labels)
                and injection.selects(hook.get("objectSelector"), meta.get("labels") or {})
            ):
                found.append(hook)
    return found


def _errors(plural: str, obj: dict[str, Any]) -> list[str]:
    return configcheck.virtual_service_errors(obj) if plural == "virtualservices" else []


def review(
    mesh: Mesh, cluster: str, group: str, plural: str, obj: dict[str, Any], old: dict[str, Any] | None
) -> Verdict | None:
    """None when every called webhook admits the write; else (403, denial) or (500, call failure)."""
    if group not in ISTIO_GROUPS or cluster not in mesh.clusters:
        return None
    operation = "CREATE" if old is None else "UPDATE"
    for hook in matching(mesh, cluster, operation, group, plural, obj):
        why = injection.unreachable(mesh, cluster, hook)
        if why is not None:
            if hook.get("failurePolicy", "Fail") == "Fail":
                url = f"{injection.webhook_url(hook)}?timeout={hook.get('timeoutSeconds', 10)}s"
                return (
                    500,
                    f'failed calling webhook "{hook.get("name")}": failed to call webhook: Post "{url}": {why}',
                )
            continue
        errors = _errors(plural, obj)
        if errors:
            denial = f"configuration is invalid: {configcheck.multierror(errors)}"
            return 403, f'admission webhook "{hook.get("name")}" denied the request: {denial}'
    return None
