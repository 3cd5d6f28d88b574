"""Evidence bundles (`copyhound export`, `Engine.analyst.export_evidence`): the files, written atomically.

`Analyst.export_evidence` gathers the views (an account's or a ring's, with their signals and marks);
`write_bundle` writes them with the exchanges and families of the accounts involved, whole or redacted
(`engine.query.redact`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from engine.files import atomic_path
from engine.models import EvidenceExport, Mark, Signal
from engine.query.redact import DESCRIPTION as REDACTION
from engine.query.redact import Redactor, excerpt, fingerprint_hex, scrub_addresses
from engine.store.workspace import Store

log = logging.getLogger(__name__)

FILES = ["evidence.json", "exchanges.csv", "families.csv", "signals.csv"]


def write_bundle(store: Store, target_kind: str, target_id: str, doc: dict, accounts: list[str],
                 signal_rows: list[tuple], marks: list[Mark], *, redact: bool = False) -> EvidenceExport:
    """Write WORKSPACE/exports/<kind>-<id>-<time>[-redacted]/ for `accounts` (see
    `Analyst.export_evidence`): `doc` (JSON-ready views) with `marks` added as evidence.json, their
    exchanges and families as CSV, `signal_rows` (from `signal_row`) as signals.csv. The folder is written
    under a temporary name and renamed into place, so a reader never sees half a bundle."""
    doc = dict(doc, marks=[m.to_dict() for m in marks])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{target_kind}-{_safe(str(target_id))}-{stamp}" + ("-redacted" if redact else "")
    exports = store.root / "exports"
    exports.mkdir(exist_ok=True)
    final = exports / name
    with atomic_path(final) as tmp:
        tmp.mkdir()
        with store.connect() as con:
            con.execute("CREATE OR REPLACE TEMP TABLE export_accounts AS "
                        "SELECT unnest(?::VARCHAR[]) AS account_id", [accounts])
            n_ex = con.execute("SELECT count(*) FROM exchanges JOIN export_accounts USING (account_id)"
                               ).fetchone()[0]
            if redact:
                _register_redacted_prompts(con)
                prompt_cols = "rp.prompt_fingerprint, rp.prompt_excerpt, e.model"
                prompt_join = "JOIN export_prompts rp ON rp.prompt_id = e.prompt_id"
                center_cols = "rc.prompt_fingerprint AS center_fingerprint, rc.prompt_excerpt AS center_excerpt"
                center_join = "JOIN export_prompts rc ON rc.prompt_id = fam.family_id"
            else:
                prompt_cols = "p.text AS prompt, e.response, e.model, e.ip"
                prompt_join = "JOIN prompts p ON p.prompt_id = e.prompt_id"
                center_cols = "c.text AS center_text"
                center_join = "JOIN prompts c ON c.prompt_id = fam.family_id"
            _copy_csv(con, f"""SELECT e.exchange_id, e.account_id, e.ts, e.prompt_id, f.family_id,
                                      tm.template_id, {prompt_cols}
                               FROM exchanges e JOIN export_accounts USING (account_id)
                               {prompt_join}
                               LEFT JOIN families f ON f.prompt_id = e.prompt_id
                               LEFT JOIN template_members tm ON tm.prompt_id = e.prompt_id
                               ORDER BY e.ts, e.account_id, e.exchange_id""", tmp / "exchanges.csv")
            fam_sql = f"""WITH fam AS (
                              SELECT f.family_id, count(DISTINCT e.account_id) AS n_target_accounts,
                                     count(*) AS n_target_exchanges
                              FROM exchanges e JOIN export_accounts USING (account_id)
                              JOIN families f ON f.prompt_id = e.prompt_id GROUP BY f.family_id)
                          SELECT fam.family_id, {center_cols}, fam.n_target_accounts,
                                 fam.n_target_exchanges,
                                 (SELECT count(DISTINCT e2.account_id) FROM families f2
                                  JOIN exchanges e2 USING (prompt_id)
                                  WHERE f2.family_id = fam.family_id) AS n_workspace_accounts
                          FROM fam {center_join}
                          ORDER BY n_target_accounts DESC, n_target_exchanges DESC, fam.family_id"""
            _copy_csv(con, fam_sql, tmp / "families.csv")
            n_fam = con.execute(f"SELECT count(*) FROM ({fam_sql})").fetchone()[0]
        doc.update(workspace=str(store.root), generated=datetime.now(UTC).isoformat(),
                   n_exchanges=int(n_ex), n_families=int(n_fam),
                   files=list(FILES))
        if redact:
            redactor = Redactor(store).prepare([doc] + [row[-1] for row in signal_rows])
            doc = dict(redactor.redact(doc), redacted=True, redaction=REDACTION)
            # The detail (index 6) may quote a shared address (infrastructure signals).
            signal_rows = [row[:6] + (scrub_addresses(row[6]),) + row[7:-1] + (redactor.redact(row[-1]),)
                           for row in signal_rows]
        with open(tmp / "signals.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(("target_kind", "target_id", "signal", "value", "background", "score", "detail",
                             "examples"))
            writer.writerows(row[:-1] + (json.dumps(row[-1], default=str, ensure_ascii=False),)
                             for row in signal_rows)
        with open(tmp / "evidence.json", "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, default=str, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
    log.info("exported %s %s%s: %d exchanges, %d families -> %s", target_kind, target_id,
             " (redacted)" if redact else "", n_ex, n_fam, final)
    return EvidenceExport(target_kind, str(target_id), str(final),
                          tuple(str(final / f) for f in doc["files"]), len(accounts), int(n_ex), int(n_fam),
                          len(signal_rows), redact)


def signal_row(kind: str, target: str, s: Signal) -> tuple:
    """A signals.csv row; the examples stay a list here (redacted, if at all, before they are written)."""
    return (kind, target, s.name, s.value, s.background, s.score, s.detail, list(s.examples))


def _register_redacted_prompts(con: duckdb.DuckDBPyConnection) -> None:
    """TEMP TABLE export_prompts (prompt_id, prompt_fingerprint, prompt_excerpt): every prompt the
    exported accounts sent, and the centre of every family they sent, as a redacted bundle shows it."""
    rows = con.execute(
        """SELECT prompt_id, fingerprint, text FROM prompts WHERE prompt_id IN (
               SELECT e.prompt_id FROM exchanges e JOIN export_accounts USING (account_id)
               UNION SELECT f.family_id FROM exchanges e JOIN export_accounts USING (account_id)
                     JOIN families f ON f.prompt_id = e.prompt_id)""").fetchall()
    arrow = pa.table({"prompt_id": pa.array([r[0] for r in rows], pa.int64()),
                      "prompt_fingerprint": [fingerprint_hex(r[1]) for r in rows],
                      "prompt_excerpt": [excerpt(r[2] or "") for r in rows]})
    con.register("_export_prompts_arrow", arrow)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE export_prompts AS SELECT * FROM _export_prompts_arrow")
    finally:
        con.unregister("_export_prompts_arrow")


def _copy_csv(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> None:
    quoted = str(path).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{quoted}' (HEADER, DELIMITER ',')")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]

