"""The join of new vectors against all: the pairs a self-join of old and new would add to the old one's.

A workspace that grows by a day's traffic has its old prompts' pairs already; what the new traffic adds
are pairs with at least one new prompt. :func:`delta_join` finds them by searching the workspace's
index (which already holds the new vectors) with each new vector, so its cost follows the new vectors,
not the whole: new x all and new x new, never old x old.

**Candidates, then exact similarities.** The index proposes candidates: a Flat index every vector
above the threshold; an IVF index the vectors of the ``probes`` lists nearest the query (its own
nearest lists, as the full join's point probes do), with scalar-quantised similarities, so it is asked
for a ``margin`` below the threshold. Every candidate's similarity is then recomputed from the stored
vectors (float32 products, as the full join's tiles compute them) and cut at the threshold, so an
edge's similarity is the one the full join would have written.

**Each pair once.** A pair of a new and an old vector is owned by the new one; a pair of two new
vectors by the one earlier in the input order, as in the full join. Each owner keeps its
``max_neighbors`` most similar pairs (:func:`index.tiles.cap_per_owner`).

**Where it differs from a full join** of the same vectors (measured in ``bench/``): the IVF join
partitions by the lists of a k-means and keeps the cap per owner *per pass*, this join probes each new
vector's own nearest lists once; an old vector that gains pairs with new ones keeps them all (the cap
counts what a vector owns, and old vectors own no new pairs); a pair whose other side the probes miss
is missed, as the full join misses pairs across lists it does not compare.

Blocks are numbered ``0, 1, ...`` over the new vectors in input order, ``block_size`` new vectors each,
and depend only on the inputs and their number, so a killed join resumes at ``start_block``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import faiss
import numpy as np

from index.build import ivf_of, set_search_params
from index.search import range_search
from index.tiles import DEFAULT_BLOCK_SIZE, EdgeBlock, cap_per_owner, check_inputs, edge_block, f32

__all__ = ["DELTA_MARGIN", "delta_join"]

log = logging.getLogger(__name__)

# How far below the threshold an IVF index's quantised similarities are searched: SQ8 moved a cosine by at
# most 0.0084 (standard deviation 0.0005) on 1.6M candidate pairs of a 1M-exchange static-tier workspace,
# so 0.02 keeps every pair the exact products then keep.
DELTA_MARGIN = 0.02
# Candidates per new vector whose exact similarity is computed, in multiples of the cap (see _blocks).
PRECAP = 2
# Candidate pairs whose exact similarity is computed at once: bounds the gathered rows' memory
# (256 Ki pairs x 384 float32 = 384 MiB at most, with the query rows).
_PAIRS_PER_PRODUCT = 1 << 18


def delta_join(
    vectors: np.ndarray,
    ids: np.ndarray,
    new: np.ndarray,
    threshold: float,
    index: faiss.Index,
    *,
    probes: int = 16,
    margin: float = DELTA_MARGIN,
    max_neighbors: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    start_block: int = 0,
) -> Iterator[EdgeBlock]:
    """Yield every pair with a new vector whose inner product is ``>= threshold`` (module doc).

    ``vectors`` float32/float16 ``(n, d)`` and ``ids`` int64 ``(n,)``, old and new vectors alike;
    ``new`` bool ``(n,)``, the rows to join; ``index`` holds all ``ids`` (extra ids it holds are
    ignored). ``probes``: IVF lists searched per new vector (ignored on a Flat index). Every pair
    ``(a, b)``, ``a < b``, appears in at most one block; empty blocks are yielded too, so the caller
    can record each block number as a checkpoint.
    """
    ids = check_inputs(vectors, ids)
    new = np.asarray(new, dtype=bool)
    if new.shape != ids.shape:
        raise ValueError(f"new must be a bool array of {ids.shape[0]} rows, got shape {new.shape}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    rows = np.flatnonzero(new)
    nblocks = math.ceil(len(rows) / block_size)
    if start_block < 0 or start_block > nblocks:
        raise ValueError(f"start_block={start_block} outside the {nblocks} blocks of this join")
    row_of = _row_lookup(ids)
    approx = ivf_of(index) is not None
    if approx:
        set_search_params(index, probes)
    radius = float(threshold) - (margin if approx else 0.0)
    log.info("delta join: %d new of %d vectors, %d blocks, %s", len(rows), len(ids), nblocks,
             f"{probes} lists per vector" if approx else "exact candidates")
    return _blocks(vectors, ids, row_of, new, rows, np.float32(threshold), index, radius, max_neighbors,
                   block_size, range(start_block, nblocks))


def _blocks(vectors, ids, row_of, new, rows, thr, index, radius, max_neighbors, block_size,
            blocks: range) -> Iterator[EdgeBlock]:
    for blk in blocks:
        own = rows[blk * block_size:(blk + 1) * block_size]
        q = f32(vectors[own])
        found = range_search(index, q, radius, batch=len(own))
        lims, approx, hit = found.lims, found.sims, found.ids
        owner = np.repeat(np.arange(len(own)), np.diff(lims))
        # Candidate ids to rows; ids the vectors do not hold (none, in a consistent workspace) drop out.
        other = row_of(hit)
        me = own[owner]
        # Each pair once: new x old by the new side, new x new by the earlier row; never a vector with itself.
        keep = (other >= 0) & (other != me) & (~new[np.maximum(other, 0)] | (other > me))
        owner, other, approx = owner[keep], other[keep], approx[keep]
        if max_neighbors is not None:
            # A prompt among thousands of near-copies (a template's fillings) has thousands of candidates,
            # and the cap keeps its most similar ones: only the best by the index's own similarity are worth
            # an exact product (twice the cap covers the quantisation's reordering, under 0.01).
            owner, other, approx = cap_per_owner(owner, other, approx, PRECAP * max_neighbors, 0, len(own))
        sim = _exact(vectors, q, owner, other)
        keep = sim >= thr
        owner, other, sim = owner[keep], other[keep], sim[keep]
        owner, other, sim = cap_per_owner(owner, other, sim, max_neighbors, 0, len(own))
        yield edge_block(blk, [own[owner]], [other], [sim], ids)


def _row_lookup(ids: np.ndarray):
    """A function from ids to rows (-1 for an id not in ``ids``): a table when the ids are dense, as a
    sequence's are (a few bytes per id, one gather per candidate), else a binary search."""
    lo, hi = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
    if hi - lo < 4 * len(ids) + 1024:
        table = np.full(hi - lo + 1, -1, dtype=np.int64)
        table[ids - lo] = np.arange(len(ids))

        def dense(hit: np.ndarray) -> np.ndarray:
            inside = (hit >= lo) & (hit <= hi)
            return np.where(inside, table[np.clip(hit - lo, 0, len(table) - 1)], -1)
        return dense
    order = np.argsort(ids, kind="stable")

    def search(hit: np.ndarray) -> np.ndarray:
        pos = np.clip(np.searchsorted(ids, hit, sorter=order), 0, len(ids) - 1)
        return np.where(ids[order[pos]] == hit, order[pos], -1)
    return search


def _exact(vectors: np.ndarray, q: np.ndarray, owner: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Inner products of query rows ``q[owner]`` with ``vectors[other]``, in bounded chunks."""
    out = np.empty(len(owner), dtype=np.float32)
    for lo in range(0, len(owner), _PAIRS_PER_PRODUCT):
        hi = min(lo + _PAIRS_PER_PRODUCT, len(owner))
        out[lo:hi] = np.einsum("ij,ij->i", q[owner[lo:hi]], f32(vectors[other[lo:hi]]))
    return out
