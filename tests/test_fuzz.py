"""Property tests (hypothesis) over every public function that takes ids or tables.

Property: a call either returns what a NumPy reference of ``reference.py`` gives (``E[X]``,
``np.add.at``, ``np.unique`` + ``np.add.at``, a per-bag loop, the optimizers' formulas in the
table's precision), bitwise, or raises TypeError, ValueError or IndexError (RuntimeError
where the API documents it) with a message, and then the table, ``out``, the layer's ``grad``
and the optimizer state are bitwise unchanged.

The oracles (which calls are valid), the references and the judging are those of the fuzz
driver ``tests/fuzz.py`` (``python tests/fuzz.py --calls 100000`` runs the same checks on
random calls for longer); here hypothesis draws the arguments and shrinks failures.

Bugs that fuzzing found keep their reproducers below as regression tests (all fixed; an
open one would be listed in ``fuzz.KNOWN_BUGS`` and marked ``xfail(strict=True)``).
Reproducers that crashed the interpreter run in a subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,  # noqa: E402
                                 precondition, rule)

import fastembed  # noqa: E402
import fuzz as fz  # noqa: E402  (tests/fuzz.py, the fuzz driver)
from fastembed import optim  # noqa: E402
from reference import ref_bag_forward, ref_coalesce, ref_gather, ref_scatter_add  # noqa: E402

VALID, INVALID, EITHER = fz.VALID, fz.INVALID, fz.EITHER

# NaN, infinity and overflowing casts are drawn on purpose (in the inputs and the references).
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# Derandomized, so that the suite is reproducible; FASTEMBED_FUZZ_RANDOM=1 explores new inputs
# at every run (and tests/fuzz.py explores far more).
DERANDOMIZE = not os.environ.get("FASTEMBED_FUZZ_RANDOM")
FAST = settings(max_examples=250, deadline=None, derandomize=DERANDOMIZE,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=80, deadline=None, derandomize=DERANDOMIZE,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True)
def _parallel_scatter_on_small_tables(monkeypatch):
    """Let scatter_add run small tables on several threads, as tests/fuzz.py's main does."""
    from fastembed import functional
    monkeypatch.setattr(functional, "_SCATTER_PARALLEL_MIN_TABLE_BYTES", 0)
    monkeypatch.setattr(functional, "_SCATTER_PARALLEL_MIN_WORK", 0)


def new_ctx():
    """The fuzz driver's judge, generating nothing of the known bugs."""
    return fz.Ctx(seed=0, threads=2, skip_known=True)


def assert_clean(ctx):
    assert not ctx.failures, "\n\n".join(f"{f['kind']} in {f['function']}: {f['detail']}"
                                         for f in ctx.failures)


# =============================================================================================
# Strategies
# =============================================================================================

INT_DTYPES = ["int64", "int32", "int8", "int16", "uint8", "uint16", "uint32", "uint64", ">i8",
              ">i4"]
WRONG_ID_DTYPES = ["float64", "float32", "float16", "bool", "object", "complex64"]
THREADS = st.sampled_from([None, None, 1, 2, -1, 0, 1.5, True, np.int64(2)])


def _extremes(dt, V):
    info = np.iinfo(dt)
    cands = [-1, -2, V, V + 1, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, -2**63, 2**63,
             2**64 - 1, info.max, info.min]
    return sorted({v for v in cands if info.min <= v <= info.max})


@st.composite
def id_arrays(draw, V, max_dims=3, max_side=6, shape=None):
    """Ids: every integer dtype, out-of-range and extreme values, wrong dtypes, layouts."""
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0,
                                      max_side=max_side))
    kind = draw(st.sampled_from(["array"] * 8 + ["wrong", "list"]))
    if kind == "wrong":
        base = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, max(V - 1, 0))))
        return base.astype(draw(st.sampled_from(WRONG_ID_DTYPES)))
    dt = np.dtype(draw(st.sampled_from(INT_DTYPES)))
    native = dt.newbyteorder("=")
    info = np.iinfo(native)
    good = st.integers(0, min(max(V - 1, 0), info.max))
    elements = st.one_of(good, good, good, st.sampled_from(_extremes(native, V))) \
        if draw(st.booleans()) else good
    arr = draw(hnp.arrays(native, shape, elements=elements)).astype(dt)
    if kind == "list":
        return arr.tolist()
    layout = draw(st.sampled_from(["c", "c", "c", "strided", "readonly"]))
    if layout == "strided" and arr.ndim:
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), dt)
        big[..., ::2] = arr
        arr = big[..., ::2]
    elif layout == "readonly":
        arr.flags.writeable = False
    return arr


