"""Helpers shared by the bench scripts: provenance (git sha, machine), stage timing with peak memory,
and writing results to ``bench/results/<name>.json`` plus a short table on stdout.

Peak memory of a stage (``Stage.peak_rss_mb``) is the peak resident set size of the whole process
while the stage ran, native allocations included (DuckDB, FAISS, torch), measured by the first of
these that works here (the method is recorded in every result as ``memory_method``):

* ``vmhwm-reset``: Linux keeps the process's peak RSS in ``/proc/self/status`` (VmHWM); writing
  ``5`` to ``/proc/self/clear_refs`` resets it to the current RSS, so reset at stage start, read at
  stage end gives the exact peak of that stage.
* ``psutil-sampled``: a thread samples ``psutil`` RSS every 5 ms; short spikes can be missed.
* ``ru_maxrss``: ``getrusage`` only knows the peak since the process started, so a stage shows its
  own peak only when it exceeds every earlier stage's; otherwise it reports the earlier, higher peak
  (an upper bound for that stage). ``peak_growth_mb`` is then the growth of the process peak.

tracemalloc is not used: it slows Python-heavy stages several-fold and does not see native memory.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# The corpora live beside the checkout, not in it; COPYHOUND_CORPORA points elsewhere (e.g. on a device).
CORPORA = Path(os.environ.get("COPYHOUND_CORPORA", ROOT.parent / "shared" / "corpora"))


# ---------------------------------------------------------------------------------- provenance
def git_sha() -> str | None:
    """HEAD's sha, with ``-dirty`` when the working tree has uncommitted changes; None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if status.strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    # Imports are deferred so that e.g. a CPU-only run never pays for importing torch it does not use;
    # callers ask for machine_info() at the end of a run, when the modules are loaded anyway.
    try:
        mod = __import__(module)
    except Exception:  # noqa: BLE001 - a missing or broken optional package is just "absent"
        return None
    return getattr(mod, "__version__", None)


def machine_info(*, gpu: bool = False) -> dict[str, Any]:
    """CPU model, cores, RAM, python and library versions; with ``gpu=True`` also the CUDA device."""
    try:
        from engine.encoders.base import cpu_has_bf16

        bf16 = cpu_has_bf16()
    except Exception:  # noqa: BLE001
        bf16 = None
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "faiss": _version("faiss"),
        "duckdb": _version("duckdb"),
        "cpu_bf16": bf16,  # AVX512_BF16 or AMX: MiniLMEncoder runs in bf16 on CPU when True
        # Other work on the machine skews every figure; a load above the core count means contention.
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if gpu:
        try:
            import torch

            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                info["gpu"] = props.name
                info["gpu_memory_gb"] = round(props.total_memory / 1024**3, 1)
                info["cuda"] = torch.version.cuda
        except Exception:  # noqa: BLE001
            pass
    return info


# ---------------------------------------------------------------------------------- memory
def _vmhwm_kb() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """This process's resident memory now, in MB (None where /proc is not there)."""
    kb = _rss_kb()
    return kb / 1024 if kb else None


def footprint_mb() -> float | None:
    """This process's resident memory plus what its child processes hold of their own, in MB.

    Forked workers (a multiprocessing pool, Ray's local workers) share the parent's pages until they write to
    them, and the parent's RSS already counts those, so a child adds its private pages only
    (``Private_*`` of ``/proc/PID/smaps_rollup``; copied-on-write pages included).
    """
    kb = _rss_kb()
    if kb is None:
        return None
    return (kb + sum(_private_kb(pid) for pid in _child_pids())) / 1024


def _child_pids() -> list[int]:
    pids: list[int] = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as fh:
                pids.extend(int(p) for p in fh.read().split())
    except OSError:
        pass
    return pids


def _private_kb(pid: int) -> int:
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        pass  # the child exited between listing and reading
    return total


def _rss_kb() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_vmhwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS of this process since it started, MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024**2 if sys.platform == "darwin" else 1024), 1)


