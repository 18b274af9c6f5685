"""Which `helm` runs, how pyhelm3 reaches one cluster, and what helm's failures mean.

One place decides the executable (MESHWRIGHT_HELM, else the Helm that `make` installs beside the
venv's Python, else `helm` on PATH) and checks its version before anything is installed. pyhelm3's Command
for one cluster gets a kubeconfig of its own, written 0600 in a private temporary directory and
removed when the command is done with: it holds a bearer token, so it never lands anywhere else and
is never logged (pyhelm3 logs commands with values replaced by `<stdin>`; the token is in the file).
`ensure_release` installs or upgrades a release only when its chart or values changed.

pyhelm3's exceptions become meshwright's error tree here, with helm's own message in one line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pyhelm3
import pyhelm3.errors as helm_errors
import semver
import yaml

from meshwright import errors as e
from meshwright import kubeconfig as kc
from meshwright.helm_storage import Stored, StoredRelease
from meshwright.models import ChartRef, ReleaseResult
from meshwright.translate import helm_message, last_line

HELM_ENV = "MESHWRIGHT_HELM"
MIN_VERSION = (3, 14, 0)
FETCH_HINT = "run `make helm` (or `.venv/bin/python scripts/fetch_helm.py`) to install the bundled Helm"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
CHARTS = ("base", "istiod", "gateway")
# ensure_release's first look at a release that does not exist yet fails by design; pyhelm3 logs
# every failed command as a warning, which would read as a problem on every first install.
logging.getLogger("pyhelm3").setLevel(logging.ERROR)


class HelmMissing(e.PermanentError):
    """No usable helm executable: none found, or one older than meshwright supports."""


def executable() -> str:
    """The helm to run: MESHWRIGHT_HELM, else the bundled one beside the venv's Python, else PATH."""
    chosen = os.environ.get(HELM_ENV)
    if chosen:
        return chosen
    bundled = Path(sys.executable).parent / "helm"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    found = shutil.which("helm")
    if not found:
        raise HelmMissing(
            f"no helm found: set {HELM_ENV}, put helm >= 3.14 on PATH, or {FETCH_HINT}", step="helm"
        )
    return found


