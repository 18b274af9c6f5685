"""A headless Debian chromium driven over the DevTools protocol (websocket-client, no playwright).

The Prefect UI is a JavaScript app: a page's text exists only after its scripts ran, and tabs
render on a click. This drives one page: navigate, wait for text, click a tab, read the visible
text, take a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One chromium with one page; `with Browser(profile) as b: b.open(url, "text")`."""

    def __init__(self, profile: Path, *, width: int = 1440, height: int = 1000) -> None:
        binary = chromium()
        assert binary, "chromium is not installed (make test installs Debian's package)"
        profile.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ids = itertools.count(1)
        self.ws = websocket.create_connection(self._page_socket(), timeout=60)

    def _page_socket(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stderr:
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = found.group(1)
                break
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        return str(pages[0]["webSocketDebuggerUrl"])

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                assert "error" not in message, message["error"]
                return dict(message.get("result", {}))

    def text(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''")
        return str(result["result"].get("value", ""))

    def wait_for(self, *needles: str, timeout: float = 120) -> str:
        """The page's visible text once every needle is in it (AssertionError naming the missing)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            missing = [n for n in needles if n not in text]
            if not missing:
                return text
            assert time.monotonic() < deadline, f"not shown after {timeout:.0f}s: {missing}\n{text[:2000]}"
            time.sleep(0.3)

    def open(self, url: str, *needles: str) -> str:
        self.call("Page.navigate", url=url)
        return self.wait_for(*needles)

    def click(self, label: str) -> None:
        """Click the first button, tab or link whose visible text is exactly `label`."""
        script = f"""(() => {{
            const all = [...document.querySelectorAll('button, [role=tab], a, .p-tabs__tab, li')];
            const hit = all.find(e => e.innerText && e.innerText.trim() === {json.dumps(label)});
            if (hit) {{ hit.click(); return true; }} return false; }})()"""
        deadline = time.monotonic() + 30
        while not self.call("Runtime.evaluate", expression=script)["result"].get("value"):
            assert time.monotonic() < deadline, f"nothing to click named {label!r}"
            time.sleep(0.3)

    def screenshot(self, path: Path) -> Path:
        time.sleep(0.5)  # let the last render settle (graphs animate in)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
