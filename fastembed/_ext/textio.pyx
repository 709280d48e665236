"""Compiled parsers of word-vector files (called by ``fastembed.io``, which validates).

Text (word2vec / GloVe): ``parse_text_block`` takes a block of whole lines, cuts it into
``n_parts`` pieces at line boundaries, counts each piece's lines in parallel, then parses the
pieces in parallel, each thread writing its rows straight into the output table at their
final place. Numbers are parsed by ``textparse.h`` (bitwise what ``np.float32(token)``
gives). Errors are collected per piece and the earliest line wins, so the error reported
does not depend on the thread count. Its words are decoded by ``decode_words`` with the GIL
held, straight from the block's bytes.

Binary (word2vec.c's format): ``read_binary`` runs a two-stage pipeline. A worker thread
reads the file, finds the rows (each row's length depends on its word, so they are found one
after the other), copies each vector into the table and each word's bytes into an arena,
and publishes the rows block by block; meanwhile the calling thread, which holds the GIL,
makes the str, the list entry and the dict entry of each word published. Making those
400,000 objects is the longer stage, so the worker's part costs next to nothing in time. The
two threads share only a few counters (release stores, acquire loads); the table's bytes do
not depend on the thread count, and neither does the error reported (the earliest in the
file).

Words whose bytes are all ASCII, under an ASCII-compatible encoding, are copied straight into
a new str (``PyUnicode_New``), skipping the codec; the others go through the codec.

Writing text: ``format_rows`` makes the lines of a block of float32 rows, the rows'
numbers formatted in parallel by ``textformat.h`` (the characters of ``"%.9g"``), then
joined with their words in order.
"""
import codecs
import threading

cimport cython
from cython.parallel cimport prange
from cpython.dict cimport PyDict_SetDefault
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_FromSsize_t
from cpython.ref cimport PyObject
from cpython.unicode cimport (PyUnicode_DATA, PyUnicode_Decode, PyUnicode_DecodeUTF8,
                              PyUnicode_New)
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcpy, memmove, memset

from .typedefs cimport floating

import numpy as np

cdef extern from "textparse.h" nogil:
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


# -- words ----------------------------------------------------------------------------------

cdef enum:
    _CODEC = 0      # every word through the codec
    _UTF8 = 1       # ASCII words copied, the others through the UTF-8 decoder
    _ASCII_SAFE = 2 # ASCII words copied, the others through the codec (ascii, latin-1)


cdef int _decode_mode(str encoding) except -1:
    """How words are decoded under ``encoding`` (raises LookupError for an unknown codec)."""
    name = codecs.lookup(encoding).name
    if name == "utf-8":
        return _UTF8
    if name in ("ascii", "iso8859-1"):  # bytes < 0x80 are those characters
        return _ASCII_SAFE
    return _CODEC


cdef inline bint _is_ascii(const char* p, Py_ssize_t n) noexcept nogil:
    cdef unsigned char seen = 0
    cdef Py_ssize_t k
    for k in range(n):
        seen |= <unsigned char>p[k]
    return seen < 128


cdef inline bint _copyable(const char* p, Py_ssize_t n, int mode) noexcept nogil:
    """Whether a word's bytes can be copied straight into a str: ASCII, under an
    ASCII-compatible codec, and not one character (the codec returns CPython's cached one)."""
    return mode != _CODEC and n > 1 and _is_ascii(p, n)


cdef inline str _copied_word(const char* p, Py_ssize_t n):
    cdef str word = PyUnicode_New(n, 127)
    memcpy(PyUnicode_DATA(word), p, n)
    return word


cdef str _decoded_word(const char* p, Py_ssize_t n, int mode, const char* enc,
                       const char* err):
    """The str of a word's bytes through the codec; UnicodeDecodeError (strict errors)."""
    if mode == _UTF8:
        return PyUnicode_DecodeUTF8(p, n, err)
    return PyUnicode_Decode(p, n, enc, err)


