"""The training commands of ``python -m fastembed``: ``word2vec``, ``similar``, ``classify``.

Most tests call :func:`fastembed.__main__.main` in-process and read stdout/stderr with
capsys; a few run ``python -m fastembed`` as a real subprocess to check the exit status and
the console entry (one of them trains on the built-in State of the Union corpus).
"""
from __future__ import annotations

import os
import pathlib
import random
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_bitwise_equal
import fastembed
from fastembed import cli
from fastembed.__main__ import main
from fastembed._ext.threads import resolve_n_threads
from fastembed.models.classifier import BagClassifier, read_fasttext
from fastembed.io import load_word2vec, save_word2vec
from fastembed.text import Vocab
from fastembed.train import load_checkpoint
from fastembed.vectors import Vectors
from fastembed.models.word2vec import corpus_sentences, train_word2vec

REPO = pathlib.Path(__file__).resolve().parent.parent

PETS = ("cat dog pet fur paw bark meow puppy kitten leash collar vet tail whisker "
        "kennel").split()
MONEY = ("stock market price trade bank money share profit loss invest bond fund "
         "dividend broker equity").split()
FILLER = "the a of and to in is it".split()

# cheap, deterministic word2vec settings (gensim defaults otherwise)
W2V = ["--dim", "16", "--epochs", "3", "--min-count", "1", "--sample", "0", "--quiet"]


