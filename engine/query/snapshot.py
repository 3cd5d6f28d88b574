"""What a long-running reader answers from: one state of the workspace, read into memory (a `Snapshot`).

A service cannot keep DuckDB open: a read-only connection shares the file with other readers but never
with a writer, so holding one would stop `copyhound scan` and `ingest` (they wait `busy_timeout`, then
fail). Nor can it open the database per request: that costs ~15 ms, and while a writer holds the file
there is no connection to be had at all. So `read_snapshot` reads, under one short read-only
connection, what a check needs into arrays and dicts: the sender index (memory-mapped,
engine.query.senders), each near-copy's family and each template member's template, which families and
templates ring members share, every account's score and signals, the rings. A request takes a
reference to one snapshot and reads that one state to its end; the next snapshot replaces it whole.

The FAISS index is a file beside the database, replaced atomically by `embed` (index.io), and is
reopened only when its size or modification time changes; its manifest says which vector shards it
holds (`max_shard`), which is how the delta index learns which of its exchanges the workspace now
indexes (`covered`).

The sender index is taken as stored, and built here only when there is none: a build costs about a
second per million exchanges under the read lock, which would hold a writer back. After an `ingest`
without a scan it is the older build (`senders_stale`) until the next scan rebuilds it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from engine.config import FLAG_SCORE
from engine.errors import IndexStateError
from engine.models import AccountScore, Ring
from engine.query.findings import rings, signals_from_json
from engine.query.senders import SenderIndex, dense_by_prompt, gather_by_prompt
from engine.store import vectors
from engine.store.workspace import Store

log = logging.getLogger(__name__)

# The score row of an account the last scan found nothing on: one shared tuple, however many accounts.
_QUIET = (0.0, None, "", "")


@dataclass(frozen=True)
class IndexFile:
    """The FAISS index as read from its file: `key` (mtime_ns, size) tells when the file changed."""

    key: tuple[int, int]
    index: object
    max_shard: int
    count: int


def index_key(store: Store, encoder: str) -> tuple[int, int] | None:
    try:
        st = store.index_path(encoder).stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def read_index(store: Store, encoder: str, dim: int, previous: IndexFile | None) -> IndexFile:
    """The encoder's index, `previous` again while its file is unchanged. IndexStateError in one line
    when there is none or it fails its checks (a save under way is read on the next try)."""
    key = index_key(store, encoder)
    if key is None:
        raise IndexStateError(f"no index for {encoder} in {store.root}: run `copyhound embed` (or scan) first")
    if previous is not None and previous.key == key:
        return previous
    idx, manifest = vectors.open_index(store, encoder, dim)
    return IndexFile(key, idx, int(manifest.extra.get("max_shard") or 0), int(idx.ntotal))


@dataclass(frozen=True)
class Snapshot:
    """One state of the workspace in memory; see the module docstring. Never changed once read."""

    version: int
    loaded: datetime
    signature: tuple  # Store.signature() taken before reading: a commit since makes it differ
    index: IndexFile
    senders: SenderIndex
    senders_stale: bool
    exchange_counts: np.ndarray  # int64 per sender code
    unindexed: int
    # Indexed by prompt id (a gather per lookup: a check looks up thousands of matched prompts). Family:
    # the centre's prompt id, for every prompt of the last scan (a prompt beyond it is its own family).
    # Template: its (lowest) template id, -1 where it fills none.
    family_by_prompt: np.ndarray  # int32
    template_by_prompt: np.ndarray  # int32
    ring_families: dict[int, tuple[int, ...]]
    ring_templates: dict[int, tuple[int, ...]]
    scores: dict[str, tuple[float, int | None, str, str]]  # account -> (score, ring, top signal, signals)
    rings: dict[int, Ring]
    last_scan: datetime | None
    covered: frozenset[str]  # exchange ids of the delta index the workspace now holds and indexes
    # Per sender code (engine.query.senders), so a check reads its thousands of matching senders as arrays:
    code_ring: np.ndarray  # int64, the account's ring or -1
    code_campaign: np.ndarray  # bool, flagged or in a ring (`is_campaign`)
    # Families (templates) ring members share -> the ring most of their senders are in, as sorted
    # (keys, values) arrays for `rings_of_content`.
    family_ring_table: tuple[np.ndarray, np.ndarray]
    template_ring_table: tuple[np.ndarray, np.ndarray]
    # Families and templates analysts' confirmed marks watch -> the evidence line (engine.detect.watchlist).
    watched_families: dict[int, str] = field(default_factory=dict)
    watched_templates: dict[int, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ lookups
    def family_of(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Family id per prompt (int64), -1 for a prompt newer than the last scan."""
        return gather_by_prompt(self.family_by_prompt, prompt_ids)

    def template_of(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Template id per prompt (int64), -1 where it fills none."""
        return gather_by_prompt(self.template_by_prompt, prompt_ids)

    def watched(self, family_id: int, template_id: int) -> str | None:
        """The watchlist evidence of this family, else of this template, else None."""
        line = self.watched_families.get(family_id)
        return line if line is not None else self.watched_templates.get(template_id)

    def rings_of_content(self, family_ids: np.ndarray, template_ids: np.ndarray) -> np.ndarray:
        """The ring whose members share each family, else each template (int64, -1 for none)."""
        by_template = _lookup(*self.template_ring_table, template_ids, np.full(len(template_ids), -1, np.int64))
        return _lookup(*self.family_ring_table, family_ids, by_template)

    def watched_mask(self, family_ids: np.ndarray, template_ids: np.ndarray) -> np.ndarray:
        """Where `watched` would answer a line (bool per pair)."""
        mask = np.zeros(len(family_ids), bool)
        if self.watched_families:
            mask |= np.isin(family_ids, np.fromiter(self.watched_families, np.int64))
        if self.watched_templates:
            mask |= np.isin(template_ids, np.fromiter(self.watched_templates, np.int64))
        return mask

    def score(self, account_id: str) -> tuple[float, int | None, str, str] | None:
        return self.scores.get(account_id)

    def is_campaign(self, account_id: str) -> bool:
        row = self.scores.get(account_id)
        return row is not None and bool(_campaign(row[0], -1 if row[1] is None else row[1]))

    def account_score(self, account_id: str, max_signals: int | None = None) -> AccountScore | None:
        row = self.scores.get(account_id)
        if row is None:
            return None
        signals = sorted(signals_from_json(row[3]), key=lambda s: -s.score)[:max_signals]
        code = self.senders.code_of(account_id)
        n = int(self.exchange_counts[code]) if code is not None else 0
        return AccountScore(account_id, round(row[0], 4), row[1], n, row[2], tuple(signals))


def read_snapshot(store: Store, encoder: str, dim: int, *, version: int, previous: Snapshot | None,
                  pending: list[str]) -> Snapshot:
    """Read the workspace's current state (see the module docstring); `pending`: the delta index's
    exchange ids, to learn which the workspace now holds and indexes."""
    started = time.monotonic()
    signature = store.signature()
    index = read_index(store, encoder, dim, previous.index if previous else None)
    with store.connect() as con:
        key = SenderIndex.workspace_key(con)
        senders = previous.senders if previous is not None and previous.senders.key == key else None
        senders = senders or SenderIndex.stored(store)
        if senders is None:
            senders = SenderIndex.build(store, con, key)
        stale = senders.key != key
        prompts, embedded = con.execute(
            """SELECT (SELECT count(*) FROM prompts),
                      (SELECT coalesce(sum(n), 0) FROM embedding_shards WHERE encoder = ?)""", [encoder]).fetchone()
        members = con.execute("SELECT prompt_id, family_id FROM families WHERE family_id <> prompt_id "
                              "ORDER BY prompt_id").fetchnumpy()
        max_family = con.execute("SELECT coalesce(max(prompt_id), 0) FROM families").fetchall()[0][0]
        tpl = con.execute("SELECT prompt_id, min(template_id) AS t FROM template_members GROUP BY prompt_id "
                          "ORDER BY prompt_id").fetchnumpy()
        listed = con.execute("SELECT item_kind, item_id, effect, evidence FROM watchlist").fetchall()
        # A family or template marked benign is no ring's content, whoever sent it.
        benign = {(k, int(i)) for k, i, effect, _ in listed if effect == "suppress"}
        fam_ties = [t for t in _ties(con, "families", "family_id") if ("family", t[0]) not in benign]
        tpl_ties = [t for t in _ties(con, "template_members", "template_id") if ("template", t[0]) not in benign]
        scores = {str(r[0]): (_QUIET if (r[1] == 0 and r[2] is None and r[3] is None) else
                              (float(r[1]), None if r[2] is None else int(r[2]), r[3] or "", r[4] or ""))
                  for r in con.execute("SELECT account_id, score, ring_id, top_signal, CAST(signals AS VARCHAR) "
                                       "FROM account_scores").fetchall()}
        code_ring, code_campaign = _by_code(senders, con.sql(
            "SELECT account_id, coalesce(ring_id, -1)::BIGINT AS ring, coalesce(score, 0.0)::DOUBLE AS score "
            "FROM account_scores").to_arrow_table())
        found = {r.ring_id: r for r in rings(con, limit=None)}
        last_scan = con.execute("SELECT max(finished) FROM scan_runs WHERE status = 'done'").fetchall()[0][0]
        covered = frozenset() if stale else _covered(con, pending, encoder, index.max_shard)
    counts = (previous.exchange_counts if previous is not None and previous.senders is senders
              else senders.exchange_counts())
    snap = Snapshot(
        version, datetime.now(), signature, index, senders, stale, counts, int(prompts - embedded),
        dense_by_prompt(members["prompt_id"], members["family_id"], int(max_family), identity=True),
        dense_by_prompt(tpl["prompt_id"], tpl["t"], int(tpl["prompt_id"].max()) if len(tpl["prompt_id"]) else -1),
        _by_ring(fam_ties), _by_ring(tpl_ties), scores, found,
        last_scan, covered, code_ring, code_campaign, _table(_best_ring(fam_ties)), _table(_best_ring(tpl_ties)),
        {int(i): e for k, i, effect, e in listed if effect == "watch" and k == "family"},
        {int(i): e for k, i, effect, e in listed if effect == "watch" and k == "template"})
    log.info("snapshot %d: %d indexed prompts, %d accounts scored, %d rings%s, read in %.2f s", version,
             index.count, len(scores), len(found), " (sender index older than the workspace)" if stale else "",
             time.monotonic() - started)
    return snap


def _ties(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[tuple[int, int, int]]:
    """(item, ring, members) for each family or template at least two members of a ring sent."""
    return [(int(a), int(b), int(c)) for a, b, c in con.execute(
        f"""SELECT t.{column}, s.ring_id, count(DISTINCT e.account_id)
            FROM exchanges e JOIN account_scores s USING (account_id) JOIN {table} t USING (prompt_id)
            WHERE s.ring_id IS NOT NULL GROUP BY ALL HAVING count(DISTINCT e.account_id) >= 2""").fetchall()]


def _best_ring(ties: list[tuple[int, int, int]]) -> dict[int, int]:
    """Item -> the ring with most members sending it (the lowest id on a tie)."""
    best: dict[int, int] = {}
    for item, ring, _ in sorted(ties, key=lambda t: (t[0], -t[2], t[1])):
        best.setdefault(item, ring)
    return best


def _campaign(score, ring):
    """Flagged or in a ring (``ring`` -1 for none): the accounts a check counts as campaign ones.

    The one definition, for one account (`Snapshot.is_campaign`) and for arrays of them (`_by_code`).
    """
    return (np.asarray(score) >= FLAG_SCORE) | (np.asarray(ring) >= 0)


def _by_code(senders: SenderIndex, scored: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(ring or -1, campaign) per sender code from account_scores' rows; an account not scored is neither."""
    ring = np.full(senders.n_accounts, -1, np.int64)
    campaign = np.zeros(senders.n_accounts, bool)
    codes = senders.codes_of(scored.column("account_id"))
    known = codes >= 0
    scored_ring = scored.column("ring").to_numpy()
    ring[codes[known]] = scored_ring[known]
    campaign[codes[known]] = _campaign(scored.column("score").to_numpy(), scored_ring)[known]
    return ring, campaign


def _table(mapping: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.array(sorted(mapping), np.int64)
    return keys, np.array([mapping[k] for k in keys.tolist()], np.int64)


def _by_ring(ties: list[tuple[int, int, int]]) -> dict[int, tuple[int, ...]]:
    out: dict[int, list[int]] = {}
    for item, ring, _ in ties:
        out.setdefault(ring, []).append(item)
    return {ring: tuple(sorted(items)) for ring, items in out.items()}


def _covered(con: duckdb.DuckDBPyConnection, pending: list[str], encoder: str, max_shard: int) -> frozenset[str]:
    """Those of `pending` exchange ids whose exchange is stored and whose prompt the index holds."""
    if not pending:
        return frozenset()
    # fetchall, never fetchone, above: DuckDB refuses to register a table while a result is unfinished.
    con.register("pending_ids", pa.table({"exchange_id": pa.array(pending, pa.string())}))
    try:
        rows = con.execute(
            """SELECT e.exchange_id FROM exchanges e JOIN pending_ids USING (exchange_id)
               JOIN embeddings m ON m.prompt_id = e.prompt_id AND m.encoder = ? WHERE m.shard_id <= ?""",
            [encoder, max_shard]).fetchall()
    finally:
        con.unregister("pending_ids")
    return frozenset(r[0] for r in rows)


def _lookup(keys: np.ndarray, values: np.ndarray, wanted, default: np.ndarray) -> np.ndarray:
    wanted = np.asarray(wanted, np.int64)
    out = np.array(default, np.int64, copy=True)
    if len(keys) == 0 or len(wanted) == 0:
        return out
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    hit = keys[pos] == wanted
    out[hit] = values[pos[hit]]
    return out
