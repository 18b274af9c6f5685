"""What the GKE and Compute emulators share: record views and operation ids."""

from __future__ import annotations

import secrets
import time
from typing import Any


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The API view of a record: everything but the sandbox's own `_` fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def operation_id() -> str:
    return f"operation-{int(time.time() * 1000)}-{secrets.token_hex(4)}"
