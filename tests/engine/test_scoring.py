"""Detection end to end on a small synthetic workspace (real DuckDB schema, fake encoder)."""

from __future__ import annotations

import functools
import json
from dataclasses import fields

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from engine.models import Signal
from engine.store.migrations import MIGRATIONS
from tests.fakes import FakeEncoder

DIM = 64


WORDS = [f"w{i}" for i in range(3000)]


class Builder:
    """Collects prompts, exchanges, families and templates, then loads them into DuckDB."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.prompts: list[str] = []
        self.ex: list[tuple[str, int, int]] = []  # account, prompt index, hour offset
        self.family: dict[int, int] = {}
        self.tmembers: list[tuple[int, int]] = []
        self.templates: list[tuple[int, str, list[str]]] = []
        self.vecs = np.zeros((0, DIM), dtype=np.float32)

    def prompt(self, text: str) -> int:
        self.prompts.append(text)
        return len(self.prompts) - 1

    def words(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS, n))

    def send(self, acc: str, p: int, hour: int | None = None) -> None:
        self.ex.append((acc, p, int(self.rng.integers(0, 240)) if hour is None else hour))

    def organic(self, acc: str, n: int) -> None:
        for _ in range(n):
            self.send(acc, self.prompt(f"tell me about {self.words(6)}"))

    def add_template(self, pattern: str, anchors: list[str]) -> int:
        tid = len(self.templates)
        self.templates.append((tid, pattern, anchors))
        return tid

    def load(self) -> tuple[duckdb.DuckDBPyConnection, np.ndarray, np.ndarray]:
        con = duckdb.connect()
        for m in MIGRATIONS:
            m(con)
        ids = np.arange(1, len(self.prompts) + 1, dtype=np.int64)
        # Arrow tables, read by DuckDB by name: executemany row by row is far too slow.
        pt = pa.table({"prompt_id": ids, "text": self.prompts})  # noqa: F841
        con.execute("INSERT INTO prompts (prompt_id, text, normalized, n_chars) "
                    "SELECT prompt_id, text, text, length(text) FROM pt")
        et = pa.table({  # noqa: F841
            "exchange_id": [f"e{k}" for k in range(len(self.ex))],
            "account_id": [a for a, _, _ in self.ex],
            "h": [h for _, _, h in self.ex],
            "prompt_id": [p + 1 for _, p, _ in self.ex],
        })
        con.execute("INSERT INTO exchanges (exchange_id, account_id, ts, prompt_id) "
                    "SELECT exchange_id, account_id, TIMESTAMP '2025-01-01' + to_hours(h), prompt_id FROM et")
        fam = np.array([self.family.get(i, i) + 1 for i in range(len(self.prompts))], dtype=np.int64)
        ft = pa.table({"family_id": fam, "prompt_id": ids})  # noqa: F841
        con.execute("INSERT INTO families SELECT family_id, prompt_id, family_id, 0.95 FROM ft")
        if self.templates:
            con.executemany(
                "INSERT INTO templates (template_id, pattern, anchors, kind) VALUES (?, ?, ?, 'prefix')",
                [(t, p, json.dumps(a)) for t, p, a in self.templates],
            )
        tm = pa.table({"template_id": [t for t, _ in self.tmembers],  # noqa: F841
                       "prompt_id": [p + 1 for _, p in self.tmembers]})
        con.execute("INSERT INTO template_members SELECT template_id, prompt_id FROM tm")
        return con, ids, self.vecs.copy()


def build_workspace(seed: int = 7) -> tuple[duckdb.DuckDBPyConnection, np.ndarray, np.ndarray]:
    """A fresh in-memory workspace; the synthetic content is generated once per seed."""
    return _builder(seed).load()


@functools.lru_cache(maxsize=2)
def _builder(seed: int) -> Builder:
    b = Builder(seed)
    # 250 organic accounts; 60 of them use a generic organic template once or twice.
    generic = b.add_template("rewrite this so it flows better: {0}", ["rewrite this so it flows better:"])
    for i in range(250):
        acc = f"org{i:03d}"
        b.organic(acc, int(b.rng.integers(5, 30)))
        if i < 60:
            for _ in range(int(b.rng.integers(1, 3))):
                p = b.prompt(f"rewrite this so it flows better: {b.words(8)}")
                b.tmembers.append((generic, p))
                b.send(acc, p)
    # A few organic pairs share one rare family by chance (two people, same question).
    for i in range(0, 40, 2):
        c = b.prompt(f"what is the meaning of {b.words(3)}")
        b.send(f"org{i:03d}", c)
        d = b.prompt(b.prompts[c] + " ?")
        b.family[d] = c
        b.send(f"org{i + 1:03d}", d)
    # Viral prompt: 300 unrelated accounts each send a near-copy of one family.
    viral = b.prompt("write a poem about the sea in the style of a pirate")
    for i in range(300):
        acc = f"vir{i:03d}"
        b.organic(acc, int(b.rng.integers(3, 10)))
        p = b.prompt(f"write a poem about the sea in the style of a pirate {'!' * (i % 5)} {i}")
        b.family[p] = viral
        b.send(acc, p)
    # Copy-paste ring: 5 accounts share 6 rare families, active in the same hours.
    ring = [f"ring{i}" for i in range(5)]
    for f in range(6):
        c = b.prompt(f"explain {b.words(10)} family{f}")
        for j, acc in enumerate(ring):
            p = c if j == 0 else b.prompt(b.prompts[c] + f" v{j}")
            b.family[p] = c
            b.send(acc, p, hour=100 + f)
    for acc in ring:
        b.organic(acc, 10)
    # Template sweep split over 4 accounts: distinct fillings of one long template.
    sweep_fixed = ("you are a world class expert writer with decades of experience producing "
                   "reference material write a detailed encyclopedia article about")
    sweep = b.add_template(sweep_fixed + " {0}", [sweep_fixed])
    split = [f"split{i}" for i in range(4)]
    for acc in split:
        for _ in range(40):
            p = b.prompt(f"{sweep_fixed} {b.words(4)}")
            b.tmembers.append((sweep, p))
            b.send(acc, p)
        b.organic(acc, 5)
    # One customer's app: a single account sends one template all day.
    app_fixed = "classify the sentiment of the following customer review as positive negative or mixed"
    app = b.add_template(app_fixed + " {0}", [app_fixed])
    for h in range(300):
        p = b.prompt(f"{app_fixed} {b.words(12)}")
        b.tmembers.append((app, p))
        b.send("app0", p, hour=h % 240)
    b.vecs = FakeEncoder().encode(b.prompts)
    return b


@pytest.fixture(scope="module")
def scored():
    from engine.detect.scoring import score_accounts

    con, ids, vecs = build_workspace()
    summary = score_accounts(con, ids, vecs, FakeEncoder())
    return con, summary


def _scores(con) -> dict[str, tuple[float, int | None, list]]:
    return {a: (s, r, json.loads(sig)) for a, s, r, sig in
            con.execute("SELECT account_id, score, ring_id, signals FROM account_scores").fetchall()}


def test_summary_and_tables(scored):
    con, summary = scored
    n_acc = con.execute("SELECT count(DISTINCT account_id) FROM exchanges").fetchone()[0]
    assert con.execute("SELECT count(*) FROM account_scores").fetchone()[0] == n_acc
    assert summary["n_rings"] == con.execute("SELECT count(*) FROM rings").fetchone()[0]
    assert set(summary["stage_seconds"]) >= {"links", "rings", "signals", "scores"}
    assert con.execute("SELECT count(*) FROM account_links WHERE account_a >= account_b").fetchone()[0] == 0


def test_copy_ring_found_with_evidence(scored):
    con, _ = scored
    sc = _scores(con)
    ring_ids = {sc[f"ring{i}"][1] for i in range(5)}
    assert len(ring_ids) == 1 and None not in ring_ids
    (rid,) = ring_ids
    members = [a for a, v in sc.items() if v[1] == rid]
    assert sorted(members) == [f"ring{i}" for i in range(5)]
    for i in range(5):
        score, _, sigs = sc[f"ring{i}"]
        assert score >= 0.5
        fam = [s for s in sigs if s["name"] == "shared_families"]
        assert fam and fam[0]["examples"]
        ex = fam[0]["examples"][0]
        assert ex["text_a"] and ex["text_b"] and "family" in ex["text_a"]


def test_viral_family_links_nobody(scored):
    con, _ = scored
    n = con.execute(
        "SELECT count(*) FROM account_links WHERE account_a LIKE 'vir%' AND account_b LIKE 'vir%'"
    ).fetchone()[0]
    assert n == 0
    sc = _scores(con)
    assert all(v[1] is None and v[0] < 0.5 for a, v in sc.items() if a.startswith("vir"))


def test_single_app_account_is_not_a_ring(scored):
    con, _ = scored
    sc = _scores(con)
    assert sc["app0"][1] is None
    assert con.execute("SELECT count(*) FROM account_links WHERE 'app0' IN (account_a, account_b)").fetchone()[0] == 0


def test_template_split_linked_via_template(scored):
    con, _ = scored
    rows = con.execute(
        "SELECT account_a, account_b, evidence FROM account_links "
        "WHERE account_a LIKE 'split%' AND account_b LIKE 'split%'"
    ).fetchall()
    assert len(rows) == 6
    for _, _, ev in rows:
        ev = json.loads(ev)
        assert ev["templates"] and "encyclopedia" in ev["templates"][0]["pattern"]
    sc = _scores(con)
    ring_ids = {sc[f"split{i}"][1] for i in range(4)}
    assert len(ring_ids) == 1 and None not in ring_ids
    assert all(sc[f"split{i}"][0] >= 0.5 for i in range(4))


def test_organic_accounts_quiet(scored):
    con, _ = scored
    sc = _scores(con)
    org = [v for a, v in sc.items() if a.startswith("org")]
    flagged = sum(1 for v in org if v[0] >= 0.5)
    assert flagged / len(org) <= 0.01
    assert all(v[1] is None for v in org)


def test_signals_match_model_and_scores_in_range(scored):
    con, _ = scored
    names = {f.name for f in fields(Signal)}
    for score, _, sigs in _scores(con).values():
        assert 0.0 <= score <= 1.0
        if score > 0:
            assert sigs
        for s in sigs:
            assert set(s) == names
            assert 0.0 <= s["score"] <= 1.0
            Signal(**{**s, "examples": tuple(s["examples"])})
    for sc, sigs in con.execute("SELECT score, signals FROM rings").fetchall():
        assert 0.0 <= sc <= 1.0
        for s in json.loads(sigs):
            assert set(s) == names


def test_deterministic():
    from engine.detect.scoring import score_accounts

    outs = []
    for _ in range(2):
        con, ids, vecs = build_workspace()
        score_accounts(con, ids, vecs, FakeEncoder())
        outs.append((
            con.execute("SELECT * FROM account_scores ORDER BY account_id").fetchall(),
            con.execute("SELECT * FROM rings ORDER BY ring_id").fetchall(),
            con.execute("SELECT * FROM account_links ORDER BY account_a, account_b").fetchall(),
        ))
    assert outs[0] == outs[1]


def test_rerun_replaces_tables(scored):
    from engine.detect.scoring import score_accounts

    con, _ = scored
    n_before = con.execute("SELECT count(*) FROM account_scores").fetchone()[0]
    pid = np.asarray(con.execute("SELECT prompt_id FROM prompts ORDER BY prompt_id").fetchnumpy()["prompt_id"])
    texts = [r[0] for r in con.execute("SELECT text FROM prompts ORDER BY prompt_id").fetchall()]
    score_accounts(con, pid.astype(np.int64), FakeEncoder().encode(texts), FakeEncoder())
    assert con.execute("SELECT count(*) FROM account_scores").fetchone()[0] == n_before
