"""Kill a real copyhound process at every commit point, rerun, and check that nothing was lost or doubled.

The pipeline is ingest A, embed (fresh), scan, ingest B, embed (extending the index), scan, with the
static encoder on `synth` traffic (3,000 + 1,000 exchanges). One uninterrupted run, traced
(`COPYHOUND_CRASH_TRACE`), gives the reference state after each step and tells which commit points each
step reaches and how often. Then, for every point of `engine.crashpoints.POINTS` and every phase that
reaches it (ingest; embed fresh; embed extending; scan over earlier results), a copy of the reference
workspace from before that step runs the step armed with `COPYHOUND_CRASH_AT=<point>:<n>` (n the middle
hit), must die by SIGKILL, is run again, and the pipeline continues to the next scan. The workspace must
then equal the uninterrupted run's: exchanges = distinct ids, one vector per prompt, index ids = prompts,
no temporary files or staging tables, and every table (the system of record and the findings) identical.

A point added to `engine.crashpoints.POINTS` is covered without editing this file; a `crash_point` call
naming a point not in `POINTS` fails `test_every_call_names_a_listed_point`.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from engine.crashpoints import POINTS
from tests.crash.harness import (
    KILLED,
    ROOT,
    check_invariants,
    copy_workspace,
    differences,
    run_ok,
    run_step,
    state,
)

STEPS: list[tuple[str, ...]] = [("ingest", "A"), ("embed",), ("scan",), ("ingest", "B"), ("embed",), ("scan",)]
# The phase each point is exercised in: the step index (into STEPS) that reaches it there.
PHASES = {"ingest": (0,), "embed": (1, 4), "index": (1, 4), "scan": (5,)}


def _synth(path: Path, n: int, seed: int, prefix: str) -> Path:
    run_ok(("synth", "-n", str(n), "--seed", str(seed), "-o", str(path)), path.parent / "unused")
    # Two synth files number their exchange ids alike; distinct ids keep B's rows from colliding with A's.
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    for row in rows:
        row["exchange_id"] = prefix + str(row["exchange_id"])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class Reference:
    """The uninterrupted run: files, the workspace copy before each step, state after each, hits per step."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = {"A": _synth(root / "a.jsonl", 3000, 1, "a-"), "B": _synth(root / "b.jsonl", 1000, 2, "b-")}
        self.before: list[Path] = []
        self.after: list[dict] = []
        self.hits: list[Counter] = []
        ws = root / "ws"
        # The static table costs a minute or more to distil; COPYHOUND_TEST_STATIC_MODELS names a workspace's
        # models/ folder that already holds it (for reruns while developing; CI distils it once here).
        seeded = os.environ.get("COPYHOUND_TEST_STATIC_MODELS")
        if seeded and Path(seeded).is_dir():
            ws.mkdir()
            copy_workspace(Path(seeded), ws / "models")
        for i, step in enumerate(STEPS):
            snap = root / f"before-{i}"
            if (ws / "copyhound.duckdb").exists():
                copy_workspace(ws, snap)
            self.before.append(snap)
            trace = root / f"trace-{i}.txt"
            run_ok(self.resolve(step), ws, trace=trace)
            self.hits.append(Counter(trace.read_text().split()) if trace.exists() else Counter())
            self.after.append(state(ws))
        # The static table was distilled by the first embed: every later copy starts with it.
        self.models = ws / "models"

    def resolve(self, step: tuple[str, ...]) -> tuple[str, ...]:
        return (step[0], str(self.files[step[1]])) if step[0] == "ingest" else step


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    return Reference(tmp_path_factory.mktemp("crash-reference"))


def _cases() -> list[tuple[str, int]]:
    return [(point, step) for point in POINTS for step in PHASES[point.split(".")[0]]]


def test_every_call_names_a_listed_point() -> None:
    called = set()
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("index/**/*.py")]:
        called |= set(re.findall(r"""(?:crash_point|hook)\(\s*["']([a-z_]+\.[a-z_.]+)["']""", path.read_text(encoding="utf-8")))
    assert called == set(POINTS)
    doc = (ROOT / "engine" / "crashpoints.py").read_text(encoding="utf-8").split('"""')[1]
    assert all(point in doc for point in POINTS)


@pytest.mark.slow
def test_reference_reaches_every_point_in_its_phase(reference: Reference) -> None:
    for point, step in _cases():
        assert reference.hits[step][point] >= 1, f"step {step} {STEPS[step]} never reaches {point}"
    # The static tier writes up to 65,536 prompts per shard: each embed here writes one, so a crash between
    # two shards of one embed is left to bench/crash_trials.py (100k exchanges, several shards per embed).
    for i in (2, 5):
        assert not check_invariants(reference.after[i]), check_invariants(reference.after[i])
        assert reference.after[i]["families"] and reference.after[i]["account_scores"]
    assert len(reference.after[5]["index_ids"]) > len(reference.after[2]["index_ids"])  # B added prompts


@pytest.mark.slow
@pytest.mark.parametrize(("point", "step"), _cases(), ids=[f"{p}@{'fresh' if s == 1 else 'extend' if s == 4 else s}"
                                                         for p, s in _cases()])
def test_crash_then_rerun_matches_uninterrupted(reference: Reference, tmp_path: Path, point: str, step: int) -> None:
    ws = tmp_path / "ws"
    if reference.before[step].exists():
        copy_workspace(reference.before[step], ws)
    else:  # the first ingest: a new workspace that already has the static table
        ws.mkdir()
        copy_workspace(reference.models, ws / "models")
    n = (reference.hits[step][point] + 1) // 2
    killed = run_step(reference.resolve(STEPS[step]), ws, crash_at=f"{point}:{n}")
    assert killed.returncode == KILLED, f"not killed at {point}:{n} (exit {killed.returncode}): {killed.stderr[-2000:]}"
    last = next(i for i in (2, 5) if i >= step)
    for i in range(step, last + 1):
        run_ok(reference.resolve(STEPS[i]), ws)
    got = state(ws)
    assert check_invariants(got) == []
    assert differences(got, reference.after[last]) == []
