"""Linear: a dense affine layer, ``y = x @ W.T + b``, with its hand-written backward pass.

Examples
--------
>>> import numpy as np
>>> from fastembed.nn import Linear
>>> Linear(3, 2, seed=0)(np.ones((4, 3), np.float32)).shape
(4, 2)
"""
from __future__ import annotations

import math

import numpy as np

from .._validation import as_float_array, as_rng, check_float_dtype, check_size
from .module import Module
from .parameter import Parameter

__all__ = ["Linear"]


class Linear(Module):
    """A dense affine layer: ``y = x @ W.T + b``, PyTorch's layout.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : float32 or float64, default float32
    seed : None, int or numpy.random.Generator
        Seeds the initialiser.
    init : {"uniform", "zeros"} or callable, default "uniform"
        "uniform" is PyTorch's default (``kaiming_uniform_(a=sqrt(5))``): W and b drawn from
        U(-1/sqrt(in_features), 1/sqrt(in_features)). "zeros" zeroes both (fastText's output
        layer). A callable is called as ``init((out_features, in_features), rng)`` for W; b
        then starts at zero.

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
    bias : Parameter of shape (out_features, 1), or None
        Stored as a column so that row ``j`` of ``bias``, like row ``j`` of ``weight``,
        belongs to output unit ``j``: the row-wise optimizers (``RowWiseAdagrad``) then keep
        one accumulator per output unit for each. ``bias.data[:, 0]`` is the usual vector.

    Notes
    -----
    ``forward(x)`` accepts any shape ``(..., in_features)`` and remembers ``x`` *by
    reference* for :meth:`backward`: do not change ``x`` in place between the two calls.
    ``backward(grad_y)`` returns ``grad_x = grad_y @ W`` and adds
    ``dW = grad_yᵀ x`` and ``db = Σ grad_y`` (summed over all leading axes) into the
    parameters' gradients (not into a frozen one's, ``requires_grad=False``).

    A :class:`~fastembed.nn.Module`: ``parameters()`` yields ``weight`` and ``bias``,
    ``state_dict()`` has the keys ``"weight"`` and ``"bias"``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> layer = nn.Linear(3, 2, seed=0)
    >>> y = layer(np.ones((4, 3), np.float32))
    >>> y.shape
    (4, 2)
    >>> layer.backward(np.ones_like(y)).shape
    (4, 3)
    >>> layer.bias.dense_grad().ravel()
    array([4., 4.], dtype=float32)
    """

    def __init__(self, in_features, out_features, *, bias=True, dtype=np.float32, seed=None,
                 init="uniform"):
        super().__init__()
        self.in_features = check_size(in_features, "in_features")
        self.out_features = check_size(out_features, "out_features")
        dtype = check_float_dtype(dtype)
        rng = as_rng(seed)
        shape = (self.out_features, self.in_features)
        bias_shape = (self.out_features, 1)
        if init == "uniform":
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
            w = rng.uniform(-bound, bound, size=shape).astype(dtype)
            b = rng.uniform(-bound, bound, size=bias_shape).astype(dtype)
        elif init == "zeros":
            w = np.zeros(shape, dtype)
            b = np.zeros(bias_shape, dtype)
        elif callable(init):
            w = np.asarray(init(shape, rng))
            if w.shape != shape:
                raise ValueError(f"init returned shape {w.shape}, expected {shape}")
            w = np.array(w, dtype=dtype, order="C", copy=True)
            b = np.zeros(bias_shape, dtype)
        else:
            raise ValueError(f"init must be 'uniform', 'zeros' or a callable init(shape, rng), "
                             f"got {init!r}")
        self.weight = Parameter(np.ascontiguousarray(w), name="weight")
        self.bias = Parameter(np.ascontiguousarray(b), name="bias") if bias else None
        self._x = None

    @property
    def dtype(self):
        """The dtype of the parameters (and of the inputs :meth:`forward` accepts).

        An array input of another dtype raises TypeError: it is never cast.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> layer = nn.Linear(3, 2, dtype=np.float64)
        >>> layer.dtype, layer(np.ones((1, 3))).dtype         # float64 in, float64 out
        (dtype('float64'), dtype('float64'))
        """
        return self.weight.dtype

    def __repr__(self):
        return (f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"dtype={self.dtype.name})")

    def forward(self, x):
        """``x @ W.T + b`` for ``x`` of shape ``(..., in_features)``; remembers ``x``.

        ``layer(x)`` is the same call.

        Parameters
        ----------
        x : array-like, shape (..., in_features)
            An ndarray must have the layer's dtype (it is never cast); a list is converted.

        Returns
        -------
        ndarray, shape (..., out_features)

        Raises
        ------
        TypeError
            ``x`` of another dtype.
        ValueError
            A last axis other than ``in_features``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> layer = nn.Linear(2, 1, init="zeros")
        >>> layer.load_state_dict({"weight": np.array([[1.0, 2.0]], np.float32),
        ...                        "bias": np.array([[0.5]], np.float32)})
        >>> layer.forward([[1.0, 1.0], [0.0, 1.0]])
        array([[3.5],
               [2.5]], dtype=float32)
        """
        x = as_float_array(x, "x", self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., in_features={self.in_features}), got "
                             f"{x.shape}")
        x2 = x.reshape(-1, self.in_features)
        y = x2 @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data[:, 0]
        self._x = x
        return y.reshape(x.shape[:-1] + (self.out_features,))

    __call__ = forward

    def backward(self, grad_output):
        """Return ``grad_x`` and add ``dW``, ``db`` into the parameters' gradients.

        ``grad_x = grad_output @ W``; ``dW = grad_outputᵀ x`` and ``db = Σ grad_output``, summed
        over all leading axes, are added into ``weight.grad`` and ``bias.grad``.

        Parameters
        ----------
        grad_output : array-like, shape of the last output (..., out_features)
            The gradient of the loss with respect to the last :meth:`forward`'s output, in the
            layer's dtype.

        Returns
        -------
        ndarray, shape of the last input (..., in_features)

        Raises
        ------
        RuntimeError
            No forward before.
        ValueError, TypeError
            ``grad_output`` of another shape or dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> layer = nn.Linear(2, 1, init="zeros")
        >>> layer.weight.data[:] = [[1.0, 2.0]]
        >>> _ = layer(np.array([[1.0, 1.0], [0.0, 1.0]], np.float32))
        >>> layer.backward(np.ones((2, 1), np.float32))       # grad_x
        array([[1., 2.],
               [1., 2.]], dtype=float32)
        >>> layer.weight.dense_grad(), layer.bias.dense_grad()
        (array([[1., 2.]], dtype=float32), array([[2.]], dtype=float32))
        """
        if self._x is None:
            raise RuntimeError("backward() needs a forward() first")
        x = self._x
        expected = x.shape[:-1] + (self.out_features,)
        g = as_float_array(grad_output, "grad_output", self.dtype)
        if g.shape != expected:
            raise ValueError(f"grad_output must have the shape of the last output {expected}, "
                             f"got {g.shape}")
        g2 = g.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        if self.weight.requires_grad:
            self.weight.accumulate(np.ascontiguousarray(g2.T @ x2))
        if self.bias is not None and self.bias.requires_grad:
            self.bias.accumulate(g2.sum(axis=0).reshape(self.out_features, 1))
        return (g2 @ self.weight.data).reshape(x.shape)
