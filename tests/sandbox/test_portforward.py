"""`pods/portforward` over WebSocket with the stock Python client, and istiod's 15014 as a real istiod serves it:
`/debug/*` to a local caller (a port-forward), 401 through the service proxy, `/metrics` to both."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from meshwright.sandbox.kube.http import websocket
from meshwright.sandbox.mesh.http1 import HttpAnswer, HttpRequest, HttpStream
from tests.sandbox.kube_fixtures import Sandbox, deployment
from tests.sandbox.kube_fixtures import sandbox as sandbox

NS = "istio-system"
ISTIOD_LABELS = {"app": "istiod", "istio": "pilot"}


def wait_for(check: Callable[[], Any], *, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


def install_istiod(sandbox: Sandbox) -> kubernetes.client.CoreV1Api:
    """An istiod Deployment and Service as the chart renders them (the parts the sandbox reads)."""
    api = sandbox.kube()
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NS}})
    env = [{"name": "CLUSTER_ID", "value": "central"}]
    container = {"name": "discovery", "image": "docker.io/istio/pilot:1.29.0", "env": env}
    kubernetes.client.AppsV1Api(api).create_namespaced_deployment(
        NS,
        {
            "metadata": {"name": "istiod", "labels": ISTIOD_LABELS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": ISTIOD_LABELS},
                "template": {"metadata": {"labels": ISTIOD_LABELS}, "spec": {"containers": [container]}},
            },
        },
    )
    ports = [{"name": "https-dns", "port": 15012}, {"name": "http-monitoring", "port": 15014}]
    core.create_namespaced_service(
        NS, {"metadata": {"name": "istiod"}, "spec": {"selector": ISTIOD_LABELS, "ports": ports}}
    )
    return core


def running_pod(core: kubernetes.client.CoreV1Api, namespace: str, selector: str) -> str:
    def found() -> str | None:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        return next((p.metadata.name for p in pods if p.status.phase == "Running"), None)

    return str(wait_for(found, what=f"a running pod {selector}"))


@pytest.fixture
def istiod(sandbox: Sandbox) -> tuple[kubernetes.client.CoreV1Api, str]:
    core = install_istiod(sandbox)
    return core, running_pod(core, NS, "app=istiod")


def http_get(sock: Any, path: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a forwarded socket; the answer is read until the connection closes."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def read_clusterz(core: kubernetes.client.CoreV1Api) -> dict[str, str]:
    """The client-side recipe for meshwright's verify, as tested here: stock client, no kubectl."""
    pods = core.list_namespaced_pod("istio-system", label_selector="app=istiod").items
    pod = next(p.metadata.name for p in pods if p.status.phase == "Running")
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, "istio-system", ports="15014")
    try:
        conn = http.client.HTTPConnection("localhost", timeout=10)
        conn.sock = pf.socket(15014)  # HTTP/1.1 over the forwarded stream; istiod sees a local caller
        conn.sock.settimeout(10)
        conn.request("GET", "/debug/clusterz")
        answer = conn.getresponse()
        status, body = answer.status, answer.read()
    finally:
        pf.close()
    if status != 200:
        raise RuntimeError(f"clusterz: HTTP {status}: {pf.error(15014) or body[:200]!r}")
    return {e["id"]: e["syncStatus"] for e in json.loads(body)}


def test_port_forward_to_istiod_reads_clusterz_as_a_local_caller(
    istiod: tuple[kubernetes.client.CoreV1Api, str],
) -> None:
    core, pod = istiod
    assert read_clusterz(core) == {"central": "synced"}
    status, headers, body = http_get(
        portforward(core.connect_get_namespaced_pod_portforward, pod, NS, ports="15014").socket(15014),
        "/debug/clusterz",
    )
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == [{"id": "central", "secretName": "", "syncStatus": "synced"}]


def test_one_forwarded_connection_serves_several_requests_and_metrics(
    istiod: tuple[kubernetes.client.CoreV1Api, str],
) -> None:
    core, pod = istiod
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, NS, ports="15014")
    sock = pf.socket(15014)
    sock.sendall(b"GET /debug/clusterz?pretty HTTP/1.1\r\nHost: localhost\r\n\r\n")
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    pf.close()
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert b'\n    {\n        "id": "central"' in data
    assert b'istiod_managed_clusters{cluster_type="remote"} 0\n' in data
    assert b"# TYPE istiod_remote_cluster_sync_status gauge\n" in data
    assert pf.error(15014) is None


