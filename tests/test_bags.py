"""Tests for pooled lookups: fastembed.embedding_bag and the EmbeddingBag layer.

Every expectation is computed independently of the library, by the NumPy references of
``reference.py``:

* the forward by a plain NumPy loop over bags, compared bitwise (sum: the bag's rows added
  one by one to +0.0 in position order, in the table's dtype; mean: that sum divided by the
  count or by the sequential sum of the weights; max: the elementwise maximum with the first
  occurrence winning), on every vector code path of the kernel (``pooling.SIMD_PATHS``);
* the gradient with ``np.unique`` + ``np.add.at`` (sum and mean) or a loop over bags that
  routes each element to the row that won it (max), compared bitwise, and with central finite
  differences;
* PyTorch (``torch.nn.EmbeddingBag`` / ``torch.nn.functional.embedding_bag``) when installed.

Error paths are checked to leave the table, the output and the layer's state untouched.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastembed
from fastembed import Embedding, EmbeddingBag, SparseGrad, embedding_bag
from fastembed._ext import pooling
from fastembed._ext.threads import PARALLEL_MIN_WORK

from conftest import ID_KINDS, assert_bitwise_equal, make_ids, make_table
from reference import numeric_grad, ref_bag_backward, ref_bag_bounds, ref_bag_forward

MODES = ("sum", "mean", "max")
FLOATS = (np.float32, np.float64)
ID_DTYPES = (np.int32, np.int64)
# "2d": ids of shape (B, L); "offsets": 1-D ids + B offsets; "last": 1-D ids + B + 1 offsets
# (include_last_offset=True, PyTorch's CSR layout).
LAYOUTS = ("2d", "offsets", "last")
MEAN_RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


# ----------------------------------------------------------------------------------------
# Helpers (the NumPy references are in reference.py)
# ----------------------------------------------------------------------------------------

def assert_forward_equal(mode, actual, expected):
    """Bitwise in every mode: mean divides the sequential sum by the denominator, as the
    reference does."""
    assert_bitwise_equal(actual, expected)


def assert_grad_equal(grad, rows, values):
    assert isinstance(grad, SparseGrad)
    assert_bitwise_equal(grad.rows, np.asarray(rows, dtype=np.int64))
    assert_bitwise_equal(grad.values, values)


def make_bags(rng, layout, kind, id_dtype, V, n_bags, max_len, padding=False):
    """(ids, offsets, include_last_offset, padding_idx) of the given layout.

    The 1-D layouts have empty bags first, in the middle and last. With padding, the padding
    row is the commonest id and bag 1 is made of padding only.
    """
    assert n_bags >= 3
    if layout == "2d":
        ids = make_ids(kind, (n_bags, max_len), V, id_dtype, rng)
        offsets, ilo = None, False
        bounds = np.arange(n_bags + 1) * max_len
    else:
        sizes = rng.integers(0, max_len + 1, n_bags)
        sizes[0] = sizes[n_bags // 2] = sizes[-1] = 0
        sizes[1] = max(sizes[1], 2)
        ids = make_ids(kind, (int(sizes.sum()),), V, id_dtype, rng)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        ilo = layout == "last"
        offsets = (bounds if ilo else bounds[:-1]).astype(id_dtype)
    padding_idx = None
    if padding:
        flat = ids.reshape(-1)
        padding_idx = int(np.bincount(flat.astype(np.int64)).argmax())
        flat[bounds[1]:bounds[2]] = padding_idx  # (a view of ids)
    return ids, offsets, ilo, padding_idx


def run_layer(weight, ids, offsets, ilo, mode, padding_idx, psw, grad_output, n_threads,
              scale_grad_by_freq=False):
    layer = EmbeddingBag(weight=weight, mode=mode, padding_idx=padding_idx,
                         scale_grad_by_freq=scale_grad_by_freq)
    out = layer(ids, offsets, psw, ilo, n_threads=n_threads)
    grad = layer.backward(grad_output, n_threads=n_threads)
    return out, grad


# ----------------------------------------------------------------------------------------
# Forward against the reference: every mode, dtype, id dtype, layout, id distribution
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding", [False, True], ids=["nopad", "pad"])
@pytest.mark.parametrize("kind", ID_KINDS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("id_dtype", ID_DTYPES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_forward_matches_reference(mode, dtype, id_dtype, layout, kind, padding, rng):
    V, D, B = 30, 8, 40
    weight = make_table((V, D), dtype, rng)
    before = weight.copy()
    ids, offsets, ilo, pad = make_bags(rng, layout, kind, id_dtype, V, B, 6, padding)
    flat, bounds = ref_bag_bounds(ids, offsets, ilo)
    expected = ref_bag_forward(weight, flat, bounds, mode, pad)[0]
    outs = [embedding_bag(weight, ids, offsets, mode=mode, include_last_offset=ilo,
                          padding_idx=pad, n_threads=t) for t in (1, 2)]
    assert outs[0].shape == (B, D) and outs[0].dtype == np.dtype(dtype)
    assert_forward_equal(mode, outs[0], expected)
    assert_bitwise_equal(outs[1], outs[0])
    layer = EmbeddingBag(weight=weight, mode=mode, padding_idx=pad)
    assert_bitwise_equal(layer(ids, offsets, include_last_offset=ilo), outs[0])
    assert_bitwise_equal(weight, before)  # the table is only read
    if padding:
        assert_bitwise_equal(outs[0][1], np.zeros(D, dtype))  # the bag of padding only
    if layout != "2d":
        for b in (0, B // 2, B - 1):  # empty bags
            assert_bitwise_equal(outs[0][b], np.zeros(D, dtype))


# ----------------------------------------------------------------------------------------
# Backward against the reference
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("padding", [False, True], ids=["nopad", "pad"])
@pytest.mark.parametrize("kind", ID_KINDS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("id_dtype", ID_DTYPES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_backward_matches_reference(mode, dtype, id_dtype, layout, kind, padding, rng):
    V, D, B = 30, 8, 40
    weight = make_table((V, D), dtype, rng)
    ids, offsets, ilo, pad = make_bags(rng, layout, kind, id_dtype, V, B, 6, padding)
    g = make_table((B, D), dtype, rng)
    flat, bounds = ref_bag_bounds(ids, offsets, ilo)
    _, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, pad)
    rows, values = ref_bag_backward(flat, bounds, mode, g, denom, argmax, pad, num_embeddings=V)
    grads = [run_layer(weight, ids, offsets, ilo, mode, pad, None, g, t)[1] for t in (1, 2)]
    assert_grad_equal(grads[0], rows, values)
    assert_grad_equal(grads[1], grads[0].rows, grads[0].values)
    if pad is not None:
        assert pad not in grads[0].rows


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("padding", [False, True], ids=["nopad", "pad"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_per_sample_weights(mode, dtype, layout, padding, n_threads, rng):
    V, D, B = 25, 6, 30
    weight = make_table((V, D), dtype, rng)
    ids, offsets, ilo, pad = make_bags(rng, layout, "zipf", np.int64, V, B, 7, padding)
    psw = rng.uniform(0.25, 2.0, ids.shape).astype(dtype)
    g = make_table((B, D), dtype, rng)
    flat, bounds = ref_bag_bounds(ids, offsets, ilo)
    expected, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, pad, psw)
    out = embedding_bag(weight, ids, offsets, mode=mode, per_sample_weights=psw,
                        include_last_offset=ilo, padding_idx=pad, n_threads=n_threads)
    assert_forward_equal(mode, out, expected)
    out_layer, grad = run_layer(weight, ids, offsets, ilo, mode, pad, psw, g, n_threads)
    assert_bitwise_equal(out_layer, out)
    assert_grad_equal(grad, *ref_bag_backward(flat, bounds, mode, g, denom, argmax, pad, psw,
                                              num_embeddings=V))


# ----------------------------------------------------------------------------------------
# Small hand-checked cases
# ----------------------------------------------------------------------------------------

E8 = np.arange(8, dtype=np.float32).reshape(4, 2)


def test_docstring_examples():
    E = E8.copy()
    assert_bitwise_equal(embedding_bag(E, [0, 1, 3, 2], [0, 3], mode="sum"),
                         np.array([[8, 11], [4, 5]], np.float32))
    assert_bitwise_equal(embedding_bag(E, [[0, 2], [1, 1]], mode="max"),
                         np.array([[4, 5], [2, 3]], np.float32))
    # the default mode is mean
    assert_bitwise_equal(embedding_bag(E, [[0, 2], [1, 3]]),
                         np.array([[2, 3], [4, 5]], np.float32))
    bag = EmbeddingBag(weight=E, mode="sum")
    assert_bitwise_equal(bag(np.array([0, 1, 3, 2]), offsets=np.array([0, 3])),
                         np.array([[8, 11], [4, 5]], np.float32))
    grad = bag.backward(np.ones((2, 2), np.float32))
    assert_bitwise_equal(grad.rows, np.array([0, 1, 2, 3]))
    assert_bitwise_equal(grad.values, np.ones((4, 2), np.float32))
    assert_bitwise_equal(E, E8)


def test_padding_excluded_from_pooling_and_count():
    E = np.array([[1, 2], [3, 4], [100, 100], [5, -6]], np.float64)
    ids = np.array([[0, 2, 1], [2, 2, 2], [3, 2, 2]])
    assert_bitwise_equal(embedding_bag(E, ids, mode="mean", padding_idx=2),
                         np.array([[2, 3], [0, 0], [5, -6]], np.float64))
    assert_bitwise_equal(embedding_bag(E, ids, mode="sum", padding_idx=2),
                         np.array([[4, 6], [0, 0], [5, -6]], np.float64))
    assert_bitwise_equal(embedding_bag(E, ids, mode="max", padding_idx=-2),
                         np.array([[3, 4], [0, 0], [5, -6]], np.float64))
    layer = EmbeddingBag(weight=E.copy(), mode="mean", padding_idx=2)
    layer(ids)
    grad = layer.backward(np.array([[2, 4], [8, 8], [1, 1]], np.float64))
    assert_bitwise_equal(grad.rows, np.array([0, 1, 3]))
    assert_bitwise_equal(grad.values, np.array([[1, 2], [1, 2], [1, 1]], np.float64))


def test_empty_bags_give_zeros_in_every_mode():
    E = -np.arange(1, 9, dtype=np.float32).reshape(4, 2)  # all negative: max must not be 0
    ids = np.array([1, 3, 2])
    offsets = np.array([0, 0, 2, 2, 3])  # bags: [], [1, 3], [], [2], []
    expected = {"sum": [[0, 0], [-10, -12], [0, 0], [-5, -6], [0, 0]],
                "mean": [[0, 0], [-5, -6], [0, 0], [-5, -6], [0, 0]],
                "max": [[0, 0], [-3, -4], [0, 0], [-5, -6], [0, 0]]}
    for mode, exp in expected.items():
        out = embedding_bag(E, ids, offsets, mode=mode)
        assert_bitwise_equal(out, np.array(exp, np.float32))
        out_last = embedding_bag(E, ids, [0, 0, 2, 2, 3, 3], mode=mode,
                                 include_last_offset=True)
        assert_bitwise_equal(out_last, out)
        layer = EmbeddingBag(weight=E.copy(), mode=mode)
        layer(ids, offsets)
        g = np.arange(10, dtype=np.float32).reshape(5, 2)
        grad = layer.backward(g)
        # only bags 1 and 3 have rows; the gradients of empty bags go nowhere
        assert set(grad.rows.tolist()) <= {1, 2, 3}
        total = grad.to_dense(4).sum(axis=0)
        if mode == "sum":
            np.testing.assert_array_equal(total, 2 * g[1] + g[3])
        else:  # mean: each bag's gradient is spread over its ids; max: one row per element
            np.testing.assert_array_equal(total, g[1] + g[3])


def test_zero_bags():
    E = E8.copy()
    for mode in MODES:
        assert embedding_bag(E, np.zeros((0, 3), np.int64), mode=mode).shape == (0, 2)
        assert embedding_bag(E, [], [], mode=mode).shape == (0, 2)
        assert embedding_bag(E, [], [0], mode=mode, include_last_offset=True).shape == (0, 2)
        layer = EmbeddingBag(weight=E.copy(), mode=mode)
        assert layer([], []).shape == (0, 2)
        grad = layer.backward(np.zeros((0, 2), np.float32))
        assert grad.rows.size == 0 and grad.values.shape == (0, 2)


def test_bags_of_length_zero_in_2d_layout():
    for mode in MODES:
        out = embedding_bag(E8, np.zeros((3, 0), np.int32), mode=mode)
        assert_bitwise_equal(out, np.zeros((3, 2), np.float32))


def test_zero_width_table():
    W = np.zeros((5, 0), np.float64)
    for mode in MODES:
        layer = EmbeddingBag(weight=W, mode=mode)
        out = layer([0, 4, 2], [0, 1])
        assert out.shape == (2, 0)
        grad = layer.backward(np.zeros((2, 0)))
        assert grad.values.shape == (grad.rows.size, 0)


def test_max_first_occurrence_and_signed_zeros():
    E = np.array([[1.0, -0.0, 5.0], [1.0, 0.0, 7.0], [0.5, 0.0, 7.0]], np.float64)
    layer = EmbeddingBag(weight=E, mode="max")
    out = layer([[0, 1, 2], [2, 1, 0]])
    # ties keep the first occurrence: column 1 of bag 0 is -0.0 (row 0), of bag 1 +0.0
    assert_bitwise_equal(out, np.array([[1.0, -0.0, 7.0], [1.0, 0.0, 7.0]]))
    grad = layer.backward(np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]))
    assert_bitwise_equal(grad.rows, np.array([0, 1, 2]))
    assert_bitwise_equal(grad.values, np.array([[1.0, 2.0, 0.0],
                                                [10.0, 0.0, 3.0],
                                                [0.0, 20.0, 30.0]]))


def test_max_gradient_summed_over_bags_per_column():
    E = np.array([[3.0, 0.0], [1.0, 4.0], [2.0, 2.0]], np.float32)
    layer = EmbeddingBag(weight=E, mode="max")
    layer(np.array([0, 1, 0, 2, 1, 2]), np.array([0, 2, 4]))
    # bag 0: [3, 4] from rows (0, 1); bag 1: [3, 2] from rows (0, 2); bag 2: [2, 4] (2, 1)
    grad = layer.backward(np.array([[1, 2], [4, 8], [16, 32]], np.float32))
    assert_bitwise_equal(grad.rows, np.array([0, 1, 2]))
    assert_bitwise_equal(grad.values, np.array([[5, 0], [0, 34], [16, 8]], np.float32))


def test_weighted_sum_and_mean_by_hand():
    E = np.array([[1, 2], [3, 4], [5, 6]], np.float64)
    ids = np.array([0, 1, 2, 2])
    offsets = np.array([0, 2])
    w = np.array([2.0, 0.5, 1.0, 3.0])
    assert_bitwise_equal(embedding_bag(E, ids, offsets, mode="sum", per_sample_weights=w),
                         np.array([[3.5, 6.0], [20.0, 24.0]]))
    assert_bitwise_equal(embedding_bag(E, ids, offsets, mode="mean", per_sample_weights=w),
                         np.array([[3.5 / 2.5, 6.0 / 2.5], [5.0, 6.0]]))
    layer = EmbeddingBag(weight=E.copy(), mode="mean")
    layer(ids, offsets, w)
    grad = layer.backward(np.array([[1.0, 1.0], [2.0, 4.0]]))
    assert_bitwise_equal(grad.rows, np.array([0, 1, 2]))
    assert_bitwise_equal(grad.values, np.array([[2 / 2.5, 2 / 2.5], [0.5 / 2.5, 0.5 / 2.5],
                                                [2.0, 4.0]]))


@pytest.mark.parametrize("dtype", FLOATS)
def test_weighted_mean_bag_with_zero_weight_sum(dtype):
    E = np.arange(10, dtype=dtype).reshape(5, 2) + 1
    ids = np.array([0, 1, 2, 3, 4])
    offsets = np.array([0, 2, 4])
    w = np.array([1.0, -1.0, 2.0, 0.5, 0.0], dtype)  # bags 0 and 2 sum to 0
    out = embedding_bag(E, ids, offsets, mode="mean", per_sample_weights=w)
    assert_bitwise_equal(out[0], np.zeros(2, dtype))
    assert_bitwise_equal(out[2], np.zeros(2, dtype))
    np.testing.assert_allclose(out[1], (2 * E[2] + 0.5 * E[3]) / 2.5, rtol=MEAN_RTOL[E.dtype])
    layer = EmbeddingBag(weight=E.copy(), mode="mean")
    layer(ids, offsets, w)
    grad = layer.backward(np.ones((3, 2), dtype))
    # no gradient for the rows of the bags whose weights sum to 0
    assert_bitwise_equal(grad.rows, np.array([2, 3]))
    assert_bitwise_equal(grad.values, np.array([[2 / 2.5] * 2, [0.5 / 2.5] * 2], dtype))
    # in sum mode the same weights do give those rows gradient
    layer = EmbeddingBag(weight=E.copy(), mode="sum")
    out = layer(ids, offsets, w)
    assert_bitwise_equal(out[0], E[0] - E[1])
    grad = layer.backward(np.ones((3, 2), dtype))
    assert_bitwise_equal(grad.rows, np.arange(5))
    assert_bitwise_equal(grad.values, np.repeat(w[:, None], 2, axis=1))


def test_non_contiguous_ids_and_weights(rng):
    E = make_table((12, 4), np.float64, rng)
    ids = make_ids("uniform", (6, 10), 12, np.int64, rng)[:, ::2]
    w = np.asfortranarray(rng.uniform(0.5, 1.5, (6, 5)))
    assert not ids.flags.c_contiguous and not w.flags.c_contiguous
    flat, bounds = ref_bag_bounds(ids)
    for mode in ("sum", "mean"):
        out = embedding_bag(E, ids, mode=mode, per_sample_weights=w)
        exp = ref_bag_forward(E, flat, bounds, mode, None, np.ascontiguousarray(w))[0]
        assert_forward_equal(mode, out, exp)


def test_inputs_changed_after_forward_do_not_change_backward(rng):
    E = make_table((10, 3), np.float64, rng)
    ids = np.array([1, 2, 3, 3, 5])
    offsets = np.array([0, 2, 5])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    g = make_table((2, 3), np.float64, rng)
    ref = EmbeddingBag(weight=E.copy(), mode="mean")
    ref(ids.copy(), offsets.copy(), w.copy(), True)
    expected = ref.backward(g)
    layer = EmbeddingBag(weight=E.copy(), mode="mean")
    layer(ids, offsets, w, True)
    ids[:] = 0
    offsets[:] = 0
    w[:] = 7.0
    assert_grad_equal(layer.backward(g), expected.rows, expected.values)


def test_layer_initialises_padding_row_to_zeros():
    layer = EmbeddingBag(6, 3, padding_idx=-2, init="normal", seed=1)
    assert layer.padding_idx == 4
    assert_bitwise_equal(layer.weight[4], np.zeros(3, np.float32))
    assert np.all(layer.weight[[0, 1, 2, 3, 5]] != 0)


def test_repr_and_mode():
    layer = EmbeddingBag(5, 2, mode="max", dtype=np.float64)
    assert layer.mode == "max"
    assert "EmbeddingBag(5, 2" in repr(layer) and "max" in repr(layer)
    assert EmbeddingBag(5, 2).mode == "mean"  # PyTorch's default


# ----------------------------------------------------------------------------------------
# Large cases: parallel pooling, bitwise equal to one thread and to the reference
# ----------------------------------------------------------------------------------------

# per_sample_weights does not apply to mode="max" (that is tested as an error)
MODE_WEIGHTED = [("sum", False), ("sum", True), ("mean", False), ("mean", True),
                 ("max", False)]


@pytest.mark.parametrize("kind", ID_KINDS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode,weighted", MODE_WEIGHTED,
                         ids=[f"{m}-{'weighted' if w else 'unweighted'}"
                              for m, w in MODE_WEIGHTED])
def test_parallel_bitwise(mode, weighted, dtype, kind, rng):
    B, max_len, D, V = 2000, 50, 16, 5000
    weight = make_table((V, D), dtype, rng)
    sizes = rng.integers(0, max_len + 1, B)
    ids = make_ids(kind, (int(sizes.sum()),), V, np.int64, rng)
    assert ids.size * D >= 8 * PARALLEL_MIN_WORK  # really split over threads
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pad = None if kind == "same" else int(ids[0])
    psw = rng.uniform(0.5, 1.5, ids.size).astype(dtype) if weighted else None
    g = make_table((B, D), dtype, rng)
    results = [run_layer(weight.copy(), ids, offsets, False, mode, pad, psw, g, t)
               for t in (1, 2)]
    out_fn = embedding_bag(weight, ids, offsets, mode=mode, per_sample_weights=psw,
                           padding_idx=pad, n_threads=2)
    assert_bitwise_equal(results[1][0], results[0][0])
    assert_bitwise_equal(out_fn, results[0][0])
    assert_grad_equal(results[1][1], results[0][1].rows, results[0][1].values)
    flat, bounds = ref_bag_bounds(ids, offsets)
    expected, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, pad, psw)
    assert_forward_equal(mode, results[0][0], expected)
    assert_grad_equal(results[0][1], *ref_bag_backward(flat, bounds, mode, g, denom, argmax,
                                                       pad, psw, num_embeddings=V))


@pytest.fixture
def simd_path():
    """A function that switches the sum/mean kernel to a code path (skipping the test when
    this build or CPU has no such path); the path in use is restored afterwards."""
    before = pooling.simd_path()

    def use(name):
        if not pooling.set_simd_path(name):
            pytest.skip(f"the {name} code path is not available here")

    yield use
    assert pooling.set_simd_path(before)


def test_simd_path_names():
    assert pooling.simd_path() in pooling.SIMD_PATHS
    assert pooling.set_simd_path("baseline")  # always available
    assert pooling.simd_path() == "baseline"
    with pytest.raises(ValueError, match="unknown path 'sse9'"):
        pooling.set_simd_path("sse9")


# Widths that exercise every column block of the kernel (128-byte blocks, then blocks of 4, 2
# and 1 vectors of 32 or 16 bytes, then a scalar tail), the widths it specialises (rows of 128,
# 256 and 512 bytes), and bags longer than its 64-id segments.
BLOCK_WIDTHS = (1, 3, 4, 7, 8, 12, 16, 31, 32, 64, 100, 128, 300)


@pytest.mark.parametrize("path", ["baseline", "avx2"])
@pytest.mark.parametrize("D", BLOCK_WIDTHS)
@pytest.mark.parametrize("id_dtype", ID_DTYPES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode,weighted", MODE_WEIGHTED[:4],
                         ids=["sum", "sum-weighted", "mean", "mean-weighted"])
def test_simd_paths_bitwise(mode, weighted, dtype, id_dtype, D, path, simd_path, rng):
    """Every code path gives the reference's bits at every width, bag length and thread
    count, on a table whose rows start at no particular alignment."""
    V, B = 50, 24
    # rows 4 or 8 bytes past an aligned address: unaligned vector loads
    buf = make_table((V * D + 1,), dtype, rng)
    weight = buf[1:].reshape(V, D)
    sizes = rng.integers(0, 200, B)
    sizes[0], sizes[5] = 0, 150  # an empty bag, a bag of three segments
    ids = make_ids("zipf", (int(sizes.sum()),), V, id_dtype, rng)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pad = int(ids[3])
    psw = rng.uniform(-1.0, 2.0, ids.size).astype(dtype) if weighted else None
    flat, bounds = ref_bag_bounds(ids, offsets)
    expected = ref_bag_forward(weight, flat, bounds, mode, pad, psw)[0]
    simd_path(path)
    for t in (1, 2, 3):
        out = embedding_bag(weight, ids, offsets, mode=mode, per_sample_weights=psw,
                            padding_idx=pad, n_threads=t)
        assert_bitwise_equal(out, expected)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_skewed_bags_split_over_threads(mode, rng):
    """One bag holding most ids, runs of empty bags: the chunks the threads share are cut by
    ids + bags, and every cut gives the same bits."""
    V, D = 300, 24
    weight = make_table((V, D), np.float32, rng)
    sizes = np.zeros(400, np.int64)
    sizes[7] = 40000
    sizes[100:200] = rng.integers(0, 40, 100)
    ids = make_ids("uniform", (int(sizes.sum()),), V, np.int32, rng)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat, bounds = ref_bag_bounds(ids, offsets)
    expected = ref_bag_forward(weight, flat, bounds, mode)[0]
    for t in (1, 2, 3, 4):
        assert_bitwise_equal(embedding_bag(weight, ids, offsets, mode=mode, n_threads=t),
                             expected)


@pytest.mark.parametrize("path", ["baseline", "avx2"])
def test_simd_paths_special_values(path, simd_path):
    """Signed zeros, infinities and NaNs go through the vector sums as through NumPy's."""
    V, D = 6, 40
    weight = np.zeros((V, D), np.float32)
    weight[1] = -0.0
    weight[2, ::2] = np.inf
    weight[3, 1::2] = -np.inf
    weight[4, ::3] = np.nan
    weight[5] = np.arange(D) - 20.5
    ids = np.array([1, 1, 0, 1, 2, 3, 5, 4, 5, 1, 2, 2, 3], np.int64)
    offsets = np.array([0, 2, 3, 6, 7, 9, 10])
    flat, bounds = ref_bag_bounds(ids, offsets)
    simd_path(path)
    for mode in ("sum", "mean"):
        out = embedding_bag(weight, ids, offsets, mode=mode, n_threads=1)
        assert_bitwise_equal(out, ref_bag_forward(weight, flat, bounds, mode)[0])


