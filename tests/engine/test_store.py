"""The workspace store: connections stay usable after DuckDB has spilled to the workspace's tmp/, and running out
of DuckDB's memory is a clear error."""

from __future__ import annotations

import duckdb
import pytest

from engine.config import MEMORY_ENV
from engine.errors import ResourceError
from engine.store.workspace import Store


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
