"""Text utilities: a word tokenizer, a sentence splitter, a vocabulary and Keras's padding.

Everything here is Python and NumPy, built to keep up with a corpus of a few million words:
one compiled regular expression does the tokenizing, a compiled pass (``_ext/tokens.pyx``)
the counting, and ``pad_sequences`` fills its output with one masked assignment.

``TOKEN_PATTERN`` is the compiled word regex, ``[^\\W_]+(?:'[^\\W_]+)*``: a run of Unicode
letters and digits (the characters for which ``str.isalnum()`` is true; the underscore is not
one of them), optionally joined to further runs by single apostrophes. ``tokenize`` applies it
after replacing the curly apostrophe ``’`` (U+2019) by ``'`` and, by default, lower-casing;
use ``TOKEN_PATTERN.findall`` directly for neither.

Examples
--------
>>> from fastembed.text import TOKEN_PATTERN, Vocab, pad_sequences, tokenize
>>> TOKEN_PATTERN.findall("Don't stop-me now")
["Don't", 'stop', 'me', 'now']
>>> docs = [tokenize("The cat sat."), tokenize("The dog sat down!")]
>>> vocab = Vocab.build(docs, pad_token="<pad>", unk_token="<unk>")
>>> pad_sequences(vocab.encode_batch(docs + [["the", "bird"]]), maxlen=4, padding="post")
array([[2, 4, 3, 0],
       [2, 5, 3, 6],
       [2, 1, 0, 0]], dtype=int32)
"""
from __future__ import annotations

import gc
import operator
import os
import re
from contextlib import contextmanager
from functools import partial
from itertools import chain, islice, repeat

import numpy as np

from ._atomic import atomic_write
from ._ext.tokens import count_tokens
from ._validation import check_int
from ._words import WordTable, word_index

__all__ = ["TOKEN_PATTERN", "tokenize", "split_sentences", "Vocab", "pad_sequences"]

# [^\W_] is "a word character but not the underscore", i.e. exactly the characters for which
# str.isalnum() is true. One pattern and one findall over the whole text keep tokenizing at
# about 0.4 s per 10 MB of English text.
TOKEN_PATTERN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")

# Sentence ends: runs of '.', '!', '?' and of the line breaks str.splitlines() knows.
_SENTENCE_END = re.compile(r"[.!?\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")

_CURLY_APOSTROPHE = "\u2019"


def _prepare(text, lower):
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}"
                        + ("; decode bytes first, e.g. data.decode('utf-8')"
                           if isinstance(text, (bytes, bytearray)) else ""))
    text = text.replace(_CURLY_APOSTROPHE, "'")
    return text.lower() if lower else text


def tokenize(text, lower=True):
    """Split text into words: runs of letters and digits, keeping internal apostrophes.

    A token is a maximal run of Unicode letters and digits (``str.isalnum()`` characters, so
    ``é``, ``ß``, ``ж``, ``漢`` and ``٣`` count, the underscore does not), and may continue
    across single apostrophes that have a letter or digit on both sides: ``don't``,
    ``nation's``, ``o'clock`` are one token each. Everything else separates tokens and is
    dropped:

    - punctuation and symbols, including hyphens (``state-of-the-art`` gives four tokens),
      underscores (``snake_case`` gives two), slashes, ``@`` and the ``.`` and ``,`` inside
      numbers (``3.14`` gives ``3`` and ``14``);
    - apostrophes at the start or end of a word and doubled ones (``'quoted'`` gives
      ``quoted``, ``students'`` gives ``students``);
    - whitespace of every kind.

    The curly apostrophe ``’`` (U+2019) is first replaced by ``'``; other quote marks, such as
    ``‘`` (U+2018), are separators. Combining marks are not ``isalnum()``, so decomposed
    (NFD) text splits at them; normalise it with ``unicodedata.normalize("NFC", text)`` first.

    Parameters
    ----------
    text : str
        The text.
    lower : bool, default True
        Lower-case the text with ``str.lower()`` before splitting it.

    Returns
    -------
    list of str
        The tokens, in order. Empty when the text has no letters or digits.

    Raises
    ------
    TypeError
        ``text`` is not a str (bytes must be decoded first).

    See Also
    --------
    split_sentences : the same tokens, grouped by sentence.

    Examples
    --------
    >>> tokenize("The nation’s café doesn't close -- it's 24/7!")
    ['the', "nation's", 'café', "doesn't", 'close', "it's", '24', '7']
    >>> tokenize("State-of-the-art snake_case", lower=False)
    ['State', 'of', 'the', 'art', 'snake', 'case']
    """
    return TOKEN_PATTERN.findall(_prepare(text, lower))


