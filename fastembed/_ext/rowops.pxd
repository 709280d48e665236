# Per-row helpers shared by the compiled modules (layer 1 of the kernels: nogil, inline).
from .typedefs cimport floating

cdef extern from "rowops.h" nogil:
    void fe_prefetch_row(const void* row, size_t nbytes)
    void fe_prefetch_row_w(const void* row, size_t nbytes)

cdef enum:
    # Rows are prefetched this many positions ahead: random rows of a large table are
    # latency-bound, and a few misses in flight per thread hide most of the latency.
    PREFETCH_AHEAD = 16


cdef inline void add_row(floating* dst, const floating* src, Py_ssize_t d) noexcept nogil:
    """dst[:] += src[:] (a loop the compiler vectorises)."""
    cdef Py_ssize_t c
    for c in range(d):
        dst[c] += src[c]


cdef inline void add_scaled_row(floating* dst, const floating* src, floating scale,
                                Py_ssize_t d) noexcept nogil:
    """dst[:] += scale * src[:]."""
    cdef Py_ssize_t c
    for c in range(d):
        dst[c] += scale * src[c]


cdef inline Py_ssize_t chunk_start(Py_ssize_t n, Py_ssize_t n_chunks,
                                   Py_ssize_t c) noexcept nogil:
    """First position of chunk c when 0..n-1 is cut into n_chunks contiguous chunks."""
    return (n // n_chunks) * c + min(c, n % n_chunks)
