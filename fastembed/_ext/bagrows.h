/* Sum and mean pooling of bags: the hot loop of EmbeddingBag's forward (``bag_forward`` in
 * pooling.pyx, modes "sum" and "mean", with or without per-sample weights).
 *
 * For bag b = ids[offsets[b]:offsets[b + 1]] and every column c, in the table's type T:
 *
 *     acc = +0;  for j in the bag, in position order, skipping padding:  acc = acc + row_j[c]
 *                                          (weighted: acc = acc + ps[j] * row_j[c])
 *     out[b, c] = acc                      (mean: acc / denom[b], or 0 when denom[b] == 0)
 *
 * which is the NumPy reference of tests/test_bags.py, operation for operation: each element's
 * sum is a chain of scalar IEEE additions in position order. Vector instructions only do
 * several columns' chains side by side, so the bits do not depend on the vector width, on the
 * instruction set picked at run time, or on the thread count. The build has no FMA contraction
 * (-ffp-contract=off; GCC's "avx2" target has no FMA either), so `acc + ps[j] * v` rounds the
 * product first, as NumPy does.
 *
 * How it is fast (numbers in bench/README.md, "Bags and optimizer step"):
 *
 * - A bag's accumulator lives in vector registers: a block of FE_BAG_BLOCK_BYTES = 128 bytes
 *   of columns (4 AVX2 or 8 SSE registers) is zeroed (or loaded) once, every row of the bag
 *   is added into it, and it is stored once, instead of a load and a store of the output row
 *   per id. A D = 64 float32 row takes two blocks, so two passes over the bag's rows, the
 *   second one from L1/L2. One pass with all 256 bytes in 8 AVX2 registers measured 1.4x
 *   slower with uniform ids (29 against 20 ms for 2**20 ids on 1 thread, 15 against 10.5 ms
 *   on 2) and 1.1x slower with Zipf ids, in a C model of this loop; blocks of 64 bytes were
 *   slower again (24 ms). The VM exposes no performance counters to say why. A long bag is
 *   done in segments of FE_BAG_SEGMENT ids, so that the rows of a segment are still in L1/L2
 *   when the next column block re-reads them.
 * - Rows are prefetched FE_BAG_PREFETCH_BYTES ahead in the id stream (64 ids of a 256-byte
 *   row), across bag boundaries, into L2 (prefetcht1; prefetcht0 and prefetchnta measured
 *   slower). Every cache line that holds a byte of the row is prefetched: a NumPy array of
 *   more than a few pages starts 16 bytes past a page boundary (glibc's mmap chunk header),
 *   so each 256-byte row spans five lines, not four, and prefetching four left one miss per
 *   row unhidden (39 against 27 ms for 2**20 random rows on one thread, in the C model).
 * - The body is compiled twice: with 32-byte vectors for AVX2 (`target("avx2")`) and with
 *   16-byte vectors for the baseline instruction set (SSE2 on x86-64, NEON on aarch64), and
 *   fe_bag_pool_* picks one at run time (__builtin_cpu_supports; no -march=native). Both give
 *   the same bits; fe_bag_force_path lets the tests run each one.
 */
#ifndef FASTEMBED_BAGROWS_H
#define FASTEMBED_BAGROWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rowops.h"

/* How far ahead rows are prefetched, in bytes of rows: FE_BAG_PREFETCH_BYTES / row bytes
 * ids, at least 4 and at most 64. With Zipf ids most rows are cache hits and the loop runs
 * fast, so a miss must be requested long before it is needed: 64 ids measured 1.6x faster
 * than 16 there (in the C model), and no slower with uniform ids; 128 made no difference. */
#define FE_BAG_PREFETCH_BYTES 16384
#define FE_BAG_PREFETCH_MIN 4
#define FE_BAG_PREFETCH_MAX 64
/* Ids per segment of a bag, and bytes of columns per block (see above). */
#define FE_BAG_SEGMENT 64
#define FE_BAG_BLOCK_BYTES 128

#if defined(__GNUC__) || defined(__clang__)
#define FE_BAG_INLINE static inline __attribute__((always_inline))
#else
#define FE_BAG_INLINE static inline
#endif

/* The vector types (FE_VECTORS, rowops.h). */
#if FE_VECTORS
typedef float fe_bag_f16 __attribute__((vector_size(16)));
typedef double fe_bag_d16 __attribute__((vector_size(16)));
typedef float fe_bag_f32 __attribute__((vector_size(32)));
typedef double fe_bag_d32 __attribute__((vector_size(32)));
#endif