@pytest.mark.parametrize("mode", MODES)
def test_parallel_2d_int32(mode, rng):
    B, L, D, V = 3000, 20, 16, 1000
    weight = make_table((V, D), np.float32, rng)
    ids = make_ids("zipf", (B, L), V, np.int32, rng)
    g = make_table((B, D), np.float32, rng)
    results = [run_layer(weight, ids, None, False, mode, 0, None, g, t) for t in (1, 2)]
    assert_bitwise_equal(results[1][0], results[0][0])
    assert_grad_equal(results[1][1], results[0][1].rows, results[0][1].values)
    flat, bounds = ref_bag_bounds(ids)
    expected, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, 0)
    assert_forward_equal(mode, results[0][0], expected)
    assert_grad_equal(results[0][1], *ref_bag_backward(flat, bounds, mode, g, denom, argmax,
                                                       0, num_embeddings=V))


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_backward_few_ids_in_huge_table(mode, rng):
    """V far above the number of ids: the gradient is grouped by sorting, not a row map."""
    B, D, V = 200, 16, 150_000
    sizes = rng.integers(0, 25, B)
    n = int(sizes.sum())
    assert V > 8 * n + (1 << 16) and n * D >= PARALLEL_MIN_WORK
    weight = make_table((V, D), np.float32, rng)
    ids = make_ids("zipf", (n,), V, np.int64, rng)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    psw = rng.uniform(0.5, 1.5, n).astype(np.float32)
    g = make_table((B, D), np.float32, rng)
    results = [run_layer(weight, ids, offsets, False, mode, 0, psw, g, t) for t in (1, 2)]
    assert_grad_equal(results[1][1], results[0][1].rows, results[0][1].values)
    flat, bounds = ref_bag_bounds(ids, offsets)
    _, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, 0, psw)
    assert_grad_equal(results[0][1], *ref_bag_backward(flat, bounds, mode, g, denom, argmax,
                                                       0, psw, num_embeddings=V))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "psw"])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_backward_sorted_when_its_sums_outgrow_the_cache(mode, weighted, n_threads,
                                                        monkeypatch, sorted_coalesces, rng):
    """Uniform ids whose sums outgrow the last-level cache: grouped by sorting, not a row
    map (fastembed._rows.sums_miss_the_cache), with the same bits."""
    from fastembed import _rows

    B, D, V = 300, 16, 20_000
    sizes = rng.integers(0, 60, B)
    n = int(sizes.sum())
    assert V <= 8 * n + (1 << 16) and n * D >= PARALLEL_MIN_WORK   # the map's range
    weight = make_table((V, D), np.float64, rng)
    ids = make_ids("uniform", (n,), V, np.int32, rng)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    psw = rng.uniform(0.5, 1.5, n) if weighted else None
    g = make_table((B, D), np.float64, rng)
    grads = []
    for cache in (0, 1):   # unknown: the map; a 1-byte cache: the sort
        monkeypatch.setattr(_rows, "LAST_LEVEL_CACHE_BYTES", cache)
        sorted_coalesces.clear()
        grads.append(run_layer(weight, ids, offsets, False, mode, None, psw, g, n_threads)[1])
        assert bool(sorted_coalesces) == bool(cache)
    assert_grad_equal(grads[1], grads[0].rows, grads[0].values)
    flat, bounds = ref_bag_bounds(ids, offsets)
    _, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, None, psw)
    assert_grad_equal(grads[1], *ref_bag_backward(flat, bounds, mode, g, denom, argmax,
                                                  None, psw, num_embeddings=V))


