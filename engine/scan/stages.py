"""The scan's stages, in order, each owning what it writes; `engine.scan.pipeline.run_scan` runs them.

1. `JoinStage`: the self-join; each block of edges is committed with the run's block counter, so a
   killed scan resumes at its next block.
2. `RecheckStage` (a fast-tier scan asked to re-check): keeps the edges the transformer confirms.
3. `FamiliesStage`: near-copy families from the edges.
4. `TemplatesStage`: templates mined from the prompt texts.
5. `ScoringStage`: account links, rings and account scores, from the tables written before it.

The first two commit as they go. The last three replace the previous scan's detection tables: each
computes in `run` and writes in `write`, and the pipeline calls every `write` in one transaction, with
the run marked done, so a reader sees the previous scan's tables or this one's, never a mix.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

import index as faiss_index
from engine.config import DEFAULT_DETECT, DetectSettings
from engine.crashpoints import crash_point
from engine.detect.families import build_families_streamed
from engine.detect.scoring import score_accounts
from engine.detect.templates import TemplateParams, mine_templates
from engine.encoders.base import Encoder
from engine.errors import DetectionError, IndexStateError
from engine.progress import ProgressFn, no_progress
from engine.scan.texts import StoredTexts
from engine.store import vectors
from engine.store.workspace import Store

if TYPE_CHECKING:
    from engine.scan.recheck import Rechecker

log = logging.getLogger(__name__)

# Committed join blocks between two progress lines in the log (a 10M scan has ~1,150 blocks).
JOIN_LOG_EVERY = 50
# Edges read back per batch when building families: bounds that stage's memory beyond the adjacency.
EDGE_CHUNK = 4_194_304
# The prompts embedded after a shard (encoder, shard): what an incremental scan joins.
_NEW_PROMPTS = "SELECT prompt_id FROM embeddings WHERE encoder = ? AND shard_id > ?"
# A template needs this many distinct prompts: fewer is an anecdote, not a sweep.
MIN_TEMPLATE_PROMPTS = 20


@dataclass
class ScanRun:
    """The scan's row in `scan_runs`: what it joins (prompts up to a shard, at a threshold, by a method).

    `scan_id` is None until `begin` records a new run; a resumed run has its id and the first join block
    still to compute.
    """

    scan_id: int | None
    encoder: str
    threshold: float
    method: str
    n_prompts: int
    max_shard: int
    start_block: int = 0
    # None: the join covers every vector. Else the last shard an earlier scan's edges cover: this run
    # joins the prompts of later shards against all and adds its edges to those (an incremental scan).
    base_shard: int | None = None

    def begin(self, con: duckdb.DuckDBPyConnection) -> None:
        """Record a new run and clear the edges it will compute (the caller commits).

        A full join clears every edge; an incremental one the edges of prompts past its base shard, which
        only a killed incremental run can have left (its blocks covered other new prompts).
        """
        self.scan_id = 1 + con.execute("SELECT coalesce(max(scan_id), 0) FROM scan_runs").fetchone()[0]
        if self.base_shard is None:
            con.execute("DELETE FROM matches")
        else:
            con.execute(f"DELETE FROM matches WHERE prompt_a IN ({_NEW_PROMPTS}) OR prompt_b IN ({_NEW_PROMPTS})",
                        [self.encoder, self.base_shard, self.encoder, self.base_shard])
        con.execute(
            """INSERT INTO scan_runs (scan_id, encoder, threshold, method, n_prompts, max_shard, blocks_done,
                                      status, started, finished, base_shard)
               VALUES (?, ?, ?, ?, ?, ?, 0, 'running', now(), NULL, ?)""",
            [self.scan_id, self.encoder, self.threshold, self.method, self.n_prompts, self.max_shard,
             self.base_shard])

    def new_prompts(self, con: duckdb.DuckDBPyConnection) -> np.ndarray:
        """Prompt ids an incremental run joins (embedded in shards past its base), sorted."""
        got = con.execute(_NEW_PROMPTS, [self.encoder, self.base_shard]).fetchnumpy()["prompt_id"]
        return np.sort(np.asarray(got, dtype=np.int64))

    def finish(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("UPDATE scan_runs SET status = 'done', finished = now() WHERE scan_id = ?", [self.scan_id])


@dataclass
class ScanContext:
    """What the stages share: the store and encoder, the run's settings, vectors, timings, progress.

    The vectors are read for the join, which lets them go (with the index), and read again for scoring,
    checked to be the same prompts: families and templates need neither, and at 5.7M static-tier
    prompts they are 2.9 + 1.5 GB that template mining, the scan's memory peak, would hold too.
    `connection()` is the one connection of the detection stages, opened by the first that asks and
    held until the context closes (`with ScanContext(...) as ctx`), so no other process writes between
    them; the join opens one per block instead, so that readers (the TUI) get in between blocks.
    """

    store: Store
    encoder: Encoder
    threshold: float
    run: ScanRun
    join: str  # "exact" or "ivf"
    join_settings: faiss_index.JoinSettings
    max_neighbors: int
    block_size: int
    crowd_radius: float
    mapper: Callable | None = None
    recheck: Rechecker | None = None
    progress: ProgressFn = no_progress
    detect: DetectSettings = DEFAULT_DETECT
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, in the order they first ran
    summary: dict = field(default_factory=dict)  # scoring's figures, for the log
    joined: int = 0  # prompts the join compared with all: every one on a full join, the new ones else
    ids: np.ndarray | None = None  # int64 (n,) sorted prompt ids of the vectors, kept through the scan
    _vecs: np.ndarray | None = field(default=None, init=False, repr=False)
    _index: object | None = field(default=None, init=False, repr=False)
    _con: duckdb.DuckDBPyConnection | None = field(default=None, init=False, repr=False)
    _held: ExitStack = field(default_factory=ExitStack, init=False, repr=False)

    def __enter__(self) -> ScanContext:
        return self

    def __exit__(self, *exc) -> bool | None:
        self.release_vectors()
        self._con = None
        # The exception passes through the connection's own exit, which words DuckDB's out-of-memory
        # and disk-full errors for the user.
        return self._held.__exit__(*exc)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the block's wall time to `seconds[stage]`."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.monotonic() - t0

    def vectors(self) -> np.ndarray:
        """The encoder's vectors, float16 (n, dim) as stored, rows in `ids` order; read when not held."""
        if self._vecs is None:
            # float16 as stored: half the memory through the whole scan; the join and scoring convert per block.
            ids, vecs = vectors.load_vectors(self.store, self.encoder.name, self.encoder.dim, dtype=np.float16)
            if self.ids is None:
                self.ids = ids
            elif not np.array_equal(ids, self.ids):
                raise DetectionError(f"{self.store.root}: the vectors changed during the scan; run scan again")
            self._vecs = vecs
        return self._vecs

    def index(self):
        """The workspace's FAISS index (None when there is none yet), held with the vectors."""
        if self._index is None:
            self._index = _open_index(self.store, self.encoder)
        return self._index

    def release_vectors(self) -> None:
        self._vecs = None
        self._index = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._held.enter_context(self.store.connect())
        return self._con


