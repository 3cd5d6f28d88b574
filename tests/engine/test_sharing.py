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
