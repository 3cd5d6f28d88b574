"""Embedding shards on disk and the FAISS index built from them.

Vectors are kept in shard files (`vectors/<encoder>/shard-NNNNNN.npz`, ids int64 + vectors float16) so
that an embed run persists each batch as it finishes. A shard counts once its row in
`embedding_shards` is committed together with the `embeddings` rows of its prompts; a shard file
without that row was cut off by a kill and is deleted on the next run, so each prompt ends with exactly
one vector. float16 on disk halves the footprint (16M prompts: 12 GB instead of 25 GB) at a cosine
error near 1e-3, far below the gap between near-copies and unrelated prompts.

The FAISS index is derived data: the shards and their committed rows are the record, the index a
cache of them. Its manifest names the last shard it holds (`max_shard`) and how many shards and vectors
that is; `reconcile_index` checks all three against the committed rows, the manifest against the index
file (`index.io.verify`) and the `indexes` row against the manifest, before an embed extends the index.
Any disagreement, whatever crash caused it (between the index's rename and its manifest's, after both
but before the row's commit, a truncated or foreign file), is logged as a warning and the index is
rebuilt from the shards, so a crash never leaves a workspace no command can use, and never adds a
shard's vectors twice.

A damaged shard: `check_shards` (every embed, cheap: the file's size and zip directory) drops a
missing or truncated shard's rows and file, so its prompts are pending again and are re-embedded by
the same run. Re-embedding rather than stopping, because the prompts are in the database and the
encoder is deterministic: the shard's content is recomputed exactly, at the cost of one shard's
encoding, where an error would leave the user to do the same by hand. Damage a cheap check cannot see
(a flipped byte) is found when the shard is read, and reported in one line naming the file.
"""

from __future__ import annotations

import io as _io
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa

import index as faiss_index
from engine.crashpoints import crash_point
from engine.encoders.base import Encoder
from engine.errors import EmbeddingError, IndexStateError
from engine.files import atomic_path
from engine.progress import ProgressFn, no_progress
from engine.store.workspace import Store
from index.io import manifest_path, remove_stale_temps, verify

log = logging.getLogger(__name__)


def _shard_path(store: Store, encoder: str, shard_id: int) -> Path:
    return store.vectors_dir(encoder) / f"shard-{shard_id:06d}.npz"


def write_shard(path: Path, ids: np.ndarray, vecs: np.ndarray) -> None:
    buf = _io.BytesIO()
    np.savez(buf, ids=ids.astype(np.int64), vecs=vecs.astype(np.float16))
    with atomic_path(path) as tmp:  # what engine.files.atomic_write_bytes does, with a crash point inside
        tmp.write_bytes(buf.getbuffer())
        crash_point("embed.shard.before_rename")
    crash_point("embed.shard.after_rename")


