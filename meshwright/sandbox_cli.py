"""`meshwright sandbox ...`: start, stop, reset, serve, status and kubeconfig of a local sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from meshwright.sandbox import daemon
from meshwright.sandbox.settings import STATE_ENV, Latency, state_dir
from meshwright.sandbox.store import write_secret

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


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def start(state: StateOpt = None, latency: LatencyOpt = None, faults: FaultsOpt = None) -> None:
    """Start the sandbox in the background and wait until it is healthy (fine if already running)."""
    try:
        Latency.parse(latency)
        info = daemon.start(state_dir(state), latency=latency, faults=str(faults) if faults else None)
    except (daemon.SandboxNotRunning, ValueError, OSError) as e:
        _fail(str(e))
    typer.echo(
        f"sandbox running: GCP at {info['gcp']}, state {info['state']}, {len(info['clusters'])} cluster(s)"
    )


@app.command()
def serve(state: StateOpt = None, latency: LatencyOpt = None, faults: FaultsOpt = None) -> None:
    """Run the sandbox in the foreground until interrupted."""
    try:
        profile = Latency.parse(latency)
        rules = daemon.load_faults(str(faults) if faults else None)
    except (ValueError, OSError, yaml.YAMLError) as e:
        _fail(f"bad sandbox settings: {e}")
    daemon.serve(state_dir(state), latency=profile, faults=rules)


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
    """Where the sandbox serves and which clusters answer."""
    root = state_dir(state)
    try:
        info = daemon.status(root)
    except daemon.SandboxNotRunning as e:
        if as_json:
            typer.echo(json.dumps({"running": False, "state": str(root), "gcp": None, "clusters": {}}))
            raise typer.Exit(1) from None
        _fail(str(e))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"GCP:   {info['gcp']}\nstate: {info['state']}")
    for name, url in sorted(info["clusters"].items()):
        typer.echo(f"  {name:<20} {url}")


@app.command()
def kubeconfig(
    state: StateOpt = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="Only this cluster.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to FILE (mode 0600) instead of stdout.")
    ] = None,
) -> None:
    """A kubeconfig for the sandbox clusters: one context per cluster, named after it."""
    try:
        config = daemon.kubeconfig(state_dir(state), cluster=cluster)
    except daemon.SandboxNotRunning as e:
        _fail(str(e))
    text = yaml.safe_dump(config, sort_keys=False)
    if output:
        write_secret(output, text.encode())
        typer.echo(f"wrote {output} (mode 0600)", err=True)
    else:
        typer.echo(text, nl=False)
