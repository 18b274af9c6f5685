"""`meshwright sandbox ...`: start, stop, reset, serve, status and kubeconfig of a local sandbox.

Only `serve` loads the emulator; the other commands reach a daemon through the sandbox's contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml

from meshwright import kubeconfig as kc
from meshwright.sandbox import daemon
from meshwright.sandbox.contract import STATE_ENV, SandboxNotRunning, state_dir
from meshwright.sandbox.settings import Latency, parse_quotas

app = typer.Typer(
    help="The local sandbox world (GKE, Compute and Kubernetes APIs on loopback).", no_args_is_help=True
)

StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help=f"State directory (default: ${STATE_ENV}, else .meshwright/sandbox).",
        show_default=False,
    ),
]
LatencyOpt = Annotated[str | None, typer.Option("--latency", help="create=4,delete=2,... or a YAML file.")]
FaultsOpt = Annotated[
    Path | None, typer.Option("--faults", help="YAML list of fault rules.", exists=True, dir_okay=False)
]
QuotasOpt = Annotated[
    Path | None,
    typer.Option(
        "--quotas",
        help="YAML region -> metric -> limit (e.g. us-central1: {CPUS: 24}); others stay generous.",
        exists=True,
        dir_okay=False,
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def ensure_started(root: Path) -> dict[str, Any]:
    """Start the sandbox of `root` unless it runs; its status, or one error line and exit 1."""
    try:
        return daemon.start(root)
    except SandboxNotRunning as e:
        _fail(str(e))


@app.command()
def start(
    state: StateOpt = None, latency: LatencyOpt = None, faults: FaultsOpt = None, quotas: QuotasOpt = None
) -> None:
    """Start the sandbox in the background and wait until it is healthy (fine if already running)."""
    try:
        Latency.parse(latency)
        parse_quotas(quotas)
        info = daemon.start(
            state_dir(state),
            latency=latency,
            faults=str(faults) if faults else None,
            quotas=str(quotas) if quotas else None,
        )
    except (SandboxNotRunning, ValueError, OSError, yaml.YAMLError) as e:
        _fail(str(e))
    typer.echo(
        f"sandbox running: GCP at {info['gcp']}, state {info['state']}, {len(info['clusters'])} cluster(s)"
    )


@app.command()
def serve(
    state: StateOpt = None, latency: LatencyOpt = None, faults: FaultsOpt = None, quotas: QuotasOpt = None
) -> None:
    """Run the sandbox in the foreground until interrupted."""
    try:
        profile = Latency.parse(latency)
        rules = daemon.load_faults(str(faults) if faults else None)
        limits = parse_quotas(quotas)
    except (ValueError, OSError, yaml.YAMLError) as e:
        _fail(f"bad sandbox settings: {e}")
    daemon.serve(state_dir(state), latency=profile, faults=rules, quotas=limits)


@app.command()
def stop(state: StateOpt = None) -> None:
    """Stop the sandbox; its state stays on disk for the next start."""
    root = state_dir(state)
    typer.echo("sandbox stopped" if daemon.stop(root) else f"no sandbox was running with state {root}")


@app.command()
def reset(state: StateOpt = None) -> None:
    """Stop the sandbox and delete its whole state (clusters, objects, CAs)."""
    root = state_dir(state)
    daemon.reset(root)
    typer.echo(f"sandbox reset: removed {root}")


@app.command()
def status(state: StateOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the sandbox serves and which clusters answer; exit 1 (one line) when none runs.

    Args:
        state: the sandbox's state directory.
        as_json: print the status as JSON (`running: false` when none runs).
    """
    root = state_dir(state)
    try:
        info = daemon.status(root)
    except Exception as e:  # whatever a dying daemon does to the connection: one line, no traceback
        if as_json:
            typer.echo(json.dumps({"running": False, "state": str(root), "gcp": None, "clusters": []}))
            raise typer.Exit(1) from None
        _fail(str(e) if isinstance(e, SandboxNotRunning) else f"the sandbox does not answer: {e}")
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    typer.echo(f"GCP:   {info['gcp']}\nstate: {info['state']}")
    clusters = info["clusters"]
    for name, c in zip(daemon.context_names(clusters), clusters, strict=True):
        typer.echo(f"  {name:<24} {c['project'] + '/' + c['location']:<32} {c['url']}")


@app.command()
def kubeconfig(
    state: StateOpt = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (mode 0600) instead of stdout.")
    ] = None,
) -> None:
    """A kubeconfig for the sandbox clusters: one context per cluster.

    A context is named after its cluster when that name is unique in the sandbox, else
    `<project>_<location>_<name>` as gcloud names them; `--cluster` takes either.
    """
    try:
        config = daemon.kubeconfig(state_dir(state), cluster=cluster)
    except SandboxNotRunning as e:
        _fail(str(e))
    if output:
        kc.write(output, config)
        typer.echo(f"wrote {output} (mode 0600)", err=True)
    else:
        typer.echo(yaml.safe_dump(config, sort_keys=False), nl=False)
