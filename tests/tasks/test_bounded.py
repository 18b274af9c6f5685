"""Every Kubernetes call is bounded (issue 20): an API server that accepts, completes TLS and then
never answers fails the call as `Unreachable` (retried), instead of blocking a task thread for good."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

from meshwright import helm, kube, pki
from meshwright.errors import Unreachable, Unresponsive
from meshwright.translate import kube_call
from tasks.common import retry_if_transient


@pytest.fixture
def silent_api(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A TLS listener that accepts every connection and never says a word: (endpoint, CA as base64)."""
    ca = pki.new_root_ca(common_name="silent", key="ec")
    server = pki.new_server_cert(ca, hosts=["127.0.0.1"])
    (tmp_path / "cert.pem").write_bytes(server.cert_pem)
    (tmp_path / "key.pem").write_bytes(server.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                held.append(context.wrap_socket(conn, server_side=True))
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", base64.b64encode(ca.cert_pem).decode()
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_fails_the_call_within_its_bound(silent_api: tuple[str, str]) -> None:
    endpoint, ca = silent_api
    client = kube.connect(endpoint, ca, lambda: "token", timeout=0.5)
    started = time.monotonic()
    with (
        pytest.raises(Unresponsive, match=r"^list \[west\]: cannot reach .*: timed out"),
        kube_call(cluster="west", step="list", endpoint=f"https://{endpoint}"),
    ):
        kubernetes.client.CoreV1Api(client).list_namespace()
    # Bounded, not fast: one read bound (0.5 s here), urllib3 does not try the read again; without a
    # bound it never ends.
    assert time.monotonic() - started < 30


class _Run:
    def __init__(self, run_count: int) -> None:
        self.run_count = run_count


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self) -> None:
        raise self.error


def test_a_step_against_an_api_that_never_answers_is_tried_three_times_then_fails() -> None:
    hung = Unresponsive("cannot reach https://west: timed out", cluster="west", step="list")
    refused = Unreachable("cannot reach https://west: connection refused", cluster="west", step="list")
    assert [retry_if_transient(None, _Run(n), _Failed(hung)) for n in (1, 2, 3)] == [True, True, False]
    assert retry_if_transient(None, _Run(3), _Failed(refused)) is True  # the whole budget


def test_a_watch_may_idle_as_long_as_the_server_says_and_no_longer() -> None:
    assert (
        kube._read_bound("https://h/api/v1/pods?watch=true&timeoutSeconds=60", 30.0) == 60 + kube.WATCH_MARGIN
    )
    assert kube._read_bound("https://h/api/v1/pods?limit=1", 30.0) == 30.0
    assert kube._read_bound("https://h/api/v1/pods?watch=1", 30.0) == 1800 + kube.WATCH_MARGIN


def test_a_helm_process_against_a_silent_api_is_killed_at_its_deadline(
    silent_api: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """helm sets no timeout on its API requests: without a deadline it would wait for good."""
    monkeypatch.setattr(helm, "QUICK_DEADLINE", 1.0)
    endpoint, ca = silent_api
    with helm.cluster_command(cluster="west", endpoint=endpoint, ca_certificate=ca, token="t") as command:
        started = time.monotonic()
        with pytest.raises(Unresponsive, match=r"^helm status did not finish within 1s$"):
            asyncio.run(command.run(["status", "istiod", "--namespace", "istio-system", "--output", "json"]))
        assert time.monotonic() - started < 10
        left = subprocess.run(["pgrep", "-f", str(command._kubeconfig)], capture_output=True, text=True)
        assert left.stdout == ""  # the helm process is gone, not orphaned
