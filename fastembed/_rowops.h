/* Row-level memory helpers for the kernels: software prefetch of table rows.
 *
 * Rows of a large table picked by random ids miss every cache; the hardware prefetcher cannot
 * guess them, but the kernels know the ids a few positions ahead. Prefetching those rows keeps
 * several misses in flight per thread. Compilers without __builtin_prefetch get no-ops.
 *
 * (Streaming, non-temporal stores for the gather output were measured too and were slower on
 * random gathers here, so they are not used.)
 */
#ifndef FASTEMBED_ROWOPS_H
#define FASTEMBED_ROWOPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FE_PREFETCH_R(p) __builtin_prefetch((const void *)(p), 0, 2)
#define FE_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
#else
#define FE_PREFETCH_R(p) ((void)(p))
#define FE_PREFETCH_W(p) ((void)(p))
#endif

/* Prefetch the cache lines of a row of nbytes bytes for reading. */
static inline void fe_prefetch_row(const void *row, size_t nbytes) {
    const char *p = (const char *)row;
    size_t off;
    for (off = 0; off < nbytes; off += 64) FE_PREFETCH_R(p + off);
}

/* Prefetch the cache lines of a row of nbytes bytes for writing. */
static inline void fe_prefetch_row_w(const void *row, size_t nbytes) {
    const char *p = (const char *)row;
    size_t off;
    for (off = 0; off < nbytes; off += 64) FE_PREFETCH_W(p + off);
}

#endif
