"""The int8 ONNX tier against the transformer, with the real packaged model, onnxruntime, DuckDB and FAISS.

Acceptance: the int8 model built from the packaged weights gives vectors on MiniLM's scale (mean cosine
>= 0.98 to MiniLM's on real prompts, none far off), finds the perturbed copies MiniLM finds at the
same cut, refuses a corrupt or foreign cached model with a clear message, and a workspace scanned
with it records it. The model is built once per session (~10-15 s on two cores).
"""

from __future__ import annotations

import json
import random
import shutil
import sys

import numpy as np
import pytest

from engine import Engine
from engine.config import EngineConfig, thresholds_for
from engine.encoders.base import MODEL_NAME, MODEL_SHA256
from engine.encoders.onnx import ONNX_NAME, OnnxEncoder
from engine.encoders.registry import make_encoder
from engine.errors import EmbeddingError
from engine.ingest.fingerprint import normalize
from tests.fixtures.corpora import perturb, sample_corpora
from tests.fixtures.traffic import ring_traffic, write_jsonl
from tests.fixtures.workspace import reopened_records

# Lowest cosine to MiniLM's vector over the sample below: measured 0.981 (mean 0.993; MiniLM as
# configured, bf16 on this 2-core AMD EPYC, which has native bf16). The same model quantised per tensor
# instead of per channel fails both bounds (measured on this sample: mean 0.957, min 0.850).
MIN_COSINE = 0.96


@pytest.fixture(scope="session")
def onnx_encoder(tmp_path_factory) -> OnnxEncoder:
    return OnnxEncoder(tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="session")
def real_prompts() -> list[str]:
    """250 real prompts: short requests, first chat turns, and role-play prompts, a few of them windowed."""
    # Up to ~2 windows each: longer prompts cost MiniLM seconds and test nothing more.
    return sample_corpora({"alpaca_5k.jsonl.gz": 100, "sharegpt_first_turns.jsonl.gz": 100,
                           "awesome_chatgpt_prompts.jsonl.gz": 50}, seed=7, max_len=2500)


def test_onnx_vectors_match_minilm(onnx_encoder, real_encoder, real_prompts):
    ours = onnx_encoder.encode(real_prompts)
    theirs = real_encoder.encode(real_prompts)
    assert ours.shape == (len(real_prompts), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = np.einsum("ij,ij->i", ours, theirs)
    print(f"cosine to MiniLM over {len(cos)} prompts: mean {cos.mean():.4f}, min {cos.min():.4f}")
    assert cos.mean() >= 0.98
    assert cos.min() >= MIN_COSINE


def test_onnx_vectors_do_not_depend_on_the_batch(onnx_encoder, real_prompts):
    """int8 activations are scaled per onnxruntime call, so the encoder runs one prompt per call: a
    prompt's vector is its text's alone, whatever else is encoded with it (batched, the same prompt
    measured down to cosine 0.984 to itself alone)."""
    texts = real_prompts[:32]
    together = onnx_encoder.encode(texts)
    alone = np.vstack([onnx_encoder.encode([t]) for t in texts])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together[::-1], onnx_encoder.encode(texts[::-1]))


def test_onnx_finds_the_perturbed_copies_minilm_finds(onnx_encoder, real_encoder, organic):
    rng = random.Random(11)
    copies = [normalize(perturb(t, rng)) for t in organic]
    different = np.array([c != t for c, t in zip(copies, organic, strict=True)])
    found = {}
    for enc in (real_encoder, onnx_encoder):
        diag = np.einsum("ij,ij->i", enc.encode(organic), enc.encode(copies))
        found[enc.name] = (diag >= thresholds_for(enc.name)[1]) & different
    minilm, ours = found[MODEL_NAME], found[ONNX_NAME]
    print(f"of {int(different.sum())} perturbed copies MiniLM finds {int(minilm.sum())}, onnx int8 "
          f"{int(ours.sum())}, both {int((minilm & ours).sum())}")
    assert minilm.sum() >= 0.7 * different.sum()
    # Copies within a hair of the cut go either way (measured: 157 of MiniLM's 162 found, 3 others).
    assert (minilm & ours).sum() >= 0.95 * minilm.sum()
    assert abs(int(ours.sum()) - int(minilm.sum())) <= 0.05 * minilm.sum()  # its cut is not looser


