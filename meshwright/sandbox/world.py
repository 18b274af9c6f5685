"""The sandbox world: GKE and Compute state, the clusters' API servers, persistence and time.

One lock guards the cloud state; every change is written to the state directory before the
client hears back. A ticker moves operations forward in time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from meshwright.sandbox import store
from meshwright.sandbox.faults import Api, Faults
from meshwright.sandbox.gcp.compute import Compute
from meshwright.sandbox.gcp.errors import GcpError
from meshwright.sandbox.gcp.gke import Gke
from meshwright.sandbox.gcp.routes import ROUTES
from meshwright.sandbox.http import Request, Response, Router, Server
from meshwright.sandbox.kube.fleet import Fleet
from meshwright.sandbox.settings import Latency, Layout

log = logging.getLogger(__name__)


class World:
    def __init__(self, root: Path, *, latency: Latency | None = None, faults: Faults | None = None) -> None:
        self.layout = Layout(root)
        root.mkdir(parents=True, exist_ok=True)
        self.latency = latency or Latency()
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        self.state: dict[str, Any] = store.read_json(self.layout.gcp, {"gke": {}, "compute": {}})
        self.fleet = Fleet(self.layout, latency=self.latency, faults=self.faults, lock=self.lock)
        self.gke = Gke(
            self.state["gke"],
            latency=self.latency,
            faults=self.faults,
            hooks=self.fleet,
            base_url=self.base_url,
        )
        self.compute = Compute(
            self.state["compute"], latency=self.latency, faults=self.faults, base_url=self.base_url
        )
        self.router = Router()
        for method, pattern, handler, api in ROUTES:
            self.router.add(method, pattern, self._bind(handler, "gke" if api == "gke" else "compute"))
        self.server: Server | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()

    def _bind(self, handler: Any, api: Api) -> Any:
        def run(r: Request) -> Response:
            return self._call(handler, api, r)

        return run

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> World:
        self.server = Server(port, self.handle, name="meshwright-sandbox-gcp").start()
        with self.lock:
            self.fleet.resume(c for c in self.gke.clusters.values() if c["status"] in ("RUNNING", "STOPPING"))
            self.tick()
        self._ticker = threading.Thread(target=self._tick_forever, name="sandbox-ticker", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self.server:
            self.server.stop()
        with self.lock:
            self.save()
            self.fleet.close()

    def _tick_forever(self) -> None:
        while not self._stopping.wait(0.05):
            self.tick()

    def tick(self) -> None:
        with self.lock:
            if self.gke.advance():
                self.save()

    def save(self) -> None:
        store.write_json(self.layout.gcp, self.state)

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
            return Response(status, GcpError(status, f"No route for {r.method} {r.path}").envelope(api))
        assert not isinstance(found, bool)
        handler, params = found
        r.params = params
        response: Response = handler(r)
        return response

    def _call(self, handler: Any, api: Api, r: Request) -> Response:
        effect = self.faults.on_request(api=api, method=r.method, path=r.path, cluster=self._cluster_of(r))
        wait = self.latency.request + effect.delay
        if wait:
            time.sleep(wait)
        try:
            if effect.status is not None:
                raise GcpError(
                    effect.status, effect.message or _DEFAULT_FAULT.get(effect.status, "Injected fault.")
                )
            with self.lock:
                self.gke.advance()
                body = handler(self.gke, self.compute, r)
                if r.method != "GET":
                    self.save()
            return Response(200, body)
        except GcpError as err:
            return Response(err.code, err.envelope(api))
        except ValueError as err:
            return Response(400, GcpError(400, f"Invalid JSON payload received. {err}").envelope(api))
        except Exception as err:  # a bug of ours must still answer in Google's envelope
            log.exception("%s %s failed", r.method, r.path)
            return Response(500, GcpError(500, f"Internal error: {type(err).__name__}").envelope(api))

    def _cluster_of(self, r: Request) -> str | None:
        if "cluster" in r.params:
            return r.params["cluster"]
        if "operation" in r.params and "location" in r.params:
            op = self.gke.operations.get(
                f"{r.params['project']}/{r.params['location']}/{r.params['operation']}"
            )
            return op["_cluster"].rsplit("/", 1)[-1] if op else None
        if r.method == "POST" and r.path.endswith("/clusters"):
            try:
                return str(((r.json() or {}).get("cluster") or {}).get("name"))
            except ValueError:
                return None
        return None

    def _admin(self, r: Request) -> Response:
        if r.path == "/_sandbox/health":
            return Response(200, {"ok": True, "pid": os.getpid(), "state": str(self.layout.root)})
        if r.path == "/_sandbox/status":
            return Response(200, self.status())
        if r.path == "/_sandbox/faults":
            return self._faults(r)
        return Response(404, {"error": f"no admin endpoint {r.path}"})

    def _faults(self, r: Request) -> Response:
        if r.method in ("PUT", "POST"):
            try:
                rules = Faults.parse(yaml.safe_load(r.body or b"[]"))
            except (ValueError, yaml.YAMLError) as err:
                return Response(400, {"error": f"invalid fault rules: {err}"})
            (self.faults.replace if r.method == "PUT" else self.faults.extend)(rules)
        elif r.method == "DELETE":
            self.faults.replace([])
        return Response(200, {"faults": self.faults.describe()})

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "gcp": self.base_url(),
                "state": str(self.layout.root),
                "pid": os.getpid(),
                "latency": self.latency.as_dict(),
                "clusters": self.fleet.endpoints(),
            }


_DEFAULT_FAULT = {
    429: "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
