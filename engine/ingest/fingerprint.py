"""Prompt normalisation, exact fingerprints and junk detection.

A distillation campaign pastes the same prompt from many accounts, perturbed just enough to
dodge exact matching: homoglyphs from other scripts, zero-width characters, odd spacing,
fullwidth letters, curly quotes, stray accents. :func:`normalize` folds all of that into one
canonical string, which is what gets hashed (:func:`fingerprint`) and embedded. The raw prompt
is kept elsewhere for display, so normalisation may be lossy as long as it is deterministic and
idempotent (``normalize(normalize(x)) == normalize(x)``).

Pipeline for text that is not pure ASCII (pure ASCII takes an equivalent shortcut):

1. delete invisible format characters and C0/C1 controls, map every kind of whitespace to a
   space, fold lookalike punctuation (one table, applied by a regex substitution);
2. Unicode NFKC (fullwidth, mathematical alphanumerics, ligatures, ellipsis, superscripts);
3. the same translation again, for the few characters NFKC itself emits (U+2011 -> U+2010);
4. homoglyph fold (:data:`engine.ingest.confusables.LETTERS`) under the script rules below;
5. ``str.casefold()``, then the homoglyph fold again, for letters that only casefold turns
   into a lookalike (Cherokee small letters, archaic Cyrillic variants);
6. strip diacritics from Latin letters;
7. NFKC again (casefold and step 6 may leave decomposed sequences), collapse spaces.

Script rules for the homoglyph fold. Folding every Cyrillic "о" to Latin "o" would wreck
Russian text, so a lookalike is folded only when

* its word (a maximal run of letters and combining marks) contains a Latin letter: a
  mixed-script word is the signature of an attack; or
* its word consists of lookalikes only (Russian "сор", or English "рее" typed entirely in
  Cyrillic) and the text as a whole is predominantly Latin: more Latin letters than letters of
  other scripts, counting neither side's lookalikes, because those are what is in question.

A word with no Latin letter but some unambiguous letter of another script ("вот", "ж") is
never folded, even inside an English prompt, so a quoted Russian phrase survives. A text made
of lookalikes only has no evidence either way and is left alone.

Diacritics: NFKC composes "a" + U+0301 into "á", so stripping only loose combining marks would
not undo the perturbation. Instead every Latin letter loses its diacritics, precomposed or not
("résumé" == "resume"), the accent-insensitive matching search engines use. A campaign hidden
behind sprinkled accents is far more likely than two distinct prompts differing only in accents.
Marks on other scripts are kept: Greek tonos, Cyrillic breve, Devanagari vowel signs and Arabic
harakat carry meaning, and the script rules above already protect those scripts.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.ingest.confusables import LETTERS, PUNCTUATION

log = logging.getLogger(__name__)

__all__ = ["NormalizedBatch", "fingerprint", "fingerprint_many", "junk_reason", "normalize", "normalize_batch",
           "normalize_many"]


def _chars(*spans: tuple[int, int] | int) -> list[str]:
    """Expand code points and inclusive ``(first, last)`` ranges into characters."""
    out: list[str] = []
    for span in spans:
        first, last = (span, span) if isinstance(span, int) else span
        out.extend(chr(cp) for cp in range(first, last + 1))
    return out


def _class(chars: Iterable[str]) -> str:
    """A regex character class body (no brackets) matching exactly ``chars``.

    Written as ranges: sre turns a short range list into a bitmap, while a class of thousands
    of single characters outside the BMP is scanned linearly for every input character.
    """
    cps = sorted({ord(c) for c in chars})
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        first, last = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        parts.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return "".join(parts)


# Invisible characters: zero-width spaces/joiners, bidi controls, variation selectors, tag
# characters and the fillers attackers use as "blank" letters. Deleted, not turned into spaces,
# because they are typically inserted inside words.
_INVISIBLE = _chars(
    0x00AD,  # soft hyphen
    0x034F,  # combining grapheme joiner
    0x061C,  # Arabic letter mark (bidi)
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels (render as nothing)
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x2069),  # bidi isolates
    (0x206A, 0x206F),  # deprecated format characters
    0x3164,  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    0xFEFF,  # zero-width no-break space / BOM
    0xFFA0,  # halfwidth Hangul filler
    (0xFFF9, 0xFFFB),  # interlinear annotation controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    # Tag characters (E0000..E007F) and variation selectors supplement (E0100..E01EF), taken
    # as one range with the unassigned code points around them: fewer ranges, faster regex.
    (0xE0000, 0xE0FFF),
)

# C0/C1 controls that are not whitespace. U+001C..U+001F count as controls although
# str.isspace() says otherwise: Unicode's White_Space property excludes them, and in a prompt
# they only ever come from binary junk.
_CONTROLS = _chars((0x00, 0x08), (0x0E, 0x1F), 0x7F, (0x80, 0x84), (0x86, 0x9F))

# Whitespace other than U+0020 (Unicode White_Space, plus the braille blank, which renders as
# a space and is a known filter-evasion trick).
_WHITESPACE = _chars(
    (0x09, 0x0D), 0x85, 0xA0, 0x1680, (0x2000, 0x200A), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x2800
)

# Lone surrogates only reach us through errors="surrogateescape" decoding; they cannot be
# encoded as UTF-8, so they become U+FFFD like any other undecodable byte.
_SURROGATES = _chars((0xD800, 0xDFFF))

_TRANSLATE: dict[str, str] = dict.fromkeys(_INVISIBLE + _CONTROLS, "")
_TRANSLATE.update(dict.fromkeys(_WHITESPACE, " "))
_TRANSLATE.update(dict.fromkeys(_SURROGATES, "\ufffd"))
_TRANSLATE.update(PUNCTUATION)
_TRANSLATE_RE = re.compile("[" + _class(_TRANSLATE) + "]")


def _translate_one(match: re.Match[str]) -> str:
    return _TRANSLATE[match.group()]


def _translate(text: str) -> str:
    """Apply :data:`_TRANSLATE`.

    A regex substitution rather than str.translate: most non-ASCII prompts contain none or a
    handful of these characters, and str.translate on non-ASCII text pays a dict lookup for
    every character (about 4x slower on a typical prompt with one curly quote).
    """
    return _TRANSLATE_RE.sub(_translate_one, text)

# The ASCII shortcut only has to delete controls; whitespace is handled by str.split().
_ASCII_CONTROLS = [c for c in _CONTROLS if c.isascii()]
_ASCII_DELETE = {ord(c): None for c in _ASCII_CONTROLS}
_ASCII_CONTROL_RE = re.compile("[" + _class(_ASCII_CONTROLS) + "]")

# Combining diacritics that attackers stack on letters: Combining Diacritical Marks (+ Extended,
# Supplement), combining marks for symbols, half marks. Marks of other scripts (Devanagari,
# Arabic, ...) are deliberately excluded: they are never stripped and never used as lookalikes.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"

# Latin-script letters, by block. Fullwidth Latin is absent because NFKC has folded it before
# any of these regexes run.
_LATIN = (
    "A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"  # Basic Latin, Latin-1, Ext-A/B
    "\u0250-\u02af"  # IPA extensions
    "\u1d00-\u1d25\u1d6b-\u1d77\u1d79-\u1d9a"  # phonetic extensions (Latin part)
    "\u1e00-\u1eff"  # Latin Extended Additional (Vietnamese, etc.)
    "\u2c60-\u2c7f\ua720-\ua7ff\uab30-\uab5a\uab5c-\uab64"  # Latin Extended-C/D/E
)
# Precomposed Latin letters that may carry a diacritic, or any loose mark: a hit sends the
# text through NFD. One class rather than "[latin][marks]" because a class test is a bitmap
# lookup; a stray false positive (a mark on a Greek letter) only costs an NFD round trip.
_LATIN_ACCENT_RE = re.compile(f"[\u00c0-\u024f\u1e00-\u1eff{_MARKS}]")
_LATIN_MARKS_RE = re.compile(f"([{_LATIN}])[{_MARKS}]+")

_CONFUSABLE_TABLE = {ord(k): v for k, v in LETTERS.items()}
_CONFUSABLE = _class(LETTERS)
_CONFUSABLE_RE = re.compile(f"[{_CONFUSABLE}]")
_LATIN_RE = re.compile(f"[{_LATIN}]")
# Runs, not single letters, for counting: findall then returns one string per word.
_LATIN_RUN_RE = re.compile(f"[{_LATIN}]+")
_OTHER_RUN_RE = re.compile(f"(?:(?![{_LATIN}{_CONFUSABLE}])[^\\W\\d_])+")
# A letter that settles its script: not Latin and not a lookalike. [^\W\d_] is "any letter".
_OTHER_LETTER_RE = re.compile(f"(?![{_LATIN}{_CONFUSABLE}])[^\\W\\d_]")
# A word (letters and combining marks) containing at least one lookalike. The lookbehinds pin
# the match to the start of a word and the possessive quantifiers keep it linear: a naive
# "\w*[C]\w*" backtracks quadratically over long unspaced CJK runs.
_WORD_CHAR = f"(?:[^\\W\\d_]|[{_MARKS}])"
_SUSPECT_WORD_RE = re.compile(
    f"(?<![^\\W\\d_])(?<![{_MARKS}])(?:(?![{_CONFUSABLE}]){_WORD_CHAR})*+[{_CONFUSABLE}]{_WORD_CHAR}*+"
)


def _fold_confusables(text: str) -> str:
    """Fold lookalike letters to Latin where the script rules (module docstring) allow it."""
    if not _LATIN_RE.search(text):
        # No Latin letter at all: no mixed word, and the text cannot be predominantly Latin.
        # This keeps Russian, Greek or Armenian prompts on a cheap path.
        return text
    ambiguous = False

    def fold_mixed(match: re.Match[str]) -> str:
        nonlocal ambiguous
        word = match.group()
        if _LATIN_RE.search(word):
            return word.translate(_CONFUSABLE_TABLE)
        if not _OTHER_LETTER_RE.search(word):
            ambiguous = True
        return word

    text = _SUSPECT_WORD_RE.sub(fold_mixed, text)
    if not ambiguous:
        return text
    # Count after folding the mixed words, so that a second normalize() sees the same counts
    # and makes the same decision (idempotence).
    latin = sum(map(len, _LATIN_RUN_RE.findall(text)))
    other = sum(map(len, _OTHER_RUN_RE.findall(text)))
    if latin <= other:
        return text

    def fold_ambiguous(match: re.Match[str]) -> str:
        word = match.group()
        return word if _OTHER_LETTER_RE.search(word) else word.translate(_CONFUSABLE_TABLE)

    return _SUSPECT_WORD_RE.sub(fold_ambiguous, text)


def _strip_latin_diacritics(text: str) -> str:
    """Remove combining diacritics from Latin letters, precomposed ones included."""
    if not _LATIN_ACCENT_RE.search(text):
        return text
    return _LATIN_MARKS_RE.sub(r"\1", unicodedata.normalize("NFD", text))


def _normalize_general(text: str) -> str:
    """The full pipeline (module docstring); correct for any input, used for non-ASCII text."""
    text = _translate(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = _translate(unicodedata.normalize("NFKC", text))
    # Fold before casefold: Cyrillic "Т" looks like "T" but its lower case "т" looks like nothing.
    if _CONFUSABLE_RE.search(text):
        text = _fold_confusables(text)
    text = text.casefold()
    if _CONFUSABLE_RE.search(text):
        text = _fold_confusables(text)
    text = _strip_latin_diacritics(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split())


def normalize(text: str) -> str:
    """Return the canonical form of a prompt: the string that is hashed and embedded.

    Deterministic and idempotent. Pure-ASCII input (the bulk of traffic) takes a shortcut
    that gives the same result as the full pipeline: NFKC, the homoglyph fold and diacritic
    stripping cannot change ASCII, and casefold equals lower() there.
    """
    if text.isascii():
        if _ASCII_CONTROL_RE.search(text):
            text = text.translate(_ASCII_DELETE)
        return " ".join(text.lower().split())
    return _normalize_general(text)


def normalize_many(texts: Iterable[str]) -> list[str]:
    """:func:`normalize` over many prompts."""
    return [normalize(t) for t in texts]


def fingerprint(normalized: str) -> int:
    """64-bit signed fingerprint of an already-normalised prompt (fits a DuckDB BIGINT).

    blake2b with an 8-byte digest, read big-endian as a signed integer. The value is persisted,
    so it must never change for a given input: the tests pin a known value.
    """
    # surrogatepass: normalize() never emits lone surrogates, but a caller hashing some other
    # string must not crash ingest.
    digest = hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def fingerprint_many(texts: Iterable[str]) -> list[int]:
    """:func:`fingerprint` over many already-normalised prompts (it does not normalise them)."""
    return [fingerprint(t) for t in texts]


_JUNK_CONTROL_RE = re.compile("[" + _class(_CONTROLS) + "]")
_REPLACEMENT_RE = re.compile("[\ufffd" + _class(_SURROGATES) + "]")
_MAX_CONTROL_SHARE = 0.10
_MAX_REPLACEMENT_SHARE = 0.05
# One stray U+FFFD in a short prompt is mojibake a user pasted, not a decoded binary.
_MIN_REPLACEMENTS = 3


def junk_reason(text: str, normalized: str | None = None) -> str | None:
    """Why a raw prompt is unacceptable input, or None if it is fine.

    Catches what decoding binary data produces: NUL bytes, a high share of control characters,
    or replacement characters (U+FFFD, or lone surrogates from surrogateescape) in bulk. Emoji,
    code and CJK pass. Length limits are enforced elsewhere. `normalized`, when the caller has it,
    is ``normalize(text)`` (saves normalising twice).
    """
    if "\x00" in text:
        return "binary data (NUL bytes)"
    n = len(text)
    # search() first: counting is only worth it for the rare text that has any at all.
    if _JUNK_CONTROL_RE.search(text):
        controls = len(_JUNK_CONTROL_RE.findall(text))
        if controls > _MAX_CONTROL_SHARE * n:
            return f"binary data ({round(100 * controls / n)}% control characters)"
    if not text.isascii() and _REPLACEMENT_RE.search(text):
        replacements = len(_REPLACEMENT_RE.findall(text))
        if replacements >= _MIN_REPLACEMENTS and replacements > _MAX_REPLACEMENT_SHARE * n:
            return f"binary data ({round(100 * replacements / n)}% replacement characters)"
    if not (normalize(text) if normalized is None else normalized):
        return "empty prompt"
    return None


# The controls the ASCII shortcut deletes, in RE2 syntax for the batch form.
_ASCII_CONTROL_RE2 = "[\\x00-\\x08\\x0e-\\x1f\\x7f]"


@dataclass(frozen=True)
class NormalizedBatch:
    """:func:`normalize_batch`'s result, row for row with its input.

    ``normalized``: Arrow strings; ``fingerprints``: int64 numpy array; ``junk``: Arrow strings, null
    where the prompt is fine (:func:`junk_reason`).
    """

    normalized: pa.Array
    fingerprints: np.ndarray
    junk: pa.Array


def normalize_batch(texts: pa.Array | pa.ChunkedArray | list[str]) -> NormalizedBatch:
    """:func:`normalize`, :func:`fingerprint` and :func:`junk_reason` over many prompts at once.

    Equal, row for row, to calling the three per prompt (the tests check it on the corpora and on
    generated strings). Pure-ASCII prompts, the bulk of traffic, take the ASCII shortcut as Arrow
    compute kernels over the whole batch (delete controls, lower, collapse whitespace); only the
    others, and the few ASCII ones that may be junk, go through Python one by one. `texts` holds
    no nulls.
    """
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return NormalizedBatch(pa.array([], pa.large_string()), np.zeros(0, np.int64), pa.array([], pa.string()))
    is_ascii = pc.string_is_ascii(arr)
    has_control = pc.match_substring_regex(arr, _ASCII_CONTROL_RE2)
    cleaned = pc.replace_substring_regex(arr, _ASCII_CONTROL_RE2, "") if pc.any(has_control).as_py() else arr
    # Arrow's ASCII whitespace is str.split()'s once the controls are gone: space and \t \n \v \f \r.
    # A run is one separator; leading and trailing runs leave an empty word, hence the trim.
    words = pc.ascii_split_whitespace(pc.ascii_lower(cleaned))
    normalized = pc.ascii_trim(pc.binary_join(words, pa.scalar(" ", pa.large_string())), " ")
    others = pc.invert(is_ascii)
    if pc.any(others).as_py():
        texts_other = arr.filter(others).to_pylist()
        normalized = pc.replace_with_mask(
            normalized, others, pa.array([normalize(t) for t in texts_other], pa.large_string()))
    # junk_reason() returns None for an ASCII prompt without controls that normalises to something;
    # every other prompt is asked one by one.
    maybe_junk = pc.or_(pc.or_(others, has_control), pc.equal(pc.binary_length(normalized), 0))
    junk = pa.nulls(n, pa.string())
    if pc.any(maybe_junk).as_py():
        reasons = [junk_reason(t, u) for t, u in zip(arr.filter(maybe_junk).to_pylist(),
                                                     normalized.filter(maybe_junk).to_pylist(), strict=True)]
        junk = pc.replace_with_mask(junk, maybe_junk, pa.array(reasons, pa.string()))
    blake = hashlib.blake2b
    digests = b"".join([blake(t, digest_size=8).digest()
                        for t in normalized.cast(pa.large_binary()).to_pylist()])
    prints = np.frombuffer(digests, dtype=">i8").astype(np.int64)
    return NormalizedBatch(normalized, prints, junk)
