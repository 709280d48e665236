"""Layers: ``Embedding`` and ``EmbeddingBag``, trainable tables with hand-written backward passes.

A layer owns a (V, D) table ``weight``, held in a sparse :class:`~fastembed.nn.Parameter`
(``layer.parameter``, what ``layer.parameters()`` yields). Its ``forward`` (also
``layer(ids)``) looks rows up; its ``backward`` returns the row-sparse gradient of the table (a
:class:`~fastembed.functional.SparseGrad`) and adds it into ``layer.grad``, which the
optimizers of :mod:`fastembed.optim` apply; ``backward_and_step`` fuses the two. Both layers
are :class:`~fastembed.nn.Module` objects.

Examples
--------
>>> import numpy as np
>>> from fastembed import optim
>>> from fastembed.nn import Embedding
>>> layer = Embedding(weight=np.zeros((3, 2), np.float32))
>>> y = layer(np.array([[0, 2], [2, 2]]))        # (2, 2) ids -> (2, 2, 2) rows
>>> y.shape
(2, 2, 2)
>>> layer.backward(np.ones_like(y)).rows         # rows 0 and 2 got gradient
array([0, 2])
>>> optim.SGD(layer, lr=0.5).step()
>>> layer.weight
array([[-0.5, -0.5],
       [ 0. ,  0. ],
       [-1.5, -1.5]], dtype=float32)
"""
from __future__ import annotations

import operator

import numpy as np

from .._bags import (
    Bags,
    bag_backward,
    bag_contributions,
    bag_forward,
    bag_layout,
    check_padding_idx,
    checked_bags,
    dropped_live_ids,
    prepare_bag_out,
)
from .._ext.threads import n_threads_for
from .._memory import aligned_empty, aligned_like, aligned_zeros
from .._rows import (
    SparseGrad,
    coalesce_rows,
    gather_checked,
    gather_masked,
    prepare_out,
)
from .._validation import (
    as_ids,
    as_rng,
    check_bounds_mode,
    check_float,
    check_float_dtype,
    check_grad,
    check_int,
    check_no_overlap,
    check_size,
    check_table,
    invalid_ids,
)
from .module import Module
from .parameter import Parameter

__all__ = ["Embedding", "EmbeddingBag"]

# Keras spells some arguments differently; these keyword aliases map them onto ours.
_KERAS_ALIASES = {
    "input_dim": "num_embeddings",
    "output_dim": "embedding_dim",
    "embeddings_initializer": "init",
}


def _initial_table(shape, dtype, init, rng):
    """A new table of the given shape and dtype, filled by ``init``."""
    # Tables start on a cache line (see _memory.py); drawn with out=, the values are the
    # same bits as rng.random(shape, dtype) etc. would give.
    if init == "uniform":  # Keras's default: U(-0.05, 0.05)
        table = aligned_empty(shape, dtype)
        rng.random(dtype=dtype, out=table)
        table *= dtype.type(0.1)
        table -= dtype.type(0.05)
        return table
    if init == "normal":  # PyTorch's default: N(0, 1)
        table = aligned_empty(shape, dtype)
        rng.standard_normal(dtype=dtype, out=table)
        return table
    if init == "zeros":
        return aligned_zeros(shape, dtype)
    if callable(init):
        table = np.asarray(init(shape, rng))
        if table.shape != shape:
            raise ValueError(f"init returned shape {table.shape}, expected {shape}")
        return aligned_like(table, dtype)  # our own new table: copying is fine
    raise ValueError(f"init must be 'uniform', 'normal', 'zeros' or a callable "
                     f"init(shape, rng), got {init!r}")


def _table_attribute(name, doc, convert=lambda value: value):
    """A property of a layer that reads and writes the attribute ``name`` of its table's
    Parameter (``convert`` is applied to the values written)."""
    return property(operator.attrgetter(f"_table.{name}"),
                    lambda layer, value: setattr(layer._table, name, convert(value)), doc=doc)


def _merge(a, b):
    """Sum two SparseGrads of the same table (deterministically).

    With ``a`` None, ``b`` itself (a fresh gradient, never copied: at 10**6 touched rows the
    copy took longer than the kernels that built it); otherwise new arrays, so that ``a`` and
    ``b`` are left as they were.
    """
    if a is None:
        return b
    rows = np.concatenate([a.rows, b.rows])
    values = np.concatenate([a.values, b.values])
    merged, _ = coalesce_rows(rows, values, None, 1)
    return merged


def _read_only(grad):
    """Read-only views of a SparseGrad's arrays: what backward returns."""
    rows, values = grad.rows.view(), grad.values.view()
    rows.flags.writeable = False
    values.flags.writeable = False
    return SparseGrad(rows, values)


