"""Who else asked this: from query prompts to every account that sent a near-copy.

A stored prompt matches a query when its normalised text is identical (always, whatever the threshold:
an exact copy must never be missed because of an index approximation) or when the cosine of their
embeddings is at least the threshold. Matches are then grouped per (query, account) over the sender
index (`engine.query.senders`), which finds a prompt's exchanges without scanning the exchanges table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

import index as faiss_index
from engine.errors import QueryError
from engine.ingest.fingerprint import fingerprint, normalize
from engine.models import PromptMatch, WhoElseRow
from engine.query.senders import NO_TS_FIRST, NO_TS_LAST, SenderIndex, datetimes

log = logging.getLogger(__name__)


def check_threshold(threshold: float) -> float:
    """A who-else threshold is a cosine: QueryError in one line for anything else."""
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not -1.0 <= threshold <= 1.0:
        raise QueryError(f"threshold must be a cosine between -1 and 1, not {threshold}")
    return float(threshold)


def prepare_queries(queries: list[str]) -> tuple[list[str], list[int]]:
    """Normalised texts and fingerprints; an empty query is an error naming its position."""
    if not queries:
        raise QueryError("no query prompts given")
    normals = [normalize(q) for q in queries]
    for i, text in enumerate(normals):
        if not text:
            raise QueryError(f"query {i + 1} is empty once normalised")
    return normals, [fingerprint(t) for t in normals]


@dataclass(frozen=True)
class Hits:
    """Stored prompts matching queries: aligned arrays, one entry per (query, prompt) found by FAISS or by
    fingerprint (a pair may repeat; `SenderIndex.group` keeps its best)."""

    query_index: np.ndarray  # int64
    prompt_id: np.ndarray  # int64
    similarity: np.ndarray  # float32, 1.0 for an exact normalised copy
    exact: np.ndarray  # bool


def stored_hits(senders: SenderIndex, idx, vectors: np.ndarray, prints: list[int], threshold: float) -> Hits:
    """The stored prompts matching each query: FAISS range search (cosine >= threshold) plus every prompt
    with the query's fingerprint (an exact normalised copy, whatever the index returns)."""
    result = faiss_index.range_search(idx, vectors, threshold)
    ann_q = np.repeat(np.arange(len(prints), dtype=np.int64), np.diff(result.lims))
    exact_q, exact_pid = senders.exact_prompts(np.asarray(prints, np.int64))
    return Hits(np.concatenate([ann_q, exact_q]), np.concatenate([result.ids.astype(np.int64), exact_pid]),
                np.concatenate([np.minimum(result.sims.astype(np.float32), 1.0), np.ones(len(exact_pid), np.float32)]),
                np.concatenate([np.zeros(len(ann_q), bool), np.ones(len(exact_pid), bool)]))


def who_else_rows(senders: SenderIndex, idx, vectors: np.ndarray, prints: list[int], threshold: float,
                  queries: list[str]) -> list[WhoElseRow]:
    """One row per (query, account) that sent a prompt matching the query; see the module docstring.

    The hits come from FAISS (range search) and the fingerprint array (exact copies); who sent them
    and the example texts from the `SenderIndex`: no table scan, so the cost follows the number of
    hits, not the size of the traffic.
    """
    return rows_from_hits(senders, stored_hits(senders, idx, vectors, prints, threshold), queries)


def rows_from_hits(senders: SenderIndex, hits: Hits, queries: list[str]) -> list[WhoElseRow]:
    """The who-else rows of `hits`: one per (query, account) that sent a hit prompt."""
    g = senders.group(hits.query_index, hits.prompt_id, hits.similarity, hits.exact)
    texts = senders.texts(g.example_id)
    names = {code: senders.account(code) for code in np.unique(g.account_code).tolist()}
    return [
        WhoElseRow(query=queries[q], query_index=q, account_id=names[a], n_matches=n, max_similarity=s,
                   first_seen=f, last_seen=lst, example=texts[pid], example_prompt_id=pid, exact=ex)
        for q, a, n, s, f, lst, pid, ex in zip(
            g.query_index.tolist(), g.account_code.tolist(), g.n_matches.tolist(),
            np.round(g.max_similarity.astype(np.float64), 4).tolist(), datetimes(g.first_us, NO_TS_FIRST),
            datetimes(g.last_us, NO_TS_LAST), g.example_id.tolist(), g.exact.tolist(), strict=True)
    ]


def nearest_prompt_rows(con: duckdb.DuckDBPyConnection, idx, vector: np.ndarray, print_: int,
                        k: int, floor: float) -> list[PromptMatch]:
    """The k stored prompts nearest one query (above `floor`), with who sent them."""
    sims, ids = faiss_index.knn(idx, vector[None, :], min(k, max(int(idx.ntotal), 1)))
    keep = (ids[0] >= 0) & (sims[0] >= floor)
    ann = pa.table({"prompt_id": ids[0][keep].astype(np.int64),
                    "similarity": np.minimum(sims[0][keep], 1.0).astype(np.float32)})
    con.register("knn_hits", ann)
    rows = con.execute(
        """WITH h AS (
               SELECT prompt_id, max(similarity) AS similarity, bool_or(exact) AS exact FROM (
                   SELECT prompt_id, similarity, false AS exact FROM knn_hits
                   UNION ALL SELECT prompt_id, 1.0, true FROM prompts WHERE fingerprint = ?)
               GROUP BY prompt_id)
           SELECT p.prompt_id, p.text, h.similarity, h.exact, p.n_exchanges, p.n_accounts, p.first_seen,
                  p.last_seen,
                  (SELECT min(account_id) FROM exchanges e WHERE e.prompt_id = p.prompt_id)
           FROM h JOIN prompts p USING (prompt_id)
           ORDER BY h.similarity DESC, p.n_accounts DESC LIMIT ?""",
        [print_, k],
    ).fetchall()
    con.unregister("knn_hits")
    return [PromptMatch(int(r[0]), r[1], round(float(r[2]), 4), bool(r[3]), int(r[4] or 0), int(r[5] or 0),
                        r[6], r[7], r[8]) for r in rows]
