"""One cluster's stored RBAC objects, read the way the RBAC authorizer's listers read them.

The real authorizer reads informer caches, so it sees a binding as soon as it is stored; this reads
the store under the cluster's lock, copying only the bindings that name the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from meshwright.sandbox.kube.rbac import RBAC_GROUP
from meshwright.sandbox.kube.store.crud import ClusterState

Where = Callable[[dict[str, Any]], bool]


class StoredPolicy:
    """`rbac.Policy` over a `ClusterState`; `where` keeps only the bindings worth copying."""

    def __init__(self, state: ClusterState, where: Where | None = None) -> None:
        self.state, self.where = state, where

    def _list(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        with self.state.lock:
            return self.state.store.list(f"{RBAC_GROUP}/{plural}", namespace, where=self.where)

    def cluster_role_bindings(self) -> Iterable[dict[str, Any]]:
        return self._list("clusterrolebindings", "")

    def role_bindings(self, namespace: str) -> Iterable[dict[str, Any]]:
        return self._list("rolebindings", namespace)

    def cluster_role(self, name: str) -> dict[str, Any] | None:
        return self.state.store.get((f"{RBAC_GROUP}/clusterroles", "", name))

    def role(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.state.store.get((f"{RBAC_GROUP}/roles", namespace, name))
