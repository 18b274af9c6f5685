"""The `meshwright` command line: validate, plan, sandbox, up, down, status.

Every command prints one clear line per problem and exits non-zero on failure; no command
prints a token, a key or a kubeconfig with credentials. Start-up stays cheap: Google's clients,
Prefect and the flows load only in the commands that use them, the emulator never (the sandbox
daemon is a process of its own).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from meshwright import kubeconfig as kc
from meshwright import naming
from meshwright.errors import MeshwrightError, SpecInvalid
from meshwright.naming import MESH_LABEL
from meshwright.plan import build_plan, render_text
from meshwright.sandbox.contract import STATE_ENV, state_dir
from meshwright.spec import MeshSpec, Target, load_spec

if TYPE_CHECKING:
    from meshwright.clients import MeshwrightTarget

app = typer.Typer(
    name="meshwright",
    help="Stand up a multicluster Istio mesh on GKE (or the local sandbox), prove it works, tear it down.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

from meshwright import sandbox_cli  # noqa: E402

app.add_typer(sandbox_cli.app, name="sandbox")

SpecArg = Annotated[Path, typer.Argument(help="Mesh spec (YAML).", show_default=False)]
EXIT_INVALID = 2
EXIT_FAILED = 1


def fail(error: MeshwrightError | str, *, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)


def read_spec(path: Path) -> MeshSpec:
    try:
        return load_spec(path)
    except SpecInvalid as e:
        fail(e, code=EXIT_INVALID)


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a mesh spec without touching any network; list every problem at once."""
    typer.echo(f"ok: {read_spec(spec).summary()}")


@app.command()
def plan(
    spec: SpecArg, as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False
) -> None:
    """Show what `up` would do for SPEC: stages in order, parallel steps, every resource."""
    the_plan = build_plan(read_spec(spec))
    typer.echo(json.dumps(the_plan.model_dump(), indent=2) if as_json else render_text(the_plan))


PROJECT = Path(__file__).resolve().parents[1]  # where flows/ lives: the runner imports from here

StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help=f"Sandbox state directory (default: ${STATE_ENV}, else .meshwright/sandbox).",
        show_default=False,
    ),
]
ConnectionOpt = Annotated[
    str | None,
    typer.Option(
        "--connection",
        help="Name of a saved MeshwrightTarget block (default: the spec's target in its usual place).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
KubeconfigOpt = Annotated[Path | None, typer.Option(help="Where to write the kubeconfig.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite a kubeconfig that holds another mesh's contexts.")
]


def _connection(spec: MeshSpec, state: Path | None, connection: str | None) -> str | dict[str, Any] | None:
    """The flows' `connection` parameter: a saved block's name, or (sandbox) the block's fields with
    the state directory made absolute, after starting that sandbox. GKE: None, the runner's default."""
    if connection:
        return connection
    if spec.target is not Target.SANDBOX:
        return None
    info = sandbox_cli.ensure_started(state_dir(state))
    typer.echo(f"sandbox: GCP at {info['gcp']} (state {info['state']})", err=True)
    return {"target": Target.SANDBOX.value, "sandbox_state": str(state_dir(state))}


def _target(spec: MeshSpec, state: Path | None, connection: str | None) -> MeshwrightTarget:
    """The block `status` reads through, in this process (a saved one, or the spec's target)."""
    from meshwright.clients import MeshwrightTarget, resolve_target

    given = _connection(spec, state, connection)
    try:
        return resolve_target(spec.target, MeshwrightTarget(**given) if isinstance(given, dict) else given)
    except MeshwrightError as e:
        fail(e)


def _check_kubeconfig(spec: MeshSpec, path: Path | None, *, force: bool) -> Path:
    """Refuse a kubeconfig of another mesh before anything is built (the flow checks again).
    Returns the path made absolute: the runner's working directory is not the caller's."""
    where = (path or naming.default_kubeconfig(spec.name)).expanduser().resolve()
    owner = kc.Owner(spec.name, spec.project, spec.target.value)
    reason = None if force else kc.why_not_overwrite(where, owner)
    if reason:
        fail(f"{reason}; choose another --kubeconfig path, or pass --force to overwrite it")
    return where


def _run(flow: str, mesh: MeshSpec, spec: Path, *, hint: str = "", **params: Any) -> Any:
    """Run `flow`'s served deployment, stream its logs to stderr, return its result; on failure one
    `error:` paragraph (and the hint) and its exit code (1, or 130 when cancelled with Ctrl-C)."""
    from meshwright import runs, server

    root = server.home()
    try:
        api = server.api(root)
        server.ensure_runner(root, api, PROJECT)
        with runs.connect(api.url) as client:
            spec_param = runs.spec_parameter(client, f"{flow}/{server.RUNNER_DEPLOYMENT}", mesh, spec)
            run = runs.create_run(
                client, f"{flow}/{server.RUNNER_DEPLOYMENT}", {"spec": spec_param, **params}
            )
            typer.echo(f"flow run {run['name']}: {api.ui}/runs/flow-run/{run['id']}", err=True)
            outcome = runs.follow(client, run["id"], echo=lambda line: typer.echo(line, err=True))
    except MeshwrightError as e:
        fail(e)
    typer.echo(
        f"flow run {run['name']} {outcome.state.lower()}: {api.ui}/runs/flow-run/{run['id']}", err=True
    )
    if outcome.exit_code == runs.EXIT_CANCELLED:
        fail(f"{flow}: the run was cancelled", code=runs.EXIT_CANCELLED)
    if outcome.exit_code:
        code = EXIT_INVALID if "SpecInvalid" in outcome.message else EXIT_FAILED
        fail(f"{outcome.problem}{hint}", code=code)
    return outcome.result


@app.command()
def up(
    spec: SpecArg,
    kubeconfig: KubeconfigOpt = None,
    as_json: JsonOpt = False,
    state: StateOpt = None,
    force: ForceOpt = False,
    connection: ConnectionOpt = None,
) -> None:
    """Build the mesh of SPEC: clusters in parallel, firewall, kubeconfig, shared root CA, Istio on
    every cluster (and what else `up_mesh` composes: remote secrets, Bookinfo, verification).

    Runs the served deployment `up-mesh/meshwright` and follows its logs; the run is in the Prefect UI.

    Args:
        spec: the mesh spec (YAML).
        kubeconfig: where to write the kubeconfig (default `.meshwright/<mesh>/kubeconfig`).
        as_json: print the report as JSON.
        state: the sandbox's state directory (sandbox target only).
        force: overwrite a kubeconfig that meshwright did not write for this mesh.
        connection: the name of a saved MeshwrightTarget block to build with.
    """
    mesh = read_spec(spec)
    where = _check_kubeconfig(mesh, kubeconfig, force=force)
    hint = (
        f"\n  What was created so far stays (labelled {MESH_LABEL}={mesh.name}): `meshwright status {spec}` shows it,"
        f"\n  `meshwright up {spec}` resumes where this stopped (or Retry the run in the UI),"
        f" `meshwright down {spec}` removes it."
    )
    params: dict[str, Any] = {
        "kubeconfig": str(where),
        "connection": _connection(mesh, state, connection),
        "force": force,
    }
    report = _run("up-mesh", mesh, spec, hint=hint, **params)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif report:
        _print_up(report)


def _print_up(report: dict[str, Any]) -> None:
    p = report.get("provision", report)
    seconds = p["finished"] - p["started"]
    typer.echo(f"\nmesh {p['mesh']} is up on {p['target']} ({p['project']}) in {seconds:.1f}s")
    for c in p["clusters"]:
        took = c["timing"]["finished"] - c["timing"]["started"]
        typer.echo(
            f"  {c['name']:<16} {c['location']:<16} {c['status']:<8} {c['endpoint']:<22} pods {c['pod_cidr']:<16} {took:6.1f}s"
        )
    fw = p["firewall"]
    typer.echo(f"  firewall {fw['name']} {fw['action']}: {', '.join(fw['source_ranges'])}")
    if "root" in report:
        typer.echo(f"  root CA {report['root'].get('fingerprint', '')[:23]}")
        releases = sorted({f"{r.get('release', r.get('name', '?'))}" for r in report.get("releases", [])})
        typer.echo(f"  Istio releases on every cluster: {', '.join(releases)}")
    for cluster, address in (report.get("gateways") or {}).items():
        typer.echo(f"  east-west gateway {cluster}: {address}")
    typer.echo(f"  kubeconfig {p['kubeconfig']} (contexts: {', '.join(c['name'] for c in p['clusters'])})")
    _print_verification(report.get("verification"))
    typer.echo(
        f"\n  kubectl --kubeconfig {p['kubeconfig']} --context {p['clusters'][0]['name']} get namespaces"
    )


def _print_verification(verification: dict[str, Any] | None) -> None:
    if not verification:
        return
    typer.echo(
        f"  verified: control plane ok, roots {', '.join(sorted(set(verification['roots'].values())))}"
    )
    traffic = verification.get("traffic")
    if traffic and traffic.get("address"):
        typer.echo(
            f"  Bookinfo: http://{traffic['address']}/productpage ({traffic['requests']} requests checked)"
        )


@app.command()
def verify(
    spec: SpecArg, as_json: JsonOpt = False, state: StateOpt = None, connection: ConnectionOpt = None
) -> None:
    """Check the control plane of SPEC's mesh as it exists now; exit 1 with one line per problem.

    Args:
        spec: the mesh spec (YAML).
        as_json: print the report as JSON.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
    """
    mesh = read_spec(spec)
    report = _run("verify-mesh", mesh, spec, connection=_connection(mesh, state, connection))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for t in report["tables"]:
        typer.echo(f"{t['primary']} sees:")
        for cluster, seen in t["clusters"].items():
            typer.echo(f"  {cluster:<16} {seen}")
    typer.echo("roots: " + ", ".join(f"{c} {fp}" for c, fp in report["roots"].items()))


@app.command("test")
def smoke_test(
    spec: SpecArg, as_json: JsonOpt = False, state: StateOpt = None, connection: ConnectionOpt = None
) -> None:
    """The ephemeral mesh test: up, verify, down as one run; teardown always runs, and the run
    fails when the verification does (after the teardown).

    Args:
        spec: the mesh spec (YAML); give it a `ttl` so the reaper covers a killed run.
        as_json: print the result as JSON.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
    """
    mesh = read_spec(spec)
    result = _run("mesh-smoke-test", mesh, spec, connection=_connection(mesh, state, connection))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"mesh {mesh.name}: smoke test passed; report artifact mesh-{mesh.name}-smoke-test")


@app.command()
def down(
    spec: SpecArg,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once deletion has started.")] = False,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="The kubeconfig `up` wrote, removed at the end.")
    ] = None,
    state: StateOpt = None,
    connection: ConnectionOpt = None,
) -> None:
    """Delete every cluster labelled with the mesh of SPEC, and its firewall rule.

    Args:
        spec: the mesh spec (YAML).
        no_wait: return once deletion has started.
        kubeconfig: the kubeconfig `up` wrote, removed at the end if it is this mesh's.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
    """
    mesh = read_spec(spec)
    where = (kubeconfig or naming.default_kubeconfig(mesh.name)).expanduser().resolve()
    params: dict[str, Any] = {
        "wait": not no_wait,
        "kubeconfig": str(where),
        "connection": _connection(mesh, state, connection),
    }
    report = _run("teardown-mesh", mesh, spec, **params)
    verb = "deleted" if report["waited"] else "deleting"
    typer.echo(
        f"mesh {report['mesh']}: {verb} {len(report['deleted_clusters'])} cluster(s) {', '.join(report['deleted_clusters'])}; firewall rule {report['firewall']}"
    )


