"""A create that loses a race adopts what the winner made (issue 20)."""

from __future__ import annotations

from typing import Any

import pytest

from meshwright.clients import MeshwrightTarget
from meshwright.sandbox.world import World
from tasks import network
from tasks.network import ensure_firewall
from tests.support import mesh


def test_a_firewall_insert_that_loses_a_race_adopts_the_winners_rule(
    sandbox: World, target: MeshwrightTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = mesh()
    winner = ensure_firewall.fn(spec, ["10.8.0.0/14", "10.16.0.0/14"], target=target, expires=None)
    looked, real = [], network.mesh_firewalls

    def blind_first_look(*args: Any, **kwargs: Any) -> Any:
        """Our run looked a moment before the winner inserted its rule."""
        looked.append(args)
        return [] if len(looked) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(network, "mesh_firewalls", blind_first_look)
    loser = ensure_firewall.fn(spec, ["10.8.0.0/14", "10.16.0.0/14"], target=target, expires=None)

    assert (winner.action, loser.action) == ("created", "adopted")
    assert loser.source_ranges == winner.source_ranges
    assert len(looked) == 2
