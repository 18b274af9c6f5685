"""What the product may know about a sandbox: where its state is, how to reach it, its charts.

This is the one module of `meshwright.sandbox` that code outside the sandbox may import (the
client factory and the CLI). It uses the standard library and `meshwright.errors` only, so that
importing it loads none of the emulator. The daemon writes the files named here; this module
only reads them.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from meshwright.errors import SandboxError

STATE_ENV = "MESHWRIGHT_SANDBOX_STATE"
DEFAULT_STATE = Path(".meshwright") / "sandbox"
DAEMON_FILE = "daemon.json"
OPERATOR_TOKEN_FILE = "operator-token"
HEALTH_PATH = "/_sandbox/health"
STATUS_PATH = "/_sandbox/status"
# Stand-ins for Istio's base, istiod and gateway charts, shipped with the sandbox: a directory as
# `helm pull --untar` leaves one (the newest version), and a Helm chart repository on the sandbox's
# GCP endpoint (`charts_url`) with every version of CHART_VERSIONS, as Istio's own repository has
# every Istio version.
BUNDLED_CHARTS = Path(__file__).resolve().parent / "charts"
CHART_VERSIONS = ("1.29.8", "1.30.3")
CHARTS_PATH = "/_sandbox/charts"


class SandboxNotRunning(SandboxError):
    """No sandbox answers for a state directory (never started, stopped, or crashed)."""


def state_dir(explicit: str | Path | None = None) -> Path:
    """The state directory a command means, absolute: `explicit`, else $MESHWRIGHT_SANDBOX_STATE,
    else `.meshwright/sandbox`. The sandbox's own rule; the product reads it through its settings."""
    chosen = explicit or os.environ.get(STATE_ENV) or DEFAULT_STATE
    return Path(chosen).expanduser().resolve()


def daemon_info(root: Path) -> dict[str, Any]:
    """What the daemon wrote about itself ({} when it never ran or the file is unreadable)."""
    try:
        info = json.loads((root / DAEMON_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def endpoint(root: Path) -> str:
    """The GCP endpoint of the sandbox of `root` (http://127.0.0.1:PORT)."""
    url = daemon_info(root).get("gcp")
    if not isinstance(url, str) or not url:
        raise SandboxNotRunning(
            f"no sandbox has run with state {root}; start one with `meshwright sandbox start`"
        )
    return url


def charts_url(root: Path) -> str:
    """The Helm chart repository of the sandbox of `root` (`helm ... --repo URL --version V`)."""
    return f"{endpoint(root)}{CHARTS_PATH}"


def operator_token(root: Path) -> str:
    """The operator's bearer token, valid on every cluster of the sandbox of `root`."""
    try:
        return (root / OPERATOR_TOKEN_FILE).read_text().strip()
    except OSError:
        raise SandboxNotRunning(
            f"the sandbox with state {root} has no operator token yet; start it with `meshwright sandbox start`"
        ) from None


def get_json(url: str, *, timeout: float = 5.0) -> Any:
    """GET a JSON document from the sandbox; anything that goes wrong is SandboxNotRunning."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError) as e:  # resets, timeouts, half answers
        raise SandboxNotRunning(f"the sandbox at {url.split('/_')[0]} does not answer: {e}") from None


def health(root: Path) -> dict[str, Any] | None:
    """The daemon's health answer when a sandbox of exactly this state directory serves, else None."""
    url = daemon_info(root).get("gcp")
    if not isinstance(url, str) or not url:
        return None
    try:
        body = get_json(f"{url}{HEALTH_PATH}", timeout=2)
    except SandboxNotRunning:
        return None
    ok = isinstance(body, dict) and body.get("ok") is True and body.get("state") == str(root)
    return body if ok else None