def topic_sentences(n, seed=0, length=10):
    """``n`` sentences alternating between two topics; 70% topic words, 30% filler."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        topic = PETS if i % 2 == 0 else MONEY
        words = [r.choice(topic) if r.random() < 0.7 else r.choice(FILLER)
                 for _ in range(length)]
        out.append(" ".join(words).capitalize() + ".")
    return out


def letter_words(n):
    """``n`` distinct alphabetic words: 'aa', 'ab', ..., 'az', 'ba', ..."""
    return [chr(97 + i // 26) + chr(97 + i % 26) for i in range(n)]


def write_corpus(path, n=400, seed=0):
    path.write_text("\n".join(topic_sentences(n, seed)) + "\n", encoding="utf-8")
    return path


def run(capsys, *argv):
    """main(argv) in-process: (exit status, stdout, stderr). argparse errors give 2."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(cwd, *argv, timeout=120):
    env = dict(os.environ)
    # the directory holding the fastembed these tests import: the source tree when built in
    # place, site-packages when installed (the source tree then has no compiled kernels)
    where = str(pathlib.Path(fastembed.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [where] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-m", "fastembed", *map(str, argv)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def assert_clean_error(code, out, err, *fragments):
    """Exit 2, one 'python -m fastembed CMD: error: ...' line holding every fragment."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert "error:" in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def neighbour_lines(out):
    """{word: [(neighbour, similarity), ...]} from word2vec's '  word: a 0.91, b 0.88' lines."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^  (\S+): (.*)$", line)
        if not m or m.group(2) == "not in the vocabulary":
            continue
        pairs = []
        for item in m.group(2).split(", "):
            word, sim = item.rsplit(" ", 1)
            pairs.append((word, float(sim)))
        found[m.group(1)] = pairs
    return found


def similar_blocks(out):
    """{word: [(neighbour, similarity), ...]} from `similar`'s output."""
    blocks, current = {}, None
    for line in out.splitlines():
        m = re.match(r"^  +(-?\d+\.\d+)  (\S+)$", line)
        if m:
            blocks[current].append((m.group(2), float(m.group(1))))
        elif line.endswith(":") and not line.startswith(" "):
            current = line[:-1]
            blocks[current] = []
    return blocks


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):
    """(vector file, stdout) of one CLI run on the small corpus, shared by several tests."""
    import contextlib
    import io

    out_path = tmp_path_factory.mktemp("vec") / "vec.txt"
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        code = main(["word2vec", str(corpus), "--out", str(out_path), *W2V, "--threads", "1",
                     "--show", "cat,stock,Zzyzx", "-n", "5"])
    assert code == 0, err.getvalue()
    return out_path, buf.getvalue()


# -- word2vec ----------------------------------------------------------------------------------

def test_word2vec_writes_a_valid_vector_file(trained, corpus):
    path, _ = trained
    lines = path.read_text(encoding="utf-8").splitlines()
    count, dim = map(int, lines[0].split())
    assert dim == 16
    assert count == len(lines) - 1
    assert all(len(line.split(" ")) == dim + 1 for line in lines[1:])
    vectors = load_word2vec(path)
    assert len(vectors) == count and vectors.dim == dim
    assert vectors.weight.dtype == np.float32 and np.isfinite(vectors.weight).all()
    vocab = Vocab.build(corpus_sentences(corpus), min_count=1)
    assert vectors.words == list(vocab.words)  # the whole vocabulary, most frequent first
    assert set(vectors.words) == set(PETS + MONEY + FILLER)


def test_word2vec_file_matches_the_python_api(trained, corpus):
    """The CLI passes its settings through: same vectors as train_word2vec, bit for bit."""
    path, _ = trained
    result = train_word2vec(corpus_sentences(corpus), dim=16, epochs=3, min_count=1,
                            sample=0, seed=1, n_threads=1, progress=False)
    loaded = load_word2vec(path)
    assert loaded.words == list(result.vocab.words)
    assert_bitwise_equal(loaded.weight, result.model.syn0)


def test_word2vec_prints_summary_and_neighbours(trained, corpus):
    path, out = trained
    assert f"reading {corpus}" in out
    assert "400 sentences, 4,000 words" in out
    assert f"vocabulary: {len(PETS + MONEY + FILLER)} words (min_count=1)" in out
    assert "trained skipgram for 3 epochs on 1 thread in" in out  # the default model
    assert f"to {path}" in out and "dimension 16" in out
    near = neighbour_lines(out)
    assert set(near) == {"cat", "stock"}
    for word, topic in (("cat", PETS), ("stock", MONEY)):
        pairs = near[word]
        assert len(pairs) == 5  # -n 5
        assert word not in [w for w, _ in pairs]
        sims = [s for _, s in pairs]
        assert sims == sorted(sims, reverse=True)
        # two clean topics: the nearest words come from the word's own topic
        assert all(w in topic for w, _ in pairs[:3]), pairs
    # --show words are lower-cased, and an unknown one is reported, not fatal
    assert "  zzyzx: not in the vocabulary" in out


def test_word2vec_default_show_is_probe_words(tmp_path, capsys, corpus):
    code, out, err = run(capsys, "word2vec", corpus, *W2V, "--threads", "1", "-n", "2")
    assert code == 0, err
    words = list(Vocab.build(corpus_sentences(corpus), min_count=1).words)
    near = neighbour_lines(out)
    # 38 words, fewer than 100 + 3: from the start of the last third, never the top 3
    assert list(near) == cli.probe_words(words) == words[26:29]
    assert not set(near) & set(words[:3])
    assert all(len(v) == 2 for v in near.values())
    assert not list(tmp_path.iterdir())  # no --out: nothing written


def test_word2vec_default_show_skips_the_100_most_frequent_words(tmp_path, capsys):
    # 130 words with distinct counts (word i occurs 200 - i times) and numbers among them
    words = letter_words(130)
    words[100], words[102] = "1999", "2000"
    r = random.Random(0)
    tokens = [w for i, w in enumerate(words) for _ in range(200 - i)]
    r.shuffle(tokens)
    path = tmp_path / "big.txt"
    path.write_text("\n".join(" ".join(tokens[k:k + 20]) + "." for k in range(0, len(tokens), 20)),
                    encoding="utf-8")
    code, out, err = run(capsys, "word2vec", path, "--dim", "4", "--epochs", "1",
                         "--min-count", "1", "--quiet", "--threads", "1", "-n", "1")
    assert code == 0, err
    vocab = list(Vocab.build(corpus_sentences(path), min_count=1).words)
    assert vocab == words
    assert list(neighbour_lines(out)) == [words[101], words[103], words[104]]


@pytest.mark.parametrize("words, skip, n, expected", [
    # the first n alphabetic words at ranks >= skip
    ([f"w{i}" for i in range(100)] + ["peace", "1990", "war", "u.s", "don't", "law", "tax"],
     100, 3, ["peace", "war", "law"]),
    (list("abcdefgh"), 2, 3, ["c", "d", "e"]),
    (list("abcdefgh"), 2, 0, []),
    # too few after skip: the start of the last third of the alphabetic words
    (list("abcdefghijkl"), 100, 3, ["i", "j", "k"]),
    (["1", "2"] + list("abcdefghijkl") + ["3"], 100, 3, ["i", "j", "k"]),
    # 103 words, only 1 alphabetic after skip: ranks 68-70 (101 alphabetic, 101 - 101 // 3)
    (letter_words(101) + ["x1", "y2"], 100, 3, letter_words(71)[68:]),
    # a last third shorter than n: the last n alphabetic words; all of them when fewer
    (list("abcde"), 100, 3, ["c", "d", "e"]),
    (["the", "of", "42", "king"], 100, 3, ["the", "of", "king"]),
    (["cat"], 100, 3, ["cat"]),
    (["42", "!", "3.5"], 100, 3, []),
    ([], 100, 3, []),
    (["été", "naïve", "straße"], 0, 3, ["été", "naïve", "straße"]),  # Unicode letters count
])
def test_probe_words(words, skip, n, expected):
    assert cli.probe_words(words, skip=skip, n=n) == expected


def test_probe_words_refuses_negative_arguments():
    with pytest.raises(ValueError, match="skip"):
        cli.probe_words(["a"], skip=-1)
    with pytest.raises(ValueError, match="n must be >= 0, got -2"):
        cli.probe_words(["a"], n=-2)
    with pytest.raises(TypeError, match="skip must be an int, got float"):
        cli.probe_words(["a"], skip=1.5)


def test_word2vec_model_cbow_matches_the_python_api(tmp_path, capsys, corpus, trained):
    """--model is passed through: the vectors of train_word2vec(model="cbow"), bit for bit."""
    out_path = tmp_path / "cbow.txt"
    code, out, err = run(capsys, "word2vec", corpus, "--out", out_path, *W2V, "--threads", "1",
                         "--model", "cbow")
    assert code == 0, err
    assert "trained cbow for 3 epochs" in out
    result = train_word2vec(corpus_sentences(corpus), model="cbow", dim=16, epochs=3,
                            min_count=1, sample=0, seed=1, n_threads=1, progress=False)
    loaded = load_word2vec(out_path)
    assert loaded.words == list(result.vocab.words)
    assert_bitwise_equal(loaded.weight, result.vectors.weight)
    # ... and not the skip-gram vectors of the same settings
    assert out_path.read_bytes() != trained[0].read_bytes()


def test_word2vec_directory_corpus_is_its_files_concatenated_in_sorted_order(tmp_path,
                                                                               capsys):
    parts = ["\n".join(topic_sentences(150, seed=s)) + "\n" for s in (1, 2, 3)]
    folder = tmp_path / "docs"
    folder.mkdir()
    # created out of order; a non-.txt file is ignored when .txt files are present
    (folder / "c.txt").write_text(parts[2], encoding="utf-8")
    (folder / "a.txt").write_text(parts[0], encoding="utf-8")
    (folder / "b.txt").write_text(parts[1], encoding="utf-8")
    (folder / "notes.md").write_text("zebra zebra quux.\n" * 50, encoding="utf-8")
    joined = tmp_path / "joined.txt"
    joined.write_text("".join(parts), encoding="utf-8")
    reversed_ = tmp_path / "reversed.txt"
    reversed_.write_text("".join(parts[::-1]), encoding="utf-8")

    outputs = {}
    for name, source in (("dir", folder), ("joined", joined), ("reversed", reversed_)):
        out_path = tmp_path / f"{name}.vec"
        code, out, err = run(capsys, "word2vec", source, "--out", out_path, *W2V,
                             "--threads", "1")
        assert code == 0, err
        assert "450 sentences" in out
        outputs[name] = out_path.read_bytes()
    assert outputs["dir"] == outputs["joined"]
    assert outputs["dir"] != outputs["reversed"]  # the order matters, so it was checked
    assert b"zebra" not in outputs["dir"]


def test_word2vec_directory_without_txt_files_reads_every_file(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "b.text").write_text("\n".join(topic_sentences(50, seed=5)), encoding="utf-8")
    (folder / "a.md").write_text("\n".join(topic_sentences(50, seed=6)), encoding="utf-8")
    (folder / "sub").mkdir()  # directories are skipped
    code, out, err = run(capsys, "word2vec", folder, *W2V, "--threads", "1", "--show", "")
    assert code == 0, err
    assert "100 sentences" in out


# -- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", ["1", "2"])
def test_word2vec_same_seed_gives_identical_files(tmp_path, capsys, corpus, threads):
    files = []
    for k in range(2):
        out_path = tmp_path / f"v{k}.txt"
        code, _, err = run(capsys, "word2vec", corpus, "--out", out_path, *W2V,
                           "--threads", threads, "--seed", "7")
        assert code == 0, err
        files.append(out_path.read_bytes())
    assert files[0] == files[1]


def test_word2vec_vectors_do_not_depend_on_the_thread_count(tmp_path, capsys, corpus):
    files = {}
    for threads in ("1", "2"):
        out_path = tmp_path / f"t{threads}.txt"
        code, out, err = run(capsys, "word2vec", corpus, "--out", out_path, *W2V,
                             "--threads", threads, "--seed", "7")
        assert code == 0, err
        used = resolve_n_threads(int(threads))  # 1 in a build without OpenMP
        assert f"on {used} thread" in out
        files[threads] = out_path.read_bytes()
    assert files["1"] == files["2"]
    # ... while the seed does matter
    other = tmp_path / "seed8.txt"
    assert run(capsys, "word2vec", corpus, "--out", other, *W2V, "--threads", "2",
               "--seed", "8")[0] == 0
    assert other.read_bytes() != files["1"]


# -- checkpoints -------------------------------------------------------------------------------

def _checkpoints(directory):
    return sorted(p.name for p in pathlib.Path(directory).glob("ckpt-*.npz"))


def test_word2vec_checkpoints_and_resume_after_a_finished_run(tmp_path, capsys, corpus):
    ckpt = tmp_path / "ckpt"
    plain = tmp_path / "plain.txt"
    assert run(capsys, "word2vec", corpus, "--out", plain, *W2V, "--threads", "1")[0] == 0

    first = tmp_path / "first.txt"
    code, _, err = run(capsys, "word2vec", corpus, "--out", first, *W2V, "--threads", "1",
                       "--checkpoint-dir", ckpt, "--checkpoint-every", "2")
    assert code == 0, err
    names = _checkpoints(ckpt)
    assert names and all(re.fullmatch(r"ckpt-\d{9}\.npz", n) for n in names)
    final = load_checkpoint(ckpt / names[-1])["trainer"]
    assert final["epoch"] == 3 and final["batch"] == 0  # the finished run
    assert first.read_bytes() == plain.read_bytes()  # checkpointing changes nothing

    # --resume after the run finished: nothing left to train, same final vectors
    again = tmp_path / "again.txt"
    code, out, err = run(capsys, "word2vec", corpus, "--out", again, *W2V, "--threads", "1",
                         "--checkpoint-dir", ckpt, "--resume")
    assert code == 0, err
    assert again.read_bytes() == first.read_bytes()
    assert _checkpoints(ckpt) == names

    # without --resume, a non-empty checkpoint dir is refused: exit 2, nothing written
    refused = tmp_path / "refused.txt"
    code, out, err = run(capsys, "word2vec", corpus, "--out", refused, *W2V,
                         "--threads", "1", "--checkpoint-dir", ckpt)
    assert_clean_error(code, out, err, "already holds checkpoints", str(ckpt))
    assert not refused.exists()
    assert _checkpoints(ckpt) == names


def test_word2vec_resume_mid_epoch_gives_the_uninterrupted_vectors(tmp_path, capsys):
    # ~90k words: several 20k-word steps per epoch, so --checkpoint-every fires mid-epoch
    big = write_corpus(tmp_path / "big.txt", n=9000, seed=11)
    args = ["--dim", "8", "--epochs", "2", "--min-count", "1", "--quiet", "--threads", "2",
            "--batch-words", "20000"]
    ckpt = tmp_path / "ckpt"
    full = tmp_path / "full.txt"
    code, _, err = run(capsys, "word2vec", big, "--out", full, *args,
                       "--checkpoint-dir", ckpt, "--checkpoint-every", "2")
    assert code == 0, err
    states = {n: load_checkpoint(ckpt / n)["trainer"] for n in _checkpoints(ckpt)}
    assert max(s["config"]["num_batches"][0] for s in states.values()) >= 2
    mid = [n for n, s in states.items() if s["batch"] != 0]
    assert mid, f"no mid-epoch checkpoint among {sorted(states)}"
    # pretend the run was killed right after the newest mid-epoch checkpoint
    cut = max(mid)
    for name in states:
        if name > cut:
            (ckpt / name).unlink()
    resumed = tmp_path / "resumed.txt"
    code, _, err = run(capsys, "word2vec", big, "--out", resumed, *args,
                       "--checkpoint-dir", ckpt, "--checkpoint-every", "2", "--resume")
    assert code == 0, err
    assert resumed.read_bytes() == full.read_bytes()


def test_word2vec_subwords_resume_mid_epoch_gives_the_uninterrupted_vectors(tmp_path, capsys):
    # with subwords: the n-gram rows are in the checkpoints, the streams' batches the same
    big = write_corpus(tmp_path / "big.txt", n=9000, seed=12)
    args = ["--dim", "8", "--epochs", "2", "--min-count", "1", "--quiet", "--threads", "2",
            "--batch-words", "20000", "--subwords", "--bucket", "3000"]
    ckpt = tmp_path / "ckpt"
    full, model = tmp_path / "full.txt", tmp_path / "full.bin"
    code, _, err = run(capsys, "word2vec", big, "--out", full, "--save-model", model, *args,
                       "--checkpoint-dir", ckpt, "--checkpoint-every", "2")
    assert code == 0, err
    states = {n: load_checkpoint(ckpt / n)["trainer"] for n in _checkpoints(ckpt)}
    cut = max(n for n, s in states.items() if s["batch"] != 0)
    for name in states:
        if name > cut:
            (ckpt / name).unlink()
    resumed, again = tmp_path / "resumed.txt", tmp_path / "resumed.bin"
    code, _, err = run(capsys, "word2vec", big, "--out", resumed, "--save-model", again, *args,
                       "--checkpoint-dir", ckpt, "--checkpoint-every", "2", "--resume")
    assert code == 0, err
    assert resumed.read_bytes() == full.read_bytes()
    assert again.read_bytes() == model.read_bytes()


def test_word2vec_resume_needs_a_checkpoint_dir(tmp_path, capsys, corpus):
    code, out, err = run(capsys, "word2vec", corpus, "--out", tmp_path / "v.txt", *W2V,
                         "--resume")
    assert_clean_error(code, out, err, "--resume needs --checkpoint-dir")
    assert not (tmp_path / "v.txt").exists()


def test_word2vec_resume_with_other_settings_is_a_clean_error(tmp_path, capsys, corpus):
    ckpt = tmp_path / "ckpt"
    assert run(capsys, "word2vec", corpus, *W2V, "--threads", "1",
               "--checkpoint-dir", ckpt)[0] == 0
    code, out, err = run(capsys, "word2vec", corpus, *W2V[:-3], "--epochs", "4", "--quiet",
                         "--threads", "1", "--checkpoint-dir", ckpt, "--resume")
    assert_clean_error(code, out, err, "another configuration")
    code, out, err = run(capsys, "word2vec", corpus, *W2V, "--dim", "8", "--threads", "1",
                         "--checkpoint-dir", ckpt, "--resume")
    assert_clean_error(code, out, err, "does not fit")


def test_word2vec_checkpoint_every_needs_a_checkpoint_dir(capsys, corpus):
    code, out, err = run(capsys, "word2vec", corpus, *W2V, "--checkpoint-every", "2")
    assert_clean_error(code, out, err, "--checkpoint-dir")


# -- word2vec errors ---------------------------------------------------------------------------

def test_word2vec_missing_corpus(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    code, out, err = run(capsys, "word2vec", missing, *W2V)
    assert_clean_error(code, out, err, str(missing), "no such file")


@pytest.mark.parametrize("content", ["", "\n\n", "... !!! ???\n"])
def test_word2vec_empty_corpus_file(tmp_path, capsys, content):
    empty = tmp_path / "empty.txt"
    empty.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "word2vec", empty, *W2V)
    assert_clean_error(code, out, err, str(empty), "empty")


def test_word2vec_empty_directory(tmp_path, capsys):
    folder = tmp_path / "nothing"
    folder.mkdir()
    code, out, err = run(capsys, "word2vec", folder, *W2V)
    assert_clean_error(code, out, err, str(folder), "no files")


def test_word2vec_tokenised_file_is_train_word2vec_of_the_file(tmp_path, capsys):
    """--tokenised: the lines' tokens as they are (case kept, no sentence splitting), the
    vectors of train_word2vec(corpus_file=...), and --show words taken as typed."""
    corpus = tmp_path / "tokens.txt"
    lines = topic_sentences(300)                  # "Cat dog ... fur." : case and dots kept
    lines[::7] = [line.replace(" cat ", " Cat. ") + "\r" for line in lines[::7]]
    corpus.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "vectors.txt"
    code, stdout, err = run(capsys, "word2vec", corpus, "--tokenised", "--out", out,
                            "--show", "Cat.", "--threads", "2", *W2V)
    assert code == 0, err
    result = train_word2vec(corpus_file=corpus, dim=16, epochs=3, min_count=1, sample=0,
                            seed=1, n_threads=1, progress=False)
    loaded = load_word2vec(out)
    assert "Cat." in loaded.words and loaded.words == list(result.vocab.words)
    assert_bitwise_equal(loaded.weight, result.model.syn0)
    assert "training on the tokenised file" in stdout and "  Cat.: " in stdout


@pytest.mark.parametrize("where", ["none", "directory", "missing"])
def test_word2vec_tokenised_needs_a_file(tmp_path, capsys, where):
    argv = {"none": [], "directory": [tmp_path], "missing": [tmp_path / "nope.txt"]}[where]
    code, out, err = run(capsys, "word2vec", *argv, "--tokenised", *W2V)
    assert_clean_error(code, out, err, "--tokenised needs a corpus file")


def test_word2vec_min_count_above_every_count(capsys, corpus):
    code, out, err = run(capsys, "word2vec", corpus, *W2V[:-3], "--min-count", "100000")
    assert_clean_error(code, out, err, "vocabulary is empty")


@pytest.mark.parametrize("option, value", [
    ("--threads", "0"),
    ("--threads", "two"),
    ("--dim", "0"),
    ("--dim", "-3"),
    ("--dim", "2.5"),
    ("--epochs", "0"),
    ("--window", "0"),
    ("--min-count", "0"),
    ("--negative", "0"),  # would train collapsed vectors
    ("--negative", "-1"),
    ("--checkpoint-every", "0"),
    ("--sample", "1"),
    ("--sample", "1.5"),
    ("--sample", "-0.001"),
    ("--sample", "nan"),
    ("--sample", "often"),
    ("--lr", "0"),
    ("--lr", "-0.025"),
    ("--lr", "nan"),
    ("--lr", "inf"),
    ("--lr", "fast"),
    ("--model", "glove"),
])
def test_word2vec_bad_options_are_argparse_errors(tmp_path, capsys, corpus, option, value):
    out_path = tmp_path / "v.txt"
    with pytest.raises(SystemExit) as info:
        main(["word2vec", str(corpus), "--out", str(out_path), *W2V, option, value])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "usage:" in err and f"argument {option}" in err and value in err
    assert "reading" not in out
    assert not out_path.exists()


@pytest.mark.parametrize("option, value", [
    ("--negative", "1"), ("--sample", "0"), ("--sample", "0.999"), ("--lr", "1e-9"),
    ("--min-count", "1"), ("--window", "1"),
])
def test_word2vec_boundary_options_are_accepted(option, value):
    import argparse
    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["word2vec", option, value])
    assert getattr(args, option[2:].replace("-", "_")) == float(value)


