"""Tests for index.tiles: the cap per owner and the trimming of heavy rows before it."""

from __future__ import annotations

import numpy as np

from index.tiles import _TRIM_LEVELS, _top_per_owner, cap_per_owner, trim_heavy_rows


def test_cap_keeps_top_k_per_owner_with_ties_by_other() -> None:
    """The packed-key sort and the lexsort fallback pick the same pairs, ties by ascending other."""
    rng = np.random.default_rng(9)
    owner = rng.integers(0, 50, 20_000)
    other = rng.integers(0, 5_000, 20_000)
    # Few distinct similarities, so most of the cut falls inside runs of ties.
    sim = rng.choice(np.array([0.55, 0.8, 0.9, 0.93, 1.0, 1.0000001], np.float32), 20_000)
    want = set()
    for o in range(50):
        mine = np.flatnonzero(owner == o)
        order = sorted(mine, key=lambda i: (-float(sim[i]), int(other[i])))[:7]
        want |= {(o, int(other[i]), float(sim[i])) for i in order}
    packed = _top_per_owner(owner, other, sim, 7)
    fallback = _top_per_owner(owner, other + (1 << 24), sim, 7)  # other too large to pack
    assert {(int(o), int(w), float(s)) for o, w, s in zip(*packed, strict=True)} == want
    assert {(int(o), int(w) - (1 << 24), float(s)) for o, w, s in zip(*fallback, strict=True)} == want
    assert packed[2].dtype == np.float32


def test_trimming_heavy_rows_keeps_the_capped_edges() -> None:
    """Rows owning more pairs than the cap are cut at a level first; the exact cap then picks the same."""
    rng = np.random.default_rng(11)
    thr, k = np.float32(0.76), 20
    # Rows from sparse to saturated, with runs of tied similarities near 1 (copies of copies), some
    # exactly on a cut level.
    sim = rng.uniform(0.5, 1.0, (300, 900)).astype(np.float32)
    on_level = np.float32(thr + (1.0 - thr) * _TRIM_LEVELS[-2])
    sim[:100] = np.where(rng.random((100, 900)) < 0.03, on_level, sim[:100])
    sim[:50] = np.where(rng.random((50, 900)) < 0.5, np.float32(0.999), sim[:50])
    sim[100:150] = np.float32(1.0)
    owned = (sim >= thr) & (rng.random(sim.shape) < np.linspace(0.01, 1.0, 300)[:, None])
    base = cap_per_owner(*_pairs(owned, sim), k, 0, owned.shape[0])
    trimmed = owned.copy()
    trim_heavy_rows(trimmed, sim, thr, k)
    assert trimmed.sum() < owned.sum() and not (trimmed & ~owned).any()
    got = cap_per_owner(*_pairs(trimmed, sim), k, 0, owned.shape[0])
    assert sorted(zip(*map(np.ndarray.tolist, base), strict=True)) == sorted(
        zip(*map(np.ndarray.tolist, got), strict=True))


def _pairs(mask: np.ndarray, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    qi, ci = np.nonzero(mask)
    return qi.astype(np.int64), ci.astype(np.int64), sim[qi, ci]
