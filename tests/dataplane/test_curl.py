"""A pod's curl, told as curl tells it: exit codes and `curl: (N)` lines for what the data plane met."""

from __future__ import annotations

from meshwright.sandbox.mesh import curl
from meshwright.sandbox.mesh.dataplane import RESET, UNRESOLVED, Failure

PROBE = ["curl", "-sS", "-o", "/dev/null", "--max-time", "5", "http://productpage.bookinfo:9080/"]


def test_a_reset_is_exit_56_connection_reset_by_peer() -> None:
    asked: list[tuple[str, int, str]] = []

    def call(host: str, port: int, path: str) -> Failure:
        asked.append((host, port, path))
        return Failure(0, b"", "STRICT", transport=RESET)

    assert curl.run(PROBE, call) == (56, "curl: (56) Recv failure: Connection reset by peer")
    assert asked == [("productpage.bookinfo", 9080, "/")]


def test_unresolved_and_refused_connections_are_6_and_7() -> None:
    unresolved = curl.run(PROBE, lambda h, p, path: Failure(0, b"", "no Service", transport=UNRESOLVED))
    refused = curl.run(PROBE, lambda h, p, path: Failure(0, b"", "no pod"))
    assert unresolved == (6, "curl: (6) Could not resolve host: productpage.bookinfo")
    assert refused[0] == 7


def test_an_answer_is_exit_0_and_fail_turns_an_http_error_into_22() -> None:
    assert curl.run(PROBE, lambda h, p, path: (200, b"page")) == (0, "")
    assert curl.run(["curl", "-s", "-w", "%{http_code}", "http://x:80/"], lambda h, p, path: (503, b"")) == (
        0,
        "503",
    )
    failing = curl.run(["curl", "-sSf", "http://x/"], lambda h, p, path: (503, b"no healthy upstream"))
    assert failing == (22, "curl: (22) The requested URL returned error: 503")


def test_silent_hides_the_error_line_and_an_unknown_option_is_exit_2() -> None:
    reset = Failure(0, b"", "STRICT", transport=RESET)
    assert curl.run(["curl", "-s", "http://x/"], lambda h, p, path: reset) == (56, "")
    assert curl.run(["curl", "--frobnicate", "http://x/"], lambda h, p, path: reset)[0] == 2


def test_only_a_first_container_running_curl_is_run() -> None:
    pod = {"spec": {"containers": [{"name": "curl", "command": ["/usr/bin/curl"], "args": ["http://x/"]}]}}
    sleeper = {"spec": {"containers": [{"name": "curl", "command": ["/bin/sleep", "infinity"]}]}}
    assert curl.argv(pod) == ["/usr/bin/curl", "http://x/"]
    assert curl.argv(sleeper) is None