@pytest.mark.parametrize("exc", [
    FloatingPointError("step 3 of epoch 1: the vectors are no longer finite (lr=5)"),
    ValueError("lr=5 step 3: something train_word2vec refuses"),
])
def test_word2vec_training_errors_are_clean_and_write_nothing(tmp_path, capsys, corpus,
                                                              monkeypatch, exc):
    import fastembed.models.word2vec

    def train_word2vec(*args, **kwargs):
        raise exc

    monkeypatch.setattr(fastembed.models.word2vec, "train_word2vec", train_word2vec)
    out_path = tmp_path / "v.txt"
    code, out, err = run(capsys, "word2vec", corpus, "--out", out_path, *W2V, "--lr", "5",
                         "--threads", "1")
    assert_clean_error(code, out, err, "step 3", "lr=5")
    assert len(err.strip().splitlines()) == 1
    assert "vocabulary:" not in out
    assert not out_path.exists()
    if isinstance(exc, FloatingPointError):
        assert "diverged" in err and "smaller --lr than 5" in err


# -- similar -----------------------------------------------------------------------------------

def test_similar_prints_sorted_neighbours(trained, capsys):
    path, _ = trained
    code, out, err = run(capsys, "similar", path, "cat", "stock", "-n", "3")
    assert code == 0, err
    blocks = similar_blocks(out)
    assert list(blocks) == ["cat", "stock"]
    vectors = load_word2vec(path)
    for word, pairs in blocks.items():
        assert len(pairs) == 3
        assert word not in [w for w, _ in pairs]
        sims = [s for _, s in pairs]
        assert sims == sorted(sims, reverse=True)
        expected = vectors.most_similar(word, topn=3)
        assert [w for w, _ in pairs] == [w for w, _ in expected]
        np.testing.assert_allclose(sims, [s for _, s in expected], atol=1e-4)
    assert all(w in PETS for w, _ in blocks["cat"])
    assert all(w in MONEY for w, _ in blocks["stock"])


