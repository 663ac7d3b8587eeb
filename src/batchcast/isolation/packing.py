"""An environment packed for a cluster's executors: one ``.tar.gz`` per environment, built once, cached beside it.

Spark ships it to every executor (``spark.archives``), unpacks it in the
executor's working folder, and runs its ``bin/python``: the executors get the
model's libraries without anything installed on the workers. The pack holds
the environment and batchcast's own package, copied in (the environment only
links to it on this machine), with the link rewritten relative. As with
venv-pack, the interpreter itself is not packed: the workers need the same
Python at the same path, which a cluster built from one image has.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from batchcast.isolation.environments import SOURCE, Environment, cache_dir
from batchcast.runs.store import sha256_file

log = logging.getLogger("batchcast")
LINK = "batchcast-src"  # the folder environments.py links batchcast's package from


@dataclass
class Packed:
    path: Path
    sha256: str
    pack_s: float = 0.0  # 0 when this run found it packed


def packed(environment: Environment) -> Packed:
    """The environment's pack, built under a lock by the first run that needs it.

    Its key is the environment's and batchcast's own source: the pack holds a
    copy of batchcast, which the environment only links to, so a changed
    batchcast (an upgrade in place, a checkout moved on) is packed again.
    """
    key = f"{environment.path.name}-{_source_digest()}"
    folder = cache_dir() / "packs"
    archive, checksum = folder / f"{key}.tar.gz", folder / f"{key}.sha256"
    if not checksum.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two runs needing the same pack build it once
            if not checksum.exists():
                started = time.monotonic()
                _pack(environment.path, archive)
                checksum.write_text(sha256_file(archive))  # written last: a pack without it is rebuilt
                _drop_older(folder, environment.path.name, key)
                seconds = time.monotonic() - started
                log.info("packed the environment for the executors in %.1f s (%.0f MB)", seconds,
                         archive.stat().st_size / 1e6)
                return Packed(archive, checksum.read_text(), seconds)
    return Packed(archive, checksum.read_text())


def _drop_older(folder: Path, environment: str, kept: str) -> None:
    """The same environment's packs of an older batchcast: 200-250 MB each, never used again. One packed in the
    last hour is left, as a run of that batchcast may still be shipping it."""
    for old in folder.glob(f"{environment}-*.tar.gz"):
        stem = old.name.removesuffix(".tar.gz")
        if stem != kept and time.time() - old.stat().st_mtime > 3600:
            for path in (old, folder / f"{stem}.sha256", folder / f"{stem}.lock"):
                path.unlink(missing_ok=True)


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SOURCE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(SOURCE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _pack(venv: Path, archive: Path) -> None:
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    link = next(venv.glob(f"lib/python3*/site-packages/{LINK}.pth"), None)
    # Level 1: four times faster than the default for a pack about a third larger; a cluster pulls it once per
    # executor, a run here waits for it the first time.
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        for entry in sorted(venv.iterdir()):
            if entry.name != LINK:
                tar.add(entry, arcname=entry.name, filter=lambda info: None if link and info.name == str(
                    link.relative_to(venv)) else info)
        if link is not None:  # batchcast itself, copied (the workers have no checkout), found from site-packages
            tar.add(SOURCE, arcname=f"{LINK}/batchcast", filter=_no_bytecode)
            relative = f"../../../{LINK}\n".encode()
            info = tarfile.TarInfo(str(link.relative_to(venv)))
            info.size, info.mode, info.mtime = len(relative), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(relative))
    partial.replace(archive)


def _no_bytecode(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if "__pycache__" in info.name.split("/") else info