class Stage:
    """One step of the scan: `run` does its work; `write` replaces its detection tables, inside the
    transaction the detection stages share (the stages that commit as they go have nothing to write)."""

    def run(self, ctx: ScanContext) -> None:
        pass

    def write(self, ctx: ScanContext, con: duckdb.DuckDBPyConnection) -> None:
        pass


class JoinStage(Stage):
    """The self-join at the scan's threshold into `matches`, committed block by block (resumable)."""

    def run(self, ctx: ScanContext) -> None:
        with ctx.timed("load_vectors"):
            vecs = ctx.vectors()
        store, run = ctx.store, ctx.run
        t0 = time.monotonic()
        with ctx.timed("self_join"):
            if run.scan_id is None:
                with store.transaction() as con:
                    run.begin(con)
                crash_point("scan.begin.after_commit")
            else:
                log.info("scan: resuming scan %d at block %d", run.scan_id, run.start_block)
            idx = ctx.index()
            if run.base_shard is not None:
                blocks = self._delta_blocks(ctx, vecs, idx)
            else:
                ctx.joined = len(ctx.ids)
                # The workspace's IVF index was trained on these vectors: its lists partition the join as
                # well as a k-means of the join's own would, which at a million prompts saves ~50 s.
                centroids = (faiss_index.ivf_centroids(idx) if idx is not None and idx.ntotal == run.n_prompts
                             else None)
                blocks = faiss_index.self_join(vecs, ctx.ids, ctx.threshold, start_block=run.start_block,
                                               max_neighbors=ctx.max_neighbors, block_size=ctx.block_size,
                                               mapper=ctx.mapper or faiss_index.local_map, centroids=centroids,
                                               settings=ctx.join_settings, method=ctx.join)
            joined = 0
            for block in blocks:
                with store.transaction() as con:
                    _write_edges(con, block)
                    con.execute("UPDATE scan_runs SET blocks_done = ? WHERE scan_id = ?",
                                [block.block_no + 1, run.scan_id])
                    crash_point("scan.join.before_commit")
                crash_point("scan.join.after_commit")
                ctx.progress("self-join", block.block_no + 1, None)
                joined += len(block)
                if (block.block_no + 1) % JOIN_LOG_EVERY == 0:  # a line now and then for nightly jobs' logs
                    log.info("self-join: %d blocks done, %d edges this run, %.0f s", block.block_no + 1, joined,
                             time.monotonic() - t0)
        del vecs, idx, blocks
        ctx.release_vectors()  # see ScanContext: families and templates need neither

    @staticmethod
    def _delta_blocks(ctx: ScanContext, vecs: np.ndarray, idx) -> Iterator:
        """An incremental run's blocks: the prompts embedded after its base shard against all."""
        run = ctx.run
        if idx is None or idx.ntotal != run.n_prompts:
            # The scan embeds and indexes first, so this is a workspace changed under it.
            raise DetectionError(f"{ctx.store.root}: the index does not hold the scan's {run.n_prompts} "
                                 "prompts; run scan again")
        with ctx.store.connect() as con:
            new_ids = run.new_prompts(con)
        new = np.isin(ctx.ids, new_ids, assume_unique=True)
        ctx.joined = int(new.sum())
        log.info("scan: incremental join of %d prompts embedded since shard %d, against %d", int(new.sum()),
                 run.base_shard, len(ctx.ids))
        # The new prompts' own nearest lists, as many as the full join compares a prompt with.
        probes = ctx.join_settings.nprobe + ctx.join_settings.point_probes
        return faiss_index.delta_join(vecs, ctx.ids, new, ctx.threshold, idx, probes=probes,
                                      max_neighbors=ctx.max_neighbors, block_size=ctx.block_size,
                                      start_block=run.start_block)


