"""The one fake encoder of the test suite: deterministic, model-free, for unit tests of the logic
around embeddings (integration tests use the real model).

Its knobs exist because three suites were written against three variants of the same idea, and their
expected numbers (match counts, scores, the TUI snapshots) were measured on those exact vectors:

=====================  ====  =========  =======  ======  ==========================================
variant                dim   lowercase  hashing  signed  used by
=====================  ====  =========  =======  ======  ==========================================
``FakeEncoder()``      64    yes        crc32    no      detection unit tests (scoring, signals)
``TRIGRAM``            64    no         blake2b  no      the ``fake_encoder`` fixture (scan, tiers)
``FIXED_WORKSPACE``    384   yes        blake2b  yes     tests/fixtures/workspace.py (TUI, analyst)
=====================  ====  =========  =======  ======  ==========================================
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any, Literal

import numpy as np

Hashing = Literal["crc32", "blake2b"]


class FakeEncoder:
    """Bag of hashed character trigrams, L2-normalised: near-copies land near, unrelated texts apart.

    Each text (lower-cased where ``lowercase``) is padded to ``"  text  "``; each of its trigrams is hashed
    to an unsigned 32-bit integer ``h`` (``crc32``, or the first 4 little-endian bytes of ``blake2b``) and
    adds 1 to bucket ``h % dim`` (with ``signed``, +1 or -1 by the top bit of ``h``). ``encode`` returns
    float32 ``(len(texts), dim)`` unit rows; a row whose signed counts cancel out becomes e_0. ``calls``
    counts ``encode`` calls, for tests of what gets embedded again.
    """

    def __init__(self, dim: int = 64, *, name: str = "fake-trigram", lowercase: bool = True,
                 hashing: Hashing = "crc32", signed: bool = False) -> None:
        self.dim = dim
        self.name = name
        self.lowercase = lowercase
        self.hashing = hashing
        self.signed = signed
        self.calls = 0

    def _hash(self, trigram: str) -> int:
        if self.hashing == "crc32":
            return zlib.crc32(trigram.encode())
        return int.from_bytes(hashlib.blake2b(trigram.encode(), digest_size=4).digest(), "little")

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text.lower() if self.lowercase else text}  "
            for j in range(len(padded) - 2):
                h = self._hash(padded[j : j + 3])
                out[i, h % self.dim] += -1.0 if self.signed and not h & 1 << 31 else 1.0
        # Counts are small integers, so the norms are exact whatever the summation order.
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        out[empty, 0] = 1.0
        norms[empty] = 1.0
        return out / norms


# Settings of the variants other than the default (see the module docstring).
TRIGRAM: dict[str, Any] = {"dim": 64, "name": "fake-trigram", "lowercase": False, "hashing": "blake2b"}
FIXED_WORKSPACE: dict[str, Any] = {"dim": 384, "name": "hash-trigram-384", "lowercase": True,
                                   "hashing": "blake2b", "signed": True}
