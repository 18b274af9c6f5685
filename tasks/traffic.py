"""Requests that keep flowing through a mesh's ingress while something changes the mesh (an upgrade,
a drill): what a user of the mesh would see meanwhile. Plain HTTP GETs of Bookinfo's product page
from one thread, as `curl` in a loop would send them; each answer is kept with when it was sent.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from meshwright.traffic import PAGE_PATH, Reply, read_reply
from tasks.verify import REQUEST_TIMEOUT, get

EVERY_SECONDS = 0.2


class SteadyTraffic:
    """GET the product page every `every` seconds while the `with` block runs (the next request
    goes once the answer is in, so a slow mesh is asked less often, never more)."""

    def __init__(self, address: str, *, every: float = EVERY_SECONDS, port: int = 80) -> None:
        self.url = f"http://{address}{PAGE_PATH}" if port == 80 else f"http://{address}:{port}{PAGE_PATH}"
        self.every, self.seen = every, list[tuple[float, Reply]]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-traffic", daemon=True)

    def __enter__(self) -> SteadyTraffic:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.time()
            status, body = get(self.url, timeout=REQUEST_TIMEOUT)
            self.seen.append((sent, read_reply(PAGE_PATH, status, body)))
            self._stop.wait(self.every)
