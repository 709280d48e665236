/* The scatter-add's row loop: table[ids[i]] += grad[i] for the positions i of [lo, hi).
 *
 * Random rows of a large table miss every cache, and how many of those misses a core keeps
 * in flight decides the speed. The out-of-order window fills with the row additions' loads
 * and stores: with 16-byte vectors a 300-float row is 75 loads, adds and stores, with
 * 64-byte ones 19, so the window reaches rows further on. Measured on an AMD EPYC (Zen 4),
 * one thread, 2**18 rows of 300 floats into a 10**6-row table: 108 ms with 16-byte vectors,
 * 100 ms with 32-byte ones, 66 ms with 64-byte ones (PyTorch's index_add_, whose add is
 * compiled for AVX-512 too: 83 ms); 10**6 rows of 64 floats: 48, 44 and 40 ms.
 *
 * So the loop is compiled three times, for AVX-512F (64-byte vectors), AVX2 (32-byte) and
 * the baseline (16-byte), and vectorpath.h picks one at run time (__builtin_cpu_supports,
 * no -march=native), as for the gather. Each element is one addition whatever the vector
 * width (the tail of a row goes through narrower vectors, then single elements; no FMA, no
 * reduction), so every path gives the same bits. FASTEMBED_NO_CLONES leaves the baseline,
 * FASTEMBED_NO_SIMD a plain loop.
 */
#ifndef FASTEMBED_SCATTERROWS_H
#define FASTEMBED_SCATTERROWS_H

#include <stddef.h>
#include <stdint.h>

#include "rowops.h"
#include "vectorpath.h"

#if FE_VECTORS
/* Unaligned (aligned to one element) vectors of 16, 32 and 64 bytes: rows start anywhere. */
typedef float fe_scatter_f16 __attribute__((vector_size(16), aligned(4), may_alias));
typedef float fe_scatter_f32 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float fe_scatter_f64 __attribute__((vector_size(64), aligned(4), may_alias));
typedef double fe_scatter_d16 __attribute__((vector_size(16), aligned(8), may_alias));
typedef double fe_scatter_d32 __attribute__((vector_size(32), aligned(8), may_alias));
typedef double fe_scatter_d64 __attribute__((vector_size(64), aligned(8), may_alias));
#endif

/* dst[c] += src[c] for c < d, by vectors of VEC (LANES elements) while they fit, then by the
 * narrower ones, then element by element. */
#define FE_SCATTER_STEP(VEC, LANES)                                                           \
    for (; c + (ptrdiff_t)(LANES) <= d; c += (ptrdiff_t)(LANES))                              \
        *(VEC *)(dst + c) = *(const VEC *)(dst + c) + *(const VEC *)(src + c);
#define FE_SCATTER_TAIL for (; c < d; c++) dst[c] = dst[c] + src[c];

/* The loop over positions j of [lo, hi): i = pos[j] (pos NULL: i = j), table row ids[i]
 * += grad row i. With ahead > 0, the table row `ahead` positions on (before hi) is
 * prefetched for writing, and its grad row too when pos is given (an owner's positions are
 * irregularly spaced: a stream the hardware prefetcher cannot follow). ADD is the row sum. */
#define FE_SCATTER_BODY(T, ADD)                                                               \
    const size_t row_bytes = (size_t)d * sizeof(T);                                           \
    ptrdiff_t j, i, k;                                                                        \
    for (j = lo; j < hi; j++) {                                                               \
        T *dst;                                                                               \
        const T *src;                                                                         \
        ptrdiff_t c = 0;                                                                      \
        if (ahead > 0 && j + ahead < hi) {                                                    \
            k = pos == NULL ? j + ahead : pos[j + ahead];                                     \
            fe_prefetch_row_w(table + fe_scatter_id(ids, id_bytes, k) * d, row_bytes);        \
            if (pos != NULL) fe_prefetch_row(grad + k * d, row_bytes);                        \
        }                                                                                     \
        i = pos == NULL ? j : pos[j];                                                         \
        dst = table + fe_scatter_id(ids, id_bytes, i) * d;                                    \
        src = grad + i * d;                                                                   \
        ADD                                                                                   \
    }

