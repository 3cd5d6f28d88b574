"""How many steps the copy-network standing should take: its recall alone, step by step, on a scanned workspace.

Usage::

    python -m bench.copy_network_steps --workspace WS --truth TRAFFIC.truth.json [--steps 15] [--out NAME]

Reads the workspace as it is (families of its last scan; nothing is written to it) and, for 1..``--steps``
steps, computes every account's standing (`engine.detect.copy_network`) and the recall of each campaign kind
and account shape at the standing's own 1% and 0.1% organic FPR (organic: no campaign in the truth file).
This is the signal alone, before the noisy-OR with the others; `bench/detect_scale.py` measures the whole.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from bench.common import envelope, table, write_results
from engine import Engine
from engine.detect.copy_network import copy_network
from engine.detect.signals import single_purpose

log = logging.getLogger("bench.copy_network_steps")


def recall_table(standing: np.ndarray, kind: np.ndarray, shape: np.ndarray) -> dict:
    """Recall per kind (at 1% / 0.1% organic FPR) and per shape (at 1%) of ``standing`` alone."""
    org = kind == ""
    cut1, cut01 = np.quantile(standing[org], 0.99), np.quantile(standing[org], 0.999)
    out = {"kinds": {}, "shapes": {}}
    for k in sorted(set(kind.tolist()) - {""}):
        m = kind == k
        out["kinds"][k] = {"recall_at_1pct_fpr": round(float(np.mean(standing[m] > cut1)), 4),
                           "recall_at_01pct_fpr": round(float(np.mean(standing[m] > cut01)), 4)}
    for s in sorted(set(shape.tolist()) - {""}):
        m = shape == s
        out["shapes"][s] = {"recall_at_1pct_fpr": round(float(np.mean(standing[m] > cut1)), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.copy_network_steps", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--out", default="copy_network_steps")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    truth = json.loads(args.truth.read_text())
    camp = {a: c["kind"] for c in truth["campaigns"] for a in c["accounts"]}
    shapes = truth.get("account_shapes", {})
    eng = Engine(args.workspace, create=False)
    with eng.store.connect() as con:
        r = con.execute("SELECT account_id, count(*) AS n FROM exchanges GROUP BY account_id ORDER BY account_id") \
            .fetchnumpy()
        accounts = tuple(r["account_id"].tolist())
        single = single_purpose(con, accounts)
        kind = np.array([camp.get(a, "") for a in accounts])
        shape = np.array([shapes.get(a, "") if a in camp else "" for a in accounts])
        rows, steps = [], {}
        for k in range(1, args.steps + 1):
            t0 = time.monotonic()
            net = copy_network(con, accounts, np.asarray(r["n"]), exclude=single, steps=k, null_draws=0)
            res = recall_table(net.standing, kind, shape)
            res["seconds"] = round(time.monotonic() - t0, 1)
            steps[k] = res
            row = {"steps": k}
            row.update({kk[:8]: f"{v['recall_at_1pct_fpr']:.2f}/{v['recall_at_01pct_fpr']:.2f}"
                        for kk, v in res["kinds"].items()})
            row.update({s: f"{v['recall_at_1pct_fpr']:.2f}" for s, v in res["shapes"].items()})
            rows.append(row)
    status = eng.status()
    result = envelope("copy_network_steps", workspace=str(args.workspace), exchanges=status.exchanges,
                      accounts=status.accounts, encoder=eng.encoder_name,
                      profile=truth.get("config", {}).get("profile", "default"), steps=steps)
    write_results(args.out, result, table(rows, list(rows[0])) + "\n(the standing alone: kind recall at 1% / 0.1% "
                  "organic FPR, shape recall at 1%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
