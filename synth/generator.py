"""Synthetic provider traffic with planted distillation campaigns and their ground truth.

The generator works in two phases so that memory stays bounded at millions of rows:

1. **Plan** (numpy, vectorised): decide every account, how many prompts it sends, when, and *what
   kind* of prompt each row is (organic, viral, app, or one of the campaign kinds, plus an item
   number for campaign rows). The plan is a handful of integer arrays, about 20 bytes a row.
2. **Render** (pure Python, in blocks of ``BLOCK_ROWS`` rows in time order): turn each planned row
   into text from precompiled templates, with one ``random.Random`` per block so the output only
   depends on the seed.

What is planted (labelled in the truth file) and what is a hard negative (organic, not a campaign):

* ``copy_ring``: a pool of benchmark-like questions, each sent by several ring accounts, each send
  lightly perturbed (typos, Cyrillic homoglyphs, zero-width characters, case, spacing, greetings).
* ``template_sweep``: one long fixed template swept over distinct slot values, split between
  accounts so no account repeats a prompt; some templates carry a 100+ word variable passage.
* ``cot_elicitation``: distinct reasoning questions wrapped in many phrasings that demand the full
  chain of thought, before or after the question.
* ``low_slow``: many accounts, each sending a handful of prompts that share an annotator preamble,
  spread over most of the period.
* Hard negatives: viral prompts pasted by hundreds of unrelated accounts, single-account template
  apps with high volume, generic short prompts that recur everywhere, heavy organic users.

Campaign accounts also send a little ordinary traffic ("cover"), and their ids look exactly like
organic ids: ids are a random permutation over all accounts.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import random
import string
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from pathlib import Path

import numpy as np

from synth import vocab as V

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("exchange_id", "account_id", "timestamp", "prompt", "model", "ip")
MODELS: tuple[str, ...] = ("hound-4", "hound-4-mini", "hound-4-reasoning", "hound-3.5-turbo")
KINDS: tuple[str, ...] = ("copy_ring", "template_sweep", "cot_elicitation", "low_slow")
SUFFIXES: tuple[str, ...] = (".jsonl", ".jsonl.gz", ".csv", ".parquet")
BLOCK_ROWS = 100_000

# Row sources in the plan.
_ORGANIC, _COVER, _VIRAL, _APP, _COPY, _SWEEP, _COT, _LOWSLOW = range(8)
_KIND_SRC = {"copy_ring": _COPY, "template_sweep": _SWEEP, "cot_elicitation": _COT, "low_slow": _LOWSLOW}

_DAY = 86_400
# Shares of the non-campaign traffic given to the hard negatives; small enough to stay a minority,
# large enough that at 20k exchanges each viral prompt reaches 50+ distinct accounts.
_VIRAL_SHARE = 0.045
_APP_SHARE = 0.025
_GENERIC_P = 0.04
# Share of organic prompts that carry the user's own text; accounts from _HEAVY_EXCHANGES exchanges up
# paste more. Without it, organic users drew every prompt from a few thousand slot combinations and
# ~56 % of their exchanges fell in near-copy families shared by 2-20 accounts, against ~8 % for the
# real organic traffic of bench/detect_eval.py's corpora scenario.
_CONTENT_P = 0.35
_CONTENT_P_HEAVY = 0.85
_HEAVY_EXCHANGES = 50
_COVER_RATE = 0.12
_MODEL_P = np.array([0.45, 0.33, 0.14, 0.08])
# Local-time activity of people: quiet at night, peaks late morning and evening.
_DIURNAL = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 5, 5.5, 5.5, 5, 5, 5, 4.8, 4.6, 4.5, 4.6, 5, 5.2, 4.6, 3.4, 2]
)
_DIURNAL = _DIURNAL / _DIURNAL.sum()
_TZ_CHOICES = np.array([-8, -7, -6, -5, -4, -3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
_TZ_P = np.array([8, 3, 7, 12, 3, 4, 8, 12, 6, 3, 1, 7, 1, 3, 8, 5, 3], dtype=float)
_TZ_P = _TZ_P / _TZ_P.sum()
_DOMAINS: tuple[str, ...] = tuple(V.ORGANIC_DOMAINS)
_DOMAIN_P = np.array([3.0 if d in ("coding", "writing", "email") else 1.0 for d in _DOMAINS])
_DOMAIN_P = _DOMAIN_P / _DOMAIN_P.sum()


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    ``exchanges`` is the exact row count. ``campaign_share`` is the fraction of rows sent by
    campaign accounts (their campaign prompts plus their bit of ordinary cover traffic).
    """

    exchanges: int = 20_000
    seed: int = 0
    start: datetime = datetime(2026, 9, 1, tzinfo=UTC)
    days: int = 30
    campaign_share: float = 0.15


@dataclass(frozen=True)
class CampaignTruth:
    """One planted campaign: its accounts and how many rows they sent.

    ``exchanges`` counts every row of the campaign's accounts; ``cover_exchanges`` of those are
    ordinary-looking prompts the accounts sent besides the campaign pattern.
    """

    campaign_id: str
    kind: str
    accounts: tuple[str, ...]
    exchanges: int
    description: str
    example_prompts: tuple[str, ...]
    cover_exchanges: int = 0


@dataclass(frozen=True)
class ViralTruth:
    """A popular prompt pasted (sometimes lightly edited) by many unrelated organic accounts."""

    viral_id: str
    text: str
    accounts: tuple[str, ...]
    exchanges: int


@dataclass(frozen=True)
class SingleAppTruth:
    """One organic customer account that sends one template at high volume."""

    account: str
    template: str
    exchanges: int


@dataclass(frozen=True)
class SynthResult:
    """Where the traffic and its truth were written, and what they hold."""

    path: Path
    truth_path: Path
    exchanges: int
    accounts: int
    campaigns: tuple[CampaignTruth, ...]
    viral: tuple[ViralTruth, ...] = ()
    single_app: tuple[SingleAppTruth, ...] = ()
    elapsed_s: float = 0.0


def truth_path_for(out: Path) -> Path:
    """``traffic.jsonl.gz`` -> ``traffic.truth.json`` beside it."""
    name = out.name
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = out.stem
    return out.with_name(name + ".truth.json")


# --------------------------------------------------------------------------------------------
# Templates and slot pickers
# --------------------------------------------------------------------------------------------

Picker = Callable[[random.Random], str]


def _list_picker(values: Sequence[str]) -> Picker:
    n = len(values)

    def pick(rnd: random.Random) -> str:
        return values[int(rnd.random() * n)]

    return pick


def _int_picker(lo: int, hi: int) -> Picker:
    def pick(rnd: random.Random) -> str:
        return str(rnd.randint(lo, hi))

    return pick


