"""Tests for index.settings: the IVF join's settings as one frozen, validated value."""

from __future__ import annotations

import dataclasses

import pytest

from index import JoinSettings


def test_defaults_are_the_scans() -> None:
    s = JoinSettings()
    assert (s.nprobe, s.spill, s.max_list, s.point_probes) == (8, 0.05, 0, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.nprobe = 4  # type: ignore[misc]


def test_label_is_what_scans_have_always_recorded() -> None:
    """Recorded scans resume and compare 'unchanged' by this string, so it may never change."""
    assert JoinSettings().label == "ivf/nprobe=8/spill=0.05/points=8"
    assert JoinSettings(nprobe=1, spill=0.0, point_probes=0).label == "ivf/nprobe=1"
    assert JoinSettings(nprobe=1, spill=0.05, point_probes=3).label == "ivf/nprobe=1/spill=0.05/points=3"
    assert JoinSettings(nprobe=4, spill=0.05, max_list=16, point_probes=0).label == "ivf/nprobe=4/spill=0.05/maxlist=16"
    assert JoinSettings(nprobe=1, spill=0.05, max_list=16).label == "ivf/nprobe=1/spill=0.05/maxlist=16/points=8"
    assert JoinSettings(spill=0.03, max_list=None).label == "ivf/nprobe=8/spill=0.03/points=8"


def test_no_bound_has_one_spelling() -> None:
    assert JoinSettings(max_list=None) == JoinSettings(max_list=0) == JoinSettings()
    assert JoinSettings(max_list=None).max_list == 0


@pytest.mark.parametrize("bad", [dict(nprobe=0), dict(spill=-0.01), dict(max_list=-1), dict(point_probes=-1)])
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        JoinSettings(**bad)
