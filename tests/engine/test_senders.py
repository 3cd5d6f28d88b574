"""The sender index gives who-else exactly the rows a DuckDB GROUP BY over all exchanges gives.

Real DuckDB, real FAISS, the fast-tier encoder (distilled from the packaged model) on synthetic
traffic with campaigns, viral prompts and organic cover, so hits span many accounts and repeats.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest

import index as faiss_index
from engine import Engine
from engine.config import EngineConfig
from engine.ingest.fingerprint import fingerprint, normalize
from engine.query.senders import DIR_NAME, SenderIndex
from engine.query.who_else import prepare_queries, stored_hits
from synth import SynthConfig, write_synth
from tests.fixtures.corpora import perturb
from tests.fixtures.traffic import write_jsonl

REFERENCE_SQL = """
    WITH hits AS (
        SELECT query_index, prompt_id, max(similarity) AS similarity, bool_or(exact) AS exact
        FROM (SELECT query_index, prompt_id, similarity, false AS exact FROM ann_hits
              UNION ALL
              SELECT q.query_index, p.prompt_id, 1.0, true FROM query_prints q
              JOIN prompts p ON p.fingerprint = q.fingerprint)
        GROUP BY query_index, prompt_id)
    SELECT h.query_index, e.account_id, count(*) AS n, max(h.similarity) AS s, min(e.ts), max(e.ts),
           bool_or(h.exact)
    FROM hits h JOIN exchanges e ON e.prompt_id = h.prompt_id
    GROUP BY h.query_index, e.account_id
    ORDER BY h.query_index, s DESC, n DESC, e.account_id"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, static_encoder):
    root = tmp_path_factory.mktemp("senders")
    traffic = write_synth(SynthConfig(exchanges=6000, seed=11), root / "traffic.jsonl").path
    engine = Engine(root / "ws", config=EngineConfig(encoder="static"), encoder=static_encoder)
    engine.ingest([traffic])
    engine.embed()
    return engine


def _queries(engine: Engine) -> list[str]:
    with engine.store.connect() as con:
        texts = [r[0] for r in con.execute(
            "SELECT text FROM prompts ORDER BY n_accounts DESC, prompt_id LIMIT 15").fetchall()]
        texts += [r[0] for r in con.execute(
            "SELECT text FROM prompts ORDER BY hash(prompt_id) LIMIT 15").fetchall()]
    rng = random.Random(2)
    return texts + [perturb(t, rng) for t in texts[:10]] + ["a prompt nobody in this traffic ever sent, surely"]


def _reference(engine: Engine, queries: list[str]) -> list[tuple]:
    normals = [normalize(q) for q in queries]
    result = faiss_index.range_search(engine._index(), engine.encoder.encode(normals), engine.threshold)
    with engine.store.connect() as con:
        con.register("ann_hits", pa.table({
            "query_index": np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(result.lims)),
            "prompt_id": result.ids.astype(np.int64),
            "similarity": np.minimum(result.sims.astype(np.float32), 1.0)}))
        con.register("query_prints", pa.table({
            "query_index": np.arange(len(queries), dtype=np.int64),
            "fingerprint": pa.array([fingerprint(t) for t in normals], pa.int64())}))
        return con.execute(REFERENCE_SQL).fetchall()


def test_who_else_rows_equal_a_group_by_over_every_exchange(workspace):
    queries = _queries(workspace)
    rows = workspace.who_else(queries).rows
    expected = _reference(workspace, queries)
    assert len(expected) > 200  # many (query, account) pairs, so the comparison means something
    got = [(r.query_index, r.account_id, r.n_matches, r.max_similarity, r.first_seen, r.last_seen, r.exact)
           for r in rows]
    want = [(q, a, n, round(float(s), 4), f, lst, ex) for q, a, n, s, f, lst, ex in expected]
    assert got == want
    # Each example is one of the account's matching prompts, and its text is that prompt's.
    with workspace.store.connect() as con:
        text_of = dict(con.execute("SELECT prompt_id, text FROM prompts").fetchall())
        sent = set(con.execute("SELECT account_id, prompt_id FROM exchanges").fetchall())
    for r in rows:
        assert (r.account_id, r.example_prompt_id) in sent
        assert r.example == text_of[r.example_prompt_id]


