"""Reading and writing word vectors: word2vec text and binary files, GloVe files, .npy tables.

- word2vec text (gensim's and word2vec.c's): a header line ``<count> <dim>``, then one line
  per word, ``word v1 v2 ... v_dim``. GloVe files are the same without the header
  (``no_header=True``).
- word2vec binary: the header line, then per word its bytes, a space, ``dim`` little-endian
  float32 and a newline.
- ``save_npy`` / ``load_npy``: a .npy table and a vocabulary file beside it; the table can be
  memory-mapped, even for training in place.

Writes are atomic: the file is written under a temporary name in the same directory, flushed
to disk, then renamed over the target, so a crash never leaves a half-written file behind.
:func:`atomic_write` does it for any file.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from fastembed.io import load_word2vec, save_word2vec
>>> from fastembed.vectors import Vectors
>>> vectors = Vectors(["king", "queen"], np.array([[1, 0.5], [0.25, -2]], np.float32))
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "vectors.txt")
...     save_word2vec(path, vectors)
...     with open(path, encoding="utf-8") as f:
...         print(f.read(), end="")
...     again = load_word2vec(path)
2 2
king 1 0.5
queen 0.25 -2
>>> again.words, bool(np.array_equal(again.weight, vectors.weight))
(['king', 'queen'], True)
"""
from __future__ import annotations

import os
import struct

import numpy as np

from ._atomic import atomic_write, fsync_dir, write_temp
from ._ext import textio
from ._ext.threads import resolve_n_threads
from ._memory import aligned_empty
from ._validation import check_float_dtype, check_int
from ._words import utf8_joined
from .vectors import Vectors, vectors_from_checked

__all__ = ["save_word2vec", "load_word2vec", "save_npy", "load_npy", "load_fasttext",
           "save_fasttext", "atomic_write"]


def save_word2vec(path, vectors, words=None, *, binary=False):
    """Write vectors in the word2vec text (or binary) format, atomically.

    Parameters
    ----------
    path : str or path
    vectors : Vectors, or an array of shape (n, dim) together with ``words``
    words : list of str, optional
    binary : bool, default False
        word2vec.c's binary format: each row is the word, a space, ``dim`` little-endian
        float32 and a newline.

    Text floats are written with 9 significant digits for float32 tables and 17 for float64
    (``"%.9g"`` and ``"%.17g"``), enough for reading the file back to give the same values,
    bit for bit. Float32 rows are formatted in compiled code, in parallel, and written a
    block at a time.

    Raises
    ------
    ValueError
        A word that is empty or holds a space, tab or line break; nothing is written.

    See Also
    --------
    load_word2vec : reads both formats back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastembed.io import load_word2vec, save_word2vec
    >>> table = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "vectors.bin")
    ...     save_word2vec(path, table, ["a", "b"], binary=True)
    ...     print(os.path.getsize(path))     # "2 2\\n" + 2 x (word, space, 8 bytes, newline)
    ...     again = load_word2vec(path)      # the binary format is detected
    26
    >>> bool(np.array_equal(again.weight, table))
    True
    """
    if not isinstance(vectors, Vectors):
        vectors = Vectors(words, vectors)
    weight = vectors.weight
    for i, word in enumerate(vectors.words):
        if not word or any(c in _SEPARATORS for c in word):
            raise ValueError(f"word {i} ({word!r}) is empty or contains a space, tab or line "
                             f"break, which the word2vec format cannot hold")
    if binary:
        rows = np.ascontiguousarray(weight, dtype="<f4")
        with atomic_write(path, "wb") as f:
            f.write(f"{len(vectors)} {vectors.dim}\n".encode())
            for word, row in zip(vectors.words, rows):
                f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
        return
    if weight.dtype == np.float32:
        # Formatted in C, in parallel, a block of rows at a time: the characters of "%.9g"
        # (float64 tables keep Python's "%.17g", below)
        blob, word_off = utf8_joined(vectors.words)
        table = np.ascontiguousarray(weight)
        n_threads = resolve_n_threads(None)
        with atomic_write(path, "wb") as f:
            f.write(f"{len(vectors)} {vectors.dim}\n".encode())
            for lo in range(0, len(vectors), _TEXT_WRITE_ROWS):
                f.write(textio.format_rows(table, blob, word_off, lo,
                                           min(lo + _TEXT_WRITE_ROWS, len(vectors)), n_threads))
        return
    with atomic_write(path, "w") as f:
        f.write(f"{len(vectors)} {vectors.dim}\n")
        fmt = " ".join(["%.17g"] * vectors.dim)
        for word, row in zip(vectors.words, weight.tolist()):
            f.write(word + " " + fmt % tuple(row) + "\n")


