"""Similarity tiles and what the joins keep of them: the exact join, the cap per owner, edge blocks.

The ``exact`` join (:func:`exact_block`): rows are processed in blocks of ``block_size``; each row is
compared with every *later* row (upper triangle), in tiles of bounded size, so memory stays
``O(block rows x tile columns)`` and never ``O(n^2)``. A pair is *owned* by its earlier row (in input
order). Cost ``~ n^2 * d`` flops.

Both joins keep at most ``max_neighbors`` pairs per owner (:func:`cap_per_owner`, ties by position, so
what is kept does not depend on the order pairs were found in), and turn what they keep into an
id-ordered :class:`EdgeBlock` (:func:`edge_block`). Rows are converted to float32 one tile at a time
(:func:`f32`), so float16 and memory-mapped vectors are fine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "TILE_ELEMS",
    "TILE_ROWS",
    "EdgeBlock",
    "brute_force_pairs",
    "cap_per_owner",
    "check_inputs",
    "edge_block",
    "exact_block",
    "f32",
    "trim_heavy_rows",
]

log = logging.getLogger(__name__)

#: Rows (exact) or approximately vectors (ivf) per yielded block.
DEFAULT_BLOCK_SIZE = 4096

# Similarity tiles hold at most this many float32 values (64 MiB), whatever
# block_size is, so peak memory does not grow with n.
TILE_ELEMS = 1 << 24
# Query rows per tile; 2048 x 8192 x 384 is large enough for BLAS to run at
# full speed.
TILE_ROWS = 2048


@dataclass(frozen=True)
class EdgeBlock:
    """One checkpointable chunk of the join result.

    ``a``, ``b``: int64 ``(m,)`` prompt ids with ``a < b`` elementwise;
    ``sim``: float32 ``(m,)`` inner products, all ``>= threshold``. Edges are
    sorted by ``(a, b)``.
    """

    block_no: int
    a: np.ndarray
    b: np.ndarray
    sim: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])


def f32(rows: np.ndarray) -> np.ndarray:
    """float32 C-contiguous copy/view of some rows (converts float16/memmap)."""
    return np.ascontiguousarray(rows, dtype=np.float32)


def check_inputs(vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Check a join's inputs (``ValueError``/``TypeError``); returns ``ids`` as contiguous int64 ``(n,)``."""
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-d (n, d) numpy array, got {type(vectors).__name__}")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise TypeError(f"vectors must be float32 or float16, got {vectors.dtype}")
    ids = np.asarray(ids)
    if ids.shape != (vectors.shape[0],):
        raise ValueError(f"ids must have shape ({vectors.shape[0]},), got {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be integers, got {ids.dtype}")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    # Duplicate ids would make "each pair once, a < b" meaningless (and
    # produce a == b self-edges).
    if ids.size and np.unique(ids).size != ids.size:
        raise ValueError("ids must be unique")
    return ids


