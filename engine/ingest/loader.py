"""Ingest exchange files (JSONL, CSV, Parquet; gzip too) into the workspace database.

A file goes through three steps, each one resumable:

1. **stage**: JSONL and CSV are read line by line in Python, in large chunks (so that every row keeps
   its physical line number, and a line over MAX_LINE_BYTES is never held whole), checked against the
   per-row limits of engine.config before DuckDB's JSON functions see a row, then field-checked in SQL;
   Parquet is read in bulk by DuckDB. Rows go to a staging table on disk, so memory stays bounded;
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

import csv
import gzip
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from engine.config import (
    EARLIEST_TIMESTAMP,
    FUTURE_SLACK_SECONDS,
    MAX_FIELD_CHARS,
    MAX_JSON_DEPTH,
    MAX_LINE_BYTES,
    MAX_PROMPT_CHARS,
)
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
# Characters of an over-long line kept in the quarantine (the whole line is never read into memory).
_RAW_KEPT = 1000
# C0 and C1 control characters and the Unicode line/paragraph separators: none belongs in an id, and each
# one would break the one-line error or a report heading. As an RE2 class for SQL, and as a Python regex.
_CONTROL_SQL = "'[\\x00-\\x1f\\x7f-\\x9f\\x{2028}\\x{2029}]'"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UTF8_BOM = b"\xef\xbb\xbf"


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


def _shown_sql(expr: str, width: int = 60) -> str:
    """SQL for a user value quoted in a reason: cut to `width`, control characters as '?' (one line)."""
    return f"regexp_replace(left({expr}, {width}), {_CONTROL_SQL}, '?', 'g')"


def _shown(text: str, width: int = 60) -> str:
    """A user value quoted in a reason: cut to `width`, control characters as '?' (one line)."""
    return _CONTROL.sub("?", text[:width]) + ("..." if len(text) > width else "")


def _deeper_than(value: object, limit: int) -> bool:
    """Whether a parsed JSON value nests objects and arrays more than `limit` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _check_encoding(path: Path, head: bytes) -> None:
    """Refuse a file that is not UTF-8 text as a whole (UTF-16/32 by its BOM or its NUL bytes)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head.startswith(b"\x00\x00\xfe\xff"):
        kind = "UTF-32" if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else "UTF-16"
        raise IngestError(f"{path}: the file is {kind} text, not UTF-8; convert it first "
                          f"(iconv -f {kind} -t UTF-8)")
    sample = head[:4096]
    if sample and sample.count(0) * 4 >= len(sample):
        raise IngestError(f"{path}: the file is not UTF-8 text ({sample.count(0)} NUL bytes in its first "
                          f"{len(sample)}: UTF-16 without a BOM, or binary); convert it to UTF-8 first")


class _CsvRecord:
    """What the CSV line feed learns about the record being read: its lines, size, and bad UTF-8."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lines: list[bytes] = []
        self.size = 0
        self.bad_utf8 = False


