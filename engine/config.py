"""Settings that tune the engine, with the reasons behind each default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_WORKSPACE = Path("copyhound-data")

# Prompts longer than this many characters are refused at ingest: nothing a person types is this long,
# and one 50 MB "prompt" would stall a batch. The limit is generous on purpose (about 50k tokens).
MAX_PROMPT_CHARS = 200_000

# Default who-else threshold (cosine on normalised all-MiniLM-L6-v2 embeddings). Chosen from measured
# data: see `bench/threshold.py` and README "Choosing the threshold". Perturbed copies (typos, greetings,
# homoglyphs after folding) sit above 0.85; unrelated prompts of the same topic rarely pass 0.80;
# MSRP paraphrase pairs have a median around 0.85, so 0.84 keeps near-copies and drops loose paraphrase.
DEFAULT_THRESHOLD = 0.84


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
    embed_batch: int = 256
    # Vectors per shard file: a killed embed loses at most one shard's work.
    shard_size: int = 8192
    ingest_batch_rows: int = 250_000
    threshold: float = DEFAULT_THRESHOLD
    duckdb_memory_limit: str = "4GB"
    extra: dict = field(default_factory=dict)
