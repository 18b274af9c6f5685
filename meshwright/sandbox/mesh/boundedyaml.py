"""YAML that someone else wrote, loaded within the bounds Go's YAML decoder keeps.

istiod loads a remote secret's kubeconfig with client-go's `clientcmd.Load`, which decodes YAML with
sigs.k8s.io/yaml (goyaml.v2). That decoder refuses nesting deeper than 10000 levels (scannerc.go,
`max_flow_level` / `max_indents`: "yaml: exceeded max depth of 10000") and a document whose aliases
make up most of what it decodes (decode.go, `allowedAliasRatio`: "yaml: document contains excessive
aliasing"), so a deep or alias-bomb kubeconfig is a load error there and costs nothing.

PyYAML keeps neither bound: its composer recurses (RecursionError long before 10000 levels), its
scanner slows down with the square of the depth (20000 levels: 20 s), and an alias is shared, so
whoever walks the result expands it (`str()` of a 427-byte alias bomb is a gigabyte). `load`
therefore first counts over the parser's event stream, which does not recurse, the way Go's decoder
counts, and composes only a document that passed. Both passes use libyaml's parser when PyYAML was
built with it (`CSafeLoader`: the same events and documents, some ten times faster); a document
libyaml cannot load is loaded again by PyYAML's own, so that the error is the one it has always been
(libyaml's scanner stops at 1000 levels on its own, before the count reaches its bound).
Divergence, on purpose: the depth bound is 100,
not 10000 (Python could not compose 10000 levels, and no kubeconfig nests more than six deep).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 100  # goyaml's is 10000; see the module docstring
TOO_DEEP = f"yaml: exceeded max depth of {MAX_DEPTH}"
EXCESSIVE_ALIASING = "yaml: document contains excessive aliasing"
_RATIO_LOW, _RATIO_HIGH = 400_000, 4_000_000  # goyaml's alias_ratio_range_low / _high
_Fast: type[Any] | None = getattr(yaml, "CSafeLoader", None)


class Refused(ValueError):
    """The document is one Go's YAML decoder would refuse; the message is its error."""


def allowed_alias_ratio(decoded: int) -> float:
    """goyaml's share of decodes that may come through aliases: 99% for small documents, 10% for huge."""
    if decoded <= _RATIO_LOW:
        return 0.99
    if decoded >= _RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _RATIO_LOW) / (_RATIO_HIGH - _RATIO_LOW)


class _Counter:
    """Go's decodeCount and aliasCount, kept over parser events instead of decoded nodes."""

    def __init__(self) -> None:
        self.decoded = self.aliased = 0
        self.sizes: dict[str, int] = {}  # anchor -> nodes decoded under it
        self.open: list[tuple[str | None, int]] = []  # (anchor, decodes at its start) per collection

    def node(self, size: int, *, alias: bool) -> None:
        self.decoded += size
        self.aliased += size if alias else 0
        if (
            self.aliased > 100
            and self.decoded > 1000
            and self.aliased / self.decoded > allowed_alias_ratio(self.decoded)
        ):
            raise Refused(EXCESSIVE_ALIASING)

    def event(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self.open) >= MAX_DEPTH:
                raise Refused(TOO_DEEP)
            self.open.append((event.anchor, self.decoded))
            self.node(1, alias=False)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = self.open.pop()
            if anchor:
                self.sizes[anchor] = self.decoded - start
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                self.sizes[event.anchor] = 1
            self.node(1, alias=False)
        elif isinstance(event, yaml.AliasEvent):
            self.node(self.sizes.get(event.anchor or "", 1), alias=True)


def check(raw: bytes | str, *, loader: type[Any] = yaml.SafeLoader) -> None:
    """Refused when Go's decoder would refuse the document for its depth or its aliases."""
    counter = _Counter()
    for event in yaml.parse(raw, Loader=loader):
        counter.event(event)


def load(raw: bytes | str) -> Any:
    """The document, if Go's decoder would decode it (and PyYAML can); Refused or yaml.YAMLError if not."""
    if _Fast is not None:
        try:
            check(raw, loader=_Fast)
            return yaml.load(raw, Loader=_Fast)  # libyaml's safe loader
        except yaml.YAMLError:
            pass  # PyYAML's own says why, below
    check(raw)
    return yaml.safe_load(raw)
