"""The bundled charts as a Helm chart repository: `index.yaml` and one packaged chart per version.

Istio publishes `base`, `istiod` and `gateway` at every Istio version in one repository
(https://istio-release.storage.googleapis.com/charts), and `istio.version` picks one. The sandbox
offers its stand-ins the same way at `contract.CHART_VERSIONS`, from the one source tree in
`contract.BUNDLED_CHARTS`: each version is that tree with its Chart.yaml `version` and `appVersion`
set to the version and, in istiod's values, `global.tag` (the image tag istiod's Deployment
defaults to), as Istio's release process stamps them (istio/istio
manifests/charts/istio-control/istio-discovery/values.yaml `tag:`, Chart.yaml).

What helm reads (helm/helm pkg/repo/index.go, chartrepo.go): `index.yaml` with `apiVersion: v1` and
`entries` by chart name, each version with its Chart.yaml fields, `urls` (relative ones resolve
against the repository URL) and `digest` (sha256 of the archive); an archive is a gzipped tar whose
files are under `<chart>/`. Archives are built once, deterministically (fixed times, sorted names),
so their digests do not change between starts. Pure: bytes in memory; the GCP endpoint serves them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from meshwright.sandbox.contract import BUNDLED_CHARTS, CHART_VERSIONS

CHARTS = ("base", "istiod", "gateway")
CREATED = "2026-01-01T00:00:00Z"  # every archive's stamp: the repository is the same at every start
_MTIME = 1767225600  # CREATED as a Unix time, for the tar entries and the gzip header
_TAG = re.compile(r"^(?P<indent>\s+)tag: .*$", re.MULTILINE)


@dataclass(frozen=True)
class Repository:
    """The files of the repository by name: `index.yaml` and `<chart>-<version>.tgz`."""

    files: dict[str, bytes]

    def get(self, name: str) -> bytes | None:
        return self.files.get(name)


def _stamped(chart: str, relative: str, text: str, version: str) -> str:
    """One file of a chart as it is published at `version`."""
    if relative == "Chart.yaml":
        meta = yaml.safe_load(text)
        meta["version"] = meta["appVersion"] = version
        return yaml.safe_dump(meta, sort_keys=False)
    if chart == "istiod" and relative == "values.yaml":
        return _global_tag(text, version)
    return text


def _global_tag(values: str, version: str) -> str:
    """istiod's values with `global.tag` at `version` (pilot.tag stays "", so the global one counts)."""
    start = values.index("\nglobal:\n")
    head, tail = values[:start], values[start:]
    return head + _TAG.sub(lambda m: f"{m.group('indent')}tag: {version}", tail, count=1)


def package(chart: str, version: str, *, source: Path = BUNDLED_CHARTS) -> bytes:
    """`helm package` of one bundled chart at `version`: a gzipped tar of `<chart>/...`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        root = source / chart
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            data = _stamped(chart, relative, path.read_text(), version).encode()
            info = tarfile.TarInfo(f"{chart}/{relative}")
            info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=_MTIME)


def _entry(chart: str, version: str, archive: bytes, source: Path) -> dict[str, object]:
    meta = yaml.safe_load(_stamped(chart, "Chart.yaml", (source / chart / "Chart.yaml").read_text(), version))
    return {
        **meta,
        "created": CREATED,
        "digest": hashlib.sha256(archive).hexdigest(),
        "urls": [f"{chart}-{version}.tgz"],
    }


def build(versions: tuple[str, ...] = CHART_VERSIONS, *, source: Path = BUNDLED_CHARTS) -> Repository:
    """Every chart at every version, and the index that lists them (newest first, as helm sorts)."""
    files: dict[str, bytes] = {}
    entries: dict[str, list[dict[str, object]]] = {}
    for chart in CHARTS:
        for version in sorted(versions, key=_semver, reverse=True):
            archive = package(chart, version, source=source)
            files[f"{chart}-{version}.tgz"] = archive
            entries.setdefault(chart, []).append(_entry(chart, version, archive, source))
    index = {"apiVersion": "v1", "entries": entries, "generated": CREATED}
    files["index.yaml"] = yaml.safe_dump(index, sort_keys=False).encode()
    return Repository(files)


@functools.lru_cache(maxsize=1)
def bundled() -> Repository:
    """The sandbox's repository: built on first use, then kept for the life of the process."""
    return build()


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])
