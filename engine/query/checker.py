"""Online checks of single exchanges against a workspace: the `Checker` a service (or any caller) holds.

`check` answers "is this prompt a near-copy of known campaign content, or of other accounts' prompts,
and how risky is this account?" from a `Snapshot` of the workspace (engine.query.snapshot: no database
connection per request) plus the `DeltaIndex` of prompts checked since the workspace last indexed them
(engine.query.delta), then records the exchange in the incoming file (engine.ingest.incoming) for the
next `copyhound ingest` (in the file before the answer, on disk within `sync_every` seconds). The verdict:

* `known_campaign`: a stored prompt it matches is a near-copy in a family, or fills a template, that at
  least two members of one ring sent (not one an analyst marked benign) or that analysts' confirmed
  marks put on the watchlist (engine.detect.watchlist; `watchlist` then says whose mark); or one of the prompt's senders (any account that sent a match) is
  flagged (score >= FLAG_SCORE) or in a ring; or it matches a recent prompt that was itself matched
  directly to such content when it was checked (one hop only, so paraphrases never chain);
* `near_copy`: other accounts sent near-copies (stored, or checked by the service seconds earlier);
* `none`: nobody else did.

A match is what who-else counts as one: the same normalised text, or cosine >= the who-else threshold;
`who_else` here returns the same rows as `Engine.who_else` on the same state of the workspace.

`refresh` (called by the service every second or so) reads a newer snapshot once the workspace has
changed and then stood still for `settle` seconds (a writer mid-job changes it every few seconds, and
every read holds a writer back for its duration); when a writer holds the database, the current
snapshot keeps answering and the read is tried again on the next call.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

import numpy as np

from engine.batches import Coalescer
from engine.encoders.base import Encoder
from engine.errors import CopyhoundError, IndexStateError, NotFoundError, WorkspaceBusyError
from engine.ingest.incoming import Exchange, IncomingLog, new_exchange_id
from engine.models import (
    AccountSummary,
    CheckerHealth,
    CheckEvidence,
    CheckResult,
    RingSummary,
    WhoElseResult,
)
from engine.query.delta import CampaignTie, DeltaIndex, RecentMatch
from engine.query.senders import NO_TS_LAST, SenderGroups, datetimes
from engine.query.snapshot import Snapshot, index_key, read_snapshot
from engine.query.who_else import Hits, check_threshold, prepare_queries, stored_hits, who_else_rows
from engine.store.workspace import Store

log = logging.getLogger(__name__)

# Exchanges the delta index holds at most: a search over them costs about what embedding one prompt does.
DELTA_LIMIT = 50_000
# Seconds between fsyncs of the incoming file (engine.ingest.incoming; 0: one before each answer).
SYNC_EVERY = 0.1
# Seconds the workspace must stand still before a newer snapshot is read.
SETTLE_SECONDS = 2.0
# Accounts listed as evidence on a check, and signals shown for the checking account.
MAX_EVIDENCE = 10
MAX_SIGNALS = 3


@dataclass(frozen=True)
class _Lead:
    """One reason a check may be campaign content, with what it matched."""

    similarity: float
    exact: bool
    prompt_id: int | None
    text: str | None
    family_id: int | None
    template_id: int | None
    ring_id: int | None
    source: str
    direct: bool  # matched stored content itself (recorded on the delta entry; never a recent tie)
    watch: str | None = None  # the watchlist evidence of its family or template, if analysts confirmed it


@dataclass(frozen=True)
class _Lookup:
    """One check's stored matches, from the snapshot its batch read."""

    snap: Snapshot
    vector: np.ndarray
    hits: Hits
    groups: SenderGroups


_HIT_FIELDS = tuple(f.name for f in fields(Hits))
_GROUP_FIELDS = tuple(f.name for f in fields(SenderGroups))