/* The AVX2 twin, on x86 with GCC or Clang. FASTEMBED_NO_CLONES (also honoured by sgns.h)
 * leaves only the baseline. */
#if FE_CLONES
#define FE_BAG_AVX2 1
#define FE_BAG_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define FE_BAG_AVX2 0
#endif

/* The code path bag_forward uses: 1 = AVX2, 0 = baseline. Set by fe_bag_init. */
static int fe_bag_path = 0;

/* Pick the path for this CPU (called once, when the module is imported). */
static void fe_bag_init(void) { fe_bag_path = FE_BAG_AVX2 && fe_cpu_runs(1) ? 1 : 0; }

/* For the tests: force path 0 (baseline) or 1 (AVX2); returns 0, or -1 when this build or
 * this CPU cannot run the path (nothing changes then). Not thread-safe: call it between
 * kernels, never during one. */
static int fe_bag_force_path(int path) {
    if (path != 0 && !(FE_BAG_AVX2 && path == 1 && fe_cpu_runs(1))) return -1;
    fe_bag_path = path;
    return 0;
}

static int fe_bag_get_path(void) { return fe_bag_path; }

/* Prefetch, for reading, every cache line that holds a byte of [p, p + nbytes): the lines of
 * p, p + 64, ... and of the last byte (the same line again when p is 64-byte aligned). No
 * alignment test and, for a literal nbytes, no loop: this runs for every id, cached or not.
 * (With the count pass skipped when there is no padding, this measured 7% faster than an
 * aligned loop over the lines with Zipf ids, where most rows are cached.) */
FE_BAG_INLINE void fe_bag_prefetch_lines(const void *p, size_t nbytes) {
    fe_prefetch_row(p, nbytes); /* rowops.h: the same lines, always inlined */
}

/* How many ids ahead rows of nbytes bytes are prefetched. */
static inline ptrdiff_t fe_bag_prefetch_ahead(size_t nbytes) {
    size_t ahead = nbytes ? FE_BAG_PREFETCH_BYTES / nbytes : FE_BAG_PREFETCH_MAX;
    if (ahead < FE_BAG_PREFETCH_MIN) ahead = FE_BAG_PREFETCH_MIN;
    if (ahead > FE_BAG_PREFETCH_MAX) ahead = FE_BAG_PREFETCH_MAX;
    return (ptrdiff_t)ahead;
}

/* ids are int64 when ids64, else int32 (a constant wherever it is used: the functions below
 * are inlined into fe_bag_pool_*, which call them with literal flags). */
FE_BAG_INLINE int64_t fe_bag_id(const void *ids, const int ids64, ptrdiff_t j) {
    return ids64 ? ((const int64_t *)ids)[j] : (int64_t)((const int32_t *)ids)[j];
}

/* The head of a loop body over positions j of a bag: prefetch the row `ahead` positions on
 * (when pf), read id r = ids[j], and skip it when it is the padding id. */
#define FE_BAG_NEXT_ID(T)                                                                     \
        if (pf && j + ahead < n_ids)                                                          \
            fe_bag_prefetch_lines(w + fe_bag_id(ids, ids64, j + ahead) * d,                   \
                                  (size_t)d * sizeof(T));                                     \
        r = fe_bag_id(ids, ids64, j);                                                         \
        if (r == pad) continue;

/* The columns [c0, d) of rows ids[lo:hi] (fewer than one vector of columns), added into
 * o[c0:d] (zeroed first when `first`), one scalar chain per column. Also the whole row when
 * there are no vector extensions. Prefetches when `pf` (the first block of a segment). */
#define FE_BAG_DEFINE_TAIL(T, SUF)                                                            \
FE_BAG_INLINE void fe_bag_tail_##SUF(const T *w, const void *ids, const int ids64,            \
        const T *ps, const int weighted, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n_ids,         \
        ptrdiff_t ahead, int64_t pad, ptrdiff_t d, ptrdiff_t c0, int first, int pf, T *o) {   \
    ptrdiff_t j, c;                                                                           \
    if (first)                                                                                \
        for (c = c0; c < d; c++) o[c] = 0;                                                    \
    for (j = lo; j < hi; j++) {                                                               \
        int64_t r;                                                                            \
        const T *row;                                                                         \
        FE_BAG_NEXT_ID(T)                                                                     \
        row = w + r * d;                                                                      \
        if (weighted) {                                                                       \
            const T s = ps[j];                                                                \
            for (c = c0; c < d; c++) o[c] = o[c] + s * row[c];                                \
        } else {                                                                              \
            for (c = c0; c < d; c++) o[c] = o[c] + row[c];                                    \
        }                                                                                     \
    }                                                                                         \
}

