"""The `meshwright` command line: validate, plan, sandbox, up, down, status.

Every command prints one clear line per problem and exits non-zero on failure; no command
prints a token, a key or a kubeconfig with credentials.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from meshwright.errors import MeshwrightError, SpecInvalid
from meshwright.plan import build_plan, render_text
from meshwright.spec import MeshSpec, load_spec

app = typer.Typer(
    name="meshwright",
    help="Stand up a multicluster Istio mesh on GKE (or the local sandbox), prove it works, tear it down.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

from meshwright.sandbox_cli import app as sandbox_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox")

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


def main() -> None:
    app()
