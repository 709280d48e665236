"""The NumPy references of fastembed's operations: one function per operation.

The tests (``from reference import ...``; ``conftest.py`` puts this folder on ``sys.path``)
and the fuzz driver ``tests/fuzz.py`` compare the library with these functions. They are
written to be read: plain NumPy and Python loops, no speed tricks, nothing from fastembed
except the word2vec kernel's own sigmoid and softplus tables (``fastembed._ext.sgns``).

Conventions:

* Float results are in the table's dtype and follow the kernels' order of operations, so that
  most comparisons can be bitwise: sums run in position order and start from +0.0 (the order
  ``np.add.at`` adds in), and each formula is evaluated in the table's precision.
* ``ids`` may have any shape; they are flattened in C order. A gradient of a lookup has the
  shape of the ids plus a last axis of width D.
* ``padding_idx`` counts from the end when negative, as in the layers; functions that do not
  see the table take ``num_embeddings`` for that.
* A gradient is returned as ``(rows, values)``: the distinct rows, ascending, as int64, and
  their summed gradients, shape (U, D), like a ``SparseGrad``.

Contents: lookups and gradients (:func:`ref_gather`, :func:`ref_scatter_add`,
:func:`ref_coalesce`, :func:`ref_merge_grads`, :func:`ref_embedding_backward`,
:func:`ref_renorm`); pooled lookups (:func:`ref_bag_bounds`, :func:`ref_bag_forward`,
:func:`ref_embedding_bag`, :func:`ref_bag_contributions`, :func:`ref_bag_backward`); the
sparse optimizers (:func:`ref_optimizer_state`, :func:`ref_optimizer_update`,
:class:`RefOptimizer`); losses and gradient checks (:func:`ref_softmax_cross_entropy`,
:func:`ref_sigmoid_binary_cross_entropy`, :func:`numeric_grad`); the bag classifier
(:func:`ref_splitmix64`, :func:`ref_doc_rows`, :func:`ref_classifier_step`); word2vec
(:func:`ref_word2vec_plan`, :func:`ref_word2vec_step`); vectors (:func:`ref_cosine_scores`,
:func:`ref_top_rows`); text (:func:`ref_tokenize`, :func:`ref_split_sentences`,
:func:`ref_pad_sequences`); files (:func:`ref_read_word2vec_binary`); fastText's subwords
(:func:`ref_fasttext_hash`, :func:`ref_fasttext_subwords`).
"""
from __future__ import annotations

import math

import numpy as np

from fastembed._ext import sgns


# =============================================================================================
# Lookups and their gradients
# =============================================================================================

def ref_gather(weight, ids):
    """The rows of ``weight`` that ``ids`` name: ``weight[ids]``, shape ``ids.shape + (D,)``."""
    return np.asarray(weight)[np.asarray(ids)]


def ref_scatter_add(out, ids, grad):
    """A copy of ``out`` with each row of ``grad`` added to the row its id names.

    ``np.add.at``: the rows are added one by one, in position order.
    """
    result = np.array(out, copy=True)
    with np.errstate(all="ignore"):  # inf - inf and overflow are fine: results compare bits
        np.add.at(result, np.asarray(ids), np.asarray(grad))
    return result


def ref_coalesce(ids, grad):
    """The gradient of a lookup as (rows, values): each distinct id and its rows of ``grad``
    summed in position order, starting from +0.0."""
    ids = np.asarray(ids).astype(np.int64).reshape(-1)
    grad = np.asarray(grad)
    dim = grad.shape[-1]
    rows, inverse = np.unique(ids, return_inverse=True)
    values = np.zeros((rows.size, dim), dtype=grad.dtype)
    with np.errstate(all="ignore"):
        np.add.at(values, inverse.reshape(-1), grad.reshape(ids.size, dim))
    return rows.astype(np.int64), values


def ref_merge_grads(*grads):
    """A layer's ``grad`` after several backward calls: each (rows, values) merged into the
    sum so far, one after the other. ``None`` entries (no gradient yet) are skipped; the
    result is None when every entry is."""
    total = None
    for grad in grads:
        if grad is None:
            continue
        if total is None:
            total = (np.array(grad[0], copy=True), np.array(grad[1], copy=True))
        else:
            total = ref_coalesce(np.concatenate([total[0], grad[0]]),
                                 np.concatenate([total[1], grad[1]]))
    return total


def _padding_row(padding_idx, num_embeddings):
    """``padding_idx`` as a row in [0, V), or None."""
    if padding_idx is None or padding_idx >= 0:
        return padding_idx
    if num_embeddings is None:
        raise ValueError("a negative padding_idx needs num_embeddings")
    return padding_idx % num_embeddings


