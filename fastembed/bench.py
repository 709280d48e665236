"""The benchmark runner behind ``python -m fastembed bench``.

It times fastembed's three kernels against NumPy (the baseline of every speed-up) and, when it
is importable, PyTorch, over a fixed matrix, in one process, with the same input arrays for
every contender, and prints a table of medians and speed-ups followed by a ``targets`` section.

The matrix
----------
* ops: ``gather`` (``E[X]``), ``scatter_add`` (dense ``np.add.at(W, X, G)``) and ``coalesce``
  (the sparse gradient: distinct ids and their summed rows);
* shapes ``(V, D, N)``: tiny (1e3, 16, 32), small (1e4, 64, 8192), mid (1e5, 128, 65536),
  big (1e6, 64, 2**20), wide (1e6, 300, 2**18); float32 tables, int64 ids;
* id distributions: ``uniform`` over [0, V) and ``zipf``: Zipf(1.1) truncated to the ranks
  1..V (p_k proportional to k**-1.1, sampled exactly by inverse CDF, id = k - 1, so the hot
  rows are the low ids; nothing is clipped);
* threads: 1 and all (``fastembed.get_num_threads()``). NumPy's contenders are single-threaded
  and are timed once per (shape, dist, op), shown with threads = 1; fastembed's get
  ``n_threads=t`` and torch's get ``torch.set_num_threads(t)``.

Timing
------
``time.perf_counter``; every contender is called once to warm up, then timed ``repeat`` times
(default 7) and the median is reported. A contender whose single call takes more than
``SLOW_CALL_SECONDS`` is timed ``min(repeat, SLOW_REPEAT)`` times (np.add.at at the big shapes).
A call shorter than ``MIN_MEASURE_SECONDS`` (20 ms) is timed timeit-style: one measurement
is a loop of ``number`` calls lasting at least 20 ms, and the time per call is reported.
The garbage collector is off while timing. For ``torch sparse bwd+coalesce`` the forward
``F.embedding(tX, w, sparse=True)`` runs untimed before every call, and the timed part is
``y.backward(tG)`` followed by ``w.grad.coalesce()``.

The byte model (GB/s and % of the copy limit)
---------------------------------------------
Each row's effective bandwidth is the number of bytes the operation must move, divided by its
median time, in decimal GB/s (1 GB = 1e9 bytes). With s the table's itemsize (4 for float32),
i the ids' itemsize (8 for int64) and U the number of distinct ids:

* gather: ``N*D*s`` rows read + ``N*D*s`` output written + ``N*i`` ids read;
* scatter_add: ``N*D*s`` grad read + ``N*D*s`` table rows read + ``N*D*s`` table rows
  written (``3*N*D*s``) + ``N*i`` ids read;
* coalesce: ``N*D*s`` grad read + ``U*D*s`` values written + ``U*8`` rows written + ``N*i``
  ids read.

The copy limit is ``np.copyto`` of a 1 GiB float32 array into another (2 GiB moved per copy:
1 GiB read + 1 GiB written), single-threaded, median GB/s; "% copy" is a row's GB/s over it.
Multi-threaded rows and cache-resident shapes can exceed 100%.

Correctness
-----------
Before timing, every contender is run once on fresh output buffers (NaN-filled for gather,
zeros for scatter_add) at every thread count, and compared with an exact reference computed
once per (shape, dist): ``E[X]``; ``np.add.at`` into a zeroed table; ``np.unique(X)`` and the
rows of that ``np.add.at`` table (bitwise equal to ``np.unique`` + ``np.add.at`` into a zeroed
(U, D) array, since both add each row's contributions to +0.0 in position order). fastembed
must match bitwise; other contenders (argsort + reduceat, torch index_add_, torch's sparse
coalesce) sum in other orders and may differ within float tolerance ("close"). A failed
check prints MISMATCH in the row's ``check`` column and again below the table, and makes the
command exit with status 1.
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
from typing import Callable, Optional

import numpy as np

import fastembed

__all__ = [
    "Shape", "SHAPES", "QUICK_SHAPES", "DISTS", "OPS", "TARGETS", "Target", "TargetResult",
    "Contender", "CONTENDERS", "Case", "Problem", "Record", "RECORD_FIELDS", "BenchResult",
    "shape_by_name", "default_threads", "zipf_cdf", "make_ids", "make_table", "make_grad",
    "make_problem", "numpy_coalesce", "bytes_moved", "compare", "measure", "measure_copy_limit",
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
OPS = ("gather", "scatter_add", "coalesce")

ZIPF_EXPONENT = 1.1
TABLE_DTYPE = np.float32
IDS_DTYPE = np.int64

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


def shape_by_name(name):
    for s in SHAPES:
        if s.name == name:
            return s
    raise ValueError(f"unknown shape {name!r}; known: {', '.join(s.name for s in SHAPES)}")


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


def make_table(V, D, rng=None, dtype=TABLE_DTYPE):
    """A (V, D) table of standard normal values, generated directly in ``dtype``."""
    if rng is None:
        rng = np.random.default_rng(0)
    return rng.standard_normal((V, D), dtype=dtype)


def make_grad(N, D, rng=None, dtype=TABLE_DTYPE):
    """A (N, D) output gradient of standard normal values."""
    return make_table(N, D, rng, dtype)


def _rng(seed, *keys):
    return np.random.default_rng([seed, *keys])


class Problem:
    """The arrays of one (shape, dist): table E, ids X, grad G, shared outputs, references.

    Every contender of the (shape, dist) reads the same E, X and G; ``out`` (gather's output)
    and ``table`` (scatter_add's target) are shared buffers too. References are computed once
    and cached; ``release()`` drops everything but the inputs.
    """

    def __init__(self, shape, dist, E, X, G):
        self.shape, self.dist = shape, dist
        self.E, self.X, self.G = E, X, G
        self._cache = {}

    # shared timing buffers, allocated and touched on first use
    @property
    def out(self):
        if "out" not in self._cache:
            self._cache["out"] = np.zeros((self.X.size, self.E.shape[1]), self.E.dtype)
        return self._cache["out"]

    @property
    def table(self):
        if "table" not in self._cache:
            self._cache["table"] = np.zeros_like(self.E)
        return self._cache["table"]

    def reference(self, op):
        """The exact result of ``op`` on these arrays (see the module docstring)."""
        key = ("ref", op)
        if key not in self._cache:
            if op == "gather":
                ref = self.E[self.X]
            elif op == "scatter_add":
                ref = np.zeros_like(self.E)
                np.add.at(ref, self.X, self.G)
            elif op == "coalesce":
                rows = np.unique(self.X).astype(np.int64)
                ref = (rows, self.reference("scatter_add")[rows])
            else:
                raise ValueError(f"unknown op {op!r}")
            self._cache[key] = ref
        return self._cache[key]

    def unique_count(self):
        if "U" not in self._cache:
            self._cache["U"] = int(np.unique(self.X).size)
        return self._cache["U"]

    def release(self, *names):
        """Drop cached buffers (all of them when no name is given)."""
        if not names:
            self._cache.clear()
        for name in names:
            self._cache.pop(name, None)


def make_problem(shape, dist, seed=0, *, E=None, G=None):
    """The arrays for one (shape, dist); E and G may be passed in to share them across dists."""
    if E is None:
        E = make_table(shape.V, shape.D, _rng(seed, shape.V, shape.D, 1))
    if G is None:
        G = make_grad(shape.N, shape.D, _rng(seed, shape.N, shape.D, 2))
    X = make_ids(dist, shape.N, shape.V, _rng(seed, shape.V, shape.N, DISTS.index(dist)))
    return Problem(shape, dist, E, X, G)


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


# --------------------------------------------------------------------------------------------
# The byte model
# --------------------------------------------------------------------------------------------


def bytes_moved(op, N, D, itemsize=4, ids_itemsize=8, unique=None):
    """Bytes ``op`` must move (see the module docstring)."""
    rows = N * D * itemsize
    ids = N * ids_itemsize
    if op == "gather":
        return 2 * rows + ids
    if op == "scatter_add":
        return 3 * rows + ids
    if op == "coalesce":
        if unique is None:
            raise ValueError("coalesce's byte count needs the number of distinct ids")
        return rows + unique * D * itemsize + unique * 8 + ids
    raise ValueError(f"unknown op {op!r}")


# --------------------------------------------------------------------------------------------
# Contenders
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One contender bound to one problem and thread count.

    ``call()`` is what is timed; ``prepare()``, when given, runs untimed before every call;
    ``check()`` runs the operation once on fresh outputs and returns its result: an array for
    gather and scatter_add, (rows, values) for coalesce.
    """

    call: Callable[[], object]
    check: Callable[[], object]
    prepare: Optional[Callable[[], object]] = None


@dataclass(frozen=True)
class Contender:
    """A way of computing ``op``.

    make(problem, n_threads, torch) -> Case. ``threaded`` contenders are timed at every thread
    count of the sweep, the others once (threads = 1). ``exact``: the result must be bitwise
    equal to the reference; otherwise "close" within float tolerance passes too.
    ``baseline``: the speed-up denominator of its (shape, dist, op) group.
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


def _fe_gather(p, n, torch):
    def check():
        return fastembed.gather(p.E, p.X, out=_nan_like_out(p), n_threads=n)
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
    state = {}

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
)


# --------------------------------------------------------------------------------------------
# Correctness
# --------------------------------------------------------------------------------------------


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


def _compare_arrays(result, ref, exact):
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
        scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
        close = bool(np.allclose(result, ref, rtol=1e-4, atol=1e-4 * scale))
    if close and not exact:
        return "close"
    why = "not bitwise" if close else "wrong values"
    return f"MISMATCH ({why}; max abs diff {worst:.3g})"


def compare(op, result, ref, exact):
    """'bitwise', 'close' (only when not ``exact``) or 'MISMATCH (...)'."""
    if op == "coalesce":
        rows, values = result
        ref_rows, ref_values = ref
        rows = np.asarray(rows)
        if rows.shape != ref_rows.shape or not np.array_equal(rows, ref_rows):
            return (f"MISMATCH (rows differ: {rows.size} rows vs {ref_rows.size} expected)")
        return _compare_arrays(values, ref_values, exact)
    return _compare_arrays(result, ref, exact)


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


def measure(call, *, repeat, prepare=None, min_time=None, slow=None, slow_repeat=None):
    """Warm up, then time ``call`` and return (per-call seconds of each measurement, number).

    One warm-up call; if it took less than ``min_time`` the loop count ``number`` is raised
    (timeit-style) until one measurement lasts at least ``min_time``; then ``repeat``
    measurements (``min(repeat, slow_repeat)`` if a call takes more than ``slow`` seconds).
    """
    min_time = MIN_MEASURE_SECONDS if min_time is None else min_time
    slow = SLOW_CALL_SECONDS if slow is None else slow
    slow_repeat = SLOW_REPEAT if slow_repeat is None else slow_repeat
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t = _time_loop(call, prepare, 1)            # warm-up
        number = 1
        if t < min_time:
            t = _time_loop(call, prepare, 1)        # a warm single call
            while t < min_time:
                per_call = max(t / number, 1e-9)
                number = max(number * 2, math.ceil(1.2 * min_time / per_call))
                t = _time_loop(call, prepare, number)
        if t / number > slow:
            repeat = min(repeat, slow_repeat)
        times = [_time_loop(call, prepare, number) / number for _ in range(repeat)]
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, number


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
        from . import _kernels
        mtime = os.path.getmtime(_kernels.__file__)
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
        progress=None):
    """Run the matrix and return a :class:`BenchResult` (records, copy limit, targets).

    shapes: Shape objects or names (default: all of SHAPES); threads: the thread counts
    (default 1 and ``fastembed.get_num_threads()``); contenders: default CONTENDERS (the
    torch ones are skipped when ``use_torch`` is False or torch is not importable);
    progress: a callable taking a str, for status lines.
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

    env = environment(threads, repeat, torch)
    say(f"copy limit: np.copyto of {(copy_bytes or COPY_BYTES) / 2**30:g} GiB ...")
    copy = measure_copy_limit(copy_bytes, repeat=repeat)
    env["copy_limit_gbps"] = copy["gbps"]
    records = []
    t_start = time.perf_counter()
    try:
        for shape in shapes:
            E = make_table(shape.V, shape.D, _rng(seed, shape.V, shape.D, 1))
            G = make_grad(shape.N, shape.D, _rng(seed, shape.N, shape.D, 2))
            for dist in dists:
                problem = make_problem(shape, dist, seed, E=E, G=G)
                for op in ops:
                    say(f"[{time.perf_counter() - t_start:7.1f}s] {shape.name} {dist} {op}")
                    group = [c for c in contenders if c.op == op]
                    records.extend(_run_group(problem, op, group, threads, repeat, torch,
                                              copy["gbps"], min_time))
                    problem.release("out", "table")
                problem.release()
                del problem
                gc.collect()
            del E, G
            gc.collect()
    finally:
        if torch is not None:
            torch.set_num_threads(torch_threads_before)
    env["load_average_end"] = _load_average()
    result = BenchResult(env, copy, records)
    result.targets = evaluate_targets(records, all_threads=max(threads),
                                      torch_available=torch is not None)
    return result


def _run_group(problem, op, group, threads, repeat, torch, copy_gbps, min_time):
    shape = problem.shape
    unique = problem.unique_count()
    nbytes = bytes_moved(op, shape.N, shape.D, problem.E.dtype.itemsize,
                         problem.X.dtype.itemsize, unique)
    records = []
    for c in group:
        for n in (threads if c.threaded else [1]):
            if c.kind == "torch" and torch is not None:
                torch.set_num_threads(n)
            rec = Record(shape=shape.name, V=shape.V, D=shape.D, N=shape.N, dist=problem.dist,
                         op=op, contender=c.name, kind=c.kind, threads=n, baseline=c.baseline,
                         median_s=None, times_s=[], repeat=0, number=0, bytes=nbytes,
                         gbps=None, pct_copy=None, speedup=None, check="-",
                         unique_rows=unique, note=c.note)
            case = None
            try:
                case = c.make(problem, n, torch)
                ref = problem.reference(op)
                if c.baseline and op != "coalesce":
                    rec.check = "ref"           # the baseline is the exact reference
                else:
                    rec.check = compare(op, case.check(), ref, c.exact)
                times, number = measure(case.call, repeat=repeat, prepare=case.prepare,
                                        min_time=min_time)
                rec.times_s = [float(t) for t in times]
                rec.median_s = float(np.median(times))
                rec.repeat, rec.number = len(times), number
                rec.gbps = nbytes / rec.median_s / 1e9
                rec.pct_copy = 100.0 * rec.gbps / copy_gbps
            except Exception as exc:  # noqa: BLE001 - reported loudly in the table
                rec.error = f"{type(exc).__name__}: {exc}"
                rec.check = "ERROR"
            records.append(rec)
            case = None
    base = next((r for r in records if r.baseline and r.median_s), None)
    for r in records:
        if base is not None and r.median_s:
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
    shape / dist: a name or "*" (every measured one: all must pass, the worst is shown);
    threads: "all" (the largest count of the sweep), an int, or "*".
    """

    label: str
    op: str
    contender: str
    shape: str
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
    return want == "*" or value == want


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
        f"at most {SLOW_REPEAT} for calls over {SLOW_CALL_SECONDS:g} s; calls under "
        f"{MIN_MEASURE_SECONDS * 1e3:g} ms looped, per-call time shown)",
        f"copy limit: np.copyto of {copy['array_bytes'] / 2**30:g} GiB float32 = "
        f"{copy['gbps']:.2f} GB/s (read + write bytes; median of {copy['repeat']})",
        f"1-minute load average: {env.get('load_average_start')} at the start, "
        f"{env.get('load_average_end')} at the end (the machine may be shared)",
    ])


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
# Command line (python -m fastembed bench)
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
                        help="a small subset (tiny, small and mid shapes, 3 repeats), "
                             "under a minute on 2 cores")
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
                        help=f"only these ops (default {','.join(OPS)})")
    parser.add_argument("--no-torch", action="store_true", dest="bench_no_torch",
                        help="leave out the torch contenders even if torch is installed")
    return parser


def main(args, parser=None, file=None):
    """Run ``python -m fastembed bench`` with parsed ``args``; returns the exit status."""
    file = sys.stdout if file is None else file

    def fail(msg):
        if parser is not None:
            parser.error(msg)  # exits with status 2 and the usage line
        raise SystemExit(f"python -m fastembed bench: error: {msg}")

    try:
        threads = _parse_threads(args.bench_threads) if args.bench_threads else None
        shapes = (_parse_list(args.bench_shapes, [s.name for s in SHAPES], "shape")
                  if args.bench_shapes else list(QUICK_SHAPES if args.quick else
                                                 [s.name for s in SHAPES]))
        ops = _parse_list(args.bench_ops, OPS, "op") if args.bench_ops else list(OPS)
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
                 use_torch=not args.bench_no_torch, progress=progress)
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
