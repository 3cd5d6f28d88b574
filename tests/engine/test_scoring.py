"""Detection end to end on a small synthetic workspace (real DuckDB schema, fake encoder)."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from engine.models import Signal
from tests.fakes import FakeEncoder
from tests.fixtures.detection import build_workspace


@pytest.fixture(scope="module")
def scored():
    from engine.detect.scoring import score_accounts

    con, ids, vecs = build_workspace()
    summary = score_accounts(con, ids, vecs, FakeEncoder())
    return con, summary


def _scores(con) -> dict[str, tuple[float, int | None, list]]:
    return {a: (s, r, json.loads(sig)) for a, s, r, sig in
            con.execute("SELECT account_id, score, ring_id, signals FROM account_scores").fetchall()}


def test_summary_and_tables(scored):
    con, summary = scored
    n_acc = con.execute("SELECT count(DISTINCT account_id) FROM exchanges").fetchone()[0]
    assert con.execute("SELECT count(*) FROM account_scores").fetchone()[0] == n_acc
    assert summary["n_rings"] == con.execute("SELECT count(*) FROM rings").fetchone()[0]
    assert set(summary["stage_seconds"]) >= {"links", "rings", "signals", "scores"}
    assert con.execute("SELECT count(*) FROM account_links WHERE account_a >= account_b").fetchone()[0] == 0


def test_copy_ring_found_with_evidence(scored):
    con, _ = scored
    sc = _scores(con)
    ring_ids = {sc[f"ring{i}"][1] for i in range(5)}
    assert len(ring_ids) == 1 and None not in ring_ids
    (rid,) = ring_ids
    members = [a for a, v in sc.items() if v[1] == rid]
    assert sorted(members) == [f"ring{i}" for i in range(5)]
    for i in range(5):
        score, _, sigs = sc[f"ring{i}"]
        assert score >= 0.5
        fam = [s for s in sigs if s["name"] == "shared_families"]
        assert fam and fam[0]["examples"]
        ex = fam[0]["examples"][0]
        assert ex["text_a"] and ex["text_b"] and "family" in ex["text_a"]


def test_viral_family_links_nobody(scored):
    con, _ = scored
    n = con.execute(
        "SELECT count(*) FROM account_links WHERE account_a LIKE 'vir%' AND account_b LIKE 'vir%'"
    ).fetchone()[0]
    assert n == 0
    sc = _scores(con)
    assert all(v[1] is None and v[0] < 0.5 for a, v in sc.items() if a.startswith("vir"))


def test_single_app_account_is_not_a_ring(scored):
    con, _ = scored
    sc = _scores(con)
    assert sc["app0"][1] is None
    assert con.execute("SELECT count(*) FROM account_links WHERE 'app0' IN (account_a, account_b)").fetchone()[0] == 0


def test_template_split_linked_via_template(scored):
    con, _ = scored
    rows = con.execute(
        "SELECT account_a, account_b, evidence FROM account_links "
        "WHERE account_a LIKE 'split%' AND account_b LIKE 'split%'"
    ).fetchall()
    assert len(rows) == 6
    for _, _, ev in rows:
        ev = json.loads(ev)
        assert ev["templates"] and "encyclopedia" in ev["templates"][0]["pattern"]
    sc = _scores(con)
    ring_ids = {sc[f"split{i}"][1] for i in range(4)}
    assert len(ring_ids) == 1 and None not in ring_ids
    assert all(sc[f"split{i}"][0] >= 0.5 for i in range(4))


def test_organic_accounts_quiet(scored):
    con, _ = scored
    sc = _scores(con)
    org = [v for a, v in sc.items() if a.startswith("org")]
    flagged = sum(1 for v in org if v[0] >= 0.5)
    assert flagged / len(org) <= 0.01
    assert all(v[1] is None for v in org)


def test_signals_match_model_and_scores_in_range(scored):
    con, _ = scored
    names = {f.name for f in fields(Signal)}
    for score, _, sigs in _scores(con).values():
        assert 0.0 <= score <= 1.0
        if score > 0:
            assert sigs
        for s in sigs:
            assert set(s) == names
            assert 0.0 <= s["score"] <= 1.0
            Signal(**{**s, "examples": tuple(s["examples"])})
    for sc, sigs in con.execute("SELECT score, signals FROM rings").fetchall():
        assert 0.0 <= sc <= 1.0
        for s in json.loads(sigs):
            assert set(s) == names


def test_deterministic():
    from engine.detect.scoring import score_accounts

    outs = []
    for _ in range(2):
        con, ids, vecs = build_workspace()
        score_accounts(con, ids, vecs, FakeEncoder())
        outs.append((
            con.execute("SELECT * FROM account_scores ORDER BY account_id").fetchall(),
            con.execute("SELECT * FROM rings ORDER BY ring_id").fetchall(),
            con.execute("SELECT * FROM account_links ORDER BY account_a, account_b").fetchall(),
        ))
    assert outs[0] == outs[1]


def test_rerun_replaces_tables(scored):
    from engine.detect.scoring import score_accounts

    con, _ = scored
    n_before = con.execute("SELECT count(*) FROM account_scores").fetchone()[0]
    pid = np.asarray(con.execute("SELECT prompt_id FROM prompts ORDER BY prompt_id").fetchnumpy()["prompt_id"])
    texts = [r[0] for r in con.execute("SELECT text FROM prompts ORDER BY prompt_id").fetchall()]
    score_accounts(con, pid.astype(np.int64), FakeEncoder().encode(texts), FakeEncoder())
    assert con.execute("SELECT count(*) FROM account_scores").fetchone()[0] == n_before