def ref_embedding_backward(ids, grad_output, padding_idx=None, scale_grad_by_freq=False,
                           num_embeddings=None):
    """The table's gradient (rows, values) of ``Embedding`` for one lookup.

    The coalesced gradient; with ``scale_grad_by_freq`` each row divided by the number of
    times the lookup named it; the padding row left out.
    """
    rows, values = ref_coalesce(ids, grad_output)
    if scale_grad_by_freq:
        counts = np.unique(np.asarray(ids).astype(np.int64), return_counts=True)[1]
        values = values / counts[:, None].astype(values.dtype)
    pad = _padding_row(padding_idx, num_embeddings)
    if pad is not None:
        keep = rows != pad
        rows, values = rows[keep], values[keep]
    return rows, values


def ref_renorm(weight, ids, max_norm, norm_type=2.0):
    """A copy of ``weight`` after a lookup with ``max_norm`` (PyTorch's ``embedding_renorm_``).

    Each distinct row looked up whose ``norm_type``-norm (taken in float64) exceeds
    ``max_norm`` is scaled by ``max_norm / (norm + 1e-7)``, in float64, then stored in the
    table's dtype; the other rows are unchanged.
    """
    weight = np.array(weight, copy=True)
    rows = np.unique(np.asarray(ids).astype(np.int64))
    if rows.size and weight.shape[1]:   # rows of no element have norm 0: nothing to scale
        sub = weight[rows]
        norms = np.linalg.norm(sub.astype(np.float64), ord=norm_type, axis=1)
        over = norms > max_norm
        if over.any():
            scale = max_norm / (norms[over] + 1e-7)
            weight[rows[over]] = (sub[over] * scale[:, None]).astype(weight.dtype)
    return weight


# =============================================================================================
# Pooled lookups (EmbeddingBag)
# =============================================================================================

def ref_bag_bounds(ids, offsets=None, include_last_offset=False):
    """(flat int64 ids, B + 1 int64 bag bounds): bag b is ``flat[bounds[b]:bounds[b + 1]]``.

    ``offsets=None``: ids of shape (B, L), one bag per row. Otherwise 1-D ids and the bags'
    start offsets (with the end as the last offset when ``include_last_offset``).
    """
    ids = np.asarray(ids)
    flat = ids.reshape(-1).astype(np.int64)
    if offsets is None:
        n_bags, length = ids.shape
        return flat, np.arange(n_bags + 1, dtype=np.int64) * length
    bounds = np.asarray(offsets).astype(np.int64)
    if not include_last_offset:
        bounds = np.append(bounds, np.int64(ids.size))
    return flat, bounds


def ref_bag_forward(weight, flat, bounds, mode, padding_idx=None, per_sample_weights=None):
    """(out (B, D), denom (B,), argmax (B, D)) of pooling each bag, with a loop over bags.

    sum: the bag's rows (times their weights) added one by one to +0.0, in position order,
    in the table's dtype; mean: that sum divided by ``denom``, the count of pooled ids or the
    sequential sum of their weights (a bag whose denom is 0 gives zeros); max: the elementwise
    maximum, the first occurrence winning ties (and the first NaN winning over numbers).
    Padding ids are not pooled. ``argmax`` is the row that gave each element in max mode
    (-1 where nothing was pooled, and everywhere in the other modes).
    """
    dtype = weight.dtype
    n_bags, dim = bounds.size - 1, weight.shape[1]
    pad = _padding_row(padding_idx, weight.shape[0])
    psw = None if per_sample_weights is None else np.asarray(per_sample_weights).reshape(-1)
    out = np.zeros((n_bags, dim), dtype)
    denom = np.zeros(n_bags, dtype)
    argmax = np.full((n_bags, dim), -1, np.int64)
    for b in range(n_bags):
        pos = [j for j in range(bounds[b], bounds[b + 1]) if flat[j] != pad]
        if mode == "max":
            denom[b] = len(pos)
            if pos:
                bag_ids = flat[pos]
                rows = weight[bag_ids]
                k = np.argmax(rows, axis=0)  # the first occurrence of the maximum
                out[b] = rows[k, np.arange(dim)]
                argmax[b] = bag_ids[k]
            continue
        acc = np.zeros(dim, dtype)
        total = dtype.type(0)
        for j in pos:  # sequential, in position order, in the table's dtype
            if psw is None:
                acc = acc + weight[flat[j]]
                total = total + dtype.type(1)
            else:
                acc = acc + psw[j] * weight[flat[j]]
                total = total + psw[j]
        denom[b] = total
        if mode == "sum":
            out[b] = acc
        elif total != 0:
            out[b] = acc / total
    return out, denom, argmax


