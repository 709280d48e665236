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
    void fe_barrier_wait(fe_barrier_t* state, int* sense, int n_threads)
    ctypedef struct fe_claims_t:
        pass
    void fe_claims_join(fe_claims_t* c, int* taken, int me, int nt)
    int fe_claim_first(fe_claims_t* c, int n)
    int fe_claim_next(fe_claims_t* c, int n)