cdef inline bint _add_word(str word, list words, dict index, list duplicates) except -1:
    """Append ``word`` (row ``len(words)``) to ``words`` and ``index``; a word already in
    ``index`` keeps its first row and this row goes to ``duplicates``. True for a repeat."""
    cdef Py_ssize_t row = len(words)
    cdef object position = PyLong_FromSsize_t(row)
    cdef PyObject* first = PyDict_SetDefault(index, word, position)  # one lookup
    words.append(word)
    if first != <PyObject*>position:
        duplicates.append(row)
        return True
    return False


def new_index():
    """An empty dict for the word -> row index that the readers fill.

    A dict whose keys are all str keeps CPython's compact "unicode" layout, which does not
    store the keys' hashes: each slot probed while inserting a new word costs a visit to
    the str already there, a cache miss in a table of 400,000 words. One non-str key, even
    deleted at once, switches the dict to the general layout for good, which compares the
    stored hashes instead: building a 400,000-word index takes about 25% less time, for 8
    more bytes per slot (about 14 bytes per word). Only speed and size depend on this; on
    any Python it is an ordinary dict.
    """
    cdef dict index = {None: None}
    del index[None]
    return index


def decode_words(const unsigned char[::1] buf, const int64_t[::1] word_off,
                 const int32_t[::1] word_len, Py_ssize_t count, str encoding, str errors,
                 list words, dict index, list duplicates):
    """Append the first ``count`` words of a block to ``words`` and to ``index`` (word ->
    row, the first row of a word that repeats; the repeated rows go to ``duplicates``).

    Returns -1, or the index of the first word that does not decode (strict errors).
    """
    cdef Py_ssize_t i
    cdef const char* base
    cdef int mode = _decode_mode(encoding)
    cdef bytes enc = encoding.encode()
    cdef bytes err = errors.encode()
    cdef str word
    if count == 0:
        return -1
    base = <const char*>&buf[0]
    for i in range(count):
        if _copyable(base + word_off[i], word_len[i], mode):
            word = _copied_word(base + word_off[i], word_len[i])
        else:  # the try block only here: entering one costs a save of the exception state
            try:
                word = _decoded_word(base + word_off[i], word_len[i], mode, enc, err)
            except UnicodeDecodeError:
                return i
        _add_word(word, words, index, duplicates)
    return -1


# -- writing text --------------------------------------------------------------------------

cdef extern from "textformat.h" nogil:
    int FE_F32_TEXT_MAX
    int fe_format_f32(float x, char* buf)
    int fe_format_f32_printf(float x, char* buf)


def format_f32(float x, bint printf=False):
    """``"%.9g" % x`` for a float32, as ``format_rows`` writes it; ``printf``: as builds
    without 128-bit integers write a finite nonzero x, through snprintf (for the tests)."""
    cdef char buf[32]
    cdef int n = fe_format_f32_printf(x, buf) if printf else fe_format_f32(x, buf)
    return buf[:n].decode("ascii")


