"""Tests of fastembed.optim (the sparse optimizers) and of the fused ``backward_and_step``.

* Every optimizer is checked, step by step, against the plain NumPy reference of
  ``reference.py`` (``RefOptimizer``), which follows the formulas of ``optim.py`` in the
  table's dtype, with lazy semantics (untouched rows and their state never change).
* Step counting, several layers per optimizer, ``state_dict``/``load_state_dict``,
  hyper-parameter checks and non-finite gradients (which must change nothing).
* ``layer.backward_and_step(g, opt)`` is bitwise ``layer.backward(g); opt.step();
  opt.zero_grad()`` for every optimizer and layer mode, on one and two threads.
* Thread-count determinism, parity with ``torch.optim.SparseAdam`` / ``torch.optim.Adagrad``
  (skipped without torch) and a small training run.
"""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from fastembed import Embedding, EmbeddingBag, optim
from fastembed._ext.threads import PARALLEL_MIN_WORK

from conftest import assert_bitwise_equal, make_ids, make_table
from reference import RefOptimizer, ref_embedding_backward, ref_merge_grads

DTYPES = [np.float32, np.float64]
THREADS = [1, 2]

# Tolerances of the comparisons with a reference that is not bitwise by construction.
TOL = {np.dtype(np.float32): dict(rtol=1e-6, atol=1e-7),
       np.dtype(np.float64): dict(rtol=1e-13, atol=1e-15)}
TORCH_TOL = {np.dtype(np.float32): dict(rtol=1e-6, atol=1e-7),
             np.dtype(np.float64): dict(rtol=1e-12, atol=1e-14)}

# name -> (class name, hyper-parameters). Non-default betas / eps so that each one is used.
OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "adagrad": ("Adagrad", dict(lr=0.1, eps=1e-6, initial_accumulator_value=0.1)),
    "rowwise_adagrad": ("RowWiseAdagrad", dict(lr=0.1, eps=1e-6)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6)),
    "adamw": ("AdamW", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
}
OPT_NAMES = list(OPTIMIZERS)


def make_opt(name, params, **kwargs):
    cls_name, hyper = OPTIMIZERS[name]
    return getattr(optim, cls_name)(params, **{**hyper, **kwargs})


def ref_optimizer(name, weight, hyper=None):
    """The NumPy reference of optimizer ``name`` (a key of OPTIMIZERS) on a copy of weight."""
    cls_name, default = OPTIMIZERS[name]
    return RefOptimizer(cls_name, default if hyper is None else hyper, weight)


def is_exact(name, dtype):
    """Whether the NumPy reference reproduces the kernel's rounding exactly.

    The Adagrad kernel divides by libc's double ``sqrt`` and so, for float32 tables, computes
    ``w + (-lr) * (g / (sqrt(s) + eps))`` with double intermediates: it may differ from the
    float32 reference in the last bit (checked with the tolerance only).
    """
    return not (name == "adagrad" and np.dtype(dtype) == np.float32)


def assert_matches(actual, expected, exact):
    expected = np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, **TOL[expected.dtype])
    if exact:
        assert_bitwise_equal(actual, expected)


def opt_states(opt, k):
    entry = opt.state_dict()["state"][k]
    return entry["state1"], entry["state2"]


def snapshot(opt):
    """Copies of everything an optimizer step may change: weights, state, step counts."""
    # deepcopy: the snapshot must not share memory with the optimizer even if state_dict did
    return [layer.weight.copy() for layer in opt.layers], copy.deepcopy(opt.state_dict())


def assert_unchanged(opt, snap):
    weights, sd = snap
    for layer, w in zip(opt.layers, weights):
        assert_bitwise_equal(layer.weight, w)
    assert_same_state(opt.state_dict(), sd)


def assert_same_state(a, b):
    assert a["kind"] == b["kind"]
    assert a["steps"] == b["steps"]
    assert a["hyper"] == b["hyper"]
    assert len(a["state"]) == len(b["state"])
    for sa, sb in zip(a["state"], b["state"]):
        assert_bitwise_equal(sa["state1"], sb["state1"])
        assert_bitwise_equal(sa["state2"], sb["state2"])


def lookup_and_backward(layer, ids, rng, dtype):
    """forward + backward with a random grad_output; returns the reference gradient."""
    out = layer(ids)
    go = rng.standard_normal(out.shape).astype(dtype)
    layer.backward(go)
    return ref_embedding_backward(ids, go)


# ----------------------------------------------------------------------------------------
# 1. Each optimizer against the NumPy reference, lazy semantics
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPT_NAMES)
def test_matches_numpy_reference(name, dtype, rng):
    V, D = 40, 7
    w0 = make_table((V, D), dtype, rng)
    layer = Embedding(weight=w0.copy())
    opt = make_opt(name, layer)
    ref = ref_optimizer(name, w0)
    exact = is_exact(name, dtype)
    batches = [  # each step: the ids of one or more forward/backward calls
        [rng.integers(0, 20, size=(6, 5))],                  # rows 0..19
        [rng.integers(15, 35, size=(4, 6))],                 # rows 15..34: 0..14 left alone
        [make_ids("zipf", (3, 8), V, rng=rng),               # two calls: accumulated grad
         rng.integers(30, 40, size=(5,))],
        [np.array([[39, 39], [38, 39]])],                    # a repeated row only
        [rng.integers(0, V, size=(2, 3, 4))],
    ]
    seen_untouched_again = False
    prev_rows = None
    for calls in batches:
        before_w = layer.weight.copy()
        before_s1, before_s2 = (s.copy() for s in opt_states(opt, 0))
        rows, values = ref_merge_grads(*[lookup_and_backward(layer, ids, rng, dtype)
                                         for ids in calls])
        assert_bitwise_equal(layer.grad.rows, rows.astype(layer.grad.rows.dtype))
        assert_bitwise_equal(layer.grad.values, values)
        opt.step()
        opt.zero_grad()
        assert layer.grad is None
        ref.step(rows, values)

        assert_matches(layer.weight, ref.w, exact)
        s1, s2 = opt_states(opt, 0)
        assert_matches(s1, ref.state1, exact)
        assert_matches(s2, ref.state2, exact)
        assert not np.array_equal(layer.weight[rows], before_w[rows])

        # Lazy: rows without gradient in this step keep their weights and state bitwise.
        untouched = np.setdiff1d(np.arange(V), rows)
        assert_bitwise_equal(layer.weight[untouched], before_w[untouched])
        for now, before in ((s1, before_s1), (s2, before_s2)):
            if now.size:
                assert_bitwise_equal(now[untouched], before[untouched])
        if prev_rows is not None and np.setdiff1d(prev_rows, rows).size:
            seen_untouched_again = True
        prev_rows = rows
    assert seen_untouched_again  # the schedule does leave rows of step k alone at step k+1
    assert opt.state_dict()["steps"] == [len(batches)]


