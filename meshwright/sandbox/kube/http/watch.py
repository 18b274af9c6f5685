"""Watch streams: ADDED for what exists (from resourceVersion 0), then every change, as NDJSON.

While nothing happens the stream yields an empty chunk about once a second: the HTTP layer uses it
to notice a client that left, so its thread is freed at once instead of after the next event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.http import Response
from meshwright.sandbox.kube.http import tables
from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.status import bad_request, status_body
from meshwright.sandbox.kube.store.crud import ClusterState
from meshwright.sandbox.kube.store.objects import Event, Gone, Key
from meshwright.sandbox.kube.store.selectors import Predicate, field_selector, label_selector

MAX_WATCH = 1800.0
HEARTBEAT = 1.0
IDLE = b""  # not sent: a chance for the HTTP layer to look at the connection


@dataclass(frozen=True)
class WatchFilter:
    """Which changes one watch wants, and in which shape (objects, or Table rows for `kubectl get -w`)."""

    rt: ResourceType
    namespace: str | None
    labels: Predicate
    fields: Predicate
    as_table: bool
    timeout: float
    since: int

    @classmethod
    def of(cls, rt: ResourceType, namespace: str | None, q: dict[str, str], accept: str) -> WatchFilter:
        rv = q.get("resourceVersion") or "0"
        if not rv.isdigit():
            raise bad_request(f"invalid resourceVersion {rv[:40]!r}")
        return cls(
            rt,
            namespace,
            label_selector(q.get("labelSelector")),
            field_selector(q.get("fieldSelector")),
            tables.wants_table(accept),
            _timeout(q.get("timeoutSeconds")),
            int(rv),
        )

    def matches(self, obj: dict[str, Any]) -> bool:
        return self.labels(obj) and self.fields(obj)

    def wants(self, key: Key, obj: dict[str, Any]) -> bool:
        in_scope = key[0] == self.rt.key and (self.namespace is None or key[1] == self.namespace)
        return in_scope and self.matches(obj)

    def event(self, kind: str, obj: dict[str, Any]) -> bytes:
        typed = {**obj, "apiVersion": self.rt.api_version, "kind": self.rt.kind}
        shaped = (
            tables.table(self.rt, [typed], resource_version=obj["metadata"]["resourceVersion"])
            if self.as_table
            else typed
        )
        return _line(kind, shaped)


def _timeout(text: str | None) -> float:
    if not text:
        return MAX_WATCH
    try:
        seconds = float(text)
    except ValueError:
        raise bad_request(f"invalid timeoutSeconds {text[:40]!r}") from None
    return min(max(seconds, 0.0), MAX_WATCH)


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


class Watch:
    """The watches of one cluster; `stopping` ends them all."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.stopping = False

    def respond(self, f: WatchFilter) -> Response:
        return Response(200, None, {"Content-Type": "application/json"}, stream=self._events(f))

    def _events(self, f: WatchFilter) -> Iterator[bytes]:
        deadline, rv = time.monotonic() + f.timeout, f.since
        if rv == 0:
            initial, rv = self._snapshot(f)
            yield from (f.event("ADDED", obj) for obj in initial)
        while not self.stopping and time.monotonic() < deadline:
            try:
                events = self._next(rv, deadline)
            except Gone:
                store_rv = self.state.store.rv
                expired = status_body(410, f"too old resource version: {rv} ({store_rv})", reason="Expired")
                yield _line("ERROR", expired)
                return
            if not events:
                yield IDLE
                continue
            rv = events[-1].rv
            yield from (f.event(ev.type, ev.obj) for ev in events if f.wants(ev.key, ev.obj))

    def _snapshot(self, f: WatchFilter) -> tuple[list[dict[str, Any]], int]:
        """A consistent snapshot, taken under the lock and sent after it is let go."""
        with self.state.lock:
            objects, rv = self.state.select(f.rt, f.namespace), self.state.store.rv
        return [o for o in objects if f.matches(o)], rv

    def _next(self, rv: int, deadline: float) -> list[Event]:
        store = self.state.store
        with store.changed:
            events = list(store.events_since(rv))
            if not events:
                store.changed.wait(min(HEARTBEAT, max(0.0, deadline - time.monotonic())))
                events = list(store.events_since(rv))
        return events
