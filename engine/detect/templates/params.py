"""The miner's tuning: one frozen value instead of a dozen loose arguments.

The fields keep what the caller gave (``None`` means "derive it"); the properties below them are the
values the miner applies, so a default is worked out in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TemplateParams"]


@dataclass(frozen=True)
class TemplateParams:
    """Thresholds and batch size of :func:`engine.detect.templates.mine_templates`.

    Attributes:
        min_prompts: least number of prompts a template must hold; also the least number of
            prompts an n-gram must occur in to count as possibly fixed text (at least 2 is applied).
        min_fixed_tokens: least number of fixed tokens a template must have.
        max_fixed_ratio: when set, drop templates whose fixed part exceeds this share of the
            member's tokens (they are near-copies rather than templates).
        ngram: n-gram length used to find fixed text; default ``max(2, min_fixed_tokens)``. Anchors
            shorter than this are not seen.
        min_distinct: least number of distinct prompt texts (distinct slot fillings) among the
            members; default ``max(2, min_prompts // 2)``. A family of exact copies fails it, a
            template whose contents repeat (five questions on one passage) passes.
        closure_share: an n-gram is part of a template's fixed text when at least this share of
            the members hold it (so an optional phrase does not split a template).
        min_anchor_tokens: the longest anchor must have at least this many tokens (default
            ``ngram + 2``): a few common bits such as "it's" and "i don't" that happen to co-occur
            in some prompts, or a stock opener such as "generate a list of", are not a template.
        nested_share: a class splits off as a more specific template when at least this share of
            its prompts lie inside the group being formed.
        floating_min_fixed_tokens: fixed tokens required from a template with a single anchor
            that is neither at the start nor the end of most members (default
            ``2 * min_fixed_tokens``): short phrases such as "can you please help me" float
            anywhere in organic prompts, so a floating anchor must be longer to be specific.
        min_label_content: mean tokens after the label a *label template* needs (see
            :func:`engine.detect.templates.cover.label_templates`); 0 turns label templates off.
        chunk_size: prompts tokenised per batch (bounds Python-side memory).
    """

    min_prompts: int = 20
    min_fixed_tokens: int = 4
    max_fixed_ratio: float | None = None
    ngram: int | None = None
    min_distinct: int | None = None
    closure_share: float = 0.9
    min_anchor_tokens: int | None = None
    nested_share: float = 0.9
    floating_min_fixed_tokens: int | None = None
    min_label_content: int = 8
    chunk_size: int = 100_000

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("ngram must be >= 1")

    @property
    def n(self) -> int:
        """N-gram length in tokens."""
        return int(self.ngram if self.ngram is not None else max(2, self.min_fixed_tokens))

    @property
    def least_prompts(self) -> int:
        """``min_prompts`` as applied: a template of one prompt is no template."""
        return max(2, int(self.min_prompts))

    @property
    def least_distinct(self) -> int:
        """``min_distinct`` with its default filled in."""
        return int(self.min_distinct if self.min_distinct is not None else max(2, self.least_prompts // 2))

    @property
    def least_anchor_tokens(self) -> int:
        """``min_anchor_tokens`` with its default filled in."""
        return int(self.min_anchor_tokens if self.min_anchor_tokens is not None else self.n + 2)

    @property
    def least_floating_fixed(self) -> int:
        """``floating_min_fixed_tokens`` with its default filled in."""
        if self.floating_min_fixed_tokens is not None:
            return int(self.floating_min_fixed_tokens)
        return int(2 * self.min_fixed_tokens)