def test_new_traffic_rebuilds_the_index_and_a_damaged_one_is_rebuilt(workspace, tmp_path):
    query = _queries(workspace)[0]
    before = {r.account_id for r in workspace.who_else([query]).rows}
    folder = workspace.workspace / "index" / DIR_NAME
    assert (folder / "meta.json").exists()
    extra = write_jsonl(tmp_path / "late.jsonl",
                        [{"account_id": "late_arrival", "timestamp": 1790000000, "prompt": query}])
    workspace.ingest([extra])
    after = {r.account_id for r in workspace.who_else([query]).rows}
    assert after == before | {"late_arrival"}

    (folder / "meta.json").write_text("{not json", encoding="utf-8")
    fresh = Engine(workspace.workspace, config=EngineConfig(encoder="static"), encoder=workspace.encoder)
    assert {r.account_id for r in fresh.who_else([query]).rows} == after
    assert json.loads((folder / "meta.json").read_text(encoding="utf-8"))["key"]  # rewritten


def test_an_unchanged_workspace_is_answered_without_opening_the_database(workspace, monkeypatch, tmp_path):
    query = _queries(workspace)[1]
    first = workspace.who_else([query]).rows

    def refuse():
        raise AssertionError("who-else opened the database although nothing changed")

    with monkeypatch.context() as m:
        m.setattr(workspace.store, "connect", refuse)
        assert workspace.who_else([query]).rows == first
    # A commit by anyone changes the files, and the next lookup sees it.
    other = Engine(workspace.workspace, config=EngineConfig(encoder="static"), encoder=workspace.encoder)
    other.ingest([write_jsonl(tmp_path / "later.jsonl",
                              [{"account_id": "later_arrival", "timestamp": 1790000500, "prompt": query}])])
    assert "later_arrival" in {r.account_id for r in workspace.who_else([query]).rows}


def test_account_codes_are_found_as_arrays_in_utf8_order(tmp_path):
    """`codes_of` (a snapshot's per-account arrays) agrees with the one-name binary search, for names
    whose UTF-8 bytes and code points order alike, and answers -1 for an account that sent nothing."""
    names = ["zoë", "émile", "abc", "Ωmega", "ab", "abc-2", "日本", "ZED", "a b"]
    rows = [{"account_id": n, "timestamp": 1_700_000_000 + i, "prompt": f"prompt number {i} from {n}"}
            for i, n in enumerate(names)]
    engine = Engine(tmp_path / "ws")
    engine.ingest([write_jsonl(tmp_path / "t.jsonl", rows)])
    with engine.store.connect() as con:
        senders = SenderIndex.current(engine.store, con)
    asked = names + ["nobody", "zoe", "", "日本語"]
    want = [senders.code_of(n) for n in asked]
    assert sorted(c for c in want if c is not None) == list(range(len(names)))
    assert senders.codes_of(pa.array(asked)).tolist() == [-1 if c is None else c for c in want]
    assert [senders.account(c) for c in range(len(names))] == sorted(names)


def test_grouping_is_the_same_when_its_sort_key_would_not_fit_64_bits(workspace):
    """Query numbers too large for the one-integer sort keys take the lexsort path, with equal groups."""
    queries = _queries(workspace)
    normals, prints = prepare_queries(queries)
    with workspace.store.connect() as con:
        senders = SenderIndex.current(workspace.store, con)
    hits = stored_hits(senders, workspace._index(), workspace.encoder.encode(normals), prints, workspace.threshold)
    small = senders.group(hits.query_index, hits.prompt_id, hits.similarity, hits.exact)
    huge = senders.group(hits.query_index + 2 ** 52, hits.prompt_id, hits.similarity, hits.exact)
    assert len(small.query_index) > 200
    assert np.array_equal(huge.query_index - 2 ** 52, small.query_index)
    for field in ("account_code", "n_matches", "max_similarity", "first_us", "last_us", "example_id", "exact"):
        assert np.array_equal(getattr(huge, field), getattr(small, field)), field
