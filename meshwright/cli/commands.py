"""The `meshwright` commands: validate, plan, up, verify, test, down, status, and `server ...`.

Every command prints one clear line per problem and exits non-zero on failure; no command
prints a token, a key or a kubeconfig with credentials. Start-up stays cheap: Google's clients
and the result models load only in the commands that use them, Prefect and the flows never (a
run's result comes back over REST and is read as its model), the emulator never (the sandbox
daemon is a process of its own).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from meshwright import kubeconfig as kc
from meshwright import naming
from meshwright.cli import render, sandbox
from meshwright.drift import Drift, diff
from meshwright.drift import render_text as render_drift
from meshwright.errors import MeshwrightError, SpecInvalid
from meshwright.naming import MESH_LABEL
from meshwright.plan import build_plan, render_text
from meshwright.sandbox.contract import STATE_ENV, state_dir
from meshwright.spec import MeshSpec, Target, load_spec

if TYPE_CHECKING:
    from meshwright.clients import MeshwrightTarget

Result = TypeVar("Result", bound=BaseModel)

app = typer.Typer(
    name="meshwright",
    help="Stand up a multicluster Istio mesh on GKE (or the local sandbox), prove it works, tear it down.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(sandbox.app, name="sandbox")

SpecArg = Annotated[Path, typer.Argument(help="Mesh spec (YAML).", show_default=False)]
EXIT_INVALID = 2
EXIT_FAILED = 1


def fail(error: MeshwrightError | str, *, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)


def read_spec(path: Path) -> MeshSpec:
    """The spec file the user named, wherever it is (a flow gets the spec itself, not this path)."""
    try:
        return load_spec(path, confined=False)
    except SpecInvalid as e:
        fail(e, code=EXIT_INVALID)


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a mesh spec without touching any network; list every problem at once."""
    mesh = read_spec(spec)
    typer.echo(f"ok: {mesh.summary()}")
    for warning in mesh.warnings():
        typer.echo(f"warning: {warning}", err=True)


@app.command()
def plan(
    spec: SpecArg,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Do not read what exists.")] = False,
    state: Annotated[Path | None, typer.Option("--state", help="Sandbox state directory.")] = None,
    connection: Annotated[str | None, typer.Option("--connection", help="A saved MeshwrightTarget.")] = None,
) -> None:
    """Show what `up` would do for SPEC: when the mesh exists, what it would change (clusters to
    create or delete, releases, remote secrets, firewall sources, workloads), then the stages in
    order, parallel steps, every resource.

    Args:
        spec: the mesh spec (YAML).
        as_json: print the plan (and the changes, under `changes`) as JSON.
        offline: do not read the world; the plan only.
        state: the sandbox's state directory (sandbox target only; a sandbox is never started).
        connection: the name of a saved MeshwrightTarget block.
    """
    mesh = read_spec(spec)
    the_plan = build_plan(mesh)
    drift = None if offline else _drift(mesh, state, connection)
    if as_json:
        changes = drift.model_dump(mode="json") if drift else None
        typer.echo(json.dumps({**the_plan.model_dump(), "changes": changes}, indent=2))
        return
    if drift is not None:
        typer.echo(render_drift(drift) + "\n")
    typer.echo(render_text(the_plan))


def _drift(mesh: MeshSpec, state: Path | None, connection: str | None) -> Drift | None:
    """The difference between the spec and its mesh as it exists; None when nothing can be read
    (no sandbox running: nothing exists there either), with a line saying why on a failed read."""
    from meshwright.clients import MeshwrightTarget, resolve_target
    from meshwright.observe import observe

    if mesh.target is Target.SANDBOX and not connection:
        if not sandbox.daemon.health(state_dir(state)):
            return None
        given: MeshwrightTarget | str | None = MeshwrightTarget(
            target=Target.SANDBOX, sandbox_state=str(state_dir(state))
        )
    else:
        given = connection
    try:
        return diff(mesh, observe(mesh, resolve_target(mesh.target, given)))
    except MeshwrightError as e:
        typer.echo(f"warning: what exists could not be read ({e}); showing the plan only", err=True)
        return None


PROJECT = Path(__file__).resolve().parents[2]  # where flows/ lives: the runner imports from here

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
QueueOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="When another run holds the mesh, queue a new run behind it (default: follow that run).",
    ),
]
KubeconfigOpt = Annotated[Path | None, typer.Option(help="Where to write the kubeconfig.")]
DrillOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--drill",
        help="After the verification, break the mesh on purpose while requests flow, then restore it: "
        "`failover` (a reviews version scaled to 0 and back) or `rotate-secrets` (every reader token "
        "replaced, the old one revoked). Repeatable.",
        show_default=False,
    ),
]


