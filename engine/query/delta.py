"""Prompts the service checked since the workspace last indexed them: the delta index.

A burst of copies from new accounts is invisible to the stored index until the next `ingest` and `scan`
(hours). The delta holds every distinct normalised prompt checked since, one vector per fingerprint
however many accounts sent it (identical prompts are embedded once, as at ingest), with the exchanges
that carried it, and every check searches it exactly: a flat inner product over at most `limit`
exchanges' prompts, so a copy sent seconds earlier by another account is found by the next check.

An entry leaves when a snapshot shows all its exchanges ingested and indexed (`drop_covered`), or, past
`limit` exchanges, the least recently sent first (the exchanges stay in the incoming file; only the
seconds-fresh view of them is lost, and a warning says so once). One lock guards it: a search is one
matrix-vector product over at most `limit` rows, far cheaper than the embedding before it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignTie:
    """Stored campaign content a recent prompt matched directly when it was checked."""

    ring_id: int | None
    family_id: int | None
    template_id: int | None
    prompt_id: int


@dataclass(frozen=True)
class RecentSender:
    account_id: str
    n_exchanges: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class RecentMatch:
    """A recent prompt matching a query, with who sent it."""

    text: str
    similarity: float
    exact: bool
    senders: tuple[RecentSender, ...]
    tie: CampaignTie | None


@dataclass
class _Entry:
    fingerprint: int
    text: str
    row: int
    tie: CampaignTie | None
    exchanges: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # exchange id -> (account, ts)

    def senders(self) -> tuple[RecentSender, ...]:
        per: dict[str, list] = {}
        for account, ts in self.exchanges.values():
            s = per.setdefault(account, [0, ts, ts])
            s[0] += 1
            s[1], s[2] = min(s[1], ts), max(s[2], ts)
        return tuple(RecentSender(a, n, f, lst) for a, (n, f, lst) in sorted(per.items()))


class DeltaIndex:
    """See the module docstring. `dim`: the encoder's; `limit`: exchanges held at most."""

    def __init__(self, dim: int, limit: int) -> None:
        self.dim = dim
        self.limit = max(1, int(limit))
        self._lock = threading.Lock()
        self._vecs = np.zeros((min(self.limit, 1024), dim), np.float32)
        self._rows: list[_Entry] = []  # row i of _vecs belongs to _rows[i]
        self._by_fp: OrderedDict[int, _Entry] = OrderedDict()  # least recently sent first
        self._n_exchanges = 0
        self._per_account: Counter[str] = Counter()
        self._warned = False

    # ------------------------------------------------------------------ reads
    def size(self) -> tuple[int, int]:
        """(prompts, exchanges) held."""
        with self._lock:
            return len(self._rows), self._n_exchanges

    def vector(self, fingerprint: int) -> np.ndarray | None:
        """The stored vector of a prompt already held (no need to embed it again)."""
        with self._lock:
            entry = self._by_fp.get(fingerprint)
            return None if entry is None else self._vecs[entry.row].copy()

    def search(self, vector: np.ndarray, fingerprint: int, threshold: float) -> list[RecentMatch]:
        """Recent prompts at cosine >= threshold of `vector`, or with its fingerprint; most similar first."""
        with self._lock:
            n = len(self._rows)
            if n == 0:
                return []
            sims = self._vecs[:n] @ np.asarray(vector, np.float32)
            rows = set(np.flatnonzero(sims >= threshold).tolist())
            exact = self._by_fp.get(fingerprint)
            if exact is not None:
                rows.add(exact.row)
            found = [(self._rows[r], min(float(sims[r]), 1.0)) for r in rows]
            out = [RecentMatch(e.text, 1.0 if e is exact else round(s, 4), e is exact, e.senders(), e.tie)
                   for e, s in found]
        return sorted(out, key=lambda m: (-m.similarity, m.text))

    def account_exchanges(self, account_id: str) -> int:
        with self._lock:
            return self._per_account.get(account_id, 0)

    def ring_accounts(self, ring_id: int) -> set[str]:
        """Accounts that sent recent prompts tied to a ring's content."""
        with self._lock:
            return {acc for e in self._rows if e.tie is not None and e.tie.ring_id == ring_id
                    for acc, _ in e.exchanges.values()}

    def exchange_ids(self) -> list[str]:
        with self._lock:
            return [x for e in self._rows for x in e.exchanges]

    # ------------------------------------------------------------------ writes
    def add(self, fingerprint: int, text: str, vector: np.ndarray, account_id: str, ts: datetime,
            exchange_id: str, tie: CampaignTie | None) -> None:
        """Hold one checked exchange (its prompt's vector once per fingerprint)."""
        with self._lock:
            entry = self._by_fp.get(fingerprint)
            if entry is None:
                entry = _Entry(fingerprint, text, len(self._rows), tie)
                if entry.row == len(self._vecs):
                    grown = np.zeros((min(2 * len(self._vecs), self.limit + 1), self.dim), np.float32)
                    grown[: len(self._vecs)] = self._vecs
                    self._vecs = grown
                self._vecs[entry.row] = vector
                self._rows.append(entry)
                self._by_fp[fingerprint] = entry
            else:
                self._by_fp.move_to_end(fingerprint)
                if entry.tie is None:
                    entry.tie = tie
            entry.exchanges[exchange_id] = (account_id, ts)
            self._n_exchanges += 1
            self._per_account[account_id] += 1
            while self._n_exchanges > self.limit and len(self._by_fp) > 1:
                oldest = next(iter(self._by_fp.values()))
                if not self._warned:
                    log.warning("delta index: over its limit of %d exchanges; the least recently sent prompts "
                                "leave it (their exchanges stay in the incoming file): ingest and scan sooner, "
                                "or raise the limit", self.limit)
                    self._warned = True
                self._remove(oldest)

    def drop_covered(self, exchange_ids: set[str]) -> int:
        """Forget exchanges the workspace now holds and indexes; returns how many were dropped."""
        if not exchange_ids:
            return 0
        dropped = 0
        with self._lock:
            for entry in list(self._rows):
                gone = [x for x in entry.exchanges if x in exchange_ids]
                for x in gone:
                    self._forget(entry.exchanges.pop(x)[0])
                dropped += len(gone)
                if not entry.exchanges:
                    self._remove(entry)
        return dropped

    def _forget(self, account_id: str) -> None:
        self._n_exchanges -= 1
        self._per_account[account_id] -= 1
        if not self._per_account[account_id]:
            del self._per_account[account_id]

    def _remove(self, entry: _Entry) -> None:
        """Remove an entry: the last row moves into its place (the lock is held)."""
        for account, _ in entry.exchanges.values():
            self._forget(account)
        last = self._rows.pop()
        if last is not entry:
            self._vecs[entry.row] = self._vecs[last.row]
            last.row = entry.row
            self._rows[entry.row] = last
        del self._by_fp[entry.fingerprint]
