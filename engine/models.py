"""Frozen result dataclasses returned by the Engine: they carry their evidence, not just counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class Record:
    """Mixin: a JSON-ready dict of the dataclass (datetimes as ISO strings)."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FileIngest(Record):
    path: str
    format: str
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_rejected: int
    new_prompts: int
    quarantine: str | None
    already_ingested: bool
    seconds: float


@dataclass(frozen=True)
class IngestResult(Record):
    files: tuple[FileIngest, ...]

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)


@dataclass(frozen=True)
class EmbedResult(Record):
    encoder: str
    embedded: int
    already_embedded: int
    shards_written: int
    index_count: int
    index_factory: str
    seconds: float
    prompts_per_second: float


@dataclass(frozen=True)
class WhoElseRow(Record):
    """One account that sent a near-copy of one query."""

    query: str
    query_index: int
    account_id: str
    n_matches: int
    max_similarity: float
    first_seen: datetime
    last_seen: datetime
    example: str
    example_prompt_id: int
    exact: bool


@dataclass(frozen=True)
class WhoElseResult(Record):
    rows: tuple[WhoElseRow, ...]
    n_queries: int
    threshold: float
    encoder: str
    unindexed_prompts: int

    def for_query(self, query_index: int) -> tuple[WhoElseRow, ...]:
        return tuple(r for r in self.rows if r.query_index == query_index)


@dataclass(frozen=True)
class PromptMatch(Record):
    """One stored prompt near a query, with who sent it (for the TUI's search-as-you-type)."""

    prompt_id: int
    text: str
    similarity: float
    exact: bool
    n_exchanges: int
    n_accounts: int
    first_seen: datetime | None
    last_seen: datetime | None
    example_account: str | None


@dataclass(frozen=True)
class WorkspaceStatus(Record):
    workspace: str
    exchanges: int
    accounts: int
    prompts: int
    embedded: int
    indexed: int
    encoder: str
    index_factory: str | None
    files: int
    first_seen: datetime | None
    last_seen: datetime | None
    last_scan: datetime | None
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------- detection
@dataclass(frozen=True)
class Signal(Record):
    """One reason an account or ring looks like a campaign, with the numbers and examples behind it.

    `value` is the raw measurement (e.g. 0.62 of its prompts are templated); `background` is the same
    measurement's cut-off on this workspace's own background (e.g. its 99th percentile among accounts
    of similar volume); `score` in [0, 1] is how far past that cut-off the value is.
    """

    name: str
    value: float
    background: float
    score: float
    detail: str
    examples: tuple[dict, ...] = ()


@dataclass(frozen=True)
class AccountScore(Record):
    account_id: str
    score: float
    ring_id: int | None
    n_exchanges: int
    top_signal: str
    signals: tuple[Signal, ...]


@dataclass(frozen=True)
class Ring(Record):
    ring_id: int
    score: float
    accounts: tuple[str, ...]
    n_exchanges: int
    summary: str
    signals: tuple[Signal, ...]


@dataclass(frozen=True)
class Family(Record):
    """Prompts that are near-copies of one centre prompt (every member is similar to the centre)."""

    family_id: int
    center_text: str
    n_prompts: int
    n_accounts: int
    n_exchanges: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class TemplateInfo(Record):
    template_id: int
    pattern: str
    kind: str
    n_prompts: int
    n_accounts: int
    n_exchanges: int
    slot_diversity: float
    fixed_ratio: float


@dataclass(frozen=True)
class ScanResult(Record):
    embedded: int
    prompts: int
    edges: int
    families: int
    templates: int
    rings: int
    flagged_accounts: int
    resumed: bool
    seconds: float
    stage_seconds: dict = field(default_factory=dict)
