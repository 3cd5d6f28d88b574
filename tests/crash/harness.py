"""What the crash tests and `bench.crash_trials` share: the pipeline as real copyhound processes, and the
workspace's state reduced to what must survive a crash.

`run_step` runs one command (`ingest FILE`, `embed`, `scan`, static tier) as `python -m engine.cli.main`
in a fresh process, optionally armed with `COPYHOUND_CRASH_AT`; `state` reads a workspace (DuckDB
read-only, the shard files, the FAISS index) into plain values; `check_invariants` asserts what holds
after any number of crashes and reruns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import faiss
import numpy as np

from engine.store.workspace import CLOSED_NAME

ROOT = Path(__file__).resolve().parents[2]
ENCODER = "static-minilm-256"
CRASH_ENV = "COPYHOUND_CRASH_AT"
TRACE_ENV = "COPYHOUND_CRASH_TRACE"
KILLED = -9  # Popen's returncode for a process ended by SIGKILL

# Compared in full after a crash and rerun: the system of record (prompts, exchanges, embeddings) and
# every table a scan writes. Columns that legitimately differ (wall-clock times, the staging file id a
# kill during staging consumes) are left out.
TABLES = {
    "prompts": "prompt_id, fingerprint, text, normalized, n_chars, n_exchanges, n_accounts, first_seen, last_seen",
    "exchanges": "exchange_id, account_id, ts, prompt_id, response, model, ip, meta::VARCHAR, line",
    "accounts": "account_id, n_exchanges, n_prompts, first_seen, last_seen",
    "embeddings": "prompt_id, encoder, shard_id",
    "embedding_shards": "shard_id, encoder, path, n, dim",
    "indexes": "encoder, path, factory, count, max_shard",
}
FINDINGS = {
    "matches": "prompt_a, prompt_b, similarity",
    "families": "family_id, prompt_id, center_id, sim_to_center",
    "templates": "template_id, pattern, anchors::VARCHAR, kind, n_prompts, n_accounts, n_exchanges, "
                 "slot_diversity, fixed_ratio",
    "template_members": "template_id, prompt_id",
    "account_links": "account_a, account_b, weight, n_shared, evidence::VARCHAR",
    "rings": "ring_id, score, n_accounts, n_exchanges, signals::VARCHAR, summary",
    "account_scores": "account_id, score, ring_id, top_signal, signals::VARCHAR",
}


def command(step: tuple[str, ...], ws: Path) -> list[str]:
    """The command line of a pipeline step: ("ingest", FILE), ("embed",) or ("scan",)."""
    verb, *args = step
    cmd = [sys.executable, "-m", "engine.cli.main", verb, "-w", str(ws), *args]
    if verb in ("embed", "scan"):
        cmd += ["--encoder", "static"]
    return cmd


def run_step(step: tuple[str, ...], ws: Path, *, crash_at: str | None = None, trace: Path | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, TRACE_ENV)}
    if crash_at:
        env[CRASH_ENV] = crash_at
    if trace:
        env[TRACE_ENV] = str(trace)
    return subprocess.run(command(step, ws), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_ok(step: tuple[str, ...], ws: Path, **kw) -> subprocess.CompletedProcess:
    done = run_step(step, ws, **kw)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(step)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def copy_workspace(src: Path, dst: Path) -> None:
    """Copy a workspace; the static table under models/ is hard-linked (never written in place)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("models"))
    if (src / "models").is_dir():
        shutil.copytree(src / "models", dst / "models", copy_function=os.link)


def _rows(con, table: str, columns: str) -> list[tuple]:
    return con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()


def state(ws: Path) -> dict:
    """The workspace as comparable values: each table's rows, the vectors per prompt, the index's ids."""
    con = duckdb.connect(str(ws / "copyhound.duckdb"), read_only=True)
    try:
        out = {name: _rows(con, name, cols) for name, cols in {**TABLES, **FINDINGS}.items()}
        out["tables"] = sorted(r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
        out["scans_done"] = con.execute(
            "SELECT count(*), max(n_prompts) FROM scan_runs WHERE status = 'done'").fetchone()
    finally:
        con.close()
    ids, vecs = [], []
    for _, _, name, _, _ in out["embedding_shards"]:
        with np.load(ws / "vectors" / ENCODER / name) as data:
            ids.append(data["ids"])
            vecs.append(data["vecs"])
    out["vector_ids"] = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    out["vectors"] = np.concatenate(vecs) if vecs else np.zeros((0, 256), np.float16)
    index_path = ws / "index" / f"prompts.{ENCODER}.faiss"
    out["index_ids"] = None
    if index_path.exists():
        index = faiss.read_index(str(index_path))  # held: id_map points into it
        out["index_ids"] = faiss.vector_to_array(index.id_map).copy()
        del index
    out["leftovers"] = sorted(str(p.relative_to(ws)) for p in ws.rglob("*")
                              if p.is_file() and p.name != CLOSED_NAME
                              and (p.name.startswith(".") or ".tmp" in p.name))
    return out


def check_invariants(s: dict) -> list[str]:
    """What must hold after any crash and rerun, as a list of violations (empty: all hold)."""
    bad = []
    eids = [r[0] for r in s["exchanges"]]
    if len(eids) != len(set(eids)):
        bad.append(f"{len(eids)} exchanges for {len(set(eids))} distinct ids")
    prompts = np.array(sorted(r[0] for r in s["prompts"]), np.int64)
    embedded = [r[0] for r in s["embeddings"]]
    if s["embeddings"] and (len(embedded) != len(set(embedded)) or not np.array_equal(np.sort(embedded), prompts)):
        bad.append(f"{len(embedded)} embeddings rows for {len(prompts)} prompts")
    if len(s["vector_ids"]) and not np.array_equal(np.sort(s["vector_ids"]), prompts):
        bad.append(f"{len(s['vector_ids'])} vectors in the shards for {len(prompts)} prompts")
    if s["index_ids"] is not None and not np.array_equal(np.sort(s["index_ids"]), prompts):
        bad.append(f"{len(s['index_ids'])} index ids ({len(np.unique(s['index_ids']))} distinct) "
                   f"for {len(prompts)} prompts")
    if s["leftovers"]:
        bad.append(f"temporary files left: {s['leftovers'][:5]}")
    staging = [t for t in s["tables"] if t.startswith(("stage_", "norm_"))]
    if staging:
        bad.append(f"staging tables left: {staging}")
    return bad


def differences(got: dict, want: dict, tables=(*TABLES, *FINDINGS)) -> list[str]:
    """Tables (and vectors, index ids) whose content differs between two states."""
    out = [t for t in tables if got[t] != want[t]]
    if got["vector_ids"].shape != want["vector_ids"].shape or not (
            np.array_equal(np.sort(got["vector_ids"]), np.sort(want["vector_ids"]))):
        out.append("vector ids")
    else:
        order_g, order_w = np.argsort(got["vector_ids"]), np.argsort(want["vector_ids"])
        if not np.array_equal(got["vectors"][order_g], want["vectors"][order_w]):
            out.append("vectors")
    if (got["index_ids"] is None) != (want["index_ids"] is None) or (
            got["index_ids"] is not None and not np.array_equal(np.sort(got["index_ids"]), np.sort(want["index_ids"]))):
        out.append("index ids")
    return out