# Rows formatted per call of textio.format_rows when writing text: about 11 MB of text (and
# 14 MB of scratch) at D = 100, so that a table of millions of rows never needs its whole
# text in memory.
_TEXT_WRITE_ROWS = 8192


def save_npy(path, vectors, words=None):
    """Save a table as ``path`` (a .npy file) and its words as ``path + ".vocab"``.

    Both are written atomically. :func:`load_npy` reads them back, and can memory-map the
    table, read-only or for training in place.

    Parameters
    ----------
    path : str or os.PathLike
        The .npy file to write; the words go to ``path + ".vocab"``, one per line.
    vectors : Vectors, or an array of shape (n, dim) together with ``words``
    words : list of str, optional

    Raises
    ------
    ValueError
        A word holding a line break; nothing is written.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastembed.io import load_npy, save_npy
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "table.npy")
    ...     save_npy(path, np.eye(2, dtype=np.float32), ["yes", "no"])
    ...     print(sorted(os.listdir(d)))
    ...     print(load_npy(path).words)
    ['table.npy', 'table.npy.vocab']
    ['yes', 'no']
    """
    if not isinstance(vectors, Vectors):
        vectors = Vectors(words, vectors)
    for i, word in enumerate(vectors.words):
        if "\n" in word or "\r" in word:
            raise ValueError(f"word {i} ({word!r}) contains a line break")
    path = os.fspath(path)
    vocab = path + ".vocab"
    directory = os.path.dirname(os.path.abspath(path))
    # Both files are written in full under temporary names first; then the vocabulary and the
    # table are renamed into place. Should the second rename fail, the old vocabulary is put
    # back, so that an old table is never left beside new words (or the reverse).
    table = np.ascontiguousarray(vectors.weight)
    table_tmp = write_temp(path, "wb", lambda f: np.save(f, table, allow_pickle=False))
    try:
        vocab_tmp = write_temp(vocab, "w",
                               lambda f: f.write("".join(w + "\n" for w in vectors.words)))
    except BaseException:
        os.unlink(table_tmp)
        raise
    backup = None
    try:
        if os.path.exists(vocab):
            backup = vocab + ".old"
            os.replace(vocab, backup)
        os.replace(vocab_tmp, vocab)
        try:
            os.replace(table_tmp, path)
        except BaseException:
            if backup is not None:
                os.replace(backup, vocab)
                backup = None
            else:
                os.unlink(vocab)
            raise
    finally:
        for leftover in (table_tmp, vocab_tmp, backup):
            if leftover is not None and os.path.exists(leftover):
                os.unlink(leftover)
    fsync_dir(directory)


def load_npy(path, mmap_mode=None):
    """Load a table saved by :func:`save_npy`.

    Parameters
    ----------
    path : str or path
        The .npy file; its words are read from ``path + ".vocab"``.
    mmap_mode : {None, "r", "r+"}
        None reads the table into memory. "r" maps it read-only. "r+" maps it for writing:
        such a table can be the weight of an :class:`~fastembed.Embedding` and be trained in
        place; the updates reach the file after ``layer.flush()`` (or
        ``vectors.weight.flush()``).

    Returns
    -------
    Vectors
        Whose ``weight`` is a ``np.memmap`` when ``mmap_mode`` is given.

    Raises
    ------
    ValueError
        Not a 2-D float32 or float64 table, a vocabulary file of another length or with a
        repeated word, or a bad ``mmap_mode``.
    OSError
        A missing table or vocabulary file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastembed import Embedding, optim
    >>> from fastembed.io import load_npy, save_npy
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "table.npy")
    ...     save_npy(path, np.ones((2, 2), np.float32), ["a", "b"])
    ...     vectors = load_npy(path, mmap_mode="r+")       # train the file in place
    ...     layer = Embedding(weight=vectors.weight)
    ...     _ = layer([1]); _ = layer.backward(np.ones((1, 2), np.float32))
    ...     optim.SGD(layer, lr=0.5).step()
    ...     layer.flush()
    ...     print(np.load(path))
    ...     del layer, vectors
    [[1.  1. ]
     [0.5 0.5]]
    """
    if mmap_mode not in (None, "r", "r+"):
        raise ValueError(f"mmap_mode must be None, 'r' or 'r+', got {mmap_mode!r}")
    path = os.fspath(path)
    weight = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    if weight.ndim != 2 or weight.dtype not in (np.float32, np.float64):
        raise ValueError(f"{path}: expected a 2-D float32 or float64 table, got "
                         f"{weight.dtype} of shape {weight.shape}")
    with open(path + ".vocab", encoding="utf-8") as f:
        words = f.read().split("\n")
    if words and words[-1] == "":
        words.pop()
    if len(words) != weight.shape[0]:
        raise ValueError(f"{path}.vocab: {len(words)} words for a table of "
                         f"{weight.shape[0]} rows")
    index = dict(zip(words, range(len(words))))
    if len(index) != len(words):
        Vectors(words, weight)  # raises ValueError naming the repeated word
    return vectors_from_checked(words, weight, index)  # keeps the memmap


