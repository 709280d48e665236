"""Subword vectors, as fastText builds them: a vector for any string.

A fastText model keeps one input row per vocabulary word and ``bucket`` rows for character
n-grams. The n-grams of a word are those of ``"<" + word + ">"`` from ``minn`` to ``maxn``
characters (UTF-8 aware; the single ``<`` and ``>`` left out), each hashed into a bucket
with fastText's own hash (FNV-1a over the sign-extended bytes, :func:`fasttext_hash`). A
word's vector is the mean of its rows: its own row (in the vocabulary) and its n-grams'. A
word never seen still has n-grams, hence a vector: the mean of their rows.

:class:`SubwordVectors` holds such a model and answers for any word;
:func:`fastembed.io.load_fasttext` and :func:`fastembed.io.save_fasttext` read and write
Facebook's ``.bin`` files. The vocabulary's vectors are pooled lookups
(:func:`fastembed.embedding_bag`): a word is a bag of rows.

Examples
--------
>>> import numpy as np
>>> from fastembed.subwords import BOW, EOS, EOW, SubwordVectors, char_ngrams
>>> BOW, EOW, EOS
('<', '>', '</s>')
>>> char_ngrams("where", 3, 4)
['<wh', '<whe', 'whe', 'wher', 'her', 'here', 'ere', 'ere>', 're>']
>>> rng = np.random.default_rng(0)
>>> v = SubwordVectors(["where", "there"], rng.standard_normal((2 + 100, 8)).astype(np.float32),
...                    minn=3, maxn=4, bucket=100)
>>> v.get_vector("here").shape           # not in the vocabulary: the mean of its n-grams
(8,)
>>> bool(np.allclose(v["where"], v.input[v.subword_rows("where")].mean(axis=0)))
True
"""
from __future__ import annotations

import numpy as np

from ._ext import sgns
from ._ext import subwords as _kernel
from ._ext.threads import resolve_n_threads
from ._memory import aligned_empty
from ._validation import check_int
from ._words import utf8_joined
from .functional import embedding_bag
from .vectors import Vectors

__all__ = ["SubwordVectors", "word_bags", "fasttext_hash", "char_ngrams", "BOW", "EOW", "EOS"]

#: fastText's word boundary markers and end-of-sentence token
BOW, EOW, EOS = "<", ">", "</s>"


