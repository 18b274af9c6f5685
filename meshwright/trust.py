"""Where a mesh's root CA lives between runs, so that a rerun never changes it.

With a Prefect API configured (PREFECT_API_URL: a server or Prefect Cloud), the root is a Prefect
Secret block `meshwright-<mesh>-root-ca`: where a Prefect user looks for secrets, and where a
rerun on another worker finds it. Without one (a local run on an ephemeral API), it is two files
under `<home>/<mesh>/root-ca/` (home: `MESHWRIGHT_HOME`, default `.meshwright`), the key with mode
0600. A user may bring their own root (`istio.root_ca` in the spec); then nothing is stored.

The first writer wins: two runs that race to create the root both end up with the one that was
saved first. Nothing here logs or returns a key; callers get a KeyPair (whose repr hides the key)
or a fingerprint.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from meshwright.errors import InvalidRequest, PermanentError
from meshwright.files import FileRefused, read_regular
from meshwright.pki import KeyPair, new_root_ca, root_from_pem
from meshwright.settings import settings
from meshwright.spec import MeshSpec
from meshwright.spec_source import spec_roots

BLOCK_NAME = "meshwright-{mesh}-root-ca"
STEP = "root_ca"
# A PEM certificate or key is a few KiB; a bigger file is not one.
MAX_ROOT_CA_BYTES = 1024 * 1024


class RootStore(Protocol):
    where: str

    def load(self) -> KeyPair | None: ...

    def create(self, root: KeyPair) -> KeyPair:
        """Save `root` unless one is there already; return the one that is stored."""

    def delete(self) -> bool:
        """Remove the stored root; False when there was none."""
        ...


class FileStore:
    """Two PEM files; the key is created 0600 and never rewritten."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.where = f"files in {directory}"

    @property
    def cert(self) -> Path:
        return self.directory / "root-cert.pem"

    @property
    def key(self) -> Path:
        return self.directory / "root-key.pem"

    def load(self) -> KeyPair | None:
        if not self.key.exists():
            return None
        return KeyPair(self.cert.read_bytes(), self.key.read_bytes())

    def create(self, root: KeyPair) -> KeyPair:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Write the certificate first: a key file means a complete root.
        _write_new(self.cert.with_suffix(".pem.tmp"), root.cert_pem, 0o644, exclusive=False)
        try:
            _write_new(self.key, root.key_pem, 0o600, exclusive=True)
        except FileExistsError:
            self.cert.with_suffix(".pem.tmp").unlink(missing_ok=True)
            stored = self.load()
            assert stored is not None
            return stored
        os.replace(self.cert.with_suffix(".pem.tmp"), self.cert)
        return root

    def delete(self) -> bool:
        found = self.key.exists()
        for path in (self.key, self.cert, self.cert.with_suffix(".pem.tmp")):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: someone keeps something of their own there
            self.directory.rmdir()
        return found


def _write_new(path: Path, data: bytes, mode: int, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


class BlockStore:
    """A Prefect Secret block holding {"cert": PEM, "key": PEM}."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.where = f"Prefect Secret block {name!r}"

    def load(self) -> KeyPair | None:
        from prefect.blocks.system import Secret

        try:
            block: Any = Secret.load(self.name)
        except ValueError:  # Prefect's "Unable to find block document named ..."
            return None
        value = block.get()
        if isinstance(value, str):
            value = json.loads(value)
        return KeyPair(value["cert"].encode(), value["key"].encode())

    def create(self, root: KeyPair) -> KeyPair:
        from prefect.blocks.system import Secret

        document = json.dumps({"cert": root.cert_pem.decode(), "key": root.key_pem.decode()})
        secret: Any = Secret(value=SecretStr(document))
        try:
            secret.save(self.name, overwrite=False)
        except ValueError:  # saved by a run that raced us: theirs wins
            stored = self.load()
            if stored is None:
                raise
            return stored
        return root

    def delete(self) -> bool:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                document = client.read_block_document_by_name(self.name, block_type_slug="secret")
            except ObjectNotFound:
                return False
            client.delete_block_document(document.id)
        return True


def forget_root(spec: MeshSpec, store: RootStore) -> str:
    """What happens to the mesh's stored root when the mesh goes: removed, unless the spec brings its
    own (nothing is stored) or says `istio.keep_root`. Returns what was done, for the log."""
    if spec.istio.root_ca is not None:
        return "brought by the spec (istio.root_ca): nothing stored"
    if spec.istio.keep_root:
        return f"kept in {store.where} (istio.keep_root)"
    return f"removed from {store.where}" if store.delete() else "none stored"


def store_for(mesh: str, *, state_dir: Path | None = None) -> RootStore:
    """A Secret block when a Prefect API is configured, else files under the state directory
    (meshwright's home unless given)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return BlockStore(BLOCK_NAME.format(mesh=mesh))
    return FileStore((state_dir or settings().home) / mesh / "root-ca")


def check_brought_root(spec: MeshSpec) -> None:
    """Raise InvalidRequest, naming every problem, unless `istio.root_ca` (if given) names two regular
    files of at most MAX_ROOT_CA_BYTES that hold a CA certificate and its key.

    For a building flow's preflight: a wrong root is found before any cluster is created, not by
    the trust stage after the clusters (which reads the files again, through `brought_root`).
    """
    brought_root(spec)


def brought_root(spec: MeshSpec) -> KeyPair | None:
    """The user's own root from `istio.root_ca`, checked; None when the spec names none."""
    given = spec.istio.root_ca
    if given is None:
        return None
    cert, key = _read_root_files({"cert": given.cert, "key": given.key})
    try:
        return root_from_pem(cert, key)
    except ValueError as e:
        raise InvalidRequest(f"istio.root_ca: {e}", step=STEP) from None


def _read_root_files(paths: dict[str, str]) -> tuple[bytes, bytes]:
    """Both files' bytes, or InvalidRequest naming every problem (a FIFO would hang the run, a
    device such as /dev/zero never end, so neither is read)."""
    read: dict[str, bytes] = {}
    problems = []
    for field, path in paths.items():
        where = Path(path).expanduser().resolve()
        if not any(where.is_relative_to(root) for root in spec_roots()):
            # The flow reads these files on the runner, for whoever may start a run: the rule of spec
            # paths applies, or a run could sign the mesh's intermediates with any CA key there.
            problems.append(
                f"istio.root_ca.{field}: {path} is not under the project's deployments/ or a "
                "directory of MESHWRIGHT_SPEC_ROOTS (the runner reads only there)"
            )
            continue
        try:
            read[field] = read_regular(where, limit=MAX_ROOT_CA_BYTES)
        except FileRefused as e:
            problems.append(f"istio.root_ca.{field}: {path} is {e}")
        except OSError as e:
            problems.append(f"istio.root_ca.{field}: cannot read {path}: {e.strerror}")
    if problems:
        raise InvalidRequest("; ".join(problems), step=STEP)
    return read["cert"], read["key"]


def ensure_root(spec: MeshSpec, store: RootStore) -> tuple[KeyPair, str]:
    """The mesh's root and where it came from: the user's, the stored one, or a new one saved now."""
    brought = brought_root(spec)
    if brought is not None:
        return brought, "istio.root_ca"
    stored = _load(store)
    if stored is not None:
        return stored, store.where
    return store.create(new_root_ca()), f"new, saved as {store.where}"


def _load(store: RootStore) -> KeyPair | None:
    try:
        return store.load()
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise PermanentError(
            f"the stored root CA ({store.where}) cannot be read: {e.__class__.__name__}", step=STEP
        ) from None
