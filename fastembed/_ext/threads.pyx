"""Thread-count helpers: the one place where ``n_threads`` arguments are resolved."""
import math
import os

from .omp cimport (FASTEMBED_OPENMP, omp_get_max_threads, omp_get_num_procs,
                       omp_set_num_threads)

from .._validation import check_n_threads


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP.

    Without OpenMP (a compiler without it, or ``FASTEMBED_NO_OPENMP=1`` at build time) every
    kernel runs on one thread and gives the same results.
    """
    return bool(FASTEMBED_OPENMP)


def cgroup_cpu_limit(proc_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """The CPUs this process's cgroup lets it use, rounded up; None when it sets no limit.

    A container started with ``docker run --cpus 2`` or a Kubernetes CPU limit gets a CFS
    quota, not fewer processors: OpenMP still counts every processor of the host, and its
    threads, once they have used the quota, wait for the next period. This reads the quota
    as the kernel applies it, the smallest over the process's cgroup and its ancestors:
    ``cpu.max`` (cgroup v2: ``"200000 100000"`` is two CPUs, ``"max 100000"`` none) or
    ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` (v1, the ``cpu`` controller; -1: none).
    Files that are missing or unreadable count as no limit.

    Parameters
    ----------
    proc_cgroup : str
        The process's cgroup membership file.
    root : str
        Where the cgroup file systems are mounted.
    """
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = parts[1].split(",")
        if parts[0] == "0" and parts[1] == "":
            bases = [root, os.path.join(root, "unified")]
        elif "cpu" in controllers:
            bases = [os.path.join(root, parts[1]), os.path.join(root, "cpu")]
        else:
            continue
        for base in bases:
            limits += _quotas_along(base, parts[2], v2=parts[0] == "0")
    limits = [q for q in limits if q is not None]
    return max(1, math.ceil(min(limits))) if limits else None


def _quotas_along(base, path, v2):
    """The CPU quotas (in CPUs) found from the cgroup ``path`` under ``base`` up to ``base``."""
    found = []
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
        here = os.path.join(base, *parts[:depth])
        try:
            if v2:
                with open(os.path.join(here, "cpu.max")) as f:
                    quota, period = f.read().split()[:2]
                found.append(None if quota == "max" else int(quota) / int(period))
            else:
                with open(os.path.join(here, "cpu.cfs_quota_us")) as f:
                    quota = int(f.read())
                with open(os.path.join(here, "cpu.cfs_period_us")) as f:
                    period = int(f.read())
                found.append(None if quota <= 0 or period <= 0 else quota / period)
        except (OSError, ValueError):
            continue
    return found


# Where cgroup_cpu_limit looks for the process's cgroup: its membership file and the mount
# point of the cgroup file systems (the tests point them at a fake tree).
CGROUP_PATHS = ("/proc/self/cgroup", "/sys/fs/cgroup")

# The cap on the default thread count, read once as OpenMP reads OMP_NUM_THREADS once: the
# cgroup's CPU limit, or 0 for none (no limit, or OMP_NUM_THREADS given); None: not read yet.
_CPU_LIMIT = None
# True once set_num_threads was called: an explicit count is never capped.
_EXPLICIT = False


def _cpu_cap():
    global _CPU_LIMIT
    if _CPU_LIMIT is None:
        if "OMP_NUM_THREADS" in os.environ:
            _CPU_LIMIT = 0
        else:
            _CPU_LIMIT = cgroup_cpu_limit(*CGROUP_PATHS) or 0
    return _CPU_LIMIT


def get_num_threads():
    """Number of threads a kernel uses when called with ``n_threads=None``.

    This is OpenMP's ``omp_get_max_threads()``: it follows ``OMP_NUM_THREADS``,
    :func:`set_num_threads` and ``threadpoolctl.threadpool_limits(..., user_api="openmp")``.
    When none of the first two was given, it is at most the CPU limit of the process's
    cgroup (:func:`cgroup_cpu_limit`: a container's ``--cpus``), which OpenMP does not see:
    threads beyond the quota only wait for it. Always 1 in a build without OpenMP.
    """
    cdef int n = omp_get_max_threads()
    if _EXPLICIT or not FASTEMBED_OPENMP:
        return n
    cap = _cpu_cap()
    return min(n, cap) if cap else n


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
    global _EXPLICIT
    n = check_n_threads(n, "n", allow_none=False)
    if n < 0:
        n = max(1, omp_get_num_procs() + 1 + n)
    omp_set_num_threads(n)
    _EXPLICIT = True


def resolve_n_threads(n_threads):
    """Turn a user's ``n_threads`` into a positive thread count.

    None means :func:`get_num_threads` (OMP_NUM_THREADS, threadpoolctl, set_num_threads, a
    container's CPU limit); a negative value counts back from it (-1: all, -2: all but one);
    0 raises. An explicit count is capped at ``MAX_THREADS_PER_CORE`` threads per processor.
    The rule for the argument is ``fastembed._validation.check_n_threads``'s.
    """
    if n_threads is None:
        return get_num_threads()
    n_threads = check_n_threads(n_threads)
    if n_threads < 0:
        return max(1, get_num_threads() + 1 + n_threads)
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
