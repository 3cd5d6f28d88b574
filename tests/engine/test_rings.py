"""Account linking and ring detection on small hand-built relations."""

from __future__ import annotations

import numpy as np

from engine.detect import rings as rg
from tests.engine.test_scoring import build_workspace


def test_specificity_grows_with_fixed_text():
    s = rg.template_specificity(np.array([0, 4, 12, 40]))
    assert np.all(np.diff(s) > 0) and s[0] == 0 and s[-1] < 1


def test_binomial_tail():
    sf = rg._binom_sf(np.array([0, 1, 3]), np.array([5, 1, 3]), 0.5)
    np.testing.assert_allclose(sf, [1.0, 0.5, 0.125])


def test_links_and_rings():
    con, _, _ = build_workspace()
    g = rg.build_links(con, seed=0)
    names = {(g.accounts[a], g.accounts[b]) for a, b in zip(g.a, g.b, strict=True)}
    assert ("ring0", "ring1") in names and ("split0", "split1") in names
    assert not any(a.startswith("vir") or b.startswith("vir") for a, b in names)
    assert not any("app0" in p for p in names)
    assert np.all(g.a < g.b) and np.all(g.weight > 0)
    found = [sorted(g.accounts[i] for i in r) for r in rg.find_rings(g, seed=0)]
    assert [f"ring{i}" for i in range(5)] in found
    assert [f"split{i}" for i in range(4)] in found
    assert all(len(r) >= 3 for r in found)
    # Evidence of a template link names the template.
    a, b = g.accounts.index("split0"), g.accounts.index("split1")
    assert g.evidence[(a, b)]["templates"][0]["pattern"].startswith("you are a world class")
    # No temporary tables left behind.
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_rg_%'").fetchone()[0]


def test_no_shared_content_no_links():
    import duckdb

    from engine.migrations import MIGRATIONS

    con = duckdb.connect()
    for m in MIGRATIONS:
        m(con)
    con.execute("INSERT INTO exchanges (account_id, prompt_id) SELECT 'a' || i, i FROM range(10) t(i)")
    con.execute("INSERT INTO families SELECT i, i, i, 1 FROM range(10) t(i)")
    g = rg.build_links(con)
    assert len(g.a) == 0 and rg.find_rings(g) == []
