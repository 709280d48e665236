"""A fastText-style text classifier: mean of word (and hashed bigram) vectors, then a linear layer.

:class:`BagClassifier` is ``EmbeddingBag(mode="mean")`` over the word ids of a document, plus
optional hashed word bigrams, followed by :class:`fastembed.nn.Linear` and softmax
cross-entropy (Joulin et al., *Bag of Tricks for Efficient Text Classification*, 2016, with a
full softmax instead of the hierarchical one). The backward pass is written by hand: the
embedding table is updated by the layer's fused ``backward_and_step``, the linear layer by the
same optimizer's ``step()``.

The model follows the trainer's protocol (``fastembed.train``): ``train_step(batch, *, lr,
rng, optimizer) -> {"loss", "count"}``, ``state_dict()``, ``load_state_dict()``.

**Batches** are CSR triples ``(ids, offsets, labels)``: ``ids`` the in-vocabulary word ids of
all the batch's documents, concatenated (1-D int); ``offsets`` the start of each document in
``ids`` (1-D int, first 0, non-decreasing, one entry per document, as
:class:`fastembed.EmbeddingBag`); ``labels`` one class index per document. Padding never
costs anything in this layout, and documents of very different lengths (e-mails) are common.
The batch holds *word* ids only: the model adds the bigram ids itself, so a dataset does not
depend on ``bigram_buckets``.

**Bigrams.** For consecutive word ids ``(a, b)`` of one document (words not in the
vocabulary are dropped *before* pairing, as fastText does; with a vocabulary that has an
``unk_token`` they are that id instead, and pair like any word), the bigram's row is
``num_words + splitmix64((a << 32) | b) % bigram_buckets``, where ``a`` and ``b`` are the word
ids and ``splitmix64`` is Steele, Lea and Flood's 64-bit finaliser (see :func:`bigram_hash`).
It is a fixed integer function: the same ids give the same rows on every run and platform
(Python's ``hash()`` of strings is salted per process and is not used). Bigram rows join the
word rows in the same mean, as in fastText.

**Text.** Texts are split by :func:`fastembed.text.tokenize` (lower-cased runs of letters
and digits, inner apostrophes kept: ``don't``) and numbered by a :class:`fastembed.text.Vocab`.
Words seen fewer than ``min_count`` times in the training texts are left out of the
vocabulary; unknown words are dropped at encoding time (or mapped to the vocabulary's
``unk_token`` if it has one). A document with no known word pools to zeros, so its logits are
the bias.

**Training.** :meth:`BagClassifier.fit` and :func:`train_classifier` run
:class:`fastembed.train.Trainer` (linear learning-rate decay, progress, callbacks, metrics;
checkpoints and exact resumption through ``trainer_kwargs``).

Examples
--------
>>> from fastembed.models.classifier import BagClassifier, read_fasttext
>>> labels, texts = read_fasttext(["__label__pos good fine", "__label__neg bad awful",
...                                "__label__pos good", "__label__neg awful bad bad"])
>>> model = BagClassifier.from_texts(texts, labels, dim=4, bigram_buckets=8, seed=0)
>>> history = model.fit(model.make_dataset(texts, labels, batch_size=2), epochs=20, lr=1.0,
...                     progress=False)
>>> model.predict_labels(["fine and good", "just awful"])
['pos', 'neg']
"""
from __future__ import annotations

import json
import os

import numpy as np

from .. import optim
from .._atomic import atomic_write
from .._bags import bag_bounds
from .._validation import (
    as_ids,
    as_rng,
    check_ids_in_range,
    check_int,
    check_n_threads,
    check_nonneg_float,
    check_positive_int,
    check_size,
)
from ..functional import embedding_bag
from ..nn import EmbeddingBag, Linear, Module, softmax_cross_entropy
from ..text import Vocab, tokenize
from ..train import BatchedDataset, Trainer

__all__ = ["BagClassifier", "BagDataset", "bigram_hash", "read_fasttext", "train_classifier"]

_FORMAT = "fastembed.BagClassifier/1"
_LABEL_PREFIX = "__label__"
_PREDICT_CHUNK = 4096  # documents per inference call: bounds the (chunk, dim) buffers


# ----------------------------------------------------------------------------------------
# Bigram hashing
# ----------------------------------------------------------------------------------------

_U64: type = np.uint64


def bigram_hash(a, b):
    """The fixed 64-bit hash of word-id pairs: ``splitmix64((a << 32) | b)``.

    ``splitmix64(x)``, all arithmetic modulo 2**64::

        z = x + 0x9E3779B97F4A7C15
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        return z ^ (z >> 31)

    Parameters
    ----------
    a, b : array-like of int in [0, 2**32)
        The ids of the first and second word.

    Returns
    -------
    ndarray of uint64

    Examples
    --------
    >>> int(bigram_hash([0], [0])[0])
    16294208416658607535
    >>> int(bigram_hash([1], [2])[0] % 1000)
    514
    """
    a = np.asarray(a).astype(_U64)
    b = np.asarray(b).astype(_U64)
    z = (a << _U64(32)) | b
    z = z + _U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _with_bigrams(ids, offsets, num_words, buckets):
    """Each document's word ids followed by its bigram rows: (ids, offsets), both int64."""
    n_docs = offsets.size
    lengths = np.diff(np.append(offsets, np.int64(ids.size)))
    if buckets == 0 or ids.size < 2:
        return ids, offsets
    n_bi = np.maximum(lengths - 1, 0)
    # pair (ids[i], ids[i + 1]) is a bigram unless a document starts at i + 1
    valid = np.ones(ids.size - 1, dtype=bool)
    starts = offsets[(offsets > 0) & (offsets < ids.size)]
    valid[starts - 1] = False
    rows = num_words + (bigram_hash(ids[:-1][valid], ids[1:][valid])
                        % _U64(buckets)).astype(np.int64)
    new_lengths = lengths + n_bi
    new_offsets = np.zeros(n_docs, dtype=np.int64)
    np.cumsum(new_lengths[:-1], out=new_offsets[1:])
    out = np.empty(ids.size + rows.size, dtype=np.int64)
    doc_of_id = np.repeat(np.arange(n_docs), lengths)
    out[new_offsets[doc_of_id] + (np.arange(ids.size) - offsets[doc_of_id])] = ids
    bi_offsets = np.zeros(n_docs, dtype=np.int64)
    np.cumsum(n_bi[:-1], out=bi_offsets[1:])
    doc_of_bi = np.repeat(np.arange(n_docs), n_bi)
    out[new_offsets[doc_of_bi] + lengths[doc_of_bi]
        + (np.arange(rows.size) - bi_offsets[doc_of_bi])] = rows
    return out, new_offsets