class Checker:
    """See the module docstring. Thread-safe: checks run concurrently; one snapshot read at a time."""

    def __init__(self, store: Store, encoder: Encoder, threshold: float, *, incoming: Path | None,
                 delta_limit: int = DELTA_LIMIT, settle: float = SETTLE_SECONDS,
                 sync_every: float = SYNC_EVERY) -> None:
        self.store = store
        self.encoder = encoder
        self.threshold = check_threshold(threshold)
        self.settle = settle
        self.delta = DeltaIndex(encoder.dim, delta_limit)
        self.incoming = IncomingLog(incoming, sync_every=sync_every) if incoming is not None else None
        # Concurrent checks share one forward pass of the model, and one FAISS search and grouping.
        self._encode = Coalescer(lambda texts: list(encoder.encode(texts)), max_batch=32)
        self._lookups = Coalescer(self._look_up, max_batch=32)
        self._snapshot: Snapshot | None = None
        self._refresh_lock = threading.Lock()
        self._seen: tuple[tuple, float] | None = None  # (state, first seen) of a change not read yet
        self._waiting: str | None = None

    # ------------------------------------------------------------------ snapshots
    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self, *, force: bool = False) -> bool:
        """Read a newer snapshot if the workspace changed (see the module docstring); True if one was read.

        Raises only when there is no snapshot at all yet and none can be read (no index, a damaged
        workspace); a writer holding the database is waited out by the next call, not raised.
        """
        with self._refresh_lock:
            current = self._snapshot
            state = (self.store.signature(), index_key(self.store, self.encoder.name))
            if current is not None and not force:
                if state == (current.signature, current.index.key):
                    self._seen = None
                    return False
                now = time.monotonic()
                if self._seen is None or self._seen[0] != state:
                    self._seen = (state, now)
                if now - self._seen[1] < self.settle:
                    return False
            try:
                snap = read_snapshot(self.store, self.encoder.name, self.encoder.dim,
                                     version=current.version + 1 if current else 1, previous=current,
                                     pending=self.delta.exchange_ids())
            except WorkspaceBusyError as err:
                self._waiting = str(err)
                if current is None:
                    raise
                log.debug("snapshot put off: %s", err)
                return False
            except CopyhoundError as err:
                self._waiting = str(err)
                if current is None:
                    raise
                log.warning("snapshot %d kept: %s", current.version, err)
                return False
            self._snapshot, self._seen, self._waiting = snap, None, None
        dropped = self.delta.drop_covered(set(snap.covered))
        if dropped:
            log.info("delta index: %d exchanges now ingested and indexed, dropped", dropped)
        return True

    def warm(self) -> None:
        """Load the model now (a first check would otherwise wait seconds for it)."""
        self._encode("warm up")

    def _current(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise IndexStateError(f"no snapshot of {self.store.root} read yet"
                                  + (f" ({self._waiting})" if self._waiting else ""))
        return snap

    # ------------------------------------------------------------------ checks
    def check(self, account_id: str, prompt: str, timestamp: str | float | None = None) -> CheckResult:
        """The verdict on one exchange (see the module docstring); records it unless `incoming` is None.

        QueryError in one line for an exchange `ingest` would refuse (the loader's rules and wording).
        """
        exchange = Exchange.checked(account_id, prompt, timestamp)
        normals, prints = prepare_queries([exchange.prompt])
        fp = prints[0]
        found = self._lookups((normals[0], fp))
        snap, vec, hits, groups = found.snap, found.vector, found.hits, found.groups
        recent = self.delta.search(vec, fp, self.threshold)
        leads = _stored_leads(snap, hits, groups) + _recent_leads(snap, recent)
        exchange_id = new_exchange_id()
        result = self._verdict(snap, exchange, groups, recent, leads,
                               exchange_id if self.incoming is not None else None)
        if self.incoming is not None:
            self.incoming.append(exchange.row(exchange_id))  # in the file before the answer leaves
        direct = next((lead for lead in leads if lead.direct), None)
        tie = None if direct is None else CampaignTie(direct.ring_id, direct.family_id, direct.template_id,
                                                      direct.prompt_id)
        self.delta.add(fp, exchange.prompt, vec, exchange.account_id, exchange.ts, exchange_id, tie)
        return result

    def _look_up(self, items: list[tuple[str, int]]) -> list[_Lookup]:
        """The stored matches of concurrent checks' prompts (normalised text, fingerprint) in one pass:
        one forward pass, one FAISS search and one grouping for the batch (each costs mostly per call),
        all against one snapshot, then split per prompt."""
        snap = self._current()
        vecs = [self.delta.vector(fp) for _, fp in items]
        todo = [i for i, v in enumerate(vecs) if v is None]
        if todo:
            for i, v in zip(todo, self.encoder.encode([items[i][0] for i in todo]), strict=True):
                vecs[i] = v
        matrix = np.stack(vecs).astype(np.float32, copy=False)
        hits = stored_hits(snap.senders, snap.index.index, matrix, [fp for _, fp in items], self.threshold)
        # Grouped per account as who-else groups them, and kept as arrays: a popular prompt matches
        # thousands of stored exchanges, and only the counts and the top few accounts become objects.
        groups = snap.senders.group(hits.query_index, hits.prompt_id, hits.similarity, hits.exact)
        order = np.argsort(hits.query_index, kind="stable")  # each prompt's hits in their found order
        hit_bounds = np.searchsorted(hits.query_index[order], np.arange(len(items) + 1))
        group_bounds = np.searchsorted(groups.query_index, np.arange(len(items) + 1))  # sorted by query
        out = []
        for i in range(len(items)):
            mine = order[hit_bounds[i]:hit_bounds[i + 1]]
            lo, hi = group_bounds[i], group_bounds[i + 1]
            out.append(_Lookup(snap, matrix[i], Hits(*(getattr(hits, f)[mine] for f in _HIT_FIELDS)),
                               SenderGroups(*(getattr(groups, f)[lo:hi] for f in _GROUP_FIELDS))))
        return out

    def _verdict(self, snap: Snapshot, exchange: Exchange, groups: SenderGroups, recent: list[RecentMatch],
                 leads: list[_Lead], exchange_id: str | None) -> CheckResult:
        me = exchange.account_id
        senders = snap.senders
        codes = groups.account_code.astype(np.int64)
        me_code = senders.code_of(me)
        other = codes != (-1 if me_code is None else me_code)
        codes, campaign = codes[other], snap.code_campaign[codes[other]]
        sims = np.round(groups.max_similarity[other].astype(np.float64), 4)
        n_stored, n_campaign = len(codes), int(campaign.sum())
        # Campaign accounts first, then the most similar, then by name (codes are in the names' order):
        # only the first MAX_EVIDENCE stored accounts can be evidence, whatever the recent ones add.
        top = np.lexsort((codes, -sims, ~campaign))[:MAX_EVIDENCE]
        names = [senders.account(c) for c in codes[top].tolist()]
        last = datetimes(groups.last_us[other][top], NO_TS_LAST)
        ranked = [(not bool(campaign[i]), -float(sims[i]), name, "workspace", int(groups.example_id[other][i]),
                   bool(groups.exact[other][i]), int(groups.n_matches[other][i]), seen)
                  for i, name, seen in zip(top.tolist(), names, last, strict=True)]
        # Accounts seen only by the service: those the stored matches do not already count, each once.
        fresh = {s.account_id for m in recent for s in m.senders} - {me}
        if fresh:
            listed = list(fresh)
            known = senders.codes_of(listed)
            fresh -= {name for name, hit in zip(listed, np.isin(known, codes), strict=True) if hit}
        added: set[str] = set()
        for m in recent:
            for s in m.senders:
                if s.account_id not in fresh or s.account_id in added:
                    continue
                added.add(s.account_id)
                flagged = snap.is_campaign(s.account_id)
                n_campaign += flagged
                ranked.append((not flagged, -m.similarity, s.account_id, "recent", None, m.exact, s.n_exchanges,
                               s.last_seen))
        ranked.sort(key=lambda t: t[:3])
        others = [self._evidence(snap, t[2], t[3], t[4], -t[1], t[5], t[6], t[7]) for t in ranked[:MAX_EVIDENCE]]
        best = leads[0] if leads else None
        verdict = "known_campaign" if best is not None else "near_copy" if others else "none"
        if best is None and others:
            best = _lead_of(snap, others[0], recent)
        text = best.text if best is not None else None
        if best is not None and text is None and best.prompt_id is not None:
            text = snap.senders.texts(np.array([best.prompt_id])).get(best.prompt_id)
        account = self._summary(snap, me, MAX_SIGNALS)
        n = n_stored + len(added)
        watch = next((lead.watch for lead in leads if lead.watch is not None), None)
        reason = _reason(verdict, best, n, n - n_stored, n_campaign) + (f"; {watch}" if watch else "")
        return CheckResult(
            verdict, reason, me, exchange_id,
            best.prompt_id if best else None, text, best.similarity if best else None, bool(best and best.exact),
            best.source if best else None, best.family_id if best else None, best.template_id if best else None,
            best.ring_id if best else None, n, n - n_stored, n_campaign,
            account if (account.known or account.n_recent_exchanges) else None, tuple(others), snap.version, watch)

    def _evidence(self, snap: Snapshot, account_id: str, source: str, prompt_id: int | None, similarity: float,
                  exact: bool, n: int, last_seen: datetime | None) -> CheckEvidence:
        row = snap.score(account_id)
        return CheckEvidence(account_id, source, prompt_id, float(similarity), bool(exact), int(n), last_seen,
                             None if row is None else round(row[0], 4), None if row is None else row[1],
                             snap.is_campaign(account_id))

    # ------------------------------------------------------------------ lookups
    def who_else(self, queries: list[str], *, threshold: float | None = None) -> WhoElseResult:
        """Every account that sent a near-copy of each query: `Engine.who_else`'s rows, from the snapshot."""
        snap = self._current()
        threshold = check_threshold(self.threshold if threshold is None else threshold)
        normals, prints = prepare_queries(queries)
        # One query shares a forward pass with concurrent checks; a batch is a forward pass of its own.
        vecs = self._encode(normals[0])[None, :] if len(normals) == 1 else self.encoder.encode(normals)
        rows = who_else_rows(snap.senders, snap.index.index, vecs, prints, threshold, queries)
        return WhoElseResult(tuple(rows), len(queries), threshold, self.encoder.name, snap.unindexed)

    def account(self, account_id: str) -> AccountSummary:
        """The account's score and every signal, and what the service saw of it; NotFoundError if none."""
        summary = self._summary(self._current(), str(account_id), None)
        if not summary.known and summary.score is None and not summary.n_recent_exchanges:
            raise NotFoundError(f"no account {account_id!r} in this workspace")
        return summary

    def _summary(self, snap: Snapshot, account_id: str, max_signals: int | None) -> AccountSummary:
        code = snap.senders.code_of(account_id)
        scored = snap.account_score(account_id, max_signals)
        return AccountSummary(
            account_id, code is not None, int(snap.exchange_counts[code]) if code is not None else 0,
            self.delta.account_exchanges(account_id), scored.score if scored else None,
            scored.ring_id if scored else None, snap.is_campaign(account_id), scored.top_signal if scored else "",
            scored.signals if scored else ())

    def ring(self, ring_id: int) -> RingSummary:
        """A ring, the families and templates its members share, and recent accounts sending them."""
        snap = self._current()
        ring = snap.rings.get(int(ring_id))
        if ring is None:
            raise NotFoundError(f"no ring {ring_id} in this workspace")
        recent = self.delta.ring_accounts(ring.ring_id) - set(ring.accounts)
        return RingSummary(ring, snap.ring_families.get(ring.ring_id, ()), snap.ring_templates.get(ring.ring_id, ()),
                           tuple(sorted(recent)))

    def health(self) -> CheckerHealth:
        snap = self._snapshot
        prompts, exchanges = self.delta.size()
        return CheckerHealth(
            "ok" if snap else "starting", str(self.store.root), self.encoder.name, self.threshold,
            snap.version if snap else 0, snap.loaded if snap else None, snap.last_scan if snap else None,
            snap.index.count if snap else 0, snap.unindexed if snap else 0,
            snap.senders.n_accounts if snap else 0, len(snap.rings) if snap else 0, prompts, exchanges,
            self.delta.limit, bool(snap and snap.senders_stale), self._waiting,
            str(self.incoming.path) if self.incoming else None)

    def close(self) -> None:
        if self.incoming is not None:
            self.incoming.close()


def _stored_leads(snap: Snapshot, hits: Hits, groups: SenderGroups) -> list[_Lead]:
    """The best campaign lead among stored matches, then the best one on the watchlist if another: a lead
    is a matched prompt whose family or template ring members share (or analysts watch), or the best
    match of a flagged or ringed sender. Ordered most similar, exact, with a ring, lowest prompt id first;
    computed over arrays, since a viral prompt matches thousands."""
    g_campaign = snap.code_campaign[groups.account_code.astype(np.int64)]
    pid = np.concatenate([hits.prompt_id, groups.example_id[g_campaign]])
    if len(pid) == 0:
        return []
    fam, tpl = snap.family_of(pid), snap.template_of(pid)
    content = snap.rings_of_content(fam, tpl)
    watched = snap.watched_mask(fam, tpl)
    n_hits = len(hits.prompt_id)
    sender_ring = snap.code_ring[groups.account_code[g_campaign].astype(np.int64)]
    ring = np.concatenate([content[:n_hits], np.where(content[n_hits:] >= 0, content[n_hits:], sender_ring)])
    sim = np.round(np.concatenate([hits.similarity, groups.max_similarity[g_campaign]]).astype(np.float64), 4)
    exact = np.concatenate([hits.exact, groups.exact[g_campaign]])
    # A matched prompt is a lead when tied to a ring's content or watched; a campaign sender's always.
    lead = np.concatenate([(content[:n_hits] >= 0) | watched[:n_hits], np.ones(len(pid) - n_hits, bool)])
    order = np.flatnonzero(lead)
    order = order[np.lexsort((order, pid[order], ring[order] < 0, ~exact[order], -sim[order]))]
    picked = order[:1].tolist()
    first_watched = order[watched[order]][:1].tolist()
    if first_watched and first_watched != picked:
        picked += first_watched
    return [_Lead(float(sim[i]), bool(exact[i]), int(pid[i]), None, _id(int(fam[i])), _id(int(tpl[i])),
                  _id(int(ring[i])), "workspace", True, snap.watched(int(fam[i]), int(tpl[i]))) for i in picked]


def _lead_of(snap: Snapshot, top: CheckEvidence, recent: list[RecentMatch]) -> _Lead:
    """The match to report for a near-copy: the most similar other account's."""
    if top.prompt_id is None:
        text = next((m.text for m in recent if any(s.account_id == top.account_id for s in m.senders)), None)
        return _Lead(top.similarity, top.exact, None, text, None, None, None, "recent", False)
    pid = np.array([top.prompt_id])
    return _Lead(top.similarity, top.exact, top.prompt_id, None, _id(int(snap.family_of(pid)[0])),
                 _id(int(snap.template_of(pid)[0])), None, "workspace", False)


def _recent_leads(snap: Snapshot, recent: list[RecentMatch]) -> list[_Lead]:
    return [_Lead(m.similarity, m.exact, m.tie.prompt_id, m.text, m.tie.family_id, m.tie.template_id,
                  m.tie.ring_id, "recent", False,
                  snap.watched(-1 if m.tie.family_id is None else m.tie.family_id,
                               -1 if m.tie.template_id is None else m.tie.template_id))
            for m in recent if m.tie is not None]


def _id(value: int) -> int | None:
    return None if value < 0 else int(value)


def _reason(verdict: str, best: _Lead | None, n: int, n_recent: int, n_campaign: int) -> str:
    if best is None:
        return "no other account sent a near-copy"
    what = "an exact copy" if best.exact else f"a near-copy (cosine {best.similarity:.2f})"
    of = f"prompt {best.prompt_id}" if best.prompt_id is not None else "a recent prompt"
    where = "".join([f", family {best.family_id}" if best.family_id is not None else "",
                     f", template {best.template_id}" if best.template_id is not None else "",
                     f", ring {best.ring_id}" if best.ring_id is not None else ""])
    others = f"{n} other account{'s' if n != 1 else ''} sent near-copies"
    if n_recent:
        others += f" ({n_recent} seen only since the last index)"
    if n_campaign:
        others += f", {n_campaign} flagged or in a ring"
    head = "known campaign content: " if verdict == "known_campaign" else ""
    return f"{head}{what} of {of}{where}; {others}"
