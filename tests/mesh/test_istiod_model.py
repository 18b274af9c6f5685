"""The emulated istiod's model, without HTTP: a dict of objects, a scripted probe and a hand clock."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest
import yaml

from meshwright.sandbox.mesh import boundedyaml
from meshwright.sandbox.mesh import istiod as istiod_module
from meshwright.sandbox.mesh.http1 import HttpRequest
from meshwright.sandbox.mesh.istiod import (
    DEFAULT_REMOTE_TIMEOUT,
    IstiodModel,
    ProbeResult,
    RemoteConfig,
    go_duration,
    istiods,
    parse_kubeconfig,
)
from meshwright.sandbox.mesh.monitoring import Monitoring


class Objects:
    """One cluster's objects by type key: what the fleet's object store answers."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {
            "apps/deployments": [],
            "/secrets": [],
            "/services": [],
        }

    def list(self, type_key: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o for o in self.items.get(type_key, []) if namespace in (None, o["metadata"].get("namespace"))
        ]

    def put(self, type_key: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        self.items[type_key] = [o for o in self.items[type_key] if o["metadata"]["name"] != name] + [obj]

    def remove(self, type_key: str, name: str) -> None:
        self.items[type_key] = [o for o in self.items[type_key] if o["metadata"]["name"] != name]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Probe:
    """Answers per server; counts calls so the cache can be seen working."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}
        self.calls = 0

    def __call__(self, config: RemoteConfig) -> ProbeResult:
        self.calls += 1
        ok = self.up.get(config.server, False)
        return ProbeResult(ok, "" if ok else "cannot reach")


def kubeconfig(cluster: str, server: str, *, user: dict[str, Any] | None = None) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": "Y2E="}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "current-context": cluster,
        "users": [{"name": cluster, "user": user if user is not None else {"token": "t0k3n"}}],
    }
    return base64.b64encode(yaml.safe_dump(doc).encode()).decode()


def remote_secret(
    name: str, data: dict[str, str], *, created: str = "2026-11-25T12:00:00Z"
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "istio-system",
            "labels": {"istio/multiCluster": "true"},
            "creationTimestamp": created,
        },
        "data": data,
    }


def istiod_deployment(
    cluster_id: str | None, *, ready: int = 1, env: dict[str, str] | None = None
) -> dict[str, Any]:
    values = {**({"CLUSTER_ID": cluster_id} if cluster_id else {}), **(env or {})}
    return {
        "metadata": {"name": "istiod", "namespace": "istio-system", "uid": "u1", "labels": {"app": "istiod"}},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "istiod", "istio": "pilot"}},
                "spec": {
                    "containers": [
                        {"name": "discovery", "env": [{"name": k, "value": v} for k, v in values.items()]}
                    ]
                },
            }
        },
        "status": {"readyReplicas": ready},
    }


@pytest.fixture
def world() -> tuple[Objects, IstiodModel, Probe, Clock]:
    objects, probe, clock = Objects(), Probe(), Clock()
    objects.put("apps/deployments", istiod_deployment("central", env={"PILOT_REMOTE_CLUSTER_TIMEOUT": "10s"}))
    return objects, IstiodModel(probe, clock=clock, cache_seconds=0.0), probe, clock


def clusterz(objects: Objects, model: IstiodModel) -> list[dict[str, str]]:
    (istiod,) = istiods(objects)
    return model.clusterz("c1", objects, istiod)


def test_config_cluster_comes_first_with_no_secret(world: Any) -> None:
    objects, model, _, _ = world
    assert clusterz(objects, model) == [{"id": "central", "secretName": "", "syncStatus": "synced"}]


def test_reachable_remote_is_synced_and_named_by_namespace_and_secret(world: Any) -> None:
    objects, model, probe, _ = world
    probe.up["https://west"] = True
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    assert clusterz(objects, model)[1:] == [
        {"id": "west", "secretName": "istio-system/istio-remote-secret-west", "syncStatus": "synced"}
    ]


def test_unreachable_remote_is_syncing_until_the_timeout_then_timeout(world: Any) -> None:
    objects, model, _, clock = world
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    assert clusterz(objects, model)[1]["syncStatus"] == "syncing"
    clock.now += 9.9
    assert clusterz(objects, model)[1]["syncStatus"] == "syncing"
    clock.now += 0.1
    assert clusterz(objects, model)[1]["syncStatus"] == "timeout"


def test_a_remote_that_goes_away_stops_being_synced(world: Any) -> None:
    objects, model, probe, clock = world
    probe.up["https://west"] = True
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    assert clusterz(objects, model)[1]["syncStatus"] == "synced"
    clock.now += 60
    probe.up["https://west"] = False
    assert clusterz(objects, model)[1]["syncStatus"] == "timeout"


def test_key_equal_to_own_cluster_id_is_ignored(world: Any) -> None:
    objects, model, probe, _ = world
    probe.up["https://central"] = True
    objects.put(
        "/secrets",
        remote_secret("istio-remote-secret-central", {"central": kubeconfig("central", "https://central")}),
    )
    assert [e["id"] for e in clusterz(objects, model)] == ["central"]


def test_second_secret_for_a_registered_id_is_ignored(world: Any) -> None:
    objects, model, probe, _ = world
    probe.up["https://west"] = True
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    assert len(clusterz(objects, model)) == 2
    objects.put(
        "/secrets",
        remote_secret(
            "another-west", {"west": kubeconfig("west", "https://elsewhere")}, created="2026-11-25T11:00:00Z"
        ),
    )
    assert clusterz(objects, model)[1:] == [
        {"id": "west", "secretName": "istio-system/istio-remote-secret-west", "syncStatus": "synced"}
    ]


def test_unlabelled_secrets_are_not_read(world: Any) -> None:
    objects, model, probe, _ = world
    probe.up["https://west"] = True
    secret = remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    secret["metadata"]["labels"] = {}
    objects.put("/secrets", secret)
    assert len(clusterz(objects, model)) == 1


def test_deleted_secret_or_key_drops_the_cluster(world: Any) -> None:
    objects, model, probe, _ = world
    probe.up.update({"https://west": True, "https://east": True})
    both = {"west": kubeconfig("west", "https://west"), "east": kubeconfig("east", "https://east")}
    objects.put("/secrets", remote_secret("multi", both))
    assert sorted(e["id"] for e in clusterz(objects, model)[1:]) == ["east", "west"]
    objects.put("/secrets", remote_secret("multi", {"east": both["east"]}))
    assert [e["id"] for e in clusterz(objects, model)[1:]] == ["east"]
    objects.remove("/secrets", "multi")
    assert len(clusterz(objects, model)) == 1


def test_changed_kubeconfig_restarts_the_sync_clock(world: Any) -> None:
    objects, model, _, clock = world
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    clusterz(objects, model)
    clock.now += 20
    assert clusterz(objects, model)[1]["syncStatus"] == "timeout"
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west2")})
    )
    assert clusterz(objects, model)[1]["syncStatus"] == "syncing"


@pytest.mark.parametrize(
    "user",
    [
        {"exec": {"command": "gke-gcloud-auth-plugin"}},
        {"auth-provider": {"name": "gcp"}},
        {"tokenFile": "/var/run/token"},
        {"client-certificate": "/tmp/c.pem", "client-key": "/tmp/k.pem"},
    ],
)
def test_kubeconfigs_that_run_code_or_read_files_are_refused_and_not_listed(
    world: Any, user: dict[str, Any]
) -> None:
    objects, model, probe, _ = world
    probe.up["https://west"] = True
    objects.put(
        "/secrets",
        remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west", user=user)}),
    )
    assert len(clusterz(objects, model)) == 1


def test_garbage_kubeconfig_is_not_listed() -> None:
    assert parse_kubeconfig(b"{not yaml: [") is None
    assert parse_kubeconfig(b"just a string") is None
    assert parse_kubeconfig(base64.b64decode(kubeconfig("w", "https://w"))) == RemoteConfig(
        "https://w", b"ca", "t0k3n"
    )


def test_probe_results_are_cached_briefly() -> None:
    objects, probe, clock = Objects(), Probe(), Clock()
    objects.put("apps/deployments", istiod_deployment("central"))
    model = IstiodModel(probe, clock=clock, cache_seconds=1.0)
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    clusterz(objects, model)
    clusterz(objects, model)
    assert probe.calls == 1
    clock.now += 1.5
    clusterz(objects, model)
    assert probe.calls == 2


def test_only_ready_istiod_deployments_count_and_cluster_id_defaults_like_the_chart() -> None:
    objects = Objects()
    objects.put("apps/deployments", istiod_deployment("central", ready=0))
    assert istiods(objects) == []
    objects.put("apps/deployments", istiod_deployment(None))
    (istiod,) = istiods(objects)
    assert (istiod.cluster_id, istiod.remote_timeout) == ("Kubernetes", DEFAULT_REMOTE_TIMEOUT)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("250ms", 0.25), ("0", 0.0), ("2h", 7200.0), ("abc", None), ("", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert go_duration(text) == seconds


DEEP_KUBECONFIG = ("clusters: " + "[" * 20_000 + "]" * 20_000).encode()
ALIAS_BOMB = (  # 9 levels of 9 aliases: `str()` of `server` would be about a gigabyte
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True))
    + "clusters: [{name: c, cluster: {server: *h}}]\ncontexts: [{name: c, context: {cluster: c}}]\n"
    + "current-context: c\n"
).encode()


def clusterz_answer(objects: Objects, model: IstiodModel) -> tuple[int, Any]:
    """What a local caller of istiod's 15014 gets for /debug/clusterz."""
    (istiod,) = istiods(objects)
    asked = HttpRequest("GET", "/debug/clusterz", {}, {})
    answer = Monitoring(model).answer(asked, cluster="c1", objects=objects, istiod=istiod, local=True)
    return answer.status, json.loads(answer.body) if answer.status == 200 else answer.body


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (DEEP_KUBECONFIG, "kubeconfig cannot be loaded: yaml: exceeded max depth of 100"),
        (ALIAS_BOMB, "kubeconfig cannot be loaded: yaml: document contains excessive aliasing"),
        (b"{not yaml: [", "kubeconfig cannot be loaded: "),
        (b"", "kubeconfig is empty"),
    ],
)
def test_a_kubeconfig_istiod_cannot_load_is_failed_by_secret_name_and_harms_no_other(
    world: Any, raw: bytes, error: str
) -> None:
    objects, model, probe, _ = world
    probe.up["https://west"] = True
    objects.put(
        "/secrets", remote_secret("istio-remote-secret-west", {"west": kubeconfig("west", "https://west")})
    )
    objects.put("/secrets", remote_secret("hostile", {"north": base64.b64encode(raw).decode()}))
    status, entries = clusterz_answer(objects, model)  # the bounded loader refused it: no hang
    assert status == 200
    assert entries[1:] == [
        {"id": "west", "secretName": "istio-system/istio-remote-secret-west", "syncStatus": "synced"}
    ]
    (istiod,) = istiods(objects)
    (failure,) = model.failed("c1", istiod)
    assert (failure.secret, failure.cluster_id) == ("istio-system/hostile", "north")
    assert failure.error.startswith(error)
    objects.remove("/secrets", "hostile")
    clusterz(objects, model)
    assert model.failed("c1", istiod) == []


