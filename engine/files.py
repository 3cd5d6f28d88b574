"""File helpers every wing shares: content hashes and atomic writes.

An atomic write goes to a hidden temporary name beside its target (the same folder, so the rename stays
on one file system), is flushed to disk, and is then renamed over the target with `os.replace`: a reader,
or a run after a crash, sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 8 MiB chunks (ingested files, model weights, the static table)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def temp_beside(path: Path, tag: str = "tmp") -> Path:
    """The temporary name for `path`: hidden, in its folder, per process (two writers never share one)."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for the block to write (a file, or a folder it creates).

    When the block ends normally a file is fsynced and the temporary is renamed onto `path`; a folder
    already at `path` is first renamed aside and removed after (a reader that still maps its files keeps
    them until it lets go). When the block raises, the temporary is removed and `path` is untouched.
    For writers that want a path (DuckDB's COPY, numpy, ONNX); `atomic_write` hands out an open file.
    """
    tmp = temp_beside(path)
    _remove(tmp)  # left by an earlier run of a process with the same id
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if tmp.is_dir() and path.is_dir():
            old = temp_beside(path, "old")
            _remove(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        _remove(tmp)


@contextmanager
def atomic_write(path: Path, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
                 ) -> Iterator[IO]:
    """An open temporary file (`mode` "wb" or "w") that replaces `path` when the block ends normally."""
    if encoding is None and "b" not in mode:
        encoding = "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding, newline=newline) as fh:
        yield fh
        fh.flush()


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
