"""The fast tier: a static word-piece embedding table distilled from the packaged all-MiniLM-L6-v2.

A static model embeds a prompt as the mean of one fixed vector per word piece: no attention, no
matrix products per token, so it runs at tens of thousands of prompts per second on two cores where
the transformer manages ~100-200. It is built from the packaged MiniLM itself, offline, the way
model2vec distils a model (we do it in ~40 lines of torch and numpy rather than depend on
`model2vec[distill]`, whose transformers pin conflicts with sentence-transformers'):

1. every word piece of the vocabulary is run through the transformer alone (``[CLS] piece [SEP]``)
   and mean-pooled, as sentence-transformers pools a sentence (~25 s on 2 cores);
2. the 30,522 vectors are centred and projected on their first ``dims`` principal components
   (centring removes the direction every vector shares, which otherwise dominates every cosine);
3. each piece is weighted by SIF, ``a / (a + p)``, with ``p`` a Zipf probability of the piece's
   rank in the vocabulary (BERT's word-piece ids run roughly from frequent to rare), so function
   words weigh little, as they would after attention.

Trade-off, measured by `bench/threshold.py --encoder static` (bench/results/threshold_static.json):
near-copies still score high (median ~0.97), but unrelated prompts score higher than with MiniLM
(random pairs ~0.4 instead of ~0.05; the nearest unrelated pairs ~0.74 instead of ~0.41), so the
static model has its own thresholds (`engine.config.ENCODER_THRESHOLDS`) and ranks close neighbours
less well. It is a candidate generator: `scan --recheck` confirms its near-copy edges with the
transformer.

The table is cached in the workspace (``models/<name>.npz``) beside a JSON sidecar holding its
sha256 and the sha256 of the MiniLM weights it was distilled from; both are checked at load, so a
corrupt or foreign table is refused, never silently used. The cached table is what every vector of
the workspace was made with, so a later distillation on another CPU cannot drift the index.

Vectors are then centred on a fixed reference (`StaticEncoder._load_centre`) shipped as package data,
``data/static_centre_v<N>.npy``, checked against its sha256 here and copied into the workspace beside
the table. It was fitted once on synthetic traffic by tools/refit_static_centre.py; the engine never
imports the generator, so editing it changes no vector.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import time
from collections.abc import Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
from scipy import sparse

from engine.config import STATIC_NAME
from engine.encoders.cache import check_cached, write_cached
from engine.errors import EmbeddingError
from engine.files import atomic_write

log = logging.getLogger(__name__)

STATIC_DIMS = 256
assert STATIC_NAME == f"static-minilm-{STATIC_DIMS}"  # the recorded name says the table's width
# SIF's a: pieces more frequent than ~1e-4 of all tokens ("the", "of", punctuation) are damped.
SIF_COEFFICIENT = 1e-4
# Pieces read per prompt, from its start (16 x 256, as many as the transformer's windows read; unlike
# them, these do not sample the rest of a very long prompt).
MAX_PIECES = 4096
# The centring reference shipped with the package (see `reference_centre`): float32 (2, STATIC_DIMS), the
# mean and the first principal direction. A refit is a new version with a new name, never an edit of
# this file (tools/refit_static_centre.py says when and how); the sha256 is checked at every read.
CENTRE_FILE = "static_centre_v1.npy"
CENTRE_SHA256 = "d8d585dd57dc0c91aba85874cb99368b695d60a6d927f699093bcf680a0b31f3"
# A prompt longer than this is cut before tokenising: 4,096 pieces rarely need more than ~20k characters.
MAX_CHARS = 32_000


def distill(model_dir: Path, dims: int = STATIC_DIMS, sif: float = SIF_COEFFICIENT,
            batch: int = 2048) -> np.ndarray:
    """The static table (vocab, dims) float32 distilled from the transformer in `model_dir`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    vocab = tokenizer.vocab_size
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    raw = np.zeros((vocab, model.config.hidden_size), np.float32)
    with torch.inference_mode():  # fp32 on purpose: the table must not depend on the CPU's bf16 support
        for start in range(0, vocab, batch):
            piece = torch.arange(start, min(vocab, start + batch))
            ids = torch.stack([torch.full_like(piece, cls), piece, torch.full_like(piece, sep)], 1)
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            raw[start : start + len(piece)] = hidden.mean(1).numpy()
    centred = raw - raw.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    table = centred @ vt[:dims].T
    zipf = 1.0 / np.arange(2, vocab + 2)
    table *= (sif / (sif + zipf / zipf.sum()))[:, None]
    log.info("distilled a %dx%d static table from %s in %.1f s", vocab, dims, model_dir.name,
             time.monotonic() - started)
    return np.ascontiguousarray(table, dtype=np.float32)


