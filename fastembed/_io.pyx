"""Compiled parsers of word-vector files (called by ``fastembed.io``, which validates).

Text (word2vec / GloVe): ``parse_text_block`` takes a block of whole lines, cuts it into
``n_parts`` pieces at line boundaries, counts each piece's lines in parallel, then parses the
pieces in parallel, each thread writing its rows straight into the output table at their
final place. Numbers are parsed by ``_textparse.h`` (bitwise what ``np.float32(token)``
gives). Errors are collected per piece and the earliest line wins, so the error reported
does not depend on the thread count.

Binary (word2vec.c's format): ``parse_binary_block`` walks the rows one after the other
(each row's length depends on its word), copying each vector.

Words are decoded by ``decode_words`` with the GIL held, straight from the block's bytes.
"""
from cython.parallel cimport prange
from cpython.unicode cimport PyUnicode_Decode, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memchr, memcpy

from ._typedefs cimport floating

import numpy as np

cdef extern from "_textparse.h" nogil:
    void fe_textparse_init()
    int fe_parse_double(const char *p, const char *end, double *out)
    int fe_parse_line(const char *base, const char *p, const char *end, int64_t dim,
                      void *out, int out_double, int64_t *word_off, int32_t *word_len,
                      int64_t *bad_off, int32_t *bad_len)
    enum:
        FE_OK
        FE_ERR_EMPTY
        FE_ERR_FEW
        FE_ERR_MANY
        FE_ERR_NUMBER
        FE_ERR_MEMORY

fe_textparse_init()

ERRORS = {
    FE_ERR_EMPTY: "an empty line",
    FE_ERR_FEW: "fewer values than the vector size",
    FE_ERR_MANY: "more values than the vector size",
    FE_ERR_NUMBER: "not a number",
    FE_ERR_MEMORY: "out of memory",
}


def parse_double(bytes token):
    """Parse one token as the file parser does: a float, or ValueError (for tests)."""
    cdef double v
    cdef const char* p = token
    if fe_parse_double(p, p + len(token), &v):
        raise ValueError(f"{token!r} is not a number")
    return v


cdef inline int64_t _count_lines(const char* p, const char* end) noexcept nogil:
    cdef int64_t n = 0
    cdef const char* q
    while p < end:
        q = <const char*>memchr(p, b'\n', end - p)
        if q == NULL:
            return n + 1  # a last line without its newline
        n += 1
        p = q + 1
    return n


def parse_text_block(const unsigned char[::1] buf,     # IN whole lines
                     Py_ssize_t n,                      # bytes of buf to use
                     floating[:, ::1] out,              # OUT rows [row0, row0 + lines)
                     int64_t row0,
                     int64_t max_rows,                  # parse only lines with row < max_rows
                     int64_t[::1] word_off,             # OUT per line of the block
                     int32_t[::1] word_len,             # OUT
                     int n_parts,
                     int n_threads):
    """Parse the lines of buf[:n] into out[row0:]; see the module docstring.

    Returns ``(lines, error, error_line, bad_offset, bad_length)``: ``lines`` counts every line
    of the block (parsed or not); ``error`` is 0 or an ``ERRORS`` key for the earliest bad
    line among those parsed (``error_line`` is its index within the block).
    """
    cdef const char* base = <const char*>&buf[0] if n > 0 else NULL
    cdef int64_t dim = out.shape[1]
    cdef int64_t k, i, total, limit
    cdef int64_t[::1] starts = np.zeros(n_parts + 1, dtype=np.int64)
    cdef int64_t[::1] counts = np.zeros(n_parts, dtype=np.int64)
    cdef int64_t[::1] first_row = np.zeros(n_parts + 1, dtype=np.int64)
    cdef int32_t[::1] err = np.zeros(n_parts, dtype=np.int32)
    cdef int64_t[::1] err_line = np.zeros(n_parts, dtype=np.int64)
    cdef int64_t[::1] bad_off = np.zeros(n_parts, dtype=np.int64)
    cdef int32_t[::1] bad_len = np.zeros(n_parts, dtype=np.int32)
    cdef const char* q
    cdef int64_t s
    if n <= 0:
        return 0, 0, 0, 0, 0
    # piece k starts after the first newline at or after k n / n_parts
    starts[0] = 0
    for k in range(1, n_parts):
        s = (k * n) // n_parts
        if s <= starts[k - 1]:
            starts[k] = starts[k - 1]
            continue
        q = <const char*>memchr(base + s - 1, b'\n', n - (s - 1))
        starts[k] = n if q == NULL else (q - base) + 1
    starts[n_parts] = n
    with nogil:
        for k in prange(n_parts, schedule='static', chunksize=1, num_threads=n_threads):
            counts[k] = _count_lines(base + starts[k], base + starts[k + 1])
    for k in range(n_parts):
        first_row[k + 1] = first_row[k] + counts[k]
    total = first_row[n_parts]
    limit = max_rows - row0  # lines of this block to parse
    if limit > total:
        limit = total
    with nogil:
        for k in prange(n_parts, schedule='static', chunksize=1, num_threads=n_threads):
            _parse_piece(base, starts[k], starts[k + 1], first_row[k], limit, out, row0,
                         word_off, word_len, &err[k], &err_line[k], &bad_off[k], &bad_len[k])
    for k in range(n_parts):  # pieces in order: the first error is the earliest line's
        if err[k]:
            return total, err[k], err_line[k], bad_off[k], bad_len[k]
    return total, 0, 0, 0, 0


