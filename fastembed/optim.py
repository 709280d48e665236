"""Sparse optimizers: they update only the rows a batch touched.

Every optimizer takes an iterable of :class:`~fastembed.nn.Parameter` objects (a generator
such as ``model.parameters()`` too), or layers and modules (all their parameters), or a list
mixing both; ``step()`` applies each parameter's accumulated :class:`SparseGrad` to the
rows it lists. The hyper-parameters go into one C struct, filled before the nogil region; each
touched row is updated by one thread, so results do not depend on the thread count.

The protocol a layer uses to fuse its backward pass with an update is public and small:
``optimizer.lock`` (taken before any parameter's ``lock``), ``param in optimizer``,
``optimizer.step_parameter(param)`` (``step()`` for one parameter) and
``optimizer.fused_step(param, grad, flat, ...)`` (sum the gradient rows of each touched row and
update it at once).

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

One step of each on the same gradient ``[1, -2]`` of a row: Adagrad's and Adam's first steps
are ``lr`` per element whatever the gradient's size; AdamW first decays the row by
``1 - lr * weight_decay``:

>>> for make in (optim.SGD, optim.Adagrad, optim.RowWiseAdagrad, optim.Adam, optim.AdamW):
...     layer = Embedding(weight=np.ones((1, 2), np.float32))
...     _ = layer([0]); _ = layer.backward(np.array([[1.0, -2.0]], np.float32))
...     make(layer, lr=0.1).step()
...     print(f"{make.__name__:15}", layer.weight[0].round(4))
SGD             [0.9 1.2]
Adagrad         [0.9 1.1]
RowWiseAdagrad  [0.9368 1.1265]
Adam            [0.9 1.1]
AdamW           [0.899 1.099]
"""
from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from ._ext import indexing, updates
from ._ext.threads import n_threads_for
from ._memory import aligned_full, aligned_zeros
from ._rows import coalesce_checked
from ._validation import (
    check_fraction,
    check_int,
    check_n_threads,
    check_nonneg_float,
    check_positive_float,
)
from .nn.module import Module
from .nn.parameter import Parameter

__all__ = ["SGD", "Adagrad", "RowWiseAdagrad", "Adam", "AdamW"]


def _as_params(params):
    """The Parameters of ``params``: a Parameter, a module, or an iterable of them."""
    if isinstance(params, (Parameter, Module)):
        items = [params]
    elif isinstance(params, np.ndarray) or not hasattr(params, "__iter__"):
        items = [params]  # refused below, with the type named
    else:
        items = list(params)  # a list, a tuple, a generator (model.parameters()) ...
    found = []
    for item in items:
        if isinstance(item, Parameter):
            found.append(item)
        elif isinstance(item, Module):
            # A layer given itself stands for all its parameters, frozen ones included, as a
            # frozen layer always could be given: it gets no gradient, so no update, until it
            # is unfrozen. (model.parameters() leaves the frozen ones out.)
            found.extend(item.parameters(include_frozen=True))
        else:
            raise TypeError(f"optimizers take Parameters (model.parameters()) or layers, got "
                            f"{type(item).__name__}")
    if not found:
        raise ValueError("the optimizer got no parameters")
    if len({id(p) for p in found}) != len(found):
        raise ValueError("a parameter is given twice: its gradient would be applied twice")
    for param in found:
        if not param.weight.flags.writeable:
            raise ValueError(f"the array of {param!r} is read-only and cannot be trained")
    return found


