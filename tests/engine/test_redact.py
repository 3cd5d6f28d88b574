"""Redacted evidence (engine.query.redact, `export --redact`): fingerprints and excerpts instead of prompts,
no responses, IPs, notes or workspace path, on a real workspace; the unredacted bundle is as before."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.ingest.fingerprint import fingerprint, normalize
from engine.query.redact import EXCERPT_CHARS, excerpt, fingerprint_hex, text_fingerprint
from tests.fixtures.evidence import NOTE, PATTERN, RING, build_evidence_workspace, evidence_engine

REPO = Path(__file__).resolve().parents[2]
UNREDACTED_EXCHANGE_COLUMNS = ["exchange_id", "account_id", "ts", "prompt_id", "family_id", "template_id", "prompt",
                               "response", "model", "ip"]


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    return build_evidence_workspace(tmp_path_factory.mktemp("redact") / "ws")


@pytest.fixture
def engine(master, tmp_path):
    shutil.copytree(master, tmp_path / "ws")
    return evidence_engine(tmp_path / "ws")


def _stored(engine) -> dict:
    with engine.store.connect() as con:
        prompts = con.execute("SELECT prompt_id, text, fingerprint FROM prompts").fetchall()
        ex = con.execute("SELECT account_id, prompt_id, response, ip, meta::VARCHAR FROM exchanges").fetchall()
    return {"prompts": {int(p): (t, fingerprint_hex(f)) for p, t, f in prompts}, "exchanges": ex}


def _bundle_text(folder: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()))


def test_excerpt_is_short_cut_at_a_word_and_never_the_whole_prompt():
    text = "Translate the following sentence into French, then explain each word step by step: hello"
    cut = excerpt(text)
    assert cut == "Translate the following sentence into…"
    assert len(cut) <= EXCERPT_CHARS + 1 and text.startswith(cut[:-1])
    # Half at most: a short prompt is never quoted whole.
    assert excerpt("hi, I'm Ann Lee") == "hi, I'm…"
    assert excerpt("x" * 100) == "x" * 40 + "…"  # one long token is cut where the limit falls
    assert excerpt("line one\nline\u202e two\x00 and more words here") == "line one line two…"
    assert excerpt("") == "" and excerpt("a") == "…"


def test_fingerprint_is_the_workspaces_own(engine):
    """The hex form is the stored BIGINT read unsigned (the blake2b-64 digest), so bundles match on it."""
    for text, hexed in _stored(engine)["prompts"].values():
        assert text_fingerprint(text) == hexed and int(hexed, 16) == fingerprint(normalize(text)) % 2**64
    assert fingerprint_hex(-1) == "f" * 16 and fingerprint_hex(1) == "0" * 15 + "1"


@pytest.mark.parametrize("kind, target", [("ring", 3), ("account", RING[0])])
def test_redacted_bundle_holds_fingerprints_not_prompts_responses_or_ips(engine, kind, target):
    stored = _stored(engine)
    result = engine.analyst.export_evidence(kind, target, redact=True)
    folder = Path(result.path)
    assert result.redacted and folder.name.endswith("-redacted")
    text = _bundle_text(folder)
    for prompt, _ in stored["prompts"].values():
        assert prompt not in text and prompt[:200] not in text
    for _, _, response, ip, meta in stored["exchanges"]:
        assert response not in text and ip not in text
        assert json.loads(meta)["user_email"] not in text
    assert NOTE not in text and str(engine.workspace) not in text and PATTERN not in text
    members = set(RING) if kind == "ring" else {target}
    sent = {pid for acc, pid, *_ in stored["exchanges"] if acc in members}
    for pid in sent:
        assert stored["prompts"][pid][1] in text
    doc = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    assert doc["redacted"] is True and "fingerprint" in doc["redaction"] and "workspace" not in doc
    with open(folder / "exchanges.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["exchange_id", "account_id", "ts", "prompt_id", "family_id", "template_id",
                             "prompt_fingerprint", "prompt_excerpt", "model"]
    assert len(rows) == result.n_exchanges and {r["account_id"] for r in rows} == members
    for r in rows:
        full, hexed = stored["prompts"][int(r["prompt_id"])]
        assert r["prompt_fingerprint"] == hexed and r["prompt_excerpt"] == excerpt(full)
    with open(folder / "families.csv", newline="", encoding="utf-8") as fh:
        fams = list(csv.DictReader(fh))
    assert fams and all(f["center_fingerprint"] == stored["prompts"][int(f["family_id"])][1] for f in fams)


def test_redacted_examples_keep_the_quoted_prompts_fingerprint(engine):
    """Quoted beside its id or (a template example) alone and cut to 200 characters, a prompt is named by
    its stored fingerprint; link evidence, a JSON string, is redacted inside."""
    stored = _stored(engine)
    by_text = {t: h for t, h in stored["prompts"].values()}
    folder = Path(engine.analyst.export_evidence("account", RING[0], redact=True).path)
    doc = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    signals = {s["name"]: s for s in doc["account"]["score"]["signals"]}
    (tpl,) = signals["templated_share"]["examples"]
    long_prompt = next(t for t in by_text if len(t) > 200)
    assert tpl["example_fingerprint"] == by_text[long_prompt] and "pattern_fingerprint" in tpl
    (fam,) = signals["shared_families"]["examples"]
    assert fam["text_a_fingerprint"] == stored["prompts"][fam["prompt_a"]][1] and "text_a" not in fam
    evidence = json.loads(doc["account"]["links"][0]["evidence"])
    assert {"text_a_excerpt", "text_b_fingerprint"} <= set(evidence["families"][0])
    assert doc["marks"] and "note" not in doc["marks"][0] and doc["marks"][0]["label"] == "suspicious"


def test_unredacted_bundle_is_unchanged(engine):
    stored = _stored(engine)
    result = engine.analyst.export_evidence("ring", 3)
    folder = Path(result.path)
    assert not result.redacted and not folder.name.endswith("-redacted")
    doc = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    assert "redacted" not in doc and doc["workspace"] == str(engine.workspace)
    with open(folder / "exchanges.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == UNREDACTED_EXCHANGE_COLUMNS
    ring_rows = [e for e in stored["exchanges"] if e[0] in RING]
    assert sorted((r["response"], r["ip"]) for r in rows) == sorted((e[2], e[3]) for e in ring_rows)
    assert {r["prompt"] for r in rows} == {stored["prompts"][e[1]][0] for e in ring_rows}
    with open(folder / "families.csv", newline="", encoding="utf-8") as fh:
        assert "center_text" in next(csv.reader(fh))
    assert PATTERN in _bundle_text(folder) and NOTE in _bundle_text(folder)


def test_cli_export_and_report_redact(engine, tmp_path):
    """Through the real entry point: `export --redact` says so in its row; `report --redact` writes a
    report without the quoted prompts."""
    ws = str(engine.workspace)
    run = subprocess.run([sys.executable, "-m", "engine.cli.main", "export", "ring", "3", "--redact", "-w", ws,
                          "-f", "json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert row["redacted"] is True and Path(row["path"]).name.endswith("-redacted")
    out = tmp_path / "r.md"
    run = subprocess.run([sys.executable, "-m", "engine.cli.main", "report", "--redact", "-w", ws, "-o", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = out.read_text(encoding="utf-8")
    assert "Redacted:" in report and ws not in report
    assert all(p not in report for p, _ in _stored(engine)["prompts"].values())


def test_a_ring_id_that_is_no_number_is_a_query_error(engine):
    from engine import QueryError

    with pytest.raises(QueryError, match="ring ids are numbers"):
        engine.analyst.export_evidence("ring", "abc", redact=True)