def ref_embedding_bag(weight, ids, offsets=None, mode="mean", per_sample_weights=None,
                      include_last_offset=False, padding_idx=None):
    """``fastembed.embedding_bag``'s result: :func:`ref_bag_forward` on either layout."""
    flat, bounds = ref_bag_bounds(ids, offsets, include_last_offset)
    return ref_bag_forward(weight, flat, bounds, mode, padding_idx, per_sample_weights)[0]


def ref_bag_contributions(flat, bounds, mode, denom, padding_idx=None,
                          per_sample_weights=None, num_embeddings=None):
    """How each position of a sum or mean bag enters the gradient: (keep, bag_of, scale).

    ``keep``: the positions that contribute (not padding; in mean mode, not in a bag whose
    denom is 0); ``bag_of``: each position's bag; ``scale``: the factor of the bag's
    gradient at each position (None for 1): its weight (sum), or its weight (1 without
    weights) over the bag's denom (mean), in denom's dtype.
    """
    dtype = denom.dtype
    n = flat.size
    bag_of = np.repeat(np.arange(bounds.size - 1, dtype=np.int64), np.diff(bounds))
    pad = _padding_row(padding_idx, num_embeddings)
    keep = np.ones(n, bool) if pad is None else flat != pad
    psw = None if per_sample_weights is None else np.asarray(per_sample_weights).reshape(-1)
    if mode == "mean":
        keep &= (denom != 0)[bag_of]
        numer = np.ones(n, dtype) if psw is None else psw
        safe = np.where(denom != 0, denom, dtype.type(1))
        return keep, bag_of, (numer / safe[bag_of]).astype(dtype)
    return keep, bag_of, psw


def ref_bag_backward(flat, bounds, mode, grad_output, denom, argmax, padding_idx=None,
                     per_sample_weights=None, scale_grad_by_freq=False, num_embeddings=None):
    """The table's gradient (rows, values) of a pooled lookup.

    ``denom`` and ``argmax`` are those :func:`ref_bag_forward` returned. max: each element of
    a bag's gradient goes to the row that won it, summed over the bags in bag order. sum and
    mean: each kept position's scaled bag gradient, coalesced in position order; with
    ``scale_grad_by_freq`` each row divided by its count among the non-padding ids.
    """
    dtype = grad_output.dtype
    n_bags, dim = grad_output.shape
    if mode == "max":
        valid = argmax >= 0
        rows = np.unique(argmax[valid]).astype(np.int64)
        values = np.zeros((rows.size, dim), dtype)
        cols = np.arange(dim)
        for b in range(n_bags):  # increasing bag order
            v = valid[b]
            values[np.searchsorted(rows, argmax[b, v]), cols[v]] += grad_output[b, v]
        return rows, values
    keep, bag_of, scale = ref_bag_contributions(flat, bounds, mode, denom, padding_idx,
                                                per_sample_weights, num_embeddings)
    contrib = grad_output[bag_of[keep]]
    if scale is not None:
        contrib = scale[keep][:, None] * contrib
    rows, values = ref_coalesce(flat[keep], contrib)
    if scale_grad_by_freq:
        pad = _padding_row(padding_idx, num_embeddings)
        live = flat if pad is None else flat[flat != pad]
        seen, counts = np.unique(live, return_counts=True)
        values = values / counts[np.searchsorted(seen, rows)][:, None].astype(dtype)
    return rows, values


# =============================================================================================
# Sparse optimizers (fastembed.optim), in the table's dtype and the kernels' operation order
# =============================================================================================

def ref_optimizer_state(kind, hyper, weight):
    """(state1, state2) of a new optimizer of class ``kind`` for ``weight``, shaped as
    ``fastembed.optim`` keeps them ((1, 0) where unused)."""
    unused = np.zeros((1, 0), weight.dtype)
    if kind == "SGD":
        if hyper.get("momentum", 0.0):
            return np.zeros_like(weight), unused
        return unused, unused.copy()
    if kind == "Adagrad":
        return np.full_like(weight, hyper.get("initial_accumulator_value", 0.0)), unused
    if kind == "RowWiseAdagrad":
        return np.zeros((weight.shape[0], 1), weight.dtype), unused
    if kind in ("Adam", "AdamW"):
        return np.zeros_like(weight), np.zeros_like(weight)
    raise ValueError(f"unknown optimizer {kind!r}")


