"""The `meshwright` command line: validate, plan, sandbox, up, down, status.

Every command prints one clear line per problem and exits non-zero on failure; no command
prints a token, a key or a kubeconfig with credentials. Start-up stays cheap: Google's clients,
Prefect and the flows load only in the commands that use them, the emulator never (the sandbox
daemon is a process of its own).
"""

from __future__ import annotations

import importlib
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
    from meshwright.models import ProvisionReport

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


def _flow(module: str, name: str) -> Any:
    """A flow by name. The CLI is the composition root; meshwright/ never imports flows statically."""
    return getattr(importlib.import_module(module), name)


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


def _connect(spec: MeshSpec, state: Path | None, connection: str | None) -> MeshwrightTarget:
    """Where the flows build (a saved block, or the sandbox of --state, or GKE); a sandbox is started.

    Loads the client factory, so only the commands that build or look at a mesh pay for it.
    """
    from meshwright.clients import MeshwrightTarget, resolve_target

    sandbox = spec.target is Target.SANDBOX
    given = connection or MeshwrightTarget(
        target=spec.target, sandbox_state=str(state_dir(state)) if sandbox else None
    )
    try:
        target = resolve_target(spec.target, given)
    except MeshwrightError as e:
        fail(e)
    if target.target is Target.SANDBOX:
        info = sandbox_cli.ensure_started(state_dir(target.sandbox_state))
        typer.echo(f"sandbox: GCP at {info['gcp']} (state {info['state']})", err=True)
    return target


def _check_kubeconfig(spec: MeshSpec, path: Path | None, *, force: bool) -> None:
    """Refuse a kubeconfig of another mesh before anything is built (the flow checks again)."""
    where = path or naming.default_kubeconfig(spec.name)
    owner = kc.Owner(spec.name, spec.project, spec.target.value)
    reason = None if force else kc.why_not_overwrite(where, owner)
    if reason:
        fail(f"{reason}; choose another --kubeconfig path, or pass --force to overwrite it")


def _run(module: str, name: str, *, hint: str = "", **params: Any) -> Any:
    try:
        return _flow(module, name)(**params)
    except SpecInvalid as e:
        fail(e, code=EXIT_INVALID)
    except MeshwrightError as e:
        fail(f"{e}{hint}")
    except Exception as e:  # anything else still gets one line, not a traceback
        fail(f"{type(e).__name__}: {e}{hint}")


@app.command()
def up(
    spec: SpecArg,
    kubeconfig: Annotated[Path | None, typer.Option(help="Where to write the kubeconfig.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    state: StateOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a kubeconfig that holds another mesh's contexts.")
    ] = False,
    connection: ConnectionOpt = None,
) -> None:
    """Provision the mesh of SPEC: clusters in parallel, firewall, kubeconfig.

    Args:
        spec: the mesh spec (YAML).
        kubeconfig: where to write the kubeconfig (default `.meshwright/<mesh>/kubeconfig`).
        as_json: print the report as JSON.
        state: the sandbox's state directory (sandbox target only).
        force: overwrite a kubeconfig that meshwright did not write for this mesh.
        connection: the name of a saved MeshwrightTarget block to build with.
    """
    mesh = read_spec(spec)
    _check_kubeconfig(mesh, kubeconfig, force=force)
    target = _connect(mesh, state, connection)
    hint = (
        f"\n  What was created so far stays (labelled {MESH_LABEL}={mesh.name}): `meshwright status {spec}` shows it,"
        f"\n  `meshwright up {spec}` resumes where this stopped, `meshwright down {spec}` removes it."
    )
    report = _run(
        "flows.provision",
        "provision_mesh",
        hint=hint,
        spec=str(spec),
        kubeconfig=str(kubeconfig) if kubeconfig else None,
        connection=target,
        force=force,
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_report(report)


def _print_report(report: ProvisionReport) -> None:
    typer.echo(f"\nmesh {report.mesh} is up on {report.target} ({report.project}) in {report.seconds:.1f}s")
    for c in report.clusters:
        typer.echo(
            f"  {c.name:<16} {c.location:<16} {c.status:<8} {c.endpoint:<22} pods {c.pod_cidr:<16} {c.timing.seconds:6.1f}s"
        )
    typer.echo(
        f"  firewall {report.firewall.name} {report.firewall.action}: {', '.join(report.firewall.source_ranges)}"
    )
    typer.echo(f"  kubeconfig {report.kubeconfig} (contexts: {', '.join(c.name for c in report.clusters)})")
    typer.echo(
        f"\n  kubectl --kubeconfig {report.kubeconfig} --context {report.clusters[0].name} get namespaces"
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
    report = _run(
        "flows.teardown",
        "teardown_mesh",
        spec=str(spec),
        wait=not no_wait,
        kubeconfig=str(kubeconfig) if kubeconfig else None,
        connection=_connect(mesh, state, connection),
    )
    verb = "deleted" if report.waited else "deleting"
    typer.echo(
        f"mesh {report.mesh}: {verb} {len(report.deleted_clusters)} cluster(s) {', '.join(report.deleted_clusters)}; firewall rule {report.firewall}"
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
    target = _connect(mesh, state, connection)
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
    for name in info["missing"]:
        typer.echo(f"  {name:<16} (absent)")
    fw = info["firewall"]
    typer.echo(f"  firewall {fw['name']}: {', '.join(fw['source_ranges'])}" if fw else "  firewall: absent")


def main() -> None:
    # Offline-friendly Prefect defaults; a user's own settings win.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()
