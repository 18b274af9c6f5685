"""The real kubernetes python client against a sandbox cluster's API server."""

from __future__ import annotations

import base64
import ipaddress
import json
import threading
import time
from typing import Any

import kubernetes.client
import kubernetes.watch
import pytest
from google.cloud import container_v1
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from meshwright.sandbox.world import World
from tests.support import kube_client, running_cluster

Client = kubernetes.client.ApiClient


def core(kube: Client) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kube)


def apps(kube: Client) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(kube)


def status_of(call: Any) -> int:
    with pytest.raises(ApiException) as caught:
        call()
    return int(caught.value.status)


def deployment(name: str, replicas: int = 2, image: str = "nginx:1") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def test_version_and_discovery(kube: Client) -> None:
    assert kubernetes.client.VersionApi(kube).get_code().minor == "32"
    groups = {g.name for g in kubernetes.client.ApisApi(kube).get_api_versions().groups}
    assert {
        "apps",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "policy",
    } <= groups
    resources = {r.name for r in core(kube).get_api_resources().resources}
    assert {"namespaces", "secrets", "serviceaccounts/token", "services/status", "pods"} <= resources


def test_new_namespace_is_active_with_default_sa_and_root_ca(kube: Client) -> None:
    core(kube).create_namespace({"metadata": {"name": "istio-system"}})
    ns = core(kube).read_namespace("istio-system")
    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "istio-system"
    assert core(kube).read_namespaced_service_account("default", "istio-system").metadata.name == "default"
    assert (
        "BEGIN CERTIFICATE"
        in core(kube).read_namespaced_config_map("kube-root-ca.crt", "istio-system").data["ca.crt"]
    )


def test_create_errors_use_real_status_codes(kube: Client) -> None:
    api = core(kube)
    api.create_namespace({"metadata": {"name": "a"}})
    assert status_of(lambda: api.create_namespace({"metadata": {"name": "a"}})) == 409
    assert status_of(lambda: api.create_namespaced_config_map("missing", {"metadata": {"name": "c"}})) == 404
    assert (
        status_of(
            lambda: api.create_namespaced_config_map("a", {"metadata": {"name": "c", "namespace": "other"}})
        )
        == 400
    )
    assert status_of(lambda: api.create_namespaced_config_map("a", {"metadata": {"name": "Bad_Name"}})) == 422
    assert status_of(lambda: api.read_namespaced_config_map("nope", "a")) == 404


def test_replace_with_stale_resource_version_conflicts(kube: Client) -> None:
    api = core(kube)
    api.create_namespace({"metadata": {"name": "a"}})
    cm = api.create_namespaced_config_map("a", {"metadata": {"name": "c"}, "data": {"k": "1"}})
    stale = cm.metadata.resource_version
    api.replace_namespaced_config_map(
        "c", "a", {"metadata": {"name": "c", "resourceVersion": stale}, "data": {"k": "2"}}
    )
    assert (
        status_of(
            lambda: api.replace_namespaced_config_map(
                "c", "a", {"metadata": {"name": "c", "resourceVersion": stale}, "data": {"k": "3"}}
            )
        )
        == 409
    )
    assert api.read_namespaced_config_map("c", "a").data == {"k": "2"}


def test_metadata_uid_resource_version_generation(kube: Client) -> None:
    apps(kube).create_namespaced_deployment("default", deployment("web"))
    first = apps(kube).read_namespaced_deployment("web", "default")
    assert first.metadata.uid
    assert first.metadata.creation_timestamp
    assert first.metadata.generation == 1
    apps(kube).patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    second = apps(kube).read_namespaced_deployment("web", "default")
    assert second.metadata.generation == 2
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    apps(kube).patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    assert apps(kube).read_namespaced_deployment("web", "default").metadata.generation == 2


