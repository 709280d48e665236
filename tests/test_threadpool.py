"""fastembed's threads under the controls users already have: threadpoolctl and OMP_NUM_THREADS.

Every check that needs a fresh OpenMP runtime runs in a child interpreter: the thread pool of
the test process has been used by other tests by then. "Runs single-threaded" is observed from
the outside: libgomp starts its worker threads lazily, at the first parallel region that asks
for more than one thread, so a process whose kernels all ran on one thread has no more OS
threads (``/proc/self/task``) after its kernels than before them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import fastembed

threadpoolctl = pytest.importorskip("threadpoolctl")

needs_openmp = pytest.mark.skipif(
    not fastembed.openmp_enabled(),
    reason="a build without OpenMP has no OpenMP runtime for threadpoolctl to find or limit")
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                reason="counts OS threads through /proc/self/task (Linux)")

# Work for every kernel family, big enough that each runs its parallel path when allowed to.
_WORKLOAD = """
import hashlib, os
import numpy as np
import fastembed
from fastembed import optim

def os_threads():
    return len(os.listdir("/proc/self/task"))

def workload():
    rng = np.random.default_rng(0)
    V, D, N = 20000, 64, 200000
    E = rng.standard_normal((V, D)).astype(np.float32)
    X = rng.integers(0, V, N)
    G = rng.standard_normal((N, D)).astype(np.float32)
    h = hashlib.sha256()
    h.update(fastembed.gather(E, X).tobytes())
    out = E.copy()
    fastembed.scatter_add(out, X, G)
    h.update(out.tobytes())
    g = fastembed.coalesce(X, G, num_embeddings=V)
    h.update(g.rows.tobytes()); h.update(g.values.tobytes())
    h.update(fastembed.embedding_bag(E, X.reshape(-1, 20), mode="mean").tobytes())
    layer = fastembed.Embedding(weight=E.copy())
    opt = optim.Adam(layer, lr=0.01)
    layer(X)
    layer.backward_and_step(G, opt)
    h.update(layer.weight.tobytes())
    return h.hexdigest()
