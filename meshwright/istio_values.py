"""What Istio needs per cluster, computed from the spec: Helm values, the istio-system namespace,
and the Istio objects that expose istiod and services on the east-west gateways. Pure: no I/O.

Only Istio's own value keys are used (charts/base, istio-discovery, gateway), so Istio's real
charts and the sandbox's stand-ins take the same values. The procedures are Istio's multicluster
install guides: primary-remote (externalIstiod on the primary; profile=remote, injectionPath,
remotePilotAddress and configCluster on a remote), multi-primary, and multi-network (network label
on istio-system before istiod, east-west gateways with networkGateway, cross-network-gateway).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from meshwright import naming
from meshwright.spec import ClusterSpec, MeshSpec, Role

CHARTS = {"base": naming.BASE_RELEASE, "istiod": naming.ISTIOD_RELEASE, "gateway": naming.EASTWEST_RELEASE}
EASTWEST_SELECTOR = {"istio": "eastwestgateway"}
Values = dict[str, Any]


class Release(BaseModel):
    """One Helm release to ensure: its name, which chart of the source, and the values."""

    name: str
    chart: str
    values: Values
    wait: bool = True


def serves_remotes(spec: MeshSpec, c: ClusterSpec) -> bool:
    return any(r.primary == c.name for r in spec.remotes)


def needs_eastwest(spec: MeshSpec, c: ClusterSpec) -> bool:
    """A primary exposes istiod to its remotes through one; every cluster of a multi-network mesh
    reaches the others' services through one."""
    return serves_remotes(spec, c) or spec.multi_network


def injection_path(spec: MeshSpec, c: ClusterSpec) -> str:
    return f"/inject/cluster/{c.name}/net/{spec.istio_network(c)}"


def _global(spec: MeshSpec, c: ClusterSpec) -> Values:
    return {
        "meshID": spec.mesh_id,
        "multiCluster": {"clusterName": c.name},
        "network": spec.istio_network(c),
    }


def revision(spec: MeshSpec) -> str:
    """The istiod revision the spec asks for: its version with dashes (`1-30-3`)."""
    return naming.revision(spec.istio.version)


def base_values(spec: MeshSpec, c: ClusterSpec) -> Values:
    """`defaultRevision`: the revision whose istiod serves the default validation webhook."""
    values: Values = {"defaultRevision": revision(spec)}
    if c.role is Role.REMOTE:
        return values | {"profile": "remote", "global": {"externalIstiod": True}}
    if serves_remotes(spec, c):
        return values | {"global": {"externalIstiod": True}}
    return values


def istiod_values(
    spec: MeshSpec,
    c: ClusterSpec,
    *,
    remote_pilot_address: str | None = None,
    rev: str | None = None,
    tagged: bool = True,
) -> Values:
    """istiod of revision `rev` (default: the spec's), holding the revision tag when `tagged`.

    The tag's webhooks and Service come with the release that holds it (`revisionTags`, rendered by
    istio-discovery's revision-tags templates), so moving the tag is two upgrades: off the old
    revision's release, onto the new one's (helm refuses two releases owning one object). A remote's
    values need its primary's east-west gateway address.
    """
    rev = revision(spec) if rev is None else rev
    values: Values = {
        "global": _global(spec, c),
        "revision": rev,
        "revisionTags": [naming.REVISION_TAG] if tagged else [],
    }
    if c.role is Role.REMOTE:
        if not remote_pilot_address:
            raise ValueError(f"remote {c.name} needs its primary's east-west gateway address")
        values["profile"] = "remote"
        values["global"] |= {"configCluster": True, "remotePilotAddress": remote_pilot_address}
        values["istiodRemote"] = {"injectionPath": injection_path(spec, c)}
    elif serves_remotes(spec, c):
        values["global"]["externalIstiod"] = True
        values["pilot"] = {"env": {"EXTERNAL_ISTIOD": "true"}}
    return values


def eastwest_values(spec: MeshSpec, c: ClusterSpec) -> Values:
    return {"name": naming.EASTWEST_RELEASE, "networkGateway": spec.istio_network(c)}


def release_names(spec: MeshSpec, c: ClusterSpec) -> list[str]:
    """The cluster's releases in install order: base, istiod, then its east-west gateway if any."""
    names = [naming.BASE_RELEASE, naming.ISTIOD_RELEASE]
    return names + ([naming.EASTWEST_RELEASE] if needs_eastwest(spec, c) else [])


def release_name(spec: MeshSpec, name: str) -> str:
    """The Helm release behind a step's release name: istiod is released per revision."""
    return naming.istiod_release(revision(spec)) if name == naming.ISTIOD_RELEASE else name


def awaited(c: ClusterSpec, name: str) -> bool:
    """Whether meshwright waits for a release's pods: istiod and the gateway on a primary. Base has
    none; a remote runs no istiod, and its gateway's pod is injected by the primary's istiod, which
    serves the remote only once it holds the remote's secret (a later stage)."""
    return c.role is Role.PRIMARY and name != naming.BASE_RELEASE


