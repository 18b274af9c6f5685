"""The spec's JSON schema is what the Prefect UI's Run form renders: every field says what it is."""

from __future__ import annotations

from typing import Any

from meshwright.spec import MeshSpec


def _undocumented(schema: dict[str, Any]) -> list[str]:
    models = {"MeshSpec": schema, **schema["$defs"]}
    return [
        f"{model}.{field}"
        for model, body in models.items()
        for field, prop in body.get("properties", {}).items()
        if not prop.get("description")
    ]


def test_every_spec_field_has_a_description_for_the_run_form() -> None:
    assert _undocumented(MeshSpec.model_json_schema()) == []


def test_cluster_location_description_names_both_forms() -> None:
    location = MeshSpec.model_json_schema()["$defs"]["ClusterSpec"]["properties"]["location"]
    assert "zone" in location["description"]
    assert "region" in location["description"]
