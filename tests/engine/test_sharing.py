"""Who shares an item decides what it weighs; rings hold a campaign's accounts and not its bystanders.

Small hand-built bipartite cases (accounts x families) on the real DuckDB schema: the weighting, the
sampled pairs of large items, the bystander guard, diluted and thin campaign accounts, and two
campaigns of one kind drawing on one prompt bank.
"""

from __future__ import annotations

import numpy as np

from engine.detect import links as lk
from engine.detect import rings as rg
from tests.fixtures.detection import Builder


def _family(b: Builder, centre: int, acc: str, tag: str) -> None:
    p = b.prompt(b.prompts[centre] + f" {tag}")
    b.family[p] = centre
    b.send(acc, p)


def _bipartite() -> Builder:
    """One item of 30 campaign accounts that send little else, one of 30 ordinary users among their own."""
    b = Builder(3)
    camp_item = b.prompt(f"solve step by step {b.words(8)}")
    org_item = b.prompt(f"what is a good name for {b.words(8)}")
    bank = [b.prompt(f"benchmark question {b.words(10)}") for _ in range(60)]
    for i in range(30):
        acc = f"camp{i:02d}"
        _family(b, camp_item, acc, f"c{i}")
        for j in range(6):  # more bank copies, each family shared by ~3 campaign accounts
            _family(b, bank[(i * 2 + j) % 60], acc, f"b{i}")
        b.organic(acc, 1)
    for i in range(30):
        acc = f"user{i:02d}"
        _family(b, org_item, acc, f"u{i}")
        b.organic(acc, int(b.rng.integers(15, 40)))
    for i in range(200):
        b.organic(f"bg{i:03d}", int(b.rng.integers(3, 30)))
    return b


def test_an_item_weighs_what_its_sharers_make_it():
    b = _bipartite()
    con, _, _ = b.load()
    g = lk.build_links(con, seed=0, keep_tables=True)
    try:
        s = dict(con.execute(
            "SELECT item, any_value(s) FROM _rg_rel WHERE kind = 'F' AND item IN (1, 2) GROUP BY item").fetchall())
        k = dict(con.execute(
            "SELECT item, any_value(k) FROM _rg_rel WHERE kind = 'F' AND item IN (1, 2) GROUP BY item").fetchall())
    finally:
        lk.drop_link_tables(con)
    # Same number of accounts, same base weight; the campaign's item weighs several times more.
    assert k[1] == k[2] == 30
    assert s[1] > 5 * s[2]
    linked = {g.accounts[i] for i in np.concatenate([g.a, g.b])}
    assert not any(a.startswith(("user", "bg")) for a in linked)
    assert sum(a.startswith("camp") for a in linked) >= 25
    # Counted by how many only, the two items weigh the same.
    con2, _, _ = b.load()
    lk.build_links(con2, seed=0, keep_tables=True, sharer_weights=False)
    try:
        s2 = dict(con2.execute(
            "SELECT item, any_value(s) FROM _rg_rel WHERE kind = 'F' AND item IN (1, 2) GROUP BY item").fetchall())
    finally:
        lk.drop_link_tables(con2)
    assert s2[1] == s2[2] == 1.0


def test_null_draws_recompute_coherence():
    # Relations of light accounts hold more of their traffic: a shuffle must not carry the real coherence.
    acc = np.array([0, 1, 2, 3])
    kind = np.array(["F"] * 4)
    c, share = lk.coherence(acc, kind, np.array([7, 7, 9, 9]), np.ones(4), np.array([1.0, 1.0, 50.0, 50.0]))
    assert c[0] == c[1] > 5 * c[2] and c[2] == c[3]
    np.testing.assert_allclose(share, [1 / 3, 1 / 3, 1 / 52, 1 / 52])