def float_elements(dtype):
    return st.floats(width=32 if np.dtype(dtype) == np.float32 else 64, allow_nan=True,
                     allow_infinity=True)


@st.composite
def tables(draw, V, D, dtype, writeable=False):
    """A (V, D) table with any floats (NaN, inf, subnormals), or a wrong one."""
    w = draw(hnp.arrays(dtype, (V, D), elements=float_elements(dtype)))
    variant = draw(st.sampled_from(["ok"] * 10 + ["readonly", "strided", "fortran", "float16",
                                                  "int32", "big-endian", "list", "3-D"]))
    if variant == "readonly":
        w.flags.writeable = False
    elif variant == "strided":
        big = np.zeros((V, 2 * D), dtype)
        big[:, ::2] = w
        w = big[:, ::2]
    elif variant == "fortran":
        w = np.asfortranarray(w)
    elif variant == "float16":
        w = w.astype(np.float16)
    elif variant == "int32":
        w = np.nan_to_num(w).clip(-1e6, 1e6).astype(np.int32)
    elif variant == "big-endian":
        w = w.astype(w.dtype.newbyteorder(">"))
    elif variant == "list":
        w = w.tolist()
    elif variant == "3-D":
        w = w.reshape(V, D, 1)
    return w


@st.composite
def grads_like(draw, shape, dtype):
    """A gradient of shape and dtype (NaN and inf included), or a wrong one."""
    g = draw(hnp.arrays(dtype, shape, elements=float_elements(dtype)))
    variant = draw(st.sampled_from(["ok"] * 8 + ["other-float", "wider", "strided", "list",
                                                 "float16", "flat"]))
    if variant == "other-float":
        g = g.astype(np.float64 if np.dtype(dtype) == np.float32 else np.float32)
    elif variant == "wider":
        g = np.zeros(tuple(shape[:-1]) + (shape[-1] + 1,), dtype)
    elif variant == "strided" and shape[-1]:
        big = np.zeros(tuple(shape[:-1]) + (2 * shape[-1],), dtype)
        big[..., ::2] = g
        g = big[..., ::2]
    elif variant == "list":
        g = g.tolist()
    elif variant == "float16":
        g = g.astype(np.float16)
    elif variant == "flat":
        g = g.reshape(-1)
    return g


dims = st.tuples(st.sampled_from([0, 1, 2, 3, 5, 17]), st.sampled_from([0, 1, 2, 3, 8]))
dtypes = st.sampled_from([np.float32, np.float64])


def out_for(draw, shape, dtype, weight, ids):
    """None, a right out, or one of the wrong kinds (shape, dtype, layout, aliasing)."""
    kind = draw(st.sampled_from(["none"] * 5 + ["ok", "ok", "shape", "dtype", "strided",
                                                "readonly", "alias-weight", "alias-ids"]))
    if kind == "none":
        return None
    if kind == "ok":
        return np.full(shape, 7, dtype)
    if kind == "shape":
        return np.zeros(tuple(shape) + (1,), dtype)
    if kind == "dtype":
        return np.zeros(shape, np.float64 if np.dtype(dtype) == np.float32 else np.float32)
    if kind == "strided" and shape and shape[-1]:
        return np.zeros(tuple(shape[:-1]) + (2 * shape[-1],), dtype)[..., ::2]
    if kind == "readonly":
        out = np.zeros(shape, dtype)
        out.flags.writeable = False
        return out
    size = int(np.prod(shape))
    if kind == "alias-weight" and isinstance(weight, np.ndarray) and weight.dtype == dtype \
            and weight.flags.c_contiguous and 0 < size <= weight.size:
        return weight.reshape(-1)[:size].reshape(shape)
    if kind == "alias-ids" and isinstance(ids, np.ndarray) and ids.flags.c_contiguous \
            and not ids.dtype.hasobject \
            and ids.flags.writeable and 0 < size * np.dtype(dtype).itemsize <= ids.nbytes:
        return ids.reshape(-1).view(np.uint8)[:size * np.dtype(dtype).itemsize] \
            .view(dtype).reshape(shape)
    return np.zeros(shape, dtype)


# =============================================================================================
# The functional API
# =============================================================================================

