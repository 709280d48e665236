"""The compiled kernels: Cython modules that trust their arguments.

Each module here is called by one Python module that validates, coerces and allocates first
(see ARCHITECTURE.md): ``indexing`` (gather, scatter-add, coalesce, the bounds scan) by
``fastembed.functional`` and the layers; ``pooling`` (bag pooling) by ``fastembed.functional``;
``updates`` (optimizer row updates, plain and fused with the backward pass) by
``fastembed.optim``; ``sgns`` (word2vec's skip-gram and CBOW steps) by
``fastembed.models.word2vec``; ``tokens`` (counting token lists, encoding them as word ids)
by ``fastembed.text`` and ``fastembed.models.word2vec``; ``textio`` (the word-vector file
parsers) by ``fastembed.io``; ``threads`` (the thread controls and the one ``n_threads`` rule)
by all of them.
"""