class _TableLayer(Module):
    """What Embedding and EmbeddingBag share: the table, its options, the gradient.

    The table lives in a sparse :class:`~fastembed.nn.Parameter` registered as ``"weight"``
    (:attr:`parameter`); ``weight``, ``grad`` and ``trainable`` read and write it.
    """

    _name = "layer"
    _table: Parameter  # the registered "weight", also kept here for attribute-speed access

    def __init__(self, num_embeddings, embedding_dim, *, padding_idx, max_norm, norm_type,
                 scale_grad_by_freq, dtype, init, seed, weight, trainable,
                 bounds_check="raise"):
        super().__init__()
        self.bounds_check = check_bounds_mode(bounds_check)
        if init is None:
            init = "uniform"
        if weight is not None:
            check_table(weight, "weight")
            if num_embeddings is not None and num_embeddings != weight.shape[0]:
                raise ValueError(f"num_embeddings={num_embeddings} disagrees with "
                                 f"weight.shape={weight.shape}")
            if embedding_dim is not None and embedding_dim != weight.shape[1]:
                raise ValueError(f"embedding_dim={embedding_dim} disagrees with "
                                 f"weight.shape={weight.shape}")
            if dtype is not None and np.dtype(dtype) != weight.dtype:
                raise TypeError(f"dtype={np.dtype(dtype)} disagrees with weight.dtype="
                                f"{weight.dtype}; fastembed never converts a table silently")
            num_embeddings, embedding_dim = weight.shape
        else:
            num_embeddings = check_size(num_embeddings, "num_embeddings")
            embedding_dim = check_size(embedding_dim, "embedding_dim")
            dtype = check_float_dtype(np.float32 if dtype is None else dtype)

        padding_idx = check_padding_idx(padding_idx, num_embeddings)
        max_norm = check_float(max_norm, "max_norm", min=0, min_open=True, finite=False,
                               allow_none=True)
        norm_type = check_float(norm_type, "norm_type", min=0, min_open=True, finite=False)

        if weight is None:
            weight = _initial_table((num_embeddings, embedding_dim), dtype, init, as_rng(seed))
            if padding_idx is not None:
                weight[padding_idx] = 0
        if max_norm is not None and not weight.flags.writeable:
            raise ValueError("max_norm renormalises rows in place, but weight is read-only")

        # The Parameter's lock guards the gradient and in-place updates of this layer against
        # other threads (backward, backward_and_step, optimizer.step, zero_grad); see
        # "Threads" in README.
        table = Parameter(weight, name="weight", sparse=True, requires_grad=bool(trainable))
        self.register_parameter("weight", table)
        object.__setattr__(self, "_table", table)  # the same object, at attribute speed
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = bool(scale_grad_by_freq)

    @classmethod
    def from_pretrained(cls, weights, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, **kwargs):
        """Build a layer around an existing (V, D) table, used by reference.

        Parameters
        ----------
        weights : ndarray of float32 or float64, shape (V, D), or Vectors
            The pretrained table (C-contiguous; a memmap works), or a
            :class:`fastembed.vectors.Vectors`, whose ``weight`` is used (row ``i`` is the
            vector of ``weights.words[i]``). To train a memory-mapped table in place, open it
            with ``np.memmap(path, mode="r+", ...)``, pass ``freeze=False`` and call
            :meth:`flush` to write the updates to disk.
        freeze : bool, default True
            When True the layer is not trainable (PyTorch's default).
        padding_idx, max_norm, norm_type, scale_grad_by_freq
            As in the constructor (:class:`Embedding`, :class:`EmbeddingBag`).
        **kwargs
            More constructor options (``mode`` of an :class:`EmbeddingBag`,
            ``bounds_check`` ...); ``weight``, ``dtype`` and ``trainable`` are set here.

        Returns
        -------
        Embedding or EmbeddingBag
            A layer of the class it is called on, whose ``weight`` is ``weights`` itself.

        Raises
        ------
        TypeError, ValueError
            ``weights`` is not a C-contiguous 2-D float32 or float64 table.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> layer = Embedding.from_pretrained(np.eye(3, dtype=np.float32))
        >>> layer([2])
        array([[0., 0., 1.]], dtype=float32)
        >>> from fastembed.vectors import Vectors
        >>> Embedding.from_pretrained(Vectors(["a", "b"], np.eye(2, dtype=np.float32)))
        Embedding(2, 2, dtype=float32, trainable=False)
        """
        if not isinstance(weights, np.ndarray) and isinstance(getattr(weights, "weight", None),
                                                               np.ndarray):
            weights = weights.weight  # Vectors, or another layer: its table
        check_table(weights, "weights")
        return cls(weight=weights, dtype=weights.dtype, trainable=not freeze,
                   padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, **kwargs)

    @property
    def parameter(self):
        """The :class:`~fastembed.nn.Parameter` holding the table (``sparse=True``).

        :meth:`parameters` yields it unless the layer is frozen; ``weight`` is its array,
        ``grad`` its gradient and ``trainable`` its ``requires_grad``.

        Examples
        --------
        >>> from fastembed import Embedding
        >>> layer = Embedding(5, 3)
        >>> layer.parameter
        Parameter('weight', shape=(5, 3), dtype=float32, sparse=True)
        >>> layer.parameter.data is layer.weight
        True
        """
        return self._table

    weight = _table_attribute(
        "weight",
        """The (V, D) table itself, the array of :attr:`parameter` (assignable).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> table = np.zeros((3, 2), np.float32)
        >>> Embedding(weight=table).weight is table
        True
        """)

    grad = _table_attribute(
        "grad",
        """The gradient accumulated since the last :meth:`zero_grad` (SparseGrad or None).

        It is :attr:`parameter`'s ``grad``; assigning sets that (``layer.grad = None``).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> layer = Embedding(3, 2)
        >>> _ = layer([2]); _ = layer.backward(np.ones((1, 2), np.float32))
        >>> layer.grad.rows, layer.grad is layer.parameter.grad
        (array([2]), True)
        """)

    trainable = _table_attribute(
        "requires_grad",
        """Whether the table is trained (:attr:`parameter`'s ``requires_grad``; assignable).

        A frozen layer computes no gradient and :meth:`parameters` yields nothing.

        Examples
        --------
        >>> from fastembed import Embedding
        >>> layer = Embedding(3, 2)
        >>> layer.trainable = False
        >>> layer.parameter.requires_grad, list(layer.parameters())
        (False, [])
        """,
        convert=bool)

    @property
    def _lock(self):
        return self._table.lock  # the table's Parameter's lock

    @property
    def num_embeddings(self):
        """The number of rows V of the table, read from :attr:`weight` (it follows a new one).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> layer = Embedding(5, 3)
        >>> layer.num_embeddings
        5
        >>> layer.weight = np.zeros((7, 3), np.float32)
        >>> layer.num_embeddings
        7
        """
        return self.weight.shape[0]

    @property
    def embedding_dim(self):
        """The length D of each row of the table: the last axis of every lookup.

        Keras calls it ``output_dim`` (and :attr:`num_embeddings` ``input_dim``).

        Examples
        --------
        >>> from fastembed import EmbeddingBag
        >>> bag = EmbeddingBag(5, 3)
        >>> bag.embedding_dim, bag([[0, 1], [2, 2]]).shape
        (3, (2, 3))
        """
        return self.weight.shape[1]

    @property
    def dtype(self):
        """The dtype of the table, float32 or float64.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> Embedding(5, 3, dtype=np.float64).dtype
        dtype('float64')
        """
        return self.weight.dtype

    def _repr_options(self):
        extra = "".join(f", {name}={getattr(self, name)!r}" for name in
                        ("padding_idx", "max_norm") if getattr(self, name) is not None)
        if self.scale_grad_by_freq:
            extra += ", scale_grad_by_freq=True"
        if not self.trainable:
            extra += ", trainable=False"
        return extra

    def _renorm(self, flat):
        """PyTorch's embedding_renorm_: rescale looked-up rows whose norm exceeds max_norm."""
        rows = np.unique(flat)
        if rows.size == 0:
            return
        sub = self.weight[rows]
        if sub.shape[1] == 0:
            return   # empty rows have norm 0 (NumPy before 2.4 raises for ord=inf on them)
        # Norms in float64, so that a float32 row whose squares overflow float32 is still
        # scaled to max_norm rather than to zero.
        norms = np.linalg.norm(sub.astype(np.float64), ord=self.norm_type, axis=1)
        over = norms > self.max_norm
        if over.any():
            scale = self.max_norm / (norms[over] + 1e-7)
            self.weight[rows[over]] = (sub[over] * scale[:, None]).astype(self.dtype)

    def _finish_grad(self, grad, counts):
        """Apply scale_grad_by_freq and padding_idx to a fresh SparseGrad, then accumulate."""
        rows, values = grad
        if self.scale_grad_by_freq and rows.size:
            values /= counts[:, None].astype(self.dtype)
        if self.padding_idx is not None:
            keep = rows != self.padding_idx
            if not keep.all():
                grad = SparseGrad(rows[keep], values[keep])
        with self._lock:
            self.grad = _merge(self.grad, grad)
        return _read_only(grad)

    def __setstate__(self, state):
        legacy = "weight" in state  # pickled when the layer held a plain table
        if legacy:
            state = dict(state)
            table = Parameter(state.pop("weight"), name="weight", sparse=True,
                              requires_grad=bool(state.pop("trainable", True)))
            table.grad = state.pop("grad", None)
        super().__setstate__(state)
        if legacy:
            self.register_parameter("weight", table)
            object.__setattr__(self, "_table", table)

    def _check_fused_ready(self, had_forward):
        """The preconditions of backward_and_step, checked before anything is written."""
        if not self.trainable:
            raise RuntimeError("a frozen layer (trainable=False) cannot be trained")
        if self.grad is not None:
            raise RuntimeError("backward_and_step applies one batch's gradient alone, but "
                               "layer.grad already holds one: call optimizer.step() or "
                               "zero_grad() first")
        if not had_forward:
            raise RuntimeError("backward_and_step() needs a forward() first")

    def flush(self):
        """Write the changes of a memory-mapped table to its file; a no-op otherwise.

        A table opened with ``np.memmap(path, mode="r+")`` (or an array viewing one) can be
        trained in place: the optimizers update its rows in the shared mapping, so the
        updates reach the file's cached pages at once (other readers of the file see them),
        and ``flush()`` writes them to disk (``msync``), so that they survive a crash of the
        machine. Call it after training, or at each checkpoint. Tables in memory, and
        mode ``"c"`` (copy-on-write) or ``"r"`` maps, have nothing to write.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from fastembed import Embedding, optim
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "table.f32")
        ...     np.ones((3, 2), np.float32).tofile(path)
        ...     layer = Embedding(weight=np.memmap(path, np.float32, "r+", shape=(3, 2)))
        ...     opt = optim.SGD(layer, lr=0.5)
        ...     _ = layer([2]); _ = layer.backward(np.ones((1, 2), np.float32)); opt.step()
        ...     layer.flush()
        ...     print(np.fromfile(path, np.float32))
        ...     del layer, opt                     # unmap the file before the directory goes
        [1.  1.  1.  1.  0.5 0.5]
        """
        array = self.weight
        while isinstance(array, np.ndarray):  # the weight, or the memmap it is a view of
            if isinstance(array, np.memmap):
                array.flush()
                return
            array = array.base


