"""The VPC firewall rule that lets the pod ranges of all clusters reach each other, and the load
balancers GKE makes for the gateways' Services (waited for at teardown, reaped when left over).

Firewall rules carry no labels, so the mesh and the expiry go into the description, where the
reaper reads them back: `meshwright mesh=<name> expires=<unix time>`.
"""

from __future__ import annotations

import json
import re
import time

from google.cloud import compute_v1
from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE

from meshwright import clients, naming
from meshwright.clients import MeshwrightTarget
from meshwright.errors import Conflict, NotFound, PermanentError, TransientError
from meshwright.models import FirewallResult, LoadBalancerRef, NetworkCheck
from meshwright.spec import MeshSpec
from meshwright.status import custom_mode, get_firewall, get_network, list_clusters, mesh_firewalls
from tasks.common import RETRYING, Clock

_DESCRIPTION = re.compile(r"meshwright mesh=(?P<mesh>\S+)(?: expires=(?P<expires>\d+))?")


def description(mesh: str, expires: int | None) -> str:
    return f"meshwright mesh={mesh}" + (f" expires={expires}" if expires is not None else "")


def parse_description(text: str) -> tuple[str, int | None] | None:
    match = _DESCRIPTION.search(text or "")
    if not match:
        return None
    return match["mesh"], int(match["expires"]) if match["expires"] else None


def desired_rules(spec: MeshSpec, pod_cidrs: list[str], *, expires: int | None) -> list[compute_v1.Firewall]:
    """The mesh's rules: its sorted pod ranges, at most FIREWALL_SOURCE_RANGES_MAX to a rule."""
    ranges, most = sorted(set(pod_cidrs)), naming.FIREWALL_SOURCE_RANGES_MAX
    chunks = [ranges[i : i + most] for i in range(0, len(ranges), most)] or [[]]
    if len(chunks) > naming.FIREWALL_RULES_MAX:
        raise PermanentError(
            f"{len(ranges)} pod ranges need {len(chunks)} firewall rules of {most}; a mesh has at most "
            f"{naming.FIREWALL_RULES_MAX}",
            step="ensure_firewall",
        )
    return [_rule(spec, naming.firewall_name(spec.name, i), chunk, expires) for i, chunk in enumerate(chunks)]


def _rule(spec: MeshSpec, name: str, sources: list[str], expires: int | None) -> compute_v1.Firewall:
    return compute_v1.Firewall(
        name=name,
        description=description(spec.name, expires),
        network=f"global/networks/{spec.network}",
        direction="INGRESS",
        priority=naming.FIREWALL_PRIORITY,
        source_ranges=sources,
        target_tags=[naming.node_tag(spec.name)],
        allowed=[compute_v1.Allowed(I_p_protocol=p) for p in naming.FIREWALL_PROTOCOLS],
    )


def _same(current: compute_v1.Firewall, want: compute_v1.Firewall) -> bool:
    return (
        sorted(current.source_ranges) == list(want.source_ranges)
        and list(current.target_tags) == list(want.target_tags)
        and sorted(a.I_p_protocol for a in current.allowed) == sorted(naming.FIREWALL_PROTOCOLS)
        and (current.priority, current.direction, current.description)
        == (want.priority, want.direction, want.description)
        and current.network.rsplit("/", 1)[-1] == want.network.rsplit("/", 1)[-1]
    )


def _wait(cloud: clients.Cloud, project: str, op: compute_v1.Operation, *, step: str) -> None:
    # Wait with our own GlobalOperationsClient: the insert's ExtendedOperation poller ignores
    # client_options and would ask compute.googleapis.com.
    with cloud.call(cluster=None, step=step):
        done = cloud.operations.wait(project=project, operation=op.name)
    if done.http_error_status_code or done.error.errors:
        message = "; ".join(e.message for e in done.error.errors) or done.http_error_message
        raise PermanentError(f"firewall operation failed: {message}", step=step)


