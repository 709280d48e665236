"""Tests of fastembed.text: tokenizer, sentence splitter, Vocab and pad_sequences."""
from __future__ import annotations

import doctest
import gc
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastembed._atomic
import fastembed.text
from fastembed._ext.tokens import count_tokens
from fastembed.text import TOKEN_PATTERN, Vocab, pad_sequences, split_sentences, tokenize
from conftest import assert_bitwise_equal
from reference import (SENTENCE_ENDS, ref_count_tokens, ref_pad_sequences, ref_split_sentences,
                       ref_tokenize)


# ---------------------------------------------------------------------------------------------
# tokenize


@pytest.mark.parametrize("text, expected", [
    ("", []),
    ("   \t\n ", []),
    ("--- !!! ... ,,, ''' ___", []),
    ("don't", ["don't"]),
    ("The nation's flag", ["the", "nation's", "flag"]),
    ("it\u2019s the nation\u2019s", ["it's", "the", "nation's"]),
    ("'quoted' students' o'clock", ["quoted", "students", "o'clock"]),
    ("rock 'n' roll", ["rock", "n", "roll"]),
    ("o''clock", ["o", "clock"]),
    ("a'b'c", ["a'b'c"]),
    ("\u2018quoted\u2019", ["quoted"]),  # the left quote separates, ’ -> ' then dropped
    ("Café NAÏVE façade", ["café", "naïve", "façade"]),
    ("Ωμέγα Жук 漢字 straße", ["ωμέγα", "жук", "漢字", "straße"]),
    ("abc123 4.5 1,000 2nd", ["abc123", "4", "5", "1", "000", "2nd"]),
    ("state-of-the-art well‐known", ["state", "of", "the", "art", "well", "known"]),
    ("snake_case __init__", ["snake", "case", "init"]),
    ("mail me@example.com / http://x.io", ["mail", "me", "example", "com", "http", "x", "io"]),
    ("x² ٣٤ ½", ["x²", "٣٤", "½"]),  # str.isalnum() digits and numerics count
])
def test_tokenize_cases(text, expected):
    assert tokenize(text) == expected
    assert tokenize(text) == ref_tokenize(text)


def test_tokenize_lower_false_keeps_case():
    assert tokenize("Don\u2019t SHOUT, Café", lower=False) == ["Don't", "SHOUT", "Café"]
    assert TOKEN_PATTERN.findall("Don't SHOUT") == ["Don't", "SHOUT"]


@pytest.mark.parametrize("bad", [b"bytes", None, 12, ["a list"]])
def test_tokenize_rejects_non_str(bad):
    with pytest.raises(TypeError, match="must be a str"):
        tokenize(bad)
    with pytest.raises(TypeError, match="must be a str"):
        split_sentences(bad)


_ALPHABET = st.sampled_from(list("abcXYZ019 '\u2019\u2018_-.,!?\n\r\té漢ß²") + ["\u2028"])
_TEXTS = st.one_of(st.text(_ALPHABET, max_size=40), st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, lower=st.booleans())
def test_tokenize_matches_reference(text, lower):
    tokens = tokenize(text, lower=lower)
    assert tokens == ref_tokenize(text, lower=lower)
    for token in tokens:
        assert token.replace("'", "").isalnum()
        assert not token.startswith("'") and not token.endswith("'")


# ---------------------------------------------------------------------------------------------
# split_sentences


@pytest.mark.parametrize("text, expected", [
    ("", []),
    ("...!!! ??? \n\n", []),
    ("Hello world. Bye!", [["hello", "world"], ["bye"]]),
    ("What?! Really... Yes", [["what"], ["really"], ["yes"]]),
    ("Mr. Smith went home.", [["mr"], ["smith", "went", "home"]]),
    ("Pi is 3.14 here", [["pi", "is", "3"], ["14", "here"]]),
    ("one\ntwo\r\nthree\rfour", [["one"], ["two"], ["three"], ["four"]]),
    ("a\u2028b\x85c\fd", [["a"], ["b"], ["c"], ["d"]]),
    ("no end in sight", [["no", "end", "in", "sight"]]),
    ("It\u2019s fine, isn't it?", [["it's", "fine", "isn't", "it"]]),
])
def test_split_sentences_cases(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_lower_false():
    assert split_sentences("Hi THERE. Ok", lower=False) == [["Hi", "THERE"], ["Ok"]]


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, lower=st.booleans())
def test_split_sentences_regroups_tokenize(text, lower):
    sentences = split_sentences(text, lower=lower)
    assert all(sentences)  # no empty sentence
    assert [t for s in sentences for t in s] == tokenize(text, lower=lower)
    assert sentences == ref_split_sentences(text, lower=lower)


