"""What every CLI verb shares: the parser, opening the engine, option types, table paging, the progress
bar, --ray, and finding a front end (the TUI, the service) by its entry point.

The verb modules (`main`, `detect`, `analyst`) import this one and never each other, so the CLI has no
import circle.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from typing import NoReturn

from engine.config import EngineConfig, workspace_from_env
from index.settings import JoinSettings

# Rows a table shows unless --limit says otherwise; machine formats get every row.
TABLE_PAGE = 50


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `copyhound VERB: error: ...`, exit status 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def number_between(low: float, high: float):
    """An argparse type: a number from `low` to `high`, else a one-line error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, not {value:g}")
        return value

    return parse


def positive_int(text: str) -> int:
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def count(text: str) -> int:
    value = whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or more, not {value}")
    return value


def row_limit(text: str) -> int:
    value = whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (every row) or more, not {value}")
    return value


def device(text: str) -> str:
    """cpu, cuda or cuda:N; checked here so a typo stops before a model is loaded."""
    value = text.strip().lower()
    if value in ("cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise argparse.ArgumentTypeError(f"unknown device {text!r}: use cpu, cuda or cuda:N")


def page_limit(args: argparse.Namespace) -> int | None:
    """The rows to ask for: --limit as given (0 = all), else a page for a table and all for a machine."""
    if args.limit is None:
        return TABLE_PAGE if args.format == "table" else None
    return args.limit or None


def page_caption(args: argparse.Namespace, shown: int, total) -> str | None:
    """"showing 50 of 2,658 (--limit 0 for all)" under a table cut to a page; `total` is called only then."""
    limit = page_limit(args)
    if args.format != "table" or limit is None or shown < limit:
        return None
    n = total()
    return f"showing {shown:,} of {n:,} (--limit 0 for all)" if n > shown else None


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


def open_engine(args: argparse.Namespace, *, create: bool = False, read_only: bool = False,
                busy_timeout: float = 15.0):
    """The Engine on the workspace the options name. Only `ingest` (and `demo`) pass create=True: any
    other verb on a missing workspace stops with one line before loading a model. `serve` opens it
    read-only (see engine.store.workspace)."""
    from engine import Engine

    config = EngineConfig(device=getattr(args, "device", "cpu") or "cpu",
                          encoder=getattr(args, "encoder", None),
                          ray_address=getattr(args, "ray", None),
                          threshold=getattr(args, "threshold", None),
                          join=_join_settings(args))
    return Engine(workspace_from_env(args.workspace), config=config, create=create, read_only=read_only,
                  busy_timeout=busy_timeout)


FRONTEND_GROUP = "copyhound.frontends"


def load_frontend(name: str):
    """The callable a front end registered under `copyhound.frontends` (its first argument an Engine).

    Imports flow front end -> engine, never back: the TUI and the service register themselves there
    (pyproject.toml) and the CLI looks them up by name, which also keeps textual, Starlette and uvicorn
    out of every other verb's start-up.
    """
    from importlib.metadata import entry_points

    from engine.errors import CopyhoundError

    found = entry_points(group=FRONTEND_GROUP, name=name)
    if not found:
        raise CopyhoundError(f"the {name!r} front end is not installed (no {FRONTEND_GROUP} entry point); "
                             "reinstall copyhound with `pip install -e .`")
    return next(iter(found)).load()


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
