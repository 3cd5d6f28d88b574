"""What the generator makes: its settings and the columns, models and campaign kinds of its output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

COLUMNS: tuple[str, ...] = ("exchange_id", "account_id", "timestamp", "prompt", "model", "ip")
MODELS: tuple[str, ...] = ("hound-4", "hound-4-mini", "hound-4-reasoning", "hound-3.5-turbo")
KINDS: tuple[str, ...] = ("copy_ring", "template_sweep", "cot_elicitation", "low_slow")
SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".csv", ".parquet")
BLOCK_ROWS = 100_000


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    ``exchanges`` is the exact row count. ``campaign_share`` is the fraction of rows sent by
    campaign accounts (their campaign prompts plus their bit of ordinary cover traffic).
    """

    exchanges: int = 20_000
    seed: int = 0
    start: datetime = datetime(2026, 9, 1, tzinfo=UTC)
    days: int = 30
    campaign_share: float = 0.15
