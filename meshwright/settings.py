"""meshwright's process settings, read once from the environment (`MESHWRIGHT_*`).

Where a mesh is built (sandbox state, GKE credentials) is not a process setting: it is a
`MeshwrightTarget` block (`meshwright.clients`) that the flows take as a parameter.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Tuning knobs; each is `MESHWRIGHT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="MESHWRIGHT_", frozen=True, extra="ignore")

    max_workers: int = Field(default=16, ge=1, description="task threads of one flow run")
    api_concurrency: int = Field(
        default=4, ge=1, description="GKE/Compute calls in flight at once from one process"
    )
    # GKE documents no limit on creates in flight: its API allows 3000 requests per minute per
    # project (in 100 s windows) and 100 zonal clusters per zone, and each create's node VMs are
    # Compute operations under Compute's concurrent operation quotas, answered with 403
    # rateLimitExceeded / CONCURRENT_OPERATIONS_QUOTA_EXCEEDED (cloud.google.com/kubernetes-engine/
    # quotas, cloud.google.com/compute/operations-quota; meshwright.translate retries both). 50
    # lets a fleet-sized mesh go at once; a project shared with other work sets fewer.
    max_creates_in_flight: int = Field(
        default=50,
        ge=1,
        description="GKE cluster creates one process has in flight at once (request to RUNNING); "
        "more wait for a slot",
    )
    retries: int = Field(
        default=8, ge=0, description="tries after the first of a step that failed for a transient reason"
    )
    retry_backoff: float = Field(
        default=2.0, ge=0, description="seconds; retry waits grow from it exponentially"
    )
    retry_max_delay: float = Field(
        default=60.0, ge=0, description="seconds; no wait between two tries is longer"
    )
    home: Path = Field(
        default=Path(".meshwright"),
        description="meshwright's own files: <home>/<mesh>/kubeconfig by default, and the root CA in "
        "<home>/<mesh>/root-ca/ without a Prefect API; relative to the working directory",
    )
    notify_block: str | None = Field(
        default=None,
        description="the Prefect notification block (<type>/<name>, e.g. slack-webhook/mesh-alerts) "
        "through which a failed or crashed smoke test is told; unset: no notification",
    )
    spec_roots: Annotated[tuple[Path, ...], NoDecode] = Field(
        default=(),
        description="directories, besides the project's deployments/, whose spec files a flow reads "
        "when its `spec` parameter is a path (the Run form, the API); separated by ':' as in PATH",
    )

    @field_validator("spec_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        """One environment variable holds several directories, as PATH does."""
        return tuple(p for p in value.split(os.pathsep) if p) if isinstance(value, str) else value


@functools.cache
def settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