# ----------------------------------------------------------------------------------------
# Gradient check by central finite differences (float64)
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["sum", "mean", "weighted_sum", "weighted_mean", "max"])
def test_finite_differences(case, rng):
    V, D = 7, 3
    mode = case.split("_")[-1]
    ids = np.array([0, 2, 2, 5, 1, 3, 6, 3, 4, 0, 6, 1], np.int64)
    offsets = np.array([0, 3, 3, 7, 9])  # bag 1 is empty; 6 is the padding row
    psw = rng.uniform(0.5, 1.5, ids.size) if case.startswith("weighted") else None
    if mode == "max":  # distinct values at least 1 apart: the argmax cannot flip
        weight = rng.permutation(V * D).reshape(V, D).astype(np.float64)
        eps = 1e-3
    else:
        weight = rng.standard_normal((V, D))
        eps = 1e-6
    G = rng.standard_normal((offsets.size, D))

    def loss():
        out = embedding_bag(weight, ids, offsets, mode=mode, per_sample_weights=psw,
                            padding_idx=6)
        return float(np.sum(out * G))

    numeric = numeric_grad(loss, weight, eps)
    layer = EmbeddingBag(weight=weight.copy(), mode=mode, padding_idx=6)
    layer(ids, offsets, psw)
    analytic = layer.backward(G).to_dense(V)
    assert np.abs(analytic).sum() > 0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    assert_bitwise_equal(analytic[6], np.zeros(D))


