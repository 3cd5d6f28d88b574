"""Content rings split by operator: the infrastructure each part of a ring holds as its own.

Rings are communities of content links (:mod:`engine.detect.rings`), and content cannot tell apart two
campaigns that draw on the same public bank of questions, or on one stock pattern filled with different
questions: their accounts share the same families, so they form one ring (on the season profile at 1M
exchanges, twelve copy-ring campaigns in one ring of 292 accounts). What sets the campaigns apart is
who runs them: each operator's accounts pay with its own few cards, run its own harness client, got
their API keys in its own burst, and send through its own proxy pools.

**Resources held by part of a ring.** For a ring ``R`` of ``|R|`` among ``N`` accounts, a resource of
the operator kinds (payment fingerprint, client string, key-creation date; the relations of
:func:`engine.detect.infra.build_relations`) held by ``k`` accounts of which ``m`` are members is the
ring's own when ``m >= 3`` and ``P(Binomial(k, |R| / N) >= m)`` is below ``ALPHA`` over the number of
resources tested (Bonferroni): the commonest SDK string held by a third of all accounts is not, a card
that 60 members and nobody else pay with is, and so is an odd harness client most of whose users are
members. Addresses, /24s and activity windows are not of those kinds: proxy networks are rented by
several operators at once (:mod:`engine.detect.fusion`), and campaigns running at the same time share
windows.

**Parts.** Members are tied by the ring's own resources they share, each resource adding
``-log10(tail) / (m - 1)`` to each of its member pairs: resource allocation among members, scaled by
how far the resource is from chance. Louvain on those ties proposes parts, and parts whose tie density
between them reaches ``SPLIT_RATIO`` of the lower density inside them merge back
(:func:`engine.detect.rings.split_parts`): one operator paying with three cards is still one client
build and one key burst, tied across its cards far above a tenth of within; two operators meet only
where they run the same client.

**The split.** A ring is cut when its members make two or more parts of at least three, or one part
and a remainder (below); each part becomes a ring. Members that hold none of the ring's own resources
(a careful operator's accounts on home lines with the commonest client and a card each, or ordinary
accounts the content drew in) stay together as the ring's remainder when each is content-linked to two
or more others of it (the remainder's 2-core, at least three accounts); the rest leave the rings: an
ordinary account Louvain drew in on one weak link has neither an operator's traces nor a second tie.
One part and a remainder are two operators drawing on the same content, one traced and one careful (on
the season profile at 100k exchanges, a sweep of 20 accounts paying with one card and a traceless one
of 28 filling the same public template were one ring). A ring with no part, or one part and no
remainder, stays as content made it: infrastructure then says nothing about who else runs it.

Each content ring is cut on its own. Cutting the rings that content links join together, so that an
operator Louvain spread over two communities became one ring, merged operators instead: over a
group of many rings, clients that several operators run tie their parts past the merge-back test (on
the season profile at 1M, campaigns with 80% of their accounts in one ring of purity 0.9 fell from 42%
to 8% for copy rings and from 38% to none for CoT).

**Joins** (:func:`join_by_operator`). An account outside the rings that holds a ring's own card or
client build most of whose holders are suspect (in a ring or past a content cut-off) joins that ring:
a card 201 accounts pay with, 153 of them flagged on their own content, is an operator's, and an
account paying with it is that operator's, though its copies are too few or too public to tie it to
the ring by content. Not by a key-creation date: keys are made in bursts for honest reasons too. With
several such rings, the one whose own resources it holds weigh most, each by the ring's share of its
holders (``m / k``).

**Known limits.** Operators who leave no traces (the ``none`` trace of the season profile) and draw on
the same content are not told apart: they share the remainder. Two operators renting one payment
processor's shared card or one harness build look like one. Infrastructure never makes or grows a ring
here, it only cuts one that content made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import networkx as nx
import numpy as np
import pyarrow as pa
from scipy.stats import binom

from engine.detect.rings import split_parts

log = logging.getLogger(__name__)

__all__ = ["ALPHA", "JOIN_SHARE", "MIN_PART", "OPERATOR_TYPES", "OperatorSplit", "join_by_operator", "split_by_operator"]

# Traces of how accounts were made and are run, an operator's own (not addresses or windows: see the
# module doc).
OPERATOR_TYPES = ("client", "key", "payment")
# Family-wise error rate for calling a resource a ring's own (Bonferroni over the resources tested).
ALPHA = 0.01
# Cap on a resource's strength, -log10 of its tail probability (see _own_resources).
MAX_STRENGTH = 1000.0
# What an outside account may join a ring by: a card or a client build. Not a key-creation date: keys are
# made in bursts for honest reasons too (a launch, a class), and on the season profile at 1M one date
# that 78 of its 133 holders shared with a campaign took 57 ordinary accounts into its ring.
JOIN_TYPES = ("client", "payment")
# Share of a resource's holders that must be suspect (in a ring or past a content cut-off) for an
# outside account holding it to join the ring it is the own resource of (join_by_operator).
JOIN_SHARE = 0.5
# Members a resource, and a part, needs: two accounts sharing a card are a couple, not an operator.
MIN_PART = 3


@dataclass(frozen=True)
class OperatorSplit:
    """Rings after the split, in order of the content rings they came from: a cut ring's parts, largest
    first, then its remainder. ``cores`` the matching link-formed cores (members of the original core
    that fell in the part); ``origin`` the content ring each came from; ``resources`` per ring the own
    resources most held in it (``{"type", "value", "n_accounts", "n_members"}``, most members first, at
    most five)."""

    rings: list[np.ndarray]
    cores: list[np.ndarray]
    origin: list[int]
    resources: list[list[dict]]
    # Each ring's own resources as tested, ``(type, res, k, m, members, strength)``, for the joins.
    own: list[list[tuple]]
    # Whether the ring was cut out of content rings (False: a content ring as it was).
    cut: list[bool]


def _own_resources(con: duckdb.DuckDBPyConnection, mem: np.ndarray, n_population: int) -> list[tuple]:
    """The ring's own resources: ``(type, res, k, m, [member indices])``, tested as in the module doc."""
    con.register("_op_ring", pa.table({"acc": np.asarray(mem, dtype=np.int64)}))
    try:
        rows = con.execute(
            f"""
            SELECT r.type, r.res, any_value(r.k) AS k, count(*) AS m, list(r.acc ORDER BY r.acc) AS accs
            FROM _if_rel r JOIN _op_ring USING (acc) WHERE r.type IN {OPERATOR_TYPES!r}
            GROUP BY r.type, r.res HAVING count(*) >= {MIN_PART}
            ORDER BY r.type, r.res
            """
        ).fetchall()
    finally:
        con.unregister("_op_ring")
    if not rows:
        return []
    p = min(len(mem) / max(n_population, 1), 1.0)
    k = np.array([r[2] for r in rows], dtype=np.int64)
    m = np.array([r[3] for r in rows], dtype=np.int64)
    # log10 of the tail: a card held by 60 members and nobody else is ~1e-160, past float64's reach.
    log_tail = binom.logsf(m - 1, k, p) / np.log(10.0)
    cut = np.log10(ALPHA / len(rows))
    # Capped where the tail underflows to -inf (hundreds of members on one resource): past this, how much
    # more surprising the resource is no longer matters next to the others.
    strength = np.minimum(-log_tail, MAX_STRENGTH)
    return [(*rows[i], float(strength[i])) for i in np.flatnonzero(log_tail < cut).tolist()]