@pytest.mark.parametrize("enabled", [True, False])
def test_split_sentences_pauses_the_garbage_collector(enabled, monkeypatch):
    # paused while the lists are built, restored as it was on the way out, also on an error
    class Pattern:
        def __init__(self):
            self.seen = []

        def findall(self, piece):
            self.seen.append(gc.isenabled())
            if piece == "boom":
                raise RuntimeError("boom")
            return piece.split()

    pattern = Pattern()
    monkeypatch.setattr(fastembed.text, "TOKEN_PATTERN", pattern)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert split_sentences("a b. c") == [["a", "b"], ["c"]]
        assert pattern.seen == [False, False]   # "a b", " c"
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError, match="boom"):
            split_sentences("boom")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_sentence_ends_are_the_line_breaks_of_splitlines():
    line_breaks = [c for c in map(chr, range(0x3000)) if len(f"a{c}b".splitlines()) == 2]
    assert sorted(set(SENTENCE_ENDS) - set(".!?")) == line_breaks
    for c in SENTENCE_ENDS:
        assert split_sentences(f"a{c}b") == [["a"], ["b"]]


# ---------------------------------------------------------------------------------------------
# Vocab: building

# first occurrences x, y, z, w, v; counts x1 y4 z2 w1 v1 -> ranking y, z, x, w, v
STREAM = [["x", "y", "z"], ["y", "w", "z"], [], ["y", "v", "y"]]
COUNTS = {"y": 4, "z": 2, "x": 1, "w": 1, "v": 1}


def test_build_orders_by_count_then_first_occurrence():
    v = Vocab.build(STREAM)
    assert v.words == ["y", "z", "x", "w", "v"]
    assert v.counts.tolist() == [4, 2, 1, 1, 1]
    assert v.counts.dtype == np.int64
    assert v.index == {"y": 0, "z": 1, "x": 2, "w": 3, "v": 4}
    assert v.pad_id is None and v.unk_id is None
    assert v.pad_token is None and v.unk_token is None
    assert v.total == 9


def test_build_ties_follow_first_occurrence_across_sequences():
    v = Vocab.build([["d", "c"], ["b", "a"], ["a", "b", "c", "d"]])
    assert v.words == ["d", "c", "b", "a"]
    v = Vocab.build([["a"], ["b", "b"], ["a"]])  # a is first and catches up: a before b
    assert v.words == ["a", "b"]


def test_build_accepts_generators_tuples_and_arrays():
    v = Vocab.build(tuple(s) for s in STREAM)
    assert v == Vocab.build(STREAM)
    v = Vocab.build([np.array(s, dtype=object) for s in STREAM if s])
    assert v.words == ["y", "z", "x", "w", "v"]


@pytest.mark.parametrize("n_types", [1, 50, 5000])
def test_count_tokens_matches_the_reference(rng, n_types):
    """The compiled counter against a plain dict, over Zipf tokens in lists and tuples (fresh
    str objects, equal but not identical, as a reader makes them), in several chunks, past
    its first 1024 slots."""
    p = 1.0 / np.arange(1, n_types + 1)
    sentences = [[str(f"t{k}") for k in rng.choice(n_types, size=rng.integers(0, 30),
                                                     p=p / p.sum())] for _ in range(800)]
    sentences = [tuple(s) if i % 2 else s for i, s in enumerate(sentences)]
    slots, counts = {}, np.zeros(3, dtype=np.int64)
    for lo in range(0, 800, 300):
        counts = count_tokens(sentences[lo:lo + 300], slots, counts)
    want_tokens, want_counts = ref_count_tokens(sentences)
    assert list(slots) == want_tokens and list(slots.values()) == list(range(len(slots)))
    assert_bitwise_equal(counts[:len(slots)], want_counts)
    assert not counts[len(slots):].any()
    v = Vocab.build(iter(sentences), min_count=2)
    order = sorted(range(len(want_tokens)), key=lambda i: -want_counts[i])
    assert v.words == [want_tokens[i] for i in order if want_counts[i] >= 2]


def test_count_tokens_iterables_and_errors():
    slots, counts = {}, np.zeros(4, dtype=np.int64)
    assert count_tokens([["a", "b"], ("a",)], slots, counts) is counts
    with pytest.raises(TypeError, match="unhashable"):
        Vocab.build([["a", ["b"]]])
    assert slots == {"a": 0, "b": 1} and counts.tolist() == [2, 1, 0, 0]
    count_tokens([iter(["b", "c"]), "ab"], slots, counts)   # iterables, a str its characters
    assert slots == {"a": 0, "b": 1, "c": 2} and counts.tolist() == [3, 3, 1, 0]
    assert count_tokens([], {}, counts) is counts