@FAST
@given(data=st.data(), vd=dims, dtype=dtypes, nt=THREADS)
def test_gather(data, vd, dtype, nt):
    V, D = vd
    weight = data.draw(tables(V, D, dtype))
    ids = data.draw(id_arrays(V))
    ok, ishape, flat = fz.classify_ids(ids, V)
    out = out_for(data.draw, (tuple(ishape) if ishape is not None else ()) + (D,), dtype,
                  weight, ids)
    expect, aliased = INVALID, []
    if ok and fz.table_ok(weight) and fz.threads_ok(nt):
        native = isinstance(ids, np.ndarray) and ids.dtype.isnative
        expect, aliased = fz.out_status(out, tuple(ishape) + (D,), weight.dtype, (weight,),
                                        [ids] if native else [], [] if native else [ids])
    expected = ref_gather(weight, flat.reshape(ishape)) if expect != INVALID else None

    def check(res):
        fz.require(out is None or res is out, "out was not returned")
        fz.require_bits(res, expected, "gather")

    ctx = new_ctx()
    ctx.call("gather", expect, lambda: fastembed.gather(weight, ids, out=out, n_threads=nt),
             check, inputs=fz._without([weight, ids], aliased), state=[out])
    assert_clean(ctx)


@FAST
@given(data=st.data(), vd=dims, dtype=dtypes, nt=THREADS)
def test_scatter_add(data, vd, dtype, nt):
    V, D = vd
    out = data.draw(tables(V, D, dtype))
    ids = data.draw(id_arrays(V))
    ok, ishape, flat = fz.classify_ids(ids, V)
    gshape = (tuple(ishape) if ishape is not None else ()) + (D,)
    grad = data.draw(grads_like(gshape, dtype))
    ok = ok and fz.table_ok(out, writeable=True) and fz.threads_ok(nt)
    gok, g2d = fz.grad_ok(grad, gshape, dtype) if ok else (False, None)
    ok = ok and gok and not (isinstance(ids, np.ndarray) and np.may_share_memory(out, ids))
    expected = ref_scatter_add(out, flat, g2d) if ok else None

    def check(res):
        fz.require(res is out, "out was not returned")
        fz.require_bits(out, expected, "scatter_add")

    ctx = new_ctx()
    ctx.call("scatter_add", VALID if ok else INVALID,
             lambda: fastembed.scatter_add(out, ids, grad, n_threads=nt), check,
             inputs=[ids, grad], state=[out])
    assert_clean(ctx)


@FAST
@given(data=st.data(), vd=dims, dtype=dtypes, nt=THREADS,
       num=st.sampled_from(["V", "V", None, 2**62, 2**63, -1, 1.5, True, "V64"]))
def test_coalesce(data, vd, dtype, nt, num):
    V, D = vd
    num = {"V": V, "V64": np.int64(V)}.get(num, num) if isinstance(num, str) else num
    ids = data.draw(id_arrays(max(V, 1) if num is None else V))
    ok_num = num is None or (fz.int_like_ok(num) and int(num.__index__()) >= 0)
    limit = None if num is None or not ok_num else int(num.__index__())
    ok, ishape, flat = fz.classify_ids(ids, limit)
    gshape = (tuple(ishape) if ishape is not None else ()) + (D,)
    grad = data.draw(grads_like(gshape, dtype))
    ok = ok and ok_num and fz.threads_ok(nt)
    if ok:
        g = np.asarray(grad)
        ok = g.dtype in fz.FLOATS and g.dtype.isnative and g.ndim == len(ishape) + 1 and \
            g.shape[:-1] == tuple(ishape)
    expected = None
    if ok:
        g2d = np.ascontiguousarray(g).reshape(int(np.prod(ishape, dtype=np.int64)), g.shape[-1])
        expected = ref_coalesce(flat, g2d)

    ctx = new_ctx()
    ctx.call("coalesce", VALID if ok else INVALID,
             lambda: fastembed.coalesce(ids, grad, num_embeddings=num, n_threads=nt),
             lambda res: fz.require_grad(res, expected, "coalesce"), inputs=[ids, grad])
    assert_clean(ctx)


