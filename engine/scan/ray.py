"""Embedding and the self-join on a Ray cluster, for when one machine is not enough (`--ray ADDRESS`).

Two parts of a scan grow with the traffic and split cleanly across machines:

* **embedding**: each page of pending prompts becomes a Ray Data dataset mapped by a pool of encoder
  actors (`map_batches` with a class, so each actor loads its model once per page; pages are large
  under Ray so that load is amortised). The driver still writes and commits every shard itself, so an
  embed on the cluster is as resumable as a local one, and its vectors are the same model's.
* **the self-join**: its blocks (rows of the exact join, runs of IVF lists) depend only on the shared
  vectors and their block number (`index.selfjoin`), so the vectors (and the IVF plan) are put in the
  object store once and the blocks are computed as parallel tasks, handed back in block order: the
  driver commits them exactly as the local path does, with the same resume points.

Everything else (DuckDB grouping, families, templates, rings, scores) stays on the driver: it works
on edges and ids, not on vectors, and DuckDB is a single-writer store. The same results as the local
path are therefore a matter of construction, and `tests/engine/test_cluster.py` checks it.

The workers need the same Python environment as the driver (copyhound and its model package
installed), as Ray requires for any job; the static fast tier's table and the int8 ONNX model travel
with the actors, so a worker never builds its own (which could differ in the last bits on another CPU).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

from engine.encoders.base import Encoder
from engine.errors import ClusterError

log = logging.getLogger(__name__)

# Prompts per shard under Ray: one Ray Data job per shard, so each job has work for every actor.
RAY_SHARD_SIZE = 32_768
# Rows per map_batches call inside a job.
RAY_BATCH = 1024


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ClusterError("--ray needs Ray: pip install 'copyhound[ray]'") from err
    return ray


def connect(address: str | None) -> None:
    """Join the cluster at `address` ("auto": the one this machine belongs to; "local": start one
    here), unless this process is already connected (a test or a notebook that called ray.init)."""
    ray = _ray()
    if ray.is_initialized():
        return
    try:
        if address in (None, "local"):
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ClusterError(f"cannot join the Ray cluster at {address!r}: {err}") from err
    log.info("ray: connected, %s CPUs in the cluster", ray.cluster_resources().get("CPU"))


def _encoder_spec(encoder: Encoder) -> tuple[str, object]:
    """What an actor needs to rebuild `encoder`: the static table or int8 model itself, or MiniLM's device."""
    table = getattr(encoder, "table", None)
    if table is not None:
        return ("static", (np.asarray(table), encoder.centre, encoder.direction))
    model = getattr(encoder, "model_bytes", None)
    if model is not None:
        # The driver's checked model travels, as the static table does: ~23 MB, and no rebuild per actor.
        return ("onnx", model)
    device = getattr(encoder, "device", "cpu")
    return ("minilm", device)


class _EncodeActor:
    """One encoder per actor, built once; maps batches of {"i", "text"} to {"i", "vec"}."""

    def __init__(self, spec: tuple[str, object]) -> None:
        kind, payload = spec
        if kind == "static":
            from engine.encoders.static import StaticEncoder

            self.encoder = StaticEncoder.from_table(*payload)
        elif kind == "onnx":
            from engine.encoders.onnx import OnnxEncoder

            self.encoder = OnnxEncoder.from_model_bytes(payload)
        else:
            from engine.encoders.minilm import MiniLMEncoder

            self.encoder = MiniLMEncoder(device=str(payload))

    def __call__(self, batch: dict) -> dict:
        return {"i": batch["i"], "vec": self.encoder.encode([str(t) for t in batch["text"]])}


class RayEncoder:
    """The `Encoder` protocol, answered by Ray Data batch inference over a pool of actors."""

    def __init__(self, encoder: Encoder, *, actors: int | None = None, batch_size: int = RAY_BATCH) -> None:
        ray = _ray()
        self.name = encoder.name
        self.dim = encoder.dim
        self._spec = _encoder_spec(encoder)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.actors = actors or max(1, cpus)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        ray = _ray()
        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
        mapped = ds.map_batches(_EncodeActor, fn_constructor_kwargs={"spec": self._spec},
                                batch_size=self.batch_size, batch_format="numpy",
                                concurrency=min(self.actors, max(1, -(-len(texts) // self.batch_size))),
                                num_cpus=1)
        out = np.zeros((len(texts), self.dim), np.float32)
        for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            out[np.asarray(batch["i"], np.int64)] = np.asarray(batch["vec"], np.float32)
        return out


def _run_block(func, shared, blk: int):
    return func(shared, blk)


def parallel_map(func, shared: tuple, blocks: range) -> Iterator:
    """`index.selfjoin` mapper: blocks as Ray tasks over shared vectors, yielded in block order.

    At most two tasks per CPU are in flight, so a killed driver loses little work and the edges of
    finished blocks never pile up in the object store.
    """
    ray = _ray()
    ref = ray.put(shared)
    task = ray.remote(num_cpus=1)(_run_block)
    window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    pending: deque = deque()
    it = iter(blocks)
    for blk in it:
        pending.append(task.remote(func, ref, blk))
        if len(pending) >= window:
            break
    while pending:
        block = ray.get(pending.popleft())
        nxt = next(it, None)
        if nxt is not None:
            pending.append(task.remote(func, ref, nxt))
        yield block
