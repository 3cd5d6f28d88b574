"""Background cut-offs, exceedance scores, elicitation and timing signals."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from engine.detect import signals as sg
from engine.detect.elicitation import EXEMPLARS, score_elicitation, split_sentences
from engine.store.migrations import MIGRATIONS
from tests.fakes import FakeEncoder


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for m in MIGRATIONS:
        m(con)
    return con


def test_exceedance_scores():
    np.testing.assert_allclose(sg.exceed_share(np.array([0.1, 0.55, 1.0]), 0.1), [0.0, 0.5, 1.0])
    r = sg.exceed_ratio(np.array([0.5, 1.0, 2.0]), 1.0)
    np.testing.assert_allclose(r, [0.0, 0.0, 0.5])


def test_background_cut_ignores_masked():
    v = np.r_[np.zeros(99), 1.0, np.ones(50)]
    bg = np.r_[np.ones(100, bool), np.zeros(50, bool)]
    assert sg.background_cut(v, bg) < 1.0


def test_exemplars_are_many_and_varied():
    assert len(EXEMPLARS) >= 30 and len(set(EXEMPLARS)) == len(EXEMPLARS)
    assert split_sentences("Solve 2+2. Show every step of your reasoning.") == [
        "Solve 2+2.", "Show every step of your reasoning."]


def test_elicitation_flags_instruction_sentences():
    con = _con()
    texts = [f"what is the capital of country number {i} in the atlas" for i in range(300)]
    texts += [f"A train leaves at {i} pm and travels 60 km. Show every step of your reasoning before the answer."
              for i in range(20)]
    ids = np.arange(1, len(texts) + 1, dtype=np.int64)
    pt = pa.table({"prompt_id": ids, "text": texts})  # noqa: F841
    con.execute("INSERT INTO prompts (prompt_id, text, normalized) SELECT prompt_id, text, text FROM pt")
    enc = FakeEncoder()
    r = score_elicitation(con, ids, enc.encode(texts), enc)
    assert r.is_elicitation[300:].all()
    assert not r.is_elicitation[:300].any()


def test_ring_timing_detects_synchrony():
    con = _con()
    rows = []
    for a in range(4):
        for h in range(10):
            rows.append((f"s{a}", h * 24))  # all members active in the same hours
    rng = np.random.default_rng(0)
    for a in range(4):
        for h in rng.choice(240, 10, replace=False):
            rows.append((f"r{a}", int(h)))
    et = pa.table({"account_id": [r[0] for r in rows], "h": [r[1] for r in rows]})  # noqa: F841
    con.execute("INSERT INTO exchanges (account_id, ts) SELECT account_id, TIMESTAMP '2025-01-01' + to_hours(h) FROM et")
    sync = sg.ring_timing(con, [f"s{a}" for a in range(4)])
    rand = sg.ring_timing(con, [f"r{a}" for a in range(4)])
    assert sync["value"] == 1.0 and sync["value"] > sync["background"]
    assert rand["value"] <= rand["background"]


def test_account_shares_mean_elicitation_similarity_is_shrunk():
    con = _con()
    # "wrapper" sends 20 prompts at similarity 0.6 (none flagged); "one" a single such prompt; "plain" 20 at 0.2.
    rows = [("wrapper", i) for i in range(20)] + [("one", 20)] + [("plain", 21 + i) for i in range(20)]
    con.executemany("INSERT INTO exchanges (account_id, prompt_id) VALUES (?, ?)", rows)
    sims = [0.6] * 21 + [0.2] * 20
    el = pa.table({"prompt_id": list(range(41)), "elicit_sim": sims, "is_elicit": [False] * 41})  # noqa: F841
    con.register("el", el)
    out = sg.account_shares(con, "el")
    mean = dict(zip(out["account_id"].tolist(), out["elicit_mean"].tolist(), strict=True))
    overall = (0.6 * 21 + 0.2 * 20) / 41
    assert abs(mean["wrapper"] - (0.6 * 20 + 5 * overall) / 25) < 1e-9
    # One prompt moves an account only a little off the workspace mean; twenty move it most of the way.
    assert mean["plain"] < overall < mean["one"] < mean["wrapper"]
    assert mean["one"] - overall < (mean["wrapper"] - overall) / 3
    assert all(s == 0 for s in out["elicit_share"])
