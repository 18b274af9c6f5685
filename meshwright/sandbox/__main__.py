"""`python -m meshwright.sandbox serve ...`: the daemon's own entry point.

It loads the sandbox and the light CLI package (typer, no Google client, no Prefect: the
`meshwright.cli` package pins that), not the flows, which would cost the daemon a hundred MiB.
"""

from meshwright.cli.sandbox import app

app()
