"""Tests of the functional kernels: gather, scatter_add, coalesce, SparseGrad and threads.

Every result is compared with a NumPy reference of ``reference.py``, bitwise:

* ``gather(E, X)``          == ``E[X]``
* ``scatter_add(O, X, G)``  == ``np.add.at(O, X, G)``
* ``coalesce(X, G)``        == ``np.unique(X)`` and ``np.add.at(zeros, inverse, G)``

and every error path is checked to leave all arrays untouched.
"""
from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastembed
from fastembed import (SparseGrad, coalesce, gather, get_num_threads, openmp_enabled,
                       scatter_add, set_num_threads)
from fastembed import functional
from fastembed._rows import partition_rows
from fastembed._ext import indexing
from fastembed._ext.threads import PARALLEL_MIN_WORK, n_threads_for

from conftest import assert_bitwise_equal, make_ids, make_table
from reference import ref_coalesce, ref_gather, ref_scatter_add

FLOATS = [np.float32, np.float64]
INTS = [np.int32, np.int64]
THREADS = [1, 2]
ID_SHAPES = {
    "empty": (0,),
    "empty2d": (3, 0),
    "scalar": (),
    "1d": (17,),
    "2d": (5, 7),
    "3d": (3, 4, 5),
}
KINDS = ["uniform", "zipf", "same"]
V_SMALL, D_SMALL = 13, 5

# Sizes for the parallel tests: ids.size * D must be well above PARALLEL_MIN_WORK.
N_BIG, D_BIG, V_BIG = 200_000, 16, 50_000


# ----------------------------------------------------------------------------------------
# Small helpers (the NumPy references are in reference.py)
# ----------------------------------------------------------------------------------------

def assert_sparse_grad_equal(g, rows, values):
    assert isinstance(g, SparseGrad)
    assert g.rows.dtype == np.int64
    assert_bitwise_equal(g.rows, rows)
    assert_bitwise_equal(g.values, values)
    assert g.values.flags.c_contiguous
    if g.rows.size > 1:
        assert np.all(np.diff(g.rows) > 0), "rows must be strictly ascending"


def random_bytes_like(shape, dtype, rng):
    """An array filled with random bytes: any byte a kernel writes shows up bitwise."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return rng.integers(0, 256, size=n, dtype=np.uint8).view(dtype).reshape(shape)


def snapshot(*arrays):
    return [np.array(a, copy=True) for a in arrays]


def assert_unchanged(arrays, copies):
    for a, c in zip(arrays, copies):
        assert_bitwise_equal(np.asarray(a), c)


def position(flat_pos, shape):
    """Format a position the way fastembed's messages do: '', '[i]' or '[i, j, ...]'."""
    if len(shape) == 0:
        return ""
    idx = np.unravel_index(flat_pos, shape)
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def first_invalid(ids, V):
    flat = np.asarray(ids).reshape(-1)
    bad = np.flatnonzero((flat < 0) | (flat >= V))
    return int(bad[0]) if bad.size else None


def zipf_big(rng, shape=(N_BIG,), V=V_BIG, dtype=np.int64):
    return make_ids("zipf", shape, V, dtype, rng)


# ----------------------------------------------------------------------------------------
# conftest helpers behave as documented (other test files rely on them)
# ----------------------------------------------------------------------------------------

def test_make_ids_distributions(rng):
    u = make_ids("uniform", (4, 500), 7, np.int32, rng)
    assert u.shape == (4, 500) and u.dtype == np.int32
    assert u.min() >= 0 and u.max() < 7 and np.unique(u).size == 7
    s = make_ids("same", (3, 4), 7, np.int64, rng)
    assert s.dtype == np.int64 and np.unique(s).size == 1 and 0 <= s.flat[0] < 7
    z = make_ids("zipf", (200_000,), 1000, np.int64, rng)
    assert z.min() >= 0 and z.max() < 1000
    counts = np.bincount(z, minlength=1000)
    # Hot rows at low ids; p_0 / p_1 = 2**1.1 ~ 2.14 and p_0 ~ 0.14 for V=1000.
    assert counts[0] > counts[1] > counts[9] > counts[99]
    assert 1.9 < counts[0] / counts[1] < 2.4
    # Not clipped: the last id is not a pile-up of the tail mass.
    assert counts[999] < counts[0] / 100
    assert make_ids("uniform", (), 5, np.int32, rng).shape == ()
    assert make_ids("zipf", (3, 0), 5, np.int32, rng).shape == (3, 0)


