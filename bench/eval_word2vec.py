"""Evaluate fastembed's word2vec against gensim's: WordSim-353 quality, wall time, words/s.

Both train skip-gram with negative sampling, with the same hyper-parameters, on the same
tokenised sentences (fastembed's tokenizer and sentence splitter), in the same process:

    python bench/eval_word2vec.py                      # the built-in State of the Union corpus
    python bench/eval_word2vec.py --corpus DIR_OR_FILE --threads 2 --seeds 1,2,3

Defaults: dim 100, window 5, negative 5, sample 1e-4, min_count 5, 5 epochs, all threads.
Wall time runs from the tokenised sentences in memory to trained vectors, vocabulary
included, for both libraries. words/s counts corpus words (before subsampling) times epochs,
divided by that wall time.

WordSim-353 ships in the gensim wheel (``gensim/test/test_data/wordsim353.tsv``): the script
takes it from an installed gensim, or from ``--ws353 PATH``, or downloads the wheel with
``pip download gensim --no-deps`` into a cache directory. Pairs with a word outside the
vocabulary are skipped and counted. gensim is optional: without it only fastembed runs.
Several seeds give medians, since WordSim-353 on a 1.8 M-word corpus moves by a few hundredths
from seed to seed. Each training runs in a fresh Python process (this script, re-invoked with
``--worker``), so that no contender inherits another's threads or heap: idle BLAS or OpenMP
threads left spinning by one library would otherwise slow the next one down.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

import fastembed
from fastembed.vectors import Vectors
from fastembed.word2vec import corpus_sentences, train_word2vec


def find_ws353(path=None, cache=None):
    """A path to wordsim353.tsv: given, from gensim, or from a downloaded gensim wheel."""
    if path:
        return path
    try:
        from gensim.test.utils import datapath
        candidate = datapath("wordsim353.tsv")
        if os.path.exists(candidate):
            return candidate
    except ImportError:
        pass
    cache = cache or os.path.join(tempfile.gettempdir(), "fastembed-eval-cache")
    target = os.path.join(cache, "wordsim353.tsv")
    if os.path.exists(target):
        return target
    os.makedirs(cache, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                    ":all:", "-d", cache, "gensim"], check=True, capture_output=True)
    wheel = sorted(glob.glob(os.path.join(cache, "gensim-*.whl")))[-1]
    with zipfile.ZipFile(wheel) as z:
        data = z.read("gensim/test/test_data/wordsim353.tsv")
    with open(target + ".tmp", "wb") as f:
        f.write(data)
    os.replace(target + ".tmp", target)
    return target


def run_fastembed(sentences, params, seed, threads, hogwild):
    t0 = time.perf_counter()
    result = train_word2vec(sentences, dim=params["dim"], window=params["window"],
                            negative=params["negative"], min_count=params["min_count"],
                            sample=params["sample"], epochs=params["epochs"], seed=seed,
                            n_threads=threads, hogwild=hogwild, progress=False)
    seconds = time.perf_counter() - t0
    return result.vectors, seconds


def run_gensim(sentences, params, seed, threads):
    from gensim.models import Word2Vec
    t0 = time.perf_counter()
    model = Word2Vec(sentences, vector_size=params["dim"], window=params["window"],
                     negative=params["negative"], min_count=params["min_count"],
                     sample=params["sample"], epochs=params["epochs"], sg=1, hs=0,
                     workers=threads, seed=seed)
    seconds = time.perf_counter() - t0
    return Vectors(list(model.wv.index_to_key), model.wv.vectors), seconds


def worker(args, params, threads):
    """Train one contender with one seed in this process; print a JSON line."""
    sentences = corpus_sentences(args.corpus)
    name, seed = args.worker, int(args.worker_seed)
    if name == "gensim":
        vectors, seconds = run_gensim(sentences, params, seed, threads)
    else:
        vectors, seconds = run_fastembed(sentences, params, seed, threads, name == "hogwild")
    ev = vectors.evaluate_word_pairs(args.ws353)
    print(json.dumps(dict(seconds=seconds, **ev)))


def run_worker(name, seed, args, argv):
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--worker", name,
           "--worker-seed", str(seed), "--ws353", args.ws353]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=None, help="text file or directory (default: SOTU)")
    parser.add_argument("--ws353", default=None, help="path to wordsim353.tsv")
    parser.add_argument("--threads", type=int, default=None, help="default: all")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-4)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--no-gensim", action="store_true")
    parser.add_argument("--no-hogwild", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-seed", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    threads = args.threads or fastembed.get_num_threads()
    seeds = [int(s) for s in args.seeds.split(",")]
    params = dict(dim=args.dim, window=args.window, negative=args.negative,
                  sample=args.sample, min_count=args.min_count, epochs=args.epochs)
    if args.worker:
        return worker(args, params, threads)
    args.ws353 = find_ws353(args.ws353)
    sentences = corpus_sentences(args.corpus)
    n_words = sum(map(len, sentences))
    n_sentences = len(sentences)
    del sentences
    if args.threads is None:
        argv += ["--threads", str(threads)]

    contenders = [("fastembed", "fastembed")]
    if not args.no_hogwild and threads > 1:
        contenders.append(("fastembed hogwild", "hogwild"))
    have_gensim = False
    if not args.no_gensim:
        try:
            import gensim
            have_gensim = True
            contenders.append((f"gensim {gensim.__version__}", "gensim"))
        except ImportError:
            print("gensim is not installed: fastembed only", file=sys.stderr)

    results = {name: {"spearman": [], "seconds": [], "pairs": None, "oov": None}
               for name, _ in contenders}
    for seed in seeds:  # interleaved, so that machine noise hits every contender alike
        for name, key in contenders:
            ev = run_worker(key, seed, args, argv)
            seconds = ev["seconds"]
            r = results[name]
            r["spearman"].append(ev["spearman"])
            r["seconds"].append(seconds)
            r["pairs"], r["oov"] = ev["pairs"], ev["oov"]
            print(f"  seed {seed}: {name:<22} WS353 {ev['spearman']:.4f}  {seconds:6.2f} s",
                  file=sys.stderr, flush=True)

    corpus_name = args.corpus or "State of the Union 1790-2021 (built in)"
    print(f"\ncorpus: {corpus_name}, {n_sentences:,} sentences, {n_words:,} words; "
          f"dim {args.dim}, window {args.window}, negative {args.negative}, sample "
          f"{args.sample:g}, min_count {args.min_count}, {args.epochs} epochs, {threads} "
          f"threads; seeds {args.seeds}; medians; {platform.machine()}, "
          f"{os.cpu_count()} CPUs\n")
    print("| contender | WS353 Spearman (median) | per seed | pairs used / OOV | wall s "
          "(median) | words/s | wall vs gensim |")
    print("|---|---|---|---|---|---|---|")
    gensim_seconds = None
    if have_gensim:
        gensim_seconds = statistics.median(results[contenders[-1][0]]["seconds"])
    summary = {}
    for name, r in results.items():
        sp = statistics.median(r["spearman"])
        sec = statistics.median(r["seconds"])
        ratio = f"{sec / gensim_seconds:.2f}x" if gensim_seconds else "n/a"
        per_seed = ", ".join(f"{x:.3f}" for x in r["spearman"])
        print(f"| {name} | {sp:.4f} | {per_seed} | {r['pairs']} / {r['oov']} | {sec:.2f} | "
              f"{n_words * args.epochs / sec:,.0f} | {ratio} |")
        summary[name] = dict(spearman=sp, seconds=sec, per_seed=r["spearman"],
                             seconds_per_seed=r["seconds"], pairs=r["pairs"], oov=r["oov"])
    if have_gensim:
        g = summary[contenders[-1][0]]
        f = summary["fastembed"]
        print(f"\ntargets: WS353 >= gensim - 0.01: {f['spearman']:.4f} vs "
              f"{g['spearman'] - 0.01:.4f} -> {'met' if f['spearman'] >= g['spearman'] - 0.01 else 'MISSED'}; "
              f"wall <= 0.5x gensim: {f['seconds'] / g['seconds']:.2f}x -> "
              f"{'met' if f['seconds'] <= 0.5 * g['seconds'] else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(params=params, threads=threads, seeds=seeds, n_words=n_words,
                           results=summary), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
