"""The sandbox world: GKE and Compute state, the clusters' API servers, persistence and time.

One lock guards the cloud state; every change is written to the state directory before the
client hears back. A ticker moves operations forward in time. A start loads what it can: a
record it cannot read back is skipped with one log line naming it, never a reason not to start.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from meshwright.sandbox import chartrepo, contract, store
from meshwright.sandbox.faults import Api, Faults
from meshwright.sandbox.gcp import catalog, loadbalancers
from meshwright.sandbox.gcp.compute import Compute
from meshwright.sandbox.gcp.errors import GcpError
from meshwright.sandbox.gcp.gke import Gke, fleet_id
from meshwright.sandbox.gcp.handlers import Backends
from meshwright.sandbox.gcp.models import ClusterRecord
from meshwright.sandbox.gcp.projects import Projects, Quotas
from meshwright.sandbox.gcp.routes import ROUTES
from meshwright.sandbox.http import GOOGLE_MAX_BODY, Request, Response, Router, Server
from meshwright.sandbox.kube.fleet import Fleet
from meshwright.sandbox.mesh import clusterz, forward, serve
from meshwright.sandbox.settings import Latency, Layout

log = logging.getLogger(__name__)

PAYLOAD_TOO_LARGE = "Request payload size exceeds the limit: {limit} bytes."


def google_refusal(status: int, message: str) -> Response:
    """The answer to a request the HTTP layer refused, in Google's error envelope."""
    if status == 413:
        message = PAYLOAD_TOO_LARGE.format(limit=GOOGLE_MAX_BODY)
    return Response(status, GcpError(status, message).envelope("gke"))


