"""The scan's IVF self-join under several nprobe / spill settings: time, edges and recall against exact.

Runs the join exactly as `copyhound scan` does (the workspace index's lists, MAX_NEIGHBORS, blocks of
SELFJOIN_BLOCK) on an existing scanned workspace, once per setting, without writing to it, and measures
each run's top-20 pair recall on the same sampled rows of exact brute force (`bench/scale.py`'s
exact_neighbours), split into what the partition never compares (`partition_recall_top20`, from
`IvfPlan.compares`) and what the cap dropped (`capped_top20`). `--partition-only` skips the joins. Used to choose the scan's default spill and list bound; results in bench/results/join_recall*.json.

    python -m bench.join_recall --workspace /tmp/scale/n1000000/ws --settings 8:0 8:0.03 8:0.05 12:0 16:0
    python -m bench.join_recall --workspace /tmp/scale/n3000000/ws --settings 8:0.05 8:0.05:400 --name join_recall_3m
    python -m bench.join_recall --workspace /tmp/scale/n10000000/ws --settings 8:0.05 12:0.05 8:0.05::8 --partition-only
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

import index as faiss_index
from bench.common import envelope, table, write_results
from bench.scale import exact_neighbours, sample_recall
from engine import Engine
from engine.scan.pipeline import MAX_NEIGHBORS, SELFJOIN_BLOCK
from engine.store.vectors import load_vectors, open_index

log = logging.getLogger("bench.join_recall")


def _setting(text: str) -> tuple[int, float, int | None, int]:
    nprobe, _, rest = text.partition(":")
    spill, _, rest = rest.partition(":")
    max_list, _, points = rest.partition(":")
    return int(nprobe), float(spill or 0.0), int(max_list) if max_list else None, int(points or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.join_recall", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=Path("/tmp/scale/n1000000/ws"))
    ap.add_argument("--settings", nargs="+", type=_setting, default=[(8, 0.0, None, 0), (8, 0.03, None, 0), (8, 0.05, None, 0), (12, 0.0, None, 0)],
                    metavar="NPROBE:SPILL[:MAX_LIST[:POINTS]]",
                    help="max_list splits bigger lists, POINTS = point probes (index.plan_ivf); empty MAX_LIST = none")
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name", default="join_recall")
    ap.add_argument("--partition-only", action="store_true",
                    help="plan each setting's partition and report its recall without running the join (minutes at 10M)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    eng = Engine(args.workspace, create=False)
    enc = eng.encoder
    threshold = eng.scan_threshold
    ids, vecs = load_vectors(eng.store, enc.name, enc.dim)
    idx, _ = open_index(eng.store, enc.name, enc.dim)
    centroids = faiss_index.ivf_centroids(idx)
    if centroids is None:
        raise SystemExit(f"{args.workspace}: the index is flat; this bench needs a workspace past the exact size")
    ex = exact_neighbours(ids, vecs, threshold, args.sample, args.seed)
    rows = ex["rows"]
    sampled = ids[rows]
    runs = []
    for nprobe, spill, max_list, points in args.settings:
        t0 = time.perf_counter()
        # The join's own partition, planned again (same arguments, so the same lists): the share of exact
        # pairs it compares at all tells the IVF's misses from what the cap drops.
        settings = faiss_index.JoinSettings(nprobe=nprobe, spill=spill, max_list=max_list, point_probes=points)
        plan = faiss_index.plan_ivf(vecs, settings=settings, block_size=SELFJOIN_BLOCK, centroids=centroids)
        plan_s = time.perf_counter() - t0
        run = {"nprobe": nprobe, "spill": spill, "max_list": max_list, "point_probes": points,
               "plan_s": round(plan_s, 1)}
        if args.partition_only:
            part = sample_recall(ex, {"prompt_a": [], "prompt_b": []}, plan)
        else:
            t0 = time.perf_counter()
            edges, kept_a, kept_b = 0, [], []
            for block in faiss_index.self_join(vecs, ids, threshold, method="ivf", max_neighbors=MAX_NEIGHBORS,
                                               block_size=SELFJOIN_BLOCK, centroids=centroids, settings=settings):
                edges += len(block)
                near = np.isin(block.a, sampled) | np.isin(block.b, sampled)
                kept_a.append(block.a[near])
                kept_b.append(block.b[near])
            seconds = time.perf_counter() - t0
            part = sample_recall(ex, {"prompt_a": np.concatenate(kept_a), "prompt_b": np.concatenate(kept_b)}, plan)
            run.update({"join_s": round(seconds, 1), "edges": edges, "pair_recall_top20": part["pair_recall_top20"],
                        "pair_recall_all": part["pair_recall_all"], "capped_top20": part["capped_top20"],
                        "pair_recall_top20_by_similarity": part["pair_recall_top20_by_similarity"]})
            log.info("nprobe %d spill %.3f max_list %s points %d: %.1f s, %d edges, top-20 recall %.4f", nprobe,
                     spill, max_list, points, seconds, edges, part["pair_recall_top20"])
        run.update({"partition_recall_top20": part["partition_recall_top20"], "pairs_top20": part["pairs_top20"],
                    "partition_recall_top20_by_similarity": part["partition_recall_top20_by_similarity"]})
        log.info("nprobe %d spill %.3f max_list %s points %d: partition recall %.4f", nprobe, spill, max_list,
                 points, part["partition_recall_top20"])
        runs.append(run)
        _write(args, eng, ids, centroids, threshold, rows, runs)  # after each setting: a killed run keeps it
    return 0


def _write(args, eng, ids, centroids, threshold, rows, runs) -> None:
    if "join_s" in runs[0]:
        base = runs[0]["join_s"]
        for r in runs:
            r["time_ratio_to_first"] = round(r["join_s"] / base, 3)
    result = envelope("join_recall", workspace=str(args.workspace), prompts=len(ids), nlist=len(centroids),
                      threshold=threshold, encoder=eng.encoder.name, sample_rows=len(rows), runs=runs)
    write_results(args.name, result, table(runs, list(runs[0])))


if __name__ == "__main__":
    raise SystemExit(main())