def format_rows(const float[:, ::1] table,        # IN (V, D)
                const unsigned char[::1] words,    # IN the words' UTF-8 bytes, one after another
                const int64_t[::1] word_off,       # IN (V + 1,): word i is words[off[i]:off[i+1]]
                Py_ssize_t lo, Py_ssize_t hi, int n_threads):
    """The lines of rows [lo, hi) in the word2vec text format, as bytes: each row's word, a
    space, its numbers as ``"%.9g"`` separated by spaces, a newline.

    The numbers of the rows are formatted in parallel, each row into its own slot of a
    scratch buffer, then the lines are joined in row order: the bytes do not depend on
    ``n_threads``.
    """
    cdef Py_ssize_t d = table.shape[1]
    cdef Py_ssize_t n = hi - lo
    cdef Py_ssize_t stride = d * (FE_F32_TEXT_MAX + 1) + 1
    cdef Py_ssize_t r, c, k, total = 0, pos = 0, w
    cdef char* p
    if not (0 <= lo <= hi <= table.shape[0] and word_off.shape[0] > hi):
        raise IndexError(f"rows [{lo}, {hi}) of a table of {table.shape[0]} rows with "
                         f"{word_off.shape[0] - 1} words")
    if n == 0:
        return b""
    cdef char* scratch = <char*>malloc(n * stride)
    cdef Py_ssize_t* lens = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
    if scratch == NULL or lens == NULL:
        free(scratch)
        free(lens)
        raise MemoryError(f"no memory to format {n} rows of {d} numbers")
    try:
        with nogil:
            for r in prange(n, schedule="static", num_threads=n_threads):
                p = scratch + r * stride
                k = 0
                for c in range(d):
                    if c:
                        p[k] = 32   # a space
                        k = k + 1
                    k = k + fe_format_f32(table[lo + r, c], p + k)
                lens[r] = k
        for r in range(n):
            total += (word_off[lo + r + 1] - word_off[lo + r]) + 1 + lens[r] + 1
        out = PyBytes_FromStringAndSize(NULL, total)
        p = PyBytes_AS_STRING(out)
        for r in range(n):
            w = word_off[lo + r + 1] - word_off[lo + r]
            if w:
                memcpy(p + pos, &words[word_off[lo + r]], w)
            pos += w
            p[pos] = 32
            pos += 1
            memcpy(p + pos, scratch + r * stride, lens[r])
            pos += lens[r]
            p[pos] = 10  # a newline
            pos += 1
        return out
    finally:
        free(scratch)
        free(lens)


# -- binary ---------------------------------------------------------------------------------

cdef extern from "binread.h" nogil:
    int64_t fe_read_full(int fd, char* p, int64_t n, int* err)
    void fe_copy_f32le(float* out, const char* src, int64_t n)
    void fe_copy_f32le_to_f64(double* out, const char* src, int64_t n)
    int64_t fe_load_acquire(int64_t* p)
    void fe_store_release(int64_t* p, int64_t v)
    void fe_nap()

# How read_binary ended (its first result).
cdef enum:
    _BIN_OK = 0          # all rows read; then the offset just after the last one
    _BIN_TRUNCATED = 1   # the file ends inside a row, or before the rows wanted
    _BIN_NO_WORD = 2     # a space where a word should start
    _BIN_READ_ERROR = 3  # the operating system's read failed (its errno; -1: out of memory)
    _BIN_BAD_WORD = 4    # a word that does not decode (then its offset and bytes)
    _BIN_DUPLICATE = 5   # a repeated word, with stop_at_duplicate (its row ends
                         # ``duplicates``)

BIN_OK = _BIN_OK
BIN_TRUNCATED = _BIN_TRUNCATED
BIN_NO_WORD = _BIN_NO_WORD
BIN_READ_ERROR = _BIN_READ_ERROR
BIN_BAD_WORD = _BIN_BAD_WORD
BIN_DUPLICATE = _BIN_DUPLICATE

cdef int64_t _ARENA_CHUNK = 1 << 20   # the words' bytes are kept in chunks of 1 MiB
cdef int64_t _FIRST_READ = 1 << 16    # bytes of the worker's first read


cdef struct _Reader:
    # set before the threads start, then only read
    int fd
    int64_t start           # file offset of the first row
    int64_t max_rows
    # per row, written by the worker; the calling thread reads the first `ready` entries
    const char** word_ptr   # the word's bytes (a copy, in the arena)
    int64_t* word_len
    int64_t* word_at        # the word's file offset
    # counters, each with one writer (fe_store_release) and one reader (fe_load_acquire)
    int64_t ready           # worker: rows whose entries and vectors are written
    int64_t bytes_read      # worker: for the progress bar
    int64_t done            # worker: 1 once it has finished; then status, err_no and where
    int64_t stop            # calling thread: 1 when it has found an error in the words
    # the worker's result
    int status
    int err_no
    int64_t where
    # the worker's memory: the read buffer and the arena of words
    char* buf
    int64_t cap
    char** chunks
    int64_t n_chunks
    int64_t chunks_cap
    char* arena
    int64_t arena_left


