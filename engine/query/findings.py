"""Read models: detection results turned from DuckDB rows into result dataclasses.

Every function takes an open connection and only reads; the Engine opens and closes it. `limit`: None or
0 for every row, else at most that many; `count_findings` gives the number there is to page through.
"""

from __future__ import annotations

import json

import duckdb

from engine.errors import QueryError
from engine.models import AccountScore, Family, Ring, Signal, TemplateInfo


def signals_from_json(raw: str | None) -> tuple[Signal, ...]:
    if not raw:
        return ()
    items = json.loads(raw)
    return tuple(
        Signal(name=str(s.get("name")), value=float(s.get("value") or 0.0),
               background=float(s.get("background") or 0.0), score=float(s.get("score") or 0.0),
               detail=str(s.get("detail") or ""), examples=tuple(s.get("examples") or ()))
        for s in items
    )


FINDINGS = ("accounts", "rings", "families", "templates")


def _limit(limit: int | None) -> str:
    if limit is not None and int(limit) < 0:
        raise QueryError(f"limit must be 0 (every row) or more, not {limit}")
    return f"LIMIT {int(limit)}" if limit else ""


def count_findings(con: duckdb.DuckDBPyConnection, kind: str, *, min_score: float = 0.0,
                   min_accounts: int = 2) -> int:
    """How many rows `kind` (one of FINDINGS) has under the same filters as its listing."""
    if kind == "accounts":
        sql, params = "SELECT count(*) FROM account_scores WHERE score >= ?", [min_score]
    elif kind == "rings":
        sql, params = "SELECT count(*) FROM rings", []
    elif kind == "families":
        sql = """SELECT count(*) FROM (SELECT f.family_id FROM families f JOIN exchanges e USING (prompt_id)
                 GROUP BY f.family_id HAVING count(DISTINCT e.account_id) >= ?)"""
        params = [min_accounts]
    elif kind == "templates":
        sql, params = "SELECT count(*) FROM templates", []
    else:
        raise QueryError(f"unknown finding {kind!r}: choose {', '.join(FINDINGS)}")
    return int(con.execute(sql, params).fetchone()[0])


def account_scores(con: duckdb.DuckDBPyConnection, *, limit: int | None, min_score: float = 0.0,
                   account_ids: list[str] | None = None) -> list[AccountScore]:
    where = "WHERE s.score >= ?"
    params: list = [min_score]
    if account_ids is not None:
        where += " AND s.account_id IN (SELECT unnest(?::VARCHAR[]))"
        params.append(account_ids)
    rows = con.execute(
        f"""SELECT s.account_id, s.score, s.ring_id, coalesce(a.n_exchanges, 0), s.top_signal, s.signals
            FROM account_scores s LEFT JOIN accounts a USING (account_id)
            {where} ORDER BY s.score DESC, s.account_id {_limit(limit)}""", params).fetchall()
    return [AccountScore(str(r[0]), round(float(r[1]), 4), None if r[2] is None else int(r[2]), int(r[3]),
                         str(r[4] or ""), signals_from_json(r[5])) for r in rows]


def rings(con: duckdb.DuckDBPyConnection, *, limit: int | None, ring_ids: list[int] | None = None) -> list[Ring]:
    where = "" if ring_ids is None else "WHERE r.ring_id IN (SELECT unnest(?::BIGINT[]))"
    params = [] if ring_ids is None else [ring_ids]
    rows = con.execute(
        f"""SELECT r.ring_id, r.score, r.n_exchanges, r.summary, r.signals,
                   list(s.account_id ORDER BY s.score DESC, s.account_id) FILTER (WHERE s.account_id IS NOT NULL)
            FROM rings r LEFT JOIN account_scores s ON s.ring_id = r.ring_id
            {where}
            GROUP BY ALL ORDER BY r.score DESC, r.ring_id {_limit(limit)}""", params).fetchall()
    return [Ring(int(r[0]), round(float(r[1]), 4), tuple(r[5] or ()), int(r[2] or 0), str(r[3] or ""),
                 signals_from_json(r[4])) for r in rows]


def families(con: duckdb.DuckDBPyConnection, *, limit: int | None, min_accounts: int = 2) -> list[Family]:
    rows = con.execute(
        f"""SELECT f.family_id, any_value(c.text), count(DISTINCT f.prompt_id), count(DISTINCT e.account_id),
                   count(*), min(e.ts), max(e.ts)
            FROM families f JOIN exchanges e USING (prompt_id) JOIN prompts c ON c.prompt_id = f.center_id
            GROUP BY f.family_id HAVING count(DISTINCT e.account_id) >= ?
            ORDER BY count(DISTINCT e.account_id) DESC, f.family_id {_limit(limit)}""", [min_accounts]).fetchall()
    return [Family(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), r[5], r[6]) for r in rows]


def templates(con: duckdb.DuckDBPyConnection, *, limit: int | None) -> list[TemplateInfo]:
    rows = con.execute(
        f"""SELECT template_id, pattern, kind, n_prompts, n_accounts, n_exchanges, slot_diversity, fixed_ratio
            FROM templates ORDER BY n_accounts DESC, n_prompts DESC, template_id {_limit(limit)}""").fetchall()
    return [TemplateInfo(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), int(r[5]), float(r[6] or 0),
                         float(r[7] or 0)) for r in rows]