def release(
    spec: MeshSpec,
    c: ClusterSpec,
    name: str,
    *,
    remote_pilot_address: str | None = None,
    rev: str | None = None,
    tagged: bool = True,
) -> Release:
    """One release of the cluster with its values; istiod on a remote needs `remote_pilot_address`.

    istiod is released as `istiod-<rev>` (see `istiod_values` for `rev` and `tagged`); `wait`: see `awaited`.
    """
    primary = awaited(c, name)
    if name == naming.BASE_RELEASE:
        return Release(name=name, chart="base", values=base_values(spec, c), wait=primary)
    if name == naming.ISTIOD_RELEASE:
        values = istiod_values(spec, c, remote_pilot_address=remote_pilot_address, rev=rev, tagged=tagged)
        rev = revision(spec) if rev is None else rev
        return Release(name=naming.istiod_release(rev), chart="istiod", values=values, wait=primary)
    if name == naming.EASTWEST_RELEASE and needs_eastwest(spec, c):
        return Release(name=name, chart="gateway", values=eastwest_values(spec, c), wait=primary)
    raise ValueError(f"cluster {c.name} has no release {name}")


def namespace(spec: MeshSpec, c: ClusterSpec) -> dict[str, Any]:
    """istio-system with the network label (multi-network) and, on a remote, the clusters whose
    control plane manages it."""
    metadata: dict[str, Any] = {"name": naming.ISTIO_NAMESPACE}
    if spec.multi_network:
        metadata["labels"] = {naming.NETWORK_LABEL: spec.istio_network(c)}
    if c.primary:
        metadata["annotations"] = {naming.CONTROL_PLANE_CLUSTERS_ANNOTATION: c.primary}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _tls_server(name: str, number: int, mode: str, hosts: list[str]) -> dict[str, Any]:
    return {
        "port": {"name": name, "number": number, "protocol": "TLS"},
        "tls": {"mode": mode},
        "hosts": hosts,
    }


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": naming.ISTIO_NAMESPACE}


def _host(rev: str) -> str:
    return f"{naming.istiod_release(rev)}.{naming.ISTIO_NAMESPACE}"


def _sni_hosts(rev: str) -> list[str]:
    """The unrevisioned istiod of a mesh built before revisions keeps expose-istiod.yaml's `*`."""
    return [f"{_host(rev)}.svc", f"{_host(rev)}.svc.cluster.local"] if rev else ["*"]


def expose_istiod(revisions: list[str]) -> list[dict[str, Any]]:
    """samples/multicluster/expose-istiod-rev.yaml.tmpl: istiod's 15012 and 15017 through the gateway,
    routed by SNI to each revision's istiod (a remote's webhooks and proxies dial istiod-<rev>). One
    VirtualService with every running revision's routes, where the sample has one per revision, so
    that dropping a revision is one apply."""
    gateway = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": _meta("istiod-gateway"),
        "spec": {
            "selector": EASTWEST_SELECTOR,
            "servers": [
                _tls_server("tls-istiod", 15012, "PASSTHROUGH", ["*"]),
                _tls_server("tls-istiodwebhook", 15017, "PASSTHROUGH", ["*"]),
            ],
        },
    }
    routes = [
        {
            "match": [{"port": port, "sniHosts": _sni_hosts(rev)}],
            "route": [
                {"destination": {"host": f"{_host(rev)}.svc.cluster.local", "port": {"number": target}}}
            ],
        }
        for rev in sorted(revisions, key=lambda r: r == "")  # a catch-all last
        for port, target in ((15012, 15012), (15017, 443))
    ]
    service = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta("istiod-vs"),
        "spec": {"hosts": ["*"], "gateways": ["istiod-gateway"], "tls": routes},
    }
    return [gateway, service]


def expose_services() -> list[dict[str, Any]]:
    """samples/multicluster/expose-services.yaml: every *.local service through 15443, mTLS passed through."""
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": _meta("cross-network-gateway"),
            "spec": {
                "selector": EASTWEST_SELECTOR,
                "servers": [_tls_server("tls", 15443, "AUTO_PASSTHROUGH", ["*.local"])],
            },
        }
    ]


def exposures(spec: MeshSpec, c: ClusterSpec, revisions: list[str] | None = None) -> list[dict[str, Any]]:
    """What a primary applies on its east-west gateway, istiod's routes for `revisions` (default: the
    spec's); remotes get their config from their primary."""
    if c.role is Role.REMOTE:
        return []
    out = expose_istiod(revisions or [revision(spec)]) if serves_remotes(spec, c) else []
    return out + (expose_services() if spec.multi_network else [])


def istiod_revisions(releases: dict[str, str]) -> dict[str, str]:
    """The istiod revisions among a cluster's releases (name -> version, as `helm list` shows them):
    revision -> version; "" for the unrevisioned `istiod` of a mesh built before revisions."""
    return {
        name.removeprefix("istiod").removeprefix("-"): version
        for name, version in releases.items()
        if name == "istiod" or name.startswith("istiod-")
    }
