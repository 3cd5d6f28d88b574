"""Settings that tune the engine, with the reasons behind each default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from index.settings import DEFAULT_JOIN, JoinSettings

DEFAULT_WORKSPACE = Path("copyhound-data")
# DuckDB's memory limit (it spills to the workspace's tmp/ past it, except where a query cannot spill):
# the environment variable overrides the default for every engine, the CLI's and the TUI's included.
MEMORY_ENV = "COPYHOUND_DUCKDB_MEMORY"
DEFAULT_DUCKDB_MEMORY = "4GB"

# Prompts longer than this many characters are refused at ingest: nothing a person types is this long,
# and one 50 MB "prompt" would stall a batch. The limit is generous on purpose (about 50k tokens).
MAX_PROMPT_CHARS = 200_000

# Per-row limits of ingest, checked in Python before DuckDB's JSON functions see a row: DuckDB parses a
# row once per JSON function, and one hostile row (a 20 MB field, a few MB of nested brackets) exhausted
# its 4 GB for the whole file. Each limit is a bad-row reason naming FILE:LINE, so `--on-error skip`
# quarantines the row and loads the rest. Measured (1 GB DuckDB limit): a 4 MB field loads, 20 MB does not.
# Any one field's value (a string's characters, or an object's JSON text): 5x the prompt limit, so a
# model's longest answers (~100k tokens, ~400k characters) load whole.
MAX_FIELD_CHARS = 1_000_000
# Bytes of one JSONL line or CSV record: a prompt and a response at their limits, written as \uXXXX
# escapes (6 bytes a character), come to 7.2 MB; a longer line is not read into memory at all.
MAX_LINE_BYTES = 8 * 1024 * 1024
# Nesting of a JSONL row: request logs nest metadata a handful of levels; 64 leaves room for any of them.
MAX_JSON_DEPTH = 64
# Timestamps outside [EARLIEST_TIMESTAMP, now + FUTURE_SLACK_SECONDS] are bad rows: nothing in AI-provider
# traffic predates 2000, and a time in the future is a unit mistake (epoch microseconds, seconds past 1e11
# read as milliseconds) or a broken clock; a day of slack covers clock skew and every time zone.
EARLIEST_TIMESTAMP = "2000-01-01"
FUTURE_SLACK_SECONDS = 86_400

# An account (or ring) at or above this campaign score counts as flagged: in the scan's figures, the
# overview, the demo and the reports. One definition, here, so `import engine` need not load detection.
FLAG_SCORE = 0.5

# `copyhound serve`: loopback unless told otherwise (the service answers who sent what to anyone who
# reaches it); a body limit that lets one prompt at the ingest limit through even written as \uXXXX escapes
# (200,000 characters x 6 bytes = 1.2 MB), and nothing much larger.
SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8750
SERVE_MAX_BODY = 2 * 1024 * 1024

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


ANALYST_ENV = "COPYHOUND_ANALYST"


def analyst_name() -> str:
    """Who marks, for a mark's author: $COPYHOUND_ANALYST, else the login name, else ""."""
    import getpass

    try:
        return os.environ.get(ANALYST_ENV) or getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return ""


def workspace_from_env(explicit: str | os.PathLike[str] | None) -> Path:
    """The workspace folder: the explicit option, else COPYHOUND_WORKSPACE, else ./copyhound-data."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("COPYHOUND_WORKSPACE")
    return Path(env) if env else DEFAULT_WORKSPACE


@dataclass(frozen=True)
class DetectSettings:
    """Detection mechanisms, each of which can be switched off to measure what it buys
    (`bench/detect_scale.py --ablate`); the defaults are what a scan runs."""

    # Weigh each shared family or template by who shares it (accounts that send little but shared
    # content), not only by how many do (engine.detect.links, "sharer weights"). Off by default: with
    # every other mechanism on, turning it off raised recall at 1M exchanges on both synthetic profiles
    # (season: copy ring 0.47 -> 0.51 at 1% organic FPR, 0.31 -> 0.39 at 0.1%; default: template sweep
    # 0.73 -> 0.87 at 0.1%; bench/results/detect_scale_1m_*.json), because the generators' heavy
    # organic users send as much shared content as campaign accounts do. Kept for traffic where they
    # do not, and measured by every ablation.
    sharer_weights: bool = False
    # An account joins a ring by its summed ties only when its ring-shared prompts stand out against its
    # own traffic (engine.detect.rings): one to three shared prompts among ordinary ones do not.
    ring_guard: bool = True
    # An outside account joins a ring when its summed ties beat the strongest chance tie of every
    # outside account in the null draws (one false join per workspace, at any size), not the 99th
    # percentile of them (1% of all outside accounts: hundreds of bystanders at a million exchanges).
    familywise_joins: bool = True
    # Items shared by more accounts than a pair list can hold are tested and linked through a bounded
    # sample of their pairs instead of being skipped (engine.detect.links).
    large_items: bool = True
    # Infrastructure and request-metadata links (shared IPs, /24s, client strings, payment fingerprints,
    # synchronised activity) fused with content links (engine.detect.infra, engine.detect.fusion).
    infra_links: bool = True
    # Single-purpose accounts (one template is nearly all they send, at volume: integrations) draw no
    # evidence from content they share only with each other, nor from their shared share, nor join rings
    # by summed ties (engine.detect.signals.single_purpose).
    single_purpose: bool = True
    # The templated-share signal counts only templates whose fixed text is a sentence or more (about
    # eight tokens): stock phrasings ("translate this into {0}: {1}") are how people write, and heavy
    # users send them all day (engine.detect.links.specific_templates).
    specific_templates: bool = True
    # Copy-network standing (engine.detect.copy_network): an account whose near-copies are shared with
    # accounts that themselves send mostly near-copies, a few hops out. Group evidence for campaigns
    # whose pairs share too little for a pair link (a large copy ring, diluted and thin accounts).
    copy_network: bool = True
    # Content rings split by operator: parts that each hold their own cards, client builds and key bursts
    # become rings of their own, and flagged accounts holding a ring's own traces join it
    # (engine.detect.operators). Campaigns on one public bank are one ring by content alone.
    operator_split: bool = True
    # Accounts past a content cut-off whose shared templates' other users are mostly one ring's join it
    # (engine.detect.copy_network.template_ties): thin sweep and low-and-slow accounts, whose fillings
    # each make their own family, so the copy network's joins cannot place them.
    template_joins: bool = True


DEFAULT_DETECT = DetectSettings()


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
    # The scan's IVF self-join (past the exact-join size): nprobe, spill, max_list, point_probes; the
    # defaults and the measurements behind them are in index.settings.
    join: JoinSettings = DEFAULT_JOIN
    detect: DetectSettings = DEFAULT_DETECT
    extra: dict = field(default_factory=dict)