@functools.lru_cache(maxsize=8)
def checked_version(helm: str) -> str:
    """Helm's version (`v3.17.2`); raises HelmMissing when it does not run or is older than 3.14."""
    try:
        done = subprocess.run(
            [helm, "version", "--template", "{{ .Version }}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HelmMissing(f"cannot run helm at {helm}: {error}; {FETCH_HINT}", step="helm") from None
    match = _VERSION.match(done.stdout.strip())
    if done.returncode != 0 or not match:
        raise HelmMissing(f"{helm} did not report a version ({last_line(done.stderr)})", step="helm")
    if tuple(int(part) for part in match.groups()) < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        raise HelmMissing(f"{helm} is Helm {match.group(0)}; meshwright needs >= {need}", step="helm")
    return done.stdout.strip()


# How long a helm process may run: its own --timeout (which bounds only its waits for resources)
# plus DEADLINE_GRACE, or QUICK_DEADLINE for a command without one (status, get, list, show). helm
# sets no timeout on its API requests, so against an API server that takes the connection and never
# answers it would wait for good.
DEADLINE_GRACE = 60.0
QUICK_DEADLINE = 60.0


class HelmCommand(pyhelm3.Command):
    """pyhelm3's Command, except that the helm version is asked once per executable, not once per
    client (a client per cluster and step would start one more helm process each time), and that
    every helm process has a deadline."""

    def __init__(self, *, executable: str, **options: Any) -> None:
        super().__init__(executable=executable, **options)
        self.executable = executable
        self._version = semver.Version.parse(checked_version(executable).removeprefix("v"))

    def client_version(self) -> semver.Version:
        return self._version

    async def run(self, command: list[str], input: bytes | None = None) -> bytes:
        """pyhelm3's Command.run with a deadline. pyhelm3 starts helm through `sh -c`, and a shell
        that is killed leaves helm running with the pipes open (dash does not exec the command), so
        helm runs here as its own process group, which the deadline kills whole."""
        argv = [str(part) for part in [self.executable, *command, *self._cluster_flags()]]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        deadline = _deadline(command)
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(input), deadline)
        except (TimeoutError, asyncio.CancelledError) as stopped:
            _kill_group(proc.pid)
            await proc.wait()
            if isinstance(stopped, asyncio.CancelledError):
                raise
            raise e.Unresponsive(f"helm {command[0]} did not finish within {deadline:.0f}s") from None
        if proc.returncode != 0:
            raise _helm_error(proc.returncode or 1, stdout, stderr)
        return stdout

    def _cluster_flags(self) -> list[str]:
        flags = [("--kubeconfig", self._kubeconfig), ("--kube-context", self._kubecontext)]
        return [part for flag, value in flags if value for part in (flag, str(value))]


def _deadline(command: list[str]) -> float:
    args = [str(part) for part in command]
    if "--timeout" in args[:-1]:
        return _seconds(args[args.index("--timeout") + 1]) + DEADLINE_GRACE
    return QUICK_DEADLINE


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# pyhelm3/command.py Command.run classifies helm's stderr so, in this order; kept as is, so that
# translate.from_helm reads the same exceptions whichever run started helm.
_HELM_ERRORS: list[tuple[Callable[[str], bool], type[helm_errors.Error]]] = [
    (lambda text: "context canceled" in text, helm_errors.CommandCancelledError),
    (lambda text: "etcdserver" in text, helm_errors.ConnectionError),
    (lambda text: "release: not found" in text, helm_errors.ReleaseNotFoundError),
    (lambda text: "failed to render chart" in text, helm_errors.FailedToRenderChartError),
    (lambda text: "execution error" in text, helm_errors.FailedToRenderChartError),
    (
        lambda text: "rendered manifests contain a resource that already exists" in text,
        helm_errors.ResourceAlreadyExistsError,
    ),
    (lambda text: "is invalid" in text, helm_errors.InvalidResourceError),
    (lambda text: pyhelm3.command.CHART_NOT_FOUND.search(text) is not None, helm_errors.ChartNotFoundError),
    (lambda text: pyhelm3.command.CONNECTION_ERROR.search(text) is not None, helm_errors.ConnectionError),
]


def _helm_error(code: int, stdout: bytes, stderr: bytes) -> helm_errors.Error:
    text = stderr.decode(errors="replace").lower()
    kind = next((kind for matches, kind in _HELM_ERRORS if matches(text)), helm_errors.Error)
    return kind(code, stdout, stderr)


def offline_client() -> pyhelm3.Client:
    """A client for commands that need no cluster (`helm show chart` for preflight)."""
    helm = executable()
    return pyhelm3.Client(HelmCommand(executable=helm), executable=helm)


@contextmanager
def cluster_command(
    *, cluster: str, endpoint: str, ca_certificate: str, token: str, timeout: str = "5m"
) -> Iterator[HelmCommand]:
    """pyhelm3's Command (helm's own JSON) bound to one cluster, its kubeconfig removed on exit."""
    helm = executable()
    base64.b64decode(ca_certificate, validate=True)  # a broken CA fails here, not inside helm
    with tempfile.TemporaryDirectory(prefix="meshwright-helm-") as private:  # mode 0700
        path = Path(private) / "kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            doc = kc.with_token(cluster, server=f"https://{endpoint}", ca_data=ca_certificate, token=token)
            yaml.safe_dump(doc, out)
        yield HelmCommand(executable=helm, kubeconfig=path, kubecontext=cluster, default_timeout=timeout)


def is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "oci://"))


def locate(source: str, chart: str, version: str) -> tuple[str, str | None, str | None]:
    """(chart ref, --repo, --version) for one chart of a source: a Helm repo URL, an oci:// ref or a
    directory as `helm pull --untar` leaves it (a local chart has the version it has)."""
    if source.startswith(("http://", "https://")):
        return chart, source, version
    if source.startswith("oci://"):
        return f"{source.rstrip('/')}/{chart}", None, version
    return str(Path(source).expanduser().resolve() / chart), None, None


def resolve_charts(source: str, version: str, *, hint: str) -> list[ChartRef]:
    """Look up base, istiod and gateway (`helm show chart`) before anything is created.

    Raises one NotFound naming the source and what to do (`hint`) when any cannot be fetched.
    """
    if not is_remote(source):
        missing = [c for c in CHARTS if not (Path(source).expanduser() / c / "Chart.yaml").is_file()]
        if missing:
            raise e.NotFound(
                f"charts directory {source} has no {', '.join(missing)} chart ({hint})", step="preflight"
            )
    client = offline_client()

    async def show(chart: str) -> ChartRef:
        ref, repo, pinned = locate(source, chart, version)
        found = await client.get_chart(ref, repo=repo, version=pinned)
        meta = found.metadata
        return ChartRef(chart=chart, ref=ref, repo=repo, version=str(meta.version), name=meta.name)

    async def show_all() -> list[ChartRef]:
        return list(await asyncio.gather(*(show(c) for c in CHARTS)))

    try:
        return asyncio.run(show_all())
    except helm_errors.Error as error:
        have = repository_versions(source) if source.startswith(("http://", "https://")) else None
        if have is not None and version not in have:
            raise e.NotFound(
                f"chart repository {source} has base, istiod and gateway at {_listed(have)}, not at "
                f"{version}: set istio.version to one of those",
                step="preflight",
            ) from None
        raise e.NotFound(
            f"charts cannot be fetched from {source}: {helm_message(error)} ({hint})", step="preflight"
        ) from None


