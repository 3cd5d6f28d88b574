"""Rings: groups of three or more accounts tied by significant links (`engine.detect.links`).

**Rings** are Louvain communities (networkx, fixed seed) of the significant links with at least
three accounts. Two accounts sharing content can be a couple, two accounts of one person or one
company; three or more accounts all tied by rare content, each tie above the null, are what a
campaign that spreads traffic over accounts looks like, and chance needs several independent false
links to build one.

An account outside a ring whose ties to the ring as a whole (not to any one member) pass the same
kind of null joins it (:func:`expand_rings`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import duckdb
import networkx as nx
import numpy as np
import pyarrow as pa

from engine.detect.links import LinkGraph, shuffle_relations

log = logging.getLogger(__name__)

__all__ = ["RingExpansion", "expand_rings", "find_rings"]


@dataclass(frozen=True)
class RingExpansion:
    """Accounts that joined a ring by their summed ties to its members (:func:`expand_rings`).

    ``rings`` are the expanded rings (same order and ids as before); ``joined`` maps an account index
    to ``(ring index, summed tie weight, members tied to)``; ``threshold`` is the null cut.
    """

    rings: list[np.ndarray]
    joined: dict[int, tuple[int, float, int]]
    threshold: float


def expand_rings(
    con: duckdb.DuckDBPyConnection,
    rings: list[np.ndarray],
    n_accounts: int,
    *,
    n_null: int = 3,
    null_quantile: float = 0.99,
    min_ties: int = 2,
    seed: int = 0,
) -> RingExpansion:
    """Add to each ring the outside accounts tied to it as a whole, not to any one member.

    A campaign account that sent a few copies each shared with different members has no single link
    past the cut, yet its ties to the ring add up. Its tie to ring ``R`` is the sum of its pair weights
    (same weights as links, significant or not) to the members of ``R``. The cut comes from the null:
    the relations are shuffled as for links, and each outside account's strongest chance tie to any
    ring (rings fixed) is taken; an account joins the ring it is most tied to when that tie exceeds the
    ``null_quantile`` of those chance ties and reaches ``min_ties`` members.

    Needs the ``_rg_rel`` / ``_rg_acc`` tables of :func:`engine.detect.links.build_links` (``keep_tables=True``).
    """
    if not rings:
        return RingExpansion(rings, {}, math.inf)
    ring_of = np.full(n_accounts, -1, dtype=np.int64)
    for r, mem in enumerate(rings):
        ring_of[mem] = r
    con.register("_rg_ring", pa.table({"acc": np.arange(n_accounts, dtype=np.int64), "ring": ring_of}))

    def ties(rel_table: str) -> dict:
        # Only (outside account, ring member) pairs matter: joining the members' relations with the
        # outsiders' skips the tens of millions of outsider-outsider pairs (at a million exchanges this
        # was 12 s per call). Pair weights as in links._pair_sql, rounded per pair the same way.
        return con.execute(
            f"""
            WITH rel AS (SELECT x.*, r.ring FROM {rel_table} x JOIN _rg_ring r USING (acc)),
            p AS (
                SELECT o.acc, m.acc AS other, m.ring,
                       round(sum(o.s * least(o.u, m.u) / (o.k - 1)), 9) AS weight
                FROM rel o JOIN rel m ON o.kind = m.kind AND o.item = m.item
                WHERE o.ring < 0 AND m.ring >= 0
                GROUP BY o.acc, m.acc, m.ring
            )
            SELECT acc, ring, round(sum(weight), 9) AS tie, count(*) AS n
            FROM p GROUP BY acc, ring ORDER BY acc, tie DESC, ring
            """
        ).fetchnumpy()

    rel = con.execute("SELECT acc, kind, item, u, s, k FROM _rg_rel ORDER BY kind, item, acc").fetchnumpy()
    rng = np.random.default_rng(seed + 1)
    chance: list[np.ndarray] = []
    for _ in range(max(1, n_null)):
        shuffle_relations(con, rel, rng, "_rg_null")
        t = ties("_rg_null")
        acc = np.asarray(t["acc"], dtype=np.int64)
        if len(acc):
            # Rows are sorted by account, strongest tie first: the first row per account is its max.
            first = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
            chance.append(np.asarray(t["tie"], dtype=np.float64)[first])
    pooled = np.concatenate(chance) if chance else np.empty(0)
    threshold = float(np.quantile(pooled, null_quantile)) if len(pooled) else 0.0
    t = ties("_rg_rel")
    con.unregister("_rg_ring")
    con.execute("DROP TABLE IF EXISTS _rg_null")
    acc = np.asarray(t["acc"], dtype=np.int64)
    joined: dict[int, tuple[int, float, int]] = {}
    if len(acc):
        first = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
        tie = np.asarray(t["tie"], dtype=np.float64)[first]
        n = np.asarray(t["n"], dtype=np.int64)[first]
        ring = np.asarray(t["ring"], dtype=np.int64)[first]
        for i in np.flatnonzero((tie > threshold) & (n >= min_ties)).tolist():
            joined[int(acc[first[i]])] = (int(ring[i]), float(tie[i]), int(n[i]))
    out = [np.array(sorted(set(mem.tolist()) | {a for a, (r2, _, _) in joined.items() if r2 == r}), dtype=np.int64)
           for r, mem in enumerate(rings)]
    log.info("rings: %d outside accounts joined a ring by summed ties (null cut %.4f)", len(joined), threshold)
    return RingExpansion(out, joined, threshold)


def find_rings(graph: LinkGraph, *, min_size: int = 3, seed: int = 0) -> list[np.ndarray]:
    """Louvain communities of the significant links with at least ``min_size`` accounts.

    Returns sorted int64 arrays of account indices, largest ring first (ties by first account), so
    ring ids are stable for a given input. Louvain is seeded and nodes/edges are added in sorted
    order, which makes the partition deterministic.
    """
    if len(graph.a) == 0:
        return []
    g = nx.Graph()
    g.add_weighted_edges_from(
        zip(graph.a.tolist(), graph.b.tolist(), graph.weight.tolist(), strict=True)
    )
    comms = nx.community.louvain_communities(g, weight="weight", seed=seed)
    rings = [np.array(sorted(c), dtype=np.int64) for c in comms if len(c) >= min_size]
    rings.sort(key=lambda r: (-len(r), int(r[0])))
    log.info("rings: %d communities, %d with >= %d accounts", len(comms), len(rings), min_size)
    return rings
