"""Staging: one exchange file read into a staging table, a row per record with its physical line.

JSONL is read in blocks of whole lines (`engine.ingest.lines.LineBlocks`: every row keeps its physical
line number, a line over MAX_LINE_BYTES is never held whole, and the common line never becomes a Python
string), CSV record by record with Python's csv module; rows are checked against the per-row limits of
engine.config before DuckDB's JSON functions see them, then field-checked in SQL; Parquet is read in
bulk by DuckDB. Each block's distinct good prompts are normalised and fingerprinted as a batch
(`engine.ingest.fingerprint.normalize_batch`): the fingerprint goes on the stage row (`fp`), a junk
prompt becomes the row's problem, and the normalised texts go to the file's `norm` table, one row per
fingerprint. The loader (`engine.ingest.loader`) then validates, quarantines and loads what this module
staged.

The module stays whole past ~500 lines: the three readers share the staging table's layout, its
resume rules and the per-block normalisation, and a reader split from them would have to import all
three back.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
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
from engine.ingest.fingerprint import normalize_batch
from engine.ingest.lines import UTF8_BOM, CsvRecord, LineBlock, LineBlocks, Lines, check_encoding, deeper_than
from engine.progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

REQUIRED = ("account_id", "timestamp", "prompt")
OPTIONAL = ("exchange_id", "response", "model", "ip")
FIELDS = REQUIRED + OPTIONAL
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "csv",
           ".parquet": "parquet", ".pq": "parquet"}
# Bytes of JSONL lines read per block: each block costs a few DuckDB statements, so fewer, larger blocks
# are faster (32 MB took 1.7x the SQL time on a million rows); memory stays a few times this.
_JSONL_CHUNK_BYTES = 128 * 1024 * 1024
# Bytes of CSV records per chunk: each of their fields is a Python string until the chunk goes to DuckDB.
_CSV_CHUNK_BYTES = 32 * 1024 * 1024
# Distinct prompts normalised per Python round trip (bounds memory on a big Parquet file).
_NORMALISE_PAGE = 250_000
# C0 and C1 control characters and the Unicode line/paragraph separators: none belongs in an id, and each
# one would break the one-line error or a report heading. As an RE2 class for SQL, and as a Python regex.
_CONTROL_SQL = "'[\\x00-\\x1f\\x7f-\\x9f\\x{2028}\\x{2029}]'"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

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


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def shown_sql(expr: str, width: int = 60) -> str:
    """SQL for a user value quoted in a reason: cut to `width`, control characters as '?' (one line)."""
    return f"regexp_replace(left({expr}, {width}), {_CONTROL_SQL}, '?', 'g')"


def _shown(text: str, width: int = 60) -> str:
    """A user value quoted in a reason: cut to `width`, control characters as '?' (one line)."""
    return CONTROL.sub("?", text[:width]) + ("..." if len(text) > width else "")


class Stager:
    """Reads one file into a staging table: one row per record, with its physical line and the first
    problem found in it (see the module docstring)."""

    def __init__(self, columns: dict[str, str], progress: ProgressFn = no_progress) -> None:
        # logical field -> column name in the file
        self.columns = columns
        self.progress = progress
        # A good JSONL row's raw text is its line, which `jsonl_lines` reads again should the row turn
        # out bad later (a junk prompt, a conflicting exchange id), so the stage keeps raw only for rows
        # found bad before that there (copying every line's text twice cost more than reading it again);
        # CSV and Parquet rows keep it, as a good row's raw is built from its fields.
        self.good_raw = True

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, fmt: str, stage: str, norm: str) -> None:
        """Fill the (already created) tables `stage` and `norm` from `path` in format `fmt`.

        `stage` gets one row per record (its `fp` is the normalised prompt's fingerprint, for rows
        without a problem), `norm` one row per fingerprint with its normalised text.
        """
        # Normalised texts of every block, deduplicated once at the end (an anti-join per block costs more).
        con.execute("CREATE OR REPLACE TEMP TABLE staged_texts (fp BIGINT, normalized VARCHAR)")
        self.good_raw = fmt != "jsonl"
        if fmt == "jsonl":
            self.stage_jsonl(con, path, stage)
        elif fmt == "csv":
            self.stage_csv(con, path, stage)
        else:
            self.stage_parquet(con, path, stage)
        con.execute(f"INSERT INTO {norm} SELECT fp, any_value(normalized) FROM staged_texts GROUP BY fp")
        con.execute("DROP TABLE staged_texts")

    def _insert(self, con: duckdb.DuckDBPyConnection, select: str, stage: str) -> None:
        """Run `select` (from `_finish_sql`), normalise its good rows' prompts, append to `stage`
        (and their normalised texts to the temporary `staged_texts`).

        Each distinct prompt of the block is normalised once (`normalize_batch`, in pages of
        _NORMALISE_PAGE for a big block such as a whole Parquet file); a junk prompt is the row's
        problem when it has no other. Rows go in by line, so `line BETWEEN` reads few row groups.
        """
        if not self.good_raw:  # a JSONL row's text is kept for rows already known bad only (see __init__)
            select = (f"SELECT * REPLACE (CASE WHEN problem IS NOT NULL THEN rtrim(raw, chr(13) || chr(10)) END "
                      f"AS raw) FROM ({select})")
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {select}")
        rows = con.execute("SELECT count(*) FROM staged").fetchall()[0][0]
        if rows <= _NORMALISE_PAGE:
            # One page: joined where Arrow holds it, not copied into a table first.
            page = self._normalise_page(con.sql(
                "SELECT DISTINCT prompt FROM staged WHERE problem IS NULL").to_arrow_table()["prompt"])
            con.register("staged_norm", page)
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE staged_norm "
                        "(prompt VARCHAR, fp BIGINT, normalized VARCHAR, junk VARCHAR)")
            con.execute("""CREATE OR REPLACE TEMP TABLE staged_prompts AS
                           SELECT prompt, row_number() OVER () AS rn
                           FROM (SELECT DISTINCT prompt FROM staged WHERE problem IS NULL)""")
            n = con.execute("SELECT count(*) FROM staged_prompts").fetchall()[0][0]
            for lo in range(0, n, _NORMALISE_PAGE):
                con.register("normal_page", self._normalise_page(con.sql(
                    "SELECT prompt FROM staged_prompts WHERE rn > ? AND rn <= ?",
                    params=[lo, lo + _NORMALISE_PAGE]).to_arrow_table()["prompt"]))
                con.execute("INSERT INTO staged_norm SELECT * FROM normal_page")
                con.unregister("normal_page")
            con.execute("DROP TABLE staged_prompts")
        con.execute(
            f"""INSERT INTO {stage}
                SELECT s.line, s.account_id, s.ts_raw, s.prompt, s.exchange_id, s.response, s.model, s.ip,
                       s.meta, s.raw, COALESCE(s.problem, n.junk), s.ts, n.fp
                FROM staged s LEFT JOIN staged_norm n ON s.problem IS NULL AND s.prompt = n.prompt
                ORDER BY s.line"""
        )
        con.execute("INSERT INTO staged_texts SELECT fp, normalized FROM staged_norm WHERE junk IS NULL")
        con.execute("DROP TABLE staged")
        if rows <= _NORMALISE_PAGE:
            con.unregister("staged_norm")
        else:
            con.execute("DROP TABLE staged_norm")

    @staticmethod
    def _normalise_page(texts: pa.ChunkedArray) -> pa.Table:
        """(prompt, fp, normalized, junk) of distinct prompts, for the join that stages them."""
        batch = normalize_batch(texts)
        return pa.table({"prompt": texts, "fp": pa.array(batch.fingerprints, pa.int64()),
                         "normalized": batch.normalized, "junk": batch.junk})

    def _finish_sql(self, source: str) -> str:
        """SELECT the common columns plus the row's first field-level problem from `source`."""
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
            SELECT line, account_id, ts_raw, prompt, exchange_id, response, model, ip, meta, raw,
                CASE
                    WHEN problem IS NOT NULL THEN problem
                    {sizes}
                    WHEN account_id IS NULL OR trim(account_id) = '' THEN 'missing field account_id'
                    WHEN prompt IS NULL THEN 'missing field prompt'
                    WHEN ts_raw IS NULL OR trim(ts_raw) = '' THEN 'missing field timestamp'
                    WHEN regexp_matches(account_id, {_CONTROL_SQL})
                        THEN 'account_id ' || {shown_sql('account_id')} || ' holds a control character'
                    WHEN regexp_matches(exchange_id, {_CONTROL_SQL})
                        THEN 'exchange_id ' || {shown_sql('exchange_id')} || ' holds a control character'
                    WHEN off.h <> '' AND (off.h::INTEGER > 14 OR (off.m <> '' AND off.m::INTEGER > 59))
                        THEN 'invalid UTC offset in timestamp ' || {shown_sql('ts_raw', 40)}
                    WHEN ts IS NULL THEN 'unparseable timestamp ' || {shown_sql('ts_raw', 40)}
                    WHEN NOT ts BETWEEN TIMESTAMP '{EARLIEST_TIMESTAMP}' AND TIMESTAMP '{latest}'
                        THEN 'timestamp ' || {shown_sql('ts_raw', 40)} || ' out of range (read as '
                             || CAST(ts AS VARCHAR) || ' UTC; accepted: {EARLIEST_TIMESTAMP} to a day from now; '
                             || 'epoch numbers are seconds, or milliseconds past 1e11)'
                    WHEN length(prompt) > {MAX_PROMPT_CHARS}
                        THEN 'prompt too long (' || length(prompt) || ' characters; limit {MAX_PROMPT_CHARS})'
                END AS problem,
                CASE WHEN ts BETWEEN TIMESTAMP '{EARLIEST_TIMESTAMP}' AND TIMESTAMP '{latest}' THEN ts END AS ts
            FROM (SELECT *, {ts} AS ts, {offset} AS off FROM ({source}))
        """

    def stage_jsonl(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        def path_of(field: str) -> str:
            # A JSON pointer (RFC 6901) names any key, quotes, backslashes, dots and spaces included.
            return lit("/" + self.columns[field].replace("~", "~0").replace("/", "~1"))

        def text_of(field: str) -> str:
            return f"json_extract_string(j, {path_of(field)})"

        # DuckDB evaluates JSON functions on every row whatever a CASE says, so each row's text is first
        # replaced by '{}' when it is not valid JSON or failed a check in Python (`j`), and the checks
        # below read `j`; `raw` (kept for the quarantine; the line's text, `doc`, unless the row failed
        # a check in Python) is never parsed.
        # One parse per function for all the fields: list forms of json_type and json_extract_string
        # (one call per field parsed every row once per field).
        paths = "[" + ", ".join(path_of(f) for f in FIELDS) + "]"
        checks = ["WHEN NOT valid THEN 'malformed JSON'", "WHEN NOT obj THEN 'not a JSON object'"]
        allowed = {"account_id": ("VARCHAR", "BIGINT", "UBIGINT"), "prompt": ("VARCHAR",),
                   "timestamp": ("VARCHAR", "BIGINT", "UBIGINT", "DOUBLE")}
        for i, field in enumerate(FIELDS, start=1):
            ok = allowed.get(field, ("VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN"))
            kinds = ", ".join(lit(k) for k in ok + ("NULL",))
            checks.append(f"WHEN types[{i}] NOT IN ({kinds}) THEN 'wrong type for {field} (' || lower(types[{i}]) || ')'")
        drop = json.dumps({self.columns[f]: None for f in FIELDS})
        named = ",\n".join(f"CASE WHEN obj THEN texts[{i}] END AS {col}" for i, col in enumerate(
            ("account_id", "ts_raw", "prompt", "exchange_id", "response", "model", "ip"), start=1))
        source = f"""
            SELECT line, {named},
                CASE WHEN obj THEN nullif(json_merge_patch(j, {lit(drop)}), '{{}}') END::JSON AS meta,
                COALESCE(raw, doc) AS raw,
                COALESCE(pre_problem, CASE {' '.join(checks)} END) AS problem
            FROM (SELECT *, json_type(j, {paths}) AS types, json_extract_string(j, {paths}) AS texts
                  FROM (SELECT *, json_type(j) = 'OBJECT' AS obj
                        FROM (SELECT *, CASE WHEN valid THEN doc ELSE '{{}}' END AS j
                              FROM (SELECT *, COALESCE(json_valid(doc), false) AS valid FROM chunk))))
        """
        select = self._finish_sql(source)
        total = path.stat().st_size
        blocks: LineBlocks | None = None
        try:
            with self._open(path) as fh:
                blocks = LineBlocks(fh, _JSONL_CHUNK_BYTES)
                for block in blocks:
                    chunk = self._jsonl_chunk(block)
                    if chunk is None:
                        continue
                    con.register("chunk", chunk)
                    self._insert(con, select, stage)
                    con.unregister("chunk")
                    # Compressed files report progress in uncompressed bytes; close enough for a bar.
                    self.progress(f"stage {path.name}", min(blocks.bytes_read, total), total)
        except (OSError, EOFError, gzip.BadGzipFile) as err:
            raise IngestError(f"{path}:{blocks.number + 1 if blocks else 1}: cannot read file ({err})") from err

    def _jsonl_chunk(self, block: LineBlock) -> pa.Table | None:
        """A block's rows as the `chunk` table: line, doc (the line, null when it failed a check here),
        raw (the text of such a line) and pre_problem (the check it failed).

        The checks are the ones DuckDB's JSON functions must not meet: invalid UTF-8, a line over
        MAX_LINE_BYTES, a row over MAX_FIELD_CHARS or with more brackets than MAX_JSON_DEPTH (parsed by
        `_check_big_row`). Blank lines are not rows. The common line costs no Python of its own: the docs
        are an Arrow view of the block's bytes (each with its line ending, which JSON reads as
        whitespace; the quarantine's raw text drops it), checked as UTF-8 in one call.
        """
        n = len(block)
        if not n or block.blank.all():
            return None
        offsets = pa.py_buffer(np.append(block.starts, len(block.data)).astype(np.int64))
        docs = pa.LargeStringArray.from_buffers(n, offsets, pa.py_buffer(block.data))
        problems: dict[int, tuple[str, str]] = {}  # line index -> (problem, raw text)
        try:
            docs.validate(full=True)
        except pa.ArrowInvalid:
            for i in range(n):
                try:
                    block.kept(i).decode("utf-8")
                except UnicodeDecodeError:
                    problems[i] = ("invalid UTF-8 (binary data, or another encoding such as Latin-1?)",
                                   block.kept(i).decode("utf-8", errors="replace").rstrip("\r\n"))
        for i, size in block.oversize.items():
            problems[i] = (f"line too long ({size} bytes; limit {MAX_LINE_BYTES})",
                           block.kept(i).decode("utf-8", errors="replace").rstrip("\r\n"))
        sizes = block.sizes()
        for i in np.flatnonzero(~block.blank & ((sizes > MAX_FIELD_CHARS)
                                                | (block.brackets > MAX_JSON_DEPTH))).tolist():
            if i not in problems:
                text = block.kept(i).decode("utf-8").rstrip("\r")
                problem = self._check_big_row(text, int(sizes[i]))
                if problem is not None:
                    problems[i] = (problem, text)
        raws: list[str | None] = [None] * n
        pre: list[str | None] = [None] * n
        if problems:
            valid = np.ones(n, bool)
            for i, (problem, raw) in problems.items():
                raws[i], pre[i], valid[i] = raw, problem, False
            docs = pa.LargeStringArray.from_buffers(
                n, offsets, pa.py_buffer(block.data), pa.py_buffer(np.packbits(valid, bitorder="little")))
        chunk = pa.table({"line": pa.array(block.first + np.arange(n, dtype=np.int64)), "doc": docs,
                          "raw": pa.array(raws, pa.string()), "pre_problem": pa.array(pre, pa.string())})
        return chunk.filter(pa.array(~block.blank)) if block.blank.any() else chunk

    def jsonl_lines(self, path: Path, wanted: set[int]) -> dict[int, str]:
        """The raw text of lines `wanted` of a JSONL file, as staging reads a line without a problem."""
        found: dict[int, str] = {}
        with self._open(path) as fh:
            lines = Lines(fh)
            for data in lines:
                if lines.number in wanted:
                    found[lines.number] = data.decode("utf-8", errors="replace").rstrip("\r\n")
                    if len(found) == len(wanted):
                        break
        return found

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
        if deeper_than(value, MAX_JSON_DEPTH):
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
            check_encoding(path, fh.peek(4096)[:4096])
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
        meta = ("json_object(" + ", ".join(f"{lit(columns[i])}, {ref(i)}" for i in extra) + ")") if extra else "NULL"
        everything = "json_object(" + ", ".join(f"{lit(c)}, {ref(i)}" for i, c in enumerate(columns)) + ")"
        return named, meta, everything

    def stage_parquet(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        reader = f"read_parquet({lit(str(path))}, file_row_number = true)"
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
            self._insert(con, self._finish_sql(source), stage)
        except duckdb.OutOfMemoryException:
            raise
        except duckdb.Error as err:
            raise IngestError(f"{path}: cannot read as parquet: {str(err).splitlines()[0]}") from err

    def stage_csv(self, con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> None:
        """Read CSV with Python's csv module, so that each record keeps its physical line number.

        DuckDB's reader numbers records, not lines (a multi-line quoted prompt shifts every later number)
        and drops the rows it rejects from the count. Here each record's first physical line is its
        line; records with the wrong number of fields, invalid UTF-8, a line over MAX_LINE_BYTES or a
        field over MAX_FIELD_CHARS are bad rows with that line. The delimiter is the header's most
        frequent of , ; TAB | (TAB for .tsv); quotes are doubled inside quoted fields (RFC 4180).
        """
        total = path.stat().st_size
        lines: Lines | None = None
        record = CsvRecord()

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
                header_line = fh.peek(65536)[:65536].split(b"\n", 1)[0].lstrip(UTF8_BOM).decode("utf-8", "replace")
                delimiter = "\t" if ".tsv" in [x.lower() for x in path.suffixes] else max(
                    ",;\t|", key=lambda d: (header_line.count(d), d == ","))
                # Structure must survive an over-long line: keep its quotes, delimiters and newline only.
                structure = re.compile(b'[^"' + re.escape(delimiter.encode()) + b"\r\n]")
                lines = Lines(fh, keep=lambda piece: structure.sub(b"", piece))
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
                    select = self._finish_sql(f"""
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
                        while lines.bytes_read - chunk_start < _CSV_CHUNK_BYTES:
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
                        self._insert(con, select, stage)
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
    def _csv_problem(fields: list[str], n_columns: int, first: int, last: int, lines: Lines,
                     record: CsvRecord) -> str | None:
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
