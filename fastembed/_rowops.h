/* Row-level memory helpers for the kernels: prefetch and streaming (non-temporal) row copies.
 *
 * Streaming stores write a row straight to memory without first reading the destination
 * cache lines (no read-for-ownership), which saves a third of the memory traffic of a large
 * gather whose output does not fit in cache. They are used only through SSE2, which every
 * x86-64 CPU has (no -march flag needed); elsewhere the helpers fall back to memcpy, and the
 * results are bitwise identical either way.
 */
#ifndef FASTEMBED_ROWOPS_H
#define FASTEMBED_ROWOPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define FASTEMBED_HAVE_STREAM 1
#else
#define FASTEMBED_HAVE_STREAM 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FE_PREFETCH_R(p) __builtin_prefetch((const void *)(p), 0, 3)
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

/* 1 when dst and nbytes allow fe_stream_row (16-byte aligned, a multiple of 16 bytes). */
static inline int fe_can_stream(const void *dst, size_t nbytes) {
#if FASTEMBED_HAVE_STREAM
    return ((uintptr_t)dst % 16 == 0) && (nbytes % 16 == 0);
#else
    (void)dst; (void)nbytes;
    return 0;
#endif
}

/* Copy a row with streaming stores; dst must satisfy fe_can_stream. src may be unaligned. */
static inline void fe_stream_row(void *dst, const void *src, size_t nbytes) {
#if FASTEMBED_HAVE_STREAM
    __m128i *d = (__m128i *)dst;
    const __m128i *s = (const __m128i *)src;
    size_t k, n = nbytes / 16;
    for (k = 0; k < n; k++) _mm_stream_si128(d + k, _mm_loadu_si128(s + k));
#else
    memcpy(dst, src, nbytes);
#endif
}

/* Order this thread's streaming stores before whatever follows (call once per thread). */
static inline void fe_stream_fence(void) {
#if FASTEMBED_HAVE_STREAM
    _mm_sfence();
#endif
}

#endif
