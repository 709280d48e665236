"""Vectors (similarity queries), spearman, embedding_for_vocab, from_pretrained and flush."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import fastembed.vectors as vectors_module
from fastembed import Embedding, EmbeddingBag, optim
from fastembed.text import Vocab
from fastembed.vectors import Vectors, _ranks, embedding_for_vocab, spearman
from reference import ref_cosine_scores, ref_top_rows

DTYPES = (np.float32, np.float64)


def make_vectors(n, dim, dtype, rng, prefix="w"):
    weight = rng.standard_normal((n, dim)).astype(dtype)
    return Vectors([f"{prefix}{i}" for i in range(n)], weight)


def assert_answer(v, answer, scores, exclude=(), restrict=None, topn=10):
    """``answer`` is the reference's, up to swaps of scores within rounding of each other."""
    tol = 2e-6 if v.weight.dtype == np.float32 else 1e-12
    expected = ref_top_rows(scores, exclude, restrict, topn)
    got = [v.index[w] for w, _ in answer]
    assert len(got) == len(expected)
    for (word, score), i, j in zip(answer, got, expected):
        assert score == pytest.approx(scores[i], abs=tol)
        assert scores[i] == pytest.approx(scores[j], abs=tol), (got, expected)
    assert len(set(got)) == len(got) and not set(got) & set(exclude)
    sims = [s for _, s in answer]
    assert sims == sorted(sims, reverse=True)


# -- Vectors basics ---------------------------------------------------------------------------

def test_basics_and_repr():
    v = Vectors(["a", "b"], np.array([[1, 0], [3, 4]], dtype=np.float32))
    assert repr(v) == "Vectors(2 words, dim=2, dtype=float32)"
    assert len(v) == 2 and "a" in v and "z" not in v and list(v) == ["a", "b"]
    assert v.dim == 2 and v.dtype == np.float32
    np.testing.assert_array_equal(v[["b", "a"]], [[3, 4], [1, 0]])
    assert v.get("z") is None and v.get("z", 5) == 5
    np.testing.assert_array_equal(v.get("b"), [3, 4])
    with pytest.raises(KeyError, match="'z' is not in the vocabulary"):
        v["z"]


def test_constructor_errors():
    with pytest.raises(ValueError, match="shape"):
        Vectors(["a"], np.zeros((2, 3)))
    with pytest.raises(TypeError, match="floating"):
        Vectors(["a"], np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"words\[3\] = 'b' repeats words\[1\]"):
        Vectors(["a", "b", "c", "b", "a"], np.zeros((5, 3)))
    with pytest.raises(TypeError, match=r"words\[1\] is a int, not a str"):
        Vectors(["a", 3], np.zeros((2, 3)))


def test_from_checked_skips_the_checks():
    weight = np.ones((2, 3), np.float32)
    v = vectors_module.vectors_from_checked(["a", "b"], weight, {"a": 0, "b": 1})
    assert v.weight is weight and v.words == ["a", "b"] and v.index == {"a": 0, "b": 1}
    assert v.most_similar("a") == [("b", pytest.approx(1.0))]


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_vectors_cached_and_refreshed(dtype):
    v = Vectors(["a", "b", "z"], np.array([[3, 4], [0, 2], [0, 0]], dtype=dtype))
    unit = v.unit_vectors()
    assert unit.dtype == dtype and unit.flags.c_contiguous
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0, 1], [0, 0]], rtol=1e-7)
    assert v.unit_vectors() is unit  # cached
    v.weight[1] = [5, 0]
    assert v.unit_vectors() is unit  # in-place change: the cache is kept ...
    v.clear_cache()
    np.testing.assert_allclose(v.unit_vectors()[1], [1, 0])  # ... until cleared
    v.weight = np.array([[1, 0], [0, 1], [1, 1]], dtype=dtype)  # a new array: recomputed
    np.testing.assert_allclose(v.unit_vectors()[2], [2 ** -0.5] * 2, rtol=1e-7)


def test_unit_vectors_block_by_block(monkeypatch, rng):
    v = make_vectors(50, 6, np.float32, rng)
    whole = v.unit_vectors().copy()
    v.clear_cache()
    monkeypatch.setattr(vectors_module, "_NORM_BLOCK_ELEMS", 13)  # 2 rows per block
    np.testing.assert_array_equal(v.unit_vectors(), whole)


