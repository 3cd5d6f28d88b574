"""Family crowding: how many accounts write something close to a family's centre."""

from __future__ import annotations

import duckdb
import numpy as np

from engine.detect.crowding import family_crowds
from engine.store.migrations import MIGRATIONS


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_crowd_counts_accounts_near_the_centre_not_only_the_family():
    rng = np.random.default_rng(0)
    dim = 32
    con = duckdb.connect()
    for m in MIGRATIONS:
        m(con)
    popular, niche = _unit(rng.normal(size=dim)), _unit(rng.normal(size=dim))
    vecs, exchanges, families = [], [], []
    # A popular kind of request: 30 accounts each write their own variant (cosine ~0.8 to the
    # centre, below the family threshold); two of them sent near-copies of one prompt (family 1).
    for i in range(30):
        vecs.append(_unit(popular + 0.55 * _unit(rng.normal(size=dim))))
        exchanges.append((f"org{i}", len(vecs)))
    families += [(1, 1), (1, 2)]
    # A niche prompt copied by three campaign accounts and written by nobody else (family 100).
    for j in range(3):
        vecs.append(_unit(niche + 0.05 * _unit(rng.normal(size=dim))))
        exchanges.append((f"camp{j}", len(vecs)))
        families.append((100, len(vecs)))
    ids = np.arange(1, len(vecs) + 1, dtype=np.int64)
    con.executemany("INSERT INTO exchanges (account_id, prompt_id) VALUES (?, ?)", exchanges)
    fam_ids = {pid for _, pid in families}
    families += [(int(p), int(p)) for p in ids if int(p) not in fam_ids]  # singletons
    con.executemany("INSERT INTO families SELECT ?, ?, ?, 1.0", [(f, p, 1 if f == 1 else (31 if f == 100 else p))
                                                               for f, p in families])
    sims = np.stack(vecs)[0] @ np.stack(vecs)[:30].T
    assert 0.6 < np.median(sims[1:]) < 0.84  # the variants are not near-copies of each other

    out = family_crowds(con, ids, np.stack(vecs), radius=float(np.quantile(sims[1:], 0.2)))
    crowd = dict(zip(out["family_id"].to_pylist(), out["crowd"].to_pylist(), strict=True))
    assert set(crowd) == {1, 100}  # only families with two or more accounts
    assert crowd[1] >= 20  # most of the 30 accounts write something like it
    assert crowd[100] == 3  # only the ring itself

    # The workspace's own index over the same vectors gives the same crowds; a stale one is not used.
    import index as faiss_index

    idx = faiss_index.make_index(dim, "Flat")
    faiss_index.add(idx, np.stack(vecs), ids)
    radius = float(np.quantile(sims[1:], 0.2))
    assert family_crowds(con, ids, np.stack(vecs), radius, index=idx).equals(out)
    stale = faiss_index.make_index(dim, "Flat")
    faiss_index.add(stale, np.stack(vecs)[:5], ids[:5])
    assert family_crowds(con, ids, np.stack(vecs), radius, index=stale).equals(out)