class _Template:
    """A ``{slot}`` template compiled into literal/picker parts once, rendered many times.

    ``values`` of a part is the tuple behind a list slot, so a sweep can enumerate combinations.
    """

    __slots__ = ("parts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[tuple[str, Picker | None, Sequence[str] | None]] = []
        for literal, name, _spec, _conv in string.Formatter().parse(text):
            if name is None:
                self.parts.append((literal, None, None))
                continue
            base = name.rstrip("0123456789")
            picker = _SLOTS.get(base)
            if picker is None:
                raise KeyError(f"unknown slot {name!r} in template {text[:60]!r}")
            self.parts.append((literal, picker, _LIST_SLOTS.get(base)))

    def render(self, rnd: random.Random) -> str:
        out = []
        for literal, picker, _values in self.parts:
            out.append(literal)
            if picker is not None:
                out.append(picker(rnd))
        return "".join(out)

    def space(self) -> int:
        """Number of distinct combinations of the list slots."""
        n = 1
        for _lit, _p, values in self.parts:
            if values is not None:
                n *= len(values)
        return n

    def render_combo(self, rnd: random.Random, combo: int) -> str:
        """Render with list slots taken from ``combo`` (mixed radix); other slots drawn from rnd."""
        out = []
        for literal, picker, values in self.parts:
            out.append(literal)
            if values is not None:
                n = len(values)
                out.append(values[combo % n])
                combo //= n
            elif picker is not None:
                out.append(picker(rnd))
        return "".join(out)


def _topics() -> tuple[str, ...]:
    return tuple(a.format(s=s) for s in V.TOPIC_SUBJECTS for a in V.TOPIC_ASPECTS)


_LIST_SLOTS: dict[str, Sequence[str]] = {
    name.lower(): value
    for name, value in vars(V).items()
    if name.isupper() and isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)
}
_LIST_SLOTS["topic"] = _topics()
_LIST_SLOTS["audience"] = V.AUDIENCE
_SLOTS: dict[str, Picker] = {name: _list_picker(values) for name, values in _LIST_SLOTS.items()}


def _pair_picker(pairs: Sequence[tuple[str, str]]) -> Picker:
    def pick(rnd: random.Random) -> str:
        a, b = pairs[int(rnd.random() * len(pairs))]
        return f"{a} and {b}"

    return pick


def _shape(rnd: random.Random) -> str:
    name, dims = V.SHAPE[int(rnd.random() * len(V.SHAPE))]
    return f"{name} with " + dims.format(a=rnd.randint(2, 30), b=rnd.randint(2, 30), c=rnd.randint(2, 20))


@cache
def _sentence_bank() -> tuple[str, ...]:
    """A few thousand varied sentences; passages are random draws from it (huge combination space)."""
    rnd = random.Random(20260901)
    templates = [_Template(t) for t in V.SENTENCE_TEMPLATES]
    bank = set()
    for i in range(6000):
        text = templates[i % len(templates)].render(rnd)
        bank.add(text[:1].upper() + text[1:])
    return tuple(sorted(bank))


def _sentence(rnd: random.Random) -> str:
    bank = _sentence_bank()
    return bank[int(rnd.random() * len(bank))]


def _passage(rnd: random.Random) -> str:
    return " ".join(rnd.choices(_sentence_bank(), k=rnd.randint(3, 7)))


def _long_passage(rnd: random.Random) -> str:
    bank = _sentence_bank()
    paragraphs = [" ".join(rnd.choices(bank, k=rnd.randint(4, 8))) for _ in range(rnd.randint(2, 4))]
    return "\n\n".join(paragraphs)


def _email_body(rnd: random.Random) -> str:
    name, name2 = rnd.choice(V.NAME), rnd.choice(V.NAME)
    return f"Hi {name},\n\n{_passage(rnd)}\n\nBest regards,\n{name2}"


@cache
def _code_templates() -> tuple[_Template, ...]:
    return tuple(_Template(t) for t in V.CODE_SNIPPETS)


def _code(rnd: random.Random) -> str:
    return rnd.choice(_code_templates()).render(rnd)


@cache
def _review_templates() -> tuple[_Template, ...]:
    return tuple(_Template(t) for t in V.REVIEW_START)


def _review(rnd: random.Random) -> str:
    start = rnd.choice(_review_templates()).render(rnd)
    return f"{start} {rnd.choice(V.DETAIL)}. Overall I'm {rnd.choice(V.FEELING)}."


def _customer_msg(rnd: random.Random) -> str:
    return (
        f"Hi, {rnd.choice(V.CUSTOMER_ISSUE)}. {rnd.choice(V.DETAIL).capitalize()}. "
        f"Order number {rnd.randint(100000, 999999)}. {rnd.choice(('Please help.', 'Thanks.', 'What now?', ''))}"
    ).strip()


def _question(rnd: random.Random) -> str:
    domain = rnd.choice(("science", "history", "health", "finance", "cooking"))
    return rnd.choice(_organic_templates()[_DOMAINS.index(domain)]).render(rnd)


_SLOTS.update(
    {
        "passage": _passage,
        "long_passage": _long_passage,
        "sentence": _sentence,
        "email_body": _email_body,
        "code": _code,
        "review": _review,
        "customer_msg": _customer_msg,
        "question": _question,
        "shape": _shape,
        "concept_pair": _pair_picker(V.CONCEPT_PAIR),
        "science_pair": _pair_picker(V.SCIENCE_PAIR),
        "a": _int_picker(2, 40),
        "b": _int_picker(1, 60),
        "c": _int_picker(10, 400),
        "d": _int_picker(20, 900),
        "t": _int_picker(1, 12),
        "k": _int_picker(0, 20),
        "temp": lambda rnd: rnd.choice(("325", "350", "375", "400", "180", "200", "425")),
        "small_n": _int_picker(2, 8),
        "inv": _int_picker(1000, 99999),
        "dice": _int_picker(2, 12),
        "price": lambda rnd: str(
            rnd.choice((15, 20, 25, 30, 40, 50, 75, 100, 150, 200)) - rnd.choice((0, 0, 1))
        ),
        "age": _int_picker(19, 64),
        "ticket": _int_picker(10000, 999999),
        "op": _list_picker(V.CODE_OP),
        "code_cls": _list_picker(V.CODE_CLS),
    }
)


@cache
def _organic_templates() -> tuple[tuple[_Template, ...], ...]:
    return tuple(tuple(_Template(t) for t in V.ORGANIC_DOMAINS[d]) for d in _DOMAINS)


# Slots filled with generated text (code, passages, email bodies): a prompt with one is unique.
_CONTENT_SLOTS = ("{code", "{passage", "{long_passage", "{email_body", "{sentence")


@cache
def _content_templates() -> tuple[tuple[_Template, ...], ...]:
    """Per domain, its templates that carry generated content; all such templates where it has none."""
    every = tuple(_Template(t) for d in _DOMAINS for t in V.ORGANIC_DOMAINS[d]
                  if any(c in t for c in _CONTENT_SLOTS))
    return tuple(tuple(_Template(t) for t in V.ORGANIC_DOMAINS[d] if any(c in t for c in _CONTENT_SLOTS))
                 or every for d in _DOMAINS)


# --------------------------------------------------------------------------------------------
# Text noise: light for organic users, heavier and deliberate for copy rings
# --------------------------------------------------------------------------------------------

_HOMOGLYPHS = {
    "a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440", "x": "\u0445",
    "y": "\u0443", "i": "\u0456", "A": "\u0410", "E": "\u0415", "O": "\u041e", "C": "\u0421",
    "P": "\u0420", "T": "\u0422", "H": "\u041d", "K": "\u041a", "M": "\u041c", "B": "\u0412",
}  # fmt: skip
_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff", "\u2060")


def _typo(text: str, rnd: random.Random) -> str:
    for _ in range(6):
        i = rnd.randrange(1, max(2, len(text) - 2))
        if text[i].isalpha() and text[i + 1].isalpha():
            op = rnd.random()
            if op < 0.4:  # swapped letters
                return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            if op < 0.7:  # dropped letter
                return text[:i] + text[i + 1 :]
            if op < 0.85:  # doubled letter
                return text[:i] + text[i] + text[i:]
            return text[:i] + rnd.choice("qwertyuiopasdfghjklzxcvbnm") + text[i + 1 :]
    return text