def ref_optimizer_update(kind, hyper, weight, rows, grad, state1, state2, step):
    """One step of optimizer ``kind`` on ``rows`` of ``weight``, in place (lazy: no other row
    or state entry changes).

    ``kind``: "SGD" (with ``hyper["momentum"]``, 0 by default), "Adagrad",
    "RowWiseAdagrad", "Adam" or "AdamW"; ``hyper``: its hyper-parameters (lr, momentum, eps,
    betas, weight_decay); ``rows``: distinct row ids, ``grad``: their gradients (U, D);
    ``state1``/``state2``: the state arrays, updated in place; ``step``: this step's number
    (1 for the first), for Adam's bias correction. The formulas of ``optim.py``, in the
    table's dtype:

    * SGD: ``w += -lr * g``; with momentum ``buf = momentum * buf + g; w += -lr * buf``
    * Adagrad: ``s += g * g; w += -lr * (g / (sqrt(s) + eps))``
    * RowWiseAdagrad: ``s += sum(g * g) / D`` (summed column by column);
      ``w -= lr / (sqrt(s) + eps) * g``
    * Adam(W): (AdamW first ``w *= 1 - lr * weight_decay``) ``dm = (g - m) (1 - b1)``,
      ``dv = (g g - v) (1 - b2)``, ``m += dm``, ``v += dv``,
      ``w += -step_size * ((m + dm) / (sqrt(v + dv) + eps))`` with the old m, v and
      ``step_size = lr * sqrt(1 - b2^t) / (1 - b1^t)`` (in Python floats).
    """
    if rows.size == 0 or weight.shape[1] == 0:
        return
    T = weight.dtype.type
    g = grad
    w = weight[rows]
    if kind == "SGD":
        lr = T(hyper["lr"])
        if hyper.get("momentum", 0.0) == 0:
            w = w + (-lr) * g
        else:
            buf = T(hyper["momentum"]) * state1[rows] + g
            state1[rows] = buf
            w = w + (-lr) * buf
    elif kind == "Adagrad":
        lr, eps = T(hyper["lr"]), T(hyper["eps"])
        acc = state1[rows] + g * g
        state1[rows] = acc
        w = w + (-lr) * (g / (np.sqrt(acc) + eps))
    elif kind == "RowWiseAdagrad":
        lr, eps = T(hyper["lr"]), T(hyper["eps"])
        dim = weight.shape[1]
        mean_sq = np.zeros(rows.size, weight.dtype)
        for c in range(dim):  # summed sequentially, as the kernel does
            mean_sq = mean_sq + g[:, c] * g[:, c]
        mean_sq = mean_sq / T(dim)
        acc = state1[rows, 0] + mean_sq
        state1[rows, 0] = acc
        w = w - (lr / (np.sqrt(acc) + eps))[:, None] * g
    elif kind in ("Adam", "AdamW"):
        beta1, beta2 = (float(b) for b in hyper["betas"])
        lr = float(hyper["lr"])
        if kind == "AdamW":
            w = w * T(1.0 - lr * float(hyper["weight_decay"]))
        step_size = T(lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step))
        eps = T(hyper["eps"])
        m0, v0 = state1[rows], state2[rows]
        dm = (g - m0) * T(1.0 - beta1)
        dv = (g * g - v0) * T(1.0 - beta2)
        state1[rows] = m0 + dm
        state2[rows] = v0 + dv
        w = w + (-step_size) * ((dm + m0) / (np.sqrt(dv + v0) + eps))
    else:
        raise ValueError(f"unknown optimizer {kind!r}")
    weight[rows] = w


class RefOptimizer:
    """One table and its optimizer state, stepped with :func:`ref_optimizer_update`.

    ``w``, ``state1``, ``state2``: copies of the table and the state; ``t``: steps taken.
    """

    def __init__(self, kind, hyper, weight):
        self.kind, self.hyper = kind, dict(hyper)
        self.w = np.array(weight, copy=True)
        self.state1, self.state2 = ref_optimizer_state(kind, self.hyper, self.w)
        self.t = 0

    def step(self, rows, grad):
        """Apply one gradient: ``rows`` distinct, ``grad`` of shape (len(rows), D)."""
        self.t += 1
        ref_optimizer_update(self.kind, self.hyper, self.w, np.asarray(rows), grad,
                             self.state1, self.state2, self.t)


# =============================================================================================
# Losses, and gradients by finite differences
# =============================================================================================

def ref_softmax_cross_entropy(logits, labels):
    """(losses, grad) per example: ``-log softmax(logits)[label]`` and ``softmax - onehot``."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    losses = -np.log(np.take_along_axis(p, labels[..., None], axis=-1)[..., 0])
    return losses, p - np.eye(logits.shape[-1])[labels]


def ref_sigmoid_binary_cross_entropy(x, t):
    """(losses, grad) per element: ``-(t log s + (1 - t) log(1 - s))`` and ``s - t``, with
    ``s = sigmoid(x)``."""
    s = 1 / (1 + np.exp(-x))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s)), s - t


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar ``f()`` with respect to the array ``x``,
    which is perturbed in place (one entry at a time, then restored); float64."""
    g = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    gflat = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


# =============================================================================================
# The bag classifier (fastembed.models.classifier)
# =============================================================================================

_M64 = (1 << 64) - 1