def load_state(path: Path) -> dict[str, Any]:
    """gcp.json as a mapping; an unreadable file is kept aside (and named in the log), not lost."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        data, reason = None, f"{type(err).__name__}: {err}"
    else:
        reason = "not a JSON object"
    if isinstance(data, dict):
        return data
    aside = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
    path.replace(aside)
    log.warning("started without %s (%.120s); it is kept as %s", path.name, reason, aside.name)
    return {}


class World:
    def __init__(
        self,
        root: Path,
        *,
        latency: Latency | None = None,
        faults: Faults | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.layout = Layout(root)
        store.make_private(root)  # Secrets and keys inside: 0700/0600, also for an older sandbox's state
        self.latency = latency or Latency()
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        stored = load_state(self.layout.gcp)
        self.fleet = Fleet(self.layout, latency=self.latency, faults=self.faults, lock=self.lock)
        monitoring = clusterz.for_fleet(
            self.fleet
        )  # istiod's 15014: /metrics to all, /debug/* to local callers
        self.fleet.service_proxy = monitoring
        self.fleet.port_forward = forward.beside(monitoring)  # the local caller (issue 19)
        self.compute = Compute(
            stored.get("compute"), latency=self.latency, faults=self.faults, base_url=self.base_url
        )
        self.projects = Projects(stored.get("projects"), quotas=quotas, base_url=self.base_url)
        self.gke = Gke(
            stored.get("gke"),
            latency=self.latency,
            faults=self.faults,
            hooks=self.fleet,
            base_url=self.base_url,
            compute=self.compute,
            projects=self.projects,
        )
        self.projects.usage = self.gke.usage  # regions.get reports what the clusters hold
        self.backends = Backends(self.gke, self.compute, self.projects)
        self.dataplane = serve.DataPlane(serve.world_view(self))  # sidecars, gateways, traffic (issue 12)
        self.fleet.pod_admission = self.dataplane.admit_pod  # the injector webhook, as istiod answers it
        self.fleet.config_review = self.dataplane.review_config  # istiod's config validation webhook
        self.fleet.pod_run = self.dataplane.run_pod  # a bare pod's curl, through the data plane
        # GKE's service controller: the clusters report their load balancers (holding their own
        # lock), the ticker writes them into Compute (holding the world's).
        self._balancers: queue.SimpleQueue[tuple[str, dict[str, Any], bool]] = queue.SimpleQueue()
        self.fleet.load_balancers = lambda cid, svc, present: self._balancers.put((cid, svc, present))
        self.router = self._routes()
        self.server: Server | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_tick_error = ""

    def _routes(self) -> Router:
        router = Router()
        for method, pattern, handler, api in ROUTES:
            router.add(method, pattern, self._bind(handler, api))
        return router

    def _bind(self, handler: Any, api: Api) -> Any:
        def run(r: Request) -> Response:
            return self._call(handler, api, r)

        return run

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0, *, or_any_port: bool = False) -> World:
        """Listen, bring up the clusters' API servers, start time.

        Binding is the only step that may fail a start (`or_any_port`: a taken `port` means any
        free one instead). If anything after binding raises, the listener is closed again, so no
        second listener is ever left behind.
        """
        self.server = self._listen(port, or_any_port=or_any_port)
        try:
            with self.lock:
                for cluster in self.gke.serving():
                    self._resume(cluster)
                self.tick()
            self._start_dataplane()
        except BaseException:
            self.server.stop()
            raise
        self._ticker = threading.Thread(target=self._tick_forever, name="sandbox-ticker", daemon=True)
        self._ticker.start()
        return self

    def _listen(self, port: int, *, or_any_port: bool) -> Server:
        def bind(p: int) -> Server:
            name = "meshwright-sandbox-gcp"
            return Server(p, self.handle, name=name, max_body=GOOGLE_MAX_BODY, refusal=google_refusal).start()

        if not or_any_port:
            return bind(port)
        try:
            return bind(port if isinstance(port, int) and 0 < port < 65536 else 0)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            log.warning("port %s is taken; listening on another one (clients re-read the state)", port)
            return bind(0)

    def _resume(self, cluster: ClusterRecord) -> None:
        try:
            self.fleet.resume([cluster.hooks_view()])
        except Exception as err:  # one cluster's files must not keep the others down
            log.warning(
                "cluster %s (%s) not resumed: %s: %.120s", cluster.key, cluster.id, type(err).__name__, err
            )

    def _start_dataplane(self) -> None:
        try:
            self.dataplane.start()
        except Exception as err:  # the cloud APIs serve even when the data plane cannot
            log.warning("data plane not started: %s: %.200s", type(err).__name__, err)

    def stop(self) -> None:
        self._stopping.set()
        if self.server:
            self.server.stop()
        self.dataplane.stop()
        with self.lock:
            self.save()
            self.fleet.close()

    def _tick_forever(self) -> None:
        """Moves operations on until stopped, whatever one tick meets."""
        while not self._stopping.wait(0.05):
            try:
                self.tick()
            except Exception as err:
                self._tick_failed(err)
            else:
                self._last_tick_error = ""

    def _tick_failed(self, err: Exception) -> None:
        text = f"{type(err).__name__}: {err}"
        if text != self._last_tick_error:  # one line per distinct failure, not twenty a second
            log.warning("operations ticker: %.200s", text)
        self._last_tick_error = text

    def tick(self) -> None:
        with self.lock:
            changed = self.gke.advance()
            if self._apply_balancers() or changed:
                self.save()

    def _apply_balancers(self) -> bool:
        """Write what the clusters' load balancers became into Compute; a deleted cluster's are dropped
        unseen, so what its Services had stays behind (GKE's 'Deleting a cluster' page warns of it)."""
        applied = False
        while not self._balancers.empty():
            cid, svc, present = self._balancers.get()
            cluster = next((c for c in self.gke.clusters.values() if c.id == cid), None)
            lb = loadbalancers.service_balancer(svc)
            if cluster is None or svc.get("metadata", {}).get("uid") is None:
                continue
            where = {"project": cluster.project, "region": catalog.region_of(cluster.location)}
            if present and lb is not None:
                tag = loadbalancers.node_tag(cluster.view["name"], cluster.id)
                self.compute.put_service_balancer(lb, network=cluster.view["network"], tag=tag, **where)
            elif not present:
                self.compute.drop_service_balancer(
                    loadbalancers.balancer_name(svc["metadata"]["uid"]), **where
                )
            applied = True
        return applied

    def save(self) -> None:
        state = {
            "gke": self.gke.to_json(),
            "compute": self.compute.to_json(),
            "projects": self.projects.to_json(),
        }
        store.write_json(self.layout.gcp, state)

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}" if self.server else "http://127.0.0.1"

    # -- requests ----------------------------------------------------------------------------

    def handle(self, r: Request) -> Response:
        if r.path.startswith("/_sandbox/"):
            return self._admin(r)
        found = self.router.match(r.method, r.path)
        if not found:
            status = 405 if found is False else 404
            api = "compute" if r.path.startswith("/compute/") else "gke"
            return Response(status, GcpError(status, f"No route for {r.method} {r.path[:200]}").envelope(api))
        assert not isinstance(found, bool)
        handler, params = found
        r.params = params
        response: Response = handler(r)
        return response

    def _call(self, handler: Any, api: Api, r: Request) -> Response:
        try:
            self._inject_faults(api, r)
            with self.lock:
                self.projects.check_enabled(r.params, api)
                self.gke.advance()
                body = handler(self.backends, r)
                if r.method != "GET":
                    self.save()
            return Response(200, body)
        except GcpError as err:
            return Response(err.code, err.envelope(api))
        except ValueError as err:
            return Response(400, GcpError(400, f"Invalid JSON payload received. {err}").envelope(api))
        except Exception as err:  # a bug of ours must still answer in Google's envelope
            log.exception("%s %.200s failed", r.method, r.path)
            return Response(500, GcpError(500, f"Internal error: {type(err).__name__}").envelope(api))

    def _inject_faults(self, api: Api, r: Request) -> None:
        """Sleep and raise as the fault rules matching this request say."""
        effect = self.faults.on_request(api=api, method=r.method, path=r.path, cluster=self._cluster_of(r))
        wait = self.latency.request + effect.delay
        if wait:
            time.sleep(wait)
        if effect.status is not None:
            message = effect.message or _DEFAULT_FAULT.get(effect.status, "Injected fault.")
            raise GcpError(effect.status, message, **_reason(effect.reason))

    def _cluster_of(self, r: Request) -> str | None:
        """The cluster a request is about, for fault rules: from the path, else a create's body."""
        if "cluster" in r.params:
            return r.params["cluster"]
        if "operation" in r.params and "location" in r.params:
            with self.lock:
                return self.gke.cluster_of(r.params["project"], r.params["location"], r.params["operation"])
        if r.method == "POST" and r.path.endswith("/clusters"):
            body = r.json()  # ValueError -> 400, as the handler would say
            spec = body.get("cluster") if isinstance(body, dict) else None
            name = spec.get("name") if isinstance(spec, dict) else None
            return name if isinstance(name, str) else None
        return None

    def _admin(self, r: Request) -> Response:
        if r.path == "/_sandbox/health":
            return Response(200, {"ok": True, "pid": os.getpid(), "state": str(self.layout.root)})
        if r.path == "/_sandbox/status":
            return Response(200, self.status())
        if r.path == "/_sandbox/faults":
            return self._faults(r)
        if r.path.startswith(f"{contract.CHARTS_PATH}/"):
            return _chart_file(r)
        return Response(404, {"error": f"no admin endpoint {r.path[:200]}"})

    def _faults(self, r: Request) -> Response:
        if r.method in ("PUT", "POST"):
            try:
                rules = Faults.parse(yaml.safe_load(r.body or b"[]"))
            except (ValueError, yaml.YAMLError, RecursionError) as err:
                return Response(400, {"error": f"invalid fault rules: {str(err)[:500]}"})
            (self.faults.replace if r.method == "PUT" else self.faults.extend)(rules)
        elif r.method == "DELETE":
            self.faults.replace([])
        return Response(200, {"faults": self.faults.describe()})

    def status(self) -> dict[str, Any]:
        """INTERFACES item 1: clusters by identity (project, location, name), each with its id and URL."""
        with self.lock:
            return {
                "gcp": self.base_url(),
                "state": str(self.layout.root),
                "pid": os.getpid(),
                "latency": self.latency.as_dict(),
                "clusters": [entry for c in self._by_identity() if (entry := self._status_entry(c))],
            }

    def _by_identity(self) -> list[ClusterRecord]:
        return sorted(self.gke.serving(), key=lambda c: (c.project, c.location, c.name))

    def _status_entry(self, cluster: ClusterRecord) -> dict[str, str] | None:
        url = self.fleet.endpoint(fleet_id(cluster))
        if url is None:
            return None
        identity = {"project": cluster.project, "location": cluster.location, "name": cluster.name}
        return {**identity, "id": cluster.id, "url": url}


def _chart_file(r: Request) -> Response:
    """A file of the bundled chart repository (index.yaml, or a chart archive), as a static host serves it."""
    name = r.path.removeprefix(f"{contract.CHARTS_PATH}/")
    body = chartrepo.bundled().get(name) if r.method == "GET" else None
    if body is None:
        return Response(404, {"error": f"no chart repository file {name[:200]}"})
    kind = "application/x-yaml" if name.endswith(".yaml") else "application/gzip"
    return Response(200, body, {"Content-Type": kind})


def _reason(reason: str | None) -> dict[str, Any]:
    """A fault's reason in Compute's errors[]: domain usageLimits for a rate limit, as Compute's
    concurrent operation quota error gives it (cloud.google.com/compute/operations-quota)."""
    if reason is None:
        return {}
    return {"reason": ("usageLimits" if "RateLimit" in reason or "rateLimit" in reason else "global", reason)}


_DEFAULT_FAULT = {
    429: "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
