"""Encoders by name: the short names `--encoder` takes, and the one factory that builds each tier.

Kept apart from `base` so the tiers can import the base without the base importing them (no circle).
"""

from __future__ import annotations

from pathlib import Path

from engine.config import ONNX_NAME, STATIC_NAME
from engine.encoders.base import MODEL_NAME, Encoder
from engine.errors import EmbeddingError

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
        from engine.encoders.minilm import MiniLMEncoder  # imports torch only when asked for

        return MiniLMEncoder(device=device)
    if cache_dir is None:
        raise EmbeddingError(f"encoder {full} needs a folder to keep the model it builds in")
    if full == ONNX_NAME:
        if device != "cpu":
            raise EmbeddingError(f"encoder {full} runs on the CPU only; use --encoder minilm for --device {device}")
        from engine.encoders.onnx import OnnxEncoder  # onnxruntime is an optional extra

        return OnnxEncoder(cache_dir)
    from engine.encoders.static import StaticEncoder

    return StaticEncoder(cache_dir)