def ref_splitmix64(x):
    """The documented bigram hash (splitmix64's output function), on Python ints."""
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def ref_doc_rows(doc, num_words, buckets):
    """A document's table rows: its words, then one hashed row per consecutive word pair."""
    doc = [int(w) for w in doc]
    rows = list(doc)
    if buckets:
        rows += [num_words + ref_splitmix64((a << 32) | b) % buckets
                 for a, b in zip(doc[:-1], doc[1:])]
    return rows


def ref_classifier_step(E, W, b, docs, labels, lr, buckets):
    """One SGD step of ``BagClassifier`` (mean of the document's rows, linear, softmax
    cross-entropy averaged over the documents), in float64 with loops over documents.

    Returns (loss, E, W, b after the step, dE, dW, db).
    """
    E, W, b = E.copy(), W.copy(), b.copy()
    n = len(docs)
    rows = [ref_doc_rows(d, E.shape[0] - buckets, buckets) for d in docs]
    H = np.zeros((n, E.shape[1]))
    for i, r in enumerate(rows):
        if r:
            H[i] = E[r].mean(axis=0)
    losses, G = ref_softmax_cross_entropy(H @ W.T + b[:, 0], np.asarray(labels))
    loss = losses.mean()
    G /= n
    dW = G.T @ H
    db = G.sum(axis=0)[:, None]
    dH = G @ W
    dE = np.zeros_like(E)
    for i, r in enumerate(rows):
        for row in r:
            dE[row] += dH[i] / len(r)
    return loss, E - lr * dE, W - lr * dW, b - lr * db, dE, dW, db


# =============================================================================================
# word2vec (fastembed.models.word2vec): a replay of one kernel call from its recorded draws
# =============================================================================================

class Centre:
    """One kept word of a batch and its predictions, as the kernel plans them.

    ``p``: batch position; ``i``: kept index (over the whole batch); ``word``; ``contexts``:
    the context words in window order; ``outputs``: per prediction, the output rows
    ``[centre] + non-skipped draws`` (skip-gram: one prediction per context, with the draws of
    slot s for the s-th context; CBOW: one prediction, slot 0). No context: no prediction.
    Subword skip-gram (fastText's order): ``[context] + draws`` for each context.
    """

    def __init__(self, p, i, word, contexts, outputs):
        self.p, self.i, self.word = p, i, word
        self.contexts, self.outputs = contexts, outputs


def ref_word2vec_plan(words, starts, rec, window, cbow, subwords=False):
    """The centres of a batch, in kept order, from the recorded draws (semantics 1 and 2);
    ``subwords``: skip-gram in fastText's order, each context the target of its prediction."""
    reduced, negatives = rec["reduced"], rec["negatives"]
    centres = []
    k0 = 0
    for s in range(starts.size - 1):
        pos = np.arange(starts[s], starts[s + 1])
        kept = pos[reduced[pos] >= 0]
        n = kept.size
        for i in range(n):
            p = int(kept[i])
            b = int(reduced[p])
            lo, hi = max(0, i - window + b), min(n, i + window + 1 - b)
            contexts = [int(words[kept[j]]) for j in range(lo, hi) if j != i]
            centre = int(words[p])
            slots = (1 if cbow else len(contexts)) if contexts else 0
            targets = contexts if subwords and not cbow else [centre] * slots
            outputs = [[targets[slot]] + [int(x) for x in negatives[p, slot] if x >= 0]
                       for slot in range(slots)]
            centres.append(Centre(p, k0 + i, centre, contexts, outputs))
        k0 += n
    return centres


# gensim's MAX_EXP (sgns.h's FE_SGNS_SKIP_X): an output whose logit is at least this far from
# 0 is not updated and adds nothing to the input's change; its loss still counts
SKIP_X = 6.0


def _train_outputs(h, outputs, syn1neg, alpha):
    """The output side of one prediction (semantics 4): returns (work, loss, skipped)."""
    work = np.zeros_like(h)
    loss, skipped = 0.0, 0
    for k, o in enumerate(outputs):
        row = syn1neg[o]
        x = float(h @ row)
        sig, sp = sgns.sigmoid(x), sgns.softplus(x)
        loss += sp - x if k == 0 else sp
        if not -SKIP_X < x < SKIP_X:
            skipped += 1
            continue
        g = alpha * ((1.0 if k == 0 else 0.0) - sig)
        work += g * row           # the old row ...
        syn1neg[o] = row + g * h  # ... then the row moves (a row drawn twice moves twice)
    return work, loss, skipped