def test_from_counts_ties_follow_mapping_order():
    assert Vocab.from_counts({"z": 2, "a": 2, "m": 3}).words == ["m", "z", "a"]
    assert Vocab.from_counts({"a": 2, "z": 2, "m": 3}).words == ["m", "a", "z"]
    assert Vocab.from_counts(COUNTS) == Vocab.build(STREAM)


@pytest.mark.parametrize("min_count, max_size, pad, unk, expected", [
    (1, None, None, None, ["y", "z", "x", "w", "v"]),
    (2, None, None, None, ["y", "z"]),
    (4, None, None, None, ["y"]),
    (5, None, None, None, []),
    (1, 3, None, None, ["y", "z", "x"]),
    (1, 0, None, None, []),
    (1, 99, None, None, ["y", "z", "x", "w", "v"]),
    (1, None, "<pad>", None, ["<pad>", "y", "z", "x", "w", "v"]),
    (1, None, None, "<unk>", ["<unk>", "y", "z", "x", "w", "v"]),
    (1, None, "<pad>", "<unk>", ["<pad>", "<unk>", "y", "z", "x", "w", "v"]),
    (1, 3, "<pad>", None, ["<pad>", "y", "z"]),
    (1, 3, None, "<unk>", ["<unk>", "y", "z"]),
    (1, 3, "<pad>", "<unk>", ["<pad>", "<unk>", "y"]),
    (1, 2, "<pad>", "<unk>", ["<pad>", "<unk>"]),
    (1, 1, "<pad>", None, ["<pad>"]),
    (2, 10, "<pad>", "<unk>", ["<pad>", "<unk>", "y", "z"]),
    (9, None, "<pad>", "<unk>", ["<pad>", "<unk>"]),
])
@pytest.mark.parametrize("source", ["build", "from_counts"])
def test_min_count_and_max_size(source, min_count, max_size, pad, unk, expected):
    kwargs = dict(min_count=min_count, max_size=max_size, pad_token=pad, unk_token=unk)
    v = (Vocab.build(STREAM, **kwargs) if source == "build"
         else Vocab.from_counts(COUNTS, **kwargs))
    assert v.words == expected
    assert len(v) == len(expected)
    if max_size is not None:
        assert len(v) <= max_size
    expected_counts = [COUNTS.get(w, 0) for w in expected]
    assert v.counts.tolist() == expected_counts
    assert v.pad_id == (0 if pad else None)
    assert v.unk_id == ((1 if pad else 0) if unk else None)
    assert v.pad_token == pad and v.unk_token == unk


def test_reserved_tokens_in_the_corpus_keep_their_ids_and_count():
    v = Vocab.build([["a", "<unk>", "b"], ["<unk>", "<unk>", "a"]], pad_token="<pad>",
                    unk_token="<unk>")
    assert v.words == ["<pad>", "<unk>", "a", "b"]
    assert v.counts.tolist() == [0, 3, 2, 1]
    v = Vocab.from_counts({"a": 2, "<unk>": 9}, unk_token="<unk>", max_size=2)
    assert v.words == ["<unk>", "a"] and v.counts.tolist() == [9, 2]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(max_size=1, pad_token="<p>", unk_token="<u>"), ValueError, "max_size=1"),
    (dict(max_size=-1), ValueError, "max_size must be >= 0"),
    (dict(min_count=-1), ValueError, "min_count must be >= 0"),
    (dict(min_count=1.5), TypeError, "min_count must be an int, got float"),
    (dict(pad_token="<x>", unk_token="<x>"), ValueError, "must differ"),
    (dict(pad_token=""), ValueError, "pad_token is the empty string"),
    (dict(unk_token="<u\tnk>"), ValueError, "unk_token '<u\\\\tnk>' contains a tab"),
    (dict(unk_token=0), TypeError, "unk_token must be a str"),
])
def test_build_option_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Vocab.build(STREAM, **kwargs)
    with pytest.raises(error, match=match):
        Vocab.from_counts(COUNTS, **kwargs)


def test_build_refuses_strings_as_token_sequences():
    with pytest.raises(TypeError, match="not a string"):
        Vocab.build("some text")
    with pytest.raises(TypeError, match=r"token_streams\[1\] is a str"):
        Vocab.build([["ok"], "some text"])


@pytest.mark.parametrize("token, error, match", [
    ("a\tb", ValueError, "contains a tab"),
    ("a\nb", ValueError, "contains a newline"),
    ("a\rb", ValueError, "contains a carriage return"),
    ("", ValueError, "empty string"),
    (7, TypeError, "must be a str, got int"),
])
def test_build_rejects_unsavable_tokens(token, error, match):
    with pytest.raises(error, match=match):
        Vocab.build([["fine", token, "fine"]])
    with pytest.raises(error, match=match):
        Vocab([token])
    # a bad token that min_count drops is never kept, so it is no error
    assert Vocab.build([["fine", token, "fine"]], min_count=2).words == ["fine"]