# What a damaged or foreign .npz raises from np.load or on reading an array (a truncated file has no zip
# directory; a flipped byte fails the member's CRC; a foreign file is no zip or lacks the arrays).
_SHARD_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def read_shard(path: Path, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64 (n,), vectors (n, d) as ``dtype``: float32, or float16 as stored)."""
    try:
        with np.load(path) as data:
            return data["ids"], data["vecs"].astype(dtype, copy=False)
    except _SHARD_ERRORS as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise EmbeddingError(f"{path}: damaged vector shard ({detail}); delete it and run `copyhound embed` "
                             "to embed its prompts again") from err


def _shard_problem(path: Path, n: int, dim: int) -> str | None:
    """Why the shard file cannot hold its committed `n` vectors of `dim`, from its zip directory only."""
    try:
        with zipfile.ZipFile(path) as zf:
            sizes = {info.filename: info.file_size for info in zf.infolist()}
    except FileNotFoundError:
        return "missing"
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return " ".join(str(err).split()) or type(err).__name__
    # Each .npy member is a header (<= a few hundred bytes) plus the raw array.
    if sizes.get("ids.npy", 0) < 8 * n or sizes.get("vecs.npy", 0) < 2 * n * dim:
        return f"holds {sorted(sizes)} of sizes {sorted(sizes.values())}, not {n} vectors of {dim}"
    return None


def check_shards(store: Store, encoder: str, dim: int) -> int:
    """Drop the committed shards whose file is missing or damaged (rows and file); returns how many.

    Their prompts become pending again, so the embed that calls this re-embeds them; the index no
    longer matches the shards and `reconcile_index` rebuilds it. Cheap: reads each zip's directory.
    """
    with store.connect() as con:
        rows = con.execute("SELECT shard_id, path, n FROM embedding_shards WHERE encoder = ? ORDER BY shard_id",
                           [encoder]).fetchall()
    directory = store.vectors_dir(encoder)
    dropped = 0
    for shard_id, name, n in rows:
        problem = _shard_problem(directory / name, int(n), dim)
        if problem is None:
            continue
        log.warning("%s: vector shard %s (%s); its %d prompts will be embedded again", directory / name,
                    "missing" if problem == "missing" else "damaged", problem, n)
        with store.transaction() as con:
            con.execute("DELETE FROM embeddings WHERE encoder = ? AND shard_id = ?", [encoder, shard_id])
            con.execute("DELETE FROM embedding_shards WHERE encoder = ? AND shard_id = ?", [encoder, shard_id])
        (directory / name).unlink(missing_ok=True)
        dropped += 1
    if dropped:
        # The index may hold the dropped shards' vectors, and their re-embedded copies may take the same
        # shard ids: counts alone would not tell. Without its manifest the index is rebuilt.
        manifest_path(store.index_path(encoder)).unlink(missing_ok=True)
    return dropped


def drop_orphans(store: Store, encoder: str) -> int:
    """Delete shard files that no committed row names (an embed killed between file and commit).

    Temporaries of killed shard writes (`.shard-*.npz.tmp-PID`) are among them.
    """
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
    check_shards(store, encoder.name, encoder.dim)
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
            crash_point("embed.shard.before_commit")
        crash_point("embed.shard.after_commit")
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


def _committed_shards(store: Store, encoder: str) -> list[tuple[int, int]]:
    with store.connect() as con:
        return [(int(a), int(b)) for a, b in con.execute(
            "SELECT shard_id, n FROM embedding_shards WHERE encoder = ? ORDER BY shard_id", [encoder]).fetchall()]


def reconcile_index(store: Store, encoder: str, dim: int) -> faiss_index.Manifest | None:
    """The index's manifest when the index agrees with the workspace's record, else None (rebuild it).

    Removes the temporaries of killed saves first. Agreement: the manifest is readable, names this
    encoder and dimension, and matches the index file's size and header (`index.io.verify`); the shards
    up to its `max_shard` are committed and number `shards` with `count` vectors in all; the `indexes`
    row says the same count, last shard and factory. Each disagreement is logged as a warning naming it.
    Reads no vectors: a few bytes of the index file and the shards' rows.
    """
    path = store.index_path(encoder)
    remove_stale_temps(path)
    with store.connect() as con:
        row = con.execute("SELECT factory, count, max_shard FROM indexes WHERE encoder = ?", [encoder]).fetchone()
    mpath = manifest_path(path)
    if row is None and not path.exists() and not mpath.exists():
        return None  # never built: nothing to warn about

    def stale(reason: str) -> None:
        log.warning("index %s: %s; rebuilding it from the vector shards", path, reason)

    try:
        manifest = verify(path, encoder, dim)
    except faiss_index.IndexStoreError as err:
        stale(str(err))
        return None
    max_shard = manifest.extra.get("max_shard")
    if not isinstance(max_shard, int):
        stale(f"its manifest names no last shard ({max_shard!r})")
        return None
    covered = [n for shard_id, n in _committed_shards(store, encoder) if shard_id <= max_shard]
    n_shards = manifest.extra.get("shards", len(covered))  # manifests before 'shards' was recorded
    if sum(covered) != manifest.count or len(covered) != n_shards:
        stale(f"its manifest says {manifest.count} vectors in {n_shards} shards up to shard {max_shard}, "
              f"the workspace has {sum(covered)} in {len(covered)}")
        return None
    if row is None or (row[0], int(row[1]), int(row[2])) != (manifest.factory, manifest.count, max_shard):
        stale(f"the workspace records {'no index' if row is None else f'{row[1]} vectors up to shard {row[2]}'},"
              f" its manifest {manifest.count} up to shard {max_shard}")
        return None
    return manifest


def update_index(store: Store, encoder: str, dim: int, factory: str | None = None,
                 progress: ProgressFn = no_progress) -> tuple[int, str]:
    """Bring the encoder's FAISS index up to date with its shards. Returns (count, factory).

    New shards are added to the saved index; the index is rebuilt from all shards when none exists yet,
    when it disagrees with the workspace (`reconcile_index`: a crash, a damaged file), when the size
    crosses into another factory's range, or when `factory` asks for another structure.
    """
    path = store.index_path(encoder)
    state = reconcile_index(store, encoder, dim)
    total = sum(n for _, n in _committed_shards(store, encoder))
    wanted = factory or faiss_index.choose_factory(int(total), dim)
    rebuild = state is None or state.factory != wanted
    if not rebuild and total == state.count:
        return state.count, state.factory
    started = time.monotonic()
    idx = None
    if not rebuild:
        try:
            idx, _ = faiss_index.load(path, encoder=encoder, dim=dim)
            after = int(state.extra["max_shard"])
        except faiss_index.IndexStoreError as err:  # damage inside a file of the right size and header
            log.warning("index %s: %s; rebuilding it from the vector shards", path, err)
            rebuild = True
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
    shards = shard_rows(store, encoder, after)
    max_shard = after
    for n, (shard_id, shard_path) in enumerate(shards, 1):
        ids, vecs = read_shard(shard_path)
        faiss_index.add(idx, vecs, ids)
        max_shard = shard_id
        progress("index", n, len(shards))
    n_shards = sum(1 for shard_id, _ in _committed_shards(store, encoder) if shard_id <= max_shard)
    manifest = faiss_index.Manifest.for_index(idx, encoder=encoder, factory=wanted,
                                              extra={"max_shard": max_shard, "shards": n_shards})
    faiss_index.save(idx, path, manifest, hook=crash_point)
    with store.transaction() as con:
        con.execute("DELETE FROM indexes WHERE encoder = ?", [encoder])
        con.execute("INSERT INTO indexes VALUES (?, ?, ?, ?, ?, now())",
                    [encoder, path.name, wanted, int(idx.ntotal), max_shard])
        crash_point("index.row.before_commit")
    crash_point("index.row.after_commit")
    log.info("index %s: %d vectors (%s, %s) in %.1f s", path.name, idx.ntotal, wanted,
             "rebuilt" if rebuild else "extended", time.monotonic() - started)
    return int(idx.ntotal), wanted


def open_index(store: Store, encoder: str, dim: int):
    """(index, manifest) of the encoder, for readers; IndexStateError in one line when it cannot serve.

    Readers do not rebuild (that writes, and may be slow): an index that fails its checks is reported
    with the command that rebuilds it.
    """
    path = store.index_path(encoder)
    if not path.exists():
        raise IndexStateError(f"no index for {encoder} in {store.root}: run `copyhound embed` first")
    try:
        idx, manifest = faiss_index.load(path, encoder=encoder, dim=dim)
    except faiss_index.IndexStoreError as err:
        raise IndexStateError(f"{err}; run `copyhound embed` to rebuild it from the vector shards") from err
    return idx, manifest