def _train_centre(c, syn0, syn1neg, alpha, cbow, bags=None):
    """Train one centre in place; returns (loss, predictions, skipped outputs).

    ``bags`` (subwords, fastText's model): word w's input is the list of syn0 rows
    ``bags[w]``, h their mean, and every entry moves by the full work (a repeated row by
    twice it). Skip-gram: the centre's bag predicts each context in turn, the bag moving
    after each prediction; CBOW: the mean of all the contexts' bags' entries."""
    if not c.contexts:
        return 0.0, 0, 0
    if bags is not None:
        if cbow:
            entries = [r for u in c.contexts for r in bags[u]]
            groups = [(entries, c.outputs[0])]
        else:
            groups = [(bags[c.word], outputs) for outputs in c.outputs]
        loss, skipped = 0.0, 0
        for entries, outputs in groups:
            h = sum(syn0[r] for r in entries) / len(entries)
            work, l, s = _train_outputs(h, outputs, syn1neg, alpha)
            for r in entries:
                syn0[r] = syn0[r] + work
            loss += l
            skipped += s
        return loss, len(groups), skipped
    if cbow:
        h = syn0[c.contexts[0]].copy()
        for u in c.contexts[1:]:
            h = h + syn0[u]
        h = h * (1.0 / len(c.contexts))
        work, loss, skipped = _train_outputs(h, c.outputs[0], syn1neg, alpha)
        for u in c.contexts:       # a context twice in the window gets work twice
            syn0[u] = syn0[u] + work
        return loss, 1, skipped
    loss, skipped = 0.0, 0
    for u, outputs in zip(c.contexts, c.outputs):
        h = syn0[u].copy()
        work, l, s = _train_outputs(h, outputs, syn1neg, alpha)
        syn0[u] = syn0[u] + work
        loss += l
        skipped += s
    return loss, len(c.contexts), skipped


def _touched_rows(c, cbow, bags=None):
    """(syn0 rows, syn1neg rows) a centre touches; nothing without a context."""
    if not c.contexts:
        return set(), set()
    outputs = {o for outputs in c.outputs for o in outputs}
    if bags is None:
        return set(c.contexts), outputs
    if cbow:
        return {r for u in c.contexts for r in bags[u]}, outputs
    return set(bags[c.word]), outputs


class Word2VecReplay:
    """The result of :func:`ref_word2vec_step`: the tables after the call (``syn0``,
    ``syn1neg``), the summed ``loss``, the ``pairs`` (predictions), the ``kept`` words, the
    ``rounds``, the rows ``shared`` by several shards in a round, and the outputs ``skipped``
    for a saturated logit."""

    def __init__(self, syn0, syn1neg, loss, pairs, kept, rounds, shared, skipped):
        self.syn0, self.syn1neg, self.loss, self.pairs = syn0, syn1neg, loss, pairs
        self.kept, self.rounds, self.shared = kept, rounds, shared
        self.skipped = skipped


