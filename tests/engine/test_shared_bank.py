"""Many accounts pasting from one shared question bank are found, though every question is crowded.

The crowd discount (a family sent by many accounts links them only weakly: a viral prompt says nothing
about who knows whom) makes a big bank of benchmark questions, copied by dozens of accounts of several
campaigns, look like viral traffic to the links. What still sets those accounts apart is that nearly
everything they send is a near-copy of what other accounts send: the copied-share signal.

Real DuckDB, FAISS and the fast-tier encoder; real corpus prompts for the people, the viral prompts
and the bank.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from engine import Engine
from engine.config import EngineConfig
from tests.fixtures.corpora import distinct_prompts, perturb
from tests.fixtures.traffic import write_jsonl


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, static_encoder):
    root = tmp_path_factory.mktemp("bank")
    rng = random.Random(8)
    t0 = 1788000000
    # Organic background: some 2,000 people asking their own questions (every real first turn of four
    # corpora, three per person), some of whom also send one of five viral prompts (60 senders each,
    # lightly reworded). The bank's accounts are about 1% of all, as fraudulent accounts are among a
    # provider's users.
    people = distinct_prompts(("sharegpt_first_turns.jsonl.gz", "hh_rlhf_openings.jsonl.gz",
                            "arena_hard.jsonl.gz", "instructionwild_en.jsonl.gz"), 100_000, seed=1)
    viral, cover, own = people[:5], people[5:80], people[80:]
    n_people = len(own) // 3
    rows = [{"account_id": f"person_{i // 3:04d}", "timestamp": t0 + rng.randrange(30 * 86400), "prompt": text}
            for i, text in enumerate(own[:3 * n_people])]
    for text in viral:
        for k in rng.sample(range(n_people), 60):
            rows.append({"account_id": f"person_{k:04d}", "timestamp": t0 + rng.randrange(30 * 86400),
                         "prompt": perturb(text, rng)})
    # The bank: 20 accounts (several campaigns, no shared schedule) each paste all 12 benchmark-style
    # questions, so every question is sent by 20 accounts, plus 3 questions of their own as cover.
    bank = distinct_prompts(("alpaca_5k.jsonl.gz",), 12, seed=2)
    for k in range(20):
        for q in bank + cover[3 * k:3 * k + 3]:
            rows.append({"account_id": f"bank_{k:02d}", "timestamp": t0 + rng.randrange(30 * 86400),
                         "prompt": perturb(q, rng)})
    engine = Engine(root / "ws", encoder=static_encoder, config=EngineConfig(encoder="static"))
    engine.ingest([write_jsonl(root / "traffic.jsonl", rows)])
    engine.scan()
    return engine


def test_bank_accounts_score_above_the_organic_background(scanned):
    accounts = scanned.accounts(limit=None)
    organic = np.array([a.score for a in accounts if a.account_id.startswith("person_")])
    assert len(organic) > 1900
    cut = float(np.quantile(organic, 0.99, method="higher"))
    bank = [a for a in accounts if a.account_id.startswith("bank_")]
    assert len(bank) == 20
    above = [a for a in bank if a.score > cut]
    assert len(above) >= 19, f"only {len(above)} of 20 bank accounts above the 1% organic cut {cut:.3f}"
    # The analyst sees why: the signal names the share of copied exchanges.
    signals = {s.name: s for s in bank[0].signals}
    assert "copied_share" in signals
    assert "near-copies of prompts other accounts sent" in signals["copied_share"].detail
