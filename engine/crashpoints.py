"""A test-only crash hook: kill this process at a named commit point, to prove every one is crash-safe.

`COPYHOUND_CRASH_AT=<point>:<n>` makes the n-th call (1-based, in this process) of `crash_point(point)`
end the process with SIGKILL, as a power cut or the OOM killer would: no `finally`, no atexit, no
flush. `COPYHOUND_CRASH_TRACE=<file>` appends the name of every point reached to `<file>` instead (the
crash harness learns from an uninterrupted run which points each command reaches, and how often).
Both are read once, at import; unset, `crash_point` is one comparison of a module global.

The points, in the order a pipeline reaches them (tests/crash enumerates `POINTS`, and checks that
every `crash_point("...")` call in the code names one of them):

ingest (engine/ingest/loader.py)
    ingest.stage.after_commit        rows staged and validated, file marked 'loading'
    ingest.batch.before_commit       a batch's prompts and exchanges written, not committed
    ingest.batch.after_commit        a batch committed with its counter
    ingest.done.before_commit        aggregates refreshed, file marked 'done', staging dropped, not committed
    ingest.done.after_commit         committed (the staging tables dropped in the same commit)
embed (engine/store/vectors.py)
    embed.shard.before_rename        a shard written to its temporary name
    embed.shard.after_rename         the shard file in place, its rows not committed
    embed.shard.before_commit        the shard's rows written, not committed
    embed.shard.after_commit         the shard's rows committed
index save (index/io.py through `index.save(hook=...)`, then engine/store/vectors.py)
    index.save.before_index_rename   index and manifest written to temporary names
    index.save.after_index_rename    the new index in place beside the old manifest
    index.save.after_manifest_rename both in place, the workspace's `indexes` row not updated
    index.row.before_commit          the `indexes` row written, not committed
    index.row.after_commit           the `indexes` row committed
scan (engine/scan/stages.py, engine/scan/pipeline.py)
    scan.begin.after_commit          the run recorded and the last run's edges cleared
    scan.join.before_commit          a join block's edges written, not committed
    scan.join.after_commit           a join block committed with the block counter
    scan.detect.before_commit        families, templates, links, rings, scores written, not committed
    scan.detect.after_commit         the detection tables and the finished run committed
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "COPYHOUND_CRASH_AT"
TRACE_ENV = "COPYHOUND_CRASH_TRACE"

#: Every crash point, in pipeline order (see the module docstring for what each one separates).
POINTS: tuple[str, ...] = (
    "ingest.stage.after_commit",
    "ingest.batch.before_commit",
    "ingest.batch.after_commit",
    "ingest.done.before_commit",
    "ingest.done.after_commit",
    "embed.shard.before_rename",
    "embed.shard.after_rename",
    "embed.shard.before_commit",
    "embed.shard.after_commit",
    "index.save.before_index_rename",
    "index.save.after_index_rename",
    "index.save.after_manifest_rename",
    "index.row.before_commit",
    "index.row.after_commit",
    "scan.begin.after_commit",
    "scan.join.before_commit",
    "scan.join.after_commit",
    "scan.detect.before_commit",
    "scan.detect.after_commit",
)


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    point, _, n = spec.rpartition(":")
    if point not in POINTS or not n.isdigit() or int(n) < 1:
        # A typo would make a crash test pass without crashing: refuse it loudly (test-only variable).
        raise SystemExit(f"{CRASH_ENV}={spec!r}: expected <point>:<n>, n >= 1, point one of {', '.join(POINTS)}")
    return point, int(n)


_TARGET = _parse(os.environ.get(CRASH_ENV))
_TRACE = os.environ.get(TRACE_ENV) or None
_ARMED = _TARGET is not None or _TRACE is not None
_hits: dict[str, int] = {}


def crash_point(point: str) -> None:
    """Die here by SIGKILL when `COPYHOUND_CRASH_AT` names this point and this is its n-th hit."""
    if not _ARMED:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _TRACE is not None:
        with open(_TRACE, "a", encoding="utf-8") as fh:
            fh.write(point + "\n")
    if _TARGET is not None and _TARGET == (point, _hits[point]):
        os.kill(os.getpid(), signal.SIGKILL)
