"""The installed kubectl against sandbox clusters, through `meshwright sandbox kubeconfig`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Protocol

import pytest
import yaml
from google.cloud import container_v1

from meshwright.sandbox import daemon
from meshwright.sandbox.world import World
from tests.support import register, running_cluster

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed on this machine"
)

MANIFESTS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    additionalPrinterColumns: [{name: Size, type: string, jsonPath: .spec.size}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: a}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: main, image: "nginx:1"}]}
"""


class Kubectl(Protocol):
    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


def write_kubeconfig(world: World, path: Path) -> None:
    path.write_text(yaml.safe_dump(daemon.kubeconfig(world.layout.root)))


def kubectl_env(tmp_path: Path) -> dict[str, str]:
    """kubectl's environment: the test's kubeconfig, caches and home in its own directory."""
    return {
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "KUBECACHEDIR": str(tmp_path / "cache"),
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }


@pytest.fixture
def kubectl(world: World, central: container_v1.Cluster, tmp_path: Path) -> Kubectl:
    register(world)
    write_kubeconfig(world, tmp_path / "kubeconfig")
    env = kubectl_env(tmp_path)

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", "--context", "central", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run


def test_apply_get_label_rollout_delete(kubectl: Kubectl) -> None:
    run = kubectl
    out = run("apply", "-f", "-", stdin=MANIFESTS).stdout
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created" in out
    assert "deployment.apps/web created" in out
    assert (
        "successfully rolled out"
        in run("rollout", "status", "deployment/web", "-n", "shop", "--timeout=30s").stdout
    )
    assert "2/2" in run("get", "deploy", "web", "-n", "shop").stdout
    everything = run("get", "all", "-n", "shop").stdout
    assert "deployment.apps/web" in everything
    assert "replicaset.apps/web-" in everything
    assert run("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    pods = run("get", "pods", "-A", "-l", "app=web", "-o", "name").stdout.split()
    assert len(pods) == 2
    run(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: shop}\nspec: {size: big}\n",
    )
    assert "big" in run("get", "wd", "-n", "shop").stdout
    changed = MANIFESTS.replace("replicas: 2", "replicas: 3")
    assert "deployment.apps/web configured" in run("apply", "-f", "-", stdin=changed).stdout
    assert "serverside-applied" in run("apply", "--server-side", "-f", "-", stdin=MANIFESTS).stdout
    assert run("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    run("label", "ns", "shop", "topology.istio.io/network=net1")
    assert (
        run("get", "ns", "-l", "topology.istio.io/network in (net1,net2)", "-o", "name").stdout.strip()
        == "namespace/shop"
    )
    run("delete", "ns", "shop")
    assert "NotFound" in run("get", "ns", "shop", check=False).stderr


def test_kubectl_without_valid_token_is_refused(kubectl: Kubectl, tmp_path: Path) -> None:
    run = kubectl
    config = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    config["users"][0]["user"]["token"] = "forged"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    result = run("get", "ns", check=False)
    assert result.returncode != 0
    assert "Unauthorized" in result.stderr or "must be logged in" in result.stderr


def test_token_of_another_cluster_is_refused(
    world: World, gke: container_v1.ClusterManagerClient, kubectl: Kubectl, tmp_path: Path
) -> None:
    import kubernetes.client

    from tests.support import kube_client

    west = running_cluster(gke, "west")
    west_core = kubernetes.client.CoreV1Api(kube_client(world, west))
    west_core.create_namespaced_service_account("default", {"metadata": {"name": "r"}})
    west_rbac = kubernetes.client.RbacAuthorizationV1Api(west_core.api_client)
    west_rbac.create_cluster_role(
        {
            "metadata": {"name": "ns-reader"},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}],
        }
    )
    west_rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "r-reads-namespaces"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ns-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "r", "namespace": "default"}],
        }
    )
    token = west_core.create_namespaced_service_account_token(
        "r", "default", {"spec": {"expirationSeconds": 3600}}
    ).status.token
    write_kubeconfig(world, tmp_path / "kubeconfig")
    config = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    for user in config["users"]:
        user["user"]["token"] = token
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    refused = kubectl("get", "ns", check=False)
    assert refused.returncode != 0
    assert "You must be logged in to the server" in refused.stderr  # 401, not 403
    west_ok = subprocess.run(
        ["kubectl", "--context", "west", "get", "ns", "-o", "name"],
        capture_output=True,
        text=True,
        env={
            "KUBECONFIG": str(tmp_path / "kubeconfig"),
            "KUBECACHEDIR": str(tmp_path / "c2"),
            "HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin",
        },
        timeout=60,
    )
    assert "namespace/default" in west_ok.stdout