class StaticEncoder:
    """Mean of distilled word-piece vectors, L2-normalised: the fast tier (see module docstring)."""

    name = STATIC_NAME
    dim = STATIC_DIMS
    # Prompts per vector shard: ~5 s of work here, as 2,048 are for the transformer (a shard's commit
    # costs tens of milliseconds, which would otherwise dominate).
    shard_prompts = 65_536

    def __init__(self, cache_dir: Path) -> None:
        from engine.encoders.base import MODEL_SHA256, model_dir, verify_weights

        source = model_dir()
        self._cache_dir = Path(cache_dir)
        self.table = load_or_distill(self._cache_dir, source, MODEL_SHA256, verify_weights)
        self._load_tokenizer(source)
        self._load_centre()

    @classmethod
    def from_table(cls, table: np.ndarray, centre: np.ndarray | None = None,
                   direction: np.ndarray | None = None) -> StaticEncoder:
        """An encoder over a table (and centre) already loaded and checked: a Ray actor gets the driver's."""
        from engine.encoders.base import model_dir

        self = cls.__new__(cls)
        self.table = np.asarray(table, np.float32)
        self.centre, self.direction = centre, direction
        self._load_tokenizer(model_dir())
        return self

    def cache_files(self) -> list[Path]:
        """The cached table, its sidecar and its centre (none for a table handed over in memory)."""
        folder = getattr(self, "_cache_dir", None)
        names = (f"{STATIC_NAME}.npy", f"{STATIC_NAME}.json", f"{STATIC_NAME}.centre.json")
        return [folder / n for n in names] if folder else []

    def _load_tokenizer(self, source: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_PIECES)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # No [CLS]/[SEP]: a static mean must not add the same two vectors to every prompt.
        encodings = self.tokenizer.encode_batch([t[:MAX_CHARS] for t in texts], add_special_tokens=False)
        pieces = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, pieces), np.int64, len(pieces))
        flat = np.fromiter(itertools.chain.from_iterable(pieces), np.int64, int(lengths.sum()))
        # Sum of piece vectors per prompt as a sparse (prompts x vocab) count matrix times the table:
        # gathering table rows per piece first would move ~70 x 256 floats per prompt through memory
        # (measured 6x slower than the whole tokenizer).
        counts = sparse.csr_matrix((np.ones(len(flat), np.float32), flat, np.concatenate([[0], np.cumsum(lengths)])),
                                   shape=(len(texts), self.table.shape[0]))
        out = _unit(np.asarray(counts @ self.table, dtype=np.float32))
        if self.centre is not None:
            # An empty prompt stays a zero vector rather than becoming minus the centre.
            empty = lengths == 0
            out = out - self.centre
            out -= np.outer(out @ self.direction, self.direction)
            out = _unit(out)
            out[empty] = 0.0
        return np.ascontiguousarray(out, dtype=np.float32)

    # ------------------------------------------------------------------ centring
    def _load_centre(self) -> None:
        """Load the centre cached beside the table, copying the packaged reference centre there first.

        Summed piece vectors share a large common direction (random prompts score ~0.4 against each
        other) that dominates every cosine. As in SIF's common-component removal, a mean vector is
        subtracted and the first principal direction projected out. Both come from a fixed reference,
        never from the traffic being scanned: a campaign that is most of a workspace's traffic would
        otherwise *be* the mean and the main direction, and removing them would erase its copies'
        likeness. The reference is shipped with the package (`reference_centre`), fitted once on
        generic English requests by tools/refit_static_centre.py. Measured on real prompts
        (bench/threshold.py): at the cut keeping 95% of perturbed copies, the hardest unrelated pairs
        that pass fall from 23% to about 6%, as much as centring on those real prompts themselves achieves.

        The workspace keeps its own copy, as it keeps the table: a later package with another centre
        version must not change the vectors of a workspace already scanned. A copy written before the
        centre was packaged (fitted here at first use) holds the same values and loads the same.
        """
        self.centre = self.direction = None
        path = self._cache_dir / f"{STATIC_NAME}.centre.json"
        if not path.exists():
            mean, direction = reference_centre()
            with atomic_write(path, "w") as fh:
                fh.write(json.dumps({"reference": f"engine/encoders/data/{CENTRE_FILE}", "sha256": CENTRE_SHA256,
                                     "mean": mean.tolist(), "direction": direction.tolist()}))
        try:
            data = json.loads(path.read_text())
            centre = np.asarray(data["mean"], np.float32)
            direction = np.asarray(data["direction"], np.float32)
        except (OSError, ValueError, KeyError) as err:
            raise EmbeddingError(f"{path}: unreadable centre ({err}); delete it to copy the packaged one") from err
        if centre.shape != (STATIC_DIMS,) or direction.shape != (STATIC_DIMS,):
            raise EmbeddingError(f"{path}: centre of shape {centre.shape}, expected ({STATIC_DIMS},); "
                                 "delete it to copy the packaged one")
        self.centre, self.direction = centre, direction


