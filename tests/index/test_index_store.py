"""Tests for index.build and index.io: factories, adding, atomic save/load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from index import (
    EXACT_MAX,
    IndexCorruptError,
    IndexMismatchError,
    IndexStoreError,
    Manifest,
    add,
    choose_factory,
    knn,
    load,
    make_index,
    save,
    set_search_params,
    train,
)
from index.build import ivf_of
from index.io import remove_stale_temps, verify

ENC = "all-MiniLM-L6-v2"
DIM = 384


def _flat(n: int = 500, seed: int = 0) -> tuple[faiss.Index, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64) * 3 + 10
    index = make_index(DIM, "IDMap2,Flat")
    add(index, x, ids)
    return index, x, ids


def _save(index: faiss.Index, path: Path, **extra: object) -> Manifest:
    manifest = Manifest.for_index(index, ENC, "IDMap2,Flat", extra=dict(extra))
    written = save(index, path, manifest)
    assert written.file_bytes == path.stat().st_size and written == replace(manifest, file_bytes=written.file_bytes)
    return written


# ------------------------------------------------------------------ build


def test_choose_factory() -> None:
    assert choose_factory(0, DIM) == "IDMap2,Flat"
    assert choose_factory(EXACT_MAX - 1, DIM) == "IDMap2,Flat"
    assert choose_factory(EXACT_MAX, DIM) == "IVF2048,SQ8"  # 4*sqrt(2e5)=1789 -> 2048
    assert choose_factory(10**7, DIM) == "IVF16384,SQ8"
    assert choose_factory(10**11, DIM) == "IVF65536,SQ8"  # capped
    with pytest.raises(ValueError):
        choose_factory(10, 0)


def test_training_size_gives_every_list_its_points() -> None:
    from index import training_size

    assert training_size(make_index(DIM, "IDMap2,Flat")) == 256 * 1024
    assert training_size(make_index(DIM, "IVF4096,SQ8")) == 256 * 1024  # 64 per list already
    assert training_size(make_index(DIM, "IVF8192,SQ8")) == 39 * 8192  # 32 per list would be too few
    assert training_size(make_index(DIM, "IVF64,SQ8"), usual=100) == 39 * 64


@pytest.mark.parametrize("factory", ["IDMap2,Flat", "Flat", "IVF16,SQ8", "IVF16,Flat"])
def test_make_index_stores_our_ids(factory: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = rng.permutation(1000).astype(np.int64) * 7_919 + 10**9  # large, unordered
    index = make_index(32, factory)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT
    train(index, x)
    add(index, x, ids)
    set_search_params(index, 16)  # probe every list: exact on IVF,Flat
    sims, got = knn(index, x[:20], 1)
    assert sims.dtype == np.float32 and got.dtype == np.int64
    assert np.array_equal(got[:, 0], ids[:20])
    assert np.allclose(sims[:, 0], 1.0, atol=2e-2)


def test_ivf_default_nprobe_and_clip() -> None:
    index = make_index(16, "IVF8,Flat")
    ivf = ivf_of(index)
    assert ivf is not None and ivf.nprobe == 8  # DEFAULT_NPROBE clipped to nlist
    set_search_params(index, 3)
    assert ivf.nprobe == 3
    set_search_params(make_index(16, "Flat"), 4)  # no-op, no error


def test_add_wrong_dimension_raises() -> None:
    index = make_index(DIM, "IDMap2,Flat")
    with pytest.raises(IndexMismatchError, match="vectors have dimension 512, index expects 384"):
        add(index, np.zeros((3, 512), np.float32), np.arange(3))
    assert index.ntotal == 0


def test_add_validates_ids_and_converts_float16() -> None:
    index = make_index(8, "IDMap2,Flat")
    with pytest.raises(ValueError):
        add(index, np.zeros((3, 8), np.float32), np.arange(4))
    x = np.eye(8, dtype=np.float16)
    add(index, x, np.arange(100, 108))
    assert index.ntotal == 8
    _, got = knn(index, np.eye(8, dtype=np.float32)[:2], 1)
    assert got[:, 0].tolist() == [100, 101]


def test_train_sample_too_small() -> None:
    index = make_index(16, "IVF64,SQ8")
    with pytest.raises(ValueError, match="at least nlist=64"):
        train(index, np.random.default_rng(0).standard_normal((30, 16)).astype(np.float32))
    with pytest.raises(ValueError):
        add(index, np.zeros((1, 16), np.float32), np.arange(1))  # untrained


# --------------------------------------------------------------------- io


def test_save_load_roundtrip(tmp_path: Path) -> None:
    index, x, ids = _flat()
    path = tmp_path / "sub" / "prompts.faiss"
    manifest = _save(index, path, last_prompt_id=1234)
    assert path.exists() and path.with_suffix(".json").exists()
    assert json.loads(path.with_suffix(".json").read_text())["count"] == 500
    loaded, got = load(path, ENC, DIM)
    assert got == manifest
    assert got.extra == {"last_prompt_id": 1234}
    assert got.metric == "inner_product" and got.count == 500 and got.dim == DIM
    assert loaded.ntotal == 500
    assert np.array_equal(knn(loaded, x[:10], 3)[1], knn(index, x[:10], 3)[1])
    assert sorted(p.name for p in path.parent.iterdir()) == ["prompts.faiss", "prompts.json"]


@pytest.mark.parametrize("factory", ["IDMap2,Flat", "IVF16,SQ8"])
def test_load_mmap(tmp_path: Path, factory: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = make_index(32, factory)
    train(index, x)
    add(index, x, np.arange(2000, dtype=np.int64) + 7)
    path = tmp_path / "m.faiss"
    save(index, path, Manifest.for_index(index, ENC, factory))
    loaded, _ = load(path, ENC, 32, mmap=True)
    assert loaded.ntotal == 2000
    assert np.array_equal(knn(loaded, x[:50], 5)[1], knn(index, x[:50], 5)[1])


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "p.faiss"
    _save(_flat(100)[0], path)
    _save(_flat(200, seed=1)[0], path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.faiss", "p.json"]
    assert load(path, ENC, DIM)[0].ntotal == 200


def test_interrupted_save_keeps_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.faiss"
    _save(_flat(100)[0], path)
    old_index, old_manifest = path.read_bytes(), path.with_suffix(".json").read_bytes()

    def broken_write(index: faiss.Index, fname: str) -> None:
        Path(fname).write_bytes(b"half an index")
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OSError, match="disk full"):
        _save(_flat(300)[0], path)
    assert path.read_bytes() == old_index
    assert path.with_suffix(".json").read_bytes() == old_manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.faiss", "p.json"]
    monkeypatch.undo()
    assert load(path, ENC, DIM)[0].ntotal == 100


def test_save_rejects_manifest_not_matching_index(tmp_path: Path) -> None:
    index, _, _ = _flat(50)
    bad = Manifest(ENC, DIM, "inner_product", 49, "IDMap2,Flat", "2024-01-01T00:00:00+00:00")
    with pytest.raises(IndexMismatchError):
        save(index, tmp_path / "x.faiss", bad)
    assert list(tmp_path.iterdir()) == []


def test_load_wrong_encoder_or_dim(tmp_path: Path) -> None:
    path = tmp_path / "p.faiss"
    _save(_flat(50)[0], path)
    with pytest.raises(IndexMismatchError, match="encoder") as exc:
        load(path, "bge-small", DIM)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(IndexMismatchError, match="dimension"):
        load(path, ENC, 768)


def test_load_detects_index_manifest_disagreement(tmp_path: Path) -> None:
    # Simulates a crash between the two renames: new index, old manifest.
    path = tmp_path / "p.faiss"
    _save(_flat(50)[0], path)
    old_manifest = path.with_suffix(".json").read_bytes()
    _save(_flat(60)[0], path)
    path.with_suffix(".json").write_bytes(old_manifest)
    with pytest.raises(IndexCorruptError, match="bytes but its manifest says"):
        load(path, ENC, DIM)
    # A manifest from before file sizes were recorded: the header's count still tells.
    raw = json.loads(old_manifest)
    del raw["file_bytes"]
    path.with_suffix(".json").write_text(json.dumps(raw))
    with pytest.raises(IndexMismatchError, match="holds 60 vectors but its manifest says 50"):
        verify(path, ENC, DIM)


def test_verify_reads_no_index(tmp_path: Path) -> None:
    path = tmp_path / "p.faiss"
    written = _save(_flat(70)[0], path, max_shard=3)
    assert verify(path, ENC, DIM) == written
    good = path.read_bytes()
    path.write_bytes(good[:-100])  # truncated
    with pytest.raises(IndexCorruptError, match=f"{path} is {len(good) - 100} bytes but its manifest says"):
        verify(path, ENC, DIM)
    path.write_bytes(b"\0" * len(good))  # foreign content of the right size
    with pytest.raises(IndexMismatchError, match="holds dimension 0"):
        verify(path, ENC, DIM)
    path.write_bytes(b"IxM2")
    raw = json.loads(path.with_suffix(".json").read_text())
    raw["file_bytes"] = 4
    path.with_suffix(".json").write_text(json.dumps(raw))
    with pytest.raises(IndexCorruptError, match="too short"):
        verify(path, ENC, DIM)


def test_save_hook_sees_each_rename(tmp_path: Path) -> None:
    path = tmp_path / "p.faiss"
    seen: list[tuple[str, list[str]]] = []
    save(_flat(20)[0], path, Manifest.for_index(_flat(20)[0], ENC, "IDMap2,Flat"),
         hook=lambda point: seen.append((point, sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")))))
    assert seen == [("index.save.before_index_rename", []),
                    ("index.save.after_index_rename", ["p.faiss"]),
                    ("index.save.after_manifest_rename", ["p.faiss", "p.json"])]


def test_remove_stale_temps_spares_live_writers(tmp_path: Path) -> None:
    path = tmp_path / "p.faiss"
    _save(_flat(20)[0], path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: its pid is free (reuse within this test is vanishingly unlikely)
    stale = [tmp_path / f".p.faiss.{dead_pid}.abc123.tmp", tmp_path / f".p.json.{dead_pid}.x_9.tmp",
             tmp_path / ".p.faiss.oldstyle.tmp", tmp_path / f".p.faiss.{os.getpid()}.mine.tmp"]
    live = tmp_path / f".p.faiss.{os.getppid()}.live.tmp"
    other = tmp_path / ".q.faiss.1.x.tmp"
    for f in [*stale, live, other]:
        f.write_bytes(b"x")
    assert remove_stale_temps(path) == len(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "p.faiss", "p.json"])


def test_load_missing_or_garbled(tmp_path: Path) -> None:
    path = tmp_path / "p.faiss"
    with pytest.raises(IndexCorruptError, match="manifest missing"):
        load(path, ENC, DIM)
    _save(_flat(50)[0], path)
    good = path.read_bytes()

    path.write_bytes(b"not a faiss index at all")
    with pytest.raises(IndexCorruptError) as exc:
        load(path, ENC, DIM)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)

    path.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(IndexCorruptError):
        load(path, ENC, DIM)

    path.unlink()
    with pytest.raises(IndexCorruptError, match="index file missing"):
        load(path, ENC, DIM)

    path.write_bytes(good)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match="garbled manifest"):
        load(path, ENC, DIM)
    path.with_suffix(".json").write_text('{"encoder": "x"}')
    with pytest.raises(IndexStoreError):  # base class catches both kinds
        load(path, ENC, DIM)
