"""Compiled kernels: row gather, scatter-add and coalesce (the sparse gradient).

Three layers, as in the rest of fastembed:

1. ``cdef inline ... noexcept nogil`` per-row helpers (``rowops.pxd``);
2. ``def`` kernels over typed memoryviews: inputs ``const``, outputs allocated by the caller,
   ``n_threads`` last. They trust their arguments: no bounds checks, no dtype checks;
3. the Python functions in ``functional.py`` validate, coerce, allocate and call them.

Determinism: every reduction adds a row's contributions in increasing position order, on one
thread, starting from the row's old value (scatter-add) or from +0.0 (coalesce). Two schemes
guarantee it without atomics:

- row ownership (``partition_by_owner``): each thread owns a range of rows and alone writes
  them, visiting its positions in increasing order;
- grouping (``group_by_row``): a stable radix sort puts each row's positions together, in
  increasing order, and one thread reduces each row's segment.

Either way the result is bitwise identical for any thread count, and equal to ``np.add.at``.
"""
cimport numpy as cnp
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy, memset

from .rowops cimport add_row as _add_row, add_scaled_row as _add_scaled_row
from .rowops cimport chunk_start as _chunk_start
from .rowops cimport PREFETCH_AHEAD, fe_prefetch_row, fe_prefetch_row_w
from .typedefs cimport floating, index_t

cdef extern from "vectorpath.h" nogil:
    void fe_vector_init()
    int fe_vector_force_path(int path)

cdef extern from "gatherrows.h" nogil:
    int FE_GATHER_PREFETCH
    int FE_GATHER_STREAM
    int FE_GATHER_STREAMS
    void fe_gather_rows(const char* table, const void* ids, int id_bytes, char* out,
                        Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n, size_t row_bytes,
                        int mode, Py_ssize_t ahead)
    ctypedef struct fe_gather_team_t:
        Py_ssize_t scan_next
        Py_ssize_t scan_done
        Py_ssize_t copy_next
        Py_ssize_t bad
    void fe_gather_checked(fe_gather_team_t* state, const char* table, const void* ids,
                           int id_bytes, char* out, Py_ssize_t n, uint64_t n_rows,
                           size_t row_bytes, int mode, Py_ssize_t ahead,
                           Py_ssize_t scan_chunk, Py_ssize_t copy_chunk)

cdef extern from "scatterrows.h" nogil:
    void fe_scatter_rows_f(float* table, const float* grad, const void* ids, int id_bytes,
                           const int64_t* pos, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t d,
                           Py_ssize_t ahead)
    void fe_scatter_rows_d(double* table, const double* grad, const void* ids, int id_bytes,
                           const int64_t* pos, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t d,
                           Py_ssize_t ahead)

import numpy as np

from .._memory import aligned_empty

_n_threads_for = None  # threads.n_threads_for, imported on first use (threads imports us)

cnp.import_array()
fe_vector_init()

# The mode bits of a lookup (gatherrows.h): prefetch the rows ahead; write the output with
# streaming stores, which this build has only on x86-64 (STREAM_STORES).
PREFETCH = FE_GATHER_PREFETCH
STREAM = FE_GATHER_STREAM
STREAM_STORES = bool(FE_GATHER_STREAMS)


def force_vector_path(int path):
    """For the tests: run the gather's row copy and the scatter-add's row sums on path 0
    (baseline), 1 (AVX2) or 2 (AVX-512); returns False, changing nothing, where this build
    or CPU cannot (see gatherrows.h and scatterrows.h)."""
    return fe_vector_force_path(path) == 0

# A radix-sort digit has at most this many bits: 2**11 counters per chunk stay in L1.
cdef enum:
    MAX_DIGIT_BITS = 11
    # Rows per chunk of the parallel gather's dynamic schedule: at most GATHER_CHUNK, and
    # small enough that each thread gets about GATHER_CHUNKS_PER_THREAD of them (a lookup of
    # two chunks ran on one thread whenever the second thread woke late), but at least
    # GATHER_CHUNK_MIN.
    GATHER_CHUNK = 4096
    GATHER_CHUNK_MIN = 256
    GATHER_CHUNKS_PER_THREAD = 8
    # Ids per chunk of gather_direct's check (16 KiB of int64 ids).
    SCAN_CHUNK = 2048


# ---------------------------------------------------------------------------------------
# Layer 2: kernels
# ---------------------------------------------------------------------------------------

