"""The static fast tier against the transformer, with the real packaged model, DuckDB and FAISS.

Acceptance: the fast tier finds the perturbed copies the transformer finds on a small set of real
prompts; its distilled table is verified at load; a workspace records which encoder built its index;
and the transformer re-check keeps copies while dropping the fast tier's false edges.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from engine import Engine
from engine.config import EngineConfig, thresholds_for
from engine.encoders.base import MODEL_NAME
from engine.encoders.static import STATIC_NAME, StaticEncoder
from engine.errors import EmbeddingError
from engine.ingest.fingerprint import normalize
from tests.fixtures.corpora import perturb
from tests.fixtures.traffic import ring_traffic, write_jsonl
from tests.fixtures.workspace import reopened_records


def test_static_vectors_are_normalised_and_deterministic(static_encoder):
    texts = ["Write a haiku about autumn rain.", "", "x" * 100_000, "Explain self-attention.  "]
    a = static_encoder.encode(texts)
    b = static_encoder.encode(texts)
    assert a.shape == (4, 256) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    norms = np.linalg.norm(a, axis=1)
    assert abs(norms[0] - 1) < 1e-5 and abs(norms[3] - 1) < 1e-5 and abs(norms[2] - 1) < 1e-5
    assert norms[1] == 0.0  # an empty prompt has no pieces: a zero vector, never NaN
    assert static_encoder.encode([]).shape == (0, 256)


def test_fast_tier_finds_the_perturbed_copies_the_transformer_finds(static_encoder, real_encoder, organic):
    rng = random.Random(11)
    copies = [normalize(perturb(t, rng)) for t in organic]
    different = np.array([c != t for c, t in zip(copies, organic, strict=True)])
    assert different.mean() > 0.9
    diag = {}
    for enc in (real_encoder, static_encoder):
        base, copy = enc.encode(organic), enc.encode(copies)
        diag[enc.name] = np.einsum("ij,ij->i", base, copy)
    # A copy is found when it scores at least the encoder's cut against its original.
    transformer = (diag[MODEL_NAME] >= thresholds_for(MODEL_NAME)[1]) & different
    at_scan_cut = (diag[STATIC_NAME] >= thresholds_for(STATIC_NAME)[1]) & transformer
    at_candidate_cut = (diag[STATIC_NAME] >= thresholds_for(STATIC_NAME)[0]) & transformer
    print(f"transformer {int(transformer.sum())} of {int(different.sum())}; fast tier at its scan cut "
          f"{int(at_scan_cut.sum())}, at its candidate cut {int(at_candidate_cut.sum())}")
    assert transformer.sum() >= 0.7 * different.sum()  # the set is mostly copies the transformer sees
    # Alone, at its own scan cut, the fast tier keeps >= 90% of them; as the re-check's candidate
    # generator (its looser who-else cut), >= 97%.
    assert at_scan_cut.sum() >= 0.90 * transformer.sum()
    assert at_candidate_cut.sum() >= 0.97 * transformer.sum()


def test_cached_table_is_verified(tmp_path, static_encoder):
    cache = tmp_path / "cache"
    cache.mkdir()
    np.save(cache / f"{STATIC_NAME}.npy", static_encoder.table)
    (cache / f"{STATIC_NAME}.json").write_text(json.dumps({"sha256": "0" * 64, "source_sha256": "1" * 64}))
    with pytest.raises(EmbeddingError, match="distilled from other weights"):
        StaticEncoder(cache)
    from engine.encoders.base import MODEL_SHA256

    (cache / f"{STATIC_NAME}.json").write_text(json.dumps({"sha256": "0" * 64, "source_sha256": MODEL_SHA256}))
    with pytest.raises(EmbeddingError, match="corrupt"):
        StaticEncoder(cache)


def _poem_edges(con) -> int:
    return con.execute(
        """SELECT count(*) FROM matches m JOIN prompts a ON a.prompt_id = m.prompt_a
           JOIN prompts b ON b.prompt_id = m.prompt_b
           WHERE a.normalized LIKE 'write a short poem%' AND b.normalized LIKE 'write a short poem%'""").fetchone()[0]


def test_workspace_records_encoder_and_recheck_drops_false_edges(tmp_path, static_encoder, organic):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", ring_traffic(organic))
    fast = Engine(tmp_path / "ws", encoder=static_encoder)
    fast.ingest([traffic])
    scan = fast.scan()
    assert scan.edges > 0
    # A later engine with no encoder named answers with the one the workspace was scanned with.
    later = reopened_records(tmp_path / "ws", STATIC_NAME)
    with later.store.connect() as con:
        assert _poem_edges(con) == 1, "the bag-of-pieces model takes two poems on different subjects for copies"

    recheck = Engine(tmp_path / "ws", encoder=static_encoder, config=EngineConfig())
    checked = recheck.scan(force=True, recheck=True)
    with recheck.store.connect() as con:
        minilm = con.execute("SELECT count(*) FROM embeddings WHERE encoder = ?", [MODEL_NAME]).fetchone()[0]
        prompts = con.execute("SELECT count(*) FROM prompts").fetchone()[0]
        lowest = con.execute("SELECT min(similarity) FROM matches").fetchone()[0]
        ring_edges = con.execute(
            """SELECT count(DISTINCT least(ea.account_id, eb.account_id) || greatest(ea.account_id, eb.account_id))
               FROM matches m JOIN exchanges ea ON ea.prompt_id = m.prompt_a JOIN exchanges eb ON eb.prompt_id = m.prompt_b
               WHERE ea.account_id LIKE 'ring_%' AND eb.account_id LIKE 'ring_%' AND ea.account_id <> eb.account_id"""
        ).fetchone()[0]
        assert _poem_edges(con) == 0, "the transformer tells the two poems apart"
    assert 0 < minilm < prompts, "the transformer embeds only prompts with candidate edges"
    assert lowest >= thresholds_for(MODEL_NAME)[1] - 1e-6
    assert 0 < checked.edges < scan.edges
    assert ring_edges == 15, "every pair of the six ring accounts keeps its copies after the re-check"
    flagged = {a.account_id for a in recheck.accounts(limit=None, min_score=0.5)}
    assert {f"ring_{m}" for m in range(6)} <= flagged
    assert not any(a.startswith("org_") for a in flagged)


def test_scan_after_another_encoder_recomputes(tmp_path, static_encoder, fake_encoder, organic):
    """The detection tables hold the last scan's results, whichever encoder made it."""
    traffic = write_jsonl(tmp_path / "traffic.jsonl", ring_traffic(organic))

    def scan_with(encoder):
        engine = Engine(tmp_path / "ws", encoder=encoder)
        engine.ingest([traffic])
        engine.scan()
        with engine.store.connect() as con:
            return (con.execute("SELECT count(*) FROM matches").fetchone()[0],
                    con.execute("SELECT max(scan_id) FROM scan_runs").fetchone()[0])

    fake_first = scan_with(fake_encoder)
    static = scan_with(static_encoder)
    fake_again = scan_with(fake_encoder)
    assert fake_first[0] != static[0]
    assert fake_again[0] == fake_first[0] and fake_again[1] == 3, "a stale scan of the other encoder was kept"
