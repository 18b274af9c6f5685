"""The steps of `up` for a spec and what each waits for: the one description of the flow's DAG.

`up_mesh` submits one task per step, in this order, each waiting for exactly its `after` steps
(and taking the results it needs from them); `plan` renders the same steps with the resources they
create. So the plan a user reads is the graph the flow runs, and they cannot drift. Pure: no I/O.

A step's key reads as its task run reads in the Prefect UI: `install_istiod[central]`,
`exchange_remote_secrets[west]` (west's secret, into every primary that reads west).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from meshwright import istio_values, naming
from meshwright.remote_secrets import pairs
from meshwright.spec import ClusterSpec, MeshSpec

ROOT = "ensure_root_ca"
CREATE = "create_cluster"
WAIT = "wait_cluster"
FIREWALL = "ensure_firewall"
KUBECONFIG = "write_kubeconfig"
NAMESPACE = "prepare_namespace"
CACERTS = "ensure_cacerts"
INSTALL = "install_release"
READY = "wait_release_ready"
ADDRESS = "gateway_address"
EXPOSE = "expose_on_gateway"
SECRET = "exchange_remote_secrets"  # one step per source, into every primary that reads it
PRUNE_SECRETS = "prune_remote_secrets"
BOOKINFO = "deploy_bookinfo"
VERIFY = "verify"
# Steps of one cluster's Istio chain: what its Bookinfo (and a remote's Bookinfo) waits for.
CHAIN = (NAMESPACE, CACERTS, INSTALL, READY, ADDRESS, EXPOSE)


@dataclass(frozen=True)
class StepKey:
    """Which step: its kind, and the cluster and release it is about."""

    kind: str
    cluster: str | None = None
    release: str | None = None  # install_release, wait_release_ready

    def __str__(self) -> str:
        name = {INSTALL: f"install_{self.release}", READY: f"wait_ready_{self.release}"}.get(
            self.kind, self.kind
        )
        return f"{name}[{self.cluster}]" if self.cluster else name


@dataclass(frozen=True)
class Step:
    key: StepKey
    after: tuple[StepKey, ...] = ()


def steps(spec: MeshSpec) -> list[Step]:
    """Every step of `up` in an order where each comes after all it waits for."""
    found = [Step(StepKey(ROOT))]
    found += [Step(StepKey(CREATE, c.name)) for c in spec.clusters]
    found += [Step(StepKey(WAIT, c.name), (StepKey(CREATE, c.name),)) for c in spec.clusters]
    running = tuple(StepKey(WAIT, c.name) for c in spec.clusters)
    found += [Step(StepKey(FIREWALL), running), Step(StepKey(KUBECONFIG), running)]
    for c in spec.primaries:
        found += [*_control_plane(c), *_gateway(spec, c, after=install(c.name, naming.ISTIOD_RELEASE))]
    for c in spec.remotes:  # after the primaries: a remote's istiod takes its primary's gateway address
        found += list(_control_plane(c))
    read_by = readers(spec)
    found += [_secret(source, primaries) for source, primaries in read_by.items()]
    for c in spec.primaries:  # once its own are in: a cluster is never without a secret it needs
        mine = tuple(StepKey(SECRET, source) for source, ps in read_by.items() if c.name in ps)
        found.append(Step(StepKey(PRUNE_SECRETS, c.name), mine or (StepKey(WAIT, c.name),)))
    for c in spec.remotes:  # Istio's order: a remote's gateways once its remote secret is in
        found += list(_gateway(spec, c, after=StepKey(SECRET, c.name)))
    if spec.bookinfo is not None:
        found += [Step(StepKey(BOOKINFO, c.name), _bookinfo_after(spec, c, found)) for c in spec.clusters]
    last = (FIREWALL, BOOKINFO, PRUNE_SECRETS)
    found.append(Step(StepKey(VERIFY), tuple(s.key for s in found if s.key.kind in last)))
    return found


def _control_plane(c: ClusterSpec) -> Iterator[Step]:
    """One cluster's istio-system, cacerts, base and istiod, as Istio's procedure orders them.

    A remote installs after its primary's control plane: its base once the primary's istiod is
    installed, its istiod once the primary's east-west gateway has an address (istiod dials it).
    """
    name = c.name
    ns, base, istiod = (
        StepKey(NAMESPACE, name),
        install(name, naming.BASE_RELEASE),
        install(name, naming.ISTIOD_RELEASE),
    )
    yield Step(ns, (StepKey(WAIT, name),))
    yield Step(StepKey(CACERTS, name), (ns, StepKey(ROOT)))
    yield Step(base, (ns, *([install(c.primary, naming.ISTIOD_RELEASE)] if c.primary else [])))
    yield Step(istiod, (base, StepKey(CACERTS, name), *([StepKey(ADDRESS, c.primary)] if c.primary else [])))
    yield Step(_ready(name, naming.ISTIOD_RELEASE), (istiod,))


def _gateway(spec: MeshSpec, c: ClusterSpec, *, after: StepKey) -> Iterator[Step]:
    """The east-west gateway, where the topology needs one, `after` the cluster's injector exists.

    On a primary that is its istiod installed, not ready: the gateway's Service, and so the load
    balancer whose address a remote's istiod takes, is made while istiod rolls out. Its pods wait
    for istiod: the injector webhook (failurePolicy Fail) refuses them until istiod answers, and
    the ReplicaSet controller creates them again with its backoff (kubernetes pkg/controller/
    replicaset: a failed sync is requeued rate-limited), as it does after any refused create; they
    are then ready one rollout after istiod. On a remote it is its remote secret in the primary
    (until the primary's istiod has read the remote and patched the injector's CA bundle there, the
    injector refuses the gateway's pods: Istio's install guide for primary-remote installs a
    remote's gateway after `istioctl create-remote-secret`). Its address and the Istio objects on
    it need only the Service."""
    if not istio_values.needs_eastwest(spec, c):
        return
    name, gateway = c.name, install(c.name, naming.EASTWEST_RELEASE)
    yield Step(gateway, (after,))
    yield Step(_ready(name, naming.EASTWEST_RELEASE), (gateway,))
    yield Step(StepKey(ADDRESS, name), (gateway,))
    if istio_values.exposures(spec, c):
        yield Step(StepKey(EXPOSE, name), (gateway,))


def install(cluster: str, release: str) -> StepKey:
    return StepKey(INSTALL, cluster, release=release)


def _ready(cluster: str, release: str) -> StepKey:
    return StepKey(READY, cluster, release=release)


def readers(spec: MeshSpec) -> dict[str, list[str]]:
    """source -> the primaries that read it (meshwright.remote_secrets.pairs), sources in spec order."""
    found: dict[str, list[str]] = {}
    for source, primary in pairs(spec):
        found.setdefault(source, []).append(primary)
    return {c.name: found[c.name] for c in spec.clusters if c.name in found}


def _secret(source: str, primaries: list[str]) -> Step:
    """Once its control plane and its readers' are installed: the source's reader account comes with
    its base chart and its ClusterRole with its istiod chart; the primaries' istiods read the secret.
    One step for all of a source's readers: its token is read and proven once, not once a pair."""
    after = tuple(install(c, naming.ISTIOD_RELEASE) for c in (source, *primaries))
    return Step(StepKey(SECRET, source), after)


def _bookinfo_after(spec: MeshSpec, c: ClusterSpec, found: list[Step]) -> tuple[StepKey, ...]:
    """Its own Istio chain, its primary's (a remote's pods are injected by the primary's istiod
    through the east-west gateway) and the remote secrets it takes part in (a primary learns the
    endpoints of the clusters it reads)."""
    mesh_side, read_by = {c.name, *([c.primary] if c.primary else [])}, readers(spec)
    return tuple(
        s.key
        for s in found
        if (s.key.kind in CHAIN and s.key.cluster in mesh_side)
        or (s.key.kind == SECRET and c.name in (s.key.cluster, *read_by[s.key.cluster or ""]))
    )
