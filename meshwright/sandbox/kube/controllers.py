"""Small simulated controllers: what a real cluster's controllers do, just enough and on time.

Namespaces become Active with their default service account and root CA configmap; secrets get
`data` from `stringData` and service-account tokens; Deployments roll out ReplicaSets and Pods
with IPs from the pod range; Services get cluster IPs and load-balancer IPs; CRDs register their
types and become Established; owners take their dependents with them.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import ipaddress
import itertools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.kube.auth import TokenAuthority
from meshwright.sandbox.kube.crud import Cluster, now_rfc3339
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.settings import Latency

log = logging.getLogger(__name__)
SA_TOKEN = "kubernetes.io/service-account-token"
LB_POOL = ipaddress.ip_network("203.0.113.0/24")  # documentation range: clearly not routable


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Controllers:
    def __init__(
        self,
        cluster: Cluster,
        *,
        latency: Latency,
        authority: TokenAuthority,
        ca_pem: str,
        pod_cidr: str,
        services_cidr: str,
        lb_offset: int,
    ) -> None:
        self.cluster, self.latency, self.authority, self.ca_pem = cluster, latency, authority, ca_pem
        self.pod_net = ipaddress.ip_network(pod_cidr)
        self.svc_net = ipaddress.ip_network(services_cidr)
        self.lb_offset = lb_offset
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._timer_lock = threading.Lock()
        cluster.hooks = self

    def rt(self, api_version: str, kind: str) -> ResourceType:
        found = self.cluster.registry.by_kind(api_version, kind)
        assert found is not None
        return found

    # -- timers ------------------------------------------------------------------------------

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        if delay <= 0:
            fn()
            return
        with self._timer_lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def run_due(self) -> None:
        while True:
            with self._timer_lock:
                if not self._timers or self._timers[0][0] > time.monotonic():
                    return
                _, _, fn = heapq.heappop(self._timers)
            with self.cluster.lock:
                try:
                    fn()
                except Exception:  # one broken reaction must not stop the cluster's controllers
                    log.exception("controller action failed in cluster %s", self.cluster.name)

    def resync(self) -> None:
        """After a restart: redo the work whose timers died with the old process."""
        with self.cluster.lock:
            for dep in self.cluster.store.list("apps/deployments"):
                status, want = dep.get("status") or {}, (dep.get("spec") or {}).get("replicas", 1)
                if status.get("readyReplicas", 0) != want or status.get("observedGeneration") != dep[
                    "metadata"
                ].get("generation"):
                    self._react_deployment(self._typed("apps/v1", "Deployment", dep), None)
            for svc in self.cluster.store.list("/services"):
                self._react_service(svc, svc)
            for kind, key in (
                ("StatefulSet", "apps/statefulsets"),
                ("DaemonSet", "apps/daemonsets"),
                ("Job", "batch/jobs"),
            ):
                for obj in self.cluster.store.list(key):
                    if not obj.get("status"):
                        self.react(self.rt("apps/v1" if kind != "Job" else "batch/v1", kind), obj, None)
            for ns in self.cluster.store.list("/namespaces"):
                if (ns.get("status") or {}).get("phase") == "Pending":
                    self._set_status("v1", "Namespace", None, ns["metadata"]["name"], {"phase": "Active"})

    def _typed(self, api_version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "apiVersion": api_version, "kind": kind}

    # -- admission ---------------------------------------------------------------------------

    def admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        admit = getattr(self, f"_admit_{rt.kind.lower()}", None)
        if admit and not rt.custom:
            admit(obj, old)

    def _admit_namespace(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        if old is None:
            obj["status"] = {"phase": "Active" if self.latency.namespace <= 0 else "Pending"}
        elif not obj.get("status"):
            obj["status"] = old.get("status") or {"phase": "Active"}

    def _admit_secret(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        obj["data"] = {**(obj.get("data") or {}), **{k: _b64(str(v)) for k, v in string_data.items()}}
        if obj["type"] == SA_TOKEN and "token" not in obj["data"]:
            self._fill_token(obj)

    def _fill_token(self, secret: dict[str, Any]) -> None:
        meta = secret["metadata"]
        sa_name = (meta.get("annotations") or {}).get("kubernetes.io/service-account.name")
        sa = (
            self.cluster.find(self.rt("v1", "ServiceAccount"), meta.get("namespace"), sa_name or "")
            if sa_name
            else None
        )
        if sa is None:
            return
        token = self.authority.issue(
            namespace=meta["namespace"],
            service_account=sa_name or "",
            uid=sa["metadata"]["uid"],
            expires=None,
            secret=meta["name"],
        )
        meta.setdefault("annotations", {})["kubernetes.io/service-account.uid"] = sa["metadata"]["uid"]
        secret["data"].update(
            token=_b64(token), namespace=_b64(meta["namespace"]), **{"ca.crt": _b64(self.ca_pem)}
        )

    def _admit_service(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                port["nodePort"] = self._free_node_port()
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            previous = ((old or {}).get("spec") or {}).get("clusterIP")
            spec["clusterIP"] = previous or self._free_service_ip()
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        obj.setdefault("status", (old or {}).get("status") or {"loadBalancer": {}})

    def _free_service_ip(self) -> str:
        used = {(s.get("spec") or {}).get("clusterIP") for s in self.cluster.store.list("/services")}
        return next(str(ip) for ip in itertools.islice(self.svc_net.hosts(), 1, None) if str(ip) not in used)

    def _free_node_port(self) -> int:
        used = {
            pt.get("nodePort")
            for s in self.cluster.store.list("/services")
            for pt in (s.get("spec") or {}).get("ports") or []
        }
        return next(n for n in range(30000, 32768) if n not in used)

    def _admit_deployment(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)

    # -- reactions ---------------------------------------------------------------------------

    def react(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        react = getattr(self, f"_react_{rt.kind.lower()}", None)
        if react and not rt.custom:
            react(obj, old)

    def _react_namespace(self, ns: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return
        name = ns["metadata"]["name"]
        self.cluster.put_internal(
            self.rt("v1", "ServiceAccount"), {"metadata": {"name": "default", "namespace": name}}
        )
        self.cluster.put_internal(
            self.rt("v1", "ConfigMap"),
            {"metadata": {"name": "kube-root-ca.crt", "namespace": name}, "data": {"ca.crt": self.ca_pem}},
        )
        if self.latency.namespace > 0:
            self.later(
                self.latency.namespace,
                lambda: self._set_status("v1", "Namespace", None, name, {"phase": "Active"}),
            )

    def _react_serviceaccount(self, sa: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return
        ns = sa["metadata"]["namespace"]
        for secret in self.cluster.select(self.rt("v1", "Secret"), ns, fields=f"type={SA_TOKEN}"):
            if "token" not in (secret.get("data") or {}):
                self.cluster.put_internal(self.rt("v1", "Secret"), secret)

    def _react_service(self, svc: dict[str, Any], old: dict[str, Any] | None) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        if svc["spec"].get("type") == "LoadBalancer" and not (svc.get("status") or {}).get(
            "loadBalancer", {}
        ).get("ingress"):
            ip = str(LB_POOL[1 + (self.lb_offset + len(self.cluster.store.list("/services"))) % 250])
            self.later(
                self.latency.loadbalancer,
                lambda: self._set_status(
                    "v1", "Service", ns, name, {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
                ),
            )
        self._endpoints(ns, svc)

    def _react_customresourcedefinition(self, crd: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            self.cluster.registry.unregister_crd(old)
        self.cluster.registry.register_crd(crd)
        conditions = [
            {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now_rfc3339()}
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ]
        status = {
            "conditions": conditions,
            "acceptedNames": crd["spec"].get("names", {}),
            "storedVersions": [v["name"] for v in crd["spec"].get("versions", []) if v.get("storage")],
        }
        if (crd.get("status") or {}).get("acceptedNames") != status["acceptedNames"]:
            self._set_status(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, crd["metadata"]["name"], status
            )

    def _react_deployment(self, dep: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None and old.get("spec") == dep.get("spec"):
            return
        meta, spec = dep["metadata"], dep["spec"]
        template = spec.get("template") or {}
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        rs_rt = self.rt("apps/v1", "ReplicaSet")
        rs_name = f"{meta['name']}-{digest}"
        for rs in self._owned(rs_rt, meta["namespace"], meta["uid"]):
            if rs["metadata"]["name"] != rs_name:
                self.cluster._remove(
                    rs_rt, self.cluster.key(rs_rt, meta["namespace"], rs["metadata"]["name"])
                )
        labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": digest}
        rs = {
            "metadata": {
                "name": rs_name,
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [_owner(dep)],
            },
            "spec": {
                "replicas": spec.get("replicas", 1),
                "selector": spec.get("selector"),
                "template": {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}},
            },
        }
        self.cluster.put_internal(rs_rt, rs)
        self._set_status(
            "apps/v1",
            "Deployment",
            meta["namespace"],
            meta["name"],
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": spec.get("replicas", 1),
                "updatedReplicas": spec.get("replicas", 1),
                "unavailableReplicas": spec.get("replicas", 1),
                "conditions": [
                    _condition(
                        "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.'
                    )
                ],
            },
        )
        self.later(
            self.latency.rollout, lambda: self._deployment_ready(meta["namespace"], meta["name"], rs_name)
        )

    def _react_replicaset(self, rs: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = rs["metadata"]
        pod_rt = self.rt("v1", "Pod")
        pods = self._owned(pod_rt, meta["namespace"], meta["uid"])
        want = int((rs.get("spec") or {}).get("replicas", 1))
        for pod in pods[want:]:
            self.cluster._remove(pod_rt, self.cluster.key(pod_rt, meta["namespace"], pod["metadata"]["name"]))
        template = (rs.get("spec") or {}).get("template") or {}
        for _ in range(want - len(pods)):
            pod = {
                "metadata": {
                    "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
                    "namespace": meta["namespace"],
                    "labels": (template.get("metadata") or {}).get("labels") or {},
                    "ownerReferences": [_owner(rs)],
                },
                "spec": {
                    **(template.get("spec") or {}),
                    "nodeName": f"gke-{self.cluster.name}-default-pool-node",
                },
                "status": {"phase": "Pending", "podIP": self._free_pod_ip(), "hostIP": str(self.pod_net[1])},
            }
            pod["status"]["podIPs"] = [{"ip": pod["status"]["podIP"]}]
            self.cluster.put_internal(pod_rt, pod)

    def _free_pod_ip(self) -> str:
        used = {(p.get("status") or {}).get("podIP") for p in self.cluster.store.list("/pods")}
        return next(
            str(ip) for ip in itertools.islice(self.pod_net.hosts(), 256, None) if str(ip) not in used
        )

    def _react_pod(self, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is None or old.get("status") != pod.get("status"):
            self._endpoints(pod["metadata"]["namespace"])

    def _react_statefulset(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._ready_later(obj, "apps/v1", "StatefulSet")

    def _react_daemonset(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        status = {
            "currentNumberScheduled": 3,
            "desiredNumberScheduled": 3,
            "numberReady": 3,
            "numberAvailable": 3,
            "updatedNumberScheduled": 3,
            "observedGeneration": meta.get("generation", 1),
        }
        if old is None or old.get("spec") != obj.get("spec"):
            self.later(
                self.latency.rollout,
                lambda: self._set_status("apps/v1", "DaemonSet", meta["namespace"], meta["name"], status),
            )

    def _react_job(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        if old is None:
            status = {
                "succeeded": 1,
                "conditions": [_condition("Complete", "True", "", "")],
                "completionTime": now_rfc3339(),
            }
            self.later(
                self.latency.rollout,
                lambda: self._set_status("batch/v1", "Job", meta["namespace"], meta["name"], status),
            )

    def _ready_later(self, obj: dict[str, Any], api_version: str, kind: str) -> None:
        meta, replicas = obj["metadata"], (obj.get("spec") or {}).get("replicas", 1)
        status = {
            "replicas": replicas,
            "readyReplicas": replicas,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "observedGeneration": meta.get("generation", 1),
        }
        self.later(
            self.latency.rollout,
            lambda: self._set_status(api_version, kind, meta["namespace"], meta["name"], status),
        )

    # -- deletion ----------------------------------------------------------------------------

    def deleted(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        uid, ns = obj["metadata"]["uid"], obj["metadata"].get("namespace")
        if rt.kind == "CustomResourceDefinition" and not rt.custom:
            self._delete_custom_resources(obj)
        for key, dependent in list(self.cluster.store.objects.items()):
            if (not ns or key[1] == ns) and any(
                o.get("uid") == uid for o in (dependent.get("metadata") or {}).get("ownerReferences") or []
            ):
                self.cluster._remove(self.cluster.type_of(key), key)
        if rt.kind in ("Pod", "Service") and ns:
            self._endpoints(ns)

    def _delete_custom_resources(self, crd: dict[str, Any]) -> None:
        spec = crd["spec"]
        type_key = f"{spec['group']}/{spec['names']['plural']}"
        types = [rt for rt in self.cluster.registry.all() if rt.key == type_key]
        for key in [k for k in self.cluster.store.objects if k[0] == type_key]:
            obj = self.cluster.store.delete(key)
            if obj is not None and types:
                self.deleted(types[0], obj)
        self.cluster.registry.unregister_crd(crd)

    # -- helpers -----------------------------------------------------------------------------

    def _owned(self, rt: ResourceType, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
        return [
            o
            for o in self.cluster.store.list(rt.key, namespace)
            if any(r.get("uid") == owner_uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def _set_status(
        self, api_version: str, kind: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> None:
        def change(obj: dict[str, Any]) -> None:
            obj["status"] = {**(obj.get("status") or {}), **status}

        self.cluster.modify(self.rt(api_version, kind), namespace, name, change)

    def _deployment_ready(self, ns: str, name: str, rs_name: str) -> None:
        rs = self.cluster.find(self.rt("apps/v1", "ReplicaSet"), ns, rs_name)
        if rs is None:
            return
        pod_rt = self.rt("v1", "Pod")
        pods = self._owned(pod_rt, ns, rs["metadata"]["uid"])
        for pod in pods:
            pod["status"].update(
                phase="Running",
                conditions=[
                    _condition("Ready", "True", "", ""),
                    _condition("ContainersReady", "True", "", ""),
                ],
                startTime=now_rfc3339(),
            )
            self.cluster.put_internal(pod_rt, pod)
        n = len(pods)
        self._set_status(
            "apps/v1",
            "ReplicaSet",
            ns,
            rs_name,
            {
                "replicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
                "fullyLabeledReplicas": n,
                "observedGeneration": rs["metadata"].get("generation", 1),
            },
        )
        dep = self.cluster.find(self.rt("apps/v1", "Deployment"), ns, name)
        if dep is None:
            return
        self._set_status(
            "apps/v1",
            "Deployment",
            ns,
            name,
            {
                "observedGeneration": dep["metadata"].get("generation", 1),
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
                "unavailableReplicas": 0,
                "conditions": [
                    _condition(
                        "Available",
                        "True",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability.",
                    ),
                    _condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        f'ReplicaSet "{rs_name}" has successfully progressed.',
                    ),
                ],
            },
        )

    def _endpoints(self, ns: str, only: dict[str, Any] | None = None) -> None:
        services = [only] if only else self.cluster.store.list("/services", ns)
        pods = [
            p
            for p in self.cluster.store.list("/pods", ns)
            if (p.get("status") or {}).get("phase") == "Running"
        ]
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector")
            if not selector:
                continue
            ready = [
                p
                for p in pods
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            ]
            ports = [
                {
                    "name": pt.get("name", ""),
                    "port": pt.get("targetPort", pt.get("port"))
                    if isinstance(pt.get("targetPort"), int)
                    else pt.get("port"),
                    "protocol": pt.get("protocol", "TCP"),
                }
                for pt in svc["spec"].get("ports") or []
            ]
            subsets = (
                [
                    {
                        "addresses": [
                            {
                                "ip": p["status"]["podIP"],
                                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns},
                            }
                            for p in ready
                        ],
                        "ports": ports,
                    }
                ]
                if ready
                else []
            )
            ep_rt = self.rt("v1", "Endpoints")
            current = self.cluster.find(ep_rt, ns, svc["metadata"]["name"])
            if current is None or current.get("subsets", []) != subsets:
                self.cluster.put_internal(
                    ep_rt,
                    {
                        **(current or {}),
                        "metadata": {
                            **((current or {}).get("metadata") or {}),
                            "name": svc["metadata"]["name"],
                            "namespace": ns,
                            "labels": svc["metadata"].get("labels") or {},
                        },
                        "subsets": subsets,
                    },
                )


def _owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    stamp = now_rfc3339()
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }
