"""Compiled passes over token lists: counting them, encoding them as word ids.

``fastembed.text.Vocab.build`` counts with ``count_tokens``;
``fastembed.models.word2vec.Corpus.from_sentences`` encodes with ``encode_sentences``. One
Python step per sentence and one or three per token (a Counter's update, a lookup, a filter,
a list to extend) made these two passes cost up to a seventh of a whole training run on a
corpus of short sentences (SpamAssassin's mails: 1.1 s of 8.1 s); here a token costs one dict
lookup.

Both work on a private shallow copy of the list of sentences, in which every sentence that is
not a list or a tuple is made a list first. A token's ``__hash__`` or ``__eq__`` runs Python
code, which could still change a sentence while it is read: the loops read a sentence's size
again at every token and hold each token while they look it up.
"""
from cpython.dict cimport PyDict_GetItemWithError
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int32_t, int64_t

import numpy as np

cdef extern from "Python.h":
    int PyDict_SetItem(object p, object key, object val) except -1
    bint PyList_CheckExact(object o)
    bint PyTuple_CheckExact(object o)
    long PyLong_AsLong(object o) except? -1


cdef list _sequences(list sentences):
    """A copy of ``sentences`` whose every item is a list or a tuple (others made lists)."""
    cdef list out = list(sentences)
    cdef Py_ssize_t s
    for s in range(len(out)):
        if not (PyList_CheckExact(out[s]) or PyTuple_CheckExact(out[s])):
            out[s] = list(out[s])
    return out


cdef inline Py_ssize_t _size(object sentence, bint is_list):
    return PyList_GET_SIZE(sentence) if is_list else PyTuple_GET_SIZE(sentence)


cdef inline object _token(object sentence, bint is_list, Py_ssize_t j):
    return <object>(PyList_GET_ITEM(sentence, j) if is_list else PyTuple_GET_ITEM(sentence, j))


def encode_sentences(list sentences, dict index, Py_ssize_t max_sentence_length):
    """The ids of the tokens found in ``index`` and the starts of the sentences they form.

    Parameters
    ----------
    sentences : list of iterables
        Sentences of hashable tokens (a str sentence is its characters).
    index : dict
        Token -> id, an int in [0, 2**31); tokens missing from it are dropped.
    max_sentence_length : int
        At least 1: a sentence's kept tokens are cut into pieces of this many, the rest in
        its last piece; a sentence with none kept has no piece.

    Returns
    -------
    words : ndarray of int32
    starts : ndarray of int64
        Piece ``s`` is ``words[starts[s]:starts[s + 1]]``.
    """
    cdef Py_ssize_t total = 0, s, j, n_kept, k = 0, p = 0
    cdef object sentence, token
    cdef PyObject* value
    cdef long word_id
    cdef bint is_list
    if max_sentence_length < 1:
        raise ValueError("max_sentence_length must be at least 1")
    sentences = _sequences(sentences)
    for sentence in sentences:
        total += _size(sentence, PyList_CheckExact(sentence))
    words_arr = np.empty(total, dtype=np.int32)
    starts_arr = np.empty(len(sentences) + total // max_sentence_length + 2, dtype=np.int64)
    cdef int32_t[::1] words = words_arr
    cdef int64_t[::1] starts = starts_arr
    starts[0] = 0
    for sentence in sentences:
        is_list = PyList_CheckExact(sentence)
        n_kept = 0
        j = 0
        while j < _size(sentence, is_list):
            token = _token(sentence, is_list, j)
            j += 1
            value = PyDict_GetItemWithError(index, token)   # a borrowed reference
            if value == NULL:
                continue   # not in the vocabulary (an unhashable token raised instead)
            word_id = PyLong_AsLong(<object>value)
            if word_id < 0 or word_id > 2147483647:
                raise ValueError(f"the id of {token!r} is {word_id}, not in [0, 2**31)")
            if k == total:
                raise RuntimeError("the sentences changed while they were read")
            words[k] = <int32_t>word_id
            k += 1
            n_kept += 1
            if n_kept == max_sentence_length:
                p += 1
                starts[p] = k
                n_kept = 0
        if n_kept:
            p += 1
            starts[p] = k
    return words_arr[:k].copy(), starts_arr[:p + 1].copy()


def count_tokens(list sentences, dict slots, counts):
    """Add the tokens of ``sentences`` (a list of iterables of hashable tokens) to a count:
    ``slots`` maps each token seen to its slot, in order of first occurrence, and ``counts``
    (int64, 1-D, not empty) holds each slot's count. Returns ``counts``, or a larger copy when
    it ran out of room."""
    cdef Py_ssize_t j, slot
    cdef object sentence, token
    cdef PyObject* value
    cdef bint is_list
    cdef int64_t[::1] view = counts
    for sentence in _sequences(sentences):
        is_list = PyList_CheckExact(sentence)
        j = 0
        while j < _size(sentence, is_list):
            token = _token(sentence, is_list, j)
            j += 1
            value = PyDict_GetItemWithError(slots, token)   # borrowed
            if value != NULL:
                slot = PyLong_AsLong(<object>value)
            else:
                slot = len(slots)
                if slot == view.shape[0]:
                    counts = np.concatenate((counts, np.zeros(slot, dtype=np.int64)))
                    view = counts
                PyDict_SetItem(slots, token, slot)
            view[slot] += 1
    return counts
