"""Rings per campaign: content rings split by operator (`engine.detect.operators`), so two campaigns on
one bank stay two rings, and thin accounts joined by their templates (`copy_network.template_ties`)."""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from engine import Engine
from engine.config import EngineConfig
from engine.detect.copy_network import template_ties
from engine.detect.infra import build_infra_links, drop_infra_tables
from engine.detect.operators import join_by_operator, split_by_operator
from engine.store.migrations import MIGRATIONS
from tests.engine.test_infra import COMMON_UA, load, organic, when
from tests.fixtures.corpora import distinct_prompts, perturb
from tests.fixtures.traffic import write_jsonl

HOT_UA = "hound-node/4.3.1"  # a common client, but a minority one (what a careful operator picks)


def _operator(rng, prefix: str, n: int, client: str, cards: list[str], key: str, per: int = 6) -> list[tuple]:
    """An operator's accounts: its client build, a few cards among them, keys made in one burst, and
    addresses from a rented proxy network that other operators use too."""
    return [(f"{prefix}{i:03d}", when(rng), f"198.51.100.{rng.integers(2, 250)}",
             {"client": client, "payment": cards[i % len(cards)], "key_created": key})
            for i in range(n) for _ in range(per)]


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    rows = organic(rng, 3000)
    # Operator A: an odd harness, three cards. Operator B: a common SDK string, one card per ten accounts.
    rows += _operator(rng, "opa", 45, "distill-harness/0.4.2", ["card:a1", "card:a2", "card:a3"], "2024-04-20")
    rows += _operator(rng, "opb", 40, HOT_UA, [f"card:b{j}" for j in range(4)], "2024-04-11")
    # Operator C leaves no trace: home lines, the commonest browser, a card each, keys like anyone's.
    rows += [(f"opc{i:03d}", when(rng), f"12.{rng.integers(256)}.{rng.integers(256)}.{rng.integers(1, 255)}",
              {"client": COMMON_UA, "payment": f"card:c{i}", "key_created": f"2023-0{1 + i % 9}-1{i % 10}"})
             for i in range(30) for _ in range(4)]
    # Stragglers: A's and B's accounts that content did not put in the ring, and ordinary users of B's SDK.
    rows += _operator(rng, "sta", 6, "distill-harness/0.4.2", ["card:a1", "card:a2"], "2024-04-20")
    rows += [(f"hot{i:03d}", when(rng), f"13.0.{i}.9", {"client": HOT_UA}) for i in range(200) for _ in range(3)]
    # Ordinary accounts whose keys were made the day operator A made its own (a launch day, say).
    rows += [(f"kday{i:02d}", when(rng), f"14.0.{i}.9", {"client": COMMON_UA, "key_created": "2024-04-20"})
             for i in range(10) for _ in range(3)]
    con = load(rows)
    build_infra_links(con, seed=0, keep_tables=True)
    accounts = [r[0] for r in con.execute("SELECT account_id FROM _if_acc ORDER BY acc").fetchall()]
    yield con, accounts
    drop_infra_tables(con)


def _idx(accounts: list[str], prefix: str) -> np.ndarray:
    return np.array([i for i, a in enumerate(accounts) if a.startswith(prefix)], dtype=np.int64)


