"""Sparse optimizers: they update only the rows a batch touched.

Every optimizer takes layers (``Embedding``, ``EmbeddingBag``, or anything with ``weight`` and
a row-sparse ``grad``), and ``step()`` applies each layer's accumulated :class:`SparseGrad`.
The hyper-parameters go into one C struct, filled before the nogil region; each touched row is
updated by one thread, so results do not depend on the thread count.

Lazy semantics, shared by all of them: a row that no id touched in a step is not updated at
all, and neither is its optimizer state. This is PyTorch's ``SparseAdam`` and sparse
``Adagrad`` behaviour, and what FBGEMM does; it differs from a dense optimizer, under which
momentum or weight decay would keep moving rows whose gradient is zero.

- :class:`SGD`: ``w -= lr * g``; with ``momentum`` the buffer of a touched row becomes
  ``momentum * buf + g`` and ``w -= lr * buf``. An untouched row's buffer is not decayed (lazy
  momentum), unlike dense ``torch.optim.SGD``.
- :class:`Adagrad`: ``sum += g²``; ``w -= lr * g / (sqrt(sum) + eps)`` (PyTorch's sparse path).
- :class:`RowWiseAdagrad`: one accumulator per row, ``acc += mean(g²)``,
  ``w -= lr * g / (sqrt(acc) + eps)`` (FBGEMM's row-wise Adagrad): D times less state.
- :class:`Adam`: PyTorch's ``SparseAdam``: moments of touched rows only; the step count ``t``
  used for bias correction counts the steps at which the layer had a gradient.
- :class:`AdamW`: Adam plus decoupled weight decay ``w *= 1 - lr * weight_decay``, applied to
  the touched rows only (a dense AdamW would decay every row at every step).

Non-finite gradients: with ``check_finite=True`` (the default, on every optimizer) ``step()``
raises ValueError before changing any row when a summed gradient holds NaN or infinity.
``check_finite=False`` skips that scan (a few percent of a step): a NaN then reaches the rows
and state it touches. The fused ``backward_and_step`` checks the gradient rows that
contribute, before writing; a sum of finite rows that overflows to infinity is the one case it
does not catch.

Examples
--------
A row no id touched is left alone, state included:

>>> import numpy as np
>>> from fastembed import Embedding, optim
>>> layer = Embedding(weight=np.zeros((3, 2), np.float32))
>>> opt = optim.Adam(layer, lr=0.1)
>>> for _ in range(3):
...     y = layer([0, 0])                             # only row 0 is looked up
...     _ = layer.backward(np.ones_like(y))
...     opt.step(); opt.zero_grad()
>>> np.round(layer.weight, 4)
array([[-0.3, -0.3],
       [ 0. ,  0. ],
       [ 0. ,  0. ]], dtype=float32)
>>> opt.state_dict()["steps"]
[3]
"""
from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from ._ext import indexing, updates
from ._ext.threads import n_threads_for
from ._memory import aligned_full, aligned_zeros
from ._validation import (
    check_fraction,
    check_n_threads,
    check_nonneg_float,
    check_positive_float,
)

__all__ = ["SGD", "Adagrad", "RowWiseAdagrad", "Adam", "AdamW"]


def _as_layers(params):
    layers = list(params) if isinstance(params, (list, tuple)) else [params]
    if not layers:
        raise ValueError("the optimizer got no layers")
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError("a layer is given twice: its gradient would be applied twice")
    for layer in layers:
        if not (hasattr(layer, "weight") and hasattr(layer, "grad")):
            raise TypeError(f"optimizers take layers with .weight and .grad (Embedding, "
                            f"EmbeddingBag), got {type(layer).__name__}")
        if not layer.weight.flags.writeable:
            raise ValueError("a layer's weight is read-only and cannot be trained")
    return layers