_SEPARATORS = " \t\n\r"    # what the parser splits on: other Unicode spaces stay in words
_BLOCK = 1 << 22            # bytes read at a time (4 MiB): memory stays near the table's
_BINARY_BLOCK = 1 << 20     # binary files: bytes per step of the two-thread pipeline (1 MiB)
_PROGRESS_MIN_BYTES = 1 << 26   # show a progress bar from 64 MiB on (progress=None)


def load_word2vec(path, *, binary=None, no_header=False, limit=None, dtype=np.float32,
                  encoding="utf-8", errors="strict", duplicates="error", n_threads=None,
                  progress=None):
    """Read a word2vec file (text or binary) or a GloVe file into :class:`Vectors`.

    Parameters
    ----------
    path : str or path
    binary : bool, optional
        The word2vec binary format; None detects it from the first row.
    no_header : bool, default False
        GloVe's text format: no ``<count> <dim>`` line; the size comes from the first row.
    limit : int, optional
        Keep the first ``limit`` rows only.
    dtype : float32 or float64
        Text values are parsed exactly as ``np.float32(token)`` (or ``float(token)``) would:
        bitwise the same numbers. Binary files hold float32.
    encoding, errors : str
        How words are decoded (``errors="strict"`` raises on invalid bytes).
    duplicates : {"error", "first"}
        A word that appears twice raises ValueError, or (``"first"``) keeps its first row and
        drops the others with one warning, as gensim does.
    n_threads : int, optional
        Threads parsing text; for a binary file, 2 or more means that a second thread
        reads the file and copies the vectors while the calling thread makes the words'
        Python objects. The result does not depend on it.
    progress : bool, optional
        A progress bar; by default shown for files of 64 MiB and more.

    Returns
    -------
    Vectors

    Raises
    ------
    ValueError
        Naming the file and the line (text) or byte offset (binary): a ragged row, a header
        that disagrees with the body, a token that is not a number, a duplicate word, a
        truncated binary file, a word that does not decode, an empty file. Nothing is
        returned in part.

    Notes
    -----
    Text rows are a word, then the values, separated by runs of spaces or tabs; ``\\r\\n``
    line ends and trailing spaces are accepted. Numbers follow Python's ``float`` grammar
    except for underscores and non-ASCII digits, which are refused.

    The file is read in blocks of 4 MiB (text) or 1 MiB (binary), so memory peaks near the
    final table plus its vocabulary; each block's lines are parsed by all threads in
    parallel. The word -> row index is a dict in CPython's general layout, which stores the
    keys' hashes: about 14 more bytes per word than a dict built key by key, and a quarter
    faster to build (see ``fastembed.textio.new_index``).

    Examples
    --------
    >>> import os, tempfile
    >>> from fastembed.io import load_word2vec
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "glove.txt")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.write("the 0.5 1\\nof -1 2\\nthe 3 3\\n")
    ...     vectors = load_word2vec(path, no_header=True, limit=2)   # the repeat is not read
    >>> vectors
    Vectors(2 words, dim=2, dtype=float32)
    >>> vectors.weight
    array([[ 0.5,  1. ],
           [-1. ,  2. ]], dtype=float32)
    """

    path = os.fspath(path)
    dtype = check_float_dtype(dtype)
    limit = check_int(limit, "limit", min=0, allow_none=True)  # NumPy integers too
    if duplicates not in ("error", "first"):
        raise ValueError(f"duplicates must be 'error' or 'first', got {duplicates!r}")
    if no_header and binary:
        raise ValueError("the binary format always has a header: binary=True and "
                         "no_header=True contradict each other")
    n_threads = resolve_n_threads(n_threads)
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path}: the file is empty")
    count = None
    body_start = 0
    if not no_header:
        count, dim, body_start = _read_header(path, _first_line(path, 0))
        if binary is None:
            binary = _looks_binary(path, body_start, dim, encoding)
        # refuse absurd sizes before allocating: a binary row takes at least 4 dim + 2 bytes
        # (a word, a space, the floats); in a text file the first row at least 2 dim + 1
        # and the others 2 (a shorter row is an error found later, with its line number)
        wanted = count if limit is None else min(count, limit)
        needed = (wanted * (4 * dim + 2) if binary
                  else (2 * dim + 1 + 2 * (wanted - 1) if wanted else 0))
        if needed > size - body_start:
            raise ValueError(f"{path}:1: the header announces {count} vectors of size {dim}, "
                             f"which a file of {size} bytes cannot hold")
    else:
        binary = False
        dim = _glove_dim(path, _first_line(path, 0))
        count = _count_rows(path, size)
    rows = count if limit is None else min(count, limit)
    show = progress if progress is not None else size >= _PROGRESS_MIN_BYTES
    weight = aligned_empty((rows, dim), dtype)
    if binary:
        read = _read_binary(path, size, body_start, weight, count, limit, encoding, errors,
                            show, duplicates, n_threads)
    else:
        read = _read_text(path, size, body_start, weight, count, limit, encoding, errors,
                          n_threads, show, first_line=1 if no_header else 2,
                          policy=duplicates)
    words, index, repeated = read
    return _dedupe(path, words, index, repeated, weight, duplicates, binary,
                   first_line=1 if no_header else 2)


