"""What the generator makes: its settings and the columns, models and campaign kinds of its output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

COLUMNS: tuple[str, ...] = ("exchange_id", "account_id", "timestamp", "prompt", "model", "ip")
# The season profile adds request metadata after the default columns (see `synth.infra`).
META_COLUMNS: tuple[str, ...] = ("client", "key_created", "payment")
PROFILES: tuple[str, ...] = ("default", "season")
MODELS: tuple[str, ...] = ("hound-4", "hound-4-mini", "hound-4-reasoning", "hound-3.5-turbo")
KINDS: tuple[str, ...] = ("copy_ring", "template_sweep", "cot_elicitation", "low_slow")
SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".csv", ".parquet")
BLOCK_ROWS = 100_000


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    ``exchanges`` is the exact row count. ``campaign_share`` is the fraction of rows sent by
    campaign accounts (their campaign prompts plus their bit of ordinary cover traffic).
    ``profile`` picks what is planted: ``default`` (small campaigns, six columns) or ``season``
    (campaigns at the scale of real distillation seasons, shared prompt banks, diluted, thin and
    heavy accounts, request metadata columns; see `synth.season`).
    """

    exchanges: int = 20_000
    seed: int = 0
    start: datetime = datetime(2026, 9, 1, tzinfo=UTC)
    days: int = 30
    campaign_share: float = 0.15
    profile: str = "default"

    def check(self) -> None:
        """Raise ``ValueError`` for settings the planner cannot honour."""
        if self.exchanges < 1:
            raise ValueError("exchanges must be >= 1")
        if not 0.0 <= self.campaign_share <= 0.9:
            raise ValueError("campaign_share must be within [0, 0.9]")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; use one of {', '.join(PROFILES)}")