def fasttext_hash(text):
    """fastText's hash of a string or bytes.

    The 32-bit FNV-1a over the UTF-8 bytes, each byte sign-extended first
    (``uint32_t(int8_t(c))``, as ``Dictionary::hash`` computes it).

    Parameters
    ----------
    text : str or bytes

    Returns
    -------
    int
        In ``[0, 2**32)``.

    Examples
    --------
    >>> from fastembed.subwords import fasttext_hash
    >>> fasttext_hash("<wh"), fasttext_hash("é")     # bytes >= 0x80 are sign-extended
    (1048167652, 1023043777)
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return _kernel.fasttext_hash(np.frombuffer(data, dtype=np.uint8))


def char_ngrams(word, minn, maxn):
    """The character n-grams of ``"<" + word + ">"`` that fastText hashes, in its order.

    Parameters
    ----------
    word : str
    minn, maxn : int
        Shortest and longest n-gram, in characters.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from fastembed.subwords import char_ngrams
    >>> char_ngrams("été", 3, 3)
    ['<ét', 'été', 'té>']
    """
    s = BOW + word + EOW
    out = []
    for i in range(len(s)):
        for n in range(max(1, minn), maxn + 1):
            if i + n > len(s):
                break
            if n == 1 and (i == 0 or i + 1 == len(s)):
                continue
            out.append(s[i:i + n])
    return out


def _encode(words):
    """UTF-8 of ``"<" + w + ">"`` for each word, concatenated, and the offsets; nothing for
    EOS (``"</s>"``), to which fastText gives no n-gram."""
    return utf8_joined(["" if w == EOS else BOW + w + EOW for w in words])


def _subword_table(words, *, minn, maxn, bucket, base, own=None):
    """The rows of each word, as fastText lists them (``Dictionary::getSubwords``).

    Parameters
    ----------
    words : sequence of str
    minn, maxn, bucket : int
    base : int
        The first n-gram row (the vocabulary size: n-gram b is row ``base + b``).
    own : array of int, optional
        Each word's own row, put first (-1: none). EOS (``"</s>"``) has no n-grams.

    Returns
    -------
    rows, starts : ndarray of int64
        Word i's rows are ``rows[starts[i]:starts[i + 1]]``.
    """
    text, offsets = _encode(words)
    own = np.full(len(words), -1, dtype=np.int64) if own is None else \
        np.ascontiguousarray(own, dtype=np.int64)
    return _kernel.subword_rows(text, offsets, own, minn, maxn, bucket, base)


def _check_grams(minn, maxn, bucket):
    """The n-gram lengths and bucket count, checked: (minn, maxn, bucket) as ints."""
    minn = check_int(minn, "minn", min=0)
    maxn = check_int(maxn, "maxn", min=0)
    bucket = check_int(bucket, "bucket", min=0)
    if maxn and minn < 1:
        raise ValueError(f"minn must be >= 1 when maxn > 0, got {minn}")
    if maxn and minn > maxn:
        raise ValueError(f"minn must be <= maxn, got minn={minn}, maxn={maxn}")
    return minn, maxn, bucket


def word_bags(words, *, minn=3, maxn=6, bucket=2_000_000):
    """Each vocabulary word's input rows in a fastText model: its own row, then its n-grams'.

    Word ``i`` owns row ``i``; n-gram bucket ``b`` is row ``len(words) + b``. The rows come in
    fastText's order (``Dictionary::getSubwords``), a repeated n-gram repeated; ``maxn=0`` or
    ``bucket=0`` gives each word its own row alone. What
    :class:`fastembed.models.word2vec.SkipGram` trains with ``bags=``, and what
    :class:`SubwordVectors` averages.

    Parameters
    ----------
    words : sequence of str
    minn, maxn, bucket : int, default 3, 6, 2000000

    Returns
    -------
    rows, starts : ndarray of int64
        Word i's rows are ``rows[starts[i]:starts[i + 1]]``.

    Examples
    --------
    >>> from fastembed.subwords import word_bags
    >>> rows, starts = word_bags(["ab", "b"], minn=2, maxn=3, bucket=10)
    >>> rows[starts[0]:starts[1]].tolist()   # "ab": itself, <a, <ab, ab, ab>, b> (2 + bucket)
    [0, 2, 10, 8, 8, 3]
    >>> starts.tolist()
    [0, 6, 10]
    """
    minn, maxn, bucket = _check_grams(minn, maxn, bucket)
    words = list(words)
    return _subword_table(words, minn=minn, maxn=maxn, bucket=bucket, base=len(words),
                          own=np.arange(len(words)))


class SubwordVectors(Vectors):
    """A fastText model's input vectors: a vector for any word, in the vocabulary or not.

    Parameters
    ----------
    words : sequence of str
        The vocabulary, in row order: word ``i`` owns input row ``i``.
    input : ndarray of shape (len(words) + bucket, dim), float32 or float64
        fastText's input matrix: the words' rows, then the ``bucket`` n-gram rows (not
        copied). With ``input_rows``, only those rows of it.
    minn, maxn : int, default 3, 6
        The n-gram lengths; ``maxn=0`` is no subwords (an unseen word has no vector).
    bucket : int, default 2000000
        The n-gram rows.
    output : ndarray, optional
        fastText's output matrix (kept for saving; unused by the queries).
    counts : array of int, optional
        The words' counts (kept for saving; zeros by default).
    args : dict, optional
        The rest of fastText's header (``ws``, ``epoch``, ``min_count``, ``neg``,
        ``word_ngrams``, ``loss``, ``model``, ``lr_update_rate``, ``t``), kept for saving.
    labels : sequence of str, optional
        A supervised model's labels, with ``label_counts``, kept for saving.
    label_counts : array of int, optional
    ntokens : int, optional
        The tokens of the training corpus (fastText's header; kept for saving).
    input_rows : array of int, optional
        A model that holds some rows of the input matrix (a trained
        :class:`~fastembed.models.word2vec.SkipGram` holds the rows its bags use): ``input``
        row ``i`` is row ``input_rows[i]`` of the matrix, and every other row holds its
        initial value, uniform in ``[-1, 1) / dim`` from ``init_seed``
        (``fastembed._ext.sgns.uniform_rows``). The matrix is built whole only when
        :attr:`input` is read.
    init_seed : int, optional
        With ``input_rows`` (and only with it): the seed of the other rows, in
        ``[0, 2**64)``.

    Attributes
    ----------
    words, index : as :class:`~fastembed.vectors.Vectors`
    weight : ndarray (len(words), dim)
        Each vocabulary word's vector: the mean of its own row and its n-grams' rows
        (fastText's ``get_word_vector``), computed once.
    input : ndarray (len(words) + bucket, dim)
        fastText's input matrix (with ``input_rows``: built at the first read, a snapshot).
    output, minn, maxn, bucket, counts, args, labels, label_counts, ntokens, init_seed
        As given.

    Raises
    ------
    ValueError, TypeError
        An input matrix whose rows are not ``len(words) + bucket`` (or ``input_rows``: not
        one per row of ``input``, out of range or repeated; no ``init_seed``), bad n-gram
        lengths or bucket, counts of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.subwords import SubwordVectors
    >>> input = np.random.default_rng(1).standard_normal((3 + 50, 4)).astype(np.float32)
    >>> v = SubwordVectors(["cat", "cats", "dog"], input, minn=2, maxn=3, bucket=50)
    >>> v
    SubwordVectors(3 words, dim=4, dtype=float32, n-grams 2-3 in 50 buckets)
    >>> "catz" in v, v.get_vector("catz").shape
    (False, (4,))
    >>> [w for w, _ in v.most_similar("catz", topn=3)][0] in {"cat", "cats", "dog"}
    True
    """

    def __init__(self, words, input, *, minn=3, maxn=6, bucket=2_000_000, output=None,
                 counts=None, args=None, labels=(), label_counts=None, ntokens=0,
                 input_rows=None, init_seed=None):
        words = list(words)
        input = np.asarray(input)
        self.minn, self.maxn, self.bucket = _check_grams(minn, maxn, bucket)
        n_rows = len(words) + self.bucket
        if input_rows is None:
            if input.ndim != 2 or input.shape[0] != n_rows:
                raise ValueError(f"input must have shape (len(words) + bucket = {n_rows}, "
                                 f"dim), got {input.shape}")
            part = None
        else:
            input_rows = np.asarray(input_rows)
            if input.ndim != 2 or input_rows.shape != input.shape[:1]:
                raise ValueError(f"input_rows must name the row of each row of input: shape "
                                 f"({input.shape[0] if input.ndim else 0},), got "
                                 f"{input_rows.shape}")
            if not np.issubdtype(input_rows.dtype, np.integer) and input_rows.size:
                raise TypeError(f"input_rows must be integers, got {input_rows.dtype}")
            input_rows = input_rows.astype(np.int64, copy=False)
            order = np.argsort(input_rows, kind="stable")
            ranked = input_rows[order]
            if ranked.size and (ranked[0] < 0 or ranked[-1] >= n_rows
                                or (np.diff(ranked) == 0).any()):
                raise ValueError(f"input_rows must be distinct rows in [0, {n_rows})")
            if init_seed is None:
                raise ValueError("input_rows needs init_seed: the other rows' seed")
            init_seed = check_int(init_seed, "init_seed", min=0, max=2**64 - 1)
            part = (ranked, order, init_seed)
        if input_rows is None and init_seed is not None:
            raise ValueError("init_seed goes with input_rows: it seeds the rows not held")
        if not np.issubdtype(input.dtype, np.floating):
            raise TypeError(f"input must be floating point, got {input.dtype}")
        counts = np.zeros(len(words), dtype=np.int64) if counts is None else \
            np.asarray(counts, dtype=np.int64)
        if counts.shape != (len(words),):
            raise ValueError(f"counts must have one entry per word ({len(words)}), got "
                             f"shape {counts.shape}")
        # the rows given; with input_rows, (the rows sorted, where each is, the seed of the
        # others), and the whole matrix once built
        self._held = input
        self._part = part
        self._whole = None
        self.input_rows = input_rows
        self.init_seed = init_seed
        self.output = output
        self.counts = counts
        self.args = dict(args or {})
        self.labels = list(labels)
        self.label_counts = (np.zeros(len(self.labels), dtype=np.int64)
                             if label_counts is None
                             else np.asarray(label_counts, dtype=np.int64))
        self.ntokens = int(ntokens)
        rows, starts = word_bags(words, minn=self.minn, maxn=self.maxn, bucket=self.bucket)
        table, rows = self._rows_of(rows)
        weight = embedding_bag(table, rows, starts[:-1], mode="mean") if len(words) else \
            np.zeros((0, input.shape[1]), dtype=input.dtype)
        Vectors.__init__(self, words, weight)

    @property
    def input(self):
        """fastText's input matrix, ``(len(words) + bucket, dim)``.

        With ``input_rows``, built at the first read (the rows held, every other row at its
        initial value) and kept: a snapshot, which later changes to the rows held (a model
        trained on) do not reach. Queries and :meth:`input_block` read the rows held.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> v = SubwordVectors(["ab"], np.ones((2, 3), np.float32), minn=3, maxn=3,
        ...                    bucket=10, input_rows=[0, 7], init_seed=1)
        >>> v.input.shape, v.input[7].tolist(), bool(np.abs(v.input[1]).max() < 1 / 3)
        ((11, 3), [1.0, 1.0, 1.0], True)
        """
        if self._part is None:
            return self._held
        if self._whole is None:
            self._whole = self.input_block(0, len(self.words) + self.bucket)
        return self._whole

    def input_block(self, start, stop):
        """Rows ``start:stop`` of the input matrix.

        A view of the matrix when it is held whole, else a new array from the rows held: how
        a large matrix is written piece by piece (:func:`fastembed.io.save_fasttext`).

        Parameters
        ----------
        start, stop : int
            ``0 <= start <= stop <= len(words) + bucket``.

        Returns
        -------
        ndarray (stop - start, dim)

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> table = np.arange(11 * 2, dtype=np.float32).reshape(11, 2)
        >>> SubwordVectors(["ab"], table, bucket=10).input_block(6, 8).tolist()
        [[12.0, 13.0], [14.0, 15.0]]
        """
        n_rows = len(self.words) + self.bucket
        start = check_int(start, "start", min=0, max=n_rows)
        stop = check_int(stop, "stop", min=start, max=n_rows)
        if self._part is None:   # the whole matrix is held
            return self._held[start:stop]
        return self._gather(np.arange(start, stop, dtype=np.int64))

    def _where_held(self, rows):
        """``(at, held)``: whether each of the input matrix's rows ``rows`` is held, and where
        in the rows held (``at`` is meaningful where ``held``)."""
        if self._part is None:   # the whole matrix is held
            return rows, np.ones(rows.size, dtype=bool)
        ranked, order, _ = self._part
        if not ranked.size:
            return np.zeros(rows.size, dtype=np.int64), np.zeros(rows.size, dtype=bool)
        pos = np.minimum(np.searchsorted(ranked, rows), ranked.size - 1)
        return order[pos], ranked[pos] == rows

    def _gather(self, rows):
        """A new array of the input matrix's rows ``rows`` (with ``input_rows``): each row's
        initial value, then the rows held over theirs."""
        if self._part is None:   # the whole matrix is held
            return self._held[rows]
        out = aligned_empty((rows.size, self._held.shape[1]), self._held.dtype)
        sgns.uniform_rows(out, rows, self._part[2], 1.0 / out.shape[1],
                          resolve_n_threads(None))
        at, held = self._where_held(rows)
        out[held] = self._held[at[held]]
        return out

    def _rows_of(self, rows):
        """``(table, ids)``: ``table[ids]`` are the input matrix's rows ``rows``, read from the
        rows held (never from the matrix :attr:`input` built)."""
        at, held = self._where_held(rows)
        if held.all():
            return self._held, at
        return self._gather(rows), np.arange(rows.size, dtype=np.int64)

    def __setstate__(self, state):
        if "input" in state:   # pickled when the whole matrix was an attribute
            state = dict(state)
            state["_held"] = state.pop("input")
            state.update(input_rows=None, init_seed=None, _part=None, _whole=None)
        self.__dict__.update(state)

    def __repr__(self):
        grams = (f"n-grams {self.minn}-{self.maxn} in {self.bucket:,} buckets"
                 if self.maxn and self.bucket else "no subwords")
        return (f"SubwordVectors({len(self):,} words, dim={self.dim}, "
                f"dtype={self.weight.dtype}, {grams})")

    def subword_rows(self, word):
        """The input rows whose mean is ``word``'s vector.

        Its own row (when in the vocabulary), then its n-grams' rows, in fastText's order.

        Parameters
        ----------
        word : str

        Returns
        -------
        ndarray of int64

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> v = SubwordVectors(["ab"], np.zeros((1 + 10, 2), np.float32), minn=3, maxn=3,
        ...                    bucket=10)
        >>> v.subword_rows("ab")[0], len(v.subword_rows("ab"))     # itself, <ab and ab>
        (np.int64(0), 3)
        """
        i = self.index.get(word, -1)
        rows, _ = _subword_table([word], minn=self.minn, maxn=self.maxn, bucket=self.bucket,
                                base=len(self.words), own=[i])
        return rows

    def get_vector(self, word):
        """The vector of any word.

        Its row of :attr:`weight` in the vocabulary, else the mean of its n-grams' rows
        (zeros when it has none, as fastText gives).

        Parameters
        ----------
        word : str

        Returns
        -------
        ndarray of shape (dim,)

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> v = SubwordVectors(["ab"], np.ones((1 + 10, 2), np.float32), minn=3, maxn=3,
        ...                    bucket=10)
        >>> v.get_vector("zz")
        array([1., 1.], dtype=float32)
        """
        if not isinstance(word, str):
            raise TypeError(f"a word is a str, got {type(word).__name__}")
        vector = self._vector_or_none(word)
        return np.zeros(self.dim, dtype=self.weight.dtype) if vector is None else vector

    def _vector_or_none(self, word):
        """The vector of ``word``, or None for an unseen word without n-grams."""
        i = self.index.get(word)
        if i is not None:
            return self.weight[i]
        rows = self.subword_rows(word)
        if rows.size == 0:
            return None
        table, rows = self._rows_of(rows)
        return embedding_bag(table, rows, np.zeros(1, dtype=np.int64), mode="mean")[0]

    def __getitem__(self, key):
        """The vector of any word, or the (n, dim) vectors of a list of words."""
        if isinstance(key, str):
            return self.get_vector(key)
        return np.stack([self.get_vector(w) for w in key]) if len(key) else \
            np.zeros((0, self.dim), dtype=self.weight.dtype)

    def get(self, word, default=None):
        """The vector of ``word``, or ``default`` when it has none.

        Any word with n-grams has a vector; an unseen word without n-grams has none.

        Parameters
        ----------
        word : str
        default : object, default None

        Returns
        -------
        ndarray of shape (dim,), or ``default``

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> v = SubwordVectors(["ab"], np.ones((1 + 10, 2), np.float32), minn=3, maxn=3,
        ...                    bucket=10)
        >>> v.get("zz"), v.get("") is None       # "<>" has no 3-gram
        (array([1., 1.], dtype=float32), True)
        """
        vector = self._vector_or_none(word)
        return default if vector is None else vector

    def _query(self, word):
        vector = self._vector_or_none(word)
        if vector is None:
            raise KeyError(f"{word!r} is not in the vocabulary and has no n-gram: no vector")
        return vector

    def similarity(self, a, b):
        """Cosine similarity of two words, either of them possibly unseen.

        Parameters
        ----------
        a, b : str

        Returns
        -------
        float

        Raises
        ------
        KeyError
            An unseen word without n-grams.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> v = SubwordVectors(["ab"], np.ones((1 + 10, 2), np.float32), minn=3, maxn=3,
        ...                    bucket=10)
        >>> round(v.similarity("ab", "zz"), 6)
        1.0
        """
        x, y = (np.asarray(self._query(w), dtype=np.float64) for w in (a, b))
        nx, ny = np.linalg.norm(x), np.linalg.norm(y)
        return float(x @ y / (nx * ny)) if nx and ny else 0.0

    def most_similar(self, word_or_vector=None, topn=10, restrict=None, *, positive=None,
                     negative=None):
        """The ``topn`` vocabulary words nearest to a word, seen or not, or to a vector.

        As :meth:`Vectors.most_similar`; a query word need not be in the vocabulary (its
        vector is then the mean of its n-grams, and no word is left out of its answer).

        Parameters
        ----------
        word_or_vector, topn, restrict, positive, negative :
            As :meth:`Vectors.most_similar`, with unseen words allowed.

        Returns
        -------
        list of (word, similarity), or one such list per query of a batch

        Raises
        ------
        KeyError
            An unseen query word without n-grams.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed.subwords import SubwordVectors
        >>> rng = np.random.default_rng(0)
        >>> v = SubwordVectors(["walk", "walked", "talk"],
        ...                    rng.standard_normal((3 + 64, 8)).astype(np.float32), minn=3,
        ...                    maxn=4, bucket=64)
        >>> len(v.most_similar("walking", topn=2))
        2
        """
        def known(w):
            return w if (not isinstance(w, str) or w in self.index) else self._query(w)

        if isinstance(word_or_vector, str) and word_or_vector not in self.index:
            word_or_vector = self._query(word_or_vector)
        elif (isinstance(word_or_vector, (list, tuple)) and word_or_vector
              and all(isinstance(w, str) for w in word_or_vector)
              and not all(w in self.index for w in word_or_vector)):
            return [self.most_similar(w, topn, restrict) for w in word_or_vector]
        if positive is not None:
            positive = [known(w) for w in ([positive] if isinstance(positive, str)
                                           else positive)]
        if negative is not None:
            negative = [known(w) for w in ([negative] if isinstance(negative, str)
                                           else negative)]
        return Vectors.most_similar(self, word_or_vector, topn, restrict, positive=positive,
                                    negative=negative)