def find_first_invalid(const index_t[::1] ids,  # IN (N,)
                       uint64_t n_rows,
                       int n_threads):
    """Return the first position i with ``ids[i] < 0`` or ``ids[i] >= n_rows``, else -1.

    ``n_rows`` may be up to 2**63, which checks only for negative ids.
    """
    cdef Py_ssize_t n = ids.shape[0]
    cdef Py_ssize_t n_chunks = max(1, min(<Py_ssize_t>n_threads, n))
    cdef Py_ssize_t c, i, lo, hi
    cdef uint64_t limit = n_rows
    cdef Py_ssize_t[::1] first = np.full(n_chunks, n, dtype=np.intp)
    with nogil:
        for c in prange(n_chunks, schedule="static", num_threads=n_threads):
            lo = _chunk_start(n, n_chunks, c)
            hi = _chunk_start(n, n_chunks, c + 1)
            for i in range(lo, hi):
                # One unsigned comparison catches both negative and too-large ids.
                if <uint64_t>(<int64_t>ids[i]) >= limit:
                    first[c] = i
                    break
    for c in range(n_chunks):
        if first[c] < n:
            return first[c]
    return -1


def gather(const floating[:, ::1] weight,  # IN (V, D)
           const index_t[::1] ids,         # IN (N,), all in [0, V)
           floating[:, ::1] out,           # OUT (N, D)
           int n_threads,
           int mode=FE_GATHER_PREFETCH):
    """out[i, :] = weight[ids[i], :]; ``mode`` holds the bits PREFETCH (rows a few positions
    ahead) and STREAM (streaming stores for the output, where STREAM_STORES).

    The mode changes only the speed: each is a gain on some CPUs and table or output sizes and
    a loss on others (``fastembed._rows.GatherSettings`` measures which).
    """
    cdef Py_ssize_t n = ids.shape[0]
    cdef Py_ssize_t d = weight.shape[1]
    cdef Py_ssize_t c
    if n == 0 or d == 0:
        return
    cdef const char* w = <const char*>&weight[0, 0]
    cdef const void* idp = <const void*>&ids[0]
    cdef char* o = <char*>&out[0, 0]
    cdef size_t row_bytes = d * sizeof(floating)
    cdef int id_bytes = sizeof(index_t)
    cdef Py_ssize_t chunk = _gather_chunk(n, n_threads)
    cdef Py_ssize_t n_chunks = (n + chunk - 1) // chunk
    with nogil:
        if n_threads == 1:
            fe_gather_rows(w, idp, id_bytes, o, 0, n, n, row_bytes, mode, PREFETCH_AHEAD)
        else:
            # Chunks of rows handed out as threads free up: on a shared machine a thread
            # that loses its core for a while no longer holds up a fixed half.
            for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
                fe_gather_rows(w, idp, id_bytes, o, c * chunk, min(n, (c + 1) * chunk), n,
                               row_bytes, mode, PREFETCH_AHEAD)


cdef inline Py_ssize_t _gather_chunk(Py_ssize_t n, int n_threads) noexcept nogil:
    """Rows per chunk of a parallel lookup of n rows (see GATHER_CHUNK)."""
    cdef Py_ssize_t chunk = n // (GATHER_CHUNKS_PER_THREAD * max(n_threads, 1))
    return max(<Py_ssize_t>GATHER_CHUNK_MIN, min(<Py_ssize_t>GATHER_CHUNK, chunk))