def _converge(
    cloud: clients.Cloud, project: str, current: compute_v1.Firewall | None, want: compute_v1.Firewall
) -> str:
    """Insert or patch the rule until it is `want`; what was done."""
    if current is not None and _same(current, want):
        return "unchanged"
    with cloud.call(cluster=None, step="ensure_firewall"):
        if current is None:
            op = cloud.firewalls.insert_unary(project=project, firewall_resource=want)
        else:
            op = cloud.firewalls.patch_unary(project=project, firewall=want.name, firewall_resource=want)
    _wait(cloud, project, op, step="ensure_firewall")
    return "created" if current is None else "patched"


def _ensure_rules(
    spec: MeshSpec, pod_cidrs: list[str], *, target: MeshwrightTarget, expires: int | None
) -> tuple[str, list[compute_v1.Firewall]]:
    """Look, then insert or patch each rule and delete the mesh's rules no longer needed; what was
    done and the rules as they should be."""
    current = {r.name: r for r in mesh_firewalls(target, spec.project, spec.name, step="ensure_firewall")}
    wanted = desired_rules(spec, pod_cidrs, expires=expires)  # the mesh's own (flows/provision.preflight)
    cloud = clients.cloud(target)
    actions = {_converge(cloud, spec.project, current.get(w.name), w) for w in wanted}
    for extra in sorted(set(current) - {w.name for w in wanted}):
        actions.add("patched" if _delete_rule(cloud, spec.project, extra) == "deleted" else "unchanged")
    return (actions.pop() if len(actions) == 1 else "patched"), wanted


@task(persist_result=True, cache_policy=(INPUTS - "expires") + TASK_SOURCE + RUN_ID, **RETRYING)
def ensure_firewall(
    spec: MeshSpec, pod_cidrs: list[str], *, target: MeshwrightTarget, expires: int | None
) -> FirewallResult:
    """Create the mesh's firewall rule (several, past Compute's source ranges per rule), or patch
    existing ones to what they should be.

    Args:
        spec: the validated mesh spec.
        pod_cidrs: the pod ranges read from the running clusters.
        target: where the mesh is built.
        expires: unix time for the reaper, when the spec has a ttl.
    """
    clock, log = Clock("ensure_firewall"), get_run_logger()
    try:
        action, wanted = _ensure_rules(spec, pod_cidrs, target=target, expires=expires)
    except Conflict:  # another run inserted one between our look and our insert: adopt what it made
        action, wanted = _ensure_rules(spec, pod_cidrs, target=target, expires=expires)
        action = "adopted" if action == "unchanged" else action
    sources = [s for w in wanted for s in w.source_ranges]
    names = [w.name for w in wanted]
    log.info("firewall rule(s) %s %s (sources %s)", ", ".join(names), action, ", ".join(sources))
    return FirewallResult(
        name=names[0],
        rules=names,
        network=spec.network,
        source_ranges=sources,
        action=action,
        timing=clock.done(),
    )


def _delete_rule(cloud: clients.Cloud, project: str, name: str) -> str:
    """Delete one rule; gone already counts as deleted (`absent`)."""
    try:
        with cloud.call(cluster=None, step="delete_firewall"):
            op = cloud.firewalls.delete_unary(project=project, firewall=name)
    except NotFound:
        return "absent"
    _wait(cloud, project, op, step="delete_firewall")
    return "deleted"


@task(cache_policy=NO_CACHE, **RETRYING)
def delete_firewall(target: MeshwrightTarget, project: str, name: str) -> str:
    """Delete a firewall rule; one that is already gone counts as deleted. Returns what happened."""
    if get_firewall(target, project, name, step="delete_firewall") is None:
        return "absent"
    return _delete_rule(clients.cloud(target), project, name)


@task(cache_policy=NO_CACHE, **RETRYING)
def delete_mesh_firewalls(target: MeshwrightTarget, project: str, mesh: str) -> str:
    """Delete every firewall rule of the mesh: `deleted` when there was one, else `absent`."""
    cloud, rules = clients.cloud(target), mesh_firewalls(target, project, mesh, step="delete_firewall")
    done = [_delete_rule(cloud, project, r.name) for r in rules]
    return "deleted" if "deleted" in done else "absent"


