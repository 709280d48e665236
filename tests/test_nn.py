"""Tests of fastembed.nn: the hand-written backward passes and the losses.

* Every piece's backward against central finite differences in float64: the gradient of a
  random scalar projection ``sum(R * output)`` with respect to the inputs and the parameters.
* float32 forward passes close to float64 ones.
* Both losses against the naive formulas of ``reference.py``, including extreme logits (±1e4)
  that must stay finite.
* Masked pooling with all-masked rows (zeros, zero gradient).
* fastembed's optimizers stepping ``Parameter`` objects (Linear's weight and bias) equal to
  the NumPy reference of each update rule (``reference.py``) applied to every row.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from fastembed import Embedding, SparseGrad, nn, optim
from reference import (RefOptimizer, numeric_grad, ref_bag_forward,
                       ref_sigmoid_binary_cross_entropy, ref_softmax_cross_entropy)

DTYPES = [np.float32, np.float64]


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------

def assert_grad_close(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------------------
# Parameter
# ----------------------------------------------------------------------------------------

def test_parameter_accumulates_a_dense_grad_as_all_rows(rng):
    p = nn.Parameter(np.zeros((3, 2)))
    assert p.grad is None
    g = rng.standard_normal((3, 2))
    p.accumulate(g)
    p.accumulate(g)
    assert isinstance(p.grad, SparseGrad)
    assert p.grad.rows.dtype == np.int64 and p.grad.rows.tolist() == [0, 1, 2]
    assert p.grad.values.flags.c_contiguous and p.grad.values.dtype == np.float64
    np.testing.assert_array_equal(p.grad.values, 2 * g)
    np.testing.assert_array_equal(p.dense_grad(), 2 * g)
    g[:] = 0  # the parameter holds its own copy
    np.testing.assert_array_equal(p.dense_grad(), p.grad.values)
    p.zero_grad()
    assert p.grad is None
    np.testing.assert_array_equal(p.dense_grad(), 0)
    assert np.asarray(p) is p.data and p.data is p.weight


@pytest.mark.parametrize("data, error", [
    (np.zeros(3), ValueError),                       # 1-D
    (np.zeros((2, 2), np.int64), TypeError),          # not float
    (np.zeros((2, 2), np.float16), TypeError),
    (np.zeros((4, 4))[:, ::2], ValueError),           # not C-contiguous
    ([[1.0, 2.0]], TypeError),                        # not an ndarray
])
def test_parameter_rejects_bad_arrays(data, error):
    with pytest.raises(error):
        nn.Parameter(data)


def test_parameter_accumulate_checks_shape_and_dtype():
    p = nn.Parameter(np.zeros((2, 2), np.float32), name="w")
    with pytest.raises(ValueError, match="'w'.*shape"):
        p.accumulate(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="float32"):
        p.accumulate(np.zeros((2, 2), np.float64))
    assert p.grad is None


# ----------------------------------------------------------------------------------------
# Linear
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(5, 4), (2, 3, 4), (4,)])
def test_linear_backward_matches_finite_differences(x_shape, bias, rng):
    layer = nn.Linear(4, 3, bias=bias, dtype=np.float64, seed=rng)
    if bias:  # a non-zero bias, so that the check does not pass by accident
        layer.bias.data[:] = rng.standard_normal(layer.bias.shape)
    x = rng.standard_normal(x_shape)
    R = rng.standard_normal(x_shape[:-1] + (3,))

    def f():
        return float(np.sum(R * layer.forward(x)))

    y = layer(x)
    assert y.shape == x_shape[:-1] + (3,)
    grad_x = layer.backward(R)
    assert grad_x.shape == x.shape
    assert_grad_close(grad_x, numeric_grad(f, x))
    assert_grad_close(layer.weight.dense_grad(), numeric_grad(f, layer.weight.data))
    if bias:
        assert layer.bias.shape == (3, 1)
        assert_grad_close(layer.bias.dense_grad(), numeric_grad(f, layer.bias.data))
    else:
        assert layer.bias is None and list(layer.parameters()) == [layer.weight]


def test_linear_forward_is_x_wt_plus_b_and_grads_accumulate(rng):
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    x = rng.standard_normal((6, 3))
    np.testing.assert_allclose(layer(x), x @ layer.weight.data.T + layer.bias.data[:, 0],
                               rtol=1e-14)
    g = rng.standard_normal((6, 2))
    layer.backward(g)
    layer(x)
    layer.backward(g)
    np.testing.assert_allclose(layer.weight.dense_grad(), 2 * g.T @ x, rtol=1e-13)
    np.testing.assert_allclose(layer.bias.dense_grad()[:, 0], 2 * g.sum(0), rtol=1e-13)
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_linear_float32_forward_close_to_float64(rng):
    l32 = nn.Linear(16, 5, dtype=np.float32, seed=1)
    l64 = nn.Linear(16, 5, dtype=np.float64, seed=1)
    l64.load_state_dict({k: v.astype(np.float64) for k, v in l32.state_dict().items()})
    x = rng.standard_normal((8, 16))
    y32 = l32(x.astype(np.float32))
    y64 = l64(x)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    g = rng.standard_normal((8, 5))
    np.testing.assert_allclose(l32.backward(g.astype(np.float32)), l64.backward(g),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(l32.weight.dense_grad(), l64.weight.dense_grad(),
                               rtol=1e-5, atol=1e-5)


def test_linear_default_init_is_torch_uniform_and_seeded():
    layer = nn.Linear(25, 40, seed=3)
    assert layer.weight.shape == (40, 25) and layer.bias.shape == (40, 1)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    bound = 1 / math.sqrt(25)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.9 * bound  # spread over the interval
    again = nn.Linear(25, 40, seed=3)
    np.testing.assert_array_equal(layer.weight.data, again.weight.data)
    np.testing.assert_array_equal(layer.bias.data, again.bias.data)
    zeros = nn.Linear(25, 40, init="zeros")
    assert not zeros.weight.data.any() and not zeros.bias.data.any()
    custom = nn.Linear(2, 3, dtype=np.float64, init=lambda shape, rng: np.ones(shape))
    np.testing.assert_array_equal(custom.weight.data, np.ones((3, 2)))


def test_linear_validation(rng):
    layer = nn.Linear(3, 2, dtype=np.float32)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.zeros((1, 2), np.float32))
    with pytest.raises(TypeError, match="float32"):
        layer(np.zeros((4, 3), np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        layer(np.zeros((4, 3), np.int64))
    with pytest.raises(ValueError, match="in_features=3"):
        layer(np.zeros((4, 5), np.float32))
    layer(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        layer.backward(np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match="float32"):
        layer.backward(np.zeros((4, 2), np.float64))
    assert layer.weight.grad is None  # nothing was accumulated by the failed calls
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.Linear(3, 2, dtype=np.int32)
    with pytest.raises(ValueError, match="init"):
        nn.Linear(3, 2, init="glorot")
    with pytest.raises(ValueError, match="init returned"):
        nn.Linear(3, 2, init=lambda shape, rng: np.zeros((2, 2)))
    with pytest.raises(ValueError, match="in_features must be >= 0, got -1"):
        nn.Linear(-1, 2)
    with pytest.raises(TypeError, match="seed"):
        nn.Linear(3, 2, seed=1.5)
    with pytest.raises(ValueError, match="expected keys"):
        layer.load_state_dict({"weight": layer.weight.data})
    with pytest.raises(ValueError, match="shape"):
        layer.load_state_dict({"weight": np.zeros((3, 2), np.float32),
                               "bias": np.zeros((2, 1), np.float32)})


def test_linear_accepts_lists_and_empty_batches():
    layer = nn.Linear(2, 3, dtype=np.float64, seed=0)
    assert layer([[1, 2]]).shape == (1, 3)
    y = layer(np.zeros((0, 2)))
    assert y.shape == (0, 3)
    assert layer.backward(np.zeros((0, 3))).shape == (0, 2)
    np.testing.assert_array_equal(layer.weight.dense_grad(), 0)


# ----------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------

def make_mask(rng, B, T):
    mask = rng.random((B, T)) < 0.6
    mask[0] = False          # an all-masked row
    mask[1] = True           # a full row
    return mask


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_pooling_backward_matches_finite_differences(mode, rng):
    B, T, D = 5, 4, 3
    x = rng.standard_normal((B, T, D))
    mask = make_mask(rng, B, T)
    R = rng.standard_normal((B, D))
    p = nn.Pooling(mode)

    def f():
        return float(np.sum(R * nn.pool(x, mask, mode)))

    y = p(x, mask)
    grad_x = p.backward(R)
    assert grad_x.shape == x.shape
    assert_grad_close(grad_x, numeric_grad(f, x))
    np.testing.assert_array_equal(grad_x[~mask], 0)   # no gradient to padding
    np.testing.assert_array_equal(y[0], 0)            # all-masked row: zeros...
    np.testing.assert_array_equal(grad_x[0], 0)       # ...and zero gradient
    np.testing.assert_array_equal(nn.pool_backward(R, mask, mode), grad_x)
    assert list(p.parameters()) == []


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_pooling_matches_a_naive_loop(mode, rng):
    B, T, D = 6, 5, 2
    x = rng.standard_normal((B, T, D))
    mask = make_mask(rng, B, T)
    # the rows of x not masked out, pooled bag by bag
    bounds = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
    expected = ref_bag_forward(x.reshape(B * T, D), np.flatnonzero(mask), bounds, mode)[0]
    np.testing.assert_allclose(nn.pool(x, mask, mode), expected, rtol=1e-13, atol=1e-15)
    y32 = nn.pool(x.astype(np.float32), mask, mode)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, expected, rtol=1e-5, atol=1e-6)
    assert not np.isnan(nn.pool(x, np.zeros((B, T), bool), mode)).any()


def test_pooling_validation():
    x = np.zeros((2, 3, 4))
    with pytest.raises(TypeError, match="bool"):
        nn.pool(x, np.ones((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        nn.pool(x, np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="batch, time, dim"):
        nn.pool(np.zeros((2, 3)), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="mode"):
        nn.Pooling("max")
    p = nn.Pooling()
    with pytest.raises(RuntimeError, match="forward"):
        p.backward(np.zeros((2, 4)))
    p(x, np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        p.backward(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="float64"):
        p.backward(np.zeros((2, 4), np.float32))


# ----------------------------------------------------------------------------------------
# softmax cross-entropy
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_ce_matches_naive_reference(reduction, rng):
    logits = rng.standard_normal((7, 5)) * 3
    labels = rng.integers(0, 5, size=7)
    loss, grad = nn.softmax_cross_entropy(logits, labels, reduction=reduction)
    ref_losses, ref_grad = ref_softmax_cross_entropy(logits, labels)
    if reduction == "none":
        np.testing.assert_allclose(loss, ref_losses, rtol=1e-13)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-13, atol=1e-15)
    elif reduction == "sum":
        assert isinstance(loss, float)
        np.testing.assert_allclose(loss, ref_losses.sum(), rtol=1e-13)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-13, atol=1e-15)
    else:
        np.testing.assert_allclose(loss, ref_losses.mean(), rtol=1e-13)
        np.testing.assert_allclose(grad, ref_grad / 7, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_ce_grad_matches_finite_differences(reduction, rng):
    logits = rng.standard_normal((2, 3, 4))   # leading axes are examples too
    labels = rng.integers(0, 4, size=(2, 3))
    _, grad = nn.softmax_cross_entropy(logits, labels, reduction=reduction)
    num = numeric_grad(lambda: nn.softmax_cross_entropy(logits, labels,
                                                        reduction=reduction)[0], logits)
    assert_grad_close(grad, num)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_ce_extreme_logits_stay_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    labels = np.array([0, 2, 2])
    losses, grad = nn.softmax_cross_entropy(logits, labels, reduction="none")
    assert np.isfinite(losses).all() and np.isfinite(grad).all()
    assert losses.dtype == dtype and grad.dtype == dtype
    np.testing.assert_allclose(losses, [0.0, math.log(3), 2e4 + math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad[0], [0, 0, 0], atol=1e-30)
    np.testing.assert_allclose(grad[1], [1 / 3, 1 / 3, -2 / 3], rtol=1e-6)
    np.testing.assert_allclose(grad[2], [0.5, 0.5, -1], rtol=1e-6)
    mean, _ = nn.softmax_cross_entropy(logits, labels)
    assert math.isfinite(mean)


def test_softmax_ce_float32_close_to_float64(rng):
    logits = rng.standard_normal((20, 6)) * 5
    labels = rng.integers(0, 6, size=20)
    l64, g64 = nn.softmax_cross_entropy(logits, labels)
    l32, g32 = nn.softmax_cross_entropy(logits.astype(np.float32), labels)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(l32, l64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-7)


def test_softmax_ce_validation():
    logits = np.zeros((2, 3))
    with pytest.raises(IndexError, match=r"labels\[1\] = 3 .* \[0, 3\)"):
        nn.softmax_cross_entropy(logits, [0, 3])
    with pytest.raises(IndexError, match=r"labels\[0, 1\] = -1"):
        nn.softmax_cross_entropy(np.zeros((2, 2, 3)), [[0, -1], [0, 0]])
    with pytest.raises(TypeError, match="integers"):
        nn.softmax_cross_entropy(logits, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"\(2,\)"):
        nn.softmax_cross_entropy(logits, [0, 1, 2])
    with pytest.raises(TypeError, match="float32 or float64"):
        nn.softmax_cross_entropy(np.zeros((2, 3), np.float16), [0, 1])
    with pytest.raises(ValueError, match="reduction"):
        nn.softmax_cross_entropy(logits, [0, 1], reduction="avg")
    with pytest.raises(ValueError, match="at least one class"):
        nn.softmax_cross_entropy(np.zeros((2, 0)), [0, 0])
    loss, grad = nn.softmax_cross_entropy(np.zeros((0, 3)), [])
    assert math.isnan(loss) and grad.shape == (0, 3)


# ----------------------------------------------------------------------------------------
# sigmoid binary cross-entropy
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_naive_reference_and_finite_differences(reduction, rng):
    x = rng.standard_normal((4, 3)) * 3
    t = rng.random((4, 3))
    t[0] = [0, 1, 0.5]
    loss, grad = nn.sigmoid_binary_cross_entropy(x, t, reduction=reduction)
    ref, ref_grad = ref_sigmoid_binary_cross_entropy(x, t)
    scale = 1 / x.size if reduction == "mean" else 1
    if reduction == "none":
        np.testing.assert_allclose(loss, ref, rtol=1e-12)
    else:
        np.testing.assert_allclose(loss, ref.sum() * scale, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad * scale, rtol=1e-12, atol=1e-15)
    if reduction != "none":
        num = numeric_grad(lambda: nn.sigmoid_binary_cross_entropy(
            x, t, reduction=reduction)[0], x)
        assert_grad_close(grad, num)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_extreme_logits_stay_finite(dtype):
    x = np.array([1e4, 1e4, -1e4, -1e4, 0.0], dtype=dtype)
    t = np.array([1, 0, 1, 0, 1])
    losses, grad = nn.sigmoid_binary_cross_entropy(x, t, reduction="none")
    assert losses.dtype == dtype and grad.dtype == dtype
    assert np.isfinite(losses).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(losses, [0, 1e4, 1e4, 0, math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad, [0, 1, -1, 0, -0.5], rtol=1e-6)


def test_bce_float32_close_to_float64(rng):
    x = rng.standard_normal(50) * 4
    t = (rng.random(50) < 0.5).astype(np.float64)
    l64, g64 = nn.sigmoid_binary_cross_entropy(x, t)
    l32, g32 = nn.sigmoid_binary_cross_entropy(x.astype(np.float32), t)
    np.testing.assert_allclose(l32, l64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-8)


def test_bce_validation():
    x = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"targets\[1, 0\] = 1.5 is not in \[0, 1\]"):
        nn.sigmoid_binary_cross_entropy(x, [[0, 1], [1.5, 0]])
    with pytest.raises(ValueError, match=r"targets\[0, 0\] = nan"):
        nn.sigmoid_binary_cross_entropy(x, [[np.nan, 1], [1, 0]])
    with pytest.raises(ValueError, match="shape"):
        nn.sigmoid_binary_cross_entropy(x, [0, 1])
    with pytest.raises(TypeError, match="targets"):
        nn.sigmoid_binary_cross_entropy(x, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(TypeError, match="logits"):
        nn.sigmoid_binary_cross_entropy(np.zeros(2, np.int64), [0, 1])
    with pytest.raises(ValueError, match="reduction"):
        nn.sigmoid_binary_cross_entropy(x, np.zeros((2, 2)), reduction="batchmean")


# ----------------------------------------------------------------------------------------
# A composed model: Embedding -> Pooling -> Linear -> softmax CE
# ----------------------------------------------------------------------------------------

def test_composed_model_backward_matches_finite_differences(rng):
    V, D, C, B, T = 7, 3, 4, 5, 6
    emb = Embedding(V, D, dtype=np.float64, init="normal", seed=rng)
    pooling = nn.Pooling("mean")
    head = nn.Linear(D, C, dtype=np.float64, seed=rng)
    ids = rng.integers(0, V, size=(B, T))
    mask = make_mask(rng, B, T)
    labels = rng.integers(0, C, size=B)

    def loss():
        return nn.softmax_cross_entropy(head(nn.pool(emb(ids), mask)), labels)[0]

    _, g = nn.softmax_cross_entropy(head(pooling(emb(ids), mask)), labels)
    emb.backward(pooling.backward(head.backward(g)))
    assert_grad_close(emb.grad.to_dense(V), numeric_grad(loss, emb.weight))
    assert_grad_close(head.weight.dense_grad(), numeric_grad(loss, head.weight.data))
    assert_grad_close(head.bias.dense_grad(), numeric_grad(loss, head.bias.data))


# ----------------------------------------------------------------------------------------
# Optimizers stepping dense parameters
# ----------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": (optim.SGD, dict(lr=0.1)),
    "sgd_momentum": (optim.SGD, dict(lr=0.1, momentum=0.9)),
    "adagrad": (optim.Adagrad, dict(lr=0.1, eps=1e-6, initial_accumulator_value=0.1)),
    "rowwise_adagrad": (optim.RowWiseAdagrad, dict(lr=0.1, eps=1e-6)),
    "adam": (optim.Adam, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6)),
    "adamw": (optim.AdamW, dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_step_linear_parameters_as_dense_updates(name, dtype, rng):
    layer = nn.Linear(5, 3, dtype=dtype, seed=rng)
    cls, hyper = OPTIMIZERS[name]
    opt = cls(layer.parameters(), **hyper)
    # the reference steps every row (a dense gradient), in float64
    ref_w = RefOptimizer(cls.__name__, hyper, layer.weight.data.astype(np.float64))
    ref_b = RefOptimizer(cls.__name__, hyper, layer.bias.data.astype(np.float64))
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    for step in range(4):
        x = rng.standard_normal((8, 5)).astype(dtype)
        g = rng.standard_normal((8, 3)).astype(dtype)
        if step == 2:
            g[:, 1] = 0  # a zero gradient still moves momentum-based updates (dense rules)
        layer(x)
        layer.backward(g)
        ref_w.step(np.arange(3), layer.weight.dense_grad().astype(np.float64))
        ref_b.step(np.arange(3), layer.bias.dense_grad().astype(np.float64))
        opt.step()
        opt.zero_grad()
        assert layer.weight.grad is None and layer.bias.grad is None
        np.testing.assert_allclose(layer.weight.data, ref_w.w, **tol)
        np.testing.assert_allclose(layer.bias.data, ref_b.w, **tol)


def test_optimizer_state_dict_round_trip_with_parameters(rng):
    layer = nn.Linear(4, 2, dtype=np.float64, seed=rng)
    opt = optim.Adam(layer.parameters(), lr=0.01)
    x = rng.standard_normal((3, 4))
    for _ in range(2):
        layer(x)
        layer.backward(np.ones((3, 2)))
        opt.step()
        opt.zero_grad()
    saved_opt, saved_layer = opt.state_dict(), layer.state_dict()
    layer(x)
    layer.backward(np.ones((3, 2)))
    opt.step()
    after = layer.state_dict()
    twin = nn.Linear(4, 2, dtype=np.float64)
    twin.load_state_dict(saved_layer)
    twin_opt = optim.Adam(twin.parameters(), lr=0.01)
    twin_opt.load_state_dict(saved_opt)
    twin(x)
    twin.backward(np.ones((3, 2)))
    twin_opt.step()
    for k in after:
        np.testing.assert_array_equal(twin.state_dict()[k], after[k])