def _read_header(path, head):
    end = head.find(b"\n")
    line = head if end < 0 else head[:end]
    parts = line.split()
    try:
        if len(parts) != 2:
            raise ValueError
        count, dim = int(parts[0]), int(parts[1])
        if count < 0 or dim < 1:
            raise ValueError
    except ValueError:
        text = line[:80].decode("utf-8", "replace")
        raise ValueError(f"{path}:1: expected a header '<count> <dim>', got {text!r} (a GloVe "
                         f"file has none: no_header=True, or --no-header on the command "
                         f"line)") from None
    if end < 0:
        if count:
            raise ValueError(f"{path}: the file holds a header and no vectors")
        return count, dim, len(head)  # "0 <dim>" alone: an empty table
    return count, dim, end + 1


def _first_line(path, start):
    """The bytes from ``start`` up to the first newline (or the end of the file)."""
    chunks = []
    with open(path, "rb") as f:
        f.seek(start)
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                break
            end = chunk.find(b"\n")
            if end >= 0:
                chunks.append(chunk[:end + 1])
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _looks_binary(path, body_start, dim, encoding="utf-8"):
    """Binary unless the first row reads as text.

    A well-formed text first row (a word and dim numbers) means text. Otherwise: a binary row is the word, a space and 4 dim bytes of float32; those bytes nearly always
    include control bytes or invalid UTF-8 (each byte does with odds near 1/2), which a text
    file never holds. So the bytes that a binary first row would span are checked: clean
    printable UTF-8 (tabs and line ends allowed) means text. A text row that is otherwise
    malformed is then reported as such, with its line number.
    """
    with open(path, "rb") as f:
        f.seek(body_start)
        head = f.read(1 << 16)
    first = head.split(b"\n", 1)[0].rstrip(b"\r").split()
    if len(first) == dim + 1:  # a word and dim numbers: text (binary bytes never parse so)
        try:
            for token in first[1:]:
                textio.parse_double(token)
            return False
        except ValueError:
            pass
    word_end = head.find(b" ")
    span = head[:(word_end if word_end >= 0 else len(head)) + 1 + 4 * dim]
    try:
        text = span.decode(encoding)
    except UnicodeDecodeError as exc:
        if exc.start < len(span) - 3 or len(span) < len(head):  # not a character cut short
            return True
        text = span[:exc.start].decode(encoding)
    return any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f" for c in text)


def _glove_dim(path, head):
    end = head.find(b"\n")
    line = (head if end < 0 else head[:end]).rstrip(b"\r")
    parts = line.split()
    if len(parts) < 2:
        raise ValueError(f"{path}:1: a word and its values expected, got "
                         f"{line[:80].decode('utf-8', 'replace')!r}")
    return len(parts) - 1


def _count_rows(path, size):
    """Rows of a GloVe file: its lines, not counting blank lines at its end."""
    n = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_BLOCK)
            if not chunk:
                break
            n += chunk.count(b"\n")
        # blank space at the end: the newlines after the last non-blank byte end no row
        tail_size = min(size, 1 << 16)
        while True:
            f.seek(size - tail_size)
            tail = f.read(tail_size)
            stripped = tail.rstrip(b" \t\r\n")
            if stripped or tail_size == size:
                break
            tail_size = min(size, tail_size * 4)
    if not stripped:
        return 0
    return n - tail[len(stripped):].count(b"\n") + 1


