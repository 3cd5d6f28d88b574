"""The reference encoder: all-MiniLM-L6-v2 through sentence-transformers, from the packaged weights.

torch is imported only when the encoder is built, so `import engine` stays light.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

import numpy as np

from engine.encoders.base import MODEL_NAME, cpu_has_bf16, encode_windowed, model_dir, verify_weights
from engine.errors import EmbeddingError

log = logging.getLogger(__name__)


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
