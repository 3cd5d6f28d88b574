"""How does the whole pipeline grow with N? End to end on `copyhound synth` traffic, with the fast tier.

Usage::

    python -m bench.scale --sizes 100000 300000 1000000 [--encoder static] [--workdir /tmp/scale]

For each N (exchanges), in ``<workdir>/n<N>`` (``season-<N>`` with ``--profile season``; the synthetic traffic
file is generated once and kept; the workspace is rebuilt every run so every stage is timed from empty;
``--rescan`` scans a kept workspace again from scratch and ``--resume-scan`` finishes its interrupted scan,
both without re-running ingest and embed):

1. ``ingest``, ``embed`` (encoder + FAISS index), ``scan`` (self-join, families, templates, links,
   rings, scores; its own stage breakdown is kept): wall time, throughput and the process's peak RSS
   per stage (VmHWM reset per stage where the kernel allows it). ``end_to_end_s`` = ingest + embed +
   scan: everything after the traffic file exists.
2. ``who_else``: 200 single-prompt queries, each a perturbed copy of a random stored prompt, one
   ``Engine.who_else`` call each after a warm-up (encoder and index loaded): latency p50/p99.
3. ``quality``: every account scored against the generator's truth with ``detect_eval.evaluate``:
   recall at 1% organic FPR per campaign kind, and viral / organic rings.
4. Side by side on the same self-deduplication job (the prompts' vectors from the same encoder, the
   scan's cut): SemHash (PyPI ``semhash``, its default usearch backend, given the vectors the scan
   joined through ``SemHash.from_embeddings``, so neither side's time includes encoding; the run records
   how many prompts SemHash asked the encoder for, none) and copyhound's load + self-join + families,
   as a time ratio, with the agreement of the prompts each calls a near-duplicate. Exact brute force
   on a sample of rows (numpy, every vector against the sample): pair recall of the scan's self-join
   on each sampled row's 20 nearest exact neighbours (the scan caps edges per prompt on purpose), and
   the brute-force time extrapolated to all rows.

Growth: for each stage, the exponent b of ``seconds ~ a * N^b`` fitted by least squares on log-log
over the sizes run. Writes ``bench/results/<name>.json`` and a plot ``bench/results/<name>.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import index as faiss_index
from bench import detect_eval
from bench.common import envelope, footprint_mb, percentiles, perturb, stage, table, write_results
from engine import Engine, EngineConfig
from engine.scan.pipeline import MAX_NEIGHBORS, SELFJOIN_BLOCK
from engine.store.vectors import load_vectors, open_index
from synth import SynthConfig, write_synth

log = logging.getLogger("bench.scale")
RESULTS = Path(__file__).resolve().parent / "results"


def size_folder(workdir: Path, n: int, profile: str = "default") -> Path:  # n<N>: folders made before profiles
    return workdir / (f"n{n}" if profile == "default" else f"{profile}-{n}")


def traffic_for(n: int, folder: Path, seed: int, profile: str = "default") -> tuple[Path, dict]:
    path = folder / "traffic.jsonl"
    truth = folder / "traffic.truth.json"
    if not (path.exists() and truth.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_synth(SynthConfig(exchanges=n, seed=seed, profile=profile), path)
        log.info("synth %d exchanges in %.0f s", n, time.perf_counter() - started)
    return path, json.loads(truth.read_text())


def who_else_latency(eng: Engine, rng: random.Random, queries: int) -> dict:
    with eng.store.connect() as con:
        texts = [r[0] for r in con.execute(
            f"SELECT text FROM prompts USING SAMPLE {queries} ROWS (reservoir, 7)").fetchall()]
    probes = [perturb(t, rng, n_ops=1 + i % 3)[0] for i, t in enumerate(texts)]
    eng.who_else([probes[0]])  # warm-up: encoder and index loaded
    lat, rows = [], 0
    for q in probes:
        t0 = time.perf_counter()
        res = eng.who_else([q])
        lat.append((time.perf_counter() - t0) * 1000)
        rows += len(res.rows)
    return {"queries": len(probes), "ms": {k: round(v, 2) for k, v in percentiles(lat, (50, 90, 99)).items()},
            "rows_per_query": round(rows / max(len(probes), 1), 1)}


def quality(eng: Engine, truth: dict) -> dict:
    res = detect_eval.evaluate_engine(eng, truth)
    keep = ("recall_at_1pct_fpr", "recall_at_01pct_fpr", "auc", "accounts", "campaigns_ringed")
    return {"kinds": {k: {m: v.get(m) for m in keep} for k, v in res["kinds"].items()},
            "viral_rings": len(res["negatives"]["viral_rings"]), "organic_rings": len(res["negatives"]["organic_rings"]),
            "organic_rings_per_million_accounts": res.get("organic_rings_per_million_accounts"),
            "organic_fpr": res.get("organic_fpr"), "shapes": res.get("shapes"),
            "bank_bystanders": res["negatives"].get("bank_bystanders")}


def side_by_side(eng: Engine, scan_stage: dict, threshold: float, sample: int, seed: int) -> dict:
    """SemHash and sampled exact brute force on the scan's own self-deduplication job."""
    enc = eng.encoder
    ids, vecs = load_vectors(eng.store, enc.name, enc.dim)
    with eng.store.connect() as con:
        stored = con.execute("SELECT prompt_id, normalized FROM prompts ORDER BY prompt_id").fetchnumpy()
        edges = con.execute("SELECT prompt_a, prompt_b FROM matches").fetchnumpy()
        in_family = set(np.asarray(con.execute(
            "SELECT prompt_id FROM families WHERE prompt_id <> center_id").fetchnumpy()["prompt_id"]).tolist())
    # Each vector's own prompt text, row for row: SemHash gets the very vectors the scan joined.
    texts = np.asarray(stored["normalized"], dtype=object)[np.searchsorted(stored["prompt_id"], ids)].tolist()
    out: dict = {"prompts": len(ids), "threshold": threshold}
    from semhash import SemHash

    encoded = []  # what SemHash asks the encoder for: nothing, as it is given the vectors

    class Given:  # SemHash's encoder protocol
        def encode(self, sentences, **_):
            encoded.extend(sentences)
            return enc.encode(list(sentences))

    with stage("semhash", unit="prompts", items=len(texts)) as st:
        sh = SemHash.from_embeddings(embeddings=np.ascontiguousarray(vecs, np.float32), records=texts, model=Given())
        result = sh.self_deduplicate(threshold=threshold)
    removed = {t for t in (r if isinstance(r, str) else r.record for r in result.filtered)}
    sh_removed, ch_removed, pos = len(removed), len(in_family), {t: i for i, t in enumerate(texts)}
    removed_ids = {int(ids[pos[t]]) for t in removed if t in pos}
    copyhound_s = scan_stage.get("self_join", 0.0) + scan_stage.get("families", 0.0) + scan_stage.get("load_vectors", 0.0)
    out["semhash"] = {"seconds": round(st.seconds, 2), "includes_encoding": bool(encoded),
                      "same_vectors": True, "prompts_it_encoded": len(encoded), "peak_rss_mb": st.peak_rss_mb,
                      "near_duplicates_removed": sh_removed,
                      "ratio_semhash_over_copyhound": round(st.seconds / max(copyhound_s, 1e-9), 2)}
    out["copyhound"] = {"seconds": round(copyhound_s, 2), "what": "load vectors + self-join + families",
                        "prompts_in_families_not_centre": ch_removed,
                        "agreement_jaccard": round(len(removed_ids & in_family) / max(len(removed_ids | in_family), 1), 4)}

    out["exact_sample"] = exact_sample(ids, vecs, edges, threshold, sample, seed, plan=_join_plan(eng, vecs))
    return out


