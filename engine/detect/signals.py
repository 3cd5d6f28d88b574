"""Per-account and per-ring measurements, each with a cut-off taken from the workspace's background.

Every measurement is turned into a :class:`engine.models.Signal`: ``value`` (the raw figure),
``background`` (the cut-off on this workspace's own distribution) and ``score`` in [0, 1], zero at
or below the cut-off. Cut-offs are the 99th percentile over accounts *outside* the significant rings
(ring detection runs first and does not use these measurements), assuming most of the remaining
traffic is organic: an organic account is past any one cut-off with probability <= 1 %.

Shares (templated, elicitation) are shrunk towards zero by ``PRIOR_EXCHANGES`` pseudo-exchanges:
``x / (n + 5)``. An account with one exchange that happens to be templated must not reach the
share of an account that sent 200 templated prompts out of 200.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = [
    "PRIOR_EXCHANGES",
    "SHARED_TEMPLATES_SQL",
    "account_shares",
    "single_purpose",
    "background_cut",
    "coverage",
    "exceed_share",
    "exceed_ratio",
    "ring_timing",
]

PRIOR_EXCHANGES = 5.0
# Accounts with fewer distinct prompts have no measurable topic spread.
MIN_COVERAGE_PROMPTS = 8
# A template shared by several accounts, as SQL rows (template_id, k = accounts that sent a member), k > 1.
# Counted from the exchanges rather than read from templates.n_accounts, which a caller may not have filled.
SHARED_TEMPLATES_SQL = """SELECT m.template_id, count(DISTINCT e.account_id) AS k
            FROM exchanges e JOIN template_members m USING (prompt_id) GROUP BY m.template_id
            HAVING count(DISTINCT e.account_id) > 1"""


def background_cut(values: np.ndarray, background_mask: np.ndarray, q: float = 0.99) -> float:
    """The ``q`` quantile of ``values`` over the background accounts (all accounts if none)."""
    v = values[background_mask] if background_mask.any() else values
    return float(np.quantile(v, q)) if len(v) else 0.0


def exceed_share(value: np.ndarray, cut: float) -> np.ndarray:
    """Score of a share in [0, 1]: 0 at or below ``cut``, linear to 1 at a share of 1."""
    span = max(1.0 - cut, 1e-9)
    return np.clip((np.asarray(value, dtype=np.float64) - cut) / span, 0.0, 1.0)


def exceed_ratio(value: np.ndarray, cut: float) -> np.ndarray:
    """Score of an unbounded positive figure: ``1 - cut / value`` past the cut (0.5 at twice it)."""
    v = np.asarray(value, dtype=np.float64)
    if cut <= 0:
        return np.where(v > 0, 1.0, 0.0)
    with np.errstate(divide="ignore"):
        return np.clip(1.0 - cut / np.where(v > 0, v, np.inf), 0.0, 1.0) * (v > cut)


# An account is single-purpose when fixed wording runs through at least this share of its distinct
# prompts...
SINGLE_PURPOSE_SHARE = 0.9
# ...and it sent at least this many: a person does not fill one template a hundred times, an
# integration (a customer's product calling the API with its own prompt) does all day.
SINGLE_PURPOSE_MIN_PROMPTS = 100
# Word 3-grams that must each run through that share: a fixed phrase of six words or more, or several
# shorter fixed pieces between the slots ("given the table {t}, write one sql query ... return only sql").
SINGLE_PURPOSE_SHINGLES = 4
# Distinct prompts read per account (a fixed sample by hash): the share is as clear in 200 as in 20,000.
SINGLE_PURPOSE_SAMPLE = 200


def single_purpose(con: duckdb.DuckDBPyConnection, accounts: tuple[str, ...]) -> np.ndarray:
    """Bool per account (in ``accounts`` order, sorted ids): one prompt is nearly all it sends, at volume.

    "One prompt": ``SINGLE_PURPOSE_SHINGLES`` or more word 3-grams of normalised text each in at least
    ``SINGLE_PURPOSE_SHARE`` of its distinct prompts, the fixed instruction of a product's template,
    wherever its slots are. Read off the text, not the mined templates, which split one integration's
    prompt by its slots; and not off a fixed opening, which a template that starts with a slot ("write a
    short, {tone} reply to this email ...") or names a table first does not have (at 10M exchanges on the
    season profile, 154 of 400 integrations were flagged that way). Such accounts are customers'
    integrations far more often than campaigns: a product calls the API with its own prompt, and popular
    prompts (an SDK's example, a vendor's plug-in) run at many companies at once, so two integrations
    share a template and dozens of near-copy families without knowing of each other. Content shared
    only among them is therefore no evidence (see `engine.detect.scoring`); a campaign's heavy sweep
    accounts still link to its other accounts.
    """
    r = con.execute(
        f"""
        WITH ap AS (
            SELECT DISTINCT account_id, prompt_id FROM exchanges
        ), vol AS (
            SELECT account_id FROM ap GROUP BY account_id HAVING count(*) >= {SINGLE_PURPOSE_MIN_PROMPTS}
        ), smp AS (
            SELECT ap.account_id, ap.prompt_id FROM ap JOIN vol USING (account_id)
            QUALIFY row_number() OVER (PARTITION BY ap.account_id ORDER BY hash(ap.prompt_id), ap.prompt_id)
                    <= {SINGLE_PURPOSE_SAMPLE}
        ), n AS (
            SELECT account_id, count(*) AS n FROM smp GROUP BY account_id
        ), w AS (
            SELECT s.account_id, s.prompt_id, regexp_split_to_array(trim(p.normalized), '\\s+') AS t
            FROM smp s JOIN prompts p USING (prompt_id)
        ), g AS (
            SELECT DISTINCT account_id, prompt_id, t[i] || ' ' || t[i + 1] || ' ' || t[i + 2] AS gram
            FROM (SELECT account_id, prompt_id, t, unnest(range(1, greatest(len(t) - 1, 1))) AS i FROM w)
        ), c AS (
            SELECT account_id, gram, count(*) AS c FROM g GROUP BY account_id, gram
        )
        SELECT c.account_id FROM c JOIN n USING (account_id) WHERE c.c >= {SINGLE_PURPOSE_SHARE} * n.n
        GROUP BY c.account_id HAVING count(*) >= {SINGLE_PURPOSE_SHINGLES}
        """
    ).fetchall()
    names = {x[0] for x in r}
    return np.array([a in names for a in accounts], dtype=bool)


def account_shares(
    con: duckdb.DuckDBPyConnection, elicit: str, templates: str | None = None, suppressed: str | None = None
) -> dict[str, np.ndarray]:
    """Per-account exchange counts, shared-template and elicitation counts, in account-id order.

    ``elicit`` names a registered relation ``(prompt_id, elicit_sim, is_elicit)``. A template counts as
    shared when more than one account sent members of it (computed here: the caller may not have
    filled ``templates.n_accounts``); a prompt counts as copied when its near-copy family (from the
    ``families`` table) was sent by more than one account. Returns int64/float64 arrays keyed ``n_ex``,
    ``n_prompts``, ``n_templated``, ``n_copied``, ``n_elicit``, the shrunk shares ``templated_share``,
    ``copied_share``, ``elicit_share`` and
    ``elicit_mean`` (mean exemplar similarity, shrunk towards the workspace mean). ``templates`` names a
    registered relation ``(template_id)``: only those templates count as shared (e.g. the specific ones).
    ``suppressed`` names a registered relation ``(kind, item)`` of families ('F') and templates ('T')
    analysts marked benign (:mod:`engine.detect.watchlist`): their prompts count as neither.
    """
    no_t = f"WHERE m.template_id NOT IN (SELECT item FROM {suppressed} WHERE kind = 'T')" if suppressed else ""
    no_f = f"AND f.family_id NOT IN (SELECT item FROM {suppressed} WHERE kind = 'F')" if suppressed else ""
    r = con.execute(
        f"""
        WITH tacc AS ({SHARED_TEMPLATES_SQL}
        ), shared AS (
            SELECT DISTINCT m.prompt_id FROM template_members m JOIN tacc USING (template_id)
            {f"JOIN {templates} USING (template_id)" if templates else ""}
            {no_t}
        ), facc AS (
            SELECT f.family_id, count(DISTINCT e.account_id) AS k
            FROM exchanges e JOIN families f USING (prompt_id) GROUP BY f.family_id
        ), copied AS (
            SELECT f.prompt_id FROM families f JOIN facc USING (family_id) WHERE facc.k > 1 {no_f}
        )
        SELECT e.account_id,
               count(*) AS n_ex,
               count(DISTINCT e.prompt_id) AS n_prompts,
               count(*) FILTER (WHERE s.prompt_id IS NOT NULL) AS n_templated,
               count(*) FILTER (WHERE c.prompt_id IS NOT NULL) AS n_copied,
               count(*) FILTER (WHERE el.is_elicit) AS n_elicit,
               sum(coalesce(el.elicit_sim, 0))::DOUBLE AS elicit_sim_sum
        FROM exchanges e
        LEFT JOIN shared s USING (prompt_id)
        LEFT JOIN copied c USING (prompt_id)
        LEFT JOIN {elicit} el USING (prompt_id)
        GROUP BY e.account_id ORDER BY e.account_id
        """
    ).fetchnumpy()
    out = {k: np.asarray(r[k]) for k in ("account_id", "n_ex", "n_prompts", "n_templated", "n_copied", "n_elicit")}
    n = out["n_ex"].astype(np.float64)
    out["templated_share"] = out["n_templated"] / (n + PRIOR_EXCHANGES)
    out["copied_share"] = out["n_copied"] / (n + PRIOR_EXCHANGES)
    out["elicit_share"] = out["n_elicit"] / (n + PRIOR_EXCHANGES)
    # Mean similarity to the elicitation exemplars over the account's exchanges, shrunk towards the
    # workspace's mean: an account that wraps everything in its own paraphrase of "show your reasoning"
    # sits above other accounts even where no single prompt clears the per-prompt threshold.
    sim_sum = np.asarray(r["elicit_sim_sum"], dtype=np.float64)
    overall = float(sim_sum.sum() / max(n.sum(), 1.0))
    out["elicit_mean"] = (sim_sum + PRIOR_EXCHANGES * overall) / (n + PRIOR_EXCHANGES)
    return out


def coverage(
    con: duckdb.DuckDBPyConnection,
    ids: np.ndarray,
    vecs: np.ndarray,
    *,
    n_clusters: int = 64,
    sample: int = 50_000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Topic spread of each account over k-means clusters of the embedding space.

    k-means (faiss, ``n_clusters`` centroids, at most ``sample`` training vectors, seeded) splits
    the prompt space into topic regions; each account's distinct prompts get a histogram over
    them. ``evenness`` is the histogram's entropy divided by its maximum for that volume
    (``ln min(n_prompts, k)``): 1 means the prompts are spread as evenly as possible, the mark of
    a sweep over a topic list. Returns arrays in account-id order: ``evenness`` float64,
    ``n_clusters_hit`` int64, ``n_prompts`` int64 and the ``k`` used.
    """
    import faiss  # faiss is heavy; only coverage needs it

    n, d = vecs.shape
    k = int(max(2, min(n_clusters, n // 39))) if n >= 78 else 1
    if k > 1:
        rng = np.random.default_rng(seed)
        tr = vecs if n <= sample else vecs[np.sort(rng.choice(n, sample, replace=False))]
        km = faiss.Kmeans(d, k, niter=20, seed=seed + 1, spherical=True, verbose=False)
        # One thread: k-means over several threads sums its centroids in whatever order they finish, so a
        # prompt on a cluster boundary changed cluster between two runs of one scan (the crash trials saw
        # an account's coverage signal come and go). Training on the sample is a small part of the stage.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            km.train(np.ascontiguousarray(tr, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
        index = faiss.IndexFlatIP(d)
        index.add(km.centroids)
        cl = np.empty(n, dtype=np.int64)
        for i in range(0, n, 65_536):
            cl[i : i + 65_536] = index.search(np.ascontiguousarray(vecs[i : i + 65_536], dtype=np.float32), 1)[1][:, 0]
    else:
        cl = np.zeros(n, dtype=np.int64)
    pc = pa.table({"prompt_id": ids, "cluster": cl})  # noqa: F841 (read by DuckDB)
    r = con.execute(
        """
        WITH ap AS (SELECT DISTINCT account_id, prompt_id FROM exchanges),
        ac AS (
            SELECT ap.account_id, pc.cluster, count(*) AS c
            FROM ap JOIN pc USING (prompt_id) GROUP BY ap.account_id, pc.cluster
        ), tot AS (SELECT account_id, sum(c) AS n FROM ac GROUP BY account_id)
        SELECT a.account_id, coalesce(t.n, 0) AS n, coalesce(count(ac.cluster), 0) AS hit,
               coalesce(-sum((ac.c / t.n) * ln(ac.c / t.n)), 0) AS h
        FROM (SELECT DISTINCT account_id FROM exchanges) a
        LEFT JOIN ac USING (account_id) LEFT JOIN tot t USING (account_id)
        GROUP BY a.account_id, t.n ORDER BY a.account_id
        """
    ).fetchnumpy()
    npr = np.asarray(r["n"], dtype=np.int64)
    h = np.asarray(r["h"], dtype=np.float64)
    hmax = np.log(np.maximum(2, np.minimum(npr, k)))
    even = np.where(npr >= MIN_COVERAGE_PROMPTS, h / hmax, 0.0) if k > 1 else np.zeros(len(npr))
    # DuckDB sums the entropy terms in whatever order its threads finish, so an account's evenness
    # moved in the last bit between two scans of one workspace, and an account exactly at the
    # volume-matched cut (15 of 16 clusters is common) gained or lost its coverage signal.
    even = np.round(even, 9)
    return {"evenness": np.clip(even, 0.0, 1.0), "n_clusters_hit": np.asarray(r["hit"], dtype=np.int64),
            "n_prompts": npr, "k": np.array(k)}


def coverage_cut(evenness: np.ndarray, n_prompts: np.ndarray, background: np.ndarray,
                 q: float = 0.99, min_bin: int = 30) -> np.ndarray:
    """Volume-matched cut-off per account: ``q`` quantile of evenness among background accounts in
    the same ``floor(log2(n_prompts))`` bin; bins with fewer than ``min_bin`` background accounts
    use all background accounts with at least ``MIN_COVERAGE_PROMPTS`` prompts."""
    vol = np.floor(np.log2(np.maximum(n_prompts, 1))).astype(np.int64)
    eligible = background & (n_prompts >= MIN_COVERAGE_PROMPTS)
    pooled = float(np.quantile(evenness[eligible], q)) if eligible.any() else 1.0
    cut = np.full(len(evenness), pooled)
    for b in np.unique(vol):
        sel = eligible & (vol == b)
        if sel.sum() >= min_bin:
            cut[vol == b] = float(np.quantile(evenness[sel], q))
    return cut


def ring_timing(
    con: duckdb.DuckDBPyConnection, members: list[str], *, n_shuffle: int = 50, seed: int = 0
) -> dict:
    """Synchronised activity of one ring's accounts, against circularly shifted timelines.

    ``value``: share of the ring's exchanges that fall in clock hours where at least three members
    are active. Null: each member's hourly activity series is shifted by an independent random
    offset (circularly over the ring's active span), which keeps each account's volume and own
    burstiness and only breaks the alignment between accounts; ``background`` is the shifted
    series' 99th percentile. Returns a dict with ``value``, ``background``, ``expected``,
    ``busiest_hours`` (up to 3 examples).
    """
    mt = pa.table({"account_id": members})  # noqa: F841 (read by DuckDB)
    r = con.execute(
        """
        SELECT account_id, date_trunc('hour', ts) AS h, count(*) AS c
        FROM exchanges JOIN mt USING (account_id) WHERE ts IS NOT NULL
        GROUP BY account_id, h
        """
    ).fetchnumpy()
    if len(r["c"]) == 0:
        return {"value": 0.0, "background": 0.0, "expected": 0.0, "busiest_hours": []}
    acc_idx = {a: i for i, a in enumerate(members)}
    ai = np.array([acc_idx[a] for a in r["account_id"]], dtype=np.int64)
    hrs = np.asarray(r["h"]).astype("datetime64[h]").astype(np.int64)
    h0 = int(hrs.min())
    span = int(hrs.max()) - h0 + 1
    span = min(span, 24 * 366 * 2)  # cap the matrix; older activity wraps, which only blurs timing
    hi = (hrs - h0) % span
    m = np.zeros((len(members), span), dtype=np.float64)
    np.add.at(m, (ai, hi), np.asarray(r["c"], dtype=np.float64))
    total = m.sum()

    def sync(mat: np.ndarray) -> float:
        active = (mat > 0).sum(axis=0)
        return float(mat[:, active >= 3].sum() / total) if total else 0.0

    value = sync(m)
    rng = np.random.default_rng(seed)
    null = np.empty(n_shuffle)
    rows = np.arange(len(members))[:, None]
    cols = np.arange(span)[None, :]
    for s in range(n_shuffle):
        off = rng.integers(0, span, size=len(members))[:, None]
        null[s] = sync(m[rows, (cols + off) % span])
    active = (m > 0).sum(axis=0)
    top = np.argsort(-active, kind="stable")[:3]
    busiest = [
        {"hour": str(np.datetime64(h0 + int(t), "h")), "active_accounts": int(active[t]), "exchanges": int(m[:, t].sum())}
        for t in top if active[t] > 0
    ]
    return {"value": value, "background": float(np.quantile(null, 0.99)), "expected": float(null.mean()),
            "busiest_hours": busiest}

