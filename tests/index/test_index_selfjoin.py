"""Tests for index.selfjoin: exact and IVF near-copy joins, resume, capping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import EdgeBlock, JoinSettings, brute_force_pairs, plan_ivf, self_join


def _ivf(nprobe: int = 8, **kw) -> JoinSettings:
    """The plain IVF join unless a test asks for more: no spill, no point probes, no list bound."""
    return JoinSettings(nprobe=nprobe, **{"spill": 0.0, "point_probes": 0, **kw})


def _collect(blocks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blocks = list(blocks)
    a = np.concatenate([b.a for b in blocks]) if blocks else np.empty(0, np.int64)
    b = np.concatenate([b.b for b in blocks]) if blocks else np.empty(0, np.int64)
    s = np.concatenate([b.sim for b in blocks]) if blocks else np.empty(0, np.float32)
    return a, b, s


def _planted(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random unit vectors (near-orthogonal) plus planted copies at cos 0.6-1."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    m = n // 5
    src = rng.integers(0, n, m)
    dst = rng.choice(n, m, replace=False)
    noise = rng.standard_normal((m, d)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    w = rng.uniform(0.0, 1.3, (m, 1)).astype(np.float32)
    x[dst] = x[src] + w * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = rng.permutation(n).astype(np.int64) * 11 + 5
    return x, ids


def _assert_same_up_to_rounding(got, want, x, ids, thr) -> None:
    """Pair sets equal, except pairs whose cosine is within 1e-5 of thr."""
    pos = {int(p): i for i, p in enumerate(ids)}
    for a, b in got ^ want:
        s = float(x[pos[a]] @ x[pos[b]])
        assert abs(s - thr) < 1e-5, (a, b, s)


def _check_wellformed(a: np.ndarray, b: np.ndarray, s: np.ndarray, thr: float) -> None:
    assert a.dtype == b.dtype == np.int64 and s.dtype == np.float32
    assert (a < b).all()
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == a.size  # no duplicates
    assert (s >= np.float32(thr)).all()


def _components(nodes: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
    """Connected components among ``nodes`` using the edges ``(a, b)`` inside them."""
    parent = {int(i): int(i) for i in nodes}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pa, pb in zip(a.tolist(), b.tolist(), strict=True):
        if pa in parent and pb in parent:
            parent[find(pa)] = find(pb)
    return len({find(i) for i in parent})


@pytest.mark.parametrize("thr", [0.5, 0.7, 0.9, 0.99])
def test_exact_equals_brute_force(thr: float, pairs_of) -> None:
    x, ids = _planted(3000, 64, seed=1)
    want = brute_force_pairs(x, ids, thr)
    a, b, s = _collect(self_join(x, ids, thr, method="exact", block_size=700))
    _check_wellformed(a, b, s, thr)
    assert len(want) > 50
    _assert_same_up_to_rounding(pairs_of(a, b), pairs_of(want.a, want.b), x, ids, thr)
    # Similarities agree with the reference for common pairs.
    ref = dict(zip(zip(want.a.tolist(), want.b.tolist(), strict=True), want.sim.tolist(), strict=True))
    for pa, pb, ps in zip(a.tolist(), b.tolist(), s.tolist(), strict=True):
        if (pa, pb) in ref:
            assert ps == pytest.approx(ref[(pa, pb)], abs=1e-5)


def test_blocks_are_numbered_and_sorted() -> None:
    x, ids = _planted(1000, 32, seed=2)
    blocks = list(self_join(x, ids, 0.6, method="exact", block_size=300))
    assert [blk.block_no for blk in blocks] == [0, 1, 2, 3]  # ceil(1000/300), empty ones too
    for blk in blocks:
        assert isinstance(blk, EdgeBlock)
        key = blk.a * (10**9) + blk.b
        assert np.all(np.diff(key) > 0)


def test_float16_memmap_input(tmp_path: Path, pairs_of) -> None:
    x, ids = _planted(1500, 48, seed=3)
    mm = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float16, shape=x.shape)
    mm[:] = x
    mm.flush()
    ro = np.load(tmp_path / "v.npy", mmap_mode="r")
    x16 = np.asarray(ro, dtype=np.float32)
    want = brute_force_pairs(x16, ids, 0.8)
    for method in ("exact", "ivf"):
        a, b, _ = _collect(self_join(ro, ids, 0.8, method=method, block_size=400, nlist=8, settings=_ivf(8)))
        _assert_same_up_to_rounding(pairs_of(a, b), pairs_of(want.a, want.b), x16, ids, 0.8)


def test_ivf_recall(make_clustered, pairs_of) -> None:
    x, ids = make_clustered(12_000, 384, clusters=40)
    ref = brute_force_pairs(x, ids, 0.6)
    for thr in (0.9, 0.6):
        keep = ref.sim >= np.float32(thr)
        want = pairs_of(ref.a[keep], ref.b[keep])
        a, b, s = _collect(self_join(x, ids, thr, method="ivf", settings=_ivf(8)))
        _check_wellformed(a, b, s, thr)
        got = pairs_of(a, b)
        assert len(want) > 500
        assert len(got & want) / len(want) >= 0.99
        _assert_same_up_to_rounding(got - want, set(), x, ids, thr)  # no false positives


def test_ivf_with_a_trained_index_lists_keeps_recall(make_clustered, pairs_of) -> None:
    """The scan partitions its join with the workspace IVF index's centroids instead of its own k-means."""
    import index as faiss_index

    x, ids = make_clustered(12_000, 384, clusters=40)
    idx = faiss_index.make_index(384, "IVF128,SQ8")
    faiss_index.train(idx, x[:8000])
    centroids = faiss_index.ivf_centroids(idx)
    assert centroids.shape == (128, 384)
    assert faiss_index.ivf_centroids(faiss_index.make_index(384, "Flat")) is None
    ref = brute_force_pairs(x, ids, 0.8)
    want = pairs_of(ref.a, ref.b)
    a, b, s = _collect(self_join(x, ids, 0.8, method="ivf", settings=_ivf(8), centroids=centroids))
    _check_wellformed(a, b, s, 0.8)
    got = pairs_of(a, b)
    assert len(want) > 500 and len(got & want) / len(want) >= 0.99
    _assert_same_up_to_rounding(got - want, set(), x, ids, 0.8)


