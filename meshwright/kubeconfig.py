"""The kubeconfig document: one context per cluster, built here for the mesh and for the sandbox.

A kubeconfig meshwright writes for a mesh carries an extension in its preferences naming the
mesh, project and target it was written for. `up` overwrites only a kubeconfig with its own mark
(or one without contexts): any other file holds someone's contexts and is kept unless forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshwright.files import write_secret
from meshwright.naming import KUBECONFIG_EXTENSION

# A kubeconfig of a few hundred clusters is well below this; reading stops here.
MAX_READ_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One cluster: its context, cluster and user all carry `name`."""

    name: str
    server: str
    ca_data: str  # base64 PEM, as GKE gives it
    user: dict[str, Any]


@dataclass(frozen=True)
class Owner:
    """Which mesh a kubeconfig was written for."""

    mesh: str
    project: str
    target: str

    def as_extension(self) -> dict[str, Any]:
        return {"name": KUBECONFIG_EXTENSION, "extension": vars(self).copy()}


def document(entries: Sequence[Entry], *, owner: Owner | None = None) -> dict[str, Any]:
    """The kubeconfig of `entries`; the first is the current context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": e.name, "cluster": {"server": e.server, "certificate-authority-data": e.ca_data}}
            for e in entries
        ],
        "users": [{"name": e.name, "user": e.user} for e in entries],
        "contexts": [{"name": e.name, "context": {"cluster": e.name, "user": e.name}} for e in entries],
        "current-context": entries[0].name if entries else "",
        "preferences": {"extensions": [owner.as_extension()]} if owner else {},
    }


def with_token(cluster: str, *, server: str, ca_data: str, token: str) -> dict[str, Any]:
    """One cluster with a static bearer token, everything named after it: what a remote secret
    holds (as `istioctl create-remote-secret` writes it) and what helm is given (no exec plugin:
    helm may run where gcloud is not installed)."""
    return document([Entry(cluster, server, ca_data, {"token": token})])


def write(path: Path, doc: dict[str, Any]) -> None:
    """Write a kubeconfig with mode 0600: it may hold a token."""
    write_secret(path, yaml.safe_dump(doc, sort_keys=False).encode())


def owner_of(doc: Any) -> Owner | None:
    """The meshwright mark of a kubeconfig document, if it has one."""
    prefs = doc.get("preferences") if isinstance(doc, dict) else None
    extensions = prefs.get("extensions") if isinstance(prefs, dict) else None
    for item in extensions if isinstance(extensions, list) else []:
        mark = item.get("extension") if isinstance(item, dict) else None
        if item.get("name") == KUBECONFIG_EXTENSION and isinstance(mark, dict):
            try:
                return Owner(str(mark["mesh"]), str(mark["project"]), str(mark["target"]))
            except KeyError:
                return None
    return None


def why_not_overwrite(path: Path, owner: Owner) -> str | None:
    """None when `path` may be (over)written for `owner`; else why not, in one line."""
    try:
        with path.open("rb") as f:
            doc = yaml.safe_load(f.read(MAX_READ_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return f"{path} exists and is not a readable kubeconfig"
    if doc is None:
        return None
    if not isinstance(doc, dict):
        return f"{path} exists and is not a kubeconfig"
    found = owner_of(doc)
    if found == owner:
        return None
    if found is not None:
        return f"{path} holds the kubeconfig of mesh {found.mesh!r} ({found.project} on {found.target})"
    contexts = doc.get("contexts")
    if not contexts:
        return None
    count = len(contexts) if isinstance(contexts, list) else "some"
    return f"{path} holds {count} context(s) that meshwright did not write for this mesh"
