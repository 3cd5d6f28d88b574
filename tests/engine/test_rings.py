"""Account linking and ring detection on small hand-built relations."""

from __future__ import annotations

import numpy as np

from engine.detect import links as lk
from engine.detect import rings as rg
from tests.fixtures.detection import Builder, build_workspace


def test_specificity_grows_with_fixed_text():
    s = lk.template_specificity(np.array([0, 4, 12, 40]))
    assert np.all(np.diff(s) > 0) and s[0] == 0 and s[-1] < 1


def test_poisson_tail():
    sf = lk._poisson_sf(np.array([0, 3, 1, 2, 40]), np.array([1.0, 1.0, 2.0, 0.0, 10.0]))
    # P(X >= 3 | 1) = 1 - e^-1 (1 + 1 + 1/2); at or below the mean the test is not run (1.0).
    np.testing.assert_allclose(sf[:4], [1.0, 1 - np.exp(-1) * 2.5, 1.0, 0.0], rtol=1e-9)
    assert 0 < sf[4] < 1e-10


def test_links_and_rings():
    con, _, _ = build_workspace()
    g = lk.build_links(con, seed=0)
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
    # Family evidence says how many accounts write anything like it (no crowding given: its own accounts).
    r0, r1 = g.accounts.index("ring0"), g.accounts.index("ring1")
    fam = g.evidence[(r0, r1)]["families"][0]
    assert fam["crowd"] == fam["n_accounts"] == 5
    # A crowd of 41 around that family makes it weigh (5 - 1) / (41 - 1) of what it did (counted crowd,
    # without sharer weights).
    import pyarrow as pa

    lk.build_links(con, seed=0, family_crowd=pa.table({"family_id": [fam["id"]], "crowd": [41]}), keep_tables=True,
                   sharer_weights=False)
    try:
        spec = con.execute("SELECT DISTINCT s FROM _rg_rel WHERE kind = 'F' AND item = ?", [fam["id"]]).fetchall()
        others = con.execute("SELECT DISTINCT s FROM _rg_rel WHERE kind = 'F' AND item <> ?", [fam["id"]]).fetchall()
    finally:
        lk.drop_link_tables(con)
    assert spec == [(0.1,)] and others == [(1.0,)]
    # No temporary tables left behind.
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_rg_%'").fetchone()[0]


def test_no_shared_content_no_links():
    import duckdb

    from engine.store.migrations import MIGRATIONS

    con = duckdb.connect()
    for m in MIGRATIONS:
        m(con)
    con.execute("INSERT INTO exchanges (account_id, prompt_id) SELECT 'a' || i, i FROM range(10) t(i)")
    con.execute("INSERT INTO families SELECT i, i, i, 1 FROM range(10) t(i)")
    g = lk.build_links(con)
    assert len(g.a) == 0 and rg.find_rings(g) == []


def _label_sweep_workspace(kind: str):
    """250 organic accounts, 40 of them use "summarize: {0}" once or twice; 6 accounts send 20 each."""
    b = Builder(11)
    label = b.add_template("summarize: {0}", ["summarize:"])
    for i in range(250):
        acc = f"org{i:03d}"
        b.organic(acc, int(b.rng.integers(5, 40)))
        if i < 40:
            for _ in range(1 + i % 2):
                p = b.prompt(f"summarize: {b.words(30)}")
                b.tmembers.append((label, p))
                b.send(acc, p)
    # Other templates, each used once by a few organic accounts: the background rate of intense use.
    for _ in range(40):
        fixed = f"please act as {b.words(8)} and answer"
        tid = b.add_template(fixed + " {0}", [fixed])
        for i in b.rng.choice(250, size=8, replace=False):
            p = b.prompt(f"{fixed} {b.words(10)}")
            b.tmembers.append((tid, p))
            b.send(f"org{i:03d}", p)
    for j in range(6):
        for _ in range(20):
            p = b.prompt(f"summarize: {b.words(30)}")
            b.tmembers.append((label, p))
            b.send(f"sweep{j}", p)
        b.organic(f"sweep{j}", 3)
    con, _, _ = b.load()
    con.execute("UPDATE templates SET kind = ? WHERE template_id = ?", [kind, label])
    return con