@st.composite
def bag_args(draw, V, dtype, mode):
    """(ids, offsets, include_last_offset, per_sample_weights), valid or broken."""
    if draw(st.booleans()):
        B, L = draw(st.integers(0, 6)), draw(st.integers(0, 5))
        ids = draw(id_arrays(V, shape=(B, L)))
        offsets = draw(st.sampled_from([None] * 8 + [[0]]))
        include_last = draw(st.sampled_from([False] * 9 + [True]))
        shape = (B, L)
    else:
        N = draw(st.integers(0, 12))
        ids = draw(id_arrays(V, shape=(N,)))
        cuts = sorted(draw(st.lists(st.integers(0, N), max_size=5)))
        include_last = draw(st.booleans())
        offs = ([0] + cuts if cuts or N or draw(st.booleans()) else []) + \
            ([N] if include_last else [])
        broken = draw(st.sampled_from(["none"] * 10 + ["decreasing", "first", "beyond", "last",
                                                       "negative", "empty", "float", "2-D",
                                                       "uint64"]))
        if broken == "decreasing" and len(offs) >= 3:
            offs[1], offs[2] = offs[2] + 1, offs[1]
        elif broken == "first" and offs:
            offs[0] = 1
        elif broken == "beyond" and offs:
            offs[-1] = N + 2
        elif broken == "last" and offs:
            offs[-1] = N - 1
        elif broken == "negative":
            offs = offs + [-1]
        elif broken == "empty":
            offs = []
        offsets = np.array(offs, dtype=np.int64)
        if broken == "float":
            offsets = offsets.astype(float)
        elif broken == "2-D":
            offsets = offsets.reshape(1, -1)
        elif broken == "uint64":
            offsets = np.append(offsets, np.uint64(2**64 - 1)).astype(np.uint64)
        shape = (N,)
    psw = None
    if draw(st.booleans()):
        psw = draw(hnp.arrays(dtype, shape, elements=st.one_of(
            st.sampled_from([1.0, -1.0, 0.0, 0.5]), float_elements(dtype))))
        kind = draw(st.sampled_from(["ok"] * 6 + ["dtype", "longer", "list"]))
        if kind == "dtype":
            psw = psw.astype(np.float64 if np.dtype(dtype) == np.float32 else np.float32)
        elif kind == "longer":
            psw = np.append(psw.reshape(-1), 1).astype(dtype)
        elif kind == "list":
            psw = psw.tolist()
    return ids, offsets, include_last, psw


@FAST
@given(data=st.data(), vd=dims, dtype=dtypes, nt=THREADS,
       mode=st.sampled_from(["sum", "mean", "max", "min"]))
def test_embedding_bag(data, vd, dtype, nt, mode):
    V, D = vd
    weight = data.draw(tables(V, D, dtype))
    ids, offsets, include_last, psw = data.draw(bag_args(V, dtype, mode))
    pad = data.draw(st.sampled_from([None, None, 0, -1, 1, V, -V - 1, True, 1.0]))
    layout = fz.classify_bag(ids, offsets, include_last, psw, mode, np.dtype(dtype), V) \
        if fz.table_ok(weight) else None
    pok, padr = fz.padding_ok(pad, V)
    ok = layout is not None and pok and fz.threads_ok(nt)
    B = layout[1].size - 1 if layout is not None else 1
    out = out_for(data.draw, (B, D), dtype, weight, ids)
    expect, aliased = INVALID, []
    if ok:
        expect, aliased = fz.bag_out_status(out, (B, D), weight, ids, offsets, psw)
    expected = None
    if expect != INVALID:
        flat, offs, w, _ = layout
        expected = ref_bag_forward(weight, flat, offs, mode, padr, w)[0]

    def check(res):
        fz.require(out is None or res is out, "out was not returned")
        fz.require_bits(res, expected, f"embedding_bag({mode})")

    ctx = new_ctx()
    ctx.call("embedding_bag", expect,
             lambda: fastembed.embedding_bag(weight, ids, offsets, mode=mode,
                                             per_sample_weights=psw,
                                             include_last_offset=include_last,
                                             padding_idx=pad, out=out, n_threads=nt),
             check, inputs=fz._without([weight, ids, offsets, psw], aliased), state=[out])
    assert_clean(ctx)


# =============================================================================================
# Layers and optimizers: a state machine against the fuzz driver's NumPy model
# =============================================================================================

seeds = st.integers(0, 2**32 - 1)


