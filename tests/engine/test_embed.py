"""Embedding with the real model: resumable shards, one vector per prompt, weights check, long prompts."""

from __future__ import annotations

import numpy as np
import pytest

from engine import Engine, EngineConfig
from engine.encoders.base import WINDOW_WORDS, split_windows, verify_weights
from engine.errors import EmbeddingError
from engine.store.vectors import embed_pending, load_vectors
from tests.fixtures.traffic import write_jsonl


def _traffic(tmp_path, n=60):
    rows = [{"account_id": f"a{i % 9}", "timestamp": 1772323200 + i, "prompt": f"Tell me fact number {i} about {w}"}
            for i, w in zip(range(n), ["owls", "rivers", "bread", "mars", "jazz", "tides"] * 20, strict=False)]
    return write_jsonl(tmp_path / "t.jsonl", rows)


def test_killed_embed_resumes_with_exactly_one_vector_per_prompt(tmp_path, real_encoder):
    engine = Engine(tmp_path / "ws", encoder=real_encoder, config=EngineConfig(shard_size=16))
    engine.ingest([_traffic(tmp_path)])
    calls = {"n": 0}

    def killer(stage, done, total):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_pending(engine.store, real_encoder, shard_size=16, progress=killer)
    # A half-written shard file left by the kill must not survive either.
    (engine.store.vectors_dir(real_encoder.name) / "shard-000099.npz").write_bytes(b"partial")
    result = engine.embed()
    assert result.already_embedded == 32 and result.embedded == 28
    ids, vecs = load_vectors(engine.store, real_encoder.name, real_encoder.dim)
    with engine.store.connect() as con:
        prompt_ids = np.array(sorted(r[0] for r in con.execute("SELECT prompt_id FROM prompts").fetchall()))
    assert np.array_equal(ids, prompt_ids)
    assert not (engine.store.vectors_dir(real_encoder.name) / "shard-000099.npz").exists()
    assert result.index_count == len(prompt_ids)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=2e-3)
    again = engine.embed()
    assert again.embedded == 0 and again.index_count == len(prompt_ids)


def test_batching_does_not_change_vectors(real_encoder):
    texts = ["How do vaccines work?", "Write a haiku about autumn leaves falling slowly", "2+2?"]
    together = real_encoder.encode(texts)
    alone = np.vstack([real_encoder.encode([t]) for t in texts])
    assert np.min(np.sum(together * alone, axis=1)) > 0.995


def test_long_prompts_are_embedded_by_windows(real_encoder):
    long = " ".join(f"word{i}" for i in range(WINDOW_WORDS * 40))
    assert len(split_windows(long)) == 16
    shared = " ".join(["the committee reviewed the annual budget in detail"] * 40)
    a = real_encoder.encode([shared + " then asked about quantum computing hardware and qubits " * 30])
    b = real_encoder.encode([shared + " then asked for a recipe for sourdough bread and pastry " * 30])
    assert a.shape == (1, 384)
    # Same preamble, different second half: related but not near-copies.
    assert float(a[0] @ b[0]) < 0.9


def test_weights_with_another_sha256_are_refused(tmp_path):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"not the model")
    with pytest.raises(EmbeddingError, match="sha256"):
        verify_weights(fake)
