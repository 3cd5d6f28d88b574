"""Analysts' verdicts fed back into detection (engine.detect.watchlist) and read back (engine.query.calibration).

* With the real model, DuckDB and FAISS (the copy ring of `tests.fixtures.traffic.ring_traffic`): a
  confirmed ring's prompts pasted by a new account flag it on the next scan, with whose mark it matches,
  and so do a confirmed account's; the online checker reports the match; without the marks there is no
  watchlist signal and the copy of an ordinary account flags nothing.
* On the hand-built detection workspace (real DuckDB, fake vectors): a template two accounts fill links
  them until it is marked benign, and then counts in no share either.
* Marks that act on nothing leave a scan exactly what it was before watchlists existed.
* `marks --report` and the review queue on hand-made marks over the fixed workspace.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import Engine
from engine.cli.main import main
from engine.config import FLAG_SCORE
from engine.detect import watchlist
from engine.detect.scoring import score_accounts
from tests.fakes import FakeEncoder
from tests.fixtures.detection import build_workspace
from tests.fixtures.scan_digest import build, digest
from tests.fixtures.traffic import scanned_ring_workspace, write_jsonl
from tests.fixtures.workspace import ORGANIC, RING, build_fixed_workspace, fixed_engine

RING_ACCOUNTS = tuple(f"ring_{m}" for m in range(6))


# ---------------------------------------------------------------------- real model: watch after a confirm
@pytest.fixture(scope="module")
def scanned(tmp_path_factory, real_encoder, organic) -> Path:
    """The copy ring among organic accounts (tests/engine/conftest.py's `organic`), scanned once."""
    return scanned_ring_workspace(tmp_path_factory.mktemp("watch"), real_encoder, organic)


def _newcomers(engine: Engine, path: Path) -> Path:
    """Two new accounts' first two exchanges: `newcomer` pastes two of ring_0's prompts, `copycat` both of
    org_07's (an organic account in the scanned traffic)."""
    with engine.store.connect() as con:
        def texts(account: str) -> list[str]:
            return [r[0] for r in con.execute("SELECT p.text FROM exchanges e JOIN prompts p USING (prompt_id) "
                                              "WHERE account_id = ? ORDER BY ts LIMIT 2", [account]).fetchall()]
        rows = [{"account_id": who, "timestamp": 1775000000 + 60 * i, "prompt": text}
                for who, source in (("newcomer", "ring_0"), ("copycat", "org_07"))
                for i, text in enumerate(texts(source))]
    return write_jsonl(path, rows)


def _score(engine: Engine, account: str):
    return next(a for a in engine.accounts(limit=None) if a.account_id == account)


def test_a_confirmed_ring_flags_a_new_account_pasting_its_prompts(scanned, tmp_path, real_encoder, organic):
    control = shutil.copytree(scanned, tmp_path / "control")
    ws = shutil.copytree(scanned, tmp_path / "ws")
    engine = Engine(ws, encoder=real_encoder)
    ring_id = _score(engine, "ring_0").ring_id
    assert ring_id is not None and {_score(engine, a).ring_id for a in RING_ACCOUNTS} == {ring_id}
    mark = engine.analyst.mark("ring", ring_id, "confirmed", "six accounts, one question bank", author="ana")
    also = engine.analyst.mark("account", "org_07", "confirmed", author="ana")
    assert mark.author == "ana" and engine.analyst.marks()[0].author == "ana"

    for workspace in (ws, control):
        again = Engine(workspace, encoder=real_encoder)
        again.ingest([_newcomers(again, tmp_path / f"{workspace.name}-new.jsonl")])
        again.scan()

    # Unmarked, the detector may tie the newcomer to the ring it copies (it did here), but the copycat of an
    # ordinary account is nothing; neither has a watchlist signal.
    control_engine = Engine(control, encoder=real_encoder)
    assert _score(control_engine, "copycat").score < FLAG_SCORE
    assert not {s.name for a in ("newcomer", "copycat") for s in _score(control_engine, a).signals} & {"watchlist"}

    new = _score(engine, "newcomer")
    sig = next(s for s in new.signals if s.name == "watchlist")
    # Two exchanges of two, shrunk by one: 2/3, past the flag score by itself.
    assert sig.score == pytest.approx(2 / 3, abs=1e-6) and new.score >= FLAG_SCORE
    # Ring ids are renumbered by the rescan; the evidence names the ring the analyst marked.
    assert sig.detail == (f"2 of 2 exchanges are watched content: matches confirmed ring {ring_id}, "
                          f"marked by ana on {mark.created:%Y-%m-%d}")
    assert {e["mark"] for e in sig.examples} == {f"confirmed ring {ring_id}"} and len(sig.examples) == 2
    copycat = _score(engine, "copycat")
    assert copycat.score >= FLAG_SCORE and copycat.top_signal == "watchlist"
    assert "matches confirmed account org_07, marked by ana" in copycat.signals[0].detail
    with engine.store.connect() as con:
        listed = con.execute("SELECT DISTINCT effect, mark_id FROM watchlist ORDER BY ALL").fetchall()
    assert {effect for effect, _ in listed} == {"watch"} and len(listed) == 2

    # The online checker: a copy of the confirmed account's prompt is known campaign content, with
    # whose mark; without the mark it is a plain near-copy.
    prompt = organic[67]  # org_07's second prompt (ring_traffic gives org_07 organic[7] and organic[67])
    checked = Engine(ws, encoder=real_encoder, read_only=True).checker(record=False)
    assert checked.refresh()
    hit = checked.check("gw_1", "hello, " + prompt)
    assert hit.verdict == "known_campaign"
    assert hit.watchlist == f"matches confirmed account org_07, marked by ana on {also.created:%Y-%m-%d}"
    assert hit.watchlist in hit.reason and hit.to_dict()["watchlist"] == hit.watchlist
    plain = Engine(control, encoder=real_encoder, read_only=True).checker(record=False)
    assert plain.refresh()
    miss = plain.check("gw_1", "hello, " + prompt)
    assert miss.verdict == "near_copy" and miss.watchlist is None


# ---------------------------------------------------------------------- benign: a template stops linking
def _linked(con, a: str, b: str) -> bool:
    return con.execute("SELECT count(*) FROM account_links WHERE account_a = ? AND account_b = ?",
                       [min(a, b), max(a, b)]).fetchone()[0] > 0


def _signals(con, account: str) -> dict[str, dict]:
    row = con.execute("SELECT signals FROM account_scores WHERE account_id = ?", [account]).fetchone()
    return {s["name"]: s for s in json.loads(row[0])}


def test_a_benign_template_stops_linking_the_accounts_that_fill_it():
    con, ids, vecs = build_workspace()
    score_accounts(con, ids, vecs, FakeEncoder())
    tid = con.execute("SELECT template_id FROM templates WHERE pattern LIKE 'you are a world class%'").fetchone()[0]
    assert _linked(con, "split0", "split1") and "templated_share" in _signals(con, "split0")
    ring_before = con.execute("SELECT account_id, ring_id FROM account_scores WHERE account_id LIKE 'ring%' "
                              "ORDER BY 1").fetchall()
    con.execute("INSERT INTO marks (target_kind, target_id, label, note, created, mark_id, author) "
                "VALUES ('template', ?, 'benign', 'a writing app', TIMESTAMP '2026-03-02 09:00:00', 1, 'bob')",
                [str(tid)])
    watchlist.freeze(con, 1, "template", str(tid), "benign")

    score_accounts(con, ids, vecs, FakeEncoder())
    for a, b in (("split0", "split1"), ("split1", "split2"), ("split2", "split3")):
        assert not _linked(con, a, b)
    sigs = _signals(con, "split0")
    assert "templated_share" not in sigs and "shared_templates" not in sigs
    assert sigs["benign_content"]["score"] == 0.0
    assert (f"not counted: template {tid} marked by bob on 2026-03-02 as benign"
            in sigs["benign_content"]["detail"])
    assert con.execute("SELECT max(score) FROM account_scores WHERE account_id LIKE 'split%'").fetchone()[0] < 0.5
    # The copy ring's evidence is its own: untouched.
    assert con.execute("SELECT account_id, ring_id FROM account_scores WHERE account_id LIKE 'ring%' "
                       "ORDER BY 1").fetchall() == ring_before
    assert con.execute("SELECT item_kind, item_id, effect FROM watchlist").fetchall() == [("template", tid,
                                                                                          "suppress")]


def test_a_later_mark_lifts_an_earlier_one():
    con, ids, vecs = build_workspace()
    score_accounts(con, ids, vecs, FakeEncoder())
    tid = con.execute("SELECT template_id FROM templates WHERE pattern LIKE 'you are a world class%'").fetchone()[0]
    for mark_id, label, day in ((1, "benign", "2026-03-02"), (2, "suspicious", "2026-03-03")):
        con.execute("INSERT INTO marks (target_kind, target_id, label, note, created, mark_id, author) "
                    "VALUES ('template', ?, ?, '', ?::TIMESTAMP, ?, 'bob')", [str(tid), label, day, mark_id])
        watchlist.freeze(con, mark_id, "template", str(tid), label)
    assert watchlist.load(con) is None
    score_accounts(con, ids, vecs, FakeEncoder())
    assert _linked(con, "split0", "split1")


# ---------------------------------------------------------------------- no marks: nothing changes
def test_marks_that_act_on_nothing_leave_the_scan_as_it_was(tmp_path):
    """The digest in tests/fixtures/scan_digest.json was taken with the code before watchlists (account scores
    retaken without marks when detection gained the copy-network signal)."""
    expected = json.loads((Path(__file__).parents[1] / "fixtures" / "scan_digest.json").read_text())
    engine = build(tmp_path)
    engine.scan()
    assert digest(engine) == expected
    # A suspicious mark is a question, not a verdict: the next scan (detection again, the join kept) is the same.
    top = engine.accounts(limit=1)[0]
    engine.analyst.mark("account", top.account_id, "suspicious", author="ana")
    again = engine.scan()
    assert "scoring" in again.stage_seconds and not again.resumed
    with engine.store.connect() as con:  # the last run taken up past its last block: no second join
        assert con.execute("SELECT count(*), min(status) FROM scan_runs").fetchone() == (1, "done")
    assert digest(engine) == expected


# ---------------------------------------------------------------------- calibration and the review queue
@pytest.fixture
def fixed_ws(tmp_path) -> Path:
    return build_fixed_workspace(tmp_path / "ws")


def _hand_marks(engine: Engine) -> None:
    engine.analyst.mark("ring", 7, "confirmed", author="ana")  # its four members, unless they have their own
    engine.analyst.mark("account", RING[2], "suspicious", author="ana")
    engine.analyst.mark("account", RING[3], "benign", "a tutoring company", author="bob")
    engine.analyst.mark("account", ORGANIC[0], "benign", author="bob")


def test_calibration_on_hand_made_marks(fixed_ws, capsys):
    engine = fixed_engine(fixed_ws)
    _hand_marks(engine)
    cal = engine.analyst.calibration(target=0.9)
    assert (cal.n_confirmed, cal.n_benign, cal.n_suspicious, cal.n_unscored) == (2, 2, 1, 0)
    rows = {r.signal: r for r in cal.rows}
    assert cal.rows[0].signal == "score" and set(rows) == {"score", "shared_near_copies", "template_sweep",
                                                           "cot_elicitation"}
    # Scores: RING[0] 0.91 and RING[1] 0.88 confirmed (through the ring), RING[3] 0.82 and ORGANIC[0]
    # 0.05 benign, RING[2] suspicious.
    score = rows["score"]
    assert (score.n_reviewed, score.n_flagged, score.flagged_confirmed, score.flagged_benign) == (4, 3, 2, 1)
    assert score.precision == pytest.approx(2 / 3, abs=1e-4) and score.n_suspicious == 1
    assert (score.cut, score.cut_confirmed, score.cut_benign, score.cut_precision) == (0.88, 2, 0, 1.0)
    near = rows["shared_near_copies"]  # 0.90, 0.88 confirmed; 0.84 benign
    assert (near.n_reviewed, near.cut, near.cut_confirmed, near.cut_benign) == (3, 0.88, 2, 0)
    sweep = rows["template_sweep"]  # 0.8 for all three: no cut keeps 0.9
    assert sweep.cut is None and sweep.precision == pytest.approx(2 / 3, abs=1e-4)
    assert {r.signal: r.cut for r in engine.analyst.calibration(target=0.6).rows}["template_sweep"] == 0.8

    assert main(["marks", "-w", str(fixed_ws), "--report", "--target", "0.9", "-f", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["signal"] == "score" and out[0]["cut"] == 0.88 and out[0]["cut_confirmed"] == 2
    assert main(["marks", "-w", str(fixed_ws), "--report", "--target", "1.5"]) == 2


def test_family_and_template_marks_from_the_cli(fixed_ws, capsys):
    engine = fixed_engine(fixed_ws)
    fam = engine.families(limit=1)[0].family_id
    assert main(["marks", "-w", str(fixed_ws), "family", str(fam), "--label", "benign", "--by", "bob",
                 "-f", "json"]) == 0
    assert main(["marks", "-w", str(fixed_ws), "template", "1", "--label", "confirmed", "-f", "json"]) == 0
    capsys.readouterr()
    assert main(["marks", "-w", str(fixed_ws), "family", "-f", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["target_id"], row["label"], row["author"]) == (str(fam), "benign", "bob")
    assert main(["marks", "-w", str(fixed_ws), "template", "99", "--label", "benign"]) == 2
    assert "no template '99'" in capsys.readouterr().err
    with engine.store.connect() as con:
        kept = con.execute("SELECT item_kind, count(fingerprint), count(pattern) FROM mark_items GROUP BY 1 "
                           "ORDER BY 1").fetchall()
    assert kept == [("family", 4, 0), ("template", 32, 1)]


def test_review_queue_puts_unreviewed_likely_accounts_first(fixed_ws):
    engine = fixed_engine(fixed_ws)
    before = engine.analyst.review_queue(limit=5)
    assert [a.account_id for a in before.rows] == list(RING) + [ORGANIC[7]] and before.total == 12
    _hand_marks(engine)
    page = engine.analyst.review_queue(limit=100)
    order = [a.account_id for a in page.rows]
    # Not reviewed (by score), then the suspicious one, then the answered ones (by score).
    assert order[:7] == [ORGANIC[i] for i in range(7, 0, -1)]
    assert order[7:] == [RING[2], RING[0], RING[1], RING[3], ORGANIC[0]]
    assert page.mark_of(RING[0]).label == "confirmed" and page.mark_of(RING[0]).note == "through ring 7"
    assert page.mark_of(RING[3]).note == "a tutoring company" and page.mark_of(ORGANIC[5]) is None
    second = engine.analyst.review_queue(offset=7, limit=2)
    assert [a.account_id for a in second.rows] == [RING[2], RING[0]] and second.offset == 7