def _join_plan(eng: Engine, vecs: np.ndarray):
    """The scan's IVF partition, planned again with the scan's settings (None when the join was exact)."""
    if len(vecs) <= faiss_index.EXACT_MAX:
        return None
    idx, _ = open_index(eng.store, eng.encoder.name, eng.encoder.dim)
    centroids = faiss_index.ivf_centroids(idx)
    if centroids is None:
        return None
    return faiss_index.plan_ivf(vecs, settings=eng.config.join, block_size=SELFJOIN_BLOCK, centroids=centroids)


def exact_sample(ids: np.ndarray, vecs: np.ndarray, edges, threshold: float, sample: int,
                 seed: int, top: int = 20, plan=None) -> dict:
    """Exact brute force for a sample of rows (each against every vector), against the scan's edges.

    The scan keeps at most MAX_NEIGHBORS edges per prompt on purpose (a prompt with thousands of
    near-copies says nothing more with all of them), so recall is measured on each sampled row's
    ``top`` most similar exact neighbours. Those can still be dropped by the cap: an edge belongs to one
    side, which keeps only its own most similar ones. ``pair_recall_all`` counts every exact pair.
    With the join's IVF ``plan``, ``partition_recall_top{top}`` is the share of those pairs the
    partition compares at all (the IVF's own recall, before the cap), and ``capped_top{top}`` the share
    it compares that the edges lack: what the cap dropped.
    ``vecs`` may be float16 (converted a column chunk at a time, so 10M-exchange workspaces fit);
    ``edges`` is a dict of ``prompt_a``/``prompt_b`` arrays or a function of the sampled ids that
    returns one (so the caller can fetch only the sampled rows' edges).
    """
    return sample_recall(exact_neighbours(ids, vecs, threshold, sample, seed, top), edges, plan)


