"""Training loops without autograd: models write their backward passes, the trainer orchestrates.

:class:`Trainer` runs the epochs, decays the learning rate, shows progress, calls callbacks,
evaluates metrics, writes crash-safe checkpoints and resumes from them so that the final
weights are **bitwise equal** to those of an uninterrupted run. It never differentiates
anything: each model does its own forward, backward and update in ``train_step``.

The protocols
-------------
**Model.** Three methods:

- ``train_step(batch, *, lr, rng, optimizer) -> dict``: one forward, backward and update on
  ``batch``. Returns at least ``{"loss": float, "count": int}``: the mean loss of the batch,
  and the number of examples (or tokens) processed, for the throughput display. Any other keys
  are passed on to the callbacks. ``lr`` is the current learning rate; ``rng`` is a
  ``numpy.random.Generator`` owned by the trainer, from which the model draws **all** its
  randomness (negative samples, dropout, seeds for compiled kernels): that is what makes a
  resumed run replay exactly. ``optimizer`` is the trainer's optimizer, or None (models such
  as word2vec apply their own fused SGD update with ``lr``). A model whose ``train_step``
  also takes an ``lr_end`` keyword gets the rate of the next step there, so that it can decay
  the rate within the batch (word2vec does, word by word). A loss that is not finite stops
  the run with ``FloatingPointError`` naming the step and the rate (the model diverged).
- ``state_dict() -> dict[str, numpy.ndarray]`` and ``load_state_dict(d)``, which restore the
  model exactly (needed only with checkpoints).

**Optimizer** (:mod:`fastembed.optim`'s ``SGD``, ``Adagrad``, ``Adam``, ...): a settable
``lr`` attribute, ``state_dict()`` returning nested dicts, lists and tuples of numbers,
strings, None and NumPy arrays, and ``load_state_dict()``. Before each step the trainer sets
``optimizer.lr`` to the scheduled learning rate (the same value it passes as ``lr``).

**Dataset.** Random access, so that a resumed run jumps straight to its position:

- ``num_batches(epoch) -> int``;
- ``batch(epoch, index)``: a deterministic function of ``(epoch, index)`` and the dataset's
  own seed.

:class:`BatchedDataset` implements it for items visited in a per-epoch order and cut into
batches; a subclass defines only ``take(items)``, the batch those items make.
:class:`ArrayDataset` is one over in-memory arrays.

Learning rate
-------------
``schedule="linear"`` (word2vec's): the step with global index ``t`` (0-based, counted over
all epochs) uses ``lr_t = lr - (lr - min_lr) * t / total_steps``. The default ``min_lr`` is
``lr / 250``, gensim's ratio (0.025 -> 0.0001). ``schedule="constant"`` keeps ``lr``.

Checkpoints
-----------
With ``checkpoint_dir`` set, the trainer writes a checkpoint every ``checkpoint_every``
global steps (if given), at the end of every epoch, and when a callback stops training
mid-epoch. Each is one ``.npz`` file, ``ckpt-<global step, 9 digits>.npz``, loadable with
``numpy.load(path, allow_pickle=False)``:

- ``"trainer"``: a 0-d unicode array holding JSON: ``format``, ``version``, the position
  (``epoch``, ``batch`` = the next batch to run in that epoch, ``step`` = steps done), the
  running totals of the epoch in progress, ``history`` and ``config`` (``epochs``, ``lr``,
  ``min_lr``, ``schedule``, ``seed``, ``num_batches`` per epoch);
- ``"model"``, ``"optimizer"``, ``"rng"``: the model's and optimizer's ``state_dict()`` and
  the trainer's ``rng.bit_generator.state``, each stored by :func:`flatten_state` as a JSON
  skeleton under the prefix itself plus one array per leaf array under ``"<prefix>/<path>"``
  (for instance ``"optimizer/state/0/state1"``). Arrays come back bitwise, and numbers,
  strings, bools, None, lists, tuples and dicts exactly. No pickle anywhere.

A checkpoint is written atomically: a temporary file (``.ckpt-*.tmp``) in the same directory
is written, flushed and ``fsync``-ed, then ``os.replace``-d onto the final name, and the
directory is ``fsync``-ed. A crash at any moment leaves either the previous checkpoint or the
new one under a final name, never a partial file; leftover temporary files are ignored, and
deleted when training resumes. Once a new checkpoint is in place, older ones beyond the
newest ``keep`` are deleted.

Resuming
--------
``fit(resume=...)``: None starts fresh (and refuses a ``checkpoint_dir`` that already holds
checkpoints, rather than mixing two runs); True or ``"latest"`` resumes from the newest
readable checkpoint in ``checkpoint_dir``, falling back past unreadable ones with a warning,
and starts fresh (saying so in the log) when there is none, so that scripts can always pass
``resume=True``; a path resumes from that file, and raises ValueError naming it if it is
corrupt. The model, the optimizer, the rng, the position and the history are restored, and
the configuration must match (else ValueError): the final weights are then bitwise those of
an uninterrupted run with the same seed. Checkpoints are taken between steps only: an
exception or Ctrl-C inside a step leaves no checkpoint of that half-done step.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from fastembed.train import ArrayDataset, Trainer
>>> class Mean:
...     '''Learns the mean of its data by SGD on 0.5 * (m - x)**2, with noisy gradients.'''
...     def __init__(self):
...         self.m = np.zeros(1)
...     def train_step(self, batch, *, lr, rng, optimizer):
...         err = self.m - batch                      # d loss / d m, per example
...         noise = rng.normal(0.0, 0.01)             # randomness comes from the trainer's rng
...         self.m -= lr * (err.mean() + noise)
...         return {"loss": float(0.5 * np.mean(err ** 2)), "count": len(batch)}
...     def state_dict(self):
...         return {"m": self.m.copy()}
...     def load_state_dict(self, d):
...         np.copyto(self.m, d["m"])
>>> data = ArrayDataset(np.full(100, 3.0), batch_size=10, seed=0)
>>> with tempfile.TemporaryDirectory() as ckpt:
...     history = Trainer(Mean(), data=data, epochs=4, lr=0.5, checkpoint_dir=ckpt,
...                       progress=False).fit()
...     resumed = Mean()                            # a fresh process would do the same
...     _ = Trainer(resumed, data=data, epochs=4, lr=0.5, checkpoint_dir=ckpt,
...                 progress=False).fit(resume=True)  # the run is complete: nothing to do
>>> [h["epoch"] for h in history]
[0, 1, 2, 3]
>>> round(float(resumed.m[0]), 1)
3.0
"""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import numbers
import os
import pathlib
import re
import reprlib
import struct
import sys
import time
import warnings

