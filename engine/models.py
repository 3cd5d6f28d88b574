"""Frozen result dataclasses returned by the Engine: they carry their evidence, not just counts.

One module for every result type, so `engine/__init__.py` can export them all from one place: past 500
lines it stays whole for that reason (a reader finds every result type in one file)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _plain(value: Any) -> Any:
    # dataclasses.asdict deep-copies every leaf; a service answering hundreds of checks a second cannot
    # afford that, and the leaves here are immutable (numbers, strings, datetimes) or rebuilt below.
    if is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(getattr(value, name)) for name in _field_names(type(value))}
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
        return _plain(self)


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
    # Prompts the join compared with all: every one on a full join, the newly embedded ones on an
    # incremental scan, none when only detection ran again.
    joined: int = 0


# ---------------------------------------------------------------- the analyst read side (engine.query.analyst)
# What the TUI's screens show; each result carries its evidence (which accounts, which prompts, how similar,
# when), never just counts, so a screen renders from one result and an export writes the same objects out.

MARK_KINDS = ("account", "ring", "family", "template")
MARK_LABELS = ("suspicious", "benign", "confirmed")
# What an evidence bundle can be written for (families and templates are marked, not exported).
EXPORT_KINDS = ("account", "ring")


@dataclass(frozen=True)
class Mark(Record):
    """An analyst's triage label on an account, ring, family or template; the latest mark of a target is
    the one shown. Confirmed and benign marks act on later scans (engine.detect.watchlist)."""

    target_kind: str  # "account" | "ring" | "family" | "template"
    target_id: str
    label: str  # "suspicious" | "benign" | "confirmed"
    note: str
    created: datetime | None
    author: str = ""  # who marked it ("" for marks made before authors were kept)


@dataclass(frozen=True)
class Timeline(Record):
    """Exchange counts per equal time bucket, one series per label, all over the same buckets.

    `start` and `bucket_seconds` place bucket i at [start + i*bucket_seconds, start + (i+1)*bucket_seconds).
    """

    start: datetime | None
    bucket_seconds: float
    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]  # aligned with labels; each of length n_buckets

    @property
    def n_buckets(self) -> int:
        return len(self.counts[0]) if self.counts else 0

    def series(self, label: str) -> tuple[int, ...]:
        return self.counts[self.labels.index(label)]


@dataclass(frozen=True)
class Overview(Record):
    """Workspace figures, the strongest rings and accounts, and flagged activity against all traffic."""

    status: WorkspaceStatus
    top_rings: tuple[Ring, ...]
    top_accounts: tuple[AccountScore, ...]
    top_families: tuple[Family, ...]  # sent by the most accounts
    activity: Timeline  # labels ("all traffic", "flagged accounts")
    flag_score: float
    n_flagged: int
    marks: tuple[Mark, ...]  # latest marks of the accounts and rings listed

    def mark_of(self, kind: str, target_id: object) -> Mark | None:
        return _find_mark(self.marks, kind, target_id)


@dataclass(frozen=True)
class AccountPage(Record):
    """One page of accounts by descending score (LIMIT/OFFSET), with the total and their marks."""

    rows: tuple[AccountScore, ...]
    total: int
    offset: int
    marks: tuple[Mark, ...]

    def mark_of(self, account_id: str) -> Mark | None:
        return _find_mark(self.marks, "account", account_id)


@dataclass(frozen=True)
class PromptAccount(Record):
    """One account that sent the prompt or a near-copy of it (a `matches` edge at the scan threshold)."""

    account_id: str
    n_exchanges: int  # its exchanges carrying the prompt or a near-copy
    max_similarity: float
    exact: bool  # sent the same normalised text
    first_seen: datetime | None
    last_seen: datetime | None
    score: float | None  # its own account score (None: not scored)
    ring_id: int | None
    mark: str | None  # latest mark label


@dataclass(frozen=True)
class PromptView(Record):
    """A stored prompt, its family and template, and every account that sent a near-copy (one page)."""

    prompt_id: int
    text: str
    n_exchanges: int
    n_accounts: int
    first_seen: datetime | None
    last_seen: datetime | None
    family_id: int | None
    family_center: str | None
    family_prompts: int
    template_id: int | None
    template_pattern: str | None
    n_near_copies: int  # distinct stored prompts that are near-copies (itself excluded)
    accounts: tuple[PromptAccount, ...]
    total_accounts: int
    offset: int


@dataclass(frozen=True)
class PromptGroup(Record):
    """An account's prompts of one family (and template): how many, when, and how widely the family is sent."""

    family_id: int | None
    template_id: int | None
    template_pattern: str | None
    example_prompt_id: int
    example: str
    n_prompts: int
    n_exchanges: int
    first_seen: datetime | None
    last_seen: datetime | None
    family_accounts: int  # accounts in the workspace that sent this family