@task(cache_policy=NO_CACHE, **RETRYING)
def find_expired_firewalls(target: MeshwrightTarget, project: str, *, now: float) -> list[str]:
    """meshwright firewall rules whose expiry (in their description) has passed."""
    cloud = clients.cloud(target)
    with cloud.call(cluster=None, step="find_expired_firewalls"):
        rules = list(cloud.firewalls.list(project=project))
    expired = []
    for rule in rules:
        parsed = parse_description(rule.description)
        if rule.name.startswith("meshwright-") and parsed and parsed[1] is not None and parsed[1] <= now:
            expired.append(rule.name)
    return expired


GKE_MADE = "(made by GKE)"


@task(cache_policy=NO_CACHE, **RETRYING)
def check_network(spec: MeshSpec, *, target: MeshwrightTarget) -> NetworkCheck:
    """Preflight: the VPC network exists, its mode, and where each cluster's nodes will go.

    On a custom mode network GKE refuses a cluster that names no subnetwork ("Network ... uses manual
    subnet mode and requires specifying a subnetwork"), so meshwright asks it to make one per cluster
    that names none; a subnetwork a cluster names must exist in its region.
    """
    network = get_network(target, spec.project, spec.network, step="check_network")
    if network is None:
        raise PermanentError(
            f"network {spec.network!r} does not exist in project {spec.project}; create it or set `network:` in the spec",
            step="check_network",
        )
    custom = custom_mode(network)
    for c in spec.clusters:
        if c.subnetwork:
            _check_subnetwork(spec, c.name, c.region, c.subnetwork, target=target)
    default = GKE_MADE if custom else "the region's auto mode subnet"
    subnets = {c.name: c.subnetwork or default for c in spec.clusters}
    check = NetworkCheck(name=spec.network, mode="custom" if custom else "auto", subnets=subnets)
    get_run_logger().info("%s", network_line(check))
    return check


def network_line(check: NetworkCheck) -> str:
    """What preflight tells about the network: its mode and what each cluster gets."""
    made = [name for name, subnet in check.subnets.items() if subnet == GKE_MADE]
    named = [f"{name} in {subnet}" for name, subnet in check.subnets.items() if subnet != GKE_MADE]
    if check.mode == "custom":
        parts = [f"GKE will make a subnetwork for {', '.join(made)}"] if made else []
        parts += [", ".join(named)] if named else []
        return f"network {check.name} is in custom mode: {'; '.join(parts)}"
    return f"network {check.name} is in auto mode: " + ", ".join(
        f"{name} in {subnet}" for name, subnet in check.subnets.items()
    )


def _check_subnetwork(
    spec: MeshSpec, cluster: str, region: str, subnetwork: str, *, target: MeshwrightTarget
) -> None:
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=cluster, step="check_network"):
            found = cloud.subnetworks.get(project=spec.project, region=region, subnetwork=subnetwork)
    except NotFound:
        found = None
    if found is None or found.network.rsplit("/", 1)[-1] != spec.network:
        raise PermanentError(
            f"subnetwork {subnetwork!r} of network {spec.network!r} does not exist in {region}; "
            "create it there or omit `subnetwork:`",
            cluster=cluster,
            step="check_network",
        )


# -- the load balancers GKE's service controller makes (issue 22.6) ---------------------------
# GKE only "attempts" to delete them with their cluster and recommends deleting LoadBalancer
# Services first (GKE's "Deleting a cluster"): teardown uninstalls the gateways and waits here for
# their forwarding rules to go; the reaper deletes what a cluster deleted first left behind.

LB_STEP = "load_balancers"
# GKE's own node tag, `gke-<cluster>-<hash>-node` (cloud.google.com/kubernetes-engine/docs/concepts/
# firewall-rules): the target of a `k8s-fw-` rule, and so the cluster the load balancer served.
_NODE_TAG = re.compile(r"^gke-(?P<cluster>[a-z](?:[-a-z0-9]*[a-z0-9])?)-[0-9a-f]{8}-node$")


def forwarding_rule_exists(target: MeshwrightTarget, project: str, region: str, name: str) -> bool:
    cloud = clients.cloud(target)
    try:
        with cloud.call(cluster=None, step=LB_STEP):
            cloud.forwarding_rules.get(project=project, region=region, forwarding_rule=name)
    except NotFound:
        return False
    return True


