"""Tests of fastembed.word2vec: skip-gram with negative sampling (SGNS).

The core of the file is a pure NumPy reference trainer (float64) that replays the random
draws the kernel reports in ``record=True`` mode (reduced windows, negatives, shard bounds)
and must agree with the compiled kernel to ~1e-12, for one shard (plain online SGD), several
shards (private copies merged in shard order) and hogwild on one thread (shards trained one
after the other straight into the tables). Around it: the update is the gradient of the exact
SGNS loss (finite differences), determinism, the statistics of the random draws, validation,
the corpus and its batches, a small learning test and the built-in corpus.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_bitwise_equal

from fastembed import _word2vec
from fastembed.word2vec import (Corpus, CorpusDataset, SkipGram, _alias_probabilities,
                                alias_table, corpus_sentences, subsample_keep_probability,
                                train_word2vec)

table_sigmoid = np.vectorize(_word2vec.sigmoid, otypes=[np.float64])
table_softplus = np.vectorize(_word2vec.softplus, otypes=[np.float64])


# -- helpers -----------------------------------------------------------------------------------

def zipf_counts(V, top=1000):
    """Zipf-like counts, most frequent first (so that subsampling hits the top words)."""
    return np.maximum(1, np.round(top / np.arange(1, V + 1))).astype(np.int64)


def random_batch(rng, V, lengths, counts=None):
    """A batch (words int32, starts int64) of sentences of the given lengths."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = int(lengths.sum())
    if counts is None:
        words = rng.integers(0, V, size=n)
    else:
        p = np.asarray(counts, dtype=np.float64)
        words = rng.choice(V, size=n, p=p / p.sum())
    starts = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return words.astype(np.int32), starts


def make_model(counts, dim, *, dtype=np.float64, seed=3, scale=0.3, rng=None, **kw):
    """A SkipGram whose two tables are random (syn1neg starts at zero otherwise)."""
    model = SkipGram(counts, dim, dtype=dtype, seed=seed, **kw)
    if rng is not None:
        model.syn0[...] = (rng.standard_normal(model.syn0.shape) * scale).astype(dtype)
        model.syn1neg[...] = (rng.standard_normal(model.syn1neg.shape) * scale).astype(dtype)
    return model


def windows_of(words, starts, reduced, negatives, window, s_lo=0, s_hi=None):
    """Yield (contexts, outs) of every trained window of sentences [s_lo, s_hi), in order.

    Also yields windows without contexts (contexts == []) so that callers can count them.
    """
    if s_hi is None:
        s_hi = starts.size - 1
    for s in range(s_lo, s_hi):
        pos = np.arange(starts[s], starts[s + 1])
        kept = pos[reduced[pos] >= 0]
        n = kept.size
        for i in range(n):
            b = int(reduced[kept[i]])
            lo = max(0, i - window + b)
            hi = min(n, i + window + 1 - b)
            contexts = [int(words[kept[j]]) for j in range(lo, hi) if j != i]
            centre = int(words[kept[i]])
            outs = [centre] + [int(x) for x in negatives[kept[i]] if x >= 0]
            yield contexts, outs


def reference_step(syn0, syn1neg, batch, rec, *, lr, window, mode):
    """Replay one kernel call in float64 NumPy from the recorded draws.

    mode: "private" (each shard on its own copy of the pre-step tables; then each row moves by
    its shards' changes, in shard order, each weighted by 1 / (1 + (k - 1) min(1, lr uses /
    16)) where k is the number of shards that touched the row and uses the number of window
    rows that used it in all shards), or "direct" (one shard, or hogwild on one thread: every
    shard writes straight into the tables, one shard after the other).
    Returns (syn0, syn1neg, loss_sum, pairs, kept).
    """
    words, starts = batch
    bounds = rec["shard_bounds"]
    orig0 = np.array(syn0, dtype=np.float64)
    orig1 = np.array(syn1neg, dtype=np.float64)
    res0, res1 = orig0.copy(), orig1.copy()
    loss = 0.0
    pairs = 0
    kept = int((rec["reduced"] >= 0).sum())
    changes = []  # per shard: (change0, change1, uses0, uses1)
    for t in range(bounds.size - 1):
        uses0 = np.zeros(orig0.shape[0], dtype=np.int64)
        uses1 = np.zeros(orig1.shape[0], dtype=np.int64)
        if mode == "private":
            s0, s1 = orig0.copy(), orig1.copy()
        else:
            s0, s1 = res0, res1
        for contexts, outs in windows_of(words, starts, rec["reduced"], rec["negatives"],
                                         window, bounds[t], bounds[t + 1]):
            if not contexts:
                continue
            inp = s0[contexts]
            out = s1[outs]
            x = inp @ out.T
            label = np.zeros_like(x)
            label[:, 0] = 1.0
            g = lr * (label - table_sigmoid(x))
            loss += (table_softplus(x[:, 0]) - x[:, 0]).sum() + table_softplus(x[:, 1:]).sum()
            pairs += len(contexts)
            np.add.at(uses0, contexts, 1)
            np.add.at(uses1, outs, 1)
            delta_in = g @ out          # from the old out rows
            np.add.at(s1, outs, g.T @ inp)  # from the old in rows
            np.add.at(s0, contexts, delta_in)
        if mode == "private":
            changes.append((s0 - orig0, s1 - orig1, uses0, uses1))
    if mode == "private":
        for k_table, (res, orig) in enumerate(((res0, orig0), (res1, orig1))):
            shards_touching = sum((c[2 + k_table] > 0).astype(np.int64) for c in changes)
            uses = sum(c[2 + k_table] for c in changes)
            weight = 1.0 / (1.0 + (shards_touching - 1).clip(0)
                            * np.minimum(1.0, lr * uses / 16.0))
            for c in changes:
                touched = c[2 + k_table] > 0
                res[touched] += weight[touched, None] * c[k_table][touched]
    return res0, res1, loss, pairs, kept