def test_service_proxy_answers_401_for_debug_and_serves_metrics(
    istiod: tuple[kubernetes.client.CoreV1Api, str],
) -> None:
    core, _ = istiod
    with pytest.raises(ApiException) as caught:
        core.connect_get_namespaced_service_proxy_with_path("istiod:15014", NS, "debug/clusterz")
    assert (caught.value.status, caught.value.body or b"") == (401, b"")
    with pytest.raises(ApiException) as caught:
        core.connect_get_namespaced_service_proxy_with_path("istiod:http-monitoring", NS, "debug/syncz")
    assert caught.value.status == 401
    metrics = core.connect_get_namespaced_service_proxy_with_path("istiod:15014", NS, "metrics")
    assert 'istiod_managed_clusters{cluster_type="local"} 1' in metrics


def test_other_ports_and_pods_fail_on_the_error_channel_as_the_kubelet_says(
    sandbox: Sandbox, istiod: tuple[kubernetes.client.CoreV1Api, str]
) -> None:
    core, pod = istiod
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, NS, ports="15012")
    assert pf.socket(15012).recv(1024) == b""  # the data channel ends
    error = wait_for(lambda: pf.error(15012), what="the error channel")
    assert error.startswith("error forwarding port 15012 to pod ")
    assert error.endswith("dial tcp6 [::1]:15012: connect: connection refused")
    kubernetes.client.AppsV1Api(sandbox.kube()).create_namespaced_deployment("default", deployment("web"))
    web = running_pod(core, "default", "app=web")
    pf = portforward(core.connect_get_namespaced_pod_portforward, web, "default", ports="15014")
    assert pf.socket(15014).recv(1024) == b""
    assert "127.0.0.1:15014: connect: connection refused" in wait_for(lambda: pf.error(15014), what="error")


def test_two_ports_on_one_connection_get_their_own_channels(
    istiod: tuple[kubernetes.client.CoreV1Api, str],
) -> None:
    core, pod = istiod
    pf = portforward(core.connect_get_namespaced_pod_portforward, pod, NS, ports="15012,15014")
    assert "15012: connect: connection refused" in wait_for(lambda: pf.error(15012), what="error")
    status, _, body = http_get(pf.socket(15014), "/debug/clusterz")
    assert (status, json.loads(body)[0]["id"]) == (200, "central")


def test_unknown_pod_is_404_and_a_bad_token_401(
    sandbox: Sandbox, istiod: tuple[kubernetes.client.CoreV1Api, str]
) -> None:
    core, _ = istiod
    with pytest.raises(ApiException) as caught:
        portforward(core.connect_get_namespaced_pod_portforward, "nothing", NS, ports="15014")
    assert "Handshake status 404" in str(caught.value.reason)
    assert 'pods \\"nothing\\" not found' in str(caught.value.reason) or 'pods "nothing" not found' in str(
        caught.value.reason
    )
    api = sandbox.kube()
    api.configuration.api_key = {"authorization": "Bearer garbage"}
    with pytest.raises(ApiException) as caught:
        portforward(
            kubernetes.client.CoreV1Api(api).connect_get_namespaced_pod_portforward, "x", NS, ports="1"
        )
    assert "Handshake status 401" in str(caught.value.reason)