def ref_word2vec_step(syn0, syn1neg, batch, rec, *, lr, lr_end, window, cbow, shards,
                      round_words, periods=None, out_periods=None, max_period=1, bags=None,
                      hot=None):
    """Replay one kernel call in float64 NumPy from the recorded draws (semantics 1-5).

    ``batch``: (words, starts); ``rec``: what the call returned with ``record=True``. The
    rate of the centre at batch position p is ``lr + (lr_end - lr) * p / n``.
    ``shards == 1``: the centres in order, straight into the tables. ``shards = S > 1``: the
    K kept words cut into S pieces [t K // S, (t + 1) K // S); in round j shard t trains its
    next ``round_words`` centres on its own view of the tables. Row r of syn0 is merged after
    the rounds j with (j + 1) % periods[r] == 0 (``periods``: powers of two up to
    ``max_period``; None: all ``max_period``), row r of syn1neg after those with
    (j + 1) % out_periods[r] == 0 (None: ``periods``), and both after the last round:

    - a hot row of a table (``hot``: the rows of syn0 and of syn1neg; None: the rows with a
      period below ``max_period`` in either table, in both), o in the table, becomes
      o + (v_0 - o) + (v_1 - o) + ... over every shard's view v_t, in shard order;
    - any other row (merged once per ``max_period`` rounds, a long round) takes the value of
      the one shard that touched it since its last merge, or, if several did,
      o + (v_t - o) + ... over those shards, in shard order;

    and every view of a merged row takes the merged value.

    ``bags``: subwords (see ``_train_centre``); syn0 then has a row for every bag entry,
    ``periods`` one per syn0 row, and syn1neg's rows take the periods of syn0's first ones.
    """
    words, starts = batch
    n = words.size
    centres = ref_word2vec_plan(words, starts, rec, window, cbow, subwords=bags is not None)
    K = len(centres)
    alpha_step = (lr_end - lr) / n if n else 0.0

    def alpha(c):
        return lr + alpha_step * c.p

    t0 = np.array(syn0, dtype=np.float64)
    t1 = np.array(syn1neg, dtype=np.float64)
    loss, pairs, rounds, shared, skipped = 0.0, 0, 0, 0, 0
    if shards == 1:
        for c in centres:
            l, k, s = _train_centre(c, t0, t1, alpha(c), cbow, bags)
            loss += l
            pairs += k
            skipped += s
        return Word2VecReplay(t0, t1, loss, pairs, K, 1, 0, skipped)
    V = t0.shape[0]
    periods = np.full(V, max_period) if periods is None else np.asarray(periods)
    due_periods = [periods, periods if out_periods is None else np.asarray(out_periods)]
    if hot is None:
        either = periods < max_period
        either[:len(t1)] |= due_periods[1][:len(t1)] < max_period
        is_hot = [either, either[:len(t1)]]
    else:
        is_hot = [np.zeros(len(t), bool) for t in (t0, t1)]
        for mask, rows in zip(is_hot, hot):
            mask[np.asarray(rows, dtype=np.int64)] = True
    bounds = [t * K // shards for t in range(shards + 1)]
    n_rounds = max(math.ceil((bounds[t + 1] - bounds[t]) / round_words)
                   for t in range(shards))
    tables = [t0, t1]
    views = [[t0.copy() for _ in range(shards)], [t1.copy() for _ in range(shards)]]
    masks = [[np.zeros(len(tab), bool) for _ in range(shards)] for tab in tables]
    for r in range(n_rounds):
        for t in range(shards):
            lo = bounds[t] + r * round_words
            hi = min(lo + round_words, bounds[t + 1])
            for c in centres[lo:hi]:
                rows0, rows1 = _touched_rows(c, cbow, bags)
                masks[0][t][list(rows0)] = True
                masks[1][t][list(rows1)] = True
                l, k, s = _train_centre(c, views[0][t], views[1][t], alpha(c), cbow, bags)
                loss += l
                pairs += k
                skipped += s
        rounds += 1
        last = r == n_rounds - 1 or (r + 1) % max_period == 0
        for k, orig in enumerate(tables):
            Vk = orig.shape[0]
            hot = is_hot[k]
            due = np.ones(Vk, bool) if last else (r + 1) % due_periods[k][:Vk] == 0
            count = sum(m.astype(np.int64) for m in masks[k])
            new = orig.copy()
            for t in range(shards):          # in shard order
                view, mask = views[k][t], masks[k][t]
                one = ~hot & mask & (count == 1)
                many = (~hot & mask & (count > 1)) | hot
                new[one] = view[one]                                  # trained in place
                new[many] = new[many] + (view[many] - orig[many])     # merged
            shared += int((due & (count > 1)).sum())
            orig[due] = new[due]
            for t in range(shards):
                views[k][t][due] = orig[due]
                masks[k][t][due] = False
    return Word2VecReplay(t0, t1, loss, pairs, K, rounds, shared, skipped)


# =============================================================================================
# Vectors (similarity queries)
# =============================================================================================

def ref_cosine_scores(weight, query):
    """Cosines of ``query`` with every row of ``weight``, in float64 (zero rows give 0)."""
    w = np.asarray(weight, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    norms = np.linalg.norm(w, axis=1)
    norms[norms == 0] = 1
    qn = np.linalg.norm(q)
    return (w / norms[:, None]) @ (q / qn if qn > 0 else q)


def ref_top_rows(scores, exclude=(), restrict=None, topn=10):
    """The ``topn`` rows by decreasing score, ties in row order, among the first ``restrict``
    rows, ``exclude`` left out: brute force."""
    n = len(scores) if restrict is None else restrict
    rows = [i for i in range(n) if i not in set(exclude)]
    rows.sort(key=lambda i: (-scores[i], i))
    return rows[:topn]


# =============================================================================================
# Text (fastembed.text)
# =============================================================================================

def ref_tokenize(text, lower=True):
    """Character by character: alnum runs, joined by single apostrophes between alnums
    (the right single quote counts as an apostrophe)."""
    text = text.replace("\u2019", "'")
    if lower:
        text = text.lower()
    tokens, current = [], ""
    for i, char in enumerate(text):
        if char.isalnum():
            current += char
        elif (char == "'" and current and i + 1 < len(text) and text[i + 1].isalnum()):
            current += char
        elif current:
            tokens.append(current)
            current = ""
    if current:
        tokens.append(current)
    return tokens


def ref_count_tokens(sentences):
    """Token -> count, in order of first occurrence, one token at a time."""
    counts = {}
    for sentence in sentences:
        for token in sentence:
            counts[token] = counts.get(token, 0) + 1
    return list(counts), np.array(list(counts.values()), dtype=np.int64)


def ref_encode_sentences(sentences, index, max_sentence_length):
    """Each sentence's tokens found in ``index`` as ids, cut into pieces of at most
    ``max_sentence_length``; sentences with none kept give no piece."""
    words, starts = [], [0]
    for sentence in sentences:
        ids = [index[t] for t in sentence if t in index]
        for i in range(0, len(ids), max_sentence_length):
            words += ids[i:i + max_sentence_length]
            starts.append(len(words))
    return np.array(words, dtype=np.int32), np.array(starts, dtype=np.int64)


SENTENCE_ENDS = ".!?\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def ref_split_sentences(text, lower=True):
    """Cut at every sentence-end character, tokenize the pieces, drop the empty ones."""
    text = text.replace("\u2019", "'")
    if lower:  # the whole text at once, as documented (str.lower's final sigma looks ahead)
        text = text.lower()
    pieces, current = [], []
    for char in text:
        if char in SENTENCE_ENDS:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    return [t for t in (ref_tokenize(p, False) for p in pieces) if t]


def ref_pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                      value=0):
    """Keras's ``pad_sequences`` in plain Python lists (with maxlen=0 meaning "keep
    nothing")."""
    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    rows = []
    for s in sequences:
        s = list(s)
        if maxlen == 0:
            kept = []
        elif truncating == "pre":
            kept = s[-maxlen:]
        else:
            kept = s[:maxlen]
        fill = [value] * (maxlen - len(kept))
        rows.append(fill + kept if padding == "pre" else kept + fill)
    return np.array(rows, dtype=dtype).reshape(len(sequences), maxlen)


# =============================================================================================
# Files (fastembed.io)
# =============================================================================================

def ref_read_word2vec_binary(data, encoding="utf-8"):
    """(words, float32 table) of word2vec's binary format, read the plain way, one row after
    the other: a ``count dim`` header line, then per row the word, a space and ``dim``
    little-endian float32 (newlines before a word are skipped)."""
    head, _, body = data.partition(b"\n")
    count, dim = (int(x) for x in head.split())
    words, rows, pos = [], [], 0
    for _ in range(count):
        while body[pos:pos + 1] in (b"\n", b"\r"):
            pos += 1
        space = body.index(b" ", pos)
        words.append(body[pos:space].decode(encoding))
        rows.append(np.frombuffer(body, "<f4", dim, space + 1))
        pos = space + 1 + 4 * dim
    return words, np.array(rows, dtype=np.float32).reshape(count, dim)


# =============================================================================================
# fastText's subwords (fastembed.subwords): Dictionary::hash and computeSubwords, byte by byte
# =============================================================================================

def ref_fasttext_hash(data):
    """FNV-1a over the bytes, each sign-extended to 32 bits first (``uint32_t(int8_t(c))``)."""
    h = 2166136261
    for b in data:
        h ^= (b - 256 if b >= 128 else b) & 0xFFFFFFFF
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def ref_fasttext_subwords(word, own, minn, maxn, bucket, nwords):
    """fastText's Dictionary::getSubwords: [own] (if >= 0), then nwords + hash % bucket of each
    n-gram of "<word>" (starts skip UTF-8 continuation bytes; the single "<" and ">" are left
    out); EOS ("</s>") has none."""
    rows = [own] if own >= 0 else []
    if word == "</s>" or bucket == 0:
        return rows
    w = ("<" + word + ">").encode("utf-8")
    for i in range(len(w)):
        if (w[i] & 0xC0) == 0x80:
            continue
        j, n = i, 1
        while j < len(w) and n <= maxn:
            j += 1
            while j < len(w) and (w[j] & 0xC0) == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == len(w))):
                rows.append(nwords + ref_fasttext_hash(w[i:j]) % bucket)
            n += 1
    return rows