class LayersAndOptimizer(RuleBasedStateMachine):
    """Embedding / EmbeddingBag layers and one optimizer (SGD with or without momentum,
    Adagrad, RowWiseAdagrad, Adam, AdamW), driven by forward, backward, step,
    backward_and_step, zero_grad, hand-made (often malformed) grads and hyper-parameter
    changes, each call checked against the model (weights, grads, optimizer state)."""

    @initialize(seed=seeds, n_layers=st.integers(1, 2), bags=st.lists(st.booleans(),
                                                                        min_size=2, max_size=2))
    def setup(self, seed, n_layers, bags):
        rng = np.random.default_rng(seed)
        self.ctx = new_ctx()
        self.lms = [fz.make_layer(rng, self.ctx, is_bag=bags[k]) for k in range(n_layers)]
        self.opt, self.om = fz.make_optimizer(rng, self.ctx, [lm.layer for lm in self.lms])
        self.broken = False

    def _run(self, op, seed, which, *args):
        if self.broken:
            return
        rng = np.random.default_rng(seed)
        lm = self.lms[which % len(self.lms)]
        status = op(self.ctx, rng, self.lms, self.om, self.opt, *((lm,) if args else ()))
        self.broken = status in ("fail", "end")

    @rule(seed=seeds, which=st.integers(0, 1))
    def forward(self, seed, which):
        self._run(fz.op_forward, seed, which, True)

    @rule(seed=seeds, which=st.integers(0, 1))
    def backward(self, seed, which):
        self._run(fz.op_backward, seed, which, True)

    @rule(seed=seeds, which=st.integers(0, 1))
    def backward_and_step(self, seed, which):
        self._run(fz.op_fused, seed, which, True)

    @rule(seed=seeds)
    def step(self, seed):
        self._run(fz.op_step, seed, 0)

    @rule(seed=seeds, which=st.integers(0, 1))
    def zero_grad(self, seed, which):
        self._run(fz.op_zero_grad, seed, which, True)

    @rule(seed=seeds, which=st.integers(0, 1))
    def hand_made_grad(self, seed, which):
        self._run(fz.op_set_grad, seed, which, True)

    @rule(seed=seeds)
    def change_hyper_parameter(self, seed):
        self._run(fz.op_set_hyper, seed, 0)

    @precondition(lambda self: not self.broken)
    @rule(seed=seeds, which=st.integers(0, 1))
    def scribble_on_forward_inputs(self, seed, which):
        self._run(fz.op_scribble, seed, which, True)

    @invariant()
    def every_call_matched_the_model(self):
        assert_clean(self.ctx)


TestLayersAndOptimizer = LayersAndOptimizer.TestCase
TestLayersAndOptimizer.settings = settings(max_examples=300, stateful_step_count=20,
                                           deadline=None, derandomize=DERANDOMIZE,
                                           suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=250, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds)
def test_fuzz_driver_layer_sequences(seed):
    """The fuzz driver's own sequences (bigger tables, parallel sizes), a few of them."""
    ctx = new_ctx()
    fz.sc_layers(ctx, np.random.default_rng(seed))
    assert_clean(ctx)


# =============================================================================================
# SkipGram.train_step
# =============================================================================================

@SLOW
@given(data=st.data(), V=st.integers(1, 12), dim=st.sampled_from([1, 4]),
       shards=st.integers(1, 3), round_words=st.sampled_from([None, 1, 3]),
       negative=st.integers(1, 3), kind=st.sampled_from(["SkipGram", "CBOW"]),
       words_dtype=st.sampled_from(["int32", "int64", "int8", "uint16", "float64", "bool"]),
       starts_dtype=st.sampled_from(["int64", "int32", "uint32", "uint64", "float64"]),
       lr=st.sampled_from([0.025, 0.0, -1.0, float("nan"), float("inf")]),
       lr_end=st.sampled_from([None, None, 0.0, 0.01, -1.0, float("nan")]))
