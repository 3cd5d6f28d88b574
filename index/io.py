"""Save and load FAISS indexes together with a JSON manifest.

An index file ``path`` is always accompanied by ``path.with_suffix(".json")``,
the :class:`Manifest`, which records which encoder produced the vectors, their
dimension and metric, and how many vectors the index holds. :func:`load`
refuses indexes whose manifest does not match what the caller expects, so a
model upgrade can never silently mix embedding spaces.

Both files are written atomically: to a temporary file in the same directory,
fsynced, then ``os.replace``-d over the destination. A crash mid-save leaves
the previous pair intact, plus temporaries that :func:`remove_stale_temps`
clears (their names carry the writer's pid, so a live writer's are left alone).
A crash *between* the two renames leaves a new index beside an old manifest,
which :func:`verify` detects without reading the index: the manifest records
the file's size, and the index file's own header its dimension and count.

What to do about a pair that fails :func:`verify` (rebuild it) is the caller's
policy (copyhound's is in ``engine.store.vectors``); this module only reads,
writes and checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import os
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss

from index.errors import IndexCorruptError, IndexMismatchError

__all__ = ["METRIC_IP", "Manifest", "fsync_dir", "load", "manifest_path", "remove_stale_temps", "save", "verify"]

log = logging.getLogger(__name__)

#: Metric name stored in manifests; the only metric this package uses.
METRIC_IP = "inner_product"

_METRIC_NAMES = {faiss.METRIC_INNER_PRODUCT: METRIC_IP, faiss.METRIC_L2: "l2"}


@dataclass(frozen=True)
class Manifest:
    """Description of a saved index (stored as JSON beside it).

    ``created`` is an ISO-8601 UTC timestamp; ``extra`` holds caller-defined
    JSON-serialisable data (e.g. the last prompt id covered). ``file_bytes`` is
    the size of the index file as saved (filled in by :func:`save`; 0 in
    manifests written before it was recorded, which skips the size check).
    """

    encoder: str
    dim: int
    metric: str
    count: int
    factory: str
    created: str
    extra: dict[str, Any] = field(default_factory=dict)
    file_bytes: int = 0

    @classmethod
    def for_index(
        cls,
        index: faiss.Index,
        encoder: str,
        factory: str,
        extra: dict[str, Any] | None = None,
    ) -> Manifest:
        """Build a manifest describing ``index`` as it is now."""
        return cls(
            encoder=encoder,
            dim=int(index.d),
            metric=_METRIC_NAMES.get(index.metric_type, str(index.metric_type)),
            count=int(index.ntotal),
            factory=factory,
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            extra=dict(extra or {}),
        )

    def to_json(self) -> str:
        """Serialise to a JSON document (one object, sorted keys)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse :meth:`to_json` output; raises ``ValueError``/``KeyError``/``TypeError``."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("manifest is not a JSON object")
        extra = raw.get("extra", {})
        if not isinstance(extra, dict):
            raise TypeError("manifest 'extra' is not an object")
        return cls(
            encoder=str(raw["encoder"]),
            dim=int(raw["dim"]),
            metric=str(raw["metric"]),
            count=int(raw["count"]),
            factory=str(raw["factory"]),
            created=str(raw["created"]),
            extra=extra,
            file_bytes=int(raw.get("file_bytes", 0)),
        )


def manifest_path(path: Path) -> Path:
    """Where the manifest of the index at ``path`` lives."""
    return Path(path).with_suffix(".json")


def fsync_dir(directory: Path) -> None:
    """Make the names created or renamed in ``directory`` durable."""
    # A rename or a new file is only durable once the directory entry is on disk.
    # Some filesystems refuse O_RDONLY fsync on directories; that is harmless.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