class _SparseOptimizer:
    """The machinery shared by the optimizers; subclasses define the state and hyper-params."""

    kind = ""
    _hyper_names: tuple[str, ...] = ()  # the hyper-parameters state_dict() saves

    def __init__(self, params, *, n_threads=None, check_finite=True):
        # the subclass has set its hyper-parameters (_hyper_names) as given: check them
        # before the parameters are looked at, and keep the checked values
        for name, value in self._checked_hyper(self._hyper_params()).items():
            setattr(self, name, value)
        self.params = _as_params(params)
        self.check_finite = bool(check_finite)
        self._lock = threading.RLock()  # taken before any parameter's lock (see step)
        self._sums = {}  # parameter index -> the fused step's workspace for the summed rows
        check_n_threads(n_threads)  # a bad value raises here, not halfway through a step
        self.n_threads = n_threads
        self.steps = [0] * len(self.params)
        self.state = [self._new_state(param.weight) for param in self.params]

    # -- subclasses ---------------------------------------------------------------------------

    def _new_state(self, weight):
        """(state1, state2) arrays for one table; (1, 0) arrays for unused ones."""
        return _unused(weight), _unused(weight)

    def _hyper(self, step):
        """The kernel's hyper-parameters at ``step``: by default the saved ones (the kernel
        reads the keys its ``kind`` uses)."""
        return {"kind": self.kind, **self._hyper_params()}

    def _ensure_state(self, k):
        """Make the state fit the current hyper-parameters (SGD's momentum may be turned on)."""

    # -- public -------------------------------------------------------------------------------

    @property
    def layers(self):
        """The optimizer's parameters: the former name of :attr:`params`, kept as an alias.

        Examples
        --------
        >>> from fastembed import Embedding, optim
        >>> opt = optim.SGD(Embedding(3, 2), lr=0.1)
        >>> opt.layers is opt.params
        True
        """
        return self.params

    @property
    def lock(self):
        """The optimizer's re-entrant lock, held by :meth:`step` and the fused updates.

        Whoever updates a parameter in place through the optimizer takes this lock first,
        then the parameter's :attr:`~fastembed.nn.Parameter.lock` (the layers'
        ``backward_and_step`` do): the same order as :meth:`step`, so that steps, fused steps
        and gradient accumulations in several Python threads never interleave or deadlock.

        Examples
        --------
        >>> from fastembed import Embedding, optim
        >>> layer = Embedding(3, 2)
        >>> opt = optim.SGD(layer, lr=0.1)
        >>> with opt.lock, layer.parameter.lock:
        ...     opt.step_parameter(layer.parameter)     # no gradient: nothing to do
        """
        return self._lock

    def __contains__(self, param):
        return any(mine is param for mine in self.params)

    def step(self):
        """Apply every parameter's accumulated gradient to the rows it lists.

        Parameters whose ``grad`` is None are skipped. Every parameter's gradient and state
        are checked before any row of any parameter changes. The gradients are not cleared:
        call :meth:`zero_grad` before the next batch.

        Raises
        ------
        ValueError
            A gradient holds NaN or infinity (with ``check_finite``), a hyper-parameter was
            set to an invalid value, or a table was replaced or made read-only since the
            optimizer was made; no row is changed.
        TypeError, IndexError
            A parameter's ``grad`` is not a coalesced :class:`~fastembed.SparseGrad` of its
            array.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import SparseGrad, nn, optim
        >>> p = nn.Parameter(np.ones((2, 2), np.float32))
        >>> opt = optim.SGD([p], lr=0.5)
        >>> p.grad = SparseGrad(np.array([1], np.int64), np.ones((1, 2), np.float32))
        >>> opt.step()                       # row 1, the one the gradient lists
        >>> p.data
        array([[1. , 1. ],
               [0.5, 0.5]], dtype=float32)
        >>> p.grad = SparseGrad(np.array([0], np.int64), np.full((1, 2), np.nan, np.float32))
        >>> opt.step()
        Traceback (most recent call last):
        ...
        ValueError: the gradient of parameter 0 holds NaN or infinity; no row was updated
        """
        with contextlib.ExitStack() as locks:
            # the optimizer's lock, then every parameter's, in order: a step is atomic with
            # respect to other steps, backward() accumulations and fused steps in other threads
            locks.enter_context(self._lock)
            for param in self.params:
                locks.enter_context(param.lock)
            self._check_hyper()
            todo = [(k, param) for k, param in enumerate(self.params)
                    if param.grad is not None]
            for k, param in todo:
                _check_sparse_grad(param, k, self.check_finite)
                self._check_state(k, param)
            for k, param in todo:
                self._apply(k, param)

    def step_parameter(self, param):
        """:meth:`step` for one of the optimizer's parameters only.

        Applies ``param.grad`` (if not None) to the rows it lists, after the same checks as
        :meth:`step`; the gradient is not cleared. Takes :attr:`lock`, then the parameter's.

        Parameters
        ----------
        param : Parameter
            One of the optimizer's parameters (``param in optimizer``).

        Raises
        ------
        ValueError
            ``param`` is not one of the optimizer's, or the errors of :meth:`step`; no row
            is changed.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn, optim
        >>> a, b = nn.Parameter(np.ones((2, 2))), nn.Parameter(np.ones((2, 2)))
        >>> opt = optim.SGD([a, b], lr=0.5)
        >>> a.accumulate(np.ones((2, 2))); b.accumulate(np.ones((2, 2)))
        >>> opt.step_parameter(b)
        >>> a.data[0], b.data[0]
        (array([1., 1.]), array([0.5, 0.5]))
        """
        k = self._index(param)
        with self._lock, param.lock:
            self._check_hyper()
            if param.grad is not None:
                _check_sparse_grad(param, k, self.check_finite)
                self._check_state(k, param)
                self._apply(k, param)

    def _check_state(self, k, layer):
        """The parameter's array must still be writeable and fit the state (an array may
        have been replaced, or made read-only, since the optimizer was made). Changes
        nothing."""
        weight = layer.weight
        if not weight.flags.writeable:
            raise ValueError(f"parameter {k}'s table is read-only and cannot be trained; no "
                             f"row was updated")
        for s in self.state[k]:
            unused = s.shape == (1, 0)
            fits = (s.ndim == 2 and s.shape[0] == weight.shape[0]
                    and s.shape[1] in (weight.shape[1], 1))
            if s.dtype != weight.dtype or not (unused or fits):
                raise ValueError(
                    f"parameter {k}'s table is now {weight.dtype} {weight.shape}, but the "
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

    def zero_grad(self):
        """Clear every parameter's accumulated gradient (``param.grad`` becomes None).

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
        for param in self.params:
            param.zero_grad()

    def state_dict(self):
        """Plain NumPy arrays and numbers: saving and loading them resumes exactly.

        Returns
        -------
        dict
            ``kind`` (the class name), ``hyper`` (the hyper-parameters), ``steps`` (the step
            count of each parameter) and ``state`` (per parameter, in the order of
            :attr:`params`, copies of the arrays ``state1`` and ``state2``; a (1, 0) array
            stands for an unused one).

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
            parameters of the same shapes and dtypes, in the same order.

        Raises
        ------
        ValueError
            Another optimizer class, another number of parameters, arrays of other shapes or
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
            raise ValueError(f"the state has {len(states)} parameters, this optimizer "
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
        hyper = self._checked_hyper(state_dict["hyper"])
        for (s1, s2), saved in zip(self.state, states):
            np.copyto(s1, saved["state1"])
            np.copyto(s2, saved["state2"])
        self.steps = [int(t) for t in state_dict["steps"]]
        for name, value in hyper.items():
            setattr(self, name, value)

    def _check_hyper(self):
        """Hyper-parameters may be changed between steps (schedules): check them each time."""
        self._checked_hyper(self._hyper_params())

    @staticmethod
    def _checked_hyper(hyper):
        """{name: value} checked by :data:`_HYPER_CHECKS` (the checked values)."""
        return {name: _HYPER_CHECKS[name](value, name) for name, value in hyper.items()}

    def _hyper_params(self):
        return {name: getattr(self, name) for name in self._hyper_names}

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state.pop("_sums", None)  # a workspace, not state
        return state

    def __setstate__(self, state):
        if "layers" in state:  # pickled when the optimizer held layers: their parameters
            state = dict(state)
            state["params"] = [getattr(x, "parameter", x) for x in state.pop("layers")]
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._sums = {}

    # -- the fused path (the layers' backward_and_step) -----------------------------------

    def _index(self, param):
        for k, mine in enumerate(self.params):
            if mine is param:
                return k
        raise ValueError("this parameter is not one of the optimizer's parameters")

    def fused_step(self, param, grad, flat, src_row=None, scale=None, *, divide_by_count=False,
                   skip_row=None, n_threads=None):
        """Apply one batch's gradient, given per position, to the rows it touches.

        Position ``i`` of the batch adds ``grad[src_row[i]] * scale[i]`` (``grad[i]`` without
        ``src_row``, no factor without ``scale``) to row ``flat[i]`` of ``param``. The
        contributions are summed by row in position order, as ``coalesce`` sums them, and the
        rows are updated as :meth:`step` would update them with that coalesced gradient
        (bitwise: this is what the layers' ``backward_and_step`` calls). The sums stay in the
        kernels: they are divided by the counts (``divide_by_count``) and checked for NaN and
        infinity there, as :meth:`step` checks a gradient, and nothing changes if one is not
        finite. ``param.grad`` is neither read nor written: it must be None. Takes
        :attr:`lock`, then the parameter's.

        Parameters
        ----------
        param : Parameter
            One of the optimizer's parameters.
        grad : ndarray, shape (N or B, D), the parameter's dtype, C-contiguous
            Gradient rows: one per position, or one per bag with ``src_row``.
        flat : ndarray of int, shape (N,)
            The row of each position, in ``[0, R)``.
        src_row : ndarray of int64, shape (N,), optional
            The row of ``grad`` each position takes (an EmbeddingBag's bag of each id).
        scale : ndarray, shape (N,), the parameter's dtype, optional
            A factor per position (a bag's mean or per-sample weights).
        divide_by_count : bool, default False
            Divide each row's sum by the number of its positions (``scale_grad_by_freq``).
        skip_row : int, optional
            A row that gets nothing (``padding_idx``).
        n_threads : int, optional
            Threads of the grouping and update kernels; None: the optimizer's ``n_threads``.
            The result does not depend on it.

        Raises
        ------
        ValueError
            ``param`` is not one of the optimizer's, a row's summed gradient is not finite
            (with ``check_finite``), an invalid hyper-parameter, a replaced
            or read-only array, or arrays of mismatched shapes; no row is changed.
        TypeError
            Arrays of the wrong dtype or layout (they are never cast).
        IndexError
            A row of ``flat`` outside the parameter, or of ``src_row`` outside ``grad``.
        RuntimeError
            ``param.grad`` is not None.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn, optim
        >>> table = nn.Parameter(np.zeros((3, 2), np.float32), sparse=True)
        >>> opt = optim.SGD([table], lr=1.0)
        >>> opt.fused_step(table, np.ones((3, 2), np.float32), np.array([2, 0, 2]))
        >>> table.data                       # row 2 got two contributions, row 1 none
        array([[-1., -1.],
               [ 0.,  0.],
               [-2., -2.]], dtype=float32)
        """
        k = self._index(param)
        with self._lock, param.lock:
            if param.grad is not None:
                raise RuntimeError("fused_step applies one batch's gradient alone, but "
                                   "param.grad already holds one: call optimizer.step() or "
                                   "zero_grad() first")
            flat = _check_fused_args(param, grad, flat, src_row, scale, skip_row)
            if n_threads is None:
                n_threads = n_threads_for(self.n_threads, flat.size * param.weight.shape[1])
            self._fused(k, param, grad, flat, src_row, scale, bool(divide_by_count), skip_row,
                        n_threads)

    def _fused(self, k, layer, grad, flat, src_row, scale, divide_by_count, skip_row,
               n_threads):
        """Sum the batch's contributions by row as ``coalesce`` does, then update the rows.

        The sums never reach Python: the kernel divides them by the counts, checks them for
        NaN and infinity as ``step()`` checks a coalesced gradient (nothing changes if one is
        not finite), and updates each row with them.
        """
        self._check_hyper()
        self._check_state(k, layer)
        # The sums go to a workspace kept from call to call (they never leave this call):
        # a fresh (U, D) array costs its page faults, 30 ms at 650,000 rows x 64.
        workspace = self._sums.get(k)
        grad_rows, counts = coalesce_checked(flat, grad, layer.weight.shape[0], n_threads,
                                             src_row, scale, workspace)
        if workspace is None or grad_rows.values.base is not workspace:
            self._sums[k] = grad_rows.values  # the largest so far
        before = self.state[k]
        self._ensure_state(k)
        state1, state2 = self.state[k]
        n_bad = updates.fused_step(layer.weight, grad_rows.rows, grad_rows.values, counts,
                                   divide_by_count, -1 if skip_row is None else skip_row,
                                   self.check_finite, state1, state2,
                                   self._hyper(self.steps[k] + 1), n_threads)
        if n_bad:
            self.state[k] = before  # a call that raises leaves the state as it was
            _raise_not_finite(k)
        self.steps[k] += 1


def _unused(weight):
    """A (1, 0) array: a state slot the optimizer does not use."""
    return np.zeros((1, 0), dtype=weight.dtype)


def _zeros(weight):
    """A state array of the table's shape and dtype, zeros (momentum, Adam's moments)."""
    return aligned_zeros(weight.shape, weight.dtype)


def _check_fused_args(param, grad, flat, src_row, scale, skip_row):
    """fused_step's arrays must fit the parameter and each other (the kernels trust them)."""
    weight = param.weight
    if not (isinstance(grad, np.ndarray) and grad.dtype == weight.dtype and grad.ndim == 2
            and grad.shape[1] == weight.shape[1] and grad.flags.c_contiguous):
        raise TypeError(f"grad must be a C-contiguous {weight.dtype} array of shape "
                        f"(n, {weight.shape[1]})")
    flat = np.asarray(flat)
    if flat.ndim != 1 or flat.dtype.kind not in "iu":
        raise TypeError("flat must be a 1-D integer array")
    flat = np.ascontiguousarray(flat, dtype=np.int64)
    if indexing.find_first_invalid(flat, weight.shape[0], 1) >= 0:  # both ends, in one pass
        raise IndexError(f"flat must lie in [0, {weight.shape[0]})")
    if src_row is None:
        if grad.shape[0] != flat.size:
            raise ValueError(f"grad has {grad.shape[0]} rows for {flat.size} positions")
    else:
        if not (isinstance(src_row, np.ndarray) and src_row.dtype == np.int64
                and src_row.shape == flat.shape and src_row.flags.c_contiguous):
            raise TypeError("src_row must be a contiguous int64 array, one entry per position")
        if indexing.find_first_invalid(src_row, grad.shape[0], 1) >= 0:
            raise IndexError(f"src_row must lie in [0, {grad.shape[0]})")
    if scale is not None and not (isinstance(scale, np.ndarray) and scale.dtype == weight.dtype
                                  and scale.shape == flat.shape and scale.flags.c_contiguous):
        raise TypeError(f"scale must be a contiguous {weight.dtype} array, one entry per "
                        f"position")
    check_int(skip_row, "skip_row", allow_none=True)
    return flat


def _check_sparse_grad(layer, k, check_finite=True):
    """A parameter's .grad must be a well-formed SparseGrad of its array, and finite."""
    grad = layer.grad
    try:
        rows, values = grad
    except (TypeError, ValueError):
        raise TypeError(f"parameter {k}'s grad must be a SparseGrad(rows, values), got "
                        f"{type(grad).__name__}") from None
    if not (isinstance(rows, np.ndarray) and rows.dtype == np.int64 and rows.ndim == 1
            and rows.flags.c_contiguous):
        raise TypeError(f"parameter {k}'s grad.rows must be a contiguous 1-D int64 array")
    if not (isinstance(values, np.ndarray) and values.dtype == layer.weight.dtype
            and values.shape == (rows.size, layer.weight.shape[1])
            and values.flags.c_contiguous):
        raise ValueError(f"parameter {k}'s grad.values must be a C-contiguous "
                         f"{layer.weight.dtype} array of shape "
                         f"{(rows.size, layer.weight.shape[1])}")
    if rows.size:
        if rows[0] < 0 or rows[-1] >= layer.weight.shape[0]:
            raise IndexError(f"parameter {k}'s grad.rows must lie in [0, "
                             f"{layer.weight.shape[0]})")
        if rows.size > 1 and not (rows[1:] > rows[:-1]).all():
            raise ValueError(f"parameter {k}'s grad.rows must be strictly increasing "
                             f"(coalesced)")
    if check_finite:
        _check_finite(values, k)


def _check_finite(values, k):
    if not np.isfinite(values).all():
        _raise_not_finite(k)


def _raise_not_finite(k):
    raise ValueError(f"the gradient of parameter {k} holds NaN or infinity; no row was "
                     f"updated")


class SGD(_SparseOptimizer):
    """Stochastic gradient descent on touched rows, with optional lazy momentum.

    What it says of ``params``, ``n_threads`` and ``check_finite``, of the errors they raise
    and of the attributes holds for every optimizer of :mod:`fastembed.optim` (the others
    refer here).

    Parameters
    ----------
    params : iterable of Parameter, a layer or a module
        :class:`~fastembed.nn.Parameter` objects (``model.parameters()``, a list, a
        generator), or layers and modules, which stand for all their parameters, or a list
        mixing both. Each parameter once. A frozen parameter (``requires_grad=False``, a
        layer with ``trainable=False``) is accepted and gets no update while it stays frozen.
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
        ``lr`` not positive or ``momentum`` negative (or either not finite), no parameters,
        a parameter given twice (its gradient would be applied twice), or one whose array is
        read-only.
    TypeError
        Something that is neither a Parameter nor a module (a bare ndarray, say).

    Attributes
    ----------
    params : list of Parameter
        The parameters, in the order given (``layers`` is an alias).
    state : list of (ndarray, ndarray)
        The optimizer's state arrays of each parameter (``state1``, ``state2``).
    steps : list of int
        The steps at which each parameter had a gradient.

    Examples
    --------
    Lazy momentum: row 1 is looked up at the first step only, so it moves once.

    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(weight=np.zeros((2, 1), np.float32))
    >>> opt = optim.SGD(layer, lr=1.0, momentum=0.5)
    >>> for ids in ([0, 1], [0], [0]):
    ...     _ = layer(ids); _ = layer.backward(np.ones((len(ids), 1), np.float32))
    ...     opt.step(); opt.zero_grad()
    >>> layer.weight.ravel()        # row 0: steps of 1, 1.5 and 1.75; row 1: one step of 1
    array([-4.25, -1.  ], dtype=float32)
    """

    kind = "sgd"
    _hyper_names: tuple[str, ...] = ("lr", "momentum")

    def __init__(self, params, lr, momentum=0.0, *, n_threads=None, check_finite=True):
        self.lr, self.momentum = lr, momentum  # checked by _SparseOptimizer.__init__
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return (_zeros(weight) if self.momentum else _unused(weight)), _unused(weight)

    def _ensure_state(self, k):
        # momentum may have been turned on after construction: give the buffer then
        state1, state2 = self.state[k]
        if self.momentum and state1.shape == (1, 0):
            self.state[k] = (_zeros(self.params[k].weight), state2)


class Adagrad(_SparseOptimizer):
    """Adagrad on touched rows (PyTorch's sparse Adagrad).

    ``sum += g²``; ``w -= lr * g / (sqrt(sum) + eps)``, element by element.

    Parameters
    ----------
    params, n_threads, check_finite
        As in :class:`SGD`.
    lr : float, default 0.01
    eps : float, default 1e-10
    initial_accumulator_value : float, default 0
        The starting value of every accumulator ``sum``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn, optim
    >>> p = nn.Parameter(np.ones((2, 2), np.float32))
    >>> opt = optim.Adagrad([p], lr=0.1, initial_accumulator_value=1.0)
    >>> p.accumulate(np.array([[1.0, -2.0], [0.0, 0.0]], np.float32)); opt.step()
    >>> opt.state[0][0]                  # the accumulators: 1 + g**2
    array([[2., 5.],
           [1., 1.]], dtype=float32)
    >>> np.round(p.data[0], 4)           # w -= lr * g / sqrt(sum)
    array([0.9293, 1.0894], dtype=float32)
    """

    kind = "adagrad"
    _hyper_names: tuple[str, ...] = ("lr", "eps", "initial_accumulator_value")

    def __init__(self, params, lr=0.01, eps=1e-10, initial_accumulator_value=0.0, *,
                 n_threads=None, check_finite=True):
        self.lr, self.eps = lr, eps  # checked by _SparseOptimizer.__init__
        self.initial_accumulator_value = initial_accumulator_value
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return (aligned_full(weight.shape, self.initial_accumulator_value, weight.dtype),
                _unused(weight))


class RowWiseAdagrad(_SparseOptimizer):
    """Row-wise Adagrad (FBGEMM): one accumulator per row, D times less state.

    ``acc[r] += mean(g[r]²)``; ``w[r] -= lr * g[r] / (sqrt(acc[r]) + eps)``.

    Parameters
    ----------
    params, lr, eps, n_threads, check_finite
        As in :class:`Adagrad`.

    Examples
    --------
    >>> from fastembed import Embedding, optim
    >>> layer = Embedding(1000, 64)
    >>> optim.RowWiseAdagrad(layer).state[0][0].shape     # one accumulator per row
    (1000, 1)
    >>> optim.Adagrad(layer).state[0][0].shape            # one per element
    (1000, 64)
    """

    kind = "rowwise_adagrad"
    _hyper_names: tuple[str, ...] = ("lr", "eps")

    def __init__(self, params, lr=0.01, eps=1e-10, *, n_threads=None, check_finite=True):
        self.lr, self.eps = lr, eps  # checked by _SparseOptimizer.__init__
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return aligned_zeros((weight.shape[0], 1), weight.dtype), _unused(weight)


class Adam(_SparseOptimizer):
    """Lazy Adam on touched rows: PyTorch's ``SparseAdam``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g²``;
    ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``, where ``t`` counts the
    steps at which the parameter had a gradient.

    Parameters
    ----------
    params, n_threads, check_finite
        As in :class:`SGD`.
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
        The decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn, optim
    >>> p = nn.Parameter(np.ones((1, 2), np.float32))
    >>> opt = optim.Adam([p], lr=0.1)
    >>> for _ in range(2):
    ...     p.accumulate(np.array([[1.0, -2.0]], np.float32)); opt.step(); opt.zero_grad()
    >>> np.round(p.data, 4)              # a constant gradient: steps of lr each time
    array([[0.8, 1.2]], dtype=float32)
    """

    kind = "adam"
    _hyper_names: tuple[str, ...] = ("lr", "betas", "eps")

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, *, n_threads=None,
                 check_finite=True):
        self.lr, self.betas, self.eps = lr, betas, eps  # checked by _SparseOptimizer.__init__
        super().__init__(params, n_threads=n_threads, check_finite=check_finite)

    def _new_state(self, weight):
        return _zeros(weight), _zeros(weight)

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
    params, lr, betas, eps, n_threads, check_finite
        As in :class:`Adam`.
    weight_decay : float, default 0.01
        The decoupled decay rate (non-negative).

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
        self.weight_decay = weight_decay  # checked by _SparseOptimizer.__init__
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
