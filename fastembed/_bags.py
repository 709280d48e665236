"""Pooled lookups (bags) shared by :func:`fastembed.embedding_bag` and :class:`fastembed.EmbeddingBag`.

A bag layout (:class:`Bags`) is checked once (:func:`bag_layout`, :func:`checked_bags`; its
offsets by :func:`bag_bounds`, which also checks the classifier's documents); the forward
pass pools it with the compiled kernel (:func:`bag_forward`); the backward pass turns the
output gradient into per-position contributions (:func:`bag_contributions`) and sums them by
row (:func:`bag_backward`). The kernels are in ``fastembed/_ext/pooling.pyx`` and
``bagrows.h``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._ext import pooling
from ._memory import aligned_empty
from ._rows import SparseGrad, coalesce_checked
from ._validation import as_ids, check_int, check_no_overlap, check_out, invalid_ids


class Bags(NamedTuple):
    """Checked bag layout: flat ids, offsets (B + 1, int64), flat per-sample weights."""

    shape: tuple
    flat: np.ndarray
    offsets: np.ndarray
    weights: object  # ndarray (N,) or None
    ids: object = None  # the ids as given (as_ids' first result): messages name their values


def bag_layout(ids, offsets, include_last_offset, per_sample_weights, mode, dtype):
    """Check the bag arguments and return a Bags; raise before anything is written."""
    if mode not in pooling.MODES:
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
        offs = bag_bounds(offsets, n, include_last_offset)
    weights = None
    if per_sample_weights is not None:
        w = check_bag_weights(np.asarray(per_sample_weights), mode, dtype, ids_arr.shape)
        weights = np.ascontiguousarray(w.reshape(-1))
    return Bags(ids_arr.shape, flat, offs, weights, ids_arr)


def bag_bounds(offsets, n, include_last_offset=False):
    """Where each bag starts in ``n`` ids, then ``n``: int64 (B + 1,), from offsets as given.

    ``offsets`` holds each bag's start (first 0, non-decreasing, at most ``n``), and with
    ``include_last_offset`` the end of the last bag too (then it must end with ``n``).
    Raises ValueError naming the first bad offset.
    """
    off_arr, off = as_ids(offsets, "offsets", strict=True)
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
    return offs


def check_bag_weights(weights, mode, dtype, ids_shape):
    """Check per_sample_weights (a NumPy or Dask array) against the mode, table and ids."""
    if mode == "max":
        raise ValueError("per_sample_weights works with mode 'sum' and 'mean', not 'max'")
    if weights.dtype != dtype:
        raise TypeError(f"per_sample_weights must have the table's dtype {np.dtype(dtype)}, "
                        f"got {weights.dtype}")
    if weights.shape != ids_shape:
        raise ValueError(f"per_sample_weights must have the shape of ids {ids_shape}, "
                         f"got {weights.shape}")
    return weights


def bag_forward(weight, bags, mode, padding_idx, out, n_threads):
    """Run the pooling kernel; returns (out, denom, argmax or None)."""
    n_bags = bags.offsets.size - 1
    out = prepare_bag_out(weight, n_bags, out, bags)
    denom = np.empty(n_bags, dtype=weight.dtype)
    argmax = (np.empty((n_bags, weight.shape[1]), dtype=np.int64) if mode == "max"
              else None)
    pooling.bag_forward(weight, bags.flat, bags.offsets, bags.weights,
                             pooling.MODES[mode],
                             -1 if padding_idx is None else padding_idx,
                             out, denom, argmax, n_threads)
    return out, denom, argmax


def prepare_bag_out(weight, n_bags, out, bags=None):
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


def checked_bags(bags, num_embeddings, n_threads, bounds_check):
    """The bags with their ids checked; ids outside the table dropped (padding) if asked."""
    bad = invalid_ids(bags.flat, bags.shape, num_embeddings, n_threads, bounds_check,
                      ids=bags.ids)
    if bad is None:
        return bags
    keep = ~bad
    dropped_before = np.concatenate(([0], np.cumsum(bad, dtype=np.int64)))
    offsets = bags.offsets - dropped_before[bags.offsets]
    flat = np.ascontiguousarray(bags.flat[keep])
    weights = None if bags.weights is None else np.ascontiguousarray(bags.weights[keep])
    return Bags((flat.size,), flat, offsets, weights)


def check_padding_idx(padding_idx, num_embeddings):
    """None, or padding_idx as a row in [0, V) (negative values count from the end)."""
    padding_idx = check_int(padding_idx, "padding_idx", min=-num_embeddings,
                            max=num_embeddings - 1, allow_none=True)
    return None if padding_idx is None else padding_idx % num_embeddings


def bag_backward(bags, mode, padding_idx, denom, argmax, grad_output, num_embeddings,
                  n_threads):
    """The table's gradient for a pooled lookup: (SparseGrad, per-row counts or None)."""
    dtype = grad_output.dtype
    n_bags, dim = grad_output.shape
    if mode == "max":
        valid = argmax >= 0
        rows = np.unique(argmax[valid])
        slot = np.searchsorted(rows, np.where(valid, argmax, 0))
        values = np.zeros((rows.size, dim), dtype=dtype)
        pooling.bag_max_backward(argmax, grad_output, slot, values, n_threads)
        return SparseGrad(rows, values), None
    flat, bag_of, scale = bag_contributions(bags, mode, padding_idx, denom, dtype)
    grad, counts = coalesce_checked(flat, grad_output, num_embeddings, n_threads, bag_of, scale)
    if dropped_live_ids(bags, mode, padding_idx, denom):
        # Ids of mean bags whose weights sum to 0 contribute nothing, but they still occur in
        # the batch: scale_grad_by_freq counts every non-padding occurrence.
        counts = _occurrences(grad.rows, bags.flat, padding_idx)
    return grad, counts


def dropped_live_ids(bags, mode, padding_idx, denom):
    """True when bag_contributions leaves out ids for a reason other than padding."""
    if mode != "mean" or (denom != 0).all():
        return False
    dead = np.repeat(denom == 0, np.diff(bags.offsets))
    return bool((bags.flat[dead] != (-1 if padding_idx is None else padding_idx)).any())


def _occurrences(rows, flat, padding_idx):
    """How often each of ``rows`` occurs in ``flat`` (padding left out)."""
    ids = flat if padding_idx is None else flat[flat != padding_idx]
    uniq, counts = np.unique(ids, return_counts=True)
    return counts[np.searchsorted(uniq, rows)]


def bag_contributions(bags, mode, padding_idx, denom, dtype):
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
