"""The row operations that the functional API and the layers share.

:class:`SparseGrad`, the output and lookup steps that follow validation
(:func:`prepare_out`, :func:`gather_checked`, :func:`gather_masked`), the row ownership that
splits work between threads (:func:`owner_bounds`, :func:`partition_rows`) and the coalescing
of gradient rows (:func:`coalesce_rows`, :func:`coalesce_checked`). Every function trusts
what its docstring says was checked; the public entry points are in
:mod:`fastembed.functional` and :mod:`fastembed.nn`.
"""
from __future__ import annotations

import math
import threading
import time
from typing import NamedTuple

import numpy as np

from ._ext import indexing
from ._ext.threads import n_threads_for
from ._memory import aligned_empty, aligned_zeros, last_level_cache_bytes
from ._validation import (
    as_ids,
    check_grad,
    check_ids_in_range,
    check_int,
    check_no_overlap,
    check_out,
    invalid_ids,
)

# The last-level cache's size in bytes, 0 where the system does not report it.
LAST_LEVEL_CACHE_BYTES = last_level_cache_bytes() or 0
# Data of at least 1 / CACHE_SHARE of the last-level cache is taken to miss it: a gather's
# output that large may stream past the caches (GatherSettings), a coalesce's sums that large
# are summed after sorting (sums_miss_the_cache). glibc's memcpy streams above the same share.
CACHE_SHARE = 4


class SparseGrad(NamedTuple):
    """A coalesced row-sparse gradient of an embedding table.

    A named tuple ``(rows, values)``, so ``rows, values = grad`` works. It is what
    :func:`coalesce` and the layers' ``backward`` return and what the optimizers of
    :mod:`fastembed.optim` read from a layer's ``grad``.

    Parameters
    ----------
    rows, values : ndarray
        The two fields described below, in this order.

    Attributes
    ----------
    rows : ndarray of int64, shape (U,)
        The distinct rows that received gradient, ascending.
    values : ndarray, shape (U, D)
        ``values[k]`` is the summed gradient of row ``rows[k]``.

    Examples
    --------
    >>> import numpy as np, fastembed
    >>> g = fastembed.coalesce([2, 0, 2], np.ones((3, 2), np.float32))
    >>> g.rows
    array([0, 2])
    >>> g.values
    array([[1., 1.],
           [2., 2.]], dtype=float32)
    >>> g.to_dense(4)
    array([[1., 1.],
           [0., 0.],
           [2., 2.],
           [0., 0.]], dtype=float32)
    """

    rows: np.ndarray
    values: np.ndarray

    def to_dense(self, num_embeddings):
        """Return the gradient as a dense (num_embeddings, D) array.

        Parameters
        ----------
        num_embeddings : int
            The number of rows V of the table the gradient belongs to.

        Returns
        -------
        ndarray of shape (num_embeddings, D), the dtype of ``values``
            Zeros except at ``rows``, which hold ``values``.

        Raises
        ------
        IndexError
            A row is ``>= num_embeddings``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.functional import SparseGrad
        >>> g = SparseGrad(np.array([1]), np.array([[0.5, -0.5]]))
        >>> g.to_dense(3)
        array([[ 0. ,  0. ],
               [ 0.5, -0.5],
               [ 0. ,  0. ]])
        """
        num_embeddings = int(num_embeddings)
        if self.rows.size and self.rows[-1] >= num_embeddings:
            raise IndexError(f"row {int(self.rows[-1])} is out of range for "
                             f"num_embeddings={num_embeddings}")
        dense = aligned_zeros((num_embeddings, self.values.shape[1]), self.values.dtype)
        dense[self.rows] = self.values
        return dense



# Documented and pickled as fastembed.functional.SparseGrad, where users import it.
SparseGrad.__module__ = "fastembed.functional"


def gather_masked(weight, flat, bad, out, n_threads):
    """A lookup whose ids at ``bad`` positions are padding: their rows come out zero."""
    gather_checked(weight, np.where(bad, 0, flat), out, n_threads)
    if weight.shape[1]:
        out.reshape(flat.size, weight.shape[1])[bad] = 0
    return out


def prepare_out(weight, ids_shape, out):
    """Allocate the output of a lookup, or check the one the caller passed."""
    shape = tuple(ids_shape) + (weight.shape[1],)
    if out is None:
        return aligned_empty(shape, weight.dtype)
    check_out(out, shape, weight.dtype)
    check_no_overlap(out, weight, "out", "weight")
    return out


