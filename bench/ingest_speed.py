"""Ingest speed, this checkout against an older commit, on the same file, with identical output checked.

Question: how many rows a second does `ingest` load from a JSONL file into a fresh workspace, here and at
the baseline commit, and do both leave the same tables? Each ingest runs in its own process from its own
checkout (the baseline in a temporary `git worktree`), old and new alternating so that a change in the
machine's load hits both; the time is that of `Engine.ingest` alone (imports and workspace creation
excluded). Afterwards every run's `prompts`, `exchanges` and `accounts` tables, its `ingest_files`
counters and its quarantine must equal the first baseline run's, row for row (`EXCEPT ALL` both ways),
prompt ids apart: rows are matched through the prompt's fingerprint, and the prompts numbered
differently are counted (`prompt_ids`; the numbering changed on purpose, see docs/scale.md).

    python -m bench.ingest_speed --file /tmp/ingest1m/traffic.jsonl --baseline main --rounds 2
    python -m bench.ingest_speed --exchanges 100000 --dirty 1000 --name ingest_speed_100k_dirty

`--dirty K` writes a copy of the file with every K-th line replaced by a bad row (malformed JSON, missing
or mistyped fields, a bad time, a junk prompt, a conflicting exchange id, a blank line) and ingests it
with `on_error="skip"`, so the quarantine and the reasons are compared too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, envelope, table, write_results

# Prompt ids are compared apart (see `compare`): rows are matched through the prompt's fingerprint.
TABLES = {
    "prompts": "SELECT * EXCLUDE (prompt_id) FROM {db}.prompts",
    "exchanges": "SELECT e.* EXCLUDE (prompt_id), p.fingerprint FROM {db}.exchanges e JOIN {db}.prompts p USING (prompt_id)",
    "accounts": "SELECT * FROM {db}.accounts",
    "ingest_files": "SELECT file_id, format, status, rows_total, rows_loaded, rows_duplicate, rows_rejected, "
                    "batches_total, batches_done FROM {db}.ingest_files",
}

# Run in a child process with cwd at a checkout, so that checkout's `engine` is the one imported.
_CHILD = """
import json, sys, time
from engine import Engine
eng = Engine(sys.argv[1])
t0 = time.perf_counter()
res = eng.ingest([sys.argv[2]], on_error=sys.argv[3])
seconds = time.perf_counter() - t0
f = res.files[0]
print(json.dumps({"seconds": seconds, "rows_read": f.rows_read, "rows_loaded": f.rows_loaded,
                  "rows_rejected": f.rows_rejected, "new_prompts": f.new_prompts}))
