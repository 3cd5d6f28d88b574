"""A seeded fuzz of ingest: >= 10,000 bad rows of every kind mixed with good rows (issue 17).

Every bad row must come back with a FILE:LINE reason naming its true physical line and its kind, and
skip mode must load exactly the good rows: identical re-sends count as duplicates, conflicting ids are
refused, and blank lines, a BOM and multi-line CSV records do not shift any line number.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pytest

from engine import Engine
from engine.config import MAX_FIELD_CHARS, MAX_LINE_BYTES, MAX_PROMPT_CHARS
from engine.errors import IngestError
from tests.fixtures.traffic import write_jsonl

WORDS = ("tide moon salt river graph token cache kernel lemma proof cat ship orbit prism sonnet ledger "
         "quartz vector garden hinge").split()
BAD_TIMES = ["1999-06-01T00:00:00Z", "2150-01-01T00:00:00Z", "infinity", "-infinity", 1772323200000000,
             172323200000, -1, "epoch"]
BAD_OFFSETS = ["2026-03-01T10:00:00+25:00", "2026-03-01T10:00:00-12:60", "2026-03-01 10:00:00+3000"]
CONTROL_IDS = ["a\u0000b", "a\nb", "a\rb", "a\u0085b", "a\u001bb", "a\u2028b"]


class Fuzz:
    """Builds the file row by row, remembering what each line should become."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[bytes] = []
        self.bad: dict[int, str] = {}        # line -> expected reason fragment
        self.good: dict[int, str] = {}       # line -> account id, for rows that must be stored
        self.ids: dict[str, tuple] = {}      # exchange id -> (account, ts, prompt) of its first good row
        self.n = 0

    def prompt(self) -> str:
        self.n += 1
        return f"{' '.join(self.rng.choices(WORDS, k=6))} number {self.n}"

    def good_row(self, **over) -> dict:
        r = self.rng
        ts = r.choice([f"2026-0{r.randint(1, 9)}-1{r.randint(0, 9)}T0{r.randint(0, 9)}:00:00Z",
                       1772323200 + r.randint(0, 10**6), (1772323200 + r.randint(0, 10**6)) * 1000,
                       f"2026-03-01T10:00:00+0{r.randint(0, 9)}:30"])
        row = {"account_id": f"acct_{r.randint(0, 400)}", "timestamp": ts, "prompt": self.prompt()}
        if r.random() < 0.5:
            row["exchange_id"] = f"ex_{self.n}"
        if r.random() < 0.2:
            row["meta"] = {"plan": r.choice(["free", "pro"]), "tags": [r.choice(WORDS)]}
        row.update(over)
        return row

    def add(self, line: str | bytes | dict, reason: str | None = None, account: str | None = None) -> None:
        data = line if isinstance(line, bytes) else (
            (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)).encode())
        self.lines.append(data)
        number = len(self.lines)
        if reason is not None:
            self.bad[number] = reason
        elif account is not None:
            self.good[number] = account

    def add_good(self, row: dict | None = None) -> None:
        row = row or self.good_row()
        if "exchange_id" in row:
            self.ids.setdefault(row["exchange_id"], (row["account_id"], row["timestamp"], row["prompt"]))
        self.add(row, account=row["account_id"])

    def add_bad(self, stored_ids: list[str]) -> None:
        r, g = self.rng, self.good_row()
        g.pop("exchange_id", None)
        kind = r.randrange(20)
        if kind == 0:
            self.add(json.dumps(g)[: r.randint(1, 30)], "malformed JSON")
        elif kind == 1:
            self.add(r.choice(["[1, 2]", '"text"', "42", "null"]), "not a JSON object")
        elif kind == 2:
            field = r.choice(["account_id", "timestamp", "prompt"])
            g.pop(field)
            self.add(g, f"missing field {field}")
        elif kind == 3:
            field, value = r.choice([("account_id", ["x"]), ("prompt", 42), ("timestamp", {"t": 1}),
                                     ("prompt", True), ("account_id", 1.5)])
            self.add(dict(g, **{field: value}), f"wrong type for {field}")
        elif kind == 4:
            self.add(dict(g, timestamp=r.choice(["yesterday", "2026-13-45", "12:00"])), "unparseable timestamp")
        elif kind == 5:
            self.add(dict(g, prompt=r.choice(["", "   ", "\u200b\u200b", "\t\n"])), "empty prompt")
        elif kind == 6:
            self.add(dict(g, prompt="ab\u0000\u0001\u0002\u0003cd"), "binary data")
        elif kind == 7:
            self.add(json.dumps(g).encode()[:-2] + b"\xff\xfe" + b'"}', "invalid UTF-8")
        elif kind == 8:
            self.add(dict(g, timestamp=r.choice(BAD_TIMES)), "out of range")
        elif kind == 9:
            self.add(dict(g, timestamp=r.choice(BAD_OFFSETS)), "invalid UTC offset")
        elif kind == 10:
            self.add(dict(g, account_id=r.choice(CONTROL_IDS)), "holds a control character")
        elif kind == 11:
            self.add(dict(g, exchange_id=f"bad{r.choice(CONTROL_IDS)}"), "exchange_id")
        elif kind == 12:
            depth = r.randint(65, 3000)
            self.add(json.dumps(g)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}", "nested deeper")
        elif kind in (13, 14) and self.ids:
            # Another exchange under an id this file used already.
            eid = r.choice(list(self.ids))
            self.add(dict(g, exchange_id=eid), f"exchange id {eid} appears twice in this file")
        elif kind == 15:
            eid = r.choice(stored_ids)
            self.add(dict(g, exchange_id=eid), f"exchange id {eid} already stored")
        elif kind == 16:
            self.add(dict(g, account_id=r.choice(["", "   "])), "missing field account_id")
        else:
            self.add(r.choice(["{", '{"account_id": "x"', "}{", "{'a': 1}", '{"a": 1']), "malformed JSON")


