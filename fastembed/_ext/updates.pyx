"""Compiled kernels of the sparse optimizers: row updates, unfused and fused with backward.

Layers as in ``indexing.pyx``. The hyper-parameters travel in one ``OptimConfig`` struct,
filled once with the GIL held (``_config``); the nogil loops then call ``_update_row`` for each
touched row. A row is updated by one thread, so results do not depend on the thread count.

``sparse_step`` applies a coalesced gradient (rows, values) that ``step()`` has checked.
``fused_step`` applies the gradient that ``backward_and_step`` has just summed with the
``coalesce`` kernels, never handed to Python: it divides by the counts and checks the sums in
the kernel, then updates (bitwise ``backward()`` followed by ``step()``).
"""
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
from libc.stdint cimport int64_t

from .rowops cimport PREFETCH_AHEAD, chunk_start, fe_prefetch_row_w
from .typedefs cimport floating

import numpy as np

cdef enum:
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
               const int64_t[::1] rows,           # IN (U,) distinct, from coalesce
               floating[:, ::1] values,           # IN/OUT (U, D): the summed gradients
               const int64_t[::1] counts,         # IN (U,): positions per row
               bint divide_by_count,              # scale_grad_by_freq
               int64_t skip_row,                  # padding_idx, or -1
               bint check_finite,
               floating[:, ::1] state1,
               floating[:, ::1] state2,
               dict hyper,
               int n_threads):
    """The step of a batch's gradient just summed by ``coalesce``: the fused path.

    Each thread takes an equal share of the rows, divides them by their counts
    (``divide_by_count``) and checks them for NaN and infinity, as ``step()`` checks a
    coalesced gradient. Only when every row is finite does any row change: each thread then
    updates its share, ascending, the weight and state rows fetched ahead (the rows are
    scattered through the table). Returns the number of threads that found a non-finite value
    (0: the step was applied; else nothing was changed).
    """
    cdef OptimConfig cfg = _config(hyper)
    cdef Py_ssize_t d = weight.shape[1]
    cdef Py_ssize_t t, k, c, end, ahead
    cdef int64_t r
    cdef floating count
    cdef floating* v
    cdef int n_bad = 0
    cdef size_t row_bytes = d * sizeof(floating)
    cdef bint has1 = state1.shape[1] > 0, has2 = state2.shape[1] > 0
    cdef size_t row_bytes1 = state1.shape[1] * sizeof(floating)
    cdef Py_ssize_t n_rows = rows.shape[0]
    if n_rows == 0 or d == 0:
        return 0
    cdef floating* vals = &values[0, 0]
    with nogil:
        for t in prange(n_threads, schedule="static", chunksize=1, num_threads=n_threads):
            end = chunk_start(n_rows, n_threads, t + 1)
            for k in range(chunk_start(n_rows, n_threads, t), end):
                if rows[k] == skip_row:
                    continue
                v = vals + k * d
                if divide_by_count:
                    count = <floating>counts[k]
                    for c in range(d):
                        v[c] = v[c] / count
                if check_finite and not _finite_row(v, d):
                    n_bad += 1
                    break
    if n_bad:
        return n_bad
    with nogil:
        for t in prange(n_threads, schedule="static", chunksize=1, num_threads=n_threads):
            end = chunk_start(n_rows, n_threads, t + 1)
            for k in range(chunk_start(n_rows, n_threads, t), end):
                ahead = k + PREFETCH_AHEAD
                if ahead < end:
                    r = rows[ahead]
                    fe_prefetch_row_w(&weight[r, 0], row_bytes)
                    if has1:
                        fe_prefetch_row_w(&state1[r, 0], row_bytes1)
                    if has2:
                        fe_prefetch_row_w(&state2[r, 0], row_bytes)
                r = rows[k]
                if r == skip_row:
                    continue
                _update_row(&cfg, &weight[r, 0], vals + k * d, _state_row(state1, r),
                            _state_row(state2, r), d)
    return 0


cdef inline bint _finite_row(const floating* v, Py_ssize_t d) noexcept nogil:
    """Whether every value of the row is finite: x - x is 0 for finite x, NaN otherwise
    (four independent sums, so that the additions overlap)."""
    cdef floating a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef Py_ssize_t c = 0
    while c + 4 <= d:
        a0 = a0 + (v[c] - v[c])
        a1 = a1 + (v[c + 1] - v[c + 1])
        a2 = a2 + (v[c + 2] - v[c + 2])
        a3 = a3 + (v[c + 3] - v[c + 3])
        c = c + 4
    while c < d:
        a0 = a0 + (v[c] - v[c])
        c = c + 1
    return (a0 + a1) + (a2 + a3) == 0