FE_BAG_DEFINE_TAIL(float, f)
FE_BAG_DEFINE_TAIL(double, d)

#if FE_VECTORS
/* The columns [c0, c0 + nv * VL) of rows ids[lo:hi], VL = the elements of a VT, added into
 * nv vector accumulators (nv a literal 1, 2, 4 or 8: the array is unrolled into registers),
 * which start at zero when `first`, else at o[c0:...], and are stored to o once. Unaligned
 * loads and stores go through memcpy (one vmovups). */
#define FE_BAG_DEFINE_BLOCK(T, VT, SUF)                                                       \
FE_BAG_INLINE void fe_bag_block_##SUF(const T *w, const void *ids, const int ids64,           \
        const T *ps, const int weighted, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n_ids,         \
        ptrdiff_t ahead, int64_t pad, ptrdiff_t d, ptrdiff_t c0, const int nv, int first,     \
        int pf, T *o) {                                                                       \
    enum { VL = sizeof(VT) / sizeof(T) };                                                     \
    const VT zero = {0};                                                                      \
    VT acc[8];                                                                                \
    ptrdiff_t j;                                                                              \
    int k;                                                                                    \
    for (k = 0; k < nv; k++) {                                                                \
        if (first) acc[k] = zero;                                                             \
        else memcpy(&acc[k], o + c0 + k * VL, sizeof(VT));                                    \
    }                                                                                         \
    for (j = lo; j < hi; j++) {                                                               \
        int64_t r;                                                                            \
        const T *row;                                                                         \
        FE_BAG_NEXT_ID(T)                                                                     \
        row = w + r * d + c0;                                                                 \
        if (weighted) {                                                                       \
            const T s = ps[j];                                                                \
            for (k = 0; k < nv; k++) {                                                        \
                VT v;                                                                         \
                memcpy(&v, row + k * VL, sizeof(VT));                                         \
                acc[k] = acc[k] + s * v;                                                      \
            }                                                                                 \
        } else {                                                                              \
            for (k = 0; k < nv; k++) {                                                        \
                VT v;                                                                         \
                memcpy(&v, row + k * VL, sizeof(VT));                                         \
                acc[k] = acc[k] + v;                                                          \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    for (k = 0; k < nv; k++) memcpy(o + c0 + k * VL, &acc[k], sizeof(VT));                    \
}

FE_BAG_DEFINE_BLOCK(float, fe_bag_f16, f16)
FE_BAG_DEFINE_BLOCK(double, fe_bag_d16, d16)
FE_BAG_DEFINE_BLOCK(float, fe_bag_f32, f32)
FE_BAG_DEFINE_BLOCK(double, fe_bag_d32, d32)

/* One segment ids[lo:hi] of a bag, every column: blocks of FE_BAG_BLOCK_BYTES, then at most
 * one block of 4 (16-byte vectors only), 2 and 1 vectors, then the scalar tail. The first
 * block prefetches. */
#define FE_BAG_SEGMENT_COLUMNS(T, VT, SUF, TSUF)                                              \
    do {                                                                                      \
        enum { VL = sizeof(VT) / sizeof(T), NV = FE_BAG_BLOCK_BYTES / sizeof(VT) };           \
        ptrdiff_t c0 = 0;                                                                     \
        int pf = 1;                                                                           \
        for (; c0 + NV * VL <= d; c0 += NV * VL, pf = 0)                                      \
            fe_bag_block_##SUF(w, ids, ids64, ps, weighted, lo, hi, n_ids, ahead, pad, d,     \
                               c0, NV, first, pf, o);                                         \
        if (NV > 4 && c0 + 4 * VL <= d) {                                                     \
            fe_bag_block_##SUF(w, ids, ids64, ps, weighted, lo, hi, n_ids, ahead, pad, d,     \
                               c0, 4, first, pf, o);                                          \
            c0 += 4 * VL; pf = 0;                                                             \
        }                                                                                     \
        if (c0 + 2 * VL <= d) {                                                               \
            fe_bag_block_##SUF(w, ids, ids64, ps, weighted, lo, hi, n_ids, ahead, pad, d,     \
                               c0, 2, first, pf, o);                                          \
            c0 += 2 * VL; pf = 0;                                                             \
        }                                                                                     \
        if (c0 + VL <= d) {                                                                   \
            fe_bag_block_##SUF(w, ids, ids64, ps, weighted, lo, hi, n_ids, ahead, pad, d,     \
                               c0, 1, first, pf, o);                                          \
            c0 += VL; pf = 0;                                                                 \
        }                                                                                     \
        if (c0 < d)                                                                           \
            fe_bag_tail_##TSUF(w, ids, ids64, ps, weighted, lo, hi, n_ids, ahead, pad, d, c0, \
                               first, pf, o);                                                 \
    } while (0)
