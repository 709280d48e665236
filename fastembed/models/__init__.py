"""Models trained end to end on text, built from the layers and the trainer.

- :mod:`fastembed.models.word2vec`: skip-gram and CBOW word vectors (:class:`SkipGram`,
  :class:`CBOW`, :func:`train_word2vec`), on the compiled kernel ``fastembed/_ext/sgns.pyx``;
- :mod:`fastembed.models.classifier`: a fastText-style text classifier
  (:class:`BagClassifier`), an :class:`~fastembed.nn.EmbeddingBag` and a
  :class:`~fastembed.nn.Linear` layer.

Examples
--------
>>> from fastembed import models
>>> sorted(models.__all__)
['BagClassifier', 'CBOW', 'SkipGram', 'train_word2vec']
"""
from .classifier import BagClassifier
from .word2vec import CBOW, SkipGram, train_word2vec

__all__ = ["BagClassifier", "CBOW", "SkipGram", "train_word2vec"]
