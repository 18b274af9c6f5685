"""The mesh spec: one YAML file, one pydantic model, every problem reported at once.

Nothing here touches a network. Field-level rules live on the models; rules that relate fields
(references by name, overlapping ranges, Bookinfo placement) live in `spec_checks` and read typed
values only, so that a spec with both kinds of mistakes gets both reported in one go and a value
of the wrong type is a problem with its path, never a traceback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from meshwright.errors import SpecInvalid, SpecProblem, key_name
from meshwright.naming import EXPIRES_LABEL, MESH_LABEL, RESERVED_LABEL_PREFIX
from meshwright.spec_checks import (
    ClusterRefs,
    Relations,
    cross_check,
    relations_of_document,
    shared_subnet_warnings,
)
from meshwright.spec_source import MAX_SPEC_BYTES, read_spec_text
from meshwright.spec_yaml import load_document

__all__ = [
    "EXPIRES_LABEL",
    "MAX_SPEC_BYTES",
    "MESH_LABEL",
    "MeshSpec",
    "Target",
    "load_spec",
    "parse_spec",
    "validate_spec",
]

# ASCII only, and the whole value: `\d` matches any Unicode digit (U+0661, ARABIC-INDIC DIGIT ONE).
_RFC1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_PROJECT = re.compile(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", re.ASCII)
_LABEL_KEY = re.compile(r"[a-z][-_a-z0-9]{0,62}", re.ASCII)
_LABEL_VALUE = re.compile(r"[-_a-z0-9]{0,63}", re.ASCII)
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+", re.ASCII)
_ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]", re.ASCII)
_VERSION = re.compile(r"1\.(2[0-9]|3[0-9])\.[0-9]+", re.ASCII)
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", re.ASCII)
_DURATION_UNITS = (86400, 3600, 60, 1)
_ACCOUNT = re.compile(r"[a-z0-9][-a-z0-9]{0,62}@[a-z0-9][-a-z0-9.]{0,100}\.gserviceaccount\.com", re.ASCII)
# A regional cluster's node pool is in three zones of its region, and `nodes` is per zone there:
# nodes: 3 in us-central1 is 9 VMs (https://cloud.google.com/kubernetes-engine/docs/concepts/regional-clusters).
REGIONAL_NODE_ZONES = 3

CLUSTER_NAME_MAX = 40
# The longest name derived from the mesh name is "meshwright-<mesh>-pods" (a firewall rule, 63 max).
MESH_NAME_MAX = 63 - len("meshwright--pods")
MAX_TTL_SECONDS = 30 * 86400
_CHART_SCHEMES = ("http", "https", "oci")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


class Target(StrEnum):
    """Where the mesh is built: the local sandbox world or real GKE."""

    SANDBOX = "sandbox"
    GKE = "gke"


# The sandbox is the embedded default: a spec or a flow that names no target builds locally.
DEFAULT_TARGET = Target.SANDBOX


class MtlsMode(StrEnum):
    """The PeerAuthentication mode of Bookinfo's namespace (Istio's names)."""

    STRICT = "STRICT"
    PERMISSIVE = "PERMISSIVE"


class Role(StrEnum):
    PRIMARY = "primary"
    REMOTE = "remote"


def _name_rule(value: str, *, max_len: int, what: str) -> str:
    if len(value) > max_len:
        raise ValueError(f"{what} is longer than {max_len} characters")
    if not _RFC1035.fullmatch(value):
        raise ValueError(
            f"{what} must be lowercase letters, digits and hyphens, start with a letter and not end with a hyphen"
        )
    return value


def check_version(v: str) -> str:
    """An Istio version meshwright supports, or ValueError."""
    if not _VERSION.fullmatch(v):
        raise ValueError("not a supported Istio version (1.20.0 to 1.39.x)")
    return v


def parse_duration(text: str) -> int:
    """'6h', '90m', '1d12h' -> seconds. Raises ValueError on anything else."""
    match = _DURATION.fullmatch(text.strip()) if text.strip() else None
    if not match or not any(match.groups()):
        raise ValueError("not a duration like 30m, 6h or 1d12h")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if n)


def _cidr_rule(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(f"not a well-formed IPv4 CIDR block{_why_not_cidr(value)}") from None
    if net.version != 4:
        raise ValueError("not IPv4")
    if not any(net.subnet_of(p) for p in _PRIVATE):  # type: ignore[arg-type]
        raise ValueError("not a private (RFC 1918) range")
    if not 9 <= net.prefixlen <= 21:
        raise ValueError("GKE accepts pod and service ranges from /9 to /21")
    return value


def _why_not_cidr(value: str) -> str:
    """The one reason worth telling (ipaddress's own messages quote the value)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return ""
    return " (host bits set: the address must be the network's first, like 10.8.0.0/14)"


def _labels_rule(labels: dict[str, str]) -> dict[str, str]:
    problems = []
    for key, value in labels.items():
        name = key_name(key)
        if not _LABEL_KEY.fullmatch(key):
            problems.append(f"label key {name} breaks GCP label rules (lowercase letter first, a-z 0-9 _ -)")
        elif key.startswith(RESERVED_LABEL_PREFIX):
            problems.append(f"label key {name} is reserved for meshwright")
        if not _LABEL_VALUE.fullmatch(str(value)):
            problems.append(f"the value of label {name} breaks GCP label rules (at most 63 of a-z 0-9 _ -)")
    if problems:
        raise ValueError("; ".join(problems))
    return labels


class _Model(BaseModel):
    # Field docstrings become the descriptions the Prefect UI shows on the Run form.
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, use_attribute_docstrings=True
    )


