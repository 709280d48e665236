"""The functional API, NumPy style: lookups, their backward passes and pooled lookups.

These validate their arguments completely, then call the compiled kernels in
``fastembed._ext.indexing`` and ``fastembed._ext.pooling``. Bad input raises before any output
byte is written. Every function is also exported by the package itself
(``fastembed.gather`` ...).

- :func:`gather`: the forward pass of a lookup, ``weight[ids]``;
- :func:`scatter_add`: the dense backward pass, ``np.add.at(out, ids, grad)``;
- :func:`coalesce`: the sparse backward pass, a :class:`SparseGrad` of the distinct rows;
- :func:`embedding_bag`: pooled lookups (sum, mean or max of each bag of rows).

Examples
--------
>>> import numpy as np
>>> from fastembed.functional import coalesce, gather, scatter_add
>>> E = np.arange(6, dtype=np.float32).reshape(3, 2)
>>> ids = np.array([2, 0, 2])
>>> y = gather(E, ids)                      # forward: E[ids]
>>> y
array([[4., 5.],
       [0., 1.],
       [4., 5.]], dtype=float32)
>>> g = coalesce(ids, np.ones_like(y))      # backward, row-sparse
>>> g.rows, g.values[:, 0]
(array([0, 2]), array([1., 2.], dtype=float32))
>>> scatter_add(np.zeros_like(E), ids, np.ones_like(y))[:, 0]   # backward, dense
array([1., 0., 2.], dtype=float32)
"""
from __future__ import annotations

import sys

import numpy as np

from ._bags import bag_forward, bag_layout, check_padding_idx, checked_bags
from ._ext import indexing
from ._ext.threads import PARALLEL_MIN_WORK, n_threads_for
from ._rows import (
    SparseGrad,
    coalesce_rows,
    gather_checked,
    gather_mode,
    gather_masked,
    partition_rows,
    prepare_out,
)
from ._validation import (
    as_ids,
    check_bounds_mode,
    check_grad,
    check_no_overlap,
    check_table,
    invalid_ids,
)

__all__ = ["SparseGrad", "gather", "scatter_add", "coalesce", "embedding_bag"]


def gather(weight, ids, *, out=None, n_threads=None, bounds_check="raise"):
    """Look up rows of a table: ``weight[ids]``, in parallel.

    Parameters
    ----------
    weight : ndarray of float32 or float64, shape (V, D)
        The table. Must be C-contiguous; it may be read-only or a ``np.memmap``. It is never
        copied.
    ids : array-like of int, any shape
        Row ids in ``[0, V)``. Negative ids are errors (they do not wrap around).
    out : ndarray, optional
        Preallocated output of shape ``ids.shape + (D,)``, the table's dtype, C-contiguous.
    n_threads : int, optional
        None: OpenMP's default (``OMP_NUM_THREADS``, threadpoolctl). Negative values count back
        from the maximum. Small inputs always run on one thread.
    bounds_check : {"raise", "warn", "zero"}
        What an id outside ``[0, V)`` does: raise IndexError (the default); or be treated as
        padding, giving a row of zeros, with a warning once per call site (``"warn"``) or
        silently (``"zero"``). Every mode scans the ids with the same parallel kernel, a
        small fraction of the lookup (see bench/README.md).

    Returns
    -------
    ndarray of shape ``ids.shape + (D,)``
        ``out`` if it was given.

    Raises
    ------
    IndexError
        An id is negative or ``>= V``; the message names the first one and its position.
    TypeError, ValueError
        Non-integer ids, a table of the wrong dtype or layout, a mismatched ``out``.

    Notes
    -----
    The first large lookups (4096 ids or more) of each size of table and output, and each
    thread count, are timed two ways and the faster is kept for the process: with and
    without prefetching rows ahead, and, for outputs of at least a quarter of the CPU's
    last-level cache, with ordinary or streaming stores, which write the output to memory
    past the caches. Each such trial costs a little; the results are bitwise the same
    whatever is chosen.

    Examples
    --------
    >>> import numpy as np, fastembed
    >>> E = np.arange(12, dtype=np.float32).reshape(4, 3)
    >>> fastembed.gather(E, [0, 1, 2, 0])
    array([[0., 1., 2.],
           [3., 4., 5.],
           [6., 7., 8.],
           [0., 1., 2.]], dtype=float32)
    """
    if bounds_check == "raise":
        # Plain arrays: checked and copied in C, in one parallel region, without Python
        # overhead (the small calls that lose most to it take tens of microseconds).
        result = indexing.gather_direct(weight, ids, out, n_threads, PARALLEL_MIN_WORK,
                                        gather_mode)
        if result is not None:
            return result
    check_bounds_mode(bounds_check)
    check_table(weight, "weight")
    ids_arr, flat = as_ids(ids)
    out = prepare_out(weight, ids_arr.shape, out)
    check_no_overlap(out, ids_arr, "out", "ids")
    n_threads = n_threads_for(n_threads, flat.size * weight.shape[1])
    bad = invalid_ids(flat, ids_arr.shape, weight.shape[0], n_threads, bounds_check,
                      ids=ids_arr)
    if bad is None:
        return gather_checked(weight, flat, out, n_threads)
    return gather_masked(weight, flat, bad, out, n_threads)


