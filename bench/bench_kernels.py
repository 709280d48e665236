"""The kernel benchmark runner: ``python bench/bench_kernels.py [--quick] ...`` from a checkout.

It times fastembed's kernels, its pooled lookup (``embedding_bag``) and its lazy Adam step
against NumPy (the baseline of most speed-ups) and, when it is importable, PyTorch, over a
fixed matrix, in one process, with the same input arrays for every contender, and prints a
table of medians and speed-ups followed by a ``targets`` section.

The matrix
----------
* ops: ``gather`` (``E[X]``), ``scatter_add`` (dense ``np.add.at(W, X, G)``), ``coalesce``
  (the sparse gradient: distinct ids and their summed rows), ``bag_forward`` (mean pooling of
  bags), ``bag_backward`` (its gradient) and ``adam_step`` (one training step of the table
  with lazy Adam);
* shapes ``(V, D, N)``: tiny (1e3, 16, 32), small (1e4, 64, 8192), mid (1e5, 128, 65536),
  big (1e6, 64, 2**20), wide (1e6, 300, 2**18); float32 tables, int64 ids. ``bag_forward``,
  ``bag_backward`` and ``adam_step`` run on small, mid and big only (``OP_SHAPES``; a custom
  :class:`Shape` whose name is not one of ``SHAPES`` runs every op);
* id distributions: ``uniform`` over [0, V) and ``zipf``: Zipf(1.1) truncated to the ranks
  1..V (p_k proportional to k**-1.1, sampled exactly by inverse CDF, id = k - 1, so the hot
  rows are the low ids; nothing is clipped);
* threads: 1 and all (``fastembed.get_num_threads()``). NumPy's contenders are single-threaded
  and are timed once per (shape, dist, op), shown with threads = 1; fastembed's get
  ``n_threads=t`` and torch's get ``torch.set_num_threads(t)``.

Bags: the bag ops pool the same ids X as the other ops of the (shape, dist), cut into
B = N // L bags of fixed length L = ``BAG_LENGTH`` = 32 (1-D ids with int64 offsets
``0, L, 2L, ...``), in mode "mean". ``bag_backward``'s output gradient Gb is a (B, D) float32
array of standard normal values drawn from the problem's seed.

Contenders of the new ops
-------------------------
* bag_forward: ``E[X].reshape(B, L, D).mean(1)`` (NumPy, the baseline);
  ``fastembed.embedding_bag(E, X, offsets, mode="mean", out=out, n_threads=t)``;
  ``F.embedding_bag(tX, tE, toffsets, mode="mean")``.
* bag_backward: NumPy ``np.add.at(zeros(V, D), X, np.repeat(Gb, L, axis=0) * (1/L))`` (the
  baseline; a dense gradient); fastembed: an ``EmbeddingBag(weight=E, mode="mean")`` whose
  forward ran once, untimed, then timed ``layer.backward(Gb); layer.zero_grad()`` (the
  SparseGrad); torch: a leaf ``w`` over ``tE``, ``F.embedding_bag(tX, w, toffsets,
  mode="mean", sparse=True)`` untimed (``w.grad = None`` before it), then timed
  ``.backward(tGb)`` + ``w.grad.coalesce()``.
* adam_step: one training step, ids X and the (N, D) output gradient G in, table updated, with
  lr = ``ADAM_LR`` (1e-3) and the default betas and eps. fastembed fused: an
  ``Embedding(weight=copy of E)`` and ``fastembed.optim.Adam(layer, lr=1e-3)``, timed
  ``layer.backward_and_step(G, opt)``; fastembed unfused: timed ``layer.backward(G);
  opt.step(); opt.zero_grad()``; torch sparse: a leaf ``w`` over a copy of E,
  ``F.embedding(tX, w, sparse=True)``, timed ``y.backward(tG); opt.step(); opt.zero_grad()``
  with ``torch.optim.SparseAdam([w], lr=1e-3)``; torch dense: the same with ``F.embedding(tX,
  w)`` and ``torch.optim.Adam([w], lr=1e-3, fused=True)`` (``foreach=True``, and labelled so,
  where this torch cannot run the fused CPU kernel). Every timed call changes its table, so
  each contender trains its own copy of E (one copy and one optimizer, shared by its thread
  counts: :meth:`Problem.trainee`), and its forward re-runs untimed (the ``prepare`` hook)
  before every timed call. The speed-up baseline of this op is torch's SparseAdam when
  torch is importable, else the fastembed unfused path (there is no NumPy contender), at the
  smallest thread count of the sweep; the table notes say which.

Timing
------
``time.perf_counter``; every contender is called once to warm up (fastembed's gather
``FE_GATHER_SETTLE_CALLS`` times, so that its run-time choices are made before the timing),
then timed ``repeat`` times
(default 7) and the median is reported. The contenders of one (shape, dist, op) group are
timed interleaved, round by round (each round measures each contender at each thread count
once; :func:`measure_interleaved`), so that all of them sample the same quiet and busy spells
of a shared machine. A contender whose single call takes more than ``SLOW_CALL_SECONDS`` is
timed ``min(repeat, SLOW_REPEAT)`` times, in rounds spread over the run (np.add.at at the big
shapes). Every other measurement follows one untimed call of the same contender, so that it
is the second of two calls in a row, as in a loop. A call shorter than
``MIN_MEASURE_SECONDS`` (20 ms) is timed timeit-style: one measurement is a loop of
``number`` calls lasting at least 20 ms, and the time per call is reported. The garbage
collector is off while timing. For ``torch sparse bwd+coalesce`` the forward
``F.embedding(tX, w, sparse=True)`` runs untimed before every call, and the timed part is
``y.backward(tG)`` followed by ``w.grad.coalesce()``; the torch bag backward and every
``adam_step`` contender also run their forward untimed before every call.

The byte model (GB/s and % of the copy limit)
---------------------------------------------
Each row's effective bandwidth is the number of bytes the operation must move, divided by its
median time, in decimal GB/s (1 GB = 1e9 bytes). With s the table's itemsize (4 for float32),
i the ids' itemsize (8 for int64), U the number of distinct ids and, for the bag ops,
B = N // L bags (int64 offsets, 8 bytes each):

* gather: ``N*D*s`` rows read + ``N*D*s`` output written + ``N*i`` ids read;
* scatter_add: ``N*D*s`` grad read + ``N*D*s`` table rows read + ``N*D*s`` table rows
  written (``3*N*D*s``) + ``N*i`` ids read;
* coalesce: ``N*D*s`` grad read + ``U*D*s`` values written + ``U*8`` rows written + ``N*i``
  ids read;
* bag_forward: ``N*D*s`` rows read + ``B*D*s`` output written + ``N*i`` ids + ``B*8`` offsets
  read;
* bag_backward: ``B*D*s`` bag grads read + ``U*D*s`` values written + ``U*8`` rows written +
  ``N*i`` ids + ``B*8`` offsets read (the sparse gradient's bytes; the dense NumPy baseline
  and torch move more);
* adam_step: ``N*D*s`` grad read + ``N*i`` ids read + the U touched rows of the table and of
  Adam's two moments, each read and written (``6*U*D*s``). A dense Adam moves all V rows; the
  model counts what the lazy update needs.

The copy limit is ``np.copyto`` of a 1 GiB float32 array into another (2 GiB moved per copy:
1 GiB read + 1 GiB written), single-threaded, median GB/s; "% copy" is a row's GB/s over it.
Multi-threaded rows and cache-resident shapes can exceed 100%.

Correctness
-----------
Before timing, every contender is run once on fresh output buffers (NaN-filled for gather and
bag_forward, zeros for scatter_add; fresh copies of E and fresh optimizers for adam_step) at
every thread count, and compared with a reference computed once per (shape, dist): ``E[X]``;
``np.add.at`` into a zeroed table; ``np.unique(X)`` and the rows of that ``np.add.at`` table
(bitwise equal to ``np.unique`` + ``np.add.at`` into a zeroed (U, D) array, since both add
each row's contributions to +0.0 in position order). fastembed must match these bitwise; other
contenders (argsort + reduceat, torch index_add_, torch's sparse coalesce) sum in other orders
and may differ within float tolerance ("close": rtol 1e-4, atol 1e-4 * max |reference|).
For the new ops:

* bag_forward: the reference is the NumPy baseline ``E[X].reshape(B, L, D).mean(1)``.
  fastembed sums each bag's rows from +0.0 in position order and divides once, as NumPy does
  here, so it must match bitwise; torch may sum in another order and is compared "close";
* bag_backward: the reference is the dense NumPy gradient of the baseline; fastembed's
  SparseGrad (``.to_dense(V)``) and torch's coalesced sparse gradient (``.to_dense()``) must
  be within float tolerance ("close", or "bitwise");
* adam_step: the table after exactly one step from E. The reference is the fastembed unfused
  path on one thread, itself checked once against an independent NumPy model of lazy Adam (in
  float64, from gradients summed in position order with np.add.at; a disagreement makes every
  row of the group ERROR). fastembed fused and unfused must be bitwise equal to it at every
  thread count; torch's SparseAdam must be within rtol 1e-5 of it, atol 1e-5 * lr (the scale
  of one update, for entries near 0) plus each entry's slack. The slack is how far the update
  moves when the entry's summed gradient moves by twice the error bound of a float32 sum of
  its n contributions (2 * (n - 1) * 2**-24 * sum |contributions|): a first Adam step,
  lr * g / (|g| + eps / sqrt(1 - b2)), is ill-conditioned where g cancels to about 3e-7, and
  there torch's other summation order legitimately moves it (at the big shape a handful of
  entries move by up to 3% of lr); elsewhere the slack is negligible (and 0 for rows touched
  once, whose gradient is not a sum). torch's dense Adam is another formula (it adds
  eps after the bias correction, which matters where |g| is near eps), so it is checked, with
  the same tolerance, against a NumPy model of dense Adam's first step (untouched rows:
  0 / (0 + eps) = no change).

A failed check prints MISMATCH in the row's ``check`` column and again below the table, and
makes the command exit with status 1.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import gc
import itertools
import json
import math
import operator
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

import numpy as np

import fastembed
from fastembed._memory import aligned_empty, aligned_zeros

# The NumPy references of the tests (tests/reference.py): one per operation, shared.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
from reference import ref_coalesce, ref_scatter_add  # noqa: E402

__all__ = [
    "Shape", "SHAPES", "QUICK_SHAPES", "DISTS", "OPS", "QUICK_OPS", "OP_SHAPES", "BAG_LENGTH",
    "PLACEMENTS", "DEFAULT_PLACEMENT",
    "ADAM_LR", "op_runs_on", "TARGETS", "Target", "TargetResult",
    "Contender", "CONTENDERS", "Case", "Problem", "Record", "RECORD_FIELDS", "BenchResult",
    "shape_by_name", "default_threads", "zipf_cdf", "make_ids", "make_table", "make_grad",
    "make_problem", "numpy_coalesce", "exact_coalesce", "numpy_bag_mean", "numpy_bag_backward",
    "numpy_adam_step", "AdamReference",
    "bytes_moved", "problem_bytes", "compare", "check_case", "measure", "measure_copy_limit",
    "run", "format_table", "evaluate_targets", "write_json", "plot", "require_matplotlib",
    "MissingDependencyError", "add_arguments", "main",
]

# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A problem size: table (V, D), N ids."""

    name: str
    V: int
    D: int
    N: int