def _memory_method() -> str:
    if _vmhwm_kb() is not None and _reset_vmhwm():
        return "vmhwm-reset"
    try:
        import psutil  # noqa: F401

        return "psutil-sampled"
    except ImportError:
        return "ru_maxrss"


MEMORY_METHOD = _memory_method()
LOADAVG_AT_IMPORT = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


class _Sampler:
    """psutil RSS sampled by a daemon thread (the fallback where VmHWM cannot be reset)."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._proc.memory_info().rss)


# ---------------------------------------------------------------------------------- stages
@dataclass
class Stage:
    """One timed stage. ``items / seconds`` is the throughput in ``unit``s per second."""

    name: str
    seconds: float = 0.0
    items: int | None = None
    unit: str = ""
    peak_rss_mb: float | None = None
    rss_start_mb: float | None = None
    peak_growth_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        if self.items is None or self.seconds <= 0:
            return None
        return self.items / self.seconds

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_second"] = round(self.rate, 1) if self.rate is not None else None
        out["seconds"] = round(self.seconds, 4)
        out.update(out.pop("extra"))
        return out


@contextmanager
def stage(name: str, *, unit: str = "", items: int | None = None) -> Iterator[Stage]:
    """Time a block and record the process's peak RSS during it (see module docstring).

    Set ``st.items`` inside the block when the count is only known at the end, and put any other
    figures in ``st.extra``. The elapsed time is wall-clock (``time.perf_counter``).
    """
    st = Stage(name, items=items, unit=unit)
    rss0 = _rss_kb()
    st.rss_start_mb = round(rss0 / 1024, 1) if rss0 else None
    ru0 = peak_rss_mb()
    sampler = None
    if MEMORY_METHOD == "vmhwm-reset":
        _reset_vmhwm()
    elif MEMORY_METHOD == "psutil-sampled":
        sampler = _Sampler()
    t0 = time.perf_counter()
    try:
        yield st
    finally:
        st.seconds = time.perf_counter() - t0
        if MEMORY_METHOD == "vmhwm-reset":
            hwm = _vmhwm_kb()
            st.peak_rss_mb = round(hwm / 1024, 1) if hwm else None
        elif sampler is not None:
            st.peak_rss_mb = round(sampler.stop() / 1024**2, 1)
        else:
            st.peak_rss_mb = peak_rss_mb()
        st.peak_growth_mb = round(peak_rss_mb() - ru0, 1) if MEMORY_METHOD == "ru_maxrss" else None
        if st.peak_growth_mb is None and st.peak_rss_mb is not None and st.rss_start_mb is not None:
            st.peak_growth_mb = round(st.peak_rss_mb - st.rss_start_mb, 1)


# ---------------------------------------------------------------------------------- output
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain fixed-width text table of ``rows`` (dicts) restricted to ``columns``."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append(
            "  ".join(
                v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def stage_table(stages: list[Stage]) -> str:
    return table(
        [s.to_dict() for s in stages], ["name", "items", "unit", "seconds", "per_second", "peak_rss_mb"]
    )


def envelope(name: str, *, gpu: bool = False, **figures: Any) -> dict[str, Any]:
    """The common head of every result: what, when, which code, which machine, how memory was measured."""
    return {
        "bench": name,
        "loadavg_at_start": LOADAVG_AT_IMPORT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_sha": git_sha(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine_info(gpu=gpu),
        "memory_method": MEMORY_METHOD,
        "process_peak_rss_mb": peak_rss_mb(),
        **figures,
    }


def write_results(
    name: str, result: dict[str, Any], summary: str | None = None, results_dir: Path = RESULTS
) -> Path:
    """Write ``result`` to ``results_dir/<name>.json`` atomically; print ``summary`` (a table) to stdout."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    if summary:
        print(summary)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def percentiles(values, qs=(50, 90, 99)) -> dict[str, float | None]:
    """``{"p50": ..., ...}`` of a sequence of numbers (None when empty)."""
    import numpy as np

    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {f"p{q}": None for q in qs}
    return {f"p{q}": float(np.percentile(arr, q)) for q in qs}


