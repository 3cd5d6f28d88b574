"""Create, train and fill FAISS indexes of prompt embeddings.

All indexes use inner-product similarity: the embeddings are L2-normalised, so
the inner product is the cosine similarity. Vector ids are our own int64
prompt ids, never FAISS's implicit row numbers.

Shapes and dtypes: vectors are ``float32`` arrays of shape ``(n, d)``, ids are
``int64`` arrays of shape ``(n,)``.
"""

from __future__ import annotations

import logging
import math

import faiss
import numpy as np

from index.errors import IndexMismatchError

__all__ = [
    "DEFAULT_NPROBE",
    "EXACT_MAX",
    "MAX_NLIST",
    "add",
    "as_float32",
    "choose_factory",
    "ivf_of",
    "make_index",
    "set_search_params",
    "train",
]

log = logging.getLogger(__name__)

#: Below this many vectors an exact (flat) index is fast enough and has
#: perfect recall; above it we switch to IVF with 8-bit scalar quantisation.
EXACT_MAX = 200_000

#: Upper bound on the number of IVF lists: beyond this k-means training and
#: the coarse quantiser itself get expensive for little gain.
MAX_NLIST = 65_536

#: Lists probed per query on IVF indexes unless the caller says otherwise.
DEFAULT_NPROBE = 16

#: FAISS refuses to train k-means with fewer points than centroids; it warns
#: below 39 points per centroid, which is where centroids get noisy.
MIN_POINTS_PER_LIST = 39

# Rows converted and added per call, so that a float16 np.memmap is never
# materialised as one big float32 copy.
_ADD_CHUNK = 65_536


def _pow2_round(x: float) -> int:
    """Round ``x > 0`` to the nearest power of two (in log space)."""
    return 1 << max(0, round(math.log2(max(x, 1.0))))


def choose_factory(n: int, dim: int) -> str:
    """Pick a FAISS factory string for ``n`` vectors of dimension ``dim``.

    Below :data:`EXACT_MAX` vectors this is ``"IDMap2,Flat"`` (exact search;
    ``IDMap2`` because a bare Flat index cannot store our ids). Above it is
    ``"IVF{nlist},SQ8"`` with ``nlist`` about ``4 * sqrt(n)`` rounded to a
    power of two and capped at :data:`MAX_NLIST`; IVF indexes store ids
    natively, so no IDMap wrapper is needed.
    """
    if n < 0 or dim <= 0:
        raise ValueError(f"need n >= 0 and dim > 0, got n={n}, dim={dim}")
    if n < EXACT_MAX:
        return "IDMap2,Flat"
    nlist = min(MAX_NLIST, _pow2_round(4.0 * math.sqrt(n)))
    return f"IVF{nlist},SQ8"


def make_index(dim: int, factory: str) -> faiss.Index:
    """Create an empty inner-product index of dimension ``dim`` from ``factory``.

    A factory whose index cannot store ids (e.g. plain ``"Flat"``) is wrapped
    in ``IDMap2`` so that :func:`add` can always use our own ids. IVF indexes
    get ``nprobe = DEFAULT_NPROBE``.
    """
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if ivf_of(index) is None and not isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        # Flat/SQ/PQ/HNSW indexes number vectors 0..n-1 and reject
        # add_with_ids, so give them an id map (IDMap2 also supports
        # reconstruct-by-id, which the review UI wants).
        index = faiss.index_factory(dim, "IDMap2," + factory, faiss.METRIC_INNER_PRODUCT)
    set_search_params(index, DEFAULT_NPROBE)
    log.debug("created index %s (dim=%d)", factory, dim)
    return index


def ivf_of(index: faiss.Index) -> faiss.IndexIVF | None:
    """Return the IVF index inside ``index`` (through IDMap/PreTransform), or None."""
    return faiss.try_extract_index_ivf(index)