SHAPES = (
    Shape("tiny", 1_000, 16, 32),
    Shape("small", 10_000, 64, 8192),
    Shape("mid", 100_000, 128, 65536),
    Shape("big", 1_000_000, 64, 2**20),
    Shape("wide", 1_000_000, 300, 2**18),
)
QUICK_SHAPES = ("tiny", "small", "mid")
DISTS = ("uniform", "zipf")
OPS = ("gather", "scatter_add", "coalesce", "bag_forward", "bag_backward", "adam_step")
QUICK_OPS = ("gather", "scatter_add", "coalesce", "bag_forward", "adam_step")
# The named shapes an op runs on; ops not listed run on every shape, and a custom Shape (a name
# not in SHAPES) runs every op.
OP_SHAPES = {
    "bag_forward": ("small", "mid", "big"),
    "bag_backward": ("small", "mid", "big"),
    "adam_step": ("small", "mid", "big"),
}
BAG_OPS = ("bag_forward", "bag_backward")
BAG_LENGTH = 32               # bag_forward / bag_backward: B = N // BAG_LENGTH bags of this length
ADAM_LR = 1e-3                # adam_step's learning rate (betas and eps: the defaults)
ADAM_RTOL = 1e-5              # adam_step: torch vs fastembed, and fastembed vs the NumPy model

ZIPF_EXPONENT = 1.1
TABLE_DTYPE: type = np.float32
IDS_DTYPE: type = np.int64

DEFAULT_REPEAT = 7
QUICK_REPEAT = 3
SLOW_CALL_SECONDS = 0.5       # a single call slower than this ...
SLOW_REPEAT = 3               # ... is timed at most this many times
MIN_MEASURE_SECONDS = 0.02    # shorter calls are looped timeit-style up to this
COPY_BYTES = 1 << 30          # the copy limit copies this many bytes (1 GiB float32)

# contender names (the targets refer to them)
NP_GATHER = "numpy E[X]"
NP_TAKE = "numpy np.take(out=)"
FE_GATHER = "fastembed.gather(out=)"
TORCH_EMBEDDING = "torch F.embedding"
TORCH_INDEX_SELECT = "torch index_select(out=)"
NP_ADD_AT = "numpy np.add.at"
FE_SCATTER = "fastembed.scatter_add"
TORCH_INDEX_ADD = "torch index_add_"
NP_REDUCEAT = "numpy argsort+reduceat"
FE_COALESCE = "fastembed.coalesce"
TORCH_SPARSE = "torch sparse bwd+coalesce"
NP_BAG_MEAN = "numpy E[X].reshape.mean(1)"
FE_BAG = "fastembed.embedding_bag"
TORCH_BAG = "torch F.embedding_bag"
NP_BAG_BACKWARD = "numpy repeat+np.add.at"
FE_BAG_BACKWARD = "fastembed EmbeddingBag.bwd"
TORCH_BAG_BACKWARD = "torch sparse bag bwd+coalesce"
FE_ADAM_FUSED = "fastembed fused bwd+Adam"
FE_ADAM = "fastembed bwd+Adam.step"
TORCH_SPARSE_ADAM = "torch sparse bwd+SparseAdam"
TORCH_DENSE_ADAM = "torch dense bwd+Adam(fused)"
TORCH_DENSE_ADAM_FOREACH = "torch dense bwd+Adam(foreach)"


def shape_by_name(name):
    for s in SHAPES:
        if s.name == name:
            return s
    raise ValueError(f"unknown shape {name!r}; known: {', '.join(s.name for s in SHAPES)}")


def op_runs_on(op, shape):
    """Whether ``op`` runs on ``shape`` (see ``OP_SHAPES``)."""
    names = OP_SHAPES.get(op)
    if names is None or shape.name not in {s.name for s in SHAPES}:
        return True
    return shape.name in names


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def zipf_cdf(V, a=ZIPF_EXPONENT):
    """CDF over the ranks 1..V of the truncated Zipf law p_k proportional to k**-a."""
    if V < 1:
        raise ValueError("zipf_cdf needs V >= 1")
    cdf = np.cumsum(np.arange(1, V + 1, dtype=np.float64) ** -a)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def make_ids(dist, n, V, rng=None, dtype=IDS_DTYPE):
    """``n`` row ids in [0, V) (``n`` may be a shape tuple).

    dist: ``"uniform"``; or ``"zipf"``: Zipf(1.1) truncated to the ranks 1..V, sampled exactly
    by inverse CDF (u ~ U[0, 1), rank = the first k with cdf[k-1] > u), id = rank - 1: id 0 is
    the hottest row, and no value is clipped, so id V-1 is as rare as the law says.
    """
    if rng is None:
        rng = np.random.default_rng(0)
    if V < 1:
        raise ValueError("make_ids needs V >= 1")
    if dist == "uniform":
        ids = rng.integers(0, V, size=n)
    elif dist == "zipf":
        ids = np.searchsorted(zipf_cdf(V), rng.random(size=n), side="right")
    else:
        raise ValueError(f"unknown id distribution {dist!r}; known: {', '.join(DISTS)}")
    return np.ascontiguousarray(ids, dtype=dtype)


# Where the tables (E, and the scatter_add and gather outputs) lie in memory. "aligned": on a
# 64-byte cache line, as fastembed allocates every table it creates (and torch its tensors;
# see fastembed/_memory.py); "numpy": where np.empty puts them, 16 bytes past a page boundary
# for large arrays, so that a 256-byte row spans five cache lines. Every contender reads the
# same arrays either way; only the bandwidth-bound ones (fastembed's) notice the difference.
PLACEMENTS = ("aligned", "numpy")
DEFAULT_PLACEMENT = "aligned"


def _new_table(shape, dtype, placement, zero=False):
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; known: {', '.join(PLACEMENTS)}")
    if placement == "aligned":
        return (aligned_zeros if zero else aligned_empty)(shape, dtype)
    return (np.zeros if zero else np.empty)(shape, dtype)


def make_table(V, D, rng=None, dtype=TABLE_DTYPE, placement=DEFAULT_PLACEMENT):
    """A (V, D) table of standard normal values, generated directly in ``dtype``.

    The values do not depend on ``placement`` (see PLACEMENTS), only the address does.
    """
    if rng is None:
        rng = np.random.default_rng(0)
    table = _new_table((V, D), np.dtype(dtype), placement)
    rng.standard_normal(dtype=dtype, out=table)
    return table


def make_grad(N, D, rng=None, dtype=TABLE_DTYPE):
    """A (N, D) output gradient of standard normal values, where NumPy puts it.

    An upstream model's gradient is an ordinary NumPy array, so it is never realigned.
    """
    if rng is None:
        rng = np.random.default_rng(0)
    return rng.standard_normal((N, D), dtype=dtype)


def _rng(seed, *keys):
    return np.random.default_rng([seed, *keys])


class Problem:
    """The arrays of one (shape, dist): table E, ids X, grad G, shared outputs, references.

    Every contender of the (shape, dist) reads the same E, X and G; ``out`` (gather's output)
    and ``table`` (scatter_add's target) are shared buffers too. The bag ops read ``bag_ids``
    (X cut to B * L ids), ``offsets`` and ``bag_grad`` (Gb, (B, D), drawn from ``seed``), and
    write ``bag_out``. References are computed once and cached; ``release()`` drops everything
    but the inputs.
    """

    def __init__(self, shape, dist, E, X, G, seed=0, placement=DEFAULT_PLACEMENT):
        self.shape, self.dist = shape, dist
        self.E, self.X, self.G = E, X, G
        self.seed = seed
        self.placement = placement
        self._cache = {}

    # shared timing buffers, allocated (with the tables' placement) and touched on first use
    @property
    def out(self):
        if "out" not in self._cache:
            self._cache["out"] = _new_table((self.X.size, self.E.shape[1]), self.E.dtype,
                                            self.placement, zero=True)
        return self._cache["out"]

    @property
    def table(self):
        if "table" not in self._cache:
            self._cache["table"] = _new_table(self.E.shape, self.E.dtype, self.placement,
                                              zero=True)
        return self._cache["table"]

    # the bag ops' inputs: B = N // BAG_LENGTH bags of BAG_LENGTH ids, mode "mean"
    @property
    def n_bags(self):
        return self.X.size // BAG_LENGTH

    @property
    def bag_ids(self):
        if self.n_bags == 0:
            raise ValueError(f"the bag ops need at least {BAG_LENGTH} ids, got {self.X.size}")
        return self.X[: self.n_bags * BAG_LENGTH]

    @property
    def offsets(self):
        if "offsets" not in self._cache:
            self._cache["offsets"] = np.arange(self.n_bags, dtype=np.int64) * BAG_LENGTH
        return self._cache["offsets"]

    @property
    def bag_grad(self):
        if "bag_grad" not in self._cache:
            B, D = self.n_bags, self.E.shape[1]
            self._cache["bag_grad"] = make_grad(B, D, _rng(self.seed, B, D, 3), self.E.dtype)
        return self._cache["bag_grad"]

    @property
    def bag_out(self):
        if "bag_out" not in self._cache:
            self._cache["bag_out"] = np.zeros((self.n_bags, self.E.shape[1]), self.E.dtype)
        return self._cache["bag_out"]

    def ids_for(self, op):
        """The ids ``op`` reads: X, or X cut to whole bags for the bag ops."""
        return self.bag_ids if op in BAG_OPS else self.X

    def reference(self, op):
        """The result ``op`` must produce on these arrays (see the module docstring)."""
        key = ("ref", op)
        if key not in self._cache:
            if op == "gather":
                ref = self.E[self.X]
            elif op == "scatter_add":
                ref = ref_scatter_add(np.zeros_like(self.E), self.X, self.G)
            elif op == "coalesce":
                ref = ref_coalesce(self.X, self.G)
            elif op == "bag_forward":
                ref = numpy_bag_mean(self.E, self.bag_ids)
            elif op == "bag_backward":
                ref = numpy_bag_backward(self.E.shape[0], self.bag_ids, self.bag_grad)
            elif op == "adam_step":
                ref = _adam_reference(self)
            elif op == "adam_step/dense":
                ref = AdamReference(*numpy_adam_step(self.E, self.X, self.G, dense=True,
                                                     with_slack=True, sums=self.adam_sums()))
            else:
                raise ValueError(f"unknown op {op!r}")
            self._cache[key] = ref
        return self._cache[key]

    def adam_sums(self):
        """``exact_coalesce(X, G)``, cached for the two Adam models."""
        if "adam_sums" not in self._cache:
            self._cache["adam_sums"] = exact_coalesce(self.X, self.G)
        return self._cache["adam_sums"]

    def unique_count(self, op=None):
        """The number of distinct ids ``op`` reads (all of X by default)."""
        ids = self.X if op is None else self.ids_for(op)
        key = ("U", ids.size)
        if key not in self._cache:
            self._cache[key] = int(np.unique(ids).size)
        return self._cache[key]

    def trainee(self, key, make):
        """What one ``adam_step`` contender trains (its copy of E, its optimizer): ``make()``
        once per (shape, dist), then the same object for every thread count.

        An Adam step costs the same whatever values it starts from, and a group's contenders
        are timed interleaved, all alive at once: one copy per contender rather than one per
        thread count halves what the big shape's adam_step group holds (about 4 GB less).
        """
        k = ("trainee", key)
        if k not in self._cache:
            self._cache[k] = make()
        return self._cache[k]

    def release_trainees(self):
        """Drop what :meth:`trainee` made."""
        for k in [k for k in self._cache if isinstance(k, tuple) and k[0] == "trainee"]:
            del self._cache[k]

    def release(self, *names):
        """Drop cached buffers (all of them when no name is given)."""
        if not names:
            self._cache.clear()
        for name in names:
            self._cache.pop(name, None)


