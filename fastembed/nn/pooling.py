"""Masked pooling over the time axis of a padded batch: :func:`pool`, :class:`Pooling`.

Examples
--------
>>> import numpy as np
>>> from fastembed.nn import pool
>>> pool(np.ones((1, 3, 2)), np.array([[True, True, False]]), mode="sum")
array([[2., 2.]])
"""
from __future__ import annotations

import numpy as np

from .._validation import as_float_array
from .module import Module

__all__ = ["Pooling", "pool", "pool_backward"]


def _check_pool_args(x, mask, mode):
    if mode not in ("mean", "sum"):
        raise ValueError(f"mode must be 'mean' or 'sum', got {mode!r}")
    x = as_float_array(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, time, dim), got {x.shape}")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array (True = a real position), got dtype "
                        f"{mask.dtype}; convert it with mask.astype(bool)")
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask must have shape x.shape[:2] = {x.shape[:2]}, got {mask.shape}")
    return x, mask


def _pool_weights(mask, mode, dtype):
    """(B, T) weights: 1 per real position (sum) or 1/count (mean); all-masked rows: 0."""
    w = mask.astype(dtype)
    if mode == "mean":
        count = w.sum(axis=1, keepdims=True)
        np.divide(w, count, out=w, where=count > 0)  # all-masked rows stay zero
    return w


def pool(x, mask, mode="mean"):
    """Masked pooling over the time axis of a padded batch.

    Parameters
    ----------
    x : ndarray of float32 or float64, shape (B, T, D)
    mask : bool ndarray, shape (B, T)
        True at the real positions, False at padding.
    mode : {"mean", "sum"}

    Returns
    -------
    ndarray, shape (B, D)
        ``Σ_t mask[b, t] x[b, t]``, divided by ``Σ_t mask[b, t]`` for "mean". A row whose mask
        is all False gives zeros (not NaN), and its gradient is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> x = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
    >>> nn.pool(x, np.array([[True, True, False], [False, False, False]]))
    array([[1., 2.],
           [0., 0.]])
    """
    x, mask = _check_pool_args(x, mask, mode)
    w = _pool_weights(mask, mode, x.dtype)
    return np.matmul(w[:, None, :], x)[:, 0, :]


def pool_backward(grad_output, mask, mode="mean"):
    """The gradient of :func:`pool` with respect to ``x``: shape (B, T, D).

    Parameters
    ----------
    grad_output : ndarray of float32 or float64, shape (B, D)
        The gradient of the loss with respect to the pooled output.
    mask : bool ndarray, shape (B, T)
        The mask the forward pass used.
    mode : {"mean", "sum"}

    Returns
    -------
    ndarray, shape (B, T, D)
        ``grad_output[b]`` (divided by the count for "mean") at the real positions, zero at
        padding and in rows whose mask is all False.

    Raises
    ------
    ValueError, TypeError
        An unknown ``mode``, a mask that is not bool, or mismatched shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> nn.pool_backward(np.ones((1, 2)), np.array([[True, True, False]]))
    array([[[0.5, 0.5],
            [0.5, 0.5],
            [0. , 0. ]]])
    """
    if mode not in ("mean", "sum"):
        raise ValueError(f"mode must be 'mean' or 'sum', got {mode!r}")
    g = as_float_array(grad_output, "grad_output")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if g.ndim != 2 or mask.ndim != 2 or g.shape[0] != mask.shape[0]:
        raise ValueError(f"grad_output must have shape (B, D) and mask (B, T), got "
                         f"{g.shape} and {mask.shape}")
    w = _pool_weights(mask, mode, g.dtype)
    return w[:, :, None] * g[:, None, :]


class Pooling(Module):
    """Masked mean or sum pooling over a padded sequence, with its backward pass.

    ``forward(x (B, T, D), mask (B, T) bool) -> (B, D)``; ``backward(grad (B, D)) -> grad_x
    (B, T, D)``, zero at masked positions. A row whose mask is all False pools to zeros and
    gets a zero gradient. See :func:`pool`. A :class:`~fastembed.nn.Module` without
    parameters.

    Parameters
    ----------
    mode : {"mean", "sum"}, default "mean"

    Raises
    ------
    ValueError
        An unknown ``mode``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> p = nn.Pooling("sum")
    >>> x = np.ones((1, 3, 2))
    >>> p(x, np.array([[True, False, True]]))
    array([[2., 2.]])
    >>> p.backward(np.ones((1, 2)))[0, :, 0]
    array([1., 0., 1.])
    """

    def __init__(self, mode="mean"):
        super().__init__()
        if mode not in ("mean", "sum"):
            raise ValueError(f"mode must be 'mean' or 'sum', got {mode!r}")
        self.mode = mode
        self._last = None

    def __repr__(self):
        return f"Pooling({self.mode!r})"

    def forward(self, x, mask):
        """Pool ``x`` over its time axis; remembers the mask for :meth:`backward`.

        ``pooling(x, mask)`` is the same call.

        Parameters
        ----------
        x : ndarray of float32 or float64, shape (B, T, D)
        mask : bool ndarray, shape (B, T)
            True at the real positions, False at padding.

        Returns
        -------
        ndarray, shape (B, D)
            As :func:`pool`.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> x = np.arange(6, dtype=np.float64).reshape(1, 3, 2)
        >>> nn.Pooling("mean").forward(x, np.array([[True, True, False]]))
        array([[1., 2.]])
        """
        x, mask = _check_pool_args(x, mask, self.mode)
        self._last = (mask.copy(), x.shape, x.dtype)
        w = _pool_weights(mask, self.mode, x.dtype)
        return np.matmul(w[:, None, :], x)[:, 0, :]

    __call__ = forward

    def backward(self, grad_output):
        """The gradient with respect to the last forward's ``x``.

        Parameters
        ----------
        grad_output : ndarray, shape (B, D), the dtype of the last ``x``

        Returns
        -------
        ndarray, shape (B, T, D)
            Zero at masked positions (see :func:`pool_backward`).

        Raises
        ------
        RuntimeError
            No forward before.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> p = nn.Pooling("mean")
        >>> _ = p(np.ones((1, 2, 1)), np.array([[True, True]]))
        >>> p.backward(np.ones((1, 1)))
        array([[[0.5],
                [0.5]]])
        """
        if self._last is None:
            raise RuntimeError("backward() needs a forward() first")
        mask, shape, dtype = self._last
        g = as_float_array(grad_output, "grad_output", dtype)
        if g.shape != (shape[0], shape[2]):
            raise ValueError(f"grad_output must have shape (B, D) = {(shape[0], shape[2])}, got "
                             f"{g.shape}")
        return pool_backward(g, mask, self.mode)