def split_sentences(text, lower=True):
    """Split text into sentences, then each sentence into tokens.

    A simple splitter: a sentence ends at every run of ``.``, ``!`` and ``?`` and at every line
    break (those ``str.splitlines()`` recognises). It knows nothing of abbreviations or
    numbers, so ``Mr. Smith`` and ``3.14`` both end a sentence at the dot, and hard-wrapped
    text ends one at every line end (join its lines first). Sentences without a token are
    dropped. Tokens are those of :func:`tokenize`.

    Parameters
    ----------
    text : str
        The text.
    lower : bool, default True
        Lower-case the text before splitting it.

    Returns
    -------
    list of list of str
        One list of tokens per non-empty sentence, in order.

    Raises
    ------
    TypeError
        ``text`` is not a str.

    Examples
    --------
    >>> split_sentences("Hello, world! Is it me you're looking for?\\nYes... Mr. Smith.")
    [['hello', 'world'], ['is', 'it', 'me', "you're", 'looking', 'for'], ['yes'], ['mr'],
     ['smith']]
    >>> split_sentences("?! ...")
    []
    """
    findall = TOKEN_PATTERN.findall
    sentences: list = []
    append = sentences.append
    with _collector_paused():
        for piece in _SENTENCE_END.split(_prepare(text, lower)):
            tokens = findall(piece)
            if tokens:
                append(tokens)
    return sentences


@contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector while a corpus's token lists are built.

    Every few hundred new lists the collector runs, and its passes scan the lists built so
    far: for 590,000 sentences of a 17 MB file they took half the time of
    :func:`split_sentences`, 1.3 of 2.6 s. Lists of strings cannot form reference cycles, so
    there is nothing for it to find. The collector's state is restored on the way out. (Its
    next passes still scan the new lists once: 300,000 lists made right after took 0.4 s
    longer, so a read and those took 2.9 s in all instead of 3.6.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---------------------------------------------------------------------------------------------
# Vocab

_HEADER_MAGIC = "# fastembed-vocab"
_FORMAT_VERSION = 1
_HEADER_RE = re.compile(r"# fastembed-vocab (\d+) size=(\d+) pad=(\d+|none) unk=(\d+|none)")
_OOV_MODES = ("unk", "skip", "error")
_BUILD_CHUNK = 4096  # token streams that Vocab.build counts at once
_not_none = partial(operator.is_not, None)


def _check_token(token, what):
    """Raise unless ``token`` can be stored in a vocabulary file."""
    if not isinstance(token, str):
        raise TypeError(f"{what} must be a str, got {type(token).__name__} {token!r}")
    if not token:
        raise ValueError(f"{what} is the empty string, which a vocabulary cannot hold")
    for char, name in (("\t", "a tab"), ("\n", "a newline"), ("\r", "a carriage return")):
        if char in token:
            raise ValueError(f"{what} {token!r} contains {name}, which a vocabulary file "
                             f"cannot hold")


def _check_tokens(words):
    """Check a list of words at C speed; find the first bad one only when there is one."""
    try:
        joined = "\t".join(words)
    except TypeError:  # a word that is not a str
        joined = None
    if (joined is None or joined.count("\t") != len(words) - 1 or "\n" in joined
            or "\r" in joined or "" in words):
        for i, word in enumerate(words):
            _check_token(word, f"word {i}")


