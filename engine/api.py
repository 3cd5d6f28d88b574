"""The Engine: the one facade the CLI, the TUI, bench and tests go through."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from engine.config import EngineConfig, thresholds_for
from engine.encoders.base import MODEL_NAME, Encoder
from engine.encoders.registry import encoder_name, make_encoder
from engine.errors import IndexStateError
from engine.ingest.incoming import FOLDER as INCOMING
from engine.ingest.loader import Ingestor
from engine.models import (
    AccountScore,
    EmbedResult,
    Family,
    IngestResult,
    PromptMatch,
    Ring,
    ScanResult,
    TemplateInfo,
    WhoElseResult,
    WorkspaceStatus,
)
from engine.progress import ProgressFn, no_progress
from engine.query.analyst import Analyst
from engine.query.checker import DELTA_LIMIT, SYNC_EVERY, Checker
from engine.query.findings import account_scores, count_findings, families, rings, templates
from engine.query.senders import SenderIndex
from engine.query.who_else import check_threshold, nearest_prompt_rows, prepare_queries, who_else_rows
from engine.store import vectors
from engine.store.workspace import Store

log = logging.getLogger(__name__)


class Engine:
    """A workspace folder and everything that can be done with it.

    The pipeline (`ingest`, `embed`, `scan`), detection results (`accounts`, `rings`, `families`,
    `templates`), lookups (`who_else`, `nearest_prompts`) and `status` are methods here. The analyst's
    views, triage marks and evidence exports are methods of the `analyst` attribute (an
    `engine.query.analyst.Analyst` over the same store), and only there: `Engine(ws).analyst.ring_view(7)`.

    The engine holds no open database connection between calls (see `engine.store.workspace`), so it is safe to
    keep one open in a long-lived TUI while batch jobs write to the same workspace.

    `create=True` (the default, for a library caller building a workspace) makes the folder and its
    database when they are missing; `create=False` raises `WorkspaceError` instead, before any model is
    loaded (the CLI opens every verb but `ingest` that way). Either way a damaged database is refused
    before anything writes to it.

    `read_only=True` (the service) opens every connection read-only (see `engine.store.workspace`):
    lookups work, anything that writes the database fails, and the writer's lock is never taken.
    `checker()` hands out the online checker a long-running service holds (`engine.query.checker`).
    """

    def __init__(
        self,
        workspace: str | os.PathLike[str],
        *,
        config: EngineConfig | None = None,
        encoder: Encoder | None = None,
        create: bool = True,
        busy_timeout: float = 15.0,
        read_only: bool = False,
    ) -> None:
        self.config = config or EngineConfig()
        self.store = Store(Path(workspace), create=create and not read_only, busy_timeout=busy_timeout,
                           memory_limit=self.config.duckdb_memory_limit, read_only=read_only)
        self._encoder = encoder
        self._default_encoder: str | None = None
        self._index_cache: tuple[tuple, object] | None = None
        self._senders: tuple[tuple, SenderIndex, int] | None = None
        self.analyst = Analyst(self.store, self.status)

    @property
    def workspace(self) -> Path:
        return self.store.root

    # ------------------------------------------------------------------ encoder + index
    @property
    def encoder(self) -> Encoder:
        """The encoder, built on first use (loading torch and the model takes seconds)."""
        if self._encoder is None:
            self._encoder = make_encoder(self.encoder_name, device=self.config.device,
                                         cache_dir=self.store.root / "models")
        return self._encoder

    @property
    def encoder_name(self) -> str:
        """The encoder asked for in the config, else the one this workspace already uses.

        A workspace remembers which encoder built each index (the `indexes` table); with no explicit
        choice, the engine answers with the one the last scan used, else the only one indexed, else
        MiniLM, so `who-else` on a workspace scanned with the fast tier needs no flag.
        """
        if self._encoder is not None:
            return self._encoder.name
        if self.config.encoder:
            return encoder_name(self.config.encoder)
        if self._default_encoder is None:
            with self.store.connect() as con:
                last = con.execute("SELECT encoder FROM scan_runs ORDER BY scan_id DESC LIMIT 1").fetchone()
                indexed = [r[0] for r in con.execute("SELECT encoder FROM indexes ORDER BY encoder").fetchall()]
            self._default_encoder = (last[0] if last else indexed[0] if len(indexed) == 1 else MODEL_NAME)
        return self._default_encoder

    @property
    def threshold(self) -> float:
        """The who-else threshold: the config's, else the encoder's own default."""
        return self.config.threshold if self.config.threshold is not None else thresholds_for(self.encoder_name)[0]

    @property
    def scan_threshold(self) -> float:
        if self.config.scan_threshold is not None:
            return self.config.scan_threshold
        return thresholds_for(self.encoder_name)[1]

    def _index(self):
        """The encoder's FAISS index, loaded once and reloaded only when the file changes."""
        enc = self.encoder
        path = self.store.index_path(enc.name)
        if not path.exists():
            raise IndexStateError(f"no index for {enc.name} in {self.workspace}: run `copyhound embed` first")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if self._index_cache is None or self._index_cache[0] != key:
            idx, _ = vectors.open_index(self.store, enc.name, enc.dim)
            self._index_cache = (key, idx)
        return self._index_cache[1]

    # ------------------------------------------------------------------ pipeline
    def ingest(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        mapping: dict[str, str] | None = None,
        on_error: str = "fail",
        progress: ProgressFn = no_progress,
    ) -> IngestResult:
        """Load exchange files; see `engine.ingest.loader`. Raises IngestError naming FILE:LINE."""
        ingestor = Ingestor(self.store, mapping=mapping, on_error=on_error,
                            batch_rows=self.config.ingest_batch_rows, progress=progress)
        return IngestResult(tuple(ingestor.ingest(Path(p)) for p in paths))

    def embed(self, *, progress: ProgressFn = no_progress, factory: str | None = None) -> EmbedResult:
        """Embed prompts not embedded yet, then bring the FAISS index up to date."""
        started = time.monotonic()
        enc = self.encoder
        shard_size = max(self.config.shard_size, getattr(enc, "shard_prompts", 0))
        if self.config.ray_address:
            from engine.scan.ray import RAY_SHARD_SIZE, RayEncoder, connect

            connect(self.config.ray_address)
            enc, shard_size = RayEncoder(enc), max(shard_size, RAY_SHARD_SIZE)
        done, already, shards = vectors.embed_pending(self.store, enc, shard_size=shard_size,
                                                      progress=progress)
        embed_seconds = time.monotonic() - started
        count, used = vectors.update_index(self.store, enc.name, enc.dim, factory=factory, progress=progress)
        seconds = time.monotonic() - started
        return EmbedResult(enc.name, done, already, shards, count, used, seconds,
                           done / embed_seconds if done and embed_seconds > 0 else 0.0)

    def scan(self, *, progress: ProgressFn = no_progress, force: bool = False, full: bool = False,
             recheck: bool = False) -> ScanResult:
        """Embed what is new, self-join, and recompute families, templates, links, rings and scores.

        After the workspace grew, only the new prompts are joined against all and their edges added to the
        last scan's (`engine.scan.pipeline`); `full` joins every prompt again, `force` also when nothing
        new arrived.

        `recheck`: with a fast-tier encoder, confirm each near-copy edge with the transformer (MiniLM
        embeds only the prompts that have a candidate edge; see `engine.scan.recheck`).
        """
        from engine.scan.pipeline import run_scan

        embedded = self.embed(progress=progress)
        checker = None
        if recheck and self.encoder_name != MODEL_NAME:
            from engine.scan.recheck import Rechecker

            checker = Rechecker(self.store, make_encoder(MODEL_NAME, device=self.config.device),
                                thresholds_for(MODEL_NAME)[1], shard_size=self.config.shard_size)
        # Re-checked, the fast tier's cut is its looser who-else one: the transformer decides the rest.
        cut = self.threshold if checker is not None and self.config.scan_threshold is None else self.scan_threshold
        mapper = None
        if self.config.ray_address:
            from engine.scan.ray import parallel_map

            mapper = parallel_map
        result = run_scan(self.store, self.encoder, cut, progress=progress, force=force, full=full,
                          embedded=embedded.embedded, recheck=checker,
                          crowd_radius=self.threshold, mapper=mapper, join_settings=self.config.join,
                          detect=self.config.detect)
        # Brought up to date here (about 2 s per million exchanges) so the first who-else after a nightly
        # scan is as fast as the rest.
        progress("sender index", 0, 1)
        self._lookup_state()
        progress("sender index", 1, 1)
        return result

    # ------------------------------------------------------------------ detection results
    def accounts(self, *, limit: int | None = 100, min_score: float = 0.0) -> list[AccountScore]:
        """Accounts by descending score, each with the signals behind its score."""
        with self.store.connect() as con:
            return account_scores(con, limit=limit, min_score=min_score)

    def rings(self, *, limit: int | None = 100) -> list[Ring]:
        with self.store.connect() as con:
            return rings(con, limit=limit)

    def families(self, *, limit: int | None = 100, min_accounts: int = 2) -> list[Family]:
        """Near-copy families sent by at least `min_accounts` accounts, largest first."""
        with self.store.connect() as con:
            return families(con, limit=limit, min_accounts=min_accounts)

    def templates(self, *, limit: int | None = 100) -> list[TemplateInfo]:
        with self.store.connect() as con:
            return templates(con, limit=limit)

    def count(self, kind: str, *, min_score: float = 0.0, min_accounts: int = 2) -> int:
        """Rows of `kind` ("accounts", "rings", "families", "templates") under the same filters as
        the listing: what a page of `limit` rows is a page of."""
        with self.store.connect() as con:
            return count_findings(con, kind, min_score=min_score, min_accounts=min_accounts)

    # ------------------------------------------------------------------ queries
    def who_else(self, queries: list[str], *, threshold: float | None = None) -> WhoElseResult:
        """Every account that sent a near-copy of each query; one row per (query, account)."""
        threshold = check_threshold(self.threshold if threshold is None else threshold)
        normals, prints = prepare_queries(queries)
        idx = self._index()
        vecs = self.encoder.encode(normals)
        senders, unindexed = self._lookup_state()
        rows = who_else_rows(senders, idx, vecs, prints, threshold, queries)
        return WhoElseResult(tuple(rows), len(queries), threshold, self.encoder.name, unindexed)

    def _lookup_state(self) -> tuple[SenderIndex, int]:
        """The sender index and the count of prompts not embedded, asked of DuckDB only after it changed.

        Opening the database costs ~15 ms plus a cold cache on every call; its files' size and mtime
        change with every commit, so while they stand still the last answer is still the answer.
        """
        signature = self.store.signature()
        if self._senders is None or self._senders[0] != signature:
            with self.store.connect() as con:
                senders = SenderIndex.current(self.store, con, self._senders[1] if self._senders else None)
                unindexed = self._unindexed(con)
            self._senders = (signature, senders, unindexed)
        return self._senders[1], self._senders[2]

    def checker(self, *, record: bool = True, delta_limit: int | None = None,
                sync_every: float = SYNC_EVERY) -> Checker:
        """The online checker over this workspace (see `engine.query.checker`), with this engine's
        encoder and who-else threshold. Loads the model; reads no snapshot yet (call `refresh()`).

        `record`: append every checked exchange to WORKSPACE/incoming/ for the next `ingest`.
        `delta_limit`: exchanges the in-memory index of recent prompts holds at most.
        `sync_every`: seconds between fsyncs of the recorded exchanges; 0 fsyncs before each answer.
        """
        return Checker(self.store, self.encoder, self.threshold,
                       incoming=self.store.root / INCOMING if record else None,
                       delta_limit=DELTA_LIMIT if delta_limit is None else delta_limit, sync_every=sync_every)

    def nearest_prompts(self, text: str, *, k: int = 50, floor: float = 0.5) -> list[PromptMatch]:
        """Stored prompts nearest `text` (for search-as-you-type), exact normalised copies first."""
        normals, prints = prepare_queries([text])
        idx = self._index()
        vec = self.encoder.encode(normals)[0]
        with self.store.connect() as con:
            return nearest_prompt_rows(con, idx, vec, prints[0], k, floor)

    def _unindexed(self, con) -> int:
        # Counts, not an anti-join: every embedded prompt is a stored prompt, so the difference is exact;
        # a shard row is committed with its prompts' embeddings rows, so summing the few shard rows gives
        # the count without scanning a row per prompt.
        prompts, embedded = con.execute(
            """SELECT (SELECT count(*) FROM prompts),
                      (SELECT coalesce(sum(n), 0) FROM embedding_shards WHERE encoder = ?)""",
            [self.encoder_name]).fetchone()
        return int(prompts - embedded)

    def status(self) -> WorkspaceStatus:
        with self.store.connect() as con:
            ex, first, last = con.execute("SELECT count(*), min(ts), max(ts) FROM exchanges").fetchone()
            accounts = con.execute("SELECT count(*) FROM accounts").fetchone()[0]
            prompts = con.execute("SELECT count(*) FROM prompts").fetchone()[0]
            embedded = con.execute("SELECT count(*) FROM embeddings WHERE encoder = ?",
                                   [self.encoder_name]).fetchone()[0]
            idx = con.execute("SELECT count, factory FROM indexes WHERE encoder = ?",
                              [self.encoder_name]).fetchone()
            files = con.execute("SELECT count(*) FROM ingest_files WHERE status = 'done'").fetchone()[0]
            scan = con.execute("SELECT max(finished) FROM scan_runs WHERE status = 'done'").fetchone()[0]
        return WorkspaceStatus(str(self.workspace), int(ex), int(accounts), int(prompts), int(embedded),
                               int(idx[0]) if idx else 0, self.encoder_name, idx[1] if idx else None,
                               int(files), first, last, scan)
