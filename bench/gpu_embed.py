"""Embedding throughput on a GPU, and the self-join rate over the vectors it produces.

Usage (on a machine with CUDA; never run by the tests)::

    python -m bench.gpu_embed --prompts 100000 [--dtype bf16|fp16|fp32] [--batch 512]
    python -m bench.gpu_embed --device cpu --prompts 500     # smoke test of the script without a GPU

1. ``synth.generator`` writes ``--prompts`` exchanges; their distinct normalised prompts are embedded.
2. ``MiniLMEncoder(device="cuda")`` embeds them in the chosen precision: ``bf16`` is the encoder's own
   ``torch.autocast`` (its default on CUDA), ``fp16`` casts the model's weights to half (the encoder's
   autocast only knows bf16), ``fp32`` disables both. Prompts/s excludes model load and a warm-up batch
   and is timed with ``torch.cuda.synchronize``. Baseline in the same run: the same prompts, the first
   ``--baseline`` of them, in fp32; reported as the speed ratio and as the cosine between each
   prompt's two vectors (how far reduced precision moves a vector).
3. ``index.selfjoin.self_join`` over all vectors at ``--threshold`` with ``exact`` and ``ivf``: seconds,
   vectors/s, edges, and the recall of ``ivf`` edges against ``exact`` edges. The join runs on the CPU
   (numpy/FAISS CPU), so this is that machine's CPU rate.

Without CUDA the script says so and exits with status 2, unless ``--device cpu`` is given explicitly.
Writes ``bench/results/gpu_embed.json`` (``--name`` to change).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import envelope, stage, stage_table, table, write_results

log = logging.getLogger("bench.gpu_embed")


def synth_prompts(n: int, seed: int) -> list[str]:
    from engine.ingest.fingerprint import normalize
    from synth import SynthConfig, write_synth

    with tempfile.TemporaryDirectory(prefix="copyhound-gpu-", dir="/tmp") as tmp:
        path = Path(tmp) / "traffic.jsonl"
        write_synth(SynthConfig(exchanges=n, seed=seed), path)
        with open(path, encoding="utf-8") as fh:
            raw = [json.loads(line)["prompt"] for line in fh]
    return [t for t in dict.fromkeys(normalize(r) for r in raw) if t]


def make_encoder(device: str, dtype: str, batch: int):
    from engine.encoders.minilm import MiniLMEncoder

    enc = MiniLMEncoder(device=device, batch_size=batch, bf16=(dtype == "bf16"))
    if dtype == "fp16":
        enc.model.half()
    return enc


def timed_encode(enc, texts: list[str], device: str) -> tuple[np.ndarray, float]:
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    enc.encode(texts[: min(len(texts), enc.batch_size)])  # warm-up: kernels, allocator, autotuning
    sync()
    t0 = time.perf_counter()
    vecs = enc.encode(texts)
    sync()
    return vecs, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_embed", description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=100_000, help="exchanges to synthesise")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default="bf16")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--baseline", type=int, default=5000, help="prompts re-embedded in fp32 as the baseline")
    p.add_argument("--threshold", type=float, default=None, help="self-join cosine (default: the engine's)")
    p.add_argument("--methods", nargs="*", default=["exact", "ivf"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="gpu_embed")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "gpu_embed: torch sees no CUDA device on this machine; run it on a GPU machine, or pass "
            "--device cpu for a (slow) smoke test",
            file=sys.stderr,
        )
        return 2
    import index as faiss_index
    from engine.config import DEFAULT_THRESHOLD

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    stages = []
    with stage("synth+normalize", unit="prompts") as st:
        texts = synth_prompts(args.prompts, args.seed)
        st.items = len(texts)
    stages.append(st)
    with stage("model_load") as st:
        enc = make_encoder(args.device, args.dtype, args.batch)
    stages.append(st)
    with stage(f"embed_{args.dtype}", unit="prompts", items=len(texts)) as st:
        vecs, secs = timed_encode(enc, texts, args.device)
        st.seconds = secs  # the encode alone, warm-up excluded
    stages.append(st)
    figures: dict = {
        "prompts_per_second": round(len(texts) / secs, 1),
        "mean_prompt_chars": round(float(np.mean([len(t) for t in texts])), 1),
    }
    if args.device.startswith("cuda"):
        figures["gpu_peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)

    if args.dtype != "fp32" and args.baseline > 0:
        sub = texts[: args.baseline]
        del enc
        base_enc = make_encoder(args.device, "fp32", args.batch)
        with stage("embed_fp32_baseline", unit="prompts", items=len(sub)) as st:
            base, bsecs = timed_encode(base_enc, sub, args.device)
            st.seconds = bsecs
        stages.append(st)
        fast_rate = len(texts) / secs
        cos = np.einsum("ij,ij->i", base, vecs[: len(sub)])
        figures["fp32_baseline"] = {
            "prompts": len(sub),
            "prompts_per_second": round(len(sub) / bsecs, 1),
            "speedup_over_fp32": round(fast_rate / (len(sub) / bsecs), 2),
            "cosine_to_fp32": {
                "min": round(float(cos.min()), 5),
                "p1": round(float(np.percentile(cos, 1)), 5),
                "p50": round(float(np.median(cos)), 5),
            },
        }

    ids = np.arange(len(texts), dtype=np.int64)
    edges: dict[str, set] = {}
    joins = {}
    for method in args.methods:
        with stage(f"selfjoin_{method}", unit="vectors", items=len(ids)) as st:
            found = set()
            # The join as this bench has always timed it: nprobe 8, no spill, no point probes.
            plain = faiss_index.JoinSettings(nprobe=8, spill=0.0, point_probes=0)
            for block in faiss_index.self_join(vecs, ids, threshold, method=method, settings=plain):
                found.update(zip(block.a.tolist(), block.b.tolist(), strict=True))
        stages.append(st)
        edges[method] = found
        joins[method] = {
            "seconds": round(st.seconds, 3),
            "vectors_per_second": round(st.rate, 1),
            "edges": len(found),
        }
    if "exact" in edges:
        for method, found in edges.items():
            if method != "exact":
                truth = edges["exact"]
                joins[method]["recall_vs_exact"] = (
                    round(len(found & truth) / len(truth), 5) if truth else None
                )
                joins[method]["speedup_over_exact"] = round(
                    joins["exact"]["seconds"] / joins[method]["seconds"], 2
                )
    figures["selfjoin"] = joins
    figures["selfjoin_threshold"] = threshold

    result = envelope(
        "gpu_embed",
        gpu=args.device.startswith("cuda"),
        device=args.device,
        dtype=args.dtype,
        batch=args.batch,
        N=args.prompts,
        distinct_prompts=len(texts),
        figures=figures,
        stages=[s.to_dict() for s in stages],
    )
    rows = [{"method": m, **v} for m, v in joins.items()]
    write_results(
        args.name,
        result,
        stage_table(stages)
        + "\n\n"
        + table(rows, ["method", "seconds", "vectors_per_second", "edges", "recall_vs_exact"]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
