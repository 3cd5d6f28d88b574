"""The analyst read side (overview, prompt, account and ring views, marks, exports): see `Analyst`.

Each method opens one short-lived connection (`self.store.connect()`), so a TUI that keeps an Engine for
hours never holds the workspace's lock between calls: a batch job (`copyhound scan`) can write in
between, and a call made while that job holds the lock raises `WorkspaceBusyError` after
`busy_timeout` seconds instead of blocking forever or reading half-written data. Callers (the TUI)
catch it and retry.

Big lists are paged in SQL (`limit`/`offset`), so a view's cost depends on the page, not on the size of
the workspace; the remaining per-call cost is DuckDB's scan of `exchanges` filtered on one account or
one set of prompts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb

from engine.config import FLAG_SCORE
from engine.detect import watchlist
from engine.errors import QueryError
from engine.models import (
    MARK_KINDS,
    MARK_LABELS,
    AccountPage,
    AccountScore,
    AccountView,
    Calibration,
    EvidenceExport,
    LinkedAccount,
    Mark,
    Overview,
    PromptAccount,
    PromptGroup,
    PromptView,
    RingView,
    SharedFamily,
    TemplateSplit,
    Timeline,
    WorkspaceStatus,
)
from engine.query import calibration
from engine.query.export import signal_row, write_bundle
from engine.query.findings import account_scores, families, rings
from engine.store.workspace import Store

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1)
# Where a mark's target must exist, by kind (one `?` for its id).
_TARGETS = {"account": "accounts WHERE account_id = ?", "ring": "rings WHERE ring_id = ?",
            "family": "families WHERE family_id = ?", "template": "templates WHERE template_id = ?"}


class Analyst:
    """The views the TUI pivots through, triage marks and evidence exports, over one workspace.

    Reached as `Engine.analyst`; `status` is the Engine's own (the overview's figures name the encoder
    the Engine answers with, which only the Engine knows).
    """

    def __init__(self, store: Store, status: Callable[[], WorkspaceStatus]) -> None:
        self.store = store
        self._status = status

    # ------------------------------------------------------------------ overview
    def overview(self, *, limit: int = 10, buckets: int = 60, flag_score: float = FLAG_SCORE) -> Overview:
        """Workspace figures, the top `limit` rings and accounts, and activity of flagged accounts
        against all traffic over `buckets` equal time buckets."""
        status = self._status()
        with self.store.connect() as con:
            top_rings = rings(con, limit=limit)
            top_accounts = account_scores(con, limit=limit)
            top_families = families(con, limit=limit, min_accounts=2)
            n_flagged = con.execute("SELECT count(*) FROM account_scores WHERE score >= ?",
                                    [flag_score]).fetchone()[0]
            t0, t1 = con.execute("SELECT min(epoch(ts)), max(epoch(ts)) FROM exchanges").fetchone()
            start, width = _buckets(t0, t1, buckets)
            counts = [[0] * buckets, [0] * buckets]
            if start is not None:
                rows = con.execute(
                    f"""SELECT {_bucket_sql(buckets)} AS b, count(*),
                               count(*) FILTER (WHERE f.account_id IS NOT NULL)
                        FROM exchanges e
                        LEFT JOIN (SELECT account_id FROM account_scores WHERE score >= ?) f USING (account_id)
                        GROUP BY b""", [t0, width, flag_score]).fetchall()
                for b, n_all, n_flag in rows:
                    counts[0][int(b)] = int(n_all)
                    counts[1][int(b)] = int(n_flag)
            marks = _latest_marks(con, "account", [a.account_id for a in top_accounts]) + \
                _latest_marks(con, "ring", [str(r.ring_id) for r in top_rings])
        activity = Timeline(start, width, ("all traffic", "flagged accounts"), tuple(tuple(c) for c in counts))
        return Overview(status, tuple(top_rings), tuple(top_accounts), tuple(top_families), activity, flag_score, int(n_flagged),
                        tuple(marks))

    def account_page(self, *, offset: int = 0, limit: int = 100, min_score: float = 0.0) -> AccountPage:
        """One page of scored accounts by descending score (for browsing all of them)."""
        with self.store.connect() as con:
            total = con.execute("SELECT count(*) FROM account_scores WHERE score >= ?", [min_score]).fetchone()[0]
            ids = [r[0] for r in con.execute(
                """SELECT account_id FROM account_scores WHERE score >= ?
                   ORDER BY score DESC, account_id LIMIT ? OFFSET ?""",
                [min_score, int(limit), int(offset)]).fetchall()]
            rows = account_scores(con, limit=None, min_score=min_score, account_ids=ids) if ids else []
            marks = _latest_marks(con, "account", ids)
        return AccountPage(tuple(rows), int(total), int(offset), tuple(marks))

    def review_queue(self, *, offset: int = 0, limit: int = 100, min_score: float = 0.0) -> AccountPage:
        """One page of the review queue: accounts not reviewed first, then suspicious ones, then answered
        ones, each by descending score (`engine.query.calibration`). `marks` holds each listed account's
        review, its own mark or its ring's (the note then says which ring)."""
        with self.store.connect() as con:
            ids, total = calibration.review_queue(con, offset=offset, limit=limit, min_score=min_score)
            found = {a.account_id: a for a in account_scores(con, limit=None, account_ids=ids)} if ids else {}
            marks = calibration.reviews(con, ids)
        return AccountPage(tuple(found[a] for a in ids if a in found), total, int(offset),
                           tuple(marks[a] for a in ids if a in marks))

    def calibration(self, *, target: float = 0.9, flag_score: float = FLAG_SCORE) -> Calibration:
        """Precision of the flags per signal on the accounts analysts reviewed, and the cut-offs that would
        have kept it at `target` or better (see `engine.query.calibration`)."""
        if not 0.0 < target <= 1.0:
            raise QueryError(f"the target precision is a share in (0, 1], not {target}")
        with self.store.connect() as con:
            return calibration.calibrate(con, target=target, flag_score=flag_score)

    # ------------------------------------------------------------------ prompt
    def prompt_view(self, prompt_id: int, *, limit: int = 200, offset: int = 0) -> PromptView:
        """A stored prompt and every account that sent it or a near-copy (one page of them).

        Near-copies are the prompt's `matches` edges from the last scan (cosine >= the scan threshold,
        at most the scan's MAX_NEIGHBORS per prompt) plus the prompt itself (an exact normalised copy).
        """
        prompt_id = int(prompt_id)
        with self.store.connect() as con:
            head = con.execute(
                """SELECT p.text, p.n_exchanges, p.n_accounts, p.first_seen, p.last_seen,
                          f.family_id, c.text,
                          (SELECT count(*) FROM families g WHERE g.family_id = f.family_id),
                          tm.template_id, t.pattern
                   FROM prompts p
                   LEFT JOIN families f ON f.prompt_id = p.prompt_id
                   LEFT JOIN prompts c ON c.prompt_id = f.center_id
                   LEFT JOIN template_members tm ON tm.prompt_id = p.prompt_id
                   LEFT JOIN templates t ON t.template_id = tm.template_id
                   WHERE p.prompt_id = ? LIMIT 1""", [prompt_id]).fetchone()
            if head is None:
                raise QueryError(f"no prompt with id {prompt_id} in this workspace")
            con.execute(
                """CREATE OR REPLACE TEMP TABLE near AS
                   SELECT prompt_id, max(sim) AS sim FROM (
                       SELECT ?::BIGINT AS prompt_id, 1.0::REAL AS sim
                       UNION ALL SELECT prompt_b, similarity FROM matches WHERE prompt_a = ?
                       UNION ALL SELECT prompt_a, similarity FROM matches WHERE prompt_b = ?)
                   GROUP BY prompt_id""", [prompt_id, prompt_id, prompt_id])
            n_near = con.execute("SELECT count(*) - 1 FROM near").fetchone()[0]
            rows = con.execute(
                """WITH per AS (
                       SELECT e.account_id, count(*) AS n, max(n.sim) AS max_sim,
                              bool_or(e.prompt_id = ?) AS exact, min(e.ts) AS first, max(e.ts) AS last
                       FROM near n JOIN exchanges e USING (prompt_id) GROUP BY e.account_id)
                   SELECT per.account_id, n, max_sim, exact, first, last, s.score, s.ring_id,
                          count(*) OVER () AS total
                   FROM per LEFT JOIN account_scores s USING (account_id)
                   ORDER BY max_sim DESC, n DESC, per.account_id LIMIT ? OFFSET ?""",
                [prompt_id, int(limit), int(offset)]).fetchall()
            total = rows[0][8] if rows else con.execute(
                "SELECT count(DISTINCT account_id) FROM near JOIN exchanges USING (prompt_id)").fetchone()[0]
            labels = _mark_labels(con, "account", [r[0] for r in rows])
        accounts = tuple(
            PromptAccount(str(r[0]), int(r[1]), round(float(r[2]), 4), bool(r[3]), r[4], r[5],
                          None if r[6] is None else round(float(r[6]), 4), None if r[7] is None else int(r[7]),
                          labels.get(str(r[0])))
            for r in rows)
        return PromptView(prompt_id, head[0], int(head[1] or 0), int(head[2] or 0), head[3], head[4],
                          None if head[5] is None else int(head[5]), head[6], int(head[7] or 0),
                          None if head[8] is None else int(head[8]), head[9], int(n_near), accounts,
                          int(total), int(offset))

    # ------------------------------------------------------------------ account
    def account_view(self, account_id: str, *, limit: int = 100, offset: int = 0, buckets: int = 60) -> AccountView:
        """An account's score and signals, its prompts grouped by family and template (one page), its
        timeline, and the accounts it is linked to with the families both sent."""
        account_id = str(account_id)
        with self.store.connect() as con:
            head = con.execute(
                "SELECT n_exchanges, n_prompts, first_seen, last_seen FROM accounts WHERE account_id = ?",
                [account_id]).fetchone()
            if head is None:
                raise QueryError(f"no account {account_id!r} in this workspace")
            scored = account_scores(con, limit=1, account_ids=[account_id])
            groups = con.execute(
                """WITH mine AS (
                       -- A template sweep's prompts are each their own family: group them by template.
                       SELECT e.prompt_id, e.ts, tm.template_id,
                              CASE WHEN tm.template_id IS NULL THEN f.family_id END AS family_id
                       FROM exchanges e
                       LEFT JOIN families f ON f.prompt_id = e.prompt_id
                       LEFT JOIN template_members tm ON tm.prompt_id = e.prompt_id
                       WHERE e.account_id = ?),
                   g AS (
                       SELECT family_id, template_id, count(DISTINCT prompt_id) AS n_prompts, count(*) AS n_ex,
                              min(ts) AS first, max(ts) AS last, arg_min(prompt_id, ts) AS example_id
                       FROM mine GROUP BY family_id, template_id
                       ORDER BY n_ex DESC, n_prompts DESC, family_id NULLS LAST, template_id NULLS LAST
                       LIMIT ? OFFSET ?),
                   fam_acc AS (
                       SELECT f.family_id, count(DISTINCT e.account_id) AS n
                       FROM families f JOIN exchanges e USING (prompt_id)
                       WHERE f.family_id IN (SELECT family_id FROM g) GROUP BY f.family_id)
                   SELECT g.family_id, g.template_id, t.pattern, g.example_id, p.text, g.n_prompts, g.n_ex,
                          g.first, g.last, coalesce(fa.n, 1)
                   FROM g JOIN prompts p ON p.prompt_id = g.example_id
                   LEFT JOIN templates t ON t.template_id = g.template_id
                   LEFT JOIN fam_acc fa ON fa.family_id = g.family_id
                   ORDER BY g.n_ex DESC, g.n_prompts DESC, g.family_id NULLS LAST, g.template_id NULLS LAST""",
                [account_id, int(limit), int(offset)]).fetchall()
            total_groups = con.execute(
                """SELECT count(*) FROM (SELECT DISTINCT CASE WHEN tm.template_id IS NULL THEN f.family_id END,
                                                        tm.template_id FROM exchanges e
                   LEFT JOIN families f ON f.prompt_id = e.prompt_id
                   LEFT JOIN template_members tm ON tm.prompt_id = e.prompt_id WHERE e.account_id = ?)""",
                [account_id]).fetchone()[0]
            links = _links(con, account_id)
            timeline = _member_timeline(con, [account_id], buckets)
            mark = _latest_marks(con, "account", [account_id])
        return AccountView(
            account_id, int(head[0] or 0), int(head[1] or 0), head[2], head[3], scored[0] if scored else None,
            tuple(PromptGroup(None if r[0] is None else int(r[0]), None if r[1] is None else int(r[1]), r[2],
                              int(r[3]), r[4], int(r[5]), int(r[6]), r[7], r[8], int(r[9])) for r in groups),
            int(total_groups), int(offset), links, timeline, mark[0] if mark else None)

    # ------------------------------------------------------------------ ring
    def ring_view(self, ring_id: int, *, buckets: int = 48, max_families: int = 50) -> RingView:
        """A ring's members, the families and templates they share, how they split each shared template,
        their activity side by side over the same time buckets, and the ring's evidence."""
        ring_id = int(ring_id)
        with self.store.connect() as con:
            found = rings(con, limit=None, ring_ids=[ring_id])
            if not found:
                raise QueryError(f"no ring {ring_id} in this workspace (run `copyhound scan`?)")
            ring = found[0]
            ids = list(ring.accounts)
            members = account_scores(con, limit=None, account_ids=ids) if ids else []
            con.execute("CREATE OR REPLACE TEMP TABLE ring_members AS SELECT unnest(?::VARCHAR[]) AS account_id",
                        [ids])
            fams = con.execute(
                """SELECT f.family_id, any_value(c.text), count(DISTINCT e.account_id) AS n_members,
                          count(DISTINCT e.prompt_id), count(*) AS n_ex
                   FROM exchanges e JOIN ring_members USING (account_id)
                   JOIN families f ON f.prompt_id = e.prompt_id JOIN prompts c ON c.prompt_id = f.center_id
                   GROUP BY f.family_id HAVING count(DISTINCT e.account_id) >= 2
                   ORDER BY n_members DESC, n_ex DESC, f.family_id LIMIT ?""", [int(max_families)]).fetchall()
            split_rows = con.execute(
                """SELECT tm.template_id, e.account_id, count(DISTINCT e.prompt_id)
                   FROM exchanges e JOIN ring_members USING (account_id)
                   JOIN template_members tm ON tm.prompt_id = e.prompt_id GROUP BY ALL""").fetchall()
            distinct = dict(con.execute(
                """SELECT tm.template_id, count(DISTINCT e.prompt_id)
                   FROM exchanges e JOIN ring_members USING (account_id)
                   JOIN template_members tm ON tm.prompt_id = e.prompt_id GROUP BY ALL""").fetchall())
            tpl = {int(r[0]): (r[1], int(r[2] or 0)) for r in con.execute(
                """SELECT template_id, pattern, n_prompts FROM templates
                   WHERE template_id IN (SELECT DISTINCT tm.template_id FROM exchanges e
                       JOIN ring_members USING (account_id) JOIN template_members tm USING (prompt_id))""").fetchall()}
            timeline = _member_timeline(con, [m.account_id for m in members], buckets)
            mark = _latest_marks(con, "ring", [str(ring_id)])
            member_marks = _latest_marks(con, "account", ids)
        order = {m.account_id: i for i, m in enumerate(members)}
        per: dict[int, list[int]] = {}
        for tid, acc, n in split_rows:
            if acc in order:
                per.setdefault(int(tid), [0] * len(members))[order[acc]] = int(n)
        splits = sorted(
            (TemplateSplit(tid, tpl.get(tid, ("", 0))[0], tpl.get(tid, ("", 0))[1], tuple(counts),
                           int(distinct.get(tid, 0)))
             for tid, counts in per.items() if sum(1 for c in counts if c) >= 2),
            key=lambda s: (-s.distinct_prompts, s.template_id))
        return RingView(
            ring, tuple(members),
            tuple(SharedFamily(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4])) for r in fams),
            tuple(splits), timeline, mark[0] if mark else None, tuple(member_marks))

    # ------------------------------------------------------------------ triage
    def mark(self, target_kind: str, target_id: str | int, label: str, note: str = "", *, author: str = "") -> Mark:
        """Record a triage mark by `author` (kept across scans; the latest mark of a target wins).

        A confirmed or benign mark also keeps what it covers (prompt fingerprints, template patterns, a
        ring's members; `engine.detect.watchlist`), so the next scans watch or discount that content
        whatever ids they give it.
        """
        if target_kind not in MARK_KINDS:
            raise QueryError(f"cannot mark a {target_kind!r}: choose {', '.join(MARK_KINDS)}")
        if label not in MARK_LABELS:
            raise QueryError(f"unknown mark {label!r}: choose {', '.join(MARK_LABELS)}")
        key: object = str(target_id)
        if target_kind != "account":
            try:
                key = int(target_id)
            except ValueError:
                raise QueryError(f"{target_kind} ids are numbers, not {target_id!r}") from None
        # The check that the target exists, the mark and what it covers commit together.
        with self.store.transaction() as con:
            if con.execute(f"SELECT count(*) FROM {_TARGETS[target_kind]}", [key]).fetchone()[0] == 0:
                raise QueryError(f"no {target_kind} {target_id!r} in this workspace")
            row = con.execute(
                "INSERT INTO marks (target_kind, target_id, label, note, created, mark_id, author) "
                "VALUES (?, ?, ?, ?, now(), nextval('mark_id_seq'), ?) RETURNING created, mark_id",
                [target_kind, str(key), label, note, author or None]).fetchone()
            watchlist.freeze(con, int(row[1]), target_kind, str(key), label)
        return Mark(target_kind, str(key), label, note, row[0], author or "")

    def marks(self, *, target_kind: str | None = None) -> list[Mark]:
        """The latest mark of every marked target, newest first."""
        with self.store.connect() as con:
            return _latest_marks(con, target_kind, None)

    # ------------------------------------------------------------------ export
    def export_evidence(self, target_kind: str, target_id: str | int, *, redact: bool = False) -> EvidenceExport:
        """Write an evidence bundle for an account or ring into WORKSPACE/exports/<kind>-<id>-<time>/:

        - evidence.json: the target, its score and signals (with their examples), members, shared
          families and template splits (rings), linked accounts (accounts), marks;
        - exchanges.csv: every exchange of the account(s) with family and template ids;
        - families.csv: the families they sent, with how many of them sent each;
        - signals.csv: one row per (account or ring, signal).
        The bundle is written in a temporary folder and renamed into place, so a reader never sees
        half a bundle. Returns where it is.

        With `redact`, the bundle is for sending out (folder name ending `-redacted`, `"redacted": true`
        in evidence.json): every prompt text and template pattern becomes its fingerprint and a short
        excerpt, and responses, IPs, mark notes and the workspace path are left out
        (`engine.query.redact`). Account ids, exchange ids, times, models and figures stay.
        """
        if target_kind == "account":
            view = self.account_view(str(target_id), limit=1000)
            accounts = [view.account_id]
            scores = [view.score] if view.score else []
            doc = {"kind": "account", "account": view.to_dict()}
            signal_rows = [signal_row("account", view.account_id, s) for s in view.signals]
        elif target_kind == "ring":
            try:
                ring_id = int(target_id)
            except ValueError:
                raise QueryError(f"ring ids are numbers, not {target_id!r}") from None
            rview = self.ring_view(ring_id)
            accounts = [m.account_id for m in rview.members]
            scores = list(rview.members)
            doc = {"kind": "ring", "ring": rview.to_dict(),
                   "template_splits": [dict(s.to_dict(), overlap=s.overlap, coverage=s.coverage)
                                       for s in rview.template_splits]}
            signal_rows = [signal_row("ring", str(rview.ring.ring_id), s) for s in rview.ring.signals]
        else:
            raise QueryError(f"cannot export a {target_kind!r}: choose account or ring")
        signal_rows += [signal_row("account", a.account_id, s) for a in scores if isinstance(a, AccountScore)
                        for s in a.signals if target_kind == "ring"]
        with self.store.connect() as con:
            marks = _latest_marks(con, target_kind, [str(target_id)])
        return write_bundle(self.store, target_kind, str(target_id), doc, accounts, signal_rows, marks,
                            redact=redact)


