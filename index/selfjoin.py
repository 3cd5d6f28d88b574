"""All-pairs near-copy join: every pair of prompts with cosine >= threshold.

:func:`self_join` streams the result as :class:`EdgeBlock` objects. Blocks are
numbered ``0, 1, ...`` deterministically (given the same inputs, parameters
and seed), every pair appears in exactly one block, and every block is
yielded, even an empty one, so a caller can persist each block, record its
``block_no`` as a checkpoint and later resume with ``start_block=block_no+1``.

Two strategies, each in a module of its own:

``exact`` (:mod:`index.tiles`)
    Each row is compared with every later row, in tiles of bounded size; cost ``~ n^2 * d`` flops.

``ivf`` (:mod:`index.plan` partitions, :mod:`index.ivfjoin` joins)
    Each of ``nlist`` k-means lists is compared with the ``nprobe`` lists nearest it, plus vectors
    spilled into those lists and, per vector, its own nearest lists (:class:`~index.settings.JoinSettings`);
    exactly one side emits each pair found. Recall is approximate: a pair is missed when neither side
    compares it.

Every block depends only on the shared inputs and its number, so a ``mapper`` may compute the blocks
anywhere (a cluster's parallel map) and gets the same blocks.

``max_neighbors`` (optional) bounds the output on pathological data such as
thousands of identical prompts (which would otherwise give a quadratic number
of edges): each vector keeps only its ``max_neighbors`` most similar *owned*
pairs (ties broken by input order). With point probes it keeps that many
in its own list's pass and again as many over its point-probe passes
together (each keeps ``ceil(max_neighbors / p)``). The total number of
edges is then at most ``n * max_neighbors`` (twice that with point probes),
but a vector can still appear in more edges (owned by others). Within a
group of mutual copies every vector keeps an edge to a later member, so the
group stays connected for union-find/connected-components.

Input vectors are float32 or float16 ``(n, d)`` arrays (an ``np.memmap`` is
fine: rows are converted to float32 one tile at a time). Vectors should be
L2-normalised; the join uses the raw inner product.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Literal

import numpy as np

from index.build import EXACT_MAX
from index.ivfjoin import ivf_block
from index.plan import plan_ivf
from index.settings import DEFAULT_JOIN, JoinSettings
from index.tiles import DEFAULT_BLOCK_SIZE, EdgeBlock, check_inputs, exact_block

__all__ = ["local_map", "self_join"]

log = logging.getLogger(__name__)


def local_map(func, shared: tuple, blocks: range) -> Iterator[EdgeBlock]:
    """Compute the blocks one after another in this process (the default ``mapper``)."""
    for blk in blocks:
        yield func(shared, blk)


def self_join(
    vectors: np.ndarray,
    ids: np.ndarray,
    threshold: float,
    *,
    method: Literal["auto", "exact", "ivf"] = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
    start_block: int = 0,
    nlist: int | None = None,
    settings: JoinSettings = DEFAULT_JOIN,
    max_neighbors: int | None = None,
    seed: int = 0,
    mapper=local_map,
    centroids: np.ndarray | None = None,
) -> Iterator[EdgeBlock]:
    """Yield all pairs of rows whose inner product is ``>= threshold``.

    ``vectors``: float32/float16 ``(n, d)`` (may be an ``np.memmap``);
    ``ids``: unique int64 ``(n,)`` prompt ids, one per row. Yields
    :class:`EdgeBlock` objects numbered from ``start_block``; every pair
    ``(a, b)``, ``a < b``, appears in exactly one block of a full run.

    ``method="auto"`` uses ``exact`` up to :data:`~index.build.EXACT_MAX`
    vectors and ``ivf`` above. ``block_size`` is the number of rows per block
    (exact) or the approximate number of vectors per block (ivf); it sets the
    checkpoint granularity, not the memory use. ``nlist`` (default
    :func:`default_nlist`), ``settings`` and ``seed`` only affect ``ivf``; to
    resume an ivf join pass the same values. ``max_neighbors`` caps the
    edges each vector owns (see module docstring). ``mapper(func, shared,
    blocks)`` computes ``func(shared, blk)`` for each block number and yields
    the blocks in order: :func:`local_map` here, or a cluster's parallel map
    (every block depends only on ``shared`` and its number, so any mapper
    gives the same blocks). ``centroids`` (``ivf`` only): lists to use instead
    of k-means (see :func:`plan_ivf`). ``settings`` (``ivf`` only,
    :class:`~index.settings.JoinSettings`): ``nprobe``; ``spill``, the margin
    within which a vector is also a candidate in its second-nearest list
    (:mod:`index.ivfjoin`); ``max_list``, lists with more members are split
    (:func:`plan_ivf`); ``point_probes``, each vector is also compared with its
    own nearest lists (:mod:`index.ivfjoin`).

    Arguments are validated (and for ``ivf`` the k-means plan is computed)
    when this function is called; the tiles are computed lazily as blocks are
    consumed.
    """
    ids = check_inputs(vectors, ids)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if start_block < 0:
        raise ValueError(f"start_block must be >= 0, got {start_block}")
    if max_neighbors is not None and max_neighbors < 1:
        raise ValueError(f"max_neighbors must be >= 1 or None, got {max_neighbors}")
    if method == "auto":
        method = "exact" if vectors.shape[0] <= EXACT_MAX else "ivf"
    thr = np.float32(threshold)
    if method == "exact":
        nblocks = math.ceil(vectors.shape[0] / block_size)
        _check_start(start_block, nblocks)
        log.info("self-join exact: n=%d, %d blocks of %d rows", vectors.shape[0], nblocks, block_size)
        return mapper(exact_block, (vectors, ids, thr, block_size, max_neighbors), range(start_block, nblocks))
    if method == "ivf":
        plan = plan_ivf(vectors, settings=settings, nlist=nlist, block_size=block_size, seed=seed,
                        centroids=centroids)
        _check_start(start_block, plan.nblocks)
        log.info("self-join ivf: n=%d, nlist=%d, nprobe=%d, spill %.3f (%d vectors), point probes %d, %d blocks",
                 vectors.shape[0], plan.nlist, plan.probe.shape[1], settings.spill, len(plan.spill_order),
                 settings.point_probes, plan.nblocks)
        return mapper(ivf_block, (vectors, ids, thr, plan, max_neighbors), range(start_block, plan.nblocks))
    raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")


def _check_start(start_block: int, nblocks: int) -> None:
    # start_block == nblocks is a resume after the last block: nothing left.
    if start_block > nblocks:
        raise ValueError(f"start_block={start_block} beyond the {nblocks} blocks of this join")