def _two_campaigns_one_bank() -> Builder:
    """Two copy campaigns of ten accounts on one public bank (overlapping in 20 of its 80 questions),
    60 ordinary users who each send one to three bank questions among their own prompts, a diluted
    campaign-A account (10 of its 50 prompts) and a thin one (3 prompts, all campaign)."""
    b = Builder(5)
    bank = [b.prompt(f"benchmark question {b.words(12)}") for _ in range(80)]
    for name, lo, hour in (("a", 0, 20), ("b", 30, 150)):
        for i in range(10):
            acc = f"camp{name}{i}"
            for j in range(25):
                c = bank[lo + (i * 5 + j * 3) % 50]
                p = b.prompt(b.prompts[c] + f" {acc} {j}")
                b.family[p] = c
                b.send(acc, p, hour=hour + j % 10)
            b.organic(acc, 2)
    for i in range(60):
        acc = f"bystander{i:02d}"
        b.organic(acc, int(b.rng.integers(10, 30)))
        for j in range(1 + i % 3):
            _family(b, bank[int(b.rng.integers(0, 80))], acc, f"{acc} {j}")
    for j in range(10):
        _family(b, bank[(j * 3) % 30], "diluted", f"d{j}")
    b.organic("diluted", 40)
    for j in range(3):
        _family(b, bank[j * 7], "thin", f"t{j}")
    for i in range(300):
        b.organic(f"bg{i:03d}", int(b.rng.integers(3, 30)))
    return b


def _rings(con, **kw) -> tuple[list[set[str]], rg.RingExpansion]:
    g = lk.build_links(con, seed=0, keep_tables=True)
    try:
        exp = rg.expand_rings(con, rg.find_rings(g, seed=0), len(g.accounts), seed=0, **kw)
        exp = rg.guard_rings(con, exp, len(g.accounts))
    finally:
        lk.drop_link_tables(con)
    return [{g.accounts[i] for i in r} for r in exp.rings], exp


def test_two_campaigns_stay_two_rings_without_bystanders():
    con, _, _ = _two_campaigns_one_bank().load()
    rings, exp = _rings(con)
    a = {f"campa{i}" for i in range(10)}
    b = {f"campb{i}" for i in range(10)}
    ring_a = max(rings, key=lambda r: len(r & a))
    ring_b = max(rings, key=lambda r: len(r & b))
    assert ring_a is not ring_b
    assert len(ring_a & a) >= 8 and len(ring_b & b) >= 8
    assert not ring_a & b and not ring_b & a
    members = set().union(*rings)
    assert not any(m.startswith(("bystander", "bg")) for m in members)
    # The diluted account (a fifth of its traffic) and the thin one join campaign A through their ties.
    assert {"diluted", "thin"} <= ring_a
    # Each member's evidence: how many of its prompts are ring content.
    assert all(i in exp.shares for r in exp.rings for i in r.tolist())


def test_without_the_guard_a_quantile_cut_lets_bystanders_in():
    # The per-account 99th-percentile cut with no guard: what the guard and the family-wise cut prevent.
    con, _, _ = _two_campaigns_one_bank().load()
    g = lk.build_links(con, seed=0, keep_tables=True)
    try:
        exp = rg.expand_rings(con, rg.find_rings(g, seed=0), len(g.accounts), seed=0, familywise=False)
        guarded = rg.guard_rings(con, exp, len(g.accounts))
    finally:
        lk.drop_link_tables(con)
    names = lambda e: {g.accounts[i] for r in e.rings for i in r.tolist()}  # noqa: E731
    assert not any(m.startswith("bystander") for m in names(guarded))
    assert {g.accounts[i] for i in guarded.removed} <= {g.accounts[i] for i in exp.joined} | names(exp)


