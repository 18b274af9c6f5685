"""The gateways' loopback listeners: one HTTP listener per port of each LoadBalancer Service.

Anything on the machine can reach these ports, so they keep the bounds the sandbox's API listeners
keep (`sandbox.http`): at most MAX_CONNECTIONS connections each (more are closed at once, as Envoy
closes a downstream connection over its limit: `overload.global_downstream_max_connections`,
istio/istio pkg/bootstrap/config.go), and IDLE_TIMEOUT for a connection that sits idle or stalls
inside a request. A request's body is read and dropped (a GET may carry one; left unread it would be
read as the next request). A client that leaves early is routine: no traceback in the daemon's log.

How many listeners: a Service gets at most MAX_PORTS_PER_SERVICE (Kubernetes sets no limit, and GCE
folds ports into ranges; 100 is the number of ports or port ranges one GCE firewall rule takes,
kubernetes/cloud-provider-gcp providers/gce/gce_loadbalancer_external.go `firewallObject`), the
sandbox at most MAX_LISTENERS; the ports left out are named once in the log. Listeners open
OPEN_PER_PASS at a time, so a Service deleted meanwhile is noticed at the next pass, and close all at
once.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from meshwright.sandbox.http import IDLE_TIMEOUT, MAX_CONNECTIONS, BadRequest, read_body

log = logging.getLogger(__name__)
MAX_PORTS_PER_SERVICE = 100
MAX_LISTENERS = 512
OPEN_PER_PASS = 64
MAX_BODY = 64 * 1024 * 1024  # bytes of a request body read and dropped; more closes the connection
Answer = tuple[int, bytes, str]
Route = Callable[[str, int, str, str], Answer]  # (address, port, path, host) -> status 0: reset
Key = tuple[str, int]


class GatewayListener(http.server.ThreadingHTTPServer):
    """A gateway's load-balancer address: takes a burst of connections as a cloud LB does (the
    stdlib's backlog of 5 drops the rest's SYNs, and each pays a one-second retransmission)."""

    daemon_threads = True
    request_queue_size = socket.SOMAXCONN

    def __init__(self, key: Key, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(key, handler)

    def server_bind(self) -> None:
        """The stdlib's bind also looks the address up in DNS (getfqdn): 100 ms per listener."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots.acquire(blocking=False):
            super().process_request(request, client_address)
        else:  # over the limit: closed unanswered, as Envoy's overflow does
            self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left (broken pipe, reset, timeout) is routine; anything else is a bug of ours."""
        if not isinstance(sys.exc_info()[1], OSError):
            log.exception("gateway %s:%d: request failed", *self.server_address[:2])


def handler(route: Route, address: str, port: int) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_TIMEOUT  # socket timeout: idle keep-alive and stalled requests alike

        def version_string(self) -> str:
            return "istio-envoy"

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def _answer(self, *, with_body: bool) -> None:
            started = time.monotonic()
            if not self._drop_body():
                return
            status, body, content_type = route(address, port, self.path, self.headers.get("Host", ""))
            if status == 0:
                self.close_connection = True
                return
            self._send(status, body, content_type, started=started, with_body=with_body)

        def _drop_body(self) -> bool:
            """Read the request's body and forget it; False (after answering) when it cannot be read."""
            try:
                read_body(self.rfile, self.headers, limit=MAX_BODY)
            except BadRequest as refused:
                self.close_connection = True
                self._send(
                    refused.status, refused.message.encode(), "text/plain", started=0.0, with_body=True
                )
                return False
            return True

        def _send(
            self, status: int, body: bytes, content_type: str, *, started: float, with_body: bool
        ) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            if started:
                self.send_header(
                    "x-envoy-upstream-service-time", str(int((time.monotonic() - started) * 1000))
                )
            if self.close_connection:
                self.send_header("connection", "close")
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("gateway %s:%d: " + format, address, port, *args)

    return Handler


def capped(by_service: dict[str, list[Key]], *, told: set[str]) -> set[Key]:
    """The listeners to keep open: MAX_PORTS_PER_SERVICE per Service, MAX_LISTENERS in all (Services
    in name order); what is left out is logged once per Service (`told` remembers which)."""
    chosen: set[Key] = set()
    for service, keys in sorted(by_service.items()):
        room = max(0, min(MAX_PORTS_PER_SERVICE, MAX_LISTENERS - len(chosen)))
        kept = sorted(set(keys))[:room]
        chosen.update(kept)
        left = len(set(keys)) - len(kept)
        if left and service not in told:
            told.add(service)
            log.warning(
                "gateway: %d of the %d ports of LoadBalancer Service %s get no listener: the sandbox listens "
                "on at most %d ports per Service and %d in all",
                left, len(set(keys)), service, MAX_PORTS_PER_SERVICE, MAX_LISTENERS,
            )  # fmt: skip
    told.intersection_update(by_service)
    return chosen


class Listeners:
    """The open listeners, kept in step with what is wanted."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.open: dict[Key, GatewayListener] = {}
        self._refused: set[Key] = set()

    def sync(self, wanted: set[Key]) -> None:
        """Close what is no longer wanted (all at once), then open up to OPEN_PER_PASS new ones."""
        close_all([self.open.pop(k) for k in set(self.open) - wanted])
        for key in sorted(wanted - set(self.open))[:OPEN_PER_PASS]:
            self._listen(key)

    def _listen(self, key: Key) -> None:
        address, port = key
        try:
            server = GatewayListener(key, handler(self.route, address, port))
        except OSError as e:
            if key not in self._refused:
                hint = (
                    " (ports below 1024 need root: run the sandbox as root)"
                    if isinstance(e, PermissionError)
                    else ""
                )
                log.warning(
                    "cannot listen on %s:%d for the gateway: %s%s", address, port, e.strerror or e, hint
                )
                self._refused.add(key)
            return
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"gateway-{address}:{port}",
            daemon=True,
        ).start()
        self.open[key] = server

    def close(self) -> None:
        close_all(list(self.open.values()))
        self.open.clear()


def close_all(servers: list[GatewayListener]) -> None:
    """Stop serving and close each listener; side by side, as each shutdown waits for its loop's poll."""
    threads = [threading.Thread(target=_close, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _close(server: GatewayListener) -> None:
    server.shutdown()
    with contextlib.suppress(OSError):
        server.server_close()
