"""``Vectors``: a small keyed table of word vectors, with cosine similarity queries."""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Vectors", "spearman"]


class Vectors:
    """Words and their vectors: ``weight[index[word]]`` is the vector of ``word``.

    Parameters
    ----------
    words : sequence of str
        Distinct words, in row order.
    weight : ndarray of shape (len(words), dim)
        The vectors (not copied).

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed.vectors import Vectors
    >>> v = Vectors(["king", "queen", "apple"],
    ...             np.array([[1, 0.1], [0.9, 0.2], [-0.1, 1]], dtype=np.float32))
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
        index = {}
        for i, word in enumerate(words):
            if not isinstance(word, str):
                raise TypeError(f"words[{i}] is a {type(word).__name__}, not a str")
            if word in index:
                raise ValueError(f"words[{i}] = {word!r} repeats words[{index[word]}]")
            index[word] = i
        self.words = words
        self.weight = weight
        self.index = index
        self._unit = None

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def __iter__(self):
        return iter(self.words)

    def __repr__(self):
        return f"Vectors({len(self):,} words, dim={self.dim}, dtype={self.weight.dtype})"

    @property
    def dim(self):
        return int(self.weight.shape[1])

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

    def unit_vectors(self):
        """The rows scaled to unit length (zero rows stay zero); computed once and cached.

        The cache is not refreshed when ``weight`` changes: call :meth:`clear_cache` then.
        """
        if self._unit is None:
            w = self.weight.astype(np.float32 if self.weight.dtype == np.float32
                                   else np.float64)
            norms = np.linalg.norm(w, axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                unit = np.where(norms > 0, w / norms, 0)
            self._unit = np.ascontiguousarray(unit, dtype=w.dtype)
        return self._unit

    def clear_cache(self):
        self._unit = None

    def similarity(self, a, b):
        """Cosine similarity of two words."""
        unit = self.unit_vectors()
        return float(unit[self._id(a)] @ unit[self._id(b)])

    def most_similar(self, query, topn=10, restrict=None):
        """The ``topn`` words nearest to a word or a vector, by cosine similarity.

        Parameters
        ----------
        query : str or array of shape (dim,)
            A word (left out of the answer) or a vector.
        topn : int
        restrict : int, optional
            Search only the first ``restrict`` rows (the most frequent words, when rows are
            in frequency order).

        Returns
        -------
        list of (word, similarity), most similar first; ties keep row order.
        """
        if isinstance(topn, bool) or not isinstance(topn, numbers.Integral) or topn < 0:
            raise ValueError(f"topn must be a non-negative int, got {topn!r}")
        unit = self.unit_vectors()
        n = len(self) if restrict is None else int(restrict)
        if not 0 <= n <= len(self):
            raise ValueError(f"restrict must lie in [0, {len(self)}], got {restrict!r}")
        exclude = None
        if isinstance(query, str):
            exclude = self._id(query)
            q = unit[exclude]
        else:
            q = np.asarray(query, dtype=unit.dtype)
            if q.shape != (self.dim,):
                raise ValueError(f"a query vector must have shape ({self.dim},), got {q.shape}")
            norm = np.linalg.norm(q)
            q = q / norm if norm > 0 else q
        sims = unit[:n] @ q  # BLAS: threaded for large tables
        if exclude is not None and exclude < n:
            sims[exclude] = -np.inf
        k = min(topn, n - (exclude is not None and exclude < n))
        if k <= 0:
            return []
        top = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.lexsort((top, -sims[top]))]
        return [(self.words[i], float(sims[i])) for i in top[:k]]

    def evaluate_word_pairs(self, pairs, *, lower=True):
        """Spearman correlation between human scores and cosine similarities.

        Parameters
        ----------
        pairs : path or iterable of (word1, word2, score)
            A WordSim-353-style file: tab-separated ``word1 word2 score`` lines, ``#`` for
            comments.

        Returns
        -------
        dict with ``spearman``, ``pairs`` (used), ``oov`` (pairs skipped because a word is
        missing) and ``oov_ratio``.
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


def _ranks(values):
    """Ranks 0..n-1, ties given their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    ranks = np.empty(values.size)
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(x, y):
    """Spearman's rank correlation (ties get average ranks), as ``scipy.stats.spearmanr``.

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 25])
    0.8
    """
    rx, ry = _ranks(x), _ranks(y)
    if rx.size != ry.size:
        raise ValueError("x and y must have the same length")
    rx -= rx.mean()
    ry -= ry.mean()
    denom = np.sqrt((rx @ rx) * (ry @ ry))
    return float(rx @ ry / denom) if denom > 0 else float("nan")