@pytest.mark.parametrize("name", OPT_NAMES)
def test_default_hyper_parameters_follow_the_reference(name, rng):
    """The defaults (documented in the signatures) are the ones used."""
    cls_name = OPTIMIZERS[name][0]
    defaults = {"SGD": dict(lr=0.05), "Adagrad": dict(lr=0.01, eps=1e-10,
                                                      initial_accumulator_value=0.0),
                "RowWiseAdagrad": dict(lr=0.01, eps=1e-10),
                "Adam": dict(lr=0.001, betas=(0.9, 0.999), eps=1e-8),
                "AdamW": dict(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)}
    hyper = defaults[cls_name]
    if name == "sgd_momentum":
        hyper = dict(hyper, momentum=0.5)
    w0 = make_table((12, 4), np.float64, rng)
    layer = Embedding(weight=w0.copy())
    cls = getattr(optim, cls_name)
    opt = cls(layer, **hyper) if cls_name == "SGD" else cls(layer)  # SGD's lr has no default
    ref = ref_optimizer(name, w0, hyper)
    for _ in range(3):
        rows, values = lookup_and_backward(layer, rng.integers(0, 12, size=7), rng,
                                           np.float64)
        opt.step()
        opt.zero_grad()
        ref.step(rows, values)
    assert_matches(layer.weight, ref.w, exact=True)


def test_sgd_docstring_example():
    layer = Embedding(weight=np.ones((3, 2), np.float32))
    opt = optim.SGD(layer, lr=0.5)
    layer([2])
    layer.backward(np.ones((1, 2), np.float32))
    opt.step()
    assert_bitwise_equal(layer.weight, np.array([[1, 1], [1, 1], [0.5, 0.5]], np.float32))


def test_lazy_momentum_buffer_is_not_decayed(rng):
    """A row's momentum buffer changes only at steps where the row has a gradient."""
    layer = Embedding(weight=np.zeros((4, 1)))
    opt = optim.SGD(layer, lr=1.0, momentum=0.5)
    for ids, g in (([0], 2.0), ([1], 1.0), ([1], 1.0), ([0], 0.0)):
        layer(np.array(ids))
        layer.backward(np.array([[g]]))
        opt.step()
        opt.zero_grad()
    buf = opt_states(opt, 0)[0]
    # row 0: buf 2, then (untouched twice) still 2, then 0.5 * 2 + 0 = 1; w = -2 - 1 = -3
    # row 1: buf 1, then 1.5; w = -1 - 1.5 = -2.5
    assert_bitwise_equal(buf, np.array([[1.0], [1.5], [0.0], [0.0]]))
    assert_bitwise_equal(layer.weight, np.array([[-3.0], [-2.5], [0.0], [0.0]]))


def test_adamw_decays_touched_rows_only():
    w0 = np.full((3, 2), 2.0)
    layer = Embedding(weight=w0.copy())
    opt = optim.AdamW(layer, lr=0.1, weight_decay=0.5)
    layer(np.array([1]))
    layer.backward(np.zeros((1, 2)))  # a zero gradient: only the decay moves the row
    opt.step()
    assert_bitwise_equal(layer.weight[[0, 2]], w0[[0, 2]])
    assert_bitwise_equal(layer.weight[1], np.full(2, 2.0 * (1 - 0.1 * 0.5)))


# ----------------------------------------------------------------------------------------
# 2. Step counting and several layers per optimizer
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPT_NAMES)
def test_layers_have_their_own_state_and_step_count(name, rng):
    """Two layers (float32 and float64, different shapes) in one optimizer; some steps give
    a gradient to one layer only. Adam's bias correction must use each layer's own t."""
    a = Embedding(weight=make_table((20, 4), np.float32, rng))
    b = Embedding(weight=make_table((30, 3), np.float64, rng))
    opt = make_opt(name, [a, b])
    refs = [ref_optimizer(name, a.weight), ref_optimizer(name, b.weight)]
    schedule = [(True, True), (True, False), (False, False), (True, True), (False, True)]
    counts = [0, 0]
    for use in schedule:
        snap = snapshot(opt)
        grads = [lookup_and_backward(layer, rng.integers(0, layer.num_embeddings, size=9),
                                     rng, layer.dtype) if on else None
                 for layer, on in zip((a, b), use)]
        opt.step()
        opt.zero_grad()
        for k, (layer, ref, grad) in enumerate(zip((a, b), refs, grads)):
            if grad is None:  # no gradient: weights, state and t untouched
                assert_bitwise_equal(layer.weight, snap[0][k])
                s1, s2 = opt_states(opt, k)
                assert_bitwise_equal(s1, snap[1]["state"][k]["state1"])
                assert_bitwise_equal(s2, snap[1]["state"][k]["state2"])
                continue
            counts[k] += 1
            ref.step(*grad)
            exact = is_exact(name, layer.dtype)
            assert_matches(layer.weight, ref.w, exact)
            s1, s2 = opt_states(opt, k)
            assert_matches(s1, ref.state1, exact)
            assert_matches(s2, ref.state2, exact)
        assert opt.state_dict()["steps"] == counts
    assert counts == [3, 3]


def test_step_without_any_gradient_changes_nothing(rng):
    layer = Embedding(weight=make_table((10, 3), np.float32, rng))
    opt = optim.Adam(layer)
    snap = snapshot(opt)
    opt.step()
    opt.step()
    assert_unchanged(opt, snap)
    assert opt.state_dict()["steps"] == [0]


def test_adam_bias_correction_uses_steps_with_gradient(rng):
    """t=2 after a skipped step: the same result as two consecutive steps."""
    w0 = make_table((8, 3), np.float32, rng)
    ids = np.array([1, 2, 2])
    gs = [rng.standard_normal((3, 3)).astype(np.float32) for _ in range(2)]
    results = []
    for skip in (False, True):
        layer = Embedding(weight=w0.copy())
        opt = optim.Adam(layer, lr=0.1)
        for k, g in enumerate(gs):
            if skip and k == 1:
                opt.step()  # no gradient: not a step
            layer(ids)
            layer.backward(g)
            opt.step()
            opt.zero_grad()
        assert opt.state_dict()["steps"] == [2]
        results.append(layer.weight.copy())
    assert_bitwise_equal(results[1], results[0])


