"""The examples in README.md and in the docstrings run and say what they claim."""
from __future__ import annotations

import doctest
import pathlib
import re

import numpy as np
import pytest

import fastembed
import fastembed.functional
import fastembed.layers
import fastembed.classifier
import fastembed.datasets
import fastembed.nn
import fastembed.optim
import fastembed.text
import fastembed.train
import fastembed.vectors
import fastembed.word2vec

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks():
    """The README's runnable python blocks (the Embedding signature listing is not one)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if not b.lstrip().startswith("Embedding(")]


def test_readme_has_python_examples():
    assert len(_python_blocks()) >= 1


@pytest.mark.parametrize("block", _python_blocks())
def test_readme_python_blocks_run(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    if "Embedding(4, 3" in block:
        # the seed example: [0, 1, 2, 0] -> (4, 3); (32, 10) ids -> (32, 10, 3)
        layer = namespace["layer"]
        np.testing.assert_array_equal(layer(np.array([0, 1, 2, 0])),
                                      layer.weight[[0, 1, 2, 0]])
        assert namespace["y"].shape == (32, 10, 3)
        assert namespace["grad"].values.shape == (namespace["grad"].rows.size, 3)
    if "optim.Adam" in block:
        # the training example learns: the table moved most of the way to its target
        layer, target = namespace["layer"], namespace["target"]
        assert np.mean((layer.weight - target) ** 2) < 0.5 * np.mean(target ** 2)
        assert set(namespace["checkpoint"]["state"][0]) == {"state1", "state2"}
    if "tiny.txt" in block:
        assert namespace["mapped"].weight.shape == (3, 2)
        assert (tmp_path / "tiny.npy.vocab").read_text() == "king\nqueen\napple\n"
    if "EmbeddingBag(" in block:
        assert namespace["y"].shape == (3, 64) and namespace["y2"].shape == (2, 64)
        np.testing.assert_array_equal(namespace["y"][1], 0)  # the empty bag
        assert 0 not in namespace["grad"].rows  # padding never gets gradient


@pytest.mark.parametrize("module", [
    fastembed.functional, fastembed.layers, fastembed.optim, fastembed.text, fastembed.train,
    fastembed.nn, fastembed.classifier, fastembed.word2vec, fastembed.vectors,
    fastembed.datasets,
], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_main_job_prints_seed_example_and_table(capsys):
    from fastembed.__main__ import seed_example, timing_table

    seed_example()
    timing_table(num_embeddings=1000, embedding_dim=8, n_ids=4096, repeat=1)
    out = capsys.readouterr().out
    assert "layer(np.array([0, 1, 2, 0]))" in out
    assert "(32, 10, 3)" in out
    for contender in ("numpy E[X]", "fastembed.gather", "numpy np.add.at",
                      "fastembed.scatter_add"):
        assert contender in out
