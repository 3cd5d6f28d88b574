"""Copy-network standing: a copy ring too large for pair links is found from who its copies are shared with.

Hand-built accounts x families on the real DuckDB schema (tests.fixtures.detection.Builder): a ring
of 60 accounts over 120 questions of a public bank of 600, each question sent by three ring accounts, so that a
pair of ring accounts shares at most one question; ordinary users who paste one to three of the bank's
questions among their own (bystanders, 2.7 % of accounts), a viral prompt's senders and 9,000 ordinary accounts, a third of them sending one of a few hundred popular prompts.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from engine.config import DetectSettings
from engine.detect.copy_network import copy_network
from engine.detect.scoring import score_accounts
from tests.fakes import FakeEncoder
from tests.fixtures.detection import Builder

RING = 60
POOL = 120
BANK = 600
BACKGROUND = 9000
# A few % of ordinary users paste a public bank's questions: as many as the campaign's accounts and more.
BYSTANDERS = 250


def _copy(b: Builder, centre: int, acc: str, tag: str) -> None:
    p = b.prompt(b.prompts[centre] + f" {tag}")
    b.family[p] = centre
    b.send(acc, p)


def _traffic() -> tuple[Builder, dict[str, set[int]]]:
    b = Builder(11)
    # A public bank; the ring works through the first POOL of its questions, bystanders paste from all.
    bank = [b.prompt(f"benchmark question {b.words(10)}") for _ in range(BANK)]
    pool = bank[:POOL]
    held: dict[str, set[int]] = {f"ring{i:02d}": set() for i in range(RING)}
    # Each question to three ring accounts (six questions each) that share no other question yet.
    paired: set[tuple[str, str]] = set()
    for q in range(POOL):
        chosen: list[str] = []
        for acc in sorted(held, key=lambda a: (len(held[a]), b.rng.random())):
            if len(held[acc]) < 6 and all(tuple(sorted((acc, c))) not in paired for c in chosen):
                chosen.append(acc)
            if len(chosen) == 3:
                break
        paired.update(tuple(sorted(x)) for x in itertools.combinations(chosen, 2))
        for acc in chosen:
            held[acc].add(q)
    for i, (acc, qs) in enumerate(held.items()):
        for q in sorted(qs):
            _copy(b, pool[q], acc, f"r{i}")
        # Every fifth ring account is diluted: its copies are a fifth of what it sends.
        b.organic(acc, 24 if i % 5 == 0 else 1)
    for i in range(BYSTANDERS):  # one to three pool questions among their own traffic
        acc = f"by{i:03d}"
        for q in b.rng.choice(BANK, size=1 + i % 3, replace=False).tolist():
            _copy(b, bank[q], acc, f"b{i}")
        b.organic(acc, int(b.rng.integers(15, 40)))
    viral = b.prompt("write a poem about the sea in the style of a pirate")
    for i in range(150):
        acc = f"vir{i:03d}"
        _copy(b, viral, acc, f"v{i}")
        b.organic(acc, int(b.rng.integers(2, 12)))
    # Ordinary traffic, where campaign accounts are well under 1 % of all (as at scale): many people
    # send one of a few hundred popular prompts among their own.
    popular = [b.prompt(f"popular question {b.words(6)}") for _ in range(300)]
    pick = np.minimum((b.rng.pareto(1.2, size=BACKGROUND) * 10).astype(int), len(popular) - 1)
    for i in range(BACKGROUND):
        acc = f"bg{i:05d}"
        b.organic(acc, int(b.rng.integers(1, 7)))
        if i % 3 == 0:
            _copy(b, popular[pick[i]], acc, f"g{i}")
    b.vecs = FakeEncoder().encode(b.prompts)
    return b, held


@pytest.fixture(scope="module")
def traffic():
    return _traffic()


def test_a_pair_of_ring_accounts_shares_at_most_one_question(traffic):
    _, held = traffic
    assert sum(len(q) for q in held.values()) >= 0.95 * 3 * POOL
    assert max(len(held[a] & held[c]) for a, c in itertools.combinations(held, 2)) <= 1


def test_ring_accounts_stand_above_bystanders_and_viral_senders(traffic):
    b, _ = traffic
    con, _, _ = b.load()
    accounts = tuple(r[0] for r in con.execute("SELECT DISTINCT account_id FROM exchanges ORDER BY 1").fetchall())
    n_ex = np.array([r[0] for r in con.execute(
        "SELECT count(*) FROM exchanges GROUP BY account_id ORDER BY account_id").fetchall()])
    net = copy_network(con, accounts, n_ex)
    s = dict(zip(accounts, net.standing, strict=True))
    ring = [a for a in accounts if a.startswith("ring")]
    diluted = [a for i, a in enumerate(ring) if i % 5 == 0]
    others = [a for a in accounts if not a.startswith("ring")]
    assert min(s[a] for a in ring) > max(s[a] for a in others)
    # Diluted ring accounts (6 copies in 30 exchanges) stand above bystanders (1-3 of the same copies among
    # 15-40 of their own) by their share; full ring accounts far above.
    assert min(s[a] for a in diluted) > max(s[a] for a in others if a.startswith("by"))
    assert min(s[a] for a in ring if a not in diluted) > 2 * max(s[a] for a in others)
    # The evidence an analyst sees: the account's strongest families, shared by three accounts each.
    top = net.top_families(np.array([a == "ring03" for a in accounts]))
    (i, fams), = top.items()
    assert accounts[i] == "ring03" and len(fams) == 3
    assert all(k >= 3 for _, k, _, _ in fams)


def _flagged(b: Builder, settings: DetectSettings) -> dict[str, tuple[float, list]]:
    con, ids, vecs = b.load()
    score_accounts(con, ids, vecs, FakeEncoder(), settings=settings)
    return {a: (s, json.loads(sig)) for a, s, sig in
            con.execute("SELECT account_id, score, signals FROM account_scores WHERE score >= 0.5").fetchall()}


def test_the_ring_is_flagged_where_pair_links_see_part_of_it(traffic):
    b, _ = traffic
    without = _flagged(b, DetectSettings(copy_network=False))
    rows = _flagged(b, DetectSettings())
    n_ring = sum(a.startswith("ring") for a in rows)
    assert n_ring >= 0.9 * RING
    assert n_ring >= sum(a.startswith("ring") for a in without) + 10
    assert any(s["name"] == "copy_network" for s in rows["ring00"][1])
    # Not the viral prompt's senders or the popular prompts' senders; of the bystanders, pair links
    # already flag a few who pasted several of the ring's own questions, and the network a few more.
    assert not [a for a in rows if a.startswith(("vir", "bg"))]
    added = {a for a in rows if a.startswith("by")} - set(without)
    assert len(added) <= 0.05 * BYSTANDERS


def test_thin_accounts_join_the_ring_their_copy_network_points_at():
    """A ring formed by pair links (eight accounts sending the same ten questions) and twelve thin accounts
    that each sent two of them: the pair links leave the thin ones outside, their network takes them in."""
    b = Builder(5)
    questions = [b.prompt(f"benchmark question {b.words(10)}") for _ in range(10)]
    for i in range(8):
        for q in questions:
            _copy(b, q, f"core{i}", f"c{i}")
        b.organic(f"core{i}", 2)
    for i in range(12):
        for q in b.rng.choice(10, size=2, replace=False).tolist():
            _copy(b, questions[q], f"thin{i:02d}", f"t{i}")
        b.organic(f"thin{i:02d}", 1)
    for i in range(60):  # bystanders: one of the questions among their own traffic
        _copy(b, questions[i % 10], f"by{i:02d}", f"b{i}")
        b.organic(f"by{i:02d}", int(b.rng.integers(15, 40)))
    for i in range(4000):
        b.organic(f"bg{i:04d}", int(b.rng.integers(1, 7)))
    b.vecs = FakeEncoder().encode(b.prompts)
    outcome = {}
    for name, settings in (("without", DetectSettings(copy_network=False)), ("with", DetectSettings())):
        con, ids, vecs = b.load()
        score_accounts(con, ids, vecs, FakeEncoder(), settings=settings)
        outcome[name] = dict(con.execute(
            "SELECT account_id, ring_id FROM account_scores WHERE ring_id IS NOT NULL").fetchall())
        signals = dict(con.execute("SELECT account_id, signals FROM account_scores WHERE account_id LIKE 'thin%'")
                       .fetchall())
    core_ring = {outcome["without"][f"core{i}"] for i in range(8)}
    assert len(core_ring) == 1, "the eight core accounts form one ring by their links"
    assert sum(a.startswith("thin") for a in outcome["without"]) <= 3
    ring = outcome["with"]["core0"]
    joined = [a for a, r in outcome["with"].items() if a.startswith("thin") and r == ring]
    assert len(joined) >= 8  # of 12; a few stand under the cut-off: two copies among three exchanges
    assert not [a for a in outcome["with"] if a.startswith(("by", "bg"))]
    newly = next(a for a in joined if a not in outcome["without"])
    ring_signal = next(s for s in json.loads(signals[newly]) if s["name"] == "ring")
    assert "joined by its copy network" in ring_signal["detail"]
