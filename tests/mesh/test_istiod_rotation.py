"""A rotated remote secret in the emulated istiod: make before break, as Istio 1.30's secret
controller does it (pkg/kube/multicluster/secretcontroller.go `addRemoteConfig`, clusterstore.go
`Swap`): the previous kubeconfig keeps serving until the new one has synced."""

from __future__ import annotations

from meshwright.sandbox.mesh.istiod import IstiodModel, ProbeResult, RemoteConfig, istiods
from tests.mesh.test_istiod_model import Clock, Objects, istiod_deployment, kubeconfig, remote_secret

SECRET = "istio-remote-secret-west"


class TokenProbe:
    """West's API answers only the tokens it has not revoked."""

    def __init__(self) -> None:
        self.valid = {"old"}

    def __call__(self, config: RemoteConfig) -> ProbeResult:
        ok = config.token in self.valid
        return ProbeResult(ok, "" if ok else "401 Unauthorized")


def _world() -> tuple[Objects, IstiodModel, TokenProbe]:
    objects, probe = Objects(), TokenProbe()
    objects.put("apps/deployments", istiod_deployment("central"))
    model = IstiodModel(probe, clock=Clock(), cache_seconds=0.0)
    _write(objects, "old")
    return objects, model, probe


def _write(objects: Objects, token: str) -> None:
    data = {"west": kubeconfig("west", "https://west", user={"token": token})}
    objects.put("/secrets", remote_secret(SECRET, data))


def _state(objects: Objects, model: IstiodModel) -> tuple[str, dict[str, str]]:
    (istiod,) = istiods(objects)
    status = model.clusterz("central", objects, istiod)[1]["syncStatus"]
    return status, model.serving("central", istiod)


def test_a_new_token_that_does_not_work_yet_leaves_the_previous_one_serving() -> None:
    objects, model, _ = _world()
    assert _state(objects, model) == ("synced", {"west": "https://west"})

    _write(objects, "new")  # not valid (yet): its cluster syncs never

    assert _state(objects, model) == ("syncing", {"west": "https://west"})


def test_rotation_in_order_keeps_west_served_throughout() -> None:
    objects, model, probe = _world()
    _state(objects, model)
    probe.valid.add("new")  # 1. a new token
    _write(objects, "new")  # 2. the new secret
    assert _state(objects, model) == ("synced", {"west": "https://west"})

    probe.valid.discard("old")  # 3. the old token revoked

    assert _state(objects, model) == ("synced", {"west": "https://west"})


def test_revoking_the_old_token_before_the_new_secret_is_in_loses_west() -> None:
    objects, model, probe = _world()
    _state(objects, model)
    probe.valid = {"new"}  # the old token revoked first

    assert _state(objects, model) == ("syncing", {})
    _write(objects, "new")
    assert _state(objects, model) == ("synced", {"west": "https://west"})


def test_a_previous_kubeconfig_that_never_synced_is_not_kept() -> None:
    objects, model, probe = _world()
    probe.valid = set()
    _state(objects, model)
    _write(objects, "new")

    assert _state(objects, model) == ("syncing", {})