def _parts(mem: np.ndarray, own: list[tuple], seed: int) -> list[set[int]]:
    """Members tied by the ring's own resources, split into parts (see module doc)."""
    if not own:
        return []
    # Every member pair of each resource, as (a, b) with a < b, and what the resource adds to it.
    pa_, pb_, pw_ = [], [], []
    for _t, _res, _k, m, accs, strength in own:
        accs = np.sort(np.asarray(accs, dtype=np.int64))
        i, j = np.triu_indices(len(accs), 1)
        pa_.append(accs[i])
        pb_.append(accs[j])
        pw_.append(np.full(len(i), strength / (m - 1)))
    a, b, w = np.concatenate(pa_), np.concatenate(pb_), np.concatenate(pw_)
    pairs, inv = np.unique(np.stack([a, b], axis=1), axis=0, return_inverse=True)
    # Summed in a fixed order and rounded: the weights feed Louvain's tie-breaks.
    total = np.round(np.bincount(inv.ravel(), weights=w, minlength=len(pairs)), 12)
    g = nx.Graph()
    g.add_nodes_from(np.unique(pairs).tolist())
    g.add_weighted_edges_from(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), total.tolist(), strict=True))
    out: list[set[int]] = []
    for comp in sorted(nx.connected_components(g), key=lambda c: min(c)):
        out.extend(split_parts(g, set(comp), seed, weighted=True) if len(comp) >= 2 * MIN_PART else [set(comp)])
    return out


