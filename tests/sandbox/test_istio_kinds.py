"""The kinds Istio's real base/istiod/gateway charts render, and the service proxy istioctl reads clusterz through."""

from __future__ import annotations

import json
import time
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from meshwright.sandbox.http import Request, Response
from meshwright.sandbox.kube.controllers.workloads import REVISION
from tests.sandbox.kube_fixtures import Sandbox
from tests.sandbox.kube_fixtures import sandbox as sandbox

ISTIO_NS = "istio-system"
SELECTOR = {"matchLabels": {"app": "istiod"}}


def _schema(depth: int, width: int) -> dict[str, Any]:
    """An openAPIV3Schema about as large and deep as Istio's generated ones."""
    if depth == 0:
        return {
            "type": "string",
            "description": "x" * 200,
            "enum": ["A", "B"],
            "x-kubernetes-validations": [],
        }
    props = {f"field{i}": _schema(depth - 1, width) for i in range(width)}
    return {
        "type": "object",
        "properties": props,
        "required": ["field0"],
        "x-kubernetes-preserve-unknown-fields": True,
    }


def istio_crd(plural: str, kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
        "additionalPrinterColumns": [{"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"}],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.networking.istio.io", "labels": {"app": "istio-pilot"}},
        "spec": {
            "group": "networking.istio.io",
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
                "categories": ["istio-io"],
            },
            "scope": "Namespaced",
            "versions": [{**version, "name": "v1alpha3", "storage": False}, version],
        },
    }


WEBHOOK = {
    "name": "rev.validation.istio.io",
    "clientConfig": {
        "service": {"name": "istiod", "namespace": ISTIO_NS, "path": "/validate", "port": 443},
        "caBundle": "",
    },
    "rules": [
        {
            "operations": ["CREATE", "UPDATE"],
            "apiGroups": ["security.istio.io"],
            "apiVersions": ["*"],
            "resources": ["*"],
        }
    ],
    "failurePolicy": "Ignore",
    "sideEffects": "None",
    "admissionReviewVersions": ["v1beta1", "v1"],
    "objectSelector": {
        "matchExpressions": [{"key": "istio.io/rev", "operator": "In", "values": ["default"]}]
    },
}
CHART_OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "istiod-default-validator"},
        "webhooks": [WEBHOOK],
    },
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-sidecar-injector"},
        "webhooks": [
            {**WEBHOOK, "name": "namespace.sidecar-injector.istio.io", "reinvocationPolicy": "Never"}
        ],
    },
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "stable-channel-default-policy.istio.io"},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["security.istio.io"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["*"],
                    }
                ]
            },
            "variables": [{"name": "isEnvoyFilter", "expression": "object.kind == 'EnvoyFilter'"}],
            "validations": [
                {
                    "expression": "!has(object.spec.workloadSelector)",
                    "message": "workloadSelector is not allowed",
                }
            ],
        },
    },
    {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "stable-channel-default-policy-binding.istio.io"},
        "spec": {"policyName": "stable-channel-default-policy.istio.io", "validationActions": ["Deny"]},
    },
    {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "istiod", "namespace": ISTIO_NS},
        "spec": {
            "maxReplicas": 5,
            "minReplicas": 1,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "istiod"},
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
                }
            ],
        },
    },
    {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "istiod", "namespace": ISTIO_NS},
        "spec": {"minAvailable": 1, "selector": SELECTOR},
    },
    {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "istiod",
            "namespace": ISTIO_NS,
            "labels": {
                "kubernetes.io/service-name": "istiod",
                "endpointslice.kubernetes.io/managed-by": "helm",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["203.0.113.7"]}],
        "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "istio-reader-clusterrole-istio-system"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "istio-reader-clusterrole-istio-system"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "istio-reader-clusterrole-istio-system",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "istio-reader-service-account", "namespace": ISTIO_NS}
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "istiod", "namespace": ISTIO_NS},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get"]}],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "istiod", "namespace": ISTIO_NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "istiod"},
        "subjects": [{"kind": "ServiceAccount", "name": "istiod", "namespace": ISTIO_NS}],
    },
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "istio-reader-service-account", "namespace": ISTIO_NS},
    },
]


