"""FAISS index store and near-duplicate search for copyhound.

Depends only on numpy, faiss and the standard library. Embeddings are
L2-normalised float32 ``(n, d)`` arrays; similarity is the inner product
(= cosine); ids are int64 prompt ids.

- :mod:`index.build`: choose a factory, create, train and fill indexes.
- :mod:`index.io`: atomic save/load with a JSON :class:`Manifest`.
- :mod:`index.search`: batched k-NN and threshold search.
- :mod:`index.selfjoin`: checkpointable all-pairs near-copy join (the driver), over
  :mod:`index.tiles` (similarity tiles, the cap per owner, the exact join, edge blocks),
  :mod:`index.plan` (the IVF join's partition) and :mod:`index.ivfjoin` (the IVF join's blocks).
- :mod:`index.deltajoin`: the join of new vectors against all (an incremental scan's join).
- :mod:`index.settings`: :class:`JoinSettings`, the IVF join's settings as one value.
"""

from index.build import (
    DEFAULT_NPROBE,
    EXACT_MAX,
    add,
    choose_factory,
    ivf_centroids,
    make_index,
    set_search_params,
    train,
    training_size,
)
from index.deltajoin import delta_join
from index.errors import IndexCorruptError, IndexMismatchError, IndexStoreError
from index.io import Manifest, load, save
from index.plan import IvfPlan, default_nlist, plan_ivf
from index.search import RangeResult, knn, range_search
from index.selfjoin import local_map, self_join
from index.settings import DEFAULT_JOIN, JoinSettings
from index.tiles import EdgeBlock, brute_force_pairs

__all__ = [
    "DEFAULT_JOIN",
    "DEFAULT_NPROBE",
    "EXACT_MAX",
    "EdgeBlock",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexStoreError",
    "IvfPlan",
    "JoinSettings",
    "Manifest",
    "RangeResult",
    "add",
    "brute_force_pairs",
    "choose_factory",
    "default_nlist",
    "delta_join",
    "ivf_centroids",
    "knn",
    "load",
    "make_index",
    "plan_ivf",
    "range_search",
    "save",
    "self_join",
    "local_map",
    "set_search_params",
    "train",
    "training_size",
]