def _progress_bar(show, total, path):
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(path),
                leave=False)


def _read_text(path, size, body_start, weight, count, limit, encoding, errors, n_threads,
               show, first_line, policy):
    rows = weight.shape[0]
    words: list[str] = []
    duplicates: list[int] = []
    index = textio.new_index()
    buf = bytearray(_BLOCK)
    filled = 0
    row = 0          # rows parsed so far
    lines_seen = 0   # lines of the body seen so far (parsed or not)
    bar = _progress_bar(show, size, path)
    n_parts = max(1, 4 * n_threads)
    try:
        with open(path, "rb") as f:
            f.seek(body_start)
            eof = False
            while not eof and row < rows:
                with memoryview(buf) as view, view[filled:] as free:
                    got = f.readinto(free)
                eof = got == 0
                filled += got
                if bar is not None:
                    bar.update(got)
                if eof:
                    usable = filled
                else:
                    usable = buf.rfind(b"\n", 0, filled) + 1
                    if usable == 0:  # a line longer than the buffer: grow it
                        buf.extend(bytearray(len(buf)))
                        continue
                if usable == 0:
                    break
                block = np.frombuffer(buf, dtype=np.uint8)
                n_lines = buf.count(b"\n", 0, usable) + 1  # an upper bound
                word_off = np.empty(n_lines, dtype=np.int64)
                word_len = np.empty(n_lines, dtype=np.int32)
                total, status, bad_line, bad_off, bad_len = textio.parse_text_block(
                    block, usable, weight, row, rows, word_off, word_len, n_parts, n_threads)
                # the rows before an error are checked first: the earliest bad line wins,
                # whatever kind of error it has
                parsed = bad_line if status else min(total, rows - row)
                bad = textio.decode_words(block, word_off, word_len, parsed, encoding, errors,
                                       words, index, duplicates)
                del block
                if bad >= 0:
                    raw = bytes(buf[word_off[bad]:word_off[bad] + word_len[bad]])
                    raise ValueError(f"{path}:{first_line + lines_seen + bad}: the word {raw!r} "
                                     f"is not valid {encoding} (errors={errors!r})")
                if duplicates and policy == "error":
                    _raise_duplicate(path, words, index, duplicates, False, first_line)
                if status:
                    detail = textio.ERRORS[status]
                    if status == 4:  # a bad number: show it
                        token = bytes(buf[bad_off:bad_off + bad_len]).decode("utf-8", "replace")
                        detail = f"{token[:40]!r} is {detail}"
                    raise ValueError(f"{path}:{first_line + lines_seen + bad_line}: {detail} "
                                     f"(expected a word and {weight.shape[1]} numbers)")
                row += parsed
                lines_seen += total
                if row == rows and parsed < total:
                    # the announced rows end inside this block: what follows them here is
                    # checked with the rest of the file below
                    newlines = np.flatnonzero(np.frombuffer(buf, np.uint8, usable) == 10)
                    usable = int(newlines[parsed - 1]) + 1 if parsed else 0
                rest = filled - usable
                buf[:rest] = buf[usable:filled]
                filled = rest
            if limit is None and count is not None and row == rows:
                # the rows the header announced are read: nothing but blank space may follow
                _check_nothing_follows(path, f, bytes(buf[:filled]), count)
    finally:
        if bar is not None:
            bar.close()
    if row < rows:
        raise ValueError(f"{path}: the header announces {count} vectors, the file holds {row}"
                         if count is not None else f"{path}: {row} rows, {rows} expected")
    return words, index, duplicates


