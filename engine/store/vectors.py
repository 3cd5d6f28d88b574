"""Embedding shards on disk and the FAISS index built from them.

Vectors are kept in shard files (`vectors/<encoder>/shard-NNNNNN.npz`, ids int64 + vectors float16) so
that an embed run persists each batch as it finishes. A shard counts once its row in
`embedding_shards` is committed together with the `embeddings` rows of its prompts; a shard file
without that row was cut off by a kill and is deleted on the next run, so each prompt ends with exactly
one vector. float16 on disk halves the footprint (16M prompts: 12 GB instead of 25 GB) at a cosine
error near 1e-3, far below the gap between near-copies and unrelated prompts.
"""

from __future__ import annotations

import io as _io
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import index as faiss_index
from engine.encoders.base import Encoder
from engine.errors import EmbeddingError, IndexStateError
from engine.files import atomic_write_bytes
from engine.progress import ProgressFn, no_progress
from engine.store.workspace import Store

log = logging.getLogger(__name__)


def _shard_path(store: Store, encoder: str, shard_id: int) -> Path:
    return store.vectors_dir(encoder) / f"shard-{shard_id:06d}.npz"


def write_shard(path: Path, ids: np.ndarray, vecs: np.ndarray) -> None:
    buf = _io.BytesIO()
    np.savez(buf, ids=ids.astype(np.int64), vecs=vecs.astype(np.float16))
    atomic_write_bytes(path, buf.getbuffer())


