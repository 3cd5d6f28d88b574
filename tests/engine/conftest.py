"""Fixtures shared by the fast-tier and cluster tests: the static encoder, real prompts."""

from __future__ import annotations

import pytest

from engine.encoders.static import StaticEncoder
from engine.ingest.fingerprint import normalize
from tests.fixtures.corpora import sample_corpora


@pytest.fixture(scope="session")
def static_encoder(tmp_path_factory) -> StaticEncoder:
    return StaticEncoder(tmp_path_factory.mktemp("static-cache"))


@pytest.fixture(scope="session")
def organic() -> list[str]:
    texts = sample_corpora({"alpaca_5k.jsonl.gz": 100, "sharegpt_first_turns.jsonl.gz": 100}, seed=5, min_len=40)
    return list(dict.fromkeys(normalize(t) for t in texts))
