"""What `curl` in a pod prints and exits with, for a plain HTTP GET carried by the data plane. Pure.

The sandbox runs no container; a pod whose container runs `curl` (e.g. Istio's samples/curl image,
`curlimages/curl`) is answered here: its URL goes through `Call` (the data plane, from that pod),
and the result is told as curl tells it, with libcurl's exit codes (CURLcode) and its
`curl: (N) ...` lines on stderr: 6 Could not resolve host, 7 Couldn't connect to server, 22 an HTTP
error under `--fail`, 56 `Recv failure: Connection reset by peer` (a proxy in STRICT
mode resetting a plaintext caller: istio/istio pkg/test/framework/components/echo/check/checkers.go
`ConnectionResetByPeer`). Options read: -s/--silent, -S/--show-error, -f/--fail, -o/--output,
-w/--write-out (`%{http_code}`), -m/--max-time (read, never reached: the data plane answers at
once) and one http:// URL; any other option is curl's
exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from meshwright.sandbox.mesh.dataplane import RESET, UNRESOLVED, Failure

Call = Callable[[str, int, str], "tuple[int, bytes] | Failure"]  # (host, port, path) -> answer or failure
FLAGS = {"-s": "silent", "--silent": "silent", "-S": "show_error", "--show-error": "show_error", "-f": "fail", "--fail": "fail"}  # fmt: skip
VALUED = {"-o": "output", "--output": "output", "-w": "write_out", "--write-out": "write_out", "-m": "max_time", "--max-time": "max_time"}  # fmt: skip


@dataclass
class Options:
    url: str = ""
    silent: bool = False
    show_error: bool = False
    fail: bool = False
    output: str = "-"
    write_out: str = ""
    max_time: str = ""


def argv(pod: dict[str, object]) -> list[str] | None:
    """The command line of the pod's first container when it runs curl; None otherwise."""
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    first = containers[0] if isinstance(containers, list) and containers else {}
    words = [str(w) for w in (first.get("command") or []) + (first.get("args") or [])]
    return words if words and words[0].rsplit("/", 1)[-1] == "curl" else None


def _expand(words: list[str]) -> list[str]:
    """`-sS` is `-s -S`, as curl reads bundled short flags."""
    found: list[str] = []
    for w in words:
        bundled = (
            w.startswith("-")
            and not w.startswith("--")
            and len(w) > 2
            and all(f"-{c}" in FLAGS for c in w[1:])
        )
        found += [f"-{c}" for c in w[1:]] if bundled else [w]
    return found


def parse(words: list[str]) -> Options | str:
    """The options of a curl command line (after `curl`), or curl's complaint."""
    options, rest = Options(), _expand(words)
    while rest:
        word = rest.pop(0)
        if word in FLAGS:
            setattr(options, FLAGS[word], True)
        elif word in VALUED and rest:
            setattr(options, VALUED[word], rest.pop(0))
        elif word.startswith("-"):
            return f"curl: option {word}: is unknown\ncurl: try 'curl --help' for more information"
        else:
            options.url = word
    return options if options.url else "curl: no URL specified"


def _error(options: Options, code: int, line: str) -> tuple[int, str]:
    said = f"curl: ({code}) {line}" if (not options.silent or options.show_error) else ""
    out = options.write_out.replace("%{http_code}", "000")
    return code, out + ("\n" if out and said else "") + said


def _failed(options: Options, host: str, port: int, failure: Failure) -> tuple[int, str]:
    if failure.transport == RESET:
        return _error(options, 56, "Recv failure: Connection reset by peer")
    if failure.transport == UNRESOLVED:
        return _error(options, 6, f"Could not resolve host: {host}")
    return _error(
        options, 7, f"Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
    )


def run(words: list[str], call: Call) -> tuple[int, str]:
    """(exit code, what it printed: stdout, then stderr) of `curl words...`."""
    options = parse(words[1:])
    if isinstance(options, str):
        return 2, options
    url = urlsplit(options.url if "://" in options.url else f"http://{options.url}")
    if url.scheme != "http" or not url.hostname:
        return _error(options, 1, f'Protocol "{url.scheme}" not supported')
    port = url.port or 80
    answer = call(url.hostname, port, url.path or "/")
    if isinstance(answer, Failure):
        return _failed(options, url.hostname, port, answer)
    status, body = answer
    if options.fail and status >= 400:
        return _error(options, 22, f"The requested URL returned error: {status}")
    shown = body.decode(errors="replace") if options.output == "-" else ""
    return 0, shown + options.write_out.replace("%{http_code}", str(status))