def _tile_pairs(q: np.ndarray, c: np.ndarray, thr: np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row/column indices and sims of ``q @ c.T >= thr``.

    ``q`` float32 ``(r, d)``, ``c`` float32 ``(m, d)``; returns int64 ``(k,)``,
    int64 ``(k,)``, float32 ``(k,)``.
    """
    s = q @ c.T
    qi, ci = np.nonzero(s >= thr)
    return qi.astype(np.int64, copy=False), ci.astype(np.int64, copy=False), s[qi, ci]


def cap_per_owner(
    owner: np.ndarray, other: np.ndarray, sim: np.ndarray, k: int | None, base: int, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep, per ``owner`` position, the ``k`` pairs of highest ``sim`` (all when ``k`` is None).

    Owners are positions ``base .. base + rows - 1`` (one IVF list or one exact
    block), so pairs are counted per owner with a small bincount and only the
    owners past ``k`` are sorted: sorting every pair of a block by three keys
    took over half of the join at a million prompts. Ties are broken by
    ascending ``other`` position so the result does not depend on the order
    pairs were found in.
    """
    if k is None or owner.size <= k:
        return owner, other, sim
    counts = np.bincount(owner - base, minlength=rows)
    heavy = counts > k
    if not heavy.any():
        return owner, other, sim
    over = heavy[owner - base]
    ho, hw, hs = _top_per_owner(owner[over] - base, other[over], sim[over], k)
    ho += base
    light = ~over
    return (np.concatenate([owner[light], ho]), np.concatenate([other[light], hw]),
            np.concatenate([sim[light], hs]))


# float32 bit patterns: every similarity in [0.5, 2) is 2.0's pattern minus a
# number below 2**24, so (local owner, similarity, other) packs into one int64.
_TWO_BITS = int(np.float32(2.0).view(np.uint32))
_SIM_BITS = 24
_OTHER_BITS = 24
_OWNER_BITS = 63 - _SIM_BITS - _OTHER_BITS


def _top_per_owner(
    owner: np.ndarray, other: np.ndarray, sim: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` pairs of highest ``sim`` per ``owner`` (>= 0), ties by ascending ``other``.

    Sorting one packed int64 key is several times faster than a three-key
    lexsort (SIMD sort); the lexsort remains for values the key cannot hold.
    """
    packable = (
        owner.max() < (1 << _OWNER_BITS) and other.max() < (1 << _OTHER_BITS)
        and sim.dtype == np.float32 and sim.min() > 0.5 and sim.max() < 2.0
    )
    if packable:
        drop = (_TWO_BITS - sim.view(np.uint32).astype(np.int64))  # smaller = more similar
        key = np.sort((owner << (_SIM_BITS + _OTHER_BITS)) | (drop << _OTHER_BITS) | other)
        owner = key >> (_SIM_BITS + _OTHER_BITS)
        other = key & ((1 << _OTHER_BITS) - 1)
        drop = (key >> _OTHER_BITS) & ((1 << _SIM_BITS) - 1)
        sim = (_TWO_BITS - drop).astype(np.uint32).view(np.float32)
    else:
        order = np.lexsort((other, -sim, owner))
        owner, other, sim = owner[order], other[order], sim[order]
    new_group = np.empty(owner.size, dtype=bool)
    new_group[0] = True
    np.not_equal(owner[1:], owner[:-1], out=new_group[1:])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(owner.size), 0))
    keep = (np.arange(owner.size) - group_start) < k
    return owner[keep], other[keep], sim[keep]


def edge_block(
    block_no: int,
    pos_u: list[np.ndarray],
    pos_w: list[np.ndarray],
    sims: list[np.ndarray],
    ids: np.ndarray,
) -> EdgeBlock:
    """Turn position pairs (owner ``u``, other ``w``, already capped) into an id-ordered block."""
    u = np.concatenate(pos_u) if pos_u else np.empty(0, np.int64)
    w = np.concatenate(pos_w) if pos_w else np.empty(0, np.int64)
    s = np.concatenate(sims) if sims else np.empty(0, np.float32)
    a, b = ids[u], ids[w]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if lo.size and lo.min() >= 0 and hi.max() < (1 << 31):
        # One int64 key sorts about twice as fast as a two-key lexsort.
        order = np.argsort((lo << 32) | hi)
    else:
        order = np.lexsort((hi, lo))
    return EdgeBlock(
        block_no=block_no,
        a=lo[order],
        b=hi[order],
        sim=s[order].astype(np.float32, copy=False),
    )


def exact_block(shared: tuple, blk: int) -> EdgeBlock:
    """Block ``blk`` of the exact join; ``shared`` = (vectors, ids, thr, block_size, max_neighbors)."""
    vectors, ids, thr, block_size, max_neighbors = shared
    n = vectors.shape[0]
    r0, r1 = blk * block_size, min(n, (blk + 1) * block_size)
    pos_u: list[np.ndarray] = []
    pos_w: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for s0 in range(r0, r1, TILE_ROWS):
        s1 = min(r1, s0 + TILE_ROWS)
        q = f32(vectors[s0:s1])
        cols = max(1, TILE_ELEMS // (s1 - s0))
        # Columns start at s0: rows only meet later rows, so each
        # unordered pair is computed once, by its earlier row.
        for c0 in range(s0, n, cols):
            c1 = min(n, c0 + cols)
            qi, ci, s = _tile_pairs(q, f32(vectors[c0:c1]), thr)
            u, w = qi + s0, ci + c0
            if c0 < s1:  # tile touches the diagonal
                keep = w > u
                u, w, s = u[keep], w[keep], s[keep]
            pos_u.append(u)
            pos_w.append(w)
            sims.append(s)
    if pos_u:
        capped = cap_per_owner(np.concatenate(pos_u), np.concatenate(pos_w), np.concatenate(sims), max_neighbors, r0, r1 - r0)
        pos_u, pos_w, sims = [capped[0]], [capped[1]], [capped[2]]
    block = edge_block(blk, pos_u, pos_w, sims, ids)
    log.debug("exact block %d: rows %d-%d, %d edges", blk + 1, r0, r1, len(block))
    return block


# Levels tried, as fractions of the way from the threshold to 1, when a row owns more pairs than the
# cap: dense near-copy clusters put most of a row's pairs high up, so the top levels cut the most.
_TRIM_LEVELS = (0.25, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99)


def trim_heavy_rows(owned: np.ndarray, sim: np.ndarray, thr: np.float32, k: int) -> None:
    """Drop, in rows owning more than ``k`` pairs, pairs below the highest level that still leaves ``k``.

    What is kept holds every pair of the row's top ``k`` (ties included), so the exact cap that follows
    (:func:`cap_per_owner`, ties by position) gives the same edges; the pairs below never have to be extracted,
    sorted and capped one by one.
    """
    counts = np.count_nonzero(owned, axis=1)
    rows = np.flatnonzero(counts > k)
    if not rows.size:
        return
    sub_owned = owned[rows]
    sub_sim = sim[rows]
    level = np.full(rows.size, thr, dtype=np.float32)
    live = np.arange(rows.size)
    for frac in _TRIM_LEVELS:
        cut = np.float32(thr + (1.0 - thr) * frac)
        enough = np.count_nonzero(sub_owned[live] & (sub_sim[live] >= cut), axis=1) >= k
        live = live[enough]
        if not live.size:
            break
        level[live] = cut
    raised = level > thr
    if raised.any():
        r = rows[raised]
        owned[r] = sub_owned[raised] & (sub_sim[raised] >= level[raised][:, None])


def brute_force_pairs(vectors: np.ndarray, ids: np.ndarray, threshold: float) -> EdgeBlock:
    """Reference join for tests: all pairs with inner product ``>= threshold``.

    Straightforward row-chunked ``X @ X.T`` upper triangle; returns one
    :class:`EdgeBlock` (``block_no=0``) sorted by ``(a, b)``.
    """
    ids = check_inputs(vectors, ids)
    x = f32(vectors)
    thr = np.float32(threshold)
    n = x.shape[0]
    us, ws, ss = [], [], []
    for r0 in range(0, n, 1024):
        s = x[r0 : r0 + 1024] @ x.T
        rows, cols = np.nonzero(s >= thr)
        rows_abs = rows + r0
        keep = cols > rows_abs
        us.append(rows_abs[keep].astype(np.int64))
        ws.append(cols[keep].astype(np.int64))
        ss.append(s[rows[keep], cols[keep]])
    return edge_block(0, us, ws, ss, ids)
