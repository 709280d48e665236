"""pytest-benchmark suite: fastembed's kernels against NumPy and (when installed) torch.

Run with ``pytest bench/ --benchmark-only`` (add ``--benchmark-group-by=group`` to compare the
contenders of one op, shape and id distribution side by side; that is the default grouping
set here through ``benchmark.group``). These are not collected by ``pytest tests``.

Each test builds its contender with :data:`bench_kernels.CONTENDERS` (the same calls that
``python bench/bench_kernels.py`` times), asserts once, untimed, that its result passes the
runner's check (:func:`bench_kernels.check_case`: bitwise for the exact contenders, within
float tolerance for those that sum in a different order), then benchmarks it. No test asserts
anything about speed.

``bag_forward`` (mean bags of 32 ids) and ``adam_step`` (one training step with lazy Adam,
lr 1e-3) run at the small shape only (the ``small_problem`` fixture). Every ``adam_step``
contender trains its own copy of the table, and its forward re-runs untimed as the setup of
every round.
"""
from __future__ import annotations

import pytest

import bench_kernels as bench

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
        verdict = bench.check_case(problem, c, case)
        assert verdict in (("ref", "bitwise") if c.exact else ("ref", "bitwise", "close")), \
            verdict
        benchmark.group = f"{c.op} {shape.name} {problem.dist}"
        benchmark.extra_info.update(
            contender=case.name or name, threads=threads, V=shape.V, D=shape.D, N=shape.N,
            bytes=bench.problem_bytes(problem, c.op))
        if case.prepare is None:
            benchmark(case.call)
        else:  # the untimed part (a forward) runs as the setup of every round
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


# bag_forward (mean bags of 32 ids; small shape) ---------------------------------------------

def test_bag_forward_numpy_reshape_mean(benchmark, small_problem):
    run_contender(benchmark, small_problem, bench.NP_BAG_MEAN)


def test_bag_forward_fastembed(benchmark, small_problem, threads):
    run_contender(benchmark, small_problem, bench.FE_BAG, threads)


def test_bag_forward_torch_embedding_bag(benchmark, small_problem, threads):
    torch = pytest.importorskip("torch")
    run_contender(benchmark, small_problem, bench.TORCH_BAG, threads, torch)


# adam_step (one training step, lazy Adam; small shape) ----------------------------------------

def test_adam_step_fastembed_fused(benchmark, small_problem, threads):
    run_contender(benchmark, small_problem, bench.FE_ADAM_FUSED, threads)


def test_adam_step_fastembed_unfused(benchmark, small_problem, threads):
    run_contender(benchmark, small_problem, bench.FE_ADAM, threads)


def test_adam_step_torch_sparse_adam(benchmark, small_problem, threads):
    torch = pytest.importorskip("torch")
    run_contender(benchmark, small_problem, bench.TORCH_SPARSE_ADAM, threads, torch)


def test_adam_step_torch_dense_adam(benchmark, small_problem, threads):
    """torch.optim.Adam(fused=True) (foreach=True where fused is unavailable)."""
    torch = pytest.importorskip("torch")
    run_contender(benchmark, small_problem, bench.TORCH_DENSE_ADAM, threads, torch)
