"""Evaluate the template miner on T0 prompts (ground-truth templates) mixed with organic traffic.

Usage: ``python -m bench.template_eval [--limit N] [--no-organic] [--min-prompts K] [--ngram N]``

Reads ``../shared/corpora`` (relative to the repository root): ``t0_templates.jsonl.gz`` (field
``group`` = the true template) and, as organic background, ``sharegpt_first_turns``,
``arena_hard`` and ``alpaca_5k``. Reports template purity, recall, recovered templates, the
organic false-assignment rate and runtime; writes ``bench/results/template_eval.json``.

Metrics:
    purity: for each mined template, the share of its T0 members from its majority true template,
        weighted by size (organic members count as impurity).
    recall: share of T0 prompts assigned to a mined template whose majority true template is
        their own.
    recovered: true templates with >= 50% of their prompts in one mined template of purity >= 0.9
        (reported over all true templates and over those with >= min_prompts prompts).
    organic_fp: share of organic prompts assigned to any template.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from engine.detect.templates import TemplateParams, mine_templates

ROOT = Path(__file__).resolve().parents[1]

try:  # the real normaliser, when it exists
    from engine.ingest.fingerprint import normalize  # type: ignore[import-not-found]
except ImportError:  # stand-in: lowercase + whitespace collapse

    def normalize(text: str) -> str:
        return " ".join(text.lower().split())


CORPORA = ROOT.parent / "shared" / "corpora"
ORGANIC = ("sharegpt_first_turns", "arena_hard", "alpaca_5k")


def _read(name: str) -> list[dict]:
    with gzip.open(CORPORA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _git_sha() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def evaluate(
    t0_texts: list[str],
    t0_groups: list[str],
    organic_texts: list[str],
    *,
    min_prompts: int = 20,
    **kwargs,
) -> dict:
    """Run the miner on T0 + organic prompts and compute the metrics (see module docstring)."""
    texts = [normalize(t) for t in t0_texts] + [normalize(t) for t in organic_texts]
    labels: list[str | None] = list(t0_groups) + [None] * len(organic_texts)
    pids = np.arange(len(texts), dtype=np.int64)
    t = time.perf_counter()
    res = mine_templates(pids, texts, TemplateParams(min_prompts=min_prompts, **kwargs))
    runtime = time.perf_counter() - t

    assigned = np.full(len(texts), -1, dtype=np.int64)
    assigned[res.assignments[0]] = res.assignments[1]
    true_size = Counter(t0_groups)
    pure_sum = 0
    total_assigned = 0
    recall_hits = 0
    majority: dict[int, str | None] = {}
    best_share: dict[str, float] = defaultdict(float)
    worst: list[tuple] = []
    for tpl in res.templates:
        members = res.members(tpl.template_id)
        c = Counter(labels[i] for i in members)
        t0_only = Counter({k: v for k, v in c.items() if k is not None})
        maj, maj_n = t0_only.most_common(1)[0] if t0_only else (None, 0)
        majority[tpl.template_id] = maj
        purity = maj_n / len(members)
        pure_sum += maj_n
        total_assigned += len(members)
        recall_hits += maj_n
        if maj is not None and purity >= 0.9:
            best_share[maj] = max(best_share[maj], maj_n / true_size[maj])
        if purity < 0.9:
            worst.append((purity, len(members), tpl.pattern[:100], c.most_common(3)))
    organic_idx = np.arange(len(t0_texts), len(texts))
    organic_fp = float((assigned[organic_idx] >= 0).mean()) if len(organic_idx) else 0.0
    recovered = sorted(g for g, s in best_share.items() if s >= 0.5)
    eligible = [g for g, n in true_size.items() if n >= min_prompts]
    worst.sort()
    return {
        "n_t0": len(t0_texts),
        "n_organic": len(organic_texts),
        "n_true_templates": len(true_size),
        "n_true_templates_eligible": len(eligible),
        "n_mined_templates": len(res.templates),
        "purity": pure_sum / total_assigned if total_assigned else float("nan"),
        "recall": recall_hits / len(t0_texts) if t0_texts else float("nan"),
        "t0_assigned": float((assigned[: len(t0_texts)] >= 0).mean()) if t0_texts else 0.0,
        "recovered": len(recovered),
        "recovered_eligible": len(set(recovered) & set(eligible)),
        "organic_false_assignment": organic_fp,
        "organic_assigned": int((assigned[organic_idx] >= 0).sum()),
        "runtime_s": runtime,
        "impure_templates": [
            {"purity": round(p, 3), "n": n, "pattern": pat, "top": [[str(k), v] for k, v in top]}
            for p, n, pat, top in worst[:15]
        ],
        "kinds": dict(Counter(tp.kind for tp in res.templates)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.template_eval", description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="sample this many T0 prompts")
    ap.add_argument("--no-organic", action="store_true", help="skip the organic background")
    ap.add_argument("--min-prompts", type=int, default=20)
    ap.add_argument("--ngram", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "template_eval.json")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if not CORPORA.is_dir():
        print(f"corpora not found at {CORPORA}; nothing to evaluate", file=sys.stderr)
        return 2

    t0 = _read("t0_templates")
    if args.limit is not None and args.limit < len(t0):
        t0 = random.Random(args.seed).sample(t0, args.limit)
    organic: list[str] = []
    if not args.no_organic:
        for name in ORGANIC:
            organic += [r["text"] for r in _read(name) if r.get("text")]
    kwargs = {"ngram": args.ngram} if args.ngram else {}
    r = evaluate(
        [x["text"] for x in t0], [x["group"] for x in t0], organic, min_prompts=args.min_prompts, **kwargs
    )
    r.update(
        {
            "git_sha": _git_sha(),
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            "params": {
                "limit": args.limit,
                "min_prompts": args.min_prompts,
                "ngram": args.ngram,
                "seed": args.seed,
            },
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")

    rows = [
        ("T0 prompts / organic", f"{r['n_t0']} / {r['n_organic']}"),
        ("true templates (>= min_prompts)", f"{r['n_true_templates']} ({r['n_true_templates_eligible']})"),
        ("mined templates", r["n_mined_templates"]),
        ("purity (weighted)", f"{r['purity']:.3f}"),
        ("recall", f"{r['recall']:.3f}"),
        ("T0 assigned", f"{r['t0_assigned']:.3f}"),
        ("recovered (eligible)", f"{r['recovered']} ({r['recovered_eligible']})"),
        ("organic false assignment", f"{r['organic_false_assignment']:.4f} ({r['organic_assigned']})"),
        ("runtime", f"{r['runtime_s']:.1f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