def _resolve(path: str, info: ValidationInfo) -> str:
    """A relative path means relative to the spec file (when the spec came from a file)."""
    base = (info.context or {}).get("base_dir")
    p = Path(path).expanduser()
    return str(p if p.is_absolute() or base is None else Path(base) / p)


def _charts_rule(value: str, info: ValidationInfo) -> str:
    scheme = urlsplit(value).scheme
    if scheme in ("http", "https") and not urlsplit(value).netloc:
        raise ValueError("a URL without a host")
    if scheme == "oci" and not value.removeprefix("oci://").strip("/"):
        raise ValueError("an oci:// reference without a repository")
    if scheme and scheme not in _CHART_SCHEMES and len(scheme) > 1:  # c:/ is no scheme
        raise ValueError(
            "charts come from an http(s) Helm repository, an oci:// reference or a local directory"
        )
    return value if scheme in _CHART_SCHEMES else _resolve(value, info)


class RootCaSpec(_Model):
    """Bring your own root CA: PEM files of its certificate and key (the key file should be 0600).

    Validation checks only that both are given; the files are read when the trust stage runs.
    """

    cert: str = Field(min_length=1)
    """Path of the root certificate (PEM); relative to the spec file."""
    key: str = Field(min_length=1)
    """Path of the root's private key (PEM, keep it 0600); relative to the spec file."""

    @field_validator("cert", "key")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        return _resolve(v, info)


class UpgradeSpec(_Model):
    """How `up` rolls out a change of `istio.version` (always by revision, as Istio's canary
    upgrade does): whether a person approves the move of the revision tag first."""

    approve: bool = False
    """Pause before the revision tag moves, until someone continues or rolls back (the run's page in the UI, or `meshwright approve SPEC`)."""
    approve_within: str = "1h"
    """How long the pause waits for an answer (30m, 6h ...); no answer rolls the upgrade back."""

    @field_validator("approve_within")
    @classmethod
    def _within(cls, v: str) -> str:
        if not 60 <= parse_duration(v) <= MAX_TTL_SECONDS:
            raise ValueError("must be between 1m and 30d")
        return v

    @property
    def approve_seconds(self) -> int:
        return parse_duration(self.approve_within)


