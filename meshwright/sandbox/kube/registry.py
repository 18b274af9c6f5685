"""Resource types a cluster serves: the built-in kinds, plus whatever its CRDs register."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    custom: bool = False
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    # Resources whose writes never change .status through the main endpoint.
    has_status: bool = True
    categories: tuple[str, ...] = ()
    schema: dict[str, Any] | None = field(
        default=None, compare=False, hash=False
    )  # a CRD version's openAPIV3Schema

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """Storage key: group and plural (objects of every served version share it)."""
        return f"{self.group}/{self.plural}"


def _t(
    gv: str,
    kind: str,
    plural: str,
    namespaced: bool,
    *short: str,
    sub: tuple[str, ...] = (),
    status: bool = True,
    all_category: bool = False,
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    subs = (*sub, "status") if status and "status" not in sub else sub
    categories = ("all",) if all_category else ()
    return ResourceType(
        group, version, kind, plural, namespaced, tuple(short), subs, has_status=status, categories=categories
    )


BUILTIN: tuple[ResourceType, ...] = (
    _t("v1", "Namespace", "namespaces", False, "ns"),
    _t("v1", "Secret", "secrets", True, status=False),
    _t("v1", "ConfigMap", "configmaps", True, "cm", status=False),
    _t("v1", "ServiceAccount", "serviceaccounts", True, "sa", sub=("token",), status=False),
    _t("v1", "Service", "services", True, "svc", sub=("proxy",), all_category=True),
    _t("v1", "Endpoints", "endpoints", True, "ep", status=False),
    _t("v1", "Pod", "pods", True, "po", sub=("portforward",), all_category=True),
    _t("v1", "Node", "nodes", False, "no"),
    _t("v1", "Event", "events", True, "ev", status=False),
    _t("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, "pvc"),
    _t("v1", "PersistentVolume", "persistentvolumes", False, "pv"),
    _t("v1", "ResourceQuota", "resourcequotas", True, "quota"),
    _t("v1", "LimitRange", "limitranges", True, "limits", status=False),
    _t("v1", "PodTemplate", "podtemplates", True, status=False),
    _t(
        "v1", "ReplicationController", "replicationcontrollers", True, "rc", sub=("scale",), all_category=True
    ),
    _t("apps/v1", "ControllerRevision", "controllerrevisions", True, status=False),
    _t("networking.k8s.io/v1", "Ingress", "ingresses", True, "ing"),
    _t("networking.k8s.io/v1", "IngressClass", "ingressclasses", False, status=False),
    _t("storage.k8s.io/v1", "StorageClass", "storageclasses", False, "sc", status=False),
    _t("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, "pc", status=False),
    _t("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "hpa"),
    _t("apps/v1", "Deployment", "deployments", True, "deploy", sub=("scale",), all_category=True),
    _t("apps/v1", "ReplicaSet", "replicasets", True, "rs", sub=("scale",), all_category=True),
    _t("apps/v1", "DaemonSet", "daemonsets", True, "ds", all_category=True),
    _t("apps/v1", "StatefulSet", "statefulsets", True, "sts", sub=("scale",), all_category=True),
    _t("batch/v1", "Job", "jobs", True, all_category=True),
    _t("batch/v1", "CronJob", "cronjobs", True, "cj", all_category=True),
    _t("discovery.k8s.io/v1", "EndpointSlice", "endpointslices", True, status=False),
    _t("rbac.authorization.k8s.io/v1", "Role", "roles", True, status=False),
    _t("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True, status=False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False, status=False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False, status=False),
    _t(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        "crd",
        "crds",
    ),
    _t(
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
        status=False,
    ),
    _t(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
        status=False,
    ),
    _t(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
    ),
    _t(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
        status=False,
    ),
    _t("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, "pdb"),
    _t("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, "hpa"),
    _t("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, "netpol", status=False),
    _t("coordination.k8s.io/v1", "Lease", "leases", True, status=False),
    _t("authentication.k8s.io/v1", "TokenReview", "tokenreviews", False, status=False),
    _t("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, status=False),
    _t("authorization.k8s.io/v1", "SubjectAccessReview", "subjectaccessreviews", False, status=False),
)


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes version names, as the API server orders them: v2, v1, v1beta2, v1alpha1, then others."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


class Registry:
    """The types one cluster serves; CRDs add and remove theirs."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTIN:
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return next(
            (
                rt
                for rt in self._by_path.values()
                if (rt.group, rt.version, rt.kind) == (group, version, kind)
            ),
            None,
        )

    def all(self) -> list[ResourceType]:
        return sorted(self._by_path.values(), key=lambda rt: (rt.group, rt.version, rt.plural))

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions, preferred first (GA before beta before alpha, newest first)."""
        out: dict[str, list[str]] = {}
        for rt in self.all():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return {group: sorted(versions, key=version_priority) for group, versions in out.items()}

    def register_crd(self, crd: dict[str, Any]) -> list[ResourceType]:
        """The types a CRD serves (one per served version); a CRD is validated before it gets here."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        added = []
        for v in spec.get("versions") or []:
            if not v.get("served", True):
                continue
            subs = tuple(k for k in (v.get("subresources") or {}) if k in ("status", "scale"))
            rt = ResourceType(
                group=spec["group"],
                version=v["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                subresources=subs,
                custom=True,
                printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
                has_status="status" in subs,
                schema=(v.get("schema") or {}).get("openAPIV3Schema"),
            )
            self._add(rt)
            added.append(rt)
        return added

    def unregister_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        plural = (spec.get("names") or {}).get("plural")
        for key in [k for k in self._by_path if k[0] == spec.get("group") and k[2] == plural]:
            del self._by_path[key]
