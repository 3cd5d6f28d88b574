"""Shared fixtures for the ``index`` package tests: synthetic embeddings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

Maker = Callable[..., tuple[np.ndarray, np.ndarray]]


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(
    n: int,
    d: int = 384,
    *,
    clusters: int = 50,
    spread: float = 1.0,
    copy_frac: float = 0.05,
    copy_noise: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors with planted near-copies, and shuffled unique ids.

    Points in a cluster have cosine ~ 1/(1+spread) to each other; a planted
    copy is a noisy version of another point with cosine ~ 1 - copy_noise^2/2.
    Returns float32 ``(n, d)`` and int64 ``(n,)``.
    """
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.standard_normal((clusters, d)))
    labels = rng.integers(0, clusters, n)
    x = centres[labels] + rng.standard_normal((n, d)).astype(np.float32) * np.sqrt(spread / d)
    x = _normalise(x)
    m = int(n * copy_frac)
    if m:
        src = rng.integers(0, n, m)
        dst = rng.choice(n, m, replace=False)
        x[dst] = x[src] + rng.standard_normal((m, d)).astype(np.float32) * copy_noise / np.sqrt(d)
        x = _normalise(x)
    ids = rng.permutation(10 * n + 10)[:n].astype(np.int64) + 1_000
    return x, ids


@pytest.fixture
def make_clustered() -> Maker:
    """The :func:`clustered_vectors` generator, for tests that need data."""
    return clustered_vectors


def pair_set(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    """Unordered id pairs as a set of ``(min, max)`` tuples."""
    return set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))


@pytest.fixture
def pairs_of() -> Callable[[np.ndarray, np.ndarray], set[tuple[int, int]]]:
    """The :func:`pair_set` helper."""
    return pair_set
