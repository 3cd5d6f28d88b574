"""The normalised prompt texts of a workspace, read from its store as the template miner asks for them."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np

from engine.errors import DetectionError


class StoredTexts:
    """The normalised prompt texts, read from the store a range of prompt ids at a time.

    A `PromptTexts` (`engine.detect.templates`) over `prompt_ids` (sorted int64), row i being prompt
    `prompt_ids[i]`; a prompt that vanishes or appears in a range meanwhile raises `DetectionError`.

    The miner used to get all of them as one list: at 10M prompts ~6 GB of Python strings, held through
    the whole mining stage and the largest single part of the scan's peak.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, prompt_ids: np.ndarray) -> None:
        self._con = con
        self.prompt_ids = prompt_ids  # sorted

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def chunks(self, size: int) -> Iterator[list[str]]:
        for c0 in range(0, len(self.prompt_ids), size):
            lo, hi = self.prompt_ids[c0], self.prompt_ids[min(c0 + size, len(self.prompt_ids)) - 1]
            got = self._con.execute(
                "SELECT normalized FROM prompts WHERE prompt_id BETWEEN ? AND ? ORDER BY prompt_id", [int(lo), int(hi)]
            ).fetchnumpy()["normalized"].tolist()
            if len(got) != min(size, len(self.prompt_ids) - c0):
                raise DetectionError(f"prompts changed during the scan (ids {lo}..{hi}); run scan again")
            yield got

    def text(self, row: int) -> str:
        got = self._con.execute(
            "SELECT normalized FROM prompts WHERE prompt_id = ?", [int(self.prompt_ids[row])]
        ).fetchone()
        if got is None:
            raise DetectionError(f"prompt {self.prompt_ids[row]} vanished during the scan; run scan again")
        return got[0]