def make_problem(shape, dist, seed=0, *, E=None, G=None, placement=DEFAULT_PLACEMENT):
    """The arrays for one (shape, dist); E and G may be passed in to share them across dists."""
    if E is None:
        E = make_table(shape.V, shape.D, _rng(seed, shape.V, shape.D, 1), placement=placement)
    if G is None:
        G = make_grad(shape.N, shape.D, _rng(seed, shape.N, shape.D, 2))
    X = make_ids(dist, shape.N, shape.V, _rng(seed, shape.V, shape.N, DISTS.index(dist)))
    return Problem(shape, dist, E, X, G, seed, placement)


def numpy_coalesce(X, G):
    """The NumPy baseline of coalesce: a stable argsort, then ``np.add.reduceat``.

    Returns (rows, values): the distinct ids ascending and the sums of their rows of G.
    """
    order = np.argsort(X, kind="stable")
    sx = X[order]
    if sx.size == 0:
        return sx.astype(np.int64), G[:0].copy()
    new = np.empty(sx.size, dtype=bool)
    new[0] = True
    np.not_equal(sx[1:], sx[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return sx[starts].astype(np.int64, copy=False), np.add.reduceat(G[order], starts, axis=0)


def numpy_bag_mean(E, ids, length=BAG_LENGTH):
    """The NumPy baseline of bag_forward: ``E[ids].reshape(B, length, D).mean(1)``."""
    return E[ids].reshape(-1, length, E.shape[1]).mean(axis=1)


def numpy_bag_backward(V, ids, bag_grad, length=BAG_LENGTH):
    """The NumPy baseline of bag_backward (mean bags of ``length`` ids): a dense (V, D) grad.

    ``np.add.at(zeros(V, D), ids, np.repeat(bag_grad, length, axis=0) * (1 / length))``.
    """
    dense = np.zeros((V, bag_grad.shape[1]), dtype=bag_grad.dtype)
    np.add.at(dense, ids, np.repeat(bag_grad, length, axis=0) * (1 / length))
    return dense


def exact_coalesce(X, G):
    """(rows, values, inverse): ``np.unique(X)`` and each row's grad summed in position order.

    ``np.add.at`` into a zeroed (U, D) array adds each row's contributions to +0.0 in position
    order: bitwise what fastembed's coalesce computes (argsort + reduceat is not).
    """
    rows, values = ref_coalesce(X, G)
    return rows, values, np.searchsorted(rows, X.reshape(-1))


class AdamReference(NamedTuple):
    """adam_step's reference: the table after one step, and each entry's extra tolerance."""

    table: np.ndarray   # (V, D)
    slack: np.ndarray   # (V, D) float32; 0 for the rows no id touched


def numpy_adam_step(E, X, G, lr=ADAM_LR, betas=(0.9, 0.999), eps=1e-8, dense=False,
                    with_slack=False, sums=None):
    """An independent model of one Adam step from zero moments; returns the new table.

    Each touched row's gradient g is summed in position order (:func:`exact_coalesce`, as
    fastembed does), then in float64 m = (1 - b1) g and v = (1 - b2) g². Lazy (PyTorch's
    SparseAdam, fastembed's Adam): ``w -= lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps)``.
    ``dense=True`` models ``torch.optim.Adam``, which adds eps after the bias correction:
    ``w -= lr / (1 - b1) * m / (sqrt(v) / sqrt(1 - b2) + eps)`` (the two differ where |g| is
    near eps). Untouched rows keep E's values in both (their update is 0 / (0 + eps) = 0).

    ``with_slack=True`` also returns each entry's slack: how far the update moves when g moves
    by ``delta = 2 * (n - 1) * 2**-24 * sum|contributions|``, twice the error bound of a
    float32 sum of the row's n contributions in any order. A first step, lr * g / (|g| + e)
    with e = eps / sqrt(1 - b2) (lazy) or eps (dense), is ill-conditioned where g cancels to
    about e: there another summation order (torch's) legitimately moves the update by up to
    2 * lr. Elsewhere the slack is negligible, and rows touched once (no sum) get none.
    ``sums``: ``exact_coalesce(X, G)``, when already computed.
    """
    beta1, beta2 = betas
    rows, g, inverse = exact_coalesce(X, G) if sums is None else sums

    def update(g):                                  # the formulas above, in place
        denom = np.multiply(g, g)
        denom *= 1 - beta2                          # v
        np.sqrt(denom, out=denom)
        if dense:
            denom /= math.sqrt(1 - beta2)
        denom += eps
        step = np.multiply(g, 1 - beta1)            # m
        step /= denom
        step *= (lr / (1 - beta1) if dense else lr * math.sqrt(1 - beta2) / (1 - beta1))
        return step

    g64 = g.astype(np.float64)
    u = update(g64)
    out = E.copy()
    out[rows] = (E[rows].astype(np.float64) - u).astype(E.dtype)
    if not with_slack:
        return out
    slack = np.zeros(E.shape, dtype=np.float32)
    counts = np.bincount(inverse, minlength=rows.size)
    summed = np.flatnonzero(counts > 1)                 # rows touched once are exact
    if summed.size:
        slot = np.full(rows.size, -1, dtype=np.int64)
        slot[summed] = np.arange(summed.size)
        pos = slot[inverse] >= 0
        mass = np.zeros((summed.size, G.shape[1]), dtype=G.dtype)  # sum |contributions|
        np.add.at(mass, slot[inverse[pos]], np.abs(G[pos]))
        delta = (2.0 * 2.0**-24) * (counts[summed] - 1)[:, None] * mass.astype(np.float64)
        gs, us = g64[summed], u[summed]
        slack[rows[summed]] = np.maximum(update(gs + delta) - us,       # u is increasing in g
                                         us - update(gs - delta))
    return out, slack


def _fe_adam_one_step(E, X, G, fused, n_threads, out=None):
    """One fastembed Adam step of a fresh copy of E (fused or not); returns the new table."""
    layer = fastembed.Embedding(weight=E.copy())
    opt = fastembed.optim.Adam(layer, lr=ADAM_LR, n_threads=n_threads)
    layer.forward(X, out=out, n_threads=n_threads)
    if fused:
        layer.backward_and_step(G, opt, n_threads=n_threads)
    else:
        layer.backward(G, n_threads=n_threads)
        opt.step()
        opt.zero_grad()
    return layer.weight


def _adam_reference(p):
    """adam_step's reference: the fastembed unfused step on 1 thread, checked against NumPy."""
    table = _fe_adam_one_step(p.E, p.X, p.G, fused=False, n_threads=1, out=p.out)
    model, slack = numpy_adam_step(p.E, p.X, p.G, with_slack=True, sums=p.adam_sums())
    verdict = compare("adam_step", table, AdamReference(model, slack), exact=False)
    if not _check_ok(verdict):
        raise RuntimeError(f"fastembed's unfused Adam step (the reference) disagrees with the "
                           f"NumPy model of lazy Adam: {verdict}")
    return AdamReference(table, slack)


# --------------------------------------------------------------------------------------------
# The byte model
# --------------------------------------------------------------------------------------------


def bytes_moved(op, N, D, itemsize=4, ids_itemsize=8, unique=None, bag_length=BAG_LENGTH):
    """Bytes ``op`` must move (see the module docstring).

    N is the shape's number of ids; the bag ops use the ``B = N // bag_length`` whole bags.
    """
    rows = N * D * itemsize
    ids = N * ids_itemsize
    if op == "gather":
        return 2 * rows + ids
    if op == "scatter_add":
        return 3 * rows + ids
    if op in ("coalesce", "bag_backward", "adam_step") and unique is None:
        raise ValueError(f"{op}'s byte count needs the number of distinct ids")
    if op == "coalesce":
        return rows + unique * D * itemsize + unique * 8 + ids
    if op in BAG_OPS:
        B = N // bag_length
        n = B * bag_length
        offsets = B * 8
        if op == "bag_forward":
            return n * D * itemsize + B * D * itemsize + n * ids_itemsize + offsets
        return (B * D * itemsize + unique * D * itemsize + unique * 8 + n * ids_itemsize
                + offsets)
    if op == "adam_step":
        return rows + ids + 6 * unique * D * itemsize
    raise ValueError(f"unknown op {op!r}")


def problem_bytes(problem, op):
    """``bytes_moved`` for ``op`` on a Problem's arrays."""
    return bytes_moved(op, problem.shape.N, problem.shape.D, problem.E.dtype.itemsize,
                       problem.X.dtype.itemsize, problem.unique_count(op))


# --------------------------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One contender bound to one problem and thread count.

    ``call()`` is what is timed; ``prepare()``, when given, runs untimed before every call;
    ``check()`` runs the operation once on fresh outputs and returns its result: an array for
    gather, scatter_add and bag_forward, (rows, values) for coalesce, the dense (V, D)
    gradient for bag_backward, the table after one step for adam_step. ``name``, when given,
    replaces the contender's name in the records (a label that depends on what the installed
    torch supports).
    """

    call: Callable[[], object]
    check: Callable[[], object]
    prepare: Optional[Callable[[], object]] = None
    name: Optional[str] = None


@dataclass(frozen=True)
class Contender:
    """A way of computing ``op``.

    make(problem, n_threads, torch) -> Case. ``threaded`` contenders are timed at every thread
    count of the sweep, the others once (threads = 1). ``exact``: the result must be bitwise
    equal to the reference; otherwise "close" within float tolerance passes too.
    ``baseline``: the speed-up denominator of its (shape, dist, op) group;
    ``fallback_baseline``: the denominator when the group has no ``baseline`` contender (the
    baseline needs torch and torch is absent). ``reference``: the key of the problem's
    reference to check against, when it is not the op's own (torch's dense Adam).
    """

    op: str
    name: str
    make: Callable
    kind: str = "numpy"            # "numpy", "fastembed", "torch", or anything else
    threaded: bool = False
    exact: bool = False
    baseline: bool = False
    needs_torch: bool = False
    note: str = ""
    fallback_baseline: bool = False
    reference: Optional[str] = None


def _nan_like_out(p):
    return np.full((p.X.size, p.E.shape[1]), np.nan, dtype=p.E.dtype)


def _np_gather(p, n, torch):
    return Case(call=functools.partial(operator.getitem, p.E, p.X),
                check=lambda: p.E[p.X])


def _np_take(p, n, torch):
    def check():
        o = _nan_like_out(p)
        np.take(p.E, p.X, axis=0, out=o)
        return o
    return Case(call=functools.partial(np.take, p.E, p.X, axis=0, out=p.out), check=check)


# fastembed.gather measures its prefetch and streaming stores on its first large lookups of
# each size and thread count (two decisions of at least 7 lookups each when one setting is
# clearly faster) and keeps the faster: these untimed calls let it decide before the timing,
# as any loop would.
FE_GATHER_SETTLE_CALLS = 16


def _fe_gather(p, n, torch):
    def check():
        got = fastembed.gather(p.E, p.X, out=_nan_like_out(p), n_threads=n)
        for _ in range(FE_GATHER_SETTLE_CALLS):
            fastembed.gather(p.E, p.X, out=p.out, n_threads=n)
        return got
    return Case(call=functools.partial(fastembed.gather, p.E, p.X, out=p.out, n_threads=n),
                check=check)


def _torch_embedding(p, n, torch):
    F = torch.nn.functional
    tX, tE = torch.from_numpy(p.X), torch.from_numpy(p.E)
    return Case(call=functools.partial(F.embedding, tX, tE),
                check=lambda: F.embedding(tX, tE).numpy())


def _torch_index_select(p, n, torch):
    tX, tE = torch.from_numpy(p.X), torch.from_numpy(p.E)
    tout = torch.from_numpy(p.out)

    def check():
        o = _nan_like_out(p)
        torch.index_select(tE, 0, tX, out=torch.from_numpy(o))
        return o
    return Case(call=functools.partial(torch.index_select, tE, 0, tX, out=tout), check=check)


def _np_add_at(p, n, torch):
    return Case(call=functools.partial(np.add.at, p.table, p.X, p.G),
                check=lambda: p.reference("scatter_add"))


def _fe_scatter(p, n, torch):
    def check():
        return fastembed.scatter_add(np.zeros_like(p.E), p.X, p.G, n_threads=n)
    return Case(call=functools.partial(fastembed.scatter_add, p.table, p.X, p.G, n_threads=n),
                check=check)


def _torch_index_add(p, n, torch):
    tX, tG = torch.from_numpy(p.X), torch.from_numpy(p.G)
    tW = torch.from_numpy(p.table)

    def check():
        w = np.zeros_like(p.E)
        torch.from_numpy(w).index_add_(0, tX, tG)
        return w
    return Case(call=functools.partial(tW.index_add_, 0, tX, tG), check=check)


def _np_reduceat(p, n, torch):
    return Case(call=functools.partial(numpy_coalesce, p.X, p.G),
                check=lambda: numpy_coalesce(p.X, p.G))


def _fe_coalesce(p, n, torch):
    V = p.E.shape[0]

    def check():
        g = fastembed.coalesce(p.X, p.G, num_embeddings=V, n_threads=n)
        return g.rows, g.values
    return Case(call=functools.partial(fastembed.coalesce, p.X, p.G, num_embeddings=V,
                                       n_threads=n),
                check=check)


def _torch_sparse(p, n, torch):
    F = torch.nn.functional
    tX, tG = torch.from_numpy(p.X), torch.from_numpy(p.G)
    w = torch.from_numpy(p.E).requires_grad_(True)   # a leaf over E's memory
    state: dict = {}

    def prepare():                                   # untimed: reset the grad, forward
        w.grad = None
        state["y"] = F.embedding(tX, w, sparse=True)

    def call():                                      # timed: backward + coalesce
        state["y"].backward(tG)
        state["g"] = w.grad.coalesce()
        state.pop("y")

    def check():
        prepare()
        call()
        g = state.pop("g")
        w.grad = None
        return (g.indices()[0].numpy().astype(np.int64), g.values().numpy())
    return Case(call=call, check=check, prepare=prepare)


# bag_forward (mean) -------------------------------------------------------------------------

def _np_bag_forward(p, n, torch):
    return Case(call=functools.partial(numpy_bag_mean, p.E, p.bag_ids),
                check=lambda: numpy_bag_mean(p.E, p.bag_ids))


def _fe_bag_forward(p, n, torch):
    ids, offsets = p.bag_ids, p.offsets

    def check():
        out = np.full((p.n_bags, p.E.shape[1]), np.nan, dtype=p.E.dtype)
        return fastembed.embedding_bag(p.E, ids, offsets, mode="mean", out=out, n_threads=n)
    return Case(call=functools.partial(fastembed.embedding_bag, p.E, ids, offsets, mode="mean",
                                       out=p.bag_out, n_threads=n),
                check=check)


def _torch_bag_forward(p, n, torch):
    F = torch.nn.functional
    tX, tE = torch.from_numpy(p.bag_ids), torch.from_numpy(p.E)
    toffsets = torch.from_numpy(p.offsets)
    return Case(call=functools.partial(F.embedding_bag, tX, tE, toffsets, mode="mean"),
                check=lambda: F.embedding_bag(tX, tE, toffsets, mode="mean").numpy())


# bag_backward (mean) ------------------------------------------------------------------------

def _np_bag_backward(p, n, torch):
    call = functools.partial(numpy_bag_backward, p.E.shape[0], p.bag_ids, p.bag_grad)
    return Case(call=call, check=call)


def _fe_bag_backward(p, n, torch):
    layer = fastembed.EmbeddingBag(weight=p.E, mode="mean")
    layer.forward(p.bag_ids, p.offsets, n_threads=n)     # untimed, once: backward reuses it
    Gb = p.bag_grad

    def call():
        layer.backward(Gb, n_threads=n)
        layer.zero_grad()

    def check():
        g = layer.backward(Gb, n_threads=n)
        layer.zero_grad()
        return g.to_dense(p.E.shape[0])
    return Case(call=call, check=check)


def _torch_bag_backward(p, n, torch):
    F = torch.nn.functional
    tX, tGb = torch.from_numpy(p.bag_ids), torch.from_numpy(p.bag_grad)
    toffsets = torch.from_numpy(p.offsets)
    w = torch.from_numpy(p.E).requires_grad_(True)   # a leaf over E's memory
    state: dict = {}

    def prepare():                                   # untimed: reset the grad, forward
        state.clear()
        w.grad = None
        state["y"] = F.embedding_bag(tX, w, toffsets, mode="mean", sparse=True)

    def call():                                      # timed: backward + coalesce
        state["y"].backward(tGb)
        state["g"] = w.grad.coalesce()

    def check():
        prepare()
        call()
        g = state["g"]
        state.clear()
        w.grad = None
        return g.to_dense().numpy()
    return Case(call=call, check=check, prepare=prepare)


# adam_step ----------------------------------------------------------------------------------

def _fe_adam(p, n, torch, fused):
    def make():                                      # its own copy: every call trains it
        layer = fastembed.Embedding(weight=p.E.copy())
        return layer, fastembed.optim.Adam(layer, lr=ADAM_LR)
    layer, opt = p.trainee(("fastembed adam", fused), make)
    X, G, out = p.X, p.G, p.out

    def prepare():                                   # untimed: the forward
        opt.n_threads = n                            # shared by the thread counts
        layer.forward(X, out=out, n_threads=n)

    if fused:
        def call():
            layer.backward_and_step(G, opt, n_threads=n)
    else:
        def call():
            layer.backward(G, n_threads=n)
            opt.step()
            opt.zero_grad()
    return Case(call=call, prepare=prepare,
                check=lambda: _fe_adam_one_step(p.E, X, G, fused, n))


def _fe_adam_fused(p, n, torch):
    return _fe_adam(p, n, torch, fused=True)


def _fe_adam_unfused(p, n, torch):
    return _fe_adam(p, n, torch, fused=False)


@functools.lru_cache(maxsize=None)
def _torch_fused_adam_works(torch):
    """Whether this torch runs ``Adam(fused=True)`` on CPU tensors."""
    try:
        w = torch.zeros(2, 2, requires_grad=True)
        opt = torch.optim.Adam([w], lr=ADAM_LR, fused=True)
        w.sum().backward()
        opt.step()
    except Exception:  # noqa: BLE001 - any failure means: not available here
        return False
    return True


def _torch_adam(p, n, torch, sparse):
    F = torch.nn.functional
    tX, tG = torch.from_numpy(p.X), torch.from_numpy(p.G)
    name = None
    if sparse:
        def optimizer(w):
            return torch.optim.SparseAdam([w], lr=ADAM_LR)
    elif _torch_fused_adam_works(torch):
        def optimizer(w):
            return torch.optim.Adam([w], lr=ADAM_LR, fused=True)
    else:
        name = TORCH_DENSE_ADAM_FOREACH

        def optimizer(w):
            return torch.optim.Adam([w], lr=ADAM_LR, foreach=True)
    def make():                                      # its own copy: every call trains it
        w = torch.from_numpy(p.E.copy()).requires_grad_(True)
        return w, optimizer(w)
    w, opt = p.trainee(("torch adam", sparse), make)
    state: dict = {}

    def prepare():                                   # untimed: the forward
        state.clear()
        state["y"] = F.embedding(tX, w, sparse=sparse)

    def call():                                      # timed: backward + step + zero_grad
        state["y"].backward(tG)
        opt.step()
        opt.zero_grad()

    def check():                                     # one step of a fresh copy of E
        w1 = torch.from_numpy(p.E.copy()).requires_grad_(True)
        opt1 = optimizer(w1)
        F.embedding(tX, w1, sparse=sparse).backward(tG)
        opt1.step()
        return w1.detach().numpy()
    return Case(call=call, check=check, prepare=prepare, name=name)


def _torch_sparse_adam(p, n, torch):
    return _torch_adam(p, n, torch, sparse=True)


def _torch_dense_adam(p, n, torch):
    return _torch_adam(p, n, torch, sparse=False)


CONTENDERS = (
    Contender("gather", NP_GATHER, _np_gather, baseline=True),
    Contender("gather", NP_TAKE, _np_take),
    Contender("gather", FE_GATHER, _fe_gather, kind="fastembed", threaded=True, exact=True),
    Contender("gather", TORCH_EMBEDDING, _torch_embedding, kind="torch", threaded=True,
              needs_torch=True),
    Contender("gather", TORCH_INDEX_SELECT, _torch_index_select, kind="torch", threaded=True,
              needs_torch=True),
    Contender("scatter_add", NP_ADD_AT, _np_add_at, baseline=True),
    Contender("scatter_add", FE_SCATTER, _fe_scatter, kind="fastembed", threaded=True,
              exact=True),
    Contender("scatter_add", TORCH_INDEX_ADD, _torch_index_add, kind="torch", threaded=True,
              needs_torch=True),
    Contender("coalesce", NP_REDUCEAT, _np_reduceat, baseline=True),
    Contender("coalesce", FE_COALESCE, _fe_coalesce, kind="fastembed", threaded=True,
              exact=True),
    Contender("coalesce", TORCH_SPARSE, _torch_sparse, kind="torch", threaded=True,
              needs_torch=True, note="backward + coalesce timed; the forward is not"),
    Contender("bag_forward", NP_BAG_MEAN, _np_bag_forward, baseline=True,
              note=f"E[X].reshape(B, {BAG_LENGTH}, D).mean(1)"),
    Contender("bag_forward", FE_BAG, _fe_bag_forward, kind="fastembed", threaded=True,
              exact=True,
              note="embedding_bag(E, X, offsets, mode='mean', out=out); sums in position "
                   "order and divides once, as NumPy: bitwise"),
    Contender("bag_forward", TORCH_BAG, _torch_bag_forward, kind="torch", threaded=True,
              needs_torch=True, note="F.embedding_bag(tX, tE, toffsets, mode='mean')"),
    Contender("bag_backward", NP_BAG_BACKWARD, _np_bag_backward, baseline=True,
              note=f"np.add.at(zeros(V, D), X, np.repeat(Gb, {BAG_LENGTH}, axis=0) * "
                   f"(1/{BAG_LENGTH})): a dense grad"),
    Contender("bag_backward", FE_BAG_BACKWARD, _fe_bag_backward, kind="fastembed",
              threaded=True, note="EmbeddingBag(mode='mean').backward(Gb) + zero_grad() timed "
                                  "(a SparseGrad); the forward ran once, untimed"),
    Contender("bag_backward", TORCH_BAG_BACKWARD, _torch_bag_backward, kind="torch",
              threaded=True, needs_torch=True,
              note="F.embedding_bag(..., mode='mean', sparse=True) untimed; .backward(tGb) + "
                   "w.grad.coalesce() timed"),
    Contender("adam_step", FE_ADAM_FUSED, _fe_adam_fused, kind="fastembed", threaded=True,
              exact=True, note="layer.backward_and_step(G, optim.Adam(lr=1e-3)) timed; the "
                               "forward re-runs untimed before each call"),
    Contender("adam_step", FE_ADAM, _fe_adam_unfused, kind="fastembed", threaded=True,
              exact=True, fallback_baseline=True,
              note="layer.backward(G); opt.step(); opt.zero_grad() timed (optim.Adam, "
                   "lr=1e-3); the forward re-runs untimed before each call"),
    Contender("adam_step", TORCH_SPARSE_ADAM, _torch_sparse_adam, kind="torch", threaded=True,
              baseline=True, needs_torch=True,
              note="F.embedding(tX, w, sparse=True) untimed; y.backward(tG); opt.step(); "
                   "opt.zero_grad() timed (SparseAdam, lr=1e-3)"),
    Contender("adam_step", TORCH_DENSE_ADAM, _torch_dense_adam, kind="torch", threaded=True,
              needs_torch=True, reference="adam_step/dense",
              note="F.embedding(tX, w) untimed; y.backward(tG); opt.step(); opt.zero_grad() "
                   "timed (Adam(lr=1e-3, fused=True); foreach=True, labelled so, where fused "
                   "is unavailable); checked against the NumPy model of dense Adam, whose eps "
                   "comes after the bias correction"),
)


# --------------------------------------------------------------------------------------------
# Correctness
# --------------------------------------------------------------------------------------------


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


def _compare_arrays(result, ref, exact, rtol=1e-4, atol=None):
    """'bitwise', 'close' or 'MISMATCH (...)'; atol defaults to rtol * max(1, max |ref|)."""
    result = np.asarray(result)
    if result.shape != ref.shape:
        return f"MISMATCH (shape {result.shape} != {ref.shape})"
    if result.dtype != ref.dtype:
        return f"MISMATCH (dtype {result.dtype} != {ref.dtype})"
    if np.array_equal(_bits(result), _bits(ref)):
        return "bitwise"
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(result.astype(np.float64) - ref.astype(np.float64))
        worst = float(diff.max()) if diff.size else 0.0   # NaN if any element is NaN
        if atol is None:
            atol = rtol * (max(1.0, float(np.abs(ref).max())) if ref.size else 1.0)
        close = bool(np.allclose(result, ref, rtol=rtol, atol=atol))
    if close and not exact:
        return "close"
    why = "not bitwise" if close else "wrong values"
    return f"MISMATCH ({why}; max abs diff {worst:.3g})"


def compare(op, result, ref, exact):
    """'bitwise', 'close' (only when not ``exact``) or 'MISMATCH (...)'.

    "close" is rtol 1e-4, atol 1e-4 * max(1, max |ref|); for adam_step (whose result is a whole
    table after one step of size about lr; ``ref`` is an :class:`AdamReference`) it is rtol
    1e-5, atol 1e-5 * lr plus each entry's slack (see :func:`numpy_adam_step`).
    """
    if op == "coalesce":
        rows, values = result
        ref_rows, ref_values = ref
        rows = np.asarray(rows)
        if rows.shape != ref_rows.shape or not np.array_equal(rows, ref_rows):
            return (f"MISMATCH (rows differ: {rows.size} rows vs {ref_rows.size} expected)")
        return _compare_arrays(values, ref_values, exact)
    if op == "adam_step":
        table, slack = ref
        return _compare_arrays(result, table, exact, rtol=ADAM_RTOL,
                               atol=ADAM_RTOL * ADAM_LR + slack)
    return _compare_arrays(result, ref, exact)


# ops whose NumPy baseline computes the reference itself (its check column says "ref")
BASELINE_IS_REFERENCE = ("gather", "scatter_add", "bag_forward", "bag_backward")


def check_case(problem, contender, case):
    """Run ``case.check()`` once and compare it with the problem's reference for its op."""
    if contender.baseline and contender.op in BASELINE_IS_REFERENCE:
        return "ref"                    # the baseline is the exact reference
    ref = problem.reference(contender.reference or contender.op)
    return compare(contender.op, case.check(), ref, contender.exact)