class Embedding(_TableLayer):
    """A lookup table mapping integer ids to rows of a learned (V, D) matrix.

    ``layer(ids)`` returns ``weight[ids]`` with shape ``ids.shape + (D,)``;
    ``layer.backward(grad_output)`` returns the row-sparse gradient of ``weight``.

    Parameters
    ----------
    num_embeddings : int
        V, the number of rows (Keras: ``input_dim``).
    embedding_dim : int
        D, the size of each row (Keras: ``output_dim``).
    padding_idx : int, optional
        A row that starts as zeros (when the layer initialises the table) and never receives
        gradient. A negative value counts from the end.
    max_norm : float, optional
        Rows looked up whose ``norm_type``-norm exceeds ``max_norm`` are rescaled in place to
        norm ``max_norm`` before the lookup (PyTorch's semantics: the scale is
        ``max_norm / (norm + 1e-7)``).
    norm_type : float, default 2.0
        The p of the p-norm used with ``max_norm`` (``np.inf`` allowed).
    scale_grad_by_freq : bool, default False
        Divide each row's gradient by the number of times it occurs in the batch.
    mask_zero : bool, default False
        Keras: id 0 is padding, and :meth:`compute_mask` returns ``ids != 0``.
    dtype : float32 or float64, optional
        float32 by default; taken from ``weight`` when it is given.
    init : {"uniform", "normal", "zeros"} or callable, optional
        "uniform" (the default) is U(-0.05, 0.05), as Keras; "normal" is N(0, 1), as PyTorch. A
        callable is called as ``init((V, D), rng)`` and must return that shape
        (Keras: ``embeddings_initializer``).
    seed : int or numpy.random.Generator, optional
        Seeds the initialiser.
    weight : ndarray, optional
        Use this (V, D) table as the weight, by reference (never copied).
    trainable : bool, default True
        A frozen layer computes no gradient: ``backward`` returns None.
    input_length : int, optional
        Keras: the expected length of the last axis of the ids, checked at every call.
    bounds_check : {"raise", "warn", "zero"}, default "raise"
        What an id outside ``[0, V)`` does in :meth:`forward`: raise IndexError; or be
        padding (a zero output row, no gradient), with a ``BoundsCheckWarning`` once per call
        site ("warn") or silently ("zero"). See :func:`fastembed.gather`.
    **keras_aliases
        Keras's names ``input_dim``, ``output_dim`` and ``embeddings_initializer`` for
        ``num_embeddings``, ``embedding_dim`` and ``init`` (giving both spellings raises
        TypeError).

    Attributes
    ----------
    weight : ndarray, shape (V, D)
    grad : SparseGrad or None
        The gradient accumulated by :meth:`backward` since the last :meth:`zero_grad`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import Embedding
    >>> layer = Embedding(input_dim=4, output_dim=3, seed=0)
    >>> layer(np.array([0, 1, 2, 0])).shape
    (4, 3)
    >>> layer(np.zeros((32, 10), dtype=np.int64)).shape
    (32, 10, 3)
    """

    def __init__(self, num_embeddings=None, embedding_dim=None, *, padding_idx=None,
                 max_norm=None, norm_type=2.0, scale_grad_by_freq=False, mask_zero=False,
                 dtype=None, init=None, seed=None, weight=None, trainable=True,
                 input_length=None, bounds_check="raise", **keras_aliases):
        given = {"num_embeddings": num_embeddings, "embedding_dim": embedding_dim,
                 "init": init}
        for alias, value in keras_aliases.items():
            if alias not in _KERAS_ALIASES:
                raise TypeError(f"Embedding() got an unexpected keyword argument {alias!r}")
            ours = _KERAS_ALIASES[alias]
            if given[ours] is not None:
                raise TypeError(f"Embedding() got both {ours!r} and its Keras alias {alias!r}")
            given[ours] = value
        num_embeddings, embedding_dim, init = (given["num_embeddings"],
                                               given["embedding_dim"], given["init"])
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx,
                         max_norm=max_norm, norm_type=norm_type,
                         scale_grad_by_freq=scale_grad_by_freq, dtype=dtype, init=init,
                         seed=seed, weight=weight, trainable=trainable,
                         bounds_check=bounds_check)
        input_length = check_int(input_length, "input_length", min=0, allow_none=True)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self._last_ids = None
        self._last_bad = None

    def __repr__(self):
        extra = self._repr_options()
        if self.input_length is not None:
            extra += f", input_length={self.input_length}"
        if self.mask_zero:
            extra += ", mask_zero=True"
        return (f"Embedding({self.num_embeddings}, {self.embedding_dim}, "
                f"dtype={self.dtype.name}{extra})")

    # -- forward / backward ---------------------------------------------------------------

    def _validated_ids(self, ids, n_threads):
        """(ids, flat ids, resolved n_threads, bad), every id checked against the table.

        ``bad`` is None, or (bounds_check "warn" / "zero") the mask of ids outside the table,
        which are padding."""
        ids_arr, flat = as_ids(ids)
        if self.input_length is not None and (ids_arr.ndim == 0
                                              or ids_arr.shape[-1] != self.input_length):
            raise ValueError(f"ids must have a last axis of input_length="
                             f"{self.input_length}, got shape {ids_arr.shape}")
        n_threads = n_threads_for(n_threads, flat.size * self.embedding_dim)
        bad = invalid_ids(flat, ids_arr.shape, self.num_embeddings, n_threads,
                          self.bounds_check, ids=ids_arr)
        return ids_arr, flat, n_threads, bad

    def forward(self, ids, out=None, *, n_threads=None):
        """Look up ``ids``: returns ``weight[ids]``, of shape ``ids.shape + (D,)``.

        With ``max_norm`` set, the rows looked up are first renormalised in place. The ids are
        remembered for :meth:`backward`. ``layer(ids)`` is the same call.

        Parameters
        ----------
        ids : array-like of int, any shape
            Row ids in ``[0, V)`` (see ``bounds_check`` for ids outside it).
        out, n_threads
            As in :func:`fastembed.gather`, which this is on the layer's table.

        Returns
        -------
        ndarray
            ``weight[ids]``; ``out`` if it was given.

        Raises
        ------
        IndexError, TypeError, ValueError
            As :func:`fastembed.gather` (an id outside the table raises with
            ``bounds_check="raise"``; nothing is written), and ``ids`` whose last axis
            differs from ``input_length``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> layer = Embedding(weight=np.arange(6, dtype=np.float32).reshape(3, 2))
        >>> layer.forward([[2, 0]])
        array([[[4., 5.],
                [0., 1.]]], dtype=float32)
        >>> out = np.empty((2, 2), np.float32)
        >>> layer([1, 1], out=out) is out
        True
        """
        ids_arr, flat, n_threads, bad = self._validated_ids(ids, n_threads)
        out = prepare_out(self.weight, ids_arr.shape, out)  # checked before anything is written
        check_no_overlap(out, ids_arr, "out", "ids")
        if self.max_norm is not None:
            self._renorm(flat if bad is None else flat[~bad])
        if bad is None:
            gather_checked(self.weight, flat, out, n_threads)
        else:
            gather_masked(self.weight, flat, bad, out, n_threads)
        self._last_ids = ids_arr.copy()
        self._last_bad = bad
        return out

    __call__ = forward

    def backward(self, grad_output, ids=None, *, n_threads=None):
        """Gradient of the table for the last forward (or for ``ids``).

        Parameters
        ----------
        grad_output : ndarray, shape ``ids.shape + (D,)``, the table's dtype
            The gradient of the loss with respect to the lookup's output.
        ids : array-like of int, optional
            The ids of the lookup; by default those of the last :meth:`forward`.

        n_threads : int, optional
            As in :func:`fastembed.gather`.

        Returns
        -------
        SparseGrad or None
            The row-sparse gradient of this call (rows ascending, duplicates summed, the
            padding row left out, divided by counts with ``scale_grad_by_freq``); it is also
            added into :attr:`grad`. None for a frozen layer. Its arrays are read-only; when
            :attr:`grad` was empty they are views of the new :attr:`grad`'s (no copy), so
            in-place changes made to :attr:`grad` afterwards show through them.

        Raises
        ------
        RuntimeError
            No ``ids`` and no forward before.
        TypeError, ValueError
            ``grad_output`` of the wrong dtype or shape.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding
        >>> layer = Embedding(4, 2, padding_idx=0, scale_grad_by_freq=True, seed=0)
        >>> _ = layer([0, 1, 1, 3])
        >>> g = layer.backward(np.ones((4, 2), np.float32))
        >>> g.rows                  # the padding row 0 gets nothing
        array([1, 3])
        >>> g.values                # row 1 occurs twice: its sum 2 is divided by 2
        array([[1., 1.],
               [1., 1.]], dtype=float32)
        >>> layer.backward(np.ones((1, 2), np.float32), ids=[3]).rows   # explicit ids
        array([3])
        >>> layer.grad.rows         # both calls were accumulated
        array([1, 3])
        """
        if not self.trainable:
            return None
        if ids is None:
            if self._last_ids is None:
                raise RuntimeError("backward() needs ids: call forward() first or pass ids=")
            ids, bad = self._last_ids, self._last_bad
        else:
            ids, _, _, bad = self._validated_ids(ids, n_threads)
        grad, counts = coalesce_rows(ids, grad_output, self.num_embeddings, n_threads,
                                 dim=self.embedding_dim, dtype=self.dtype, bad=bad)
        return self._finish_grad(grad, counts)

    def backward_and_step(self, grad_output, optimizer, *, n_threads=None):
        """Backward of the last forward fused with ``optimizer``'s update of the touched rows.

        The touched rows' sums are built by the backward's kernels and applied by the
        optimizer's without passing through Python: no :class:`SparseGrad` is made, checked
        or merged, and the sums are divided, checked and applied in parallel while they are in
        cache. The result is bitwise that of
        ``backward(grad_output)`` followed by ``optimizer.step()``. ``layer.grad`` must be
        empty (this applies one batch's gradient alone) and stays empty.

        Parameters
        ----------
        grad_output : ndarray, shape ``ids.shape + (D,)`` of the last forward
            The gradient of the loss with respect to the last lookup's output, in the
            table's dtype.
        optimizer : optimizer of :mod:`fastembed.optim`
            An optimizer holding this layer's :attr:`parameter` (it was given the layer, the
            parameter, or a module's ``parameters()``); its hyper-parameters and state are
            used and updated as by ``step()`` (through its ``fused_step``).
        n_threads : int, optional
            As in :func:`fastembed.gather`.

        Raises
        ------
        RuntimeError
            A frozen layer, no forward before, or a ``layer.grad`` that is not empty.
        ValueError
            A non-finite gradient row (with the optimizer's ``check_finite``), or a layer
            whose parameter the optimizer does not hold; no row is changed.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import Embedding, optim
        >>> layer = Embedding(weight=np.zeros((3, 2), np.float32))
        >>> opt = optim.SGD(layer, lr=0.1)
        >>> _ = layer([1, 1])
        >>> layer.backward_and_step(np.ones((2, 2), np.float32), opt)
        >>> layer.weight
        array([[ 0. ,  0. ],
               [-0.2, -0.2],
               [ 0. ,  0. ]], dtype=float32)
        >>> layer.grad is None
        True
        """
        param = self.parameter
        with optimizer.lock, param.lock:  # the optimizer's lock first, as in step()
            ids, grad2d, n_threads = self._fused_prologue(grad_output, n_threads)
            optimizer.fused_step(param, grad2d, ids.reshape(-1),
                                 divide_by_count=self.scale_grad_by_freq,
                                 skip_row=self.padding_idx, n_threads=n_threads)

    def _fused_prologue(self, grad_output, n_threads):
        last_ids = self._last_ids
        self._check_fused_ready(last_ids is not None)
        assert last_ids is not None  # _check_fused_ready raised otherwise
        ids = as_ids(last_ids)[1]
        grad2d = check_grad(grad_output, last_ids.shape, self.embedding_dim, self.dtype,
                            name="grad_output")
        if self._last_bad is not None:  # padding: no gradient
            keep = ~self._last_bad
            ids, grad2d = np.ascontiguousarray(ids[keep]), np.ascontiguousarray(grad2d[keep])
        return ids, grad2d, n_threads_for(n_threads, ids.size * self.embedding_dim)

    def compute_mask(self, ids):
        """Keras: ``ids != 0`` when ``mask_zero`` is set, else None.

        Parameters
        ----------
        ids : array-like of int, any shape

        Returns
        -------
        ndarray of bool of the shape of ``ids``, or None

        Examples
        --------
        >>> from fastembed import Embedding
        >>> Embedding(5, 2, mask_zero=True).compute_mask([[3, 1, 0, 0]])
        array([[ True,  True, False, False]])
        >>> Embedding(5, 2).compute_mask([[3, 1, 0, 0]]) is None
        True
        """
        if not self.mask_zero:
            return None
        ids_arr, _ = as_ids(ids)
        return ids_arr != 0



