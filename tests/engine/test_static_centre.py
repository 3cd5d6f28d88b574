"""The static tier's centre is package data: the generator cannot change encoder output any more."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.encoders.static as static
from engine.encoders.static import CENTRE_FILE, CENTRE_SHA256, STATIC_DIMS, StaticEncoder, reference_centre
from engine.errors import EmbeddingError
from engine.files import file_sha256

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "engine" / "encoders" / "data" / CENTRE_FILE
TEXTS = ["Summarise this article in three bullet points.", "def add(a, b):\n    return a + b",
         "Translate 'good morning' into French", "", "Explain the chain rule step by step, please."]


@pytest.fixture
def fresh_cache(tmp_path, static_encoder) -> Path:
    """A cache folder holding the session's distilled table and its sidecar, but no centre yet."""
    table, sidecar, _ = static_encoder.cache_files()
    for f in (table, sidecar):
        shutil.copy(f, tmp_path)
    return tmp_path


def test_packaged_centre_matches_its_checksum():
    assert file_sha256(DATA) == CENTRE_SHA256
    mean, direction = reference_centre()
    assert mean.shape == direction.shape == (STATIC_DIMS,)
    assert mean.dtype == direction.dtype == np.float32
    assert abs(float(np.linalg.norm(direction)) - 1.0) < 1e-5


def _imported(path: Path) -> set[str]:
    """Every module named by an import anywhere in `path`, function-level imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_encoder_source_imports_neither_synth_nor_ingest():
    names = _imported(ROOT / "engine" / "encoders" / "static.py")
    assert not {n for n in names if n.split(".")[0] == "synth" or n.startswith("engine.ingest")}


def test_a_new_encoder_loads_the_packaged_centre_without_synth(fresh_cache):
    code = (
        "import hashlib, json, sys; from importlib.resources import files; from pathlib import Path; "
        "from engine.encoders.static import CENTRE_FILE, StaticEncoder, reference_centre; "
        f"e = StaticEncoder(Path({str(fresh_cache)!r})); m, d = reference_centre(); "
        "raw = (files('engine.encoders') / 'data' / CENTRE_FILE).read_bytes(); "
        "print(json.dumps({'synth': sorted(n for n in sys.modules if n.split('.')[0] == 'synth'), "
        "'sha256': hashlib.sha256(raw).hexdigest(), "
        "'same': bool((e.centre == m).all() and (e.direction == d).all())}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"synth": [], "sha256": CENTRE_SHA256, "same": True}
    # The workspace now holds its own copy, naming the version it came from.
    copy = json.loads((fresh_cache / f"{static.STATIC_NAME}.centre.json").read_text())
    assert copy["reference"].endswith(CENTRE_FILE) and copy["sha256"] == CENTRE_SHA256


def test_damaged_centre_is_refused_in_one_line(tmp_path, fresh_cache, monkeypatch):
    damaged = tmp_path / CENTRE_FILE
    raw = bytearray(DATA.read_bytes())
    raw[-1] ^= 0x01  # one bit of the last float
    damaged.write_bytes(bytes(raw))
    with pytest.raises(EmbeddingError, match="sha256") as err:
        reference_centre(damaged)
    assert "\n" not in str(err.value)
    with pytest.raises(EmbeddingError, match="unreadable") as err:
        reference_centre(tmp_path / "absent.npy")
    assert "\n" not in str(err.value)
    # A new workspace refuses a packaged file that does not match the checksum in the code.
    monkeypatch.setattr(static, "CENTRE_SHA256", "0" * 64)
    with pytest.raises(EmbeddingError, match="damaged or replaced") as err:
        StaticEncoder(fresh_cache)
    assert "\n" not in str(err.value)
    assert not (fresh_cache / f"{static.STATIC_NAME}.centre.json").exists()


def test_centre_cached_before_it_was_packaged_loads_the_same(fresh_cache, static_encoder):
    # The format the encoder wrote when it fitted the centre at first use (values from that fit).
    mean, direction = reference_centre()
    (fresh_cache / f"{static.STATIC_NAME}.centre.json").write_text(json.dumps({
        "reference": "synth.generator organic prompts, 20000 exchanges, seed 0", "prompts": 13052,
        "mean": mean.tolist(), "direction": direction.tolist()}))
    old = StaticEncoder(fresh_cache)
    assert np.array_equal(old.centre, mean) and np.array_equal(old.direction, direction)
    assert np.array_equal(old.encode(TEXTS), static_encoder.encode(TEXTS))


def test_editing_the_generator_changes_no_vector(fresh_cache, static_encoder, monkeypatch):
    import synth
    from synth import vocab

    expected = static_encoder.encode(TEXTS)
    for name, value in vars(vocab).items():
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            monkeypatch.setattr(vocab, name, type(value)(reversed(value)))

    def no_synth(*args, **kwargs):
        raise AssertionError("the encoder generated synthetic traffic")

    monkeypatch.setattr(synth, "write_synth", no_synth)
    monkeypatch.setattr(synth, "iter_exchanges", no_synth)
    encoder = StaticEncoder(fresh_cache)
    assert np.array_equal(encoder.encode(TEXTS), expected)