cdef char* _arena_alloc(_Reader* r, int64_t n) noexcept nogil:
    """n bytes that stay put until the reader is freed (the worker's; NULL: no memory)."""
    cdef void* p
    cdef int64_t size
    if n > r.arena_left:
        if r.n_chunks == r.chunks_cap:
            p = realloc(r.chunks, (2 * r.chunks_cap + 8) * sizeof(char*))
            if p == NULL:
                return NULL
            r.chunks = <char**>p
            r.chunks_cap = 2 * r.chunks_cap + 8
        size = n if n > _ARENA_CHUNK else _ARENA_CHUNK
        p = malloc(size)
        if p == NULL:
            return NULL
        r.chunks[r.n_chunks] = <char*>p
        r.n_chunks += 1
        r.arena = <char*>p
        r.arena_left = size
    p = r.arena
    r.arena += n
    r.arena_left -= n
    return <char*>p


cdef void _produce(_Reader* r, floating[:, ::1] out) noexcept nogil:
    """The worker: read the file, find the rows, copy each vector into ``out`` and each
    word's bytes into the arena; publish the rows block by block (``ready``), then ``done``.

    A row is: newlines to skip, the word's bytes, one space, then dim little-endian float32.
    A row longer than the buffer makes it grow (doubling) until the row fits.
    """
    cdef int64_t dim = out.shape[1]
    cdef int64_t vec_bytes = 4 * dim
    cdef int64_t offset = r.start    # file offset of buf[0]
    cdef int64_t filled = 0, pos = 0, row = 0, got, want, w
    cdef bint eof = False
    cdef int status = _BIN_OK
    cdef const char* sp
    cdef char* word
    cdef void* p
    while True:
        if fe_load_acquire(&r.stop):
            break
        if not eof and filled < r.cap:
            want = r.cap - filled
            if r.bytes_read == 0 and want > _FIRST_READ:
                want = _FIRST_READ  # a short first read: the calling thread starts sooner
            got = fe_read_full(r.fd, r.buf + filled, want, &r.err_no)
            if got < 0:
                status = _BIN_READ_ERROR
                pos = 0
                break
            filled += got
            eof = got < want
            fe_store_release(&r.bytes_read, r.bytes_read + got)
        pos = 0
        while row < r.max_rows:
            while pos < filled and (r.buf[pos] == b'\n' or r.buf[pos] == b'\r'):
                pos += 1
            if pos >= filled:
                break
            sp = <const char*>memchr(r.buf + pos, b' ', filled - pos)
            if sp == NULL or (sp - r.buf) + 1 + vec_bytes > filled:
                if eof:
                    status = _BIN_TRUNCATED
                break
            w = (sp - r.buf) - pos
            if w == 0:
                status = _BIN_NO_WORD
                break
            word = _arena_alloc(r, w)
            if word == NULL:
                status, r.err_no = _BIN_READ_ERROR, -1
                break
            memcpy(word, r.buf + pos, w)
            r.word_ptr[row] = word
            r.word_len[row] = w
            r.word_at[row] = offset + pos
            if floating is float:
                fe_copy_f32le(&out[row, 0], sp + 1, dim)
            else:
                fe_copy_f32le_to_f64(&out[row, 0], sp + 1, dim)
            pos = (sp - r.buf) + 1 + vec_bytes
            row += 1
        fe_store_release(&r.ready, row)  # the entries and vectors above are written
        if status != _BIN_OK or row == r.max_rows:
            break
        if eof:  # the file ends between rows, before the rows wanted
            status = _BIN_TRUNCATED
            break
        # keep the partial row, at the start of the buffer
        memmove(r.buf, r.buf + pos, filled - pos)
        offset += pos
        filled -= pos
        pos = 0
        if filled == r.cap:  # not one whole row in the full buffer
            p = realloc(r.buf, 2 * r.cap)
            if p == NULL:
                status, r.err_no = _BIN_READ_ERROR, -1
                break
            r.buf = <char*>p
            r.cap *= 2
    r.status = status
    r.where = offset + pos
    fe_store_release(&r.done, 1)  # status, err_no and where are written


