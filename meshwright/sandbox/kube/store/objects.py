"""The object store of one cluster: objects, one resourceVersion counter, watch history.

Every change is journalled before it is acknowledged; history is kept in memory only, so a
watch from before a restart gets 410 Gone, as from a compacted etcd.
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshwright.sandbox.store import Journal

Key = tuple[str, str, str]  # (type key "group/plural", namespace or "", name)
HISTORY = 20000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    obj: dict[str, Any]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _pair(entry: Any) -> bool:
    return isinstance(entry, list | tuple) and len(entry) == 2


def _key(raw: Any) -> Key | None:
    """A stored key: three strings, the type key holding its one slash."""
    if not (isinstance(raw, list | tuple) and len(raw) == 3 and all(isinstance(k, str) for k in raw)):
        return None
    if raw[0].count("/") != 1 or not raw[2]:
        return None
    return (raw[0], raw[1], raw[2])


class Gone(Exception):
    """The requested resourceVersion is older than the history kept."""


class ObjectStore:
    def __init__(self, directory: Path) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self._by_type: dict[str, dict[Key, dict[str, Any]]] = {}
        self.rv = 0
        self.type_rv: dict[str, int] = {}  # type key -> resourceVersion of its last change in this process
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._oldest = 0  # events with rv > _oldest are all in history
        self.changed = threading.Condition()
        self._journal = Journal(directory)
        self._load()

    def _load(self) -> None:
        snapshot, records = self._journal.load()
        if snapshot is not None and not isinstance(snapshot, dict):
            log.warning("object snapshot in %s is not an object: skipped", self._journal.directory)
            snapshot = None
        if snapshot:
            self.rv = _int(snapshot.get("rv"))
            for entry in snapshot.get("objects") or []:
                self._load_put(
                    entry[0] if _pair(entry) else None, entry[1] if _pair(entry) else None, "snapshot"
                )
        for rec in records:
            self._load_record(rec)
        for key, obj in self.objects.items():
            self._by_type.setdefault(key[0], {})[key] = obj
        self._oldest = self.rv
        self.compact()

    def _load_record(self, rec: Any) -> None:
        if not isinstance(rec, dict) or rec.get("op") not in ("put", "del"):
            log.warning("journal record %.200r in %s cannot be loaded: skipped", rec, self._journal.directory)
            return
        self.rv = max(self.rv, _int(rec.get("rv")))
        if rec["op"] == "put":
            self._load_put(rec.get("key"), rec.get("obj"), f"journal record rv={rec.get('rv')}")
        elif (key := _key(rec.get("key"))) is not None:
            self.objects.pop(key, None)

    def _load_put(self, raw_key: Any, obj: Any, where: str) -> None:
        """Keep an object only if it has the shape every reader relies on; else one line naming it."""
        key = _key(raw_key)
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if key is None or not isinstance(meta, dict) or meta.get("name") != key[2]:
            log.warning(
                "%s in %s: object %.200r cannot be loaded: skipped", where, self._journal.directory, raw_key
            )
            return
        self.objects[key] = obj

    def compact(self) -> None:
        self._journal.compact({"rv": self.rv, "objects": [[list(k), v] for k, v in self.objects.items()]})

    def close(self) -> None:
        self.compact()
        self._journal.close()

    def get(self, key: Key) -> dict[str, Any] | None:
        obj = self.objects.get(key)
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        type_key: str,
        namespace: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the objects of one type (in one namespace), filtered before they are copied."""
        found = [
            copy.deepcopy(obj)
            for (_, ns, _), obj in self._by_type.get(type_key, {}).items()
            if (namespace is None or ns == namespace) and (where is None or where(obj))
        ]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def keys_in_namespace(self, namespace: str) -> builtins.list[Key]:
        return [k for k in self.objects if k[1] == namespace]

    def put(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` with the next resourceVersion; ADDED or MODIFIED."""
        with self.changed:
            rv = self.rv + 1
            obj["metadata"]["resourceVersion"] = str(rv)
            kind = "MODIFIED" if key in self.objects else "ADDED"
            stored = self.objects[key] = copy.deepcopy(obj)
            self._by_type.setdefault(key[0], {})[key] = stored
            self._advance(key, rv)
            self._record("put", kind, key, obj, stored)
        return obj

    def delete(self, key: Key) -> dict[str, Any] | None:
        with self.changed:
            stored = self.objects.pop(key, None)
            if stored is None:
                return None
            self._by_type.get(key[0], {}).pop(key, None)
            obj = copy.deepcopy(stored)  # the stored one is in the history: never changed
            obj["metadata"]["resourceVersion"] = str(self.rv + 1)
            self._advance(key, self.rv + 1)
            self._record("del", "DELETED", key, obj, copy.deepcopy(obj))
        return obj

    def _advance(self, key: Key, rv: int) -> None:
        """The type's version, then the store's: a lock-free reader that sees the new `rv` (the data
        plane's cache) finds the change already made, and the type's version with it."""
        self.type_rv[key[0]] = rv
        self.rv = rv

    def _record(self, op: str, kind: str, key: Key, obj: dict[str, Any], kept: dict[str, Any]) -> None:
        """Journal `obj`; `kept` goes into the watch history, shared with whoever holds it, so it is
        one that nobody changes (the stored copy, which a later write replaces instead of changing)."""
        if len(self._history) == self._history.maxlen:
            self._oldest = self._history[0].rv
        self._history.append(Event(self.rv, kind, key, kept))
        record: dict[str, Any] = {"rv": self.rv, "op": op, "key": list(key)}
        if op == "put":
            record["obj"] = obj
        if self._journal.append(record):
            self.compact()
        self.changed.notify_all()

    def events_since(self, rv: int) -> Iterator[Event]:
        if rv < self._oldest:
            raise Gone(rv)
        return (ev for ev in list(self._history) if ev.rv > rv)
