"""The mTLS checks of a verification, from what the clusters show (pure: meshwright.mtls)."""

from __future__ import annotations

from typing import Any

import pytest

from meshwright import mtls
from meshwright.mtls import MtlsSeen, Probe
from meshwright.spec import SpecInvalid, validate_spec
from tests.dataplane.meshes import primary_remote

RESET = "curl: (56) Recv failure: Connection reset by peer"


def _policy(
    name: str, namespace: str, mode: str | None, created: str = "2026-01-01T00:00:00Z", **spec: Any
) -> dict[str, Any]:
    body = {"mtls": {"mode": mode}} if mode else {}
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": {**body, **spec},
    }


def test_the_namespace_mode_is_its_oldest_policy_else_the_mesh_wide_one_else_permissive() -> None:
    mesh_wide = _policy("default", "istio-system", "STRICT")
    assert mtls.namespace_mode([], "bookinfo") == ("PERMISSIVE", "")
    assert mtls.namespace_mode([mesh_wide], "bookinfo") == ("STRICT", "istio-system/default")
    unset = _policy("default", "bookinfo", None)
    assert mtls.namespace_mode([mesh_wide, unset], "bookinfo") == ("STRICT", "istio-system/default")
    newer = _policy("b", "bookinfo", "STRICT", created="2026-03-01T00:00:00Z")
    older = _policy("a", "bookinfo", "PERMISSIVE")
    assert mtls.namespace_mode([newer, older], "bookinfo") == ("PERMISSIVE", "bookinfo/a")


def test_a_workload_policy_that_relaxes_strict_is_named() -> None:
    relaxed = _policy("pp", "bookinfo", "STRICT", selector={"matchLabels": {"app": "productpage"}},
                      portLevelMtls={"9080": {"mode": "DISABLE"}})  # fmt: skip
    assert mtls.relaxing([relaxed], "bookinfo") == ["bookinfo/pp (app=productpage): DISABLE"]


def _seen(cluster: str, mode: str | None, code: int | None) -> MtlsSeen:
    probe = Probe(
        target="http://productpage.bookinfo:9080/", exit_code=code, message=RESET if code == 56 else ""
    )
    return MtlsSeen(
        cluster=cluster, mode=mode, source="bookinfo/default" if mode == "STRICT" else "", probe=probe
    )


def test_strict_with_plaintext_refused_is_whole_and_says_so_in_one_line() -> None:
    spec = primary_remote()
    report = mtls.check_mtls(
        spec, {"central": _seen("central", "STRICT", 56), "west": _seen("west", None, 56)}, None
    )
    assert report.ok
    assert report.summary() == (
        "mTLS STRICT: plaintext refused in central, west (curl exit 56: Recv failure: Connection reset by peer);"
        " mesh traffic not checked"
    )


def test_a_permissive_namespace_where_strict_is_expected_is_a_named_failure() -> None:
    report = mtls.check_mtls(primary_remote(), {"central": _seen("central", "PERMISSIVE", 0)}, None)
    assert report.problems == [
        "mTLS STRICT expected: central: namespace bookinfo is PERMISSIVE (no PeerAuthentication)",
        "mTLS STRICT expected: central: plaintext from a pod without sidecar was answered (http://productpage.bookinfo:9080/)",
    ]
    assert report.summary().startswith("mTLS STRICT: FAILED: mTLS STRICT expected: central")


def test_a_probe_that_got_a_sidecar_or_never_ended_proves_nothing() -> None:
    spec = primary_remote()
    sidecar = MtlsSeen(cluster="west", probe=Probe(target="u", exit_code=0, sidecar=True))
    stuck = MtlsSeen(cluster="east", probe=Probe(target="u", message="the probe pod is Pending, not ended"))
    problems = mtls.check_mtls(spec, {"west": sidecar, "east": stuck}, None).problems
    assert problems == [
        "mTLS STRICT expected: west: the probe pod got a sidecar despite sidecar.istio.io/inject=false: it proves nothing",
        "mTLS STRICT expected: east: the plaintext probe to u never ended: the probe pod is Pending, not ended",
    ]


def test_the_probe_asks_a_service_placed_in_its_cluster_from_outside_the_mesh() -> None:
    spec = primary_remote()
    assert mtls.probe_target(spec, "west") == "http://reviews.bookinfo:9080/"
    pod = mtls.probe_pod("bookinfo", "http://reviews.bookinfo:9080/")
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_the_spec_takes_strict_or_permissive_only() -> None:
    doc: dict[str, Any] = {
        "name": "m",
        "project": "demo-project",
        "clusters": [{"name": "central", "location": "us-central1-a"}],
        "bookinfo": {"placement": {"central": ["productpage-v1", "details-v1", "reviews-v1"]}},
    }
    spec = validate_spec(doc)
    assert spec.bookinfo is not None
    assert spec.bookinfo.mtls == "STRICT"
    doc["bookinfo"]["mtls"] = "DISABLE"
    with pytest.raises(SpecInvalid, match=r"bookinfo\.mtls"):
        validate_spec(doc)