def contains(got: Any, sent: Any) -> bool:
    """Everything sent is read back unchanged (the server may add its defaults around it)."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(contains(got.get(k), v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(contains, got, sent))
    return bool(got == sent)


@pytest.fixture
def dynamic(sandbox: Sandbox) -> DynamicClient:
    kube = sandbox.kube()
    kubernetes.client.CoreV1Api(kube).create_namespace({"metadata": {"name": ISTIO_NS}})
    return DynamicClient(kube)


def test_every_kind_the_charts_render_is_created_and_read_back(dynamic: DynamicClient) -> None:
    for manifest in CHART_OBJECTS:
        api = dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        namespace = manifest["metadata"].get("namespace")
        api.create(body=manifest, namespace=namespace)
        back = api.get(name=manifest["metadata"]["name"], namespace=namespace).to_dict()
        for key in manifest:
            if key not in ("metadata", "apiVersion", "kind"):
                assert contains(back[key], manifest[key]), (manifest["kind"], key)


def test_a_crd_keeps_its_full_schema_and_serves_its_kind(dynamic: DynamicClient) -> None:
    hosts = {"type": "array", "items": {"type": "string"}}
    spec = {"type": "object", "properties": {"hosts": hosts, "big": _schema(depth=4, width=6)}}
    schema = {"type": "object", "properties": {"spec": spec}}  # about 700 KB of JSON, in one request
    crd = istio_crd("virtualservices", "VirtualService", schema)
    assert 500_000 < len(json.dumps(crd)) < 3 * 1024 * 1024
    crds = dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(body=crd)
    stored = crds.get(name="virtualservices.networking.istio.io").to_dict()
    assert stored["spec"]["versions"][1]["schema"]["openAPIV3Schema"] == schema
    assert {c["type"]: c["status"] for c in stored["status"]["conditions"]}["Established"] == "True"
    dynamic.resources.invalidate_cache()
    vs = dynamic.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
    vs.create(
        body={
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "r"},
            "spec": {"hosts": ["a"]},
        },
        namespace=ISTIO_NS,
    )
    assert vs.get(name="r", namespace=ISTIO_NS).spec.hosts == ["a"]


def test_bad_crds_are_refused(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crd = istio_crd("gateways", "Gateway", {"type": "object"})
    wrong_name = {**crd, "metadata": {"name": "gateways.example.com"}}
    assert raw.call("POST", path, wrong_name)[0] == 422
    core_group = istio_crd("deployments", "Deployment", {"type": "object"})
    core_group["spec"]["group"] = "apps"
    core_group["metadata"]["name"] = "deployments.apps"
    assert raw.call("POST", path, core_group)[0] == 422
    two_storage = istio_crd("gateways", "Gateway", {"type": "object"})
    two_storage["spec"]["versions"][0]["storage"] = True
    assert raw.call("POST", path, two_storage)[0] == 422
    assert raw.call("GET", f"{path}/gateways.networking.istio.io")[0] == 404


def test_autoscaling_prefers_v2_like_a_real_server(sandbox: Sandbox) -> None:
    group = next(
        g
        for g in kubernetes.client.ApisApi(sandbox.kube()).get_api_versions().groups
        if g.name == "autoscaling"
    )
    assert group.preferred_version.version == "v2"
    admission = {
        r.name
        for r in kubernetes.client.AdmissionregistrationV1Api(sandbox.kube()).get_api_resources().resources
    }
    assert {
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "mutatingwebhookconfigurations",
    } <= admission


def test_invalid_webhooks_and_slices_are_refused(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    webhook = {**CHART_OBJECTS[0], "webhooks": [{**WEBHOOK, "sideEffects": "Maybe"}]}
    status, answer = raw.call(
        "POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", webhook
    )
    assert (status, answer["details"]["causes"][0]["field"]) == (422, "webhooks[0].sideEffects")
    raw.call("POST", "/api/v1/namespaces", {"metadata": {"name": ISTIO_NS}})
    slice_ = {**CHART_OBJECTS[6], "addressType": "IPv5"}
    assert (
        raw.call("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ISTIO_NS}/endpointslices", slice_)[0] == 422
    )


# -- service proxy -----------------------------------------------------------------------------


def _istiod_service(sandbox: Sandbox) -> kubernetes.client.CoreV1Api:
    core = kubernetes.client.CoreV1Api(sandbox.kube())
    core.create_namespace({"metadata": {"name": ISTIO_NS}})
    ports = [{"name": "http-monitoring", "port": 15014}, {"name": "grpc-xds", "port": 15010}]
    core.create_namespaced_service(
        ISTIO_NS, {"metadata": {"name": "istiod"}, "spec": {"selector": {"app": "istiod"}, "ports": ports}}
    )
    return core


def test_service_proxy_answers_through_the_registered_backend(sandbox: Sandbox) -> None:
    core = _istiod_service(sandbox)
    seen: list[tuple[str, str, str, str, str]] = []

    def backend(cluster_id: str, namespace: str, service: str, path: str, r: Request) -> Response | None:
        seen.append((cluster_id, namespace, service, path, r.method))
        return Response(
            200, [{"id": "west", "secretName": "istio-remote-secret-west", "syncStatus": "synced"}]
        )

    sandbox.world.fleet.service_proxy = backend
    answer = core.connect_get_namespaced_service_proxy_with_path("istiod:15014", ISTIO_NS, "debug/clusterz")
    assert "synced" in answer
    assert seen == [(sandbox.cluster().id, ISTIO_NS, "istiod:15014", "/debug/clusterz", "GET")]
    raw = sandbox.raw()
    status, _body = raw.call(
        "GET", f"/api/v1/namespaces/{ISTIO_NS}/services/istiod:15014/proxy/debug/clusterz"
    )
    assert status == 200
    assert seen[-1][2:4] == ("istiod:15014", "/debug/clusterz")


def test_service_proxy_without_a_backend_is_503_and_unknown_services_404(sandbox: Sandbox) -> None:
    core = _istiod_service(sandbox)
    with pytest.raises(ApiException) as caught:
        core.connect_get_namespaced_service_proxy_with_path("istiod:15014", ISTIO_NS, "debug/clusterz")
    assert caught.value.status == 503
    assert json.loads(caught.value.body)["message"] == 'no endpoints available for service "istiod"'
    sandbox.world.fleet.service_proxy = lambda *args: None
    raw = sandbox.raw()
    assert (
        raw.call("GET", f"/api/v1/namespaces/{ISTIO_NS}/services/istiod%3A15014/proxy/debug/clusterz")[0]
        == 503
    )
    status, body = raw.call("GET", f"/api/v1/namespaces/{ISTIO_NS}/services/nothing:15014/proxy/x")
    assert (status, body["message"]) == (404, 'services "nothing" not found')


# -- what a real server fills in ------------------------------------------------------------------


def test_webhooks_services_and_crds_get_the_servers_defaults(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    raw.call("POST", "/api/v1/namespaces", {"metadata": {"name": ISTIO_NS}})
    hooks = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    _, mwc = raw.call(
        "POST",
        hooks,
        {
            **CHART_OBJECTS[1],
            "webhooks": [{**WEBHOOK, "clientConfig": {"service": {"name": "istiod", "namespace": ISTIO_NS}}}],
        },
    )
    hook = mwc["webhooks"][0]
    assert (hook["matchPolicy"], hook["timeoutSeconds"], hook["reinvocationPolicy"]) == (
        "Equivalent",
        10,
        "Never",
    )
    assert (
        hook["namespaceSelector"],
        hook["clientConfig"]["service"]["port"],
        hook["rules"][0]["scope"],
    ) == ({}, 443, "*")
    ports = [{"name": "tls", "port": 15443}]
    _, svc = raw.call(
        "POST",
        f"/api/v1/namespaces/{ISTIO_NS}/services",
        {"metadata": {"name": "gw"}, "spec": {"type": "LoadBalancer", "ports": ports}},
    )
    spec = svc["spec"]
    assert (spec["ipFamilies"], spec["ipFamilyPolicy"], spec["internalTrafficPolicy"]) == (
        ["IPv4"],
        "SingleStack",
        "Cluster",
    )
    assert (spec["externalTrafficPolicy"], spec["allocateLoadBalancerNodePorts"]) == ("Cluster", True)
    _, crd = raw.call(
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        istio_crd("gateways", "Gateway", {"type": "object"}),
    )
    assert crd["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]


def test_deployments_get_pod_defaults_and_services_get_endpoint_slices(sandbox: Sandbox) -> None:
    core, apps = kubernetes.client.CoreV1Api(sandbox.kube()), kubernetes.client.AppsV1Api(sandbox.kube())
    labels = {"app": "istiod"}
    container = {
        "name": "discovery",
        "image": "docker.io/istio/pilot:1.30.3",
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
    }
    template = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
    body = {
        "metadata": {"name": "istiod"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": template,
            "strategy": {"rollingUpdate": {"maxSurge": "100%"}},
        },
    }
    dep = apps.create_namespaced_deployment("default", body)
    assert dep.spec.strategy.type == "RollingUpdate"
    pod = dep.spec.template.spec
    assert (pod.dns_policy, pod.restart_policy, pod.termination_grace_period_seconds) == (
        "ClusterFirst",
        "Always",
        30,
    )
    c = pod.containers[0]
    assert (c.termination_message_policy, c.image_pull_policy, c.readiness_probe.http_get.scheme) == (
        "File",
        "IfNotPresent",
        "HTTP",
    )
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "istiod"},
            "spec": {"selector": labels, "ports": [{"name": "grpc", "port": 15010}]},
        },
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        slices = (
            kubernetes.client.DiscoveryV1Api(sandbox.kube())
            .list_namespaced_endpoint_slice("default", label_selector="kubernetes.io/service-name=istiod")
            .items
        )
        if slices and slices[0].endpoints:
            break
        time.sleep(0.1)
    assert [s.address_type for s in slices] == ["IPv4"]
    assert [p.port for p in slices[0].ports] == [15010]
    assert len(slices[0].endpoints) == 1
    assert apps.read_namespaced_deployment("istiod", "default").status.unavailable_replicas is None
    core.delete_namespaced_service("istiod", "default")
    assert (
        kubernetes.client.DiscoveryV1Api(sandbox.kube()).list_namespaced_endpoint_slice("default").items == []
    )
    assert core.list_namespaced_endpoints("default").items == [] or all(
        e.metadata.name != "istiod" for e in core.list_namespaced_endpoints("default").items
    )


def test_crd_printer_columns_replace_the_default_age(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    columns = [
        {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    crd = istio_crd(
        "virtualservices", "VirtualService", {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    for version in crd["spec"]["versions"]:
        version["additionalPrinterColumns"] = columns
    raw.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    raw.call("POST", "/api/v1/namespaces", {"metadata": {"name": ISTIO_NS}})
    path = f"/apis/networking.istio.io/v1/namespaces/{ISTIO_NS}/virtualservices"
    assert raw.call("POST", path, {"metadata": {"name": "r"}, "spec": {"hosts": ["a"]}})[0] == 201
    conn = raw.connection()
    conn.request(
        "GET",
        path,
        headers={
            "Authorization": f"Bearer {raw.token}",
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
        },
    )
    table = json.loads(conn.getresponse().read())
    conn.close()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Hosts", "Age"]
    assert table["columnDefinitions"][2]["type"] == "date"
    name, hosts, age = table["rows"][0]["cells"]
    assert (name, hosts) == ("r", ["a"])
    assert age.endswith("s")


WASM_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "phase": {"type": "string", "enum": ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]},
                "priority": {"type": "integer", "nullable": True, "maximum": 100},
                "pluginName": {"type": "string"},
                "imagePullPolicy": {"type": "string", "default": "UNSPECIFIED_POLICY"},
                "pluginConfig": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def test_custom_resources_are_checked_against_their_schema(sandbox: Sandbox) -> None:
    raw = sandbox.raw()
    crd = istio_crd("wasmplugins", "WasmPlugin", WASM_SCHEMA)
    crd["spec"]["group"], crd["metadata"]["name"] = "extensions.istio.io", "wasmplugins.extensions.istio.io"
    assert raw.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    path = "/apis/extensions.istio.io/v1/namespaces/default/wasmplugins"
    bad = {"metadata": {"name": "w"}, "spec": {"pluginName": "x", "phase": "BOGUS", "priority": "high"}}
    status, answer = raw.call("POST", path, bad)
    assert status == 422
    assert sorted(c["field"] for c in answer["details"]["causes"]) == [
        "spec.phase",
        "spec.priority",
        "spec.url",
    ]
    unknown = {
        "metadata": {"name": "w"},
        "spec": {"url": "oci://x", "bogusField": 1, "pluginConfig": {"any": 1}},
    }
    status, answer = raw.call("POST", f"{path}?fieldValidation=Strict", unknown)
    assert (status, answer["message"]) == (400, 'strict decoding error: unknown field "spec.bogusField"')
    status, stored = raw.call("POST", path, unknown)
    assert status == 201
    assert stored["spec"] == {
        "url": "oci://x",
        "pluginConfig": {"any": 1},
        "imagePullPolicy": "UNSPECIFIED_POLICY",
    }
    merge = "application/merge-patch+json"
    assert raw.call("PATCH", f"{path}/w", {"spec": {"priority": 500}}, content_type=merge)[0] == 422
    assert raw.call("GET", f"{path}/w")[1]["spec"] == stored["spec"]


def test_a_rollout_keeps_the_old_replica_set_at_zero_with_revisions(sandbox: Sandbox) -> None:
    apps = kubernetes.client.AppsV1Api(sandbox.kube())
    labels = {"app": "web"}
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            },
        },
    }
    apps.create_namespaced_deployment("default", body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}}
    apps.patch_namespaced_deployment("web", "default", patch)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        dep = apps.read_namespaced_deployment("web", "default")
        if dep.status.ready_replicas == 1 and dep.status.observed_generation == 2:
            break
        time.sleep(0.05)
    sets = {rs.metadata.annotations[REVISION]: rs for rs in apps.list_namespaced_replica_set("default").items}
    assert sorted(sets) == ["1", "2"]
    assert (sets["1"].spec.replicas, sets["2"].spec.replicas) == (0, 1)
    assert sets["2"].spec.template.spec.containers[0].image == "nginx:2"
    assert dep.metadata.annotations[REVISION] == "2"
    assert dep.status.ready_replicas == 1
    pods = kubernetes.client.CoreV1Api(sandbox.kube()).list_namespaced_pod("default").items
    assert [p.metadata.labels["pod-template-hash"] for p in pods] == [
        sets["2"].metadata.labels["pod-template-hash"]
    ]


def test_nodes_follow_the_node_pools_and_pods_run_on_them(sandbox: Sandbox) -> None:
    core = kubernetes.client.CoreV1Api(sandbox.kube())
    nodes = core.list_node().items
    assert len(nodes) == 2  # the test cluster's default-pool has two nodes in one zone
    labels = nodes[0].metadata.labels
    assert labels["cloud.google.com/gke-nodepool"] == "default-pool"
    assert labels["topology.kubernetes.io/zone"] == "us-central1-a"
    assert labels["topology.kubernetes.io/region"] == "us-central1"
    assert labels["node.kubernetes.io/instance-type"] == "e2-standard-4"
    assert nodes[0].status.capacity["cpu"] == "4"
    internal = {
        str(n.metadata.name): next(a.address for a in n.status.addresses if a.type == "InternalIP")
        for n in nodes
    }
    apps = kubernetes.client.AppsV1Api(sandbox.kube())
    labels_ = {"app": "spread"}
    template = {"metadata": {"labels": labels_}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "spread"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels_}, "template": template},
        },
    )
    deadline = time.monotonic() + 10
    pods: list[Any] = []
    while len(pods) < 2 and time.monotonic() < deadline:
        pods = core.list_namespaced_pod("default", label_selector="app=spread").items
        time.sleep(0.05)
    assert sorted(str(p.spec.node_name) for p in pods) == sorted(internal)
    assert all(p.status.host_ip == internal[p.spec.node_name] for p in pods)
    sandbox.restart()
    assert len(kubernetes.client.CoreV1Api(sandbox.kube()).list_node().items) == 2


def test_an_autoscaler_keeps_its_deployment_at_min_replicas(sandbox: Sandbox) -> None:
    apps = kubernetes.client.AppsV1Api(sandbox.kube())
    labels = {"app": "istiod"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "pilot:1"}]}}
    apps.create_namespaced_deployment(
        "default",
        {"metadata": {"name": "istiod"}, "spec": {"selector": {"matchLabels": labels}, "template": template}},
    )
    hpa = {
        "metadata": {"name": "istiod"},
        "spec": {
            "minReplicas": 2,
            "maxReplicas": 5,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "istiod"},
        },
    }
    kubernetes.client.AutoscalingV2Api(sandbox.kube()).create_namespaced_horizontal_pod_autoscaler(
        "default", hpa
    )
    assert apps.read_namespaced_deployment("istiod", "default").spec.replicas == 2
    status = (
        kubernetes.client.AutoscalingV2Api(sandbox.kube())
        .read_namespaced_horizontal_pod_autoscaler("istiod", "default")
        .status
    )
    assert (status.current_replicas, status.desired_replicas) == (1, 2)