LENGTHS = [1, 2, 5, 8, 3, 12, 1, 7, 20, 2, 4, 9, 1, 6, 2, 15]


# -- 1. the NumPy reference replay -------------------------------------------------------------

@pytest.mark.parametrize("dim", [7, 16])
@pytest.mark.parametrize("sample", [0.0, 1e-2])
@pytest.mark.parametrize("shards,n_threads", [(1, 1), (2, 2), (5, 2)])
def test_kernel_matches_numpy_reference(rng, dim, sample, shards, n_threads):
    V, window, negative, lr = 50, 3, 4, 0.2
    counts = zipf_counts(V)
    model = make_model(counts, dim, window=window, negative=negative, sample=sample,
                       shards=shards, n_threads=n_threads, rng=rng)
    for step in range(2):  # two steps: the second one reuses the workspace
        batch = random_batch(rng, V, rng.permutation(LENGTHS), counts)
        seed = int(rng.integers(0, 2**62))
        before0, before1 = model.syn0.copy(), model.syn1neg.copy()
        rec = model._step(batch, lr=lr, seed=seed, record=True)
        # recording trains nothing
        assert_bitwise_equal(model.syn0, before0)
        assert_bitwise_equal(model.syn1neg, before1)
        assert rec["shard_bounds"].size == shards + 1
        dropped = rec["reduced"] < 0
        if sample == 0:
            assert not dropped.any()
        else:
            assert dropped.any(), "the sample should drop some frequent words"
        assert (rec["negatives"][dropped] == -1).all()
        assert ((rec["reduced"] >= -1) & (rec["reduced"] < window)).all()
        assert ((rec["negatives"] >= -1) & (rec["negatives"] < V)).all()

        out = model._step(batch, lr=lr, seed=seed, record=False)
        mode = "private" if shards > 1 else "direct"
        ref0, ref1, loss, pairs, kept = reference_step(before0, before1, batch, rec, lr=lr,
                                                       window=window, mode=mode)
        assert out["count"] == batch[0].size
        assert out["kept"] == kept == rec["kept"]
        assert out["pairs"] == pairs
        assert pairs > 0
        np.testing.assert_allclose(model.syn0, ref0, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(model.syn1neg, ref1, rtol=1e-12, atol=1e-14)
        assert out["loss"] == pytest.approx(loss / pairs, rel=1e-12)
        assert not np.array_equal(model.syn0, before0)  # something was trained


def test_float32_kernel_close_to_float64_reference(rng):
    V, dim, window, negative, lr = 50, 16, 3, 4, 0.2
    counts = zipf_counts(V)
    model = make_model(counts, dim, dtype=np.float32, window=window, negative=negative,
                       sample=1e-2, shards=2, n_threads=2, rng=rng)
    batch = random_batch(rng, V, LENGTHS, counts)
    before0, before1 = model.syn0.copy(), model.syn1neg.copy()
    rec = model._step(batch, lr=lr, seed=11, record=True)
    out = model._step(batch, lr=lr, seed=11, record=False)
    ref0, ref1, loss, pairs, _ = reference_step(before0, before1, batch, rec, lr=lr,
                                                window=window, mode="private")
    assert model.syn0.dtype == np.float32
    np.testing.assert_allclose(model.syn0, ref0, rtol=0, atol=2e-5)
    np.testing.assert_allclose(model.syn1neg, ref1, rtol=0, atol=2e-5)
    assert out["loss"] == pytest.approx(loss / pairs, rel=1e-4)


def test_hogwild_one_thread_is_shards_in_sequence(rng):
    # hogwild on one thread: shard after shard, each with its own stream, straight into the
    # tables (no private copies)
    V, dim, window, negative, lr = 50, 7, 3, 4, 0.2
    counts = zipf_counts(V)
    model = make_model(counts, dim, window=window, negative=negative, sample=1e-2, shards=4,
                       n_threads=1, hogwild=True, rng=rng)
    batch = random_batch(rng, V, LENGTHS, counts)
    before0, before1 = model.syn0.copy(), model.syn1neg.copy()
    rec = model._step(batch, lr=lr, seed=5, record=True)
    model._step(batch, lr=lr, seed=5, record=False)
    ref0, ref1, *_ = reference_step(before0, before1, batch, rec, lr=lr, window=window,
                                    mode="direct")
    np.testing.assert_allclose(model.syn0, ref0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.syn1neg, ref1, rtol=1e-12, atol=1e-14)
    private0, *_ = reference_step(before0, before1, batch, rec, lr=lr, window=window,
                                  mode="private")
    assert not np.allclose(private0, ref0, rtol=1e-9, atol=1e-12)  # the modes do differ


def test_negative_zero_and_lr_zero(rng):
    V, dim, window = 20, 5, 2
    counts = zipf_counts(V, 50)
    model = make_model(counts, dim, window=window, negative=0, sample=0.0, shards=2,
                       n_threads=2, rng=rng)
    batch = random_batch(rng, V, [4, 6, 1, 3])
    before0, before1 = model.syn0.copy(), model.syn1neg.copy()
    rec = model._step(batch, lr=0.3, seed=2, record=True)
    assert rec["negatives"].shape == (batch[0].size, 0)
    model._step(batch, lr=0.3, seed=2, record=False)
    ref0, ref1, *_ = reference_step(before0, before1, batch, rec, lr=0.3, window=window,
                                    mode="private")
    np.testing.assert_allclose(model.syn0, ref0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.syn1neg, ref1, rtol=1e-12, atol=1e-14)
    # lr = 0 changes nothing, but still reports a loss
    after0, after1 = model.syn0.copy(), model.syn1neg.copy()
    out = model._step(batch, lr=0.0, seed=3, record=False)
    assert out["loss"] > 0 and out["pairs"] > 0
    np.testing.assert_array_equal(model.syn0, after0)
    np.testing.assert_array_equal(model.syn1neg, after1)


def test_empty_batches(rng):
    model = make_model(zipf_counts(10), 4, shards=3, n_threads=2, rng=rng)
    before0 = model.syn0.copy()
    for starts in ([0], [0, 0, 0]):
        batch = (np.zeros(0, np.int32), np.array(starts, np.int64))
        for record in (False, True):
            out = model._step(batch, lr=0.1, seed=1, record=record)
            assert (out["loss"], out["count"], out["pairs"], out["kept"]) == (0.0, 0, 0, 0)
    assert_bitwise_equal(model.syn0, before0)


# -- 2. the update is the gradient of the exact SGNS loss ---------------------------------------

def exact_softplus(x):
    return np.logaddexp(0.0, x)


def exact_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sgns_loss(syn0, syn1neg, windows):
    total = 0.0
    for contexts, outs in windows:
        if not contexts:
            continue
        x = syn0[contexts] @ syn1neg[outs].T
        total += exact_softplus(-x[:, 0]).sum() + exact_softplus(x[:, 1:]).sum()
    return total


def sgns_gradient(syn0, syn1neg, windows):
    """The analytic gradient of sgns_loss with the exact sigmoid."""
    g0, g1 = np.zeros_like(syn0), np.zeros_like(syn1neg)
    for contexts, outs in windows:
        if not contexts:
            continue
        inp, out = syn0[contexts], syn1neg[outs]
        x = inp @ out.T
        label = np.zeros_like(x)
        label[:, 0] = 1.0
        dx = exact_sigmoid(x) - label  # dL/dx
        np.add.at(g0, contexts, dx @ out)
        np.add.at(g1, outs, dx.T @ inp)
    return g0, g1


def finite_differences(f, tables, h=1e-6):
    grads = []
    for k, table in enumerate(tables):
        grad = np.zeros_like(table)
        for idx in np.ndindex(table.shape):
            saved = table[idx]
            table[idx] = saved + h
            up = f(*tables)
            table[idx] = saved - h
            down = f(*tables)
            table[idx] = saved
            grad[idx] = (up - down) / (2 * h)
        grads.append(grad)
    return grads


@pytest.mark.parametrize("sentence", [[1, 0, 2], [3, 3, 0, 1, 3]])
def test_update_is_minus_lr_times_gradient(rng, sentence):
    # Small V so that negatives repeat, hit the contexts' ids and the centre is skipped.
    V, dim, negative, lr = 6, 7, 4, 1e-7
    counts = np.array([10, 8, 6, 5, 3, 2])
    model = make_model(counts, dim, window=5, negative=negative, sample=0.0, shards=1,
                       n_threads=1, rng=rng, scale=0.6)
    batch = (np.array(sentence, np.int32), np.array([0, len(sentence)], np.int64))
    rec = model._step(batch, lr=lr, seed=9, record=True)
    windows = list(windows_of(*batch, rec["reduced"], rec["negatives"], 5))
    assert len(windows) == len(sentence)
    if len(sentence) == 3:  # a window of 5 covers the whole sentence
        assert windows[1] == ([1, 2], [0] + [int(n) for n in rec["negatives"][1] if n >= 0])
    syn0, syn1 = model.syn0.copy(), model.syn1neg.copy()

    fd0, fd1 = finite_differences(lambda a, b: sgns_loss(a, b, windows), [syn0, syn1])
    an0, an1 = sgns_gradient(syn0, syn1, windows)
    scale = max(np.abs(fd0).max(), np.abs(fd1).max())
    assert scale > 0.1
    np.testing.assert_allclose(an0, fd0, rtol=1e-6, atol=1e-8 * scale)
    np.testing.assert_allclose(an1, fd1, rtol=1e-6, atol=1e-8 * scale)

    out = model._step(batch, lr=lr, seed=9, record=False)
    k0 = (model.syn0 - syn0) / -lr
    k1 = (model.syn1neg - syn1) / -lr
    # the table sigmoid is within 1e-5 of the exact one; the windows run one after the other,
    # which moves the gradient by O(lr)
    np.testing.assert_allclose(k0, fd0, rtol=1e-4, atol=3e-5 * scale)
    np.testing.assert_allclose(k1, fd1, rtol=1e-4, atol=3e-5 * scale)
    np.testing.assert_allclose(k0, an0, rtol=1e-4, atol=3e-5 * scale)
    np.testing.assert_allclose(k1, an1, rtol=1e-4, atol=3e-5 * scale)
    # rows that no window touches do not move, bitwise
    touched_in = {c for contexts, _ in windows for c in contexts}
    touched_out = {o for contexts, outs in windows if contexts for o in outs}
    for r in range(V):
        if r not in touched_in:
            assert_bitwise_equal(model.syn0[r], syn0[r])
        if r not in touched_out:
            assert_bitwise_equal(model.syn1neg[r], syn1[r])
    # the reported loss is the table loss of the starting point, per pair
    pairs = sum(len(c) for c, _ in windows)
    assert out["pairs"] == pairs
    assert out["loss"] == pytest.approx(sgns_loss(syn0, syn1, windows) / pairs, rel=1e-4)


def test_table_sigmoid_and_softplus():
    # inside (-8, 8): linear interpolation of a 1024-step table, within 1e-5 of the exact
    # functions; outside: clamped (sigmoid to 0 / 1, softplus to 0 / x)
    x = np.linspace(-8, 8, 40001)[1:-1]
    np.testing.assert_allclose(table_sigmoid(x), exact_sigmoid(x), rtol=0, atol=1e-5)
    np.testing.assert_allclose(table_softplus(x), exact_softplus(x), rtol=0, atol=1e-5)
    assert (np.diff(table_sigmoid(x)) >= 0).all()
    assert (np.diff(table_softplus(x)) >= 0).all()
    assert _word2vec.sigmoid(0.0) == pytest.approx(0.5, abs=1e-12)
    assert _word2vec.softplus(0.0) == pytest.approx(math.log(2), abs=1e-12)
    for big in (8.0, 9.5, 100.0):
        assert _word2vec.sigmoid(big) == 1.0 and _word2vec.sigmoid(-big) == 0.0
        assert _word2vec.softplus(big) == big and _word2vec.softplus(-big) == 0.0
    # the clamp leaves a jump of sigmoid(-8) ~ 3.4e-4 at the ends of the table
    assert _word2vec.sigmoid(-8 + 1e-9) == pytest.approx(exact_sigmoid(-8.0), rel=1e-6)


# -- 3. determinism ----------------------------------------------------------------------------

def _train(counts, batches, *, dtype, n_threads, hogwild=False, shards=8, seed=4, lr=0.05):
    model = SkipGram(counts, 16, window=3, negative=5, sample=1e-2, dtype=dtype, seed=seed,
                     n_threads=n_threads, hogwild=hogwild, shards=shards)
    for k, batch in enumerate(batches):
        model._step(batch, lr=lr, seed=1000 + k, record=False)
    return model


@pytest.fixture(scope="module")
def det_data():
    rng = np.random.default_rng(77)
    V = 300
    counts = zipf_counts(V, 5000)
    batches = [random_batch(rng, V, rng.integers(1, 40, size=200), counts) for _ in range(3)]
    return counts, batches


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_same_seed_same_threads_is_bitwise_reproducible(det_data, dtype, n_threads):
    counts, batches = det_data
    a = _train(counts, batches, dtype=dtype, n_threads=n_threads)
    b = _train(counts, batches, dtype=dtype, n_threads=n_threads)
    assert_bitwise_equal(a.syn0, b.syn0)
    assert_bitwise_equal(a.syn1neg, b.syn1neg)
    assert np.isfinite(a.syn0).all()
    c = _train(counts, batches, dtype=dtype, n_threads=n_threads, seed=5)
    assert not np.array_equal(a.syn0, c.syn0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_does_not_change_the_result(det_data, dtype):
    counts, batches = det_data
    one = _train(counts, batches, dtype=dtype, n_threads=1)
    two = _train(counts, batches, dtype=dtype, n_threads=2)
    assert_bitwise_equal(one.syn0, two.syn0)
    assert_bitwise_equal(one.syn1neg, two.syn1neg)


def test_two_threads_repeated_three_times(det_data):
    counts, batches = det_data
    runs = [_train(counts, batches, dtype=np.float32, n_threads=2) for _ in range(3)]
    for run in runs[1:]:
        assert_bitwise_equal(run.syn0, runs[0].syn0)
        assert_bitwise_equal(run.syn1neg, runs[0].syn1neg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hogwild_one_thread_equals_deterministic_one_shard(det_data, dtype):
    counts, batches = det_data
    a = _train(counts, batches, dtype=dtype, n_threads=1, hogwild=True, shards=1)
    b = _train(counts, batches, dtype=dtype, n_threads=1, hogwild=False, shards=1)
    assert_bitwise_equal(a.syn0, b.syn0)
    assert_bitwise_equal(a.syn1neg, b.syn1neg)


def test_hogwild_two_threads_runs_and_is_close_in_distribution(det_data):
    # racing threads change the bits, not the statistics of the result: compare with the
    # same algorithm on one thread (shard after shard, no races)
    counts, batches = det_data
    hog = _train(counts, batches, dtype=np.float32, n_threads=2, hogwild=True)
    seq = _train(counts, batches, dtype=np.float32, n_threads=1, hogwild=True)
    init = SkipGram(counts, 16, dtype=np.float32, seed=4).syn0
    for h, d in ((hog.syn0, seq.syn0), (hog.syn1neg, seq.syn1neg)):
        assert np.isfinite(h).all()
        hn, dn = np.linalg.norm(h, axis=1).mean(), np.linalg.norm(d, axis=1).mean()
        assert hn == pytest.approx(dn, rel=0.1)
        assert h.std() == pytest.approx(d.std(), rel=0.1)
    assert not np.array_equal(hog.syn0, init)


def test_workspace_reuse_after_a_larger_batch(det_data):
    # a small step after a big one (the workspace is reused, with other capacities) gives the
    # same result as the small step on a fresh model with the same tables
    counts, batches = det_data
    big = (np.concatenate([b[0] for b in batches]),
           np.concatenate([[0], *[b[1][1:] + sum(x[0].size for x in batches[:k])
                                  for k, b in enumerate(batches)]]))
    small = (batches[0][0][:batches[0][1][20]], batches[0][1][:21])
    a = SkipGram(counts, 16, window=3, negative=5, sample=1e-2, dtype=np.float64, seed=1,
                 n_threads=2, shards=8)
    a._step(big, lr=0.05, seed=1, record=False)
    b = SkipGram(counts, 16, window=3, negative=5, sample=1e-2, dtype=np.float64, seed=1,
                 n_threads=2, shards=8)
    b.load_state_dict(a.state_dict())
    a._step(small, lr=0.05, seed=2, record=False)
    b._step(small, lr=0.05, seed=2, record=False)
    assert_bitwise_equal(a.syn0, b.syn0)
    assert_bitwise_equal(a.syn1neg, b.syn1neg)
    # and the workspace's slot maps are all -1 again between calls
    assert (a._workspace["slots"] == -1).all()


# -- 4. sampling statistics --------------------------------------------------------------------

def chi_square(observed, expected):
    mask = expected > 0
    assert observed[~mask].sum() == 0
    return float((((observed - expected) ** 2)[mask] / expected[mask]).sum()), int(mask.sum()) - 1


def assert_chi_square_ok(observed, p):
    observed = np.asarray(observed, dtype=np.float64)
    stat, df = chi_square(observed, observed.sum() * np.asarray(p))
    assert stat < df + 8 * math.sqrt(2 * df) + 10, (stat, df)


@pytest.mark.parametrize("weights", [
    [1.0],
    [0.0, 3.0],
    [5.0, 0.0, 1.0, 0.0, 2.5, 1e-9, 7.0],
    np.arange(1, 101) ** -0.75,
    np.random.default_rng(0).random(257) * (np.random.default_rng(1).random(257) > 0.3),
])
def test_alias_table_reproduces_the_distribution(weights):
    w = np.asarray(weights, dtype=np.float64)
    accept, alias = alias_table(w)
    assert accept.dtype == np.uint64 and alias.dtype == np.int32
    assert accept.shape == alias.shape == w.shape
    assert (accept <= 2**32).all()
    assert ((alias >= 0) & (alias < w.size)).all()
    p = _alias_probabilities(accept, alias)
    np.testing.assert_allclose(p, w / w.sum(), rtol=0, atol=1e-9)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p[w == 0] == 0).all()


@pytest.mark.parametrize("weights", [[], [0.0, 0.0], [1.0, -1.0], [1.0, np.nan], [np.inf]])
def test_alias_table_rejects_bad_weights(weights):
    with pytest.raises(ValueError):
        alias_table(weights)


def test_subsample_keep_probability_formula():
    counts = np.array([1000, 100, 10, 1, 0])
    sample = 1e-2
    t = sample * counts.sum()
    p = subsample_keep_probability(counts, sample)
    expected = np.minimum(1.0, (np.sqrt(counts[:4] / t) + 1) * t / counts[:4])
    np.testing.assert_allclose(p[:4], expected, rtol=1e-15)
    assert p[4] == 1.0
    assert p[0] < 0.5 and p[3] == 1.0
    assert (subsample_keep_probability(counts, 0) == 1).all()


@pytest.fixture(scope="module")
def big_record():
    V, window, negative = 40, 5, 5
    counts = zipf_counts(V, 2000)
    counts[[7, 23]] = 0  # words that never occur: never drawn as negatives
    rng = np.random.default_rng(123)
    words, starts = random_batch(rng, V, rng.integers(1, 30, size=8000))
    model = SkipGram(counts, 4, window=window, negative=negative, sample=1e-2, seed=1,
                     n_threads=2, shards=8)
    rec = model._step((words, starts), lr=0.025, seed=2024, record=True)
    return model, words, starts, rec


def test_negatives_follow_unigram_to_the_three_quarters(big_record):
    model, words, starts, rec = big_record
    kept = rec["reduced"] >= 0
    neg = rec["negatives"][kept].astype(np.int64)
    centres = np.repeat(words[kept][:, None], neg.shape[1], axis=1)
    draws = np.where(neg < 0, centres, neg)  # a -1 is a draw equal to the centre
    assert ((neg < 0) == (draws == centres)).all()
    observed = np.bincount(draws.ravel(), minlength=model.num_words)
    p = model.counts.astype(np.float64) ** 0.75
    p /= p.sum()
    assert observed[[7, 23]].sum() == 0
    assert draws.size > 100_000
    assert_chi_square_ok(observed, p)
    # and not the plain unigram distribution
    q = model.counts / model.counts.sum()
    stat, df = chi_square(observed.astype(float), observed.sum() * q)
    assert stat > 10 * df


def test_kept_fraction_matches_keep_probability(big_record):
    model, words, starts, rec = big_record
    kept = rec["reduced"] >= 0
    p = subsample_keep_probability(model.counts, model.sample)
    assert p.min() < 0.3  # the test means something
    n = np.bincount(words, minlength=model.num_words)
    k = np.bincount(words[kept], minlength=model.num_words)
    assert (n > 1000).all()
    sigma = np.sqrt(n * p * (1 - p))
    assert (np.abs(k - n * p) <= 5 * sigma + 1).all(), (k, n * p)
    assert rec["kept"] == kept.sum()


def test_reduced_windows_are_uniform(big_record):
    model, words, starts, rec = big_record
    reduced = rec["reduced"][rec["reduced"] >= 0]
    observed = np.bincount(reduced, minlength=model.window)
    assert observed.size == model.window
    assert_chi_square_ok(observed, np.full(model.window, 1 / model.window))


def test_shards_have_distinct_streams():
    counts = zipf_counts(50)
    half = np.arange(200, dtype=np.int32) % 50
    words = np.concatenate([half, half])
    starts = np.array([0, 100, 200, 300, 400], np.int64)
    model = SkipGram(counts, 4, sample=0, shards=2, n_threads=2)
    rec = model._step((words, starts), lr=0.1, seed=1, record=True)
    assert list(rec["shard_bounds"]) == [0, 2, 4]
    assert not np.array_equal(rec["negatives"][:200], rec["negatives"][200:])
    # same seed, same draws; another seed, other draws
    again = model._step((words, starts), lr=0.1, seed=1, record=True)
    np.testing.assert_array_equal(again["negatives"], rec["negatives"])
    other = model._step((words, starts), lr=0.1, seed=2, record=True)
    assert not np.array_equal(other["negatives"], rec["negatives"])


# -- 5. validation -----------------------------------------------------------------------------

@pytest.fixture
def small_model(rng):
    return make_model(zipf_counts(10), 4, shards=2, n_threads=2, rng=rng)


def _unchanged(model, fn, exc, match=None):
    before0, before1 = model.syn0.copy(), model.syn1neg.copy()
    with pytest.raises(exc, match=match):
        fn()
    assert_bitwise_equal(model.syn0, before0)
    assert_bitwise_equal(model.syn1neg, before1)


@pytest.mark.parametrize("words,starts,exc,match", [
    ([1, 2, 10, 3], [0, 2, 4], IndexError, r"words\[2\] = 10"),
    ([1, 2, 3, -1], [0, 2, 4], IndexError, r"words\[3\] = -1"),
    ([1, 2, 3, 4], [1, 4], ValueError, "starts"),
    ([1, 2, 3, 4], [0, 3], ValueError, "starts"),
    ([1, 2, 3, 4], [0, 3, 2, 4], ValueError, "starts"),
    ([1, 2, 3, 4], [], TypeError, "starts"),
    (np.array([1.0, 2.0]), [0, 2], TypeError, "words"),
    ([1, 2], np.array([0.0, 2.0]), TypeError, "starts"),
    (np.array([[1, 2]]), [0, 2], TypeError, "words"),
    (np.array([True, False]), [0, 2], TypeError, "words"),
])
def test_bad_batches_raise_and_change_nothing(small_model, words, starts, exc, match):
    words = np.array(words, dtype=np.int64) if isinstance(words, list) else words
    starts = np.array(starts, dtype=np.int64) if isinstance(starts, list) else starts
    batch = (words, starts)
    _unchanged(small_model, lambda: small_model._step(batch, lr=0.1, seed=1, record=False),
               exc, match)
    _unchanged(small_model, lambda: small_model.train_step(
        batch, lr=0.1, rng=np.random.default_rng(0)), exc, match)


def test_batch_must_be_a_pair(small_model):
    for batch in (np.arange(3), (np.arange(3),), 5):
        _unchanged(small_model, lambda: small_model._step(batch, lr=0.1, seed=1,
                                                          record=False), TypeError)


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "0.1", None])
def test_bad_lr_raises_and_changes_nothing(small_model, lr):
    batch = (np.array([1, 2, 3], np.int32), np.array([0, 3], np.int64))
    _unchanged(small_model, lambda: small_model._step(batch, lr=lr, seed=1, record=False),
               ValueError, "lr")


