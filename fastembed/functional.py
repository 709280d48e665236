"""The functional API, NumPy style: lookups, their backward passes and pooled lookups.

These validate their arguments completely, then call the compiled kernels in
``fastembed._kernels`` and ``fastembed._bag_kernels``. Bad input raises before any output
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

from typing import NamedTuple

import numpy as np

from . import _bag_kernels, _kernels
from ._memory import aligned_empty, aligned_zeros
from ._openmp_helpers import PARALLEL_MIN_WORK, _n_threads_for
from ._validation import (as_ids, check_bounds_mode, check_grad, check_ids_in_range,
                          check_no_overlap, check_out, check_size, check_table, invalid_ids)

__all__ = ["SparseGrad", "gather", "scatter_add", "coalesce", "embedding_bag"]

class SparseGrad(NamedTuple):
    """A coalesced row-sparse gradient of an embedding table.

    A named tuple ``(rows, values)``, so ``rows, values = grad`` works. It is what
    :func:`coalesce` and the layers' ``backward`` return and what the optimizers of
    :mod:`fastembed.optim` read from a layer's ``grad``.

    Parameters
    ----------
    rows, values : ndarray
        The two fields described below, in this order.

    Attributes
    ----------
    rows : ndarray of int64, shape (U,)
        The distinct rows that received gradient, ascending.
    values : ndarray, shape (U, D)
        ``values[k]`` is the summed gradient of row ``rows[k]``.

    Examples
    --------
    >>> import numpy as np, fastembed
    >>> g = fastembed.coalesce([2, 0, 2], np.ones((3, 2), np.float32))
    >>> g.rows
    array([0, 2])
    >>> g.values
    array([[1., 1.],
           [2., 2.]], dtype=float32)
    >>> g.to_dense(4)
    array([[1., 1.],
           [0., 0.],
           [2., 2.],
           [0., 0.]], dtype=float32)
    """

    rows: np.ndarray
    values: np.ndarray

    def to_dense(self, num_embeddings):
        """Return the gradient as a dense (num_embeddings, D) array.

        Parameters
        ----------
        num_embeddings : int
            The number of rows V of the table the gradient belongs to.

        Returns
        -------
        ndarray of shape (num_embeddings, D), the dtype of ``values``
            Zeros except at ``rows``, which hold ``values``.

        Raises
        ------
        IndexError
            A row is ``>= num_embeddings``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.functional import SparseGrad
        >>> g = SparseGrad(np.array([1]), np.array([[0.5, -0.5]]))
        >>> g.to_dense(3)
        array([[ 0. ,  0. ],
               [ 0.5, -0.5],
               [ 0. ,  0. ]])
        """
        num_embeddings = int(num_embeddings)
        if self.rows.size and self.rows[-1] >= num_embeddings:
            raise IndexError(f"row {int(self.rows[-1])} is out of range for "
                             f"num_embeddings={num_embeddings}")
        dense = aligned_zeros((num_embeddings, self.values.shape[1]), self.values.dtype)
        dense[self.rows] = self.values
        return dense


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
        # Small calls on plain arrays: checked and copied in C, without Python overhead.
        result = _kernels.gather_small(weight, ids, out, n_threads, PARALLEL_MIN_WORK)
        if result is not None:
            return result
    check_bounds_mode(bounds_check)
    check_table(weight, "weight")
    ids_arr, flat = as_ids(ids)
    out = prepare_out(weight, ids_arr.shape, out)
    check_no_overlap(out, ids_arr, "out", "ids")
    n_threads = _n_threads_for(n_threads, flat.size * weight.shape[1])
    bad = invalid_ids(flat, ids_arr.shape, weight.shape[0], n_threads, bounds_check)
    if bad is None:
        return gather_checked(weight, flat, out, n_threads)
    return gather_masked(weight, flat, bad, out, n_threads)


def gather_masked(weight, flat, bad, out, n_threads):
    """A lookup whose ids at ``bad`` positions are padding: their rows come out zero."""
    gather_checked(weight, np.where(bad, 0, flat), out, n_threads)
    if weight.shape[1]:
        out.reshape(flat.size, weight.shape[1])[bad] = 0
    return out


def prepare_out(weight, ids_shape, out):
    """Allocate the output of a lookup, or check the one the caller passed."""
    shape = tuple(ids_shape) + (weight.shape[1],)
    if out is None:
        return aligned_empty(shape, weight.dtype)
    check_out(out, shape, weight.dtype)
    check_no_overlap(out, weight, "out", "weight")
    return out


def gather_checked(weight, flat, out, n_threads):
    """The lookup itself, once the ids, ``out`` and ``n_threads`` have been checked."""
    if flat.size and weight.shape[1]:
        _kernels.gather(weight, flat, out.reshape(flat.size, weight.shape[1]), n_threads)
    return out


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
        # Small calls on plain arrays: checked and added in C, without Python overhead.
        if _kernels.scatter_add_small(out, ids, grad, n_threads,
                                      PARALLEL_MIN_WORK) is not None:
            return out
    check_bounds_mode(bounds_check)
    check_table(out, "out", writeable=True)
    ids_arr, flat = as_ids(ids)
    num_embeddings, dim = out.shape
    grad2d = check_grad(grad, ids_arr.shape, dim, out.dtype)
    check_no_overlap(out, grad2d, "out", "grad")
    check_no_overlap(out, ids_arr, "out", "ids")
    n_threads = _n_threads_for(n_threads, flat.size * dim)
    bad = invalid_ids(flat, ids_arr.shape, num_embeddings, n_threads, bounds_check)
    if bad is not None:  # padding: those positions add nothing
        flat, grad2d = flat[~bad], grad2d[~bad]
    if flat.size == 0 or dim == 0:
        return out
    n_threads = _scatter_threads(n_threads, out.nbytes, flat.size * dim)
    pos, starts, _ = _partition(flat, num_embeddings, n_threads)
    _kernels.scatter_add_owned(out, flat, grad2d, pos, starts, n_threads)
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


# Sample about 1 id in _BALANCE_STRIDE, but at least _BALANCE_SAMPLE_MIN and at most
# _BALANCE_SAMPLE ids, to cut the rows into ranges of about equal work, one per thread. (A
# fixed 4096-id sample cost 110 us, more than the whole 1-thread scatter-add of 8192 ids.)
_BALANCE_SAMPLE = 4096
_BALANCE_SAMPLE_MIN = 256
_BALANCE_STRIDE = 32
# Estimated cost of adding into a row that misses the caches, relative to one that hits
# (a row seen more than once in the sample is taken to be hot). Measured here: with Zipf ids a
# count-balanced split left the thread owning the cold tail with most of the work.
_COLD_ROW_COST = 8.0


def _owner_bounds(flat, num_embeddings, n_owners):
    """Row ranges [b_t, b_t+1) for n_owners threads, each with about the same work.

    The cut points are weighted quantiles of a strided sample of the ids: an id whose row
    occurs again in the sample is hot (cheap, cached), one seen once is cold (a cache miss,
    ``_COLD_ROW_COST`` times dearer). Uniform ids therefore split evenly by count, while
    Zipf-skewed ids give the thread with the hot rows more positions. Results never depend
    on the cut points, only speed does.
    """
    bounds = np.empty(n_owners + 1, dtype=np.int64)
    bounds[0], bounds[-1] = 0, num_embeddings
    if n_owners > 1 and flat.size == 0:
        bounds[1:-1] = num_embeddings  # nothing to share out: owner 0 gets every row
    elif n_owners > 1:
        n_sample = min(_BALANCE_SAMPLE, max(_BALANCE_SAMPLE_MIN, flat.size // _BALANCE_STRIDE))
        step = max(1, flat.size // n_sample)
        sample = np.sort(flat[::step])
        repeated = np.zeros(sample.size, dtype=bool)
        same = sample[1:] == sample[:-1]
        repeated[1:] |= same
        repeated[:-1] |= same
        cost = np.cumsum(np.where(repeated, 1.0, 1.0 + _COLD_ROW_COST))
        cuts = np.searchsorted(cost, cost[-1] * np.arange(1, n_owners) / n_owners)
        bounds[1:-1] = np.maximum.accumulate(sample[np.minimum(cuts, sample.size - 1)])
    return bounds


def _partition(flat, num_embeddings, n_threads):
    """(positions grouped by owning thread or None, their starts, the owners' row bounds)."""
    bounds = _owner_bounds(flat, num_embeddings, n_threads)
    if n_threads == 1:
        return None, np.array([0, flat.size], dtype=np.int64), bounds
    pos, starts = _kernels.partition_by_owner(flat, bounds, n_threads)
    return pos, starts, bounds


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
    return _coalesce(ids, grad, num_embeddings, n_threads, bounds_check=bounds_check)[0]


def _coalesce(ids, grad, num_embeddings, n_threads, *, dim=None, dtype=None,
              bounds_check="raise", bad=None):
    """coalesce, also returning the per-row counts (for scale_grad_by_freq).

    ``bad``: a mask of positions already known to be padding (a layer's forward found them).
    """
    ids_arr, flat = as_ids(ids)
    grad2d = check_grad(grad, ids_arr.shape, dim, dtype)
    n_threads = _n_threads_for(n_threads, flat.size * max(grad2d.shape[1], 1))
    if num_embeddings is None:
        limit = 2**63  # negatives only
        n_rows = None
    else:
        num_embeddings = check_size(num_embeddings, "num_embeddings")
        limit = n_rows = num_embeddings
        if num_embeddings >= 2**62:  # only a bound (no table is that big): the rows present
            n_rows = None            # decide the size of the work
    if bad is None:
        if bounds_check == "raise":
            check_ids_in_range(flat, ids_arr.shape, num_embeddings, n_threads)
        else:
            bad = invalid_ids(flat, ids_arr.shape, limit, n_threads, bounds_check)
    if bad is not None:
        flat, grad2d = flat[~bad], grad2d[~bad]
    if n_rows is None:
        n_rows = int(flat.max()) + 1 if flat.size else 0
    return coalesce_checked(flat, grad2d, n_rows, n_threads)


def coalesce_checked(flat, grad2d, n_rows, n_threads, src_row=None, scale=None):
    """Sum contributions by row, once every argument has been checked.

    Position i contributes ``scale[i] * grad2d[src_row[i]]`` to row ``flat[i]`` (``src_row``
    None: ``grad2d[i]``; ``scale`` None: no factor). Returns ``(SparseGrad, counts)``; each
    row's sum starts from +0.0 and adds its contributions in increasing position order.
    """
    dim = grad2d.shape[1]
    if n_rows <= _DENSE_MAP_RATIO * flat.size + _DENSE_MAP_MIN:
        # A (V,) row -> slot map costs O(V): cheap next to the O(N) work here.
        pos, starts, bounds = _partition(flat, n_rows, n_threads)
        rows, values, counts = _kernels.coalesce_owned(flat, grad2d, pos, starts, bounds,
                                                       src_row, scale, n_threads)
        return SparseGrad(rows, values), counts
    # Few ids in a huge id space: sort them instead (O(N) memory).
    perm, rows, starts = _kernels.group_by_row(
        flat.astype(np.int64, copy=False), max(n_rows - 1, 0), n_threads)
    values = np.empty((rows.size, dim), dtype=grad2d.dtype)
    _kernels.segment_sum(grad2d, perm, starts, values, src_row, scale, n_threads)
    return SparseGrad(rows, values), np.diff(starts)


# coalesce uses a dense row map when V <= _DENSE_MAP_RATIO * N + _DENSE_MAP_MIN, else a sort.
_DENSE_MAP_RATIO = 8
_DENSE_MAP_MIN = 1 << 16


# ---------------------------------------------------------------------------------------
# Pooled lookups (EmbeddingBag)
# ---------------------------------------------------------------------------------------

class _Bags(NamedTuple):
    """Checked bag layout: flat ids, offsets (B + 1, int64), flat per-sample weights."""

    shape: tuple
    flat: np.ndarray
    offsets: np.ndarray
    weights: object  # ndarray (N,) or None


def _bag_layout(ids, offsets, include_last_offset, per_sample_weights, mode, dtype):
    """Check the bag arguments and return a _Bags; raise before anything is written."""
    if mode not in _bag_kernels.MODES:
        raise ValueError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")
    ids_arr, flat = as_ids(ids)
    n = flat.size
    if offsets is None:
        if ids_arr.ndim != 2:
            raise ValueError(f"ids must be 2-D (bags, ids per bag) when offsets is not given, "
                             f"got shape {ids_arr.shape}; pass 1-D ids with offsets")
        if include_last_offset:
            raise ValueError("include_last_offset applies only to 1-D ids with offsets")
        n_bags, length = ids_arr.shape
        offs = np.arange(n_bags + 1, dtype=np.int64) * length
    else:
        if ids_arr.ndim != 1:
            raise ValueError(f"with offsets, ids must be 1-D, got shape {ids_arr.shape}")
        off_arr, off = as_ids(offsets, "offsets")
        if off_arr.ndim != 1:
            raise ValueError(f"offsets must be 1-D, got shape {off_arr.shape}")
        off = off.astype(np.int64)
        if include_last_offset:
            if off.size == 0:
                raise ValueError("offsets must not be empty with include_last_offset=True")
            if off[-1] != n:
                raise ValueError(f"with include_last_offset=True the last offset must equal "
                                 f"len(ids) = {n}, got {int(off[-1])}")
            offs = off
        else:
            offs = np.append(off, np.int64(n))
        if offs.size > 1 and offs[0] != 0:
            raise ValueError(f"offsets[0] must be 0, got {int(offs[0])}")
        if offs.size == 1 and n:
            raise ValueError(f"offsets is empty, so there are no bags, but {n} ids were given")
        steps = np.diff(offs)
        if (steps < 0).any():
            k = int(np.argmax(steps < 0))
            if k + 1 < off.size:
                raise ValueError(f"offsets must be non-decreasing: offsets[{k}] = "
                                 f"{int(offs[k])} > offsets[{k + 1}] = {int(offs[k + 1])}")
            raise ValueError(f"offsets[{k}] = {int(offs[k])} is beyond len(ids) = {n}")
    weights = None
    if per_sample_weights is not None:
        if mode == "max":
            raise ValueError("per_sample_weights works with mode 'sum' and 'mean', not 'max'")
        w = np.asarray(per_sample_weights)
        if w.dtype != dtype:
            raise TypeError(f"per_sample_weights must have the table's dtype {np.dtype(dtype)}"
                            f", got {w.dtype}")
        if w.shape != ids_arr.shape:
            raise ValueError(f"per_sample_weights must have the shape of ids {ids_arr.shape}, "
                             f"got {w.shape}")
        weights = np.ascontiguousarray(w.reshape(-1))
    return _Bags(ids_arr.shape, flat, offs, weights)


def _bag_forward(weight, bags, mode, padding_idx, out, n_threads):
    """Run the pooling kernel; returns (out, denom, argmax or None)."""
    n_bags = bags.offsets.size - 1
    out = _prepare_bag_out(weight, n_bags, out, bags)
    denom = np.empty(n_bags, dtype=weight.dtype)
    argmax = (np.empty((n_bags, weight.shape[1]), dtype=np.int64) if mode == "max"
              else None)
    _bag_kernels.bag_forward(weight, bags.flat, bags.offsets, bags.weights,
                             _bag_kernels.MODES[mode],
                             -1 if padding_idx is None else padding_idx,
                             out, denom, argmax, n_threads)
    return out, denom, argmax


def _prepare_bag_out(weight, n_bags, out, bags=None):
    if out is None:
        return aligned_empty((n_bags, weight.shape[1]), weight.dtype)
    check_out(out, (n_bags, weight.shape[1]), weight.dtype)
    check_no_overlap(out, weight, "out", "weight")
    if bags is not None:
        check_no_overlap(out, bags.flat, "out", "ids")
        check_no_overlap(out, bags.offsets, "out", "offsets")
        if bags.weights is not None:
            check_no_overlap(out, bags.weights, "out", "per_sample_weights")
    return out


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
    bags = _bag_layout(ids, offsets, include_last_offset, per_sample_weights, mode,
                       weight.dtype)
    padding_idx = _check_padding_idx(padding_idx, weight.shape[0])
    n_threads = _n_threads_for(n_threads, bags.flat.size * weight.shape[1])
    bags = _checked_bags(bags, weight.shape[0], n_threads, bounds_check)
    return _bag_forward(weight, bags, mode, padding_idx, out, n_threads)[0]


def _checked_bags(bags, num_embeddings, n_threads, bounds_check):
    """The bags with their ids checked; ids outside the table dropped (padding) if asked."""
    bad = invalid_ids(bags.flat, bags.shape, num_embeddings, n_threads, bounds_check)
    if bad is None:
        return bags
    keep = ~bad
    dropped_before = np.concatenate(([0], np.cumsum(bad, dtype=np.int64)))
    offsets = bags.offsets - dropped_before[bags.offsets]
    flat = np.ascontiguousarray(bags.flat[keep])
    weights = None if bags.weights is None else np.ascontiguousarray(bags.weights[keep])
    return _Bags((flat.size,), flat, offsets, weights)


def _check_padding_idx(padding_idx, num_embeddings):
    """None, or padding_idx as a row in [0, V) (negative values count from the end)."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not hasattr(padding_idx, "__index__"):
        raise TypeError(f"padding_idx must be an int, got {type(padding_idx).__name__}")
    padding_idx = int(padding_idx.__index__())
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"padding_idx={padding_idx} must lie in "
                         f"[{-num_embeddings}, {num_embeddings})")
    return padding_idx % num_embeddings


def _bag_backward(bags, mode, padding_idx, denom, argmax, grad_output, num_embeddings,
                  n_threads):
    """The table's gradient for a pooled lookup: (SparseGrad, per-row counts or None)."""
    dtype = grad_output.dtype
    n_bags, dim = grad_output.shape
    if mode == "max":
        valid = argmax >= 0
        rows = np.unique(argmax[valid])
        slot = np.searchsorted(rows, np.where(valid, argmax, 0))
        values = np.zeros((rows.size, dim), dtype=dtype)
        _bag_kernels.bag_max_backward(argmax, grad_output, slot, values, n_threads)
        return SparseGrad(rows, values), None
    flat, bag_of, scale = _bag_contributions(bags, mode, padding_idx, denom, dtype)
    grad, counts = coalesce_checked(flat, grad_output, num_embeddings, n_threads, bag_of, scale)
    if _dropped_live_ids(bags, mode, padding_idx, denom):
        # Ids of mean bags whose weights sum to 0 contribute nothing, but they still occur in
        # the batch: scale_grad_by_freq counts every non-padding occurrence.
        counts = _occurrences(grad.rows, bags.flat, padding_idx)
    return grad, counts


def _dropped_live_ids(bags, mode, padding_idx, denom):
    """True when _bag_contributions leaves out ids for a reason other than padding."""
    if mode != "mean" or (denom != 0).all():
        return False
    dead = np.repeat(denom == 0, np.diff(bags.offsets))
    return bool((bags.flat[dead] != (-1 if padding_idx is None else padding_idx)).any())


def _occurrences(rows, flat, padding_idx):
    """How often each of ``rows`` occurs in ``flat`` (padding left out)."""
    ids = flat if padding_idx is None else flat[flat != padding_idx]
    uniq, counts = np.unique(ids, return_counts=True)
    return counts[np.searchsorted(uniq, rows)]


def _bag_contributions(bags, mode, padding_idx, denom, dtype):
    """For sum/mean bags: (ids, bag of each id, factor or None) of the gradient's positions.

    Position i of bag b contributes ``scale[i] * grad_output[b]`` to row ``ids[i]``: the
    scale is wᵢ (or 1) for ``sum`` and wᵢ / Σ w (or 1 / count) for ``mean``. Padding ids and
    positions of mean bags with a zero denominator contribute nothing and are left out.
    """
    n_bags = bags.offsets.size - 1
    sizes = np.diff(bags.offsets)
    bag_of = np.repeat(np.arange(n_bags, dtype=np.int64), sizes)
    keep = None
    if padding_idx is not None:
        keep = bags.flat != padding_idx
    if mode == "mean":
        live = (denom != 0)[bag_of]
        keep = live if keep is None else keep & live
        # d(sum_i w_i x_i / W) / dx_i = w_i / W (w_i = 1 without weights)
        numer = np.ones(bags.flat.size, dtype) if bags.weights is None else bags.weights
        safe = np.where(denom != 0, denom, dtype.type(1))
        scale = (numer / safe[bag_of]).astype(dtype, copy=False)
    else:
        scale = bags.weights  # None: every contribution is grad_output[bag] itself
    flat = bags.flat
    if keep is not None and not keep.all():
        flat, bag_of = flat[keep], bag_of[keep]
        scale = None if scale is None else np.ascontiguousarray(scale[keep])
    return flat, bag_of, scale