def gather_direct(weight, ids, out, n_threads, Py_ssize_t serial_work, mode_of):
    """The whole of ``functional.gather`` for well-formed calls on plain arrays, or None.

    Handles ndarray tables (float32/float64, native, C-contiguous, 2-D), ndarray ids
    (int32/int64, native, C-contiguous) and an ``out`` that is None or exactly right, with the
    checks done through NumPy's C API in nanoseconds. Anything else returns None, and the
    caller takes the general path, which validates fully and raises the proper errors; so
    does a bad id, found before a byte is written.

    Calls of at most ``serial_work`` elements (ids x D) run on one thread. Larger ones ask
    ``mode_of(weight, n, threads)`` the kernel's mode for their thread count (see ``gather``;
    None: not decided yet, and the general path times the settings) and run in one parallel
    region (``fe_gather_checked`` in gatherrows.h): the threads check chunks of ids as they
    arrive, wait until all are checked, and only if every id is valid copy chunks of rows,
    handed out as threads free up. One region, not a scan region and then a copy region:
    each region wakes the sleeping threads, and the first thread checks a small lookup's ids
    while the others wake up.
    """
    if not (cnp.PyArray_Check(weight) and cnp.PyArray_Check(ids)):
        return None
    if not (n_threads is None or (type(n_threads) is int and n_threads != 0)):
        return None
    cdef cnp.ndarray w = <cnp.ndarray>weight
    cdef cnp.ndarray x = <cnp.ndarray>ids
    cdef int w_type = cnp.PyArray_TYPE(w)
    if (cnp.PyArray_NDIM(w) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(w)
            or not cnp.PyArray_ISNOTSWAPPED(w)
            or (w_type != cnp.NPY_FLOAT32 and w_type != cnp.NPY_FLOAT64)):
        return None
    cdef int x_size = cnp.PyArray_ITEMSIZE(x)
    if (not cnp.PyArray_ISSIGNED(x) or (x_size != 4 and x_size != 8)
            or not cnp.PyArray_IS_C_CONTIGUOUS(x) or not cnp.PyArray_ISNOTSWAPPED(x)):
        return None
    cdef int ndim = cnp.PyArray_NDIM(x)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t n_rows = cnp.PyArray_DIM(w, 0)
    cdef Py_ssize_t d = cnp.PyArray_DIM(w, 1)
    if ndim >= cnp.NPY_MAXDIMS:
        return None
    cdef bint parallel_call = n * d > serial_work
    cdef int mode = 0
    cdef int nt = 1
    if parallel_call:
        global _n_threads_for
        if _n_threads_for is None:
            from .threads import n_threads_for as _resolve
            _n_threads_for = _resolve
        nt = _n_threads_for(n_threads, n * d)
        setting = mode_of(weight, n, nt)
        if setting is None:
            return None
        mode = setting
    cdef cnp.npy_intp dims[cnp.NPY_MAXDIMS]
    cdef int k
    for k in range(ndim):
        dims[k] = cnp.PyArray_DIM(x, k)
    dims[ndim] = d
    cdef cnp.ndarray o
    cdef char* o_data
    cdef size_t row_bytes = d * cnp.PyArray_ITEMSIZE(w)
    if out is None:
        if parallel_call:  # large outputs start on a cache line, as fastembed allocates them
            o = <cnp.ndarray>aligned_empty(tuple([dims[k] for k in range(ndim + 1)]),
                                           weight.dtype)
        else:
            o = cnp.PyArray_EMPTY(ndim + 1, dims, w_type, 0)
    else:
        if not cnp.PyArray_Check(out):
            return None
        o = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(o) != w_type or cnp.PyArray_NDIM(o) != ndim + 1
                or not cnp.PyArray_IS_C_CONTIGUOUS(o) or not cnp.PyArray_ISWRITEABLE(o)
                or not cnp.PyArray_ISNOTSWAPPED(o)):
            return None
        for k in range(ndim + 1):
            if cnp.PyArray_DIM(o, k) != dims[k]:
                return None
        o_data = <char*>cnp.PyArray_DATA(o)
        if (o_data < <char*>cnp.PyArray_DATA(w) + n_rows * row_bytes
                and <char*>cnp.PyArray_DATA(w) < o_data + n * row_bytes):
            return None  # overlapping out and weight: the general path raises
        if (o_data < <char*>cnp.PyArray_DATA(x) + n * x_size
                and <char*>cnp.PyArray_DATA(x) < o_data + n * row_bytes):
            return None  # overlapping out and ids: the general path raises
    if n == 0 or row_bytes == 0:
        return o if _ids_valid(cnp.PyArray_DATA(x), x_size, n, n_rows) else None
    cdef const char* w_data = <const char*>cnp.PyArray_DATA(w)
    cdef const void* x_data = cnp.PyArray_DATA(x)
    o_data = <char*>cnp.PyArray_DATA(o)
    if nt == 1:
        # Check every id before writing a byte; a bad one sends the call to the general path.
        if not _ids_valid(x_data, x_size, n, n_rows):
            return None
        with nogil:
            fe_gather_rows(w_data, x_data, x_size, o_data, 0, n, n, row_bytes, mode,
                           PREFETCH_AHEAD)
        return o
    cdef fe_gather_team_t team
    team.scan_next = 0
    team.scan_done = 0
    team.copy_next = 0
    team.bad = n
    cdef fe_gather_team_t* state = &team
    with nogil, parallel(num_threads=nt):
        fe_gather_checked(state, w_data, x_data, x_size, o_data, n, <uint64_t>n_rows,
                          row_bytes, mode, PREFETCH_AHEAD, SCAN_CHUNK,
                          _gather_chunk(n, nt))
    if team.bad < n:
        return None
    return o


cdef inline Py_ssize_t _first_invalid(const void* ids, int x_size, Py_ssize_t lo,
                                      Py_ssize_t hi, Py_ssize_t n_rows) noexcept nogil:
    """The first i in [lo, hi) whose id is outside [0, n_rows), else -1."""
    cdef Py_ssize_t i
    cdef uint64_t limit = <uint64_t>n_rows
    if x_size == 4:
        for i in range(lo, hi):
            if <uint64_t>(<int64_t>(<const int32_t*>ids)[i]) >= limit:
                return i
    else:
        for i in range(lo, hi):
            if <uint64_t>(<const int64_t*>ids)[i] >= limit:
                return i
    return -1


cdef inline bint _ids_valid(const void* ids, int x_size, Py_ssize_t n,
                            Py_ssize_t n_rows) noexcept nogil:
    return _first_invalid(ids, x_size, 0, n, n_rows) < 0


cdef inline bint _overlap(cnp.ndarray a, Py_ssize_t a_bytes, cnp.ndarray b,
                          Py_ssize_t b_bytes):
    """Whether the byte ranges of two C-contiguous arrays intersect."""
    cdef char* pa = <char*>cnp.PyArray_DATA(a)
    cdef char* pb = <char*>cnp.PyArray_DATA(b)
    return a_bytes > 0 and b_bytes > 0 and pa < pb + b_bytes and pb < pa + a_bytes