# ----------------------------------------------------------------------------------------
# The cartesian product: dtypes x id dtypes x threads x id shapes x id distributions
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("table_kind", ["plain", "readonly", "memmap"])
@pytest.mark.parametrize("use_out", [False, True], ids=["alloc", "out"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", list(ID_SHAPES.values()), ids=list(ID_SHAPES))
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_gather_matches_numpy(dtype, id_dtype, n_threads, shape, kind, use_out, table_kind,
                              rng, readonly_memmap):
    E = make_table((V_SMALL, D_SMALL), dtype, rng)
    E[3, 1] = np.nan
    X = make_ids(kind, shape, V_SMALL, id_dtype, rng)
    if table_kind == "plain":
        table = E.copy()
    elif table_kind == "readonly":
        table = E.copy()
        table.flags.writeable = False
    else:
        table = readonly_memmap(E)
        assert isinstance(table, np.memmap) and not table.flags.writeable
    expected = ref_gather(E, X)
    X_copy = X.copy()
    if use_out:
        out = random_bytes_like(X.shape + (D_SMALL,), dtype, rng)
        result = gather(table, X, out=out, n_threads=n_threads)
        assert result is out
    else:
        result = gather(table, X, n_threads=n_threads)
        assert type(result) is np.ndarray
    assert result.shape == X.shape + (D_SMALL,)
    assert result.dtype == dtype
    assert result.flags.c_contiguous
    assert_bitwise_equal(result, expected)
    assert_bitwise_equal(np.asarray(table), E)  # the table is never written
    assert_bitwise_equal(X, X_copy)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", list(ID_SHAPES.values()), ids=list(ID_SHAPES))
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_scatter_add_matches_numpy(dtype, id_dtype, n_threads, shape, kind, rng):
    out = make_table((V_SMALL, D_SMALL), dtype, rng)
    X = make_ids(kind, shape, V_SMALL, id_dtype, rng)
    G = make_table(X.shape + (D_SMALL,), dtype, rng)
    expected = ref_scatter_add(out, X, G)
    X_copy, G_copy = X.copy(), G.copy()
    result = scatter_add(out, X, G, n_threads=n_threads)
    assert result is out
    assert_bitwise_equal(out, expected)
    assert_bitwise_equal(X, X_copy)
    assert_bitwise_equal(G, G_copy)


@pytest.mark.parametrize("given_v", [False, True], ids=["V=None", "V=given"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", list(ID_SHAPES.values()), ids=list(ID_SHAPES))
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_coalesce_matches_numpy(dtype, id_dtype, n_threads, shape, kind, given_v, rng):
    X = make_ids(kind, shape, V_SMALL, id_dtype, rng)
    G = make_table(X.shape + (D_SMALL,), dtype, rng)
    rows, values = ref_coalesce(X, G)
    X_copy, G_copy = X.copy(), G.copy()
    g = coalesce(X, G, num_embeddings=V_SMALL if given_v else None, n_threads=n_threads)
    assert_sparse_grad_equal(g, rows, values)
    assert_bitwise_equal(X, X_copy)
    assert_bitwise_equal(G, G_copy)
    # The dense form is np.add.at into a zero table.
    assert_bitwise_equal(g.to_dense(V_SMALL),
                         ref_scatter_add(np.zeros((V_SMALL, D_SMALL), dtype), X, G))


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_zero_width_and_empty_tables(dtype):
    E0 = np.empty((6, 0), dtype)
    X = np.array([[0, 5], [3, 3]])
    assert gather(E0, X).shape == (2, 2, 0)
    out = np.empty((2, 2, 0), dtype)
    assert gather(E0, X, out=out) is out
    assert scatter_add(E0, X, np.empty((2, 2, 0), dtype)) is E0
    g = coalesce(X, np.empty((2, 2, 0), dtype))
    assert_bitwise_equal(g.rows, np.array([0, 3, 5]))
    assert g.values.shape == (3, 0) and g.values.dtype == dtype
    # A table with no rows accepts no ids, except none at all.
    Ev = np.empty((0, 3), dtype)
    assert gather(Ev, []).shape == (0, 3)
    assert gather(Ev, ()).shape == (0, 3)
    with pytest.raises(IndexError, match=re.escape("ids[0] = 0")):
        gather(Ev, [0])
    with pytest.raises(IndexError, match=re.escape("ids = 0")):
        gather(Ev, 0)
    # Empty ids into an empty table: nothing to do, nothing to complain about.
    assert scatter_add(np.zeros((0, 3), dtype), [], np.zeros((0, 3), dtype)).shape == (0, 3)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_signed_zeros_follow_numpy(dtype, n_threads):
    # -0.0 + -0.0 = -0.0 and +0.0 + -0.0 = +0.0: only an exact replay of np.add.at agrees.
    out = np.array([[-0.0, 0.0], [-0.0, -0.0], [1.0, -1.0]], dtype)
    X = np.array([0, 1, 1, 2])
    G = np.array([[-0.0, -0.0], [-0.0, 0.0], [-0.0, -0.0], [-1.0, 1.0]], dtype)
    expected = ref_scatter_add(out, X, G)
    assert np.signbit(expected[0, 0]) and not np.signbit(expected[0, 1])
    scatter_add(out, X, G, n_threads=n_threads)
    assert_bitwise_equal(out, expected)
    # coalesce starts from +0.0 like np.add.at into np.zeros: all -0.0 sums to +0.0.
    g = coalesce(X, np.full((4, 2), -0.0, dtype), n_threads=n_threads)
    assert_sparse_grad_equal(g, *ref_coalesce(X, np.full((4, 2), -0.0, dtype)))
    assert not np.signbit(g.values).any()
    # gather copies bytes: -0.0 and NaN payloads survive.
    E = np.array([[-0.0, np.nan], [np.inf, -np.inf]], dtype)
    E.view(f"u{E.itemsize}")[0, 1] = 0x7FC0BEEF if dtype == np.float32 else 0x7FF8DEADBEEF0001
    assert np.isnan(E[0, 1])
    assert_bitwise_equal(gather(E, [0, 1, 0], n_threads=n_threads), E[[0, 1, 0]])


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_scatter_add_accepts_noncontiguous_and_list_grad(dtype, rng):
    out = make_table((6, 3), dtype, rng)
    X = np.array([5, 0, 5, 2])
    G_big = make_table((4, 6), dtype, rng)
    G = G_big[:, ::2]
    assert not G.flags.c_contiguous
    expected = ref_scatter_add(out, X, G)
    scatter_add(out, X, G)
    assert_bitwise_equal(out, expected)
    # A broadcast (stride-0) grad is copied, then added like any other.
    row = make_table((3,), dtype, rng)
    Gb = np.broadcast_to(row, (4, 3))
    expected = ref_scatter_add(out, X, Gb)
    scatter_add(out, X, Gb, n_threads=2)
    assert_bitwise_equal(out, expected)
    assert_sparse_grad_equal(coalesce(X, Gb), *ref_coalesce(X, Gb))
    out64 = np.zeros((6, 2))
    scatter_add(out64, [1, 1], [[1.5, 2.0], [0.25, -1.0]])
    assert_bitwise_equal(out64[1], np.array([1.75, 1.0]))
    g = coalesce([3, 1, 3], [[1.0], [2.0], [4.0]])
    assert_sparse_grad_equal(g, np.array([1, 3]), np.array([[2.0], [5.0]]))


def test_scatter_add_into_writeable_memmap(tmp_path, rng):
    E = make_table((40, 8), np.float32, rng)
    path = tmp_path / "table.f32"
    E.tofile(path)
    m = np.memmap(path, dtype=np.float32, mode="r+", shape=E.shape)
    X = make_ids("zipf", (5000,), 40, np.int32, rng)
    G = make_table((5000, 8), np.float32, rng)
    expected = ref_scatter_add(E, X, G)
    assert scatter_add(m, X, G, n_threads=2) is m
    m.flush()
    assert_bitwise_equal(np.asarray(m), expected)
    del m
    assert_bitwise_equal(np.fromfile(path, np.float32).reshape(E.shape), expected)


# ----------------------------------------------------------------------------------------
# Determinism across thread counts, on inputs large enough to run in parallel
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_problem():
    rng = np.random.default_rng(20240601)
    X = make_ids("zipf", (N_BIG // 500, 500), V_BIG, np.int64, rng)
    data = {}
    for dtype in FLOATS:
        E = make_table((V_BIG, D_BIG), dtype, rng)
        G = make_table(X.shape + (D_BIG,), dtype, rng)
        data[np.dtype(dtype)] = (E, G)
    assert X.size * D_BIG >= 16 * PARALLEL_MIN_WORK
    return X, data


def _thread_counts():
    return [1, 2, 3, 7, -1, None]


@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_parallel_determinism_gather(big_problem, dtype, id_dtype):
    X64, data = big_problem
    E, _ = data[np.dtype(dtype)]
    X = X64.astype(id_dtype)
    expected = ref_gather(E, X)
    if openmp_enabled():
        assert n_threads_for(2, X.size * D_BIG) == 2  # really runs on two threads
    out = np.empty(X.shape + (D_BIG,), dtype)
    for n_threads in _thread_counts():
        for _ in range(2):  # repeated runs: identical bytes
            assert_bitwise_equal(gather(E, X, n_threads=n_threads), expected)
        out.fill(-1)
        assert gather(E, X, out=out, n_threads=n_threads) is out
        assert_bitwise_equal(out, expected)


def _spy_scatter_add_owned(monkeypatch):
    """Record (n_threads, owners) of every scatter_add_owned call; returns the list."""
    calls = []
    owned = indexing.scatter_add_owned

    def spy(table, ids, grad, pos, starts, n_threads):
        calls.append((n_threads, len(starts) - 1))
        return owned(table, ids, grad, pos, starts, n_threads)

    monkeypatch.setattr(indexing, "scatter_add_owned", spy)
    return calls


@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_parallel_determinism_scatter_add(big_problem, dtype, id_dtype, monkeypatch):
    X64, data = big_problem
    E, G = data[np.dtype(dtype)]
    X = X64.astype(id_dtype)
    expected = ref_scatter_add(E, X, G)

    calls = _spy_scatter_add_owned(monkeypatch)
    # this table is small enough for scatter_add to pick one thread: force the parallel path
    monkeypatch.setattr(functional, "_SCATTER_PARALLEL_MIN_TABLE_BYTES", 0)
    monkeypatch.setattr(functional, "_SCATTER_PARALLEL_MIN_WORK", 0)
    for n_threads in _thread_counts():
        for _ in range(2):
            out = E.copy()
            assert scatter_add(out, X, G, n_threads=n_threads) is out
            assert_bitwise_equal(out, expected)
    if openmp_enabled():
        # n_threads in {2, 3, 7} certainly went through the parallel kernel, one row range
        # (owner) per thread.
        assert {(2, 2), (3, 3), (7, 7)} <= set(calls)
    else:
        assert {n for n, _ in calls} == {1} and {t for _, t in calls} == {1}


def test_scatter_add_threads_policy(monkeypatch):
    """A small table, or little work, is added on one thread whatever n_threads says."""
    calls = _spy_scatter_add_owned(monkeypatch)
    rng = np.random.default_rng(4)
    small = np.zeros((10_000, 64), np.float32)               # 2.5 MB: stays in cache
    X = rng.integers(0, 10_000, 1 << 15)
    G = rng.standard_normal((X.size, 64), dtype=np.float32)   # 2**21 elements of work
    scatter_add(small, X, G, n_threads=2)
    assert calls == []  # one thread: the C path for plain arrays took it whole
    assert_bitwise_equal(small, ref_scatter_add(np.zeros_like(small), X, G))
    assert functional._scatter_serial_work(small, 2) == sys.maxsize
    assert functional._scatter_serial_work(np.zeros((1 << 20, 64), np.float32), 2) == \
        functional._SCATTER_PARALLEL_MIN_WORK - 1
    assert functional._scatter_serial_work(np.zeros((1 << 20, 64), np.float32), 1) == \
        sys.maxsize
    # the general path, as for a list of ids, also picks one thread
    small[:] = 0
    scatter_add(small, list(X), G, n_threads=2)
    assert calls == [(1, 1)]
    assert_bitwise_equal(small, ref_scatter_add(np.zeros_like(small), X, G))
    assert functional._scatter_threads(2, 32 << 20, 1 << 21) == 2
    assert functional._scatter_threads(7, 32 << 20, 1 << 21) == 7
    assert functional._scatter_threads(2, (32 << 20) - 1, 1 << 30) == 1
    assert functional._scatter_threads(2, 1 << 40, (1 << 21) - 1) == 1
    assert functional._scatter_threads(1, 1 << 40, 1 << 30) == 1


@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_parallel_determinism_coalesce(big_problem, dtype, id_dtype):
    X64, data = big_problem
    _, G = data[np.dtype(dtype)]
    X = X64.astype(id_dtype)
    rows, values = ref_coalesce(X, G)
    for n_threads in _thread_counts():
        for num_embeddings in (None, V_BIG):
            g = coalesce(X, G, num_embeddings=num_embeddings, n_threads=n_threads)
            assert_sparse_grad_equal(g, rows, values)
    assert_bitwise_equal(coalesce(X, G, n_threads=2).to_dense(V_BIG),
                         ref_scatter_add(np.zeros((V_BIG, D_BIG), dtype), X, G))


def test_parallel_determinism_all_same_and_uniform_ids(rng):
    # The two other extremes for the grouping: one giant segment, and many tiny ones.
    G = make_table((N_BIG, 8), np.float32, rng)  # N * D = 1.6e6 elements: parallel
    for kind in ("same", "uniform"):
        X = make_ids(kind, (N_BIG,), V_BIG, np.int64, rng)
        out0 = make_table((V_BIG, G.shape[1]), np.float32, rng)
        expected = ref_scatter_add(out0, X, G)
        rows, values = ref_coalesce(X, G)
        for n_threads in (1, 2, None):
            out = out0.copy()
            scatter_add(out, X, G, n_threads=n_threads)
            assert_bitwise_equal(out, expected)
            assert_sparse_grad_equal(coalesce(X, G, n_threads=n_threads), rows, values)


# ----------------------------------------------------------------------------------------
# Other id types
# ----------------------------------------------------------------------------------------

ID_CONVERSIONS = {
    "int8": lambda X: X.astype(np.int8),
    "int16": lambda X: X.astype(np.int16),
    "uint8": lambda X: X.astype(np.uint8),
    "uint16": lambda X: X.astype(np.uint16),
    "uint32": lambda X: X.astype(np.uint32),
    "uint64": lambda X: X.astype(np.uint64),
    "intp": lambda X: X.astype(np.intp),
    "list": lambda X: X.tolist(),
    "tuple": lambda X: tuple(tuple(int(v) for v in row) for row in X),
    "list_of_np_ints": lambda X: [[np.int16(v) for v in row] for row in X],
    "strided": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "reversed": lambda X: X[::-1, ::-1].copy()[::-1, ::-1],
    "fortran": lambda X: np.asfortranarray(X),
    "big_endian_i4": lambda X: X.astype(">i4"),
    "big_endian_i8": lambda X: X.astype(">i8"),
    "big_endian_u2": lambda X: X.astype(">u2"),
    "big_endian_u8": lambda X: X.astype(">u8"),
    "big_endian_strided": lambda X: np.repeat(X.astype(">i8"), 3, axis=0)[::3],
}


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("conv", list(ID_CONVERSIONS.values()), ids=list(ID_CONVERSIONS))
def test_other_id_types(conv, n_threads, rng):
    V, D = 50, 3
    X = make_ids("zipf", (6, 9), V, np.int64, rng)
    ids = conv(X)
    if isinstance(ids, np.ndarray):
        assert np.array_equal(ids, X)
    E = make_table((V, D), np.float64, rng)
    G = make_table(X.shape + (D,), np.float64, rng)
    assert_bitwise_equal(gather(E, ids, n_threads=n_threads), ref_gather(E, X))
    out = E.copy()
    scatter_add(out, ids, G, n_threads=n_threads)
    assert_bitwise_equal(out, ref_scatter_add(E, X, G))
    assert_sparse_grad_equal(coalesce(ids, G, num_embeddings=V, n_threads=n_threads),
                             *ref_coalesce(X, G))


@pytest.mark.parametrize("ids", [3, np.int8(3), np.uint64(3), np.array(3, ">i2")],
                         ids=["int", "np.int8", "np.uint64", "0d_big_endian"])
def test_scalar_ids(ids, rng):
    E = make_table((5, 4), np.float32, rng)
    assert_bitwise_equal(gather(E, ids), E[3])
    out = E.copy()
    scatter_add(out, ids, np.ones(4, np.float32))
    assert_bitwise_equal(out, ref_scatter_add(E, 3, np.ones(4, np.float32)))
    assert_sparse_grad_equal(coalesce(ids, np.ones(4)), np.array([3]), np.ones((1, 4)))


@pytest.mark.parametrize("conv", [
    lambda X: X.astype(np.uint16),
    lambda X: X.astype(">i4"),
    lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    lambda X: X.astype(np.uint64),
    lambda X: np.asfortranarray(X.astype(np.int32)),
], ids=["uint16", "big_endian_i4", "strided", "uint64", "fortran_i32"])
def test_other_id_types_parallel(conv, big_problem):
    X, data = big_problem
    E, G = data[np.dtype(np.float32)]
    ids = conv(X)
    assert np.array_equal(ids, X)
    expected = ref_scatter_add(E, X, G)
    rows, values = ref_coalesce(X, G)
    for n_threads in (1, 2):
        assert_bitwise_equal(gather(E, ids, n_threads=n_threads), ref_gather(E, X))
        out = E.copy()
        scatter_add(out, ids, G, n_threads=n_threads)
        assert_bitwise_equal(out, expected)
        assert_sparse_grad_equal(coalesce(ids, G, n_threads=n_threads), rows, values)


@pytest.mark.parametrize("ids, where, value", [
    (np.array([0, 2**63], np.uint64), "ids[1]", 2**63),
    (np.array([[0, 1], [2**64 - 1, 2**63]], np.uint64), "ids[1, 0]", 2**64 - 1),
    (np.array(2**63 + 5, np.uint64), "ids", 2**63 + 5),
    (np.array([1, 2**63], ">u8"), "ids[1]", 2**63),
    ([2**63 + 1, 2**63], "ids[0]", 2**63 + 1),  # NumPy makes this list uint64
], ids=["1d", "2d", "0d", "big_endian", "list"])
def test_uint64_above_int64_max_raises(ids, where, value, rng):
    E = make_table((4, 3), np.float64, rng)
    pattern = re.escape(f"{where} = {value}")
    shape = np.shape(ids)
    out = random_bytes_like(shape + (3,), np.float64, rng)
    before = snapshot(E, out)
    with pytest.raises(IndexError, match=pattern):
        gather(E, ids, out=out)
    with pytest.raises(IndexError, match=pattern):
        scatter_add(E, ids, np.ones(shape + (3,)))
    with pytest.raises(IndexError, match=pattern):
        coalesce(ids, np.ones(shape + (3,)))
    assert_unchanged([E, out], before)


def test_uint64_at_int64_max_is_just_out_of_range(rng):
    E = make_table((4, 3), np.float64, rng)
    ids = np.array([1, 2**63 - 1], np.uint64)
    with pytest.raises(IndexError, match=re.escape(f"ids[1] = {2**63 - 1} is out of range")):
        gather(E, ids)


def test_coalesce_huge_ids_without_num_embeddings():
    # No table, so ids may be huge: the radix sort needs several passes.
    ids = np.array([2**62, 5, 2**62, 2**40 + 1, 5, 0], np.uint64)
    G = np.arange(12, dtype=np.float64).reshape(6, 2)
    for n_threads in (1, 2):
        g = coalesce(ids, G, n_threads=n_threads)
        assert_sparse_grad_equal(g, *ref_coalesce(ids.astype(np.int64), G))


def test_coalesce_accepts_the_largest_nonnegative_id():
    # The docstring promises any non-negative id when num_embeddings is None; int64 max is one.
    ids = np.array([2**63 - 1, 3, 2**63 - 1], np.int64)
    g = coalesce(ids, np.ones((3, 2)))
    assert_sparse_grad_equal(g, np.array([3, 2**63 - 1]), np.array([[1.0, 1.0], [2.0, 2.0]]))


# ----------------------------------------------------------------------------------------
# Property tests
# ----------------------------------------------------------------------------------------

ID_DTYPES_ALL = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                 np.uint64]
PROPERTY_SETTINGS = settings(max_examples=75, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, allow_nan=False, id_lo=0, id_hi_extra=0, signed_ids=False):
    dtype = draw(st.sampled_from(FLOATS))
    id_dtypes = [d for d in ID_DTYPES_ALL if not signed_ids or np.dtype(d).kind == "i"]
    id_dtype = draw(st.sampled_from(id_dtypes))
    V = draw(st.integers(1, 40))
    D = draw(st.integers(0, 6))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    X = draw(hnp.arrays(id_dtype, shape, elements=st.integers(id_lo, V - 1 + id_hi_extra)))
    width = 32 if dtype == np.float32 else 64
    floats = st.floats(width=width, allow_nan=allow_nan)
    E = draw(hnp.arrays(dtype, (V, D), elements=floats))
    G = draw(hnp.arrays(dtype, shape + (D,), elements=floats))
    n_threads = draw(st.sampled_from([1, 2, 3, -1, None]))
    return E, X, G, n_threads


@PROPERTY_SETTINGS
@given(problems(allow_nan=True), st.booleans())
def test_property_gather(problem, use_out):
    E, X, _, n_threads = problem
    expected = ref_gather(E, X.astype(np.int64))
    if use_out:
        out = np.full(expected.shape, 7, E.dtype)
        assert gather(E, X, out=out, n_threads=n_threads) is out
    else:
        out = gather(E, X, n_threads=n_threads)
    assert_bitwise_equal(out, expected)


@PROPERTY_SETTINGS
@given(problems())
def test_property_scatter_add(problem):
    E, X, G, n_threads = problem
    expected = ref_scatter_add(E, X.astype(np.int64), G)
    out = E.copy()
    assert scatter_add(out, X, G, n_threads=n_threads) is out
    assert_bitwise_equal(out, expected)


@PROPERTY_SETTINGS
@given(problems(), st.booleans())
def test_property_coalesce(problem, given_v):
    E, X, G, n_threads = problem
    V = E.shape[0]
    g = coalesce(X, G, num_embeddings=V if given_v else None, n_threads=n_threads)
    assert_sparse_grad_equal(g, *ref_coalesce(X, G))
    dense = ref_scatter_add(np.zeros(E.shape, E.dtype), X.astype(np.int64), G)
    assert_bitwise_equal(g.to_dense(V), dense)


@PROPERTY_SETTINGS
@given(problems(id_lo=-3, id_hi_extra=3, signed_ids=True))
def test_property_out_of_range_ids(problem):
    """Any bad id raises IndexError naming the first bad one; nothing is written."""
    E, X, G, n_threads = problem
    V = E.shape[0]
    bad = first_invalid(X, V)
    out = np.full(X.shape + (E.shape[1],), 7, E.dtype)
    table = E.copy()
    if bad is None:
        assert_bitwise_equal(gather(E, X, out=out, n_threads=n_threads), ref_gather(E, X))
        scatter_add(table, X, G, n_threads=n_threads)
        assert_bitwise_equal(table, ref_scatter_add(E, X, G))
        return
    value = int(X.reshape(-1)[bad])
    message = re.escape(f"ids{position(bad, X.shape)} = {value} ")
    before = snapshot(E, out, table, G)
    with pytest.raises(IndexError, match=message):
        gather(E, X, out=out, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        scatter_add(table, X, G, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        coalesce(X, G, num_embeddings=V, n_threads=n_threads)
    if value < 0:
        with pytest.raises(IndexError, match=message):
            coalesce(X, G, n_threads=n_threads)
    assert_unchanged([E, out, table, G], before)


# ----------------------------------------------------------------------------------------
# Error paths: each leaves every array untouched
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("ids, where, value", [
    ([[0, 1], [-3, 2]], "ids[1, 0]", -3),
    ([4, 0, -1, 2], "ids[2]", -1),
    (-2, "ids", -2),
    ([[[0, 1]], [[2, -7]]], "ids[1, 0, 1]", -7),
    (np.array([1, -2**31], np.int32), "ids[1]", -2**31),
    (np.array([[1], [-2**63]], np.int64), "ids[1, 0]", -2**63),
    (np.array([1, -1], np.int8), "ids[1]", -1),
    ([[0, 5], [-1, 0]], "ids[0, 1]", 5),            # the first bad id is reported
], ids=["2d", "1d", "0d", "3d", "int32_min", "int64_min", "int8", "first_of_two"])
def test_negative_and_too_large_ids(ids, where, value, n_threads, rng):
    V, D = 5, 3
    E = make_table((V, D), np.float32, rng)
    shape = np.shape(ids)
    out = random_bytes_like(shape + (D,), np.float32, rng)
    table = E.copy()
    G = make_table(shape + (D,), np.float32, rng)
    before = snapshot(E, out, table, G)
    message = re.escape(f"{where} = {value} ")
    with pytest.raises(IndexError, match=message):
        gather(E, ids, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        gather(E, ids, out=out, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        scatter_add(table, ids, G, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        coalesce(ids, G, num_embeddings=V, n_threads=n_threads)
    if value < 0:
        with pytest.raises(IndexError, match=message + ".*negative"):
            coalesce(ids, G, n_threads=n_threads)
    assert_unchanged([E, out, table, G], before)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("ids, where", [
    ([0, 5], "ids[1]"),
    ([[0, 1], [2, 5]], "ids[1, 1]"),
    (5, "ids"),
], ids=["1d", "2d", "0d"])
def test_id_equal_to_num_embeddings(ids, where, n_threads, rng):
    V, D = 5, 4
    E = make_table((V, D), np.float64, rng)
    shape = np.shape(ids)
    out = random_bytes_like(shape + (D,), np.float64, rng)
    table = E.copy()
    G = make_table(shape + (D,), np.float64, rng)
    before = snapshot(E, out, table, G)
    message = re.escape(f"{where} = 5 is out of range")
    with pytest.raises(IndexError, match=message):
        gather(E, ids, out=out, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        scatter_add(table, ids, G, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        coalesce(ids, G, num_embeddings=5, n_threads=n_threads)
    assert_unchanged([E, out, table, G], before)
    # One more row and the same ids are fine.
    assert_bitwise_equal(coalesce(ids, G, num_embeddings=6).to_dense(6),
                         ref_scatter_add(np.zeros((6, D)), ids, G))


@pytest.mark.parametrize("n_threads", [2, None, -1])
@pytest.mark.parametrize("bad_value", [-1, V_BIG], ids=["negative", "too_large"])
@pytest.mark.parametrize("where", ["late", "early_and_late", "middle"])
def test_bad_id_in_large_parallel_input_changes_nothing(where, bad_value, n_threads, rng):
    X = zipf_big(rng, shape=(N_BIG // 1000, 1000))
    flat = X.reshape(-1)
    if where == "late":
        first = N_BIG - 1
    elif where == "middle":
        first = N_BIG // 2 + 17
    else:
        first = 12
        flat[N_BIG - 3] = -5
    flat[first] = bad_value
    out = make_table((V_BIG, D_BIG), np.float32, rng)
    G = make_table(X.shape + (D_BIG,), np.float32, rng)
    gout = random_bytes_like(X.shape + (D_BIG,), np.float32, rng)
    before = snapshot(out, G, gout, X)
    message = re.escape(f"ids{position(first, X.shape)} = {bad_value} ")
    with pytest.raises(IndexError, match=message):
        scatter_add(out, X, G, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        scatter_add(out, X.astype(np.int32), G, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        gather(out, X, out=gout, n_threads=n_threads)
    with pytest.raises(IndexError, match=message):
        coalesce(X, G, num_embeddings=V_BIG, n_threads=n_threads)
    assert_unchanged([out, G, gout, X], before)


@pytest.mark.parametrize("ids", [
    [0.0, 1.0],
    np.array([0, 1], np.float32),
    np.array([0, 1], np.float64),
    np.empty(0, np.float64),
    np.array(1.0),
    [True, False],
    np.array([True]),
    True,
    ["0", "1"],
    np.array(["a", "b"]),
    np.array([0, 1], dtype=object),
    [0, None],
    np.array([0, 1], np.complex128),
    np.array([0, 1], "m8[s]"),
], ids=["float_list", "f32", "f64", "empty_f64_array", "0d_float", "bool_list", "bool_array",
        "bool", "str_list", "str_array", "object", "None", "complex", "timedelta"])
def test_non_integer_ids_raise_type_error(ids, rng):
    E = make_table((4, 3), np.float64, rng)
    shape = np.shape(np.asarray(ids, dtype=object)) if not isinstance(ids, np.ndarray) else ids.shape
    out = random_bytes_like(tuple(shape) + (3,), np.float64, rng)
    table = E.copy()
    G = np.ones(tuple(shape) + (3,))
    before = snapshot(E, out, table, G)
    with pytest.raises(TypeError, match="ids must be integers"):
        gather(E, ids)
    with pytest.raises(TypeError, match="ids must be integers"):
        gather(E, ids, out=out)
    with pytest.raises(TypeError, match="ids must be integers"):
        scatter_add(table, ids, G)
    with pytest.raises(TypeError, match="ids must be integers"):
        coalesce(ids, G)
    assert_unchanged([E, out, table, G], before)


def test_bool_ids_message_says_so():
    with pytest.raises(TypeError, match="booleans are not ids"):
        gather(np.zeros((2, 2)), np.array([True, False]))


@pytest.mark.parametrize("weight, exc, match", [
    ([[0.0, 1.0], [2.0, 3.0]], TypeError, "numpy.ndarray"),
    (((0.0, 1.0), (2.0, 3.0)), TypeError, "numpy.ndarray"),
    (np.arange(6, dtype=np.int64).reshape(3, 2), TypeError, "dtype float32 or float64"),
    (np.arange(6, dtype=np.int32).reshape(3, 2), TypeError, "dtype float32 or float64"),
    (np.zeros((3, 2), np.float16), TypeError, "dtype float32 or float64"),
    (np.zeros((3, 2), np.longdouble), TypeError, "dtype float32 or float64"),
    (np.zeros((3, 2), np.complex64), TypeError, "dtype float32 or float64"),
    (np.zeros((3, 2), ">f4"), TypeError, "dtype float32 or float64"),
    (np.zeros((3, 2), bool), TypeError, "dtype float32 or float64"),
    (np.zeros(6, np.float32), ValueError, "2-D"),
    (np.zeros((3, 2, 1), np.float64), ValueError, "2-D"),
    (np.zeros((), np.float64), ValueError, "2-D"),
    (np.asfortranarray(np.zeros((3, 2), np.float32)), ValueError, "np.ascontiguousarray"),
    (np.zeros((3, 4), np.float64)[:, ::2], ValueError, "np.ascontiguousarray"),
    (np.zeros((6, 2), np.float32)[::2], ValueError, "np.ascontiguousarray"),
    (np.zeros((3, 2), np.float64)[::-1], ValueError, "np.ascontiguousarray"),
    (np.zeros((2, 3), np.float32).T, ValueError, "np.ascontiguousarray"),
], ids=["list", "tuple", "int64", "int32", "float16", "longdouble", "complex64",
        "big_endian_f4", "bool", "1d", "3d", "0d", "fortran", "strided_cols", "strided_rows",
        "reversed", "transposed"])
def test_bad_table(weight, exc, match, rng):
    ids = np.array([[0, 1], [1, 0]])
    before = snapshot(np.asarray(weight))
    D = np.shape(weight)[-1] if np.ndim(weight) >= 1 else 1
    dtype = np.float32 if getattr(weight, "dtype", None) == np.float32 else np.float64
    out = random_bytes_like((2, 2, D), dtype, rng)
    out_before = snapshot(out)
    with pytest.raises(exc, match=match):
        gather(weight, ids)
    with pytest.raises(exc, match=match):
        gather(weight, ids, out=out)
    # scatter_add validates its table the same way (the name in the message is "out").
    grad = np.ones((2, 2, D), dtype=getattr(weight, "dtype", np.float64))
    with pytest.raises(exc, match=match):
        scatter_add(weight, ids, grad)
    assert_unchanged([np.asarray(weight), out], before + out_before)


def test_noncontiguous_table_message_names_the_fix():
    E = np.zeros((4, 6), np.float32)[:, ::2]
    with pytest.raises(ValueError, match=re.escape("np.ascontiguousarray(weight)")):
        gather(E, [0])
    with pytest.raises(ValueError, match=re.escape("np.ascontiguousarray(out)")):
        scatter_add(E, [0], np.ones((1, 3), np.float32))


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_bad_out_for_gather(dtype, rng):
    E = make_table((6, 4), dtype, rng)
    E_before = E.copy()
    ids = np.array([[0, 5, 1], [2, 2, 3]])
    other = np.float32 if dtype == np.float64 else np.float64

    def check(out, exc, match):
        before = snapshot(out) if isinstance(out, np.ndarray) else []
        with pytest.raises(exc, match=match):
            gather(E, ids, out=out)
        if before:
            assert_unchanged([out], before)
        assert_bitwise_equal(E, E_before)

    check(random_bytes_like((2, 3, 5), dtype, rng), ValueError, "shape")
    check(random_bytes_like((2, 4, 4), dtype, rng), ValueError, "shape")
    check(random_bytes_like((6, 4), dtype, rng), ValueError, "shape")
    check(random_bytes_like((2, 3, 4, 1), dtype, rng), ValueError, "shape")
    check(random_bytes_like((2, 3, 4), other, rng), TypeError, "dtype")
    check(random_bytes_like((2, 3, 4), np.int64, rng), TypeError, "dtype")
    check(random_bytes_like((2, 3, 4), np.dtype(dtype).newbyteorder(">"), rng), TypeError,
          "dtype")
    ro = random_bytes_like((2, 3, 4), dtype, rng)
    ro.flags.writeable = False
    check(ro, ValueError, "read-only")
    check(np.asfortranarray(random_bytes_like((2, 3, 4), dtype, rng)), ValueError,
          "C-contiguous")
    check(random_bytes_like((2, 3, 8), dtype, rng)[..., ::2], ValueError, "C-contiguous")
    check(np.zeros((2, 3, 4)).tolist(), TypeError, "numpy.ndarray")
    # out overlapping the table: a slice of the table, and the whole table.
    big = make_table((12, 4), dtype, rng)
    big_before = big.copy()
    for out in (big[2:8].reshape(2, 3, 4), big[6:12].reshape(2, 3, 4)):
        with pytest.raises(ValueError, match="share memory"):
            gather(big, ids, out=out)
        assert_bitwise_equal(big, big_before)
    with pytest.raises(ValueError, match="share memory"):
        gather(big, np.arange(12), out=big)
    assert_bitwise_equal(big, big_before)


def test_bad_out_for_gather_readonly_memmap(readonly_memmap, rng):
    E = make_table((6, 4), np.float32, rng)
    out = readonly_memmap(random_bytes_like((3, 4), np.float32, rng))
    before = snapshot(out)
    with pytest.raises(ValueError, match="read-only"):
        gather(E, [0, 1, 2], out=out)
    assert_unchanged([out], before)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_scatter_add_bad_out_and_grad(dtype, rng, readonly_memmap):
    other = np.float32 if dtype == np.float64 else np.float64
    ids = np.array([[0, 3], [3, 1]])
    grad = make_table((2, 2, 4), dtype, rng)

    def check(out, grad, exc, match, n_threads=None):
        arrays = [a for a in (out, grad) if isinstance(a, np.ndarray)]
        before = snapshot(*arrays)
        with pytest.raises(exc, match=match):
            scatter_add(out, ids, grad, n_threads=n_threads)
        assert_unchanged(arrays, before)

    table = make_table((5, 4), dtype, rng)
    ro = table.copy()
    ro.flags.writeable = False
    check(ro, grad, ValueError, "read-only")
    check(readonly_memmap(table), grad, ValueError, "read-only")
    # grad of the wrong dtype
    check(table, grad.astype(other), TypeError, "grad must have the table's dtype")
    check(table, grad.astype(np.float16), TypeError, "grad must have the table's dtype")
    check(table, grad.astype(np.int64), TypeError, "grad must have the table's dtype")
    check(table, grad.astype(np.int64).tolist(), TypeError, "grad must have the table's dtype")
    # grad of the wrong shape
    check(table, make_table((2, 2, 5), dtype, rng), ValueError, "grad must have shape")
    check(table, make_table((2, 2, 3), dtype, rng), ValueError, "grad must have shape")
    check(table, make_table((4, 4), dtype, rng), ValueError, "grad must have shape")
    check(table, make_table((2, 3, 4), dtype, rng), ValueError, "grad must have shape")
    check(table, make_table((2, 2), dtype, rng), ValueError, "grad must have shape")
    check(table, make_table((2, 2, 4, 1), dtype, rng), ValueError, "grad must have shape")
    # grad overlapping out
    big = make_table((10, 4), dtype, rng)
    check(big, big[2:6].reshape(2, 2, 4), ValueError, "share memory")
    check(big, big[6:10].reshape(2, 2, 4), ValueError, "share memory", n_threads=2)
    # n_threads
    check(table, grad, ValueError, "n_threads must be a non-zero int", n_threads=0)
    check(table, grad, TypeError, "n_threads", n_threads="2")


def test_coalesce_errors(rng):
    ids = np.array([[0, 5], [2, 5]])
    G = make_table((2, 2, 3), np.float64, rng)

    def check(ids, grad, exc, match, **kwargs):
        arrays = [a for a in (ids, grad) if isinstance(a, np.ndarray)]
        before = snapshot(*arrays)
        with pytest.raises(exc, match=match):
            coalesce(ids, grad, **kwargs)
        assert_unchanged(arrays, before)

    check(ids, G, IndexError, re.escape("ids[0, 1] = 5 is out of range"), num_embeddings=5)
    check(ids, G, IndexError, re.escape("ids[0, 1] = 5 is out of range"), num_embeddings=3)
    check(ids, G, IndexError, re.escape("ids[0, 0] = 0 is out of range"), num_embeddings=0)
    check(ids, G, IndexError, re.escape("ids[0, 1] = 5 is out of range"),
          num_embeddings=np.int64(5), n_threads=2)
    check(np.array([[0, 5], [-2, 5]]), G, IndexError, re.escape("ids[1, 0] = -2 is negative"))
    check(ids, G.astype(np.float16), TypeError, "float32 or float64")
    check(ids, G.astype(np.int64), TypeError, "float32 or float64")
    check(ids, G.astype(np.complex128), TypeError, "float32 or float64")
    check(ids, G[..., 0], ValueError, "grad must have shape")
    check(ids, G[0], ValueError, "grad must have shape")
    check(ids, G[:, :1], ValueError, "grad must have shape")
    check(ids, G[None], ValueError, "grad must have shape")
    check(ids, G, ValueError, "n_threads must be a non-zero int", n_threads=0)
    check(ids, G, TypeError, "n_threads", n_threads="2")
    # Good call for contrast: the coalesced gradient is right.
    assert_sparse_grad_equal(coalesce(ids, G, num_embeddings=6), *ref_coalesce(ids, G))


@pytest.mark.parametrize("num_embeddings", [-1, -5])
def test_coalesce_negative_num_embeddings_raises(num_embeddings):
    # No id lies in [0, num_embeddings) when num_embeddings < 0: this must be an error, not a
    # silently wrong (unsorted, ungrouped) SparseGrad.
    ids = np.array([3, 1, 2, 1])
    G = np.arange(4.0).reshape(4, 1)
    before = snapshot(ids, G)
    with pytest.raises((IndexError, ValueError)):
        coalesce(ids, G, num_embeddings=num_embeddings)
    assert_unchanged([ids, G], before)


@pytest.mark.parametrize("n_threads, exc", [
    (0, ValueError), ("2", TypeError), (2.0, TypeError), (True, TypeError),
    (False, TypeError), ([2], TypeError), (np.float64(2), TypeError),
])
def test_bad_n_threads(n_threads, exc, rng):
    E = make_table((5, 3), np.float32, rng)
    ids = [[1, 4], [0, 4]]
    out = random_bytes_like((2, 2, 3), np.float32, rng)
    table = E.copy()
    G = make_table((2, 2, 3), np.float32, rng)
    before = snapshot(E, out, table, G)
    with pytest.raises(exc):
        gather(E, ids, out=out, n_threads=n_threads)
    with pytest.raises(exc):
        scatter_add(table, ids, G, n_threads=n_threads)
    with pytest.raises(exc):
        coalesce(ids, G, n_threads=n_threads)
    assert_unchanged([E, out, table, G], before)
    # Also on an input large enough to be parallel.
    X = zipf_big(rng, shape=(40_000,), V=5)
    with pytest.raises(exc):
        gather(E, X, n_threads=n_threads)


@pytest.mark.parametrize("n_threads", [1, 2, 64, -1, -2, -1000, None, np.int64(2),
                                       np.uint8(3)])
def test_good_n_threads_values(n_threads, rng):
    E = make_table((7, 5), np.float64, rng)
    X = make_ids("zipf", (10_000,), 7, np.int64, rng)  # 50_000 elements of work: parallel
    G = make_table((10_000, 5), np.float64, rng)
    assert_bitwise_equal(gather(E, X, n_threads=n_threads), ref_gather(E, X))
    out = E.copy()
    scatter_add(out, X, G, n_threads=n_threads)
    assert_bitwise_equal(out, ref_scatter_add(E, X, G))
    assert_sparse_grad_equal(coalesce(X, G, n_threads=n_threads), *ref_coalesce(X, G))


@pytest.mark.parametrize("n_threads", [1, 2, 3, 7, 64])
def test_more_threads_than_ids(n_threads, rng):
    # 33 ids x 1024 columns is parallel work, so the kernels cut 33 positions into up to
    # n_threads chunks, some of them a single id.
    V, D = 5, 1024
    E = make_table((V, D), np.float32, rng)
    X = make_ids("zipf", (3, 11), V, np.int32, rng)
    G = make_table((3, 11, D), np.float32, rng)
    assert X.size * D >= PARALLEL_MIN_WORK
    assert_bitwise_equal(gather(E, X, n_threads=n_threads), ref_gather(E, X))
    out = E.copy()
    scatter_add(out, X, G, n_threads=n_threads)
    assert_bitwise_equal(out, ref_scatter_add(E, X, G))
    assert_sparse_grad_equal(coalesce(X, G, n_threads=n_threads), *ref_coalesce(X, G))
    X[2, 10] = V
    with pytest.raises(IndexError, match=re.escape(f"ids[2, 10] = {V} ")):
        scatter_add(out, X, G, n_threads=n_threads)


# ----------------------------------------------------------------------------------------
# Thread-count API
# ----------------------------------------------------------------------------------------

def test_openmp_enabled_is_bool():
    assert isinstance(openmp_enabled(), bool)
    assert openmp_enabled() is fastembed.openmp_enabled()


def test_get_num_threads_positive():
    n = get_num_threads()
    assert isinstance(n, int) and n >= 1
    if not openmp_enabled():
        assert n == 1


def test_set_num_threads_round_trip():
    before = get_num_threads()
    try:
        set_num_threads(1)
        assert get_num_threads() == 1
        big = N_BIG * D_BIG
        assert n_threads_for(None, big) == 1  # n_threads=None follows it
        set_num_threads(3)
        assert get_num_threads() == (3 if openmp_enabled() else 1)
        assert n_threads_for(None, big) == get_num_threads()
        assert n_threads_for(-1, big) == get_num_threads()
        assert n_threads_for(-2, big) == max(1, get_num_threads() - 1)
        assert n_threads_for(None, PARALLEL_MIN_WORK - 1) == 1  # small work: one thread
        set_num_threads(-1)
        assert get_num_threads() >= 1
        set_num_threads(-10**6)
        assert get_num_threads() == 1
    finally:
        set_num_threads(before)
    assert get_num_threads() == before


@pytest.mark.parametrize("n, exc", [(0, ValueError), ("2", TypeError), (2.0, TypeError),
                                    (True, TypeError), (None, TypeError)])
def test_set_num_threads_rejects(n, exc):
    before = get_num_threads()
    try:
        with pytest.raises(exc):
            set_num_threads(n)
        assert get_num_threads() == before
    finally:
        set_num_threads(before)


def test_threadpoolctl_limits_openmp():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not openmp_enabled():
        pytest.skip("fastembed was built without OpenMP: get_num_threads() is always 1 and "
                    "threadpoolctl has no OpenMP runtime of fastembed's to limit")
    before = get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert get_num_threads() == 1
        assert n_threads_for(None, N_BIG * D_BIG) == 1
    assert get_num_threads() == before


def test_results_do_not_depend_on_default_thread_count(big_problem, restore_num_threads):
    X, data = big_problem
    E, G = data[np.dtype(np.float64)]
    expected = ref_scatter_add(E, X, G)
    for n in (1, 2, 3):
        set_num_threads(n)
        out = E.copy()
        scatter_add(out, X, G)
        assert_bitwise_equal(out, expected)


# ----------------------------------------------------------------------------------------
# Large sizes: index arithmetic beyond 32 bits where memory allows
# ----------------------------------------------------------------------------------------

def test_gather_large_output(rng):
    # 40_000 x 1024 float32 = 164 MB of output, 2**25+ elements, from int32 ids.
    V, D = 4, 1024
    E = make_table((V, D), np.float32, rng)
    X = make_ids("uniform", (200, 200), V, np.int32, rng)
    X[-1, -1] = V - 1
    out = gather(E, X, n_threads=2)
    assert out.shape == (200, 200, D) and out.nbytes > 2**27
    flat_out = out.reshape(-1, D)
    flat_x = X.reshape(-1)
    for lo in range(0, flat_x.size, 8192):
        assert_bitwise_equal(flat_out[lo:lo + 8192], E[flat_x[lo:lo + 8192]])
    assert_bitwise_equal(out[-1, -1], E[V - 1])
    del out, flat_out


def test_scatter_add_and_coalesce_large_grad(rng):
    # 20_000 x 1024 float32 = 82 MB of grad summed into 4 rows.
    V, D, N = 4, 1024, 20_000
    E = make_table((V, D), np.float32, rng)
    X = make_ids("zipf", (N,), V, np.int32, rng)
    G = make_table((N, D), np.float32, rng)
    expected = ref_scatter_add(E, X, G)
    for n_threads in (1, 2):
        out = E.copy()
        scatter_add(out, X, G, n_threads=n_threads)
        assert_bitwise_equal(out, expected)
        assert_sparse_grad_equal(coalesce(X, G, n_threads=n_threads), *ref_coalesce(X, G))


def test_table_beyond_2_31_elements_with_int32_ids(tmp_path):
    """A (2**21 + 8) x 1024 float32 table (8 GB, > 2**31 elements) as a sparse memmap.

    Only the rows touched are ever backed by memory or disk, so this stays tiny; it checks
    that row offsets ``id * D`` are computed in 64 bits even for int32 ids.
    """
    if sys.maxsize < 2**40:
        pytest.skip("needs a 64-bit address space to map an 8 GB file")
    D = 1024
    V = 2**21 + 8
    assert V * D > 2**31
    path = tmp_path / "huge.f32"
    with open(path, "wb") as f:
        f.truncate(V * D * 4)
    if os.stat(path).st_blocks * 512 > 2**20:
        path.unlink()
        pytest.skip("this filesystem does not support sparse files")
    try:
        table = np.memmap(path, dtype=np.float32, mode="r+", shape=(V, D))
        hot = np.array([0, 1, 2**21 - 1, 2**21, 2**21 + 1, V - 3, V - 1], np.int64)
        for k, row in enumerate(hot):
            table[row] = np.arange(D, dtype=np.float32) + 1000 * k
        table.flush()
        rng = np.random.default_rng(7)
        X = hot[rng.integers(0, hot.size, size=(8, 8))].astype(np.int32)  # 64 * 1024 > 2**15
        ro = np.memmap(path, dtype=np.float32, mode="r", shape=(V, D))
        for n_threads in (1, 2):
            got = gather(ro, X, n_threads=n_threads)
            for idx in np.ndindex(X.shape):
                k = int(np.flatnonzero(hot == X[idx])[0])
                assert_bitwise_equal(got[idx], np.arange(D, dtype=np.float32) + 1000 * k)
        with pytest.raises(IndexError, match=re.escape(f"ids[1] = {V}")):
            gather(ro, np.array([V - 1, V], np.int64))
        G = np.ones(X.shape + (D,), np.float32)
        counts = {int(r): int(np.sum(X == r)) for r in hot}
        scatter_add(table, X, G, n_threads=2)
        for k, row in enumerate(hot):
            assert_bitwise_equal(np.asarray(table[row]),
                                 np.arange(D, dtype=np.float32) + 1000 * k + counts[int(row)])
        assert_bitwise_equal(np.asarray(table[2**21 + 2]), np.zeros(D, np.float32))
        del table, ro
    finally:
        path.unlink()


# ----------------------------------------------------------------------------------------
# SparseGrad.to_dense
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_sparse_grad_to_dense_round_trip(dtype, rng):
    V, D = 30, 4
    X = make_ids("zipf", (7, 11), V, np.int64, rng)
    G = make_table(X.shape + (D,), dtype, rng)
    g = coalesce(X, G, num_embeddings=V)
    dense = g.to_dense(V)
    assert dense.shape == (V, D) and dense.dtype == dtype
    assert_bitwise_equal(dense, ref_scatter_add(np.zeros((V, D), dtype), X, G))
    assert_bitwise_equal(dense[g.rows], g.values)
    untouched = np.setdiff1d(np.arange(V), g.rows)
    assert_bitwise_equal(dense[untouched], np.zeros((untouched.size, D), dtype))
    # Back again: the rows of the dense form, coalesced, give the same SparseGrad.
    g2 = coalesce(g.rows, dense[g.rows], num_embeddings=V)
    assert_sparse_grad_equal(g2, g.rows, g.values)
    # Any size from max(rows) + 1 up works; a larger one just adds zero rows.
    top = int(g.rows[-1])
    assert_bitwise_equal(g.to_dense(top + 1), dense[:top + 1])
    assert_bitwise_equal(g.to_dense(np.int64(V + 5))[:V], dense)
    assert not g.to_dense(V + 5)[V:].any()
    # A hand-built SparseGrad works too.
    h = SparseGrad(np.array([1, 3]), np.array([[1.0, 2.0], [3.0, 4.0]], dtype))
    assert_bitwise_equal(h.to_dense(4), np.array([[0, 0], [1, 2], [0, 0], [3, 4]], dtype))


def test_sparse_grad_to_dense_too_small(rng):
    X = np.array([[4, 0], [2, 4]])
    G = make_table((2, 2, 3), np.float32, rng)
    g = coalesce(X, G)
    rows_before, values_before = snapshot(g.rows, g.values)
    for n in (4, 3, 0):
        with pytest.raises(IndexError, match=re.escape("row 4 is out of range for "
                                                       f"num_embeddings={n}")):
            g.to_dense(n)
    assert_unchanged([g.rows, g.values], [rows_before, values_before])
    assert g.to_dense(5).shape == (5, 3)


def test_sparse_grad_empty_to_dense():
    g = coalesce([], np.zeros((0, 3), np.float32))
    assert g.rows.shape == (0,) and g.rows.dtype == np.int64
    assert g.values.shape == (0, 3) and g.values.dtype == np.float32
    assert_bitwise_equal(g.to_dense(0), np.zeros((0, 3), np.float32))
    assert_bitwise_equal(g.to_dense(2), np.zeros((2, 3), np.float32))


# -- coalesce has two algorithms: a dense row map (V not much larger than N) and a radix sort
# (few ids in a huge id space, or mostly distinct ids whose sums outgrow the cache). They must
# agree bitwise, for any thread count.

@pytest.mark.parametrize("kind", ["uniform", "zipf", "same"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
def test_coalesce_map_and_sort_paths_agree(kind, n_threads, dtype, id_dtype, monkeypatch,
                                          sorted_coalesces, rng):
    from fastembed import _rows

    V, D, N = 5000, 8, 40_000  # large enough to run in parallel
    X = make_ids(kind, (N,), V, id_dtype, rng)
    G = make_table((N, D), dtype, rng)
    rows_ref, values_ref = ref_coalesce(X, G)
    results = []
    # always the map (no cache size known); never the map; the map unless most ids are
    # distinct and their sums outgrow a (tiny) cache: the sort for uniform ids only
    for ratio, minimum, cache, sorts in [(10**9, 10**9, 0, False), (0, 0, 0, True),
                                         (10**9, 10**9, 1, kind == "uniform")]:
        monkeypatch.setattr(_rows, "_DENSE_MAP_RATIO", ratio)
        monkeypatch.setattr(_rows, "_DENSE_MAP_MIN", minimum)
        monkeypatch.setattr(_rows, "LAST_LEVEL_CACHE_BYTES", cache)
        sorted_coalesces.clear()
        g, counts = _rows.coalesce_rows(X, G, V, n_threads)
        assert bool(sorted_coalesces) == sorts
        assert_bitwise_equal(g.rows, rows_ref)
        assert_bitwise_equal(g.values, values_ref)
        np.testing.assert_array_equal(counts, np.bincount(X, minlength=V)[rows_ref])
        results.append(g)
    assert_bitwise_equal(results[0].values, results[1].values)
    assert_bitwise_equal(results[0].values, results[2].values)
    # ids out of range left out (bounds_check="zero"): the same sort, without their rows
    bad = X.astype(np.int64)
    bad[::7] = V + 3
    keep = bad < V
    sorted_coalesces.clear()
    g = fastembed.coalesce(bad, G, num_embeddings=V, n_threads=n_threads, bounds_check="zero")
    assert bool(sorted_coalesces) == (kind == "uniform")
    rows_ref, values_ref = ref_coalesce(bad[keep], G[keep])
    assert_bitwise_equal(g.rows, rows_ref)
    assert_bitwise_equal(g.values, values_ref)


def test_sums_miss_the_cache_when_most_ids_are_distinct_and_the_sums_outgrow_it(rng):
    from fastembed import _rows

    V, N, row = 10**6, 1 << 16, 256
    uniform = make_ids("uniform", (N,), V, np.int64, rng)
    zipf = make_ids("zipf", (N,), V, np.int64, rng)
    same = np.full(N, 7, np.int64)
    assert 0.9 <= _rows.distinct_share(uniform, V) <= 1
    assert _rows.distinct_share(zipf, V) < 0.5
    assert _rows.distinct_share(same, V) == 1 / (_rows._DISTINCT_BLOCKS * _rows._DISTINCT_BLOCK)
    assert _rows.distinct_share(np.array([3, 1, 3], np.int32), V) == 2 / 3   # all of it
    cache = N * row   # sums of N rows are 4x a quarter of this cache
    assert _rows.sums_miss_the_cache(uniform, V, row, cache)
    assert not _rows.sums_miss_the_cache(zipf, V, row, cache)         # rows repeat: the map
    assert not _rows.sums_miss_the_cache(same, V, row, cache)
    assert not _rows.sums_miss_the_cache(uniform, V, row, 8 * cache)  # they fit: the map
    assert not _rows.sums_miss_the_cache(uniform, V, row, 0)          # unknown: the map
    few = np.array([5, 9, 5, 2], np.int64)   # 3 distinct sums of 256 bytes: a quarter of
    assert _rows.sums_miss_the_cache(few, V, row, 4 * 3 * row)       # this cache, not more
    assert not _rows.sums_miss_the_cache(few, V, row, 4 * 3 * row + 1)
    # ids of a table past 2**31 rows are sampled without narrowing them (as int32 these
    # would all be 1); up to 2**31 rows they fit
    huge = np.arange(N, dtype=np.int64) * 2**32 + 1
    assert _rows.distinct_share(huge, 2**48) == 1.0
    top = np.full(N, 2**31 - 1, np.int64)
    top[::2] = 2**31 - 2
    assert _rows.distinct_share(top, 2**31) == 2 / (_rows._DISTINCT_BLOCKS * _rows._DISTINCT_BLOCK)
    # at most n_rows sums: ids that look distinct in every sampled block but cycle over 5000
    # rows have sums that fit in this cache, however many ids there are
    cycling = np.arange(N, dtype=np.int64) % 5000
    assert _rows.distinct_share(cycling, 5000) > 0.5
    assert not _rows.sums_miss_the_cache(cycling, 5000, row, 4 * 5000 * row + 1)
    assert _rows.sums_miss_the_cache(cycling, 5000, row, 4 * 5000 * row)


# -- gather has a C path for calls on plain arrays (indexing.gather_direct); it must agree
# with the general path bitwise and hand every unusual input over to it.

def _mode_prefetch(weight, n, n_threads):
    return indexing.PREFETCH


def _mode_undecided(weight, n, n_threads):
    return None


# The gather kernel's modes: neither, the prefetch, the streaming stores, both.
GATHER_MODES = [0, indexing.PREFETCH, indexing.STREAM, indexing.PREFETCH | indexing.STREAM]


@pytest.mark.parametrize("shape", [(0,), (), (7,), (3, 5), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_gather_small_fast_path_matches_general_path(shape, id_dtype, dtype, rng):
    E = make_table((50, 6), dtype, rng)
    X = rng.integers(0, 50, size=shape).astype(id_dtype)
    fast = indexing.gather_direct(E, X, None, None, 1 << 15, _mode_undecided)
    assert fast is not None, "the fast path should take this call"
    out = np.full(shape + (6,), np.nan, dtype=dtype)
    assert indexing.gather_direct(E, X, out, 1, 1 << 15, _mode_undecided) is out
    assert_bitwise_equal(fast, E[X])
    assert_bitwise_equal(out, E[X])


@pytest.mark.parametrize("n_threads", [None, 1, 2, 3])
@pytest.mark.parametrize("mode", GATHER_MODES)
@pytest.mark.parametrize("dim", [9, 16])   # rows of 36/72 bytes never stream; 64/128 do
@pytest.mark.parametrize("shape", [(0,), (5000,), (40, 125), (3, 1000, 2)], ids=str)
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_gather_direct_parallel_path_matches_reference(shape, id_dtype, dtype, dim, mode,
                                                       n_threads, rng):
    # serial_work 0: every call takes the parallel path (one region: check, wait, copy)
    E = make_table((700, dim), dtype, rng)
    X = make_ids("zipf", shape, 700, id_dtype, rng)
    asked = []

    def mode_of(weight, n, threads):
        asked.append((n, threads))
        return mode

    fast = indexing.gather_direct(E, X, None, n_threads, 0, mode_of)
    # asked for the thread count the call runs on; 0 work: serial, nothing asked
    assert fast is not None
    assert asked == ([(X.size, n_threads_for(n_threads, X.size * dim))] if X.size else [])
    assert_bitwise_equal(fast, ref_gather(E, X))
    if fast.size:
        assert fast.ctypes.data % 64 == 0  # a large output starts on a cache line
    for offset in (0, 16):   # a user's output on a cache line, or 16 bytes past one
        out = _out_at_offset(shape + (dim,), dtype, offset)
        assert indexing.gather_direct(E, X, out, n_threads, 0, mode_of) is out
        assert_bitwise_equal(out, ref_gather(E, X))
        _check_slack(out)


@pytest.fixture
def every_vector_path():
    """The vector paths of the gather's row copy and the scatter-add's row sums that this
    build and CPU can run (gatherrows.h, scatterrows.h), the best one restored afterwards."""
    paths = [p for p in (0, 1, 2) if indexing.force_vector_path(p)]
    yield paths
    for p in (2, 1, 0):
        if indexing.force_vector_path(p):
            break


@pytest.mark.parametrize("dim", [1, 3, 4, 8, 15, 16, 33, 64, 75, 100, 300])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_gather_row_copy_paths_agree(dim, dtype, every_vector_path, rng):
    # row sizes that are and are not multiples of 16, 32 and 64 bytes, every vector path,
    # with and without the prefetch and the streaming stores, into outputs that start on a
    # cache line, 16 bytes past one (rows streamed, the first ones by 16-byte stores) and 4
    # bytes past one (streaming impossible: stored as usual)
    assert 0 in every_vector_path
    E = make_table((300, dim), dtype, rng)
    X = make_ids("zipf", (5000,), 300, np.int64, rng)
    ref = ref_gather(E, X)
    for path in every_vector_path:
        assert indexing.force_vector_path(path)
        for n_threads in (1, 2):
            for mode in GATHER_MODES:
                for offset in (0, 16, 4):
                    out = _out_at_offset((X.size, dim), dtype, offset)
                    indexing.gather(E, X, out, n_threads, mode)
                    assert_bitwise_equal(out, ref)
                    _check_slack(out)
                got = indexing.gather_direct(E, X.astype(np.int32), None, n_threads, 0,
                                             lambda weight, n, mode=mode: mode)
                assert_bitwise_equal(got, ref)
    assert not indexing.force_vector_path(3)


@pytest.mark.parametrize("dim", [1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 75, 100, 300])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
def test_scatter_row_sum_paths_agree(dim, dtype, id_dtype, every_vector_path, rng):
    # row sizes below, at and past every vector width (the tails go through narrower vectors,
    # then single elements), on every path, by both kernels: the small calls' serial loop and
    # the owners' loop, on 1 and 2 owners (with prefetching), and rows that start anywhere
    assert 0 in every_vector_path
    table = make_table((301, dim), dtype, rng)[1:]   # rows not on a vector boundary
    X = make_ids("zipf", (4000,), 300, id_dtype, rng)
    G = make_table((4001, dim), dtype, rng)[1:]
    expected = ref_scatter_add(table, X, G)
    for path in every_vector_path:
        assert indexing.force_vector_path(path)
        out = table.copy()
        assert indexing.scatter_add_small(out, X, G, None, 1 << 40) is out
        assert_bitwise_equal(out, expected)
        for n_threads in (1, 2):
            out = table.copy()
            pos, starts, _ = partition_rows(X, 300, n_threads)
            indexing.scatter_add_owned(out, X, G, pos, starts, n_threads)
            assert_bitwise_equal(out, expected)


_SLACK = 0xA5   # the bytes around an output from _out_at_offset, which no kernel may touch


def _out_at_offset(shape, dtype, offset):
    """A NaN-filled C-contiguous array of ``shape`` that starts ``offset`` bytes past a
    cache line, inside a buffer of ``_SLACK`` bytes (``_check_slack`` checks them)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.full(nbytes + offset + 192, _SLACK, np.uint8)
    start = (-buf.ctypes.data) % 64 + 64 + offset
    out = buf[start:start + nbytes].view(dtype).reshape(shape)
    out[...] = np.nan
    return out


def _check_slack(out):
    """The bytes before and after an output of ``_out_at_offset`` are untouched."""
    buf = out.base
    while not (isinstance(buf, np.ndarray) and buf.base is None):
        buf = buf.base
    start = out.ctypes.data - buf.ctypes.data
    assert (buf[:start] == _SLACK).all() and (buf[start + out.nbytes:] == _SLACK).all()


@pytest.mark.parametrize("mode", GATHER_MODES)
def test_gather_streaming_stores_are_visible_to_the_next_kernel(mode, rng):
    # what one parallel call streams (outputs on a cache line: every row streams), the
    # threads of the next call read right after it (a smoke test of the fences: x86 rarely
    # shows a missing one)
    from fastembed._memory import aligned_empty

    E = make_table((5000, 64), np.float32, rng)
    X = make_ids("uniform", (20000,), 5000, np.int64, rng)
    Y = make_ids("uniform", (20000,), 20000, np.int64, rng)
    out = aligned_empty((X.size, 64), np.float32)
    back = aligned_empty((Y.size, 64), np.float32)
    for _ in range(3):
        indexing.gather(E, X, out, 2, mode)
        indexing.gather(out, Y, back, 2, mode)
        assert_bitwise_equal(back, ref_gather(ref_gather(E, X), Y))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("where", [0, 2499, 2500, 4999])
def test_gather_direct_parallel_path_writes_nothing_for_a_bad_id(where, n_threads, rng):
    # a bad id in either thread's share: no thread copies a row, and the general path raises
    E = make_table((100, 4), np.float32, rng)
    X = rng.integers(0, 100, size=5000)
    X[where] = 100
    out = np.full((5000, 4), np.nan, np.float32)
    assert indexing.gather_direct(E, X, out, n_threads, 0, _mode_prefetch) is None
    assert np.isnan(out).all()
    with pytest.raises(IndexError, match=rf"ids\[{where}\] = 100"):
        fastembed.gather(E, X, out=out, n_threads=n_threads)
    assert np.isnan(out).all()


def test_gather_direct_leaves_undecided_prefetch_to_the_general_path(rng):
    E = make_table((100, 4), np.float32, rng)
    X = rng.integers(0, 100, size=5000)
    out = np.full((5000, 4), np.nan, np.float32)
    assert indexing.gather_direct(E, X, out, 2, 0, _mode_undecided) is None
    assert np.isnan(out).all()
    # below serial_work the setting is not asked for
    assert indexing.gather_direct(E, X, out, 2, 10**9, _mode_undecided) is out


@pytest.mark.parametrize("case", ["bad id", "negative id", "list ids", "uint32 ids", "int16 ids",
                                  "F-order table", "big-endian table", "float16 table",
                                  "wrong out shape", "wrong out dtype", "read-only out",
                                  "out overlaps weight", "too much work", "n_threads=0",
                                  "n_threads str", "n_threads bool", "3-D table"])
def test_gather_small_declines_what_it_does_not_handle(case, rng):
    E = make_table((50, 6), np.float32, rng)
    X = np.array([1, 2, 3])
    out, n_threads, max_work = None, None, 1 << 15
    if case == "bad id":
        X = np.array([1, 50])
    elif case == "negative id":
        X = np.array([1, -1])
    elif case == "list ids":
        X = [1, 2]
    elif case == "uint32 ids":
        X = X.astype(np.uint32)
    elif case == "int16 ids":
        X = X.astype(np.int16)
    elif case == "F-order table":
        E = np.asfortranarray(E)
    elif case == "big-endian table":
        E = E.astype(">f4")
    elif case == "float16 table":
        E = E.astype(np.float16)
    elif case == "wrong out shape":
        out = np.empty((3, 5), np.float32)
    elif case == "wrong out dtype":
        out = np.empty((3, 6), np.float64)
    elif case == "read-only out":
        out = np.empty((3, 6), np.float32)
        out.flags.writeable = False
    elif case == "out overlaps weight":
        out = E[:3]
    elif case == "too much work":
        max_work = 17
    elif case == "n_threads=0":
        n_threads = 0
    elif case == "n_threads str":
        n_threads = "2"
    elif case == "n_threads bool":
        n_threads = True
    elif case == "3-D table":
        E = E.reshape(5, 10, 6)
    before = None if out is None else out.copy()
    assert indexing.gather_direct(E, X, out, n_threads, max_work, _mode_undecided) is None
    if out is not None:
        assert_bitwise_equal(out, before)


def test_coalesce_runs_small_work_on_one_thread(monkeypatch, rng):
    # below _COALESCE_PARALLEL_MIN_WORK contributions x D: no partition between owners
    from fastembed import _rows

    monkeypatch.setattr(_rows, "_COALESCE_PARALLEL_MIN_WORK", 1 << 20)
    seen = []
    real = _rows.partition_rows

    def spy(flat, num_embeddings, n_threads):
        seen.append(n_threads)
        return real(flat, num_embeddings, n_threads)

    monkeypatch.setattr(_rows, "partition_rows", spy)
    small = make_ids("zipf", (8192,), 1000, np.int64, rng)
    g = make_table((8192, 64), np.float32, rng)
    got = fastembed.coalesce(small, g, num_embeddings=1000, n_threads=2)
    big = make_ids("zipf", (1 << 14,), 1000, np.int64, rng)
    fastembed.coalesce(big, make_table((1 << 14, 64), np.float32, rng), num_embeddings=1000,
                       n_threads=2)
    assert seen == [1, 2 if openmp_enabled() else 1]  # a serial build runs one thread
    ref_rows, ref_values = ref_coalesce(small, g)
    np.testing.assert_array_equal(got.rows, ref_rows)
    assert_bitwise_equal(got.values, ref_values)


# -- scatter_add's C fast path for small calls ------------------------------------------------

@pytest.mark.parametrize("shape", [(0,), (), (7,), (3, 5), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("id_dtype", INTS, ids=["i32", "i64"])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_scatter_add_small_fast_path_matches_np_add_at(shape, id_dtype, dtype, rng):
    table = make_table((9, 6), dtype, rng)
    X = rng.integers(0, 9, size=shape).astype(id_dtype)  # few rows: many duplicates
    G = make_table(shape + (6,), dtype, rng)
    expected = ref_scatter_add(table, X, G)
    out = table.copy()
    assert indexing.scatter_add_small(out, X, G, None, 1 << 15) is out
    assert_bitwise_equal(out, expected)


@pytest.mark.parametrize("case", ["bad id", "negative id", "list ids", "uint32 ids",
                                  "F-order table", "read-only table", "float16 table",
                                  "grad dtype", "grad shape", "F-order grad", "grad overlaps",
                                  "ids overlap", "too much work", "n_threads=0", "3-D table"])
def test_scatter_add_small_declines_what_it_does_not_handle(case, rng):
    table = make_table((10, 4), np.float32, rng)
    X = np.array([1, 2, 2])
    G = make_table((3, 4), np.float32, rng)
    n_threads, max_work = None, 1 << 15
    if case == "bad id":
        X = np.array([1, 10, 2])
    elif case == "negative id":
        X = np.array([1, -1, 2])
    elif case == "list ids":
        X = [1, 2, 2]
    elif case == "uint32 ids":
        X = X.astype(np.uint32)
    elif case == "F-order table":
        table = np.asfortranarray(table)
    elif case == "read-only table":
        table.flags.writeable = False
    elif case == "float16 table":
        table = table.astype(np.float16)
    elif case == "grad dtype":
        G = G.astype(np.float64)
    elif case == "grad shape":
        G = G[:, :3].copy()
    elif case == "F-order grad":
        G = np.asfortranarray(make_table((3, 4), np.float32, rng))
    elif case == "grad overlaps":
        G = table[:3]
    elif case == "ids overlap":
        table.view(np.int32)[0, :3] = [1, 2, 2]  # valid ids, stored inside the table
        X = table.view(np.int32)[0, :3]
    elif case == "too much work":
        max_work = 5
    elif case == "n_threads=0":
        n_threads = 0
    elif case == "3-D table":
        table = table.reshape(2, 5, 4)
        G = make_table((3, 4), np.float32, rng)
    before = np.array(table, copy=True)
    assert indexing.scatter_add_small(table, X, G, n_threads, max_work) is None
    assert_bitwise_equal(np.asarray(table), before)


# ---------------------------------------------------------------------------------------
# gather's prefetch and streaming stores, chosen by measurement (fastembed._rows.GatherSettings)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
def test_gather_settings_and_trials_give_the_same_bits(n_threads, dtype, id_dtype,
                                                                monkeypatch, rng):
    from fastembed import _rows
    from fastembed._ext import indexing

    E = make_table((300, 40), dtype, rng)   # 1001 x 40: past gather_small's C path
    X = make_ids("zipf", (1001,), 300, id_dtype, rng)
    ref = ref_gather(E, X)
    for setting in GATHER_MODES:
        out = np.empty((X.size, 40), dtype)
        indexing.gather(E, X, out, n_threads, setting)
        assert_bitwise_equal(out, ref)
    # a last-level cache so small that this lookup's output may stream: both settings tried
    chooser = _rows.GatherSettings(cache_bytes=4 * X.size * 40 * E.itemsize, streams=True)
    monkeypatch.setattr(_rows, "GATHER_SETTINGS", chooser)
    monkeypatch.setattr(chooser, "MIN_TRIAL_ROWS", 8)   # every call below is a trial
    for _ in range(2 * (chooser.WARMUP + chooser.MAX_TRIALS)):
        assert_bitwise_equal(fastembed.gather(E, X, n_threads=n_threads), ref)
    nt = n_threads_for(n_threads, X.size * 40)             # the thread count the call ran on
    prefetch, stream = chooser.choice(E, X.size, nt)    # decided after MAX_TRIALS at most
    assert prefetch in (True, False) and stream in (True, False)
    assert chooser.choice(np.zeros((3000, 70), dtype), 0, nt) == (None, False)  # another class
    assert chooser.choice(E, 8 * X.size, nt) == (None, None)   # another output class
    assert chooser.choice(E, X.size, 3 - nt) == (None, None)   # another thread count
    assert_bitwise_equal(fastembed.gather(E, X, n_threads=n_threads), ref)


def test_gather_decision_uses_medians_of_order_balanced_pairs():
    from fastembed import _rows

    chooser = _rows.GatherSettings()
    # every pair: the first half 30% faster whichever setting it ran (an order effect only)
    assert chooser._decide([1.3, 1 / 1.3] * 3) is None
    # prefetch 20% faster, with the same order effect on top: chosen
    assert chooser._decide([0.8 * 1.3, 0.8 / 1.3] * 3) is True
    assert chooser._decide([1.25 * 1.3, 1.25 / 1.3] * 3) is False
    # one lookup slowed tenfold by another program decides nothing
    assert chooser._decide([10.0, 1.0, 1.0, 1.0, 1.0, 1.0]) is None
    assert chooser._decide([1.0] * (chooser.TRIALS - 1)) is None   # too few
    # undecided at MAX_TRIALS: the median side wins
    assert chooser._decide([0.97, 0.99] * (chooser.MAX_TRIALS // 2)) is True


def test_gather_trials_only_large_lookups_and_decide_on_a_clear_winner(monkeypatch):
    from fastembed import _rows

    PREFETCH, STREAM = _rows.indexing.PREFETCH, _rows.indexing.STREAM
    chooser = _rows.GatherSettings(cache_bytes=0)        # no cache size known: never streams
    assert chooser.stream_min_bytes is None
    E = np.ones((64, 4), np.float32)
    out = np.empty((100, 4), np.float32)
    small = np.zeros(chooser.MIN_TRIAL_ROWS - 1, np.int64)
    chooser.gather(E, small[:100], out, 1)               # below MIN_TRIAL_ROWS: no trial
    assert chooser._classes == {}
    assert chooser.setting(E, 100, 1) == PREFETCH
    # A clear winner after TRIALS lookups: fake timings, the setting without prefetch 2x faster
    calls = []

    def fake_gather(weight, flat, out2, n_threads, mode=PREFETCH):
        calls.append(mode)

    ticks = iter(range(10**6))
    monkeypatch.setattr(_rows.indexing, "gather", fake_gather)
    monkeypatch.setattr(_rows.time, "perf_counter",
                        lambda: next(ticks) * (2 if calls and calls[-1] & PREFETCH else 1))
    big = np.zeros(chooser.MIN_TRIAL_ROWS, np.int64)
    for trial in range(chooser.WARMUP + chooser.TRIALS):
        assert chooser.choice(E, big.size, 1) == (None, False)
        assert chooser.setting(E, big.size, 1) is None
        chooser.gather(E, big, np.empty((big.size, 4), np.float32), 1)
    assert chooser.choice(E, big.size, 1) == (False, False)
    # decided for one thread only: two threads share the cores' bandwidth and decide anew
    assert chooser.choice(E, big.size, 2) == (None, False)
    assert chooser.setting(E, big.size, 2) is None
    assert calls[:4] == [PREFETCH, 0, 0, PREFETCH]      # the order alternates
    calls.clear()
    chooser.gather(E, big, np.empty((big.size, 4), np.float32), 1)
    assert calls == [0]                                  # decided: one plain lookup
    # decided modes are kept per (table, row, output) size and thread count for the small
    # calls, a bounded number
    assert chooser.setting(E, big.size, 1) == 0
    assert chooser._modes == {(E.nbytes, 16, big.size, 1): 0}
    monkeypatch.setattr(chooser, "_MODES_KEPT", 2)
    assert [chooser.setting(E, k, 1) for k in (1, 2, 3, 1)] == [0, 0, 0, 0]
    assert 1 <= len(chooser._modes) <= 2


def test_gather_streaming_is_decided_first_then_the_prefetch(monkeypatch):
    # Outputs of at least a quarter of the last-level cache are candidates for streaming
    # stores: tried first, with the prefetch (the default), then the prefetch is tried with
    # the streaming choice. Fake timings: prefetching 2x slower, streaming 2x faster.
    from fastembed import _rows

    PREFETCH, STREAM = _rows.indexing.PREFETCH, _rows.indexing.STREAM
    E = np.ones((64, 4), np.float32)
    n = 2 * _rows.GatherSettings.MIN_TRIAL_ROWS
    out_bytes = n * 4 * 4
    chooser = _rows.GatherSettings(cache_bytes=4 * out_bytes, streams=True)
    assert chooser.stream_min_bytes == out_bytes
    assert _rows.GatherSettings(cache_bytes=4 * out_bytes, streams=False).stream_min_bytes is None
    calls = []

    def fake_gather(weight, flat, out2, n_threads, mode=PREFETCH):
        calls.append(mode)

    ticks = iter(range(10**6))
    monkeypatch.setattr(_rows.indexing, "gather", fake_gather)
    monkeypatch.setattr(_rows.time, "perf_counter", lambda: next(ticks) * (
        (2 if calls and calls[-1] & PREFETCH else 1)
        * (0.5 if calls and calls[-1] & STREAM else 1)))
    big = np.zeros(n, np.int64)
    rounds = chooser.WARMUP + chooser.TRIALS
    for _ in range(rounds):
        assert chooser.setting(E, n, 1) is None
        chooser.gather(E, big, np.empty((n, 4), np.float32), 1)
    assert chooser.choice(E, n, 1) == (None, True)          # streaming decided first
    assert chooser._modes == {}                          # nothing kept while pending
    assert set(calls) == {PREFETCH, PREFETCH | STREAM}   # with the prefetch
    calls.clear()
    for _ in range(rounds):
        chooser.gather(E, big, np.empty((n, 4), np.float32), 1)
    assert set(calls) == {STREAM, PREFETCH | STREAM}     # then the prefetch, streaming
    assert chooser.choice(E, n, 1) == (False, True)
    assert chooser.setting(E, n, 1) == STREAM
    calls.clear()
    chooser.gather(E, big, np.empty((n, 4), np.float32), 1)
    assert calls == [STREAM]                             # decided: one plain lookup
    # rows of a size that cannot stream (not a multiple of 16 bytes): never candidates
    E3 = np.ones((64, 3), np.float32)
    assert chooser.choice(E3, 2 * n, 1) == (None, False)
    assert chooser._decisions(E3, 2 * n, 1) == [
        (("prefetch", chooser.size_class(E3.nbytes), 1), PREFETCH)]
    # a smaller output of the same table never streams, and decides its prefetch on its own
    assert chooser.choice(E, n // 2, 1) == (None, False)
    assert chooser.setting(E, n // 2, 1) is None
    assert chooser.setting(E, 100, 1) == PREFETCH        # too small to try: the default


def test_last_level_cache_bytes_reads_the_highest_data_cache(tmp_path):
    from fastembed._memory import last_level_cache_bytes

    read = last_level_cache_bytes
    system = read()                                          # this machine's, if reported
    assert system is None or (isinstance(system, int) and system > 0)

    def cache(index, level, kind, size):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")

    assert read(str(tmp_path)) is None                       # nothing reported
    cache(0, 1, "Data", "48K")
    cache(1, 1, "Instruction", "32K")
    cache(2, 2, "Unified", "1280K")
    assert read(str(tmp_path)) == 1280 << 10
    cache(3, 3, "Unified", "49152K")
    cache(4, 4, "Instruction", "64M")                        # instructions only: ignored
    cache(5, 3, "Unified", "garbage")                        # unreadable: ignored
    cache(6, 3, "Unified", "")                               # empty: ignored
    assert read(str(tmp_path)) == 49152 << 10
