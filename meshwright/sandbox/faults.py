"""Fault injection: rules that make matching requests fail, slow down, or make operations fail.

Loaded at start from YAML (`--faults FILE`) and replaced at runtime through `/_sandbox/faults`.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Api = Literal["gke", "compute", "kube", "iam", "serviceusage"]


class FaultRule(BaseModel):
    """One rule; every condition given must match. See the README's fault-injection section."""

    model_config = ConfigDict(extra="forbid")

    api: Api
    method: str | None = None
    path: str | None = None
    cluster: str | None = None
    operation: str | None = None
    status: int | None = Field(default=None, ge=400, le=599)
    message: str | None = None
    # Google's reason for the status, in Compute's errors[]: a concurrent operation quota is 403
    # rateLimitExceeded (cloud.google.com/compute/operations-quota), not a missing permission's 403.
    reason: str | None = None
    fail: str | None = None
    delay: float | None = Field(default=None, ge=0)
    times: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, gt=0, le=1)

    @field_validator("path")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:  # not a ValueError: pydantic would let it escape as a crash
                raise ValueError(f"`path` is not a regular expression: {err}") from None
        return v

    @model_validator(mode="after")
    def _effect(self) -> FaultRule:
        if self.operation and self.fail is None:
            raise ValueError("an `operation` rule needs `fail: <message>`")
        if self.fail is not None and not self.operation:
            raise ValueError("`fail` goes with `operation` (e.g. CREATE_CLUSTER)")
        if not self.operation and self.status is None and self.delay is None:
            raise ValueError("a rule needs an effect: status, delay, or operation+fail")
        if self.times is not None and self.probability is not None:
            raise ValueError("use either `times` or `probability`, not both")
        return self


@dataclass(frozen=True)
class Effect:
    delay: float = 0.0
    status: int | None = None
    message: str | None = None
    reason: str | None = None


class Faults:
    """The active rules, with how often each has fired. Thread-safe."""

    def __init__(self, rules: list[FaultRule] | None = None, *, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._fired: list[int] = []
        self._rng = rng or random.Random()
        self.replace(rules or [])

    @staticmethod
    def parse(data: Any) -> list[FaultRule]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise ValueError("faults must be a list of rules")
        return [FaultRule.model_validate(item) for item in data]

    def replace(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)
            self._fired = [0] * len(rules)

    def extend(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules += rules
            self._fired += [0] * len(rules)

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {**r.model_dump(exclude_none=True), "fired": n}
                for r, n in zip(self._rules, self._fired, strict=True)
            ]

    def on_request(self, *, api: Api, method: str, path: str, cluster: str | None) -> Effect:
        """The combined effect of the request rules that match (delays add up, first status wins)."""
        delay, status, message, reason = 0.0, None, None, None
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.operation or not self._matches(
                    rule, api=api, method=method, path=path, cluster=cluster
                ):
                    continue
                if not self._fire(i, rule):
                    continue
                delay += rule.delay or 0.0
                if status is None and rule.status is not None:
                    status, message, reason = rule.status, rule.message, rule.reason
        return Effect(delay=delay, status=status, message=message, reason=reason)

    def on_operation(self, *, api: Api, operation: str, cluster: str | None) -> str | None:
        """The failure message for a new long-running operation, if a rule says it must fail."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.operation != operation or rule.api != api:
                    continue
                if rule.cluster is not None and rule.cluster != cluster:
                    continue
                if self._fire(i, rule):
                    return rule.fail
        return None

    def _matches(self, rule: FaultRule, *, api: str, method: str, path: str, cluster: str | None) -> bool:
        return (
            rule.api == api
            and (rule.method is None or rule.method.upper() == method)
            and (rule.path is None or re.search(rule.path, path) is not None)
            and (rule.cluster is None or rule.cluster == cluster)
        )

    def _fire(self, i: int, rule: FaultRule) -> bool:
        if rule.times is not None and self._fired[i] >= rule.times:
            return False
        if rule.probability is not None and self._rng.random() >= rule.probability:
            return False
        self._fired[i] += 1
        return True