def _drills(names: list[str] | None) -> list[str]:
    """The drills asked for, checked before any run starts (exit 2 on an unknown one)."""
    from meshwright.drills import DrillFailed, parse

    try:
        return parse(names or [])
    except DrillFailed as e:
        raise typer.BadParameter(e.message, param_hint="--drill") from None


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
    info = sandbox.ensure_started(state_dir(state))
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


def _run(
    flow: str,
    model: type[Result],
    mesh: MeshSpec,
    spec: Path,
    *,
    hint: str = "",
    queue: bool = False,
    kept: Callable[[Result], None] | None = None,
    **params: Any,
) -> Result | None:
    """Run `flow`'s served deployment, stream its logs to stderr, return its result as `model`; on
    failure one `error:` paragraph (and the hint) and its exit code (1, or 130 when cancelled with
    Ctrl-C), after `kept` is given the report the failed run kept, if it kept one. One run per
    mesh: when another run of the mesh is in flight, follow that one to its end and exit with its
    state instead, unless `queue` (then the new run waits for the mesh)."""
    from meshwright.cli import runs, server

    root = server.home()
    try:
        api = server.api(root)
        server.ensure_runner(root, api, PROJECT)
        with runs.connect(api.url) as client:
            held = None if queue else runs.in_flight(client, mesh.name, server.RUNNER_DEPLOYMENT)
            run = held or _start(client, flow, mesh, spec, params)
            link = f"{api.ui}/runs/flow-run/{run['id']}"
            if held is None:
                typer.echo(f"flow run {run['name']}: {link}", err=True)
            else:
                typer.echo(
                    f"mesh {mesh.name} is held by flow run {run['name']} ({run['flow_name']}): {link}; "
                    "following it to its end (--wait queues a new run behind it instead)",
                    err=True,
                )
            outcome = runs.follow(
                client,
                run["id"],
                echo=lambda line: typer.echo(line, err=True),
                revive=lambda: server.revive(root, api),
            )
            failed = _kept(client, run["id"], model) if kept and outcome.exit_code == EXIT_FAILED else None
    except MeshwrightError as e:
        fail(e)
    typer.echo(
        f"flow run {run['name']} {outcome.state.lower()}: {api.ui}/runs/flow-run/{run['id']}", err=True
    )
    if outcome.exit_code == runs.EXIT_CANCELLED:
        fail(f"{flow}: the run was cancelled", code=runs.EXIT_CANCELLED)
    if outcome.exit_code:
        if kept and failed is not None:
            kept(failed)
        code = EXIT_INVALID if "SpecInvalid" in outcome.message else EXIT_FAILED
        refused = "Refused" in outcome.message  # stopped before changing anything: no "what stays"
        fail(f"{outcome.problem}{'' if refused else hint}", code=code)
    if held is not None and held["flow_name"] != flow:
        typer.echo(
            f"{flow}: the run followed was {held['flow_name']}; run the command again for its own", err=True
        )
        return None
    return _read_result(flow, model, outcome.result)


def _start(client: Any, flow: str, mesh: MeshSpec, spec: Path, params: dict[str, Any]) -> dict[str, Any]:
    from meshwright.cli import runs, server

    deployment = f"{flow}/{server.RUNNER_DEPLOYMENT}"
    spec_param = runs.spec_parameter(client, deployment, mesh, spec)
    return runs.create_run(client, deployment, {"spec": spec_param, **params})


def _kept(client: Any, run_id: str, model: type[Result]) -> Result | None:
    """The report a failed run kept (naming.KEPT_REPORT), as `model`; None when it kept none."""
    from meshwright.cli import runs

    try:
        found = runs.kept_result(client, run_id, naming.KEPT_REPORT)
        return None if found is None else model.model_validate(found)
    except (MeshwrightError, ValidationError):
        return None  # the error line still says what failed


def _read_result(flow: str, model: type[Result], result: Any) -> Result | None:
    """A completed run's result as its model; None (and a line saying so) when this process cannot
    read it, as when the run's result was not persisted where the CLI looks."""
    if result is None:
        typer.echo(f"{flow}: the run's result is not readable here; the run's page shows it", err=True)
        return None
    try:
        return model.model_validate(result)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        fail(f"{flow}: the run's result is not a {model.__name__} ({where}: {first['msg']})")


def _show(report: Result | None, as_json: bool, text: Callable[[Result], str]) -> None:
    """A run's result as JSON, or as the text a person reads (nothing when it could not be read)."""
    if as_json:
        _echo_json(report)
    elif report is not None:
        typer.echo(text(report))


