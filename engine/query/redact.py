"""Redaction of evidence that leaves the workspace (`export --redact`, `report --redact`).

A bundle sent to another team or provider has to show *which* prompts an account sent, not what they
said. Every prompt text is replaced by

- its fingerprint: 16 hex digits, the workspace's own fingerprint of the normalised prompt
  (`prompts.fingerprint`, a blake2b-64 digest of `engine.ingest.fingerprint.normalize(text)`, read
  unsigned). Two bundles, from one workspace or two, name the same prompt (or a homoglyph/spacing
  variant of it) with the same value, and a holder of the text can recompute it;
- an excerpt: at most `EXCERPT_CHARS` (40) characters and at most half of the prompt, cut at a word
  boundary, with an ellipsis. 40 characters is about the opening clause ("Translate the following
  sentence into…"), enough to recognise a template or a campaign's wording, while the task, names and
  pasted data that follow stay out; the half rule keeps a short prompt ("hi, I'm Ann Lee") from being
  quoted whole.

Template patterns are treated the same way (a pattern is the fixed text of many prompts). Responses,
IPs, the `meta` column, analysts' free-text mark notes and names (a mark's author) and the workspace path (it names a user's home
folder) are dropped; account ids, exchange ids, prompt/family/template ids, models, times, scores and
signal figures stay, since they are the evidence and name no person by themselves.

Infrastructure evidence (`engine.detect.infra`) names addresses and payment fingerprints: an entry
`{"type": "ip" | "subnet" | "payment", "value": ...}` loses its `value` (the type, the number of accounts
and the weight stay: "a /24 shared by 41 accounts" is the evidence, which /24 is not needed to weigh it),
and addresses quoted in free text (a signal's `detail`, a ring's `summary`) become `[address]`. Client
strings and key-creation dates stay: they name software and a day, not a person.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

from engine.ingest.fingerprint import fingerprint, normalize
from engine.store.workspace import Store

EXCERPT_CHARS = 40

# Keys whose value is a prompt's text, mapped to the sibling key holding that prompt's id (None: the
# value carries no id beside it). A family's id is its centre prompt's id.
PROMPT_TEXT_KEYS: dict[str, str | None] = {
    "text": "prompt_id", "prompt": "prompt_id", "text_a": "prompt_a", "text_b": "prompt_b",
    "example": "example_prompt_id", "center": "family_id", "center_text": "family_id",
    "family_center": "family_id",
}
# Keys whose value is a template pattern: fingerprinted as a text of its own.
PATTERN_KEYS = frozenset({"pattern", "template_pattern"})
# Dropped outright: what a person said or where from, and free text an analyst wrote.
DROPPED_KEYS = frozenset({"response", "ip", "meta", "note", "author", "workspace"})
# Keys whose string value is JSON written by the scorer (a link's evidence): redacted inside.
JSON_TEXT_KEYS = frozenset({"evidence"})
# Infrastructure evidence types whose "value" names a network or a card (engine.detect.infra.PRIVATE_TYPES).
PRIVATE_INFRA_TYPES = frozenset({"ip", "subnet", "payment"})
# Free-text keys whose addresses are scrubbed.
PROSE_KEYS = frozenset({"detail", "summary"})
# Anything shaped like an IPv4 or IPv6 address, with an optional prefix length; validated before it is
# replaced, so a time such as 10:20:30 stays.
_ADDRESS = re.compile(r"(?<![\w:.])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
                      r"(?:/\d{1,3})?(?![\w:])")

# The scorer's examples quote prompts cut to this many characters (`left(p.text, 200)`).
_QUOTED_CHARS = 200
_SPACE = re.compile(r"\s+")
# Controls and bidirectional overrides: never quoted, not even in an excerpt.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

DESCRIPTION = (
    "prompt text and template patterns replaced by <key>_fingerprint (16 hex digits: blake2b-64 of the "
    "normalised prompt, as prompts.fingerprint) and <key>_excerpt (at most 40 characters and half the "
    "text, cut at a word); responses, IPs, meta, mark notes and the workspace path left out; addresses and "
    "payment fingerprints in infrastructure evidence left out"
)


def scrub_addresses(text: str) -> str:
    """`text` with every IPv4/IPv6 address or network in it replaced by `[address]`."""
    def sub(m: re.Match) -> str:
        try:
            ipaddress.ip_network(m.group(0), strict=False)
        except ValueError:
            return m.group(0)
        return "[address]"

    return _ADDRESS.sub(sub, text)


def fingerprint_hex(value: int) -> str:
    """A stored fingerprint (signed BIGINT) as 16 hex digits: the digest itself, safe in JSON."""
    return f"{int(value) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def text_fingerprint(text: str) -> str:
    """The fingerprint of `text` the way ingest computes it (normalised first), as 16 hex digits."""
    return fingerprint_hex(fingerprint(normalize(text)))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of `text` on one line: at most `limit` characters and at most half of it, cut after a
    word where one ends in the second half of the cut, followed by an ellipsis. Empty for empty text."""
    flat = _SPACE.sub(" ", _HIDDEN.sub(" ", text)).strip()
    if not flat:
        return ""
    cut = min(limit, len(flat) // 2)
    head = flat[:cut]
    space = head.rfind(" ")
    # Back off to the last word's end unless the cut falls on one; a long unbroken token (a URL, base64)
    # is cut where the limit falls rather than dropped whole.
    if flat[cut:cut + 1] not in ("", " ") and space >= cut // 2:
        head = head[:space]
    return head.rstrip(" ,;:.-") + "…"


class Redactor:
    """Redacts JSON-ready evidence (dicts, lists, strings) from one workspace.

    `prepare(docs)` looks up, in one query each, the stored fingerprints of every prompt the documents
    quote; `redact(doc)` then returns a redacted copy. A quoted prompt with its id beside it takes that
    prompt's stored fingerprint; one without (a template example) is matched on its text, or on its first
    200 characters, which is how the scorer quotes it.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_id: dict[int, str] = {}
        self._by_text: dict[str, str] = {}

    # ------------------------------------------------------------------ lookups
    def prepare(self, docs: Iterable[Any]) -> Redactor:
        ids: set[int] = set()
        texts: set[str] = set()
        for doc in docs:
            _collect(doc, ids, texts)
        ids -= self._by_id.keys()
        texts -= self._by_text.keys()
        if not ids and not texts:
            return self
        with self.store.connect() as con:
            if ids:
                self._by_id.update(
                    (int(pid), fingerprint_hex(fp)) for pid, fp in con.execute(
                        "SELECT prompt_id, fingerprint FROM prompts WHERE prompt_id IN (SELECT unnest(?::BIGINT[]))",
                        [sorted(ids)]).fetchall())
            if texts:
                # Two equi-joins (hash joins), not one join on `a OR b`, which DuckDB runs as a nested loop.
                found = con.execute(
                    f"""WITH q AS (SELECT unnest(?::VARCHAR[]) AS t),
                        hit AS (SELECT q.t, p.prompt_id, p.fingerprint FROM q JOIN prompts p ON p.text = q.t
                                UNION ALL
                                SELECT q.t, p.prompt_id, p.fingerprint FROM q
                                JOIN prompts p ON left(p.text, {_QUOTED_CHARS}) = q.t
                                WHERE length(q.t) = {_QUOTED_CHARS})
                        SELECT t, arg_min(fingerprint, prompt_id) FROM hit GROUP BY t""",
                    [sorted(texts)]).fetchall()
                self._by_text.update((t, fingerprint_hex(fp)) for t, fp in found)
        return self

    def prompt_fingerprint(self, text: str, prompt_id: Any = None) -> str:
        """The fingerprint of a quoted prompt: the stored one where known, else computed from the text."""
        if isinstance(prompt_id, int) and prompt_id in self._by_id:
            return self._by_id[prompt_id]
        return self._by_text.get(text) or text_fingerprint(text)

    # ------------------------------------------------------------------ redaction
    def redact(self, value: Any) -> Any:
        """A redacted copy of `value` (see the module docstring); account ids and figures are kept."""
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            private = value.get("type") in PRIVATE_INFRA_TYPES
            for key, item in value.items():
                if key in DROPPED_KEYS or (private and key == "value"):
                    continue
                if isinstance(item, str) and key in PROSE_KEYS:
                    out[key] = scrub_addresses(item)
                elif isinstance(item, str) and key in PROMPT_TEXT_KEYS:
                    id_key = PROMPT_TEXT_KEYS[key]
                    out[f"{key}_fingerprint"] = self.prompt_fingerprint(item, value.get(id_key) if id_key else None)
                    out[f"{key}_excerpt"] = excerpt(item)
                elif isinstance(item, str) and key in PATTERN_KEYS:
                    out[f"{key}_fingerprint"] = text_fingerprint(item)
                    out[f"{key}_excerpt"] = excerpt(item)
                elif isinstance(item, str) and key in JSON_TEXT_KEYS:
                    out[key] = self._redact_json(item)
                else:
                    out[key] = self.redact(item)
            return out
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        return value

    def _redact_json(self, text: str) -> str:
        try:
            parsed = json.loads(text)
        except ValueError:
            # Not the JSON the scorer writes: nothing in it can be vouched for, so only its excerpt goes out.
            return excerpt(text)
        return json.dumps(self.redact(parsed), ensure_ascii=False)


def _collect(value: Any, ids: set[int], texts: set[str]) -> None:
    """The prompt ids and id-less prompt texts `value` quotes (what `Redactor.prepare` looks up)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and key in PROMPT_TEXT_KEYS:
                id_key = PROMPT_TEXT_KEYS[key]
                pid = value.get(id_key) if id_key else None
                if isinstance(pid, int):
                    ids.add(pid)
                else:
                    texts.add(item)
            elif isinstance(item, str) and key in JSON_TEXT_KEYS:
                try:
                    _collect(json.loads(item), ids, texts)
                except ValueError:
                    pass
            else:
                _collect(item, ids, texts)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, ids, texts)
