"""N-grams: tokenising prompts, counting shared n-grams in DuckDB, and the (prompt, class) pair arrays.

Steps 1 and 2 of the miner (see the package docstring). Every prompt is tokenised on words and
punctuation and every token ``n``-gram hashed to an int64 (numpy, per chunk of prompts so memory stays
bounded); the distinct ``(prompt, n-gram)`` pairs go to a DuckDB table, which spills to disk when
large. The n-grams held by at least ``min_prompts`` prompts are grouped into *classes* of identical
posting lists, and what the cover reads of them comes back as :class:`ClassPairs`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import duckdb
import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = [
    "AT_END", "AT_START", "TOKEN_RE", "ClassPairs", "InMemoryTexts", "NgramCounts", "PromptTexts",
    "WorkTables", "class_positions", "count_ngrams", "tokenize",
]

# Words (letters/digits/underscore runs) and single punctuation marks: template text such as
# "question:" must split from the slot content that follows without a space.
TOKEN_RE = re.compile(r"\w+|[^\w\s]")

# Multipliers for the rolling n-gram hash and the set hashes (odd 64-bit constants).
_NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)

# Bits of a (prompt, class) pair's `ends`: the class has an n-gram at the prompt's first token, at its last.
AT_START, AT_END = np.uint8(1), np.uint8(2)


@runtime_checkable
class PromptTexts(Protocol):
    """Prompt texts read on demand, so the miner never holds them all.

    At ten million prompts the texts as Python strings take ~6 GB, more than the miner's own state;
    the miner reads them twice in order (tokenising, then label templates) and otherwise one
    representative text per candidate template.
    """

    def __len__(self) -> int: ...

    def chunks(self, size: int) -> Iterator[Sequence[str]]:
        """The texts in row order, ``size`` at a time."""
        ...

    def text(self, row: int) -> str:
        """The text of one row."""
        ...


class InMemoryTexts:
    """:class:`PromptTexts` over a list already in memory."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    def chunks(self, size: int) -> Iterator[Sequence[str]]:
        for c0 in range(0, len(self._texts), size):
            yield self._texts[c0 : c0 + size]

    def text(self, row: int) -> str:
        return self._texts[row]


def tokenize(text: str) -> list[str]:
    """Split normalised text into words and single punctuation marks."""
    return TOKEN_RE.findall(text)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads token/class ids so that sums of them behave like hashes."""
    z = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def _chunk_ngrams(
    texts: Sequence[str], row0: int, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tokenise one chunk and hash its n-grams.

    Returns ``(rows, positions, hashes)`` of the distinct (row, n-gram) pairs, keeping the first
    position, plus per-prompt token counts and whole-text hashes.
    """
    m = len(texts)
    ntok = np.empty(m, dtype=np.int64)
    text_hash = np.empty(m, dtype=np.int64)
    flat: list[int] = []
    for i, t in enumerate(texts):
        toks = TOKEN_RE.findall(t)
        ntok[i] = len(toks)
        # Python's str hash is salted per process but stable within this run, which is all the
        # counting needs; it avoids holding a vocabulary of millions of strings.
        flat.extend(map(hash, toks))
        text_hash[i] = hash(t)
    tok = _mix64(np.fromiter(flat, dtype=np.int64, count=len(flat)).view(np.uint64))
    starts = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(ntok, out=starts[1:])
    total = int(starts[-1])
    if total < n:
        e = np.empty(0, dtype=np.int64)
        return e, e.astype(np.int32), e, ntok, text_hash
    # Rolling polynomial hash of every window of n tokens, wrapping mod 2**64.
    span = total - n + 1
    h = np.zeros(span, dtype=np.uint64)
    mult = np.uint64(1)
    with np.errstate(over="ignore"):
        for k in range(n):
            h += tok[k : k + span] * mult
            mult = mult * _NGRAM_BASE
    # Keep windows that start and end inside one prompt.
    row_of = np.repeat(np.arange(m, dtype=np.int64), ntok)[:span]
    pos = np.arange(span, dtype=np.int64) - starts[row_of]
    valid = pos + n <= ntok[row_of]
    rows, pos, hv = row_of[valid], pos[valid], h[valid].view(np.int64)
    # Distinct (row, n-gram), first position. Windows come in (row, position) order, so a stable sort
    # of one 64-bit key per (row, n-gram) finds each pair's first window; a three-key lexsort took
    # half of this function's time. Two pairs colliding on the key (odds ~1e-6 per chunk) would only
    # drop one n-gram occurrence from one prompt.
    with np.errstate(over="ignore"):
        key = _mix64(hv.view(np.uint64) ^ (rows.astype(np.uint64) * _NGRAM_BASE))
    _, first = np.unique(key, return_index=True)
    first.sort()
    return rows[first] + row0, pos[first].astype(np.int32), hv[first], ntok, text_hash


