"""Workload controllers: Deployments roll out ReplicaSets and Pods (with IPs from the pod range),
become ready after the rollout latency; StatefulSets, DaemonSets and Jobs report done; Endpoints
follow the ready Pods behind each Service. Also the timer wheel all controllers share."""

from __future__ import annotations

import copy
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

from meshwright.sandbox import clock
from meshwright.sandbox.kube.controllers.builders import (
    condition,
    deployment_available,
    endpoint_slice,
    owner,
    replica_set_ready,
    rolling_out,
    safe_suffix,
    selected,
    subsets,
)
from meshwright.sandbox.kube.controllers.ratelimit import ControllerRateLimiter
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.store.crud import ClusterState
from meshwright.sandbox.settings import Latency

log = logging.getLogger(__name__)
REVISION = "deployment.kubernetes.io/revision"
MAX_PODS = 330  # per ReplicaSet: what three nodes of 110 pods can hold; more stay unscheduled (not made)


PodAdmission = Callable[[dict[str, Any]], "str | None"]
ConfigReview = Callable[[str, str, dict[str, Any], "dict[str, Any] | None"], "tuple[int, str] | None"]
"""(group, plural, object, old object) -> None when the validating webhooks admit it, else (403, the
webhook's denial) or (500, why calling it failed), as the API server's webhook plugin reports them."""
"""A pod about to be created (mutable: an injector adds its containers) -> None, or why it is refused."""