def test_integrations_sharing_one_public_template_link_nobody():
    # Two customers' products send the same SDK prompt with their own data, hundreds of times each: by
    # content alone a sweep split over two accounts, by what they are two integrations.
    from engine.detect import signals as sg

    b = Builder(9)
    fixed = "summarize the following support ticket in two sentences and classify its priority"
    tid = b.add_template(fixed + " {0}", [fixed])
    for acc in ("appA", "appB"):
        for _ in range(120):
            p = b.prompt(f"{fixed} {b.words(5)}")
            b.tmembers.append((tid, p))
            b.send(acc, p)
    # Their users' data overlaps (the same product names, the same stock complaints): 30 fillings each
    # side are near-copies of the other side's.
    for _ in range(30):
        p = b.prompt(f"{fixed} {b.words(5)}")
        b.tmembers.append((tid, p))
        b.send("appA", p)
        q = b.prompt(b.prompts[p] + " !")
        b.family[q] = p
        b.tmembers.append((tid, q))
        b.send("appB", q)
    for i in range(200):
        b.organic(f"bg{i:03d}", int(b.rng.integers(3, 30)))
    for i in range(0, 80, 2):  # ordinary pairs sharing one question: the background of sharing
        _family(b, b.prompt(f"what is {b.words(4)}"), f"bg{i:03d}", "x")
        _family(b, len(b.prompts) - 2, f"bg{i + 1:03d}", "y")
    con, _, _ = b.load()
    accounts = tuple(r[0] for r in con.execute("SELECT DISTINCT account_id FROM exchanges ORDER BY 1").fetchall())
    single = sg.single_purpose(con, accounts)
    assert {accounts[i] for i in np.flatnonzero(single)} == {"appA", "appB"}
    g = lk.build_links(con, seed=0)
    pairs = {(g.accounts[a], g.accounts[c]) for a, c in zip(g.a.tolist(), g.b.tolist(), strict=True)}
    assert ("appA", "appB") in pairs  # the content link exists...
    kept = lk.drop_links(g, single[g.a] & single[g.b])
    assert len(kept.a) == len(g.a) - 1  # ...and the scorer drops it


def test_an_integration_is_single_purpose_wherever_its_template_slots_are():
    # Two products' prompts whose first and last words change with every call (a table name first, a
    # tone, the user's text last); one person who asks about many things in one stock phrasing.
    from engine.detect import signals as sg

    b = Builder(11)
    for _ in range(150):
        b.send("appSQL", b.prompt(f"given the table {b.words(1)}, write one sql query that answers: "
                                  f"{b.words(6)} return only sql."))
        b.send("appTone", b.prompt(f"write a short {b.words(1)} reply to this email on behalf of "
                                   f"{b.words(1)}: {b.words(8)}"))
    b.organic("heavy", 150)
    for i in range(20):
        b.organic(f"bg{i:02d}", 5)
    con, _, _ = b.load()
    accounts = tuple(r[0] for r in con.execute("SELECT DISTINCT account_id FROM exchanges ORDER BY 1").fetchall())
    single = sg.single_purpose(con, accounts)
    assert {accounts[i] for i in np.flatnonzero(single)} == {"appSQL", "appTone"}


def test_infrastructure_attaches_only_what_points_at_one_ring():
    from engine.detect.fusion import attach_by_infra
    from engine.detect.infra import InfraLinks

    rings = [np.array([0, 1, 2, 3]), np.array([10, 11, 12])]
    # 20: two links to ring 0 and nothing else (a diluted member on its campaign's proxies) -> attached.
    # 21: two links to ring 0 but six to accounts outside any ring (a shared proxy network) -> not.
    # 22: one link to ring 1 only -> not (two needed).
    pairs = [(0, 20), (1, 20), (0, 21), (2, 21)] + [(21, 30 + k) for k in range(6)] + [(10, 22)]
    a = np.array([min(p) for p in pairs])
    c = np.array([max(p) for p in pairs])
    infra = InfraLinks(tuple(f"a{i:02d}" for i in range(40)), a, c, np.ones(len(a)), np.ones(len(a), np.int64))
    grown, attached = attach_by_infra(infra, rings, 40)
    assert attached == {20: (0, 2)}
    assert 20 in grown[0] and 21 not in grown[0] and 22 not in grown[1]


def test_a_community_splits_where_its_parts_barely_touch():
    import networkx as nx

    g = nx.Graph()
    for base in (0, 10):
        for i in range(10):
            for j in range(i + 1, 10):
                g.add_edge(base + i, base + j, weight=1.0)
    g.add_edge(0, 10, weight=1.0)  # two campaigns bridged by one accidental near-copy
    assert sorted(map(sorted, rg.split_parts(g, set(range(20)), 0))) == [list(range(10)), list(range(10, 20))]
    r = nx.gnp_random_graph(60, 0.15, seed=1)  # one random community: Louvain finds parts, they are not apart
    nx.set_edge_attributes(r, 1.0, "weight")
    assert [len(p) for p in rg.split_parts(r, set(r.nodes), 0)] == [60]
