"""Python threads sharing tables and layers.

The kernels release the GIL, so threads really run at once. Concurrent lookups of one table
are safe. On one layer, backward() accumulations, optimizer steps and fused steps from several
threads are serialised by the layer's and the optimizer's locks: nothing is lost or torn.
The data here are small integers (exact in float32), so that sums in any order give the same
bits and the results can be compared exactly.
"""
from __future__ import annotations

import copy
import pickle
import threading

import numpy as np
import pytest

import fastembed
from fastembed import optim
from reference import ref_scatter_add

N_THREADS = 8


def run_threads(target, n=N_THREADS):
    errors = []
    barrier = threading.Barrier(n)

    def wrapped(k):
        try:
            barrier.wait()
            target(k)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def int_table(rng, V, D, dtype=np.float32):
    return rng.integers(-4, 5, size=(V, D)).astype(dtype)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_concurrent_forward_on_a_shared_table(rng, n_threads):
    V, D = 5000, 32
    table = rng.standard_normal((V, D)).astype(np.float32)
    layer = fastembed.Embedding(weight=table)
    bag = fastembed.EmbeddingBag(weight=table, mode="sum")
    batches = [rng.integers(0, V, size=(64, 200)) for _ in range(N_THREADS)]
    results = [None] * N_THREADS

    def work(k):
        for _ in range(5):
            y = layer.forward(batches[k], n_threads=n_threads)
            g = fastembed.gather(table, batches[k], n_threads=n_threads)
            b = bag(batches[k], n_threads=n_threads)
            assert np.array_equal(y, g)
        results[k] = (y, b)

    run_threads(work)
    for k in range(N_THREADS):
        np.testing.assert_array_equal(results[k][0], table[batches[k]])
        np.testing.assert_allclose(results[k][1], table[batches[k]].sum(1), rtol=1e-5,
                                   atol=1e-4)


def test_concurrent_backward_accumulates_everything(rng):
    V, D = 300, 8
    layer = fastembed.Embedding(weight=int_table(rng, V, D))
    ids = [rng.integers(0, V, size=(40, 50)) for _ in range(N_THREADS)]
    grads = [rng.integers(-3, 4, size=(40, 50, D)).astype(np.float32) for _ in range(N_THREADS)]

    def work(k):
        for _ in range(4):
            layer.backward(grads[k], ids=ids[k], n_threads=2)

    run_threads(work)
    expected = np.zeros((V, D), np.float32)
    for k in range(N_THREADS):
        expected = ref_scatter_add(expected, ids[k].ravel(), 4 * grads[k].reshape(-1, D))
    got = layer.grad.to_dense(V)
    np.testing.assert_array_equal(got, expected)


def test_one_optimizer_many_layers_many_threads(rng):
    """Each thread trains its own layer with fused steps; one Adam holds them all (shared
    state, one lock). Every layer must end bitwise as if trained alone."""
    V, D = 300, 8
    tables = [rng.standard_normal((V, D)).astype(np.float32) for _ in range(N_THREADS)]
    ids = [[rng.integers(0, V, size=500) for _ in range(4)] for _ in range(N_THREADS)]
    grads = [[rng.standard_normal((500, D)).astype(np.float32) for _ in range(4)]
             for _ in range(N_THREADS)]

    def train(layer, opt, k):
        for step in range(4):
            layer.forward(ids[k][step])
            layer.backward_and_step(grads[k][step], opt)

    layers = [fastembed.Embedding(weight=t.copy()) for t in tables]
    shared = optim.Adam(layers, lr=0.01)
    run_threads(lambda k: train(layers[k], shared, k))
    for k in range(N_THREADS):
        alone = fastembed.Embedding(weight=tables[k].copy())
        train(alone, optim.Adam(alone, lr=0.01), k)
        assert layers[k].weight.tobytes() == alone.weight.tobytes()


def test_layers_and_optimizers_copy_and_pickle_with_a_fresh_lock(rng):
    layer = fastembed.Embedding(10, 3, seed=0)
    opt = optim.Adam(layer, lr=0.1)
    for obj in (layer, opt):
        clone = copy.deepcopy(obj)
        again = pickle.loads(pickle.dumps(obj))
        assert clone._lock is not obj._lock and again._lock is not obj._lock
    clone = copy.deepcopy(layer)
    np.testing.assert_array_equal(clone.weight, layer.weight)
    clone([1, 2])
    clone.backward(np.ones((2, 3), np.float32))
    assert layer.grad is None and clone.grad is not None
