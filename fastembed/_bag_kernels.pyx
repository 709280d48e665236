"""Compiled kernels of EmbeddingBag: pooled lookups (sum, mean, max) and the max backward.

Layers as in ``_kernels.pyx``: per-row helpers from ``_rowops.pxd``, ``def`` kernels over typed
memoryviews that trust their arguments, and the checks in ``functional.py`` / ``layers.py``.

Every bag is pooled by one thread, in position order, so the output does not depend on the
thread count. The (B, L, D) gathered rows are never materialised: each row is added into its
bag's output as it is read. The sum/mean backward goes through the coalesce kernels of
``_kernels.pyx`` (each position contributes ``scale * grad_output[bag]``); the max backward
routes each output element's gradient to the row that won it, recorded by the forward.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memcpy, memset

from ._rowops cimport add_row, add_scaled_row, fe_prefetch_row
from ._typedefs cimport floating, index_t

cdef enum:
    MODE_SUM = 0
    MODE_MEAN = 1
    MODE_MAX = 2
    PREFETCH_AHEAD = 16

MODES = {"sum": MODE_SUM, "mean": MODE_MEAN, "max": MODE_MAX}


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
    cdef Py_ssize_t b, c
    cdef floating acc_w
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
    with nogil:
        for b in prange(n_bags, schedule="dynamic", chunksize=16, num_threads=n_threads):
            o = outp + b * d
            if d > 0:
                memset(o, 0, d * sizeof(floating))
            if mode == MODE_MAX:
                acc_w = _pool_max(w, idp, offsets[b], offsets[b + 1], n_ids, padding_idx, o,
                                  amp + b * d if amp != NULL else NULL, d)
            elif ps == NULL:
                acc_w = _pool_sum(w, idp, offsets[b], offsets[b + 1], n_ids, padding_idx, o, d)
            else:
                acc_w = _pool_weighted_sum(w, idp, ps, offsets[b], offsets[b + 1], n_ids,
                                           padding_idx, o, d)
            if mode == MODE_MEAN:
                if acc_w != 0:
                    for c in range(d):
                        o[c] = o[c] / acc_w
                else:
                    for c in range(d):
                        o[c] = 0
            denom[b] = acc_w


# Bags are contiguous runs of ids, so each pooling loop looks ahead across bag boundaries: the
# next bags of the thread's chunk follow.
#
# _pool_sum and _pool_weighted_sum are deliberately two loops, not one with an `if ps == NULL`
# inside: merging them measured 1.7x slower here (85 against 49 ms for 2**20 ids on 1 thread).

cdef inline floating _pool_sum(const floating* w, const index_t* idp, Py_ssize_t start,
                               Py_ssize_t end, Py_ssize_t n_ids, int64_t padding_idx,
                               floating* o, Py_ssize_t d) noexcept nogil:
    """o += the rows of ids[start:end] that are not padding; returns how many."""
    cdef Py_ssize_t j
    cdef int64_t r
    cdef Py_ssize_t count = 0
    cdef size_t row_bytes = d * sizeof(floating)
    for j in range(start, end):
        if j + PREFETCH_AHEAD < n_ids:
            fe_prefetch_row(w + idp[j + PREFETCH_AHEAD] * d, row_bytes)
        r = idp[j]
        if r != padding_idx:
            add_row(o, w + r * d, d)
            count += 1
    return <floating>count


cdef inline floating _pool_weighted_sum(const floating* w, const index_t* idp,
                                        const floating* ps, Py_ssize_t start, Py_ssize_t end,
                                        Py_ssize_t n_ids, int64_t padding_idx, floating* o,
                                        Py_ssize_t d) noexcept nogil:
    """o += ps[j] * row for the non-padding ids of the bag; returns the sum of their weights."""
    cdef Py_ssize_t j
    cdef int64_t r
    cdef floating total = 0
    cdef size_t row_bytes = d * sizeof(floating)
    for j in range(start, end):
        if j + PREFETCH_AHEAD < n_ids:
            fe_prefetch_row(w + idp[j + PREFETCH_AHEAD] * d, row_bytes)
        r = idp[j]
        if r != padding_idx:
            add_scaled_row(o, w + r * d, ps[j], d)
            total = total + ps[j]
    return total


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
    for j in range(start, end):
        if j + PREFETCH_AHEAD < n_ids:
            fe_prefetch_row(w + idp[j + PREFETCH_AHEAD] * d, row_bytes)
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