def test_spill_finds_boundary_pairs_once(make_clustered, pairs_of) -> None:
    """Spilled vectors add the pairs that straddle list boundaries, each exactly once, none false."""
    x, ids = make_clustered(8000, 64, clusters=12, spread=0.6)
    thr = 0.7
    ref = brute_force_pairs(x, ids, thr)
    want = pairs_of(ref.a, ref.b)
    kw = dict(method="ivf", nlist=64, block_size=900, seed=1)
    plain = pairs_of(*_collect(self_join(x, ids, thr, settings=_ivf(2), **kw))[:2])
    results = {}
    for spill in (0.02, 2.0):  # 2.0: every vector is a candidate in its second list
        a, b, s = _collect(self_join(x, ids, thr, settings=_ivf(2, spill=spill), **kw))
        _check_wellformed(a, b, s, thr)  # includes: no pair twice, across blocks too
        got = pairs_of(a, b)
        _assert_same_up_to_rounding(got - want, set(), x, ids, thr)
        assert plain <= got
        results[spill] = len(got & want) / len(want)
    base = len(plain & want) / len(want)
    assert len(want) > 2000 and base < 0.9  # the plain join misses enough for the test to mean something
    assert base < results[0.02] <= results[2.0]
    assert results[2.0] - base > 0.05
    plan = plan_ivf(x, nlist=64, seed=1, settings=_ivf(2, spill=0.02))
    spilled = np.flatnonzero(plan.second >= 0)
    assert 0 < len(spilled) < len(x) and (plan.second[spilled] != plan.assign[spilled]).all()
    with pytest.raises(ValueError):
        JoinSettings(nprobe=2, spill=-0.1)


