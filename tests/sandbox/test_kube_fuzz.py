"""A small, seeded fuzz loop over the Kubernetes create paths: never a 5xx, never a dropped line, always a restart."""

from __future__ import annotations

import copy
import logging
import random
import time
from typing import Any

import pytest

from tests.sandbox.kube_fixtures import Sandbox, config_map, deployment, service
from tests.sandbox.kube_fixtures import sandbox as sandbox

ROUNDS = 400
TIME_BUDGET = 25.0  # seconds; the loop stops early rather than slow the suite down
ODD_VALUES: list[Any] = [
    None,
    "",
    "abc",
    "Bad_Name",
    "../../../escaped",
    "nul\u0000x",
    "x" * 300,
    -1,
    0,
    2**40,
    1.5,
    True,
    [],
    [1],
    ["a", {"b": 2}],
    {},
    {"a": 1},
    {"a": {"b": [None]}},
]
BASES: dict[str, dict[str, Any]] = {
    "/api/v1/namespaces/default/configmaps": config_map(
        "cm", data={"a": "1"}, metadata={"name": "cm", "labels": {"k": "v"}}
    ),
    "/api/v1/namespaces/default/secrets": {
        "metadata": {"name": "s"},
        "type": "Opaque",
        "data": {"a": "eA=="},
        "stringData": {"b": "y"},
    },
    "/api/v1/namespaces/default/services": service(
        "web", {"name": "http", "port": 80, "targetPort": 8080}, kind="LoadBalancer"
    ),
    "/apis/apps/v1/namespaces/default/deployments": deployment("web", strategy={"type": "RollingUpdate"}),
    "/api/v1/namespaces": {"metadata": {"name": "ns1", "labels": {"a": "b"}}},
    "/api/v1/namespaces/default/serviceaccounts": {"metadata": {"name": "sa"}, "secrets": [{"name": "x"}]},
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices": {
        "metadata": {"name": "es"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"]}],
        "ports": [{"name": "p", "port": 1}],
    },
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions": {
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    },
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def mutate(rng: random.Random, base: dict[str, Any]) -> Any:
    """The base body with one value (anywhere, the root included) replaced, or one odd key added."""
    body = copy.deepcopy(base)
    path = rng.choice(_paths(body))
    value = rng.choice(ODD_VALUES)
    if not path:
        return value
    parent = body
    for part in path[:-1]:
        parent = parent[part]
    if isinstance(parent, dict) and rng.random() < 0.2:
        parent[rng.choice(["spec", "data", "x", "metadata", "status"])] = value
    else:
        parent[path[-1]] = value
    return body


def test_mutated_creates_never_fail_the_server_and_a_restart_always_works(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rng, raw = random.Random(20261125), sandbox.raw()
    deadline, statuses = time.monotonic() + TIME_BUDGET, []
    for round_ in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        path, base = rng.choice(sorted(BASES.items()))
        body = mutate(rng, base)
        status, answer = raw.call("POST", path, body)  # a dropped connection raises here
        assert status < 500, (round_, path, body, answer)
        statuses.append(status)
        if status == 201 and isinstance(body, dict):
            name = answer["metadata"]["name"]
            assert raw.call("DELETE", f"{path}/{name}")[0] == 200
    assert len(statuses) >= 40
    assert {400, 422} <= set(statuses)
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    ] == []  # no controller choked
    sandbox.restart()
    raw = sandbox.raw()
    for path in BASES:
        assert raw.call("GET", path)[0] == 200, path
        assert raw.call("POST", path, BASES[path])[0] == 201, path


def _patch_for(rng: random.Random, base: dict[str, Any]) -> tuple[str, Any]:
    """A merge patch setting one odd value somewhere, or a JSON Patch replacing one path."""
    path = [p for p in rng.choice(_paths(base)) if isinstance(p, str)]
    value = rng.choice(ODD_VALUES)
    if rng.random() < 0.5 and path:
        return "application/json-patch+json", [
            {"op": "replace", "path": "/" + "/".join(path), "value": value}
        ]
    patch: Any = value
    for part in reversed(path):
        patch = {part: patch}
    return "application/merge-patch+json", patch


def test_mutated_patches_never_fail_the_server_and_a_restart_always_works(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rng, raw = random.Random(1125), sandbox.raw()
    for path, base in BASES.items():
        assert raw.call("POST", path, base)[0] == 201, path
    thing = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"a": 1}}
    targets = {**BASES, "/apis/example.com/v1/namespaces/default/things": thing}
    assert raw.call("POST", "/apis/example.com/v1/namespaces/default/things", thing)[0] == 201
    deadline = time.monotonic() + TIME_BUDGET
    for round_ in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        path, base = rng.choice(sorted(targets.items()))
        content_type, patch = _patch_for(rng, base)
        name = base["metadata"]["name"]
        status, answer = raw.call("PATCH", f"{path}/{name}", patch, content_type=content_type)
        assert status < 500, (round_, path, patch, answer)
        assert raw.call("GET", f"{path}/{name}")[0] in (200, 404)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    sandbox.restart()
    raw = sandbox.raw()
    for path in targets:
        assert raw.call("GET", path)[0] == 200, path