cdef void _parse_piece(const char* base, int64_t lo, int64_t hi, int64_t line0, int64_t limit,
                       floating[:, ::1] out, int64_t row0, int64_t[::1] word_off,
                       int32_t[::1] word_len, int32_t* err, int64_t* err_line,
                       int64_t* bad_off, int32_t* bad_len) noexcept nogil:
    """Parse lines [lo, hi) of the block, which are lines line0, line0 + 1, ... of it."""
    cdef const char* p = base + lo
    cdef const char* end = base + hi
    cdef const char* q
    cdef const char* line_end
    cdef int64_t line = line0
    cdef int status
    cdef int64_t dim = out.shape[1]
    while p < end and line < limit:
        q = <const char*>memchr(p, b'\n', end - p)
        line_end = end if q == NULL else q
        status = fe_parse_line(base, p, line_end, dim, &out[row0 + line, 0],
                               floating is double, &word_off[line], &word_len[line],
                               bad_off, bad_len)
        if status:
            err[0] = status
            err_line[0] = line
            return
        line += 1
        p = line_end + 1


def parse_binary_block(const unsigned char[::1] buf,    # IN
                       Py_ssize_t n,                     # bytes of buf to use
                       bint final,                       # no more data after buf[:n]
                       floating[:, ::1] out,             # OUT rows [row0, ...)
                       int64_t row0,
                       int64_t max_rows,
                       int64_t[::1] word_off,            # OUT per row of the block
                       int32_t[::1] word_len):           # OUT
    """Read rows of word2vec's binary format from buf[:n] into out[row0:max_rows].

    A row is: newlines to skip, the word's bytes, one space, then dim little-endian float32.
    Returns ``(rows, consumed, status)``: ``status`` 0 = more data needed (or done), 1 = the
    data end inside a row (truncated file, when ``final``), 2 = a row without a word.
    """
    cdef const char* base = <const char*>&buf[0] if n > 0 else NULL
    cdef int64_t dim = out.shape[1]
    cdef int64_t vec_bytes = 4 * dim
    cdef int64_t pos = 0, rows = 0, w, j
    cdef const char* sp
    cdef float v
    cdef int status = 0
    with nogil:
        while row0 + rows < max_rows:
            while pos < n and (base[pos] == b'\n' or base[pos] == b'\r'):
                pos += 1
            if pos >= n:
                break
            sp = <const char*>memchr(base + pos, b' ', n - pos)
            if sp == NULL or (sp - base) + 1 + vec_bytes > n:
                if final:
                    status = 1
                break
            w = (sp - base) - pos
            if w == 0:
                status = 2
                break
            word_off[rows] = pos
            word_len[rows] = <int32_t>w
            if floating is float:
                memcpy(&out[row0 + rows, 0], sp + 1, vec_bytes)
            else:
                for j in range(dim):
                    memcpy(&v, sp + 1 + 4 * j, 4)
                    out[row0 + rows, j] = v
            pos = (sp - base) + 1 + vec_bytes
            rows += 1
    return rows, pos, status


def decode_words(const unsigned char[::1] buf, const int64_t[::1] word_off,
                 const int32_t[::1] word_len, Py_ssize_t count, str encoding, str errors,
                 list words, dict index, list duplicates):
    """Append the first ``count`` words of a block to ``words`` and to ``index`` (word ->
    row, the first row of a word that repeats; the repeated rows go to ``duplicates``).

    Returns -1, or the index of the first word that does not decode (strict errors).
    """
    cdef Py_ssize_t i, row
    cdef const char* base
    cdef bint utf8 = encoding.lower().replace("-", "").replace("_", "") == "utf8"
    cdef bytes enc = encoding.encode()
    cdef bytes err = errors.encode()
    cdef object word, first, position
    if count == 0:
        return -1
    base = <const char*>&buf[0]
    for i in range(count):
        try:
            if utf8:
                word = PyUnicode_DecodeUTF8(base + word_off[i], word_len[i], err)
            else:
                word = PyUnicode_Decode(base + word_off[i], word_len[i], enc, err)
        except UnicodeDecodeError:
            return i
        row = len(words)
        position = row
        first = index.setdefault(word, position)
        if first is not position:
            duplicates.append(row)
        words.append(word)
    return -1
