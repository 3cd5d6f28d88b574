"""Detection on a scanned workspace at scale, and what each detection mechanism buys (an ablation).

Usage::

    python -m bench.detect_scale --workspace WS --truth TRAFFIC.truth.json [--ablate] [--out NAME]

The workspace is one `bench/scale.py` (or `copyhound ingest/embed/scan`) left behind. Only the scoring
stage runs again (family crowds, links, rings, account scores: `engine.detect.scoring.score_accounts`);
the self-join, families and templates of the workspace's last scan are kept, so each configuration
costs a minute or two at a million exchanges instead of a whole scan. Each configuration is then
scored against the truth with `bench.detect_eval.evaluate` (recall at 1% and 0.1% organic FPR per
campaign kind and per account shape, rings per campaign, hard negatives).

Configurations: ``all`` (every mechanism of `engine.config.DetectSettings` on); with ``--ablate`` also
each mechanism off alone (from all on, or with ``--base default`` from the scan's defaults), ``none`` (all off: the detection before those mechanisms existed) and, when
the defaults leave some mechanism off, ``default`` (what a scan runs). The workspace's tables are left
holding the last configuration's results (the defaults, run last).

With ``--as-scanned`` nothing is scored again: the scores the workspace's last scan wrote are measured
as they are (one entry, ``as scanned``; at ten million exchanges a rescoring costs a quarter of an hour).

Writes ``bench/results/<out>.json``: one entry per configuration, plus the seconds its scoring took.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from bench import detect_eval
from bench.common import envelope, table, write_results
from engine import Engine
from engine.config import DetectSettings
from engine.detect.scoring import score_accounts
from engine.store import vectors
from engine.store.workspace import transaction

log = logging.getLogger("bench.detect_scale")


def configurations(ablate: bool, base: str = "all") -> list[tuple[str, DetectSettings]]:
    """(name, settings) to run, the defaults last. ``base``: each ``without`` configuration switches one
    mechanism off from every mechanism on (``all``) or from what a scan runs (``default``)."""
    default = DetectSettings()
    names = [f.name for f in dataclasses.fields(DetectSettings) if isinstance(getattr(default, f.name), bool)]
    full = DetectSettings(**dict.fromkeys(names, True))
    if not ablate:
        return [("default", default)]
    out = [("none", DetectSettings(**dict.fromkeys(names, False)))]
    start = full if base == "all" else default
    out += [(f"without {n}", dataclasses.replace(start, **{n: False})) for n in names if getattr(start, n)]
    out.append(("all", full))
    return out if full == default else out + [("default", default)]


def score_once(eng: Engine, ids: np.ndarray, vecs: np.ndarray, index, settings: DetectSettings) -> dict:
    """Run the scoring stage with ``settings`` and commit it; its summary and seconds."""
    t0 = time.monotonic()
    with eng.store.connect() as con, transaction(con) as tx:
        summary = score_accounts(tx, ids, vecs, eng.encoder, index=index, crowd_radius=eng.threshold,
                                 settings=settings)
    return {"seconds": round(time.monotonic() - t0, 1), "summary": summary}


def measure(eng: Engine, truth: dict) -> dict:
    res = detect_eval.evaluate_engine(eng, truth)
    res.pop("campaigns", None)  # per-campaign rows are in the kinds' figures; the file stays readable
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detect_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--ablate", action="store_true", help="also run with each mechanism off, and all off")
    ap.add_argument("--only", nargs="+", default=None, help="run only the named configurations")
    ap.add_argument("--base", choices=("all", "default"), default="all",
                    help="with --ablate, switch each mechanism off from all on (all) or from the scan's defaults")
    ap.add_argument("--diagnose", action="store_true",
                    help="with each configuration, the signals of missed campaign accounts and top organic ones")
    ap.add_argument("--out", default="detect_scale")
    ap.add_argument("--label", default="", help="what the workspace holds (profile, size), for the record")
    ap.add_argument("--as-scanned", action="store_true",
                    help="measure the scores the workspace's last scan wrote instead of scoring again")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    truth = json.loads(args.truth.read_text())
    eng = Engine(args.workspace, create=False)
    runs = {}
    if args.as_scanned:
        with eng.store.connect() as con:
            scored = con.execute("SELECT count(*) FROM account_scores").fetchone()[0]
        if not scored:
            # A scan that failed before scoring leaves none: measuring them would report zero recall.
            log.error("%s holds no account scores: scan it to the end first", args.workspace)
            return 2
        runs["as scanned"] = {"seconds": None, "settings": dataclasses.asdict(DetectSettings()),
                              "quality": measure(eng, truth)}
    else:
        ids, vecs = vectors.load_vectors(eng.store, eng.encoder_name, eng.encoder.dim, dtype=np.float16)
        index = vectors.open_index(eng.store, eng.encoder_name, eng.encoder.dim)[0]
    for name, settings in [] if args.as_scanned else configurations(args.ablate, args.base):
        if args.only and name not in args.only:
            continue
        log.info("configuration %s: %s", name, settings)
        run = score_once(eng, ids, vecs, index, settings)
        run["settings"] = dataclasses.asdict(settings)
        run["quality"] = measure(eng, truth)
        if args.diagnose:
            run["diagnosis"] = detect_eval.diagnose(eng, truth, run["quality"]["cut_at_1pct_fpr"], n=3)
        runs[name] = run
        log.info("configuration %s done in %.0f s", name, run["seconds"])
    status = eng.status()
    result = envelope("detect_scale", label=args.label, workspace=str(args.workspace),
                      exchanges=status.exchanges, accounts=status.accounts, prompts=status.prompts,
                      encoder=eng.encoder_name, profile=truth.get("config", {}).get("profile", "default"),
                      ablation_base=args.base if args.ablate else None, runs=runs)
    write_results(args.out, result, summary_table(runs))
    return 0


def summary_table(runs: dict) -> str:
    rows = []
    for name, run in runs.items():
        q = run["quality"]
        row = {"configuration": name, "s": run["seconds"]}
        for kind, v in q["kinds"].items():
            row[kind] = f"{v['recall_at_1pct_fpr']:.2f}/{v.get('recall_at_01pct_fpr', 0) or 0:.2f}"
        for shape, v in (q.get("shapes") or {}).items():
            row[shape] = f"{v['recall_at_1pct_fpr']:.2f}"
        neg = q.get("negatives", {})
        row["org rings"] = len(neg.get("organic_rings", []))
        row["rings"] = q["n_rings"]
        rows.append(row)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return table(rows, cols) + "\n(kind: recall at 1% / 0.1% organic FPR; shape: recall at 1%)"


if __name__ == "__main__":
    raise SystemExit(main())
