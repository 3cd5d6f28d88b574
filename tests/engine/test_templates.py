"""Tests for the template miner (engine/detect/templates/)."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.detect.templates import TemplateMining, TemplateParams, mine_templates, tokenize

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"


def _words(seed: int, n: int = 4000) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n)]


WORDS = _words(0)


def _sent(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _synthetic() -> tuple[list[str], list[str | None]]:
    rng = random.Random(1)
    texts: list[str] = []
    truth: list[str | None] = []

    def add(label: str | None, text: str) -> None:
        texts.append(text)
        truth.append(label)

    for _ in range(40):
        add("prefix", "translate the following text into french please: " + _sent(rng, 5, 300))
    for _ in range(40):
        add("suffix", _sent(rng, 5, 300) + " let's think step by step and show all your reasoning.")
    for _ in range(40):
        add(
            "infix",
            _sent(rng, 5, 30) + " is logically equivalent in meaning to the sentence " + _sent(rng, 5, 30),
        )
    for _ in range(40):
        add(
            "wrapper",
            "<doc> please summarise this: " + _sent(rng, 5, 300) + " end of the document, thank you </doc>",
        )
    for _ in range(40):
        add(
            "multi",
            "given the passage: "
            + _sent(rng, 200, 320)
            + " now answer the following question about it: "
            + _sent(rng, 5, 12),
        )
    for _ in range(200):
        add(None, _sent(rng, 5, 40))
    return texts, truth


@pytest.fixture(scope="module")
def synthetic() -> tuple[list[str], list[str | None], TemplateMining]:
    texts, truth = _synthetic()
    ids = np.arange(1000, 1000 + len(texts), dtype=np.int64)
    return texts, truth, mine_templates(ids, texts)


def test_tokenize_splits_punctuation() -> None:
    assert tokenize("question: what's up?") == ["question", ":", "what", "'", "s", "up", "?"]


@pytest.mark.parametrize(
    ("label", "kind", "anchors"),
    [
        ("prefix", "prefix", ("translate the following text into french please:",)),
        ("suffix", "suffix", ("let's think step by step and show all your reasoning.",)),
        ("infix", "infix", ("is logically equivalent in meaning to the sentence",)),
        ("wrapper", "wrapper", ("<doc> please summarise this:", "end of the document, thank you </doc>")),
        ("multi", "multi", ("given the passage:", "now answer the following question about it:")),
    ],
)
def test_synthetic_templates_recovered_exactly(
    synthetic, label: str, kind: str, anchors: tuple[str, ...]
) -> None:
    texts, truth, res = synthetic
    want = {1000 + i for i, t in enumerate(truth) if t == label}
    matches = [t for t in res.templates if t.anchors == anchors]
    assert len(matches) == 1, [t.pattern for t in res.templates]
    tpl = matches[0]
    assert tpl.kind == kind
    assert set(res.members(tpl.template_id).tolist()) == want
    assert tpl.n_prompts == len(want)
    assert tpl.slot_diversity == 1.0
    assert 0.0 < tpl.fixed_ratio < 1.0
    # Which ends of the members the fixed text holds (the floating-anchor rule reads these).
    ends = {"prefix": (1.0, 0.0), "suffix": (0.0, 1.0), "infix": (0.0, 0.0), "wrapper": (1.0, 1.0),
            "multi": (1.0, 0.0)}
    assert (tpl.start_anchored, tpl.end_anchored) == ends[kind]


def test_synthetic_nothing_else(synthetic) -> None:
    _, truth, res = synthetic
    assert len(res.templates) == 5
    pids, tids = res.assignments
    assert pids.dtype == np.int64 and tids.dtype == np.int64
    assert len(np.unique(pids)) == len(pids)  # at most one template per prompt
    organic = {1000 + i for i, t in enumerate(truth) if t is None}
    assert not organic & set(pids.tolist())


def test_pattern_rebuilds_prompt(synthetic) -> None:
    texts, _, res = synthetic
    tpl = next(t for t in res.templates if t.kind == "wrapper")
    text = texts[tpl.example_prompt_id - 1000]
    filling = text[len(tpl.anchors[0]) + 1 : -len(tpl.anchors[1]) - 1]
    assert tpl.pattern.format(filling) == text


def test_exact_copies_are_not_a_template() -> None:
    texts = ["please write me a detailed essay about the history of rome and its emperors"] * 200
    res = mine_templates(np.arange(len(texts)), texts)
    assert res.templates == ()
    assert len(res.assignments[0]) == 0


def test_few_variants_are_not_a_template() -> None:
    base = "please write me a detailed essay about the history of {} and its emperors"
    texts = [base.format(["rome", "byzantium", "china"][i % 3]) for i in range(120)]
    assert mine_templates(np.arange(len(texts)), texts).templates == ()


def test_unrelated_sentences_form_none() -> None:
    rng = random.Random(7)
    texts = [_sent(rng, 3, 60) for _ in range(2000)]
    assert mine_templates(np.arange(len(texts)), texts).templates == ()


def test_common_short_phrase_is_not_a_template() -> None:
    rng = random.Random(3)
    texts = []
    for _ in range(300):
        texts.append(f"{_sent(rng, 0, 12)} can you please help me {_sent(rng, 3, 20)}".strip())
    res = mine_templates(np.arange(len(texts)), texts)
    assert res.templates == ()


def test_optional_phrase_and_reused_content_keep_one_template() -> None:
    rng = random.Random(5)
    passages = [_sent(rng, 80, 120) for _ in range(30)]
    texts = []
    for i in range(300):
        # Each passage is reused under ten questions; a quarter of prompts add a polite phrase.
        polite = " kindly be brief and precise in your reply." if i % 4 == 0 else ""
        texts.append(
            f"read the passage below carefully: {passages[i % 30]} then answer this question: "
            f"{_sent(rng, 4, 10)}?{polite}"
        )
    res = mine_templates(np.arange(len(texts)), texts)
    assert len(res.templates) == 1, [t.pattern for t in res.templates]
    tpl = res.templates[0]
    assert tpl.anchors[:2] == ("read the passage below carefully:", "then answer this question:")
    assert tpl.n_prompts == 300


def test_wrapper_is_mined_around_content_that_recurs_more_often() -> None:
    # Ordinary users paste documents built from a few stock sentences (more prompts hold each
    # sentence than hold the campaign's instruction); a campaign wraps the same kind of documents in
    # its instruction. The instruction frames its prompts and must become the template of every
    # campaign prompt; the stock sentences inside are content.
    rng = random.Random(11)
    stock = [f"{_sent(rng, 3, 4)} our plan is to {{}} and then review the numbers in {_sent(rng, 1, 1)}."
             for _ in range(6)]

    def document() -> str:
        parts = [rng.choice(stock).format(_sent(rng, 2, 4)) if rng.random() < 0.5 else _sent(rng, 6, 14)
                 for _ in range(rng.randint(4, 8))]
        return " ".join(parts)

    organic = [f"{_sent(rng, 2, 6)}: {document()}" for _ in range(600)]
    campaign = [
        "you are a careful annotator. generate five question answer pairs from the text below. "
        f"text: {document()} respond only with json and no preamble." for _ in range(120)
    ]
    texts = organic + campaign
    res = mine_templates(np.arange(len(texts)), texts)
    got = Counter(int(t) for p, t in zip(*res.assignments, strict=True) if p >= len(organic))
    tid, n = got.most_common(1)[0]
    assert n == len(campaign), [(res.templates[t].pattern, k) for t, k in got.items()]
    assert res.templates[tid].anchors[0].startswith("you are a careful annotator. generate five")
    assert set(res.members(tid).tolist()) == set(range(len(organic), len(texts)))


def test_inputs_validated_and_small_input() -> None:
    with pytest.raises(ValueError):
        mine_templates(np.arange(3), ["a", "b"])
    with pytest.raises(ValueError):
        TemplateParams(ngram=0)
    assert mine_templates(np.arange(2), ["a b c d e", "a b c d e"]).templates == ()


def test_weights_and_external_connection() -> None:
    import duckdb

    texts, truth = _synthetic()
    con = duckdb.connect()
    w = np.full(len(texts), 2.0)
    res = mine_templates(np.arange(len(texts)), texts, weights=w, con=con)
    assert all(t.weight == 2 * t.n_prompts for t in res.templates)
    # Working tables are dropped afterwards.
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0


def test_t0_subset_purity() -> None:
    path = CORPORA / "t0_templates.jsonl.gz"
    if not path.exists():
        pytest.skip(f"shared corpora not found at {CORPORA}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    # 30 templates from distinct data sets (same-text templates over several data sets are
    # indistinguishable by design), all their prompts.
    by_source: dict[str, str] = {}
    for r in rows:
        by_source.setdefault(r["group"].split("_")[0], r["group"])
    keep = set(sorted(by_source.values())[:30])
    sub = [r for r in rows if r["group"] in keep]
    texts = [" ".join(r["text"].lower().split()) for r in sub]
    labels = [r["group"] for r in sub]
    res = mine_templates(np.arange(len(texts)), texts)
    assert res.templates
    pure = total = 0
    for t in res.templates:
        c = Counter(labels[i] for i in res.members(t.template_id))
        pure += c.most_common(1)[0][1]
        total += t.n_prompts
    assert pure / total >= 0.9


def test_label_template_is_mined_for_a_one_word_anchor() -> None:
    rng = random.Random(5)
    texts = [f"summarize: {_sent(rng, 20, 200)}" for _ in range(60)]
    texts += [_sent(rng, 5, 40) for _ in range(300)]
    texts += [f"note: {_sent(rng, 1, 3)}" for _ in range(40)]  # a label with almost no content after it
    texts += [f"see https://{_sent(rng, 1, 1)}.com {_sent(rng, 3, 9)}" for _ in range(40)]
    res = mine_templates(np.arange(len(texts)), texts)
    assert [(t.kind, t.pattern, t.n_prompts) for t in res.templates] == [("label", "summarize: {0}", 60)]
    assert set(res.members(0).tolist()) == set(range(60))


def test_label_templates_can_be_turned_off() -> None:
    rng = random.Random(5)
    texts = [f"summarize: {_sent(rng, 20, 200)}" for _ in range(60)]
    assert mine_templates(np.arange(len(texts)), texts, TemplateParams(min_label_content=0)).templates == ()


def test_params_fill_their_defaults_from_each_other() -> None:
    p = TemplateParams()
    assert (p.n, p.least_prompts, p.least_distinct, p.least_anchor_tokens, p.least_floating_fixed) == (
        4, 20, 10, 6, 8)
    q = TemplateParams(min_prompts=1, min_fixed_tokens=1, ngram=3, min_distinct=7)
    assert (q.n, q.least_prompts, q.least_distinct, q.least_anchor_tokens, q.least_floating_fixed) == (
        3, 2, 7, 5, 2)
    with pytest.raises(AttributeError):
        p.min_prompts = 5  # type: ignore[misc]  # frozen: one run's thresholds cannot drift