def _read_binary(path, size, body_start, weight, count, limit, encoding, errors, show,
                 policy, n_threads):
    """Read the rows of a binary file (see ``textio.read_binary``: with 2 threads, one reads and
    copies the vectors while the calling thread makes the words' Python objects)."""
    words: list[str] = []
    duplicates: list[int] = []
    index = textio.new_index()
    if weight.shape[0] == 0:
        return words, index, duplicates
    bar = _progress_bar(show, size, path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.lseek(fd, body_start, os.SEEK_SET)
        status, where, detail = textio.read_binary(
            fd, body_start, weight, _BINARY_BLOCK, encoding, errors, words, index, duplicates,
            policy == "error", None if bar is None else bar.update, n_threads)
    finally:
        os.close(fd)
        if bar is not None:
            bar.close()
    # the reader stops at the first error in the file, so there is at most one
    if status == textio.BIN_BAD_WORD:
        raise ValueError(f"{path}: byte {where}: the word {detail!r} is not valid {encoding} "
                         f"(errors={errors!r})")
    if status == textio.BIN_DUPLICATE:
        _raise_duplicate(path, words, index, duplicates, True, 0)
    if status == textio.BIN_NO_WORD:
        raise ValueError(f"{path}: byte {where}: a vector without a word")
    if status == textio.BIN_TRUNCATED:
        raise ValueError(f"{path}: byte {where}: the file ends inside vector {len(words) + 1} "
                         f"of {count} (truncated?)")
    if status == textio.BIN_READ_ERROR:
        assert isinstance(detail, int)  # the reader's errno, or -1 for memory
        if detail < 0:
            raise MemoryError(f"{path}: out of memory at byte {where}")
        raise OSError(detail, os.strerror(detail), path)
    if limit is None:
        with open(path, "rb") as f:
            f.seek(where)
            _check_nothing_follows(path, f, b"", count)
    return words, index, duplicates


def _check_nothing_follows(path, f, pending, count):
    """After the announced rows: only blank space may be left, in ``pending`` and in ``f``."""
    chunk = pending
    while True:
        if chunk.strip():
            raise ValueError(f"{path}: the header announces {count} vectors, the file holds "
                             f"more")
        chunk = f.read(_BLOCK)
        if not chunk:
            return


def _raise_duplicate(path, words, index, repeated, binary, first_line):
    i = repeated[0]
    j = index[words[i]]
    where = (f"rows {j + 1} and {i + 1}" if binary
             else f"lines {first_line + j} and {first_line + i}")
    raise ValueError(f"{path}: the word {words[i]!r} appears twice ({where}); pass "
                     f"duplicates='first' to keep the first")


def _dedupe(path, words, index, repeated, weight, duplicates, binary, first_line):
    """The Vectors, after the policy for words that repeat (their later rows: ``repeated``)."""
    if repeated:
        if duplicates == "error":
            _raise_duplicate(path, words, index, repeated, binary, first_line)
        i = repeated[0]
        import warnings
        warnings.warn(f"{path}: {len(repeated)} duplicate word(s) dropped, keeping each word's "
                      f"first row (first: {words[i]!r})", UserWarning, stacklevel=3)
        keep = np.ones(len(words), dtype=bool)
        keep[repeated] = False
        weight = weight[keep]
        words = [w for w, k in zip(words, keep) if k]
        index = dict(zip(words, range(len(words))))
    return vectors_from_checked(words, weight, index)


# -- fastText's .bin ---------------------------------------------------------------------------

FASTTEXT_MAGIC = 793712314
FASTTEXT_VERSION = 12
#: the header after the magic and version, in fastText's Args::save order (an old file, without
#: magic and version, starts at ``dim``)
_FASTTEXT_ARGS = ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams", "loss", "model",
                  "bucket", "minn", "maxn", "lr_update_rate")
#: what save_fasttext writes for header fields a model does not give (fastText's defaults for
#: skip-gram with negative sampling: loss 2 = ns, model 2 = sg)
_FASTTEXT_DEFAULTS = dict(ws=5, epoch=5, min_count=5, neg=5, word_ngrams=1, loss=2, model=2,
                          lr_update_rate=100, t=1e-4)


class _BinReader:
    """Reads fastText's little-endian fields from a file, naming the file and the field when
    it ends early."""

    def __init__(self, f, path):
        self.f, self.path = f, path

    def take(self, n, what):
        data = self.f.read(n)
        if len(data) != n:
            raise ValueError(f"{self.path}: truncated: the file ends inside {what} (wanted "
                             f"{n} bytes, found {len(data)})")
        return data

    def ints(self, fmt, what):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def word(self, what):
        out = bytearray()
        while True:
            chunk = self.f.read(1)
            if not chunk:
                raise ValueError(f"{self.path}: truncated: the file ends inside {what}")
            if chunk == b"\0":
                return bytes(out)
            out += chunk

    def matrix(self, what, flagged=True):
        """A dense matrix: its quantization flag (the current format only), its shape
        (int64 rows and columns) and its float32 values."""
        (quantized,) = self.ints("?", f"the {what} matrix's quantization flag") if flagged \
            else (False,)
        if quantized:
            raise ValueError(f"{self.path}: the {what} matrix is quantized (a .ftz model); only "
                             f"full .bin models can be read")
        rows, cols = self.ints("qq", f"the {what} matrix's shape")
        if rows < 0 or cols < 1:
            raise ValueError(f"{self.path}: the {what} matrix's shape ({rows}, {cols}) is "
                             f"invalid")
        out = np.empty((rows, cols), dtype="<f4")
        got = self.f.readinto(out.data.cast("B"))
        if got != out.nbytes:
            raise ValueError(f"{self.path}: truncated: the {what} matrix ({rows} x {cols} "
                             f"float32) needs {out.nbytes} bytes, found {got or 0}")
        return out.astype(np.float32, copy=False)


