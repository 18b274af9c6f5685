"""What an istiod knows about the other clusters of its mesh: a model, pure of HTTP.

It reads the inputs real istiod reads - its Deployment's `CLUSTER_ID` (and
`PILOT_REMOTE_CLUSTER_TIMEOUT`), the `cacerts` secret and the secrets labelled
`istio/multiCluster=true` in its namespace - and follows the rules of Istio's secret controller
(pkg/kube/multicluster/secretcontroller.go):

- each data key of a remote secret is a cluster ID; a key equal to istiod's own ID is ignored, and
  so is an ID that another secret registered first;
- a kubeconfig that cannot be loaded (istiod's YAML decoder refuses deep nesting and alias bombs:
  see `boundedyaml`), or whose user would run code or read files (exec, auth providers other than
  oidc, tokenFile, client certificate/key files), is refused: never listed in clusterz, and kept as
  a `Failure` by secret name (`IstiodModel.failed`), as istiod logs it, without affecting any other;
- every other kubeconfig is tried for real (by the injected `Probe`): `synced` once its API answers,
  `syncing` until `PILOT_REMOTE_CLUSTER_TIMEOUT` (30s by default) has passed, then `timeout`.

A changed kubeconfig (a rotated token) is made before it is broken, as since Istio 1.30
(secretcontroller.go `addRemoteConfig`: "Don't stop the previous cluster here - it will be stopped
after the new cluster syncs"; clusterstore.go `Swap`, `PendingClusterSwap.Complete`): clusterz
shows the new kubeconfig's status at once, while the proxies keep the previous one's endpoints
(`serving`) until the new one has synced, if the previous one was synced when the secret changed.
So a token revoked before its replacement is in breaks the cluster; one revoked after does not.

One divergence, on purpose: real istiod keeps saying `synced` for a cluster that went away after its
informers synced; this model re-probes (results cached briefly) so a deleted cluster stops being
`synced`, which is what an operator reading clusterz needs to learn.

Probes run as real istiod runs each remote cluster: apart (`go remoteCluster.Run` in
secretcontroller.go), here on a small pool of threads and never under a lock. A caller waits for
them at most `wait` seconds in all, and not at all for a kubeconfig whose last probe outlasted that
wait (an API server that takes the connection and never answers): it reads that one's last result,
or `syncing` while there is none, so no remote can slow down clusterz or the data plane.

`clusterz` answers as `/debug/clusterz` does: the config cluster first (no secret, `synced`),
then one entry per registered remote.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from meshwright.sandbox import dotted
from meshwright.sandbox.mesh import boundedyaml

log = logging.getLogger(__name__)
NAMESPACE = "istio-system"
SECRET_LABEL = "istio/multiCluster"
DEFAULT_CLUSTER_ID = "Kubernetes"  # what the istiod chart sets when clusterName is empty
DEFAULT_REVISION = "default"  # an istiod installed without `revision`, and a pod it injected
REVISION_LABEL = "istio.io/rev"
DEFAULT_REMOTE_TIMEOUT = 30.0
SYNCED, SYNCING, TIMEOUT, CLOSED = "synced", "syncing", "timeout", "closed"
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_ALLOWED_AUTH_PROVIDERS = {"oidc"}
MAX_PROBED = 4096  # probe results kept at most (only kubeconfigs still registered are kept at all)
PROBE_WAIT = 0.5  # seconds a caller waits, in all, for the probes it needs
PROBE_WORKERS = 16


class ClusterObjects(Protocol):
    """Read access to one cluster's objects, by type key ("group/plural", "" group for core)."""

    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class RemoteConfig:
    """The parts of a remote kubeconfig a probe needs. Holds a token: never log or return it."""

    server: str
    ca_pem: bytes | None = field(repr=False)
    token: str | None = field(repr=False)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    reason: str = ""


Probe = Callable[[RemoteConfig], ProbeResult]
NOT_YET = ProbeResult(False, "no answer yet from its API server")