cdef int64_t _wait_for_rows(_Reader* r, int64_t row, bint* done) noexcept nogil:
    """Wait until the worker has published more than ``row`` rows, or has finished."""
    cdef int64_t ready
    cdef int spins = 0
    while True:
        done[0] = fe_load_acquire(&r.done) != 0  # before `ready`: then `ready` is final
        ready = fe_load_acquire(&r.ready)
        if ready > row or done[0]:
            return ready
        spins += 1
        if spins > 100:
            fe_nap()


cdef int _consume(_Reader* r, int mode, const char* enc, const char* err, list words,
                  dict index, list duplicates, bint stop_at_duplicate, object progress,
                  int64_t* bad_row) except -1:
    """The calling thread, GIL held: the words of the rows the worker publishes, in order,
    into words, index and duplicates. Stops at a word that does not decode (its row in
    bad_row) or, with stop_at_duplicate, at a repeated word; then asks the worker to stop."""
    cdef int64_t row = 0, ready, shown = 0, now
    cdef bint done = False
    cdef str word
    while True:
        with nogil:
            ready = _wait_for_rows(r, row, &done)
        if progress is not None:
            now = fe_load_acquire(&r.bytes_read)
            if now > shown:
                progress(now - shown)
                shown = now
        while row < ready:
            if _copyable(r.word_ptr[row], r.word_len[row], mode):
                word = _copied_word(r.word_ptr[row], r.word_len[row])
            else:
                try:
                    word = _decoded_word(r.word_ptr[row], r.word_len[row], mode, enc, err)
                except UnicodeDecodeError:
                    bad_row[0] = row
                    fe_store_release(&r.stop, 1)
                    return 0
            if _add_word(word, words, index, duplicates) and stop_at_duplicate:
                fe_store_release(&r.stop, 1)
                return 0
            row += 1
        if done:
            return 0


cdef void _consume_or_stop(_Reader* r, int mode, const char* enc, const char* err,
                           list words, dict index, list duplicates, bint stop_at_duplicate,
                           object progress, int64_t* bad_row, list failure) noexcept:
    """_consume; an exception (MemoryError, one from ``progress``) goes to ``failure`` and
    stops the worker, to be raised once both threads have finished."""
    try:
        _consume(r, mode, enc, err, words, index, duplicates, stop_at_duplicate, progress,
                 bad_row)
    except BaseException as exc:
        fe_store_release(&r.stop, 1)
        failure.append(exc)


@cython.auto_pickle(False)  # holds a pointer into read_binary's frame: nothing to pickle
cdef class _Worker:
    """The worker's part of ``read_binary``, for a ``threading.Thread``: ``run`` holds the
    GIL only to start and to end."""
    cdef _Reader* reader
    cdef float[:, ::1] out32
    cdef double[:, ::1] out64
    cdef bint wide

    def run(self):
        with nogil:
            if self.wide:
                _produce(self.reader, self.out64)
            else:
                _produce(self.reader, self.out32)