FILE_SEPARATORS = " \t\v\f\r\0"   # fastText's, within a line; lines end at "\n"


def ref_read_corpus(data, min_count=1, max_size=None, max_sentence_length=10_000, eos=False):
    """A tokenised file's bytes as (words, counts, corpus words, corpus starts): its lines'
    tokens counted, ranked by count (ties by first occurrence), then encoded. With ``eos``
    every line that has a token ends with ``</s>``, as fastText reads it."""
    lines = []
    for line in data.split(b"\n"):
        for sep in FILE_SEPARATORS[1:]:
            line = line.replace(sep.encode(), b" ")
        tokens = [t for t in line.split(b" ") if t]
        lines.append(tokens + [b"</s>"] if eos and tokens else tokens)
    first, counts = {}, {}
    for line in lines:
        for t in line:
            first.setdefault(t, len(first))
            counts[t] = counts.get(t, 0) + 1
    ranked = sorted((t for t in first if counts[t] >= min_count),
                    key=lambda t: (-counts[t], first[t]))[:max_size]
    index = {t: i for i, t in enumerate(ranked)}
    words, starts = ref_encode_sentences(lines, index, max_sentence_length)
    return ([t.decode("utf-8") for t in ranked], np.array([counts[t] for t in ranked]), words,
            starts)
