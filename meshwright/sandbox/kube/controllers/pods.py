"""Pods a user creates directly (not through a ReplicaSet): admitted and, when the sandbox knows how
to run their container, scheduled, started and run to their end.

- Admission: the injector webhook (`admit_pod`) is called as for a ReplicaSet's pods; a refusal is
  the API server's 500 `Internal error occurred: failed calling webhook ...`. The pod is Pending.
- Run: `run_pod` (the data plane's container runner) says, for a `restartPolicy: Never` pod, how to
  run its container, or None when it does not know what the container does: such a pod stays
  Pending, unscheduled (no container runs in the sandbox). A pod it can run is scheduled (a node, an
  IP from the pod range) and Running after the rollout latency; its container then runs off the
  cluster's lock and the pod ends as the kubelet ends it: phase Succeeded (exit 0) or Failed, the
  container `terminated` with its exit code and reason Completed / Error and, under
  `terminationMessagePolicy: FallbackToLogsOnError`, the tail of its output as the message
  (kubernetes pkg/kubelet/kuberuntime: the last 80 lines, at most 2048 bytes, only on an error).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from meshwright.sandbox import clock
from meshwright.sandbox.kube.controllers.builders import condition
from meshwright.sandbox.kube.controllers.workloads import Workloads
from meshwright.sandbox.kube.status import KubeError

log = logging.getLogger(__name__)
Run = Callable[[dict[str, Any]], tuple[int, str]]
"""A started pod (a copy) -> (exit code, output) of its container."""
PodRun = Callable[[dict[str, Any]], "Run | None"]
"""A pod just created -> how to run its container, or None when the sandbox cannot run it."""
MESSAGE_LINES, MESSAGE_BYTES = 80, 2048  # the kubelet's tail of the log for FallbackToLogsOnError


def _bare(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("ownerReferences")


def terminated(pod: dict[str, Any], code: int, output: str) -> dict[str, Any]:
    """The status fields of a pod whose (first) container ended with `code`, printing `output`."""
    container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
    message = ""
    if code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
        message = "\n".join(output.splitlines()[-MESSAGE_LINES:])[-MESSAGE_BYTES:]
    state = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "finishedAt": clock.rfc3339()}
    if message:
        state["message"] = message
    name, image = container.get("name", ""), str(container.get("image", ""))
    status = {"name": name, "image": image, "imageID": _image_id(image), "ready": False, "restartCount": 0,
              "started": False, "state": {"terminated": state}}  # fmt: skip
    unready = condition("Ready", "False", "PodCompleted", "")
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "conditions": [unready, condition("ContainersReady", "False", "PodCompleted", "")],
        "containerStatuses": [status],
    }


def _image_id(image: str) -> str:
    """The digest the runtime pulled (made up here, stable per image), as the kubelet reports it."""
    digest = hashlib.sha256(image.encode()).hexdigest()
    path, _, last = image.rpartition("/")
    repository = f"{path}/{last.split(':')[0]}" if path else last.split(":")[0]  # without its tag
    return f"{repository}@sha256:{digest}"


class Pods(Workloads):
    """Bare pods: admission and, for those the sandbox can run, scheduling, start and their run."""

    run_pod: PodRun

    def _admit_pod(self, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None or not _bare(pod):
            return  # a ReplicaSet's pods were admitted by the controller that made them
        refused = self.admit_pod(pod)
        if refused:
            raise KubeError(500, refused, details={"causes": [{"message": refused}]})
        pod["status"] = {"phase": "Pending"}

    def _react_pod(self, pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        super()._react_pod(pod, old)
        if old is not None or not _bare(pod) or (pod.get("spec") or {}).get("restartPolicy") != "Never":
            return
        job = self.run_pod(pod)
        if job is not None:
            meta = pod["metadata"]
            self.later(self.latency.rollout, lambda: self._start(meta["namespace"], meta["name"], job))

    def _start(self, namespace: str, name: str, job: Run) -> None:
        """Scheduled (a node, an IP from the pod range), started, and its container run off the lock."""
        node, host_ip = self._place()
        ip = self._free_pod_ip()
        ready = [condition("Ready", "True", "", ""), condition("ContainersReady", "True", "", "")]

        def bind(pod: dict[str, Any]) -> None:
            pod.setdefault("spec", {}).setdefault("nodeName", node)
            pod["status"] = {**(pod.get("status") or {}), "phase": "Running", "conditions": ready,
                             "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip, "startTime": clock.rfc3339()}  # fmt: skip

        started = self.cluster.modify(self.rt("v1", "Pod"), namespace, name, bind)
        if started is not None:
            args = (copy.deepcopy(started), job)
            threading.Thread(target=self._run, args=args, name=f"pod-{name}", daemon=True).start()

    def _run(self, pod: dict[str, Any], job: Run) -> None:
        """Off the cluster's lock: the runner reads other clusters and sends requests."""
        try:
            code, output = job(pod)
        except Exception:  # a bug of the sandbox's runner: said in its log and in the pod's, never hidden
            log.exception("running pod %s failed in cluster %s", pod["metadata"]["name"], self.cluster.name)
            code, output = 1, "the sandbox failed to run this container (see the sandbox's log)"
        meta = pod["metadata"]
        with self.cluster.lock:
            current = self.cluster.find(self.rt("v1", "Pod"), meta["namespace"], meta["name"])
            if current is not None and current["metadata"].get("uid") == meta.get("uid"):
                self._set_status(
                    "v1", "Pod", meta["namespace"], meta["name"], terminated(current, code, output)
                )