def test_similar_topn_larger_than_the_vocabulary(trained, capsys):
    path, _ = trained
    code, out, err = run(capsys, "similar", path, "cat", "-n", "1000")
    assert code == 0, err
    pairs = similar_blocks(out)["cat"]
    assert len(pairs) == len(load_word2vec(path)) - 1  # every other word, once
    assert len({w for w, _ in pairs}) == len(pairs)


def test_similar_unknown_words(trained, capsys):
    path, _ = trained
    code, out, err = run(capsys, "similar", path, "cat", "zzyzx", "-n", "3")
    assert code == 0, err
    assert "zzyzx: not in the vocabulary" in out
    assert len(similar_blocks(out)["cat"]) == 3
    # every word unknown: exit 1
    code, out, err = run(capsys, "similar", path, "zzyzx", "qqq")
    assert code == 1
    assert "zzyzx: not in the vocabulary" in out and "qqq: not in the vocabulary" in out


def test_similar_missing_file(tmp_path, capsys):
    code, out, err = run(capsys, "similar", tmp_path / "nope.txt", "cat")
    assert_clean_error(code, out, err, "nope.txt", "no such file")


def test_similar_glove_file(tmp_path, capsys):
    words = ["king", "queen", "prince", "apple", "pear"]
    weight = np.array([[1.0, 0.1, 0.0], [0.9, 0.2, 0.0], [0.8, 0.3, 0.1],
                       [-0.1, 1.0, 0.9], [0.0, 0.9, 1.0]], dtype=np.float32)
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(w + " " + " ".join(f"{x:g}" for x in row) + "\n"
                             for w, row in zip(words, weight)), encoding="utf-8")
    code, out, err = run(capsys, "similar", glove, "king", "apple", "-n", "2", "--no-header")
    assert code == 0, err
    blocks = similar_blocks(out)
    assert [w for w, _ in blocks["king"]] == ["queen", "prince"]
    assert [w for w, _ in blocks["apple"]] == ["pear", "prince"]
    expected = Vectors(words, weight).similarity("king", "queen")
    assert abs(blocks["king"][0][1] - expected) < 1e-4
    # read as a word2vec file, the first line is not a header: a clean error
    code, out, err = run(capsys, "similar", glove, "king")
    assert_clean_error(code, out, err, "header")


