"""The index reconciles on open: each state a crash (or a damaged file) can leave is repaired by `embed`.

In-process and fast (the fake encoder); tests/crash/test_crash_points.py reaches the same states by
killing a real copyhound process at each commit point.
"""

from __future__ import annotations

import json
import logging
import shutil

import faiss
import numpy as np
import pytest

from engine import Engine, EngineConfig
from engine.errors import EmbeddingError, IndexStateError
from engine.store.vectors import load_vectors, read_shard
from engine.store.workspace import CLOSED_NAME
from tests.fixtures.traffic import write_jsonl


def _rows(start: int, n: int) -> list[dict]:
    return [{"exchange_id": f"x{i}", "account_id": f"a{i % 7}", "timestamp": 1772323200 + i,
             "prompt": f"Question {i}: tell me about {w} and number {i * 7}"}
            for i, w in zip(range(start, start + n), ["owls", "rivers", "bread", "mars"] * 100, strict=False)]


@pytest.fixture
def grown(tmp_path, fake_encoder):
    """A workspace indexed once (2 shards), then given more prompts and embedded again (4 shards).

    Returns (engine, path of the index, the first index's bytes and manifest, the first `indexes` row).
    """
    engine = Engine(tmp_path / "ws", encoder=fake_encoder, config=EngineConfig(shard_size=20))
    engine.ingest([write_jsonl(tmp_path / "a.jsonl", _rows(0, 40))])
    engine.embed()
    path = engine.store.index_path(fake_encoder.name)
    first = (path.read_bytes(), path.with_suffix(".json").read_bytes())
    with engine.store.connect() as con:
        row = con.execute("SELECT count, max_shard FROM indexes").fetchone()
    engine.ingest([write_jsonl(tmp_path / "b.jsonl", _rows(40, 40))])
    assert engine.embed().index_count == 80
    return engine, path, first, row


def _index_ids(engine: Engine) -> np.ndarray:
    return np.sort(faiss.vector_to_array(engine._index().id_map))  # IDMap2,Flat at this size


def _prompt_ids(engine: Engine) -> np.ndarray:
    with engine.store.connect() as con:
        return np.array(sorted(r[0] for r in con.execute("SELECT prompt_id FROM prompts").fetchall()))


def _consistent(engine: Engine) -> None:
    assert np.array_equal(_index_ids(engine), _prompt_ids(engine))
    ids, _ = load_vectors(engine.store, engine.encoder.name, engine.encoder.dim)
    assert np.array_equal(ids, _prompt_ids(engine))
    # Dot files are save temps, except the store's record of a clean close (not a leftover).
    leftovers = [p.name for p in engine.workspace.rglob(".*") if p.is_file() and p.name != CLOSED_NAME]
    assert leftovers == []


def test_new_index_beside_old_manifest_is_rebuilt(grown, caplog) -> None:
    # Killed between the index's rename and the manifest's: before, every command stopped with
    # "holds 80 vectors but its manifest says 40" until the file was deleted by hand.
    engine, path, (_, old_manifest), row = grown
    path.with_suffix(".json").write_bytes(old_manifest)
    with engine.store.transaction() as con:
        con.execute("UPDATE indexes SET count = ?, max_shard = ?", list(row))
    with pytest.raises(IndexStateError, match="run `copyhound embed` to rebuild it") as err:
        Engine(engine.workspace, encoder=engine.encoder).who_else(["Question 3"])
    assert "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="engine.store.vectors"):
        assert engine.embed().index_count == 80
    assert "rebuilding it from the vector shards" in caplog.text
    _consistent(engine)


def test_renamed_but_uncommitted_index_is_not_extended_twice(grown, caplog) -> None:
    # Killed after both renames, before the `indexes` row committed: the rerun used to add shards 3-4 again.
    engine, path, _, row = grown
    with engine.store.transaction() as con:
        con.execute("UPDATE indexes SET count = ?, max_shard = ?", list(row))
    with caplog.at_level(logging.WARNING, logger="engine.store.vectors"):
        assert engine.embed().index_count == 80
    assert "the workspace records 40 vectors up to shard 2" in caplog.text
    _consistent(engine)
    with engine.store.connect() as con:
        assert con.execute("SELECT count, max_shard FROM indexes").fetchone() == (80, 4)


@pytest.mark.parametrize("damage", ["truncate", "foreign", "delete", "zeros"])
def test_damaged_index_file_is_rebuilt_by_embed(grown, damage, caplog) -> None:
    engine, path, _, _ = grown
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "foreign":
        shutil.copyfile(path.with_suffix(".json"), path)
    elif damage == "delete":
        path.unlink()
    else:
        path.write_bytes(good[:16] + b"\0" * (len(good) - 16))  # right size and header, garbage inside
    with caplog.at_level(logging.WARNING, logger="engine.store.vectors"):
        result = engine.embed()
    assert result.index_count == 80 and result.embedded == 0
    if damage != "zeros":  # garbage behind a good header passes the cheap check; nothing new to add
        assert "rebuilding it from the vector shards" in caplog.text
        _consistent(engine)


def test_stale_temporaries_are_removed(grown) -> None:
    engine, path, _, _ = grown
    dead = 2**22 + 12345  # above the usual pid_max: no such process
    junk = [path.with_name(f".{path.name}.{dead}.abcd.tmp"), path.with_name(f".{path.with_suffix('.json').name}.{dead}.x.tmp"),
            engine.store.vectors_dir(engine.encoder.name) / f".shard-000009.npz.tmp-{dead}"]
    for f in junk:
        f.write_bytes(b"half")
    engine.embed()
    assert not any(f.exists() for f in junk)
    _consistent(engine)


def test_truncated_shard_is_re_embedded(grown, caplog) -> None:
    engine, _, _, _ = grown
    shard = engine.store.vectors_dir(engine.encoder.name) / "shard-000002.npz"
    before_ids, before = read_shard(shard)
    shard.write_bytes(shard.read_bytes()[:500])
    with pytest.raises(EmbeddingError, match="shard-000002.npz: damaged vector shard") as err:
        read_shard(shard)  # BadZipFile before: a traceback
    assert "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="engine.store.vectors"):
        result = engine.embed()
    assert "shard-000002.npz: vector shard damaged" in caplog.text
    assert result.embedded == 20 and result.index_count == 80
    _consistent(engine)
    ids, vecs = load_vectors(engine.store, engine.encoder.name, engine.encoder.dim)
    pos = np.searchsorted(ids, before_ids)
    np.testing.assert_array_equal(vecs[pos], before)  # the same vectors, recomputed


def test_manifest_records_shards(grown) -> None:
    engine, path, _, _ = grown
    extra = json.loads(path.with_suffix(".json").read_text())["extra"]
    assert extra == {"max_shard": 4, "shards": 4}
