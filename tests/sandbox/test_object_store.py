"""The object store's watch history keeps each change as it was, whatever happens to the objects after."""

from __future__ import annotations

from pathlib import Path

from meshwright.sandbox.kube.store.objects import ObjectStore


def test_the_history_keeps_each_version_as_stored_whatever_callers_do_with_theirs(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    key = ("/configmaps", "default", "c")
    mine = store.put(key, {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}})
    mine["data"]["a"] = "changed by the caller after the write"
    store.put(key, {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "2"}})
    listed = store.list("/configmaps")
    listed[0]["data"]["a"] = "changed by a reader"
    deleted = store.delete(key)
    assert deleted is not None
    deleted["metadata"]["name"] = "changed by the deleter"
    events = [
        (e.type, e.obj["metadata"]["resourceVersion"], e.obj["data"]["a"]) for e in store.events_since(0)
    ]
    assert events == [("ADDED", "1", "1"), ("MODIFIED", "2", "2"), ("DELETED", "3", "2")]
    assert [e.obj["metadata"]["name"] for e in store.events_since(0)] == ["c"] * 3
    store.close()
