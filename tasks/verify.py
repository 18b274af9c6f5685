"""Observing a mesh's control plane, cluster by cluster, for the pure checks in meshwright.verify
(control plane) and meshwright.traffic (Bookinfo's traffic).

Each observation is read with the user's credentials. A primary's clusterz is read as istioctl reads
it, through a port-forward to each istiod revision's pod; a remote cluster it does not see as synced
gets a diagnosis: its remote secret is read and its token tried with istiod's own calls within the
same task, and only the diagnosis (a short reason, never the token) comes out. Results are not
persisted.

Traffic: `ingress_address` reads the ingress gateway's load-balancer address, `await_traffic` asks
it until every placed workload has answered once, `send_traffic` makes the counted plain HTTP GETs
(urllib, as curl would) and times each, `observe_bookinfo` and `read_firewalls` read what explains
a failure. The same code runs on GKE and on the sandbox.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import kubernetes.client
import urllib3.exceptions
import yaml
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from meshwright import bookinfo, clients, kube, naming, pki
from meshwright.clients import Cloud, MeshwrightTarget
from meshwright.errors import MeshwrightError, PermanentError, PermissionDenied, Unreachable, is_transient
from meshwright.findings import BookinfoState
from meshwright.kube import load_balancer_addresses, read_or_none
from meshwright.models import ClusterAccess, Timing
from meshwright.remote_secrets import INFORMED, pairs
from meshwright.spec import MeshSpec, Role
from meshwright.traffic import PAGE_PATH, REVIEWS_PATH, Reply, read_reply, unanswered
from meshwright.translate import kube_call
from meshwright.verify import SYNCED, Observation, refused_auth
from tasks.clusters import access_of, get_cluster
from tasks.common import RETRYING

STEP = "verify"
SETTLE_SECONDS = 60.0
ISTIOD_SELECTOR = "app=istiod"
REVISION_LABEL = "istio.io/rev"
MONITORING_PORT = 15014
CLUSTERZ = "/debug/clusterz"
PORTFORWARD_NEEDS = "reading istiod's clusterz needs `create` on `pods/portforward` in istio-system"


@task(cache_policy=NO_CACHE, persist_result=False, **RETRYING)
def locate_clusters(spec: MeshSpec, *, target: MeshwrightTarget) -> dict[str, ClusterAccess | None]:
    """How to reach each cluster of the spec as it exists now; None for one that does not exist."""
    found: dict[str, ClusterAccess | None] = {}
    for c in spec.clusters:
        cluster = get_cluster(target, spec.project, c.location, c.name, step=STEP)
        if cluster is None or not cluster.endpoint:
            found[c.name] = None
            continue
        now = time.time()
        found[c.name] = access_of(cluster, Timing(step=STEP, cluster=c.name, started=now, finished=now))
    return found


def istiod_pods(core: kubernetes.client.CoreV1Api) -> list[str]:
    """One ready istiod pod per revision that runs (label `istio.io/rev`), as istioctl picks one."""
    pods = core.list_namespaced_pod(naming.ISTIO_NAMESPACE, label_selector=ISTIOD_SELECTOR).items
    chosen: dict[str, str] = {}
    for pod in pods:
        if pod.metadata and pod.metadata.name and _ready(pod):
            revision = (pod.metadata.labels or {}).get(REVISION_LABEL, "default")
            chosen.setdefault(revision, str(pod.metadata.name))
    return [chosen[revision] for revision in sorted(chosen)]


def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    running = bool(pod.status and pod.status.phase == "Running")
    return running and any(c.type == "Ready" and c.status == "True" for c in conditions)


def read_clusterz(client: kubernetes.client.ApiClient, access: ClusterAccess) -> dict[str, str]:
    """istiod's `/debug/clusterz` of every revision, read as `istioctl remote-clusters` reads it:
    through a port-forward to its pod, where istiod answers its debug endpoints (a call through the
    API server's service proxy arrives without the caller's credentials and gets 401: istio/istio
    pilot/pkg/xds/debug.go, allowAuthenticatedOrLocalhost). Cluster id -> syncStatus; where two
    revisions disagree, the one that is not synced counts."""
    with kube_call(cluster=access.name, step=STEP, what="istiod pods", endpoint=access.endpoint):
        pods = istiod_pods(kubernetes.client.CoreV1Api(client))
    if not pods:
        raise PermanentError("no ready istiod pod in istio-system", cluster=access.name, step=STEP)
    found: dict[str, str] = {}
    for pod in pods:
        what = f"istiod's {CLUSTERZ} (port-forward to pod/{pod}:{MONITORING_PORT})"
        status, body = kube.forward_get(
            client, naming.ISTIO_NAMESPACE, pod, MONITORING_PORT, CLUSTERZ,
            cluster=access.name, step=STEP, what=what,
        )  # fmt: skip
        if status != 200:
            said = " ".join(body.decode(errors="replace").split())[:200]
            raise PermanentError(f"{what}: HTTP {status}: {said}", cluster=access.name, step=STEP)
        for entry in json.loads(body or b"[]"):
            if isinstance(entry, dict) and found.get(str(entry.get("id"))) in (None, SYNCED):
                found[str(entry.get("id"))] = str(entry.get("syncStatus"))
    return found


def root_fingerprint(core: kubernetes.client.CoreV1Api) -> str | None:
    """SHA-256 of the first certificate in cacerts' root-cert.pem; None without cacerts."""
    secret = read_or_none(lambda: core.read_namespaced_secret(naming.CACERTS_SECRET, naming.ISTIO_NAMESPACE))
    data = (secret.data if secret is not None else None) or {}
    pem = data.get("root-cert.pem") or data.get("ca.crt")
    return pki.fingerprint(base64.b64decode(pem)) if pem else None


