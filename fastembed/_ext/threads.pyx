"""Thread-count helpers: the one place where ``n_threads`` arguments are resolved."""
from .omp cimport (FASTEMBED_OPENMP, omp_get_max_threads, omp_get_num_procs,
                       omp_set_num_threads)

from .._validation import check_n_threads


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP.

    Without OpenMP (a compiler without it, or ``FASTEMBED_NO_OPENMP=1`` at build time) every
    kernel runs on one thread and gives the same results.
    """
    return bool(FASTEMBED_OPENMP)


def get_num_threads():
    """Number of threads a kernel uses when called with ``n_threads=None``.

    This is OpenMP's ``omp_get_max_threads()``: it follows ``OMP_NUM_THREADS``,
    :func:`set_num_threads` and ``threadpoolctl.threadpool_limits(..., user_api="openmp")``.
    Always 1 in a build without OpenMP.
    """
    return omp_get_max_threads()


def set_num_threads(n):
    """Set the default number of threads used when ``n_threads=None``.

    Parameters
    ----------
    n : int
        A positive count, or a negative one counted back from the number of processors
        (-1 means all of them). 0 is an error (ValueError), a non-int one (TypeError), as
        for every ``n_threads`` argument.

    Notes
    -----
    This calls ``omp_set_num_threads`` on the calling thread, exactly like
    ``threadpoolctl.threadpool_limits`` does; it has no effect in a build without OpenMP.
    """
    n = check_n_threads(n, "n", allow_none=False)
    if n < 0:
        n = max(1, omp_get_num_procs() + 1 + n)
    omp_set_num_threads(n)


def resolve_n_threads(n_threads):
    """Turn a user's ``n_threads`` into a positive thread count.

    None means ``omp_get_max_threads()`` (OMP_NUM_THREADS, threadpoolctl, set_num_threads);
    a negative value counts back from that maximum (-1: all, -2: all but one); 0 raises. An
    explicit count is capped at ``MAX_THREADS_PER_CORE`` threads per processor. The rule for
    the argument is ``fastembed._validation.check_n_threads``'s.
    """
    if n_threads is None:
        return omp_get_max_threads()
    n_threads = check_n_threads(n_threads)
    if n_threads < 0:
        return max(1, omp_get_max_threads() + 1 + n_threads)
    if not FASTEMBED_OPENMP:
        return 1
    # More threads than this only oversubscribes the cores (and allocates per-thread scratch).
    return min(n_threads, MAX_THREADS_PER_CORE * max(omp_get_num_procs(), 1))


# An explicit n_threads is capped at this many threads per processor.
MAX_THREADS_PER_CORE = 4


# Below this many elements of work (ids x embedding_dim) a kernel runs on one thread: opening a
# parallel region costs a few microseconds, more than the whole call at these sizes.
PARALLEL_MIN_WORK = 1 << 15


def n_threads_for(n_threads, Py_ssize_t work):
    """Resolve ``n_threads`` and drop to one thread for work too small to split."""
    cdef int n = resolve_n_threads(n_threads)
    if work < PARALLEL_MIN_WORK:
        return 1
    return n
