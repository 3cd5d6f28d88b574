"""How fast is each stage of the real pipeline, and does who-else find what brute force finds?

Usage::

    python -m bench.pipeline --prompts 10000 100000
    python -m bench.pipeline --prompts 10000 --no-embed-sizes 1000000     # or --stages-only-1m
    python -m bench.pipeline --prompts 100000 --embed-sample 2000 --fast-vectors

``--prompts N`` is the number of exchanges (rows) ``synth.generator`` generates; synthetic traffic repeats
prompts across accounts, so the number of distinct prompts embedded is smaller (about 0.7 N) and is
reported as ``distinct_prompts``. For each N, in a temp workspace under /tmp:

1. ``synth``: ``write_synth`` to a JSONL file (setup, reported for scale only);
2. ``ingest``: ``Engine.ingest`` of that file, rows/s;
3. ``fingerprint``: ``normalize`` + ``fingerprint`` over the distinct raw prompts, prompts/s;
4. ``model_load`` then ``embed``: ``Engine.embed`` with the real all-MiniLM-L6-v2 (it embeds and then
   builds the FAISS index; ``embed_prompts_per_second`` is the engine's own figure for the embedding
   part). With ``--embed-sample S --fast-vectors`` only S prompts go through MiniLM (the throughput
   figure) and the workspace is embedded by a cheap hashed-word stand-in encoder instead, so the index
   and who-else stages run at sizes where real embedding takes too long; the JSON says so
   (``vectors: "standin"``) and who-else figures then exclude MiniLM's query encoding;
5. ``index_train`` / ``index_add``: ``index.make_index(choose_factory(n))`` + ``index.add`` over the
   workspace's vectors, vectors/s;
6. ``who_else``: ~200 queries, each a perturbed copy of a stored prompt (``bench.common.perturb``), one
   ``Engine.who_else([q])`` call each after a warm-up call (model and index loaded): latency p50/p99.
   Baseline in the same run: exact brute force (numpy ``vecs @ q`` over every stored vector, then the
   threshold, plus exact-fingerprint matches as the engine does). Reported: recall of the (query,
   account) pairs who-else returns against brute force, recall of the index's range search against
   brute force at prompt level, and the speed ratio brute / index range search, per query and batched.

``--no-embed-sizes N`` runs the stages that need no model at N exchanges: synth, ingest, fingerprint,
and index train/add + range search on N random unit vectors of dimension 384 with planted near-copies
(10% are copies of earlier vectors at cosine 0.80-0.98), queried by 200 noisy copies of stored vectors
against numpy brute force. Random vectors have no cluster structure, which is the hard case for IVF:
recall there is a pessimistic figure, not the recall on real embeddings.

Writes ``bench/results/pipeline.json`` (``--name`` to change) and prints a table per size.

The script stays whole past 500 lines: it answers one question, and each stage's timing and its
brute-force baseline read best next to each other, in the order the pipeline runs them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

import index as faiss_index
from bench.common import envelope, percentiles, perturb, stage, stage_table, table, write_results
from engine import Engine, EngineConfig
from engine.config import DEFAULT_THRESHOLD
from engine.ingest.fingerprint import fingerprint, normalize
from engine.store import vectors as engine_vectors

log = logging.getLogger("bench.pipeline")

DIM = 384
N_QUERIES = 200


# ------------------------------------------------------------------------------ helpers
def wait_for_synth(timeout: float = 600.0):
    """synth.generator is being written by someone else; poll until it imports (or give up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            from synth import SynthConfig, write_synth

            return SynthConfig, write_synth
        except ImportError as err:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"synth.generator is still not importable after {timeout:.0f} s: {err}"
                ) from err
            log.warning("synth.generator not importable yet (%s); retrying in 15 s", err)
            time.sleep(15)


def read_prompts(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line)["prompt"] for line in fh]


