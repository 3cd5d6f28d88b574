"""Tests for index.search: k-NN and threshold search on Flat and IVF,SQ8."""

from __future__ import annotations

import numpy as np
import pytest

from index import (
    IndexMismatchError,
    RangeResult,
    add,
    knn,
    make_index,
    range_search,
    set_search_params,
    train,
)


def _brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, thr: float) -> list[set[int]]:
    s = q @ x.T
    return [set(ids[row >= np.float32(thr)].tolist()) for row in s]


def test_range_search_flat_equals_brute_force(make_clustered) -> None:
    x, ids = make_clustered(3000, 64, clusters=20)
    index = make_index(64, "IDMap2,Flat")
    add(index, x, ids)
    q = x[:400]
    for thr in (0.5, 0.8, 0.95):
        res = range_search(index, q, thr, batch=128)  # several batches
        assert res.lims.shape == (401,) and res.lims.dtype == np.int64
        assert res.sims.dtype == np.float32 and res.ids.dtype == np.int64
        assert (res.sims >= np.float32(thr)).all()
        expected = _brute(x, ids, q, thr)
        for i in range(400):
            got_ids, got_sims = res.for_query(i)
            got = set(got_ids.tolist())
            # Only pairs within float rounding of the threshold may differ.
            for pid in got ^ expected[i]:
                s = float(x[ids == pid][0] @ q[i])
                assert abs(s - thr) < 1e-5, (i, pid, s)
            assert np.all(np.diff(got_sims) <= 0)  # descending


def test_range_result_for_query() -> None:
    res = RangeResult(
        lims=np.array([0, 3, 3], np.int64),
        sims=np.array([0.5, 0.9, 0.7], np.float32),
        ids=np.array([1, 2, 3], np.int64),
    )
    assert res.nq == 2
    ids, sims = res.for_query(0)
    assert ids.tolist() == [2, 3, 1] and sims.tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert res.for_query(1)[0].size == 0
    assert res.counts().tolist() == [3, 0]
    with pytest.raises(IndexError):
        res.for_query(2)


def test_knn_flat_and_padding() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = make_index(16, "IDMap2,Flat")
    add(index, x, np.arange(10, dtype=np.int64) + 100)
    sims, ids = knn(index, x, 12, batch=3)
    assert sims.shape == ids.shape == (10, 12)
    assert ids[:, 0].tolist() == list(range(100, 110))
    assert (ids[:, 10:] == -1).all()  # fewer than k vectors: padded
    assert np.all(np.diff(sims[:, :10], axis=1) <= 0)
    with pytest.raises(IndexMismatchError):
        knn(index, np.zeros((2, 8), np.float32), 1)
    with pytest.raises(IndexMismatchError):
        range_search(index, np.zeros((2, 8), np.float32), 0.5)


def test_ivf_sq8_recall(make_clustered) -> None:
    d, thr = 384, 0.9
    x, ids = make_clustered(30_000, d, clusters=100)
    exact = make_index(d, "IDMap2,Flat")
    add(exact, x, ids)
    ivf = make_index(d, "IVF256,SQ8")
    train(ivf, x[::3])
    add(ivf, x, ids)
    set_search_params(ivf, 16)

    # Threshold search: recall against the exact index, over the hits other
    # than the query itself (mostly planted near-copies).
    q = x[:3000]
    want = range_search(exact, q, thr)
    got = range_search(ivf, q, thr)
    hits = total = 0
    for i in range(q.shape[0]):
        w = set(want.for_query(i)[0].tolist()) - {int(ids[i])}
        hits += len(w & set(got.for_query(i)[0].tolist()))
        total += len(w)
    assert total > 200
    assert hits / total >= 0.95

    # k-NN recall@10 on arbitrary queries.
    qk = x[::30]
    _, want_k = knn(exact, qk, 10)
    _, got_k = knn(ivf, qk, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want_k, got_k, strict=True)])
    assert recall >= 0.95
