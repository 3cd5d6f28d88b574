"""The online checker (engine.query.checker) without HTTP, over the fixed workspace and its fake encoder:
verdicts, the delta index, a newer snapshot after a writer's commit; and its parts: the Coalescer, the
DeltaIndex, one exchange held to ingest's rules, the incoming file, the read-only Store.

The service's tests (tests/service) run the same checker with the real model behind a real server.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import datetime

import numpy as np
import pytest

from engine.batches import Coalescer
from engine.errors import QueryError, WorkspaceError
from engine.ingest.incoming import Exchange, IncomingLog, parse_timestamp
from engine.query.delta import DeltaIndex
from engine.query.who_else import prepare_queries
from engine.store.workspace import Store
from tests.fixtures.workspace import (
    ORGANIC,
    ORGANIC_PROMPTS,
    QUESTIONS,
    RING,
    SENTENCES,
    TEMPLATE,
    build_fixed_workspace,
    fixed_engine,
)

NOVEL = "a brand new question about the migration routes of arctic terns over the atlantic"


@pytest.fixture(scope="module")
def master(tmp_path_factory):
    return build_fixed_workspace(tmp_path_factory.mktemp("checker") / "ws")


@pytest.fixture
def ws(master, tmp_path):
    return shutil.copytree(master, tmp_path / "ws")


def _checker(ws, **kwargs):
    checker = fixed_engine(ws, read_only=True).checker(**kwargs)
    assert checker.refresh()
    return checker


def test_verdicts(ws):
    checker = _checker(ws)
    copy = checker.check("new-1", "hello there " + QUESTIONS[0])
    assert copy.verdict == "known_campaign" and copy.ring_id == 7 and copy.n_campaign_accounts == 4
    assert {e.account_id for e in copy.evidence} == set(RING) and copy.family_id == copy.prompt_id
    swept = checker.check("new-2", TEMPLATE.format(lang="Finnish", s=SENTENCES[0]))
    assert swept.verdict == "known_campaign" and swept.template_id == 1 and swept.ring_id == 7
    organic = checker.check("new-3", ORGANIC_PROMPTS[0])
    assert organic.verdict == "near_copy" and organic.ring_id is None and organic.n_campaign_accounts == 0
    assert organic.exact and organic.n_accounts >= 1
    assert checker.check("new-4", NOVEL).verdict == "none"
    member = checker.check(RING[1], QUESTIONS[2])
    assert member.account is not None and member.account.flagged and len(member.account.signals) <= 3
    assert RING[1] not in {e.account_id for e in member.evidence}


def test_a_recent_copy_of_campaign_content_carries_its_ring(ws):
    checker = _checker(ws, record=False)
    checker.check("new-1", "hello there " + QUESTIONS[0])
    # Nothing stored is this close to it, but the recent prompt was matched to ring 7's family directly.
    later = checker.check("new-2", "hello there " + QUESTIONS[0] + " thank you so much")
    assert later.verdict == "known_campaign" and later.ring_id == 7
    assert "new-1" in {e.account_id for e in later.evidence}
    assert checker.ring(7).recent_accounts == ("new-1", "new-2")
    assert later.exchange_id is None and checker.incoming is None


def test_the_delta_lets_go_once_the_workspace_indexes_its_exchanges(ws):
    checker = _checker(ws)
    checker.settle = 0.0
    first = checker.check("new-a", NOVEL)
    second = checker.check("new-b", NOVEL + " please")
    assert second.verdict == "near_copy" and [e.source for e in second.evidence] == ["recent"]
    assert checker.health().recent_exchanges == 2
    # The writer (this process: the checker holds no connection between calls) ingests what the
    # checker recorded, embeds it and rebuilds the sender index, as ingest and scan do.
    writer = fixed_engine(ws)
    loaded = writer.ingest(sorted((ws / "incoming").glob("serve-*.jsonl")))
    assert loaded.rows_loaded == 2 and loaded.rows_rejected == 0
    writer.embed()
    writer.who_else([NOVEL])
    assert checker.refresh() and checker.snapshot.version == 2
    assert checker.health().recent_exchanges == 0
    third = checker.check("new-c", NOVEL)
    assert {(e.account_id, e.source) for e in third.evidence} == {("new-a", "workspace"), ("new-b", "workspace")}
    assert checker.account("new-a").known and first.exchange_id != second.exchange_id


def test_who_else_and_lookups_answer_as_the_engine(ws):
    checker = _checker(ws)
    engine = fixed_engine(ws, read_only=True)
    queries = [QUESTIONS[1], ORGANIC_PROMPTS[2]]
    assert checker.who_else(queries).rows == engine.who_else(queries).rows
    assert checker.account(RING[0]).score == engine.accounts(limit=1)[0].score
    assert checker.account(ORGANIC[0]).known and not checker.account(ORGANIC[0]).flagged
    assert checker.ring(7).ring == engine.rings()[0]
    with pytest.raises(QueryError, match="no account"):
        checker.account("nobody")


def test_a_checks_accounts_and_evidence_are_who_elses_rows(ws):
    """The check groups senders as arrays; its counts and evidence must be those of who-else's rows."""
    checker = _checker(ws, record=False)
    snap = checker.snapshot
    for account, prompt in [("new-1", "hello there " + QUESTIONS[0]), (RING[1], QUESTIONS[2]),
                            ("new-2", TEMPLATE.format(lang="Finnish", s=SENTENCES[0])), ("new-3", ORGANIC_PROMPTS[0])]:
        rows = [r for r in checker.who_else([prompt]).rows if r.account_id != account]
        got = checker.check(account, prompt)
        assert got.n_accounts == len(rows) and got.n_recent_accounts == 0
        assert got.n_campaign_accounts == sum(snap.is_campaign(r.account_id) for r in rows)
        ranked = sorted(rows, key=lambda r: (not snap.is_campaign(r.account_id), -r.max_similarity, r.account_id))
        assert [(e.account_id, e.prompt_id, e.similarity, e.n_matches, e.last_seen) for e in got.evidence] == [
            (r.account_id, r.example_prompt_id, r.max_similarity, r.n_matches, r.last_seen) for r in ranked[:10]]
        checker.delta = type(checker.delta)(checker.delta.dim, checker.delta.limit)  # each check on its own


