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
 * the barrier visible after it. */
typedef struct { int count; int sense; } fe_barrier_t;

/* Claims: between two barriers, a claim loop
 *     for (i = fe_claim_first(c, n); i < n; i = fe_claim_next(c, n)) ...
 * shares the items 0 .. n-1 among the threads as they free up, like `schedule(dynamic, 1)`
 * but without a prange: GCC puts a libgomp barrier (the long spin above) at the start of
 * every worksharing loop whose variables are both firstprivate and lastprivate, as Cython's
 * are (measured: a word2vec call 4x slower while another program kept a core busy).
 *
 * Thread `me` of the `nt` first takes its own items, me, me + nt, me + 2 nt, ..., in order,
 * then steals those the others have not taken yet, from the last one down. So an item
 * (a word2vec shard, a block of rows to merge) stays on one thread, and its memory in that
 * core's cache, from one claim loop to the next while the threads keep pace, and still
 * moves when one falls behind. (Taken by whichever thread asked first, the shards wandered
 * between the cores, and a run took 4.2 s or 7.7 s by the luck of it: sotu's skip-gram,
 * 2 threads, 7 runs interleaved, median 7.47 s against 4.89 s with the threads' own first.)
 *
 * `taken[i]` (shared, zeroed before the region, one int per item) is the number of the claim
 * loop that took item i last; each thread counts its claim loops in its own fe_claims_t
 * (`loop`), the same count on every thread since all pass the same claim loops. */
typedef struct {
    int *taken;
    int me, nt, loop, pos;
    char pad[64 - sizeof(int *) - 4 * sizeof(int)];  /* one per cache line */
} fe_claims_t;

static inline int fe_take(int *taken, int loop) {
#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
    return __atomic_exchange_n(taken, loop, __ATOMIC_ACQ_REL) != loop;
#elif defined(_OPENMP)
    int old;
    #pragma omp atomic capture
    { old = *taken; *taken = loop; }
    return old != loop;
#else
    int old = *taken;
    *taken = loop;
    return old != loop;
#endif
}

/* In the parallel region, before its first claim loop: thread `me` of `nt`. */
static inline void fe_claims_join(fe_claims_t *c, int *taken, int me, int nt) {
    c->taken = taken;
    c->me = me;
    c->nt = nt;
    c->loop = 0;
    c->pos = 0;
}

static inline int fe_claim_next(fe_claims_t *c, int n) {
    int n_own = c->me < n ? (n - c->me + c->nt - 1) / c->nt : 0;
    while (c->pos < n_own + n) {
        int p = c->pos++, i;
        if (p < n_own) {
            i = c->me + p * c->nt;
        } else {
            i = n - 1 - (p - n_own);
            if (i % c->nt == c->me)
                continue;  /* its own: tried already */
        }
        if (fe_take(&c->taken[i], c->loop))
            return i;
    }
    return n;
}

static inline int fe_claim_first(fe_claims_t *c, int n) {
    c->loop++;
    c->pos = 0;
    return fe_claim_next(c, n);
}

#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#include <sched.h>
static inline void fe_barrier_wait(fe_barrier_t *state, int *sense, int n_threads) {
    int spins = 0;
    *sense = !*sense;
    if (__atomic_add_fetch(&state->count, 1, __ATOMIC_ACQ_REL) == n_threads) {
        __atomic_store_n(&state->count, 0, __ATOMIC_RELAXED);
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
#elif defined(_OPENMP)
static inline void fe_barrier_wait(fe_barrier_t *state, int *sense, int n_threads) {
    (void)state; (void)sense; (void)n_threads;
    #pragma omp barrier
}
#else
static inline void fe_barrier_wait(fe_barrier_t *state, int *sense, int n_threads) {
    (void)state; (void)sense; (void)n_threads;
}
#endif

#endif
