"""Shared fixtures: the real encoder (loaded once per session) and a small fake one for logic-only tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def corpus(name: str) -> Path:
    """Path of a shared corpus; skips the test with a clear message where the folder is absent."""
    path = CORPORA / name
    if not path.exists():
        pytest.skip(f"shared corpus {path} is not present on this machine")
    return path


class FakeEncoder:
    """Deterministic hashed character-trigram vectors: only for unit tests of logic around embeddings."""

    name = "fake-trigram"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text}  "
            for j in range(len(padded) - 2):
                h = int.from_bytes(hashlib.blake2b(padded[j : j + 3].encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_encoder():
    from engine.encoders.minilm import MiniLMEncoder

    return MiniLMEncoder()


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
            fh.write("\n")
    return path