def test_train_step_refuses_an_optimizer(small_model):
    batch = (np.array([1, 2, 3], np.int32), np.array([0, 3], np.int64))
    _unchanged(small_model, lambda: small_model.train_step(
        batch, lr=0.1, rng=np.random.default_rng(0), optimizer=object()), ValueError,
        "optimizer")


def test_train_step_trains_and_reports(small_model):
    batch = (np.array([1, 2, 3, 4, 5, 1, 2], np.int32), np.array([0, 4, 7], np.int64))
    small_model.sample = 0.0
    before = small_model.syn0.copy()
    out = small_model.train_step(batch, lr=0.1, rng=np.random.default_rng(0))
    assert set(out) == {"loss", "count", "pairs", "kept"}
    assert out["count"] == 7 and out["pairs"] > 0 and out["loss"] > 0
    assert not np.array_equal(small_model.syn0, before)


@pytest.mark.parametrize("kwargs,exc", [
    (dict(dim=0), ValueError),
    (dict(dim=2.5), ValueError),
    (dict(window=0), ValueError),
    (dict(negative=-1), ValueError),
    (dict(sample=1.5), ValueError),
    (dict(sample=-0.1), ValueError),
    (dict(ns_exponent=float("nan")), ValueError),
    (dict(shards=0), ValueError),
    (dict(dtype=int), TypeError),
    (dict(dtype=np.float16), TypeError),
    (dict(counts=[]), ValueError),
    (dict(counts=[3, -1, 2]), ValueError),
    (dict(counts=[0, 0, 0]), ValueError),
    (dict(counts=[[1, 2], [3, 4]]), ValueError),
    (dict(counts=["a", "b"]), TypeError),
    (dict(counts=[1.0, np.nan]), ValueError),
])
def test_bad_constructor_arguments(kwargs, exc):
    kwargs = {"counts": [5, 3, 1], "dim": 4, **kwargs}
    with pytest.raises(exc):
        SkipGram(**kwargs)


