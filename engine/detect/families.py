"""Near-copy families from the self-join's edges, guarded against chaining.

Connected components of a near-copy graph chain: A~B, B~C, ..., Y~Z puts A and Z in one family though
they share nothing (a paraphrase walk). Families here are *stars* instead: prompts are visited by
decreasing degree (the most-copied text first); an unassigned prompt becomes a centre and takes every
unassigned neighbour. Every member is therefore a direct near-copy of its centre (cosine >= the scan
threshold), and two members are at worst two hops apart through the centre, never a chain. Prompts
with no edge are their own family (family_id = prompt_id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FamilyAssignment:
    """Per prompt (aligned with `prompt_ids`): its family id (the centre's prompt id) and similarity to it."""

    prompt_ids: np.ndarray  # int64 (n,)
    family_ids: np.ndarray  # int64 (n,)
    sim_to_center: np.ndarray  # float32 (n,), 1.0 for centres

    @property
    def n_families(self) -> int:
        return int(np.unique(self.family_ids).size)


def build_families(
    prompt_ids: np.ndarray, edge_a: np.ndarray, edge_b: np.ndarray, sims: np.ndarray,
    weights: np.ndarray | None = None,
) -> FamilyAssignment:
    """Star clustering over edges (a, b, sim); see module docstring.

    `prompt_ids` int64 (n,) every prompt; edges reference those ids. `weights` (n,) optionally breaks
    degree ties (e.g. exchange counts) so the most-sent variant becomes the centre.
    """
    prompt_ids = np.asarray(prompt_ids, np.int64)
    n = prompt_ids.size
    family = prompt_ids.copy()
    to_center = np.ones(n, np.float32)
    if n == 0 or len(edge_a) == 0:
        return FamilyAssignment(prompt_ids, family, to_center)
    order_ids = np.argsort(prompt_ids)
    sorted_ids = prompt_ids[order_ids]
    a = order_ids[np.searchsorted(sorted_ids, edge_a)]
    b = order_ids[np.searchsorted(sorted_ids, edge_b)]
    # Symmetric CSR adjacency over row positions.
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    sim = np.concatenate([sims, sims]).astype(np.float32)
    by_src = np.argsort(src, kind="stable")
    src, dst, sim = src[by_src], dst[by_src], sim[by_src]
    starts = np.searchsorted(src, np.arange(n + 1))
    degree = np.diff(starts)
    tie = np.zeros(n) if weights is None else np.asarray(weights, float)
    # Highest degree first; ties by weight, then by lowest id (deterministic).
    visit = np.lexsort((prompt_ids, -tie, -degree))
    assigned = degree == 0  # singletons keep themselves
    for node in visit:
        if assigned[node]:
            continue
        assigned[node] = True
        lo, hi = starts[node], starts[node + 1]
        nbrs = dst[lo:hi]
        free = ~assigned[nbrs]
        take = nbrs[free]
        family[take] = prompt_ids[node]
        to_center[take] = sim[lo:hi][free]
        assigned[take] = True
    log.info("families: %d prompts, %d edges -> %d families (%d with 2+ prompts)", n, len(edge_a),
             np.unique(family).size, int((np.bincount(np.unique(family, return_inverse=True)[1]) > 1).sum()))
    return FamilyAssignment(prompt_ids, family, to_center)
