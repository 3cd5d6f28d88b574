"""Prompt text: templates compiled from the word lists, slot pickers, typing noise, campaign questions.

Every function draws from the ``random.Random`` it is handed (the sentence bank from its own fixed
seed) and from nothing else, so a block's text depends only on the seed (see `synth.render`).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from functools import cache

from synth import vocab as V

DOMAINS: tuple[str, ...] = tuple(V.ORGANIC_DOMAINS)


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


class Template:
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
    templates = [Template(t) for t in V.SENTENCE_TEMPLATES]
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
def _code_templates() -> tuple[Template, ...]:
    return tuple(Template(t) for t in V.CODE_SNIPPETS)


def _code(rnd: random.Random) -> str:
    return rnd.choice(_code_templates()).render(rnd)


@cache
def _review_templates() -> tuple[Template, ...]:
    return tuple(Template(t) for t in V.REVIEW_START)


def _review(rnd: random.Random) -> str:
    start = rnd.choice(_review_templates()).render(rnd)
    return f"{start} {rnd.choice(V.DETAIL)}. Overall I'm {rnd.choice(V.FEELING)}."


def _customer_msg(rnd: random.Random) -> str:
    return (
        f"Hi, {rnd.choice(V.CUSTOMER_ISSUE)}. {rnd.choice(V.DETAIL).capitalize()}. "
        f"Order number {rnd.randint(100000, 999999)}. {rnd.choice(('Please help.', 'Thanks.', 'What now?', ''))}"
    ).strip()


def question(rnd: random.Random) -> str:
    domain = rnd.choice(("science", "history", "health", "finance", "cooking"))
    return rnd.choice(organic_templates()[DOMAINS.index(domain)]).render(rnd)


_SLOTS.update(
    {
        "passage": _passage,
        "long_passage": _long_passage,
        "sentence": _sentence,
        "email_body": _email_body,
        "code": _code,
        "review": _review,
        "customer_msg": _customer_msg,
        "question": question,
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
def organic_templates() -> tuple[tuple[Template, ...], ...]:
    return tuple(tuple(Template(t) for t in V.ORGANIC_DOMAINS[d]) for d in DOMAINS)


# Slots filled with generated text (code, passages, email bodies): a prompt with one is unique.
_CONTENT_SLOTS = ("{code", "{passage", "{long_passage", "{email_body", "{sentence")


@cache
def content_templates() -> tuple[tuple[Template, ...], ...]:
    """Per domain, its templates that carry generated content; all such templates where it has none."""
    every = tuple(Template(t) for d in DOMAINS for t in V.ORGANIC_DOMAINS[d]
                  if any(c in t for c in _CONTENT_SLOTS))
    return tuple(tuple(Template(t) for t in V.ORGANIC_DOMAINS[d] if any(c in t for c in _CONTENT_SLOTS))
                 or every for d in DOMAINS)


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


def ring_perturb(text: str, rnd: random.Random) -> str:
    """1-3 perturbations, so sends of one pool item rarely match byte for byte."""
    for op in rnd.choices(_RING_OPS, weights=_RING_OP_P, k=rnd.choice((1, 1, 2, 2, 3))):
        text = op(text, rnd)
    return text


def organic_noise(text: str, rnd: random.Random) -> str:
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


def benchmark_question(rnd: random.Random) -> str:
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


def reasoning_question(rnd: random.Random) -> str:
    u = rnd.random()
    if u < 0.35:
        return _word_problem(rnd)
    if u < 0.55:
        return _logic(rnd)
    if u < 0.8:
        return _science_q(rnd)
    return _code_q(rnd)
