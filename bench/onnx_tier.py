"""The int8 ONNX tier against MiniLM on the same real prompts, in one run: speed, closeness, build time.

Usage::

    python -m bench.onnx_tier [--per-corpus 1000] [--batches 1 8 32 64] [--name onnx_tier]

1. Prompts: ``--per-corpus`` distinct normalised prompts of 20-4000 characters from each of
   sharegpt_first_turns, arena_hard and alpaca_5k (``../shared/corpora``), as the engine embeds them.
2. Build: the int8 model is built from the packaged weights into an empty temporary folder (export,
   fusion, quantisation; the time a workspace's first ``--encoder onnx`` pays), then loaded again from
   that cache (the time every later run pays).
3. Speed: each encoder embeds all prompts after a warm-up batch: MiniLM as configured (bf16 autocast on
   a CPU with native bf16, else fp32), MiniLM in fp32, and the int8 model at each ``--batches`` size
   (prompts per onnxruntime call). Prompts/s, and the ratio to MiniLM as configured.
4. Closeness: the cosine between each prompt's int8 vector and its MiniLM vectors (mean, p1, min), and
   between its vector embedded in a batch and alone (int8 activations are scaled per batch).

Writes ``bench/results/onnx_tier.json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import envelope, stage, stage_table, table, write_results
from bench.threshold import read
from engine.ingest.fingerprint import normalize

log = logging.getLogger("bench.onnx_tier")

CORPORA = ("sharegpt_first_turns", "arena_hard", "alpaca_5k")


def real_prompts(per_corpus: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    out: dict[str, None] = {}
    for name in CORPORA:
        rows = [normalize(r["text"]) for r in read(name) if 20 <= len(r["text"]) <= 4000]
        rows = [t for t in dict.fromkeys(rows) if t and t not in out]
        rng.shuffle(rows)
        out.update(dict.fromkeys(rows[:per_corpus]))
    return list(out)


def timed(encoder, texts: list[str]) -> tuple[np.ndarray, float]:
    encoder.encode(texts[:64])  # warm-up: first-call allocations and kernel choices
    started = time.perf_counter()
    vecs = encoder.encode(texts)
    return vecs, time.perf_counter() - started


def cosines(a: np.ndarray, b: np.ndarray) -> dict:
    cos = np.einsum("ij,ij->i", a, b)
    return {"mean": round(float(cos.mean()), 5), "p1": round(float(np.percentile(cos, 1)), 5),
            "min": round(float(cos.min()), 5)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.onnx_tier", description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-corpus", type=int, default=1000)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64],
                    help="prompts per onnxruntime call to time (the encoder's default is also reported)")
    ap.add_argument("--alone", type=int, default=200, help="prompts embedded one by one for the batch check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="onnx_tier")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from engine.encoders.minilm import MiniLMEncoder
    from engine.encoders.onnx import OnnxEncoder

    stages = []
    with stage("load_prompts", unit="prompts") as st:
        texts = real_prompts(args.per_corpus, args.seed)
        st.items = len(texts)
    stages.append(st)

    with tempfile.TemporaryDirectory(prefix="copyhound-onnx-") as tmp:
        with stage("build_int8_model") as st:
            OnnxEncoder(Path(tmp))
        stages.append(st)
        build_seconds = st.seconds
        with stage("load_cached_model") as st:
            onnx = OnnxEncoder(Path(tmp))
        stages.append(st)
        model_mb = round((Path(tmp) / f"{onnx.name}.onnx").stat().st_size / 1e6, 1)

    speed: dict[str, dict] = {}
    configured = MiniLMEncoder()
    runs = [(f"minilm ({'bf16' if configured.bf16 else 'fp32'}, as configured)", configured),
            ("minilm (fp32)", MiniLMEncoder(bf16=False) if configured.bf16 else None)]
    vecs: dict[str, np.ndarray] = {}
    for label, enc in runs:
        if enc is None:
            continue
        with stage(f"embed {label}", unit="prompts", items=len(texts)) as st:
            vecs[label], st.seconds = timed(enc, texts)
        stages.append(st)
        speed[label] = {"prompts_per_second": round(st.rate, 1), "seconds": round(st.seconds, 2)}
    reference = runs[0][0]
    default_batch = onnx.batch_size
    for batch in sorted(set(args.batches) | {default_batch}):
        onnx.batch_size = batch
        label = f"onnx int8 (batch {batch}{', default' if batch == default_batch else ''})"
        with stage(f"embed {label}", unit="prompts", items=len(texts)) as st:
            vecs[label], st.seconds = timed(onnx, texts)
        stages.append(st)
        speed[label] = {"prompts_per_second": round(st.rate, 1), "seconds": round(st.seconds, 2)}
    onnx.batch_size = default_batch
    base_rate = speed[reference]["prompts_per_second"]
    for row in speed.values():
        row["ratio_to_minilm_as_configured"] = round(row["prompts_per_second"] / base_rate, 2)

    default_label = next(k for k in vecs if k.startswith("onnx") and k.endswith("default)"))
    ours = vecs[default_label]
    closeness = {f"to {k}": cosines(ours, v) for k, v in vecs.items() if k.startswith("minilm")}
    closeness["minilm bf16 to fp32"] = (cosines(vecs[reference], vecs["minilm (fp32)"])
                                        if "minilm (fp32)" in vecs else None)
    alone = np.vstack([onnx.encode([t]) for t in texts[: args.alone]])
    closeness["onnx batched to alone"] = cosines(ours[: args.alone], alone)
    for k, v in vecs.items():
        if k.startswith("onnx") and k != default_label:
            closeness[f"onnx default batch to {k}"] = cosines(ours, v)

    result = envelope(
        "onnx_tier",
        prompts=len(texts),
        corpora=list(CORPORA),
        mean_prompt_chars=round(float(np.mean([len(t) for t in texts])), 1),
        threads=onnx.threads,
        build_seconds=round(build_seconds, 2),
        model_mb=model_mb,
        speed=speed,
        cosine=closeness,
        stages=[s.to_dict() for s in stages],
    )
    rows = [{"encoder": k, **v} for k, v in speed.items()]
    cos_rows = [{"pair": k, **v} for k, v in closeness.items() if v]
    write_results(args.name, result,
                  stage_table(stages) + "\n\n"
                  + table(rows, ["encoder", "prompts_per_second", "seconds", "ratio_to_minilm_as_configured"])
                  + "\n\n" + table(cos_rows, ["pair", "mean", "p1", "min"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
