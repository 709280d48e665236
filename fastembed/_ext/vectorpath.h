/* The vector path of the indexing kernels: which compiled version of the gather's row copy
 * (gatherrows.h) and of the scatter-add's row sums (scatterrows.h) runs.
 *
 * Those loops are compiled for AVX-512F (path 2), AVX2 (path 1) and the baseline (path 0),
 * with target attributes, and fe_vector_init picks the widest this CPU runs
 * (__builtin_cpu_supports: run-time dispatch, not -march=native). Every path gives the same
 * bytes. FASTEMBED_NO_CLONES (or FASTEMBED_NO_SIMD, or another compiler or CPU family) leaves
 * the baseline only.
 */
#ifndef FASTEMBED_VECTORPATH_H
#define FASTEMBED_VECTORPATH_H

#include "rowops.h"

/* The path: 2 = AVX-512F, 1 = AVX2, 0 = baseline. Set by fe_vector_init. */
static int fe_vector_path = 0;

static void fe_vector_init(void) {
    fe_vector_path = !FE_CLONES ? 0 : fe_cpu_runs(2) ? 2 : fe_cpu_runs(1) ? 1 : 0;
}

/* For the tests: force path 0, 1 or 2; returns 0, or -1 when this build or this CPU cannot
 * run it (nothing changes then). Call it between kernels, never during one. */
static int fe_vector_force_path(int path) {
    if (path != 0 && !(FE_CLONES && (path == 1 || path == 2) && fe_cpu_runs(path)))
        return -1;
    fe_vector_path = path;
    return 0;
}

#endif