def test_similar_fasttext_model_answers_for_unseen_words(tmp_path, capsys, rng):
    from fastembed.io import save_fasttext
    from fastembed.subwords import SubwordVectors

    words = ["walk", "walked", "talk", "talked", "apple"]
    model = SubwordVectors(words, rng.standard_normal((5 + 64, 8)).astype(np.float32), minn=3,
                           maxn=4, bucket=64)
    path = tmp_path / "model.bin"
    save_fasttext(path, model)
    code, out, err = run(capsys, "similar", path, "walked", "walking", "-n", "2")
    assert code == 0, err
    blocks = similar_blocks(out)
    assert [w for w, _ in blocks["walked"]] == [w for w, _ in model.most_similar("walked", 2)]
    assert [w for w, _ in blocks["walking"]] == [w for w, _ in model.most_similar("walking", 2)]
    assert "its vector is the mean of its n-grams" in out
    # a word2vec binary file is still read as one
    save_word2vec(tmp_path / "w2v.bin", model.weight, words, binary=True)
    code, out, err = run(capsys, "similar", tmp_path / "w2v.bin", "walked", "walking")
    assert code == 0 and "walking: not in the vocabulary" in out
    # a broken model: a clean error naming the file
    path.write_bytes(path.read_bytes()[:100])
    code, out, err = run(capsys, "similar", path, "walk")
    assert_clean_error(code, out, err, "model.bin", "truncated")


