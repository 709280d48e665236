"""The training commands of ``python -m fastembed``: ``word2vec``, ``similar``, ``classify``.

Each ``add_*_arguments(parser)`` fills an argparse sub-parser; each ``run_*(args)`` runs the
command, prints its report and returns an exit status. Errors a user can fix (a missing or
empty file, a word not in the vocabulary) raise :class:`UserError` (or OSError, ValueError,
KeyError), which ``python -m fastembed`` reports in one line on stderr, without a traceback,
with exit status 2.

Examples
--------
The commands can be run from Python, with a parser of their own:

>>> import argparse, os, tempfile
>>> import numpy as np
>>> from fastembed import cli
>>> from fastembed.io import save_word2vec
>>> parser = argparse.ArgumentParser(prog="fastembed")
>>> cli.add_commands(parser.add_subparsers(dest="command"))
>>> with tempfile.TemporaryDirectory() as d:
...     path = os.path.join(d, "vectors.txt")
...     save_word2vec(path, np.array([[1, 0], [1, 1], [0, 1]], np.float32), ["a", "b", "c"])
...     status = cli.run(parser.parse_args(["similar", path, "a", "-n", "2"]))
a:
   0.7071  b
   0.0000  c
>>> status
0
"""
from __future__ import annotations

import os
import sys
import time

from ._ext.threads import resolve_n_threads
from ._validation import (
    check_fraction,
    check_int,
    check_n_threads,
    check_positive_float,
    check_positive_int,
)

__all__ = ["UserError", "add_commands", "run", "probe_words"]