class IstioSpec(_Model):
    """Which Istio to install, from where, with which root CA, and the mesh id shared by all clusters.

    `charts` is a Helm repository URL (http/https), an `oci://` reference or a local directory
    holding base/, istiod/ and gateway/; None means the target's default (Istio's repository on
    GKE, the bundled charts on the sandbox). `root_ca` None means meshwright makes a root.
    """

    version: str = "1.30.3"
    """Istio version (1.20.0 to 1.39.x); the chart version installed."""
    charts: str | None = None
    """A Helm repo URL, an oci:// reference or a local directory with base/, istiod/, gateway/; default: Istio's repo on GKE, the bundled charts on the sandbox."""
    root_ca: RootCaSpec | None = None
    """Bring your own root CA instead of one meshwright makes and keeps per mesh."""
    keep_root: bool = False
    """Keep the root meshwright made for the mesh when the mesh is torn down (default: removed with it)."""
    mesh_id: str | None = None
    """global.meshID in every cluster; default: the mesh name."""
    upgrade: UpgradeSpec = UpgradeSpec()
    """How a change of `version` is rolled out: by revision, with an approval point if asked."""

    @field_validator("charts")
    @classmethod
    def _charts(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _charts_rule(v, info)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_version(v)

    @field_validator("mesh_id")
    @classmethod
    def _mesh_id(cls, v: str | None) -> str | None:
        return None if v is None else _name_rule(v, max_len=63, what="mesh_id")


class ClusterSpec(_Model):
    """One GKE cluster of the mesh. Its role follows from `primary`: absent means it is a primary."""

    name: str
    """Cluster name (GKE rules, at most 40 characters), unique in the mesh."""
    location: str
    """A zone (us-central1-a) or a region (us-central1)."""
    nodes: Annotated[int, Field(ge=1, le=1000)] = 3
    """Nodes of the default node pool (1-1000); per zone for a region (3 in us-central1 is 9 nodes)."""
    machine_type: str = "e2-standard-4"
    """GCE machine type of the nodes."""
    pod_cidr: str | None = None
    """Pod range (RFC 1918, /9 to /21); default: chosen by GKE. Must not overlap another range."""
    services_cidr: str | None = None
    """Services range; default: GKE-managed."""
    network: str | None = None
    """Istio network; clusters on different ones make the mesh multi-network. Default: the VPC's name."""
    primary: str | None = None
    """A remote names the primary whose control plane it uses; absent: this cluster is a primary."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra GCP resource labels; meshwright-* keys are reserved."""
    subnetwork: str | None = None
    """An existing subnetwork of the VPC in the cluster's region; default: the region's subnet of an auto mode VPC, or one GKE makes for the cluster in a custom mode VPC."""
    service_account: str | None = None
    """The nodes' service account (an email); default: the project's Compute Engine default service account."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _name_rule(v, max_len=CLUSTER_NAME_MAX, what="cluster name")

    @field_validator("subnetwork")
    @classmethod
    def _subnetwork(cls, v: str | None) -> str | None:
        return None if v is None else _name_rule(v, max_len=63, what="subnetwork")

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, v: str | None) -> str | None:
        if v is not None and not _ACCOUNT.fullmatch(v):
            raise ValueError("not a service account email (NAME@PROJECT.iam.gserviceaccount.com)")
        return v

    @field_validator("location")
    @classmethod
    def _location(cls, v: str) -> str:
        if not (_ZONE.fullmatch(v) or _REGION.fullmatch(v)):
            raise ValueError("neither a GCP zone (us-central1-a) nor a region (us-central1)")
        return v

    @field_validator("machine_type")
    @classmethod
    def _machine_type(cls, v: str) -> str:
        return _name_rule(v, max_len=63, what="machine type")

    @field_validator("pod_cidr", "services_cidr")
    @classmethod
    def _cidr(cls, v: str | None) -> str | None:
        return None if v is None else _cidr_rule(v)

    @field_validator("network")
    @classmethod
    def _network(cls, v: str | None) -> str | None:
        return None if v is None else _name_rule(v, max_len=63, what="network")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return _labels_rule(v)

    @property
    def role(self) -> Role:
        return Role.REMOTE if self.primary else Role.PRIMARY

    @property
    def region(self) -> str:
        return self.location.rsplit("-", 1)[0] if _ZONE.fullmatch(self.location) else self.location

    @property
    def zone_count(self) -> int:
        """Zones the node pool is in: the one zone, or three of a region."""
        return 1 if _ZONE.fullmatch(self.location) else REGIONAL_NODE_ZONES

    @property
    def total_nodes(self) -> int:
        return self.nodes * self.zone_count

    def nodes_text(self) -> str:
        """`4 nodes`, or `9 nodes (3 per zone x 3 zones)` for a region."""
        if self.zone_count == 1:
            return f"{self.nodes} node{'s' if self.nodes > 1 else ''}"
        return f"{self.total_nodes} nodes ({self.nodes} per zone x {self.zone_count} zones)"


class BookinfoSpec(_Model):
    """Where each Bookinfo workload runs."""

    namespace: str = "bookinfo"
    """Namespace of the Bookinfo sample in every cluster."""
    placement: dict[str, list[str]]
    """Cluster -> Bookinfo workloads (productpage-v1, details-v1, reviews-v1..3, ratings-v1)."""
    mtls: MtlsMode = MtlsMode.STRICT
    """PeerAuthentication `default` of the namespace: STRICT (only mTLS from the mesh) or PERMISSIVE
    (plaintext from callers without a sidecar too, e.g. during a migration)."""

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return _name_rule(v, max_len=63, what="namespace")


class MeshSpec(_Model):
    """A whole mesh: the clusters, how they are joined, and what runs on them."""

    name: str
    """Mesh name: labels every resource, names the firewall rule and the kubeconfig."""
    target: Target = DEFAULT_TARGET
    """Where the mesh is built: sandbox (local) or gke."""
    project: str
    """GCP project id."""
    network: str = "default"
    """The VPC network of the clusters and the firewall rule."""
    ttl: str | None = None
    """Expiry of an ephemeral mesh, e.g. 6h or 1d12h; the reaper deletes it afterwards."""
    istio: IstioSpec = Field(default_factory=IstioSpec)
    """Which Istio, from which charts, with which root CA."""
    clusters: list[ClusterSpec] = Field(min_length=1)
    """GKE clusters; a cluster without `primary` is a primary."""
    bookinfo: BookinfoSpec | None = None
    """Where each Bookinfo workload runs."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _name_rule(v, max_len=MESH_NAME_MAX, what="mesh name")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not _PROJECT.fullmatch(v):
            raise ValueError(
                "not a GCP project id (6 to 30 of lowercase letters, digits and hyphens, "
                "starting with a letter, not ending with a hyphen)"
            )
        return v

    @field_validator("network")
    @classmethod
    def _vpc(cls, v: str) -> str:
        return _name_rule(v, max_len=63, what="network")

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str | None) -> str | None:
        if v is None:
            return None
        seconds = parse_duration(v)
        if not 60 <= seconds <= MAX_TTL_SECONDS:
            raise ValueError("must be between 1m and 30d")
        return v

    # -- computed topology -------------------------------------------------------------------

    @property
    def mesh_id(self) -> str:
        return self.istio.mesh_id or self.name

    @property
    def ttl_seconds(self) -> int | None:
        return parse_duration(self.ttl) if self.ttl else None

    @property
    def primaries(self) -> list[ClusterSpec]:
        return [c for c in self.clusters if c.role is Role.PRIMARY]

    @property
    def remotes(self) -> list[ClusterSpec]:
        return [c for c in self.clusters if c.role is Role.REMOTE]

    def cluster(self, name: str) -> ClusterSpec:
        return next(c for c in self.clusters if c.name == name)

    def istio_network(self, cluster: ClusterSpec) -> str:
        """The Istio network of a cluster; clusters that name none share the VPC's."""
        return cluster.network or self.network

    @property
    def networks(self) -> list[str]:
        return sorted({self.istio_network(c) for c in self.clusters})

    @property
    def topology(self) -> list[str]:
        kinds = []
        if self.remotes:
            kinds.append("primary-remote")
        if len(self.primaries) > 1:
            kinds.append("multi-primary")
        if len(self.networks) > 1:
            kinds.append("multi-network")
        return kinds or ["single-cluster"]

    @property
    def multi_network(self) -> bool:
        return len(self.networks) > 1

    def summary(self) -> str:
        roles = ", ".join(f"{c.name} ({c.role.value}, {c.location}, {c.nodes_text()})" for c in self.clusters)
        total = sum(c.total_nodes for c in self.clusters)
        return (
            f"mesh {self.name!r} on {self.target.value}: {len(self.clusters)} cluster(s): {roles}; "
            f"{total} nodes in all; topology: {' + '.join(self.topology)}"
        )

    def warnings(self) -> list[str]:
        """What may fail on GKE although the spec is valid (validate prints these)."""
        return shared_subnet_warnings(
            [(c.region, c.subnetwork, c.services_cidr is not None) for c in self.clusters]
        )