def wait_forwarding_rules_gone(
    target: MeshwrightTarget, project: str, region: str, names: list[str], *, cluster: str
) -> None:
    """Return once none of the forwarding rules `names` is left in `region`."""
    cloud = clients.cloud(target)
    deadline, left = time.monotonic() + cloud.waits.address, list(names)
    while left:
        left = [n for n in left if forwarding_rule_exists(target, project, region, n)]
        if left and time.monotonic() > deadline:
            raise TransientError(
                f"GKE has not deleted the forwarding rule(s) {', '.join(left)} of the gateways after "
                f"{cloud.waits.address:.0f}s; `gcloud compute forwarding-rules list` shows them",
                cluster=cluster,
                step="uninstall_gateways",
            )
        time.sleep(cloud.poll_seconds if left else 0)


def _service(description: str) -> str:
    try:
        found = json.loads(description or "{}")
    except ValueError:
        return ""
    return str(found.get(naming.LB_SERVICE_KEY, "")) if isinstance(found, dict) else ""


def _served_cluster(rule: compute_v1.Firewall | None) -> str | None:
    tags = [m["cluster"] for m in map(_NODE_TAG.match, rule.target_tags if rule else []) if m]
    return tags[0] if len(tags) == 1 else None


def _gateway_services() -> set[str]:
    return {f"{naming.ISTIO_NAMESPACE}/{release}" for release in naming.GATEWAY_RELEASES}


@task(cache_policy=NO_CACHE, **RETRYING)
def find_orphaned_load_balancers(target: MeshwrightTarget, project: str) -> list[LoadBalancerRef]:
    """The load balancers of meshwright's gateway Services whose cluster no longer exists.

    A load balancer is tied to its cluster by the GKE node tag its `k8s-fw-` rule targets; it is
    meshwright's when it serves `istio-system/<a gateway release>`. One whose forwarding rule is
    already gone is found by its `k8s-fw-` rule alone.
    """
    cloud = clients.cloud(target)
    with cloud.call(cluster=None, step="find_orphaned_load_balancers"):
        regions = {
            rule.name: region.rsplit("/", 1)[-1]
            for region, scoped in cloud.forwarding_rules.aggregated_list(project=project)
            for rule in scoped.forwarding_rules
        }
        rules = {r.name: r for r in cloud.firewalls.list(project=project)}
    alive = {c.name for c in list_clusters(target, project, step="find_orphaned_load_balancers")}
    prefix = naming.LB_FIREWALL_PREFIX
    names = set(regions) | {n.removeprefix(prefix) for n in rules if n.startswith(prefix)}
    found = []
    for name in sorted(names):
        rule = rules.get(naming.lb_firewall_name(name))
        cluster, service = _served_cluster(rule), _service(rule.description if rule else "")
        if cluster and cluster not in alive and service in _gateway_services():
            found.append(
                LoadBalancerRef(name=name, region=regions.get(name), service=service, cluster=cluster)
            )
    return found


@task(task_run_name="delete_load_balancer[{lb.name}]", cache_policy=NO_CACHE, **RETRYING)
def delete_load_balancer(target: MeshwrightTarget, project: str, lb: LoadBalancerRef) -> str:
    """Delete a left-over load balancer's forwarding rule, then its `k8s-fw-` rule; gone counts as deleted."""
    cloud = clients.cloud(target)
    if lb.region and forwarding_rule_exists(target, project, lb.region, lb.name):
        try:
            with cloud.call(cluster=lb.cluster, step="delete_load_balancer"):
                op = cloud.forwarding_rules.delete_unary(
                    project=project, region=lb.region, forwarding_rule=lb.name
                )
                done = cloud.region_operations.wait(project=project, region=lb.region, operation=op.name)
        except NotFound:
            done = None
        if done is not None and (done.http_error_status_code or done.error.errors):
            message = "; ".join(e.message for e in done.error.errors) or done.http_error_message
            raise PermanentError(f"forwarding rule {lb.name}: {message}", step="delete_load_balancer")
    firewall = delete_firewall.fn(target, project, naming.lb_firewall_name(lb.name))
    get_run_logger().info(
        "deleted load balancer %s of %s (cluster %s, gone)", lb.name, lb.service, lb.cluster
    )
    return firewall
