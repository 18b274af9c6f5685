"""Minimal HTTP/1.1 plumbing shared by the GCP and Kubernetes emulators (stdlib only).

Handlers get a `Request` and return a `Response`; a response may stream (watch) or take the
connection over after `101 Switching Protocols` (a WebSocket: port-forward). Thread per connection
from a bounded pool, keep-alive, chunked encoding for streams and request bodies.

Anything on the machine can reach a sandbox port, so this layer refuses what a real front end
refuses before a handler sees it: a bad or oversized body, a slow or idle client. Every request
that gets this far gets an answer; a bug in a handler is a 500, never a dropped connection.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

KUBE_MAX_BODY = 3 * 1024 * 1024
"""kube-apiserver refuses request bodies over 3 MiB with 413 (`MaxRequestBodyBytes`)."""
GOOGLE_MAX_BODY = 10 * 1024 * 1024
"""Google's API front end: "Request payload size exceeds the limit: 10485760 bytes."."""
IDLE_TIMEOUT = 60.0
"""Seconds a connection may sit between requests, or stall inside one, before it is closed."""
MAX_CONNECTIONS = 256
"""Connections served at once per listener; more are told 503 and closed."""
_DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop this much of a refused body so the client sees the answer


class BadRequest(Exception):
    """The request cannot be served as sent: answered with `status` before any handler runs."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


Refusal = Callable[[int, str], "Response"]
"""Builds the answer to a request refused by this layer, in the API's own error envelope."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON (None when empty); ValueError for anything that is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except RecursionError:  # 100k nested brackets: too deep, not a crash
            raise ValueError("JSON nested too deeply") from None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None
    takeover: Takeover | None = None  # with status 101: what runs on the connection afterwards

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode()


Takeover = Callable[[io.BufferedIOBase, Any], None]
"""Speaks the upgraded protocol on the connection's reader and writer; the connection closes when it returns."""

Handler = Callable[[Request], Response]


class Router:
    """Regex routes with named groups; the first match wins."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | bool | None:
        """The handler and its path parameters; False if the path exists for other methods only."""
        path_known = False
        for route_method, pattern, handler in self._routes:
            m = pattern.match(path)
            if m:
                path_known = True
                if route_method == method:
                    return handler, m.groupdict()
        return False if path_known else None


def parse_request(method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(raw_path)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return Request(method=method, path=parts.path, query=query, headers=headers, body=body)


def too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes"


def plain_refusal(status: int, message: str) -> Response:
    return Response(status, {"error": {"code": status, "message": message}})


def read_body(rfile: io.BufferedIOBase, headers: Any, *, limit: int) -> bytes:
    """The request body as framed by Content-Length or chunked encoding, at most `limit` bytes."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(rfile, limit=limit)
    length = _content_length(headers.get_all("Content-Length") or [])
    if length > limit:
        raise BadRequest(413, too_large(limit))
    body = rfile.read(length) if length else b""
    if len(body) != length:
        raise BadRequest(400, "The request body ended before its Content-Length.")
    return body


def _content_length(values: list[str]) -> int:
    if not values:
        return 0  # RFC 9112: neither Content-Length nor chunked means no body
    if len(set(values)) != 1 or not values[0].strip().isdigit():
        raise BadRequest(400, f"Invalid Content-Length: {', '.join(values)[:40]!r}.")
    return int(values[0])