cdef inline bint _plain(cnp.ndarray a):
    """C-contiguous and in native byte order."""
    return cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISNOTSWAPPED(a)


def scatter_add_small(out, ids, grad, n_threads, Py_ssize_t max_work):
    """The whole of ``functional.scatter_add`` for well-formed calls on one thread, or None.

    As ``gather_direct``: plain ndarrays only (a float32/float64 table, int32/int64 ids, a grad
    of the table's dtype and of shape ``ids.shape + (D,)``, no two sharing memory), at most
    ``max_work`` elements, every id in range; checked through NumPy's C API, then added on one
    thread in position order (bitwise what the parallel kernel and ``np.add.at`` give).
    Anything else returns None and the caller takes the general path, which raises properly.
    """
    if not (cnp.PyArray_Check(out) and cnp.PyArray_Check(ids) and cnp.PyArray_Check(grad)):
        return None
    if not (n_threads is None or (type(n_threads) is int and n_threads != 0)):
        return None
    cdef cnp.ndarray t = <cnp.ndarray>out
    cdef cnp.ndarray x = <cnp.ndarray>ids
    cdef cnp.ndarray g = <cnp.ndarray>grad
    cdef int t_type = cnp.PyArray_TYPE(t)
    if (cnp.PyArray_NDIM(t) != 2 or not _plain(t) or not cnp.PyArray_ISWRITEABLE(t)
            or (t_type != cnp.NPY_FLOAT32 and t_type != cnp.NPY_FLOAT64)):
        return None
    cdef int x_size = cnp.PyArray_ITEMSIZE(x)
    if not cnp.PyArray_ISSIGNED(x) or (x_size != 4 and x_size != 8) or not _plain(x):
        return None
    cdef int ndim = cnp.PyArray_NDIM(x)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t n_rows = cnp.PyArray_DIM(t, 0)
    cdef Py_ssize_t d = cnp.PyArray_DIM(t, 1)
    cdef int k
    if n * d > max_work or cnp.PyArray_TYPE(g) != t_type or not _plain(g):
        return None
    if cnp.PyArray_NDIM(g) != ndim + 1 or cnp.PyArray_DIM(g, ndim) != d:
        return None
    for k in range(ndim):
        if cnp.PyArray_DIM(g, k) != cnp.PyArray_DIM(x, k):
            return None
    cdef Py_ssize_t item = cnp.PyArray_ITEMSIZE(t)
    cdef Py_ssize_t t_bytes = n_rows * d * item
    if (_overlap(t, t_bytes, g, n * d * item) or _overlap(t, t_bytes, x, n * x_size)):
        return None
    cdef const void* xp = cnp.PyArray_DATA(x)
    if not _ids_valid(xp, x_size, n, n_rows):  # before writing a byte
        return None
    if n == 0 or d == 0:
        return out
    cdef void* tp = cnp.PyArray_DATA(t)
    cdef const void* gp = cnp.PyArray_DATA(g)
    cdef bint single = t_type == cnp.NPY_FLOAT32
    # The rows prefetched ahead, as the owners' loop does: every call on one thread comes
    # here, large tables too (10**6 rows of 300 floats: 72 -> 51 ms; a 10**4-row table in the
    # cache is no slower). Without the GIL: let other threads run.
    with nogil:
        if single:
            fe_scatter_rows_f(<float*>tp, <const float*>gp, xp, x_size, NULL, 0, n, d,
                              PREFETCH_AHEAD)
        else:
            fe_scatter_rows_d(<double*>tp, <const double*>gp, xp, x_size, NULL, 0, n, d,
                              PREFETCH_AHEAD)
    return out


cdef void _radix_pass(const int64_t* src_keys, const int64_t* src_perm,
                      int64_t* dst_keys, int64_t* dst_perm,
                      Py_ssize_t n, int shift, int64_t mask,
                      int64_t* counts, Py_ssize_t radix,
                      Py_ssize_t n_chunks, int n_threads) noexcept nogil:
    """One stable counting-sort pass on the digit (key >> shift) & mask.

    The positions are cut into n_chunks contiguous chunks. Each chunk counts its digits,
    an exclusive prefix over (digit, chunk) gives every chunk its output slots, and each chunk
    scatters its elements in order. The output is the unique stable order whatever n_chunks
    is, so the result does not depend on the thread count. ``src_perm`` NULL means identity.
    """
    cdef Py_ssize_t c, i, b, lo, hi
    cdef int64_t total, t, key, pos
    cdef int64_t* h
    for c in prange(n_chunks, schedule="static", num_threads=n_threads):
        lo = _chunk_start(n, n_chunks, c)
        hi = _chunk_start(n, n_chunks, c + 1)
        h = counts + c * radix
        memset(h, 0, radix * sizeof(int64_t))
        for i in range(lo, hi):
            h[(src_keys[i] >> shift) & mask] += 1
    total = 0
    for b in range(radix):
        for c in range(n_chunks):
            t = counts[c * radix + b]
            counts[c * radix + b] = total
            total = total + t
    for c in prange(n_chunks, schedule="static", num_threads=n_threads):
        lo = _chunk_start(n, n_chunks, c)
        hi = _chunk_start(n, n_chunks, c + 1)
        h = counts + c * radix
        for i in range(lo, hi):
            key = src_keys[i]
            b = (key >> shift) & mask
            pos = h[b]
            h[b] = pos + 1
            dst_keys[pos] = key
            if src_perm == NULL:
                dst_perm[pos] = i
            else:
                dst_perm[pos] = src_perm[i]


