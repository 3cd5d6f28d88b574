"""Ingest exchange files (JSONL, CSV, Parquet; gzip too) into the workspace database.

A file goes through three steps, each one resumable (staging lives in `engine.ingest.staging`, its line
readers in `engine.ingest.lines`):

1. **stage**: JSONL is read in blocks of whole lines and CSV record by record (so that every row keeps
   its physical line number, and a line over MAX_LINE_BYTES is never held whole), checked against the
   per-row limits of engine.config before DuckDB's JSON functions see a row, then field-checked in SQL;
   Parquet is read in bulk by DuckDB. Rows go to a staging table on disk, so memory stays bounded, each
   with its normalised prompt's fingerprint (prompts are normalised once per distinct text in a block);
2. **validate**: every bad row gets a reason (line, field or nesting over a limit, missing field, wrong
   type, unparseable or out-of-range time, control characters in an id, empty, binary or oversized
   prompt, an exchange id already used by another exchange); by default one bad row refuses the whole
   file and nothing is written, with `on_error="skip"` the good rows load and the bad ones go to a
   quarantine file;
3. **load**: good rows move into `prompts` and `exchanges` in batches, one transaction per batch, the
   batch counter committed with the rows, so a killed ingest resumes at the next batch.

Re-ingesting a file adds nothing: a file whose sha256 is already loaded is skipped, and exchange ids
(given, or derived from account, time and prompt) are anti-joined against what is stored; a given id
that arrives with another account, time or prompt is a bad row, never a silent "duplicate".
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from engine.crashpoints import crash_point
from engine.errors import IngestError
from engine.files import atomic_path, file_sha256
from engine.ingest.staging import CONTROL, FIELDS, Stager, detect_format, lit, shown_sql
from engine.models import FileIngest
from engine.progress import ProgressFn, no_progress
from engine.store.workspace import Store, transaction

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 5


class Ingestor:
    """Loads files into one workspace; see the module docstring for the steps."""

    def __init__(
        self,
        store: Store,
        *,
        mapping: dict[str, str] | None = None,
        on_error: str = "fail",
        batch_rows: int = 250_000,
        progress: ProgressFn = no_progress,
    ) -> None:
        if on_error not in ("fail", "skip"):
            raise IngestError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        unknown = set(mapping or {}) - set(FIELDS)
        if unknown:
            raise IngestError(
                f"--map names unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}"
            )
        self.store = store
        # logical field -> column name in the file
        self.columns = {f: (mapping or {}).get(f, f) for f in FIELDS}
        self.on_error = on_error
        self.batch_rows = batch_rows
        self.progress = progress

    # ------------------------------------------------------------------ entry point
    def ingest(self, path: Path) -> FileIngest:
        started = time.monotonic()
        path = Path(path)
        if not path.is_file():
            raise IngestError(f"{path}: no such file")
        fmt = detect_format(path)
        sha = file_sha256(path)
        with self.store.connect() as con:
            done = con.execute(
                "SELECT rows_total, rows_rejected FROM ingest_files WHERE sha256 = ? AND status = 'done'",
                [sha],
            ).fetchone()
            if done:
                log.info("%s: already ingested (same sha256), nothing to do", path)
                return FileIngest(str(path), fmt, int(done[0]), 0, 0, 0, 0, None, True,
                                  time.monotonic() - started)
            row = con.execute(
                "SELECT file_id, status FROM ingest_files WHERE sha256 = ? AND status = 'loading'", [sha]
            ).fetchone()
            if row:
                file_id = int(row[0])
                log.info("%s: resuming an interrupted ingest (file %d)", path, file_id)
                self._upgrade_staging(con, file_id)
            else:
                self._forget_unfinished(con, sha)
                file_id = self._stage(con, path, fmt, sha)
                crash_point("ingest.stage.after_commit")
            new_prompts_before = con.execute("SELECT count(*) FROM prompts").fetchone()[0]
            self._load(con, path, file_id)
            new_prompts = con.execute("SELECT count(*) FROM prompts").fetchone()[0] - new_prompts_before
            info = con.execute(
                "SELECT rows_total, rows_loaded, rows_duplicate, rows_rejected, quarantine "
                "FROM ingest_files WHERE file_id = ?",
                [file_id],
            ).fetchone()
        result = FileIngest(
            path=str(path), format=fmt, rows_read=int(info[0]), rows_loaded=int(info[1]),
            rows_duplicate=int(info[2]), rows_rejected=int(info[3]), new_prompts=int(new_prompts),
            quarantine=info[4], already_ingested=False, seconds=time.monotonic() - started,
        )
        log.info(
            "%s: %d rows read, %d loaded, %d duplicate, %d rejected, %d new prompts in %.1f s",
            path, result.rows_read, result.rows_loaded, result.rows_duplicate, result.rows_rejected,
            result.new_prompts, result.seconds,
        )
        return result

    def _forget_unfinished(self, con: duckdb.DuckDBPyConnection, sha: str) -> None:
        """Drop the staging leftovers of an ingest killed before its rows were validated."""
        for (file_id,) in con.execute(
            "SELECT file_id FROM ingest_files WHERE sha256 = ? AND status = 'staging'", [sha]
        ).fetchall():
            self._drop_staging(con, file_id)
            con.execute("DELETE FROM ingest_files WHERE file_id = ?", [file_id])

    @staticmethod
    def _drop_staging(con: duckdb.DuckDBPyConnection, file_id: int) -> None:
        con.execute(f"DROP TABLE IF EXISTS stage_{file_id}")
        con.execute(f"DROP TABLE IF EXISTS norm_{file_id}")

    @staticmethod
    def _upgrade_staging(con: duckdb.DuckDBPyConnection, file_id: int) -> None:
        """Bring staging tables left by an older copyhound (norm keyed by raw prompt, no `fp` column on the
        stage) to this layout, so that an ingest interrupted before an upgrade resumes after it."""
        has_fp = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'fp' AND schema_name = 'main'",
            [f"stage_{file_id}"]).fetchall()[0][0]
        if has_fp:
            return
        stage, norm = f"stage_{file_id}", f"norm_{file_id}"
        log.info("upgrading the staging tables of file %d to this version's layout", file_id)
        with transaction(con):
            con.execute(f"ALTER TABLE {stage} ADD COLUMN fp BIGINT")
            con.execute(f"UPDATE {stage} SET fp = n.fingerprint FROM {norm} n WHERE {stage}.prompt = n.prompt")
            con.execute(f"CREATE TABLE {norm}_new AS SELECT fingerprint, any_value(normalized) AS normalized "
                        f"FROM {norm} WHERE junk IS NULL GROUP BY fingerprint")
            con.execute(f"DROP TABLE {norm}")
            con.execute(f"ALTER TABLE {norm}_new RENAME TO {norm}")

    # ------------------------------------------------------------------ stage + validate
    def _stage(self, con: duckdb.DuckDBPyConnection, path: Path, fmt: str, sha: str) -> int:
        file_id = int(con.execute("SELECT nextval('file_id_seq')").fetchone()[0])
        con.execute(
            "INSERT INTO ingest_files VALUES (?, ?, ?, ?, ?, 'staging', 0, 0, 0, 0, 0, 0, NULL, now(), NULL)",
            [file_id, str(path), sha, path.stat().st_size, fmt],
        )
        stage = f"stage_{file_id}"
        con.execute(
            f"""CREATE TABLE {stage} (line BIGINT, account_id VARCHAR, ts_raw VARCHAR, prompt VARCHAR,
                exchange_id VARCHAR, response VARCHAR, model VARCHAR, ip VARCHAR, meta JSON,
                raw VARCHAR, problem VARCHAR, ts TIMESTAMP, fp BIGINT)"""
        )
        con.execute(f"CREATE TABLE norm_{file_id} (fingerprint BIGINT, normalized VARCHAR)")
        stager = Stager(self.columns, self.progress)
        try:
            stager.stage(con, path, fmt, stage, f"norm_{file_id}")
            self._validate(con, path, file_id, stager)
        except BaseException:
            self._drop_staging(con, file_id)
            con.execute("DELETE FROM ingest_files WHERE file_id = ?", [file_id])
            raise
        return file_id

    def _validate(self, con: duckdb.DuckDBPyConnection, path: Path, file_id: int, stager: Stager) -> None:
        stage = f"stage_{file_id}"
        self._conflicting_ids(con, stage)
        total, bad = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE problem IS NOT NULL) FROM {stage}"
        ).fetchone()
        if total == 0:
            raise IngestError(f"{path}: the file holds no rows")
        undecodable = con.execute(
            f"SELECT count(*) FROM {stage} WHERE starts_with(problem, 'invalid UTF-8')").fetchone()[0]
        if undecodable == total:
            raise IngestError(f"{path}: not UTF-8 text (none of its {total} rows decodes as UTF-8: another "
                              "encoding such as Latin-1 or UTF-16, or binary); convert it to UTF-8 first")
        if bad and self.on_error == "fail":
            problems = con.execute(
                f"SELECT line, problem FROM {stage} WHERE problem IS NOT NULL ORDER BY line LIMIT ?",
                [MAX_ERRORS_SHOWN],
            ).fetchall()
            lines = [CONTROL.sub("?", f"{path}:{line}: {reason}") for line, reason in problems]
            more = f" (and {bad - 1} more bad row{'s' if bad > 2 else ''})" if bad > 1 else ""
            raise IngestError(
                f"{lines[0]}{more}; nothing was written (use --on-error skip to load the good rows "
                "and quarantine the bad ones)",
                problems=lines,
            )
        quarantine = None
        if bad:
            self._raw_of_late_bad_rows(con, path, stage, stager)
            quarantine = self.store.root / "quarantine" / f"{path.name}.{file_id}.rejected.jsonl"
            with atomic_path(quarantine) as tmp:
                con.execute(
                    f"""COPY (SELECT {lit(str(path))} AS file, line, problem AS reason, raw FROM {stage}
                              WHERE problem IS NOT NULL ORDER BY line)
                        TO {lit(str(tmp))} (FORMAT json)"""
                )
            log.warning("%s: %d bad rows quarantined in %s", path, bad, quarantine)
        good_lines = con.execute(f"SELECT max(line) FROM {stage} WHERE problem IS NULL").fetchone()[0] or 0
        batches = -(-int(good_lines) // self.batch_rows)
        con.execute(
            """UPDATE ingest_files SET status = 'loading', rows_total = ?, rows_rejected = ?,
               batches_total = ?, batches_done = 0, quarantine = ? WHERE file_id = ?""",
            [total, bad, batches, str(quarantine) if quarantine else None, file_id],
        )

    @staticmethod
    def _raw_of_late_bad_rows(con: duckdb.DuckDBPyConnection, path: Path, stage: str, stager: Stager) -> None:
        """Fill in the raw text of rows found bad after staging (JSONL keeps none for rows staged good)."""
        lines = {line for (line,) in con.execute(
            f"SELECT line FROM {stage} WHERE problem IS NOT NULL AND raw IS NULL").fetchall()}
        if not lines:
            return
        found = stager.jsonl_lines(path, lines)
        con.register("late_raw", pa.table({"line": pa.array(list(found), pa.int64()),
                                           "raw": pa.array(list(found.values()), pa.string())}))
        con.execute(f"UPDATE {stage} SET raw = r.raw FROM late_raw r WHERE {stage}.line = r.line")
        con.unregister("late_raw")

    @staticmethod
    def _conflicting_ids(con: duckdb.DuckDBPyConnection, stage: str) -> None:
        """Mark rows whose given exchange id is already used by another exchange (account, time, prompt).

        An identical re-send stays a duplicate (idempotent ingest); another exchange under a used id is a
        bad row, so that two files of per-file counters cannot silently drop each other's rows. Stored
        exchanges are checked first (they keep their id); then, within the file, the first good row of an
        id claims it and later rows with other content are bad. Prompts compare by fingerprint.
        """
        shown = shown_sql("s.exchange_id")
        con.execute(
            f"""UPDATE {stage} SET problem = c.reason FROM (
                    SELECT s.line, 'exchange id ' || {shown} || ' already stored with other content' AS reason
                    FROM {stage} s JOIN exchanges e ON e.exchange_id = s.exchange_id
                         JOIN prompts p ON p.prompt_id = e.prompt_id
                    WHERE s.problem IS NULL AND s.exchange_id IS NOT NULL
                      AND (e.account_id, e.ts, p.fingerprint) IS DISTINCT FROM (s.account_id, s.ts, s.fp)
                ) c WHERE {stage}.line = c.line"""
        )
        con.execute(
            f"""UPDATE {stage} SET problem = c.reason FROM (
                    SELECT line, 'exchange id ' || shown || ' appears twice in this file with other content '
                                 || '(first at line ' || first_line || ')' AS reason
                    FROM (SELECT s.line, {shown} AS shown, s.account_id, s.ts, s.fp AS fingerprint,
                                 min(s.line) OVER w AS first_line, arg_min(s.account_id, s.line) OVER w AS a0,
                                 arg_min(s.ts, s.line) OVER w AS t0, arg_min(s.fp, s.line) OVER w AS f0
                          FROM {stage} s
                          WHERE s.problem IS NULL AND s.exchange_id IS NOT NULL
                          WINDOW w AS (PARTITION BY s.exchange_id))
                    WHERE (account_id, ts, fingerprint) IS DISTINCT FROM (a0, t0, f0)
                ) c WHERE {stage}.line = c.line"""
        )

    # ------------------------------------------------------------------ load
    @staticmethod
    def _new_prompts(con: duckdb.DuckDBPyConnection, stage: str, norm: str, lo: int, hi: int) -> None:
        """Insert the prompts of lines `lo`..`hi` not stored yet, numbered by first time seen, then first line.

        The ids are drawn from `prompt_id_seq` as one block and handed out by that order. (`nextval` in an
        INSERT ... ORDER BY is evaluated before the sort, so it numbered prompts in whatever order the
        aggregate emitted them: repeatable for one plan, but not the order the query named.)
        """
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE batch_prompts AS
                SELECT x.*, n.normalized
                FROM (SELECT s.fp AS fingerprint, arg_min(s.prompt, s.line) AS text, min(s.line) AS first_line,
                             min(s.ts) AS first_seen, max(s.ts) AS last_seen
                      FROM {stage} s
                      WHERE s.problem IS NULL AND s.line BETWEEN ? AND ?
                      GROUP BY s.fp) x JOIN {norm} n USING (fingerprint)
                WHERE NOT EXISTS (SELECT 1 FROM prompts p WHERE p.fingerprint = x.fingerprint)""",
            [lo, hi],
        )
        count = con.execute("SELECT count(*) FROM batch_prompts").fetchall()[0][0]
        if count:
            first, last = con.execute("SELECT min(i), max(i) FROM (SELECT nextval('prompt_id_seq') AS i "
                                      "FROM range(?))", [count]).fetchall()[0]
            if last - first + 1 != count:  # nothing else draws from the sequence during an ingest
                raise IngestError(f"prompt ids {first}..{last} drawn for {count} prompts are not one block")
            con.execute(
                """INSERT INTO prompts (prompt_id, fingerprint, text, normalized, n_chars, first_seen, last_seen)
                   SELECT ? - 1 + row_number() OVER (ORDER BY first_seen, first_line), fingerprint, text,
                          normalized, length(normalized), first_seen, last_seen
                   FROM batch_prompts""",
                [first],
            )
        con.execute("DROP TABLE batch_prompts")

    def _load(self, con: duckdb.DuckDBPyConnection, path: Path, file_id: int) -> None:
        stage, norm = f"stage_{file_id}", f"norm_{file_id}"
        batches_total, batches_done = con.execute(
            "SELECT batches_total, batches_done FROM ingest_files WHERE file_id = ?", [file_id]
        ).fetchone()
        eid = ("COALESCE(s.exchange_id, md5(s.account_id || chr(31) || strftime(s.ts, '%Y-%m-%dT%H:%M:%S.%f') "
               "|| chr(31) || s.prompt))")
        for batch in range(int(batches_done), int(batches_total)):
            lo, hi = batch * self.batch_rows + 1, (batch + 1) * self.batch_rows
            with transaction(con):
                self._new_prompts(con, stage, norm, lo, hi)
                candidates = con.execute(
                    f"SELECT count(*) FROM {stage} WHERE problem IS NULL AND line BETWEEN ? AND ?", [lo, hi]
                ).fetchone()[0]
                con.execute(
                    f"""INSERT INTO exchanges
                        SELECT eid, account_id, ts, prompt_id, response, model, ip, meta, {file_id}, line
                        FROM (SELECT {eid} AS eid, s.account_id, s.ts, p.prompt_id, s.response, s.model, s.ip,
                                     s.meta, s.line
                              FROM {stage} s JOIN prompts p ON p.fingerprint = s.fp
                              WHERE s.problem IS NULL AND s.line BETWEEN ? AND ?
                              QUALIFY row_number() OVER (PARTITION BY eid ORDER BY s.line) = 1) x
                        WHERE NOT EXISTS (SELECT 1 FROM exchanges e WHERE e.exchange_id = x.eid)""",
                    [lo, hi],
                )
                loaded = con.execute(
                    "SELECT count(*) FROM exchanges WHERE file_id = ? AND line BETWEEN ? AND ?",
                    [file_id, lo, hi],
                ).fetchone()[0]
                con.execute(
                    """UPDATE ingest_files SET batches_done = ?, rows_loaded = rows_loaded + ?,
                       rows_duplicate = rows_duplicate + ? WHERE file_id = ?""",
                    [batch + 1, loaded, candidates - loaded, file_id],
                )
                crash_point("ingest.batch.before_commit")
            crash_point("ingest.batch.after_commit")
            self.progress(f"load {path.name}", batch + 1, int(batches_total))
        with transaction(con):
            refresh_aggregates(con, f"SELECT DISTINCT prompt_id, account_id FROM exchanges WHERE file_id = {file_id}")
            con.execute("UPDATE ingest_files SET status = 'done', finished = now() WHERE file_id = ?", [file_id])
            # Dropped with the 'done' mark: a kill after the commit would leave them forever, as a rerun
            # stops at "already ingested".
            self._drop_staging(con, file_id)
            crash_point("ingest.done.before_commit")
        crash_point("ingest.done.after_commit")


def refresh_aggregates(con: duckdb.DuckDBPyConnection, touched_sql: str) -> None:
    """Recompute prompt and account counters for the prompts/accounts named by `touched_sql`."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE touched AS {touched_sql}")
    con.execute(
        """UPDATE prompts SET n_exchanges = a.n, n_accounts = a.na, first_seen = a.f, last_seen = a.l
           FROM (SELECT prompt_id, count(*) AS n, count(DISTINCT account_id) AS na, min(ts) AS f, max(ts) AS l
                 FROM exchanges WHERE prompt_id IN (SELECT prompt_id FROM touched) GROUP BY prompt_id) a
           WHERE prompts.prompt_id = a.prompt_id"""
    )
    con.execute("DELETE FROM accounts WHERE account_id IN (SELECT account_id FROM touched)")
    con.execute(
        """INSERT INTO accounts
           SELECT account_id, count(*), count(DISTINCT prompt_id), min(ts), max(ts)
           FROM exchanges WHERE account_id IN (SELECT DISTINCT account_id FROM touched) GROUP BY account_id"""
    )
    con.execute("DROP TABLE touched")