def _check_ok(check):
    return check in ("ref", "bitwise", "close")


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def _time_loop(call, prepare, number, clock=time.perf_counter):
    if prepare is None:
        it = itertools.repeat(None, number)
        t0 = clock()
        for _ in it:
            call()
        return clock() - t0
    total = 0.0
    for _ in range(number):
        prepare()
        t0 = clock()
        call()
        total += clock() - t0
    return total


def calibrate(call, *, prepare=None, min_time=None):
    """Warm ``call`` up and choose its loop count: (number, seconds per call).

    One warm-up call; if it took less than ``min_time`` the loop count ``number`` is raised
    (timeit-style) until one loop of ``number`` calls lasts at least ``min_time``.
    """
    min_time = MIN_MEASURE_SECONDS if min_time is None else min_time
    t = _time_loop(call, prepare, 1)                # warm-up
    number = 1
    if t < min_time:
        t = _time_loop(call, prepare, 1)            # a warm single call
        while t < min_time:
            per_call = max(t / number, 1e-9)
            number = max(number * 2, math.ceil(1.2 * min_time / per_call))
            t = _time_loop(call, prepare, number)
    return number, t / number


def measure(call, *, repeat, prepare=None, min_time=None, slow=None, slow_repeat=None):
    """Warm up, then time ``call`` and return (per-call seconds of each measurement, number).

    :func:`calibrate` chooses ``number``; then ``repeat`` measurements of ``number`` calls
    each (``min(repeat, slow_repeat)`` if a call takes more than ``slow`` seconds). The
    benchmark itself interleaves its contenders instead (:func:`measure_interleaved`).
    """
    slow = SLOW_CALL_SECONDS if slow is None else slow
    slow_repeat = SLOW_REPEAT if slow_repeat is None else slow_repeat
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        number, per_call = calibrate(call, prepare=prepare, min_time=min_time)
        if per_call > slow:
            repeat = min(repeat, slow_repeat)
        times = [_time_loop(call, prepare, number) / number for _ in range(repeat)]
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, number