# -- most_similar -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("restrict", [None, 150, 37])
@pytest.mark.parametrize("topn", [0, 1, 10, 199])
def test_most_similar_word_matches_brute_force(dtype, restrict, topn, rng):
    v = make_vectors(200, 16, dtype, rng)
    for i in (0, 42, 180):
        answer = v.most_similar(f"w{i}", topn=topn, restrict=restrict)
        scores = ref_cosine_scores(v.weight, v.weight[i])
        assert_answer(v, answer, scores, exclude=(i,), restrict=restrict, topn=topn)
        assert f"w{i}" not in [w for w, _ in answer]


@pytest.mark.parametrize("dtype", DTYPES)
def test_most_similar_vector_matches_brute_force(dtype, rng):
    v = make_vectors(300, 8, dtype, rng)
    q = rng.standard_normal(8)
    for restrict in (None, 100):
        answer = v.most_similar(q, topn=25, restrict=restrict)
        assert_answer(v, answer, ref_cosine_scores(v.weight, q), restrict=restrict, topn=25)
    # a list of numbers, an int array and a vector of the other dtype are vectors too
    answer = v.most_similar(q.tolist(), topn=5)
    assert answer == v.most_similar(q.astype(np.float64), topn=5)
    int_q = np.array([1, 0, -2, 0, 0, 3, 0, 1])
    assert_answer(v, v.most_similar(int_q, topn=5), ref_cosine_scores(v.weight, int_q),
                  topn=5)


def test_most_similar_word_outside_restrict_excludes_nothing(rng):
    v = make_vectors(40, 4, np.float64, rng)
    answer = v.most_similar("w30", topn=50, restrict=10)
    assert [w for w, _ in answer] == [f"w{i}" for i in ref_top_rows(
        ref_cosine_scores(v.weight, v.weight[30]), restrict=10, topn=50)]
    assert len(answer) == 10


def test_most_similar_topn_larger_than_table(rng):
    v = make_vectors(7, 3, np.float32, rng)
    assert len(v.most_similar("w3", topn=100)) == 6  # the word itself left out
    assert len(v.most_similar(np.ones(3), topn=100)) == 7
    assert v.most_similar("w3", topn=0) == []
    assert v.most_similar("w3", restrict=0) == []
    assert len(v.most_similar("w3", restrict=1)) == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_most_similar_ties_keep_row_order(dtype, rng):
    # Three groups of exactly equal cosines (rows equal up to powers of two, which normalise
    # to the same unit vector bit for bit), their rows shuffled through the table, so that
    # argpartition's boundary falls inside a group of ties.
    n = 1000
    group = rng.permutation(np.repeat([0, 1, 2], [300, 300, 400]))
    directions = np.array([[1, 0], [0.6, 0.8], [-0.5, 0.5]])
    weight = (directions[group] * 2.0 ** rng.integers(-3, 4, size=(n, 1))).astype(dtype)
    v = Vectors([f"r{i}" for i in range(n)], weight)
    first = np.flatnonzero(group == 0)
    second = np.flatnonzero(group == 1)
    for topn in (1, 17, 299, 300, 301, 450, 600, 999):
        expected = np.concatenate([first, second, np.flatnonzero(group == 2)])[:topn]
        got = [v.index[w] for w, _ in v.most_similar(np.array([1.0, 0.0]), topn=topn)]
        np.testing.assert_array_equal(got, expected)
    # a word query: its own row is left out, the other ties keep row order
    q = int(first[5])
    got = [v.index[w] for w, _ in v.most_similar(f"r{q}", topn=310)]
    np.testing.assert_array_equal(got, np.concatenate([np.delete(first, 5), second])[:310])


