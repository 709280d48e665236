"""fastembed: the embedding layer of neural networks, done right for the CPU.

Forward is a row gather ``Y = E[X]``; backward is a scatter-add ``dE[X[i]] += dY[i]``.
Both run as deterministic OpenMP kernels released from the GIL, for float32 and float64
tables and int32 and int64 ids.

The distribution is called ``fastembed-layer`` on PyPI (an unrelated package already uses the
name ``fastembed``); the import name is ``fastembed``.
"""
from ._openmp_helpers import get_num_threads, openmp_enabled, set_num_threads
from ._version import __version__
from .functional import SparseGrad, coalesce, gather, scatter_add
from .layers import Embedding

__all__ = [
    "Embedding",
    "SparseGrad",
    "coalesce",
    "gather",
    "get_num_threads",
    "openmp_enabled",
    "scatter_add",
    "set_num_threads",
    "__version__",
]
