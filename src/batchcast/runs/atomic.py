"""Atomic writes on any fsspec filesystem: create-if-absent, replace, and move-if-absent.

What makes a manifest a commit and an alias move safe: a reader sees the
whole document or none, and two writers racing to create one cannot both
win. A local folder gets it from hard links and ``os.replace``; an object
store from its conditional writes (S3 If-None-Match, GCS
ifGenerationMatch=0) and its whole-object replacement.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem


def create_exclusive(fs, path: str, data: bytes) -> bool:
    """Write ``data`` at ``path`` unless something is there; False if it was."""
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        tmp = _temporary(path, data)
        try:
            return link_exclusive(fs, tmp, path)
        finally:
            os.unlink(tmp)
    fs.invalidate_cache()
    if fs.exists(path):
        return False
    try:
        with fs.open(path, "xb") as f:
            f.write(data)
    except FileExistsError:
        return False
    return True


def link_exclusive(fs, source: str, path: str) -> bool:
    """Make ``path`` hold what ``source`` holds unless something is at ``path``; False if it was.

    On a local folder a hard link: no byte is written, so it succeeds on a full disk.
    """
    if isinstance(fs, LocalFileSystem):
        try:
            os.link(source, path)  # fails if the target exists: create-if-absent, atomically
            return True
        except FileExistsError:
            return False
    return create_exclusive(fs, path, fs.cat_file(source))


def replace(fs, path: str, data: bytes) -> None:
    """Write ``data`` at ``path``, over what was there; a reader sees the old or the new document, never half."""
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if isinstance(fs, LocalFileSystem):
        os.replace(_temporary(path, data), path)
    else:
        fs.pipe_file(path, data)  # object stores replace an object atomically


def _temporary(path: str, data: bytes) -> str:
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        Path(tmp).write_bytes(data)
    except BaseException:  # a full disk leaves half a file behind: take it away
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp
