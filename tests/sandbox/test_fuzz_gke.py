"""A bounded fuzz loop over the GKE create path: mutated bodies never get a 5xx or no answer.

200 bodies (or 20 s, whichever ends first), derived from a valid create with a fixed seed so a
failure reproduces; loopback only. Afterwards the sandbox must restart and list what it stored.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

from meshwright.sandbox.faults import Faults
from meshwright.sandbox.settings import Latency
from meshwright.sandbox.world import World
from tests.sandbox.raw import call, restarted
from tests.support import PROJECT, ZONE

COUNT, BUDGET = 200, 20.0
CLUSTERS = f"/v1/projects/{PROJECT}/locations/{ZONE}/clusters"
VALID: dict[str, Any] = {
    "cluster": {
        "name": "seed",
        "description": "meshwright mesh m",
        "network": "default",
        "nodePools": [
            {"name": "default-pool", "initialNodeCount": 2, "config": {"machineType": "e2-standard-4"}}
        ],
        "ipAllocationPolicy": {"useIpAliases": True, "clusterIpv4CidrBlock": "/14"},
        "resourceLabels": {"meshwright-mesh": "m"},
        "releaseChannel": {"channel": 2},
        "workloadIdentityConfig": {"workloadPool": f"{PROJECT}.svc.id.goog"},
    }
}
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**40,
    1.5,
    "",
    "x" * 5000,
    "nul\u0000",
    "../..",
    "Ünï",
    "/",
    "/99",
    "10.0.0.0/8",
    [],
    [1],
    [{}],
    {},
    {"a": 1},
    [[[]]],
    "a" * 40,
    "ok-name",
]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON document (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        found += paths(child, (*prefix, key))
    return found


def mutate(rng: random.Random) -> bytes:
    body = copy.deepcopy(VALID)
    body["cluster"]["name"] = f"c{rng.randrange(10**6)}"
    for _ in range(rng.randint(1, 3)):
        if not paths(body):
            break
        path = rng.choice(paths(body))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(ODD_VALUES)
    raw = json.dumps(body).encode()
    if rng.random() < 0.1:  # a few that are not even JSON
        cut = rng.randrange(len(raw))
        raw = raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1 :]
    return raw


def test_mutated_create_bodies_never_get_a_5xx_and_restart_always_works(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    world = World(tmp_path / "state", latency=Latency(create=3600, pending=0.05), faults=Faults()).start()
    answered: dict[int, int] = {}
    deadline = time.monotonic() + BUDGET
    try:
        for _ in range(COUNT):
            if time.monotonic() > deadline:
                break
            raw = mutate(rng)
            status, _answer = call(world, "POST", CLUSTERS, raw=raw)  # raises if the connection drops
            assert status < 500, raw[:300]
            answered[status] = answered.get(status, 0) + 1
    finally:
        world = restarted(world)
    try:
        status, listed = call(world, "GET", f"/v1/projects/{PROJECT}/locations/-/clusters")
        assert status == 200
        assert len(listed["clusters"]) == answered.get(200, 0)
        assert set(answered) <= {200, 400}
        assert answered.get(400, 0) > 0
    finally:
        world.stop()


def test_mutated_state_files_never_stop_a_start_or_break_a_list(tmp_path: Path) -> None:
    """gcp.json edited by hand or by an older sandbox: each start loads what it can and answers."""
    rng = random.Random(112526)
    root = tmp_path / "state"
    world = World(root, latency=Latency(create=3600, pending=0.05), faults=Faults()).start()
    for name in ("one", "two"):
        assert call(world, "POST", CLUSTERS, raw=json.dumps({"cluster": {"name": name}}).encode())[0] == 200
    world.stop()
    pristine = json.loads((root / "gcp.json").read_text())
    deadline = time.monotonic() + BUDGET
    for round_ in range(25):
        if time.monotonic() > deadline:
            break
        state = copy.deepcopy(pristine)
        for _ in range(rng.randint(1, 4)):
            path = rng.choice(paths(state))
            parent = state
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = rng.choice(ODD_VALUES)
        (root / "gcp.json").write_text(json.dumps(state))
        world = World(root, latency=Latency(create=3600, pending=0.05), faults=Faults()).start()
        try:
            assert call(world, "GET", f"/v1/projects/{PROJECT}/locations/-/clusters")[0] == 200
            assert call(world, "GET", f"/v1/projects/{PROJECT}/locations/-/operations")[0] == 200
            created = call(
                world, "POST", CLUSTERS, raw=json.dumps({"cluster": {"name": f"r{round_}"}}).encode()
            )
            assert created[0] in (200, 400, 409), created
        finally:
            world.stop()