def test_most_similar_existing_doctest_order():
    v = Vectors(["king", "queen", "apple"],
                np.array([[1, 0.1], [0.9, 0.2], [-0.1, 1]], dtype=np.float32))
    assert [w for w, _ in v.most_similar("king", topn=2)] == ["queen", "apple"]
    # equal cosines: row order
    v = Vectors(list("abcd"), np.array([[1, 0], [2, 0], [0, 1], [4, 0]], dtype=np.float32))
    assert v.most_similar("c") == [("a", 0.0), ("b", 0.0), ("d", 0.0)]
    assert v.most_similar("d") == [("a", 1.0), ("b", 1.0), ("c", 0.0)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_most_similar_zero_vector_and_zero_rows(dtype):
    weight = np.array([[1, 2], [0, 0], [-1, 0], [3, 1]], dtype=dtype)
    v = Vectors(list("abcd"), weight)
    # a zero query is as similar (0) to every row: the first rows in row order
    assert v.most_similar(np.zeros(2), topn=3) == [("a", 0.0), ("b", 0.0), ("c", 0.0)]
    # a zero row scores 0, not NaN
    answer = dict(v.most_similar("d", topn=3))
    assert answer["b"] == 0.0
    assert not any(np.isnan(s) for s in answer.values())


def test_most_similar_nan_rows_come_last():
    weight = np.array([[1, 0], [np.nan, 1], [0.5, 0.5], [0, 1]], dtype=np.float32)
    v = Vectors(list("abcd"), weight)
    assert [w for w, _ in v.most_similar(np.array([1.0, 0.0]), topn=4)] == list("acdb")
    assert [w for w, _ in v.most_similar(np.array([1.0, 0.0]), topn=2)] == list("ac")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_elems", [None, 250])  # 250: one query per block
def test_most_similar_batch(dtype, block_elems, monkeypatch, rng):
    if block_elems is not None:
        monkeypatch.setattr(vectors_module, "_SCORE_BLOCK_ELEMS", block_elems)
    v = make_vectors(120, 10, dtype, rng)
    words = ["w3", "w77", "w3", "w119"]
    answers = v.most_similar(words, topn=7, restrict=100)
    assert isinstance(answers, list) and len(answers) == 4
    for word, answer in zip(words, answers):
        i = v.index[word]
        assert_answer(v, answer, ref_cosine_scores(v.weight, v.weight[i]), exclude=(i,),
                      restrict=100, topn=7)
    queries = rng.standard_normal((5, 10))
    queries[2] = 0  # a zero query inside a batch
    answers = v.most_similar(queries, topn=9)
    assert len(answers) == 5
    for q, answer in zip(queries, answers):
        assert_answer(v, answer, ref_cosine_scores(v.weight, q), topn=9)
    assert answers[2] == [(f"w{i}", 0.0) for i in range(9)]
    assert v.most_similar(("w1",), topn=3) == [v.most_similar("w1", topn=3)]
    assert v.most_similar([], topn=3) == []
    assert v.most_similar(np.empty((0, 10)), topn=3) == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_most_similar_positive_negative(dtype, rng):
    v = make_vectors(150, 12, dtype, rng)
    unit = v.weight.astype(np.float64) / np.linalg.norm(v.weight.astype(np.float64), axis=1,
                                                        keepdims=True)
    pos, neg = ["w1", "w20"], ["w7"]
    q = (unit[1] + unit[20] - unit[7]) / 3
    answer = v.most_similar(positive=pos, negative=neg, topn=12)
    assert_answer(v, answer, ref_cosine_scores(v.weight, q), exclude=(1, 20, 7), topn=12)
    # a single positive word is most_similar(word); a str stands for a one-word list
    assert v.most_similar(positive="w5", topn=4) == v.most_similar("w5", topn=4)
    assert v.most_similar(positive=["w5"], topn=4) == v.most_similar("w5", topn=4)
    # negative alone, and a vector among the words (normalised, never excluded)
    answer = v.most_similar(negative=["w9"], topn=5)
    assert_answer(v, answer, ref_cosine_scores(v.weight, -unit[9]), exclude=(9,), topn=5)
    vec = rng.standard_normal(12) * 7
    answer = v.most_similar(positive=["w2", vec], topn=5)
    expected_q = unit[2] + vec / np.linalg.norm(vec)
    assert_answer(v, answer, ref_cosine_scores(v.weight, expected_q), exclude=(2,), topn=5)


def test_most_similar_errors(rng):
    v = make_vectors(5, 3, np.float32, rng)
    with pytest.raises(KeyError, match="'nope'"):
        v.most_similar("nope")
    with pytest.raises(KeyError, match="'nope'"):
        v.most_similar(["w1", "nope"])
    with pytest.raises(ValueError, match="topn must be >= 0, got -1"):
        v.most_similar("w1", topn=-1)
    for topn in (1.5, True, "3"):
        with pytest.raises(TypeError, match="topn must be an int"):
            v.most_similar("w1", topn=topn)
    for restrict in (-1, 6):
        with pytest.raises(ValueError, match="restrict"):
            v.most_similar("w1", restrict=restrict)
    with pytest.raises(TypeError, match="restrict"):
        v.most_similar("w1", restrict=2.0)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        v.most_similar(np.ones(4))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        v.most_similar(np.ones((2, 2, 3)))
    with pytest.raises(TypeError, match="dtype"):
        v.most_similar(["w1", 2.0])
    with pytest.raises(TypeError, match="not both"):
        v.most_similar("w1", positive=["w2"])
    with pytest.raises(TypeError, match="needs a word"):
        v.most_similar()
    with pytest.raises(ValueError, match="empty"):
        v.most_similar(positive=[], negative=[])


# -- similarity, evaluate_word_pairs, spearman ------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_similarity(dtype, rng):
    v = make_vectors(10, 5, dtype, rng)
    a, b = v.weight[2].astype(np.float64), v.weight[7].astype(np.float64)
    expected = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert v.similarity("w2", "w7") == pytest.approx(expected, abs=1e-6)
    assert v.similarity("w2", "w2") == pytest.approx(1.0, abs=1e-6)


def test_ranks_average_ties():
    np.testing.assert_array_equal(_ranks([3, 1, 3, 2, 3]), [3, 0, 3, 1, 3])
    np.testing.assert_array_equal(_ranks([5, 5, 1, 1]), [2.5, 2.5, 0.5, 0.5])
    np.testing.assert_array_equal(_ranks([]), [])
    np.testing.assert_array_equal(_ranks([0.0, -0.0]), [0.5, 0.5])  # -0.0 == 0.0


def test_spearman_hand_computed():
    # x ranks [0, 1.5, 1.5, 3], y ranks [0, 2, 1, 3]; centred: [-1.5, 0, 0, 1.5] and
    # [-1.5, .5, -.5, 1.5]; r = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [10, 30, 20, 40]) == pytest.approx(3 / np.sqrt(10),
                                                                      rel=1e-15)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 25]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))  # a constant: undefined
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1, 2, 3])