"""

BAD_ROWS = (
    b'{"account_id": "a1", "timestamp": "2026-03-01T00:00:00Z", "prompt": "unterminated',
    b'{"account_id": "a1", "timestamp": "2026-03-01T00:00:00Z"}',
    b'{"account_id": "a1", "timestamp": "2026-03-01T00:00:00Z", "prompt": ["a", "list"]}',
    b'{"account_id": "a1", "timestamp": "yesterday", "prompt": "hello"}',
    b'{"account_id": "a1", "timestamp": "1999-01-01T00:00:00Z", "prompt": "hello"}',
    b'{"account_id": "a1", "timestamp": "2026-03-01T00:00:00Z", "prompt": "\\u0000\\u0001\\u0002"}',
    b'{"account_id": "a1", "timestamp": "2026-03-01T00:00:00Z", "prompt": "   \\u200b  "}',
    b'[1, 2, 3]',
    b'',
    b'\xff\xfe not utf-8',
)


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def make_dirty(src: Path, dst: Path, every: int) -> int:
    """Copy `src` to `dst` with every `every`-th line replaced by a bad row; returns how many were replaced.

    Every third replacement re-sends the exchange id of the line before it with another prompt (a conflict).
    """
    replaced = 0
    previous_id = None
    with src.open("rb") as fin, dst.open("wb") as fout:
        for number, line in enumerate(fin, start=1):
            if number % every == 0:
                if replaced % 3 == 2 and previous_id:
                    bad = json.dumps({"exchange_id": previous_id, "account_id": "x", "prompt": "other",
                                      "timestamp": "2026-03-01T00:00:00Z"}).encode()
                else:
                    bad = BAD_ROWS[replaced % len(BAD_ROWS)]
                fout.write(bad + b"\n")
                replaced += 1
                continue
            fout.write(line)
            try:
                previous_id = json.loads(line).get("exchange_id")
            except ValueError:
                previous_id = None
    return replaced


def run_one(checkout: Path, workspace: Path, path: Path, on_error: str) -> dict[str, Any]:
    shutil.rmtree(workspace, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(workspace), str(path), on_error], cwd=checkout,
                         env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"ingest at {checkout} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(reference: Path, other: Path) -> dict[str, int]:
    """Rows in one workspace's tables and not the other's (both ways, duplicates counted); 0 = identical.

    `prompt_ids` counts prompts (matched by fingerprint) numbered differently: the baseline numbered each
    batch's new prompts in the order its aggregate emitted them, this code by first time seen then first
    line, so the two differ there by design; every other column is compared as it is.
    """
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{reference / 'copyhound.duckdb'}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{other / 'copyhound.duckdb'}' AS b (READ_ONLY)")
    diff = {}
    for name, sql in TABLES.items():
        a, b = sql.format(db="a"), sql.format(db="b")
        diff[name] = con.execute(
            f"SELECT (SELECT count(*) FROM ({a} EXCEPT ALL {b})) + (SELECT count(*) FROM ({b} EXCEPT ALL {a}))"
        ).fetchall()[0][0]
    diff["prompt_ids"] = con.execute("SELECT count(*) FROM a.prompts x JOIN b.prompts y USING (fingerprint) "
                                     "WHERE x.prompt_id <> y.prompt_id").fetchall()[0][0]
    con.close()
    quarantines = [sorted((ws / "quarantine").glob("*.jsonl")) for ws in (reference, other)]
    texts = [[p.read_text() for p in q] for q in quarantines]
    diff["quarantine"] = 0 if texts[0] == texts[1] else 1
    return diff


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, help="JSONL file to ingest (default: synthesise --exchanges rows)")
    parser.add_argument("--exchanges", type=int, default=1_000_000)
    parser.add_argument("--baseline", default="main", help="git commit to compare against (default main)")
    parser.add_argument("--rounds", type=int, default=2, help="old/new pairs, alternating (default 2)")
    parser.add_argument("--dirty", type=int, default=0, help="replace every K-th line by a bad row, skip mode")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--name", default="ingest_speed_1m", help="results file name (bench/results/NAME.json)")
    args = parser.parse_args(argv)

    work = Path(args.work or tempfile.mkdtemp(prefix="ingest_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    path = args.file
    if path is None:
        path = work / "traffic.jsonl"
        if not path.exists():
            subprocess.run([sys.executable, "-m", "engine.cli.main", "synth", "-q", "--exchanges",
                            str(args.exchanges), "--out", str(path)], cwd=ROOT, check=True)
    on_error, replaced = "fail", 0
    if args.dirty:
        dirty = work / f"dirty_{path.name}"
        replaced = make_dirty(path, dirty, args.dirty)
        path, on_error = dirty, "skip"

    baseline_sha = _git("rev-parse", args.baseline)
    old_tree = work / "baseline"
    if not old_tree.exists():
        _git("worktree", "add", "--detach", str(old_tree), baseline_sha)
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(args.rounds):
            for code, checkout in (("baseline", old_tree), ("this", ROOT)):
                ws = work / f"ws_{code}_{round_}"
                figures = run_one(checkout, ws, path, on_error)
                figures.update(code=code, round=round_, rows_per_s=round(figures["rows_read"] / figures["seconds"]),
                               load_1m=round(os.getloadavg()[0], 2))
                runs.append({**figures, "workspace": ws})
                print(f"{code} round {round_}: {figures['seconds']:.1f} s, {figures['rows_per_s']:,} rows/s "
                      f"(load {figures['load_1m']})", file=sys.stderr)
        reference = runs[0]["workspace"]
        for run in runs[1:]:
            run["differences"] = compare(reference, run["workspace"])
    finally:
        _git("worktree", "remove", "--force", str(old_tree))

    def median(code: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["code"] == code)

    identical = all(not any(v for k, v in r["differences"].items() if k != "prompt_ids") for r in runs[1:])
    result = envelope(
        "ingest_speed", file=str(path), file_bytes=path.stat().st_size, on_error=on_error, bad_rows_planted=replaced,
        rows=runs[0]["rows_read"], baseline_sha=baseline_sha, rounds=args.rounds,
        runs=[{k: v for k, v in r.items() if k != "workspace"} for r in runs],
        baseline_seconds=round(median("baseline", "seconds"), 2), this_seconds=round(median("this", "seconds"), 2),
        baseline_rows_per_s=round(median("baseline", "rows_per_s")), this_rows_per_s=round(median("this", "rows_per_s")),
        speedup=round(median("baseline", "seconds") / median("this", "seconds"), 2),
        identical_except_prompt_ids=identical,
    )
    summary = table([{k: r[k] for k in ("code", "round", "seconds", "rows_per_s", "load_1m")} for r in runs],
                    ["code", "round", "seconds", "rows_per_s", "load_1m"])
    write_results(args.name, result, summary + f"\nspeed-up {result['speedup']}x, identical tables (prompt ids apart): {identical}")
    shutil.rmtree(work, ignore_errors=True) if args.work is None else None
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