def test_constructor_defaults_and_initial_tables():
    counts = zipf_counts(30)
    m = SkipGram(counts, 10, seed=7)
    assert (m.dim, m.window, m.negative, m.sample, m.shards) == (10, 5, 5, 1e-3, 4)
    assert m.syn0.dtype == np.float32 and m.syn0.shape == (30, 10)
    assert (m.syn1neg == 0).all()
    assert np.abs(m.syn0).max() <= 0.5 / 10
    assert m.vectors is m.syn0 and m.num_words == 30
    assert_bitwise_equal(SkipGram(counts, 10, seed=7).syn0, m.syn0)
    assert "SkipGram(30 words, dim=10" in repr(m)


def test_state_dict_round_trip(rng):
    counts = zipf_counts(10)
    a = make_model(counts, 4, rng=rng)
    state = a.state_dict()
    assert set(state) == {"syn0", "syn1neg", "counts"}
    a._step((np.arange(10, dtype=np.int32), np.array([0, 10])), lr=0.5, seed=1, record=False)
    assert not np.array_equal(a.syn0, state["syn0"])  # the state is a copy
    b = make_model(counts, 4, rng=rng)
    b.load_state_dict(state)
    a.load_state_dict(state)
    for m in (a, b):
        assert_bitwise_equal(m.syn0, state["syn0"])
        assert_bitwise_equal(m.syn1neg, state["syn1neg"])


