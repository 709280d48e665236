"""Command line: ``python -m fastembed``.

With no command it prints the seed example (a 4-word, 3-dimensional table) and the list of
commands. The benchmarks are not part of the package: they run from ``bench/`` in a checkout
(``python bench/bench_kernels.py --quick``; see bench/README.md).

The commands (:mod:`fastembed.cli`):

- ``python -m fastembed word2vec [CORPUS] [--out vectors.txt] [--model {skipgram,cbow}] ...``
  trains word vectors (on the built-in State of the Union corpus when no CORPUS is given)
  and prints the nearest neighbours of a few words;
- ``python -m fastembed similar vectors.txt WORD [WORD ...] [-n 10]``;
- ``python -m fastembed classify train.txt [--test test.txt] [--out model.npz]`` trains a
  fastText-style classifier on ``__label__X text`` lines.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import fastembed
from fastembed import cli


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


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastembed",
        description="fastembed: the embedding layer, done right for the CPU. With no "
                    "command, prints the seed example and the commands.")
    parser.add_argument("--version", action="version",
                        version=f"fastembed {fastembed.__version__}")
    cli.add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if args.command is not None:
        try:
            return cli.run(args)
        except (cli.UserError, OSError, ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"python -m fastembed {args.command}: error: {message}", file=sys.stderr)
            return 2
    seed_example()
    print()
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
