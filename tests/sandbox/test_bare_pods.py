"""Pods created directly: a curl the sandbox can run is scheduled, run from the pod and ends as the
kubelet ends it (exit code, FallbackToLogsOnError message); any other pod stays Pending."""

from __future__ import annotations

import time

import kubernetes.client

from tests.sandbox.kube_fixtures import Sandbox, sandbox
from tests.support import wait_for

__all__ = ["sandbox"]


def _pod(name: str, command: list[str], **spec: str) -> dict[str, object]:
    container = {"name": "curl", "image": "docker.io/curlimages/curl:8.16.0", "command": command,
                 "terminationMessagePolicy": "FallbackToLogsOnError"}  # fmt: skip
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def test_a_curl_pod_runs_its_request_and_ends_with_curls_exit_code_and_message(sandbox: Sandbox) -> None:
    core = kubernetes.client.CoreV1Api(sandbox.kube())
    core.create_namespaced_pod(
        "default", _pod("probe", ["curl", "-sS", "http://nowhere.default:80/"], restartPolicy="Never")
    )
    pod = wait_for(
        lambda: (p := core.read_namespaced_pod("probe", "default")).status.phase == "Failed" and p,
        what="the probe pod to end",
        timeout=5.0,
    )
    ended = pod.status.container_statuses[0].state.terminated
    assert (ended.exit_code, ended.reason) == (6, "Error")
    assert ended.message == "curl: (6) Could not resolve host: nowhere.default"
    assert pod.spec.node_name
    assert pod.status.pod_ip


def test_a_pod_the_sandbox_cannot_run_stays_pending_and_unscheduled(sandbox: Sandbox) -> None:
    core = kubernetes.client.CoreV1Api(sandbox.kube())
    core.create_namespaced_pod("default", _pod("sleeper", ["sleep", "infinity"], restartPolicy="Never"))
    core.create_namespaced_pod(
        "default", _pod("looping", ["curl", "http://nowhere/"])
    )  # restartPolicy Always
    time.sleep(0.3)  # past the rollout latency (0.1 s) that starts a pod the sandbox can run
    for name in ("sleeper", "looping"):
        pod = core.read_namespaced_pod(name, "default")
        assert (pod.status.phase, pod.spec.node_name) == ("Pending", None)