def test_exec_plugins_are_refused_in_istiods_words(world: Any) -> None:
    objects, model, _, _ = world
    user = {
        "exec": {"command": "gke-gcloud-auth-plugin", "apiVersion": "client.authentication.k8s.io/v1beta1"}
    }
    objects.put("/secrets", remote_secret("w", {"west": kubeconfig("west", "https://west", user=user)}))
    assert len(clusterz(objects, model)) == 1
    (istiod,) = istiods(objects)
    assert [f.error for f in model.failed("c1", istiod)] == ["kubeconfig is not allowed: exec is not allowed"]


def test_probe_results_of_deleted_secrets_are_forgotten(world: Any) -> None:
    objects, model, probe, _ = world
    for i in range(50):
        server = f"https://r{i}"
        probe.up[server] = True
        objects.put("/secrets", remote_secret(f"s{i}", {f"r{i}": kubeconfig(f"r{i}", server)}))
    assert len(clusterz(objects, model)) == 51
    assert model.cached_probes == 50
    for i in range(1, 50):
        objects.remove("/secrets", f"s{i}")
    assert len(clusterz(objects, model)) == 2
    assert model.cached_probes == 1


def test_remotes_whose_api_never_answers_do_not_slow_down_clusterz() -> None:
    objects, clock, release = Objects(), Clock(), threading.Event()
    objects.put("apps/deployments", istiod_deployment("central"))

    def probe(config: RemoteConfig) -> ProbeResult:
        if "hang" in config.server:
            release.wait(10)  # an API server that takes the connection and never answers
            return ProbeResult(False, "no answer")
        return ProbeResult(True)

    model = IstiodModel(probe, clock=clock, cache_seconds=0.0, wait=1.0)
    for i in range(5):
        objects.put("/secrets", remote_secret(f"hang{i}", {f"hang{i}": kubeconfig("h", f"https://hang{i}")}))
    objects.put("/secrets", remote_secret("west", {"west": kubeconfig("west", "https://west")}))
    try:
        started = time.monotonic()
        statuses = {e["id"]: e["syncStatus"] for e in clusterz(objects, model)[1:]}
        # Not a speed check: one wait of 1 s in all, where 5 probes in a row would take 5 s.
        assert time.monotonic() - started < 4.0
        assert statuses == {"west": "synced", **{f"hang{i}": "syncing" for i in range(5)}}
        started = time.monotonic()
        assert clusterz(objects, model)[-1]["syncStatus"] == "synced"
        assert time.monotonic() - started < 0.9  # known to be slow: not waited (1 s) for again
    finally:
        release.set()