def eastwest_addresses(core: kubernetes.client.CoreV1Api) -> list[str] | None:
    svc = read_or_none(lambda: core.read_namespaced_service(naming.EASTWEST_RELEASE, naming.ISTIO_NAMESPACE))
    return None if svc is None else load_balancer_addresses(svc)


def istiod_addresses(client: kubernetes.client.ApiClient, name: str = "istiod") -> list[str]:
    """Where Service istiod[-<revision>] of a remote leads: its EndpointSlices' addresses, or its ExternalName."""
    core, ns = kubernetes.client.CoreV1Api(client), naming.ISTIO_NAMESPACE
    svc = read_or_none(lambda: core.read_namespaced_service(name, ns))
    if svc is None:
        return []
    if svc.spec and svc.spec.type == "ExternalName":
        return [str(svc.spec.external_name)]
    slices = kubernetes.client.DiscoveryV1Api(client).list_namespaced_endpoint_slice(
        ns, label_selector=f"kubernetes.io/service-name={name}"
    )
    found = {a for s in slices.items for e in s.endpoints or [] for a in e.addresses or []}
    if not found:  # older remote profiles render a v1 Endpoints object instead
        endpoints = read_or_none(lambda: core.read_namespaced_endpoints(name, ns))
        subsets = (endpoints.subsets if endpoints is not None else None) or []
        found = {str(a.ip) for s in subsets for a in s.addresses or []}
    return sorted(found)


def diagnose(
    cloud: Cloud, core: kubernetes.client.CoreV1Api, source: str, source_access: ClusterAccess | None
) -> str:
    """Why a primary might not see `source`: its remote secret, read and tried. Returns a reason only."""
    name = naming.remote_secret_name(source)
    secret = read_or_none(lambda: core.read_namespaced_secret(name, naming.ISTIO_NAMESPACE))
    if secret is None:
        return "missing"
    labels = (secret.metadata.labels if secret.metadata else None) or {}
    if labels.get(naming.REMOTE_SECRET_LABEL) != "true":
        return f"not labelled {naming.REMOTE_SECRET_LABEL}=true"
    raw = (secret.data or {}).get(source)
    if not raw:
        return f"no data key {source}"
    try:
        doc = yaml.safe_load(base64.b64decode(raw))
        context = _entry(doc, "contexts", doc.get("current-context"), "context")
        server = str(_entry(doc, "clusters", context.get("cluster"), "cluster")["server"])
        user = _entry(doc, "users", context.get("user"), "user")
        ca = _entry(doc, "clusters", context.get("cluster"), "cluster").get("certificate-authority-data", "")
    except (yaml.YAMLError, binascii.Error, KeyError, TypeError, AttributeError):
        return "kubeconfig cannot be loaded"
    if refused := refused_auth(user):
        return refused
    if source_access is not None and server != f"https://{source_access.endpoint}":
        return f"server {server} is not {source}'s endpoint https://{source_access.endpoint}"
    return _unusable_ca(ca) or _try(cloud, server, ca, user.get("token") or "")


