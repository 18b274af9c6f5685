"""Where a gateway sends a TLS connection it passes through: VirtualService `tls` routes. Pure.

Istio's samples expose istiod on the east-west gateway with a PASSTHROUGH Gateway and a
VirtualService bound to it (istio/istio samples/multicluster/expose-istiod.yaml: `sniHosts: ["*"]`
to `istiod`; expose-istiod-rev.yaml.tmpl: `sniHosts: [istiod-<rev>.istio-system.svc, ...]` to
`istiod-<rev>`, one per revision). The gateway's Envoy picks a filter chain by port and by the
connection's SNI, the most specific server name first (the name itself, then a `*.suffix`
wildcard, then `*`), and connects to that route's destination; with no match there is no filter
chain, and the connection is closed. A client sends the host it dials as SNI, except for an IP
address (RFC 6066 forbids one): a connection without SNI matches only `*`.
"""

from __future__ import annotations

from typing import Any

from meshwright.sandbox import dotted

EXACT, WILDCARD, ANY = 3, 2, 1


def tls_destination(
    virtual_services: list[dict[str, Any]], gateways: set[str], port: int, sni: str
) -> tuple[str, str] | None:
    """(destination host, the VirtualService's namespace) of the best route for a connection on
    `port` with `sni` through any of `gateways` ("namespace/name"); None when none matches."""
    best: tuple[int, str, str] | None = None
    for vs in virtual_services:
        ns = vs["metadata"].get("namespace", "default")
        refs = {g if "/" in g else f"{ns}/{g}" for g in dotted.get(vs, "spec.gateways", []) or []}
        if not refs & gateways:
            continue
        for route in dotted.get(vs, "spec.tls", []) or []:
            score = max((_specificity(m, port, sni) for m in route.get("match") or []), default=0)
            host = dotted.get((route.get("route") or [{}])[0], "destination.host")
            if score and host and (best is None or score > best[0]):
                best = (score, str(host), ns)
    return (best[1], best[2]) if best else None


def _specificity(match: dict[str, Any], port: int, sni: str) -> int:
    if match.get("port") not in (None, port):
        return 0
    return max((_name(str(h), sni) for h in match.get("sniHosts") or []), default=0)


def _name(pattern: str, sni: str) -> int:
    if pattern == "*":
        return ANY
    if sni and pattern == sni:
        return EXACT
    if sni and pattern.startswith("*.") and sni.endswith(pattern[1:]):
        return WILDCARD
    return 0
