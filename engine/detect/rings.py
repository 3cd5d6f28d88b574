"""Rings: groups of three or more accounts tied by significant links (`engine.detect.links`).

**Rings** are Louvain communities (networkx, fixed seed) of the significant links with at least
three accounts. Two accounts sharing content can be a couple, two accounts of one person or one
company; three or more accounts all tied by rare content, each tie above the null, are what a
campaign that spreads traffic over accounts looks like, and chance needs several independent false
links to build one.

An account outside a ring whose ties to the ring as a whole (not to any one member) pass the same
kind of null joins it (:func:`expand_rings`).

**Bystanders** (:func:`guard_rings`). A campaign drawing on a public prompt bank shares items with
ordinary users who send one to three of those prompts among their own traffic; their summed ties can
pass the null, and Louvain can take in an account whose one strong link is such a prompt. Every ring
account (member or joined) must therefore send more of the ring's content than the ring's ordinary
neighbours do (the accounts outside the ring that sent some of its items): with ``x`` of its ``n``
distinct prompts in items that other ring accounts also sent, it stays when either

* for its volume: ``P(Binomial(n, p) >= x) < alpha``, ``p`` the neighbours' rate ``sum x / sum n``
  (three of three prompts, a thin campaign account, stays; three of twenty does not), or
* in all: ``P(Poisson(m) >= x) < alpha``, ``m`` the neighbours' median count (a diluted account whose
  twenty campaign prompts are a fifth of what it sends stays; a neighbour's one to three do not).

A ring left with fewer than three accounts is dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import duckdb
import networkx as nx
import numpy as np
import pyarrow as pa
from scipy.stats import binom, poisson

from engine.detect.links import (
    MAX_PAIR_ACCOUNTS,
    PAIRS_PER_BUCKET,
    LinkGraph,
    account_volumes,
    relations,
    shuffle_relations,
)

log = logging.getLogger(__name__)

__all__ = ["MIN_RING", "RingExpansion", "expand_rings", "find_rings", "guard_rings", "split_parts"]

# Accounts a ring needs: two accounts sharing content are a couple or one person's two accounts.
MIN_RING = 3

# Tail probability below which an account's share of ring content stands out against the ring's
# ordinary neighbours (`guard_rings`). Applied per account without a multiple-test correction on purpose:
# the accounts tested already passed the link or tie null; this only asks whether what they share is
# more than an ordinary neighbour's handful.
GUARD_ALPHA = 0.01
# Prompts of the ring's outside neighbours needed to estimate their rate; below it the rate of all
# accounts outside rings is used (a ring on private content has few or no neighbours).
GUARD_MIN_PROMPTS = 200


@dataclass(frozen=True)
class RingExpansion:
    """Accounts that joined a ring by their summed ties to its members (:func:`expand_rings`).

    ``rings`` are the expanded rings (same order and ids as before); ``joined`` maps an account index
    to ``(ring index, summed tie weight, members tied to)``; ``threshold`` is the null cut.
    """

    rings: list[np.ndarray]
    joined: dict[int, tuple[int, float, int]]
    threshold: float
    # Accounts the bystander guard removed: index -> (ring, ring-shared prompts, prompts, neighbours' rate).
    removed: dict[int, tuple[int, int, int, float]] = field(default_factory=dict)
    # Ring-shared prompts and distinct prompts of each ring account, and the tail probability it passed at.
    shares: dict[int, tuple[int, int, float]] = field(default_factory=dict)
    # Accounts attached by infrastructure links (engine.detect.fusion.attach_by_infra): index -> (ring, links).
    attached: dict[int, tuple[int, int]] = field(default_factory=dict)


def expand_rings(
    con: duckdb.DuckDBPyConnection,
    rings: list[np.ndarray],
    n_accounts: int,
    *,
    n_null: int = 3,
    null_quantile: float = 0.99,
    min_ties: int = 2,
    seed: int = 0,
    max_pair_accounts: int = MAX_PAIR_ACCOUNTS,
    sharer_weights: bool = True,
    familywise: bool = True,
    exclude: np.ndarray | None = None,
) -> RingExpansion:
    """Add to each ring the outside accounts tied to it as a whole, not to any one member.

    A campaign account that sent a few copies each shared with different members has no single link
    past the cut, yet its ties to the ring add up. Its tie to ring ``R`` is the sum of its pair weights
    (same weights as links, significant or not) to the members of ``R``. The cut comes from the null:
    the relations are shuffled as for links, and each outside account's strongest chance tie to any
    ring (rings fixed) is taken; an account joins the ring it is most tied to when that tie exceeds the
    ``null_quantile`` of those chance ties and reaches ``min_ties`` members.

    Needs the ``_rg_rel`` / ``_rg_acc`` tables of :func:`engine.detect.links.build_links` (``keep_tables=True``).
    Items past ``max_pair_accounts`` accounts give no ties (their members link through sampled pairs).
    ``sharer_weights`` as the links were built (each null draw then recomputes item coherence).
    ``familywise``: the cut is the strongest chance tie of all draws instead of their ``null_quantile``:
    a per-account quantile lets that share of *all* outside accounts in, which at a million exchanges
    is hundreds of ordinary accounts; the maximum over every outside account of ``n_null`` draws lets
    in about one in ``n_null`` workspaces, whatever their size. ``exclude`` (bool per account): accounts
    that never join by ties (single-purpose integrations: every prompt of theirs is one template, so any
    public template they share with a ring ties all of their traffic to it).
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
        # was 12 s per call). Pair weights as in links._pair_sql, rounded per pair the same way, and
        # summed in buckets of the outside account as links are (`links.PAIRS_PER_BUCKET`).
        rel = (f"SELECT x.*, r.ring FROM {rel_table} x JOIN _rg_ring r USING (acc) "
               f"WHERE x.k <= {int(max_pair_accounts)}")
        n_rows = con.execute(
            f"""SELECT coalesce(sum(o * m), 0) FROM (
                    SELECT count(*) FILTER (WHERE ring < 0) AS o, count(*) FILTER (WHERE ring >= 0) AS m
                    FROM ({rel}) GROUP BY kind, item)"""
        ).fetchone()[0]
        n = max(1, math.ceil(float(n_rows) / PAIRS_PER_BUCKET))
        parts = [con.execute(
            f"""
            WITH rel AS ({rel}),
            p AS (
                SELECT o.acc, m.acc AS other, m.ring,
                       round(sum(o.s * least(o.u, m.u) / (o.k - 1)), 9) AS weight
                FROM rel o JOIN rel m ON o.kind = m.kind AND o.item = m.item
                WHERE o.ring < 0 AND m.ring >= 0 AND o.acc % {n} = {j}
                GROUP BY o.acc, m.acc, m.ring
            )
            SELECT acc, ring, round(sum(weight), 9) AS tie, count(*) AS n
            FROM p GROUP BY acc, ring
            """
        ).fetchnumpy() for j in range(n)]
        out = {c: np.concatenate([np.asarray(p[c]) for p in parts]) for c in ("acc", "ring", "tie", "n")}
        # By account, strongest tie first, then ring id: what the callers read as "first row per account".
        order = np.lexsort((out["ring"], -out["tie"], out["acc"]))
        return {c: v[order] for c, v in out.items()}

    rel = relations(con)
    # The links' null recomputed item coherence per draw (sharer weights); so does this one.
    volumes = account_volumes(con, n_accounts) if sharer_weights else None
    rng = np.random.default_rng(seed + 1)
    chance: list[np.ndarray] = []
    for _ in range(max(1, n_null)):
        shuffle_relations(con, rel, rng, "_rg_null", volumes=volumes)
        t = ties("_rg_null")
        acc = np.asarray(t["acc"], dtype=np.int64)
        if len(acc):
            # Rows are sorted by account, strongest tie first: the first row per account is its max.
            first = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
            chance.append(np.asarray(t["tie"], dtype=np.float64)[first])
    pooled = np.concatenate(chance) if chance else np.empty(0)
    if not len(pooled):
        threshold = 0.0
    else:
        threshold = float(pooled.max() if familywise else np.quantile(pooled, null_quantile))
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
            if exclude is not None and exclude[acc[first[i]]]:
                continue
            joined[int(acc[first[i]])] = (int(ring[i]), float(tie[i]), int(n[i]))
    out = [np.array(sorted(set(mem.tolist()) | {a for a, (r2, _, _) in joined.items() if r2 == r}), dtype=np.int64)
           for r, mem in enumerate(rings)]
    log.info("rings: %d outside accounts joined a ring by summed ties (null cut %.4f)", len(joined), threshold)
    return RingExpansion(out, joined, threshold)