class Vocab(WordTable):
    """A vocabulary: words numbered 0, 1, 2 ... with their corpus counts.

    Build one from tokenized text with :meth:`build` or from a word -> count mapping with
    :meth:`from_counts`; the constructor takes the words already in id order. A vocabulary
    never changes after it is made.

    Every word is a non-empty str without tab, newline or carriage return, so that every
    vocabulary can be saved; the constructor, :meth:`build` and :meth:`from_counts` raise at
    once for any other word they would keep.

    Parameters
    ----------
    words : iterable of str
        The distinct words; word ``i`` gets id ``i``.
    counts : array-like of int, optional
        Non-negative counts aligned with ``words``; zeros when omitted.
    pad_token, unk_token : str, optional
        Words of ``words`` to use as the padding and the unknown-word token.

    Attributes
    ----------
    words : list of str
        id -> word. Treat it as read-only.
    counts : ndarray of int64
        The count of each id (read-only). Reserved tokens count their occurrences in the
        corpus, 0 unless the corpus itself contains them.
    index : dict of str to int
        word -> id. Treat it as read-only.
    pad_id, unk_id : int or None
        The ids of the padding and unknown-word tokens, None when there is none.
    pad_token, unk_token : str or None
        The tokens themselves.

    Raises
    ------
    TypeError
        A word that is not a str, or counts that are not integers.
    ValueError
        A duplicate, empty or unsavable word, counts of the wrong length or negative,
        ``pad_token`` or ``unk_token`` not among the words or equal to each other.

    Examples
    --------
    >>> vocab = Vocab.build([["the", "cat", "sat"], ["the", "dog"]], unk_token="<unk>")
    >>> vocab
    Vocab(size=5, total=5, unk='<unk>', words=['<unk>', 'the', 'cat', 'sat', 'dog'])
    >>> vocab["cat"], vocab.words[2], vocab.counts[1]
    (2, 'cat', np.int64(2))
    >>> vocab.encode(["the", "bird", "sat"])
    array([1, 0, 3], dtype=int32)
    >>> vocab.decode([1, 4])
    ['the', 'dog']
    >>> Vocab(["a", "b"], [3, 1]).index
    {'a': 0, 'b': 1}
    """

    __hash__ = None  # type: ignore[assignment]  # equality is by value and a Vocab is not meant as a dict key

    def __init__(self, words, counts=None, *, pad_token=None, unk_token=None):
        if isinstance(words, (str, bytes)):
            raise TypeError("words must be an iterable of str, not a single "
                            f"{type(words).__name__}")
        words = list(words)
        _check_tokens(words)
        index = word_index(words)
        if counts is None:
            counts = np.zeros(len(words), dtype=np.int64)
        else:
            counts = np.asarray(counts)
            if counts.dtype.kind not in "iu" or counts.ndim != 1:
                if counts.size == 0 and counts.ndim == 1:  # [] arrives as float64
                    counts = counts.astype(np.int64)
                else:
                    raise TypeError("counts must be a 1-D array-like of integers, got "
                                    f"dtype {counts.dtype} and shape {counts.shape}")
            if counts.shape != (len(words),):
                raise ValueError(f"counts has {counts.shape[0]} entries for {len(words)} words")
            if counts.size and counts.dtype.kind == "u" and counts.max() > np.iinfo(np.int64).max:
                raise ValueError(f"count {int(counts.max())} does not fit in int64")
            if counts.size and counts.min() < 0:
                bad = int(np.argmin(counts))
                raise ValueError(f"counts must be >= 0, got {int(counts[bad])} for word "
                                 f"{words[bad]!r}")
            counts = counts.astype(np.int64)  # always a copy, so the caller keeps theirs
        counts.flags.writeable = False
        self.words = words
        self.counts = counts
        self.index = index
        self.pad_id = self._reserved_id(pad_token, "pad_token")
        self.unk_id = self._reserved_id(unk_token, "unk_token")
        if pad_token is not None and pad_token == unk_token:
            raise ValueError(f"pad_token and unk_token must differ, both are {pad_token!r}")

    def _reserved_id(self, token, name):
        if token is None:
            return None
        if token not in self.index:
            raise ValueError(f"{name} {token!r} is not one of the words")
        return self.index[token]

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def build(cls, token_streams, *, min_count=1, max_size=None, pad_token=None,
              unk_token=None):
        """Count the tokens of a corpus and number them, most frequent first.

        Ids are assigned in this order: ``pad_token`` (id 0) and ``unk_token`` (the next id)
        when asked for, then the words by count, descending; words of equal count keep the
        order of their first occurrence in the corpus, so the result is deterministic.
        Words counted fewer than ``min_count`` times are dropped, then the list is cut to
        ``max_size`` ids, reserved tokens included.

        Occurrences of ``pad_token`` or ``unk_token`` in the corpus (say, a corpus already
        holding ``<unk>``) are not ranked as words: they become the reserved token's count.

        Parameters
        ----------
        token_streams : iterable of iterables of str
            The corpus as token sequences, for instance sentences from
            :func:`split_sentences` or ``[tokenize(text)]``. Consumed once, so a generator
            works. A bare string is refused rather than counted character by character.
        min_count : int, default 1
            Keep words counted at least this many times.
        max_size : int, optional
            The most ids to keep, counting the reserved tokens. None keeps every word.
        pad_token, unk_token : str, optional
            Reserve ids 0 and 1 (or 0 alone) for padding and unknown words.

        Returns
        -------
        Vocab

        Raises
        ------
        TypeError
            A string where a token sequence belongs, or a token that is not a str.
        ValueError
            A kept token that cannot be saved (empty, or with a tab, newline or carriage
            return), ``max_size`` smaller than the number of reserved tokens, negative
            ``min_count``, or ``pad_token == unk_token``.

        Examples
        --------
        >>> v = Vocab.build([["b", "a", "c"], ["a", "c", "d"]], pad_token="<pad>")
        >>> v.words, v.counts.tolist()
        (['<pad>', 'a', 'c', 'b', 'd'], [0, 2, 2, 1, 1])
        >>> Vocab.build([["b", "a", "c"], ["a", "c", "d"]], min_count=2).words
        ['a', 'c']
        >>> Vocab.build([["b", "a", "c"], ["a", "c", "d"]], max_size=2, unk_token="?").words
        ['?', 'a']
        """
        if isinstance(token_streams, (str, bytes)):
            raise TypeError("token_streams must be an iterable of token sequences, not a "
                            "string; pass [tokenize(text)] or split_sentences(text)")
        slots: dict = {}                       # token -> slot, in order of first occurrence
        counts = np.zeros(1024, dtype=np.int64)   # slot -> count
        streams, done = iter(token_streams), 0
        # a chunk of streams at a time, counted in one C call (a generator of streams is
        # never held whole)
        while chunk := list(islice(streams, _BUILD_CHUNK)):
            if any(map(isinstance, chunk, repeat((str, bytes)))):
                i, tokens = next((i, t) for i, t in enumerate(chunk)
                                 if isinstance(t, (str, bytes)))
                raise TypeError(f"token_streams[{done + i}] is a {type(tokens).__name__}, not "
                                "a sequence of tokens; pass [tokenize(text)] or "
                                "split_sentences(text) rather than a list of texts")
            counts = count_tokens(chunk, slots, counts)
            done += len(chunk)
        return cls._ranked(dict(zip(slots, counts[:len(slots)].tolist())), min_count, max_size,
                           pad_token, unk_token)

    @classmethod
    def from_counts(cls, counts, *, min_count=1, max_size=None, pad_token=None,
                    unk_token=None):
        """Number the words of a word -> count mapping, most frequent first.

        The same rules as :meth:`build`, with ties broken by the mapping's iteration order
        (a ``Counter`` or a ``dict`` iterates in insertion order).

        Parameters
        ----------
        counts : mapping of str to int
            Non-negative integer counts.
        min_count, max_size, pad_token, unk_token
            As for :meth:`build`.

        Returns
        -------
        Vocab

        Raises
        ------
        TypeError, ValueError
            As for :meth:`build`, and for ``counts`` that is not a mapping of words to
            non-negative ints.

        Examples
        --------
        >>> Vocab.from_counts({"x": 1, "y": 5, "z": 1}, unk_token="<unk>").words
        ['<unk>', 'y', 'x', 'z']
        """
        if not hasattr(counts, "items"):
            raise TypeError(f"counts must be a mapping of word to count, got "
                            f"{type(counts).__name__}")
        checked = {}
        for word, count in counts.items():
            checked[word] = check_int(count, f"the count of {word!r}", min=0)
        return cls._ranked(checked, min_count, max_size, pad_token, unk_token)

    @classmethod
    def _ranked(cls, counter, min_count, max_size, pad_token, unk_token):
        """Reserved tokens, then the words of ``counter`` by count, ties in its order."""
        min_count = check_int(min_count, "min_count", min=0)
        reserved = [t for t in (pad_token, unk_token) if t is not None]
        for token, name in zip((pad_token, unk_token), ("pad_token", "unk_token")):
            if token is not None:
                _check_token(token, name)
        if pad_token is not None and pad_token == unk_token:
            raise ValueError(f"pad_token and unk_token must differ, both are {pad_token!r}")
        if max_size is not None:
            max_size = check_int(max_size, "max_size", min=0, allow_none=True)
            if max_size < len(reserved):
                raise ValueError(f"max_size={max_size} leaves no room for the "
                                 f"{len(reserved)} reserved token(s) {reserved}")
        reserved_counts = [counter.get(t, 0) for t in reserved]
        items = [(w, c) for w, c in counter.items() if c >= min_count and w not in reserved]
        # list.sort is stable, also with reverse=True: equal counts keep counter order.
        items.sort(key=operator.itemgetter(1), reverse=True)
        if max_size is not None:
            del items[max_size - len(reserved):]
        words = reserved + [w for w, _ in items]
        counts = np.array(reserved_counts + [c for _, c in items], dtype=np.int64)
        return cls(words, counts, pad_token=pad_token, unk_token=unk_token)

    # -- the container protocol -------------------------------------------------------------

    @property
    def pad_token(self):
        """The padding token, or None.

        Examples
        --------
        >>> v = Vocab.build([["a"]], pad_token="<pad>")
        >>> v.pad_token, v.pad_id
        ('<pad>', 0)
        >>> Vocab(["a"]).pad_token is None
        True
        """
        return None if self.pad_id is None else self.words[self.pad_id]

    @property
    def unk_token(self):
        """The unknown-word token, or None.

        Examples
        --------
        >>> v = Vocab.build([["a"]], pad_token="<pad>", unk_token="<unk>")
        >>> v.unk_token, v.unk_id
        ('<unk>', 1)
        """
        return None if self.unk_id is None else self.words[self.unk_id]

    @property
    def total(self):
        """The sum of the counts, as a Python int.

        Examples
        --------
        >>> Vocab(["a", "b"], [3, 1]).total
        4
        """
        return int(self.counts.sum())

    def __getitem__(self, word):
        """The id of ``word``; KeyError when it is not in the vocabulary (never the unk id).

        Examples
        --------
        >>> v = Vocab(["a", "b"])
        >>> v["b"]
        1
        >>> v["zzz"]
        Traceback (most recent call last):
        ...
        KeyError: "'zzz' is not in the vocabulary (size 2)"
        """
        try:
            return self.index[word]
        except KeyError:
            raise KeyError(f"{word!r} is not in the vocabulary (size {len(self)})") from None

    def __eq__(self, other):
        if not isinstance(other, Vocab):
            return NotImplemented
        return (self.words == other.words and self.pad_id == other.pad_id
                and self.unk_id == other.unk_id and np.array_equal(self.counts, other.counts))

    def __repr__(self):
        parts = [f"size={len(self)}", f"total={self.total}"]
        if self.pad_id is not None:
            parts.append(f"pad={self.pad_token!r}")
        if self.unk_id is not None:
            parts.append(f"unk={self.unk_token!r}")
        shown = repr(self.words[:5])
        if len(self) > 5:
            shown = shown[:-1] + ", ...]"
        parts.append(f"words={shown}")
        return f"Vocab({', '.join(parts)})"

    # -- encoding ---------------------------------------------------------------------------

    def _resolve_oov(self, oov):
        if oov is None:
            return "skip" if self.unk_id is None else "unk"
        if oov not in _OOV_MODES:
            raise ValueError(f"oov must be None, 'unk', 'skip' or 'error', got {oov!r}")
        if oov == "unk" and self.unk_id is None:
            raise ValueError("oov='unk' needs a vocabulary with an unk_token")
        return oov

    def _resolve_dtype(self, dtype):
        dtype = np.dtype(dtype)
        if dtype.kind not in "iu":
            raise TypeError(f"dtype must be an integer dtype, got {dtype}")
        if len(self) - 1 > np.iinfo(dtype).max:
            raise ValueError(f"dtype {dtype} cannot hold id {len(self) - 1}")
        return dtype

    def _encode(self, tokens, oov, dtype):
        count = len(tokens) if hasattr(tokens, "__len__") else -1
        if oov == "unk":
            return np.fromiter(map(self.index.get, tokens, repeat(self.unk_id)), dtype, count)
        if oov == "skip":
            return np.fromiter(filter(_not_none, map(self.index.get, tokens)), dtype)
        if count < 0:
            tokens = list(tokens)  # read twice when one is missing
        try:
            return np.fromiter(map(self.index.__getitem__, tokens), dtype, len(tokens))
        except KeyError:
            pass
        for position, token in enumerate(tokens):
            if token not in self.index:
                raise KeyError(f"token {token!r} at position {position} is not in the "
                               f"vocabulary") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def encode(self, tokens, *, oov=None, dtype=np.int32):
        """Map tokens to their ids.

        Parameters
        ----------
        tokens : iterable of str
            The tokens; an iterator works. A bare string is refused (tokenize it first).
        oov : {None, 'unk', 'skip', 'error'}, default None
            What to do with a token not in the vocabulary: ``'unk'`` maps it to ``unk_id``,
            ``'skip'`` leaves it out, ``'error'`` raises. None means ``'unk'`` when the
            vocabulary has an unk token and ``'skip'`` otherwise.
        dtype : integer dtype, default int32
            The dtype of the ids; it must hold ``len(self) - 1``.

        Returns
        -------
        ndarray of shape (n,)
            ``n`` is the number of tokens, less those skipped.

        Raises
        ------
        KeyError
            ``oov='error'`` and a token is missing; the message names the first one and its
            position.
        ValueError
            An unknown ``oov``, ``oov='unk'`` without an unk token, or a dtype too small.
        TypeError
            A string instead of a token sequence, or a non-integer dtype.

        Examples
        --------
        >>> v = Vocab.build([["a", "b", "a"]], unk_token="<unk>")
        >>> v.encode(["a", "x", "b"])
        array([1, 0, 2], dtype=int32)
        >>> v.encode(["a", "x", "b"], oov="skip", dtype=np.int64)
        array([1, 2])
        >>> v.encode(["a", "x", "b"], oov="error")
        Traceback (most recent call last):
        ...
        KeyError: "token 'x' at position 1 is not in the vocabulary"
        """
        if isinstance(tokens, (str, bytes)):
            raise TypeError("tokens must be a sequence of tokens, not a string; "
                            "use encode(tokenize(text))")
        return self._encode(tokens, self._resolve_oov(oov), self._resolve_dtype(dtype))

    def encode_batch(self, sequences, *, oov=None, dtype=np.int32):
        """Encode each token sequence; the options are those of :meth:`encode`.

        Parameters
        ----------
        sequences : iterable of iterables of str
            The token sequences (a bare string is refused).
        oov : {None, 'unk', 'skip', 'error'}, default None
            As in :meth:`encode`.
        dtype : integer dtype, default int32
            As in :meth:`encode`.

        Returns
        -------
        list of ndarray
            One 1-D id array per sequence; :func:`pad_sequences` makes them a matrix.

        Examples
        --------
        >>> v = Vocab.build([["a", "b", "a"]])
        >>> v.encode_batch([["a"], ["b", "c", "a"], []])
        [array([0], dtype=int32), array([1, 0], dtype=int32), array([], dtype=int32)]
        """
        if isinstance(sequences, (str, bytes)):
            raise TypeError("sequences must be an iterable of token sequences, not a string")
        oov = self._resolve_oov(oov)
        dtype = self._resolve_dtype(dtype)
        encoded = []
        for i, tokens in enumerate(sequences):
            if isinstance(tokens, (str, bytes)):
                raise TypeError(f"sequences[{i}] is a {type(tokens).__name__}, not a "
                                "sequence of tokens")
            encoded.append(self._encode(tokens, oov, dtype))
        return encoded

    def decode(self, ids):
        """Map ids back to their words.

        Parameters
        ----------
        ids : 1-D array-like of int
            Ids in ``[0, len(self))``. Negative ids are errors (they do not wrap around).

        Returns
        -------
        list of str

        Raises
        ------
        IndexError
            An id out of range; the message names the first one and its position.
        TypeError, ValueError
            Non-integer ids, or not 1-D.

        Examples
        --------
        >>> v = Vocab(["a", "b", "c"])
        >>> v.decode(np.array([2, 0]))
        ['c', 'a']
        >>> v.decode([0, 3])
        Traceback (most recent call last):
        ...
        IndexError: id 3 at position 1 is out of range for a vocabulary of size 3
        """
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
        if ids.size == 0:
            return []
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
        bad = (ids < 0) | (ids >= len(self))
        if bad.any():
            position = int(np.argmax(bad))
            raise IndexError(f"id {int(ids[position])} at position {position} is out of "
                             f"range for a vocabulary of size {len(self)}")
        return list(map(self.words.__getitem__, ids.tolist()))

    # -- files ------------------------------------------------------------------------------

    def save(self, path):
        """Write the vocabulary to a UTF-8 text file, atomically.

        The format: a header line ``# fastembed-vocab 1 size=<n> pad=<id|none>
        unk=<id|none>``, then one line ``word<TAB>count`` per id, in id order, each ended by
        ``\\n``. The header names the reserved tokens by id, so it holds no token text; it is
        always line 1 and has no tab, while every word line has exactly one.

        The file is written to a temporary file in the same directory, flushed, synced to
        disk, then renamed over ``path``: a reader sees the old file or the new one, never a
        part of either, and a failed save leaves ``path`` as it was.

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        ValueError
            A word is empty or holds a tab, newline or carriage return (only possible if
            ``words`` was changed after construction).
        OSError
            The file could not be written; ``path`` is unchanged.

        Examples
        --------
        >>> import os, tempfile
        >>> v = Vocab.build([["b", "a", "a"]], pad_token="<pad>")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "vocab.txt")
        ...     v.save(path)
        ...     with open(path, encoding="utf-8") as f:
        ...         print(f.read().splitlines())
        ...     print(Vocab.load(path) == v)
        ['# fastembed-vocab 1 size=3 pad=0 unk=none', '<pad>\\t0', 'a\\t2', 'b\\t1']
        True
        """
        _check_tokens(self.words)
        pad = "none" if self.pad_id is None else self.pad_id
        unk = "none" if self.unk_id is None else self.unk_id
        lines = [f"{_HEADER_MAGIC} {_FORMAT_VERSION} size={len(self)} pad={pad} unk={unk}\n"]
        lines += [f"{w}\t{c}\n" for w, c in zip(self.words, self.counts.tolist())]
        with atomic_write(path, "w") as f:
            f.write("".join(lines))

    @classmethod
    def load(cls, path):
        """Read a vocabulary written by :meth:`save`.

        A trailing carriage return on a line is ignored, so a file whose line ends were
        changed to CRLF still loads.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        Vocab

        Raises
        ------
        ValueError
            A malformed file: a missing or bad header, an unsupported version, a line that is
            not ``word<TAB>count``, an empty word, a count that is not a non-negative
            decimal integer, a duplicate word, or a number of lines other than ``size``. The
            message starts with ``<path>:<line number>:``.
        OSError
            The file cannot be read.

        Examples
        --------
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = os.path.join(d, "vocab.txt")
        ...     with open(path, "w", encoding="utf-8") as f:
        ...         _ = f.write("# fastembed-vocab 1 size=2 pad=none unk=1\\n"
        ...                     "the\\t7\\n<unk>\\t0\\n")
        ...     Vocab.load(path)
        Vocab(size=2, total=7, unk='<unk>', words=['the', '<unk>'])

        See :meth:`save` for a round trip.
        """
        path = os.fspath(path)
        words: list = []
        counts: list = []
        seen: dict = {}
        with open(path, encoding="utf-8-sig", newline="\n") as f:
            header = f.readline()
            size, pad_id, unk_id = _parse_header(header.rstrip("\n").removesuffix("\r")
                                                 if header else None, path)
            for lineno, line in enumerate(f, start=2):
                line = line[:-1] if line.endswith("\n") else line
                line = line[:-1] if line.endswith("\r") else line
                fields = line.split("\t")
                if len(fields) != 2:
                    raise ValueError(f"{path}:{lineno}: expected 'word<TAB>count', got "
                                     f"{line!r}")
                word, count = fields
                if not word:
                    raise ValueError(f"{path}:{lineno}: empty word")
                if not (count.isascii() and count.isdigit()):
                    raise ValueError(f"{path}:{lineno}: count {count!r} of {word!r} is not "
                                     f"a non-negative integer")
                if word in seen:
                    raise ValueError(f"{path}:{lineno}: duplicate word {word!r} (first on "
                                     f"line {seen[word]})")
                seen[word] = lineno
                words.append(word)
                counts.append(int(count))
        if len(words) != size:
            raise ValueError(f"{path}:{len(words) + 2}: the header promises {size} words, "
                             f"the file has {len(words)}")
        for token_id, name in ((pad_id, "pad"), (unk_id, "unk")):
            if token_id is not None and token_id >= size:
                raise ValueError(f"{path}:1: {name}={token_id} is out of range for "
                                 f"size={size}")
        if pad_id is not None and pad_id == unk_id:
            raise ValueError(f"{path}:1: pad and unk are the same id {pad_id}")
        count_array = np.array(counts, dtype=np.int64) if counts else None
        return cls(words, count_array,
                   pad_token=None if pad_id is None else words[pad_id],
                   unk_token=None if unk_id is None else words[unk_id])