def test_concurrent_checks_looked_up_as_one_batch_match_checks_looked_up_alone(ws):
    checker = _checker(ws, record=False)
    prompts = ["hello there " + QUESTIONS[0], QUESTIONS[2], TEMPLATE.format(lang="Finnish", s=SENTENCES[0]),
               ORGANIC_PROMPTS[0], NOVEL, QUESTIONS[2]]
    items = list(zip(*prepare_queries(prompts), strict=True))
    together = checker._look_up(items)
    for item, batched in zip(items, together, strict=True):
        (alone,) = checker._look_up([item])
        assert batched.snap is alone.snap and np.array_equal(batched.vector, alone.vector)
        for a, b in ((batched.hits, alone.hits), (batched.groups, alone.groups)):
            assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__
                       if f != "query_index")
    assert len(together[0].groups.account_code) >= 4 and len(together[4].hits.prompt_id) == 0


def test_coalescer_runs_concurrent_callers_as_one_batch():
    gate, batches = threading.Event(), []

    def work(items):
        if not batches:
            gate.wait(30)  # the first batch runs while the others queue behind it
        batches.append(list(items))
        if "boom" in items:
            raise ValueError("boom")
        return [f"{i}!" for i in items]

    coalescer = Coalescer(work, max_batch=8)
    results: dict[str, object] = {}

    def call(item):
        try:
            results[item] = coalescer(item)
        except ValueError as err:
            results[item] = err

    first = threading.Thread(target=call, args=("a",))
    first.start()
    _until(lambda: batches or coalescer._running)
    others = [threading.Thread(target=call, args=(x,)) for x in ("b", "c", "boom")]
    for t in others:
        t.start()
    _until(lambda: len(coalescer._pending) == 3)
    gate.set()
    for t in (first, *others):
        t.join(30)
    assert batches == [["a"], ["b", "c", "boom"]]
    assert results["a"] == "a!" and isinstance(results["b"], ValueError) and isinstance(results["boom"], ValueError)


