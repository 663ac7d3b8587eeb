"""The artifact store: every run's files on any fsspec URL.

Layout::

    {root}/{name}/{version}/{action}/{run_ts}/manifest.json   the commit, written last
    {root}/{name}/{version}/{action}/{run_ts}/...             the run's files
    {root}/{name}/{version}/_aliases/{alias}.json             where an alias points now
    {root}/{name}/{version}/_aliases/history/{alias}/{ts}.json   every move, never rewritten
    {root}/{name}/{version}/{action}/{run_ts}/manifest.json.staged   a publishing run's commit-to-be
    {root}/{name}/{version}/_scheduler/lease.json             which scheduler runs the service (runs/lease.py)
    {root}/{name}/{version}/_latest/{kind}.json               where ``latest`` is, claimed at commit (runs/latest.py)

A folder without a manifest is invisible to every reader. Manifests are
created exclusively, so a committed run is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path

import fsspec

from batchcast.errors import IntegrityError, MissingExtra, RunExists, RunNotFound, StoreError
from batchcast.redaction import redact
from batchcast.runs import atomic
from batchcast.runs.aliases import ALIASES, Aliases, is_alias
from batchcast.runs.latest import Latest
from batchcast.runs.listed import Listed
from batchcast.runs.manifest import MANIFEST, FileEntry, Manifest, is_run_id
from batchcast.runs.translate import translated

log = logging.getLogger("batchcast")
STAGED = f"{MANIFEST}.staged"

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
CHUNK = 1 << 20
# Object stores upload in parts of this size (S3's minimum is 5 MiB) and read
# ahead as much: memory stays at a few blocks whatever the file's size.
BLOCK = 8 << 20


def _exists(run_id: str) -> RunExists:
    return RunExists(f"run {run_id} is already committed", "runs are immutable; start a new run instead")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore(Aliases, Latest):
    """Runs, manifests, aliases (:class:`Aliases`) and ``latest`` (:class:`Latest`) under one fsspec URL."""

    def __init__(self, url: str, **storage_options):
        self.url = url
        try:
            # Credentials and endpoints come from the environment (AWS chain,
            # ADC, AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST), never from the spec.
            self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError:
            scheme = url.split("://", 1)[0]
            raise MissingExtra(f"the {scheme}:// artifact store", EXTRAS.get(scheme, scheme)) from None
        except ValueError as exc:  # fsspec knows no such protocol
            raise StoreError(f"artifact store {redact(url)}: {exc}",
                             "use a folder, s3://, gs:// or another fsspec protocol in [storage] url") from None
        self.root = self.root.rstrip("/")
        self._read = Listed()

    def _fresh(self) -> None:
        # s3fs and gcsfs cache listings per process; other processes (a worker,
        # the scheduler, a colleague) commit runs behind that cache's back.
        self.fs.invalidate_cache()

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # -- writing a run --------------------------------------------------

    @translated
    def put_file(self, run_id: str, rel: str, local: Path) -> FileEntry:
        """Stream ``local`` to ``{run}/{rel}``, hashing as it goes."""
        self.refuse_committed(run_id)
        target = self._path(run_id, rel)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with open(local, "rb") as src, self.fs.open(target, "wb", block_size=BLOCK) as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        return FileEntry(sha256=digest.hexdigest(), size=size)

    @translated
    def put_dir(self, run_id: str, prefix: str, local_dir: Path) -> dict[str, FileEntry]:
        """Upload every file below ``local_dir`` to ``{run}/{prefix}/...``."""
        entries = {}
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            rel = f"{prefix}/{path.relative_to(local_dir).as_posix()}"
            entries[rel] = self.put_file(run_id, rel, path)
        return entries

    def url_of(self, run_id: str, rel: str) -> str:
        """The full URL of a run's file, for a process that writes it itself (a Beam worker)."""
        return self.fs.unstrip_protocol(self._path(run_id, rel))

    def copy_out(self, run_id: str, rel: str, local: Path | None) -> FileEntry:
        """The sha256 and size of a file someone else wrote into the run's folder, copied to ``local`` as hashed."""
        digest, size = hashlib.sha256(), 0
        with self.fs.open(self._path(run_id, rel), "rb", block_size=BLOCK) as src, \
                (open(local, "wb") if local else contextlib.nullcontext()) as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if dst:
                    dst.write(chunk)
        return FileEntry(sha256=digest.hexdigest(), size=size)

    @translated
    def commit(self, manifest: Manifest) -> Manifest:
        """Write the manifest, sealed, which makes the run exist; RunExists if it already does."""
        manifest = manifest.sealed()
        data = manifest.model_dump_json(indent=2).encode()
        node = self._claim(manifest)
        if not atomic.create_exclusive(self.fs, self._path(manifest.run_id, MANIFEST), data):
            raise _exists(manifest.run_id)
        self._claimed(manifest, node)
        return manifest

    # A run that publishes rows commits in two steps around the warehouse's own commit (actions/execution.py):
    # every byte of the manifest is in the store before the rows become visible, and the commit after is a link.

    @translated
    def stage(self, manifest: Manifest) -> Manifest:
        """Write the sealed manifest beside the commit, as ``manifest.json.staged``; no reader looks there."""
        manifest = manifest.sealed()
        self.refuse_committed(manifest.run_id)
        atomic.replace(self.fs, self._path(manifest.run_id, STAGED), manifest.model_dump_json(indent=2).encode())
        return manifest

    @translated
    def commit_staged(self, run_id: str) -> Manifest:
        """Make the staged manifest the commit (no new bytes on a local folder); RunExists if it was committed."""
        staged = self.staged(run_id)
        node = self._claim(staged) if staged else None  # without one, the link below fails as it always did
        if not atomic.link_exclusive(self.fs, self._path(run_id, STAGED), self._path(run_id, MANIFEST)):
            raise _exists(run_id)
        self._claimed(staged, node)
        self.unstage(run_id)
        return staged  # the very bytes now committed

    @translated
    def staged(self, run_id: str) -> Manifest | None:
        """The manifest a run staged and did not commit (a process killed between the two steps), or None."""
        try:
            return Manifest.read(self.fs.cat_file(self._path(run_id, STAGED)), f"{run_id}/{STAGED}")
        except FileNotFoundError:
            return None

    @translated
    def unstage(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(run_id, STAGED))

    @translated
    def discard(self, run_id: str) -> None:
        """Delete the files of a run that committed nothing (a full store's half upload keeps it full)."""
        self.refuse_committed(run_id)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(run_id), recursive=True)

    @translated
    def refuse_committed(self, run_id: str) -> None:
        self._fresh()
        if self.fs.exists(self._path(run_id, MANIFEST)):
            raise RunExists(f"run {run_id} is already committed; its files cannot change",
                            "start a new run instead")

    # -- reading runs ---------------------------------------------------

    @translated
    def manifest(self, run_id: str) -> Manifest:
        """The committed manifest of ``run_id``; RunNotFound if there is none."""
        if not is_run_id(run_id):  # a path inside the store, never '..' or a glob
            raise RunNotFound(f"'{run_id}' is not a run id (name/version/action/run_ts)",
                              "use a run id from 'batchcast runs', or an alias from 'batchcast models'")
        try:
            raw = self.fs.cat_file(self._path(run_id, MANIFEST))
        except FileNotFoundError:
            raise RunNotFound(f"no committed run '{run_id}' in {self.url}",
                              "list runs with 'batchcast runs'") from None
        return Manifest.read(raw, f"{run_id}/{MANIFEST}")

    @translated
    def list_runs(self, name: str, version: str, action: str | None = None) -> list[Manifest]:
        """Committed runs, oldest first; one whose manifest cannot be read is left out, with a warning."""
        self._fresh()
        pattern = self._path(name, version, action or "*", "*", MANIFEST)
        listed = self._read.glob(self.fs, pattern)
        runs = self._read.manifests(self.fs, {p: i for p, i in listed.items() if f"/{ALIASES}/" not in p})
        return sorted(runs, key=lambda m: (m.run_ts, m.action))

    @translated
    def resolve(self, name: str, version: str, ref: str) -> Manifest:
        """A run from an alias, ``latest``, a full run id, ``action/run_ts`` or ``run_ts``."""
        if ref == "latest":
            found = self.latest(name, version)
            if found is None:
                raise RunNotFound(f"no successful training run of {name}/{version}",
                                  "run 'batchcast run training' first")
            return found
        target = self.alias(name, version, ref) if is_alias(ref) else None
        if target is not None:
            return self.manifest(target)
        if ref.count("/") == 3:
            return self.manifest(ref)
        matches = [m for m in self.list_runs(name, version) if m.run_id.endswith("/" + ref)]
        if len(matches) != 1:
            raise RunNotFound(f"'{ref}' names no alias and no single run of {name}/{version}",
                              "use a run id from 'batchcast runs', or an alias from 'batchcast models'")
        return matches[0]

    # -- fetching a trained run ------------------------------------------

    @translated
    def fetch_run(self, run: str | Manifest, dest: Path, prefix: str = "output") -> Manifest:
        """The one way a run's files leave the store: its seal checked, then each file's sha256, into ``dest``."""
        manifest = self.verify(self.manifest(run) if isinstance(run, str) else run)
        self.fetch(manifest, prefix, dest)
        return manifest

    @translated
    def fetch(self, manifest: Manifest, prefix: str, dest: Path) -> list[Path]:
        """Copy the run's files under ``prefix/`` into ``dest``, verifying each sha256.

        Raises IntegrityError naming the first file that differs from the
        manifest; nothing under ``dest`` should then be used.
        """
        written = []
        for rel, entry in sorted(manifest.files.items()):
            if not rel.startswith(prefix + "/"):
                continue
            local = Path(dest) / rel[len(prefix) + 1:]
            local.parent.mkdir(parents=True, exist_ok=True)
            self._download_verified(manifest.run_id, rel, entry, local)
            written.append(local)
        return written

    @translated
    def verify(self, manifest: Manifest, *, files: bool = False) -> Manifest:
        """``manifest`` if it matches its seal (and, with ``files``, every file matches its sha256).

        What a run is trusted for (being promoted, being applied) is what its
        manifest says; a manifest edited by hand must not pass for a run.
        """
        if not manifest.intact:
            raise IntegrityError(f"{manifest.run_id}/{MANIFEST}: does not match its seal (edited after the run "
                                 "was committed, or written by a batchcast older than sealed manifests)",
                                 "re-run training, or promote another run")
        for rel, entry in sorted(manifest.files.items()) if files else ():
            self._download_verified(manifest.run_id, rel, entry, None)
        return manifest

    @translated
    def read_verified(self, manifest: Manifest, rel: str) -> bytes:
        """One small file of a run (a log, metrics), checked against its manifest's sha256."""
        entry = manifest.files.get(rel)
        if entry is None:
            raise RunNotFound(f"run {manifest.run_id} stored no '{rel}'", "see the run's manifest for its files")
        data = self.fs.cat_file(self._path(manifest.run_id, rel))
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise IntegrityError(f"{manifest.run_id}/{rel}: differs from the sha256 in its manifest",
                                 "the file changed after the run was committed; do not trust it")
        return data

    def _download_verified(self, run_id: str, rel: str, entry: FileEntry, local: Path | None) -> None:
        """Copy one file to ``local`` (or only read it, for None) and check its sha256."""
        try:
            found = self.copy_out(run_id, rel, local)
        except FileNotFoundError:
            raise IntegrityError(f"{run_id}/{rel}: listed in the manifest but missing from the store",
                                 "re-run training, or promote another run") from None
        if found.sha256 != entry.sha256:
            if local:
                local.unlink()
            raise IntegrityError(
                f"{run_id}/{rel}: sha256 {found.sha256[:12]}... differs from the manifest's "
                f"{entry.sha256[:12]}...; the file changed after the run was committed",
                "re-run training, or promote another run")
