"""Settings that tune the engine, with the reasons behind each default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_WORKSPACE = Path("copyhound-data")
# DuckDB's memory limit (it spills to the workspace's tmp/ past it, except where a query cannot spill):
# the environment variable overrides the default for every engine, the CLI's and the TUI's included.
MEMORY_ENV = "COPYHOUND_DUCKDB_MEMORY"
DEFAULT_DUCKDB_MEMORY = "4GB"

# Prompts longer than this many characters are refused at ingest: nothing a person types is this long,
# and one 50 MB "prompt" would stall a batch. The limit is generous on purpose (about 50k tokens).
MAX_PROMPT_CHARS = 200_000

# Default who-else threshold (cosine of normalised all-MiniLM-L6-v2 embeddings), chosen from measured data
# by `bench/threshold.py` (results in bench/results/threshold.json): over 300 evasively perturbed copies of
# real prompts (typos, greetings, sign-offs, punctuation, homoglyphs, case) and the 359 most similar pairs
# of *distinct* real prompts, 0.75 is the lowest threshold with no false match among those nearest
# unrelated pairs, and it keeps 97.7% of the perturbed copies (0.84 keeps 94.7%). Exact normalised copies
# match whatever the threshold.
DEFAULT_THRESHOLD = 0.75

# Near-copy edges of `scan` use a tighter cut than who-else: families and account links are evidence
# against an account, so a loose paraphrase (MSRP paraphrase pairs pass 0.75 three times in four) must not
# count as a copy there; 0.84 drops half of those and keeps 95% of perturbed copies.
SCAN_THRESHOLD = 0.84

# Each encoder has its own cosine scale, so its own (who-else, scan) thresholds. The static fast tier's
# are the cuts that keep the same share of perturbed copies as MiniLM's defaults (97.7% and 94.7%), read
# off `bench/threshold.py --encoder static` (bench/results/threshold_static.json, vectors centred on the
# fixed reference, see engine.encoders.static). At those cuts the static model also passes 7% of the hardest unrelated pairs
# (MiniLM: 0%): its edges are candidates, which `scan --recheck` confirms with the transformer.
# IVF lists each list of the scan's self-join is compared with; `scan --nprobe` overrides. 8 keeps the
# 1M join near 100 s on two cores; see README "Scale" for the recall it buys.
DEFAULT_NPROBE = 8
# Inner-product margin within which a prompt is also a candidate in its second-nearest IVF list
# (`scan --spill`, 0 = off; index.selfjoin). Near-copies missed by the blocked join sit on list
# boundaries. At a million static-tier prompts (`bench/join_recall.py`, bench/results/join_recall.json:
# top-20 recall on 2,000 rows of exact brute force) nprobe 8 finds 0.911 in 98 s, with spill 0.03 / 0.05
# 0.949 / 0.952 in 131 / 129 s, where nprobe 12 finds 0.935 in 132 s and nprobe 16 0.946 in 179 s.
DEFAULT_SPILL = 0.05
# Most prompts an IVF list of the scan's self-join may hold (`scan --max-list`, 0 = the index's lists as
# they are); bigger lists are split by a k-means of their own (index.selfjoin). The index keeps about
# 4*sqrt(N) lists, so without a bound each prompt meets ~sqrt(N) others and the join grows as N^1.5.
# Off by default: at 3M exchanges (1.7M prompts, `bench/join_recall.py`) the split lists found fewer
# near-copies for the same time (bound 400: nprobe 8 0.883 in 256 s, nprobe 12 0.905 in 357 s; the
# index's lists at nprobe 8: 0.935 in 554 s, measured while tests ran beside it).
DEFAULT_MAX_LIST = 0
# Nearest IVF lists of its own each prompt is also compared with in the scan's self-join (`scan
# --point-probes`, 0 = off; index.selfjoin): a list's probes are the lists nearest its centroid, but a
# prompt at the list's edge has near-copies in the lists nearest itself, and the more lists (the larger
# N) the more such prompts. Without them the join compares 0.915 of the top-20 exact pairs at 10M, with
# 8 of them 0.982 (bench/results/join_partition_10m.json); at 1M 8 cost 1.8x the join for top-20 recall
# 0.955 -> 0.984 (bench/results/join_points_pass_1m.json; README, "Join recall at 10M").
DEFAULT_POINT_PROBES = 8
# The fast tier's name as workspaces record it (engine.encoders.static builds it); kept here, where nothing
# heavy is imported, so the CLI and config can name it without loading the model code.
STATIC_NAME = "static-minilm-256"
# The int8 ONNX tier's recorded name (engine.encoders.onnx builds it): the same model, quantised.
ONNX_NAME = "all-MiniLM-L6-v2-onnx-int8"
ENCODER_THRESHOLDS = {
    "all-MiniLM-L6-v2": (DEFAULT_THRESHOLD, SCAN_THRESHOLD),
    STATIC_NAME: (0.72, 0.76),
    # The int8 model's cosines sit on MiniLM's scale, a hair lower for close pairs (int8 noise in both
    # vectors). Same prompts, same perturbed copies (bench/threshold.py, default sizes, 600 copies):
    # at 0.75 both keep 97.8% (bench/results/threshold_minilm_600.json, threshold_onnx.json), so the
    # who-else cut is MiniLM's; at 0.84 MiniLM keeps 94.3% and int8 93.3%, and int8 keeps 94.5% at 0.83,
    # so the scan cut is 0.83 (at the sizes of threshold.json, 300 copies: 94.7% MiniLM at 0.84, 95.0%
    # int8 at 0.83, threshold_onnx_small.json). At 0.83 int8 passes 1 of 743 nearest unrelated pairs
    # and 22% of MSRP non-paraphrases (MiniLM at 0.84: none, 23%).
    ONNX_NAME: (DEFAULT_THRESHOLD, 0.83),
}


def thresholds_for(encoder: str) -> tuple[float, float]:
    """(who-else threshold, scan threshold) of an encoder by its full name."""
    return ENCODER_THRESHOLDS.get(encoder, (DEFAULT_THRESHOLD, SCAN_THRESHOLD))


def workspace_from_env(explicit: str | os.PathLike[str] | None) -> Path:
    """The workspace folder: the explicit option, else COPYHOUND_WORKSPACE, else ./copyhound-data."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("COPYHOUND_WORKSPACE")
    return Path(env) if env else DEFAULT_WORKSPACE