def load_fasttext(path, *, encoding="utf-8"):
    """Read a fastText model (Facebook's ``.bin``) as :class:`~fastembed.subwords.SubwordVectors`.

    Reads the header, the dictionary, the input matrix (words, then n-gram buckets) and the
    output matrix, of the current format (magic number, version 11 or 12) and of the old one
    (no magic, as gensim's test models). Vectors of words in the vocabulary and of unseen words
    are those of fastText's ``get_word_vector`` and gensim's ``load_facebook_vectors``.

    Parameters
    ----------
    path : str or path
    encoding : str, default "utf-8"
        Of the words; bytes that do not decode are kept as ``\\xNN`` escapes (as gensim does).

    Returns
    -------
    SubwordVectors
        The words (the dictionary's entries of type word, in its order), their counts, the
        labels of a supervised model, both matrices and the header's other fields
        (``.args``).

    Raises
    ------
    ValueError
        A file that is not a fastText model (bad magic number, unknown version or an
        impossible header), a quantized model (``.ftz``), a truncated file or one with bytes
        after the output matrix; the message names the file and what is wrong. Nothing is
        returned in part.

    See Also
    --------
    save_fasttext : writes the format.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastembed.io import load_fasttext, save_fasttext
    >>> from fastembed.subwords import SubwordVectors
    >>> rng = np.random.default_rng(0)
    >>> model = SubwordVectors(["the", "cat"], rng.random((2 + 20, 4), np.float32), minn=2,
    ...                        maxn=3, bucket=20, counts=[5, 2])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_fasttext(os.path.join(d, "model.bin"), model)
    ...     again = load_fasttext(os.path.join(d, "model.bin"))
    >>> again.words, bool(np.array_equal(again.get_vector("cats"), model.get_vector("cats")))
    (['the', 'cat'], True)
    """
    from .subwords import SubwordVectors

    path = os.fspath(path)
    with open(path, "rb") as f:
        r = _BinReader(f, path)
        magic, version = r.ints("ii", "the header")
        if magic == FASTTEXT_MAGIC:
            if version not in (11, 12):
                raise ValueError(f"{path}: fastText format version {version} is not supported "
                                 f"(11 and 12 are)")
            values = r.ints("12i", "the header") + r.ints("d", "the header")
            new = True
        else:
            # the old format: no magic, the header starts at dim
            values = (magic, version) + r.ints("10i", "the header") + r.ints("d", "the header")
            new = False
        args = dict(zip(_FASTTEXT_ARGS + ("t",), values))
        if not (0 < args["dim"] <= 100_000 and args["ws"] > 0 and args["bucket"] >= 0
                and 0 <= args["minn"] and 0 <= args["maxn"] and args["model"] in (1, 2, 3)
                and args["loss"] in (1, 2, 3, 4)):
            raise ValueError(f"{path}: not a fastText model: bad magic number {magic} (want "
                             f"{FASTTEXT_MAGIC}) and no valid old-format header")
        size, nwords, nlabels = r.ints("3i", "the dictionary's sizes")
        (ntokens,) = r.ints("q", "the dictionary's sizes")
        pruned = r.ints("q", "the dictionary's sizes")[0] if new else -1
        if size < 0 or nwords < 0 or nlabels < 0 or nwords + nlabels != size:
            raise ValueError(f"{path}: the dictionary's sizes are inconsistent ({size} entries, "
                             f"{nwords} words, {nlabels} labels)")
        words, counts, labels, label_counts = [], [], [], []
        for i in range(size):
            raw = r.word(f"the dictionary's entry {i}")
            count, kind = r.ints("qb", f"the dictionary's entry {i}")
            word = raw.decode(encoding, errors="backslashreplace")
            if kind == 0:
                words.append(word)
                counts.append(count)
            elif kind == 1:
                labels.append(word)
                label_counts.append(count)
            else:
                raise ValueError(f"{path}: dictionary entry {i} has the unknown type {kind}")
        if len(words) != nwords:
            raise ValueError(f"{path}: the dictionary holds {len(words)} words, its header "
                             f"says {nwords}")
        if pruned > 0:
            raise ValueError(f"{path}: the dictionary is pruned (a quantized model); only full "
                             f".bin models can be read")
        input = r.matrix("input", new)
        output = r.matrix("output", new)
        if f.read(1):
            raise ValueError(f"{path}: unexpected bytes after the output matrix")
    bucket = args.pop("bucket")
    if input.shape != (nwords + bucket, args["dim"]):
        raise ValueError(f"{path}: the input matrix has shape {input.shape}, the header wants "
                         f"({nwords} words + {bucket} buckets, {args['dim']})")
    minn, maxn = args.pop("minn"), args.pop("maxn")
    args.pop("dim")
    return SubwordVectors(words, input, minn=minn, maxn=maxn, bucket=bucket, output=output,
                          counts=counts, args=args, labels=labels, label_counts=label_counts,
                          ntokens=ntokens)


