"""What analysts' marks say about the flags: precision per signal, suggested cut-offs, the review queue.

**An account's review** is its own latest mark, else the latest mark of a ring it was a member of when
that ring was marked (a mark keeps the ring's members, `engine.detect.watchlist.freeze`: ring ids are
renumbered by every scan). Ring marks made before members were kept reach no account.

**Labels.** `confirmed` is a true positive and `benign` a false positive. `suspicious` is a question an
analyst has not answered, so it counts neither way: it is reported apart, and the review queue keeps
such accounts ahead of answered ones.

**Per signal** (`calibrate`), over the reviewed accounts whose last scan gave them the signal (score > 0):
the precision of the flags among them (account score >= the flag score), and the lowest signal score at
which the reviewed accounts scoring at least that much were confirmed at the target precision or better,
with the counts it keeps. The row `score` does the same on the account score. The counts are there to be
read: a precision of 1.0 over three accounts is three accounts.
"""

from __future__ import annotations

import json

import duckdb

from engine.models import Calibration, Mark, SignalCalibration

__all__ = ["REVIEWS_SQL", "calibrate", "review_queue", "reviews"]

# (account_id, label, note, created, author, via_ring): each reviewed account's review (module doc).
REVIEWS_SQL = """
    WITH own AS (
        SELECT target_id AS account_id, label, note, created, author, NULL::VARCHAR AS via_ring FROM marks
        WHERE target_kind = 'account'
        QUALIFY row_number() OVER (PARTITION BY target_id ORDER BY created DESC, mark_id DESC) = 1
    ), by_ring AS (
        SELECT mm.account_id, m.label, m.note, m.created, m.author, m.target_id AS via_ring
        FROM marks m JOIN mark_members mm USING (mark_id) WHERE m.target_kind = 'ring'
        QUALIFY row_number() OVER (PARTITION BY mm.account_id ORDER BY m.created DESC, m.mark_id DESC) = 1
    )
    SELECT * FROM own
    UNION ALL
    SELECT * FROM by_ring WHERE account_id NOT IN (SELECT account_id FROM own)
"""
# Review state for the queue: not reviewed first, then questions (suspicious), then answers.
_STATE = "CASE WHEN r.label IS NULL THEN 0 WHEN r.label = 'suspicious' THEN 1 ELSE 2 END"


def reviews(con: duckdb.DuckDBPyConnection, account_ids: list[str] | None = None) -> dict[str, Mark]:
    """Each reviewed account's review as a `Mark` on the account (one through a ring says so in its note)."""
    where = "" if account_ids is None else "WHERE account_id IN (SELECT unnest(?::VARCHAR[]))"
    rows = con.execute(f"SELECT * FROM ({REVIEWS_SQL}) {where}",
                       [] if account_ids is None else [list(account_ids)]).fetchall()
    out = {}
    for a, label, note, created, author, via in rows:
        text = (note or "") if via is None else f"through ring {via}" + (f": {note}" if note else "")
        out[str(a)] = Mark("account", str(a), label, text, created, author or "")
    return out


def review_queue(con: duckdb.DuckDBPyConnection, *, offset: int, limit: int,
                 min_score: float) -> tuple[list[str], int]:
    """Account ids of one page of the review queue, and the queue's length.

    The queue holds the accounts scoring at least `min_score`: not reviewed first, then suspicious,
    then confirmed or benign; within each, by descending score (the most likely first).
    """
    total = con.execute("SELECT count(*) FROM account_scores WHERE score >= ?", [min_score]).fetchone()[0]
    ids = [r[0] for r in con.execute(
        f"""SELECT s.account_id FROM account_scores s LEFT JOIN ({REVIEWS_SQL}) r USING (account_id)
            WHERE s.score >= ? ORDER BY {_STATE}, s.score DESC, s.account_id LIMIT ? OFFSET ?""",
        [min_score, int(limit), int(offset)]).fetchall()]
    return ids, int(total)


def calibrate(con: duckdb.DuckDBPyConnection, *, target: float, flag_score: float) -> Calibration:
    """Precision of the flags per signal on the reviewed accounts, and cut-offs keeping `target` (module doc)."""
    rows = con.execute(
        f"""SELECT r.account_id, r.label, s.score, CAST(s.signals AS VARCHAR)
            FROM ({REVIEWS_SQL}) r LEFT JOIN account_scores s USING (account_id) ORDER BY r.account_id""").fetchall()
    counts = {"confirmed": 0, "benign": 0, "suspicious": 0}
    unscored = 0
    # signal -> list of (signal score, flagged, label)
    seen: dict[str, list[tuple[float, bool, str]]] = {}
    for _, label, score, signals in rows:
        counts[label] = counts.get(label, 0) + 1
        if score is None:
            unscored += 1
            continue
        flagged = float(score) >= flag_score
        seen.setdefault("score", []).append((float(score), flagged, label))
        for sig in json.loads(signals or "[]"):
            if float(sig.get("score") or 0) > 0:
                seen.setdefault(sig["name"], []).append((float(sig["score"]), flagged, label))
    out = [_row(name, seen[name], target) for name in sorted(seen, key=lambda n: (n != "score", n))]
    return Calibration(float(target), float(flag_score), counts["confirmed"], counts["benign"], counts["suspicious"],
                       unscored, tuple(out))


def _row(name: str, obs: list[tuple[float, bool, str]], target: float) -> SignalCalibration:
    answered = [(s, f, label == "confirmed") for s, f, label in obs if label in ("confirmed", "benign")]
    tp = sum(1 for _, f, good in answered if f and good)
    fp = sum(1 for _, f, good in answered if f and not good)
    # The lowest cut at which precision over everything at or past it reaches the target.
    cut, cut_tp, cut_fp = None, 0, 0
    above_tp = above_fp = 0
    ordered = sorted(answered, key=lambda x: -x[0])
    for i, (s, _, good) in enumerate(ordered):
        above_tp += good
        above_fp += not good
        if i + 1 < len(ordered) and ordered[i + 1][0] == s:
            continue  # a cut keeps every account at its score
        if above_tp / (above_tp + above_fp) >= target:
            cut, cut_tp, cut_fp = s, above_tp, above_fp
    return SignalCalibration(
        name, len(answered), sum(1 for _, f, _ in answered if f), tp, fp,
        round(tp / (tp + fp), 4) if tp + fp else None, None if cut is None else round(cut, 4), cut_tp, cut_fp,
        round(cut_tp / (cut_tp + cut_fp), 4) if cut is not None else None,
        sum(1 for _, _, label in obs if label == "suspicious"))
