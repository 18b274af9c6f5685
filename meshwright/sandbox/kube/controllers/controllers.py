"""Small simulated controllers: what a real cluster's controllers do, just enough and on time.

Namespaces become Active with their default service account and root CA configmap; secrets get
`data` from `stringData` and service-account tokens; Services get cluster IPs and load-balancer
IPs (and, through `lb_changed`, the cloud's rules for them); CRDs register their types and become
Established; owners take their dependents with them.
Workloads (Deployments and friends) live in `workloads.py`, pods a user creates in `pods.py`.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from meshwright.sandbox import clock, dotted
from meshwright.sandbox.kube.auth import TokenAuthority
from meshwright.sandbox.kube.controllers.pods import PodRun, Pods
from meshwright.sandbox.kube.controllers.ratelimit import ControllerRateLimiter
from meshwright.sandbox.kube.controllers.workloads import ConfigReview, PodAdmission
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.schema import fielderrors
from meshwright.sandbox.kube.status import KubeError
from meshwright.sandbox.kube.store.crud import ClusterState
from meshwright.sandbox.settings import Latency

log = logging.getLogger(__name__)
SA_TOKEN = "kubernetes.io/service-account-token"


NODE_PORTS = range(30000, 32768)
NODE_PORT_RANGE = "provided port is not in the valid range. The range of valid ports is 30000-32767"


def _ports(svc: dict[str, Any] | None) -> list[dict[str, Any]]:
    ports = ((svc or {}).get("spec") or {}).get("ports") or []
    return [p for p in ports if isinstance(p, dict)]


NEEDS_NODE_PORTS = ("NodePort", "LoadBalancer")


def _drop_type_dependent_fields(svc: dict[str, Any], old: dict[str, Any]) -> None:
    """A type change that no longer needs node ports clears the ones it still carries unchanged (strategy.go)."""
    spec, old_spec = svc.get("spec") or {}, old.get("spec") or {}
    if old_spec.get("type") not in NEEDS_NODE_PORTS or spec.get("type") in NEEDS_NODE_PORTS:
        return
    if [p.get("nodePort") for p in _ports(svc)] == [p.get("nodePort") for p in _ports(old)]:
        for port in _ports(svc):
            port.pop("nodePort", None)
    for field in ("externalTrafficPolicy", "allocateLoadBalancerNodePorts", "healthCheckNodePort"):
        if spec.get(field) == old_spec.get(field):
            spec.pop(field, None)
    svc["status"] = {"loadBalancer": {}}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Controllers(Pods):
    def __init__(
        self,
        cluster: ClusterState,
        *,
        latency: Latency,
        authority: TokenAuthority,
        ca_pem: str,
        pod_cidr: str,
        services_cidr: str,
        lb_address: Callable[[], str],
        lb_changed: Callable[[dict[str, Any], bool], None] = lambda svc, present: None,
        admit_pod: PodAdmission = lambda pod: None,
        review_config: ConfigReview = lambda group, plural, obj, old: None,
        run_pod: PodRun = lambda pod: None,
    ) -> None:
        self.cluster, self.latency, self.authority, self.ca_pem = cluster, latency, authority, ca_pem
        self.pod_net = ipaddress.ip_network(pod_cidr)
        self.svc_net = ipaddress.ip_network(services_cidr)
        self.lb_address, self.admit_pod, self.review_config = lb_address, admit_pod, review_config
        self.lb_changed = lb_changed  # the cloud's service controller: a load balancer made or gone
        self.run_pod = run_pod  # what a bare pod's container does, when the sandbox knows (pods.py)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._timer_lock = threading.Lock()
        self._rate_limiter, self._retries = ControllerRateLimiter(), {}
        cluster.hooks = self

    # -- restart -----------------------------------------------------------------------------

    def resync(self) -> None:
        """After a restart: redo the work whose timers died with the old process.

        Each object on its own: one that a controller cannot handle is logged once and skipped,
        so no stored object can stop a cluster from starting.
        """
        with self.cluster.lock:
            for type_key, redo in (
                ("apps/deployments", self._resync_deployment),
                ("/services", lambda svc: self._react_service(svc, svc)),
                ("apps/statefulsets", lambda o: self._resync_unready(o, "apps/v1", "StatefulSet")),
                ("apps/daemonsets", lambda o: self._resync_unready(o, "apps/v1", "DaemonSet")),
                ("batch/jobs", lambda o: self._resync_unready(o, "batch/v1", "Job")),
                ("/namespaces", self._resync_namespace),
            ):
                for obj in self.cluster.store.list(type_key):
                    self._guarded(f"resync of {type_key}", obj, redo)

    def _guarded(self, what: str, obj: dict[str, Any], action: Callable[[dict[str, Any]], None]) -> None:
        try:
            action(obj)
        except Exception:  # one bad object must not stop the others (nor the start)
            meta = obj.get("metadata") or {}
            log.exception(
                "%s skipped %s/%s in cluster %s",
                what,
                meta.get("namespace", ""),
                meta.get("name"),
                self.cluster.name,
            )

    def _resync_deployment(self, dep: dict[str, Any]) -> None:
        status, want = dep.get("status") or {}, (dep.get("spec") or {}).get("replicas", 1)
        stale = status.get("observedGeneration") != dep["metadata"].get("generation")
        if status.get("readyReplicas", 0) != want or stale:
            self._react_deployment(self._typed("apps/v1", "Deployment", dep), None)

    @staticmethod
    def _typed(api_version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "apiVersion": api_version, "kind": kind}

    def _resync_unready(self, obj: dict[str, Any], api_version: str, kind: str) -> None:
        if not obj.get("status"):
            self.react(self.rt(api_version, kind), obj, None)

    def _resync_namespace(self, ns: dict[str, Any]) -> None:
        if (ns.get("status") or {}).get("phase") == "Pending":
            self._set_status("v1", "Namespace", None, ns["metadata"]["name"], {"phase": "Active"})

    # -- admission ---------------------------------------------------------------------------

    def admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        admit = getattr(self, f"_admit_{rt.kind.lower()}", None)
        if admit and not rt.custom:
            admit(obj, old)

    def review(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """The validating webhooks' verdict, in the API server's words (k8s.io/apiserver
        admission/plugin/webhook/errors/statuserror.go `ToStatusErr`)."""
        verdict = self.review_config(rt.group, rt.plural, obj, old)
        if verdict is None:
            return
        code, message = verdict
        name = obj["metadata"].get("name") or "Unknown"
        resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
        if code == 500:
            raise KubeError(
                500, f"Internal error occurred: {message}", details={"causes": [{"message": message}]}
            )
        details = {"group": rt.group, "kind": rt.plural, "name": name}
        raise KubeError(
            code, f'{resource} "{name}" is forbidden: {message}', reason="Forbidden", details=details
        )

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

    def _admit_horizontalpodautoscaler(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        obj.setdefault("status", (old or {}).get("status") or {"desiredReplicas": 0})

    def _admit_service(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        if old is not None:
            _drop_type_dependent_fields(obj, old)
        ports = [port for port in spec.get("ports") or [] if isinstance(port, dict)]
        for port in ports:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer"):
            self._node_ports(obj, old)
        if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            previous = ((old or {}).get("spec") or {}).get("clusterIP")
            spec["clusterIP"] = previous or self._free_service_ip()
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        obj.setdefault("status", (old or {}).get("status") or {"loadBalancer": {}})

    def _node_ports(self, svc: dict[str, Any], old: dict[str, Any] | None) -> None:
        """A distinct node port per port: the one asked for (in range, not taken), the one it had, or a free one."""
        taken = self._node_ports_in_use(svc["metadata"].get("namespace"), svc["metadata"].get("name"))
        kept = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in _ports(old)}
        errors = []
        for i, port in enumerate(_ports(svc)):
            asked = port.get("nodePort") or kept.get((port.get("port"), port.get("protocol")))
            if asked and not NODE_PORTS[0] <= asked <= NODE_PORTS[-1]:
                errors.append(fielderrors.invalid(f"spec.ports[{i}].nodePort", asked, NODE_PORT_RANGE))
            elif asked in taken:
                errors.append(
                    fielderrors.invalid(
                        f"spec.ports[{i}].nodePort", asked, "provided port is already allocated"
                    )
                )
            port["nodePort"] = asked or next(n for n in NODE_PORTS if n not in taken)
            taken.add(port["nodePort"])
        if errors:
            raise fielderrors.rejected(self.rt("v1", "Service"), svc["metadata"].get("name", ""), errors)

    def _node_ports_in_use(self, namespace: str | None, name: str | None) -> set[int]:
        return {
            port["nodePort"]
            for s in self.cluster.store.list("/services")
            if (s["metadata"].get("namespace"), s["metadata"]["name"]) != (namespace, name)
            for port in _ports(s)
            if port.get("nodePort")
        }

    def _free_service_ip(self) -> str:
        used = {(s.get("spec") or {}).get("clusterIP") for s in self.cluster.store.list("/services")}
        return next(str(ip) for ip in itertools.islice(self.svc_net.hosts(), 1, None) if str(ip) not in used)

    # -- reactions ---------------------------------------------------------------------------

    def react(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """The controllers' reaction to a stored write; a failing reaction is logged, the write stands."""
        react = getattr(self, f"_react_{rt.kind.lower()}", None)
        if react and not rt.custom:
            self._guarded(f"{rt.kind} controller", obj, lambda o: react(o, old))

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
        ingress = dotted.get(svc, "status.loadBalancer.ingress") or []
        on_loopback = bool(ingress) and all(str(i.get("ip", "")).startswith("127.") for i in ingress)
        balanced = svc["spec"].get("type") == "LoadBalancer"
        if balanced and not on_loopback:
            ip = self.lb_address()  # loopback only: an address that leaves the machine is never handed out
            self.later(self.latency.loadbalancer, lambda: self._balanced(ns, name, ip))
        elif balanced:
            self.lb_changed(svc, True)  # its ports may have changed: the cloud's rules follow
        elif dotted.get(old or {}, "spec.type") == "LoadBalancer":
            self.later(self.latency.loadbalancer, lambda: self.lb_changed(old or {}, False))
        self._endpoints(ns, svc)

    def _balanced(self, ns: str, name: str, ip: str) -> None:
        """The load balancer is up: the cloud has its rules, the Service its address."""
        self._set_status(
            "v1", "Service", ns, name, {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
        )
        svc = self.cluster.find(self.rt("v1", "Service"), ns, name)
        if svc is not None and svc["spec"].get("type") == "LoadBalancer":
            self.lb_changed(svc, True)

    def _react_horizontalpodautoscaler(self, hpa: dict[str, Any], old: dict[str, Any] | None) -> None:
        """The autoscaler keeps its target between minReplicas and maxReplicas (no metrics: it never goes further)."""
        spec, ns = hpa.get("spec") or {}, hpa["metadata"]["namespace"]
        ref = spec.get("scaleTargetRef") or {}
        if ref.get("kind") != "Deployment":
            return
        dep_rt = self.rt("apps/v1", "Deployment")
        dep = self.cluster.find(dep_rt, ns, ref.get("name", ""))
        if dep is None:
            return
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
        current = (dep.get("spec") or {}).get("replicas", 1)
        desired = min(max(current, low), high)
        if desired != current:
            self.cluster.modify(
                dep_rt, ns, dep["metadata"]["name"], lambda d: d["spec"].update(replicas=desired)
            )
        status = {"currentReplicas": current, "desiredReplicas": desired, "lastScaleTime": clock.rfc3339()}
        if (hpa.get("status") or {}).get("desiredReplicas") != desired:
            self._set_status("autoscaling/v2", "HorizontalPodAutoscaler", ns, hpa["metadata"]["name"], status)

    def _react_customresourcedefinition(self, crd: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            self.cluster.registry.unregister_crd(old)
        self.cluster.registry.register_crd(crd)
        conditions = [
            {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": clock.rfc3339()}
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ]
        current = crd.get("status") or {}
        stored = list(current.get("storedVersions") or [])
        stored += [
            v["name"] for v in crd["spec"].get("versions", []) if v.get("storage") and v["name"] not in stored
        ]
        status = {
            "conditions": conditions,
            "acceptedNames": crd["spec"].get("names", {}),
            "storedVersions": stored,
        }
        if (current.get("acceptedNames"), current.get("storedVersions")) != (status["acceptedNames"], stored):
            self._set_status(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, crd["metadata"]["name"], status
            )

    # -- deletion ----------------------------------------------------------------------------

    def deleted(self, rt: ResourceType, obj: dict[str, Any], *, orphan: bool = False) -> None:
        """The garbage collector: dependents go with their owner, or lose the reference when orphaned."""
        uid, ns = obj["metadata"]["uid"], obj["metadata"].get("namespace")
        if rt.kind == "CustomResourceDefinition" and not rt.custom:
            self._delete_custom_resources(obj)
        for key, dependent in list(self.cluster.store.objects.items()):
            refs = (dependent.get("metadata") or {}).get("ownerReferences") or []
            if (ns and key[1] != ns) or not any(o.get("uid") == uid for o in refs):
                continue
            kind = self.cluster.type_of(key)
            if orphan and kind is not None:
                kept = copy.deepcopy(dependent)
                kept["metadata"]["ownerReferences"] = [o for o in refs if o.get("uid") != uid]
                self.cluster.put_internal(kind, kept)
            else:
                self.cluster.remove(kind, key)
        if rt.kind == "Service" and ns:
            ep_rt = self.rt("v1", "Endpoints")
            self.cluster.remove(ep_rt, self.cluster.key(ep_rt, ns, obj["metadata"]["name"]))
            if dotted.get(obj, "spec.type") == "LoadBalancer":  # the cloud's cleanup takes its time too
                self.later(self.latency.loadbalancer, lambda: self.lb_changed(obj, False))
        if rt.kind == "Pod" and ns:
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
