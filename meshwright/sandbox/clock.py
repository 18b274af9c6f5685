"""Every timestamp the sandbox writes, formatted in one place.

Kubernetes writes RFC 3339 in UTC to the second (`2026-11-25T12:00:00Z`); Google APIs write
fractional seconds (`2026-11-25T12:00:00.123456Z`). Both clients parse what they get back, so the
two styles must not be mixed up between the emulators.
"""

from __future__ import annotations

import time


def rfc3339(ts: float | None = None) -> str:
    """Kubernetes style: UTC to the second. `ts` defaults to now."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def rfc3339_micros(ts: float | None = None) -> str:
    """Google style (GKE and Compute): UTC with microseconds. `ts` defaults to now."""
    moment = time.time() if ts is None else ts
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
    return f"{whole}.{int(moment % 1 * 1e6):06d}Z"
