"""How many accounts write something close to a family: the popularity of its *shape*, not its text.

A near-copy family counts the accounts that sent near-copies of one prompt (cosine >= the scan
threshold). Popular *kinds* of prompt are not in one family: "help me write a toast for my wife's
wedding" and "... my brother's wedding" land in different families, each shared by two or three
people, although dozens of unrelated accounts ask that kind of thing. Two heavy users who both ask
many such things then share many "rare" families and look like a copy ring.

The crowd of a family is the number of distinct accounts that sent any prompt within the who-else
threshold (:data:`engine.config.DEFAULT_THRESHOLD`, the looser radius at which an analyst would
still call two prompts the same request) of the family's centre, among its ``k`` nearest
prompts. It is what ``copyhound who-else`` on the centre would return, capped by ``k``. The link
weight of a family then uses ``crowd`` instead of its own account count (resource allocation over
everyone who asks this kind of thing). A campaign's copied prompts sit among the campaign's own
accounts, so their crowd stays close to their family size, even for a niche topic no one else asks
about; content many strangers write alike is discounted, whatever the exact wording.
"""

from __future__ import annotations

import logging
import time

import duckdb
import numpy as np
import pyarrow as pa

import index as faiss_index

log = logging.getLogger(__name__)

__all__ = ["CROWD_NEIGHBORS", "family_crowds"]

# Nearest prompts looked at per family centre: a crowd past ~this many accounts is "very popular",
# and its per-pair weight (1 / (crowd - 1)) is already negligible.
CROWD_NEIGHBORS = 64
# Vectors the IVF lists are trained on above the exact-search size: enough for 4,096 lists at FAISS's
# 39 points per list, the same sample the workspace index uses.
CROWD_TRAIN_SAMPLE = 262_144


def family_crowds(
    con: duckdb.DuckDBPyConnection,
    ids: np.ndarray,
    vecs: np.ndarray,
    radius: float,
    *,
    k: int = CROWD_NEIGHBORS,
    max_item_accounts: int = 500,
    index=None,
    members: bool = False,
) -> pa.Table:
    """``(family_id, crowd)`` for families sent by 2..``max_item_accounts`` accounts.

    With ``members``, ``(family_id, account_id)`` instead: who the crowd is, one row per account
    (the family's own accounts among them), so the caller can weigh each by what else it sends.

    Reads ``families`` and ``exchanges``. ``ids`` int64 (n,) sorted prompt ids and ``vecs`` float32
    or float16 (n, dim) L2-normalised, parallel (rows are converted as they are searched). ``index``: the workspace's FAISS index over exactly these
    vectors, searched as it is; without it (or when its size differs) a temporary one is built.
    ``crowd`` >= the family's own account count.
    """
    t0 = time.monotonic()
    fam = con.execute(
        f"""
        SELECT f.family_id, any_value(f.center_id) AS center_id, count(DISTINCT e.account_id) AS k
        FROM families f JOIN exchanges e USING (prompt_id)
        GROUP BY f.family_id HAVING k BETWEEN 2 AND {int(max_item_accounts)} ORDER BY f.family_id
        """
    ).fetchnumpy()
    fid = np.asarray(fam["family_id"], dtype=np.int64)
    empty = (pa.table({"family_id": pa.array([], pa.int64()), "account_id": pa.array([], pa.string())}) if members
             else pa.table({"family_id": pa.array([], pa.int64()), "crowd": pa.array([], pa.int64())}))
    if len(fid) == 0 or len(ids) == 0:
        return empty
    centre = np.asarray(fam["center_id"], dtype=np.int64)
    pos = np.clip(np.searchsorted(ids, centre), 0, len(ids) - 1)
    ok = ids[pos] == centre
    fid, pos = fid[ok], pos[ok]
    idx = index if index is not None and index.ntotal == len(ids) else _build_index(ids, vecs)
    kk = min(k, len(ids))
    sims, nbr = faiss_index.knn(idx, np.asarray(vecs[pos], dtype=np.float32), kk)
    keep = (sims >= radius) & (nbr >= 0)
    rows = np.repeat(fid, kk)[keep.ravel()]
    pids = nbr.ravel()[keep.ravel()]
    pairs = pa.table({"family_id": rows, "prompt_id": pids})  # noqa: F841 (read by DuckDB)
    if members:
        con.register("_cw_pairs", pairs)
        try:
            out = con.sql(
                "SELECT DISTINCT p.family_id, e.account_id FROM _cw_pairs p JOIN exchanges e USING (prompt_id) "
                "ORDER BY p.family_id, e.account_id"
            ).to_arrow_table()
        finally:
            con.unregister("_cw_pairs")
        log.info("crowding: %d shared families, %d crowd members, in %.1f s", len(fid), out.num_rows,
                 time.monotonic() - t0)
        return out
    out = con.execute(
        """
        SELECT p.family_id, count(DISTINCT e.account_id) AS crowd
        FROM pairs p JOIN exchanges e USING (prompt_id) GROUP BY p.family_id ORDER BY p.family_id
        """
    ).fetchnumpy()
    crowd = np.asarray(out["crowd"], dtype=np.int64)
    log.info("crowding: %d shared families, median crowd %.0f, in %.1f s", len(fid),
             float(np.median(crowd)) if len(crowd) else 0.0, time.monotonic() - t0)
    return pa.table({"family_id": np.asarray(out["family_id"], dtype=np.int64), "crowd": crowd})


def _build_index(ids: np.ndarray, vecs: np.ndarray):
    """A temporary index over ``vecs`` (the size-based choice of :func:`index.choose_factory`)."""
    idx = faiss_index.make_index(vecs.shape[1], faiss_index.choose_factory(len(ids), vecs.shape[1]))
    # A no-op for exact indexes; IVF lists are trained on a fixed sample (deterministic results).
    sample = np.random.default_rng(0).choice(len(vecs), size=min(len(vecs), CROWD_TRAIN_SAMPLE), replace=False)
    faiss_index.train(idx, vecs[np.sort(sample)])
    faiss_index.add(idx, vecs, ids)
    return idx