class RecheckStage(Stage):
    """The transformer's re-check of the join's edges, when the scan was asked for one."""

    def run(self, ctx: ScanContext) -> None:
        if ctx.recheck is not None:
            with ctx.timed("recheck"):
                ctx.recheck.apply(progress=ctx.progress)


class FamiliesStage(Stage):
    """Near-copy families (stars around a centre) from the edges, weighted by each prompt's exchanges."""

    def __init__(self) -> None:
        self.fam = None  # built by run, dropped once written

    def run(self, ctx: ScanContext) -> None:
        con = ctx.connection()
        with ctx.timed("families"):
            ctx.progress("families", 0, 1)
            weights = _aligned(ctx.ids, con.execute("SELECT prompt_id, n_exchanges FROM prompts").fetchnumpy())
            self.fam = build_families_streamed(ctx.ids, lambda: _edge_chunks(con), weights)
        ctx.progress("families", 1, 1)

    def write(self, ctx: ScanContext, con: duckdb.DuckDBPyConnection) -> None:
        fam, self.fam = self.fam, None
        con.execute("DELETE FROM families")
        con.register("fam", pa.table({"family_id": fam.family_ids, "prompt_id": fam.prompt_ids,
                                      "center_id": fam.family_ids, "sim": fam.sim_to_center}))
        con.execute("INSERT INTO families SELECT family_id, prompt_id, center_id, sim FROM fam")
        con.unregister("fam")


