"""Group evidence for campaigns too large for pair links: who an account's near-copies are shared with.

A pair of accounts in a 200-account copy ring shares about one question (each question goes to a few
of the ring's accounts), and at ten million exchanges a ring of thousands shares even less per pair,
so no pair test sees it. What the ring does have is a *network*: every account's traffic is mostly
near-copies, and the other senders of those copies send mostly near-copies too, and so do theirs. An
ordinary user who pastes a popular jailbreak or two bank questions shares them with people whose own
traffic is mostly their own.

The **copy-network standing** measures that by mutual reinforcement over the account x family
relation (in the spirit of HITS), the item weights coming from who shares an item rather than how
many do:

* start: an account's *shared share*, the exchanges it sent in families other accounts also sent,
  over its exchanges plus ``PRIOR_EXCHANGES`` (a one-exchange account cannot reach a high share);
* a family's weight is the mean standing of its *other* senders (leave-one-out, so an account never
  vouches for itself through a family only it and one other account sent);
* an account's new standing is its exchanges weighted by their families' weights, over the same
  volume.

Each step reaches one hop further through shared families. The standing shrinks with every step (a
family's weight is below 1), so its scale says nothing by itself; it is read against the standings
of ordinary accounts (`reference_cut`): the 99th percentile of the accounts outside rings, as for every
share, with two guards. Campaigns of this kind are too large to be ringed whole, and where their
unringed accounts are more than a few % of the background they would set their own cut-off: the
percentile is capped by a log-normal fitted to the bulk of the sharing accounts (median and
quartiles, which a contamination of even a quarter leaves in place; it overestimates the organic 99th
percentile by about 1.5x on both synthetic profiles at 1M exchanges, so it only bites when the
percentile is far off). And the cut-off never falls below what chance gives: the family column of
the relation is shuffled ``NULL_DRAWS`` times (every account keeps its families' exchange counts,
every family its number of senders; only who sent which is random), and the highest standing of any
account in any draw is the floor.

Past the cut-off, the score is the standing's rank among the background (`tail_score`), not its
ratio to the cut-off: ordinary standings bunch tightly (the 99.9th percentile is ~1.2x the 99th at 1M
exchanges), so a ratio would score an account above all but 0.1 % of ordinary ones at 0.16, and one
above every ordinary account barely higher. ``STEPS`` is a fixed, small number on purpose: run to
convergence, the iteration becomes the leading eigenvector, which concentrates on the densest part
of the graph (one big campaign) and lets the rest of the ranking decay (measured: template sweeps at
0.1 % FPR on the default profile fall from 0.99 at 8 steps to 0.51 at 15, while the season profile
gains little past 8; `bench/results/copy_network_steps_*.json`).

Single-purpose accounts (integrations, and campaign accounts that fill one template all day) carry no
standing of their own, since what they share they may share as a product feature, but they do pass it
on: they are real traffic, and a sweep's heaviest accounts are the hubs its other accounts share with
(measured: cutting them out of the iteration took the standing's own recall of template sweeps at 1M
from 0.91 to 0.41). Families analysts marked benign count as not shared.

**Joining rings** (`ring_ties`). A ring is formed from pair links, so a campaign's thin and diluted
accounts, whose pairs share too little, stay outside it. An account past the standing's cut-off whose
copy network points at one ring (at least half its shared exchanges' other senders, weighted, are that
ring's members, over two or more families) joins that ring; one shared question is a bystander's.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import NormalDist

import duckdb
import numpy as np
import pyarrow as pa

from engine.detect.signals import PRIOR_EXCHANGES

log = logging.getLogger(__name__)

__all__ = ["STEPS", "CopyNetwork", "copy_network", "reference_cut", "ring_ties", "tail_score", "template_ties"]

# Hops of the reinforcement (see the module docstring for why it is not run to convergence).
STEPS = 8
# Shuffles of who sent which family for the null cut-off.
NULL_DRAWS = 3
# An account past the cut-off joins the ring holding at least this share of its copy network's ties...
JOIN_MAJORITY = 0.5
# ...through at least this many shared families (one shared question is a bystander's).
JOIN_MIN_FAMILIES = 2
# Families shown as evidence per account.
EXAMPLES = 3


@dataclass(frozen=True)
class CopyNetwork:
    """Per account (in the order of the ``accounts`` passed in): standing and its parts."""

    standing: np.ndarray  # float64 (n,), after STEPS steps; 0 for accounts sharing nothing
    null_cut: float  # the highest standing of any account in the null draws (0 with nothing shared)
    n_partners: np.ndarray  # int64 (n,): other accounts sending those families (with repeats over families)
    # The relation (account index, family, exchanges, accounts of the family, family weight at the last step).
    rel: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]

    def top_families(self, mask: np.ndarray, n: int = EXAMPLES) -> dict[int, list[tuple[int, int, float, int]]]:
        """For each account index in ``mask``: its ``n`` strongest families, as (family_id, accounts,
        weight, exchanges), by weight x exchanges."""
        acc, fam, c, k, w = self.rel
        sel = np.flatnonzero(np.asarray(mask)[acc] & (w > 0))
        order = sel[np.lexsort((fam[sel], -(c[sel] * w[sel]), acc[sel]))]
        a = acc[order]
        first = np.r_[True, a[1:] != a[:-1]]
        run_start = np.maximum.accumulate(np.where(first, np.arange(len(a)), 0))
        order = order[np.arange(len(a)) - run_start < n]
        out: dict[int, list[tuple[int, int, float, int]]] = {}
        for j in order.tolist():
            out.setdefault(int(acc[j]), []).append((int(fam[j]), int(k[j]), float(w[j]), int(c[j])))
        return out


def copy_network(
    con: duckdb.DuckDBPyConnection,
    accounts: tuple[str, ...],
    n_ex: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    suppressed: str | None = None,
    steps: int = STEPS,
    seed: int = 0,
    null_draws: int = NULL_DRAWS,
) -> CopyNetwork:
    """Copy-network standing of every account (``accounts`` sorted ids, ``n_ex`` their exchanges).

    ``exclude`` (bool per account) marks single-purpose accounts: standing 0 (they still pass it on).
    ``suppressed`` names a registered relation ``(kind, item)`` of benign-marked families ('F').
    """
    no_f = f"WHERE f.family_id NOT IN (SELECT item FROM {suppressed} WHERE kind = 'F')" if suppressed else ""
    # Ordered so that every float sum below meets its terms in one order on every run.
    n = len(accounts)
    con.register("_cn_acc", pa.table({"account_id": list(accounts), "i": np.arange(n, dtype=np.int64)}))
    try:
        r = con.execute(
            f"""
            SELECT a.i, f.family_id, count(*) AS c
            FROM exchanges e JOIN families f USING (prompt_id) JOIN _cn_acc a USING (account_id) {no_f}
            GROUP BY a.i, f.family_id ORDER BY f.family_id, a.i
            """
        ).fetchnumpy()
    finally:
        con.unregister("_cn_acc")
    acc = np.asarray(r["i"], dtype=np.int64)
    fam = np.asarray(r["family_id"], dtype=np.int64)
    c = np.asarray(r["c"], dtype=np.float64)
    if len(acc) == 0:
        z = np.zeros(0, dtype=np.int64)
        return CopyNetwork(np.zeros(n), 0.0, np.zeros(n, np.int64), (z, z, z.astype(float), z, z.astype(float)))
    # Families arrive sorted: item index by run starts.
    item = np.cumsum(np.r_[False, fam[1:] != fam[:-1]])
    keep = np.ones(n, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    vol = np.asarray(n_ex, dtype=np.float64) + PRIOR_EXCHANGES
    standing, w, k = _standing(acc, item, c, vol, steps)
    standing = standing * keep
    rng = np.random.default_rng(seed)
    cut = max((float((_standing(acc, rng.permutation(item), c, vol, steps)[0] * keep).max())
               for _ in range(null_draws)), default=0.0)
    partners = np.bincount(acc, weights=np.where(k >= 2, k - 1, 0), minlength=n).astype(np.int64)
    log.info("copy network: %d relations, %d accounts with shared families, null's highest standing %.3g after %d "
             "steps", len(acc), int((partners > 0).sum()), cut, steps)
    return CopyNetwork(standing, cut, partners, (acc, fam, c, k, w))


def _standing(acc: np.ndarray, item: np.ndarray, c: np.ndarray, vol: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standing per account after ``steps``, each relation's family weight at the last step, and each
    relation's family size (senders), for the relation ``(acc, item, c)``; ``item`` dense 0..m-1."""
    n, m = len(vol), int(item.max()) + 1
    k = np.bincount(item, minlength=m)[item]
    shared = k >= 2
    standing = np.bincount(acc, weights=c * shared, minlength=n) / vol
    w = np.zeros(len(acc))
    for _ in range(steps):
        total = np.bincount(item, weights=standing[acc], minlength=m)
        w = np.where(shared, (total[item] - standing[acc]) / np.maximum(k - 1, 1), 0.0)
        standing = np.bincount(acc, weights=c * w, minlength=n) / vol
    return standing, w, k


