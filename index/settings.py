"""The IVF self-join's four settings as one frozen value, with the reasons behind each default.

The defaults are the scan's (`copyhound scan` and its options of the same names); the scan records
:attr:`JoinSettings.label` with its run, so a scan asked with other settings is not "unchanged" and a
killed one resumes only with the settings its committed blocks were computed with.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_JOIN", "JoinSettings"]


@dataclass(frozen=True)
class JoinSettings:
    """How the ``ivf`` self-join partitions its comparisons (:func:`index.selfjoin.self_join`).

    Validated when built (``ValueError``); pass the same value to resume a join.
    """

    # IVF lists each list of the join is compared with (`scan --nprobe`). 8 keeps the 1M join near
    # 100 s on two cores; see docs/scale.md for the recall it buys.
    nprobe: int = 8
    # Inner-product margin within which a prompt is also a candidate in its second-nearest IVF list
    # (`scan --spill`, 0 = off). Near-copies missed by the blocked join sit on list boundaries. At a
    # million static-tier prompts (`bench/join_recall.py`, bench/results/join_recall.json: top-20 recall
    # on 2,000 rows of exact brute force) nprobe 8 finds 0.911 in 98 s, with spill 0.03 / 0.05 0.949 /
    # 0.952 in 131 / 129 s, where nprobe 12 finds 0.935 in 132 s and nprobe 16 0.946 in 179 s.
    spill: float = 0.05
    # Most prompts an IVF list of the join may hold (`scan --max-list`; 0 or None = the lists as they
    # are, stored as 0); bigger lists are split by a k-means of their own (index.plan). The workspace
    # index keeps about 4*sqrt(N) lists, so without a bound each prompt meets ~sqrt(N) others and the
    # join grows as N^1.5. Off by default: at 3M exchanges (1.7M prompts, `bench/join_recall.py`) the
    # split lists found fewer near-copies for the same time (bound 400: nprobe 8 0.883 in 256 s, nprobe
    # 12 0.905 in 357 s; the index's lists at nprobe 8: 0.935 in 554 s, measured while tests ran beside it).
    max_list: int | None = 0
    # Nearest IVF lists of its own each prompt is also compared with (`scan --point-probes`, 0 = off;
    # index.ivfjoin): a list's probes are the lists nearest its centroid, but a prompt at the list's edge
    # has near-copies in the lists nearest itself, and the more lists (the larger N) the more such
    # prompts. Without them the join compares 0.915 of the top-20 exact pairs at 10M, with 8 of them
    # 0.982 (bench/results/join_partition_10m.json); at 1M 8 cost 1.8x the join for top-20 recall
    # 0.955 -> 0.984 (bench/results/join_points_pass_1m.json; docs/scale.md).
    point_probes: int = 8

    def __post_init__(self) -> None:
        if self.nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {self.nprobe}")
        if self.spill < 0:
            raise ValueError(f"spill must be >= 0, got {self.spill}")
        if self.max_list is None:
            object.__setattr__(self, "max_list", 0)  # one spelling of "no bound", so equal settings compare equal
        elif self.max_list < 0:
            raise ValueError(f"max_list must be >= 1, or 0 or None for no bound, got {self.max_list}")
        if self.point_probes < 0:
            raise ValueError(f"point_probes must be >= 0, got {self.point_probes}")

    @property
    def label(self) -> str:
        """How a scan records an ``ivf`` join with these settings, e.g. ``ivf/nprobe=8/spill=0.05/points=8``.

        The parts that are off are left out, so labels recorded before a setting existed still match.
        """
        return (f"ivf/nprobe={int(self.nprobe)}" + (f"/spill={self.spill:g}" if self.spill > 0 else "")
                + (f"/maxlist={int(self.max_list)}" if self.max_list else "")
                + (f"/points={int(self.point_probes)}" if self.point_probes else ""))


#: The scan's settings (every default), as the default argument of the functions that take settings.
DEFAULT_JOIN = JoinSettings()