# ----------------------------------------------------------------------------------------
# scale_grad_by_freq
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("padding", [False, True], ids=["nopad", "pad"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_scale_grad_by_freq(mode, dtype, padding, weighted, rng):
    V, D, B = 20, 5, 30
    weight = make_table((V, D), dtype, rng)
    ids, offsets, ilo, pad = make_bags(rng, "offsets", "zipf", np.int64, V, B, 8, padding)
    psw = rng.uniform(0.5, 1.5, ids.shape).astype(dtype) if weighted else None
    g = make_table((B, D), dtype, rng)
    flat, bounds = ref_bag_bounds(ids, offsets, ilo)
    _, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, pad, psw)
    rows, values = ref_bag_backward(flat, bounds, mode, g, denom, argmax, pad, psw,
                                    scale_grad_by_freq=True, num_embeddings=V)
    for t in (1, 2):
        _, grad = run_layer(weight, ids, offsets, ilo, mode, pad, psw, g, t,
                            scale_grad_by_freq=True)
        assert_grad_equal(grad, rows, values)


def test_scale_grad_by_freq_by_hand():
    E = np.zeros((4, 1), np.float64)
    layer = EmbeddingBag(weight=E, mode="sum", scale_grad_by_freq=True, padding_idx=3)
    layer(np.array([[0, 1, 1], [1, 3, 3]]))
    grad = layer.backward(np.array([[6.0], [12.0]]))
    # row 0: 6 / 1; row 1: (6 + 6 + 12) / 3; the padding occurrences are not counted
    assert_bitwise_equal(grad.rows, np.array([0, 1]))
    assert_bitwise_equal(grad.values, np.array([[6.0], [8.0]]))


def test_scale_grad_by_freq_counts_ids_of_zero_weight_mean_bags():
    """A row's count is its number of (non-padding) occurrences in the batch, whatever bag.

    Row 1 occurs twice: in bag 0 (weights 1 and -1: it gets no gradient from there) and in
    bag 1. Its gradient from bag 1 (1 / 2 per element) must be divided by its count, 2.
    """
    E = np.arange(8, dtype=np.float64).reshape(4, 2)
    layer = EmbeddingBag(weight=E, mode="mean", scale_grad_by_freq=True)
    layer(np.array([1, 2, 1, 3]), np.array([0, 2]), np.array([1.0, -1.0, 1.0, 1.0]))
    grad = layer.backward(np.ones((2, 2)))
    assert_bitwise_equal(grad.rows, np.array([1, 3]))
    assert_bitwise_equal(grad.values, np.array([[0.25, 0.25], [0.5, 0.5]]))


def test_scale_grad_by_freq_rejected_with_max():
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        EmbeddingBag(4, 2, mode="max", scale_grad_by_freq=True)
    with pytest.raises(ValueError, match="scale_grad_by_freq"):
        EmbeddingBag.from_pretrained(E8.copy(), mode="max", scale_grad_by_freq=True)
    assert EmbeddingBag(4, 2, mode="max").scale_grad_by_freq is False


# ----------------------------------------------------------------------------------------
# Layer state: accumulation, zero_grad, frozen layers, backward errors
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_gradient_accumulates_over_backward_calls(mode, rng):
    V, D = 15, 4
    layer = EmbeddingBag(weight=make_table((V, D), np.float32, rng), mode=mode)
    ids1 = make_ids("zipf", (6, 3), V, np.int64, rng)
    ids2 = make_ids("uniform", (9,), V, np.int32, rng)
    layer(ids1)
    g1 = layer.backward(make_table((6, D), np.float32, rng))
    assert_grad_equal(layer.grad, g1.rows, g1.values)
    # the returned gradient is a read-only view of layer.grad (no copy); the second
    # backward merges into new arrays, so g1 keeps its values
    assert not g1.values.flags.writeable and not g1.rows.flags.writeable
    g1_values = g1.values.copy()
    layer(ids2, [0, 4, 4])
    g2 = layer.backward(make_table((3, D), np.float32, rng))
    dense = np.zeros((V, D), np.float32)
    dense[g1.rows] += g1.values
    dense[g2.rows] += g2.values
    np.testing.assert_array_equal(g1.values, g1_values)
    rows = np.union1d(g1.rows, g2.rows)
    assert rows.size > max(g1.rows.size, g2.rows.size)
    assert_grad_equal(layer.grad, rows, dense[rows])
    # zero_grad forgets it; the next backward starts afresh
    layer.zero_grad()
    assert layer.grad is None
    g3 = layer.backward(make_table((3, D), np.float32, rng))
    assert_grad_equal(layer.grad, g3.rows, g3.values)


def test_frozen_layer_returns_none():
    weight = E8.copy()
    layer = EmbeddingBag(weight=weight, mode="sum", trainable=False)
    assert_bitwise_equal(layer([[0, 1]]), np.array([[2, 4]], np.float32))
    assert layer.backward(np.ones((1, 2), np.float32)) is None
    assert layer.grad is None
    assert list(layer.parameters()) == []
    frozen = EmbeddingBag.from_pretrained(weight, mode="max")
    assert frozen.trainable is False and frozen.weight is weight
    frozen([[0, 1]])
    assert frozen.backward(np.ones((1, 2), np.float32)) is None
    assert_bitwise_equal(weight, E8)


def test_backward_before_forward():
    layer = EmbeddingBag(4, 2)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((1, 2), np.float32))
    assert layer.grad is None


