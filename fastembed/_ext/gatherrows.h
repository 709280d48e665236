/* The gather's row copy: out row i = table row ids[i], for positions [lo, hi).
 *
 * A row of a few hundred bytes is copied by a short loop of vector loads and stores, inlined
 * into the loop over the ids, rather than by a call to memcpy per row: at 8192 rows of 256
 * bytes in cache, glibc's memcpy call, size dispatch and tail handling took about 10 cycles a
 * row more than the copy itself, which is the whole gap to PyTorch's index_select (whose
 * kernel copies rows with its own vector loop). Rows whose size is not a multiple of the
 * vector width, and builds without vector extensions, keep memcpy.
 *
 * Like bagrows.h, the loop is compiled twice: with 32-byte vectors for AVX2
 * (target("avx2")) and with 16-byte ones for the baseline, and vectorpath.h picks one at
 * run time (__builtin_cpu_supports; no -march=native). A copy is a copy: both give the same
 * bytes. FASTEMBED_NO_CLONES leaves only the baseline, FASTEMBED_NO_SIMD only memcpy.
 *
 * With FE_GATHER_STREAM in the mode, the rows are written with non-temporal (streaming)
 * stores, x86-64 only: the output's lines go to memory without being read first and without
 * evicting the table from the caches. For outputs far larger than the last-level cache that
 * saves the read of every output line (fastembed._rows.GatherSettings decides when, by
 * measuring). The bytes written are the same; only rows of a multiple of 16 bytes in an
 * output that starts on 16 bytes stream (any other output is written as usual).
 */
#ifndef FASTEMBED_GATHERROWS_H
#define FASTEMBED_GATHERROWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__GNUC__) || defined(__clang__)
#include <sched.h>
#endif

#include "rowops.h"
#include "vectorpath.h"

#if FE_VECTORS
/* Unaligned (aligned(1)) and may-alias byte vectors: the rows start anywhere. */
typedef char fe_gather_v16 __attribute__((vector_size(16), aligned(1), may_alias));
typedef char fe_gather_v32 __attribute__((vector_size(32), aligned(1), may_alias));
typedef char fe_gather_v64 __attribute__((vector_size(64), aligned(1), may_alias));
#endif

/* The mode bits of a gather: prefetch rows ahead, write the output with streaming stores. */
#define FE_GATHER_PREFETCH 1
#define FE_GATHER_STREAM 2

#if FE_VECTORS && defined(__x86_64__)
#define FE_GATHER_STREAMS 1
#include <immintrin.h>
/* Streaming stores of 16, 32 and 64 bytes at an address aligned to their size. */
#define FE_STREAM16(p, v) _mm_stream_si128((__m128i *)(void *)(p), (__m128i)(v))
#define FE_STREAM32(p, v) _mm256_stream_si256((__m256i *)(void *)(p), (__m256i)(v))
#define FE_STREAM64(p, v) _mm512_stream_si512((void *)(p), (__m512i)(v))
#else
#define FE_GATHER_STREAMS 0
#endif

static inline int64_t fe_gather_id(const void *ids, int id_bytes, ptrdiff_t i) {
    return id_bytes == 4 ? (int64_t)((const int32_t *)ids)[i] : ((const int64_t *)ids)[i];
}

/* The table row of lookup position i, after prefetching the row `ahead` positions on (< n)
 * when prefetch is set. */
FE_ROW_INLINE const char *fe_gather_src(const char *table, const void *ids, int id_bytes,
                                        ptrdiff_t i, ptrdiff_t n, size_t row_bytes,
                                        int prefetch, ptrdiff_t ahead) {
    if (prefetch && i + ahead < n)
        fe_prefetch_row(table + fe_gather_id(ids, id_bytes, i + ahead) * row_bytes, row_bytes);
    return table + fe_gather_id(ids, id_bytes, i) * row_bytes;
}

/* The streaming loop body, for one vector type VEC of WIDTH bytes: each output row (16-byte
 * aligned, a multiple of 16 bytes long) is written by 16-byte stores up to a WIDTH boundary,
 * WIDTH-byte stores, then 16-byte stores for its tail. The fence makes the stores visible to
 * every thread before the kernel returns, as ordinary stores are. */
