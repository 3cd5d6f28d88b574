"""scan end to end on a small synthetic workspace with the real model: resumable, idempotent, found rings."""

from __future__ import annotations

import json

import numpy as np
import pytest

import index as faiss_index
from engine import Engine, EngineConfig
from engine.detect.families import build_families, build_families_streamed
from engine.store.vectors import load_vectors
from synth import SynthConfig, write_synth
from tests.fixtures.interrupt import die_in_self_join


@pytest.fixture(scope="module")
def synth_workspace(tmp_path_factory, real_encoder):
    root = tmp_path_factory.mktemp("scan")
    synth = write_synth(SynthConfig(exchanges=4000, seed=3), root / "traffic.jsonl.gz")
    engine = Engine(root / "ws", encoder=real_encoder, config=EngineConfig(shard_size=512))
    engine.ingest([synth.path])
    engine.embed()
    return engine, json.loads(synth.truth_path.read_text())


def _matches(engine: Engine) -> set[tuple[int, int, float]]:
    with engine.store.connect() as con:
        return {(a, b, round(s, 4)) for a, b, s in con.execute("SELECT * FROM matches").fetchall()}


def test_killed_scan_resumes_and_a_second_scan_changes_nothing(synth_workspace, monkeypatch):
    engine, _ = synth_workspace
    import engine.scan.pipeline as scan_module

    monkeypatch.setattr(scan_module, "SELFJOIN_BLOCK", 256)
    with pytest.raises(KeyboardInterrupt):
        engine.scan(progress=die_in_self_join(1))
    with engine.store.connect() as con:
        status, blocks = con.execute("SELECT status, blocks_done FROM scan_runs ORDER BY scan_id DESC").fetchone()
    assert status == "running" and blocks == 1
    total_blocks = -(-engine.status().embedded // 256)
    resumed = engine.scan()
    assert resumed.resumed and total_blocks > 2
    edges = _matches(engine)
    # The resumed join equals exact brute force over the same stored vectors.
    ids, vecs = load_vectors(engine.store, engine.encoder.name, engine.encoder.dim)
    brute = faiss_index.brute_force_pairs(vecs, ids, engine.scan_threshold)
    assert {(int(a), int(b)) for a, b, _ in edges} == {(int(a), int(b)) for a, b in zip(brute.a, brute.b, strict=True)}
    with engine.store.connect() as con:
        scores_before = con.execute("SELECT * FROM account_scores ORDER BY account_id").fetchall()
    again = engine.scan()
    assert not again.resumed and again.embedded == 0
    assert _matches(engine) == edges
    with engine.store.connect() as con:
        assert con.execute("SELECT * FROM account_scores ORDER BY account_id").fetchall() == scores_before
        assert con.execute("SELECT count(*) FROM scan_runs WHERE status = 'done'").fetchone()[0] == 1


def test_planted_campaigns_score_high_and_carry_evidence(synth_workspace):
    engine, truth = synth_workspace
    engine.scan()
    scores = {a.account_id: a for a in engine.accounts(limit=None)}
    organic = np.array([scores[a].score for a, c in truth["accounts"].items() if c is None and a in scores])
    cut = np.quantile(organic, 0.99)
    for campaign in truth["campaigns"]:
        got = [scores[a].score > cut for a in campaign["accounts"] if a in scores]
        assert np.mean(got) >= 0.8, (campaign["campaign_id"], np.mean(got))
    for account in scores.values():
        if account.score >= 0.5:
            assert account.signals and account.top_signal
            assert all(0.0 <= s.score <= 1.0 for s in account.signals)
    # Viral prompts copied by many unrelated accounts make no ring.
    viral_senders = {a for v in truth.get("viral", []) for a in v["accounts"]}
    for ring in engine.rings(limit=None):
        assert sum(a in viral_senders for a in ring.accounts) <= len(ring.accounts) // 2, ring.summary


def test_families_do_not_chain():
    # A paraphrase walk A~B~C~D~E: neighbours similar, ends unrelated. Stars keep every member next to its centre.
    ids = np.arange(1, 6, dtype=np.int64)
    a = np.array([1, 2, 3, 4], dtype=np.int64)
    b = np.array([2, 3, 4, 5], dtype=np.int64)
    fam = build_families(ids, a, b, np.full(4, 0.9, np.float32))
    groups = {}
    for pid, fid in zip(fam.prompt_ids, fam.family_ids, strict=True):
        groups.setdefault(int(fid), set()).add(int(pid))
    assert all(len(g) <= 3 for g in groups.values())
    for fid, members in groups.items():
        for m in members - {fid}:
            assert abs(m - fid) == 1, "a member must be a direct near-copy of its centre"


@pytest.mark.parametrize("dense_ids", [False, True])
def test_families_read_in_chunks_equal_families_read_whole(dense_ids, monkeypatch):
    # The scan reads edges back from DuckDB in batches; the batching must not change a single family.
    from engine.detect import families

    monkeypatch.setattr(families, "_CHUNK_EDGES", 2500)  # several re-batched chunks of uneven reads
    rng = np.random.default_rng(4)
    # Sequence ids (the id table) or ids spread over 10**9 (the binary-search fallback).
    ids = (np.arange(1, 3001) if dense_ids else np.sort(rng.choice(10**9, size=3000, replace=False))).astype(np.int64)
    # Dense clumps (copied prompts) plus sparse random edges, with shuffled id order in the edge list.
    a = np.concatenate([rng.choice(ids[:300], 8000), rng.choice(ids, 4000)])
    b = np.concatenate([rng.choice(ids[:300], 8000), rng.choice(ids, 4000)])
    # The self-join emits each pair once, never a prompt with itself.
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1)[a != b], axis=0)
    a, b = pairs[:, 0], pairs[:, 1]
    s = rng.uniform(0.8, 1.0, len(a)).astype(np.float32)
    weights = rng.integers(1, 5, len(ids)).astype(float)
    whole = build_families(ids, a, b, s, weights)
    step = 997
    chunked = build_families_streamed(
        ids, lambda: [(a[i:i + step], b[i:i + step], s[i:i + step]) for i in range(0, len(a), step)], weights)
    assert np.array_equal(whole.family_ids, chunked.family_ids)
    assert np.array_equal(whole.sim_to_center, chunked.sim_to_center)
    assert whole.n_families < len(ids) - 200  # the clumps really formed families
    # Every member's similarity to its centre is the similarity of an edge between them.
    edge_sim = dict(zip(zip(a.tolist(), b.tolist(), strict=True), s.tolist(), strict=True))
    for pid, fid, sim in zip(whole.prompt_ids.tolist(), whole.family_ids.tolist(),
                             whole.sim_to_center.tolist(), strict=True):
        if pid != fid:
            assert sim == edge_sim[(min(pid, fid), max(pid, fid))]


def test_stored_texts_stream_the_same_texts_the_miner_got_as_a_list(synth_workspace):
    from engine.detect.templates import TemplateParams, mine_templates
    from engine.scan.texts import StoredTexts

    engine, _ = synth_workspace
    with engine.store.connect() as con:
        rows = con.execute("SELECT prompt_id, normalized FROM prompts ORDER BY prompt_id").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        listed = [r[1] for r in rows]
        stored = StoredTexts(con, ids)
        # Odd chunk sizes cross id ranges anywhere; the last chunk is short.
        assert [t for chunk in stored.chunks(37) for t in chunk] == listed
        assert [stored.text(i) for i in (0, len(ids) // 2, len(ids) - 1)] == [listed[0], listed[len(ids) // 2],
                                                                              listed[-1]]
        params = TemplateParams(min_prompts=5, chunk_size=333)
        from_store = mine_templates(ids, stored, params, con=con)
        from_list = mine_templates(ids, listed, params, con=con)
    assert from_store.templates and from_store.templates == from_list.templates
    assert all(np.array_equal(a, b) for a, b in zip(from_store.assignments, from_list.assignments, strict=True))