# ---------------------------------------------------------------------- helpers
def _buckets(t0: float | None, t1: float | None, n: int) -> tuple[datetime | None, float]:
    """The start and width (seconds) of `n` equal buckets covering [t0, t1]."""
    if t0 is None or t1 is None:
        return None, 0.0
    width = max((float(t1) - float(t0)) / n, 1.0)
    # Widen by a hair so the last timestamp falls inside the last bucket, not one past it.
    width *= 1.0 + 1e-9
    return _EPOCH + timedelta(seconds=float(t0)), width


def _bucket_sql(n: int) -> str:
    """SQL for the bucket of `e.ts`, with parameters (t0, width) to bind."""
    return f"least(CAST(floor((epoch(e.ts) - ?) / ?) AS BIGINT), {int(n) - 1})"


def _member_timeline(con: duckdb.DuckDBPyConnection, account_ids: list[str], n: int) -> Timeline:
    """One series per account over the same `n` buckets spanning all of their exchanges."""
    if not account_ids:
        return Timeline(None, 0.0, (), ())
    con.execute("CREATE OR REPLACE TEMP TABLE tl_accounts AS SELECT unnest(?::VARCHAR[]) AS account_id",
                [account_ids])
    t0, t1 = con.execute("SELECT min(epoch(ts)), max(epoch(ts)) FROM exchanges JOIN tl_accounts USING (account_id)"
                         ).fetchone()
    start, width = _buckets(t0, t1, n)
    counts = {a: [0] * n for a in account_ids}
    if start is not None:
        for acc, b, c in con.execute(
                f"""SELECT e.account_id, {_bucket_sql(n)} AS b, count(*) FROM exchanges e
                    JOIN tl_accounts USING (account_id) GROUP BY ALL""", [t0, width]).fetchall():
            counts[acc][int(b)] = int(c)
    return Timeline(start, width, tuple(account_ids), tuple(tuple(counts[a]) for a in account_ids))


