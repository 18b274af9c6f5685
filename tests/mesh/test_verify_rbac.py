"""RBAC in the verification (issue 19): a remote whose reader lost its ClusterRoleBinding is named
with the permission istiod misses, and a caller who may not port-forward is told what it needs."""

from __future__ import annotations

import kubernetes.client
import pytest

from meshwright import clients
from meshwright.clients import MeshwrightTarget
from meshwright.errors import PermissionDenied
from meshwright.models import ClusterAccess
from meshwright.spec import MeshSpec
from tasks.verify import read_clusterz
from tests.mesh.support import kube
from tests.mesh.test_verify import meshed, verify

__all__ = ["meshed"]
READER_BINDING = "istio-reader-clusterrole-istio-system"


def test_a_remote_without_its_reader_binding_is_named_with_the_permission_istiod_misses(
    target: MeshwrightTarget, spec: MeshSpec, meshed: dict[str, ClusterAccess]
) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(kube(target, meshed["west"]))
    rbac.delete_cluster_role_binding(READER_BINDING)
    problems = verify(spec, target).problems
    west = [p for p in problems if "west" in p]
    assert west, problems
    assert any("RBAC: istio-reader-service-account cannot list" in p for p in west), west


def token_for(target: MeshwrightTarget, access: ClusterAccess, name: str, verbs: list[str]) -> str:
    """A service account in istio-system that may list pods and do `verbs` on pods/portforward."""
    client = kube(target, access)
    core, rbac = kubernetes.client.CoreV1Api(client), kubernetes.client.RbacAuthorizationV1Api(client)
    core.create_namespaced_service_account("istio-system", {"metadata": {"name": name}})
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    rules += [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": verbs}] if verbs else []
    rbac.create_namespaced_role("istio-system", {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        "istio-system",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "istio-system"}],
        },
    )
    request = core.create_namespaced_service_account_token(name, "istio-system", {"spec": {}})
    return str(request.status.token)


@pytest.mark.parametrize(("verbs", "denied"), [([], "get"), (["get"], "create")])
def test_a_caller_who_may_not_port_forward_to_istiod_is_told_the_permission(
    target: MeshwrightTarget, meshed: dict[str, ClusterAccess], verbs: list[str], denied: str
) -> None:
    central = meshed["central"]
    token = token_for(target, central, f"viewer-{denied}", verbs)
    client = clients.cloud(target).kube_as(central.endpoint, central.ca_certificate, token, timeout=10)
    with pytest.raises(PermissionDenied) as raised:
        read_clusterz(client, central)
    assert f'cannot {denied} resource "pods/portforward"' in raised.value.message
    assert raised.value.cluster == "central"
    granted = clients.cloud(target).kube_as(
        central.endpoint,
        central.ca_certificate,
        token_for(target, central, f"forwarder-{denied}", ["get", "create"]),
        timeout=10,
    )
    assert read_clusterz(granted, central)
