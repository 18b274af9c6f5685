"""The operator's front end: the `meshwright` command and its `sandbox` and `server` groups.

It triggers runs of the deployments that the local flow runner serves and follows them over
Prefect's REST API (`runs`), keeps that runner and a local Prefect server going (`server`),
starts and stops sandbox daemons (`sandbox`), and prints what a run returned, read as its result
model (`render`).

What it must not do: import Prefect, the flows or the tasks (a run happens in the runner, never
here), build a cloud client at start-up (only `status` does, and only when it runs), or load the
sandbox's emulator (a daemon is a process of its own). Every command pays for every import made
here, and `tests/test_layers.py` pins that `import meshwright.cli` stays light.
"""

from meshwright.cli.commands import app, main

__all__ = ["app", "main"]
