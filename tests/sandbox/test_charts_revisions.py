"""The bundled istiod and base charts render revisions and revision tags under Istio's names.

Each expectation is what Istio's own chart renders (istio/istio
manifests/charts/istio-control/istio-discovery/templates/: deployment.yaml, service.yaml,
mutatingwebhook.yaml, revision-tags-mwc.yaml, revision-tags-svc.yaml, remote-istiod-service.yaml,
remote-istiod-endpointslices.yaml; manifests/charts/base/templates/
defaultrevision-validatingwebhookconfiguration.yaml), rendered here with the real helm.
"""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from meshwright import helm
from meshwright.sandbox.contract import BUNDLED_CHARTS

Rendered = dict[tuple[str, str], dict[str, Any]]


def render(chart: str, release: str, *sets: str) -> Rendered:
    """`helm template` of a bundled chart in istio-system, by (kind, name)."""
    args = [helm.executable(), "template", release, str(BUNDLED_CHARTS / chart), "-n", "istio-system"]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def hooks(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in config["webhooks"]}


def expressions(hook: dict[str, Any], selector: str) -> list[tuple[str, str, list[str]]]:
    return [(e["key"], e["operator"], e.get("values", [])) for e in hook[selector]["matchExpressions"]]


def test_a_revision_names_every_object_istiod_dash_revision() -> None:
    objects = render("istiod", "istiod-canary", "revision=canary")
    names = {name for _, name in objects}
    assert {"istiod-canary", "istio-canary", "istio-sidecar-injector-canary"} <= names
    assert "istiod" not in names
    assert "istio-sidecar-injector" not in names
    deployment = objects[("Deployment", "istiod-canary")]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "istiod", "istio.io/rev": "canary"}
    assert (pod_labels["istio.io/rev"], pod_labels["istio"]) == ("canary", "istiod")  # never `istio: pilot`
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REVISION"] == "canary"
    assert objects[("Service", "istiod-canary")]["spec"]["selector"] == {
        "app": "istiod",
        "istio.io/rev": "canary",
    }
    assert ("ClusterRole", "istio-reader-clusterrole-canary-istio-system") in objects
    assert ("ValidatingWebhookConfiguration", "istio-validator-canary-istio-system") in objects
    mesh = yaml.safe_load(objects[("ConfigMap", "istio-canary")]["data"]["mesh"])
    assert mesh["defaultConfig"]["discoveryAddress"] == "istiod-canary.istio-system.svc:15012"


def test_a_revisions_injector_selects_only_its_revision_label() -> None:
    objects = render("istiod", "istiod-canary", "revision=canary")
    config = objects[("MutatingWebhookConfiguration", "istio-sidecar-injector-canary")]
    assert config["metadata"]["labels"]["istio.io/rev"] == "canary"
    found = hooks(config)
    assert set(found) == {"rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io"}
    namespace = found["rev.namespace.sidecar-injector.istio.io"]
    assert ("istio.io/rev", "In", ["canary"]) in expressions(namespace, "namespaceSelector")
    assert namespace["clientConfig"]["service"]["name"] == "istiod-canary"
    assert ("istio.io/rev", "In", ["canary"]) in expressions(
        found["rev.object.sidecar-injector.istio.io"], "objectSelector"
    )


def test_the_default_revision_keeps_istiods_names_and_legacy_selectors() -> None:
    objects = render("istiod", "istiod")
    deployment = objects[("Deployment", "istiod")]
    assert deployment["spec"]["selector"]["matchLabels"] == {"istio": "pilot"}
    assert objects[("Service", "istiod")]["spec"]["selector"] == {"app": "istiod", "istio": "pilot"}
    found = hooks(objects[("MutatingWebhookConfiguration", "istio-sidecar-injector")])
    assert "namespace.sidecar-injector.istio.io" in found
    assert "object.sidecar-injector.istio.io" in found
    assert ("istio.io/rev", "In", ["default"]) in expressions(
        found["rev.namespace.sidecar-injector.istio.io"], "namespaceSelector"
    )


def test_revision_tags_are_webhook_configurations_pointing_at_the_revision() -> None:
    objects = render("istiod", "istiod-canary", "revision=canary", "revisionTags={prod,default}")
    prod = objects[("MutatingWebhookConfiguration", "istio-revision-tag-prod")]
    assert (prod["metadata"]["labels"]["istio.io/tag"], prod["metadata"]["labels"]["istio.io/rev"]) == (
        "prod",
        "canary",
    )
    prod_hooks = hooks(prod)
    assert set(prod_hooks) == {
        "rev.namespace.sidecar-injector.istio.io",
        "rev.object.sidecar-injector.istio.io",
    }
    namespace = prod_hooks["rev.namespace.sidecar-injector.istio.io"]
    assert ("istio.io/rev", "In", ["prod"]) in expressions(namespace, "namespaceSelector")
    assert namespace["clientConfig"]["service"]["name"] == "istiod-canary"
    default = hooks(objects[("MutatingWebhookConfiguration", "istio-revision-tag-default")])
    assert ("istio-injection", "In", ["enabled"]) in expressions(
        default["namespace.sidecar-injector.istio.io"], "namespaceSelector"
    )
    tag_service = objects[("Service", "istiod-revision-tag-prod")]
    assert tag_service["spec"]["selector"] == {"app": "istiod", "istio.io/rev": "canary"}


def test_a_remote_revision_points_its_own_service_and_webhook_path_at_the_primary() -> None:
    objects = render(
        "istiod",
        "istiod-canary",
        "profile=remote",
        "revision=canary",
        "global.remotePilotAddress=10.1.2.3",
        "istiodRemote.injectionPath=/inject/cluster/west/net/net1",
    )
    assert not any(kind == "Deployment" for kind, _ in objects)
    service = objects[("Service", "istiod-canary")]
    assert "selector" not in service["spec"]
    slice_ = objects[("EndpointSlice", "istiod-canary")]
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "istiod-canary"
    assert slice_["endpoints"][0]["addresses"] == ["10.1.2.3"]
    found = hooks(objects[("MutatingWebhookConfiguration", "istio-sidecar-injector-canary")])
    client = found["rev.namespace.sidecar-injector.istio.io"]["clientConfig"]["service"]
    assert (client["name"], client["path"]) == ("istiod-canary", "/inject/cluster/west/net/net1")


def test_base_points_the_default_validator_at_the_default_revision() -> None:
    default = render("base", "istio-base")[("ValidatingWebhookConfiguration", "istiod-default-validator")]
    assert default["webhooks"][0]["clientConfig"]["service"]["name"] == "istiod"
    canary = render("base", "istio-base", "defaultRevision=canary")
    validator = canary[("ValidatingWebhookConfiguration", "istiod-default-validator")]
    assert validator["metadata"]["labels"]["istio.io/rev"] == "canary"
    assert validator["webhooks"][0]["clientConfig"]["service"]["name"] == "istiod-canary"
    assert ("ValidatingWebhookConfiguration", "istiod-default-validator") not in render(
        "base", "istio-base", "defaultRevision="
    )