@pytest.mark.parametrize("counts, error, match", [
    ({"a": -1}, ValueError, r"count of 'a' must be >= 0"),
    ({"a": 1.0}, TypeError, r"count of 'a' must be an int, got float"),
    ([("a", 1)], TypeError, "must be a mapping"),
])
def test_from_counts_errors(counts, error, match):
    with pytest.raises(error, match=match):
        Vocab.from_counts(counts)


def test_from_counts_accepts_numpy_integers_and_zero_counts():
    v = Vocab.from_counts({"a": np.int64(3), "b": 0}, min_count=0)
    assert v.words == ["a", "b"] and v.counts.tolist() == [3, 0]
    assert Vocab.from_counts({"a": np.int64(3), "b": 0}).words == ["a"]


# ---------------------------------------------------------------------------------------------
# Vocab: the constructor and the container protocol


def test_constructor_and_attributes():
    v = Vocab(["<pad>", "b", "a"], [0, 5, 2], pad_token="<pad>")
    assert v.pad_id == 0 and v.unk_id is None
    assert len(v) == 3 and list(v) == ["<pad>", "b", "a"]
    assert "a" in v and "z" not in v and 3 not in v
    assert v["a"] == 2
    assert v.total == 7 and isinstance(v.total, int)
    assert not v.counts.flags.writeable
    with pytest.raises(ValueError):
        v.counts[0] = 1
    assert Vocab(["a"]).counts.tolist() == [0]
    assert len(Vocab([])) == 0 and Vocab([]).total == 0
    counts = np.array([1, 2])
    w = Vocab(["a", "b"], counts)
    counts[0] = 100
    assert w.counts.tolist() == [1, 2]  # a copy


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((["a", "b", "a"],), {}, ValueError, r"words\[2\] = 'a' repeats words\[0\]"),
    ((["a", "b"], [1]), {}, ValueError, "1 entries for 2 words"),
    ((["a", "b"], [1, -2]), {}, ValueError, "-2 for word 'b'"),
    ((["a", "b"], [1.0, 2.0]), {}, TypeError, "counts must be a 1-D array-like of integers"),
    ((["a"],), {"pad_token": "<pad>"}, ValueError, "pad_token '<pad>' is not one of the words"),
    ((["a", "b"],), {"pad_token": "a", "unk_token": "a"}, ValueError, "must differ"),
    (("abc",), {}, TypeError, "not a single str"),
])
def test_constructor_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        Vocab(*args, **kwargs)


def test_getitem_missing_word_raises_keyerror_with_message():
    v = Vocab.build([["a"]], unk_token="<unk>")
    with pytest.raises(KeyError, match=r"'zzz' is not in the vocabulary \(size 2\)"):
        v["zzz"]


def test_equality():
    v = Vocab.build(STREAM, unk_token="<unk>")
    assert v == Vocab.build(STREAM, unk_token="<unk>")
    assert v != Vocab.build(STREAM, pad_token="<unk>")  # same words, other role
    assert v != Vocab(v.words, v.counts + 1, unk_token="<unk>")
    assert v != Vocab(list(reversed(v.words)), v.counts[::-1], unk_token="<unk>")
    assert v != v.words and (v == "text") is False
    with pytest.raises(TypeError):
        hash(v)


def test_repr():
    v = Vocab.build(STREAM, pad_token="<pad>", unk_token="<unk>")
    assert repr(v) == ("Vocab(size=7, total=9, pad='<pad>', unk='<unk>', "
                       "words=['<pad>', '<unk>', 'y', 'z', 'x', ...])")
    assert repr(Vocab(["a"], [2])) == "Vocab(size=1, total=2, words=['a'])"
    assert repr(Vocab([])) == "Vocab(size=0, total=0, words=[])"


# ---------------------------------------------------------------------------------------------
# Vocab: encode and decode

TOKENS = ["y", "nope", "z", "v", "???", "y"]


@pytest.mark.parametrize("oov, expected", [
    (None, [2, 1, 3, 6, 1, 2]),
    ("unk", [2, 1, 3, 6, 1, 2]),
    ("skip", [2, 3, 6, 2]),
])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, "int16"])
@pytest.mark.parametrize("as_iterator", [False, True])
def test_encode_with_unk(oov, expected, dtype, as_iterator):
    v = Vocab.build(STREAM, pad_token="<pad>", unk_token="<unk>")
    tokens = iter(TOKENS) if as_iterator else TOKENS
    ids = v.encode(tokens, oov=oov, dtype=dtype)
    assert ids.dtype == np.dtype(dtype) and ids.ndim == 1
    assert ids.tolist() == expected