def test_label_selectors_full_syntax_and_field_selectors(kube: Client) -> None:
    api = core(kube)
    for name, labels in (
        ("s1", {"istio/multiCluster": "true", "tier": "a"}),
        ("s2", {"tier": "b"}),
        ("s3", {"tier": "c", "gone": "1"}),
    ):
        api.create_namespaced_secret("default", {"metadata": {"name": name, "labels": labels}})

    def names(**kw: str) -> list[str]:
        return [str(s.metadata.name) for s in api.list_namespaced_secret("default", **kw).items]

    assert names(label_selector="istio/multiCluster=true") == ["s1"]
    assert names(label_selector="tier in (a,b)") == ["s1", "s2"]
    assert names(label_selector="tier notin (a,b),tier") == ["s3"]
    assert names(label_selector="!gone,tier!=a") == ["s2"]
    assert names(label_selector="tier==c,gone") == ["s3"]
    assert names(field_selector="metadata.name=s2") == ["s2"]
    assert [
        s.metadata.name
        for s in api.list_secret_for_all_namespaces(
            field_selector="metadata.namespace=default,metadata.name!=s1"
        ).items
    ] == ["s2", "s3"]
    assert status_of(lambda: api.list_namespaced_secret("default", label_selector="tier in (a")) == 400


def test_patch_forms(kube: Client) -> None:
    api = apps(kube)
    api.create_namespaced_deployment("default", deployment("web"))
    # strategic merge: containers merge by name, env by name
    api.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "side", "image": "envoy"},
                            {"name": "main", "env": [{"name": "A", "value": "1"}]},
                        ]
                    }
                }
            }
        },
    )
    containers = api.read_namespaced_deployment("web", "default").spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("main", "nginx:1"), ("side", "envoy")]
    assert containers[0].env[0].name == "A"
    # JSON patch (a list body)
    api.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 5}]
    )
    assert api.read_namespaced_deployment("web", "default").spec.replicas == 5
    # merge patch (as CustomObjectsApi and kubectl label send it): lists replace, null deletes
    dyn = DynamicClient(kube, cache_file="/dev/null")
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    dyn.patch(
        deployments,
        body={"metadata": {"labels": {"app": None, "b": "2"}}},
        name="web",
        namespace="default",
        content_type="application/merge-patch+json",
    )
    assert api.read_namespaced_deployment("web", "default").metadata.labels == {"b": "2"}


def test_server_side_apply_creates_tracks_and_prunes(kube: Client) -> None:
    dyn = DynamicClient(kube, cache_file="/dev/null")
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    first = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "labels": {"a": "1"}},
        "data": {"x": "1", "y": "2"},
    }
    dyn.server_side_apply(cms, body=first, namespace="default", field_manager="meshwright")
    created = core(kube).read_namespaced_config_map("cfg", "default")
    assert created.data == {"x": "1", "y": "2"}
    assert [(m.manager, m.operation) for m in created.metadata.managed_fields] == [("meshwright", "Apply")]
    core(kube).patch_namespaced_config_map("cfg", "default", {"data": {"z": "other"}})
    second = {**first, "metadata": {"name": "cfg", "namespace": "default"}, "data": {"x": "1"}}
    dyn.server_side_apply(cms, body=second, namespace="default", field_manager="meshwright")
    after = core(kube).read_namespaced_config_map("cfg", "default")
    assert after.data == {"x": "1", "z": "other"}
    assert not after.metadata.labels
    assert status_of(lambda: dyn.server_side_apply(cms, body=first, namespace="default")) == 400


def test_watch_resumes_from_a_resource_version_and_times_out(kube: Client) -> None:
    api = core(kube)
    start = api.list_namespaced_config_map("default").metadata.resource_version
    api.create_namespaced_config_map("default", {"metadata": {"name": "w1"}})
    api.patch_namespaced_config_map("w1", "default", {"data": {"k": "v"}})
    api.delete_namespaced_config_map("w1", "default")
    events = [
        (e["type"], e["object"].metadata.name)
        for e in kubernetes.watch.Watch().stream(
            api.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=1
        )
    ]
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    began = time.monotonic()
    assert (
        list(
            kubernetes.watch.Watch().stream(
                api.list_namespaced_config_map,
                "kube-system",
                resource_version=api.list_namespaced_config_map("default").metadata.resource_version,
                timeout_seconds=1,
            )
        )
        == []
    )
    assert time.monotonic() - began < 5