#else
#define FE_BAG_SEGMENT_COLUMNS(T, VT, SUF, TSUF)                                              \
    fe_bag_tail_##TSUF(w, ids, ids64, ps, weighted, lo, hi, n_ids, ahead, pad, d, 0, first,  \
                       1, o)
#endif

/* Bags [b_lo, b_hi): out rows and denominators (the count of non-padding ids, or the sum of
 * their weights in position order). Mean divides by the denominator, or gives zeros when it
 * is 0 (the bag is then not pooled at all). */
#define FE_BAG_DEFINE_BODY(T, VT, SUF, TSUF)                                                  \
FE_BAG_INLINE void fe_bag_body_##SUF(const T *w, const void *ids, const int ids64,            \
        const T *ps, const int weighted, const int64_t *offsets, ptrdiff_t b_lo,              \
        ptrdiff_t b_hi, ptrdiff_t n_ids, int64_t pad, ptrdiff_t d, int mean, T *out,          \
        T *denom) {                                                                           \
    const ptrdiff_t ahead = fe_bag_prefetch_ahead((size_t)d * sizeof(T));                     \
    ptrdiff_t b, j, c, lo, hi;                                                                \
    for (b = b_lo; b < b_hi; b++) {                                                           \
        const ptrdiff_t start = (ptrdiff_t)offsets[b], end = (ptrdiff_t)offsets[b + 1];       \
        T *o = out + b * d;                                                                   \
        T den;                                                                                \
        if (weighted) {                                                                       \
            den = 0;                                                                          \
            for (j = start; j < end; j++)                                                     \
                if (fe_bag_id(ids, ids64, j) != pad) den = den + ps[j];                       \
        } else {                                                                              \
            ptrdiff_t count = end - start;  /* pad < 0: no padding, every id counts */       \
            if (pad >= 0)                                                                     \
                for (count = 0, j = start; j < end; j++)                                      \
                    count += fe_bag_id(ids, ids64, j) != pad;                                 \
            den = (T)count;                                                                   \
        }                                                                                     \
        denom[b] = den;                                                                       \
        if (start == end || (mean && den == 0)) {                                             \
            if (d > 0) memset(o, 0, (size_t)d * sizeof(T));                                   \
            continue;                                                                         \
        }                                                                                     \
        for (lo = start; lo < end; lo = hi) {                                                 \
            const int first = lo == start;                                                    \
            hi = end - lo > FE_BAG_SEGMENT ? lo + FE_BAG_SEGMENT : end;                       \
            FE_BAG_SEGMENT_COLUMNS(T, VT, SUF, TSUF);                                         \
        }                                                                                     \
        if (mean)                                                                             \
            for (c = 0; c < d; c++) o[c] = o[c] / den;                                        \
    }                                                                                         \
}

/* The four specialisations (int32/int64 ids x with/without weights) of one body, so that
 * every flag is a literal inside the loops, for rows of D columns. */
#define FE_BAG_SPECIALISE(SUF, D)                                                             \
    do {                                                                                      \
        if (ids64) {                                                                          \
            if (ps) fe_bag_body_##SUF(w, ids, 1, ps, 1, offsets, b_lo, b_hi, n_ids, pad, D,   \
                                      mean, out, denom);                                      \
            else fe_bag_body_##SUF(w, ids, 1, ps, 0, offsets, b_lo, b_hi, n_ids, pad, D,      \
                                   mean, out, denom);                                         \
        } else {                                                                              \
            if (ps) fe_bag_body_##SUF(w, ids, 0, ps, 1, offsets, b_lo, b_hi, n_ids, pad, D,   \
                                      mean, out, denom);                                      \
            else fe_bag_body_##SUF(w, ids, 0, ps, 0, offsets, b_lo, b_hi, n_ids, pad, D,      \
                                   mean, out, denom);                                         \
        }                                                                                     \
    } while (0)

