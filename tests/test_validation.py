"""One set of argument rules (fastembed._validation) on every public entry point.

A wrong *type* raises TypeError, a right type with a wrong *value* ValueError, and the message
has one shape everywhere: ``"{name} must be an int, got str"``, ``"{name} must be >= 1, got
0"``, ``"{name} must lie in [0, 1), got 1.5"``, ``"{name} must be a finite number, got nan"``.
NumPy integer and float scalars are accepted where an int or a real number is; bool is
neither.

The table below pairs each entry point's scalar argument with the rule it follows; every
rule brings its bad values (a bool, a str, a float for an int, None, a negative, zero, NaN and
infinities) with the exact exception and message, and its good NumPy scalars.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import fastembed
from fastembed import cli, optim
from fastembed._validation import (
    as_rng,
    check_float,
    check_float_dtype,
    check_int,
    check_n_threads,
)
from fastembed.models.classifier import BagClassifier, BagDataset
from fastembed.models.word2vec import CBOW, Corpus, CorpusDataset, SkipGram, train_word2vec
from fastembed.text import Vocab, pad_sequences
from fastembed.train import ArrayDataset, Trainer
from fastembed.vectors import Vectors

NAN, INF = float("nan"), float("inf")
N_THREADS_HINT = "(a count, or a negative one counted back from the maximum: -1 = all"


@dataclass
class Rule:
    """The bad values of an argument, each with (exception, message), and its good values."""

    bad: list
    good: list


def _type_error(name, what, value):
    return (value, TypeError, re.escape(f"{name} must be {what}, got {type(value).__name__}"))


def _value_error(name, bound, value):
    return (value, ValueError, re.escape(f"{name} must {bound}, got {value}"))


def ints(name, minimum=None, maximum=None, *, none=False, good=None):
    """An int in [minimum, maximum]; None too when ``none``."""
    what = "an int or None" if none else "an int"
    bad = [_type_error(name, what, v) for v in (True, np.bool_(False), "3", 3.0,
                                                 np.float64(2.0), [3], 1j)]
    if not none:
        bad.append(_type_error(name, what, None))
    if minimum is not None and maximum is not None:
        bound = f"lie in [{minimum}, {maximum}]"
        bad += [_value_error(name, bound, minimum - 1), _value_error(name, bound, maximum + 1)]
    elif minimum is not None:
        bad += [_value_error(name, f"be >= {minimum}", minimum - 1),
                _value_error(name, f"be >= {minimum}", minimum - 5)]
    if good is None:
        base = 0 if minimum is None else minimum
        small = np.uint8 if base + 1 >= 0 else np.int8
        good = [np.int64(base + 1), small(base + 1), np.int32(base), base + 1]
    return Rule(bad, good + ([None] if none else []))


def reals(name, *, low=None, low_open=False, high=None, high_open=False, finite=True,
          none=False, good=(0.5,)):
    """A real number in the range; NaN never, infinities only when not ``finite``."""
    what = "a real number or None" if none else "a real number"
    bad = [_type_error(name, what, v) for v in (True, np.bool_(True), "0.5", [0.5], 1j)]
    if not none:
        bad.append(_type_error(name, what, None))
    bad.append((NAN, ValueError, re.escape(
        f"{name} must be a {'finite ' if finite else ''}number"
        f"{'' if finite else ' (not NaN)'}, got nan")))
    if finite:
        bad += [(INF, ValueError, re.escape(f"{name} must be a finite number, got inf")),
                (-INF, ValueError, re.escape(f"{name} must be a finite number, got -inf"))]
    if low is not None and high is not None:
        bound = f"lie in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        bad += [_value_error(name, bound, low - 0.5), _value_error(name, bound, high + 0.5)]
        if low_open:
            bad.append(_value_error(name, bound, low))
        if high_open:
            bad.append(_value_error(name, bound, high))
    elif low is not None:
        bound = f"be {'>' if low_open else '>='} {low}"
        bad += [_value_error(name, bound, low - 0.5), _value_error(name, bound, -1)]
        if low_open:
            bad += [_value_error(name, bound, low), _value_error(name, bound, 0.0)]
    goods = [f(g) for g in good for f in (np.float32, np.float64, float)]
    return Rule(bad, goods + ([None] if none else []))


def positive(name, **kw):
    return reals(name, low=0, low_open=True, **kw)


def nonneg(name, **kw):
    return reals(name, low=0, good=(0.0, 0.5), **kw)


def fraction(name):
    return reals(name, low=0, high=1, high_open=True, good=(0.0, 0.5))


def seeds(name="seed"):
    """A reproducible seed: an int >= 0 (Trainer, datasets, train_word2vec)."""
    rule = ints(name, 0)
    rule.bad.append(_type_error(name, "an int", np.random.default_rng(0)))
    return rule


def rng_seeds(name="seed"):
    """as_rng: None, an int >= 0 or a numpy Generator."""
    what = "None, an int or a numpy.random.Generator"
    bad = [_type_error(name, what, v) for v in (True, np.bool_(True), "1", 1.0, [1], 1j)]
    bad += [_value_error(name, "be >= 0", -1), _value_error(name, "be >= 0", np.int64(-3))]
    return Rule(bad, [np.int64(2), np.uint8(2), 0, None, np.random.default_rng(0)])


def threads(name="n_threads", *, none=True):
    what = "an int or None" if none else "an int"
    bad = [_type_error(name, what, v) for v in (True, np.bool_(True), "2", 2.0, 1j)]
    if not none:
        bad.append(_type_error(name, what, None))
    bad.append((0, ValueError, re.escape(f"{name} must be a non-zero int {N_THREADS_HINT}")
                + (re.escape("; None for the default") if none else "")
                + re.escape("), got 0")))
    return Rule(bad, [np.int64(1), np.int32(2), 1, -1] + ([None] if none else []))


def dtypes(name="dtype"):
    bad = [(v, TypeError, re.escape(f"{name} must be float32 or float64, got {got}"))
           for v, got in ((np.int32, "int32"), ("int64", "int64"), (bool, "bool"),
                          (np.float16, "float16"), (np.complex64, "complex64"))]
    bad.append(("no such dtype", TypeError,
                re.escape(f"{name} must be float32 or float64, got 'no such dtype'")))
    return Rule(bad, [np.float32, np.float64, "float32", np.dtype("float64")])


# -- the objects the entry points need ---------------------------------------------------------

def _table():
    return np.ones((4, 3), np.float32)


def _layer():
    return fastembed.Embedding(weight=np.ones((3, 2), np.float32))


class _Model:
    def train_step(self, batch, *, lr, rng, optimizer):
        return {"loss": 0.0, "count": 1}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def _trainer(**kw):
    return Trainer(_Model(), data=ArrayDataset(np.ones(4), batch_size=2), progress=False, **kw)


SENTENCES = [["a", "b", "c"], ["b", "c", "a"]] * 4
W2V = dict(dim=4, epochs=1, min_count=1, sample=0, progress=False, n_threads=1)


def _word2vec(**kw):
    return train_word2vec(SENTENCES, **{**W2V, **kw})


def _vectors():
    return Vectors([f"w{i}" for i in range(5)], np.eye(5, 3, dtype=np.float32) + 0.1)


def _set_num_threads(n):
    before = fastembed.get_num_threads()
    try:
        fastembed.set_num_threads(n)
    finally:
        fastembed.set_num_threads(before)


# (entry point, argument, call(value, tmp), rule)
def _layer_entries(cls):
    """The constructor arguments that Embedding and EmbeddingBag share."""
    def make(arg):
        return lambda v, t: cls(**{"num_embeddings": 4, "embedding_dim": 3, arg: v})
    return [(cls.__name__, arg, make(arg), rule) for arg, rule in [
        ("num_embeddings", ints("num_embeddings", 0)),
        ("embedding_dim", ints("embedding_dim", 0)),
        ("seed", rng_seeds()),
        ("padding_idx", ints("padding_idx", -4, 3, none=True)),
        ("max_norm", positive("max_norm", finite=False, none=True, good=(0.5, INF))),
        ("norm_type", positive("norm_type", finite=False, good=(1.0, INF))),
        ("dtype", dtypes()),
    ]]


ENTRIES: list[tuple[str, str, Callable[[Any, Any], Any], Rule]] = [
    # layers
    *_layer_entries(fastembed.Embedding),
    *_layer_entries(fastembed.EmbeddingBag),
    ("Embedding", "input_length", lambda v, t: fastembed.Embedding(4, 3, input_length=v),
     ints("input_length", 0, none=True)),
    ("Linear", "in_features", lambda v, t: fastembed.Linear(v, 2), ints("in_features", 0)),
    ("Linear", "out_features", lambda v, t: fastembed.Linear(3, v), ints("out_features", 0)),
    ("Linear", "seed", lambda v, t: fastembed.Linear(3, 2, seed=v), rng_seeds()),
    ("Linear", "dtype", lambda v, t: fastembed.Linear(3, 2, dtype=v), dtypes()),
    ("Embedding.forward", "n_threads", lambda v, t: fastembed.Embedding(4, 3)([1], n_threads=v),
     threads()),
    # functions
    ("gather", "n_threads", lambda v, t: fastembed.gather(_table(), [1, 2], n_threads=v),
     threads()),
    ("scatter_add", "n_threads",
     lambda v, t: fastembed.scatter_add(_table(), [1], np.ones((1, 3), np.float32),
                                        n_threads=v), threads()),
    ("coalesce", "n_threads", lambda v, t: fastembed.coalesce([1], np.ones((1, 3)), n_threads=v),
     threads()),
    ("coalesce", "num_embeddings",
     lambda v, t: fastembed.coalesce([0], np.ones((1, 3)), num_embeddings=v),
     ints("num_embeddings", 0, none=True, good=[np.int64(1), np.uint8(2), 5])),
    ("embedding_bag", "n_threads",
     lambda v, t: fastembed.embedding_bag(_table(), [[1, 2]], n_threads=v), threads()),
    ("embedding_bag", "padding_idx",
     lambda v, t: fastembed.embedding_bag(_table(), [[1, 2]], padding_idx=v),
     ints("padding_idx", -4, 3, none=True)),
    ("set_num_threads", "n", lambda v, t: _set_num_threads(v), threads("n", none=False)),
    # optimizers
    ("SGD", "lr", lambda v, t: optim.SGD(_layer(), lr=v), positive("lr")),
    ("SGD", "momentum", lambda v, t: optim.SGD(_layer(), lr=0.1, momentum=v), nonneg("momentum")),
    ("SGD", "n_threads", lambda v, t: optim.SGD(_layer(), lr=0.1, n_threads=v), threads()),
    ("Adagrad", "lr", lambda v, t: optim.Adagrad(_layer(), lr=v), positive("lr")),
    ("Adagrad", "eps", lambda v, t: optim.Adagrad(_layer(), eps=v), nonneg("eps")),
    ("Adagrad", "initial_accumulator_value",
     lambda v, t: optim.Adagrad(_layer(), initial_accumulator_value=v),
     nonneg("initial_accumulator_value")),
    ("RowWiseAdagrad", "eps", lambda v, t: optim.RowWiseAdagrad(_layer(), eps=v), nonneg("eps")),
    ("Adam", "lr", lambda v, t: optim.Adam(_layer(), lr=v), positive("lr")),
    ("Adam", "betas[0]", lambda v, t: optim.Adam(_layer(), betas=(v, 0.999)),
     fraction("betas[0]")),
    ("Adam", "betas[1]", lambda v, t: optim.Adam(_layer(), betas=(0.9, v)),
     fraction("betas[1]")),
    ("Adam", "eps", lambda v, t: optim.Adam(_layer(), eps=v), nonneg("eps")),
    ("Adam", "n_threads", lambda v, t: optim.Adam(_layer(), n_threads=v), threads()),
    ("AdamW", "weight_decay", lambda v, t: optim.AdamW(_layer(), weight_decay=v),
     nonneg("weight_decay")),
    # training
    ("Trainer", "epochs", lambda v, t: _trainer(epochs=v), ints("epochs", 1)),
    ("Trainer", "lr", lambda v, t: _trainer(lr=v), positive("lr")),
    ("Trainer", "min_lr", lambda v, t: _trainer(lr=0.5, min_lr=v),
     reals("min_lr", low=0, high=0.5, none=True, good=(0.0, 0.25))),
    ("Trainer", "seed", lambda v, t: _trainer(seed=v), seeds()),
    ("Trainer", "keep", lambda v, t: _trainer(keep=v), ints("keep", 1, none=True)),
    ("Trainer", "checkpoint_every",
     lambda v, t: _trainer(checkpoint_every=v, checkpoint_dir=t.parent / "ckpt"),
     ints("checkpoint_every", 1, none=True)),
    ("ArrayDataset", "batch_size", lambda v, t: ArrayDataset(np.arange(4), batch_size=v),
     ints("batch_size", 1)),
    ("ArrayDataset", "seed", lambda v, t: ArrayDataset(np.arange(4), batch_size=2, seed=v),
     seeds()),
    ("ArrayDataset.permutation", "epoch",
     lambda v, t: ArrayDataset(np.arange(4), batch_size=2).permutation(v), ints("epoch", 0)),
    ("ArrayDataset.batch", "index",
     lambda v, t: ArrayDataset(np.arange(4), batch_size=1).batch(0, v),
     ints("index", good=[np.int64(1), np.uint8(2), 3])),
    # text
    ("Vocab.build", "min_count", lambda v, t: Vocab.build([["a", "b"]], min_count=v),
     ints("min_count", 0)),
    ("Vocab.build", "max_size", lambda v, t: Vocab.build([["a", "b"]], max_size=v),
     ints("max_size", 0, none=True)),
    ("Vocab.from_counts", "count", lambda v, t: Vocab.from_counts({"a": v}),
     ints("the count of 'a'", 0)),
    ("pad_sequences", "maxlen", lambda v, t: pad_sequences([[1, 2]], maxlen=v),
     ints("maxlen", 0, none=True)),
    # word2vec
    ("train_word2vec", "dim", lambda v, t: _word2vec(dim=v), ints("dim", 1)),
    ("train_word2vec", "window", lambda v, t: _word2vec(window=v), ints("window", 1)),
    ("train_word2vec", "negative", lambda v, t: _word2vec(negative=v), ints("negative", 1)),
    ("train_word2vec", "epochs", lambda v, t: _word2vec(epochs=v), ints("epochs", 1)),
    ("train_word2vec", "min_count", lambda v, t: _word2vec(min_count=v),
     ints("min_count", 1)),
    ("train_word2vec", "sample", lambda v, t: _word2vec(sample=v), fraction("sample")),
    ("train_word2vec", "lr", lambda v, t: _word2vec(lr=v), positive("lr", none=True)),
    ("train_word2vec", "min_lr", lambda v, t: _word2vec(lr=0.5, min_lr=v),
     reals("min_lr", low=0, high=0.5, good=(0.0, 0.25))),
    ("train_word2vec", "seed", lambda v, t: _word2vec(seed=v), seeds()),
    ("train_word2vec", "n_threads", lambda v, t: _word2vec(n_threads=v), threads()),
    ("train_word2vec", "shards", lambda v, t: _word2vec(shards=v), ints("shards", 1)),
    ("train_word2vec", "round_words", lambda v, t: _word2vec(round_words=v),
     ints("round_words", 1, none=True)),
    ("train_word2vec", "dtype", lambda v, t: _word2vec(dtype=v), dtypes()),
    ("SkipGram", "dim", lambda v, t: SkipGram([5, 3, 2], dim=v), ints("dim", 1)),
    ("SkipGram", "ns_exponent", lambda v, t: SkipGram([5, 3, 2], dim=2, ns_exponent=v),
     reals("ns_exponent", good=(-0.5, 0.75))),
    ("SkipGram", "seed", lambda v, t: SkipGram([5, 3, 2], dim=2, seed=v), rng_seeds()),
    ("CBOW", "sample", lambda v, t: CBOW([5, 3, 2], dim=2, sample=v), fraction("sample")),
    ("CBOW", "n_threads", lambda v, t: CBOW([5, 3, 2], dim=2, n_threads=v), threads()),
    ("SkipGram.train_step", "lr",
     lambda v, t: SkipGram([5, 3, 2], dim=2).train_step(
         (np.array([0, 1, 2]), np.array([0, 3])), lr=v, rng=np.random.default_rng(0)),
     nonneg("lr")),
    ("CorpusDataset", "batch_words",
     lambda v, t: CorpusDataset(Corpus(np.arange(3), np.array([0, 3])), batch_words=v),
     ints("batch_words", 1)),
    # the classifier
    ("BagClassifier", "num_words", lambda v, t: BagClassifier(v, 2, dim=2),
     ints("num_words", 1, 2**32, good=[np.int64(3), np.uint8(2), 1])),
    ("BagClassifier", "num_classes", lambda v, t: BagClassifier(3, v, dim=2),
     ints("num_classes", 1)),
    ("BagClassifier", "dim", lambda v, t: BagClassifier(3, 2, dim=v), ints("dim", 1)),
    ("BagClassifier", "bigram_buckets", lambda v, t: BagClassifier(3, 2, dim=2,
                                                                   bigram_buckets=v),
     ints("bigram_buckets", 0)),
    ("BagClassifier", "seed", lambda v, t: BagClassifier(3, 2, dim=2, seed=v), rng_seeds()),
    ("BagClassifier", "n_threads", lambda v, t: BagClassifier(3, 2, dim=2, n_threads=v),
     threads()),
    ("BagClassifier", "dtype", lambda v, t: BagClassifier(3, 2, dim=2, dtype=v), dtypes()),
    ("BagClassifier.from_texts", "min_count",
     lambda v, t: BagClassifier.from_texts(["a b", "b"], ["x", "y"], dim=2, min_count=v),
     ints("min_count", 0)),
    ("BagClassifier.train_step", "lr",
     lambda v, t: BagClassifier(3, 2, dim=2, seed=0).train_step(([0, 1], [0], [1]), lr=v),
     nonneg("lr")),
    ("BagDataset", "batch_size", lambda v, t: BagDataset([1, 2], [0, 1], [0, 1], batch_size=v),
     ints("batch_size", 1)),
    ("BagDataset", "seed",
     lambda v, t: BagDataset([1, 2], [0, 1], [0, 1], batch_size=1, seed=v), seeds()),
    # vectors and files
    ("Vectors.most_similar", "topn", lambda v, t: _vectors().most_similar("w1", topn=v),
     ints("topn", 0)),
    ("Vectors.most_similar", "restrict",
     lambda v, t: _vectors().most_similar("w1", restrict=v), ints("restrict", 0, 5, none=True)),
    ("load_word2vec", "limit", lambda v, t: fastembed.load_word2vec(t, limit=v),
     ints("limit", 0, none=True)),
    ("load_word2vec", "dtype", lambda v, t: fastembed.load_word2vec(t, dtype=v), dtypes()),
    ("load_word2vec", "n_threads", lambda v, t: fastembed.load_word2vec(t, n_threads=v),
     threads()),
    ("probe_words", "n", lambda v, t: cli.probe_words(["a", "b"], n=v), ints("n", 0)),
]


def _label(value):
    if isinstance(value, np.generic):
        return f"np.{type(value).__name__}({value})"
    if isinstance(value, np.random.Generator):
        return "Generator"
    if isinstance(value, type):
        return value.__name__
    return repr(value)


BAD = [pytest.param(call, value, exc, pattern, id=f"{entry}-{arg}-{_label(value)}")
       for entry, arg, call, rule in ENTRIES for value, exc, pattern in rule.bad]
GOOD = [pytest.param(call, value, id=f"{entry}-{arg}-{_label(value)}")
        for entry, arg, call, rule in ENTRIES for value in rule.good]


@pytest.fixture(scope="module")
def vectors_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("validation") / "v.txt"
    path.write_text("3 2\na 1 2\nb 3 4\nc 5 6\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("call, value, exc, pattern", BAD)
def test_bad_argument_raises_the_rule_s_exception_and_message(call, value, exc, pattern,
                                                              vectors_file):
    with pytest.raises((TypeError, ValueError)) as info:
        call(value, vectors_file)
    assert info.type is exc, f"{info.type.__name__}: {info.value}"
    assert re.fullmatch(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("call, value", GOOD)
def test_numpy_scalars_and_edge_values_are_accepted(call, value, vectors_file):
    call(value, vectors_file)


# -- the rules themselves ----------------------------------------------------------------------

class _Index:
    """Not an int, but usable as one (``__index__``), like NumPy's integers."""

    def __index__(self):
        return 3


