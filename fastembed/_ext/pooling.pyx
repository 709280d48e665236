"""Compiled kernels of EmbeddingBag: pooled lookups (sum, mean, max) and the max backward.

Layers as in ``indexing.pyx``: per-row helpers (``bagrows.h`` for sum and mean, ``_pool_max``
here), ``def`` kernels over typed memoryviews that trust their arguments, and the checks in
``functional.py`` / ``layers.py``.

Every bag is pooled by one thread, in position order, so the output does not depend on the
thread count. The (B, L, D) gathered rows are never materialised: sum and mean add each bag's
rows into vector registers and write its output row once (``bagrows.h``); max updates the
output row in place. The sum/mean backward goes through the coalesce kernels of
``indexing.pyx`` (each position contributes ``scale * grad_output[bag]``); the max backward
routes each output element's gradient to the row that won it, recorded by the forward.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

from .typedefs cimport floating, index_t

cdef extern from "bagrows.h" nogil:
    void fe_bag_init()
    int fe_bag_force_path(int path)
    int fe_bag_get_path()
    void fe_bag_prefetch_lines(const void* p, size_t nbytes)
    Py_ssize_t fe_bag_prefetch_ahead(size_t nbytes)
    void fe_bag_pool_f(const float* w, const void* ids, int ids64, const float* ps,
                       const int64_t* offsets, Py_ssize_t b_lo, Py_ssize_t b_hi,
                       Py_ssize_t n_ids, int64_t pad, Py_ssize_t d, int mean, float* out,
                       float* denom)
    void fe_bag_pool_d(const double* w, const void* ids, int ids64, const double* ps,
                       const int64_t* offsets, Py_ssize_t b_lo, Py_ssize_t b_hi,
                       Py_ssize_t n_ids, int64_t pad, Py_ssize_t d, int mean, double* out,
                       double* denom)

fe_bag_init()

cdef enum:
    MODE_SUM = 0
    MODE_MEAN = 1
    MODE_MAX = 2
    # sum/mean scheduling, see bag_forward
    CHUNKS_PER_THREAD = 16
    MIN_CHUNK_COST = 4096

MODES = {"sum": MODE_SUM, "mean": MODE_MEAN, "max": MODE_MAX}

# The code paths of the sum/mean pooling loop (see bagrows.h); both give the same bits.
SIMD_PATHS = ("baseline", "avx2")


def simd_path():
    """The vector code path of sum/mean pooling in use: ``"avx2"`` or ``"baseline"``."""
    return SIMD_PATHS[fe_bag_get_path()]


def set_simd_path(name):
    """Use the code path ``name`` (one of ``SIMD_PATHS``); for the tests, which check that
    every path gives the same bits. Returns False, changing nothing, when this build or this
    CPU cannot run it. Not thread-safe: never call it while a kernel runs."""
    if name not in SIMD_PATHS:
        raise ValueError(f"unknown path {name!r}; known: {', '.join(SIMD_PATHS)}")
    return fe_bag_force_path(SIMD_PATHS.index(name)) == 0


def bag_forward(const floating[:, ::1] weight,  # IN (V, D)
                const index_t[::1] ids,         # IN (N,), all in [0, V)
                const int64_t[::1] offsets,     # IN (B + 1,): bag b is ids[off[b]:off[b+1]]
                const floating[::1] psw,        # IN (N,) per-sample weights, or None
                int mode,
                int64_t padding_idx,            # -1: none
                floating[:, ::1] out,           # OUT (B, D)
                floating[::1] denom,            # OUT (B,): rows pooled (or sum of weights)
                int64_t[:, ::1] argmax,         # OUT (B, D) for mode max, else None
                int n_threads):
    """Pool each bag's rows: sum, mean (sum / denom) or elementwise max.

    ``denom[b]`` is the number of non-padding ids of bag b, or the sum of their weights when
    ``psw`` is given. A bag with ``denom[b] == 0`` (empty, all padding, or weights summing to
    zero in mean mode) outputs zeros. In max mode ``argmax[b, c]`` is the id whose row gave
    ``out[b, c]`` (the first one on ties; a NaN wins and stays), -1 for an empty bag.
    """
    cdef Py_ssize_t n_bags = offsets.shape[0] - 1
    cdef Py_ssize_t n_ids = ids.shape[0]
    cdef Py_ssize_t d = weight.shape[1]
    cdef Py_ssize_t b
    cdef floating* o
    if n_bags <= 0:
        return
    cdef const floating* w = &weight[0, 0] if weight.shape[0] > 0 and d > 0 else NULL
    cdef floating* outp = &out[0, 0] if d > 0 else NULL
    cdef int64_t* amp = NULL
    cdef const floating* ps = NULL
    cdef const index_t* idp = NULL
    if argmax is not None and d > 0:
        amp = &argmax[0, 0]
    if psw is not None and psw.shape[0] > 0:
        ps = &psw[0]
    if ids.shape[0] > 0:
        idp = &ids[0]
    cdef const int64_t* offp = &offsets[0]
    cdef floating* denp = &denom[0]
    cdef bint mean = mode == MODE_MEAN
    # Sum and mean: the bags are cut into contiguous chunks of about equal ids + bags, handed
    # out dynamically: one per thread at least, up to CHUNKS_PER_THREAD per thread as long as
    # a chunk costs MIN_CHUNK_COST or more. The prefetch in bagrows.h runs ahead through a
    # whole chunk, and a thread that another process slows down on a shared machine leaves
    # its later chunks to the others. (Measured at the big shape: the same speed as one chunk
    # per thread on an idle machine; in a C model of the loop, chunks of 16 bags were 11%
    # slower: the rows a thread prefetched past the end of its chunk were another thread's.)
    cdef Py_ssize_t cost = (offsets[n_bags] - offsets[0]) + n_bags
    cdef Py_ssize_t n_chunks = max(1, min(<Py_ssize_t>n_threads, n_bags))
    if n_threads > 1:
        n_chunks = max(n_chunks, min(<Py_ssize_t>n_threads * CHUNKS_PER_THREAD,
                                     cost // MIN_CHUNK_COST, n_bags))
    cdef Py_ssize_t t
    with nogil:
        if mode != MODE_MAX:
            if n_chunks == 1:
                _pool_bags(w, idp, ps, offp, 0, n_bags, n_ids, padding_idx, d, mean, outp,
                           denp)
            else:
                for t in prange(n_chunks, schedule="dynamic", chunksize=1,
                                num_threads=n_threads):
                    _pool_bags(w, idp, ps, offp, _split_bags(offp, n_bags, n_chunks, t),
                               _split_bags(offp, n_bags, n_chunks, t + 1), n_ids,
                               padding_idx, d, mean, outp, denp)
        else:
            for b in prange(n_bags, schedule="dynamic", chunksize=16, num_threads=n_threads):
                o = outp + b * d
                if d > 0:
                    memset(o, 0, d * sizeof(floating))
                denp[b] = _pool_max(w, idp, offp[b], offp[b + 1], n_ids, padding_idx, o,
                                    amp + b * d if amp != NULL else NULL, d)


cdef inline void _pool_bags(const floating* w, const index_t* idp, const floating* ps,
                            const int64_t* offp, Py_ssize_t b_lo, Py_ssize_t b_hi,
                            Py_ssize_t n_ids, int64_t padding_idx, Py_ssize_t d, bint mean,
                            floating* outp, floating* denp) noexcept nogil:
    """Sum or mean pooling of bags [b_lo, b_hi) by fe_bag_pool_* (bagrows.h)."""
    cdef int ids64 = 1 if sizeof(index_t) == 8 else 0
    if floating is float:
        fe_bag_pool_f(w, <const void*>idp, ids64, ps, offp, b_lo, b_hi, n_ids, padding_idx,
                      d, mean, outp, denp)
    else:
        fe_bag_pool_d(w, <const void*>idp, ids64, ps, offp, b_lo, b_hi, n_ids, padding_idx,
                      d, mean, outp, denp)


cdef inline Py_ssize_t _split_bags(const int64_t* offp, Py_ssize_t n_bags, Py_ssize_t n_chunks,
                                   Py_ssize_t c) noexcept nogil:
    """First bag of chunk c when bags 0..n_bags-1 are cut into n_chunks contiguous runs of
    about equal cost, a bag costing its ids + 1: the least b with cost(b) >= c/n_chunks of the
    total, cost(b) = offsets[b] - offsets[0] + b, which increases strictly with b."""
    cdef int64_t total = offp[n_bags] - offp[0] + n_bags
    cdef int64_t target = <int64_t>((<double>total * c) / n_chunks) if c < n_chunks else total
    cdef Py_ssize_t lo = 0, hi = n_bags, mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if offp[mid] - offp[0] + mid < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


# _pool_max prefetches like bagrows.h: every cache line of the row, rows ahead in the id
# stream, across bag boundaries (the next bags of the thread's chunk follow).

cdef inline floating _pool_max(const floating* w, const index_t* idp, Py_ssize_t start,
                               Py_ssize_t end, Py_ssize_t n_ids, int64_t padding_idx,
                               floating* o, int64_t* am, Py_ssize_t d) noexcept nogil:
    """Elementwise max of the bag's non-padding rows into o, the winning ids into am.

    The first row wins ties; a NaN wins and stays (as np.max). Returns how many rows; an empty
    bag leaves o at zeros and am at -1.
    """
    cdef Py_ssize_t j, c
    cdef int64_t r
    cdef Py_ssize_t count = 0
    cdef floating v, cur
    cdef const floating* row
    cdef size_t row_bytes = d * sizeof(floating)
    cdef Py_ssize_t ahead = fe_bag_prefetch_ahead(row_bytes)
    for j in range(start, end):
        if j + ahead < n_ids:
            fe_bag_prefetch_lines(w + idp[j + ahead] * d, row_bytes)
        r = idp[j]
        if r == padding_idx:
            continue
        row = w + r * d
        if count == 0:
            for c in range(d):
                o[c] = row[c]
                am[c] = r
        else:
            for c in range(d):
                v = row[c]
                cur = o[c]
                if not (v <= cur) and cur == cur:
                    o[c] = v
                    am[c] = r
        count += 1
    if count == 0:
        for c in range(d):
            am[c] = -1
    return <floating>count


def bag_max_backward(const int64_t[:, ::1] argmax,  # IN (B, D), -1 for empty bags
                     const floating[:, ::1] grad,   # IN (B, D)
                     const int64_t[:, ::1] slot,    # IN (B, D): index of argmax in rows
                     floating[:, ::1] values,       # IN/OUT (U, D), zeros on entry
                     int n_threads):
    """values[slot[b, c], c] += grad[b, c] wherever argmax[b, c] >= 0, b in increasing order.

    Each column is owned by one thread, so every element's sum has a fixed order.
    """
    cdef Py_ssize_t n_bags = argmax.shape[0]
    cdef Py_ssize_t d = argmax.shape[1]
    cdef Py_ssize_t b, c
    if n_bags == 0 or d == 0 or values.shape[0] == 0:
        return
    with nogil:
        for c in prange(d, schedule="static", num_threads=n_threads):
            for b in range(n_bags):
                if argmax[b, c] >= 0:
                    values[slot[b, c], c] += grad[b, c]
