"""The ``ivf`` join's partition (:class:`IvfPlan`): lists, probes, spills, point probes and blocks.

Spherical k-means splits the vectors into ``nlist`` lists (or a trained index's centroids are used);
each vector is assigned to its nearest centroid. ``probe(L)`` holds the ``nprobe`` lists whose centroids
are nearest to ``L``'s, ``L`` first; blocks are runs of consecutive lists holding about ``block_size``
vectors. The :class:`~index.settings.JoinSettings` add to that: with ``spill`` a vector whose
second-nearest centroid is within ``spill`` of its nearest is also a candidate there (``second``); with
``max_list`` bigger lists are split by a k-means of their own (:func:`_split_lists`); with
``point_probes`` each vector's own nearest lists are kept (``point_probe``), grouped per list for the
passes that use them. How the join uses the plan, and which side emits each pair: :mod:`index.ivfjoin`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import faiss
import numpy as np

from index.build import MAX_NLIST, MIN_POINTS_PER_LIST
from index.settings import DEFAULT_JOIN, JoinSettings
from index.tiles import DEFAULT_BLOCK_SIZE, f32

__all__ = ["IvfPlan", "default_nlist", "plan_ivf"]

log = logging.getLogger(__name__)

# Rows converted per chunk when assigning vectors to IVF lists.
_ASSIGN_CHUNK = 65_536


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
    0 = off): see :mod:`index.ivfjoin`; ``max_list`` (0 = off): a list with more
    members is split by a small k-means of its own into ``ceil(size / max_list)``
    lists (see :func:`_split_lists`); ``point_probes`` (0 = off): each vector is
    also compared with the members of its own ``point_probes`` nearest lists
    (:mod:`index.ivfjoin`).
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
        km.train(f32(vectors[sample]))
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
        dist, nearest = quantizer.search(f32(vectors[c0:c1]), k)
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
        x = f32(vectors[mem])
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
        sims = f32(vectors[mem]) @ fine[cand].T
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