def test_kubectl_create_generators_send_protobuf_and_work(kubectl: Kubectl) -> None:
    run = kubectl
    run("create", "namespace", "gen")
    run("create", "secret", "generic", "s1", "-n", "gen", "--from-literal=k=v")
    run("create", "configmap", "c1", "-n", "gen", "--from-literal=a=b")
    run("create", "serviceaccount", "reader", "-n", "gen")
    run("create", "deployment", "web", "-n", "gen", "--image=nginx:1", "--port=8080", "--replicas=2")
    run("create", "service", "clusterip", "web", "-n", "gen", "--tcp=80:8080")
    assert run("get", "secret", "s1", "-n", "gen", "-o", "jsonpath={.data.k}").stdout == "dg=="
    assert run("get", "cm", "c1", "-n", "gen", "-o", "jsonpath={.data.a}").stdout == "b"
    assert (
        run(
            "get",
            "deploy",
            "web",
            "-n",
            "gen",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}",
        ).stdout
        == "8080"
    )
    assert (
        run("get", "svc", "web", "-n", "gen", "-o", "jsonpath={.spec.ports[0].targetPort}").stdout == "8080"
    )
    assert (
        "successfully rolled out"
        in run("rollout", "status", "deploy/web", "-n", "gen", "--timeout=30s").stdout
    )
    assert run("create", "token", "reader", "-n", "gen").stdout.count(".") == 2


def test_get_watch_prints_table_rows(kubectl: Kubectl, tmp_path: Path) -> None:
    with subprocess.Popen(
        ["kubectl", "--context", "central", "get", "ns", "-w", "--request-timeout=4s"],
        stdout=subprocess.PIPE,
        text=True,
        env=kubectl_env(tmp_path),
    ) as watcher:
        assert watcher.stdout is not None
        # The table's header comes with the list; the watch starts from the list's resourceVersion,
        # so a namespace created once the header is out is seen.
        header = watcher.stdout.readline()
        kubectl("create", "namespace", "watched")
        rest, _ = watcher.communicate(timeout=30)
    rows = [line.split() for line in (header + rest).splitlines()]
    assert rows[0] == ["NAME", "STATUS", "AGE"]
    assert ["watched", "Active"] in [row[:2] for row in rows]


RBAC_MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-reads-pods, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: ServiceAccount, name: app, namespace: team}]
"""


def test_kubectl_as_a_service_account_is_held_to_its_role(kubectl: Kubectl, tmp_path: Path) -> None:
    run = kubectl
    run("apply", "-f", "-", stdin=RBAC_MANIFESTS)
    token = run("create", "token", "app", "-n", "team").stdout.strip()
    config = yaml.safe_load((tmp_path / "kubeconfig").read_text())
    for user in config["users"]:
        user["user"]["token"] = token
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    assert "No resources found" in run("get", "pods", "-n", "team").stderr
    # kubectl's self review goes as protobuf; the answer is the authorizer's.
    assert run("auth", "can-i", "list", "pods", "-n", "team").stdout.strip() == "yes"
    assert run("auth", "can-i", "delete", "pods", "-n", "team", check=False).stdout.strip() == "no"
    assert run("auth", "can-i", "list", "pods", "-n", "default", check=False).stdout.strip() == "no"
    refused = run("get", "secrets", "-n", "istio-system", check=False)
    assert refused.returncode != 0
    assert (
        'Error from server (Forbidden): secrets is forbidden: User "system:serviceaccount:team:app" '
        'cannot list resource "secrets" in API group "" in the namespace "istio-system"'
    ) in refused.stderr


LIST = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a, namespace: default}
  data: {k: v}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: listed, namespace: default}
  spec:
    selector: {matchLabels: {app: listed}}
    template:
      metadata: {labels: {app: listed}}
      spec: {containers: [{name: main, image: "nginx:1"}]}
"""


def test_apply_of_a_kind_list_applies_each_item(kubectl: Kubectl) -> None:
    out = kubectl("apply", "-f", "-", stdin=LIST).stdout  # kubectl validates a List with /openapi/v2
    assert out.split("\n")[:2] == ["configmap/a created", "deployment.apps/listed created"]
    assert "configmap/a configured" in kubectl("apply", "-f", "-", stdin=LIST.replace("k: v", "k: w")).stdout
    assert kubectl("get", "cm", "a", "-o", "jsonpath={.data.k}").stdout == "w"


def test_kubectl_scale_patches_the_scale_subresource(kubectl: Kubectl) -> None:
    run = kubectl
    run("apply", "-f", "-", stdin=MANIFESTS)
    # kubectl scale sends a merge patch to deployments/web/scale (kubectl pkg/scale)
    assert "deployment.apps/web scaled" in run("scale", "deployment/web", "-n", "shop", "--replicas=0").stdout
    assert run("get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.spec.replicas}").stdout == "0"