def read_binary(int fd,                          # IN positioned at the first row
                int64_t start,                   # the file offset of that position
                floating[:, ::1] out,            # OUT one row per vector to read
                int64_t block_bytes,             # bytes read at a time
                str encoding, str errors,
                list words, dict index, list duplicates,   # OUT as decode_words fills them
                bint stop_at_duplicate,
                object progress,                 # None, or called with the bytes read
                int n_threads):
    """Read ``out.shape[0]`` rows of word2vec's binary format from ``fd`` into ``out`` and
    their words into ``words``, ``index`` and ``duplicates``; see the module docstring.

    With ``n_threads >= 2`` a worker thread reads the file and copies the vectors while the
    calling thread makes the Python objects of the words it has found; with 1 the worker's
    part runs first, then the words. Returns ``(status, where, detail)``, ``status`` one of
    the ``BIN_*`` values: ``where`` is the file offset just after the last row read
    (``BIN_OK``), of the end of the data where a row or the rows wanted are cut short
    (``BIN_TRUNCATED``), of the wordless row's space (``BIN_NO_WORD``), or of the word that
    does not decode (``BIN_BAD_WORD``, whose bytes are ``detail``); ``BIN_READ_ERROR`` gives
    the errno as ``detail`` (-1: out of memory). The rows before the error are in ``words``:
    the error reported is the first in the file, whatever the thread count.

    The worker is a plain thread (``threading``), not an OpenMP team: its work is not a loop
    to share out, and a finished OpenMP thread would spin at the region's end barrier,
    taking a core from the calling thread on a busy machine (measured: 8% slower there).
    """
    cdef int mode = _decode_mode(encoding)
    cdef bytes enc_b = encoding.encode()
    cdef bytes err_b = errors.encode()
    cdef const char* enc = enc_b
    cdef const char* err = err_b
    cdef int64_t k, bad_row = -1
    cdef int64_t n = out.shape[0]
    cdef list failure = []
    cdef _Worker worker = None
    cdef _Reader r
    memset(&r, 0, sizeof(r))
    r.fd = fd
    r.start = start
    r.max_rows = n
    r.cap = block_bytes if block_bytes > 0 else 1  # grows (doubling) to hold a longer row
    thread = None
    try:
        r.buf = <char*>malloc(r.cap)
        r.word_ptr = <const char**>malloc((n if n else 1) * sizeof(char*))
        r.word_len = <int64_t*>malloc((n if n else 1) * sizeof(int64_t))
        r.word_at = <int64_t*>malloc((n if n else 1) * sizeof(int64_t))
        if r.buf == NULL or r.word_ptr == NULL or r.word_len == NULL or r.word_at == NULL:
            raise MemoryError()
        if n_threads >= 2:
            worker = _Worker()
            worker.reader = &r
            if floating is float:
                worker.out32 = out
            else:
                worker.out64 = out
                worker.wide = True
            thread = threading.Thread(target=worker.run, name="fastembed-read-binary",
                                      daemon=True)
            thread.start()
        else:  # the worker's part first, then the words
            with nogil:
                _produce(&r, out)
        _consume_or_stop(&r, mode, enc, err, words, index, duplicates, stop_at_duplicate,
                         progress, &bad_row, failure)
        if thread is not None:
            thread.join()
        if failure:
            raise failure[0]
        if bad_row >= 0:
            return (_BIN_BAD_WORD, r.word_at[bad_row],
                    r.word_ptr[bad_row][:r.word_len[bad_row]])
        if stop_at_duplicate and duplicates:
            return _BIN_DUPLICATE, 0, None
        if r.status == _BIN_READ_ERROR:
            return _BIN_READ_ERROR, r.where, r.err_no
        return r.status, r.where, None
    finally:
        if thread is not None:
            # the worker uses r and its buffers until it ends: stop it, and wait for it even
            # through an interruption (KeyboardInterrupt in join), which is raised after
            fe_store_release(&r.stop, 1)
            interrupted = None
            while thread.is_alive():
                try:
                    thread.join()
                except BaseException as exc:
                    interrupted = exc
            if interrupted is not None:
                raise interrupted
        for k in range(r.n_chunks):
            free(r.chunks[k])
        free(r.chunks)
        free(r.buf)
        free(r.word_ptr)
        free(r.word_len)
        free(r.word_at)