def _read_chunked(rfile: io.BufferedIOBase, *, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = rfile.readline(1024).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BadRequest(400, "Invalid chunk size in a chunked request body.") from None
        if size < 0 or len(body) + size > limit:
            raise BadRequest(413, too_large(limit))
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers are read and ignored
            return bytes(body)
        body += rfile.read(size)
        rfile.readline(1024)


class _Handler(BaseHTTPRequestHandler):
    """One connection's requests; `Server` makes a subclass per listener with its settings."""

    protocol_version = "HTTP/1.1"
    app: Callable[[Request], Response]
    max_body: int
    refusal: Refusal

    def _serve(self) -> None:
        try:
            body = read_body(self.rfile, self.headers, limit=self.max_body)
        except BadRequest as refused:
            self.close_connection = True
            self._send(self.refusal(refused.status, refused.message))
            self._drain()
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._send(self._answer(parse_request(self.command, self.path, headers, body)))

    def _answer(self, request: Request) -> Response:
        try:
            return self.app(request)
        except Exception:  # a bug of ours still answers
            log.exception("%s %s failed", request.method, request.path[:200])
            return self.refusal(500, "Internal error.")

    def _drain(self) -> None:
        """Read what the client still sends of a refused body, so that it sees the answer."""
        left = _DRAIN_LIMIT
        with contextlib.suppress(OSError):
            self.connection.settimeout(1.0)
            while left > 0 and (chunk := self.rfile.read1(min(left, 65536))):
                left -= len(chunk)

    def _send(self, response: Response) -> None:
        if response.status == 101 and response.takeover is not None:
            self._switch(response, response.takeover)
            return
        self.send_response(response.status)
        for key, value in {"Content-Type": "application/json", **response.headers}.items():
            self.send_header(key, value)
        if response.stream is not None:
            self._send_stream(response.stream)
            return
        payload = response.encoded()
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _switch(self, response: Response, takeover: Takeover) -> None:
        """101, then the connection belongs to the upgraded protocol until it returns; never reused."""
        self.close_connection = True
        self.send_response(101)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()
        try:
            takeover(self.rfile, self.wfile)
        except (OSError, ValueError):  # the client left, timed out, or the server is stopping
            pass
        except Exception:  # a bug of ours ends this connection, never the server
            log.exception("upgraded connection failed")

    def _send_stream(self, chunks: Iterator[bytes]) -> None:
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                elif self._peer_left():
                    break
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client left, or the server is stopping
            self.close_connection = True
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()

    def _peer_left(self) -> bool:
        """A streaming client sends nothing while it reads, so "readable" means it closed."""
        try:
            return bool(select.select([self.connection], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return  # the sandbox logs what matters itself; per-request lines drown it


def make_handler(
    app: Callable[[Request], Response], *, name: str, max_body: int, refusal: Refusal, idle_timeout: float
) -> type[BaseHTTPRequestHandler]:
    settings = {
        "app": staticmethod(app),
        "refusal": staticmethod(refusal),
        "max_body": max_body,
        "server_version": name,
        "timeout": idle_timeout,  # socket timeout: idle keep-alive and stalled reads alike
    }
    return type("Handler", (_Handler,), settings)


class Server(ThreadingHTTPServer):
    """One loopback listener. `max_body` and `refusal` are the API's own (Kubernetes: 3 MiB)."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = socket.SOMAXCONN  # the stdlib's 5 turns a burst of clients into seconds of waiting

    def __init__(
        self,
        port: int,
        app: Callable[[Request], Response],
        *,
        name: str,
        tls: ssl.SSLContext | None = None,
        max_body: int = KUBE_MAX_BODY,
        refusal: Refusal = plain_refusal,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        handler = make_handler(app, name=name, max_body=max_body, refusal=refusal, idle_timeout=idle_timeout)
        super().__init__(("127.0.0.1", port), handler)
        self._tls = tls
        self._refusal = refusal
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._idle_timeout = idle_timeout

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # Headers and body go out in separate writes; without this, Nagle meets delayed ACK (40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            # Handshake in the connection's own thread, so one slow client cannot block accept().
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._open_lock:
            self._open.add(sock)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots.acquire(blocking=False):
            super().process_request(request, client_address)
            return
        busy = threading.Thread(target=self._refuse_busy, args=(request,), daemon=True)
        busy.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse_busy(self, request: Any) -> None:
        """Over the connection limit: answer 503 and close, without waiting for the request."""
        try:
            request.settimeout(5.0)
            if isinstance(request, ssl.SSLSocket):
                request.do_handshake()
            answer = self._refusal(503, "Too many open connections; retry later.")
            payload = answer.encoded()
            head = (
                f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            )
            request.sendall(head.encode() + payload)
            _linger(request)
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.shutdown_request(request)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self._idle_timeout)
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # client disconnects are routine (watch timeouts, kubectl exits)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> Server:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection: a stopped server answers nobody."""
        self.shutdown()
        self.server_close()
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


def _linger(sock: socket.socket) -> None:
    """Half-close, then read what the client still sends (up to 1 s): closing with its request
    unread would reset the connection, and the client could lose the answer already sent."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(1.0)
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