def test_spearman_against_brute_force_ranks(rng):
    def brute_ranks(values):  # the average of the 0-based positions of equal values
        s = sorted(values)
        return [np.mean([k for k, t in enumerate(s) if t == x]) for x in values]

    x = rng.integers(0, 6, size=40).tolist()
    y = rng.integers(0, 4, size=40).tolist()
    rx, ry = np.array(brute_ranks(x)), np.array(brute_ranks(y))
    np.testing.assert_array_equal(_ranks(x), rx)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    assert spearman(x, y) == pytest.approx(rx @ ry / np.sqrt((rx @ rx) * (ry @ ry)),
                                           rel=1e-12)


def test_evaluate_word_pairs(tmp_path):
    v = Vectors(["a", "b", "c", "d"],
                np.array([[1, 0], [1, 1], [0, 1], [-1, 0.2]], dtype=np.float32))
    pairs = [("A", "b", 9.0), ("a", "c", 5.0), ("a", "d", 5.0), ("b", "c", 7.0),
             ("a", "zzz", 3.0)]
    model = [v.similarity("a", "b"), v.similarity("a", "c"), v.similarity("a", "d"),
             v.similarity("b", "c")]
    # human ranks [3, 0.5, 0.5, 2]; model ranks (0.707, 0, -0.98, 0.707) = [2.5, 1, 0, 2.5]
    hr, mr = np.array([3, 0.5, 0.5, 2]), np.array([2.5, 1, 0, 2.5])
    np.testing.assert_array_equal(_ranks(model), mr)
    hr, mr = hr - hr.mean(), mr - mr.mean()
    expected = hr @ mr / np.sqrt((hr @ hr) * (mr @ mr))
    result = v.evaluate_word_pairs(pairs)
    assert result == {"spearman": pytest.approx(expected), "pairs": 4, "oov": 1,
                      "oov_ratio": 0.2}
    assert v.evaluate_word_pairs(pairs, lower=False)["oov"] == 2  # "A" is not "a"
    path = tmp_path / "pairs.tsv"
    path.write_text("# word1\tword2\tscore\n\n" + "".join(f"{a}\t{b}\t{s}\n"
                                                         for a, b, s in pairs))
    assert v.evaluate_word_pairs(path) == result
    assert v.evaluate_word_pairs(str(path)) == result
    path.write_text("a b 1\n")
    with pytest.raises(ValueError, match=":1: expected"):
        v.evaluate_word_pairs(path)
    assert np.isnan(v.evaluate_word_pairs([("a", "b", 1.0)])["spearman"])


# -- embedding_for_vocab ----------------------------------------------------------------------

