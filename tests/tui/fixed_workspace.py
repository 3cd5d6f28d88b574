"""A small workspace with fixed content, for snapshot tests and engine read-side tests.

Exchanges are ingested and embedded for real (with a deterministic hashing encoder, so search works
without the model and gives the same numbers on every machine); the detection tables (matches,
families, templates, links, rings, scores) are then written by hand, so what the screens show does
not move when the detector's heuristics are tuned.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from engine import Engine

START = datetime(2026, 9, 1, 8, 0, 0)
RING = ("acct-ring-01", "acct-ring-02", "acct-ring-03", "acct-ring-04")
ORGANIC = tuple(f"acct-org-{i:02d}" for i in range(1, 9))
QUESTIONS = (
    "A train leaves the station at 3 pm travelling at 60 km/h; when has it covered 150 km?",
    "What is the capital of Australia and why was it chosen over Sydney?",
    "Prove that the square root of 2 is irrational.",
    "Explain the difference between TCP and UDP with an example of each.",
    "If a bat and a ball cost 1.10 in total and the bat costs 1.00 more, what does the ball cost?",
    "Summarise the causes of the First World War in three sentences.",
)
PERTURB = ("{q}", "hi! {q}", "{q} thanks", "please: {q}")
LANGS = ("French", "German", "Spanish", "Italian", "Dutch", "Polish", "Swedish", "Greek")
SENTENCES = ("the weather is lovely today", "where is the nearest station", "I would like a coffee",
             "the meeting is postponed")
TEMPLATE = "Translate the following sentence into {lang}, then explain each word step by step: {s}"
ORGANIC_PROMPTS = (
    "write a haiku about autumn leaves", "how do I center a div in css", "recipe for banana bread",
    "what does HTTP 418 mean", "best way to learn piano as an adult", "explain recursion to a child",
    "plan a three day trip to Lisbon", "fix: ModuleNotFoundError: No module named 'requests'",
    "summarise the plot of Hamlet", "how many moons does Jupiter have",
)


class HashEncoder:
    """Deterministic bag-of-character-trigrams encoder (unit vectors): near-copies land near."""

    name = "hash-trigram-384"
    dim = 384

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            t = f"  {text.lower()}  "
            for j in range(len(t) - 2):
                h = int.from_bytes(hashlib.blake2b(t[j:j + 3].encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0 if h & 1 << 31 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out


def _rows() -> list[dict]:
    rows: list[dict] = []

    def add(account: str, ts: datetime, prompt: str) -> None:
        rows.append({"exchange_id": f"x{len(rows):05d}", "account_id": account,
                     "timestamp": ts.isoformat() + "Z", "prompt": prompt, "response": "ok", "model": "m-1"})

    # The ring: each member sends every question, perturbed its own way, in synchronised bursts on days 3 and 9.
    for qi, q in enumerate(QUESTIONS):
        for mi, acct in enumerate(RING):
            day = 3 if qi < 3 else 9
            add(acct, START + timedelta(days=day, minutes=5 * qi + mi), PERTURB[mi].format(q=q))
    # ... and splits the translation sweep: member k takes languages 2k and 2k+1, every sentence.
    for mi, acct in enumerate(RING):
        for lang in LANGS[2 * mi: 2 * mi + 2]:
            for si, s in enumerate(SENTENCES):
                add(acct, START + timedelta(days=5, hours=mi, minutes=10 * si + LANGS.index(lang)),
                    TEMPLATE.format(lang=lang, s=s))
    # Organic accounts: a few ordinary prompts spread over the month; one of them also asked question 1.
    for oi, acct in enumerate(ORGANIC):
        for k in range(3):
            add(acct, START + timedelta(days=2 + 3 * k + oi % 3, hours=oi), ORGANIC_PROMPTS[(oi + 3 * k) % 10])
    add(ORGANIC[0], START + timedelta(days=20), QUESTIONS[1])
    return rows


def build_fixed_workspace(path: Path) -> Path:
    """Create the fixed workspace at `path` (a new folder) and return it."""
    path = Path(path)
    src = path.parent / f"{path.name}-exchanges.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    engine = Engine(path, encoder=HashEncoder())
    engine.ingest([src])
    engine.embed()
    with engine.store.connect() as con:
        ids = dict(con.execute("SELECT text, prompt_id FROM prompts").fetchall())

        def pid(text: str) -> int:
            return int(ids[text])

        matches, families = [], []
        for q in QUESTIONS:
            members = [pid(p.format(q=q)) for p in PERTURB]
            if q == QUESTIONS[1]:
                members.append(pid(q))  # the organic account's plain copy (same text as member 1's)
            members = sorted(set(members))
            centre = members[0]
            for m in members:
                families.append((centre, m, centre, 1.0 if m == centre else 0.93))
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    matches.append((a, b, 0.91 + 0.01 * ((a + b) % 5)))
        template_ids = [pid(TEMPLATE.format(lang=lang, s=s)) for lang in LANGS for s in SENTENCES]
        assigned = {m for _, m, _, _ in families}
        for p in ids.values():
            if p not in assigned:
                families.append((p, p, p, 1.0))
        con.executemany("INSERT INTO matches VALUES (?, ?, ?)", matches)
        con.executemany("INSERT INTO families VALUES (?, ?, ?, ?)", families)
        con.execute("INSERT INTO templates VALUES (1, ?, '[]', 'sweep', ?, 4, ?, 0.97, 0.62)",
                    ["Translate the following sentence into {*}, then explain each word step by step: {*}",
                     len(template_ids), len(template_ids)])
        con.executemany("INSERT INTO template_members VALUES (1, ?)", [(t,) for t in template_ids])
        ring_signals = [
            {"name": "shared_near_copies", "value": 6, "background": 1, "score": 0.95,
             "detail": "4 accounts sent near-copies of the same 6 rare prompts within minutes",
             "examples": [{"family_id": pid(PERTURB[0].format(q=QUESTIONS[0])), "accounts": 4}]},
            {"name": "template_split", "value": 1.0, "background": 0.1, "score": 0.9,
             "detail": "one translation sweep split between members with no overlap", "examples": []},
        ]
        con.execute("INSERT INTO rings VALUES (7, 0.93, 4, ?, ?, ?)",
                    [len([r for r in _rows() if r["account_id"] in RING]), json.dumps(ring_signals),
                     "4 accounts share 6 rare near-copy families and split one template sweep"])
        for i, acct in enumerate(RING):
            signals = [
                {"name": "shared_near_copies", "value": 6, "background": 1, "score": 0.9 - 0.02 * i,
                 "detail": "6 prompts near-copied by 3 other accounts", "examples": [{"text": QUESTIONS[0][:40]}]},
                {"name": "template_sweep", "value": 0.57, "background": 0.05, "score": 0.8,
                 "detail": "8 of 14 prompts fill one template", "examples": []},
                {"name": "cot_elicitation", "value": 0.5, "background": 0.02, "score": 0.6,
                 "detail": "half its prompts ask to explain step by step", "examples": []},
            ]
            con.execute("INSERT INTO account_scores VALUES (?, ?, 7, 'shared_near_copies', ?)",
                        [acct, 0.91 - 0.03 * i, json.dumps(signals)])
        for i, acct in enumerate(ORGANIC):
            con.execute("INSERT INTO account_scores VALUES (?, ?, NULL, 'volume', ?)",
                        [acct, round(0.05 + 0.01 * i, 2), json.dumps([
                            {"name": "volume", "value": 3, "background": 40, "score": 0.0,
                             "detail": "ordinary volume", "examples": []}])])
        for i, a in enumerate(RING):
            for b in RING[i + 1:]:
                con.execute("INSERT INTO account_links VALUES (?, ?, ?, 6, ?)",
                            [a, b, 0.8 + 0.01 * RING.index(b), json.dumps({"families": 6, "templates": [1]})])
        con.execute("INSERT INTO account_links VALUES (?, ?, 0.2, 1, ?)",
                    [RING[1], ORGANIC[0], json.dumps({"families": 1})])
        con.execute("""INSERT INTO scan_runs VALUES (1, ?, 0.84, 'exact', ?, 1, 1, 'done',
                       TIMESTAMP '2026-10-01 12:00:00', TIMESTAMP '2026-10-01 12:00:05')""",
                    [HashEncoder.name, len(ids)])
    return path


def fixed_engine(path: Path, **kwargs) -> Engine:
    return Engine(path, encoder=HashEncoder(), **kwargs)
