"""Template miner: find prompt templates filled with many different contents.

A *template sweep* sends one prompt template ("given the passage: {p} answer the question: {q}")
filled with thousands of contents. The variable part is often long, so embeddings do not group
these prompts; the shared fixed text does. This module finds that fixed text.

Approach (all heavy grouping in DuckDB, vector work in numpy, no per-pair Python loops):

1. Tokenise every prompt on words and punctuation and hash every token ``n``-gram to an int64
   (numpy, per chunk of prompts so memory stays bounded). The distinct ``(prompt, n-gram)``
   pairs go to a DuckDB table, which spills to disk when large.
2. Keep the n-grams that occur in at least ``min_prompts`` prompts and group them into
   *classes*: n-grams with exactly the same set of prompts (compared by an order-free
   fingerprint of the posting list). All n-grams of a template's fixed text occur in exactly the
   template's prompts, so a whole anchor text (however many n-grams) becomes one class; a passage
   reused by a few prompts, a phrase shared by sibling templates or a common organic phrase each
   become classes of their own, separate from the template text even when they touch it.
3. Greedy cover, largest class first: a class (its prompts not yet assigned) is a candidate
   template; its fixed text is the closure, every class held by >= ``closure_share`` of the
   members (so an optional phrase does not split it). Template text occurs in every member, so
   it comes before content reused by a few prompts. Before accepting, classes nested inside the
   group (>= ``nested_share`` of their prompts in it) that together cover the group split it
   first: sibling templates sharing a long preamble each keep their own text.
4. Each group is validated: enough members, real variable content (enough distinct prompts: a
   family of exact copies is not a template), a substantial fixed part, a long enough longest
   anchor, a longer fixed part for a single floating anchor (short common phrases float
   anywhere in organic text), and not reused content (most members holding a bigger multi-n-gram
   text elsewhere, i.e. their real template). Rejected groups leave their prompts free for
   smaller classes.
5. Each template's anchors (maximal runs of covered tokens) are read from one representative
   member and rendered as a pattern with numbered slots.
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

__all__ = ["PromptTexts", "Template", "TemplateMining", "mine_templates", "tokenize"]


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


class _InMemoryTexts:
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

# Words (letters/digits/underscore runs) and single punctuation marks: template text such as
# "question:" must split from the slot content that follows without a space.
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")

# Multipliers for the rolling n-gram hash and the set hashes (odd 64-bit constants).
_NGRAM_BASE = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Template:
    """One mined prompt template.

    ``pattern`` is the fixed text with numbered slots, e.g.
    ``"given the passage: {0} answer the question: {1}"``; literal braces in the fixed text are
    doubled so ``pattern.format(*fillings)`` rebuilds a prompt. Anchors and slot layout come
    from one representative member (``example_prompt_id``).

    ``slot_diversity`` is the number of distinct prompt texts divided by ``n_prompts``: all
    members share the fixed text, so distinct texts means distinct slot fillings. 1.0 means every
    filling is different; a family of exact copies scores ``1 / n_prompts``.

    ``kind`` describes the slot layout: ``"label"`` (a short field label such as ``"summarize:"``
    then one slot; see ``_label_templates``), ``"prefix"`` (fixed text then one slot),
    ``"suffix"`` (one slot then fixed text), ``"wrapper"`` (fixed, slot, fixed), ``"infix"``
    (slot, fixed, slot) or ``"multi"`` (two or more slots in another layout).

    ``fixed_ratio`` is fixed tokens / mean tokens per member: near 1 means near-copies with a small
    variable part, near 0 means a short anchor in long prompts (a common phrase looks like that
    too, so the caller should weigh it with the accounts involved).
    """

    template_id: int
    pattern: str
    anchors: tuple[str, ...]
    n_prompts: int
    slot_diversity: float
    kind: str
    fixed_tokens: int = 0
    fixed_ratio: float = 0.0
    weight: float = 0.0
    start_anchored: float = 0.0
    end_anchored: float = 0.0
    example_prompt_id: int = -1


@dataclass(frozen=True)
class TemplateMining:
    """Result of :func:`mine_templates`.

    ``assignments`` is ``(prompt_ids, template_ids)``, both int64 and sorted by template id then
    prompt id; a prompt belongs to at most one template, and prompts in no template are absent.
    """

    templates: tuple[Template, ...]
    assignments: tuple[np.ndarray, np.ndarray]

    def members(self, template_id: int) -> np.ndarray:
        """Prompt ids (int64, sorted) assigned to ``template_id``; empty if unknown."""
        pids, tids = self.assignments
        lo = np.searchsorted(tids, template_id, side="left")
        hi = np.searchsorted(tids, template_id, side="right")
        return pids[lo:hi]

    def template(self, template_id: int) -> Template:
        """The template with this id (ids are 0..len-1 in order of ``templates``)."""
        return self.templates[template_id]


def tokenize(text: str) -> list[str]:
    """Split normalised text into words and single punctuation marks."""
    return _TOKEN_RE.findall(text)


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
        toks = _TOKEN_RE.findall(t)
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


def _segment_last_true(mask: np.ndarray, seg_start: np.ndarray, seg_len: np.ndarray) -> np.ndarray:
    """Per segment, the index of the last True in ``mask`` (or -1 when none)."""
    idx = np.where(mask, np.arange(len(mask), dtype=np.int64), -1)
    out = np.full(len(seg_start), -1, dtype=np.int64)
    nonempty = seg_len > 0
    if len(idx):
        out[nonempty] = np.maximum.reduceat(idx, seg_start[nonempty])
    return out


def _anchor_layout(text: str, covered_tokens: np.ndarray) -> tuple[tuple[str, ...], str, str, int]:
    """Anchors, pattern and kind of one member, given which of its tokens are fixed.

    Anchor text is cut from the original string (token spans) so spacing and punctuation read as
    written rather than as space-joined tokens.
    """
    spans = [(mt.start(), mt.end()) for mt in _TOKEN_RE.finditer(text)]
    n = len(spans)
    cov = np.zeros(n, dtype=bool)
    cov[covered_tokens[covered_tokens < n]] = True
    anchors: list[str] = []
    parts: list[str] = []
    slots = 0
    layout: list[str] = []  # "A" for an anchor, "S" for a slot, in order
    i = 0
    while i < n:
        j = i
        while j < n and cov[j] == cov[i]:
            j += 1
        if cov[i]:
            seg = text[spans[i][0] : spans[j - 1][1]]
            anchors.append(seg)
            parts.append(seg.replace("{", "{{").replace("}", "}}"))
            layout.append("A")
        else:
            parts.append("{" + str(slots) + "}")
            slots += 1
            layout.append("S")
        i = j
    pattern = " ".join(parts)
    lay = "".join(layout)
    if lay == "AS":
        kind = "prefix"
    elif lay == "SA":
        kind = "suffix"
    elif lay == "ASA":
        kind = "wrapper"
    elif lay == "SAS":
        kind = "infix"
    elif slots == 0:
        kind = "fixed"
    else:
        kind = "multi"
    return tuple(anchors), pattern, kind, int(cov.sum())


def mine_templates(
    prompt_ids: Sequence[int] | np.ndarray,
    texts: Sequence[str] | PromptTexts,
    *,
    min_prompts: int = 20,
    min_fixed_tokens: int = 4,
    max_fixed_ratio: float | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    ngram: int | None = None,
    min_distinct: int | None = None,
    closure_share: float = 0.9,
    min_anchor_tokens: int | None = None,
    nested_share: float = 0.9,
    floating_min_fixed_tokens: int | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    chunk_size: int = 100_000,
    min_label_content: int = 8,
) -> TemplateMining:
    """Mine prompt templates from normalised prompts.

    Args:
        prompt_ids: int64 id per prompt (unique).
        texts: normalised prompt text per prompt, parallel to ``prompt_ids``: a list, or a
            :class:`PromptTexts` that reads them on demand (a store at millions of prompts).
        min_prompts: least number of prompts a template must hold; also the least number of
            prompts an n-gram must occur in to count as possibly fixed text.
        min_fixed_tokens: least number of fixed tokens a template must have.
        max_fixed_ratio: when set, drop templates whose fixed part exceeds this share of the
            member's tokens (they are near-copies rather than templates).
        con: DuckDB connection to work in (temporary tables, dropped afterwards); a private
            in-memory one otherwise.
        ngram: n-gram length used to find fixed text; defaults to ``min_fixed_tokens``. Anchors
            shorter than this are not seen.
        min_distinct: least number of distinct prompt texts (distinct slot fillings) among the
            members; default ``max(2, min_prompts // 2)``. A family of exact copies fails it, a
            template whose contents repeat (five questions on one passage) passes.
        min_anchor_tokens: the longest anchor must have at least this many tokens (default
            ``ngram + 2``): a few common bits such as "it's" and "i don't" that happen to co-occur
            in some prompts, or a stock opener such as "generate a list of", are not a template.
        closure_share: an n-gram is part of a template's fixed text when at least this share of
            the members hold it (so an optional phrase does not split a template).
        nested_share: a class splits off as a more specific template when at least this share of
            its prompts lie inside the group being formed.
        floating_min_fixed_tokens: fixed tokens required from a template with a single anchor
            that is neither at the start nor the end of most members (default
            ``2 * min_fixed_tokens``): short phrases such as "can you please help me" float
            anywhere in organic prompts, so a floating anchor must be longer to be specific.
        weights: optional weight per prompt (e.g. number of exchanges), summed per template.
        min_label_content: mean tokens after the label a *label template* needs (see
            :func:`_label_templates`); 0 turns label templates off.
        chunk_size: prompts tokenised per batch (bounds Python-side memory).

    Returns:
        The templates, largest first, with ``template_id`` 0..k-1, and the assignment of prompts.
    """
    pids = np.asarray(prompt_ids, dtype=np.int64)
    if not isinstance(texts, PromptTexts):
        texts = _InMemoryTexts(texts)
    if len(pids) != len(texts):
        raise ValueError(f"prompt_ids ({len(pids)}) and texts ({len(texts)}) differ in length")
    n = int(ngram if ngram is not None else max(2, min_fixed_tokens))
    if n < 1:
        raise ValueError("ngram must be >= 1")
    min_prompts = max(2, int(min_prompts))
    min_distinct = int(min_distinct if min_distinct is not None else max(2, min_prompts // 2))
    float_min = int(
        floating_min_fixed_tokens if floating_min_fixed_tokens is not None else 2 * min_fixed_tokens
    )
    w = np.ones(len(pids)) if weights is None else np.asarray(weights, dtype=np.float64)
    empty = TemplateMining((), (np.empty(0, np.int64), np.empty(0, np.int64)))
    m = len(pids)
    if m < min_prompts:
        return empty

    own = con is None
    db = duckdb.connect() if own else con
    assert db is not None
    tag = f"_tpl{id(db) & 0xFFFFFF:x}_{np.random.default_rng().integers(1 << 30):x}"
    t_occ, t_ng, t_rc = f"{tag}_occ", f"{tag}_ng", f"{tag}_rc"
    try:
        ntok = np.empty(m, dtype=np.int64)
        text_hash = np.empty(m, dtype=np.int64)
        db.execute(f"CREATE TEMP TABLE {t_occ} (row BIGINT, pos INTEGER, h BIGINT)")
        c0 = 0
        for chunk in texts.chunks(chunk_size):
            rows, pos, hv, nt, th = _chunk_ngrams(chunk, c0, n)
            ntok[c0 : c0 + len(chunk)] = nt
            text_hash[c0 : c0 + len(chunk)] = th
            batch = pa.table({"row": rows, "pos": pos, "h": hv})  # noqa: F841 (read by DuckDB)
            db.execute(f"INSERT INTO {t_occ} SELECT * FROM batch")
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
            CREATE TEMP TABLE {t_ng} AS
            WITH f AS (
                SELECT h, count(*) AS df, bit_xor(hash(row)) AS fx, sum(hash(row + 7919) >> 4) AS fs
                FROM {t_occ} GROUP BY h HAVING count(*) >= {min_prompts}
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
            CREATE TEMP TABLE {t_rc} AS
            SELECT o.row, o.pos, g.cid FROM {t_occ} o JOIN {t_ng} g USING (h) ORDER BY o.row, o.pos
            """
        )
        db.execute(f"DROP TABLE {t_occ}")
        rc = _fetch_pairs(db, t_rc, ntok, n)
        cls = db.execute(
            f"SELECT cid, any_value(df) AS df, count(*) AS nng FROM {t_ng} GROUP BY cid"
        ).fetchnumpy()
        if len(rc["cid"]) == 0:
            return empty
        n_cls = int(np.max(cls["cid"])) + 1
        df = np.zeros(n_cls, dtype=np.int64)
        nng = np.zeros(n_cls, dtype=np.int64)
        df[np.asarray(cls["cid"], dtype=np.int64)] = np.asarray(cls["df"], dtype=np.int64)
        nng[np.asarray(cls["cid"], dtype=np.int64)] = np.asarray(cls["nng"], dtype=np.int64)
        ctx = _Ctx(
            rc_row=rc["row"],
            rc_cid=rc["cid"],
            rc_ends=rc["ends"],
            df=df,
            nng=nng,
            ntok=ntok,
            text_hash=text_hash,
            texts=texts,
            chunk_size=chunk_size,
            db=db,
            t_focc=t_rc,
            n=n,
            min_prompts=min_prompts,
            min_fixed_tokens=min_fixed_tokens,
            float_min=float_min,
            min_distinct=min_distinct,
            max_fixed_ratio=max_fixed_ratio,
            closure_share=closure_share,
            min_anchor_tokens=int(min_anchor_tokens if min_anchor_tokens is not None else n + 2),
            nested_share=nested_share,
            m=m,
        )
        log.debug("templates: %d (prompt, class) pairs, %d classes", len(ctx.rc_cid), n_cls)
        # Largest postings first: template text occurs in every member, so it precedes content
        # reused by a few prompts; more specific sibling templates are split off inside _take.
        cand = np.flatnonzero(df >= min_prompts)
        cand = cand[np.lexsort((cand, -nng[cand], -df[cand]))]
        for c in cand:
            rows_c = ctx.rows_of(int(c))
            members = rows_c[ctx.assigned[rows_c] < 0]
            if len(members) >= min_prompts:
                ctx.take(int(c), members, depth=0)

        _label_templates(ctx, min_label_content)

        order = sorted(range(len(ctx.found)), key=lambda i: (-ctx.found[i]["n"], ctx.found[i]["pattern"]))
        remap = np.full(len(ctx.found) + 1, -1, dtype=np.int64)
        templates = []
        for new_id, i in enumerate(order):
            s = ctx.found[i]
            remap[i] = new_id
            rows_k = np.flatnonzero(ctx.assigned == i)
            templates.append(
                Template(
                    template_id=new_id,
                    pattern=s["pattern"],
                    anchors=s["anchors"],
                    n_prompts=len(rows_k),
                    slot_diversity=s["diversity"],
                    kind=s["kind"],
                    fixed_tokens=s["fixed_tokens"],
                    fixed_ratio=s["fixed_ratio"],
                    weight=float(w[rows_k].sum()),
                    start_anchored=s["start_frac"],
                    end_anchored=s["end_frac"],
                    example_prompt_id=int(pids[s["rep"]]),
                )
            )
        sel = np.flatnonzero(ctx.assigned >= 0)
        a_pid = pids[sel]
        a_tid = remap[ctx.assigned[sel]]
        o = np.lexsort((a_pid, a_tid))
        log.info("templates: %d templates cover %d of %d prompts", len(templates), len(sel), m)
        return TemplateMining(tuple(templates), (a_pid[o], a_tid[o]))
    finally:
        for t in (t_occ, t_ng, t_rc):
            db.execute(f"DROP TABLE IF EXISTS {t}")
        if own:
            db.close()