def _two_core(rest: set[int], la: np.ndarray, lb: np.ndarray) -> set[int]:
    """Accounts of ``rest`` content-linked to two or more others of it, when at least three are."""
    arr = np.array(sorted(rest), dtype=np.int64)
    inside = np.isin(la, arr) & np.isin(lb, arr)
    g = nx.Graph()
    g.add_edges_from(zip(la[inside].tolist(), lb[inside].tolist(), strict=True))
    kept = set(nx.k_core(g, 2).nodes()) if g.number_of_edges() else set()
    return kept if len(kept) >= MIN_PART else set()


def split_by_operator(con: duckdb.DuckDBPyConnection, rings: list[np.ndarray], cores: list[np.ndarray],
                      n_population: int, links: tuple[np.ndarray, np.ndarray], *,
                      seed: int = 0) -> OperatorSplit:
    """Each ring cut into the parts its own infrastructure resources make (see module doc).

    Reads ``_if_rel`` (kept by :func:`engine.detect.infra.build_infra_links`); without it, or without
    infrastructure in the workspace, every ring stays whole. ``n_population`` the accounts the relations
    cover; ``links`` the content links ``(a, b)``, both ends account indices (a remainder's 2-core).
    """
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_if_rel' AND temporary"
                         ).fetchall()[0][0]
    la, lb = (np.asarray(x) for x in links)
    out = OperatorSplit([], [], [], [], [], [])
    n_cut = n_left = 0

    def emit(members: set[int], core: set[int], r: int, own: list[tuple], cut: bool) -> None:
        out.rings.append(np.array(sorted(members), dtype=np.int64))
        out.cores.append(np.array(sorted(members & core), dtype=np.int64))
        out.origin.append(r)
        out.resources.append(_describe(own, members))
        out.own.append([o for o in own if len(members.intersection(o[4])) >= MIN_PART])
        out.cut.append(cut)

    for r, (mem, core) in enumerate(zip(rings, cores, strict=True)):
        mem = np.asarray(mem, dtype=np.int64)
        members, core_set = set(mem.tolist()), set(np.asarray(core).tolist())
        own = _own_resources(con, mem, n_population) if exists and len(mem) >= 2 * MIN_PART else []
        parts = [p for p in _parts(mem, own, seed) if len(p) >= MIN_PART] if own else []
        rest = members.difference(*parts) if parts else set()
        kept = _two_core(rest, la, lb) if rest else set()
        if not parts or (len(parts) == 1 and not kept):
            # Infrastructure says nothing about who runs it: the ring stays as content made it.
            emit(members, core_set, r, own, False)
            continue
        n_cut += 1
        parts.sort(key=lambda p: (-len(p), min(p)))
        n_left += len(rest) - len(kept)
        for p in parts + ([kept] if kept else []):
            emit(p, core_set, r, own, True)
    if n_cut:
        log.info("rings: %d of %d rings cut by their own infrastructure into %d (%d accounts left without a ring)",
                 n_cut, len(rings), len(out.rings), n_left)
    return out