def round_indices(n_rounds, k):
    """The ``k`` of rounds ``0 .. n_rounds - 1`` a contender timed ``k`` times runs in: spread
    evenly, the first and the last included."""
    if k >= n_rounds:
        return list(range(n_rounds))
    if k == 1:
        return [n_rounds // 2]
    return sorted({round(j * (n_rounds - 1) / (k - 1)) for j in range(k)})


class Timed:
    """One contender at one thread count, as :func:`measure_interleaved` times it.

    ``call``, ``prepare``: as in :func:`measure`; ``before``: an untimed hook run before each
    of its measurements (torch's thread count). Filled in: ``number``, ``times`` (seconds per
    call, one per round it ran in) and ``error`` (the exception that stopped it, or None).
    """

    def __init__(self, call, prepare=None, before=None):
        self.call, self.prepare, self.before = call, prepare, before
        self.number = 0
        self.times: list = []
        self.error: Optional[BaseException] = None


def measure_interleaved(items, *, repeat, min_time=None, slow=None, slow_repeat=None):
    """Time several contenders round by round: each round measures each of them once.

    The machines this runs on are shared, and how much memory bandwidth the host leaves a VM
    changes from one ten-second spell to the next (bench/README.md, "Quiet and busy
    spells"). Timed one after the other, a contender whose measurements fall in a busy spell
    looks slow against one timed in a quiet spell; interleaved, every contender of a group
    samples the same spells, and the medians compare like with like.

    Each item is first calibrated (:func:`calibrate`: warm-up and loop count). Then ``repeat``
    rounds; an item slower than ``slow`` seconds per call runs in ``min(repeat,
    slow_repeat)`` of them, spread out (:func:`round_indices`). Every measurement except
    those of the slow items follows one untimed call of the same item, so that it is the
    second of two calls in a row, as in a loop of it: its threads awake, its data in cache,
    and the memory it allocates just freed by its previous call. (On this VM, memory that
    stays free for a second or two is handed back to the host, and touching it again costs
    about 1 ms per 2 MB: 300-540 ms for 256 MB against 22 ms. A contender that allocates its
    output, timed right after the others had run for a second, paid for it: fastembed's
    2-thread bag backward took a median 244 ms as the first call after the others, 135 ms as
    the second, and 80-90 ms in a loop of its own.) An exception stops that item only
    (``item.error``). The garbage collector is off throughout.
    """
    slow = SLOW_CALL_SECONDS if slow is None else slow
    slow_repeat = SLOW_REPEAT if slow_repeat is None else slow_repeat
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        rounds, rewarm = {}, {}
        for item in items:
            try:
                if item.before is not None:
                    item.before()
                item.number, per_call = calibrate(item.call, prepare=item.prepare,
                                                  min_time=min_time)
            except Exception as exc:  # noqa: BLE001 - the caller reports it
                item.error = exc
                continue
            k = min(repeat, slow_repeat) if per_call > slow else repeat
            rounds[id(item)] = set(round_indices(repeat, k))
            rewarm[id(item)] = per_call <= slow
        for r in range(repeat):
            for item in items:
                if item.error is not None or r not in rounds.get(id(item), ()):
                    continue
                try:
                    if item.before is not None:
                        item.before()
                    if rewarm[id(item)]:
                        _time_loop(item.call, item.prepare, 1)   # untimed: the first of two
                    t = _time_loop(item.call, item.prepare, item.number)
                except Exception as exc:  # noqa: BLE001 - the caller reports it
                    item.error = exc
                    continue
                item.times.append(t / item.number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return items


def measure_copy_limit(nbytes=None, repeat=DEFAULT_REPEAT):
    """np.copyto of a float32 array of ``nbytes`` (default 1 GiB) into another: median GB/s.

    Each copy moves 2 * nbytes (read + write).
    """
    nbytes = COPY_BYTES if nbytes is None else int(nbytes)
    n = max(1, nbytes // 4)
    src = np.ones(n, np.float32)
    dst = np.zeros(n, np.float32)
    times, number = measure(functools.partial(np.copyto, dst, src), repeat=repeat,
                            slow=math.inf)
    del src, dst
    median = float(np.median(times))
    moved = 2 * n * 4
    return {"array_bytes": n * 4, "bytes_per_copy": moved, "median_s": median,
            "gbps": moved / median / 1e9, "repeat": repeat, "number": number}


# --------------------------------------------------------------------------------------------
# Records and the run
# --------------------------------------------------------------------------------------------


@dataclass
class Record:
    """One timed (shape, dist, op, contender, threads)."""

    shape: str
    V: int
    D: int
    N: int
    dist: str
    op: str
    contender: str
    kind: str
    threads: int
    baseline: bool
    median_s: Optional[float]
    times_s: list
    repeat: int
    number: int
    bytes: int
    gbps: Optional[float]
    pct_copy: Optional[float]
    speedup: Optional[float]
    check: str
    unique_rows: int
    note: str = ""
    error: str = ""


RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))


@dataclass
class BenchResult:
    environment: dict
    copy_limit: dict
    records: list
    targets: list = field(default_factory=list)

    @property
    def mismatches(self):
        return [r for r in self.records if not _check_ok(r.check)]

    def to_dict(self):
        return {"environment": self.environment, "copy_limit": self.copy_limit,
                "byte_model": BYTE_MODEL,
                "records": [dataclasses.asdict(r) for r in self.records],
                "targets": [dataclasses.asdict(t) for t in self.targets]}


BYTE_MODEL = {
    "unit": "GB/s = bytes / median seconds / 1e9",
    "gather": "N*D*s read + N*D*s written + N*i ids",
    "scatter_add": "N*D*s grad read + N*D*s table rows read + N*D*s written + N*i ids",
    "coalesce": "N*D*s grad read + U*D*s values written + U*8 rows written + N*i ids",
    "bag_forward": "B = N // 32 mean bags: N*D*s rows read + B*D*s written + N*i ids + B*8 "
                   "offsets",
    "bag_backward": "B*D*s bag grads read + U*D*s values written + U*8 rows written + N*i ids "
                    "+ B*8 offsets",
    "adam_step": "N*D*s grad read + N*i ids + 6*U*D*s (the touched rows of the table and of "
                 "both moments, read and written)",
    "copy_limit": "np.copyto of a 1 GiB float32 array: 2 GiB moved per copy, single thread",
}


def _import_torch():
    """torch, or None when it is not installed (or fails to import)."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - a broken torch counts as absent
        return None
    return torch


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_total():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def environment(threads, repeat, torch=None):
    """The header facts: machine, versions, the sweep."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory": _memory_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "fastembed_version": fastembed.__version__,
        "openmp_enabled": bool(fastembed.openmp_enabled()),
        "fastembed_threads": fastembed.get_num_threads(),
        "numpy_version": np.__version__,
        "torch_version": torch.__version__ if torch is not None else "not installed",
        "threads": list(threads),
        "repeat": repeat,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "load_average_start": _load_average(),
        "build": _build_info(),
    }