def scatter_add(out, ids, grad, *, n_threads=None, bounds_check="raise"):
    """Add rows into a table in place: ``out[ids[i]] += grad[i]``, duplicates summed.

    The result is bitwise identical to ``np.add.at(out, ids, grad)`` and does not depend on
    the thread count: contributions to a row are added in increasing position order.

    Parameters
    ----------
    out : ndarray of float32 or float64, shape (V, D)
        The table to update, C-contiguous and writeable.
    ids : array-like of int, any shape
        Row ids in ``[0, V)``.
    grad : array-like, shape ``ids.shape + (D,)``
        Rows to add, of ``out``'s dtype. A non-contiguous ``grad`` is copied first.
    n_threads : int, optional
        As in :func:`gather`: the most threads to use. A table of less than 32 MiB, or less
        than 2**21 elements of ``grad``, is added on one thread, which is faster there.
    bounds_check : {"raise", "warn", "zero"}
        As in :func:`gather`; under "warn" and "zero" the rows of bad ids add nothing.

    Returns
    -------
    ndarray
        ``out``.

    Examples
    --------
    >>> import numpy as np, fastembed
    >>> out = np.zeros((3, 2), np.float32)
    >>> fastembed.scatter_add(out, [0, 2, 0], np.ones((3, 2), np.float32))
    array([[2., 2.],
           [0., 0.],
           [1., 1.]], dtype=float32)
    """
    if bounds_check == "raise":
        # Calls that run on one thread anyway (see _scatter_threads), on plain arrays:
        # checked and added in C, without Python overhead.
        if indexing.scatter_add_small(out, ids, grad, n_threads,
                                      _scatter_serial_work(out, n_threads)) is not None:
            return out
    check_bounds_mode(bounds_check)
    check_table(out, "out", writeable=True)
    ids_arr, flat = as_ids(ids)
    num_embeddings, dim = out.shape
    grad2d = check_grad(grad, ids_arr.shape, dim, out.dtype)
    check_no_overlap(out, grad2d, "out", "grad")
    check_no_overlap(out, ids_arr, "out", "ids")
    n_threads = n_threads_for(n_threads, flat.size * dim)
    bad = invalid_ids(flat, ids_arr.shape, num_embeddings, n_threads, bounds_check,
                      ids=ids_arr)
    if bad is not None:  # padding: those positions add nothing
        flat, grad2d = flat[~bad], grad2d[~bad]
    if flat.size == 0 or dim == 0:
        return out
    n_threads = _scatter_threads(n_threads, out.nbytes, flat.size * dim)
    pos, starts, _ = partition_rows(flat, num_embeddings, n_threads)
    indexing.scatter_add_owned(out, flat, grad2d, pos, starts, n_threads)
    return out


# Row ownership pays only when the table's rows miss the caches and there is enough work: on a
# table that stays in cache, the single thread streams grad at full speed, while the owners'
# partition pass and their interleaved grad rows cost more than the second thread gains.
# Measured on 2 cores (bench/README.md, "Threads for scatter_add"): a 10**4 x 64
# table ran 0.5-0.75x as fast on 2 threads as on 1, at every N up to 2**19; 10**6 x 64 gained
# 1.3-1.5x from 2**15 ids x 64 up.
_SCATTER_PARALLEL_MIN_TABLE_BYTES = 32 << 20
_SCATTER_PARALLEL_MIN_WORK = 1 << 21


def _scatter_threads(n_threads, table_bytes, work):
    """The threads scatter_add uses: at most n_threads, 1 where more would be slower."""
    if table_bytes < _SCATTER_PARALLEL_MIN_TABLE_BYTES or work < _SCATTER_PARALLEL_MIN_WORK:
        return 1
    return n_threads


def _scatter_serial_work(out, n_threads):
    """The most work (ids x D) that scatter_add would run on one thread for this table: all
    of it for a table under _SCATTER_PARALLEL_MIN_TABLE_BYTES or n_threads=1, else less than
    _SCATTER_PARALLEL_MIN_WORK (what the C path for one thread may take)."""
    if n_threads == 1 or (isinstance(out, np.ndarray)
                          and out.nbytes < _SCATTER_PARALLEL_MIN_TABLE_BYTES):
        return sys.maxsize
    return _SCATTER_PARALLEL_MIN_WORK - 1


