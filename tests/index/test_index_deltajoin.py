"""The join of new vectors against all (`index.delta_join`): the pairs a full join adds, each once."""

from __future__ import annotations

import numpy as np
import pytest

import index as faiss_index
from index import brute_force_pairs, delta_join


def _collect(blocks) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    blocks = list(blocks)

    def cat(k: str) -> np.ndarray:
        return np.concatenate([getattr(b, k) for b in blocks]) if blocks else np.empty(0)

    return cat("a"), cat("b"), cat("sim"), [b.block_no for b in blocks]


def _index(x: np.ndarray, ids: np.ndarray, factory: str) -> object:
    idx = faiss_index.make_index(x.shape[1], factory)
    if not idx.is_trained:
        faiss_index.train(idx, x[: len(x) * 2 // 3])
    faiss_index.add(idx, x, ids)
    return idx


def _new_pairs(x, ids, new, thr, pairs_of):
    """Brute force: every pair at or above ``thr`` with at least one new vector."""
    ref = brute_force_pairs(x, ids, thr)
    fresh = set(ids[new].tolist())
    keep = np.array([a in fresh or b in fresh for a, b in zip(ref.a.tolist(), ref.b.tolist(), strict=True)], bool)
    return pairs_of(ref.a[keep], ref.b[keep]), ref


def test_flat_index_gives_exactly_the_new_pairs(make_clustered, pairs_of) -> None:
    x, ids = make_clustered(3000, 64, clusters=10, spread=0.6)
    new = np.zeros(len(ids), bool)
    new[np.random.default_rng(1).choice(len(ids), 400, replace=False)] = True
    want, _ = _new_pairs(x, ids, new, 0.7, pairs_of)
    a, b, s, nos = _collect(delta_join(x, ids, new, 0.7, _index(x, ids, "IDMap2,Flat"), block_size=128))
    assert nos == list(range(4))  # 400 new vectors in blocks of 128, numbered from 0
    assert len(want) > 300 and pairs_of(a, b) == want
    assert len(pairs_of(a, b)) == len(a), "a pair came out twice"
    assert np.all(a < b) and np.all(s >= np.float32(0.7))
    # Each similarity is the vectors' own product.
    pos = {int(i): k for k, i in enumerate(ids.tolist())}
    exact = np.einsum("ij,ij->i", x[[pos[i] for i in a.tolist()]], x[[pos[i] for i in b.tolist()]])
    assert np.allclose(s, exact, atol=1e-6)


def test_ivf_index_finds_nearly_all_new_pairs_and_no_false_ones(make_clustered, pairs_of) -> None:
    x, ids = make_clustered(12_000, 384, clusters=40)
    new = np.zeros(len(ids), bool)
    new[-1500:] = True
    want, _ = _new_pairs(x, ids, new, 0.8, pairs_of)
    idx = _index(x, ids, "IVF128,SQ8")
    a, b, s, _ = _collect(delta_join(x, ids, new, 0.8, idx, probes=16))
    got = pairs_of(a, b)
    assert len(want) > 100
    assert len(got & want) / len(want) >= 0.99
    assert got <= want, "a pair below the threshold or between two old vectors"
    assert len(got) == len(a)


def test_resume_gives_the_remaining_blocks(make_clustered) -> None:
    x, ids = make_clustered(2000, 32, clusters=5, spread=0.5)
    new = np.arange(len(ids)) % 3 == 0
    idx = _index(x, ids, "IDMap2,Flat")
    whole = list(delta_join(x, ids, new, 0.8, idx, block_size=100))
    tail = list(delta_join(x, ids, new, 0.8, idx, block_size=100, start_block=4))
    assert [b.block_no for b in tail] == [b.block_no for b in whole[4:]]
    for got, want in zip(tail, whole[4:], strict=True):
        assert np.array_equal(got.a, want.a) and np.array_equal(got.b, want.b)


def test_the_cap_keeps_each_new_vectors_most_similar_pairs() -> None:
    rng = np.random.default_rng(0)
    base = rng.standard_normal(16).astype(np.float32)
    x = base + 0.01 * rng.standard_normal((50, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(50, dtype=np.int64)
    new = ids >= 40
    a, b, s, _ = _collect(delta_join(x, ids, new, 0.5, _index(x, ids, "IDMap2,Flat"), max_neighbors=5))
    owner = np.where(np.isin(a, ids[new]) & (~np.isin(b, ids[new]) | (a < b)), a, b)
    assert np.bincount(owner).max() == 5


def test_validation(make_clustered) -> None:
    x, ids = make_clustered(100, 16, clusters=2)
    idx = _index(x, ids, "IDMap2,Flat")
    with pytest.raises(ValueError, match="bool array"):
        delta_join(x, ids, np.ones(5, bool), 0.8, idx)
    with pytest.raises(ValueError, match="start_block"):
        delta_join(x, ids, np.ones(100, bool), 0.8, idx, block_size=50, start_block=3)
    with pytest.raises(ValueError, match="probes"):
        delta_join(x, ids, np.ones(100, bool), 0.8, idx, probes=0)


def test_dense_and_sparse_ids_give_the_same_pairs(make_clustered, pairs_of) -> None:
    """Ids from a sequence map to rows through a table, scattered ids through a search: same pairs."""
    x, sparse = make_clustered(1500, 32, clusters=5, spread=0.5)
    order = np.argsort(sparse)
    x, sparse = x[order], sparse[order]
    dense = np.arange(1, len(sparse) + 1, dtype=np.int64)
    new = np.arange(len(x)) % 4 == 0
    got = {}
    for name, ids in (("sparse", sparse), ("dense", dense)):
        a, b, _, _ = _collect(delta_join(x, ids, new, 0.8, _index(x, ids, "IDMap2,Flat"), block_size=100))
        to_row = {int(i): r for r, i in enumerate(ids.tolist())}
        got[name] = {(to_row[p], to_row[q]) for p, q in pairs_of(a, b)}
    assert got["sparse"] == got["dense"] and len(got["dense"]) > 50
