"""Benchmark reading word vectors: fastembed.io.load_word2vec against gensim and naive NumPy.

    python bench/bench_io.py                                   # 400,000 x 50, 2 threads
    python bench/bench_io.py --rows 20000 --dim 50 --threads 2 --repeat 3 \\
        --out-dir /tmp/io-bench --json io.json

What it does:

1. Generates (seeded, ``--seed``) a table of ``--rows`` x ``--dim`` values and writes it twice
   into ``--out-dir``:

   * ``vectors.glove.txt``: GloVe's text format (no header; ``word v1 ... v_dim`` per line,
     single spaces). Words are ``w0`` ... ``w399999``. Values look like those of the
     published GloVe files (``glove.6B``): 5 significant digits, trailing zeros dropped
     (``%.5g``: ``0.418``, ``-0.044457``, ``4.0071``), both signs, magnitudes from about 1e-8
     to 3, and so exponent form for the small ones (``-6.7674e-05``), plus a few exact ``0``.
   * ``vectors.w2v.bin``: word2vec's binary format (word2vec.c's layout: a ``<count> <dim>``
     header line, then per row the UTF-8 word, a space, ``dim`` little-endian float32 and a
     newline) of the same table: the float32 values that the text parses to.

   With ``--out-dir`` the files are kept and reused by a later run with the same
   ``--rows/--dim/--seed`` (a small ``.json`` beside them records how they were made);
   without it they live in a temporary directory removed at the end.

2. Times each contender, each run in a FRESH Python process (this script re-invoked with
   ``--worker``), so that no process inherits another's threads or heap and so that the
   peak memory of one load can be measured. The runs go in rounds, one run of each
   contender per round (gensim drops out after ``--gensim-repeat`` rounds), so that a busy
   spell of a shared machine slows every contender, not just the one running then:

   * ``fastembed``: ``fastembed.io.load_word2vec(path, no_header=True)`` and
     ``load_word2vec(bin_path, binary=True)`` (with ``n_threads=--threads`` and
     ``progress=False`` when the function takes them);
   * ``gensim``: ``KeyedVectors.load_word2vec_format(path, no_header=True)`` and
     ``(bin_path, binary=True)``, when gensim is importable (``--gensim-repeat`` runs each,
     1 by default: gensim takes about 50 s on the 400,000 x 50 text file);
   * ``naive``: a per-line NumPy reader for the text file (``line.rstrip().split(' ')``,
     ``np.array(parts[1:], dtype=np.float32)`` per line, then ``np.vstack``) and a per-row
     Python loop for the binary one (the word read byte by byte up to its space, then
     ``np.frombuffer(f.read(4 * dim), '<f4')`` into a preallocated table).

   The child imports its library, records its resident set just before the load
   (``/proc/self/statm``), loads, then records its peak resident set
   (``resource.getrusage(RUSAGE_SELF).ru_maxrss``; on Linux ``VmHWM`` from
   ``/proc/self/status`` instead, because there ``ru_maxrss`` carries the parent's RSS over
   fork and exec); **peak memory** = that high-water mark minus the RSS before the load: the
   most memory the load held at once. It counts the file pages a reader maps (``mmap``)
   while they are resident, as the kernel does. The time is the wall time of the load call
   alone (``perf_counter``). Both files are read once beforehand, so every run reads from
   the page cache. Each child gets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and
   ``MKL_NUM_THREADS`` = ``--threads``.

3. Checks every contender's result: the words, in order, and the table, bitwise (same shape,
   dtype float32, same bytes), against the generated table and against fastembed's result
   for the same file, and says so.

4. Prints a Markdown table: median seconds over the runs, rows/s, MB/s (file bytes / 10^6 per
   second), speed-up vs gensim and vs the naive reader (their median / this median, same
   format), peak memory in MB (10^6 bytes) and its ratio to the **reference size**:

       reference = table bytes + vocabulary bytes
       table bytes = rows * dim * 4                                    (the float32 table)
       vocabulary bytes = sum of len(word.encode("utf-8")) + 8 * rows  (the words' UTF-8
           bytes, plus one 8-byte offset or pointer per word)

   that is, the smallest in-memory form of the result. Python's own objects cost more: a
   ``str`` is about 50 bytes plus its characters, and a dict entry another 30 to 100, so a
   list-and-dict vocabulary of short words is several times its "vocabulary bytes". The
   result every contender returns is such a list (and fastembed's and gensim's a dict too),
   so a second reference counts the vocabulary as it is returned:

       returned = table bytes + sys.getsizeof of the list of words, of each word, and of the
                  word -> row dict

   The memory target is checked against the returned size (the final table plus its
   vocabulary, as the user holds them); the table shows both ratios.

5. Prints the targets, defined at 2 threads, with met / MISSED: text load >= 25x gensim,
   binary load >= 15x gensim, each >= 3x the naive reader, fastembed's peak memory <= 1.5x
   the reference size for each format. ``--json PATH`` writes everything (environment,
   parameters, every run, checks, targets). The exit status is 1 when a table differs.

Do not read timings from a busy machine: other processes on the same cores slow the
multi-threaded contender most.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

TEXT_NAME = "vectors.glove.txt"
BIN_NAME = "vectors.w2v.bin"
FORMAT_VERSION = 1  # bump when the generated files change
CONTENDERS = ("fastembed", "gensim", "naive")
FORMATS = ("text", "binary")
TARGETS_AT_THREADS = 2
TARGET_VS_GENSIM = {"text": 25.0, "binary": 15.0}
TARGET_VS_NAIVE = 3.0
TARGET_PEAK_RATIO = 1.5


# -- data ---------------------------------------------------------------------------------------

def generate_table(rows, dim, seed):
    """(words, float64 values whose %.5g strings are the file's tokens, float32 table).

    Each value is sign * m / 10**p with a 5-digit integer m: the double nearest that decimal,
    which ``%.5g`` prints back as exactly those digits and which ``float(token)`` reads back
    bit for bit, so the float32 table is what a reader parsing ``np.float32(token)`` gets.
    """
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal((rows, dim))) * 0.4
    tiny = rng.random((rows, dim)) < 0.02  # about 2% small values: exponent form
    x[tiny] *= 10.0 ** -rng.uniform(3, 7, size=int(tiny.sum()))
    x = np.clip(x, 1e-8, 3.0)
    p = 4 - np.floor(np.log10(x)).astype(np.int64)  # m = x * 10**p has 5 digits
    m = np.rint(x * 10.0 ** p)
    over = m >= 100000  # rounding up to 100000: one digit fewer
    m[over] /= 10
    p[over] -= 1
    values = m / 10.0 ** p  # exact m and 10**p (p <= 12), one correctly rounded division
    values[rng.random((rows, dim)) < 1e-4] = 0.0  # a few exact zeros ("0")
    values *= np.where(rng.random((rows, dim)) < 0.5, -1.0, 1.0)
    values[values == 0] = 0.0  # no "-0"
    words = [f"w{i}" for i in range(rows)]
    return words, values, values.astype(np.float32)


def write_files(directory, words, values, table):
    dim = table.shape[1]
    text_path = os.path.join(directory, TEXT_NAME)
    bin_path = os.path.join(directory, BIN_NAME)
    fmt = " ".join(["%.5g"] * dim)
    with open(text_path, "w", encoding="utf-8", newline="\n") as f:
        step = 10000
        for start in range(0, len(words), step):
            block = values[start:start + step].tolist()
            f.write("".join(f"{w} {fmt % tuple(row)}\n"
                            for w, row in zip(words[start:start + step], block)))
    little = table.astype("<f4", copy=False)
    with open(bin_path, "wb") as f:
        f.write(f"{len(words)} {dim}\n".encode())
        for word, row in zip(words, little):
            f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
    return text_path, bin_path


def prepare_data(out_dir, rows, dim, seed):
    """Generate the table, and write the two files unless matching ones are already there."""
    t0 = time.perf_counter()
    words, values, table = generate_table(rows, dim, seed)
    meta = {"rows": rows, "dim": dim, "seed": seed, "format_version": FORMAT_VERSION,
            "table_sha256": hashlib.sha256(table.tobytes()).hexdigest()}
    meta_path = os.path.join(out_dir, "vectors.json")
    text_path = os.path.join(out_dir, TEXT_NAME)
    bin_path = os.path.join(out_dir, BIN_NAME)
    reused = False
    try:
        with open(meta_path, encoding="utf-8") as f:
            old = json.load(f)
        reused = (old.get("params") == meta and os.path.getsize(text_path) == old["text_bytes"]
                  and os.path.getsize(bin_path) == old["binary_bytes"])
    except (OSError, ValueError, KeyError):
        pass
    if not reused:
        write_files(out_dir, words, values, table)
        with open(meta_path, "w", encoding="utf-8") as f:
            json.dump({"params": meta, "text_bytes": os.path.getsize(text_path),
                       "binary_bytes": os.path.getsize(bin_path)}, f)
    return words, table, text_path, bin_path, reused, time.perf_counter() - t0


def warm_page_cache(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def reference_bytes(words, table):
    """(table bytes, vocabulary bytes): see the module docstring."""
    table_bytes = table.shape[0] * table.shape[1] * 4
    vocab_bytes = sum(len(w.encode("utf-8")) for w in words) + 8 * len(words)
    return table_bytes, vocab_bytes


def returned_vocab_bytes(words):
    """The vocabulary as returned: the list of str and the word -> row dict."""
    words = list(words)
    index = dict(zip(words, range(len(words))))
    return sys.getsizeof(words) + sum(map(sys.getsizeof, words)) + sys.getsizeof(index)


# -- the child process ------------------------------------------------------------------------

def _rss_bytes():
    """The current resident set size, from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_bytes():
    """The process's peak resident set size (its high-water mark) so far.

    ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, except on Linux, where that value carries
    over fork() and exec() (the kernel keeps the larger of the parent's RSS at fork and the
    child's own), so a child of a parent holding 400 MB would report at least 400 MB: there
    the peak of this process image alone, ``VmHWM`` of ``/proc/self/status``, is used.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _naive_text(path):
    words, rows = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip().split(" ")
            words.append(parts[0])
            rows.append(np.array(parts[1:], dtype=np.float32))
    return words, np.vstack(rows)


def _naive_binary(path):
    with open(path, "rb") as f:
        count, dim = (int(v) for v in f.readline().split())
        table = np.empty((count, dim), dtype=np.float32)
        words = []
        for i in range(count):
            word = bytearray()
            while True:
                c = f.read(1)
                if c == b" ":
                    break
                if not c:
                    raise ValueError(f"{path}: truncated at row {i}")
                if c != b"\n":  # the newline that ends the previous row
                    word += c
            words.append(word.decode("utf-8"))
            table[i] = np.frombuffer(f.read(4 * dim), "<f4")
    return words, table


def worker(contender, fmt, path, threads, save):
    """Load ``path`` once with ``contender``; print one JSON line of measurements."""
    if contender == "fastembed":
        from fastembed.io import load_word2vec
        params = inspect.signature(load_word2vec).parameters
        kwargs = {}
        if "n_threads" in params:
            kwargs["n_threads"] = threads
        if "progress" in params:
            kwargs["progress"] = False
        kwargs.update({"no_header": True} if fmt == "text" else {"binary": True})

        def load():
            v = load_word2vec(path, **kwargs)
            return v.words, v.weight
    elif contender == "gensim":
        from gensim.models import KeyedVectors

        def load():
            kv = (KeyedVectors.load_word2vec_format(path, no_header=True) if fmt == "text"
                  else KeyedVectors.load_word2vec_format(path, binary=True))
            return kv.index_to_key, kv.vectors
    elif contender == "naive":
        load = (lambda: _naive_text(path)) if fmt == "text" else (lambda: _naive_binary(path))
    else:
        raise ValueError(contender)

    rss_before = _rss_bytes()
    if rss_before is None:  # no /proc: the high-water mark so far stands in
        rss_before = _peak_rss_bytes()
    t0 = time.perf_counter()
    words, table = load()
    seconds = time.perf_counter() - t0
    peak = _peak_rss_bytes()
    # everything below is outside the measurements
    table = np.asarray(table)
    result = {"seconds": seconds, "rss_before": rss_before, "peak_rss": peak,
              "peak_bytes": peak - rss_before, "shape": list(table.shape),
              "dtype": str(table.dtype), "rows": len(words)}
    if save:
        np.save(save + ".npy", table)
        with open(save + ".words", "w", encoding="utf-8") as f:
            f.write("\n".join(words))
    print(json.dumps(result))


def run_worker(contender, fmt, path, threads, save=None, timeout=7200):
    """One fresh process; returns its measurements, or {"error": ...}."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", contender, fmt, path,
           "--threads", str(threads)]
    if save:
        cmd += ["--save", save]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if out.returncode != 0:
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"exit status {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- checks -----------------------------------------------------------------------------------