def test_skipgram_train_step(data, V, dim, shards, round_words, negative, kind, words_dtype,
                             starts_dtype, lr, lr_end):
    words = data.draw(st.lists(st.one_of(st.integers(0, V - 1), st.integers(0, V - 1),
                                         st.sampled_from([-1, V, 127])), max_size=30))
    cuts = data.draw(st.lists(st.integers(0, len(words)), max_size=4))
    starts = [0] + sorted(cuts) + [len(words)]
    broken = data.draw(st.sampled_from(["none"] * 6 + ["decreasing", "end", "first", "empty"]))
    if broken == "decreasing" and len(starts) >= 3:
        starts[1] = starts[2] + 1
    elif broken == "end":
        starts[-1] += 1
    elif broken == "first":
        starts[0] = 1
    elif broken == "empty":
        starts = []
    words = np.array(words, dtype=np.int64)
    if np.dtype(words_dtype).kind in "iu":
        info = np.iinfo(words_dtype)
        words = words[(words >= info.min) & (words <= info.max)]
        starts = [min(s, words.size) for s in starts] if broken == "none" else starts
        if broken == "none":
            starts[-1] = words.size
    batch = (words.astype(words_dtype), np.array(starts, dtype=starts_dtype))
    counts = np.arange(1, V + 1)
    cls = getattr(fastembed, kind)
    model = cls(counts, dim, negative=negative, shards=shards, round_words=round_words, seed=3,
                n_threads=2)
    twin = cls(counts, dim, negative=negative, shards=shards, round_words=round_words, seed=3,
               n_threads=1)

    def rate_ok(r):
        return r == r and r >= 0 and r != float("inf")

    ok = fz.sg_batch_ok(batch, V) and rate_ok(lr) and (lr_end is None or rate_ok(lr_end))
    before = model.syn0.copy()

    def check(res):
        n = batch[0].size
        fz.require(res["count"] == n and 0 <= res["kept"] <= n and res["pairs"] >= 0,
                   f"counters {res}")
        untouched = np.setdiff1d(np.arange(V), batch[0].astype(np.int64))
        fz.require_bits(model.syn0[untouched], before[untouched], "unseen rows of syn0")
        res2 = twin.train_step(batch, lr=lr, lr_end=lr_end, rng=np.random.default_rng(5))
        fz.require(repr(res2) == repr(res), "1 thread and 2 threads disagree")
        fz.require_bits(model.syn0, twin.syn0, "syn0, 1 thread vs 2")
        fz.require_bits(model.syn1neg, twin.syn1neg, "syn1neg, 1 thread vs 2")

    ctx = new_ctx()
    ctx.call(f"{kind}.train_step", VALID if ok else INVALID,
             lambda: model.train_step(batch, lr=lr, lr_end=lr_end,
                                      rng=np.random.default_rng(5)), check,
             inputs=[batch[0], batch[1]], state=[lambda: model.syn0, lambda: model.syn1neg])
    assert_clean(ctx)


@pytest.mark.parametrize("negative", [0, -1])
def test_word2vec_models_refuse_no_negative_samples(negative):
    for cls in (fastembed.SkipGram, fastembed.CBOW):
        with pytest.raises(ValueError, match="negative"):
            cls(np.arange(1, 5), 4, negative=negative)


@SLOW
@given(seed=seeds)
def test_fuzz_driver_skipgram(seed):
    ctx = new_ctx()
    fz.sc_skipgram(ctx, np.random.default_rng(seed))
    assert_clean(ctx)


# =============================================================================================
# fastembed.io.load_word2vec
# =============================================================================================

def _load_either(path, **kwargs):
    """load_word2vec on a file of unknown content: ValueError/TypeError or a sound result."""
    ctx = new_ctx()

    def check(v):
        fz.require(len(v.words) == v.weight.shape[0] and v.weight.ndim == 2,
                   "words and rows disagree")
        fz.require(len(set(v.words)) == len(v.words), "duplicate words returned")

    ctx.call("io.load_word2vec", EITHER, lambda: fastembed.io.load_word2vec(path, **kwargs),
             check, allowed=(ValueError, TypeError))
    assert_clean(ctx)


@FAST
@given(data=st.binary(max_size=300), header=st.booleans(), binary=st.sampled_from(
    [None, True, False]))
def test_load_word2vec_random_bytes(tmp_path_factory, data, header, binary):
    path = tmp_path_factory.mktemp("w2v") / "random.bin"
    path.write_bytes((b"3 2\n" if header else b"") + data)
    _load_either(path, binary=binary)


@FAST
@given(seed=seeds, glove=st.booleans(), dtype=dtypes,
       limit=st.sampled_from([None, None, 0, 1, 3]),
       duplicates=st.sampled_from(["error", "first"]),
       errors=st.sampled_from(["strict", "replace"]))
