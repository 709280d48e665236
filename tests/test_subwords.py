"""Tests for fastembed.subwords and fastText's .bin files (fastembed.io.load_fasttext /
save_fasttext).

Interop with the real thing: fastText's own models shipped in gensim's wheel
(``gensim/test/test_data``: the old-format ``lee_fasttext.bin``, ``crime-and-punishment.bin``,
``non_ascii_fasttext.bin`` ...; read where gensim is installed, never copied here: LGPL), and
models trained in the tests by the ``fasttext`` package (``fasttext-numpy2``). Each peer's
tests skip cleanly where it is missing.
"""
import os
import pickle
import struct

import numpy as np
import pytest

from fastembed._ext import sgns
from fastembed.io import FASTTEXT_MAGIC, load_fasttext, save_fasttext
from fastembed.subwords import EOS, SubwordVectors, char_ngrams, fasttext_hash
from conftest import assert_bitwise_equal
from reference import ref_fasttext_hash, ref_fasttext_subwords

WORDS = ["where", "there", "été", "naïve", "日本語", "a", "ab", "x" * 40, "</s>", "we're"]


# -- the hash and the n-grams, against the reference and gensim ---------------------------------

@pytest.mark.parametrize("text", ["", "a", "<wh", "été", "日本語>", "\x7f\x80", "<" + "z" * 50])
def test_hash_matches_reference(text):
    assert fasttext_hash(text) == ref_fasttext_hash(text.encode("utf-8"))
    assert fasttext_hash(text.encode("utf-8")) == fasttext_hash(text)


def test_hash_sign_extends_bytes_above_0x7f():
    # a textbook FNV-1a would xor 0xC3, fastText xors 0xFFFFFFC3
    plain = (2166136261 ^ 0xC3) * 16777619 % 2**32
    assert fasttext_hash(b"\xc3") != plain
    assert fasttext_hash(b"\xc3") == (2166136261 ^ 0xFFFFFFC3) * 16777619 % 2**32


@pytest.mark.parametrize("minn,maxn", [(3, 6), (1, 3), (2, 2), (5, 5), (3, 0)])
def test_subword_rows_match_reference(minn, maxn):
    bucket = 1000
    v = SubwordVectors(WORDS, np.zeros((len(WORDS) + bucket, 2), np.float32), minn=minn,
                       maxn=maxn, bucket=bucket)
    for i, word in enumerate(WORDS + ["unseen", "ï", ""]):
        own = i if i < len(WORDS) else -1
        expected = ref_fasttext_subwords(word, own, minn, maxn, bucket, len(WORDS))
        assert v.subword_rows(word).tolist() == expected, word


def test_char_ngrams_are_the_hashed_strings():
    for word in WORDS[:-2]:
        grams = char_ngrams(word, 3, 6)
        rows = [len(WORDS) + fasttext_hash(g) % 997 for g in grams]
        v = SubwordVectors(WORDS, np.zeros((len(WORDS) + 997, 2), np.float32), bucket=997)
        assert v.subword_rows(word).tolist()[1:] == rows


def test_hash_and_ngrams_match_gensim():
    ft = pytest.importorskip("gensim.models.fasttext")
    for word in WORDS + ["Ærø", "ñandú"]:
        assert fasttext_hash(word) == ft.ft_hash_bytes(word.encode("utf-8"))
        assert [g.decode("utf-8") for g in ft.compute_ngrams_bytes(word, 3, 6)] == \
            char_ngrams(word, 3, 6)


# -- SubwordVectors ------------------------------------------------------------------------------

@pytest.fixture
def small(rng):
    words = ["walk", "walked", "walking", "talk", "</s>"]
    bucket = 97
    table = rng.standard_normal((len(words) + bucket, 6)).astype(np.float32)
    return SubwordVectors(words, table, minn=2, maxn=4, bucket=bucket, counts=[9, 5, 4, 3, 1])