@pytest.mark.parametrize("as_iterator", [False, True])
def test_encode_without_unk_defaults_to_skip(as_iterator):
    v = Vocab.build(STREAM)
    tokens = iter(TOKENS) if as_iterator else TOKENS
    assert v.encode(tokens).tolist() == [0, 1, 4, 0]
    with pytest.raises(ValueError, match="needs a vocabulary with an unk_token"):
        v.encode(TOKENS, oov="unk")


@pytest.mark.parametrize("as_iterator", [False, True])
def test_encode_error_mode(as_iterator):
    v = Vocab.build(STREAM, unk_token="<unk>")
    ok = ["y", "z", "v"]
    assert v.encode(iter(ok) if as_iterator else ok, oov="error").tolist() == [1, 2, 5]
    tokens = iter(TOKENS) if as_iterator else TOKENS
    with pytest.raises(KeyError, match="token 'nope' at position 1 is not in the vocabulary"):
        v.encode(tokens, oov="error")
    # the unk token itself is an ordinary word of the vocabulary
    assert v.encode(["<unk>"], oov="error").tolist() == [0]


def test_encode_empty_and_all_unknown():
    v = Vocab.build(STREAM, unk_token="<unk>")
    for oov in (None, "unk", "skip", "error"):
        empty = v.encode([], oov=oov)
        assert empty.shape == (0,) and empty.dtype == np.int32
    assert v.encode(["q", "r"], oov="skip").shape == (0,)
    assert v.encode(["q", "r"]).tolist() == [0, 0]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(oov="ignore"), ValueError, "oov must be None, 'unk', 'skip' or 'error'"),
    (dict(dtype=np.float32), TypeError, "integer dtype"),
    (dict(dtype=bool), TypeError, "integer dtype"),
])
def test_encode_option_errors(kwargs, error, match):
    v = Vocab.build(STREAM)
    with pytest.raises(error, match=match):
        v.encode(["y"], **kwargs)
    with pytest.raises(error, match=match):
        v.encode_batch([["y"]], **kwargs)


def test_encode_dtype_too_small():
    v = Vocab([f"w{i}" for i in range(300)])
    with pytest.raises(ValueError, match="int8 cannot hold id 299"):
        v.encode(["w0"], dtype=np.int8)
    assert v.encode(["w299"], dtype=np.uint16).tolist() == [299]
    assert Vocab([f"w{i}" for i in range(256)]).encode(["w255"], dtype=np.uint8).tolist() == [255]


def test_encode_refuses_a_string():
    v = Vocab.build(STREAM)
    with pytest.raises(TypeError, match="not a string"):
        v.encode("y z")
    with pytest.raises(TypeError, match=r"sequences\[1\] is a str"):
        v.encode_batch([["y"], "y z"])
    with pytest.raises(TypeError, match="not a string"):
        v.encode_batch("y z")


@pytest.mark.parametrize("oov", [None, "unk", "skip"])
def test_encode_batch_matches_encode(oov):
    v = Vocab.build(STREAM, unk_token="<unk>")
    sequences = [TOKENS, [], ["z"], iter(["v", "q"])]
    batch = v.encode_batch(sequences, oov=oov, dtype=np.int64)
    expected = [v.encode(s, oov=oov, dtype=np.int64) for s in
                [TOKENS, [], ["z"], ["v", "q"]]]
    assert len(batch) == 4
    for got, want in zip(batch, expected):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    assert v.encode_batch([]) == []
    with pytest.raises(KeyError, match="'nope' at position 1"):
        v.encode_batch([["y"], TOKENS], oov="error")


def test_decode_round_trip():
    v = Vocab.build(STREAM, pad_token="<pad>", unk_token="<unk>")
    words = ["y", "x", "<pad>", "v"]
    for dtype in (np.int8, np.uint16, np.int32, np.int64):
        assert v.decode(v.encode(words, dtype=dtype)) == words
    assert v.decode([0, 1]) == ["<pad>", "<unk>"]
    assert v.decode(range(len(v))) == v.words
    assert v.decode([]) == [] and v.decode(np.array([], np.int64)) == []


@pytest.mark.parametrize("ids, error, match", [
    ([0, 1, 7, 9], IndexError, "id 7 at position 2 is out of range for a vocabulary of size 7"),
    (np.array([3, -1]), IndexError, "id -1 at position 1 is out of range"),
    ([[0, 1]], ValueError, r"ids must be 1-D, got shape \(1, 2\)"),
    (3, ValueError, r"ids must be 1-D, got shape \(\)"),
    ([0.0, 1.0], TypeError, "ids must be integers, got dtype float64"),
    ([True], TypeError, "dtype bool"),
])
def test_decode_errors(ids, error, match):
    v = Vocab.build(STREAM, pad_token="<pad>", unk_token="<unk>")
    with pytest.raises(error, match=match):
        v.decode(ids)