import numpy as np

from ._atomic import atomic_write
from ._validation import check_float, check_int, check_positive_int, check_seed, check_size
from ._version import __version__

__all__ = ["ArrayDataset", "BatchedDataset", "Trainer", "flatten_state", "load_checkpoint",
           "unflatten_state"]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "fastembed.train checkpoint"
CHECKPOINT_VERSION = 1
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.npz$")
_TMP_RE = re.compile(r"^\.ckpt-\d+\.npz\..*\.tmp$")
_HOOKS = ("on_train_begin", "on_step_end", "on_epoch_end", "on_train_end")
_HISTORY_KEYS = ("epoch", "loss", "count", "steps", "seconds", "lr")
_DISPLAY_INTERVAL = 0.5   # seconds between two updates of the progress bar's numbers
_GENSIM_LR_RATIO = 250.0  # gensim decays alpha from 0.025 to min_alpha 0.0001


# ----------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------

def _takes_keyword(fn, name):
    """Whether the callable ``fn`` accepts the keyword argument ``name``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params


def _as_number(x):
    """A plain Python int or float (NumPy scalars are not JSON-serialisable)."""
    return int(x) if isinstance(x, numbers.Integral) else float(x)


# ----------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------

class BatchedDataset:
    """Random access to the batches of ``n`` items, visited in a new order every epoch.

    The base of :class:`ArrayDataset`, :class:`~fastembed.models.classifier.BagDataset` and
    :class:`~fastembed.models.word2vec.CorpusDataset`. Epoch ``e`` visits the items in the
    order :meth:`permutation` gives and cuts that order into batches of consecutive
    positions: ``batch_size`` of them each (the last batch may be smaller), or between
    ``bounds``. The base owns the order, the batch count and the argument checks; a subclass
    says only what the batch made of some items is, in :meth:`take`.

    Parameters
    ----------
    n : int
        The number of items (examples, documents, sentences).
    batch_size : int, optional
        Items per batch (>= 1). Give it or ``bounds``.
    bounds : array-like of int, optional
        Batches of uneven sizes: batch ``i`` holds the positions ``bounds[i]:bounds[i + 1]``
        of the epoch's order (non-decreasing, from 0, at most ``n``).
    shuffle : bool, default True
        Visit the items in a new order each epoch: the permutation of epoch ``e`` is
        ``np.random.default_rng([seed, e]).permutation(n)``.
    seed : int, default 0
        The dataset's own seed (independent of the trainer's).
    drop_last : bool, default False
        Leave out the last batch of an epoch when it is smaller than ``batch_size``.

    Notes
    -----
    ``batch(epoch, index)`` depends only on ``(epoch, index)`` and the seed, so a resumed run
    can start at any batch. The permutation of the most recent epoch is cached.

    Examples
    --------
    A dataset of the squares 0, 1, 4, 9, 16: ``take`` is all a subclass writes.

    >>> import numpy as np
    >>> from fastembed.train import BatchedDataset
    >>> class Squares(BatchedDataset):
    ...     def take(self, items):
    ...         return np.arange(len(self))[items] ** 2
    >>> data = Squares(5, batch_size=2, shuffle=False)
    >>> data.num_batches(), data.batch(0, 1), data.batch(0, 2)
    (3, array([4, 9]), array([16]))
    >>> shuffled = Squares(5, batch_size=2, seed=0)
    >>> sorted(np.concatenate([shuffled.batch(1, i) for i in range(3)]).tolist())
    [0, 1, 4, 9, 16]
    >>> Squares(5, bounds=[0, 1, 5], shuffle=False).batch(0, 1)
    array([ 1,  4,  9, 16])
    """

    def __init__(self, n, *, batch_size=None, bounds=None, shuffle=True, seed=0,
                 drop_last=False):
        self._n = check_size(n, "n")
        if bounds is None:
            self.batch_size = check_positive_int(batch_size, "batch_size")
        elif batch_size is not None or drop_last:
            raise TypeError("give batch_size (and drop_last) or bounds, not both")
        else:
            bounds = np.asarray(bounds, dtype=np.int64)
            if (bounds.ndim != 1 or not bounds.size or bounds[0] != 0
                    or bounds[-1] > self._n or (np.diff(bounds) < 0).any()):
                raise ValueError(f"bounds must be non-decreasing positions from 0 to at most "
                                 f"n = {self._n}")
            self.batch_size = None
        self._bounds = bounds
        self.shuffle = bool(shuffle)
        self.seed = check_seed(seed)  # runs (and resumes) are reproducible by design
        self.drop_last = bool(drop_last)
        self._order: tuple = (None, None)  # (epoch, permutation): the last epoch's

    def __len__(self):
        return self._n

    def num_batches(self, epoch=0):
        """Batches per epoch (the same for every epoch).

        Parameters
        ----------
        epoch : int, default 0
            Unused: every epoch has as many batches (part of the dataset protocol).

        Returns
        -------
        int
            ``ceil(n / batch_size)``, or ``n // batch_size`` with ``drop_last``, or
            ``len(bounds) - 1``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.train import ArrayDataset
        >>> ArrayDataset(np.arange(10), batch_size=4).num_batches()
        3
        >>> ArrayDataset(np.arange(10), batch_size=4, drop_last=True).num_batches()
        2
        """
        if self._bounds is not None:
            return int(self._bounds.size - 1)
        if self.drop_last:
            return self._n // self.batch_size
        return -(-self._n // self.batch_size)

    def permutation(self, epoch):
        """The order in which epoch ``epoch`` visits the items (read-only).

        Parameters
        ----------
        epoch : int
            A non-negative epoch index.

        Returns
        -------
        ndarray of int64, shape (n,)
            ``np.random.default_rng([seed, epoch]).permutation(n)``, or ``arange(n)`` without
            shuffling.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.train import ArrayDataset
        >>> data = ArrayDataset(np.arange(5), batch_size=2, seed=0)
        >>> order = data.permutation(0)
        >>> sorted(order.tolist())
        [0, 1, 2, 3, 4]
        >>> bool((ArrayDataset(np.arange(5), batch_size=2, seed=0).permutation(0) == order).all())
        True
        >>> ArrayDataset(np.arange(5), batch_size=2, shuffle=False).permutation(3)
        array([0, 1, 2, 3, 4])
        """
        epoch = check_int(epoch, "epoch", min=0)
        if self._order[0] != epoch:
            order = (np.random.default_rng([self.seed, epoch]).permutation(self._n)
                     if self.shuffle else np.arange(self._n))
            order.flags.writeable = False
            self._order = (epoch, order)
        return self._order[1]

    def batch(self, epoch, index):
        """Batch ``index`` of epoch ``epoch``: :meth:`take` of the items it holds.

        Parameters
        ----------
        epoch : int
            A non-negative epoch index (it picks the permutation).
        index : int
            The batch, in ``[0, num_batches(epoch))``.

        Returns
        -------
        object
            ``take(permutation(epoch)[lo:hi])``, where ``lo:hi`` are the positions of batch
            ``index``; without shuffling, ``take(slice(lo, hi))``.

        Raises
        ------
        IndexError
            ``index`` out of range.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.train import ArrayDataset
        >>> data = ArrayDataset(np.arange(5), np.arange(5) * 10, batch_size=2, shuffle=False)
        >>> data.batch(0, 2)
        (array([4]), array([40]))
        >>> data.batch(0, 3)
        Traceback (most recent call last):
        ...
        IndexError: batch index 3 out of range: epoch 0 has 3 batches
        """
        index = check_int(index, "index")
        nb = self.num_batches(epoch)
        if not 0 <= index < nb:
            raise IndexError(f"batch index {index} out of range: epoch {epoch} has {nb} "
                             f"batches")
        if self._bounds is None:
            lo = index * self.batch_size
            hi = min(lo + self.batch_size, self._n)
        else:
            lo, hi = int(self._bounds[index]), int(self._bounds[index + 1])
        if self.shuffle:
            return self.take(self.permutation(epoch)[lo:hi])
        check_int(epoch, "epoch", min=0)
        return self.take(slice(lo, hi))

    def take(self, items):
        """The batch made of ``items``: each subclass defines it.

        Parameters
        ----------
        items : slice or array-like of int
            Item indices in ``[0, n)``, in batch order. :meth:`batch` passes a slice of
            consecutive items when the dataset is not shuffled, an int array otherwise; both
            index a NumPy array.

        Returns
        -------
        object
            The batch, as the model's ``train_step`` takes it.

        Examples
        --------
        >>> from fastembed.train import BatchedDataset
        >>> BatchedDataset(3, batch_size=2).take([0, 1])
        Traceback (most recent call last):
        ...
        NotImplementedError: a subclass of BatchedDataset defines take(items)
        """
        raise NotImplementedError(f"a subclass of {type(self).__name__} defines take(items)")


class ArrayDataset(BatchedDataset):
    """Mini-batches of aligned in-memory arrays, shuffled per epoch, with random access.

    A :class:`BatchedDataset` whose items are the examples, the rows along the first axis of
    every array. A batch is a tuple of arrays, one per input array, or the array itself when
    one array was given: views when ``shuffle=False``, copies otherwise.

    Parameters
    ----------
    *arrays : array-like
        One or more arrays with the same length along their first axis (the examples).
    batch_size, shuffle, seed, drop_last
        As in :class:`BatchedDataset`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.train import ArrayDataset
    >>> x, y = np.arange(10) * 10, np.arange(10)
    >>> data = ArrayDataset(x, y, batch_size=4, seed=0)
    >>> len(data), data.num_batches(0)
    (10, 3)
    >>> xb, yb = data.batch(0, 2)       # the last batch of epoch 0: 2 examples
    >>> len(yb), bool((xb == 10 * yb).all())
    (2, True)
    >>> ArrayDataset(x, batch_size=4, shuffle=False).batch(0, 1)
    array([40, 50, 60, 70])
    """

    def __init__(self, *arrays, batch_size, shuffle=True, seed=0, drop_last=False):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        for k, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"array {k} is 0-d: arrays need a first axis of examples")
        lengths = [a.shape[0] for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"the arrays must have the same length, got lengths {lengths}")
        self.arrays = arrays
        super().__init__(lengths[0], batch_size=batch_size, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)

    def __repr__(self):
        return (f"ArrayDataset({len(self.arrays)} array(s) of {len(self)} examples, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last})")

    def take(self, items):
        """The examples ``items`` of every array: a tuple of arrays, or the one array.

        Parameters
        ----------
        items : slice or array-like of int
            Example indices; a slice gives views.

        Returns
        -------
        ndarray or tuple of ndarray

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.train import ArrayDataset
        >>> ArrayDataset(np.arange(5) * 10, np.arange(5), batch_size=2).take([4, 0])
        (array([40,  0]), array([4, 0]))
        """
        parts = tuple(a[items] for a in self.arrays)
        return parts[0] if len(parts) == 1 else parts


# ----------------------------------------------------------------------------------------
# Nested state <-> flat arrays
# ----------------------------------------------------------------------------------------

def _escape(key):
    # Paths join keys with "/": escaping "%" and "/" keeps distinct keys distinct.
    return key.replace("%", "%25").replace("/", "%2F")


def _encode(obj, prefix, path, arrays):
    """The JSON skeleton of ``obj``; its arrays go into ``arrays`` under path-named keys.

    Skeleton: None, bools, ints, strings and finite floats as themselves (Python's float repr
    round-trips exactly), lists as lists; everything else is a one-key object:
    ``{"dict": {...}}``, ``{"tuple": [...]}``, ``{"array": key}``, ``{"scalar": key}`` (a NumPy
    scalar, stored as a 0-d array) or ``{"float": "<16 hex digits>"}`` (a non-finite float,
    by its bits).
    """
    where = "/".join([prefix] + path)
    if isinstance(obj, (np.ndarray, np.generic)):  # before str/float: np.str_, np.float64
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError(f"{where}: arrays of Python objects cannot be stored without "
                            f"pickle")
        key = prefix + "/" + "/".join(path)  # never equal to prefix, the skeleton's key
        arrays[key] = arr
        return {"array" if isinstance(obj, np.ndarray) else "scalar": key}
    if obj is None or isinstance(obj, (bool, str)):
        return str(obj) if isinstance(obj, str) else obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return {"float": struct.pack(">d", obj).hex()}
    if isinstance(obj, list):
        return [_encode(v, prefix, path + [str(i)], arrays) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, prefix, path + [str(i)], arrays)
                          for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: dict keys must be strings, got "
                                f"{type(key).__name__} {key!r}")
            out[str(key)] = _encode(value, prefix, path + [_escape(key)], arrays)
        return {"dict": out}
    raise TypeError(f"{where}: cannot store a {type(obj).__name__} (only arrays, NumPy "
                    f"scalars, None, bool, int, float, str, list, tuple and dict)")


def _decode(node, arrays):
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise ValueError(f"malformed state skeleton node {reprlib.repr(node)}")
    (tag, value), = node.items()
    if tag == "dict":
        return {key: _decode(v, arrays) for key, v in value.items()}
    if tag == "tuple":
        return tuple(_decode(v, arrays) for v in value)
    if tag == "array":
        return arrays[value]
    if tag == "scalar":
        return arrays[value][()]
    if tag == "float":
        return struct.unpack(">d", bytes.fromhex(value))[0]
    raise ValueError(f"malformed state skeleton: unknown tag {tag!r}")


def flatten_state(state, prefix):
    """Flatten a nested state into a dict of arrays that ``numpy.savez`` can store.

    Parameters
    ----------
    state : nested dict / list / tuple
        Leaves may be NumPy arrays (any dtype but ``object``), NumPy scalars, None, bools,
        ints, floats and strings. Dict keys must be strings.
    prefix : str
        A name without ``"/"``: the JSON skeleton is stored under ``prefix`` (a 0-d unicode
        array) and each array under ``prefix + "/" + path``, e.g. ``"opt/state/0/m"``.

    Returns
    -------
    dict of str to ndarray
        The arrays are the state's own objects, not copies.

    See Also
    --------
    unflatten_state : the inverse; exact: arrays bitwise, numbers and containers by type.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.train import flatten_state, unflatten_state
    >>> state = {"hyper": {"lr": 0.1, "betas": (0.9, 0.999)}, "steps": [3],
    ...          "state": [{"m": np.zeros(2)}]}
    >>> flat = flatten_state(state, "opt")
    >>> sorted(flat)
    ['opt', 'opt/state/0/m']
    >>> unflatten_state(flat, "opt")["hyper"]
    {'lr': 0.1, 'betas': (0.9, 0.999)}
    """
    if not isinstance(prefix, str) or not prefix or "/" in prefix:
        raise ValueError(f"prefix must be a non-empty string without '/', got {prefix!r}")
    arrays: dict = {}
    skeleton = _encode(state, prefix, [], arrays)
    arrays[prefix] = np.array(json.dumps(skeleton, allow_nan=False))
    return arrays


def unflatten_state(arrays, prefix):
    """Rebuild the state that :func:`flatten_state` stored under ``prefix``.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        For instance ``np.load(path, allow_pickle=False)`` of a file written by ``np.savez``
        from :func:`flatten_state`'s output.
    prefix : str

    Returns
    -------
    object
        The state, with the mapping's arrays (not copies), tuples as tuples and NumPy scalars
        with their dtypes.

    Raises
    ------
    KeyError
        Nothing is stored under ``prefix``.

    See Also
    --------
    flatten_state : the inverse.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from fastembed.train import flatten_state, unflatten_state
    >>> state = {"a": (1, np.float32(2.5)), "b": [np.arange(2)], "c": None}
    >>> buffer = io.BytesIO()
    >>> np.savez(buffer, **flatten_state(state, "s"))
    >>> _ = buffer.seek(0)
    >>> with np.load(buffer, allow_pickle=False) as arrays:
    ...     unflatten_state(arrays, "s")
    {'a': (1, np.float32(2.5)), 'b': [array([0, 1])], 'c': None}
    """
    try:
        skeleton = json.loads(str(np.asarray(arrays[prefix])[()]))
    except KeyError:
        raise KeyError(f"no state stored under prefix {prefix!r}") from None
    return _decode(skeleton, arrays)


# ----------------------------------------------------------------------------------------
# Checkpoint files
# ----------------------------------------------------------------------------------------

def _list_checkpoints(directory):
    """[(step, path)] of the checkpoint files in ``directory``, ascending by step."""
    found: list = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for name in names:
        m = _CKPT_RE.match(name)
        if m:
            found.append((int(m.group(1)), pathlib.Path(directory) / name))
    found.sort()
    return found


def _clean_temp_files(directory):
    for name in os.listdir(directory):
        if _TMP_RE.match(name):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
                logger.info("removed the leftover temporary file %s",
                            os.path.join(directory, name))


def load_checkpoint(path):
    """Read a checkpoint written by :class:`Trainer`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``{"model": state_dict, "optimizer": state_dict or None, "rng": bit generator
        state, "trainer": dict}``; ``"trainer"`` holds the position, history and config.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is truncated, corrupt or not a checkpoint; the message names it.

    Examples
    --------
    Load the weights of a run for inference, without a Trainer:

    >>> import tempfile
    >>> import numpy as np
    >>> from fastembed.train import ArrayDataset, Trainer, load_checkpoint
    >>> class Count:
    ...     def __init__(self):
    ...         self.steps = np.zeros(1)
    ...     def train_step(self, batch, *, lr, rng, optimizer):
    ...         self.steps += 1
    ...         return {"loss": 0.0, "count": len(batch)}
    ...     def state_dict(self):
    ...         return {"steps": self.steps.copy()}
    ...     def load_state_dict(self, d):
    ...         np.copyto(self.steps, d["steps"])
    >>> with tempfile.TemporaryDirectory() as ckpt:
    ...     trainer = Trainer(Count(), data=ArrayDataset(np.ones(4), batch_size=2),
    ...                       checkpoint_dir=ckpt, progress=False)
    ...     _ = trainer.fit()
    ...     checkpoint = load_checkpoint(trainer.last_checkpoint)
    >>> sorted(checkpoint)
    ['model', 'optimizer', 'rng', 'trainer']
    >>> checkpoint["model"], checkpoint["trainer"]["step"]
    ({'steps': array([2.])}, 2)
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        # Read every member now: zip checks each one's CRC as it is read, so corruption
        # anywhere is found here, before anything is restored.
        with open(path, "rb") as f:  # our own handle: closed even when np.load fails
            if f.read(4) != b"PK\x03\x04":
                raise ValueError("it is not an npz (zip) file")
            f.seek(0)
            with np.load(f, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        trainer = json.loads(str(arrays["trainer"][()]))
        if not isinstance(trainer, dict) or trainer.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("it is not a fastembed.train checkpoint")
        if trainer.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unsupported checkpoint version {trainer.get('version')!r}")
        model = unflatten_state(arrays, "model")
        optimizer = unflatten_state(arrays, "optimizer") if trainer["has_optimizer"] else None
        rng = unflatten_state(arrays, "rng")
        for key in ("epoch", "batch", "step", "history", "config", "epoch_progress"):
            trainer[key]  # noqa: B018 - a missing key is corruption, raised below
    except (PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # zipfile, zlib, json, numpy and key errors alike
        raise ValueError(f"checkpoint {path} is unreadable (truncated, corrupt or not a "
                         f"checkpoint): {type(exc).__name__}: {exc}") from exc
    return {"model": model, "optimizer": optimizer, "rng": rng, "trainer": trainer}


# ----------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------

class Trainer:
    """Run ``model.train_step`` over a dataset for some epochs; checkpoint and resume exactly.

    Parameters
    ----------
    model : object
        Has ``train_step(batch, *, lr, rng, optimizer) -> {"loss", "count", ...}``, and
        ``state_dict()`` / ``load_state_dict()`` when checkpointing (see the module docstring).
    optimizer : optional
        Has a settable ``lr`` (set before each step), and ``state_dict()`` /
        ``load_state_dict()``. None for models that update themselves.
    data : dataset
        Has ``num_batches(epoch)`` and ``batch(epoch, index)``, e.g. :class:`ArrayDataset`.
    epochs : int, default 1
    lr : float, default 0.025
        The learning rate of the first step.
    min_lr : float, optional
        The rate the linear schedule decays towards (reached after the last step);
        ``lr / 250`` by default (gensim's 0.025 -> 0.0001). Must lie in [0, lr].
    schedule : {"linear", "constant"}, default "linear"
        ``lr_t = lr - (lr - min_lr) * t / total_steps`` for the step of global index t, or lr.
    seed : int, default 0
        Seeds ``trainer.rng = np.random.default_rng(seed)``, the Generator passed to every
        ``train_step``.
    checkpoint_dir : str or os.PathLike, optional
        Where to write ``ckpt-<step>.npz`` files (created if needed). None: no checkpoints.
    checkpoint_every : int, optional
        Also checkpoint every this many global steps (needs ``checkpoint_dir``).
    keep : int or None, default 3
        How many of the newest checkpoints to keep; None keeps all.
    callbacks : sequence of objects
        With any of ``on_train_begin(trainer)``, ``on_step_end(trainer, step, logs)``,
        ``on_epoch_end(trainer, epoch, logs)``, ``on_train_end(trainer, history)``. A callback
        may set ``trainer.stop_training = True``: training stops after the current step
        (with a checkpoint, if checkpointing), and ``fit(resume=True)`` later continues it.
    metrics : dict of str to callable, optional
        ``name -> f(model) -> float``, evaluated at the end of each epoch; stored in the
        history and the epoch logs under ``name``.
    progress : bool or None, default True
        Show a tqdm progress bar (epoch, running mean loss, count/s). None shows it only on
        a terminal. On a non-terminal stream it prints rarely (every 30 s at most).

    Attributes
    ----------
    step : int
        Steps done, over all epochs (the global step).
    epoch : int
        The epoch in progress (0-based); ``epochs`` once training is complete.
    batch : int
        The index of the next batch to run in ``epoch``.
    history : list of dict
        One dict per completed epoch: ``epoch``, ``loss`` (mean of the batch losses),
        ``count`` (summed), ``steps``, ``seconds``, ``lr`` (of the epoch's last step), and
        one entry per metric.
    rng : numpy.random.Generator
    stop_training : bool
    total_steps, num_batches : int, list of int
    last_checkpoint : pathlib.Path or None

    Notes
    -----
    ``on_step_end`` gets ``step`` = ``trainer.step`` (1 after the first step) and the dict
    returned by ``train_step`` plus ``epoch``, ``batch`` (the index just run) and ``lr``.
    ``on_epoch_end`` gets the index of the epoch just finished and its history entry; by then
    ``trainer.epoch`` already points to the next epoch, so a checkpoint saved from it
    resumes there. The per-step overhead is a few microseconds: the progress bar's numbers
    change every 0.5 s at most.

    Examples
    --------
    See the module docstring for a complete model. With a dataset ``data`` and a model::

        trainer = Trainer(model, optim.Adam(model.embedding, lr=0.01), data=data, epochs=5,
                          lr=0.01, checkpoint_dir="run", checkpoint_every=1000)
        history = trainer.fit(resume=True)   # continues the newest checkpoint, if any

    >>> import numpy as np
    >>> from fastembed.train import ArrayDataset, Trainer
    >>> class Constant:                       # a model that only reports
    ...     def train_step(self, batch, *, lr, rng, optimizer):
    ...         return {"loss": float(batch.mean()), "count": batch.size}
    >>> trainer = Trainer(Constant(), data=ArrayDataset(np.ones(8), batch_size=4), epochs=2,
    ...                   lr=1.0, progress=False)
    >>> [(h["epoch"], h["loss"], h["count"], h["steps"]) for h in trainer.fit()]
    [(0, 1.0, 8, 2), (1, 1.0, 8, 2)]
    >>> [trainer.lr_at(t) for t in range(4)]   # lr - (lr - lr / 250) * t / 4
    [1.0, 0.751, 0.502, 0.253]
    """

    def __init__(self, model, optimizer=None, *, data, epochs=1, lr=0.025, min_lr=None,
                 schedule="linear", seed=0, checkpoint_dir=None, checkpoint_every=None,
                 keep=3, callbacks=(), metrics=None, progress=True):
        if not callable(getattr(model, "train_step", None)):
            raise TypeError(f"model must have a train_step(batch, *, lr, rng, optimizer) "
                            f"method; {type(model).__name__} has none")
        for name in ("num_batches", "batch"):
            if not callable(getattr(data, name, None)):
                raise TypeError(f"data must have num_batches(epoch) and batch(epoch, index); "
                                f"{type(data).__name__} has no {name}")
        if optimizer is not None and not hasattr(optimizer, "lr"):
            raise TypeError(f"optimizer must have a settable lr attribute; "
                            f"{type(optimizer).__name__} has none")
        self.epochs = check_positive_int(epochs, "epochs")
        self.lr = check_float(lr, "lr", min=0, min_open=True)
        if min_lr is None:
            min_lr = self.lr / _GENSIM_LR_RATIO
        self.min_lr = check_float(min_lr, "min_lr", min=0, max=self.lr, allow_none=True)
        if schedule not in ("linear", "constant"):
            raise ValueError(f"schedule must be 'linear' or 'constant', got {schedule!r}")
        self.schedule = schedule
        self.seed = check_seed(seed)  # runs (and resumes) are reproducible by design
        self.checkpoint_dir = (None if checkpoint_dir is None
                               else pathlib.Path(os.fspath(checkpoint_dir)))
        if checkpoint_every is not None:
            checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every",
                                                  allow_none=True)
            if self.checkpoint_dir is None:
                raise ValueError("checkpoint_every needs a checkpoint_dir")
        self.checkpoint_every = checkpoint_every
        self.keep = check_positive_int(keep, "keep", allow_none=True)
        if self.checkpoint_dir is not None:
            needs = [(model, "model", "state_dict"), (model, "model", "load_state_dict")]
            if optimizer is not None:
                needs += [(optimizer, "optimizer", "state_dict"),
                          (optimizer, "optimizer", "load_state_dict")]
            for obj, what, method in needs:
                if not callable(getattr(obj, method, None)):
                    raise TypeError(f"checkpointing needs {what}.{method}(); "
                                    f"{type(obj).__name__} has none")
        self.callbacks = list(callbacks)
        metrics = {} if metrics is None else dict(metrics)
        for name, fn in metrics.items():
            if not isinstance(name, str) or name in _HISTORY_KEYS:
                raise ValueError(f"metric names must be strings other than "
                                 f"{list(_HISTORY_KEYS)}, got {name!r}")
            if not callable(fn):
                raise TypeError(f"metric {name!r} must be a callable f(model) -> float")
        self.metrics = metrics
        if progress not in (True, False, None):
            raise ValueError(f"progress must be True, False or None, got {progress!r}")
        self.progress = progress
        self.model = model
        self.optimizer = optimizer
        self.data = data
        self.num_batches = [check_int(data.num_batches(e), f"num_batches({e})", min=0)
                            for e in range(self.epochs)]
        self.total_steps = sum(self.num_batches)
        self.last_checkpoint = None
        self._reset()

    # -- schedule -----------------------------------------------------------------------

    def lr_at(self, step):
        """The learning rate of the step with global index ``step`` (0-based).

        Parameters
        ----------
        step : int
            Counted over all epochs, from 0 to ``total_steps - 1``.

        Returns
        -------
        float
            ``lr - (lr - min_lr) * step / total_steps`` for the linear schedule, ``lr`` for the
            constant one.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.train import ArrayDataset, Trainer
        >>> class Noop:
        ...     def train_step(self, batch, *, lr, rng, optimizer):
        ...         return {"loss": 0.0, "count": len(batch)}
        >>> trainer = Trainer(Noop(), data=ArrayDataset(np.zeros(10), batch_size=1), lr=1.0,
        ...                   min_lr=0.0, progress=False)
        >>> trainer.total_steps, trainer.lr_at(0), trainer.lr_at(5)
        (10, 1.0, 0.5)
        """
        if self.schedule == "constant":
            return self.lr
        return self.lr - (self.lr - self.min_lr) * step / max(self.total_steps, 1)

    # -- state --------------------------------------------------------------------------

    def _reset(self):
        self.rng = np.random.default_rng(self.seed)
        self.step = 0
        self.epoch = 0
        self.batch = 0
        self.history = []
        self.stop_training = False
        self._new_epoch_totals()
        self._saved_position = self._position()

    def _new_epoch_totals(self, loss_sum=0.0, count=0, steps=0, seconds=0.0, lr=None):
        self._loss_sum = loss_sum
        self._count = count
        self._steps = steps
        self._seconds = seconds          # of this epoch, before the current segment
        self._last_lr = lr
        self._segment_t0 = time.perf_counter()

    def _position(self):
        return (self.step, self.epoch, self.batch)

    def _config(self):
        return {"epochs": self.epochs, "lr": self.lr, "min_lr": self.min_lr,
                "schedule": self.schedule, "seed": self.seed,
                "num_batches": list(self.num_batches)}

    def _trainer_state(self):
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "fastembed_version": __version__,
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "epoch_progress": {
                "loss_sum": self._loss_sum, "count": _as_number(self._count),
                "steps": self._steps,
                "seconds": self._seconds + (time.perf_counter() - self._segment_t0),
                "lr": self._last_lr},
            "history": self.history,
            "config": self._config(),
            "has_optimizer": self.optimizer is not None,
            "saved_at": time.time(),
        }

    # -- checkpoints ----------------------------------------------------------------------

    def save_checkpoint(self):
        """Write a checkpoint of the current position now; returns its path.

        Callbacks may call it (in ``on_step_end`` or ``on_epoch_end``). It is atomic, and
        older checkpoints beyond the newest ``keep`` are deleted once it is in place.

        Returns
        -------
        pathlib.Path
            ``checkpoint_dir / "ckpt-<step, 9 digits>.npz"``, also :attr:`last_checkpoint`.

        Raises
        ------
        ValueError
            The trainer has no ``checkpoint_dir``.

        Examples
        --------
        >>> import tempfile
        >>> from fastembed.train import ArrayDataset, Trainer
        >>> class Still:                     # a model with nothing to learn
        ...     state_dict = dict
        ...     def train_step(self, batch, **kwargs):
        ...         return {"loss": 0.0, "count": len(batch)}
        ...     def load_state_dict(self, state):
        ...         pass
        >>> with tempfile.TemporaryDirectory() as ckpt:
        ...     trainer = Trainer(Still(), data=ArrayDataset(range(3), batch_size=1),
        ...                       checkpoint_dir=ckpt, progress=False)
        ...     print(trainer.save_checkpoint().name)      # before any step
        ...     _ = trainer.fit(resume=True)
        ...     print(trainer.last_checkpoint.name)        # the epoch's end
        ckpt-000000000.npz
        ckpt-000000003.npz
        """
        if self.checkpoint_dir is None:
            raise ValueError("save_checkpoint() needs a checkpoint_dir")
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        arrays = flatten_state(self.model.state_dict(), "model")
        if self.optimizer is not None:
            arrays.update(flatten_state(self.optimizer.state_dict(), "optimizer"))
        arrays.update(flatten_state(self.rng.bit_generator.state, "rng"))
        arrays["trainer"] = np.array(json.dumps(self._trainer_state()))
        path = self.checkpoint_dir / f"ckpt-{self.step:09d}.npz"
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)
        self._saved_position = self._position()
        self.last_checkpoint = path
        self._rotate(self.step)
        return path

    def _rotate(self, current):
        """Delete older checkpoints beyond the newest ``keep``.

        Files of later steps (left by a run that was resumed from further back) are not
        counted or touched: the resumed run overwrites them as it reaches their steps.
        """
        if self.keep is None:
            return
        older = [p for s, p in _list_checkpoints(self.checkpoint_dir) if s < current]
        for p in older[:max(len(older) - (self.keep - 1), 0)]:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def _latest(self):
        """(checkpoint, path) of the newest readable checkpoint, or (None, None) if none."""
        found = _list_checkpoints(self.checkpoint_dir)
        errors = []
        for _, path in reversed(found):
            try:
                return load_checkpoint(path), path
            except (ValueError, OSError) as exc:
                errors.append(str(exc))
                warnings.warn(f"skipping an unreadable checkpoint: {exc}", RuntimeWarning,
                              stacklevel=4)
        if found:
            raise ValueError(f"no readable checkpoint in {self.checkpoint_dir}: "
                             + "; ".join(errors))
        return None, None

    def _prepare(self, resume):
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if resume is None or resume is False:
            if self.checkpoint_dir is not None:
                existing = _list_checkpoints(self.checkpoint_dir)
                if existing:
                    raise FileExistsError(
                        f"{self.checkpoint_dir} already holds checkpoints (newest: "
                        f"{existing[-1][1].name}): pass resume=True to continue that run, "
                        f"or use an empty checkpoint_dir to start a new one")
                _clean_temp_files(self.checkpoint_dir)
            self._reset()
            return
        if resume is True or (isinstance(resume, str) and resume == "latest"):
            if self.checkpoint_dir is None:
                raise ValueError("resume=True needs a checkpoint_dir to look in")
            _clean_temp_files(self.checkpoint_dir)
            ckpt, path = self._latest()
            if ckpt is None:
                logger.warning("no checkpoint in %s: starting a fresh run",
                               self.checkpoint_dir)
                self._reset()
                return
        elif isinstance(resume, (str, os.PathLike)):
            path = pathlib.Path(os.fspath(resume))
            ckpt = load_checkpoint(path)
            if self.checkpoint_dir is not None:
                _clean_temp_files(self.checkpoint_dir)
        else:
            raise TypeError(f"resume must be None, True, 'latest' or a path, got "
                            f"{type(resume).__name__}")
        self._restore(ckpt, path)

    def _restore(self, ckpt, path):
        state = ckpt["trainer"]
        saved, mine = state["config"], self._config()
        diffs = [f"{key}: checkpoint {reprlib.repr(saved.get(key))}, "
                 f"trainer {reprlib.repr(mine[key])}"
                 for key in mine if saved.get(key) != mine[key]]
        if diffs:
            raise ValueError(f"checkpoint {path} belongs to a run with another configuration "
                             f"and cannot be resumed by this trainer ({'; '.join(diffs)})")
        if state["has_optimizer"] != (self.optimizer is not None):
            raise ValueError(f"checkpoint {path} was written "
                             f"{'with' if state['has_optimizer'] else 'without'} an optimizer, "
                             f"this trainer has {'one' if self.optimizer else 'none'}")
        epoch, batch, step = (int(state[k]) for k in ("epoch", "batch", "step"))
        if not (0 <= epoch <= self.epochs
                and 0 <= batch <= (self.num_batches[epoch] if epoch < self.epochs else 0)
                and step == sum(self.num_batches[:epoch]) + batch):
            raise ValueError(f"checkpoint {path} holds an impossible position: epoch {epoch}, "
                             f"batch {batch}, step {step}")
        self.model.load_state_dict(ckpt["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        rng = np.random.default_rng(self.seed)
        rng.bit_generator.state = ckpt["rng"]
        self.rng = rng
        self.step, self.epoch, self.batch = step, epoch, batch
        self.history = list(state["history"])
        self.stop_training = False
        p = state["epoch_progress"]
        self._new_epoch_totals(p["loss_sum"], p["count"], p["steps"], p["seconds"], p["lr"])
        self._saved_position = self._position()
        self.last_checkpoint = path
        logger.info("resumed from %s: epoch %d, batch %d, step %d", path, epoch, batch, step)
        if self.checkpoint_dir is not None:
            later = [p.name for s, p in _list_checkpoints(self.checkpoint_dir) if s > step]
            if later:
                logger.info("%s holds checkpoints past step %d (%s); they will be "
                            "overwritten as training reaches them", self.checkpoint_dir,
                            step, ", ".join(later))

    # -- the loop -----------------------------------------------------------------------

    def fit(self, resume=None):
        """Train to the end of the last epoch (or until a callback stops training).

        Parameters
        ----------
        resume : None, True, "latest" or path, default None
            None starts fresh (a ``checkpoint_dir`` holding checkpoints raises
            FileExistsError). True / "latest": continue from the newest readable checkpoint
            in ``checkpoint_dir``, or start fresh if there is none. A path: continue from that
            checkpoint (ValueError, naming it, if it is unreadable).

        Returns
        -------
        list of dict
            :attr:`history`, one entry per completed epoch (those of the resumed run
            included).

        Raises
        ------
        ValueError
            If the checkpoint's configuration (epochs, lr, min_lr, schedule, seed, batches per
            epoch) or optimizer presence differs from this trainer's.
        FileExistsError
            ``resume=None`` and ``checkpoint_dir`` already holds checkpoints.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from fastembed.train import ArrayDataset, Trainer
        >>> class Count:                     # a model that counts its steps
        ...     def __init__(self):
        ...         self.steps = np.zeros(1)
        ...     def train_step(self, batch, *, lr, rng, optimizer):
        ...         self.steps += 1
        ...         return {"loss": float(batch.mean()), "count": len(batch)}
        ...     def state_dict(self):
        ...         return {"steps": self.steps.copy()}
        ...     def load_state_dict(self, d):
        ...         np.copyto(self.steps, d["steps"])
        >>> class StopAt:                    # a callback that interrupts training
        ...     def on_step_end(self, trainer, step, logs):
        ...         trainer.stop_training = step == 3
        >>> data = ArrayDataset(np.ones(4), batch_size=1)
        >>> with tempfile.TemporaryDirectory() as ckpt:
        ...     model = Count()
        ...     first = Trainer(model, data=data, epochs=2, checkpoint_dir=ckpt,
        ...                     callbacks=[StopAt()], progress=False).fit()
        ...     print(len(first), model.steps)            # stopped after 3 of 8 steps
        ...     again = Count()                             # a new process would do this
        ...     history = Trainer(again, data=data, epochs=2, checkpoint_dir=ckpt,
        ...                       progress=False).fit(resume=True)
        ...     print(len(history), again.steps)          # restored at 3, ran the other 5
        0 [3.]
        2 [8.]
        """
        self._prepare(resume)
        hooks = {name: [getattr(cb, name) for cb in self.callbacks
                        if callable(getattr(cb, name, None))] for name in _HOOKS}
        for hook in hooks["on_train_begin"]:
            hook(self)
        bar = self._make_bar()
        try:
            while self.epoch < self.epochs and not self.stop_training:
                self._run_epoch(hooks, bar)
        finally:
            if bar is not None:
                bar.close()
        if self.checkpoint_dir is not None and self._position() != self._saved_position:
            self.save_checkpoint()  # stopped mid-epoch: keep the work done
        for hook in hooks["on_train_end"]:
            hook(self, self.history)
        return self.history

    def _make_bar(self):
        if self.progress is False:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            warnings.warn("tqdm is not installed: training without a progress bar",
                          RuntimeWarning, stacklevel=3)
            return None
        try:
            tty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            tty = False
        # On a terminal the bar redraws in place; elsewhere (logs, CI) each redraw is a new
        # line, so draw rarely there.
        interval = _DISPLAY_INTERVAL if tty else 30.0
        return tqdm(total=self.total_steps, initial=self.step, unit="step",
                    mininterval=interval, maxinterval=max(10.0, 2 * interval),
                    disable=None if self.progress is None else False, dynamic_ncols=True)

    def _show(self, bar, now, since):
        """Refresh the bar's numbers: running mean loss of the epoch, and count/s."""
        step0, count0, t0 = since
        if self._steps:
            rate = (self._count - count0) / max(now - t0, 1e-9)
            bar.set_postfix_str(f"loss={self._loss_sum / self._steps:.4g}, "
                                f"count/s={bar.format_sizeof(rate)}", refresh=False)
        bar.update(self.step - step0)
        return self.step, self._count, now

    def _run_epoch(self, hooks, bar):
        e = self.epoch
        nb = self.num_batches[e]
        batch_of = self.data.batch
        train_step = self.model.train_step
        opt = self.optimizer
        rng = self.rng
        step_hooks = hooks["on_step_end"]
        every = self.checkpoint_every or 0
        linear = self.schedule == "linear"
        lr_end = _takes_keyword(train_step, "lr_end")
        lr0, span, total = self.lr, self.lr - self.min_lr, max(self.total_steps, 1)
        perf_counter = time.perf_counter
        self._segment_t0 = now = perf_counter()
        if bar is not None:
            bar.set_description(f"epoch {e + 1}/{self.epochs}", refresh=False)
            since = (self.step, self._count, now)
            next_show = now + _DISPLAY_INTERVAL
        b = self.batch
        while b < nb:
            t = self.step
            lr = lr0 - span * t / total if linear else lr0   # == self.lr_at(t)
            if opt is not None:
                opt.lr = lr
            try:
                if lr_end:
                    out = train_step(batch_of(e, b), lr=lr, rng=rng, optimizer=opt,
                                     lr_end=lr0 - span * (t + 1) / total if linear else lr0)
                else:
                    out = train_step(batch_of(e, b), lr=lr, rng=rng, optimizer=opt)
            except FloatingPointError as exc:
                raise FloatingPointError(f"{exc} (at step {t}, epoch {e}, batch {b}, "
                                         f"lr={lr:.6g})") from None
            try:
                loss = float(out["loss"])
                count = out["count"]
            except (KeyError, TypeError, IndexError):
                raise TypeError(f"train_step must return a dict with 'loss' and 'count', got "
                                f"{reprlib.repr(out)}") from None
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"training diverged: the loss is {loss} at step {t} (epoch {e}, batch "
                    f"{b}) with lr={lr:.6g}; use a smaller learning rate")
            b += 1
            self.step = t + 1
            self.batch = b
            self._loss_sum += loss
            self._count += count
            self._steps += 1
            self._last_lr = lr
            if step_hooks:
                logs = dict(out)
                logs.update(epoch=e, batch=b - 1, lr=lr)
                for hook in step_hooks:
                    hook(self, t + 1, logs)
            if every and (t + 1) % every == 0 and b < nb:  # the epoch's end saves anyway
                self.save_checkpoint()
            if bar is not None:
                now = perf_counter()
                if now >= next_show:
                    since = self._show(bar, now, since)
                    next_show = now + _DISPLAY_INTERVAL
            if self.stop_training:
                break
        if bar is not None:
            self._show(bar, perf_counter(), since)
        if self.batch == nb:
            self._end_epoch(hooks)

    def _end_epoch(self, hooks):
        e = self.epoch
        seconds = self._seconds + (time.perf_counter() - self._segment_t0)
        entry = {
            "epoch": e,
            "loss": self._loss_sum / self._steps if self._steps else float("nan"),
            "count": _as_number(self._count),
            "steps": self._steps,
            "seconds": seconds,
            "lr": self._last_lr if self._last_lr is not None else self.lr_at(self.step),
        }
        for name, fn in self.metrics.items():
            entry[name] = float(fn(self.model))
        self.history.append(entry)
        self.epoch = e + 1
        self.batch = 0
        self._new_epoch_totals()
        for hook in hooks["on_epoch_end"]:
            hook(self, e, dict(entry))
        if self.checkpoint_dir is not None:
            self.save_checkpoint()
