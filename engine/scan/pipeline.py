"""`scan`: the self-join over all embedded prompts, then families, templates, links, rings and scores.

Resumable: the self-join yields numbered blocks of edges; each block's edges and the block counter are
committed together, so a killed scan restarts at the next block (as long as no new prompt was embedded
in between; then the join starts over, since its blocks cover another set of vectors). Idempotent: a
scan over the same embedded prompts as the last finished one changes nothing.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pyarrow as pa

import index as faiss_index
from engine.config import DEFAULT_THRESHOLD
from engine.detect.families import build_families_streamed
from engine.detect.templates import TemplateParams, mine_templates
from engine.encoders.base import Encoder
from engine.errors import DetectionError, IndexStateError
from engine.models import ScanResult
from engine.progress import ProgressFn, no_progress
from engine.store import vectors
from engine.store.workspace import Store

log = logging.getLogger(__name__)

# A prompt keeps at most this many near-copy edges (its most similar ones): thousands of exact-ish copies of
# one viral text would otherwise produce millions of edges that say nothing more than "one big family".
MAX_NEIGHBORS = 200
# Rows of the self-join per committed block: the most work a killed scan can lose.
SELFJOIN_BLOCK = 4096
# Committed join blocks between two progress lines in the log (a 10M scan has ~1,150 blocks).
JOIN_LOG_EVERY = 50
# Edges read back per batch when building families: bounds that stage's memory beyond the adjacency.
EDGE_CHUNK = 4_194_304
# A template needs this many distinct prompts: fewer is an anecdote, not a sweep.
MIN_TEMPLATE_PROMPTS = 20


def _state(store: Store, encoder: str) -> tuple[int, int]:
    with store.connect() as con:
        n, max_shard = con.execute(
            "SELECT count(*), coalesce(max(shard_id), 0) FROM embeddings WHERE encoder = ?", [encoder]
        ).fetchone()
    return int(n), int(max_shard)


def run_scan(store: Store, encoder: Encoder, threshold: float, *, progress: ProgressFn = no_progress,
             force: bool = False, embedded: int = 0, recheck=None,
             crowd_radius: float = DEFAULT_THRESHOLD, mapper=None,
             join_settings: faiss_index.JoinSettings = faiss_index.DEFAULT_JOIN) -> ScanResult:
    """Self-join the encoder's vectors at `threshold`, then rebuild every detection table.

    `recheck` (an `engine.scan.recheck.Rechecker`, optional) confirms the self-join's candidate edges with
    the transformer before families are built; `crowd_radius` is the encoder's who-else threshold;
    `mapper` computes the self-join's blocks elsewhere (`engine.scan.ray.parallel_map`), same blocks.
    `join_settings` (`index.JoinSettings`): how the IVF join (above `index.EXACT_MAX` prompts) partitions
    its comparisons: nprobe, spill, max_list, point_probes; more finds more of the pairs near the
    threshold, for more time (see README, "Scale").
    """
    started = time.monotonic()
    stage: dict[str, float] = {}
    n, max_shard = _state(store, encoder.name)
    if n == 0:
        raise DetectionError(f"nothing to scan in {store.root}: ingest and embed some exchanges first")
    with store.connect() as con:
        # The latest scan of any encoder: the detection tables hold its results, so a scan by another
        # encoder (or with and without the re-check) in between means they must be recomputed.
        last = con.execute(
            """SELECT scan_id, n_prompts, max_shard, blocks_done, status, threshold, method, encoder FROM scan_runs
               ORDER BY scan_id DESC LIMIT 1""").fetchone()
    # The method names how the join was planned, so a scan asked with other settings is not "unchanged"
    # and a killed one resumes only with the plan its committed blocks belong to.
    join = "exact" if n <= faiss_index.EXACT_MAX else "ivf"
    method = ("exact" if join == "exact" else join_settings.label) + ("+recheck" if recheck is not None else "")
    same_input = (last is not None and last[7] == encoder.name and last[1] == n and last[2] == max_shard
                  and abs(last[5] - threshold) < 1e-6 and last[6] == method)
    if same_input and last[4] == "done" and not force:
        log.info("scan: nothing new since scan %d; results unchanged", last[0])
        return _summary(store, embedded, resumed=False, seconds=time.monotonic() - started, stage=stage,
                        prompts=n)
    resumed = same_input and last[4] == "running" and not force
    # float16 as stored: half the memory through the whole scan; the join and scoring convert per block.
    ids, vecs = vectors.load_vectors(store, encoder.name, encoder.dim, dtype=np.float16)
    stage["load_vectors"] = time.monotonic() - started

    # ---- self-join (resumable by block)
    t0 = time.monotonic()
    with store.connect() as con:
        if resumed:
            scan_id, start_block = int(last[0]), int(last[3])
            log.info("scan: resuming scan %d at block %d", scan_id, start_block)
        else:
            scan_id = 1 + con.execute("SELECT coalesce(max(scan_id), 0) FROM scan_runs").fetchone()[0]
            start_block = 0
            con.execute("BEGIN")
            con.execute("DELETE FROM matches")
            con.execute("INSERT INTO scan_runs VALUES (?, ?, ?, ?, ?, ?, 0, 'running', now(), NULL)",
                        [scan_id, encoder.name, threshold, method, n, max_shard])
            con.execute("COMMIT")
    idx = _open_index(store, encoder)
    # The workspace's IVF index was trained on these vectors: its lists partition the join as well as a
    # k-means of the join's own would, which at a million prompts saves ~50 s.
    centroids = faiss_index.ivf_centroids(idx) if idx is not None and idx.ntotal == n else None
    blocks = faiss_index.self_join(vecs, ids, threshold, start_block=start_block, max_neighbors=MAX_NEIGHBORS,
                                   block_size=SELFJOIN_BLOCK, mapper=mapper or faiss_index.local_map,
                                   centroids=centroids, settings=join_settings, method=join)
    joined = 0
    for block in blocks:
        with store.connect() as con:
            con.execute("BEGIN")
            if len(block):
                con.register("edge_block", pa.table({"a": block.a, "b": block.b,
                                                     "s": np.minimum(block.sim, 1.0).astype(np.float32)}))
                con.execute("INSERT INTO matches SELECT a, b, s FROM edge_block")
                con.unregister("edge_block")
            con.execute("UPDATE scan_runs SET blocks_done = ? WHERE scan_id = ?", [block.block_no + 1, scan_id])
            con.execute("COMMIT")
        progress("self-join", block.block_no + 1, None)
        joined += len(block)
        if (block.block_no + 1) % JOIN_LOG_EVERY == 0:  # a line now and then for nightly jobs' logs
            log.info("self-join: %d blocks done, %d edges this run, %.0f s", block.block_no + 1, joined,
                     time.monotonic() - t0)
    stage["self_join"] = time.monotonic() - t0
    # Families and templates need neither the vectors nor the index: let them go (at 5.7M static-tier
    # prompts 2.9 + 1.5 GB) and read them again for scoring, which costs seconds.
    del vecs, blocks
    idx = None
    if recheck is not None:
        t0 = time.monotonic()
        recheck.apply(progress=progress)
        stage["recheck"] = time.monotonic() - t0

    # ---- families, templates, accounts: recomputed whole, in one transaction
    with store.connect() as con:
        t0 = time.monotonic()
        progress("families", 0, 1)
        weights = _aligned(ids, con.execute("SELECT prompt_id, n_exchanges FROM prompts").fetchnumpy())
        fam = build_families_streamed(ids, lambda: _edge_chunks(con), weights)
        stage["families"] = time.monotonic() - t0
        progress("families", 1, 1)

        t0 = time.monotonic()
        texts = StoredTexts(con, con.execute("SELECT prompt_id FROM prompts ORDER BY prompt_id").fetchnumpy()
                            ["prompt_id"].astype(np.int64))
        mining = mine_templates(texts.prompt_ids, texts, TemplateParams(min_prompts=MIN_TEMPLATE_PROMPTS),
                                con=con)
        stage["templates"] = time.monotonic() - t0
        progress("templates", 1, 1)

        con.execute("BEGIN")
        try:
            _write_families(con, fam)
            _write_templates(con, mining)
            del fam, mining
            from engine.detect.scoring import score_accounts

            t_load = time.monotonic()
            again, vecs = vectors.load_vectors(store, encoder.name, encoder.dim, dtype=np.float16)
            if not np.array_equal(again, ids):
                raise DetectionError(f"{store.root}: the vectors changed during the scan; run scan again")
            idx = _open_index(store, encoder)
            stage["load_vectors"] += time.monotonic() - t_load
            t0 = time.monotonic()
            summary = score_accounts(con, ids, vecs, encoder, index=idx, crowd_radius=crowd_radius)
            stage["scoring"] = time.monotonic() - t0
            con.execute("UPDATE scan_runs SET status = 'done', finished = now() WHERE scan_id = ?", [scan_id])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    progress("scoring", 1, 1)
    log.info("scan %d done in %.1f s: %s; %s", scan_id, time.monotonic() - started,
             ", ".join(f"{k} {v:.1f}s" for k, v in stage.items()), json.dumps(summary, default=str)[:300])
    return _summary(store, embedded, resumed=resumed, seconds=time.monotonic() - started, stage=stage, prompts=n)


class StoredTexts:
    """The normalised prompt texts, read from the store a range of prompt ids at a time.

    The miner used to get all of them as one list: at 10M prompts ~6 GB of Python strings, held through
    the whole mining stage and the largest single part of the scan's peak.
    """

    def __init__(self, con, prompt_ids: np.ndarray) -> None:
        self._con = con
        self.prompt_ids = prompt_ids  # sorted

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def chunks(self, size: int):
        for c0 in range(0, len(self.prompt_ids), size):
            lo, hi = self.prompt_ids[c0], self.prompt_ids[min(c0 + size, len(self.prompt_ids)) - 1]
            got = self._con.execute(
                "SELECT normalized FROM prompts WHERE prompt_id BETWEEN ? AND ? ORDER BY prompt_id", [int(lo), int(hi)]
            ).fetchnumpy()["normalized"].tolist()
            if len(got) != min(size, len(self.prompt_ids) - c0):
                raise DetectionError(f"prompts changed during the scan (ids {lo}..{hi}); run scan again")
            yield got

    def text(self, row: int) -> str:
        got = self._con.execute(
            "SELECT normalized FROM prompts WHERE prompt_id = ?", [int(self.prompt_ids[row])]
        ).fetchone()
        if got is None:
            raise DetectionError(f"prompt {self.prompt_ids[row]} vanished during the scan; run scan again")
        return got[0]


def _open_index(store: Store, encoder: Encoder):
    try:
        return vectors.open_index(store, encoder.name, encoder.dim)[0]
    except IndexStateError:  # no index yet (vectors written by hand): the join and crowding manage alone
        return None


def _edge_chunks(con):
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


def _write_families(con, fam) -> None:
    con.execute("DELETE FROM families")
    con.register("fam", pa.table({"family_id": fam.family_ids, "prompt_id": fam.prompt_ids,
                                  "center_id": fam.family_ids, "sim": fam.sim_to_center}))
    con.execute("INSERT INTO families SELECT family_id, prompt_id, center_id, sim FROM fam")
    con.unregister("fam")


def _write_templates(con, mining) -> None:
    con.execute("DELETE FROM templates")
    con.execute("DELETE FROM template_members")
    pids, tids = mining.assignments
    con.register("tm", pa.table({"template_id": np.asarray(tids, np.int64), "prompt_id": np.asarray(pids, np.int64)}))
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


def _summary(store: Store, embedded: int, *, resumed: bool, seconds: float, stage: dict, prompts: int) -> ScanResult:
    with store.connect() as con:
        edges = con.execute("SELECT count(*) FROM matches").fetchone()[0]
        families = con.execute(
            "SELECT count(*) FROM (SELECT family_id FROM families GROUP BY family_id HAVING count(*) > 1)"
        ).fetchone()[0]
        templates = con.execute("SELECT count(*) FROM templates").fetchone()[0]
        rings = con.execute("SELECT count(*) FROM rings").fetchone()[0]
        flagged = con.execute("SELECT count(*) FROM account_scores WHERE score >= 0.5").fetchone()[0]
    return ScanResult(embedded, prompts, int(edges), int(families), int(templates), int(rings), int(flagged),
                      resumed, seconds, stage)
