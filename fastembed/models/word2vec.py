"""word2vec with negative sampling: skip-gram and CBOW, trained by a fused Cython kernel.

The models follow gensim's ``Word2Vec(hs=0)``, ``sg=1`` (:class:`SkipGram`) or ``sg=0,
cbow_mean=1`` (:class:`CBOW`), with gensim's defaults (``dim=100``, ``window=5``,
``negative=5``, ``min_count=5``, ``sample=1e-3``, ``epochs=5``, learning rate 0.025 decaying
linearly, word by word, to 0.0001, ``ns_exponent=0.75``), and gensim's updates in gensim's
order:

- frequency subsampling: a word of count ``c`` among ``N`` retained words is kept with
  probability ``min(1, (sqrt(c / (sample N)) + 1) sample N / c)``, gensim's formula;
- a dynamic window: each centre word uses a window of ``window - b`` words on each side, ``b``
  uniform in [0, window), never across sentence boundaries;
- ``negative`` noise words from the unigram distribution raised to ``ns_exponent`` (drawn with
  Walker's alias method, in O(1) per draw), afresh for every (centre, context) pair in
  skip-gram and for every centre in CBOW; the output rows move one after the other, the input
  rows at the end of the prediction.

Training is deterministic by default: the same seed, data, ``shards`` and ``round_words`` give
the same vectors, bitwise, for any thread count. The threads work on ``shards`` pieces of each
batch side by side; the rows two pieces share are trained on private copies and their changes
summed in a fixed order after every round of ``round_words`` centre words (see
:class:`Word2VecModel` and ``sgns.pyx``). ``hogwild=True`` lets the threads write into
the shared tables without coordination, as gensim does.

Examples
--------
>>> import numpy as np
>>> from fastembed.models.word2vec import train_word2vec
>>> sentences = [["the", "king", "rules"], ["the", "queen", "rules"]] * 50
>>> result = train_word2vec(sentences, dim=8, min_count=1, epochs=2, progress=False)
>>> result.vectors["king"].shape
(8,)
>>> again = train_word2vec(sentences, dim=8, min_count=1, epochs=2, progress=False,
...                        n_threads=1)
>>> bool(np.array_equal(again.model.syn0, result.model.syn0))   # any thread count
True
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .._ext import sgns
from .._ext.tokens import count_file, encode_sentences, encode_slots
from .._ext.threads import resolve_n_threads
from .._memory import aligned_like, aligned_zeros
from .._validation import (
    as_rng,
    check_float,
    check_float_dtype,
    check_fraction,
    check_int,
    check_n_threads,
    check_positive_int,
    check_seed,
)
from ..datasets import load_sotu
from ..nn import Module, Parameter
from ..subwords import EOS, word_bags
from ..text import Vocab, split_sentences
from ..train import BatchedDataset, Trainer
from ..vectors import Vectors

__all__ = ["Corpus", "CorpusDataset", "Word2VecModel", "SkipGram", "CBOW", "Word2VecResult",
           "train_word2vec", "default_round_words", "default_max_period", "merge_periods",
           "row_uses",
           "corpus_sentences", "read_corpus", "subsample_keep_probability", "alias_table"]

# gensim's defaults for Word2Vec(sg=1)
DEFAULTS = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=5, lr=0.025,
                min_lr=0.0001, ns_exponent=0.75, shards=4, round_words=None,
                max_period=None)
# fastText's defaults for its subword model (train_word2vec(subwords=True)): its noise
# distribution (counts ** 0.5) and its end-of-line word (</s>) too
SUBWORD_DEFAULTS = dict(minn=3, maxn=6, bucket=2_000_000, lr=0.05, ns_exponent=0.5, eos=True)
# The default round length (see Word2VecModel): about this many output-row updates per shard
# and round in skip-gram, and at most this many expected uses of the busiest row
ROUND_UPDATES = 2**15
ROUND_ROW_USES = 128
# The long rounds (see Word2VecModel): at most this many rounds, about this many output-row
# updates per shard (the plans' memory), and this many bytes of private copies per shard; a
# row is merged once about PERIOD_ROW_USES stale updates of it piled up in a shard
MAX_PERIOD = 256
PERIOD_ROW_USES = 16
# CBOW's output rows (syn1neg) move once per centre, not once per context as the bound of
# row_uses counts them: they are merged this many times less often than the bound says (up
# to max_period). On the five corpora together (CBOW, base setting, three seeds paired with
# a factor of 1) 4 took a third off the run at SimLex-999 -0.002 and WordSim-353 +0.009;
# 8 (about 2 window) cost 0.008 of SimLex (bench/README.md, "word2vec against gensim").
CBOW_OUTPUT_PERIOD_FACTOR = 4
LONG_ROUND_UPDATES = 2**21
LONG_ROUND_BYTES = 2**26
# train_step's divergence test: a loss per prediction above this many times that of untrained
# vectors, (negative + 1) log 2
DIVERGED_LOSS = 10.0
MAX_SENTENCE_LENGTH = 10_000  # gensim's MAX_WORDS_IN_BATCH: longer sentences are split


# -- the corpus --------------------------------------------------------------------------------

class Corpus:
    """A corpus encoded as word ids: ``words`` (int32) and sentence ``starts`` (int64).

    Sentence ``s`` is ``words[starts[s]:starts[s + 1]]``. Words missing from the vocabulary
    are dropped (the sentence gets shorter, as in gensim); empty sentences are dropped;
    sentences longer than ``max_sentence_length`` are cut into pieces (these three apply
    to :meth:`from_sentences`).

    Parameters
    ----------
    words : array-like of int
        The word ids of all sentences, concatenated (stored as int32).
    starts : array-like of int
        Non-decreasing sentence starts, from 0, ending with ``len(words)`` (stored as
        int64).

    Raises
    ------
    ValueError
        ``starts`` not from 0 to ``len(words)``, or decreasing.

    Examples
    --------
    >>> from fastembed.models.word2vec import Corpus
    >>> corpus = Corpus([0, 1, 2, 1], [0, 3, 4])
    >>> corpus
    Corpus(2 sentences, 4 words)
    >>> corpus.words[corpus.starts[1]:corpus.starts[2]]
    array([1], dtype=int32)
    """

    def __init__(self, words, starts):
        words = np.ascontiguousarray(words, dtype=np.int32)
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        if starts.ndim != 1 or starts.size < 1 or starts[0] != 0 or starts[-1] != words.size:
            raise ValueError("starts must begin at 0 and end at len(words)")
        if starts.size > 1 and (np.diff(starts) < 0).any():
            raise ValueError("starts must be non-decreasing")
        self.words = words
        self.starts = starts

    @classmethod
    def from_sentences(cls, sentences, vocab, max_sentence_length=MAX_SENTENCE_LENGTH):
        """Encode token lists with ``vocab`` (a :class:`fastembed.text.Vocab` or a dict).

        Parameters
        ----------
        sentences : iterable of iterables of str
        vocab : Vocab or dict of str to int
            Word -> id; words missing from it are dropped.
        max_sentence_length : int, default 10000
            Longer sentences are cut into pieces of at most this many (kept) words.

        Returns
        -------
        Corpus

        Raises
        ------
        ValueError, TypeError
            ``max_sentence_length`` is not a positive int.

        Examples
        --------
        >>> from fastembed.text import Vocab
        >>> from fastembed.models.word2vec import Corpus
        >>> sentences = [["a", "b", "c"], ["b", "x", "c", "a"], ["x"]]
        >>> corpus = Corpus.from_sentences(sentences, {"a": 0, "b": 1, "c": 2},
        ...                                max_sentence_length=2)
        >>> corpus.words, corpus.starts         # "x" dropped, long sentences cut
        (array([0, 1, 2, 1, 2, 0], dtype=int32), array([0, 2, 3, 5, 6]))
        """
        max_sentence_length = check_positive_int(max_sentence_length, "max_sentence_length")
        index = getattr(vocab, "index", vocab)
        index = index if isinstance(index, dict) else dict(index)
        sentences = sentences if isinstance(sentences, list) else list(sentences)
        return cls(*encode_sentences(sentences, index, max_sentence_length))

    @property
    def n_words(self):
        """The number of words (ids) in the corpus: those of the vocabulary only.

        Examples
        --------
        >>> from fastembed.models.word2vec import Corpus
        >>> Corpus.from_sentences([["a", "b", "?"], ["?"]], {"a": 0, "b": 1}).n_words
        2
        """
        return int(self.words.size)

    @property
    def n_sentences(self):
        """The number of sentences in the corpus, each piece of a cut sentence counted.

        Examples
        --------
        >>> from fastembed.models.word2vec import Corpus
        >>> corpus = Corpus.from_sentences([["a"] * 5, []], {"a": 0}, max_sentence_length=2)
        >>> corpus.n_sentences, corpus.starts       # 5 words cut into 2 + 2 + 1; [] dropped
        (3, array([0, 2, 4, 5]))
        """
        return int(self.starts.size - 1)

    def __repr__(self):
        return f"Corpus({self.n_sentences:,} sentences, {self.n_words:,} words)"


class CorpusDataset(BatchedDataset):
    """The trainer's view of a :class:`Corpus`: batches of whole sentences, in corpus order.

    A :class:`fastembed.train.BatchedDataset` whose items are the sentences, never shuffled
    (gensim does not shuffle either), cut into batches by their words: batch ``i`` holds the
    sentences that start within words ``[i * batch_words, (i + 1) * batch_words)``, so every
    batch has about ``batch_words`` words (a stretch of words in which no sentence starts
    makes no batch). ``batch(epoch, i)`` returns ``(words, starts)`` views, with ``starts``
    relative to the batch. ``len()`` counts the words.

    With ``streams > 1`` the corpus is cut into that many parts of about equal words (part
    ``r`` holds the sentences that start within words ``[r N / streams, (r + 1) N /
    streams)``), and batch ``i`` holds, part after part, the ``i``-th run of about
    ``batch_words / streams`` words of each: the parts are trained side by side, as
    fastText's threads each read their own part of the file. (The shards of
    :class:`Word2VecModel` cut a batch into contiguous pieces, so with as many streams as
    shards each shard trains mostly one part.) On text whose order matters (speeches in
    date order, mail by folder) this mixes distant parts of it from the start.

    Parameters
    ----------
    corpus : Corpus
    batch_words : int, default 20000
        The target number of words per batch.
    streams : int, default 1
        Parts of the corpus each batch draws from; 1 is the corpus in order (gensim's).

    Raises
    ------
    TypeError
        ``corpus`` is not a :class:`Corpus`.
    ValueError
        ``batch_words`` is not a positive int.

    Examples
    --------
    >>> from fastembed.models.word2vec import Corpus, CorpusDataset
    >>> data = CorpusDataset(Corpus([0, 1, 2, 1, 0], [0, 2, 3, 5]), batch_words=2)
    >>> data.num_batches(), len(data)
    (2, 5)
    >>> data.batch(0, 1)                    # the sentences starting at words 2 and 3
    (array([2, 1, 0], dtype=int32), array([0, 1, 3]))
    >>> two = CorpusDataset(Corpus([0, 1, 2, 1, 0, 3], [0, 1, 2, 3, 4, 5, 6]), batch_words=2,
    ...                     streams=2)
    >>> two.batch(0, 0)                     # the first sentence of each half
    (array([0, 1], dtype=int32), array([0, 1, 2]))
    """

    def __init__(self, corpus, batch_words=20_000, streams=1):
        if not isinstance(corpus, Corpus):
            raise TypeError(f"corpus must be a Corpus, got {type(corpus).__name__}")
        self.corpus = corpus
        self.batch_words = check_positive_int(batch_words, "batch_words")
        self.streams = check_positive_int(streams, "streams")
        starts = corpus.starts
        if self.streams == 1:
            self._sentences = None
            bounds = _runs(starts, 0, corpus.n_sentences, self.batch_words)
        else:
            # each part's runs of batch_words / streams words; batch i: run i of every part
            S, N = self.streams, corpus.n_words
            edges = np.searchsorted(starts[:-1], -(-np.arange(S + 1) * N // S), side="left")
            edges[-1] = corpus.n_sentences
            runs = [_runs(starts, edges[r], edges[r + 1], math.ceil(self.batch_words / S))
                    for r in range(S)]
            pieces, bounds, total = [], [0], 0
            for i in range(max(len(b) - 1 for b in runs)):
                for b in runs:
                    if i + 1 < len(b):
                        pieces.append(np.arange(b[i], b[i + 1], dtype=np.int64))
                        total += int(b[i + 1] - b[i])
                bounds.append(total)
            self._sentences = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
            bounds = np.array(bounds, dtype=np.int64)
        super().__init__(corpus.n_sentences, bounds=bounds, shuffle=False)

    def __len__(self):
        return self.corpus.n_words

    def take(self, sentences):
        """``(words, starts)`` of a run of consecutive sentences: views, ``starts`` from 0.

        Parameters
        ----------
        sentences : slice
            Consecutive sentences, ``slice(first, end)`` (the dataset is never shuffled).

        Returns
        -------
        words : ndarray of int32
            A view of the corpus's words.
        starts : ndarray of int64
            The sentence starts, relative to ``words``, ending with ``len(words)``.

        Examples
        --------
        >>> from fastembed.models.word2vec import Corpus, CorpusDataset
        >>> data = CorpusDataset(Corpus([0, 1, 2, 1], [0, 2, 4]), batch_words=2)
        >>> data.take(slice(1, 2))
        (array([2, 1], dtype=int32), array([0, 2]))

        With ``streams > 1`` the slice is of positions in the batches' order, whose sentences
        come in one run per part: the words are then a copy.
        """
        if self._sentences is None:
            starts = self.corpus.starts[sentences.start:sentences.stop + 1]
            words = self.corpus.words[starts[0]:starts[-1]]
            return words, starts - starts[0]
        ids = self._sentences[sentences]
        cs = self.corpus.starts
        runs = np.split(ids, np.flatnonzero(np.diff(ids) != 1) + 1) if ids.size else []
        words = np.concatenate([self.corpus.words[cs[r[0]]:cs[r[-1] + 1]] for r in runs]) \
            if runs else self.corpus.words[:0]
        starts = np.zeros(ids.size + 1, dtype=np.int64)
        np.cumsum(cs[ids + 1] - cs[ids], out=starts[1:])
        return words, starts


def read_corpus(path, *, min_count=DEFAULTS["min_count"], max_vocab_size=None, vocab=None,
                max_sentence_length=MAX_SENTENCE_LENGTH, eos=False):
    """Read a tokenised text file into a vocabulary and a :class:`Corpus`, in one pass.

    The file holds one sentence per line, its tokens separated by whitespace (the input of
    fastText and of gensim's ``LineSentence``). Lines end at ``\\n``; within a line the
    separators are fastText's: space, tab, vertical tab, form feed, carriage return and NUL.
    The result is what :meth:`fastembed.text.Vocab.build` and :meth:`Corpus.from_sentences`
    give for ``[line.split() for line in file]`` on such a file, without building a list of
    strings per line: the file is read in blocks and every token goes straight to an id (on
    SpamAssassin's 3.1 M tokens, 0.2-0.4 s against 1.3 s for the lists and the two passes).

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 text file.
    min_count : int, default 5
        Keep the words that occur at least this many times.
    max_vocab_size : int, optional
        Keep only the most frequent words.
    vocab : Vocab, optional
        Encode with this vocabulary instead (``min_count`` and ``max_vocab_size`` are then
        unused); tokens not in it are dropped.
    max_sentence_length : int, default 10000
        Longer lines are cut into pieces of at most this many (kept) words.
    eos : bool, default False
        End every line that has a token with fastText's end-of-line token ``</s>``
        (:data:`fastembed.subwords.EOS`), as fastText reads its input: the vocabulary counts
        it once per such line, and it is the last word of each.

    Returns
    -------
    vocab : Vocab
        The words by count, descending, ties in order of first occurrence.
    corpus : Corpus

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A kept word that is not valid UTF-8 (the message names the file); a ``min_count``
        or ``max_sentence_length`` below 1, a negative ``max_vocab_size``.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastembed.models.word2vec import read_corpus
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "corpus.txt")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.write("the cat sat\\nthe dog\\tsat\\n\\nthe end")
    ...     vocab, corpus = read_corpus(path, min_count=2)
    >>> vocab.words, vocab.counts.tolist()
    (['the', 'sat'], [3, 2])
    >>> corpus.words.tolist(), corpus.starts.tolist()
    ([0, 1, 0, 1, 0], [0, 2, 4, 5])
    """
    path = os.fspath(path)
    max_sentence_length = check_positive_int(max_sentence_length, "max_sentence_length")
    if vocab is None:
        min_count = check_positive_int(min_count, "min_count")
        max_vocab_size = check_int(max_vocab_size, "max_vocab_size", min=0, allow_none=True)
    with open(path, "rb") as f:
        tokens, counts, slots, lengths = count_file(f, eos=bool(eos))
    ids = np.full(len(tokens), -1, dtype=np.int32)
    if vocab is None:
        # Vocab.build's ranking, on the counts array: by count, descending, ties in order of
        # first occurrence (a stable sort); Vocab.from_counts on a dict of every token took
        # 0.13 s on SpamAssassin's 123,000 distinct tokens, this 0.015 s
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] >= min_count][:max_vocab_size]
        try:
            words = [tokens[k].decode("utf-8") for k in order.tolist()]
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: a word is not valid UTF-8: {exc}") from None
        vocab = Vocab(words, counts[order])
        ids[order] = np.arange(order.size, dtype=np.int32)
    else:
        index = vocab.index
        for k, token in enumerate(tokens):
            try:
                word_id = index.get(token.decode("utf-8"))
            except UnicodeDecodeError:
                continue   # not a str, so in no vocabulary
            if word_id is not None:
                ids[k] = word_id
    return vocab, Corpus(*encode_slots(slots, lengths, ids, max_sentence_length))


def _runs(starts, first, end, words):
    """Sentence bounds that cut the sentences ``[first, end)`` into runs of about ``words``
    words: run j holds those that start within words ``[j words, (j + 1) words)`` of the range
    (a stretch in which no sentence starts makes no run). From ``first`` to ``end``."""
    n_words = int(starts[end] - starts[first])
    n_runs = max(1, math.ceil(n_words / words)) if n_words else 0
    targets = starts[first] + np.arange(n_runs, dtype=np.int64) * words
    cut = first + np.searchsorted(starts[first:end], targets, side="left")
    bounds = np.unique(np.append(cut, end))
    if bounds.size and bounds[0] != first:
        bounds = np.insert(bounds, 0, first)
    return bounds


# -- sampling tables ---------------------------------------------------------------------------

def subsample_keep_probability(counts, sample):
    """gensim's probability of keeping each word under frequency subsampling.

    ``p = (sqrt(c / t) + 1) * t / c`` with ``t = sample * sum(counts)``, capped at 1; words of
    count 0 get 1. ``sample=0`` keeps everything.

    Parameters
    ----------
    counts : array-like of numbers, shape (V,)
        The corpus count of each word.
    sample : float
        The subsampling threshold (gensim's ``sample``).

    Returns
    -------
    ndarray of float64, shape (V,)

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.models.word2vec import subsample_keep_probability
    >>> np.round(subsample_keep_probability([1000, 10, 0], 1e-3), 4)
    array([0.0328, 0.4188, 1.    ])
    >>> subsample_keep_probability([1000, 10], 0)
    array([1., 1.])
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not sample:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
    p[~np.isfinite(p)] = 1.0
    return np.minimum(p, 1.0)


def alias_table(weights):
    """Walker's alias table for drawing ids with probability proportional to ``weights``.

    Returns ``(accept, alias)``: draw a column ``k`` uniformly, then keep ``k`` when a uniform
    32-bit number is below ``accept[k]`` (out of 2**32), else take ``alias[k]``. Built with
    Vose's method in float64.

    Parameters
    ----------
    weights : array-like of numbers, shape (n,)
        Finite, non-negative, with a positive sum; need not be normalised.

    Returns
    -------
    accept : ndarray of uint64, shape (n,)
        Thresholds in ``[0, 2**32]``.
    alias : ndarray of int32, shape (n,)

    Raises
    ------
    ValueError
        Empty, non-finite or negative weights, or weights summing to 0.

    Examples
    --------
    >>> from fastembed.models.word2vec import alias_table
    >>> accept, alias = alias_table([1, 1, 2])
    >>> accept / 2**32, alias         # column 2 always keeps itself
    (array([0.75, 0.75, 1.  ]), array([2, 2, 2], dtype=int32))
    >>> (accept / 2**32 + [0, 0, 0.25 + 0.25]) / 3     # P(k): 1/4, 1/4, 1/2
    array([0.25, 0.25, 0.5 ])
    """
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    if n == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("alias_table needs finite, non-negative weights with a positive sum")
    prob = w * (n / w.sum())
    alias = np.arange(n, dtype=np.int32)
    small = [k for k in range(n) if prob[k] < 1.0]
    large = [k for k in range(n) if prob[k] >= 1.0]
    prob_list = prob.tolist()
    alias_list = alias.tolist()
    while small and large:
        s = small.pop()
        g = large[-1]
        alias_list[s] = g
        prob_list[g] = (prob_list[g] + prob_list[s]) - 1.0
        if prob_list[g] < 1.0:
            large.pop()
            small.append(g)
    for k in large + small:  # leftovers are 1 up to rounding
        prob_list[k] = 1.0
    prob = np.array(prob_list)
    accept = np.minimum(np.round(prob * 2.0**32), 2.0**32).astype(np.uint64)
    return accept, np.array(alias_list, dtype=np.int32)


def row_uses(counts, keep, noise, window, negative, expected=False):
    """Uses of each row per centre word: a bound for both models, or skip-gram's expectation.

    With ``p`` the word frequencies after subsampling and ``q`` the noise distribution, a
    skip-gram centre has ``window + 1`` contexts in expectation (the reduced window), each a
    prediction whose input is a context's row and whose outputs are the centre's row and
    ``negative`` noise words: row ``r`` is used about ``(window + 1) (p(r) + negative q(r))``
    times (``expected=True``). The bound ``2 window (p(r) + negative q(r))`` holds for CBOW too
    (whose output rows are used once per centre, not per context); it sets the round length
    (:func:`default_round_words`), and the merge periods of CBOW's output rows (used once per
    centre: merged ``CBOW_OUTPUT_PERIOD_FACTOR`` times less often than the bound says). CBOW's
    input rows take their own bound, ``2 window p`` (no noise word is an input). Giving both
    tables of CBOW one period from its own expected count, ``max((window + 1) p, p + negative
    q)``, cost 0.006 of SimLex-999 on the five corpora together (four seeds each, paired:
    -0.004 to -0.009 per seed); the output rows' periods were then up to ``2 window`` times
    longer, and merging them 8 times less often than the bound alone cost 0.008.

    Parameters
    ----------
    counts : ndarray of int
    keep : ndarray of float
        Subsampling keep probabilities.
    noise : ndarray of float
        Unnormalised noise weights.
    window, negative : int
    expected : bool, default False
        Skip-gram's expected uses instead of the bound.

    Returns
    -------
    ndarray of float64 (V,)

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.models.word2vec import row_uses
    >>> row_uses(np.array([3, 1]), np.ones(2), np.array([1.0, 1.0]), window=2, negative=1)
    array([5., 3.])
    >>> row_uses(np.array([3, 1]), np.ones(2), np.array([1.0, 1.0]), 2, 1, expected=True)
    array([3.75, 2.25])
    """
    kept = counts * np.asarray(keep, dtype=np.float64)
    p = kept / kept.sum() if kept.sum() > 0 else np.zeros(len(kept))
    q = np.asarray(noise, dtype=np.float64) / np.sum(noise)
    if expected:
        return (window + 1) * (p + negative * q)
    return 2 * window * (p + negative * q)


def default_round_words(counts, keep, noise, window, negative):
    """Centre words per shard and round when ``round_words`` is not given.

    The shards train from the same start and their changes to a shared row are summed, so a
    row that every shard moves many times between two merges (a frequent word) would move by
    several full steps at once and overshoot. The rounds, after which the busiest rows are
    merged, are therefore short in two ways:

    - about ``ROUND_UPDATES`` (2**15) output-row updates per shard in skip-gram, that is
      ``2**15 // (2 window (negative + 1))`` centres (546 at window 5, negative 5; 186 at
      window 8, negative 10), the same number of centres in CBOW;
    - at most ``ROUND_ROW_USES`` (128) expected uses of the busiest row per shard
      (:func:`row_uses`). This binds for small or flat vocabularies (16 equally frequent
      words: 34 centres; measured on that vocabulary without subsampling, skip-gram learns
      with rounds of up to 48 centres and fails from about 64 on, its loss rising from 4 to
      15) and for natural text too (the State of the Union: about 100 centres).

    Less busy rows are merged less often (:func:`merge_periods`). Neither bound depends on the
    machine. Returns at least 16.

    Parameters
    ----------
    counts, keep, noise, window, negative :
        As :func:`row_uses`: the counts, the subsampling keep probabilities, the unnormalised
        noise weights, the window and the noise words per prediction.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.models.word2vec import default_round_words
    >>> flat = np.full(16, 100)
    >>> default_round_words(flat, np.ones(16), flat ** 0.75, 5, 5)
    34
    """
    uses = float(np.max(row_uses(counts, keep, noise, window, negative)))
    by_updates = ROUND_UPDATES // (2 * window * (negative + 1))
    by_uses = int(ROUND_ROW_USES / uses) if uses > 0 else by_updates
    return max(16, min(by_updates, by_uses))


def _private_rows(kind, centres, window, negative, num_words, bag_sizes=None,
                  num_inputs=None):
    """Rows a shard may touch in ``centres`` centre words: (input rows, output rows).

    With subwords (``bag_sizes``, each word's number of input rows, largest first), the
    input rows of ``centres + 2 window`` distinct words at most: the sum of that many largest
    bags, and at most ``num_inputs``, the rows of ``syn0``."""
    outputs_per_centre = 1 + negative if kind == "cbow" else 1 + 2 * window * negative
    words = min(num_words, centres + 2 * window)
    if bag_sizes is None:
        inputs = words
    else:
        if kind != "cbow":   # fastText's order: each context is an output row
            outputs_per_centre = 2 * window * (1 + negative)
        inputs = int(np.sum(bag_sizes[:words]))
        if num_inputs is not None:
            inputs = min(inputs, num_inputs)
    return inputs, min(num_words, centres * outputs_per_centre)


def _check_bags(bags, num_words, num_rows):
    """Validated subword bags: (ptr int64 (V + 1,), rows int32, shift float64 (V,))."""
    try:
        rows, starts = bags
    except (TypeError, ValueError):
        raise TypeError("bags must be a (rows, starts) pair") from None
    rows, starts = np.asarray(rows), np.asarray(starts)
    for name, a in (("rows", rows), ("starts", starts)):
        if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
            raise TypeError(f"bags' {name} must be a 1-D integer array")
    if starts.shape != (num_words + 1,):
        raise ValueError(f"bags' starts must have one entry per word and one more "
                         f"({num_words + 1}), got shape {starts.shape}")
    starts = starts.astype(np.int64)
    sizes = np.diff(starts)
    if starts[0] != 0 or starts[-1] != rows.size or (sizes <= 0).any():
        raise ValueError("bags' starts must rise strictly from 0 to len(rows): every word "
                         "has at least one input row")
    if rows.size and (rows.min() < 0 or rows.max() >= num_rows):
        bad = int(rows.min()) if rows.min() < 0 else int(rows.max())
        pos = int(np.flatnonzero(rows == bad)[0])
        raise IndexError(f"bags' rows[{pos}] = {bad} is out of range; rows must lie in "
                         f"[0, {num_rows})")
    rows = rows.astype(np.int32)
    # shift: sum of the squared multiplicities of a bag's distinct rows, over the bag's size
    word = np.repeat(np.arange(num_words, dtype=np.int64), sizes)
    _, first, mult = np.unique(word * num_rows + rows, return_index=True, return_counts=True)
    shift = np.bincount(word[first], weights=mult.astype(np.float64) ** 2,
                        minlength=num_words) / sizes
    return starts, rows, shift


def _rows_in_use(rows, num_words):
    """The bags' rows renumbered onto the rows that they use: ``(rows, syn0_rows)``.

    ``syn0_rows`` is ``arange(num_words)`` (each word keeps its own row), then the other rows
    that the bags name, in the order in which they first appear: the n-grams of the frequent
    words, the rows used most, lie together. Each entry of the returned ``rows`` (int32) is
    the position in ``syn0_rows`` of the entry given. Training on these rows gives the same
    numbers as training on the whole matrix: no sum depends on a row's number.
    """
    rows = np.asarray(rows, dtype=np.int64)
    ngram = rows >= num_words
    used, first, inverse = np.unique(rows[ngram], return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(used.size, dtype=np.int64)
    rank[order] = np.arange(used.size)
    renumbered = rows.copy()
    renumbered[ngram] = num_words + rank[inverse]
    return (renumbered.astype(np.int32),
            np.concatenate([np.arange(num_words, dtype=np.int64), used[order]]))


def default_max_period(round_words, window, negative, num_words, dim, itemsize,
                       kind="skipgram", bag_sizes=None, bucket=0, num_inputs=None):
    """Rounds per long round when ``max_period`` is not given.

    The largest power of two up to ``MAX_PERIOD`` (256) with at most about
    ``LONG_ROUND_UPDATES`` (2**21) output-row updates per shard and long round (the memory of
    its plans, about 8 MiB), and at most ``LONG_ROUND_BYTES`` (64 MiB) of private copies per
    shard. The longer the long round, the fewer the copies and merges per update.

    Parameters
    ----------
    round_words, window, negative, num_words, dim, itemsize : int
    kind : {"skipgram", "cbow"}
    bag_sizes : array of int, optional
        Subwords: each word's number of input rows.
    bucket : int, default 0
        Subwords without ``num_inputs`` (CBOW): the budget of copies per shard is at least an
        eighth of the whole input table, ``num_words + bucket`` rows.
    num_inputs : int, optional
        Subwords (skip-gram): the rows of ``syn0``, the words' and the n-gram rows in use. A
        shard never copies more input rows than these, and the budget of copies per shard is
        then at least all the rows held: the bound by the largest bags alone is far above
        what a long round touches (SpamAssassin's mails, whose largest bags are junk tokens of
        up to 707 n-grams, got 16 rounds under the eighth of the table, and trained 1.3x
        slower than with 64; the State of the Union 64, now 256). CBOW keeps the eighth: its
        hot rows, the n-grams of every context, multiply with longer long rounds (the State
        of the Union at 256 rounds: 41,114 hot rows instead of 19,254, twice the time).

    Returns
    -------
    int

    Examples
    --------
    >>> from fastembed.models.word2vec import default_max_period
    >>> default_max_period(93, 5, 5, 12_000, 100, 4)
    256
    >>> default_max_period(186, 8, 10, 200_000, 100, 4)   # a large vocabulary: 64 MiB of copies
    4
    """
    budget = LONG_ROUND_BYTES
    if bag_sizes is not None:   # largest first, once (see _private_rows)
        bag_sizes = np.sort(np.asarray(bag_sizes))[::-1]
        if num_inputs is not None:   # a shard never copies more than the rows held
            budget = max(budget, (num_inputs + num_words) * dim * itemsize)
        elif bucket:
            budget = max(budget, (num_words + bucket) * dim * itemsize // 8)
    period = 1
    while period * 2 <= MAX_PERIOD:
        centres = round_words * period * 2
        rows = sum(_private_rows(kind, centres, window, negative, num_words, bag_sizes,
                                 num_inputs))
        if (centres * 2 * window * (negative + 1) > LONG_ROUND_UPDATES
                or rows * dim * itemsize > budget):
            break
        period *= 2
    return period


def merge_periods(uses, round_words, max_period):
    """How often each row is merged, in rounds.

    The longest power of two, up to ``max_period``, over which a shard uses the row at most
    ``PERIOD_ROW_USES`` (16) times in expectation, and at least 1: the rows used more than 16
    times a round are merged after every round (their staleness is bounded by the round
    length, :func:`default_round_words`), the others when about 16 stale updates have piled
    up, the rare rows once per long round. With 128 uses instead of 16 (the busiest row's
    bound in a round), the word similarities of mid-frequency words fall (SimLex-999 down
    0.015 on the State of the Union and on the five corpora together, vectors less bunched
    than gensim's); with 16 they are those of merging every row after every round, at 0.6x
    its time.

    Parameters
    ----------
    uses : ndarray of float
        Expected uses per centre of each row (:func:`row_uses`).
    round_words, max_period : int

    Returns
    -------
    ndarray of int64 (V,)
        Powers of two in ``[1, max_period]``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.models.word2vec import merge_periods
    >>> merge_periods(np.array([1.0, 0.3, 0.01, 0.0]), round_words=100, max_period=64)
    array([ 1,  1, 16, 64])
    """
    uses = np.asarray(uses, dtype=np.float64)
    with np.errstate(divide="ignore"):
        ratio = PERIOD_ROW_USES / (round_words * uses)
    exp = np.floor(np.log2(np.clip(ratio, 1.0, max_period)))
    return (2 ** exp.astype(np.int64)).astype(np.int64)


def _alias_probabilities(accept, alias):
    """The distribution an alias table draws from (for tests and checks)."""
    n = accept.size
    p = accept.astype(np.float64) / 2.0**32
    out = p.copy()
    np.add.at(out, alias, 1.0 - p)
    return out / n


# -- the model ---------------------------------------------------------------------------------

class Word2VecModel(Module):
    """word2vec with negative sampling: the base of :class:`SkipGram` and :class:`CBOW`.

    Holds the two tables, the sampling tables and the parallel scheme; the trainer's model
    protocol (``train_step``, ``state_dict``, ``load_state_dict``). Use a subclass.

    A :class:`~fastembed.nn.Module`: the tables are two sparse
    :class:`~fastembed.nn.Parameter` objects named ``"syn0"`` and ``"syn1neg"``, which
    ``parameters()`` and ``named_parameters()`` yield; ``train_step`` updates them with its
    own fused SGD, so no optimizer is needed.

    Parameters
    ----------
    counts : array of int
        Corpus count of each word id (a :class:`fastembed.text.Vocab`'s ``counts``): they
        define the subsampling and the noise distribution.
    dim : int, default 100
    window : int, default 5
        The largest window: each centre word uses ``window - b`` words on each side, ``b``
        uniform in [0, window).
    negative : int, default 5
        Noise words per prediction; at least 1.
    sample : float, default 1e-3
        Subsampling threshold, in [0, 1); 0 turns subsampling off.
    ns_exponent : float, default 0.75
    dtype : float32 or float64
    seed : int, default 1
        Seeds the initial vectors (uniform in ``[-1, 1) / dim``, as gensim 4; the output
        vectors start at zero).
    n_threads : int, optional
        Threads; None is OpenMP's default (:func:`fastembed.get_num_threads`). The vectors
        do not depend on it, unless ``hogwild=True``.
    hogwild : bool, default False
        Lock-free updates of the shared tables by all threads at once, as gensim and
        word2vec.c do: not reproducible with more than one thread.
    shards : int, default 4
        Deterministic parallelism: each batch's words are cut into this many contiguous
        pieces, far apart, trained side by side in rounds of ``round_words`` centre words
        each, on private copies of the rows that several shards use; a row is merged (moves
        by the sum of the shards' changes, added in shard order: what lock-free threads do,
        with the staleness bounded and the sums in a fixed order) every ``merge_periods[r]``
        rounds. Threads take shards as they free up, so the vectors depend on the seed, the
        data, ``shards``, ``round_words`` and ``max_period``, never on the thread count; at
        most ``shards`` threads work at once. ``shards=1`` is plain online SGD on one thread.
    round_words : int, optional
        Centre words each shard trains per round, after which the busiest rows are merged; by
        default :func:`default_round_words`: short enough in updates, and in uses of the
        busiest row, that a frequent word's row, which every shard moves, is never moved far
        by stale copies (with rounds a few times longer the summed changes overshoot: the
        vectors bunch together, and a small vocabulary diverges).
    max_period : int, optional
        Rounds per long round, a power of two: the longest merge period. Each row is merged
        every :func:`merge_periods` rounds: the longest power of two up to ``max_period`` over
        which a shard uses it at most 16 times in expectation (at least one round), or, for
        CBOW's output rows, :attr:`output_merge_periods`. Rows merged more often in either
        table (the hot rows) live in every shard's own copy; the others that one shard alone
        touches in a long round are trained in place. By default
        :func:`default_max_period` (256, less when the copies of a long round would pass
        64 MiB per shard). ``max_period=1`` merges every shared row after every round.
    bags : (rows, starts), optional
        Subwords, as fastText: word ``w``'s input is the bag of rows
        ``rows[starts[w]:starts[w + 1]]`` of the input matrix (its own row and its character
        n-grams' buckets, :func:`fastembed.subwords.word_bags`), whose mean stands for the
        word where its single row would. Skip-gram then takes fastText's order: the centre's
        bag predicts each context word. Every bag is non-empty; the rows lie in
        ``[0, V + bucket)``; ``syn0`` holds them renumbered (``syn0_rows``).
    bucket : int, default 0
        The n-gram rows of the input matrix beyond the words'; only with ``bags``.

    Attributes
    ----------
    syn0 : ndarray (V + U, dim)
        The input vectors (the array of the Parameter ``"syn0"``): the word vectors, then
        (subwords) the U n-gram rows that some bag holds, in the order the bags first name
        them. Training touches no other row of the input matrix: the State of the Union's
        12,124 words name 67,815 of fastText's 2,000,000 buckets, so the model holds 32 MB
        instead of 805 MB, which it would first have to fill and then reach through the
        cache and the TLB at random.
    syn0_rows : ndarray of int64 (V + U,), or None
        Subwords: the row of the input matrix each row of ``syn0`` is (``arange(V)``, then
        the n-gram rows); None without n-gram rows (``bucket=0``), and for models pickled
        before models held only these rows (``syn0`` is then the whole matrix). Every other
        row keeps its initial value, uniform in ``[-1, 1) / dim`` from ``init_seed``
        (:meth:`Word2VecResult.fasttext_model` holds the whole matrix).
    init_seed : int, or None
        Subwords: the seed of the n-gram rows' initial values
        (``fastembed._ext.sgns.uniform_rows``).
    syn1neg : ndarray (V, dim)
        The output vectors (the array of the Parameter ``"syn1neg"``).

    Raises
    ------
    ValueError, TypeError
        Counts that are empty, negative, not finite or summing to 0; invalid sizes,
        ``sample``, ``ns_exponent``, ``dtype`` or ``n_threads``; ``negative < 1``.

    Examples
    --------
    >>> from fastembed.models.word2vec import CBOW, SkipGram, Word2VecModel
    >>> isinstance(SkipGram([5, 3, 2], dim=4), Word2VecModel)
    True
    >>> [(name, p.shape, p.sparse) for name, p in SkipGram([5, 3, 2], dim=4).named_parameters()]
    [('syn0', (3, 4), True), ('syn1neg', (3, 4), True)]
    >>> CBOW([5, 3, 2], dim=4, negative=0)
    Traceback (most recent call last):
    ...
    ValueError: negative must be >= 1, got 0
    """

    #: "skipgram" or "cbow", set by the subclasses
    kind = ""

    def __init__(self, counts, dim=DEFAULTS["dim"], *, window=DEFAULTS["window"],
                 negative=DEFAULTS["negative"], sample=DEFAULTS["sample"],
                 ns_exponent=DEFAULTS["ns_exponent"], dtype=np.float32, seed=1,
                 n_threads=None, hogwild=False, shards=DEFAULTS["shards"],
                 round_words=DEFAULTS["round_words"], max_period=DEFAULTS["max_period"],
                 bags=None, bucket=0):
        if type(self) is Word2VecModel:
            raise TypeError("Word2VecModel is a base class: use SkipGram or CBOW")
        super().__init__()
        counts = np.asarray(getattr(counts, "counts", counts))
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError("counts must be a non-empty 1-D array (one count per word)")
        if not np.issubdtype(counts.dtype, np.integer) and not np.issubdtype(counts.dtype,
                                                                              np.floating):
            raise TypeError(f"counts must be numbers, got {counts.dtype}")
        if (counts < 0).any() or not np.isfinite(counts).all():
            raise ValueError("counts must be finite and non-negative")
        if counts.sum() <= 0:
            raise ValueError("counts sum to 0: there is nothing to learn from")
        self.dim = check_positive_int(dim, "dim")
        self.window = check_positive_int(window, "window")
        # at least 1: with no noise word every vector collapses onto the same direction
        self.negative = check_positive_int(negative, "negative")
        self.sample = check_fraction(sample, "sample")
        self.ns_exponent = check_float(ns_exponent, "ns_exponent")
        dtype = check_float_dtype(dtype)
        check_n_threads(n_threads)
        self.shards = check_positive_int(shards, "shards")
        self._round_words = check_positive_int(round_words, "round_words", allow_none=True)
        self._max_period = check_positive_int(max_period, "max_period", allow_none=True)
        if max_period is not None and max_period & (max_period - 1):
            raise ValueError(f"max_period must be a power of two, got {max_period}")
        self.counts = counts.astype(np.int64)
        self.dtype = dtype
        self.seed = seed
        self.n_threads = n_threads
        self.hogwild = bool(hogwild)
        V = counts.size
        self.bucket = check_int(bucket, "bucket", min=0)
        self._bags = self.syn0_rows = self.init_seed = None
        if bags is not None:
            self._bags = _check_bags(bags, V, V + self.bucket)
            if self.bucket:
                starts, rows, shift = self._bags
                rows, self.syn0_rows = _rows_in_use(rows, V)
                self._bags = (starts, rows, shift)
        if bags is None and self.bucket:
            raise ValueError("bucket needs bags: the rows of each word's n-grams")
        rng = as_rng(seed)
        syn0 = aligned_zeros((V if self.syn0_rows is None else self.syn0_rows.size, self.dim),
                             dtype)
        syn0[:V] = (rng.random((V, self.dim)) * 2.0 - 1.0) / self.dim
        if self.syn0_rows is not None:   # the n-gram rows, as the input matrix's rows start
            self.init_seed = int(rng.integers(0, 2**63))
            sgns.uniform_rows(syn0[V:], self.syn0_rows[V:], self.init_seed, 1.0 / self.dim,
                              resolve_n_threads(n_threads))
        self.register_parameter("syn0", Parameter(syn0, name="syn0", sparse=True))
        self.register_parameter("syn1neg", Parameter(aligned_zeros((V, self.dim), dtype),
                                                     name="syn1neg", sparse=True))
        keep = subsample_keep_probability(self.counts, self.sample)
        self._keep = np.floor(keep * (2.0**32 - 1)).astype(np.uint32)
        noise = self.counts.astype(np.float64) ** self.ns_exponent
        if noise.sum() <= 0:  # pragma: no cover - counts.sum() > 0 guarantees a positive sum
            noise = np.ones(V)
        self._accept, self._alias = alias_table(noise)
        if self._round_words is None:
            self.round_words = default_round_words(self.counts, keep, noise, self.window,
                                                   self.negative)
        else:
            self.round_words = self._round_words
        self._workspace = None
        self._scratch = None
        self._merge_plan = None
        self._bag_top = None

    @property
    def syn0(self):
        """The input vectors (V, dim), the word vectors: the array of the Parameter ``syn0``.

        ``vectors`` is the same property.

        Examples
        --------
        >>> from fastembed.models.word2vec import SkipGram
        >>> model = SkipGram([5, 3, 2], dim=4)
        >>> model.syn0.shape, model.syn0 is model.get_parameter("syn0").data
        ((3, 4), True)
        >>> model.vectors is model.syn0
        True
        """
        return self.get_parameter("syn0").weight

    @syn0.setter
    def syn0(self, value):
        self.get_parameter("syn0").weight = value

    vectors = syn0  # the word vectors under their everyday name: syn0 itself, not a copy

    @property
    def syn1neg(self):
        """The output vectors (V, dim): the array of the Parameter ``syn1neg``.

        Examples
        --------
        >>> from fastembed.models.word2vec import SkipGram
        >>> bool(SkipGram([5, 3, 2], dim=4).syn1neg.any())          # they start at zero
        False
        """
        return self.get_parameter("syn1neg").weight

    @syn1neg.setter
    def syn1neg(self, value):
        self.get_parameter("syn1neg").weight = value

    def __getstate__(self):
        # the workspaces are rebuilt at the next step: a pickle holds the model only
        return {**self.__dict__, "_workspace": None, "_scratch": None}

    def __setstate__(self, state):
        tables = {}
        if "syn0" in state:  # pickled when the model held plain tables
            state = dict(state)
            tables = {name: state.pop(name) for name in ("syn0", "syn1neg")}
        state = dict(state)
        state.setdefault("_max_period", None)  # pickled before the long rounds
        state.setdefault("_merge_plan", None)
        state.setdefault("_bags", None)        # pickled before subwords
        state.setdefault("bucket", 0)
        state.setdefault("syn0_rows", None)    # (the whole input matrix then)
        state.setdefault("init_seed", None)
        state.setdefault("_bag_top", None)
        state.setdefault("_scratch", None)
        super().__setstate__(state)
        for name, table in tables.items():
            self.register_parameter(name, Parameter(table, name=name, sparse=True))

    @property
    def num_words(self):
        """The vocabulary size V (rows of ``syn1neg``; of ``syn0`` too without subwords).

        Examples
        --------
        >>> from fastembed.models.word2vec import SkipGram
        >>> SkipGram([5, 3, 2], dim=4).num_words
        3
        """
        return int(self.counts.size)

    def __repr__(self):
        return (f"{type(self).__name__}({self.num_words:,} words, dim={self.dim}, "
                f"window={self.window}, negative={self.negative}, sample={self.sample:g}"
                f"{f', subwords in {self.bucket:,} buckets' if self._bags else ''}"
                f"{', hogwild=True' if self.hogwild else ''})")

    # -- the trainer's protocol ----------------------------------------------------------------

    def train_step(self, batch, *, lr, rng, optimizer=None, lr_end=None):
        """One SGD pass over a batch ``(words, starts)``.

        The learning rate decays linearly from ``lr`` at the batch's first word to ``lr_end``
        after its last.

        Parameters
        ----------
        batch : (words, starts)
            1-D integer word ids in ``[0, V)`` and the sentence starts (from 0 to
            ``len(words)``), as :meth:`CorpusDataset.batch` returns them.
        lr : float
            The learning rate at the batch's first word (finite, non-negative).
        rng : numpy.random.Generator
            One 63-bit seed for the kernel's draws is taken from it.
        optimizer : None
            Must be None: the model applies its own fused SGD update.
        lr_end : float, optional
            The learning rate after the batch's last word; ``lr`` (constant) by default.
            The :class:`fastembed.train.Trainer` passes the next step's rate, so that the
            rate decays word by word over the whole run, as in gensim.

        Returns
        -------
        dict
            ``loss`` (mean loss per prediction: per (centre, context) pair for skip-gram, per
            centre for CBOW; 0.0 when nothing was trained), ``count`` (words in the batch),
            ``pairs`` (predictions trained) and ``kept`` (words kept by subsampling).

        Raises
        ------
        ValueError
            An optimizer, a bad ``lr`` or ``lr_end``, or malformed starts.
        IndexError, TypeError
            Word ids out of range, or arrays of the wrong kind.
        FloatingPointError
            The step's loss per prediction is not finite or above ten times that of
            untrained vectors, ``10 (negative + 1) log 2``: training diverged (the tables
            were updated).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.models.word2vec import SkipGram
        >>> model = SkipGram([2, 2], dim=4, window=1, negative=1, sample=0)
        >>> out = model.train_step((np.array([0, 1]), np.array([0, 2])), lr=0.1,
        ...                        rng=np.random.default_rng(0))
        >>> out["count"], out["pairs"], out["kept"]     # 0 -> 1 and 1 -> 0
        (2, 2, 2)
        """
        if optimizer is not None:
            raise ValueError(f"{type(self).__name__} applies its own fused SGD update; pass "
                             f"optimizer=None")
        out = self._step(batch, lr=lr, lr_end=lr if lr_end is None else lr_end,
                         seed=int(rng.integers(0, 2**63)), record=False)
        # Training lowers the loss from that of untrained vectors, (negative + 1) log 2 per
        # prediction; ten times that means the vectors are blowing up (gensim's rule leaves
        # saturated logits alone, so such a run would otherwise go on with huge but finite
        # numbers: lr=0.5 reaches about 120 at negative 5, against 4.2 untrained).
        if not out["loss"] <= DIVERGED_LOSS * (self.negative + 1) * math.log(2):
            raise FloatingPointError(
                f"training diverged: the loss per prediction reached {out['loss']:.3g} with "
                f"lr={lr:.6g}; use a smaller learning rate")
        return out

    def state_dict(self):
        """Copies of ``syn0``, ``syn1neg`` and ``counts``: what a checkpoint needs.

        With n-gram rows, ``syn0_rows`` too: which rows of the input matrix ``syn0`` holds.

        Returns
        -------
        dict of str to ndarray

        Examples
        --------
        >>> from fastembed.models.word2vec import SkipGram
        >>> state = SkipGram([5, 3, 2], dim=4).state_dict()
        >>> {name: a.shape for name, a in state.items()}
        {'syn0': (3, 4), 'syn1neg': (3, 4), 'counts': (3,)}
        """
        state = super().state_dict()  # syn0, syn1neg
        state["counts"] = self.counts.copy()
        if self.syn0_rows is not None:
            state["syn0_rows"] = self.syn0_rows.copy()
        return state

    def load_state_dict(self, state):
        """Copy the arrays of :meth:`state_dict` into the model.

        Parameters
        ----------
        state : dict
            ``syn0`` and ``syn1neg`` of the model's shape and dtype; ``counts``, when
            present, must equal the model's, and so must ``syn0_rows``. A subword model also
            takes a ``syn0`` of the whole input matrix (a checkpoint written before models
            held only the rows in use), of which it keeps its rows.

        Raises
        ------
        ValueError
            Other keys, shapes, dtypes, counts or rows; nothing is changed.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.models.word2vec import SkipGram
        >>> a, b = SkipGram([5, 3, 2], dim=4, seed=1), SkipGram([5, 3, 2], dim=4, seed=2)
        >>> b.load_state_dict(a.state_dict())
        >>> bool(np.array_equal(a.syn0, b.syn0))
        True
        """
        state = dict(state)
        counts = state.pop("counts", None)
        if counts is not None and not np.array_equal(counts, self.counts):
            raise ValueError("the state was trained with other word counts (another vocabulary)")
        rows = state.pop("syn0_rows", None)
        if self.syn0_rows is not None:
            syn0 = state.get("syn0")
            whole = self.num_words + self.bucket
            if rows is None and getattr(syn0, "shape", (0,))[0] == whole != self.syn0.shape[0]:
                state["syn0"] = np.asarray(syn0)[self.syn0_rows]   # the whole input matrix
            elif rows is not None and not np.array_equal(rows, self.syn0_rows):
                raise ValueError("the state holds other rows of the input matrix (other "
                                 "n-grams: another vocabulary, minn, maxn or bucket)")
        elif rows is not None:
            raise ValueError("the state holds n-gram rows; this model has none")
        super().load_state_dict(state)  # syn0 and syn1neg, all checked before any copy

    # -- internals -----------------------------------------------------------------------------

    def _check_batch(self, batch):
        try:
            words, starts = batch
        except (TypeError, ValueError):
            raise TypeError("a batch is a (words, starts) pair") from None
        words = np.asarray(words)
        starts = np.asarray(starts)
        if words.ndim != 1 or not np.issubdtype(words.dtype, np.integer):
            raise TypeError("batch words must be a 1-D integer array")
        if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer) or starts.size < 1:
            raise TypeError("batch starts must be a non-empty 1-D integer array")
        if starts.dtype.kind == "u" and int(starts.max()) > words.size:
            raise ValueError("batch starts must rise from 0 to len(words)")  # before any cast
        starts = starts.astype(np.int64, copy=False)
        if starts[0] != 0 or starts[-1] != words.size or (np.diff(starts) < 0).any():
            raise ValueError("batch starts must rise from 0 to len(words)")
        if words.size:
            lo, hi = int(words.min()), int(words.max())
            if lo < 0 or hi >= self.num_words:
                bad = lo if lo < 0 else hi
                pos = int(np.flatnonzero(words == bad)[0])
                raise IndexError(f"words[{pos}] = {bad} is out of range; word ids must lie in "
                                 f"[0, {self.num_words})")
        return (np.ascontiguousarray(words, dtype=np.int32),
                np.ascontiguousarray(starts, dtype=np.int64))

    @property
    def max_period(self):
        """Rounds per long round: ``max_period`` as given, else :func:`default_max_period`.

        Examples
        --------
        >>> from fastembed.models.word2vec import SkipGram
        >>> SkipGram([5, 3, 2], dim=4, round_words=20).max_period
        256
        >>> SkipGram([5, 3, 2], dim=4, max_period=4).max_period
        4
        """
        if self._max_period is not None:
            return self._max_period
        return default_max_period(self.round_words, self.window, self.negative,
                                  self.num_words, self.dim, self.dtype.itemsize, self.kind,
                                  self._bag_sizes(), self.bucket,
                                  self.syn0.shape[0] if self.kind != "cbow" else None)

    def _bag_sizes(self):
        """Each word's number of input rows, largest first (None without subwords)."""
        if self._bags is None:
            return None
        if self._bag_top is None:
            self._bag_top = np.sort(np.diff(self._bags[0]))[::-1]
        return self._bag_top

    @property
    def merge_periods(self):
        """How often each row is merged, in rounds (:func:`merge_periods`).

        The rows merged more often than once per long round (``max_period`` rounds) are the
        hot rows, which every shard trains on its own copy.

        With subwords, a period for every row of ``syn0``: an n-gram row's uses are those of
        the bags it stands in (once per centre in skip-gram, whose bag is the centre's; once
        per context in CBOW).

        Returns
        -------
        ndarray of int64 (rows of ``syn0``,)

        Examples
        --------
        >>> from fastembed.models.word2vec import SkipGram
        >>> SkipGram([1000, 30, 1], dim=4, window=2, negative=1, round_words=20).merge_periods
        array([1, 1, 8])
        """
        return self._plan_merges()[0]

    @property
    def output_merge_periods(self):
        """How often each row of ``syn1neg`` is merged, in rounds.

        Skip-gram: those of :attr:`merge_periods`. CBOW: from the bound of :func:`row_uses`,
        ``CBOW_OUTPUT_PERIOD_FACTOR`` (4) times longer (an output row moves once per centre,
        not per context), up to ``max_period``; its input rows' periods come from their own
        uses, ``2 window p``. A row is hot (trained on every shard's copy of both tables)
        when either period is below ``max_period`` (:attr:`hot_rows`).

        Subword skip-gram: from the row's own expected uses, as a context or a noise word
        (:func:`row_uses`), while its input rows' periods count the centres whose bags hold
        them (a word's own input row moves once per centre, its output row once per
        context or noise word: more often); each table has its own hot rows.

        Returns
        -------
        ndarray of int64 (``num_words``,)

        Examples
        --------
        >>> from fastembed.models.word2vec import CBOW
        >>> cbow = CBOW([1000, 30, 1], dim=4, window=2, negative=1, round_words=20)
        >>> cbow.merge_periods, cbow.output_merge_periods
        (array([1, 1, 8]), array([ 4,  4, 16]))
        """
        return self._plan_merges()[1]

    @property
    def hot_rows(self):
        """The hot rows of ``syn0`` and of ``syn1neg``, each table's shortest period first.

        The hot rows are those merged more often than once per long round, which every shard
        trains on its own copy.

        With subwords, skip-gram's are each table's own: the rows whose period there
        (:attr:`merge_periods`, :attr:`output_merge_periods`) is below ``max_period``. The
        word model's and CBOW's are the rows with such a period in either table, in both.

        Returns
        -------
        (ndarray of int32, ndarray of int32)

        Examples
        --------
        >>> from fastembed.models.word2vec import CBOW
        >>> cbow = CBOW([1000, 30, 1], dim=4, window=2, negative=1, round_words=20)
        >>> [rows.tolist() for rows in cbow.hot_rows]      # max_period 256: all three
        [[0, 1, 2], [0, 1, 2]]
        """
        return self._plan_merges()[2:4]

    def _plan_merges(self):
        """(periods, output periods, hot syn0 rows, hot syn1neg rows, tier_end (2, n_tiers),
        max_period), cached for the current scheme."""
        key = (self.round_words, self.max_period, self.window, self.negative)
        if self._merge_plan is None or self._merge_plan[0] != key:
            self._merge_plan = (key, self._merge_scheme(*key))
        return self._merge_plan[1]

    def _merge_scheme(self, R, P, window, negative):
        """The merge periods of both tables and their hot rows, each table's shortest period
        first, for rounds of ``R`` centres and long rounds of ``P`` rounds."""
        noise = self.counts.astype(np.float64) ** self.ns_exponent
        keep = subsample_keep_probability(self.counts, self.sample)
        uses = row_uses(self.counts, keep, noise if noise.sum() > 0 else np.ones(self.num_words),
                        window, negative, expected=self.kind == "skipgram")
        V, n_in = self.num_words, self.syn0.shape[0]
        kept = self.counts * keep
        p = kept / kept.sum() if kept.sum() > 0 else np.zeros(V)

        def over_bags(per_word, bags=self._bags):
            # each syn0 row's uses when every word's bag moves per_word times a centre
            starts, rows, _ = bags
            return np.bincount(rows, weights=np.repeat(per_word, np.diff(starts)),
                               minlength=n_in)

        n_tiers = P.bit_length() - 1   # periods 1, 2, ..., P / 2
        if self.kind == "skipgram" and self._bags is not None:
            # fastText's order: a syn0 row moves once per centre whose bag holds it (the
            # bag's rows all together), a syn1neg row once per context or noise word that
            # names it: each table's own periods and hot rows
            in_periods = merge_periods(over_bags(p), R, P)
            out_periods = merge_periods(uses, R, P)
            hot = [np.flatnonzero(t < P) for t in (in_periods, out_periods)]
            hot = [h[np.argsort(t[h], kind="stable")] for h, t in zip(hot, (in_periods,
                                                                         out_periods))]
            due = [in_periods[hot[0]], out_periods[hot[1]]]
        else:
            if self.kind == "skipgram":
                # one period a row for both tables: skip-gram's expected uses (a word's input
                # row moves once per context, its output row once per context or noise word)
                in_periods = merge_periods(uses, R, P)
                out_periods = in_periods.copy()
            else:
                # CBOW's input rows are the contexts' (with subwords: their bags' rows), at
                # most 2 window p uses per centre, never a noise word's; its output rows take
                # the bound of row_uses, merged CBOW_OUTPUT_PERIOD_FACTOR times less often
                in_uses = 2 * window * p
                if self._bags is not None:
                    in_uses = over_bags(in_uses)
                in_periods = merge_periods(in_uses, R, P)
                out_periods = np.minimum(merge_periods(uses, R, P) * CBOW_OUTPUT_PERIOD_FACTOR,
                                         P)
            # hot: merged more often than once per long round in either table, in both
            # tables; shortest input period first. Each table's due rows must be a prefix
            # of that order, so an output period is at least those before it (CBOW's grow
            # with the input periods anyway: both fall with a word's count).
            rows = np.flatnonzero(in_periods < P)
            rows = np.union1d(rows, np.flatnonzero(out_periods < P))
            rows = rows[np.argsort(in_periods[rows], kind="stable")]
            words = rows[rows < V]
            out_due = np.maximum.accumulate(out_periods[words]) if words.size else words
            out_periods[words] = out_due
            hot, due = [rows, words], [in_periods[rows], out_due]
        tier_end = np.stack([np.searchsorted(d, 2 ** np.arange(n_tiers), side="right")
                             for d in due])
        return (in_periods, out_periods, hot[0].astype(np.int32), hot[1].astype(np.int32),
                tier_end.astype(np.int64), P)

    def _ensure_workspace(self, n_shards, n_hot, max_period):
        # n_hot: the hot rows of both tables
        n_in = self.syn0.shape[0]
        cap_in, cap_out = _private_rows(self.kind, self.round_words * max_period, self.window,
                                        self.negative, self.num_words, self._bag_sizes(), n_in)
        V, rows = n_in + self.num_words, cap_in + cap_out
        row_bytes = self.dim * self.dtype.itemsize
        ws = self._workspace
        nbytes = rows * row_bytes
        if (ws is None or ws["slots"].shape[0] < n_shards or ws["cap_in"] != cap_in
                or ws["touched"].shape[1] != rows or ws["buf"].shape[1] != nbytes
                or ws["slots"].shape[1] != V
                or ws["hot_buf"].shape[1] != max(1, n_hot * row_bytes)):
            # (sized by round_words, max_period, window, negative, dim and the hot rows:
            # rebuilt when any changed)
            ws = {
                "slots": np.full((n_shards, V), -1, dtype=np.int32),   # syn0's, syn1neg's
                "count": np.zeros(V, dtype=np.int32),
                "buf": np.empty((n_shards, nbytes), dtype=np.uint8),
                "touched": np.empty((n_shards, rows), dtype=np.int64),
                "hot_buf": np.empty((n_shards, max(1, n_hot * row_bytes)), dtype=np.uint8),
                "cap_in": cap_in,
            }
            self._workspace = ws
        return ws

    def _ensure_scratch(self, n_words, n_shards, max_period):
        # the kernel's per-call arrays (kept words, plans), kept between calls so that no
        # call faults fresh pages in; a quarter more than asked, as batches differ in length
        need = sgns.w2v_scratch_bytes(n_words, n_shards, self.round_words, max_period,
                                      self.window, self.negative, self.kind == "cbow")
        if self._scratch is None or self._scratch.size < need:
            self._scratch = np.empty(need + need // 4, dtype=np.uint8)
        return self._scratch

    def _step(self, batch, *, lr, lr_end, seed, record):
        check_float(lr, "lr", min=0)
        check_float(lr_end, "lr_end", min=0)
        words, starts = self._check_batch(batch)
        n_threads = resolve_n_threads(self.n_threads)
        if self.hogwild or record:
            n_shards = 1 if n_threads == 1 else 4 * n_threads
        else:
            n_shards = self.shards
        private = n_shards > 1 and not self.hogwild and not record
        if private:
            _, _, hot_in, hot_out, tier_end, max_period = self._plan_merges()
            ws = self._ensure_workspace(n_shards, hot_in.size + hot_out.size, max_period)
            slots, count, buf, touched = ws["slots"], ws["count"], ws["buf"], ws["touched"]
            cap_in, hot_buf = ws["cap_in"], ws["hot_buf"]
        else:
            cap_in, max_period = 0, 1
            slots = np.empty((1, 1), dtype=np.int32)
            count = np.empty(1, dtype=np.int32)
            buf = np.empty((1, 1), dtype=np.uint8)
            touched = np.empty((1, 1), dtype=np.int64)
            hot_in = hot_out = np.empty(0, dtype=np.int32)
            tier_end = np.empty((2, 0), dtype=np.int64)
            hot_buf = np.empty((1, 1), dtype=np.uint8)
        loss = np.zeros(n_shards)
        pairs = np.zeros(n_shards, dtype=np.int64)
        rec_reduced = rec_neg = None
        if record:
            rec_reduced = np.full(words.size, -1, dtype=np.int32)
            rec_neg = np.full((words.size, 2 * self.window, self.negative), -1, dtype=np.int32)
        bag_ptr, bag_rows, bag_shift = self._bags if self._bags is not None else (None,) * 3
        kept = sgns.w2v_step(self.syn0, self.syn1neg, words, starts, self._keep,
                             self.sample > 0, self._accept, self._alias, self.window,
                             self.negative, self.kind == "cbow", float(lr), float(lr_end),
                             seed & (2**64 - 1), n_shards, self.round_words, self.hogwild,
                             slots, count, buf, touched, cap_in, hot_in, hot_out, tier_end,
                             hot_buf, max_period, loss, pairs, n_threads,
                             record, rec_reduced, rec_neg, bag_ptr, bag_rows, bag_shift,
                             scratch=self._ensure_scratch(words.size, n_shards, max_period))
        n_pairs = int(pairs.sum())
        total_loss = float(np.sum(loss))  # shard order: deterministic
        result: dict = {"loss": total_loss / n_pairs if n_pairs else 0.0,
                        "count": int(words.size), "pairs": n_pairs, "kept": int(kept)}
        if record:
            result.update(reduced=rec_reduced, negatives=rec_neg)
        return result


class SkipGram(Word2VecModel):
    """word2vec skip-gram with negative sampling (gensim's ``sg=1``).

    Each (centre, context) pair of a window is one prediction: the context's input vector
    predicts the centre's output vector against ``negative`` noise words drawn afresh for
    the pair, as in gensim and word2vec.c.

    Parameters
    ----------
    counts, dim, window, negative, sample, ns_exponent, dtype, seed, n_threads, hogwild, \
shards, round_words, max_period, bags, bucket :
        As :class:`Word2VecModel`.

    See Also
    --------
    CBOW : the mean of the context vectors predicts the centre.
    train_word2vec : builds the vocabulary and the model, and trains it with the Trainer.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.models.word2vec import SkipGram
    >>> model = SkipGram([5, 3, 2], dim=4, window=2, negative=2, sample=0, seed=1)
    >>> model
    SkipGram(3 words, dim=4, window=2, negative=2, sample=0)
    >>> batch = (np.array([0, 1, 2, 0, 1]), np.array([0, 5]))     # one sentence of 5 words
    >>> out = model.train_step(batch, lr=0.025, rng=np.random.default_rng(0))
    >>> out["count"], out["kept"], out["loss"] > 0
    (5, 5, True)
    """

    kind = "skipgram"


class CBOW(Word2VecModel):
    """word2vec CBOW with negative sampling (gensim's ``sg=0, cbow_mean=1``).

    Each centre word is one prediction: the mean ``h`` of its context words' input vectors
    predicts the centre's output vector against ``negative`` noise words. As in gensim and
    word2vec.c, every context vector then moves by the full step computed for ``h`` (not
    ``1/n`` of it).

    Parameters
    ----------
    counts, dim, window, negative, sample, ns_exponent, dtype, seed, n_threads, hogwild, \
shards, round_words, max_period, bags, bucket :
        As :class:`Word2VecModel`.

    See Also
    --------
    SkipGram : each context word predicts the centre on its own.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.models.word2vec import CBOW
    >>> model = CBOW([5, 3, 2], dim=4, window=2, negative=2, sample=0, seed=1)
    >>> model
    CBOW(3 words, dim=4, window=2, negative=2, sample=0)
    >>> batch = (np.array([0, 1, 2, 0, 1]), np.array([0, 5]))
    >>> out = model.train_step(batch, lr=0.025, rng=np.random.default_rng(0))
    >>> out["count"], out["pairs"]          # one prediction per centre with a context
    (5, 5)
    """

    kind = "cbow"


MODELS = {"skipgram": SkipGram, "cbow": CBOW}


# -- the one-call API --------------------------------------------------------------------------

@dataclass
class Word2VecResult:
    """What :func:`train_word2vec` returns.

    Parameters
    ----------
    vocab : fastembed.text.Vocab
        The vocabulary: word ``i`` is row ``i`` of the model's tables.
    model : SkipGram or CBOW
        The trained model.
    history : list of dict
        The Trainer's history, one dict per epoch.
    seconds : float
        The wall time of :func:`train_word2vec`, vocabulary included.
    n_words : int
        Words per epoch (in-vocabulary words of the corpus).
    minn, maxn : int
        A subword model's n-gram lengths (0, 0 without subwords).

    Examples
    --------
    >>> from fastembed.models.word2vec import train_word2vec
    >>> result = train_word2vec([["a", "b", "a", "c"]] * 5, dim=4, min_count=1, epochs=1,
    ...                         sample=0, progress=False)
    >>> result.vocab.words, result.n_words, len(result.history)
    (['a', 'b', 'c'], 20, 1)
    >>> result.model
    SkipGram(3 words, dim=4, window=5, negative=5, sample=0)
    """

    vocab: Vocab
    model: Word2VecModel
    history: list = field(default_factory=list)
    seconds: float = 0.0
    n_words: int = 0
    minn: int = 0
    maxn: int = 0

    @property
    def vectors(self):
        """The trained vectors as :class:`fastembed.vectors.Vectors`.

        The table is the model's ``syn0`` itself, not a copy; the words are a copy of the
        vocabulary's. A subword model's are :meth:`fasttext_model`: a
        :class:`~fastembed.subwords.SubwordVectors`, whose word vectors are the means of the
        words' bags, and which gives a vector to any word.

        Examples
        --------
        >>> from fastembed.models.word2vec import train_word2vec
        >>> result = train_word2vec([["a", "b", "a", "c"]] * 5, dim=4, min_count=1, epochs=1,
        ...                         progress=False)
        >>> result.vectors
        Vectors(3 words, dim=4, dtype=float32)
        >>> result.vectors.weight is result.model.syn0
        True
        """
        if self.model.bucket:
            return self.fasttext_model()
        return Vectors(list(self.vocab.words), self.model.syn0)

    def fasttext_model(self):
        """The trained model in fastText's terms.

        For :func:`fastembed.io.save_fasttext`: a
        :class:`~fastembed.subwords.SubwordVectors`, with the model's n-gram lengths and
        buckets (none, ``bucket=0`` and ``maxn=0``, for the word model). The input matrix is
        ``syn0`` (with subwords, the rows ``syn0_rows`` of it, every other row at its initial
        value), the output matrix ``syn1neg``, the counts the vocabulary's; the header says
        skip-gram (2) or CBOW (1) with negative sampling, the window, the noise words, the
        epochs and the sample. fastText's ``load_model`` reads the file that
        :func:`~fastembed.io.save_fasttext` writes from it, with the same word vectors;
        without subwords, an unseen word has no vector in it.

        Returns
        -------
        SubwordVectors
            Its tables are the model's, not copies (with subwords, the rows held: its
            ``input``, the whole matrix, is built at the first read, a snapshot).

        Examples
        --------
        >>> from fastembed.models.word2vec import train_word2vec
        >>> result = train_word2vec([["a", "b", "a", "c"]] * 5, dim=4, min_count=1, epochs=1,
        ...                         progress=False)
        >>> model = result.fasttext_model()
        >>> model
        SubwordVectors(3 words, dim=4, dtype=float32, no subwords)
        >>> model.args["model"], model.args["ws"], model.input is result.model.syn0
        (2, 5, True)
        """
        from ..subwords import SubwordVectors

        m = self.model
        args = dict(ws=m.window, epoch=max(1, len(self.history)), neg=m.negative,
                    min_count=int(self.vocab.counts.min()) if len(self.vocab) else 1,
                    word_ngrams=1, loss=2, model=1 if m.kind == "cbow" else 2,
                    lr_update_rate=100, t=m.sample)
        return SubwordVectors(list(self.vocab.words), m.syn0, minn=self.minn, maxn=self.maxn,
                              bucket=m.bucket, input_rows=m.syn0_rows, init_seed=m.init_seed,
                              output=m.syn1neg, counts=self.vocab.counts, args=args,
                              ntokens=self.n_words)


def train_word2vec(sentences=None, *, corpus_file=None, model="skipgram", dim=DEFAULTS["dim"],
                   window=DEFAULTS["window"], negative=DEFAULTS["negative"],
                   min_count=DEFAULTS["min_count"], max_vocab_size=None,
                   sample=DEFAULTS["sample"], epochs=DEFAULTS["epochs"], lr=None,
                   min_lr=DEFAULTS["min_lr"], ns_exponent=None, eos=None,
                   dtype=np.float32, seed=1, n_threads=None, hogwild=False,
                   shards=DEFAULTS["shards"], round_words=DEFAULTS["round_words"],
                   max_period=DEFAULTS["max_period"], batch_words=200_000,
                   checkpoint_dir=None, checkpoint_every=None, resume=None, progress=True,
                   callbacks=(), vocab=None, subwords=False, minn=SUBWORD_DEFAULTS["minn"],
                   maxn=SUBWORD_DEFAULTS["maxn"], bucket=SUBWORD_DEFAULTS["bucket"],
                   streams=None):
    """Build a vocabulary, then train word vectors (skip-gram or CBOW) on token lists.

    Parameters
    ----------
    sentences : iterable of list of str, optional
        Tokenised sentences (see :func:`fastembed.text.split_sentences`). Read once.
    corpus_file : str or os.PathLike, optional
        Instead of ``sentences``: a UTF-8 file of one sentence per line, tokens separated by
        whitespace (fastText's input; gensim's ``corpus_file``), read by
        :func:`read_corpus` without a Python list per line. The same vectors as
        ``sentences=[line.split() for line in file]``.
    model : {"skipgram", "cbow"}, default "skipgram"
        :class:`SkipGram` (gensim's ``sg=1``) or :class:`CBOW` (``sg=0``, ``cbow_mean=1``).
    dim, window, negative, min_count, sample, epochs, lr, min_lr, ns_exponent :
        As gensim's ``Word2Vec``; the defaults are gensim's, but with subwords ``lr`` and
        ``ns_exponent`` are fastText's (0.05 and 0.5, against 0.025 and 0.75). The learning
        rate decays linearly, word by word, from ``lr`` to ``min_lr`` over the whole run.
    eos : bool, optional
        End every sentence that has a token with fastText's end-of-line word ``</s>``
        (:data:`fastembed.subwords.EOS`): a word of the vocabulary, counted once per
        sentence, and so a frequent noise word and the last context of each sentence, as
        fastText reads every line. By default as fastText with ``subwords``, and as gensim
        (no such word) without. (Subword skip-gram reached fastText's scores on all four
        corpora of the suite only with it and ``ns_exponent=0.5``: ``bench/README.md``.)
    max_vocab_size : int, optional
        Keep only the most frequent words.
    dtype : float32 or float64, default float32
        The dtype of the tables.
    seed : int
        Seeds the initial vectors and every random draw.
    n_threads : int, optional
        Threads; None is OpenMP's default (:func:`fastembed.get_num_threads`). The vectors
        do not depend on it.
    hogwild : bool
        Lock-free updates (faster, not reproducible).
    shards, round_words, max_period : int
        The deterministic parallel scheme (see :class:`Word2VecModel`); the vectors depend on
        them, never on ``n_threads``.
    batch_words : int, default 200000
        Words per training step (one kernel call).
    checkpoint_dir, checkpoint_every, resume : see :class:`fastembed.train.Trainer`.
    progress : bool or None, default True
        The Trainer's progress bar.
    callbacks : sequence, default ()
        The Trainer's callbacks.
    vocab : Vocab, optional
        Use this vocabulary instead of building one (``min_count`` and ``max_vocab_size``
        are then unused).
    subwords : bool, default False
        fastText's subword model: each word's input is its own row and the rows of its
        character n-grams (of ``"<" + word + ">"``, ``minn`` to ``maxn`` characters, hashed
        into ``bucket`` rows with fastText's hash: :func:`fastembed.subwords.word_bags`); its
        vector the mean of them. ``.vectors`` then gives a vector to any word, and
        :meth:`Word2VecResult.fasttext_model` saves as fastText's ``.bin``.
    minn, maxn, bucket : int, default 3, 6, 2000000
        fastText's defaults; ``maxn=0`` or ``bucket=0`` leaves each word its own row alone.
    streams : int, optional
        Parts of the corpus trained side by side (:class:`CorpusDataset`): by default 1 (the
        corpus in order, as gensim's workers take it), or ``shards`` with ``subwords`` (as
        fastText's threads each read their own part of the file).

    Returns
    -------
    Word2VecResult
        ``.vocab``, ``.model`` (:class:`SkipGram` or :class:`CBOW`), ``.vectors``,
        ``.history``, ``.seconds``.

    Raises
    ------
    TypeError
        Both ``sentences`` and ``corpus_file``, or neither.
    ValueError
        A parameter that cannot train (``negative < 1``, a window, dimension, epoch count or
        ``min_count`` below 1, ``sample`` outside [0, 1), a learning rate that is not a
        positive finite number, ``min_lr`` outside [0, lr], an unknown ``model``), all
        checked before any work; an empty vocabulary (no word occurs ``min_count`` times) or
        a corpus with no in-vocabulary word; the errors of :class:`Word2VecModel` and
        :class:`fastembed.train.Trainer`.
    FloatingPointError
        Training diverged (the loss or the vectors stopped being finite, typically with too
        large a learning rate); the message names the step and the learning rate.

    Examples
    --------
    >>> from fastembed.models.word2vec import train_word2vec
    >>> sentences = [["the", "king", "rules"], ["the", "queen", "rules"]] * 20
    >>> result = train_word2vec(sentences, dim=8, min_count=1, epochs=1, sample=0,
    ...                         progress=False)
    >>> result.vectors.words
    ['the', 'rules', 'king', 'queen']
    >>> sorted(w for w, _ in result.vectors.most_similar("king", topn=3))  # all but "king"
    ['queen', 'rules', 'the']
    >>> result.history[0]["count"]          # words seen in the epoch
    120
    """
    import time


    t0 = time.perf_counter()
    if (sentences is None) == (corpus_file is None):
        raise TypeError("train_word2vec needs sentences or corpus_file, not "
                        f"{'both' if corpus_file is not None else 'neither'}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {model!r}")
    check_float(lr, "lr", min=0, min_open=True, allow_none=True)
    if lr is None:
        lr = SUBWORD_DEFAULTS["lr"] if subwords else DEFAULTS["lr"]
    if ns_exponent is None:
        ns_exponent = SUBWORD_DEFAULTS["ns_exponent"] if subwords else DEFAULTS["ns_exponent"]
    eos = bool(SUBWORD_DEFAULTS["eos"] and subwords) if eos is None else bool(eos)
    if subwords:
        word_bags([], minn=minn, maxn=maxn, bucket=bucket)   # checks them
    if not (subwords and maxn and bucket):   # the word model (fastText's rate if subwords)
        minn = maxn = bucket = 0
    check_positive_int(epochs, "epochs")
    check_positive_int(streams, "streams", allow_none=True)
    if vocab is None:
        check_positive_int(min_count, "min_count")
    check_float(min_lr, "min_lr", min=0, max=lr)
    check_seed(seed)  # the Trainer's rule: a run is reproducible
    cls = MODELS[model]
    # every model parameter is checked before the corpus is read: a bad one costs nothing
    cls([1], dim, window=window, negative=negative, sample=sample, ns_exponent=ns_exponent,
        dtype=dtype, seed=seed, n_threads=n_threads, shards=shards, round_words=round_words,
        max_period=max_period)
    if corpus_file is not None:
        vocab, corpus = read_corpus(corpus_file, min_count=min_count,
                                    max_vocab_size=max_vocab_size, vocab=vocab, eos=eos)
    else:
        sentences = (list(_ended(sentences)) if eos else
                     sentences if isinstance(sentences, list) else list(sentences))
        if vocab is None:
            vocab = Vocab.build(sentences, min_count=min_count, max_size=max_vocab_size)
        corpus = Corpus.from_sentences(sentences, vocab)
    if len(vocab) == 0:
        raise ValueError(f"no word occurs at least min_count={min_count} times: the "
                         f"vocabulary is empty")
    if corpus.n_words == 0:
        raise ValueError("the corpus has no words in the vocabulary")
    bags = word_bags(vocab.words, minn=minn, maxn=maxn, bucket=bucket) if bucket else None
    trained = cls(vocab.counts, dim, window=window, negative=negative, sample=sample,
                  ns_exponent=ns_exponent, dtype=dtype, seed=seed, n_threads=n_threads,
                  hogwild=hogwild, shards=shards, round_words=round_words,
                  max_period=max_period, bags=bags, bucket=bucket)
    if streams is None:
        streams = shards if subwords else 1
    data = CorpusDataset(corpus, batch_words=batch_words, streams=streams)
    trainer = Trainer(trained, None, data=data, epochs=epochs, lr=lr, min_lr=min_lr,
                      schedule="linear", seed=seed, checkpoint_dir=checkpoint_dir,
                      checkpoint_every=checkpoint_every, callbacks=callbacks,
                      progress=progress)
    history = trainer.fit(resume=resume)
    for name in ("syn0", "syn1neg"):
        if not _all_finite(getattr(trained, name)):
            raise FloatingPointError(f"training diverged: {name} holds non-finite values "
                                     f"after {trainer.step} steps with lr={lr}; use a smaller "
                                     f"learning rate")
    return Word2VecResult(vocab=vocab, model=trained, history=history,
                          seconds=time.perf_counter() - t0, n_words=corpus.n_words,
                          minn=minn, maxn=maxn)


def _ended(sentences):
    """The sentences, each that has a token ended with :data:`fastembed.subwords.EOS` (as
    ``read_corpus(eos=True)`` reads a line); a string is passed on as it is, for the
    vocabulary to refuse."""
    for sentence in sentences:
        if isinstance(sentence, (str, bytes)):
            yield sentence
            continue
        sentence = list(sentence)
        yield sentence + [EOS] if sentence else sentence


def _all_finite(table, block=16384):
    """Whether every value of a 2-D table is finite, checked block of rows by block of rows:
    ``np.isfinite(table).all()`` on a subword model's 2,000,000 x 100 rows made a 200 MB
    temporary whose page faults took 0.5 s, where this takes 0.1 s."""
    return all(np.isfinite(table[start:start + block]).all()
               for start in range(0, table.shape[0], block))


def corpus_sentences(path=None, *, lower=True):
    """Tokenised sentences of a plain-text file, a directory of them, or the built-in corpus.

    ``path=None`` uses the State of the Union addresses shipped with fastembed. A directory
    is read file by file in sorted order (``*.txt`` files, or every file when it holds no
    ``.txt``). Files are read as UTF-8, undecodable bytes replaced. Sentences and tokens are
    those of :func:`fastembed.text.split_sentences`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A plain-text file or a directory of them; None for the built-in corpus (about 66,000
        sentences, a second or so to read and tokenise).
    lower : bool, default True
        Lower-case the text.

    Returns
    -------
    list of list of str

    Raises
    ------
    FileNotFoundError
        No such file or directory.
    ValueError
        An empty corpus (no words) or a directory without files; the message names the path.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastembed.models.word2vec import corpus_sentences
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with open(os.path.join(d, "a.txt"), "w", encoding="utf-8") as f:
    ...         _ = f.write("The cat sat. The dog ran!\\nSo did I.")
    ...     corpus_sentences(d)
    [['the', 'cat', 'sat'], ['the', 'dog', 'ran'], ['so', 'did', 'i']]
    """

    if path is None:
        sentences = []
        for speech in load_sotu():
            sentences.extend(split_sentences(speech.text, lower=lower))
        return sentences
    path = os.fspath(path)
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        files = [n for n in names if n.endswith(".txt")] or names
        files = [os.path.join(path, n) for n in files if os.path.isfile(os.path.join(path, n))]
        if not files:
            raise ValueError(f"{path}: the directory holds no files")
    elif os.path.exists(path):
        files = [path]
    else:
        raise FileNotFoundError(f"{path}: no such file or directory")
    sentences = []
    for name in files:
        with open(name, encoding="utf-8", errors="replace") as f:
            sentences.extend(split_sentences(f.read(), lower=lower))
    if not sentences:
        raise ValueError(f"{path}: the corpus is empty (no words found)")
    return sentences
