"""Validation errors as the API server's `field.ErrorList` renders them, and the 422 they make."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshwright.sandbox.kube.registry import ResourceType
from meshwright.sandbox.kube.status import KubeError


@dataclass(frozen=True)
class FieldError:
    """One cause of a 422, as `field.Error` renders it."""

    field: str
    reason: str
    detail: str

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.detail, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def _go(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {_go(value)}: {detail}")


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def not_supported(path: str, value: Any, allowed: Iterable[str]) -> FieldError:
    choices = ", ".join(json.dumps(a) for a in sorted(allowed))
    return FieldError(
        path, "FieldValueNotSupported", f"Unsupported value: {_go(value)}: supported values: {choices}"
    )


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, "FieldValueDuplicate", f"Duplicate value: {_go(value)}")


def too_long(path: str, limit: int) -> FieldError:
    return FieldError(path, "FieldValueTooLong", f"Too long: must have at most {limit} bytes")


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, "FieldValueForbidden", f"Forbidden: {detail}")


def rejected(rt: ResourceType, name: str, errors: list[FieldError]) -> KubeError:
    """The 422 a real server answers for `errors` (one line, or all of them in brackets)."""
    text = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    qualified = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return KubeError(
        422,
        f'{qualified} "{name}" is invalid: {text}',
        details={"name": name, "group": rt.group, "kind": rt.kind, "causes": [e.cause() for e in errors]},
    )
