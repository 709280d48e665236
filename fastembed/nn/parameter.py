"""Parameter: a dense 2-D trainable array that the sparse optimizers update like a table.

Examples
--------
>>> import numpy as np
>>> from fastembed.nn import Parameter
>>> Parameter(np.zeros((2, 3), np.float32), name="w")
Parameter('w', shape=(2, 3), dtype=float32)
"""
from __future__ import annotations

import numpy as np

from .._rows import SparseGrad
from .._validation import FLOAT_DTYPES

__all__ = ["Parameter"]


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
