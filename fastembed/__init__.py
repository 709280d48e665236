"""fastembed: the embedding layer of neural networks, done right for the CPU.

Forward is a row gather ``Y = E[X]``; backward is a scatter-add ``dE[X[i]] += dY[i]``.
Both run as deterministic OpenMP kernels released from the GIL, for float32 and float64
tables and int32 and int64 ids.

The distribution is called ``fastembed-layer`` on PyPI (an unrelated package already uses the
name ``fastembed``); the import name is ``fastembed``.
"""
try:
    from ._openmp_helpers import get_num_threads, openmp_enabled, set_num_threads
except ImportError as exc:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "fastembed's compiled kernels are missing. If you are running from a source checkout, "
        "build them with `pip install -e .` (or run from another directory after "
        "`pip install .`, so that the installed package is imported, not the source tree)."
    ) from exc
from ._version import __version__
from .functional import SparseGrad, coalesce, embedding_bag, gather, scatter_add
from . import optim
from .layers import Embedding, EmbeddingBag
from . import datasets, io, nn, text, train, vectors, word2vec
from .classifier import BagClassifier
from .io import load_word2vec, save_word2vec
from .nn import Linear
from .text import Vocab, pad_sequences, tokenize
from .train import ArrayDataset, Trainer
from .vectors import Vectors
from .word2vec import SkipGram, train_word2vec

__all__ = [
    "ArrayDataset",
    "BagClassifier",
    "Embedding",
    "EmbeddingBag",
    "Linear",
    "SkipGram",
    "Trainer",
    "Vectors",
    "Vocab",
    "datasets",
    "io",
    "load_word2vec",
    "nn",
    "pad_sequences",
    "save_word2vec",
    "text",
    "tokenize",
    "train",
    "train_word2vec",
    "vectors",
    "word2vec",
    "SparseGrad",
    "coalesce",
    "embedding_bag",
    "optim",
    "gather",
    "get_num_threads",
    "openmp_enabled",
    "scatter_add",
    "set_num_threads",
    "__version__",
]