@pytest.mark.parametrize("change", ["syn0_shape", "syn1_shape", "syn0_dtype", "syn1_dtype",
                                    "counts", "counts_length"])
def test_load_state_dict_rejects_mismatches(rng, change):
    counts = zipf_counts(10)
    m = make_model(counts, 4, rng=rng)
    other = make_model(counts, 4, rng=rng)
    state = other.state_dict()
    if change == "syn0_shape":
        state["syn0"] = np.zeros((10, 5))
    elif change == "syn1_shape":
        state["syn1neg"] = np.zeros((9, 4))
    elif change == "syn0_dtype":
        state["syn0"] = state["syn0"].astype(np.float32)
    elif change == "syn1_dtype":
        state["syn1neg"] = state["syn1neg"].astype(np.float32)
    elif change == "counts":
        state["counts"] = counts + 1
    else:
        state["counts"] = counts[:-1]
    _unchanged(m, lambda: m.load_state_dict(state), ValueError)


# -- 6. Corpus and CorpusDataset ---------------------------------------------------------------

def test_corpus_from_sentences():
    vocab = {"a": 0, "b": 1, "c": 2}
    sentences = [["a", "x", "b"], ["x", "y"], [], ["c"] * 25, ["b"]]
    corpus = Corpus.from_sentences(sentences, vocab, max_sentence_length=10)
    assert corpus.words.dtype == np.int32 and corpus.starts.dtype == np.int64
    np.testing.assert_array_equal(corpus.words, [0, 1] + [2] * 25 + [1])
    np.testing.assert_array_equal(corpus.starts, [0, 2, 12, 22, 27, 28])
    assert corpus.n_sentences == 5 and corpus.n_words == 28
    assert "5 sentences" in repr(corpus)

    class FakeVocab:
        index = vocab

    again = Corpus.from_sentences(iter(sentences), FakeVocab(), max_sentence_length=10)
    np.testing.assert_array_equal(again.words, corpus.words)
    np.testing.assert_array_equal(again.starts, corpus.starts)
    empty = Corpus.from_sentences([["x"], []], vocab)
    assert empty.n_words == 0 and empty.n_sentences == 0


