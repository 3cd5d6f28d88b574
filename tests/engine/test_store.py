"""The workspace store: connections stay usable after DuckDB has spilled to the workspace's tmp/."""

from __future__ import annotations

from engine.store import Store


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