@pytest.mark.parametrize("mode", MODES)
def test_bad_grad_output_leaves_grad_unchanged(mode):
    layer = EmbeddingBag(weight=E8.copy(), mode=mode)
    layer([0, 1, 2], [0, 2])
    layer.backward(np.ones((2, 2), np.float32))
    rows, values = layer.grad.rows.copy(), layer.grad.values.copy()
    bad = [(ValueError, np.ones((3, 2), np.float32)),
           (ValueError, np.ones((2, 3), np.float32)),
           (ValueError, np.ones((2,), np.float32)),
           (ValueError, np.ones((2, 2, 1), np.float32)),
           (TypeError, np.ones((2, 2), np.float64)),
           (TypeError, np.ones((2, 2), np.int32))]
    for exc, grad_output in bad:
        with pytest.raises(exc, match="grad_output"):
            layer.backward(grad_output)
        assert_grad_equal(layer.grad, rows, values)
    # still usable afterwards
    layer.backward(np.ones((2, 2), np.float32))
    assert layer.grad.rows.size == rows.size


# ----------------------------------------------------------------------------------------
# The functional API: out=, n_threads
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_out_is_filled_and_returned(mode, rng):
    weight = make_table((10, 3), np.float64, rng)
    ids = make_ids("uniform", (4, 5), 10, np.int64, rng)
    out = np.full((4, 3), np.nan)
    result = embedding_bag(weight, ids, mode=mode, out=out)
    assert result is out
    assert_bitwise_equal(out, embedding_bag(weight, ids, mode=mode))
    layer_out = np.full((4, 3), np.nan)
    assert EmbeddingBag(weight=weight, mode=mode)(ids, out=layer_out) is layer_out
    assert_bitwise_equal(layer_out, out)