def test_watch_from_a_compacted_version_is_gone(
    world: World, central: container_v1.Cluster, kube: Client
) -> None:
    store = next(iter(world.fleet.running_apis.values())).cluster.store
    store._oldest = store.rv  # as after a restart or a compaction
    with pytest.raises(ApiException) as caught:
        list(
            kubernetes.watch.Watch().stream(
                core(kube).list_namespaced_config_map, "default", resource_version="1", timeout_seconds=1
            )
        )
    assert caught.value.status == 410


def test_deployment_rolls_out_replica_set_and_pods_with_watch_events(
    kube: Client, central: container_v1.Cluster
) -> None:
    before = apps(kube).list_namespaced_deployment("default").metadata.resource_version
    apps(kube).create_namespaced_deployment("default", deployment("web", replicas=2))
    w = kubernetes.watch.Watch()
    seen = []
    for event in w.stream(
        apps(kube).list_namespaced_deployment,
        "default",
        field_selector="metadata.name=web",
        resource_version=before,
        timeout_seconds=5,
    ):
        status = event["object"].status
        seen.append(status.ready_replicas if status else None)
        if seen[-1] == 2:
            w.stop()
    assert seen[0] is None
    assert seen[-1] == 2
    pods = core(kube).list_namespaced_pod("default", label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.status.phase == "Running" for p in pods)

    assert all(
        ipaddress.ip_address(p.status.pod_ip) in ipaddress.ip_network(central.cluster_ipv4_cidr) for p in pods
    )
    assert len(apps(kube).list_namespaced_replica_set("default").items) == 1
    apps(kube).delete_namespaced_deployment("web", "default")
    assert core(kube).list_namespaced_pod("default").items == []


