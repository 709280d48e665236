"""Atomic file writes: the one implementation every saver of fastembed uses.

A file is written under a temporary name in its target's directory (``.<name>.<pid>-<hex>.tmp``,
created with the umask's permissions, as a plain ``open`` would), flushed and fsynced, then
renamed over the target, and the directory is fsynced so that the rename itself is durable.
A crash at any moment leaves the old file or the new one, never a part; on an exception the
temporary file is removed.
"""
from __future__ import annotations

import contextlib
import os
import secrets

__all__ = ["atomic_write", "fsync_dir", "write_temp"]


def fsync_dir(directory):
    """Make a rename in ``directory`` durable (skipped where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse
        pass
    finally:
        os.close(fd)


def _open_temp(path, mode, encoding):
    directory, name = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask decides, as for a plain open()
            break
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    if "b" in mode:
        return os.fdopen(fd, mode), tmp
    return os.fdopen(fd, mode, encoding=encoding, newline="\n"), tmp


def write_temp(path, mode, write, encoding="utf-8"):
    """Write a synced temporary file beside ``path`` with ``write(f)``; return its name.

    For writers that rename several files themselves (a pair that must stay consistent).
    """
    f, tmp = _open_temp(path, mode, encoding)
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """``with atomic_write(path, "w") as f:`` writes ``path`` atomically (see the module).

    The file object writes a temporary file beside ``path``; when the ``with`` block ends
    normally it is flushed, fsynced and renamed over ``path``. When the block raises, the
    temporary file is removed and ``path`` is left as it was. Exported as
    ``fastembed.io.atomic_write``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (replaced if it exists).
    mode : {"w", "wb"}, default "w"
        Text (with ``\\n`` line ends) or binary.
    encoding : str, default "utf-8"
        The text encoding (text mode only).

    Yields
    ------
    file object
        Open for writing.

    Raises
    ------
    ValueError
        Another ``mode``.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastembed.io import atomic_write
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "notes.txt")
    ...     with atomic_write(path) as f:
    ...         _ = f.write("first\\n")
    ...     try:
    ...         with atomic_write(path) as f:
    ...             _ = f.write("half a file")
    ...             raise RuntimeError("crash")
    ...     except RuntimeError:
    ...         pass
    ...     with open(path) as f:
    ...         print(repr(f.read()), os.listdir(d))     # the old file, no leftovers
    'first\\n' ['notes.txt']
    """
    if mode not in ("w", "wb"):
        raise ValueError("mode must be 'w' or 'wb'")
    path = os.fspath(path)
    f, tmp = _open_temp(path, mode, encoding)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))
