"""A cluster's API against a hostile client: the real server's answer, nothing stored, a sandbox that restarts."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

import kubernetes.client
import pytest

from tests.sandbox.kube_fixtures import RawKube, Sandbox, config_map, deployment, service
from tests.sandbox.kube_fixtures import sandbox as sandbox

CM = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
SERVICES = "/api/v1/namespaces/default/services"


def causes(answer: dict[str, Any]) -> list[str]:
    return [c["field"] for c in answer.get("details", {}).get("causes", [])]


def absent(raw: RawKube, path: str) -> bool:
    return raw.call("GET", path)[0] == 404


def test_deployment_with_string_replicas_is_refused_and_a_restart_still_serves(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    status, answer = raw.call("POST", DEPLOYMENTS, deployment("web", replicas="abc"))
    assert status == 400
    assert (
        "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        in (answer["message"])
    )
    assert absent(raw, f"{DEPLOYMENTS}/web")
    sandbox.restart()
    apps = kubernetes.client.AppsV1Api(sandbox.kube())
    assert apps.list_namespaced_deployment("default").items == []
    assert apps.create_namespaced_deployment("default", deployment("web")).spec.replicas == 1


def test_service_with_unknown_type_is_invalid_with_causes(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    status, answer = raw.call("POST", SERVICES, service("web", {"port": 80}, kind="Bogus"))
    assert (status, answer["reason"]) == (422, "Invalid")
    assert causes(answer) == ["spec.type"]
    assert 'Unsupported value: "Bogus"' in answer["message"]
    assert absent(raw, f"{SERVICES}/web")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (config_map("Bad_Name"), 422, "metadata.name"),
        (config_map("a", metadata={"name": "a", "labels": {"bad key": "v"}}), 422, "metadata.labels"),
        (config_map("a", metadata={"name": "a", "labels": {"k": "no spaces"}}), 422, "metadata.labels"),
        (config_map("a", metadata={"name": "a", "annotations": {"k": 1}}), 400, None),
        (config_map("a", metadata={"name": "a", "labels": [1]}), 400, None),
        (config_map("a", data=["x"]), 400, None),
        (config_map("a", data={"bad key": "v"}), 422, "data[bad key]"),
        (config_map("a", data={"k": 1}), 400, None),
        (config_map("a", metadata="a"), 400, None),
    ],
)
def test_bad_config_maps_are_refused_and_not_stored(
    sandbox: Sandbox, body: dict[str, Any], status: int, field: str | None
) -> None:
    raw = sandbox.raw()
    got, answer = raw.call("POST", CM, body)
    assert got == status, answer
    if field is not None:
        assert field in causes(answer)
    assert [i["metadata"]["name"] for i in raw.call("GET", CM)[1]["items"]] == ["kube-root-ca.crt"]


def test_label_selector_lists_work_after_a_bad_label_was_refused(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert raw.call("POST", CM, config_map("a", metadata={"name": "a", "labels": [1]}))[0] == 400
    assert raw.call("POST", CM, config_map("b", metadata={"name": "b", "labels": {"a": "b"}}))[0] == 201
    core = kubernetes.client.CoreV1Api(sandbox.kube())
    assert [
        c.metadata.name for c in core.list_namespaced_config_map("default", label_selector="a=b").items
    ] == ["b"]


def test_names_follow_each_kinds_rule(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert raw.call("POST", "/api/v1/namespaces", {"metadata": {"name": "a.b"}})[0] == 422  # DNS-1123 label
    assert raw.call("POST", SERVICES, service("1web", {"port": 80}))[0] == 422  # DNS-1035 label
    assert raw.call("POST", CM, config_map("x" * 254))[0] == 422
    role = {"metadata": {"name": "system:reader"}, "rules": [{"verbs": ["get"], "resources": ["pods"]}]}
    assert raw.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)[0] == 201
    slash = {**role, "metadata": {"name": "a%2Fb"}}
    assert raw.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", slash)[0] == 422


def test_config_map_data_over_one_mib_is_invalid_and_a_body_over_three_mib_too_large(
    sandbox: Sandbox,
) -> None:
    raw = sandbox.raw()
    status, answer = raw.call("POST", CM, config_map("big", data={"k": "x" * (2 * 1024 * 1024)}))
    assert status == 422
    assert "Too long: must have at most 1048576 bytes" in answer["message"]
    status, answer = raw.call("POST", CM, config_map("huge", data={"k": "x" * (5 * 1024 * 1024)}))
    assert (status, answer["reason"]) == (413, "RequestEntityTooLarge")
    secret = {"metadata": {"name": "big"}, "data": {"k": "eHh4" * (400 * 1024)}}
    status, answer = raw.call("POST", "/api/v1/namespaces/default/secrets", secret)
    assert (status, causes(answer)) == (422, ["data"])
    assert absent(raw, f"{CM}/big")
    assert absent(raw, f"{CM}/huge")
    assert absent(raw, "/api/v1/namespaces/default/secrets/big")


def test_secret_data_must_be_base64(sandbox: Sandbox) -> None:
    status, answer = sandbox.raw().call(
        "POST",
        "/api/v1/namespaces/default/secrets",
        {"metadata": {"name": "s"}, "data": {"k": "not base64!"}},
    )
    assert status == 400
    assert "illegal base64 data at input byte" in answer["message"]


def test_broken_patches_are_client_errors_and_change_nothing(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert raw.call("POST", CM, config_map("cm", data={"a": "1"}))[0] == 201
    before = raw.call("GET", f"{CM}/cm")[1]
    json_patch = "application/json-patch+json"
    assert raw.call("PATCH", f"{CM}/cm", "abc", content_type=json_patch)[0] == 400
    assert raw.call("PATCH", f"{CM}/cm", [1], content_type=json_patch)[0] == 400
    replace = [{"op": "replace", "path": "/metadata", "value": "x"}]
    status, answer = raw.call("PATCH", f"{CM}/cm", replace, content_type=json_patch)
    assert (status, causes(answer)) == (422, ["patch"])
    merge = "application/merge-patch+json"
    assert raw.call("PATCH", f"{CM}/cm", {"metadata": "x"}, content_type=merge)[0] == 422
    assert raw.call("PATCH", f"{CM}/cm", {"data": {"a": 5}}, content_type=merge)[0] == 422
    assert (
        raw.call("PATCH", f"{CM}/cm", [{"op": "remove", "path": "/nope"}], content_type=json_patch)[0] == 422
    )
    smp = "application/strategic-merge-patch+json"
    assert raw.call("PATCH", f"{CM}/cm", "abc", content_type=smp)[0] == 400
    assert raw.call("GET", f"{CM}/cm")[1] == before


def test_bodies_that_are_not_objects_are_bad_requests(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    for body in (b"[1]", b'"abc"', b"{", b"[" * 100_000, b"\xff\xfe"):
        status, _ = raw.call("POST", CM, raw=body)
        assert status == 400, body[:10]
    token = "/api/v1/namespaces/default/serviceaccounts/default/token"
    assert raw.call("POST", token, {"spec": {"expirationSeconds": "abc"}})[0] == 400
    assert raw.call("POST", token, {"spec": "abc"})[0] == 400
    assert raw.call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", [1])[0] == 400
    assert raw.call("PUT", f"{DEPLOYMENTS}/x/scale", {"spec": "x"})[0] == 404
    assert raw.call("GET", f"{CM}?watch=true&timeoutSeconds=abc")[0] == 400


def test_bearer_scheme_is_case_insensitive(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert raw.call("GET", CM, auth=f"{scheme} {raw.token}")[0] == 200
    assert raw.call("GET", CM, auth=f"Basic {raw.token}")[0] == 401
    assert raw.call("GET", CM, auth="bearer ")[0] == 401


def test_paths_are_percent_decoded(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    status, answer = raw.call("GET", f"{CM}/kube%2Droot%2Dca.crt")
    assert (status, answer["metadata"]["name"]) == (200, "kube-root-ca.crt")


def _server_threads() -> int:
    return sum(1 for t in threading.enumerate() if "process_request" in t.name)


def test_a_watch_whose_client_left_frees_its_thread(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert raw.call("GET", CM)[0] == 200
    deadline = time.monotonic() + 10
    while _server_threads() and time.monotonic() < deadline:
        time.sleep(0.05)  # keep-alive threads of earlier calls close with their connections
    baseline = _server_threads()
    tls = raw.context().wrap_socket(
        socket.create_connection(("127.0.0.1", raw.port)), server_hostname="127.0.0.1"
    )
    request = f"GET {CM}?watch=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {raw.token}\r\n\r\n"
    tls.sendall(request.encode())
    assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    assert _server_threads() == baseline + 1
    tls.close()
    deadline = time.monotonic() + 20  # the heartbeat notices within about a second; 30 minutes before
    while _server_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _server_threads() == baseline


def test_unloadable_journal_records_are_skipped_with_one_line_each(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    raw = sandbox.raw()
    assert raw.call("POST", CM, config_map("kept", data={"a": "1"}))[0] == 201
    cid = next(iter(sandbox.world.fleet.running_apis))
    journal = sandbox.world.layout.kube_dir(cid) / "objects" / "journal.jsonl"
    sandbox.world.stop()
    bad_deployment = deployment("bad", replicas="abc")
    bad_deployment["metadata"].update(namespace="default", uid="u", generation=1)
    records = [
        [1, 2, 3],
        {"rv": 900, "op": "put", "key": ["/configmaps", "default"], "obj": {}},
        {"rv": 901, "op": "put", "key": ["/configmaps", "default", "x"], "obj": {"metadata": "x"}},
        {"rv": 902, "op": "put", "key": ["apps/deployments", "default", "bad"], "obj": bad_deployment},
        {"rv": "x", "op": "explode"},
    ]
    with journal.open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    caplog.set_level(logging.WARNING)
    world = sandbox.restart()
    assert world.fleet.endpoint(cid) is not None
    raw = sandbox.raw()
    assert raw.call("GET", f"{CM}/kept")[1]["data"] == {"a": "1"}
    assert raw.call("GET", f"{CM}/x")[0] == 404
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert (
        len([r for r in skipped if "journal" in r.getMessage() or "cannot be loaded" in r.getMessage()]) >= 4
    )
    assert raw.call("GET", f"{DEPLOYMENTS}/bad")[0] == 404
    assert any("Deployment default/bad does not decode" in r.getMessage() for r in skipped)


def test_load_balancer_ports_get_distinct_node_ports_in_range(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    ports = [
        {"name": n, "port": p}
        for n, p in (("status", 15021), ("tls", 15443), ("istiod", 15012), ("web", 15017))
    ]
    status, svc = raw.call("POST", SERVICES, service("gw", *ports, kind="LoadBalancer"))
    assert status == 201
    node_ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    assert len(set(node_ports)) == 4
    assert all(30000 <= n <= 32767 for n in node_ports)
    taken = {"name": "a", "port": 80, "nodePort": node_ports[0]}
    status, answer = raw.call("POST", SERVICES, service("other", taken, kind="NodePort"))
    assert (status, causes(answer)) == (422, ["spec.ports[0].nodePort"])
    assert "provided port is already allocated" in answer["message"]
    outside = {"name": "a", "port": 80, "nodePort": 80}
    assert raw.call("POST", SERVICES, service("other", outside, kind="NodePort"))[0] == 422
    on_cluster_ip = {"name": "a", "port": 80, "nodePort": 30500}
    assert raw.call("POST", SERVICES, service("other", on_cluster_ip))[0] == 422
    assert absent(raw, f"{SERVICES}/other")
    merge = "application/merge-patch+json"
    patched = raw.call("PATCH", f"{SERVICES}/gw", {"metadata": {"labels": {"x": "y"}}}, content_type=merge)[1]
    assert [p["nodePort"] for p in patched["spec"]["ports"]] == node_ports


def test_cluster_files_are_keyed_by_the_sandbox_id(sandbox: Sandbox) -> None:
    cid = sandbox.cluster().id
    layout = sandbox.world.layout
    assert layout.kube_dir(cid).is_dir()
    assert layout.ca_dir(cid).is_dir()
    assert {p.name for p in (layout.root / "kube").iterdir()} == {cid}
    assert sandbox.world.fleet.endpoint(cid) == f"https://{sandbox.cluster().endpoint}"


def test_kube_errors_never_drop_the_connection(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    conn = raw.connection()
    for path in (
        f"{CM}/%ZZ",
        "/api/v1/namespaces/default/nothing",
        "/apis/x",
        "/",
        "/api/v1/namespaces//configmaps",
    ):
        conn.request("GET", path, headers={"Authorization": f"Bearer {raw.token}"})
        response = conn.getresponse()
        response.read()
        assert response.status < 500, path
    conn.close()


def test_patch_bodies_that_do_not_parse_are_bad_requests(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert raw.call("POST", CM, config_map("cm"))[0] == 201
    for content_type in ("application/merge-patch+json", "application/apply-patch+yaml"):
        for body in (b"[" * 100_000, b"{", b"\xff"):
            status, _ = raw.call("PATCH", f"{CM}/cm?fieldManager=t", raw=body, content_type=content_type)
            assert status == 400, (content_type, body[:5])


ISTIO = "/api/v1/namespaces/default"


def _webhooks(*hooks: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "v"}, "webhooks": list(hooks)}


def _hook(name: str, **client: Any) -> dict[str, Any]:
    config = client or {"service": {"name": "istiod", "namespace": "default", "path": "/validate"}}
    return {"name": name, "clientConfig": config, "sideEffects": "None", "admissionReviewVersions": ["v1"]}


def _with_pod(**pod: Any) -> dict[str, Any]:
    body = deployment("web")
    body["spec"]["template"]["spec"].update(pod)
    return body


NEGATIVES: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        {
            "metadata": {"name": "b"},
            "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}},
        },
        422,
        "minAvailable and maxUnavailable cannot be both set",
    ),
    (
        "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers",
        {
            "metadata": {"name": "h"},
            "spec": {
                "minReplicas": 6,
                "maxReplicas": 5,
                "scaleTargetRef": {"kind": "Deployment", "name": "x"},
            },
        },
        422,
        "must be greater than or equal to `minReplicas`",
    ),
    (
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        _webhooks(_hook("a.b.c"), _hook("a.b.c")),
        422,
        'webhooks[1].name: Duplicate value: "a.b.c"',
    ),
    (
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        _webhooks(_hook("validation", url="http://x", service={"name": "s", "namespace": "n"})),
        422,
        "exactly one of url or service is required",
    ),
    (
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        {
            "metadata": {"name": "e"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["300.1.1.1"]}],
            "ports": [{"name": "Bad_Name", "port": 1}],
        },
        422,
        "must be a valid IPv4 address",
    ),
    (
        f"{ISTIO}/services",
        {"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "ports": [{"port": 80}]}},
        422,
        "spec.externalName: Required value",
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "x"}],
        },
        422,
        "subjects[0].namespace: Required value",
    ),
    (
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        {
            "metadata": {"name": "xs.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "xs", "kind": "X"},
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        },
        422,
        "schemas are required",
    ),
    (
        DEPLOYMENTS,
        _with_pod(
            containers=[{"name": "c", "image": "i", "volumeMounts": [{"name": "nothere", "mountPath": "/x"}]}]
        ),
        422,
        'Not found: "nothere"',
    ),
    (
        DEPLOYMENTS,
        _with_pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
        422,
        'volumes[1].name: Duplicate value: "v"',
    ),
    (
        DEPLOYMENTS,
        _with_pod(
            containers=[
                {
                    "name": "c",
                    "image": "i",
                    "ports": [{"name": "https-webhooks-too-long", "containerPort": 1}],
                }
            ]
        ),
        422,
        "must be no more than 15 characters",
    ),
    (
        DEPLOYMENTS,
        _with_pod(containers=[{"name": "c", "image": "i", "resources": {"requests": {"cpu": "abc"}}}]),
        400,
        "quantities must match the regular expression",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"), NEGATIVES, ids=[m[:30] for *_, m in NEGATIVES]
)
def test_what_a_real_server_refuses_is_refused_and_not_stored(
    sandbox: Sandbox, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    raw = sandbox.raw()
    got, answer = raw.call("POST", path, body)
    assert got == status, answer
    assert message in answer["message"]
    assert absent(raw, f"{path}/{body['metadata']['name']}")


def test_a_deployment_selector_cannot_change(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert raw.call("POST", DEPLOYMENTS, deployment("sel"))[0] == 201
    labels = {"app": "sel", "x": "y"}
    change = {"spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}}
    status, answer = raw.call(
        "PATCH", f"{DEPLOYMENTS}/sel", change, content_type="application/merge-patch+json"
    )
    assert (status, answer["details"]["causes"][0]["field"]) == (422, "spec.selector")
    assert "field is immutable" in answer["message"]
    assert raw.call("GET", f"{DEPLOYMENTS}/sel")[1]["spec"]["selector"] == {"matchLabels": {"app": "sel"}}


def test_a_load_balancer_becomes_cluster_ip_and_drops_its_node_ports(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    assert (
        raw.call("POST", SERVICES, service("lb", {"name": "http", "port": 80}, kind="LoadBalancer"))[0] == 201
    )
    status, svc = raw.call(
        "PATCH",
        f"{SERVICES}/lb",
        {"spec": {"type": "ClusterIP"}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 200, svc
    assert [p.get("nodePort") for p in svc["spec"]["ports"]] == [None]
    assert "externalTrafficPolicy" not in svc["spec"]
