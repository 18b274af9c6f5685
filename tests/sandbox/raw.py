"""Requests no real client would send to the GCP emulator's port, and a world restarted on its own files."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.world import World


def call(
    w: World, method: str, path: str, body: Any = None, *, raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """One request with http.client, the path sent as given (like `curl --path-as-is`)."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", w.server.port if w.server else 0, timeout=10)
    try:
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    return response.status, json.loads(payload) if payload else {}


def send_bytes(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Write raw bytes to a listener, half-close, and read everything it answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status codes of every response in a raw answer, in order."""
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


def restarted(w: World) -> World:
    """Stop a world and start a new one on the same state directory and port."""
    port = w.server.port if w.server else 0
    w.stop()
    return World(w.layout.root, latency=w.latency, faults=Faults()).start(port=port)


def files_outside(root: Path, before: set[Path]) -> set[Path]:
    """Files under root's parent that are new since `before` and not inside root."""
    now = {p for p in root.parent.rglob("*") if p.is_file()}
    return {p for p in now - before if root not in p.parents}
