"""`python -m meshwright.sandbox serve ...`: the daemon's own entry point.

It loads only the sandbox, not the CLI with its Google and Prefect imports, which would
cost the daemon a hundred MiB for nothing.
"""

from meshwright.cli.sandbox import app

app()