def test_services_get_cluster_and_load_balancer_ips_and_endpoints(
    world: World, kube: Client, central: container_v1.Cluster
) -> None:
    svc = {
        "metadata": {"name": "gw"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"name": "tls", "port": 15443}],
        },
    }
    created = core(kube).create_namespaced_service("default", svc)

    assert ipaddress.ip_address(created.spec.cluster_ip) in ipaddress.ip_network(central.services_ipv4_cidr)
    assert (created.spec.ports[0].node_port or 0) >= 30000
    apps(kube).create_namespaced_deployment("default", deployment("web", replicas=1))
    deadline = time.monotonic() + 5
    while not (
        core(kube).read_namespaced_service("gw", "default").status.load_balancer.ingress
        and core(kube).read_namespaced_endpoints("gw", "default").subsets
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    address = core(kube).read_namespaced_service("gw", "default").status.load_balancer.ingress[0].ip
    assert ipaddress.IPv4Address(address) in world.fleet.lb_pool  # loopback: nothing ever leaves the machine
    assert ipaddress.ip_address(address).is_loopback


def test_secrets_string_data_and_service_account_tokens(
    world: World, central: container_v1.Cluster, kube: Client
) -> None:
    api = core(kube)
    api.create_namespaced_secret("default", {"metadata": {"name": "plain"}, "stringData": {"k": "v"}})
    assert base64.b64decode(api.read_namespaced_secret("plain", "default").data["k"]) == b"v"
    api.create_namespaced_service_account("default", {"metadata": {"name": "istio-reader-service-account"}})
    api.create_namespaced_secret(
        "default",
        {
            "metadata": {
                "name": "reader-token",
                "annotations": {"kubernetes.io/service-account.name": "istio-reader-service-account"},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )
    data = api.read_namespaced_secret("reader-token", "default").data
    assert set(data) == {"token", "ca.crt", "namespace"}
    token = base64.b64decode(data["token"]).decode()
    # Both tokens authenticate (discovery is every authenticated user's); nothing binds the account, so
    # RBAC refuses the rest with 403, not 401.
    assert core(kube_client(world, central, token)).get_api_resources().group_version == "v1"
    assert status_of(lambda: core(kube_client(world, central, token)).list_namespace()) == 403
    requested = api.create_namespaced_service_account_token(
        "istio-reader-service-account",
        "default",
        {"spec": {"audiences": ["istio-ca"], "expirationSeconds": 3600}},
    )
    assert requested.status.expiration_timestamp.timestamp() > time.time() + 3000
    as_requested = core(kube_client(world, central, requested.status.token))
    assert as_requested.get_api_resources().group_version == "v1"
    assert status_of(lambda: as_requested.read_namespace("default")) == 403


def test_unauthenticated_and_foreign_tokens_get_401(
    world: World, gke: container_v1.ClusterManagerClient, central: container_v1.Cluster, kube: Client
) -> None:
    assert status_of(lambda: core(kube_client(world, central, "")).list_namespace()) == 401
    assert status_of(lambda: core(kube_client(world, central, "not-a-token")).list_namespace()) == 401
    west = running_cluster(gke, "west")
    west_api = core(kube_client(world, west))
    west_api.create_namespaced_service_account("default", {"metadata": {"name": "r"}})
    west_token = west_api.create_namespaced_service_account_token(
        "r", "default", {"spec": {"expirationSeconds": 3600}}
    ).status.token
    assert status_of(lambda: core(kube_client(world, central, west_token)).list_namespace()) == 401
    anonymous = kube_client(world, central)
    anonymous.configuration.api_key.clear()
    assert kubernetes.client.VersionApi(anonymous).get_code().major == "1"
    assert status_of(lambda: core(anonymous).list_namespace()) == 401


def test_namespace_deletion_cascades(kube: Client) -> None:
    api = core(kube)
    api.create_namespace({"metadata": {"name": "doomed"}})
    api.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    apps(kube).create_namespaced_deployment("doomed", deployment("web", replicas=1))
    # The server answers with the Namespace (as a real one does); the client's V1Status model leaves it a dict.
    assert api.delete_namespace("doomed")["status"]["phase"] == "Terminating"
    assert status_of(lambda: api.read_namespace("doomed")) == 404
    assert api.list_config_map_for_all_namespaces(field_selector="metadata.namespace=doomed").items == []
    assert api.list_pod_for_all_namespaces(field_selector="metadata.namespace=doomed").items == []


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gateways.networking.istio.io"},
    "spec": {
        "group": "networking.istio.io",
        "scope": "Namespaced",
        "names": {"plural": "gateways", "singular": "gateway", "kind": "Gateway", "shortNames": ["gw"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def test_custom_resource_definitions_serve_custom_objects(kube: Client) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(kube)
    ext.create_custom_resource_definition(CRD)
    conditions = {
        c.type: c.status
        for c in ext.read_custom_resource_definition("gateways.networking.istio.io").status.conditions
    }
    assert conditions["Established"] == "True"
    custom = kubernetes.client.CustomObjectsApi(kube)
    gw = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "cross-network-gateway"},
        "spec": {"selector": {"istio": "eastwestgateway"}},
    }
    custom.create_namespaced_custom_object("networking.istio.io", "v1", "default", "gateways", gw)
    custom.patch_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        "default",
        "gateways",
        "cross-network-gateway",
        {"spec": {"servers": [{"port": {"number": 15443}}]}},
    )
    got = custom.get_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "gateways", "cross-network-gateway"
    )
    assert got["spec"]["servers"][0]["port"]["number"] == 15443
    dyn = DynamicClient(kube, cache_file="/dev/null")
    assert [
        g.metadata.name
        for g in dyn.resources.get(api_version="networking.istio.io/v1", kind="Gateway")
        .get(namespace="default")
        .items
    ] == ["cross-network-gateway"]
    ext.delete_custom_resource_definition("gateways.networking.istio.io")
    assert (
        status_of(
            lambda: custom.list_namespaced_custom_object("networking.istio.io", "v1", "default", "gateways")
        )
        == 404
    )


def test_concurrent_creates_get_distinct_resource_versions(kube: Client) -> None:
    api = core(kube)
    errors: list[Exception] = []

    def create(i: int) -> None:
        try:
            api.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = api.list_namespaced_config_map("default", label_selector="").items
    versions = [i.metadata.resource_version for i in items if i.metadata.name.startswith("c")]
    assert not errors
    assert len(set(versions)) == 20


def test_deleted_cluster_stops_answering(
    world: World, gke: container_v1.ClusterManagerClient, central: container_v1.Cluster, kube: Client
) -> None:
    import urllib3

    from tests.support import PARENT, wait_done

    assert core(kube).read_namespace("default").metadata.name == "default"
    wait_done(gke, PARENT, gke.delete_cluster(name=f"{PARENT}/clusters/central").name)
    kube.configuration.retries = 0
    with pytest.raises(urllib3.exceptions.HTTPError):
        core(kube).read_namespace("default", _request_timeout=2)


def test_server_side_apply_conflicts_with_another_managers_fields_unless_forced(kube: Client) -> None:
    api = apps(kube)
    api.create_namespaced_deployment("default", deployment("mf", replicas=1), field_manager="kubectl-create")
    applied = {"apiVersion": "apps/v1", "kind": "Deployment", **deployment("mf", replicas=5)}
    client = DynamicClient(kube).resources.get(api_version="apps/v1", kind="Deployment")
    with pytest.raises(ApiException) as caught:
        client.server_side_apply(body=applied, name="mf", namespace="default", field_manager="ssa-x")
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.replicas'
    )
    assert api.read_namespaced_deployment("mf", "default").spec.replicas == 1
    client.server_side_apply(
        body=applied, name="mf", namespace="default", field_manager="ssa-x", force_conflicts=True
    )
    fields = {
        e.manager: e.fields_v1
        for e in api.read_namespaced_deployment("mf", "default").metadata.managed_fields
    }
    assert "f:replicas" in fields["ssa-x"]["f:spec"]
    assert "f:replicas" not in fields["kubectl-create"].get("f:spec", {})


def test_an_update_keeps_what_its_manager_owned_and_records_no_patch_directives(kube: Client) -> None:
    api = apps(kube)
    api.create_namespaced_deployment("default", deployment("mf", replicas=1), field_manager="patcher")
    patch = {
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "main"}],
                    "containers": [{"name": "main", "env": [{"name": "A", "value": "1"}]}],
                }
            },
        }
    }
    api.patch_namespaced_deployment("mf", "default", patch, field_manager="patcher")
    entry = next(
        e
        for e in api.read_namespaced_deployment("mf", "default").metadata.managed_fields
        if e.manager == "patcher"
    )
    text = str(entry.fields_v1)
    assert "$setElementOrder" not in text
    assert "f:selector" in entry.fields_v1["f:spec"]
    assert "f:replicas" in entry.fields_v1["f:spec"]
    assert "f:env" in text