def compare(saved, words, table):
    """None if the saved result equals (words, table) bitwise, else what differs."""
    got = np.load(saved + ".npy")
    with open(saved + ".words", encoding="utf-8") as f:
        got_words = f.read().split("\n") if len(words) else []
    problems = []
    if got_words != words:
        first = next((i for i, (a, b) in enumerate(zip(got_words, words)) if a != b),
                     min(len(got_words), len(words)))
        problems.append(f"words differ (first at row {first}; {len(got_words)} vs "
                        f"{len(words)} words)")
    if got.shape != table.shape or got.dtype != table.dtype:
        problems.append(f"table {got.dtype}{list(got.shape)} vs {table.dtype}"
                        f"{list(table.shape)}")
    else:
        diff = got.view(np.uint32) != table.view(np.uint32)
        if diff.any():
            r, c = (int(v) for v in np.argwhere(diff)[0])
            problems.append(f"{int(diff.sum())} values differ bitwise (first at [{r}, {c}]: "
                            f"{got[r, c]!r} vs {table[r, c]!r})")
    return "; ".join(problems) or None


# -- report -----------------------------------------------------------------------------------

def _fmt_ratio(x):
    return "—" if x is None else f"{x:.1f}x"


def environment():
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f
                                if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        import fastembed
        info["fastembed"] = fastembed.__version__
    except Exception as exc:  # pragma: no cover - reported, not fatal
        info["fastembed"] = f"unavailable ({exc})"
    try:  # the version alone: importing gensim here would only grow this process
        from importlib.metadata import version
        info["gensim"] = version("gensim")
    except Exception:
        info["gensim"] = None
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for fastembed (and OMP/BLAS variables of every child)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of fastembed and the naive readers (median reported)")
    parser.add_argument("--gensim-repeat", type=int, default=1, help="runs of gensim")
    parser.add_argument("--no-gensim", action="store_true", help="leave gensim out")
    parser.add_argument("--no-naive", action="store_true", help="leave the naive readers out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", help="keep (and reuse) the generated files here")
    parser.add_argument("--json", help="write every measurement to this file")
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "FORMAT", "PATH"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        contender, fmt, path = args.worker
        worker(contender, fmt, path, args.threads, args.save)
        return 0
    if args.rows < 1 or args.dim < 1 or args.repeat < 1 or args.gensim_repeat < 1:
        parser.error("--rows, --dim, --repeat and --gensim-repeat must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")

    env = environment()
    have_gensim = env["gensim"] is not None and not args.no_gensim
    tmp = None
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        out_dir = args.out_dir
    else:
        out_dir = tmp = tempfile.mkdtemp(prefix="bench-io-")
    try:
        return _run(args, env, have_gensim, out_dir)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args, env, have_gensim, out_dir):
    words, table, text_path, bin_path, reused, gen_s = prepare_data(
        out_dir, args.rows, args.dim, args.seed)
    paths = {"text": text_path, "binary": bin_path}
    sizes = {fmt: os.path.getsize(p) for fmt, p in paths.items()}
    table_bytes, vocab_bytes = reference_bytes(words, table)
    ref = table_bytes + vocab_bytes
    returned_ref = table_bytes + returned_vocab_bytes(words)
    for p in paths.values():
        warm_page_cache(p)

    print(f"# Reading word vectors: {args.rows:,} words x {args.dim}, {args.threads} "
          f"thread(s)\n")
    print(f"- files: {TEXT_NAME} {sizes['text'] / 1e6:.1f} MB (GloVe text, %.5g values), "
          f"{BIN_NAME} {sizes['binary'] / 1e6:.1f} MB (word2vec binary); "
          f"{'reused' if reused else 'generated'} in {gen_s:.1f} s, in {out_dir}")
    print(f"- reference size: table {table_bytes / 1e6:.1f} MB (rows x dim x 4) + vocabulary "
          f"{vocab_bytes / 1e6:.1f} MB (word bytes + 8 per word) = {ref / 1e6:.1f} MB; as "
          f"returned (list of str + dict): {returned_ref / 1e6:.1f} MB")
    print(f"- {env.get('cpu') or env['machine']}, {env['cpu_count']} CPUs, Python "
          f"{env['python']}, NumPy {env['numpy']}, fastembed {env['fastembed']}, gensim "
          f"{env['gensim'] or 'not installed'}")
    print(f"- each run in a fresh process, the contenders in rounds; median of {args.repeat} "
          f"run(s) ({args.gensim_repeat} for gensim); files in the page cache\n", flush=True)

    plan = [("fastembed", args.repeat)]
    if have_gensim:
        plan.append(("gensim", args.gensim_repeat))
    if not args.no_naive:
        plan.append(("naive", args.repeat))

    results = {}
    checks = {}
    fast_saved = {}
    any_wrong = False
    for fmt in FORMATS:
        # rounds: each contender runs once per round (while it has runs left), so that a
        # slow spell of the machine falls on every contender rather than on one
        all_runs = {contender: [] for contender, _ in plan}
        for i in range(max(repeat for _, repeat in plan)):
            for contender, repeat in plan:
                runs = all_runs[contender]
                if i >= repeat or (runs and "error" in runs[-1]):
                    continue
                save = (os.path.join(out_dir, f"_check-{contender}-{fmt}")
                        if i == 0 else None)
                print(f"  {contender} {fmt} run {i + 1}/{repeat} ...", file=sys.stderr,
                      flush=True)
                runs.append(run_worker(contender, fmt, paths[fmt], args.threads, save))
        for contender, _ in plan:
            runs = all_runs[contender]
            res = {"contender": contender, "format": fmt, "runs": runs}
            if "error" in runs[-1]:
                res["error"] = runs[-1]["error"]
                checks[(contender, fmt)] = "not run: " + res["error"]
            else:
                secs = [r["seconds"] for r in runs]
                peaks = [r["peak_bytes"] for r in runs]
                res.update(median_s=statistics.median(secs),
                           peak_bytes=statistics.median(peaks))
                save = os.path.join(out_dir, f"_check-{contender}-{fmt}")
                problems = []
                vs_truth = compare(save, words, table)
                if vs_truth:
                    problems.append("vs the generated table: " + vs_truth)
                if contender == "fastembed":
                    fast_saved[fmt] = save
                elif fmt in fast_saved:
                    vs_fast = compare(save, *_load_saved(fast_saved[fmt]))
                    if vs_fast:
                        problems.append("vs fastembed: " + vs_fast)
                else:
                    problems.append("fastembed's result is missing: not compared with it")
                checks[(contender, fmt)] = "; ".join(problems) or "equal"
                any_wrong |= bool(problems)
                if contender != "fastembed":
                    _remove_saved(save)
            results[(contender, fmt)] = res
    for save in fast_saved.values():
        _remove_saved(save)

    # -- the table
    def median(contender, fmt):
        r = results.get((contender, fmt))
        return None if r is None or "error" in r else r["median_s"]

    print("| contender | format | median s | rows/s | MB/s | vs gensim | vs naive | peak MB | "
          "peak / returned | peak / bytes ref | table |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    rows_json = []
    for fmt in FORMATS:
        for contender, _ in plan:
            r = results[(contender, fmt)]
            if "error" in r:
                print(f"| {contender} | {fmt} | failed: {r['error'][:80]} | | | | | | | | |")
                rows_json.append({**r})
                continue
            s = r["median_s"]
            g, nv = median("gensim", fmt), median("naive", fmt)
            vs_g = g / s if g is not None else None
            vs_n = nv / s if nv is not None else None
            ratio = r["peak_bytes"] / ref
            returned_ratio = r["peak_bytes"] / returned_ref
            check = checks[(contender, fmt)]
            print(f"| {contender} | {fmt} | {s:.3f} | {args.rows / s:,.0f} | "
                  f"{sizes[fmt] / 1e6 / s:,.1f} | {_fmt_ratio(vs_g)} | {_fmt_ratio(vs_n)} | "
                  f"{r['peak_bytes'] / 1e6:,.1f} | {returned_ratio:.2f} | {ratio:.2f} | "
                  f"{'equal' if check == 'equal' else 'DIFFERS'} |")
            rows_json.append({**r, "rows_per_s": args.rows / s,
                              "mb_per_s": sizes[fmt] / 1e6 / s, "speedup_vs_gensim": vs_g,
                              "speedup_vs_naive": vs_n, "peak_ratio": ratio,
                              "peak_ratio_returned": returned_ratio,
                              "check": check})

    print("\nTables: ", end="")
    compared = {k: v for k, v in checks.items() if not v.startswith("not run")}
    if compared and all(v == "equal" for v in compared.values()):
        print("every contender's words and table equal fastembed's and the generated table, "
              "bitwise.")
    else:
        print()
        for (contender, fmt), v in checks.items():
            print(f"- {contender} {fmt}: {v}")

    # -- targets
    print(f"\nTargets (defined at {TARGETS_AT_THREADS} threads"
          + ("" if args.threads == TARGETS_AT_THREADS
             else f"; THIS RUN USED {args.threads}, so they are indicative only") + "):")
    targets = []

    def target(name, value, goal, ok_if_ge=True, unit="x"):
        if value is None:
            status = "n/a"
        else:
            status = "met" if (value >= goal if ok_if_ge else value <= goal) else "MISSED"
        shown = "n/a" if value is None else f"{value:.2f}{unit}"
        op = ">=" if ok_if_ge else "<="
        print(f"- {name}: {shown} (target {op} {goal:g}{unit}): {status}")
        targets.append({"target": name, "value": value, "goal": goal,
                        "comparison": op, "status": status})

    for fmt in FORMATS:
        s, g, nv = median("fastembed", fmt), median("gensim", fmt), median("naive", fmt)
        target(f"{fmt} vs gensim", g / s if s and g else None, TARGET_VS_GENSIM[fmt])
        target(f"{fmt} vs naive", nv / s if s and nv else None, TARGET_VS_NAIVE)
    for fmt in FORMATS:
        r = results[("fastembed", fmt)]
        ratio = None if "error" in r else r["peak_bytes"] / returned_ref
        target(f"{fmt} peak memory / (table + vocabulary as returned)", ratio,
               TARGET_PEAK_RATIO, ok_if_ge=False)

    if args.json:
        payload = {"environment": env, "params": vars(args) | {"out_dir": out_dir},
                   "files": {fmt: {"path": paths[fmt], "bytes": sizes[fmt]}
                             for fmt in FORMATS},
                   "reference": {"table_bytes": table_bytes, "vocab_bytes": vocab_bytes,
                                 "returned_bytes": returned_ref,
                                 "definition": "rows*dim*4 + sum(len(word.encode())) + "
                                               "8*rows"},
                   "results": rows_json, "targets": targets,
                   "tables_equal": not any_wrong}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        print(f"\nwrote {args.json}")
    return 1 if any_wrong else 0


def _load_saved(save):
    with open(save + ".words", encoding="utf-8") as f:
        words = f.read().split("\n")
    return words, np.load(save + ".npy")


def _remove_saved(save):
    for ext in (".npy", ".words"):
        try:
            os.remove(save + ext)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
