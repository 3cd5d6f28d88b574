"""Ingest exchange files (JSONL, CSV, Parquet; gzip too) into the workspace database.

A file goes through three steps, each one resumable:

1. **stage**: the rows are read in bulk by DuckDB (CSV, Parquet) or in large line chunks handed to
   DuckDB's JSON functions (JSONL, so that every row keeps its exact line number), field-checked in
   SQL, and written to a staging table on disk, so memory stays bounded whatever the file's size;
2. **validate**: every bad row gets a reason (missing field, wrong type, unparseable time, empty,
   binary or oversized prompt); by default one bad row refuses the whole file and nothing is written,
   with `on_error="skip"` the good rows load and the bad ones go to a quarantine file;
3. **load**: good rows move into `prompts` and `exchanges` in batches, one transaction per batch, the
   batch counter committed with the rows, so a killed ingest resumes at the next batch.

Re-ingesting a file adds nothing: a file whose sha256 is already loaded is skipped, and exchange ids
(given, or derived from account, time and prompt) are anti-joined against what is stored.
"""

from __future__ import annotations

import gzip
import logging
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from engine.config import MAX_PROMPT_CHARS
from engine.crashpoints import crash_point
from engine.errors import IngestError
from engine.files import atomic_path, file_sha256
from engine.ingest.fingerprint import fingerprint, junk_reason, normalize
from engine.models import FileIngest
from engine.progress import ProgressFn, no_progress
from engine.store.workspace import Store, transaction

log = logging.getLogger(__name__)

REQUIRED = ("account_id", "timestamp", "prompt")
OPTIONAL = ("exchange_id", "response", "model", "ip")
FIELDS = REQUIRED + OPTIONAL
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "csv",
           ".parquet": "parquet", ".pq": "parquet"}