@contextlib.contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """Yield a fresh temp path in ``path``'s directory; delete it unless renamed.

    The name is ``.<name>.<pid>.<random>.tmp``: the pid lets :func:`remove_stale_temps` tell a dead
    writer's leftovers from a live writer's work in progress.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        # After a successful os.replace the temp name no longer exists.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers from an earlier call are stale by definition (no save is running)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temps(path: Path) -> int:
    """Delete the temporaries that killed saves of the index at ``path`` left behind; returns how many.

    Temporaries of both the index and its manifest are removed when the process that wrote them is
    gone (or is this one). Returns the number of files removed.
    """
    path = Path(path)
    removed = 0
    if not path.parent.is_dir():
        return 0
    prefixes = (_temp_prefix(path), _temp_prefix(manifest_path(path)))
    for entry in path.parent.iterdir():
        prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
        if prefix is None or not entry.name.endswith(".tmp"):
            continue
        pid_text = entry.name[len(prefix):].split(".", 1)[0]  # "<pid>.<random>.tmp"
        if pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
            removed += 1
    if removed:
        log.info("removed %d temporary file(s) of an interrupted save of %s", removed, path)
    return removed


def save(index: faiss.Index, path: Path, manifest: Manifest, *, hook: Callable[[str], None] | None = None
         ) -> Manifest:
    """Atomically write ``index`` to ``path`` and ``manifest`` beside it; returns the manifest written.

    Both files are fully written and fsynced under temporary names before
    either is renamed into place, so an exception or crash during writing
    leaves any previous index/manifest untouched and no temp files behind
    (after an exception; a hard crash can leave ``.*.tmp`` files, which
    :func:`remove_stale_temps` clears). The manifest written is ``manifest``
    with ``file_bytes`` set to the index file's size.

    ``hook`` (tests only) is called with ``"index.save.before_index_rename"``,
    ``"index.save.after_index_rename"`` and ``"index.save.after_manifest_rename"``
    at those moments: the crash harness kills the process there.

    Raises :class:`IndexMismatchError` when ``manifest`` does not describe
    ``index`` (dimension or count differ) - saving such a pair would only
    fail later at :func:`load`.
    """
    path = Path(path)
    mpath = manifest_path(path)
    if mpath == path:
        raise ValueError(f"index path must not end in .json: {path}")
    if manifest.dim != index.d or manifest.count != index.ntotal:
        raise IndexMismatchError(
            f"manifest for {path} says dim={manifest.dim} count={manifest.count},"
            f" index has dim={index.d} count={index.ntotal}"
        )
    hook = hook or (lambda point: None)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temp_beside(path) as tmp_index, _temp_beside(mpath) as tmp_manifest:
        faiss.write_index(index, str(tmp_index))
        _fsync_file(tmp_index)
        manifest = dataclasses.replace(manifest, file_bytes=tmp_index.stat().st_size)
        with open(tmp_manifest, "w", encoding="utf-8") as fh:
            fh.write(manifest.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        hook("index.save.before_index_rename")
        # Index first: a crash between the two renames gives new index + old
        # manifest, which verify() rejects (size, header count) instead of
        # trusting a stale manifest.
        os.replace(tmp_index, path)
        hook("index.save.after_index_rename")
        os.replace(tmp_manifest, mpath)
    fsync_dir(path.parent)
    hook("index.save.after_manifest_rename")
    log.info("saved index %s (%d vectors, %s)", path, manifest.count, manifest.factory)
    return manifest


def read_manifest(path: Path) -> Manifest:
    """Read the manifest of the index at ``path``; :class:`IndexCorruptError` if bad."""
    mpath = manifest_path(Path(path))
    try:
        text = mpath.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IndexCorruptError(f"manifest missing: {mpath}") from None
    except OSError as exc:
        raise IndexCorruptError(f"cannot read manifest {mpath}: {exc.strerror}") from exc
    try:
        return Manifest.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"garbled manifest {mpath}: {exc!r}") from exc


# FAISS begins every index file with a fourcc, then the top-level index's dimension (int32) and vector
# count (int64), whatever the index type (IxM2 for IDMap2, IwSq/IwFl for IVF, ...).
_HEADER = struct.Struct("<4siq")


def verify(path: Path, encoder: str, dim: int) -> Manifest:
    """Check the index at ``path`` and its manifest without reading the index; returns the manifest.

    Cheap (the manifest, the file's size and its first 16 bytes): the manifest must name ``encoder``,
    ``dim`` and the inner-product metric, the file must have the size the manifest recorded and a
    FAISS header giving the manifest's dimension and count. Catches a crash between the two renames
    of :func:`save`, a truncated or foreign index file, a missing file. Damage inside a file of the
    right size is found only by :func:`load`. Raises :class:`IndexMismatchError` or
    :class:`IndexCorruptError`, one line naming the file.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.encoder != encoder:
        raise IndexMismatchError(f"{path} was built with encoder {manifest.encoder!r}, expected {encoder!r}")
    if manifest.dim != dim:
        raise IndexMismatchError(f"{path} has dimension {manifest.dim}, expected {dim}")
    if manifest.metric != METRIC_IP:
        raise IndexMismatchError(f"{path} uses metric {manifest.metric!r}, expected {METRIC_IP!r}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(_HEADER.size)
    except FileNotFoundError:
        raise IndexCorruptError(f"index file missing: {path}") from None
    except OSError as exc:
        raise IndexCorruptError(f"cannot read index {path}: {exc.strerror}") from exc
    if manifest.file_bytes and size != manifest.file_bytes:
        raise IndexCorruptError(f"{path} is {size} bytes but its manifest says {manifest.file_bytes}"
                                " (truncated, or written by another save)")
    if len(head) < _HEADER.size:
        raise IndexCorruptError(f"cannot read index {path}: {size} bytes, too short for a FAISS index")
    _, d, ntotal = _HEADER.unpack(head)
    if d != manifest.dim:
        raise IndexMismatchError(f"{path} holds dimension {d} but its manifest says {manifest.dim}")
    if ntotal != manifest.count:
        raise IndexMismatchError(f"{path} holds {ntotal} vectors but its manifest says {manifest.count}")
    return manifest


def load(path: Path, encoder: str, dim: int, *, mmap: bool = False) -> tuple[faiss.Index, Manifest]:
    """Load the index at ``path`` after checking its manifest.

    ``encoder`` and ``dim`` are what the caller's embedding model produces.
    With ``mmap=True`` the vector storage is memory-mapped (``IO_FLAG_MMAP``)
    instead of read into RAM, for indexes larger than memory; such an index
    must be treated as read-only.

    Raises :class:`IndexMismatchError` when the manifest's encoder, dim or
    metric differ from expectations or the index file disagrees with its
    manifest (dimension, vector count, metric), and :class:`IndexCorruptError`
    when either file is missing or unreadable.
    """
    path = Path(path)
    manifest = verify(path, encoder, dim)
    flags = faiss.IO_FLAG_MMAP if mmap else 0
    try:
        index = faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        # FAISS reports truncation and unknown formats as RuntimeError with a
        # multi-line C++ message; keep only its last line.
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise IndexCorruptError(f"cannot read index {path}: {detail}") from exc
    if index.d != manifest.dim:
        raise IndexMismatchError(f"{path} holds dimension {index.d} but its manifest says {manifest.dim}")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexMismatchError(f"{path} does not use inner-product metric")
    if index.ntotal != manifest.count:
        raise IndexMismatchError(
            f"{path} holds {index.ntotal} vectors but its manifest says {manifest.count}"
        )
    log.info("loaded index %s (%d vectors, mmap=%s)", path, index.ntotal, mmap)
    return index, manifest