@pytest.fixture
def glove():
    words = ["the", "cat", "<pad>", "dog", "sat", "mat"]
    weight = (np.arange(24, dtype=np.float32).reshape(6, 4) + 1) / 8
    return Vectors(words, weight)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_embedding_for_vocab_rows(glove):
    vocab = Vocab(["<pad>", "the", "Cat", "dog", "zebra", "MAT"], pad_token="<pad>")
    layer, missing = _quiet(embedding_for_vocab, vocab, glove, seed=3)
    assert isinstance(layer, Embedding) and layer.weight.shape == (6, 4)
    assert layer.dtype == np.float32 and layer.trainable and layer.padding_idx is None
    assert missing == ["Cat", "zebra", "MAT"]
    reference = Embedding(6, 4, seed=3).weight  # what the initialiser gives every row
    for i, word in enumerate(vocab.words):
        expected = glove[word] if word in glove else reference[i]
        np.testing.assert_array_equal(layer.weight[i], expected)
    assert not np.shares_memory(layer.weight, glove.weight)


def test_embedding_for_vocab_lower_and_padding(glove):
    vocab = Vocab(["<pad>", "the", "Cat", "dog", "zebra", "MAT"], pad_token="<pad>")
    layer, missing = _quiet(embedding_for_vocab, vocab, glove, lower=True, seed=3,
                            padding_idx=vocab.pad_id)
    assert missing == ["zebra"]  # the padding row is not missing, Cat and MAT found lower-cased
    assert layer.padding_idx == 0
    np.testing.assert_array_equal(layer.weight[0], 0)  # zeros although glove has "<pad>"
    np.testing.assert_array_equal(layer.weight[2], glove["cat"])
    np.testing.assert_array_equal(layer.weight[5], glove["mat"])
    np.testing.assert_array_equal(layer.weight[4], Embedding(6, 4, seed=3).weight[4])
    # the exact word wins over its lower-cased form
    g2 = Vectors(["cat", "Cat"], np.array([[1, 1, 1, 1], [2, 2, 2, 2]], dtype=np.float32))
    layer, missing = embedding_for_vocab(["Cat"], g2, lower=True)
    np.testing.assert_array_equal(layer.weight[0], 2)
    # the padding row never gets gradient
    layer, _ = _quiet(embedding_for_vocab, vocab, glove, padding_idx=-6)
    assert layer.padding_idx == 0
    layer(np.array([0, 1, 0]))
    assert 0 not in layer.backward(np.ones((3, 4), np.float32)).rows


def test_embedding_for_vocab_options(glove):
    words = ["dog", "unicorn", "the"]
    layer, missing = _quiet(embedding_for_vocab, words, glove, init="zeros",
                            dtype=np.float64, trainable=False, mask_zero=True)
    assert layer.dtype == np.float64 and not layer.trainable and layer.mask_zero
    np.testing.assert_array_equal(layer.weight, np.stack(
        [glove["dog"], np.zeros(4), glove["the"]]).astype(np.float64))
    assert missing == ["unicorn"]
    # float64 vectors give a float64 table by default
    g64 = Vectors(glove.words, glove.weight.astype(np.float64))
    assert _quiet(embedding_for_vocab, words, g64)[0].dtype == np.float64
    # a callable initialiser, seeded through rng
    layer, _ = _quiet(embedding_for_vocab, words, glove, init=lambda shape, rng: np.full(
        shape, 7.0), seed=0)
    np.testing.assert_array_equal(layer.weight[1], 7.0)
    layer, _ = _quiet(embedding_for_vocab, words, glove, init="normal", seed=5)
    np.testing.assert_array_equal(layer.weight[1],
                                  Embedding(3, 4, init="normal", seed=5).weight[1])


def test_embedding_for_vocab_seeds(glove):
    words = ["a", "the", "b", "c"]
    w1 = _quiet(embedding_for_vocab, words, glove, seed=11)[0].weight
    w2 = _quiet(embedding_for_vocab, words, glove, seed=11)[0].weight
    w3 = _quiet(embedding_for_vocab, words, glove, seed=12)[0].weight
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(w1[1], w3[1])  # the pretrained row
    assert not np.array_equal(w1[[0, 2, 3]], w3[[0, 2, 3]])
    w4 = _quiet(embedding_for_vocab, words, glove, seed=np.random.default_rng(11))[0].weight
    np.testing.assert_array_equal(w1, w4)