@dataclass(frozen=True)
class Istiod:
    """One ready istiod Deployment and the settings it runs with.

    `revision` is what istiod serves as (its `REVISION` env, which Istio's chart sets to
    `revision | default "default"`); `image` its discovery container's image, from which its injector
    takes the proxy image (same hub and tag: the chart's `global.hub`/`global.tag`).
    """

    name: str
    uid: str
    cluster_id: str
    remote_timeout: float
    pod_labels: dict[str, str]
    revision: str = DEFAULT_REVISION
    image: str = ""


@dataclass
class _Registration:
    secret: str  # "<namespace>/<name>", as istiod names it
    sha: str
    config: RemoteConfig
    since: float
    previous: _Registration | None = None  # still serving until this one syncs (make-before-break)


@dataclass(frozen=True)
class Failure:
    """A kubeconfig istiod could not make a cluster of: logged by istiod, never listed in clusterz."""

    secret: str
    cluster_id: str
    sha: str
    error: str


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration string ("30s", "1m30s", "250ms"); None if it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def _discovery(deployment: dict[str, Any]) -> dict[str, Any]:
    """istiod's container (`discovery` in Istio's chart; the first one otherwise)."""
    containers = dotted.get(deployment, "spec.template.spec.containers", []) or []
    return next((c for c in containers if c.get("name") == "discovery"), containers[0] if containers else {})


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    chosen = _discovery(deployment)
    return {e["name"]: str(e.get("value", "")) for e in chosen.get("env") or [] if "name" in e}


def _ready(deployment: dict[str, Any]) -> bool:
    return int(dotted.get(deployment, "status.readyReplicas", 0) or 0) > 0


def istiods(objects: ClusterObjects) -> list[Istiod]:
    """Every ready Deployment labelled `app: istiod` in istio-system (bundled or Istio's charts), one
    per revision that runs: each has its own secret controller and clusterz (`IstiodModel` keys
    them by Deployment uid), reading the same remote secrets."""
    found = []
    for dep in objects.list("apps/deployments", NAMESPACE):
        if dotted.get(dep, "metadata.labels.app") != "istiod" or not _ready(dep):
            continue
        env = _env(dep)
        timeout = (
            go_duration(env.get("PILOT_REMOTE_CLUSTER_TIMEOUT", ""))
            if "PILOT_REMOTE_CLUSTER_TIMEOUT" in env
            else None
        )
        pod_labels = dict(dotted.get(dep, "spec.template.metadata.labels", {}) or {})
        found.append(
            Istiod(
                name=dep["metadata"]["name"],
                uid=dep["metadata"].get("uid", dep["metadata"]["name"]),
                cluster_id=env.get("CLUSTER_ID") or DEFAULT_CLUSTER_ID,
                remote_timeout=DEFAULT_REMOTE_TIMEOUT if timeout is None else timeout,
                pod_labels=pod_labels,
                revision=env.get("REVISION") or pod_labels.get(REVISION_LABEL) or DEFAULT_REVISION,
                image=str(_discovery(dep).get("image") or ""),
            )
        )
    return found


def root_fingerprints(objects: ClusterObjects) -> list[str]:
    """SHA-256 of each root in `cacerts` (root-cert.pem, or ca.crt): the roots istiod would trust."""
    secret = next(
        (s for s in objects.list("/secrets", NAMESPACE) if s["metadata"]["name"] == "cacerts"), None
    )
    data = (secret or {}).get("data") or {}
    pem = data.get("root-cert.pem") or data.get("ca.crt")
    if not pem:
        return []
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----", base64.b64decode(pem))
    return [_pem_fingerprint(b) for b in blocks]