def test_corpus_with_text_vocab():
    from fastembed.text import Vocab
    sentences = [["the", "cat"], ["the", "rare"], ["dog"]]
    vocab = Vocab.build(sentences, min_count=1)
    corpus = Corpus.from_sentences(sentences, vocab)
    assert corpus.n_words == 5 and corpus.n_sentences == 3
    assert [vocab.words[i] for i in corpus.words] == ["the", "cat", "the", "rare", "dog"]


@pytest.mark.parametrize("starts", [[1, 3], [0, 2], [0, 2, 1, 3], []])
def test_corpus_rejects_bad_starts(starts):
    with pytest.raises(ValueError):
        Corpus(np.array([1, 2, 3]), np.array(starts, dtype=np.int64))


@pytest.mark.parametrize("batch_words", [1, 7, 100, 500, 10**6])
def test_corpus_dataset_covers_every_sentence_once(rng, batch_words):
    lengths = rng.integers(0, 31, size=400)  # with some empty sentences
    words, starts = random_batch(rng, 1000, lengths)
    corpus = Corpus(words, starts)
    data = CorpusDataset(corpus, batch_words=batch_words)
    n = data.num_batches(0)
    assert n == data.num_batches(3)
    assert 1 <= n <= math.ceil(corpus.n_words / batch_words)
    if batch_words >= corpus.n_words:
        assert n == 1
    all_words, all_lengths = [], []
    for i in range(n):
        w, s = data.batch(0, i)
        w1, s1 = data.batch(1, i)  # the same batches in every epoch
        np.testing.assert_array_equal(w, w1)
        np.testing.assert_array_equal(s, s1)
        assert s[0] == 0 and s[-1] == w.size and s.size >= 2
        assert (np.diff(s) >= 0).all()
        assert w.size < batch_words + lengths.max()
        all_words.append(w)
        all_lengths.append(np.diff(s))
    np.testing.assert_array_equal(np.concatenate(all_words), corpus.words)
    np.testing.assert_array_equal(np.concatenate(all_lengths), np.diff(corpus.starts))
    assert len(data) == corpus.n_words
    # sizes: about batch_words on average
    if n > 2:
        sizes = [data.batch(0, i)[0].size for i in range(n)]
        assert np.mean(sizes[:-1]) >= 0.5 * batch_words