def _links(con: duckdb.DuckDBPyConnection, account_id: str, limit: int = 100) -> tuple[LinkedAccount, ...]:
    rows = con.execute(
        """WITH l AS (
               SELECT CASE WHEN account_a = ? THEN account_b ELSE account_a END AS other, weight, n_shared,
                      CAST(evidence AS VARCHAR) AS evidence
               FROM account_links WHERE account_a = ? OR account_b = ?
               ORDER BY weight DESC, other LIMIT ?),
           mine AS (SELECT DISTINCT f.family_id FROM exchanges e JOIN families f USING (prompt_id)
                    WHERE e.account_id = ?),
           shared AS (
               SELECT e.account_id AS other, list(DISTINCT f.family_id ORDER BY f.family_id) AS fams
               FROM exchanges e JOIN families f USING (prompt_id)
               WHERE e.account_id IN (SELECT other FROM l) AND f.family_id IN (SELECT family_id FROM mine)
               GROUP BY e.account_id)
           SELECT l.other, l.weight, l.n_shared, coalesce(shared.fams, []), l.evidence, s.score, s.ring_id
           FROM l LEFT JOIN shared USING (other) LEFT JOIN account_scores s ON s.account_id = l.other
           ORDER BY l.weight DESC, l.other""", [account_id, account_id, account_id, limit, account_id]).fetchall()
    labels = _mark_labels(con, "account", [r[0] for r in rows])
    return tuple(
        LinkedAccount(str(r[0]), round(float(r[1] or 0), 4), int(r[2] or 0), tuple(int(f) for f in r[3]),
                      r[4] or "", None if r[5] is None else round(float(r[5]), 4),
                      None if r[6] is None else int(r[6]), labels.get(str(r[0])), infra_labels(r[4]))
        for r in rows)


