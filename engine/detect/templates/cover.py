"""Cover: choosing the templates that cover the prompts, and which prompt each one holds.

Steps 3 and 4 of the miner (see the package docstring): a greedy cover over the n-gram classes,
largest class first, each candidate group validated before it takes its prompts; then label templates
("summarize: {0}") among the prompts no n-gram template took. The result is :class:`CoverState`'s
``assigned`` (a template index per prompt) and ``found`` (one :class:`Accepted` per template).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import duckdb
import numpy as np

from engine.detect.templates.ngrams import (
    AT_END,
    AT_START,
    ClassPairs,
    PromptTexts,
    WorkTables,
    class_positions,
)
from engine.detect.templates.params import TemplateParams
from engine.detect.templates.render import Layout, anchor_layout, label_layout

log = logging.getLogger(__name__)

__all__ = ["Accepted", "CoverState", "cover", "label_templates"]

# Nested splits stop at this depth; a group split this deep takes the closure of what is left.
_MAX_DEPTH = 8

# A class *frames* its prompts when at least this share of them start or end with it. A template is the
# frame around variable content ("you are a rater ... text: {0} answer with one label."); text that
# recurs in the middle of prompts is more often content (a boilerplate sentence, a code idiom, a
# passage reused under many instructions) than the instruction itself.
FRAME_SHARE = 0.5

# A field label opening a prompt: one to four words and a colon ("summarize:", "translate to french:",
# "question:"). Too short for the n-gram pass (a template needs min_fixed_tokens fixed tokens).
_LABEL_RE = re.compile(r"^\s*((?:[^\W\d_][\w'-]*[ \t]+){0,3}[^\W\d_][\w'-]*)[ \t]*:(?!//)")


@dataclass(frozen=True)
class Accepted:
    """A group that passed validation, before templates are numbered.

    ``n``: members; ``layout``: its text as read from ``rep`` (row of a member of median length);
    ``fixed_ratio``, ``diversity`` (distinct texts / members), ``start_frac`` and ``end_frac`` (share
    of members the fixed text starts, ends) as on :class:`~engine.detect.templates.render.Template`.
    """

    n: int
    layout: Layout
    fixed_ratio: float
    diversity: float
    start_frac: float
    end_frac: float
    rep: int


@dataclass(eq=False)
class CoverState:
    """Working state of one mining run: the (prompt, class) pairs and the greedy assignment.

    ``ntok``, ``text_hash``: int64 (m,) per prompt row (see :class:`~.ngrams.NgramCounts`);
    ``db`` and ``tables`` hold the class occurrences read back for each representative member.
    ``assigned``: int64 (m,), index into ``found`` of each prompt's template, -1 for none.
    ``stamp``/``stamp_no``: scratch membership marks for :meth:`take`.
    ``frames``: bool (C,), whether each class frames its prompts (see :data:`FRAME_SHARE`).
    """

    params: TemplateParams
    pairs: ClassPairs
    ntok: np.ndarray
    text_hash: np.ndarray
    texts: PromptTexts
    db: duckdb.DuckDBPyConnection
    tables: WorkTables
    assigned: np.ndarray = field(init=False)
    found: list[Accepted] = field(init=False, default_factory=list)
    stamp: np.ndarray = field(init=False)
    stamp_no: int = field(init=False, default=0)
    frames: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        m = len(self.ntok)
        self.assigned = np.full(m, -1, dtype=np.int64)
        self.stamp = np.zeros(m, dtype=np.int64)
        pairs = self.pairs
        anchored = np.bincount(pairs.cid, weights=pairs.ends > 0, minlength=len(pairs.df))
        self.frames = anchored >= FRAME_SHARE * np.maximum(pairs.df, 1)

    def take(self, c: int, members: np.ndarray, depth: int) -> None:
        """Make a template of core class ``c`` over ``members`` (unassigned prompts holding ``c``).

        First split off nested, more specific templates: classes whose prompts lie (almost) all
        inside this group but cover only part of it, e.g. the unique text of one of several
        sibling templates that share a long preamble. Content reused by a few prompts across
        templates is not nested in any one of them, so it does not split a template.
        """
        p, pairs = self.params, self.pairs
        idx, owner = pairs.gather(members)
        cids = pairs.cid[idx]
        u, cnt = np.unique(cids, return_counts=True)
        closure_min = p.closure_share * len(members)
        if depth < _MAX_DEPTH:
            sub = (cnt < closure_min) & (cnt >= p.least_prompts) & (cnt >= p.nested_share * pairs.df[u])
            # Split only when the nested classes together cover (almost) the whole group, as
            # sibling templates do; a nested class over part of the group with nothing specific
            # in the rest is an optional phrase of one template.
            if sub.any():
                covered = np.unique(owner[np.isin(cids, u[sub])])
                if len(covered) < closure_min:
                    sub[:] = False
            # Membership by stamp, not np.intersect1d: the sort inside intersect1d was a fifth of
            # the miner's time at a million prompts. A nested call stamps its own members, so they
            # are stamped back after it.
            self.stamp_no += 1
            token = self.stamp_no
            self.stamp[members] = token
            for d in u[sub][np.argsort(-cnt[sub], kind="stable")]:
                rows_d = pairs.rows_of(int(d))
                md = rows_d[(self.assigned[rows_d] < 0) & (self.stamp[rows_d] == token)]
                if len(md) >= p.least_prompts:
                    self.take(int(d), md, depth + 1)
                    self.stamp[md] = token
            rest = members[self.assigned[members] < 0]
            if len(rest) < len(members):
                if len(rest) >= p.least_prompts:
                    self.take(c, rest, depth=_MAX_DEPTH)  # closure on what is left; no second split
                return
        self._accept(c, members, idx, owner, u[cnt >= closure_min])

    def _accept(
        self, c: int, members: np.ndarray, idx: np.ndarray, owner: np.ndarray, closure: np.ndarray
    ) -> None:
        """Validate the group and record it as a template when it passes."""
        p, pairs = self.params, self.pairs
        distinct = len(np.unique(self.text_hash[members]))
        if distinct < p.least_distinct:
            return
        in_cl = np.isin(pairs.cid[idx], closure)
        # Reused content (one passage under many templates) also shares long text, but then most
        # members also hold some bigger multi-n-gram text outside the group that frames them: their
        # real template. Bigger text in the middle of prompts is content too, not a template.
        other = pairs.cid[idx][~in_cl]
        bigger = (pairs.df[other] >= 2 * len(members)) & (pairs.nng[other] >= 2) & self.frames[other]
        if len(np.unique(owner[~in_cl][bigger])) >= 0.5 * len(members):
            log.debug("templates: reject (content) n=%d core=%d", len(members), c)
            return
        # A member starts (ends) with the template when one of its closure classes starts (ends) it.
        ends = pairs.ends[idx][in_cl]
        at_start = np.zeros(len(members), dtype=bool)
        at_end = np.zeros(len(members), dtype=bool)
        at_start[owner[in_cl][(ends & AT_START) > 0]] = True
        at_end[owner[in_cl][(ends & AT_END) > 0]] = True
        start_frac = float(np.mean(at_start))
        end_frac = float(np.mean(at_end))
        # Representative: a member of median length, so slots show typical content.
        lens = self.ntok[members]
        rep = int(members[np.argsort(lens, kind="stable")[len(lens) // 2]])
        pos = class_positions(self.db, self.tables, rep, closure)
        covered = np.unique((pos[:, None] + np.arange(p.n)[None, :]).ravel())
        layout = anchor_layout(self.texts.text(rep), covered)
        fixed = layout.fixed_tokens
        # Longest anchor in tokens: runs of consecutive covered positions.
        runs = np.split(covered, np.flatnonzero(np.diff(covered) != 1) + 1) if len(covered) else []
        longest = max((len(r) for r in runs), default=0)
        fixed_ratio = fixed / max(1.0, float(lens.mean()))
        floating = len(layout.anchors) == 1 and start_frac < 0.9 and end_frac < 0.9
        reason = None
        if fixed < p.min_fixed_tokens:
            reason = "fixed"
        elif floating and fixed < p.least_floating_fixed:
            reason = "floating"
        elif longest < p.least_anchor_tokens:
            reason = "short anchors"
        elif p.max_fixed_ratio is not None and fixed_ratio > p.max_fixed_ratio:
            reason = "ratio"
        if reason is not None:
            log.debug("templates: reject (%s) n=%d fixed=%d: %.100s", reason, len(members), fixed,
                      layout.pattern)
            return
        self.assigned[members] = len(self.found)
        self.found.append(Accepted(
            n=len(members), layout=layout, fixed_ratio=fixed_ratio, diversity=distinct / len(members),
            start_frac=start_frac, end_frac=end_frac, rep=rep,
        ))


def cover(state: CoverState) -> None:
    """The greedy cover: every class held by enough unassigned prompts tries a template.

    Classes that frame their prompts (:data:`FRAME_SHARE`) go first, then the rest; within each,
    largest postings first: template text occurs in every member, so it precedes content reused by a
    few prompts; more specific sibling templates are split off inside :meth:`CoverState.take`. Frames
    go first because size alone puts recurring content ahead of the instruction around it: a
    sentence that thousands of users paste would otherwise take every prompt holding it, wrapped
    instructions included, and the wrapper (a campaign's template) would never form.
    """
    least, pairs = state.params.least_prompts, state.pairs
    cand = np.flatnonzero(pairs.df >= least)
    cand = cand[np.lexsort((cand, -pairs.nng[cand], -pairs.df[cand], ~state.frames[cand]))]
    for c in cand:
        rows_c = pairs.rows_of(int(c))
        members = rows_c[state.assigned[rows_c] < 0]
        if len(members) >= least:
            state.take(int(c), members, depth=0)


def label_templates(state: CoverState) -> None:
    """Label templates among the prompts no n-gram template took: ``"summarize: {0}"``.

    A one-word instruction in front of a long variable text is the shortest template there is
    (T0's ``xsum_summarize_DOC``). Its fixed text is too short for the n-gram pass, and organic
    users type such labels too, so these are recorded with ``kind="label"`` and low specificity:
    they never link accounts by mere shared use; only a significant excess of accounts that send
    them intensely does (:mod:`engine.detect.links`). A group needs ``least_prompts`` members,
    ``least_distinct`` distinct texts and on average ``min_label_content`` tokens after the label
    (0 turns the pass off).
    """
    p = state.params
    if p.min_label_content <= 0:
        return
    groups: dict[str, list[int]] = {}
    c0 = 0
    for chunk in state.texts.chunks(p.chunk_size):
        for r in np.flatnonzero(state.assigned[c0 : c0 + len(chunk)] < 0).tolist():
            m = _LABEL_RE.match(chunk[r])
            if m:
                groups.setdefault(" ".join(m.group(1).split()), []).append(c0 + r)
        c0 += len(chunk)
    for label, rows in sorted(groups.items()):
        if len(rows) < p.least_prompts:
            continue
        members = np.asarray(rows, dtype=np.int64)
        distinct = len(np.unique(state.text_hash[members]))
        layout = label_layout(label)
        fixed = layout.fixed_tokens
        if distinct < p.least_distinct or float(state.ntok[members].mean()) - fixed < p.min_label_content:
            continue
        lens = state.ntok[members]
        rep = int(members[np.argsort(lens, kind="stable")[len(lens) // 2]])
        state.assigned[members] = len(state.found)
        state.found.append(Accepted(
            n=len(members), layout=layout, fixed_ratio=fixed / max(1.0, float(lens.mean())),
            diversity=distinct / len(members), start_frac=1.0, end_frac=0.0, rep=rep,
        ))
