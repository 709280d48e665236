"""``Vectors``: a keyed table of word vectors, with cosine similarity queries.

Also :func:`embedding_for_vocab`, which turns pretrained vectors (GloVe, word2vec) into an
:class:`~fastembed.nn.Embedding` for a :class:`~fastembed.text.Vocab`, and
:func:`spearman`, the rank correlation used to score word-similarity benchmarks.

Similarity queries run on a row-normalised copy of the table, computed once and cached
(:meth:`Vectors.unit_vectors`): the cosines of a query with every row are one matrix-vector
product (a batch of queries, one matrix product), which NumPy hands to BLAS, then
``np.argpartition`` picks the best ``topn`` without sorting the whole table. BLAS runs the
product on its own threads (OpenBLAS and MKL use every core by default; limit them with
``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` or
``threadpoolctl.threadpool_limits(limits=n, user_api="blas")``), so on a 400,000 x 300 table a
query costs about the time to read the float32 unit table once.

Examples
--------
>>> import numpy as np
>>> from fastembed.vectors import Vectors, spearman
>>> v = Vectors(["cat", "dog", "car"], np.array([[1, 0.2], [0.9, 0.3], [0, 1]], np.float32))
>>> v.most_similar("cat", topn=1)[0][0]
'dog'
>>> spearman([v.similarity("cat", "dog"), v.similarity("cat", "car")], [9.0, 1.0])
1.0
"""
from __future__ import annotations

import warnings

import numpy as np

from ._memory import aligned_empty
from ._validation import check_int
from ._words import WordTable, word_index
from .nn import Embedding

__all__ = ["Vectors", "embedding_for_vocab", "spearman"]

# Rows normalised per pass when building the unit table: bounds the float64 scratch to
# about 16 MB, however large the table.
_NORM_BLOCK_ELEMS = 1 << 21
# Scores computed per pass for a batch of queries: at most about 128 MB of float32 scores,
# however many queries there are (each pass reads the whole unit table once, so passes
# should not be too small either: 83 queries per pass for 400,000 rows).
_SCORE_BLOCK_ELEMS = 1 << 25
# Rows copied per pass by embedding_for_vocab: bounds the gathered temporary.
_COPY_BLOCK_ROWS = 1 << 16