/* ... and again for rows of 128, 256 and 512 bytes (float32 D = 32, 64, 128; float64 D = 16,
 * 32, 64), with D a literal: the column blocks, the prefetch of the row's lines and the
 * address arithmetic are then unrolled and branch-free. Measured 8% faster with uniform ids
 * at D = 64 float32 on one thread (27.3 against 29.8 ms), the same bits. */
#define FE_BAG_SPECIALISE_WIDTHS(T, SUF)                                                      \
    do {                                                                                      \
        switch (d * (ptrdiff_t)sizeof(T)) {                                                   \
        case 128: FE_BAG_SPECIALISE(SUF, 128 / (ptrdiff_t)sizeof(T)); break;                  \
        case 256: FE_BAG_SPECIALISE(SUF, 256 / (ptrdiff_t)sizeof(T)); break;                  \
        case 512: FE_BAG_SPECIALISE(SUF, 512 / (ptrdiff_t)sizeof(T)); break;                  \
        default: FE_BAG_SPECIALISE(SUF, d);                                                   \
        }                                                                                     \
    } while (0)

#define FE_BAG_ARGS(T)                                                                        \
    const T *w, const void *ids, int ids64, const T *ps, const int64_t *offsets,              \
    ptrdiff_t b_lo, ptrdiff_t b_hi, ptrdiff_t n_ids, int64_t pad, ptrdiff_t d, int mean,      \
    T *out, T *denom

#if FE_VECTORS
FE_BAG_DEFINE_BODY(float, fe_bag_f16, f16, f)
FE_BAG_DEFINE_BODY(double, fe_bag_d16, d16, d)
static void fe_bag_pool_f_base(FE_BAG_ARGS(float)) { FE_BAG_SPECIALISE_WIDTHS(float, f16); }
static void fe_bag_pool_d_base(FE_BAG_ARGS(double)) { FE_BAG_SPECIALISE_WIDTHS(double, d16); }
#else
FE_BAG_DEFINE_BODY(float, float, f, f)
FE_BAG_DEFINE_BODY(double, double, d, d)
static void fe_bag_pool_f_base(FE_BAG_ARGS(float)) { FE_BAG_SPECIALISE(f, d); }
static void fe_bag_pool_d_base(FE_BAG_ARGS(double)) { FE_BAG_SPECIALISE(d, d); }
#endif

#if FE_BAG_AVX2
FE_BAG_DEFINE_BODY(float, fe_bag_f32, f32, f)
FE_BAG_DEFINE_BODY(double, fe_bag_d32, d32, d)
FE_BAG_TARGET_AVX2 static void fe_bag_pool_f_avx2(FE_BAG_ARGS(float)) {
    FE_BAG_SPECIALISE_WIDTHS(float, f32);
}
FE_BAG_TARGET_AVX2 static void fe_bag_pool_d_avx2(FE_BAG_ARGS(double)) {
    FE_BAG_SPECIALISE_WIDTHS(double, d32);
}
#endif

/* Pool bags [b_lo, b_hi) (see FE_BAG_DEFINE_BODY); ps may be NULL (no weights); pad is -1 for
 * no padding. ids has n_ids entries, all in [0, V): rows are prefetched across bags. The AVX2
 * twin runs when fe_bag_path selects it. */
#if FE_BAG_AVX2
#define FE_BAG_TRY_AVX2(sfx)                                                                  \
    if (fe_bag_path == 1) {                                                                   \
        fe_bag_pool_##sfx##_avx2(w, ids, ids64, ps, offsets, b_lo, b_hi, n_ids, pad, d, mean, \
                                 out, denom);                                                 \
        return;                                                                               \
    }
#else
#define FE_BAG_TRY_AVX2(sfx)
#endif
#define FE_BAG_DEFINE_DISPATCH(T, sfx)                                                        \
    static void fe_bag_pool_##sfx(FE_BAG_ARGS(T)) {                                           \
        FE_BAG_TRY_AVX2(sfx)                                                                  \
        fe_bag_pool_##sfx##_base(w, ids, ids64, ps, offsets, b_lo, b_hi, n_ids, pad, d, mean, \
                                 out, denom);                                                 \
    }
FE_BAG_DEFINE_DISPATCH(float, f)
FE_BAG_DEFINE_DISPATCH(double, d)

#endif
