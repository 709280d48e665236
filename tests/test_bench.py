"""The benchmark runner's logic (fastembed.bench): data, byte model, records, checks, targets.

Fast, and no test asserts anything about speed. They pass with and without torch installed.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import fastembed
from fastembed import bench


def cli_main(argv):
    # imported when called, not at collection: a module imported while pytest collects binds
    # the collection-time sys.stdout into any `file=sys.stdout` default
    from fastembed.__main__ import main
    return main(argv)

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


def test_copy_limit_fields():
    c = bench.measure_copy_limit(1 << 20, repeat=2)
    assert c["bytes_per_copy"] == 2 << 20
    assert c["gbps"] == pytest.approx(c["bytes_per_copy"] / c["median_s"] / 1e9)


# --- run, table, JSON -----------------------------------------------------------------------

def test_run_returns_complete_records(micro_result):
    recs = micro_result.records
    names = {r.contender for r in recs}
    expected = {c.name for c in bench.CONTENDERS if not c.needs_torch or _has_torch()}
    assert names == expected
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
            assert r.check == "bitwise"
        if r.baseline:
            assert r.speedup == 1.0
        else:
            base = next(b for b in recs if b.baseline and (b.dist, b.op) == (r.dist, r.op))
            assert r.speedup == pytest.approx(base.median_s / r.median_s)
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
    assert "gather" in data["byte_model"]


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


# --- targets --------------------------------------------------------------------------------

def _rec(shape, dist, op, contender, threads, median, check="bitwise"):
    return bench.Record(shape=shape, V=1, D=1, N=1, dist=dist, op=op, contender=contender,
                        kind="x", threads=threads, baseline=False, median_s=median,
                        times_s=[median], repeat=1, number=1, bytes=1, gbps=1.0,
                        pct_copy=1.0, speedup=None, check=check, unique_rows=1)


def _synthetic(fe_big_uniform=1.0, fe_big_zipf=1.0, fe_tiny=1.5e-6, fe_check="bitwise"):
    G, S, C = "gather", "scatter_add", "coalesce"
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
        cli_main(["bench", "--quick", "--plot", str(tmp_path / "x.png")])
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
    status = cli_main(["bench", "--quick", "--repeat", "1", "--threads", "1",
                       "--json", str(path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "fastembed.gather(out=)" in out and "targets" in out and "benchmark time" in out
    data = json.loads(path.read_text())
    assert {r["shape"] for r in data["records"]} == {"tiny"}
    assert {r["threads"] for r in data["records"]} == {1}
    assert data["environment"]["repeat"] == 1


def test_bench_subcommand_rejects_bad_options(capsys):
    for argv in (["bench", "--repeat", "0"], ["bench", "--threads", "0"],
                 ["bench", "--shapes", "huge"], ["bench", "--ops", "sort"]):
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
