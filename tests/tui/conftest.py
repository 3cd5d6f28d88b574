"""Fixtures for the TUI tests: a fixed workspace (snapshots) and a real scanned one (the main path).

The real workspace is built once per session from a small synth file with the real model, DuckDB and
FAISS; the fixed one (see fixed_workspace.py) is built once and copied for each test that writes marks.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.workspace import build_fixed_workspace, fixed_engine

REAL_EXCHANGES = 2500


@pytest.fixture(scope="session")
def fixed_workspace_master(tmp_path_factory) -> Path:
    return build_fixed_workspace(tmp_path_factory.mktemp("fixed") / "ws")


@pytest.fixture
def fixed_ws(fixed_workspace_master, tmp_path) -> Path:
    """A private copy of the fixed workspace (tests may mark, export, lock it)."""
    dst = tmp_path / "ws"
    shutil.copytree(fixed_workspace_master, dst)
    return dst


@pytest.fixture
def fixed_app_factory(fixed_ws) -> Callable:
    from tui.app import CopyhoundApp

    def make(**kwargs):
        return CopyhoundApp(fixed_engine(fixed_ws, **kwargs))

    return make


@pytest.fixture(scope="session")
def real_workspace(tmp_path_factory) -> tuple[Path, dict]:
    """A scanned workspace from synth traffic (real model), and its ground truth."""
    from engine import Engine
    from synth import SynthConfig, write_synth

    root = tmp_path_factory.mktemp("real")
    result = write_synth(SynthConfig(exchanges=REAL_EXCHANGES, seed=1), root / "traffic.jsonl.gz")
    engine = Engine(root / "ws")
    engine.ingest([result.path])
    engine.scan()
    truth = json.loads(Path(result.truth_path).read_text())
    return root / "ws", truth


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run (workers, timers) until `condition()` holds; fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out on {pilot.app.screen!r}; notices: {pilot.app.notices}")
        # Not workers.wait_for_complete(): a worker retrying a busy workspace would never complete.
        await pilot.pause(0.05)


async def settle(pilot) -> None:
    """Wait for running workers and the messages they posted."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (Textual's loop), through anyio's pytest plugin."""
    return "asyncio"