def reference_cut(standing: np.ndarray, background: np.ndarray, null_cut: float, q: float = 0.99) -> float:
    """The standing an ordinary account stays below: the ``q`` quantile of the ``background`` accounts,
    capped by a log-normal fitted to the bulk of those sharing anything, never below ``null_cut``."""
    v = np.asarray(standing, dtype=np.float64)[np.asarray(background, dtype=bool)]
    if len(v) == 0:
        return null_cut
    cut = float(np.quantile(v, q))
    pos = v[v > 0]
    tail = (1.0 - q) * len(v) / max(len(pos), 1)  # the same tail share among sharing accounts
    if len(pos) >= 50 and tail < 0.5:
        lp = np.log(pos)
        q25, q50, q75 = np.quantile(lp, [0.25, 0.5, 0.75])
        sigma = (q75 - q25) / (2 * NormalDist().inv_cdf(0.75))
        cut = min(cut, math.exp(q50 + NormalDist().inv_cdf(1.0 - tail) * sigma))
    return max(cut, null_cut)


def tail_score(standing: np.ndarray, background: np.ndarray, cut: float) -> np.ndarray:
    """Score in [0, 1] per account: 0 up to ``cut``, then ``1 - tail(v) / tail(cut)``, where ``tail(x)`` is
    the share of ``background`` accounts standing above ``x``: 0.9 where only a tenth of the ordinary
    accounts past the cut-off are still above, 1 above every background account."""
    v = np.asarray(standing, dtype=np.float64)
    ref = np.sort(v[np.asarray(background, dtype=bool)])
    above = len(ref) - np.searchsorted(ref, v, side="right")
    at_cut = len(ref) - int(np.searchsorted(ref, cut, side="right"))
    if at_cut <= 0:
        return (v > cut).astype(np.float64)
    return np.where(v > cut, np.clip(1.0 - above / at_cut, 0.0, 1.0), 0.0)


