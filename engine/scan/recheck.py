"""The transformer re-check of a fast-tier scan's near-copy edges.

The static fast tier (`engine.encoders.static`) finds nearly every near-copy the transformer finds, but
also passes pairs of unrelated prompts that share many words (bench/results/threshold_static.json:
7% of the hardest unrelated pairs of real prompts at its scan threshold, none for MiniLM). The re-check keeps an edge
only when all-MiniLM-L6-v2 agrees (cosine >= MiniLM's scan threshold) and stores MiniLM's cosine as
the edge's similarity. MiniLM embeds only the prompts that have a candidate edge, as ordinary
MiniLM shards: resumable, and reused by a later re-check or a full `copyhound embed --encoder minilm`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa

from engine.encoders.base import Encoder
from engine.progress import ProgressFn, no_progress
from engine.store import vectors
from engine.store.positions import IdPositions
from engine.store.workspace import Store

log = logging.getLogger(__name__)


class Rechecker:
    """Filters the `matches` table of a scan through the transformer."""

    def __init__(self, store: Store, encoder: Encoder, threshold: float, *, shard_size: int = 2048) -> None:
        self.store = store
        self.encoder = encoder
        self.threshold = threshold
        self.shard_size = shard_size

    def apply(self, *, progress: ProgressFn = no_progress) -> tuple[int, int]:
        """Re-check every stored edge; returns (candidate edges, edges kept)."""
        started = time.monotonic()
        with self.store.connect() as con:
            cols = con.execute("SELECT prompt_a, prompt_b FROM matches").fetchnumpy()
        a = np.asarray(cols["prompt_a"], np.int64)
        b = np.asarray(cols["prompt_b"], np.int64)
        if not len(a):
            return 0, 0
        needed = np.unique(np.concatenate([a, b]))
        vectors.embed_pending(self.store, self.encoder, shard_size=self.shard_size, progress=progress,
                              only=needed)
        ids, vecs = vectors.load_vectors(self.store, self.encoder.name, self.encoder.dim)
        where = IdPositions(ids)
        pos_a, pos_b = where.of(a), where.of(b)
        sim = np.einsum("ij,ij->i", vecs[pos_a], vecs[pos_b])
        keep = sim >= self.threshold
        with self.store.transaction() as con:
            con.execute("DELETE FROM matches")
            con.register("kept", pa.table({"a": a[keep], "b": b[keep],
                                           "s": np.minimum(sim[keep], 1.0).astype(np.float32)}))
            con.execute("INSERT INTO matches SELECT a, b, s FROM kept")
            con.unregister("kept")
        log.info("re-check: %d of %d candidate edges confirmed by %s (cosine >= %.2f; %d prompts) in %.1f s",
                 int(keep.sum()), len(a), self.encoder.name, self.threshold, len(needed),
                 time.monotonic() - started)
        return len(a), int(keep.sum())
