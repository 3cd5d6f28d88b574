"""Ingest against a real DuckDB workspace: formats, bad rows, atomicity, idempotence, resume."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine import Engine
from engine.errors import IngestError
from engine.ingest.loader import Ingestor
from tests.fixtures.traffic import write_jsonl

GOOD = [
    {"account_id": "a1", "timestamp": "2026-03-01T10:00:00Z", "prompt": "Explain photosynthesis simply", "plan": "pro"},
    {"account_id": "a2", "timestamp": 1772359200, "prompt": "EXPLAIN  photosynthesis simply", "model": "m1"},
    {"account_id": 17, "timestamp": "2026-03-02 08:00:00", "prompt": "Write a limerick about cats"},
]


def counts(ws: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(ws / "copyhound.duckdb"), read_only=True)
    try:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("exchanges", "prompts", "accounts"))
    finally:
        con.close()


def test_jsonl_loads_normalises_and_keeps_metadata(tmp_path):
    ws = tmp_path / "ws"
    result = Engine(ws).ingest([write_jsonl(tmp_path / "a.jsonl", GOOD)])
    f = result.files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (3, 3, 0)
    # Two spellings of one prompt fold into one normalised prompt.
    assert f.new_prompts == 2
    con = duckdb.connect(str(ws / "copyhound.duckdb"), read_only=True)
    meta, ts = con.execute("SELECT meta, ts FROM exchanges WHERE account_id = 'a1'").fetchone()
    assert json.loads(meta) == {"plan": "pro"}
    assert str(ts) == "2026-03-01 10:00:00"
    assert con.execute("SELECT n_accounts FROM prompts WHERE normalized = 'explain photosynthesis simply'"
                       ).fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM accounts WHERE account_id = '17'").fetchone()[0] == 1
    con.close()


def test_reingest_same_file_and_same_rows_is_a_no_op(tmp_path):
    ws = tmp_path / "ws"
    src = write_jsonl(tmp_path / "a.jsonl", GOOD)
    engine = Engine(ws)
    engine.ingest([src])
    before = counts(ws)
    again = engine.ingest([src]).files[0]
    assert again.already_ingested and again.rows_loaded == 0
    # The same rows in another file (another sha256) are recognised by their derived exchange ids.
    copy = write_jsonl(tmp_path / "b.jsonl", list(reversed(GOOD)))
    other = engine.ingest([copy]).files[0]
    assert other.rows_loaded == 0 and other.rows_duplicate == 3
    assert counts(ws) == before


BAD_CASES = [
    ("not json at all", "malformed JSON"),
    ('["a", "list"]', "not a JSON object"),
    ({"timestamp": "2026-03-01", "prompt": "hello there"}, "missing field account_id"),
    ({"account_id": "x", "prompt": "hello there"}, "missing field timestamp"),
    ({"account_id": "x", "timestamp": "2026-03-01"}, "missing field prompt"),
    ({"account_id": "x", "timestamp": "yesterday-ish", "prompt": "hello"}, "unparseable timestamp"),
    ({"account_id": ["x"], "timestamp": "2026-03-01", "prompt": "hello"}, "wrong type for account_id"),
    ({"account_id": "x", "timestamp": "2026-03-01", "prompt": 42}, "wrong type for prompt"),
    ({"account_id": "x", "timestamp": "2026-03-01", "prompt": "   \u200b  "}, "empty prompt"),
    ({"account_id": "x", "timestamp": "2026-03-01", "prompt": "ab\u0000\u0001\u0002\u0003cd"}, "binary"),
    ({"account_id": "x", "timestamp": "2026-03-01", "prompt": "x" * 300_000}, "prompt too long"),
]


@pytest.mark.parametrize("bad,reason", BAD_CASES, ids=[r for _, r in BAD_CASES])
def test_each_bad_row_kind_names_file_and_line_and_writes_nothing(tmp_path, bad, reason):
    ws = tmp_path / "ws"
    engine = Engine(ws)
    engine.ingest([write_jsonl(tmp_path / "seed.jsonl", GOOD[:1])])
    before = counts(ws)
    src = write_jsonl(tmp_path / "bad.jsonl", [GOOD[1], GOOD[2], bad])
    with pytest.raises(IngestError) as err:
        engine.ingest([src])
    message = str(err.value)
    assert message.startswith(f"{src}:3: ")
    assert reason in message
    assert "\n" not in message
    assert counts(ws) == before


def test_invalid_utf8_line_is_reported(tmp_path):
    src = tmp_path / "bin.jsonl"
    src.write_bytes(json.dumps(GOOD[0]).encode() + b"\n" + b'{"account_id":"q","prompt":"\xff\xfe"}\n')
    with pytest.raises(IngestError, match=r"bin.jsonl:2: invalid UTF-8"):
        Engine(tmp_path / "ws").ingest([src])


def test_skip_mode_loads_good_rows_and_quarantines_bad_ones(tmp_path):
    ws = tmp_path / "ws"
    src = write_jsonl(tmp_path / "mixed.jsonl", [GOOD[0], "{broken", GOOD[2]])
    f = Engine(ws).ingest([src], on_error="skip").files[0]
    assert (f.rows_loaded, f.rows_rejected) == (2, 1)
    rejected = [json.loads(line) for line in Path(f.quarantine).read_text().splitlines()]
    assert rejected == [{"file": str(src), "line": 2, "reason": "malformed JSON", "raw": "{broken"}]


def test_csv_gzip_with_column_mapping(tmp_path):
    src = tmp_path / "t.csv.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write("user,time,text,region\n")
        fh.write('u1,2026-03-01T00:00:00Z,"Hello, world: explain ""quotes""",eu\n')
        fh.write("u2,1772323200,Summarise this paragraph,us\n")
    f = Engine(tmp_path / "ws").ingest(
        [src], mapping={"account_id": "user", "timestamp": "time", "prompt": "text"}).files[0]
    assert (f.format, f.rows_loaded) == ("csv", 2)
    con = duckdb.connect(str(tmp_path / "ws" / "copyhound.duckdb"), read_only=True)
    assert json.loads(con.execute("SELECT meta FROM exchanges WHERE account_id = 'u1'").fetchone()[0]) == {"region": "eu"}
    con.close()