def exact_neighbours(ids: np.ndarray, vecs: np.ndarray, threshold: float, sample: int, seed: int,
                     top: int = 20) -> dict:
    """Brute force for ``sample`` random rows: every exact pair at ``threshold`` and each row's ``top``."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(ids), size=min(sample, len(ids)), replace=False))
    t0 = time.perf_counter()
    all_pairs = set()
    top_u, top_w, top_s = [], [], []
    cols = 262_144
    for start in range(0, len(rows), 512):
        part = rows[start : start + 512]
        q = np.asarray(vecs[part], dtype=np.float32)
        hit_row, hit_col, hit_sim = [], [], []
        for c0 in range(0, len(ids), cols):
            sims = q @ np.asarray(vecs[c0 : c0 + cols], dtype=np.float32).T
            r, c = np.nonzero(sims >= threshold)
            hit_row.append(r)
            hit_col.append(c + c0)
            hit_sim.append(sims[r, c])
        r, c, s = np.concatenate(hit_row), np.concatenate(hit_col), np.concatenate(hit_sim)
        for k, i in enumerate(part.tolist()):
            mine = (r == k) & (c != i)
            hit, hs = c[mine], s[mine]
            best = np.lexsort((hit, -hs))[:top]
            for j in hit.tolist():
                all_pairs.add((min(int(ids[i]), int(ids[j])), max(int(ids[i]), int(ids[j]))))
            top_u.append(np.full(len(best), i, dtype=np.int64))
            top_w.append(hit[best].astype(np.int64))
            top_s.append(hs[best])
    u, w = np.concatenate(top_u), np.concatenate(top_w)
    # A pair two sampled rows share is counted once, as a set of (lower id, higher id) would.
    key_a, key_b = np.minimum(ids[u], ids[w]), np.maximum(ids[u], ids[w])
    _, first = np.unique(np.stack([key_a, key_b]), axis=1, return_index=True)
    return {"ids": ids, "rows": rows, "threshold": threshold, "top": top, "all_pairs": all_pairs,
            "u": u[first], "w": w[first], "sim": np.concatenate(top_s)[first],
            "seconds": time.perf_counter() - t0}


def sample_recall(ex: dict, edges, plan=None) -> dict:
    """Recall of ``edges`` (and of the IVF ``plan``'s partition, when given) on an exact sample."""
    ids, rows, top, threshold = ex["ids"], ex["rows"], ex["top"], ex["threshold"]
    if callable(edges):
        edges = edges(ids[rows])
    a = np.asarray(edges["prompt_a"], np.int64)
    b = np.asarray(edges["prompt_b"], np.int64)
    keep = np.isin(a, ids[rows]) | np.isin(b, ids[rows])
    found = set(zip(a[keep].tolist(), b[keep].tolist(), strict=True))
    top_keys = list(zip(np.minimum(ids[ex["u"]], ids[ex["w"]]).tolist(),
                        np.maximum(ids[ex["u"]], ids[ex["w"]]).tolist(), strict=True))
    in_edges = np.fromiter((p in found for p in top_keys), dtype=bool, count=len(top_keys))
    out = {"rows": len(rows), "seconds": round(ex["seconds"], 2),
           "extrapolated_all_rows_s": round(ex["seconds"] * len(ids) / max(len(rows), 1), 1),
           "pairs_exact": len(ex["all_pairs"]),
           "pair_recall_all": round(len(found & ex["all_pairs"]) / max(len(ex["all_pairs"]), 1), 4),
           f"pairs_top{top}": len(top_keys),
           f"pair_recall_top{top}": round(float(in_edges.mean()), 4) if len(top_keys) else None,
           f"pair_recall_top{top}_by_similarity": _recall_by_band(ex["sim"], in_edges, threshold),
           "cap": MAX_NEIGHBORS}
    if plan is not None:
        compared = plan.compares(ex["u"], ex["w"])
        out[f"partition_recall_top{top}"] = round(float(compared.mean()), 4) if len(top_keys) else None
        out[f"partition_recall_top{top}_by_similarity"] = _recall_by_band(ex["sim"], compared, threshold)
        out[f"capped_top{top}"] = round(float((compared & ~in_edges).mean()), 4) if len(top_keys) else None
    return out


def _recall_by_band(sims: np.ndarray, hit: np.ndarray, threshold: float) -> list[dict]:
    """Recall of exact pairs by cosine band: misses of an IVF join sit near the cut, where pairs are
    loose paraphrases; the near-copies a campaign pastes score far above it."""
    cuts = [threshold, *[c for c in (0.85, 0.9, 0.95) if c > threshold], 1.0 + 1e-6]
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        band = (sims >= lo) & (sims < hi)
        out.append({"from": round(lo, 3), "to": round(min(hi, 1.0), 3), "pairs": int(band.sum()),
                    "recall": round(float(hit[band].mean()), 4) if band.any() else None})
    return out


def run_size(n: int, args) -> dict:
    folder = size_folder(args.workdir, n, args.profile)
    traffic, truth = traffic_for(n, folder, args.seed, args.profile)
    ws = folder / "ws"
    if ws.exists():
        shutil.rmtree(ws)
    eng = Engine(ws, config=EngineConfig(encoder=args.encoder))
    # The distilled table is cached beside the workspaces, not rebuilt (and timed) for every size.
    models = args.workdir / "models"
    if models.exists():
        shutil.copytree(models, ws / "models")
    stages = {}
    with stage("ingest", unit="rows") as st:
        res = eng.ingest([traffic])
        st.items = res.files[0].rows_read
    stages["ingest"] = st.to_dict()
    with stage("embed", unit="prompts") as st:
        emb = eng.embed()
        st.items = emb.embedded
    st.extra.update({"encoder": emb.encoder, "factory": emb.index_factory,
                     "encode_prompts_per_s": round(emb.prompts_per_second, 1)})
    stages["embed"] = st.to_dict()
    if not models.exists():
        shutil.copytree(ws / "models", models)
    return _scan_and_measure(n, eng, truth, stages, args)


def resume_size(n: int, args) -> dict:
    """Scan a kept workspace again (ingest and embed done) and measure the rest.

    ``--resume-scan``: for a 10M run that stopped after its self-join, the scan resumes from its
    committed join blocks, so the scan stage times what was left (load, plan, the remaining blocks,
    families, templates, scoring), not a whole scan. ``--rescan``: the whole scan again from its
    first join block (after a change to the scan). Ingest and embed are not timed again.
    """
    folder = size_folder(args.workdir, n, args.profile)
    _, truth = traffic_for(n, folder, args.seed, args.profile)
    eng = Engine(folder / "ws", config=EngineConfig(encoder=args.encoder), create=False)
    out = _scan_and_measure(n, eng, truth, {}, args, force=args.rescan)
    out["resumed_scan" if not args.rescan else "rescanned"] = True
    return out


def _scan_and_measure(n: int, eng: Engine, truth: dict, stages: dict, args, force: bool = False) -> dict:
    with stage("scan", unit="prompts") as st, ScanMemory() as memory:
        scan = eng.scan(recheck=args.recheck, progress=memory.progress, force=force)
        st.items = scan.prompts
    st.extra["stage_seconds"] = {k: round(v, 2) for k, v in scan.stage_seconds.items()}
    st.extra["stage_peak_rss_mb"] = memory.peaks
    # VmHWM sees this process only; the sampled sub-stage peaks also count forked workers.
    st.peak_rss_mb = max([st.peak_rss_mb or 0.0, *memory.peaks.values()])
    st.extra.update({"edges": scan.edges, "families": scan.families, "templates": scan.templates,
                     "rings": scan.rings, "flagged": scan.flagged_accounts})
    stages["scan"] = st.to_dict()
    end_to_end = sum(stages[k]["seconds"] for k in ("ingest", "embed", "scan") if k in stages)
    status = eng.status()
    out = {"exchanges": status.exchanges, "accounts": status.accounts, "prompts": status.prompts,
           "encoder": eng.encoder_name, "recheck": args.recheck, "stages": stages,
           "end_to_end_s": round(end_to_end, 1),
           "peak_rss_mb": max(s["peak_rss_mb"] or 0 for s in stages.values())}
    log.info("N=%d: end to end %.0f s (%s)", n, end_to_end,
             ", ".join(f"{k} {v['seconds']:.0f}s" for k, v in stages.items()))
    out["who_else"] = who_else_latency(eng, random.Random(args.seed), args.queries)
    out["quality"] = quality(eng, truth)
    if args.exact_only:
        out["side_by_side"] = {"exact_sample": _exact_only(eng, args)}
    elif not args.no_side_by_side:
        out["side_by_side"] = side_by_side(eng, scan.stage_seconds, eng.scan_threshold, args.exact_sample, args.seed)
    return out


def _exact_only(eng: Engine, args) -> dict:
    """Join recall against exact brute force on sampled rows, without the SemHash run.

    Vectors stay float16 and only the sampled rows' edges are read: at 10M exchanges all edges as
    int64 arrays would be ~10 GB.
    """
    ids, vecs = load_vectors(eng.store, eng.encoder.name, eng.encoder.dim, dtype=np.float16)

    def sampled_edges(sampled: np.ndarray) -> dict:
        with eng.store.connect() as con:
            con.register("sampled", pa.table({"id": sampled}))
            return con.execute("""SELECT prompt_a, prompt_b FROM matches
                                  WHERE prompt_a IN (SELECT id FROM sampled) OR prompt_b IN (SELECT id FROM sampled)
                               """).fetchnumpy()

    return exact_sample(ids, vecs, sampled_edges, eng.scan_threshold, args.exact_sample, args.seed,
                        plan=_join_plan(eng, vecs))


class ScanMemory:
    """Peak memory of each scan sub-stage (`footprint_mb`: RSS plus forked workers' own pages), sampled
    every 50 ms and attributed through the scan's progress.

    A stage reports progress while it runs (total None: the self-join's blocks) or once when it ends
    (done == total); in the latter case the samples that follow belong to the next stage.
    """

    NEXT = {"embed": "self-join", "self-join": "families", "recheck": "families", "families": "templates",
            "templates": "scoring", "scoring": "sender index", "sender index": "after"}

    def __init__(self) -> None:
        self.current = "embed"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def progress(self, stage_name: str, done: int, total: int | None) -> None:
        if stage_name == "self-join" and total is None:
            self.current = "self-join"
        elif total is not None and done >= total:
            self.current = self.NEXT.get(stage_name, stage_name)
        elif stage_name in self.NEXT:
            self.current = stage_name

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = footprint_mb()  # forked child processes' own pages included
            if rss is not None and rss > self.peaks.get(self.current, 0.0):
                self.peaks[self.current] = round(rss, 1)
            time.sleep(0.05)

    def __enter__(self) -> ScanMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def fit_exponents(runs: list[dict]) -> dict:
    """b in seconds ~ a * N^b per stage (and scan sub-stage), least squares on log-log."""
    if len(runs) < 2:
        return {}
    n = np.log([r["exchanges"] for r in runs])
    series = {"end_to_end": [r["end_to_end_s"] for r in runs]}
    for k in ("ingest", "embed", "scan"):
        if all(k in r["stages"] for r in runs):
            series[k] = [r["stages"][k]["seconds"] for r in runs]
    for k in runs[-1]["stages"]["scan"]["stage_seconds"]:
        if all(k in r["stages"]["scan"]["stage_seconds"] for r in runs):
            series[f"scan.{k}"] = [max(r["stages"]["scan"]["stage_seconds"][k], 1e-3) for r in runs]
    series["who_else_p50"] = [r["who_else"]["ms"]["p50"] for r in runs]
    return {k: round(float(np.polyfit(n, np.log(v), 1)[0]), 3) for k, v in series.items()}


def plot(runs: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["exchanges"] for r in runs]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in (("end_to_end", "end to end"), ("ingest", "ingest"), ("embed", "embed + index"),
                       ("scan", "scan")):
        if key != "end_to_end" and not all(key in r["stages"] for r in runs):
            continue  # a resumed scan: ingest and embed were not re-run
        y = [r["end_to_end_s"] if key == "end_to_end" else r["stages"][key]["seconds"] for r in runs]
        ax.plot(n, y, marker="o", label=label)
    for sub in ("self_join", "templates", "scoring"):
        y = [r["stages"]["scan"]["stage_seconds"].get(sub) for r in runs]
        if all(v is not None for v in y):
            ax.plot(n, y, marker=".", linestyle="--", label=f"scan: {sub.replace('_', '-')}")
    ax.set_yscale("log")
    ax2.plot(n, [r["who_else"]["ms"]["p50"] for r in runs], marker="o", label="who-else p50")
    ax2.plot(n, [r["who_else"]["ms"]["p99"] for r in runs], marker="o", label="who-else p99")
    for axis, ylabel, heading in ((ax, "seconds", "wall time per stage"), (ax2, "ms per query", "who-else latency")):
        axis.set_xscale("log")
        axis.set_xlabel("exchanges")
        axis.set_ylabel(ylabel)
        axis.set_title(heading)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--encoder", default="static")
    ap.add_argument("--recheck", action="store_true")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/scale"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact-sample", type=int, default=2000)
    ap.add_argument("--no-side-by-side", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", choices=("default", "season"), default="default", help="synth profile")
    ap.add_argument("--name", default="scale")
    ap.add_argument("--side-by-side-only", action="store_true",
                    help="recompute only the side-by-side figures on the workspaces of the last run")
    ap.add_argument("--exact-only", action="store_true",
                    help="of the side-by-side, only the exact sample (no SemHash run); also with --side-by-side-only")
    ap.add_argument("--resume-scan", action="store_true",
                    help="finish the interrupted scan of each size's kept workspace and measure the rest "
                         "(ingest and embed not re-run)")
    ap.add_argument("--rescan", action="store_true",
                    help="scan each size's kept workspace again from scratch (ingest and embed not re-run)")
    ap.add_argument("--who-else-only", action="store_true",
                    help="re-measure only who-else latency on the workspaces of the last run")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    if args.who_else_only:
        # Re-measure who-else alone on the kept workspaces (after a change to the query path), kept
        # beside the original figures with the code version that produced them.
        path = RESULTS / f"{args.name}.json"
        result = json.loads(path.read_text())
        from bench.common import git_sha

        for r in result["runs"]:
            eng = Engine(size_folder(args.workdir, r["exchanges"], args.profile) / "ws", create=False)
            r["who_else_remeasured"] = dict(who_else_latency(eng, random.Random(args.seed), args.queries),
                                            git_sha=git_sha())
        write_results(args.name, result, json.dumps([r["who_else_remeasured"] for r in result["runs"]], indent=1))
        return 0
    if args.side_by_side_only:
        path = RESULTS / f"{args.name}.json"
        result = json.loads(path.read_text())
        for r in result["runs"]:
            eng = Engine(size_folder(args.workdir, r["exchanges"], args.profile) / "ws", create=False)
            if args.exact_only:
                r.setdefault("side_by_side", {})["exact_sample"] = _exact_only(eng, args)
            else:
                r["side_by_side"] = side_by_side(eng, r["stages"]["scan"]["stage_seconds"], eng.scan_threshold,
                                                 args.exact_sample, args.seed)
        write_results(args.name, result, json.dumps([r["side_by_side"] for r in result["runs"]], indent=1))
        return 0
    runs = []
    for n in args.sizes:
        runs.append(resume_size(n, args) if args.resume_scan or args.rescan else run_size(n, args))
        # Written after every size, so a long run that is stopped keeps what it measured.
        result = envelope("scale", sizes=args.sizes, profile=args.profile, encoder=args.encoder, recheck=args.recheck, runs=runs,
                          exponents=fit_exponents(runs))
        rows = [{"exchanges": r["exchanges"], "prompts": r["prompts"], "end_to_end_s": r["end_to_end_s"],
                 **{f"{k}_s": round(r["stages"][k]["seconds"], 1) for k in ("ingest", "embed", "scan")
                    if k in r["stages"]},
                 "peak_rss_mb": r["peak_rss_mb"], "who_else_p50_ms": r["who_else"]["ms"]["p50"],
                 "who_else_p99_ms": r["who_else"]["ms"]["p99"],
                 **{f"rec_{k}": v["recall_at_1pct_fpr"] for k, v in r["quality"]["kinds"].items()}}
                for r in runs]
        write_results(args.name, result, table(rows, list(rows[0])) + f"\n\nexponents: {result['exponents']}")
        plot(runs, RESULTS / f"{args.name}.png",
             f"copyhound on copyhound-synth traffic, encoder {runs[-1]['encoder']}, 2-core CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
