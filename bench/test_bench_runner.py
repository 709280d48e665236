"""The benchmark runner's logic (bench/bench_kernels.py): data, byte model, records, checks, targets.

Fast, and no test asserts anything about speed. They pass with and without torch installed.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

import fastembed
import bench_kernels as bench


def cli_main(argv):
    """``python bench/bench_kernels.py ARGV``, in this process."""
    return bench.cli(argv)

MICRO = bench.Shape("micro", 50, 4, 64)
FAST = dict(repeat=1, copy_bytes=1 << 20, min_time=0.0005)


def _has_torch():
    return bench._import_torch() is not None


@pytest.fixture(scope="module")
def micro_result():
    """One run of the full contender list on a micro matrix, shared by several tests."""
    return bench.run(shapes=[MICRO], **FAST)


# --- data -----------------------------------------------------------------------------------

def test_zipf_cdf_is_a_cdf():
    cdf = bench.zipf_cdf(1000)
    assert cdf.shape == (1000,)
    assert np.all(np.diff(cdf) > 0)
    assert cdf[-1] == 1.0
    k = np.arange(1, 1001, dtype=np.float64)
    p = k ** -1.1 / np.sum(k ** -1.1)
    np.testing.assert_allclose(np.diff(cdf, prepend=0.0), p, rtol=1e-9)


def test_zipf_ids_range_and_dtype():
    ids = bench.make_ids("zipf", 200_000, 1000, np.random.default_rng(0))
    assert ids.dtype == np.int64 and ids.shape == (200_000,)
    assert ids.min() >= 0 and ids.max() < 1000
    u = bench.make_ids("uniform", 200_000, 1000, np.random.default_rng(0))
    assert u.dtype == np.int64 and u.min() >= 0 and u.max() < 1000
    assert bench.make_ids("zipf", (3, 4), 10).shape == (3, 4)
    with pytest.raises(ValueError):
        bench.make_ids("pareto", 10, 10)


def test_zipf_follows_the_truncated_law():
    V, n = 10, 400_000
    ids = bench.make_ids("zipf", n, V, np.random.default_rng(1))
    counts = np.bincount(ids, minlength=V)
    k = np.arange(1, V + 1, dtype=np.float64)
    p = k ** -1.1 / np.sum(k ** -1.1)            # truncated to ranks 1..V, renormalised
    sigma = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 5 * sigma), (counts, n * p)


def test_zipf_hot_rows_are_low_ids():
    V, n = 100_000, 500_000
    counts = np.bincount(bench.make_ids("zipf", n, V, np.random.default_rng(2)), minlength=V)
    assert counts.argmax() == 0
    assert np.all(np.diff(counts[:5]) < 0)        # id 0 > id 1 > ... > id 4
    assert counts[:100].sum() > counts[-50_000:].sum()


def test_zipf_has_no_clipping_spike_at_the_last_id():
    V, n = 1000, 1_000_000
    counts = np.bincount(bench.make_ids("zipf", n, V, np.random.default_rng(3)), minlength=V)
    k = np.arange(1, V + 1, dtype=np.float64)
    expected_last = n * V ** -1.1 / np.sum(k ** -1.1)      # about 80
    assert counts[-1] < expected_last + 6 * np.sqrt(expected_last)
    # a clipped np.random.zipf would pile up far more than its neighbours at V - 1
    assert counts[-1] < 3 * counts[-20:-1].mean() + 10


def test_make_problem_shares_and_shapes():
    p = bench.make_problem(MICRO, "zipf", seed=0)
    assert p.E.shape == (50, 4) and p.E.dtype == np.float32 and p.E.flags.c_contiguous
    assert p.G.shape == (64, 4) and p.G.dtype == np.float32
    assert p.X.shape == (64,) and p.X.dtype == np.int64
    q = bench.make_problem(MICRO, "zipf", seed=0)
    np.testing.assert_array_equal(p.X, q.X)                  # reproducible
    np.testing.assert_array_equal(p.E, q.E)


def test_placement_moves_tables_not_values():
    big = bench.Shape("b", 5000, 64, 300)
    a = bench.make_problem(big, "uniform", seed=0)
    n = bench.make_problem(big, "uniform", seed=0, placement="numpy")
    assert bench.DEFAULT_PLACEMENT == "aligned" and a.placement == "aligned"
    for arr in (a.E, a.out, a.table):
        assert arr.ctypes.data % 64 == 0 and arr.flags.c_contiguous and arr.flags.writeable
    for arr in (n.E, n.out, n.table):                      # NumPy's own allocations
        assert arr.flags.owndata and arr.flags.c_contiguous and arr.flags.writeable
    assert a.E.tobytes() == n.E.tobytes()                  # the same values either way
    assert a.E.tobytes() == bench._rng(0, 5000, 64, 1).standard_normal(
        (5000, 64), dtype=np.float32).tobytes()
    np.testing.assert_array_equal(a.X, n.X)
    assert a.G.tobytes() == n.G.tobytes()
    assert not a.out.any() and not a.table.any() and not n.table.any()
    with pytest.raises(ValueError, match="unknown placement 'odd'"):
        bench.make_problem(MICRO, "uniform", placement="odd")
    with pytest.raises(ValueError, match="unknown placement"):
        bench.run(shapes=[MICRO], placement="odd", **FAST)


def test_header_says_where_tables_lie_and_the_copy_limit_at_both_ends():
    r = bench.run(shapes=[MICRO], ops=["gather"], placement="numpy", **FAST)
    assert r.environment["placement"] == "numpy"
    text = bench.format_table(r)
    assert "tables: where NumPy puts them" in text
    end = r.environment["copy_limit_end_gbps"]
    assert end > 0 and f"; {end:.2f} GB/s at the end" in text


def test_trainees_are_made_once_and_shared_until_released():
    p = bench.make_problem(MICRO, "uniform")
    made = []
    first = p.trainee(("fastembed adam", True), lambda: made.append(1) or object())
    again = p.trainee(("fastembed adam", True), lambda: made.append(2) or object())
    other = p.trainee(("fastembed adam", False), lambda: made.append(3) or object())
    assert first is again and other is not first and made == [1, 3]
    out = p.out
    p.release_trainees()
    assert p.out is out                                  # other buffers stay
    assert p.trainee(("fastembed adam", True), object) is not first


def test_adam_contenders_share_their_copy_across_thread_counts():
    p = bench.make_problem(MICRO, "zipf")
    fused = [c for c in bench.CONTENDERS if c.name == bench.FE_ADAM_FUSED][0]
    one, two = fused.make(p, 1, None), fused.make(p, 2, None)
    trainees = [v for k, v in p._cache.items() if isinstance(k, tuple) and k[0] == "trainee"]
    assert len(trainees) == 1
    layer, opt = trainees[0]
    E0 = layer.weight.copy()
    one.prepare()
    assert opt.n_threads == 1
    one.call()
    two.prepare()
    assert opt.n_threads == 2
    two.call()
    assert not np.array_equal(layer.weight, E0)          # both calls trained the one copy
    assert np.array_equal(p.E, E0)                       # and never E itself


def test_bag_inputs_use_the_same_ids():
    p = bench.make_problem(bench.Shape("s", 50, 4, 70), "uniform", seed=0)
    assert p.n_bags == 70 // bench.BAG_LENGTH == 2
    np.testing.assert_array_equal(p.bag_ids, p.X[:64])        # whole bags of X
    np.testing.assert_array_equal(p.offsets, [0, 32])
    assert p.offsets.dtype == np.int64
    assert p.bag_grad.shape == (2, 4) and p.bag_grad.dtype == np.float32
    q = bench.make_problem(bench.Shape("s", 50, 4, 70), "uniform", seed=0)
    np.testing.assert_array_equal(p.bag_grad, q.bag_grad)    # reproducible
    assert p.unique_count("bag_forward") == np.unique(p.X[:64]).size
    assert p.unique_count() == np.unique(p.X).size
    with pytest.raises(ValueError, match="at least 32 ids"):
        bench.make_problem(bench.Shape("s", 50, 4, 31), "uniform").bag_ids


def test_new_ops_run_on_small_mid_big_only():
    for op in ("bag_forward", "bag_backward", "adam_step"):
        assert [s.name for s in bench.SHAPES if bench.op_runs_on(op, s)] == [
            "small", "mid", "big"]
        assert bench.op_runs_on(op, MICRO)                   # custom shapes run every op
    for op in ("gather", "scatter_add", "coalesce"):
        assert all(bench.op_runs_on(op, s) for s in bench.SHAPES)
    assert set(bench.QUICK_OPS) == set(bench.OPS) - {"bag_backward"}
    res = bench.run(shapes=["tiny"], ops=("bag_forward", "adam_step"), threads=[1],
                    use_torch=False, **FAST)
    assert res.records == []


def test_reference_models():
    rng = np.random.default_rng(5)
    E = rng.standard_normal((6, 3), dtype=np.float32)
    X = np.array([1, 1, 4, 0] * 8 + [2] * 32, dtype=np.int64)          # 2 bags of 32
    mean = bench.numpy_bag_mean(E, X)
    np.testing.assert_allclose(mean[0], (E[1] * 2 + E[4] + E[0]) / 4, rtol=1e-6)
    np.testing.assert_allclose(mean[1], E[2], rtol=1e-6)
    Gb = rng.standard_normal((2, 3), dtype=np.float32)
    dense = bench.numpy_bag_backward(6, X, Gb)
    assert dense.dtype == np.float32
    np.testing.assert_allclose(dense[1], Gb[0] * 16 / 32, rtol=1e-6)
    np.testing.assert_allclose(dense[2], Gb[1], rtol=1e-6)
    assert not dense[[3, 5]].any()
    # one Adam step moves each touched entry by about lr; untouched rows stay
    G = rng.standard_normal((X.size, 3), dtype=np.float32)
    w = bench.numpy_adam_step(E, X, G)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w[[3, 5]], E[[3, 5]])
    np.testing.assert_allclose(np.abs(w[[0, 1, 2, 4]] - E[[0, 1, 2, 4]]), bench.ADAM_LR,
                               rtol=1e-3)
    # dense Adam adds eps after the bias correction: different where |g| is near eps
    tiny = np.full_like(G, 1e-10)
    lazy = bench.numpy_adam_step(E, X, tiny).astype(np.float64) - E
    dense_adam = bench.numpy_adam_step(E, X, tiny, dense=True).astype(np.float64) - E
    assert abs(dense_adam[2, 0]) > 2 * abs(lazy[2, 0]) > 0


# --- byte model -----------------------------------------------------------------------------

def test_byte_model_arithmetic():
    N, D = 10, 4
    assert bench.bytes_moved("gather", N, D, 4, 8) == 10 * 4 * 4 * 2 + 10 * 8 == 400
    assert bench.bytes_moved("scatter_add", N, D, 4, 8) == 10 * 4 * 4 * 3 + 80 == 560
    # grad read 160 + values written 3*4*4 + rows written 3*8 + ids 80
    assert bench.bytes_moved("coalesce", N, D, 4, 8, unique=3) == 160 + 48 + 24 + 80
    assert bench.bytes_moved("gather", 2**20, 64, 4, 8) == 2 * 2**20 * 64 * 4 + 2**20 * 8
    with pytest.raises(ValueError):
        bench.bytes_moved("coalesce", N, D)
    with pytest.raises(ValueError):
        bench.bytes_moved("sort", N, D)


def test_byte_model_of_bags_and_adam():
    N, D, U = 64, 4, 10                   # B = 64 // 32 = 2 bags
    rows, ids = N * D * 4, N * 8          # 1024, 512
    # rows read 1024 + bag outputs written 2*4*4 + ids 512 + offsets 2*8
    assert bench.bytes_moved("bag_forward", N, D, 4, 8) == rows + 32 + ids + 16 == 1584
    # bag grads read 2*4*4 + values written 10*4*4 + rows written 10*8 + ids 512 + offsets 16
    assert bench.bytes_moved("bag_backward", N, D, 4, 8, unique=U) == 32 + 160 + 80 + 512 + 16
    # grad read 1024 + ids 512 + table, m and v rows read and written: 6*10*4*4
    assert bench.bytes_moved("adam_step", N, D, 4, 8, unique=U) == rows + ids + 960 == 2496
    # only whole bags count: 70 ids are still 2 bags of 32
    assert bench.bytes_moved("bag_forward", 70, D, 4, 8) == 1584
    assert bench.bytes_moved("bag_forward", 2**20, 64, 4, 8) == (
        2**20 * 64 * 4 + 2**15 * 64 * 4 + 2**20 * 8 + 2**15 * 8)
    for op in ("bag_backward", "adam_step"):
        with pytest.raises(ValueError):
            bench.bytes_moved(op, N, D)
    p = bench.make_problem(MICRO, "zipf")
    assert bench.problem_bytes(p, "adam_step") == bench.bytes_moved(
        "adam_step", 64, 4, 4, 8, unique=np.unique(p.X).size)


def test_records_use_the_byte_model(micro_result):
    copy = micro_result.copy_limit["gbps"]
    for r in micro_result.records:
        assert r.bytes == bench.bytes_moved(r.op, r.N, r.D, 4, 8, r.unique_rows)
        assert r.gbps == pytest.approx(r.bytes / r.median_s / 1e9)
        assert r.pct_copy == pytest.approx(100 * r.gbps / copy)


# --- references and the NumPy coalesce baseline ----------------------------------------------

@pytest.mark.parametrize("dist", bench.DISTS)
def test_coalesce_reference_is_unique_plus_add_at_bitwise(dist):
    p = bench.make_problem(bench.Shape("s", 300, 8, 2000), dist)
    rows, values = p.reference("coalesce")
    urows, inverse = np.unique(p.X, return_inverse=True)
    expected = np.zeros((urows.size, 8), np.float32)
    np.add.at(expected, inverse, p.G)
    np.testing.assert_array_equal(rows, urows)
    assert values.tobytes() == expected.tobytes()
    assert bench.compare("coalesce", bench.numpy_coalesce(p.X, p.G), (rows, values),
                         exact=False) in ("bitwise", "close")


def test_compare_verdicts():
    ref = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert bench.compare("gather", ref.copy(), ref, exact=True) == "bitwise"
    nudged = ref + np.float32(1e-6)
    assert bench.compare("gather", nudged, ref, exact=False) == "close"
    assert bench.compare("gather", nudged, ref, exact=True).startswith("MISMATCH")
    assert bench.compare("gather", ref + 1, ref, exact=False).startswith("MISMATCH")
    assert bench.compare("gather", ref[:2], ref, exact=False).startswith("MISMATCH")
    assert bench.compare("gather", np.full_like(ref, np.nan), ref, False).startswith("MISMATCH")
    neg_zero = np.zeros(2, np.float32) * -1
    assert bench.compare("gather", neg_zero, np.zeros(2, np.float32), True).startswith("MISMATCH")
    rows = np.array([0, 2])
    assert bench.compare("coalesce", (rows, ref[:2]), (rows, ref[:2]), True) == "bitwise"
    assert bench.compare("coalesce", (rows + 1, ref[:2]), (rows, ref[:2]),
                         True).startswith("MISMATCH")


# --- timing ---------------------------------------------------------------------------------

def test_measure_loops_short_calls_and_caps_slow_ones():
    times, number = bench.measure(lambda: None, repeat=3, min_time=0.002)
    assert len(times) == 3 and number > 1
    times, number = bench.measure(lambda: None, repeat=7, min_time=0.0, slow=0.0,
                                  slow_repeat=3)
    assert len(times) == 3 and number == 1
    calls = []
    bench.measure(lambda: calls.append("call"), repeat=2, min_time=0.0,
                  prepare=lambda: calls.append("prep"))
    assert calls == ["prep", "call"] * 3                     # warm-up + 2 timed


def test_round_indices_spread_a_slow_contender_over_the_rounds():
    assert bench.round_indices(7, 7) == list(range(7))
    assert bench.round_indices(7, 9) == list(range(7))
    assert bench.round_indices(7, 3) == [0, 3, 6]
    assert bench.round_indices(5, 2) == [0, 4]
    assert bench.round_indices(7, 1) == [3]
    for n in range(1, 12):
        for k in range(1, n + 1):
            idx = bench.round_indices(n, k)
            assert len(idx) == k and idx == sorted(set(idx)) and 0 <= idx[0] <= idx[-1] < n


def test_measure_interleaved_times_contenders_round_by_round():
    log = []
    items = [bench.Timed(lambda name=name: log.append(name)) for name in "abc"]
    bench.measure_interleaved(items, repeat=4, min_time=0.0)
    assert log[:3] == ["a", "b", "c"]              # calibration: one warm-up call each
    assert log[3:] == ["a", "a", "b", "b", "c", "c"] * 4   # round by round, in pairs
    for item in items:
        assert item.number == 1 and len(item.times) == 4 and item.error is None
        assert all(t >= 0 for t in item.times)


def test_measure_interleaved_slow_items_hooks_and_errors():
    log = []

    def slow():
        log.append("slow")
        time.sleep(0.003)

    calls = {"fail": 0}

    def fails_in_round_two():
        calls["fail"] += 1
        log.append("fail")
        if calls["fail"] == 4:     # warm-up, round 0's pair, then round 1's first call raises
            raise RuntimeError("broke mid-run")

    items = [bench.Timed(slow), bench.Timed(fails_in_round_two),
             bench.Timed(lambda: log.append("fast"), prepare=lambda: log.append("prep"),
                         before=lambda: log.append("before"))]
    bench.measure_interleaved(items, repeat=5, min_time=0.0, slow=0.002, slow_repeat=2)
    slow_item, failing, fast = items
    assert len(slow_item.times) == 2 and slow_item.error is None    # rounds 0 and 4 only
    assert all(t >= 0.003 for t in slow_item.times)
    assert isinstance(failing.error, RuntimeError) and len(failing.times) == 1
    assert len(fast.times) == 5 and fast.error is None
    # every measurement of the hooked item: its before hook, then two prepare + call pairs
    assert log.count("before") == 1 + 5
    assert log.count("prep") == log.count("fast") == 1 + 2 * 5
    rounds = "".join({"slow": "s", "fail": "f", "fast": "x"}[e] for e in log
                     if e in ("slow", "fail", "fast"))
    # calibration; round 0; round 1, where the failing item raises on its untimed call; ...
    assert rounds == "sfx" + "sffxx" + "fxx" + "xx" + "xx" + "sxx"


def test_measure_interleaved_times_the_second_of_two_calls_except_slow_ones():
    counts = {"short": 0, "long": 0, "slow": 0}

    def short():
        counts["short"] += 1

    def long():
        counts["long"] += 1
        time.sleep(0.002)

    def slow():
        counts["slow"] += 1
        time.sleep(0.006)

    items = [bench.Timed(short), bench.Timed(long), bench.Timed(slow)]
    bench.measure_interleaved(items, repeat=3, min_time=0.001, slow=0.005, slow_repeat=2)
    short_item, long_item, slow_item = items
    assert short_item.number > 1 and long_item.number == 1 and slow_item.number == 1
    assert counts["long"] == 1 + 3 * 2                 # warm-up, then an untimed + a timed call
    assert counts["slow"] == 1 + 2                     # warm-up, then timed alone, 2 rounds
    # calibration calls, then per round one untimed call and a loop of `number`
    assert counts["short"] >= 2 + 3 * (1 + short_item.number)
    assert len(short_item.times) == len(long_item.times) == 3 and len(slow_item.times) == 2


def test_run_times_a_group_interleaved(monkeypatch):
    seen = []
    real = bench.measure_interleaved

    def spy(items, **kw):
        seen.append(len(items))
        return real(items, **kw)
    monkeypatch.setattr(bench, "measure_interleaved", spy)
    contenders = [c for c in bench.CONTENDERS if c.op == "gather" and not c.needs_torch]
    res = bench.run(shapes=[MICRO], dists=("uniform",), ops=("gather",), threads=[1, 2],
                    contenders=contenders, **FAST)
    # one call for the whole group: E[X], np.take, and fastembed at 1 and 2 threads
    assert seen == [4]
    assert len(res.records) == 4 and all(r.median_s > 0 for r in res.records)


def test_copy_limit_fields():
    c = bench.measure_copy_limit(1 << 20, repeat=2)
    assert c["bytes_per_copy"] == 2 << 20
    assert c["gbps"] == pytest.approx(c["bytes_per_copy"] / c["median_s"] / 1e9)


# --- run, table, JSON -----------------------------------------------------------------------

def test_run_returns_complete_records(micro_result):
    recs = micro_result.records
    names = {r.contender for r in recs}
    expected = {c.name for c in bench.CONTENDERS if not c.needs_torch or _has_torch()}
    if bench.TORCH_DENSE_ADAM_FOREACH in names:      # this torch has no fused CPU Adam
        expected = expected - {bench.TORCH_DENSE_ADAM} | {bench.TORCH_DENSE_ADAM_FOREACH}
    assert names == expected
    # a custom shape (not one of SHAPES) runs every op, the new ones included
    assert {(r.dist, r.op) for r in recs} == {(d, o) for d in bench.DISTS for o in bench.OPS}
    threads = bench.default_threads()
    for r in recs:
        d = vars(r)
        assert set(d) == set(bench.RECORD_FIELDS)
        assert r.shape == "micro" and (r.V, r.D, r.N) == (50, 4, 64)
        assert r.median_s > 0 and len(r.times_s) == r.repeat == 1 and r.number >= 1
        assert r.check in ("ref", "bitwise", "close"), (r.contender, r.check)
        assert r.threads in threads
        if r.kind == "fastembed":
            # mean pooling may sum in another order than NumPy: close passes for the bag ops
            assert r.check in (("bitwise", "close") if r.op in bench.BAG_OPS
                               else ("bitwise",)), (r.contender, r.check)
        if r.baseline:
            assert r.speedup == 1.0
        else:
            base = next(b for b in recs if b.baseline and (b.dist, b.op) == (r.dist, r.op))
            assert r.speedup == pytest.approx(base.median_s / r.median_s)
    for dist in bench.DISTS:
        for op in bench.OPS:      # exactly one denominator row per group
            assert sum(r.baseline for r in recs if (r.dist, r.op) == (dist, op)) == 1
    for c in bench.CONTENDERS:
        if c.threaded and c.name in names:
            assert {r.threads for r in recs if r.contender == c.name} == set(threads)
    assert not micro_result.mismatches


def test_table_and_json_contain_the_records(micro_result, tmp_path):
    text = bench.format_table(micro_result)
    env = micro_result.environment
    for key in ("cpu_model", "fastembed_version", "numpy_version", "torch_version"):
        assert str(env[key]) in text
    assert f"openmp_enabled={fastembed.openmp_enabled()}" in text
    assert "logical cores" in text and "repeat: 1" in text
    assert "interleaved, round by round" in text and "second of two in a row" in text
    for col in bench.TABLE_COLUMNS:
        assert col in text
    for r in micro_result.records:
        assert r.contender in text
    assert "targets" in text and "MISMATCH" not in text
    path = tmp_path / "bench.json"
    bench.write_json(micro_result, path)
    data = json.loads(path.read_text())
    assert data["environment"]["numpy_version"] == np.__version__
    assert data["copy_limit"]["gbps"] > 0
    assert len(data["records"]) == len(micro_result.records)
    for rec in data["records"]:
        assert set(rec) == set(bench.RECORD_FIELDS)
    assert {t["label"] for t in data["targets"]} == {t.label for t in bench.TARGETS}
    for op in bench.OPS:
        assert op in data["byte_model"]


def test_run_without_torch(monkeypatch):
    monkeypatch.setattr(bench, "_import_torch", lambda: None)
    res = bench.run(shapes=[MICRO], dists=("uniform",), ops=("gather",), threads=[1], **FAST)
    assert res.environment["torch_version"] == "not installed"
    assert all(r.kind != "torch" for r in res.records)
    assert "n/a (torch not installed)" in bench.format_targets(res.targets)
    status = {t.label: t.status for t in res.targets}
    for t in bench.TARGETS:
        if t.needs_torch:
            assert status[t.label] == "n/a (torch not installed)"


# --- the correctness check ------------------------------------------------------------------

def _wrong_gather(p, n, torch):
    return bench.Case(call=lambda: p.E[p.X], check=lambda: p.E[p.X] + 1)


def _not_bitwise_gather(p, n, torch):
    return bench.Case(call=lambda: p.E[p.X], check=lambda: p.E[p.X] * np.float32(1 + 2**-20))


def _broken_gather(p, n, torch):
    def check():
        raise RuntimeError("kernel exploded")
    return bench.Case(call=lambda: None, check=check)


def test_a_wrong_contender_is_flagged_loudly():
    contenders = [c for c in bench.CONTENDERS if c.op == "gather" and not c.needs_torch] + [
        bench.Contender("gather", "wrong gather", _wrong_gather),
        bench.Contender("gather", "inexact gather", _not_bitwise_gather, exact=True),
        bench.Contender("gather", "broken gather", _broken_gather),
    ]
    res = bench.run(shapes=[MICRO], dists=("uniform",), ops=("gather",), threads=[1],
                    contenders=contenders, **FAST)
    by_name = {r.contender: r for r in res.records}
    assert by_name["wrong gather"].check.startswith("MISMATCH")
    assert by_name["inexact gather"].check.startswith("MISMATCH")
    assert by_name["broken gather"].check == "ERROR"
    assert "kernel exploded" in by_name["broken gather"].error
    assert by_name[bench.FE_GATHER].check == "bitwise"
    assert {r.contender for r in res.mismatches} == {"wrong gather", "inexact gather",
                                                     "broken gather"}
    text = bench.format_table(res)
    row = next(line for line in text.splitlines() if line.startswith("micro")
               and "wrong gather" in line)
    assert "MISMATCH" in row
    assert "MISMATCH: 3 row(s)" in text
    assert "MISMATCH: micro uniform gather broken gather" in text


def _sum_bags(p, n, torch):       # sum pooling where mean is asked for
    def check():
        return fastembed.embedding_bag(p.E, p.bag_ids, p.offsets, mode="sum")
    return bench.Case(call=lambda: None, check=check)


def _bag_backward_without_mean(p, n, torch):       # forgets the 1 / L of mean bags
    def check():
        return bench.numpy_bag_backward(p.E.shape[0], p.bag_ids, p.bag_grad * bench.BAG_LENGTH)
    return bench.Case(call=lambda: None, check=check)


def _nudged_adam(p, n, torch):   # one ulp off the unfused step: not bitwise, yet "close"
    def check():
        w = bench._fe_adam_one_step(p.E, p.X, p.G, fused=True, n_threads=n)
        return np.nextafter(w, np.float32(np.inf))
    return bench.Case(call=lambda: None, check=check)


def _adam_with_lr(lr):
    def make(p, n, torch):
        def check():
            layer = fastembed.Embedding(weight=p.E.copy())
            opt = fastembed.optim.Adam(layer, lr=lr)
            layer.forward(p.X)
            layer.backward_and_step(p.G, opt)
            return layer.weight
        return bench.Case(call=lambda: None, check=check)
    return make


def test_adam_slack_covers_another_summation_order_only_where_g_cancels():
    E = np.full((3, 1), 0.5, dtype=np.float32)
    X = np.array([0, 0, 0, 1], dtype=np.int64)
    G = np.array([[1e-8], [1.0], [-1.0], [2.0]], dtype=np.float32)
    # row 0 sums to 0 in this order ((1e-8 + 1) - 1) and to 1e-8 in the reverse one
    table, slack = bench.numpy_adam_step(E, X, G, with_slack=True)
    assert slack[0, 0] > 1e-4                 # ill-conditioned: g cancels
    assert slack[1, 0] == 0 and slack[2, 0] == 0   # one contribution; untouched
    reverse = bench.numpy_adam_step(E, X[::-1].copy(), G[::-1].copy())
    assert reverse[0, 0] != table[0, 0]
    assert bench.compare("adam_step", reverse, bench.AdamReference(table, slack),
                         exact=False) == "close"
    no_slack = bench.AdamReference(table, np.zeros_like(slack))
    assert bench.compare("adam_step", reverse, no_slack, exact=False).startswith("MISMATCH")
    # the slack does not excuse a wrong step on the well-conditioned rows
    wrong = reverse.copy()
    wrong[1, 0] -= np.float32(1e-4)
    assert bench.compare("adam_step", wrong, bench.AdamReference(table, slack),
                         exact=False).startswith("MISMATCH")
    # exact_coalesce sums in position order: bitwise fastembed.coalesce
    p = bench.make_problem(bench.Shape("s", 20, 8, 5000), "zipf")
    rows, values, _ = bench.exact_coalesce(p.X, p.G)
    g = fastembed.coalesce(p.X, p.G, num_embeddings=20)
    np.testing.assert_array_equal(rows, g.rows)
    assert values.tobytes() == g.values.tobytes()


def test_new_ops_flag_wrong_contenders():
    C = {c.name: c for c in bench.CONTENDERS}
    contenders = [
        C[bench.NP_BAG_MEAN], C[bench.FE_BAG], C[bench.NP_BAG_BACKWARD], C[bench.FE_BAG_BACKWARD],
        C[bench.FE_ADAM_FUSED], C[bench.FE_ADAM],
        bench.Contender("bag_forward", "sum bags", _sum_bags),
        bench.Contender("bag_backward", "no 1/L", _bag_backward_without_mean),
        bench.Contender("adam_step", "nudged exact", _nudged_adam, exact=True),
        bench.Contender("adam_step", "nudged", _nudged_adam),
        bench.Contender("adam_step", "lr 1.1e-3", _adam_with_lr(1.1e-3)),
        bench.Contender("adam_step", "lr 0.9e-3", _adam_with_lr(0.9e-3)),
    ]
    res = bench.run(shapes=[MICRO], dists=("zipf",), threads=[1, 2], contenders=contenders,
                    use_torch=False, ops=("bag_forward", "bag_backward", "adam_step"), **FAST)
    checks = {(r.contender, r.threads): r.check for r in res.records}
    for t in (1, 2):
        assert checks[(bench.FE_BAG, t)] in ("bitwise", "close")
        assert checks[(bench.FE_BAG_BACKWARD, t)] in ("bitwise", "close")
        assert checks[(bench.FE_ADAM_FUSED, t)] == "bitwise"
        assert checks[(bench.FE_ADAM, t)] == "bitwise"
    assert checks[(bench.NP_BAG_MEAN, 1)] == checks[(bench.NP_BAG_BACKWARD, 1)] == "ref"
    assert checks[("nudged", 1)] == "close"           # within rtol 1e-5 ...
    for name in ("sum bags", "no 1/L", "nudged exact", "lr 1.1e-3", "lr 0.9e-3"):
        assert checks[(name, 1)].startswith("MISMATCH"), (name, checks[(name, 1)])
    assert "not bitwise" in checks[("nudged exact", 1)]  # ... but fused must be bitwise
    assert {r.contender for r in res.mismatches} == {"sum bags", "no 1/L", "nudged exact",
                                                     "lr 1.1e-3", "lr 0.9e-3"}
    text = bench.format_table(res)
    assert "MISMATCH: micro zipf adam_step lr 1.1e-3 threads=1" in text
    assert "MISMATCH: 5 row(s)" in text


def test_adam_reference_disagreeing_with_numpy_errors_every_row(monkeypatch):
    monkeypatch.setattr(bench, "numpy_adam_step",                      # a model without a step
                        lambda E, X, G, **kw: (E.copy(), np.zeros_like(E)))
    C = {c.name: c for c in bench.CONTENDERS}
    res = bench.run(shapes=[MICRO], dists=("uniform",), ops=("adam_step",), threads=[1],
                    contenders=[C[bench.FE_ADAM_FUSED], C[bench.FE_ADAM]], **FAST)
    assert [r.check for r in res.records] == ["ERROR", "ERROR"]
    assert all("disagrees with the NumPy model" in r.error for r in res.records)


def test_adam_baseline_without_torch(monkeypatch):
    monkeypatch.setattr(bench, "_import_torch", lambda: None)
    res = bench.run(shapes=[MICRO], dists=("zipf",), ops=("adam_step", "bag_forward"),
                    threads=[1, 2], **FAST)
    adam = [r for r in res.records if r.op == "adam_step"]
    assert {r.contender for r in adam} == {bench.FE_ADAM_FUSED, bench.FE_ADAM}
    (base,) = [r for r in adam if r.baseline]
    assert (base.contender, base.threads, base.speedup) == (bench.FE_ADAM, 1, 1.0)
    for r in adam:
        assert r.speedup == pytest.approx(base.median_s / r.median_s)
    text = bench.format_table(res)
    assert ("vs numpy for adam_step: there is no NumPy contender; the speed-ups are relative "
            "to fastembed bwd+Adam.step (1 thr)") in text
    assert "vs numpy for bag_forward" not in text
    status = {t.label: t.status for t in res.targets}
    for t in bench.TARGETS:
        if t.op in ("adam_step", "bag_forward"):
            # the fused-vs-unfused target needs no torch, only the big shape
            assert status[t.label] == ("n/a (torch not installed)" if t.needs_torch
                                       else "n/a (not measured)"), t.label


@pytest.mark.skipif(not _has_torch(), reason="needs torch")
def test_adam_baseline_is_torch_sparse_adam_with_torch(micro_result):
    for dist in bench.DISTS:
        adam = [r for r in micro_result.records if r.op == "adam_step" and r.dist == dist]
        (base,) = [r for r in adam if r.baseline]
        assert (base.contender, base.threads) == (bench.TORCH_SPARSE_ADAM, 1)
        torch_rows = [r for r in adam if r.kind == "torch"]
        assert {r.check for r in torch_rows} <= {"bitwise", "close"}
    assert "relative to torch sparse bwd+SparseAdam (1 thr)" in bench.format_table(micro_result)


# --- targets --------------------------------------------------------------------------------

def _rec(shape, dist, op, contender, threads, median, check="bitwise"):
    return bench.Record(shape=shape, V=1, D=1, N=1, dist=dist, op=op, contender=contender,
                        kind="x", threads=threads, baseline=False, median_s=median,
                        times_s=[median], repeat=1, number=1, bytes=1, gbps=1.0,
                        pct_copy=1.0, speedup=None, check=check, unique_rows=1)


def _synthetic(fe_big_uniform=1.0, fe_big_zipf=1.0, fe_tiny=1.5e-6, fe_check="bitwise",
               fe_adam=1.0, torch_bag_zipf=1.4):
    G, S, C = "gather", "scatter_add", "coalesce"
    A, BF, BB = "adam_step", "bag_forward", "bag_backward"
    recs = [
        _rec("tiny", "uniform", G, bench.NP_GATHER, 1, 2.0e-6, "ref"),
        _rec("tiny", "uniform", G, bench.FE_GATHER, 1, 1.0e-6),
        _rec("tiny", "uniform", G, bench.FE_GATHER, 2, fe_tiny),
        _rec("big", "uniform", G, bench.NP_GATHER, 1, 6.0, "ref"),
        _rec("big", "uniform", G, bench.TORCH_INDEX_SELECT, 2, 1.2),
        _rec("big", "uniform", G, bench.FE_GATHER, 1, 2.0),
        _rec("big", "uniform", G, bench.FE_GATHER, 2, fe_big_uniform, fe_check),
        _rec("big", "zipf", G, bench.NP_GATHER, 1, 6.0, "ref"),
        _rec("big", "zipf", G, bench.FE_GATHER, 1, 2.0),
        _rec("big", "zipf", G, bench.FE_GATHER, 2, fe_big_zipf),
        _rec("big", "uniform", S, bench.NP_ADD_AT, 1, 30.0, "ref"),
        _rec("big", "uniform", S, bench.TORCH_INDEX_ADD, 2, 1.2),
        _rec("big", "uniform", S, bench.FE_SCATTER, 2, 1.0),
        _rec("big", "zipf", S, bench.NP_ADD_AT, 1, 29.0, "ref"),
        _rec("big", "zipf", S, bench.FE_SCATTER, 2, 1.0),
        _rec("big", "uniform", C, bench.NP_REDUCEAT, 1, 16.0, "close"),
        _rec("big", "uniform", C, bench.TORCH_SPARSE, 2, 3.5),
        _rec("big", "uniform", C, bench.FE_COALESCE, 2, 1.0),
        _rec("big", "zipf", A, bench.FE_ADAM_FUSED, 1, 2.0),
        _rec("big", "zipf", A, bench.FE_ADAM_FUSED, 2, fe_adam),
        _rec("big", "zipf", A, bench.FE_ADAM, 2, 1.5),
        _rec("big", "zipf", A, bench.TORCH_SPARSE_ADAM, 1, 4.0, "close"),
        _rec("big", "zipf", A, bench.TORCH_SPARSE_ADAM, 2, 3.5, "close"),
        _rec("big", "zipf", A, bench.TORCH_DENSE_ADAM, 2, 0.9, "close"),
        _rec("big", "uniform", A, bench.FE_ADAM_FUSED, 2, 9.0),      # uniform: not a target
        _rec("big", "uniform", A, bench.TORCH_SPARSE_ADAM, 2, 1.0, "close"),
        _rec("big", "uniform", BF, bench.NP_BAG_MEAN, 1, 5.0, "ref"),
        _rec("big", "uniform", BF, bench.FE_BAG, 2, 1.0, "close"),
        _rec("big", "uniform", BF, bench.TORCH_BAG, 2, 2.0),
        _rec("big", "zipf", BF, bench.NP_BAG_MEAN, 1, 5.0, "ref"),
        _rec("big", "zipf", BF, bench.FE_BAG, 2, 1.0, "close"),
        _rec("big", "zipf", BF, bench.TORCH_BAG, 2, torch_bag_zipf),
        # issue 16's targets against torch, on more shapes
        _rec("mid", "uniform", G, bench.TORCH_INDEX_SELECT, 2, 1.3),
        _rec("mid", "uniform", G, bench.FE_GATHER, 2, 1.0),
        _rec("small", "uniform", G, bench.TORCH_INDEX_SELECT, 2, 0.9),
        _rec("small", "uniform", G, bench.FE_GATHER, 2, 1.0),
        _rec("wide", "uniform", S, bench.TORCH_INDEX_ADD, 2, 1.1),
        _rec("wide", "uniform", S, bench.FE_SCATTER, 2, 1.0),
        _rec("small", "zipf", S, bench.TORCH_INDEX_ADD, 2, 1.0),
        _rec("small", "zipf", S, bench.FE_SCATTER, 2, 1.0),
        _rec("mid", "uniform", BB, bench.FE_BAG_BACKWARD, 1, 2.0),
        _rec("mid", "uniform", BB, bench.FE_BAG_BACKWARD, 2, 1.0),
        _rec("big", "uniform", BB, bench.FE_BAG_BACKWARD, 1, 4.0),
        _rec("big", "uniform", BB, bench.FE_BAG_BACKWARD, 2, 1.0),
        _rec("big", "uniform", BB, bench.TORCH_BAG_BACKWARD, 2, 3.5, "close"),
        _rec("big", "uniform", A, bench.FE_ADAM, 2, 9.5),
    ]
    return recs


def _status(results):
    return {t.label: t for t in results}


def test_targets_pass_and_miss_on_synthetic_records():
    res = _status(bench.evaluate_targets(_synthetic(), all_threads=2, torch_available=True))
    T = {t.label: t for t in bench.TARGETS}
    expect = {
        "gather tiny, out=, per call <= 2 us": ("PASS", 1.5e-6),
        "gather big uniform >= 5x numpy E[X]": ("PASS", 6.0),
        "gather big uniform >= 1.5x torch index_select(out=)": ("MISS", 1.2),
        "gather big zipf >= 3.5x numpy E[X]": ("PASS", 6.0),
        "gather never slower than numpy E[X] (every shape, dist, threads)": ("PASS", 2.0 / 1.5),
        "gather big all threads >= 1.5x 1 thread": ("PASS", 2.0),
        "scatter_add big uniform >= 24x np.add.at": ("PASS", 30.0),
        "scatter_add big uniform >= 1.3x torch index_add_": ("MISS", 1.2),
        "scatter_add big zipf >= 30x np.add.at": ("MISS", 29.0),
        "coalesce big uniform >= 3x torch sparse bwd+coalesce": ("PASS", 3.5),
        "coalesce big uniform >= 15x argsort+reduceat": ("PASS", 16.0),
        # 2-thread rows: 3.5 / 1.0 and 0.9 / 1.0
        "adam_step big zipf: fastembed fused >= 3x torch sparse backward + SparseAdam":
            ("PASS", 3.5),
        "adam_step big zipf: fastembed fused faster than torch dense backward + "
        "Adam(fused=True)": ("MISS", 0.9),
        # both dists must pass: uniform 2.0x, zipf 1.4x, the worst is shown
        "bag_forward big: fastembed embedding_bag mean >= 1.5x torch F.embedding_bag":
            ("MISS", 1.4),
        # issue 16: a tuple of shapes takes the worst of them (big uniform 1.2, mid 1.3)
        "gather mid/big/wide >= 1.2x torch index_select(out=)": ("PASS", 1.2),
        "gather small >= 1.0x torch index_select(out=)": ("MISS", 0.9),
        "scatter_add mid/big/wide >= 1.2x torch index_add_": ("MISS", 1.1),
        "scatter_add small >= 1.0x torch index_add_": ("PASS", 1.0),
        "bag_forward big >= 1.3x torch F.embedding_bag": ("PASS", 1.4),
        "bag_backward: all threads never slower than 1 thread (every shape, dist; "
        ">= 0.95x)": ("PASS", 2.0),
        "bag_backward big uniform >= 3x torch sparse bag backward + coalesce": ("PASS", 3.5),
        # fused 1.0 vs unfused 1.5 (zipf), 9.0 vs 9.5 (uniform): 9.5 / 9 < 1 / 0.9
        "adam_step big: fused time <= 0.9x unfused backward + step + zero_grad":
            ("MISS", 9.5 / 9.0),
        "adam_step big zipf: fused >= 4x torch sparse backward + SparseAdam": ("MISS", 3.5),
    }
    assert set(expect) == set(T)
    for label, (status, value) in expect.items():
        assert res[label].status == status, (label, res[label])
        assert res[label].measured == pytest.approx(value), label
    text = bench.format_targets(list(res.values()))
    assert "PASS  gather big uniform >= 5x numpy E[X]" in text
    assert "MISS  scatter_add big zipf >= 30x np.add.at" in text
    assert "29.00x" in text


def test_targets_worst_row_edges_and_missing_data():
    # slower than numpy on one row: the "never slower" target misses and names that row
    res = _status(bench.evaluate_targets(_synthetic(fe_big_zipf=7.0), all_threads=2,
                                         torch_available=True))
    never = res["gather never slower than numpy E[X] (every shape, dist, threads)"]
    assert never.status == "MISS" and never.measured == pytest.approx(6.0 / 7.0)
    assert "big/zipf, 2 thr" in never.detail
    assert res["gather big zipf >= 3.5x numpy E[X]"].status == "MISS"
    # the tiny time target is a maximum: 2.5 us misses
    res = _status(bench.evaluate_targets(_synthetic(fe_tiny=2.5e-6), all_threads=2,
                                         torch_available=True))
    assert res["gather tiny, out=, per call <= 2 us"].status == "MISS"
    # a wrong result never passes
    res = _status(bench.evaluate_targets(_synthetic(fe_check="MISMATCH (x)"), all_threads=2,
                                         torch_available=True))
    assert res["gather big uniform >= 5x numpy E[X]"].status == "MISS"
    # no torch: n/a; nothing measured: n/a; one thread only: the scaling target is n/a
    res = _status(bench.evaluate_targets(_synthetic(), all_threads=2, torch_available=False))
    assert res["coalesce big uniform >= 3x torch sparse bwd+coalesce"].status == \
        "n/a (torch not installed)"
    res = _status(bench.evaluate_targets([], all_threads=2, torch_available=True))
    assert all(t.status == "n/a (not measured)" for t in res.values())
    res = _status(bench.evaluate_targets(_synthetic(), all_threads=1, torch_available=True))
    assert res["gather big all threads >= 1.5x 1 thread"].status.startswith("n/a")


def test_new_targets_edges():
    A1 = "adam_step big zipf: fastembed fused >= 3x torch sparse backward + SparseAdam"
    A2 = ("adam_step big zipf: fastembed fused faster than torch dense backward + "
          "Adam(fused=True)")
    BAG = "bag_forward big: fastembed embedding_bag mean >= 1.5x torch F.embedding_bag"
    res = _status(bench.evaluate_targets(_synthetic(fe_adam=0.5, torch_bag_zipf=1.6),
                                         all_threads=2, torch_available=True))
    assert res[A1].status == "PASS" and res[A1].measured == pytest.approx(7.0)
    assert res[A2].status == "PASS" and res[A2].measured == pytest.approx(1.8)
    assert "big/zipf, 2 thr" in res[A1].detail
    assert res[BAG].status == "PASS" and res[BAG].measured == pytest.approx(1.6)
    assert "worst of 2 rows" in res[BAG].detail and "big/zipf" in res[BAG].detail
    text = bench.format_targets(list(res.values()))
    assert f"PASS  {A1}" in text and "measured 7.00x (need >= 3x)" in text
    assert "measured 1.80x (need >= 1x)" in text
    # on one thread only, the 1-thread rows are compared
    res = _status(bench.evaluate_targets(_synthetic(), all_threads=1, torch_available=True))
    assert res[A1].status == "MISS" and res[A1].measured == pytest.approx(2.0)
    # a wrong fastembed row never passes; no torch: n/a
    recs = [r if r.contender != bench.FE_BAG or r.dist != "uniform" else
            _rec("big", "uniform", "bag_forward", bench.FE_BAG, 2, 0.1, "MISMATCH (x)")
            for r in _synthetic(torch_bag_zipf=1.6)]
    res = _status(bench.evaluate_targets(recs, all_threads=2, torch_available=True))
    assert res[BAG].status == "MISS" and "wrong result" in res[BAG].detail
    res = _status(bench.evaluate_targets(_synthetic(), all_threads=2, torch_available=False))
    for label in (A1, A2, BAG):
        assert res[label].status == "n/a (torch not installed)"
        assert f"n/a   {label}" in bench.format_targets(list(res.values()))


def test_targets_are_extensible():
    extra = bench.Target("scatter_add big zipf >= 10x np.add.at", "scatter_add",
                         bench.FE_SCATTER, "big", "zipf", 10.0, versus=bench.NP_ADD_AT)
    (res,) = bench.evaluate_targets(_synthetic(), all_threads=2, torch_available=True,
                                    targets=[extra])
    assert res.status == "PASS" and res.measured == pytest.approx(29.0)


# --- plot -----------------------------------------------------------------------------------

def _hide_matplotlib(monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # makes `import matplotlib` fail


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, micro_result, tmp_path, capsys):
    _hide_matplotlib(monkeypatch)
    with pytest.raises(bench.MissingDependencyError, match="pip install matplotlib"):
        bench.plot(micro_result, tmp_path / "x.png")
    ran = []
    monkeypatch.setattr(bench, "run", lambda *a, **k: ran.append(1))
    with pytest.raises(SystemExit) as exc:
        cli_main(["--quick", "--plot", str(tmp_path / "x.png")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "pip install matplotlib" in err and "[bench]" in err
    assert not ran                     # it fails before benchmarking anything
    assert not (tmp_path / "x.png").exists()


def test_plot_with_matplotlib(micro_result, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "speedups.png"
    bench.plot(micro_result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the command line -----------------------------------------------------------------------

def test_bench_subcommand_is_wired(monkeypatch, tmp_path, capsys):
    # shrink --quick to the tiny shape, a 1 MiB copy and short measurements
    monkeypatch.setattr(bench, "QUICK_SHAPES", ("tiny",))
    monkeypatch.setattr(bench, "COPY_BYTES", 1 << 20)
    monkeypatch.setattr(bench, "MIN_MEASURE_SECONDS", 0.0005)
    path = tmp_path / "out.json"
    status = cli_main(["--quick", "--repeat", "1", "--threads", "1",
                       "--json", str(path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "fastembed.gather(out=)" in out and "targets" in out and "benchmark time" in out
    data = json.loads(path.read_text())
    assert {r["shape"] for r in data["records"]} == {"tiny"}
    assert {r["threads"] for r in data["records"]} == {1}
    assert data["environment"]["repeat"] == 1


def test_quick_and_ops_options_choose_the_ops(monkeypatch, capsys):
    seen = []

    def fake_run(**kwargs):
        seen.append(kwargs)
        return bench.BenchResult(bench.environment([1], 1), {"array_bytes": 1 << 20,
                                 "gbps": 1.0, "repeat": 1}, [])
    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(bench, "measure_copy_limit", None)
    assert cli_main(["--quick"]) == 0
    assert seen[-1]["ops"] == list(bench.QUICK_OPS)
    assert "bag_forward" in seen[-1]["ops"] and "adam_step" in seen[-1]["ops"]
    assert seen[-1]["shapes"] == list(bench.QUICK_SHAPES)
    assert cli_main(["--ops", "bag_forward,bag_backward,adam_step"]) == 0
    assert seen[-1]["ops"] == ["bag_forward", "bag_backward", "adam_step"]
    assert cli_main([]) == 0
    assert seen[-1]["ops"] == list(bench.OPS)
    capsys.readouterr()


def test_bench_subcommand_rejects_bad_options(capsys):
    for argv in (["--repeat", "0"], ["--threads", "0"],
                 ["--shapes", "huge"], ["--ops", "sort"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        assert exc.value.code == 2
    assert "unknown shape 'huge'" in capsys.readouterr().err


def test_parse_threads():
    assert bench._parse_threads("1,2") == [1, 2]
    assert bench._parse_threads("2, 1,2") == [1, 2]
    assert bench._parse_threads("all") == [fastembed.get_num_threads()]
    for bad in ("0", "-1", "x", ","):
        with pytest.raises(ValueError):
            bench._parse_threads(bad)