def save_fasttext(path, model):
    """Write a subword model as Facebook's fastText ``.bin`` (format version 12), atomically.

    The ``fasttext`` package's ``load_model`` and gensim's ``load_facebook_model`` read it and
    give the same vectors.

    Parameters
    ----------
    path : str or path
    model : SubwordVectors
        Its words, counts, labels, input matrix, output matrix (zeros of ``(len(words),
        dim)`` when it has none) and header fields (``.args``; fastText's skip-gram defaults
        for those it lacks).

    Raises
    ------
    TypeError
        ``model`` is not a :class:`~fastembed.subwords.SubwordVectors`.
    ValueError
        A word that is empty or holds a NUL byte, or an output matrix of another width than
        the input's; nothing is written.

    See Also
    --------
    load_fasttext : reads it back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fastembed.io import save_fasttext
    >>> from fastembed.subwords import SubwordVectors
    >>> model = SubwordVectors(["a", "b"], np.zeros((2 + 8, 3), np.float32), minn=2, maxn=3,
    ...                        bucket=8)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_fasttext(os.path.join(d, "m.bin"), model)
    ...     print(os.path.getsize(os.path.join(d, "m.bin")))
    292
    """
    from .subwords import SubwordVectors

    if not isinstance(model, SubwordVectors):
        raise TypeError(f"save_fasttext writes a SubwordVectors, got {type(model).__name__}")
    entries = [(w, c, 0) for w, c in zip(model.words, model.counts.tolist())]
    entries += [(w, c, 1) for w, c in zip(model.labels, model.label_counts.tolist())]
    encoded = []
    for i, (word, _, _) in enumerate(entries):
        raw = word.encode("utf-8")
        if not raw or b"\0" in raw:
            raise ValueError(f"entry {i} ({word!r}) is empty or holds a NUL byte, which the "
                             f"fastText format cannot hold")
        encoded.append(raw)
    dim = model.dim
    output = model.output if model.output is not None else \
        np.zeros((len(model.words), dim), dtype=np.float32)
    output = np.asarray(output)
    if output.ndim != 2 or output.shape[1] != dim:
        raise ValueError(f"the output matrix must have {dim} columns, got shape "
                         f"{output.shape}")
    args = dict(_FASTTEXT_DEFAULTS)
    args.update({k: v for k, v in model.args.items() if k in _FASTTEXT_DEFAULTS})
    args.update(dim=dim, bucket=model.bucket, minn=model.minn, maxn=model.maxn)
    with atomic_write(path, "wb") as f:
        f.write(struct.pack("<ii", FASTTEXT_MAGIC, FASTTEXT_VERSION))
        f.write(struct.pack("<12i", *(int(args[k]) for k in _FASTTEXT_ARGS)))
        f.write(struct.pack("<d", float(args["t"])))
        f.write(struct.pack("<3iqq", len(entries), len(model.words), len(model.labels),
                            model.ntokens, -1))
        for raw, (_, count, kind) in zip(encoded, entries):
            f.write(raw + b"\0" + struct.pack("<qb", int(count), kind))
        step = max(1, 2**26 // max(1, 4 * dim))   # 64 MiB at a time
        for n_rows, block in ((len(model.words) + model.bucket, model.input_block),
                              (output.shape[0], lambda a, b: output[a:b])):
            f.write(struct.pack("<?qq", False, n_rows, dim))
            for start in range(0, n_rows, step):
                f.write(np.ascontiguousarray(block(start, min(start + step, n_rows)),
                                             dtype="<f4").tobytes())