def _homoglyphs(text: str, rnd: random.Random) -> str:
    spots = [i for i, ch in enumerate(text[:600]) if ch in _HOMOGLYPHS]
    if not spots:
        return text
    chars = list(text)
    for i in rnd.sample(spots, min(len(spots), rnd.randint(1, 5))):
        chars[i] = _HOMOGLYPHS[chars[i]]
    return "".join(chars)


def _zero_width(text: str, rnd: random.Random) -> str:
    words = text.split(" ")
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(words))
        words[i] = words[i] + rnd.choice(_ZERO_WIDTH)
    return " ".join(words)


def _spacing(text: str, rnd: random.Random) -> str:
    op = rnd.random()
    if op < 0.4 and " " in text:
        i = text.find(" ", rnd.randrange(len(text)))
        return text[:i] + "  " + text[i + 1 :] if i >= 0 else text + " "
    if op < 0.7:
        return text + rnd.choice((" ", "  ", "\n", " \n"))
    return rnd.choice((" ", "\n", "  ")) + text


def _case(text: str, rnd: random.Random) -> str:
    op = rnd.random()
    if op < 0.5:
        return text[:1].lower() + text[1:]
    if op < 0.85:
        return text.lower()
    return text[:1].upper() + text[1:]


def _punct(text: str, rnd: random.Random) -> str:
    stripped = text.rstrip()
    if stripped.endswith(("?", ".", "!")):
        return stripped[:-1] + rnd.choice(("", "??", "!", " ?", "...", "."))
    return stripped + rnd.choice(("?", ".", "!", " :)"))


def _greet(text: str, rnd: random.Random) -> str:
    return rnd.choice(V.GREETINGS) + rnd.choice((" ", "\n", "\n\n")) + text


def _signoff(text: str, rnd: random.Random) -> str:
    return text + rnd.choice((" ", "\n", "\n\n")) + rnd.choice(V.SIGNOFFS)


_RING_OPS: tuple[Callable[[str, random.Random], str], ...] = (
    _typo, _homoglyphs, _zero_width, _spacing, _case, _punct, _greet, _signoff,
)  # fmt: skip
_RING_OP_P = (0.22, 0.14, 0.12, 0.12, 0.1, 0.1, 0.1, 0.1)


def _ring_perturb(text: str, rnd: random.Random) -> str:
    """1-3 perturbations, so sends of one pool item rarely match byte for byte."""
    for op in rnd.choices(_RING_OPS, weights=_RING_OP_P, k=rnd.choice((1, 1, 2, 2, 3))):
        text = op(text, rnd)
    return text


def _organic_noise(text: str, rnd: random.Random) -> str:
    """How real users type: sometimes lowercase, no final punctuation, a typo, a greeting."""
    u = rnd.random()
    if u < 0.5:
        return text
    if u < 0.7:
        return text[:1].lower() + text[1:]
    if u < 0.82:
        return text.rstrip(".?!")
    if u < 0.88:
        return _typo(text, rnd)
    if u < 0.92:
        return _greet(text, rnd)
    if u < 0.955:
        return _signoff(text, rnd)
    if u < 0.985:
        return _spacing(text, rnd)
    if u < 0.993:
        return text.lower()
    # A zero-width space now and then from copy-pasting out of web pages and chat apps, so the
    # mere presence of one is not a campaign marker.
    return _zero_width(text, rnd)


# --------------------------------------------------------------------------------------------
# Question generators for campaigns
# --------------------------------------------------------------------------------------------


def _num_fields(rnd: random.Random) -> dict[str, object]:
    names = rnd.sample(V.NAME, 4)
    pron = ("She", "she") if names[0] in V.FEMALE_NAMES else ("He", "he")
    return {
        "name": names[0], "name2": names[1], "name3": names[2], "name4": names[3],
        "Pron": pron[0], "pron": pron[1],
        "n1": rnd.randint(3, 48), "n2": rnd.randint(2, 30), "n3": rnd.randint(2, 24),
        "p1": rnd.randint(2, 19), "p2": rnd.randint(1, 9), "p3": rnd.randint(40, 400),
        "bill": rnd.choice((50, 100, 200)), "h1": rnd.randint(6, 14), "d1": rnd.randint(1, 6),
        "v1": rnd.randint(20, 300), "v2": rnd.randint(40, 320), "per": rnd.randint(20, 400),
        "pct": rnd.choice((5, 10, 12, 15, 20, 25, 30, 35, 40, 60)), "tax": rnd.choice((5, 7, 8, 10, 13, 20)),
        "m": rnd.randint(1, 60), "ang": rnd.choice((15, 20, 25, 30, 37, 45, 53, 60)),
        "t1": rnd.randint(2, 40), "t2": rnd.randint(45, 100), "c1": rnd.choice(("0.1", "0.01", "0.001", "0.05", "0.002")),
        "r1": rnd.randint(2, 100), "r2": rnd.randint(2, 100),
        "a": rnd.choice(V.LOGIC_CATS), "b": rnd.choice(V.LOGIC_CATS), "c": rnd.choice(V.LOGIC_CATS),
        "algo": rnd.choice(V.ALGO), "code": _code(rnd),
    }  # fmt: skip


def _multiple_choice(rnd: random.Random) -> str:
    i, j, k = rnd.sample(range(len(V.MC_FACTS)), 3)
    subject, right = V.MC_FACTS[i]
    options = [
        right,
        V.MC_FACTS[j][1],
        V.MC_FACTS[k][1],
        rnd.choice(("none of the above", "all of the above")),
    ]
    rnd.shuffle(options)
    stem = rnd.choice(V.MC_STEMS).format(x=subject, X=subject[:1].upper() + subject[1:])
    body = "\n".join(
        f"{letter}. {opt[:1].upper() + opt[1:]}" for letter, opt in zip("ABCD", options, strict=True)
    )
    return f"{stem}\n{body}\nAnswer:" if rnd.random() < 0.5 else f"{stem}\n{body}"


def _code_task(rnd: random.Random) -> str:
    fn, args, spec = rnd.choice(V.CODE_SPECS)
    lang = rnd.choice(("Python", "Python", "JavaScript", "Go", "Java", "Rust", "C++"))
    extra = rnd.choice(
        (
            "Include a docstring and two examples.", "Handle edge cases.", "Aim for O(n log n) or better.",
            "Write tests as well.", "Do not use any library functions.", "Explain the complexity.",
        )
    )  # fmt: skip
    return f"Write a {lang} function `{fn}({args})` that {spec}. {extra}"


def _word_problem(rnd: random.Random) -> str:
    return rnd.choice(V.WORD_PROBLEMS).format(**_num_fields(rnd))


def _logic(rnd: random.Random) -> str:
    return rnd.choice(V.LOGIC_TEMPLATES).format(**_num_fields(rnd))


def _science_q(rnd: random.Random) -> str:
    return rnd.choice(V.SCIENCE_QS).format(**_num_fields(rnd))


def _code_q(rnd: random.Random) -> str:
    return rnd.choice(V.CODE_QS).format(**_num_fields(rnd))


def _benchmark_question(rnd: random.Random) -> str:
    """A benchmark-like item (MMLU/GSM8K/HumanEval style) for a copy ring's pool."""
    u = rnd.random()
    if u < 0.3:
        return _multiple_choice(rnd)
    if u < 0.6:
        return _word_problem(rnd)
    if u < 0.8:
        return _code_task(rnd)
    if u < 0.9:
        return _logic(rnd)
    return _science_q(rnd)


