"""The Ray path gives the same near-copy edges, families and rings as the local path.

A local Ray cluster is started by the test itself (2 CPUs); the workspace is scanned once locally and
once with embedding as Ray Data batch inference and the self-join as Ray tasks, from empty each time,
with the exact join and with the IVF join (spilled lists included) that millions of prompts take.
The static fast tier keeps the embedding cost small; the transformer path goes through the same code.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import ray

from engine import Engine, EngineConfig
from engine.encoders.static import STATIC_NAME
from index import JoinSettings
from tests.fixtures.traffic import ring_traffic, write_jsonl


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _tables(engine: Engine) -> dict:
    with engine.store.connect() as con:
        return {
            "matches": con.execute("SELECT prompt_a, prompt_b, round(similarity, 5) FROM matches ORDER BY ALL").fetchall(),
            "families": con.execute("SELECT family_id, prompt_id FROM families ORDER BY ALL").fetchall(),
            "rings": sorted(tuple(sorted(r.accounts)) for r in engine.rings(limit=None)),
            "scores": con.execute("SELECT account_id, round(score, 5) FROM account_scores ORDER BY ALL").fetchall(),
        }


@pytest.mark.parametrize("join", ["exact", "ivf"])
def test_ray_scan_equals_local_scan(join, tmp_path, monkeypatch, local_cluster, static_encoder, organic):
    import engine.scan.pipeline as scan_module
    import engine.scan.ray as cluster
    import index as faiss_index

    if join == "ivf":  # the exact-join size limit lowered, so this small workspace takes the IVF path
        monkeypatch.setattr(faiss_index, "EXACT_MAX", 10)

    # Many small self-join blocks, so the Ray path really spreads them over tasks.
    monkeypatch.setattr(scan_module, "SELFJOIN_BLOCK", 64)
    on_ray = []
    ray_map = cluster.parallel_map

    def counted(func, shared, blocks):
        for block in ray_map(func, shared, blocks):
            on_ray.append(block.block_no)
            yield block

    monkeypatch.setattr(cluster, "parallel_map", counted)
    traffic = write_jsonl(tmp_path / "traffic.jsonl", ring_traffic(organic))
    results = {}
    for mode, address in (("local", None), ("ray", "auto")):
        ws = tmp_path / mode
        # One probe in the IVF case, so the spilled prompts are what finds the cross-list pairs.
        # Lists of more than 16 prompts are split, so the Ray blocks come from a split plan too, and the
        # default point probes add their second pass per list.
        config = EngineConfig(encoder="static", ray_address=address, shard_size=64,
                              join=JoinSettings(nprobe=8 if join == "exact" else 1, max_list=16))
        # The distilled table is shared, not distilled twice: the workspace cache gets a copy.
        (ws / "models").mkdir(parents=True)
        for f in static_encoder.cache_files():
            shutil.copy(f, ws / "models")
        engine = Engine(ws, config=config)
        engine.ingest([traffic])
        scan = engine.scan()
        assert scan.edges > 0 and scan.rings >= 1
        results[mode] = _tables(engine)
        with engine.store.connect() as con:
            method = con.execute("SELECT method FROM scan_runs ORDER BY scan_id DESC LIMIT 1").fetchone()[0]
        assert method == ("exact" if join == "exact" else "ivf/nprobe=1/spill=0.05/maxlist=16/points=8")
        if mode == "ray":
            with engine.store.connect() as con:
                shards = con.execute("SELECT count(*) FROM embedding_shards WHERE encoder = ?", [STATIC_NAME]).fetchone()[0]
            assert shards == 1  # one Ray Data job per (large) shard
            # IVF blocks are whole lists, and this workspace has only a few of them.
            assert on_ray == list(range(len(on_ray))) and len(on_ray) > (3 if join == "exact" else 1), on_ray
    assert results["ray"]["matches"] == results["local"]["matches"]
    assert results["ray"]["families"] == results["local"]["families"]
    assert results["ray"]["rings"] == results["local"]["rings"]
    assert results["ray"]["scores"] == results["local"]["scores"]
    ring = next(r for r in results["ray"]["rings"] if any(a.startswith("ring_") for a in r))
    assert {f"ring_{m}" for m in range(6)} <= set(ring)


def test_ray_vectors_equal_local_vectors(local_cluster, static_encoder, organic):
    from engine.scan.ray import RayEncoder

    texts = organic[:300]
    np.testing.assert_array_equal(RayEncoder(static_encoder, batch_size=64).encode(texts), static_encoder.encode(texts))