# Bits of a (prompt, class) pair's `ends`: the class has an n-gram at the prompt's first token, at its last.
_AT_START, _AT_END = np.uint8(1), np.uint8(2)


def _fetch_pairs(db: duckdb.DuckDBPyConnection, t_rc: str, ntok: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The (prompt row, class) pairs in (row, class) order: `row`, `cid` as int32, and `ends` (uint8 bits).

    The pairs are the miner's largest state (57 per prompt at a million: 35M). The template test needs
    of a pair's token positions only whether the class starts the prompt and whether it ends it, so two
    bits replace the two int32 positions (16 -> 9 bytes a pair, and the rows go once grouped by class).
    Each Arrow batch is converted as it comes, never holding the whole int64 result.
    """
    parts: dict[str, list[np.ndarray]] = {"row": [], "cid": [], "ends": []}
    sql = (f"SELECT row, cid, min(pos) = 0 AS at_start, max(pos) AS last FROM {t_rc} "
           "GROUP BY row, cid ORDER BY row, cid")
    for batch in db.sql(sql).to_arrow_reader(1 << 22):
        row = batch.column(0).to_numpy().astype(np.int32)
        ends = np.where(batch.column(2).to_numpy(zero_copy_only=False), _AT_START, np.uint8(0))
        ends |= np.where(batch.column(3).to_numpy() + n == ntok[row], _AT_END, np.uint8(0))
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


# A field label opening a prompt: one to four words and a colon ("summarize:", "translate to french:",
# "question:"). Too short for the n-gram pass (a template needs min_fixed_tokens fixed tokens).
_LABEL_RE = re.compile(r"^\s*((?:[^\W\d_][\w'-]*[ \t]+){0,3}[^\W\d_][\w'-]*)[ \t]*:(?!//)")


def _label_templates(ctx: _Ctx, min_content: int) -> None:
    """Label templates among the prompts no n-gram template took: ``"summarize: {0}"``.

    A one-word instruction in front of a long variable text is the shortest template there is
    (T0's ``xsum_summarize_DOC``). Its fixed text is too short for the n-gram pass, and organic
    users type such labels too, so these are recorded with ``kind="label"`` and low specificity:
    they never link accounts by mere shared use; only a significant excess of accounts that send
    them intensely does (:mod:`engine.detect.rings`). A group needs ``min_prompts`` members,
    ``min_distinct`` distinct texts and on average ``min_content`` tokens after the label.
    """
    if min_content <= 0:
        return
    groups: dict[str, list[int]] = {}
    c0 = 0
    for chunk in ctx.texts.chunks(ctx.chunk_size):
        for r in np.flatnonzero(ctx.assigned[c0 : c0 + len(chunk)] < 0).tolist():
            m = _LABEL_RE.match(chunk[r])
            if m:
                groups.setdefault(" ".join(m.group(1).split()), []).append(c0 + r)
        c0 += len(chunk)
    for label, rows in sorted(groups.items()):
        if len(rows) < ctx.min_prompts:
            continue
        members = np.asarray(rows, dtype=np.int64)
        distinct = len(np.unique(ctx.text_hash[members]))
        fixed = len(tokenize(label)) + 1
        if distinct < ctx.min_distinct or float(ctx.ntok[members].mean()) - fixed < min_content:
            continue
        lens = ctx.ntok[members]
        rep = int(members[np.argsort(lens, kind="stable")[len(lens) // 2]])
        ctx.assigned[members] = len(ctx.found)
        anchor = f"{label}:"
        ctx.found.append({
            "n": len(members), "pattern": anchor.replace("{", "{{").replace("}", "}}") + " {0}",
            "anchors": (anchor,), "kind": "label", "fixed_tokens": fixed,
            "fixed_ratio": fixed / max(1.0, float(lens.mean())), "diversity": distinct / len(members),
            "start_frac": 1.0, "end_frac": 0.0, "rep": rep,
        })


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


class _Ctx:
    """Working state of one mining run: the (prompt, class) pairs and the greedy assignment."""

    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)
        self.assigned = np.full(self.m, -1, dtype=np.int64)
        self.found: list[dict] = []
        # Pairs come in (row, class) order: a row's pairs are rc_*[row_ptr[r]:row_ptr[r+1]], and a
        # class's rows are cls_rows[cls_ptr[c]:cls_ptr[c+1]] (sorted); the row column itself then goes.
        self.row_ptr = np.zeros(self.m + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.rc_row, minlength=self.m), out=self.row_ptr[1:])
        self.cls_ptr = np.zeros(len(self.df) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.rc_cid, minlength=len(self.df)), out=self.cls_ptr[1:])
        self.cls_rows = _grouped_by_key(self.rc_cid, self.cls_ptr, self.rc_row)
        del self.rc_row
        self.stamp = np.zeros(self.m, dtype=np.int64)
        self.stamp_no = 0

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

    def take(self, c: int, members: np.ndarray, depth: int) -> None:
        """Make a template of core class ``c`` over ``members`` (unassigned prompts holding ``c``).

        First split off nested, more specific templates: classes whose prompts lie (almost) all
        inside this group but cover only part of it, e.g. the unique text of one of several
        sibling templates that share a long preamble. Content reused by a few prompts across
        templates is not nested in any one of them, so it does not split a template.
        """
        idx, owner = self.gather(members)
        cids = self.rc_cid[idx]
        u, cnt = np.unique(cids, return_counts=True)
        closure_min = self.closure_share * len(members)
        if depth < 8:
            sub = (cnt < closure_min) & (cnt >= self.min_prompts) & (cnt >= self.nested_share * self.df[u])
            # Split only when the nested classes together cover (almost) the whole group, as
            # sibling templates do; a nested class over part of the group with nothing specific
            # in the rest is an optional phrase of one template.
            if sub.any():
                covered = np.unique(owner[np.isin(cids, u[sub])])
                if len(covered) < closure_min:
                    sub[:] = False
            # Membership by stamp, not np.intersect1d: the sort inside intersect1d was a fifth of
            # the miner's time at a million prompts. A nested call stamps its own members, so they
            # are stamped back after it.
            self.stamp_no += 1
            token = self.stamp_no
            self.stamp[members] = token
            for d in u[sub][np.argsort(-cnt[sub], kind="stable")]:
                rows_d = self.rows_of(int(d))
                md = rows_d[(self.assigned[rows_d] < 0) & (self.stamp[rows_d] == token)]
                if len(md) >= self.min_prompts:
                    self.take(int(d), md, depth + 1)
                    self.stamp[md] = token
            rest = members[self.assigned[members] < 0]
            if len(rest) < len(members):
                if len(rest) >= self.min_prompts:
                    self.take(c, rest, depth=8)  # closure on what is left; no second split
                return
        self._accept(c, members, idx, owner, u[cnt >= closure_min])

    def _accept(
        self, c: int, members: np.ndarray, idx: np.ndarray, owner: np.ndarray, closure: np.ndarray
    ) -> None:
        """Validate the group and record it as a template when it passes."""
        distinct = len(np.unique(self.text_hash[members]))
        if distinct < self.min_distinct:
            return
        in_cl = np.isin(self.rc_cid[idx], closure)
        # Reused content (one passage under many templates) also shares long text, but then most
        # members also hold some bigger multi-n-gram text outside the group: their real template.
        other = self.rc_cid[idx][~in_cl]
        bigger = (self.df[other] >= 2 * len(members)) & (self.nng[other] >= 2)
        if len(np.unique(owner[~in_cl][bigger])) >= 0.5 * len(members):
            log.debug("templates: reject (content) n=%d core=%d", len(members), c)
            return
        # A member starts (ends) with the template when one of its closure classes starts (ends) it.
        ends = self.rc_ends[idx][in_cl]
        at_start = np.zeros(len(members), dtype=bool)
        at_end = np.zeros(len(members), dtype=bool)
        at_start[owner[in_cl][(ends & _AT_START) > 0]] = True
        at_end[owner[in_cl][(ends & _AT_END) > 0]] = True
        start_frac = float(np.mean(at_start))
        end_frac = float(np.mean(at_end))
        # Representative: a member of median length, so slots show typical content.
        lens = self.ntok[members]
        rep = int(members[np.argsort(lens, kind="stable")[len(lens) // 2]])
        pos = self.db.execute(
            f"SELECT pos FROM {self.t_focc} WHERE row = ? AND list_contains(?, cid)",
            [rep, [int(x) for x in closure]],
        ).fetchnumpy()["pos"]
        pos = np.asarray(pos, dtype=np.int64)
        covered = np.unique((pos[:, None] + np.arange(self.n)[None, :]).ravel())
        anchors, pattern, kind, fixed = _anchor_layout(self.texts.text(rep), covered)
        # Longest anchor in tokens: runs of consecutive covered positions.
        runs = np.split(covered, np.flatnonzero(np.diff(covered) != 1) + 1) if len(covered) else []
        longest = max((len(r) for r in runs), default=0)
        fixed_ratio = fixed / max(1.0, float(lens.mean()))
        floating = len(anchors) == 1 and start_frac < 0.9 and end_frac < 0.9
        reason = None
        if fixed < self.min_fixed_tokens:
            reason = "fixed"
        elif floating and fixed < self.float_min:
            reason = "floating"
        elif longest < self.min_anchor_tokens:
            reason = "short anchors"
        elif self.max_fixed_ratio is not None and fixed_ratio > self.max_fixed_ratio:
            reason = "ratio"
        if reason is not None:
            log.debug("templates: reject (%s) n=%d fixed=%d: %.100s", reason, len(members), fixed, pattern)
            return
        self.assigned[members] = len(self.found)
        self.found.append(
            {
                "n": len(members),
                "pattern": pattern,
                "anchors": anchors,
                "kind": kind,
                "fixed_tokens": fixed,
                "fixed_ratio": fixed_ratio,
                "diversity": distinct / len(members),
                "start_frac": start_frac,
                "end_frac": end_frac,
                "rep": rep,
            }
        )