def guard_rings(con: duckdb.DuckDBPyConnection, expansion: RingExpansion, n_accounts: int, *,
                alpha: float = GUARD_ALPHA, min_size: int = MIN_RING, exempt: np.ndarray | None = None) -> RingExpansion:
    """Remove from each ring the accounts whose ring-shared prompts do not stand out (module doc).

    ``exempt`` (bool per account): accounts kept whatever their content, e.g. those tied to their ring
    by a significant infrastructure link.
    Needs ``_rg_rel`` / ``_rg_acc`` as :func:`expand_rings`. Rings keep their order; a ring left with fewer
    than ``min_size`` accounts is dropped (later rings move up one id).
    """
    rings = expansion.rings
    if not rings:
        return expansion
    ring_of = np.full(n_accounts, -1, dtype=np.int64)
    for r, mem in enumerate(rings):
        ring_of[mem] = r
    con.register("_rg_ring", pa.table({"acc": np.arange(n_accounts, dtype=np.int64), "ring": ring_of}))
    try:
        n = account_volumes(con, n_accounts)
        # x: the account's distinct prompts in items that some *other* account of ring R also sent.
        t = con.execute(
            """
            WITH rel AS (SELECT x.acc, x.kind, x.item, x.np, r.ring FROM _rg_rel x JOIN _rg_ring r USING (acc)),
            ir AS (SELECT kind, item, ring, count(*) AS m FROM rel WHERE ring >= 0 GROUP BY kind, item, ring)
            SELECT o.acc, ir.ring, sum(o.np) AS x, any_value(o.ring) AS own
            FROM rel o JOIN ir ON o.kind = ir.kind AND o.item = ir.item
            WHERE ir.m - (CASE WHEN o.ring = ir.ring THEN 1 ELSE 0 END) >= 1
            GROUP BY o.acc, ir.ring
            """
        ).fetchnumpy()
    finally:
        con.unregister("_rg_ring")
    acc = np.asarray(t["acc"], dtype=np.int64)
    ring = np.asarray(t["ring"], dtype=np.int64)
    x = np.minimum(np.asarray(t["x"], dtype=np.float64), n[acc])
    inside = ring_of[acc] == ring
    out_all = ring_of < 0
    # Rate of all accounts outside rings: ring-shared prompts of outsiders over all outsiders' prompts.
    outsider = ~inside & (ring_of[acc] < 0)
    p_all = float(x[outsider].sum() / max(n[out_all].sum(), 1.0))
    keep_rings: list[np.ndarray] = []
    removed: dict[int, tuple[int, int, int, float]] = {}
    shares: dict[int, tuple[int, int, float]] = {}
    for r, mem in enumerate(rings):
        nb = (ring == r) & ~inside
        sx, sn = float(x[nb].sum()), float(n[acc[nb]].sum())
        p = sx / sn if sn >= GUARD_MIN_PROMPTS else p_all
        p = min(max(p, 1e-6), 0.999)
        # Median, not mean: campaign accounts the expansion missed are neighbours too, and would raise it.
        m = max(float(np.median(x[nb])), 1.0) if nb.any() else 1.0
        sel = (ring == r) & inside
        xi = np.zeros(len(mem))
        pos = {int(a): j for j, a in enumerate(mem.tolist())}
        for a, xv in zip(acc[sel].tolist(), x[sel].tolist(), strict=True):
            xi[pos[a]] = xv
        ni = n[mem]
        tail = np.minimum(binom.sf(xi - 1, ni, p), poisson.sf(xi - 1, m))
        ok = tail < alpha
        if exempt is not None:
            ok |= exempt[mem]
        for j in np.flatnonzero(~ok).tolist():
            removed[int(mem[j])] = (r, int(xi[j]), int(ni[j]), p)
        for j in np.flatnonzero(ok).tolist():
            shares[int(mem[j])] = (int(xi[j]), int(ni[j]), float(tail[j]))
        keep_rings.append(mem[ok])
    kept = [m for m in keep_rings if len(m) >= min_size]
    # Joined accounts keep their entry only if still in a ring; ring ids follow the kept order.
    new_id = {id(m): i for i, m in enumerate(kept)}
    old_to_new = {r: new_id.get(id(m)) for r, m in enumerate(keep_rings)}
    in_kept = set().union(*(set(m.tolist()) for m in kept)) if kept else set()
    joined = {a: (old_to_new[r], w, k) for a, (r, w, k) in expansion.joined.items()
              if a in in_kept and old_to_new[r] is not None}
    attached = {a: (old_to_new[r], k) for a, (r, k) in expansion.attached.items()
                if a in in_kept and old_to_new[r] is not None}
    shares = {a: v for a, v in shares.items() if a in in_kept}
    log.info("rings: the bystander guard removed %d accounts, %d of %d rings kept", len(removed), len(kept),
             len(rings))
    return replace(expansion, rings=kept, joined=joined, removed=removed, shares=shares, attached=attached)