@dataclass(frozen=True)
class EngineConfig:
    """Tunable settings of one Engine; every field has a safe default."""

    device: str = "cpu"
    # None: the encoder the workspace already uses (MiniLM for a new one); "static" or "onnx" for a fast tier.
    encoder: str | None = None
    # A Ray cluster for embedding and the self-join ("auto", "local", "ray://host:10001"); None: local.
    ray_address: str | None = None
    embed_batch: int = 256
    # Vectors per shard file: a killed embed loses at most one shard's work (about 10 s on 2 cores).
    shard_size: int = 2048
    ingest_batch_rows: int = 250_000
    # None: the encoder's own default (ENCODER_THRESHOLDS).
    threshold: float | None = None
    scan_threshold: float | None = None
    duckdb_memory_limit: str = field(default_factory=lambda: os.environ.get(MEMORY_ENV) or DEFAULT_DUCKDB_MEMORY)
    # IVF lists each list of the scan's self-join is compared with (past the exact-join size).
    scan_nprobe: int = DEFAULT_NPROBE
    # Second-list margin of the scan's IVF self-join (0 = off).
    scan_spill: float = DEFAULT_SPILL
    # Largest IVF list of the scan's self-join before it is split (0 = never split).
    scan_max_list: int = DEFAULT_MAX_LIST
    # Each prompt's own nearest IVF lists it is also joined with (0 = off).
    scan_point_probes: int = DEFAULT_POINT_PROBES
    extra: dict = field(default_factory=dict)