def _parse_header(header, path):
    """(size, pad_id, unk_id) from a header line; ValueError naming the file otherwise."""
    if header is None:
        raise ValueError(f"{path}:1: empty file, expected the header "
                         f"'{_HEADER_MAGIC} {_FORMAT_VERSION} ...'")
    match = _HEADER_RE.fullmatch(header)
    if match is None:
        version = header[len(_HEADER_MAGIC):].split()[:1]
        if header.startswith(_HEADER_MAGIC + " ") and version != [str(_FORMAT_VERSION)]:
            raise ValueError(f"{path}:1: unsupported vocabulary file version "
                             f"{' '.join(version)!r}; this fastembed reads version "
                             f"{_FORMAT_VERSION}")
        raise ValueError(f"{path}:1: not a fastembed vocabulary header: {header!r}")
    version, size, pad, unk = match.groups()
    if int(version) != _FORMAT_VERSION:
        raise ValueError(f"{path}:1: unsupported vocabulary file version {version!r}; this "
                         f"fastembed reads version {_FORMAT_VERSION}")
    return (int(size), None if pad == "none" else int(pad),
            None if unk == "none" else int(unk))


# ---------------------------------------------------------------------------------------------
# pad_sequences

def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0):
    """Pad (and truncate) sequences to one length, as ``keras.utils.pad_sequences`` does.

    Each sequence longer than ``maxlen`` loses elements from the start (``truncating='pre'``)
    or the end (``'post'``); each shorter one is filled with ``value`` before it
    (``padding='pre'``) or after it (``'post'``). Values are cast to ``dtype`` the way NumPy
    casts them, with no range check, as Keras does: ``np.asarray(seq, dtype)`` for each
    sequence, so floats are truncated toward zero for an integer dtype, integer arrays wrap
    around, and a Python int that does not fit raises NumPy's ``OverflowError``.

    Elements may themselves be arrays: the sample shape is that of the first non-empty
    sequence's elements, and the result has shape ``(len(sequences), maxlen) + sample_shape``.

    The default ``value`` is ``0`` where Keras has ``0.0``: the same for every numeric
    dtype, and an int rather than a float in an ``object`` array. Where this differs from
    Keras otherwise, it is where Keras fails: ``maxlen=0`` gives an empty
    ``(n, 0)`` result (Keras's ``seq[-0:]`` keeps the whole sequence, then fails to fit it),
    an empty ``sequences`` with ``maxlen=None`` gives shape ``(0, 0)`` (Keras raises), and
    invalid ``padding`` or ``truncating`` raise even when every sequence is empty.

    Parameters
    ----------
    sequences : sequence of sequences
        Lists, tuples or 1-D arrays (of any length, empty included).
    maxlen : int, optional
        The output length; None uses the longest sequence.
    dtype : dtype, default 'int32'
        The output dtype.
    padding, truncating : {'pre', 'post'}, default 'pre'
        Where to pad and where to cut.
    value : scalar, default 0
        The padding value.

    Returns
    -------
    ndarray of shape (len(sequences), maxlen) + sample_shape

    Raises
    ------
    ValueError
        Invalid ``padding``, ``truncating`` or ``maxlen`` (a negative one), ``sequences`` or
        one of its elements not a sequence, elements of inconsistent shapes, or a str
        ``value`` with a non-string dtype.
    TypeError
        A ``maxlen`` that is not an int.

    Examples
    --------
    >>> pad_sequences([[1, 2, 3], [4], []])
    array([[1, 2, 3],
           [0, 0, 4],
           [0, 0, 0]], dtype=int32)
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post", truncating="post", value=-1)
    array([[ 1,  2],
           [ 4, -1]], dtype=int32)
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"padding must be 'pre' or 'post', got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}")
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"sequences must be a sequence (with a length), got "
                         f"{type(sequences).__name__}")
    if not isinstance(sequences, (list, tuple)):
        sequences = list(sequences)  # indexable from here on (a 2-D array gives its rows)
    n = len(sequences)
    try:
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
    except TypeError:
        for x in sequences:
            if not hasattr(x, "__len__"):
                raise ValueError(f"sequences must be a list of iterables; found "
                                 f"non-iterable: {x!r}") from None
        raise
    if maxlen is None:
        maxlen = int(lengths.max()) if n else 0
    else:
        maxlen = check_int(maxlen, "maxlen", min=0, allow_none=True)

    dtype = np.dtype(dtype)
    if isinstance(value, str) and dtype != object and not np.issubdtype(dtype, np.str_):
        raise ValueError(f"value is a string ({value!r}) but dtype is {dtype}; use "
                         "dtype=object or a string dtype for string sequences")

    sample_shape = ()
    nonempty = np.flatnonzero(lengths)
    if nonempty.size:
        sample_shape = np.asarray(sequences[int(nonempty[0])]).shape[1:]
    x = np.full((n, maxlen) + sample_shape, value, dtype=dtype)
    kept = np.minimum(lengths, maxlen)
    if maxlen == 0 or not nonempty.size:
        return x

    def cut(s):
        if len(s) <= maxlen:
            return s
        return s[-maxlen:] if truncating == "pre" else s[:maxlen]

    # Fast path: lists and tuples of numbers. np.fromiter casts each element as
    # np.asarray(seq, dtype) would (a Python int out of range raises OverflowError in both);
    # anything it cannot take (nested elements, say) falls through to the exact loop below.
    if (sample_shape == () and dtype.kind in "iuf"
            and all(isinstance(s, (list, tuple)) for s in sequences)):
        try:
            flat = np.fromiter(chain.from_iterable(map(cut, sequences)), dtype=dtype,
                               count=int(kept.sum()))
        except (TypeError, ValueError):
            pass
        else:
            columns = np.arange(maxlen)
            if padding == "pre":
                mask = columns >= (maxlen - kept)[:, None]
            else:
                mask = columns < kept[:, None]
            x[mask] = flat  # row-major order: each row's kept elements, in order
            return x

    # Keras's own loop: exact for every input (arrays, mixed types, nested samples).
    for idx in nonempty.tolist():
        trunc = np.asarray(cut(sequences[idx]), dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(f"shape of sample {trunc.shape[1:]} of sequence at position "
                             f"{idx} is different from expected shape {sample_shape}")
        if padding == "post":
            x[idx, :len(trunc)] = trunc
        else:
            x[idx, maxlen - len(trunc):] = trunc
    return x
