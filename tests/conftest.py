"""Shared helpers and fixtures for fastembed's tests.

Plain helpers (importable with ``from conftest import ...``; the NumPy references of the
operations are in ``reference.py``, imported with ``from reference import ...``: this file
puts its folder on ``sys.path``, whatever directory pytest runs from):

* ``make_ids(kind, shape, V, dtype, rng)``: ids of a given distribution:
  ``"uniform"`` over [0, V), ``"zipf"`` (Zipf(1.1) truncated to ranks 1..V, sampled exactly by
  inverse CDF, hot rows at low ids) or ``"same"`` (every id identical);
* ``make_table(shape, dtype, rng)``: random floats with a few signed zeros mixed in;
* ``assert_bitwise_equal(actual, expected)``: same shape, dtype and bytes (so -0.0 != +0.0).

Fixtures: ``rng`` (a seeded Generator), ``readonly_memmap`` (writes an array to ``tmp_path``
and maps it back with ``np.memmap(mode="r")``) and ``restore_num_threads``.
"""
from __future__ import annotations

import os
import pathlib
import sys
import zlib

import numpy as np
import pytest

import fastembed

_TESTS = pathlib.Path(__file__).resolve().parent
_REPO = _TESTS.parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))


def pytest_report_header(config):
    where = pathlib.Path(fastembed.__file__).resolve().parent
    return (f"fastembed {fastembed.__version__} from {where}; "
            f"openmp_enabled()={fastembed.openmp_enabled()}, "
            f"get_num_threads()={fastembed.get_num_threads()}")


def pytest_configure(config):
    # CI sets FASTEMBED_TEST_INSTALLED=1 when it tests an installed sdist or wheel: then the
    # package under test must not be the source tree next to these tests.
    if os.environ.get("FASTEMBED_TEST_INSTALLED") == "1":
        where = pathlib.Path(fastembed.__file__).resolve().parent
        if where == _REPO / "fastembed":
            raise pytest.UsageError(
                f"FASTEMBED_TEST_INSTALLED=1, but fastembed was imported from the source tree "
                f"({where}); run pytest from another directory so the installed one is used")

ID_KINDS = ("uniform", "zipf", "same")
ZIPF_EXPONENT = 1.1


def zipf_cdf(V, a=ZIPF_EXPONENT):
    """CDF over ranks 1..V of the truncated Zipf law p_k proportional to k**-a."""
    weights = np.arange(1, V + 1, dtype=np.float64) ** -a
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def make_ids(kind, shape, V, dtype=np.int64, rng=None):
    """Row ids in [0, V) of the given shape (``()`` gives a 0-d array), dtype and distribution.

    kind: "uniform"; "zipf" (rank k = id + 1 has probability proportional to k**-1.1, so id 0
    is the hottest row; no clipping is involved); "same" (all ids equal, a random row).
    """
    if rng is None:
        rng = np.random.default_rng(0)
    shape = tuple(shape)
    if V <= 0:
        raise ValueError("make_ids needs V >= 1")
    if kind == "uniform":
        ids = rng.integers(0, V, size=shape)
    elif kind == "zipf":
        u = rng.random(size=shape)
        ids = np.searchsorted(zipf_cdf(V), u, side="right")  # rank - 1, always < V as u < 1
    elif kind == "same":
        ids = np.full(shape, rng.integers(0, V))
    else:
        raise ValueError(f"unknown id distribution {kind!r}")
    ids = np.asarray(ids).astype(dtype)
    assert ids.shape == shape
    return ids


def make_table(shape, dtype, rng, *, signed_zeros=True):
    """Standard normal values of the given dtype, with about 5% +0.0 and 5% -0.0 mixed in.

    Generated directly in float32/float64, so a table costs little more than its own size.
    """
    dtype = np.dtype(dtype)
    if dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        table = rng.standard_normal(shape, dtype=dtype)
    else:
        table = rng.standard_normal(shape).astype(dtype)
    if signed_zeros and table.size:
        flat = table.reshape(-1)
        k = max(1, table.size // 20)
        flat[rng.integers(0, table.size, size=k)] = -0.0
        flat[rng.integers(0, table.size, size=k)] = 0.0
    return table


def _as_uint(a):
    a = np.ascontiguousarray(a)
    if a.dtype.itemsize in (1, 2, 4, 8) and a.dtype.kind in "fiu":
        return a.view(f"u{a.dtype.itemsize}")
    return a


def assert_bitwise_equal(actual, expected):
    """Assert same shape, dtype and identical bytes (catches -0.0 vs +0.0, NaN payloads)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if not np.array_equal(_as_uint(actual), _as_uint(expected)):
        diff = np.argwhere(_as_uint(actual) != _as_uint(expected))
        first = tuple(int(i) for i in diff[0]) if diff.size else ()
        raise AssertionError(
            f"arrays differ bitwise at {len(diff)} element(s); first at {first}: "
            f"{actual[first]!r} != {expected[first]!r}")


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's node id: reproducible, different per test."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture
def readonly_memmap(tmp_path):
    """Factory: ``readonly_memmap(array)`` writes ``array`` to tmp_path, returns a mode-"r" memmap.

    Each call uses a new file. An empty array, which np.memmap cannot map, comes back as a
    read-only empty ndarray instead.
    """
    count = [0]

    def make(array):
        array = np.ascontiguousarray(array)
        path = tmp_path / f"table{count[0]}.bin"
        array.tofile(path)
        if array.size == 0:
            # np.memmap cannot map an empty file; an empty read-only array stands in.
            m = np.empty(array.shape, array.dtype)
            m.flags.writeable = False
        else:
            m = np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
        count[0] += 1
        return m

    return make


@pytest.fixture
def restore_num_threads():
    """Put fastembed's default thread count back after a test that changes it."""
    before = fastembed.get_num_threads()
    try:
        yield before
    finally:
        fastembed.set_num_threads(before)


@pytest.fixture
def sorted_coalesces(monkeypatch):
    """A list that gets an entry for every coalesce summed on the sort path
    (``indexing.segment_sum``, as ``fastembed._rows`` calls it), and not the dense row map."""
    from fastembed import _rows

    calls = []
    segment_sum = _rows.indexing.segment_sum

    def spy(*args):
        calls.append(args[0].shape)
        return segment_sum(*args)

    monkeypatch.setattr(_rows.indexing, "segment_sum", spy)
    return calls


@pytest.fixture(autouse=True)
def _coalesce_on_threads_at_any_size(monkeypatch):
    """The tests' inputs are small, and coalesce runs small work on one thread
    (``fastembed._rows._COALESCE_PARALLEL_MIN_WORK``): let every size take the threaded
    owner path when the test asks for threads, so that the tests cover it."""
    from fastembed import _rows

    monkeypatch.setattr(_rows, "_COALESCE_PARALLEL_MIN_WORK", 0)