"""


def _run_child(body, env=None, workload=True):
    """Run ``body`` (after ``_WORKLOAD`` unless told not to) in a fresh interpreter; return
    the JSON it prints last."""
    code = (_WORKLOAD if workload else "") + textwrap.dedent(body)
    child_env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OMP_DYNAMIC"):
        child_env.pop(name, None)
    child_env.update(env or {})
    # The child imports the same fastembed as this process (a source tree or an install).
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastembed.__file__)))
    child_env["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in child_env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _workload_digest_here():
    namespace: dict = {}
    exec(_WORKLOAD, namespace)
    return namespace["workload"]()


@needs_openmp
def test_threadpool_info_lists_fastembeds_openmp_runtime():
    child = _run_child("""
        import json, threadpoolctl
        import numpy
        before = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openmp"]
        import fastembed
        after = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openmp"]
        # the runtime listed is the one fastembed's kernels use: limiting it limits them
        with threadpoolctl.threadpool_limits(limits=3, user_api="openmp"):
            limited = fastembed.get_num_threads()
        print(json.dumps({"before": len(before), "after": [i["filepath"] for i in after],
                          "prefix": [i["prefix"] for i in after], "limited": limited}))
    """, workload=False)
    assert child["before"] == 0  # NumPy alone brings no OpenMP runtime
    assert len(child["after"]) == 1, child
    assert child["prefix"] == ["libgomp"] or "omp" in child["prefix"][0]
    assert child["limited"] == 3


@needs_openmp
def test_threadpool_info_in_this_process():
    info = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openmp"]
    assert info, "threadpoolctl lists no OpenMP runtime although fastembed uses one"
    assert any(i["num_threads"] == fastembed.get_num_threads() for i in info)


@needs_openmp
@needs_proc
def test_threadpool_limits_one_runs_every_kernel_single_threaded():
    child = _run_child("""
        import json
        from threadpoolctl import threadpool_limits
        start = os_threads()
        with threadpool_limits(limits=1, user_api="openmp"):
            limited = fastembed.get_num_threads()
            digest_one = workload()
        after_limited = os_threads()
        digest_all = workload()   # unlimited again: the default thread count
        after_all = os_threads()
        print(json.dumps({"start": start, "limited": limited, "after_limited": after_limited,
                          "after_all": after_all, "max": fastembed.get_num_threads(),
                          "one": digest_one, "all": digest_all}))
    """)
    assert child["limited"] == 1
    assert child["after_limited"] == child["start"], "a kernel started OpenMP worker threads"
    assert child["one"] == child["all"]  # deterministic: same bits at any thread count
    if child["max"] > 1:
        # the observation is sound: unlimited, the same kernels do start worker threads
        assert child["after_all"] > child["after_limited"]


@needs_proc
@pytest.mark.parametrize("omp_num_threads", ["1", "2"])
def test_omp_num_threads_is_honoured(omp_num_threads):
    child = _run_child("""
        import json
        start = os_threads()
        n = fastembed.get_num_threads()
        digest = workload()
        print(json.dumps({"start": start, "n": n, "after": os_threads(), "digest": digest}))
    """, env={"OMP_NUM_THREADS": omp_num_threads})
    want = int(omp_num_threads) if fastembed.openmp_enabled() else 1
    assert child["n"] == want
    if want == 1:
        assert child["after"] == child["start"], "OMP_NUM_THREADS=1, yet worker threads started"
    else:
        assert child["after"] == child["start"] + want - 1
    # and the results are those of this process, whatever its thread count
    assert child["digest"] == _workload_digest_here()


@needs_openmp
def test_threadpool_limits_restores_the_default():
    before = fastembed.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastembed.get_num_threads() == 1
    assert fastembed.get_num_threads() == before


@needs_openmp
def test_one_openmp_runtime_shared_with_torch():
    """torch's bundled libgomp and fastembed's have one soname: the process loads one copy."""
    pytest.importorskip("torch")
    for first in ("fastembed", "torch"):
        child = _run_child(f"""
            import importlib, json, threadpoolctl
            importlib.import_module("{first}")
            import fastembed, torch
            runtimes = [i for i in threadpoolctl.threadpool_info()
                        if i["internal_api"] == "openmp"]
            torch.set_num_threads(1)       # omp_set_num_threads under the hood
            after_torch = fastembed.get_num_threads()
            print(json.dumps({{"runtimes": len(runtimes), "after_torch": after_torch}}))
        """)
        assert child["runtimes"] == 1, f"{first} imported first: {child}"
        assert child["after_torch"] == 1, "torch.set_num_threads(1) should limit fastembed too"



# -- a container's CPU limit (cgroup CPU quota), which OpenMP does not see ------------------

def _cgroup_tree(tmp_path, membership, files):
    """A fake /proc/self/cgroup and cgroup mount: ``files`` maps paths under the mount to
    their contents. Returns (proc_cgroup, root) for cgroup_cpu_limit."""
    proc = tmp_path / "cgroup"
    proc.write_text(membership)
    root = tmp_path / "sys"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(proc), str(root)


@pytest.mark.parametrize("membership, files, want", [
    # cgroup v2: cpu.max "quota period", rounded up; the tightest level wins
    ("0::/pod/app\n", {"pod/app/cpu.max": "150000 100000\n"}, 2),
    ("0::/pod/app\n", {"pod/app/cpu.max": "max 100000\n", "pod/cpu.max": "100000 100000\n"}, 1),
    ("0::/\n", {"cpu.max": "400000 100000\n"}, 4),          # a container's own namespace
    ("0::/pod\n", {"pod/cpu.max": "max 100000\n"}, None),
    ("0::/pod\n", {"pod/cpu.max": "50000 100000\n"}, 1),     # half a CPU: one thread
    # cgroup v1: the cpu controller's quota over its period; -1 is no limit
    ("4:cpu,cpuacct:/docker/abc\n2:memory:/docker/abc\n",
     {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
      "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"}, 2),
    ("1:cpu:/fe\n", {"cpu/fe/cpu.cfs_quota_us": "-1\n", "cpu/fe/cpu.cfs_period_us": "100000\n"},
     None),
    ("1:cpu:/docker/abc\n", {"cpu/cpu.cfs_quota_us": "300000\n",   # mounted at its own cgroup
                             "cpu/cpu.cfs_period_us": "100000\n"}, 3),
    # nothing to read, or nothing readable: no limit
    ("0::/pod\n", {}, None),
    ("0::/pod\n", {"pod/cpu.max": "garbage\n"}, None),
    ("2:memory:/x\n", {"memory/x/memory.max": "1\n"}, None),
])
def test_cgroup_cpu_limit_reads_the_quota(tmp_path, membership, files, want):
    from fastembed._ext.threads import cgroup_cpu_limit
    assert cgroup_cpu_limit(*_cgroup_tree(tmp_path, membership, files)) == want


def test_cgroup_cpu_limit_without_a_membership_file(tmp_path):
    from fastembed._ext.threads import cgroup_cpu_limit
    assert cgroup_cpu_limit(str(tmp_path / "missing"), str(tmp_path)) is None


_CAPPED = """
    import json
    import fastembed._ext.threads as threads
    threads.CGROUP_PATHS = {paths!r}
    start = os_threads()
    n = fastembed.get_num_threads()
    resolved = threads.resolve_n_threads(None), threads.resolve_n_threads(-1)
    digest = workload()
    after = os_threads()
    fastembed.set_num_threads(2)        # an explicit count is never capped
    explicit = fastembed.get_num_threads()
    print(json.dumps({{"start": start, "n": n, "resolved": resolved, "after": after,
                      "digest": digest, "explicit": explicit}}))