def group_by_row(const int64_t[::1] ids,  # IN (N,), all in [0, max_id]
                 int64_t max_id,
                 int n_threads):
    """Group positions by destination row with a stable LSD radix sort.

    Returns
    -------
    perm : int64 (N,)
        Positions sorted by id; equal ids keep increasing position order.
    rows : int64 (U,)
        The distinct ids, ascending.
    starts : int64 (U + 1,)
        Segment k of ``perm`` is ``perm[starts[k]:starts[k + 1]]``, the positions of ``rows[k]``.
    """
    cdef Py_ssize_t n = ids.shape[0]
    cdef int bits = max(1, int(max_id).bit_length())
    cdef int n_passes = (bits + MAX_DIGIT_BITS - 1) // MAX_DIGIT_BITS
    cdef int digit_bits = (bits + n_passes - 1) // n_passes
    cdef Py_ssize_t radix = (<Py_ssize_t>1) << digit_bits
    cdef int64_t mask = radix - 1
    cdef Py_ssize_t n_chunks = max(1, min(<Py_ssize_t>n_threads, n))
    cdef int p, shift
    cdef Py_ssize_t i, k, u

    cdef int64_t[::1] counts
    cdef int64_t[:, ::1] keys
    cdef int64_t[:, ::1] perm
    cdef int64_t[::1] sorted_keys
    cdef int64_t[::1] rows_v
    cdef int64_t[::1] starts_v

    if n == 0:
        return (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64),
                np.zeros(1, dtype=np.int64))
    counts = np.empty(n_chunks * radix, dtype=np.int64)
    keys = np.empty((2, n), dtype=np.int64)   # ping-pong buffers, one row per pass parity
    perm = np.empty((2, n), dtype=np.int64)
    with nogil:
        for p in range(n_passes):
            shift = p * digit_bits
            if p == 0:
                _radix_pass(&ids[0], NULL, &keys[0, 0], &perm[0, 0], n, shift, mask,
                            &counts[0], radix, n_chunks, n_threads)
            else:
                _radix_pass(&keys[(p - 1) % 2, 0], &perm[(p - 1) % 2, 0],
                            &keys[p % 2, 0], &perm[p % 2, 0], n, shift, mask,
                            &counts[0], radix, n_chunks, n_threads)
        sorted_keys = keys[(n_passes - 1) % 2]
        u = 1
        for i in range(1, n):
            if sorted_keys[i] != sorted_keys[i - 1]:
                u = u + 1
    rows = np.empty(u, dtype=np.int64)
    starts = np.empty(u + 1, dtype=np.int64)
    rows_v = rows
    starts_v = starts
    with nogil:
        rows_v[0] = sorted_keys[0]
        starts_v[0] = 0
        k = 1
        for i in range(1, n):
            if sorted_keys[i] != sorted_keys[i - 1]:
                rows_v[k] = sorted_keys[i]
                starts_v[k] = i
                k = k + 1
        starts_v[u] = n
    return np.asarray(perm[(n_passes - 1) % 2]), rows, starts


