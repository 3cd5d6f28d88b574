"""who-else with the real model, DuckDB and FAISS: perturbed copies found, unrelated prompts not."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from engine import Engine
from engine.errors import QueryError
from tests.fixtures.corpora import corpus
from tests.fixtures.traffic import write_jsonl

BASE = "Explain how a transformer neural network uses self-attention to process a sentence."
PERTURBED = {
    "homoglyph": "Explаin how а trаnsformer neurаl network uses self-аttention to process а sentence.",  # Cyrillic а
    "zero_width": "Explain how a trans\u200bformer neural net\u200cwork uses self-attention to process a sentence.",
    "case": "EXPLAIN HOW A TRANSFORMER NEURAL NETWORK USES SELF-ATTENTION TO PROCESS A SENTENCE.",
    "spacing": "Explain  how a transformer   neural network uses\tself-attention to process a sentence .",
    "typo": "Explain how a transfomer neural network uses self-attention to process a sentence.",
    "greeting": "Hi there! Explain how a transformer neural network uses self-attention to process a sentence. Thanks!",
}
UNRELATED = {
    "same_topic": "What are the main differences between convolutional and recurrent neural networks?",
    "cooking": "Give me a recipe for a vegan chocolate cake without nuts.",
    "travel": "Plan a three day itinerary for Lisbon on a small budget.",
    "attention_other": "Write a poem about paying attention to small things in life.",
    "code": "Write a Python function that reverses a linked list in place.",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, real_encoder):
    root = tmp_path_factory.mktemp("who-else")
    rows = [{"account_id": "orig", "timestamp": "2026-02-01T09:00:00Z", "prompt": BASE}]
    rows += [{"account_id": f"copy_{k}", "timestamp": f"2026-02-0{2 + i}T10:00:00Z", "prompt": p}
             for i, (k, p) in enumerate(PERTURBED.items())]
    rows += [{"account_id": f"other_{k}", "timestamp": "2026-02-03T11:00:00Z", "prompt": p} for k, p in UNRELATED.items()]
    jail_path = corpus("jailbreaks.jsonl.gz")
    with gzip.open(jail_path, "rt", encoding="utf-8") as fh:
        jail = [json.loads(line) for line in fh]
    # The DAN-like wild prompts plus every fifth other one as background keeps the embedding cost small.
    for i, row in enumerate(jail):
        if row["group"] is None and ("dan" in row["text"].lower() or i % 5 == 0):
            rows.append({"account_id": f"jb_{i:04d}", "timestamp": 1770000000 + i * 97, "prompt": row["text"]})
    engine = Engine(root / "ws", encoder=real_encoder)
    engine.ingest([write_jsonl(root / "traffic.jsonl", rows)])
    engine.embed()
    return engine, jail


def test_perturbed_copies_are_found_and_unrelated_prompts_are_not(workspace):
    engine, _ = workspace
    result = engine.who_else([BASE])
    accounts = {r.account_id: r for r in result.rows}
    for kind in PERTURBED:
        assert f"copy_{kind}" in accounts, f"{kind} copy missed"
    assert accounts["orig"].exact and accounts["orig"].max_similarity == 1.0
    # Homoglyphs, zero-width characters, case and spacing fold away entirely: exact normalised copies.
    for kind in ("homoglyph", "zero_width", "case"):
        assert accounts[f"copy_{kind}"].exact, kind
    assert not any(a.startswith("other_") for a in accounts)
    assert not any(a.startswith("jb_") for a in accounts)
    row = accounts["copy_greeting"]
    assert row.n_matches == 1 and 0.75 <= row.max_similarity < 1.0 and "Hi there" in row.example


def test_batch_queries_keep_their_index_and_threshold_override(workspace):
    engine, _ = workspace
    greeting = {r.account_id: r for r in engine.who_else([BASE]).rows}["copy_greeting"].max_similarity
    # A threshold just above the greeting copy's similarity (it varies a little with the CPU's bf16
    # support) must drop that copy but keep every exact normalised copy.
    threshold = (greeting + 1.0) / 2
    result = engine.who_else([UNRELATED["cooking"], BASE], threshold=threshold)
    assert {r.query_index for r in result.rows} == {0, 1}
    assert [r.account_id for r in result.for_query(0)] == ["other_cooking"]
    found = {r.account_id for r in result.for_query(1)}
    assert {"orig", "copy_homoglyph", "copy_zero_width", "copy_case"} <= found
    assert "copy_greeting" not in found
    assert all(r.max_similarity >= threshold for r in result.rows)


def test_empty_query_is_a_clear_error(workspace):
    engine, _ = workspace
    with pytest.raises(QueryError, match="query 2 is empty"):
        engine.who_else(["fine", " \u200b "])


def _shingles(text: str, n: int = 8) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))}


def test_dan_variant_finds_accounts_that_sent_other_variants_of_its_family(workspace):
    """Ground truth is lexical, independent of embeddings: a wild prompt is a variant of the query's
    family when half of its 8-word shingles appear in the query (edited copies of one DAN text)."""
    engine, jail = workspace
    named = {r["group"]: r["text"] for r in jail if r["group"]}
    query = named["DAN_Jailbreak"]
    q = _shingles(query)
    variants = set()
    for i, row in enumerate(jail):
        if row["group"] is None and ("dan" in row["text"].lower() or i % 5 == 0):
            s = _shingles(row["text"])
            if len(s & q) / len(s) >= 0.5:
                variants.add(f"jb_{i:04d}")
    assert len(variants) >= 5, "corpus changed: too few DAN_Jailbreak variants to test with"
    found = {r.account_id for r in engine.who_else([query]).rows}
    recall = len(found & variants) / len(variants)
    assert recall >= 0.8, f"found {len(found & variants)} of {len(variants)} accounts that sent variants"
    # What else comes back must still be DAN-like text, not an unrelated jailbreak.
    unrelated = [a for a in found - variants if a.startswith("jb_")
                 and len(_shingles(jail[int(a[3:])]["text"]) & q) == 0]
    assert len(unrelated) <= max(1, len(found) // 10), unrelated