def test_vectors_are_the_mean_of_the_rows(small):
    for word in small.words + ["walks", "xyz", "é"]:
        rows = small.subword_rows(word)
        expected = small.input[rows].astype(np.float64).mean(axis=0)
        np.testing.assert_allclose(small.get_vector(word), expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(small[word], expected, rtol=1e-6, atol=1e-7)
    assert small.subword_rows("</s>").tolist() == [4]         # no n-gram for EOS
    np.testing.assert_array_equal(small["walk"], small.weight[0])
    assert small[["walk", "walks"]].shape == (2, 6)


def test_unseen_words_in_queries(small):
    answer = small.most_similar("walks", topn=3)
    assert len(answer) == 3 and all(w in small.index for w, _ in answer)
    q = small.get_vector("walks").astype(np.float64)
    scores = small.unit_vectors() @ (q / np.linalg.norm(q))
    assert answer[0][0] == small.words[int(np.argmax(scores))]
    assert small.similarity("walks", "walked") == pytest.approx(
        small.similarity("walked", "walks"))
    assert small.most_similar(["walk", "walks"], topn=2)[1] == answer[:2]
    assert small.most_similar(positive=["walks"], topn=1)[0][0] in small.index
    assert "walks" not in small and "walk" in small      # `in`: the vocabulary


def test_no_subwords(rng):
    v = SubwordVectors(["a", "b"], rng.random((2, 3), np.float32), minn=3, maxn=0, bucket=0)
    np.testing.assert_array_equal(v["a"], v.input[0])
    np.testing.assert_array_equal(v.get_vector("zzz"), np.zeros(3, np.float32))
    assert v.get("zzz") is None
    with pytest.raises(KeyError, match="no n-gram"):
        v.most_similar("zzz")


@pytest.mark.parametrize("kwargs,error", [
    (dict(bucket=5), "shape"), (dict(minn=4, maxn=3), "minn"), (dict(minn=0, maxn=3), "minn"),
    (dict(bucket=-1), "bucket"), (dict(counts=[1]), "counts")])
def test_bad_arguments(kwargs, error):
    table = np.zeros((2 + 10, 3), np.float32)
    with pytest.raises(ValueError, match=error):
        SubwordVectors(["a", "b"], table, **{"bucket": 10, **kwargs})


def held_in_part(v, rng, share=0.5):
    """``v`` as a model holding only some rows of its input matrix, in a shuffled order: the
    words' rows and a share of the n-gram rows; the others at their initial values."""
    n_rows = len(v.words) + v.bucket
    grams = np.flatnonzero(rng.random(v.bucket) < share) + len(v.words)
    rows = np.concatenate([np.arange(len(v.words)), rng.permutation(grams)])
    whole = v.input.copy()
    fresh = np.setdiff1d(np.arange(n_rows), rows)
    init = np.empty((fresh.size, v.dim), v.dtype)
    sgns.uniform_rows(init, fresh, 77, 1.0 / v.dim, 1)
    whole[fresh] = init
    part = SubwordVectors(v.words, whole[rows], minn=v.minn, maxn=v.maxn, bucket=v.bucket,
                          input_rows=rows, init_seed=77)
    return part, SubwordVectors(v.words, whole, minn=v.minn, maxn=v.maxn, bucket=v.bucket)


def test_a_model_held_in_part_answers_as_the_whole_matrix(small, rng):
    part, whole = held_in_part(small, rng)
    assert part.input_rows.size < len(small.words) + small.bucket
    assert_bitwise_equal(part.weight, whole.weight)
    for word in ["walks", "xyz", "é", "talking", "</s>", "walk"]:
        assert_bitwise_equal(part.get_vector(word), whole.get_vector(word))
    for start, stop in [(0, 0), (0, 3), (4, 60), (90, 102)]:
        assert_bitwise_equal(part.input_block(start, stop), whole.input[start:stop])
    assert part._whole is None                         # nothing built so far
    assert_bitwise_equal(part.input, whole.input)      # built at the first read, and kept
    assert part.input is part.input
    with pytest.raises(ValueError, match="stop"):
        part.input_block(3, 103)
    # .input is a snapshot; the queries and the blocks read the rows held
    held = part.input_rows[len(part.words):]
    part._held[len(part.words):] += 1
    assert_bitwise_equal(part.input, whole.input)
    assert_bitwise_equal(part.input_block(0, 102)[held], whole.input[held] + 1)
    probe = "walkzz"
    moved = np.isin(part.subword_rows(probe), held).any()
    assert moved and not np.array_equal(part[probe], whole[probe])


@pytest.mark.parametrize("rows,seed,exc,match", [
    ([0, 1, 2], 1, ValueError, "each row of input"),
    ([0, 1, 12, 3], 1, ValueError, "distinct rows"),
    ([0, 1, 3, 3], 1, ValueError, "distinct rows"),
    ([0, -1, 2, 3], 1, ValueError, "distinct rows"),
    ([0.0, 1, 2, 3], 1, TypeError, "integers"),
    ([0, 1, 2, 3], None, ValueError, "init_seed"),
    ([0, 1, 2, 3], -2, ValueError, "init_seed"),
    ([0, 1, 2, 3], 2**64, ValueError, "init_seed"),
    (None, 5, ValueError, "init_seed goes with input_rows"),
])
def test_bad_input_rows(rows, seed, exc, match):
    table = np.zeros((4 if rows is not None else 12, 3), np.float32)
    with pytest.raises(exc, match=match):
        SubwordVectors(["a", "b"], table, bucket=10, input_rows=rows, init_seed=seed)


def test_pickles_of_the_whole_matrix_still_load(small):
    """A SubwordVectors pickled when ``input`` was a plain attribute."""
    state = {k: v for k, v in small.__dict__.items()
             if k not in ("_held", "_whole", "input_rows", "init_seed", "_part")}
    state["input"] = small.input
    old = SubwordVectors.__new__(SubwordVectors)
    old.__setstate__(state)
    assert old.input is small.input and old.input_rows is None
    assert_bitwise_equal(old["walks"], small["walks"])
    assert_bitwise_equal(pickle.loads(pickle.dumps(small))["walks"], small["walks"])


# -- .bin files ---------------------------------------------------------------------------------

def gensim_data(name):
    gensim = pytest.importorskip("gensim")
    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", name)
    if not os.path.exists(path):
        pytest.skip(f"{name} is not in this gensim wheel")
    return path


GENSIM_MODELS = ["lee_fasttext.bin", "lee_fasttext_new.bin", "crime-and-punishment.bin",
                 "non_ascii_fasttext.bin", "toy-model.bin"]


@pytest.mark.parametrize("name", GENSIM_MODELS)
def test_real_models_match_gensim(name):
    path = gensim_data(name)
    from gensim.models.fasttext import load_facebook_vectors
    theirs = load_facebook_vectors(path)
    ours = load_fasttext(path)
    assert ours.words == list(theirs.index_to_key)
    assert (ours.minn, ours.maxn, ours.bucket) == (theirs.min_n, theirs.max_n, theirs.bucket)
    # gensim gives the end of sentence "</s>" n-grams; fastText does not (Dictionary::initNgrams
    # skips EOS; test_fasttext_models_read_by_fastembed checks fastText's own vector of it)
    same = [i for i, w in enumerate(ours.words) if w != EOS]
    np.testing.assert_allclose(ours.weight[same], theirs.vectors[same], rtol=1e-5, atol=1e-6)
    for word in ["nothing", "zzzxq", "Ærøskøbing", "walked", ours.words[-1]]:
        np.testing.assert_allclose(ours[word], theirs[word], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", GENSIM_MODELS)
def test_real_models_round_trip(tmp_path, name):
    ours = load_fasttext(gensim_data(name))
    out = tmp_path / "again.bin"
    save_fasttext(out, ours)
    again = load_fasttext(out)
    assert again.words == ours.words and again.labels == ours.labels
    np.testing.assert_array_equal(again.input, ours.input)
    np.testing.assert_array_equal(again.output, ours.output)
    np.testing.assert_array_equal(again.counts, ours.counts)
    np.testing.assert_array_equal(again.weight, ours.weight)
    assert again.ntokens == ours.ntokens
    assert {k: again.args[k] for k in ("ws", "epoch", "neg", "model", "loss")} == \
        {k: ours.args[k] for k in ("ws", "epoch", "neg", "model", "loss")}


@pytest.fixture(scope="module")
def fasttext_model(tmp_path_factory):
    fasttext = pytest.importorskip("fasttext")
    d = tmp_path_factory.mktemp("ft")
    corpus = d / "corpus.txt"
    rng = np.random.default_rng(0)
    stems = ["walk", "talk", "jump", "run", "play", "cook", "café", "naïve", "dream", "look"]
    ends = ["", "s", "ed", "ing", "er"]
    with open(corpus, "w", encoding="utf-8") as f:
        for _ in range(400):
            f.write(" ".join(rng.choice(stems) + rng.choice(ends) for _ in range(12)) + "\n")
    for attempt in range(5):
        try:
            model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=16, epoch=2,
                                                minCount=2, minn=3, maxn=5, bucket=5000,
                                                thread=1, verbose=0)
            break
        except RuntimeError as exc:
            # fastText 0.10 now and then reports "Encountered NaN." for a tiny corpus (its
            # loss average over no example yet); training again is the workaround
            if "NaN" not in str(exc) or attempt == 4:
                raise
    path = d / "model.bin"
    model.save_model(str(path))
    return fasttext, model, path


PROBES = ["walking", "cafés", "naïveté", "xylophone", "日本", "a", "</s>"]


def test_fasttext_models_read_by_fastembed(fasttext_model):
    _, model, path = fasttext_model
    ours = load_fasttext(path)
    assert ours.words == model.get_words()
    assert (ours.minn, ours.maxn, ours.bucket) == (3, 5, 5000)
    np.testing.assert_array_equal(ours.input, model.get_input_matrix())
    np.testing.assert_array_equal(ours.output, model.get_output_matrix())
    for word in ours.words + PROBES:
        np.testing.assert_allclose(ours[word], model.get_word_vector(word), rtol=1e-5,
                                   atol=1e-6)


def test_fastembed_files_read_by_fasttext(fasttext_model, tmp_path):
    fasttext, model, path = fasttext_model
    ours = load_fasttext(path)
    out = tmp_path / "ours.bin"
    save_fasttext(out, ours)
    theirs = fasttext.load_model(str(out))
    assert theirs.get_words() == ours.words
    for word in ours.words + PROBES:
        np.testing.assert_allclose(theirs.get_word_vector(word), ours[word], rtol=1e-5,
                                   atol=1e-6)
    # a model built here, not read: fastText reads it and agrees
    rng = np.random.default_rng(3)
    built = SubwordVectors(["alpha", "beta", "gamma"], rng.random((3 + 50, 8), np.float32),
                           minn=2, maxn=4, bucket=50, counts=[3, 2, 1])
    save_fasttext(tmp_path / "built.bin", built)
    theirs = fasttext.load_model(str(tmp_path / "built.bin"))
    for word in ["alpha", "beta", "gamma", "alphabet", "zeta"]:
        np.testing.assert_allclose(theirs.get_word_vector(word), built[word], rtol=1e-5,
                                   atol=1e-6)


# -- bad files -----------------------------------------------------------------------------------

@pytest.fixture
def good_bin(tmp_path, rng):
    model = SubwordVectors(["the", "cat", EOS], rng.random((3 + 30, 4), np.float32), minn=2,
                           maxn=3, bucket=30, counts=[5, 2, 1])
    path = tmp_path / "good.bin"
    save_fasttext(path, model)
    return path


def test_truncated_files_raise_and_name_the_file(good_bin, tmp_path):
    data = good_bin.read_bytes()
    for cut in [0, 3, 8, 40, 60, 70, 90, 120, len(data) // 2, len(data) - 1]:
        bad = tmp_path / f"cut{cut}.bin"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"cut\d+\.bin.*(truncated|not a fastText)"):
            load_fasttext(bad)


def test_bad_magic_version_quantized_and_trailing_bytes(good_bin, tmp_path):
    data = good_bin.read_bytes()
    cases = {
        "magic": b"\x00\x00\x00\x00\xff\xff\xff\xff" + data[8:],
        "version": struct.pack("<ii", FASTTEXT_MAGIC, 13) + data[8:],
        "trailing": data + b"\x00",
    }
    for name, content in cases.items():
        (tmp_path / f"{name}.bin").write_bytes(content)
    with pytest.raises(ValueError, match="magic.bin: not a fastText model"):
        load_fasttext(tmp_path / "magic.bin")
    with pytest.raises(ValueError, match="version.bin: fastText format version 13"):
        load_fasttext(tmp_path / "version.bin")
    with pytest.raises(ValueError, match="trailing.bin: unexpected bytes"):
        load_fasttext(tmp_path / "trailing.bin")
    # the quantization flag of the input matrix follows the dictionary
    good = load_fasttext(good_bin)
    flag = len(data) - 2 * (1 + 16) - good.input.nbytes - good.output.nbytes
    assert data[flag] == 0
    quantized = bytearray(data)
    quantized[flag] = 1
    (tmp_path / "q.ftz").write_bytes(bytes(quantized))
    with pytest.raises(ValueError, match=r"q.ftz: the input matrix is quantized"):
        load_fasttext(tmp_path / "q.ftz")


def test_save_rejects_what_the_format_cannot_hold(tmp_path, rng):
    with pytest.raises(TypeError, match="SubwordVectors"):
        save_fasttext(tmp_path / "x.bin", np.zeros((2, 2)))
    bad = SubwordVectors(["ok", "nul\0"], rng.random((2 + 5, 2), np.float32), bucket=5)
    with pytest.raises(ValueError, match="NUL"):
        save_fasttext(tmp_path / "x.bin", bad)
    assert not os.listdir(tmp_path)                     # nothing written, no temporary left


# -- word2vec models as fastText files ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["skipgram", "cbow"])
def test_word2vec_models_as_fasttext_files(tmp_path, kind):
    from fastembed.models.word2vec import train_word2vec

    sentences = [["the", "king", "rules", "the", "land"], ["the", "queen", "rules"]] * 30
    result = train_word2vec(sentences, model=kind, dim=8, min_count=1, epochs=1,
                            progress=False)
    model = result.fasttext_model()
    assert model.args["model"] == (1 if kind == "cbow" else 2) and model.bucket == 0
    np.testing.assert_array_equal(model.weight, result.model.syn0)   # no n-gram: the rows
    path = tmp_path / "w2v.bin"
    save_fasttext(path, model)
    again = load_fasttext(path)
    assert again.words == result.vocab.words
    np.testing.assert_array_equal(again.input, result.model.syn0)
    np.testing.assert_array_equal(again.output, result.model.syn1neg)
    np.testing.assert_array_equal(again.counts, result.vocab.counts)
    assert again.get("zzz") is None                                   # no subwords
    fasttext = pytest.importorskip("fasttext")
    theirs = fasttext.load_model(str(path))
    assert theirs.get_words() == result.vocab.words
    for word in result.vocab.words:
        np.testing.assert_allclose(theirs.get_word_vector(word), result.vectors[word],
                                   rtol=1e-6)
    np.testing.assert_array_equal(theirs.get_output_matrix(), result.model.syn1neg)


@pytest.mark.parametrize("kind", ["skipgram", "cbow"])
def test_trained_subword_models_as_fasttext_files(tmp_path, kind):
    # trained by fastembed with subwords, saved, read back by fastembed and by fastText: the
    # same vectors for words seen and unseen
    from fastembed.models.word2vec import train_word2vec

    rng = np.random.default_rng(1)
    stems = ["walk", "talk", "jump", "cook", "café", "dream"]
    sentences = [[rng.choice(stems) + rng.choice(["", "s", "ed", "ing"]) for _ in range(10)]
                 for _ in range(200)]
    result = train_word2vec(sentences, model=kind, dim=8, min_count=2, epochs=2, progress=False,
                            subwords=True, minn=2, maxn=4, bucket=3000)
    model = result.fasttext_model()
    assert (model.minn, model.maxn, model.bucket) == (2, 4, 3000)
    # the model holds the rows its bags use; the file holds the whole matrix
    rows = result.model.syn0_rows
    assert model.input_rows is rows and model.output is result.model.syn1neg
    assert rows.size == result.model.syn0.shape[0] < 24 + 3000
    path = tmp_path / "sub.bin"
    save_fasttext(path, model)
    again = load_fasttext(path)
    assert again.words == result.vocab.words and (again.minn, again.maxn) == (2, 4)
    np.testing.assert_array_equal(again.input[rows], result.model.syn0)
    others = np.setdiff1d(np.arange(24 + 3000), rows)
    start = again.input[others]            # never trained: their initial values
    assert np.abs(start).max() < 1 / 8 and start.std() > 0.5 / 8 / np.sqrt(3)
    np.testing.assert_array_equal(again.input, model.input)
    probes = result.vocab.words + ["walker", "cafés", "xyz", "dreamed"]
    for word in probes:
        np.testing.assert_allclose(again[word], result.vectors[word], rtol=1e-6, atol=1e-7)
    fasttext = pytest.importorskip("fasttext")
    theirs = fasttext.load_model(str(path))
    assert theirs.get_words() == result.vocab.words
    for word in probes:
        np.testing.assert_allclose(theirs.get_word_vector(word), result.vectors[word],
                                   rtol=1e-5, atol=1e-6)
