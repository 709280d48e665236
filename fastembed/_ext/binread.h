/* C helpers of the word2vec binary reader (fastembed/_ext/textio.pyx): reading a file descriptor,
 * copying little-endian float32 vectors, and the hand-off between its two threads.
 *
 * The reader's worker thread calls these while the calling thread, which holds the GIL,
 * turns the words already found into str objects; so they must not touch Python.
 */
#ifndef FASTEMBED_BINREAD_H
#define FASTEMBED_BINREAD_H

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#include <io.h>
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <time.h>
#include <unistd.h>
#endif

/* Read from fd (at its current position) into p until n bytes are read or the file ends.
 * Short reads and EINTR are retried. Returns the bytes read (fewer than n: the file ended),
 * or -1 with *err set to errno. */
static int64_t fe_read_full(int fd, char *p, int64_t n, int *err) {
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got;
#ifdef _WIN32
        int r;
        if (want > INT_MAX) want = INT_MAX;
        r = _read(fd, p + got, (unsigned int)want);
#else
        ssize_t r;
        if (want > (int64_t)(SSIZE_MAX / 2)) want = (int64_t)(SSIZE_MAX / 2);
        r = read(fd, p + got, (size_t)want);
#endif
        if (r < 0) {
            if (errno == EINTR) continue;
            *err = errno;
            return -1;
        }
        if (r == 0) break;
        got += (int64_t)r;
    }
    return got;
}

/* The byte order of this machine: word2vec binary files hold little-endian float32. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FE_BIG_ENDIAN 1
#else
#define FE_BIG_ENDIAN 0   /* x86, ARM, and every MSVC target */
#endif

static inline float fe_load_f32le(const char *src) {
    float v;
#if FE_BIG_ENDIAN
    char b[4];
    b[0] = src[3]; b[1] = src[2]; b[2] = src[1]; b[3] = src[0];
    memcpy(&v, b, 4);
#else
    memcpy(&v, src, 4);
#endif
    return v;
}

/* n little-endian float32 from src (any alignment) into out. */
static inline void fe_copy_f32le(float *out, const char *src, int64_t n) {
#if FE_BIG_ENDIAN
    int64_t j;
    for (j = 0; j < n; j++) out[j] = fe_load_f32le(src + 4 * j);
#else
    memcpy(out, src, (size_t)n * 4);
#endif
}

/* The same, widened to float64 (exactly: every float32 is a double). */
static inline void fe_copy_f32le_to_f64(double *out, const char *src, int64_t n) {
    int64_t j;
    for (j = 0; j < n; j++) out[j] = (double)fe_load_f32le(src + 4 * j);
}

/* The hand-off: each counter has one writer, which publishes it with a release store after
 * writing what it counts; the reader loads it with an acquire load before reading those
 * entries. No read-modify-write is needed. */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static inline int64_t fe_load_acquire(int64_t *p) {
    return _InterlockedCompareExchange64((volatile __int64 *)p, 0, 0);  /* a full barrier */
}
static inline void fe_store_release(int64_t *p, int64_t v) {
    _InterlockedExchange64((volatile __int64 *)p, v);  /* a full barrier */
}
#else
static inline int64_t fe_load_acquire(int64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void fe_store_release(int64_t *p, int64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
#endif

/* Wait a little for the worker (rare: it is the faster of the two, unless the machine is
 * busy and it gets no core): sleeping, not spinning, leaves the core to it. */
static inline void fe_nap(void) {
#ifdef _WIN32
    SwitchToThread();
#else
    struct timespec ts;
    ts.tv_sec = 0;
    ts.tv_nsec = 20000;   /* 20 microseconds */
    nanosleep(&ts, NULL);
#endif
}

#endif