def _entry(doc: Any, kind: str, name: Any, key: str) -> dict[str, Any]:
    return next(dict(i[key]) for i in doc[kind] if i.get("name") == name)


def _unusable_ca(ca: str) -> str | None:
    try:
        pem = base64.b64decode(ca, validate=True)
    except (binascii.Error, ValueError):
        return "CA data is not base64"
    return None if b"-----BEGIN CERTIFICATE-----" in pem else "CA data is not a PEM certificate"


def _try(cloud: Cloud, server: str, ca: str, token: str) -> str:
    """What istiod meets with this kubeconfig: the lists and watches of its informers, tried."""
    client = cloud.kube_as(server.removeprefix("https://"), ca, token, timeout=5.0)
    try:
        kube.list_and_watch(client, INFORMED, cluster="", step=STEP)
    except PermissionDenied as e:
        if "HTTP 401" in e.message:
            return "token rejected"
        refused = e.message.partition(": ")[0]  # `cannot list namespaces at cluster scope`
        return f"RBAC: {naming.READER_SERVICE_ACCOUNT} {refused}"
    except Unreachable as e:
        cause = e.__cause__
        reason = getattr(cause, "reason", None)
        if isinstance(reason, urllib3.exceptions.SSLError) or isinstance(cause, urllib3.exceptions.SSLError):
            return f"CA data does not verify {server}"
        return f"cannot reach {server}"
    except MeshwrightError as e:
        return f"the kubeconfig gets {e.message}"
    finally:
        client.close()
    return "ok, istiod has not caught up"


# A lagging remote's diagnosis (its kubeconfig's lists and watches, tried) stands this long: a primary
# with 49 remotes syncing is not 49 clients' worth of requests every poll while its istiod catches up.
REDIAGNOSE = 5.0


def _diagnose(
    cloud: Cloud,
    core: kubernetes.client.CoreV1Api,
    lagging: list[str],
    others: dict[str, ClusterAccess | None],
    *,
    into: Observation,
    when: dict[str, float],
) -> None:
    """Why each lagging remote is not synced, tried again once its last diagnosis is REDIAGNOSE old."""
    for s in [s for s in into.secrets if s not in lagging]:
        del into.secrets[s]
    for s in lagging:
        if s not in into.secrets or time.monotonic() - when[s] >= REDIAGNOSE:
            into.secrets[s], when[s] = diagnose(cloud, core, s, others.get(s)), time.monotonic()


def _settled(clusterz: dict[str, str], expected: list[str], why: dict[str, str]) -> bool:
    """Nothing left that is still syncing with a kubeconfig that works."""
    return all(
        clusterz.get(s) == SYNCED or clusterz.get(s) != "syncing" or not why[s].startswith("ok")
        for s in expected
    )