class _Lines:
    """The physical lines of a (possibly gzipped) file, as bytes, in bounded memory.

    A line longer than MAX_LINE_BYTES is never held whole: `oversize[line]` records its size, its first
    bytes stand in for it, and `keep` (when given) maps each further piece to what must survive of it (the
    CSV reader keeps quotes, delimiters and newlines so that the records after it parse as they should).
    A UTF-8 BOM at the start of the file is dropped. `number` is the last line's number (1-based).
    """

    def __init__(self, fh, keep=None) -> None:
        self.fh = fh
        self.keep = keep
        self.number = 0
        self.bytes_read = 0
        self.oversize: dict[int, int] = {}

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.fh.readline(MAX_LINE_BYTES + 1)
        if not data:
            raise StopIteration
        self.number += 1
        self.bytes_read += len(data)
        if self.number == 1 and data.startswith(_UTF8_BOM):
            data = data[len(_UTF8_BOM):]
        if len(data) <= MAX_LINE_BYTES or data.endswith(b"\n"):
            return data
        size, kept = len(data), [data[:_RAW_KEPT]]
        if self.keep:
            kept.append(self.keep(data[_RAW_KEPT:]))
        while not data.endswith(b"\n"):
            data = self.fh.readline(1 << 20)
            if not data:
                break
            size += len(data)
            self.bytes_read += len(data)
            if self.keep:
                kept.append(self.keep(data))
        self.oversize[self.number] = size
        return b"".join(kept) + (b"" if kept[-1].endswith(b"\n") else b"\n")


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
        try:
            if fmt == "jsonl":
                self._stage_jsonl(con, path, stage)
            elif fmt == "csv":
                self._stage_csv(con, path, stage)
            else:
                self._stage_parquet(con, path, stage)
            self._validate(con, path, file_id)
        except BaseException:
            self._drop_staging(con, file_id)
            con.execute("DELETE FROM ingest_files WHERE file_id = ?", [file_id])
            raise
        return file_id

    def _finish_stage_sql(self, stage: str, source: str) -> str:
        """INSERT the common columns plus the row's first field-level problem from `source`."""
        raw_ts = "trim(ts_raw)"
        ts = (
            f"CASE WHEN regexp_full_match({raw_ts}, '-?[0-9]+(\\.[0-9]+)?') THEN "
            # epoch: seconds, or milliseconds when the number is too big to be seconds; microseconds and
            # seconds past 1e11 land far outside the accepted range below and are refused there
            f"try(to_timestamp(CASE WHEN abs({raw_ts}::DOUBLE) > 1e11 THEN {raw_ts}::DOUBLE / 1000 "
            f"ELSE {raw_ts}::DOUBLE END)::TIMESTAMP) "
            f"ELSE try_cast({raw_ts} AS TIMESTAMPTZ)::TIMESTAMP END"
        )
        # DuckDB reads "+25:00" and "-12:60" as some other time; real offsets run from -12:00 to +14:00.
        offset = (f"regexp_extract({raw_ts}, '[0-9]:[0-9]{{2}}(?::[0-9]{{2}}(?:[.,][0-9]+)?)?\\s*[+-]"
                  f"([0-9]{{2}}):?([0-9]{{2}})?$', ['h', 'm'])")
        latest = (datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=FUTURE_SLACK_SECONDS)
                  ).strftime("%Y-%m-%d %H:%M:%S")
        sizes = " ".join(
            f"WHEN length({col}) > {MAX_FIELD_CHARS} THEN 'field {field} too large (' || length({col}) "
            f"|| ' characters; limit {MAX_FIELD_CHARS})'"
            for field, col in (("account_id", "account_id"), ("timestamp", "ts_raw"),
                               ("exchange_id", "exchange_id"), ("response", "response"), ("model", "model"),
                               ("ip", "ip"))
        )
        return f"""
            INSERT INTO {stage}
            SELECT line, account_id, ts_raw, prompt, exchange_id, response, model, ip, meta, raw,
                CASE
                    WHEN problem IS NOT NULL THEN problem
                    {sizes}
                    WHEN account_id IS NULL OR trim(account_id) = '' THEN 'missing field account_id'
                    WHEN prompt IS NULL THEN 'missing field prompt'
                    WHEN ts_raw IS NULL OR trim(ts_raw) = '' THEN 'missing field timestamp'
                    WHEN regexp_matches(account_id, {_CONTROL_SQL})
                        THEN 'account_id ' || {_shown_sql('account_id')} || ' holds a control character'
                    WHEN regexp_matches(exchange_id, {_CONTROL_SQL})
                        THEN 'exchange_id ' || {_shown_sql('exchange_id')} || ' holds a control character'
                    WHEN off.h <> '' AND (off.h::INTEGER > 14 OR (off.m <> '' AND off.m::INTEGER > 59))
                        THEN 'invalid UTC offset in timestamp ' || {_shown_sql('ts_raw', 40)}
                    WHEN ts IS NULL THEN 'unparseable timestamp ' || {_shown_sql('ts_raw', 40)}
                    WHEN NOT ts BETWEEN TIMESTAMP '{EARLIEST_TIMESTAMP}' AND TIMESTAMP '{latest}'
                        THEN 'timestamp ' || {_shown_sql('ts_raw', 40)} || ' out of range (read as '
                             || CAST(ts AS VARCHAR) || ' UTC; accepted: {EARLIEST_TIMESTAMP} to a day from now; '
                             || 'epoch numbers are seconds, or milliseconds past 1e11)'
                    WHEN length(prompt) > {MAX_PROMPT_CHARS}
                        THEN 'prompt too long (' || length(prompt) || ' characters; limit {MAX_PROMPT_CHARS})'
                END,
                CASE WHEN ts BETWEEN TIMESTAMP '{EARLIEST_TIMESTAMP}' AND TIMESTAMP '{latest}' THEN ts END
            FROM (SELECT *, {ts} AS ts, {offset} AS off FROM ({source}))
        """

    def _stage_jsonl(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        def path_of(field: str) -> str:
            # A JSON pointer (RFC 6901) names any key, quotes, backslashes, dots and spaces included.
            return _lit("/" + self.columns[field].replace("~", "~0").replace("/", "~1"))

        def text_of(field: str) -> str:
            return f"json_extract_string(j, {path_of(field)})"

        # DuckDB evaluates JSON functions on every row whatever a CASE says, so each row's text is first
        # replaced by '{}' when it is not valid JSON or failed a check in Python (`j`), and the checks
        # below read `j`; `raw` (kept for the quarantine) is never parsed.
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
        drop = json.dumps({self.columns[f]: None for f in FIELDS})
        source = f"""
            SELECT line,
                CASE WHEN obj THEN {text_of('account_id')} END AS account_id,
                CASE WHEN obj THEN {text_of('timestamp')} END AS ts_raw,
                CASE WHEN obj THEN {text_of('prompt')} END AS prompt,
                CASE WHEN obj THEN {text_of('exchange_id')} END AS exchange_id,
                CASE WHEN obj THEN {text_of('response')} END AS response,
                CASE WHEN obj THEN {text_of('model')} END AS model,
                CASE WHEN obj THEN {text_of('ip')} END AS ip,
                CASE WHEN obj THEN nullif(json_merge_patch(j, {_lit(drop)}), '{{}}') END::JSON AS meta,
                raw,
                COALESCE(pre_problem, CASE {' '.join(checks)} END) AS problem
            FROM (SELECT *, json_type(j) = 'OBJECT' AS obj
                  FROM (SELECT *, CASE WHEN valid THEN doc ELSE '{{}}' END AS j
                        FROM (SELECT *, COALESCE(json_valid(doc), false) AS valid FROM chunk)))
        """
        insert = self._finish_stage_sql(stage, source)
        total = path.stat().st_size
        lines: _Lines | None = None
        try:
            with self._open(path) as fh:
                lines = _Lines(fh)
                while True:
                    chunk_start = lines.bytes_read
                    numbers: list[int] = []
                    docs: list[str | None] = []
                    raws: list[str] = []
                    problems: list[str | None] = []
                    for data in lines:
                        if not data.strip():
                            continue  # blank lines (a trailing newline, a gap) are not rows
                        number = lines.number
                        problem = None
                        try:
                            text = data.decode("utf-8").rstrip("\r\n")
                        except UnicodeDecodeError:
                            text = data.decode("utf-8", errors="replace").rstrip("\r\n")
                            problem = "invalid UTF-8 (binary data, or another encoding such as Latin-1?)"
                        if number in lines.oversize:
                            problem = (f"line too long ({lines.oversize[number]} bytes; "
                                       f"limit {MAX_LINE_BYTES})")
                        elif problem is None and (len(data) > MAX_FIELD_CHARS
                                                  or data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH):
                            problem = self._check_big_row(text, len(data))
                        numbers.append(number)
                        docs.append(text if problem is None else None)
                        raws.append(text)
                        problems.append(problem)
                        if lines.bytes_read - chunk_start >= _JSONL_CHUNK_BYTES:
                            break
                    if not numbers:
                        break
                    chunk = pa.table({"line": pa.array(numbers, pa.int64()), "doc": pa.array(docs, pa.string()),
                                      "raw": pa.array(raws, pa.string()),
                                      "pre_problem": pa.array(problems, pa.string())})
                    con.register("chunk", chunk)
                    con.execute(insert)
                    con.unregister("chunk")
                    # Compressed files report progress in uncompressed bytes; close enough for a bar.
                    self.progress(f"stage {path.name}", min(lines.bytes_read, total), total)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise IngestError(f"{path}:{lines.number + 1 if lines else 1}: cannot read file ({err})") from err

    def _check_big_row(self, text: str, size: int) -> str | None:
        """The reason a JSONL row too deep or too big for DuckDB must not reach it, or None.

        Only rows with more brackets than MAX_JSON_DEPTH or more bytes than MAX_FIELD_CHARS come here, so
        common rows pay two byte counts; these few are parsed by Python's own (C) JSON reader.
        """
        too_deep = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        try:
            value = json.loads(text)
        except RecursionError:
            return too_deep
        except ValueError:
            return "malformed JSON"
        if _deeper_than(value, MAX_JSON_DEPTH):
            return too_deep
        if not isinstance(value, dict) or size <= MAX_FIELD_CHARS:
            return None
        prompt_key = self.columns["prompt"]
        for key, item in value.items():
            if len(key) > MAX_FIELD_CHARS:
                return f"a field name of {len(key)} characters (limit {MAX_FIELD_CHARS})"
            if key == prompt_key and isinstance(item, str) and len(item) > MAX_PROMPT_CHARS:
                return f"prompt too long ({len(item)} characters; limit {MAX_PROMPT_CHARS})"
            chars = len(item) if isinstance(item, str) else len(json.dumps(item)) if isinstance(item, dict | list) else 0
            if chars > MAX_FIELD_CHARS:
                return f"field {_shown(key, 40)!r} too large ({chars} characters; limit {MAX_FIELD_CHARS})"
        return None

    @staticmethod
    def _open(path: Path):
        """The file as binary, gunzipped if need be, after a look at its encoding."""
        opener = gzip.open if path.suffix.lower() in (".gz", ".gzip") else open
        fh = opener(path, "rb")
        try:
            _check_encoding(path, fh.peek(4096)[:4096])
        except BaseException:
            fh.close()
            raise
        return fh

    def _missing_columns(self, path: Path, columns: list[str]) -> None:
        missing = [f for f in REQUIRED if self.columns[f] not in columns]
        if missing:
            raise IngestError(
                f"{path}: missing column(s) {', '.join(self.columns[f] for f in missing)} "
                f"(found: {', '.join(_shown(c, 40) for c in columns[:12])}); rename with --map FIELD=COLUMN"
            )

    def _columns_sql(self, columns: list[str], ref) -> tuple[str, str, str]:
        """(named fields, meta JSON, whole row as JSON text) as SQL over `columns`; `ref(i)` names one."""
        def col(field: str) -> str:
            name = self.columns[field]
            return f"CAST({ref(columns.index(name))} AS VARCHAR)" if name in columns else "NULL::VARCHAR"

        named = (f"{col('account_id')} AS account_id, {col('timestamp')} AS ts_raw, {col('prompt')} AS prompt, "
                 f"{col('exchange_id')} AS exchange_id, {col('response')} AS response, {col('model')} AS model, "
                 f"{col('ip')} AS ip")
        mapped = {self.columns[f] for f in FIELDS}
        extra = [i for i, c in enumerate(columns) if c not in mapped]
        meta = ("json_object(" + ", ".join(f"{_lit(columns[i])}, {ref(i)}" for i in extra) + ")") if extra else "NULL"
        everything = "json_object(" + ", ".join(f"{_lit(c)}, {ref(i)}" for i, c in enumerate(columns)) + ")"
        return named, meta, everything

    def _stage_parquet(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        reader = f"read_parquet({_lit(str(path))}, file_row_number = true)"
        try:
            columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        except duckdb.Error as err:
            raise IngestError(f"{path}: cannot read as parquet: {str(err).splitlines()[0]}") from err
        columns = [c for c in columns if c != "file_row_number"]
        self._missing_columns(path, columns)
        named, meta, everything = self._columns_sql(columns, lambda i: _ident(columns[i]))
        source = f"""
            SELECT file_row_number + 1 AS line, {named}, {meta}::JSON AS meta, {everything}::VARCHAR AS raw,
                NULL::VARCHAR AS problem
            FROM {reader}
        """
        try:
            con.execute(self._finish_stage_sql(stage, source))
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as err:
            raise IngestError(f"{path}: cannot read as parquet: {str(err).splitlines()[0]}") from err

    def _stage_csv(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        """Read CSV with Python's csv module, so that each record keeps its physical line number.

        DuckDB's reader numbers records, not lines (a multi-line quoted prompt shifts every later number)
        and drops the rows it rejects from the count. Here each record's first physical line is its
        line; records with the wrong number of fields, invalid UTF-8, a line over MAX_LINE_BYTES or a
        field over MAX_FIELD_CHARS are bad rows with that line. The delimiter is the header's most
        frequent of , ; TAB | (TAB for .tsv); quotes are doubled inside quoted fields (RFC 4180).
        """
        total = path.stat().st_size
        lines: _Lines | None = None
        record = _CsvRecord()

        def feed() -> Iterator[str]:
            for data in lines:
                if record.size > MAX_LINE_BYTES:
                    # A quoted field that runs on (an unbalanced quote, a hostile row): its structure
                    # only, so memory stays bounded and the records after it still parse.
                    data = structure.sub(b"", data)
                else:
                    record.lines.append(data)
                record.size += len(data)
                try:
                    yield data.decode("utf-8")
                except UnicodeDecodeError:
                    record.bad_utf8 = True
                    yield data.decode("utf-8", errors="replace")

        try:
            with self._open(path) as fh:
                last = 0
                header_line = fh.peek(65536)[:65536].split(b"\n", 1)[0].lstrip(_UTF8_BOM).decode("utf-8", "replace")
                delimiter = "\t" if ".tsv" in [x.lower() for x in path.suffixes] else max(
                    ",;\t|", key=lambda d: (header_line.count(d), d == ","))
                # Structure must survive an over-long line: keep its quotes, delimiters and newline only.
                structure = re.compile(b'[^"' + re.escape(delimiter.encode()) + b"\r\n]")
                lines = _Lines(fh, keep=lambda piece: structure.sub(b"", piece))
                old_limit = csv.field_size_limit()
                csv.field_size_limit(sys.maxsize)  # sizes are checked below, per field
                try:
                    reader = csv.reader(feed(), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
                    header = None
                    while not header:
                        header = next(reader, None)
                        if header is None:
                            raise IngestError(f"{path}: the file holds no rows")
                    columns = self._csv_columns(header)
                    self._missing_columns(path, columns)
                    named, meta, everything = self._columns_sql(columns, lambda i: f"c{i}")
                    insert = self._finish_stage_sql(stage, f"""
                        SELECT line, {named}, {meta}::JSON AS meta,
                            CASE WHEN raw IS NULL THEN {everything}::VARCHAR ELSE raw END AS raw, problem
                        FROM chunk""")
                    last = lines.number
                    done = False
                    while not done:
                        chunk_start = lines.bytes_read
                        rows: list[list[str | None]] = [[] for _ in columns]
                        numbers: list[int] = []
                        raws: list[str | None] = []
                        problems: list[str | None] = []
                        while lines.bytes_read - chunk_start < _JSONL_CHUNK_BYTES:
                            record.reset()
                            try:
                                fields = next(reader, None)
                                problem = None
                            except csv.Error as err:
                                # The reader drops the rest of that line and starts afresh on the next.
                                fields, problem = [], f"cannot parse as CSV ({err})"
                            if fields is None:
                                done = True
                                break
                            first, last = last + 1, lines.number
                            if not fields and problem is None:
                                continue  # a blank line
                            problem = problem or self._csv_problem(fields, len(columns), first, last, lines,
                                                                   record)
                            numbers.append(first)
                            if problem:
                                raws.append(b"".join(record.lines).decode("utf-8", "replace")[:MAX_LINE_BYTES]
                                            .rstrip("\r\n"))
                                fields = [None] * len(columns)
                            else:
                                raws.append(None)
                            problems.append(problem)
                            for i, value in enumerate(fields):
                                rows[i].append(value or None)  # an empty field is missing, as DuckDB reads it
                        if not numbers:
                            continue
                        data = {f"c{i}": pa.array(values, pa.string()) for i, values in enumerate(rows)}
                        data.update(line=pa.array(numbers, pa.int64()), raw=pa.array(raws, pa.string()),
                                    problem=pa.array(problems, pa.string()))
                        con.register("chunk", pa.table(data))
                        con.execute(insert)
                        con.unregister("chunk")
                        self.progress(f"stage {path.name}", min(lines.bytes_read, total), total)
                finally:
                    csv.field_size_limit(old_limit)
        except csv.Error as err:
            raise IngestError(f"{path}:{lines.number if lines else 1}: cannot parse as CSV ({err})") from err
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise IngestError(f"{path}:{lines.number + 1 if lines else 1}: cannot read file ({err})") from err

    @staticmethod
    def _csv_columns(header: list[str]) -> list[str]:
        """Header names, blanks named column<i> and repeats suffixed _1, _2 (as DuckDB's reader does)."""
        columns: list[str] = []
        for i, name in enumerate(header):
            name = name.strip() or f"column{i}"
            base, n = name, 0
            while name in columns:
                n += 1
                name = f"{base}_{n}"
            columns.append(name)
        return columns

    @staticmethod
    def _csv_problem(fields: list[str], n_columns: int, first: int, last: int, lines: _Lines,
                     record: _CsvRecord) -> str | None:
        for number in range(first, last + 1):
            if number in lines.oversize:
                return f"line {number} too long ({lines.oversize[number]} bytes; limit {MAX_LINE_BYTES})"
        if record.size > MAX_LINE_BYTES:
            return f"record too long ({record.size} bytes over lines {first}-{last}; limit {MAX_LINE_BYTES})"
        if record.bad_utf8:
            return "invalid UTF-8 (binary data, or another encoding such as Latin-1?)"
        if len(fields) != n_columns:
            return f"expected {n_columns} fields, found {len(fields)}"
        return None

    def _validate(self, con: duckdb.DuckDBPyConnection, path: Path, file_id: int) -> None:
        stage, norm = f"stage_{file_id}", f"norm_{file_id}"
        self._normalise(con, stage, norm, path)
        # Rows whose prompt is empty or binary once normalised.
        con.execute(
            f"""UPDATE {stage} SET problem = n.junk FROM {norm} n
                WHERE {stage}.prompt = n.prompt AND {stage}.problem IS NULL AND n.junk IS NOT NULL"""
        )
        self._conflicting_ids(con, stage, norm)
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
            lines = [_CONTROL.sub("?", f"{path}:{line}: {reason}") for line, reason in problems]
            more = f" (and {bad - 1} more bad row{'s' if bad > 2 else ''})" if bad > 1 else ""
            raise IngestError(
                f"{lines[0]}{more}; nothing was written (use --on-error skip to load the good rows "
                "and quarantine the bad ones)",
                problems=lines,
            )
        quarantine = None
        if bad:
            quarantine = self.store.root / "quarantine" / f"{path.name}.{file_id}.rejected.jsonl"
            with atomic_path(quarantine) as tmp:
                con.execute(
                    f"""COPY (SELECT {_lit(str(path))} AS file, line, problem AS reason, raw FROM {stage}
                              WHERE problem IS NOT NULL ORDER BY line)
                        TO {_lit(str(tmp))} (FORMAT json)"""
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
    def _conflicting_ids(con: duckdb.DuckDBPyConnection, stage: str, norm: str) -> None:
        """Mark rows whose given exchange id is already used by another exchange (account, time, prompt).

        An identical re-send stays a duplicate (idempotent ingest); another exchange under a used id is a
        bad row, so that two files of per-file counters cannot silently drop each other's rows. Stored
        exchanges are checked first (they keep their id); then, within the file, the first good row of an
        id claims it and later rows with other content are bad. Prompts compare by fingerprint.
        """
        shown = _shown_sql("s.exchange_id")
        con.execute(
            f"""UPDATE {stage} SET problem = c.reason FROM (
                    SELECT s.line, 'exchange id ' || {shown} || ' already stored with other content' AS reason
                    FROM {stage} s JOIN {norm} n ON s.prompt = n.prompt
                         JOIN exchanges e ON e.exchange_id = s.exchange_id
                         JOIN prompts p ON p.prompt_id = e.prompt_id
                    WHERE s.problem IS NULL AND s.exchange_id IS NOT NULL
                      AND (e.account_id, e.ts, p.fingerprint) IS DISTINCT FROM (s.account_id, s.ts, n.fingerprint)
                ) c WHERE {stage}.line = c.line"""
        )
        con.execute(
            f"""UPDATE {stage} SET problem = c.reason FROM (
                    SELECT line, 'exchange id ' || shown || ' appears twice in this file with other content '
                                 || '(first at line ' || first_line || ')' AS reason
                    FROM (SELECT s.line, {shown} AS shown, s.account_id, s.ts, n.fingerprint,
                                 min(s.line) OVER w AS first_line, arg_min(s.account_id, s.line) OVER w AS a0,
                                 arg_min(s.ts, s.line) OVER w AS t0, arg_min(n.fingerprint, s.line) OVER w AS f0
                          FROM {stage} s JOIN {norm} n ON s.prompt = n.prompt
                          WHERE s.problem IS NULL AND s.exchange_id IS NOT NULL
                          WINDOW w AS (PARTITION BY s.exchange_id))
                    WHERE (account_id, ts, fingerprint) IS DISTINCT FROM (a0, t0, f0)
                ) c WHERE {stage}.line = c.line"""
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
            self.progress(f"load {path.name}", batch + 1, int(batches_total))
        with transaction(con):
            refresh_aggregates(con, f"SELECT DISTINCT prompt_id, account_id FROM exchanges WHERE file_id = {file_id}")
            con.execute("UPDATE ingest_files SET status = 'done', finished = now() WHERE file_id = ?", [file_id])
        self._drop_staging(con, file_id)


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