def test_label_template_links_only_its_intense_users():
    # A one-word label is too short to link its users by shared use; six accounts that each sweep it
    # twenty times, where organic users send it once or twice, are a significant excess.
    g = lk.build_links(_label_sweep_workspace("label"), seed=0)
    linked = {g.accounts[i] for i in np.concatenate([g.a, g.b])}
    assert {f"sweep{j}" for j in range(6)} <= linked
    assert not any(a.startswith("org") for a in linked)
    assert len(g.intense_templates) == 1
    rings = [sorted(g.accounts[i] for i in r) for r in rg.find_rings(g, seed=0)]
    assert rings == [[f"sweep{j}" for j in range(6)]]


def test_short_non_label_template_links_nobody():
    # The same short anchor mined as an ordinary template has too little fixed text to link anyone.
    g = lk.build_links(_label_sweep_workspace("prefix"), seed=0)
    assert len(g.a) == 0


def _ring_with_a_straggler():
    """A copy ring of six accounts; 'late' sent one copy of each of four ring prompts; 'stranger' one."""
    b = Builder(5)
    for i in range(300):
        b.organic(f"org{i:03d}", int(b.rng.integers(5, 30)))
    # Chance overlap in the background: random pairs of organic accounts share one rare family.
    for _ in range(450):
        i, j = b.rng.choice(300, size=2, replace=False)
        c = b.prompt(f"what is the meaning of {b.words(3)}")
        b.send(f"org{i:03d}", c)
        d = b.prompt(b.prompts[c] + " ?")
        b.family[d] = c
        b.send(f"org{j:03d}", d)
    ring = [f"ring{i}" for i in range(6)]
    centres = []
    for f in range(18):
        c = b.prompt(f"explain {b.words(10)} family{f}")
        centres.append(c)
        # Each ring prompt is sent by three of the six members, in rotation.
        for j in range(3):
            acc = ring[(f + j) % 6]
            p = b.prompt(b.prompts[c] + f" v{j}")
            b.family[p] = c
            b.send(acc, p)
    for c in centres[:4]:
        p = b.prompt(b.prompts[c] + " late")
        b.family[p] = c
        b.send("late", p)
    b.organic("late", 10)
    p = b.prompt(b.prompts[centres[5]] + " stranger")
    b.family[p] = centres[5]
    b.send("stranger", p)
    b.organic("stranger", 10)
    con, _, _ = b.load()
    return con


def test_a_straggler_joins_the_ring_by_its_summed_ties():
    con = _ring_with_a_straggler()
    g = lk.build_links(con, seed=0, keep_tables=True)
    try:
        rings = rg.find_rings(g, seed=0)
        ring_names = [{g.accounts[i] for i in r} for r in rings]
        members = {f"ring{i}" for i in range(6)}
        assert set().union(*ring_names) == members  # Louvain may split the six; nobody else is in
        late, stranger = g.accounts.index("late"), g.accounts.index("stranger")
        assert not any(late in r or stranger in r for r in rings)  # no single tie of theirs is strong
        exp = rg.expand_rings(con, rings, len(g.accounts), seed=0)
    finally:
        lk.drop_link_tables(con)
    assert late in exp.joined and stranger not in exp.joined
    r, tie, n = exp.joined[late]
    assert {g.accounts[i] for i in rings[r]} <= members
    assert n >= 2 and tie > exp.threshold
    assert late in exp.rings[r] and len(exp.rings[r]) == len(rings[r]) + 1
    assert not any(g.accounts[a].startswith("org") for a in exp.joined)
    assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_rg_%'").fetchone()[0]
