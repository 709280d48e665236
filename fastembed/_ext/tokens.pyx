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
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItemWithError
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

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


cdef inline void _append(int32_t* words, int64_t* starts, Py_ssize_t* k, Py_ssize_t* p,
                         Py_ssize_t* n_kept, int32_t word_id,
                         Py_ssize_t max_sentence_length) noexcept nogil:
    """Append a kept word: ``words[k] = word_id``; the piece ends after
    ``max_sentence_length`` words (``starts[p]`` is where each ends)."""
    words[k[0]] = word_id
    k[0] += 1
    n_kept[0] += 1
    if n_kept[0] == max_sentence_length:
        p[0] += 1
        starts[p[0]] = k[0]
        n_kept[0] = 0


cdef inline void _end_sentence(int64_t* starts, Py_ssize_t k, Py_ssize_t* p,
                               Py_ssize_t n_kept) noexcept nogil:
    """A sentence ends: its last piece, unless it has no word."""
    if n_kept:
        p[0] += 1
        starts[p[0]] = k


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
    words_arr = np.empty(total + 1, dtype=np.int32)   # (never empty: &words[0])
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
            _append(&words[0], &starts[0], &k, &p, &n_kept, <int32_t>word_id,
                    max_sentence_length)
        _end_sentence(&starts[0], k, &p, n_kept)
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


# fastText's end-of-line token (fastembed.subwords.EOS), as count_file(eos=True) adds it
cdef const unsigned char* EOS_TOKEN = <const unsigned char*>b"</s>"


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    """fastText's separators within a line: space, tab, vertical tab, form feed, carriage
    return, NUL."""
    return c == 32 or c == 9 or c == 11 or c == 12 or c == 13 or c == 0


cdef struct TokenTable:
    # the distinct tokens, in order of first occurrence: their bytes one after the other in
    # `arena`, and for each (a slot) its offset, length, hash and count
    char* arena
    Py_ssize_t arena_len, arena_cap
    int64_t* offs
    int64_t* lens
    uint64_t* hashes
    int64_t* counts
    Py_ssize_t n, cap
    # open addressing: the slot of each bucket, -1 when empty; at most half full
    int32_t* buckets
    Py_ssize_t mask


