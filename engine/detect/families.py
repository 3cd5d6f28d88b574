"""Near-copy families from the self-join's edges, guarded against chaining.

Connected components of a near-copy graph chain: A~B, B~C, ..., Y~Z puts A and Z in one family though
they share nothing (a paraphrase walk). Families here are *stars* instead: prompts are visited by
decreasing degree (the most-copied text first); an unassigned prompt becomes a centre and takes every
unassigned neighbour. Every member is therefore a direct near-copy of its centre (cosine >= the scan
threshold), and two members are at worst two hops apart through the centre, never a chain. Prompts
with no edge are their own family (family_id = prompt_id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from engine.store.positions import IdPositions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FamilyAssignment:
    """Per prompt (aligned with `prompt_ids`): its family id (the centre's prompt id) and similarity to it."""

    prompt_ids: np.ndarray  # int64 (n,)
    family_ids: np.ndarray  # int64 (n,)
    sim_to_center: np.ndarray  # float32 (n,), 1.0 for centres

    @property
    def n_families(self) -> int:
        return int(np.unique(self.family_ids).size)


EdgeChunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]]


def build_families(
    prompt_ids: np.ndarray, edge_a: np.ndarray, edge_b: np.ndarray, sims: np.ndarray,
    weights: np.ndarray | None = None,
) -> FamilyAssignment:
    """Star clustering over edges (a, b, sim) held in memory; see `build_families_streamed`."""
    return build_families_streamed(prompt_ids, lambda: [(edge_a, edge_b, sims)], weights)


def build_families_streamed(prompt_ids: np.ndarray, edge_chunks: EdgeChunks,
                            weights: np.ndarray | None = None) -> FamilyAssignment:
    """Star clustering over edges read twice in chunks (a, b, sim); see module docstring.

    `prompt_ids` int64 (n,) every prompt; edges reference those ids. `edge_chunks()` returns a fresh
    iterable of edge chunks each time (the edges are read three times: to count degrees, to fill the
    adjacency, and to read each member's similarity to its centre). `weights` (n,) optionally breaks degree ties (e.g. exchange counts) so the
    most-sent variant becomes the centre.

    Memory is 4 bytes per edge direction (the int32 neighbour) plus one chunk: the edge list itself is
    never held whole, which at tens of millions of edges was most of a scan's peak. Each member's
    similarity to its centre is picked up by a third pass over the edges instead of holding every
    edge's similarity in the adjacency (at 10M exchanges, ~540M edges: 4.3 GB less).
    """
    prompt_ids = np.asarray(prompt_ids, np.int64)
    n = prompt_ids.size
    family = prompt_ids.copy()
    to_center = np.ones(n, np.float32)
    if n == 0:
        return FamilyAssignment(prompt_ids, family, to_center)
    where = IdPositions(prompt_ids)

    def positions():
        for ea, eb, es in _rebatched(edge_chunks()):
            yield where.of(ea), where.of(eb), np.asarray(es, np.float32)

    degree = np.zeros(n, np.int64)
    n_edges = 0
    for a, b, _ in positions():
        degree += np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
        n_edges += len(a)
    if n_edges == 0:
        return FamilyAssignment(prompt_ids, family, to_center)
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(degree, out=starts[1:])
    dst = np.empty(int(starts[-1]), np.int32)
    cursor = starts[:-1].copy()
    for a, b, _ in positions():
        rank = np.arange(len(a))
        for src, nbr in ((a, b), (b, a)):
            # Counting sort, one chunk at a time: each edge lands at its source's next free slot. The
            # order within a source does not matter (a centre takes all its free neighbours).
            by_src = np.argsort(src, kind="stable")  # runs: each join block is sorted by (a, b)
            src_sorted = src[by_src]
            new_src = np.empty(len(src_sorted), bool)
            new_src[:1] = True
            np.not_equal(src_sorted[1:], src_sorted[:-1], out=new_src[1:])
            first = np.maximum.accumulate(np.where(new_src, rank, 0))
            dst[cursor[src_sorted] + (rank - first)] = nbr[by_src]
            starts_at = np.flatnonzero(new_src)
            cursor[src_sorted[starts_at]] += np.diff(starts_at, append=len(src_sorted))
    tie = np.zeros(n) if weights is None else np.asarray(weights, float)
    # Highest degree first; ties by weight, then by lowest id (deterministic).
    visit = np.lexsort((prompt_ids, -tie, -degree))
    assigned = degree == 0  # singletons keep themselves
    centre = np.arange(n, dtype=np.int32)  # position of each prompt's centre
    for node in visit[~assigned[visit]].tolist():
        if assigned[node]:
            continue
        assigned[node] = True
        lo, hi = starts[node], starts[node + 1]
        nbrs = dst[lo:hi]
        free = ~assigned[nbrs]
        take = nbrs[free]
        family[take] = prompt_ids[node]
        centre[take] = node
        assigned[take] = True
    del dst
    # Each pair is one edge, so a member's edge to its centre is found exactly once.
    for a, b, s in positions():
        hit = centre[a] == b
        to_center[a[hit]] = s[hit]
        hit = centre[b] == a
        to_center[b[hit]] = s[hit]
    log.info("families: %d prompts, %d edges -> %d families (%d with 2+ prompts)", n, n_edges,
             np.unique(family).size, int((np.bincount(np.unique(family, return_inverse=True)[1]) > 1).sum()))
    return FamilyAssignment(prompt_ids, family, to_center)


# Edges per chunk the passes work on: DuckDB hands its Arrow reader's batches over at ~120k rows, and
# every chunk costs a bincount as long as the number of prompts (at 10M exchanges, 5.2M for each of
# ~5,000 chunks); much larger chunks sort slower (cache).
_CHUNK_EDGES = 1 << 20


def _rebatched(chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """The same edges in chunks of about ``_CHUNK_EDGES`` (the last one smaller)."""
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    rows = 0
    for chunk in chunks:
        held.append(chunk)
        rows += len(chunk[0])
        if rows >= _CHUNK_EDGES:
            yield tuple(np.concatenate([c[j] for c in held]) for j in range(3))
            held, rows = [], 0
    if held:
        yield tuple(np.concatenate([c[j] for c in held]) for j in range(3))