def _build_info():
    """Which build is measured: the compiled kernels' file time and the checkout's commit."""
    info = []
    try:
        from ._ext import indexing
        mtime = os.path.getmtime(indexing.__file__)
        info.append("kernels built " + datetime.datetime.fromtimestamp(
            mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    except (ImportError, AttributeError, OSError, TypeError):
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastembed.__file__)))
    if os.path.isdir(os.path.join(root, ".git")):
        import subprocess
        try:
            head = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                                  capture_output=True, text=True, timeout=10)
            if head.returncode == 0 and head.stdout.strip():
                info.append(f"checkout {head.stdout.strip()}")
        except (OSError, subprocess.SubprocessError):
            pass
    return "; ".join(info) or "unknown"


def _load_average():
    """The 1-minute load average (how busy the machine was), or None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def default_threads():
    return sorted({1, fastembed.get_num_threads()})


def run(shapes=None, dists=DISTS, ops=OPS, threads=None, repeat=DEFAULT_REPEAT, *,
        contenders=None, use_torch=True, copy_bytes=None, seed=0, min_time=None,
        progress=None, placement=DEFAULT_PLACEMENT):
    """Run the matrix and return a :class:`BenchResult` (records, copy limit, targets).

    shapes: Shape objects or names (default: all of SHAPES); an op runs on a shape only if
    ``op_runs_on(op, shape)``; threads: the thread counts (default 1 and
    ``fastembed.get_num_threads()``); contenders: default CONTENDERS (the torch ones are
    skipped when ``use_torch`` is False or torch is not importable); progress: a callable
    taking a str, for status lines; placement: where the tables lie (see PLACEMENTS).
    """
    shapes = [shape_by_name(s) if isinstance(s, str) else s for s in (shapes or SHAPES)]
    threads = sorted(set(int(t) for t in (threads or default_threads())))
    if not threads or threads[0] < 1:
        raise ValueError("thread counts must be positive")
    for d in dists:
        if d not in DISTS:
            raise ValueError(f"unknown id distribution {d!r}")
    contenders = list(CONTENDERS if contenders is None else contenders)
    torch = _import_torch() if use_torch and any(c.needs_torch for c in contenders) else None
    contenders = [c for c in contenders if torch is not None or not c.needs_torch]
    say = progress or (lambda msg: None)
    torch_threads_before = torch.get_num_threads() if torch is not None else None

    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; known: {', '.join(PLACEMENTS)}")
    env = environment(threads, repeat, torch)
    env["placement"] = placement
    say(f"copy limit: np.copyto of {(copy_bytes or COPY_BYTES) / 2**30:g} GiB ...")
    copy = measure_copy_limit(copy_bytes, repeat=repeat)
    env["copy_limit_gbps"] = copy["gbps"]
    records = []
    t_start = time.perf_counter()
    try:
        for shape in shapes:
            E = make_table(shape.V, shape.D, _rng(seed, shape.V, shape.D, 1),
                           placement=placement)
            G = make_grad(shape.N, shape.D, _rng(seed, shape.N, shape.D, 2))
            for dist in dists:
                problem = make_problem(shape, dist, seed, E=E, G=G, placement=placement)
                for op in ops:
                    if not op_runs_on(op, shape):
                        continue
                    say(f"[{time.perf_counter() - t_start:7.1f}s] {shape.name} {dist} {op}")
                    group = [c for c in contenders if c.op == op]
                    records.extend(_run_group(problem, op, group, threads, repeat, torch,
                                              copy["gbps"], min_time))
                    problem.release("out", "table", "bag_out")
                    problem.release_trainees()
                    if op in OP_SHAPES:             # the new ops' references are not reused
                        problem.release(("ref", op), ("ref", op + "/dense"), "adam_sums")
                        gc.collect()
                problem.release()
                del problem
                gc.collect()
            del E, G
            gc.collect()
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads_before)
    env["load_average_end"] = _load_average()
    # Measured again at the end: on a shared machine the memory bandwidth left to this process
    # drifts, and the two figures bracket what the rows in between had.
    say("copy limit again, at the end ...")
    env["copy_limit_end_gbps"] = measure_copy_limit(copy_bytes, repeat=repeat)["gbps"]
    result = BenchResult(env, copy, records)
    result.targets = evaluate_targets(records, all_threads=max(threads),
                                      torch_available=torch is not None)
    return result


def _run_group(problem, op, group, threads, repeat, torch, copy_gbps, min_time):
    shape = problem.shape
    records = []
    setup_error: Optional[str]
    try:
        unique = problem.unique_count(op)
        nbytes = problem_bytes(problem, op)
    except Exception as exc:  # noqa: BLE001 - e.g. a shape too small for one bag
        unique, nbytes, setup_error = 0, 0, f"{type(exc).__name__}: {exc}"
    else:
        setup_error = None
    has_baseline = any(c.baseline for c in group)
    timed = []                                       # (record, Timed): checked, to be timed
    for c in group:
        is_baseline = c.baseline or (c.fallback_baseline and not has_baseline)
        for n in (threads if c.threaded else [1]):
            if c.kind == "torch" and torch is not None:
                torch.set_num_threads(n)
            rec = Record(shape=shape.name, V=shape.V, D=shape.D, N=shape.N, dist=problem.dist,
                         op=op, contender=c.name, kind=c.kind, threads=n, baseline=is_baseline,
                         median_s=None, times_s=[], repeat=0, number=0, bytes=nbytes,
                         gbps=None, pct_copy=None, speedup=None, check="-",
                         unique_rows=unique, note=c.note)
            records.append(rec)
            try:
                if setup_error is not None:
                    raise RuntimeError(setup_error)
                case = c.make(problem, n, torch)
                if case.name:
                    rec.contender = case.name
                rec.check = check_case(problem, c, case)
            except Exception as exc:  # noqa: BLE001 - reported loudly in the table
                rec.error = f"{type(exc).__name__}: {exc}"
                rec.check = "ERROR"
                continue
            before = (functools.partial(torch.set_num_threads, n)
                      if c.kind == "torch" and torch is not None else None)
            timed.append((rec, Timed(case.call, case.prepare, before)))
    # every contender of the group, round by round (see measure_interleaved)
    measure_interleaved([t for _, t in timed], repeat=repeat, min_time=min_time)
    for rec, t in timed:
        if t.error is not None:
            rec.error = f"{type(t.error).__name__}: {t.error}"
            rec.check = "ERROR"
            continue
        rec.times_s = [float(x) for x in t.times]
        rec.median_s = float(np.median(t.times))
        rec.repeat, rec.number = len(t.times), t.number
        rec.gbps = nbytes / rec.median_s / 1e9
        rec.pct_copy = 100.0 * rec.gbps / copy_gbps
    # the denominator: the baseline's first timed row (its smallest thread count); only that
    # row keeps baseline=True, so a threaded baseline's other rows plot as contenders
    flagged = [r for r in records if r.baseline]
    base = next((r for r in flagged if r.median_s), None)
    keep = base if base is not None else (flagged[0] if flagged else None)
    for r in records:
        r.baseline = r is keep
        if base is not None and base.median_s and r.median_s:
            r.speedup = base.median_s / r.median_s
    return records


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal evaluated on the measured medians.

    kind "max_time": the median of ``contender`` must be <= ``threshold`` seconds.
    kind "speedup": median(``versus`` at ``versus_threads``) / median(``contender``) must be
    >= ``threshold``, where ``versus`` is a contender of the same (shape, dist, op) and
    ``versus_threads`` is "same" (the row's thread count; single-threaded NumPy contenders
    have one row whatever it is) or an int.
    shape / dist: a name, a tuple of names or "*" (every measured one: all must pass, the
    worst is shown);
    threads: "all" (the largest count of the sweep), an int, or "*".
    """

    label: str
    op: str
    contender: str
    shape: object  # a name, a tuple of names or "*"
    dist: str
    threshold: float
    kind: str = "speedup"
    versus: Optional[str] = None
    threads: object = "all"
    versus_threads: object = "same"
    needs_torch: bool = False


