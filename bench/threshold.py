"""Which who-else threshold do the data support? Cosine distributions of copies and non-copies.

Usage::

    python -m bench.threshold [--pool 900] [--copies 600] [--msrp 250] [--jailbreaks 120] [--device cpu]

Everything is embedded as the engine embeds it: ``engine.ingest.fingerprint.normalize`` first, then the real
``engine.encoders.minilm.MiniLMEncoder`` (windowed for long prompts). Corpora come from ``../shared/corpora``
(see its README). Distributions measured:

(a) ``perturbed``: organic prompts (sharegpt_first_turns, arena_hard, alpaca_5k, an equal share each,
    20-1200 characters) against a copy perturbed the way an evader would (``bench.common.perturb``:
    typos, greeting, sign-off, homoglyphs, zero-width characters, case, spacing, punctuation; 1 to 4
    of them, cycling). Copies that normalise to the identical text are caught by the fingerprint
    whatever the threshold; ``perturbed_non_identical`` is the rest, the ones the threshold decides.
(b) ``jailbreak_family``: pairs of in-the-wild jailbreak variants of one family. The corpus's
    ``group`` field is null for 666 of 680 rows and unique for the rest, so a family is approximated
    by a shared opening (the first 40 normalised characters): variants such as DAN 6.0 / 6.2 that were
    edited by hand, not mechanically perturbed. Informational: edits this large are a campaign signal
    for the family miner, not necessarily a who-else match.
(c) ``msrp_positive`` / ``msrp_negative``: Microsoft Research Paraphrase pairs labelled paraphrase / not.
(d) ``random_unrelated``: random pairs of distinct pool prompts; ``nearest_unrelated``: each pool
    prompt with its most similar other pool prompt (the hardest unrelated pair, what the threshold must
    reject). Nearest pairs whose texts are near-identical character-wise (difflib ratio >= 0.8) are
    organic re-sends of one prompt, not unrelated pairs: they are counted apart
    (``nearest_near_duplicates``) and left out of the false match rate.

For thresholds 0.70..0.95 (step 0.01): recall of perturbed copies (fingerprint hits count as found),
recall of the non-identical ones, and the false match rate on nearest and random unrelated pairs.
Recommended: the highest threshold whose recall of non-identical perturbed copies is at least
``--target-recall`` (highest, because it lets through the fewest unrelated pairs); where no threshold
in the range reaches it, the lowest threshold whose false match rate on nearest unrelated pairs is at
most ``--max-fmr`` (the most recall the false-match budget allows). Writes
``bench/results/threshold.json``.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import logging
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import CORPORA, envelope, perturb, stage, stage_table, table, write_results
from engine.config import DEFAULT_THRESHOLD
from engine.ingest.fingerprint import normalize

log = logging.getLogger("bench.threshold")

ORGANIC = ("sharegpt_first_turns", "arena_hard", "alpaca_5k")
THRESHOLDS = [round(0.70 + 0.01 * i, 2) for i in range(26)]
PCTS = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def read(name: str) -> list[dict]:
    path = CORPORA / f"{name}.jsonl.gz"
    if not path.exists():
        raise SystemExit(f"corpus {path} not found: bench/threshold.py needs ../shared/corpora")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def dist(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=np.float64)
    out = {"n": int(v.size)}
    if v.size:
        out.update({f"p{p}": round(float(np.percentile(v, p)), 4) for p in PCTS})
        out["mean"] = round(float(v.mean()), 4)
    return out


def pair_cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.threshold", description=__doc__.split("\n\n")[0])
    p.add_argument("--pool", type=int, default=900, help="organic prompts (equal share per corpus)")
    p.add_argument("--copies", type=int, default=600, help="perturbed copies (of pool prompts)")
    p.add_argument("--msrp", type=int, default=250, help="MSRP pairs of each label")
    p.add_argument("--jailbreaks", type=int, default=120, help="jailbreak prompts from multi-member families")
    p.add_argument("--random-pairs", type=int, default=3000)
    p.add_argument("--max-chars", type=int, default=1200, help="longest organic prompt kept (cost bound)")
    p.add_argument(
        "--target-recall",
        type=float,
        default=0.99,
        help="recall of non-identical perturbed copies the recommended threshold must keep",
    )
    p.add_argument(
        "--max-fmr",
        type=float,
        # 0: a few hundred nearest pairs cannot show a 1% rate apart from zero, and the worst of them
        # (non-English prompts, which MiniLM barely separates) sit just under 0.75.
        default=0.0,
        help="false match rate on nearest unrelated pairs the fallback rule allows",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--encoder", default="minilm",
                   help="minilm, onnx or static (the fast tiers; their thresholds are swept over 0.50-0.99)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="threshold")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    stages = []

    # ------------------------------------------------------------------ data
    with stage("load_corpora") as st:
        per = args.pool // len(ORGANIC)
        pool_raw: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name in ORGANIC:
            rows = [r["text"] for r in read(name) if 20 <= len(r["text"]) <= args.max_chars]
            rng.shuffle(rows)
            kept = 0
            for text in rows:
                norm = normalize(text)
                if norm and norm not in seen:
                    seen.add(norm)
                    pool_raw.append((name, text))
                    kept += 1
                    if kept == per:
                        break
        pool_norm = [normalize(t) for _, t in pool_raw]
        bases = rng.sample(range(len(pool_raw)), min(args.copies, len(pool_raw)))
        copies = [perturb(pool_raw[i][1], rng, n_ops=1 + k % 4) for k, i in enumerate(bases)]
        copy_norm = [normalize(c) for c, _ in copies]
        identical = np.array([copy_norm[k] == pool_norm[i] for k, i in enumerate(bases)])

        msrp = read("msrp_pairs")
        rng.shuffle(msrp)
        pos = [r for r in msrp if r["label"] == 1][: args.msrp]
        neg = [r for r in msrp if r["label"] == 0][: args.msrp]

        jb = read("jailbreaks")
        fam: dict[str, list[str]] = defaultdict(list)
        for r in jb:
            norm = normalize(r["text"])
            if norm and norm not in fam[norm[:40]]:
                fam[norm[:40]].append(norm)
        families = [v for v in fam.values() if len(v) >= 2]
        rng.shuffle(families)
        jb_texts, jb_family = [], []
        for f, members in enumerate(families):
            for text in members[:8]:  # cap per family so DAN-like giants do not dominate
                if len(jb_texts) < args.jailbreaks:
                    jb_texts.append(text)
                    jb_family.append(f)
    stages.append(st)

    # ------------------------------------------------------------------ embed
    with stage("model_load") as st:
        from engine.encoders.base import MODEL_NAME
        from engine.encoders.registry import encoder_name, make_encoder

        enc = make_encoder(args.encoder, device=args.device, cache_dir=Path("bench/.cache"))
        static = encoder_name(args.encoder) != MODEL_NAME
        thresholds = [round(0.50 + 0.01 * i, 2) for i in range(50)] if static else THRESHOLDS
    stages.append(st)

    def embed(name: str, texts: list[str]) -> np.ndarray:
        with stage(f"embed_{name}", unit="texts", items=len(texts)) as st:
            vecs = enc.encode(texts)
        stages.append(st)
        return vecs

    pool_v = embed("pool", pool_norm)
    copy_v = embed("copies", copy_norm)
    msrp_v = embed("msrp", [normalize(r[k]) for r in pos + neg for k in ("a", "b")])
    jb_v = embed("jailbreaks", jb_texts)

    # ------------------------------------------------------------------ distributions
    with stage("analyse") as st:
        perturbed = pair_cos(copy_v, pool_v[bases])
        ops_of = [ops for _, ops in copies]
        msrp_cos = pair_cos(msrp_v[0::2], msrp_v[1::2])
        msrp_pos, msrp_neg = msrp_cos[: len(pos)], msrp_cos[len(pos) :]

        jb_pairs = [
            (i, j)
            for i in range(len(jb_texts))
            for j in range(i + 1, len(jb_texts))
            if jb_family[i] == jb_family[j]
        ]
        jb_cos = np.array([float(jb_v[i] @ jb_v[j]) for i, j in jb_pairs])

        n = len(pool_norm)
        sims = pool_v @ pool_v.T
        np.fill_diagonal(sims, -2.0)
        ri = np.array([rng.randrange(n) for _ in range(args.random_pairs)])
        rj = np.array([rng.randrange(n) for _ in range(args.random_pairs)])
        keep = ri != rj
        random_cos = sims[ri[keep], rj[keep]]
        nn = sims.argmax(axis=1)
        nn_pairs = sorted({(min(i, int(j)), max(i, int(j))) for i, j in enumerate(nn)})
        nn_cos, nn_dup, examples = [], [], []
        for i, j in nn_pairs:
            ratio = difflib.SequenceMatcher(None, pool_norm[i], pool_norm[j], autojunk=False).ratio()
            (nn_dup if ratio >= 0.8 else nn_cos).append(float(sims[i, j]))
            if ratio < 0.8:
                examples.append((float(sims[i, j]), pool_norm[i][:160], pool_norm[j][:160], pool_raw[i][0]))
        nn_cos = np.array(nn_cos)
        examples.sort(reverse=True)

        sweep = []
        ni = ~identical
        for t in thresholds:
            hit = (perturbed >= t) | identical
            sweep.append(
                {
                    "threshold": t,
                    "perturbed_recall": round(float(hit.mean()), 4),
                    "perturbed_non_identical_recall": round(float((perturbed[ni] >= t).mean()), 4)
                    if ni.any()
                    else None,
                    "nearest_unrelated_fmr": round(float((nn_cos >= t).mean()), 4),
                    "random_unrelated_fmr": round(float((random_cos >= t).mean()), 5),
                    "msrp_positive_rate": round(float((msrp_pos >= t).mean()), 4),
                    "msrp_negative_rate": round(float((msrp_neg >= t).mean()), 4),
                    "jailbreak_family_rate": round(float((jb_cos >= t).mean()), 4) if jb_cos.size else None,
                }
            )
        ok = [s for s in sweep if (s["perturbed_non_identical_recall"] or 0) >= args.target_recall]
        recommended = max(ok, key=lambda s: s["threshold"]) if ok else None
        current = (
            next(s for s in sweep if abs(s["threshold"] - DEFAULT_THRESHOLD) < 1e-9)
            if any(abs(s["threshold"] - DEFAULT_THRESHOLD) < 1e-9 for s in sweep)
            else None
        )
        low_fmr = [s for s in sweep if s["nearest_unrelated_fmr"] <= args.max_fmr]
        if recommended is None and low_fmr:
            # No threshold keeps the recall target: take the most recall the false-match budget allows.
            recommended = low_fmr[0]
        rule = (
            f"highest threshold with non-identical perturbed recall >= {args.target_recall}"
            if ok
            else f"recall target {args.target_recall} unreachable in 0.70-0.95: lowest threshold "
            f"with nearest-unrelated false match rate <= {args.max_fmr}"
        )

        by_op = {}
        for op in sorted({o for ops in ops_of for o in ops}):
            mask = np.array([op in ops for ops in ops_of]) & ni
            if mask.any():
                by_op[op] = dist(perturbed[mask])
        by_nops = {
            str(k): dist(perturbed[np.array([len(o) == k for o in ops_of]) & ni]) for k in (1, 2, 3, 4)
        }
        worst = np.argsort(perturbed)[:8]
    stages.append(st)

    result = envelope(
        "threshold",
        gpu=args.device.startswith("cuda"),
        encoder=enc.name,
        device=args.device,
        bf16=getattr(enc, "bf16", None),
        current_default=DEFAULT_THRESHOLD,
        target_recall=args.target_recall,
        recommended_threshold=recommended["threshold"] if recommended else None,
        # For an encoder with its own cosine scale: the thresholds keeping the same share of perturbed
        # copies as MiniLM's defaults keep (who-else 0.75: 97.7%, scan 0.84: 94.7%, bench/results/threshold.json).
        matched_recall={str(r): max((s["threshold"] for s in sweep
                                     if (s["perturbed_non_identical_recall"] or 0) >= r), default=None)
                        for r in (0.977, 0.947)},
        recommended_row=recommended,
        current_default_row=current,
        recommendation_rule=rule,
        lowest_threshold_within_fmr_budget=low_fmr[0]["threshold"] if low_fmr else None,
        max_fmr=args.max_fmr,
        sizes={
            "pool": len(pool_norm),
            "pool_per_corpus": {name: sum(1 for s, _ in pool_raw if s == name) for name in ORGANIC},
            "perturbed": len(copies),
            "perturbed_identical_after_normalize": int(identical.sum()),
            "msrp_positive": len(pos),
            "msrp_negative": len(neg),
            "jailbreak_prompts": len(jb_texts),
            "jailbreak_families": len(set(jb_family)),
            "jailbreak_pairs": len(jb_pairs),
            "random_pairs": int(keep.sum()),
            "nearest_pairs": len(nn_pairs),
            "nearest_near_duplicates": len(nn_dup),
        },
        distributions={
            "perturbed_all": dist(perturbed),
            "perturbed_non_identical": dist(perturbed[ni]),
            "perturbed_by_op_non_identical": by_op,
            "perturbed_by_n_ops_non_identical": by_nops,
            "jailbreak_family": dist(jb_cos),
            "msrp_positive": dist(msrp_pos),
            "msrp_negative": dist(msrp_neg),
            "random_unrelated": dist(random_cos),
            "nearest_unrelated": dist(nn_cos),
            "nearest_near_duplicates": dist(np.array(nn_dup)),
        },
        sweep=sweep,
        lowest_perturbed=[
            {
                "cos": round(float(perturbed[k]), 4),
                "ops": list(ops_of[k]),
                "original": pool_norm[bases[k]][:200],
                "copy": copy_norm[k][:200],
            }
            for k in worst
        ],
        highest_nearest_unrelated=[
            {"cos": round(c, 4), "a": a, "b": b, "corpus": s} for c, a, b, s in examples[:10]
        ],
        stages=[s.to_dict() for s in stages],
        seconds_total=round(time.perf_counter() - started, 1),
    )
    dist_rows = [
        {"distribution": k, **{q: v.get(q) for q in ("n", "p1", "p5", "p50", "p95", "p99")}}
        for k, v in result["distributions"].items()
        if isinstance(v, dict) and "n" in v
    ]
    sweep_rows = [
        s for s in sweep if round(s["threshold"] * 100) % 2 == 0 or s is recommended or s is current
    ]
    summary = "\n\n".join(
        [
            stage_table(stages),
            table(dist_rows, ["distribution", "n", "p1", "p5", "p50", "p95", "p99"]),
            table(
                sweep_rows,
                [
                    "threshold",
                    "perturbed_recall",
                    "perturbed_non_identical_recall",
                    "nearest_unrelated_fmr",
                    "random_unrelated_fmr",
                    "msrp_positive_rate",
                    "msrp_negative_rate",
                    "jailbreak_family_rate",
                ],
            ),
            f"recommended threshold: {result['recommended_threshold']} ({rule}); "
            f"current DEFAULT_THRESHOLD = {DEFAULT_THRESHOLD}",
        ]
    )
    write_results(args.name, result, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