def _copy_cache(onnx_encoder, folder):
    folder.mkdir(parents=True)
    for f in onnx_encoder.cache_files():
        shutil.copy(f, folder / f.name)
    return folder / f"{ONNX_NAME}.onnx", folder / f"{ONNX_NAME}.json"


def test_cached_model_is_verified(tmp_path, onnx_encoder):
    model, meta = _copy_cache(onnx_encoder, tmp_path / "cache")
    assert OnnxEncoder(tmp_path / "cache").encode(["hello"]).shape == (1, 384)  # an intact copy loads

    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(EmbeddingError, match=r"corrupt; delete both to rebuild") as err:
        OnnxEncoder(tmp_path / "cache")
    assert "\n" not in str(err.value)

    sidecar = json.loads(meta.read_text())
    meta.write_text(json.dumps({**sidecar, "source_sha256": "1" * 64}))
    with pytest.raises(EmbeddingError, match="built from other weights"):
        OnnxEncoder(tmp_path / "cache")

    meta.write_text("{not json")
    with pytest.raises(EmbeddingError, match="unreadable"):
        OnnxEncoder(tmp_path / "cache")

    # A file its sidecar vouches for that is not a model: onnxruntime's refusal becomes one line.
    model.write_bytes(b"not an onnx model")
    from engine.files import file_sha256

    meta.write_text(json.dumps({**sidecar, "sha256": file_sha256(model), "source_sha256": MODEL_SHA256}))
    with pytest.raises(EmbeddingError, match="onnxruntime cannot load it.*delete it") as err:
        OnnxEncoder(tmp_path / "cache")
    assert "\n" not in str(err.value)


def test_missing_onnxruntime_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(EmbeddingError, match=r"pip install 'copyhound\[onnx\]'"):
        make_encoder("onnx", cache_dir=tmp_path)


def test_ray_actor_rebuilds_the_same_encoder(onnx_encoder, real_prompts):
    from engine.scan.ray import _EncodeActor, _encoder_spec

    kind, payload = _encoder_spec(onnx_encoder)
    assert kind == "onnx"
    actor = _EncodeActor((kind, payload))
    batch = {"i": np.arange(5), "text": np.array(real_prompts[:5], dtype=object)}
    np.testing.assert_array_equal(actor(batch)["vec"], onnx_encoder.encode(real_prompts[:5]))


def test_scan_with_onnx_records_the_encoder_and_finds_the_ring(tmp_path, onnx_encoder, organic):
    traffic = write_jsonl(tmp_path / "traffic.jsonl", ring_traffic(organic))
    # The engine builds its encoder from the workspace's models folder: give it the session's model.
    (tmp_path / "ws").mkdir()
    _copy_cache(onnx_encoder, tmp_path / "ws" / "models")
    engine = Engine(tmp_path / "ws", config=EngineConfig(encoder="onnx"))
    engine.ingest([traffic])
    scan = engine.scan()
    assert scan.edges > 0
    later = reopened_records(tmp_path / "ws", ONNX_NAME)
    flagged = {a.account_id for a in later.accounts(limit=None, min_score=0.5)}
    assert {f"ring_{m}" for m in range(6)} <= flagged
    assert not any(a.startswith("org_") for a in flagged)


def test_building_leaves_the_root_logger_as_it_was(monkeypatch):
    """onnxruntime's quantizer calls logging.warning, which would give a handler-less root logger (a
    library user's, a TUI's) a stderr handler for good."""
    import logging

    from engine.encoders.onnx import _quiet_libraries

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    with _quiet_libraries():
        logging.warning("Please consider to run pre-processing before quantization.")
        logging.getLogger("fusion_base").info("Fused Attention: 6")
    assert root.handlers == [] and not root.filters
    assert logging.root.manager.disable == logging.NOTSET  # INFO is enabled again