def test_csv_missing_column_is_one_clear_error(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("account_id,timestamp,text\na,2026-03-01,hi\n")
    with pytest.raises(IngestError, match=r"t.csv: missing column\(s\) prompt .*--map"):
        Engine(tmp_path / "ws").ingest([src])


def test_csv_bad_row_has_its_line(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("account_id,timestamp,prompt\na,2026-03-01,hi there\nb,not-a-time,hello\n")
    with pytest.raises(IngestError, match=r"t.csv:3: unparseable timestamp"):
        Engine(tmp_path / "ws").ingest([src])


def test_parquet(tmp_path):
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"account_id": ["p1", "p2"], "timestamp": pa.array([1772323200, 1772326800]),
                             "prompt": ["What is entropy?", "what is ENTROPY?"], "ip": ["1.2.3.4", None]}), src)
    f = Engine(tmp_path / "ws").ingest([src]).files[0]
    assert (f.format, f.rows_loaded, f.new_prompts) == ("parquet", 2, 1)


def test_empty_and_unknown_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(IngestError, match="empty.jsonl: the file holds no rows"):
        Engine(tmp_path / "ws").ingest([empty])
    weird = tmp_path / "x.xlsx"
    weird.write_text("x")
    with pytest.raises(IngestError, match="unknown file type"):
        Engine(tmp_path / "ws").ingest([weird])


def test_killed_ingest_resumes_at_next_batch(tmp_path, monkeypatch):
    rows = [{"account_id": f"a{i % 7}", "timestamp": 1772323200 + i, "prompt": f"question number {i}"}
            for i in range(50)]
    src = write_jsonl(tmp_path / "many.jsonl", rows)
    engine = Engine(tmp_path / "ws")
    ingestor = Ingestor(engine.store, batch_rows=10)
    calls = {"n": 0}

    def dying_progress(stage, done, total):
        if stage.startswith("load"):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # as if killed after two committed batches

    ingestor.progress = dying_progress
    with pytest.raises(KeyboardInterrupt):
        ingestor.ingest(src)
    assert counts(tmp_path / "ws")[0] == 20
    resumed = Ingestor(engine.store, batch_rows=10).ingest(src)
    assert counts(tmp_path / "ws")[0] == 50
    assert resumed.rows_loaded == 50 and resumed.rows_duplicate == 0


