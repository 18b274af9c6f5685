"""`pods/{name}/portforward` over WebSocket: what the API server and the kubelet answer, channel by channel.

The real path is API server -> kubelet -> container runtime. The API server checks the pod
(kubernetes `pkg/registry/core/pod/strategy.go`, `PortForwardLocation`: 404 when it does not exist,
400 "pod %s does not have a host assigned") and requires an upgrade (`UpgradeAwareHandler`: 400
"Upgrade request required"). The kubelet parses `ports` (`pkg/kubelet/cri/streaming/portforward/
websocket.go`, `NewV4Options`: 400 when it is missing, empty or not a port) and speaks the channel
protocol there (`handleWebSocketStreams`):

- subprotocols `v4.channel.k8s.io` (binary) or none; a client offering only others is refused
  (`wsstream` handshake: 403 "requested protocol(s) are not supported"). The base64 variant
  (`v4.base64.channel.k8s.io`) is not served: no client meshwright uses speaks it;
- per forwarded port i, channel 2*i carries data both ways and 2*i+1 errors to the client; each
  binary frame starts with its channel byte;
- the first frame on each channel is the port as two bytes, little-endian;
- when forwarding fails, the error channel says `error forwarding port P to pod ..., uid ...: <why>`;
  when every port's forward has ended, the WebSocket closes (v4 has no per-channel close).

The sandbox forwards only to what an emulated workload serves (`Forward`); the sessions are
sans-IO objects (`PortStream`) fed the client's bytes, so they can be tested without a socket.
kubectl is not served: it speaks SPDY, directly (`Upgrade: SPDY/3.1`, refused with 400 and a message
that says so) or tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`, refused as an unknown
subprotocol, 403, after which kubectl falls back to the direct upgrade).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from meshwright.sandbox.http import Request, Response
from meshwright.sandbox.kube.http import websocket
from meshwright.sandbox.kube.status import KubeError, bad_request

V4 = "v4.channel.k8s.io"
PROTOCOLS = ("", V4)  # "" = the client asked for none: the kubelet treats it as binary v4
SPDY_REFUSED = "the meshwright sandbox serves port-forward over WebSocket (v4.channel.k8s.io) only, not SPDY"


class PortStream(Protocol):
    """One forwarded connection, as the pod's listener sees it: bytes in, bytes out, then maybe closed."""

    def feed(self, data: bytes) -> bytes:
        """Take what the client sent; return what the pod answers now."""
        ...

    @property
    def closed(self) -> bool:
        """The pod closed the connection (after the last answer was returned)."""
        ...


Forward = Callable[[str, int], "PortStream | None"]
"""(pod, port) in the API's namespace -> a connection to what listens there, or None when nothing does."""


def ports_of(query: str | None) -> list[int]:
    """The `ports` query parameter as the kubelet parses it (`NewV4Options`), or its 400."""
    if query is None:
        raise bad_request('query parameter "ports" is required')
    if not query:
        raise bad_request('query parameter "ports" cannot be empty')
    ports = []
    for p in query.split(","):
        if not p.isdigit() or int(p) > 65535:
            why = "invalid syntax" if not p.isdigit() else "value out of range"
            raise bad_request(f'unable to parse "{query}" as a port: strconv.ParseUint: parsing "{p}": {why}')
        if int(p) < 1:
            raise bad_request(f'port "{query}" must be > 0')
        ports.append(int(p))
    return ports


def check_pod(pod: dict[str, Any], name: str) -> None:
    """The API server needs a node to send the request to; the sandbox's kubelet needs a running pod."""
    if not (pod.get("spec") or {}).get("nodeName"):
        raise bad_request(f"pod {name} does not have a host assigned")
    phase = (pod.get("status") or {}).get("phase") or "Pending"  # the API server defaults it on create
    if phase != "Running":
        # kubectl refuses this itself (kubectl/pkg/cmd/portforward: "unable to forward port because pod
        # is not running"); a real kubelet would fail later, finding no sandbox. Said up front, in kubectl's words.
        raise bad_request(f"unable to forward port because pod is not running. Current status={phase}")