def segment_sum(const floating[:, ::1] grad,   # IN (M, D)
                const int64_t[::1] perm,       # IN (N,)
                const int64_t[::1] starts,     # IN (U + 1,)
                floating[:, ::1] out,          # OUT (U, D)
                const int64_t[::1] src_row,    # IN (N,) or None: position -> row of grad
                const floating[::1] scale,     # IN (N,) or None: position -> factor
                int n_threads):
    """out[k] = 0 + c(perm[starts[k]]) + c(perm[starts[k] + 1]) + ... in that order.

    The contribution of position i is ``c(i) = scale[i] * grad[src_row[i]]``; ``src_row`` None
    means ``i`` and ``scale`` None means no multiplication. Starting from +0.0 (not from a copy
    of the first row) makes the result bitwise equal to ``np.zeros`` followed by
    ``np.add.at``, signed zeros included.
    """
    cdef Py_ssize_t n_seg = starts.shape[0] - 1
    cdef Py_ssize_t d = grad.shape[1]
    cdef Py_ssize_t k, j, i, ahead, n
    cdef size_t row_bytes = d * sizeof(floating)
    cdef const int64_t* src = NULL
    cdef const floating* sc = NULL
    if n_seg <= 0 or d == 0:
        return
    if src_row is not None and src_row.shape[0] > 0:
        src = &src_row[0]
    if scale is not None and scale.shape[0] > 0:
        sc = &scale[0]
    cdef const floating* g = &grad[0, 0]
    cdef floating* o = &out[0, 0]
    cdef const int64_t* pm = &perm[0] if perm.shape[0] > 0 else NULL
    n = starts[n_seg]
    with nogil:
        # Segments are independent: one thread owns each, so the order within a row is fixed.
        # Dynamic scheduling balances Zipf-skewed segment lengths without changing results.
        for k in prange(n_seg, schedule="dynamic", chunksize=64, num_threads=n_threads):
            memset(o + k * d, 0, row_bytes)
            for j in range(starts[k], starts[k + 1]):
                # The contributions are grad rows in sorted-id order, scattered over grad:
                # fetch the one a few positions on (perhaps another thread's: only a hint),
                # and, twice as far on, the entries of src_row and scale that find it.
                ahead = j + 2 * PREFETCH_AHEAD
                if ahead < n and (src != NULL or sc != NULL):
                    i = pm[ahead]
                    if src != NULL:
                        fe_prefetch_row(src + i, sizeof(int64_t))
                    if sc != NULL:
                        fe_prefetch_row(sc + i, sizeof(floating))
                ahead = j + PREFETCH_AHEAD
                if ahead < n:
                    i = pm[ahead]
                    fe_prefetch_row(g + (i if src == NULL else src[i]) * d, row_bytes)
                i = pm[j]
                _add_contribution(o + k * d, g, src, sc, i, d)


cdef inline void _add_contribution(floating* dst, const floating* grad, const int64_t* src,
                                   const floating* scale, Py_ssize_t i,
                                   Py_ssize_t d) noexcept nogil:
    """dst += scale[i] * grad[src[i]] (src NULL: row i; scale NULL: no multiplication)."""
    cdef const floating* row = grad + (i if src == NULL else src[i]) * d
    if scale == NULL:
        _add_row(dst, row, d)
    else:
        _add_scaled_row(dst, row, scale[i], d)


# ---------------------------------------------------------------------------------------
# Row ownership: each thread owns a contiguous range of rows and alone writes to them.
# ---------------------------------------------------------------------------------------

cdef inline Py_ssize_t _owner_of(int64_t row, const int64_t* bounds,
                                 Py_ssize_t n_owners) noexcept nogil:
    """The t with bounds[t] <= row < bounds[t + 1] (bounds ascending, may repeat)."""
    cdef Py_ssize_t lo = 0, hi = n_owners, mid
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if row >= bounds[mid]:
            lo = mid
        else:
            hi = mid
    return lo