def _observe_primary(
    spec: MeshSpec,
    access: ClusterAccess,
    seen: Observation,
    others: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float,
) -> None:
    cloud = clients.cloud(target)
    client = cloud.kube_for(access)
    core, expected = kubernetes.client.CoreV1Api(client), [s for s, p in pairs(spec) if p == access.name]
    deadline, poll = time.monotonic() + settle, max(cloud.waits.poll, 0.5)
    diagnosed: dict[str, float] = {}
    try:
        while True:
            try:
                seen.clusterz = read_clusterz(client, access)
            except PermissionDenied as e:
                seen.clusterz_error = f"{e.message}; {PORTFORWARD_NEEDS}"
                return
            except MeshwrightError as e:
                if is_transient(e):
                    raise
                seen.clusterz_error = e.message
                return
            lagging = [s for s in expected if seen.clusterz.get(s) != SYNCED]
            _diagnose(cloud, core, lagging, others, into=seen, when=diagnosed)
            if _settled(seen.clusterz, expected, seen.secrets) or time.monotonic() > deadline:
                return
            time.sleep(poll)
    finally:
        client.close()


class Observed(Protocol):
    """What an observation of one cluster fills in: its `error` when the cluster could not be read."""

    error: str | None


@contextlib.contextmanager
def observing(
    target: MeshwrightTarget, access: ClusterAccess, what: str, *, into: Observed
) -> Iterator[kubernetes.client.ApiClient]:
    """A client for observing one cluster. A permanent failure becomes `into.error`, so the checks
    report that cluster among the others; a transient one is raised for the task's retries."""
    client = clients.cloud(target).kube_for(access)
    try:
        with kube_call(cluster=access.name, what=what, endpoint=access.endpoint, step=STEP):
            yield client
    except MeshwrightError as e:
        if is_transient(e):
            raise
        into.error = e.message
    finally:
        client.close()


@task(
    task_run_name="observe_control_plane[{access.name}]",
    cache_policy=NO_CACHE,
    persist_result=False,
    **RETRYING,
)
def observe_control_plane(
    spec: MeshSpec,
    access: ClusterAccess,
    others: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    settle: float = SETTLE_SECONDS,
) -> Observation:
    """What one cluster shows of the mesh's control plane (see meshwright.verify for the checks).

    Args:
        spec: the validated mesh spec.
        access: how to reach this cluster.
        others: every cluster's access (None for one that is gone), to tell a kubeconfig that points elsewhere.
        target: where the mesh is built.
        settle: how long a primary may keep a remote `syncing` whose kubeconfig works before it counts.
    """
    seen = Observation(cluster=access.name)
    role = spec.cluster(access.name).role
    with observing(target, access, "control-plane objects", into=seen) as client:
        core = kubernetes.client.CoreV1Api(client)
        seen.root = root_fingerprint(core)
        seen.eastwest_addresses = eastwest_addresses(core)
        if role is Role.REMOTE:
            service = naming.istiod_release(naming.revision(spec.istio.version))
            seen.istiod_addresses = istiod_addresses(client, service)
        if role is Role.PRIMARY:
            _observe_primary(spec, access, seen, others, target=target, settle=settle)
    return seen


# -- traffic (issue 12) ----------------------------------------------------------------------

REQUEST_TIMEOUT = 10.0
IN_FLIGHT = 8  # requests in flight at once
CONVERGE_POLL = 0.2  # seconds between two rounds of await_traffic


def converge_seconds(target: MeshwrightTarget) -> float:
    """How long `await_traffic` may wait for every placed workload to answer on this target."""
    return clients.cloud(target).waits.converge


GATEWAYS = ("networking.istio.io", "v1", "gateways")
VIRTUAL_SERVICES = ("networking.istio.io", "v1", "virtualservices")


@task(cache_policy=NO_CACHE, persist_result=False, **RETRYING)
def ingress_address(
    spec: MeshSpec,
    clusters: dict[str, ClusterAccess | None],
    *,
    target: MeshwrightTarget,
    timeout: float | None = None,
) -> str | None:
    """The load-balancer address of the ingress gateway where productpage runs.

    A Service still waiting for its address is waited for (a cloud load balancer takes a while);
    None when there is no ingress gateway Service, or no address within `timeout` (default: the
    target's, as for the east-west gateways).
    """
    cloud = clients.cloud(target)
    wait = cloud.waits.address if timeout is None else timeout
    deadline, poll = time.monotonic() + wait, max(cloud.waits.poll, 0.2)
    while True:
        services = [
            _ingress_service(target, c) for n in bookinfo.entry_clusters(spec) if (c := clusters.get(n))
        ]
        found = next((a[0] for svc in services if svc and (a := load_balancer_addresses(svc))), None)
        if found or not any(services) or time.monotonic() > deadline:
            return found
        time.sleep(poll)