class _SparseOptimizer:
    """The machinery shared by the optimizers; subclasses define the state and hyper-params."""

    kind = ""
    _hyper_names: tuple[str, ...] = ()  # the hyper-parameters state_dict() saves

    def __init__(self, params, *, n_threads=None, check_finite=True):
        self.layers = _as_layers(params)
        self.check_finite = bool(check_finite)
        self._lock = threading.RLock()  # taken before any layer's lock (see step)
        check_n_threads(n_threads)  # a bad value raises here, not halfway through a step
        self.n_threads = n_threads
        self.steps = [0] * len(self.layers)
        self.state = [self._new_state(layer.weight) for layer in self.layers]

    # -- subclasses ---------------------------------------------------------------------------

    def _new_state(self, weight):
        """(state1, state2) arrays for one table; (1, 0) arrays for unused ones."""
        return _unused(weight), _unused(weight)

    def _hyper(self, step):
        raise NotImplementedError

    def _ensure_state(self, k):
        """Make the state fit the current hyper-parameters (SGD's momentum may be turned on)."""

    # -- public -------------------------------------------------------------------------------

    def step(self):
        """Apply every layer's accumulated gradient to the rows it touched.

        Layers whose ``grad`` is None are skipped. Every layer's gradient and state are
        checked before any row of any layer changes. The gradients are not cleared: call
        :meth:`zero_grad` before the next batch.

        Raises
        ------
        ValueError
            A gradient holds NaN or infinity (with ``check_finite``), a hyper-parameter was
            set to an invalid value, or a table was replaced or made read-only since the
            optimizer was made; no row is changed.
        TypeError, IndexError
            A layer's ``grad`` is not a coalesced :class:`~fastembed.SparseGrad` of its table.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding, optim
        >>> layer = Embedding(weight=np.ones((2, 2), np.float32))
        >>> opt = optim.SGD(layer, lr=0.5)
        >>> _ = layer([1]); _ = layer.backward(np.ones((1, 2), np.float32))
        >>> opt.step()
        >>> layer.weight
        array([[1. , 1. ],
               [0.5, 0.5]], dtype=float32)
        >>> _ = layer.backward(np.full((1, 2), np.nan, np.float32), ids=[0])
        >>> opt.step()
        Traceback (most recent call last):
        ...
        ValueError: the gradient of layer 0 holds NaN or infinity; no row was updated
        """
        with contextlib.ExitStack() as locks:
            # the optimizer's lock, then every layer's, in order: a step is atomic with
            # respect to other steps, backward() accumulations and fused steps in other threads
            locks.enter_context(self._lock)
            for layer in self.layers:
                lock = getattr(layer, "_lock", None)
                if lock is not None:
                    locks.enter_context(lock)
            self._check_hyper()
            todo = [(k, layer) for k, layer in enumerate(self.layers)
                    if layer.grad is not None]
            for k, layer in todo:
                _check_sparse_grad(layer, k, self.check_finite)
                self._check_state(k, layer)
            for k, layer in todo:
                self._apply(k, layer)

    def _step_layer(self, layer):
        """step() for one layer only (used by the fused path of max-mode bags)."""
        k = self._index(layer)
        self._check_hyper()
        if layer.grad is not None:
            _check_sparse_grad(layer, k, self.check_finite)
            self._apply(k, layer)

    def _check_state(self, k, layer):
        """The layer's table must still be writeable and fit the state (a table may have
        been replaced, or made read-only, since the optimizer was made). Changes nothing."""
        weight = layer.weight
        if not weight.flags.writeable:
            raise ValueError(f"layer {k}'s table is read-only and cannot be trained; no row "
                             f"was updated")
        for s in self.state[k]:
            unused = s.shape == (1, 0)
            fits = (s.ndim == 2 and s.shape[0] == weight.shape[0]
                    and s.shape[1] in (weight.shape[1], 1))
            if s.dtype != weight.dtype or not (unused or fits):
                raise ValueError(
                    f"layer {k}'s table is now {weight.dtype} {weight.shape}, but the "
                    f"optimizer's state was made for a {s.dtype} table of {s.shape[0]} rows: "
                    f"the table was replaced; create a new optimizer (or load a matching "
                    f"state_dict)")

    def _apply(self, k, layer):
        rows, values = layer.grad
        n_threads = n_threads_for(self.n_threads, values.size)
        self._ensure_state(k)
        self.steps[k] += 1
        state1, state2 = self.state[k]
        updates.sparse_step(layer.weight, rows, values, state1, state2,
                                   self._hyper(self.steps[k]), n_threads)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def zero_grad(self):
        """Clear every layer's accumulated gradient (calls each layer's ``zero_grad()``).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding, optim
        >>> layers = [Embedding(3, 2, seed=0), Embedding(3, 2, seed=1)]
        >>> opt = optim.Adam(layers, lr=0.01)
        >>> for layer in layers:
        ...     _ = layer([0]); _ = layer.backward(np.ones((1, 2), np.float32))
        >>> opt.step(); opt.zero_grad()
        >>> [layer.grad for layer in layers]
        [None, None]
        """
        for layer in self.layers:
            layer.zero_grad()

    def state_dict(self):
        """Plain NumPy arrays and numbers: saving and loading them resumes exactly.

        Returns
        -------
        dict
            ``kind`` (the class name), ``hyper`` (the hyper-parameters), ``steps`` (the step
            count of each layer) and ``state`` (per layer, copies of the arrays
            ``state1`` and ``state2``; a (1, 0) array stands for an unused one).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding, optim
        >>> opt = optim.Adam(Embedding(4, 2, seed=0), lr=0.01)
        >>> state = opt.state_dict()
        >>> state["kind"], state["hyper"], state["steps"]
        ('Adam', {'lr': 0.01, 'betas': (0.9, 0.999), 'eps': 1e-08}, [0])
        >>> state["state"][0]["state1"].shape      # Adam's first moments
        (4, 2)
        """
        return {
            "kind": type(self).__name__,
            "hyper": dict(self._hyper_params()),
            "steps": list(self.steps),
            "state": [{"state1": s1.copy(), "state2": s2.copy()} for s1, s2 in self.state],
        }

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict`; checks everything before changing anything.

        The state arrays are copied into the optimizer's own; the hyper-parameters and step
        counts are set from the saved ones.

        Parameters
        ----------
        state_dict : dict
            As returned by :meth:`state_dict` of an optimizer of the same class holding
            layers of the same shapes and dtypes.

        Raises
        ------
        ValueError
            Another optimizer class, another number of layers, arrays of other shapes or
            dtypes, unknown or invalid hyper-parameters.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding, optim
        >>> layer = Embedding(3, 2, seed=0)
        >>> opt = optim.Adam(layer, lr=0.01)
        >>> _ = layer([1]); _ = layer.backward(np.ones((1, 2), np.float32)); opt.step()
        >>> fresh = optim.Adam(layer, lr=0.5)
        >>> fresh.load_state_dict(opt.state_dict())
        >>> fresh.lr, fresh.steps
        (0.01, [1])
        >>> optim.SGD(layer, lr=0.1).load_state_dict(opt.state_dict())
        Traceback (most recent call last):
        ...
        ValueError: the state of 'Adam' cannot be loaded into SGD
        """
        if state_dict.get("kind") != type(self).__name__:
            raise ValueError(f"the state of {state_dict.get('kind')!r} cannot be loaded into "
                             f"{type(self).__name__}")
        states = state_dict["state"]
        if len(states) != len(self.state) or len(state_dict["steps"]) != len(self.steps):
            raise ValueError(f"the state has {len(states)} layers, this optimizer "
                             f"{len(self.state)}")
        for (s1, s2), saved in zip(self.state, states):
            for mine, theirs in ((s1, saved["state1"]), (s2, saved["state2"])):
                theirs = np.asarray(theirs)
                if theirs.shape != mine.shape or theirs.dtype != mine.dtype:
                    raise ValueError(f"state array of shape {theirs.shape} and dtype "
                                     f"{theirs.dtype} does not fit {mine.shape} {mine.dtype}")
        unknown = set(state_dict["hyper"]) - set(self._hyper_names)
        if unknown:
            raise ValueError(f"unknown hyper-parameters {sorted(unknown)} for "
                             f"{type(self).__name__}")
        hyper = {name: _HYPER_CHECKS[name](value, name)
                 for name, value in state_dict["hyper"].items()}
        for (s1, s2), saved in zip(self.state, states):
            np.copyto(s1, saved["state1"])
            np.copyto(s2, saved["state2"])
        self.steps = [int(t) for t in state_dict["steps"]]
        for name, value in hyper.items():
            setattr(self, name, value)

    def _check_hyper(self):
        """Hyper-parameters may be changed between steps (schedules): check them each time."""
        for name in self._hyper_names:
            _HYPER_CHECKS[name](getattr(self, name), name)

    def _hyper_params(self):
        return {name: getattr(self, name) for name in self._hyper_names}

    # -- fused path (called by the layers' backward_and_step) -----------------------------

    def _index(self, layer):
        for k, mine in enumerate(self.layers):
            if mine is layer:
                return k
        raise ValueError("this layer is not one of the optimizer's layers")

    def _fused(self, layer, grad, flat, src_row, scale, divide_by_count, skip_row, n_threads):
        """Group the batch's positions by row, then sum and update each row in one pass.

        Before anything is written, the rows of ``grad`` that contribute (those of positions
        that are not padding) must be finite, as ``step()`` requires of the summed gradient.
        """
        k = self._index(layer)
        self._check_hyper()
        self._check_state(k, layer)
        used = flat != skip_row if skip_row is not None else None
        rows_used = src_row if src_row is not None else None
        if used is not None and rows_used is not None:
            rows_used = rows_used[used]
        if not self.check_finite:
            pass  # the caller chose to skip the scan
        elif rows_used is not None:
            _check_finite(grad[np.unique(rows_used)], k)
        elif used is not None:
            _check_finite(grad[used], k)
        else:
            _check_finite(grad, k)
        if self.check_finite and scale is not None:  # per-sample weights (bags): a
            _check_finite(scale if used is None else scale[used], k)  # non-finite one poisons
        self._ensure_state(k)  # only now: a call that raises leaves the state as it was
        perm, rows, starts = indexing.group_by_row(
            flat.astype(np.int64, copy=False), max(layer.num_embeddings - 1, 0), n_threads)
        self.steps[k] += 1
        state1, state2 = self.state[k]
        updates.fused_step(layer.weight, grad, perm, rows, starts, src_row, scale,
                                  divide_by_count, -1 if skip_row is None else skip_row,
                                  state1, state2, self._hyper(self.steps[k]), n_threads)


def _unused(weight):
    return np.zeros((1, 0), dtype=weight.dtype)


def _check_sparse_grad(layer, k, check_finite=True):
    """A layer's .grad must be a well-formed SparseGrad of its table, and finite."""
    grad = layer.grad
    try:
        rows, values = grad
    except (TypeError, ValueError):
        raise TypeError(f"layer {k}'s grad must be a SparseGrad(rows, values), got "
                        f"{type(grad).__name__}") from None
    if not (isinstance(rows, np.ndarray) and rows.dtype == np.int64 and rows.ndim == 1
            and rows.flags.c_contiguous):
        raise TypeError(f"layer {k}'s grad.rows must be a contiguous 1-D int64 array")
    if not (isinstance(values, np.ndarray) and values.dtype == layer.weight.dtype
            and values.shape == (rows.size, layer.weight.shape[1])
            and values.flags.c_contiguous):
        raise ValueError(f"layer {k}'s grad.values must be a C-contiguous "
                         f"{layer.weight.dtype} array of shape "
                         f"{(rows.size, layer.weight.shape[1])}")
    if rows.size:
        if rows[0] < 0 or rows[-1] >= layer.weight.shape[0]:
            raise IndexError(f"layer {k}'s grad.rows must lie in [0, "
                             f"{layer.weight.shape[0]})")
        if rows.size > 1 and not (rows[1:] > rows[:-1]).all():
            raise ValueError(f"layer {k}'s grad.rows must be strictly increasing (coalesced)")
    if check_finite:
        _check_finite(values, k)


def _check_finite(values, k):
    if not np.isfinite(values).all():
        raise ValueError(f"the gradient of layer {k} holds NaN or infinity; no row was updated")


class SGD(_SparseOptimizer):
    """Stochastic gradient descent on touched rows, with optional lazy momentum.

    Parameters
    ----------
    params : layer or list of layers
    lr : float
    momentum : float, default 0
        Lazy: a row's buffer changes only at the steps where the row has a gradient.
    n_threads : int, optional
        Threads of the update kernels: None is OpenMP's default, negative values count back
        from the maximum. The result does not depend on it.
    check_finite : bool, default True
        :meth:`step` raises ValueError, before any row changes, when a gradient holds NaN or
        infinity; False skips that scan.

    Raises
    ------
    ValueError
        ``lr`` not positive or ``momentum`` negative (or either not finite), no layers, a
        layer given twice or with a read-only table.
    TypeError
        A parameter without ``weight`` and ``grad``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(weight=np.ones((3, 2), np.float32))
    >>> opt = optim.SGD(layer, lr=0.5)
    >>> _ = layer([2]); _ = layer.backward(np.ones((1, 2), np.float32)); opt.step()
    >>> layer.weight
    array([[1. , 1. ],
           [1. , 1. ],
           [0.5, 0.5]], dtype=float32)
    """

    kind = "sgd"
    _hyper_names: tuple[str, ...] = ("lr", "momentum")

    def __init__(self, params, lr, momentum=0.0, *, n_threads=None, check_finite=True):
        self.lr = check_positive_float(lr, "lr")
        self.momentum = check_nonneg_float(momentum, "momentum")
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        if self.momentum:
            return aligned_zeros(weight.shape, weight.dtype), _unused(weight)
        return _unused(weight), _unused(weight)

    def _ensure_state(self, k):
        # momentum may have been turned on after construction: give the buffer then
        state1, state2 = self.state[k]
        if self.momentum and state1.shape == (1, 0):
            weight = self.layers[k].weight
            self.state[k] = (aligned_zeros(weight.shape, weight.dtype), state2)

    def _hyper(self, step):
        return {"kind": "sgd", "lr": self.lr, "momentum": self.momentum}


class Adagrad(_SparseOptimizer):
    """Adagrad on touched rows (PyTorch's sparse Adagrad).

    Parameters
    ----------
    params : layer or list of layers
        Layers (:class:`~fastembed.Embedding`, :class:`~fastembed.EmbeddingBag`) or
        :class:`~fastembed.nn.Parameter` objects: anything with ``weight`` and ``grad``.
    lr : float, default 0.01
    eps : float, default 1e-10
    initial_accumulator_value : float, default 0
        The starting value of every accumulator ``sum``.
    n_threads : int, optional
        Threads of the update kernels: None is OpenMP's default, negative values count back
        from the maximum. The result does not depend on it.
    check_finite : bool, default True
        :meth:`step` raises ValueError, before any row changes, when a gradient holds NaN or
        infinity; False skips that scan.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(weight=np.ones((3, 2), np.float32))
    >>> opt = optim.Adagrad(layer, lr=0.1)
    >>> _ = layer([2]); _ = layer.backward(np.array([[1.0, -2.0]], np.float32))
    >>> opt.step()                       # w -= lr * g / sqrt(g**2): a step of lr per element
    >>> np.round(layer.weight[2], 4)
    array([0.9, 1.1], dtype=float32)
    >>> opt.state[0][0][2]               # the accumulated squared gradients of row 2
    array([1., 4.], dtype=float32)
    """

    kind = "adagrad"
    _hyper_names: tuple[str, ...] = ("lr", "eps", "initial_accumulator_value")

    def __init__(self, params, lr=0.01, eps=1e-10, initial_accumulator_value=0.0, *,
                 n_threads=None, check_finite=True):
        self.lr = check_positive_float(lr, "lr")
        self.eps = check_nonneg_float(eps, "eps")
        self.initial_accumulator_value = check_nonneg_float(initial_accumulator_value,
                                                            "initial_accumulator_value")
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return (aligned_full(weight.shape, self.initial_accumulator_value, weight.dtype),
                _unused(weight))

    def _hyper(self, step):
        return {"kind": "adagrad", "lr": self.lr, "eps": self.eps}


class RowWiseAdagrad(_SparseOptimizer):
    """Row-wise Adagrad (FBGEMM): one accumulator per row, D times less state.

    ``acc[r] += mean(g[r]²)``; ``w[r] -= lr * g[r] / (sqrt(acc[r]) + eps)``.

    Parameters
    ----------
    params : layer or list of layers
        Anything with ``weight`` and ``grad`` (see :class:`Adagrad`).
    lr : float, default 0.01
    eps : float, default 1e-10
    n_threads : int, optional
        Threads of the update kernels: None is OpenMP's default, negative values count back
        from the maximum. The result does not depend on it.
    check_finite : bool, default True
        :meth:`step` raises ValueError, before any row changes, when a gradient holds NaN or
        infinity; False skips that scan.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(weight=np.ones((3, 2), np.float32))
    >>> opt = optim.RowWiseAdagrad(layer, lr=0.1)
    >>> _ = layer([2]); _ = layer.backward(np.array([[1.0, -2.0]], np.float32))
    >>> opt.step()                       # acc = mean(1, 4) = 2.5 for row 2
    >>> opt.state[0][0].ravel()          # one accumulator per row
    array([0. , 0. , 2.5], dtype=float32)
    >>> np.round(layer.weight[2], 4)     # 1 - 0.1 * g / sqrt(2.5)
    array([0.9368, 1.1265], dtype=float32)
    """

    kind = "rowwise_adagrad"
    _hyper_names: tuple[str, ...] = ("lr", "eps")

    def __init__(self, params, lr=0.01, eps=1e-10, *, n_threads=None, check_finite=True):
        self.lr = check_positive_float(lr, "lr")
        self.eps = check_nonneg_float(eps, "eps")
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return aligned_zeros((weight.shape[0], 1), weight.dtype), _unused(weight)

    def _hyper(self, step):
        return {"kind": "rowwise_adagrad", "lr": self.lr, "eps": self.eps}


class Adam(_SparseOptimizer):
    """Lazy Adam on touched rows: PyTorch's ``SparseAdam``.

    Parameters
    ----------
    params : layer or list of layers
        Anything with ``weight`` and ``grad`` (see :class:`Adagrad`).
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
        The decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
    n_threads : int, optional
        Threads of the update kernels: None is OpenMP's default, negative values count back
        from the maximum. The result does not depend on it.
    check_finite : bool, default True
        :meth:`step` raises ValueError, before any row changes, when a gradient holds NaN or
        infinity; False skips that scan.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(weight=np.ones((3, 2), np.float32))
    >>> opt = optim.Adam(layer, lr=0.1)
    >>> for _ in range(2):
    ...     _ = layer([2]); _ = layer.backward(np.array([[1.0, -2.0]], np.float32))
    ...     opt.step(); opt.zero_grad()
    >>> np.round(layer.weight, 4)        # a constant gradient: steps of lr each time
    array([[1. , 1. ],
           [1. , 1. ],
           [0.8, 1.2]], dtype=float32)
    """

    kind = "adam"
    _hyper_names: tuple[str, ...] = ("lr", "betas", "eps")

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, *, n_threads=None,
                 check_finite=True):
        self.lr = check_positive_float(lr, "lr")
        self.betas = _betas(betas)
        self.eps = check_nonneg_float(eps, "eps")
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return (aligned_zeros(weight.shape, weight.dtype),
                aligned_zeros(weight.shape, weight.dtype))

    def _decay(self):
        return 1.0

    def _hyper(self, step):
        beta1, beta2 = self.betas
        step_size = self.lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        return {"kind": "adam", "beta1": beta1, "beta2": beta2, "eps": self.eps,
                "step_size": step_size, "decay": self._decay()}


class AdamW(Adam):
    """Adam with decoupled weight decay, applied to the touched rows only.

    Before each Adam update of a touched row, ``w *= 1 - lr * weight_decay`` (PyTorch's AdamW
    order). Rows that no id touched are neither updated nor decayed: the decay is lazy, like
    the moments, so a row's total decay depends on how often it is seen.

    Parameters
    ----------
    params, lr, betas, eps
        As in :class:`Adam`.
    weight_decay : float, default 0.01
        The decoupled decay rate (non-negative).
    n_threads : int, optional
        Threads of the update kernels: None is OpenMP's default, negative values count back
        from the maximum. The result does not depend on it.
    check_finite : bool, default True
        :meth:`step` raises ValueError, before any row changes, when a gradient holds NaN or
        infinity; False skips that scan.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(weight=np.ones((3, 2), np.float32))
    >>> opt = optim.AdamW(layer, lr=0.1, weight_decay=0.5)
    >>> _ = layer([2]); _ = layer.backward(np.array([[1.0, -2.0]], np.float32))
    >>> opt.step()                       # w = w * (1 - 0.1 * 0.5), then Adam's step of 0.1
    >>> np.round(layer.weight, 4)        # rows 0 and 1 were not touched: not decayed
    array([[1.  , 1.  ],
           [1.  , 1.  ],
           [0.85, 1.05]], dtype=float32)
    """

    kind = "adamw"
    _hyper_names: tuple[str, ...] = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, *,
                 n_threads=None, check_finite=True):
        self.weight_decay = check_nonneg_float(weight_decay, "weight_decay")
        super().__init__(params, lr=lr, betas=betas, eps=eps, n_threads=n_threads,
                         check_finite=check_finite)

    def _decay(self):
        return 1.0 - self.lr * self.weight_decay


_HYPER_CHECKS = {
    "lr": check_positive_float,
    "momentum": check_nonneg_float,
    "eps": check_nonneg_float,
    "weight_decay": check_nonneg_float,
    "initial_accumulator_value": check_nonneg_float,
    "betas": lambda v, n: _betas(v),
}


def _betas(betas):
    """(beta1, beta2): a pair of real numbers, each in [0, 1) (:func:`check_fraction`)."""
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__iter__"):
        raise TypeError(f"betas must be a pair of real numbers, got {type(betas).__name__}")
    pair = tuple(betas)
    if len(pair) != 2:
        raise ValueError(f"betas must be a pair of real numbers, got {len(pair)} of them")
    return (check_fraction(pair[0], "betas[0]"), check_fraction(pair[1], "betas[1]"))
