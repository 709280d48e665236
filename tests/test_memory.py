"""Tables that fastembed allocates start on a 64-byte cache line (fastembed/_memory.py).

Alignment only changes speed, never values: every allocation site is checked for alignment
here, and the values drawn into aligned tables are checked bitwise against the NumPy
expressions they replaced.
"""
import numpy as np
import pytest

import fastembed
from fastembed import optim
from fastembed._ext.threads import PARALLEL_MIN_WORK
from fastembed._memory import (CACHE_LINE, aligned_empty, aligned_full, aligned_like,
                               aligned_zeros, is_aligned)

DTYPES = [np.float32, np.float64]


def _misaligned(shape, dtype, offset=16):
    """A C-contiguous array whose data starts `offset` bytes past a cache line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.zeros(nbytes + 2 * CACHE_LINE, np.uint8)
    start = -buf.ctypes.data % CACHE_LINE + offset
    return buf[start:start + nbytes].view(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES + [np.int64, np.uint8, np.complex128])
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 5), (0, 4), (2, 3, 4), 5])
def test_helpers_shape_dtype_alignment(shape, dtype):
    expect = (shape,) if isinstance(shape, int) else shape
    for a in (aligned_empty(shape, dtype), aligned_zeros(shape, dtype),
              aligned_full(shape, 3, dtype)):
        assert a.shape == expect and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable
        assert is_aligned(a)
    assert not aligned_zeros(shape, dtype).any()
    assert (aligned_full(shape, 3, dtype) == 3).all()


def test_many_allocations_all_aligned():
    # Small arrays come from NumPy's small-block cache at many offsets: every one is aligned.
    arrays = [aligned_empty((n, 3), np.float32) for n in range(1, 200)]
    assert all(is_aligned(a) for a in arrays)
    big = aligned_zeros((1 << 20, 64), np.float32)  # mmap-backed, 16 bytes into a page
    assert is_aligned(big) and not big[::4096].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_aligned_like_copies(dtype):
    src = _misaligned((5, 7), np.float64)
    src[...] = np.arange(35).reshape(5, 7) / 7
    out = aligned_like(src, dtype)
    assert is_aligned(out) and out.dtype == dtype and out.flags.c_contiguous
    assert np.array_equal(out, src.astype(dtype))
    assert not np.shares_memory(out, src)
    same = aligned_like(src[:, ::2])  # non-contiguous input: a contiguous copy
    assert same.dtype == np.float64 and np.array_equal(same, src[:, ::2]) and is_aligned(same)


def test_is_aligned():
    assert not is_aligned(_misaligned((4, 4), np.float32))
    assert is_aligned(_misaligned((4, 4), np.float32, offset=0))


# --- allocation sites -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init", ["uniform", "normal", "zeros"])
def test_layer_weights_aligned_and_same_values(init, dtype):
    layer = fastembed.Embedding(1000, 64, init=init, seed=3, dtype=dtype)
    assert is_aligned(layer.weight) and layer.weight.flags.c_contiguous
    rng = np.random.default_rng(3)
    d = np.dtype(dtype)
    # The expressions these tables were drawn with before they were aligned: same bits.
    expected = {"uniform": lambda: rng.random((1000, 64), dtype=d) * d.type(0.1) - d.type(0.05),
                "normal": lambda: rng.standard_normal((1000, 64), dtype=d),
                "zeros": lambda: np.zeros((1000, 64), d)}[init]()
    assert layer.weight.tobytes() == expected.tobytes()
    bag = fastembed.EmbeddingBag(1000, 64, init=init, seed=3, dtype=dtype)
    assert is_aligned(bag.weight) and bag.weight.tobytes() == expected.tobytes()


def test_callable_init_copied_aligned():
    def init(shape, rng):
        return _misaligned(shape, np.float64) + 1.5
    layer = fastembed.Embedding(10, 6, init=init, dtype=np.float32)
    assert is_aligned(layer.weight) and layer.weight.dtype == np.float32
    assert (layer.weight == 1.5).all()


def test_user_table_used_in_place():
    w = _misaligned((10, 4), np.float32)
    layer = fastembed.Embedding(weight=w)
    assert layer.weight is w                       # never copied to align it
    assert fastembed.Embedding.from_pretrained(w).weight is w


@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_aligned(dtype):
    w = _misaligned((50, 16), dtype)
    w[...] = np.arange(800).reshape(50, 16)
    ids = np.array([[3, 1], [4, 1], [5, 9]])
    # Calls of less than PARALLEL_MIN_WORK elements allocate in C, without alignment (it
    # would cost more than it saves on a few rows); larger ones get an aligned output.
    big_ids = np.arange(50).repeat(PARALLEL_MIN_WORK // 16 + 1)
    for n_threads in (1, 2):
        y = fastembed.gather(w, big_ids, n_threads=n_threads)
        assert is_aligned(y) and np.array_equal(y, w[big_ids])
    pooled = fastembed.embedding_bag(w, ids, mode="sum")
    assert is_aligned(pooled) and np.array_equal(pooled, w[ids].sum(1))
    g = fastembed.coalesce(ids, np.ones(ids.shape + (16,), dtype))
    dense = g.to_dense(50)
    assert is_aligned(dense) and dense[1, 0] == 2 and dense.sum() == 6 * 16


@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: optim.Adagrad(p, initial_accumulator_value=0.25),
    lambda p: optim.RowWiseAdagrad(p),
    lambda p: optim.Adam(p),
], ids=["sgd-momentum", "adagrad", "rowwise-adagrad", "adam"])
def test_optimizer_state_aligned(make):
    layer = fastembed.Embedding(300, 32, seed=0)
    opt = make([layer])
    for state in opt.state[0]:
        if state.size:
            assert is_aligned(state)
    layer([1, 2, 2])
    layer.backward(np.ones((3, 32), np.float32))
    opt.step()
    # after a step the state is still the same aligned buffer, updated in place
    assert all(is_aligned(s) for s in opt.state[0] if s.size)


def test_sgd_momentum_turned_on_later_is_aligned():
    layer = fastembed.Embedding(100, 8, seed=0)
    opt = optim.SGD([layer], lr=0.1)
    opt.momentum = 0.5
    layer([1])
    layer.backward(np.ones((1, 8), np.float32))
    opt.step()
    assert opt.state[0][0].shape == (100, 8) and is_aligned(opt.state[0][0])


@pytest.mark.parametrize("binary", [False, True])
def test_loaded_vectors_aligned(tmp_path, binary):
    words = ["a", "b", "c"]
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / ("v.bin" if binary else "v.txt")
    fastembed.io.save_word2vec(path, fastembed.vectors.Vectors(words, table), binary=binary)
    v = fastembed.io.load_word2vec(path, binary=binary)
    assert is_aligned(v.weight) and np.array_equal(v.weight, table)
    assert is_aligned(v.unit_vectors())


def test_word2vec_tables_aligned_and_same_values():
    from fastembed.models.word2vec import SkipGram
    model = SkipGram([5, 4, 3, 2], dim=24, seed=7)
    assert is_aligned(model.syn0) and is_aligned(model.syn1neg)
    rng = np.random.default_rng(7)
    expected = ((rng.random((4, 24)) * 2.0 - 1.0) / 24).astype(np.float32)   # gensim 4's
    assert model.syn0.tobytes() == expected.tobytes()
    assert not model.syn1neg.any()