def test_a_kubeconfig_held_by_many_istiods_is_loaded_once_until_its_content_changes(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects, model, probe, _ = world
    loads: list[bytes] = []
    load = istiod_module.load_kubeconfig

    def counted(raw: bytes) -> RemoteConfig | str:
        loads.append(raw)
        return load(raw)

    monkeypatch.setattr(istiod_module, "load_kubeconfig", counted)
    probe.up["https://west"] = True
    objects.put("/secrets", remote_secret("w", {"west": kubeconfig("west", "https://west")}))
    objects.put("/secrets", remote_secret("bad", {"north": base64.b64encode(b"{not yaml: [").decode()}))
    (istiod,) = istiods(objects)
    for cluster in ("c1", "c2", "c3"):  # one istiod per primary, every one holding the same secrets
        assert [e["syncStatus"] for e in model.clusterz(cluster, objects, istiod)] == ["synced"] * 2
        assert [f.cluster_id for f in model.failed(cluster, istiod)] == ["north"]
    assert len(loads) == 2
    assert model.cached_kubeconfigs == 2
    objects.put("/secrets", remote_secret("w", {"west": kubeconfig("west", "https://west-2")}))
    model.clusterz("c1", objects, istiod)
    assert model.servers("c1", istiod) == {"west": "https://west-2"}  # the new content, loaded anew
    assert model.servers("c2", istiod) == {"west": "https://west"}  # c2 has not reconciled yet
    assert len(loads) == 3
    for name in ("w", "bad"):
        objects.remove("/secrets", name)
    for cluster in ("c1", "c2", "c3"):
        model.clusterz(cluster, objects, istiod)
    assert model.cached_kubeconfigs == 0


@pytest.mark.parametrize(
    "raw",
    [
        base64.b64decode(kubeconfig("west", "https://west")),
        b"a: &x [1, 2]\nb: *x\nc: {d: 'e', f: null, g: 1.5, h: true, i: 2026-11-25}\n",
        DEEP_KUBECONFIG,
        ALIAS_BOMB,
        b"{not yaml: [",
        b"a: 1\n\tb: 2\n",
    ],
)
def test_libyaml_and_pyyaml_load_alike(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def outcome() -> Any:
        try:
            return boundedyaml.load(raw)
        except (yaml.YAMLError, boundedyaml.Refused) as e:
            return type(e).__name__, str(e)

    fast = outcome()
    monkeypatch.setattr(boundedyaml, "_Fast", None)
    assert fast == outcome()
