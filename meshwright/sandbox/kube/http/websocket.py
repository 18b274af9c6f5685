"""The server side of RFC 6455, as much as the API server's streaming subresources need.

The handshake (`accept_key`), and frames read from a client (always masked, maybe fragmented) and
written to it (never masked). About sixty lines, so no library: the sandbox's server is blocking
and threaded, and a sans-IO library (wsproto) would add a dependency to save the same sixty lines.
What the kubelet puts inside the frames lives in `portforward.py`; this module knows no channels.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
from typing import Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 * 1024 * 1024
"""A client message larger than this ends the connection (close code 1009, "message too big")."""


class Closed(Exception):
    """The peer closed the connection (a close frame, or the end of the byte stream)."""


def accept_key(key: str) -> str:
    """`Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`."""
    return base64.b64encode(hashlib.sha1((key.strip() + GUID).encode()).digest()).decode()


def valid_key(key: str) -> bool:
    """A key is 16 random bytes in base64 (RFC 6455 section 4.1); Go's x/net/websocket checks the same."""
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


def _exactly(rfile: io.BufferedIOBase, n: int) -> bytes:
    data = rfile.read(n) if n else b""
    if data is None or len(data) != n:
        raise Closed("the connection ended inside a frame")
    return data


def read_frame(rfile: io.BufferedIOBase) -> tuple[bool, int, bytes]:
    """One frame from the client: (final, opcode, unmasked payload)."""
    first, second = _exactly(rfile, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _exactly(rfile, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _exactly(rfile, 8))[0]
    if length > MAX_MESSAGE:
        raise Closed("frame too large")
    mask = _exactly(rfile, 4) if second & 0x80 else b""
    payload = _exactly(rfile, length)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bool(first & 0x80), first & 0x0F, payload


def read_message(rfile: io.BufferedIOBase, wfile: Any) -> tuple[int, bytes]:
    """The next data message (fragments joined); pings are answered, a close frame raises `Closed`."""
    opcode, parts = None, bytearray()
    while True:
        final, op, payload = read_frame(rfile)
        if op == CLOSE:
            raise Closed(payload[2:].decode(errors="replace"))
        if op == PING:
            write_frame(wfile, PONG, payload)
            continue
        if op == PONG:
            continue
        opcode = op if opcode is None else opcode
        parts += payload
        if len(parts) > MAX_MESSAGE:
            raise Closed("message too large")
        if final:
            return opcode, bytes(parts)


def write_frame(wfile: Any, opcode: int, payload: bytes) -> None:
    """One unfragmented, unmasked frame (a server never masks, RFC 6455 section 5.1)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    wfile.write(head + payload)
    flush = getattr(wfile, "flush", None)
    if flush is not None:
        flush()


def close(rfile: io.BufferedIOBase, wfile: Any, code: int = 1000) -> None:
    """Send a close frame and wait (briefly, bounded by the socket timeout) for the client's."""
    write_frame(wfile, CLOSE, struct.pack("!H", code))
    for _ in range(64):  # data still in flight is read and dropped
        try:
            read_message(rfile, wfile)
        except Closed:
            return