def find_rings(graph: LinkGraph, *, min_size: int = MIN_RING, seed: int = 0, split: bool = True,
               need_cycle: bool = True) -> list[np.ndarray]:
    """Louvain communities of the significant links with at least ``min_size`` accounts.

    ``split``: each community is split where Louvain on its own links finds parts much more tied inside
    than to each other (:func:`split_parts`): two campaigns of one kind whose content overlaps a little
    (a shared bank, stock phrasings) end up in one community of the whole graph, whose modularity cannot
    see parts that small. ``need_cycle``: a community is a ring only with at least as many links as
    accounts (a cycle): chance links form trees (three heavy users, two chance links), a campaign's
    accounts tie to each other over and over.

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
    parts: list[set[int]] = []
    for c in comms:
        parts.extend(split_parts(g, c, seed) if split and len(c) >= 2 * min_size else [c])
    rings = [np.array(sorted(c), dtype=np.int64) for c in parts
             if len(c) >= min_size and (not need_cycle or g.subgraph(c).number_of_edges() >= len(c))]
    rings.sort(key=lambda r: (-len(r), int(r[0])))
    log.info("rings: %d communities, %d parts after splitting, %d rings of >= %d accounts with a cycle",
             len(comms), len(parts), len(rings), min_size)
    return rings


# A community splits where the link density between two of its parts is under this share of the lower
# density inside them: Louvain finds parts in any graph, even a random one (there the two densities
# are alike); two campaigns bridged by a few accidental near-copies are tied inside tens of times more.
SPLIT_RATIO = 0.1


def split_parts(g: nx.Graph, community: set[int], seed: int, depth: int = 0, *,
                weighted: bool = False) -> list[set[int]]:
    """The community as parts that are each far more tied inside than to one another (see SPLIT_RATIO).

    Louvain on the community's own links proposes parts; any two parts whose between-density reaches
    ``SPLIT_RATIO`` of the lower within-density are merged back (repeatedly, densest pair first); each
    remaining part is split again, up to three levels. Densities count links, or with ``weighted`` sum
    the links' weights (ties where every pair of a group is linked, by resources of different weight).
    """
    sub = g.subgraph(community)
    parts = [set(p) for p in nx.community.louvain_communities(sub, weight="weight", seed=seed)]
    if len(parts) < 2:
        return [set(community)]
    # Links within (diagonal) and between parts, counted once over the community's edges.
    part_of = {v: i for i, p in enumerate(parts) for v in p}
    links = np.zeros((len(parts), len(parts)))
    for u, v, w in sub.edges(data="weight", default=1.0):
        i, j = part_of[u], part_of[v]
        x = w if weighted else 1.0
        links[i, j] += x
        if i != j:
            links[j, i] += x
    size = np.array([len(p) for p in parts], dtype=np.float64)
    while len(parts) > 1:
        within = np.diag(links) / np.maximum(size * (size - 1) / 2, 1)
        between = links / np.outer(size, size)
        floor = np.minimum.outer(within, within)
        ratio = np.where(floor > 0, between / np.where(floor > 0, floor, 1), np.inf)
        np.fill_diagonal(ratio, -1)
        i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[i, j] < SPLIT_RATIO:
            break
        i, j = min(i, j), max(i, j)
        # Merge part j into part i: its links within, between the two, and to every other part.
        inside = links[i, i] + links[j, j] + links[i, j]
        row = links[i, :] + links[j, :]
        links[i, :], links[:, i] = row, row
        links[i, i] = inside
        links = np.delete(np.delete(links, j, 0), j, 1)
        size[i] += size[j]
        size = np.delete(size, j)
        parts[i] |= parts.pop(j)
    if len(parts) == 1 or depth >= 2:
        return parts
    out: list[set[int]] = []
    for p in parts:
        out.extend(split_parts(g, p, seed, depth + 1, weighted=weighted) if len(p) >= 6 else [p])
    return out
