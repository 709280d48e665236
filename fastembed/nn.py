"""Small building blocks with hand-written backward passes, to compose models without autograd.

Every piece follows one pattern: ``forward(...)`` computes and remembers what the backward
pass needs; ``backward(grad_output)`` returns the gradient of the input and *adds* the
gradients of the piece's parameters into their ``.grad``; ``parameters()`` lists the
:class:`Parameter` objects to hand to an optimizer; ``zero_grad()`` clears their gradients.

- :class:`Parameter`: a dense 2-D trainable array that fastembed's sparse optimizers
  (:mod:`fastembed.optim`) update like an embedding table. Its gradient is a
  :class:`~fastembed.SparseGrad` that lists every row, so each step is the dense update.
- :class:`Linear`: ``y = x @ W.T + b``, PyTorch's layout and default initialisation.
- :class:`Pooling` / :func:`pool`: masked mean or sum over the time axis of a padded batch.
- :func:`softmax_cross_entropy` and :func:`sigmoid_binary_cross_entropy`: the losses, each
  returning ``(loss, gradient of the loss with respect to the logits)``, numerically stable.

Examples
--------
A linear classifier trained with Adam, by hand:

>>> import numpy as np
>>> from fastembed import nn, optim
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((64, 5)).astype(np.float32)
>>> labels = (x[:, 0] > 0).astype(np.int64)
>>> layer = nn.Linear(5, 2, seed=0)
>>> opt = optim.Adam(layer.parameters(), lr=0.05)
>>> for step in range(100):
...     loss, grad_logits = nn.softmax_cross_entropy(layer(x), labels)
...     _ = layer.backward(grad_logits)
...     opt.step(); opt.zero_grad()
>>> bool(loss < 0.2)
True
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import FLOAT_DTYPES, _format_position, check_size
from .functional import SparseGrad

__all__ = ["Parameter", "Linear", "Pooling", "pool", "pool_backward",
           "softmax_cross_entropy", "sigmoid_binary_cross_entropy"]

_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------

def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)  # type: ignore[arg-type]  # an Integral
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got "
                    f"{type(seed).__name__}")


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _float_array(x, name, dtype=None):
    """x as a float32/float64 ndarray (array-likes converted; ndarrays never cast silently).

    ``dtype`` given: an ndarray must already have it (TypeError otherwise); a list is
    converted to it. ``dtype`` None: float32 and float64 ndarrays pass, lists become float64.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x, dtype=dtype if dtype is not None else None)
        if dtype is None and x.dtype.kind in "biu":
            x = x.astype(np.float64)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {x.dtype}; convert it "
                        f"with {name}.astype(np.{np.dtype(dtype)})")
    return x


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ----------------------------------------------------------------------------------------
# Parameter
# ----------------------------------------------------------------------------------------

