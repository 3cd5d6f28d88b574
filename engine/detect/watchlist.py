"""Analysts' verdicts fed back into detection: confirmed content is watched, benign content stops counting.

**What a mark freezes** (`freeze`, called when the mark is recorded, in the same transaction). Ring ids
are renumbered by every scan, and family and template ids move with the mining, so a mark cannot point
at them for later scans. A confirmed or benign mark keeps instead:

* the **fingerprints** of the prompts it covers (the normalised text's 64-bit hash, stable for as long
  as the normalisation is: the same text has the same fingerprint in every scan and every workspace);
* the **patterns** of the templates it covers;
* for a ring, its **members** (any label: calibration applies a ring's mark to them).

What a mark covers: a family or template mark, that family's or template's prompts. An account or ring
mark, the families and templates its accounts sent, chosen by label:

* *confirmed*: items its accounts sent at least as often as outsiders did (by accounts: outsiders <=
  insiders), and for a ring only items two or more members sent (what they share). A viral prompt the
  campaign also pasted is not its content, and watching it would flag everyone who sent it;
* *benign*: items its accounts share with any other account: what made it look linked.

**What a scan derives** (`load`, before links are built). The latest mark of each target is the one
that acts (a later suspicious mark lifts a confirmed one). Each frozen family becomes every family of
this scan holding one of its prompts (by fingerprint); each frozen template becomes the template of this
scan with the same pattern, else the one holding most of its prompts. When two marks reach one item, a
mark on the item itself beats one through an account or ring, then the latest wins.

**What it changes** (`engine.detect.scoring`): a watched item's prompts give every account that sends
them a `watchlist` signal (weight 1): the share of its exchanges on watched content, shrunk by one
pseudo-exchange (`WATCH_PRIOR`), so a new account whose first exchange pastes a confirmed ring's prompt
scores 0.5 and is flagged. The shrinkage is lighter than the percentile signals' five because this is an
analyst's verdict, not a cut read off the background. A suppressed item is dropped from the link
relations (it links nobody, counts in no item's coherence and no repeat-use test) and from the
templated and copied shares; accounts that sent one carry a `benign_content` signal of score 0 saying
what was not counted and on whose mark. Each scan writes the resolved list to the `watchlist` table,
which the online checker reads (`engine.query.snapshot`).

Without a confirmed or benign mark `load` returns None and a scan is exactly what it was without this
module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = ["BENIGN", "CONFIRMED", "SUPPRESS", "WATCH", "WATCH_PRIOR", "MarkRef", "Watchlist", "account_hits",
           "freeze", "load", "write"]

CONFIRMED, BENIGN = "confirmed", "benign"
WATCH, SUPPRESS = "watch", "suppress"
# Pseudo-exchanges added to an account's volume for its watchlist share (see the module doc).
WATCH_PRIOR = 1.0
# Example prompts kept per account on a watchlist or benign-content signal.
MAX_EXAMPLES = 3
_KIND = {"F": "family", "T": "template"}


@dataclass(frozen=True)
class MarkRef:
    """The mark behind a watchlist entry, as evidence names it."""

    mark_id: int
    label: str
    target_kind: str
    target_id: str
    author: str
    created: datetime | None

    @property
    def by(self) -> str:
        """"marked by ana on 2026-03-01" (without an author: "marked on 2026-03-01")."""
        day = f" on {self.created:%Y-%m-%d}" if self.created is not None else ""
        return f"marked by {self.author}{day}" if self.author else f"marked{day}"


@dataclass(frozen=True)
class Entry:
    kind: str  # "F" (family) | "T" (template)
    item: int
    effect: str  # WATCH | SUPPRESS
    mark: MarkRef

    @property
    def evidence(self) -> str:
        m = self.mark
        if self.effect == WATCH:
            return f"matches confirmed {m.target_kind} {m.target_id}, {m.by}"
        what = f"{_KIND[self.kind]} {self.item}"
        if (m.target_kind, m.target_id) == (_KIND[self.kind], str(self.item)):
            return f"{what} {m.by} as benign: not counted as evidence"
        return f"{what} not counted as evidence: {m.target_kind} {m.target_id} {m.by} as benign"


@dataclass(frozen=True)
class Watchlist:
    """The families and templates of this scan that marks watch or suppress; one entry per item."""

    entries: tuple[Entry, ...]

    def marks(self) -> dict[int, MarkRef]:
        return {e.mark.mark_id: e.mark for e in self.entries}

    def table(self, effect: str) -> pa.Table:
        """(kind, item, mark_id) of the entries with `effect`, for DuckDB to join."""
        sel = [e for e in self.entries if e.effect == effect]
        return pa.table({"kind": pa.array([e.kind for e in sel], pa.string()),
                         "item": pa.array([e.item for e in sel], pa.int64()),
                         "mark_id": pa.array([e.mark.mark_id for e in sel], pa.int64())})

    def count(self, effect: str) -> int:
        return sum(1 for e in self.entries if e.effect == effect)


# ---------------------------------------------------------------------- freezing (when a mark is made)
def freeze(con: duckdb.DuckDBPyConnection, mark_id: int, target_kind: str, target_id: str, label: str) -> int:
    """Keep what mark `mark_id` covers (see the module doc); returns the prompt rows kept.

    Runs in the caller's transaction, against the tables of the last scan (what the analyst saw).
    """
    if target_kind == "ring":
        con.execute("INSERT INTO mark_members SELECT ?, account_id FROM account_scores WHERE ring_id = ?",
                    [mark_id, int(target_id)])
    elif target_kind == "account":
        con.execute("INSERT INTO mark_members VALUES (?, ?)", [mark_id, str(target_id)])
    if label not in (CONFIRMED, BENIGN):
        return 0
    if target_kind == "family":
        _freeze_items(con, mark_id, "family", "SELECT ?::BIGINT AS family_id", [int(target_id)])
    elif target_kind == "template":
        _freeze_items(con, mark_id, "template", "SELECT ?::BIGINT AS template_id", [int(target_id)])
    else:
        if label == CONFIRMED:
            keep = "c.outside <= c.inside" + (" AND c.inside >= 2" if target_kind == "ring" else "")
        else:
            keep = "c.inside + c.outside >= 2"
        for kind, table, column in (("family", "families", "family_id"), ("template", "template_members",
                                                                          "template_id")):
            items = f"""
                WITH mem AS (SELECT DISTINCT account_id FROM mark_members WHERE mark_id = ?),
                mine AS (SELECT DISTINCT t.{column} FROM exchanges e JOIN mem USING (account_id)
                         JOIN {table} t USING (prompt_id)),
                c AS (SELECT t.{column},
                             count(DISTINCT e.account_id) FILTER (WHERE m.account_id IS NOT NULL) AS inside,
                             count(DISTINCT e.account_id) FILTER (WHERE m.account_id IS NULL) AS outside
                      FROM {table} t JOIN mine USING ({column}) JOIN exchanges e USING (prompt_id)
                      LEFT JOIN mem m ON m.account_id = e.account_id GROUP BY t.{column})
                SELECT c.{column} FROM c WHERE {keep}"""
            _freeze_items(con, mark_id, kind, items, [mark_id])
    n = con.execute("SELECT count(*) FROM mark_items WHERE mark_id = ? AND fingerprint IS NOT NULL",
                    [mark_id]).fetchone()[0]
    log.info("mark %d (%s %s %s): %d prompts kept for later scans", mark_id, label, target_kind, target_id, n)
    return int(n)


def _freeze_items(con: duckdb.DuckDBPyConnection, mark_id: int, kind: str, items_sql: str, params: list) -> None:
    """Insert the prompts (and, for templates, the patterns) of the items `items_sql` selects."""
    if kind == "family":
        con.execute(
            f"""INSERT INTO mark_items
                SELECT DISTINCT ?, 'family', f.family_id, p.fingerprint, NULL
                FROM families f JOIN ({items_sql}) i USING (family_id) JOIN prompts p USING (prompt_id)""",
            [mark_id, *params])
    else:
        con.execute(
            f"""INSERT INTO mark_items
                SELECT DISTINCT ?, 'template', m.template_id, p.fingerprint, NULL
                FROM template_members m JOIN ({items_sql}) i USING (template_id) JOIN prompts p USING (prompt_id)""",
            [mark_id, *params])
        con.execute(
            f"""INSERT INTO mark_items
                SELECT ?, 'template', t.template_id, NULL, t.pattern
                FROM templates t JOIN ({items_sql}) i USING (template_id)""", [mark_id, *params])


# ---------------------------------------------------------------------- deriving (each scan)
def load(con: duckdb.DuckDBPyConnection) -> Watchlist | None:
    """The watchlist of this scan's families and templates, or None when no latest mark acts on any.

    Reads `marks`, `mark_items`, `prompts`, `families`, `templates` and `template_members`.
    """
    rows = con.execute(
        """WITH latest AS (
               SELECT mark_id, target_kind, target_id, label, coalesce(author, '') AS author, created FROM marks
               QUALIFY row_number() OVER (PARTITION BY target_kind, target_id
                                          ORDER BY created DESC, mark_id DESC) = 1)
           SELECT * FROM latest
           WHERE label IN ('confirmed', 'benign') AND mark_id IN (SELECT mark_id FROM mark_items)
           ORDER BY mark_id""").fetchall()
    if not rows:
        return None
    marks = {int(r[0]): MarkRef(int(r[0]), r[3], r[1], str(r[2]), r[4], r[5]) for r in rows}
    con.register("_wl_marks", pa.table({"mark_id": pa.array(list(marks), pa.int64())}))
    try:
        fams = con.execute(
            """SELECT DISTINCT mi.mark_id, f.family_id FROM mark_items mi JOIN _wl_marks USING (mark_id)
               JOIN prompts p ON p.fingerprint = mi.fingerprint JOIN families f ON f.prompt_id = p.prompt_id
               WHERE mi.item_kind = 'family' ORDER BY 1, 2""").fetchall()
        by_pattern = con.execute(
            """SELECT DISTINCT mi.mark_id, mi.item_id, t.template_id FROM mark_items mi JOIN _wl_marks USING (mark_id)
               JOIN templates t ON t.pattern = mi.pattern
               WHERE mi.item_kind = 'template' AND mi.pattern IS NOT NULL ORDER BY 1, 2, 3""").fetchall()
        by_members = con.execute(
            """SELECT mi.mark_id, mi.item_id, m.template_id, count(*) AS n FROM mark_items mi
               JOIN _wl_marks USING (mark_id) JOIN prompts p ON p.fingerprint = mi.fingerprint
               JOIN template_members m ON m.prompt_id = p.prompt_id
               WHERE mi.item_kind = 'template' GROUP BY ALL ORDER BY 1, 2, n DESC, 3""").fetchall()
    finally:
        con.unregister("_wl_marks")
    reached: list[tuple[str, int, int]] = [("F", int(f), int(m)) for m, f in fams]
    same_pattern: dict[tuple[int, int], list[int]] = {}
    for m, old, new in by_pattern:
        same_pattern.setdefault((int(m), int(old)), []).append(int(new))
    best_members: dict[tuple[int, int], int] = {}
    for m, old, new, _ in by_members:
        best_members.setdefault((int(m), int(old)), int(new))  # rows come most members first
    for key in sorted(set(same_pattern) | set(best_members)):
        for new in same_pattern.get(key) or [best_members[key]]:
            reached.append(("T", new, key[0]))
    chosen: dict[tuple[str, int], MarkRef] = {}
    for kind, item, mark_id in reached:
        mark = marks[mark_id]
        held = chosen.get((kind, item))
        if held is None or _rank(mark, kind, item) > _rank(held, kind, item):
            chosen[(kind, item)] = mark
    entries = tuple(Entry(kind, item, WATCH if m.label == CONFIRMED else SUPPRESS, m)
                    for (kind, item), m in sorted(chosen.items()))
    wl = Watchlist(entries)
    log.info("watchlist: %d marks reach %d watched and %d suppressed families and templates", len(marks),
             wl.count(WATCH), wl.count(SUPPRESS))
    return wl


def _rank(mark: MarkRef, kind: str, item: int) -> tuple:
    """A mark on the item itself first, then the latest."""
    direct = (mark.target_kind, mark.target_id) == (_KIND[kind], str(item))
    return (direct, mark.created or datetime.min, mark.mark_id)


def account_hits(con: duckdb.DuckDBPyConnection, wl: Watchlist, effect: str) -> dict[str, tuple[int, Entry, list]]:
    """Per account that sent prompts of `effect` entries: (exchanges on them, the entry most of them
    fall under, up to MAX_EXAMPLES example prompts as dicts)."""
    items = wl.table(effect)
    if not items.num_rows:
        return {}
    by_key = {(e.kind, e.item): e for e in wl.entries if e.effect == effect}
    con.register("_wl_items", items)
    try:
        # A prompt in a listed family and a listed template counts once, under the first entry.
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _wl_ex AS
               WITH wp AS (
                   SELECT f.prompt_id, w.kind, w.item FROM families f
                   JOIN _wl_items w ON w.kind = 'F' AND w.item = f.family_id
                   UNION ALL
                   SELECT m.prompt_id, w.kind, w.item FROM template_members m
                   JOIN _wl_items w ON w.kind = 'T' AND w.item = m.template_id),
               one AS (SELECT * FROM wp QUALIFY row_number() OVER (PARTITION BY prompt_id ORDER BY kind, item) = 1)
               SELECT e.account_id, one.prompt_id, one.kind, one.item
               FROM exchanges e JOIN one USING (prompt_id)""")
        heads = con.execute(
            """WITH per AS (SELECT account_id, kind, item, count(*) AS c FROM _wl_ex GROUP BY ALL)
               SELECT account_id, sum(c) OVER (PARTITION BY account_id) AS n, kind, item FROM per
               QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY c DESC, kind, item) = 1
               ORDER BY account_id""").fetchall()
        ex = con.execute(
            f"""SELECT x.account_id, x.prompt_id, x.kind, x.item, left(p.text, 200)
                FROM (SELECT DISTINCT account_id, prompt_id, kind, item FROM _wl_ex) x
                JOIN prompts p USING (prompt_id)
                QUALIFY row_number() OVER (PARTITION BY x.account_id ORDER BY x.prompt_id) <= {MAX_EXAMPLES}
                ORDER BY x.account_id, x.prompt_id""").fetchall()
        con.execute("DROP TABLE IF EXISTS _wl_ex")
    finally:
        con.unregister("_wl_items")
    examples: dict[str, list] = {}
    for acc, pid, kind, item, text in ex:
        entry = by_key[(kind, int(item))]
        examples.setdefault(acc, []).append({"prompt_id": int(pid), f"{_KIND[kind]}_id": int(item), "text": text,
                                             "mark": f"{entry.mark.label} {entry.mark.target_kind} "
                                                     f"{entry.mark.target_id}"})
    return {acc: (int(n), by_key[(kind, int(item))], examples.get(acc, [])) for acc, n, kind, item in heads}


def write(con: duckdb.DuckDBPyConnection, wl: Watchlist | None) -> None:
    """Replace the `watchlist` table with this scan's entries (emptied when there are none)."""
    con.execute("DELETE FROM watchlist")
    if wl is None or not wl.entries:
        return
    con.executemany("INSERT INTO watchlist VALUES (?, ?, ?, ?, ?)",
                    [(_KIND[e.kind], e.item, e.effect, e.mark.mark_id, e.evidence) for e in wl.entries])