def ring_ties(con: duckdb.DuckDBPyConnection, net: CopyNetwork, ring_of: np.ndarray, candidates: np.ndarray,
              *, majority: float = JOIN_MAJORITY, min_families: int = JOIN_MIN_FAMILIES) -> dict[int, tuple[int, float, int]]:
    """Accounts (``candidates``, bool per account, outside rings) whose copy network points at one ring.

    An account's tie to a ring is, over its shared families, its exchanges in each family times the share
    of the family's other senders that are members of that ring. It joins the ring with the largest tie
    when that tie is at least ``majority`` of its shared exchanges and comes from ``min_families`` or more
    families. Returns ``{account index: (ring, tie share, families)}``.
    """
    acc, fam, c, k, _ = net.rel
    keep = (k >= 2) & (np.asarray(ring_of)[acc] >= 0)
    cand = np.asarray(candidates, dtype=bool)[acc] & (k >= 2)
    if not keep.any() or not cand.any():
        return {}
    members = pa.table({"fam": fam[keep], "ring": np.asarray(ring_of)[acc[keep]]})  # noqa: F841 (read by DuckDB)
    rel = pa.table({"acc": acc[cand], "fam": fam[cand], "c": c[cand], "k": k[cand]})  # noqa: F841
    # Sums rounded: DuckDB adds in thread order, and a join must not flip on the last bit between runs.
    rows = con.execute(
        """
        WITH m AS (SELECT fam, ring, count(*) AS m FROM members GROUP BY fam, ring),
        tot AS (SELECT acc, sum(c) AS t FROM rel GROUP BY acc),
        ties AS (SELECT r.acc, m.ring, round(sum(r.c * m.m / (r.k - 1)), 9) AS tie, count(*) AS nf
                 FROM rel r JOIN m USING (fam) GROUP BY r.acc, m.ring)
        SELECT ties.acc, ties.ring, ties.tie / tot.t AS share, ties.nf FROM ties JOIN tot USING (acc)
        QUALIFY row_number() OVER (PARTITION BY ties.acc ORDER BY ties.tie DESC, ties.ring) = 1
        ORDER BY ties.acc
        """
    ).fetchall()
    return {int(a): (int(r), round(float(s), 9), int(nf)) for a, r, s, nf in rows
            if s >= majority and nf >= min_families}


