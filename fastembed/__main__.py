"""Command line: ``python -m fastembed``.

With no arguments it runs the main job: the seed example (a 4-word, 3-dimensional table), then
a short timing table of ``gather`` and ``scatter_add`` against NumPy's ``E[X]`` and
``np.add.at`` at V=1e6, D=64, N=2**20, on one thread and on all threads.

``python -m fastembed bench [--quick] [--json PATH] [--plot PATH.png] [--threads 1,2]
[--repeat N]`` runs the benchmark suite of :mod:`fastembed.bench`.

Training commands (:mod:`fastembed.cli`):

- ``python -m fastembed word2vec [CORPUS] [--out vectors.txt] [--model {skipgram,cbow}] ...``
  trains word vectors (on the built-in State of the Union corpus when no CORPUS is given)
  and prints the nearest neighbours of a few words;
- ``python -m fastembed similar vectors.txt WORD [WORD ...] [-n 10]``;
- ``python -m fastembed classify train.txt [--test test.txt] [--out model.npz]`` trains a
  fastText-style classifier on ``__label__X text`` lines.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

import fastembed
from fastembed import bench as _bench
from fastembed import cli


def _median_seconds(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def seed_example(file=None):
    """Print the seed example: a lookup of [0, 1, 2, 0] and a (batch, sequence) lookup."""
    file = sys.stdout if file is None else file  # resolved per call, so capture works
    layer = fastembed.Embedding(input_dim=4, output_dim=3, seed=0)
    print("Embedding(input_dim=4, output_dim=3, seed=0).weight:", file=file)
    print(layer.weight, file=file)
    print("\nlayer(np.array([0, 1, 2, 0])):", file=file)
    print(layer(np.array([0, 1, 2, 0])), file=file)
    batch = np.random.default_rng(1).integers(0, 4, size=(32, 10))
    print(f"\nlayer(ids of shape {batch.shape}).shape: {layer(batch).shape}", file=file)


def timing_table(num_embeddings=1_000_000, embedding_dim=64, n_ids=2**20, repeat=5,
                 file=None):
    """Time gather and scatter_add against NumPy on one random problem; print a table."""
    file = sys.stdout if file is None else file
    rng = np.random.default_rng(0)
    weight = rng.random((num_embeddings, embedding_dim), dtype=np.float32)
    ids = rng.integers(0, num_embeddings, size=n_ids)
    grad = rng.random((n_ids, embedding_dim), dtype=np.float32)
    out = np.empty((n_ids, embedding_dim), dtype=np.float32)
    table = np.zeros_like(weight)
    all_threads = fastembed.get_num_threads()

    rows = []
    numpy_gather = _median_seconds(lambda: weight[ids], repeat)
    rows.append(("gather", "numpy E[X]", 1, numpy_gather, numpy_gather))
    for n in sorted({1, all_threads}):
        t = _median_seconds(lambda: fastembed.gather(weight, ids, out=out, n_threads=n), repeat)
        rows.append(("gather", "fastembed.gather", n, t, numpy_gather))
    numpy_scatter = _median_seconds(lambda: np.add.at(table, ids, grad), max(1, repeat // 2))
    rows.append(("scatter_add", "numpy np.add.at", 1, numpy_scatter, numpy_scatter))
    for n in sorted({1, all_threads}):
        t = _median_seconds(lambda: fastembed.scatter_add(table, ids, grad, n_threads=n),
                            repeat)
        rows.append(("scatter_add", "fastembed.scatter_add", n, t, numpy_scatter))

    print(f"\nfloat32, V={num_embeddings:,}, D={embedding_dim}, N={n_ids:,} uniform ids; "
          f"median of {repeat} runs; OpenMP {'on' if fastembed.openmp_enabled() else 'off'}, "
          f"{all_threads} threads available; {platform.machine()}", file=file)
    print(f"{'op':<12} {'contender':<22} {'threads':>7} {'median ms':>10} "
          f"{'vs numpy':>9}", file=file)
    for op, who, n, t, ref in rows:
        print(f"{op:<12} {who:<22} {n:>7} {t * 1e3:>10.2f} {ref / t:>8.2f}x", file=file)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastembed",
        description="fastembed: the embedding layer, done right for the CPU. With no "
                    "command, prints the seed example and a short timing table.")
    parser.add_argument("--version", action="version",
                        version=f"fastembed {fastembed.__version__}")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per contender (default 5; the median is shown)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench_parser = commands.add_parser(
        "bench", help="run the benchmark suite (gather, scatter_add, coalesce vs NumPy and torch)",
        description="Benchmark fastembed against NumPy (and torch when installed); prints a "
                    "table of medians, GB/s and speed-ups, then the targets.")
    _bench.add_arguments(bench_parser)
    w2v_parser = commands.add_parser(
        "word2vec", help="train skip-gram or CBOW word vectors (default corpus: State of "
                         "the Union)",
        description="Train word2vec vectors, skip-gram (the default) or CBOW (--model cbow), "
                    "with negative sampling (gensim's defaults), write them in word2vec text "
                    "format, and print the nearest neighbours of a few words.")
    cli.add_word2vec_arguments(w2v_parser)
    similar_parser = commands.add_parser(
        "similar", help="nearest neighbours of words in a word2vec text file",
        description="Print the nearest neighbours, by cosine similarity, of words in a "
                    "word2vec (or GloVe) text file.")
    cli.add_similar_arguments(similar_parser)
    classify_parser = commands.add_parser(
        "classify", help="train a fastText-style text classifier",
        description="Train a bag-of-embeddings classifier on fastText-format lines "
                    "('__label__X text'); print accuracy and timing.")
    cli.add_classify_arguments(classify_parser)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench.main(args, parser=bench_parser)
    runners = {"word2vec": cli.run_word2vec, "similar": cli.run_similar,
               "classify": cli.run_classify}
    if args.command in runners:
        try:
            return runners[args.command](args)
        except (cli.UserError, OSError, ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"python -m fastembed {args.command}: error: {message}", file=sys.stderr)
            return 2
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    seed_example()
    timing_table(repeat=args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