def negotiate(r: Request) -> str:
    """The subprotocol to answer with, after the upgrade headers are checked."""
    headers = r.headers
    asked = headers.get("upgrade", "").lower()
    if asked and "websocket" not in asked:
        raise bad_request(f"unable to upgrade: {SPDY_REFUSED}")
    if "websocket" not in asked:
        raise bad_request("Upgrade request required")
    key = headers.get("sec-websocket-key", "")
    if headers.get("sec-websocket-version") != "13" or not websocket.valid_key(key):
        raise bad_request("websocket: invalid handshake (Sec-WebSocket-Version 13 and a key are required)")
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()] or [""]
    chosen = next((p for p in offered if p in PROTOCOLS), None)
    if chosen is None:
        raise KubeError(
            403,
            f"requested protocol(s) are not supported: [{' '.join(offered)}]; supports [{' '.join(PROTOCOLS)}]",
        )
    return chosen


def upgrade(r: Request, *, pod: dict[str, Any], forward: Forward) -> Response:
    """101 and the session, or the API server's or kubelet's refusal."""
    name = pod["metadata"]["name"]
    check_pod(pod, name)
    protocol = negotiate(r)  # first: the kubelet reads `ports` from the query of WebSocket requests only
    ports = ports_of(r.query.get("ports"))
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": websocket.accept_key(r.headers["sec-websocket-key"]),
    }
    if protocol:
        headers["Sec-WebSocket-Protocol"] = protocol
    session = Session(ports, name=name, uid=pod["metadata"].get("uid", ""), forward=forward)
    return Response(101, headers=headers, takeover=session.run)


def refused(port: int, *, pod_uid: str) -> str:
    """What containerd's port forward says when nothing listens (the kubelet prefixes the pod sandbox).

    Real text (containerd `sandbox_portforward_linux.go`, seen through `kubectl port-forward`):
    `error forwarding port 3000 to pod 9419..., uid : failed to execute portforward in network namespace
    "/var/run/netns/cni-...": failed to connect to localhost:3000 inside namespace "9419...", IPv4: dial
    tcp4 127.0.0.1:3000: connect: connection refused IPv6 dial tcp6 [::1]:3000: connect: connection refused`.
    """
    sandbox = hashlib.sha256(pod_uid.encode()).hexdigest()
    netns = uuid.UUID(sandbox[:32])
    return (
        f"error forwarding port {port} to pod {sandbox}, uid : failed to execute portforward in network "
        f'namespace "/var/run/netns/cni-{netns}": failed to connect to localhost:{port} inside namespace '
        f'"{sandbox}", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused '
        f"IPv6 dial tcp6 [::1]:{port}: connect: connection refused"
    )


@dataclass
class _Port:
    number: int
    stream: PortStream | None

    @property
    def done(self) -> bool:
        return self.stream is None or self.stream.closed


class Session:
    """One port-forward WebSocket: the port frames, then client bytes to each port's stream and back."""

    def __init__(self, ports: list[int], *, name: str, uid: str, forward: Forward) -> None:
        self.ports = [_Port(p, forward(name, p)) for p in ports]
        self.uid = uid

    def run(self, rfile: io.BufferedIOBase, wfile: Any) -> None:
        self._open(wfile)
        try:
            while not all(p.done for p in self.ports):
                opcode, message = websocket.read_message(rfile, wfile)
                if opcode == websocket.BINARY and message:
                    self._data(wfile, message[0], message[1:])
        except websocket.Closed:
            websocket.write_frame(wfile, websocket.CLOSE, b"\x03\xe8")
            return
        websocket.close(rfile, wfile)

    def _open(self, wfile: Any) -> None:
        for i, port in enumerate(self.ports):
            number = port.number.to_bytes(2, "little")
            websocket.write_frame(wfile, websocket.BINARY, bytes([2 * i]) + number)
            websocket.write_frame(wfile, websocket.BINARY, bytes([2 * i + 1]) + number)
            if port.stream is None:
                message = refused(port.number, pod_uid=self.uid).encode()
                websocket.write_frame(wfile, websocket.BINARY, bytes([2 * i + 1]) + message)

    def _data(self, wfile: Any, channel: int, data: bytes) -> None:
        """Client bytes on a data channel; anything else (an error channel, an unknown one) is dropped."""
        index, is_error = divmod(channel, 2)
        if is_error or index >= len(self.ports) or self.ports[index].done:
            return
        stream = self.ports[index].stream
        assert stream is not None
        answer = stream.feed(data)
        if answer:
            websocket.write_frame(wfile, websocket.BINARY, bytes([channel]) + answer)