class TemplatesStage(Stage):
    """Templates mined from every prompt's normalised text (read from the store as the miner asks)."""

    def __init__(self) -> None:
        self.mining = None  # mined by run, dropped once written

    def run(self, ctx: ScanContext) -> None:
        con = ctx.connection()
        with ctx.timed("templates"):
            texts = StoredTexts(con, con.execute("SELECT prompt_id FROM prompts ORDER BY prompt_id").fetchnumpy()
                                ["prompt_id"].astype(np.int64))
            self.mining = mine_templates(texts.prompt_ids, texts, TemplateParams(min_prompts=MIN_TEMPLATE_PROMPTS),
                                         con=con)
        ctx.progress("templates", 1, 1)

    def write(self, ctx: ScanContext, con: duckdb.DuckDBPyConnection) -> None:
        mining, self.mining = self.mining, None
        con.execute("DELETE FROM templates")
        con.execute("DELETE FROM template_members")
        pids, tids = mining.assignments
        con.register("tm", pa.table({"template_id": np.asarray(tids, np.int64),
                                     "prompt_id": np.asarray(pids, np.int64)}))
        con.execute("INSERT INTO template_members SELECT template_id, prompt_id FROM tm")
        con.unregister("tm")
        rows = [(t.template_id, t.pattern, json.dumps(list(t.anchors)), t.kind, t.n_prompts,
                 float(t.slot_diversity), float(getattr(t, "fixed_ratio", 0.0))) for t in mining.templates]
        if rows:
            con.executemany(  # one row per template: a few thousand at most, not a hot path
                "INSERT INTO templates VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)", rows)
        con.execute(
            """UPDATE templates SET n_accounts = s.na, n_exchanges = s.ne
               FROM (SELECT tm.template_id, count(DISTINCT e.account_id) AS na, count(*) AS ne
                     FROM template_members tm JOIN exchanges e USING (prompt_id) GROUP BY tm.template_id) s
               WHERE templates.template_id = s.template_id"""
        )


class ScoringStage(Stage):
    """Account links, rings and account scores (`engine.detect.scoring`).

    All in `write`: scoring reads the families and templates written before it in the same transaction.
    """

    def write(self, ctx: ScanContext, con: duckdb.DuckDBPyConnection) -> None:
        with ctx.timed("load_vectors"):
            vecs, idx = ctx.vectors(), ctx.index()
        with ctx.timed("scoring"):
            ctx.summary = score_accounts(con, ctx.ids, vecs, ctx.encoder, index=idx, crowd_radius=ctx.crowd_radius,
                                         settings=ctx.detect)


#: The scan, in order (see the module docstring).
STAGES: tuple[type[Stage], ...] = (JoinStage, RecheckStage, FamiliesStage, TemplatesStage, ScoringStage)


def _write_edges(con: duckdb.DuckDBPyConnection, block) -> None:
    if len(block):
        con.register("edge_block", pa.table({"a": block.a, "b": block.b,
                                             "s": np.minimum(block.sim, 1.0).astype(np.float32)}))
        con.execute("INSERT INTO matches SELECT a, b, s FROM edge_block")
        con.unregister("edge_block")


def _open_index(store: Store, encoder: Encoder):
    try:
        return vectors.open_index(store, encoder.name, encoder.dim)[0]
    except IndexStateError:  # no index yet (vectors written by hand): the join and crowding manage alone
        return None


def _edge_chunks(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The `matches` table in Arrow batches of EDGE_CHUNK rows, as numpy (a, b, similarity)."""
    for batch in con.sql("SELECT prompt_a, prompt_b, similarity FROM matches").to_arrow_reader(EDGE_CHUNK):
        yield (batch.column(0).to_numpy(), batch.column(1).to_numpy(), batch.column(2).to_numpy())


def _aligned(ids: np.ndarray, table: dict) -> np.ndarray:
    """The table's n_exchanges lined up with `ids` (sorted int64); 0 where a prompt is missing."""
    out = np.zeros(len(ids), np.float64)
    pid = np.asarray(table["prompt_id"], np.int64)
    pos = np.clip(np.searchsorted(ids, pid), 0, max(len(ids) - 1, 0))
    hit = ids[pos] == pid
    out[pos[hit]] = np.asarray(table["n_exchanges"], np.float64)[hit]
    return out