# ----------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------

class BagDataset(BatchedDataset):
    """Documents as CSR word ids with labels, served in (shuffled) batches for the trainer.

    A :class:`fastembed.train.BatchedDataset` whose items are the documents: a batch is the
    ``(ids, offsets, labels)`` of its documents (see the module docstring and :meth:`take`).

    Parameters
    ----------
    ids : 1-D int array
        All documents' word ids, concatenated.
    offsets : 1-D int array
        The start of each document (first 0, non-decreasing).
    labels : 1-D int array
        One class index per document.
    batch_size, shuffle, seed
        As in :class:`fastembed.train.BatchedDataset`.

    Examples
    --------
    >>> import numpy as np
    >>> data = BagDataset([4, 5, 6, 7], [0, 1, 1], [0, 1, 0], batch_size=2, shuffle=False)
    >>> data.num_batches(0), len(data)
    (2, 3)
    >>> data.batch(0, 0)
    (array([4]), array([0, 1]), array([0, 1]))
    >>> data.batch(0, 1)
    (array([5, 6, 7]), array([0]), array([0]))
    """

    def __init__(self, ids, offsets, labels, *, batch_size, shuffle=True, seed=0):
        ids_arr, flat = as_ids(ids)
        if ids_arr.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {ids_arr.shape}")
        check_ids_in_range(flat, ids_arr.shape, None, 1, ids=ids_arr)
        self.ids = flat.astype(np.int64)
        bounds = bag_bounds(offsets, self.ids.size)
        self.offsets = bounds[:-1]
        self.lengths = np.diff(bounds)
        labels_arr, lab = as_ids(labels, "labels")
        if labels_arr.shape != self.offsets.shape:
            raise ValueError(f"labels must have one entry per document "
                             f"({self.offsets.size}), got shape {labels_arr.shape}")
        check_ids_in_range(lab, labels_arr.shape, None, 1, name="labels", ids=labels_arr)
        self.labels = lab.astype(np.int64)
        super().__init__(self.offsets.size, batch_size=batch_size, shuffle=shuffle, seed=seed)

    def __repr__(self):
        return (f"BagDataset({len(self)} documents, {self.ids.size} ids, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, seed={self.seed})")

    order = BatchedDataset.permutation  # the document order of an epoch, under its own name

    def take(self, docs):
        """``(ids, offsets, labels)`` of the documents ``docs``, in that order.

        Parameters
        ----------
        docs : slice or array-like of int
            Document indices in ``[0, len(self))``.

        Returns
        -------
        ids, offsets, labels : ndarray of int64

        Examples
        --------
        >>> data = BagDataset([4, 5, 6, 7], [0, 1, 3], [0, 1, 0], batch_size=2)
        >>> data.take([2, 0])
        (array([7, 4]), array([0, 1]), array([0, 0]))
        """
        if isinstance(docs, slice):
            docs = np.arange(*docs.indices(len(self)))
        docs = np.asarray(docs, dtype=np.int64)
        lengths = self.lengths[docs]
        offsets = np.zeros(docs.size, dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        positions = (np.repeat(self.offsets[docs] - offsets, lengths)
                     + np.arange(int(lengths.sum())))
        return self.ids[positions], offsets, self.labels[docs]


# ----------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------

class BagClassifier(Module):
    """fastText-style classifier: mean-pooled word (+ bigram) vectors, linear, softmax.

    ``logits = Linear(EmbeddingBag(mode="mean")(words + hashed bigrams))``; the loss is the
    mean softmax cross-entropy of the batch.

    A :class:`~fastembed.nn.Module` built from the two layers (its children ``bag`` and
    ``linear``). The table's Parameter is also the model's own parameter ``"embedding"``, so
    that ``named_parameters()`` and ``state_dict()`` name it ``"embedding"`` (as every saved
    model and checkpoint does), followed by ``"linear.weight"`` and ``"linear.bias"``.

    Parameters
    ----------
    num_words : int
        The vocabulary size V: word ids lie in ``[0, V)``.
    num_classes : int
    dim : int, default 100
        The size of the word vectors.
    bigram_buckets : int, default 0
        Rows for hashed word bigrams (0: words only). The table has ``V + bigram_buckets``
        rows; see the module docstring for the hash.
    vocab : fastembed.text.Vocab or sequence of str, optional
        Word ``i`` is ``vocab.words[i]`` (a sequence of words becomes ``Vocab(words)``);
        needed to classify raw texts. Reserved tokens (``pad_token``, ``unk_token``) are
        ordinary ids to the model.
    labels : sequence of str, optional
        The class names (default ``"0"``, ``"1"``, ...).
    dtype : float32 or float64, default float32
    seed : None, int or numpy.random.Generator
    init : {"fasttext", "random"}, default "fasttext"
        "fasttext": embeddings U(-1/dim, 1/dim) and a zero linear layer, as fastText.
        "random": embeddings U(-1/dim, 1/dim) and PyTorch's default Linear initialisation.
    n_threads : int, optional
        Threads of the embedding kernels (None: OpenMP's default).

    Attributes
    ----------
    bag : EmbeddingBag
    linear : fastembed.nn.Linear
        ``linear.bias`` is a (num_classes, 1) :class:`~fastembed.nn.Parameter`.
    embedding : fastembed.nn.Parameter
        The table's Parameter (``bag.parameter``).
    vocab : fastembed.text.Vocab or None
    label_names : list of str

    Examples
    --------
    >>> texts = ["good great fine", "bad awful poor", "great good", "poor bad"] * 8
    >>> names = ["pos", "neg", "pos", "neg"] * 8
    >>> model = BagClassifier.from_texts(texts, names, dim=8, seed=0)
    >>> history = model.fit(model.make_dataset(texts, names, batch_size=4), epochs=10, lr=2.0,
    ...                     progress=False)
    >>> model.predict_labels(["good fine", "awful"])
    ['pos', 'neg']
    >>> model.evaluate(texts, names)
    1.0
    """

    def __init__(self, num_words, num_classes, *, dim=100, bigram_buckets=0, vocab=None,
                 labels=None, dtype=np.float32, seed=None, init="fasttext", n_threads=None):
        super().__init__()
        # at most 2**32 words: bigram hashing packs two ids into 64 bits
        self.num_words = check_int(num_words, "num_words", min=1, max=2**32)
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.dim = check_positive_int(dim, "dim")
        self.bigram_buckets = check_size(bigram_buckets, "bigram_buckets")
        check_n_threads(n_threads)
        self.n_threads = n_threads
        if init not in ("fasttext", "random"):
            raise ValueError(f"init must be 'fasttext' or 'random', got {init!r}")
        if vocab is not None:
            if not isinstance(vocab, Vocab):
                vocab = Vocab(vocab)
            if len(vocab) != self.num_words:
                raise ValueError(f"vocab has {len(vocab)} words, num_words is {self.num_words}")
        self.vocab = vocab
        if labels is None:
            labels = [str(k) for k in range(self.num_classes)]
        labels = [str(name) for name in labels]
        if len(labels) != self.num_classes:
            raise ValueError(f"labels has {len(labels)} names, num_classes is "
                             f"{self.num_classes}")
        if len(set(labels)) != len(labels):
            raise ValueError("labels has duplicate names")
        self.label_names = labels
        rng = as_rng(seed)
        bound = 1.0 / self.dim

        def uniform(shape, rng):
            return rng.uniform(-bound, bound, size=shape)

        self.bag = EmbeddingBag(self.num_words + self.bigram_buckets, self.dim, mode="mean",
                                dtype=dtype, init=uniform, seed=rng)
        self.linear = Linear(self.dim, self.num_classes, dtype=dtype, seed=rng,
                             init="zeros" if init == "fasttext" else "uniform")
        self.embedding = self.bag.parameter  # the model's own: named "embedding", listed first
        self._label_index = {name: k for k, name in enumerate(labels)}
        self._sgd = None

    def __setstate__(self, state):
        super().__setstate__(state)
        if "embedding" not in state:  # pickled before the model was a Module
            self.embedding = self.bag.parameter

    # -- construction from texts --------------------------------------------------------

    @classmethod
    def from_texts(cls, texts, labels, *, min_count=1, **kwargs):
        """A new model whose vocabulary and class names come from training texts.

        The vocabulary (:meth:`fastembed.text.Vocab.build`) holds the words occurring at
        least ``min_count`` times, most frequent first (ties in order of first occurrence);
        the class names are the distinct ``labels``, sorted. ``kwargs`` go to the constructor
        (``dim``, ``bigram_buckets``, ``seed``...).

        Parameters
        ----------
        texts : sequence of str
            The training texts (tokenised by :func:`fastembed.text.tokenize`).
        labels : iterable
            Their class names (made str).
        min_count : int, default 1
            Keep the words occurring at least this many times.
        **kwargs
            More constructor arguments.

        Returns
        -------
        BagClassifier
            Untrained.

        Raises
        ------
        TypeError
            ``texts`` is a single string.
        ValueError
            No word occurs ``min_count`` times, or no labels.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> model.vocab.words, model.label_names
        (['good', 'fine', 'bad', 'awful'], ['neg', 'pos'])
        """
        min_count = check_size(min_count, "min_count")
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, got a single string")
        vocab = Vocab.build((tokenize(text) for text in texts), min_count=min_count)
        if not len(vocab):
            raise ValueError(f"no word occurs at least min_count={min_count} times")
        names = sorted({str(y) for y in labels})
        if not names:
            raise ValueError("no labels given")
        return cls(len(vocab), len(names), vocab=vocab, labels=names, **kwargs)

    @property
    def dtype(self):
        """The dtype of the parameters, float32 or float64.

        Examples
        --------
        >>> BagClassifier(10, 2, dim=4).dtype
        dtype('float32')
        """
        return self.bag.dtype

    def __repr__(self):
        return (f"BagClassifier(num_words={self.num_words}, num_classes={self.num_classes}, "
                f"dim={self.dim}, bigram_buckets={self.bigram_buckets}, "
                f"dtype={self.dtype.name})")

    def encode(self, texts):
        """Tokenise texts and map known words to ids: ``(ids, offsets)``, both int64.

        Unknown words are dropped (or mapped to the vocabulary's ``unk_token``).

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        ids : ndarray of int64
            The documents' word ids, concatenated.
        offsets : ndarray of int64
            The start of each document in ``ids``.

        Raises
        ------
        ValueError
            The model has no vocabulary.
        TypeError
            ``texts`` is a single string.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> model.encode(["good awful", "zzz", "fine"])
        (array([0, 3, 1]), array([0, 2, 2]))
        """
        if self.vocab is None:
            raise ValueError("this model has no vocabulary: pass (ids, offsets) instead of "
                             "texts")
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, got a single string")
        encoded = self.vocab.encode_batch((tokenize(text) for text in texts), dtype=np.int64)
        offsets = np.zeros(len(encoded), dtype=np.int64)
        np.cumsum([e.size for e in encoded[:-1]], out=offsets[1:])
        ids = np.concatenate(encoded) if encoded else np.zeros(0, np.int64)
        return ids.astype(np.int64, copy=False), offsets

    def label_ids(self, labels):
        """Class indices of label names (strings) or of indices (checked).

        Parameters
        ----------
        labels : sequence of str or of int
            Class names of :attr:`label_names`, or indices in ``[0, num_classes)``.

        Returns
        -------
        ndarray of int64

        Raises
        ------
        ValueError
            An unknown name.
        IndexError
            An index out of range.

        Examples
        --------
        >>> model = BagClassifier(5, 2, labels=["neg", "pos"])
        >>> model.label_ids(["pos", "neg", "pos"])
        array([1, 0, 1])
        >>> model.label_ids([1, 1])
        array([1, 1])
        """
        labels = list(labels) if not isinstance(labels, np.ndarray) else labels
        if len(labels) and isinstance(labels[0], str):
            out = np.empty(len(labels), dtype=np.int64)
            for k, name in enumerate(labels):
                try:
                    out[k] = self._label_index[name]
                except KeyError:
                    raise ValueError(f"labels[{k}] = {name!r} is not one of the model's "
                                     f"labels {self.label_names}") from None
            return out
        arr, flat = as_ids(np.asarray(labels) if len(labels) else np.zeros(0, np.int64),
                           "labels")
        if arr.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
        check_ids_in_range(flat, arr.shape, self.num_classes, 1, name="labels", ids=arr)
        return flat.astype(np.int64)

    def make_dataset(self, texts, labels, *, batch_size=32, shuffle=True, seed=0):
        """A :class:`BagDataset` of texts (or an ``(ids, offsets)`` pair) and their labels.

        ``labels`` are class names or indices. The result has ``num_batches(epoch)`` and
        ``batch(epoch, index)`` for :class:`fastembed.train.Trainer` or :meth:`fit`.

        Parameters
        ----------
        texts : sequence of str, or (ids, offsets)
            Texts (encoded with :meth:`encode`) or documents already encoded.
        labels : sequence of str or int
            One per document (see :meth:`label_ids`).
        batch_size : int, default 32
        shuffle : bool, default True
        seed : int, default 0
            As in :class:`BagDataset`.

        Returns
        -------
        BagDataset

        Raises
        ------
        ValueError
            Texts and a model without a vocabulary, not one label per document, or an unknown
            label name.
        TypeError
            ``texts`` is a single string.
        IndexError
            A label index out of range.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> data = model.make_dataset(["good fine", "bad awful", "good"], ["pos", "neg", "pos"],
        ...                           batch_size=2, shuffle=False)
        >>> data
        BagDataset(3 documents, 5 ids, batch_size=2, shuffle=False, seed=0)
        >>> data.batch(0, 0)
        (array([0, 1, 2, 3]), array([0, 2]), array([1, 0]))
        """
        ids, offsets = self._encoded(texts)
        return BagDataset(ids, offsets, self.label_ids(labels), batch_size=batch_size,
                          shuffle=shuffle, seed=seed)

    def _encoded(self, x):
        if isinstance(x, tuple) and len(x) == 2:
            ids_arr, flat = as_ids(x[0], strict=True)
            if ids_arr.ndim != 1:
                raise ValueError(f"ids must be 1-D, got shape {ids_arr.shape}")
            return flat.astype(np.int64, copy=False), bag_bounds(x[1], flat.size)[:-1]
        return self.encode(x)

    # -- forward / backward -------------------------------------------------------------

    def _rows(self, ids, offsets):
        """Checked word ids and offsets -> table rows and offsets, bigrams included."""
        ids_arr, flat = as_ids(ids)
        if ids_arr.ndim != 1:
            raise ValueError(f"ids must be 1-D (the documents' word ids, concatenated), got "
                             f"shape {ids_arr.shape}")
        check_ids_in_range(flat, ids_arr.shape, self.num_words, 1, ids=ids_arr)
        offsets = bag_bounds(offsets, flat.size)[:-1]
        return _with_bigrams(flat.astype(np.int64, copy=False), offsets, self.num_words,
                             self.bigram_buckets)

    def forward(self, ids, offsets):
        """Logits ``(B, num_classes)`` of a CSR batch; remembers what :meth:`backward` needs.

        ``model(ids, offsets)`` is the same call. Bigram rows are added to each document.

        Parameters
        ----------
        ids : 1-D array-like of int
            The documents' word ids in ``[0, num_words)``, concatenated.
        offsets : 1-D array-like of int
            The start of each document (first 0, non-decreasing).

        Returns
        -------
        ndarray, shape (B, num_classes)

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> model.forward([0, 1, 2], [0, 2])        # a fresh model: zero logits
        array([[0., 0.],
               [0., 0.]], dtype=float32)
        """
        rows, row_offsets = self._rows(ids, offsets)
        hidden = self.bag.forward(rows, row_offsets, n_threads=self.n_threads)
        return self.linear.forward(hidden)

    __call__ = forward

    def backward(self, grad_logits):
        """Accumulate every parameter's gradient for the last :meth:`forward`.

        ``bag.grad`` receives the table's SparseGrad, ``linear.weight.grad`` and
        ``linear.bias.grad`` the dense ones (an optimizer's ``step()`` applies them all).

        Parameters
        ----------
        grad_logits : ndarray, shape (B, num_classes)
            The gradient of the loss with respect to the last forward's logits.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn, optim
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> opt = optim.SGD(model.parameters(), lr=1.0)
        >>> logits = model([0, 1, 2], [0, 2])
        >>> loss, grad = nn.softmax_cross_entropy(logits, [1, 0])
        >>> model.backward(grad)
        >>> model.bag.grad.rows, model.linear.bias.dense_grad().ravel()
        (array([0, 1, 2]), array([0., 0.], dtype=float32))
        >>> opt.step(); opt.zero_grad()
        """
        grad_hidden = self.linear.backward(grad_logits)
        self.bag.backward(grad_hidden, n_threads=self.n_threads)

    def loss(self, batch):
        """The mean cross-entropy of a batch, without any update.

        Parameters
        ----------
        batch : (ids, offsets, labels)
            A CSR batch, as :meth:`BagDataset.batch` returns.

        Returns
        -------
        float

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> round(model.loss(([0, 1, 2, 3], [0, 2], ["pos", "neg"])), 4)   # log(2): untrained
        0.6931
        """
        ids, offsets, labels = batch
        logits = self.forward(ids, offsets)
        return softmax_cross_entropy(logits, self.label_ids(labels))[0]

    def train_step(self, batch, *, lr, rng=None, optimizer=None):
        """Forward, backward and update on one batch ``(ids, offsets, labels)``.

        Parameters
        ----------
        batch : (ids, offsets, labels)
        lr : float
            The learning rate of this step; it is written into ``optimizer.lr``. ``lr=0``
            computes the loss and changes nothing (fastembed's optimizers reject ``lr=0``).
        rng : numpy.random.Generator, optional
            Unused (the model has no dropout); part of the trainer's protocol.
        optimizer : fastembed.optim optimizer, optional
            Must hold every object of :meth:`parameters`. The table is updated by
            ``bag.backward_and_step(grad, optimizer)`` (fused), the linear layer by
            ``optimizer.step()``. None: plain SGD at ``lr``.

        Returns
        -------
        dict
            ``{"loss": mean cross-entropy of the batch (before the update), "count": number
            of documents}``; an empty batch gives ``{"loss": 0.0, "count": 0}``.

        Raises
        ------
        ValueError
            A negative or non-finite ``lr``, as many labels as documents needed, or an
            optimizer that lacks some of the parameters.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> batch = ([0, 1, 2, 3], [0, 2], ["pos", "neg"])       # "good fine", "bad awful"
        >>> first = model.train_step(batch, lr=2.0)
        >>> round(first["loss"], 4), first["count"]             # log(2) before the update
        (0.6931, 2)
        >>> model.train_step(batch, lr=2.0)["loss"] < first["loss"]
        True
        """
        ids, offsets, labels = batch
        lr = check_nonneg_float(lr, "lr")
        logits = self.forward(ids, offsets)
        labels = self.label_ids(labels)
        if labels.size != logits.shape[0]:
            raise ValueError(f"the batch has {logits.shape[0]} documents but {labels.size} "
                             f"labels")
        if labels.size == 0:
            return {"loss": 0.0, "count": 0}
        loss, grad_logits = softmax_cross_entropy(logits, labels)
        if lr == 0:
            return {"loss": loss, "count": int(labels.size)}
        opt = self._optimizer(optimizer, lr)
        try:
            grad_hidden = self.linear.backward(grad_logits)
            self.bag.backward_and_step(grad_hidden, opt, n_threads=self.n_threads)
            opt.step()
        finally:
            self.linear.zero_grad()
        return {"loss": loss, "count": int(labels.size)}

    def _optimizer(self, optimizer, lr):
        if optimizer is None:
            if self._sgd is None:
                self._sgd = optim.SGD(self.parameters(), lr=lr, n_threads=self.n_threads)
            optimizer = self._sgd
        else:
            held = {id(p) for p in getattr(optimizer, "params", ())}
            missing = [p for p in self.parameters() if id(p) not in held]
            if missing:
                raise ValueError(f"the optimizer must hold every object of "
                                 f"model.parameters(); it lacks {missing}")
        optimizer.lr = lr
        return optimizer

    # -- training -----------------------------------------------------------------------

    def fit(self, data, *, epochs=5, lr=0.5, min_lr=None, optimizer=None, seed=0,
            progress=True, **trainer_kwargs):
        """Train with :class:`fastembed.train.Trainer`; returns its history.

        ``data`` has ``num_batches(epoch)`` and ``batch(epoch, index)`` (see
        :meth:`make_dataset`). The learning rate decays linearly from ``lr`` towards
        ``min_lr`` (the step of global index ``t`` of ``T`` uses ``lr - (lr - min_lr) t / T``;
        ``min_lr`` None is the Trainer's default, ``lr / 250``).
        ``optimizer`` None is plain SGD. Other keywords (``callbacks``, ``metrics``,
        ``checkpoint_dir``, ...) go to the Trainer. The history has one dict per epoch:
        ``epoch``, ``loss`` (mean of the batch losses), ``count``, ``steps``, ``seconds``,
        ``lr`` and the metrics.

        Parameters
        ----------
        data : dataset
            With ``num_batches(epoch)`` and ``batch(epoch, index)``, e.g. a
            :class:`BagDataset`.
        epochs : int, default 5
        lr : float, default 0.5
        min_lr : float, optional
        optimizer : fastembed.optim optimizer, optional
            Holding every object of :meth:`parameters`.
        seed : int, default 0
            The Trainer's seed.
        progress : bool or None, default True
            The Trainer's progress bar.
        **trainer_kwargs
            More :class:`fastembed.train.Trainer` arguments.

        Returns
        -------
        list of dict
            The Trainer's history.

        Examples
        --------
        >>> from fastembed import optim
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> data = model.make_dataset(["good fine", "bad awful"], ["pos", "neg"], batch_size=1)
        >>> history = model.fit(data, epochs=5, lr=0.3, optimizer=optim.Adam(model.parameters()),
        ...                     metrics={"accuracy": lambda m: m.evaluate(["good", "bad"],
        ...                                                               ["pos", "neg"])},
        ...                     progress=False)
        >>> [h["steps"] for h in history], history[-1]["accuracy"]
        ([2, 2, 2, 2, 2], 1.0)
        """
        trainer = Trainer(self, optimizer, data=data, epochs=epochs, lr=lr, min_lr=min_lr,
                          seed=seed, progress=progress, **trainer_kwargs)
        return trainer.fit()

    # -- inference ----------------------------------------------------------------------

    def decision_function(self, x):
        """Logits ``(N, num_classes)`` of texts or of an ``(ids, offsets)`` pair.

        Uses the functional kernels: the layers' remembered forward state is left alone.
        Documents are processed in chunks, so memory stays bounded for any N.

        Parameters
        ----------
        x : sequence of str, or (ids, offsets)
            Texts (needs a vocabulary) or encoded documents.

        Returns
        -------
        ndarray, shape (N, num_classes), the model's dtype

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> data = model.make_dataset(["good fine", "bad awful"], ["pos", "neg"], batch_size=2)
        >>> history = model.fit(data, epochs=10, lr=2.0, progress=False)
        >>> logits = model.decision_function(["good", "awful"])
        >>> logits.shape, logits.argmax(axis=1)          # label_names: ['neg', 'pos']
        ((2, 2), array([1, 0]))
        >>> model.decision_function(([0, 3], [0, 1])).shape   # ids of "good", "awful"
        (2, 2)
        """
        ids, offsets = self._encoded(x)
        out = np.empty((offsets.size, self.num_classes), dtype=self.dtype)
        ends = np.append(offsets, np.int64(ids.size))
        w = self.linear.weight.data
        b = self._bias.data[:, 0]
        for lo in range(0, offsets.size, _PREDICT_CHUNK):
            hi = min(lo + _PREDICT_CHUNK, offsets.size)
            chunk_ids = ids[ends[lo]:ends[hi]]
            rows, row_offsets = self._rows(chunk_ids, offsets[lo:hi] - ends[lo])
            hidden = embedding_bag(self.bag.weight, rows, row_offsets, mode="mean",
                                   n_threads=self.n_threads)
            out[lo:hi] = hidden @ w.T + b
        return out

    def predict_proba(self, x):
        """Class probabilities ``(N, num_classes)`` (softmax of the logits).

        Parameters
        ----------
        x : sequence of str, or (ids, offsets)
            As in :meth:`decision_function`.

        Returns
        -------
        ndarray, shape (N, num_classes)
            Each row sums to 1.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> model.predict_proba(["good"])                # untrained: uniform
        array([[0.5, 0.5]], dtype=float32)
        """
        z = self.decision_function(x)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x):
        """Predicted class indices (int64) of texts or of an ``(ids, offsets)`` pair.

        Parameters
        ----------
        x : sequence of str, or (ids, offsets)
            As in :meth:`decision_function`.

        Returns
        -------
        ndarray of int64, shape (N,)
            Indices into :attr:`label_names`.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> data = model.make_dataset(["good fine", "bad awful"], ["pos", "neg"], batch_size=2)
        >>> history = model.fit(data, epochs=10, lr=2.0, progress=False)
        >>> model.predict(["good", "bad awful"])
        array([1, 0])
        """
        return np.argmax(self.decision_function(x), axis=1).astype(np.int64)

    def predict_labels(self, x):
        """Predicted class names.

        Parameters
        ----------
        x : sequence of str, or (ids, offsets)
            As in :meth:`decision_function`.

        Returns
        -------
        list of str

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> data = model.make_dataset(["good fine", "bad awful"], ["pos", "neg"], batch_size=2)
        >>> history = model.fit(data, epochs=10, lr=2.0, progress=False)
        >>> model.predict_labels(["good", "bad awful"])
        ['pos', 'neg']
        """
        return [self.label_names[k] for k in self.predict(x)]

    def evaluate(self, x, labels):
        """Accuracy (a float in [0, 1]) on texts or ``(ids, offsets)`` and their labels.

        Parameters
        ----------
        x : sequence of str, or (ids, offsets)
            As in :meth:`decision_function`.
        labels : sequence of str or int
            The true classes (see :meth:`label_ids`).

        Returns
        -------
        float
            NaN when there are no documents.

        Raises
        ------
        ValueError
            As many labels as documents are needed; unknown label names.

        Examples
        --------
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> data = model.make_dataset(["good fine", "bad awful"], ["pos", "neg"], batch_size=2)
        >>> history = model.fit(data, epochs=10, lr=2.0, progress=False)
        >>> model.evaluate(["good", "awful"], ["pos", "pos"])
        0.5
        """
        y = self.label_ids(labels)
        pred = self.predict(x)
        if pred.size != y.size:
            raise ValueError(f"{pred.size} documents but {y.size} labels")
        return float(np.mean(pred == y)) if y.size else float("nan")

    # -- state --------------------------------------------------------------------------

    @property
    def _bias(self):
        """The linear layer's bias (the classifier always builds its Linear with one)."""
        bias = self.linear.bias
        assert bias is not None
        return bias

    def _config(self):
        return {"format": _FORMAT, "num_words": self.num_words,
                "num_classes": self.num_classes, "dim": self.dim,
                "bigram_buckets": self.bigram_buckets, "dtype": self.dtype.name,
                "pad_token": None if self.vocab is None else self.vocab.pad_token,
                "unk_token": None if self.vocab is None else self.vocab.unk_token}

    def save(self, path):
        """Write the model, its vocabulary and class names to ``path`` as an .npz archive.

        The write is atomic: a temporary file in the same directory is written, flushed and
        fsynced, then renamed over ``path`` (``os.replace``), so a crash leaves either the old
        file or the new one. ``path`` is used as given (no ``.npz`` is appended).

        Parameters
        ----------
        path : str or os.PathLike

        See Also
        --------
        load : reads it back.

        Examples
        --------
        >>> import os, tempfile
        >>> model = BagClassifier.from_texts(["good fine", "bad awful"], ["pos", "neg"], dim=4,
        ...                                  seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "model.npz")
        ...     model.save(path)
        ...     again = BagClassifier.load(path)
        >>> again, again.vocab.words, again.label_names
        (BagClassifier(num_words=4, num_classes=2, dim=4, bigram_buckets=0, dtype=float32),
         ['good', 'fine', 'bad', 'awful'], ['neg', 'pos'])
        """
        path = os.fspath(path)
        arrays = {name.replace(".", "__"): value for name, value in self.state_dict().items()}
        arrays["config"] = np.array(json.dumps(self._config()))
        arrays["label_bytes"], arrays["label_offsets"] = _pack_strings(self.label_names)
        if self.vocab is not None:
            arrays["vocab_bytes"], arrays["vocab_offsets"] = _pack_strings(self.vocab.words)
            arrays["vocab_counts"] = np.asarray(self.vocab.counts, dtype=np.int64)
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path, *, n_threads=None):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        n_threads : int, optional
            The new model's ``n_threads``.

        Returns
        -------
        BagClassifier
            With the saved parameters, vocabulary and class names.

        Raises
        ------
        ValueError
            The file is not a saved BagClassifier, or of an unknown format.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> model = BagClassifier(5, 2, dim=3, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     model.save(os.path.join(d, "model.npz"))
        ...     again = BagClassifier.load(os.path.join(d, "model.npz"))
        >>> bool(np.array_equal(again.bag.weight, model.bag.weight)), again.vocab is None
        (True, True)
        """
        with np.load(os.fspath(path), allow_pickle=False) as z:
            try:
                config = json.loads(str(z["config"]))
            except KeyError:
                raise ValueError(f"{os.fspath(path)} is not a saved BagClassifier (no "
                                 f"config)") from None
            if config.get("format") != _FORMAT:
                raise ValueError(f"{os.fspath(path)}: unknown format {config.get('format')!r}")
            labels = _unpack_strings(z["label_bytes"], z["label_offsets"])
            vocab = None
            if "vocab_bytes" in z.files:
                vocab = Vocab(_unpack_strings(z["vocab_bytes"], z["vocab_offsets"]),
                              z["vocab_counts"], pad_token=config.get("pad_token"),
                              unk_token=config.get("unk_token"))
            model = cls(config["num_words"], config["num_classes"], dim=config["dim"],
                        bigram_buckets=config["bigram_buckets"], vocab=vocab, labels=labels,
                        dtype=np.dtype(config["dtype"]), seed=0, n_threads=n_threads)
            model.load_state_dict({name: z[name.replace(".", "__")]
                                   for name in ("embedding", "linear.weight", "linear.bias")})
        return model


def _pack_strings(strings):
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def _unpack_strings(data, offsets):
    raw = np.asarray(data, dtype=np.uint8).tobytes()
    return [raw[offsets[k]:offsets[k + 1]].decode("utf-8") for k in range(len(offsets) - 1)]


# ----------------------------------------------------------------------------------------
# fastText's file format
# ----------------------------------------------------------------------------------------

def read_fasttext(path_or_lines):
    """Read labelled texts in fastText's format: ``__label__X [__label__Y ...] text``.

    Each non-blank line holds one document. Tokens (split on whitespace) starting with
    ``__label__`` are labels wherever they stand, as in fastText; the document's label is the
    **first** of them (the others are ignored: :class:`BagClassifier` is single-label), and
    its text is the other tokens joined by single spaces. Blank lines are skipped.

    Parameters
    ----------
    path_or_lines : str, os.PathLike or iterable of str
        A UTF-8 file, or the lines themselves (a ``str`` is always a path).

    Returns
    -------
    labels : list of str
        Without the ``__label__`` prefix.
    texts : list of str

    Raises
    ------
    ValueError
        For a line without a label (or with an empty one, ``__label__`` alone) or that is not
        UTF-8, naming the file (``<lines>`` for an iterable) and the 1-based line number.

    Examples
    --------
    >>> read_fasttext(["__label__spam __label__ads Buy now!", "", "__label__ham see you"])
    (['spam', 'ham'], ['Buy now!', 'see you'])
    """
    if isinstance(path_or_lines, (str, bytes, os.PathLike)):
        name = os.fspath(path_or_lines)
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        with open(path_or_lines, "rb") as f:
            return _parse_fasttext(f, name)
    return _parse_fasttext(path_or_lines, "<lines>")


def _parse_fasttext(lines, name):
    labels, texts = [], []
    for lineno, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{name}, line {lineno}: not valid UTF-8 ({exc})") from None
        tokens = line.split()
        if not tokens:
            continue
        label = None
        words = []
        for token in tokens:
            if token.startswith(_LABEL_PREFIX):
                if label is None:
                    label = token[len(_LABEL_PREFIX):]
                    if not label:
                        raise ValueError(f"{name}, line {lineno}: empty label "
                                         f"{_LABEL_PREFIX!r}")
            else:
                words.append(token)
        if label is None:
            shown = line.strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(f"{name}, line {lineno}: no label (a line must hold a "
                             f"'{_LABEL_PREFIX}X' token): {shown!r}")
        labels.append(label)
        texts.append(" ".join(words))
    return labels, texts


# ----------------------------------------------------------------------------------------
# The command-line job
# ----------------------------------------------------------------------------------------

def train_classifier(train_path, test_path=None, *, dim=50, epochs=5, lr=0.05, min_lr=None,
                     batch_size=32, bigram_buckets=0, min_count=1, seed=0, n_threads=None,
                     optimizer="adam", progress=True):
    """Train a :class:`BagClassifier` on a fastText-format file; test it on another.

    Parameters
    ----------
    train_path, test_path : str or os.PathLike
        Files in fastText's format (see :func:`read_fasttext`).
    dim, bigram_buckets, seed, n_threads
        As in :class:`BagClassifier`.
    epochs, lr, min_lr
        lr decays linearly from ``lr`` to ``min_lr`` (default ``lr / 250``) over all steps.
        The defaults (Adam, lr 0.05, 5 epochs, dim 50) are those chosen on the validation
        split of ``bench/eval_classifier.py`` (SpamAssassin). With ``optimizer="sgd"`` note
        that the loss is the *mean* over a batch, so an SGD learning rate is about
        ``batch_size`` times fastText's per-example one (fastText's 0.1 is about 3 here;
        5-20 worked best on SpamAssassin).
    batch_size : int, default 32
    min_count : int, default 1
        Words seen fewer times in the training file are dropped.
    optimizer : {"adam", "sgd", "adagrad"}, default "adam"
    progress : bool, default True
        The Trainer's progress bar.

    Returns
    -------
    model : BagClassifier
    report : dict
        ``train_examples``, ``test_examples``, ``vocab_size``, ``num_classes``,
        ``train_time_s`` (training steps only), ``examples_per_s``, ``train_accuracy``,
        ``accuracy`` (on the test file, or None), ``history`` (one dict per epoch).

    Raises
    ------
    ValueError
        A training file without labelled lines, a test file with labels the training file
        lacks, a malformed line, or an unknown ``optimizer``.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastembed.models.classifier import train_classifier
    >>> lines = ["__label__pos good fine\\n", "__label__neg bad awful\\n"] * 8
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "train.txt")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.writelines(lines)
    ...     model, report = train_classifier(path, path, dim=4, epochs=3, progress=False)
    >>> report["train_examples"], report["vocab_size"], report["accuracy"]
    (16, 4, 1.0)
    """
    train_labels, train_texts = read_fasttext(train_path)
    if not train_texts:
        raise ValueError(f"{os.fspath(train_path)} holds no labelled line")
    model = BagClassifier.from_texts(train_texts, train_labels, min_count=min_count, dim=dim,
                                     bigram_buckets=bigram_buckets, seed=seed,
                                     n_threads=n_threads)
    data = model.make_dataset(train_texts, train_labels, batch_size=batch_size, seed=seed)
    opt = _make_optimizer(optimizer, model, lr, n_threads)
    history = model.fit(data, epochs=epochs, lr=lr, min_lr=min_lr, optimizer=opt, seed=seed,
                        progress=progress)
    train_time = sum(h["seconds"] for h in history)
    report = {
        "train_examples": len(train_texts),
        "test_examples": 0,
        "vocab_size": model.num_words,
        "num_classes": model.num_classes,
        "train_time_s": train_time,
        "examples_per_s": sum(h["count"] for h in history) / train_time if train_time else 0.0,
        "train_accuracy": model.evaluate((data.ids, data.offsets), data.labels),
        "accuracy": None,
        "history": history,
    }
    if test_path is not None:
        test_labels, test_texts = read_fasttext(test_path)
        known = [k for k, y in enumerate(test_labels) if y in model._label_index]
        if len(known) != len(test_labels):
            unknown = sorted({y for y in test_labels if y not in model._label_index})
            raise ValueError(f"{os.fspath(test_path)} has labels absent from the training "
                             f"file: {unknown[:10]}")
        report["test_examples"] = len(test_texts)
        report["accuracy"] = model.evaluate(test_texts, test_labels)
    return model, report


def _make_optimizer(name, model, lr, n_threads):
    if name == "sgd":
        return optim.SGD(model.parameters(), lr=lr, n_threads=n_threads)
    if name == "adam":
        return optim.Adam(model.parameters(), lr=lr, n_threads=n_threads)
    if name == "adagrad":
        return optim.Adagrad(model.parameters(), lr=lr, n_threads=n_threads)
    raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adagrad', got {name!r}")