def join_by_operator(con: duckdb.DuckDBPyConnection, split: OperatorSplit, candidates: np.ndarray,
                     suspect: np.ndarray) -> dict[int, tuple[int, dict]]:
    """Accounts (``candidates``, bool per account, outside rings) that hold a ring's own card or client
    build (``JOIN_TYPES``) most of whose holders are suspect (``suspect``: in a ring or past a content
    cut-off): they join that ring.

    A card 201 accounts pay with, 153 of them flagged on their own content, is an operator's; an account
    paying with it is that operator's account, though its copies are too few or too public to tie
    it to the ring by content. Among several rings, the one whose own resources it holds weigh most (each
    by the ring's share of its holders). Returns ``{account index: (ring, resource)}``, the resource (the
    ring's most exclusive one it holds) as in ``OperatorSplit.resources`` plus ``suspect_share``.
    """
    rows = []
    for r, (mem, own) in enumerate(zip(split.rings, split.own, strict=True)):
        mset = set(np.asarray(mem).tolist())
        for t, res, k, _m, accs, _s in own:
            if t in JOIN_TYPES:
                rows.append((r, t, str(res), int(k), len(mset.intersection(accs))))
    cand = np.flatnonzero(np.asarray(candidates, dtype=bool))
    if not rows or not len(cand):
        return {}
    own_t = pa.table({"ring": [x[0] for x in rows], "type": [x[1] for x in rows],  # noqa: F841 (read by DuckDB)
                      "res": [x[2] for x in rows], "k": [x[3] for x in rows], "m": [x[4] for x in rows]})
    sus = pa.table({"acc": np.flatnonzero(np.asarray(suspect, dtype=bool)).astype(np.int64)})  # noqa: F841
    cand_t = pa.table({"acc": cand.astype(np.int64)})  # noqa: F841
    got = con.execute(
        f"""
        WITH res AS (SELECT DISTINCT type, res, k FROM own_t),
        share AS (SELECT x.type, x.res, count(*) / any_value(x.k) AS s
                  FROM res x JOIN _if_rel r ON r.type = x.type AND r.res = x.res JOIN sus USING (acc)
                  GROUP BY x.type, x.res HAVING count(*) / any_value(x.k) >= {JOIN_SHARE!r})
        , held AS (
            SELECT c.acc, o.ring, o.type, o.res, o.k, o.m, share.s,
                   -- Rounded: DuckDB sums in thread order, and the choice of ring must not flip on the last bit.
                   round(sum(o.m / o.k) OVER (PARTITION BY c.acc, o.ring), 9) AS tie
            FROM cand_t c JOIN _if_rel r USING (acc) JOIN own_t o ON o.type = r.type AND o.res = r.res
            JOIN share ON share.type = o.type AND share.res = o.res)
        SELECT acc, ring, type, res, k, m, s FROM held
        QUALIFY row_number() OVER (PARTITION BY acc ORDER BY tie DESC, ring, m::DOUBLE / k DESC, type, res) = 1
        ORDER BY acc
        """
    ).fetchall()
    return {int(a): (int(r), {"type": t, "value": res, "n_accounts": int(k), "n_members": int(m),
                              "suspect_share": round(float(s), 3)}) for a, r, t, res, k, m, s in got}


def _describe(own: list[tuple], part: set[int], n: int = 5) -> list[dict]:
    """The ring's own resources most held in ``part``, as evidence."""
    held = []
    for t, res, k, _m, accs, _s in own:
        inside = len(part.intersection(accs))
        if inside >= MIN_PART:
            held.append({"type": t, "value": str(res), "n_accounts": int(k), "n_members": inside})
    held.sort(key=lambda d: (-d["n_members"], d["n_accounts"], d["type"], d["value"]))
    return held[:n]
