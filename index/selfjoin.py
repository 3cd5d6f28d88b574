"""All-pairs near-copy join: every pair of prompts with cosine >= threshold.

:func:`self_join` streams the result as :class:`EdgeBlock` objects. Blocks are
numbered ``0, 1, ...`` deterministically (given the same inputs, parameters
and seed), every pair appears in exactly one block, and every block is
yielded, even an empty one, so a caller can persist each block, record its
``block_no`` as a checkpoint and later resume with ``start_block=block_no+1``.

Two strategies:

``exact``
    Rows are processed in blocks of ``block_size``; each row is compared with
    every *later* row (upper triangle), in tiles of bounded size, so memory
    stays ``O(block rows x tile columns)`` and never ``O(n^2)``. A pair is
    *owned* by its earlier row (in input order). Cost ``~ n^2 * d`` flops.

``ivf``
    Spherical k-means splits the vectors into ``nlist`` lists; each vector is
    assigned to its nearest centroid. For each list ``L`` its members are
    compared with the members of ``probe(L)``, the ``nprobe`` lists whose
    centroids are nearest to ``L``'s (always including ``L``). A pair
    ``(u, w)`` is therefore *found* from ``u``'s side when
    ``list(w) in probe(list(u))`` and from ``w``'s side when
    ``list(u) in probe(list(w))``. It is emitted from ``u``'s side iff
    ``u`` precedes ``w`` in input order, or ``w``'s side cannot find it
    (``list(u) not in probe(list(w))``). Exactly one side emits each found
    pair, and the rule never compares floating-point similarities computed on
    different sides, so rounding cannot duplicate or drop a pair. The side
    that emits is the pair's owner. Recall is approximate (a pair is missed
    only when neither list probes the other); blocks are runs of
    consecutive lists holding about ``block_size`` vectors.

    *Spill* (``spill > 0``): a vector whose second-nearest centroid is within
    ``spill`` (inner product) of its nearest is also a *candidate* in that
    second list, i.e. compared with the members of every list that probes it.
    Near-copy pairs missed by the plain join sit on list boundaries, which is
    exactly where such vectors are: at a million static-tier prompts spill
    0.05 finds over half of the pairs nprobe 8 misses for 1.3x the join time,
    more than raising nprobe to 12 does for the same time
    (bench/join_recall.py). A vector is only
    ever a query in its own list, so ownership keeps the rule above, with
    "``w``'s side finds ``u``" widened to ``list(u)`` or ``second(u)`` in
    ``probe(list(w))``.

    *Point probes* (``point_probes = p > 0``): a list's probes are the lists
    nearest its *centroid*, but a vector near the list's edge has near-copies
    in lists nearest *itself*, which its list may not probe; the more lists
    (the larger n), the more such vectors. Each vector is then also compared
    with the members (and spilled candidates) of its own ``p`` nearest lists,
    as a FAISS IVF search probes per query. A side's probe set becomes
    ``S(v) = probe(list(v))`` plus ``v``'s own nearest lists, and everything
    above holds with ``S`` in place of ``probe(list(.))``. The comparisons
    this adds are made in a second pass of each list ``L``: one product of
    ``L``'s candidates with every vector that has ``L`` among its nearest
    lists while its own list does not probe ``L`` (thousands of queries from
    many lists) instead of one small product per (query list, extra list).
    What each side emits there is decided per near pair by the same rule.
    At 1M prompts 8 point probes still cost 1.8x the join, where a prompt
    gains 3.0 lists against 8 probes: the passes are small products there.

``max_neighbors`` (optional) bounds the output on pathological data such as
thousands of identical prompts (which would otherwise give a quadratic number
of edges): each vector keeps only its ``max_neighbors`` most similar *owned*
pairs (ties broken by input order). With point probes it keeps that many
in its own list's pass and again as many over its point-probe passes
together (each keeps ``ceil(max_neighbors / p)``). The total number of
edges is then at most ``n * max_neighbors`` (twice that with point probes),
but a vector can still appear in more edges (owned by others). Within a
group of mutual copies every vector keeps an edge to a later member, so the
group stays connected for union-find/connected-components.

Input vectors are float32 or float16 ``(n, d)`` arrays (an ``np.memmap`` is
fine: rows are converted to float32 one tile at a time). Vectors should be
L2-normalised; the join uses the raw inner product.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from index.build import EXACT_MAX, MAX_NLIST, MIN_POINTS_PER_LIST
from index.settings import DEFAULT_JOIN, JoinSettings

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "EdgeBlock",
    "IvfPlan",
    "brute_force_pairs",
    "default_nlist",
    "local_map",
    "plan_ivf",
    "self_join",
]

log = logging.getLogger(__name__)

#: Rows (exact) or approximately vectors (ivf) per yielded block.
DEFAULT_BLOCK_SIZE = 4096

# Similarity tiles hold at most this many float32 values (64 MiB), whatever
# block_size is, so peak memory does not grow with n.
_TILE_ELEMS = 1 << 24
# Query rows per tile; 2048 x 8192 x 384 is large enough for BLAS to run at
# full speed.
_TILE_ROWS = 2048
# Rows converted per chunk when assigning vectors to IVF lists.
_ASSIGN_CHUNK = 65_536


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


@dataclass(frozen=True)
class IvfPlan:
    """Partition used by the ``ivf`` join (deterministic for a given seed).

    ``centroids``: float32 ``(nlist, d)``; ``assign``: int64 ``(n,)`` list of
    each vector; ``probe``: int64 ``(nlist, nprobe)`` lists compared with each
    list, ``probe[L, 0] == L``; ``order``: int64 ``(n,)`` positions sorted by
    list (stable, so ascending within a list); ``starts``: int64
    ``(nlist + 1,)`` offsets of each list in ``order``; ``block_lists``:
    int64 ``(nblocks + 1,)`` first list of each block.
    """

    centroids: np.ndarray
    assign: np.ndarray
    probe: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    block_lists: np.ndarray
    #: int64 ``(n,)`` second list of each spilled vector, -1 when not spilled.
    second: np.ndarray | None = None
    #: spilled positions sorted by second list, and offsets per list (like order/starts).
    spill_order: np.ndarray | None = None
    spill_starts: np.ndarray | None = None
    #: int32 ``(n, p)`` each vector's own ``p`` nearest lists (``point_probes``), None when off.
    point_probe: np.ndarray | None = None
    #: positions grouped by each of their nearest lists their own list does not probe, and offsets per
    #: list (like order/starts; :meth:`probed_from`).
    point_order: np.ndarray | None = None
    point_starts: np.ndarray | None = None

    @property
    def nlist(self) -> int:
        """Number of lists."""
        return int(self.centroids.shape[0])

    @property
    def nblocks(self) -> int:
        """Number of blocks the join yields."""
        return int(self.block_lists.shape[0]) - 1

    def members(self, lst: int) -> np.ndarray:
        """Positions (int64, ascending) of the vectors assigned to list ``lst``."""
        return self.order[self.starts[lst] : self.starts[lst + 1]]

    @property
    def spills(self) -> bool:
        """Whether some vectors are also candidates in a second list."""
        return self.spill_order is not None and len(self.spill_order) > 0

    def compares(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Whether the join compares positions ``u[i]`` and ``w[i]`` at all (bool ``(m,)``).

        A pair is compared when one side's probe set (:meth:`probes_of`: its list's probes, plus its own
        nearest lists with point probes) holds the other's own or second list: the partition's recall,
        before any threshold or cap. Benchmarks use it to tell a partition's misses
        from what the cap drops, without running the join.
        """
        u = np.asarray(u, dtype=np.int64)
        w = np.asarray(w, dtype=np.int64)

        def probes(q: np.ndarray, c: np.ndarray) -> np.ndarray:
            rows = self.probes_of(q)
            hit = (rows == self.assign[c][:, None]).any(axis=1)
            if self.second is not None:
                sec = self.second[c]
                hit |= (sec >= 0) & (rows == sec[:, None]).any(axis=1)
            return hit

        return probes(u, w) | probes(w, u)

    def probes_of(self, pos: np.ndarray) -> np.ndarray:
        """The lists each position's side compares it with: its list's probes, and its own nearest lists
        when point probes are on (int64 ``(m, nprobe [+ p])``, repeats possible)."""
        rows = self.probe[self.assign[pos]]
        if self.point_probe is None:
            return rows
        return np.concatenate([rows, self.point_probe[pos].astype(np.int64)], axis=1)

    def probed_from(self, lst: int) -> np.ndarray:
        """Positions (int64, ascending) that have ``lst`` among their own nearest lists although their list
        does not probe it: the queries point probes add to ``lst`` (empty when point probes are off)."""
        if self.point_order is None:
            return np.empty(0, dtype=np.int64)
        return self.point_order[self.point_starts[lst] : self.point_starts[lst + 1]]

    def spilled(self, lst: int) -> np.ndarray:
        """Positions (int64, ascending) of the vectors whose second list is ``lst``."""
        if self.spill_order is None:
            return np.empty(0, dtype=np.int64)
        return self.spill_order[self.spill_starts[lst] : self.spill_starts[lst + 1]]


