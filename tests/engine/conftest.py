"""Fixtures and helpers shared by the fast-tier and cluster tests: the static encoder, real prompts."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from engine.encoders.static import StaticEncoder
from engine.ingest.fingerprint import normalize
from tests.conftest import corpus

GREETINGS = ("hi! ", "hello, ", "hey there. ", "good morning! ")
SIGN_OFFS = (" thanks!", " thank you.", " cheers", " thx in advance")


def perturb(text: str, rng: random.Random) -> str:
    """What an evader does to a pasted prompt: a typo, a greeting or sign-off, lost punctuation."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 5]
    if long_words:
        i = rng.choice(long_words)
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    out = " ".join(words)
    choice = rng.randrange(3)
    if choice == 0:
        out = rng.choice(GREETINGS) + out
    elif choice == 1:
        out = out + rng.choice(SIGN_OFFS)
    else:
        out = out.replace(",", "").replace("?", "")
    return out


@pytest.fixture(scope="session")
def static_encoder(tmp_path_factory) -> StaticEncoder:
    return StaticEncoder(tmp_path_factory.mktemp("static-cache"))


def sample_corpora(counts: dict[str, int], seed: int, min_len: int = 1, max_len: int = 600) -> list[str]:
    """`counts[name]` random prompts of each corpus file, `min_len`..`max_len` characters long."""
    rng = random.Random(seed)
    texts: list[str] = []
    for name, n in counts.items():
        with gzip.open(corpus(name), "rt", encoding="utf-8") as fh:
            rows = [json.loads(line)["text"] for line in fh]
        rows = [t for t in rows if t.strip() and min_len <= len(t) <= max_len]
        rng.shuffle(rows)
        texts += rows[:n]
    return texts


@pytest.fixture(scope="session")
def organic() -> list[str]:
    texts = sample_corpora({"alpaca_5k.jsonl.gz": 100, "sharegpt_first_turns.jsonl.gz": 100}, seed=5, min_len=40)
    return list(dict.fromkeys(normalize(t) for t in texts))


def ring_traffic(organic: list[str]) -> list[dict]:
    """A 6-account copy ring pasting 12 perturbed prompts each, in 60 organic accounts' traffic."""
    rng = random.Random(3)
    rows = []
    for i, text in enumerate(organic[:120]):
        rows.append({"account_id": f"org_{i % 60:02d}", "timestamp": 1770000000 + i * 600, "prompt": text})
    rows += [{"account_id": "org_poem_a", "timestamp": 1770000000, "prompt": "Write a short poem about the sea."},
             {"account_id": "org_poem_b", "timestamp": 1770000100, "prompt": "Write a short poem about my love."}]
    for m in range(6):
        for q, text in enumerate(organic[150:162]):
            rows.append({"account_id": f"ring_{m}", "timestamp": 1771000000 + m * 50 + q * 3600,
                         "prompt": perturb(text, rng)})
    return rows


def reopened_records(workspace, encoder: str):
    """A fresh Engine on `workspace` (no encoder named): it must answer with `encoder`, the one the
    workspace was scanned with, at that encoder's own threshold, and hold that encoder's index only."""
    from engine import Engine
    from engine.config import thresholds_for

    later = Engine(workspace)
    assert later.encoder_name == encoder and later.status().encoder == encoder
    assert later.threshold == thresholds_for(encoder)[0]
    with later.store.connect() as con:
        assert con.execute("SELECT encoder FROM indexes").fetchall() == [(encoder,)]
    return later

