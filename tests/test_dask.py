"""fastembed.dask: lookups and pooled bags over chunked dask arrays, on a real LocalCluster.

Results are compared bitwise with NumPy references (``E[X]``, and the sequential sum / mean /
max pooling with padding of ``reference.py``) and with fastembed's own kernels on the whole
array. The cluster has two worker processes on loopback; the tests also check that the table
reaches each worker once (scattered, or mapped by path by the worker itself), never once per
chunk.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import fastembed  # noqa: E402
import fastembed.dask as fdask  # noqa: E402
from conftest import assert_bitwise_equal, make_ids, make_table  # noqa: E402
from dask.base import tokenize  # noqa: E402
from fastembed.io import load_npy, save_npy  # noqa: E402
from reference import ref_embedding_bag  # noqa: E402

FLOATS = (np.float32, np.float64)
INTS = (np.int32, np.int64)


@pytest.fixture(scope="module")
def client():
    # Without the active memory manager and work stealing: under load, each can take a
    # table's replica off a worker (after its tasks there finished, or with them) and the
    # scheduler then sends it again with later tasks; the tests count what fastembed sends.
    with dask.config.set({"distributed.scheduler.active-memory-manager.start": False,
                          "distributed.scheduler.work-stealing": False}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def worker_stats(client):
    """{worker address: fastembed.dask's per-process counts} on every worker."""
    return client.run(fdask._worker_stats)


def chunked(array, chunks):
    return da.from_array(array, chunks=chunks)


# --------------------------------------------------------------------------- gather


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("id_dtype", INTS)
@pytest.mark.parametrize("shape, chunks", [
    ((1000,), 128),
    ((37, 23), (10, 7)),
    ((6, 5, 7), (4, 2, 3)),
], ids=["1d", "2d", "3d"])
def test_gather_matches_numpy_on_cluster(client, rng, dtype, id_dtype, shape, chunks):
    E = make_table((500, 9), dtype, rng)
    uniform = make_ids("uniform", shape, 500, id_dtype, rng)
    zipf = make_ids("zipf", shape, 500, id_dtype, rng)
    y_uniform = fdask.gather(chunked(uniform, chunks), E)
    y_zipf = fdask.gather(chunked(zipf, chunks), E)
    assert y_uniform.chunks == chunked(uniform, chunks).chunks + ((9,),)
    assert y_uniform.dtype == E.dtype
    got_uniform, got_zipf = dask.compute(y_uniform, y_zipf)
    assert_bitwise_equal(got_uniform, E[uniform])
    assert_bitwise_equal(got_zipf, E[zipf])


def test_gather_empty_and_uneven_chunks(client, rng):
    E = make_table((50, 4), np.float32, rng)
    cases = {
        "0-d": np.array(7),
        "size-0": np.zeros((0,), np.int64),
        "size-0 2-d": np.zeros((3, 0), np.int32),
    }
    arrays = {name: fdask.gather(da.from_array(ids), E) for name, ids in cases.items()}
    ids = make_ids("uniform", (9, 6), 50, np.int64, rng)
    # chunks of size 0 among others
    arrays["empty chunks"] = fdask.gather(da.from_array(ids, chunks=((4, 0, 5), (0, 6))), E)
    cases["empty chunks"] = ids
    results = dict(zip(arrays, dask.compute(*arrays.values())))
    assert arrays["empty chunks"].chunks == ((4, 0, 5), (0, 6), (4,))
    for name, ids in cases.items():
        assert_bitwise_equal(results[name], E[ids])


def test_gather_threads_and_local_scheduler_agree(client, rng):
    E = make_table((3000, 33), np.float64, rng)
    ids = make_ids("zipf", (4000, 3), 3000, np.int64, rng)
    x = chunked(ids, (1000, 3))
    on_cluster = fdask.gather(x, E, n_threads=2).compute()
    with dask.config.set(scheduler="threads"):  # the local scheduler, with a client around
        local = fdask.gather(x, E, n_threads=None)
        if not fdask._uses_array_expr(x):
            # no client: the table is one key of the graph, by reference
            values = [v for v in dict(local.__dask_graph__()).values()
                      if isinstance(getattr(v, "value", None), fdask._SharedTable)]
            assert len(values) == 1 and values[0].value.array is E
        local = local.compute()
    assert_bitwise_equal(on_cluster, E[ids])
    assert_bitwise_equal(local, E[ids])


def test_gather_on_the_synchronous_scheduler(rng):
    # the synchronous scheduler, chosen while the lookup is built: the table goes into the
    # graph, not to the module's client
    E = make_table((20, 3), np.float32, rng)
    ids = make_ids("uniform", (11, 4), 20, np.int32, rng)
    with dask.config.set(scheduler="sync"):
        y = fdask.gather(chunked(ids, 3), E)
        assert_bitwise_equal(y.compute(), E[ids])


# --------------------------------------------------------------------------- bags


BAG_CASES = [(mode, pad, psw) for mode in ("sum", "mean", "max") for pad in (None, 0, -1)
             for psw in ((False, True) if mode != "max" else (False,))]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode, padding_idx, weighted", BAG_CASES)
def test_embedding_bag_matches_numpy_on_cluster(client, rng, dtype, mode, padding_idx,
                                                weighted):
    V = 300
    E = make_table((V, 6), dtype, rng)
    ids = make_ids("zipf", (90, 7), V, np.int64, rng)
    ids[5] = V - 1 if padding_idx == -1 else 0  # bags of padding only
    psw = rng.standard_normal(ids.shape).astype(dtype) if weighted else None
    # the bag-length axis in two chunks: rechunked to one
    x = chunked(ids, (16, 4))
    w = None if psw is None else chunked(psw, (30, 7))
    y = fdask.embedding_bag(x, E, mode=mode, padding_idx=padding_idx, per_sample_weights=w)
    assert y.chunks == ((16,) * 5 + (10,), (6,))
    got = y.compute()
    assert_bitwise_equal(got, ref_embedding_bag(E, ids, mode=mode, padding_idx=padding_idx,
                                                    per_sample_weights=psw))
    assert_bitwise_equal(got, fastembed.embedding_bag(E, ids, mode=mode,
                                                      padding_idx=padding_idx,
                                                      per_sample_weights=psw))


def test_embedding_bag_int32_numpy_weights_and_empty(client, rng):
    E = make_table((40, 5), np.float32, rng)
    ids = make_ids("uniform", (25, 3), 40, np.int32, rng)
    psw = rng.random(ids.shape, dtype=np.float32)
    x = chunked(ids, ((10, 0, 15), (3,)))  # an empty chunk of bags
    cases = {
        "weights as numpy": (fdask.embedding_bag(x, E, mode="mean", per_sample_weights=psw),
                             ref_embedding_bag(E, ids, mode="mean", per_sample_weights=psw)),
        "no bags": (fdask.embedding_bag(da.zeros((0, 3), dtype=np.int64, chunks=1), E),
                    np.zeros((0, 5), np.float32)),
        "empty bags": (fdask.embedding_bag(da.zeros((4, 0), dtype=np.int64), E, mode="max"),
                       np.zeros((4, 5), np.float32)),
    }
    results = dask.compute(*(y for y, _ in cases.values()))
    for (name, (y, expected)), got in zip(cases.items(), results):
        assert_bitwise_equal(got, expected)


def test_layers_supply_their_table_and_options(rng):
    E = make_table((30, 4), np.float32, rng)
    ids = make_ids("uniform", (12, 5), 30, np.int64, rng)
    ids[0, 0] = 31  # out of range: padding under the layer's bounds_check="zero"
    bag = fastembed.EmbeddingBag(weight=E.copy(), mode="max", padding_idx=3,
                                 bounds_check="zero")
    layer = fastembed.Embedding(weight=E.copy(), padding_idx=2)
    ok = np.where(ids < 30, ids, 1)
    with dask.config.set(scheduler="threads"):
        y = fdask.embedding_bag(chunked(ids, 4), bag)
        assert_bitwise_equal(y.compute(), bag(ids))
        assert_bitwise_equal(fdask.gather(chunked(ok, 4), layer).compute(), layer(ok))
    with pytest.raises(ValueError, match="max_norm"):
        fdask.gather(chunked(ok, 4), fastembed.Embedding(weight=E.copy(), max_norm=1.0))


# --------------------------------------------------------------------------- sharing


def test_in_memory_table_is_sent_once_per_worker(client, rng):
    E = make_table((16384, 64), np.float32, rng)  # 4 MiB
    ids = make_ids("zipf", (40, 500), E.shape[0], np.int32, rng)
    x = chunked(ids, (1, 500))  # 40 chunks
    y = fdask.gather(x, E)
    bag = fdask.embedding_bag(x, E, mode="sum")
    # the graphs refer to one copy of the table: they do not carry its bytes
    for graph in (y.__dask_graph__(), bag.__dask_graph__()):
        assert len(cloudpickle.dumps(dict(graph))) < E.nbytes / 20
    got_y, got_bag = dask.compute(y, bag)
    assert_bitwise_equal(got_y, E[ids])
    assert_bitwise_equal(got_bag, ref_embedding_bag(E, ids, mode="sum"))
    token = tokenize(E)
    stats = worker_stats(client)
    assert len(stats) == 2
    # each worker received the table once, whatever number of chunks it ran, and the second
    # lookup (built while the first was alive) sent nothing again
    assert [s["received"].get(token) for s in stats.values()] == [1, 1]

    E[ids[0, 0]] += 1  # changed in place: the new content is sent (once)
    again = fdask.gather(x, E).compute()
    assert_bitwise_equal(again, E[ids])
    stats = worker_stats(client)
    assert [s["received"].get(tokenize(E)) for s in stats.values()] == [1, 1]
    del y, bag


def test_lookups_built_and_dropped_in_a_loop(client, rng):
    # Each lookup's copy of the table is released when the lookup is dropped, and the next
    # one sends the table again: under a new key, so that a release still in flight cannot
    # collide with it (re-scattering under the same key lost data or hung).
    E = make_table((1000, 8), np.float32, rng)
    ids = make_ids("uniform", (1000,), 1000, np.int64, rng)
    x = chunked(ids, 100)
    for _ in range(20):
        assert_bitwise_equal(fdask.gather(x, E).compute(), E[ids])
        fdask.gather(x, E)  # built and dropped at once
        with pytest.raises(ValueError, match="mode"):
            fdask.embedding_bag(chunked(ids.reshape(10, 100), 5), E, mode="median")


def test_memmap_table_is_opened_by_path_on_each_worker(client, rng, tmp_path):
    V, D = 5000, 32
    E = make_table((V, D), np.float64, rng)
    path = tmp_path / "table.npy"
    save_npy(path, E, [f"w{i}" for i in range(V)])
    ids = make_ids("zipf", (30, 400), V, np.int64, rng)
    x = chunked(ids, (2, 400))
    driver_before = fdask._worker_stats()["opened"].get(str(path), 0)

    y = fdask.gather(x, str(path))
    assert len(cloudpickle.dumps(dict(y.__dask_graph__()))) < E.nbytes / 10
    held = client.persist(y)
    distributed.wait(held)
    ran = {w for ws in client.who_has(held).values() for w in ws}
    assert_bitwise_equal(held.compute(), E[ids])
    del held
    stats = worker_stats(client)
    opened = {w: s["opened"].get(str(path), 0) for w, s in stats.items()}
    assert ran and all(opened[w] == 1 for w in ran), (ran, opened)
    assert all(n <= 1 for n in opened.values())
    # the driver only read the header; the workers mapped the file themselves
    assert fdask._worker_stats()["opened"].get(str(path), 0) == driver_before

    # a memory-mapped Vectors (load_npy) goes by path too, and reuses the workers' maps
    vectors = load_npy(path, mmap_mode="r")
    y_vectors = fdask.embedding_bag(x, vectors, mode="mean")
    assert len(cloudpickle.dumps(dict(y_vectors.__dask_graph__()))) < E.nbytes / 10
    assert_bitwise_equal(y_vectors.compute(), ref_embedding_bag(E, ids, mode="mean"))
    rows = fdask.gather(x % 100, vectors.weight[100:200])  # a view of rows: by path as well
    assert_bitwise_equal(rows.compute(), E[100:200][ids % 100])
    assert all(s["opened"].get(str(path), 0) <= 2 for s in worker_stats(client).values())

    # a raw file mapped with np.memmap goes by path; a copy-on-write map (whose changes
    # never reach the file) is sent as an in-memory table
    raw = tmp_path / "table.f64"
    E.tofile(raw)
    for mode in ("r", "c"):
        mapped = np.memmap(raw, np.float64, mode, shape=(V, D))
        assert_bitwise_equal(fdask.gather(x, mapped).compute(), E[ids])
    token = tokenize(mapped.view(np.ndarray))
    stats = worker_stats(client).values()
    # mode "r": mapped by each worker that ran a chunk, once; mode "c": sent to every worker
    assert sorted(s["opened"].get(str(raw), 0) for s in stats)[-1] == 1
    assert all(s["opened"].get(str(raw), 0) <= 1 for s in stats)
    assert all(s["received"].get(token) == 1 for s in stats)

    # the file changes: workers map it again, also for a graph built before the change
    old_graph = fdask.gather(x, str(path))
    E2 = E * 2
    save_npy(path, E2, [f"w{i}" for i in range(V)])
    assert_bitwise_equal(fdask.gather(x, str(path)).compute(), E2[ids])
    assert_bitwise_equal(old_graph.compute(), E2[ids])
    # ... and one whose shape changed cannot be read with the old graph
    save_npy(path, E2[:10], [f"w{i}" for i in range(10)])
    with pytest.raises(ValueError, match="changed since the dask graph was built"):
        old_graph.compute()


# --------------------------------------------------------------------------- errors


def test_bad_id_names_global_position_and_chunk(client, rng):
    E = make_table((100, 3), np.float32, rng)
    ids = make_ids("uniform", (1000,), 100, np.int64, rng)
    ids[537] = 100
    with pytest.raises(IndexError, match=r"ids\[537\] = 100 is out of range .*"
                                         r"at \[37\] of chunk \(5,\)"):
        fdask.gather(chunked(ids, 100), E).compute()
    ids2 = make_ids("uniform", (20, 6), 100, np.int32, rng)
    ids2[13, 4] = -3
    with pytest.raises(IndexError, match=r"ids\[13, 4\] = -3 is negative.*chunk \(1, 1\)"):
        fdask.gather(chunked(ids2, (8, 3)), E).compute()
    with pytest.raises(IndexError, match=r"ids\[13, 4\] = -3 is negative.*chunk \(1, 0\)"):
        fdask.embedding_bag(chunked(ids2, (8, 3)), E).compute()
    with dask.config.set(scheduler="threads"):
        # chunks of unknown size: the position within the chunk is still named
        x = chunked(np.array([1, 2, 3, 300, 4]), 2)
        if not fdask._uses_array_expr(x):  # whose boolean indexing is not implemented yet
            with pytest.raises(IndexError, match=r"ids = 300 .* \(at \[1\] of chunk "
                                                 r"\(1,\); the chunk's offset is unknown\)"):
                fdask.gather(x[x != 2], E).compute()
        with pytest.raises(IndexError, match=r"^ids = -1 is negative; ids must lie in "
                                             r"\[0, 100\)$"):
            fdask.gather(da.from_array(np.array(-1)), E).compute()
    # bounds_check="zero": the bad id is padding
    y = fdask.gather(chunked(ids, 100), E, bounds_check="zero").compute()
    expected = E[np.where(ids < 100, ids, 0)]
    expected[537] = 0
    assert_bitwise_equal(y, expected)


def test_driver_side_validation(tmp_path, rng):
    E = make_table((10, 3), np.float32, rng)
    x = da.from_array(np.arange(6).reshape(2, 3) % 10, chunks=1)
    with pytest.raises(TypeError, match="ids must be integers"):
        fdask.gather(x.astype(np.float64), E)
    with pytest.raises(TypeError, match="booleans"):
        fdask.gather(x > 2, E)
    with pytest.raises(TypeError, match="ids first"):
        fdask.gather(E, x)
    with pytest.raises(TypeError, match="float32 or float64"):
        fdask.gather(x, E.astype(np.float16))
    with pytest.raises(TypeError, match="table must be"):
        fdask.gather(x, E.tolist())
    with pytest.raises(ValueError, match="2-D"):
        fdask.gather(x, E[0])
    with pytest.raises(ValueError, match="C-contiguous"):
        fdask.gather(x, np.asfortranarray(E))
    with pytest.raises(ValueError, match="n_threads must be a non-zero int"):
        fdask.gather(x, E, n_threads=0)
    with pytest.raises(ValueError, match="bounds_check"):
        fdask.gather(x, E, bounds_check="ignore")
    with pytest.raises(ValueError, match="mode"):
        fdask.embedding_bag(x, E, mode="median")
    with pytest.raises(ValueError, match="2-D"):
        fdask.embedding_bag(da.from_array(np.arange(6), chunks=2), E)
    with pytest.raises(ValueError, match="padding_idx"):
        fdask.embedding_bag(x, E, padding_idx=10)
    w = da.ones(x.shape, dtype=np.float32)
    with pytest.raises(ValueError, match="not 'max'"):
        fdask.embedding_bag(x, E, mode="max", per_sample_weights=w)
    with pytest.raises(TypeError, match="table's dtype"):
        fdask.embedding_bag(x, E, mode="sum", per_sample_weights=w.astype(np.float64))
    with pytest.raises(ValueError, match="shape of ids"):
        fdask.embedding_bag(x, E, mode="sum", per_sample_weights=w[:1])
    bad = tmp_path / "not-a-table.npy"
    bad.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a .npy table"):
        fdask.gather(x, bad)
    np.save(tmp_path / "ints.npy", np.zeros((3, 2), np.int32))
    with pytest.raises(ValueError, match="float32 or float64"):
        fdask.gather(x, tmp_path / "ints.npy")
    with pytest.raises(FileNotFoundError):
        fdask.gather(x, tmp_path / "missing.npy")


def _run_python(code):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastembed.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=root, timeout=120)


def test_import_fastembed_does_not_import_dask_and_missing_dask_is_explained():
    proc = _run_python(
        "import sys, fastembed\n"
        "assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules), 'dask'\n"
        "sys.modules['dask'] = None  # as if dask were not installed\n"
        "try:\n"
        "    import fastembed.dask\n"
        "except ImportError as exc:\n"
        "    print(exc)\n")
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "fastembed-layer[dask]"' in proc.stdout
