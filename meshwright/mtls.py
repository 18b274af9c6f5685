"""Proof that Bookinfo's namespace holds its proxies to mutual TLS, as an operator would give it: pure.

Two facts, both readable on any cluster (GKE or the sandbox):

- **The policy.** Each primary's PeerAuthentications in Bookinfo's namespace and in the root
  namespace `istio-system`, composed as istiod composes a namespace's mode (istio/istio
  pilot/pkg/model/authentication.go `addPeerAuthentication`: the oldest policy without selector of a
  namespace counts, UNSET inherits the mesh-wide one, PERMISSIVE without either). Only primaries are
  read: istiod reads Istio's config from its own cluster, and a remote's proxies take theirs from
  their primary. A workload policy (with a selector) that relaxes STRICT is named too.
- **The probe.** In each cluster that runs Bookinfo workloads, a pod *outside the mesh* (label
  `sidecar.istio.io/inject: "false"`, which every Istio injector webhook's objectSelector excludes;
  Istio's samples/curl image) runs one `curl` to a Bookinfo Service placed there and ends; its exit
  code is read from the pod's status, and on an error the kubelet puts the tail of its output in the
  termination message (`terminationMessagePolicy: FallbackToLogsOnError`), so neither exec nor log
  access is needed. Under STRICT the server's proxy resets the plaintext connection: curl exits 56
  `Recv failure: Connection reset by peer` (the `legacy` namespace's sleep in istio.io's "Mutual TLS
  Migration", https://istio.io/latest/docs/tasks/security/authentication/mtls-migration/). A probe
  that got a sidecar anyway proves nothing and says so.

Mesh traffic passing under the same policy is the traffic check's verdict (meshwright.traffic):
the ingress gateway is an mTLS client of productpage, and reviews, details and ratings answer across
clusters through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, computed_field

from meshwright import bookinfo
from meshwright.bookinfo_catalog import SERVICES
from meshwright.errors import PermanentError

if TYPE_CHECKING:
    from meshwright.spec import MeshSpec
    from meshwright.traffic import TrafficReport

ROOT_NAMESPACE = "istio-system"
STRICT, PERMISSIVE = "STRICT", "PERMISSIVE"
MODES = ("STRICT", "PERMISSIVE", "DISABLE")
PROBE = "meshwright-plaintext-probe"
PROBE_IMAGE = "docker.io/curlimages/curl:8.16.0"  # samples/curl/curl.yaml
INJECT_LABEL = "sidecar.istio.io/inject"
RESET_EXIT = 56  # CURLE_RECV_ERROR: the peer reset the connection
MAX_TIME = 5  # seconds curl may take


class Probe(BaseModel):
    """One plaintext request from a pod without sidecar, as its pod's status tells it."""

    target: str  # the URL asked
    exit_code: int | None = None  # curl's; None when the pod never ended
    message: str = ""  # the termination message (curl's error line), or why there is no exit code
    sidecar: bool = False  # the probe pod got an istio-proxy after all (the probe proves nothing)

    @property
    def refused(self) -> bool:
        return self.exit_code == RESET_EXIT and not self.sidecar

    @property
    def answered(self) -> bool:
        return self.exit_code == 0 and not self.sidecar


class MtlsSeen(BaseModel):
    """What one cluster shows: its policy (primaries) and its probe (clusters with workloads)."""

    cluster: str
    mode: str | None = None  # the namespace's composed mode; None: not read (a remote)
    source: str = ""  # the policy it comes from, namespace/name ("" when none)
    relaxed: list[str] = Field(default_factory=list)  # "ns/name (app=x): PERMISSIVE"
    probe: Probe | None = None
    error: str | None = None


class MtlsReport(BaseModel):
    """The spec's mode against what each cluster shows; `summary()` is the report's one line."""

    expected: str
    clusters: list[MtlsSeen]
    mesh_traffic: str  # what the traffic check says of mesh traffic under the policy
    problems: list[str]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: the mode, what the plaintext probes met, and mesh traffic under the policy."""
        probed = [s for s in self.clusters if s.probe is not None]
        if not self.ok:
            return (
                f"mTLS {self.expected}: FAILED: {'; '.join(self.problems)}; mesh traffic {self.mesh_traffic}"
            )
        where = ", ".join(s.cluster for s in probed) or "no cluster"
        if self.expected == STRICT:
            said = next((_curl_said(s.probe.message) for s in probed if s.probe and s.probe.message), "")
            met = f"plaintext refused in {where}" + (f" (curl exit {RESET_EXIT}: {said})" if said else "")
        else:
            met = f"plaintext accepted in {where}"
        return f"mTLS {self.expected}: {met}; mesh traffic {self.mesh_traffic}"


def _curl_said(message: str) -> str:
    """`curl: (56) Recv failure: Connection reset by peer` -> `Recv failure: Connection reset by peer`."""
    lines = message.strip().splitlines()
    return lines[-1].split(") ", 1)[-1] if lines else ""


def _age(policy: dict[str, Any]) -> tuple[str, str, str]:
    meta = policy.get("metadata") or {}
    return str(meta.get("creationTimestamp", "")), str(meta.get("name", "")), str(meta.get("namespace", ""))


def _mode(policy: dict[str, Any]) -> str:
    mode = ((policy.get("spec") or {}).get("mtls") or {}).get("mode")
    return str(mode) if mode in MODES else "UNSET"


def _selector(policy: dict[str, Any]) -> dict[str, str]:
    return dict(((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def _oldest_wide(policies: list[dict[str, Any]], namespace: str) -> dict[str, Any] | None:
    wide = [p for p in policies if _age(p)[2] == namespace and not _selector(p)]
    return min(wide, key=_age) if wide else None


def namespace_mode(policies: list[dict[str, Any]], namespace: str) -> tuple[str, str]:
    """(mode, namespace/name of the policy that sets it) of `namespace` as istiod composes it."""
    for policy in (_oldest_wide(policies, namespace), _oldest_wide(policies, ROOT_NAMESPACE)):
        if policy is not None and _mode(policy) != "UNSET":
            return _mode(policy), f"{_age(policy)[2]}/{_age(policy)[1]}"
    return PERMISSIVE, ""


def relaxing(policies: list[dict[str, Any]], namespace: str) -> list[str]:
    """Workload policies of `namespace` whose mode, or a port's, is not STRICT."""
    found = []
    for p in (p for p in policies if _age(p)[2] == namespace and _selector(p)):
        ports = (p.get("spec") or {}).get("portLevelMtls") or {}
        modes = [_mode(p)] + [str((m or {}).get("mode", "UNSET")) for m in ports.values()]
        weak = sorted({m for m in modes if m in (PERMISSIVE, "DISABLE")})
        if weak:
            labels = ",".join(f"{k}={v}" for k, v in _selector(p).items())
            found.append(f"{namespace}/{_age(p)[1]} ({labels}): {'/'.join(weak)}")
    return found