def test_word2vec_save_model_writes_a_fasttext_bin(tmp_path, capsys, corpus):
    from fastembed.io import load_fasttext

    out, model = tmp_path / "v.txt", tmp_path / "m.bin"
    code, stdout, err = run(capsys, "word2vec", corpus, "--out", out, "--save-model", model,
                            *W2V)
    assert code == 0, err
    assert f"wrote the model (fastText .bin) to {model}" in stdout
    vectors, loaded = load_word2vec(out), load_fasttext(model)
    assert loaded.words == vectors.words
    np.testing.assert_allclose(loaded.weight, vectors.weight, rtol=1e-6)
    code, stdout, err = run(capsys, "similar", model, vectors.words[5], "-n", "3")
    assert code == 0 and len(similar_blocks(stdout)[vectors.words[5]]) == 3
    # a --save-model that cannot be written fails before any work
    code, stdout, err = run(capsys, "word2vec", corpus, "--save-model", tmp_path / "no" / "m.bin",
                            *W2V)
    assert_clean_error(code, stdout, err, "--save-model", "does not exist")
    assert "reading" not in stdout


def test_word2vec_subwords(tmp_path, capsys, corpus):
    from fastembed.io import load_fasttext

    out, model = tmp_path / "v.txt", tmp_path / "m.bin"
    args = [*W2V, "--subwords", "--minn", "2", "--maxn", "4", "--bucket", "500"]
    code, stdout, err = run(capsys, "word2vec", corpus, "--out", out, "--save-model", model,
                            "--show", "kitten,kittens", "-n", "3", *args)
    assert code == 0, err
    assert "trained skipgram with subwords" in stdout
    vectors, loaded = load_word2vec(out), load_fasttext(model)
    assert (loaded.minn, loaded.maxn, loaded.bucket) == (2, 4, 500)
    assert loaded.words == vectors.words
    np.testing.assert_allclose(loaded.weight, vectors.weight, rtol=1e-5, atol=1e-6)
    # the API with the same settings: the same vectors
    api = train_word2vec(corpus_sentences(corpus), dim=16, epochs=3, min_count=1, sample=0,
                         subwords=True, minn=2, maxn=4, bucket=500, progress=False)
    np.testing.assert_allclose(vectors.weight, api.vectors.weight, rtol=1e-5, atol=1e-6)
    near = neighbour_lines(stdout)
    assert len(near["kitten"]) == 3 and len(near["kittens"]) == 3   # unseen: its n-grams
    code, stdout, err = run(capsys, "similar", model, "kittens", "-n", "2")
    assert code == 0 and "mean of its n-grams" in stdout


