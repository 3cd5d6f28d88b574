"""Account links from shared rare content, each cut at a null model of the data (rings: `engine.detect.rings`).

The module stays whole past the usual ~500 lines: the relation table, the item weights, the null draws,
the repeat-use test and the link evidence are one algorithm over the same temporary tables (``_rg_*``),
and each step must weigh items exactly as the others do.

Two accounts are linked when they send the same *rare* content: a near-copy family or a mined
template that few other accounts use. Popular content is discounted: a family sent by thousands of
accounts links nobody, a family shared by two is strong evidence.

**Link weight** (weighted resource allocation). Each (account, item) relation, where an item is a
family or a template used by at least two accounts, carries an intensity
``u = 1 + ln(distinct prompts the account sent in the item)``: one prompt counts 1, a sweep of 50
fillings counts ~4.9 (logarithmic, so one huge sweep does not drown every other piece of evidence).
Item ``i`` with ``k_i`` accounts and specificity ``s_i`` adds ``s_i * min(u_a, u_b) / (k_i - 1)`` to
the pair ``(a, b)``; the ``1 / (k - 1)`` is the resource-allocation index, which makes an item's
total contribution per account independent of its popularity. Families have
``s = (k - 1) / (crowd - 1)``, where the crowd counts every account that wrote anything within the
who-else radius of the family (:mod:`engine.detect.crowding`; ``s = 1`` when only the family's own
accounts did), so a family weighs ``1 / (crowd - 1)`` per pair; templates
have ``s = 1 - exp(-fixed_tokens / 12)`` (a 4-token anchor is weak, a sentence-long fixed text is
~0.6, a paragraph ~1). Items with more than ``max_item_accounts`` accounts generate no pairs: their
per-pair weight is below ``1 / max_item_accounts`` anyway, and skipping them bounds the pair count.

**Significance** (a null model of the data itself, no magic weight). The account-item relations
are shuffled ``n_null`` times: the item column is permuted within each kind, which keeps every
account's number of items and intensities and every item's number of accounts and specificity, and
only breaks *who* shares with whom. Pair weights are recomputed on each shuffle and each account's
*strongest* chance link is taken; a real link is kept when its weight exceeds the ``null_quantile``
(default 99 %) of those per-account maxima, so at most ~1 % of accounts would get any link by
chance, and also each of the two accounts' own strongest chance link. The quantile is over accounts,
not pairs, on purpose: pairs are dominated in number by the popular items (a 300-account family
makes 44,850 weak pairs), which would drag a pair quantile down to where one shared two-account
family (weight 1, two people asking the same thing) passes.

**Intense items** (low-and-slow campaigns). A campaign of hundreds of accounts each sending a few
dozen fillings of one preamble gives small per-pair weights (``1/(k-1)``), so it is caught at the
item level instead: an account is an *intense* member of a template when its intensity reaches the
99th percentile of all account-template intensities (or, second test, when it sent two or more
fillings); under the same shuffle the number of intense members of a template with ``k`` accounts
is Binomial(k, p) with ``p`` the observed share of intense relations, tested by its Poisson tail
(mean ``k p``; slightly conservative). A template whose count has a tail probability below
``0.01 / (2 * n_templates)`` (Bonferroni over templates and the two cuts) links its repeat members
to each other, whatever the pair weight.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = ["LinkGraph", "account_volumes", "drop_links", "specific_templates", "build_links", "coherence", "drop_link_tables", "relations",
           "shuffle_relations", "template_specificity"]

# Token length at which a template's fixed text counts as ~63 % specific (one sentence).
_SPEC_TOKENS = 12.0
# Items with more accounts than this link them through a sample of their pairs (`_pair_sql`): all pairs
# of a 5,000-account item would be 12.5 million rows, its sampled ring 100,000.
MAX_PAIR_ACCOUNTS = 500
# Neighbours on each side of an account in a large item's sampled ring of pairs.
SAMPLE_HALF_WIDTH = 10
# Pseudo-prompts added to an account's volume when its shared share is taken: one prompt that happens to
# be shared says little about what an account mostly sends (1 of 1 counts 1/3, 50 of 55 counts 0.88).
SHARE_PRIOR = 2.0


@dataclass(frozen=True)
class LinkGraph:
    """Significant account links.

    Arrays are parallel, one entry per kept link with ``a < b`` (account indices into ``accounts``):
    ``weight`` float64, ``n_shared`` int64 (shared items), ``w_family`` / ``w_template`` the two
    channels of the weight. ``evidence`` maps ``(a, b)`` to a JSON-ready dict.
    """

    accounts: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    weight: np.ndarray
    n_shared: np.ndarray
    w_family: np.ndarray
    w_template: np.ndarray
    threshold: float
    n_candidate_pairs: int
    intense_templates: tuple[int, ...] = ()
    evidence: dict[tuple[int, int], dict] = field(default_factory=dict)


def drop_links(graph: LinkGraph, drop: np.ndarray) -> LinkGraph:
    """The graph without the links where ``drop`` (bool per link) is set."""
    keep = ~np.asarray(drop, dtype=bool)
    if keep.all():
        return graph
    idx = np.flatnonzero(keep)
    ev = {k: v for k, v in graph.evidence.items()} if graph.evidence else {}
    kept_pairs = set(zip(graph.a[idx].tolist(), graph.b[idx].tolist(), strict=True))
    ev = {k: v for k, v in ev.items() if k in kept_pairs}
    return LinkGraph(graph.accounts, graph.a[idx], graph.b[idx], graph.weight[idx], graph.n_shared[idx],
                     graph.w_family[idx], graph.w_template[idx], graph.threshold, graph.n_candidate_pairs,
                     graph.intense_templates, ev)


def template_specificity(fixed_tokens: np.ndarray) -> np.ndarray:
    """Specificity in [0, 1) of templates with ``fixed_tokens`` fixed tokens (see module doc)."""
    return 1.0 - np.exp(-np.asarray(fixed_tokens, dtype=np.float64) / _SPEC_TOKENS)


def _sampled_sql(rel: str, max_pair_accounts: int = MAX_PAIR_ACCOUNTS) -> str:
    """SQL for the sampled pairs ``(a, b, kind, w)`` of the items of ``rel`` past ``max_pair_accounts`` accounts.

    Each account of such an item gets ``2 * SAMPLE_HALF_WIDTH`` neighbours (a ring over the item's accounts
    in a hashed order), each pair weighing ``s * min(u) / (2 * SAMPLE_HALF_WIDTH)``: an account's summed
    weight from the item is the same as with all pairs, at ``k * 10`` rows instead of ``k^2 / 2``.
    """
    cap, h = int(max_pair_accounts), SAMPLE_HALF_WIDTH
    return f"""
        WITH big AS (
            SELECT acc, kind, item, u, s,
                   (row_number() OVER (PARTITION BY kind, item ORDER BY hash(acc * 7919 + item), acc) - 1) AS rk,
                   count(*) OVER (PARTITION BY kind, item) AS kk
            FROM {rel} WHERE k > {cap}
        ), step AS (SELECT *, unnest(range(1, {h + 1})) AS d FROM big)
        SELECT least(r1.acc, r2.acc) AS a, greatest(r1.acc, r2.acc) AS b, r1.kind,
               r1.s * least(r1.u, r2.u) / {2 * h} AS w
        FROM step r1 JOIN big r2
          ON r1.kind = r2.kind AND r1.item = r2.item AND r2.rk = (r1.rk + r1.d) % r1.kk
        WHERE r1.kk > {2 * h}
    """


def _pair_sql(rel: str, sampled: str, max_pair_accounts: int = MAX_PAIR_ACCOUNTS,
              bucket: tuple[int, int] = (0, 1)) -> str:
    """SQL for the weighted pairs of the relation table ``rel(acc, kind, item, u, s, k)``.

    Items with up to ``max_pair_accounts`` accounts give every pair of their accounts; larger ones give
    the sampled pairs of table ``sampled`` (`_sampled_sql`). ``bucket`` ``(j, n)``: only the pairs whose
    first account ``a`` is ``j`` modulo ``n`` (every pair of an account's is in one bucket, its sums whole).

    Weights are rounded to 1e-9: DuckDB sums in whatever order its threads meet the rows, so 1/3 + 1/3
    + 1/3 can come out 1.0 on one run and 0.9999999999999999 on the next, and a link whose weight ties
    the null cut would pass or fail with thread scheduling (a CI run under load failed that way).
    """
    cap, (j, n) = int(max_pair_accounts), (int(bucket[0]), int(bucket[1]))
    return f"""
        WITH small AS (
            SELECT r1.acc AS a, r2.acc AS b, r1.kind, r1.s * least(r1.u, r2.u) / (r1.k - 1) AS w
            FROM {rel} r1 JOIN {rel} r2 ON r1.kind = r2.kind AND r1.item = r2.item AND r1.acc < r2.acc
            WHERE r1.k <= {cap} AND r1.acc % {n} = {j}
        ), p AS (SELECT * FROM small UNION ALL SELECT * FROM {sampled} WHERE a % {n} = {j})
        SELECT a, b, round(sum(w), 9) AS weight, count(*) AS n_shared,
               round(sum(CASE WHEN kind = 'F' THEN w ELSE 0 END), 9) AS w_family,
               round(sum(CASE WHEN kind = 'T' THEN w ELSE 0 END), 9) AS w_template
        FROM p GROUP BY a, b
    """


# Candidate pairs grouped at once: at ten million exchanges the small items alone give billions of pair
# rows, which no memory limit holds as one GROUP BY (the 10M season scan ran out at 12 GB), so the pairs
# are summed in buckets of their first account, each about this many rows.
PAIRS_PER_BUCKET = 20_000_000


def _pair_buckets(con: duckdb.DuckDBPyConnection, rel: str, max_pair_accounts: int, what: str):
    """Yield the SQL of each bucket of the weighted pairs of ``rel`` (`_pair_sql`); logs progress as ``what``.

    The sampled pairs of large items are computed once into ``_rg_sampled`` (dropped at the end). The
    bucket count comes from the exact number of pair rows: ``k (k - 1) / 2`` per small item plus the
    sampled rows.
    """
    cap = int(max_pair_accounts)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rg_sampled AS {_sampled_sql(rel, cap)}")
    try:
        n_small = con.execute(f"SELECT coalesce(sum(k - 1), 0) / 2 FROM {rel} WHERE k <= {cap}").fetchone()[0]
        n_sampled = con.execute("SELECT count(*) FROM _rg_sampled").fetchone()[0]
        n = max(1, math.ceil((float(n_small) + n_sampled) / PAIRS_PER_BUCKET))
        t0 = time.monotonic()
        for j in range(n):
            yield _pair_sql(rel, "_rg_sampled", cap, (j, n))
            if n > 1:
                log.info("links: %s, pair bucket %d/%d (%.0f pair rows in all) in %.0f s", what, j + 1, n,
                         float(n_small) + n_sampled, time.monotonic() - t0)
    finally:
        con.execute("DROP TABLE IF EXISTS _rg_sampled")


def build_links(
    con: duckdb.DuckDBPyConnection,
    *,
    max_item_accounts: int = MAX_PAIR_ACCOUNTS,
    n_null: int = 3,
    null_quantile: float = 0.99,
    seed: int = 0,
    n_evidence: int = 3,
    family_crowd: pa.Table | None = None,
    crowd_members: pa.Table | None = None,
    sharer_weights: bool = True,
    large_items: bool = True,
    keep_tables: bool = False,
    suppress: pa.Table | None = None,
) -> LinkGraph:
    """Weighted account-account links from shared families and templates, cut at the null.

    Reads ``exchanges``, ``families``, ``templates`` and ``template_members``. Temporary tables are
    dropped before returning. Account indices follow ``accounts`` sorted by account id.

    Args:
        max_item_accounts: items with more accounts link through a sample of their pairs
            (``large_items``) or not at all (cost bound, see module doc).
        n_null: number of shuffles pooled for the null distribution.
        null_quantile: quantile of the null pair weights a link must exceed.
        seed: seed of the shuffles (results are deterministic for a given input).
        n_evidence: shared items kept as evidence per link.
        family_crowd: optional ``(family_id, crowd)`` (:func:`engine.detect.crowding.family_crowds`):
            a family then weighs ``(k - 1) / (crowd - 1)`` of a family that only its own ``k``
            accounts write anything like, so common kinds of prompt link nobody.
        crowd_members: optional ``(family_id, account_id)``, the accounts of each family's crowd
            (``family_crowds(..., members=True)``); with ``sharer_weights`` a crowd account counts by how
            ordinary its traffic is (``1 - share``), so campaigns crowding one another's families do not
            discount them as if strangers wrote alike.
        sharer_weights: weigh each item by who shares it (`sharer_weights`, module doc).
        large_items: keep items past ``max_item_accounts`` (tested, linked by sampled pairs).
        keep_tables: keep the relation tables for :func:`engine.detect.rings.expand_rings`; the caller then calls
            :func:`drop_link_tables`.
        suppress: optional ``(kind, item)`` rows ('F' family, 'T' template) analysts marked benign
            (:mod:`engine.detect.watchlist`): they relate no account to anything, so they link nobody.
    """
    t0 = time.monotonic()
    accounts = tuple(
        r[0] for r in con.execute("SELECT DISTINCT account_id FROM exchanges ORDER BY account_id").fetchall()
    )
    empty = np.empty(0, dtype=np.int64)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _rg_acc AS "
        "SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1)::BIGINT AS acc "
        "FROM (SELECT DISTINCT account_id FROM exchanges)"
    )
    # Template specificity from the anchors' token count: the template table has no token count.
    trows = con.execute("SELECT template_id, anchors, kind FROM templates ORDER BY template_id").fetchall()
    tid = np.array([r[0] for r in trows], dtype=np.int64)
    ftok = np.array([_anchor_tokens(r[1]) for r in trows], dtype=np.float64)
    spec = pa.table({"template_id": tid, "s": template_specificity(ftok),  # noqa: F841 (read by DuckDB)
                     "label": np.array([r[2] == "label" for r in trows], dtype=bool)})
    # (account, item) relations with intensity, for items used by 2..max accounts. Families and
    # templates share one table: kind 'F' or 'T'.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _rg_rel AS
        WITH fam AS (
            SELECT x.acc, 'F' AS kind, f.family_id AS item, count(DISTINCT e.prompt_id) AS np,
                   1.0::DOUBLE AS s, false AS label
            FROM exchanges e JOIN families f USING (prompt_id) JOIN _rg_acc x USING (account_id)
            GROUP BY x.acc, f.family_id
        ), tpl AS (
            SELECT x.acc, 'T' AS kind, m.template_id AS item, count(DISTINCT e.prompt_id) AS np,
                   any_value(sp.s)::DOUBLE AS s, any_value(sp.label) AS label
            FROM exchanges e JOIN template_members m USING (prompt_id) JOIN _rg_acc x USING (account_id)
                 JOIN spec sp USING (template_id)
            GROUP BY x.acc, m.template_id
        ), allrel AS (SELECT * FROM fam UNION ALL SELECT * FROM tpl)
        SELECT acc, kind, item, 1.0 + ln(np) AS u, np, s, label,
               count(*) OVER (PARTITION BY kind, item) AS k, NULL::DOUBLE AS coherence, NULL::DOUBLE AS crowd,
               s AS s_base
        FROM allrel
        """
    )
    con.execute("DELETE FROM _rg_rel WHERE k < 2" + ("" if large_items else f" OR k > {int(max_item_accounts)}"))
    if suppress is not None and suppress.num_rows:
        con.register("_rg_suppress", suppress)
        con.execute("DELETE FROM _rg_rel WHERE (kind, item) IN (SELECT (kind, item) FROM _rg_suppress)")
        con.unregister("_rg_suppress")
    volumes = None
    if sharer_weights:
        volumes = account_volumes(con, len(accounts))
        _sharer_weights(con, volumes, crowd_members)
    elif family_crowd is not None and family_crowd.num_rows:
        con.register("_rg_crowd", family_crowd)
        con.execute(
            "UPDATE _rg_rel SET s = (_rg_rel.k - 1)::DOUBLE / (greatest(c.crowd, _rg_rel.k) - 1), "
            "crowd = greatest(c.crowd, _rg_rel.k) "
            "FROM _rg_crowd c WHERE _rg_rel.kind = 'F' AND _rg_rel.item = c.family_id"
        )
        con.unregister("_rg_crowd")
    rel = relations(con)
    n_rel = len(rel["acc"])
    log.debug("links: %d account-item relations over shared items", n_rel)
    if n_rel == 0:
        drop_link_tables(con)
        return LinkGraph(accounts, empty, empty, empty.astype(float), empty, empty.astype(float),
                         empty.astype(float), math.inf, 0)

    # Null: permute the item column within each kind (_shuffle_into).
    rng = np.random.default_rng(seed)
    null_w: list[np.ndarray] = []
    # Each account's own strongest chance link over the shuffles: a heavy user shares much generic
    # content with other heavy users by volume alone, so its links must also beat its own null, not
    # only the pooled one (which the few heavy accounts barely move).
    own_null = np.zeros(len(accounts), np.float64)
    has_rel = np.unique(np.asarray(rel["acc"], dtype=np.int64))
    for draw in range(max(1, n_null)):
        shuffle_relations(con, rel, rng, "_rg_null", volumes=volumes)
        # Each account's strongest chance link; accounts with shared items but no null pair count 0.
        mx = np.zeros(len(accounts), np.float64)
        for sql in _pair_buckets(con, "_rg_null", max_item_accounts, f"null draw {draw + 1}"):
            res = con.execute(
                f"WITH p AS ({sql}) SELECT acc, max(weight) AS w "
                "FROM (SELECT unnest([a, b]) AS acc, weight FROM p) GROUP BY acc"
            ).fetchnumpy()
            acc = np.asarray(res["acc"], dtype=np.int64)
            mx[acc] = np.maximum(mx[acc], np.asarray(res["w"], dtype=np.float64))
        null_w.append(mx[has_rel])
        own_null = np.maximum(own_null, mx)
    pooled = np.concatenate(null_w) if null_w else np.empty(0)
    threshold = float(np.quantile(pooled, null_quantile)) if len(pooled) else 0.0

    # Intense templates: binomial test on members whose intensity is past the 99th percentile.
    intense = _intense_templates(con, max_item_accounts)

    own = pa.table({"acc": np.arange(len(accounts), dtype=np.int64), "w": own_null})  # noqa: F841
    con.execute("CREATE OR REPLACE TEMP TABLE own_null AS SELECT * FROM own")
    con.execute("CREATE OR REPLACE TEMP TABLE _rg_keep (a BIGINT, b BIGINT, weight DOUBLE, n_shared BIGINT, "
                "w_family DOUBLE, w_template DOUBLE)")
    n_cand = 0
    for sql in _pair_buckets(con, "_rg_rel", max_item_accounts, "links"):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _rg_pairs AS {sql}")
        n_cand += con.execute("SELECT count(*) FROM _rg_pairs").fetchone()[0]
        con.execute(
            f"""
            INSERT INTO _rg_keep
            SELECT p.* FROM _rg_pairs p JOIN own_null n1 ON n1.acc = p.a JOIN own_null n2 ON n2.acc = p.b
            WHERE p.weight > {threshold!r} AND p.weight > greatest(n1.w, n2.w)
            UNION
            SELECT p.* FROM _rg_pairs p
            WHERE EXISTS (
                SELECT 1 FROM _rg_intense i1 JOIN _rg_intense i2 ON i1.item = i2.item
                WHERE i1.acc = p.a AND i2.acc = p.b)
            """
        )
    kept = con.execute(
        "SELECT a, b, weight, n_shared, w_family, w_template FROM _rg_keep ORDER BY a, b"
    ).fetchnumpy()
    evidence = _evidence(con, n_evidence)
    drop_link_tables(con, keep=("_rg_acc", "_rg_rel", "_rg_share") if keep_tables else ())
    g = LinkGraph(
        accounts=accounts,
        a=np.asarray(kept["a"], dtype=np.int64),
        b=np.asarray(kept["b"], dtype=np.int64),
        weight=np.asarray(kept["weight"], dtype=np.float64),
        n_shared=np.asarray(kept["n_shared"], dtype=np.int64),
        w_family=np.asarray(kept["w_family"], dtype=np.float64),
        w_template=np.asarray(kept["w_template"], dtype=np.float64),
        threshold=threshold,
        n_candidate_pairs=int(n_cand),
        intense_templates=tuple(int(x) for x in intense),
        evidence=evidence,
    )
    log.info(
        "links: %d of %d candidate pairs pass the null (threshold %.4f, %d intense templates) in %.1f s",
        len(g.a), n_cand, threshold, len(intense), time.monotonic() - t0,
    )
    return g


