"""Tests for engine.ingest.fingerprint: normalisation, fingerprints and junk detection."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.ingest.confusables import LETTERS, PUNCTUATION
from engine.ingest.fingerprint import (
    _normalize_general,
    fingerprint,
    fingerprint_many,
    junk_reason,
    normalize,
    normalize_batch,
    normalize_many,
)

CLEAN = "please explain quantum computing"


# --- normalize: perturbations an attacker uses must vanish -----------------------------------


def test_cyrillic_homoglyphs_in_english_fold_to_latin() -> None:
    # а е о р с are Cyrillic (U+0430 U+0435 U+043E U+0440 U+0441).
    attacked = "Pl\u0435\u0430se \u0435x\u0440lain quantum \u0441\u043emputing"
    assert attacked != "Please explain quantum computing"
    assert normalize(attacked) == CLEAN


def test_greek_armenian_cherokee_homoglyphs_fold() -> None:
    assert normalize("\u03a1lease expla\u03b9n quantum c\u03bfmputing") == CLEAN  # Greek Ρ ι ο
    assert normalize("please expla\u056bn quantum c\u0585mputing") != CLEAN  # Armenian ի is no lookalike
    assert normalize("please explain quantum c\u0585mputing") == CLEAN  # Armenian օ
    assert normalize("\u13a2ell me") == "tell me"  # Cherokee Ꭲ


def test_cyrillic_capital_whose_lowercase_is_not_a_lookalike() -> None:
    # Т and Н look like T and H only as capitals; folding must happen before casefold.
    assert normalize("\u0422ell me about \u041dawaii") == "tell me about hawaii"


def test_all_letter_confusables_fold_in_latin_word() -> None:
    for char, latin in LETTERS.items():
        assert normalize(f"xx{char}xx") == f"xx{latin}xx", ascii(char)


def test_zero_width_and_invisible_characters_removed() -> None:
    attacked = "ple\u200base ex\u200cpl\u200dain\u2060 quan\ufefftum com\u00adputing\U000e0041\ufe0f"
    assert normalize(attacked) == CLEAN


def test_rtl_and_bidi_marks_removed() -> None:
    assert normalize("\u202eplease\u202c \u200fexplain\u200e quantum \u2067computing\u2069") == CLEAN


def test_control_characters_removed() -> None:
    assert normalize("please\x07 explain\x1b quantum\x7f comp\x9buting") == CLEAN


def test_case_and_spacing() -> None:
    assert normalize("  PLEASE   Explain\tquantum\n\n computing \r\n") == CLEAN


def test_unicode_whitespace_becomes_single_space() -> None:
    assert normalize("please\u00a0explain\u2003quantum\u3000\u2028computing\u202f") == CLEAN


def test_fullwidth_and_math_letters() -> None:
    assert normalize("\uff30\uff4c\uff45\uff41\uff53\uff45 explain quantum computing") == CLEAN
    assert normalize("\U0001d429\U0001d425\U0001d41e\U0001d41a\U0001d42c\U0001d41e explain quantum computing") == CLEAN


def test_curly_quotes_and_dashes() -> None:
    assert normalize("It\u2019s \u201cquoted\u201d \u2014 a \u2013 b \u2212 c") == "it's \"quoted\" - a - b - c"
    assert normalize("\uff02x\uff02 \u2011") == '"x" -'  # via NFKC, then the punctuation table


def test_punctuation_table_targets_are_ascii() -> None:
    assert all(v.isascii() for v in PUNCTUATION.values())
    assert all(v.isascii() and v.islower() for v in LETTERS.values())


def test_latin_diacritics_stripped_precomposed_or_not() -> None:
    assert normalize("re\u0301sume\u0301") == "resume"
    assert normalize("r\u00e9sum\u00e9") == "resume"
    assert normalize("p\u0300l\u0301e\u0302a\u0303s\u0304e\u0305 explain quantum computing") == CLEAN


def test_diacritics_on_other_scripts_kept() -> None:
    assert normalize("\u03ba\u03ac\u03b8\u03b5\u03c4\u03b1\u03b9") == "\u03ba\u03ac\u03b8\u03b5\u03c4\u03b1\u03b9"
    assert normalize("\u0439\u043e\u0433\u0430") == "\u0439\u043e\u0433\u0430"  # й keeps its breve
    assert normalize("\u0928\u092e\u0938\u094d\u0924\u0947") == "\u0928\u092e\u0938\u094d\u0924\u0947"


def test_evasions_of_one_sentence_fold_to_the_clean_prompt() -> None:
    clean = "explain the causes of the first world war in simple terms"
    variants = [
        "Expl\u0430in the c\u0430uses \u043ef the first w\u043erld w\u0430r in simple terms",  # Cyrillic
        "Explain the ca\u200buses of the fi\u200drst world war in simple\u2060 terms",  # zero-width
        "EXPLAIN THE CAUSES OF THE FIRST WORLD WAR IN SIMPLE TERMS",
        "  Explain   the causes\tof the first\nworld war in\u00a0simple terms  ",  # spacing, NBSP
        "\uff25\uff58\uff50\uff4c\uff41\uff49\uff4e the causes of the first world war in simple terms",
        "\u202eExplain the causes of the first world war in simple terms\u202c",  # bidi controls
        "Expla\u00edn the causes of the f\u00edrst world war in s\u00edmple terms",  # sprinkled accents
    ]
    for text in variants:
        assert normalize(text) == clean, ascii(text)


# --- normalize: genuine non-Latin text must survive ------------------------------------------


def test_russian_sentence_keeps_its_script() -> None:
    text = "Привет! Объясни, пожалуйста, квантовые вычисления простыми словами."
    assert normalize(text) == text.casefold()
    assert "о" in normalize(text)  # Cyrillic о, not Latin o


def test_greek_sentence_keeps_its_script() -> None:
    text = "Η γάτα κάθεται στο χαλί και κοιτάζει το παράθυρο."
    assert normalize(text) == text.casefold()


def test_chinese_sentence_unchanged_apart_from_nfkc_and_spaces() -> None:
    text = "请解释量子计算和经典计算之间的区别。"
    assert normalize(text) == text
    assert normalize("请解释\u3000量子计算\uff0c谢谢\uff01") == "请解释 量子计算,谢谢!"


def test_russian_phrase_quoted_in_english_prompt_survives() -> None:
    # "вот" has unambiguous Cyrillic letters (в, т), so it is never folded.
    assert normalize("Translate the word вот into English") == "translate the word вот into english"


def test_all_lookalike_word_folds_only_in_latin_text() -> None:
    # "сор" is all lookalikes: folded to "cop" in English text, kept in Russian text.
    assert normalize("Call the \u0441\u043e\u0440 now please") == "call the cop now please"
    assert normalize("Это \u0441\u043e\u0440 здесь") == "это \u0441\u043e\u0440 здесь"
    assert normalize("\u0441\u043e\u0440") == "\u0441\u043e\u0440"  # no evidence either way


def test_english_prompt_with_emoji_and_code() -> None:
    assert normalize("Fix this 🐛: `def f(x): return x*2` 👍") == "fix this 🐛: `def f(x): return x*2` 👍"


def test_empty_and_invisible_only() -> None:
    assert normalize("") == ""
    assert normalize(" \t\n\u200b\u00a0\ufeff ") == ""


def test_lone_surrogates_become_replacement_characters() -> None:
    assert normalize("ab\udcff") == "ab\ufffd"
    fingerprint(normalize("ab\udcff"))  # must not raise


# --- normalize: properties -------------------------------------------------------------------

# Characters the pipeline treats specially, mixed into arbitrary Unicode so that hypothesis
# meets lookalikes, marks, invisibles and case oddities often enough to matter.
_INTERESTING = (
    list(LETTERS)
    + list(PUNCTUATION)
    + list("abcxyz ABC\u00e9\u0301\u0308\u0345\u200b\u00a0\t\n\u2011\u00a8\uff21\u0130\u1e9e\u0149\u01f0")
    + [chr(c) for c in range(0x0370, 0x0530)]  # Greek, Cyrillic
    + [chr(c) for c in range(0x1F00, 0x1F40)]  # Greek Extended (casefold expands some)
    + [chr(c) for c in range(0xAB70, 0xAB80)]  # Cherokee small letters
    + [chr(c) for c in range(0x1C80, 0x1C89)]  # Cyrillic Extended-C
    + list("我中文ﬀﬁ½")
)
_TEXT = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(_INTERESTING)), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_shortcut_matches_full_pipeline(text: str) -> None:
    assert normalize(text) == _normalize_general(text)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_normalized_text_has_no_edge_or_double_spaces(text: str) -> None:
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out


def test_normalize_many() -> None:
    assert normalize_many(["A  b", "C"]) == ["a b", "c"]
    assert normalize_many(iter([])) == []


# --- fingerprint -----------------------------------------------------------------------------


def test_fingerprint_is_pinned() -> None:
    # Persisted in the database: if these change, every stored fingerprint is invalidated.
    assert fingerprint("hello world") == -8681194425623006896
    assert fingerprint("") == -1970711489451281740
    assert fingerprint(normalize("Please explain quantum computing.")) == -6503758555495331925


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_fingerprint_is_signed_64_bit(text: str) -> None:
    value = fingerprint(text)
    assert -(2**63) <= value < 2**63


def test_fingerprint_equal_for_perturbed_variants() -> None:
    variants = [
        "Please explain quantum computing",
        "  please EXPLAIN\u00a0quantum computing ",
        "Pl\u0435\u0430se expl\u200bain quantum \u0441omputing",
        "\uff30lease explain quantum computing",
    ]
    assert len(set(fingerprint_many(normalize_many(variants)))) == 1
    assert fingerprint_many([CLEAN]) == [fingerprint(CLEAN)]


def test_fingerprint_pin_from_first_version() -> None:
    assert fingerprint("hello") == -6361636117772159875


def test_fingerprint_differs_for_different_text() -> None:
    assert fingerprint("a") != fingerprint("b")


# --- junk_reason -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\t\n\r ", "\u200b\u200c\ufeff", "\u00a0\u3000"])
def test_junk_empty(text: str) -> None:
    assert junk_reason(text) == "empty prompt"


def test_junk_nul_bytes() -> None:
    assert junk_reason("hello\x00world") == "binary data (NUL bytes)"


def test_junk_mostly_control_characters() -> None:
    blob = "".join(chr(c) for c in (1, 2, 3, 4, 5, 6, 7, 8, 0x0E, 0x0F)) * 5 + "PK some text"
    reason = junk_reason(blob)
    assert reason is not None and reason.startswith("binary data (") and reason.endswith("% control characters)")
    assert junk_reason("\x01\x02\x03abc") == "binary data (50% control characters)"


def test_junk_replacement_characters_in_bulk() -> None:
    assert junk_reason("\ufffd" * 5 + "abc") == "binary data (62% replacement characters)"
    assert junk_reason("ab\udcff\udcfe\udc80cdefg") == "binary data (30% replacement characters)"


@pytest.mark.parametrize(
    "text",
    [
        "What's the weather like today? ☀️🌧️",
        "请解释量子计算和经典计算之间的区别。",
        "def f(x):\n\treturn {'a': [1, 2, 3]}\n",
        "Привет, как дела?",
        "A stray replacement char \ufffd in a normal sentence is fine.",
        "Line one\r\nLine two\fpage",
        "one control \x1b[0m in a long enough log line is fine",
    ],
)
def test_junk_accepts_normal_prompts(text: str) -> None:
    assert junk_reason(text) is None


# --- normalize_batch: the batch form equals the per-prompt functions ------------------------------

_CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
# Characters each step of the pipeline treats specially, so that generated strings hit every branch.
_SPECIAL = ("\x00\x01\x08\t\n\x0b\x0c\r\x0e\x1c\x1f \x7f\x85\xa0\u00e9\u0301\u200b\u2028\u3000\ufeff\ufffd"
            "\uff21\u2019\u2014" + "".join(list(LETTERS)[:40]) + "".join(PUNCTUATION))


def _check_batch(texts: list[str]) -> None:
    batch = normalize_batch(texts)
    normals = [normalize(t) for t in texts]
    assert batch.normalized.to_pylist() == normals
    assert batch.fingerprints.tolist() == [fingerprint(t) for t in normals]
    assert batch.junk.to_pylist() == [junk_reason(t) for t in texts]


def test_normalize_batch_equals_per_prompt_on_the_corpora() -> None:
    files = sorted(_CORPORA.glob("*.jsonl.gz"))
    if not files:
        pytest.skip(f"shared corpora not found at {_CORPORA}")
    texts: list[str] = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in itertools.islice(fh, 1000):
                texts.extend(v for v in json.loads(line).values() if isinstance(v, str))
    _check_batch(texts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.one_of(st.sampled_from(_SPECIAL), st.characters(codec="utf-8")),
                        max_size=40), max_size=50))
def test_normalize_batch_equals_per_prompt_on_generated_strings(texts: list[str]) -> None:
    _check_batch(texts)


def test_normalize_batch_of_nothing() -> None:
    batch = normalize_batch([])
    assert len(batch.normalized) == 0 and batch.fingerprints.shape == (0,) and len(batch.junk) == 0
