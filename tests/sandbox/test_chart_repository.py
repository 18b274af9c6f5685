"""The bundled charts as a Helm chart repository: every version of contract.CHART_VERSIONS, as Istio's
repository has every Istio version, read by the real helm over the sandbox's GCP endpoint."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request

import yaml

from meshwright import helm
from meshwright.sandbox import chartrepo
from meshwright.sandbox.contract import CHART_VERSIONS, CHARTS_PATH
from meshwright.sandbox.world import World


def _members(archive: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}


def test_the_index_lists_each_chart_at_each_version_with_its_archives_digest() -> None:
    repo = chartrepo.bundled()
    index = yaml.safe_load(repo.files["index.yaml"])
    assert set(CHART_VERSIONS) >= {"1.29.8", "1.30.3"}
    for chart in ("base", "istiod", "gateway"):
        entries = index["entries"][chart]
        assert sorted(e["version"] for e in entries) == sorted(CHART_VERSIONS)
        for entry in entries:
            archive = repo.files[entry["urls"][0]]
            assert entry["digest"] == hashlib.sha256(archive).hexdigest()
            assert entry["appVersion"] == entry["version"]


def test_an_archive_is_the_chart_stamped_with_its_version_and_image_tag() -> None:
    files = _members(chartrepo.package("istiod", "1.29.8"))
    meta = yaml.safe_load(files["istiod/Chart.yaml"])
    assert (meta["name"], meta["version"], meta["appVersion"]) == ("istiod", "1.29.8", "1.29.8")
    values = yaml.safe_load(files["istiod/values.yaml"])
    assert (values["global"]["tag"], values["pilot"]["tag"]) == ("1.29.8", "")
    assert "istiod/templates/revision-tags.yaml" in files
    assert chartrepo.package("istiod", "1.29.8") == chartrepo.package(
        "istiod", "1.29.8"
    )  # same digest at every start


def test_helm_picks_the_version_it_is_asked_for_from_the_sandbox_repository(world: World) -> None:
    url = f"{world.base_url()}{CHARTS_PATH}"
    refs = helm.resolve_charts(url, "1.29.8", hint="")
    assert [(r.chart, r.version, r.repo) for r in refs] == [
        ("base", "1.29.8", url),
        ("istiod", "1.29.8", url),
        ("gateway", "1.29.8", url),
    ]
    with urllib.request.urlopen(f"{url}/istiod-1.30.3.tgz", timeout=5) as answer:
        assert answer.headers["Content-Type"] == "application/gzip"
