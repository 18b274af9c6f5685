"""A cluster whose API cannot be reached: every Kubernetes step fails with one retried `Unreachable`
that names the cluster and the step, never a raw urllib3 error (issue 18's defect)."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshwright.clients import MeshwrightTarget
from meshwright.errors import Unreachable
from meshwright.models import ClusterAccess, Timing
from meshwright.pki import new_root_ca
from tasks.bookinfo import deploy_bookinfo
from tasks.common import retry_if_transient
from tasks.istio import expose_on_gateway, gateway_address, prepare_namespace, wait_release_ready
from tasks.remote_secrets import exchange_remote_secret
from tests.tasks.conftest import mesh

CA = base64.b64encode(new_root_ca(common_name="unreachable", key="ec").cert_pem).decode()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dropping_port() -> Iterator[int]:
    """A listener that accepts every connection and closes it at once, as a restarting API server does."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()


def access(name: str, port: int) -> ClusterAccess:
    return ClusterAccess(
        name=name,
        location="us-central1-a",
        status="RUNNING",
        endpoint=f"127.0.0.1:{port}",
        ca_certificate=CA,
        pod_cidr="10.8.0.0/14",
        services_cidr="10.12.0.0/20",
        timing=Timing(step="test", started=0, finished=0),
    )


STEPS: dict[str, Callable[[ClusterAccess, MeshwrightTarget], Any]] = {
    "prepare_namespace": lambda a, t: prepare_namespace.fn(mesh(), a, target=t),
    "wait_ready_istiod": lambda a, t: wait_release_ready.fn(mesh(), a, "istiod", target=t),
    "gateway_address": lambda a, t: gateway_address.fn(a, target=t),
    "expose_on_gateway": lambda a, t: expose_on_gateway.fn(mesh(), a, target=t),
    "deploy_bookinfo": lambda a, t: deploy_bookinfo.fn(
        mesh(bookinfo={"placement": {"west": ["productpage-v1", "reviews-v1"], "central": ["details-v1"]}}),
        a,
        [],
        target=t,
    ),
    "exchange_remote_secret": lambda a, t: exchange_remote_secret.fn(a, a, target=t),
}


class _FailedState:
    """What Prefect hands retry_condition_fn: a state whose result() raises the task's error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self) -> Any:
        raise self.error


@pytest.mark.parametrize("how", ["closed", "dropping"])
@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_cluster_that_cannot_be_reached_is_a_retried_unreachable_naming_cluster_and_step(
    target: MeshwrightTarget, dropping_port: int, step: str, how: str
) -> None:
    port = closed_port() if how == "closed" else dropping_port
    with pytest.raises(Unreachable) as raised:
        STEPS[step](access("central", port), target)
    error = raised.value
    assert (error.cluster, error.step) == ("central", step)
    assert str(error).startswith(f"{step} [central]: cannot reach ")
    assert "urllib3" not in str(error)
    assert "HTTPSConnectionPool" not in str(error)
    assert retry_if_transient(None, None, _FailedState(error)) is True