def test_gradients_accumulate_until_zero_grad(rng):
    w0 = make_table((10, 4), np.float64, rng)
    layer = Embedding(weight=w0.copy())
    opt = optim.SGD(layer, lr=0.25)
    ids1, ids2 = np.array([1, 3, 3]), np.array([3, 7])
    g1, g2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    layer(ids1)
    layer.backward(g1)
    layer(ids2)
    layer.backward(g2)
    opt.step()
    rows, values = ref_merge_grads(ref_embedding_backward(ids1, g1),
                                   ref_embedding_backward(ids2, g2))
    expected = w0.copy()
    expected[rows] = expected[rows] + (-0.25) * values
    assert_bitwise_equal(layer.weight, expected)
    opt.zero_grad()
    assert layer.grad is None


def test_zero_grad_clears_every_layer(rng):
    a = Embedding(weight=make_table((5, 2), np.float32, rng))
    b = EmbeddingBag(weight=make_table((5, 2), np.float32, rng), mode="sum")
    opt = optim.SGD([a, b], lr=0.1)
    a([1])
    a.backward(np.ones((1, 2), np.float32))
    b(np.array([[1, 2]]))
    b.backward(np.ones((1, 2), np.float32))
    opt.zero_grad()
    assert a.grad is None and b.grad is None


# ----------------------------------------------------------------------------------------
# 3. state_dict / load_state_dict
# ----------------------------------------------------------------------------------------

def train(layer, opt, batches, *, fused=False, n_threads=None):
    """Run forward/backward/step over pre-drawn (ids or the forward's keywords, grad_output)
    batches."""
    for inputs, go in batches:
        if isinstance(inputs, dict):
            layer(**inputs, n_threads=n_threads)
        else:
            layer(inputs, n_threads=n_threads)
        if fused:
            layer.backward_and_step(go, opt, n_threads=n_threads)
        else:
            layer.backward(go, n_threads=n_threads)
            opt.step()
            opt.zero_grad()


def draw_batches(n, shape, V, D, dtype, rng, kind="zipf"):
    out = []
    for _ in range(n):
        ids = make_ids(kind, shape, V, rng=rng)
        out.append((ids, rng.standard_normal(shape + (D,)).astype(dtype)))
    return out


@pytest.mark.parametrize("name", OPT_NAMES)
def test_state_dict_holds_plain_copies(name, rng):
    layer = Embedding(weight=make_table((15, 4), np.float32, rng))
    opt = make_opt(name, layer)
    train(layer, opt, draw_batches(2, (5,), 15, 4, np.float32, rng))
    sd = opt.state_dict()
    assert sd["kind"] == OPTIMIZERS[name][0]
    assert sd["steps"] == [2]
    for key, value in OPTIMIZERS[name][1].items():
        assert sd["hyper"][key] == value
    for entry in sd["state"]:
        for arr in entry.values():
            assert type(arr) is np.ndarray
    before = copy.deepcopy(opt.state_dict())
    for entry in sd["state"]:
        for arr in entry.values():
            arr[...] = 123.0
    sd["steps"][0] = 99
    sd["hyper"]["lr"] = 5.0
    assert_same_state(opt.state_dict(), before)
    assert opt.lr == OPTIMIZERS[name][1]["lr"]
    # Picklable, and the round trip is exact.
    assert_same_state(pickle.loads(pickle.dumps(before)), before)


@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPT_NAMES)
def test_resume_from_state_dict_is_bitwise(name, dtype, fused, rng):
    V, D = 60, 5
    w0 = make_table((V, D), dtype, rng)
    first = draw_batches(3, (4, 6), V, D, dtype, rng)
    second = draw_batches(3, (4, 6), V, D, dtype, rng)

    layer = Embedding(weight=w0.copy())
    opt = make_opt(name, layer)
    train(layer, opt, first, fused=fused)
    saved_weight = layer.weight.copy()
    saved = pickle.loads(pickle.dumps(opt.state_dict()))  # as if written to disk
    train(layer, opt, second, fused=fused)

    layer2 = Embedding(weight=saved_weight)
    opt2 = make_opt(name, layer2)
    opt2.load_state_dict(saved)
    assert opt2.state_dict()["steps"] == [3]
    train(layer2, opt2, second, fused=fused)

    assert_bitwise_equal(layer2.weight, layer.weight)
    assert_same_state(opt2.state_dict(), opt.state_dict())


def test_load_state_dict_restores_hyper_parameters_and_copies(rng):
    layer = Embedding(weight=make_table((10, 3), np.float32, rng))
    opt = optim.AdamW(layer, lr=0.02, betas=(0.5, 0.6), eps=1e-5, weight_decay=0.3)
    train(layer, opt, draw_batches(2, (4,), 10, 3, np.float32, rng))
    sd = opt.state_dict()
    other = optim.AdamW(Embedding(weight=layer.weight.copy()))
    other.load_state_dict(sd)
    assert (other.lr, tuple(other.betas), other.eps, other.weight_decay) == (0.02, (0.5, 0.6),
                                                                             1e-5, 0.3)
    # The loaded arrays are copied in: changing the dict afterwards changes nothing.
    loaded = copy.deepcopy(other.state_dict())
    sd["state"][0]["state1"][...] = 7.0
    sd["steps"][0] = 50
    assert_same_state(other.state_dict(), loaded)


def _two_layer_adam(rng, v_second=40, dtype=np.float32, cls=optim.Adam, lr=0.01):
    layers = [Embedding(weight=make_table((40, 4), np.float32, rng)),
              Embedding(weight=make_table((v_second, 4), dtype, rng))]
    opt = cls(layers, lr=lr)
    for layer in layers:
        layer(rng.integers(0, 40, size=6))
        layer.backward(rng.standard_normal((6, 4)).astype(layer.dtype))
    opt.step()
    opt.zero_grad()
    return layers, opt


@pytest.mark.parametrize("case", ["other_class", "adamw_into_adam", "rowwise_into_adagrad",
                                  "layer_count", "state_shape", "state_dtype"])