# Words whose neighbours `word2vec` prints after training on the built-in corpus.
DEFAULT_PROBES = ("war", "economy", "freedom", "congress", "tax")
# The models of `word2vec --model`, as train_word2vec's ``model=`` names them.
WORD2VEC_MODELS = ("skipgram", "cbow")


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 2.

    Raised by :func:`run` before any work is done (a missing input file, an
    output path in a missing directory, contradictory options).

    Examples
    --------
    >>> from fastembed import cli
    >>> try:                              # what `run` does with a missing file
    ...     raise cli.UserError("/no/such/file.txt: no such file")
    ... except cli.UserError as exc:      # python -m fastembed prints it, exits with 2
    ...     print(f"error: {exc}")
    error: /no/such/file.txt: no such file
    """


def _argument(text, parse, what, rule):
    """An argparse type: ``text`` parsed, then checked by one of the shared rules.

    Text that does not parse, and a value the rule refuses, are argparse errors (exit status
    2, naming the option); the rule's message names the value "value".
    """
    import argparse
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    try:
        return rule(value, "value")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text):
    """An integer >= 1."""
    return _argument(text, int, "an integer", check_positive_int)


def _non_negative_int(text):
    """An integer >= 0."""
    return _argument(text, int, "an integer", lambda value, name: check_int(value, name, min=0))


def _positive_float(text):
    """A finite number > 0 (a learning rate)."""
    return _argument(text, float, "a number", check_positive_float)


def _fraction(text):
    """A number in [0, 1) (a subsampling threshold)."""
    return _argument(text, float, "a number", check_fraction)


def _threads(text):
    """A thread count: a non-zero integer (negative: counted back from the maximum)."""
    return _argument(text, int, "an integer",
                     lambda value, name: check_n_threads(value, name, allow_none=False))


def _check_out(path, option="--out"):
    """Fail before the work, not after it, when the output cannot be written there."""
    if path is None:
        return
    if os.path.isdir(path):
        raise UserError(f"{option} {path}: is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"{option} {path}: the directory {parent} does not exist")


# -- word2vec ----------------------------------------------------------------------------------

def _add_word2vec_arguments(parser):
    """The ``word2vec`` options. Numbers are checked here, so that a bad one is an argparse
    error naming the option (exit status 2) before any work."""
    from .models.word2vec import DEFAULTS, SUBWORD_DEFAULTS
    parser.add_argument("corpus", nargs="?", default=None,
                        help="a plain-text file or a directory of them (default: the built-in "
                             "State of the Union corpus, 1790-2021, about 1.8 M words)")
    parser.add_argument("--tokenised", action="store_true",
                        help="the corpus file is tokenised already: one sentence per line, "
                             "tokens separated by whitespace, taken as they are (no "
                             "lower-casing, no sentence splitting), as fastText reads its "
                             "input; read in one pass, with no Python list per line")
    parser.add_argument("--out", default=None,
                        help="write the vectors here, in word2vec text format")
    parser.add_argument("--model", choices=WORD2VEC_MODELS, default="skipgram",
                        help="skipgram (the default) predicts each context word from the "
                             "centre word, as gensim's sg=1; cbow predicts the centre word "
                             "from its context words, as sg=0")
    parser.add_argument("--dim", type=_positive_int, default=DEFAULTS["dim"])
    parser.add_argument("--window", type=_positive_int, default=DEFAULTS["window"])
    parser.add_argument("--negative", type=_positive_int, default=DEFAULTS["negative"],
                        help="negative samples per positive one (default %(default)s; >= 1)")
    parser.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"])
    parser.add_argument("--min-count", type=_positive_int, default=DEFAULTS["min_count"])
    parser.add_argument("--sample", type=_fraction, default=DEFAULTS["sample"],
                        help="subsampling threshold, in [0, 1) (default %(default)g; 0 turns "
                             "it off)")
    parser.add_argument("--lr", type=_positive_float, default=None,
                        help=f"initial learning rate, decayed linearly (default "
                             f"{DEFAULTS['lr']:g}; with --subwords, fastText's "
                             f"{SUBWORD_DEFAULTS['lr']:g})")
    parser.add_argument("--subwords", action="store_true",
                        help="fastText's subword model: a word is its own vector and those "
                             "of its character n-grams, so that any word, seen or not, has a "
                             "vector (save it with --save-model); fastText's noise words "
                             "(counts ** 0.5) and its end-of-line word </s>")
    parser.add_argument("--minn", type=_non_negative_int, default=None,
                        help=f"with --subwords: the shortest n-gram (default "
                             f"{SUBWORD_DEFAULTS['minn']})")
    parser.add_argument("--maxn", type=_non_negative_int, default=None,
                        help=f"with --subwords: the longest n-gram (default "
                             f"{SUBWORD_DEFAULTS['maxn']}; 0: no n-grams)")
    parser.add_argument("--bucket", type=_non_negative_int, default=None,
                        help=f"with --subwords: the rows the n-grams are hashed into "
                             f"(default {SUBWORD_DEFAULTS['bucket']})")
    parser.add_argument("--threads", type=_threads, default=None,
                        help="threads (default: all); the vectors do not depend on it")
    parser.add_argument("--hogwild", action="store_true",
                        help="lock-free updates: a little faster, not reproducible")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint-dir", default=None,
                        help="write checkpoints here (every --checkpoint-every steps and at "
                             "the end of each epoch)")
    parser.add_argument("--checkpoint-every", type=_positive_int, default=None)
    parser.add_argument("--save-model", default=None, metavar="MODEL.bin",
                        help="also write the model (both tables, the vocabulary and its "
                             "counts) as a fastText .bin that fastText's load_model reads")
    parser.add_argument("--batch-words", type=_positive_int, default=200_000,
                        help="words per training step (default %(default)s): the unit of "
                             "--checkpoint-every and of the progress bar")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --checkpoint-dir")
    parser.add_argument("--show", default=None,
                        help="comma-separated words whose nearest neighbours to print "
                             f"(default for the built-in corpus: {','.join(DEFAULT_PROBES)}; "
                             "for another corpus: 3 frequent words after its 100 most "
                             "frequent ones)")
    parser.add_argument("-n", "--topn", type=_positive_int, default=8)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_word2vec(args, file=None):
    """Train vectors (:func:`~fastembed.models.word2vec.train_word2vec`), write them to
    ``--out``, print the neighbours of the ``--show`` words, of a few words of the built-in
    corpus (``DEFAULT_PROBES``), or of the words :func:`probe_words` picks from the user's
    corpus. Checkpoint options that contradict each other, an ``--out`` that cannot be written
    and training that diverges (too large a ``--lr``) are UserErrors, the first two before any
    work; after a divergence no vectors are written."""
    from .io import save_fasttext, save_word2vec
    from .models.word2vec import DEFAULTS, SUBWORD_DEFAULTS, corpus_sentences, train_word2vec

    file = sys.stdout if file is None else file
    if args.resume and not args.checkpoint_dir:
        raise UserError("--resume needs --checkpoint-dir")
    if args.checkpoint_every and not args.checkpoint_dir:
        raise UserError("--checkpoint-every needs --checkpoint-dir")
    if (args.checkpoint_dir and not args.resume and os.path.isdir(args.checkpoint_dir)
            and any(n.startswith("ckpt-") and n.endswith(".npz")
                    for n in os.listdir(args.checkpoint_dir))):
        raise UserError(f"{args.checkpoint_dir} already holds checkpoints: pass --resume to "
                        f"continue that run, or choose an empty directory")
    grams = {"minn": args.minn, "maxn": args.maxn, "bucket": args.bucket}
    if not args.subwords and any(v is not None for v in grams.values()):
        raise UserError("--minn, --maxn and --bucket need --subwords")
    grams = {k: SUBWORD_DEFAULTS[k] if v is None else v for k, v in grams.items()}
    if grams["maxn"] and not 1 <= grams["minn"] <= grams["maxn"]:
        raise UserError(f"--minn must lie in [1, --maxn], got --minn {grams['minn']} and "
                        f"--maxn {grams['maxn']}")
    if args.tokenised and (args.corpus is None or not os.path.isfile(args.corpus)):
        raise UserError("--tokenised needs a corpus file" + (
            f": {args.corpus} is not a file" if args.corpus is not None else ""))
    _check_out(args.out)
    _check_out(args.save_model, "--save-model")
    t0 = time.perf_counter()
    source = args.corpus if args.corpus is not None else "the built-in State of the Union corpus"
    if args.tokenised:   # read by train_word2vec, in its time
        print(f"training on the tokenised file {source} ...", file=file, flush=True)
        sentences, corpus_file = None, args.corpus
    else:
        print(f"reading {source} ...", file=file, flush=True)
        sentences, corpus_file = corpus_sentences(args.corpus), None
        n_tokens = sum(map(len, sentences))
        t_read = time.perf_counter() - t0
        print(f"{len(sentences):,} sentences, {n_tokens:,} words, read and tokenised in "
              f"{t_read:.1f} s", file=file, flush=True)
    n_threads = resolve_n_threads(args.threads)
    try:
        result = train_word2vec(
            sentences, corpus_file=corpus_file, model=args.model, dim=args.dim, window=args.window,
            negative=args.negative, min_count=args.min_count, sample=args.sample,
            epochs=args.epochs, lr=args.lr, seed=args.seed, n_threads=n_threads,
            subwords=args.subwords, **grams,
            hogwild=args.hogwild, checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every, resume=True if args.resume else None,
            batch_words=args.batch_words, progress=not args.quiet)
    except FloatingPointError as exc:
        lr = args.lr if args.lr is not None else (SUBWORD_DEFAULTS if args.subwords
                                                  else DEFAULTS)["lr"]
        raise UserError(f"training diverged: {exc} (try a smaller --lr than {lr:g})") from exc
    words_trained = result.n_words * args.epochs
    epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
    threads = f"{n_threads} thread{'s' if n_threads > 1 else ''}"
    print(f"vocabulary: {len(result.vocab):,} words (min_count={args.min_count}); trained "
          f"{args.model}{' with subwords' if result.model.bucket else ''} for {epochs} on "
          f"{threads} in {result.seconds:.1f} s "
          f"({words_trained / result.seconds:,.0f} words/s)", file=file, flush=True)
    vectors = result.vectors
    if args.out:
        save_word2vec(args.out, vectors)
        print(f"wrote {len(vectors):,} vectors of dimension {vectors.dim} to {args.out}",
              file=file)
    if args.save_model:
        save_fasttext(args.save_model, result.fasttext_model())
        print(f"wrote the model (fastText .bin) to {args.save_model}", file=file)
    if args.show is not None:
        probes = [w.strip() if args.tokenised else w.strip().lower()
                  for w in args.show.split(",") if w.strip()]
    else:
        probes = list(DEFAULT_PROBES) if args.corpus is None else probe_words(vectors.words)
    for word in probes:
        if word not in vectors and not result.model.bucket:
            print(f"  {word}: not in the vocabulary", file=file)
            continue
        near = ", ".join(f"{w} {s:.2f}" for w, s in vectors.most_similar(word, args.topn))
        print(f"  {word}: {near}", file=file)
    return 0


def probe_words(words, skip=100, n=3):
    """Pick ``n`` frequent content words of a vocabulary, whose neighbours are worth printing.

    The most frequent words of a corpus ("the", "of", "and") have neighbours that tell
    nothing; the words just after them in frequency are content words, frequent enough to
    have been trained well. So: the first ``n`` alphabetic words (``str.isalpha``: no
    numbers, no punctuation, no "don't") at ranks ``skip``, ``skip + 1``, ... of ``words``.
    A vocabulary too small for that gives ``n`` words from the start of the last third of its
    alphabetic words, or, with fewer still, its last ``n`` alphabetic words (all of them when
    it has fewer than ``n``; none when it has none).

    Parameters
    ----------
    words : sequence of str
        The vocabulary, most frequent first (``result.vocab.words``, ``vectors.words``).
    skip : int, default 100
        How many of the most frequent words to pass over; >= 0.
    n : int, default 3
        How many words to pick; >= 0.

    Returns
    -------
    list of str
        At most ``n`` words of ``words``, in its order.

    Raises
    ------
    ValueError
        ``skip`` or ``n`` is negative.
    TypeError
        ``skip`` or ``n`` is not an int.

    Examples
    --------
    >>> from fastembed import cli
    >>> words = [f"w{i}" for i in range(200)]      # not alphabetic: numbers in them
    >>> words[100:106] = ["1990", "peace", "u.s", "war", "nation", "law"]
    >>> cli.probe_words(words)
    ['peace', 'war', 'nation']
    >>> cli.probe_words(list("abcdefghijkl"))         # 12 words: the start of the last third
    ['i', 'j', 'k']
    >>> cli.probe_words(["the", "of", "42", "king"]), cli.probe_words([])
    (['the', 'of', 'king'], [])
    """
    skip = check_int(skip, "skip", min=0)
    n = check_int(n, "n", min=0)
    later = [w for w in words[skip:] if w.isalpha()]
    if len(later) >= n:
        return later[:n]
    alpha = [w for w in words if w.isalpha()]
    start = max(0, min(len(alpha) - len(alpha) // 3, len(alpha) - n))
    return alpha[start:start + n]


# -- similar -----------------------------------------------------------------------------------

def _add_similar_arguments(parser):
    """The ``similar`` options: the vectors file, the words, ``-n/--topn``, ``--no-header``."""
    parser.add_argument("vectors", help="a word2vec text or binary file (e.g. from `word2vec "
                                        "--out`), or a fastText model (.bin), which answers "
                                        "for unseen words too")
    parser.add_argument("words", nargs="+", help="the words to look up")
    parser.add_argument("-n", "--topn", type=_positive_int, default=10)
    parser.add_argument("--no-header", action="store_true", help="a GloVe file (no header)")


def _is_fasttext_model(path):
    """A fastText .bin: its magic number, or a binary first byte where word2vec files start
    with the digits of their header (the old fastText format has no magic)."""
    from .io import FASTTEXT_MAGIC

    with open(path, "rb") as f:
        head = f.read(4)
    return len(head) == 4 and (int.from_bytes(head, "little") == FASTTEXT_MAGIC
                               or not (head[:1].isdigit() or head[:1].isalpha()))


def _run_similar(args, file=None):
    """Print the nearest neighbours of each word by cosine similarity."""
    from .io import load_fasttext, load_word2vec

    file = sys.stdout if file is None else file
    if not os.path.exists(args.vectors):
        raise UserError(f"{args.vectors}: no such file")
    if not os.path.isfile(args.vectors):
        raise UserError(f"{args.vectors}: not a file")
    subwords = not args.no_header and _is_fasttext_model(args.vectors)
    if subwords:
        try:
            vectors = load_fasttext(args.vectors)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        missing = [w for w in args.words if vectors.get(w) is None]
    else:
        vectors = load_word2vec(args.vectors, no_header=args.no_header)
        missing = [w for w in args.words if w not in vectors]
    for word in args.words:
        if word in missing:
            print(f"{word}: not in the vocabulary of {args.vectors} ({len(vectors):,} words)",
                  file=file)
            continue
        print(f"{word}:", file=file)
        if subwords and word not in vectors:
            print("  (not in the vocabulary: its vector is the mean of its n-grams)", file=file)
        for other, sim in vectors.most_similar(word, topn=args.topn):
            print(f"  {sim:7.4f}  {other}", file=file)
    return 1 if len(missing) == len(args.words) else 0


# -- classify ----------------------------------------------------------------------------------

def _add_classify_arguments(parser):
    """The ``classify`` options: the options of
    :func:`fastembed.models.classifier.train_classifier`, the files, ``--out``."""
    parser.add_argument("train", help="training data in fastText format: "
                                      "'__label__X text ...' per line")
    parser.add_argument("--test", default=None, help="test data in the same format")
    parser.add_argument("--out", default=None, help="save the model here (.npz)")
    parser.add_argument("--dim", type=_positive_int, default=50)
    parser.add_argument("--epochs", type=_positive_int, default=5)
    parser.add_argument("--lr", type=float, default=0.05,
                        help="initial learning rate, decayed linearly (default %(default)g, "
                             "for Adam)")
    parser.add_argument("--optimizer", choices=("adam", "sgd", "adagrad"), default="adam")
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--bigrams", type=int, default=0, metavar="BUCKETS",
                        help="hash word bigrams into this many extra rows (default 0: off)")
    parser.add_argument("--min-count", type=_positive_int, default=1)
    parser.add_argument("--threads", type=_threads, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_classify(args, file=None):
    """Train with :func:`fastembed.models.classifier.train_classifier`, print the report's
    numbers (one ``key: value`` line each; not the per-epoch history), save to ``--out``."""
    from .models import classifier

    file = sys.stdout if file is None else file
    for path in (args.train, args.test):
        if path is not None and not os.path.exists(path):
            raise UserError(f"{path}: no such file")
        if path is not None and not os.path.isfile(path):
            raise UserError(f"{path}: not a file")
    _check_out(args.out)
    model, report = classifier.train_classifier(
        args.train, args.test, dim=args.dim, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, bigram_buckets=args.bigrams, min_count=args.min_count,
        seed=args.seed, n_threads=args.threads, optimizer=args.optimizer,
        progress=not args.quiet)
    for key, value in report.items():
        if isinstance(value, (list, dict)):
            continue  # the per-epoch history: not for the terminal
        if isinstance(value, float):
            value = f"{value:.4f}"
        print(f"{key}: {value}", file=file)
    if args.out:
        model.save(args.out)
        print(f"saved the model to {args.out}", file=file)
    return 0


# -- the command table -------------------------------------------------------------------------

# name: (one-line help, description, add the arguments, run)
COMMANDS = {
    "word2vec": (
        "train skip-gram or CBOW word vectors (default corpus: State of the Union)",
        "Train word2vec vectors, skip-gram (the default) or CBOW (--model cbow), with negative "
        "sampling (gensim's defaults), write them in word2vec text format, and print the "
        "nearest neighbours of a few words.",
        _add_word2vec_arguments, _run_word2vec),
    "similar": (
        "nearest neighbours of words in a word2vec text file",
        "Print the nearest neighbours, by cosine similarity, of words in a word2vec (or "
        "GloVe) text file.",
        _add_similar_arguments, _run_similar),
    "classify": (
        "train a fastText-style text classifier",
        "Train a bag-of-embeddings classifier on fastText-format lines ('__label__X text'); "
        "print accuracy and timing.",
        _add_classify_arguments, _run_classify),
}


def add_commands(subparsers):
    """Add every command of :data:`COMMANDS` to an argparse ``add_subparsers()`` object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers(dest="command")`` returned.

    Examples
    --------
    >>> import argparse
    >>> from fastembed import cli
    >>> parser = argparse.ArgumentParser(prog="fastembed")
    >>> cli.add_commands(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["word2vec", "corpus.txt", "--dim", "50"])
    >>> args.command, args.corpus, args.dim, args.window, args.model
    ('word2vec', 'corpus.txt', 50, 5, 'skipgram')
    """
    for name, (help_text, description, add_arguments, _) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text, description=description))


def run(args, file=None):
    """Run the command ``args.command`` with its parsed arguments; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser that :func:`add_commands` filled.
    file : file object, optional
        Where the report goes; ``sys.stdout`` by default.

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    UserError
        A problem with the user's input (see :class:`UserError`); also OSError, ValueError
        and KeyError from the library (a malformed file, a word not in the vocabulary).

    Examples
    --------
    >>> import argparse, os, tempfile
    >>> from fastembed import cli
    >>> parser = argparse.ArgumentParser(prog="fastembed")
    >>> cli.add_commands(parser.add_subparsers(dest="command"))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     train = os.path.join(d, "train.txt")
    ...     with open(train, "w", encoding="utf-8") as f:
    ...         _ = f.write("__label__pos good fine\\n__label__neg bad awful\\n" * 8)
    ...     status = cli.run(parser.parse_args(["classify", train, "--test", train, "--dim",
    ...                                         "4", "--epochs", "3", "--quiet"]))
    train_examples: 16
    test_examples: 16
    vocab_size: 4
    num_classes: 2
    train_time_s: ...
    examples_per_s: ...
    train_accuracy: 1.0000
    accuracy: 1.0000
    >>> status
    0
    """
    return COMMANDS[args.command][3](args, file)
