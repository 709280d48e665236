"""Layers with hand-written backward passes, to compose models without autograd.

Every piece follows one pattern: ``forward(...)`` computes and remembers what the backward
pass needs; ``backward(grad_output)`` returns the gradient of the input and *adds* the
gradients of the piece's parameters into their ``.grad``; ``parameters()`` yields the
:class:`Parameter` objects to hand to an optimizer; ``zero_grad()`` clears their gradients;
``state_dict()`` and ``load_state_dict()`` save and restore them.

- :class:`Module`: the base class of every piece, and of the models you compose from them: it
  finds the Parameters and modules assigned to its attributes (``module.py``).
- :class:`Parameter`: the one kind of trainable object: an array, its gradient (a
  :class:`~fastembed.SparseGrad`) and whether that gradient is row-sparse (an embedding
  table's) or lists every row (a dense parameter's, whose steps are then dense updates).
- :class:`Embedding` and :class:`EmbeddingBag`: tables looked up by id, with row-sparse
  gradients and a fused backward-and-step (``embedding.py``).
- :class:`Linear`: ``y = x @ W.T + b``, PyTorch's layout and default initialisation.
- :class:`Pooling` / :func:`pool`: masked mean or sum over the time axis of a padded batch.
- :func:`softmax_cross_entropy` and :func:`sigmoid_binary_cross_entropy`: the losses, each
  returning ``(loss, gradient of the loss with respect to the logits)``, numerically stable.

Examples
--------
A linear classifier trained with Adam, by hand:

>>> import numpy as np
>>> from fastembed import nn, optim
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((64, 5)).astype(np.float32)
>>> labels = (x[:, 0] > 0).astype(np.int64)
>>> layer = nn.Linear(5, 2, seed=0)
>>> opt = optim.Adam(layer.parameters(), lr=0.05)
>>> for step in range(100):
...     loss, grad_logits = nn.softmax_cross_entropy(layer(x), labels)
...     _ = layer.backward(grad_logits)
...     opt.step(); opt.zero_grad()
>>> bool(loss < 0.2)
True
"""
from .embedding import Embedding, EmbeddingBag
from .linear import Linear
from .losses import sigmoid_binary_cross_entropy, softmax_cross_entropy
from .module import Module
from .parameter import Parameter
from .pooling import Pooling, pool, pool_backward

__all__ = ["Embedding", "EmbeddingBag", "Module", "Parameter", "Linear", "Pooling", "pool",
           "pool_backward", "softmax_cross_entropy", "sigmoid_binary_cross_entropy"]
