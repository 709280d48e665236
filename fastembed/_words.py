"""The word table that :class:`fastembed.text.Vocab` and :class:`fastembed.vectors.Vectors` share."""
from __future__ import annotations

__all__ = ["WordTable", "word_index"]


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