class EmbeddingBag(_TableLayer):
    """Pooled lookups: each bag of ids becomes the sum, mean or max of its rows.

    ``layer(ids)`` with 2-D ids pools each row of ids; ``layer(ids, offsets)`` with 1-D ids
    pools ``ids[offsets[b]:offsets[b + 1]]``. The gathered (B, L, D) rows are never built.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        The table's shape (V, D).
    mode : {"sum", "mean", "max"}, default "mean"
    padding_idx : int, optional
        Ids equal to it are left out of the pooling and of the mean's count, and the row
        gets no gradient (it starts as zeros when the layer initialises the table).
    max_norm, norm_type, scale_grad_by_freq, dtype, init, seed, weight, trainable
        As in :class:`Embedding`. ``scale_grad_by_freq`` divides a row's gradient by its count
        in the batch; it does not work with ``mode="max"``.
    bounds_check : {"raise", "warn", "zero"}, default "raise"
        As in :class:`Embedding`; a bad id treated as padding is left out of its bag's
        pooling and of the mean's count.

    Raises
    ------
    ValueError
        An unknown ``mode``, ``scale_grad_by_freq`` with ``mode="max"``, or the errors of
        :class:`Embedding`'s options.

    See Also
    --------
    fastembed.embedding_bag : the same pooling as a function of a table.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import EmbeddingBag
    >>> bag = EmbeddingBag(weight=np.arange(8, dtype=np.float32).reshape(4, 2), mode="sum")
    >>> bag(np.array([0, 1, 3, 2]), offsets=np.array([0, 3]))
    array([[ 8., 11.],
           [ 4.,  5.]], dtype=float32)
    >>> bag.backward(np.ones((2, 2), np.float32)).rows
    array([0, 1, 2, 3])
    """

    def __init__(self, num_embeddings=None, embedding_dim=None, *, mode="mean",
                 padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 dtype=None, init=None, seed=None, weight=None, trainable=True,
                 bounds_check="raise"):
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if mode == "max" and scale_grad_by_freq:
            raise ValueError("scale_grad_by_freq does not work with mode='max'")
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx,
                         max_norm=max_norm, norm_type=norm_type,
                         scale_grad_by_freq=scale_grad_by_freq, dtype=dtype, init=init,
                         seed=seed, weight=weight, trainable=trainable,
                         bounds_check=bounds_check)
        self.mode = mode
        self._last = None

    def __repr__(self):
        return (f"EmbeddingBag({self.num_embeddings}, {self.embedding_dim}, "
                f"mode={self.mode!r}, dtype={self.dtype.name}{self._repr_options()})")

    def forward(self, ids, offsets=None, per_sample_weights=None, include_last_offset=False,
                *, out=None, n_threads=None):
        """Pool the bags; returns a (B, D) array and remembers what backward needs.

        ``layer(ids, offsets)`` is the same call. With ``max_norm`` set, the rows looked up
        are first renormalised in place.

        Parameters
        ----------
        ids, offsets, per_sample_weights, include_last_offset, out, n_threads
            As in :func:`fastembed.embedding_bag`: 2-D ids (one bag per row), or 1-D ids
            cut into bags by ``offsets``.

        Returns
        -------
        ndarray of shape (B, D)
            The pooled rows; empty bags give zeros. ``out`` if it was given.

        Raises
        ------
        IndexError
            An id outside the table (with ``bounds_check="raise"``); nothing is written.
        TypeError, ValueError
            Bad offsets, weights or ``out`` (see :func:`fastembed.embedding_bag`).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import EmbeddingBag
        >>> bag = EmbeddingBag(weight=np.arange(8, dtype=np.float32).reshape(4, 2))
        >>> bag.forward([0, 1, 1, 3], [0, 3], per_sample_weights=np.array([1, 1, 2, 1],
        ...                                                                np.float32))
        array([[1.5, 2.5],
               [6. , 7. ]], dtype=float32)
        >>> bag([[0, 2], [3, 3]])            # 2-D ids: one bag per row (mode "mean")
        array([[2., 3.],
               [6., 7.]], dtype=float32)
        """
        bags = bag_layout(ids, offsets, include_last_offset, per_sample_weights, self.mode,
                           self.dtype)
        n_threads = n_threads_for(n_threads, bags.flat.size * self.embedding_dim)
        bags = checked_bags(bags, self.num_embeddings, n_threads, self.bounds_check)
        out = prepare_bag_out(self.weight, bags.offsets.size - 1, out, bags)  # before writes
        if self.max_norm is not None:
            self._renorm(bags.flat)
        out, denom, argmax = bag_forward(self.weight, bags, self.mode, self.padding_idx,
                                          out, n_threads)
        self._last = (_copy_bags(bags), denom, argmax)
        return out

    __call__ = forward

    def backward(self, grad_output, *, n_threads=None):
        """Gradient of the table for the last forward, for every mode.

        ``sum``: each id of bag b gets ``grad_output[b]`` (times its weight); ``mean``: divided
        by the bag's count (or times wᵢ / Σ w); ``max``: each element of ``grad_output[b]``
        goes to the row that won it in the forward. Returns the SparseGrad (also added into
        :attr:`grad`; read-only, as in :meth:`Embedding.backward`), or None for a frozen
        layer.

        Parameters
        ----------
        grad_output : ndarray, shape (B, D), the table's dtype
            The gradient of the loss with respect to the last forward's output.
        n_threads : int, optional
            As in :func:`fastembed.gather`.

        Returns
        -------
        SparseGrad or None
            Rows ascending, padding left out, divided by counts with
            ``scale_grad_by_freq``.

        Raises
        ------
        RuntimeError, TypeError, ValueError
            As :meth:`Embedding.backward`: no forward before, a ``grad_output`` of the wrong
            dtype or shape.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import EmbeddingBag
        >>> bag = EmbeddingBag(weight=np.arange(8, dtype=np.float32).reshape(4, 2), mode="max")
        >>> bag([[0, 3], [1, 2]])
        array([[6., 7.],
               [4., 5.]], dtype=float32)
        >>> g = bag.backward(np.array([[1, 2], [3, 4]], np.float32))
        >>> g.rows, g.values                 # each bag's gradient goes to the row that won
        (array([2, 3]), array([[3., 4.],
               [1., 2.]], dtype=float32))
        """
        if not self.trainable:
            return None
        if self._last is None:
            raise RuntimeError("backward() needs a forward() first")
        bags, denom, argmax = self._last
        n_bags = bags.offsets.size - 1
        grad_output = check_grad(grad_output, (n_bags,), self.embedding_dim, self.dtype,
                                 name="grad_output")
        n_threads = n_threads_for(n_threads, bags.flat.size * self.embedding_dim)
        grad, counts = bag_backward(bags, self.mode, self.padding_idx, denom, argmax,
                                     grad_output, self.num_embeddings, n_threads)
        return self._finish_grad(grad, counts)

    def backward_and_step(self, grad_output, optimizer, *, n_threads=None):
        """Backward of the last forward fused with ``optimizer``'s update of the touched rows.

        As :meth:`Embedding.backward_and_step`: bitwise equal to ``backward`` then
        ``optimizer.step()``, without building the (U, D) gradient. In ``max`` mode, whose
        gradient is routed element by element, it runs the two steps one after the other.

        Parameters
        ----------
        grad_output : ndarray, shape (B, D), the table's dtype
            The gradient of the loss with respect to the last forward's output.
        optimizer, n_threads
            As in :meth:`Embedding.backward_and_step`.

        Raises
        ------
        RuntimeError, ValueError
            As :meth:`Embedding.backward_and_step`; no row is changed.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import EmbeddingBag, optim
        >>> bag = EmbeddingBag(weight=np.zeros((4, 2), np.float32), mode="mean")
        >>> opt = optim.SGD(bag, lr=1.0)
        >>> _ = bag([[0, 1], [1, 2]])
        >>> bag.backward_and_step(np.ones((2, 2), np.float32), opt)
        >>> bag.weight[:, 0]                 # row 1 is in both bags: 2 x 1/2
        array([-0.5, -1. , -0.5,  0. ], dtype=float32)
        """
        with optimizer.lock, self.parameter.lock:  # the optimizer's lock first, as in step()
            _bag_backward_and_step(self, grad_output, optimizer, n_threads)


