"""Losses that return ``(loss, gradient of the loss with respect to the logits)``.

Examples
--------
>>> import numpy as np
>>> from fastembed.nn import softmax_cross_entropy
>>> loss, grad = softmax_cross_entropy(np.zeros((1, 2)), np.array([0]))
>>> round(float(loss), 4), grad
(0.6931, array([[-0.5,  0.5]]))
"""
from __future__ import annotations

import numpy as np

from .._validation import as_float_array, format_position

__all__ = ["softmax_cross_entropy", "sigmoid_binary_cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _labels(labels, shape, num_classes):
    """Integer labels of the given shape, each in [0, num_classes); IndexError otherwise."""
    arr = np.asarray(labels)
    if arr.size == 0 and arr.dtype == np.float64 and not hasattr(labels, "dtype"):
        arr = arr.astype(np.int64)  # an empty list
    if arr.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"labels must have shape logits.shape[:-1] = {shape}, got {arr.shape}")
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        pos = int(np.argmax(bad.reshape(-1)))
        value = int(arr.reshape(-1)[pos])
        raise IndexError(f"labels{format_position(pos, shape)} = {value} is out of range for "
                         f"{num_classes} classes; labels must lie in [0, {num_classes})")
    return arr.astype(np.intp, copy=False)


def _reduce(losses, grad, reduction):
    if reduction == "none":
        return losses, grad
    if reduction == "sum":
        return float(losses.sum(dtype=np.float64)), grad
    n = losses.size
    if n == 0:
        return float("nan"), grad
    grad *= grad.dtype.type(1.0 / n)
    return float(losses.sum(dtype=np.float64) / n), grad


def softmax_cross_entropy(logits, labels, *, reduction="mean"):
    """Softmax cross-entropy and its gradient with respect to the logits.

    ``loss_i = logsumexp(logits_i) - logits_i[labels_i]``, computed as
    ``log Σ exp(z - max z) + max z`` so that no exponential overflows (logits of ±1e4 give
    finite results).

    Parameters
    ----------
    logits : ndarray of float32 or float64, shape (..., C)
    labels : array-like of int, shape logits.shape[:-1]
        Class indices in ``[0, C)``; an index out of range raises IndexError naming the value
        and its position.
    reduction : {"mean", "sum", "none"}
        "mean" averages over all examples (NaN for an empty batch, as PyTorch), "sum" adds
        them, "none" returns the per-example losses.

    Returns
    -------
    loss : float, or ndarray of shape logits.shape[:-1] for "none"
        Per-example losses are in the logits' dtype; a reduced loss is a Python float
        (accumulated in float64).
    grad : ndarray of the logits' shape and dtype
        ``softmax(logits) - onehot(labels)``, divided by the number of examples for "mean".
        For "none" it is the gradient of ``loss.sum()``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> loss, grad = nn.softmax_cross_entropy(np.array([[0.0, 0.0]]), [1])
    >>> round(loss, 6), grad
    (0.693147, array([[ 0.5, -0.5]]))
    """
    _check_reduction(reduction)
    logits = as_float_array(logits, "logits")
    if logits.ndim == 0:
        raise ValueError("logits must have shape (..., num_classes), got a scalar")
    num_classes = logits.shape[-1]
    if num_classes == 0:
        raise ValueError("logits must have at least one class (last axis of size >= 1)")
    labels = _labels(labels, logits.shape[:-1], num_classes)
    z = logits.reshape(-1, num_classes)
    lab = labels.reshape(-1)
    m = z.max(axis=1, keepdims=True)
    shifted = z - m
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    log_s = np.log(s)
    rows = np.arange(z.shape[0])
    losses = (log_s[:, 0] - shifted[rows, lab]).reshape(labels.shape)
    grad = e / s
    grad[rows, lab] -= 1
    return _reduce(losses, grad.reshape(logits.shape), reduction)


def sigmoid_binary_cross_entropy(logits, targets, *, reduction="mean"):
    """Binary cross-entropy of ``sigmoid(logits)`` against ``targets``, and its gradient.

    ``loss = max(x, 0) - x t + log1p(exp(-|x|))``, exact and overflow-free for any finite x
    (PyTorch's ``binary_cross_entropy_with_logits``); ``grad = sigmoid(x) - t``, with the
    sigmoid computed from ``exp(-|x|)`` so that it never overflows either.

    Parameters
    ----------
    logits : ndarray of float32 or float64, any shape
    targets : array-like of real numbers in [0, 1], the shape of ``logits``
        Soft targets are allowed. Converted to the logits' dtype.
    reduction : {"mean", "sum", "none"}
        "mean" averages over *all elements* (as PyTorch), "sum" adds them, "none" returns the
        elementwise losses.

    Returns
    -------
    loss : float, or ndarray of the logits' shape for "none"
    grad : ndarray of the logits' shape and dtype
        Divided by the number of elements for "mean"; the gradient of ``loss.sum()`` for
        "none".

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> loss, grad = nn.sigmoid_binary_cross_entropy(np.array([0.0, 1e4]), [1, 1],
    ...                                              reduction="none")
    >>> loss.round(6), grad
    (array([0.693147, 0.      ]), array([-0.5,  0. ]))
    """
    _check_reduction(reduction)
    x = as_float_array(logits, "logits")
    t = np.asarray(targets)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"targets must be real numbers in [0, 1], got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"targets must have the shape of logits {x.shape}, got {t.shape}")
    t = t.astype(x.dtype, copy=False)
    bad = ~((t >= 0) & (t <= 1))  # also catches NaN
    if bad.any():
        pos = int(np.argmax(bad.reshape(-1)))
        raise ValueError(f"targets{format_position(pos, x.shape)} = {t.reshape(-1)[pos]} is "
                         f"not in [0, 1]")
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    losses = np.maximum(x, 0) - x * t + np.log1p(e)
    one = x.dtype.type(1)
    sig = np.where(x >= 0, one / (one + e), e / (one + e))
    grad = sig - t
    return _reduce(losses, grad, reduction)
