"""IdPositions: the id -> row map of families, re-check and friends."""

from __future__ import annotations

import numpy as np
import pytest

from engine.store.positions import IdPositions


@pytest.mark.parametrize("ids", [
    np.array([7, 3, 1, 9, 4], np.int64),                # sequence ids with gaps, unsorted: the table
    np.array([10**12, 5, 10**9, 42], np.int64),         # sparse ids: binary search
    np.array([-3, 8, 2], np.int64),                     # negative ids (hand-made workspaces): binary search
])
def test_positions_of_ids(ids):
    where = IdPositions(ids)
    rng = np.random.default_rng(0)
    values = rng.choice(ids, 50)
    got = where.of(values)
    assert np.array_equal(ids[got], values)
    assert where.of(np.empty(0, np.int64)).size == 0


def test_dense_ids_use_a_table_and_sparse_ones_do_not():
    assert IdPositions(np.arange(1, 1000))._table is not None
    assert IdPositions(np.array([1, 10**9]))._table is None