def owner_bounds(const index_t[::1] ids,          # IN (N,)
                 int64_t num_embeddings,
                 Py_ssize_t n_owners,
                 Py_ssize_t sample_min,
                 Py_ssize_t sample_max,
                 Py_ssize_t stride,
                 double cold_cost):
    """Row ranges [b_t, b_t+1) for ``n_owners`` threads, each with about the same work.

    The cut points are weighted quantiles of a strided sample of about N / ``stride`` ids
    (at least ``sample_min``, at most ``sample_max``): a sampled id whose row occurs again in
    the sample is hot (cost 1), one seen once is cold (cost 1 + ``cold_cost``). See
    ``fastembed._rows.owner_bounds``. In C: the NumPy version cost tens of microseconds, more
    than the rest of a small call's partition.
    """
    cdef Py_ssize_t n = ids.shape[0]
    bounds_np = np.empty(n_owners + 1, dtype=np.int64)
    cdef int64_t[::1] bounds = bounds_np
    cdef Py_ssize_t t, j, k, m, step, n_sample, lo, hi, mid
    cdef double total, target
    bounds[0] = 0
    bounds[n_owners] = num_embeddings
    if n_owners <= 1:
        return bounds_np
    if n == 0:
        for t in range(1, n_owners):
            bounds[t] = num_embeddings  # nothing to share out: owner 0 gets every row
        return bounds_np
    n_sample = min(sample_max, max(sample_min, n // stride))
    step = max(1, n // n_sample)
    m = (n + step - 1) // step
    sample_np = np.empty(m, dtype=np.int64)
    cdef int64_t[::1] sample = sample_np
    for k in range(m):
        sample[k] = ids[k * step]
    sample_np.sort()
    cost_np = np.empty(m, dtype=np.float64)
    cdef double[::1] cost = cost_np
    total = 0.0
    for j in range(m):
        if (j > 0 and sample[j] == sample[j - 1]) or (j < m - 1 and sample[j] == sample[j + 1]):
            total = total + 1.0
        else:
            total = total + (1.0 + cold_cost)
        cost[j] = total
    for t in range(1, n_owners):
        target = total * t / n_owners
        lo = 0                              # the first j with cost[j] >= target
        hi = m
        while lo < hi:
            mid = (lo + hi) // 2
            if cost[mid] < target:
                lo = mid + 1
            else:
                hi = mid
        bounds[t] = max(sample[min(lo, m - 1)], bounds[t - 1])
    return bounds_np


def partition_by_owner(const index_t[::1] ids,     # IN (N,)
                       const int64_t[::1] bounds,  # IN (T + 1,): owner t has rows [b_t, b_t+1)
                       int n_threads):
    """Stable partition of the positions 0..N-1 by the owner of their row.

    Returns ``pos`` (int64, N) and ``starts`` (int64, T + 1): owner t's positions are
    ``pos[starts[t]:starts[t + 1]]``, in increasing order. One counting pass with T buckets,
    parallel over contiguous chunks of positions, as in ``_radix_pass``.
    """
    cdef Py_ssize_t n = ids.shape[0]
    cdef Py_ssize_t n_owners = bounds.shape[0] - 1
    cdef Py_ssize_t n_chunks = max(1, min(<Py_ssize_t>n_threads, n))
    cdef Py_ssize_t c, i, t, lo, hi
    cdef int64_t total, cnt
    cdef int64_t* h
    # Each chunk's counters sit at least a cache line apart from the next chunk's, so that
    # threads incrementing their own counters do not fight over one line (false sharing).
    cdef Py_ssize_t stride = n_owners + 8
    cdef int64_t[::1] counts = np.zeros(n_chunks * stride, dtype=np.int64)
    pos_np = np.empty(n, dtype=np.int64)
    starts_np = np.empty(n_owners + 1, dtype=np.int64)
    cdef int64_t[::1] pos = pos_np
    cdef int64_t[::1] starts = starts_np
    with nogil:
        for c in prange(n_chunks, schedule="static", num_threads=n_threads):
            lo = _chunk_start(n, n_chunks, c)
            hi = _chunk_start(n, n_chunks, c + 1)
            h = &counts[c * stride]
            for i in range(lo, hi):
                h[_owner_of(ids[i], &bounds[0], n_owners)] += 1
        total = 0
        for t in range(n_owners):
            starts[t] = total
            for c in range(n_chunks):
                cnt = counts[c * stride + t]
                counts[c * stride + t] = total
                total = total + cnt
        starts[n_owners] = total
        for c in prange(n_chunks, schedule="static", num_threads=n_threads):
            lo = _chunk_start(n, n_chunks, c)
            hi = _chunk_start(n, n_chunks, c + 1)
            h = &counts[c * stride]
            for i in range(lo, hi):
                t = _owner_of(ids[i], &bounds[0], n_owners)
                pos[h[t]] = i
                h[t] += 1
    return pos_np, starts_np


cdef inline Py_ssize_t _position(const int64_t* pos, Py_ssize_t j) noexcept nogil:
    """Owner-local position j -> global position (identity when there is one owner)."""
    return j if pos == NULL else pos[j]


def scatter_add_owned(floating[:, ::1] table,      # IN/OUT (V, D)
                      const index_t[::1] ids,       # IN (N,), all in [0, V)
                      const floating[:, ::1] grad,  # IN (N, D)
                      const int64_t[::1] pos,       # IN (N,) from partition_by_owner, or None
                      const int64_t[::1] starts,    # IN (T + 1,)
                      int n_threads):
    """table[ids[i]] += grad[i], each owner adding its positions in increasing order.

    A row is written by one owner only, and receives its contributions in increasing position
    order: the result is bitwise that of the serial loop (and of ``np.add.at``) for any number
    of owners. With ``pos`` None there is a single owner and positions are 0..N-1.
    """
    cdef Py_ssize_t n_owners = starts.shape[0] - 1
    cdef Py_ssize_t d = grad.shape[1]
    cdef Py_ssize_t t
    cdef const int64_t* p = NULL
    cdef floating* tab
    cdef const floating* g
    cdef const index_t* idp
    if pos is not None and pos.shape[0] > 0:
        p = &pos[0]
    if d == 0 or starts[n_owners] == 0:
        return
    # Each owner's rows by the loop of scatterrows.h, its table rows (and its grad rows, not
    # contiguous with two owners) prefetched a few positions ahead.
    tab = &table[0, 0]
    g = &grad[0, 0]
    idp = &ids[0]
    with nogil:
        for t in prange(n_owners, schedule="static", chunksize=1, num_threads=n_threads):
            if floating is float:
                fe_scatter_rows_f(tab, g, idp, sizeof(index_t), p, starts[t], starts[t + 1],
                                  d, PREFETCH_AHEAD)
            else:
                fe_scatter_rows_d(tab, g, idp, sizeof(index_t), p, starts[t], starts[t + 1],
                                  d, PREFETCH_AHEAD)


def values_array(buffer, Py_ssize_t u, Py_ssize_t d, dtype):
    """The first u rows of ``buffer`` if it can hold (u, d) values of ``dtype``, else a new
    uninitialised array: where coalesce's sums go (``coalesce_owned``, and the sort path in
    ``fastembed._rows.coalesce_checked``)."""
    if (isinstance(buffer, np.ndarray) and buffer.dtype == dtype and buffer.ndim == 2
            and buffer.shape[0] >= u and buffer.shape[1] == d and buffer.flags.c_contiguous
            and buffer.flags.writeable):
        return buffer[:u]
    return np.empty((u, d), dtype=dtype)


def coalesce_owned(const index_t[::1] ids,      # IN (N,), all in [0, V)
                   const floating[:, ::1] grad,  # IN (M, D)
                   const int64_t[::1] pos,       # IN (N,) from partition_by_owner, or None
                   const int64_t[::1] starts,    # IN (T + 1,)
                   const int64_t[::1] bounds,    # IN (T + 1,), bounds[T] = V
                   const int64_t[::1] src_row,   # IN (N,) or None: position -> row of grad
                   const floating[::1] scale,    # IN (N,) or None: position -> factor
                   int n_threads,
                   values_buffer=None):          # (M, D) or None: where values may go
    """Coalesce with a dense (V,) row -> slot map; for V not much larger than N.

    Returns (rows, values, counts): the distinct ids ascending, their summed contributions
    (each summed from +0.0 in increasing position order, as ``np.add.at`` into zeros) and how
    often each occurs. The contribution of position i is ``scale[i] * grad[src_row[i]]``, as
    in ``segment_sum``. ``values`` is the first U rows of ``values_buffer`` when that is a
    C-contiguous (M, D) array of the dtype with M >= U (a workspace reused from call to
    call: a fresh array of 10**5+ rows costs its page faults), else a new array.
    Owner t marks its rows, numbers them in ascending order after the
    slots of owners < t, then adds its positions' contributions in increasing order.
    """
    cdef Py_ssize_t n_owners = starts.shape[0] - 1
    cdef Py_ssize_t n_rows = bounds[n_owners]
    cdef Py_ssize_t d = grad.shape[1]
    cdef Py_ssize_t t, j, i, r, k, end, ahead
    cdef size_t row_bytes = d * sizeof(floating)
    cdef int64_t u
    cdef const int64_t* p = NULL
    if pos is not None and pos.shape[0] > 0:
        p = &pos[0]
    cdef int64_t[::1] slot = np.empty(max(n_rows, 1), dtype=np.int64)
    cdef int64_t[::1] n_unique = np.zeros(n_owners + 1, dtype=np.int64)
    cdef int64_t[::1] rows_v, counts_v
    cdef floating[:, ::1] values_v
    with nogil:
        for t in prange(n_owners, schedule="static", chunksize=1, num_threads=n_threads):
            for r in range(bounds[t], bounds[t + 1]):
                slot[r] = -1
            for j in range(starts[t], starts[t + 1]):
                slot[ids[_position(p, j)]] = 0
            k = 0
            for r in range(bounds[t], bounds[t + 1]):
                if slot[r] == 0:
                    k = k + 1
            n_unique[t + 1] = k
        for t in range(n_owners):
            n_unique[t + 1] += n_unique[t]
    u = n_unique[n_owners]
    rows = np.empty(u, dtype=np.int64)
    counts = np.zeros(u, dtype=np.int64)
    # Not np.zeros: each owner zeroes its own slots below, so that the page faults of a large
    # fresh array are taken by all threads, not by one.
    values = values_array(values_buffer, u, d,
                           np.float32 if floating is float else np.float64)
    rows_v = rows
    counts_v = counts
    values_v = values
    if u == 0:
        return rows, values, counts
    # Raw pointers for the hot loop (see scatter_add_owned).
    cdef const index_t* idp = &ids[0]
    cdef int64_t* sl = &slot[0]
    cdef floating* vals = NULL
    cdef const floating* g = NULL
    cdef const int64_t* src = NULL
    cdef const floating* sc = NULL
    if d:
        vals = &values_v[0, 0]
        g = &grad[0, 0]
    if src_row is not None:
        src = &src_row[0]
    if scale is not None:
        sc = &scale[0]
    with nogil:
        for t in prange(n_owners, schedule="static", chunksize=1, num_threads=n_threads):
            k = n_unique[t]
            if d:
                memset(vals + k * d, 0, (n_unique[t + 1] - k) * row_bytes)
            for r in range(bounds[t], bounds[t + 1]):
                if sl[r] == 0:
                    sl[r] = k
                    rows_v[k] = r
                    k = k + 1
            end = starts[t + 1]
            for j in range(starts[t], end):
                ahead = j + PREFETCH_AHEAD
                if d and ahead < end:
                    i = _position(p, ahead)
                    fe_prefetch_row_w(vals + sl[idp[i]] * d, row_bytes)
                    if p != NULL:
                        fe_prefetch_row(g + (i if src == NULL else src[i]) * d, row_bytes)
                i = _position(p, j)
                k = sl[idp[i]]
                counts_v[k] += 1
                if d:
                    _add_contribution(vals + k * d, g, src, sc, i, d)
    return rows, values, counts
