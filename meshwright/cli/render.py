"""What the commands print: a finished run's report (read as its model) or a mesh's status as text.

Pure: text in, text out, no echo and no I/O, so a report reads the same in every command. The
models are imported for their types only; the commands import them when a run is read, which keeps
`meshwright validate` and `plan` from loading them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshwright.models import MeshReport, SmokeReport, TeardownReport, UpgradeReport
    from meshwright.verify import VerifyReport

FINGERPRINT = 23  # characters of the root's fingerprint `up` shows


def mesh_up(report: MeshReport) -> str:
    """What `up` built: clusters, firewall, root, releases, gateways, kubeconfig, the verification."""
    p = report.provision
    lines = ["", f"mesh {p.mesh} is up on {p.target} ({p.project}) in {p.seconds:.1f}s"]
    lines += [
        f"  {c.name:<16} {c.location:<16} {c.status:<8} {c.endpoint:<22} pods {c.pod_cidr:<16} {c.timing.seconds:6.1f}s"
        for c in p.clusters
    ]
    lines.append(f"  firewall {p.firewall.name} {p.firewall.action}: {', '.join(p.firewall.source_ranges)}")
    lines.append(f"  root CA {report.root.fingerprint[:FINGERPRINT]}")
    releases = sorted({r.name for r in report.releases})
    lines.append(f"  Istio releases on every cluster: {', '.join(releases)}")
    lines += [f"  east-west gateway {cluster}: {address}" for cluster, address in report.gateways.items()]
    lines += _upgraded(report.upgrade)
    lines.append(f"  kubeconfig {p.kubeconfig} (contexts: {', '.join(c.name for c in p.clusters)})")
    lines += _verified(report.verification)
    lines += ["", f"  kubectl --kubeconfig {p.kubeconfig} --context {p.clusters[0].name} get namespaces"]
    return "\n".join(lines)


def _upgraded(upgrade: UpgradeReport | None) -> list[str]:
    if upgrade is None:
        return []
    phases = ", ".join(f"{t.step} {t.seconds:.1f}s" for t in upgrade.phases)
    return [f"  upgraded istiod revision {upgrade.old or 'unrevisioned'} -> {upgrade.new}: {phases}"]


def _verified(verification: VerifyReport | None) -> list[str]:
    if verification is None:
        return []
    roots = ", ".join(sorted(set(verification.roots.values())))
    lines = [f"  verified: control plane ok, roots {roots}"]
    traffic = verification.traffic
    if traffic and traffic.address:
        lines.append(
            f"  Bookinfo: http://{traffic.address}/productpage ({traffic.requests} requests checked)"
        )
    if verification.mtls is not None:
        lines.append("  " + verification.mtls.summary())
    return lines


def verification(report: VerifyReport) -> str:
    """What each primary's istiod sees of the other clusters, every cluster's root, and each link's
    verdict with the latency of the requests it served."""
    lines = []
    for table in report.tables:
        lines.append(f"{table.primary} sees:")
        lines += [f"  {cluster:<16} {seen}" for cluster, seen in table.clusters.items()]
    lines.append("roots: " + ", ".join(f"{c} {fp}" for c, fp in report.roots.items()))
    if report.mtls is not None:
        lines.append(report.mtls.summary())
    return "\n".join(lines + links(report) + drills(report))


def drills(report: VerifyReport) -> list[str]:
    """One line per drill: what it took away, the requests meanwhile, how long until it was back."""
    lines = []
    for d in report.drills:
        back = f", back after {d.back_seconds:.1f}s" if d.back_seconds is not None else ""
        served = ", ".join(f"{c} {sum(v.values())}" for c, v in sorted(d.served.items())) or "-"
        lines.append(
            f"drill {d.drill} ({d.subject}): {'ok' if d.ok else 'FAILED'}; "
            f"{d.requests - d.failed}/{d.requests} requests ok (served: {served}){back}"
        )
        lines += [f"  {p}" for p in d.problems]
    return lines


LINK_COLUMNS = ("link", "verdict", "synced", "root", "served", "p50 ms", "p95 ms", "what broke")


def links(report: VerifyReport) -> list[str]:
    """The links as a table: one row per (primary, cluster), what broke at the end of a broken one."""
    if not report.links:
        return []
    rows = [LINK_COLUMNS] + [
        (
            f"{k.primary} -> {k.cluster}",
            "ok" if k.ok else "BROKEN",
            k.synced or "-",
            {True: "same", False: "differs", None: "-"}[k.same_root],
            _cell(k.served),
            _cell(k.latency_ms.p50),
            _cell(k.latency_ms.p95),
            "" if k.ok else f"{k.layer}: {k.reason}",
        )
        for k in report.links
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LINK_COLUMNS) - 1)]
    return ["links:"] + [
        (
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        ).rstrip()
        for row in rows
    ]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def smoke_test(report: SmokeReport) -> str:
    verdict = "passed" if report.passed else "failed"
    said = f"mesh {report.mesh}: smoke test {verdict}; report artifact {report.report_key}"
    up = report.upgrade
    if up is None:
        return said
    return (
        f"{said}\n  upgrade {up.from_version} -> {up.to_version}: {up.failed} of {up.requests} requests"
        " through the ingress failed"
    )


def teardown(report: TeardownReport) -> str:
    verb = "deleted" if report.waited else "deleting"
    clusters, balancers = report.deleted_clusters, report.load_balancers
    first = f"; {len(balancers)} gateway load balancer(s) deleted first" if balancers else ""
    root = f"; root CA {report.root}" if report.root else ""
    return (
        f"mesh {report.mesh}: {verb} {len(clusters)} cluster(s) {', '.join(clusters)};"
        f" firewall rule {report.firewall}{first}{root}"
    )


def status(info: dict[str, Any]) -> str:
    """What exists of a mesh, as `meshwright.status.mesh_status` found it (plain data, not a run's)."""
    lines = [f"mesh {info['mesh']} on {info['target']} ({info['project']}):"]
    for c in info["clusters"]:
        lines.append(
            f"  {c['name']:<16} {c['location']:<16} {c['status']:<12} {c['endpoint'] or '-':<22} pods {c['pod_cidr'] or '-'}"
        )
        lines += _releases(c.get("releases"))
    lines += [f"  {name:<16} (absent)" for name in info["missing"]]
    fw = info["firewall"]
    lines.append(f"  firewall {fw['name']}: {', '.join(fw['source_ranges'])}" if fw else "  firewall: absent")
    return "\n".join(lines)


def _releases(releases: list[dict[str, Any]] | str | None) -> list[str]:
    """A cluster's Helm releases, or why they are unknown."""
    if isinstance(releases, str):
        return [f"    {releases}"]
    return [
        f"    {r.get('name', '?'):<24} {r.get('chart', '?'):<20} rev {r.get('revision', '?'):<4} {r.get('status', '?')}"
        for r in releases or []
    ]
