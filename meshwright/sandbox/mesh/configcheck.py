"""Istio's validation of the VirtualService matches the data plane reads, and Envoy's RE2 matching. Pure.

istiod's validation webhook (istio/istio `pkg/webhooks/validation/server/server.go`) refuses a
config with `configuration is invalid: <errors>`; for an HTTP route's matches
(`pkg/config/validation/virtualservice.go` `validateHTTPRouteMatchRequest`) a `uri` regex must be
non-empty, at most 1024 characters and compile as RE2 (`validation.go` `validateStringRegexp`, with
Go's regexp error text); `scheme`, `method`, `authority`, `headers`, `queryParams` and
`withoutHeaders` are StringMatches whose prefix may not be empty either. Several errors read as
hashicorp/go-multierror writes them.

Envoy matches with RE2, in linear time, and refuses a regex whose RE2 program is larger than
`re2.max_program_size.error_level`, which Istio sets to 32768 (`pkg/bootstrap/config.go`). A regex
that got past admission anyway (no webhook reached it) never matches here, and never raises.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

MAX_REGEX_LENGTH = 1024
ENVOY_MAX_PROGRAM_SIZE = 32768
RE2_SYNTAX = "Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"
STRING_MATCHES = ("scheme", "method", "authority")
MAPS_OF_MATCHES = ("headers", "queryParams", "withoutHeaders")
# RE2's error texts (re2/regexp.cc) in the words of Go's regexp/syntax, which istiod compiles with.
GO_ERRORS = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
    "pattern too large - compile failed": "expression too large",
}


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would write every refused pattern to stderr (the daemon's log)
    return options


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> tuple[Any, str | None]:
    """The RE2 program for `pattern` and None, or None and Go's error text."""
    try:
        return re2.compile(pattern, _options()), None
    except re2.error as e:
        text = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        code, _, arg = text.partition(": ")
        return None, f"error parsing regexp: {GO_ERRORS.get(code, code)}: `{arg or pattern}`"


def regex_error(pattern: str, where: str) -> str | None:
    """What Istio's validation says of a StringMatch regex at `where`; None when it passes."""
    if pattern == "":
        return f'"{where}": regex string match should not be empty'
    if len(pattern) > MAX_REGEX_LENGTH:
        return f'"{where}": regex is too large, max length allowed is {MAX_REGEX_LENGTH}'
    _, error = _compiled(pattern)
    return None if error is None else f'"{where}": {error}; {RE2_SYNTAX}'


def fullmatch(pattern: str, text: str) -> bool:
    """Envoy's safe_regex match of a whole value: RE2, linear time; a pattern Envoy would refuse
    (invalid, or a program over ENVOY_MAX_PROGRAM_SIZE) matches nothing."""
    program, error = _compiled(pattern)
    if error is not None or program.programsize > ENVOY_MAX_PROGRAM_SIZE:
        return False
    return program.fullmatch(text) is not None


def _string_match(match: Any, where: str) -> str | None:
    if not isinstance(match, dict):
        return None
    if "prefix" in match and match["prefix"] == "" and where != "uri":  # uri allows an empty prefix
        return f'"{where}": prefix string match should not be empty'
    if "regex" in match:
        if where == "withoutHeaders" and match["regex"] == "*":
            return None  # not a regex: Istio reads it as "present"
        return regex_error(str(match["regex"]), where)
    return None


def _match_errors(match: dict[str, Any]) -> list[str]:
    errors = [_string_match(match.get(f), f) for f in ("uri", *STRING_MATCHES)]
    for field in MAPS_OF_MATCHES:
        values = match.get(field)
        errors += [_string_match(v, field) for v in (values.values() if isinstance(values, dict) else [])]
    return [e for e in errors if e]


def virtual_service_errors(obj: dict[str, Any]) -> list[str]:
    """Every error Istio's validation finds in the HTTP matches of a VirtualService, in its order."""
    errors: list[str] = []
    routes = (obj.get("spec") or {}).get("http")
    for route in routes if isinstance(routes, list) else []:
        matches = route.get("match") if isinstance(route, dict) else None
        for match in matches if isinstance(matches, list) else []:
            errors += _match_errors(match) if isinstance(match, dict) else []
    return errors


def multierror(errors: list[str]) -> str:
    """hashicorp/go-multierror's text: one error as it is, several as a list."""
    if len(errors) == 1:
        return errors[0]
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"
