"""`scan`: the self-join over all embedded prompts, then families, templates, links, rings and scores.

The work is a list of stages (`engine.scan.stages`), each owning what it writes; `run_scan` decides
whether there is anything to do and runs them. Resumable: the self-join yields numbered blocks of
edges; each block's edges and the block counter are committed together, so a killed scan restarts at
the next block (as long as no new prompt was embedded in between; then the join starts over, since
its blocks cover another set of vectors). Idempotent: a scan over the same embedded prompts as the
last finished one changes nothing.

Incremental: a workspace that grew since its last scan joins only the newly embedded prompts against
all (`index.delta_join`: new x old and new x new) and keeps the last scan's edges, so the join costs in
proportion to what arrived; families, templates, links, rings and scores are then recomputed whole
from all edges. `scan --full` joins everything again. How the edges differ from a full join's is
measured in `bench/incremental_scan.py` (docs/scale.md).
"""

from __future__ import annotations

import json
import logging
import time

import index as faiss_index
from engine.config import DEFAULT_DETECT, DEFAULT_THRESHOLD, FLAG_SCORE, DetectSettings
from engine.crashpoints import crash_point
from engine.encoders.base import Encoder
from engine.errors import DetectionError
from engine.models import ScanResult
from engine.progress import ProgressFn, no_progress
from engine.scan.stages import STAGES, ScanContext, ScanRun
from engine.store.workspace import Store, transaction

log = logging.getLogger(__name__)

# A prompt keeps at most this many near-copy edges (its most similar ones): thousands of exact-ish copies of
# one viral text would otherwise produce millions of edges that say nothing more than "one big family".
MAX_NEIGHBORS = 200
# Rows of the self-join per committed block: the most work a killed scan can lose.
SELFJOIN_BLOCK = 4096


def _state(store: Store, encoder: str) -> tuple[int, int]:
    with store.connect() as con:
        n, max_shard = con.execute(
            "SELECT count(*), coalesce(max(shard_id), 0) FROM embeddings WHERE encoder = ?", [encoder]
        ).fetchone()
    return int(n), int(max_shard)