def reference_centre(source: Traversable | Path | None = None, sha256: str | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The packaged reference centre: (mean, direction), each float32 (STATIC_DIMS,).

    `source` and `sha256` default to the packaged ``data/CENTRE_FILE`` and `CENTRE_SHA256`. The bytes
    read are the bytes checked and parsed, so a damaged or replaced file is refused, never used.
    Raises EmbeddingError (one line) when the file is missing, damaged or of the wrong shape.
    """
    source = source or files(__package__) / "data" / CENTRE_FILE
    sha256 = sha256 or CENTRE_SHA256
    try:
        raw = source.read_bytes()
    except OSError as err:
        raise EmbeddingError(f"static centre {source} unreadable ({err}); reinstall copyhound") from err
    actual = hashlib.sha256(raw).hexdigest()
    if actual != sha256:
        raise EmbeddingError(f"static centre {source} has sha256 {actual[:16]}..., expected {sha256[:16]}...: "
                             "the file is damaged or replaced; reinstall copyhound")
    centre = np.load(io.BytesIO(raw), allow_pickle=False)
    if centre.shape != (2, STATIC_DIMS) or centre.dtype != np.float32:
        raise EmbeddingError(f"static centre {source}: {centre.dtype} {centre.shape}, expected float32 "
                             f"(2, {STATIC_DIMS})")
    return centre[0], centre[1]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def load_or_distill(cache_dir: Path, source: Path, source_sha: str, verify_source) -> np.ndarray:
    """The cached table, checked against its sidecar; distilled (and cached atomically) when absent."""
    table_path = cache_dir / f"{STATIC_NAME}.npy"
    meta_path = cache_dir / f"{STATIC_NAME}.json"
    if check_cached(table_path, meta_path, source_sha, made="distilled", redo="re-distil") is not None:
        table = np.load(table_path)
        if table.ndim != 2 or table.shape[1] != STATIC_DIMS:
            raise EmbeddingError(f"{table_path}: table of shape {table.shape}, expected (vocab, {STATIC_DIMS})")
        return table.astype(np.float32, copy=False)
    verify_source(source / "model.safetensors")
    table = distill(source)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, table)

    write_cached(table_path, meta_path, write, {"name": STATIC_NAME, "dims": STATIC_DIMS, "sif": SIF_COEFFICIENT,
                                                "source_sha256": source_sha})
    return table
