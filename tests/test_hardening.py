"""Regression tests for bugs found in review: each once crashed the interpreter or misbehaved."""
from __future__ import annotations

import numpy as np
import pytest

import fastembed
from fastembed import Embedding, EmbeddingBag, optim
from fastembed._ext.threads import MAX_THREADS_PER_CORE, resolve_n_threads


# -- optimizers must not trust layer.grad ---------------------------------------------------

@pytest.mark.parametrize("grad, exc", [
    (lambda: fastembed.SparseGrad(np.array([3, 10**9]), np.ones((2, 8), np.float32)),
     IndexError),
    (lambda: fastembed.SparseGrad(np.array([-1]), np.ones((1, 8), np.float32)), IndexError),
    (lambda: fastembed.SparseGrad(np.array([1, 1]), np.ones((2, 8), np.float32)), ValueError),
    (lambda: fastembed.SparseGrad(np.array([2, 1]), np.ones((2, 8), np.float32)), ValueError),
    (lambda: fastembed.SparseGrad(np.array([1]), np.ones((1, 4), np.float32)), ValueError),
    (lambda: fastembed.SparseGrad(np.array([1]), np.ones((1, 8), np.float64)), ValueError),
    (lambda: fastembed.SparseGrad(np.array([1], np.int32), np.ones((1, 8), np.float32)),
     TypeError),
    (lambda: "not a gradient", TypeError),
])
def test_step_rejects_a_malformed_grad_and_changes_nothing(grad, exc):
    good = Embedding(weight=np.zeros((4, 8), np.float32))
    bad = Embedding(weight=np.zeros((4, 8), np.float32))
    opt = optim.Adam([good, bad], lr=0.1)
    good([1]); good.backward(np.ones((1, 8), np.float32))
    bad.grad = grad()
    with pytest.raises(exc):
        opt.step()
    assert not good.weight.any() and not bad.weight.any()
    assert opt.steps == [0, 0]
    assert all(not s.any() for pair in opt.state for s in pair)


def test_momentum_turned_on_after_construction():
    a = Embedding(weight=np.ones((4, 8), np.float32))
    b = Embedding(weight=np.ones((4, 8), np.float32))
    late, early = optim.SGD(a, lr=0.1), optim.SGD(b, lr=0.1, momentum=0.9)
    late.momentum = 0.9
    for layer, opt in ((a, late), (b, early)):
        for ids in ([1, 2], [2, 3]):
            layer(ids); layer.backward(np.ones((2, 8), np.float32)); opt.step(); opt.zero_grad()
    np.testing.assert_array_equal(a.weight, b.weight)


def test_hyper_parameters_are_checked_at_every_step():
    layer = Embedding(weight=np.ones((4, 8), np.float32))
    opt = optim.Adam(layer, lr=0.1)
    opt.lr = -1.0
    layer([1]); layer.backward(np.ones((1, 8), np.float32))
    with pytest.raises(ValueError, match="lr"):
        opt.step()
    np.testing.assert_array_equal(layer.weight, 1)


def test_load_state_dict_checks_hyper_parameters():
    layer = Embedding(weight=np.ones((4, 8), np.float32))
    opt = optim.Adam(layer, lr=0.1)
    state = opt.state_dict()
    state["hyper"]["betas"] = (1.5, 0.9)
    with pytest.raises(ValueError):
        opt.load_state_dict(state)
    state["hyper"] = {"lr": 0.1, "bogus": 1}
    with pytest.raises(ValueError, match="bogus"):
        opt.load_state_dict(state)
    assert opt.betas == (0.9, 0.999) and opt.lr == 0.1


# -- an output must not share memory with the ids -----------------------------------------

def test_gather_out_overlapping_ids_raises():
    weight = np.full((4, 2), 1e30, np.float32)
    buf = np.zeros(128, np.float32)
    before = buf.copy()
    for n in (64, 16):  # the general path and the small-call fast path
        with pytest.raises(ValueError, match="ids"):
            fastembed.gather(weight, buf.view(np.int32)[:n], out=buf[:2 * n].reshape(n, 2))
    np.testing.assert_array_equal(buf, before)


def test_scatter_add_out_overlapping_ids_raises():
    out = np.zeros((100, 1), np.float32)
    ids = out.view(np.int32).reshape(-1)
    ids[:] = 60
    before = out.copy()
    with pytest.raises(ValueError, match="ids"):
        fastembed.scatter_add(out, ids, np.full((100, 1), 1e30, np.float32))
    np.testing.assert_array_equal(out.view(np.int32), before.view(np.int32))


def test_embedding_bag_out_overlapping_ids_raises():
    weight = np.ones((4, 2), np.float32)
    buf = np.zeros(64, np.float32)
    ids = buf.view(np.int32)[:8]
    before = buf.copy()
    with pytest.raises(ValueError, match="ids"):
        fastembed.embedding_bag(weight, ids, [0, 4], mode="sum", out=buf[:4].reshape(2, 2))
    np.testing.assert_array_equal(buf, before)