# ---------------------------------------------------------------------------------------------
# Vocab: save and load

UNICODE_WORDS = ["café", "漢字", "naïve", "Ωμέγα", "😀", "#", "=", "none", "pad=0",
                 "# fastembed-vocab 1 size=3 pad=none unk=none", " spaced ", "\u2028", "\x00"]


@pytest.mark.parametrize("vocab", [
    Vocab.build(STREAM),
    Vocab.build(STREAM, pad_token="<pad>"),
    Vocab.build(STREAM, unk_token="<unk>"),
    Vocab.build(STREAM, pad_token="<pad>", unk_token="<unk>", max_size=4),
    Vocab.build([UNICODE_WORDS, UNICODE_WORDS[::2]], pad_token="[PAD]", unk_token="[UNK]"),
    Vocab(["a", "b", "<u>"], [2**40, 0, 5], unk_token="<u>"),
    Vocab([]),
], ids=["plain", "pad", "unk", "pad-unk-capped", "unicode", "unk-last", "empty"])
@pytest.mark.parametrize("as_path", [False, True])
def test_save_load_round_trip(tmp_path, vocab, as_path):
    path = tmp_path / "vocab.txt"
    vocab.save(path if as_path else str(path))
    loaded = Vocab.load(path if as_path else str(path))
    assert loaded == vocab
    assert loaded.words == vocab.words and loaded.counts.tolist() == vocab.counts.tolist()
    assert (loaded.pad_id, loaded.unk_id) == (vocab.pad_id, vocab.unk_id)
    lines = path.read_bytes().decode("utf-8").split("\n")
    pad = "none" if vocab.pad_id is None else vocab.pad_id
    unk = "none" if vocab.unk_id is None else vocab.unk_id
    assert lines[0] == f"# fastembed-vocab 1 size={len(vocab)} pad={pad} unk={unk}"
    assert lines[1:] == [f"{w}\t{c}" for w, c in zip(vocab.words, vocab.counts)] + [""]
    assert os.listdir(tmp_path) == ["vocab.txt"]


def test_save_overwrites_and_load_accepts_crlf(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("old contents\n", encoding="utf-8")
    v = Vocab.build(STREAM, unk_token="<unk>")
    v.save(path)
    assert Vocab.load(path) == v
    assert sorted(os.listdir(tmp_path)) == ["vocab.txt"]
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert Vocab.load(path) == v


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch, failing):
    path = tmp_path / "vocab.txt"
    old = Vocab.build([["old", "words"]], unk_token="<unk>")
    old.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(f"simulated {failing} failure")

    if failing == "write":  # fail half way through writing the temporary file
        monkeypatch.setattr(fastembed._atomic.os, "fdopen", _failing_open)
    else:
        monkeypatch.setattr(fastembed.text.os, failing, boom)
    with pytest.raises(OSError, match="simulated"):
        Vocab.build(STREAM, pad_token="<pad>").save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert Vocab.load(path) == old
    assert os.listdir(tmp_path) == ["vocab.txt"]  # no temporary file left behind


