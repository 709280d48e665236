"""Tables on cache-line boundaries: the arrays fastembed allocates for rows of a table.

NumPy places a large array 16 bytes past a page boundary (the allocator's chunk header), so a
row of 256 bytes (D = 64 float32) spans five 64-byte cache lines instead of four. A random
row gather, scatter-add or optimizer step moves whole lines, so such a table costs 25% more
memory traffic than the same table starting on a line: measured here, for 2**20 random rows
of a 10**6 x 64 float32 table on 2 threads, gather 23.0 against 18.9 ms and scatter-add 37.2
against 30.5 ms (bench/README.md, "Table alignment").

Every table fastembed creates (layer weights, optimizer state, dense gradients, lookup and
pooling outputs, loaded vectors, word2vec's matrices) therefore starts on a 64-byte boundary,
as PyTorch's allocator does for its tensors. (The output of a lookup too small to go parallel
is allocated in C by NumPy, where a few microseconds matter and alignment does not.) Arrays that users pass in are used where they lie;
:func:`aligned_like` makes an aligned copy of one. Results never depend on alignment, only
speed does.

The arrays are ordinary C-contiguous ndarrays: views of a slightly larger uint8 buffer
(``base`` is that buffer), which NumPy allocates, and madvises for huge pages, as usual.

:func:`last_level_cache_bytes` reads the size of the CPU's largest cache, which decides which
outputs are large enough to be written past the caches (``fastembed._rows.GatherSettings``)
and which coalesces sum their rows after sorting (``fastembed._rows.sums_miss_the_cache``).
"""
import glob
import os

import numpy as np

__all__ = ["CACHE_LINE", "aligned_empty", "aligned_zeros", "aligned_full", "aligned_like",
           "is_aligned", "last_level_cache_bytes"]

#: Bytes per cache line on the CPUs fastembed targets (x86-64, aarch64).
CACHE_LINE = 64

#: Where Linux describes the caches of the first CPU, one ``index*`` folder per cache.
CACHE_INFO = "/sys/devices/system/cpu/cpu0/cache"

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def last_level_cache_bytes(cache_info=CACHE_INFO):
    """The size in bytes of the highest-level data or unified cache of the first CPU, as Linux
    reports it under ``cache_info`` (``index*/level``, ``type`` and ``size``, e.g. ``49152K``),
    or None where it is not reported (other systems, containers that hide it)."""
    best = None
    for folder in glob.glob(os.path.join(cache_info, "index*")):
        try:
            with open(os.path.join(folder, "level")) as f:
                level = int(f.read())
            with open(os.path.join(folder, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(folder, "size")) as f:
                size = f.read().strip().upper()
            number, unit = (size[:-1], size[-1]) if size and size[-1] in "KMG" else (size, "")
            nbytes = int(number) * _SIZE_UNITS[unit]
        except (OSError, ValueError):
            continue
        if kind != "Instruction" and nbytes > 0 and (best is None or level > best[0]):
            best = (level, nbytes)
    return None if best is None else best[1]


def _aligned(shape, dtype, zero):
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    # np.zeros maps fresh zero pages lazily (calloc), so a huge zero table costs nothing until
    # it is touched, as with np.zeros itself.
    buf = (np.zeros if zero else np.empty)(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -buf.ctypes.data % CACHE_LINE
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def aligned_empty(shape, dtype=np.float32):
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary."""
    return _aligned(shape, dtype, zero=False)


def aligned_zeros(shape, dtype=np.float32):
    """Like ``np.zeros``, starting on a 64-byte boundary."""
    return _aligned(shape, dtype, zero=True)


def aligned_full(shape, fill_value, dtype=np.float32):
    """Like ``np.full``, starting on a 64-byte boundary."""
    out = _aligned(shape, dtype, zero=False)
    out.fill(fill_value)
    return out


def aligned_like(a, dtype=None):
    """A C-contiguous, 64-byte-aligned copy of ``a`` (of ``dtype``, default ``a``'s)."""
    a = np.asarray(a)
    out = _aligned(a.shape, a.dtype if dtype is None else dtype, zero=False)
    np.copyto(out, a, casting="unsafe" if dtype is not None else "no")
    return out


def is_aligned(a):
    """True when the data of ``a`` starts on a 64-byte boundary (or ``a`` is empty)."""
    return a.size == 0 or a.ctypes.data % CACHE_LINE == 0
