"""Fingerprint what fastembed computes: a SHA-256 of every result of a fixed, seeded battery.

Two builds of fastembed (with OpenMP and without, from an sdist or a checkout) must compute
the same bits. CI runs this script under each build and compares the fingerprints:

    python tools/fingerprint.py --out openmp.json            # under the OpenMP build
    python tools/fingerprint.py --compare openmp.json        # under the serial build

Within one run, every case is computed at 1 thread and at ``--threads`` (default 2) threads,
and the two results must already be equal bitwise (in a serial build both run on one thread).
The battery covers the kernels behind every public entry point: gather, scatter_add, coalesce,
the three bag modes with and without per-sample weights, their backward passes, the five
optimizers (fused and unfused), skip-gram and CBOW training on the built-in corpus and the
text parser of ``load_word2vec``. Exit status: 0 when everything matches, 1 otherwise.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

import fastembed
from fastembed import functional, optim

# scatter_add runs small tables on one thread whatever n_threads says (it is faster there);
# lift that rule so that the 1-thread and 2-thread fingerprints compare the parallel
# row-ownership path at these sizes too.
functional._SCATTER_PARALLEL_MIN_TABLE_BYTES = 0
functional._SCATTER_PARALLEL_MIN_WORK = 0


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _zipf_ids(rng, n, v, dtype):
    ranks = np.arange(1, v + 1, dtype=np.float64)
    p = ranks ** -1.1
    p /= p.sum()
    return rng.choice(v, size=n, p=p).astype(dtype)


def _cases():
    """(name, function of n_threads returning arrays) for the whole battery."""
    cases = []
    for dtype in (np.float32, np.float64):
        for idt in (np.int32, np.int64):
            rng = np.random.default_rng(12345)
            V, D, N = 5000, 48, 60000  # big enough to run the parallel paths
            E = rng.standard_normal((V, D)).astype(dtype)
            X = _zipf_ids(rng, N, V, idt)
            G = rng.standard_normal((N, D)).astype(dtype)
            tag = f"{np.dtype(dtype).name}/{np.dtype(idt).name}"

            def gather(t, E=E, X=X):
                return (fastembed.gather(E, X.reshape(300, 200), n_threads=t),)

            def scatter(t, E=E, X=X, G=G):
                out = E.copy()
                fastembed.scatter_add(out, X, G, n_threads=t)
                return (out,)

            def coalesce(t, V=V, X=X, G=G):
                g = fastembed.coalesce(X, G, num_embeddings=V, n_threads=t)
                return (g.rows, g.values)

            cases += [(f"gather {tag}", gather), (f"scatter_add {tag}", scatter),
                      (f"coalesce {tag}", coalesce)]

            offsets = np.sort(rng.choice(N, size=999, replace=False)).astype(np.int64)
            offsets[0] = 0
            w = rng.random(N).astype(dtype)
            for mode in ("sum", "mean", "max"):
                for weighted in ((False, True) if mode != "max" else (False,)):
                    def bag(t, E=E, X=X, offsets=offsets, w=w, mode=mode, weighted=weighted,
                            dtype=dtype):
                        layer = fastembed.EmbeddingBag(weight=E.copy(), mode=mode, padding_idx=3)
                        y = layer(X, offsets, per_sample_weights=w if weighted else None,
                                  n_threads=t)
                        gy = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
                        g = layer.backward(gy, n_threads=t)
                        return (y, g.rows, g.values)

                    name = f"embedding_bag {mode}{' weighted' if weighted else ''} {tag}"
                    cases.append((name, bag))

            for opt_name, make in (
                ("SGD", lambda p: optim.SGD(p, lr=0.1, momentum=0.9)),
                ("Adagrad", lambda p: optim.Adagrad(p, lr=0.1)),
                ("RowWiseAdagrad", lambda p: optim.RowWiseAdagrad(p, lr=0.1)),
                ("Adam", lambda p: optim.Adam(p, lr=0.01)),
                ("AdamW", lambda p: optim.AdamW(p, lr=0.01, weight_decay=0.1)),
            ):
                for fused in (False, True):
                    def train(t, E=E, X=X, G=G, make=make, fused=fused):
                        layer = fastembed.Embedding(weight=E.copy())
                        opt = make(layer)
                        for step in range(3):
                            ids = np.roll(X, 977 * step)
                            layer(ids, n_threads=t)
                            if fused:
                                layer.backward_and_step(G, opt, n_threads=t)
                            else:
                                layer.backward(G, n_threads=t)
                                opt.step()
                                opt.zero_grad()
                        state = [a for pair in opt.state for a in pair]
                        return (layer.weight, *state)

                    cases.append((f"{opt_name}{' fused' if fused else ''} {tag}", train))

    def word2vec(t, model="skipgram"):
        sentences = fastembed.models.word2vec.corpus_sentences()[:400]
        result = fastembed.train_word2vec(sentences, model=model, dim=32, epochs=1, seed=3,
                                          n_threads=t, progress=False)
        return (result.model.syn0, result.model.syn1neg)

    def text_parse(t):
        rng = np.random.default_rng(7)
        table = rng.standard_normal((3000, 25)).astype(np.float32) * 10.0 ** rng.integers(
            -8, 8, size=(3000, 25))
        lines = [f"w{i} " + " ".join(repr(float(x)) for x in row) for i, row in enumerate(table)]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "v.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"{len(lines)} 25\n" + "\n".join(lines) + "\n")
            vectors = fastembed.load_word2vec(path, n_threads=t, progress=False)
            for dtype in (np.float32, np.float64):
                parsed = fastembed.load_word2vec(path, n_threads=t, dtype=dtype, progress=False)
                expected = np.array([line.split()[1:] for line in lines], dtype=dtype)
                if not np.array_equal(parsed.weight, expected):
                    raise AssertionError(f"load_word2vec({dtype.__name__}) differs from NumPy")
        return (vectors.weight,)

    cases += [("word2vec skip-gram", word2vec),
              ("word2vec cbow", lambda t: word2vec(t, model="cbow")),
              ("load_word2vec text", text_parse)]
    return cases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the fingerprints as JSON here")
    parser.add_argument("--compare", help="compare with fingerprints written by another build")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    print(f"fastembed {fastembed.__version__} from {os.path.dirname(fastembed.__file__)}; "
          f"openmp_enabled() = {fastembed.openmp_enabled()}; threads 1 and {args.threads}")
    prints, failures = {}, []
    for name, run in _cases():
        one = _digest(*run(1))
        many = _digest(*run(args.threads))
        if one != many:
            failures.append(f"{name}: 1 thread and {args.threads} threads differ")
        prints[name] = one
    print(f"{len(prints)} cases fingerprinted")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"openmp": fastembed.openmp_enabled(), "cases": prints}, f, indent=1)
    if args.compare:
        with open(args.compare, encoding="utf-8") as f:
            other = json.load(f)
        theirs = other["cases"]
        for name in sorted(set(prints) | set(theirs)):
            if prints.get(name) != theirs.get(name):
                failures.append(f"{name}: differs from {args.compare} "
                                f"(openmp={other['openmp']})")
        print(f"compared with {args.compare} (openmp={other['openmp']}): "
              f"{len(theirs)} cases")
    for line in failures:
        print("MISMATCH:", line)
    print("fingerprints: " + ("FAILED" if failures else "all equal"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
