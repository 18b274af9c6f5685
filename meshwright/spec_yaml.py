"""A spec's YAML text into a document, refusing what PyYAML's safe loader lets through silently.

The safe loader keeps the last of two equal keys, lets a value its tag cannot hold (`2001-02-30`,
`!!float x`) escape as a ValueError from deep inside, and expands aliases into documents far
larger than their text. Here a duplicate key is a problem naming the key's path and both lines,
an unreadable value is a YAML problem with its line, and a document of more than MAX_NODES values
once aliases are expanded is refused before anything walks it.

Problems never quote the text: keys appear as `key_name` shows them, PyYAML's own reasons
escaped and cut. Nothing here knows the spec's fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from meshwright.errors import SpecInvalid, SpecProblem, key_name

# A mesh spec holds about a hundred values; this many means aliases multiplied a small text.
MAX_NODES = 100_000
_REASON_MAX = 100
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """The safe loader, whose value errors become YAML errors at the value's line."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError):
            kind = node.tag.rsplit(":", 1)[-1]
            problem = f"the value cannot be read as {kind}"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


def load_document(text: str, *, source: str) -> tuple[Any, list[SpecProblem]]:
    """The document of one YAML text, and its duplicate keys (the later value is the one kept).

    Raises SpecInvalid with one problem for text that is not YAML or too large once expanded.
    """
    try:
        return _load(text, source=source)
    except yaml.YAMLError as e:
        raise SpecInvalid([_yaml_problem(e)], source=source) from None
    except RecursionError:
        raise SpecInvalid([SpecProblem("", "not valid YAML: nested too deeply")], source=source) from None


def _load(text: str, *, source: str) -> tuple[Any, list[SpecProblem]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        if _expanded_size(node, {}, set()) > MAX_NODES:
            reason = f"more than {MAX_NODES} values once its aliases are expanded; a spec is far smaller"
            raise SpecInvalid([SpecProblem("", reason)], source=source)
        duplicates = list(_duplicate_keys(node, "", loader, set()))
        return loader.construct_document(node), duplicates
    finally:
        loader.dispose()


def _yaml_problem(error: yaml.YAMLError) -> SpecProblem:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    # The reason only: str(error) of a marked error quotes the lines around the mark.
    context, problem = getattr(error, "context", None), getattr(error, "problem", None)
    if problem is None:
        problem = str(error).splitlines()[0]
    elif context:
        problem = f"{context}, {problem}"
    return SpecProblem(where, f"not valid YAML: {_escaped(problem)}")


def _escaped(text: str) -> str:
    shown = ascii(text)[1:-1]
    return shown if len(shown) <= _REASON_MAX else shown[: _REASON_MAX - 3] + "..."


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _expanded_size(node: Node, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values the document holds once every alias is copied out (each node counted once
    per place it appears), computed without copying; an alias inside its own anchor is endless."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_:
        return MAX_NODES + 1
    open_.add(id(node))
    size = 1 + sum(_expanded_size(child, sizes, open_) for child in _children(node))
    open_.discard(id(node))
    sizes[id(node)] = size
    return size


def _duplicate_keys(node: Node, path: str, loader: _Loader, seen: set[int]) -> Iterator[SpecProblem]:
    """Every key given twice in one mapping, at the path of the place the mapping first appears."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}[{i}]", loader, seen)
    elif isinstance(node, MappingNode):
        yield from _duplicates_in(node, path, loader, seen)


def _duplicates_in(node: MappingNode, path: str, loader: _Loader, seen: set[int]) -> Iterator[SpecProblem]:
    first_line: dict[Any, int] = {}
    for key_node, value in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE:
            continue  # a merge (<<) may be overridden; a key that is a list fails as unhashable
        key = loader.construct_object(key_node)
        here = f"{path}.{key_name(key)}" if path else key_name(key)
        line = key_node.start_mark.line + 1
        if key in first_line:
            reason = f"this key is given twice (lines {first_line[key]} and {line}); keep one"
            yield SpecProblem(here, reason)
        else:
            first_line[key] = line
        yield from _duplicate_keys(value, here, loader, seen)