TARGETS = (
    Target("gather tiny, out=, per call <= 2 us", "gather", FE_GATHER, "tiny", "*", 2e-6,
           kind="max_time"),
    Target("gather big uniform >= 5x numpy E[X]", "gather", FE_GATHER, "big", "uniform", 5.0,
           versus=NP_GATHER),
    Target("gather big uniform >= 1.5x torch index_select(out=)", "gather", FE_GATHER, "big",
           "uniform", 1.5, versus=TORCH_INDEX_SELECT, needs_torch=True),
    Target("gather big zipf >= 3.5x numpy E[X]", "gather", FE_GATHER, "big", "zipf", 3.5,
           versus=NP_GATHER),
    Target("gather never slower than numpy E[X] (every shape, dist, threads)", "gather",
           FE_GATHER, "*", "*", 1.0, versus=NP_GATHER, threads="*"),
    Target("gather big all threads >= 1.5x 1 thread", "gather", FE_GATHER, "big", "*", 1.5,
           versus=FE_GATHER, versus_threads=1),
    Target("scatter_add big uniform >= 24x np.add.at", "scatter_add", FE_SCATTER, "big",
           "uniform", 24.0, versus=NP_ADD_AT),
    Target("scatter_add big uniform >= 1.3x torch index_add_", "scatter_add", FE_SCATTER, "big",
           "uniform", 1.3, versus=TORCH_INDEX_ADD, needs_torch=True),
    Target("scatter_add big zipf >= 30x np.add.at", "scatter_add", FE_SCATTER, "big", "zipf",
           30.0, versus=NP_ADD_AT),
    Target("coalesce big uniform >= 3x torch sparse bwd+coalesce", "coalesce", FE_COALESCE,
           "big", "uniform", 3.0, versus=TORCH_SPARSE, needs_torch=True),
    Target("coalesce big uniform >= 15x argsort+reduceat", "coalesce", FE_COALESCE, "big",
           "uniform", 15.0, versus=NP_REDUCEAT),
    Target("adam_step big zipf: fastembed fused >= 3x torch sparse backward + SparseAdam",
           "adam_step", FE_ADAM_FUSED, "big", "zipf", 3.0, versus=TORCH_SPARSE_ADAM,
           needs_torch=True),
    Target("adam_step big zipf: fastembed fused faster than torch dense backward + "
           "Adam(fused=True)", "adam_step", FE_ADAM_FUSED, "big", "zipf", 1.0,
           versus=TORCH_DENSE_ADAM, needs_torch=True),
    Target("bag_forward big: fastembed embedding_bag mean >= 1.5x torch F.embedding_bag",
           "bag_forward", FE_BAG, "big", "*", 1.5, versus=TORCH_BAG, needs_torch=True),
    # Issue 16: against torch on any x86-64 CPU (2 threads), whatever the CPU of the run.
    Target("gather mid/big/wide >= 1.2x torch index_select(out=)", "gather", FE_GATHER,
           ("mid", "big", "wide"), "*", 1.2, versus=TORCH_INDEX_SELECT, needs_torch=True),
    Target("gather small >= 1.0x torch index_select(out=)", "gather", FE_GATHER, "small", "*",
           1.0, versus=TORCH_INDEX_SELECT, needs_torch=True),
    Target("scatter_add mid/big/wide >= 1.2x torch index_add_", "scatter_add", FE_SCATTER,
           ("mid", "big", "wide"), "*", 1.2, versus=TORCH_INDEX_ADD, needs_torch=True),
    Target("scatter_add small >= 1.0x torch index_add_", "scatter_add", FE_SCATTER, "small",
           "*", 1.0, versus=TORCH_INDEX_ADD, needs_torch=True),
    Target("bag_forward big >= 1.3x torch F.embedding_bag", "bag_forward", FE_BAG, "big", "*",
           1.3, versus=TORCH_BAG, needs_torch=True),
    # >= 0.95x: below 2**20 contributions x D (the small shape) both rows run the same
    # one-thread code (fastembed._rows._COALESCE_PARALLEL_MIN_WORK), and their medians differ
    # by the machine's noise, not by the thread count
    Target("bag_backward: all threads never slower than 1 thread (every shape, dist; "
           ">= 0.95x)", "bag_backward", FE_BAG_BACKWARD, "*", "*", 0.95,
           versus=FE_BAG_BACKWARD, versus_threads=1),
    Target("bag_backward big uniform >= 3x torch sparse bag backward + coalesce",
           "bag_backward", FE_BAG_BACKWARD, "big", "uniform", 3.0, versus=TORCH_BAG_BACKWARD,
           needs_torch=True),
    Target("adam_step big: fused time <= 0.9x unfused backward + step + zero_grad",
           "adam_step", FE_ADAM_FUSED, "big", "*", 1 / 0.9, versus=FE_ADAM),
    Target("adam_step big zipf: fused >= 4x torch sparse backward + SparseAdam", "adam_step",
           FE_ADAM_FUSED, "big", "zipf", 4.0, versus=TORCH_SPARSE_ADAM, needs_torch=True),
)


@dataclass
class TargetResult:
    label: str
    status: str                 # "PASS", "MISS" or "n/a (...)"
    measured: Optional[float]   # seconds (max_time) or a ratio (speedup); the worst row's
    threshold: float
    kind: str
    detail: str = ""


def _matches(value, want):
    return want == "*" or value == want or (isinstance(want, tuple) and value in want)


def _fmt_measured(kind, value):
    return _fmt_time(value) if kind == "max_time" else f"{value:.2f}x"


def evaluate_targets(records, *, all_threads, torch_available, targets=None):
    """Evaluate ``targets`` (default TARGETS) on ``records``; returns TargetResults."""
    out = []
    for t in (TARGETS if targets is None else targets):
        res = TargetResult(t.label, "", None, t.threshold, t.kind)
        out.append(res)
        if t.needs_torch and not torch_available:
            res.status = "n/a (torch not installed)"
            continue
        want_threads = all_threads if t.threads == "all" else t.threads
        if (t.kind == "speedup" and t.versus == t.contender and t.versus_threads != "same"
                and want_threads == t.versus_threads):
            res.status = f"n/a (only {all_threads} thread(s) in the sweep)"
            continue
        rows = [r for r in records
                if r.op == t.op and r.contender == t.contender and r.median_s
                and _matches(r.shape, t.shape) and _matches(r.dist, t.dist)
                and _matches(r.threads, want_threads)]
        if not rows:
            res.status = "n/a (not measured)"
            continue
        values = []
        wrong = []
        for r in rows:
            if not _check_ok(r.check):
                wrong.append(r)
            if t.kind == "max_time":
                values.append((r.median_s, r))
                continue
            peers = [q for q in records
                     if q.op == r.op and q.shape == r.shape and q.dist == r.dist
                     and q.contender == t.versus and q.median_s]
            if len({q.threads for q in peers}) > 1 or t.versus_threads != "same":
                vt = r.threads if t.versus_threads == "same" else t.versus_threads
                peers = [q for q in peers if q.threads == vt]
            if peers:
                values.append((peers[0].median_s / r.median_s, r))
        if not values:
            res.status = "n/a (not measured)"
            continue
        if t.kind == "max_time":
            worst, row = max(values, key=lambda v: v[0])
            ok = worst <= t.threshold
        else:
            worst, row = min(values, key=lambda v: v[0])
            ok = worst >= t.threshold
        res.measured = worst
        where = f"{row.shape}/{row.dist}, {row.threads} thr"
        if len(values) > 1:
            where += f"; worst of {len(values)} rows"
        res.detail = where
        if wrong:
            ok = False
            res.detail += f"; {len(wrong)} row(s) with a wrong result"
        res.status = "PASS" if ok else "MISS"
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _fmt_time(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


_PLACEMENT_TEXT = {
    "aligned": "64-byte aligned, as fastembed allocates them (--placement numpy: NumPy's)",
    "numpy": "where NumPy puts them (16 bytes past a page for large arrays; --placement "
             "numpy)",
}


def format_header(env, copy):
    return "\n".join([
        f"fastembed {env['fastembed_version']} benchmark  ({env['date_utc']} UTC)",
        f"CPU: {env['cpu_model']}; {env['logical_cores']} logical cores; memory "
        f"{env['memory']}; {env['kernel']}",
        f"fastembed {env['fastembed_version']}, openmp_enabled={env['openmp_enabled']} "
        f"(max {env['fastembed_threads']} threads); numpy {env['numpy_version']}; torch "
        f"{env['torch_version']}; Python {env['python']}",
        f"build: {env.get('build', 'unknown')}",
        f"threads: {', '.join(map(str, env['threads']))}; repeat: {env['repeat']} (median; "
        f"each group's contenders interleaved, round by round, each timed call the second of "
        f"two in a row; at most {SLOW_REPEAT} for calls over {SLOW_CALL_SECONDS:g} s, timed "
        f"alone; calls under {MIN_MEASURE_SECONDS * 1e3:g} ms looped, per-call time shown)",
        f"copy limit: np.copyto of {copy['array_bytes'] / 2**30:g} GiB float32 = "
        f"{copy['gbps']:.2f} GB/s (read + write bytes; median of {copy['repeat']})"
        + (f"; {env['copy_limit_end_gbps']:.2f} GB/s at the end"
           if env.get("copy_limit_end_gbps") is not None else ""),
        f"tables: {_PLACEMENT_TEXT[env.get('placement', DEFAULT_PLACEMENT)]}; ids and grads "
        f"where NumPy puts them",
        f"1-minute load average: {env.get('load_average_start')} at the start, "
        f"{env.get('load_average_end')} at the end (the machine may be shared)",
    ])


# why an op's speed-up baseline is not NumPy (printed in the table notes)
BASELINE_NOTES = {
    "adam_step": "torch SparseAdam when torch is importable, else the fastembed unfused path",
}

TABLE_COLUMNS = ("shape", "dist", "op", "contender", "threads", "median", "GB/s", "% copy",
                 "vs numpy", "check")


def format_records(records):
    rows = []
    for r in records:
        rows.append((
            r.shape, r.dist, r.op, r.contender, str(r.threads),
            _fmt_time(r.median_s) if r.median_s else "-",
            f"{r.gbps:.2f}" if r.gbps is not None else "-",
            f"{r.pct_copy:.0f}%" if r.pct_copy is not None else "-",
            f"{r.speedup:.2f}x" if r.speedup is not None else "-",
            r.check,
        ))
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
              for i, c in enumerate(TABLE_COLUMNS)]
    right = {4, 5, 6, 7, 8}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [line(TABLE_COLUMNS), line(["-" * w for w in widths])]
    prev = None
    for r, row in zip(records, rows):
        key = (r.shape, r.dist, r.op)
        if prev is not None and key != prev:
            out.append("")
        prev = key
        out.append(line(row))
    return "\n".join(out)