INDEX_LIMIT = 64 * 1024 * 1024  # Istio's own index.yaml lists every chart of every release


def repository_versions(url: str, *, timeout: float = 30.0) -> list[str] | None:
    """The versions a Helm repository has all of base, istiod and gateway at, newest first, from its
    `index.yaml` (what `helm show chart --repo` reads); None when that cannot be read."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/index.yaml", timeout=timeout) as answer:
            raw = answer.read(INDEX_LIMIT)
        index = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        entries = index["entries"]
        found = [{str(v["version"]) for v in entries.get(chart) or []} for chart in CHARTS]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None
    return sorted(set.intersection(*found), key=_version_key, reverse=True)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def _listed(versions: list[str], shown: int = 12) -> str:
    if not versions:
        return "no version"
    more = len(versions) - shown
    return ", ".join(versions[:shown]) + (f" and {more} older" if more > 0 else "")


# A release left mid-operation by an interrupted helm: pyhelm3 knows how to settle each of these.
_STUCK = {"pending-install", "pending-upgrade", "pending-rollback", "uninstalling"}


async def ensure_release(
    command: HelmCommand,
    ref: ChartRef,
    name: str,
    values: dict[str, Any],
    *,
    cluster: str,
    namespace: str,
    timeout: str = "5m",
    stored: StoredRelease | None = None,
    absent: bool = False,
) -> ReleaseResult:
    """Install or upgrade a release unless it is deployed with this chart version and these values
    (pyhelm3's ensure_release rule), reporting whether it installed, upgraded or left it as it was.

    pyhelm3's Client.ensure_release starts four helm processes for a new release, and each
    `helm status` it reads is parsed into resources with pure-Python YAML (istio-base's CRDs:
    tenths of a second); with ten clusters on two cores that was the larger part of an install.
    Here `helm get metadata` (no manifest) and, for a deployed release, `helm get values` decide;
    one `helm upgrade --install` acts. `stored`, the release's latest revision as helm stored it
    (meshwright.helm_storage), stands for both reads: an unchanged release then runs no helm at all;
    `absent`, that storage holds no revision of it, stands for `helm get metadata` answering "not
    found" (a first install starts one helm process). A release stuck mid-operation is settled by
    pyhelm3 first. Readiness is the caller's.
    """
    known = stored.metadata() if stored else None
    current = None if absent else known or await _metadata(command, name, namespace)
    settled = current is not None and current.get("status") in _STUCK
    if settled and current is not None:
        _refuse_live(current, cluster=cluster, timeout=timeout)
    if settled:  # pending-*: uninstalled or rolled back (a new revision)
        settle = pyhelm3.Client(command, executable=command.executable)
        await settle.get_proceedable_revision(name, namespace=namespace, timeout=timeout)
        current, stored = await _metadata(command, name, namespace), None
    if (
        current is not None
        and _deployed(current, ref)
        and (stored.config if stored else await _values(command, current, namespace)) == values
    ):
        action = "upgraded" if settled else "unchanged"  # a rollback to these values made a revision
        return _result(cluster, name, ref, current["version"], current["revision"], action)
    action = "installed" if current is None else "upgraded"
    return await _upgrade(
        command, ref, name, values, cluster=cluster, namespace=namespace, timeout=timeout, action=action
    )


async def repair(
    command: HelmCommand,
    ref: ChartRef,
    name: str,
    values: dict[str, Any],
    *,
    cluster: str,
    namespace: str,
    timeout: str = "5m",
) -> ReleaseResult:
    """Re-create what was deleted under a deployed release: `helm upgrade` with the same chart and
    values, a new revision. Helm has no other way: its upgrade creates every object of the new
    manifest that does not exist (helm/helm pkg/kube/client.go, Update: "Since the resource does not
    exist, create it"), while an unchanged release is otherwise never touched."""
    return await _upgrade(
        command, ref, name, values, cluster=cluster, namespace=namespace, timeout=timeout, action="repaired"
    )


async def _upgrade(
    command: HelmCommand,
    ref: ChartRef,
    name: str,
    values: dict[str, Any],
    *,
    cluster: str,
    namespace: str,
    timeout: str,
    action: str,
) -> ReleaseResult:
    pinned = ref.version if is_remote(ref.ref) or ref.repo else None
    release = await command.install_or_upgrade(
        name, ref.ref, values, repo=ref.repo, version=pinned, namespace=namespace,
        create_namespace=False, timeout=timeout,
    )  # fmt: skip
    version = release["chart"]["metadata"]["version"]
    return _result(cluster, name, ref, version, release["version"], action)


async def manifest(command: HelmCommand, name: str, namespace: str) -> list[dict[str, Any]]:
    """The objects a deployed release rendered (`helm get manifest`), read with libyaml when present."""
    return parse_manifest(await command.run(["get", "manifest", name, "--namespace", namespace]))


def parse_manifest(text: str | bytes) -> list[dict[str, Any]]:
    """The objects of a rendered manifest, read with libyaml when present."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if isinstance(doc, dict) and doc.get("kind")]


def manifest_objects(text: str) -> list[dict[str, Any]]:
    """Which objects a rendered manifest holds: apiVersion, kind, metadata name and namespace each.

    Parsed once per manifest text in the process: istio-base's is the same in every cluster and
    mostly CRD schemas, and a rerun's repair check of 50 clusters parsed it 50 times for the names."""
    return [
        {"apiVersion": v, "kind": k, "metadata": {"name": n, **({"namespace": ns} if ns else {})}}
        for v, k, n, ns in _identities(text)
    ]


@functools.lru_cache(maxsize=32)
def _identities(text: str) -> tuple[tuple[str, str, str, str | None], ...]:
    return tuple(
        (
            o.get("apiVersion", ""),
            o["kind"],
            (o.get("metadata") or {}).get("name", ""),
            (o.get("metadata") or {}).get("namespace"),
        )
        for o in parse_manifest(text)
    )


def _refuse_live(current: dict[str, Any], *, cluster: str, timeout: str) -> None:
    """A release mid-operation for less than helm's own timeout may be another run's helm at work:
    wait for it (a retry), never uninstall or roll back under it. Older, its helm is gone."""
    since = _parse_time(str(current.get("deployedAt") or ""))
    if since is not None and (dt.datetime.now(dt.UTC) - since).total_seconds() < _seconds(timeout):
        raise e.TransientError(
            f"release {current['name']} is {current['status']} since {current['deployedAt']}: another run's "
            "helm may be at work on it; waiting for it",
            cluster=cluster,
            step=f"install_{current['name']}",
        )


def _parse_time(text: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _seconds(timeout: str) -> float:
    """Helm's duration ("5m", "300s", "1h") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([hms])", timeout)) or 300.0


def _deployed(current: dict[str, Any], ref: ChartRef) -> bool:
    """Deployed from this chart at this version."""
    same = current.get("chart") == (ref.name or ref.chart) and current.get("version") == ref.version
    return bool(same and current.get("status") == "deployed")


async def _values(command: HelmCommand, current: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The values the release was given at that revision (`helm get values`), what pyhelm3 compares."""
    revision = int(current["revision"])
    return dict(await command.get_values(current["name"], namespace=namespace, revision=revision))


def _result(
    cluster: str, name: str, ref: ChartRef, version: Any, revision: Any, action: str
) -> ReleaseResult:
    return ReleaseResult(
        cluster=cluster,
        name=name,
        chart=ref.chart,
        version=str(version),
        revision=int(revision),
        action=action,
    )


async def _metadata(command: pyhelm3.Command, name: str, namespace: str) -> dict[str, Any] | None:
    """`helm get metadata` (Helm >= 3.13): chart, version, revision and status, or None when there
    is no such release."""
    try:
        out = await command.run(["get", "metadata", name, "--namespace", namespace, "--output", "json"])
    except helm_errors.ReleaseNotFoundError:
        return None
    return dict(json.loads(out))


def list_releases(command: pyhelm3.Command, namespace: str) -> list[dict[str, Any]]:
    """`helm list` in a namespace, as helm's JSON (name, revision, chart, app_version, status)."""
    return list(asyncio.run(command.list(namespace=namespace)))


def release_versions(
    stored: Stored | None, command: Callable[[], AbstractContextManager[HelmCommand]], namespace: str
) -> dict[str, str]:
    """What `helm list` shows of `namespace`, release name -> app version: from helm's storage
    Secrets (`stored`, no helm process) when they were read and decode, else from `helm list` run
    with `command()`."""
    listed = stored.listed() if stored else None
    if listed is not None:
        return {r.name: r.app_version for r in listed}
    with command() as helm:
        return {str(r["name"]): str(r.get("app_version", "")) for r in list_releases(helm, namespace)}


async def uninstall(command: HelmCommand, name: str, namespace: str, *, timeout: str = "5m") -> bool:
    """`helm uninstall --wait`; False when there was no such release (already gone: a rerun)."""
    if await _metadata(command, name, namespace) is None:
        return False
    await command.uninstall(name, namespace=namespace, wait=True, timeout=timeout)
    return True