def test_embedding_for_vocab_warning(glove):
    words = ["the"] + [f"x{i}" for i in range(7)]
    with pytest.warns(UserWarning) as record:
        _, missing = embedding_for_vocab(words, glove)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("7 of 8 words (87.5%) have no pretrained vector and were "
                              "initialised with init='uniform': 'x0', 'x1', 'x2', 'x3', "
                              "'x4', ...")
    assert missing == [f"x{i}" for i in range(7)]
    assert record[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing missing: no warning
        _, missing = embedding_for_vocab(["the", "dog"], glove)
    assert missing == []


def test_embedding_for_vocab_errors(glove):
    with pytest.raises(ValueError, match="embedding_dim=7 but the pretrained vectors have "
                                         "dim=4"):
        embedding_for_vocab(["the"], glove, embedding_dim=7)
    assert embedding_for_vocab(["the"], glove, embedding_dim=4)[0].embedding_dim == 4
    with pytest.raises(TypeError, match="Vectors"):
        embedding_for_vocab(["the"], glove.weight)
    with pytest.raises(ValueError, match="padding_idx"):
        embedding_for_vocab(["the"], glove, padding_idx=3)
    with pytest.raises(ValueError, match="init"):
        embedding_for_vocab(["the"], glove, init="bogus")
    with pytest.raises(TypeError, match="dtype"):
        embedding_for_vocab(["the"], glove, dtype=np.int32)


def test_embedding_for_vocab_blocks(glove, monkeypatch):
    monkeypatch.setattr(vectors_module, "_COPY_BLOCK_ROWS", 2)
    words = ["mat", "sat", "x", "dog", "the", "cat", "y"]
    layer, _ = _quiet(embedding_for_vocab, words, glove, init="zeros")
    for i, word in enumerate(words):
        np.testing.assert_array_equal(layer.weight[i],
                                      glove[word] if word in glove else np.zeros(4))


# -- Embedding.from_pretrained(Vectors), flush() ----------------------------------------------

@pytest.mark.parametrize("cls", [Embedding, EmbeddingBag])
def test_from_pretrained_vectors(cls, glove):
    layer = cls.from_pretrained(glove)
    assert layer.weight is glove.weight and not layer.trainable
    layer = cls.from_pretrained(glove, freeze=False, padding_idx=2)
    assert layer.trainable and layer.padding_idx == 2
    np.testing.assert_array_equal(Embedding.from_pretrained(glove)([1, 0]),
                                  glove[["cat", "the"]])
    with pytest.raises(TypeError, match="float32 or float64"):
        cls.from_pretrained(Vectors(["a"], np.ones((1, 2), np.float16)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flush_memmap_trained_in_place(dtype, tmp_path, monkeypatch):
    path = tmp_path / "table.bin"
    initial = np.arange(20, dtype=dtype).reshape(5, 4)
    initial.tofile(path)
    table = np.memmap(path, dtype=dtype, mode="r+", shape=(5, 4))
    layer = Embedding.from_pretrained(table, freeze=False)
    opt = optim.SGD(layer, lr=0.5)
    layer(np.array([1, 3, 3]))
    layer.backward(np.ones((3, 4), dtype))
    opt.step()
    expected = initial.copy()
    expected[1] -= 0.5
    expected[3] -= 1.0
    np.testing.assert_array_equal(layer.weight, expected)
    calls = []
    real_flush = np.memmap.flush
    monkeypatch.setattr(np.memmap, "flush", lambda self: (calls.append(1), real_flush(self)))
    layer.flush()
    assert calls == [1]
    np.testing.assert_array_equal(np.fromfile(path, dtype=dtype).reshape(5, 4), expected)
    reopened = np.memmap(path, dtype=dtype, mode="r", shape=(5, 4))
    np.testing.assert_array_equal(reopened, expected)


def test_flush_view_of_memmap_and_no_op(tmp_path, monkeypatch):
    path = tmp_path / "t.bin"
    np.zeros((3, 2), np.float32).tofile(path)
    calls = []
    real_flush = np.memmap.flush
    monkeypatch.setattr(np.memmap, "flush", lambda self: (calls.append(1), real_flush(self)))
    view = np.asarray(np.memmap(path, dtype=np.float32, mode="r+", shape=(3, 2)))
    assert type(view) is np.ndarray
    bag = EmbeddingBag(weight=view)
    bag.flush()
    assert calls == [1]
    assert Embedding(3, 2).flush() is None  # in memory: nothing to do
    assert calls == [1]
    readonly = np.memmap(path, dtype=np.float32, mode="r", shape=(3, 2))
    Embedding.from_pretrained(readonly).flush()  # a read-only map: harmless
    assert calls == [1, 1]


def test_all_exports():
    assert set(vectors_module.__all__) == {"Vectors", "embedding_for_vocab", "spearman"}
    assert re.search(r"BLAS", vectors_module.__doc__)
