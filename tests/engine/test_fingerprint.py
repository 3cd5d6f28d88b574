"""Normalisation folds cheap evasions and keeps genuine non-Latin text; fingerprints are stable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.fingerprint import fingerprint, junk_reason, normalize

CLEAN = "explain the causes of the first world war in simple terms"


def test_evasions_fold_to_the_clean_prompt():
    variants = [
        "Explаin the cаuses оf the first wоrld wаr in simple terms",  # Cyrillic а, о
        "Explain the ca\u200buses of the fi\u200drst world war in simple\u2060 terms",  # zero-width
        "EXPLAIN THE CAUSES OF THE FIRST WORLD WAR IN SIMPLE TERMS",
        "  Explain   the causes\tof the first\nworld war in\u00a0simple terms  ",  # spacing, NBSP
        "Ｅｘｐｌａｉｎ the causes of the first world war in simple terms",  # fullwidth
        "\u202eExplain the causes of the first world war in simple terms\u202c",  # bidi controls
        "Explaín the causes of the fírst world war in símple terms",  # sprinkled accents
    ]
    for text in variants:
        assert normalize(text) == CLEAN, text


def test_lookalike_punctuation():
    assert normalize("“Quote” — it’s") == normalize('"Quote" - it\'s')


def test_genuine_scripts_are_not_folded_into_latin():
    russian = "Объясни причины первой мировой войны простыми словами"
    greek = "Εξήγησε τα αίτια του πρώτου παγκοσμίου πολέμου"
    chinese = "用简单的语言解释第一次世界大战的原因"
    assert normalize(russian) == russian.lower()
    assert normalize(greek) == greek.casefold()
    assert normalize(chinese) == chinese
    # A quoted Russian word inside an English prompt survives too.
    assert "вот" in normalize("Translate the Russian word вот into English")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


def test_fingerprint_is_stable_and_signed_64_bit():
    value = fingerprint(CLEAN)
    assert -(2**63) <= value < 2**63
    assert value == fingerprint(normalize("EXPLAIN the causes of the first world war in simple terms"))
    # Pinned below: a silent change of the hash would split every stored prompt from its new copies.
    assert fingerprint("a") != fingerprint("b")
    assert fingerprint("hello") == -6361636117772159875


def test_junk_reasons():
    assert junk_reason("") == "empty prompt"
    assert junk_reason("   \u200b\u200c  ") == "empty prompt"
    assert "NUL" in junk_reason("abc\x00def")
    assert "control" in junk_reason("\x01\x02\x03\x04\x05\x06 a")
    assert junk_reason("ok \ufffd\ufffd\ufffd\ufffd\ufffd\ufffd") is not None
    for fine in ("hello 😀 world", "写一首关于秋天的诗", "def f(x):\n\treturn x * 2", "Привет!"):
        assert junk_reason(fine) is None, fine