def test_load_state_dict_rejects_mismatch_and_changes_nothing(case, rng):
    layers, opt = _two_layer_adam(rng)
    if case == "other_class":
        layer = Embedding(weight=make_table((40, 4), np.float32, rng))
        theirs = optim.SGD(layer, lr=0.5, momentum=0.9).state_dict()
    elif case == "adamw_into_adam":
        theirs = _two_layer_adam(rng, cls=optim.AdamW, lr=0.5)[1].state_dict()
    elif case == "rowwise_into_adagrad":
        layer = Embedding(weight=make_table((40, 4), np.float32, rng))
        opt = optim.Adagrad(layer)
        layers = [layer]
        theirs = optim.RowWiseAdagrad(Embedding(weight=layer.weight.copy())).state_dict()
    elif case == "layer_count":
        layer = Embedding(weight=make_table((40, 4), np.float32, rng))
        theirs = optim.Adam(layer, lr=0.5).state_dict()
    elif case == "state_shape":  # the first layer fits, the second does not
        theirs = _two_layer_adam(rng, v_second=41, lr=0.5)[1].state_dict()
    else:
        theirs = _two_layer_adam(rng, dtype=np.float64, lr=0.5)[1].state_dict()
    for entry in theirs["state"]:
        for arr in entry.values():
            arr[...] = 42.0
    theirs["steps"] = [7] * len(theirs["steps"])
    snap = snapshot(opt)
    lr = opt.lr
    with pytest.raises(ValueError):
        opt.load_state_dict(theirs)
    assert_unchanged(opt, snap)
    assert opt.lr == lr
    assert len(opt.state_dict()["state"]) == len(layers)


# ----------------------------------------------------------------------------------------
# 4. Hyper-parameter and parameter validation
# ----------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_HYPER = [
    ("SGD", dict(lr=0)), ("SGD", dict(lr=-0.1)), ("SGD", dict(lr=NAN)), ("SGD", dict(lr=INF)),
    ("SGD", dict(lr=0.1, momentum=-0.5)), ("SGD", dict(lr=0.1, momentum=NAN)),
    ("Adagrad", dict(lr=0.0)), ("Adagrad", dict(lr=-1.0)), ("Adagrad", dict(lr=NAN)),
    ("Adagrad", dict(eps=-1e-10)), ("Adagrad", dict(initial_accumulator_value=-0.1)),
    ("RowWiseAdagrad", dict(lr=0)), ("RowWiseAdagrad", dict(eps=-1.0)),
    ("RowWiseAdagrad", dict(lr=NAN)),
    ("Adam", dict(lr=0)), ("Adam", dict(lr=-0.001)), ("Adam", dict(lr=NAN)),
    ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(betas=(1.0, 0.999))), ("Adam", dict(betas=(0.9, 1.0))),
    ("Adam", dict(betas=(-0.1, 0.999))), ("Adam", dict(betas=(0.9, 1.5))),
    ("Adam", dict(betas=(NAN, 0.999))), ("Adam", dict(betas=(0.9,))),
    ("Adam", dict(betas=(0.9, 0.99, 0.999))),
    ("AdamW", dict(weight_decay=-0.01)), ("AdamW", dict(weight_decay=NAN)),
    ("AdamW", dict(lr=0)), ("AdamW", dict(betas=(0.9, 1.0))), ("AdamW", dict(eps=-1.0)),
]
# A wrong type is a TypeError (the shared rules of fastembed._validation).
BAD_HYPER_TYPES = [
    ("SGD", dict(lr=True)), ("SGD", dict(lr="0.1")), ("Adam", dict(betas=0.9)),
    ("Adam", dict(betas="ab")), ("Adam", dict(betas=("0.9", 0.999))),
]


@pytest.mark.parametrize("cls_name, kwargs, exc",
                         [(c, k, ValueError) for c, k in BAD_HYPER]
                         + [(c, k, TypeError) for c, k in BAD_HYPER_TYPES],
                         ids=[f"{c}-{k}" for c, k in BAD_HYPER + BAD_HYPER_TYPES])
def test_bad_hyper_parameters_raise(cls_name, kwargs, exc):
    layer = Embedding(weight=np.ones((3, 2), np.float32))
    if cls_name == "SGD" and "lr" not in kwargs:
        kwargs = dict(kwargs, lr=0.1)
    with pytest.raises(exc) as info:
        getattr(optim, cls_name)(layer, **kwargs)
    assert info.type is exc


@pytest.mark.parametrize("cls_name, kwargs", [
    ("SGD", dict(lr=1e-12, momentum=0.0)), ("Adagrad", dict(eps=0.0)),
    ("RowWiseAdagrad", dict(eps=0)), ("Adam", dict(betas=(0.0, 0.0), eps=0.0)),
    ("Adam", dict(betas=[0.5, 0.25])), ("AdamW", dict(weight_decay=0.0)),
    ("Adam", dict(lr=np.float32(0.5))),
])
def test_edge_hyper_parameters_are_accepted(cls_name, kwargs):
    layer = Embedding(weight=np.ones((3, 2), np.float32))
    opt = getattr(optim, cls_name)(layer, **kwargs)
    for key, value in kwargs.items():
        got = getattr(opt, key)
        assert (tuple(got) == tuple(value)) if key == "betas" else (got == value)