def ivf_centroids(index: faiss.Index) -> np.ndarray | None:
    """The trained coarse centroids (nlist, d) of an IVF index, else None (a flat index).

    The self-join can partition the vectors with them instead of running its own k-means: the index
    was trained on a sample of the same vectors, and at a million prompts that k-means costs ~50 s.
    """
    ivf = ivf_of(index)
    if ivf is None or not ivf.is_trained:
        return None
    return np.ascontiguousarray(ivf.quantizer.reconstruct_n(0, ivf.nlist), dtype=np.float32)


def training_size(index: faiss.Index, usual: int = 256 * 1024) -> int:
    """Vectors to train ``index`` on: ``usual``, or MIN_POINTS_PER_LIST per IVF list when that is more.

    faiss warns below 39 points per centroid; from 8,192 lists up (past ~4M prompts) the usual
    sample is too small.
    """
    ivf = ivf_of(index)
    return max(int(usual), MIN_POINTS_PER_LIST * int(ivf.nlist)) if ivf is not None else int(usual)


def set_search_params(index: faiss.Index, nprobe: int) -> None:
    """Set the number of IVF lists probed per query; no-op on non-IVF indexes.

    ``nprobe`` is clipped to the number of lists. Larger values raise recall
    and cost roughly linearly in search time.
    """
    if nprobe < 1:
        raise ValueError(f"nprobe must be >= 1, got {nprobe}")
    ivf = ivf_of(index)
    if ivf is not None:
        ivf.nprobe = min(int(nprobe), int(ivf.nlist))


def as_float32(vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 ``(n, d)`` array.

    Copies only when needed (float16 input or a non-contiguous view).
    """
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-d (n, d) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{what} must be floating point, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_dim(index: faiss.Index, vectors: np.ndarray, what: str = "vectors") -> None:
    if vectors.ndim != 2:
        raise ValueError(f"{what} must be a 2-d (n, d) array, got shape {vectors.shape}")
    if vectors.shape[1] != index.d:
        raise IndexMismatchError(f"{what} have dimension {vectors.shape[1]}, index expects {index.d}")


def train(index: faiss.Index, sample: np.ndarray) -> None:
    """Train ``index`` on ``sample`` (float32 ``(n, d)``) unless already trained.

    Raises ``ValueError`` when the sample has fewer rows than the index has
    IVF lists (FAISS would abort k-means); logs a warning when it has fewer
    than 39 rows per list, where centroids become unreliable.
    """
    if index.is_trained:
        return
    _check_dim(index, np.asarray(sample), "training sample")
    x = as_float32(sample, "training sample")
    ivf = ivf_of(index)
    if ivf is not None:
        nlist = int(ivf.nlist)
        if x.shape[0] < nlist:
            raise ValueError(
                f"training sample has {x.shape[0]} vectors, need at least nlist={nlist}"
                f" (ideally {MIN_POINTS_PER_LIST * nlist}+)"
            )
        if x.shape[0] < MIN_POINTS_PER_LIST * nlist:
            log.warning("training %d lists on only %d vectors; recall may suffer", nlist, x.shape[0])
    log.info("training index on %d vectors", x.shape[0])
    index.train(x)


def add(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> None:
    """Add ``vectors`` (float ``(n, d)``) under ``ids`` (int64 ``(n,)``) to ``index``.

    float16 input (or a ``np.memmap``) is converted to float32 chunk by chunk.
    Raises :class:`IndexMismatchError` on a wrong dimension and ``ValueError``
    on a length mismatch or an untrained index.
    """
    vectors = np.asarray(vectors) if not isinstance(vectors, np.ndarray) else vectors
    _check_dim(index, vectors)
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.shape[0] != vectors.shape[0]:
        raise ValueError(f"ids must have shape ({vectors.shape[0]},), got {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be integers, got {ids.dtype}")
    if not index.is_trained:
        raise ValueError("index is not trained; call train() first")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n = vectors.shape[0]
    for start in range(0, n, _ADD_CHUNK):
        stop = min(n, start + _ADD_CHUNK)
        index.add_with_ids(as_float32(vectors[start:stop]), ids[start:stop])
    log.debug("added %d vectors, index now holds %d", n, index.ntotal)
