"""Validation of workloads and their pod templates (core/v1 and apps/v1 rules), with the real messages."""

from __future__ import annotations

import json
from typing import Any

from meshwright.sandbox.kube.schema.fielderrors import FieldError, duplicate, invalid, required
from meshwright.sandbox.kube.schema.names import label_name


def _selector_matches(selector: dict[str, Any], labels_: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return all(labels_.get(k) == v for k, v in wanted.items()) and bool(
        wanted or selector.get("matchExpressions")
    )


def workload(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors = []
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        errors.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    selector = spec.get("selector")
    if not selector:
        errors.append(required("spec.selector"))
    elif not _selector_matches(selector, template_labels):
        errors.append(
            invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            )
        )
    return errors + pod_spec("spec.template.spec", template.get("spec") or {})


def pod_spec(path: str, spec: dict[str, Any]) -> list[FieldError]:
    containers = spec.get("containers") or []
    if not containers:
        return [required(f"{path}.containers")]
    errors, names = _volumes(path, spec.get("volumes") or []), set()
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    for i, container in enumerate(containers):
        here, name = f"{path}.containers[{i}]", container.get("name") or ""
        if not name:
            errors.append(required(f"{here}.name"))
        elif name in names:
            errors.append(duplicate(f"{here}.name", name))
        else:
            errors += label_name(f"{here}.name", name)
        names.add(name)
        errors += _container(here, container, volumes)
    return errors


def _volumes(path: str, volumes: list[dict[str, Any]]) -> list[FieldError]:
    errors, seen = [], set()
    for i, volume in enumerate(volumes):
        name = volume.get("name") or ""
        if not name:
            errors.append(required(f"{path}.volumes[{i}].name"))
        elif name in seen:
            errors.append(duplicate(f"{path}.volumes[{i}].name", name))
        seen.add(name)
    return errors


def _container(here: str, container: dict[str, Any], volumes: set[Any]) -> list[FieldError]:
    errors = [] if container.get("image") else [required(f"{here}.image")]
    for j, mount in enumerate(container.get("volumeMounts") or []):
        if mount.get("name") not in volumes:
            errors.append(
                FieldError(
                    f"{here}.volumeMounts[{j}].name",
                    "FieldValueNotFound",
                    f"Not found: {json.dumps(mount.get('name'))}",
                )
            )
    for j, port in enumerate(container.get("ports") or []):
        name = port.get("name") or ""
        if len(name) > 15:
            errors.append(invalid(f"{here}.ports[{j}].name", name, "must be no more than 15 characters"))
    return errors