"""


@needs_openmp
@needs_proc
def test_default_threads_follow_a_containers_cpu_limit(tmp_path):
    paths = _cgroup_tree(tmp_path, "0::/pod\n", {"pod/cpu.max": "100000 100000\n"})
    child = _run_child(_CAPPED.format(paths=paths))
    assert child["n"] == 1 and child["resolved"] == [1, 1]
    assert child["after"] == child["start"], "a 1-CPU quota, yet worker threads started"
    assert child["digest"] == _workload_digest_here()
    assert child["explicit"] == 2
    # OMP_NUM_THREADS is the user's word: not capped
    child = _run_child(_CAPPED.format(paths=paths), env={"OMP_NUM_THREADS": "2"})
    assert child["n"] == 2 and child["after"] == child["start"] + 1


def _can_make_cpu_cgroup():
    base = "/sys/fs/cgroup/cpu"
    return (sys.platform.startswith("linux") and os.path.isfile(f"{base}/cpu.cfs_quota_us")
            and os.access(base, os.W_OK))


@needs_openmp
@pytest.mark.skipif(not _can_make_cpu_cgroup(),
                    reason="needs a writable cgroup v1 cpu controller (root) to make a quota")
def test_default_threads_in_a_real_cpu_quota():
    """The same under a real CFS quota of one CPU, made for the child."""
    path = f"/sys/fs/cgroup/cpu/fastembed-test-{os.getpid()}"
    os.mkdir(path)
    try:
        with open(f"{path}/cpu.cfs_period_us", "w") as f:
            f.write("100000")
        with open(f"{path}/cpu.cfs_quota_us", "w") as f:
            f.write("100000")
        code = (f"import os; open('{path}/tasks', 'w').write(str(os.getpid())); "
                "import fastembed, json; print(json.dumps(fastembed.get_num_threads()))")
        root = os.path.dirname(os.path.dirname(os.path.abspath(fastembed.__file__)))
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        env["PYTHONPATH"] = root
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == 1
    finally:
        os.rmdir(path)