def coalesce(ids, grad, *, num_embeddings=None, n_threads=None, bounds_check="raise"):
    """Sum gradient rows that share an id: the sparse gradient of a lookup.

    Parameters
    ----------
    ids : array-like of int, any shape
        Row ids, non-negative (and below ``num_embeddings`` when it is given).
    grad : array-like of float32 or float64, shape ``ids.shape + (D,)``
        The gradient of the lookup's output.
    num_embeddings : int, optional
        The table's row count, to check the ids against.
    n_threads : int, optional
        As in :func:`gather`.
    bounds_check : {"raise", "warn", "zero"}
        As in :func:`gather`; under "warn" and "zero" the rows of bad ids are left out.
        Without ``num_embeddings`` only negative ids are bad.

    Returns
    -------
    SparseGrad
        ``rows`` (int64, ascending, unique) and ``values`` where ``values[k]`` is the sum of
        ``grad[i]`` over every ``i`` with ``ids[i] == rows[k]``, added in position order, so
        bitwise equal to ``np.add.at`` into zeros, for any thread count.

    Examples
    --------
    >>> import numpy as np, fastembed
    >>> g = fastembed.coalesce([[3, 1], [3, 3]], np.ones((2, 2, 1)))
    >>> g.rows, g.values.ravel()
    (array([1, 3]), array([1., 3.]))
    """
    check_bounds_mode(bounds_check)
    return coalesce_rows(ids, grad, num_embeddings, n_threads, bounds_check=bounds_check)[0]



def embedding_bag(weight, ids, offsets=None, *, mode="mean", per_sample_weights=None,
                  include_last_offset=False, padding_idx=None, out=None, n_threads=None,
                  bounds_check="raise"):
    """Pooled lookups: the sum, mean or max of the rows of each bag of ids.

    Parameters
    ----------
    weight : ndarray of float32 or float64, shape (V, D)
    ids : array-like of int
        2-D ``(B, L)``: each row is a bag. 1-D with ``offsets``: bag b is
        ``ids[offsets[b]:offsets[b + 1]]`` (the last bag runs to the end).
    offsets : array-like of int, optional
        Non-decreasing bag starts, the first 0. With ``include_last_offset=True`` it has
        ``B + 1`` entries and the last one must equal ``len(ids)`` (PyTorch's CSR layout).
    mode : {"sum", "mean", "max"}, default "mean"
    include_last_offset : bool, default False
        ``offsets`` ends with ``len(ids)``, as described above (only with 1-D ids).
    per_sample_weights : array-like, optional
        One weight per id, the table's dtype, with ``sum`` (Σ wᵢxᵢ) or ``mean``
        (Σ wᵢxᵢ / Σ wᵢ; PyTorch allows only ``sum``).
    padding_idx : int, optional
        Ids equal to it are left out of the pooling and of the mean's count (negative values
        count from the end).
    out : ndarray, optional
        Preallocated (B, D) output.
    n_threads : int, optional
        As in :func:`gather`; bags are pooled in parallel.
    bounds_check : {"raise", "warn", "zero"}
        As in :func:`gather`; under "warn" and "zero" a bad id is padding: left out of its
        bag's pooling and of the mean's count.

    Returns
    -------
    ndarray of shape (B, D)
        Empty bags (and bags of padding only, or whose weights sum to 0 in mean mode) give
        zeros.

    Raises
    ------
    IndexError
        An id outside the table (with ``bounds_check="raise"``); nothing is written.
    ValueError
        An unknown mode, malformed offsets, ids of the wrong rank, ``per_sample_weights``
        with ``max`` or of the wrong shape, a bad ``padding_idx`` or ``out``.
    TypeError
        Non-integer ids or offsets, weights of another dtype than the table.

    See Also
    --------
    fastembed.EmbeddingBag : the layer, with its backward pass.

    Examples
    --------
    >>> import numpy as np, fastembed
    >>> E = np.arange(8, dtype=np.float32).reshape(4, 2)
    >>> fastembed.embedding_bag(E, [0, 1, 3, 2], [0, 3], mode="sum")
    array([[ 8., 11.],
           [ 4.,  5.]], dtype=float32)
    >>> fastembed.embedding_bag(E, [[0, 2], [1, 1]], mode="max")
    array([[4., 5.],
           [2., 3.]], dtype=float32)
    """
    check_bounds_mode(bounds_check)
    check_table(weight, "weight")
    bags = bag_layout(ids, offsets, include_last_offset, per_sample_weights, mode,
                       weight.dtype)
    padding_idx = check_padding_idx(padding_idx, weight.shape[0])
    n_threads = n_threads_for(n_threads, bags.flat.size * weight.shape[1])
    bags = checked_bags(bags, weight.shape[0], n_threads, bounds_check)
    return bag_forward(weight, bags, mode, padding_idx, out, n_threads)[0]


