"""When a controller tries a failed item again: client-go's default controller rate limiter.

kube-controller-manager's ReplicaSet controller requeues a ReplicaSet whose sync failed (a pod
creation a webhook refused, say) with `queue.AddRateLimited(key)`, and forgets it once a sync
succeeds (`queue.Forget(key)`): kubernetes/kubernetes pkg/controller/replicaset/replica_set.go
`processNextWorkItem`. Its queue's limiter is `workqueue.DefaultTypedControllerRateLimiter`
(client-go util/workqueue/default_rate_limiters.go; `DefaultControllerRateLimiter` before
generics): the larger of a per-item exponential backoff (5 ms doubled per consecutive failure,
capped at 1000 s) and one token bucket for the whole controller (`rate.NewLimiter(10, 100)`: 10
per second, bursts of 100), whose `Reserve().Delay()` waits for a token that may already be owed.

Not thread-safe: its users call it under their cluster's lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

BASE_DELAY = 0.005  # seconds: NewTypedItemExponentialFailureRateLimiter(5*time.Millisecond, ...)
MAX_DELAY = 1000.0  # seconds: ... 1000*time.Second)
QPS, BURST = 10.0, 100  # rate.NewLimiter(rate.Limit(10), 100)
_MAX_EXPONENT = 30  # 5 ms * 2**30 is far past MAX_DELAY; a larger one would only overflow


class ControllerRateLimiter:
    """`When`, `Forget` and `NumRequeues` of client-go's default controller rate limiter."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[Hashable, int] = {}
        self._tokens, self._last = float(BURST), clock()

    def when(self, item: Hashable) -> float:
        """Seconds to wait before trying `item` again; counts one more failure of it."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        backoff = min(BASE_DELAY * 2 ** min(failures, _MAX_EXPONENT), MAX_DELAY)
        return max(backoff, self._reserve())

    def forget(self, item: Hashable) -> None:
        """`item` succeeded: its next failure waits BASE_DELAY again."""
        self._failures.pop(item, None)

    def requeues(self, item: Hashable) -> int:
        """How many times `item` failed since it was last forgotten."""
        return self._failures.get(item, 0)

    def _reserve(self) -> float:
        """A token from the bucket: 0 while there is one, else how long until the one owed is refilled."""
        now = self._clock()
        self._tokens = min(float(BURST), self._tokens + (now - self._last) * QPS) - 1
        self._last = now
        return max(0.0, -self._tokens / QPS)