def _links(members: np.ndarray, per: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Content links from each of ``members`` to ``per`` others at random: one ring by content, with no
    sign of who runs which account (a shared public bank)."""
    rng = np.random.default_rng(seed)
    a = np.repeat(members, per)
    b = rng.choice(members, size=len(a))
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def test_two_operators_on_one_bank_become_two_rings(world):
    con, accounts = world
    a, b, c = _idx(accounts, "opa"), _idx(accounts, "opb"), _idx(accounts, "opc")
    ring = np.sort(np.concatenate([a, b, c]))
    # By content the three are one ring: links across all of them, as a shared public bank gives.
    out = split_by_operator(con, [ring], [ring], len(accounts), _links(ring), seed=0)
    got = sorted(tuple(sorted(accounts[i][:3] for i in r)) for r in out.rings)
    assert len(out.rings) == 3 and out.origin == [0, 0, 0] and out.cut == [True] * 3
    # Each ring is one operator's, whole: A with its three cards is one ring, not three.
    assert sorted({accounts[i][:3] for i in r}.pop() for r in out.rings) == ["opa", "opb", "opc"]
    assert [len(set(g)) for g in got] == [1, 1, 1]
    # A and B whole; of C, those tied to two or more other C accounts (the remainder's 2-core).
    sizes = {accounts[r[0]][:3]: len(r) for r in out.rings}
    assert sizes["opa"] == 45 and sizes["opb"] == 40 and 20 <= sizes["opc"] <= 30
    # Evidence: A's part is named by its harness and cards, C (the remainder) by nothing of its own.
    by_op = {accounts[r[0]][:3]: res for r, res in zip(out.rings, out.resources, strict=True)}
    assert {d["type"] for d in by_op["opa"]} >= {"client", "payment"}
    assert any(d["value"] == "distill-harness/0.4.2" and d["n_members"] == 45 for d in by_op["opa"])
    assert by_op["opc"] == []


def test_one_operator_stays_one_ring_and_traceless_rings_stay_whole(world):
    con, accounts = world
    a, c = _idx(accounts, "opa"), _idx(accounts, "opc")
    out = split_by_operator(con, [a], [a], len(accounts), _links(a), seed=0)
    assert len(out.rings) == 1 and np.array_equal(out.rings[0], a)
    out = split_by_operator(con, [c], [c], len(accounts), _links(c), seed=0)
    assert len(out.rings) == 1 and np.array_equal(out.rings[0], c)


def test_a_traced_operator_and_a_traceless_one_become_two_rings(world):
    con, accounts = world
    a, c = _idx(accounts, "opa"), _idx(accounts, "opc")
    ring = np.sort(np.concatenate([a, c]))
    # One part holds the ring's own harness and cards; the rest hold nothing of the ring's but are tied
    # to each other by content: two operators, not one with a few stray accounts.
    out = split_by_operator(con, [ring], [ring], len(accounts), _links(ring), seed=0)
    assert len(out.rings) == 2 and out.cut == [True, True]
    assert [{accounts[i][:3] for i in r} for r in out.rings] == [{"opa"}, {"opc"}]
    assert len(out.rings[0]) == 45 and 20 <= len(out.rings[1]) <= 30


def test_remainder_without_a_second_tie_leaves_the_rings(world):
    con, accounts = world
    a, b, org = _idx(accounts, "opa"), _idx(accounts, "opb"), _idx(accounts, "org")[:8]
    ring = np.sort(np.concatenate([a, b, org]))
    la, lb = _links(np.concatenate([a, b]))
    # Each ordinary account hangs on the ring by one link.
    la = np.concatenate([la, org])
    lb = np.concatenate([lb, a[: len(org)]])
    lo, hi = np.minimum(la, lb), np.maximum(la, lb)
    out = split_by_operator(con, [ring], [ring], len(accounts), (lo, hi), seed=0)
    assert len(out.rings) == 2
    assert not set(np.concatenate(out.rings).tolist()) & set(org.tolist())


def test_flagged_account_with_an_operators_card_joins_its_ring(world):
    con, accounts = world
    a, b, c = _idx(accounts, "opa"), _idx(accounts, "opb"), _idx(accounts, "opc")
    sta, hot, kday = _idx(accounts, "sta"), _idx(accounts, "hot"), _idx(accounts, "kday")
    ring = np.sort(np.concatenate([a, b, c]))
    out = split_by_operator(con, [ring], [ring], len(accounts), _links(ring), seed=0)
    ring_a = next(r for r, m in enumerate(out.rings) if accounts[m[0]].startswith("opa"))
    # Flagged on their own content: A's stragglers, ordinary users of B's SDK, and ordinary accounts with
    # A's key date (a key date alone joins nobody: keys are made in bursts for honest reasons too).
    flagged = np.zeros(len(accounts), dtype=bool)
    flagged[sta] = True
    flagged[hot[:20]] = True
    flagged[kday] = True
    in_ring = np.zeros(len(accounts), dtype=bool)
    in_ring[ring] = True
    joined = join_by_operator(con, out, flagged & ~in_ring, flagged | in_ring)
    assert set(joined) == set(sta.tolist())
    assert {r for r, _ in joined.values()} == {ring_a}
    assert all(d["type"] in ("client", "payment") and d["suspect_share"] >= 0.5 for _, d in joined.values())


def _template_world():
    """Exchanges over two templates: ring 0's own sweep template and a stock phrasing everyone uses."""
    con = duckdb.connect()
    for m in MIGRATIONS:
        m(con)
    rows = []  # (account, prompt, template)
    pid = 0

    def send(acc: str, tpl: int, n: int) -> None:
        nonlocal pid
        for _ in range(n):
            pid += 1
            rows.append((acc, pid, tpl))

    for i in range(20):
        send(f"ring0_{i:02d}", 1, 30)       # ring 0's members sweep their template
    for i in range(15):
        send(f"ring1_{i:02d}", 2, 4)        # ring 1 uses only the stock phrasing
    send("thin", 1, 3)                      # three fillings of ring 0's template
    for i in range(300):
        send(f"org{i:03d}", 2, 3)           # ordinary users of the stock phrasing
    for i in range(5):
        send(f"org{i:03d}", 1, 1)           # five of them tried ring 0's template once
    send("heavy", 2, 40)                    # a heavy user flagged on its own: the stock phrasing...
    send("heavy", 1, 2)                     # ...and two of ring 0's fillings
    t = pa.table({"acc": [r[0] for r in rows], "pid": [r[1] for r in rows],  # noqa: F841 (read by DuckDB)
                  "tpl": [r[2] for r in rows]})
    con.execute("INSERT INTO exchanges SELECT pid::VARCHAR, acc, TIMESTAMP '2024-05-01', pid, NULL, NULL, NULL, "
                "NULL, 0, pid FROM t")
    con.execute("INSERT INTO template_members SELECT tpl, pid FROM t")
    con.execute("INSERT INTO templates SELECT tpl, 'p', '[]', 'sweep', count(*), count(DISTINCT acc), count(*), "
                "1, 0.5 FROM t GROUP BY tpl")
    accounts = tuple(sorted({r[0] for r in rows}))
    return con, accounts


def test_thin_account_joins_the_ring_of_its_template_and_a_heavy_user_does_not():
    con, accounts = _template_world()
    ring_of = np.array([0 if a.startswith("ring0") else 1 if a.startswith("ring1") else -1 for a in accounts])
    cand = np.array([a in ("thin", "heavy", "org000") for a in accounts])
    joined = template_ties(con, accounts, ring_of, cand)
    got = {accounts[i]: v for i, v in joined.items()}
    assert set(got) == {"thin"}
    ring, share, n_templates = got["thin"]
    assert ring == 0 and share >= 0.5 and n_templates == 1


# ----------------------------------------------------------------------------- a scanned workspace
@pytest.fixture(scope="module")
def two_operators(tmp_path_factory, static_encoder):
    """1,200 people with real prompts, home lines and common clients; two operators of ten accounts each
    pasting one public bank's 32 questions (so by content they are one ring), each with its own cards
    and key burst, and a straggler of operator A's that pasted one of them."""
    root = tmp_path_factory.mktemp("operators")
    rng = random.Random(11)
    t0 = 1788000000
    people = distinct_prompts(("sharegpt_first_turns.jsonl.gz", "hh_rlhf_openings.jsonl.gz",
                            "instructionwild_en.jsonl.gz"), 4000, seed=3, max_len=600)
    bank = distinct_prompts(("alpaca_5k.jsonl.gz",), 32, seed=4, max_len=600)
    rows = []
    for i, text in enumerate(people[:3600]):
        p = i // 3
        rows.append({"account_id": f"person_{p:04d}", "timestamp": t0 + rng.randrange(30 * 86400), "prompt": text,
                     "ip": f"11.{p % 250}.{p // 250}.{7 + p % 200}",
                     "client": COMMON_UA if p % 3 else HOT_UA, "payment": f"card:p{p}",
                     "key_created": f"2024-0{1 + p % 9}-1{p % 10}"})
    # What people share: eight viral prompts with 40 senders each, and 150 questions two people both asked.
    for text in people[3700:3708]:
        for p in rng.sample(range(1200), 40):
            rows.append({"account_id": f"person_{p:04d}", "timestamp": t0 + rng.randrange(30 * 86400),
                         "prompt": perturb(text, rng), "ip": f"11.{p % 250}.{p // 250}.{7 + p % 200}",
                         "client": COMMON_UA, "payment": f"card:p{p}", "key_created": "2024-03-15"})
    for text in people[3750:3900]:
        for p in rng.sample(range(1200), 2):
            rows.append({"account_id": f"person_{p:04d}", "timestamp": t0 + rng.randrange(30 * 86400),
                         "prompt": perturb(text, rng), "ip": f"11.{p % 250}.{p // 250}.{7 + p % 200}",
                         "client": COMMON_UA, "payment": f"card:p{p}", "key_created": "2024-03-15"})
    ops_ = {"opa": ("distill-harness/0.4.2", ["card:a1", "card:a2"], "2026-08-20"),
            "opb": (HOT_UA, ["card:b1", "card:b2"], "2026-08-11")}
    for name, (client, cards, key) in ops_.items():
        for k in range(10):
            for q in bank:
                rows.append({"account_id": f"{name}_{k:02d}", "timestamp": t0 + rng.randrange(30 * 86400),
                             "prompt": perturb(q, rng), "ip": f"198.51.100.{rng.randrange(2, 250)}",
                             "client": client, "payment": cards[k % len(cards)], "key_created": key})
    for q in bank[:1] + people[3600:3606]:
        rows.append({"account_id": "opa_straggler", "timestamp": t0 + rng.randrange(30 * 86400),
                     "prompt": perturb(q, rng), "ip": "11.9.9.9", "client": "distill-harness/0.4.2",
                     "payment": "card:a1", "key_created": "2026-08-20"})
    engine = Engine(root / "ws", encoder=static_encoder, config=EngineConfig(encoder="static"))
    engine.ingest([write_jsonl(root / "traffic.jsonl", rows)])
    engine.scan()
    return engine


def test_a_scan_keeps_two_operators_on_one_bank_apart(two_operators):
    rings = two_operators.rings(limit=50)
    by_op = {}
    for r in rings:
        accounts = set(r.accounts)
        for name in ("opa", "opb"):
            mine = {a for a in accounts if a.startswith(name)}
            if len(mine) > len(by_op.get(name, (set(), r))[0]):
                by_op[name] = (mine, r)
    for name in ("opa", "opb"):
        mine, ring = by_op[name]
        # Each operator: 80% or more of its accounts in one ring of purity 0.9 or more.
        assert len(mine) >= 0.8 * 10 and len(mine) >= 0.9 * len(ring.accounts), (name, ring.summary)
    assert by_op["opa"][1].ring_id != by_op["opb"][1].ring_id
    # The split is said: content made one ring of both, the operators' own traces cut it.
    assert "one operator's part of a content ring" in by_op["opa"][1].summary
    # A's straggler pasted one question, too little to tie it by content; it holds A's card, harness and
    # key burst, and is in A's ring, not B's.
    acc = next(a for a in two_operators.accounts(limit=None) if a.account_id == "opa_straggler")
    assert acc.ring_id == by_op["opa"][1].ring_id
    assert {s.name for s in acc.signals} & {"operator_traces", "shared_infrastructure"}