def _bag_backward_and_step(layer, grad_output, optimizer, n_threads):
    layer._check_fused_ready(layer._last is not None)
    bags, denom, argmax = layer._last
    grad_output = check_grad(grad_output, (bags.offsets.size - 1,), layer.embedding_dim,
                             layer.dtype, name="grad_output")
    n_threads = n_threads_for(n_threads, bags.flat.size * layer.embedding_dim)
    if layer.mode == "max" or (layer.scale_grad_by_freq and dropped_live_ids(
            bags, layer.mode, layer.padding_idx, denom)):
        # Max routes each element to its own row: no row-grouped sum to fuse. And ids that
        # occur but contribute nothing (mean bags with weights summing to 0) change the
        # counts of scale_grad_by_freq. Both run backward, then step: the same result.
        if layer.parameter not in optimizer:  # fail before computing anything
            raise ValueError("this layer's parameter is not one of the optimizer's "
                             "parameters")
        layer.backward(grad_output, n_threads=n_threads)
        try:
            optimizer.step_parameter(layer.parameter)
        finally:
            layer.zero_grad()
        return
    flat, bag_of, scale = bag_contributions(bags, layer.mode, layer.padding_idx, denom,
                                             layer.dtype)
    optimizer.fused_step(layer.parameter, grad_output, flat, bag_of, scale,
                         divide_by_count=layer.scale_grad_by_freq,
                         skip_row=layer.padding_idx, n_threads=n_threads)


def _copy_bags(bags):
    """The layout, with copies of the caller's arrays (so later edits cannot change backward)."""
    return Bags(bags.shape, bags.flat.copy(), bags.offsets,
                 None if bags.weights is None else bags.weights.copy())
