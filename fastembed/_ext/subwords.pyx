"""Compiled kernel of fastText's subwords: the character n-grams of words, hashed into buckets.

fastText (``src/dictionary.cc``) represents a word ``w`` by the row of ``w`` itself (when it
is in the vocabulary) and the rows of the character n-grams of ``"<" + w + ">"``: for every
start that is not a UTF-8 continuation byte, the n-grams of ``minn`` to ``maxn`` characters
(a character being a start byte and its continuation bytes), but for the single ``<`` and
``>``. An n-gram's row is ``nwords + hash(ngram) % bucket``, with ``hash`` the 32-bit FNV-1a
of its bytes, each byte first sign-extended (``uint32_t(int8_t(c))``): bytes from 0x80 on
hash as fastText hashes them, not as a textbook FNV-1a would.

``fastembed.subwords`` validates and calls these; they trust their arguments.
"""
from libc.stdint cimport int8_t, int64_t, uint8_t, uint32_t

import numpy as np


cdef inline uint32_t _hash(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """fastText's Dictionary::hash: FNV-1a over the sign-extended bytes."""
    cdef uint32_t h = 2166136261U
    cdef Py_ssize_t i
    for i in range(n):
        h = h ^ <uint32_t><int8_t>s[i]
        h = h * 16777619U
    return h


cdef Py_ssize_t _ngrams(const uint8_t* w, Py_ssize_t n, int minn, int maxn, uint32_t bucket,
                        int64_t base, int64_t* out) noexcept nogil:
    """The rows of the n-grams of w[:n] (fastText's computeSubwords), written to out unless it
    is NULL; returns how many."""
    cdef Py_ssize_t i, j, count = 0
    cdef int k
    if bucket == 0 or maxn < 1:
        return 0
    for i in range(n):
        if (w[i] & 0xC0) == 0x80:
            continue   # inside a character
        j = i
        k = 1
        while j < n and k <= maxn:
            j += 1
            while j < n and (w[j] & 0xC0) == 0x80:
                j += 1
            if k >= minn and not (k == 1 and (i == 0 or j == n)):
                if out != NULL:
                    out[count] = base + <int64_t>(_hash(w + i, j - i) % bucket)
                count += 1
            k += 1
    return count


def fasttext_hash(const uint8_t[::1] data):
    """fastText's hash of a byte string (see the module docstring)."""
    return int(_hash(&data[0], data.shape[0]) if data.shape[0] else 2166136261U)


def subword_rows(const uint8_t[::1] text,      # IN the words, each as the UTF-8 of "<word>"
                 const int64_t[::1] offsets,   # IN word i is text[offsets[i]:offsets[i + 1]]
                 const int64_t[::1] first,     # IN a row to put first (the word's own), or -1
                 int minn, int maxn, int64_t bucket, int64_t base):
    """The rows of each word: ``first[i]`` when not -1, then ``base + hash % bucket`` for
    each of its n-grams. Returns ``(rows, starts)``: word i's rows are
    ``rows[starts[i]:starts[i + 1]]`` (int64)."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    cdef int64_t total = 0
    starts_arr = np.zeros(n + 1, dtype=np.int64)
    cdef int64_t[::1] starts = starts_arr
    cdef int64_t[::1] rows
    cdef const uint8_t* t = &text[0] if text.shape[0] else NULL
    with nogil:
        for i in range(n):
            total += (first[i] >= 0) + _ngrams(t + offsets[i], offsets[i + 1] - offsets[i],
                                               minn, maxn, <uint32_t>bucket, base, NULL)
            starts[i + 1] = total
    rows_arr = np.empty(total, dtype=np.int64)
    rows = rows_arr
    with nogil:
        for i in range(n):
            total = starts[i]
            if first[i] >= 0:
                rows[total] = first[i]
                total += 1
            if starts[i + 1] > total:
                _ngrams(t + offsets[i], offsets[i + 1] - offsets[i], minn, maxn,
                        <uint32_t>bucket, base, &rows[total])
    return rows_arr, starts_arr