def test_objects_with_index_are_ints():
    assert check_int(_Index(), "n") == 3
    assert fastembed.Embedding(_Index(), 2).weight.shape == (3, 2)
    assert type(check_int(np.uint64(2**64 - 1), "n")) is int


def test_real_numbers_come_back_as_python_floats():
    for value in (np.float32(0.5), np.float16(0.5), np.int64(1), 1, 0.5):
        assert type(check_float(value, "x")) is float
    assert check_float(INF, "x", finite=False) == INF
    assert check_float(None, "x", allow_none=True) is None


def test_bounds_in_messages():
    with pytest.raises(ValueError, match=re.escape("x must be <= 3, got 4")):
        check_int(4, "x", max=3)
    with pytest.raises(ValueError, match=re.escape("x must be < 1, got 1")):
        check_float(1, "x", max=1, max_open=True)
    with pytest.raises(ValueError, match=re.escape("x must lie in (0, 1], got 0")):
        check_float(0, "x", min=0, max=1, min_open=True)


def test_as_rng():
    g = np.random.default_rng(0)
    assert as_rng(g) is g
    assert as_rng(np.int64(5)).random() == np.random.default_rng(5).random()
    assert isinstance(as_rng(None), np.random.Generator)


def test_check_n_threads_and_dtype_pass_good_values_through():
    assert check_n_threads(None) is None
    assert check_n_threads(np.int8(-2)) == -2
    assert check_float_dtype("float32") == np.float32
    assert check_float_dtype(None) == np.float64  # as numpy.dtype(None)


@pytest.mark.parametrize("parse, text, message", [
    (cli._positive_int, "0", "value must be >= 1, got 0"),
    (cli._positive_int, "2.5", "expected an integer, got '2.5'"),
    (cli._positive_float, "nan", "value must be a finite number, got nan"),
    (cli._positive_float, "-1", "value must be > 0, got -1.0"),
    (cli._fraction, "1", "value must lie in [0, 1), got 1.0"),
    (cli._fraction, "often", "expected a number, got 'often'"),
    (cli._threads, "0", "value must be a non-zero int " + N_THREADS_HINT + "), got 0"),
])
def test_cli_types_use_the_shared_rules(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)
    assert str(info.value) == message


def test_cli_types_return_the_value():
    assert cli._positive_int("3") == 3
    assert cli._positive_float("0.5") == 0.5
    assert cli._fraction("0") == 0.0
    assert cli._threads("-1") == -1