def test_split_lists_bound_sizes_and_keep_pairs_once(make_clustered, pairs_of) -> None:
    """max_list splits big lists; every pair still once, none false, and recall holds with spill."""
    x, ids = make_clustered(8000, 64, clusters=12, spread=0.6)
    thr = 0.7
    want = pairs_of(*_collect([brute_force_pairs(x, ids, thr)])[:2])
    kw = dict(method="ivf", nlist=8, block_size=900, seed=1)
    coarse = plan_ivf(x, nlist=8, seed=1, settings=_ivf(2))
    plan = plan_ivf(x, nlist=8, seed=1, settings=_ivf(2, max_list=300))
    assert np.diff(coarse.starts).max() > 600  # lists big enough to be split several ways
    assert plan.nlist >= len(x) // 300 and np.diff(plan.starts).max() < 3 * 300
    assert (plan.probe[:, 0] == np.arange(plan.nlist)).all()
    again = plan_ivf(x, nlist=8, seed=1, settings=_ivf(2, max_list=300))
    assert np.array_equal(plan.assign, again.assign) and np.array_equal(plan.centroids, again.centroids)
    results = {}
    for spill in (0.0, 0.02):
        a, b, s = _collect(self_join(x, ids, thr, settings=_ivf(2, max_list=300, spill=spill), **kw))
        _check_wellformed(a, b, s, thr)  # no pair twice, across blocks too
        got = pairs_of(a, b)
        _assert_same_up_to_rounding(got - want, set(), x, ids, thr)
        results[spill] = len(got & want) / len(want)
    # nprobe 2 of 32 split lists misses pairs (0.89 when written); spill recovers them (0.99).
    assert results[0.0] < 0.95 and results[0.02] > 0.97
    assert _ivf(2, max_list=0) == _ivf(2, max_list=None) == _ivf(2)  # 0 and None: lists as they are
    with pytest.raises(ValueError):
        JoinSettings(max_list=-1)


def test_ivf_all_lists_probed_is_exact(make_clustered, pairs_of) -> None:
    x, ids = make_clustered(4000, 64, clusters=10, spread=0.5)
    ref = brute_force_pairs(x, ids, 0.7)
    a, b, s = _collect(self_join(x, ids, 0.7, method="ivf", nlist=16, settings=_ivf(16), block_size=500))
    _check_wellformed(a, b, s, 0.7)
    _assert_same_up_to_rounding(pairs_of(a, b), pairs_of(ref.a, ref.b), x, ids, 0.7)


@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_resume_gives_identical_remaining_blocks(method: str, make_clustered) -> None:
    x, ids = make_clustered(6000, 64, clusters=20, spread=0.5)
    kw = dict(method=method, block_size=500, nlist=32, settings=_ivf(4), seed=7)
    full = list(self_join(x, ids, 0.75, **kw))
    assert len(full) >= 6 and sum(len(b) for b in full) > 0
    resumed = list(self_join(x, ids, 0.75, start_block=4, **kw))
    assert [b.block_no for b in resumed] == [b.block_no for b in full[4:]]
    for r, f in zip(resumed, full[4:], strict=True):
        assert np.array_equal(r.a, f.a) and np.array_equal(r.b, f.b)
        assert np.array_equal(r.sim, f.sim)
    assert list(self_join(x, ids, 0.75, start_block=len(full), **kw)) == []
    with pytest.raises(ValueError):
        self_join(x, ids, 0.75, start_block=len(full) + 1, **kw)


def test_ivf_plan_is_deterministic(make_clustered) -> None:
    x, _ = make_clustered(5000, 32, clusters=10)
    p1 = plan_ivf(x, nlist=32, settings=_ivf(4), block_size=700, seed=3)
    p2 = plan_ivf(x, nlist=32, settings=_ivf(4), block_size=700, seed=3)
    assert np.array_equal(p1.assign, p2.assign) and np.array_equal(p1.probe, p2.probe)
    assert np.array_equal(p1.block_lists, p2.block_lists)
    assert (p1.probe[:, 0] == np.arange(32)).all()