class Parameter:
    """A dense, trainable 2-D array that fastembed's optimizers can update.

    The optimizers of :mod:`fastembed.optim` take "anything with a 2-D ``.weight`` and a
    row-sparse ``.grad``". A Parameter is that, for a dense array: :meth:`accumulate` adds a
    dense gradient, and :attr:`grad` holds it as ``SparseGrad(arange(rows), values)``, every
    row listed. So every row is "touched" at every step and the lazy optimizers perform the
    ordinary dense update (Adam's moments of a row with a zero gradient decay, as in
    ``torch.optim.Adam``).

    Parameters
    ----------
    data : ndarray of float32 or float64, shape (R, C)
        The array, used by reference (never copied): it must be 2-D and C-contiguous.
    name : str, optional
        For messages and ``repr``.

    Attributes
    ----------
    weight : ndarray, shape (R, C)
        The array (the name the optimizers read). ``data`` is the same array.
    grad : SparseGrad or None
        The accumulated gradient, or None after :meth:`zero_grad`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn, optim
    >>> p = nn.Parameter(np.ones((2, 3)))
    >>> p.accumulate(np.full((2, 3), 0.5))
    >>> optim.SGD([p], lr=0.1).step()
    >>> p.data
    array([[0.95, 0.95, 0.95],
           [0.95, 0.95, 0.95]])
    """

    def __init__(self, data, *, name=None):
        if not isinstance(data, np.ndarray):
            raise TypeError(f"a Parameter wraps a numpy.ndarray, got {type(data).__name__}")
        if data.ndim != 2:
            raise ValueError(f"a Parameter must be 2-D (optimizers update rows), got shape "
                             f"{data.shape}")
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"a Parameter must have dtype float32 or float64, got {data.dtype}")
        if not data.flags.c_contiguous:
            raise ValueError("a Parameter must be C-contiguous: pass np.ascontiguousarray(data)")
        self.weight = data
        self.name = name
        self.grad = None
        self._rows = np.arange(data.shape[0], dtype=np.int64)

    @property
    def data(self):
        """The array itself (the same object as :attr:`weight`).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> a = np.zeros((2, 3))
        >>> nn.Parameter(a).data is a
        True
        """
        return self.weight

    @property
    def shape(self):
        """The shape (R, C) of the array.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> nn.Parameter(np.zeros((2, 3))).shape
        (2, 3)
        """
        return self.weight.shape

    @property
    def dtype(self):
        """The dtype of the array, float32 or float64.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> nn.Parameter(np.zeros((2, 3), np.float32)).dtype
        dtype('float32')
        """
        return self.weight.dtype

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.weight.dtype:
            return self.weight.astype(dtype)
        return self.weight.copy() if copy else self.weight

    def __repr__(self):
        name = f"{self.name!r}, " if self.name else ""
        return f"Parameter({name}shape={self.shape}, dtype={self.dtype.name})"

    def accumulate(self, grad):
        """Add a dense gradient of the parameter's shape and dtype into :attr:`grad`.

        Parameters
        ----------
        grad : array-like of shape (R, C) and the parameter's dtype
            Copied on the first call after :meth:`zero_grad`, added in place afterwards.

        Raises
        ------
        ValueError, TypeError
            ``grad`` of another shape or dtype (it is never cast).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> p = nn.Parameter(np.zeros((2, 3), np.float32))
        >>> p.accumulate(np.ones((2, 3), np.float32))
        >>> p.accumulate(np.ones((2, 3), np.float32))
        >>> p.grad.rows, p.grad.values[:, 0]        # every row is listed
        (array([0, 1]), array([2., 2.], dtype=float32))
        """
        grad = np.asarray(grad)
        if grad.shape != self.weight.shape:
            raise ValueError(f"the gradient of {self._label()} must have shape "
                             f"{self.weight.shape}, got {grad.shape}")
        if grad.dtype != self.weight.dtype:
            raise TypeError(f"the gradient of {self._label()} must have dtype "
                            f"{self.weight.dtype}, got {grad.dtype}")
        if self.grad is None:
            self.grad = SparseGrad(self._rows, np.array(grad, order="C", copy=True))
        else:
            values = self.grad.values
            values += grad

    def dense_grad(self):
        """The accumulated gradient as a dense array (zeros when there is none).

        Returns
        -------
        ndarray of shape (R, C)
            A copy.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> p = nn.Parameter(np.zeros((1, 2)))
        >>> p.dense_grad()
        array([[0., 0.]])
        >>> p.accumulate(np.array([[1.0, -1.0]]))
        >>> p.dense_grad()
        array([[ 1., -1.]])
        """
        if self.grad is None:
            return np.zeros_like(self.weight)
        return self.grad.values.copy()

    def zero_grad(self):
        """Forget the accumulated gradient: :attr:`grad` becomes None.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> p = nn.Parameter(np.zeros((1, 2)))
        >>> p.accumulate(np.ones((1, 2)))
        >>> p.zero_grad()
        >>> p.grad is None
        True
        """
        self.grad = None

    def _label(self):
        return f"parameter {self.name!r}" if self.name else "the parameter"


# ----------------------------------------------------------------------------------------
# Linear
# ----------------------------------------------------------------------------------------