def run_scan(store: Store, encoder: Encoder, threshold: float, *, progress: ProgressFn = no_progress,
             force: bool = False, full: bool = False, embedded: int = 0, recheck=None,
             crowd_radius: float = DEFAULT_THRESHOLD, mapper=None,
             join_settings: faiss_index.JoinSettings = faiss_index.DEFAULT_JOIN,
             detect: DetectSettings = DEFAULT_DETECT) -> ScanResult:
    """Self-join the encoder's vectors at `threshold`, then rebuild every detection table.

    `recheck` (an `engine.scan.recheck.Rechecker`, optional) confirms the self-join's candidate edges with
    the transformer before families are built; `crowd_radius` is the encoder's who-else threshold;
    `mapper` computes the self-join's blocks elsewhere (`engine.scan.ray.parallel_map`), same blocks.
    A scan after new prompts were embedded joins only those against all (`index.delta_join`) and adds
    their edges to the last scan's, when that scan used the same encoder, threshold and join settings;
    `full` (or `force`, or a re-check) joins every prompt again, `full` also with nothing new when the
    last scan was incremental. Detection runs whole either way.
    `join_settings` (`index.JoinSettings`): how the IVF join (above `index.EXACT_MAX` prompts) partitions
    its comparisons: nprobe, spill, max_list, point_probes; more finds more of the pairs near the
    threshold, for more time (see docs/scale.md). `detect`: which detection mechanisms run (all by default).
    """
    started = time.monotonic()
    n, max_shard = _state(store, encoder.name)
    if n == 0:
        raise DetectionError(f"nothing to scan in {store.root}: ingest and embed some exchanges first")
    with store.connect() as con:
        # The latest scan of any encoder: the detection tables hold its results, so a scan by another
        # encoder (or with and without the re-check) in between means they must be recomputed.
        last = con.execute(
            """SELECT scan_id, n_prompts, max_shard, blocks_done, status, threshold, method, encoder, finished,
                      base_shard
               FROM scan_runs ORDER BY scan_id DESC LIMIT 1""").fetchone()
        # An incremental join searches the index: it must hold every vector (embed brings it up to date;
        # vectors written without an index are joined in full).
        indexed = con.execute("SELECT coalesce(max(count), 0) FROM indexes WHERE encoder = ?",
                              [encoder.name]).fetchone()[0] == n
        # Exchanges of prompts already stored, or an analyst's mark, since the last scan: the join has
        # nothing new, but links, rings, scores and the watchlist must be recomputed.
        stale = last is not None and last[8] is not None and con.execute(
            """SELECT coalesce((SELECT max(finished) FROM ingest_files WHERE status = 'done') > ?, false)
                      OR coalesce((SELECT max(created) FROM marks) > ?, false)""", [last[8], last[8]]).fetchone()[0]
    # The method names how the join was planned, so a scan asked with other settings is not "unchanged"
    # and a killed one resumes only with the plan its committed blocks belong to.
    join = "exact" if n <= faiss_index.EXACT_MAX else "ivf"
    method = ("exact" if join == "exact" else join_settings.label) + ("+recheck" if recheck is not None else "")
    same_input = (last is not None and last[7] == encoder.name and last[1] == n and last[2] == max_shard
                  and abs(last[5] - threshold) < 1e-6 and last[6] == method)
    # `full` after an incremental scan joins everything again even with nothing new: its edges then come
    # from one join of all prompts.
    force = force or (full and last is not None and last[9] is not None)
    if same_input and last[4] == "done" and not force and not stale:
        log.info("scan: nothing new since scan %d; results unchanged", last[0])
        return _summary(store, embedded, resumed=False, seconds=time.monotonic() - started, stage={},
                        prompts=n)
    # A stale scan takes up its last run after its last block: no join, every detection stage again.
    redetect = same_input and last[4] == "done" and not force
    if redetect:
        log.info("scan: new exchanges or marks since scan %d; detection again on its edges", last[0])
    resumed = same_input and (last[4] == "running" or redetect) and not force
    if resumed:
        run = ScanRun(int(last[0]), encoder.name, threshold, method, n, max_shard, start_block=int(last[3]),
                      base_shard=last[9])
    else:
        joins_all = full or force or recheck is not None or not indexed
        base = None if joins_all else _incremental_base(last, encoder.name, threshold, method, max_shard)
        run = ScanRun(None, encoder.name, threshold, method, n, max_shard, base_shard=base)
        if base is not None:
            log.info("scan: joining the prompts embedded since shard %d (scan %d) against all; "
                     "`scan --full` joins everything again", base, last[0])
    stages = [stage() for stage in STAGES]
    with ScanContext(store, encoder, threshold, run, join, join_settings, MAX_NEIGHBORS, SELFJOIN_BLOCK,
                     crowd_radius, mapper=mapper, recheck=recheck, progress=progress, detect=detect) as ctx:
        for stage in stages:
            stage.run(ctx)
        # Families, templates, links, rings and scores are recomputed whole and replace the last scan's
        # together, with the run marked done.
        with transaction(ctx.connection()) as con:
            for stage in stages:
                stage.write(ctx, con)
            run.finish(con)
            crash_point("scan.detect.before_commit")
        crash_point("scan.detect.after_commit")
    progress("scoring", 1, 1)
    log.info("scan %d done in %.1f s: %s; %s", run.scan_id, time.monotonic() - started,
             ", ".join(f"{k} {v:.1f}s" for k, v in ctx.seconds.items()), json.dumps(ctx.summary, default=str)[:300])
    return _summary(store, embedded, resumed=resumed and not redetect, seconds=time.monotonic() - started,
                    joined=0 if redetect else ctx.joined,
                    stage=ctx.seconds, prompts=n)


def _incremental_base(last: tuple | None, encoder: str, threshold: float, method: str, max_shard: int) -> int | None:
    """The shard up to which the last scan's edges cover every prompt, when this scan may start from them.

    Only a join of the same encoder, threshold and method qualifies, and only with every shard up to
    its last still there: a finished run (full or incremental) whose shards are all older, or a killed
    incremental run, whose base's edges are intact (it clears only edges of prompts past that base,
    and so will this run). A killed full join has cleared the edges: then everything is joined again.
    """
    if last is None or last[7] != encoder or abs(last[5] - threshold) >= 1e-6 or last[6] != method:
        return None
    if last[4] == "done":
        base = int(last[2])
    elif last[9] is not None:
        base = int(last[9])
    else:
        return None
    return base if 0 < base < max_shard else None


def _summary(store: Store, embedded: int, *, resumed: bool, seconds: float, stage: dict, prompts: int,
             joined: int = 0) -> ScanResult:
    with store.connect() as con:
        edges = con.execute("SELECT count(*) FROM matches").fetchone()[0]
        families = con.execute(
            "SELECT count(*) FROM (SELECT family_id FROM families GROUP BY family_id HAVING count(*) > 1)"
        ).fetchone()[0]
        templates = con.execute("SELECT count(*) FROM templates").fetchone()[0]
        rings = con.execute("SELECT count(*) FROM rings").fetchone()[0]
        flagged = con.execute("SELECT count(*) FROM account_scores WHERE score >= ?", [FLAG_SCORE]).fetchone()[0]
    return ScanResult(embedded, prompts, int(edges), int(families), int(templates), int(rings), int(flagged),
                      resumed, seconds, stage, joined)