def read_shard(path: Path, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (n,), vectors (n, d) as ``dtype``: float32, or float16 as stored)."""
    try:
        with np.load(path) as data:
            return data["ids"], data["vecs"].astype(dtype, copy=False)
    except (OSError, ValueError, KeyError) as err:
        raise EmbeddingError(f"{path}: unreadable vector shard ({err}); delete it and run embed again") from err


def drop_orphans(store: Store, encoder: str) -> int:
    """Delete shard files that no committed row names (an embed killed between file and commit)."""
    with store.connect() as con:
        known = {Path(p).name for (p,) in con.execute(
            "SELECT path FROM embedding_shards WHERE encoder = ?", [encoder]).fetchall()}
    removed = 0
    for path in store.vectors_dir(encoder).iterdir():
        if path.name not in known:
            path.unlink()
            removed += 1
    if removed:
        log.info("removed %d unfinished shard file(s) of %s", removed, encoder)
    return removed


def embed_pending(
    store: Store, encoder: Encoder, *, shard_size: int = 8192, progress: ProgressFn = no_progress,
    only: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """Embed every prompt the encoder has not embedded yet. Returns (embedded, already, shards).

    `only` (sorted int64 prompt ids) restricts the work to those prompts: the transformer re-check of a
    fast-tier scan embeds just the prompts that have candidate edges. The database is opened only to
    read a page of pending prompts and to commit a finished shard, so other processes (the TUI) can
    read the workspace while the model works.
    """
    drop_orphans(store, encoder.name)
    subset = "" if only is None else "AND p.prompt_id IN (SELECT prompt_id FROM only_ids)"

    def _register(con) -> None:
        if only is not None:
            con.register("only_ids", pa.table({"prompt_id": np.asarray(only, np.int64)}))

    with store.connect() as con:
        _register(con)
        pending, already = con.execute(
            f"""SELECT count(*) FILTER (WHERE e.prompt_id IS NULL), count(*) FILTER (WHERE e.prompt_id IS NOT NULL)
               FROM prompts p LEFT JOIN embeddings e ON e.prompt_id = p.prompt_id AND e.encoder = ?
               WHERE TRUE {subset}""",
            [encoder.name],
        ).fetchone()
    done = shards = 0
    last_id = -1
    started = time.monotonic()
    while True:
        with store.connect() as con:
            _register(con)
            rows = con.execute(
                f"""SELECT p.prompt_id, p.normalized FROM prompts p
                   WHERE p.prompt_id > ? {subset} AND NOT EXISTS (
                       SELECT 1 FROM embeddings e WHERE e.prompt_id = p.prompt_id AND e.encoder = ?)
                   ORDER BY p.prompt_id LIMIT ?""",
                [last_id, encoder.name, shard_size],
            ).fetchall()
            shard_id = 1 + (con.execute(
                "SELECT coalesce(max(shard_id), 0) FROM embedding_shards WHERE encoder = ?", [encoder.name]
            ).fetchone()[0])
        if not rows:
            break
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        vecs = encoder.encode([r[1] for r in rows])
        if vecs.shape != (len(rows), encoder.dim):
            raise EmbeddingError(f"encoder {encoder.name} returned shape {vecs.shape}, expected ({len(rows)}, {encoder.dim})")
        path = _shard_path(store, encoder.name, shard_id)
        write_shard(path, ids, vecs)
        with store.transaction() as con:
            con.execute("INSERT INTO embedding_shards VALUES (?, ?, ?, ?, ?, now())",
                        [shard_id, encoder.name, path.name, len(rows), encoder.dim])
            con.register("shard_ids", {"prompt_id": ids})
            con.execute("INSERT INTO embeddings SELECT prompt_id, ?, ? FROM shard_ids", [encoder.name, shard_id])
        last_id = int(ids[-1])
        done += len(rows)
        shards += 1
        progress("embed", done, int(pending))
        log.info("embedded shard %d: %d prompts (%.0f prompts/s overall)", shard_id, len(rows),
                 done / max(time.monotonic() - started, 1e-9))
    return done, int(already), shards


def shard_rows(store: Store, encoder: str, after_shard: int = 0) -> list[tuple[int, Path]]:
    with store.connect() as con:
        rows = con.execute(
            "SELECT shard_id, path FROM embedding_shards WHERE encoder = ? AND shard_id > ? ORDER BY shard_id",
            [encoder, after_shard],
        ).fetchall()
    directory = store.vectors_dir(encoder)
    return [(int(s), directory / p) for s, p in rows]


def load_vectors(store: Store, encoder: str, dim: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """All embedded prompts of an encoder: (ids int64 (n,), vectors (n, dim)), sorted by id.

    ``dtype`` float16 keeps the stored precision at half the memory (the scan: 5.7M prompts of the
    static tier are 2.9 GB instead of 5.8 GB); consumers convert rows to float32 a block at a time.
    """
    parts_ids, parts_vecs = [], []
    for _, path in shard_rows(store, encoder):
        ids, vecs = read_shard(path, dtype)
        parts_ids.append(ids)
        parts_vecs.append(vecs)
    if not parts_ids:
        return np.zeros(0, np.int64), np.zeros((0, dim), dtype)
    ids = np.concatenate(parts_ids)
    vecs = np.concatenate(parts_vecs)
    del parts_vecs
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():  # shards are written in id order: usually no copy
        order = np.argsort(ids, kind="stable")
        ids, vecs = ids[order], vecs[order]
    return ids, np.ascontiguousarray(vecs)


def update_index(store: Store, encoder: str, dim: int, factory: str | None = None,
                 progress: ProgressFn = no_progress) -> tuple[int, str]:
    """Bring the encoder's FAISS index up to date with its shards. Returns (count, factory).

    New shards are added to the saved index; the index is rebuilt from all shards when none exists yet,
    when the size crosses into another factory's range, or when `factory` asks for another structure.
    """
    path = store.index_path(encoder)
    with store.connect() as con:
        row = con.execute("SELECT factory, count, max_shard FROM indexes WHERE encoder = ?", [encoder]).fetchone()
        total = con.execute("SELECT count(*) FROM embeddings WHERE encoder = ?", [encoder]).fetchone()[0]
    wanted = factory or faiss_index.choose_factory(int(total), dim)
    rebuild = row is None or not path.exists() or row[0] != wanted
    if not rebuild and total == row[1]:
        return int(row[1]), row[0]
    started = time.monotonic()
    if rebuild:
        idx = faiss_index.make_index(dim, wanted)
        after = 0
        if not idx.is_trained:
            # float16 as stored and only the sample converted: at 5.2M prompts the float32 copy held
            # 5.4 GB through training.
            ids, vecs = load_vectors(store, encoder, dim, dtype=np.float16)
            size = faiss_index.training_size(idx)
            sample = vecs[np.random.default_rng(0).permutation(len(vecs))[:size]].astype(np.float32)
            del ids, vecs
            faiss_index.train(idx, sample)
            del sample
    else:
        try:
            idx, _ = faiss_index.load(path, encoder=encoder, dim=dim)
        except faiss_index.IndexStoreError as err:
            raise IndexStateError(str(err)) from err
        after = int(row[2])
    shards = shard_rows(store, encoder, after)
    max_shard = after
    for n, (shard_id, shard_path) in enumerate(shards, 1):
        ids, vecs = read_shard(shard_path)
        faiss_index.add(idx, vecs, ids)
        max_shard = shard_id
        progress("index", n, len(shards))
    manifest = faiss_index.Manifest.for_index(idx, encoder=encoder, factory=wanted, extra={"max_shard": max_shard})
    faiss_index.save(idx, path, manifest)
    with store.transaction() as con:
        con.execute("DELETE FROM indexes WHERE encoder = ?", [encoder])
        con.execute("INSERT INTO indexes VALUES (?, ?, ?, ?, ?, now())",
                    [encoder, path.name, wanted, int(idx.ntotal), max_shard])
    log.info("index %s: %d vectors (%s, %s) in %.1f s", path.name, idx.ntotal, wanted,
             "rebuilt" if rebuild else "extended", time.monotonic() - started)
    return int(idx.ntotal), wanted


def open_index(store: Store, encoder: str, dim: int):
    path = store.index_path(encoder)
    if not path.exists():
        raise IndexStateError(f"no index for {encoder} in {store.root}: run `copyhound embed` first")
    try:
        idx, manifest = faiss_index.load(path, encoder=encoder, dim=dim)
    except faiss_index.IndexStoreError as err:
        raise IndexStateError(str(err)) from err
    return idx, manifest
