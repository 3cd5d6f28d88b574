"""The workspace: one folder holding the DuckDB system of record and the vector/index files beside it.

Concurrency: DuckDB lets one process at a time hold a database file. copyhound therefore never keeps a
connection open between operations: each engine call opens the database, does its work and closes it.
A second process (the TUI while a nightly scan writes, two scans at once) that finds the file locked
retries for `busy_timeout` seconds and then raises `WorkspaceBusyError` naming the holder's PID, so
nothing is corrupted and nothing waits forever.
"""

from __future__ import annotations

import logging
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
_LOCK_PATTERNS = ("could not set lock", "conflicting lock", "database is locked")


class Store:
    """Paths of one workspace and short-lived DuckDB connections to its database."""

    def __init__(
        self, root: Path, *, create: bool = True, busy_timeout: float = 15.0, memory_limit: str = DEFAULT_DUCKDB_MEMORY
    ) -> None:
        self.root = Path(root)
        self.busy_timeout = busy_timeout
        self.memory_limit = memory_limit
        if not self.root.exists():
            if not create:
                raise WorkspaceError(f"workspace {self.root} does not exist (run `copyhound ingest` first)")
            self.root.mkdir(parents=True)
        elif not self.root.is_dir():
            raise WorkspaceError(f"workspace {self.root} is not a folder")
        for sub in ("vectors", "index", "quarantine", "tmp", "exports"):
            (self.root / sub).mkdir(exist_ok=True)
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
                con = duckdb.connect(str(self.db_path))
                break
            except duckdb.Error as err:
                text = str(err)
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
            yield con
        except duckdb.OutOfMemoryException as err:
            # DuckDB spills to tmp/ where it can; what it cannot spill (some window and hash aggregates) fails.
            raise ResourceError(
                f"{self.db_path}: DuckDB ran out of memory under its limit of {self.memory_limit} "
                f"({_first_line(err)}); committed work is kept: set {MEMORY_ENV}=8GB (or more) and run the "
                "command again") from err
        except duckdb.IOException as err:
            if "space left" not in str(err).lower():
                raise
            raise ResourceError(f"{self.root}: the disk is full ({_first_line(err)}); committed work is kept: "
                                "free some space and run the command again") from err
        finally:
            con.close()

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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _first_line(err: Exception) -> str:
    """The first line of a DuckDB error, for one-line messages (its text often runs over several)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
