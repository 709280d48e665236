"""Parameter: the one kind of trainable object that fastembed's optimizers update.

Examples
--------
>>> import numpy as np
>>> from fastembed.nn import Parameter
>>> Parameter(np.zeros((2, 3), np.float32), name="w")
Parameter('w', shape=(2, 3), dtype=float32)
"""
from __future__ import annotations

import threading

import numpy as np

from .._rows import SparseGrad
from .._validation import FLOAT_DTYPES

__all__ = ["Parameter"]


class Parameter:
    """A trainable 2-D array, its gradient, and how the optimizers should update it.

    Every trainable piece of fastembed holds its arrays in Parameters, and its
    ``parameters()`` yields them: :class:`~fastembed.nn.Embedding` and
    :class:`~fastembed.nn.EmbeddingBag` one row-sparse table (``sparse=True``),
    :class:`~fastembed.nn.Linear` a dense weight and bias, a :class:`~fastembed.nn.Module`
    those of its children. The optimizers of :mod:`fastembed.optim` take any iterable of
    Parameters and apply each one's :attr:`grad`, a :class:`~fastembed.SparseGrad`, to the rows
    it lists.

    A dense parameter's gradient lists every row (:meth:`accumulate` adds a dense array), so
    every row is "touched" at every step and the lazy optimizers perform the ordinary dense
    update (Adam's moments of a row with a zero gradient decay, as in ``torch.optim.Adam``). A
    sparse parameter's gradient (an embedding table's) lists only the rows a batch looked up,
    and the optimizers touch only those.

    Parameters
    ----------
    data : ndarray of float32 or float64, shape (R, C)
        The array, used by reference (never copied): it must be 2-D and C-contiguous.
    name : str, optional
        The parameter's own name (``"weight"``, ``"bias"``), for messages and ``repr``; a
        module's :meth:`~fastembed.nn.Module.named_parameters` gives the full dotted names.
    sparse : bool, default False
        True for embedding tables: the gradient is row-sparse and the lazy optimizers touch only
        its rows (documentation of the update's nature: the optimizers treat both kinds alike).
    requires_grad : bool, default True
        False freezes the parameter: layers compute no gradient for it, modules'
        ``parameters()`` leave it out, and the optimizers refuse it.

    Attributes
    ----------
    weight : ndarray, shape (R, C)
        The array (the name the optimizers read). ``data`` is the same array.
    grad : SparseGrad or None
        The accumulated gradient, or None after :meth:`zero_grad`.
    name, sparse, requires_grad
        As given (they may be changed later).

    Notes
    -----
    A Parameter carries a lock (:attr:`lock`) that serialises its gradient accumulation and
    the optimizers' in-place updates across Python threads; a copy or an unpickled Parameter
    gets a fresh one.

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
    >>> nn.Embedding(4, 2).parameter           # an embedding table: a sparse Parameter
    Parameter('weight', shape=(4, 2), dtype=float32, sparse=True)
    """

    def __init__(self, data, *, name=None, sparse=False, requires_grad=True):
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
        self.sparse = bool(sparse)
        self.requires_grad = bool(requires_grad)
        self._rows = np.arange(data.shape[0], dtype=np.int64)
        self._lock = threading.RLock()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)  # a lock cannot be copied or pickled: a copy gets its own
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("sparse", False)  # pickled before these existed
        self.__dict__.setdefault("requires_grad", True)
        self._lock = threading.RLock()

    @property
    def lock(self):
        """The re-entrant lock that guards :attr:`grad` and in-place updates of the array.

        Layers hold it while they accumulate a gradient; optimizers take their own
        :attr:`~fastembed.optim.Adam.lock` first, then the locks of the parameters they
        update (see :meth:`~fastembed.optim.Adam.fused_step`).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> p = nn.Parameter(np.zeros((2, 3)))
        >>> with p.lock:
        ...     p.grad = None
        """
        return self._lock

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

    @data.setter
    def data(self, value):
        self.weight = value

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
        extra = ", sparse=True" if self.sparse else ""
        if not self.requires_grad:
            extra += ", requires_grad=False"
        return f"Parameter({name}shape={self.shape}, dtype={self.dtype.name}{extra})"

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
        with self._lock:
            if self.grad is None:
                rows = self._rows
                if rows.size != self.weight.shape[0]:  # the array was replaced
                    rows = self._rows = np.arange(self.weight.shape[0], dtype=np.int64)
                self.grad = SparseGrad(rows, np.array(grad, order="C", copy=True))
            elif self.grad.rows.size != self.weight.shape[0]:  # a row-sparse gradient
                dense = self.grad.to_dense(self.weight.shape[0]) + grad
                self.grad = SparseGrad(np.arange(dense.shape[0], dtype=np.int64), dense)
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
        if self.grad.rows.size != self.weight.shape[0]:  # a row-sparse gradient
            return self.grad.to_dense(self.weight.shape[0])
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
        with self._lock:
            self.grad = None

    def _label(self):
        return f"parameter {self.name!r}" if self.name else "the parameter"
