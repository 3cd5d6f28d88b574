"""The IVF self-join's nprobe, spill, list bound and point probes: more probes, spilling or point probes find a
superset, all lists the exact edges.

Real DuckDB and FAISS with the static fast tier; the exact-join size limit is lowered so a few
thousand prompts take the IVF path that millions take.
"""

from __future__ import annotations

import index as faiss_index
from engine import Engine
from engine.config import EngineConfig
from index import JoinSettings
from synth import SynthConfig, write_synth


def _edges(engine: Engine) -> set[tuple[int, int]]:
    with engine.store.connect() as con:
        return set(con.execute("SELECT prompt_a, prompt_b FROM matches").fetchall())


def _method(engine: Engine) -> str:
    with engine.store.connect() as con:
        return con.execute("SELECT method FROM scan_runs ORDER BY scan_id DESC LIMIT 1").fetchone()[0]


def test_more_probes_find_more_edges_and_all_lists_find_the_exact_ones(tmp_path, static_encoder, monkeypatch):
    traffic = write_synth(SynthConfig(exchanges=8000, seed=4), tmp_path / "traffic.jsonl").path

    def engine(nprobe: int, spill: float = 0.0, max_list: int = 0, points: int = 0) -> Engine:
        return Engine(tmp_path / "ws", encoder=static_encoder,
                      config=EngineConfig(encoder="static", join=JoinSettings(nprobe=nprobe, spill=spill,
                                                                              max_list=max_list, point_probes=points)))

    engine(1).ingest([traffic])
    exact = _edges(engine(1).scan() and engine(1))
    assert _method(engine(1)) == "exact" and len(exact) > 50

    monkeypatch.setattr(faiss_index, "EXACT_MAX", 10)
    one = engine(1)
    one.scan()
    assert _method(one) == "ivf/nprobe=1"
    few = _edges(one)
    assert engine(1).scan().seconds < 5 and _method(one) == "ivf/nprobe=1"  # same settings: unchanged
    spilled = engine(1, spill=0.05)  # prompts near a list boundary also join in their second list
    spilled.scan()
    assert _method(spilled) == "ivf/nprobe=1/spill=0.05"
    boundary = _edges(spilled)
    assert few < boundary <= exact
    pointed = engine(1, spill=0.05, points=3)  # and each prompt also joins in its own 3 nearest lists
    pointed.scan()
    assert _method(pointed) == "ivf/nprobe=1/spill=0.05/points=3"
    assert boundary < _edges(pointed) <= exact
    split = engine(4, spill=0.05, max_list=16)  # lists of more than 16 prompts split for the join
    split.scan()
    assert _method(split) == "ivf/nprobe=4/spill=0.05/maxlist=16"
    # Lists of at most 16 prompts are a much finer partition: four probes find fewer pairs than one
    # probe of the unsplit lists, but still nearly all (0.976 when written), and no false one.
    assert _edges(split) <= exact and len(_edges(split)) > 0.95 * len(exact)
    every = engine(10_000)  # capped at the number of lists: every list meets every list
    every.scan()
    assert _method(every) == "ivf/nprobe=10000"
    assert few < _edges(every) == exact  # one probe misses some edges; all lists miss none