class HashWordEncoder:
    """Cheap stand-in encoder (``--fast-vectors`` only): signed feature hashing of words and word
    bigrams into 384 dims, L2-normalised. Near-copies stay close, unrelated texts are near-orthogonal;
    it is not a semantic model and its similarities are not MiniLM's."""

    name = "bench-hashword-384"
    dim = DIM

    def encode(self, texts) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        for row, text in enumerate(texts):
            words = text.split()
            grams = words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]
            if not grams:
                continue
            h = np.fromiter((zlib.crc32(g.encode()) for g in grams), np.uint32, len(grams))
            signs = np.where(h & 1, 1.0, -1.0).astype(np.float32)
            np.add.at(out[row], (h >> 1) % DIM, signs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        out[norms[:, 0] == 0, 0] = 1.0
        return out


def noisy_copies(src: np.ndarray, cos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at (about) cosine ``cos`` to the unit rows of ``src``: ``src + sigma * g``,
    ``g ~ N(0, I/d)``, so ``cos ~ 1 / sqrt(1 + sigma^2)``."""
    sigma = np.sqrt(1.0 / cos**2 - 1.0).astype(np.float32)
    out = src + sigma[:, None] * rng.standard_normal(src.shape, dtype=np.float32) / np.sqrt(src.shape[1])
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def planted_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random unit vectors of which the last 10% are near-copies (cosine 0.80-0.98) of earlier ones."""
    base = n - n // 10
    vecs = np.empty((n, DIM), np.float32)
    for lo in range(0, base, 262_144):
        hi = min(base, lo + 262_144)
        block = rng.standard_normal((hi - lo, DIM), dtype=np.float32)
        vecs[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    src = rng.integers(0, base, n - base)
    vecs[base:] = noisy_copies(vecs[src], rng.uniform(0.80, 0.98, n - base).astype(np.float32), rng)
    return vecs


def brute_hits(
    vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, threshold: float
) -> tuple[list[set[int]], list[float]]:
    """Exact hits per query (ids with inner product >= threshold) and the seconds each query took."""
    thr = np.float32(threshold)
    hits, secs = [], []
    for row in q:
        t0 = time.perf_counter()
        sims = vecs @ row
        found = ids[sims >= thr]
        secs.append(time.perf_counter() - t0)
        hits.append(set(found.tolist()))
    return hits, secs


def index_hits(idx, q: np.ndarray, threshold: float) -> tuple[list[set[int]], list[float]]:
    hits, secs = [], []
    for row in q:
        t0 = time.perf_counter()
        res = faiss_index.range_search(idx, row[None, :], threshold)
        secs.append(time.perf_counter() - t0)
        hits.append(set(res.ids.tolist()))
    return hits, secs


def recall(found: list[set], truth: list[set]) -> dict:
    want = sum(len(t) for t in truth)
    got = sum(len(f & t) for f, t in zip(found, truth, strict=True))
    extra = sum(len(f - t) for f, t in zip(found, truth, strict=True))
    return {"recall": round(got / want, 5) if want else None, "expected": want, "found": got, "extra": extra}


def ms(p: dict) -> dict:
    return {k: (round(v * 1000, 3) if v is not None else None) for k, v in p.items()}


def compare_search(idx, vecs, ids, q, threshold) -> dict:
    """Index range search vs numpy brute force: per-query latency, batched time, recall, ratios."""
    ih, isecs = index_hits(idx, q, threshold)
    bh, bsecs = brute_hits(vecs, ids, q, threshold)
    t0 = time.perf_counter()
    faiss_index.range_search(idx, q, threshold)
    batch_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    sims = q @ vecs.T
    np.nonzero(sims >= np.float32(threshold))
    batch_brute = time.perf_counter() - t0
    del sims
    ip, bp = percentiles(isecs), percentiles(bsecs)
    return {
        "queries": len(q),
        "index_ms": ms(ip),
        "brute_ms": ms(bp),
        "batched_index_s": round(batch_index, 4),
        "batched_brute_s": round(batch_brute, 4),
        "recall_vs_brute": recall(ih, bh),
        "speedup_p50_brute_over_index": round(bp["p50"] / ip["p50"], 2) if ip["p50"] else None,
        "speedup_batched_brute_over_index": round(batch_brute / batch_index, 2) if batch_index else None,
        "mean_hits_per_query": round(float(np.mean([len(h) for h in bh])), 2),
    }


# ------------------------------------------------------------------------------ one size
def synth_file(n: int, workdir: Path, seed: int) -> tuple[Path, dict]:
    SynthConfig, write_synth = wait_for_synth()
    path = workdir / f"traffic-{n}.jsonl"
    with stage("synth", unit="rows") as st:
        res = write_synth(SynthConfig(exchanges=n, seed=seed), path)
        st.items = res.exchanges
    st.extra["accounts"] = res.accounts
    st.extra["file_mb"] = round(path.stat().st_size / 1024**2, 1)
    return path, st


def ingest_and_fingerprint(path: Path, eng: Engine, stages: list) -> tuple[list[str], dict]:
    with stage("ingest", unit="rows") as st:
        res = eng.ingest([path])
        st.items = res.files[0].rows_read
    st.extra["rows_loaded"] = res.files[0].rows_loaded
    st.extra["new_prompts"] = res.files[0].new_prompts
    stages.append(st)
    raw = read_prompts(path)
    distinct = list(dict.fromkeys(raw))
    with stage("fingerprint", unit="prompts", items=len(distinct)) as st:
        normals = [normalize(t) for t in distinct]
        prints = [fingerprint(t) for t in normals]
    st.extra["distinct_normalized"] = len(set(prints))
    stages.append(st)
    return raw, {
        "exchanges": len(raw),
        "distinct_raw_prompts": len(distinct),
        "distinct_prompts": len(set(prints)),
        "mean_prompt_chars": round(float(np.mean([len(t) for t in normals])), 1),
    }


def run_full(n: int, args, workdir: Path) -> dict:
    """Every stage on N synthetic exchanges, with real (or, if asked, stand-in) embeddings."""
    stages: list = []
    path, st = synth_file(n, workdir, args.seed)
    stages.append(st)
    standin = args.fast_vectors
    config = EngineConfig(threshold=args.threshold)
    eng = Engine(workdir / f"ws-{n}", config=config, encoder=HashWordEncoder() if standin else None)
    raw, counts = ingest_and_fingerprint(path, eng, stages)
    figures: dict = {}

    with stage("model_load") as st:
        from engine.encoders.minilm import MiniLMEncoder

        minilm = MiniLMEncoder(device="cpu") if standin else eng.encoder
    st.extra["bf16"] = getattr(minilm, "bf16", None)
    stages.append(st)
    if standin:
        with eng.store.connect() as con:
            sample = [
                r[0]
                for r in con.execute(
                    f"SELECT normalized FROM prompts USING SAMPLE reservoir({int(args.embed_sample)} ROWS) REPEATABLE (0)"
                ).fetchall()
            ]
        with stage("embed_sample_minilm", unit="prompts", items=len(sample)) as st:
            minilm.encode(sample)
        stages.append(st)
        figures["embed_prompts_per_second"] = round(st.rate, 1)
        figures["embed_measured_on"] = f"random sample of {len(sample)} distinct prompts (MiniLM, cpu)"
    with stage("embed", unit="prompts") as st:
        er = eng.embed()
        st.items = er.embedded
    st.extra.update(
        encoder=er.encoder,
        index_factory=er.index_factory,
        engine_prompts_per_second=round(er.prompts_per_second, 1),
        note="Engine.embed: embedding + writing shards + building the FAISS index",
    )
    stages.append(st)
    if not standin:
        figures["embed_prompts_per_second"] = round(er.prompts_per_second, 1)
        figures["embed_measured_on"] = f"all {er.embedded} distinct prompts via Engine.embed (MiniLM, cpu)"

    ids, vecs = engine_vectors.load_vectors(eng.store, eng.encoder.name, eng.encoder.dim)
    factory = faiss_index.choose_factory(len(ids), DIM)
    idx = faiss_index.make_index(DIM, factory)
    if not idx.is_trained:
        with stage("index_train", unit="vectors") as st:
            sample = vecs[np.random.default_rng(0).permutation(len(vecs))[: 256 * 1024]]
            faiss_index.train(idx, sample)
            st.items = len(sample)
        stages.append(st)
    with stage("index_add", unit="vectors", items=len(ids)) as st:
        faiss_index.add(idx, vecs, ids)
    st.extra["factory"] = factory
    stages.append(st)
    figures["index_add_vectors_per_second"] = round(st.rate, 1)
    del idx

    figures.update(who_else_vs_brute(eng, raw, ids, vecs, args, stages))
    return {
        "N": n,
        "vectors": "standin" if standin else "minilm",
        **counts,
        "threshold": args.threshold,
        "stages": [s.to_dict() for s in stages],
        "figures": figures,
        "_table": stage_table(stages),
    }


def who_else_vs_brute(eng: Engine, raw: list[str], ids: np.ndarray, vecs: np.ndarray, args, stages) -> dict:
    rng = random.Random(args.seed)
    picks = rng.sample(sorted(set(raw)), min(N_QUERIES, len(set(raw))))
    queries = [perturb(p, rng, n_ops=rng.randint(2, 3))[0] for p in picks]
    queries = [q for q in queries if normalize(q)]
    thr = args.threshold
    eng.who_else([queries[0]])  # warm-up: loads the index (the model is already loaded)
    lat, rows = [], []
    with stage("who_else", unit="queries", items=len(queries)) as st:
        for q in queries:
            t0 = time.perf_counter()
            res = eng.who_else([q])
            lat.append(time.perf_counter() - t0)
            rows.append({r.account_id for r in res.rows})
    stages.append(st)

    # Baseline: the same queries by exact brute force over every stored vector, in this run.
    enc = eng.encoder
    normals = [normalize(q) for q in queries]
    enc_secs, qv = [], []
    for t in normals:
        t0 = time.perf_counter()
        qv.append(enc.encode([t])[0])
        enc_secs.append(time.perf_counter() - t0)
    qv = np.stack(qv).astype(np.float32)
    idx = eng._index()  # the index who-else used (private, but reading it is all bench does)
    with stage("brute_force", unit="queries", items=len(queries)) as st:
        search = compare_search(idx, vecs, ids, qv, thr)
    stages.append(st)
    brute_prompt_hits, _ = brute_hits(vecs, ids, qv, thr)
    # Accounts brute force would return: senders of the brute-force hits and of exact normalised copies.
    pairs = [(i, int(p)) for i, hs in enumerate(brute_prompt_hits) for p in hs]
    with eng.store.connect() as con:
        con.register(
            "bq",
            {
                "q": np.array([p[0] for p in pairs], np.int64),
                "prompt_id": np.array([p[1] for p in pairs], np.int64),
            },
        )
        con.register(
            "bfp",
            {
                "q": np.arange(len(normals), dtype=np.int64),
                "fp": np.array([fingerprint(t) for t in normals], np.int64),
            },
        )
        got = con.execute(
            """SELECT DISTINCT x.q, e.account_id FROM (
                   SELECT q, prompt_id FROM bq
                   UNION SELECT b.q, p.prompt_id FROM bfp b JOIN prompts p ON p.fingerprint = b.fp) x
               JOIN exchanges e ON e.prompt_id = x.prompt_id"""
        ).fetchall()
    brute_accounts = [set() for _ in queries]
    for qi, acct in got:
        brute_accounts[qi].add(acct)
    lp = percentiles(lat)
    return {
        "who_else_queries": len(queries),
        "who_else_ms": ms(lp),
        "who_else_includes": "normalise + encode (model loaded) + range search + DuckDB grouping, one query a call",
        "query_encode_ms": ms(percentiles(enc_secs)),
        "who_else_account_recall_vs_brute": recall(rows, brute_accounts),
        "index_vs_brute": search,
        "queries_with_any_hit": sum(1 for r in rows if r),
    }


def run_no_embed(n: int, args, workdir: Path) -> dict:
    """Stages that need no model, at N exchanges / N random vectors."""
    stages: list = []
    path, st = synth_file(n, workdir, args.seed)
    stages.append(st)
    eng = Engine(workdir / f"ws-noembed-{n}", config=EngineConfig(threshold=args.threshold))
    _, counts = ingest_and_fingerprint(path, eng, stages)
    path.unlink()

    rng = np.random.default_rng(args.seed)
    vecs = planted_vectors(n, rng)
    ids = np.arange(n, dtype=np.int64) * 7 + 1  # ids that are not row numbers, as in a workspace
    factory = faiss_index.choose_factory(n, DIM)
    idx = faiss_index.make_index(DIM, factory)
    if not idx.is_trained:
        with stage("index_train", unit="vectors") as st:
            sample = vecs[rng.permutation(n)[: 256 * 1024]]
            faiss_index.train(idx, sample)
            st.items = len(sample)
        stages.append(st)
    with stage("index_add", unit="vectors", items=n) as st:
        faiss_index.add(idx, vecs, ids)
    st.extra["factory"] = factory
    stages.append(st)
    src = rng.integers(0, n, N_QUERIES)
    q = noisy_copies(vecs[src], np.full(N_QUERIES, 0.92, np.float32), rng)
    searches = {}
    for nprobe in args.nprobe:
        faiss_index.set_search_params(idx, nprobe)
        with stage(f"range_search_nprobe{nprobe}", unit="queries", items=N_QUERIES) as st:
            searches[f"nprobe={nprobe}"] = compare_search(idx, vecs, ids, q, args.threshold)
        stages.append(st)
    return {
        "N": n,
        "vectors": "random-planted",
        **counts,
        "index_vectors": n,
        "threshold": args.threshold,
        "stages": [s.to_dict() for s in stages],
        "figures": {
            "index_add_vectors_per_second": round(stages[-1 - len(args.nprobe)].rate, 1),
            "range_search_vs_brute": searches,
        },
        "_table": stage_table(stages),
    }


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--prompts",
        type=int,
        nargs="*",
        default=[10_000],
        help="exchange counts for the full pipeline with embedding (default 10000)",
    )
    p.add_argument(
        "--no-embed-sizes",
        type=int,
        nargs="*",
        default=[],
        help="exchange counts for the stages that need no model (ingest, fingerprint, index, range search)",
    )
    p.add_argument("--stages-only-1m", action="store_true", help="shorthand for --no-embed-sizes 1000000")
    p.add_argument(
        "--embed-sample",
        type=int,
        default=None,
        help="measure MiniLM throughput on this many prompts (needs --fast-vectors)",
    )
    p.add_argument(
        "--fast-vectors",
        action="store_true",
        help="fill the workspace with stand-in vectors instead of embedding everything with MiniLM",
    )
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    p.add_argument(
        "--nprobe",
        type=int,
        nargs="*",
        default=[faiss_index.DEFAULT_NPROBE, 64],
        help="IVF nprobe values for the no-embed range search",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="pipeline", help="results file bench/results/NAME.json")
    p.add_argument("--keep", action="store_true", help="keep the temp workspace")
    args = p.parse_args(argv)
    if args.stages_only_1m and 1_000_000 not in args.no_embed_sizes:
        args.no_embed_sizes.append(1_000_000)
    if args.fast_vectors and args.embed_sample is None:
        args.embed_sample = 2000
    if args.embed_sample is not None and not args.fast_vectors:
        p.error(
            "--embed-sample only makes sense with --fast-vectors: without it every prompt is embedded "
            "with MiniLM anyway, and that is the throughput reported"
        )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    workdir = Path(tempfile.mkdtemp(prefix="copyhound-bench-", dir="/tmp"))
    sizes = []
    try:
        for n in args.prompts:
            print(
                f"== full pipeline at {n:,} exchanges ({'stand-in' if args.fast_vectors else 'MiniLM'} vectors)",
                file=sys.stderr,
            )
            sizes.append(run_full(n, args, workdir))
            print(sizes[-1]["_table"], file=sys.stderr)
        for n in args.no_embed_sizes:
            print(f"== no-embed stages at {n:,}", file=sys.stderr)
            sizes.append(run_no_embed(n, args, workdir))
            print(sizes[-1]["_table"], file=sys.stderr)
    finally:
        if args.keep:
            print(f"workspace kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    tables = [
        f"N={s['N']:,} ({s['vectors']} vectors, {s.get('distinct_prompts', 0):,} distinct prompts)\n{s.pop('_table')}"
        for s in sizes
    ]
    summary_rows = []
    for s in sizes:
        f = s["figures"]
        row = {"N": s["N"], "vectors": s["vectors"]}
        for st in s["stages"]:
            if st["name"] in ("ingest", "fingerprint", "index_add"):
                row[st["name"] + "/s"] = st["per_second"]
        row["embed/s"] = f.get("embed_prompts_per_second")
        if "who_else_ms" in f:
            row["who_else p50 ms"] = f["who_else_ms"]["p50"]
            row["who_else p99 ms"] = f["who_else_ms"]["p99"]
            row["recall"] = f["who_else_account_recall_vs_brute"]["recall"]
            row["brute/index"] = f["index_vs_brute"]["speedup_p50_brute_over_index"]
        else:
            first = next(iter(f["range_search_vs_brute"].values()))
            row["recall"] = first["recall_vs_brute"]["recall"]
            row["brute/index"] = first["speedup_p50_brute_over_index"]
        summary_rows.append(row)
    cols = [
        "N",
        "vectors",
        "ingest/s",
        "fingerprint/s",
        "embed/s",
        "index_add/s",
        "who_else p50 ms",
        "who_else p99 ms",
        "recall",
        "brute/index",
    ]
    result = envelope("pipeline", sizes=sizes, options={k: v for k, v in vars(args).items()})
    write_results(args.name, result, "\n\n".join(tables) + "\n\n" + table(summary_rows, cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