def probe_target(spec: MeshSpec, cluster: str) -> str | None:
    """The URL the probe asks in `cluster`: the first Bookinfo Service with a workload placed there
    (a caller without sidecar goes through kube-proxy, to its own cluster's pods only)."""
    assert spec.bookinfo is not None
    here = {w.service for w in bookinfo.placed(spec, cluster)}
    service = next((s for s in SERVICES if s in here), None)
    return f"http://{service}.{spec.bookinfo.namespace}:{bookinfo.PORT}/" if service else None


def probe_pod(namespace: str, url: str) -> dict[str, Any]:
    """A pod outside the mesh that sends one plaintext GET and ends (never restarted)."""
    command = ["curl", "-sS", "-o", "/dev/null", "--max-time", str(MAX_TIME), url]
    container = {
        "name": "curl",
        "image": PROBE_IMAGE,
        "command": command,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE, "namespace": namespace, "labels": {"app": PROBE, INJECT_LABEL: "false"}},
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


class MtlsBroken(PermanentError):
    """Bookinfo's namespace does not hold its proxies to the mode the spec asks."""


def check_mtls(spec: MeshSpec, seen: dict[str, MtlsSeen], traffic: TrafficReport | None) -> MtlsReport:
    """The policy of every primary and the probe of every cluster with workloads, against the spec."""
    assert spec.bookinfo is not None
    expected = spec.bookinfo.mtls.value
    problems = [f"mTLS: {c}: {s.error}" for c, s in seen.items() if s.error]
    for s in seen.values():
        problems += _policy_problems(expected, s, spec.bookinfo.namespace) + _probe_problems(expected, s)
    clusters = [seen[c.name] for c in spec.clusters if c.name in seen]
    return MtlsReport(
        expected=expected, clusters=clusters, mesh_traffic=_mesh_traffic(traffic), problems=problems
    )


def _policy_problems(expected: str, s: MtlsSeen, namespace: str) -> list[str]:
    found = []
    if s.mode is not None and s.mode != expected:
        by = f"PeerAuthentication {s.source}" if s.source else "no PeerAuthentication"
        found.append(f"mTLS {expected} expected: {s.cluster}: namespace {namespace} is {s.mode} ({by})")
    if expected == STRICT:
        found += [f"mTLS STRICT expected: {s.cluster}: PeerAuthentication {r}" for r in s.relaxed]
    return found


def _probe_problems(expected: str, s: MtlsSeen) -> list[str]:
    probe, head = s.probe, f"mTLS {expected} expected: {s.cluster}:"
    if probe is None:
        return []
    if probe.sidecar:
        return [f"{head} the probe pod got a sidecar despite {INJECT_LABEL}=false: it proves nothing"]
    if expected == STRICT and probe.answered:
        return [f"{head} plaintext from a pod without sidecar was answered ({probe.target})"]
    if expected == PERMISSIVE and probe.refused:
        return [f"{head} plaintext from a pod without sidecar was refused ({probe.target}: {probe.message})"]
    if probe.exit_code not in (0, RESET_EXIT):
        said = f"exited {probe.exit_code}" if probe.exit_code is not None else "never ended"
        return [f"{head} the plaintext probe to {probe.target} {said}: {probe.message or 'no message'}"]
    return []


def _mesh_traffic(traffic: TrafficReport | None) -> str:
    if traffic is None:
        return "not checked"
    if not traffic.ok:
        return "fails (see the traffic check)"
    served = ", ".join(sorted(traffic.served)) or "no cluster"
    return f"passes ({traffic.requests} requests through the ingress, reviews served in {served})"


def mtls_failure(report: MtlsReport) -> MtlsBroken:
    lines = "\n".join(f"  {p}" for p in report.problems)
    return MtlsBroken(f"mTLS of Bookinfo has {len(report.problems)} problem(s):\n{lines}", step="verify")
