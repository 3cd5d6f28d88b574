"""Incremental scans: after new traffic, only the new prompts are joined against all, and the result is
what a full scan of the same workspace finds; a killed incremental scan resumes without duplicates."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import index as faiss_index
from engine import Engine, EngineConfig
from engine.store.vectors import load_vectors
from synth import SynthConfig, write_synth
from tests.fixtures.interrupt import die_in_self_join


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """A day of traffic and the next one: the same synthetic file cut in two."""
    root = tmp_path_factory.mktemp("incremental")
    synth = write_synth(SynthConfig(exchanges=3000, seed=11), root / "traffic.jsonl")
    lines = synth.path.read_text().splitlines(keepends=True)
    first, second = root / "first.jsonl", root / "second.jsonl"
    first.write_text("".join(lines[:2500]))
    second.write_text("".join(lines[2500:]))
    return root, first, second


@pytest.fixture(scope="module")
def scanned_then_grown(traffic, real_encoder):
    """A workspace scanned on the first file, then given the second (not yet scanned), kept as a template."""
    root, first, second = traffic
    engine = Engine(root / "base", encoder=real_encoder, config=EngineConfig(shard_size=256))
    engine.ingest([first])
    engine.scan()
    engine.ingest([second])
    return root / "base"


def _copy(src, dst, encoder) -> Engine:
    shutil.copytree(src, dst)
    return Engine(dst, encoder=encoder, config=EngineConfig(shard_size=256), create=False)


def _edges(engine: Engine) -> list[tuple[int, int, float]]:
    with engine.store.connect() as con:
        return [(a, b, s) for a, b, s in
                con.execute("SELECT prompt_a, prompt_b, similarity FROM matches ORDER BY ALL").fetchall()]


def _detections(engine: Engine) -> tuple:
    with engine.store.connect() as con:
        return (con.execute("SELECT account_id, score, ring_id FROM account_scores ORDER BY account_id").fetchall(),
                con.execute("SELECT family_id, prompt_id FROM families ORDER BY ALL").fetchall(),
                con.execute("SELECT template_id, prompt_id FROM template_members ORDER BY ALL").fetchall())


def test_a_scan_after_new_traffic_joins_only_the_new_prompts_and_equals_a_full_scan(scanned_then_grown, tmp_path,
                                                                                      real_encoder):
    inc = _copy(scanned_then_grown, tmp_path / "inc", real_encoder)
    full = _copy(scanned_then_grown, tmp_path / "full", real_encoder)
    before = inc.status().embedded
    got = inc.scan()
    after = inc.status().embedded
    assert got.embedded == after - before > 0
    assert got.joined == after - before, "an incremental scan joins the newly embedded prompts only"
    with inc.store.connect() as con:
        base, status = con.execute("SELECT base_shard, status FROM scan_runs ORDER BY scan_id DESC LIMIT 1").fetchone()
    assert base is not None and status == "done"
    again = full.scan(full=True)
    assert again.joined == after
    # Below the exact join's size every pair is found either way: the same edges, families, templates,
    # links, rings and scores.
    edges, full_edges = _edges(inc), _edges(full)
    assert [e[:2] for e in edges] == [e[:2] for e in full_edges]
    # Each similarity is recomputed as one row product instead of a tile's: equal to float rounding.
    assert np.allclose([e[2] for e in edges], [e[2] for e in full_edges], atol=1e-5)
    ids, vecs = load_vectors(inc.store, inc.encoder.name, inc.encoder.dim)
    brute = faiss_index.brute_force_pairs(vecs, ids, inc.scan_threshold)
    assert {(a, b) for a, b, _ in edges} == {(int(a), int(b)) for a, b in zip(brute.a, brute.b, strict=True)}
    assert _detections(inc) == _detections(full)


def test_a_killed_incremental_scan_resumes_without_duplicates(scanned_then_grown, tmp_path, real_encoder, monkeypatch):
    engine = _copy(scanned_then_grown, tmp_path / "killed", real_encoder)
    import engine.scan.pipeline as scan_module

    monkeypatch.setattr(scan_module, "SELFJOIN_BLOCK", 64)
    with pytest.raises(KeyboardInterrupt):
        engine.scan(progress=die_in_self_join(2))
    with engine.store.connect() as con:
        status, blocks, base = con.execute(
            "SELECT status, blocks_done, base_shard FROM scan_runs ORDER BY scan_id DESC LIMIT 1").fetchone()
    assert status == "running" and blocks == 2 and base is not None
    resumed = engine.scan()
    assert resumed.resumed
    edges = _edges(engine)
    assert len({(a, b) for a, b, _ in edges}) == len(edges), "an edge was written twice"
    ids, vecs = load_vectors(engine.store, engine.encoder.name, engine.encoder.dim)
    brute = faiss_index.brute_force_pairs(vecs, ids, engine.scan_threshold)
    assert {(a, b) for a, b, _ in edges} == {(int(a), int(b)) for a, b in zip(brute.a, brute.b, strict=True)}
    assert engine.scan().joined == 0, "a scan with nothing new joins nothing"


def test_a_full_scan_after_an_incremental_one_clears_and_rejoins(scanned_then_grown, tmp_path, real_encoder):
    engine = _copy(scanned_then_grown, tmp_path / "refull", real_encoder)
    engine.scan()
    edges = _edges(engine)
    again = engine.scan(full=True)
    assert again.joined == engine.status().embedded
    assert [e[:2] for e in _edges(engine)] == [e[:2] for e in edges]
    with engine.store.connect() as con:
        runs = con.execute("SELECT base_shard IS NULL FROM scan_runs ORDER BY scan_id").fetchall()
    assert [r[0] for r in runs] == [True, False, True]
    assert np.all(np.diff([e[0] for e in edges]) >= 0)