def _ingress_service(target: MeshwrightTarget, access: ClusterAccess) -> Any:
    client = clients.cloud(target).kube_for(access)
    core = kubernetes.client.CoreV1Api(client)
    try:
        with kube_call(cluster=access.name, what="the ingress gateway", endpoint=access.endpoint, step=STEP):
            return read_or_none(
                lambda: core.read_namespaced_service(naming.INGRESS_RELEASE, naming.ISTIO_NAMESPACE)
            )
    finally:
        client.close()


def _opener(url: str) -> urllib.request.OpenerDirector:
    """No proxy for a loopback gateway (the sandbox's); the environment's proxy settings otherwise."""
    host = urllib.parse.urlsplit(url).hostname or ""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def get(url: str, *, timeout: float = REQUEST_TIMEOUT) -> tuple[int, bytes]:
    """One plain GET: the status and body, an HTTP error's too; status 0 and the reason when none came."""
    try:
        with _opener(url).open(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return 0, f"no answer from {url}: {reason}".encode()


def _base(address: str, port: int) -> str:
    return f"http://{address}" if port == 80 else f"http://{address}:{port}"


def _timed(base: str, path: str, *, timeout: float) -> Reply:
    """One GET read as a reply, with how long it took from the request to the answer's last byte."""
    started = time.perf_counter()
    status, body = get(base + path, timeout=timeout)
    return read_reply(path, status, body, ms=round((time.perf_counter() - started) * 1000, 2))


def _ask(base: str, paths: list[str], *, timeout: float = REQUEST_TIMEOUT) -> list[Reply]:
    """GET each path, IN_FLIGHT at a time (one after another, round trips to a distant load
    balancer add up to seconds)."""
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        return list(pool.map(lambda path: _timed(base, path, timeout=timeout), paths))


@task(task_run_name="await_traffic[{address}]", cache_policy=NO_CACHE, persist_result=False)
def await_traffic(spec: MeshSpec, address: str, *, within: float, port: int = 80) -> list[str]:
    """Ask the ingress until every placed workload has answered at least once: a fresh load balancer
    refuses for a while, and the endpoints of remote clusters reach the gateways after istiod's
    pushes. Nothing is counted here; returns what never answered within `within` seconds (empty
    when the mesh converged), so that the counted requests that follow meet a settled mesh.

    Args:
        spec: the validated mesh spec, with a `bookinfo` section.
        address: the ingress gateway's load-balancer address.
        within: seconds to wait at most (the target's, from the client factory).
        port: the gateway Service's HTTP port.
    """
    base, started = _base(address, port), time.monotonic()
    seen: list[Reply] = []
    while True:
        seen += [r for r in _ask(base, [REVIEWS_PATH, PAGE_PATH] * (IN_FLIGHT // 2)) if r.status == 200]
        missing = unanswered(spec, seen)
        waited = time.monotonic() - started
        if not missing or waited > within:
            break
        time.sleep(CONVERGE_POLL)
    log = get_run_logger()
    if missing:
        log.warning("after %.1fs, still no answer from %s through %s", waited, ", ".join(missing), address)
    else:
        log.info("every placed workload answered through %s after %.1fs", address, waited)
    return missing


@task(task_run_name="send_traffic[{address}]", cache_policy=NO_CACHE, persist_result=False)
def send_traffic(address: str, *, requests: int = 30, port: int = 80, warmup: float = 0.0) -> list[Reply]:
    """`requests` GETs of the reviews API and `requests` of the product page, as a user's curl would,
    IN_FLIGHT at a time; every answer counts, whatever it is (`await_traffic` comes first).

    Args:
        address: the ingress gateway's load-balancer address.
        requests: how many of each.
        port: the gateway Service's HTTP port.
        warmup: seconds to ask the product page first until it answers 200 (0: not at all).
    """
    base = _base(address, port)
    deadline = time.monotonic() + warmup
    while warmup > 0 and get(base + PAGE_PATH, timeout=min(REQUEST_TIMEOUT, warmup))[0] != 200:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return _ask(base, [path for _ in range(requests) for path in (REVIEWS_PATH, PAGE_PATH)])


def _names(items: Any) -> list[str]:
    return sorted(f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items)


def _cross_network(gateways: list[dict[str, Any]]) -> bool:
    return any(
        (s.get("port") or {}).get("number") == 15443
        and (s.get("tls") or {}).get("mode") == "AUTO_PASSTHROUGH"
        and any(h in ("*.local", "*") for h in s.get("hosts") or [])
        for g in gateways
        if g["metadata"]["namespace"] == naming.ISTIO_NAMESPACE
        for s in (g.get("spec") or {}).get("servers") or []
    )


def _bookinfo_state(client: kubernetes.client.ApiClient, state: BookinfoState, ns: str) -> None:
    core = kubernetes.client.CoreV1Api(client)
    namespace = read_or_none(lambda: core.read_namespace(ns))
    state.namespace = namespace is not None
    if namespace is None:
        return
    state.injection = ((namespace.metadata.labels or {}) if namespace.metadata else {}).get(
        bookinfo.INJECTION_LABEL
    ) == "enabled"
    state.services = sorted(
        str(s.metadata.name) for s in core.list_namespaced_service(ns).items if s.metadata
    )
    state.without_sidecar = sorted(
        str(p.metadata.name)
        for p in core.list_namespaced_pod(ns).items
        if p.metadata and not any(c.name == "istio-proxy" for c in (p.spec.containers if p.spec else []))
    )
    custom = kubernetes.client.CustomObjectsApi(client)
    gateways: Any = read_or_none(lambda: custom.list_cluster_custom_object(*GATEWAYS)) or {}
    services: Any = read_or_none(lambda: custom.list_cluster_custom_object(*VIRTUAL_SERVICES)) or {}
    state.gateways = _names(gateways.get("items") or [])
    state.virtual_services = _names(services.get("items") or [])
    state.cross_network = _cross_network(gateways.get("items") or [])


@task(
    task_run_name="observe_bookinfo[{access.name}]", cache_policy=NO_CACHE, persist_result=False, **RETRYING
)
def observe_bookinfo(spec: MeshSpec, access: ClusterAccess, *, target: MeshwrightTarget) -> BookinfoState:
    """What one cluster holds of Bookinfo (namespace label, Services, sidecars, Gateways)."""
    assert spec.bookinfo is not None
    state = BookinfoState(cluster=access.name, pod_cidr=access.pod_cidr)
    with observing(target, access, "bookinfo objects", into=state) as client:
        _bookinfo_state(client, state, spec.bookinfo.namespace)
    return state


def _rule(fw: Any) -> dict[str, Any]:
    def entries(items: Any) -> list[dict[str, Any]]:
        return [{"IPProtocol": a.I_p_protocol, "ports": list(a.ports)} for a in items]

    return {
        "name": fw.name,
        "network": fw.network,
        "direction": fw.direction or "INGRESS",
        "priority": fw.priority if fw.priority else 1000,
        "disabled": bool(fw.disabled),
        "sourceRanges": list(fw.source_ranges),
        "targetTags": list(fw.target_tags),
        "allowed": entries(fw.allowed),
        "denied": entries(fw.denied),
    }


@task(cache_policy=NO_CACHE, persist_result=False, **RETRYING)
def read_firewalls(spec: MeshSpec, *, target: MeshwrightTarget) -> list[dict[str, Any]] | None:
    """The VPC firewall rules of the spec's project (None when they cannot be read: no finding then)."""
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=None, step=STEP):
            return [_rule(fw) for fw in cloud.firewalls.list(project=spec.project)]
    except MeshwrightError as e:
        if is_transient(e):
            raise
        return None
