"""At most N long-running operations of one kind in flight from this process, each held by name.

A cluster create is one request, then minutes of GKE's operation: the slot is taken before the
request and given back when the wait for it ends, so it spans two tasks (`create_cluster`,
`wait_cluster`). Holding and releasing are by name and idempotent, so a cached create, a retried
wait or a create that failed before its request never takes a second slot or gives back one it
does not hold. Pure threading: no I/O.
"""

from __future__ import annotations

import threading


class InFlight:
    """Named slots, at most `limit` held at once; `hold` blocks while they are all taken."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def try_hold(self, name: str) -> bool:
        """Take a slot for `name` if one is free now (or `name` holds one already)."""
        return self._take(name, blocking=False)

    def hold(self, name: str) -> None:
        """Take a slot for `name`, waiting until one is free."""
        self._take(name, blocking=True)

    def release(self, name: str) -> None:
        """Give back `name`'s slot; nothing when it holds none."""
        with self._lock:
            if name not in self._held:
                return
            self._held.discard(name)
        self._slots.release()

    @property
    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    def _take(self, name: str, *, blocking: bool) -> bool:
        with self._lock:
            if name in self._held:
                return True
        if not self._slots.acquire(blocking=blocking):
            return False
        with self._lock:
            self._held.add(name)
        return True