def test_prompt_ids_follow_first_seen_then_first_line(tmp_path):
    # Times run backwards through the file and some repeat, so the order of first times and the order
    # of lines disagree; ids are handed out by first time, then first line, within each batch.
    rows = [{"account_id": f"a{i % 3}", "timestamp": 1772323200 + (40 - i) // 2, "prompt": f"ask {i % 30}"}
            for i in range(40)]
    src = write_jsonl(tmp_path / "order.jsonl", rows)
    engine = Engine(tmp_path / "ws")
    Ingestor(engine.store, batch_rows=25).ingest(src)
    con = duckdb.connect(str(tmp_path / "ws" / "copyhound.duckdb"), read_only=True)
    try:
        got = con.execute("SELECT text FROM prompts ORDER BY prompt_id").fetchall()
    finally:
        con.close()
    expected = []
    for lo, hi in ((0, 25), (25, 40)):
        first: dict[str, tuple[int, int]] = {}
        for line, row in enumerate(rows[lo:hi], start=lo):
            first.setdefault(row["prompt"], (row["timestamp"], line))
        expected += sorted((p for p in first if p not in expected), key=first.get)
    assert [t for (t,) in got] == expected


def test_resume_upgrades_staging_left_by_an_older_version(tmp_path):
    rows = [{"account_id": f"a{i % 7}", "timestamp": 1772323200 + i, "prompt": f"Question  number {i % 20}"}
            for i in range(50)]
    src = write_jsonl(tmp_path / "many.jsonl", rows)
    Engine(tmp_path / "straight").ingest([src])
    engine = Engine(tmp_path / "ws")

    def dying_progress(stage, done, total):
        if stage.startswith("load") and done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Ingestor(engine.store, batch_rows=10, progress=dying_progress).ingest(src)
    # What an older version left: the norm table keyed by the raw prompt, no fingerprint on the stage.
    con = duckdb.connect(str(tmp_path / "ws" / "copyhound.duckdb"))
    con.execute("""CREATE TABLE norm_old AS SELECT DISTINCT s.prompt, n.normalized, n.fingerprint, NULL::VARCHAR AS junk
                   FROM stage_1 s JOIN norm_1 n ON n.fingerprint = s.fp""")
    con.execute("ALTER TABLE stage_1 DROP COLUMN fp")
    con.execute("DROP TABLE norm_1")
    con.execute("ALTER TABLE norm_old RENAME TO norm_1")
    con.close()
    resumed = Ingestor(engine.store, batch_rows=10).ingest(src)
    assert resumed.rows_loaded == 50 and resumed.rows_duplicate == 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'straight' / 'copyhound.duckdb'}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{tmp_path / 'ws' / 'copyhound.duckdb'}' AS b (READ_ONLY)")
    for table in ("prompts", "exchanges", "accounts"):
        assert con.execute(f"SELECT * FROM a.{table} EXCEPT ALL SELECT * FROM b.{table}").fetchall() == []
        assert con.execute(f"SELECT count(*) FROM a.{table}").fetchall() == \
            con.execute(f"SELECT count(*) FROM b.{table}").fetchall()


def test_quarantine_keeps_the_line_of_a_row_found_bad_after_staging(tmp_path):
    # A good JSONL row's raw text is not staged; a conflicting id found later reads its line again.
    lines = [json.dumps({"exchange_id": "e1", "account_id": "a", "timestamp": 1772323200, "prompt": "one"}),
             "",
             json.dumps({"exchange_id": "e1", "account_id": "b", "timestamp": 1772323200, "prompt": "two"},
                        indent=None, separators=(",", ":")) + "  ",
             json.dumps({"account_id": "c", "timestamp": 1772323201, "prompt": "three"})]
    src = tmp_path / "ids.jsonl"
    src.write_text("\r\n".join(lines) + "\r\n")
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    assert result.files[0].rows_rejected == 1
    rejected = [json.loads(x) for x in Path(result.files[0].quarantine).read_text().splitlines()]
    assert [(r["line"], r["raw"]) for r in rejected] == [(3, lines[2])]
    assert "appears twice" in rejected[0]["reason"]