#define FE_SCATTER_ARGS(T)                                                                    \
    T *restrict table, const T *restrict grad, const void *ids, int id_bytes,                 \
        const int64_t *pos, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t d, ptrdiff_t ahead

static inline int64_t fe_scatter_id(const void *ids, int id_bytes, ptrdiff_t i) {
    return id_bytes == 4 ? (int64_t)((const int32_t *)ids)[i] : ((const int64_t *)ids)[i];
}

#if FE_VECTORS
#define FE_SCATTER_ADD_BASE(V) FE_SCATTER_STEP(V##16, 16 / sizeof(*dst)) FE_SCATTER_TAIL
#define FE_SCATTER_ADD_AVX2(V)                                                                \
    FE_SCATTER_STEP(V##32, 32 / sizeof(*dst)) FE_SCATTER_ADD_BASE(V)
#define FE_SCATTER_ADD_AVX512(V)                                                              \
    FE_SCATTER_STEP(V##64, 64 / sizeof(*dst)) FE_SCATTER_ADD_AVX2(V)
#else
#define FE_SCATTER_ADD_BASE(V) FE_SCATTER_TAIL
#endif

static void fe_scatter_rows_f_base(FE_SCATTER_ARGS(float)) {
    FE_SCATTER_BODY(float, FE_SCATTER_ADD_BASE(fe_scatter_f))
}
static void fe_scatter_rows_d_base(FE_SCATTER_ARGS(double)) {
    FE_SCATTER_BODY(double, FE_SCATTER_ADD_BASE(fe_scatter_d))
}

#if FE_CLONES
__attribute__((target("avx2"))) static void fe_scatter_rows_f_avx2(FE_SCATTER_ARGS(float)) {
    FE_SCATTER_BODY(float, FE_SCATTER_ADD_AVX2(fe_scatter_f))
}
__attribute__((target("avx2"))) static void fe_scatter_rows_d_avx2(FE_SCATTER_ARGS(double)) {
    FE_SCATTER_BODY(double, FE_SCATTER_ADD_AVX2(fe_scatter_d))
}
__attribute__((target("avx512f"))) static void fe_scatter_rows_f_avx512(
    FE_SCATTER_ARGS(float)) {
    FE_SCATTER_BODY(float, FE_SCATTER_ADD_AVX512(fe_scatter_f))
}
__attribute__((target("avx512f"))) static void fe_scatter_rows_d_avx512(
    FE_SCATTER_ARGS(double)) {
    FE_SCATTER_BODY(double, FE_SCATTER_ADD_AVX512(fe_scatter_d))
}
#endif

/* fe_scatter_rows_SUF: table[ids[i]] += grad[i] over positions [lo, hi) (see
 * FE_SCATTER_BODY), on the path that fe_vector_path selects. */
#if FE_CLONES
#define FE_SCATTER_DISPATCH(T, SUF)                                                           \
    static inline void fe_scatter_rows_##SUF(FE_SCATTER_ARGS(T)) {                            \
        if (fe_vector_path == 2)                                                             \
            fe_scatter_rows_##SUF##_avx512(table, grad, ids, id_bytes, pos, lo, hi, d, ahead); \
        else if (fe_vector_path == 1)                                                        \
            fe_scatter_rows_##SUF##_avx2(table, grad, ids, id_bytes, pos, lo, hi, d, ahead);  \
        else                                                                                  \
            fe_scatter_rows_##SUF##_base(table, grad, ids, id_bytes, pos, lo, hi, d, ahead);  \
    }
#else
#define FE_SCATTER_DISPATCH(T, SUF)                                                           \
    static inline void fe_scatter_rows_##SUF(FE_SCATTER_ARGS(T)) {                            \
        fe_scatter_rows_##SUF##_base(table, grad, ids, id_bytes, pos, lo, hi, d, ahead);      \
    }
#endif
FE_SCATTER_DISPATCH(float, f)
FE_SCATTER_DISPATCH(double, d)

#endif
