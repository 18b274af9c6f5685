"""`plan` shows stages in order, what runs in parallel, and every resource; no network."""

from __future__ import annotations

from pathlib import Path

from meshwright import dag
from meshwright.plan import build_plan, render_text
from meshwright.remote_secrets import pairs
from meshwright.spec import load_spec, validate_spec

ROOT = Path(__file__).resolve().parents[2]


def test_classic_mesh_creates_three_clusters_in_one_parallel_stage() -> None:
    plan = build_plan(load_spec(ROOT / "deployments" / "sandbox.yaml"))
    first = plan.stages[0]
    assert first.name == "create-clusters"
    assert first.parallel
    assert [s.cluster for s in first.steps] == ["central", "west", "east"]
    assert [s.name for s in plan.stages] == [
        "create-clusters",
        "wait-clusters",
        "firewall",
        "kubeconfig",
        "trust",
        "istio-primaries",
        "istio-remotes",
        "remote-secrets",
        "bookinfo",
        "verify",
    ]


def test_plan_lists_every_resource_kind() -> None:
    plan = build_plan(load_spec(ROOT / "deployments" / "sandbox.yaml"))
    kinds = {r.kind for r in plan.resources()}
    assert kinds == {
        "gke-cluster",
        "firewall-rule",
        "kubeconfig",
        "namespace",
        "peer-authentication",
        "secret",
        "helm-release",
        "service",
        "deployment",
    }
    policies = {(r.cluster, r.details["mtls"]) for r in plan.resources() if r.kind == "peer-authentication"}
    assert policies == {("central", "STRICT"), ("west", "STRICT"), ("east", "STRICT")}
    remote_secrets = [r for r in plan.resources() if r.name.startswith("istio-remote-secret-")]
    assert {(r.name, r.cluster) for r in remote_secrets} == {
        ("istio-remote-secret-west", "central"),
        ("istio-remote-secret-east", "central"),
    }
    deployments = {(r.cluster, r.name) for r in plan.resources() if r.kind == "deployment"}
    assert ("west", "reviews-v3") in deployments
    assert ("east", "details-v1") in deployments


def test_multi_primary_exchanges_secrets_both_ways_with_gateways() -> None:
    spec = load_spec(ROOT / "deployments" / "multi-primary.yaml")
    assert pairs(spec) == [("beta", "alpha"), ("alpha", "beta")]
    gateways = [r for r in build_plan(spec).resources() if r.name == "istio-eastwestgateway"]
    assert sorted(g.cluster or "" for g in gateways) == ["alpha", "beta"]


def test_text_rendering_names_stages_and_labels() -> None:
    text = render_text(build_plan(load_spec(ROOT / "deployments" / "sandbox.yaml")))
    assert "Stage 1/10: create-clusters" in text
    assert "(3 in parallel)" in text
    assert "meshwright-mesh=bookinfo-mesh" in text
    assert "+ firewall-rule meshwright-bookinfo-mesh-pods" in text


def test_each_step_names_what_it_waits_for_as_the_flow_does() -> None:
    plan = build_plan(load_spec(ROOT / "deployments" / "sandbox.yaml"))
    after = {st.key: st.after for s in plan.stages for st in s.steps}
    assert after["install_istiod[west]"] == [
        "install_istio-base[west]",
        "ensure_cacerts[west]",
        "gateway_address[central]",
    ]
    assert after["install_istio-base[west]"] == ["prepare_namespace[west]", "install_istiod[central]"]
    assert after["install_istiod[central]"] == ["install_istio-base[central]", "ensure_cacerts[central]"]
    assert after["install_istio-eastwestgateway[central]"] == ["install_istiod[central]"]
    assert after["exchange_remote_secrets[east]"] == ["install_istiod[east]", "install_istiod[central]"]
    assert "exchange_remote_secrets[east]" in after["deploy_bookinfo[east]"]
    assert "exchange_remote_secrets[west]" not in after["deploy_bookinfo[east]"]
    assert "exchange_remote_secrets[west]" in after["deploy_bookinfo[central]"]
    assert "expose_on_gateway[central]" in after["deploy_bookinfo[east]"]
    text = render_text(plan)
    assert (
        "  install_istiod[west]  (after install_istio-base[west], ensure_cacerts[west], gateway_address[central])\n"
        in text
    )
    assert "Stage 1/10: create-clusters — create the GKE clusters (3 in parallel)\n" in text


def test_a_sources_secret_is_one_step_into_every_primary_that_reads_it() -> None:
    spec = load_spec(ROOT / "deployments" / "multi-primary.yaml")
    steps = {str(s.key): s for s in dag.steps(spec)}
    names = [c.name for c in spec.clusters]
    for source in names:
        readers = [c for c in names if c != source]
        step = steps[f"exchange_remote_secrets[{source}]"]
        assert [str(k) for k in step.after] == [f"install_istiod[{c}]" for c in (source, *readers)]
    plan = build_plan(spec)
    secrets = [
        r for r in plan.resources() if r.kind == "secret" and r.name.startswith("istio-remote-secret-")
    ]
    assert len(secrets) == len(names) * (len(names) - 1)


def test_every_step_comes_after_steps_listed_before_it() -> None:
    for name in ("sandbox.yaml", "multi-primary.yaml"):
        seen: set[str] = set()
        for step in dag.steps(load_spec(ROOT / "deployments" / name)):
            assert {str(k) for k in step.after} <= seen, step.key
            seen.add(str(step.key))


def test_plan_shows_the_firewall_values_the_task_applies() -> None:
    from meshwright import naming

    rule = next(
        r
        for r in build_plan(load_spec(ROOT / "deployments" / "sandbox.yaml")).resources()
        if r.kind == "firewall-rule"
    )
    assert rule.details["priority"] == str(naming.FIREWALL_PRIORITY)
    assert rule.details["allow"] == ", ".join(naming.FIREWALL_PROTOCOLS)


def test_a_remote_installs_its_gateway_once_its_remote_secret_is_in() -> None:
    spec = validate_spec(
        {
            "name": "mn",
            "project": "demo-project",
            "clusters": [
                {"name": "central", "location": "us-central1-a", "network": "net-a"},
                {"name": "west", "location": "us-west1-b", "network": "net-b", "primary": "central"},
            ],
        }
    )
    after = {str(s.key): [str(k) for k in s.after] for s in dag.steps(spec)}
    assert after["install_istio-eastwestgateway[west]"] == ["exchange_remote_secrets[west]"]
    assert after["install_istio-eastwestgateway[central]"] == ["install_istiod[central]"]


def test_istiod_is_planned_as_the_revision_of_the_version_holding_the_default_tag() -> None:
    plan = build_plan(load_spec(ROOT / "deployments" / "sandbox.yaml"))
    (istiod,) = [
        r
        for s in plan.stages
        for step in s.steps
        if step.key == "install_istiod[central]"
        for r in step.resources
    ]
    assert (istiod.name, istiod.details["revision"], istiod.details["revisionTags"]) == (
        "istiod-1-30-3",
        "1-30-3",
        "default",
    )