def stored_lines(ws: Path, src: Path) -> dict[int, str]:
    """line -> account id of the exchanges stored from `src`."""
    con = duckdb.connect(str(ws / "copyhound.duckdb"), read_only=True)
    try:
        return dict(con.execute(
            """SELECT line, account_id FROM exchanges
               WHERE file_id = (SELECT file_id FROM ingest_files WHERE path = ? AND status = 'done')""",
            [str(src)]).fetchall())
    finally:
        con.close()


def test_fuzz_every_bad_row_is_named_and_skip_loads_exactly_the_good_rows(tmp_path):
    ws = tmp_path / "ws"
    engine = Engine(ws)
    seed_rows = [{"exchange_id": f"stored_{i}", "account_id": f"old_{i}", "timestamp": 1772000000 + i,
                  "prompt": f"an older question {i}"} for i in range(50)]
    engine.ingest([write_jsonl(tmp_path / "seed.jsonl", seed_rows)])
    stored_ids = [r["exchange_id"] for r in seed_rows]

    fuzz = Fuzz(seed=17)
    fuzz.add_good()
    for _ in range(25_000):
        roll = fuzz.rng.random()
        if roll < 0.42:
            fuzz.add_bad(stored_ids)
        elif roll < 0.90:
            fuzz.add_good()
        elif roll < 0.95:
            fuzz.add(fuzz.rng.choice([b"", b"   ", b"\r"]))     # blank lines: not rows
        elif roll < 0.975 and fuzz.ids:
            eid = fuzz.rng.choice(list(fuzz.ids))              # an identical re-send: a duplicate
            account, ts, prompt = fuzz.ids[eid]
            fuzz.add({"exchange_id": eid, "account_id": account, "timestamp": ts, "prompt": prompt}, None)
        else:
            fuzz.add(dict(seed_rows[fuzz.rng.randrange(50)]), None)  # a re-send of a stored exchange
    # A few heavy rows, each far past a limit that DuckDB's JSON functions must never see.
    g = fuzz.good_row()
    fuzz.add(dict(g, response="r" * (MAX_FIELD_CHARS + 10)), "too large")
    fuzz.add(dict(g, prompt="p" * (MAX_PROMPT_CHARS + 1)), "prompt too long")
    fuzz.add(json.dumps(dict(g, response="z" * (MAX_LINE_BYTES + 1))), "line too long")
    fuzz.add_good()
    assert len(fuzz.bad) >= 10_000

    src = tmp_path / "fuzz.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + b"\n".join(fuzz.lines) + b"\n")

    with pytest.raises(IngestError) as err:
        engine.ingest([src])
    first = min(fuzz.bad)
    assert str(err.value).startswith(f"{src}:{first}: ") and fuzz.bad[first] in str(err.value)
    assert len(err.value.problems) == 5 and "\n" not in str(err.value)

    f = engine.ingest([src], on_error="skip").files[0]
    rejected = [json.loads(line) for line in Path(f.quarantine).read_text().split("\n")[:-1]]
    got = {r["line"]: r["reason"] for r in rejected}
    assert set(got) == set(fuzz.bad), sorted(set(got) ^ set(fuzz.bad))[:10]
    wrong = [(n, fuzz.bad[n], got[n]) for n in got if fuzz.bad[n] not in got[n]]
    assert not wrong, wrong[:10]
    assert all(r["file"] == str(src) and "\n" not in r["reason"] for r in rejected)

    assert stored_lines(ws, src) == fuzz.good
    assert f.rows_rejected == len(fuzz.bad) and f.rows_loaded == len(fuzz.good)
    assert f.rows_read == f.rows_loaded + f.rows_duplicate + f.rows_rejected


@pytest.mark.parametrize("seed", [1, 2])
def test_csv_fuzz_lines_are_physical(tmp_path, seed):
    """Multi-line quoted prompts, blank lines and bad records in CSV: every reason names its first line."""
    rng = random.Random(seed)
    text, line, bad, good = ["account_id,timestamp,prompt,extra\n"], 1, {}, {}
    for i in range(1500):
        start = line + 1
        kind = rng.randrange(8)
        prompt = f"question {i} " + "\n".join(rng.choices(WORDS, k=rng.randint(1, 4)))
        quoted = '"' + prompt.replace('"', '""') + '"'
        if kind == 0:
            rec, bad[start] = f"a{i},2026-03-01,{quoted},x,surplus\n", "expected 4 fields, found 5"
        elif kind == 1:
            rec, bad[start] = f"a{i},not a time,{quoted},x\n", "unparseable timestamp"
        elif kind == 2:
            rec, bad[start] = f"a{i},1999-01-01,{quoted},x\n", "out of range"
        elif kind == 3:
            rec, bad[start] = f'"a\r\n{i}",2026-03-01,{quoted},x\n', "control character"
        elif kind == 4:
            rec = "\n"
        else:
            rec = f"a{i},2026-03-0{rng.randint(1, 9)}T00:00:00Z,{quoted},\"x,y\"\n"
            good[start] = f"a{i}"
        text.append(rec)
        line += rec.count("\n")
    src = tmp_path / "f.csv"
    src.write_text("".join(text), newline="")
    f = Engine(tmp_path / "ws").ingest([src], on_error="skip").files[0]
    got = {r["line"]: r["reason"] for r in map(json.loads, Path(f.quarantine).read_text().split("\n")[:-1])}
    assert set(got) == set(bad)
    assert all(bad[n] in got[n] for n in got)
    assert stored_lines(tmp_path / "ws", src) == good