def test_delta_index_keeps_the_most_recently_sent_within_its_limit():
    delta = DeltaIndex(dim=2, limit=3)
    t = datetime(2026, 1, 1)
    unit = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.6, 0.8]), np.array([-1.0, 0.0])]
    for fp, vec in enumerate(unit[:3]):
        delta.add(fp, f"p{fp}", vec, f"acct{fp}", t, f"x{fp}", None)
    delta.add(0, "p0", unit[0], "acct9", t, "x9", None)  # p0 sent again: now the most recent
    assert delta.size() == (2, 3) and delta.vector(1) is None, "p1, the least recently sent, left"
    delta.add(3, "p3", unit[3], "acct3", t, "x3", None)
    assert delta.size() == (2, 3) and delta.vector(2) is None
    found = delta.search(np.array([1.0, 0.0]), fingerprint=3, threshold=0.9)
    assert [(m.text, m.exact) for m in found] == [("p0", False), ("p3", True)]
    assert [s.account_id for s in found[0].senders] == ["acct0", "acct9"]
    assert delta.account_exchanges("acct9") == 1
    assert delta.drop_covered({"x0", "x3"}) == 2 and delta.size() == (1, 1)
    assert delta.drop_covered({"x9"}) == 1 and delta.size() == (0, 0) and delta.account_exchanges("acct9") == 0


def test_an_exchange_is_held_to_the_loaders_rules():
    now = datetime(2026, 6, 1, 12, 0)
    assert Exchange.checked("a", "hi", None, now).ts == now
    assert parse_timestamp("2026-02-01T09:00:00+02:00") == datetime(2026, 2, 1, 7, 0)
    assert parse_timestamp("2026-02-01 09:00:00") == datetime(2026, 2, 1, 9, 0)
    assert parse_timestamp(1770000000) == parse_timestamp(1770000000000) == datetime(2026, 2, 2, 2, 40)
    for args, reason in ((("", "hi"), "missing field account_id"), (("a\tb", "hi"), "control character"),
                         (("a", "\x00\x00"), "binary data"), (("a", "   "), "empty prompt"),
                         (("a", "hi", "soon"), "unparseable"), (("a", "hi", "2026-06-03"), "out of range"),
                         (("a", "hi", float("nan")), "unparseable")):
        with pytest.raises(QueryError, match=reason):
            Exchange.checked(*args, now=now)


def test_the_incoming_file_cuts_a_torn_line_and_ingests(ws, tmp_path):
    folder = ws / "incoming"
    log = IncomingLog(folder)
    row = Exchange.checked("acct-new", "what is a tern?", "2026-09-30T10:00:00Z").row("serve-1")
    path = log.append(row)
    log.close()
    with open(path, "ab") as fh:
        fh.write(b'{"exchange_id": "serve-2", "account_id": "acct-')  # a crash mid-write
    later = IncomingLog(folder, sync_every=0.05)  # as the service records: fsynced in the background
    later.append(Exchange.checked("acct-new", "what is a skua?", "2026-09-30T10:01:00Z").row("serve-3"))
    assert '"serve-3"' in path.read_text(encoding="utf-8")  # in the file when append returns
    later.close()
    assert not later._syncer.is_alive()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["exchange_id"] for r in rows] == ["serve-1", "serve-3"] and rows[0] == row
    assert fixed_engine(ws).ingest([path]).rows_loaded == 2


def test_a_read_only_store_writes_nothing_and_reads_one_schema(tmp_path, master):
    with pytest.raises(WorkspaceError, match="no workspace"):
        Store(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()
    ws = shutil.copytree(master, tmp_path / "ws")
    with Store(ws).connect() as con:
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(WorkspaceError, match="run `copyhound status`"), Store(ws, read_only=True).connect():
        pass


def _until(probe, deadline: float = 30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if probe():
            return
        time.sleep(0.01)
    pytest.fail(f"gave up after {deadline:.0f} s")