class _FailingFile:
    """Wraps a real file; writes a little, then fails like a full disk."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, text):
        self.f.write(text[:10])
        raise OSError("simulated write failure")


def _failing_open(fd, *args, **kwargs):
    return _FailingFile(open(fd, *args, **kwargs))


def test_save_into_missing_directory_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        Vocab.build(STREAM).save(tmp_path / "missing" / "vocab.txt")
    assert os.listdir(tmp_path) == []


def test_save_rechecks_words(tmp_path):
    v = Vocab.build(STREAM)
    v.words[1] = "z\tz"  # changed behind the Vocab's back
    with pytest.raises(ValueError, match=r"word 1 'z\\tz' contains a tab"):
        v.save(tmp_path / "vocab.txt")
    assert os.listdir(tmp_path) == []


HEADER0 = "# fastembed-vocab 1 size=0 pad=none unk=none\n"
HEADER2 = "# fastembed-vocab 1 size=2 pad=none unk=none\n"


@pytest.mark.parametrize("content, lineno, match", [
    ("", 1, "empty file"),
    ("\n", 1, "not a fastembed vocabulary header: ''"),
    ("a\t1\nb\t2\n", 1, "not a fastembed vocabulary header"),
    ("# fastembed-vocab 1 size=2\na\t1\nb\t2\n", 1, "not a fastembed vocabulary header"),
    ("# fastembed-vocab 2 size=0 pad=none unk=none\n", 1, "unsupported .* version '2'"),
    ("# fastembed-vocab 1 size=1 pad=1 unk=none\na\t1\n", 1, "pad=1 is out of range"),
    ("# fastembed-vocab 1 size=2 pad=0 unk=0\na\t1\nb\t1\n", 1, "same id 0"),
    (HEADER2 + "a\t1\nb\n", 3, "expected 'word<TAB>count', got 'b'"),
    (HEADER2 + "a\t1\tx\nb\t1\n", 2, "expected 'word<TAB>count'"),
    (HEADER2 + "a\t1\n\t4\n", 3, "empty word"),
    (HEADER2 + "a\t1\nb\tx\n", 3, "count 'x' of 'b' is not a non-negative integer"),
    (HEADER2 + "a\t-1\nb\t1\n", 2, "count '-1'"),
    (HEADER2 + "a\t\nb\t1\n", 2, "count ''"),
    (HEADER2 + "a\t\u0663\nb\t1\n", 2, "count '\u0663'"),  # an Arabic-Indic digit
    (HEADER2 + "a\t 1\nb\t1\n", 2, "count ' 1'"),
    (HEADER2 + "a\t1\na\t2\n", 3, r"duplicate word 'a' \(first on line 2\)"),
    (HEADER2 + "a\t1\n", 3, "the header promises 2 words, the file has 1"),
    (HEADER2 + "a\t1\nb\t1\nc\t1\n", 5, "the header promises 2 words, the file has 3"),
    (HEADER2 + "a\t1\nb\t1\n\n", 4, "expected 'word<TAB>count', got ''"),
    (HEADER0 + "\n", 2, "expected 'word<TAB>count'"),
])
def test_load_errors_name_file_and_line(tmp_path, content, lineno, match):
    path = tmp_path / "vocab.txt"
    path.write_bytes(content.encode("utf-8"))
    with pytest.raises(ValueError, match=match) as info:
        Vocab.load(path)
    assert str(info.value).startswith(f"{path}:{lineno}: ")


def test_load_empty_vocab_and_bom(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(HEADER0.encode("utf-8"))
    assert Vocab.load(path) == Vocab([])
    path.write_bytes(("\ufeff" + HEADER2 + "a\t3\nb\t1\n").encode("utf-8"))
    assert Vocab.load(path) == Vocab(["a", "b"], [3, 1])


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        Vocab.load(tmp_path / "nope.txt")


# ---------------------------------------------------------------------------------------------
# pad_sequences

SEQUENCES = [[1, 2, 3, 4], [], [5], [6, 7, 8], [9, 10]]


def _as_kind(sequences, kind):
    if kind == "lists":
        return [list(s) for s in sequences]
    if kind == "tuples":
        return [tuple(s) for s in sequences]
    if kind == "arrays":
        return [np.array(s, dtype=np.int64) for s in sequences]
    return [np.array(s) if i % 2 else list(s) for i, s in enumerate(sequences)]  # mixed


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 0, 1, 3, 4, 6])
@pytest.mark.parametrize("kind", ["lists", "tuples", "arrays", "mixed"])
def test_pad_sequences_matches_keras_reference(padding, truncating, maxlen, kind):
    sequences = _as_kind(SEQUENCES, kind)
    got = pad_sequences(sequences, maxlen=maxlen, padding=padding, truncating=truncating)
    want = ref_pad_sequences(SEQUENCES, maxlen, "int32", padding, truncating, 0)
    assert got.dtype == np.int32
    assert got.shape == (5, 4 if maxlen is None else maxlen)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 0, 2, 5])
@pytest.mark.parametrize("sequences", [[], [[]], [[], [], []], [[7], []], [[], [1, 2, 3]]],
                         ids=["none", "one-empty", "all-empty", "last-empty", "first-empty"])
def test_pad_sequences_empty_cases(padding, truncating, maxlen, sequences):
    got = pad_sequences(sequences, maxlen=maxlen, padding=padding, truncating=truncating,
                        value=-1)
    want = ref_pad_sequences(sequences, maxlen, "int32", padding, truncating, -1)
    longest = max((len(s) for s in sequences), default=0)
    assert got.shape == (len(sequences), longest if maxlen is None else maxlen)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype, value", [("int64", -1), ("float32", 0.5), (np.uint16, 9),
                                          ("float64", np.nan)])
@pytest.mark.parametrize("padding", ["pre", "post"])
def test_pad_sequences_dtype_and_value(dtype, value, padding):
    got = pad_sequences(SEQUENCES, maxlen=3, dtype=dtype, padding=padding, value=value)
    want = ref_pad_sequences(SEQUENCES, 3, dtype, padding, "pre", value)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, want)  # NaNs compare equal here


def test_pad_sequences_random_against_reference(rng):
    lengths = rng.integers(0, 30, size=500)
    lists = [rng.integers(-1000, 1000, size=n).tolist() for n in lengths]
    arrays = [np.array(s, dtype=np.int64) for s in lists]
    for padding in ("pre", "post"):
        for truncating in ("pre", "post"):
            want = ref_pad_sequences(lists, 17, "int32", padding, truncating, 0)
            for sequences in (lists, arrays):  # the fast path and the general loop
                got = pad_sequences(sequences, 17, padding=padding, truncating=truncating)
                np.testing.assert_array_equal(got, want)


def test_pad_sequences_casts_like_keras():
    # floats are truncated toward zero, like np.asarray(seq, dtype)
    np.testing.assert_array_equal(pad_sequences([[1.7, -1.7]]), [[1, -1]])
    # integer arrays wrap around on the cast, as np.asarray(array, "int8") does
    np.testing.assert_array_equal(pad_sequences([np.array([300, 1])], dtype="int8"),
                                  np.array([[44, 1]], dtype=np.int8))
    # a Python int out of range: NumPy refuses, in Keras's per-sequence np.asarray too
    with pytest.raises(OverflowError):
        pad_sequences([[300]], dtype="int8")
    # an out-of-range element that truncation removes is never cast
    np.testing.assert_array_equal(pad_sequences([[300, 1]], maxlen=1, dtype="int8"), [[1]])


def test_pad_sequences_sample_shape():
    sequences = [[[1, 2], [3, 4], [5, 6]], [[7, 8]]]
    got = pad_sequences(sequences, maxlen=2, truncating="post")
    np.testing.assert_array_equal(got, [[[1, 2], [3, 4]], [[0, 0], [7, 8]]])
    assert got.shape == (2, 2, 2)
    with pytest.raises(ValueError, match=r"shape of sample \(3,\) of sequence at position 1"):
        pad_sequences([[[1, 2]], [[1, 2, 3]]])


def test_pad_sequences_strings_with_object_dtype():
    got = pad_sequences([["a", "b", "c"], ["d"]], maxlen=2, dtype=object, value="<pad>",
                        padding="post")
    assert got.tolist() == [["b", "c"], ["d", "<pad>"]]
    with pytest.raises(ValueError, match="value is a string"):
        pad_sequences([["a"]], value="<pad>")


@pytest.mark.parametrize("sequences", [SEQUENCES, [], [[], []]])
@pytest.mark.parametrize("kwargs, match", [
    (dict(padding="middle"), "padding must be 'pre' or 'post', got 'middle'"),
    (dict(truncating="both"), "truncating must be 'pre' or 'post', got 'both'"),
    (dict(maxlen=-1), "maxlen must be >= 0, got -1"),
])
def test_pad_sequences_argument_errors(sequences, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(sequences, **kwargs)


@pytest.mark.parametrize("maxlen", [2.5, "2", True])
def test_pad_sequences_maxlen_of_a_wrong_type(maxlen):
    with pytest.raises(TypeError, match="maxlen must be an int or None"):
        pad_sequences(SEQUENCES, maxlen=maxlen)


def test_pad_sequences_input_errors():
    with pytest.raises(ValueError, match="found non-iterable: 3"):
        pad_sequences([[1], 3])
    with pytest.raises(ValueError, match="must be a sequence"):
        pad_sequences(s for s in SEQUENCES)


def test_pad_sequences_accepts_a_matrix_and_a_sized_iterable():
    matrix = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(pad_sequences(matrix, maxlen=2), [[1, 2], [4, 5]])
    keys = {(1, 2): "a", (3,): "b"}.keys()  # sized, iterable, not indexable
    np.testing.assert_array_equal(pad_sequences(keys, padding="post"), [[1, 2], [3, 0]])


def test_pad_sequences_with_encoded_batches():
    v = Vocab.build(STREAM, pad_token="<pad>", unk_token="<unk>")
    ids = v.encode_batch([["y", "z", "x", "q"], ["v"]])
    x = pad_sequences(ids, maxlen=3, value=v.pad_id)
    np.testing.assert_array_equal(x, [[3, 4, 1], [0, 0, 6]])


# ---------------------------------------------------------------------------------------------
# documentation


def test_docstring_examples_run():
    result = doctest.testmod(fastembed.text, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 20
    assert result.failed == 0


def test_every_public_name_is_documented_with_an_example():
    assert set(fastembed.text.__all__) == {"TOKEN_PATTERN", "tokenize", "split_sentences",
                                           "Vocab", "pad_sequences"}
    assert "TOKEN_PATTERN" in fastembed.text.__doc__ and ">>>" in fastembed.text.__doc__
    for name in ("tokenize", "split_sentences", "Vocab", "pad_sequences"):
        doc = getattr(fastembed.text, name).__doc__
        assert "Examples" in doc and ">>>" in doc, name
    for name in ("build", "from_counts", "encode", "encode_batch", "decode", "save"):
        doc = getattr(Vocab, name).__doc__
        assert "Examples" in doc and ">>>" in doc, name