def test_corpus_dataset_edge_cases():
    empty = Corpus(np.zeros(0, np.int32), np.array([0]))
    assert CorpusDataset(empty).num_batches(0) == 0
    assert CorpusDataset(Corpus.from_sentences([], {})).num_batches(0) == 0
    long = Corpus(np.arange(50), np.array([0, 50]))  # one sentence longer than a batch
    data = CorpusDataset(long, batch_words=10)
    assert data.num_batches(0) == 1
    np.testing.assert_array_equal(data.batch(0, 0)[1], [0, 50])
    with pytest.raises(TypeError):
        CorpusDataset([[1, 2]])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            CorpusDataset(long, batch_words=bad)


# -- 7. learning works -------------------------------------------------------------------------

CLUSTERS = [[f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]]


def cluster_sentences():
    rng = np.random.default_rng(0)
    return [list(rng.choice(CLUSTERS[k % 2], size=8)) for k in range(400)]


def cluster_margin(result):
    vocab, syn0 = result.vocab, result.model.syn0
    assert len(vocab) == 16
    unit = syn0 / np.linalg.norm(syn0, axis=1, keepdims=True)
    cos = unit @ unit.T
    a, b = ([vocab.index[w] for w in c] for c in CLUSTERS)
    off = ~np.eye(8, dtype=bool)
    within = (cos[np.ix_(a, a)][off].mean() + cos[np.ix_(b, b)][off].mean()) / 2
    across = cos[np.ix_(a, b)].mean()
    return within, across


