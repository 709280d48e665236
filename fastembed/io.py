"""Reading and writing word vectors in the word2vec text format.

The text format is gensim's and word2vec.c's: a header line ``<count> <dim>``, then one line
per word, ``word v1 v2 ... v_dim``, separated by single spaces. GloVe files are the same
without the header (``no_header=True``).

Writes are atomic: the file is written under a temporary name in the same directory, flushed
to disk, then renamed over the target, so a crash never leaves a half-written file behind.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .vectors import Vectors

__all__ = ["save_word2vec", "load_word2vec", "atomic_write"]


class atomic_write:
    """Context manager: ``with atomic_write(path, "w") as f:`` writes ``path`` atomically.

    The data go to a temporary file in the target's directory; on success it is flushed,
    fsynced and renamed over ``path`` (and the directory is fsynced); on an exception it is
    removed and ``path`` is left as it was.
    """

    def __init__(self, path, mode="w", encoding="utf-8"):
        if mode not in ("w", "wb"):
            raise ValueError("mode must be 'w' or 'wb'")
        self.path = os.fspath(path)
        self.mode = mode
        self.encoding = None if mode == "wb" else encoding

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(self.path) + "-",
                                        dir=directory)
        self.file = os.fdopen(fd, self.mode, encoding=self.encoding)
        return self.file

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
                _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_word2vec(path, vectors, words=None):
    """Write vectors in the word2vec text format, atomically.

    Parameters
    ----------
    path : str or path
    vectors : Vectors, or an array of shape (n, dim) together with ``words``
    words : list of str, optional

    Floats are written with 9 significant digits for float32 tables and 17 for float64, enough
    for reading the file back to give the same values, bit for bit.
    """
    if not isinstance(vectors, Vectors):
        vectors = Vectors(words, vectors)
    weight = vectors.weight
    for i, word in enumerate(vectors.words):
        if not word or any(c.isspace() for c in word):
            raise ValueError(f"word {i} ({word!r}) is empty or contains whitespace, which the "
                             f"word2vec text format cannot hold")
    with atomic_write(path, "w") as f:
        f.write(f"{len(vectors)} {vectors.dim}\n")
        fmt = " ".join([("%.9g" if weight.dtype == np.float32 else "%.17g")] * vectors.dim)
        for word, row in zip(vectors.words, weight.tolist()):
            f.write(word + " " + fmt % tuple(row) + "\n")


def load_word2vec(path, *, no_header=False, limit=None, dtype=np.float32, encoding="utf-8",
                  errors="strict"):
    """Read a word2vec text file (or GloVe's, with ``no_header=True``) into :class:`Vectors`.

    Raises ValueError naming the file and line for a malformed line, a header that disagrees
    with the body, a duplicate word or an empty file.
    """
    path = os.fspath(path)
    words, rows = [], []
    seen = {}
    expected = None
    dim = None
    with open(path, encoding=encoding, errors=errors) as f:
        lines = _numbered_lines(f, path)
        for line_no, line in lines:
            parts = line.rstrip("\n").rstrip("\r").split(" ")
            while parts and parts[-1] == "":
                parts.pop()  # word2vec.c writes a trailing space
            if line_no == 1 and not no_header:
                try:
                    expected, dim = int(parts[0]), int(parts[1])
                    if len(parts) != 2 or expected < 0 or dim < 1:
                        raise ValueError
                except (ValueError, IndexError):
                    raise ValueError(f"{path}:1: expected a header '<count> <dim>', got "
                                     f"{line.strip()[:80]!r} (a GloVe file has none: "
                                     f"no_header=True, or --no-header on the command line)"
                                     ) from None
                continue
            if not parts:
                raise ValueError(f"{path}:{line_no}: empty line")
            if limit is not None and len(words) >= limit:
                break
            word, values = parts[0], parts[1:]
            if dim is None:
                dim = len(values)
                if dim == 0:
                    raise ValueError(f"{path}:{line_no}: a word without a vector")
            if len(values) != dim:
                raise ValueError(f"{path}:{line_no}: {len(values)} values, expected {dim}")
            try:
                row = np.array(values, dtype=dtype)
            except ValueError:
                bad = next(v for v in values if not _is_float(v))
                raise ValueError(f"{path}:{line_no}: {bad!r} is not a number") from None
            if word in seen:
                raise ValueError(f"{path}:{line_no}: duplicate word {word!r} (first on line "
                                 f"{seen[word]})")
            seen[word] = line_no
            words.append(word)
            rows.append(row)
    if dim is None:
        raise ValueError(f"{path}: the file is empty" if expected is None
                         else f"{path}: the header announces {expected} words, the file has none")
    if expected is not None and limit is None and len(words) != expected:
        raise ValueError(f"{path}: the header announces {expected} words, the file has "
                         f"{len(words)}")
    weight = np.array(rows, dtype=dtype).reshape(len(rows), dim)
    return Vectors(words, weight)


def _numbered_lines(f, path):
    """(line number, line) pairs; a decoding error names the file and the line."""
    line_no = 0
    while True:
        try:
            line = f.readline()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{line_no + 1}: not valid {f.encoding} ({exc.reason}); "
                             f"pass encoding= or errors='replace'") from None
        if not line:
            return
        line_no += 1
        yield line_no, line


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
