"""Who sent which prompt, laid out for point lookups: the read side of `who-else`.

DuckDB answers "every exchange of these 300 prompts" by scanning the whole exchanges table (it has no
point index a join can use), and the example texts by scanning the prompt ids: a who-else query grew with
the traffic (30 ms of its 65 ms at a million exchanges, ~10x that at ten million), and opening the
database to ask costs ~15 ms more with a cold cache. This sidecar holds the same facts as arrays sorted
by prompt id, memory-mapped: for each prompt, the slice of its exchanges (account code, timestamp) and
its text; the prompts sorted by fingerprint for exact copies; the account names. A lookup is a few
`searchsorted` calls and gathers, its cost set by the number of hits, not by N, and it needs no
database connection while the database files are unchanged.

It is derived data, like the FAISS index: rebuilt from DuckDB (about a second per million exchanges)
whenever the counts of exchanges, prompts or accounts differ from those it was built from. It is built
in a temp folder and renamed into place, so a reader never sees half of one; its texts double the disk
taken by prompt texts, the price of answering without a scan.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from engine.files import atomic_path, temp_beside
from engine.store.workspace import Store

log = logging.getLogger(__name__)

DIR_NAME = "senders"
FORMAT = 1
# Exchanges without a timestamp sort last for "first seen" and first for "last seen"; shown as None.
NO_TS_FIRST = np.iinfo(np.int64).max
NO_TS_LAST = np.iinfo(np.int64).min
_ARRAYS = ("prompt_ids", "offsets", "account_code", "ts_us", "fingerprints", "fingerprint_prompt",
           "account_blob", "account_bounds", "text_ids", "text_bounds", "text_blob")
# Prompt texts are copied through Arrow in batches of this many rows, so the build's memory is bounded.
_TEXT_BATCH = 262_144


@dataclass(frozen=True)
class SenderGroups:
    """One row per (query, account): aligned arrays, sorted by query, similarity desc, count desc, account."""

    query_index: np.ndarray  # int64
    account_code: np.ndarray  # int32, see SenderIndex.account
    n_matches: np.ndarray  # int64: the account's exchanges that carry a matching prompt
    max_similarity: np.ndarray  # float32
    first_us: np.ndarray  # int64 microseconds since the epoch, NO_TS_FIRST if unknown
    last_us: np.ndarray  # int64, NO_TS_LAST if unknown
    example_id: np.ndarray  # int64: the account's most similar matching prompt (lowest id on ties)
    exact: np.ndarray  # bool: the account sent an exact normalised copy


def datetimes(us: np.ndarray, missing: int) -> list:
    """Microseconds since the epoch -> naive datetimes (as DuckDB returns TIMESTAMP), None where missing."""
    out = np.asarray(us, np.int64).astype("datetime64[us]").astype(object)
    out[np.asarray(us) == missing] = None
    return out.tolist()


class SenderIndex:
    """One build, memory-mapped; get it with `SenderIndex.current(store, con)`."""

    def __init__(self, folder: Path, key: tuple[int, ...]) -> None:
        self.folder = folder
        self.key = key
        for name in _ARRAYS:
            # Plain ndarray views of the maps: indexing a np.memmap wraps every result in a memmap, which
            # costs more than the lookup itself for the small gathers a check makes.
            mapped = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            setattr(self, name, mapped.view(np.ndarray))
        self._sorted_names: np.ndarray | None = None  # the names as fixed-width bytes, made on first use
        self._position_of: np.ndarray | None = None  # prompt id -> position in prompt_ids, made on first use

    # ------------------------------------------------------------------ build and load
    @staticmethod
    def workspace_key(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
        """What the sidecar depends on; exchanges and prompts are only ever appended, so counts suffice."""
        row = con.execute(
            """SELECT (SELECT count(*) FROM exchanges), (SELECT count(*) FROM prompts),
                      (SELECT coalesce(max(prompt_id), 0) FROM prompts), (SELECT count(*) FROM accounts)"""
        ).fetchone()
        return (FORMAT, *(int(x) for x in row))

    @classmethod
    def current(cls, store: Store, con: duckdb.DuckDBPyConnection, cached: SenderIndex | None = None) -> SenderIndex:
        """`cached` if still up to date, else the folder's build if up to date, else a fresh build."""
        key = cls.workspace_key(con)
        if cached is not None and cached.key == key:
            return cached
        found = cls.stored(store)
        if found is not None and found.key == key:
            return found
        return cls.build(store, con, key)

    @classmethod
    def stored(cls, store: Store) -> SenderIndex | None:
        """The folder's build, whatever state of the workspace it was built from (compare its `key` with
        `workspace_key`); None when there is none, or it is damaged (rebuilt, never trusted).

        A build renamed into place while this reads it (a scan finishing) is read again: the key is read
        before and after the arrays, and arrays of two builds never pass for one.
        """
        folder = store.root / "index" / DIR_NAME
        for attempt in range(3):
            if not folder.exists() and not temp_beside(folder, "old").exists():
                return None  # never built (the old build renamed aside means a swap is under way)
            try:
                key = _stored_key(folder)
                if key[0] != FORMAT:
                    return None  # an older layout: rebuilt
                found = cls(folder, key)
                if _stored_key(folder) == key and found.offsets[-1] == len(found.account_code):
                    return found
            except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
                if attempt == 2:
                    log.warning("senders: %s unreadable (%s); rebuilding", folder, err)
            time.sleep(0.05 * (attempt + 1))  # the few milliseconds between a swap's two renames
        return None

    @classmethod
    def build(cls, store: Store, con: duckdb.DuckDBPyConnection, key: tuple[int, ...]) -> SenderIndex:
        started = time.monotonic()
        final = store.root / "index" / DIR_NAME
        final.parent.mkdir(parents=True, exist_ok=True)
        # The old folder is renamed aside before the new one takes its name: a reader that still maps
        # its files keeps them until it lets go.
        with atomic_path(final) as tmp:
            tmp.mkdir()
            n_prompts, n_accounts = _write_folder(con, tmp, key)
        log.info("senders: %d exchanges of %d prompts from %d accounts indexed in %.1f s", int(key[1]),
                 n_prompts, n_accounts, time.monotonic() - started)
        return cls(final, key)

    # ------------------------------------------------------------------ lookups
    def account(self, code: int) -> str:
        return self._account_bytes(code).decode("utf-8")

    def _account_bytes(self, code: int) -> bytes:
        return bytes(self.account_blob[self.account_bounds[code]:self.account_bounds[code + 1]])

    @property
    def n_accounts(self) -> int:
        return len(self.account_bounds) - 1

    def code_of(self, account_id: str) -> int | None:
        """The code of an account that sent exchanges, or None (see `codes_of`)."""
        code = int(self.codes_of([account_id])[0])
        return None if code < 0 else code

    def codes_of(self, account_ids: pa.Array | pa.ChunkedArray | list[str]) -> np.ndarray:
        """The code of each account (int64), -1 for one that sent no exchange: one vectorised binary search.

        Names compare as fixed-width byte strings, which order as their UTF-8 bytes, the order of the codes.
        (A name differing from another only by trailing NUL bytes would be taken for it; ingest refuses
        account ids holding control characters.)
        """
        names = self._names()
        wanted = _fixed_bytes(account_ids)
        if len(names) == 0 or len(wanted) == 0:
            return np.full(len(wanted), -1, np.int64)
        # In the names' own width, or numpy would cast the whole names array to the wider one per call;
        # a wanted name wider than every stored one is no stored name.
        fits = np.char.str_len(wanted) <= names.dtype.itemsize
        wanted = wanted.astype(names.dtype)
        pos = np.minimum(np.searchsorted(names, wanted), len(names) - 1)
        return np.where(fits & (names[pos] == wanted), pos, -1).astype(np.int64)

    def _names(self) -> np.ndarray:
        if self._sorted_names is None:  # two threads may both build it: the same array either way
            self._sorted_names = _fixed_bytes(pa.LargeBinaryArray.from_buffers(
                pa.large_binary(), self.n_accounts,
                [None, pa.py_buffer(np.ascontiguousarray(self.account_bounds, np.int64)),
                 pa.py_buffer(np.ascontiguousarray(self.account_blob))]))
        return self._sorted_names

    def exchange_counts(self) -> np.ndarray:
        """Exchanges per account code (int64, one pass over the exchanges' codes)."""
        return np.bincount(np.asarray(self.account_code), minlength=self.n_accounts).astype(np.int64)

    def texts(self, prompt_ids: np.ndarray) -> dict[int, str]:
        """Text of each given prompt id (ids not stored are left out)."""
        prompt_ids = np.unique(np.asarray(prompt_ids, np.int64))
        pos = np.searchsorted(self.text_ids, prompt_ids)
        ok = pos < len(self.text_ids)
        ok[ok] = self.text_ids[pos[ok]] == prompt_ids[ok]
        lo, hi = self.text_bounds[pos[ok]], self.text_bounds[pos[ok] + 1]
        return {int(p): bytes(self.text_blob[a:b]).decode("utf-8")
                for p, a, b in zip(prompt_ids[ok].tolist(), lo.tolist(), hi.tolist(), strict=True)}

    def exact_prompts(self, prints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query position, prompt id) for every stored prompt whose fingerprint equals a query's."""
        prints = np.asarray(prints, np.int64)
        lo = np.searchsorted(self.fingerprints, prints, "left")
        hi = np.searchsorted(self.fingerprints, prints, "right")
        q = np.repeat(np.arange(len(prints), dtype=np.int64), hi - lo)
        return q, np.asarray(self.fingerprint_prompt[_ranges(lo, hi)])

    def group(self, query_index: np.ndarray, prompt_id: np.ndarray, similarity: np.ndarray,
              exact: np.ndarray) -> SenderGroups:
        """Hits (query, prompt, similarity, exact) -> one row per (query, account) that sent a hit prompt.

        Hits may repeat a (query, prompt): the best similarity counts and exactness is kept, as in a
        GROUP BY with max/bool_or. Prompts with no exchange are dropped.
        """
        q, pid, sim, ex = _dedupe(np.asarray(query_index, np.int64), np.asarray(prompt_id, np.int64),
                                  np.asarray(similarity, np.float32), np.asarray(exact, bool))
        pos = self._prompt_positions(pid)
        found = pos >= 0
        q, pid, sim, ex, pos = q[found], pid[found], sim[found], ex[found], pos[found]
        if len(q) == 0:
            none = np.zeros(0, np.int64)
            return SenderGroups(none, none.astype(np.int32), none, none.astype(np.float32), none, none, none,
                                none.astype(bool))
        # Each hit's rank by query, similarity desc, then prompt id (the hits are in query, id order, and
        # lexsort is stable): the order of an account's examples, best first.
        hit_rank = np.empty(len(q), np.int64)
        hit_rank[np.lexsort((-sim, q))] = np.arange(len(q), dtype=np.int64)
        lo, hi = self.offsets[pos], self.offsets[pos + 1]
        rows = _ranges(lo, hi)
        hit = np.repeat(np.arange(len(q), dtype=np.int64), hi - lo)
        acc, ts = self.account_code[rows].astype(np.int64), self.ts_us[rows]
        # Rows by (query, account, hit rank), so that the first row of a group is its example. Ties are
        # one hit's several exchanges by one account, whose order no result depends on.
        order = _order(q[hit], acc, hit_rank[hit])
        hit, acc, ts = hit[order], acc[order], ts[order]
        start = np.flatnonzero(_run_starts(q[hit], acc))
        counts = np.diff(np.append(start, len(hit))).astype(np.int64)
        ts_last = np.where(ts == NO_TS_FIRST, NO_TS_LAST, ts)
        best = hit[start]
        g = (q[best], acc[start].astype(np.int32), counts, sim[best], np.minimum.reduceat(ts, start),
             np.maximum.reduceat(ts_last, start), pid[best], np.logical_or.reduceat(ex[hit], start))
        final = np.lexsort((g[1], -g[2], -g[3], g[0]))
        return SenderGroups(*(x[final] for x in g))

    def _prompt_positions(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Each prompt id's position in `prompt_ids`, -1 where the prompt has no exchange.

        A direct lookup: prompt ids are drawn from a sequence, so the table is about as long as the
        index, and a binary search over millions of ids cost a check more than all its sorting.
        """
        if self._position_of is None:  # two threads may both build it: the same array either way
            top = int(self.prompt_ids[-1]) if len(self.prompt_ids) else -1
            self._position_of = dense_by_prompt(self.prompt_ids, np.arange(len(self.prompt_ids)), top)
        return gather_by_prompt(self._position_of, prompt_ids)


def dense_by_prompt(ids, values, top: int, *, identity: bool = False) -> np.ndarray:
    """An int32 array indexed by prompt id up to `top`: `values` at `ids`, elsewhere the id itself
    (`identity`) or -1."""
    out = np.arange(top + 1, dtype=np.int32) if identity else np.full(top + 1, -1, np.int32)
    out[np.asarray(ids, np.int64)] = np.asarray(values, np.int64)
    return out


def gather_by_prompt(dense: np.ndarray, prompt_ids) -> np.ndarray:
    """`dense` (from `dense_by_prompt`) at each prompt id, int64, -1 for ids outside it."""
    ids = np.asarray(prompt_ids, np.int64)
    inside = (ids >= 0) & (ids < len(dense))
    out = np.full(len(ids), -1, np.int64)
    out[inside] = dense[ids[inside]]
    return out


def _stored_key(folder: Path) -> tuple[int, ...]:
    key = tuple(int(k) for k in json.loads((folder / "meta.json").read_text(encoding="utf-8"))["key"])
    if not key:
        raise ValueError("empty key")
    return key


def _write_folder(con: duckdb.DuckDBPyConnection, folder: Path, key: tuple[int, ...]) -> tuple[int, int]:
    """Write the index's arrays into `folder`; returns (prompts, accounts) indexed."""
    save = lambda name, arr: np.save(folder / f"{name}.npy", arr, allow_pickle=False)  # noqa: E731
    # Account codes follow DuckDB's own ordering of account ids, so ordering by code orders by name
    # exactly as a SQL ORDER BY account_id does.
    con.execute("CREATE OR REPLACE TEMP TABLE sender_codes AS SELECT account_id, "
                "(row_number() OVER (ORDER BY account_id) - 1)::INTEGER AS code "
                "FROM (SELECT DISTINCT account_id FROM exchanges)")
    names = con.sql("SELECT account_id FROM sender_codes ORDER BY code").to_arrow_table().column(0)
    blob, bounds = _string_buffers(names)
    save("account_blob", blob)
    save("account_bounds", bounds)
    ex = con.execute(
        """SELECT e.prompt_id, c.code, coalesce(epoch_us(e.ts), ?) AS ts_us
           FROM exchanges e JOIN sender_codes c USING (account_id)
           ORDER BY e.prompt_id, ts_us, c.code""", [NO_TS_FIRST]).fetchnumpy()
    con.execute("DROP TABLE sender_codes")
    pid = np.asarray(ex["prompt_id"], np.int64)
    prompt_ids, starts = np.unique(pid, return_index=True)
    save("prompt_ids", prompt_ids)
    save("offsets", np.append(starts, len(pid)).astype(np.int64))
    save("account_code", np.asarray(ex["code"], np.int32))
    save("ts_us", np.asarray(ex["ts_us"], np.int64))
    del ex, pid
    fp = con.execute("SELECT fingerprint, prompt_id FROM prompts ORDER BY fingerprint, prompt_id").fetchnumpy()
    save("fingerprints", np.asarray(fp["fingerprint"], np.int64))
    save("fingerprint_prompt", np.asarray(fp["prompt_id"], np.int64))
    del fp
    _save_texts(con, folder)
    (folder / "meta.json").write_text(json.dumps({"key": list(key)}), encoding="utf-8")
    return len(prompt_ids), len(bounds) - 1


def _save_texts(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Every prompt's text as one UTF-8 blob with bounds, streamed in Arrow batches (no row in Python)."""
    reader = con.sql("SELECT prompt_id, text FROM prompts ORDER BY prompt_id").to_arrow_reader(_TEXT_BATCH)
    ids, bounds, total = [], [np.zeros(1, np.int64)], 0
    with open(folder / "text_blob.raw", "wb") as blob:
        for batch in reader:
            ids.append(batch.column(0).to_numpy().astype(np.int64))
            data, offsets = _string_buffers(batch.column(1))
            blob.write(data.tobytes())
            bounds.append(offsets[1:] + total)
            total += len(data)
    np.save(folder / "text_ids.npy", np.concatenate(ids) if ids else np.zeros(0, np.int64))
    np.save(folder / "text_bounds.npy", np.concatenate(bounds))
    # A raw blob becomes a .npy by writing the header in front; done by streaming, never in memory.
    with open(folder / "text_blob.npy", "wb") as out, open(folder / "text_blob.raw", "rb") as raw:
        np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": (total,)})
        shutil.copyfileobj(raw, out, 16 * 1024 * 1024)
    os.unlink(folder / "text_blob.raw")


def _string_buffers(column) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 bounds) of an Arrow string column, straight from its buffers."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    arr = arr.cast(pa.large_string())
    _, offsets, data = arr.buffers()
    bounds = np.frombuffer(offsets, np.int64)[arr.offset:arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return raw[bounds[0]:bounds[-1]].copy(), bounds - bounds[0]


def _fixed_bytes(column) -> np.ndarray:
    """An Arrow string or binary column (or a list of str) as a numpy array of fixed-width byte strings."""
    if isinstance(column, list):
        return np.array([name.encode("utf-8") for name in column], dtype=bytes) if column else np.zeros(0, "S1")
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0:
        return np.zeros(0, "S1")
    return np.asarray(arr.cast(pa.large_binary()).to_numpy(zero_copy_only=False).astype(bytes))


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], hi[i]) for all i, without a Python loop."""
    lengths = np.asarray(hi, np.int64) - np.asarray(lo, np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(np.asarray(lo, np.int64) - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return starts + np.arange(total, dtype=np.int64)


def _dedupe(q: np.ndarray, pid: np.ndarray, sim: np.ndarray, ex: np.ndarray):
    """One hit per (query, prompt), in that order: the best similarity, exact if any of them was."""
    if len(q) == 0:
        return q, pid, sim, ex
    order = _order(q, pid)
    start = np.flatnonzero(_run_starts(q[order], pid[order]))
    first = order[start]
    return (q[first], pid[first], np.maximum.reduceat(sim[order], start),
            np.logical_or.reduceat(ex[order], start))


def _order(*keys: np.ndarray) -> np.ndarray:
    """The order of rows by integer keys, major first (ties in any order).

    One argsort of a combined key where the keys are non-negative and it fits in 63 bits: a check
    matches up to tens of thousands of exchanges, and that costs a fraction of a lexsort over them.
    """
    combined, span = np.zeros(len(keys[0]), np.int64), 1
    for key in reversed(keys):
        low, top = (int(key.min()), int(key.max()) + 1) if len(key) else (0, 1)
        if low < 0 or span > 2 ** 62 // top:
            return np.lexsort(keys[::-1])
        if top == 1:
            continue  # all zero (one query): orders nothing
        combined += key * span
        span *= top
    return np.argsort(combined)


def _run_starts(*sorted_keys: np.ndarray) -> np.ndarray:
    """Where a run of equal key tuples begins, over rows sorted by those keys (bool per row)."""
    new = np.zeros(len(sorted_keys[0]), bool)
    new[:1] = True
    for key in sorted_keys:
        new[1:] |= key[1:] != key[:-1]
    return new