@pytest.fixture(scope="module")
def default_cluster_run():
    # the call of the brief: every other setting at its default (shards=4, batch_words=40000)
    return train_word2vec(cluster_sentences(), dim=16, min_count=1, epochs=10, sample=0,
                          progress=False, n_threads=1)


def test_two_clusters_are_learned_with_defaults(default_cluster_run):
    losses = [h["loss"] for h in default_cluster_run.history]
    assert default_cluster_run.vectors["a0"].shape == (16,)
    within, across = cluster_margin(default_cluster_run)
    assert within > across + 0.5, (within, across, losses)
    assert losses[-1] < losses[0], losses
    assert np.abs(default_cluster_run.model.syn0).max() < 10


@pytest.mark.parametrize("shards", [1, 2])
def test_two_clusters_are_learned(shards):
    sentences = cluster_sentences()
    kw = dict(dim=16, window=3, negative=5, min_count=1, epochs=10, sample=0, progress=False,
              n_threads=1, seed=3, shards=shards)
    result = train_word2vec(sentences, **kw)
    within, across = cluster_margin(result)
    assert within > across + 0.5, (within, across)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 10 and losses[-1] < losses[0], losses
    assert np.isfinite(result.model.syn0).all() and np.abs(result.model.syn0).max() < 10
    # the same call, the same vectors
    again = train_word2vec(sentences, **kw)
    assert_bitwise_equal(again.model.syn0, result.model.syn0)


def test_train_word2vec_empty_vocabulary():
    with pytest.raises(ValueError, match="min_count"):
        train_word2vec([["a", "b"]], min_count=5, progress=False)


# -- 8. corpus_sentences -----------------------------------------------------------------------

def test_builtin_corpus():
    sentences = corpus_sentences(None)
    assert len(sentences) > 60_000
    assert sentences[0][:4] == ["fellow", "citizens", "of", "the"]
    assert all(isinstance(w, str) for w in sentences[0])


def test_corpus_sentences_from_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        corpus_sentences(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        corpus_sentences(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n ... \n")
    with pytest.raises(ValueError):
        corpus_sentences(blank)
    d = tmp_path / "emptydir"
    d.mkdir()
    with pytest.raises(ValueError):
        corpus_sentences(d)

    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "b.txt").write_text("Second file here. Yes.")
    (texts / "a.txt").write_text("The Cat sat.")
    (texts / "notes.md").write_text("ignored words")
    one = corpus_sentences(texts / "a.txt")
    assert one == [["the", "cat", "sat"]]
    assert corpus_sentences(texts / "a.txt", lower=False) == [["The", "Cat", "sat"]]
    both = corpus_sentences(texts)
    assert both[0] == ["the", "cat", "sat"]
    assert ["ignored", "words"] not in both
    assert sum(len(s) for s in both) == 3 + 4
