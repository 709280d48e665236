"""bounds_check= "raise" / "warn" / "zero" on every entry point that takes ids.

Under "warn" and "zero" an id outside [0, V) is padding: its output row is zero and it gets no
gradient. The expectations below are the NumPy references (``reference.py``) of the valid
ids only.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import fastembed
from fastembed import optim
from fastembed._validation import BoundsCheckWarning
from reference import ref_coalesce, ref_scatter_add

V, D = 50, 6
MODES = ("warn", "zero")


def _ids(rng, shape, bad_fraction=0.2, dtype=np.int64):
    ids = rng.integers(0, V, size=shape)
    bad = rng.random(shape) < bad_fraction
    wild = rng.choice(np.array([-1, -V, V, V + 7, 2**40, -(2**40)]), size=shape)
    return np.where(bad, wild, ids).astype(dtype), bad


def _valid(ids):
    return (ids >= 0) & (ids < V)


@pytest.fixture
def table(rng):
    return rng.standard_normal((V, D)).astype(np.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(0,), (7,), (300,), (4, 5, 3), (20_000,)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_gather_bad_ids_are_zero_rows(rng, table, mode, shape, dtype):
    ids, _ = _ids(rng, shape, dtype=dtype)
    ok = _valid(ids)
    expected = np.where(ok[..., None], table[np.where(ok, ids, 0)], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        got = fastembed.gather(table, ids, bounds_check=mode, n_threads=2)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [5, 400, 20_000])
def test_scatter_add_and_coalesce_skip_bad_ids(rng, mode, n):
    ids, _ = _ids(rng, (n,))
    grad = rng.standard_normal((n, D)).astype(np.float32)
    ok = _valid(ids)
    expected = ref_scatter_add(np.zeros((V, D), np.float32), ids[ok], grad[ok])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        out = np.zeros((V, D), np.float32)
        fastembed.scatter_add(out, ids, grad, bounds_check=mode, n_threads=2)
        g = fastembed.coalesce(ids, grad, num_embeddings=V, bounds_check=mode, n_threads=2)
    assert out.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(g.rows, np.unique(ids[ok]))
    assert g.values.tobytes() == expected[g.rows].tobytes()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_embedding_bag_bad_ids_are_padding(rng, table, mode, pool):
    ids, _ = _ids(rng, (60,))
    offsets = np.array([0, 0, 5, 17, 17, 40])
    weights = rng.random(60).astype(np.float32) if pool != "max" else None
    ok = _valid(ids)
    bounds = np.append(offsets, ids.size)
    expected = np.zeros((offsets.size, D), np.float32)
    for b in range(offsets.size):
        sel = np.arange(bounds[b], bounds[b + 1])
        sel = sel[ok[sel]]
        if sel.size == 0:
            continue
        rows = table[ids[sel]]
        w = weights[sel][:, None] if weights is not None else np.ones((sel.size, 1),
                                                                       np.float32)
        if pool == "sum":
            expected[b] = (rows * w).sum(0)
        elif pool == "mean":
            expected[b] = (rows * w).sum(0) / w.sum()
        else:
            expected[b] = rows.max(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        got = fastembed.embedding_bag(table, ids, offsets, mode=pool,
                                      per_sample_weights=weights, bounds_check=mode)
        layer = fastembed.EmbeddingBag(weight=table.copy(), mode=pool, bounds_check=mode)
        y = layer(ids, offsets, per_sample_weights=weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y, got)
    grad = layer.backward(np.ones_like(y))
    assert set(grad.rows.tolist()) <= set(ids[ok].tolist())  # no gradient for bad ids


@pytest.mark.parametrize("mode", MODES)
def test_embedding_layer_forward_backward_and_fused(rng, table, mode):
    ids, _ = _ids(rng, (8, 30))
    ok = _valid(ids)
    grad_out = rng.standard_normal((8, 30, D)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        layer = fastembed.Embedding(weight=table.copy(), bounds_check=mode)
        y = layer(ids)
        np.testing.assert_array_equal(y[~ok], 0)
        np.testing.assert_array_equal(y[ok], table[ids[ok]])
        g = layer.backward(grad_out)
        rows, values = ref_coalesce(ids[ok], grad_out[ok])
        np.testing.assert_array_equal(g.rows, rows)
        assert g.values.tobytes() == values.tobytes()
        # backward with explicit ids follows the layer's mode too
        layer.zero_grad()
        g2 = layer.backward(grad_out, ids=ids)
        assert g2.values.tobytes() == g.values.tobytes()
        # fused backward + Adam equals unfused
        unfused = fastembed.Embedding(weight=table.copy(), bounds_check=mode)
        opt_u = optim.Adam(unfused, lr=0.01)
        unfused(ids)
        unfused.backward(grad_out)
        opt_u.step()
        fused = fastembed.Embedding(weight=table.copy(), bounds_check=mode)
        opt_f = optim.Adam(fused, lr=0.01)
        fused(ids)
        fused.backward_and_step(grad_out, opt_f)
    assert fused.weight.tobytes() == unfused.weight.tobytes()
    untouched = np.setdiff1d(np.arange(V), ids[ok])
    assert fused.weight[untouched].tobytes() == table[untouched].tobytes()


def test_raise_is_the_default_and_names_the_position(table):
    with pytest.raises(IndexError, match=r"ids\[2\] = 50 is out of range"):
        fastembed.gather(table, [0, 1, 50])
    layer = fastembed.Embedding(weight=table.copy())
    with pytest.raises(IndexError, match=r"ids\[1\] = -3 is negative"):
        layer([0, -3])


@pytest.mark.parametrize("call", [
    lambda t: fastembed.gather(t, [0], bounds_check="ignore"),
    lambda t: fastembed.scatter_add(np.zeros_like(t), [0], t[:1], bounds_check=None),
    lambda t: fastembed.coalesce([0], t[:1], bounds_check="clip"),
    lambda t: fastembed.embedding_bag(t, [[0]], bounds_check=True),
    lambda t: fastembed.Embedding(weight=t, bounds_check="wrap"),
    lambda t: fastembed.EmbeddingBag(weight=t, bounds_check="Raise"),
])
def test_unknown_mode_is_a_value_error(table, call):
    with pytest.raises(ValueError, match="bounds_check must be"):
        call(table)


def test_warn_once_per_call_site(table):
    def site_a():
        return fastembed.gather(table, [0, 99], bounds_check="warn")

    def site_b():
        return fastembed.gather(table, [0, -1], bounds_check="warn")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            site_a()
        for _ in range(3):
            site_b()
        site_a()
    ours = [w for w in caught if issubclass(w.category, BoundsCheckWarning)]
    assert len(ours) == 2
    assert "ids[1] = 99" in str(ours[0].message) and "ids[1] = -1" in str(ours[1].message)
    assert all(w.filename == __file__ for w in ours)  # attributed to the caller's line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastembed.gather(table, [0, 99], bounds_check="zero")  # silent
        fastembed.gather(table, [0, 1], bounds_check="warn")   # nothing bad: silent
    assert not [w for w in caught if issubclass(w.category, BoundsCheckWarning)]


def test_valid_ids_give_the_same_bits_in_every_mode(rng, table):
    ids = rng.integers(0, V, size=5000)
    grad = rng.standard_normal((5000, D)).astype(np.float32)
    results = []
    for mode in ("raise", "warn", "zero"):
        out = np.zeros((V, D), np.float32)
        fastembed.scatter_add(out, ids, grad, bounds_check=mode)
        results.append((fastembed.gather(table, ids, bounds_check=mode).tobytes(),
                        out.tobytes()))
    assert results[0] == results[1] == results[2]


# ----------------------------------------------------------------------------------------
# uint64 ids of 2**63 or more: no int64 holds them, yet they are bad ids like any other
# ----------------------------------------------------------------------------------------

HUGE = (2**63, 2**63 + 1, 2**64 - 1)
THREADS = (1, 2)


def _uint64_ids(rng, shape, bad_fraction=0.25):
    """uint64 ids in [0, V), some replaced by bad ones; 2**63 first and 2**64 - 1 last."""
    ids = rng.integers(0, V, size=shape).astype(np.uint64)
    bad = rng.random(shape) < bad_fraction
    wild = rng.choice(np.array((V, V + 7, 2**63 - 1) + HUGE, dtype=np.uint64), size=shape)
    ids = np.where(bad, wild, ids)
    flat = ids.reshape(-1)
    flat[0], flat[-1] = 2**63, 2**64 - 1
    return ids


def _rows_of(ids):
    """The valid ids' rows as int64 (0 where the id is bad), and the mask of valid ids."""
    ok = ids < V
    return np.where(ok, ids, 0).astype(np.int64), ok


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(2,), (7,), (4, 5), (20_000,)])
def test_uint64_huge_ids_gather_zero_rows(rng, table, mode, shape, n_threads):
    ids = _uint64_ids(rng, shape)
    rows, ok = _rows_of(ids)
    expected = np.where(ok[..., None], table[rows], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        got = fastembed.gather(table, ids, bounds_check=mode, n_threads=n_threads)
    assert got.tobytes() == expected.astype(np.float32).tobytes()


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [2, 9, 20_000])
def test_uint64_huge_ids_get_no_gradient(rng, mode, n, n_threads):
    ids = _uint64_ids(rng, (n,))
    rows, ok = _rows_of(ids)
    grad = rng.standard_normal((n, D)).astype(np.float32)
    expected = np.zeros((V, D), np.float32)
    np.add.at(expected, rows[ok], grad[ok])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        out = np.zeros((V, D), np.float32)
        fastembed.scatter_add(out, ids, grad, bounds_check=mode, n_threads=n_threads)
        g = fastembed.coalesce(ids, grad, num_embeddings=V, bounds_check=mode,
                               n_threads=n_threads)
        # no table: only the ids below 2**63 are valid, and they keep their rows
        g_any = fastembed.coalesce(ids, grad, bounds_check=mode, n_threads=n_threads)
    assert out.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(g.rows, np.unique(rows[ok]))
    assert g.values.tobytes() == expected[g.rows].tobytes()
    below = ids < 2**63
    reference = fastembed.coalesce(ids[below].astype(np.int64), grad[below])
    np.testing.assert_array_equal(g_any.rows, reference.rows)
    assert g_any.values.tobytes() == reference.values.tobytes()


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_uint64_huge_ids_are_bag_padding(rng, table, mode, pool, n_threads):
    ids = _uint64_ids(rng, (60,))
    offsets = np.array([0, 0, 5, 17, 17, 40])
    rows, ok = _rows_of(ids)
    # the same bags with the bad ids given as -1 (an ordinary bad id): the same results
    plain = np.where(ok, rows, -1)
    grad_out = rng.standard_normal((offsets.size, D)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        expected = fastembed.embedding_bag(table, plain, offsets, mode=pool, bounds_check=mode)
        got = fastembed.embedding_bag(table, ids, offsets, mode=pool, bounds_check=mode,
                                      n_threads=n_threads)
        layers = []
        for given in (plain, ids):
            layer = fastembed.EmbeddingBag(weight=table.copy(), mode=pool, bounds_check=mode)
            y = layer(given, offsets, n_threads=n_threads)
            layers.append((layer, y, layer.backward(grad_out, n_threads=n_threads)))
        fused = fastembed.EmbeddingBag(weight=table.copy(), mode=pool, bounds_check=mode)
        opt = optim.Adam(fused, lr=0.01)
        fused(ids, offsets)
        fused.backward_and_step(grad_out, opt, n_threads=n_threads)
        unfused = layers[0][0]
        opt_u = optim.Adam(unfused, lr=0.01)
        opt_u.step()
    assert got.tobytes() == expected.tobytes()
    (_, y_plain, g_plain), (_, y_huge, g_huge) = layers
    assert y_huge.tobytes() == y_plain.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(g_huge.rows, g_plain.rows)
    assert g_huge.values.tobytes() == g_plain.values.tobytes()
    assert set(g_huge.rows.tolist()) <= set(rows[ok].tolist())  # no gradient for bad ids
    assert fused.weight.tobytes() == unfused.weight.tobytes()


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("mode", MODES)
def test_uint64_huge_ids_embedding_forward_backward_and_fused(rng, table, mode, n_threads):
    # the same ids with -1 (an ordinary bad id, see the tests above) in place of the bad
    # ones must give the same bits everywhere
    ids = _uint64_ids(rng, (8, 30))
    rows, ok = _rows_of(ids)
    plain = np.where(ok, rows, -1)
    grad_out = rng.standard_normal((8, 30, D)).astype(np.float32)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsCheckWarning)
        for given in (plain, ids):
            layer = fastembed.Embedding(weight=table.copy(), bounds_check=mode)
            y = layer(given, n_threads=n_threads)
            g = layer.backward(grad_out, n_threads=n_threads)
            layer.zero_grad()
            again = layer.backward(grad_out, ids=given, n_threads=n_threads)
            fused = fastembed.Embedding(weight=table.copy(), bounds_check=mode)
            fused(given)
            fused.backward_and_step(grad_out, optim.Adam(fused, lr=0.01), n_threads=n_threads)
            results.append([y, g.rows, g.values, again.rows, again.values, fused.weight])
    for plain_result, huge_result in zip(*results):
        assert huge_result.tobytes() == plain_result.tobytes()
    y, g_rows = results[1][:2]
    assert not y[~ok].any() and y[ok].tobytes() == table[rows[ok]].tobytes()
    assert set(g_rows.tolist()) == set(rows[ok].tolist())  # no gradient for bad ids


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("value", HUGE)
def test_uint64_huge_ids_raise_naming_value_and_position(table, value, n_threads):
    ids = np.array([[1, 2], [value, 3]], np.uint64)
    where = re.escape(f"ids[1, 0] = {value} is out of range")
    grad = np.ones((2, 2, D), np.float32)
    out = np.zeros((V, D), np.float32)
    calls = [
        lambda: fastembed.gather(table, ids, n_threads=n_threads),
        lambda: fastembed.scatter_add(out, ids, grad, n_threads=n_threads),
        lambda: fastembed.coalesce(ids, grad, num_embeddings=V, n_threads=n_threads),
        lambda: fastembed.coalesce(ids, grad, n_threads=n_threads),
        lambda: fastembed.embedding_bag(table, ids, n_threads=n_threads),
        lambda: fastembed.Embedding(weight=table)(ids, n_threads=n_threads),
        lambda: fastembed.EmbeddingBag(weight=table)(ids, n_threads=n_threads),
    ]
    for call in calls:
        with pytest.raises(IndexError, match=where):
            call()
    assert not out.any()
    with pytest.raises(IndexError, match=re.escape(f"ids[2] = {value} is out of range")):
        fastembed.embedding_bag(table, ids.reshape(-1), [0, 3], n_threads=n_threads)


def test_uint64_huge_ids_warn_naming_their_value(table):
    ids = np.array([3, 2**64 - 1, 2**63], np.uint64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = fastembed.gather(table, ids, bounds_check="warn")
        out = np.zeros((V, D), np.float32)
        fastembed.scatter_add(out, ids, np.ones((3, D), np.float32), bounds_check="warn")
        fastembed.coalesce(ids, np.ones((3, D), np.float32), bounds_check="warn")
        fastembed.embedding_bag(table, ids, [0, 2], bounds_check="warn")
        fastembed.Embedding(weight=table, bounds_check="warn")(ids)
    messages = [str(w.message) for w in caught if issubclass(w.category, BoundsCheckWarning)]
    assert len(messages) == 5
    for message in messages:
        assert "2 of 3 ids lie outside" in message
        assert f"(first: ids[1] = {2**64 - 1})" in message
    assert y[0].tobytes() == table[3].tobytes() and not y[1:].any()
    assert out[3].tolist() == [1.0] * D and out.sum() == D