@dataclass(frozen=True)
class LinkedAccount(Record):
    """An account linked to another (table account_links), the families both sent and the infrastructure
    both use beyond chance (``"subnet 203.0.113.0/24 (41 accounts)"``, from the link's evidence)."""

    account_id: str
    weight: float
    n_shared: int
    shared_families: tuple[int, ...]
    evidence: str  # the link's raw JSON evidence, as the scorer wrote it
    score: float | None
    ring_id: int | None
    mark: str | None
    shared_infrastructure: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountView(Record):
    account_id: str
    n_exchanges: int
    n_prompts: int
    first_seen: datetime | None
    last_seen: datetime | None
    score: AccountScore | None  # None: never scored
    groups: tuple[PromptGroup, ...]  # one page, largest first
    total_groups: int
    offset: int
    links: tuple[LinkedAccount, ...]
    timeline: Timeline
    mark: Mark | None

    @property
    def signals(self) -> tuple[Signal, ...]:
        return self.score.signals if self.score else ()


@dataclass(frozen=True)
class SharedFamily(Record):
    family_id: int  # = the prompt id of its centre (families are stars around one prompt)
    center: str
    n_members: int  # ring members that sent it
    n_prompts: int
    n_exchanges: int


@dataclass(frozen=True)
class TemplateSplit(Record):
    """How ring members split a template: distinct prompts of it each sent, aligned with `RingView.members`.

    `overlap` = 1 - distinct/sum: 0 when no two members sent the same prompt (coverage split), near 1
    when they all sent the same ones.
    """

    template_id: int
    pattern: str
    template_prompts: int  # the template's prompts in the whole workspace
    per_member: tuple[int, ...]
    distinct_prompts: int  # distinct prompts of it the ring sent

    @property
    def overlap(self) -> float:
        total = sum(self.per_member)
        return 0.0 if total == 0 else round(1.0 - self.distinct_prompts / total, 4)

    @property
    def coverage(self) -> float:
        return 0.0 if not self.template_prompts else round(self.distinct_prompts / self.template_prompts, 4)


@dataclass(frozen=True)
class RingView(Record):
    ring: Ring
    members: tuple[AccountScore, ...]  # by descending score
    shared_families: tuple[SharedFamily, ...]
    template_splits: tuple[TemplateSplit, ...]
    timeline: Timeline  # one series per member (labels = account ids), same buckets
    mark: Mark | None
    member_marks: tuple[Mark, ...]

    def mark_of(self, account_id: str) -> Mark | None:
        return _find_mark(self.member_marks, "account", account_id)


@dataclass(frozen=True)
class EvidenceExport(Record):
    """An evidence bundle written under WORKSPACE/exports/: the folder, its files and what they hold."""

    target_kind: str
    target_id: str
    path: str  # the bundle folder
    files: tuple[str, ...]
    n_accounts: int
    n_exchanges: int
    n_families: int
    n_signals: int
    redacted: bool = False  # prompts as fingerprints and excerpts; no responses, IPs or notes


# ---------------------------------------------------------------- online checks (engine.query.checker)
# What a long-running service answers from a snapshot of the workspace plus the prompts it saw since the
# last index (engine.query.delta). `source` names where a match came from: "workspace" (stored and
# indexed) or "recent" (checked by the service since, not indexed yet).

VERDICTS = ("known_campaign", "near_copy", "none")


@dataclass(frozen=True)
class AccountSummary(Record):
    """An account as the last scan scored it, and what the service saw of it since."""

    account_id: str
    known: bool  # it sent exchanges the workspace holds
    n_exchanges: int  # in the workspace
    n_recent_exchanges: int  # checked by the service, not indexed yet
    score: float | None  # None: not scored (new since the last scan, or never scanned)
    ring_id: int | None
    flagged: bool  # score >= engine.config.FLAG_SCORE, or in a ring
    top_signal: str
    signals: tuple[Signal, ...]  # strongest first


@dataclass(frozen=True)
class CheckEvidence(Record):
    """Another account that sent a near-copy of the checked prompt."""

    account_id: str
    source: str  # "workspace" | "recent"
    prompt_id: int | None  # its most similar stored prompt (None for a recent one)
    similarity: float
    exact: bool
    n_matches: int
    last_seen: datetime | None
    score: float | None
    ring_id: int | None
    campaign: bool  # flagged or in a ring