def test_load_word2vec_text(tmp_path_factory, seed, glove, dtype, limit, duplicates, errors):
    rng = np.random.default_rng(seed)
    data, desc = fz.gen_text_file(rng, glove=glove)
    expect, words, weight = fz.expect_text(desc, np.dtype(dtype), limit, duplicates, errors)
    path = tmp_path_factory.mktemp("w2v") / "vectors.txt"
    path.write_bytes(data)

    def check(v):
        if words is not None:   # None: the outcome is not specified (truncated past limit)
            fz.require(list(v.words) == words, f"words {v.words} != {words}")
            fz.require_bits(v.weight, weight, "values")

    ctx = new_ctx()
    ctx.call("io.load_word2vec", expect,
             lambda: fastembed.io.load_word2vec(path, binary=False, no_header=glove,
                                                limit=limit, dtype=dtype, errors=errors,
                                                duplicates=duplicates),
             check, allowed=(ValueError, TypeError), note=repr(data[:200]))
    assert_clean(ctx)


@FAST
@given(seed=seeds, dtype=dtypes, limit=st.sampled_from([None, None, 1]),
       duplicates=st.sampled_from(["error", "first"]), mutate=st.booleans())
def test_load_word2vec_binary(tmp_path_factory, seed, dtype, limit, duplicates, mutate):
    rng = np.random.default_rng(seed)
    data, desc = fz.gen_binary_file(rng)
    path = tmp_path_factory.mktemp("w2v") / "vectors.bin"
    if mutate:
        path.write_bytes(fz.mutate(rng, data))
        _load_either(path, binary=True, dtype=dtype)
        return
    path.write_bytes(data)
    expect, words, weight = fz.expect_binary(desc, np.dtype(dtype), limit, duplicates,
                                             "strict")

    def check(v):
        if words is not None:   # None: the outcome is not specified (truncated past limit)
            fz.require(list(v.words) == words, f"words {v.words} != {words}")
            fz.require_bits(v.weight, weight, "values")

    ctx = new_ctx()
    ctx.call("io.load_word2vec", expect,
             lambda: fastembed.io.load_word2vec(path, binary=True, limit=limit, dtype=dtype,
                                                duplicates=duplicates),
             check, allowed=(ValueError, TypeError))
    assert_clean(ctx)


# =============================================================================================
# The fuzz driver itself
# =============================================================================================

def test_fuzz_driver_short_run(capsys):
    """A few hundred mixed cases in-process: no wrong result, no unexpected exception."""
    status = fz.main(["--calls", "300", "--seed", "7", "--skip-known", "--threads", "2"])
    report = capsys.readouterr().out
    assert status == 0, report
    assert "total" in report