# -- loading ---------------------------------------------------------------------------------


def as_spec(spec: MeshSpec | dict[str, Any] | str | Path) -> MeshSpec:
    """The mesh spec a flow was given: a MeshSpec (from the UI's form or the CLI) as is, its fields
    (a run's parameters as the API stores them, read back by a hook) validated, or a path to a YAML
    file (read only under an allowed root, see `load_spec`; SpecInvalid listing every problem)."""
    if isinstance(spec, MeshSpec):
        return spec
    return validate_spec(spec) if isinstance(spec, dict) else load_spec(spec)


def load_spec(path: str | Path, *, confined: bool = True) -> MeshSpec:
    """Read and validate a spec file. Raises SpecInvalid listing every problem.

    `confined` (the default: a path that came as a parameter, from whoever may start a run): the
    file must be under the project's deployments/ or a directory of MESHWRIGHT_SPEC_ROOTS. The CLI
    passes False for the path its user typed. Either way the file must be a regular file of at most
    MAX_SPEC_BYTES (1 MiB) of UTF-8 text, so a FIFO, /dev/zero or a disk image is one problem rather
    than a hang. Relative paths in the spec (root CA files, a local charts directory) resolve against
    the spec file's directory.
    """
    source = str(path)
    text = read_spec_text(Path(path), confined=confined, source=source)
    return parse_spec(text, source=source, base_dir=Path(path).expanduser().resolve().parent)


