"""What every CLI verb shares: opening the engine from the parsed options, the progress bar, --ray.

The verb modules (`main`, `detect`, `analyst`) import this one and never each other, so the CLI has no
import circle.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from engine.config import EngineConfig, workspace_from_env
from index.settings import JoinSettings


class StderrProgress:
    """A rich progress bar on stderr (silent when stderr is not a terminal, except for log lines)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> StderrProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._progress.start()
        return self

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total)
        self._progress.update(self._tasks[stage], completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def open_engine(args: argparse.Namespace, **kwargs):
    from engine import Engine

    config = EngineConfig(device=getattr(args, "device", "cpu") or "cpu",
                          encoder=getattr(args, "encoder", None),
                          ray_address=getattr(args, "ray", None),
                          threshold=getattr(args, "threshold", None),
                          join=_join_settings(args))
    return Engine(workspace_from_env(args.workspace), config=config, **kwargs)


def _join_settings(args: argparse.Namespace) -> JoinSettings:
    """The scan's join settings from `scan`'s options; a verb without them gets the defaults."""
    given = {name: value for name in ("nprobe", "spill", "max_list", "point_probes")
             if (value := getattr(args, name, None)) is not None}
    return replace(JoinSettings(), **given)


def progress_bar(args: argparse.Namespace) -> StderrProgress:
    return StderrProgress(enabled=not args.quiet and sys.stderr.isatty())


def add_ray_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("COPYHOUND_RAY"),
                   help="embed and self-join on a Ray cluster: auto (the cluster this machine is part of), "
                   "ray://HOST:10001, or local (start one here); needs copyhound[ray] (env COPYHOUND_RAY)")
