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
/* An explicit barrier for the threads of the enclosing parallel region (Cython's prange inside
 * a `with parallel()` block is an `omp for nowait`: it has none of its own). */
static inline void fe_omp_barrier(void) {
    #pragma omp barrier
}
#else
static inline void fe_omp_barrier(void) { }
#define FASTEMBED_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

#endif
