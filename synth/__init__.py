"""Synthetic provider traffic with planted distillation campaigns and their ground truth.

A package of its own (numpy only, nothing from `engine`): the CLI's `synth` and `demo`, the tests and
bench all draw traffic from it, and nothing the engine computes depends on it (the static encoder's
centre was fitted on it once, by tools/refit_static_centre.py, and ships as data). Importing it, and
writing JSONL, loads numpy alone; pyarrow is imported only when writing CSV or Parquet, and must stay
that way (tests/engine/test_synth.py checks both).
"""

from synth.generator import (
    CampaignTruth,
    SingleAppTruth,
    SynthConfig,
    SynthResult,
    ViralTruth,
    iter_blocks,
    iter_exchanges,
    truth_path_for,
    write_synth,
)

__all__ = [
    "CampaignTruth",
    "SingleAppTruth",
    "SynthConfig",
    "SynthResult",
    "ViralTruth",
    "iter_blocks",
    "iter_exchanges",
    "truth_path_for",
    "write_synth",
]
