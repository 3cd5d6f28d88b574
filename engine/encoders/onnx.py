"""The int8 ONNX tier: the packaged all-MiniLM-L6-v2 exported to ONNX, quantised to int8, run by onnxruntime.

It is the same transformer as `MiniLMEncoder`, with the same tokenizer (at most 256 word pieces),
mean pooling over the attention mask, L2 normalisation and long-prompt windows, so its vectors sit on
MiniLM's cosine scale (mean cosine ~0.99 to MiniLM's own; its thresholds are MiniLM's but for a scan cut
0.01 lower, see engine.config); int8 matrix products make it ~3.4x faster on a CPU (3,000 real prompts
on two cores: 177 prompts/s against MiniLM's 52 in bf16 and 30 in fp32, bench/results/onnx_tier.json).
Unlike the static tier it keeps attention, so it ranks close neighbours as MiniLM does.

The int8 model is built on first use from the packaged weights (their sha256 checked first), in three
steps that take ~11 s on two cores (bench/results/onnx_tier.json):

1. export to ONNX with the TorchScript exporter (`dynamo=False`) and eager attention: onnxruntime's
   transformer optimizer recognises that graph and fuses the embeddings, the 6 attention blocks and the
   layer norms; from the graph of the newer torch.export-based exporter it fused no attention block;
2. the optimizer's fusions (`onnxruntime.transformers.optimizer`, model type bert);
3. dynamic int8 quantisation (weights ahead of time, activations per call), **per output channel**: one
   scale per whole weight tensor bends some prompts' vectors far from MiniLM's (on 250 real prompts:
   mean cosine 0.957, min 0.850), one per channel keeps them close (mean 0.993, min 0.981).

The built model is cached in the workspace (``models/<name>.onnx``) beside a JSON sidecar holding its
sha256 and the sha256 of the weights it came from, both checked at load (`engine.encoders.cache`): the
cached file is what every vector of the workspace was made with, so a rebuild with another onnxruntime
cannot drift the index.

onnx and onnxruntime are the extra `copyhound[onnx]`; torch and transformers, already needed by
MiniLM, are imported only to build the model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.config import ONNX_NAME
from engine.encoders.cache import check_cached, write_cached
from engine.errors import EmbeddingError

log = logging.getLogger(__name__)

MAX_PIECES = 256  # as sentence-transformers reads all-MiniLM-L6-v2 (sentence_bert_config.json)
HIDDEN = 384
HEADS = 12
INSTALL_HINT = "pip install 'copyhound[onnx]' (or: pip install onnx onnxruntime)"


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise EmbeddingError(f"the onnx encoder needs onnx and onnxruntime: {INSTALL_HINT}") from err
    return onnxruntime


def available_cores() -> int:
    """Threads for onnxruntime's matrix products: the cores this process may use.

    Inside a Ray actor, Ray sets OMP_NUM_THREADS to the actor's CPUs; honouring it keeps several actors
    on one machine from each starting a thread per core.
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _QuietRoot(logging.Filter):
    """Drops what is logged on the root logger itself (see `_quiet_libraries`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _quiet_libraries():
    """Silence onnxruntime's optimizer and quantizer while they run.

    They log a line per fusion and per tensor at INFO (the optimizer on loggers named after its modules,
    the quantizer on the root logger itself, with a warning meant for static quantisation among them):
    ~100 lines of noise on a CLI's stderr. INFO and below are disabled for the few seconds of the build,
    and the root logger's own records dropped (named loggers, copyhound's included, keep their
    warnings: a root logger's filters do not apply to records propagated from them). The quantizer
    calls `logging.warning`, which configures a stderr handler on a root logger that has none (a
    library user's, a TUI's): a NullHandler stands there meanwhile.
    """
    root = logging.getLogger()
    quiet, null = _QuietRoot(), logging.NullHandler()
    logging.disable(logging.INFO)
    root.addFilter(quiet)
    root.addHandler(null)
    try:
        yield
    finally:
        root.removeHandler(null)
        root.removeFilter(quiet)
        logging.disable(logging.NOTSET)


def build_int8(source: Path, dest: Path) -> None:
    """Export the transformer in `source` to ONNX, fuse, quantise to int8 per channel, write to `dest`."""
    _onnxruntime()
    try:
        import onnx  # noqa: F401  (the optimizer and the quantizer read and write ONNX graphs with it)
    except ImportError as err:
        raise EmbeddingError(f"building the onnx encoder needs onnx: {INSTALL_HINT}") from err
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    started = time.monotonic()
    model = AutoModel.from_pretrained(str(source), local_files_only=True, attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    # Traced with a padded row, so the mask's path through the graph is the general one.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        fp32, fused = Path(tmp) / "fp32.onnx", Path(tmp) / "fused.onnx"
        with torch.inference_mode(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated (see the module docstring for why it is used) and
            # warns about traced shape checks of transformers' mask code, which hold for any batch.
            warnings.simplefilter("ignore")
            torch.onnx.export(LastHidden().eval(), (ids, mask, torch.zeros_like(ids)), str(fp32), dynamo=False,
                              input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes={n: {0: "batch", 1: "pieces"} for n in names + ["last_hidden_state"]})
        exported = time.monotonic()
        with _quiet_libraries():
            optimized = optimize_model(str(fp32), model_type="bert", num_heads=HEADS, hidden_size=HIDDEN)
            fusions = optimized.get_fused_operator_statistics()
            optimized.save_model_to_file(str(fused))
            # DefaultTensorType: shape inference cannot type the outputs of the fused (contrib) operators.
            quantize_dynamic(str(fused), str(dest), per_channel=True, weight_type=QuantType.QInt8,
                             extra_options={"DefaultTensorType": 1})  # onnx.TensorProto.FLOAT
        if fusions.get("Attention", 0) == 0:
            log.warning("onnx encoder: the optimizer fused no attention block (%s); the model will be slower",
                        fusions)
    log.info("built the int8 ONNX encoder in %.1f s (export %.1f s; fused %s attention blocks)",
             time.monotonic() - started, exported - started, fusions.get("Attention", 0))


def load_or_build(cache_dir: Path, source: Path, source_sha: str, verify_source) -> Path:
    """The cached int8 model, checked against its sidecar; built (and cached atomically) when absent."""
    path = cache_dir / f"{ONNX_NAME}.onnx"
    meta_path = cache_dir / f"{ONNX_NAME}.json"
    if check_cached(path, meta_path, source_sha, made="built", redo="rebuild") is None:
        verify_source(source / "model.safetensors")
        cache_dir.mkdir(parents=True, exist_ok=True)
        ort = _onnxruntime()
        write_cached(path, meta_path, lambda tmp: build_int8(source, tmp),
                     {"name": ONNX_NAME, "quantisation": "int8 dynamic, per channel", "max_pieces": MAX_PIECES,
                      "onnxruntime": ort.__version__, "source_sha256": source_sha})
    return path


class OnnxEncoder:
    """all-MiniLM-L6-v2 quantised to int8, run by onnxruntime on the CPU (see module docstring)."""

    name = ONNX_NAME
    dim = HIDDEN
    # Prompts per onnxruntime call: one. int8 activations are scaled per call, so in a batch a prompt's
    # vector moves with its batch-mates (cosine down to 0.984 to itself alone); one at a time it depends
    # on its text only, and it was also the fastest on 3,000 real prompts on two cores (batch 1 / 8 /
    # 32 / 64: 177 / 165 / 161 / 154 prompts/s, bench/results/onnx_tier.json): nothing is padded.
    batch_size = 1
    # Prompts per vector shard: ~12 s of work on two cores (a killed embed loses at most that), as the
    # engine's default 2,048 are ~20-40 s for MiniLM.
    shard_prompts = 2048

    def __init__(self, cache_dir: Path, threads: int | None = None) -> None:
        from engine.encoders.base import MODEL_SHA256, model_dir, verify_weights

        _onnxruntime()
        source = model_dir()
        self._cache_dir = Path(cache_dir)
        path = load_or_build(self._cache_dir, source, MODEL_SHA256, verify_weights)
        self._start(path.read_bytes(), threads, what=str(path))
        self._load_tokenizer(source)

    @classmethod
    def from_model_bytes(cls, model: bytes, threads: int | None = None) -> OnnxEncoder:
        """An encoder over a model already loaded and checked: a Ray actor gets the driver's."""
        from engine.encoders.base import model_dir

        self = cls.__new__(cls)
        self._cache_dir = None
        self._start(model, threads, what="the int8 model handed over")
        self._load_tokenizer(model_dir())
        return self

    def _start(self, model: bytes, threads: int | None, what: str) -> None:
        ort = _onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or available_cores()
        opts.inter_op_num_threads = 1  # one graph path at a time: the parallelism is inside the products
        try:
            self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's errors share no base class below Exception
            raise EmbeddingError(f"{what}: onnxruntime cannot load it ({str(err).splitlines()[0][:200]}); "
                                 "delete it and its .json sidecar to rebuild") from err
        self.model_bytes = model
        self.threads = opts.intra_op_num_threads
        self._feeds = {i.name for i in self.session.get_inputs()}

    def _load_tokenizer(self, source: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_PIECES)

    def cache_files(self) -> list[Path]:
        """The cached model and its sidecar (none for a model handed over in memory)."""
        folder = self._cache_dir
        return [folder / f"{ONNX_NAME}.onnx", folder / f"{ONNX_NAME}.json"] if folder else []

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids = np.zeros((len(rows), int(lengths[rows].max())), np.int64)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encodings[i].ids
            mask = (np.arange(ids.shape[1]) < lengths[rows][:, None]).astype(np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self._feeds})[0]
            # Mean over the real pieces only, as sentence-transformers pools.
            pooled = np.einsum("bpd,bp->bd", hidden, mask.astype(np.float32)) / lengths[rows][:, None]
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from engine.encoders.base import encode_windowed

        return encode_windowed(self._encode_batch, texts, self.dim)