@pytest.mark.parametrize("args,match", [
    (["--minn", "2"], "need --subwords"), (["--bucket", "10"], "need --subwords"),
    (["--subwords", "--minn", "5", "--maxn", "4"], "--minn must lie in"),
    (["--subwords", "--minn", "0"], "--minn must lie in"),
])
def test_word2vec_bad_subword_options(capsys, corpus, args, match):
    code, stdout, err = run(capsys, "word2vec", corpus, *W2V, *args)
    assert_clean_error(code, stdout, err, match)
    assert "reading" not in stdout


def test_similar_malformed_file(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    save_word2vec(bad, np.eye(3, dtype=np.float32), words=["a", "b", "c"])
    bad.write_text(bad.read_text() + "d 1 2\n", encoding="utf-8")
    code, out, err = run(capsys, "similar", bad, "a")
    assert_clean_error(code, out, err, "bad.txt")


# -- classify ----------------------------------------------------------------------------------

SPORT = "goal match team score player coach league win stadium ball".split()
POLITICS = "vote election senate law policy party minister court tax bill".split()


def write_fasttext(path, n, seed):
    r = random.Random(seed)
    lines = []
    for _ in range(n):
        label = r.choice("ab")
        topic = SPORT if label == "a" else POLITICS
        words = [r.choice(topic) if r.random() < 0.6 else r.choice(FILLER) for _ in range(12)]
        lines.append(f"__label__{label} " + " ".join(words))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def classify_data(tmp_path):
    return (write_fasttext(tmp_path / "train.txt", 400, seed=0),
            write_fasttext(tmp_path / "test.txt", 100, seed=1))


def report_values(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_classify_trains_reports_and_saves(tmp_path, capsys, classify_data):
    train, test = classify_data
    model_path = tmp_path / "model.npz"
    code, out, err = run(capsys, "classify", train, "--test", test, "--out", model_path,
                         "--epochs", "3", "--quiet", "--threads", "1")
    assert code == 0, err
    report = report_values(out)
    assert int(report["train_examples"]) == 400 and int(report["test_examples"]) == 100
    assert int(report["num_classes"]) == 2
    assert float(report["accuracy"]) > 0.9
    assert float(report["train_accuracy"]) > 0.9
    assert f"saved the model to {model_path}" in out
    model = BagClassifier.load(model_path)
    assert sorted(model.label_names) == ["a", "b"]
    labels, texts = read_fasttext(test)
    predicted = model.predict_labels(texts)
    accuracy = np.mean([p == y for p, y in zip(predicted, labels)])
    assert abs(accuracy - float(report["accuracy"])) < 1e-4


def test_classify_without_test_file(capsys, classify_data):
    train, _ = classify_data
    code, out, err = run(capsys, "classify", train, "--epochs", "2", "--quiet")
    assert code == 0, err
    report = report_values(out)
    assert report["accuracy"] == "None" and int(report["test_examples"]) == 0
    assert "saved the model" not in out


def test_classify_is_reproducible_and_saves_the_same_model(tmp_path, capsys, classify_data):
    train, test = classify_data
    models = []
    for k in range(2):
        path = tmp_path / f"m{k}.npz"
        assert run(capsys, "classify", train, "--out", path, "--epochs", "2", "--quiet",
                   "--threads", "1", "--seed", "3")[0] == 0
        models.append(BagClassifier.load(path))
    for name, value in models[0].state_dict().items():
        assert_bitwise_equal(models[1].state_dict()[name], value)


def test_classify_with_bigrams(tmp_path, capsys, classify_data):
    train, test = classify_data
    model_path = tmp_path / "bigrams.npz"
    code, out, err = run(capsys, "classify", train, "--test", test, "--bigrams", "1000",
                         "--out", model_path, "--epochs", "3", "--quiet")
    assert code == 0, err
    assert float(report_values(out)["accuracy"]) > 0.9
    model = BagClassifier.load(model_path)
    assert model.bigram_buckets == 1000
    labels, texts = read_fasttext(test)
    assert np.mean([p == y for p, y in zip(model.predict_labels(texts), labels)]) > 0.9


def test_classify_missing_files(tmp_path, capsys, classify_data):
    train, _ = classify_data
    code, out, err = run(capsys, "classify", tmp_path / "nope.txt", "--quiet")
    assert_clean_error(code, out, err, "nope.txt", "no such file")
    code, out, err = run(capsys, "classify", train, "--test", tmp_path / "gone.txt",
                         "--quiet")
    assert_clean_error(code, out, err, "gone.txt", "no such file")


def test_classify_line_without_label(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("__label__a good words\n\n__label__b other words\nno label here\n",
                   encoding="utf-8")
    code, out, err = run(capsys, "classify", bad, "--quiet")
    assert_clean_error(code, out, err, str(bad), "line 4", "no label")


@pytest.mark.parametrize("content, fragment", [
    ("", "no labelled line"),
    ("\n  \n", "no labelled line"),
    ("__label__ words\n", "empty label"),
])
def test_classify_unusable_train_file(tmp_path, capsys, content, fragment):
    path = tmp_path / "train.txt"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "classify", path, "--quiet")
    assert_clean_error(code, out, err, fragment)


def test_classify_test_labels_unseen_in_training(tmp_path, capsys, classify_data):
    train, _ = classify_data
    test = tmp_path / "other.txt"
    test.write_text("__label__c goal match\n", encoding="utf-8")
    code, out, err = run(capsys, "classify", train, "--test", test, "--quiet")
    assert_clean_error(code, out, err, "'c'")


@pytest.mark.parametrize("argv", [["--dim", "0"], ["--epochs", "0"], ["--batch-size", "0"],
                                  ["--threads", "0"], ["--optimizer", "lbfgs"]])
def test_classify_bad_options_are_argparse_errors(capsys, classify_data, argv):
    train, _ = classify_data
    with pytest.raises(SystemExit) as info:
        main(["classify", str(train), "--quiet", *argv])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


# -- the console entry, as a real process ------------------------------------------------------

def test_subprocess_word2vec_and_similar(tmp_path, corpus):
    proc = run_subprocess(tmp_path, "word2vec", corpus, "--out", "vec.txt", *W2V,
                          "--threads", "1", "--show", "cat")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "  cat: " in proc.stdout
    vectors = load_word2vec(tmp_path / "vec.txt")  # relative --out: written in the cwd
    assert "cat" in vectors and vectors.dim == 16
    proc = run_subprocess(tmp_path, "similar", "vec.txt", "zzyzx")
    assert proc.returncode == 1
    assert "zzyzx: not in the vocabulary" in proc.stdout


def test_subprocess_errors_exit_2_without_traceback(tmp_path):
    proc = run_subprocess(tmp_path, "word2vec", "missing.txt", "--quiet")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "python -m fastembed word2vec: error: missing.txt: no such file or directory")
    proc = run_subprocess(tmp_path, "word2vec", "--threads", "0")
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_subprocess_word2vec_on_the_builtin_corpus(tmp_path):
    proc = run_subprocess(tmp_path, "word2vec", "--epochs", "1", "--dim", "10", "--quiet",
                          "-n", "3")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "built-in State of the Union corpus" in out
    m = re.search(r"vocabulary: ([\d,]+) words \(min_count=5\)", out)
    assert m, out
    assert int(m.group(1).replace(",", "")) > 10_000
    m = re.search(r"([\d,]+) sentences, ([\d,]+) words", out)
    assert m and int(m.group(2).replace(",", "")) > 1_000_000
    near = neighbour_lines(out)
    assert list(near) == ["war", "economy", "freedom", "congress", "tax"]
    for word, pairs in near.items():
        assert len(pairs) == 3 and word not in [w for w, _ in pairs]
    assert not list(tmp_path.iterdir())  # no --out: nothing written


# -- a directory where a file is expected -------------------------------------------------------

@pytest.mark.parametrize("command", ["similar", "classify"])
def test_a_directory_instead_of_a_file_is_a_clean_error(tmp_path, capsys, command):
    folder = tmp_path / "folder"
    folder.mkdir()
    argv = [command, folder] + (["cat"] if command == "similar" else ["--quiet"])
    code, out, err = run(capsys, *argv)
    assert_clean_error(code, out, err, str(folder))


def test_word2vec_out_is_a_directory_is_a_clean_error(tmp_path, capsys, corpus):
    code, out, err = run(capsys, "word2vec", corpus, "--out", tmp_path, *W2V, "--threads", "1")
    assert_clean_error(code, out, err, str(tmp_path))
    assert "vocabulary:" not in out  # refused before training, not after


def test_word2vec_out_in_a_missing_directory_fails_before_training(tmp_path, capsys, corpus):
    target = tmp_path / "nodir" / "v.txt"
    code, out, err = run(capsys, "word2vec", corpus, "--out", target, *W2V, "--threads", "1")
    assert_clean_error(code, out, err, "does not exist")
    assert "vocabulary:" not in out


def test_word2vec_existing_checkpoints_without_resume_fail_before_reading(tmp_path, capsys,
                                                                          corpus):
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / "ckpt-000000001.npz").write_bytes(b"")
    code, out, err = run(capsys, "word2vec", corpus, *W2V, "--checkpoint-dir", ckpt)
    assert_clean_error(code, out, err, "--resume")
    assert "reading" not in out