# ---------------------------------------------------------------- helpers


def _f32(rows: np.ndarray) -> np.ndarray:
    """float32 C-contiguous copy/view of some rows (converts float16/memmap)."""
    return np.ascontiguousarray(rows, dtype=np.float32)


def _validate(vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
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


def _cap(
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


def _edge_block(
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


# ------------------------------------------------------------------- exact


def _exact_block(shared: tuple, blk: int) -> EdgeBlock:
    """Block ``blk`` of the exact join; ``shared`` = (vectors, ids, thr, block_size, max_neighbors)."""
    vectors, ids, thr, block_size, max_neighbors = shared
    n = vectors.shape[0]
    r0, r1 = blk * block_size, min(n, (blk + 1) * block_size)
    pos_u: list[np.ndarray] = []
    pos_w: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for s0 in range(r0, r1, _TILE_ROWS):
        s1 = min(r1, s0 + _TILE_ROWS)
        q = _f32(vectors[s0:s1])
        cols = max(1, _TILE_ELEMS // (s1 - s0))
        # Columns start at s0: rows only meet later rows, so each
        # unordered pair is computed once, by its earlier row.
        for c0 in range(s0, n, cols):
            c1 = min(n, c0 + cols)
            qi, ci, s = _tile_pairs(q, _f32(vectors[c0:c1]), thr)
            u, w = qi + s0, ci + c0
            if c0 < s1:  # tile touches the diagonal
                keep = w > u
                u, w, s = u[keep], w[keep], s[keep]
            pos_u.append(u)
            pos_w.append(w)
            sims.append(s)
    if pos_u:
        capped = _cap(np.concatenate(pos_u), np.concatenate(pos_w), np.concatenate(sims), max_neighbors, r0, r1 - r0)
        pos_u, pos_w, sims = [capped[0]], [capped[1]], [capped[2]]
    block = _edge_block(blk, pos_u, pos_w, sims, ids)
    log.debug("exact block %d: rows %d-%d, %d edges", blk + 1, r0, r1, len(block))
    return block


# --------------------------------------------------------------------- ivf


def default_nlist(n: int, nprobe: int) -> int:
    """nlist for the ivf join of ``n`` vectors.

    Assigning vectors costs ``n * nlist * d`` and the join about
    ``n * (n / nlist) * nprobe * d``; they balance at
    ``nlist = sqrt(n * nprobe)``, rounded to a power of two, capped at
    :data:`~index.build.MAX_NLIST` and at ``n / 39`` so that k-means has
    enough points per centroid.
    """
    if n <= 0:
        return 1
    nlist = 1 << max(0, round(math.log2(max(1.0, math.sqrt(n * nprobe)))))
    return max(1, min(nlist, MAX_NLIST, n // MIN_POINTS_PER_LIST))


def plan_ivf(
    vectors: np.ndarray,
    *,
    settings: JoinSettings = DEFAULT_JOIN,
    nlist: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    niter: int = 10,
    seed: int = 0,
    centroids: np.ndarray | None = None,
) -> IvfPlan:
    """Cluster ``vectors`` (float ``(n, d)``) into lists and group lists into blocks.

    k-means is spherical, trained on at most ``256 * nlist`` rows sampled with
    ``seed``. The plan is deterministic for the same inputs, seed and FAISS
    thread count. ``centroids`` (float32 ``(nlist, d)``, e.g. a trained IVF
    index's) skips k-means: the vectors are assigned to those lists. ``settings``:
    ``nprobe`` lists compared with each list; ``spill`` (inner-product margin,
    0 = off): see the module docstring; ``max_list`` (0 = off): a list with more
    members is split by a small k-means of its own into ``ceil(size / max_list)``
    lists (see :func:`_split_lists`); ``point_probes`` (0 = off): each vector is
    also compared with the members of its own ``point_probes`` nearest lists
    (module docstring).
    """
    nprobe, spill, point_probes = settings.nprobe, settings.spill, settings.point_probes
    max_list = settings.max_list or None
    n, d = vectors.shape
    if centroids is not None and n:
        given = np.ascontiguousarray(centroids, dtype=np.float32)
        if given.ndim != 2 or given.shape[1] != d or not len(given):
            raise ValueError(f"centroids of shape {given.shape} do not fit vectors of dimension {d}")
        nlist = len(given)
    if nlist is None:
        nlist = default_nlist(n, nprobe)
    nlist = max(1, min(int(nlist), n)) if n else 1
    asked_probe = int(nprobe)
    nprobe = max(1, min(asked_probe, nlist))
    rng = np.random.default_rng(seed)
    if n == 0:
        centroids = np.zeros((1, d), dtype=np.float32)
    elif centroids is not None:
        centroids = given
    elif nlist == 1:
        centroids = np.zeros((1, d), dtype=np.float32)
    else:
        m = min(n, 256 * nlist)
        sample = np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)
        km = faiss.Kmeans(
            d,
            nlist,
            niter=niter,
            spherical=True,
            seed=seed,
            verbose=False,
            max_points_per_centroid=256,
        )
        km.train(_f32(vectors[sample]))
        centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)

    assign = np.zeros(n, dtype=np.int64)
    second = np.full(n, -1, dtype=np.int64)
    point_probe = None
    if nlist > 1:
        k = min(nlist, max(2 if spill > 0 else 1, point_probes))
        if point_probes:
            point_probe = np.empty((n, min(point_probes, nlist)), dtype=np.int32)
        for c0, c1, dist, nearest in _nearest_centroids(vectors, centroids, k):
            assign[c0:c1] = nearest[:, 0]
            if spill > 0:
                close = (dist[:, 0] - dist[:, 1] <= spill) & (nearest[:, 1] >= 0) & (nearest[:, 1] != nearest[:, 0])
                second[c0:c1] = np.where(close, nearest[:, 1], -1)
            if point_probe is not None:
                point_probe[c0:c1] = nearest[:, : point_probe.shape[1]]
    if max_list is not None and n and np.bincount(assign, minlength=nlist).max() > max_list:
        centroids, assign, second = _split_lists(vectors, centroids, assign, max_list, spill, seed)
        nlist = len(centroids)
        nprobe = max(1, min(asked_probe, nlist))
        if point_probes:  # nearest lists among the split ones: one more pass over the vectors
            point_probe = np.empty((n, min(point_probes, nlist)), dtype=np.int32)
            for c0, c1, _, nearest in _nearest_centroids(vectors, centroids, point_probe.shape[1]):
                point_probe[c0:c1] = nearest
    if nlist > 1:
        quantizer = faiss.IndexFlatIP(d)
        quantizer.add(centroids)
        _, near = quantizer.search(centroids, nprobe)
        probe = np.empty((nlist, nprobe), dtype=np.int64)
        for lst in range(nlist):
            # Put the list itself first even if a duplicate centroid tied
            # with it; the dedup rule relies on lst in probe[lst].
            others = [int(x) for x in near[lst] if x != lst and x >= 0][: nprobe - 1]
            row = [lst, *others]
            while len(row) < nprobe:  # fewer distinct neighbours than nprobe
                row.append(lst)
            probe[lst] = row
    else:
        probe = np.zeros((1, 1), dtype=np.int64)

    order = np.argsort(assign, kind="stable").astype(np.int64, copy=False)
    sizes = np.bincount(assign, minlength=nlist)
    starts = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    # Blocks: runs of consecutive lists with about block_size members.
    block_lists = [0]
    acc = 0
    for lst in range(nlist):
        acc += int(sizes[lst])
        if acc >= block_size and lst + 1 < nlist:
            block_lists.append(lst + 1)
            acc = 0
    block_lists.append(nlist)
    if n == 0:
        block_lists = [0]
    point_order = point_starts = None
    if point_probe is not None:
        point_order, point_starts = _group_by_list(*_point_probe_extras(point_probe, probe, assign), nlist)
    spilled = np.flatnonzero(second >= 0)
    spill_order, spill_starts = _group_by_list(spilled.astype(np.int64, copy=False), second[spilled], nlist)
    return IvfPlan(
        centroids=centroids,
        assign=assign,
        probe=probe,
        order=order,
        starts=starts,
        block_lists=np.asarray(block_lists, dtype=np.int64),
        second=second,
        spill_order=spill_order,
        spill_starts=spill_starts,
        point_probe=point_probe,
        point_order=point_order,
        point_starts=point_starts,
    )


def _point_probe_extras(point_probe: np.ndarray, probe: np.ndarray, assign: np.ndarray):
    """(positions, lists): each vector's nearest lists that its own list does not probe, in position order."""
    pos_parts, list_parts = [], []
    for c0 in range(0, len(assign), _ASSIGN_CHUNK):
        pp = point_probe[c0 : c0 + _ASSIGN_CHUNK]
        probed = (pp[:, :, None] == probe[assign[c0 : c0 + _ASSIGN_CHUNK]][:, None, :]).any(axis=2)
        row, col = np.nonzero(~probed)
        pos_parts.append(row + c0)
        list_parts.append(pp[row, col])
    if not pos_parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(pos_parts).astype(np.int64, copy=False), np.concatenate(list_parts).astype(np.int64)


def _group_by_list(pos: np.ndarray, lists: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by list (stable, so ascending within a list) and each list's offsets."""
    grouped = pos[np.argsort(lists, kind="stable")]
    starts = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(np.bincount(lists, minlength=nlist), out=starts[1:])
    return grouped, starts


def _nearest_centroids(vectors: np.ndarray, centroids: np.ndarray, k: int):
    """Per chunk of rows, ``(c0, c1, sims, nearest)``: each row's ``k`` nearest centroids, nearest first."""
    quantizer = faiss.IndexFlatIP(centroids.shape[1])
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    for c0 in range(0, vectors.shape[0], _ASSIGN_CHUNK):
        c1 = min(vectors.shape[0], c0 + _ASSIGN_CHUNK)
        dist, nearest = quantizer.search(_f32(vectors[c0:c1]), k)
        yield c0, c1, dist, nearest


def _split_lists(
    vectors: np.ndarray, centroids: np.ndarray, assign: np.ndarray, max_list: int, spill: float, seed: int,
    niter: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every list of more than ``max_list`` members by a spherical k-means of its own.

    Why: the join costs about ``size x nprobe x size`` per list, and the index's lists grow as
    ``sqrt(n)`` (``4 sqrt(n)`` lists), so with its lists alone the join grows as ``n^1.5``; lists
    of bounded size make it linear. One k-means over ``n / max_list`` centroids would cost
    ``n^2``; splitting each list on its own members costs ``size^2 / max_list`` per list.

    A list of ``s`` members becomes ``ceil(s / max_list)`` lists (its sub-centroids, kept in
    the list's place so blocks stay local). Each vector then takes the nearest sub-centroid of
    its own list and of the lists whose centroids are nearest its own (4 in all), which is where
    its true nearest sub-centroid lies; its second-nearest there is its spill list when within
    ``spill``. Returns (centroids, assign, second) of the split lists.
    """
    nlist, d = centroids.shape
    order = np.argsort(assign, kind="stable")
    starts = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(np.bincount(assign, minlength=nlist), out=starts[1:])
    subs: list[np.ndarray] = []
    for lst in range(nlist):
        mem = order[starts[lst] : starts[lst + 1]]
        k = max(1, math.ceil(mem.size / max_list))
        if k == 1:
            subs.append(centroids[lst : lst + 1])
            continue
        x = _f32(vectors[mem])
        rng = np.random.default_rng([seed, lst])
        c = x[np.sort(rng.choice(mem.size, k, replace=False))]
        for _ in range(niter):
            lab = np.argmax(x @ c.T, axis=1)
            onehot = np.zeros((k, mem.size), dtype=np.float32)
            onehot[lab, np.arange(mem.size)] = 1.0
            summed = onehot @ x
            norm = np.linalg.norm(summed, axis=1)
            live = norm > 0  # an emptied sub-centroid keeps its place
            c[live] = summed[live] / norm[live, None]
        subs.append(c)
    first = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum([len(c) for c in subs], out=first[1:])
    fine = np.ascontiguousarray(np.concatenate(subs), dtype=np.float32)
    near_lists = min(4, nlist)
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    _, near = quantizer.search(np.ascontiguousarray(centroids, dtype=np.float32), near_lists)
    new_assign = np.empty_like(assign)
    new_second = np.full_like(assign, -1)
    for lst in range(nlist):
        mem = order[starts[lst] : starts[lst + 1]]
        if mem.size == 0:
            continue
        cand = np.concatenate([np.arange(first[m], first[m + 1]) for m in dict.fromkeys([lst, *near[lst]]) if m >= 0])
        sims = _f32(vectors[mem]) @ fine[cand].T
        if cand.size == 1:
            new_assign[mem] = cand[0]
            continue
        top2 = np.argpartition(-sims, 1, axis=1)[:, :2]
        s2 = np.take_along_axis(sims, top2, axis=1)
        swap = s2[:, 1] > s2[:, 0]
        best = np.where(swap, top2[:, 1], top2[:, 0])
        runner = np.where(swap, top2[:, 0], top2[:, 1])
        new_assign[mem] = cand[best]
        if spill > 0:
            margin = np.abs(s2[:, 0] - s2[:, 1])
            new_second[mem] = np.where(margin <= spill, cand[runner], -1)
    log.info("ivf lists split: %d -> %d lists of at most ~%d", nlist, len(fine), max_list)
    return fine, new_assign, new_second


def _ivf_block(shared: tuple, blk: int) -> EdgeBlock:
    """Block ``blk`` of the IVF join; ``shared`` = (vectors, ids, thr, plan, max_neighbors)."""
    vectors, ids, thr, plan, max_neighbors = shared
    pos_u: list[np.ndarray] = []
    pos_w: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for lst in range(int(plan.block_lists[blk]), int(plan.block_lists[blk + 1])):
        qpos = plan.members(lst)
        if qpos.size:
            probe_lists = np.unique(plan.probe[lst])  # duplicates only when padded
            cpos = np.concatenate([plan.members(int(m)) for m in probe_lists])
            if plan.spills:
                extra = np.concatenate([plan.spilled(int(m)) for m in probe_lists])
                # A vector whose own list is probed is a candidate already: once is enough.
                cpos = np.concatenate([cpos, extra[~np.isin(plan.assign[extra], probe_lists)]])
            # Owners as indexes into qpos, so the cap counts pairs per owner cheaply.
            found: tuple[list, list, list] = ([], [], [])
            _join_tiles(vectors, thr, plan, lst, qpos, cpos, max_neighbors, found)
            _append_capped(found, qpos, max_neighbors, pos_u, pos_w, sims)
        if plan.point_probe is not None:
            queries = plan.probed_from(lst)
            if queries.size:
                found = ([], [], [])
                cap = _point_probe_cap(max_neighbors, plan)
                _point_probe_pass(vectors, thr, plan, lst, queries, cap, found)
                _append_capped(found, queries, cap, pos_u, pos_w, sims)
    block = _edge_block(blk, pos_u, pos_w, sims, ids)
    log.debug("ivf block %d/%d: %d edges", blk + 1, plan.nblocks, len(block))
    return block


def _point_probe_cap(max_neighbors: int | None, plan: IvfPlan) -> int | None:
    """Pairs an owner keeps per point-probe pass: its passes (at most ``p``, one per nearest list its list
    does not probe) together keep no more than ``max_neighbors``, as its own list's pass does.

    A prompt's dense cluster of copies sits mostly in its own list; with the full cap in every pass, the
    passes re-listed the cluster's tail (8 point probes at 1M: 46% more edges for 0.07 points of top-20
    recall more than this cap).
    """
    if max_neighbors is None:
        return None
    return -(-max_neighbors // plan.point_probe.shape[1])


def _append_capped(found: tuple[list, list, list], qpos: np.ndarray, max_neighbors: int | None,
                   pos_u: list, pos_w: list, sims: list) -> None:
    """Cap one pass's pairs per owner (``found[0]`` indexes ``qpos``) and append them as positions."""
    if not found[0]:
        return
    lu, w, s = _cap(np.concatenate(found[0]), np.concatenate(found[1]), np.concatenate(found[2]),
                    max_neighbors, 0, qpos.size)
    pos_u.append(qpos[lu])
    pos_w.append(w)
    sims.append(s)


def _join_tiles(vectors: np.ndarray, thr: np.float32, plan: IvfPlan, lst: int, qpos: np.ndarray, cpos: np.ndarray,
                max_neighbors: int | None, found: tuple[list, list, list]) -> None:
    """Append to ``found`` the near pairs (query index in ``qpos``, candidate position, sim) list ``lst``'s
    side emits; ``qpos``: the list's members, ``cpos``: its candidates."""
    # Which lists each candidate's side compares it with: one lookup per candidate, not per pair found.
    cprobe = plan.probes_of(cpos)
    sees_lst = (cprobe == lst).any(axis=1)
    for s0 in range(0, qpos.size, _TILE_ROWS):
        qp = qpos[s0 : s0 + _TILE_ROWS]
        q = _f32(vectors[qp])
        second = plan.second[qp] if plan.spills else None
        cols = max(1, _TILE_ELEMS // qp.size)
        for c0 in range(0, cpos.size, cols):
            c1 = min(cpos.size, c0 + cols)
            cp = cpos[c0:c1]
            sim = q @ _f32(vectors[cp]).T
            owned = _owned(sim, thr, qp, cp, sees_lst[c0:c1], second, cprobe[c0:c1])
            if max_neighbors is not None:
                _trim_heavy_rows(owned, sim, thr, max_neighbors)
            qi, ci = np.nonzero(owned)
            found[0].append(qi + s0)
            found[1].append(cp[ci])
            found[2].append(sim[qi, ci])


def _point_probe_pass(vectors: np.ndarray, thr: np.float32, plan: IvfPlan, lst: int, queries: np.ndarray,
                      max_neighbors: int | None, found: tuple[list, list, list]) -> None:
    """Append to ``found`` the pairs point probes add in list ``lst``: (index in ``queries``, candidate, sim).

    ``queries`` are the vectors from other lists that have ``lst`` among their own nearest lists although
    their list does not probe it; they are compared with ``lst``'s members and spilled candidates in one
    matrix product, rather than one small product per query list (whose Python overhead tripled the join).
    Queries come from many lists, so which pairs this side may emit is decided per near pair, not per tile:
    near pairs are far fewer than tile entries, and each takes a few dozen integer comparisons.
    """
    members = plan.members(lst)
    cand = np.concatenate([members, plan.spilled(lst)]) if plan.spills else members
    if not cand.size:
        return
    cprobe = plan.probes_of(cand)
    for s0 in range(0, queries.size, _TILE_ROWS):
        qp = queries[s0 : s0 + _TILE_ROWS]
        q = _f32(vectors[qp])
        qlist = plan.assign[qp]
        cols = max(1, _TILE_ELEMS // qp.size)
        for c0 in range(0, cand.size, cols):
            c1 = min(cand.size, c0 + cols)
            sim = q @ _f32(vectors[cand[c0:c1]]).T
            qi, ci = np.nonzero(sim >= thr)
            if not qi.size:
                continue
            ci += c0
            keep = _point_probe_owned(plan, qp[qi], qlist[qi], cand[ci], ci < members.size, cprobe, ci)
            qi, ci = qi[keep], ci[keep]
            # Capped per tile as well as per pass, so a dense cluster never piles up pairs in memory.
            qi, w, s = _cap(qi, cand[ci], sim[qi, ci - c0], max_neighbors, 0, qp.size)
            found[0].append(qi + s0)
            found[1].append(w)
            found[2].append(s)


def _point_probe_owned(plan: IvfPlan, u: np.ndarray, ulist: np.ndarray, w: np.ndarray, w_member: np.ndarray,
                       cprobe: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """Which near pairs ``(u[i], w[i])`` of a point-probe pass are new and emitted from ``u``'s side.

    ``u``'s list does not probe this pass's list ``L`` (that is why ``u`` is here). A member ``w`` of ``L``
    was compared already when ``w``'s second list is probed by ``u``'s list; a ``w`` spilled into ``L``
    when its own list is probed by ``u``'s list, or is one of ``u``'s nearest lists (then ``w`` meets ``u``
    as a member there). Of the pairs left, ``u`` emits those with ``u`` before ``w`` or that ``w``'s side
    never compares (neither ``list(u)`` nor ``second(u)`` in ``S(w)``, ``S(w) = cprobe[ci]``): the module
    docstring's rule. Each test runs only on the pairs it can change (a profile at 1M: 2.4x less time here).
    """
    keep = np.ones(u.size, dtype=bool)
    if plan.spills:
        sec = plan.second[w]
        rows = np.flatnonzero(w_member & (sec >= 0))
        keep[rows] = ~(plan.probe[ulist[rows]] == sec[rows, None]).any(axis=1)
        rows = np.flatnonzero(~w_member)
        wlist = plan.assign[w[rows]][:, None]
        keep[rows] = ~((plan.probe[ulist[rows]] == wlist).any(axis=1)
                       | (plan.point_probe[u[rows]] == wlist).any(axis=1))
    rows = np.flatnonzero(keep & (u > w))  # only these can be left to w's side
    wprobe = cprobe[ci[rows]]
    w_sees = (wprobe == ulist[rows, None]).any(axis=1)
    if plan.spills:
        usec = plan.second[u[rows]]
        w_sees |= (usec >= 0) & (wprobe == usec[:, None]).any(axis=1)
    keep[rows] = ~w_sees
    return keep


def _owned(sim: np.ndarray, thr: np.float32, qp: np.ndarray, cp: np.ndarray, sees_lst: np.ndarray,
           second: np.ndarray | None, cprobe: np.ndarray) -> np.ndarray:
    """Mask of the tile's pairs (query row, candidate column) that are near and emitted from this side.

    The rule of the module docstring, on the whole tile at once: a pair ``(u, w)`` with ``u`` at or
    after ``w`` in input order is left to ``w``'s side when ``w``'s list probes ``u``'s list (or
    ``u``'s second list). ``u == w`` is dropped by the same test, since a list probes itself. Masks
    cost a fraction of a nanosecond per tile entry; the near pairs they remove, when found one by one,
    cost tens (dense near-copy clusters find thousands per row).
    """
    owned = sim >= thr
    at_or_after = qp[:, None] >= cp[None, :]
    drop = at_or_after & sees_lst[None, :]
    spilled = np.flatnonzero(second >= 0) if second is not None else ()
    if len(spilled):
        # A spilled owner is also a candidate in the lists that probe its second list: per distinct
        # second list, which candidates' lists probe it (a few dozen lists per tile at most).
        lists, which = np.unique(second[spilled], return_inverse=True)
        via = (cprobe[:, :, None] == lists[None, None, :]).any(axis=1) & ~sees_lst[:, None]
        if via.any():
            drop[spilled] |= at_or_after[spilled] & via.T[which]
    owned &= ~drop
    return owned


# Levels tried, as fractions of the way from the threshold to 1, when a row owns more pairs than the
# cap: dense near-copy clusters put most of a row's pairs high up, so the top levels cut the most.
_TRIM_LEVELS = (0.25, 0.5, 0.7, 0.85, 0.93, 0.97, 0.99)


def _trim_heavy_rows(owned: np.ndarray, sim: np.ndarray, thr: np.float32, k: int) -> None:
    """Drop, in rows owning more than ``k`` pairs, pairs below the highest level that still leaves ``k``.

    What is kept holds every pair of the row's top ``k`` (ties included), so the exact cap that follows
    (:func:`_cap`, ties by position) gives the same edges; the pairs below never have to be extracted,
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


def local_map(func, shared: tuple, blocks: range) -> Iterator[EdgeBlock]:
    """Compute the blocks one after another in this process (the default ``mapper``)."""
    for blk in blocks:
        yield func(shared, blk)


# --------------------------------------------------------------- public API


def self_join(
    vectors: np.ndarray,
    ids: np.ndarray,
    threshold: float,
    *,
    method: Literal["auto", "exact", "ivf"] = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
    start_block: int = 0,
    nlist: int | None = None,
    settings: JoinSettings = DEFAULT_JOIN,
    max_neighbors: int | None = None,
    seed: int = 0,
    mapper=local_map,
    centroids: np.ndarray | None = None,
) -> Iterator[EdgeBlock]:
    """Yield all pairs of rows whose inner product is ``>= threshold``.

    ``vectors``: float32/float16 ``(n, d)`` (may be an ``np.memmap``);
    ``ids``: unique int64 ``(n,)`` prompt ids, one per row. Yields
    :class:`EdgeBlock` objects numbered from ``start_block``; every pair
    ``(a, b)``, ``a < b``, appears in exactly one block of a full run.

    ``method="auto"`` uses ``exact`` up to :data:`~index.build.EXACT_MAX`
    vectors and ``ivf`` above. ``block_size`` is the number of rows per block
    (exact) or the approximate number of vectors per block (ivf); it sets the
    checkpoint granularity, not the memory use. ``nlist`` (default
    :func:`default_nlist`), ``settings`` and ``seed`` only affect ``ivf``; to
    resume an ivf join pass the same values. ``max_neighbors`` caps the
    edges each vector owns (see module docstring). ``mapper(func, shared,
    blocks)`` computes ``func(shared, blk)`` for each block number and yields
    the blocks in order: :func:`local_map` here, or a cluster's parallel map
    (every block depends only on ``shared`` and its number, so any mapper
    gives the same blocks). ``centroids`` (``ivf`` only): lists to use instead
    of k-means (see :func:`plan_ivf`). ``settings`` (``ivf`` only,
    :class:`~index.settings.JoinSettings`): ``nprobe``; ``spill``, the margin
    within which a vector is also a candidate in its second-nearest list
    (module docstring); ``max_list``, lists with more members are split
    (:func:`plan_ivf`); ``point_probes``, each vector is also compared with its
    own nearest lists (module docstring).

    Arguments are validated (and for ``ivf`` the k-means plan is computed)
    when this function is called; the tiles are computed lazily as blocks are
    consumed.
    """
    ids = _validate(vectors, ids)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if start_block < 0:
        raise ValueError(f"start_block must be >= 0, got {start_block}")
    if max_neighbors is not None and max_neighbors < 1:
        raise ValueError(f"max_neighbors must be >= 1 or None, got {max_neighbors}")
    if method == "auto":
        method = "exact" if vectors.shape[0] <= EXACT_MAX else "ivf"
    thr = np.float32(threshold)
    if method == "exact":
        nblocks = math.ceil(vectors.shape[0] / block_size)
        _check_start(start_block, nblocks)
        log.info("self-join exact: n=%d, %d blocks of %d rows", vectors.shape[0], nblocks, block_size)
        return mapper(_exact_block, (vectors, ids, thr, block_size, max_neighbors), range(start_block, nblocks))
    if method == "ivf":
        plan = plan_ivf(vectors, settings=settings, nlist=nlist, block_size=block_size, seed=seed,
                        centroids=centroids)
        _check_start(start_block, plan.nblocks)
        log.info("self-join ivf: n=%d, nlist=%d, nprobe=%d, spill %.3f (%d vectors), point probes %d, %d blocks",
                 vectors.shape[0], plan.nlist, plan.probe.shape[1], settings.spill, len(plan.spill_order),
                 settings.point_probes, plan.nblocks)
        return mapper(_ivf_block, (vectors, ids, thr, plan, max_neighbors), range(start_block, plan.nblocks))
    raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")


def _check_start(start_block: int, nblocks: int) -> None:
    # start_block == nblocks is a resume after the last block: nothing left.
    if start_block > nblocks:
        raise ValueError(f"start_block={start_block} beyond the {nblocks} blocks of this join")


def brute_force_pairs(vectors: np.ndarray, ids: np.ndarray, threshold: float) -> EdgeBlock:
    """Reference join for tests: all pairs with inner product ``>= threshold``.

    Straightforward row-chunked ``X @ X.T`` upper triangle; returns one
    :class:`EdgeBlock` (``block_no=0``) sorted by ``(a, b)``.
    """
    ids = _validate(vectors, ids)
    x = _f32(vectors)
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
    return _edge_block(0, us, ws, ss, ids)