def test_embedding_forward_out_overlapping_ids_raises():
    layer = Embedding(weight=np.ones((4, 2), np.float32))
    buf = np.zeros(64, np.float32)
    with pytest.raises(ValueError, match="ids"):
        layer(buf.view(np.int32)[:16], out=buf[:32].reshape(16, 2))


# -- no ids left to coalesce, on several threads --------------------------------------------

@pytest.mark.parametrize("n_threads", [1, 2])
def test_bag_backward_when_no_id_contributes(n_threads):
    bag = EmbeddingBag(weight=np.ones((10, 64), np.float32), mode="sum", padding_idx=0)
    bag(np.zeros((1000, 1), np.int64), n_threads=n_threads)
    g = bag.backward(np.ones((1000, 64), np.float32), n_threads=n_threads)
    assert g.rows.size == 0 and g.values.shape == (0, 64)


# -- thread counts are capped ---------------------------------------------------------------

def test_an_absurd_thread_count_is_capped():
    resolved = resolve_n_threads(10**6)
    assert 1 <= resolved <= MAX_THREADS_PER_CORE * max(1, __import__("os").cpu_count())
    table = np.ones((10, 4), np.float32)
    np.testing.assert_array_equal(fastembed.gather(table, np.arange(10), n_threads=10**6),
                                  table)


# -- found by the fuzzer and the sanitizers --------------------------------------------------

@pytest.mark.parametrize("make", [lambda l: fastembed.optim.Adam(l, lr=0.1),
                                  lambda l: fastembed.optim.Adagrad(l, lr=0.1),
                                  lambda l: fastembed.optim.RowWiseAdagrad(l, lr=0.1),
                                  lambda l: fastembed.optim.SGD(l, lr=0.1, momentum=0.9)])
@pytest.mark.parametrize("fused", [False, True])
def test_optimizer_state_that_no_longer_fits_a_replaced_table_raises(make, fused):
    layer = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
    opt = make(layer)
    layer([0])
    layer.backward(np.ones((1, 2), np.float32))
    opt.step()  # the state now exists, for 4 rows
    opt.zero_grad()
    layer.weight = np.ones((100_000, 2), np.float32)
    layer([99_999])
    before = layer.weight.copy()
    with pytest.raises(ValueError, match="the table was replaced"):
        if fused:
            layer.backward_and_step(np.ones((1, 2), np.float32), opt)
        else:
            layer.backward(np.ones((1, 2), np.float32))
            opt.step()
    assert layer.weight.tobytes() == before.tobytes()


def test_skipgram_refuses_unsigned_starts_that_would_wrap():
    from fastembed.models.word2vec import SkipGram
    m = SkipGram(np.array([5, 5, 5, 5]), dim=4, sample=0, shards=1)
    before = m.syn0.copy()
    with pytest.raises(ValueError, match="starts must rise"):
        m.train_step((np.array([0, 1, 2, 3, 0]), np.array([0, 2**63 + 5, 5], np.uint64)),
                     lr=0.1, rng=np.random.default_rng(0))
    assert m.syn0.tobytes() == before.tobytes()
    ok = m.train_step((np.array([0, 1, 2, 3, 0]), np.array([0, 2, 5], np.uint64)), lr=0.1,
                      rng=np.random.default_rng(0))
    assert ok["count"] == 5


@pytest.mark.parametrize("make", [
    lambda l, c: fastembed.optim.SGD(l, lr=0.1, check_finite=c),
    lambda l, c: fastembed.optim.Adagrad(l, lr=0.1, check_finite=c),
    lambda l, c: fastembed.optim.RowWiseAdagrad(l, lr=0.1, check_finite=c),
    lambda l, c: fastembed.optim.Adam(l, lr=0.1, check_finite=c),
    lambda l, c: fastembed.optim.AdamW(l, lr=0.1, check_finite=c),
])
@pytest.mark.parametrize("fused", [False, True])
def test_check_finite(make, fused):
    """check_finite=True (the default) raises before any row changes; False lets NaN in."""
    nan_grad = np.array([[np.nan, 1.0], [1.0, 1.0]], np.float32)
    for check in (True, False):
        layer = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
        opt = make(layer, check)
        assert opt.check_finite is check
        layer([1, 2])
        before = layer.weight.copy()
        if check:
            with pytest.raises(ValueError, match="NaN or infinity"):
                if fused:
                    layer.backward_and_step(nan_grad, opt)
                else:
                    layer.backward(nan_grad)
                    opt.step()
            assert layer.weight.tobytes() == before.tobytes()
        else:
            if fused:
                layer.backward_and_step(nan_grad, opt)
            else:
                layer.backward(nan_grad)
                opt.step()
            assert np.isnan(layer.weight[1]).any()
            assert np.isfinite(layer.weight[[0, 3]]).all()
