"""The miner: count n-grams, cover the prompts, number the templates.

:func:`mine_templates` drives the three parts (:mod:`.ngrams`, :mod:`.cover`, :mod:`.render`) over one
DuckDB connection and returns a :class:`TemplateMining`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

from engine.detect.templates.cover import CoverState, cover, label_templates
from engine.detect.templates.ngrams import InMemoryTexts, PromptTexts, WorkTables, count_ngrams
from engine.detect.templates.params import TemplateParams
from engine.detect.templates.render import Template

log = logging.getLogger(__name__)

__all__ = ["TemplateMining", "mine_templates"]


@dataclass(frozen=True)
class TemplateMining:
    """Result of :func:`mine_templates`.

    ``assignments`` is ``(prompt_ids, template_ids)``, both int64 and sorted by template id then
    prompt id; a prompt belongs to at most one template, and prompts in no template are absent.
    """

    templates: tuple[Template, ...]
    assignments: tuple[np.ndarray, np.ndarray]

    def members(self, template_id: int) -> np.ndarray:
        """Prompt ids (int64, sorted) assigned to ``template_id``; empty if unknown."""
        pids, tids = self.assignments
        lo = np.searchsorted(tids, template_id, side="left")
        hi = np.searchsorted(tids, template_id, side="right")
        return pids[lo:hi]

    def template(self, template_id: int) -> Template:
        """The template with this id (ids are 0..len-1 in order of ``templates``)."""
        return self.templates[template_id]


def mine_templates(
    prompt_ids: Sequence[int] | np.ndarray,
    texts: Sequence[str] | PromptTexts,
    params: TemplateParams | None = None,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> TemplateMining:
    """Mine prompt templates from normalised prompts.

    Args:
        prompt_ids: int64 id per prompt (unique).
        texts: normalised prompt text per prompt, parallel to ``prompt_ids``: a list, or a
            :class:`PromptTexts` that reads them on demand (a store at millions of prompts).
        params: thresholds and batch size (:class:`TemplateParams`; its defaults when None).
        weights: optional weight per prompt (e.g. number of exchanges), summed per template.
        con: DuckDB connection to work in (temporary tables, dropped afterwards); a private
            in-memory one otherwise.

    Returns:
        The templates, largest first, with ``template_id`` 0..k-1, and the assignment of prompts.
    """
    p = params if params is not None else TemplateParams()
    pids = np.asarray(prompt_ids, dtype=np.int64)
    if not isinstance(texts, PromptTexts):
        texts = InMemoryTexts(texts)
    if len(pids) != len(texts):
        raise ValueError(f"prompt_ids ({len(pids)}) and texts ({len(texts)}) differ in length")
    w = np.ones(len(pids)) if weights is None else np.asarray(weights, dtype=np.float64)
    empty = TemplateMining((), (np.empty(0, np.int64), np.empty(0, np.int64)))
    m = len(pids)
    if m < p.least_prompts:
        return empty

    db = duckdb.connect() if con is None else con
    tables = WorkTables.new(db)
    try:
        counts = count_ngrams(db, tables, texts, m, p.n, p.least_prompts, p.chunk_size)
        if counts.pairs is None:
            return empty
        state = CoverState(p, counts.pairs, counts.ntok, counts.text_hash, texts, db, tables)
        cover(state)
        label_templates(state)
        return _numbered(state, pids, w)
    finally:
        tables.drop(db)
        if con is None:
            db.close()


def _numbered(state: CoverState, pids: np.ndarray, w: np.ndarray) -> TemplateMining:
    """Templates renumbered largest first (ties by pattern), with their members' prompt ids."""
    found = state.found
    order = sorted(range(len(found)), key=lambda i: (-found[i].n, found[i].layout.pattern))
    remap = np.full(len(found) + 1, -1, dtype=np.int64)
    templates = []
    for new_id, i in enumerate(order):
        s = found[i]
        remap[i] = new_id
        rows_k = np.flatnonzero(state.assigned == i)
        templates.append(
            Template(
                template_id=new_id,
                pattern=s.layout.pattern,
                anchors=s.layout.anchors,
                n_prompts=len(rows_k),
                slot_diversity=s.diversity,
                kind=s.layout.kind,
                fixed_tokens=s.layout.fixed_tokens,
                fixed_ratio=s.fixed_ratio,
                weight=float(w[rows_k].sum()),
                start_anchored=s.start_frac,
                end_anchored=s.end_frac,
                example_prompt_id=int(pids[s.rep]),
            )
        )
    sel = np.flatnonzero(state.assigned >= 0)
    a_pid = pids[sel]
    a_tid = remap[state.assigned[sel]]
    o = np.lexsort((a_pid, a_tid))
    log.info("templates: %d templates cover %d of %d prompts", len(templates), len(sel), len(pids))
    return TemplateMining(tuple(templates), (a_pid[o], a_tid[o]))