#define FE_GATHER_STREAM_BODY(VEC, WIDTH, STREAM)                                             \
    for (i = lo; i < hi; i++) {                                                               \
        const char *src = fe_gather_src(table, ids, id_bytes, i, n, row_bytes, prefetch, ahead); \
        char *dst = out + i * row_bytes;                                                      \
        for (k = 0; k < row_bytes && ((uintptr_t)(dst + k) & ((WIDTH) - 1)) != 0; k += 16)    \
            FE_STREAM16(dst + k, *(const fe_gather_v16 *)(src + k));                         \
        for (; k + (WIDTH) <= row_bytes; k += (WIDTH))                                        \
            STREAM(dst + k, *(const VEC *)(src + k));                                         \
        for (; k < row_bytes; k += 16)                                                        \
            FE_STREAM16(dst + k, *(const fe_gather_v16 *)(src + k));                         \
    }                                                                                         \
    _mm_sfence();                                                                             \
    return;

/* The loop body, for one vector type VEC of WIDTH bytes; mode holds the FE_GATHER_* bits. */
#define FE_GATHER_BODY(VEC, WIDTH, STREAM)                                                    \
    ptrdiff_t i;                                                                              \
    size_t k;                                                                                 \
    const int prefetch = mode & FE_GATHER_PREFETCH;                                           \
    if (FE_GATHER_STREAMS && (mode & FE_GATHER_STREAM) && row_bytes % 16 == 0                 \
        && ((uintptr_t)out & 15) == 0) {                                                      \
        FE_GATHER_STREAM_BODY(VEC, WIDTH, STREAM)                                             \
    }                                                                                         \
    if (row_bytes % (WIDTH) != 0) {                                                           \
        for (i = lo; i < hi; i++)                                                             \
            memcpy(out + i * row_bytes,                                                       \
                   fe_gather_src(table, ids, id_bytes, i, n, row_bytes, prefetch, ahead),     \
                   row_bytes);                                                                \
        return;                                                                               \
    }                                                                                         \
    for (i = lo; i < hi; i++) {                                                               \
        const char *src = fe_gather_src(table, ids, id_bytes, i, n, row_bytes, prefetch, ahead); \
        char *dst = out + i * row_bytes;                                                      \
        for (k = 0; k < row_bytes; k += (WIDTH))                                              \
            *(VEC *)(dst + k) = *(const VEC *)(src + k);                                      \
    }

#define FE_GATHER_ARGS                                                                        \
    const char *table, const void *ids, int id_bytes, char *out, ptrdiff_t lo, ptrdiff_t hi,  \
        ptrdiff_t n, size_t row_bytes, int mode, ptrdiff_t ahead

#if !FE_GATHER_STREAMS
#undef FE_GATHER_STREAM_BODY
#define FE_GATHER_STREAM_BODY(VEC, WIDTH, STREAM)
#endif

#if FE_VECTORS
static void fe_gather_rows_base(FE_GATHER_ARGS) {
    FE_GATHER_BODY(fe_gather_v16, 16, FE_STREAM16)
}
#else /* no vectors: every row by memcpy (no row size is a multiple of SIZE_MAX) */
static void fe_gather_rows_base(FE_GATHER_ARGS) { FE_GATHER_BODY(char, (size_t)-1, ) }
#endif

#if FE_CLONES
__attribute__((target("avx2"))) static void fe_gather_rows_avx2(FE_GATHER_ARGS) {
    FE_GATHER_BODY(fe_gather_v32, 32, FE_STREAM32)
}
__attribute__((target("avx512f"))) static void fe_gather_rows_avx512(FE_GATHER_ARGS) {
    FE_GATHER_BODY(fe_gather_v64, 64, FE_STREAM64)
}
#endif

/* Copy rows [lo, hi) of the lookup; rows ahead (< n) are prefetched when mode has
 * FE_GATHER_PREFETCH, and the output streamed when it has FE_GATHER_STREAM (see above). */