def template_ties(con: duckdb.DuckDBPyConnection, accounts: tuple[str, ...], ring_of: np.ndarray,
                  candidates: np.ndarray, *, majority: float = JOIN_MAJORITY,
                  suppressed: str | None = None) -> dict[int, tuple[int, float, int]]:
    """Accounts (``candidates``, bool per account, outside rings) whose shared templates point at one ring.

    :func:`ring_ties` over templates instead of families: a thin sweep or low-and-slow account fills one
    template three times, and families do not see it (each filling is its own prompt). Its tie to a ring
    is, over its templates used by two or more accounts, its exchanges in each times the share of the
    template's other users that are the ring's members; it joins the ring with the largest tie when that
    is at least ``majority`` of its templated exchanges. One template is enough: the account is already
    past a content cut-off on its own, the question is only which ring. ``suppressed`` names a
    registered ``(kind, item)`` relation of benign-marked items. Returns ``{account index: (ring, tie
    share, templates)}``.
    """
    ring_of = np.asarray(ring_of)
    cand = np.asarray(candidates, dtype=bool)
    if not cand.any() or not (ring_of >= 0).any():
        return {}
    who = np.flatnonzero(cand | (ring_of >= 0))
    acc_t = pa.table({"account_id": [accounts[i] for i in who.tolist()],  # noqa: F841 (read by DuckDB)
                      "acc": who.astype(np.int64), "ring": ring_of[who].astype(np.int64), "cand": cand[who]})
    no_t = f"AND m.template_id NOT IN (SELECT item FROM {suppressed} WHERE kind = 'T')" if suppressed else ""
    rows = con.execute(
        f"""
        WITH rel AS (
            SELECT a.acc, any_value(a.ring) AS ring, any_value(a.cand) AS cand, m.template_id AS tpl, count(*) AS c
            FROM exchanges e JOIN acc_t a USING (account_id) JOIN template_members m USING (prompt_id)
            WHERE TRUE {no_t} GROUP BY a.acc, m.template_id),
        mem AS (SELECT tpl, ring, count(*) AS m FROM rel WHERE ring >= 0 GROUP BY tpl, ring),
        cr AS (SELECT r.acc, r.tpl, r.c, t.n_accounts AS k FROM rel r JOIN templates t ON t.template_id = r.tpl
               WHERE r.cand AND t.n_accounts >= 2),
        tot AS (SELECT acc, sum(c) AS t FROM cr GROUP BY acc),
        -- Sums rounded: DuckDB adds in thread order, and a join must not flip on the last bit between runs.
        ties AS (SELECT cr.acc, mem.ring, round(sum(cr.c * mem.m / (cr.k - 1)), 9) AS tie, count(*) AS nt
                 FROM cr JOIN mem USING (tpl) GROUP BY cr.acc, mem.ring)
        SELECT ties.acc, ties.ring, ties.tie / tot.t AS share, ties.nt FROM ties JOIN tot USING (acc)
        QUALIFY row_number() OVER (PARTITION BY ties.acc ORDER BY ties.tie DESC, ties.ring) = 1
        ORDER BY ties.acc
        """
    ).fetchall()
    return {int(a): (int(r), round(float(s), 9), int(nt)) for a, r, s, nt in rows if s >= majority}