@app.command()
def status(
    spec: SpecArg,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    state: StateOpt = None,
    connection: ConnectionOpt = None,
) -> None:
    """What exists of the mesh of SPEC right now.

    Args:
        spec: the mesh spec (YAML).
        as_json: print the status as JSON.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
    """
    mesh = read_spec(spec)
    target = _target(mesh, state, connection)
    from meshwright.status import mesh_status  # Google's clients load only for commands that call them

    try:
        info = mesh_status(mesh, target)
    except MeshwrightError as e:
        fail(e)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"mesh {info['mesh']} on {info['target']} ({info['project']}):")
    for c in info["clusters"]:
        typer.echo(
            f"  {c['name']:<16} {c['location']:<16} {c['status']:<12} {c['endpoint'] or '-':<22} pods {c['pod_cidr'] or '-'}"
        )
        releases = c.get("releases")
        if isinstance(releases, str):
            typer.echo(f"    {releases}")
        for r in releases if isinstance(releases, list) else []:
            typer.echo(
                f"    {r.get('name', '?'):<24} {r.get('chart', '?'):<20} rev {r.get('revision', '?'):<4} {r.get('status', '?')}"
            )
    for name in info["missing"]:
        typer.echo(f"  {name:<16} (absent)")
    fw = info["firewall"]
    typer.echo(f"  firewall {fw['name']}: {', '.join(fw['source_ranges'])}" if fw else "  firewall: absent")


server_app = typer.Typer(
    help="The local Prefect server (UI and API) and the runner serving meshwright's flows.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start() -> None:
    """Start (or reuse) the local Prefect server and the flow runner; print where the UI is."""
    from meshwright import server

    root = server.home()
    try:
        api = server.api(root)
        runner = server.ensure_runner(root, api, PROJECT)
    except MeshwrightError as e:
        fail(e)
    where = "local server, home " + str(root) if api.local else "PREFECT_API_URL"
    typer.echo(f"Prefect UI: {api.ui} ({where})\nflow runner: pid {runner['pid']}, log {root / 'runner.log'}")


@server_app.command("status")
def server_status() -> None:
    """Where the Prefect API and UI are and whether the flow runner serves them; exit 1 if not."""
    from meshwright import server

    root = server.home()
    given = os.environ.get("PREFECT_API_URL")
    api = server.Api(given.rstrip("/"), local=False) if given else server.status(root)
    if api is None:
        fail(f"no local Prefect server runs (home {root}); `meshwright server start` starts one")
    runner = server.runner_status(root, api)
    typer.echo(
        f"Prefect UI: {api.ui}\nAPI: {api.url} ({'healthy' if server.healthy(api.url) else 'not answering'})"
    )
    typer.echo(f"flow runner: pid {runner['pid']}" if runner else "flow runner: not running")
    if not runner:
        raise typer.Exit(EXIT_FAILED)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server and the flow runner (the database stays for the next start)."""
    from meshwright import server

    root = server.home()
    typer.echo("stopped" if server.stop(root) else f"nothing was running (home {root})")


def main() -> None:
    # Offline-friendly Prefect defaults; a user's own settings win.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()