class Workloads:
    """Base of the cluster's controllers; `Controllers` adds the rest."""

    cluster: ClusterState
    admit_pod: PodAdmission
    latency: Latency
    pod_net: ipaddress.IPv4Network | ipaddress.IPv6Network
    _timers: list[tuple[float, int, Callable[[], None]]]
    _seq: itertools.count[int]
    _timer_lock: threading.Lock
    _rate_limiter: ControllerRateLimiter  # the ReplicaSet controller's queue's (see `ratelimit`)
    _retries: dict[tuple[str, str], float]  # when each requeued ReplicaSet is tried again

    def rt(self, api_version: str, kind: str) -> ResourceType:
        found = self.cluster.registry.by_kind(api_version, kind)
        assert found is not None
        return found

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

    def _set_status(
        self, api_version: str, kind: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> None:
        def change(obj: dict[str, Any]) -> None:
            merged = {**(obj.get("status") or {}), **status}
            obj["status"] = {
                k: v for k, v in merged.items() if v is not None
            }  # None: gone (omitempty at zero)

        self.cluster.modify(self.rt(api_version, kind), namespace, name, change)

    def _owned(self, rt: ResourceType, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
        return [
            o
            for o in self.cluster.store.list(rt.key, namespace)
            if any(r.get("uid") == owner_uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def _react_deployment(self, dep: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None and old.get("spec") == dep.get("spec"):
            return
        meta = dep["metadata"]
        rs = self._replica_set_for(dep)
        name = rs["metadata"]["name"]
        revision = self._revision(meta, name)
        rs["metadata"]["annotations"] = {REVISION: revision}
        if dotted_strategy(dep) == "Recreate":
            self._retire_other_replica_sets(dep, keep=name)
        self.cluster.put_internal(self.rt("apps/v1", "ReplicaSet"), rs)
        self._annotate_revision(meta, revision)
        self._set_status("apps/v1", "Deployment", meta["namespace"], meta["name"], rolling_out(dep, rs))
        self.later(
            self.latency.rollout, lambda: self._deployment_ready(meta["namespace"], meta["name"], name)
        )

    def _replica_set_for(self, dep: dict[str, Any]) -> dict[str, Any]:
        """The ReplicaSet of the Deployment's current template, named after its hash as a real one is."""
        meta, spec = dep["metadata"], dep.get("spec") or {}
        template = spec.get("template") or {}
        digest = safe_suffix(json.dumps(template, sort_keys=True), 10)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": digest}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
        return {
            "metadata": {
                "name": f"{meta['name']}-{digest}",
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [owner(dep)],
            },
            "spec": {
                "replicas": spec.get("replicas", 1),
                "selector": selector,
                "template": {**template, "metadata": {**(template.get("metadata") or {}), "labels": labels}},
            },
        }

    def _revision(self, meta: dict[str, Any], rs_name: str) -> str:
        """The rollout's revision: the current ReplicaSet keeps its own if newest, else one past the newest."""
        revisions = {
            rs["metadata"]["name"]: int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)
            for rs in self._owned(self.rt("apps/v1", "ReplicaSet"), meta["namespace"], meta["uid"])
        }
        mine = revisions.pop(rs_name, 0)
        newest = max(revisions.values(), default=0)
        return str(mine if mine > newest else newest + 1)

    def _annotate_revision(self, meta: dict[str, Any], revision: str) -> None:
        def change(obj: dict[str, Any]) -> None:
            obj["metadata"].setdefault("annotations", {})[REVISION] = revision

        self.cluster.modify(self.rt("apps/v1", "Deployment"), meta["namespace"], meta["name"], change)

    def _retire_other_replica_sets(self, dep: dict[str, Any], *, keep: str) -> None:
        """Old ReplicaSets scale to zero and stay, up to revisionHistoryLimit, for `rollout history` and `undo`."""
        meta, rs_rt = dep["metadata"], self.rt("apps/v1", "ReplicaSet")
        others = [
            rs for rs in self._owned(rs_rt, meta["namespace"], meta["uid"]) if rs["metadata"]["name"] != keep
        ]
        others.sort(key=lambda rs: int(rs["metadata"].get("resourceVersion", "0")))
        limit = (dep.get("spec") or {}).get("revisionHistoryLimit", 10)
        for n, rs in enumerate(others):
            if n < len(others) - limit:
                self.cluster.remove(rs_rt, self.cluster.key(rs_rt, meta["namespace"], rs["metadata"]["name"]))
            elif (rs.get("spec") or {}).get("replicas") != 0:
                rs["spec"]["replicas"] = 0
                self.cluster.put_internal(rs_rt, rs)

    def _react_replicaset(self, rs: dict[str, Any], old: dict[str, Any] | None) -> None:
        """A sync of the ReplicaSet: a refused pod creation fails it (requeued with backoff, see
        `ratelimit`); a sync that succeeds resets the backoff (`queue.Forget`)."""
        meta = rs["metadata"]
        key = (meta["namespace"], meta["name"])
        created = self._manage_replicas(rs)
        if created is None:
            return
        if created and self._rate_limiter.requeues(key):
            self._roll_out_after_retry(rs)
        self._rate_limiter.forget(key)

    def _manage_replicas(self, rs: dict[str, Any]) -> int | None:
        """Pods made or removed to match the replicas; how many were made, None when one was refused."""
        meta = rs["metadata"]
        pod_rt = self.rt("v1", "Pod")
        pods = self._owned(pod_rt, meta["namespace"], meta["uid"])
        want = min(int((rs.get("spec") or {}).get("replicas", 1)), MAX_PODS)
        for pod in pods[want:]:
            self.cluster.remove(pod_rt, self.cluster.key(pod_rt, meta["namespace"], pod["metadata"]["name"]))
        template = (rs.get("spec") or {}).get("template") or {}
        created = 0
        for _ in range(want - len(pods)):
            pod = self._new_pod(rs, template)
            refused = self.admit_pod(pod)
            if refused:  # as the ReplicaSet controller reports a webhook that failed with failurePolicy Fail
                self._creation_failed(rs, refused)
                return None
            self.cluster.put_internal(pod_rt, pod)
            created += 1
        return created

    def _creation_failed(self, rs: dict[str, Any], message: str) -> None:
        """ReplicaFailure on the ReplicaSet, and another try after the rate limiter's delay.

        The condition is set as the controller's `SetCondition` does (left as it is, message and
        times, while its status and reason stay the same) and written only when the status changed
        (`updateReplicaSetStatus`), so a failure that repeats writes nothing: each write is a change
        of the ReplicaSet, which syncs it again at once.
        """
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        status = rs.get("status") or {}
        current = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        kept = current is not None and (current.get("status"), current.get("reason")) == (
            "True",
            "FailedCreate",
        )
        have = len(self._owned(self.rt("v1", "Pod"), ns, rs["metadata"]["uid"]))
        if not kept or status.get("replicas") != have:
            failure = [current if kept else condition("ReplicaFailure", "True", "FailedCreate", message)]
            self._set_status("apps/v1", "ReplicaSet", ns, name, {"replicas": have, "conditions": failure})
        self._requeue(ns, name)

    def _requeue(self, ns: str, name: str) -> None:
        """`queue.AddRateLimited`: one waiting retry per ReplicaSet, the earliest asked for (the
        delaying queue keeps one entry per item), each failure counted all the same."""
        key = (ns, name)
        delay = self._rate_limiter.when(key)
        due = time.monotonic() + delay
        if key in self._retries and self._retries[key] <= due:
            return
        self._retries[key] = due
        self.later(delay, lambda: self._retry_replicaset(ns, name, due))

    def _retry_replicaset(self, ns: str, name: str, due: float) -> None:
        """The requeued sync, unless an earlier retry replaced this one."""
        if self._retries.get((ns, name)) != due:
            return
        del self._retries[(ns, name)]
        rs = self.cluster.find(self.rt("apps/v1", "ReplicaSet"), ns, name)
        if rs is not None:
            self._react_replicaset({**rs, "apiVersion": "apps/v1", "kind": "ReplicaSet"}, rs)

    def _roll_out_after_retry(self, rs: dict[str, Any]) -> None:
        """Pods a refusal held back are in: they become ready like any rollout's."""
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        owner = next(
            (o for o in rs["metadata"].get("ownerReferences") or [] if o.get("kind") == "Deployment"), None
        )
        if owner is not None:
            self.later(self.latency.rollout, lambda: self._deployment_ready(ns, owner["name"], name))

    def _new_pod(self, rs: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
        """A pod of the ReplicaSet, placed on the node with the fewest pods."""
        meta = rs["metadata"]
        node, host_ip = self._place()
        ip = self._free_pod_ip()
        return {
            "metadata": {
                "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
                "namespace": meta["namespace"],
                "labels": (template.get("metadata") or {}).get("labels") or {},
                "ownerReferences": [owner(rs)],
            },
            "spec": {**(template.get("spec") or {}), "nodeName": node},
            "status": {"phase": "Pending", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip},
        }

    def _place(self) -> tuple[str, str]:
        nodes = self.cluster.store.list("/nodes")
        if not nodes:
            return f"gke-{self.cluster.name}-default-pool-node", str(self.pod_net[1])
        load = {n["metadata"]["name"]: 0 for n in nodes}
        for pod in self.cluster.store.list("/pods"):
            name = (pod.get("spec") or {}).get("nodeName")
            if name in load:
                load[name] += 1
        chosen = min(nodes, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
        addresses = (chosen.get("status") or {}).get("addresses") or []
        ip = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "")
        return chosen["metadata"]["name"], ip

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
                "conditions": [condition("Complete", "True", "", "")],
                "completionTime": clock.rfc3339(),
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

    def _deployment_ready(self, ns: str, name: str, rs_name: str) -> None:
        """The rollout to `rs_name` is done, unless a newer one replaced it meanwhile."""
        dep = self.cluster.find(self.rt("apps/v1", "Deployment"), ns, name)
        rs = self.cluster.find(self.rt("apps/v1", "ReplicaSet"), ns, rs_name)
        if dep is None or rs is None or self._replica_set_for(dep)["metadata"]["name"] != rs_name:
            return
        n = self._start_pods(ns, rs["metadata"]["uid"])
        # RollingUpdate (the default; maxUnavailable 25% rounds down to 0 for small replica counts,
        # maxSurge 25% up to 1): the old ReplicaSets go once the new pods are ready, so a restart
        # never leaves a Deployment without a ready pod (kubernetes pkg/controller/deployment/rolling.go).
        self._retire_other_replica_sets(dep, keep=rs_name)
        generation = rs["metadata"].get("generation", 1)
        self._set_status("apps/v1", "ReplicaSet", ns, rs_name, replica_set_ready(n, generation))
        self._set_status("apps/v1", "Deployment", ns, name, deployment_available(dep, n, rs_name))

    def _start_pods(self, ns: str, owner_uid: str) -> int:
        """The ReplicaSet's pods are Running and Ready; how many there are."""
        pod_rt = self.rt("v1", "Pod")
        pods = self._owned(pod_rt, ns, owner_uid)
        ready = [condition("Ready", "True", "", ""), condition("ContainersReady", "True", "", "")]
        for pod in pods:
            pod["status"].update(phase="Running", conditions=ready, startTime=clock.rfc3339())
            self.cluster.put_internal(pod_rt, pod)
        return len(pods)

    def _endpoints(self, ns: str, only: dict[str, Any] | None = None) -> None:
        """Endpoints of each Service with a selector: the Running pods it selects, on its ports."""
        services = [only] if only else self.cluster.store.list("/services", ns)
        running = [
            p
            for p in self.cluster.store.list("/pods", ns)
            if (p.get("status") or {}).get("phase") == "Running"
        ]
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector")
            if selector:
                chosen = [p for p in running if selected(p, selector)]
                self._write_endpoints(svc, subsets(svc, chosen))
                self._write_endpoint_slice(svc, chosen)

    def _write_endpoint_slice(self, svc: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        """The endpointslice controller's slice for a Service: what istiod and kube-proxy read."""
        slice_rt, meta = self.rt("discovery.k8s.io/v1", "EndpointSlice"), svc["metadata"]
        wanted = endpoint_slice(svc, pods)
        current = self.cluster.find(slice_rt, meta["namespace"], wanted["metadata"]["name"])
        if current is None or (current.get("endpoints"), current.get("ports")) != (
            wanted["endpoints"],
            wanted["ports"],
        ):
            self.cluster.put_internal(slice_rt, {**(current or {}), **wanted})

    def _write_endpoints(self, svc: dict[str, Any], subsets: list[dict[str, Any]]) -> None:
        ep_rt, meta = self.rt("v1", "Endpoints"), svc["metadata"]
        current = self.cluster.find(ep_rt, meta["namespace"], meta["name"])
        if current is not None and current.get("subsets", []) == subsets:
            return
        labels = meta.get("labels") or {}
        kept = (current or {}).get("metadata") or {}
        endpoints = {
            **(current or {}),
            "metadata": {**kept, "name": meta["name"], "namespace": meta["namespace"], "labels": labels},
            "subsets": subsets,
        }
        self.cluster.put_internal(ep_rt, endpoints)


def dotted_strategy(dep: dict[str, Any]) -> str:
    """The Deployment's `spec.strategy.type`: RollingUpdate unless it says Recreate."""
    return str(((dep.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate")