# ---------------------------------------------------------------------------------- evasion
# How an evader perturbs a copied prompt to dodge exact matching. Homoglyphs, zero-width characters,
# case and spacing are undone by engine.ingest.fingerprint.normalize; typos, greetings, sign-offs and
# punctuation survive it and are what the embedding threshold has to absorb.
GREETINGS = (
    "Hi!",
    "Hello,",
    "Hey there.",
    "Good morning!",
    "Hi, quick question:",
    "Hello assistant,",
    "Please help:",
    "Dear AI,",
    "Yo,",
    "Greetings.",
)
SIGNOFFS = (
    "Thanks!",
    "Thank you.",
    "Thanks in advance.",
    "Cheers",
    "Please be detailed.",
    "Appreciate it!",
    "Thx",
    "Answer quickly please.",
    "Much appreciated.",
    "Best regards",
)
HOMOGLYPHS = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "x": "\u0445",
    "y": "\u0443",
    "i": "\u0456",
    "A": "\u0391",
    "B": "\u0392",
    "E": "\u0395",
    "O": "\u039f",
}
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
PERTURB_OPS = ("typos", "greeting", "signoff", "homoglyphs", "zero_width", "case", "spacing", "punctuation")


def _typos(text: str, rng, k: int) -> str:
    chars = list(text)
    for _ in range(k):
        letters = [i for i, c in enumerate(chars) if c.isalpha()]
        if len(letters) < 2:
            break
        i = rng.choice(letters)
        kind = rng.randrange(4)
        if kind == 0 and i + 1 < len(chars):  # swap neighbours
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif kind == 1:  # drop
            del chars[i]
        elif kind == 2:  # double
            chars.insert(i, chars[i])
        else:  # neighbouring key-ish substitution
            chars[i] = rng.choice("etaoinshrdlu")
    return "".join(chars)


def perturb(
    text: str, rng, ops: tuple[str, ...] | None = None, n_ops: int = 3
) -> tuple[str, tuple[str, ...]]:
    """A perturbed copy of ``text`` and the ops applied. ``rng`` is a ``random.Random``.

    With ``ops=None``, ``n_ops`` distinct ops are drawn from :data:`PERTURB_OPS`. Typos are about one
    per 60 characters (at least 1, at most 6), which keeps the prompt readable.
    """
    if ops is None:
        ops = tuple(rng.sample(PERTURB_OPS, n_ops))
    out = text
    for op in ops:
        if op == "typos":
            out = _typos(out, rng, max(1, min(6, len(out) // 60)))
        elif op == "greeting":
            out = rng.choice(GREETINGS) + rng.choice((" ", "\n")) + out
        elif op == "signoff":
            out = out + rng.choice((" ", "\n", "\n\n")) + rng.choice(SIGNOFFS)
        elif op == "homoglyphs":
            out = "".join(HOMOGLYPHS[c] if c in HOMOGLYPHS and rng.random() < 0.3 else c for c in out)
        elif op == "zero_width":
            out = "".join(
                c + rng.choice(ZERO_WIDTH) if c.isalpha() and rng.random() < 0.1 else c for c in out
            )
        elif op == "case":
            mode = rng.randrange(3)
            out = out.upper() if mode == 0 else out.lower() if mode == 1 else out.title()
        elif op == "spacing":
            out = "".join(c + " " * rng.randint(1, 2) if c == " " and rng.random() < 0.3 else c for c in out)
            out = rng.choice(("", "  ", "\n")) + out + rng.choice(("", " ", "\n"))
        elif op == "punctuation":
            stripped = out.rstrip(" .?!")
            out = stripped + rng.choice(("", "?", "??", "!", ".", "...")) if stripped else out
            if rng.random() < 0.5:
                out = out.replace(",", "", 1) if "," in out else out.replace(" ", ", ", 1)
        else:
            raise ValueError(f"unknown perturbation {op!r}; known: {', '.join(PERTURB_OPS)}")
    return out, tuple(ops)
