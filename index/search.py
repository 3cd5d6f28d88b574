"""k-nearest-neighbour and threshold (range) search over an index.

Similarities are inner products of L2-normalised vectors, i.e. cosines in
``[-1, 1]`` (scalar-quantised indexes may overshoot 1 by ~1e-3). Queries are
processed in batches so that a large query set never produces one huge
intermediate result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import faiss
import numpy as np

from index.build import as_float32
from index.errors import IndexMismatchError

__all__ = ["RangeResult", "knn", "range_search"]

log = logging.getLogger(__name__)


def _queries(index: faiss.Index, queries: np.ndarray) -> np.ndarray:
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2:
        raise ValueError(f"queries must be a 2-d (nq, d) array, got shape {q.shape}")
    if q.shape[1] != index.d:
        raise IndexMismatchError(f"queries have dimension {q.shape[1]}, index expects {index.d}")
    return q


def knn(index: faiss.Index, queries: np.ndarray, k: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``k`` most similar stored vectors for each query.

    ``queries`` is float ``(nq, d)`` (a single ``(d,)`` vector is accepted).
    Returns ``(sims, ids)``: float32 ``(nq, k)`` sorted by descending
    similarity and int64 ``(nq, k)`` prompt ids. When fewer than ``k``
    results exist (small index, or IVF lists probed hold too few vectors),
    the tail is padded with id ``-1`` and similarity ``-3.4e38`` (FAISS's
    ``-FLT_MAX``).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    q = _queries(index, queries)
    nq = q.shape[0]
    sims = np.empty((nq, k), dtype=np.float32)
    ids = np.empty((nq, k), dtype=np.int64)
    for start in range(0, nq, batch):
        stop = min(nq, start + batch)
        d, i = index.search(as_float32(q[start:stop], "queries"), k)
        sims[start:stop] = d
        ids[start:stop] = i
    return sims, ids


@dataclass(frozen=True)
class RangeResult:
    """Threshold search results in CSR layout (as FAISS returns them).

    For query ``i`` the hits are ``ids[lims[i]:lims[i+1]]`` with similarities
    ``sims[lims[i]:lims[i+1]]``, in no particular order (use
    :meth:`for_query` for sorted hits).

    ``lims``: int64 ``(nq + 1,)``; ``sims``: float32 ``(lims[-1],)``;
    ``ids``: int64 ``(lims[-1],)``.
    """

    lims: np.ndarray
    sims: np.ndarray
    ids: np.ndarray

    @property
    def nq(self) -> int:
        """Number of queries."""
        return int(self.lims.shape[0]) - 1

    def counts(self) -> np.ndarray:
        """Hits per query, int64 ``(nq,)``."""
        return np.diff(self.lims)

    def for_query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ids, sims)`` of query ``i`` sorted by descending similarity.

        Ties are broken by ascending id so the order is deterministic.
        """
        if not 0 <= i < self.nq:
            raise IndexError(f"query {i} out of range for {self.nq} queries")
        lo, hi = int(self.lims[i]), int(self.lims[i + 1])
        ids, sims = self.ids[lo:hi], self.sims[lo:hi]
        order = np.lexsort((ids, -sims))
        return ids[order], sims[order]


def range_search(index: faiss.Index, queries: np.ndarray, threshold: float, batch: int = 4096) -> RangeResult:
    """Return all stored vectors with similarity ``>= threshold`` to each query.

    ``queries`` is float ``(nq, d)``; ``threshold`` is a cosine. Works on Flat
    (incl. IDMap-wrapped) and IVF indexes; on IVF only the ``nprobe`` nearest
    lists are searched, so recall is approximate.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    q = _queries(index, queries)
    nq = q.shape[0]
    thr = np.float32(threshold)
    # FAISS keeps inner products strictly greater than the radius; ask for a
    # hair less and filter ourselves so the contract is ">= threshold".
    radius = float(np.nextafter(thr, np.float32(-np.inf)))
    lims = np.zeros(nq + 1, dtype=np.int64)
    sims_parts: list[np.ndarray] = []
    ids_parts: list[np.ndarray] = []
    total = 0
    for start in range(0, nq, batch):
        stop = min(nq, start + batch)
        blims, bsims, bids = index.range_search(as_float32(q[start:stop], "queries"), radius)
        keep = bsims >= thr
        if not keep.all():
            # Recount per query after dropping the sub-threshold hits.
            row = np.repeat(np.arange(stop - start), np.diff(blims))
            counts = np.bincount(row[keep], minlength=stop - start)
            bsims, bids = bsims[keep], bids[keep]
        else:
            counts = np.diff(blims)
        lims[start + 1 : stop + 1] = total + np.cumsum(counts)
        total += int(counts.sum())
        sims_parts.append(bsims.astype(np.float32, copy=False))
        ids_parts.append(bids.astype(np.int64, copy=False))
    sims = np.concatenate(sims_parts) if sims_parts else np.empty(0, np.float32)
    ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, np.int64)
    log.debug("range search: %d queries, %d hits at >= %.4f", nq, total, threshold)
    return RangeResult(lims=lims, sims=sims, ids=ids)