def test_bad_out_changes_nothing():
    weight = E8.copy()
    cases = [(ValueError, np.full((3, 2), 7.0, np.float32)),
             (ValueError, np.full((2, 3), 7.0, np.float32)),
             (TypeError, np.full((2, 2), 7.0, np.float64)),
             (ValueError, np.full((2, 4), 7.0, np.float32)[:, ::2])]
    for exc, out in cases:
        before = out.copy()
        with pytest.raises(exc, match="out"):
            embedding_bag(weight, [[0, 1], [2, 3]], mode="sum", out=out)
        assert_bitwise_equal(out, before)
        layer = EmbeddingBag(weight=weight, mode="sum", max_norm=1.0)
        with pytest.raises(exc, match="out"):
            layer([[0, 1], [2, 3]], out=out)
        assert_bitwise_equal(out, before)
        assert_bitwise_equal(weight, E8)  # no renormalisation either
    readonly = np.zeros((2, 2), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        embedding_bag(weight, [[0, 1], [2, 3]], out=readonly)
    with pytest.raises(ValueError, match="share memory"):
        embedding_bag(weight, [[0], [1]], out=weight[:2])
    assert_bitwise_equal(weight, E8)


def test_n_threads_handling(rng):
    weight = make_table((100, 16), np.float32, rng)
    ids = make_ids("zipf", (300, 20), 100, np.int64, rng)
    assert ids.size * 16 >= PARALLEL_MIN_WORK
    for mode in MODES:
        base = embedding_bag(weight, ids, mode=mode, n_threads=1)
        for n in (None, 2, 3, -1, np.int64(2)):
            assert_bitwise_equal(embedding_bag(weight, ids, mode=mode, n_threads=n), base)
    out = np.full((300, 16), 7.0, np.float32)
    for exc, n in [(ValueError, 0), (TypeError, 1.5), (TypeError, True), (TypeError, "2")]:
        with pytest.raises(exc, match="n_threads"):
            embedding_bag(weight, ids, n_threads=n, out=out)
        assert np.all(out == 7.0)


def test_default_thread_count_is_used(restore_num_threads, rng):
    weight = make_table((50, 16), np.float64, rng)
    ids = make_ids("uniform", (400, 10), 50, np.int32, rng)
    base = embedding_bag(weight, ids, mode="sum", n_threads=1)
    for n in (1, 2):
        fastembed.set_num_threads(n)
        assert_bitwise_equal(embedding_bag(weight, ids, mode="sum"), base)


def test_readonly_and_memmap_tables(readonly_memmap, rng):
    weight = make_table((20, 4), np.float32, rng)
    mapped = readonly_memmap(weight)
    ids = make_ids("uniform", (30,), 20, np.int64, rng)
    offsets = np.array([0, 10, 10, 25])
    for mode in MODES:
        assert_bitwise_equal(embedding_bag(mapped, ids, offsets, mode=mode),
                             embedding_bag(weight, ids, offsets, mode=mode))


# ----------------------------------------------------------------------------------------
# Errors: raise before anything is written
# ----------------------------------------------------------------------------------------

V_ERR, D_ERR = 6, 3
F32 = np.float32

# (name, call arguments, bags the out array gets, exception, message pattern)
ERROR_CASES = [
    ("offsets_not_from_0", dict(ids=[0, 1, 2], offsets=[1, 2]), 2, ValueError,
     r"offsets\[0\] must be 0, got 1"),
    ("decreasing_offsets", dict(ids=[0, 1, 2, 3], offsets=[0, 3, 1]), 3, ValueError,
     r"non-decreasing: offsets\[1\] = 3 > offsets\[2\] = 1"),
    ("negative_offset", dict(ids=[0, 1, 2], offsets=[0, -1]), 2, ValueError,
     r"non-decreasing"),
    ("offset_beyond_len", dict(ids=[0, 1, 2], offsets=[0, 5]), 2, ValueError,
     r"offsets\[1\] = 5 is beyond len\(ids\) = 3"),
    ("later_offset_beyond_len", dict(ids=[0, 1, 2], offsets=[0, 1, 4]), 3, ValueError,
     r"offsets\[2\] = 4 is beyond len\(ids\) = 3"),
    ("last_offset_short", dict(ids=[0, 1, 2], offsets=[0, 1, 2], include_last_offset=True),
     2, ValueError, r"last offset must equal len\(ids\) = 3, got 2"),
    ("last_offset_long", dict(ids=[0, 1, 2], offsets=[0, 1, 5], include_last_offset=True),
     2, ValueError, r"last offset must equal len\(ids\) = 3, got 5"),
    ("last_offsets_decreasing", dict(ids=[0, 1, 2], offsets=[0, 4, 3],
                                     include_last_offset=True),
     2, ValueError, r"non-decreasing"),
    ("empty_offsets_with_ids", dict(ids=[0, 1], offsets=[]), 0, ValueError,
     r"offsets is empty"),
    ("empty_offsets_last", dict(ids=[], offsets=[], include_last_offset=True), 0, ValueError,
     r"must not be empty"),
    ("2d_ids_with_offsets", dict(ids=[[0, 1], [2, 3]], offsets=[0, 1]), 2, ValueError,
     r"with offsets, ids must be 1-D"),
    ("3d_ids", dict(ids=np.zeros((2, 2, 2), np.int64)), 2, ValueError, r"ids must be 2-D"),
    ("1d_ids_without_offsets", dict(ids=[0, 1]), 1, ValueError, r"ids must be 2-D"),
    ("last_without_offsets", dict(ids=[[0, 1]], include_last_offset=True), 1, ValueError,
     r"include_last_offset applies only"),
    ("2d_offsets", dict(ids=[0, 1, 2], offsets=[[0], [1]]), 2, ValueError,
     r"offsets must be 1-D"),
    ("float_offsets", dict(ids=[0, 1, 2], offsets=np.array([0.0, 1.0])), 2, TypeError,
     r"offsets must be integers"),
    ("bool_offsets", dict(ids=[0, 1, 2], offsets=np.array([False, True])), 2, TypeError,
     r"offsets must be integers"),
    ("float_ids", dict(ids=np.array([[0.0, 1.0]])), 1, TypeError, r"ids must be integers"),
    ("weights_with_max", dict(ids=[[0, 1]], per_sample_weights=np.ones((1, 2), F32),
                              mode="max"),
     1, ValueError, r"per_sample_weights works with mode 'sum' and 'mean'"),
    ("weights_dtype", dict(ids=[[0, 1]], per_sample_weights=np.ones((1, 2), np.float64)), 1,
     TypeError, r"per_sample_weights must have the table's dtype float32"),
    ("weights_list", dict(ids=[[0, 1]], per_sample_weights=[[1.0, 1.0]]), 1, TypeError,
     r"per_sample_weights must have the table's dtype"),
    ("weights_shape_2d", dict(ids=[[0, 1]], per_sample_weights=np.ones(2, F32)), 1,
     ValueError, r"per_sample_weights must have the shape of ids \(1, 2\)"),
    ("weights_shape_1d", dict(ids=[0, 1, 2], offsets=[0],
                              per_sample_weights=np.ones(2, F32)),
     1, ValueError, r"per_sample_weights must have the shape of ids \(3,\)"),
    ("id_too_large_1d", dict(ids=[0, 1, 2, 6], offsets=[0, 2]), 2, IndexError,
     re.escape("ids[3] = 6 is out of range")),
    ("id_too_large_2d", dict(ids=[[0, 1], [2, 9]]), 2, IndexError,
     re.escape("ids[1, 1] = 9 is out of range")),
    ("negative_id_1d", dict(ids=[0, -1, 2], offsets=[0]), 1, IndexError,
     re.escape("ids[1] = -1 is negative")),
    ("negative_id_2d", dict(ids=np.array([[0, 1], [-3, 2]], np.int32)), 2, IndexError,
     re.escape("ids[1, 0] = -3 is negative")),
    ("first_bad_id_named", dict(ids=[0, 7, -1, 8], offsets=[0, 2]), 2, IndexError,
     re.escape("ids[1] = 7")),
    ("bad_id_in_weighted_bag", dict(ids=[0, 1, 2, 6], offsets=[0, 2],
                                    per_sample_weights=np.ones(4, F32)),
     2, IndexError, re.escape("ids[3] = 6")),
]


def error_table():
    """Rows with norms well above 0.5, so that any renormalisation would show."""
    return (np.arange(V_ERR * D_ERR, dtype=F32).reshape(V_ERR, D_ERR) + 1.0)


@pytest.mark.parametrize("name,kwargs,n_bags,exc,pattern", ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_functional_errors_change_nothing(name, kwargs, n_bags, exc, pattern):
    weight = error_table()
    before = weight.copy()
    out = np.full((n_bags, D_ERR), 7.5, F32)
    kwargs = dict(kwargs)
    ids = kwargs.pop("ids")
    offsets = kwargs.pop("offsets", None)
    with pytest.raises(exc, match=pattern):
        embedding_bag(weight, ids, offsets, out=out, **kwargs)
    assert_bitwise_equal(weight, before)
    assert_bitwise_equal(out, np.full((n_bags, D_ERR), 7.5, F32))
    with pytest.raises(exc, match=pattern):
        embedding_bag(weight, ids, offsets, **kwargs)


@pytest.mark.parametrize("name,kwargs,n_bags,exc,pattern", ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_layer_errors_change_nothing(name, kwargs, n_bags, exc, pattern):
    """Through a layer with max_norm: a failed call renormalises nothing and keeps the state."""
    kwargs = dict(kwargs)
    ids = kwargs.pop("ids")
    offsets = kwargs.pop("offsets", None)
    mode = kwargs.pop("mode", "sum")
    layer = EmbeddingBag(weight=error_table(), mode=mode, max_norm=0.5)
    twin = EmbeddingBag(weight=error_table(), mode=mode, max_norm=0.5)
    for lay in (layer, twin):
        lay([[0, 1], [1, 1]])  # renormalises rows 0 and 1
        lay.backward(np.ones((2, D_ERR), F32))
    before = layer.weight.copy()
    assert not np.array_equal(before, error_table())
    out = np.full((n_bags, D_ERR), 7.5, F32)
    with pytest.raises(exc, match=pattern):
        layer(ids, offsets, kwargs.get("per_sample_weights"),
              kwargs.get("include_last_offset", False), out=out)
    assert_bitwise_equal(layer.weight, before)
    assert_bitwise_equal(out, np.full((n_bags, D_ERR), 7.5, F32))
    assert_grad_equal(layer.grad, twin.grad.rows, twin.grad.values)
    # backward still refers to the last successful forward
    g = np.arange(2 * D_ERR, dtype=F32).reshape(2, D_ERR)
    expected = twin.backward(g)
    assert_grad_equal(layer.backward(g), expected.rows, expected.values)


def test_bad_mode():
    weight = error_table()
    for mode in ("median", "SUM", "", None):
        with pytest.raises(ValueError, match="mode must be"):
            embedding_bag(weight, [[0, 1]], mode=mode)
        with pytest.raises(ValueError, match="mode must be"):
            EmbeddingBag(4, 2, mode=mode)
    assert_bitwise_equal(weight, error_table())


def test_bad_padding_idx_changes_nothing():
    weight = error_table()
    out = np.full((1, D_ERR), 7.5, F32)
    for exc, pad in [(ValueError, 6), (ValueError, -7), (TypeError, True), (TypeError, 1.0),
                     (TypeError, "1")]:
        with pytest.raises(exc, match="padding_idx"):
            embedding_bag(weight, [[0, 1]], padding_idx=pad, out=out)
        with pytest.raises(exc, match="padding_idx"):
            EmbeddingBag(weight=weight, padding_idx=pad)
        assert_bitwise_equal(out, np.full((1, D_ERR), 7.5, F32))
    assert_bitwise_equal(weight, error_table())
    # in range, negative counts from the end
    assert_bitwise_equal(embedding_bag(weight, [[0, 5]], padding_idx=-1, mode="sum"),
                         weight[:1])


def test_max_norm_with_bad_id_renormalises_nothing():
    weight = error_table()
    layer = EmbeddingBag(weight=weight, mode="mean", max_norm=1.0)
    for ids, offsets in [([0, 1, 2, 3, 4, 6], [0, 3]), ([5, 4, -1], [0]),
                         ([[0, 1], [2, 100]], None)]:
        with pytest.raises(IndexError):
            layer(ids, offsets)
        assert_bitwise_equal(weight, error_table())
    with pytest.raises(ValueError):
        layer([0, 1, 2], [0, 4])  # bad offsets, ids fine
    assert_bitwise_equal(weight, error_table())


# ----------------------------------------------------------------------------------------
# max_norm
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_max_norm_renormalises_like_embedding(mode, dtype, norm_type, rng):
    V, D = 20, 5
    base = (make_table((V, D), dtype, rng) * 3).astype(dtype)
    ids = np.array([1, 4, 4, 7, 1, 12, 0, 19], np.int64)
    offsets = np.array([0, 3, 3, 6])
    bag_w, emb_w = base.copy(), base.copy()
    bag = EmbeddingBag(weight=bag_w, mode=mode, max_norm=1.0, norm_type=norm_type)
    out = bag(ids, offsets)
    assert bag.weight is bag_w
    Embedding(weight=emb_w, max_norm=1.0, norm_type=norm_type)(ids)
    assert_bitwise_equal(bag_w, emb_w)
    looked_up = np.unique(ids)
    untouched = np.setdiff1d(np.arange(V), looked_up)
    assert_bitwise_equal(bag_w[untouched], base[untouched])
    norms_before = np.linalg.norm(base[looked_up].astype(np.float64), ord=norm_type, axis=1)
    norms_after = np.linalg.norm(bag_w[looked_up].astype(np.float64), ord=norm_type, axis=1)
    assert (norms_before > 1.0).any()
    assert np.all(norms_after <= 1.0 + 1e-5)
    over = norms_before > 1.0
    assert_bitwise_equal(bag_w[looked_up[~over]], base[looked_up[~over]])
    flat, bounds = ref_bag_bounds(ids, offsets)
    # pooled from the renormalised rows
    assert_forward_equal(mode, out, ref_bag_forward(emb_w, flat, bounds, mode)[0])


def test_max_norm_with_padding_matches_embedding(rng):
    base = make_table((8, 4), np.float64, rng) * 4
    ids = np.array([[0, 3, 5], [3, 3, 2]])
    bag_w, emb_w = base.copy(), base.copy()
    out = EmbeddingBag(weight=bag_w, mode="sum", max_norm=1.5, padding_idx=3)(ids)
    Embedding(weight=emb_w, max_norm=1.5, padding_idx=3)(ids)
    assert_bitwise_equal(bag_w, emb_w)
    flat, bounds = ref_bag_bounds(ids)
    assert_bitwise_equal(out, ref_bag_forward(emb_w, flat, bounds, "sum", 3)[0])


# ----------------------------------------------------------------------------------------
# Parity with PyTorch
# ----------------------------------------------------------------------------------------

def torch_tol(dtype):
    return (dict(rtol=1e-6, atol=1e-6) if np.dtype(dtype) == np.float32
            else dict(rtol=1e-12, atol=1e-12))


def torch_args(torch, ids, offsets):
    t_ids = torch.from_numpy(np.asarray(ids).astype(np.int64))
    t_off = None if offsets is None else torch.from_numpy(np.asarray(offsets).astype(np.int64))
    return t_ids, t_off


@pytest.mark.parametrize("padding", [False, True], ids=["nopad", "pad"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_torch_functional_parity(mode, dtype, layout, padding, rng):
    torch = pytest.importorskip("torch")
    V, D, B = 30, 7, 25
    weight = make_table((V, D), dtype, rng, signed_zeros=False)  # no ties for max
    ids, offsets, ilo, pad = make_bags(rng, layout, "zipf", np.int32, V, B, 8, padding)
    g = make_table((B, D), dtype, rng)
    layer = EmbeddingBag(weight=weight.copy(), mode=mode, padding_idx=pad)
    out = layer(ids, offsets, include_last_offset=ilo)
    grad = layer.backward(g)
    tw = torch.from_numpy(weight.copy()).requires_grad_(True)
    t_ids, t_off = torch_args(torch, ids, offsets)
    t_out = torch.nn.functional.embedding_bag(t_ids, tw, t_off, mode=mode,
                                              include_last_offset=ilo, padding_idx=pad)
    t_out.backward(torch.from_numpy(g.copy()))
    np.testing.assert_allclose(out, t_out.detach().numpy(), **torch_tol(dtype))
    np.testing.assert_allclose(grad.to_dense(V), tw.grad.numpy(), **torch_tol(dtype))


# (mode, weighted): PyTorch takes per_sample_weights only with "sum". scale_grad_by_freq is
# compared in test_torch_scale_grad_by_freq_parity.
TORCH_MODULE_CASES = [("sum", False), ("sum", True), ("mean", False), ("max", False)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode,weighted", TORCH_MODULE_CASES,
                         ids=["-".join([m] + ["weighted"] * w) for m, w in TORCH_MODULE_CASES])
def test_torch_module_parity(mode, weighted, dtype, rng):
    torch = pytest.importorskip("torch")
    V, D, B = 40, 6, 30
    weight = make_table((V, D), dtype, rng, signed_zeros=False)
    ids, offsets, ilo, pad = make_bags(rng, "last", "zipf", np.int64, V, B, 10, True)
    psw = rng.uniform(-1.0, 2.0, ids.shape).astype(dtype) if weighted else None
    g = make_table((B, D), dtype, rng)
    layer = EmbeddingBag(weight=weight.copy(), mode=mode, padding_idx=pad)
    out = layer(ids, offsets, psw, include_last_offset=True)
    grad = layer.backward(g)
    module = torch.nn.EmbeddingBag.from_pretrained(
        torch.from_numpy(weight.copy()), freeze=False, mode=mode, padding_idx=pad,
        include_last_offset=True)
    t_ids, t_off = torch_args(torch, ids, offsets)
    t_psw = None if psw is None else torch.from_numpy(psw.copy())
    t_out = module(t_ids, t_off, per_sample_weights=t_psw)
    t_out.backward(torch.from_numpy(g.copy()))
    np.testing.assert_allclose(out, t_out.detach().numpy(), **torch_tol(dtype))
    np.testing.assert_allclose(grad.to_dense(V), module.weight.grad.numpy(),
                               **torch_tol(dtype))


@pytest.mark.parametrize("mode,weighted", [("sum", False), ("sum", True), ("mean", False)],
                         ids=["sum", "sum-weighted", "mean"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_torch_scale_grad_by_freq_parity(mode, weighted, dtype, rng):
    """scale_grad_by_freq against PyTorch's Embedding path, pooled by hand in torch.

    Not against torch's own embedding_bag: its CPU backward (2.13.0) divides by the count of
    the wrong index when counts differ (pytorch/pytorch#190063, fixed after 2.13.0).
    """
    torch = pytest.importorskip("torch")
    V, D, B = 30, 5, 25
    weight = make_table((V, D), dtype, rng, signed_zeros=False)
    ids, offsets, ilo, pad = make_bags(rng, "offsets", "zipf", np.int64, V, B, 8, True)
    psw = rng.uniform(-1.0, 2.0, ids.shape).astype(dtype) if weighted else None
    g = make_table((B, D), dtype, rng)
    layer = EmbeddingBag(weight=weight.copy(), mode=mode, padding_idx=pad,
                         scale_grad_by_freq=True)
    out = layer(ids, offsets, psw)
    grad = layer.backward(g)
    flat, bounds = ref_bag_bounds(ids, offsets)
    keep = flat != pad
    bag_of = torch.from_numpy(np.repeat(np.arange(B), np.diff(bounds)))
    factor = keep.astype(dtype) * (1 if psw is None else psw)
    tw = torch.from_numpy(weight.copy()).requires_grad_(True)
    rows = torch.nn.functional.embedding(torch.from_numpy(flat), tw, padding_idx=pad,
                                         scale_grad_by_freq=True)
    contrib = rows * torch.from_numpy(factor)[:, None]
    t_out = torch.zeros((B, D), dtype=tw.dtype).index_add(0, bag_of, contrib)
    if mode == "mean":
        counts = np.bincount(np.repeat(np.arange(B), np.diff(bounds))[keep], minlength=B)
        t_out = t_out / torch.from_numpy(np.maximum(counts, 1).astype(dtype))[:, None]
    t_out.backward(torch.from_numpy(g.copy()))
    np.testing.assert_allclose(out, t_out.detach().numpy(), **torch_tol(dtype))
    np.testing.assert_allclose(grad.to_dense(V), tw.grad.numpy(), **torch_tol(dtype))


@pytest.mark.parametrize("mode", MODES)
def test_torch_parity_with_max_norm(mode, rng):
    torch = pytest.importorskip("torch")
    V, D = 20, 4
    weight = make_table((V, D), np.float64, rng, signed_zeros=False) * 3
    ids = make_ids("zipf", (6, 4), V, np.int64, rng)
    g = make_table((6, D), np.float64, rng)
    layer = EmbeddingBag(weight=weight.copy(), mode=mode, max_norm=1.0)
    out = layer(ids)
    grad = layer.backward(g)
    module = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(weight.copy()),
                                                   freeze=False, mode=mode, max_norm=1.0)
    t_out = module(torch.from_numpy(ids))
    t_out.backward(torch.from_numpy(g.copy()))
    tol = torch_tol(np.float64)
    np.testing.assert_allclose(layer.weight, module.weight.detach().numpy(), **tol)
    np.testing.assert_allclose(out, t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(grad.to_dense(V), module.weight.grad.numpy(), **tol)


# ----------------------------------------------------------------------------------------
# Property test
# ----------------------------------------------------------------------------------------

WEIGHT_VALUES = [-1.0, -0.5, 0.0, 0.25, 1.0, 2.0]  # sums are exact: Σw == 0 does happen


@st.composite
def bag_problems(draw):
    dtype = np.dtype(draw(st.sampled_from(FLOATS)))
    id_dtype = draw(st.sampled_from(ID_DTYPES))
    V = draw(st.integers(1, 10))
    D = draw(st.integers(1, 5))
    mode = draw(st.sampled_from(MODES))
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "2d":
        B, L = draw(st.integers(0, 8)), draw(st.integers(0, 6))
        n = B * L
        ids = np.array(draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n)),
                       dtype=id_dtype).reshape(B, L)
        offsets = None
    else:
        sizes = draw(st.lists(st.integers(0, 6), max_size=10))
        n = sum(sizes)
        ids = np.array(draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n)),
                       dtype=id_dtype)
        bounds = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        offsets = bounds if layout == "last" else bounds[:-1]
    padding_idx = draw(st.none() | st.integers(-V, V - 1))
    psw = None
    if mode != "max" and draw(st.booleans()):
        psw = np.array(draw(st.lists(st.sampled_from(WEIGHT_VALUES), min_size=n,
                                     max_size=n)), dtype=dtype).reshape(ids.shape)
    scale_grad_by_freq = (mode == "sum" or mode == "mean" and psw is None) and draw(
        st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(dtype=dtype, V=V, D=D, mode=mode, ids=ids, offsets=offsets,
                ilo=layout == "last", padding_idx=padding_idx, psw=psw,
                scale_grad_by_freq=scale_grad_by_freq, seed=seed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=bag_problems())
def test_property_matches_reference_and_thread_counts(p):
    rng = np.random.default_rng(p["seed"])
    dtype, V, D, mode = p["dtype"], p["V"], p["D"], p["mode"]
    ids, offsets, ilo, pad, psw = p["ids"], p["offsets"], p["ilo"], p["padding_idx"], p["psw"]
    weight = make_table((V, D), dtype, rng)
    flat, bounds = ref_bag_bounds(ids, offsets, ilo)
    n_bags = bounds.size - 1
    g = make_table((n_bags, D), dtype, rng)
    outs = [embedding_bag(weight, ids, offsets, mode=mode, per_sample_weights=psw,
                          include_last_offset=ilo, padding_idx=pad, n_threads=t)
            for t in (1, 2)]
    assert_bitwise_equal(outs[1], outs[0])
    expected, denom, argmax = ref_bag_forward(weight, flat, bounds, mode, pad, psw)
    assert outs[0].shape == (n_bags, D)
    assert_bitwise_equal(outs[0], expected)
    results = [run_layer(weight, ids, offsets, ilo, mode, pad, psw, g, t,
                         p["scale_grad_by_freq"]) for t in (1, 2)]
    assert_bitwise_equal(results[0][0], outs[0])
    assert_bitwise_equal(results[1][0], outs[0])
    assert_grad_equal(results[1][1], results[0][1].rows, results[0][1].values)
    assert_grad_equal(results[0][1], *ref_bag_backward(
        flat, bounds, mode, g, denom, argmax, pad, psw, p["scale_grad_by_freq"], V))
