"""The analyst read side (engine.query.analyst) on the fixed workspace of tests/tui: views, marks, export."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

import engine as engine_package
from engine import QueryError
from engine import models as result_models
from tests.fixtures.workspace import ORGANIC, QUESTIONS, RING, build_fixed_workspace, fixed_engine


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    return build_fixed_workspace(tmp_path_factory.mktemp("analyst") / "ws")


@pytest.fixture
def engine(master, tmp_path):
    shutil.copytree(master, tmp_path / "ws")
    return fixed_engine(tmp_path / "ws")


def _pid(engine, text: str) -> int:
    return engine.nearest_prompts(text, k=1)[0].prompt_id


def test_the_package_exports_every_result_type():
    """Callers import results from `engine`, so a result type left out of `__all__` is a missing API."""
    results = {name for name, obj in vars(result_models).items()
               if isinstance(obj, type) and issubclass(obj, result_models.Record) and obj is not result_models.Record}
    assert len(results) >= 26 and results <= set(engine_package.__all__)
    assert {"Engine", "EngineConfig", "CopyhoundError", "QueryError", "WorkspaceBusyError"} <= set(engine_package.__all__)


def test_overview_counts_and_activity(engine):
    ov = engine.analyst.overview(limit=5, buckets=30)
    assert ov.status.exchanges == 81 and ov.n_flagged == 4
    assert [r.ring_id for r in ov.top_rings] == [7]
    assert ov.top_accounts[0].account_id == RING[0]
    assert ov.activity.labels == ("all traffic", "flagged accounts")
    assert sum(ov.activity.series("all traffic")) == 81
    assert sum(ov.activity.series("flagged accounts")) == 56
    assert all(f <= a for a, f in zip(*ov.activity.counts, strict=True))


def test_account_page_is_limit_offset(engine):
    whole = engine.analyst.account_page(limit=100)
    pages = [engine.analyst.account_page(offset=o, limit=5) for o in (0, 5, 10)]
    assert [a.account_id for p in pages for a in p.rows] == [a.account_id for a in whole.rows]
    assert whole.total == 12


def test_prompt_view_lists_every_account_that_sent_a_near_copy(engine):
    pid = _pid(engine, QUESTIONS[1])
    v = engine.analyst.prompt_view(pid)
    assert {a.account_id for a in v.accounts} == set(RING) | {ORGANIC[0]}
    assert v.n_near_copies == 3 and v.family_id is not None
    exact = {a.account_id for a in v.accounts if a.exact}
    assert exact == {RING[0], ORGANIC[0]}
    assert [a.max_similarity for a in v.accounts] == sorted((a.max_similarity for a in v.accounts), reverse=True)
    page = engine.analyst.prompt_view(pid, limit=2, offset=2)
    assert page.total_accounts == 5 and [a.account_id for a in page.accounts] == [a.account_id for a in v.accounts[2:4]]
    with pytest.raises(QueryError):
        engine.analyst.prompt_view(10**9)


def test_account_view_groups_signals_links(engine):
    v = engine.analyst.account_view(RING[1])
    assert v.score is not None and v.score.ring_id == 7 and len(v.signals) == 3
    assert v.groups[0].template_id == 1 and v.groups[0].n_prompts == 8
    assert sum(g.n_exchanges for g in v.groups) == v.n_exchanges == 14
    assert {ln.account_id for ln in v.links} == (set(RING) - {RING[1]}) | {ORGANIC[0]}
    assert all(len(ln.shared_families) == 6 for ln in v.links if ln.account_id in RING)
    assert sum(v.timeline.counts[0]) == 14
    with pytest.raises(QueryError):
        engine.analyst.account_view("nobody")


def test_ring_view_split_and_timeline(engine):
    v = engine.analyst.ring_view(7)
    assert [m.account_id for m in v.members] == list(RING)
    assert len(v.shared_families) == 6 and all(f.n_members == 4 for f in v.shared_families)
    (split,) = v.template_splits
    assert split.per_member == (8, 8, 8, 8) and split.distinct_prompts == 32 and split.overlap == 0.0
    assert v.timeline.labels == RING and all(sum(c) == 14 for c in v.timeline.counts)


def test_marks_latest_wins_and_show_in_views(engine):
    engine.analyst.mark("account", RING[0], "suspicious", "first look")
    engine.analyst.mark("account", RING[0], "confirmed", "same questions")
    engine.analyst.mark("ring", 7, "confirmed")
    marks = engine.analyst.marks()
    assert {(m.target_kind, m.target_id, m.label) for m in marks} == {("account", RING[0], "confirmed"),
                                                                        ("ring", "7", "confirmed")}
    assert engine.analyst.ring_view(7).mark_of(RING[0]).label == "confirmed"
    assert engine.analyst.account_view(RING[0]).mark.note == "same questions"
    pid = _pid(engine, QUESTIONS[1])
    assert {a.account_id: a.mark for a in engine.analyst.prompt_view(pid).accounts}[RING[0]] == "confirmed"
    for bad in (("account", RING[0], "guilty"), ("user", RING[0], "benign"), ("account", "nobody", "benign")):
        with pytest.raises(QueryError):
            engine.analyst.mark(*bad)


def test_export_ring_bundle(engine):
    result = engine.analyst.export_evidence("ring", 7)
    folder = Path(result.path)
    assert folder.parent.name == "exports" and not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    doc = json.loads((folder / "evidence.json").read_text())
    assert doc["kind"] == "ring" and len(doc["ring"]["members"]) == 4
    with open(folder / "exchanges.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == result.n_exchanges == 56 and {r["account_id"] for r in rows} == set(RING)
    with open(folder / "signals.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == result.n_signals == 2 + 4 * 3
    assert engine.analyst.export_evidence("account", RING[0]).n_exchanges == 14
