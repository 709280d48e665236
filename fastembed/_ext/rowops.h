/* Row-level memory helpers for the kernels: software prefetch of table rows.
 *
 * Rows of a large table picked by random ids miss every cache; the hardware prefetcher cannot
 * guess them, but the kernels know the ids a few positions ahead. Prefetching those rows keeps
 * several misses in flight per thread. Compilers without __builtin_prefetch get no-ops.
 *
 * (The gather can also write its output with streaming stores: gatherrows.h.)
 */
#ifndef FASTEMBED_ROWOPS_H
#define FASTEMBED_ROWOPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* FE_VECTORS: GCC's and Clang's vector extensions (portable vector types, lowered to
 * whatever the target has), which the row loops of gatherrows.h, scatterrows.h and bagrows.h
 * use; FASTEMBED_NO_SIMD turns them off (plain loops). FE_CLONES: on x86, those loops are
 * also compiled for wider vectors (target attributes) and picked at run time
 * (vectorpath.h, bagrows.h); FASTEMBED_NO_CLONES leaves the baseline only. */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(FASTEMBED_NO_SIMD)
#define FE_VECTORS 1
#else
#define FE_VECTORS 0
#endif
#if FE_VECTORS && (defined(__x86_64__) || defined(__i386__)) && !defined(FASTEMBED_NO_CLONES)
#define FE_CLONES 1
#else
#define FE_CLONES 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FE_PREFETCH_R(p) __builtin_prefetch((const void *)(p), 0, 2)
#define FE_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
/* always_inline is load-bearing: GCC 12's mod/ref analysis takes a non-inlined helper whose
 * only statements are prefetches to have no side effects, and dead-code elimination then
 * deletes every call before inlining, leaving kernels without a single prefetch instruction
 * (seen at -O2 and -O3; tools/check_kernels.py checks the built modules). */
#define FE_ROW_INLINE static inline __attribute__((always_inline))
#else
#define FE_PREFETCH_R(p) ((void)(p))
#define FE_PREFETCH_W(p) ((void)(p))
#define FE_ROW_INLINE static inline
#endif

/* Prefetch, for reading, every cache line that holds a byte of the row [row, row + nbytes):
 * the lines of row, row + 64, ... and of its last byte. The last one matters: a NumPy array
 * of more than a few pages starts 16 bytes past a page boundary, so a 256-byte row spans five
 * lines, not four, and a loop over nbytes / 64 lines leaves one miss per row unhidden. */
#define FE_PREFETCH_ROW_BODY(PREFETCH)                                                        \
    const char *p = (const char *)row;                                                        \
    size_t off;                                                                               \
    if (nbytes == 0) return;                                                                  \
    for (off = 0; off < nbytes; off += 64) PREFETCH(p + off);                                 \
    PREFETCH(p + nbytes - 1);
FE_ROW_INLINE void fe_prefetch_row(const void *row, size_t nbytes) {
    FE_PREFETCH_ROW_BODY(FE_PREFETCH_R)
}

/* Prefetch for writing every cache line that holds a byte of the row (as above). */
FE_ROW_INLINE void fe_prefetch_row_w(const void *row, size_t nbytes) {
    FE_PREFETCH_ROW_BODY(FE_PREFETCH_W)
}

/* Whether this CPU runs a vector code path: 0 the baseline (always), 1 AVX2, 2 AVX-512F.
 * The kernels with clones (bagrows.h, gatherrows.h) pick and force their paths with it. */
static inline int fe_cpu_runs(int path) {
    if (path == 0) return 1;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (path == 1) return __builtin_cpu_supports("avx2") != 0;
    if (path == 2) return __builtin_cpu_supports("avx512f") != 0;
#endif
    return 0;
}

#endif