def test_fuzz_driver_reports_a_crashed_child_and_goes_on():
    """--subprocess-chunks: a segfault is a crash with its case; the other cases still run."""
    root = Path(fastembed.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, fz.__file__, "--calls", "120", "--seed", "3",
                           "--skip-known", "--subprocess-chunks", "2", "--threads", "2",
                           "--inject-crash", "30,31,90"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "120 cases" in lines[0]
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[-1] == "3" and total[-3] == total[-2] == "0", proc.stdout   # crashes only
    assert "--replay 30" in proc.stdout and "it crashes alone too" in proc.stdout


# =============================================================================================
# Bugs found by fuzzing: their reproducers, now regression tests
# =============================================================================================

def _run_isolated(code):
    """Run code in a fresh interpreter (it may crash); return the CompletedProcess."""
    env = dict(os.environ)
    root = str(Path(fastembed.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    # run from the directory that holds the fastembed under test: "python -c" puts the
    # working directory first on sys.path, and a source tree there has no compiled kernels
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_skipgram_unsigned_starts_that_decrease():
    """Found by fuzzing (np.diff wrapped around; out-of-bounds reads, a segfault); fixed."""
    proc = _run_isolated("""
        import numpy as np
        from fastembed import SkipGram
        m = SkipGram(np.array([5, 5, 5, 5]), dim=4, sample=0, shards=1)
        starts = np.array([0, 2**63 + 5, 5], np.uint64)   # decreasing as integers
        try:
            m.train_step((np.array([0, 1, 2, 3, 0]), starts), lr=0.1,
                         rng=np.random.default_rng(0))
        except ValueError:
            print("raised")
        """)
    assert proc.returncode == 0 and "raised" in proc.stdout, (proc.returncode, proc.stderr)


def test_skipgram_uint32_starts_that_decrease_are_refused():
    """Found by fuzzing (a sentence of negative length was trained); fixed."""
    m = fastembed.SkipGram(np.array([5, 5, 5, 5]), dim=4, sample=0, shards=1)
    before = m.syn0.copy()
    with pytest.raises(ValueError):
        m.train_step((np.array([0, 1, 2, 3, 0]), np.array([0, 4, 2, 5], np.uint32)), lr=0.1,
                     rng=np.random.default_rng(0))
    np.testing.assert_array_equal(m.syn0, before)


def test_step_after_the_table_was_replaced_by_a_bigger_one():
    """Found by fuzzing (out-of-bounds writes into the optimizer state, a segfault); fixed."""
    proc = _run_isolated("""
        import numpy as np
        from fastembed import Embedding, optim
        layer = Embedding(weight=np.ones((4, 2), np.float32))
        opt = optim.Adam(layer, lr=0.1)
        layer.weight = np.ones((10**7, 2), np.float32)
        layer([10**7 - 1]); layer.backward(np.ones((1, 2), np.float32))
        try:
            opt.step()
        except (ValueError, IndexError):
            print("raised")
        """)
    assert proc.returncode == 0 and "raised" in proc.stdout, (proc.returncode, proc.stderr)


def test_step_after_a_table_became_read_only():
    a = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
    b = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
    opt = optim.Adam([a, b], lr=0.1)
    for layer in (a, b):
        layer([1])
        layer.backward(np.ones((1, 2), np.float32))
    b.weight.flags.writeable = False
    with pytest.raises(ValueError):
        opt.step()
    np.testing.assert_array_equal(a.weight, 1)
    assert opt.steps == [0, 0]


def test_load_word2vec_huge_header_is_a_value_error(tmp_path):
    """Found by fuzzing (then a MemoryError from allocating the announced table)."""
    path = tmp_path / "huge.txt"
    path.write_text("100000000000 1000000\nw 1 2\n")
    with pytest.raises(ValueError):
        fastembed.io.load_word2vec(path)


def test_coalesce_num_embeddings_of_2_64():
    g = fastembed.coalesce([1], np.ones((1, 2), np.float32), num_embeddings=2**64)
    assert g.rows.tolist() == [1]


def test_fused_bag_step_with_an_infinite_per_sample_weight():
    bag = fastembed.EmbeddingBag(weight=np.ones((4, 2), np.float32), mode="sum")
    opt = optim.SGD(bag, lr=0.1)
    bag(np.array([1, 2]), np.array([0]), per_sample_weights=np.array([np.inf, 1], np.float32))
    with pytest.raises(ValueError):   # as backward() followed by step() does
        bag.backward_and_step(np.ones((1, 2), np.float32), opt)
    np.testing.assert_array_equal(bag.weight, 1)


def test_fused_bag_step_agrees_with_backward_and_step_on_a_vacuous_infinite_weight():
    # fuzz seed 7, case 264: an infinite per-sample weight in a table of 0 columns reaches no
    # sum, so backward() + step() accept the call; the fused step must accept it too
    outcomes = []
    for fused in (False, True):
        bag = fastembed.EmbeddingBag(weight=np.ones((4, 0), np.float32), mode="sum")
        opt = optim.Adam(bag, lr=0.1)
        bag(np.array([1, 2]), np.array([0]),
            per_sample_weights=np.array([np.inf, 1], np.float32))
        if fused:
            bag.backward_and_step(np.ones((1, 0), np.float32), opt)
        else:
            bag.backward(np.ones((1, 0), np.float32))
            opt.step()
        outcomes.append(opt.state_dict()["steps"])
    assert outcomes == [[1], [1]]


def test_fused_step_that_raises_leaves_the_momentum_state_alone():
    layer = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
    opt = optim.SGD(layer, lr=0.1)
    opt.momentum = 0.9
    layer(np.array([1]))
    before = opt.state_dict()["state"][0]["state1"].shape
    with pytest.raises(ValueError):
        layer.backward_and_step(np.array([[np.nan, 1]], np.float32), opt)
    assert opt.state_dict()["state"][0]["state1"].shape == before


def test_step_that_raises_leaves_the_momentum_state_alone():
    a = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
    b = fastembed.Embedding(weight=np.ones((4, 2), np.float32))
    opt = optim.SGD([a, b], lr=0.1)
    opt.momentum = 0.9
    a([1])
    a.backward(np.ones((1, 2), np.float32))
    b.grad = fastembed.SparseGrad(np.array([7]), np.ones((1, 2), np.float32))  # out of range
    before = [s["state1"].shape for s in opt.state_dict()["state"]]
    with pytest.raises(IndexError):
        opt.step()
    assert [s["state1"].shape for s in opt.state_dict()["state"]] == before