def _pem_fingerprint(block: bytes) -> str:
    body = b"".join(block.split(b"\n")[1:-1]).replace(b"\r", b"")
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def load_kubeconfig(raw: bytes) -> RemoteConfig | str:
    """The current context's server, CA and token; else why istiod refuses the kubeconfig, in the words
    it logs (istio/istio pkg/kube/util.go `NewUntrustedRestConfig` and `sanitizeKubeConfig`)."""
    if not raw:
        return "kubeconfig is empty"
    try:
        doc = boundedyaml.load(raw)
    except (yaml.YAMLError, boundedyaml.Refused) as e:
        return f"kubeconfig cannot be loaded: {_first_line(e)}"
    if not isinstance(doc, dict):
        return "kubeconfig cannot be loaded: not a kubeconfig document"
    refused = next((why for u in doc.get("users") or [] if isinstance(u, dict) and (why := _unsafe(u))), None)
    if refused:
        return f"kubeconfig is not allowed: {refused}"
    context = _named(doc.get("contexts"), doc.get("current-context"))
    cluster = _named(doc.get("clusters"), (context or {}).get("cluster"))
    server = (cluster or {}).get("server")
    if not cluster or not isinstance(server, str) or not server:
        return "kubeconfig is not valid: no server found for the current context's cluster"
    user = _named(doc.get("users"), (context or {}).get("user")) or {}
    token = user.get("token")
    return RemoteConfig(
        server=server,
        ca_pem=_b64(cluster.get("certificate-authority-data")),
        token=token if isinstance(token, str) else None,
    )


def parse_kubeconfig(raw: bytes) -> RemoteConfig | None:
    """The kubeconfig's RemoteConfig; None when istiod would refuse it."""
    loaded = load_kubeconfig(raw)
    return loaded if isinstance(loaded, RemoteConfig) else None


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def _named(items: Any, name: Any) -> dict[str, Any] | None:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            for key in ("cluster", "context", "user"):
                if isinstance(item.get(key), dict):
                    return dict(item[key])
    return None


def _unsafe(entry: dict[str, Any]) -> str | None:
    """What `sanitizeKubeConfig` refuses in a user, checked in its order; None when nothing is."""
    user: dict[str, Any] = entry["user"] if isinstance(entry.get("user"), dict) else {}
    auth_provider = user.get("auth-provider")
    provider = auth_provider.get("name") if isinstance(auth_provider, dict) else None
    if provider and provider not in _ALLOWED_AUTH_PROVIDERS:
        return f"auth provider {provider} is not allowed"
    for key, field_name in (
        ("client-key", "clientKey"),
        ("client-certificate", "clientCertificate"),
        ("tokenFile", "tokenFile"),
    ):
        if user.get(key):
            return f"{field_name} is not allowed"
    return "exec is not allowed" if user.get("exec") else None


def _b64(text: Any) -> bytes | None:
    try:
        return base64.b64decode(text) if text else None
    except (binascii.Error, TypeError):
        return None


