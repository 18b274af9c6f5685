"""What the GKE and Compute front ends check before a model sees a request.

Path segments (project, location), resource names and the JSON body's field types are checked
here, with Google's own messages, so that nothing malformed is ever stored: a stored record must
always load again and always list. Field paths in messages are snake_case, as Google writes them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meshwright.sandbox.gcp import errors as e

PROJECT = re.compile(
    r"(?:(?:[-a-z0-9]{1,63}\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?"
    r"(?:[0-9]{1,19}|(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?))"
)
"""Compute's own pattern for a project in a path (an id, a number, or `domain:id`)."""
LOCATION = re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}(?:-[a-z])?")
REGION = re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}")
ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}-[a-z]")
ACCOUNT_ID = re.compile(r"[a-z](?:[-a-z0-9]{4,28}[a-z0-9])")
"""A service account's id: 6-30 characters (https://cloud.google.com/iam/docs/service-accounts-create)."""
SERVICE = re.compile(r"[a-z][-a-z0-9]{0,62}\.googleapis\.com")
GKE_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?")
"""Clusters and node pools: 1-40 characters, a lowercase letter first, no trailing hyphen."""
SANDBOX_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""Ids the sandbox makes, fit to name a directory (INTERFACES item 2)."""
COMPUTE_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
MAX_LABELS = 64
MAX_TEXT = 2048  # descriptions and free text: the sandbox's own cap, so records stay small

GKE_NAME_HELP = (
    "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?)' (only lowercase alphanumerics "
    "and '-' allowed, must start with a letter and end with an alphanumeric, and must be no longer "
    "than 40 characters)."
)


def shown(value: Any) -> str:
    """A value as Google echoes it in a message: JSON, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def project(value: str) -> str:
    if not PROJECT.fullmatch(value):
        raise e.invalid(
            f"Invalid value for field 'project': {shown(value)}. Must be a match of regex '{PROJECT.pattern}'"
        )
    return value


def location(value: str, *, any_allowed: bool = False) -> str:
    """A zone or region; `-` (every location) only where the API lists or looks up."""
    if (any_allowed and value == "-") or LOCATION.fullmatch(value):
        return value
    raise e.invalid(f"Location {shown(value)} is not a valid zone or region.")


def region(value: str) -> str:
    """Compute's answer to a region it does not know (kelseyhightower/kubernetes-the-hard-way#153)."""
    if not REGION.fullmatch(value):
        raise e.invalid(f"Invalid value for field 'region': {shown(value)}. Unknown region.")
    return value


def gke_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not GKE_NAME.fullmatch(value):
        raise e.invalid(f"Invalid value for field {json.dumps(field)}: {shown(value)}. {GKE_NAME_HELP}")
    return value


def labels(value: dict[str, str], field: str) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise e.invalid(f"Invalid value for field '{field}': at most {MAX_LABELS} labels are allowed.")
    for key, val in value.items():
        if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(val):
            raise e.invalid(
                f"Invalid value for field '{field}': label {shown(key)}: {shown(val)}. Keys must start "
                "with a lowercase letter; keys and values hold at most 63 lowercase letters, digits, "
                "'_' or '-'."
            )
    return value


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class Fields:
    """Typed reads of one JSON object of a request body, with Google's messages for wrong types.

    Absent and null fields read as the default, as proto3 JSON does.
    """

    def __init__(self, data: Any, path: str, message: str) -> None:
        if not isinstance(data, dict):
            raise e.invalid(f"Invalid value at '{path}' (type.googleapis.com/{message}), {shown(data)}")
        self.data, self.path = data, path

    @classmethod
    def root(cls, data: Any, message: str) -> Fields:
        if data is not None and not isinstance(data, dict):
            raise e.invalid('Invalid JSON payload received. Unknown name "": Root element must be a message.')
        return cls(data or {}, "", message)

    def where(self, key: str) -> str:
        return f"{self.path}.{snake(key)}" if self.path else snake(key)

    def _wrong(self, key: str, kind: str) -> e.GcpError:
        return e.invalid(f"Invalid value at '{self.where(key)}' ({kind}), {shown(self.data[key])}")

    def text(self, key: str, default: str = "", *, limit: int = MAX_TEXT) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(key, "TYPE_STRING")
        if len(value) > limit or "\x00" in value:
            raise e.invalid(f"Invalid value for field '{self.where(key)}': {shown(value)}.")
        return value

    def integer(self, key: str, default: int = 0) -> int:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,10}", value):
            value = int(value)  # proto3 JSON allows integers as strings
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
            raise self._wrong(key, "TYPE_INT32")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(key, "TYPE_BOOL")
        return value

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def message(self, key: str, message: str) -> Fields:
        value = self.data.get(key)
        return Fields({} if value is None else value, self.where(key), message)

    def messages(self, key: str, message: str, *, limit: int = 100) -> list[Fields]:
        items = self._list(key, limit)
        return [Fields(item, f"{self.where(key)}[{i}]", message) for i, item in enumerate(items)]

    def texts(self, key: str, *, limit: int = 100) -> list[str]:
        items = self._list(key, limit)
        if not all(isinstance(item, str) and len(item) <= MAX_TEXT for item in items):
            raise self._wrong(key, "TYPE_STRING")
        return list(items)

    def mapping(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(v, str) and len(v) <= MAX_TEXT for v in value.values()
        ):
            raise self._wrong(key, "TYPE_MAP")
        return dict(value)

    def _list(self, key: str, limit: int) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(key, "TYPE_LIST")
        if len(value) > limit:
            raise e.invalid(f"Invalid value for field '{self.where(key)}': at most {limit} items.")
        return value
