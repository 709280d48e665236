/* One header so that the same .pyx builds with or without OpenMP.
 *
 * With OpenMP (_OPENMP defined by -fopenmp or /openmp) this is <omp.h>. Without it, the few
 * runtime calls fastembed makes are replaced by their one-thread answers, and Cython's prange
 * pragmas are ignored by the compiler, so the kernels run serially with identical results.
 */
#ifndef FASTEMBED_OPENMP_SHIM_H
#define FASTEMBED_OPENMP_SHIM_H

#ifdef _OPENMP
#include <omp.h>
#define FASTEMBED_OPENMP 1
#else
#define FASTEMBED_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

/* A barrier for the threads of the enclosing parallel region (the claim loops below have none
 * of their own) that gives the CPU away while it waits: it spins a little, then calls
 * sched_yield(). libgomp's own barrier spins for a long while before it sleeps, which, on a
 * machine with more runnable threads than cores, takes the waiting thread's time slice from
 * the very thread it waits for (seen: 4x slower than one thread while another program kept
 * both cores busy). `state` is shared by the team and zeroed before the region; `sense` is
 * each thread's own, 0 before its first wait. Releases and acquires make every write before
 * the barrier visible after it.
 *
 * The same state deals out work between two barriers: fe_barrier_claim(state) returns 0, 1,
 * 2, ... to whichever threads ask, each number once, and every barrier starts the count again
 * at 0. A loop `for (i = claim(); i < n; i = claim())` between two barriers thus shares n
 * items among the threads as they free up, like `schedule(dynamic, 1)`, without a prange: GCC
 * puts a libgomp barrier (GOMP_barrier, the long spin above) at the start of every
 * worksharing loop whose variables are both firstprivate and lastprivate, as Cython's are
 * (measured: a word2vec call 4x slower while another program kept a core busy). */
typedef struct { int count; int sense; int claims; } fe_barrier_t;

#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#include <sched.h>
static inline void fe_barrier_wait(fe_barrier_t *state, int *sense, int n_threads) {
    int spins = 0;
    *sense = !*sense;
    if (__atomic_add_fetch(&state->count, 1, __ATOMIC_ACQ_REL) == n_threads) {
        __atomic_store_n(&state->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&state->claims, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&state->sense, *sense, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&state->sense, __ATOMIC_ACQUIRE) != *sense) {
        if (++spins > 2000) {
            sched_yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
}
static inline int fe_barrier_claim(fe_barrier_t *state) {
    return __atomic_fetch_add(&state->claims, 1, __ATOMIC_RELAXED);
}
#elif defined(_OPENMP)
static inline void fe_barrier_wait(fe_barrier_t *state, int *sense, int n_threads) {
    (void)sense; (void)n_threads;
    #pragma omp barrier
    #pragma omp single
    state->claims = 0;
    /* (single ends with a barrier: nobody claims before the count is 0 again) */
}
static inline int fe_barrier_claim(fe_barrier_t *state) {
    int i;
    #pragma omp atomic capture
    i = state->claims++;
    return i;
}
#else
static inline void fe_barrier_wait(fe_barrier_t *state, int *sense, int n_threads) {
    (void)sense; (void)n_threads;
    state->claims = 0;
}
static inline int fe_barrier_claim(fe_barrier_t *state) { return state->claims++; }
#endif

#endif