def infra_labels(evidence: str | None) -> tuple[str, ...]:
    """Readable lines for a link's infrastructure evidence (``"client distill-bot/0.3 (12 accounts)"``);
    payment fingerprints are named by type only, and the key-creation date is supporting evidence."""
    try:
        items = json.loads(evidence or "{}").get("infrastructure") or []
    except (ValueError, AttributeError):
        return ()
    out = []
    for e in items:
        kind = e.get("type")
        if kind == "sync":
            out.append(f"sync {e.get('n_windows')} windows")
        elif kind == "payment":
            out.append(f"payment ({e.get('n_accounts')} accounts)")
        else:
            out.append(f"{'key created' if kind == 'key' else kind} {e.get('value')} ({e.get('n_accounts')} accounts)")
    return tuple(out)


def _latest_marks(con: duckdb.DuckDBPyConnection, kind: str | None, ids: list[str] | None) -> list[Mark]:
    """The latest mark per target (of `kind`, among `ids` when given), newest first."""
    where, params = ["TRUE"], []
    if kind is not None:
        where.append("target_kind = ?")
        params.append(kind)
    if ids is not None:
        if not ids:
            return []
        where.append("target_id IN (SELECT unnest(?::VARCHAR[]))")
        params.append([str(i) for i in ids])
    rows = con.execute(
        f"""SELECT target_kind, target_id, label, note, created, author FROM marks WHERE {' AND '.join(where)}
            QUALIFY row_number() OVER (PARTITION BY target_kind, target_id ORDER BY created DESC, mark_id DESC) = 1
            ORDER BY created DESC, target_kind, target_id""", params).fetchall()
    return [Mark(r[0], r[1], r[2], r[3] or "", r[4], r[5] or "") for r in rows]


def _mark_labels(con: duckdb.DuckDBPyConnection, kind: str, ids: list[str]) -> dict[str, str]:
    return {m.target_id: m.label for m in _latest_marks(con, kind, ids)}