class Linear:
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
    parameters' gradients.

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
        self.in_features = check_size(in_features, "in_features")
        self.out_features = check_size(out_features, "out_features")
        dtype = _float_dtype(dtype)
        rng = _rng(seed)
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

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> nn.Linear(3, 2, dtype=np.float64).dtype
        dtype('float64')
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
        x = _float_array(x, "x", self.dtype)
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
        g = _float_array(grad_output, "grad_output", self.dtype)
        if g.shape != expected:
            raise ValueError(f"grad_output must have the shape of the last output {expected}, "
                             f"got {g.shape}")
        g2 = g.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        self.weight.accumulate(np.ascontiguousarray(g2.T @ x2))
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0).reshape(self.out_features, 1))
        return (g2 @ self.weight.data).reshape(x.shape)

    def parameters(self):
        """``[weight, bias]`` (or ``[weight]``): the objects to give an optimizer.

        Returns
        -------
        list of Parameter

        Examples
        --------
        >>> from fastembed import nn, optim
        >>> layer = nn.Linear(3, 2, bias=False)
        >>> layer.parameters()
        [Parameter('weight', shape=(2, 3), dtype=float32)]
        >>> opt = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)
        """
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def zero_grad(self):
        """Forget the accumulated gradients of the parameters.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> layer = nn.Linear(3, 2, seed=0)
        >>> _ = layer(np.ones((1, 3), np.float32))
        >>> _ = layer.backward(np.ones((1, 2), np.float32))
        >>> layer.zero_grad()
        >>> layer.weight.grad is None and layer.bias.grad is None
        True
        """
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self):
        """``{"weight": W, "bias": b}`` as copies (``{"weight": W}`` without a bias).

        Returns
        -------
        dict of str to ndarray

        Examples
        --------
        >>> from fastembed import nn
        >>> state = nn.Linear(3, 2, init="zeros").state_dict()
        >>> {name: a.shape for name, a in state.items()}      # the bias is a column
        {'weight': (2, 3), 'bias': (2, 1)}
        """
        return {name: p.data.copy() for name, p in
                zip(("weight", "bias"), self.parameters())}

    def load_state_dict(self, state):
        """Copy arrays of :meth:`state_dict` into the parameters (checked first).

        Parameters
        ----------
        state : dict of str to array-like
            Exactly the keys of :meth:`state_dict`, with the same shapes and dtypes.

        Raises
        ------
        ValueError
            Other keys, shapes or dtypes; no parameter is changed.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> a, b = nn.Linear(3, 2, seed=0), nn.Linear(3, 2, seed=1)
        >>> b.load_state_dict(a.state_dict())
        >>> bool((a.weight.data == b.weight.data).all())
        True
        """
        params = dict(zip(("weight", "bias"), self.parameters()))
        if set(state) != set(params):
            raise ValueError(f"expected keys {sorted(params)}, got {sorted(state)}")
        for name, p in params.items():
            a = np.asarray(state[name])
            if a.shape != p.shape or a.dtype != p.dtype:
                raise ValueError(f"{name}: expected shape {p.shape} and dtype {p.dtype}, got "
                                 f"{a.shape} {a.dtype}")
        for name, p in params.items():
            np.copyto(p.data, state[name])


# ----------------------------------------------------------------------------------------
# Masked pooling
# ----------------------------------------------------------------------------------------

def _check_pool_args(x, mask, mode):
    if mode not in ("mean", "sum"):
        raise ValueError(f"mode must be 'mean' or 'sum', got {mode!r}")
    x = _float_array(x, "x")
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
    g = _float_array(grad_output, "grad_output")
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {mask.dtype}")
    if g.ndim != 2 or mask.ndim != 2 or g.shape[0] != mask.shape[0]:
        raise ValueError(f"grad_output must have shape (B, D) and mask (B, T), got "
                         f"{g.shape} and {mask.shape}")
    w = _pool_weights(mask, mode, g.dtype)
    return w[:, :, None] * g[:, None, :]


class Pooling:
    """Masked mean or sum pooling over a padded sequence, with its backward pass.

    ``forward(x (B, T, D), mask (B, T) bool) -> (B, D)``; ``backward(grad (B, D)) -> grad_x
    (B, T, D)``, zero at masked positions. A row whose mask is all False pools to zeros and
    gets a zero gradient. See :func:`pool`.

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
        g = _float_array(grad_output, "grad_output", dtype)
        if g.shape != (shape[0], shape[2]):
            raise ValueError(f"grad_output must have shape (B, D) = {(shape[0], shape[2])}, got "
                             f"{g.shape}")
        return pool_backward(g, mask, self.mode)

    def parameters(self):
        """``[]``: pooling has no parameters (the method keeps the pieces' protocol).

        Examples
        --------
        >>> from fastembed import nn
        >>> nn.Pooling().parameters()
        []
        """
        return []

    def zero_grad(self):
        """Do nothing: pooling has no gradient to clear (the pieces' protocol).

        Examples
        --------
        >>> from fastembed import nn
        >>> nn.Pooling().zero_grad()
        """


# ----------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------

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
        raise IndexError(f"labels{_format_position(pos, shape)} = {value} is out of range for "
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
    logits = _float_array(logits, "logits")
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
    x = _float_array(logits, "logits")
    t = np.asarray(targets)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"targets must be real numbers in [0, 1], got dtype {t.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"targets must have the shape of logits {x.shape}, got {t.shape}")
    t = t.astype(x.dtype, copy=False)
    bad = ~((t >= 0) & (t <= 1))  # also catches NaN
    if bad.any():
        pos = int(np.argmax(bad.reshape(-1)))
        raise ValueError(f"targets{_format_position(pos, x.shape)} = {t.reshape(-1)[pos]} is "
                         f"not in [0, 1]")
    e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
    losses = np.maximum(x, 0) - x * t + np.log1p(e)
    one = x.dtype.type(1)
    sig = np.where(x >= 0, one / (one + e), e / (one + e))
    grad = sig - t
    return _reduce(losses, grad, reduction)
