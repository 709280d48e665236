"""Compiled kernels of the sparse optimizers: row updates, unfused and fused with backward.

Layers as in ``indexing.pyx``. The hyper-parameters travel in one ``OptimConfig`` struct,
filled once with the GIL held (``_config``); the nogil loops then call ``_update_row`` for each
touched row. A row is updated by one thread, so results do not depend on the thread count.

``sparse_step`` applies a coalesced gradient (rows, values). ``fused_step`` takes the grouped
positions of a batch (``group_by_row``) and, row by row, sums the row's contributions into a
per-thread buffer in increasing position order, exactly as ``coalesce`` would, then updates
the row at once: the (U, D) gradient is never built, and the result is bitwise that of
``backward()`` followed by ``step()``.
"""
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt, sqrtf
from libc.stdint cimport int64_t
from libc.string cimport memset

from .omp cimport omp_get_thread_num
from .rowops cimport add_row, add_scaled_row, fe_prefetch_row
from .typedefs cimport floating

import numpy as np

cdef enum:
    PREFETCH_AHEAD = 16
    KIND_SGD = 0
    KIND_ADAGRAD = 1
    KIND_ROWWISE_ADAGRAD = 2
    KIND_ADAM = 3

KINDS = {"sgd": KIND_SGD, "adagrad": KIND_ADAGRAD, "rowwise_adagrad": KIND_ROWWISE_ADAGRAD,
         "adam": KIND_ADAM}


cdef struct OptimConfig:
    int kind
    double lr            # SGD, Adagrad (the decayed clr), row-wise Adagrad
    double momentum      # SGD
    double eps           # Adagrad, row-wise Adagrad, Adam
    double beta1         # Adam
    double beta2         # Adam
    double step_size     # Adam: lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    double decay         # AdamW: 1 - lr * weight_decay (1.0 for Adam)


cdef OptimConfig _config(dict hyper) except *:
    """Fill the struct from the Python-side dict (with the GIL, before the nogil region)."""
    cdef OptimConfig cfg
    cfg.kind = KINDS[hyper["kind"]]
    cfg.lr = hyper.get("lr", 0.0)
    cfg.momentum = hyper.get("momentum", 0.0)
    cfg.eps = hyper.get("eps", 0.0)
    cfg.beta1 = hyper.get("beta1", 0.0)
    cfg.beta2 = hyper.get("beta2", 0.0)
    cfg.step_size = hyper.get("step_size", 0.0)
    cfg.decay = hyper.get("decay", 1.0)
    return cfg


cdef inline floating _sqrt(floating x) noexcept nogil:
    """sqrt in the table's precision (libc's sqrt would promote float32 to double)."""
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void _update_row(const OptimConfig* cfg, floating* w, const floating* g,
                             floating* s1, floating* s2, Py_ssize_t d) noexcept nogil:
    """Update one touched row w with its summed gradient g and its state rows s1, s2.

    The arithmetic follows PyTorch's sparse paths step by step, in the table's precision, so
    that float32 results agree with torch to rounding.
    """
    cdef Py_ssize_t c
    cdef floating lr = <floating>cfg.lr
    cdef floating eps = <floating>cfg.eps
    cdef floating one_m_b1, one_m_b2, step, decay, old_m, old_v, upd_m, upd_v, mean_sq
    if cfg.kind == KIND_SGD:
        if cfg.momentum == 0:
            for c in range(d):                    # w += -lr * g
                w[c] = w[c] + (-lr) * g[c]
        else:
            for c in range(d):                    # buf = momentum * buf + g; w += -lr * buf
                s1[c] = <floating>cfg.momentum * s1[c] + g[c]
                w[c] = w[c] + (-lr) * s1[c]
    elif cfg.kind == KIND_ADAGRAD:
        for c in range(d):                        # sum += g^2; w += -lr * g / (sqrt(sum) + eps)
            s1[c] = s1[c] + g[c] * g[c]
            w[c] = w[c] + (-lr) * (g[c] / (_sqrt(s1[c]) + eps))
    elif cfg.kind == KIND_ROWWISE_ADAGRAD:
        mean_sq = 0                               # one accumulator per row: mean of g^2
        for c in range(d):
            mean_sq = mean_sq + g[c] * g[c]
        if d:
            mean_sq = mean_sq / <floating>d
        s1[0] = s1[0] + mean_sq
        step = lr / (_sqrt(s1[0]) + eps)
        for c in range(d):
            w[c] = w[c] - step * g[c]
    else:                                         # Adam / AdamW, lazy (PyTorch's SparseAdam)
        one_m_b1 = <floating>(1.0 - cfg.beta1)
        one_m_b2 = <floating>(1.0 - cfg.beta2)
        step = <floating>cfg.step_size
        decay = <floating>cfg.decay
        for c in range(d):
            if cfg.decay != 1.0:
                w[c] = w[c] * decay               # AdamW: decoupled decay, touched rows only
            old_m = s1[c]
            old_v = s2[c]
            upd_m = (g[c] - old_m) * one_m_b1     # m += (1 - b1) (g - m)
            upd_v = (g[c] * g[c] - old_v) * one_m_b2
            s1[c] = old_m + upd_m
            s2[c] = old_v + upd_v
            w[c] = w[c] + (-step) * ((upd_m + old_m) / (_sqrt(upd_v + old_v) + eps))