def format_targets(targets):
    if not targets:
        return "targets: none evaluated"
    width = max(len(t.label) for t in targets)
    out = ["targets (medians; 'all threads' rows unless stated):"]
    for t in targets:
        if t.measured is None:  # "n/a (torch not installed)", "n/a (not measured)"
            out.append(f"  {'n/a':<4}  {t.label:<{width}}  {t.status}")
            continue
        need = ("<= " + _fmt_time(t.threshold) if t.kind == "max_time"
                else f">= {t.threshold:g}x")
        out.append(f"  {t.status:<4}  {t.label:<{width}}  measured "
                   f"{_fmt_measured(t.kind, t.measured)} (need {need}) [{t.detail}]")
    return "\n".join(out)


def format_table(result):
    """The full report: header, table, notes, MISMATCH lines, targets."""
    parts = [format_header(result.environment, result.copy_limit), "",
             format_records(result.records), ""]
    notes = sorted({f"{r.contender}: {r.note}" for r in result.records if r.note})
    notes.append("vs numpy: the NumPy baseline's median / this row's median, same (shape, dist, "
                 "op); numpy rows are single-threaded (threads = 1)")
    for op in dict.fromkeys(r.op for r in result.records):
        bases = list(dict.fromkeys(f"{r.contender} ({r.threads} thr)" for r in result.records
                                   if r.op == op and r.baseline and r.kind != "numpy"))
        if bases:
            why = BASELINE_NOTES.get(op, "")
            notes.append(f"vs numpy for {op}: there is no NumPy contender; the speed-ups are "
                         f"relative to {' / '.join(bases)}" + (f": {why}" if why else ""))
    notes.append("check: ref = the exact reference itself; bitwise / close = equal to it "
                 "bitwise / within float tolerance")
    parts.extend("note: " + n for n in notes)
    bad = result.mismatches
    if bad:
        parts.append("")
        for r in bad:
            parts.append(f"MISMATCH: {r.shape} {r.dist} {r.op} {r.contender} threads="
                         f"{r.threads}: {r.error or r.check}")
        parts.append(f"MISMATCH: {len(bad)} row(s) computed a wrong result or failed")
    parts.extend(["", format_targets(result.targets)])
    return "\n".join(parts)


def write_json(result, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result.to_dict(), f, indent=1, allow_nan=True)
        f.write("\n")


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


class MissingDependencyError(ImportError):
    """An optional dependency (matplotlib for --plot) is not installed."""


PLOT_INSTALL_HINT = ("--plot needs matplotlib, which is not installed: pip install matplotlib "
                     "(or install fastembed's bench extra: pip install -e \".[bench]\")")


def require_matplotlib():
    """Import matplotlib with the Agg backend and return pyplot, or raise a clear error."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError(PLOT_INSTALL_HINT) from exc
    return plt


def plot(result, path):
    """Bar chart of the speed-ups vs NumPy per (op, shape, dist, threads), one panel per op."""
    plt = require_matplotlib()
    from matplotlib.ticker import FuncFormatter, LogLocator

    ops = [op for op in OPS if any(r.op == op for r in result.records)]
    ops += sorted({r.op for r in result.records} - set(ops))
    shape_order = [s.name for s in SHAPES]
    n_groups = max([len({(r.shape, r.dist, r.threads) for r in result.records if r.op == op})
                    for op in ops] + [1])
    fig, axes = plt.subplots(len(ops), 1, squeeze=False,
                             figsize=(max(10.0, 0.75 * n_groups + 4.0), 4.2 * max(1, len(ops))))
    for ax, op in zip(axes[:, 0], ops):
        recs = [r for r in result.records if r.op == op and not r.baseline and r.speedup]
        groups = sorted({(r.shape, r.dist, r.threads) for r in recs},
                        key=lambda k: (shape_order.index(k[0]) if k[0] in shape_order else 99,
                                       k[0], k[1], k[2]))
        names = list(dict.fromkeys(r.contender for r in recs))
        width = 0.8 / max(1, len(names))
        for j, name in enumerate(names):
            xs, ys = [], []
            for i, g in enumerate(groups):
                for r in recs:
                    if r.contender == name and (r.shape, r.dist, r.threads) == g:
                        xs.append(i + (j - (len(names) - 1) / 2) * width)
                        ys.append(r.speedup)
            ax.bar(xs, ys, width=width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{s}\n{d}\n{t} thr" for s, d, t in groups], fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        baseline = next((r.contender for r in result.records if r.op == op and r.baseline), "")
        ax.set_ylabel(f"speed-up vs {baseline}", fontsize=9)
        ax.set_title(f"{op}: speed-up vs {baseline} (median times; higher is better)",
                     fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", which="major", alpha=0.3)
    env = result.environment
    fig.suptitle(f"fastembed {env['fastembed_version']}: {env['cpu_model']}, "
                 f"{env['logical_cores']} cores, numpy {env['numpy_version']}, torch "
                 f"{env['torch_version']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# Command line (python bench/bench_kernels.py)
# --------------------------------------------------------------------------------------------


def _parse_threads(text):
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part == "all":
            out.append(fastembed.get_num_threads())
            continue
        try:
            n = int(part)
        except ValueError:
            raise ValueError(f"bad thread count {part!r}") from None
        if n < 1:
            raise ValueError(f"thread counts must be >= 1, got {n}")
        out.append(n)
    if not out:
        raise ValueError("no thread count given")
    return sorted(set(out))


def _parse_list(text, known, what):
    items = [p.strip() for p in text.split(",") if p.strip()]
    for p in items:
        if p not in known:
            raise ValueError(f"unknown {what} {p!r}; known: {', '.join(known)}")
    return items


def add_arguments(parser):
    """Add the ``bench`` options to an argparse (sub)parser."""
    parser.add_argument("--quick", action="store_true",
                        help="a small subset (tiny, small and mid shapes, 3 repeats, no "
                             "bag_backward), under a minute on 2 cores")
    parser.add_argument("--json", metavar="PATH", dest="bench_json",
                        help="also write every measurement and the environment as JSON")
    parser.add_argument("--plot", metavar="PATH.png", dest="bench_plot",
                        help="also draw the speed-ups vs NumPy as a bar chart (matplotlib)")
    parser.add_argument("--threads", metavar="N,M", dest="bench_threads",
                        help="thread counts to sweep, comma-separated ('all' allowed); "
                             "default 1 and fastembed.get_num_threads()")
    parser.add_argument("--repeat", type=int, metavar="N", dest="bench_repeat",
                        help=f"timed runs per contender (default {DEFAULT_REPEAT}, "
                             f"{QUICK_REPEAT} with --quick; the median is reported)")
    parser.add_argument("--shapes", metavar="A,B", dest="bench_shapes",
                        help="only these shapes (default all; with --quick: "
                             f"{','.join(QUICK_SHAPES)})")
    parser.add_argument("--ops", metavar="A,B", dest="bench_ops",
                        help=f"only these ops (default {','.join(OPS)}; with --quick: "
                             f"{','.join(QUICK_OPS)})")
    parser.add_argument("--no-torch", action="store_true", dest="bench_no_torch",
                        help="leave out the torch contenders even if torch is installed")
    parser.add_argument("--placement", choices=PLACEMENTS, default=DEFAULT_PLACEMENT,
                        dest="bench_placement",
                        help="where the tables lie: 'aligned' on 64-byte cache lines, as "
                             "fastembed allocates them (default), or 'numpy', where np.empty "
                             "puts them; every contender reads the same arrays either way")
    return parser


def main(args, parser=None, file=None):
    """Run the benchmark with parsed ``args``; returns the exit status."""
    file = sys.stdout if file is None else file

    def fail(msg):
        if parser is not None:
            parser.error(msg)  # exits with status 2 and the usage line
        raise SystemExit(f"bench_kernels.py: error: {msg}")

    try:
        threads = _parse_threads(args.bench_threads) if args.bench_threads else None
        shapes = (_parse_list(args.bench_shapes, [s.name for s in SHAPES], "shape")
                  if args.bench_shapes else list(QUICK_SHAPES if args.quick else
                                                 [s.name for s in SHAPES]))
        ops = (_parse_list(args.bench_ops, OPS, "op") if args.bench_ops else
               list(QUICK_OPS if args.quick else OPS))
    except ValueError as exc:
        fail(str(exc))
    repeat = args.bench_repeat
    if repeat is None:
        repeat = QUICK_REPEAT if args.quick else DEFAULT_REPEAT
    if repeat < 1:
        fail("--repeat must be at least 1")
    if args.bench_plot:
        try:
            require_matplotlib()  # fail now, not after minutes of benchmarking
        except MissingDependencyError as exc:
            fail(str(exc))

    def progress(msg):
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = run(shapes=shapes, ops=ops, threads=threads, repeat=repeat,
                 use_torch=not args.bench_no_torch, progress=progress,
                 placement=getattr(args, "bench_placement", DEFAULT_PLACEMENT))
    elapsed = time.perf_counter() - t0
    result.environment["elapsed_s"] = elapsed
    print(format_table(result), file=file)
    print(f"\nbenchmark time: {elapsed:.1f} s", file=file)
    if args.bench_json:
        write_json(result, args.bench_json)
        print(f"wrote {args.bench_json}", file=file)
    if args.bench_plot:
        plot(result, args.bench_plot)
        print(f"wrote {args.bench_plot}", file=file)
    return 1 if result.mismatches else 0


def cli(argv=None):
    """``python bench/bench_kernels.py [options]``: parse the options, run, return the status."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python bench/bench_kernels.py",
        description="Benchmark fastembed's kernels against NumPy (and torch when installed); "
                    "prints a table of medians, GB/s and speed-ups, then the targets.")
    add_arguments(parser)
    return main(parser.parse_args(argv), parser=parser)


if __name__ == "__main__":
    sys.exit(cli())