cdef inline uint64_t _hash_bytes(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """FNV-1a over the bytes, then splitmix64's finaliser, so that the low bits (the bucket)
    depend on every byte."""
    cdef uint64_t h = 0xCBF29CE484222325ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * <uint64_t>0x100000001B3ULL
    h = (h ^ (h >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    h = (h ^ (h >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return h ^ (h >> 31)


cdef int _grow(void** ptr, Py_ssize_t n_items, Py_ssize_t item) noexcept nogil:
    """realloc ``*ptr`` to ``n_items`` items of ``item`` bytes; -1 (and ``*ptr`` kept) when
    out of memory."""
    cdef void* q = realloc(ptr[0], <size_t>(n_items * item))
    if q == NULL:
        return -1
    ptr[0] = q
    return 0


cdef int _rehash(TokenTable* t, Py_ssize_t n_buckets) noexcept nogil:
    """Rebuild the buckets at ``n_buckets`` (a power of two) from the slots' hashes."""
    cdef int32_t* b = <int32_t*>malloc(<size_t>n_buckets * sizeof(int32_t))
    cdef Py_ssize_t k, i
    if b == NULL:
        return -1
    memset(b, 0xFF, <size_t>n_buckets * sizeof(int32_t))
    for k in range(t.n):
        i = <Py_ssize_t>(t.hashes[k] & <uint64_t>(n_buckets - 1))
        while b[i] >= 0:
            i = (i + 1) & (n_buckets - 1)
        b[i] = <int32_t>k
    free(t.buckets)
    t.buckets = b
    t.mask = n_buckets - 1
    return 0


cdef Py_ssize_t _slot(TokenTable* t, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """The slot of token ``p[:n]``, a new one (count 0) for a token not seen yet; -1 when out
    of memory, -2 past 2**31 - 1 distinct tokens."""
    cdef uint64_t h = _hash_bytes(p, n)
    cdef Py_ssize_t i = <Py_ssize_t>(h & <uint64_t>t.mask), k
    while t.buckets[i] >= 0:
        k = t.buckets[i]
        if (t.hashes[k] == h and t.lens[k] == n
                and memcmp(t.arena + t.offs[k], p, <size_t>n) == 0):
            return k
        i = (i + 1) & t.mask
    if t.n == 2147483647:
        return -2
    if t.n == t.cap:
        t.cap *= 2
        if (_grow(<void**>&t.offs, t.cap, sizeof(int64_t)) < 0
                or _grow(<void**>&t.lens, t.cap, sizeof(int64_t)) < 0
                or _grow(<void**>&t.hashes, t.cap, sizeof(uint64_t)) < 0
                or _grow(<void**>&t.counts, t.cap, sizeof(int64_t)) < 0):
            t.cap //= 2   # every array holds at least the old capacity
            return -1
    if t.arena_len + n > t.arena_cap:
        while t.arena_len + n > t.arena_cap:
            t.arena_cap *= 2
        if _grow(<void**>&t.arena, t.arena_cap, 1) < 0:
            return -1
    memcpy(t.arena + t.arena_len, p, <size_t>n)
    k = t.n
    t.offs[k] = t.arena_len
    t.lens[k] = n
    t.hashes[k] = h
    t.counts[k] = 0
    t.arena_len += n
    t.n += 1
    t.buckets[i] = <int32_t>k
    if 2 * t.n > t.mask + 1 and _rehash(t, 2 * (t.mask + 1)) < 0:
        return -1
    return k


cdef inline Py_ssize_t _add_token(TokenTable* t, const unsigned char* p, Py_ssize_t n,
                                  int32_t* slots, Py_ssize_t* n_slots) noexcept nogil:
    """Count one occurrence of token ``p[:n]`` and append its slot to ``slots``; the slot, or
    _slot's negative error."""
    cdef Py_ssize_t slot = _slot(t, p, n)
    if slot >= 0:
        t.counts[slot] += 1
        slots[n_slots[0]] = <int32_t>slot
        n_slots[0] += 1
    return slot


def count_file(f, Py_ssize_t chunk_bytes=1 << 24, bint eos=False):
    """Read a file of one sentence per line, tokens separated by whitespace, in one pass.

    Parameters
    ----------
    f : binary file object
        Read with ``f.read(chunk_bytes)`` until it returns ``b""``.
    chunk_bytes : int
        Bytes per read (at least 1); a token or line may span reads.
    eos : bool
        End every line that has a token with the token ``</s>``, as fastText reads a line
        (a ``</s>`` in the text is the same token).

    Returns
    -------
    tokens : list of bytes
        The distinct tokens, in order of first occurrence.
    counts : ndarray of int64
        Each one's count.
    slots : ndarray of int32
        Every token of the file, as its index in ``tokens``, in file order.
    lengths : ndarray of int64
        The number of tokens of each line that has any, in file order.

    Lines end at ``\\n`` only; within a line the separators are fastText's (space, ``\\t``,
    ``\\v``, ``\\f``, ``\\r`` and NUL), so that ``\\r\\n`` line ends work too. The distinct
    tokens live in a C hash table (FNV-1a, open addressing) while the file is read: a token
    costs a hash and a comparison, not a bytes object and a dict lookup (SpamAssassin's 3.1 M
    tokens: 0.4 s with a dict).
    """
    cdef TokenTable t
    cdef bytes chunk, carry = b""
    cdef object got
    cdef const unsigned char* p
    cdef Py_ssize_t n, i, start, n_slots = 0, n_lines = 0, line_tokens = 0, slot = 0, k, room
    cdef bint at_end = False
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
    memset(&t, 0, sizeof(TokenTable))
    t.cap = 1024
    t.arena_cap = 8192
    t.offs = <int64_t*>malloc(t.cap * sizeof(int64_t))
    t.lens = <int64_t*>malloc(t.cap * sizeof(int64_t))
    t.hashes = <uint64_t*>malloc(t.cap * sizeof(uint64_t))
    t.counts = <int64_t*>malloc(t.cap * sizeof(int64_t))
    t.arena = <char*>malloc(t.arena_cap)
    slots = np.empty(1 << 16, dtype=np.int32)
    lengths = np.empty(1 << 12, dtype=np.int64)
    cdef int32_t[::1] s_view = slots
    cdef int64_t[::1] l_view = lengths
    cdef int64_t[::1] c_out
    try:
        if (t.offs == NULL or t.lens == NULL or t.hashes == NULL or t.counts == NULL
                or t.arena == NULL or _rehash(&t, 2048) < 0):
            raise MemoryError()
        while not at_end:
            got = f.read(chunk_bytes)
            if not isinstance(got, bytes):
                raise TypeError(f"the file must be opened in binary mode: read() gave "
                                f"{type(got).__name__}")
            chunk = got
            if len(chunk) == 0:
                at_end = True
                chunk = carry + b"\n"   # the last line, ended
            elif carry:
                chunk = carry + chunk
            p = <const unsigned char*>(<char*>chunk)
            n = len(chunk)
            # only whole tokens are taken: the bytes after the last separator wait for the
            # next read
            while n > 0 and not (_is_space(p[n - 1]) or p[n - 1] == 10):
                n -= 1
            carry = chunk[n:]
            # room for every token and line end of this chunk (at most one per two bytes; and
            # with eos, one more per line: at most one per byte)
            room = (n if eos else n // 2) + 1
            if n_slots + room > s_view.shape[0]:
                slots = np.concatenate((slots, np.empty(max(s_view.shape[0], room),
                                                        dtype=np.int32)))
                s_view = slots
            if n_lines + n // 2 + 1 > l_view.shape[0]:
                lengths = np.concatenate((lengths, np.empty(max(l_view.shape[0], n // 2 + 1),
                                                            dtype=np.int64)))
                l_view = lengths
            i = 0
            with nogil:
                while i < n:
                    if p[i] == 10:
                        if line_tokens and eos:
                            slot = _add_token(&t, EOS_TOKEN, 4, &s_view[0], &n_slots)
                            if slot < 0:
                                break
                            line_tokens += 1
                        if line_tokens:
                            l_view[n_lines] = line_tokens
                            n_lines += 1
                            line_tokens = 0
                        i += 1
                        continue
                    if _is_space(p[i]):
                        i += 1
                        continue
                    start = i
                    while i < n and not (p[i] == 10 or _is_space(p[i])):
                        i += 1
                    slot = _add_token(&t, p + start, i - start, &s_view[0], &n_slots)
                    if slot < 0:
                        break
                    line_tokens += 1
            if slot == -1:
                raise MemoryError()
            if slot == -2:
                raise ValueError("the file holds more than 2**31 - 1 distinct tokens")
        tokens = [PyBytes_FromStringAndSize(t.arena + t.offs[k], t.lens[k])
                  for k in range(t.n)]
        counts = np.empty(t.n, dtype=np.int64)
        if t.n:
            c_out = counts
            memcpy(&c_out[0], t.counts, <size_t>t.n * sizeof(int64_t))
    finally:
        free(t.arena)
        free(t.offs)
        free(t.lens)
        free(t.hashes)
        free(t.counts)
        free(t.buckets)
    return tokens, counts, slots[:n_slots].copy(), lengths[:n_lines].copy()


def encode_slots(const int32_t[::1] slots, const int64_t[::1] lengths,
                 const int32_t[::1] ids, Py_ssize_t max_sentence_length):
    """``encode_sentences`` for a file read by ``count_file``: token ``k`` is
    ``ids[slots[k]]``, dropped when negative; the lines are ``lengths`` tokens each.

    Returns ``(words, starts)`` as ``encode_sentences`` does: a line's kept tokens are cut
    into pieces of ``max_sentence_length``, and a line with none kept has no piece.
    """
    cdef Py_ssize_t total = slots.shape[0], line, j, k = 0, p = 0, n_kept, pos = 0
    cdef int32_t word_id
    if max_sentence_length < 1:
        raise ValueError("max_sentence_length must be at least 1")
    for line in range(lengths.shape[0]):
        if lengths[line] < 0:
            raise ValueError("lengths must be non-negative")
        pos += lengths[line]
    if pos != total:
        raise ValueError(f"lengths sum to {pos}, not to the {total} slots")
    words_arr = np.empty(total + 1, dtype=np.int32)   # (never empty: &words[0])
    starts_arr = np.empty(lengths.shape[0] + total // max_sentence_length + 2, dtype=np.int64)
    cdef int32_t[::1] words = words_arr
    cdef int64_t[::1] starts = starts_arr
    starts[0] = 0
    pos = 0
    with nogil:
        for line in range(lengths.shape[0]):
            n_kept = 0
            for j in range(pos, pos + lengths[line]):
                if slots[j] < 0 or slots[j] >= ids.shape[0]:
                    with gil:
                        raise IndexError(f"slot {slots[j]} at position {j} is not in "
                                         f"[0, {ids.shape[0]})")
                word_id = ids[slots[j]]
                if word_id >= 0:
                    _append(&words[0], &starts[0], &k, &p, &n_kept, word_id,
                            max_sentence_length)
            _end_sentence(&starts[0], k, &p, n_kept)
            pos += lengths[line]
    return words_arr[:k].copy(), starts_arr[:p + 1].copy()