def parse_spec(text: str, *, source: str = "spec", base_dir: Path | None = None) -> MeshSpec:
    """Validate a spec given as YAML text; relative paths in it resolve against `base_dir`.

    A key given twice is a problem reported with the others (YAML alone would keep the last).
    """
    data, duplicates = load_document(text, source=source)
    return _checked(data, source=source, base_dir=base_dir, found=duplicates)


def validate_spec(data: Any, *, source: str = "spec", base_dir: Path | None = None) -> MeshSpec:
    """Validate an already-parsed document; field rules and cross-field rules together.

    The model's types and field rules come first; the rules between fields then read typed values
    only (the model's, or those fields of the document that have their type), so a value of the
    wrong type anywhere is one problem with its path, never a crash. No I/O and no network: files
    the spec names are read only when a flow needs them.
    """
    return _checked(data, source=source, base_dir=base_dir, found=[])


def _checked(data: Any, *, source: str, base_dir: Path | None, found: list[SpecProblem]) -> MeshSpec:
    """The spec, or SpecInvalid with the problems `found` before (in the text) and the document's."""
    if not isinstance(data, dict):
        raise SpecInvalid([*found, SpecProblem("", "the spec must be a mapping of fields")], source=source)
    spec, problems = _validate(data, base_dir=base_dir)
    if found or problems:
        raise SpecInvalid(_unique([*found, *problems]), source=source)
    assert spec is not None
    return spec


def _validate(data: dict[str, Any], *, base_dir: Path | None) -> tuple[MeshSpec | None, list[SpecProblem]]:
    """The model (None when a field is wrong) and every problem: the fields' own, then those between."""
    try:
        spec = MeshSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        return None, [*_from_pydantic(e), *cross_check(relations_of_document(data))]
    return spec, cross_check(_relations(spec))


def _relations(spec: MeshSpec) -> Relations:
    """What the rules between fields read, from a spec whose fields are all valid."""
    clusters = tuple(
        ClusterRefs.of(i, name=c.name, primary=c.primary, pod_cidr=c.pod_cidr, services_cidr=c.services_cidr)
        for i, c in enumerate(spec.clusters)
    )
    placement = spec.bookinfo.placement if spec.bookinfo else None
    return Relations(clusters, None if placement is None else {k: tuple(v) for k, v in placement.items()})


def _unique(problems: list[SpecProblem]) -> list[SpecProblem]:
    return list(dict.fromkeys(problems))


def _from_pydantic(error: ValidationError) -> Iterator[SpecProblem]:
    """Pydantic's problems by their path; `msg` never quotes the input (str(error) does)."""
    for item in error.errors():
        reason = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            reason = "unknown field (check the spelling)"
        elif item["type"] == "missing":
            reason = "required field is missing"
        elif item["loc"][-1:] == (_KEY,):
            reason = f"this key: {reason}"
        yield SpecProblem(_path(item["loc"]), reason)


_KEY = "[key]"  # pydantic's last path element when a mapping's key itself is wrong


def _path(loc: tuple[int | str, ...]) -> str:
    """`clusters[0].labels.team`; a key of the document as `key_name` shows it (a dict's int key too)."""
    out = ""
    for i, part in enumerate(loc):
        if part == _KEY:
            continue
        if isinstance(part, int) and loc[i + 1 : i + 2] != (_KEY,):
            out += f"[{part}]"
        else:
            out += f".{key_name(part)}" if out else key_name(part)
    return out