def test_lists_come_in_pages_when_a_limit_is_asked(kube: Client) -> None:
    api = core(kube)
    for i in range(5):
        api.create_namespaced_config_map("default", {"metadata": {"name": f"cm{i}"}})
    first = api.list_namespaced_config_map("default", limit=2)
    assert len(first.items) == 2
    assert first.metadata.remaining_item_count == 4  # five of ours plus kube-root-ca.crt
    names = [str(c.metadata.name) for c in first.items]
    token = first.metadata._continue
    while token:
        page = api.list_namespaced_config_map("default", limit=2, _continue=token)
        names += [str(c.metadata.name) for c in page.items]
        token = page.metadata._continue
    assert sorted(names) == sorted([f"cm{i}" for i in range(5)] + ["kube-root-ca.crt"])
    assert status_of(lambda: api.list_namespaced_config_map("default", _continue="garbage")) == 400


def test_orphan_deletion_keeps_the_dependents_without_their_owner(kube: Client) -> None:
    api = apps(kube)
    api.create_namespaced_deployment("default", deployment("web", replicas=1))
    deadline = time.monotonic() + 10
    while not api.list_namespaced_replica_set("default").items and time.monotonic() < deadline:
        time.sleep(0.05)
    api.delete_namespaced_deployment("web", "default", propagation_policy="Orphan")
    sets = api.list_namespaced_replica_set("default").items
    assert len(sets) == 1
    assert not sets[0].metadata.owner_references
    assert len(core(kube).list_namespaced_pod("default").items) == 1


