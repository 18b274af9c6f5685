"""HTTP/1.1 on one forwarded connection, server side and sans-IO: the client's bytes in, answers out.

A port-forward hands the pod's listener a raw byte stream; this is that listener for the emulated
components (istiod's 15014). Requests are answered in order (keep-alive, pipelining), until the
client says `Connection: close` (or speaks HTTP/1.0 without keep-alive) or sends what cannot be
parsed (400, then close), as Go's net/http server does. Bodies are read by Content-Length; a
chunked request body is refused (501): no client of these endpoints sends one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 1 << 20  # Go's DefaultMaxHeaderBytes: larger heads are answered 431


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes = b""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


App = Callable[[HttpRequest], HttpAnswer]


class HttpStream:
    """One connection to an HTTP/1.1 server that answers with `app`; a `PortStream` for port-forward."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._buffer = bytearray()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while not self._closed:
            answer = self._next()
            if answer is None:
                break
            out += answer
        return bytes(out)

    def _next(self) -> bytes | None:
        """The answer to the next complete request in the buffer; None while it is incomplete."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return self._refuse(431) if len(self._buffer) > MAX_HEAD else None
        try:
            method, target, version, headers = _head(bytes(self._buffer[:end]).decode("latin-1"))
        except ValueError:
            return self._refuse(400)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._refuse(501)
        length = headers.get("content-length", "0").strip()
        if not length.isdigit():
            return self._refuse(400)
        if len(self._buffer) < end + 4 + int(length):
            return None
        body = bytes(self._buffer[end + 4 : end + 4 + int(length)])
        del self._buffer[: end + 4 + int(length)]
        self._closed = _closes(version, headers)
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        answer = self.app(HttpRequest(method, parts.path or "/", query, headers, body))
        return _encode(answer, head_only=method == "HEAD", close=self._closed)

    def _refuse(self, status: int) -> bytes:
        self._closed = True
        self._buffer.clear()
        text = f"{status} {HTTPStatus(status).phrase}".encode()
        return _encode(HttpAnswer(status, text, {"Content-Type": "text/plain; charset=utf-8"}), close=True)


def _head(text: str) -> tuple[str, str, str, dict[str, str]]:
    lines = text.split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1.") or not method.isalpha() or not target.startswith("/"):
        raise ValueError(lines[0][:80])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(line[:80])
        headers[name.lower()] = value.strip()
    return method, target, version, headers


def _closes(version: str, headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    return "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)


def _encode(answer: HttpAnswer, *, head_only: bool = False, close: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}"]
    headers = {**answer.headers, "Date": formatdate(usegmt=True), "Content-Length": str(len(answer.body))}
    if close:
        headers["Connection"] = "close"
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else answer.body)