@dataclass(frozen=True)
class CheckResult(Record):
    """The verdict on one exchange, with the match and the evidence behind it.

    `verdict`: "known_campaign" (a near-copy of content tied to a ring: a family or template that ring
    members share, or a prompt a flagged or ringed account sent), "near_copy" (other accounts sent
    near-copies), or "none". `prompt_id` is the best stored match, the id the TUI's prompt view opens;
    `family_id`, `template_id` and `ring_id` name the campaign content it belongs to.
    """

    verdict: str
    reason: str  # one line, for a person
    account_id: str
    exchange_id: str | None  # the id recorded in the incoming file (None: not recorded)
    prompt_id: int | None
    match_text: str | None
    similarity: float | None
    exact: bool
    source: str | None
    family_id: int | None
    template_id: int | None
    ring_id: int | None
    n_accounts: int  # other accounts that sent near-copies (workspace and recent)
    n_recent_accounts: int  # of those, seen only by the service since the last index
    n_campaign_accounts: int  # of those, flagged or in a ring
    account: AccountSummary | None  # the checking account (None: never seen before)
    evidence: tuple[CheckEvidence, ...]  # campaign accounts first, then by similarity
    snapshot: int  # the snapshot version that answered
    # The watchlist entry it matched ("matches confirmed ring 12, marked by ana on 2026-03-01"), or None.
    watchlist: str | None = None


@dataclass(frozen=True)
class RingSummary(Record):
    """A ring, the families and templates its members share, and new accounts sending them since."""

    ring: Ring
    family_ids: tuple[int, ...]
    template_ids: tuple[int, ...]
    recent_accounts: tuple[str, ...]  # checked by the service with content tied to this ring


@dataclass(frozen=True)
class CheckerHealth(Record):
    status: str  # "ok", or "starting" until the first snapshot is read
    workspace: str
    encoder: str
    threshold: float
    snapshot: int  # version: 1 for the first snapshot read, +1 for each newer one
    snapshot_loaded: datetime | None
    last_scan: datetime | None
    indexed_prompts: int
    unindexed_prompts: int
    accounts: int
    rings: int
    recent_prompts: int  # in the delta index
    recent_exchanges: int
    recent_limit: int
    senders_stale: bool  # the sender index predates the last ingest (a scan rebuilds it)
    waiting: str | None  # why a newer state of the workspace is not read yet (a writer holds it), if so
    incoming: str | None  # the file checked exchanges are appended to


@dataclass(frozen=True)
class SignalCalibration(Record):
    """How one signal fared on the accounts analysts reviewed (`Analyst.calibration`).

    `signal` is a signal name, or "score" for the account score itself. Counts are accounts: reviewed
    ones with the signal, and of those the flagged ones (account score >= the flag score) by their
    label. `cut` is the lowest signal score at which the reviewed accounts scoring at least that much
    were confirmed at `target` precision or better (None: no cut reaches it), with what it keeps.
    """

    signal: str
    n_reviewed: int  # reviewed accounts with this signal (score > 0)
    n_flagged: int  # of those, flagged
    flagged_confirmed: int
    flagged_benign: int
    precision: float | None  # flagged_confirmed / (flagged_confirmed + flagged_benign)
    cut: float | None
    cut_confirmed: int  # reviewed accounts at or past the cut, confirmed
    cut_benign: int
    cut_precision: float | None
    n_suspicious: int  # accounts marked suspicious with this signal: counted apart, not reviewed


@dataclass(frozen=True)
class Calibration(Record):
    """Precision of the flags on the accounts analysts reviewed, per signal, and cut-offs that keep it.

    An account's label is its own latest mark, else the latest mark of a ring it was in when that ring
    was marked. Confirmed counts as a true positive, benign as a false positive; suspicious is a
    question, not an answer, and is counted apart.
    """

    target: float
    flag_score: float
    n_confirmed: int
    n_benign: int
    n_suspicious: int
    n_unscored: int  # reviewed accounts the last scan has no score for (no longer in the workspace)
    rows: tuple[SignalCalibration, ...]  # "score" first, then by signal name


def _find_mark(marks: tuple[Mark, ...], kind: str, target_id: object) -> Mark | None:
    key = str(target_id)
    for m in marks:
        if m.target_kind == kind and m.target_id == key:
            return m
    return None