def gather_checked(weight, flat, out, n_threads):
    """The lookup itself, once the ids, ``out`` and ``n_threads`` have been checked."""
    if flat.size and weight.shape[1]:
        GATHER_SETTINGS.gather(weight, flat, out.reshape(flat.size, weight.shape[1]),
                               n_threads)
    return out


class GatherSettings:
    """How the gather kernel runs on this machine: measured, per table and output size and
    thread count.

    Two settings change only the speed of a lookup, never a result, and each is a gain on some
    CPUs and sizes and a loss on others:

    * **prefetching** the rows a few positions ahead: a gain on the AMD EPYC machines the
      kernel was tuned on, a loss on an Intel Ice Lake Xeon for tables larger than its caches
      (bench/README.md, "Intel Xeon");
    * **streaming stores** (``indexing.STREAM``, x86-64 builds): the output written past the
      caches, so that its lines are not read from memory before they are written and do not
      evict the table. Only outputs of at least a quarter of the last-level cache
      (``CACHE_SHARE``) are candidates, as for glibc's ``memcpy``, which streams
      copies above the same share: a smaller output is likely read from the cache by what
      follows the lookup, and the kernel's own time cannot show that. Rows must be a
      multiple of 16 bytes (the kernel writes others as usual).

    Lookups are sorted into classes of table size, and of output size for the outputs that
    may stream (factors of 4 in bytes), and of thread count: the fastest mode at one thread
    is not the fastest at two (on an AMD EPYC Zen 4, a Zipf lookup of 32 MiB gained 36% from
    streaming on one thread and lost 8% on two, which share the cores' write bandwidth). In
    each class the first lookups of at least
    ``MIN_TRIAL_ROWS`` rows are cut into two halves, one gathered with a setting and one
    without (which goes first alternates from call to call), and timed. The two settings are
    decided one after the other, the second with the first's choice: an output that may
    stream decides the streaming stores first (with the prefetch, the default), then the
    prefetch (the two interact: on an Ice Lake Xeon streaming gained 20-40% with the prefetch
    and 0-15% without it); any other lookup decides the prefetch alone. The first
    ``WARMUP`` lookups of a decision are not counted (page faults on a fresh output, a cold
    table); of the others, each pair of consecutive lookups (one of each order, so that the
    second half's warmer cache favours neither setting) gives the geometric mean of its two
    time ratios. Once the median of those is ``MARGIN`` beyond 1 either way after ``TRIALS``
    counted lookups, or after ``MAX_TRIALS``, the faster setting is kept for that class for
    the rest of the process (:meth:`choice`). Medians, not sums: one lookup slowed by another
    program cannot decide. Until then, and for smaller lookups, rows are prefetched and
    stored as usual. A trial costs one more parallel region than a plain lookup.
    """

    WARMUP = 1                # lookups timed but not counted
    TRIALS = 6                # at least this many counted lookups (3 pairs) before choosing
    MAX_TRIALS = 32
    MARGIN = 0.1              # the faster setting takes at most 90% of the other's time
    MIN_TRIAL_ROWS = 1 << 12  # halves of 2048+ rows: tens of microseconds, long enough to time
    _MODES_KEPT = 1024

    def __init__(self, cache_bytes=None, streams=indexing.STREAM_STORES):
        """``cache_bytes``: the last-level cache's size (None: as the system reports it; 0:
        unknown, never stream); ``streams``: whether the kernel has streaming stores."""
        # class -> {"ratios": [with / without], "trials": n, "choice": bool or None}: see
        # _decisions for the classes.
        self._classes = {}
        # (table bytes, row bytes, rows, threads) -> the mode, once every decision for it is
        # made: what the small lookups, where a microsecond counts, find at once (at most
        # _MODES_KEPT).
        self._modes = {}
        self._lock = threading.Lock()
        if cache_bytes is None:
            cache_bytes = LAST_LEVEL_CACHE_BYTES
        # Outputs of at least this many bytes may stream (None: never).
        self.stream_min_bytes = (cache_bytes // CACHE_SHARE
                                 if streams and cache_bytes else None)

    @staticmethod
    def size_class(nbytes):
        """The class of a size in bytes: to the nearest lower power of 4."""
        return max(int(nbytes), 1).bit_length() // 2

    def _decisions(self, weight, n, n_threads):
        """The decisions of a lookup of ``n`` rows of ``weight`` on ``n_threads`` threads, in
        the order they are made: ``(key, bit)`` pairs, each key a class and each bit an
        ``indexing`` mode bit."""
        table = self.size_class(weight.nbytes)
        row_bytes = weight.shape[1] * weight.itemsize
        out_bytes = n * row_bytes
        if (self.stream_min_bytes is None or out_bytes < self.stream_min_bytes
                or row_bytes % 16):  # rows that the kernel cannot stream (gatherrows.h)
            return [(("prefetch", table, n_threads), indexing.PREFETCH)]
        out = self.size_class(out_bytes)
        return [(("stream", table, out, n_threads), indexing.STREAM),
                (("prefetch", table, out, n_threads), indexing.PREFETCH)]

    def _mode(self, weight, n, n_threads):
        """The mode the decisions made so far give (the default, ``indexing.PREFETCH``, for
        the others) and the first pending decision, or None."""
        mode = indexing.PREFETCH
        for key, bit in self._decisions(weight, n, n_threads):
            state = self._classes.get(key)
            chosen = None if state is None else state["choice"]
            if chosen is None:
                return mode, (key, bit)
            mode = mode | bit if chosen else mode & ~bit
        return mode, None

    def choice(self, weight, n, n_threads):
        """``(prefetch, stream)`` for a lookup of ``n`` rows of ``weight`` on ``n_threads``
        threads: True or False once decided for its classes, else None (stream is False for
        outputs too small)."""
        found = {bit: self._classes.get(key, {}).get("choice")
                 for key, bit in self._decisions(weight, n, n_threads)}
        return found[indexing.PREFETCH], found.get(indexing.STREAM, False)

    def setting(self, weight, n, n_threads):
        """The kernel's mode for a lookup of ``n`` rows on ``n_threads`` threads
        (``indexing.PREFETCH`` and ``indexing.STREAM`` bits), or None while a decision is
        pending for a lookup this large (the caller then calls :meth:`gather`). Smaller
        lookups take the decisions made so far and the defaults for the others: prefetch,
        ordinary stores."""
        key = (weight.nbytes, weight.shape[1] * weight.itemsize, n, n_threads)
        mode = self._modes.get(key)
        if mode is not None:
            return mode
        mode, pending = self._mode(weight, n, n_threads)
        if pending is None:
            if len(self._modes) >= self._MODES_KEPT:
                self._modes.clear()
            self._modes[key] = mode
        elif n >= self.MIN_TRIAL_ROWS:
            return None
        return mode

    def gather(self, weight, flat, out2, n_threads):
        """``indexing.gather`` with the classes' settings, or a timed trial of the first
        pending decision."""
        n = flat.shape[0]
        mode = self.setting(weight, n, n_threads)
        if mode is not None:
            indexing.gather(weight, flat, out2, n_threads, mode)
            return
        mode, (key, bit) = self._mode(weight, n, n_threads)
        with self._lock:
            state = self._classes.setdefault(key, {"ratios": [], "trials": 0, "choice": None})
            first = state["trials"] % 2 == 0  # the setting first on even trials
        seconds = {}
        for setting, part in ((first, slice(0, n // 2)), (not first, slice(n // 2, n))):
            t0 = time.perf_counter()
            indexing.gather(weight, flat[part], out2[part], n_threads,
                            mode | bit if setting else mode & ~bit)
            seconds[setting] = time.perf_counter() - t0
        with self._lock:
            if state["choice"] is None:
                state["trials"] += 1
                if state["trials"] > self.WARMUP:
                    state["ratios"].append(max(seconds[True], 1e-9) / max(seconds[False], 1e-9))
                state["choice"] = self._decide(state["ratios"])

    def _decide(self, ratios):
        """True (the setting), False, or None (not clear yet) from the counted time ratios."""
        if len(ratios) < self.TRIALS:
            return None
        pairs = [math.sqrt(a * b) for a, b in zip(ratios[0::2], ratios[1::2])]
        mid = float(np.median(pairs))
        if mid <= 1 - self.MARGIN or mid * (1 - self.MARGIN) >= 1:
            return mid <= 1
        if len(ratios) >= self.MAX_TRIALS:
            return mid <= 1
        return None


GATHER_SETTINGS = GatherSettings()


def gather_mode(weight, n, n_threads):
    """The process's kernel mode for a lookup of ``n`` rows of ``weight`` on ``n_threads``
    threads (see :meth:`GatherSettings.setting`): what ``indexing.gather_direct`` asks."""
    return GATHER_SETTINGS.setting(weight, n, n_threads)


# Sample about 1 id in _BALANCE_STRIDE, but at least _BALANCE_SAMPLE_MIN and at most
# _BALANCE_SAMPLE ids, to cut the rows into ranges of about equal work, one per thread. (A
# fixed 4096-id sample cost 110 us, more than the whole 1-thread scatter-add of 8192 ids.)
_BALANCE_SAMPLE = 4096
_BALANCE_SAMPLE_MIN = 256
_BALANCE_STRIDE = 32
# Estimated cost of adding into a row that misses the caches, relative to one that hits
# (a row seen more than once in the sample is taken to be hot). Measured here: with Zipf ids a
# count-balanced split left the thread owning the cold tail with most of the work.
_COLD_ROW_COST = 8.0


def owner_bounds(flat, num_embeddings, n_owners):
    """Row ranges [b_t, b_t+1) for n_owners threads, each with about the same work.

    The cut points are weighted quantiles of a strided sample of the ids: an id whose row
    occurs again in the sample is hot (cheap, cached), one seen once is cold (a cache miss,
    ``_COLD_ROW_COST`` times dearer). Uniform ids therefore split evenly by count, while
    Zipf-skewed ids give the thread with the hot rows more positions. Results never depend
    on the cut points, only speed does.
    """
    return indexing.owner_bounds(flat, num_embeddings, n_owners, _BALANCE_SAMPLE_MIN,
                                 _BALANCE_SAMPLE, _BALANCE_STRIDE, _COLD_ROW_COST)


def partition_rows(flat, num_embeddings, n_threads):
    """(positions grouped by owning thread or None, their starts, the owners' row bounds)."""
    bounds = owner_bounds(flat, num_embeddings, n_threads)
    if n_threads == 1:
        return None, np.array([0, flat.size], dtype=np.int64), bounds
    pos, starts = indexing.partition_by_owner(flat, bounds, n_threads)
    return pos, starts, bounds


def coalesce_rows(ids, grad, num_embeddings, n_threads, *, dim=None, dtype=None,
              bounds_check="raise", bad=None):
    """coalesce, also returning the per-row counts (for scale_grad_by_freq).

    ``bad``: a mask of positions already known to be padding (a layer's forward found them).
    """
    ids_arr, flat = as_ids(ids)
    grad2d = check_grad(grad, ids_arr.shape, dim, dtype)
    n_threads = n_threads_for(n_threads, flat.size * max(grad2d.shape[1], 1))
    if num_embeddings is None:
        limit = 2**63  # negatives only
        n_rows = None
    else:
        num_embeddings = check_int(num_embeddings, "num_embeddings", min=0, allow_none=True)
        limit = n_rows = num_embeddings
        if num_embeddings >= 2**62:  # only a bound (no table is that big): the rows present
            n_rows = None            # decide the size of the work
    if bad is None:
        if bounds_check == "raise":
            check_ids_in_range(flat, ids_arr.shape, num_embeddings, n_threads, ids=ids_arr)
        else:
            bad = invalid_ids(flat, ids_arr.shape, limit, n_threads, bounds_check,
                              ids=ids_arr)
    if bad is not None:
        flat, grad2d = flat[~bad], grad2d[~bad]
    if n_rows is None:
        n_rows = int(flat.max()) + 1 if flat.size else 0
    return coalesce_checked(flat, grad2d, n_rows, n_threads)


def coalesce_checked(flat, grad2d, n_rows, n_threads, src_row=None, scale=None,
                     values_buffer=None):
    """Sum contributions by row, once every argument has been checked.

    Position i contributes ``scale[i] * grad2d[src_row[i]]`` to row ``flat[i]`` (``src_row``
    None: ``grad2d[i]``; ``scale`` None: no factor). Returns ``(SparseGrad, counts)``; each
    row's sum starts from +0.0 and adds its contributions in increasing position order.
    ``values_buffer``: a workspace the sums may be written to (see
    ``indexing.coalesce_owned``); only for callers that never hand them out.
    """
    dim = grad2d.shape[1]
    if flat.size * dim < _COALESCE_PARALLEL_MIN_WORK:
        n_threads = 1
    if (n_rows <= _DENSE_MAP_RATIO * flat.size + _DENSE_MAP_MIN
            and not sums_miss_the_cache(flat, n_rows, dim * grad2d.itemsize)):
        # A (V,) row -> slot map costs O(V): cheap next to the O(N) work here.
        pos, starts, bounds = partition_rows(flat, n_rows, n_threads)
        rows, values, counts = indexing.coalesce_owned(flat, grad2d, pos, starts, bounds,
                                                       src_row, scale, n_threads,
                                                       values_buffer)
        return SparseGrad(rows, values), counts
    # Few ids in a huge id space, or sums too many for the cache: sort the positions by row
    # (O(N) memory), then sum each row's contributions at once.
    perm, rows, starts = indexing.group_by_row(
        flat.astype(np.int64, copy=False), max(n_rows - 1, 0), n_threads)
    values = indexing.values_array(values_buffer, rows.size, dim, grad2d.dtype)
    indexing.segment_sum(grad2d, perm, starts, values, src_row, scale, n_threads)
    return SparseGrad(rows, values), np.diff(starts)


# Below this many contributions x D, coalesce (and so the bag backward and the fused step)
# runs on one thread: partitioning the positions between owners and opening the regions cost
# about what a second thread saves (Xeon, 2 threads: 8192 x 64 Zipf ids 0.9x as fast as one
# thread, uniform ids 1.15x; 65536 x 128: 1.6-1.8x).
_COALESCE_PARALLEL_MIN_WORK = 1 << 20

# coalesce uses a dense row map when V <= _DENSE_MAP_RATIO * N + _DENSE_MAP_MIN, unless its
# sums miss the cache (sums_miss_the_cache), else a sort.
_DENSE_MAP_RATIO = 8
_DENSE_MAP_MIN = 1 << 16

# The distinct share of a coalesce's ids is estimated on _DISTINCT_BLOCKS contiguous blocks
# of _DISTINCT_BLOCK ids spread over them: 4096 ids, read from 8 places (a strided sample of
# as many ids cost 0.4 ms here, one cache miss per id; these blocks 0.05-0.1 ms in all).
_DISTINCT_BLOCKS = 8
_DISTINCT_BLOCK = 512


def distinct_share(flat, n_rows):
    """The share of distinct ids in a sample of ``flat`` (ids below ``n_rows``), in (0, 1]."""
    n = flat.size
    size = _DISTINCT_BLOCKS * _DISTINCT_BLOCK
    if n > size:
        last = n - _DISTINCT_BLOCK
        flat = np.concatenate([flat[k * last // (_DISTINCT_BLOCKS - 1):][:_DISTINCT_BLOCK]
                               for k in range(_DISTINCT_BLOCKS)])
    # a copy to sort, in int32 where the ids fit (it sorts in half the time)
    sample = flat.astype(np.int32 if n_rows <= 2**31 else np.int64)
    sample.sort()
    return (1 + np.count_nonzero(sample[1:] != sample[:-1])) / max(sample.size, 1)


def sums_miss_the_cache(flat, n_rows, row_bytes, cache_bytes=None):
    """Whether coalescing ``flat`` (ids below ``n_rows``) into rows of ``row_bytes`` should
    sort its positions by row rather than add into a dense row map: True when most ids are
    distinct rows and their sums cannot stay in the cache.

    The dense map adds each contribution into its row's sum in position order. Where rows
    repeat (Zipf ids), the hot sums stay in the cache; but where most ids are distinct and the
    sums outgrow the cache, every add is a miss that reads and writes back a whole row.
    Sorting first reads each contribution once and writes each sum once, in order. On an AMD
    EPYC (Zen 4, 32 MiB last-level cache; bench/README.md, "Coalescing by sorting"), with
    uniform ids on the mid, big and wide shapes, sorting took 0.6-0.9x the dense map's time
    (coalesce) and 0.5-0.9x (bag backward); with Zipf ids up to 2x; on small outputs the dense
    map was 3x faster. At least half the sampled ids distinct (:func:`distinct_share`;
    uniform ids gave 0.82-1.0, Zipf(1.1) ids 0.29-0.44) and sums of at least
    ``1 / CACHE_SHARE`` of the last-level cache (their number estimated from that share, at
    most ``n_rows``), whose size is read from the system (``cache_bytes`` None:
    ``LAST_LEVEL_CACHE_BYTES``; 0, unknown: the dense map, as before), choose the sort.
    """
    if cache_bytes is None:
        cache_bytes = LAST_LEVEL_CACHE_BYTES
    n = flat.size
    if not cache_bytes or min(n, n_rows) * row_bytes * CACHE_SHARE < cache_bytes:
        return False
    distinct = distinct_share(flat, n_rows)
    return 2 * distinct >= 1 and min(distinct * n, n_rows) * row_bytes * CACHE_SHARE >= cache_bytes