class IstiodModel:
    """The secret controllers of every emulated istiod, and their probes' recent results."""

    def __init__(
        self,
        probe: Probe,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_seconds: float = 1.0,
        wait: float = PROBE_WAIT,
    ) -> None:
        self.probe, self.clock, self.cache_seconds, self.wait = probe, clock, cache_seconds, wait
        self._registered: dict[tuple[str, str], dict[str, _Registration]] = {}
        self._failed: dict[tuple[str, str], dict[str, Failure]] = {}  # by cluster id
        self._probed: dict[str, tuple[float, ProbeResult]] = {}
        self._running: dict[str, Future[None]] = {}
        self._slow: set[str] = set()  # kubeconfigs whose last probe outlasted `wait`
        self._live: set[str] = set()
        self._loaded: dict[str, RemoteConfig | str] = {}  # load_kubeconfig by the kubeconfig's sha
        self._pool = ThreadPoolExecutor(max_workers=PROBE_WORKERS, thread_name_prefix="istiod-probe")
        self._lock = threading.Lock()

    def clusterz(self, cluster: str, objects: ClusterObjects, istiod: Istiod) -> list[dict[str, str]]:
        """What `/debug/clusterz` of `istiod` (running in sandbox cluster `cluster`) answers now."""
        with self._lock:
            registered = self._reconcile((cluster, istiod.uid), objects, istiod)
        self._refresh([r for reg in registered.values() for r in (reg, reg.previous) if r is not None])
        self._complete(registered)
        entries = [{"id": istiod.cluster_id, "secretName": "", "syncStatus": SYNCED}]
        for cid, reg in registered.items():
            entries.append({"id": cid, "secretName": reg.secret, "syncStatus": self._status(reg, istiod)})
        return entries

    def failed(self, cluster: str, istiod: Istiod) -> list[Failure]:
        """The kubeconfigs `istiod` refused at its last reconcile, by secret: what its log says
        ("Add cluster: create remote cluster failed: ..."), while clusterz does not list them."""
        with self._lock:
            return sorted(
                self._failed.get((cluster, istiod.uid), {}).values(), key=lambda f: (f.secret, f.cluster_id)
            )

    @property
    def cached_probes(self) -> int:
        """How many probe results are kept (those of kubeconfigs some istiod still holds)."""
        with self._lock:
            return len(self._probed)

    @property
    def cached_kubeconfigs(self) -> int:
        """How many loaded kubeconfigs are kept (those some istiod still holds or refused)."""
        with self._lock:
            return len(self._loaded)

    def servers(self, cluster: str, istiod: Istiod) -> dict[str, str]:
        """The API server each registered remote of `istiod` is reached at, by cluster id."""
        with self._lock:
            return {
                cid: reg.config.server for cid, reg in self._registered.get((cluster, istiod.uid), {}).items()
            }

    def serving(self, cluster: str, istiod: Istiod) -> dict[str, str]:
        """The API server whose endpoints the proxies get, by cluster id: the registered kubeconfig's
        once synced, else the previous one's while it still works (istiod's `AllReady` keeps a
        ready previous cluster until its replacement syncs); a cluster with neither is left out."""
        with self._lock:
            regs = dict(self._registered.get((cluster, istiod.uid), {}))
            return {cid: chosen.config.server for cid, reg in regs.items() if (chosen := self._ready(reg))}

    def _ready(self, reg: _Registration) -> _Registration | None:
        if self._latest(reg.sha).ok:
            return reg
        previous = reg.previous
        return previous if previous is not None and self._latest(previous.sha).ok else None

    def _complete(self, registered: dict[str, _Registration]) -> None:
        """The previous kubeconfig of a registration that synced is let go (`PendingClusterSwap.Complete`)."""
        with self._lock:
            for reg in registered.values():
                if reg.previous is not None and self._latest(reg.sha).ok:
                    reg.previous = None

    def reasons(self, cluster: str, istiod: Istiod) -> dict[str, str]:
        """Why each remote of `istiod` is not synced, as its log would say (for the sandbox's own log)."""
        with self._lock:
            regs = dict(self._registered.get((cluster, istiod.uid), {}))
            return {cid: r.reason for cid, reg in regs.items() if not (r := self._latest(reg.sha)).ok}

    def _reconcile(
        self, key: tuple[str, str], objects: ClusterObjects, istiod: Istiod
    ) -> dict[str, _Registration]:
        regs, failed = self._registered.setdefault(key, {}), self._failed.setdefault(key, {})
        secrets = sorted(
            (
                s
                for s in objects.list("/secrets", NAMESPACE)
                if dotted.get(s, f"metadata.labels.{SECRET_LABEL}") == "true"
            ),
            key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]),
        )
        data = {f"{NAMESPACE}/{s['metadata']['name']}": _data(s) for s in secrets}
        for cid in [c for c, r in regs.items() if c not in data.get(r.secret, {})]:
            del regs[cid]  # the secret, or its key, is gone: the cluster is deleted
        for cid in [c for c, f in failed.items() if c not in data.get(f.secret, {})]:
            del failed[cid]
        for secret, keys in data.items():
            for cid, value in sorted(keys.items()):
                self._register(regs, failed, secret, cid, value, istiod, where=key[0])
        self._prune()
        return dict(regs)

    def _register(
        self,
        regs: dict[str, _Registration],
        failed: dict[str, Failure],
        secret: str,
        cid: str,
        value: str,
        istiod: Istiod,
        *,
        where: str,
    ) -> None:
        if cid == istiod.cluster_id:
            return  # "ignoring cluster as it would overwrite the config cluster"
        prev = regs.get(cid)
        if prev is not None and prev.secret != secret:
            return  # "cluster has already been registered" by another secret
        raw = _b64(value) or b""
        sha = hashlib.sha256(raw).hexdigest()
        if (prev is not None and prev.sha == sha) or (cid in failed and failed[cid].sha == sha):
            return  # "skipping update (kubeconfig are identical)": never parsed twice
        loaded = self._load(sha, raw)
        if isinstance(loaded, str):
            regs.pop(cid, None)  # refused: "create remote cluster failed", never listed
            failed[cid] = Failure(secret, cid, sha, loaded)
            log.warning(
                "istiod %s in %s: Add cluster %s (secret %s): create remote cluster failed: %s",
                istiod.name,
                where,
                cid,
                secret,
                loaded,
            )
            return
        failed.pop(cid, None)
        kept = prev if prev is not None and self._latest(prev.sha).ok else None
        previous = _Registration(kept.secret, kept.sha, kept.config, kept.since) if kept else None
        regs[cid] = _Registration(
            secret=secret, sha=sha, config=loaded, since=self.clock(), previous=previous
        )

    def _load(self, sha: str, raw: bytes) -> RemoteConfig | str:
        """`load_kubeconfig`, once per content: every primary's istiod holds the same remote secret of
        each other cluster (2,450 loads of 49 kubeconfigs at 50 primaries), and the result depends on
        the bytes alone. Kept while some istiod holds (or refused) that content: see `_prune`."""
        loaded = self._loaded.get(sha)
        if loaded is None:
            loaded = self._loaded[sha] = load_kubeconfig(raw)
        return loaded

    def _prune(self) -> None:
        """Forget probe results of kubeconfigs no istiod holds any more; keep the newest MAX_PROBED."""
        self._live = live = {
            sha for regs in self._registered.values() for reg in regs.values() for sha in _shas(reg)
        }
        for sha in [s for s in self._probed if s not in live]:
            del self._probed[sha]
        self._slow &= live
        held = live | {f.sha for failed in self._failed.values() for f in failed.values()}
        for sha in [s for s in self._loaded if s not in held]:
            del self._loaded[sha]
        if len(self._probed) > MAX_PROBED:
            newest = sorted(self._probed.items(), key=lambda item: item[1][0])[-MAX_PROBED:]
            self._probed = dict(newest)

    def _status(self, reg: _Registration, istiod: Istiod) -> str:
        with self._lock:
            result = self._latest(reg.sha)
        if result.ok:
            return SYNCED
        if istiod.remote_timeout > 0 and self.clock() - reg.since >= istiod.remote_timeout:
            return TIMEOUT
        return SYNCING

    def _refresh(self, regs: Iterable[_Registration]) -> None:
        """Start a probe for every kubeconfig without a fresh result; wait (at most `wait` in all) for
        those not known to be slow."""
        waiting: dict[str, Future[None]] = {}
        with self._lock:
            for reg in regs:
                if self._cached(reg.sha) is not None:
                    continue
                running = self._running.get(reg.sha) or self._start(reg)
                if reg.sha not in self._slow:
                    waiting[reg.sha] = running
        if not waiting:
            return
        _, late = wait_for(waiting.values(), timeout=self.wait)
        with self._lock:
            self._slow |= {sha for sha, f in waiting.items() if f in late}

    def _start(self, reg: _Registration) -> Future[None]:
        future = self._pool.submit(self._run, reg.sha, reg.config)
        self._running[reg.sha] = future
        return future

    def _run(self, sha: str, config: RemoteConfig) -> None:
        """One probe, on the pool: network I/O, never under the lock."""
        started = time.monotonic()
        try:
            result = self.probe(config)
        except Exception as e:  # a probe's bug must not leave the cluster syncing for ever
            result = ProbeResult(False, f"probe failed: {type(e).__name__}")
        with self._lock:
            self._running.pop(sha, None)
            if sha in self._live:
                self._probed[sha] = (self.clock(), result)
            if time.monotonic() - started <= self.wait:
                self._slow.discard(sha)

    def _latest(self, sha: str) -> ProbeResult:
        hit = self._probed.get(sha)
        return hit[1] if hit else NOT_YET

    def _cached(self, sha: str) -> ProbeResult | None:
        hit = self._probed.get(sha)
        return hit[1] if hit and self.clock() - hit[0] < self.cache_seconds else None


def _shas(reg: _Registration) -> list[str]:
    return [reg.sha] + ([reg.previous.sha] if reg.previous is not None else [])


def _data(secret: dict[str, Any]) -> dict[str, str]:
    """A secret's data as istiod's informer decodes it: string keys to (base64) string values."""
    data = secret.get("data")
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str)}