# Bytes of JSONL lines read per chunk: large enough for bulk SQL, small enough for bounded memory.
_JSONL_CHUNK_BYTES = 32 * 1024 * 1024
# Distinct prompts normalised per Python round trip.
_NORMALISE_PAGE = 100_000
MAX_ERRORS_SHOWN = 5


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in FORMATS:
        raise IngestError(
            f"{path}: unknown file type {''.join(path.suffixes) or '(no suffix)'}; "
            "expected .jsonl, .csv or .parquet (optionally .gz)"
        )
    return FORMATS[suffixes[-1]]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
                raw VARCHAR, problem VARCHAR, ts TIMESTAMP)"""
        )
        structural: list[tuple[int, str, str]] = []
        try:
            if fmt == "jsonl":
                self._stage_jsonl(con, path, stage)
            else:
                structural = self._stage_table(con, path, fmt, stage)
            self._validate(con, path, file_id, structural)
        except BaseException:
            self._drop_staging(con, file_id)
            con.execute("DELETE FROM ingest_files WHERE file_id = ?", [file_id])
            raise
        return file_id

    def _finish_stage_sql(self, stage: str, source: str) -> str:
        """INSERT the common columns plus the row's first field-level problem from `source`."""
        ts = (
            "CASE WHEN regexp_full_match(trim(ts_raw), '-?[0-9]+(\\.[0-9]+)?') THEN "
            # epoch: seconds, or milliseconds when the number is too big to be seconds
            "try(to_timestamp(CASE WHEN abs(trim(ts_raw)::DOUBLE) > 1e11 THEN trim(ts_raw)::DOUBLE / 1000 "
            "ELSE trim(ts_raw)::DOUBLE END)::TIMESTAMP) "
            "ELSE try_cast(trim(ts_raw) AS TIMESTAMPTZ)::TIMESTAMP END"
        )
        return f"""
            INSERT INTO {stage}
            SELECT line, account_id, ts_raw, prompt, exchange_id, response, model, ip, meta, raw,
                CASE
                    WHEN problem IS NOT NULL THEN problem
                    WHEN account_id IS NULL OR trim(account_id) = '' THEN 'missing field account_id'
                    WHEN prompt IS NULL THEN 'missing field prompt'
                    WHEN ts_raw IS NULL OR trim(ts_raw) = '' THEN 'missing field timestamp'
                    WHEN ts IS NULL THEN 'unparseable timestamp ' || left(ts_raw, 40)
                    WHEN length(prompt) > {MAX_PROMPT_CHARS}
                        THEN 'prompt too long (' || length(prompt) || ' characters; limit {MAX_PROMPT_CHARS})'
                END,
                ts
            FROM (SELECT *, {ts} AS ts FROM ({source}))
        """

    def _stage_jsonl(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        def path_of(field: str) -> str:
            return _lit('$."' + self.columns[field].replace('"', '\\"') + '"')

        def text_of(field: str) -> str:
            return f"json_extract_string(j, {path_of(field)})"

        # DuckDB evaluates JSON functions on every row whatever a CASE says, so each row's text is first
        # replaced by '{}' when it is not valid JSON (`j`), and the checks below read `j`.
        checks = ["WHEN NOT valid THEN 'malformed JSON'",
                  "WHEN json_type(j) <> 'OBJECT' THEN 'not a JSON object'"]
        allowed = {"account_id": ("VARCHAR", "BIGINT", "UBIGINT"), "prompt": ("VARCHAR",),
                   "timestamp": ("VARCHAR", "BIGINT", "UBIGINT", "DOUBLE")}
        for field in FIELDS:
            ok = allowed.get(field, ("VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN"))
            kinds = ", ".join(_lit(k) for k in ok + ("NULL",))
            checks.append(
                f"WHEN json_type(j, {path_of(field)}) NOT IN ({kinds}) THEN "
                f"'wrong type for {field} (' || lower(json_type(j, {path_of(field)})) || ')'"
            )
        drop = "{" + ",".join(f'"{self.columns[f]}":null' for f in FIELDS) + "}"
        source = f"""
            SELECT line,
                CASE WHEN obj THEN {text_of('account_id')} END AS account_id,
                CASE WHEN obj THEN {text_of('timestamp')} END AS ts_raw,
                CASE WHEN obj THEN {text_of('prompt')} END AS prompt,
                CASE WHEN obj THEN {text_of('exchange_id')} END AS exchange_id,
                CASE WHEN obj THEN {text_of('response')} END AS response,
                CASE WHEN obj THEN {text_of('model')} END AS model,
                CASE WHEN obj THEN {text_of('ip')} END AS ip,
                CASE WHEN json_valid(raw) AND json_type(raw) = 'OBJECT'
                     THEN nullif(json_merge_patch(j, {_lit(drop)}), '{{}}') END::JSON AS meta,
                raw,
                COALESCE(decode_problem, CASE {' '.join(checks)} END) AS problem
            FROM (SELECT *, json_type(j) = 'OBJECT' AS obj
                  FROM (SELECT *, json_valid(raw) AS valid,
                               CASE WHEN json_valid(raw) THEN raw ELSE '{{}}' END AS j FROM chunk))
        """
        insert = self._finish_stage_sql(stage, source)
        opener = gzip.open if path.suffix.lower() in (".gz", ".gzip") else open
        line_no = 0
        done_bytes = 0
        total = path.stat().st_size
        try:
            with opener(path, "rb") as fh:
                while True:
                    lines = fh.readlines(_JSONL_CHUNK_BYTES)
                    if not lines:
                        break
                    numbers, raws, problems = [], [], []
                    for raw_bytes in lines:
                        line_no += 1
                        done_bytes += len(raw_bytes)
                        if not raw_bytes.strip():
                            continue  # blank lines (a trailing newline, a gap) are not rows
                        try:
                            text = raw_bytes.decode("utf-8").rstrip("\r\n")
                            problem = None
                        except UnicodeDecodeError:
                            text = raw_bytes.decode("utf-8", errors="replace").rstrip("\r\n")
                            problem = "invalid UTF-8 (binary data?)"
                        numbers.append(line_no)
                        raws.append(text)
                        problems.append(problem)
                    chunk = pa.table({"line": pa.array(numbers, pa.int64()), "raw": pa.array(raws, pa.string()),
                                      "decode_problem": pa.array(problems, pa.string())})
                    con.register("chunk", chunk)
                    con.execute(insert)
                    con.unregister("chunk")
                    # Compressed files report progress in uncompressed bytes; close enough for a bar.
                    self.progress(f"stage {path.name}", min(done_bytes, total), total)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise IngestError(f"{path}:{line_no + 1}: cannot read file ({err})") from err

    def _stage_table(
        self, con: duckdb.DuckDBPyConnection, path: Path, fmt: str, stage: str
    ) -> list[tuple[int, str, str]]:
        """Stage CSV or Parquet through DuckDB's readers; returns structural rejects (line, reason, raw)."""
        if fmt == "csv":
            reader = (f"read_csv({_lit(str(path))}, all_varchar = true, header = true, "
                      "store_rejects = true, rejects_table = 'ch_rejects', rejects_scan = 'ch_scans')")
            line_expr = "row_number() OVER () + 1"  # line 1 is the header
        else:
            reader = f"read_parquet({_lit(str(path))}, file_row_number = true)"
            line_expr = "file_row_number + 1"
        try:
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        except duckdb.Error as err:
            raise IngestError(f"{path}: cannot read as {fmt}: {str(err).splitlines()[0]}") from err
        columns = [c for c in columns if not (fmt == "parquet" and c == "file_row_number")]
        missing = [f for f in REQUIRED if self.columns[f] not in columns]
        if missing:
            raise IngestError(
                f"{path}: missing column(s) {', '.join(self.columns[f] for f in missing)} "
                f"(found: {', '.join(columns[:12])}); rename with --map FIELD=COLUMN"
            )

        def col(field: str) -> str:
            name = self.columns[field]
            return f"CAST({_ident(name)} AS VARCHAR)" if name in columns else "NULL::VARCHAR"

        mapped = {self.columns[f] for f in FIELDS}
        extra = [c for c in columns if c not in mapped]
        meta = ("json_object(" + ", ".join(f"{_lit(c)}, {_ident(c)}" for c in extra) + ")") if extra else "NULL"
        everything = "json_object(" + ", ".join(f"{_lit(c)}, {_ident(c)}" for c in columns) + ")"
        source = f"""
            SELECT {line_expr} AS line, {col('account_id')} AS account_id, {col('timestamp')} AS ts_raw,
                {col('prompt')} AS prompt, {col('exchange_id')} AS exchange_id, {col('response')} AS response,
                {col('model')} AS model, {col('ip')} AS ip, {meta}::JSON AS meta, {everything}::VARCHAR AS raw,
                NULL::VARCHAR AS problem
            FROM {reader}
        """
        try:
            con.execute(self._finish_stage_sql(stage, source))
        except duckdb.Error as err:
            raise IngestError(f"{path}: cannot read as {fmt}: {str(err).splitlines()[0]}") from err
        if fmt != "csv":
            return []
        rejects = con.execute(
            "SELECT line, error_type || ': ' || error_message, csv_line FROM ch_rejects ORDER BY line"
        ).fetchall()
        return [(int(line), " ".join(str(reason).split())[:200], raw or "") for line, reason, raw in rejects]

    def _validate(
        self, con: duckdb.DuckDBPyConnection, path: Path, file_id: int, structural: list[tuple[int, str, str]]
    ) -> None:
        stage, norm = f"stage_{file_id}", f"norm_{file_id}"
        self._normalise(con, stage, norm, path)
        # Rows whose prompt is empty or binary once normalised.
        con.execute(
            f"""UPDATE {stage} SET problem = n.junk FROM {norm} n
                WHERE {stage}.prompt = n.prompt AND {stage}.problem IS NULL AND n.junk IS NOT NULL"""
        )
        total, bad = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE problem IS NOT NULL) FROM {stage}"
        ).fetchone()
        bad += len(structural)
        total += len(structural)
        if total == 0:
            raise IngestError(f"{path}: the file holds no rows")
        if bad and self.on_error == "fail":
            first = con.execute(
                f"SELECT line, problem FROM {stage} WHERE problem IS NOT NULL ORDER BY line LIMIT ?",
                [MAX_ERRORS_SHOWN],
            ).fetchall()
            problems = sorted([(line, reason) for line, reason, _ in structural] + list(first))[:MAX_ERRORS_SHOWN]
            lines = [f"{path}:{line}: {reason}" for line, reason in problems]
            more = f" (and {bad - 1} more bad row{'s' if bad > 2 else ''})" if bad > 1 else ""
            raise IngestError(
                f"{lines[0]}{more}; nothing was written (use --on-error skip to load the good rows "
                "and quarantine the bad ones)",
                problems=lines,
            )
        quarantine = None
        if bad:
            quarantine = self.store.root / "quarantine" / f"{path.name}.{file_id}.rejected.jsonl"
            con.execute("CREATE TEMP TABLE q_structural (line BIGINT, reason VARCHAR, raw VARCHAR)")
            if structural:
                con.executemany("INSERT INTO q_structural VALUES (?, ?, ?)", structural)
            with atomic_path(quarantine) as tmp:
                con.execute(
                    f"""COPY (SELECT {_lit(str(path))} AS file, line, reason, raw FROM (
                            SELECT line, problem AS reason, raw FROM {stage} WHERE problem IS NOT NULL
                            UNION ALL SELECT line, reason, raw FROM q_structural) ORDER BY line)
                        TO {_lit(str(tmp))} (FORMAT json)"""
                )
            con.execute("DROP TABLE q_structural")
            log.warning("%s: %d bad rows quarantined in %s", path, bad, quarantine)
        good_lines = con.execute(f"SELECT max(line) FROM {stage} WHERE problem IS NULL").fetchone()[0] or 0
        batches = -(-int(good_lines) // self.batch_rows)
        con.execute(
            """UPDATE ingest_files SET status = 'loading', rows_total = ?, rows_rejected = ?,
               batches_total = ?, batches_done = 0, quarantine = ? WHERE file_id = ?""",
            [total, bad, batches, str(quarantine) if quarantine else None, file_id],
        )

    def _normalise(self, con: duckdb.DuckDBPyConnection, stage: str, norm: str, path: Path) -> None:
        """Normalise and fingerprint each distinct raw prompt once, in pages (bounded memory)."""
        con.execute(f"CREATE TABLE {norm} (prompt VARCHAR, normalized VARCHAR, fingerprint BIGINT, junk VARCHAR)")
        con.execute(
            f"""CREATE TEMP TABLE distinct_prompts AS
                SELECT prompt, row_number() OVER () AS rn
                FROM (SELECT DISTINCT prompt FROM {stage} WHERE problem IS NULL)"""
        )
        n = con.execute("SELECT count(*) FROM distinct_prompts").fetchone()[0]
        for lo in range(0, n, _NORMALISE_PAGE):
            texts = [r[0] for r in con.execute(
                "SELECT prompt FROM distinct_prompts WHERE rn > ? AND rn <= ? ORDER BY rn",
                [lo, lo + _NORMALISE_PAGE]).fetchall()]
            normals = [normalize(t) for t in texts]
            junk = [junk_reason(t) for t in texts]
            prints = [fingerprint(t) for t in normals]
            page = pa.table({"prompt": texts, "normalized": normals,
                             "fingerprint": pa.array(prints, pa.int64()), "junk": pa.array(junk, pa.string())})
            con.register("page", page)
            con.execute(f"INSERT INTO {norm} SELECT * FROM page")
            con.unregister("page")
            self.progress(f"fingerprint {path.name}", min(lo + _NORMALISE_PAGE, n), n)
        con.execute("DROP TABLE distinct_prompts")

    # ------------------------------------------------------------------ load
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
                con.execute(
                    f"""INSERT INTO prompts (prompt_id, fingerprint, text, normalized, n_chars, first_seen, last_seen)
                        SELECT nextval('prompt_id_seq'), fingerprint, text, normalized, length(normalized),
                               first_seen, last_seen
                        FROM (SELECT n.fingerprint, arg_min(s.prompt, s.line) AS text,
                                     any_value(n.normalized) AS normalized, min(s.ts) AS first_seen,
                                     max(s.ts) AS last_seen
                              FROM {stage} s JOIN {norm} n ON s.prompt = n.prompt
                              WHERE s.problem IS NULL AND s.line BETWEEN ? AND ?
                              GROUP BY n.fingerprint) x
                        WHERE NOT EXISTS (SELECT 1 FROM prompts p WHERE p.fingerprint = x.fingerprint)
                        ORDER BY first_seen""",
                    [lo, hi],
                )
                candidates = con.execute(
                    f"SELECT count(*) FROM {stage} WHERE problem IS NULL AND line BETWEEN ? AND ?", [lo, hi]
                ).fetchone()[0]
                con.execute(
                    f"""INSERT INTO exchanges
                        SELECT eid, account_id, ts, prompt_id, response, model, ip, meta, {file_id}, line
                        FROM (SELECT {eid} AS eid, s.account_id, s.ts, p.prompt_id, s.response, s.model, s.ip,
                                     s.meta, s.line
                              FROM {stage} s JOIN {norm} n ON s.prompt = n.prompt
                                   JOIN prompts p ON p.fingerprint = n.fingerprint
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