def _echo_json(result: BaseModel | None) -> None:
    """A run's result as JSON: the model's fields, as the runner persisted them."""
    typer.echo(json.dumps(None if result is None else result.model_dump(mode="json"), indent=2))


@app.command()
def up(
    spec: SpecArg,
    kubeconfig: KubeconfigOpt = None,
    as_json: JsonOpt = False,
    state: StateOpt = None,
    force: ForceOpt = False,
    connection: ConnectionOpt = None,
    queue: QueueOpt = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete the mesh's clusters that the spec no longer names.")
    ] = False,
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
        queue: when another run holds the mesh, queue behind it instead of following it.
        prune: delete the clusters labelled with the mesh that SPEC no longer names (their remote
            secrets and firewall sources first); without it `up` stops before changing anything.
    """
    from meshwright.models import MeshReport

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
        "prune": prune,
    }
    _show(_run("up-mesh", MeshReport, mesh, spec, hint=hint, queue=queue, **params), as_json, render.mesh_up)


@app.command()
def verify(
    spec: SpecArg,
    as_json: JsonOpt = False,
    state: StateOpt = None,
    connection: ConnectionOpt = None,
    queue: QueueOpt = False,
    drill: DrillOpt = None,
) -> None:
    """Check the mesh of SPEC as it exists now, link by link: each (primary, cluster) pair's verdict,
    the layer that broke and the latency of the requests it served; then run each `--drill`. Prints
    the report (failed or not); exits 1 with one line per problem.

    Args:
        spec: the mesh spec (YAML).
        as_json: print the report as JSON (with `links`), on failure too.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
        queue: when another run holds the mesh, queue behind it instead of following it.
        drill: `failover` or `rotate-secrets`, repeatable; each restores what it changed.
    """
    from meshwright.verify import VerifyReport

    mesh = read_spec(spec)
    names = _drills(drill)
    where = _connection(mesh, state, connection)
    show = partial(_show, as_json=as_json, text=render.verification)
    extra: dict[str, Any] = {"drills": names} if names else {}
    show(_run("verify-mesh", VerifyReport, mesh, spec, queue=queue, kept=show, connection=where, **extra))


@app.command("test")
def smoke_test(
    spec: SpecArg,
    kubeconfig: KubeconfigOpt = None,
    as_json: JsonOpt = False,
    state: StateOpt = None,
    connection: ConnectionOpt = None,
    queue: QueueOpt = False,
    drill: DrillOpt = None,
    upgrade_from: Annotated[
        str | None,
        typer.Option(
            help="Rehearse an upgrade: build at this Istio version, then upgrade to the spec's while "
            "requests flow through the ingress; fails when any of them fails.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The ephemeral mesh test: up, verify, drill (with `--drill`), down as one run; teardown always
    runs, and the run fails when the verification or a drill does (after the teardown). With
    --upgrade-from, the nightly upgrade rehearsal: up at that version, upgrade by revision under
    traffic, verify, down.

    Args:
        spec: the mesh spec (YAML); give it a `ttl` so the reaper covers a killed run.
        kubeconfig: where the run keeps the kubeconfig while the mesh exists (default
            `.meshwright/<mesh>/kubeconfig` here); the teardown removes it.
        as_json: print the result as JSON.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
        queue: when another run holds the mesh, queue behind it instead of following it.
        drill: `failover` or `rotate-secrets`, repeatable, after the verification of `up`.
        upgrade_from: the Istio version to build first and upgrade from (e.g. 1.29.8).
    """
    from meshwright import rehearsal
    from meshwright.models import SmokeReport

    mesh = read_spec(spec)
    if upgrade_from:
        try:
            rehearsal.older(mesh, upgrade_from)
        except MeshwrightError as e:
            fail(e, code=EXIT_INVALID)
    names = _drills(drill)
    params: dict[str, Any] = {
        "kubeconfig": str(_check_kubeconfig(mesh, kubeconfig, force=False)),
        "connection": _connection(mesh, state, connection),
        **({"drills": names} if names else {}),
        **({"upgrade_from": upgrade_from} if upgrade_from else {}),
    }
    report = _run("mesh-smoke-test", SmokeReport, mesh, spec, queue=queue, **params)
    _show(report, as_json, render.smoke_test)


