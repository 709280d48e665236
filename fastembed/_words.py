"""The word table that :class:`fastembed.text.Vocab` and :class:`fastembed.vectors.Vectors` share,
and the bytes of word lists that the compiled code reads (:func:`utf8_joined`)."""
from __future__ import annotations

import numpy as np

__all__ = ["WordTable", "word_index", "utf8_joined"]


class WordTable:
    """A base for objects with ``words`` (a list of distinct str, by row) and ``index``
    (``{word: row}``): ``len``, ``in`` and iteration over the words, in row order."""

    words: list
    index: dict

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def __iter__(self):
        return iter(self.words)


def word_index(words):
    """``{word: row}`` for a list of words; ValueError naming the first word given twice."""
    index = dict(zip(words, range(len(words))))  # C speed; a duplicate is found below
    if len(index) != len(words):
        first: dict = {}
        for i, word in enumerate(words):
            if word in first:
                raise ValueError(f"words[{i}] = {word!r} repeats words[{first[word]}]")
            first[word] = i
    return index


def utf8_joined(strings):
    """The UTF-8 bytes of ``strings``, one after another, as a uint8 array, and the int64
    offsets (``len(strings) + 1``): string i is ``blob[offsets[i]:offsets[i + 1]]``.

    >>> blob, offsets = utf8_joined(["ab", "", "ü"])
    >>> blob.tobytes(), offsets.tolist()
    (b'ab\\xc3\\xbc', [0, 2, 2, 4])
    """
    parts = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets
