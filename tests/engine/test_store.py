"""The workspace store: connections stay usable after DuckDB has spilled to the workspace's tmp/, running out
of DuckDB's memory is a clear error, only `create=True` makes a workspace, a damaged database is refused before
anything writes to it, and what the workspace holds is private to its owner."""

from __future__ import annotations

import logging
import os

import duckdb
import pytest

from engine.config import MEMORY_ENV
from engine.errors import ResourceError, WorkspaceError
from engine.store.workspace import CLOSED_NAME, DB_NAME, Store


def test_a_second_connection_opens_after_the_first_spilled(tmp_path):
    # The first 10M scan failed here: a connection opened inside the scan's transaction, after DuckDB
    # had spilled to disk, re-set the temp directory and DuckDB refused ("Cannot switch temporary
    # directory after the current one has been used").
    store = Store(tmp_path / "ws", memory_limit="32MB")
    with store.connect() as con:
        con.execute("SET threads = 1")
        con.execute("CREATE TABLE big AS SELECT range AS i, hash(range) AS h FROM range(4000000)")
        con.execute("BEGIN")
        sorted_rows = con.execute("SELECT count(*) FROM (SELECT * FROM big ORDER BY h)").fetchone()[0]
        spilled = list((tmp_path / "ws" / "tmp").iterdir())
        assert spilled, "the sort under a 32 MB limit should have spilled to the workspace's tmp/"
        with store.connect() as nested:
            assert nested.execute("SELECT count(*) FROM big").fetchone()[0] == 4000000
        con.execute("COMMIT")
    assert sorted_rows == 4000000
    with store.connect() as again:
        assert again.execute("SELECT max(i) FROM big").fetchone()[0] == 3999999


def test_running_out_of_duckdb_memory_is_one_clear_line_and_keeps_committed_work(tmp_path):
    store = Store(tmp_path / "ws", memory_limit="16MB")
    with store.connect() as con:
        con.execute("CREATE TABLE kept AS SELECT range AS i FROM range(1000)")
    with pytest.raises(ResourceError) as raised, store.connect() as con:
        # A list aggregate holds all 20M values at once: DuckDB cannot spill it.
        con.execute("SELECT list(range) FROM range(20000000)").fetchall()
    message = str(raised.value)
    assert "\n" not in message and "16MB" in message and MEMORY_ENV in message, message
    # It suggests more than the limit it ran out under.
    assert f"{MEMORY_ENV}=32MB" in message, message
    assert isinstance(raised.value.__cause__, duckdb.OutOfMemoryException)
    with Store(tmp_path / "ws").connect() as con:
        assert con.execute("SELECT count(*) FROM kept").fetchone()[0] == 1000


def test_a_memory_limit_duckdb_cannot_read_is_refused_clearly(tmp_path, monkeypatch, capsys):
    from engine.cli import main as cli

    Store(tmp_path / "ws")  # a workspace, so the only thing wrong is the limit
    monkeypatch.setenv(MEMORY_ENV, "lots")
    assert cli.main(["status", "-w", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'lots'" in err and MEMORY_ENV in err and "Traceback" not in err, err


def _filled(path) -> Store:
    store = Store(path)
    with store.connect() as con:
        con.execute("CREATE TABLE notes AS SELECT range AS i, repeat(md5(range::VARCHAR), 8) AS text "
                    "FROM range(200000)")
    return store


def _zero_block_of(db, table: str) -> None:
    """Zero 4 KiB at the start of a block holding `table`'s rows, keeping the file's mtime (so the
    damage is not noticed on open, only when the rows are read)."""
    with duckdb.connect(str(db), read_only=True) as con:
        (block,) = con.execute(f"SELECT max(block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0"
                               ).fetchone()
        (size,) = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()
    st = db.stat()
    with open(db, "r+b") as fh:
        fh.seek(3 * 4096 + block * size)
        fh.write(b"\0" * 4096)
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_only_create_makes_a_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="no workspace at .* \\(create one with copyhound ingest\\)"):
        Store(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="is not a folder"):
        Store(tmp_path / "file")
    Store(tmp_path / "ws")
    Store(tmp_path / "ws", create=False)  # now it is one


def test_a_zero_byte_database_left_by_a_kill_at_creation_is_started_again(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / DB_NAME).write_bytes(b"")
    with pytest.raises(WorkspaceError, match="no workspace at"):
        Store(tmp_path / "ws", create=False)
    (tmp_path / "ws" / DB_NAME).write_bytes(b"")
    with Store(tmp_path / "ws").connect() as con:
        assert con.execute("SELECT count(*) FROM meta").fetchone()[0] >= 1


def test_a_truncated_database_is_refused_on_open_and_left_as_it_was(tmp_path):
    _filled(tmp_path / "ws")
    db = tmp_path / "ws" / DB_NAME
    os.truncate(db, db.stat().st_size - 262144)
    cut = db.read_bytes()
    for create in (True, False):
        with pytest.raises(WorkspaceError, match="is damaged .*it was cut short.*nothing was written"):
            Store(tmp_path / "ws", create=create)
    assert db.read_bytes() == cut


def test_a_database_changed_outside_copyhound_is_read_in_full_on_open(tmp_path, caplog):
    _filled(tmp_path / "ws")
    with caplog.at_level(logging.INFO, logger="engine.store.workspace"):
        Store(tmp_path / "ws")
    assert "checked every block" not in caplog.text  # as copyhound left it: no full read
    db = tmp_path / "ws" / DB_NAME
    os.utime(db, ns=(db.stat().st_atime_ns, db.stat().st_mtime_ns + 1_000_000_000))  # touched outside copyhound
    with caplog.at_level(logging.INFO, logger="engine.store.workspace"):
        Store(tmp_path / "ws")
    assert "checked every block" in caplog.text
    _zero_block_of(db, "notes")
    os.utime(db)  # an outside edit changes the mtime
    with pytest.raises(WorkspaceError, match="is damaged .*checksum"):
        Store(tmp_path / "ws")


def test_damage_met_after_open_is_one_line_and_never_trusted_again(tmp_path):
    store = _filled(tmp_path / "ws")
    db = tmp_path / "ws" / DB_NAME
    _zero_block_of(db, "notes")  # mtime kept: the open does not notice
    store = Store(tmp_path / "ws", create=False)
    with pytest.raises(WorkspaceError) as raised, store.connect() as con:
        con.execute("SELECT max(length(text)) FROM notes").fetchone()
    message = str(raised.value)
    assert "\n" not in message and f"{db} is damaged" in message and "checksum" in message
    assert not (tmp_path / "ws" / CLOSED_NAME).exists()  # forgotten: the next open reads every block
    with pytest.raises(WorkspaceError, match="is damaged"):
        Store(tmp_path / "ws")


def test_a_new_workspace_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        store = _filled(tmp_path / "ws")
        current = os.umask(0o022)
    finally:
        os.umask(old)
    assert current & 0o077 == 0o077
    for path in (store.root, *store.root.rglob("*")):
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_a_foreign_file_is_damage_also_for_a_relative_workspace_path(tmp_path, monkeypatch):
    # DuckDB names the file by its absolute path; the workspace was given relative to the current folder.
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / DB_NAME).write_text("account_id,prompt\na,hello\n" * 500)
    monkeypatch.chdir(tmp_path)
    for create in (True, False):
        with pytest.raises(WorkspaceError, match="ws/copyhound.duckdb is damaged .*not a valid DuckDB database"):
            Store("ws", create=create)
    assert (tmp_path / "ws" / DB_NAME).read_text().startswith("account_id,prompt")