static inline void fe_gather_rows(FE_GATHER_ARGS) {
#if FE_CLONES
    if (fe_vector_path == 2 && row_bytes % 64 == 0) {
        fe_gather_rows_avx512(table, ids, id_bytes, out, lo, hi, n, row_bytes, mode, ahead);
        return;
    }
    if (fe_vector_path >= 1) {
        fe_gather_rows_avx2(table, ids, id_bytes, out, lo, hi, n, row_bytes, mode, ahead);
        return;
    }
#endif
    fe_gather_rows_base(table, ids, id_bytes, out, lo, hi, n, row_bytes, mode, ahead);
}

/* A lookup by a team of threads that checks every id before any thread writes a row, so a
 * bad id leaves the output untouched (the caller then raises). Each thread of the parallel
 * region calls this with the same zeroed state. Ids are checked in chunks of scan_chunk
 * handed out to whichever thread asks first, so the thread that opened the region checks the
 * small lookups alone while the others are still waking up; a thread that has no chunk left
 * to check waits until every chunk is checked, then all copy chunks of copy_chunk rows,
 * handed out as threads free up. Sets state->bad to the first bad position found (n: none). */
typedef struct {
    ptrdiff_t scan_next, scan_done, copy_next, bad;
} fe_gather_team_t;

#if defined(__GNUC__) || defined(__clang__)
static void fe_gather_checked(fe_gather_team_t *state, const char *table, const void *ids,
                              int id_bytes, char *out, ptrdiff_t n, uint64_t n_rows,
                              size_t row_bytes, int mode, ptrdiff_t ahead,
                              ptrdiff_t scan_chunk, ptrdiff_t copy_chunk) {
    ptrdiff_t n_scan = (n + scan_chunk - 1) / scan_chunk;
    ptrdiff_t n_copy = (n + copy_chunk - 1) / copy_chunk;
    ptrdiff_t c, i, lo, hi, seen;
    int spins = 0;
    while ((c = __atomic_fetch_add(&state->scan_next, 1, __ATOMIC_RELAXED)) < n_scan) {
        lo = c * scan_chunk;
        hi = lo + scan_chunk < n ? lo + scan_chunk : n;
        for (i = lo; i < hi; i++) {
            if ((uint64_t)fe_gather_id(ids, id_bytes, i) >= n_rows) {
                seen = __atomic_load_n(&state->bad, __ATOMIC_RELAXED);
                while (i < seen && !__atomic_compare_exchange_n(&state->bad, &seen, i, 1,
                                                                __ATOMIC_RELAXED,
                                                                __ATOMIC_RELAXED)) {
                }
                break;
            }
        }
        __atomic_add_fetch(&state->scan_done, 1, __ATOMIC_RELEASE);
    }
    while (__atomic_load_n(&state->scan_done, __ATOMIC_ACQUIRE) < n_scan) {
        if (++spins > 2000) {
            sched_yield();
        }
#if defined(__x86_64__) || defined(__i386__)
        else {
            __builtin_ia32_pause();
        }
#endif
    }
    if (__atomic_load_n(&state->bad, __ATOMIC_RELAXED) < n) return;
    while ((c = __atomic_fetch_add(&state->copy_next, 1, __ATOMIC_RELAXED)) < n_copy) {
        lo = c * copy_chunk;
        hi = lo + copy_chunk < n ? lo + copy_chunk : n;
        fe_gather_rows(table, ids, id_bytes, out, lo, hi, n, row_bytes, mode, ahead);
    }
}
#else
/* Without GCC's atomics: the first thread of the team does it all. */
static void fe_gather_checked(fe_gather_team_t *state, const char *table, const void *ids,
                              int id_bytes, char *out, ptrdiff_t n, uint64_t n_rows,
                              size_t row_bytes, int mode, ptrdiff_t ahead,
                              ptrdiff_t scan_chunk, ptrdiff_t copy_chunk) {
    ptrdiff_t i;
    int first;
    (void)scan_chunk;
    (void)copy_chunk;
#pragma omp critical(fe_gather_checked)
    {
        first = state->scan_next == 0;
        state->scan_next = 1;
    }
    if (!first) return;
    for (i = 0; i < n; i++) {
        if ((uint64_t)fe_gather_id(ids, id_bytes, i) >= n_rows) {
            state->bad = i;
            return;
        }
    }
    fe_gather_rows(table, ids, id_bytes, out, 0, n, n, row_bytes, mode, ahead);
}
#endif

#endif
