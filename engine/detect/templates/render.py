"""Render: a template's text with numbered slots, read from one example member.

Step 5 of the miner (see the package docstring): a template's anchors are the maximal runs of fixed
tokens in one representative member, cut from its original string, and the pattern puts a numbered
slot wherever the member's tokens are not fixed. :class:`Template` is the rendered result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.detect.templates.ngrams import TOKEN_RE, tokenize

__all__ = ["Layout", "Template", "anchor_layout", "label_layout"]


@dataclass(frozen=True)
class Template:
    """One mined prompt template.

    ``pattern`` is the fixed text with numbered slots, e.g.
    ``"given the passage: {0} answer the question: {1}"``; literal braces in the fixed text are
    doubled so ``pattern.format(*fillings)`` rebuilds a prompt. Anchors and slot layout come
    from one representative member (``example_prompt_id``).

    ``slot_diversity`` is the number of distinct prompt texts divided by ``n_prompts``: all
    members share the fixed text, so distinct texts means distinct slot fillings. 1.0 means every
    filling is different; a family of exact copies scores ``1 / n_prompts``.

    ``kind`` describes the slot layout: ``"label"`` (a short field label such as ``"summarize:"``
    then one slot; see :func:`engine.detect.templates.cover.label_templates`), ``"prefix"`` (fixed
    text then one slot), ``"suffix"`` (one slot then fixed text), ``"wrapper"`` (fixed, slot, fixed),
    ``"infix"`` (slot, fixed, slot) or ``"multi"`` (two or more slots in another layout).

    ``fixed_ratio`` is fixed tokens / mean tokens per member: near 1 means near-copies with a small
    variable part, near 0 means a short anchor in long prompts (a common phrase looks like that
    too, so the caller should weigh it with the accounts involved).
    """

    template_id: int
    pattern: str
    anchors: tuple[str, ...]
    n_prompts: int
    slot_diversity: float
    kind: str
    fixed_tokens: int = 0
    fixed_ratio: float = 0.0
    weight: float = 0.0
    start_anchored: float = 0.0
    end_anchored: float = 0.0
    example_prompt_id: int = -1


@dataclass(frozen=True)
class Layout:
    """A template's text as read from one member: ``anchors`` (fixed text, in order), ``pattern``
    (anchors and ``{0}``, ``{1}``... slots), ``kind`` (see :class:`Template`) and ``fixed_tokens``."""

    anchors: tuple[str, ...]
    pattern: str
    kind: str
    fixed_tokens: int


# Slot layouts with a name of their own; "A" is an anchor, "S" a slot.
_KINDS = {"AS": "prefix", "SA": "suffix", "ASA": "wrapper", "SAS": "infix"}


def _literal(text: str) -> str:
    """Fixed text as it reads inside a ``str.format`` pattern (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def anchor_layout(text: str, covered_tokens: np.ndarray) -> Layout:
    """Anchors, pattern and kind of one member, given which of its tokens are fixed.

    ``covered_tokens``: int64 token positions of the fixed text (positions past the end are ignored).
    Anchor text is cut from the original string (token spans) so spacing and punctuation read as
    written rather than as space-joined tokens.
    """
    spans = [(mt.start(), mt.end()) for mt in TOKEN_RE.finditer(text)]
    n = len(spans)
    cov = np.zeros(n, dtype=bool)
    cov[covered_tokens[covered_tokens < n]] = True
    anchors: list[str] = []
    parts: list[str] = []
    slots = 0
    layout: list[str] = []  # "A" for an anchor, "S" for a slot, in order
    i = 0
    while i < n:
        j = i
        while j < n and cov[j] == cov[i]:
            j += 1
        if cov[i]:
            seg = text[spans[i][0] : spans[j - 1][1]]
            anchors.append(seg)
            parts.append(_literal(seg))
            layout.append("A")
        else:
            parts.append("{" + str(slots) + "}")
            slots += 1
            layout.append("S")
        i = j
    lay = "".join(layout)
    kind = _KINDS.get(lay, "fixed" if slots == 0 else "multi")
    return Layout(tuple(anchors), " ".join(parts), kind, int(cov.sum()))


def label_layout(label: str) -> Layout:
    """The layout of a label template: ``label`` (words, no colon) then a colon and one slot."""
    anchor = f"{label}:"
    return Layout((anchor,), _literal(anchor) + " {0}", "label", len(tokenize(label)) + 1)