@pytest.mark.parametrize("point_probes", [0, 3])
def test_max_neighbors_caps_exact_copies(pairs_of, point_probes) -> None:
    rng = np.random.default_rng(4)
    base = rng.standard_normal((1, 32)).astype(np.float32)
    base /= np.linalg.norm(base)
    other = rng.standard_normal((200, 32)).astype(np.float32)
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    x = np.concatenate([np.repeat(base, 300, axis=0), other])  # 300 identical prompts
    ids = np.arange(x.shape[0], dtype=np.int64)[::-1].copy()
    for method in ("exact", "ivf"):
        kw = dict(settings=_ivf(2, point_probes=point_probes)) if method == "ivf" else {}
        uncapped = _collect(self_join(x, ids, 0.95, method=method, nlist=4, **kw))
        assert uncapped[0].size >= 300 * 299 // 2
        a, b, s = _collect(
            self_join(x, ids, 0.95, method=method, block_size=64, nlist=4, max_neighbors=3, **kw)
        )
        _check_wellformed(a, b, s, 0.95)
        # Point probes: each owner keeps 3 pairs in its list's pass and 3 over its point-probe passes.
        assert a.size <= 3 * x.shape[0] * (2 if kw else 1)
        assert pairs_of(a, b) <= pairs_of(uncapped[0], uncapped[1])
        # The 300 copies stay one connected component.
        assert _components(ids[:300], a, b) == 1


def test_validation() -> None:
    x = np.zeros((4, 8), np.float32)
    with pytest.raises(ValueError, match="unique"):
        self_join(x, np.array([1, 2, 2, 3]), 0.5)
    with pytest.raises(ValueError):
        self_join(x, np.arange(3), 0.5)
    with pytest.raises(ValueError):
        self_join(x, np.arange(4), 0.5, method="hnsw")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        self_join(x, np.arange(4), 0.5, max_neighbors=0)
    assert list(self_join(np.zeros((0, 8), np.float32), np.zeros(0, np.int64), 0.5)) == []


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 160),
    block_size=st.integers(1, 200),
    seed=st.integers(0, 2**16),
    thr=st.sampled_from([0.3, 0.6, 0.9]),
)
def test_block_size_does_not_change_pairs(n: int, block_size: int, seed: int, thr: float) -> None:
    x, ids = _planted(n, 8, seed)
    ref = brute_force_pairs(x, ids, thr)
    want = set(zip(ref.a.tolist(), ref.b.tolist(), strict=True))
    a, b, _ = _collect(self_join(x, ids, thr, method="exact", block_size=block_size))
    _assert_same_up_to_rounding(set(zip(a.tolist(), b.tolist(), strict=True)), want, x, ids, thr)
    # ivf: the partition does not depend on block_size, so sets match exactly.
    kw = dict(method="ivf", nlist=4, settings=_ivf(2), seed=seed)
    one = _collect(self_join(x, ids, thr, block_size=n, **kw))
    many = _collect(self_join(x, ids, thr, block_size=block_size, **kw))
    assert set(zip(one[0].tolist(), one[1].tolist(), strict=True)) == set(
        zip(many[0].tolist(), many[1].tolist(), strict=True)
    )


@pytest.mark.parametrize("kw", [dict(spill=0.0), dict(spill=0.02), dict(spill=0.02, max_list=300),
                                dict(point_probes=3), dict(spill=0.02, point_probes=3),
                                dict(spill=0.02, max_list=300, point_probes=2)])
def test_plan_compares_exactly_the_pairs_the_join_finds(make_clustered, pairs_of, kw) -> None:
    """IvfPlan.compares (the partition's recall, used by the bench) agrees pair by pair with the join, whose
    output is well formed (no pair twice, across blocks too) however lists, spills and point probes overlap."""
    x, ids = make_clustered(6000, 64, clusters=12, spread=0.6)
    thr = 0.7
    ref = brute_force_pairs(x, ids, thr)
    plan = plan_ivf(x, nlist=32, seed=1, settings=_ivf(2, **kw))
    pos = {int(p): i for i, p in enumerate(ids)}
    u = np.array([pos[int(a)] for a in ref.a])
    w = np.array([pos[int(b)] for b in ref.b])
    compared = plan.compares(u, w)
    assert np.array_equal(compared, plan.compares(w, u))  # symmetric
    assert 0.3 < compared.mean() < 0.999  # the partition misses some pairs, finds most
    a, b, s = _collect(self_join(x, ids, thr, method="ivf", nlist=32, settings=_ivf(2, **kw), seed=1, block_size=700))
    _check_wellformed(a, b, s, thr)
    got = pairs_of(a, b)
    predicted = pairs_of(ref.a[compared], ref.b[compared])
    _assert_same_up_to_rounding(got ^ predicted, set(), x, ids, thr)


