"""Requests that keep flowing through a mesh's ingress while something changes the mesh (a drill, an
upgrade): what a user of the mesh would see meanwhile. Plain HTTP GETs, as `curl` in a loop would
send them, one after another from one thread; each answer is kept with when it was sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from meshwright.drills import Timed
from meshwright.traffic import PAGE_PATH, REVIEWS_PATH, Reply, read_reply
from tasks.verify import get

PACE = 0.02  # seconds between two rounds of requests (a steady trickle, not a benchmark)
POLL = 0.2
TIMEOUT = 5.0


class Load:
    """GET each of `paths` through the ingress, then wait `pace` seconds, again and again from a
    thread while the `with` block runs (the next request goes once the answer is in, so a slow mesh
    is asked less often, never more); every answer kept with its time since the load began."""

    def __init__(
        self,
        address: str,
        *,
        port: int = 80,
        paths: Sequence[str] = (REVIEWS_PATH, PAGE_PATH),
        pace: float = PACE,
    ) -> None:
        self.base = f"http://{address}" if port == 80 else f"http://{address}:{port}"
        self.paths, self.pace = tuple(paths), pace
        self.samples: list[Timed] = []
        self.started, self.wall_started = time.monotonic(), time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingress-load", daemon=True)

    def now(self) -> float:
        return time.monotonic() - self.started

    def seen(self) -> list[tuple[float, Reply]]:
        """Every answer with the wall-clock time (unix seconds) its request was sent."""
        return [(self.wall_started + s.at, s.reply) for s in list(self.samples)]

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.paths:
                sent = round(self.now(), 3)
                status, body = get(self.base + path, timeout=TIMEOUT)
                self.samples.append(Timed(at=sent, reply=read_reply(path, status, body)))
            self._stop.wait(self.pace)

    def until(self, done: Callable[[list[Timed], float], bool], *, within: float) -> bool:
        """Let requests flow until `done(samples, now)` holds, at most `within` seconds."""
        deadline = self.now() + within
        while not done(list(self.samples), self.now()):
            if self.now() > deadline:
                return False
            time.sleep(POLL)
        return True

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * TIMEOUT)
