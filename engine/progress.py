"""Progress reporting: the engine calls a plain callback; the CLI draws it with rich, the TUI posts messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int | None) -> None:
        """`stage` names the work ("ingest data.jsonl", "embed"); `total` is None when unknown."""


def no_progress(stage: str, done: int, total: int | None) -> None:
    """The default: report nothing."""


ProgressFn = Callable[[str, int, int | None], None]
