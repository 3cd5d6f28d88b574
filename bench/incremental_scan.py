"""A scan after a day's traffic: the incremental scan against a full rescan of the same workspace.

Usage::

    python -m bench.incremental_scan --traffic TRAFFIC.jsonl [--truth TRAFFIC.truth.json] [--new-share 0.05]
        [--workdir DIR] [--encoder static] [--out NAME]

The traffic file (time-ordered, as `copyhound synth` writes it) is cut in two: the first lines are the
workspace as it stood, the last ``--new-share`` of them the day that arrives. The first part is ingested
and scanned (a full scan, timed); the second part is ingested; the workspace is copied; the original is
scanned as a nightly job would (`scan`: the new prompts joined against all) and the copy with `scan
--full`, one after the other, so both see the same prompts, vectors and index. Reported: each scan's
time per stage and the ratio of the two, the edges each found (shared, only in one), families,
templates, rings and flagged accounts, how many accounts' flags and rings differ, where the edges of
only one scan lie (at a prompt the cap of 200 near-copies binds on, or elsewhere), and with a truth
file the recall per campaign kind of both (`bench.detect_eval`).

Writes ``bench/results/<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import duckdb

from bench import detect_eval
from bench.common import envelope, stage, table, write_results
from engine import Engine, EngineConfig
from engine.scan.pipeline import MAX_NEIGHBORS

log = logging.getLogger(__name__)


def split(traffic: Path, share: float, out: Path) -> tuple[Path, Path, int, int]:
    """The first ``1 - share`` of the lines and the rest, as two files in ``out``."""
    first, second = out / "before.jsonl", out / "day.jsonl"
    with traffic.open("rb") as f:
        n = sum(1 for _ in f)
    cut = n - round(n * share)
    with traffic.open("rb") as src, first.open("wb") as a, second.open("wb") as b:
        for i, line in enumerate(src):
            (a if i < cut else b).write(line)
    return first, second, cut, n - cut


def findings(eng: Engine) -> dict:
    accs = eng.accounts(limit=None)
    return {"flagged": {a.account_id for a in accs if a.score >= 0.5},
            "ring_of": {a.account_id: a.ring_id for a in accs if a.ring_id is not None},
            "rings": [set(r.accounts) for r in eng.rings(limit=None)]}


def _attached(inc_ws: Path, full_ws: Path) -> duckdb.DuckDBPyConnection:
    """Both workspaces' databases in one connection (``i`` and ``f``), read-only: edges are compared in
    SQL, since tens of millions of them as Python tuples would hold many gigabytes."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{inc_ws / 'copyhound.duckdb'}' AS i (READ_ONLY)")
    con.execute(f"ATTACH '{full_ws / 'copyhound.duckdb'}' AS f (READ_ONLY)")
    return con


def edges_shared(inc_ws: Path, full_ws: Path) -> int:
    with _attached(inc_ws, full_ws) as con:
        return con.execute("""SELECT count(*) FROM (SELECT prompt_a, prompt_b FROM i.matches
                                                   INTERSECT SELECT prompt_a, prompt_b FROM f.matches)""").fetchone()[0]


def edge_difference(inc_ws: Path, full_ws: Path, cap: int) -> dict:
    """Edges found by one scan only, split by where they lie: at a prompt with at least ``cap`` edges in
    the full rescan (a dense cluster, where the cap chooses which near-copies a prompt keeps) or not, and
    whether they touch a prompt of the new day."""
    con = _attached(inc_ws, full_ws)
    base = con.execute("SELECT base_shard FROM i.scan_runs ORDER BY scan_id DESC LIMIT 1").fetchone()[0]
    out = {}
    for name, one, other in (("only_incremental", "i", "f"), ("only_full", "f", "i")):
        row = con.execute(f"""
            WITH deg AS (SELECT p, count(*) AS d FROM (SELECT prompt_a AS p FROM f.matches
                                                      UNION ALL SELECT prompt_b FROM f.matches) GROUP BY p),
            fresh AS (SELECT prompt_id FROM i.embeddings WHERE shard_id > {int(base)}),
            diff AS (SELECT prompt_a AS a, prompt_b AS b FROM {one}.matches
                     EXCEPT SELECT prompt_a, prompt_b FROM {other}.matches)
            SELECT count(*),
                   count(*) FILTER (WHERE greatest(coalesce(da.d, 0), coalesce(db.d, 0)) >= {int(cap)}),
                   count(*) FILTER (WHERE a IN (SELECT * FROM fresh) OR b IN (SELECT * FROM fresh))
            FROM diff LEFT JOIN deg da ON da.p = diff.a LEFT JOIN deg db ON db.p = diff.b""").fetchone()
        out[name] = {"edges": row[0], "at_a_capped_prompt": row[1], "elsewhere": row[0] - row[1],
                     "touching_new_prompts": row[2]}
    return out


