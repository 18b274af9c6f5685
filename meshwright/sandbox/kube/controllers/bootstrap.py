"""What every new cluster holds before anyone writes: system namespaces and the bootstrap RBAC roles.

From kube-apiserver's bootstrap policy (kubernetes/kubernetes
`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`, `clusterRoles` and
`clusterRoleBindings`): `cluster-admin` for `system:masters`; `system:discovery` and
`system:basic-user` for every authenticated user; `system:public-info-viewer` for everyone. RBAC is
enforced (`rbac.py`), so these bindings are what lets a service account read `/api`, `/version` and
`/openapi/*` and review its own access. `admin`, `edit` and `view` are there to be bound; the real
ones are aggregated, these carry their (smaller) rules directly.
"""

from __future__ import annotations

from typing import Any

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DEFAULTS_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
WORKLOADS = {
    "": [
        "pods",
        "services",
        "endpoints",
        "configmaps",
        "persistentvolumeclaims",
        "serviceaccounts",
        "events",
    ],
    "apps": ["deployments", "replicasets", "statefulsets", "daemonsets"],
    "batch": ["jobs", "cronjobs"],
    "autoscaling": ["horizontalpodautoscalers"],
    "policy": ["poddisruptionbudgets"],
    "networking.k8s.io": ["ingresses", "networkpolicies"],
    "discovery.k8s.io": ["endpointslices"],
}


def _rules(verbs: list[str], *, secrets: bool) -> list[dict[str, Any]]:
    rules = [
        {"apiGroups": [group], "resources": resources, "verbs": verbs}
        for group, resources in WORKLOADS.items()
    ]
    if secrets:
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": verbs})
    return rules


def _role(name: str, rules: list[dict[str, Any]], aggregate: str | None = None) -> dict[str, Any]:
    labels = {
        **DEFAULTS_LABEL,
        **({f"rbac.authorization.k8s.io/aggregate-to-{aggregate}": "true"} if aggregate else {}),
    }
    return {"metadata": {"name": name, "labels": labels, "annotations": AUTOUPDATE}, "rules": rules}


def cluster_roles() -> list[dict[str, Any]]:
    everything = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ]
    discovery = [
        {
            "nonResourceURLs": [
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ],
            "verbs": ["get"],
        }
    ]
    return [
        _role("cluster-admin", everything),
        _role("admin", _rules(READ + WRITE, secrets=True), "admin"),
        _role("edit", _rules(READ + WRITE, secrets=True), "edit"),
        _role("view", _rules(READ, secrets=False), "view"),
        _role("system:discovery", discovery),
        _role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        _role(
            "system:public-info-viewer",
            [
                {
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"],
                }
            ],
        ),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    def binding(name: str, *groups: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "labels": DEFAULTS_LABEL, "annotations": AUTOUPDATE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group} for group in groups
            ],
        }

    return [
        binding("cluster-admin", "system:masters"),
        binding("system:discovery", "system:authenticated"),
        binding("system:basic-user", "system:authenticated"),
        binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
    ]