def account_volumes(con: duckdb.DuckDBPyConnection, n_accounts: int) -> np.ndarray:
    """Distinct prompts per account index of ``_rg_acc`` (float64, length ``n_accounts``)."""
    vol = con.execute(
        "SELECT x.acc, count(DISTINCT e.prompt_id) AS n FROM exchanges e JOIN _rg_acc x USING (account_id) "
        "GROUP BY x.acc"
    ).fetchnumpy()
    n = np.zeros(n_accounts, np.float64)
    n[np.asarray(vol["acc"], dtype=np.int64)] = np.asarray(vol["n"], dtype=np.float64)
    return n


def relations(con: duckdb.DuckDBPyConnection) -> dict:
    """The columns of ``_rg_rel`` a null draw needs, in a fixed order (deterministic shuffles)."""
    return con.execute(
        "SELECT acc, kind, item, u, np, s, s_base, k FROM _rg_rel ORDER BY kind, item, acc"
    ).fetchnumpy()


def coherence(acc: np.ndarray, kind: np.ndarray, item: np.ndarray, n_prompts: np.ndarray,
              volumes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per relation, its item's coherence; per account, its shared share (see `_sharer_weights`).

    ``acc``, ``kind``, ``item``, ``n_prompts`` are parallel relation columns; ``volumes`` the accounts'
    distinct prompts. A prompt in both a family and a template counts twice: capped at the volume.
    """
    code = np.asarray(item, dtype=np.int64) * 2 + (np.asarray(kind) == "T")
    _, inv = np.unique(code, return_inverse=True)
    shared = np.minimum(np.bincount(acc, weights=n_prompts, minlength=len(volumes)), volumes)
    share = shared / (volumes + SHARE_PRIOR)
    per_item = np.bincount(inv, weights=share[acc]) / np.maximum(np.bincount(inv), 1)
    return per_item[inv], share


def _sharer_weights(con: duckdb.DuckDBPyConnection, volumes: np.ndarray, crowd_members: pa.Table | None) -> None:
    """Weigh every item of ``_rg_rel`` by who shares it; fills temp table ``_rg_share(acc, share)``.

    An account's *shared share* is the part of its distinct prompts that lie in shared items,
    ``shared / (prompts + SHARE_PRIOR)``; an item's *coherence* is the mean shared share of its accounts.
    A family copied among accounts that send little else scores near 1; a prompt that ordinary users
    send among their own traffic scores near their (small) shared share, however many send it. The
    item's weight ``s`` is its base weight (specificity, crowd) times its coherence: one step of the
    account-item iteration of HITS, stopped there because further steps only sharpen the same ranking
    while shrinking the scale the null cut is read on. Coherence is a property of who holds the item, so
    every null draw recomputes it on its own shuffled relations (`shuffle_relations`): a statistic
    carried over from the real data would make the real pairs of light accounts look rarer than chance.

    With ``crowd_members``, a family's crowd discount counts each crowd account outside the family by
    ``1 - share``: strangers writing alike discount it, other campaigns' accounts much less.
    """
    # Ordered: the float sums below (bincount) must meet the rows in one order on every run.
    rel = con.execute("SELECT acc, kind, item, np FROM _rg_rel ORDER BY kind, item, acc").fetchnumpy()
    acc = np.asarray(rel["acc"], dtype=np.int64)
    if len(acc) == 0:
        con.execute("CREATE OR REPLACE TEMP TABLE _rg_share (acc BIGINT, share DOUBLE)")
        return
    _, share = coherence(acc, rel["kind"], rel["item"], np.asarray(rel["np"], np.float64), volumes)
    has = np.flatnonzero(share > 0)
    st = pa.table({"acc": has, "share": share[has]})  # noqa: F841 (read by DuckDB)
    con.execute("CREATE OR REPLACE TEMP TABLE _rg_share AS SELECT * FROM st")
    if crowd_members is not None and crowd_members.num_rows:
        con.register("_rg_cm", crowd_members)
        con.execute(
            """
            UPDATE _rg_rel SET s_base = _rg_rel.s_base * (_rg_rel.k - 1) / (_rg_rel.k - 1 + o.ordinary),
                               crowd = _rg_rel.k + o.ordinary
            FROM (
                SELECT cm.family_id, round(sum(1.0 - coalesce(sh.share, 0.0)), 9) AS ordinary
                FROM (SELECT DISTINCT c.family_id, x.acc FROM _rg_cm c JOIN _rg_acc x USING (account_id)) cm
                LEFT JOIN _rg_rel r ON r.kind = 'F' AND r.item = cm.family_id AND r.acc = cm.acc
                LEFT JOIN _rg_share sh ON sh.acc = cm.acc
                WHERE r.acc IS NULL GROUP BY cm.family_id
            ) o
            WHERE _rg_rel.kind = 'F' AND _rg_rel.item = o.family_id
            """
        )
        con.unregister("_rg_cm")
    c, _ = coherence(acc, rel["kind"], rel["item"], np.asarray(rel["np"], np.float64), volumes)
    per_rel = pa.table({"acc": acc, "kind": rel["kind"], "item": rel["item"], "c": c})  # noqa: F841
    con.execute(
        "UPDATE _rg_rel SET s = _rg_rel.s_base * p.c, coherence = p.c FROM per_rel p "
        "WHERE _rg_rel.acc = p.acc AND _rg_rel.kind = p.kind AND _rg_rel.item = p.item"
    )
    log.debug("links: item coherence median %.3f, 99th percentile %.3f over %d relations",
              float(np.median(c)), float(np.quantile(c, 0.99)), len(c))


def specific_templates(con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """Ids of the templates whose fixed text is a sentence or more (specificity >= MIN_INTENSE_SPECIFICITY,
    about eight tokens): someone wrote them. "translate this into {0}: {1}" is how people talk."""
    rows = con.execute("SELECT template_id, anchors FROM templates ORDER BY template_id").fetchall()
    tid = np.array([r[0] for r in rows], dtype=np.int64)
    spec = template_specificity(np.array([_anchor_tokens(r[1]) for r in rows], dtype=np.float64))
    return tid[spec >= MIN_INTENSE_SPECIFICITY]


def _anchor_tokens(anchors: object) -> int:
    """Token count of a template's anchors (JSON list of strings, or a list already)."""
    from engine.detect.templates import tokenize

    if isinstance(anchors, str):
        try:
            anchors = json.loads(anchors)
        except json.JSONDecodeError:
            anchors = [anchors]
    if not isinstance(anchors, list):
        return 0
    return sum(len(tokenize(str(a))) for a in anchors)


# Distinct fillings of a significant template that make an account one of its members.
MIN_REPEAT = 2
# Specificity (1 - exp(-fixed_tokens / 12)) a template needs before repeated use links accounts: ~8 tokens.
MIN_INTENSE_SPECIFICITY = 0.5


def _poisson_sf(x: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """P(X >= x) for X ~ Poisson(lam), elementwise (log-space sum of the upper tail)."""
    out = np.ones(len(x), dtype=np.float64)
    for i, (xi, li) in enumerate(zip(x.tolist(), lam.tolist(), strict=True)):
        if xi <= 0 or xi <= li:
            continue  # at or below the mean: nowhere near significant
        if li <= 0:
            out[i] = 0.0
            continue
        js = np.arange(xi, xi + 60 + int(10 * math.sqrt(li) + xi))
        lt = -li + js * math.log(li) - np.array([math.lgamma(j + 1) for j in js.tolist()])
        m = float(lt.max())
        out[i] = min(1.0, math.exp(m) * float(np.exp(lt - m).sum()))
    return out


def _intense_templates(con: duckdb.DuckDBPyConnection, max_pair_accounts: int = MAX_PAIR_ACCOUNTS) -> list[int]:
    """Templates with significantly many intense members; fills temp table ``_rg_intense(acc, item)``.

    Templates past ``max_pair_accounts`` accounts are not tested here (their members link through sampled
    pairs, cut at the same null as every pair): over thousands of accounts the Poisson test finds any
    excess significant, and a stock phrase ordinary users repeat a little more than average linked
    thousands of them into one ring (season profile, 1M exchanges: a ring of 1,971 organic accounts,
    even with the test limited to templates whose accounts mostly send shared content).
    """
    rel = con.execute(
        f"SELECT item, u FROM _rg_rel WHERE kind = 'T' AND k <= {int(max_pair_accounts)} ORDER BY item"
    ).fetchnumpy()
    u = np.asarray(rel["u"], dtype=np.float64)
    con.execute("CREATE OR REPLACE TEMP TABLE _rg_intense (acc BIGINT, item BIGINT)")
    if len(u) == 0:
        return []
    items, first = np.unique(np.asarray(rel["item"], dtype=np.int64), return_index=True)
    k = np.diff(np.append(first, len(u)))
    significant: set[int] = set()
    # Two cuts, each tested against its own background rate over all template relations: the 99th
    # percentile of intensity (a few accounts hammering one template), and "sent two or more distinct
    # fillings" (many accounts each repeating a template a few times: low and slow). Organic users
    # repeat templates too, at the background rate; a campaign's members repeat far more often.
    # (Conditioning the rate on account volume was tried: on bench/detect_eval.py it found nothing
    # more and missed a small low-and-slow ring, whose volume class other campaigns had filled.)
    cut99 = float(np.quantile(u, 0.99))
    for cut in (cut99, 1.0 + math.log(MIN_REPEAT)):
        # ">=" so ties at the cut count (many relations share the same few intensities).
        hit = u >= cut - 1e-9
        x = np.add.reduceat(hit.astype(np.int64), first)
        cand = x >= 3  # a ring needs three accounts
        pv = np.ones(len(items))
        pv[cand] = _poisson_sf(x[cand], k[cand] * float(hit.mean()))
        significant.update(int(t) for t in items[cand & (pv < 0.01 / max(1, 2 * len(items)))])
    grouped = _intense_preambles(con, max_pair_accounts, float((u >= 1.0 + math.log(MIN_REPEAT) - 1e-9).mean()),
                                 significant)
    sig = np.array(sorted(significant), dtype=np.int64)
    if len(sig):
        sel = pa.table({"item": sig})  # noqa: F841 (read by DuckDB)
        # Once a template is shown to be used intensely by too many accounts, every member that sent it
        # at least twice (distinct fillings) takes part: low-and-slow accounts each send only a few, and
        # the 99th-percentile cut that proved the template would miss most of them. Other short
        # templates ("translate into french: {x}") are left out: repeated organic use of a stock phrase
        # is normal. A field label ("summarize: {article}") is the one short kind kept, and only its
        # members past the 99th-percentile intensity: twenty articles each from a handful of accounts
        # is a sweep, two from a user is a habit.
        con.execute(
            f"INSERT INTO _rg_intense SELECT acc, item FROM _rg_rel "
            f"WHERE kind = 'T' AND item IN (SELECT item FROM sel) AND ("
            f"(np >= {MIN_REPEAT} AND s >= {MIN_INTENSE_SPECIFICITY}) OR (label AND u >= {cut99 - 1e-9!r}))"
        )
    log.debug("links: %d significant templates of %d tested, %d preambles", len(sig), len(items), len(grouped))
    return sorted(set(sig.tolist()) | set(grouped))


# Tokens of a shared opening that make sibling templates one preamble (specificity 0.63: a sentence).
PREAMBLE_TOKENS = 12


def _intense_preambles(con: duckdb.DuckDBPyConnection, max_pair_accounts: int, rate: float,
                       significant: set[int]) -> list[int]:
    """Sibling templates behind one preamble, tested for repeat use as one; adds to ``_rg_intense``.

    The miner splits templates that share a long opening but differ further on ("you are a senior
    annotator ... task: rate toxicity ..." and "... task: classify sentiment ..."), which is right for
    reading them, but a low-and-slow campaign spreads each account's few prompts over its tasks: no
    account then fills any one of them twice, and the repeat-use test above sees nothing. Templates
    whose first anchor opens the prompt with a sentence or more are grouped by it; a group of two or
    more is tested like one template, against ``rate``, the share of all template relations with two or
    more fillings (a user of one sibling repeats it at that rate), and its repeat members join
    ``_rg_intense`` under the group's first template. Only groups none of whose templates passed on
    its own are tested: where the per-template test has the power, it keeps campaigns that share a
    preamble but not their tasks apart (grouping them anyway merged same-kind campaigns' rings at 1M).
    Siblings' first anchors differ in length (one runs on into its task line), so the group is keyed
    by their first ``PREAMBLE_TOKENS`` tokens.
    """
    from engine.detect.templates import tokenize

    rows = con.execute("SELECT template_id, pattern, anchors FROM templates ORDER BY template_id").fetchall()
    group: dict[str, list[int]] = {}
    for tid, pattern, anchors in rows:
        anchors = json.loads(anchors) if isinstance(anchors, str) else list(anchors or [])
        if not anchors or (pattern or "").startswith("{"):
            continue
        opening = tokenize(anchors[0])[:PREAMBLE_TOKENS]
        if len(opening) == PREAMBLE_TOKENS:
            group.setdefault(" ".join(opening), []).append(int(tid))
    groups = [sorted(g) for g in group.values() if len(g) >= 2 and not significant.intersection(g)]
    if not groups:
        return []
    gm = pa.table({"item": np.concatenate([np.array(g, np.int64) for g in groups]),  # noqa: F841 (DuckDB)
                   "grp": np.concatenate([np.full(len(g), g[0], np.int64) for g in groups])})
    rel = con.execute(
        """
        WITH r AS (
            -- A prompt fills at most one template, so the siblings' distinct prompts add up.
            SELECT x.acc, gm.grp, sum(x.np) AS np, min(x.s) AS s
            FROM _rg_rel x JOIN gm USING (item)
            WHERE x.kind = 'T'
            GROUP BY x.acc, gm.grp
        )
        SELECT acc, grp, np, s, count(*) OVER (PARTITION BY grp) AS k FROM r ORDER BY grp, acc
        """
    ).fetchnumpy()
    grp = np.asarray(rel["grp"], dtype=np.int64)
    if len(grp) == 0:
        return []
    np_ = np.asarray(rel["np"], dtype=np.int64)
    k = np.asarray(rel["k"], dtype=np.int64)
    hit = np_ >= MIN_REPEAT
    items, first = np.unique(grp, return_index=True)
    x = np.add.reduceat(hit.astype(np.int64), first)
    kk = k[first]
    cand = (x >= 3) & (kk <= max_pair_accounts)
    pv = np.ones(len(items))
    pv[cand] = _poisson_sf(x[cand], kk[cand] * rate)
    sig = items[cand & (pv < 0.01 / max(1, len(items)))]
    if len(sig):
        keep = np.isin(grp, sig) & hit & (np.asarray(rel["s"], dtype=np.float64) >= MIN_INTENSE_SPECIFICITY)
        add = pa.table({"acc": np.asarray(rel["acc"], dtype=np.int64)[keep], "item": grp[keep]})  # noqa: F841
        con.execute("INSERT INTO _rg_intense SELECT acc, item FROM add")
    return sig.tolist()


def _evidence(con: duckdb.DuckDBPyConnection, n_evidence: int) -> dict[tuple[int, int], dict]:
    """Top shared items of every kept link, with one example prompt from each side."""
    rows = con.execute(
        f"""
        WITH sh AS (
            SELECT k.a, k.b, r1.kind, r1.item, r1.k, r1.coherence, r1.crowd,
                   r1.s * least(r1.u, r2.u) / (r1.k - 1) AS contrib,
                   row_number() OVER (PARTITION BY k.a, k.b
                                      ORDER BY r1.s * least(r1.u, r2.u) / (r1.k - 1) DESC, r1.kind, r1.item) AS rk
            FROM _rg_keep k
            JOIN _rg_rel r1 ON r1.acc = k.a
            JOIN _rg_rel r2 ON r2.acc = k.b AND r2.kind = r1.kind AND r2.item = r1.item
        ), top AS (SELECT * FROM sh WHERE rk <= {int(n_evidence)}),
        need AS (SELECT a AS acc, kind, item FROM top UNION SELECT b, kind, item FROM top),
        ex AS (  -- one example prompt per (account, item): the smallest prompt id, for determinism
            SELECT n.acc, n.kind, n.item, min(e.prompt_id) AS pid
            FROM need n JOIN _rg_acc x ON x.acc = n.acc
            JOIN exchanges e ON e.account_id = x.account_id
            LEFT JOIN families f ON n.kind = 'F' AND f.prompt_id = e.prompt_id AND f.family_id = n.item
            LEFT JOIN template_members m ON n.kind = 'T' AND m.prompt_id = e.prompt_id
                                         AND m.template_id = n.item
            WHERE f.family_id IS NOT NULL OR m.template_id IS NOT NULL
            GROUP BY n.acc, n.kind, n.item
        )
        SELECT t.a, t.b, t.kind, t.item, t.k, t.coherence, t.crowd, t.contrib, ea.pid, eb.pid,
               left(pa.text, 200), left(pb.text, 200), tp.pattern
        FROM top t
        JOIN ex ea ON ea.acc = t.a AND ea.kind = t.kind AND ea.item = t.item
        JOIN ex eb ON eb.acc = t.b AND eb.kind = t.kind AND eb.item = t.item
        LEFT JOIN prompts pa ON pa.prompt_id = ea.pid
        LEFT JOIN prompts pb ON pb.prompt_id = eb.pid
        LEFT JOIN templates tp ON t.kind = 'T' AND tp.template_id = t.item
        ORDER BY t.a, t.b, t.rk
        """
    ).fetchall()
    pids = {(min(r[7], r[8]), max(r[7], r[8])) for r in rows if r[2] == "F" and r[7] != r[8]}
    sims: dict[tuple[int, int], float] = {}
    if pids:
        pt = pa.table({"pa": [p[0] for p in pids], "pb": [p[1] for p in pids]})  # noqa: F841
        sims = {
            (int(x), int(y)): float(s)
            for x, y, s in con.execute(
                "SELECT m.prompt_a, m.prompt_b, m.similarity FROM matches m "
                "JOIN pt ON m.prompt_a = pt.pa AND m.prompt_b = pt.pb"
            ).fetchall()
        }
    out: dict[tuple[int, int], dict] = {}
    for a, b, kind, item, k, coherence, crowd, contrib, pida, pidb, ta, tb, pattern in rows:
        d = out.setdefault((int(a), int(b)), {"families": [], "templates": []})
        entry: dict = {"id": int(item), "n_accounts": int(k), "weight": round(float(contrib), 4),
                       "prompt_a": int(pida), "text_a": ta, "prompt_b": int(pidb), "text_b": tb,
                       # Mean shared share of the item's accounts: how little else they send.
                       "coherence": round(float(coherence), 3) if coherence is not None else None}
        if kind == "F":
            # Accounts writing anything within the who-else radius; with sharer weights, those outside
            # the family count by how ordinary their traffic is.
            entry["crowd"] = int(round(crowd)) if crowd is not None else int(k)
            key = (min(pida, pidb), max(pida, pidb))
            entry["similarity"] = 1.0 if pida == pidb else sims.get(key)
            d["families"].append(entry)
        else:
            entry["pattern"] = (pattern or "")[:200]
            d["templates"].append(entry)
    return out


def shuffle_relations(con: duckdb.DuckDBPyConnection, rel: dict, rng: np.random.Generator, table: str,
                      volumes: np.ndarray | None = None) -> None:
    """One null draw of the relations ``rel`` (:func:`relations`) into temp table ``table``.

    The item column is permuted within each kind; ``u`` stays with the account, the base weight and
    ``k`` with the item. With ``volumes`` (sharer weights), each item's coherence is recomputed from the
    accounts the draw gave it, and its weight is its base weight times that; without, ``s`` moves as is.
    """
    kind = np.asarray(rel["kind"])
    item = np.asarray(rel["item"], dtype=np.int64)
    perm_item = item.copy()
    base = np.asarray(rel["s_base" if volumes is not None else "s"], dtype=np.float64)
    perm_s = base.copy()
    perm_k = np.asarray(rel["k"], dtype=np.int64).copy()
    for kd in ("F", "T"):
        idx = np.flatnonzero(kind == kd)
        p = rng.permutation(len(idx))
        perm_item[idx], perm_s[idx], perm_k[idx] = item[idx][p], perm_s[idx][p], perm_k[idx][p]
    acc = np.asarray(rel["acc"], dtype=np.int64)
    if volumes is not None:
        c, _ = coherence(acc, kind, perm_item, np.asarray(rel["np"], np.float64), volumes)
        perm_s = perm_s * c
    shuf = pa.table({  # noqa: F841 (read by DuckDB)
        "acc": acc, "kind": kind, "item": perm_item, "u": rel["u"], "s": perm_s, "k": perm_k,
    })
    # An account drawn twice into one item keeps its largest intensity (the relation is a set).
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT acc, kind, item, max(u) AS u, "
        "any_value(s) AS s, any_value(k) AS k FROM shuf GROUP BY acc, kind, item"
    )


def drop_link_tables(con: duckdb.DuckDBPyConnection, keep: tuple[str, ...] = ()) -> None:
    """Drop the temporary tables of :func:`build_links` (all but ``keep``); after ``keep_tables=True``
    the caller calls this once it is done with :func:`engine.detect.rings.expand_rings`."""
    for t in ("_rg_acc", "_rg_rel", "_rg_null", "_rg_sampled", "_rg_pairs", "_rg_keep", "_rg_intense", "_rg_share", "own_null"):
        if t not in keep:
            con.execute(f"DROP TABLE IF EXISTS {t}")