cdef inline floating* _state_row(floating[:, ::1] state, int64_t r) noexcept nogil:
    return &state[r, 0] if state.shape[1] > 0 else NULL


def sparse_step(floating[:, ::1] weight,          # IN/OUT (V, D)
                const int64_t[::1] rows,          # IN (U,), distinct
                const floating[:, ::1] values,    # IN (U, D)
                floating[:, ::1] state1,          # IN/OUT (V, D), (V, 1) or (1, 0) unused
                floating[:, ::1] state2,          # IN/OUT (V, D) or (1, 0) unused
                dict hyper,
                int n_threads):
    """Apply one optimizer step to the rows of a coalesced gradient."""
    cdef OptimConfig cfg = _config(hyper)
    cdef Py_ssize_t n_rows = rows.shape[0]
    cdef Py_ssize_t d = weight.shape[1]
    cdef Py_ssize_t k
    cdef int64_t r
    if n_rows == 0 or d == 0:
        return
    with nogil:
        for k in prange(n_rows, schedule="static", num_threads=n_threads):
            r = rows[k]
            _update_row(&cfg, &weight[r, 0], &values[k, 0], _state_row(state1, r),
                        _state_row(state2, r), d)


def fused_step(floating[:, ::1] weight,           # IN/OUT (V, D)
               const floating[:, ::1] grad,       # IN (M, D): rows the positions draw from
               const int64_t[::1] perm,           # IN (N,) from group_by_row
               const int64_t[::1] rows,           # IN (U,)
               const int64_t[::1] starts,         # IN (U + 1,)
               const int64_t[::1] src_row,        # IN (N,) or None: position -> grad row
               const floating[::1] scale,         # IN (N,) or None: position -> factor
               bint divide_by_count,              # scale_grad_by_freq
               int64_t skip_row,                  # padding_idx, or -1
               floating[:, ::1] state1,
               floating[:, ::1] state2,
               dict hyper,
               int n_threads):
    """Backward and optimizer step in one pass over the grouped positions of a batch."""
    cdef OptimConfig cfg = _config(hyper)
    cdef Py_ssize_t n_seg = rows.shape[0]
    cdef Py_ssize_t d = weight.shape[1]
    # One scratch row per thread, padded so that two threads' rows never share a cache line.
    cdef Py_ssize_t stride = d + 16
    cdef floating[:, ::1] scratch
    cdef floating* buf
    cdef Py_ssize_t k, j, i, c
    cdef int64_t r
    cdef floating count
    cdef const int64_t* src = NULL
    cdef const floating* sc = NULL
    if n_seg == 0 or d == 0:
        return
    scratch = np.empty((max(n_threads, 1), stride),
                       dtype=np.float32 if floating is float else np.float64)
    if src_row is not None and src_row.shape[0] > 0:
        src = &src_row[0]
    if scale is not None and scale.shape[0] > 0:
        sc = &scale[0]
    cdef const floating* g = &grad[0, 0]
    cdef Py_ssize_t n_pos = perm.shape[0]
    cdef size_t row_bytes = d * sizeof(floating)
    buf = NULL
    with nogil, parallel(num_threads=n_threads):
        buf = &scratch[omp_get_thread_num(), 0]
        for k in prange(n_seg, schedule="dynamic", chunksize=64):
            r = rows[k]
            if r == skip_row:
                continue
            memset(buf, 0, d * sizeof(floating))
            for j in range(starts[k], starts[k + 1]):
                # The positions of a row are scattered through grad: fetch ahead.
                if j + PREFETCH_AHEAD < n_pos:
                    i = perm[j + PREFETCH_AHEAD]
                    fe_prefetch_row(g + (i if src == NULL else src[i]) * d, row_bytes)
                i = perm[j]
                if sc == NULL:
                    add_row(buf, g + (i if src == NULL else src[i]) * d, d)
                else:
                    add_scaled_row(buf, g + (i if src == NULL else src[i]) * d, sc[i], d)
            if divide_by_count:
                count = <floating>(starts[k + 1] - starts[k])
                for c in range(d):
                    buf[c] = buf[c] / count
            _update_row(&cfg, &weight[r, 0], buf, _state_row(state1, r),
                        _state_row(state2, r), d)
