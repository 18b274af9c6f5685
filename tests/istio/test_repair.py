"""`up` repairs what was deleted under its releases (issue 19): helm leaves an unchanged release
alone, so an object deleted under it (the reader's ClusterRoleBinding, the injector's webhook) would
stay gone for good; the install step sees it missing and upgrades, which re-creates it."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client
import pytest

from meshwright.clients import MeshwrightTarget
from meshwright.models import ChartRef
from meshwright.sandbox.world import World
from tasks.istio import install_release, prepare_namespace
from tests.istio.support import api, bring_up, primary_remote

BINDING = "istio-reader-clusterrole-1-30-3-istio-system"
WEBHOOK = "istio-sidecar-injector-1-30-3"


def exists(read: object) -> bool:
    try:
        read()  # type: ignore[operator]
    except kubernetes.client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def test_objects_deleted_under_an_unchanged_release_are_recreated_by_a_new_revision(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path
) -> None:
    spec = primary_remote()
    central = bring_up(spec, target)["central"]
    prepare_namespace.fn(spec, central, target=target)
    for release in ("istio-base", "istiod"):
        install_release.fn(spec, central, release, bundled, target=target)
    rbac = kubernetes.client.RbacAuthorizationV1Api(api(target, central))
    hooks = kubernetes.client.AdmissionregistrationV1Api(api(target, central))
    rbac.delete_cluster_role_binding(BINDING)
    hooks.delete_mutating_webhook_configuration(WEBHOOK)

    repaired = install_release.fn(spec, central, "istiod", bundled, target=target)

    assert (repaired.action, repaired.revision) == ("repaired", 2)
    assert exists(lambda: rbac.read_cluster_role_binding(BINDING))
    assert exists(lambda: hooks.read_mutating_webhook_configuration(WEBHOOK))
    again = install_release.fn(spec, central, "istiod", bundled, target=target)
    assert (again.action, again.revision) == ("unchanged", 2)


@pytest.mark.parametrize("release", ["istio-base"])
def test_a_whole_release_is_left_alone_when_nothing_under_it_is_gone(
    sandbox: World, target: MeshwrightTarget, bundled: list[ChartRef], meshwright_home: Path, release: str
) -> None:
    spec = primary_remote()
    central = bring_up(spec, target)["central"]
    prepare_namespace.fn(spec, central, target=target)
    first = install_release.fn(spec, central, release, bundled, target=target)
    again = install_release.fn(spec, central, release, bundled, target=target)
    assert (first.action, again.action, again.revision) == ("installed", "unchanged", 1)