class Vectors(WordTable):
    """Words and their vectors: ``weight[index[word]]`` is the vector of ``word``.

    Parameters
    ----------
    words : sequence of str
        Distinct words, in row order.
    weight : ndarray of shape (len(words), dim)
        The vectors (not copied).

    Attributes
    ----------
    words : list of str
        Row -> word.
    weight : ndarray, shape (len(words), dim)
    index : dict of str to int
        Word -> row.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.vectors import Vectors
    >>> v = Vectors(["king", "queen", "apple"],
    ...             np.array([[1, 0.1], [0.9, 0.2], [-0.1, 1]], dtype=np.float32))
    >>> v
    Vectors(3 words, dim=2, dtype=float32)
    >>> v["king"]
    array([1. , 0.1], dtype=float32)
    >>> [w for w, _ in v.most_similar("king", topn=2)]
    ['queen', 'apple']
    >>> round(v.similarity("king", "queen"), 4)
    0.9929
    """

    def __init__(self, words, weight):
        words = list(words)
        weight = np.asarray(weight)
        if weight.ndim != 2 or weight.shape[0] != len(words):
            raise ValueError(f"weight must have shape (len(words)={len(words)}, dim), got "
                             f"{weight.shape}")
        if not np.issubdtype(weight.dtype, np.floating):
            raise TypeError(f"weight must be floating point, got {weight.dtype}")
        if not all(isinstance(word, str) for word in words):
            i, word = next((i, w) for i, w in enumerate(words) if not isinstance(w, str))
            raise TypeError(f"words[{i}] is a {type(word).__name__}, not a str")
        self._set(words, weight, word_index(words))

    def _set(self, words, weight, index):
        self.words = words
        self.weight = weight
        self.index = index
        self._unit = None
        self._unit_of = None  # the weight array the cached unit table was computed from

    def __repr__(self):
        return f"Vectors({len(self):,} words, dim={self.dim}, dtype={self.weight.dtype})"

    @property
    def dim(self):
        """The length of each vector.

        Examples
        --------
        >>> import numpy as np
        >>> Vectors(["a", "b"], np.zeros((2, 3), np.float32)).dim
        3
        """
        return int(self.weight.shape[1])

    @property
    def dtype(self):
        """The dtype of :attr:`weight`.

        Examples
        --------
        >>> import numpy as np
        >>> Vectors(["a", "b"], np.zeros((2, 3), np.float32)).dtype
        dtype('float32')
        """
        return self.weight.dtype

    def _id(self, word):
        try:
            return self.index[word]
        except KeyError:
            raise KeyError(f"{word!r} is not in the vocabulary ({len(self):,} words)") from None

    def __getitem__(self, key):
        """The vector of a word, or the (n, dim) vectors of a list of words."""
        if isinstance(key, str):
            return self.weight[self._id(key)]
        return self.weight[[self._id(w) for w in key]]

    def get(self, word, default=None):
        """The vector of ``word``, or ``default`` when it is not in the vocabulary.

        Parameters
        ----------
        word : str
        default : object, default None
            Returned for a word that is not in the vocabulary.

        Returns
        -------
        ndarray of shape (dim,) (a view of the row), or ``default``

        Examples
        --------
        >>> import numpy as np
        >>> v = Vectors(["a", "b"], np.array([[1, 2], [3, 4]], np.float32))
        >>> v.get("b")
        array([3., 4.], dtype=float32)
        >>> v.get("zzz") is None
        True
        """
        i = self.index.get(word)
        return default if i is None else self.weight[i]

    def unit_vectors(self):
        """The rows scaled to unit length (zero rows stay zero); computed once and cached.

        float32 for float32 (and narrower) tables, float64 for float64 ones. The sums of
        squares are accumulated in float64; the table is processed block by block, so the
        scratch memory stays small for a large table.

        The cache follows :attr:`weight` being replaced by another array, but not changes made
        to it in place: call :meth:`clear_cache` then.

        Returns
        -------
        ndarray, shape (len(self), dim), C-contiguous

        Examples
        --------
        >>> import numpy as np
        >>> v = Vectors(["a", "b"], np.array([[3, 4], [0, 0]], np.float32))
        >>> v.unit_vectors()
        array([[0.6, 0.8],
               [0. , 0. ]], dtype=float32)
        >>> v.unit_vectors() is v.unit_vectors()         # cached
        True
        """
        if self._unit is None or self._unit_of is not self.weight:
            w = self.weight
            dtype = np.float64 if w.dtype.itemsize > 4 else np.float32
            unit = aligned_empty(w.shape, dtype)
            step = max(1, _NORM_BLOCK_ELEMS // max(1, w.shape[1]))
            for start in range(0, w.shape[0], step):
                block = w[start:start + step]
                # sums of squares accumulated in float64 (no overflow, no loss for long rows)
                norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
                norms[norms == 0] = 1.0  # zero rows stay zero
                np.divide(block, norms.astype(dtype)[:, None], out=unit[start:start + step],
                          casting="unsafe")
            self._unit = unit
            self._unit_of = w
        return self._unit

    def clear_cache(self):
        """Forget the cached unit table (after changing :attr:`weight` in place).

        Examples
        --------
        >>> import numpy as np
        >>> v = Vectors(["a", "b"], np.array([[1, 0], [0, 1]], np.float32))
        >>> v.similarity("a", "b")
        0.0
        >>> v.weight[1] = [1, 0]              # an in-place change: the cache is stale
        >>> v.clear_cache()
        >>> v.similarity("a", "b")
        1.0
        """
        self._unit = None
        self._unit_of = None

    def similarity(self, a, b):
        """Cosine similarity of two words.

        Parameters
        ----------
        a, b : str
            Words of the vocabulary.

        Returns
        -------
        float
            The dot product of their unit vectors (0 when either vector is zero).

        Raises
        ------
        KeyError
            A word is not in the vocabulary.

        Examples
        --------
        >>> import numpy as np
        >>> v = Vectors(["a", "b"], np.array([[1, 0], [1, 1]], dtype=np.float32))
        >>> round(v.similarity("a", "b"), 4)
        0.7071
        """
        unit = self.unit_vectors()
        return float(unit[self._id(a)] @ unit[self._id(b)])

    # -- nearest neighbours -----------------------------------------------------------------

    def most_similar(self, word_or_vector=None, topn=10, restrict=None, *, positive=None,
                     negative=None):
        """The ``topn`` words nearest to a word or a vector (or to each of a batch), by cosine.

        Parameters
        ----------
        word_or_vector : str, array of shape (dim,), list of str or array of shape (m, dim)
            A word (left out of its own answer) or a vector; or a batch of either, answered
            with one matrix product. Omit it to use ``positive`` / ``negative``.
        topn : int, default 10
            How many neighbours to return (fewer when the table has fewer candidates).
        restrict : int, optional
            Search only the first ``restrict`` rows (the most frequent words, when rows are
            in frequency order).
        positive, negative : list of str or arrays, optional
            gensim's analogy arithmetic: the query is the mean of the unit vectors of the
            ``positive`` words minus those of the ``negative`` ones, and every query word is
            left out of the answer (``positive=["king", "woman"], negative=["man"]`` for
            king - man + woman). Vectors given here are normalised too (gensim adds them
            as they are). A single str stands for a one-word list.

        Returns
        -------
        list of (word, similarity)
            Most similar first; equal similarities keep row order. For a batch, one such list
            per query, in order.

        Notes
        -----
        The scores are ``unit_vectors()[:restrict] @ q / |q|``: one BLAS matrix-vector product
        (threaded by BLAS, see the module docstring), then ``np.argpartition`` for the best
        ``topn`` and a sort of those alone. A zero query vector is as similar (0) to every
        row: the answer is then the first rows, in row order. Rows holding NaN come last.
        Batches are scored in blocks of at most 2**25 scores, so memory stays bounded.

        Examples
        --------
        >>> import numpy as np
        >>> v = Vectors(["king", "queen", "man", "woman"],
        ...             np.array([[1, 1], [1, -1], [0.5, 1], [0.5, -1]], dtype=np.float32))
        >>> [w for w, _ in v.most_similar("king", topn=2)]
        ['man', 'queen']
        >>> [[w for w, _ in answer] for answer in v.most_similar(["king", "queen"], topn=1)]
        [['man'], ['woman']]
        >>> v.most_similar(np.array([1.0, -0.1]), topn=1)[0][0]
        'queen'
        >>> v.most_similar(positive=["king", "woman"], negative=["man"], topn=1)[0][0]
        'queen'
        """
        topn = check_int(topn, "topn", min=0)
        n = self._restricted(restrict)
        if positive is not None or negative is not None:
            if word_or_vector is not None:
                raise TypeError("pass either word_or_vector or positive=/negative=, not both")
            query, exclude = self._analogy_query(positive, negative)
            return self._search(query[None, :], [exclude], topn, n)[0]
        if word_or_vector is None:
            raise TypeError("most_similar() needs a word, a vector, a batch of them, or "
                            "positive=/negative=")
        unit = self.unit_vectors()
        if isinstance(word_or_vector, str):
            i = self._id(word_or_vector)
            return self._search(unit[i][None, :], [(i,)], topn, n)[0]
        if _is_word_batch(word_or_vector):
            ids = [self._id(w) for w in word_or_vector]
            if not ids:
                return []
            return self._search(unit[ids], [(i,) for i in ids], topn, n)
        queries = self._unit_queries(word_or_vector, "word_or_vector")
        answers = self._search(queries, [()] * queries.shape[0], topn, n)
        return answers[0] if np.ndim(word_or_vector) == 1 else answers

    def _restricted(self, restrict):
        if restrict is None:
            return len(self)
        return check_int(restrict, "restrict", min=0, max=len(self), allow_none=True)

    def _unit_queries(self, vectors, name):
        """(m, dim) unit rows (in the unit table's dtype) from a (dim,) or (m, dim) array."""
        q = np.asarray(vectors)
        if q.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a word, a list of words or numbers, got an array "
                            f"of dtype {q.dtype}")
        if q.ndim not in (1, 2) or q.shape[-1] != self.dim:
            raise ValueError(f"a query vector must have shape ({self.dim},), and a batch "
                             f"(m, {self.dim}); got {q.shape}")
        q = np.atleast_2d(q).astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", q, q))
        norms[norms == 0] = 1.0  # a zero query stays zero: every score is 0
        return np.ascontiguousarray(q / norms[:, None], dtype=self.unit_vectors().dtype)

    def _analogy_query(self, positive, negative):
        positive, negative = _as_items(positive), _as_items(negative)
        if not positive and not negative:
            raise ValueError("positive and negative are both empty")
        unit = self.unit_vectors()
        total = np.zeros(self.dim, dtype=np.float64)
        exclude = set()
        for sign, items in ((1.0, positive), (-1.0, negative)):
            for item in items:
                if isinstance(item, str):
                    i = self._id(item)
                    exclude.add(i)
                    total += sign * unit[i]
                else:
                    total += sign * self._unit_queries(item, "a positive/negative vector")[0]
        total /= len(positive) + len(negative)  # gensim's mean (the scale does not matter)
        return self._unit_queries(total, "query")[0], tuple(sorted(exclude))

    def _search(self, queries, excludes, topn, n):
        """For each unit query row, the best ``topn`` of rows [0, n) minus its excluded rows."""
        m = queries.shape[0]
        if topn == 0 or n == 0:
            return [[] for _ in range(m)]
        table = self.unit_vectors()[:n]
        answers = []
        step = max(1, _SCORE_BLOCK_ELEMS // n)
        for start in range(0, m, step):
            block = queries[start:start + step]
            if block.shape[0] == 1:
                scores = (table @ block[0])[None, :]  # gemv
            else:
                scores = block @ table.T  # gemm, one pass over the table for the whole block
            neg = np.negative(scores, out=scores)  # ascending neg = descending cosine
            for r in range(neg.shape[0]):
                excluded = [i for i in excludes[start + r] if i < n]
                top = _smallest_k(neg[r], min(topn + len(excluded), n))
                if excluded:
                    top = top[~np.isin(top, excluded)]
                answers.append([(self.words[i], -float(neg[r, i]))
                                for i in top[:topn].tolist()])
        return answers

    # -- evaluation -------------------------------------------------------------------------

    def evaluate_word_pairs(self, pairs, *, lower=True):
        """Spearman correlation between human scores and cosine similarities.

        Parameters
        ----------
        pairs : path or iterable of (word1, word2, score)
            A WordSim-353-style file: tab-separated ``word1 word2 score`` lines, ``#`` for
            comments.
        lower : bool, default True
            Lower-case the words of each pair before looking them up.

        Returns
        -------
        dict with ``spearman``, ``pairs`` (used), ``oov`` (pairs skipped because a word is
        missing) and ``oov_ratio``.

        Examples
        --------
        >>> import numpy as np
        >>> v = Vectors(["a", "b", "c"], np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32))
        >>> v.evaluate_word_pairs([("a", "b", 8.0), ("a", "c", 1.0), ("a", "zzz", 5.0)])
        {'spearman': 1.0, 'pairs': 2, 'oov': 1, 'oov_ratio': 0.3333333333333333}
        """
        if isinstance(pairs, (str, bytes)) or hasattr(pairs, "__fspath__"):
            rows = []
            with open(pairs, encoding="utf-8") as f:
                for line_no, line in enumerate(f, 1):
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    parts = line.split("\t")
                    if len(parts) != 3:
                        raise ValueError(f"{pairs}:{line_no}: expected 'word1<TAB>word2<TAB>"
                                         f"score', got {line!r}")
                    rows.append((parts[0], parts[1], float(parts[2])))
        else:
            rows = list(pairs)
        human, model, oov = [], [], 0
        for a, b, score in rows:
            if lower:
                a, b = a.lower(), b.lower()
            if a in self.index and b in self.index:
                human.append(score)
                model.append(self.similarity(a, b))
            else:
                oov += 1
        total = len(rows)
        return {"spearman": spearman(human, model) if len(human) > 1 else float("nan"),
                "pairs": len(human), "oov": oov, "oov_ratio": oov / total if total else 0.0}


def _is_word_batch(query):
    """A list or tuple of words (an empty one counts: it is an empty batch)."""
    return (isinstance(query, (list, tuple))
            and all(isinstance(w, str) for w in query))


def _as_items(items):
    """positive= / negative= as a list: None -> [], a word or a 1-D vector -> [it]."""
    if items is None:
        return []
    if isinstance(items, str) or (isinstance(items, np.ndarray) and items.ndim == 1):
        return [items]
    return list(items)


def _smallest_k(neg, k):
    """Rows of the ``k`` smallest values of the 1-D ``neg``, smallest first; equal values in
    row order, NaN last. (``neg`` holds negated cosines: these are the ``k`` best rows.)

    ``np.argpartition`` finds the k-th smallest value t in linear time; every row below t is
    in, and of the rows equal to t only the first ones (in row order) fill the remaining
    places, so that ties are broken by row however argpartition arranged them. Only those k
    rows are then sorted.

    For a long row and a small k the partition runs on candidates only: the k-th smallest
    value t0 of an evenly strided sample of about sqrt(n k) values is >= t (a sample's k-th
    smallest is never below the whole row's), so the rows with values <= t0 (about
    sqrt(n k) of them, for values in no particular order) hold every row of the answer.
    """
    n = neg.shape[0]
    if k >= n:
        return np.argsort(neg, kind="stable")[:k]
    rows = None  # all of them
    stride = int(np.sqrt(n / k))
    if stride >= 8:
        sample = neg[::stride]
        t0 = np.partition(sample, k - 1)[k - 1]
        if not np.isnan(t0):  # NaN only when the sample has fewer than k numbers
            rows = np.flatnonzero(neg <= t0)
    values = neg if rows is None else neg[rows]
    t = values[np.argpartition(values, k - 1)[:k]].max()
    if np.isnan(t):  # fewer than k numbers: NaN rows complete the answer, in row order
        return np.argsort(neg, kind="stable")[:k]
    below = values < t
    tied = np.flatnonzero(values == t)[:k - np.count_nonzero(below)]
    picked = np.concatenate((np.flatnonzero(below), tied))
    if rows is not None:
        picked = rows[picked]
    return picked[np.lexsort((picked, neg[picked]))]


# -- pretrained vectors for a vocabulary ------------------------------------------------------

def embedding_for_vocab(vocab, vectors, *, init="uniform", seed=None, dtype=None, lower=False,
                        trainable=True, padding_idx=None, embedding_dim=None, **layer_kwargs):
    """An :class:`~fastembed.nn.Embedding` for ``vocab`` whose rows are pretrained vectors.

    The recipe "use pretrained GloVe in a Keras ``Embedding`` layer": row ``i`` of the new
    table is the pretrained vector of ``vocab.words[i]`` when ``vectors`` has that word, and
    otherwise what ``Embedding(len(vocab), vectors.dim, init=init, seed=seed, dtype=dtype)``
    would hold in that row. The words without a vector are returned, and reported by a
    ``UserWarning`` giving their number and a few examples.

    Parameters
    ----------
    vocab : Vocab or sequence of str
        The model's vocabulary (:class:`fastembed.text.Vocab`, or its words in id order).
    vectors : Vectors
        The pretrained vectors, for instance from :func:`fastembed.io.load_word2vec`.
    init : {"uniform", "normal", "zeros"} or callable, default "uniform"
        The initialiser of the rows without a pretrained vector, as in
        :class:`~fastembed.nn.Embedding`.
    seed : int or numpy.random.Generator, optional
        Seeds ``init``: the same seed gives the same table.
    dtype : float32 or float64, optional
        The table's dtype; that of ``vectors`` by default (float32 unless it is float64).
    lower : bool, default False
        A word missing from ``vectors`` as it is is looked up again lower-cased (GloVe's
        vocabularies are lower-case): "The" takes the vector of "the".
    trainable : bool, default True
        False freezes the layer (no gradient), as ``from_pretrained(freeze=True)``.
    padding_idx : int, optional
        The padding row, usually ``vocab.pad_id``: it is zeros (even if ``vectors`` has the
        pad token), never gets gradient, and is not reported missing. Negative values count
        from the end.
    embedding_dim : int, optional
        The dimension the model expects; ValueError if ``vectors.dim`` differs.
    **layer_kwargs
        More :class:`~fastembed.nn.Embedding` options (``mask_zero``, ``max_norm``,
        ``input_length`` ...).

    Returns
    -------
    layer : Embedding
        A new (len(vocab), vectors.dim) table, owned by the layer.
    missing : list of str
        The words (in id order) that got an initialised row instead of a pretrained one.

    Raises
    ------
    ValueError
        ``embedding_dim`` differs from ``vectors.dim``; a bad ``padding_idx`` or ``init``.
    TypeError
        ``vectors`` is not a :class:`Vectors`; a bad ``dtype``.

    Notes
    -----
    Each word costs one dictionary look-up (two for a missing word with ``lower=True``); the
    rows are then copied with NumPy fancy indexing, in blocks so that the temporary stays
    small: a 400,000-word vocabulary takes a fraction of a second, most of it drawing the
    initial values.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from fastembed.text import Vocab
    >>> glove = Vectors(["the", "cat", "sat"], np.arange(6, dtype=np.float32).reshape(3, 2))
    >>> vocab = Vocab(["<pad>", "The", "cat", "purred"], pad_token="<pad>")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     layer, missing = embedding_for_vocab(vocab, glove, lower=True, init="zeros",
    ...                                          padding_idx=vocab.pad_id)
    >>> layer.weight
    array([[0., 0.],
           [0., 1.],
           [2., 3.],
           [0., 0.]], dtype=float32)
    >>> missing
    ['purred']
    >>> print(caught[0].message)
    1 of 4 words (25.0%) have no pretrained vector and were initialised with init='zeros': 'purred'
    """
    if not isinstance(vectors, Vectors):
        raise TypeError(f"vectors must be a fastembed.vectors.Vectors, got "
                        f"{type(vectors).__name__}")
    words = vocab.words if hasattr(vocab, "words") else list(vocab)
    embedding_dim = check_int(embedding_dim, "embedding_dim", min=0, allow_none=True)
    if embedding_dim is not None and embedding_dim != vectors.dim:
        raise ValueError(f"embedding_dim={embedding_dim} but the pretrained vectors have "
                         f"dim={vectors.dim}")
    if dtype is None:
        dtype = np.float64 if vectors.weight.dtype == np.float64 else np.float32
    layer = Embedding(len(words), vectors.dim, init=init, seed=seed, dtype=dtype,
                      padding_idx=padding_idx, trainable=trainable, **layer_kwargs)

    index = vectors.index
    src = np.fromiter((index.get(w, -1) for w in words), dtype=np.int64, count=len(words))
    if lower:
        for i in np.flatnonzero(src < 0).tolist():
            src[i] = index.get(words[i].lower(), -1)
    if layer.padding_idx is not None:
        src[layer.padding_idx] = -2  # stays zeros, and is not "missing"
    rows = np.flatnonzero(src >= 0)
    for start in range(0, rows.size, _COPY_BLOCK_ROWS):
        chunk = rows[start:start + _COPY_BLOCK_ROWS]
        layer.weight[chunk] = vectors.weight[src[chunk]]  # cast to the table's dtype

    missing = [words[i] for i in np.flatnonzero(src == -1).tolist()]
    if missing:
        shown = ", ".join(repr(w) for w in missing[:5]) + (", ..." if len(missing) > 5 else "")
        init_name = init if isinstance(init, str) else getattr(init, "__name__", repr(init))
        warnings.warn(f"{len(missing):,} of {len(words):,} words ({len(missing) / len(words):.1%})"
                      f" have no pretrained vector and were initialised with "
                      f"init={init_name!r}: {shown}", UserWarning, stacklevel=2)
    return layer, missing


# -- rank correlation -------------------------------------------------------------------------

def _ranks(values):
    """Ranks 0..n-1, ties given their average rank (each NaN a rank of its own, last)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    starts_group = np.ones(n, dtype=bool)
    starts_group[1:] = sorted_vals[1:] != sorted_vals[:-1]
    first = np.flatnonzero(starts_group)
    last = np.append(first[1:], n) - 1
    ranks = np.empty(n)
    ranks[order] = np.repeat((first + last) / 2.0, last - first + 1)
    return ranks


def spearman(x, y):
    """Spearman's rank correlation (ties get average ranks), as ``scipy.stats.spearmanr``.

    Parameters
    ----------
    x, y : array-like of shape (n,)

    Returns
    -------
    float
        Pearson's correlation of the ranks; NaN when either has a single distinct value.

    Examples
    --------
    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
    """
    rx, ry = _ranks(x), _ranks(y)
    if rx.size != ry.size:
        raise ValueError(f"x and y must have the same length, got {rx.size} and {ry.size}")
    rx -= rx.mean()
    ry -= ry.mean()
    denom = np.sqrt((rx @ rx) * (ry @ ry))
    return float(rx @ ry / denom) if denom > 0 else float("nan")


def vectors_from_checked(words, weight, index):
    """A :class:`Vectors` from parts a reader has already checked, without checking them again.

    For the readers of :mod:`fastembed.io`. ``words``: a list of distinct str; ``weight``: a
    2-D floating ndarray with ``len(words)`` rows (kept as it is: a memmap stays one);
    ``index``: ``{word: row}`` for exactly those words.
    """
    vectors = Vectors.__new__(Vectors)
    vectors._set(words, weight, index)
    return vectors