def test_a_crd_remembers_every_storage_version(kube: Client) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(kube)
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    versions = [
        {"name": "v1alpha1", "served": True, "storage": True, "schema": schema},
        {"name": "v1", "served": True, "storage": False, "schema": schema},
    ]
    spec = {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "things", "kind": "Thing"},
        "versions": versions,
    }
    ext.create_custom_resource_definition({"metadata": {"name": "things.example.com"}, "spec": spec})
    versions[0]["storage"], versions[1]["storage"] = False, True
    ext.patch_custom_resource_definition("things.example.com", {"spec": {"versions": versions}})
    assert ext.read_custom_resource_definition("things.example.com").status.stored_versions == [
        "v1alpha1",
        "v1",
    ]


def test_a_new_cluster_has_the_bootstrap_roles(kube: Client) -> None:
    rbac = kubernetes.client.RbacAuthorizationV1Api(kube)
    names = {r.metadata.name for r in rbac.list_cluster_role().items}
    assert {"cluster-admin", "admin", "edit", "view"} <= names
    binding = rbac.read_cluster_role_binding("cluster-admin")
    assert [s.name for s in binding.subjects] == ["system:masters"]


def test_load_balancer_addresses_are_loopback_and_distinct_across_clusters(
    world: World, gke: container_v1.ClusterManagerClient, kube: Client
) -> None:
    other = kube_client(world, running_cluster(gke, "west"))
    port = [{"name": "tls", "port": 15443}]
    for client in (kube, other):
        core(client).create_namespaced_service(
            "default", {"metadata": {"name": "gw"}, "spec": {"type": "LoadBalancer", "ports": port}}
        )
    addresses = []
    for client in (kube, other):
        deadline = time.monotonic() + 5
        while not core(client).read_namespaced_service("gw", "default").status.load_balancer.ingress:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        addresses.append(
            core(client).read_namespaced_service("gw", "default").status.load_balancer.ingress[0].ip
        )
    assert len(set(addresses)) == 2
    assert all(ipaddress.IPv4Address(a) in world.fleet.lb_pool for a in addresses)


def test_a_refused_pod_is_a_replica_failure_until_admission_lets_it_in(world: World, kube: Client) -> None:
    calls: list[str] = []

    def admit(cluster_id: str, pod: dict[str, Any]) -> str | None:
        calls.append(cluster_id)
        if len(calls) == 1:
            return 'Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io"'
        pod["spec"]["containers"].append({"name": "istio-proxy", "image": "proxyv2"})
        return None

    world.fleet.pod_admission = admit
    apps(kube).create_namespaced_deployment("default", deployment("web", replicas=1))
    deadline = time.monotonic() + 5
    failure = None
    while failure is None and time.monotonic() < deadline:
        sets = apps(kube).list_namespaced_replica_set("default").items
        conditions = (sets[0].status.conditions or []) if sets else []
        failure = next((c for c in conditions if c.type == "ReplicaFailure"), None)
        time.sleep(0.02)
    assert failure is not None
    assert (failure.reason, failure.message) == (
        "FailedCreate",
        'Internal error occurred: failed calling webhook "namespace.sidecar-injector.istio.io"',
    )
    deadline = time.monotonic() + 10
    while (apps(kube).read_namespaced_deployment("web", "default").status.ready_replicas or 0) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pods = core(kube).list_namespaced_pod("default", label_selector="app=web").items
    assert [c.name for c in pods[0].spec.containers] == ["main", "istio-proxy"]
    assert not apps(kube).list_namespaced_replica_set("default").items[0].status.conditions
