"""Numbered schema migrations of the workspace database, applied in order on open.

Each migration is a function `mNNN_name(con)`; the applied number is kept in `meta.schema_version`.
Never edit a released migration: add the next one. Big tables carry no PRIMARY KEY or UNIQUE
constraints on purpose: DuckDB keeps those as in-memory ART indexes that slow bulk loads and grow with
the table; uniqueness is kept by anti-joins in the loaders instead.
"""

from __future__ import annotations

import duckdb


def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE SEQUENCE IF NOT EXISTS prompt_id_seq START 1;
        CREATE SEQUENCE IF NOT EXISTS file_id_seq START 1;

        -- One row per input file; `status` walks staged -> loading -> done so a killed ingest resumes.
        CREATE TABLE ingest_files (
            file_id INTEGER, path VARCHAR, sha256 VARCHAR, size BIGINT, format VARCHAR,
            status VARCHAR, rows_total BIGINT, rows_rejected BIGINT, rows_loaded BIGINT,
            rows_duplicate BIGINT, batches_total INTEGER, batches_done INTEGER,
            quarantine VARCHAR, started TIMESTAMP, finished TIMESTAMP
        );

        -- One row per distinct normalised prompt, however many exchanges carry it.
        CREATE TABLE prompts (
            prompt_id BIGINT, fingerprint BIGINT, text VARCHAR, normalized VARCHAR, n_chars INTEGER,
            n_exchanges BIGINT DEFAULT 0, n_accounts BIGINT DEFAULT 0,
            first_seen TIMESTAMP, last_seen TIMESTAMP
        );

        CREATE TABLE exchanges (
            exchange_id VARCHAR, account_id VARCHAR, ts TIMESTAMP, prompt_id BIGINT,
            response VARCHAR, model VARCHAR, ip VARCHAR, meta JSON, file_id INTEGER, line BIGINT
        );

        CREATE TABLE accounts (
            account_id VARCHAR, n_exchanges BIGINT, n_prompts BIGINT,
            first_seen TIMESTAMP, last_seen TIMESTAMP
        );

        -- Vectors live in .npy shard files beside the database; a shard counts only once its row exists,
        -- so a file without a row is an interrupted write and is deleted on the next embed.
        CREATE TABLE embedding_shards (
            shard_id INTEGER, encoder VARCHAR, path VARCHAR, n INTEGER, dim INTEGER, created TIMESTAMP
        );

        -- Which prompts each encoder has embedded, and in which shard file.
        CREATE TABLE embeddings (prompt_id BIGINT, encoder VARCHAR, shard_id INTEGER);

        CREATE TABLE indexes (
            encoder VARCHAR, path VARCHAR, factory VARCHAR, count BIGINT, max_shard INTEGER,
            built TIMESTAMP
        );
        """
    )


def m002_detection(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        -- Near-copy edges between distinct prompts (prompt_a < prompt_b), from the self-join.
        CREATE TABLE matches (prompt_a BIGINT, prompt_b BIGINT, similarity REAL);

        -- Progress of the self-join: blocks already stored, so a killed scan resumes.
        CREATE TABLE scan_runs (
            scan_id INTEGER, encoder VARCHAR, threshold REAL, method VARCHAR, n_prompts BIGINT,
            max_shard INTEGER, blocks_done INTEGER, status VARCHAR, started TIMESTAMP, finished TIMESTAMP
        );

        CREATE TABLE families (
            family_id BIGINT, prompt_id BIGINT, center_id BIGINT, sim_to_center REAL
        );

        CREATE TABLE templates (
            template_id BIGINT, pattern VARCHAR, anchors JSON, kind VARCHAR, n_prompts BIGINT,
            n_accounts BIGINT, n_exchanges BIGINT, slot_diversity REAL, fixed_ratio REAL
        );
        CREATE TABLE template_members (template_id BIGINT, prompt_id BIGINT);

        -- Accounts linked by shared rare content; `evidence` lists the shared families/templates.
        CREATE TABLE account_links (
            account_a VARCHAR, account_b VARCHAR, weight DOUBLE, n_shared INTEGER, evidence JSON
        );

        CREATE TABLE rings (
            ring_id BIGINT, score DOUBLE, n_accounts INTEGER, n_exchanges BIGINT, signals JSON,
            summary VARCHAR
        );

        CREATE TABLE account_scores (
            account_id VARCHAR, score DOUBLE, ring_id BIGINT, top_signal VARCHAR, signals JSON
        );

        -- Analyst triage marks; kept across scans.
        CREATE TABLE marks (
            target_kind VARCHAR, target_id VARCHAR, label VARCHAR, note VARCHAR, created TIMESTAMP
        );
        """
    )


def m003_watchlist(con: duckdb.DuckDBPyConnection) -> None:
    """Marks get an id and an author; confirmed and benign marks keep what they referred to.

    A ring id names a different ring after every scan and family and template ids move with the mining,
    so a mark that is to act on later scans (engine.detect.watchlist) freezes, when it is made, the
    fingerprints of the prompts it covers, the template patterns and a ring's members. Marks made before
    this migration froze nothing: they act only once made again.
    """
    n = con.execute("SELECT count(*) FROM marks").fetchone()[0]
    con.execute(
        f"""
        CREATE SEQUENCE IF NOT EXISTS mark_id_seq START {int(n) + 1};
        ALTER TABLE marks ADD COLUMN mark_id BIGINT;
        ALTER TABLE marks ADD COLUMN author VARCHAR;

        -- Per mark: one row per prompt of a family or template it covers (fingerprint), and one per
        -- template with its pattern (fingerprint NULL).
        CREATE TABLE mark_items (
            mark_id BIGINT, item_kind VARCHAR, item_id BIGINT, fingerprint BIGINT, pattern VARCHAR
        );
        -- The accounts a ring mark covered when it was made (ring ids are renumbered by every scan).
        CREATE TABLE mark_members (mark_id BIGINT, account_id VARCHAR);

        -- Written by each scan: the families and templates of this scan that marks watch or suppress.
        CREATE TABLE watchlist (
            item_kind VARCHAR, item_id BIGINT, effect VARCHAR, mark_id BIGINT, evidence VARCHAR
        );
        """
    )
    con.execute(
        """UPDATE marks SET mark_id = r.n
           FROM (SELECT rowid AS rid, row_number() OVER (ORDER BY created, rowid) AS n FROM marks) r
           WHERE marks.rowid = r.rid"""
    )


def m004_incremental_scans(con: duckdb.DuckDBPyConnection) -> None:
    """A scan may join only what was embedded since the last one (`engine.scan.pipeline`).

    ``base_shard``: NULL for a join of every vector; else the last shard whose prompts an earlier scan had
    joined, this run joining the prompts of the shards after it against all (its edges add to that
    scan's). Runs recorded before this migration joined every vector.
    """
    con.execute("ALTER TABLE scan_runs ADD COLUMN base_shard INTEGER")


MIGRATIONS = [m001_initial, m002_detection, m003_watchlist, m004_incremental_scans]