def _reasoning_question(rnd: random.Random) -> str:
    u = rnd.random()
    if u < 0.35:
        return _word_problem(rnd)
    if u < 0.55:
        return _logic(rnd)
    if u < 0.8:
        return _science_q(rnd)
    return _code_q(rnd)


# --------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _KindSpec:
    weight: float
    accounts: tuple[int, int]
    per_account: tuple[int, int]
    synced_p: float
    window_days: tuple[float, float]


_KIND_SPECS = {
    "copy_ring": _KindSpec(0.28, (5, 40), (15, 45), 0.6, (3, 14)),
    "template_sweep": _KindSpec(0.30, (5, 60), (20, 50), 0.5, (2, 10)),
    "cot_elicitation": _KindSpec(0.22, (5, 40), (15, 45), 0.4, (5, 20)),
    "low_slow": _KindSpec(0.20, (40, 100), (5, 30), 0.0, (0, 0)),  # window: most of the period
}


# Mutable while planning and rendering (examples fill in as rows render); never returned: the
# public result is the frozen CampaignTruth.
@dataclass
class _Campaign:
    cid: str
    kind: str
    accounts: np.ndarray  # internal account indices
    synced: bool
    ip_mode: int
    model: int
    pattern_rows: int = 0
    cover_rows: int = 0
    description: str = ""
    pool: list[str] = field(default_factory=list)
    template: _Template | None = None
    combo_mult: int = 1
    combo_off: int = 0
    phrasings: tuple[tuple[str, bool], ...] = ()
    preamble: str = ""
    tasks: tuple[_Template, ...] = ()
    examples: list[str] = field(default_factory=list)
    seed: int = 0
    window: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class _Viral:
    text: str
    tails: tuple[str, ...]
    accounts: np.ndarray