def upgrade(sandbox: Sandbox, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """A raw WebSocket upgrade request; the status line, headers and whatever the server sent before closing."""
    raw = sandbox.raw()
    wanted = {
        "Host": "127.0.0.1",
        "Authorization": f"Bearer {raw.token}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "v4.channel.k8s.io",
        **headers,
    }
    with raw.context().wrap_socket(
        socket.create_connection(("127.0.0.1", raw.port), timeout=5), server_hostname="127.0.0.1"
    ) as tls:
        head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in wanted.items() if v)
        tls.sendall(head.encode() + b"\r\n")
        reader = tls.makefile("rb")
        status = int(reader.readline().split()[1])
        fields = {}
        while (line := reader.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            fields[name.lower()] = value.strip()
        body = reader.read(int(fields.get("content-length", "0")))
    return status, fields, body


def test_the_handshake_as_the_api_server_and_kubelet_answer_it(
    sandbox: Sandbox, istiod: tuple[kubernetes.client.CoreV1Api, str]
) -> None:
    _, pod = istiod
    path = f"/api/v1/namespaces/{NS}/pods/{pod}/portforward"
    status, headers, _ = upgrade(sandbox, f"{path}?ports=15014")
    assert status == 101
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455's own example
    assert headers["sec-websocket-protocol"] == "v4.channel.k8s.io"
    status, _, body = upgrade(sandbox, path)
    assert (status, json.loads(body)["message"]) == (400, 'query parameter "ports" is required')
    status, _, body = upgrade(sandbox, f"{path}?ports=15014,70000")
    assert json.loads(body)["message"] == (
        'unable to parse "15014,70000" as a port: strconv.ParseUint: parsing "70000": value out of range'
    )
    status, _, body = upgrade(
        sandbox, f"{path}?ports=15014", **{"Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
    )
    assert status == 403
    assert json.loads(body)["message"].startswith(
        "requested protocol(s) are not supported: [v5.channel.k8s.io]"
    )
    status, _, body = upgrade(sandbox, f"{path}?ports=15014", Upgrade="", Connection="")
    assert (status, json.loads(body)["message"]) == (400, "Upgrade request required")


def test_kubectl_spdy_tunnelled_or_direct_is_refused_in_words_that_say_so(
    sandbox: Sandbox, istiod: tuple[kubernetes.client.CoreV1Api, str]
) -> None:
    """kubectl >= 1.31 tries SPDY inside a WebSocket first, then a direct SPDY upgrade (POST, no `ports`)."""
    path = f"/api/v1/namespaces/{NS}/pods/{istiod[1]}/portforward"
    status, _, body = upgrade(sandbox, path, **{"Sec-WebSocket-Protocol": "SPDY/3.1+portforward.k8s.io"})
    assert status == 403
    assert (
        "requested protocol(s) are not supported: [SPDY/3.1+portforward.k8s.io]"
        in json.loads(body)["message"]
    )
    status, _, body = upgrade(
        sandbox, path, Upgrade="SPDY/3.1", **{"X-Stream-Protocol-Version": "portforward.k8s.io"}
    )
    assert status == 400
    assert json.loads(body)["message"].endswith(
        "serves port-forward over WebSocket (v4.channel.k8s.io) only, not SPDY"
    )


def test_a_pod_without_a_node_or_not_running_is_400(sandbox: Sandbox) -> None:
    core = kubernetes.client.CoreV1Api(sandbox.kube())
    containers = [{"name": "c", "image": "nginx:1"}]
    core.create_namespaced_pod("default", {"metadata": {"name": "bare"}, "spec": {"containers": containers}})
    node = core.list_node().items[0].metadata.name
    placed = {"metadata": {"name": "placed"}, "spec": {"containers": containers, "nodeName": node}}
    core.create_namespaced_pod("default", placed)
    status, _, body = upgrade(sandbox, "/api/v1/namespaces/default/pods/bare/portforward?ports=80")
    assert (status, json.loads(body)["message"]) == (400, "pod bare does not have a host assigned")
    status, _, body = upgrade(sandbox, "/api/v1/namespaces/default/pods/placed/portforward?ports=80")
    assert (status, json.loads(body)["message"]) == (
        400,
        "unable to forward port because pod is not running. Current status=Pending",
    )


def test_discovery_lists_pods_portforward(sandbox: Sandbox) -> None:
    resources = kubernetes.client.CoreV1Api(sandbox.kube()).get_api_resources().resources
    found = next(r for r in resources if r.name == "pods/portforward")
    assert (found.kind, sorted(found.verbs)) == ("PodPortForwardOptions", ["create", "get"])


def test_client_frames_are_unmasked_joined_and_pings_answered() -> None:
    def masked(opcode: int, payload: bytes, *, final: bool = True) -> bytes:
        mask = b"\x01\x02\x03\x04"
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bytes([(0x80 if final else 0) | opcode, 0x80 | len(payload)]) + mask + body

    out = io.BytesIO()
    first = masked(websocket.BINARY, b"\x00GET", final=False)
    stream = io.BytesIO(
        first + masked(websocket.PING, b"hi") + masked(0, b" /") + masked(websocket.CLOSE, b"")
    )
    assert websocket.read_message(stream, out) == (websocket.BINARY, b"\x00GET /")
    assert out.getvalue() == b"\x8a\x02hi"  # the pong, unmasked, between the fragments
    with pytest.raises(websocket.Closed):
        websocket.read_message(stream, out)


def test_forwarded_http_keeps_alive_pipelines_and_closes_on_garbage() -> None:
    def app(request: HttpRequest) -> HttpAnswer:
        return HttpAnswer(200, f"{request.method} {request.path} {request.query}".encode())

    stream = HttpStream(app)
    assert stream.feed(b"GET /a?x=1 HTTP/1.1\r\nHost: l\r\n") == b""  # half a head: nothing yet
    both = stream.feed(b"\r\nHEAD /b HTTP/1.1\r\nHost: l\r\n\r\n")
    assert both.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert b"GET /a {'x': '1'}" in both
    assert not both.endswith(b"HEAD /b {}")  # HEAD: headers only
    assert not stream.closed
    refused = stream.feed(b"NOT HTTP\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert stream.closed
