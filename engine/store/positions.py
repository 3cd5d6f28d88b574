"""Row positions of prompt ids: the map every stage that reads edges or id lists needs.

Prompt ids come from a DuckDB sequence, so they are nearly dense (1..N, gaps only where an ingest
batch rolled back). A table indexed by id answers a lookup with one gather; `np.searchsorted` needs
~22 random probes per id and was two thirds of building families at a million prompts (50M edges,
23 of 36 s). Sparse ids (a workspace built by hand) fall back to the binary search.
"""

from __future__ import annotations

import numpy as np

# The table is used while it is at most this many entries per id (int32: 16 bytes per prompt).
_DENSE_SLACK = 4


class IdPositions:
    """``of(values)``: the position in ``ids`` of each value; every value must be one of ``ids``."""

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64)
        self._table: np.ndarray | None = None
        if ids.size and ids.min() >= 0 and ids.max() < _DENSE_SLACK * ids.size + 1024 and ids.size < 2**31:
            self._table = np.full(int(ids.max()) + 1, -1, np.int32)
            self._table[ids] = np.arange(ids.size, dtype=np.int32)
        else:
            self._order = np.argsort(ids, kind="stable")
            self._sorted = ids[self._order]

    def of(self, values: np.ndarray) -> np.ndarray:
        """Positions (int32 with the table, int64 otherwise) of ``values``, which must all be ids."""
        values = np.asarray(values, np.int64)
        if self._table is not None:
            return self._table[values]
        return self._order[np.searchsorted(self._sorted, values)]