class _Plan:
    """Every row's account, time, source and item, as compact arrays sorted by time."""

    def __init__(self, config: SynthConfig) -> None:
        if config.exchanges < 1:
            raise ValueError("exchanges must be >= 1")
        if not 0.0 <= config.campaign_share <= 0.9:
            raise ValueError("campaign_share must be within [0, 0.9]")
        if config.days < 1:
            raise ValueError("days must be >= 1")
        t0 = time.perf_counter()
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.period = config.days * _DAY
        n = config.exchanges
        self.campaigns: list[_Campaign] = []
        self.sweep_offset = int(self.rng.integers(0, 1 << 16))
        self.virals: list[_Viral] = []
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        campaign_budget = round(n * config.campaign_share) if n >= 500 else 0
        camp_rows, camp_acct_count = self._plan_campaigns(campaign_budget)
        used = sum(len(r[0]) for r in camp_rows)
        rest = n - used
        viral_budget = round(rest * _VIRAL_SHARE) if n >= 1000 else 0
        app_budget = round(rest * _APP_SHARE) if n >= 1000 else 0
        organic_budget = rest - viral_budget - app_budget

        org_counts = self._organic_counts(organic_budget)
        n_org = len(org_counts)
        n_app = 2 if app_budget >= 2 else 0
        self.n_organic, self.n_app = n_org, n_app
        self.app_base = n_org
        camp_base = n_org + n_app
        self.n_accounts = camp_base + camp_acct_count
        self._account_attributes(n_org, n_app, camp_acct_count)

        rows.append(self._organic_rows(org_counts))
        if n_app:
            rows.append(self._app_rows(app_budget))
        if viral_budget:
            rows.append(self._viral_rows(viral_budget, n_org))
        for acct, ts, src, item in camp_rows:
            rows.append((acct + camp_base, ts, src, item))
        for camp in self.campaigns:
            camp.accounts = camp.accounts + camp_base
            self._campaign_account_attributes(camp)

        acct = np.concatenate([r[0] for r in rows]).astype(np.int32)
        ts = np.concatenate([r[1] for r in rows]).astype(np.int64)
        src = np.concatenate([r[2] for r in rows]).astype(np.int8)
        item = np.concatenate([r[3] for r in rows]).astype(np.int64)
        if len(acct) != n:
            raise AssertionError(f"planned {len(acct)} rows, wanted {n}")
        ts = np.clip(ts, 0, self.period - 1)
        # Ties broken by a random key so that equal timestamps don't group sources together.
        order = np.lexsort((self.rng.permutation(n), ts))
        self.acct, self.ts, self.src, self.item = acct[order], ts[order], src[order], item[order]
        self.camp_of = np.full(self.n_accounts, -1, dtype=np.int32)
        for ci, camp in enumerate(self.campaigns):
            self.camp_of[camp.accounts] = ci
        self.public_num = self.rng.permutation(self.n_accounts)
        self.id_width = max(6, len(str(self.n_accounts - 1)))
        log.info(
            "planned %d rows, %d accounts (%d campaigns) in %.2fs",
            n, self.n_accounts, len(self.campaigns), time.perf_counter() - t0,
        )  # fmt: skip

    # --- times ---------------------------------------------------------------------------

    def _diurnal_times(self, day: np.ndarray, tz: np.ndarray) -> np.ndarray:
        """Seconds from the period start, for local days/hours drawn by the diurnal curve."""
        hour = self.rng.choice(24, size=len(day), p=_DIURNAL)
        sec = day.astype(np.int64) * _DAY + (hour - tz).astype(np.int64) * 3600
        sec += self.rng.integers(0, 3600, size=len(day))
        return np.mod(sec, self.period)

    # --- organic ---------------------------------------------------------------------------

    def _organic_counts(self, budget: int) -> np.ndarray:
        """Heavy-tailed prompts per account summing exactly to ``budget``."""
        if budget <= 0:
            return np.zeros(0, dtype=np.int64)
        rng = self.rng
        n_heavy = max(2, budget // 6000) if budget >= 2000 else 0
        heavy = np.clip(rng.lognormal(np.log(250), 0.5, size=n_heavy), 100, 1500).astype(np.int64)
        heavy = heavy[np.cumsum(heavy) <= budget // 8]  # heavy users never dominate the log
        remaining = budget - int(heavy.sum())
        parts = [heavy]
        while remaining > 0:
            est = int(remaining / 5.0 * 1.2) + 16
            light = np.minimum(1 + np.floor(rng.lognormal(0.6, 1.2, size=est)), 150).astype(np.int64)
            cum = np.cumsum(light)
            cut = int(np.searchsorted(cum, remaining))
            if cut < len(light):
                light = light[: cut + 1].copy()
                light[-1] -= int(cum[cut]) - remaining
                light = light[light > 0]
            parts.append(light)
            remaining -= int(light.sum())
        counts = np.concatenate(parts)
        return counts[rng.permutation(len(counts))]

    def _organic_rows(self, counts: np.ndarray) -> tuple[np.ndarray, ...]:
        """Sessions of a few prompts each, on days within each account's active span."""
        rng = self.rng
        n_acct = len(counts)
        days = self.config.days
        n_sess = 1 + rng.binomial(np.maximum(counts - 1, 0), 0.3)
        first = rng.integers(0, days, size=n_acct)
        span = np.where(counts >= 30, days, np.minimum(days, 1 + rng.geometric(0.25, size=n_acct)))
        first = np.where(counts >= 30, 0, first)
        sess_acct = np.repeat(np.arange(n_acct), n_sess)
        sess_day = first[sess_acct] + (rng.random(len(sess_acct)) * span[sess_acct]).astype(np.int64)
        sess_start = self._diurnal_times(np.mod(sess_day, days), self.tz[sess_acct])
        sess_len = np.minimum(rng.exponential(1200, size=len(sess_acct)), 4 * 3600)
        sess_offset = np.concatenate(([0], np.cumsum(n_sess)[:-1]))
        acct = np.repeat(np.arange(n_acct), counts)
        sess = sess_offset[acct] + (rng.random(len(acct)) * n_sess[acct]).astype(np.int64)
        ts = sess_start[sess] + (rng.random(len(acct)) * sess_len[sess]).astype(np.int64)
        return acct, ts, np.full(len(acct), _ORGANIC), np.zeros(len(acct), dtype=np.int64)

    def _app_rows(self, budget: int) -> tuple[np.ndarray, ...]:
        """Two customer integrations; the first sends most. Machine traffic: all day, every day."""
        rng = self.rng
        first = int(round(budget * 0.65))
        acct = np.concatenate([np.full(first, self.app_base), np.full(budget - first, self.app_base + 1)])
        item = np.concatenate([np.zeros(first, dtype=np.int64), np.ones(budget - first, dtype=np.int64)])
        # Mild business-hours bump: the app serves a customer's own users.
        ts = rng.integers(0, self.period, size=budget)
        bump = rng.random(budget) < 0.3
        ts[bump] = (ts[bump] // _DAY) * _DAY + rng.integers(13 * 3600, 22 * 3600, size=int(bump.sum()))
        return acct, ts, np.full(budget, _APP), item

    def _viral_rows(self, budget: int, n_org: int) -> tuple[np.ndarray, ...]:
        """Each viral prompt trends from a start day and decays; senders are distinct organic accounts."""
        rng = self.rng
        weights = np.array([0.26, 0.2, 0.16, 0.14, 0.12, 0.12])
        counts = np.floor(weights * budget).astype(np.int64)
        counts[0] += budget - int(counts.sum())
        accts, tss, items = [], [], []
        for v, (text, tails) in enumerate(V.VIRAL_PROMPTS):
            k = int(counts[v])
            chosen = rng.choice(n_org, size=min(k, n_org), replace=False)
            if k > n_org:
                chosen = np.concatenate([chosen, rng.integers(0, n_org, size=k - n_org)])
            self.virals.append(_Viral(text, tails, np.unique(chosen)))
            start = rng.uniform(0, 0.6) * self.period
            day = ((start + rng.exponential(0.15 * self.period, size=k)) // _DAY).astype(np.int64)
            day = np.minimum(day, self.config.days - 1)
            accts.append(chosen)
            tss.append(self._diurnal_times(day, self.tz[chosen]))
            items.append(np.full(k, v, dtype=np.int64))
        return np.concatenate(accts), np.concatenate(tss), np.full(budget, _VIRAL), np.concatenate(items)

    # --- accounts --------------------------------------------------------------------------

    def _account_attributes(self, n_org: int, n_app: int, n_camp: int) -> None:
        rng = self.rng
        n = n_org + n_app + n_camp
        self.tz = rng.choice(_TZ_CHOICES, size=n, p=_TZ_P)
        self.model_pref = rng.choice(len(MODELS), size=n, p=_MODEL_P).astype(np.int8)
        self.dom1 = rng.choice(len(_DOMAINS), size=n, p=_DOMAIN_P).astype(np.int8)
        self.dom2 = rng.choice(len(_DOMAINS), size=n, p=_DOMAIN_P).astype(np.int8)
        # Residential ISPs: a few hundred /16 blocks. Datacenters: a few dozen other /16 blocks.
        self.res_prefixes = _public_prefixes(rng, 300)
        self.dc_prefixes = _public_prefixes(rng, 24)
        self.home_ip = self._residential(n)
        self.alt_ip = self._residential(n)
        self.ip_mode = np.zeros(n, dtype=np.int8)  # 0 home/mobile, 1 datacenter pool, 2 rotating proxy
        self.pool_base = np.zeros(n, dtype=np.uint32)
        self.pool_size = np.ones(n, dtype=np.uint32)
        for a in range(n_org, n_org + n_app):
            self.ip_mode[a] = 1
            self.pool_base[a] = self._dc_pool_base()
            self.pool_size[a] = rng.integers(2, 5)
            self.model_pref[a] = 1

    def _residential(self, n: int) -> np.ndarray:
        prefix = self.res_prefixes[self.rng.integers(0, len(self.res_prefixes), size=n)]
        return (prefix << 16) | self.rng.integers(256, 65535, size=n).astype(np.uint32)

    def _dc_pool_base(self) -> int:
        prefix = int(self.dc_prefixes[self.rng.integers(0, len(self.dc_prefixes))])
        return (prefix << 16) | (int(self.rng.integers(0, 255)) << 8) | int(self.rng.integers(1, 200))

    def _campaign_account_attributes(self, camp: _Campaign) -> None:
        accts = camp.accounts
        rng = self.rng
        self.ip_mode[accts] = camp.ip_mode
        if camp.ip_mode == 1:
            self.pool_base[accts] = self._dc_pool_base()
            self.pool_size[accts] = rng.integers(3, 20)
        keep = rng.random(len(accts)) < 0.8
        self.model_pref[accts[keep]] = camp.model

    # --- campaigns -------------------------------------------------------------------------

    def _plan_campaigns(self, budget: int) -> tuple[list[tuple[np.ndarray, ...]], int]:
        """Campaign rows with campaign-local account numbers, and how many accounts they use."""
        rows: list[tuple[np.ndarray, ...]] = []
        n_acct = 0
        if budget <= 0:
            return rows, 0
        rng = self.rng
        counters = dict.fromkeys(KINDS, 0)
        for kind in KINDS:
            spec = _KIND_SPECS[kind]
            pattern = int(budget * spec.weight / (1 + _COVER_RATE))
            lo_a, hi_a = spec.accounts
            lo_p, hi_p = spec.per_account
            for size, mean_p in self._instance_sizes(pattern, spec):
                a = int(np.clip(round(size / mean_p), lo_a, hi_a))
                a = min(a, max(2, size // lo_p))
                a = max(a, math.ceil(size / hi_p), 2)
                if size < a:
                    continue
                counters[kind] += 1
                camp = self._new_campaign(kind, counters[kind], a)
                local = np.arange(n_acct, n_acct + a)
                # Concentrated Dirichlet: accounts of one campaign vary, but none becomes a heavy user.
                per = 1 + rng.multinomial(size - a, rng.dirichlet(np.full(a, 20.0)))
                rows.extend(self._campaign_rows(camp, local, per))
                camp.accounts = local
                self.campaigns.append(camp)
                n_acct += a
        return rows, n_acct

    def _instance_sizes(self, pattern: int, spec: _KindSpec) -> list[tuple[int, float]]:
        """Split a kind's campaign rows into instances: (rows, prompts per account) each.

        Accounts per instance are log-uniform over the kind's range so sizes differ a lot; the
        first instance takes at most 60% when it would swallow the budget, so every kind has at
        least two instances whenever the budget allows.
        """
        rng = self.rng
        (lo_a, hi_a), (lo_p, hi_p) = spec.accounts, spec.per_account
        out: list[tuple[int, float]] = []
        remaining = pattern
        while remaining >= 2 * lo_p:
            a = math.exp(rng.uniform(math.log(lo_a), math.log(hi_a)))
            mean_p = float(rng.uniform(lo_p, hi_p))
            size = int(a * mean_p)
            if not out and size > 0.6 * remaining:
                size = int(remaining * rng.uniform(0.35, 0.6))
            size = min(size, remaining)
            if remaining - size < 2 * lo_p * max(2, lo_a // 4):
                size = remaining  # a leftover too small for an instance of its own
            out.append((size, mean_p))
            remaining -= size
        return out

    def _new_campaign(self, kind: str, index: int, n_accounts: int) -> _Campaign:
        rng = self.rng
        cid = f"{kind}-{index:02d}"
        synced = bool(rng.random() < _KIND_SPECS[kind].synced_p)
        ip_p = {"copy_ring": (0.2, 0.5, 0.3), "template_sweep": (0.2, 0.5, 0.3),
                "cot_elicitation": (0.3, 0.4, 0.3), "low_slow": (0.5, 0.2, 0.3)}[kind]  # fmt: skip
        ip_mode = int(rng.choice(3, p=ip_p))
        model = {"copy_ring": 0, "template_sweep": int(rng.choice(2)), "cot_elicitation": 2,
                 "low_slow": int(rng.choice(2))}[kind]  # fmt: skip
        seed = int(rng.integers(0, 2**63 - 1))
        camp = _Campaign(cid, kind, np.zeros(0, dtype=np.int64), synced, ip_mode, model, seed=seed)
        rnd = random.Random(seed)
        if kind == "template_sweep":
            # Instances alternate between cores with a long pasted passage (embeddings of the
            # whole prompt then hardly group) and cores with short slots; instance j of a group
            # gets the j-th (intro, core, rules) combination, so instances differ while they can.
            long_cores = [c for c in V.SWEEP_CORES if "passage}" in c]
            cores = long_cores if index % 2 == 0 else [c for c in V.SWEEP_CORES if "passage}" not in c]
            n_i, n_c = len(V.SWEEP_INTROS), len(cores)
            c = (index // 2 + self.sweep_offset) % (n_i * n_c * len(V.SWEEP_RULES))
            intro, core, rules = (
                V.SWEEP_INTROS[c % n_i],
                cores[(c // n_i) % n_c],
                V.SWEEP_RULES[c // (n_i * n_c)],
            )
            camp.template = _Template(
                f"{intro} {core}\n\n{rules}" if not core.startswith("{") else f"{core}\n\n{intro} {rules}"
            )
            space = camp.template.space()
            camp.combo_mult = _coprime_multiplier(space, rnd)
            camp.combo_off = rnd.randrange(space)
            camp.description = f"one template swept over distinct slot values: {core[:90]}..."
        elif kind == "cot_elicitation":
            phr = [(p, True) for p in V.COT_BEFORE] + [(p, False) for p in V.COT_AFTER]
            camp.phrasings = tuple(rnd.sample(phr, rnd.randint(5, 12)))
            camp.description = (
                f"distinct reasoning questions wrapped in {len(camp.phrasings)} chain-of-thought phrasings"
            )
        elif kind == "low_slow":
            j = index - 1 + self.sweep_offset
            n_p = len(V.ANNOTATOR_PREAMBLES)
            guideline = V.ANNOTATOR_GUIDELINES[(j // n_p) % len(V.ANNOTATOR_GUIDELINES)]
            camp.preamble = f"{V.ANNOTATOR_PREAMBLES[j % n_p]} {guideline}"
            camp.tasks = tuple(_Template(t) for t in rnd.sample(V.ANNOTATION_TASKS, rnd.randint(2, 4)))
            camp.description = f"many accounts, few prompts each, shared preamble: {camp.preamble[:70]}..."
        else:
            camp.description = (
                "pool of benchmark-like questions, each sent by several accounts with light perturbations"
            )
        return camp

    def _campaign_rows(
        self, camp: _Campaign, local: np.ndarray, per: np.ndarray
    ) -> list[tuple[np.ndarray, ...]]:
        rng = self.rng
        a = len(local)
        if camp.kind == "copy_ring":
            acct_idx, item = self._copy_assignment(camp, per)
        else:
            acct_idx = np.repeat(np.arange(a), per)
            # Items are a sequence within the campaign, handed out in shuffled order so that no
            # account repeats one and accounts interleave.
            item = rng.permutation(len(acct_idx)).astype(np.int64)
        camp.pattern_rows = len(acct_idx)
        ts = self._campaign_times(camp, acct_idx, a)
        cover = rng.binomial(per, _COVER_RATE) + (rng.random(a) < 0.4)
        camp.cover_rows = int(cover.sum())
        cover_acct = np.repeat(np.arange(a), cover)
        lo, hi = camp.window
        day = rng.integers(
            max(0, lo // _DAY - 2), min(self.config.days, hi // _DAY + 3), size=len(cover_acct)
        )
        cover_tz = rng.choice(_TZ_CHOICES, size=a, p=_TZ_P)[cover_acct]
        cover_ts = self._diurnal_times(day, cover_tz)
        src = _KIND_SRC[camp.kind]
        return [
            (local[acct_idx], ts, np.full(len(acct_idx), src), item),
            (
                local[cover_acct],
                cover_ts,
                np.full(len(cover_acct), _COVER),
                np.zeros(len(cover_acct), dtype=np.int64),
            ),
        ]

    def _copy_assignment(self, camp: _Campaign, per: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each pool item goes to 2-6 distinct ring accounts, weighted by their planned volume."""
        rng = self.rng
        a = len(per)
        total = int(per.sum())
        rmax = min(6, a)
        r = rng.integers(2, rmax + 1, size=total // 2 + 1) if a >= 2 else np.ones(total, dtype=np.int64)
        cum = np.cumsum(r)
        n_items = int(np.searchsorted(cum, total)) + 1
        r = r[:n_items].copy()
        r[-1] -= int(cum[n_items - 1]) - total
        # Efraimidis-Spirakis weighted sampling without replacement, one row of keys per item.
        keys = rng.random((n_items, a)) ** (1.0 / per[None, :])
        top = np.argsort(-keys, axis=1)[:, :rmax]
        take = np.arange(rmax)[None, :] < r[:, None]
        acct_idx = top[take]
        item = np.repeat(np.arange(n_items), r)
        rnd = random.Random(camp.seed)
        seen: set[str] = set()
        while len(camp.pool) < n_items:
            q = _benchmark_question(rnd)
            if q not in seen:
                seen.add(q)
                camp.pool.append(q)
        return acct_idx, item.astype(np.int64)

    def _campaign_times(self, camp: _Campaign, acct_idx: np.ndarray, a: int) -> np.ndarray:
        rng = self.rng
        days = self.config.days
        spec = _KIND_SPECS[camp.kind]
        if camp.kind == "low_slow":
            dur = rng.uniform(0.75, 1.0) * days
        else:
            dur = min(days, rng.uniform(*spec.window_days))
        start = rng.uniform(0, days - dur)
        lo, hi = int(start * _DAY), int((start + dur) * _DAY)
        camp.window = (lo, hi)
        n = len(acct_idx)
        if camp.synced:
            # Shared working sessions: many accounts active in the same hours.
            op_tz = int(rng.choice(_TZ_CHOICES, p=_TZ_P))
            n_sess = max(2, round(dur * rng.uniform(0.5, 1.5)))
            sess_day = rng.integers(int(start), max(int(start) + 1, int(start + dur)), size=n_sess)
            sess_start = sess_day * _DAY + (rng.integers(9, 22, size=n_sess) - op_tz) * 3600
            sess_len = rng.integers(3600, 3 * 3600, size=n_sess)
            s = rng.integers(0, n_sess, size=n)
            return np.mod(sess_start[s] + (rng.random(n) * sess_len[s]).astype(np.int64), self.period)
        tz = rng.choice(_TZ_CHOICES, size=a, p=_TZ_P)[acct_idx]
        day = (start + rng.random(n) * dur).astype(np.int64)
        return self._diurnal_times(np.minimum(day, days - 1), tz)


def _public_prefixes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random /16 prefixes outside private, loopback and multicast space."""
    first = rng.choice(
        np.array([o for o in range(24, 224) if o not in (100, 127, 169, 172, 192, 198)]), size=n
    )
    return ((first.astype(np.uint32) << 8) | rng.integers(0, 256, size=n).astype(np.uint32)).astype(np.uint32)


def _coprime_multiplier(space: int, rnd: random.Random) -> int:
    """A multiplier coprime to ``space``: ``(i * m + off) % space`` is then a permutation."""
    if space <= 1:
        return 1
    while True:
        m = rnd.randrange(1, space) if space > 2 else 1
        if math.gcd(m, space) == 1:
            return m


# --------------------------------------------------------------------------------------------
# Render
# --------------------------------------------------------------------------------------------


class _Renderer:
    """Turns planned rows into text, block by block, in time order."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.organic = _organic_templates()
        self.content = _content_templates()
        self.volume = np.bincount(plan.acct, minlength=plan.n_accounts)
        self.apps = tuple(_Template(t) for t in V.APP_TEMPLATES)
        self.start_epoch = int(plan.config.start.timestamp())
        self.ex_width = max(8, len(str(plan.config.exchanges - 1)))

    def blocks(self, block_rows: int = BLOCK_ROWS) -> Iterator[dict[str, list[str]]]:
        plan = self.plan
        n = len(plan.acct)
        for b, lo in enumerate(range(0, n, block_rows)):
            t0 = time.perf_counter()
            hi = min(n, lo + block_rows)
            block = self._block(b, lo, hi)
            log.debug("rendered rows %d-%d in %.2fs", lo, hi, time.perf_counter() - t0)
            yield block

    def _block(self, b: int, lo: int, hi: int) -> dict[str, list[str]]:
        plan = self.plan
        n = hi - lo
        rs = np.random.default_rng([plan.config.seed, 7, b])
        acct = plan.acct[lo:hi]
        src = plan.src[lo:hi]
        u = rs.random(n)
        dom = np.where(
            u < 0.6,
            plan.dom1[acct],
            np.where(u < 0.8, plan.dom2[acct], rs.integers(0, len(_DOMAINS), size=n)),
        )
        model = np.where(
            rs.random(n) < 0.85, plan.model_pref[acct], rs.choice(len(MODELS), size=n, p=_MODEL_P)
        )
        prompts = self._prompts(
            random.Random(plan.config.seed * 1_000_003 + b), acct, src, plan.item[lo:hi], dom
        )
        ips = self._ips(rs, acct)
        stamps = np.datetime_as_string((plan.ts[lo:hi] + self.start_epoch).astype("datetime64[s]"), unit="s")
        w = plan.id_width
        return {
            "exchange_id": [f"ex_{i:0{self.ex_width}d}" for i in range(lo, hi)],
            "account_id": [f"acct_{k:0{w}d}" for k in plan.public_num[acct].tolist()],
            "timestamp": [s + "Z" for s in stamps.tolist()],
            "prompt": prompts,
            "model": [MODELS[m] for m in model.tolist()],
            "ip": ips,
        }

    def _ips(self, rs: np.random.Generator, acct: np.ndarray) -> list[str]:
        plan = self.plan
        n = len(acct)
        mode = plan.ip_mode[acct]
        mobile = rs.random(n) < 0.15
        # int64 throughout: numpy refuses shifts mixing uint64 with Python ints.
        ip = np.where(mobile, plan.alt_ip[acct], plan.home_ip[acct]).astype(np.int64)
        pooled = plan.pool_base[acct].astype(np.int64) + rs.integers(0, 1 << 30, size=n) % plan.pool_size[
            acct
        ].astype(np.int64)
        ip = np.where(mode == 1, pooled, ip)
        rot = mode == 2
        if rot.any():
            prefix = plan.res_prefixes[rs.integers(0, len(plan.res_prefixes), size=n)].astype(np.int64)
            rotating = (prefix << 16) | rs.integers(256, 65535, size=n)
            ip = np.where(rot, rotating, ip)
        o1, o2, o3, o4 = (
            ((ip >> 24) & 255).tolist(),
            ((ip >> 16) & 255).tolist(),
            ((ip >> 8) & 255).tolist(),
            (ip & 255).tolist(),
        )
        return [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(o1, o2, o3, o4, strict=True)]

    def _prompts(
        self, rnd: random.Random, acct: np.ndarray, src: np.ndarray, item: np.ndarray, dom: np.ndarray
    ) -> list[str]:
        plan = self.plan
        camps = plan.campaigns
        camp_of = plan.camp_of[acct].tolist()
        organic = self.organic
        out: list[str] = []
        append = out.append
        content, volume = self.content, self.volume
        for a, s, it, d, ci in zip(acct.tolist(), src.tolist(), item.tolist(), dom.tolist(), camp_of, strict=True):
            if s == _ORGANIC or s == _COVER:
                if rnd.random() < _GENERIC_P:
                    append(rnd.choice(V.GENERIC_PROMPTS))
                    continue
                # Users paste their own text (code, drafts, documents), power users most of all:
                # such prompts are their own, not a combination of a few stock slot values.
                p_content = _CONTENT_P_HEAVY if volume[a] >= _HEAVY_EXCHANGES else _CONTENT_P
                templates = content[d] if rnd.random() < p_content else organic[d]
                append(_organic_noise(templates[int(rnd.random() * len(templates))].render(rnd), rnd))
                continue
            if s == _VIRAL:
                append(self._viral(rnd, it))
                continue
            if s == _APP:
                append(self.apps[it].render(rnd))
                continue
            camp = camps[ci]
            if s == _COPY:
                text = _ring_perturb(camp.pool[it], rnd)
            elif s == _SWEEP:
                assert camp.template is not None
                space = camp.template.space()
                text = camp.template.render_combo(rnd, (it * camp.combo_mult + camp.combo_off) % space)
            elif s == _COT:
                phrasing, before = camp.phrasings[int(rnd.random() * len(camp.phrasings))]
                q = _reasoning_question(rnd)
                text = f"{phrasing}\n\n{q}" if before else f"{q}\n\n{phrasing}"
                if rnd.random() < 0.3:
                    text = _organic_noise(text, rnd)
            else:
                task = camp.tasks[int(rnd.random() * len(camp.tasks))]
                text = f"{camp.preamble}\n\n{task.render(rnd)}"
            if len(camp.examples) < 5:
                camp.examples.append(text)
            append(text)
        return out

    def _viral(self, rnd: random.Random, v: int) -> str:
        text, tails = V.VIRAL_PROMPTS[v]
        u = rnd.random()
        # Most people paste it untouched; some tweak the last line, trim it or add their own ask.
        tail = tails[0] if u < 0.6 else rnd.choice(tails)
        prompt = text.replace("{{", "{").replace("}}", "}").replace("{tail}", tail).strip()
        u = rnd.random()
        if u < 0.08:
            prompt = prompt.lower()
        elif u < 0.16:
            prompt = prompt + "\n\n" + _question(rnd)
        elif u < 0.22:
            prompt = _organic_noise(prompt, rnd)
        return prompt


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class _Run:
    """One generation: plan, rendered blocks, and the truth once every block has rendered."""

    def __init__(self, config: SynthConfig) -> None:
        self.plan = _Plan(config)
        self.renderer = _Renderer(self.plan)

    def account_id(self, a: int) -> str:
        return f"acct_{int(self.plan.public_num[a]):0{self.plan.id_width}d}"

    def campaigns(self) -> tuple[CampaignTruth, ...]:
        return tuple(
            CampaignTruth(
                campaign_id=c.cid,
                kind=c.kind,
                accounts=tuple(sorted(self.account_id(a) for a in c.accounts.tolist())),
                exchanges=c.pattern_rows + c.cover_rows,
                description=f"{c.description} ({len(c.accounts)} accounts, "
                f"{'synchronised bursts' if c.synced else 'independent timing'}, "
                f"{('residential', 'datacenter pool', 'rotating proxies')[c.ip_mode]} IPs)",
                example_prompts=tuple(c.examples),
                cover_exchanges=c.cover_rows,
            )
            for c in self.plan.campaigns
        )

    def virals(self) -> tuple[ViralTruth, ...]:
        out = []
        for i, v in enumerate(self.plan.virals):
            text = v.text.replace("{{", "{").replace("}}", "}").replace("{tail}", v.tails[0]).strip()
            n = int(np.count_nonzero((self.plan.src == _VIRAL) & (self.plan.item == i)))
            accts = tuple(sorted(self.account_id(a) for a in v.accounts.tolist()))
            out.append(ViralTruth(f"viral-{i + 1:02d}", text, accts, n))
        return tuple(out)

    def single_apps(self) -> tuple[SingleAppTruth, ...]:
        plan = self.plan
        out = []
        for k in range(plan.n_app):
            a = plan.app_base + k
            n = int(np.count_nonzero(plan.acct == a))
            out.append(SingleAppTruth(self.account_id(a), V.APP_TEMPLATES[k], n))
        return tuple(out)

    def truth(self) -> dict[str, object]:
        plan = self.plan
        camps = self.campaigns()
        accounts: dict[str, str | None] = {}
        order = np.argsort(plan.public_num)
        for a in order.tolist():
            ci = int(plan.camp_of[a])
            accounts[self.account_id(a)] = plan.campaigns[ci].cid if ci >= 0 else None
        return {
            "config": {
                "exchanges": plan.config.exchanges,
                "seed": plan.config.seed,
                "start": plan.config.start.isoformat(),
                "days": plan.config.days,
                "campaign_share": plan.config.campaign_share,
            },
            "campaigns": [asdict(c) for c in camps],
            "viral": [asdict(v) for v in self.virals()],
            "single_app": [asdict(s) for s in self.single_apps()],
            "accounts": accounts,
        }


def iter_blocks(config: SynthConfig, block_rows: int = BLOCK_ROWS) -> Iterator[dict[str, list[str]]]:
    """Columnar blocks (``{column: list[str]}``, columns as in ``COLUMNS``), in time order."""
    yield from _Run(config).renderer.blocks(block_rows)


def iter_exchanges(config: SynthConfig) -> Iterator[dict[str, str]]:
    """One dict per exchange with the keys in ``COLUMNS``, in time order."""
    for block in iter_blocks(config):
        cols = [block[c] for c in COLUMNS]
        for values in zip(*cols, strict=True):
            yield dict(zip(COLUMNS, values, strict=True))


def write_synth(
    config: SynthConfig, out: Path, progress: Callable[[int, int], None] | None = None
) -> SynthResult:
    """Write ``config.exchanges`` rows to ``out`` (format from its suffix) and the truth beside it.

    Suffixes: ``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.parquet``. Both files are written to a
    temporary name and moved into place, so a crash never leaves a half file under the real name.
    ``progress(done, total)`` is called after each block.
    """
    out = Path(out)
    fmt = next((s for s in sorted(SUFFIXES, key=len, reverse=True) if out.name.endswith(s)), None)
    if fmt is None:
        raise ValueError(f"unsupported output suffix for {out.name!r}; use one of {', '.join(SUFFIXES)}")
    t0 = time.perf_counter()
    run = _Run(config)
    total = config.exchanges
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    done = 0
    with _writer(fmt, tmp) as write:
        for block in run.renderer.blocks():
            write(block)
            done += len(block["exchange_id"])
            if progress is not None:
                progress(done, total)
            log.info("wrote %d/%d exchanges (%.1fs)", done, total, time.perf_counter() - t0)
    os.replace(tmp, out)
    truth_path = truth_path_for(out)
    truth = run.truth()
    tmp_truth = truth_path.with_name(truth_path.name + ".tmp")
    tmp_truth.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp_truth, truth_path)
    elapsed = time.perf_counter() - t0
    log.info("synth: %d exchanges, %d accounts -> %s in %.1fs", total, run.plan.n_accounts, out, elapsed)
    return SynthResult(
        path=out,
        truth_path=truth_path,
        exchanges=total,
        accounts=run.plan.n_accounts,
        campaigns=run.campaigns(),
        viral=run.virals(),
        single_app=run.single_apps(),
        elapsed_s=elapsed,
    )


class _writer:
    """Context manager giving ``write(block)`` for one output format."""

    def __init__(self, fmt: str, path: Path) -> None:
        self.fmt, self.path = fmt, path

    def __enter__(self) -> Callable[[dict[str, list[str]]], None]:
        import pyarrow as pa

        self._schema = pa.schema([(c, pa.string()) for c in COLUMNS])
        if self.fmt in (".jsonl", ".jsonl.gz"):
            if self.fmt == ".jsonl":
                self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
            else:
                # mtime=0 keeps the bytes identical across runs with the same seed.
                self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
                self._fh = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=3, mtime=0)
            return self._write_jsonl
        if self.fmt == ".csv":
            import pyarrow.csv as pacsv

            self._pw = pacsv.CSVWriter(str(self.path), self._schema)
        else:
            import pyarrow.parquet as pq

            self._pw = pq.ParquetWriter(str(self.path), self._schema, compression="zstd")
        return self._write_arrow

    def _write_jsonl(self, block: dict[str, list[str]]) -> None:
        # The other columns are plain ASCII made here; only the prompt needs JSON escaping, and the
        # C string encoder is several times faster than json.dumps per row.
        enc = encode_basestring
        lines = [
            f'{{"exchange_id":"{e}","account_id":"{a}","timestamp":"{t}","prompt":{enc(p)},'
            f'"model":"{m}","ip":"{i}"}}\n'
            for e, a, t, p, m, i in zip(*(block[c] for c in COLUMNS), strict=True)
        ]
        self._fh.write("".join(lines).encode("utf-8"))

    def _write_arrow(self, block: dict[str, list[str]]) -> None:
        import pyarrow as pa

        self._pw.write_table(pa.table(block, schema=self._schema))

    def __exit__(self, *exc: object) -> None:
        if self.fmt in (".jsonl", ".jsonl.gz"):
            self._fh.close()
            if self.fmt == ".jsonl.gz":
                self._raw.close()
        else:
            self._pw.close()
