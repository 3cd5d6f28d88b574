"""The workspace: one folder holding the DuckDB system of record and the vector/index files beside it.

Concurrency: DuckDB lets one process at a time hold a database file. copyhound therefore never keeps a
connection open between operations: each engine call opens the database, does its work and closes it.
A second process (the TUI while a nightly scan writes, two scans at once) that finds the file locked
retries for `busy_timeout` seconds and then raises `WorkspaceBusyError` naming the holder's PID, so
nothing is corrupted and nothing waits forever.

Creation: only a Store opened with `create=True` (the CLI's `ingest`, `demo`) makes a workspace; any other
open of a folder without a database is refused, so a mistyped path is an error, not a new empty workspace.

Read-only: a Store opened with `read_only=True` (the service, `copyhound serve`) opens every connection
read-only. DuckDB lets any number of read-only connections share a file with each other but not with a
writer, so such a Store never takes the writer's lock, and a writer that starts while it reads waits
(up to its own `busy_timeout`) for the read to end, as it waits for any other process: the readers that
use it keep their reads short. It applies no migration (a database at an older schema version is refused
with the command that migrates it), checks no block, creates no folder and records no clean close.

Privacy: a workspace holds every prompt. Opening a Store makes every file this process creates from then
on private to its owner (umask 077: files 0600, folders 0700), whatever umask the user runs with; DuckDB's
database and WAL, shards, indexes, quarantine, exports and caches are all written that way.

Damage: before anything writes to an existing database, the Store checks it. The file must be at least as
long as the blocks DuckDB says are in use (a truncated copy is refused at once), and when the file changed
since a copyhound process last closed it (a crash, a copy, an outside edit: its size and mtime differ from
those recorded in `.copyhound.duckdb.closed`) every table is read in full, so DuckDB verifies each block's
checksum. A damaged block met later, by any command, is one `WorkspaceError` too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from engine.config import DEFAULT_DUCKDB_MEMORY, MEMORY_ENV
from engine.errors import ResourceError, WorkspaceBusyError, WorkspaceError
from engine.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

DB_NAME = "copyhound.duckdb"
# The database's size and mtime when a copyhound process last closed it (see the module's docstring).
CLOSED_NAME = ".copyhound.duckdb.closed"
SUBFOLDERS = ("vectors", "index", "quarantine", "tmp", "exports")
_LOCK_PATTERNS = ("could not set lock", "conflicting lock", "database is locked")
# What DuckDB says about a database file it cannot trust: a bad block checksum (its own wording names no
# file, and only a database file has block checksums), or a short read past a truncated end and a header
# it does not recognise (said of input files too, so those count only when they name this database).
_DAMAGE_ANY = ("corrupt database file",)
_DAMAGE_OF_FILE = ("could not read enough bytes", "not a valid duckdb database", "failed to read database header")
# DuckDB's file header: one main header and two database headers of 4 KiB each, then the blocks.
_HEADER_BYTES = 3 * 4096


class Store:
    """Paths of one workspace and short-lived DuckDB connections to its database."""

    def __init__(
        self, root: Path, *, create: bool = True, busy_timeout: float = 15.0, memory_limit: str = DEFAULT_DUCKDB_MEMORY,
        read_only: bool = False,
    ) -> None:
        self.root = Path(root)
        self.busy_timeout = busy_timeout
        self.memory_limit = memory_limit
        self.read_only = read_only
        # A read-only Store checks the schema version on its first connection, not here: opening one may
        # wait for a writer, and a service starts (and says it is waiting) before that.
        self._version_checked = not read_only
        self._closed: tuple | None = None  # the signature this Store last recorded
        self._damage_seen = False
        private_files()
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"workspace {self.root} is not a folder")
        if read_only:
            if not self.db_path.exists():
                raise WorkspaceError(f"no workspace at {self.root} (create one with copyhound ingest)")
            return
        if self.db_path.exists() and not self._holds_nothing():
            self._check_intact()
        elif not create:
            raise WorkspaceError(f"no workspace at {self.root} (create one with copyhound ingest)")
        elif not self.root.exists():
            self.root.mkdir(parents=True, mode=0o700)
            os.chmod(self.root, 0o700)  # mkdir's mode passes through the umask; say it outright
        for sub in SUBFOLDERS:
            (self.root / sub).mkdir(exist_ok=True, mode=0o700)
        with self.connect() as con:
            self._migrate(con)

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def vectors_dir(self, encoder: str) -> Path:
        path = self.root / "vectors" / _safe(encoder)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def index_path(self, encoder: str) -> Path:
        return self.root / "index" / f"prompts.{_safe(encoder)}.faiss"

    def _check_version(self, con: duckdb.DuckDBPyConnection) -> None:
        """A read-only Store reads only a database at this copyhound's schema version."""
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.CatalogException:
            row = None
        version = int(row[0]) if row else 0
        if version != len(MIGRATIONS):
            raise WorkspaceError(
                f"workspace {self.root} has schema version {version}, this copyhound reads {len(MIGRATIONS)}: "
                + ("upgrade copyhound" if version > len(MIGRATIONS) else
                   "run `copyhound status` on it once (a command that writes migrates it)"))
        self._version_checked = True

    def _holds_nothing(self) -> bool:
        """A zero-byte database and no WAL: DuckDB was killed while creating the file, before it wrote
        a header. Nothing can be lost by removing it, so `ingest` may start again; without `create` it
        is reported as no workspace."""
        wal = self.db_path.with_name(self.db_path.name + ".wal")
        if self.db_path.stat().st_size or wal.exists():
            return False
        self.db_path.unlink()
        log.info("removed the empty database file %s (left by a run killed while creating it)", self.db_path)
        return True

    def _check_intact(self) -> None:
        """Refuse a damaged database before anything writes to it (see the module's docstring)."""
        with self.connect() as con:
            # Used blocks, not total: DuckDB counts free blocks at the end of the file that it may
            # already have truncated away, so a sound file can be shorter than total_blocks (seen in the
            # suite). Each used block occupies its own place in the file, so fewer bytes than the used
            # blocks need is a file cut short.
            used, block = con.execute(
                "SELECT used_blocks, block_size FROM pragma_database_size() "
                "WHERE database_name = current_database()").fetchone()
            size = self.db_path.stat().st_size
            expected = _HEADER_BYTES + int(used) * int(block)
            if size < expected:
                raise self._damaged(f"the file is {size:,} bytes, but its {used:,} blocks in use need "
                                    f"{expected:,}: it was cut short", at_open=True)
            if self.signature() == self._recorded():
                return
            started = time.monotonic()
            tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() "
                                 "WHERE database_name = current_database() AND NOT temporary").fetchall()
            for schema, table in tables:
                # hash() of every column makes DuckDB load, and so checksum, every block of the table.
                con.execute(f'SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM "{schema}"."{table}"').fetchall()
            log.info("checked every block of %s (%d tables; the file is not as copyhound last closed it) in %.1f s",
                     self.db_path, len(tables), time.monotonic() - started)

    def _recorded(self) -> tuple | None:
        try:
            raw = json.loads((self.root / CLOSED_NAME).read_text(encoding="utf-8"))
            return tuple(None if part is None else tuple(part) for part in raw)
        except (OSError, ValueError, TypeError):
            return None  # never written, or torn by a crash: the next open checks every block

    def _remember(self) -> None:
        """Record the database's signature after this process closed it."""
        signature = self.signature()
        if self._damage_seen or signature == self._closed:
            return  # a damaged file is checked in full again next time, never trusted
        try:
            # A plain write, not an atomic one: a torn record only costs the next open a full check.
            with open(self.root / CLOSED_NAME, "w", encoding="utf-8") as fh:
                json.dump(signature, fh)
        except OSError as err:
            log.debug("could not record the database's signature: %s", err)
            return
        self._closed = signature

    def _is_damage(self, err: Exception) -> bool:
        text = str(err).lower()
        # DuckDB names the file as it resolved it: absolute, for a workspace given as a relative path.
        names = {str(self.db_path), os.path.abspath(self.db_path), str(self.db_path.resolve())}
        return (any(p in text for p in _DAMAGE_ANY)
                or (any(p in text for p in _DAMAGE_OF_FILE) and any(n.lower() in text for n in names)))

    def _damaged(self, reason: str, *, at_open: bool) -> WorkspaceError:
        # Forget the last clean close, so every later open reads every block until the file is replaced.
        self._damage_seen = True
        (self.root / CLOSED_NAME).unlink(missing_ok=True)
        kept = ("nothing was written to it" if at_open else
                "the command stopped there and what it had not committed was rolled back")
        return WorkspaceError(f"the workspace database {self.db_path} is damaged ({reason}); {kept}: "
                              "restore it from a backup, or ingest the files again into a new workspace")

    def signature(self) -> tuple:
        """(mtime, size) of the database file and its WAL: changed by every commit, by no read."""
        out = []
        for path in (self.db_path, self.db_path.with_name(self.db_path.name + ".wal")):
            try:
                st = path.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation; waits out another process's lock, then gives up clearly."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.db_path), read_only=self.read_only)
                break
            except duckdb.Error as err:
                text = str(err)
                if self._is_damage(err):
                    raise self._damaged(_first_line(err), at_open=True) from err
                if not any(p in text.lower() for p in _LOCK_PATTERNS):
                    raise WorkspaceError(f"cannot open {self.db_path}: {_first_line(err)}") from err
                if time.monotonic() >= deadline:
                    pid = re.search(r"PID (\d+)", text)
                    holder = f" by process {pid.group(1)}" if pid else ""
                    raise WorkspaceBusyError(
                        f"workspace {self.root} is busy: its database is locked{holder} "
                        f"(another copyhound job is writing); waited {self.busy_timeout:.0f} s"
                    ) from err
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            con.execute("SET TimeZone = 'UTC'")
            try:
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
            except duckdb.Error as err:
                raise ResourceError(f"DuckDB memory limit {self.memory_limit!r} ({MEMORY_ENV}) is not a size "
                                    f"DuckDB accepts, such as 4GB or 500MB: {_first_line(err)}") from err
            # All connections of this process share one DuckDB instance, and once it has spilled, setting
            # temp_directory again (even to the same folder) fails: a connection opened while another is
            # in a transaction (the scan reads vectors again inside its own) must leave it alone.
            spill = str(self.root / "tmp")
            if con.execute("SELECT current_setting('temp_directory')").fetchone()[0] != spill:
                con.execute(f"SET temp_directory = '{spill}'")
            con.execute("SET preserve_insertion_order = true")
            # Progress goes through the engine's ProgressFn; DuckDB's own bar would write past `-q` and
            # into the TUI's terminal whenever a query runs longer than two seconds.
            con.execute("SET enable_progress_bar = false")
            if self.read_only and not self._version_checked:
                self._check_version(con)
            yield con
        except duckdb.OutOfMemoryException as err:
            # DuckDB spills to tmp/ where it can; what it cannot spill (some window and hash aggregates) fails.
            raise ResourceError(
                f"{self.db_path}: DuckDB ran out of memory under its limit of {self.memory_limit} "
                f"({_first_line(err)}); committed work is kept: set {MEMORY_ENV}={_larger(self.memory_limit)} "
                "(or more) and run the command again") from err
        except duckdb.Error as err:
            if self._is_damage(err):
                raise self._damaged(_first_line(err), at_open=False) from err
            if not isinstance(err, duckdb.IOException) or "space left" not in str(err).lower():
                raise
            raise ResourceError(f"{self.root}: the disk is full ({_first_line(err)}); committed work is kept: "
                                "free some space and run the command again") from err
        finally:
            con.close()
            if not self.read_only:
                self._remember()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation whose writes commit together (see `transaction`)."""
        with self.connect() as con, transaction(con):
            yield con

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise WorkspaceError(
                f"workspace {self.root} has schema version {version}, newer than this copyhound "
                f"({len(MIGRATIONS)}); upgrade copyhound"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("applying migration %03d %s", number, migration.__name__)
            with transaction(con):
                migration(con)
                con.execute("DELETE FROM meta WHERE key = 'schema_version'")
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(number)])


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN on `con`; COMMIT when the block ends normally, ROLLBACK when it raises (then re-raise).

    For work on a connection that is already open (ingest's batches, the scan's final tables);
    `Store.transaction()` opens one for a single transaction. A ROLLBACK that fails (the error already
    ended the transaction, or the connection is gone) is logged, so the error that caused it is the one raised.
    """
    con.execute("BEGIN")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error as err:
            log.debug("rollback after an error failed too: %s", _first_line(err))
        raise


def private_files() -> None:
    """From now on this process creates files 0600 and folders 0700, whatever the user's umask allows
    beyond that (its other bits are kept). Process-wide by nature: DuckDB, numpy and faiss open their
    files themselves, so a mode per call cannot reach them."""
    current = os.umask(0o077)
    os.umask(current | 0o077)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _larger(limit: str) -> str:
    """Twice a DuckDB memory limit such as ``6GB`` (what to suggest after running out under it); 8GB
    where the limit is not a plain size."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", limit, flags=re.IGNORECASE)
    if not m:
        return "8GB"
    value = float(m.group(1)) * 2
    return f"{value:g}{m.group(2).upper().replace('IB', 'iB')}"


def _first_line(err: Exception) -> str:
    """The first line of a DuckDB error, for one-line messages (its text often runs over several)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
