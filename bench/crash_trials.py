"""Random kills of a real copyhound pipeline on a large workspace: is anything lost, doubled or changed?

Question: after a SIGKILL at a random moment of ingest, embed (fresh or extending the index) or scan,
and a rerun, does the workspace hold exactly what an uninterrupted run holds?

The pipeline is ingest A (70% of `--exchanges`), embed, scan, ingest B (30%, its own exchange ids),
embed (extending), scan; static encoder. An uninterrupted run first gives the workspace before each step
and the state after each scan (kept in `--work`, reused when the script runs again). Each trial picks a
step at random, copies the workspace from before it, runs the step and kills it, either

* `time`: a real SIGKILL from outside after a random delay within the step's uninterrupted duration, or
* `point`: at a random commit point that step reaches (`engine.crashpoints`), at a random hit n,

then runs the step again and the pipeline on to the next scan, and compares with the uninterrupted run
(`tests.crash.harness`, the invariants the CI crash tests check): exchanges = distinct ids, one vector
per prompt, index ids = prompts, no temporary files, every table of record and of findings identical.

Resumable: each trial is appended to the results file as it ends; run the script again (same `--out`,
same `--work`) and it continues until `--trials` are done (and, with `--kills`, until that many trials
actually killed their step).

    python -m bench.crash_trials --exchanges 100000 --trials 100 --kills 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.common import RESULTS, git_sha, machine_info
from tests.crash.harness import (
    CRASH_ENV,
    KILLED,
    TRACE_ENV,
    check_invariants,
    command,
    copy_workspace,
    differences,
    run_ok,
    state,
)

STEPS = [("ingest", "A"), ("embed",), ("scan",), ("ingest", "B"), ("embed",), ("scan",)]
STAGE = ["ingest", "embed (fresh)", "scan", "ingest (second file)", "embed (extending)", "scan (second)"]
SCANS = (2, 5)


def _synth(path: Path, n: int, seed: int, prefix: str) -> None:
    if path.exists():
        return
    tmp = path.with_name(path.stem + ".raw.jsonl")
    run_ok(("synth", "-n", str(n), "--seed", str(seed), "-o", str(tmp)), path.parent / "unused")
    with open(tmp, encoding="utf-8") as src, open(path.with_suffix(".part"), "w", encoding="utf-8") as dst:
        for line in src:
            if line.strip():
                row = json.loads(line)
                row["exchange_id"] = prefix + str(row["exchange_id"])  # two synth files number ids alike
                dst.write(json.dumps(row) + "\n")
    os.replace(path.with_suffix(".part"), path)
    tmp.unlink()


def _resolve(step: tuple[str, ...], files: dict[str, Path]) -> tuple[str, ...]:
    return (step[0], str(files[step[1]])) if step[0] == "ingest" else step


def reference(work: Path, exchanges: int, models: Path | None = None) -> dict:
    """The uninterrupted run (built once, then read from `work`): files, snapshots, durations, hits."""
    meta_path = work / "reference.json"
    files = {"A": work / "a.jsonl", "B": work / "b.jsonl"}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["exchanges"] == exchanges:
            return meta
        raise SystemExit(f"{work} holds a reference for {meta['exchanges']} exchanges; use another --work")
    work.mkdir(parents=True, exist_ok=True)
    _synth(files["A"], int(exchanges * 0.7), 1, "a-")
    _synth(files["B"], exchanges - int(exchanges * 0.7), 2, "b-")
    ws = work / "ref"
    shutil.rmtree(ws, ignore_errors=True)
    if models is not None:
        ws.mkdir()
        copy_workspace(models, ws / "models")
    seconds, hits = [], []
    for i, step in enumerate(STEPS):
        snap = work / f"before-{i}"
        shutil.rmtree(snap, ignore_errors=True)
        if (ws / "copyhound.duckdb").exists():
            copy_workspace(ws, snap)
        trace = work / f"trace-{i}.txt"
        trace.unlink(missing_ok=True)
        t0 = time.monotonic()
        run_ok(_resolve(step, files), ws, trace=trace)
        seconds.append(round(time.monotonic() - t0, 2))
        hits.append(dict(Counter(trace.read_text().split())) if trace.exists() else {})
        if i in SCANS:
            shutil.rmtree(work / f"after-{i}", ignore_errors=True)
            copy_workspace(ws, work / f"after-{i}")
        print(f"reference step {i} {' '.join(step)}: {seconds[-1]:.1f} s", flush=True)
    if models is None:
        # The first embed built the static table (minutes). Trials must not rebuild it (a step-0 trial takes
        # it from before-1), and a kill timed over that first run would land after the step ended: give
        # before-1 the table and time the step again as trials run it.
        copy_workspace(ws / "models", work / "before-1" / "models")
        redo = work / "embed-timing"
        shutil.rmtree(redo, ignore_errors=True)
        copy_workspace(work / "before-1", redo)
        t0 = time.monotonic()
        run_ok(_resolve(STEPS[1], files), redo)
        seconds[1] = round(time.monotonic() - t0, 2)
        shutil.rmtree(redo, ignore_errors=True)
    meta = {"exchanges": exchanges, "files": {k: str(v) for k, v in files.items()}, "seconds": seconds,
            "hits": hits}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def _run_killed(cmd: list[str], delay: float) -> tuple[bool, float]:
    """Run `cmd`, SIGKILL it after `delay` seconds; (killed, seconds it ran)."""
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, TRACE_ENV)}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    if proc.returncode not in (0, KILLED):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return proc.returncode == KILLED, time.monotonic() - t0


def trial(work: Path, meta: dict, number: int, seed: int, expected: dict[int, dict]) -> dict:
    rng = random.Random(seed * 1_000_003 + number)
    files = {k: Path(v) for k, v in meta["files"].items()}
    step = rng.randrange(len(STEPS))
    ws = work / "trial"
    shutil.rmtree(ws, ignore_errors=True)
    if (work / f"before-{step}").exists():
        copy_workspace(work / f"before-{step}", ws)
    else:
        ws.mkdir()
        copy_workspace(work / "before-1" / "models", ws / "models")
    cmd = command(_resolve(STEPS[step], files), ws)
    t0 = time.monotonic()
    record = {"trial": number, "step": step, "stage": STAGE[step]}
    points = meta["hits"][step]
    if rng.random() < 0.5 or not points:
        delay = round(rng.uniform(0.0, meta["seconds"][step] * 1.05), 3)
        killed, ran = _run_killed(cmd, delay)
        record.update(mode="time", delay_s=delay, killed=killed)
    else:
        point = rng.choice(sorted(points))
        n = rng.randint(1, points[point])
        env = {**{k: v for k, v in os.environ.items() if k != TRACE_ENV}, CRASH_ENV: f"{point}:{n}"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != KILLED:
            raise RuntimeError(f"not killed at {point}:{n} (exit {done.returncode}): {done.stderr[-2000:]}")
        record.update(mode="point", point=point, n=n, killed=True)
    last = next(i for i in SCANS if i >= step)
    for i in range(step, last + 1):
        run_ok(_resolve(STEPS[i], files), ws)
    got = state(ws)
    want = expected[last]
    violations = check_invariants(got)
    diff = differences(got, want)
    got_ids = {r[0] for r in got["exchanges"]}
    want_ids = {r[0] for r in want["exchanges"]}
    record.update(
        lost=len(want_ids - got_ids),
        duplicated=(len(got["exchanges"]) - len(got_ids)) + max(0, len(got["vector_ids"]) - len(want["vector_ids"]))
        + max(0, len(got["index_ids"]) - len(want["index_ids"])),
        violations=violations, differences=diff, identical=not diff and not violations,
        seconds=round(time.monotonic() - t0, 1),
    )
    if diff:
        # What differs, and the workspace kept beside the reference: a table name alone does not say
        # whether a crash changed a finding or a last bit of a float moved.
        record["difference_examples"] = _examples(got, want, diff)
        kept = work / f"differs-{number}"
        shutil.rmtree(kept, ignore_errors=True)
        ws.rename(kept)
        record["kept"] = str(kept)
    shutil.rmtree(ws, ignore_errors=True)
    return record


def _examples(got: dict, want: dict, diff: list[str], n: int = 3) -> dict:
    """Per differing table: rows only in this trial, rows only in the reference (a few of each)."""
    out = {}
    for table in diff:
        if not isinstance(got.get(table), list):
            continue
        g, w = set(map(str, got[table])), set(map(str, want[table]))
        out[table] = {"only_here": len(g - w), "only_in_reference": len(w - g),
                      "here": [r[:400] for r in sorted(g - w)[:n]],
                      "reference": [r[:400] for r in sorted(w - g)[:n]]}
    return out


def summarise(trials: list[dict]) -> dict:
    return {
        "trials": len(trials),
        "kills": sum(t["killed"] for t in trials),
        "kills_per_stage": dict(Counter(t["stage"] for t in trials if t["killed"])),
        "trials_per_mode": dict(Counter(t["mode"] for t in trials)),
        "points_hit": dict(Counter(t["point"] for t in trials if t["mode"] == "point")),
        "lost": sum(t["lost"] for t in trials),
        "duplicated": sum(t["duplicated"] for t in trials),
        "findings_identical": f"{sum(t['identical'] for t in trials)}/{len(trials)}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=100, help="total trials wanted (a rerun continues)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/copyhound-crash-trials"))
    parser.add_argument("--out", type=Path, default=RESULTS / "crash_trials_100k.json")
    parser.add_argument("--kills", type=int, default=0,
                        help="also go on until this many trials actually killed the step (a timed kill can land "
                             "after the step finished)")
    parser.add_argument("--budget-s", type=float, default=None, help="stop starting trials after this long")
    parser.add_argument("--models", type=Path, default=None,
                        help="a workspace's models/ folder holding the static table (skips its distillation)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    meta = reference(args.work, args.exchanges, args.models)
    expected = {i: state(args.work / f"after-{i}") for i in SCANS}
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    trials = previous.get("trials", []) if previous.get("exchanges") == args.exchanges else []
    load_before = [round(x, 2) for x in os.getloadavg()]
    sha = git_sha()
    while len(trials) < args.trials or sum(t["killed"] for t in trials) < args.kills:
        if args.budget_s is not None and time.monotonic() - started > args.budget_s:
            break
        record = trial(args.work, meta, len(trials), args.seed, expected)
        record["git_sha"] = sha  # a rerun that continues may run newer code: each trial says which
        trials.append(record)
        print(json.dumps(record), flush=True)
        _write(args, meta, trials, load_before)
    _write(args, meta, trials, load_before)
    summary = summarise(trials)
    print(json.dumps(summary, indent=1))
    return 0 if summary["lost"] == 0 and summary["duplicated"] == 0 and all(t["identical"] for t in trials) else 1


def _write(args, meta: dict, trials: list[dict], load_before: list[float]) -> None:
    result = {
        "name": "crash_trials", "git_sha": git_sha(), "machine": machine_info(),
        "loadavg_at_start_1_5_15": load_before, "exchanges": args.exchanges, "encoder": "static",
        "trials_wanted": args.trials, "kills_wanted": args.kills, "seed": args.seed,
        "reference_step_seconds": dict(zip(STAGE, meta["seconds"], strict=True)),
        "summary": summarise(trials), "trials": trials,
        "note": ("a trial copies the uninterrupted run's workspace from before a random step, kills that step "
                 "(mode time: SIGKILL after a random delay within the step's duration, killed=false when it "
                 "finished first; mode point: SIGKILL at a random commit point and hit), reruns it and the "
                 "pipeline to the next scan, and compares every table and the vectors and index ids with the "
                 "uninterrupted run's. Resumable: run the script again to continue to trials_wanted."),
    }
    tmp = args.out.with_suffix(".part")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
