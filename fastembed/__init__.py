"""fastembed: the embedding layer of neural networks, done right for the CPU.

Forward is a row gather ``Y = E[X]``; backward is a scatter-add ``dE[X[i]] += dY[i]``.
Both run as deterministic OpenMP kernels released from the GIL, for float32 and float64
tables and int32 and int64 ids.

The distribution is called ``fastembed-layer`` on PyPI (an unrelated package already uses the
name ``fastembed``); the import name is ``fastembed``.

The package exports the functional kernels (:func:`gather`, :func:`scatter_add`,
:func:`coalesce`, :func:`embedding_bag`, :class:`SparseGrad`), the layers
(:class:`Embedding`, :class:`EmbeddingBag`), the most used names of its submodules, the
submodules themselves (``optim``, ``nn``, ``text``, ``train``, ``word2vec``, ``vectors``,
``io``, ``datasets``), and the thread controls:

- ``get_num_threads()``: the threads a kernel uses with ``n_threads=None`` (OpenMP's
  ``omp_get_max_threads()``: it follows ``OMP_NUM_THREADS``, ``set_num_threads`` and
  ``threadpoolctl``, and without the first two is at most a container's CPU limit; always 1
  without OpenMP);
- ``set_num_threads(n)``: set that default for the calling thread (a negative ``n`` counts
  back from the number of processors, -1 is all of them; 0 raises ValueError);
- ``openmp_enabled()``: whether the kernels were compiled with OpenMP.

Examples
--------
>>> import numpy as np
>>> import fastembed
>>> fastembed.__version__
'...'
>>> layer = fastembed.Embedding(4, 3, seed=0)
>>> layer(np.array([0, 1, 2, 0])).shape
(4, 3)
>>> isinstance(fastembed.openmp_enabled(), bool), fastembed.get_num_threads() >= 1
(True, True)
>>> before = fastembed.get_num_threads()
>>> fastembed.set_num_threads(1)                 # n_threads=None now means one thread
>>> fastembed.get_num_threads()
1
>>> fastembed.set_num_threads(before)            # restore the default
"""
try:
    from ._ext.threads import get_num_threads, openmp_enabled, set_num_threads
except ImportError as _import_error:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "fastembed's compiled kernels are missing. If you are running from a source checkout, "
        "build them with `pip install -e .` (or run from another directory after "
        "`pip install .`, so that the installed package is imported, not the source tree)."
    ) from _import_error
from ._version import __version__
from ._validation import BoundsCheckWarning
from .functional import SparseGrad, coalesce, embedding_bag, gather, scatter_add
from . import datasets, io, models, nn, optim, text, train, vectors
from .io import load_word2vec, save_word2vec
from .models import classifier, word2vec  # also fastembed.word2vec, fastembed.classifier
from .models import CBOW, BagClassifier, SkipGram, train_word2vec
from .nn import Embedding, EmbeddingBag, Linear
from .text import Vocab, pad_sequences, tokenize
from .train import ArrayDataset, Trainer
from .vectors import Vectors

__all__ = [
    "ArrayDataset",
    "BagClassifier",
    "BoundsCheckWarning",
    "classifier",
    "CBOW",
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
    "models",
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