@pytest.mark.parametrize("cls_name", ["SGD", "Adagrad", "RowWiseAdagrad", "Adam", "AdamW"])
def test_parameter_validation(cls_name, readonly_memmap):
    cls = getattr(optim, cls_name)
    kw = dict(lr=0.1)
    ro = np.ones((4, 2), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        cls(Embedding(weight=ro), **kw)
    ro_map = Embedding.from_pretrained(readonly_memmap(np.ones((4, 2), np.float32)),
                                       freeze=False)
    good = Embedding(weight=np.ones((4, 2), np.float32))
    with pytest.raises(ValueError):
        cls([good, ro_map], **kw)
    with pytest.raises(TypeError):
        cls(np.zeros((4, 2), np.float32), **kw)
    with pytest.raises(TypeError):
        cls([good, object()], **kw)
    with pytest.raises(ValueError):
        cls([], **kw)
    with pytest.raises(ValueError):
        cls((), **kw)
    # A tuple of layers and a bag are fine.
    cls((good, EmbeddingBag(weight=np.ones((4, 2), np.float32))), **kw)


# ----------------------------------------------------------------------------------------
# 5. Non-finite gradients
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", OPT_NAMES)
def test_non_finite_gradient_changes_nothing(name, bad, rng):
    a = Embedding(weight=make_table((12, 3), np.float32, rng))
    b = Embedding(weight=make_table((12, 3), np.float32, rng))
    opt = make_opt(name, [a, b])
    train_batches = draw_batches(1, (5,), 12, 3, np.float32, rng)
    for layer in (a, b):  # one good step first, so that the state is not trivial
        layer(train_batches[0][0])
        layer.backward(train_batches[0][1])
    opt.step()
    opt.zero_grad()
    snap = snapshot(opt)
    a(np.array([1, 2, 3]))
    a.backward(rng.standard_normal((3, 3)).astype(np.float32))
    b(np.array([4, 5, 6]))
    go = rng.standard_normal((3, 3)).astype(np.float32)
    go[2, 1] = bad
    b.backward(go)
    with pytest.raises(ValueError, match="NaN or infinity"):
        opt.step()
    assert_unchanged(opt, snap)


# ----------------------------------------------------------------------------------------
# 6. The fused path: backward_and_step == backward; step; zero_grad
# ----------------------------------------------------------------------------------------

# name -> (layer class, constructor options, input style)
LAYER_CONFIGS = {
    "emb": (Embedding, {}, "ids"),
    "emb_padding": (Embedding, {"padding_idx": 0}, "ids"),
    "emb_freq": (Embedding, {"scale_grad_by_freq": True}, "ids"),
    "emb_padding_freq": (Embedding, {"padding_idx": 0, "scale_grad_by_freq": True}, "ids"),
    "bag_sum": (EmbeddingBag, {"mode": "sum"}, "bags"),
    "bag_sum_weighted": (EmbeddingBag, {"mode": "sum"}, "weighted"),
    "bag_mean": (EmbeddingBag, {"mode": "mean"}, "bags"),
    "bag_mean_weighted": (EmbeddingBag, {"mode": "mean"}, "weighted"),
    "bag_max": (EmbeddingBag, {"mode": "max"}, "bags"),
    "bag_sum_padding": (EmbeddingBag, {"mode": "sum", "padding_idx": 0}, "bags"),
    "bag_mean_padding": (EmbeddingBag, {"mode": "mean", "padding_idx": 0}, "bags"),
    "bag_mean_weighted_padding": (EmbeddingBag, {"mode": "mean", "padding_idx": 0},
                                  "weighted"),
    "bag_max_padding": (EmbeddingBag, {"mode": "max", "padding_idx": 0}, "bags"),
    "bag_mean_freq": (EmbeddingBag, {"mode": "mean", "scale_grad_by_freq": True}, "bags"),
    "bag_sum_offsets": (EmbeddingBag, {"mode": "sum", "padding_idx": 1}, "offsets"),
    "bag_mean_offsets": (EmbeddingBag, {"mode": "mean"}, "offsets"),
}
# (ids shape, V, D). "large": ids.size * D and the step's U * D are above PARALLEL_MIN_WORK.
# "sparse": a table so much larger than the batch that the rows are summed by sorting the
# positions, not with a (V,) row map (fastembed._rows.coalesce_checked).
SIZES = {"small": ((6, 5), 50, 7), "large": ((128, 40), 5000, 32),
         "sparse": ((6, 5), 70_000, 3)}
FUSED_RUNS = [("small", 1), ("large", 1), ("large", 2), ("sparse", 2)]


def make_layer(config, weight):
    cls, options, _ = LAYER_CONFIGS[config]
    return cls(weight=weight, **options)


def make_batch(config, size, dtype, rng):
    """The forward arguments of one batch (zipf ids: id 0, the padding row, is hot)."""
    style = LAYER_CONFIGS[config][2]
    shape, V, _ = SIZES[size]
    ids = make_ids("zipf", shape, V, rng=rng)
    if style in ("ids", "bags"):
        return dict(ids=ids)
    if style == "weighted":
        return dict(ids=ids, per_sample_weights=rng.random(shape, dtype=dtype))
    flat = ids.reshape(-1)  # offsets: 1-D ids, shape[0] bags of random sizes, some empty
    offsets = np.sort(rng.integers(0, flat.size + 1, size=shape[0]))
    offsets[:2] = 0
    return dict(ids=flat, offsets=offsets)


@pytest.mark.parametrize("size, n_threads", FUSED_RUNS, ids=[f"{s}-t{t}" for s, t in FUSED_RUNS])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", list(LAYER_CONFIGS))
@pytest.mark.parametrize("name", OPT_NAMES)
def test_fused_equals_backward_then_step(name, config, dtype, size, n_threads, rng):
    _, V, D = SIZES[size]
    w0 = make_table((V, D), dtype, rng)
    unfused, fused = make_layer(config, w0.copy()), make_layer(config, w0.copy())
    opt_u = make_opt(name, unfused, n_threads=n_threads)
    opt_f = make_opt(name, fused, n_threads=n_threads)
    for step in range(3):
        batch = make_batch(config, size, dtype, rng)
        out_u = unfused(**batch, n_threads=n_threads)
        out_f = fused(**batch, n_threads=n_threads)
        assert_bitwise_equal(out_f, out_u)
        go = rng.standard_normal(out_u.shape).astype(dtype)
        before = fused.weight.copy()

        unfused.backward(go, n_threads=n_threads)
        if size == "large" and step == 0 and "max" not in config:  # a parallel step too
            assert unfused.grad.values.size >= PARALLEL_MIN_WORK
        opt_u.step()
        opt_u.zero_grad()
        fused.backward_and_step(go, opt_f, n_threads=n_threads)

        assert fused.grad is None
        assert not np.array_equal(fused.weight, before)
        assert_bitwise_equal(fused.weight, unfused.weight)
        assert_same_state(opt_f.state_dict(), opt_u.state_dict())
    assert opt_f.state_dict()["steps"] == [3]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("config", ["emb", "emb_padding_freq", "bag_mean_weighted"])
@pytest.mark.parametrize("name", OPT_NAMES)
def test_steps_the_same_when_sums_outgrow_the_cache(name, config, n_threads, monkeypatch,
                                                    sorted_coalesces, rng):
    # Uniform ids whose sums outgrow the last-level cache are grouped by sorting
    # (fastembed._rows.sums_miss_the_cache): the same steps, fused or not, as the row map's.
    from fastembed import _rows

    V, D = 20_000, 16
    w0 = make_table((V, D), np.float64, rng)
    batches = []
    for n_bags in (128, 100):   # the second batch reuses the fused step's workspace
        ids = make_ids("uniform", (n_bags, 40), V, rng=rng)
        ids[::5, ::7] = 0       # the padding row of "emb_padding_freq"
        batch = dict(ids=ids)
        if LAYER_CONFIGS[config][2] == "weighted":
            batch["per_sample_weights"] = rng.random(ids.shape)
        out_shape = (n_bags, 40, D) if config.startswith("emb") else (n_bags, D)
        batches.append((batch, rng.standard_normal(out_shape)))
    runs = {}
    for cache in (0, 1):   # unknown: the row map; a 1-byte cache: the sort
        monkeypatch.setattr(_rows, "LAST_LEVEL_CACHE_BYTES", cache)
        for fused in (False, True):
            sorted_coalesces.clear()
            layer = make_layer(config, w0.copy())
            opt = make_opt(name, layer, n_threads=n_threads)
            train(layer, opt, batches, fused=fused, n_threads=n_threads)
            assert bool(sorted_coalesces) == bool(cache)
            runs[cache, fused] = layer.weight, opt.state_dict()
    for key in runs:
        assert_bitwise_equal(runs[key][0], runs[0, False][0])
        assert_same_state(runs[key][1], runs[0, False][1])


@pytest.mark.parametrize("V", [50, 70_000], ids=["row-map", "sorted"])
def test_fused_reuses_its_workspace_and_does_not_pickle_it(V, rng):
    # the summed rows go to a workspace kept between steps; a smaller batch reuses it, a
    # larger one replaces it; results stay bitwise those of backward + step
    w0 = make_table((V, 4), np.float32, rng)
    fused, unfused = Embedding(weight=w0.copy()), Embedding(weight=w0.copy())
    opt_f, opt_u = optim.Adam(fused, lr=0.1), optim.Adam(unfused, lr=0.1)
    sizes = [30, 10, 45, 45, 5]
    kept, distinct = [], []
    for n in sizes:
        ids = make_ids("zipf", (n,), min(V, 50), rng=rng)
        distinct.append(np.unique(ids).size)
        go = rng.standard_normal((n, 4)).astype(np.float32)
        fused(ids)
        fused.backward_and_step(go, opt_f)
        unfused(ids)
        unfused.backward(go)
        opt_u.step()
        opt_u.zero_grad()
        assert_bitwise_equal(fused.weight, unfused.weight)
        kept.append(opt_f._sums[0])
    assert kept[1] is kept[0]                       # fewer rows: the same workspace
    assert kept[0].shape[0] == distinct[0]
    assert kept[-1].shape[0] == max(distinct)       # replaced only when too small
    clone = pickle.loads(pickle.dumps(opt_f))
    assert clone._sums == {}
    assert_same_state(clone.state_dict(), opt_f.state_dict())


@pytest.mark.parametrize("name", OPT_NAMES)
def test_fused_touches_only_its_layer(name, rng):
    a = Embedding(weight=make_table((30, 4), np.float32, rng))
    b = EmbeddingBag(weight=make_table((30, 4), np.float32, rng), mode="mean")
    opt = make_opt(name, [a, b])
    a_w = a.weight.copy()
    a_state = copy.deepcopy(opt.state_dict()["state"][0])
    b(make_ids("zipf", (5, 3), 30, rng=rng))
    b.backward_and_step(rng.standard_normal((5, 4)).astype(np.float32), opt)
    assert opt.state_dict()["steps"] == [0, 1]
    assert_bitwise_equal(a.weight, a_w)
    for key in ("state1", "state2"):
        assert_bitwise_equal(opt.state_dict()["state"][0][key], a_state[key])


def _fused_setup(config, rng, dtype=np.float32):
    layer = make_layer(config, make_table((50, 7), dtype, rng))
    opt = optim.Adam(layer, lr=0.05)
    batch = make_batch(config, "small", dtype, rng)
    train_out = layer(**batch)
    layer.backward_and_step(rng.standard_normal(train_out.shape).astype(dtype), opt)
    batch = make_batch(config, "small", dtype, rng)
    out = layer(**batch)
    return layer, opt, out, batch


FUSED_ERROR_CONFIGS = ["emb", "emb_padding", "bag_sum", "bag_mean_weighted", "bag_max"]


def assert_fused_untouched(layer, opt, snap):
    assert_unchanged(opt, snap)
    assert layer.grad is None


@pytest.mark.parametrize("config", FUSED_ERROR_CONFIGS)
def test_fused_with_pending_grad_raises(config, rng):
    layer, opt, out, batch = _fused_setup(config, rng)
    go = rng.standard_normal(out.shape).astype(np.float32)
    layer.backward(go)
    grad_before = (layer.grad.rows.copy(), layer.grad.values.copy())
    snap = snapshot(opt)
    with pytest.raises(RuntimeError):
        layer.backward_and_step(go, opt)
    assert_unchanged(opt, snap)
    assert_bitwise_equal(layer.grad.rows, grad_before[0])
    assert_bitwise_equal(layer.grad.values, grad_before[1])


@pytest.mark.parametrize("config", FUSED_ERROR_CONFIGS)
def test_fused_before_forward_raises(config, rng):
    layer = make_layer(config, make_table((10, 3), np.float32, rng))
    opt = optim.SGD(layer, lr=0.1)
    snap = snapshot(opt)
    with pytest.raises(RuntimeError):
        layer.backward_and_step(np.ones((2, 3), np.float32), opt)
    assert_fused_untouched(layer, opt, snap)


@pytest.mark.parametrize("config", FUSED_ERROR_CONFIGS)
def test_fused_frozen_layer_raises(config, rng):
    cls, options, _ = LAYER_CONFIGS[config]
    layer = cls(weight=make_table((50, 7), np.float32, rng), trainable=False, **options)
    opt = optim.Adam(layer)
    out = layer(**make_batch(config, "small", np.float32, rng))
    snap = snapshot(opt)
    with pytest.raises(RuntimeError):
        layer.backward_and_step(np.ones(out.shape, np.float32), opt)
    assert_fused_untouched(layer, opt, snap)


@pytest.mark.parametrize("config", FUSED_ERROR_CONFIGS)
def test_fused_layer_not_in_optimizer_raises(config, rng):
    layer, opt, out, batch = _fused_setup(config, rng)
    other = Embedding(weight=make_table((5, 7), np.float32, rng))
    other_opt = optim.Adam(other)
    snap, other_snap = snapshot(opt), snapshot(other_opt)
    with pytest.raises(ValueError):
        layer.backward_and_step(np.ones(out.shape, np.float32), other_opt)
    assert_fused_untouched(layer, opt, snap)
    assert_unchanged(other_opt, other_snap)


@pytest.mark.parametrize("bad", ["shape_rows", "shape_dim", "ndim", "dtype"])
@pytest.mark.parametrize("config", FUSED_ERROR_CONFIGS)
def test_fused_bad_grad_output_raises(config, bad, rng):
    layer, opt, out, batch = _fused_setup(config, rng)
    shape = out.shape
    go = {"shape_rows": np.ones((shape[0] + 1,) + shape[1:], np.float32),
          "shape_dim": np.ones(shape[:-1] + (shape[-1] + 1,), np.float32),
          "ndim": np.ones(shape[:-1], np.float32),
          "dtype": np.ones(shape, np.float64)}[bad]
    snap = snapshot(opt)
    with pytest.raises(TypeError if bad == "dtype" else ValueError):
        layer.backward_and_step(go, opt)
    assert_fused_untouched(layer, opt, snap)
    # The layer still works afterwards.
    layer.backward_and_step(np.ones(shape, np.float32), opt)
    assert opt.state_dict()["steps"] == [2]


@pytest.mark.parametrize("bad", [NAN, INF], ids=["nan", "inf"])
@pytest.mark.parametrize("config", FUSED_ERROR_CONFIGS)
def test_fused_non_finite_grad_output_raises(config, bad, rng):
    layer, opt, out, batch = _fused_setup(config, rng)
    go = rng.standard_normal(out.shape).astype(np.float32)
    go2d = go.reshape(-1, go.shape[-1])
    if isinstance(layer, Embedding):  # a position whose gradient is not dropped (padding)
        pos = int(np.flatnonzero(batch["ids"].reshape(-1) != 0)[-1])
    else:  # these bags are all non-empty, without padding
        pos = go2d.shape[0] // 2
    go2d[pos, 1] = bad
    snap = snapshot(opt)
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer.backward_and_step(go, opt)
    assert_fused_untouched(layer, opt, snap)


@pytest.mark.parametrize("V", [8, 70_000], ids=["row-map", "sorted"])
@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_sum_that_overflows_raises_and_changes_nothing(V, fused):
    """Finite contributions whose sum overflows: step() rejects the coalesced gradient, and
    backward_and_step, bitwise backward() + step(), must reject it too, changing nothing."""
    big = np.finfo(np.float32).max
    layer = Embedding(weight=np.ones((V, 2), np.float32))
    opt = optim.Adam(layer, lr=0.1)
    layer(np.array([3, 5, 3]))
    go = np.array([[big, 1], [1, 1], [big, 1]], np.float32)
    snap = snapshot(opt)
    with pytest.raises(ValueError, match="NaN or infinity"):
        if fused:
            layer.backward_and_step(go, opt)
        else:
            layer.backward(go)
            opt.step()
    assert_unchanged(opt, snap)
    np.testing.assert_array_equal(layer.weight, np.ones((V, 2), np.float32))
    assert opt.state_dict()["steps"] == [0]
    if fused:
        assert layer.grad is None


@pytest.mark.parametrize("case", ["emb_padding_position", "bag_empty", "bag_mean_all_padding"])
def test_fused_and_unfused_agree_on_non_finite_grad_that_contributes_nothing(case):
    """backward_and_step is documented as bitwise backward() + step(). A NaN in grad_output at
    a position whose gradient is dropped (the padding row, an empty bag, a mean bag of padding
    only) never reaches layer.grad, so step() succeeds; the fused path must do the same."""
    w0 = np.arange(10, dtype=np.float32).reshape(5, 2)
    if case == "emb_padding_position":
        def make():
            return Embedding(weight=w0.copy(), padding_idx=0)
        fwd = dict(ids=np.array([0, 1]))
        go = np.array([[np.nan, np.nan], [1, 1]], np.float32)
    elif case == "bag_empty":
        def make():
            return EmbeddingBag(weight=w0.copy(), mode="sum")
        fwd = dict(ids=np.array([1, 2]), offsets=np.array([0, 2]))  # the second bag is empty
        go = np.array([[1, 1], [np.nan, np.nan]], np.float32)
    else:
        def make():
            return EmbeddingBag(weight=w0.copy(), mode="mean", padding_idx=0)
        fwd = dict(ids=np.array([[1, 2], [0, 0]]))
        go = np.array([[1, 1], [np.inf, np.inf]], np.float32)
    outcomes = []
    for fused in (False, True):
        layer = make()
        opt = optim.SGD(layer, lr=0.5)
        layer(**fwd)
        try:
            if fused:
                layer.backward_and_step(go, opt)
            else:
                layer.backward(go)
                opt.step()
                opt.zero_grad()
            outcome = None
        except ValueError as exc:
            outcome = type(exc)
        outcomes.append((outcome, layer.weight.copy(), opt.state_dict()["steps"]))
    (err_u, w_u, steps_u), (err_f, w_f, steps_f) = outcomes
    assert err_u is None  # the unfused gradient holds no NaN
    assert err_f is err_u, "backward_and_step raised where backward() + step() did not"
    assert_bitwise_equal(w_f, w_u)
    assert steps_f == steps_u


def test_invalid_optimizer_n_threads_does_not_advance_the_step_count(rng):
    """An n_threads the optimizer cannot use must fail without changing anything: either at
    construction, or in step() with the weights, state and step count untouched."""
    layer = Embedding(weight=make_table((10, 3), np.float32, rng))
    try:
        opt = optim.Adam(layer, n_threads=0)
    except ValueError:
        return  # rejected up front
    layer(np.array([1, 2]))
    layer.backward(np.ones((2, 3), np.float32))
    snap = snapshot(opt)
    with pytest.raises(ValueError):
        opt.step()
    assert_unchanged(opt, snap)


# ----------------------------------------------------------------------------------------
# 7. Determinism over thread counts
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
@pytest.mark.parametrize("config", ["emb_freq", "bag_mean_weighted_padding", "bag_max"])
@pytest.mark.parametrize("name", OPT_NAMES)
def test_results_do_not_depend_on_thread_count(name, config, fused, rng):
    _, V, D = SIZES["large"]
    w0 = make_table((V, D), np.float32, rng)
    batches = []
    for _ in range(3):
        batch = make_batch(config, "large", np.float32, rng)
        n_out = batch["ids"].shape if config.startswith("emb") else batch["ids"].shape[:1]
        batches.append((batch, rng.standard_normal(n_out + (D,)).astype(np.float32)))
    results = []
    for n_threads in THREADS:
        layer = make_layer(config, w0.copy())
        opt = make_opt(name, layer, n_threads=n_threads)
        for batch, go in batches:
            layer(**batch, n_threads=n_threads)
            if fused:
                layer.backward_and_step(go, opt, n_threads=n_threads)
            else:
                layer.backward(go, n_threads=n_threads)
                opt.step()
                opt.zero_grad()
        results.append((layer.weight, opt.state_dict()))
    assert not np.array_equal(results[0][0], w0)
    assert_bitwise_equal(results[1][0], results[0][0])
    assert_same_state(results[1][1], results[0][1])


# ----------------------------------------------------------------------------------------
# 8. Parity with PyTorch
# ----------------------------------------------------------------------------------------

# torch's sparse optimizers warn that sparse invariant checks are off; not our business.
TORCH_QUIET = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")


def eighths(shape, dtype, rng):
    """Gradients that are multiples of 1/8 in [-1, 1]: any summation order gives the same
    exact sums, so fastembed's and torch's coalesced gradients are identical."""
    return (rng.integers(-8, 9, size=shape) / 8).astype(dtype)


def _torch_batches(V, D, dtype, rng, steps=6):
    out = []
    for step in range(steps):
        lo = [0, 20, 0, 30, 5, 0][step % 6]  # varying ranges: some rows skip some steps
        ids = rng.integers(lo, min(lo + 25, V), size=(4, 6))
        out.append((ids, eighths((4, 6, D), dtype, rng)))
    return out


@TORCH_QUIET
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_matches_torch_sparse_adam(dtype, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    V, D = 50, 8
    w0 = make_table((V, D), dtype, rng)
    layer = Embedding(weight=w0.copy())
    opt = optim.Adam(layer, lr=0.01, betas=(0.8, 0.95), eps=1e-6)
    tw = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    topt = torch.optim.SparseAdam([tw], lr=0.01, betas=(0.8, 0.95), eps=1e-6)
    for ids, go in _torch_batches(V, D, dtype, rng):
        layer(ids)
        layer.backward(go)
        opt.step()
        opt.zero_grad()
        F.embedding(torch.from_numpy(ids), tw, sparse=True).backward(torch.from_numpy(go))
        topt.step()
        topt.zero_grad()
        np.testing.assert_allclose(layer.weight, tw.detach().numpy(), **TORCH_TOL[w0.dtype])
    tstate = topt.state[tw]
    m, v = opt_states(opt, 0)
    np.testing.assert_allclose(m, tstate["exp_avg"].numpy(), **TORCH_TOL[w0.dtype])
    np.testing.assert_allclose(v, tstate["exp_avg_sq"].numpy(), **TORCH_TOL[w0.dtype])
    assert opt.state_dict()["steps"] == [int(tstate["step"])]


@TORCH_QUIET
@pytest.mark.parametrize("dtype", DTYPES)
def test_adagrad_matches_torch_adagrad(dtype, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    V, D = 50, 8
    w0 = make_table((V, D), dtype, rng)
    layer = Embedding(weight=w0.copy())
    opt = optim.Adagrad(layer, lr=0.1, eps=1e-10, initial_accumulator_value=0.1)
    tw = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    topt = torch.optim.Adagrad([tw], lr=0.1, eps=1e-10, initial_accumulator_value=0.1)
    for ids, go in _torch_batches(V, D, dtype, rng):
        layer(ids)
        layer.backward(go)
        opt.step()
        opt.zero_grad()
        F.embedding(torch.from_numpy(ids), tw, sparse=True).backward(torch.from_numpy(go))
        topt.step()
        topt.zero_grad()
        np.testing.assert_allclose(layer.weight, tw.detach().numpy(), **TORCH_TOL[w0.dtype])
    np.testing.assert_allclose(opt_states(opt, 0)[0], topt.state[tw]["sum"].numpy(),
                               **TORCH_TOL[w0.dtype])


@TORCH_QUIET
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_bag_sum_adam_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    V, D, B, L = 200, 16, 32, 10
    w0 = make_table((V, D), dtype, rng)
    layer = EmbeddingBag(weight=w0.copy(), mode="sum")
    opt = optim.Adam(layer, lr=0.01)
    tbag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(w0.copy()), freeze=False,
                                                 mode="sum", sparse=True)
    topt = torch.optim.SparseAdam(list(tbag.parameters()), lr=0.01)
    for _ in range(4):
        ids = make_ids("zipf", (B, L), V, rng=rng)
        out = layer(ids)
        tout = tbag(torch.from_numpy(ids))
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-5 if dtype == np.float32
                                   else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)
        go = eighths((B, D), dtype, rng)
        layer.backward_and_step(go, opt)
        tout.backward(torch.from_numpy(go))
        topt.step()
        topt.zero_grad()
        np.testing.assert_allclose(layer.weight, tbag.weight.detach().numpy(),
                                   **TORCH_TOL[w0.dtype])


# ----------------------------------------------------------------------------------------
# 9. A small training run
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [False, True], ids=["unfused", "fused"])
def test_adam_learns_a_target_table(fused, rng):
    V, D, N = 50, 8, 64
    target = rng.standard_normal((V, D)).astype(np.float32)
    layer = Embedding(V, D, seed=0)
    opt = optim.Adam(layer, lr=0.05)

    def table_loss():
        return float(np.mean((layer.weight - target) ** 2))

    first = table_loss()
    batch_losses = []
    for _ in range(200):
        ids = rng.integers(0, V, size=N)
        out = layer(ids)
        diff = out - target[ids]
        batch_losses.append(float(np.mean(diff ** 2)))
        go = (2.0 / diff.size) * diff  # d mean(diff^2) / d out
        if fused:
            layer.backward_and_step(go.astype(np.float32), opt)
        else:
            layer.backward(go.astype(np.float32))
            opt.step()
            opt.zero_grad()
    assert np.isfinite(layer.weight).all()
    assert table_loss() < first / 1000
    assert np.mean(batch_losses[-10:]) < np.mean(batch_losses[:10]) / 1000


def test_a_layer_given_twice_is_rejected():
    layer = Embedding(weight=np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="twice"):
        optim.Adam([layer, layer])