@app.command()
def approve(
    spec: SpecArg,
    roll_back: Annotated[
        bool, typer.Option("--roll-back", help="Roll the upgrade back instead of moving the tag.")
    ] = False,
) -> None:
    """Answer the approval point of the mesh's upgrade (`istio.upgrade.approve`): continue, moving
    the revision tag to the new istiod, or roll back. Same as Resume on the run's page in the UI.

    Args:
        spec: the mesh spec (YAML).
        roll_back: remove the new revision and keep the old one.
    """
    from meshwright.cli import runs, server

    mesh = read_spec(spec)
    decision = "roll back" if roll_back else "continue"
    try:
        api = server.api(server.home())
        with runs.connect(api.url) as client:
            run = runs.resume_paused(client, mesh.name, {"decision": decision})
    except MeshwrightError as e:
        fail(e)
    typer.echo(
        f"flow run {run['name']} of mesh {mesh.name} resumed: {decision}: {api.ui}/runs/flow-run/{run['id']}"
    )


@app.command()
def down(
    spec: SpecArg,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once deletion has started.")] = False,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="The kubeconfig `up` wrote, removed at the end.")
    ] = None,
    state: StateOpt = None,
    connection: ConnectionOpt = None,
    queue: QueueOpt = False,
) -> None:
    """Delete every cluster labelled with the mesh of SPEC, and its firewall rule.

    Args:
        spec: the mesh spec (YAML).
        no_wait: return once deletion has started.
        kubeconfig: the kubeconfig `up` wrote, removed at the end if it is this mesh's.
        state: the sandbox's state directory (sandbox target only).
        connection: the name of a saved MeshwrightTarget block.
        queue: when another run holds the mesh, queue behind it instead of following it.
    """
    from meshwright.models import TeardownReport

    mesh = read_spec(spec)
    where = (kubeconfig or naming.default_kubeconfig(mesh.name)).expanduser().resolve()
    params: dict[str, Any] = {
        "wait": not no_wait,
        "kubeconfig": str(where),
        "connection": _connection(mesh, state, connection),
    }
    report = _run("teardown-mesh", TeardownReport, mesh, spec, queue=queue, **params)
    if report is not None:
        typer.echo(render.teardown(report))


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
    typer.echo(json.dumps(info, indent=2) if as_json else render.status(info))


server_app = typer.Typer(
    help="The local Prefect server (UI and API) and the runner serving meshwright's flows.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start() -> None:
    """Start (or reuse) the local Prefect server and the flow runner; print where the UI is."""
    from meshwright.cli import server

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
    from meshwright.cli import server

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


@server_app.command("automations")
def server_automations(
    teardown: Annotated[
        str | None,
        typer.Option(
            help="The teardown deployment a crashed or cancelled smoke test runs.", show_default=False
        ),
    ] = None,
    notify: Annotated[
        str | None,
        typer.Option(
            help="The notification block (<type>/<name>, e.g. slack-webhook/mesh-alerts) a failed or "
            "crashed smoke test is told through (default: $MESHWRIGHT_NOTIFY_BLOCK; unset: none).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create or update meshwright's automations on the Prefect API (PREFECT_API_URL, else the local
    server): runs that stop sending heartbeats are marked Crashed, and a smoke test that ends Crashed
    or Cancelled gets its teardown run. The runner does this by itself; a team server whose flows run
    from prefect.yaml's work-pool deployments needs this once, naming its teardown deployment.

    Args:
        teardown: the deployment ("flow/name") that deletes a mesh, e.g. teardown-mesh/teardown;
            default the runner's, teardown-mesh/meshwright.
        notify: the notification block that tells someone a smoke test failed.
    """
    from meshwright.cli import server

    teardown = teardown or f"teardown-mesh/{server.RUNNER_DEPLOYMENT}"
    if not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = server.api(server.home()).url
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from meshwright import automations
    from meshwright.settings import settings

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(teardown)
        except ObjectNotFound:
            fail(f"no deployment {teardown} on {client.api_url}; deploy it first (prefect.yaml)")
        named = notify or settings().notify_block
        try:
            block = automations.notification_block(client, named) if named else None
        except (ObjectNotFound, ValueError) as e:
            fail(f"notification block {named}: {e}; create it in the UI (Blocks) or with Python first")
        automations.ensure_all(client, teardown=deployment.id, notify=block)
    told = (
        f"'{automations.NOTIFY}' (through {named})"
        if block
        else "no notification (name a block with --notify)"
    )
    typer.echo(
        f"automations ensured: '{automations.CRASH_SILENT}', '{automations.TEAR_DOWN}' (runs {teardown}), {told}"
    )


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server and the flow runner (the database stays for the next start)."""
    from meshwright.cli import server

    root = server.home()
    typer.echo("stopped" if server.stop(root) else f"nothing was running (home {root})")


def main() -> None:
    # Offline-friendly Prefect defaults; a user's own settings win.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()
