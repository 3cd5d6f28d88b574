"""Ingest refuses hostile and ambiguous rows with a FILE:LINE reason and loses nothing (issue 17).

Conflicting exchange ids, per-row limits checked before DuckDB parses a row, column names that need
quoting, encodings, timestamps outside the accepted range, control characters in ids, and CSV line
numbers that count physical lines. Real DuckDB workspaces throughout.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from engine import Engine
from engine.config import MAX_FIELD_CHARS, MAX_JSON_DEPTH, MAX_LINE_BYTES
from engine.errors import IngestError
from tests.fixtures.traffic import write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def row(account: str = "a1", ts: str | int = "2026-03-01T10:00:00Z", prompt: str = "Explain photosynthesis",
        **extra) -> dict:
    return {"account_id": account, "timestamp": ts, "prompt": prompt, **extra}


def stored(ws: Path) -> list[tuple]:
    con = duckdb.connect(str(ws / "copyhound.duckdb"), read_only=True)
    try:
        return con.execute("SELECT exchange_id, account_id, line FROM exchanges ORDER BY file_id, line").fetchall()
    finally:
        con.close()


def quarantined(result) -> list[tuple[int, str]]:
    f = result.files[0]
    return [(r["line"], r["reason"]) for r in map(json.loads, Path(f.quarantine).read_text().split("\n")[:-1])]


# ---------------------------------------------------------------------- conflicting exchange ids
def test_conflicting_id_within_a_file_is_a_bad_row(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [
        row(exchange_id="e1"), row(exchange_id="e2", prompt="Write a haiku"),
        row(exchange_id="e1", account="someone_else"),          # another exchange under e1
        row(exchange_id="e1"),                                  # an identical re-send: a duplicate
    ])
    with pytest.raises(IngestError, match=r"a.jsonl:3: exchange id e1 appears twice in this file with other "
                                          r"content \(first at line 1\); nothing was written"):
        Engine(tmp_path / "ws").ingest([src])
    assert not (tmp_path / "ws" / "copyhound.duckdb").exists() or stored(tmp_path / "ws") == []
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    f = result.files[0]
    assert (f.rows_loaded, f.rows_duplicate, f.rows_rejected) == (2, 1, 1)
    assert quarantined(result) == [(3, "exchange id e1 appears twice in this file with other content "
                                       "(first at line 1)")]
    assert stored(tmp_path / "ws") == [("e1", "a1", 1), ("e2", "a1", 2)]


def test_conflicting_id_across_files_is_a_bad_row_and_identical_resends_stay_idempotent(tmp_path):
    ws = tmp_path / "ws"
    engine = Engine(ws)
    first = [row(exchange_id=f"ex_{i}", account=f"acct_{i}", prompt=f"question {i} about tides") for i in range(3)]
    engine.ingest([write_jsonl(tmp_path / "one.jsonl", first)])
    # A second file of per-file counters: ex_0 is another exchange (other account, time and prompt).
    second = [first[1], row(exchange_id="ex_0", account="acct_9", ts="2026-03-05T00:00:00Z",
                            prompt="a different question entirely"), row(exchange_id="ex_7")]
    src = write_jsonl(tmp_path / "two.jsonl", second)
    with pytest.raises(IngestError, match=r"two.jsonl:2: exchange id ex_0 already stored with other content"):
        engine.ingest([src])
    assert len(stored(ws)) == 3
    result = engine.ingest([src], on_error="skip")
    f = result.files[0]
    assert (f.rows_loaded, f.rows_duplicate, f.rows_rejected) == (1, 1, 1)
    assert quarantined(result) == [(2, "exchange id ex_0 already stored with other content")]
    assert [r[0] for r in stored(ws)] == ["ex_0", "ex_1", "ex_2", "ex_7"]


@pytest.mark.parametrize("change", [{"account": "other"}, {"ts": "2026-03-01T10:00:01Z"},
                                    {"prompt": "Explain something else"}], ids=["account", "time", "prompt"])
def test_any_of_account_time_prompt_makes_a_conflict(tmp_path, change):
    src = write_jsonl(tmp_path / "a.jsonl", [row(exchange_id="x"), row(exchange_id="x", **change)])
    with pytest.raises(IngestError, match="a.jsonl:2: exchange id x appears twice"):
        Engine(tmp_path / "ws").ingest([src])


def test_same_prompt_spelled_otherwise_is_the_same_exchange(tmp_path):
    # Prompts compare by their normalised fingerprint: a re-send with other spacing is not a conflict.
    src = write_jsonl(tmp_path / "a.jsonl", [row(exchange_id="x"), row(exchange_id="x", prompt="EXPLAIN  photosynthesis")])
    f = Engine(tmp_path / "ws").ingest([src]).files[0]
    assert (f.rows_loaded, f.rows_duplicate) == (1, 1)


# ---------------------------------------------------------------------- per-row limits
def test_deeply_nested_row_is_named_and_skipped(tmp_path):
    deep = '{"account_id": "b", "timestamp": "2026-03-01T00:00:00Z", "prompt": "hi you", "x": ' + \
        "[" * 300_000 + "]" * 300_000 + "}"
    src = write_jsonl(tmp_path / "deep.jsonl", [row(), deep, row(account="c")])
    with pytest.raises(IngestError, match=rf"deep.jsonl:2: JSON nested deeper than {MAX_JSON_DEPTH} levels"):
        Engine(tmp_path / "ws").ingest([src])
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    assert result.files[0].rows_loaded == 2
    assert quarantined(result) == [(2, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")]


def test_nesting_just_under_the_limit_loads(tmp_path):
    nested = {"k": 1}
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = {"k": nested}
    src = write_jsonl(tmp_path / "ok.jsonl", [row(meta=nested), row(prompt="a {[ bracketed ]} " * 50)])
    assert Engine(tmp_path / "ws").ingest([src]).files[0].rows_loaded == 2


def test_huge_field_is_named_and_skipped(tmp_path):
    big = MAX_FIELD_CHARS + 1_000_000
    src = write_jsonl(tmp_path / "big.jsonl", [row(), row(account="b", response="r" * big), row(account="c")])
    reason = f"field 'response' too large ({big} characters; limit {MAX_FIELD_CHARS})"
    with pytest.raises(IngestError, match=re.escape(f"big.jsonl:2: {reason}")) as err:
        Engine(tmp_path / "ws").ingest([src])
    assert "COPYHOUND_DUCKDB_MEMORY" not in str(err.value)
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    assert result.files[0].rows_loaded == 2
    assert quarantined(result) == [(2, reason)]


def test_20mb_response_of_issue_17_is_one_bad_row(tmp_path):
    src = write_jsonl(tmp_path / "big.jsonl", [row(), row(account="b", response="r" * 20_000_000), row(account="c")])
    with pytest.raises(IngestError, match=r"big.jsonl:2: line too long \(20000\d+ bytes; limit") as err:
        Engine(tmp_path / "ws").ingest([src])
    assert "COPYHOUND_DUCKDB_MEMORY" not in str(err.value)
    assert Engine(tmp_path / "ws").ingest([src], on_error="skip").files[0].rows_loaded == 2


def test_huge_prompt_is_too_long_not_a_memory_error(tmp_path):
    src = write_jsonl(tmp_path / "p.jsonl", [row(), row(prompt="word " * 1_000_000)])
    with pytest.raises(IngestError, match=r"p.jsonl:2: prompt too long \(5000000 characters; limit 200000\)"):
        Engine(tmp_path / "ws").ingest([src])


def test_over_long_line_is_named_and_never_read_whole(tmp_path):
    src = tmp_path / "long.jsonl"
    with open(src, "w") as fh:
        fh.write(json.dumps(row()) + "\n")
        fh.write('{"account_id": "b", "prompt": "' + "z" * (MAX_LINE_BYTES + 10) + '"}\n')
        fh.write(json.dumps(row(account="c")) + "\n")
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    assert result.files[0].rows_loaded == 2
    [(line, reason)] = quarantined(result)
    size = len(src.read_text().splitlines(keepends=True)[1].encode())
    assert (line, reason) == (2, f"line too long ({size} bytes; limit {MAX_LINE_BYTES})")
    raw = json.loads(Path(result.files[0].quarantine).read_text())["raw"]
    assert raw.startswith('{"account_id": "b"') and len(raw) <= 1000


# ---------------------------------------------------------------------- --map with names that need quoting
@pytest.mark.parametrize("name", ["we'ird\"col", "back\\slash", "dotted.name", "with space", "a/b~c", "$.x[0]"])
def test_map_accepts_any_column_name(tmp_path, name):
    rows = [{"account_id": "a", "timestamp": "2026-03-01T00:00:00Z", name: "What is entropy?", "extra": 1}]
    f = Engine(tmp_path / "ws").ingest([write_jsonl(tmp_path / "m.jsonl", rows)], mapping={"prompt": name}).files[0]
    assert f.rows_loaded == 1
    con = duckdb.connect(str(tmp_path / "ws" / "copyhound.duckdb"), read_only=True)
    text, meta = con.execute("SELECT p.text, e.meta FROM exchanges e JOIN prompts p USING (prompt_id)").fetchone()
    con.close()
    assert text == "What is entropy?"
    assert json.loads(meta) == {"extra": 1}  # the mapped column is not kept twice


def test_map_csv_column_with_quotes(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text('account_id,timestamp,"we\'ird""col"\na,2026-03-01,Hello there\n')
    f = Engine(tmp_path / "ws").ingest([src], mapping={"prompt": "we'ird\"col"}).files[0]
    assert f.rows_loaded == 1


# ---------------------------------------------------------------------- encodings
def test_utf8_bom_is_accepted(tmp_path):
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + (json.dumps(row()) + "\n" + json.dumps(row(account="b")) + "\n").encode())
    assert Engine(tmp_path / "ws").ingest([src]).files[0].rows_loaded == 2
    csv_src = tmp_path / "bom.csv"
    csv_src.write_bytes(b"\xef\xbb\xbfaccount_id,timestamp,prompt\nz,2026-03-01,Hello there\n")
    assert Engine(tmp_path / "ws").ingest([csv_src]).files[0].rows_loaded == 1


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("encoding,suffix", [("utf-16", ".jsonl"), ("utf-16-le", ".jsonl"), ("utf-16", ".csv"),
                                             ("utf-32", ".jsonl")])
def test_utf16_file_is_refused_in_both_modes(tmp_path, on_error, encoding, suffix):
    src = tmp_path / f"wide{suffix}"
    text = (json.dumps(row()) + "\n") if suffix == ".jsonl" else "account_id,timestamp,prompt\na,2026-03-01,hi\n"
    src.write_bytes(text.encode(encoding))
    with pytest.raises(IngestError, match=r"wide\.(jsonl|csv): the file is (UTF-16|UTF-32|not UTF-8)") as err:
        Engine(tmp_path / "ws").ingest([src], on_error=on_error)
    assert "\n" not in str(err.value)


def test_latin1_file_is_refused_and_one_bad_line_is_a_bad_row(tmp_path):
    src = tmp_path / "latin.jsonl"
    src.write_bytes((json.dumps(row(prompt="café crème"), ensure_ascii=False) + "\n").encode("latin-1"))
    with pytest.raises(IngestError, match="latin.jsonl: not UTF-8 text"):
        Engine(tmp_path / "ws").ingest([src], on_error="skip")


# ---------------------------------------------------------------------- timestamps and ids
BAD_TIMES = [
    ("1999-12-31T23:59:59Z", "out of range"), ("2126-01-01T00:00:00Z", "out of range"),
    ("infinity", "out of range"), ("-infinity", "out of range"), ("epoch", "out of range"),
    (1772323200000000, "out of range"),    # epoch microseconds
    (172323200000, "out of range"),        # epoch seconds past 1e11 (read as milliseconds: 1975)
    (-5, "out of range"), (0, "out of range"),
    ("2026-03-01T10:00:00+25:00", "invalid UTC offset"), ("2026-03-01T10:00:00-12:60", "invalid UTC offset"),
    ("2026-03-01 10:00:00+9999", "invalid UTC offset"),
]


@pytest.mark.parametrize("ts,reason", BAD_TIMES, ids=[str(t) for t, _ in BAD_TIMES])
def test_timestamps_outside_the_range_or_with_bad_offsets_are_bad_rows(tmp_path, ts, reason):
    src = write_jsonl(tmp_path / "t.jsonl", [row(), row(ts=ts)])
    with pytest.raises(IngestError, match=rf"t.jsonl:2: .*{reason}") as err:
        Engine(tmp_path / "ws").ingest([src])
    assert "\n" not in str(err.value)


def test_good_timestamps_still_load(tmp_path):
    times = ["2026-03-01T10:00:00+14:00", "2026-03-01T10:00:00-12:00", "2026-03-01T10:00:00+05:30",
             1772323200, 1772323200123, 1772323200.5, "2000-01-01T00:00:00Z", "2026-03-01"]
    src = write_jsonl(tmp_path / "t.jsonl", [row(ts=t, account=f"a{i}") for i, t in enumerate(times)])
    assert Engine(tmp_path / "ws").ingest([src]).files[0].rows_loaded == len(times)


@pytest.mark.parametrize("account", ["nul\u0000id", "new\nline", "tab\there", "c1\u0085x", "del\u007f", "ls\u2028x"],
                         ids=["nul", "newline", "tab", "c1", "del", "line-separator"])
def test_account_ids_with_control_characters_are_bad_rows(tmp_path, account):
    src = write_jsonl(tmp_path / "c.jsonl", [row(), row(account=account)])
    with pytest.raises(IngestError, match=r"c.jsonl:2: account_id .* holds a control character") as err:
        Engine(tmp_path / "ws").ingest([src])
    assert "\n" not in str(err.value) and "\u0000" not in str(err.value)


# ---------------------------------------------------------------------- CSV physical lines
def test_csv_errors_name_the_physical_line(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text(
        "account_id,timestamp,prompt\n"                # 1
        'a,2026-03-01,"multi\nline\nprompt"\n'         # 2-4
        "b,2026-03-01,x,extra\n"                       # 5: too many fields
        'c,2026-03-01,"two\nlines"\n'                  # 6-7
        "\n"                                           # 8: blank
        "d,bad,hello\n"                                # 9: bad time
        "e,2026-03-01,last one\n"                      # 10
    )
    with pytest.raises(IngestError, match=r"t.csv:5: expected 3 fields, found 4 \(and 1 more bad row\)"):
        Engine(tmp_path / "ws").ingest([src])
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    assert quarantined(result) == [(5, "expected 3 fields, found 4"), (9, "unparseable timestamp bad")]
    assert [(a, line) for _, a, line in stored(tmp_path / "ws")] == [("a", 2), ("c", 6), ("e", 10)]


def test_csv_gzip_semicolons_and_an_over_long_record(tmp_path):
    src = tmp_path / "t.csv.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write("account_id;timestamp;prompt\n")
        fh.write("a;2026-03-01;Hello; there\n".replace("Hello; there", '"Hello; there"'))
        fh.write('b;2026-03-01;"' + "q" * (MAX_LINE_BYTES + 5) + '"\n')
        fh.write("c;2026-03-01;Still read\n")
    result = Engine(tmp_path / "ws").ingest([src], on_error="skip")
    assert result.files[0].rows_loaded == 2
    [(line, reason)] = quarantined(result)
    assert line == 3 and reason.startswith("line 3 too long")


# ---------------------------------------------------------------------- the command line: one line, exit 2
def _cli(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "ingest", "-q", "-w", str(tmp_path / "ws"),
                           *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    deep = '{"account_id": "b", "timestamp": 1772323200, "prompt": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}"
    cases = {
        "conflict.jsonl": [row(exchange_id="e"), row(exchange_id="e", account="z")],
        "deep.jsonl": [row(), deep],
        "time.jsonl": [row(ts="2026-03-01T00:00:00+25:00")],
        "nul.jsonl": [row(account="a\u0000b")],
    }
    for name, rows in cases.items():
        done = _cli(tmp_path, write_jsonl(tmp_path / name, rows))
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert f"{name}:" in done.stderr
    wide = tmp_path / "wide.jsonl"
    wide.write_bytes((json.dumps(row()) + "\n").encode("utf-16"))
    done = _cli(tmp_path, "--on-error", "skip", wide)
    assert done.returncode == 2 and "UTF-16" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # The quoted --map name of issue 17: it loads, no traceback.
    mapped = write_jsonl(tmp_path / "map.jsonl", [{"account_id": "a", "timestamp": 1772323200,
                                                    "we'ird\"col": "What is entropy?"}])
    done = _cli(tmp_path, "--map", "prompt=we'ird\"col", mapped)
    assert done.returncode == 0, done.stderr