def same_rings(x: list[set[str]], y: list[set[str]]) -> int:
    """Rings of ``x`` with the same members as a ring of ``y``."""
    ys = {frozenset(r) for r in y}
    return sum(frozenset(r) in ys for r in x)


def scan_row(name: str, result, seconds: float, peak: float | None) -> dict:
    """One scan: wall seconds of `Engine.scan` (embedding what is pending included), each scan stage's
    seconds, and what it found."""
    return {"scan": name, "joined": result.joined, "seconds": round(seconds, 1), "peak_rss_mb": peak,
            "stage_seconds": {k: round(v, 1) for k, v in result.stage_seconds.items()}, "edges": result.edges,
            "families": result.families, "templates": result.templates, "rings": result.rings,
            "flagged": result.flagged_accounts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.incremental_scan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--traffic", type=Path, required=True)
    ap.add_argument("--truth", type=Path, default=None)
    ap.add_argument("--new-share", type=float, default=0.05, help="share of the file's last lines that arrive as the new day")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/copyhound-incremental"))
    ap.add_argument("--encoder", default="static")
    ap.add_argument("--out", default="scan_incremental")
    ap.add_argument("--label", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    first, second, n_before, n_day = split(args.traffic, args.new_share, args.workdir)
    config = EngineConfig(encoder=args.encoder)
    inc_ws, full_ws = args.workdir / "ws", args.workdir / "ws-full"
    eng = Engine(inc_ws, config=config)
    stages = []
    with stage("ingest before", items=n_before, unit="rows") as st:
        eng.ingest([first])
    stages.append(st)
    with stage("first scan (full)") as st:
        first_scan = eng.scan()
    stages.append(st)
    with stage("ingest day", items=n_day, unit="rows") as st:
        eng.ingest([second])
    stages.append(st)
    del eng
    shutil.copytree(inc_ws, full_ws)
    rows = [scan_row("first (full, before the day)", first_scan, stages[1].seconds, stages[1].peak_rss_mb)]
    results = {}
    truth = json.loads(args.truth.read_text()) if args.truth else None
    for name, ws, full in (("incremental", inc_ws, False), ("full rescan", full_ws, True)):
        e = Engine(ws, config=EngineConfig(), create=False)
        t0 = time.monotonic()
        with stage(f"scan {name}") as st:
            res = e.scan(full=full)
        stages.append(st)
        rows.append(scan_row(name, res, time.monotonic() - t0, st.peak_rss_mb))
        results[name] = {"engine": e, "findings": findings(e)}
        if truth is not None:
            results[name]["quality"] = detect_eval.evaluate_engine(e, truth)
            results[name]["quality"].pop("campaigns", None)
    inc, full = results["incremental"], results["full rescan"]
    n_inc, n_full = rows[1]["edges"], rows[2]["edges"]
    shared = edges_shared(inc_ws, full_ws)
    fi, ff = inc["findings"], full["findings"]
    both = set(fi["ring_of"]) & set(ff["ring_of"])
    compare = {
        "edges_incremental": n_inc, "edges_full": n_full, "edges_shared": shared,
        "edges_only_incremental": n_inc - shared, "edges_only_full": n_full - shared,
        "edge_jaccard": round(shared / max(n_inc + n_full - shared, 1), 5),
        "flagged_incremental": len(fi["flagged"]), "flagged_full": len(ff["flagged"]),
        "flagged_only_incremental": len(fi["flagged"] - ff["flagged"]),
        "flagged_only_full": len(ff["flagged"] - fi["flagged"]),
        "ring_accounts_incremental": len(fi["ring_of"]), "ring_accounts_full": len(ff["ring_of"]),
        "ring_accounts_in_both": len(both),
        "rings_incremental": len(fi["rings"]), "rings_full": len(ff["rings"]),
        "rings_identical": same_rings(fi["rings"], ff["rings"]),
    }
    compare["differences"] = edge_difference(inc_ws, full_ws, MAX_NEIGHBORS)
    ratio = rows[2]["seconds"] / max(rows[1]["seconds"], 1e-9)
    result = envelope("incremental_scan", label=args.label, traffic=str(args.traffic), encoder=args.encoder,
                      exchanges_before=n_before, exchanges_day=n_day, scans=rows,
                      full_over_incremental=round(ratio, 2), compare=compare,
                      stages=[s.to_dict() for s in stages],
                      quality={k: v.get("quality") for k, v in results.items()} if args.truth else None)
    cols = ["scan", "joined", "seconds", "self_join s", "families s", "templates s", "scoring s", "edges", "rings",
            "flagged"]
    shown = [{**r, **{f"{k} s": v for k, v in r["stage_seconds"].items()}} for r in rows]
    diff = [{"found by": k, **v} for k, v in compare["differences"].items()]
    summary = "\n".join([table(shown, cols), table([compare], list(compare)[:6]), table([compare], list(compare)[6:-1]),
                         table(diff, list(diff[0]))])
    write_results(args.out, result, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
