"""Fixtures for the pytest-benchmark suite (``pytest bench/ --benchmark-only``).

The arrays come from ``bench/bench_kernels.py``, the same generators as ``python -m fastembed
bench``: float32 tables and grads of standard normal values, int64 ids either uniform over
[0, V) or Zipf(1.1) truncated to the ranks 1..V (hot rows at low ids).

* ``problem``: a :class:`bench_kernels.Problem` (E, X, G, shared output buffers and exact
  references) for each of the small and mid shapes and each id distribution; session scoped,
  so each is generated once;
* ``small_problem``: the same at the small shape only (for ``bag_forward`` and
  ``adam_step``);
* ``threads``: 1 and ``fastembed.get_num_threads()``.
"""
from __future__ import annotations

import pytest

import bench_kernels as bench

BENCH_SHAPES = ("small", "mid")
PROBLEMS = [(shape, dist) for shape in BENCH_SHAPES for dist in bench.DISTS]


@pytest.fixture(scope="session", params=PROBLEMS, ids=[f"{s}-{d}" for s, d in PROBLEMS])
def problem(request):
    shape, dist = request.param
    p = bench.make_problem(bench.shape_by_name(shape), dist, seed=0)
    yield p
    p.release()


@pytest.fixture(scope="session", params=bench.DISTS, ids=[f"small-{d}" for d in bench.DISTS])
def small_problem(request):
    p = bench.make_problem(bench.shape_by_name("small"), request.param, seed=0)
    yield p
    p.release()


@pytest.fixture(params=bench.default_threads(), ids=lambda n: f"{n}thr")
def threads(request):
    return request.param