def test_point_probes_find_the_pairs_a_lists_probes_miss(make_clustered, pairs_of) -> None:
    """Each vector probing its own nearest lists raises recall over the same nprobe, with or without spill."""
    x, ids = make_clustered(8000, 64, clusters=12, spread=0.6)
    thr = 0.7
    want = pairs_of(*_collect([brute_force_pairs(x, ids, thr)])[:2])
    kw = dict(method="ivf", nlist=64, block_size=900, seed=1)
    recall = {}
    for spill, pp in ((0.0, 0), (0.0, 2), (0.02, 0), (0.02, 2)):
        got = pairs_of(*_collect(self_join(x, ids, thr, settings=_ivf(2, spill=spill, point_probes=pp), **kw))[:2])
        _assert_same_up_to_rounding(got - want, set(), x, ids, thr)
        recall[spill, pp] = len(got & want) / len(want)
    assert recall[0.0, 2] > recall[0.0, 0] + 0.03 and recall[0.02, 2] > recall[0.02, 0]
    plan = plan_ivf(x, nlist=64, seed=1, settings=_ivf(2, point_probes=2))
    assert plan.point_probe.shape == (len(x), 2) and (plan.point_probe[:, 0] == plan.assign).all()
    with pytest.raises(ValueError):
        JoinSettings(point_probes=-1)


def test_point_probe_pass_caps_a_dense_cluster_in_another_list(pairs_of) -> None:
    """300 copies in one list, 50 near-copies of them in a list that does not probe it: only point probes
    join the two groups, and their pass keeps each owner's top max_neighbors pairs, not all 15,000."""
    rng = np.random.default_rng(11)
    d = 32
    a = rng.standard_normal(d).astype(np.float32)
    a /= np.linalg.norm(a)
    tilt = rng.standard_normal(d).astype(np.float32)
    tilt -= (tilt @ a) * a
    tilt /= np.linalg.norm(tilt)
    near = a * np.float32(0.97) + tilt * np.float32(np.sqrt(1 - 0.97**2))  # cosine 0.97 to the copies
    centroids = np.stack([a - 0.05 * tilt, a + 0.3 * tilt, -a]).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    noise = rng.standard_normal((50, d)).astype(np.float32) * np.float32(0.002)
    x = np.concatenate([np.repeat(a[None], 300, axis=0), near + noise, -a[None] + noise[:20]]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(len(x), dtype=np.int64)
    kw = dict(method="ivf", centroids=centroids, block_size=100)
    plan = plan_ivf(x, centroids=centroids, settings=_ivf(1, point_probes=2))
    assert (plan.assign[:300] == 0).all() and (plan.assign[300:350] == 1).all()
    plain = pairs_of(*_collect(self_join(x, ids, 0.95, settings=_ivf(1), **kw))[:2])
    assert not any(u < 300 <= w < 350 for u, w in plain)  # lists 0 and 1 never meet without point probes
    uncapped = _collect(self_join(x, ids, 0.95, settings=_ivf(1, point_probes=2), **kw))
    cross = {(u, w) for u, w in pairs_of(*uncapped[:2]) if u < 300 <= w < 350}
    assert len(cross) == 300 * 50
    got_a, got_b, got_s = _collect(self_join(x, ids, 0.95, settings=_ivf(1, point_probes=2), max_neighbors=3, **kw))
    _check_wellformed(got_a, got_b, got_s, 0.95)
    got = pairs_of(got_a, got_b)
    assert got <= pairs_of(*uncapped[:2])
    kept_cross = {(u, w) for u, w in got if u < 300 <= w < 350}
    # Only point-probe passes join the groups; each of the 350 owners keeps ceil(3 / 2) pairs per pass there.
    assert 0 < len(kept_cross) <= 2 * 350
    assert _components(ids[:350], got_a, got_b) == 1
