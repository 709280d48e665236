"""Tests for fastembed.Embedding: construction, forward, backward and the PyTorch/Keras options.

Every expectation is computed by hand or with a plain NumPy reference of ``reference.py``
(``weight[ids]`` for the lookup, ``np.unique`` + ``np.add.at`` for the gradient).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastembed import Embedding, EmbeddingBag, SparseGrad
from reference import ref_embedding_backward, ref_renorm, ref_scatter_add


# -- helpers ------------------------------------------------------------------------------

def table(v, d, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((v, d)).astype(dtype)


SEED_TABLE = np.arange(12, dtype=np.float32).reshape(4, 3)


# -- construction -------------------------------------------------------------------------

class TestConstruction:
    def test_positional_sizes(self):
        layer = Embedding(4, 3)
        assert layer.weight.shape == (4, 3)
        assert layer.num_embeddings == 4
        assert layer.embedding_dim == 3
        assert layer.grad is None
        assert layer.trainable is True

    def test_keyword_sizes(self):
        layer = Embedding(num_embeddings=5, embedding_dim=2)
        assert layer.weight.shape == (5, 2)

    def test_keras_aliases(self):
        layer = Embedding(input_dim=4, output_dim=3)
        assert layer.weight.shape == (4, 3)
        assert layer.num_embeddings == 4 and layer.embedding_dim == 3

    def test_keras_embeddings_initializer(self):
        layer = Embedding(input_dim=4, output_dim=3, embeddings_initializer="zeros")
        np.testing.assert_array_equal(layer.weight, np.zeros((4, 3), np.float32))

        def init(shape, rng):
            return np.full(shape, 7.0)

        layer = Embedding(input_dim=2, output_dim=2, embeddings_initializer=init)
        np.testing.assert_array_equal(layer.weight, np.full((2, 2), 7.0, np.float32))

    @pytest.mark.parametrize("kwargs", [
        dict(num_embeddings=4, embedding_dim=3, input_dim=4),
        dict(num_embeddings=4, embedding_dim=3, output_dim=3),
        dict(num_embeddings=4, embedding_dim=3, init="zeros", embeddings_initializer="zeros"),
    ])
    def test_argument_and_alias_is_type_error(self, kwargs):
        with pytest.raises(TypeError, match="alias"):
            Embedding(**kwargs)

    def test_positional_and_alias_is_type_error(self):
        with pytest.raises(TypeError):
            Embedding(4, 3, input_dim=4)
        with pytest.raises(TypeError):
            Embedding(4, 3, output_dim=3)

    @pytest.mark.parametrize("name", ["foo", "embeddings_regularizer", "sparse"])
    def test_unknown_keyword_is_type_error(self, name):
        with pytest.raises(TypeError, match=name):
            Embedding(4, 3, **{name: 1})

    def test_missing_size_is_type_error(self):
        with pytest.raises(TypeError):
            Embedding(4)
        with pytest.raises(TypeError):
            Embedding()

    def test_non_int_size_is_type_error(self):
        with pytest.raises(TypeError):
            Embedding(4.0, 3)
        with pytest.raises(TypeError):
            Embedding(4, True)

    def test_dtype_default_float32(self):
        layer = Embedding(4, 3)
        assert layer.weight.dtype == np.float32
        assert layer.dtype == np.float32
        assert layer(np.array([0, 1])).dtype == np.float32

    def test_dtype_float64(self):
        layer = Embedding(4, 3, dtype=np.float64)
        assert layer.weight.dtype == np.float64
        assert layer.dtype == np.float64
        assert layer(np.array([0, 1])).dtype == np.float64
        assert Embedding(4, 3, dtype="float64").dtype == np.float64

    @pytest.mark.parametrize("dtype", [int, np.int32, np.int64, np.float16, bool, np.complex64])
    def test_dtype_not_float32_64_is_type_error(self, dtype):
        with pytest.raises(TypeError, match="dtype"):
            Embedding(4, 3, dtype=dtype)

    @pytest.mark.parametrize("v, d", [(-1, 3), (4, -1), (-2, -2)])
    def test_negative_sizes_are_value_error(self, v, d):
        with pytest.raises(ValueError, match="must be >= 0, got -"):
            Embedding(v, d)

    def test_zero_sizes_allowed(self):
        assert Embedding(0, 3).weight.shape == (0, 3)
        layer = Embedding(4, 0)
        assert layer.weight.shape == (4, 0)
        assert layer(np.array([1, 2])).shape == (2, 0)

    def test_init_uniform_default(self):
        layer = Embedding(1000, 100, seed=0)
        w = layer.weight.astype(np.float64)
        assert w.min() >= -0.05 and w.max() <= 0.05
        # the spread fills the interval
        assert w.min() < -0.0499 and w.max() > 0.0499
        # mean ~ 0 (standard error 0.0289 / sqrt(1e5) ~ 9e-5)
        assert abs(w.mean()) < 1e-3
        # std of U(-a, a) = a / sqrt(3)
        assert w.std() == pytest.approx(0.05 / np.sqrt(3), rel=0.02)
        # a histogram of 10 bins over [-0.05, 0.05] is roughly flat
        hist, _ = np.histogram(w, bins=10, range=(-0.05, 0.05))
        assert hist.min() > 0.9 * w.size / 10 and hist.max() < 1.1 * w.size / 10

    def test_init_uniform_explicit_float64(self):
        layer = Embedding(500, 100, init="uniform", dtype=np.float64, seed=1)
        w = layer.weight
        assert w.dtype == np.float64
        assert w.min() >= -0.05 and w.max() <= 0.05
        assert w.min() < -0.0499 and w.max() > 0.0499
        assert abs(w.mean()) < 1.5e-3

    def test_init_normal(self):
        layer = Embedding(1000, 100, init="normal", seed=0)
        w = layer.weight.astype(np.float64)
        assert abs(w.mean()) < 0.02
        assert w.std() == pytest.approx(1.0, abs=0.02)
        # a normal table has values far beyond the uniform's interval
        assert np.abs(w).max() > 3.0

    def test_init_zeros(self):
        layer = Embedding(4, 3, init="zeros")
        np.testing.assert_array_equal(layer.weight, np.zeros((4, 3), np.float32))
        layer = Embedding(4, 3, init="zeros", dtype=np.float64)
        np.testing.assert_array_equal(layer.weight, np.zeros((4, 3), np.float64))
        assert layer.weight.dtype == np.float64

    def test_init_callable(self):
        calls = []

        def init(shape, rng):
            calls.append((shape, rng))
            return np.arange(np.prod(shape), dtype=np.float64).reshape(shape)

        layer = Embedding(4, 3, init=init, seed=0)
        assert len(calls) == 1
        shape, rng = calls[0]
        assert type(shape) is tuple and shape == (4, 3)
        assert isinstance(rng, np.random.Generator)
        np.testing.assert_array_equal(layer.weight, SEED_TABLE)
        assert layer.weight.dtype == np.float32
        assert layer.weight.flags.c_contiguous

    def test_init_callable_gets_given_generator(self):
        gen = np.random.default_rng(3)
        seen = []

        def init(shape, rng):
            seen.append(rng)
            return rng.standard_normal(shape)

        layer = Embedding(5, 2, init=init, seed=gen)
        assert seen == [gen] and seen[0] is gen
        expected = np.random.default_rng(3).standard_normal((5, 2)).astype(np.float32)
        np.testing.assert_array_equal(layer.weight, expected)

    def test_init_callable_list_result(self):
        layer = Embedding(2, 2, init=lambda shape, rng: [[1, 2], [3, 4]], dtype=np.float64)
        np.testing.assert_array_equal(layer.weight, [[1.0, 2.0], [3.0, 4.0]])
        assert layer.weight.dtype == np.float64

    @pytest.mark.parametrize("bad_shape", [(3, 4), (4,), (4, 3, 1), (12,)])
    def test_init_callable_wrong_shape(self, bad_shape):
        with pytest.raises(ValueError, match="shape"):
            Embedding(4, 3, init=lambda shape, rng: np.zeros(bad_shape))

    @pytest.mark.parametrize("bad", ["glorot", "Uniform", "", 3])
    def test_bad_init_is_value_error(self, bad):
        with pytest.raises(ValueError, match="init"):
            Embedding(4, 3, init=bad)

    @pytest.mark.parametrize("init", ["uniform", "normal"])
    def test_seed_reproducible(self, init):
        a = Embedding(50, 8, init=init, seed=123)
        b = Embedding(50, 8, init=init, seed=123)
        c = Embedding(50, 8, init=init, seed=124)
        np.testing.assert_array_equal(a.weight, b.weight)
        assert not np.array_equal(a.weight, c.weight)
        assert not np.shares_memory(a.weight, b.weight)

    def test_seed_numpy_int(self):
        a = Embedding(10, 4, seed=np.int64(7))
        b = Embedding(10, 4, seed=7)
        np.testing.assert_array_equal(a.weight, b.weight)

    def test_seed_generator_accepted(self):
        g1 = np.random.default_rng(42)
        g2 = np.random.default_rng(42)
        a = Embedding(20, 5, seed=g1)
        b = Embedding(20, 5, seed=g2)
        np.testing.assert_array_equal(a.weight, b.weight)
        # the generator is consumed: a second layer from it differs from the first
        c = Embedding(20, 5, seed=g1)
        assert not np.array_equal(a.weight, c.weight)
        # values are a plausible uniform table
        assert a.weight.min() >= -0.05 and a.weight.max() <= 0.05

    @pytest.mark.parametrize("seed", [1.5, "0", np.random.RandomState(0)])
    def test_bad_seed_is_type_error(self, seed):
        with pytest.raises(TypeError, match="seed"):
            Embedding(4, 3, seed=seed)

    def test_weight_used_by_reference(self):
        w = table(6, 4)
        layer = Embedding(weight=w)
        assert layer.weight is w
        assert np.shares_memory(layer.weight, w)
        assert layer.num_embeddings == 6 and layer.embedding_dim == 4
        assert layer.dtype == np.float32
        w[2] = 5.0  # a change to the caller's array is seen by the layer
        np.testing.assert_array_equal(layer(np.array([2])), np.full((1, 4), 5.0, np.float32))

    def test_weight_with_matching_sizes_and_dtype(self):
        w = table(6, 4, np.float64)
        layer = Embedding(6, 4, weight=w, dtype=np.float64)
        assert layer.weight is w
        layer = Embedding(input_dim=6, output_dim=4, weight=w)
        assert layer.weight is w
        assert layer.dtype == np.float64

    def test_weight_init_and_seed_do_not_touch_it(self):
        w = table(6, 4)
        before = w.copy()
        layer = Embedding(weight=w, init="zeros", seed=0)
        assert layer.weight is w
        np.testing.assert_array_equal(w, before)

    @pytest.mark.parametrize("kwargs", [dict(num_embeddings=5), dict(embedding_dim=3),
                                        dict(num_embeddings=6, embedding_dim=5),
                                        dict(input_dim=7)])
    def test_weight_shape_disagreement_is_value_error(self, kwargs):
        with pytest.raises(ValueError, match="disagrees"):
            Embedding(weight=table(6, 4), **kwargs)

    @pytest.mark.parametrize("shape", [(6,), (2, 3, 4), ()])
    def test_weight_not_2d_is_value_error(self, shape):
        with pytest.raises(ValueError, match="2-D"):
            Embedding(weight=np.zeros(shape, np.float32))

    def test_weight_dtype_disagreement_is_type_error(self):
        with pytest.raises(TypeError, match="dtype"):
            Embedding(weight=table(6, 4, np.float32), dtype=np.float64)
        with pytest.raises(TypeError, match="dtype"):
            Embedding(weight=table(6, 4, np.float64), dtype=np.float32)

    @pytest.mark.parametrize("dtype", [np.int64, np.float16, np.int32])
    def test_weight_bad_dtype_is_type_error(self, dtype):
        with pytest.raises(TypeError):
            Embedding(weight=np.zeros((4, 3), dtype))

    def test_weight_not_ndarray_is_type_error(self):
        with pytest.raises(TypeError):
            Embedding(weight=[[0.0, 1.0], [2.0, 3.0]])

    @pytest.mark.parametrize("make", [lambda w: w[:, ::2], lambda w: w[::2],
                                      lambda w: w.T, lambda w: np.asfortranarray(w)])
    def test_weight_non_contiguous_is_value_error(self, make):
        w = make(table(6, 6))
        assert not w.flags.c_contiguous
        with pytest.raises(ValueError, match="C-contiguous"):
            Embedding(weight=w)

    def test_repr_contains_sizes(self):
        r = repr(Embedding(4, 3))
        assert "Embedding(4, 3" in r
        assert "float32" in r
        r = repr(Embedding(1000, 64, dtype=np.float64, padding_idx=0, max_norm=2.0))
        assert "1000" in r and "64" in r and "float64" in r
        assert "padding_idx=0" in r and "max_norm=2.0" in r
        assert "trainable=False" in repr(Embedding.from_pretrained(np.eye(3, dtype=np.float32)))

    def test_parameters(self):
        layer = Embedding(4, 3)
        params = list(layer.parameters())
        assert len(params) == 1 and params[0] is layer.parameter
        assert params[0].data is layer.weight and params[0].sparse
        assert list(Embedding(4, 3, trainable=False).parameters()) == []


# -- forward ------------------------------------------------------------------------------

class TestForward:
    def test_seed_example_rows(self):
        w = SEED_TABLE.copy()
        layer = Embedding(input_dim=4, output_dim=3, weight=w)
        y = layer(np.array([0, 1, 2, 0]))
        expected = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 2]], np.float32)
        assert y.shape == (4, 3)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, expected)
        # the result is a fresh array, not a view of the table
        assert not np.shares_memory(y, w)

    def test_seed_example_shape(self):
        layer = Embedding(input_dim=4, output_dim=3, seed=0)
        assert layer(np.array([0, 1, 2, 0])).shape == (4, 3)
        ids = np.random.default_rng(0).integers(0, 4, size=(32, 10))
        y = layer(ids)
        assert y.shape == (32, 10, 3)
        np.testing.assert_array_equal(y, layer.weight[ids])
        assert layer(np.zeros((32, 10), dtype=np.int64)).shape == (32, 10, 3)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("id_dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64,
                                          np.uint32, np.uint64])
    def test_forward_equals_numpy_indexing(self, dtype, id_dtype):
        layer = Embedding(100, 7, dtype=dtype, init="normal", seed=1)
        ids = np.random.default_rng(2).integers(0, 100, size=(5, 4, 3)).astype(id_dtype)
        y = layer.forward(ids)
        assert y.shape == (5, 4, 3, 7)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, layer.weight[ids.astype(np.int64)])

    def test_forward_large_parallel_sized(self):
        layer = Embedding(5000, 32, init="normal", seed=3)
        ids = np.random.default_rng(4).integers(0, 5000, size=(200, 50))
        np.testing.assert_array_equal(layer(ids), layer.weight[ids])

    def test_list_and_tuple_ids(self):
        layer = Embedding(weight=SEED_TABLE.copy())
        np.testing.assert_array_equal(layer([3, 1]), SEED_TABLE[[3, 1]])
        np.testing.assert_array_equal(layer((2,)), SEED_TABLE[[2]])
        np.testing.assert_array_equal(layer([[0], [3]]), SEED_TABLE[[[0], [3]]])

    def test_zero_d_ids(self):
        layer = Embedding(weight=SEED_TABLE.copy())
        y = layer(np.int64(2))
        assert y.shape == (3,)
        np.testing.assert_array_equal(y, [6, 7, 8])
        y = layer(np.array(3))
        assert y.shape == (3,)
        np.testing.assert_array_equal(y, [9, 10, 11])
        y = layer(1)
        assert y.shape == (3,)
        np.testing.assert_array_equal(y, [3, 4, 5])

    @pytest.mark.parametrize("ids, shape", [([], (0, 3)),
                                            (np.zeros(0, np.int64), (0, 3)),
                                            (np.zeros((0, 5), np.int32), (0, 5, 3)),
                                            (np.zeros((4, 0), np.int64), (4, 0, 3))])
    def test_empty_ids(self, ids, shape):
        layer = Embedding(4, 3)
        y = layer(ids)
        assert y.shape == shape
        assert y.dtype == np.float32

    def test_out_filled_and_returned(self):
        w = SEED_TABLE.copy()
        layer = Embedding(weight=w)
        out = np.full((2, 2, 3), -1.0, np.float32)
        ids = np.array([[3, 0], [1, 1]])
        y = layer(ids, out=out)
        assert y is out
        np.testing.assert_array_equal(out, w[ids])

    def test_out_zero_d(self):
        layer = Embedding(weight=SEED_TABLE.copy())
        out = np.full(3, -1.0, np.float32)
        assert layer(np.int64(1), out=out) is out
        np.testing.assert_array_equal(out, [3, 4, 5])

    @pytest.mark.parametrize("out, exc", [
        (np.empty((4, 3), np.float64), TypeError),
        (np.empty((4, 2), np.float32), ValueError),
        (np.empty((3, 3), np.float32), ValueError),
        (np.empty((3, 4), np.float32).T, ValueError),
    ])
    def test_bad_out(self, out, exc):
        layer = Embedding(weight=table(5, 3))
        with pytest.raises(exc):
            layer(np.array([0, 1, 2, 3]), out=out)

    def test_out_read_only_is_value_error(self):
        layer = Embedding(weight=table(5, 3))
        out = np.zeros((2, 3), np.float32)
        out.flags.writeable = False
        with pytest.raises(ValueError):
            layer([0, 1], out=out)
        np.testing.assert_array_equal(out, 0)

    def test_out_overlapping_weight_is_value_error(self):
        w = table(8, 3)
        before = w.copy()
        layer = Embedding(weight=w)
        with pytest.raises(ValueError, match="share memory"):
            layer([0, 1], out=w[4:6])
        np.testing.assert_array_equal(w, before)

    def test_call_same_as_forward(self):
        layer = Embedding(30, 5, init="normal", seed=0)
        ids = np.array([[1, 29, 1], [0, 7, 3]])
        np.testing.assert_array_equal(layer(ids), layer.forward(ids))

    def test_forward_does_not_modify_weight(self):
        layer = Embedding(30, 5, init="normal", seed=0)
        before = layer.weight.copy()
        layer(np.array([1, 2, 2, 29]))
        np.testing.assert_array_equal(layer.weight, before)

    def test_forward_remembers_a_copy_of_ids(self):
        layer = Embedding(weight=SEED_TABLE.copy())
        ids = np.array([0, 1, 2])
        layer(ids)
        ids[:] = 3  # mutating the caller's array after forward changes nothing
        g = layer.backward(np.ones((3, 3), np.float32))
        np.testing.assert_array_equal(g.rows, [0, 1, 2])

    def test_n_threads_keyword(self):
        layer = Embedding(1000, 40, init="normal", seed=0)
        ids = np.random.default_rng(0).integers(0, 1000, size=5000)
        for n in (1, 2, -1, None):
            np.testing.assert_array_equal(layer(ids, n_threads=n), layer.weight[ids])


# -- input_length -------------------------------------------------------------------------

class TestInputLength:
    def test_matching_passes(self):
        layer = Embedding(10, 3, input_length=4)
        assert layer(np.zeros((2, 4), np.int64)).shape == (2, 4, 3)
        assert layer(np.zeros(4, np.int64)).shape == (4, 3)
        assert layer.input_length == 4

    @pytest.mark.parametrize("shape", [(2, 5), (2, 3), (5,), (4, 2), (4, 0)])
    def test_last_axis_differs(self, shape):
        layer = Embedding(10, 3, input_length=4)
        with pytest.raises(ValueError, match="input_length"):
            layer(np.zeros(shape, np.int64))

    def test_zero_d_ids(self):
        layer = Embedding(10, 3, input_length=1)
        with pytest.raises(ValueError, match="input_length"):
            layer(np.int64(0))
        with pytest.raises(ValueError, match="input_length"):
            layer(np.array(0))

    def test_backward_ids_checked(self):
        layer = Embedding(10, 3, input_length=2)
        with pytest.raises(ValueError, match="input_length"):
            layer.backward(np.zeros((3, 3), np.float32), ids=[1, 2, 3])
        assert layer.grad is None

    @pytest.mark.parametrize("bad, exc", [(-1, ValueError), (2.0, TypeError)])
    def test_bad_input_length(self, bad, exc):
        with pytest.raises(exc):
            Embedding(10, 3, input_length=bad)


# -- backward -----------------------------------------------------------------------------

class TestBackward:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_matches_reference_bitwise(self, dtype):
        rng = np.random.default_rng(10)
        layer = Embedding(50, 6, dtype=dtype, seed=0)
        ids = rng.integers(0, 50, size=(8, 9))
        layer(ids)
        grad_output = rng.standard_normal((8, 9, 6)).astype(dtype)
        g = layer.backward(grad_output)
        assert isinstance(g, SparseGrad)
        rows, values = ref_embedding_backward(ids, grad_output)
        assert g.rows.dtype == np.int64
        assert g.values.dtype == dtype
        assert g.values.shape == (rows.size, 6)
        assert np.all(np.diff(g.rows) > 0)  # ascending, unique
        np.testing.assert_array_equal(g.rows, rows)
        assert np.array_equal(g.values, values)  # bitwise (same summation order)
        assert layer.grad is not None
        np.testing.assert_array_equal(layer.grad.rows, rows)
        assert np.array_equal(layer.grad.values, values)

    def test_hand_computed(self):
        layer = Embedding(weight=np.zeros((4, 2), np.float64))
        layer(np.array([2, 0, 2, 2]))
        go = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
        g = layer.backward(go)
        np.testing.assert_array_equal(g.rows, [0, 2])
        np.testing.assert_array_equal(g.values, [[3.0, 4.0], [13.0, 16.0]])
        np.testing.assert_array_equal(g.to_dense(4),
                                      [[3, 4], [0, 0], [13, 16], [0, 0]])

    def test_large_matches_reference_bitwise(self):
        # big enough for the multithreaded path
        rng = np.random.default_rng(11)
        layer = Embedding(3000, 16, seed=0)
        ids = rng.integers(0, 300, size=(400, 50))  # many duplicates
        layer(ids)
        go = rng.standard_normal((400, 50, 16)).astype(np.float32)
        g = layer.backward(go)
        rows, values = ref_embedding_backward(ids, go)
        np.testing.assert_array_equal(g.rows, rows)
        assert np.array_equal(g.values, values)

    def test_zero_d_ids(self):
        layer = Embedding(weight=np.zeros((4, 3), np.float64))
        layer(np.int64(2))
        g = layer.backward(np.array([1.0, 2.0, 3.0]))
        np.testing.assert_array_equal(g.rows, [2])
        np.testing.assert_array_equal(g.values, [[1.0, 2.0, 3.0]])

    def test_empty_ids(self):
        layer = Embedding(4, 3)
        layer([])
        g = layer.backward(np.zeros((0, 3), np.float32))
        assert g.rows.shape == (0,)
        assert g.values.shape == (0, 3)
        np.testing.assert_array_equal(g.to_dense(4), np.zeros((4, 3)))

    def test_accumulates_across_calls(self):
        rng = np.random.default_rng(12)
        layer = Embedding(20, 4, dtype=np.float64, seed=0)
        ids1 = np.array([1, 5, 5, 7])
        ids2 = np.array([[5, 9], [1, 12]])
        go1 = rng.standard_normal((4, 4))
        go2 = rng.standard_normal((2, 2, 4))

        layer(ids1)
        g1 = layer.backward(go1)
        g1_rows, g1_values = g1.rows.copy(), g1.values.copy()
        layer(ids2)
        g2 = layer.backward(go2)

        # each call returns only its own gradient
        r1, v1 = ref_embedding_backward(ids1, go1)
        r2, v2 = ref_embedding_backward(ids2, go2)
        np.testing.assert_array_equal(g2.rows, r2)
        np.testing.assert_array_equal(g2.values, v2)
        # the first call's result is not modified by the second
        np.testing.assert_array_equal(g1.rows, g1_rows)
        np.testing.assert_array_equal(g1.values, g1_values)

        # layer.grad is the sum, over the union of the rows
        np.testing.assert_array_equal(layer.grad.rows, [1, 5, 7, 9, 12])
        np.testing.assert_array_equal(layer.grad.rows, np.union1d(r1, r2))
        assert layer.grad.rows.dtype == np.int64
        expected = np.zeros((20, 4))
        expected[r1] += v1
        expected[r2] += v2
        np.testing.assert_allclose(layer.grad.to_dense(20), expected, rtol=0, atol=1e-15)
        # hand check one shared row: row 5 gets go1[1] + go1[2] + go2[0, 0]
        k = list(layer.grad.rows).index(5)
        np.testing.assert_allclose(layer.grad.values[k], go1[1] + go1[2] + go2[0, 0],
                                   rtol=1e-15)

    def test_accumulates_same_ids_twice(self):
        layer = Embedding(weight=np.zeros((4, 2), np.float32))
        layer([0, 3])
        go = np.array([[1, 2], [3, 4]], np.float32)
        layer.backward(go)
        layer.backward(go)
        np.testing.assert_array_equal(layer.grad.rows, [0, 3])
        np.testing.assert_array_equal(layer.grad.values, [[2, 4], [6, 8]])

    def test_returned_gradient_is_read_only(self):
        # backward returns views of the gradient it stored (no copy of a large gradient), so
        # they are read-only: writing to them cannot change layer.grad
        layer = Embedding(weight=table(5, 2))
        layer([1, 3])
        g = layer.backward(np.ones((2, 2), np.float32))
        with pytest.raises(ValueError, match="read-only"):
            g.values[:] = 100
        with pytest.raises(ValueError, match="read-only"):
            g.rows[0] = 0
        np.testing.assert_array_equal(layer.grad.values, np.ones((2, 2), np.float32))
        assert layer.grad.values.flags.writeable  # the stored gradient stays the layer's
        # a second backward merges into new arrays: the first call's gradient is unchanged
        g2 = layer.backward(np.full((2, 2), 2, np.float32))
        np.testing.assert_array_equal(g.values, np.ones((2, 2), np.float32))
        np.testing.assert_array_equal(g2.values, np.full((2, 2), 2, np.float32))
        np.testing.assert_array_equal(layer.grad.values, np.full((2, 2), 3, np.float32))

    def test_bag_returned_gradient_is_read_only(self):
        bag = EmbeddingBag(weight=table(5, 2), mode="sum")
        bag([[1, 3], [3, 4]])
        g = bag.backward(np.ones((2, 2), np.float32))
        assert not g.values.flags.writeable and not g.rows.flags.writeable
        np.testing.assert_array_equal(g.rows, [1, 3, 4])
        np.testing.assert_array_equal(g.values, [[1, 1], [2, 2], [1, 1]])

    def test_zero_grad(self):
        layer = Embedding(10, 3)
        layer([1, 2])
        layer.backward(np.ones((2, 3), np.float32))
        assert layer.grad is not None
        layer.zero_grad()
        assert layer.grad is None
        # accumulation restarts from nothing
        layer.backward(np.full((2, 3), 2.0, np.float32))
        np.testing.assert_array_equal(layer.grad.rows, [1, 2])
        np.testing.assert_array_equal(layer.grad.values, np.full((2, 3), 2.0))

    def test_backward_with_ids_overrides_last_forward(self):
        layer = Embedding(weight=np.zeros((6, 2), np.float64))
        layer(np.array([0, 1, 2]))
        go = np.array([[[1.0, 1.0], [2.0, 2.0]]])
        g = layer.backward(go, ids=np.array([[4, 4]]))
        np.testing.assert_array_equal(g.rows, [4])
        np.testing.assert_array_equal(g.values, [[3.0, 3.0]])
        # with ids= and no forward at all
        fresh = Embedding(weight=np.zeros((6, 2), np.float64))
        g = fresh.backward(np.array([[1.0, 2.0], [3.0, 4.0]]), ids=[5, 0])
        np.testing.assert_array_equal(g.rows, [0, 5])
        np.testing.assert_array_equal(g.values, [[3.0, 4.0], [1.0, 2.0]])

    def test_backward_with_bad_ids(self):
        layer = Embedding(4, 2)
        with pytest.raises(IndexError):
            layer.backward(np.zeros((2, 2), np.float32), ids=[0, 4])
        with pytest.raises(TypeError):
            layer.backward(np.zeros((2, 2), np.float32), ids=[0.0, 1.0])
        assert layer.grad is None

    def test_backward_before_forward(self):
        layer = Embedding(4, 3)
        with pytest.raises(RuntimeError):
            layer.backward(np.zeros((2, 3), np.float32))
        assert layer.grad is None

    @pytest.mark.parametrize("bad, exc", [
        (np.ones((3, 3), np.float64), TypeError),
        (np.ones((3, 3), np.int32), TypeError),
        (np.ones((3, 3), np.float16), TypeError),
        (np.ones((3, 2), np.float32), ValueError),
        (np.ones((2, 3), np.float32), ValueError),
        (np.ones((3, 3, 1), np.float32), ValueError),
        (np.ones((9,), np.float32), ValueError),
    ])
    def test_bad_grad_output_leaves_grad_unchanged(self, bad, exc):
        layer = Embedding(weight=np.zeros((5, 3), np.float32))
        # first, no grad yet
        layer([1, 2, 2])
        with pytest.raises(exc):
            layer.backward(bad)
        assert layer.grad is None
        # then an accumulated grad that must survive a failed call
        layer.backward(np.ones((3, 3), np.float32))
        saved = layer.grad
        rows, values = saved.rows.copy(), saved.values.copy()
        with pytest.raises(exc):
            layer.backward(bad)
        assert layer.grad is saved
        np.testing.assert_array_equal(layer.grad.rows, rows)
        np.testing.assert_array_equal(layer.grad.values, values)
        np.testing.assert_array_equal(layer.grad.rows, [1, 2])
        np.testing.assert_array_equal(layer.grad.values, [[1, 1, 1], [2, 2, 2]])

    def test_non_contiguous_grad_output(self):
        layer = Embedding(weight=np.zeros((5, 2), np.float64))
        layer([1, 3, 1])
        big = np.arange(12, dtype=np.float64).reshape(3, 4)
        go = big[:, ::2]  # [[0, 2], [4, 6], [8, 10]]
        g = layer.backward(go)
        np.testing.assert_array_equal(g.rows, [1, 3])
        np.testing.assert_array_equal(g.values, [[8.0, 12.0], [4.0, 6.0]])

    def test_backward_does_not_modify_weight(self):
        layer = Embedding(10, 3, seed=0)
        before = layer.weight.copy()
        layer([1, 2])
        layer.backward(np.ones((2, 3), np.float32))
        np.testing.assert_array_equal(layer.weight, before)


# -- gradient check against finite differences --------------------------------------------

def _fd_check(layer, ids, loss_of_output, grad_of_output, n_entries=12, h=1e-6, seed=0):
    """Compare the analytic dense gradient with central differences at a few weight entries."""
    w = layer.weight
    y = layer.forward(ids)
    g = layer.backward(grad_of_output(y))
    dense = g.to_dense(layer.num_embeddings)
    rng = np.random.default_rng(seed)
    used = np.unique(ids)
    unused = np.setdiff1d(np.arange(layer.num_embeddings), used)
    # entries in rows that are looked up (several times for the duplicates) and some that are not
    picks = [(int(rng.choice(used)), int(rng.integers(w.shape[1]))) for _ in range(n_entries)]
    picks += [(int(rng.choice(unused)), int(rng.integers(w.shape[1]))) for _ in range(3)]
    checked_nonzero = 0
    for r, c in picks:
        orig = w[r, c]
        w[r, c] = orig + h
        lp = loss_of_output(layer.forward(ids))
        w[r, c] = orig - h
        lm = loss_of_output(layer.forward(ids))
        w[r, c] = orig
        fd = (lp - lm) / (2 * h)
        assert fd == pytest.approx(dense[r, c], rel=1e-6, abs=1e-7), (r, c)
        checked_nonzero += abs(dense[r, c]) > 1e-3
    assert checked_nonzero >= n_entries // 2  # the check is not vacuous
    return dense


class TestGradCheck:
    def _ids(self):
        ids = np.array([[3, 7, 3, 0], [7, 7, 1, 3], [0, 9, 3, 5]])
        assert np.unique(ids).size < ids.size  # duplicates
        return ids

    def test_linear_loss(self):
        layer = Embedding(12, 5, dtype=np.float64, init="normal", seed=0)
        ids = self._ids()
        G = np.random.default_rng(1).standard_normal(ids.shape + (5,))
        dense = _fd_check(layer, ids, lambda y: float(np.sum(y * G)), lambda y: G)
        # exact dense gradient: for each position, add G into its row
        expected = ref_scatter_add(np.zeros((12, 5)), ids, G)
        np.testing.assert_allclose(dense, expected, rtol=1e-14, atol=1e-14)

    def test_nonlinear_loss(self):
        layer = Embedding(12, 5, dtype=np.float64, init="normal", seed=2)
        ids = self._ids()

        def loss(y):
            return float(np.sum(np.tanh(y) ** 2))

        def grad(y):
            t = np.tanh(y)
            return 2.0 * t * (1.0 - t * t)  # d/dy tanh(y)^2

        _fd_check(layer, ids, loss, grad, seed=3)

    def test_nonlinear_loss_scale_grad_by_freq(self):
        # with scale_grad_by_freq the gradient is the true gradient divided by the row count
        layer = Embedding(12, 5, dtype=np.float64, init="normal", seed=4,
                          scale_grad_by_freq=True)
        ids = self._ids()
        y = layer(ids)
        t = np.tanh(y)
        dense = layer.backward(2.0 * t * (1.0 - t * t)).to_dense(12)
        counts = np.bincount(ids.ravel(), minlength=12)
        h = 1e-6
        w = layer.weight
        for r in (3, 7, 0, 9):
            for c in range(5):
                orig = w[r, c]
                w[r, c] = orig + h
                lp = np.sum(np.tanh(layer(ids)) ** 2)
                w[r, c] = orig - h
                lm = np.sum(np.tanh(layer(ids)) ** 2)
                w[r, c] = orig
                fd = (lp - lm) / (2 * h)
                assert fd / counts[r] == pytest.approx(dense[r, c], rel=1e-6, abs=1e-7)


# -- padding_idx --------------------------------------------------------------------------

class TestPaddingIdx:
    @pytest.mark.parametrize("init", ["uniform", "normal"])
    def test_padding_row_starts_zero(self, init):
        layer = Embedding(6, 4, padding_idx=2, init=init, seed=0)
        np.testing.assert_array_equal(layer.weight[2], np.zeros(4))
        others = np.delete(layer.weight, 2, axis=0)
        assert np.all(others != 0)
        assert layer.padding_idx == 2

    def test_padding_row_zero_with_callable_init(self):
        layer = Embedding(3, 2, padding_idx=0, init=lambda s, r: np.ones(s))
        np.testing.assert_array_equal(layer.weight, [[0, 0], [1, 1], [1, 1]])

    def test_padding_lookup_returns_zeros(self):
        layer = Embedding(6, 4, padding_idx=0, init="normal", seed=0)
        y = layer(np.array([0, 3, 0]))
        np.testing.assert_array_equal(y[0], 0)
        np.testing.assert_array_equal(y[2], 0)
        np.testing.assert_array_equal(y[1], layer.weight[3])

    def test_padding_never_receives_gradient(self):
        layer = Embedding(6, 2, padding_idx=1, dtype=np.float64, seed=0)
        ids = np.array([[1, 3, 1], [5, 1, 3]])
        layer(ids)
        go = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
        g = layer.backward(go)
        assert 1 not in g.rows
        np.testing.assert_array_equal(g.rows, [3, 5])
        # row 3: go[0,1] + go[1,2] = [2,3] + [10,11]; row 5: go[1,0] = [6,7]
        np.testing.assert_array_equal(g.values, [[12.0, 14.0], [6.0, 7.0]])
        assert 1 not in layer.grad.rows
        np.testing.assert_array_equal(layer.grad.to_dense(6)[1], [0.0, 0.0])
        # a second backward keeps the padding row out of the accumulated grad
        layer.backward(go)
        np.testing.assert_array_equal(layer.grad.rows, [3, 5])
        np.testing.assert_array_equal(layer.grad.values, [[24.0, 28.0], [12.0, 14.0]])

    def test_only_padding_ids(self):
        layer = Embedding(4, 3, padding_idx=0)
        layer(np.array([0, 0]))
        g = layer.backward(np.ones((2, 3), np.float32))
        assert g.rows.size == 0
        assert g.values.shape == (0, 3)
        assert layer.grad.rows.size == 0
        np.testing.assert_array_equal(layer.grad.to_dense(4), np.zeros((4, 3)))

    def test_padding_with_scale_grad_by_freq(self):
        layer = Embedding(4, 1, padding_idx=3, scale_grad_by_freq=True, dtype=np.float64)
        layer(np.array([3, 2, 2, 3]))
        g = layer.backward(np.array([[1.0], [2.0], [4.0], [8.0]]))
        np.testing.assert_array_equal(g.rows, [2])
        np.testing.assert_array_equal(g.values, [[3.0]])

    @pytest.mark.parametrize("neg, resolved", [(-1, 5), (-2, 4), (-6, 0)])
    def test_negative_padding_idx(self, neg, resolved):
        layer = Embedding(6, 3, padding_idx=neg, init="normal", seed=0)
        assert layer.padding_idx == resolved
        np.testing.assert_array_equal(layer.weight[resolved], 0)
        assert np.count_nonzero(np.all(layer.weight == 0, axis=1)) == 1
        layer(np.array([resolved, (resolved + 1) % 6]))
        g = layer.backward(np.ones((2, 3), np.float32))
        np.testing.assert_array_equal(g.rows, [(resolved + 1) % 6])

    @pytest.mark.parametrize("bad", [6, 7, -7, 100])
    def test_out_of_range_padding_idx(self, bad):
        with pytest.raises(ValueError, match="padding_idx"):
            Embedding(6, 3, padding_idx=bad)

    @pytest.mark.parametrize("bad", [1.0, True, "0"])
    def test_non_int_padding_idx(self, bad):
        with pytest.raises(TypeError, match="padding_idx"):
            Embedding(6, 3, padding_idx=bad)

    def test_given_weight_padding_row_not_zeroed(self):
        w = table(5, 3)
        before = w.copy()
        layer = Embedding(weight=w, padding_idx=2)
        assert layer.weight is w
        np.testing.assert_array_equal(w, before)
        assert np.all(w[2] != 0)
        np.testing.assert_array_equal(layer(np.array([2])), before[[2]])
        # but it still receives no gradient
        g = layer.backward(np.ones((1, 3), np.float32))
        assert g.rows.size == 0

    def test_from_pretrained_padding_row_not_zeroed(self):
        w = table(5, 3)
        before = w.copy()
        layer = Embedding.from_pretrained(w, freeze=False, padding_idx=-1)
        assert layer.padding_idx == 4
        np.testing.assert_array_equal(w, before)
        layer(np.array([4, 0]))
        g = layer.backward(np.ones((2, 3), np.float32))
        np.testing.assert_array_equal(g.rows, [0])


# -- max_norm / norm_type -----------------------------------------------------------------

def _renorm_table():
    # row norms (2-norm): 5, 0.1, 10, sqrt(3), 13
    return np.array([[3.0, 4.0, 0.0],
                     [0.1, 0.0, 0.0],
                     [6.0, 8.0, 0.0],
                     [1.0, 1.0, 1.0],
                     [0.0, 5.0, 12.0]])


class TestMaxNorm:
    def test_l2_renorm_float64(self):
        w = _renorm_table()
        orig = w.copy()
        layer = Embedding(weight=w, max_norm=2.0)
        y = layer(np.array([0, 1, 3]))
        expected = orig.copy()
        expected[0] = orig[0] * (2.0 / (5.0 + 1e-7))
        # rows 1 (norm 0.1) and 3 (norm sqrt(3) < 2) are under the norm: untouched
        # rows 2 and 4 are over the norm but not looked up: untouched
        np.testing.assert_allclose(w, expected, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(w[1:], orig[1:])
        np.testing.assert_allclose(y, expected[[0, 1, 3]], rtol=1e-14, atol=0)
        assert layer.weight is w  # in place
        assert np.linalg.norm(w[0]) < 2.0
        assert np.linalg.norm(w[0]) == pytest.approx(2.0, rel=1e-7)

    def test_l2_renorm_float32(self):
        w = _renorm_table().astype(np.float32)
        orig = w.copy()
        layer = Embedding(weight=w, max_norm=1.0)
        y = layer(np.array([[4, 2], [1, 4]]))
        expected = orig.astype(np.float64)
        expected[2] = orig[2] * (1.0 / (10.0 + 1e-7))
        expected[4] = orig[4] * (1.0 / (13.0 + 1e-7))
        np.testing.assert_allclose(w, expected, rtol=1e-6, atol=0)
        np.testing.assert_array_equal(w[[0, 1, 3]], orig[[0, 1, 3]])
        np.testing.assert_array_equal(y, w[np.array([[4, 2], [1, 4]])])
        assert w.dtype == np.float32

    def test_norm_type_1(self):
        w = _renorm_table()
        orig = w.copy()
        # 1-norms: 7, 0.1, 14, 3, 17
        layer = Embedding(weight=w, max_norm=3.5, norm_type=1)
        layer(np.array([0, 3, 4]))
        expected = orig.copy()
        expected[0] = orig[0] * (3.5 / (7.0 + 1e-7))
        expected[4] = orig[4] * (3.5 / (17.0 + 1e-7))
        # row 3 has 1-norm 3 <= 3.5 (its 2-norm would also pass); row 2 is not looked up
        np.testing.assert_allclose(w, expected, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(w[[1, 2, 3]], orig[[1, 2, 3]])

    def test_norm_type_1_differs_from_2(self):
        # row 3 = [1, 1, 1]: 2-norm 1.732 <= 2, 1-norm 3 > 2
        w = _renorm_table()
        Embedding(weight=w, max_norm=2.0, norm_type=1)([3])
        np.testing.assert_allclose(w[3], np.ones(3) * (2.0 / (3.0 + 1e-7)), rtol=1e-14)
        w = _renorm_table()
        Embedding(weight=w, max_norm=2.0, norm_type=2)([3])
        np.testing.assert_array_equal(w[3], np.ones(3))

    def test_norm_type_inf(self):
        w = _renorm_table()
        orig = w.copy()
        # inf-norms: 4, 0.1, 8, 1, 12
        layer = Embedding(weight=w, max_norm=4.5, norm_type=np.inf)
        layer(np.array([0, 2, 4, 3]))
        expected = orig.copy()
        expected[2] = orig[2] * (4.5 / (8.0 + 1e-7))
        expected[4] = orig[4] * (4.5 / (12.0 + 1e-7))
        # row 0: 2-norm 5 > 4.5 but inf-norm 4 <= 4.5, so untouched
        np.testing.assert_allclose(w, expected, rtol=1e-14, atol=0)
        np.testing.assert_array_equal(w[[0, 1, 3]], orig[[0, 1, 3]])

    def test_norm_type_3(self):
        w = _renorm_table()
        orig = w.copy()
        layer = Embedding(weight=w, max_norm=1.0, norm_type=3)
        layer([4])
        n3 = (5.0 ** 3 + 12.0 ** 3) ** (1 / 3)
        np.testing.assert_allclose(w[4], orig[4] * (1.0 / (n3 + 1e-7)), rtol=1e-12)

    def test_duplicates_renormalise_once(self):
        w = _renorm_table()
        orig = w.copy()
        layer = Embedding(weight=w, max_norm=2.0)
        y = layer(np.array([2, 2, 0, 2, 0]))
        expected = orig.copy()
        expected[0] = orig[0] * (2.0 / (5.0 + 1e-7))
        expected[2] = orig[2] * (2.0 / (10.0 + 1e-7))
        np.testing.assert_allclose(w, expected, rtol=1e-14, atol=0)
        # every occurrence in the output is the renormalised row
        np.testing.assert_allclose(y, expected[[2, 2, 0, 2, 0]], rtol=1e-14, atol=0)
        np.testing.assert_array_equal(y[0], y[1])
        np.testing.assert_array_equal(y[0], y[3])

    def test_second_lookup_is_stable(self):
        w = _renorm_table()
        layer = Embedding(weight=w, max_norm=2.0)
        y1 = layer([0, 2]).copy()
        after_first = w.copy()
        y2 = layer([0, 2])
        np.testing.assert_array_equal(w, after_first)  # now under the norm: untouched
        np.testing.assert_array_equal(y1, y2)

    def test_renorm_with_initialised_table(self):
        layer = Embedding(100, 8, init="normal", max_norm=1.0, seed=0)
        orig = layer.weight.copy()
        ids = np.array([[1, 2, 3], [3, 50, 99]])
        y = layer(ids)
        expected = ref_renorm(orig, ids, 1.0)
        used = np.unique(ids)
        np.testing.assert_allclose(layer.weight, expected, rtol=1e-5, atol=1e-7)
        untouched = np.setdiff1d(np.arange(100), used)
        np.testing.assert_array_equal(layer.weight[untouched], orig[untouched])
        np.testing.assert_array_equal(y, layer.weight[ids])
        assert np.all(np.linalg.norm(layer.weight[used], axis=1) <= 1.0 + 1e-6)

    def test_empty_ids_with_max_norm(self):
        w = _renorm_table()
        orig = w.copy()
        y = Embedding(weight=w, max_norm=1.0)([])
        assert y.shape == (0, 3)
        np.testing.assert_array_equal(w, orig)

    @pytest.mark.parametrize("norm_type", [1.0, 2.0, np.inf])
    def test_rows_of_no_element_with_max_norm(self, norm_type):
        """embedding_dim 0: every row has norm 0, so nothing is scaled (NumPy before 2.4
        raised for the max-norm of an empty row)."""
        layer = Embedding(4, 0, max_norm=1.0, norm_type=norm_type)
        y = layer(np.array([[0, 3], [3, 1]]))
        assert y.shape == (2, 2, 0)
        assert layer.weight.shape == (4, 0)

    def test_read_only_weight_with_max_norm(self):
        w = _renorm_table()
        w.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            Embedding(weight=w, max_norm=1.0)
        with pytest.raises(ValueError, match="read-only"):
            Embedding.from_pretrained(w, max_norm=1.0)

    @pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan")])
    def test_non_positive_max_norm(self, bad):
        with pytest.raises(ValueError, match="max_norm"):
            Embedding(4, 3, max_norm=bad)

    @pytest.mark.parametrize("bad", [0, -2.0])
    def test_non_positive_norm_type(self, bad):
        with pytest.raises(ValueError, match="norm_type"):
            Embedding(4, 3, max_norm=1.0, norm_type=bad)

    def test_backward_after_renorm(self):
        # the gradient of a lookup is unaffected by the renorm (it is a plain scatter-add)
        w = _renorm_table()
        layer = Embedding(weight=w, max_norm=1.0)
        layer([2, 2])
        g = layer.backward(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        np.testing.assert_array_equal(g.rows, [2])
        np.testing.assert_array_equal(g.values, [[5.0, 7.0, 9.0]])


    def test_float32_row_whose_squares_overflow_is_scaled_not_zeroed(self):
        # ||(1e20, 1e20)||^2 overflows float32; the norm is taken in float64, so the row is
        # scaled to max_norm instead of collapsing to zero.
        w = np.array([[1e20, 1e20], [1, 1]], np.float32)
        Embedding(weight=w, max_norm=1.0)([0])
        np.testing.assert_allclose(w[0], [2 ** -0.5, 2 ** -0.5], rtol=1e-6)
        np.testing.assert_array_equal(w[1], [1, 1])


# -- scale_grad_by_freq -------------------------------------------------------------------

class TestScaleGradByFreq:
    def test_hand_computed(self):
        layer = Embedding(4, 2, scale_grad_by_freq=True, dtype=np.float64)
        layer(np.array([1, 1, 1, 2]))
        go = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
        g = layer.backward(go)
        np.testing.assert_array_equal(g.rows, [1, 2])
        # row 1: ([1,2] + [3,4] + [5,6]) / 3 = [3, 4]; row 2: [7, 8] / 1
        np.testing.assert_array_equal(g.values, [[3.0, 4.0], [7.0, 8.0]])

    def test_hand_computed_float32_2d(self):
        layer = Embedding(5, 1, scale_grad_by_freq=True)
        layer(np.array([[0, 4, 4], [4, 0, 3]]))
        go = np.array([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]], np.float32)
        g = layer.backward(go)
        np.testing.assert_array_equal(g.rows, [0, 3, 4])
        # row 0: (1 + 5) / 2 = 3; row 3: 6 / 1; row 4: (2 + 3 + 4) / 3 = 3
        np.testing.assert_array_equal(g.values, np.array([[3.0], [6.0], [3.0]], np.float32))
        assert g.values.dtype == np.float32

    def test_without_flag_not_scaled(self):
        layer = Embedding(4, 2, dtype=np.float64)
        layer(np.array([1, 1, 1, 2]))
        go = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
        g = layer.backward(go)
        np.testing.assert_array_equal(g.values, [[9.0, 12.0], [7.0, 8.0]])

    def test_counts_are_per_batch(self):
        # counts are those of each backward call's batch, not of the accumulated history
        layer = Embedding(4, 1, scale_grad_by_freq=True, dtype=np.float64)
        layer([1, 1])
        layer.backward(np.array([[2.0], [4.0]]))  # row 1: 6 / 2 = 3
        layer([1])
        layer.backward(np.array([[5.0]]))  # row 1: 5 / 1
        np.testing.assert_array_equal(layer.grad.rows, [1])
        np.testing.assert_array_equal(layer.grad.values, [[8.0]])

    def test_random_against_reference(self):
        rng = np.random.default_rng(5)
        layer = Embedding(30, 4, scale_grad_by_freq=True, dtype=np.float64)
        ids = rng.integers(0, 10, size=(6, 7))
        go = rng.standard_normal((6, 7, 4))
        layer(ids)
        g = layer.backward(go)
        rows, values = ref_embedding_backward(ids, go, scale_grad_by_freq=True)
        np.testing.assert_array_equal(g.rows, rows)
        np.testing.assert_allclose(g.values, values, rtol=1e-15, atol=0)


# -- mask_zero ----------------------------------------------------------------------------

class TestMaskZero:
    def test_compute_mask(self):
        layer = Embedding(5, 3, mask_zero=True)
        ids = np.array([[0, 1, 2], [3, 0, 0]])
        mask = layer.compute_mask(ids)
        assert mask.shape == ids.shape
        assert mask.dtype == np.bool_
        np.testing.assert_array_equal(mask, [[False, True, True], [True, False, False]])

    def test_compute_mask_list_and_0d(self):
        layer = Embedding(5, 3, mask_zero=True)
        np.testing.assert_array_equal(layer.compute_mask([0, 4, 0]), [False, True, False])
        m = layer.compute_mask(np.int64(0))
        assert m.shape == () and not bool(m)

    def test_compute_mask_rejects_floats(self):
        with pytest.raises(TypeError):
            Embedding(5, 3, mask_zero=True).compute_mask(np.array([0.0, 1.0]))

    def test_without_mask_zero(self):
        assert Embedding(5, 3).compute_mask(np.array([0, 1])) is None

    def test_mask_zero_does_not_change_lookup(self):
        layer = Embedding(5, 3, mask_zero=True, init="normal", seed=0)
        ids = np.array([0, 2, 0])
        np.testing.assert_array_equal(layer(ids), layer.weight[ids])
        assert np.any(layer(ids)[0] != 0)


# -- from_pretrained / trainable ----------------------------------------------------------

class TestFromPretrained:
    def test_seed_docstring_example(self):
        layer = Embedding.from_pretrained(np.eye(3, dtype=np.float32))
        np.testing.assert_array_equal(layer([2]), np.array([[0.0, 0.0, 1.0]], np.float32))

    def test_freeze_default(self):
        w = table(6, 3)
        layer = Embedding.from_pretrained(w)
        assert layer.trainable is False
        assert layer.weight is w
        layer([1, 2])
        assert layer.backward(np.ones((2, 3), np.float32)) is None
        assert layer.grad is None
        assert list(layer.parameters()) == []

    def test_freeze_true_explicit(self):
        layer = Embedding.from_pretrained(table(6, 3), freeze=True)
        layer([0])
        assert layer.backward(np.ones((1, 3), np.float32)) is None
        assert layer.grad is None

    def test_freeze_false_trains(self):
        w = table(6, 3)
        layer = Embedding.from_pretrained(w, freeze=False)
        assert layer.trainable is True
        assert layer.weight is w
        layer([4, 1, 4])
        g = layer.backward(np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]], np.float32))
        np.testing.assert_array_equal(g.rows, [1, 4])
        np.testing.assert_array_equal(g.values, [[2, 2, 2], [4, 4, 4]])
        assert layer.grad is not None

    def test_by_reference(self):
        w = table(6, 3)
        layer = Embedding.from_pretrained(w)
        assert np.shares_memory(layer.weight, w)
        w[5] = 9.0
        np.testing.assert_array_equal(layer([5]), np.full((1, 3), 9.0, np.float32))

    def test_padding_idx_passed_through(self):
        w = table(6, 3)
        before = w.copy()
        layer = Embedding.from_pretrained(w, freeze=False, padding_idx=2)
        assert layer.padding_idx == 2
        np.testing.assert_array_equal(w, before)  # not zeroed
        layer([2, 3])
        g = layer.backward(np.ones((2, 3), np.float32))
        np.testing.assert_array_equal(g.rows, [3])

    def test_float64_keeps_dtype(self):
        w = table(6, 3, np.float64)
        layer = Embedding.from_pretrained(w)
        assert layer.dtype == np.float64
        assert layer.weight is w
        y = layer([0, 5])
        assert y.dtype == np.float64
        np.testing.assert_array_equal(y, w[[0, 5]])

    def test_other_options_passed_through(self):
        w = _renorm_table()
        layer = Embedding.from_pretrained(w, freeze=False, max_norm=1.0, norm_type=np.inf,
                                          scale_grad_by_freq=True, mask_zero=True,
                                          input_length=2)
        assert layer.max_norm == 1.0 and layer.norm_type == np.inf
        assert layer.scale_grad_by_freq and layer.mask_zero and layer.input_length == 2
        layer([[2, 2]])
        np.testing.assert_allclose(w[2], np.array([6.0, 8.0, 0.0]) / (8.0 + 1e-7), rtol=1e-14)
        g = layer.backward(np.array([[[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]]]))
        np.testing.assert_array_equal(g.values, [[2.0, 2.0, 2.0]])

    def test_read_only_table(self):
        w = table(6, 3)
        w.flags.writeable = False
        layer = Embedding.from_pretrained(w)
        assert layer.weight is w
        ids = np.array([[5, 0], [0, 3]])
        np.testing.assert_array_equal(layer(ids), w[ids])
        # a trainable layer over a read-only table can still compute gradients
        layer = Embedding.from_pretrained(w, freeze=False)
        layer(ids)
        g = layer.backward(np.ones((2, 2, 3), np.float32))
        np.testing.assert_array_equal(g.rows, [0, 3, 5])
        np.testing.assert_array_equal(g.values, [[2, 2, 2], [1, 1, 1], [1, 1, 1]])

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_memmap_table(self, tmp_path, dtype):
        path = tmp_path / "table.bin"
        data = table(50, 8, dtype)
        mm = np.memmap(path, dtype=dtype, mode="w+", shape=(50, 8))
        mm[:] = data
        mm.flush()
        del mm
        ro = np.memmap(path, dtype=dtype, mode="r", shape=(50, 8))
        assert not ro.flags.writeable
        layer = Embedding.from_pretrained(ro)
        assert layer.weight is ro
        assert layer.dtype == dtype
        ids = np.random.default_rng(0).integers(0, 50, size=(4, 6))
        y = layer(ids)
        assert type(y) is np.ndarray
        np.testing.assert_array_equal(y, data[ids])
        out = np.zeros((4, 6, 8), dtype)
        assert layer(ids, out=out) is out
        np.testing.assert_array_equal(out, data[ids])

    @pytest.mark.parametrize("bad, exc", [([[1.0, 2.0]], TypeError),
                                          (np.zeros((3, 2), np.int64), TypeError),
                                          (np.zeros(3, np.float32), ValueError),
                                          (np.zeros((4, 4), np.float32)[:, ::2], ValueError)])
    def test_bad_weights(self, bad, exc):
        with pytest.raises(exc):
            Embedding.from_pretrained(bad)


class TestTrainable:
    def test_trainable_false_backward_none(self):
        layer = Embedding(5, 3, trainable=False, seed=0)
        y = layer([1, 2, 1])
        np.testing.assert_array_equal(y, layer.weight[[1, 2, 1]])
        assert layer.backward(np.ones((3, 3), np.float32)) is None
        assert layer.grad is None
        # even without a forward, or with bad grad_output, nothing is computed
        fresh = Embedding(5, 3, trainable=False)
        assert fresh.backward(np.ones((2, 3), np.float32)) is None
        assert fresh.grad is None


# -- bad ids change nothing ---------------------------------------------------------------

BAD_IDS = [
    (np.array([0, 1, -1, 2]), IndexError, "ids[2] = -1"),
    (np.array([0, 4, 1]), IndexError, "ids[1] = 4"),
    (np.array([[0, 1], [9, 2]]), IndexError, "ids[1, 0] = 9"),
    (np.array([[0, 1], [2, -3]]), IndexError, "ids[1, 1] = -3"),
    (np.array([3, 100, -1]), IndexError, "ids[1] = 100"),  # the first bad one is named
    (np.array([0.0, 1.0, 2.0]), TypeError, "integers"),
    (np.array([True, False, True]), TypeError, "boolean"),
    (np.array(["0", "1", "2"]), TypeError, "integers"),
]


class TestBadIds:
    @pytest.mark.parametrize("ids, exc, msg", BAD_IDS)
    def test_message(self, ids, exc, msg):
        layer = Embedding(4, 3)
        with pytest.raises(exc, match=re.escape(msg)):
            layer(ids)

    def test_zero_d_bad_id_names_value(self):
        with pytest.raises(IndexError, match="ids = 7"):
            Embedding(4, 3)(np.int64(7))

    def test_huge_uint64(self):
        with pytest.raises(IndexError):
            Embedding(4, 3)(np.array([1, 2 ** 63 + 5], np.uint64))

    def test_index_error_messages_mention_range(self):
        with pytest.raises(IndexError, match=r"negative.*\[0, 4\)"):
            Embedding(4, 3)([-1])
        with pytest.raises(IndexError, match=r"out of range.*4 rows"):
            Embedding(4, 3)([4])

    @pytest.mark.parametrize("ids, exc, msg", BAD_IDS)
    @pytest.mark.parametrize("max_norm", [None, 1.0])
    def test_changes_nothing(self, ids, exc, msg, max_norm):
        w = np.array([[3.0, 4.0, 0.0], [6.0, 8.0, 0.0], [0.0, 5.0, 12.0], [2.0, 2.0, 1.0]],
                     np.float32)  # every row is over max_norm=1
        layer = Embedding(weight=w, max_norm=max_norm, trainable=True)
        good = np.array([[3, 3], [3, 3]])
        layer(good)  # renormalises row 3 only (when max_norm is set)
        last_ids = layer._last_ids.copy()
        weight_before = w.copy()
        out = np.full(ids.shape + (3,), -7.0, np.float32)
        with pytest.raises(exc):
            layer(ids)
        with pytest.raises(exc):
            layer(ids, out=out)
        np.testing.assert_array_equal(w, weight_before)  # no renorm of any row
        assert layer.weight is w
        np.testing.assert_array_equal(out, -7.0)
        np.testing.assert_array_equal(layer._last_ids, last_ids)
        assert layer._last_ids.shape == (2, 2)
        # backward still uses the last good forward's ids
        g = layer.backward(np.ones((2, 2, 3), np.float32))
        np.testing.assert_array_equal(g.rows, [3])
        np.testing.assert_array_equal(g.values, [[4.0, 4.0, 4.0]])
        if max_norm is not None:
            # rows 0..2 (which the bad ids name) were not renormalised: still over the norm
            assert np.all(np.linalg.norm(w[:3], axis=1) > 1.0)

    def test_bad_ids_before_any_forward(self):
        layer = Embedding(4, 3, max_norm=0.01, init="normal", seed=0)
        before = layer.weight.copy()
        with pytest.raises(IndexError):
            layer([0, 1, 4])
        assert layer._last_ids is None
        np.testing.assert_array_equal(layer.weight, before)
        with pytest.raises(RuntimeError):
            layer.backward(np.zeros((3, 3), np.float32))

    def test_bad_out_changes_nothing_with_max_norm(self):
        # out is checked before the renorm writes to the table
        w = _renorm_table()
        before = w.copy()
        layer = Embedding(weight=w, max_norm=1.0)
        with pytest.raises(TypeError):
            layer([0, 2], out=np.zeros((2, 3), np.float32))
        with pytest.raises(ValueError):
            layer([0, 2], out=np.zeros((3, 3), np.float64))
        np.testing.assert_array_equal(w, before)
        assert layer._last_ids is None

    def test_input_length_error_changes_nothing(self):
        w = _renorm_table()
        before = w.copy()
        layer = Embedding(weight=w, max_norm=1.0, input_length=3)
        with pytest.raises(ValueError):
            layer([0, 2])
        np.testing.assert_array_equal(w, before)
        assert layer._last_ids is None


# -- property test ------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(v=st.integers(1, 40), d=st.integers(1, 6),
       shape=st.lists(st.integers(0, 5), min_size=0, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_forward_backward_match_numpy(v, d, shape, dtype, seed):
    rng = np.random.default_rng(seed)
    layer = Embedding(v, d, dtype=dtype, init="normal", seed=seed)
    ids = rng.integers(0, v, size=tuple(shape))
    y = layer(ids)
    assert y.shape == tuple(shape) + (d,)
    np.testing.assert_array_equal(y, layer.weight[ids])
    go = rng.standard_normal(tuple(shape) + (d,)).astype(dtype)
    g = layer.backward(go)
    rows, values = ref_embedding_backward(ids, go)
    np.testing.assert_array_equal(g.rows, rows)
    assert g.rows.dtype == np.int64
    assert np.array_equal(g.values, values)
