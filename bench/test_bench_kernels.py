"""pytest-benchmark suite: fastembed's kernels against NumPy and (when installed) torch.

Run with ``pytest bench/ --benchmark-only`` (add ``--benchmark-group-by=group`` to compare the
contenders of one op, shape and id distribution side by side; that is the default grouping
set here through ``benchmark.group``). These are not collected by ``pytest tests``.

Each test builds its contender with :data:`fastembed.bench.CONTENDERS` (the same calls that
``python -m fastembed bench`` times), asserts once, untimed, that its result equals the exact
reference (bitwise for fastembed, within float tolerance for the contenders that sum in a
different order), then benchmarks it. No test asserts anything about speed.
"""
from __future__ import annotations

import pytest

from fastembed import bench

CONTENDERS = {c.name: c for c in bench.CONTENDERS}


def run_contender(benchmark, problem, name, threads=1, torch=None):
    """Check ``name`` once against the reference, then benchmark its timed call."""
    c = CONTENDERS[name]
    shape = problem.shape
    if torch is not None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        case = c.make(problem, threads, torch)
        verdict = bench.compare(c.op, case.check(), problem.reference(c.op), c.exact)
        assert verdict in (("bitwise",) if c.exact else ("bitwise", "close")), verdict
        benchmark.group = f"{c.op} {shape.name} {problem.dist}"
        benchmark.extra_info.update(
            contender=name, threads=threads, V=shape.V, D=shape.D, N=shape.N,
            bytes=bench.bytes_moved(c.op, shape.N, shape.D, problem.E.dtype.itemsize,
                                    problem.X.dtype.itemsize, problem.unique_count()))
        if case.prepare is None:
            benchmark(case.call)
        else:  # the untimed part (torch's forward) runs as the setup of every round
            benchmark.pedantic(case.call, setup=case.prepare, rounds=10, iterations=1,
                               warmup_rounds=1)
    finally:
        if torch is not None:
            torch.set_num_threads(before)


# gather ------------------------------------------------------------------------------------

def test_gather_numpy_fancy_index(benchmark, problem):
    run_contender(benchmark, problem, bench.NP_GATHER)


def test_gather_numpy_take_out(benchmark, problem):
    run_contender(benchmark, problem, bench.NP_TAKE)


def test_gather_fastembed_out(benchmark, problem, threads):
    run_contender(benchmark, problem, bench.FE_GATHER, threads)


def test_gather_torch_embedding(benchmark, problem, threads):
    torch = pytest.importorskip("torch")
    run_contender(benchmark, problem, bench.TORCH_EMBEDDING, threads, torch)


def test_gather_torch_index_select_out(benchmark, problem, threads):
    torch = pytest.importorskip("torch")
    run_contender(benchmark, problem, bench.TORCH_INDEX_SELECT, threads, torch)


# scatter_add (dense) -----------------------------------------------------------------------

def test_scatter_add_numpy_add_at(benchmark, problem):
    run_contender(benchmark, problem, bench.NP_ADD_AT)


def test_scatter_add_fastembed(benchmark, problem, threads):
    run_contender(benchmark, problem, bench.FE_SCATTER, threads)


def test_scatter_add_torch_index_add(benchmark, problem, threads):
    torch = pytest.importorskip("torch")
    run_contender(benchmark, problem, bench.TORCH_INDEX_ADD, threads, torch)


# coalesce (sparse gradient) ----------------------------------------------------------------

def test_coalesce_numpy_argsort_reduceat(benchmark, problem):
    run_contender(benchmark, problem, bench.NP_REDUCEAT)


def test_coalesce_fastembed(benchmark, problem, threads):
    run_contender(benchmark, problem, bench.FE_COALESCE, threads)


def test_coalesce_torch_sparse_backward(benchmark, problem, threads):
    """torch: ``F.embedding(tX, w, sparse=True)`` untimed, then timed backward + coalesce."""
    torch = pytest.importorskip("torch")
    run_contender(benchmark, problem, bench.TORCH_SPARSE, threads, torch)
