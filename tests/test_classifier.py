"""Tests of fastembed.models.classifier: BagClassifier, its dataset, fastText's format, save/load.

* The model's full backward (embedding table with bigram rows, linear weight and bias)
  against central finite differences in float64.
* One training step against the pure-NumPy reference of ``reference.py`` (rows gathered per
  document with a pure-Python splitmix64, mean, linear, softmax, gradients, SGD / Adam
  update), to ~1e-12.
* The fastText reader, including its errors; save/load round trips (atomic writes); the
  trainer protocol; and learning on small synthetic tasks, one of which only bigrams solve.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from fastembed import optim
from fastembed.models.classifier import (BagClassifier, BagDataset, _with_bigrams, bigram_hash,
                                  read_fasttext, train_classifier)
from fastembed.text import Vocab
from reference import (RefOptimizer, numeric_grad, ref_classifier_step, ref_doc_rows,
                       ref_splitmix64)


def to_csr(docs):
    ids = np.array([w for d in docs for w in d], dtype=np.int64)
    offsets = np.cumsum([0] + [len(d) for d in docs[:-1]]).astype(np.int64)
    return ids, offsets


DOCS = [[3, 1, 4, 1, 5], [2], [], [0, 0, 5, 2], [4, 3]]
LABELS = np.array([2, 0, 1, 2, 1])
V, BUCKETS, DIM, C = 6, 5, 3, 3


def random_model(rng, dtype=np.float64, buckets=BUCKETS):
    model = BagClassifier(V, C, dim=DIM, bigram_buckets=buckets, dtype=dtype, seed=0,
                          init="random")
    model.load_state_dict({
        "embedding": rng.standard_normal((V + buckets, DIM)).astype(dtype),
        "linear.weight": rng.standard_normal((C, DIM)).astype(dtype),
        "linear.bias": rng.standard_normal((C, 1)).astype(dtype),
    })
    return model


# ----------------------------------------------------------------------------------------
# bigrams
# ----------------------------------------------------------------------------------------

def test_bigram_hash_is_the_documented_splitmix64(rng):
    a = rng.integers(0, 2**32, size=50)
    b = rng.integers(0, 2**32, size=50)
    got = bigram_hash(a, b)
    assert got.dtype == np.uint64
    assert [int(h) for h in got] == [ref_splitmix64((int(x) << 32) | int(y))
                                     for x, y in zip(a, b)]
    assert int(bigram_hash([0], [0])[0]) == 0xE220A8397B1DCDAF  # splitmix64's first output


def test_rows_with_bigrams_match_per_document_reference(rng):
    docs = [[], [1], [2, 3], [], [4, 4, 4, 1], [0], []]
    for _ in range(20):
        docs.append(list(rng.integers(0, 9, size=rng.integers(0, 6))))
    ids, offsets = to_csr(docs)
    rows, row_offsets = _with_bigrams(ids, offsets, 9, 7)
    ends = np.append(row_offsets, rows.size)
    for k, doc in enumerate(docs):
        assert rows[ends[k]:ends[k + 1]].tolist() == ref_doc_rows(doc, 9, 7)
    same_ids, same_offsets = _with_bigrams(ids, offsets, 9, 0)
    assert same_ids is ids and same_offsets is offsets


# ----------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("buckets", [0, BUCKETS])
def test_full_backward_matches_finite_differences(buckets, rng):
    model = random_model(rng, buckets=buckets)
    ids, offsets = to_csr(DOCS)
    batch = (ids, offsets, LABELS)
    from fastembed.nn import softmax_cross_entropy
    _, g = softmax_cross_entropy(model.forward(ids, offsets), LABELS)
    model.backward(g)

    def f():
        return model.loss(batch)

    table = model.bag.weight
    dense = model.bag.grad.to_dense(table.shape[0])
    np.testing.assert_allclose(dense, numeric_grad(f, table), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.linear.weight.dense_grad(),
                               numeric_grad(f, model.linear.weight.data), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.linear.bias.dense_grad(),
                               numeric_grad(f, model.linear.bias.data), rtol=1e-6, atol=1e-9)
    if buckets:  # the bigram rows did get gradient
        assert (model.bag.grad.rows >= V).any()


@pytest.mark.parametrize("use_optimizer", [False, True])
def test_one_sgd_step_matches_numpy_reference(use_optimizer, rng):
    model = random_model(rng)
    before = model.state_dict()
    ids, offsets = to_csr(DOCS)
    opt = optim.SGD(model.parameters(), lr=1.0) if use_optimizer else None
    out = model.train_step((ids, offsets, LABELS), lr=0.3, rng=rng, optimizer=opt)
    loss, E, W, b, *_ = ref_classifier_step(before["embedding"], before["linear.weight"],
                                       before["linear.bias"], DOCS, LABELS, 0.3, BUCKETS)
    assert out["count"] == len(DOCS)
    assert abs(out["loss"] - loss) < 1e-12
    after = model.state_dict()
    np.testing.assert_allclose(after["embedding"], E, rtol=0, atol=1e-12)
    np.testing.assert_allclose(after["linear.weight"], W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(after["linear.bias"], b, rtol=0, atol=1e-12)
    assert model.bag.grad is None and model.linear.weight.grad is None  # nothing left over
    if use_optimizer:
        assert opt.lr == 0.3  # train_step's lr is written into the optimizer


def test_one_adam_step_matches_numpy_reference(rng):
    model = random_model(rng)
    before = model.state_dict()
    ids, offsets = to_csr(DOCS)
    betas, eps, lr = (0.9, 0.999), 1e-8, 0.01
    opt = optim.Adam(model.parameters(), lr=1.0, betas=betas, eps=eps)
    model.train_step((ids, offsets, LABELS), lr=lr, rng=rng, optimizer=opt)
    *_, dE, dW, db = ref_classifier_step(before["embedding"], before["linear.weight"],
                                    before["linear.bias"], DOCS, LABELS, lr, BUCKETS)

    def adam1(w, rows, g):  # the first Adam step of the given rows from zero moments
        ref = RefOptimizer("Adam", dict(lr=lr, betas=betas, eps=eps), w)
        ref.step(rows, g[rows])
        return ref.w

    touched = sorted({r for d in DOCS for r in ref_doc_rows(d, V, BUCKETS)})
    E = adam1(before["embedding"], touched, dE)  # lazy: untouched rows do not move
    after = model.state_dict()
    np.testing.assert_allclose(after["embedding"], E, rtol=0, atol=1e-12)
    np.testing.assert_allclose(after["linear.weight"], adam1(before["linear.weight"],
                                                             np.arange(C), dW),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(after["linear.bias"], adam1(before["linear.bias"],
                                                           np.arange(C), db),
                               rtol=0, atol=1e-12)


def test_float32_model_close_to_float64(rng):
    m64 = random_model(rng)
    m32 = BagClassifier(V, C, dim=DIM, bigram_buckets=BUCKETS, dtype=np.float32)
    m32.load_state_dict({k: v.astype(np.float32) for k, v in m64.state_dict().items()})
    ids, offsets = to_csr(DOCS)
    np.testing.assert_allclose(m32.forward(ids, offsets), m64.forward(ids, offsets),
                               rtol=1e-5, atol=1e-5)
    o32 = m32.train_step((ids, offsets, LABELS), lr=0.1)
    o64 = m64.train_step((ids, offsets, LABELS), lr=0.1)
    assert abs(o32["loss"] - o64["loss"]) < 1e-5
    for k, v in m64.state_dict().items():
        np.testing.assert_allclose(m32.state_dict()[k], v, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------
# the trainer protocol
# ----------------------------------------------------------------------------------------

def test_train_step_protocol_details(rng):
    model = random_model(rng)
    ids, offsets = to_csr(DOCS)
    before = model.state_dict()
    out = model.train_step((ids, offsets, LABELS), lr=0.0, rng=rng, optimizer=None)
    assert set(out) == {"loss", "count"} and isinstance(out["loss"], float)
    for k, v in model.state_dict().items():  # lr=0 changes nothing
        np.testing.assert_array_equal(v, before[k])
    empty = model.train_step((np.zeros(0, np.int64), np.zeros(0, np.int64),
                              np.zeros(0, np.int64)), lr=0.1)
    assert empty == {"loss": 0.0, "count": 0}
    partial = optim.SGD([model.bag], lr=0.1)
    with pytest.raises(ValueError, match="every object of model.parameters"):
        model.train_step((ids, offsets, LABELS), lr=0.1, optimizer=partial)
    with pytest.raises(ValueError, match="lr"):
        model.train_step((ids, offsets, LABELS), lr=-1)
    with pytest.raises(IndexError, match=r"ids\[0\] = 6 is out of range"):
        model.train_step((np.array([6]), np.array([0]), np.array([0])), lr=0.1)
    with pytest.raises(IndexError, match=r"labels\[0\] = 3"):
        model.train_step((np.array([1]), np.array([0]), np.array([3])), lr=0.1)
    with pytest.raises(ValueError, match="offsets\\[0\\] must be 0"):
        model.forward(np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        model.forward(np.array([1, 2]), np.array([0, 2, 1]))
    for k, v in model.state_dict().items():  # failed steps changed nothing
        np.testing.assert_array_equal(v, before[k])


def test_state_dict_round_trip_is_exact(rng):
    model = random_model(rng)
    state = model.state_dict()
    twin = BagClassifier(V, C, dim=DIM, bigram_buckets=BUCKETS, dtype=np.float64)
    twin.load_state_dict(state)
    ids, offsets = to_csr(DOCS)
    np.testing.assert_array_equal(twin.forward(ids, offsets), model.forward(ids, offsets))
    state["embedding"][:] = 0  # state_dict returns copies
    assert model.bag.weight.any()
    with pytest.raises(ValueError, match="expected keys"):
        twin.load_state_dict({"embedding": state["embedding"]})
    bad = model.state_dict()
    bad["linear.bias"] = bad["linear.bias"].astype(np.float32)
    with pytest.raises(ValueError, match="linear.bias"):
        twin.load_state_dict(bad)


def test_dataset_batches_cover_each_document_once_per_epoch():
    docs = [[k] * (k % 3) for k in range(10)]
    ids, offsets = to_csr(docs)
    data = BagDataset(ids, offsets, np.arange(10) % 2, batch_size=4, seed=5)
    assert len(data) == 10 and data.num_batches(0) == 3
    for epoch in range(2):
        seen = []
        for i in range(data.num_batches(epoch)):
            b_ids, b_offsets, b_labels = data.batch(epoch, i)
            ends = np.append(b_offsets, b_ids.size)
            for k in range(b_offsets.size):
                doc = b_ids[ends[k]:ends[k + 1]].tolist()
                seen.append(next(j for j, d in enumerate(docs)
                                 if d == doc and j % 2 == b_labels[k] and j not in seen))
        assert sorted(seen) == list(range(10))
    first = [data.batch(0, i)[0].tolist() for i in range(3)]
    assert first == [data.batch(0, i)[0].tolist() for i in range(3)]  # deterministic
    assert data.order(0).tolist() != data.order(1).tolist()
    with pytest.raises(IndexError):
        data.batch(0, 3)
    with pytest.raises(ValueError, match="one entry per document"):
        BagDataset(ids, offsets, [0, 1], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        BagDataset(ids, offsets, np.zeros(10, np.int64), batch_size=0)
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        data.order(-1)
    for bad in (1.5, "0", True):
        with pytest.raises(TypeError, match="epoch must be an int"):
            data.order(bad)
    assert data.order(np.int64(1)).tolist() == data.order(1).tolist()


# ----------------------------------------------------------------------------------------
# texts, fastText's format
# ----------------------------------------------------------------------------------------

def test_encode_texts():
    model = BagClassifier(3, 2, dim=2, vocab=["a", "b", "c"], labels=["x", "y"])
    assert isinstance(model.vocab, Vocab)
    ids, offsets = model.encode(["a b zzz, c!", "", "zzz", "C a"])
    assert ids.dtype == np.int64 and offsets.dtype == np.int64
    assert ids.tolist() == [0, 1, 2, 2, 0] and offsets.tolist() == [0, 3, 3, 3]
    ids, offsets = model.encode([])
    assert ids.size == 0 and offsets.size == 0
    with_unk = BagClassifier(3, 2, dim=2, vocab=Vocab(["<unk>", "a", "b"], unk_token="<unk>"))
    assert with_unk.encode(["a zzz b"])[0].tolist() == [1, 0, 2]  # the vocab's unk, if any
    with pytest.raises(TypeError, match="single string"):
        model.encode("a b")
    assert model.label_ids(["y", "x"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"labels\[1\] = 'z'"):
        model.label_ids(["x", "z"])
    with pytest.raises(ValueError, match="no vocabulary"):
        BagClassifier(3, 2, dim=2).encode(["a"])


def test_from_texts_builds_vocab_and_labels():
    texts = ["b a a", "c a b", "d"]
    model = BagClassifier.from_texts(texts, ["z", "y", "z"], min_count=2, dim=4)
    assert model.vocab.words == ["a", "b"] and model.vocab.counts.tolist() == [3, 2]
    assert model.label_names == ["y", "z"]
    with pytest.raises(ValueError, match="min_count=9"):
        BagClassifier.from_texts(texts, ["z", "y", "z"], min_count=9)


def test_read_fasttext_lines():
    lines = ["__label__spam Buy  now!\n", "   \n", "__label__ham __label__x hi there\n",
             "see __label__late you\n", "__label__only\n"]
    labels, texts = read_fasttext(lines)
    assert labels == ["spam", "ham", "late", "only"]
    assert texts == ["Buy now!", "hi there", "see you", ""]


def test_read_fasttext_file_and_errors(tmp_path):
    good = tmp_path / "train.txt"
    good.write_text("__label__a un été\n__label__b deux\n", encoding="utf-8")
    assert read_fasttext(good) == (["a", "b"], ["un été", "deux"])
    assert read_fasttext(str(good)) == (["a", "b"], ["un été", "deux"])
    bad = tmp_path / "bad.txt"
    bad.write_text("__label__a fine\n\nno label here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: no label"):
        read_fasttext(bad)
    with pytest.raises(ValueError, match=r"<lines>, line 2: no label"):
        read_fasttext(["__label__a x", "oops"])
    with pytest.raises(ValueError, match="line 1: empty label"):
        read_fasttext(["__label__ text"])
    binary = tmp_path / "latin1.txt"
    binary.write_bytes(b"__label__a ok\n__label__b caf\xe9\n")
    with pytest.raises(ValueError, match=r"latin1\.txt, line 2: not valid UTF-8"):
        read_fasttext(binary)
    with pytest.raises(FileNotFoundError):
        read_fasttext(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------------------
# save / load
# ----------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, rng):
    texts = ["ünïcode words here", "more words", "here and there"]
    model = BagClassifier.from_texts(texts, ["b", "a", "b"], dim=4, bigram_buckets=3,
                                     dtype=np.float64, seed=1, init="random")
    assert model.vocab.words[0] == "words" and "ünïcode" in model.vocab
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = BagClassifier.load(path)
    assert loaded.vocab == model.vocab and loaded.label_names == model.label_names
    assert (loaded.num_words, loaded.num_classes, loaded.dim, loaded.bigram_buckets) == \
        (model.num_words, model.num_classes, model.dim, model.bigram_buckets)
    assert loaded.dtype == np.float64
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind

    # overwriting is atomic: a failure while writing leaves the old file and no temp file
    old = path.read_bytes()
    model.train_step(model.make_dataset(texts, ["b", "a", "b"], batch_size=3).batch(0, 0),
                     lr=1.0)

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom

    orig = np.savez
    np.savez = explode
    try:
        with pytest.raises(Boom):
            model.save(path)
    finally:
        np.savez = orig
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["model.npz"]
    model.save(str(path))
    assert path.read_bytes() != old


def test_save_load_without_vocab(tmp_path, rng):
    model = random_model(rng)
    model.save(tmp_path / "m.npz")
    loaded = BagClassifier.load(tmp_path / "m.npz")
    assert loaded.vocab is None and loaded.label_names == ["0", "1", "2"]
    ids, offsets = to_csr(DOCS)
    np.testing.assert_array_equal(loaded.predict((ids, offsets)), model.predict((ids, offsets)))
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a saved BagClassifier"):
        BagClassifier.load(tmp_path / "other.npz")


# ----------------------------------------------------------------------------------------
# learning
# ----------------------------------------------------------------------------------------

def topic_corpus(rng, n, num_classes=3, noise_words=40):
    """Documents of shared noise words plus a few words specific to their class."""
    texts, labels = [], []
    for _ in range(n):
        c = int(rng.integers(0, num_classes))
        words = [f"n{k}" for k in rng.integers(0, noise_words, size=rng.integers(4, 12))]
        words += [f"c{c}w{k}" for k in rng.integers(0, 5, size=rng.integers(1, 3))]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(f"class{c}")
    return texts, labels


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_learns_a_separable_topic_task(optimizer, rng):
    train_texts, train_labels = topic_corpus(rng, 600)
    test_texts, test_labels = topic_corpus(rng, 300)
    model = BagClassifier.from_texts(train_texts, train_labels, dim=16, seed=0)
    data = model.make_dataset(train_texts, train_labels, batch_size=16, seed=0)
    if optimizer == "sgd":
        opt, lr = optim.SGD(model.parameters(), lr=1.0), 2.0
    else:
        opt, lr = optim.Adam(model.parameters(), lr=0.05), 0.05
    history = model.fit(data, epochs=5, lr=lr, optimizer=opt, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert model.evaluate(test_texts, test_labels) > 0.95
    proba = model.predict_proba(test_texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert model.predict_labels(test_texts[:3]) == \
        [model.label_names[k] for k in proba[:3].argmax(axis=1)]


def test_only_bigrams_solve_a_word_order_task(rng):
    """Class 0 documents hold "x y" and class 1 "y x": same bag of words, other bigram."""
    def corpus(n):
        docs, labels = [], []
        for _ in range(n):
            c = int(rng.integers(0, 2))
            noise = list(rng.integers(2, 20, size=rng.integers(2, 6)))
            pos = int(rng.integers(0, len(noise) + 1))
            docs.append(noise[:pos] + ([0, 1] if c == 0 else [1, 0]) + noise[pos:])
            labels.append(c)
        return to_csr(docs), np.array(labels)

    (train_ids, train_offsets), train_y = corpus(1000)
    test_x, test_y = corpus(300)
    accuracy = {}
    for buckets in (0, 64):
        model = BagClassifier(20, 2, dim=16, bigram_buckets=buckets, seed=0)
        model.fit(BagDataset(train_ids, train_offsets, train_y, batch_size=16), epochs=8,
                  lr=2.0, progress=False)
        accuracy[buckets] = model.evaluate(test_x, test_y)
    assert accuracy[0] < 0.65
    assert accuracy[64] > 0.97


def test_train_classifier_end_to_end(tmp_path, rng):
    train_texts, train_labels = topic_corpus(rng, 400)
    test_texts, test_labels = topic_corpus(rng, 200)
    for name, texts, labels in (("train", train_texts, train_labels),
                                ("test", test_texts, test_labels)):
        (tmp_path / f"{name}.txt").write_text(
            "".join(f"__label__{y} {t}\n" for y, t in zip(labels, texts)), encoding="utf-8")
    model, report = train_classifier(tmp_path / "train.txt", tmp_path / "test.txt", dim=16,
                                     bigram_buckets=1000, seed=0, progress=False)
    assert report["accuracy"] > 0.95 and report["train_accuracy"] > 0.95
    assert report["train_examples"] == 400 and report["test_examples"] == 200
    assert report["num_classes"] == 3 and len(report["history"]) == 5
    assert report["train_time_s"] > 0 and report["examples_per_s"] > 0
    assert model.bigram_buckets == 1000
    (tmp_path / "odd.txt").write_text("__label__zzz n1 n2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="absent from the training file"):
        train_classifier(tmp_path / "train.txt", tmp_path / "odd.txt", dim=4, epochs=1,
                         progress=False)
    sgd_model, sgd_report = train_classifier(tmp_path / "train.txt", dim=16, epochs=5,
                                             lr=10.0, optimizer="sgd", progress=False)
    assert sgd_report["accuracy"] is None and sgd_report["train_accuracy"] > 0.95
    with pytest.raises(ValueError, match="optimizer"):
        train_classifier(tmp_path / "train.txt", optimizer="lbfgs", progress=False)


def test_trainer_checkpoints_and_resumes_the_model_exactly(tmp_path, rng):
    """Interrupted after epoch 1 and resumed: bitwise the weights of an uninterrupted run."""
    from fastembed.train import Trainer

    texts, labels = topic_corpus(rng, 200)

    def run(epochs, resume=None):
        model = BagClassifier.from_texts(texts, labels, dim=8, bigram_buckets=50, seed=0)
        data = model.make_dataset(texts, labels, batch_size=16, seed=0)
        opt = optim.Adam(model.parameters(), lr=0.05)
        metrics = {"accuracy": lambda m: m.evaluate(texts, labels)}
        steps = _CountSteps()
        trainer = Trainer(model, opt, data=data, epochs=epochs, lr=0.05, seed=0,
                          checkpoint_dir=None if resume is None else tmp_path,
                          metrics=metrics, progress=False, callbacks=[steps])
        return model, steps.count, trainer.fit(resume=resume)

    full, _, history = run(3)
    assert history[-1]["accuracy"] > 0.8  # learning; the point here is the exact resume
    first = BagClassifier.from_texts(texts, labels, dim=8, bigram_buckets=50, seed=0)
    data = first.make_dataset(texts, labels, batch_size=16, seed=0)
    Trainer(first, optim.Adam(first.parameters(), lr=0.05), data=data, epochs=3, lr=0.05,
            seed=0, checkpoint_dir=tmp_path, progress=False,
            callbacks=[_StopAfterEpoch(0)]).fit()
    assert list(tmp_path.glob("ckpt-*.npz"))
    resumed, steps, _ = run(3, resume=True)
    assert steps() == 2 * data.num_batches(0)  # it did resume after the first epoch
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)


class _CountSteps:
    def __init__(self):
        self.n = 0

    def count(self):
        return self.n

    def on_step_end(self, trainer, step, logs):
        self.n += 1


class _StopAfterEpoch:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            trainer.stop_training = True
