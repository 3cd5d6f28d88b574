"""The ``ivf`` join's blocks: each list's pass over its probes, spilled candidates and point probes.

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

The partition itself (lists, probes, spills, point probes, blocks) is :mod:`index.plan`'s.
"""

from __future__ import annotations

import logging

import numpy as np

from index.plan import IvfPlan
from index.tiles import TILE_ELEMS, TILE_ROWS, EdgeBlock, cap_per_owner, edge_block, f32, trim_heavy_rows

__all__ = ["ivf_block"]

log = logging.getLogger(__name__)


def ivf_block(shared: tuple, blk: int) -> EdgeBlock:
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
    block = edge_block(blk, pos_u, pos_w, sims, ids)
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
    lu, w, s = cap_per_owner(np.concatenate(found[0]), np.concatenate(found[1]), np.concatenate(found[2]),
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
    for s0 in range(0, qpos.size, TILE_ROWS):
        qp = qpos[s0 : s0 + TILE_ROWS]
        q = f32(vectors[qp])
        second = plan.second[qp] if plan.spills else None
        cols = max(1, TILE_ELEMS // qp.size)
        for c0 in range(0, cpos.size, cols):
            c1 = min(cpos.size, c0 + cols)
            cp = cpos[c0:c1]
            sim = q @ f32(vectors[cp]).T
            owned = _owned(sim, thr, qp, cp, sees_lst[c0:c1], second, cprobe[c0:c1])
            if max_neighbors is not None:
                trim_heavy_rows(owned, sim, thr, max_neighbors)
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
    for s0 in range(0, queries.size, TILE_ROWS):
        qp = queries[s0 : s0 + TILE_ROWS]
        q = f32(vectors[qp])
        qlist = plan.assign[qp]
        cols = max(1, TILE_ELEMS // qp.size)
        for c0 in range(0, cand.size, cols):
            c1 = min(cand.size, c0 + cols)
            sim = q @ f32(vectors[cand[c0:c1]]).T
            qi, ci = np.nonzero(sim >= thr)
            if not qi.size:
                continue
            ci += c0
            keep = _point_probe_owned(plan, qp[qi], qlist[qi], cand[ci], ci < members.size, cprobe, ci)
            qi, ci = qi[keep], ci[keep]
            # Capped per tile as well as per pass, so a dense cluster never piles up pairs in memory.
            qi, w, s = cap_per_owner(qi, cand[ci], sim[qi, ci - c0], max_neighbors, 0, qp.size)
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