def _grouped_by_key(keys: np.ndarray, ptr: np.ndarray, values: np.ndarray, parts: int = 8) -> np.ndarray:
    """``values[np.argsort(keys, kind="stable")]``, sorted a range of keys at a time.

    ``ptr``: offsets of each key value in the sorted order (cumulative counts). The whole argsort would
    hold an int64 position for every pair next to the result; one key range at a time holds an eighth.
    """
    out = np.empty(len(keys), dtype=values.dtype)
    bounds = np.searchsorted(ptr, np.linspace(0, len(keys), parts + 1)[1:-1])
    edges = np.unique(np.concatenate([[0], bounds, [len(ptr) - 1]]))
    for k0, k1 in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        pos = np.flatnonzero((keys >= k0) & (keys < k1))
        out[ptr[k0] : ptr[k1]] = values[pos[np.argsort(keys[pos], kind="stable")]]
    return out


@dataclass(frozen=True, eq=False)
class ClassPairs:
    """The (prompt row, class) pairs, indexed both ways, and each class's size.

    Pairs come in (row, class) order: a row's pairs are ``cid[row_ptr[r]:row_ptr[r+1]]``, and a
    class's rows are ``cls_rows[cls_ptr[c]:cls_ptr[c+1]]`` (sorted). The pairs are the miner's largest
    state (57 per prompt at a million: 35M), so the row column is not kept once grouped by class.

    Attributes:
        cid: int32 (P,), the class of each pair.
        ends: uint8 (P,), :data:`AT_START` / :data:`AT_END` bits: the class has an n-gram at the
            prompt's first token, at its last.
        row_ptr: int64 (m + 1,), offsets of each row's pairs.
        cls_rows: int32 (P,), the rows of the pairs grouped by class.
        cls_ptr: int64 (C + 1,), offsets of each class's rows in ``cls_rows``.
        df: int64 (C,), prompts holding each class.
        nng: int64 (C,), n-grams in each class.
    """

    cid: np.ndarray
    ends: np.ndarray
    row_ptr: np.ndarray
    cls_rows: np.ndarray
    cls_ptr: np.ndarray
    df: np.ndarray
    nng: np.ndarray

    @classmethod
    def index(
        cls, row: np.ndarray, cid: np.ndarray, ends: np.ndarray, df: np.ndarray, nng: np.ndarray, m: int
    ) -> ClassPairs:
        """Index the pairs (given in (row, class) order) by row and by class; ``m`` prompts."""
        row_ptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=m), out=row_ptr[1:])
        cls_ptr = np.zeros(len(df) + 1, dtype=np.int64)
        np.cumsum(np.bincount(cid, minlength=len(df)), out=cls_ptr[1:])
        cls_rows = _grouped_by_key(cid, cls_ptr, row)
        return cls(cid=cid, ends=ends, row_ptr=row_ptr, cls_rows=cls_rows, cls_ptr=cls_ptr, df=df, nng=nng)

    def rows_of(self, c: int) -> np.ndarray:
        """Prompts holding class ``c`` (sorted)."""
        return self.cls_rows[self.cls_ptr[c] : self.cls_ptr[c + 1]]

    def gather(self, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices into the pair arrays for these prompts, and each pair's member index."""
        lo, hi = self.row_ptr[members], self.row_ptr[members + 1]
        lens = hi - lo
        owner = np.repeat(np.arange(len(members)), lens)
        idx = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
        return idx, owner


@dataclass(frozen=True)
class WorkTables:
    """Names of one run's DuckDB temporary tables, tagged so that runs on one connection never meet.

    ``occ``: every distinct (row, pos, h) n-gram occurrence; ``ng``: frequent n-gram -> class;
    ``rc``: occurrences of frequent n-grams by class (row, pos, cid), read back per template.
    """

    occ: str
    ng: str
    rc: str

    @classmethod
    def new(cls, db: duckdb.DuckDBPyConnection) -> WorkTables:
        tag = f"_tpl{id(db) & 0xFFFFFF:x}_{np.random.default_rng().integers(1 << 30):x}"
        return cls(f"{tag}_occ", f"{tag}_ng", f"{tag}_rc")

    def drop(self, db: duckdb.DuckDBPyConnection) -> None:
        for t in (self.occ, self.ng, self.rc):
            db.execute(f"DROP TABLE IF EXISTS {t}")


@dataclass(frozen=True, eq=False)
class NgramCounts:
    """What counting leaves for the cover.

    ``ntok``: int64 (m,), tokens per prompt; ``text_hash``: int64 (m,), a hash of each whole text
    (equal texts, equal hashes); ``pairs``: the (prompt, class) pairs, None when no n-gram is held
    by enough prompts.
    """

    ntok: np.ndarray
    text_hash: np.ndarray
    pairs: ClassPairs | None


def count_ngrams(
    db: duckdb.DuckDBPyConnection, tables: WorkTables, texts: PromptTexts, m: int, n: int,
    min_prompts: int, chunk_size: int,
) -> NgramCounts:
    """Tokenise ``m`` prompts, count their ``n``-grams and group the frequent ones into classes.

    Leaves ``tables.ng`` and ``tables.rc`` for :func:`class_positions`; the caller drops them.
    """
    ntok = np.empty(m, dtype=np.int64)
    text_hash = np.empty(m, dtype=np.int64)
    db.execute(f"CREATE TEMP TABLE {tables.occ} (row BIGINT, pos INTEGER, h BIGINT)")
    c0 = 0
    for chunk in texts.chunks(chunk_size):
        rows, pos, hv, nt, th = _chunk_ngrams(chunk, c0, n)
        ntok[c0 : c0 + len(chunk)] = nt
        text_hash[c0 : c0 + len(chunk)] = th
        batch = pa.table({"row": rows, "pos": pos, "h": hv})  # noqa: F841 (read by DuckDB)
        db.execute(f"INSERT INTO {tables.occ} SELECT * FROM batch")
        del batch
        c0 += len(chunk)
    if c0 != m:
        raise ValueError(f"the prompt texts gave {c0} rows, not the {m} prompt ids")
    log.debug("templates: %d prompts tokenised (n=%d)", m, n)

    # Frequent n-grams, grouped into classes of identical posting lists. The fingerprint is
    # order-free (xor and sum of row hashes) plus the count, so collisions need two 64-bit
    # coincidences at once.
    db.execute(
        f"""
        CREATE TEMP TABLE {tables.ng} AS
        WITH f AS (
            SELECT h, count(*) AS df, bit_xor(hash(row)) AS fx, sum(hash(row + 7919) >> 4) AS fs
            FROM {tables.occ} GROUP BY h HAVING count(*) >= {min_prompts}
        ), c AS (
            SELECT df, fx, fs, row_number() OVER (ORDER BY df DESC, fx, fs) AS cid
            FROM f GROUP BY df, fx, fs
        )
        SELECT f.h, c.cid, c.df FROM f JOIN c USING (df, fx, fs)
        """
    )
    # Occurrences of frequent n-grams only, by class; the full table is no longer needed.
    db.execute(
        f"""
        CREATE TEMP TABLE {tables.rc} AS
        SELECT o.row, o.pos, g.cid FROM {tables.occ} o JOIN {tables.ng} g USING (h) ORDER BY o.row, o.pos
        """
    )
    db.execute(f"DROP TABLE {tables.occ}")
    rc = _fetch_pairs(db, tables.rc, ntok, n)
    cls = db.execute(
        f"SELECT cid, any_value(df) AS df, count(*) AS nng FROM {tables.ng} GROUP BY cid"
    ).fetchnumpy()
    if len(rc["cid"]) == 0:
        return NgramCounts(ntok, text_hash, None)
    n_cls = int(np.max(cls["cid"])) + 1
    df = np.zeros(n_cls, dtype=np.int64)
    nng = np.zeros(n_cls, dtype=np.int64)
    df[np.asarray(cls["cid"], dtype=np.int64)] = np.asarray(cls["df"], dtype=np.int64)
    nng[np.asarray(cls["cid"], dtype=np.int64)] = np.asarray(cls["nng"], dtype=np.int64)
    pairs = ClassPairs.index(rc.pop("row"), rc["cid"], rc["ends"], df, nng, m)
    log.debug("templates: %d (prompt, class) pairs, %d classes", len(pairs.cid), n_cls)
    return NgramCounts(ntok, text_hash, pairs)


def _fetch_pairs(db: duckdb.DuckDBPyConnection, t_rc: str, ntok: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The (prompt row, class) pairs in (row, class) order: `row`, `cid` as int32, and `ends` (uint8 bits).

    The template test needs of a pair's token positions only whether the class starts the prompt and
    whether it ends it, so two bits replace the two int32 positions (16 -> 9 bytes a pair, and the rows
    go once grouped by class). Each Arrow batch is converted as it comes, never holding the whole int64
    result.
    """
    parts: dict[str, list[np.ndarray]] = {"row": [], "cid": [], "ends": []}
    sql = (f"SELECT row, cid, min(pos) = 0 AS at_start, max(pos) AS last FROM {t_rc} "
           "GROUP BY row, cid ORDER BY row, cid")
    for batch in db.sql(sql).to_arrow_reader(1 << 22):
        row = batch.column(0).to_numpy().astype(np.int32)
        ends = np.where(batch.column(2).to_numpy(zero_copy_only=False), AT_START, np.uint8(0))
        ends |= np.where(batch.column(3).to_numpy() + n == ntok[row], AT_END, np.uint8(0))
        parts["row"].append(row)
        parts["cid"].append(batch.column(1).to_numpy().astype(np.int32))
        parts["ends"].append(ends)
    # One column at a time, its pieces let go as it is joined: all joined at once held every pair twice.
    out = {}
    for name, dtype in (("row", np.int32), ("cid", np.int32), ("ends", np.uint8)):
        pieces = parts.pop(name)
        out[name] = np.concatenate(pieces) if pieces else np.empty(0, dtype)
        del pieces
    return out


def class_positions(
    db: duckdb.DuckDBPyConnection, tables: WorkTables, row: int, classes: np.ndarray
) -> np.ndarray:
    """Token positions (int64) where n-grams of any of ``classes`` occur in prompt ``row``."""
    pos = db.execute(
        f"SELECT pos FROM {tables.rc} WHERE row = ? AND list_contains(?, cid)",
        [row, [int(x) for x in classes]],
    ).fetchnumpy()["pos"]
    return np.asarray(pos, dtype=np.int64)
