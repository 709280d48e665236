# C-level view of the OpenMP runtime, through a shim that answers "one thread" when the
# extension is built without OpenMP (see omp_shim.h). cimport from here, never from
# `openmp` directly, so that every module builds both ways.
cdef extern from "omp_shim.h" nogil:
    int FASTEMBED_OPENMP
    int omp_get_max_threads()
    int omp_get_num_procs()
    int omp_get_thread_num()
    int omp_get_num_threads()
    void omp_set_num_threads(int n)
    ctypedef struct fe_barrier_t:
        int count
        int sense
        int claims
    void fe_barrier_wait(fe_barrier_t* state, int* sense, int n_threads)
    int fe_barrier_claim(fe_barrier_t* state)
