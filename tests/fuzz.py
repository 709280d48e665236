#!/usr/bin/env python
"""Fuzz driver for fastembed's public surface that takes ids or tables.

    python tests/fuzz.py --calls 100000 --seed 1 [--threads N] [--time-limit SEC]
                         [--subprocess-chunks K] [--only NAME ...] [--exclude NAME ...]
                         [--skip-known] [--replay I] [--verbose]

Each of the ``--calls`` cases draws its own ``numpy.random.Generator`` from ``(seed, case)``,
so every case can be replayed alone (``--replay I``). A case picks one scenario:

* the functional API: ``gather``, ``scatter_add``, ``coalesce``, ``embedding_bag``;
* a short sequence of calls on an ``Embedding`` or ``EmbeddingBag`` and an optimizer (SGD with
  and without momentum, Adagrad, RowWiseAdagrad, Adam, AdamW): ``forward``, ``backward``,
  ``step()``, the fused ``backward_and_step``, ``zero_grad``, hyper-parameter changes and
  hand-made (often malformed) ``layer.grad``; a NumPy model of the layer and of the
  optimizer state is kept alongside and compared after every call;
* ``SkipGram.train_step`` and ``CBOW.train_step`` (checked for determinism across thread
  counts, untouched rows and their counters: the NumPy reference trainer,
  ``ref_word2vec_step`` in tests/reference.py, replays the kernel's recorded draws and is
  used by tests/test_word2vec.py), with a learning rate that decays within the batch
  (``lr_end``) or not;
* ``fastembed.io.load_word2vec`` on generated text, GloVe and binary files (valid or with
  one defect, checked value by value), on mutated files and on random bytes.

Arguments are valid or broken in many ways: zero-sized dimensions, float16/int/big-endian/
non-contiguous/read-only/non-array tables, float/bool/object/complex ids, every integer id
dtype, ids that are negative, ``>= V``, int64 extremes or uint64 values above 2**63, offsets
that decrease, start above 0, run past the end or have the wrong length, per-sample weights of
the wrong dtype or shape, NaN and infinity in tables, gradients and weights, outputs of the
wrong shape/dtype/layout or sharing memory with an input, bad ``n_threads``.

Every call is classified by an oracle written from the documented contract (README and
docstrings) as valid, invalid or unspecified, and then:

* valid: the result must equal the NumPy reference of tests/reference.py (``E[X]``,
  ``np.add.at``, ``np.unique`` + ``np.add.at``, a per-bag loop, the optimizers' formulas in
  the table's precision), bitwise; inputs that are not outputs must be unchanged;
* invalid: it must raise TypeError, ValueError or IndexError (RuntimeError where the API
  documents it: backward before forward, ...) with a message, and the table, ``out``, the
  layer's ``grad`` and the optimizer state must be bitwise unchanged.

The summary counts calls, valid calls that matched, invalid calls that raised cleanly,
wrong results (a mismatch, a partial update, an invalid call accepted, a valid call refused)
and unexpected exception types per function. The exit status is 1 when any of these or a
crash occurred.

``--calls`` counts cases; a case makes one call, or (layers) a sequence of 2 to 6, so the
table counts more calls than cases.

A segfault kills the process that runs the calls: in-process (the default) the run ends with
faulthandler's traceback and no summary. ``--subprocess-chunks K`` runs the cases in K child
processes, one after another; each child keeps the index of its current case in a small
shared file, so a child killed by a signal is reported as a crash with the seed and the case
(``--replay I`` reruns it alone), and a new child resumes after it.

``--skip-known`` leaves out the inputs of the bugs listed in ``KNOWN_BUGS`` (so that CI can
run green until they are fixed); without it they are generated like everything else.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, defaultdict

import numpy as np

try:
    import fastembed
except ImportError:  # run from a checkout without PYTHONPATH
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fastembed
from fastembed import CBOW, Embedding, EmbeddingBag, SkipGram, optim
from fastembed.io import load_word2vec
from reference import (ref_bag_backward, ref_bag_forward, ref_coalesce,
                       ref_embedding_backward, ref_gather, ref_merge_grads, ref_optimizer_update,
                       ref_renorm, ref_scatter_add)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F32, F64)
INT64_MAX = 2**63 - 1
ALLOWED = (TypeError, ValueError, IndexError)
VALID, INVALID, EITHER = "valid", "invalid", "either"

# Inputs that hit bugs found by this fuzzer (see the report); --skip-known avoids them.
# (Fixed since, in 01dab65: SkipGram's unsigned `starts` that decrease, which wrapped around
# in np.diff and read out of bounds; an optimizer step after a layer's table was replaced by a
# bigger one, which wrote out of bounds into the state. Their inputs are still generated.)
KNOWN_BUGS = {
    # Empty: the bugs fuzzing found (an optimizer step after a table became read-only or was
    # replaced, coalesce(num_embeddings > 2**63), a fused bag step with a non-finite per-sample
    # weight, momentum state created by a step that raised, SkipGram's unsigned starts) are
    # fixed; their reproducers are regression tests in tests/test_fuzz.py and
    # tests/test_hardening.py.
}


class Wrong(Exception):
    """A check of a result failed (raised by the checkers, caught by the harness)."""


# =============================================================================================
# Fingerprints: "bitwise unchanged"
# =============================================================================================

def fingerprint(x):
    """A comparable, bitwise summary of arrays (and of tuples, lists, dicts of them)."""
    if isinstance(x, np.ndarray):
        return ("nd", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(fingerprint(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple((str(k), fingerprint(v)) for k, v in sorted(
            x.items(), key=lambda kv: str(kv[0]))))
    if x is None or isinstance(x, (bool, int, float, str, bytes, np.generic)):
        return ("v", repr(x))
    return ("id", id(x))


def require(cond, msg):
    if not cond:
        raise Wrong(msg)


def require_bits(actual, expected, what):
    """Bitwise equality, except that any NaN matches any NaN.

    (Which NaN an addition of two NaNs, or of +inf and -inf, returns depends on the order of
    its operands, which the compiler may swap: IEEE 754 does not specify the payload or sign.)
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise Wrong(f"{what}: got {actual.dtype}{actual.shape}, expected "
                    f"{expected.dtype}{expected.shape}")
    if actual.tobytes() == expected.tobytes():
        return
    a, e = actual.reshape(-1), expected.reshape(-1)
    u = _uint_of(actual.dtype)
    diff = a.view(u) != e.view(u)
    if actual.dtype.kind in "fc":
        diff &= ~(np.isnan(a) & np.isnan(e))
    bad = np.flatnonzero(diff)
    if bad.size:
        k = int(bad[0])
        raise Wrong(f"{what}: {bad.size} element(s) differ, first at flat index {k}: "
                    f"{a[k]!r} != {e[k]!r}")


def _uint_of(dtype):
    return {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(np.dtype(dtype).itemsize,
                                                                       np.uint8)


def require_grad(actual, expected, what):
    """A SparseGrad (or None) against the reference (rows, values) or None."""
    if expected is None:
        require(actual is None, f"{what}: expected None, got {type(actual).__name__}")
        return
    require(actual is not None, f"{what}: got None, expected a gradient")
    rows, values = actual
    require_bits(rows, expected[0], f"{what}.rows")
    require_bits(values, expected[1], f"{what}.values")


# =============================================================================================
# Oracles: what the documented contract says about an argument
# =============================================================================================

def table_ok(w, writeable=False):
    """A (V, D) float32/float64 native C-contiguous ndarray (writeable if asked)."""
    return (type(w) is np.ndarray and w.ndim == 2 and w.dtype in FLOATS
            and w.dtype.isnative and w.flags.c_contiguous
            and (w.flags.writeable or not writeable))


def threads_ok(n):
    if n is None:
        return True
    if isinstance(n, (bool, np.bool_)) or not hasattr(n, "__index__"):
        return False
    return int(n.__index__()) != 0


def classify_ids(obj, V):
    """(ok, shape, flat int64 values or None): the contract for ids.

    Integer array-likes of any shape (an empty list or tuple too); values in [0, V) (V None:
    non-negative only). Anything else is invalid.
    """
    if isinstance(obj, np.ndarray):
        arr = obj
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                arr = np.asarray(obj)
        except Exception:
            return False, None, None
        if arr.size == 0 and arr.dtype == F64 and not hasattr(obj, "dtype"):
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        return False, arr.shape, None
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and \
            int(arr.max()) > INT64_MAX:
        return False, arr.shape, None
    flat = arr.astype(np.int64).reshape(-1)
    if flat.size and (flat.min() < 0 or (V is not None and flat.max() >= V)):
        return False, arr.shape, flat
    return True, arr.shape, flat


def out_status(out, shape, dtype, tables=(), detected=(), undetected=()):
    """(VALID / INVALID / EITHER, inputs that out aliases) for a preallocated output.

    An out sharing memory with a table, or with an input the function reads in place while
    writing (``detected``), must be refused. One that shares memory with an input the function
    copies before writing (``undetected``: byte-swapped or converted ids, offsets) may be
    refused or used; if used, the result must be that of the original values.
    """
    if out is None:
        return VALID, []
    if not (type(out) is np.ndarray and out.shape == tuple(shape) and out.dtype == dtype
            and out.dtype.isnative and out.flags.c_contiguous and out.flags.writeable):
        return INVALID, []

    def shares(o):
        return isinstance(o, np.ndarray) and np.may_share_memory(out, o)

    if any(shares(t) for t in tables) or any(shares(o) for o in detected):
        return INVALID, []
    aliased = [o for o in undetected if shares(o)]
    return (EITHER if aliased else VALID), aliased


def used_in_place(a, dtypes=(np.int32, np.int64)):
    """Whether the library reads this array itself (not a converted copy)."""
    return (isinstance(a, np.ndarray) and a.dtype.isnative and a.flags.c_contiguous
            and a.dtype in [np.dtype(d) for d in dtypes])


def _without(items, aliased):
    return [x for x in items if not any(x is a for a in aliased)]


def int_like_ok(x):
    return (x is not None and not isinstance(x, (bool, np.bool_))
            and hasattr(x, "__index__"))


def padding_ok(p, V):
    if p is None:
        return True, None
    if not int_like_ok(p):
        return False, None
    p = int(p.__index__())
    if not -V <= p < V:
        return False, None
    return True, p % V


# -- optimizers ----------------------------------------------------------------------------

OPT_KINDS = ("SGD", "SGDm", "Adagrad", "RowWiseAdagrad", "Adam", "AdamW")


def _pos(v, allow_zero):
    return (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
            and (v > 0 or (allow_zero and v == 0)))


def hyper_ok(name, value):
    if name == "betas":
        try:
            b1, b2 = (float(b) for b in value)
        except (TypeError, ValueError):
            return False
        return 0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0
    return _pos(value, allow_zero=name != "lr")


HYPER_NAMES = {
    "SGD": ("lr", "momentum"), "SGDm": ("lr", "momentum"),
    "Adagrad": ("lr", "eps", "initial_accumulator_value"),
    "RowWiseAdagrad": ("lr", "eps"), "Adam": ("lr", "betas", "eps"),
    "AdamW": ("lr", "betas", "eps", "weight_decay"),
}


def sparse_grad_ok(grad, weight):
    """The contract of step() on a layer's grad: a well-formed, finite SparseGrad."""
    try:
        rows, values = grad
    except (TypeError, ValueError):
        return False
    if not (type(rows) is np.ndarray and rows.dtype == np.int64 and rows.ndim == 1
            and rows.flags.c_contiguous):
        return False
    if not (type(values) is np.ndarray and values.dtype == weight.dtype
            and values.shape == (rows.size, weight.shape[1]) and values.flags.c_contiguous):
        return False
    if rows.size and (rows[0] < 0 or rows[-1] >= weight.shape[0]):
        return False
    if rows.size > 1 and not (rows[1:] > rows[:-1]).all():
        return False
    return bool(np.isfinite(values).all())


def optimizer_state_copy(opt):
    """A deep copy of an optimizer's state: {"steps": [...], "state": [(s1, s2), ...]}."""
    sd = opt.state_dict()
    return {"steps": list(sd["steps"]),
            "state": [[s["state1"].copy(), s["state2"].copy()] for s in sd["state"]]}


# =============================================================================================
# The harness
# =============================================================================================

def describe(x):
    """A short description of an argument, for failure reports."""
    if isinstance(x, np.ndarray):
        flags = ("C" if x.flags.c_contiguous else "nonC") + ("" if x.flags.writeable else ",RO")
        head = np.array2string(x.reshape(-1)[:8], threshold=8) if x.size else "[]"
        return f"ndarray {x.dtype.str}{x.shape} {flags} {head}"
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


def describe_args(args):
    return ", ".join(f"{k}={describe(v)}" for k, v in args.items())

def _get(x):
    return x() if callable(x) and not isinstance(x, np.ndarray) else x


class Ctx:
    """Counts per function, failures, the current case (for crash reports)."""

    def __init__(self, seed, threads, *, verbose=False, skip_known=False, progress=None):
        self.seed = seed
        self.threads = threads
        self.verbose = verbose
        self.skip_known = skip_known
        self.progress = progress          # np.memmap int64[2]: case, function id
        self.stats = defaultdict(Counter)
        self.failures = []
        self.case = -1
        self.cases = 0
        self.inject_crash = set()
        self.scenario = ""
        self.names = {}

    # -- bookkeeping --------------------------------------------------------------------------

    def begin(self, name):
        if self.progress is not None:
            fid = self.names.setdefault(name, len(self.names) + 1)
            self.progress[1] = fid
            self.progress[2] = 0
        if self.verbose:
            print(f"  call {name}", file=sys.stderr, flush=True)

    def record(self, name, status, detail=None):
        self.stats[name]["calls"] += status in ("valid", "raised", "wrong", "unexpected")
        self.stats[name][status] += 1
        if detail is not None:
            self.failures.append({"function": name, "kind": status, "case": self.case,
                                  "seed": self.seed, "scenario": self.scenario,
                                  "detail": detail[:2000]})
            if self.verbose:
                print(f"  !! {name} {status}: {detail}", file=sys.stderr, flush=True)

    @staticmethod
    def _note(note, args):
        return f"{note} args: {describe_args(args)}" if args else note

    def known(self, bug):
        """True when inputs of this known bug may be generated."""
        return not self.skip_known

    # -- the check of one call ----------------------------------------------------------------

    def call(self, name, expect, fn, check=None, inputs=(), state=(), allowed=ALLOWED,
             note="", args=None):
        """Run fn() and judge it; returns ("ok", result) / ("raised", exc) / ("fail", None).

        inputs: arrays (or getters) that must never change; state: arrays or getters (table,
        out, layer.grad, optimizer state) that must be bitwise unchanged after an exception.
        check(result) raises Wrong when a successful result is not the reference's.
        """
        self.begin(name)
        before_in = [fingerprint(_get(x)) for x in inputs]
        before_st = [fingerprint(_get(x)) for x in state]
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn()
        except allowed as exc:
            changed = [k for k, x in enumerate(state) if fingerprint(_get(x)) != before_st[k]]
            changed_in = [k for k, x in enumerate(inputs)
                          if fingerprint(_get(x)) != before_in[k]]
            what = f"{type(exc).__name__}: {exc}"
            if expect == VALID:
                self.record(name, "wrong", f"a valid call raised {what} {self._note(note, args)}")
                return "fail", None
            if changed or changed_in:
                self.record(name, "wrong", f"partial update (state {changed}, inputs "
                                           f"{changed_in}) after {what} {self._note(note, args)}")
                return "fail", None
            if not str(exc).strip():
                self.record(name, "wrong", f"{type(exc).__name__} without a message {self._note(note, args)}")
                return "fail", None
            self.record(name, "raised")
            return "raised", exc
        except Exception as exc:  # noqa: BLE001 - anything else is a finding
            self.record(name, "unexpected", f"{type(exc).__name__}: {exc} {self._note(note, args)}\n"
                                            + traceback.format_exc(limit=-4))
            return "fail", None
        if expect == INVALID:
            self.record(name, "wrong", f"an invalid call was accepted {self._note(note, args)}")
            return "fail", None
        try:
            with np.errstate(all="ignore"):
                if check is not None:
                    check(result)
                for k, x in enumerate(inputs):
                    require(fingerprint(_get(x)) == before_in[k], f"input {k} was modified")
        except Wrong as exc:
            self.record(name, "wrong", f"{exc} {self._note(note, args)}")
            return "fail", None
        self.record(name, "valid")
        return "ok", result


# =============================================================================================
# Generators
# =============================================================================================

def pick(rng, items, p=None):
    """One of items, uniformly or with (unnormalised) weights p."""
    if p is None:
        return items[int(rng.integers(len(items)))]
    x = rng.random() * sum(p)
    for item, w in zip(items, p):
        x -= w
        if x < 0:
            return item
    return items[-1]


def gen_dims(rng):
    V = int(pick(rng, [0, 1, 2, 3, 5, 17, 100, 1000], [1, 3, 3, 3, 5, 6, 6, 4]))
    D = int(pick(rng, [0, 1, 2, 3, 4, 7, 8, 16, 32], [1, 3, 3, 3, 4, 3, 4, 4, 3]))
    return V, D


def gen_shape(rng, max_total=2000):
    if rng.random() < 0.1:  # large enough for the parallel paths (N * D > 32768 with D=32)
        return (int(rng.integers(max_total // 2, max_total + 1)),)
    ndim = int(pick(rng, [0, 1, 2, 3], [1, 5, 3, 1]))
    shape = []
    for _ in range(ndim):
        shape.append(int(pick(rng, [0, 1, 2, 3, 4, 7, 16, 50], [1, 3, 3, 3, 2, 2, 2, 1])))
    while int(np.prod(shape, dtype=np.int64)) > max_total:
        shape[int(np.argmax(shape))] //= 2
    return tuple(shape)


SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 1e30, -1e30, 1e-45, 5e-324, 3.4e38]


def gen_floats(rng, shape, dtype, special_p=0.1):
    a = rng.standard_normal(shape).astype(dtype)
    if a.size and rng.random() < special_p:
        idx = rng.integers(0, a.size, int(rng.integers(1, 4)))
        with np.errstate(all="ignore"):
            a.reshape(-1)[idx] = np.array(
                [SPECIALS[int(rng.integers(len(SPECIALS)))] for _ in idx]).astype(dtype)
    return a


def gen_dtype(rng):
    return F32 if rng.random() < 0.6 else F64


def gen_table_arg(rng, V, D, dtype, special_p=0.05):
    """A table, or (15%) something that is not a valid table."""
    base = gen_floats(rng, (V, D), dtype, special_p)
    if rng.random() < 0.85:
        return base
    v = pick(rng, ["readonly", "noncontig", "fortran", "float16", "int32", "bigendian",
                   "list", "1d", "3d", "complex", "object"])
    if v == "readonly":
        base.flags.writeable = False
        return base
    if v == "noncontig":
        big = np.zeros((V, 2 * D + 1), dtype)
        big[:, :2 * D:2] = base
        return big[:, :2 * D:2]
    if v == "fortran":
        return np.asfortranarray(base)
    if v == "float16":
        return base.astype(np.float16)
    if v == "int32":
        return base.astype(np.int32)
    if v == "bigendian":
        return base.astype(base.dtype.newbyteorder(">"))
    if v == "list":
        return base.tolist()
    if v == "1d":
        return base.reshape(-1)
    if v == "3d":
        return base.reshape(V, D, 1)
    if v == "complex":
        return base.astype(np.complex64)
    return base.astype(object)


INT_DTYPES = ["int64", "int32", "int8", "int16", "uint8", "uint16", "uint32", "uint64",
              ">i8", ">i4"]
INT_P = [40, 25, 3, 3, 3, 3, 3, 4, 2, 2]


def gen_int_values(rng, V, size):
    hi = max(V, 1)
    if rng.random() < 0.2:
        hi = min(hi, 3)  # many repeats
    return rng.integers(0, hi, size)


def _bad_candidates(dt, V):
    info = np.iinfo(dt)
    c = [v for v in (V, V + 1, V + 1000, 2**31 - 1, 2**31, 2**32, 2**62, INT64_MAX, info.max)
         if v <= info.max]
    if info.min < 0:
        c += [v for v in (-1, -2, -V - 5, -2**31, -2**63, info.min) if v >= info.min]
    if dt == np.uint64:
        c += [2**63, 2**63 + 1, 2**64 - 1]
    return c


def gen_ids(rng, V, shape, bad_p=0.15, wrong_p=0.1):
    """Ids of the given shape: mostly integer arrays, some bad values and some wrong types."""
    size = int(np.prod(shape, dtype=np.int64))
    vals = gen_int_values(rng, V, size)
    r = rng.random()
    if r < wrong_p:
        form = pick(rng, ["float64", "float32", "float16", "bool", "object", "complex", "str",
                          "floatlist", "hugelist"])
        if form == "floatlist":
            return vals.astype(float).reshape(shape).tolist() if shape else float(vals[0]) \
                if size else []
        if form == "hugelist":
            lst = vals.tolist() + [2**70]
            return lst
        return vals.reshape(shape).astype({"object": object, "str": str}.get(form, form))
    if r < wrong_p + 0.08:  # a Python list (or a scalar) of ints
        lst = vals.reshape(shape).tolist()
        if size and rng.random() < bad_p and shape:
            flat = vals.tolist()
            flat[int(rng.integers(size))] = int(pick(rng, [-1, V, 2**63 - 1, 2**64 - 1, -2**63]))
            return np.array(flat, dtype=object).reshape(shape).tolist()
        return lst
    dt = np.dtype(pick(rng, INT_DTYPES, INT_P))
    info = np.iinfo(dt)
    if V > info.max:
        vals = vals % (info.max + 1)
    pyvals = vals.tolist()
    if size and rng.random() < bad_p:
        cand = _bad_candidates(dt, V)
        for _ in range(int(rng.integers(1, 3))):
            pyvals[int(rng.integers(size))] = int(cand[int(rng.integers(len(cand)))])
    arr = np.array(pyvals, dtype=dt).reshape(shape)
    r = rng.random()
    if r < 0.1 and arr.ndim >= 1:  # non-contiguous
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), dt)
        big[..., ::2] = arr
        arr = big[..., ::2]
    elif r < 0.15 and arr.ndim >= 2:
        arr = np.ascontiguousarray(np.swapaxes(arr, 0, 1)).swapaxes(0, 1)
    if rng.random() < 0.05:
        arr.flags.writeable = False
    return arr


def gen_threads(rng, ctx):
    r = rng.random()
    if r < 0.45:
        return None
    if r < 0.6:
        return 1
    if r < 0.75:
        return ctx.threads
    if r < 0.83:
        return -1
    if r < 0.93:
        return pick(rng, [2, np.int64(2), 10**6])
    return pick(rng, [0, 1.5, True, "2", np.float64(2.0)])


def gen_out(rng, shape, dtype, weight=None, ids=None, p=0.3):
    """None (mostly), a right out, or a wrong one."""
    r = rng.random()
    if r > p:
        return None
    if r < p / 2:
        return np.full(shape, 7, dtype)
    v = pick(rng, ["shape", "dtype", "noncontig", "readonly", "overlap_weight", "overlap_ids",
                   "list", "bigendian"])
    if v == "shape":
        return np.zeros(tuple(shape) + (1,), dtype) if rng.random() < 0.5 else \
            np.zeros(tuple(s + 1 for s in shape), dtype)
    if v == "dtype":
        return np.zeros(shape, F64 if dtype == F32 else F32)
    if v == "noncontig":
        if not shape or shape[-1] == 0:
            return np.zeros(shape, dtype)
        big = np.zeros(tuple(shape[:-1]) + (2 * shape[-1],), dtype)
        return big[..., ::2]
    if v == "readonly":
        o = np.zeros(shape, dtype)
        o.flags.writeable = False
        return o
    if v == "overlap_weight" and isinstance(weight, np.ndarray) and weight.dtype == dtype \
            and weight.flags.c_contiguous and 0 < int(np.prod(shape)) <= weight.size:
        return weight.reshape(-1)[:int(np.prod(shape))].reshape(shape)
    if v == "overlap_ids" and isinstance(ids, np.ndarray) and ids.flags.c_contiguous \
            and not ids.dtype.hasobject \
            and ids.size and ids.dtype.itemsize * ids.size >= np.dtype(dtype).itemsize \
            and int(np.prod(shape)) * np.dtype(dtype).itemsize <= ids.nbytes:
        return ids.reshape(-1).view(np.uint8)[:int(np.prod(shape)) * np.dtype(dtype).itemsize] \
            .view(dtype).reshape(shape) if ids.flags.writeable else None
    if v == "list":
        return np.zeros(shape, dtype).tolist()
    if v == "bigendian":
        return np.zeros(shape, np.dtype(dtype).newbyteorder(">"))
    return np.zeros(shape, dtype)


def gen_grad(rng, shape, dtype, special_p=0.1):
    """A gradient of the given shape and dtype, or (15%) a wrong or unusual one."""
    g = gen_floats(rng, shape, dtype, special_p)
    r = rng.random()
    if r < 0.85:
        return g
    v = pick(rng, ["dtype", "shape", "noncontig", "readonly", "list", "float16", "int",
                   "fewer_dims", "bigendian"])
    if v == "dtype":
        return g.astype(F64 if dtype == F32 else F32)
    if v == "shape":
        return gen_floats(rng, tuple(shape[:-1]) + (shape[-1] + 1,), dtype) if shape else \
            gen_floats(rng, (1,), dtype)
    if v == "noncontig":
        if not shape or shape[-1] == 0:
            return g
        big = np.zeros(tuple(shape[:-1]) + (2 * shape[-1],), dtype)
        big[..., ::2] = g
        return big[..., ::2]
    if v == "readonly":
        g.flags.writeable = False
        return g
    if v == "list":
        return g.tolist()
    if v == "float16":
        return g.astype(np.float16)
    if v == "int":
        return g.astype(np.int64)
    if v == "fewer_dims":
        return g.reshape(-1) if g.ndim != 1 else g.reshape(1, -1, 1)
    return g.astype(g.dtype.newbyteorder(">"))


def grad_ok(grad, shape, dtype):
    """(ok, contiguous 2-D float copy or None): a gradient of shape + dtype, array-like."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = np.asarray(grad)
    except Exception:
        return False, None
    if a.dtype != dtype or a.shape != tuple(shape):
        return False, None
    n = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) else 0
    return True, np.ascontiguousarray(a).reshape(n, shape[-1]).copy()


# =============================================================================================
# Scenarios: the functional API
# =============================================================================================

def sc_gather(ctx, rng):
    V, D = gen_dims(rng)
    dtype = gen_dtype(rng)
    weight = gen_table_arg(rng, V, D, dtype)
    shape = gen_shape(rng)
    ids = gen_ids(rng, V, shape)
    out = gen_out(rng, tuple(np.shape(ids)) + (D,) if isinstance(ids, np.ndarray) else
                  shape + (D,), dtype, weight, ids)
    nt = gen_threads(rng, ctx)
    ok = table_ok(weight) and threads_ok(nt)
    ok_ids, ishape, flat = classify_ids(ids, V)
    ok = ok and ok_ids
    expect, aliased = INVALID, []
    if ok:
        native = isinstance(ids, np.ndarray) and ids.dtype.isnative
        expect, aliased = out_status(out, ishape + (D,), weight.dtype, (weight,),
                                     [ids] if native else [], [ids] if not native else [])
    ok = expect != INVALID
    expected = ref_gather(weight, flat.reshape(ishape)) if ok else None

    def check(res):
        if out is not None:
            require(res is out, "gather did not return out")
        require_bits(res, expected, "gather result")

    ctx.call("gather", expect,
             lambda: fastembed.gather(weight, ids, out=out, n_threads=nt), check,
             inputs=_without([weight, ids], aliased), state=[out],
             args=dict(weight=weight, ids=ids, out=out, n_threads=nt))


def sc_scatter_add(ctx, rng):
    V, D = gen_dims(rng)
    dtype = gen_dtype(rng)
    out = gen_table_arg(rng, V, D, dtype)
    shape = gen_shape(rng)
    ids = gen_ids(rng, V, shape)
    gshape = (tuple(ids.shape) if isinstance(ids, np.ndarray) else shape) + (D,)
    grad = gen_grad(rng, gshape, dtype)
    expect = VALID
    if rng.random() < 0.03 and isinstance(out, np.ndarray) and out.size and \
            out.flags.c_contiguous and int(np.prod(gshape)) <= out.size:
        # grad that views the table itself
        grad = out.reshape(-1)[:int(np.prod(gshape))].reshape(gshape)
        expect = EITHER
    nt = gen_threads(rng, ctx)
    ok = table_ok(out, writeable=True) and threads_ok(nt)
    ok_ids, ishape, flat = classify_ids(ids, V)
    ok = ok and ok_ids
    gok, g2d = grad_ok(grad, ishape + (D,), out.dtype) if ok else (False, None)
    ok = ok and gok
    if ok and isinstance(ids, np.ndarray) and np.may_share_memory(out, ids):
        ok = False
    if ok and expect != EITHER and isinstance(grad, np.ndarray) and \
            np.may_share_memory(out, grad):
        ok = False
    expected = ref_scatter_add(out, flat, g2d) if ok else None
    inputs = [ids] + ([grad] if expect != EITHER else [])

    def check(res):
        require(res is out, "scatter_add did not return out")
        require_bits(out, expected, "scatter_add table")

    ctx.call("scatter_add", (expect if ok else INVALID),
             lambda: fastembed.scatter_add(out, ids, grad, n_threads=nt), check,
             inputs=inputs, state=[out])


def sc_coalesce(ctx, rng):
    V, D = gen_dims(rng)
    dtype = gen_dtype(rng)
    shape = gen_shape(rng)
    r = rng.random()
    if r < 0.35:
        num = None
    elif r < 0.85:
        num = V
    else:
        num = pick(rng, [np.int64(V), 2**62, 2**63, 2**64, 10**30, -1, 1.5, True, "3",
                         np.uint8(3)])
    if (isinstance(num, int) and num >= 2**64 and not isinstance(num, bool)
            and not ctx.known("coalesce-huge-num-embeddings")):
        num = 2**62
    ids = gen_ids(rng, V if num is not None else max(V, 1), shape)
    if num is None and isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.size \
            and rng.random() < 0.2:
        ids = ids.copy()
        ids.reshape(-1)[int(rng.integers(ids.size))] = pick(rng, [2**62, INT64_MAX, 10**12])
    gshape = (tuple(ids.shape) if isinstance(ids, np.ndarray) else shape) + (D,)
    grad = gen_grad(rng, gshape, dtype)
    nt = gen_threads(rng, ctx)
    if num is None:
        limit, ok = None, True
    else:
        ok = int_like_ok(num) and int(num.__index__()) >= 0
        limit = int(num.__index__()) if ok else None
    ok_ids, ishape, flat = classify_ids(ids, limit)
    ok = ok and ok_ids and threads_ok(nt)
    if ok:
        try:
            g = np.asarray(grad)
        except Exception:
            g = None
        ok = (g is not None and g.dtype in FLOATS and g.dtype.isnative
              and g.shape == tuple(ishape) + ((g.shape[-1],) if g.ndim else ()) and
              g.ndim == len(ishape) + 1)
    expected = None
    if ok:
        n = int(np.prod(ishape, dtype=np.int64))
        g2d = np.ascontiguousarray(g).reshape(n, g.shape[-1])
        expected = ref_coalesce(flat, g2d)

    def check(res):
        require(isinstance(res, fastembed.SparseGrad), "coalesce did not return a SparseGrad")
        require_grad(res, expected, "coalesce")

    ctx.call("coalesce", VALID if ok else INVALID,
             lambda: fastembed.coalesce(ids, grad, num_embeddings=num, n_threads=nt), check,
             inputs=[ids, grad])


# -- bags ----------------------------------------------------------------------------------

def gen_bag_args(rng, V, dtype, mode, *, clean=False):
    """(ids, offsets, include_last, psw) for a bag call, valid or (unless clean) broken."""
    bad_p, wrong_p, defect_p = (0.0, 0.0, 0.0) if clean else (0.08, 0.05, 1.0)
    r = rng.random()
    include_last = False
    if r < 0.4:  # 2-D ids
        B = int(pick(rng, [0, 1, 2, 5, 20, 60]))
        L = int(pick(rng, [0, 1, 2, 3, 8, 30]))
        if rng.random() < 0.05:
            B, L = 1000, 32
        ids = gen_ids(rng, V, (B, L), bad_p=bad_p, wrong_p=wrong_p)
        offsets = None
        if rng.random() < 0.05 * defect_p:
            offsets = np.array([0])     # offsets with 2-D ids: invalid
        if rng.random() < 0.03 * defect_p:
            include_last = True         # include_last_offset without offsets: invalid
        shape = (B, L)
    else:
        N = int(pick(rng, [0, 1, 2, 5, 20, 100, 400, 2000], [1, 2, 2, 3, 3, 3, 2, 1]))
        ids = gen_ids(rng, V, (N,), bad_p=bad_p, wrong_p=wrong_p)
        B = int(pick(rng, [0, 1, 2, 3, 10, 50]))
        if N and B == 0 and rng.random() < 0.8:
            B = 1
        cuts = np.sort(rng.integers(0, N + 1, max(B - 1, 0)))
        offs = np.concatenate([[0] if B else [], cuts]).astype(np.int64)
        include_last = rng.random() < 0.3
        if include_last:
            offs = np.append(offs, N)
        if rng.random() < 0.15 * defect_p:
            v = pick(rng, ["decreasing", "first", "beyond", "lastwrong", "empty", "2d",
                           "float", "uint64huge", "negative", "list", "int32", "uint8",
                           "noncontig"])
            offs = offs.copy()
            if v == "decreasing" and offs.size >= 3:
                offs[1], offs[2] = offs[2] + 1, offs[1]
            elif v == "first" and offs.size:
                offs[0] = 1
            elif v == "beyond" and offs.size:
                offs[-1] = N + 3
            elif v == "lastwrong" and offs.size:
                offs[-1] = max(N - 1, 0) if N else 1
            elif v == "empty":
                offs = offs[:0]
            elif v == "2d":
                offs = offs.reshape(1, -1)
            elif v == "float":
                offs = offs.astype(float)
            elif v == "uint64huge":
                offs = np.append(offs, 2**64 - 1).astype(np.uint64)
            elif v == "negative" and offs.size:
                offs[-1] = -1
            elif v == "list":
                offs = offs.tolist()
            elif v == "int32":
                offs = offs.astype(np.int32)
            elif v == "uint8" and (not offs.size or offs.max() < 256):
                offs = offs.astype(np.uint8)
            elif v == "noncontig" and offs.size:
                big = np.zeros(2 * offs.size, np.int64)
                big[::2] = offs
                offs = big[::2]
        offsets = offs
        if rng.random() < 0.03 * defect_p:
            ids = np.asarray(ids).reshape(-1, 1) if isinstance(ids, np.ndarray) else ids
        shape = (N,)
    psw = None
    if rng.random() < 0.35:
        psw = gen_floats(rng, np.shape(ids) if isinstance(ids, np.ndarray) else shape, dtype,
                         special_p=0.1)
        if psw.size and rng.random() < 0.2:   # weights that cancel: mean bags of zero weight
            psw.reshape(-1)[:] = np.where(np.arange(psw.size) % 2, -1, 1)
            if psw.size % 2:
                psw.reshape(-1)[-1] = 0
        if rng.random() < 0.15 * defect_p:
            v = pick(rng, ["dtype", "shape", "list", "noncontig", "int"])
            if v == "dtype":
                psw = psw.astype(F64 if dtype == F32 else F32)
            elif v == "shape":
                psw = np.append(psw.reshape(-1), dtype.type(1))
            elif v == "list":
                psw = psw.tolist()
            elif v == "noncontig" and psw.ndim >= 1 and psw.size:
                big = np.zeros(psw.shape[:-1] + (2 * psw.shape[-1],), psw.dtype)
                big[..., ::2] = psw
                psw = big[..., ::2]
            elif v == "int":
                psw = psw.astype(np.int64)
    return ids, offsets, include_last, psw


def gen_padding(rng, V):
    r = rng.random()
    if r < 0.6 or V == 0:
        return None if r < 0.9 else pick(rng, [0, -1, True, 1.0])
    if r < 0.9:
        p = int(rng.integers(0, V))
        return p if rng.random() < 0.7 else p - V
    return pick(rng, [V, -V - 1, True, 1.5, np.int32(min(V - 1, 3)), "0"])


def classify_bag(ids, offsets, include_last, psw, mode, dtype, V):
    """None (invalid), or (flat, offs, psw flat or None, ids shape) by the contract."""
    if not (isinstance(mode, str) and mode in ("sum", "mean", "max")):
        return None
    ok, ishape, flat = classify_ids(ids, V)
    if not ok:
        return None
    n = flat.size
    if offsets is None:
        if len(ishape) != 2 or include_last:
            return None
        offs = np.arange(ishape[0] + 1, dtype=np.int64) * ishape[1]
    else:
        if len(ishape) != 1:
            return None
        ok, oshape, off = classify_ids(offsets, None)
        if off is None or len(oshape) != 1:
            return None
        if oshape[0] and off.min() < 0:  # negative offsets: never valid
            return None
        if include_last:
            if off.size == 0 or off[-1] != n:
                return None
            offs = off
        else:
            offs = np.append(off, n)
        if offs.size > 1 and offs[0] != 0:
            return None
        if offs.size == 1 and n:
            return None
        if (np.diff(offs) < 0).any():
            return None
    w = None
    if psw is not None:
        if mode == "max":
            return None
        try:
            w = np.asarray(psw)
        except Exception:
            return None
        if w.dtype != dtype or w.shape != tuple(ishape):
            return None
        w = np.ascontiguousarray(w).reshape(-1).copy()
    return flat, offs.astype(np.int64), w, tuple(ishape)


def bag_out_status(out, shape, weight, ids, offsets, psw):
    detected = [a for a in (ids,) if used_in_place(a)]
    if used_in_place(psw, (weight.dtype,)):
        detected.append(psw)
    undetected = [a for a in (ids, offsets, psw)
                  if isinstance(a, np.ndarray) and not any(a is d for d in detected)]
    return out_status(out, shape, weight.dtype, (weight,), detected, undetected)


def sc_embedding_bag(ctx, rng):
    V, D = gen_dims(rng)
    dtype = gen_dtype(rng)
    weight = gen_table_arg(rng, V, D, dtype)
    mode = pick(rng, ["sum", "mean", "max", "min", None], [30, 40, 25, 3, 2])
    ids, offsets, include_last, psw = gen_bag_args(rng, V, dtype, mode)
    pad = gen_padding(rng, V)
    nt = gen_threads(rng, ctx)
    layout = classify_bag(ids, offsets, include_last, psw, mode, dtype, V) \
        if table_ok(weight) else None
    pok, padr = padding_ok(pad, V)
    ok = layout is not None and pok and threads_ok(nt)
    B = layout[1].size - 1 if layout is not None else 1
    out = gen_out(rng, (B, D), dtype, weight, ids if isinstance(ids, np.ndarray) else None,
                  p=0.2)
    expect, aliased = INVALID, []
    if ok:
        expect, aliased = bag_out_status(out, (B, D), weight, ids, offsets, psw)
    ok = expect != INVALID
    expected = None
    if ok:
        flat, offs, w, _ = layout
        expected = ref_bag_forward(weight, flat, offs, mode, padr, w)[0]

    def check(res):
        if out is not None:
            require(res is out, "embedding_bag did not return out")
        require_bits(res, expected, f"embedding_bag({mode})")

    ctx.call("embedding_bag", expect,
             lambda: fastembed.embedding_bag(weight, ids, offsets, mode=mode,
                                             per_sample_weights=psw,
                                             include_last_offset=include_last,
                                             padding_idx=pad, out=out, n_threads=nt),
             check, inputs=_without([weight, ids, offsets, psw], aliased), state=[out],
             args=dict(weight=weight, ids=ids, offsets=offsets, mode=mode,
                       per_sample_weights=psw, include_last_offset=include_last,
                       padding_idx=pad, out=out, n_threads=nt))


# =============================================================================================
# Scenarios: layers and optimizers, against a NumPy model of both
# =============================================================================================

class LayerModel:
    """What a layer should hold: its table, its gradient, what its last forward saw."""

    def __init__(self, layer, is_bag, mode, pad, by_freq, max_norm, norm_type, input_length,
                 trainable):
        self.layer = layer
        self.is_bag = is_bag
        self.name = "EmbeddingBag" if is_bag else "Embedding"
        self.mode = mode
        self.pad = pad
        self.by_freq = by_freq
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.input_length = input_length
        self.trainable = trainable
        self.weight = layer.weight.copy()
        self.grad = None        # (rows, values) or None
        self.raw_grad = None    # a hand-made layer.grad (any object), if one was set
        self.last = None        # Embedding: (shape, flat); bag: dict
        self.last_args = ()     # the caller's arrays of the last forward (to scribble on)

    @property
    def dtype(self):
        return self.weight.dtype

    def grad_for_step(self):
        """(present, ok, rows, values) of the gradient a step would apply."""
        g = self.raw_grad if self.raw_grad is not None else self.grad
        if g is None:
            return False, True, None, None
        if self.raw_grad is not None:
            if not sparse_grad_ok(g, self.weight):
                return True, False, None, None
            return True, True, g[0].copy(), g[1].copy()
        return True, bool(np.isfinite(g[1]).all()), g[0], g[1]


class OptModel:
    def __init__(self, opt, kind):
        self.kind = kind
        self.cls = type(opt).__name__
        self.hyper = {name: getattr(opt, name) for name in HYPER_NAMES[kind]}
        st = optimizer_state_copy(opt)
        self.steps = st["steps"]
        self.state = st["state"]

    def hyper_ok(self):
        return all(hyper_ok(n, v) for n, v in self.hyper.items())

    def ensure_state(self, k, weight):
        if self.kind in ("SGD", "SGDm") and self.hyper["momentum"] and \
                self.state[k][0].shape != weight.shape:
            self.state[k][0] = np.zeros_like(weight)

    def apply(self, k, lm, rows, values):
        self.ensure_state(k, lm.weight)
        self.steps[k] += 1
        s1, s2 = self.state[k]
        ref_optimizer_update(self.cls, self.hyper, lm.weight, rows, values, s1, s2,
                             self.steps[k])


def make_layer(rng, ctx, is_bag):
    V, D = gen_dims(rng)
    if V == 0 and rng.random() < 0.8:
        V = 5
    dtype = gen_dtype(rng)
    mode = pick(rng, ["sum", "mean", "max"]) if is_bag else None
    pad = None
    if V and rng.random() < 0.3:
        pad = int(rng.integers(-V, V))
    by_freq = rng.random() < 0.2 and mode != "max"
    max_norm, norm_type = None, 2.0
    if rng.random() < 0.1:
        max_norm = float(pick(rng, [0.5, 1.0, 3.0]))
        norm_type = float(pick(rng, [2.0, 1.0, np.inf, 3.0]))
    input_length = None
    if not is_bag and rng.random() < 0.05:
        input_length = int(pick(rng, [1, 2, 3]))
    trainable = rng.random() > 0.04
    weight = gen_floats(rng, (V, D), dtype, special_p=0.02)
    if is_bag:
        layer = EmbeddingBag(weight=weight, mode=mode, padding_idx=pad, max_norm=max_norm,
                             norm_type=norm_type, scale_grad_by_freq=by_freq,
                             trainable=trainable)
    else:
        layer = Embedding(weight=weight, padding_idx=pad, max_norm=max_norm,
                          norm_type=norm_type, scale_grad_by_freq=by_freq,
                          input_length=input_length, trainable=trainable)
    return LayerModel(layer, is_bag, mode, None if pad is None else pad % V, by_freq,
                      max_norm, norm_type, input_length, trainable)


def make_optimizer(rng, ctx, layers):
    kind = pick(rng, list(OPT_KINDS))
    lr = float(pick(rng, [0.01, 0.1, 0.5, 1e-3]))
    nt = pick(rng, [None, 1, ctx.threads, -1])
    if kind == "SGD":
        opt = optim.SGD(layers, lr=lr, n_threads=nt)
    elif kind == "SGDm":
        opt = optim.SGD(layers, lr=lr, momentum=float(pick(rng, [0.5, 0.9, 0.0])),
                        n_threads=nt)
    elif kind == "Adagrad":
        opt = optim.Adagrad(layers, lr=lr, eps=float(pick(rng, [1e-10, 0.0, 1e-3])),
                            initial_accumulator_value=float(pick(rng, [0.0, 0.1])),
                            n_threads=nt)
    elif kind == "RowWiseAdagrad":
        opt = optim.RowWiseAdagrad(layers, lr=lr, eps=float(pick(rng, [1e-10, 0.0, 1e-3])),
                                   n_threads=nt)
    elif kind == "Adam":
        opt = optim.Adam(layers, lr=lr, betas=pick(rng, [(0.9, 0.999), (0.0, 0.5)]),
                         eps=float(pick(rng, [1e-8, 0.0])), n_threads=nt)
    else:
        opt = optim.AdamW(layers, lr=lr, betas=pick(rng, [(0.9, 0.999), (0.5, 0.0)]),
                          eps=float(pick(rng, [1e-8, 1e-3])),
                          weight_decay=float(pick(rng, [0.01, 0.0, 0.5])), n_threads=nt)
    return opt, OptModel(opt, kind)


def check_models(lms, om, opt):
    for k, lm in enumerate(lms):
        require_bits(lm.layer.weight, lm.weight, f"layer {k} ({lm.name}) weight")
        if lm.raw_grad is not None:
            require(lm.layer.grad is lm.raw_grad, f"layer {k} grad was replaced")
        else:
            require_grad(lm.layer.grad, lm.grad, f"layer {k} ({lm.name}) grad")
    sd = opt.state_dict()
    require(list(sd["steps"]) == om.steps, f"optimizer steps {sd['steps']} != {om.steps}")
    for k, s in enumerate(sd["state"]):
        require_bits(s["state1"], om.state[k][0], f"optimizer state1 of layer {k}")
        require_bits(s["state2"], om.state[k][1], f"optimizer state2 of layer {k}")


def op_forward(ctx, rng, lms, om, opt, lm):
    layer = lm.layer
    V, D = lm.weight.shape
    clean = rng.random() < 0.6
    nt = gen_threads(rng, ctx) if not clean else pick(rng, [None, 1, ctx.threads])
    if lm.is_bag:
        ids, offsets, include_last, psw = gen_bag_args(rng, V, lm.dtype, lm.mode, clean=clean)
        layout = classify_bag(ids, offsets, include_last, psw, lm.mode, lm.dtype, V)
        ok = layout is not None and threads_ok(nt)
        B = layout[1].size - 1 if layout is not None else 1
        out = gen_out(rng, (B, D), lm.dtype, layer.weight,
                      ids if isinstance(ids, np.ndarray) else None, p=0 if clean else 0.15)
        expect, aliased = INVALID, []
        if ok:
            expect, aliased = bag_out_status(out, (B, D), layer.weight, ids, offsets, psw)
        fn = lambda: layer.forward(ids, offsets, psw, include_last, out=out, n_threads=nt)  # noqa: E731
        args = (ids, offsets, psw)
    else:
        shape = gen_shape(rng)
        if lm.input_length is not None and (clean or rng.random() < 0.7):
            shape = (shape[0] if shape else 2, lm.input_length)
        ids = gen_ids(rng, V, shape, bad_p=0 if clean else 0.08, wrong_p=0 if clean else 0.04)
        ok_ids, ishape, flat = classify_ids(ids, V)
        ok = ok_ids and threads_ok(nt)
        if ok and lm.input_length is not None:
            ok = len(ishape) > 0 and ishape[-1] == lm.input_length
        out = gen_out(rng, (tuple(ishape) if ishape is not None else ()) + (D,), lm.dtype,
                      layer.weight, ids if isinstance(ids, np.ndarray) else None,
                      p=0 if clean else 0.15)
        expect, aliased = INVALID, []
        if ok:
            native = isinstance(ids, np.ndarray) and ids.dtype.isnative
            expect, aliased = out_status(out, tuple(ishape) + (D,), lm.dtype, (layer.weight,),
                                         [ids] if native else [], [ids] if not native else [])
        fn = lambda: layer.forward(ids, out=out, n_threads=nt)  # noqa: E731
        args = (ids,)
    new_weight = expected = last = None
    ok = expect != INVALID
    if ok:
        if lm.is_bag:
            flat, offs, w, _ = layout
        new_weight = lm.weight if lm.max_norm is None else \
            ref_renorm(lm.weight, flat, lm.max_norm, lm.norm_type)
        if lm.is_bag:
            expected, denom, argmax = ref_bag_forward(new_weight, flat, offs, lm.mode, lm.pad,
                                                      w)
            last = {"flat": flat.copy(), "offs": offs, "psw": w, "denom": denom,
                    "argmax": argmax}
        else:
            expected = ref_gather(new_weight, flat.reshape(ishape))
            last = (tuple(ishape), flat.copy())

    def check(res):
        if out is not None:
            require(res is out, "forward did not return out")
        require_bits(res, expected, f"{lm.name}.forward result")
        lm.weight = new_weight.copy() if new_weight is not lm.weight else lm.weight
        check_models(lms, om, opt)

    status, _ = ctx.call(f"{lm.name}.forward", expect, fn, check,
                         inputs=_without(list(args), aliased),
                         state=_model_state(lms, opt, out), args=dict(zip(
                             ("ids", "offsets", "per_sample_weights"), args), out=out,
                             n_threads=nt),
                         note=f"(mode={lm.mode}, pad={lm.pad}, max_norm={lm.max_norm})")
    if status == "ok":
        lm.last = last
        lm.last_args = args
    return status


def _model_state(lms, opt, *extra):
    return ([lambda: [lm.layer.weight for lm in lms],
             lambda: [lm.layer.grad for lm in lms],
             lambda: opt.state_dict()] + [e for e in extra if e is not None])


def _grad_output_shape(lm):
    D = lm.weight.shape[1]
    if lm.last is None:
        return (2, D)
    if lm.is_bag:
        return (lm.last["offs"].size - 1, D)
    return tuple(lm.last[0]) + (D,)


def _backward_ref(lm, g2d):
    """The SparseGrad (rows, values) one backward of the last forward gives."""
    if lm.is_bag:
        L = lm.last
        return ref_bag_backward(L["flat"], L["offs"], lm.mode, g2d, L["denom"], L["argmax"],
                                lm.pad, L["psw"], lm.by_freq)
    return ref_embedding_backward(lm.last[1], g2d, lm.pad, lm.by_freq)


def op_backward(ctx, rng, lms, om, opt, lm):
    layer = lm.layer
    D = lm.weight.shape[1]
    if lm.raw_grad is not None:
        return "skip"   # backward merges into layer.grad: only with a well-formed one
    nt = gen_threads(rng, ctx)
    explicit = None
    allowed = ALLOWED
    shape = _grad_output_shape(lm)
    if not lm.is_bag and (lm.last is None or rng.random() < 0.2):
        explicit = gen_ids(rng, lm.weight.shape[0], gen_shape(rng, 500), bad_p=0.08,
                           wrong_p=0.04)
        ok_ids, ishape, flat = classify_ids(explicit, lm.weight.shape[0])
        shape = (tuple(ishape) if ishape is not None else (1,)) + (D,)
    g = gen_grad(rng, shape, lm.dtype, special_p=0.1)
    if not lm.trainable:
        ok, expected_ret = True, None
    elif lm.is_bag or explicit is None:
        if lm.last is None:
            ok, allowed = False, ALLOWED + (RuntimeError,)
        else:
            gok, g2d = grad_ok(g, shape, lm.dtype)
            ok = gok and threads_ok(nt)
            flat = None if lm.is_bag else lm.last[1]
    else:
        ok = ok_ids and threads_ok(nt)
        if ok and lm.input_length is not None:
            ok = len(ishape) > 0 and ishape[-1] == lm.input_length
        if ok:
            gok, g2d = grad_ok(g, shape, lm.dtype)
            ok = gok
    new_grad = None
    if ok and lm.trainable:
        if explicit is not None:
            expected_ret = ref_embedding_backward(flat, g2d, lm.pad, lm.by_freq)
        else:
            expected_ret = _backward_ref(lm, g2d)
        new_grad = ref_merge_grads(lm.grad, expected_ret)

    def check(res):
        require_grad(res, expected_ret, f"{lm.name}.backward result")
        if lm.trainable:
            lm.grad = new_grad
        check_models(lms, om, opt)

    fn = (lambda: layer.backward(g, n_threads=nt)) if explicit is None else \
        (lambda: layer.backward(g, explicit, n_threads=nt))
    return ctx.call(f"{lm.name}.backward", VALID if ok else INVALID, fn, check,
                    inputs=[g, explicit], state=_model_state(lms, opt), allowed=allowed,
                    note=f"(mode={lm.mode}, pad={lm.pad}, by_freq={lm.by_freq})")[0]


def op_step(ctx, rng, lms, om, opt):
    todo = []
    ok = om.hyper_ok()
    for k, lm in enumerate(lms):
        present, gok, rows, values = lm.grad_for_step()
        if present:
            ok = ok and gok
            todo.append((k, lm, rows, values))

    def check(res):
        for k, lm, rows, values in todo:
            om.apply(k, lm, rows, values)
        check_models(lms, om, opt)

    return ctx.call(f"{om.cls}.step", VALID if ok else INVALID, opt.step, check,
                    state=_model_state(lms, opt), note=f"({om.kind}, hyper={om.hyper})")[0]


def op_fused(ctx, rng, lms, om, opt, lm):
    layer = lm.layer
    k = lms.index(lm)
    shape = _grad_output_shape(lm)
    g = gen_grad(rng, shape, lm.dtype, special_p=0.15)
    nt = gen_threads(rng, ctx)
    allowed = ALLOWED
    expect = VALID
    why = ""
    if not lm.trainable or lm.grad is not None or lm.raw_grad is not None or lm.last is None:
        expect, allowed = INVALID, ALLOWED + (RuntimeError,)
    else:
        gok, g2d = grad_ok(g, shape, lm.dtype)
        if not (gok and threads_ok(nt) and om.hyper_ok()):
            expect = INVALID
    rows = values = None
    if expect == VALID:
        # backward_and_step is backward() + step(): it refuses exactly the calls whose summed
        # gradient (padding left out, divided by counts with scale_grad_by_freq) is not
        # finite, as step() refuses it; a non-finite grad_output row or per-sample weight
        # that reaches a sum makes it non-finite, and one that reaches none is harmless.
        rows, values = _backward_ref(lm, g2d)
        finite_sum = bool(np.isfinite(values).all())
        why = f"finite sum {finite_sum}"
        expect = VALID if finite_sum else INVALID

    def check(res):
        require(res is None, "backward_and_step returned something")
        om.apply(k, lm, rows, values)
        check_models(lms, om, opt)

    return ctx.call(f"{lm.name}.backward_and_step", expect,
                    lambda: layer.backward_and_step(g, opt, n_threads=nt),
                    check if expect != INVALID else None, inputs=[g],
                    state=_model_state(lms, opt), allowed=allowed,
                    note=f"({om.kind}, mode={lm.mode}, pad={lm.pad}, by_freq={lm.by_freq}; "
                         f"{why})")[0]


HYPER_VALUES = {
    "lr": ([0.05, 0.2, 1e-3], [-1.0, 0.0, float("nan"), float("inf"), True, "0.1", None]),
    "momentum": ([0.0, 0.9, 0.5], [-0.1, float("nan"), "x"]),
    "eps": ([1e-8, 0.0, 1e-3], [-1e-8, float("inf")]),
    "initial_accumulator_value": ([0.0, 0.1], [-1.0]),
    "betas": ([(0.9, 0.999), (0.5, 0.9), (0.0, 0.0)],
              [(1.0, 0.9), (0.9, -0.1), (0.9,), None, "ab"]),
    "weight_decay": ([0.0, 0.01, 0.1], [-0.01, float("nan")]),
}


def op_set_hyper(ctx, rng, lms, om, opt):
    name = pick(rng, list(HYPER_NAMES[om.kind]))
    good, bad = HYPER_VALUES[name]
    value = pick(rng, bad) if rng.random() < 0.3 else pick(rng, good)
    if name == "momentum" and om.kind == "SGD" and rng.random() < 0.5:
        value = 0.9       # momentum turned on after construction: the buffer comes lazily
    if name == "momentum" and hyper_ok(name, value) and value and \
            not ctx.known("momentum-state") and \
            any(st[0].shape != lm.weight.shape for st, lm in zip(om.state, lms)):
        value = 0.0       # known bug: a fused step that raises would create the buffer
    setattr(opt, name, value)
    om.hyper[name] = value
    return "ok"


def gen_sparse_grad(rng, lm):
    V, D = lm.weight.shape
    U = int(rng.integers(0, min(V, 8) + 1))
    rows = np.sort(rng.choice(V, U, replace=False)).astype(np.int64) if V else \
        np.zeros(0, np.int64)
    values = gen_floats(rng, (U, D), lm.dtype, special_p=0.1)
    if rng.random() < 0.6:
        return fastembed.SparseGrad(rows, values)
    v = pick(rng, ["tuple", "oob", "negative", "dup", "unsorted", "narrow", "dtype", "int32",
                   "str", "none3", "noncontig", "list"])
    if v == "tuple":
        return (rows, values)
    if v == "oob":
        return fastembed.SparseGrad(np.append(rows, V + int(rng.integers(0, 10**9))),
                                    gen_floats(rng, (U + 1, D), lm.dtype))
    if v == "negative":
        return fastembed.SparseGrad(np.array([-1], np.int64), gen_floats(rng, (1, D), lm.dtype))
    if v == "dup" and U:
        return fastembed.SparseGrad(np.append(rows, rows[-1]),
                                    gen_floats(rng, (U + 1, D), lm.dtype))
    if v == "unsorted" and U > 1:
        return fastembed.SparseGrad(rows[::-1].copy(), values)
    if v == "narrow":
        return fastembed.SparseGrad(rows, gen_floats(rng, (U, D + 1), lm.dtype))
    if v == "dtype":
        return fastembed.SparseGrad(rows, values.astype(F64 if lm.dtype == F32 else F32))
    if v == "int32":
        return fastembed.SparseGrad(rows.astype(np.int32), values)
    if v == "str":
        return "not a gradient"
    if v == "none3":
        return (rows, values, None)
    if v == "noncontig" and U > 1 and D > 1:
        return fastembed.SparseGrad(rows, np.asfortranarray(values))
    if v == "list":
        return [rows, values.tolist()]
    return fastembed.SparseGrad(rows, values)


def op_set_grad(ctx, rng, lms, om, opt, lm):
    g = gen_sparse_grad(rng, lm)
    lm.layer.grad = g
    lm.raw_grad = g
    lm.grad = None
    return "ok"


def op_zero_grad(ctx, rng, lms, om, opt, lm):
    if rng.random() < 0.5:
        opt.zero_grad()
        targets = lms
    else:
        lm.layer.zero_grad()
        targets = [lm]
    for t in targets:
        t.grad = t.raw_grad = None
    return "ok"


def op_scribble(ctx, rng, lms, om, opt, lm):
    """Overwrite the caller's arrays of the last forward: backward must not see it."""
    for a in lm.last_args:
        if isinstance(a, np.ndarray) and a.flags.writeable and a.size and a.dtype.kind in "iuf":
            a.reshape(-1)[...] = 0 if a.dtype.kind in "iu" else 99
    return "ok"


def op_table_change(ctx, rng, lms, om, opt, lm):
    """Replace or freeze a layer's table after the optimizer was built, then step."""
    V, D = lm.weight.shape
    v = pick(rng, ["same", "bigger", "readonly"], [4, 1, 1])
    if v == "readonly" and not ctx.known("optim-table-readonly"):
        v = "same"
    if v == "same":
        new = gen_floats(rng, (V, D), lm.dtype, special_p=0.0)
        lm.layer.weight = new
        lm.weight = new.copy()
        return "ok"
    if v == "bigger":
        V2 = V + int(pick(rng, [1, 10, 1000, 100000]))
        k = lms.index(lm)
        if om.kind in ("SGD", "SGDm") and om.state[k][0].shape == (1, 0):
            # SGD without a momentum buffer keeps no state per row: a new table is fine
            new = gen_floats(rng, (V2, D), lm.dtype, special_p=0.0)
            lm.layer.weight = new
            lm.weight = new.copy()
            g = fastembed.SparseGrad(np.array([V2 - 1], np.int64), np.ones((1, D), lm.dtype))
            lm.layer.grad = lm.raw_grad = g
            lm.grad = None
            return op_step(ctx, rng, lms, om, opt)
        lm.layer.weight = np.zeros((V2, D), lm.dtype)
        g = fastembed.SparseGrad(np.array([V2 - 1], np.int64), np.ones((1, D), lm.dtype))
    else:
        lm.layer.weight.flags.writeable = False
        g = fastembed.SparseGrad(np.array([0] if V else [], np.int64),
                                 np.ones((1 if V else 0, D), lm.dtype))
    lm.layer.grad = g
    ctx.call(f"{om.cls}.step", INVALID, opt.step, None, state=_model_state(lms, opt),
             note=f"(table {v} after the optimizer was built; {om.kind})")
    return "end"


def sc_layers(ctx, rng):
    n_layers = 1 if rng.random() < 0.7 else 2
    lms = [make_layer(rng, ctx, is_bag=rng.random() < 0.45) for _ in range(n_layers)]
    opt, om = make_optimizer(rng, ctx, [lm.layer for lm in lms])
    ops = [("forward", 30), ("backward", 22), ("step", 15), ("fused", 17), ("zero", 5),
           ("hyper", 3), ("setgrad", 5), ("scribble", 2), ("table", 1)]
    names, weights = zip(*ops)
    for _ in range(int(rng.integers(2, 7))):
        op = pick(rng, list(names), weights)
        lm = lms[int(rng.integers(len(lms)))]
        if lm.last is None and op in ("backward", "fused") and rng.random() < 0.9:
            op = "forward"
        if op == "fused" and (lm.grad is not None or lm.raw_grad is not None) and \
                rng.random() < 0.8:
            op_zero_grad(ctx, rng, lms, om, opt, lm)
        if op == "forward":
            status = op_forward(ctx, rng, lms, om, opt, lm)
        elif op == "backward":
            status = op_backward(ctx, rng, lms, om, opt, lm)
        elif op == "step":
            status = op_step(ctx, rng, lms, om, opt)
        elif op == "fused":
            status = op_fused(ctx, rng, lms, om, opt, lm)
        elif op == "zero":
            status = op_zero_grad(ctx, rng, lms, om, opt, lm)
        elif op == "hyper":
            status = op_set_hyper(ctx, rng, lms, om, opt)
        elif op == "setgrad":
            status = op_set_grad(ctx, rng, lms, om, opt, lm)
        elif op == "scribble":
            status = op_scribble(ctx, rng, lms, om, opt, lm)
        else:
            status = op_table_change(ctx, rng, lms, om, opt, lm)
        if status in ("fail", "end"):
            return


# =============================================================================================
# Scenario: SkipGram.train_step and CBOW.train_step
# =============================================================================================

def _sg_config(rng):
    V = int(rng.integers(1, 40))
    counts = rng.integers(0, 20, V)
    counts[int(rng.integers(V))] += 1
    return dict(counts=counts, dim=int(pick(rng, [1, 2, 4, 8, 16])),
                window=int(rng.integers(1, 6)), negative=int(rng.integers(1, 6)),
                sample=float(pick(rng, [0.0, 1e-3, 0.1])), dtype=gen_dtype(rng),
                seed=int(rng.integers(0, 2**31)), shards=int(rng.integers(1, 5)),
                round_words=pick(rng, [None, 1, 2, 7, 64], [50, 10, 10, 15, 15]))


def gen_sg_batch(rng, ctx, V):
    n = int(pick(rng, [0, 1, 2, 10, 50, 300]))
    words = rng.integers(0, V, n)
    cuts = np.sort(rng.integers(0, n + 1, int(rng.integers(0, 6))))
    starts = np.concatenate([[0], cuts, [n]]).astype(np.int64)
    wdt = np.dtype(pick(rng, ["int32", "int64", "uint8", "int16", "uint64", "float64", "bool",
                              "object"], [30, 40, 3, 3, 4, 3, 2, 2]))
    pywords = words.tolist()
    if n and rng.random() < 0.1 and wdt.kind in "iu":
        cand = _bad_candidates(wdt, V)
        pywords[int(rng.integers(n))] = int(pick(rng, cand))
    words_arr = np.array(pywords, dtype=wdt if wdt.kind in "iu" else np.int64)
    if wdt.kind not in "iu":
        words_arr = words_arr.astype(wdt)
    sdt = np.dtype(pick(rng, ["int64", "int32", "uint64", "uint32", "float64"],
                        [70, 15, 6, 5, 4]))
    starts_py = starts.tolist()
    r = rng.random()
    if r < 0.15 and len(starts_py) >= 3:
        v = pick(rng, ["decreasing", "first", "end", "huge"])
        if v == "decreasing":
            starts_py[1] = starts_py[2] + 1 if starts_py[2] < n else n + 1
        elif v == "first":
            starts_py[0] = 1
        elif v == "end":
            starts_py[-1] = n + 1
        else:
            starts_py[1] = pick(rng, [2**63 - 1, 2**63 + 5, 2**32 - 7, 10**9])
    elif r < 0.18:
        starts_py = []
    info = np.iinfo(sdt) if sdt.kind in "iu" else None
    if info is not None and any(not info.min <= v <= info.max for v in starts_py):
        sdt = np.dtype(np.uint64) if all(0 <= v < 2**64 for v in starts_py) else \
            np.dtype(object)
    starts_arr = np.array(starts_py, dtype=sdt)
    if rng.random() < 0.03:
        starts_arr = starts_arr.reshape(1, -1)
    form = pick(rng, ["tuple", "list", "bad"], [85, 12, 3])
    if form == "tuple":
        batch = (words_arr, starts_arr)
    elif form == "list":
        batch = [words_arr, starts_arr]
    else:
        batch = pick(rng, [None, (words_arr,), (words_arr, starts_arr, None), 5])
    return batch


def sg_batch_ok(batch, V):
    try:
        words, starts = batch
    except (TypeError, ValueError):
        return False
    words, starts = np.asarray(words), np.asarray(starts)
    if words.ndim != 1 or words.dtype.kind not in "iu":
        return False
    if starts.ndim != 1 or starts.dtype.kind not in "iu" or starts.size < 1:
        return False
    s = [int(v) for v in starts.tolist()]
    if s[0] != 0 or s[-1] != words.size or any(b < a for a, b in zip(s, s[1:])):
        return False
    if words.size:
        w = [int(v) for v in words.tolist()]
        if min(w) < 0 or max(w) >= V:
            return False
    return True


def sc_skipgram(ctx, rng):
    cls = pick(rng, [SkipGram, CBOW])
    name = f"{cls.__name__}.train_step"
    cfg = _sg_config(rng)
    V = cfg["counts"].size
    model = cls(n_threads=ctx.threads, **cfg)
    twin = cls(n_threads=1, **cfg)
    if rng.random() < 0.3:  # a step first, so that syn1neg is not all zeros
        first = (rng.integers(0, V, 20).astype(np.int32), np.array([0, 20]))
        for m in (model, twin):
            m.train_step(first, lr=0.025, rng=np.random.default_rng(1))
    batch = gen_sg_batch(rng, ctx, V)
    lr = pick(rng, [0.025, 0.0, 0.5, -0.1, float("nan"), float("inf"), "0.1", None],
              [80, 6, 6, 2, 2, 2, 1, 1])
    # the rate after the batch's last word: None is "the same as lr"
    lr_end = pick(rng, [None, 0.0, 0.01, 0.5, -0.1, float("nan"), float("inf")],
                  [60, 10, 15, 9, 2, 2, 2])
    step_seed = int(rng.integers(0, 2**31))

    def rate_ok(r):
        return isinstance(r, float) and math.isfinite(r) and r >= 0

    ok = sg_batch_ok(batch, V) and rate_ok(lr) and (lr_end is None or rate_ok(lr_end))
    touched = None
    if ok:
        touched = np.unique(np.asarray(batch[0]).astype(np.int64))

    def check(res):
        require(isinstance(res, dict) and {"loss", "count", "pairs", "kept"} <= set(res),
                f"train_step returned {res!r}")
        n = int(np.asarray(batch[0]).size)
        require(res["count"] == n, f"count {res['count']} != {n}")
        require(0 <= res["kept"] <= n, f"kept {res['kept']} not in [0, {n}]")
        require(res["pairs"] >= 0, "negative pairs")
        diverged = max(float(np.abs(model.syn0).max(initial=0)),
                       float(np.abs(model.syn1neg).max(initial=0))) > 1e15
        require(res["loss"] >= 0 or (diverged and not math.isfinite(res["loss"])),
                f"loss {res['loss']}")   # a large lr can diverge: NaN loss, huge vectors
        untouched = np.setdiff1d(np.arange(V), touched)
        require_bits(model.syn0[untouched], before0[untouched], "syn0 rows of unseen words")
        with np.errstate(all="ignore"):
            res2 = twin.train_step(batch, lr=lr, lr_end=lr_end,
                                   rng=np.random.default_rng(step_seed))
        require(repr(res2) == repr(res), f"1 thread gave {res2}, {ctx.threads} threads {res}")
        require_bits(model.syn0, twin.syn0, "syn0 (1 thread vs several)")
        require_bits(model.syn1neg, twin.syn1neg, "syn1neg (1 thread vs several)")

    before0 = model.syn0.copy()
    ctx.call(name, VALID if ok else INVALID,
             lambda: model.train_step(batch, lr=lr, lr_end=lr_end,
                                      rng=np.random.default_rng(step_seed)),
             check, inputs=[lambda: batch if isinstance(batch, (tuple, list)) else None],
             state=[lambda: model.syn0, lambda: model.syn1neg],
             note=f"(V={V}, shards={cfg['shards']}, round_words={model.round_words}, "
                  f"window={cfg['window']}, negative={cfg['negative']})",
             args=dict(batch=batch, lr=lr, lr_end=lr_end))


# =============================================================================================
# Scenario: fastembed.io.load_word2vec
# =============================================================================================

_TMPDIR = None


def _tmpfile(data):
    global _TMPDIR
    if _TMPDIR is None:
        import atexit
        import shutil
        _TMPDIR = tempfile.mkdtemp(prefix="fastembed-fuzz-")
        atexit.register(shutil.rmtree, _TMPDIR, True)
    path = os.path.join(_TMPDIR, "vectors.txt")
    with open(path, "wb") as f:
        f.write(data)
    return path


GOOD_TOKENS = ["1", "-0", "0.5", "-2.25", "1e3", "1E-3", "+7", ".5", "5.", "inf", "-Infinity",
               "nan", "NaN", "-nan", "1e39", "-1e-46", "3.4028235e38", "1e-45", "0.1",
               "123456789", "-0.000001"]
BAD_TOKENS = ["abc", "1e", "1_000", "--1", "0x10", "1.2.3", "\u0661", "e5", "+", "-", ".",
              "1,5", "nanx", "in"]
WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'.\u00e9\u4e2d"


def _float_token(rng, x):
    style = int(rng.integers(5))
    if style == 0:
        return repr(float(x))
    if style == 1:
        return "%.9g" % x
    if style == 2:
        return "%e" % x
    if style == 3:
        return "%.17g" % x
    return "%.3f" % x


def _word(rng):
    n = int(rng.integers(1, 9))
    return "".join(WORD_CHARS[int(i)] for i in rng.integers(0, len(WORD_CHARS), n))


def gen_text_file(rng, glove=False):
    """(bytes, description) of a word2vec text (or GloVe) file with at most one defect."""
    n = int(pick(rng, [1, 2, 3, 5, 20]))
    dim = int(pick(rng, [1, 2, 3, 5, 8]))
    words = []
    while len(words) < n:
        w = _word(rng)
        if w not in words:
            words.append(w)
    rows = []
    for w in words:
        toks = []
        for _ in range(dim):
            if rng.random() < 0.1:
                toks.append(pick(rng, GOOD_TOKENS))
            else:
                toks.append(_float_token(rng, rng.standard_normal() * 10.0 ** rng.integers(-3, 4)))
        rows.append([w.encode(), toks])
    count = n
    defect = None
    if rng.random() < 0.4:
        defect = pick(rng, ["badtoken", "short", "long", "count+", "count-", "dup", "utf8",
                            "header", "dup"])
        i = int(rng.integers(n))
        if defect == "badtoken":
            rows[i][1][int(rng.integers(dim))] = pick(rng, BAD_TOKENS)
        elif defect == "short":
            rows[i][1] = rows[i][1][:-1]
            if dim == 1 and glove and i == 0:
                defect = None    # a GloVe file's dim comes from its first row: no defect
        elif defect == "long":
            rows[i][1] = rows[i][1] + ["1.0"]
        elif defect == "count+":
            count = n + 1
        elif defect == "count-":
            count = n - 1
        elif defect == "dup" and n > 1:
            rows[i][0] = rows[(i + 1) % n][0]
        elif defect == "utf8":
            rows[i][0] = rows[i][0] + b"\xff"
        elif defect == "header":
            pass
        else:
            defect = None
        if glove and defect in ("count+", "count-", "header"):
            defect = None
    eol = b"\r\n" if rng.random() < 0.2 else b"\n"
    lines = []
    if not glove:
        if defect == "header":
            lines.append(pick(rng, [b"3", b"a b", b"-1 3", b"3 0", b"3 4 5", b""]))
        else:
            lines.append(f"{count} {dim}".encode())
    for w, toks in rows:
        parts = [w]
        for t in toks:
            parts.append((b" " * int(rng.integers(1, 3))) if rng.random() < 0.8 else b"\t")
            parts.append(t.encode())
        if rng.random() < 0.1:
            parts.append(b" ")
        lines.append(b"".join(parts))
    data = eol.join(lines) + (eol if rng.random() < 0.9 else b"")
    return data, {"rows": rows, "dim": dim, "count": count, "defect": defect, "glove": glove}


def _parse_token(t, dtype):
    if "_" in t or not t.isascii():
        return None
    try:
        x = float(t)
    except ValueError:
        return None
    return np.float32(x) if dtype == F32 else np.float64(x)


def expect_text(desc, dtype, limit, duplicates, errors):
    """(expectation, words, weight) for a generated text file."""
    if desc["defect"] == "header":
        return INVALID, None, None
    dim, count, rows = desc["dim"], desc["count"], desc["rows"]
    n_keep = count if limit is None else min(count, limit)
    if desc["glove"]:
        dim = len(rows[0][1])   # a GloVe file's dim comes from its first row
        if dim == 0:
            return INVALID, None, None
        n_keep = len(rows) if limit is None else min(len(rows), limit)
    words, values = [], []
    status = VALID
    for i, (w, toks) in enumerate(rows):
        if i >= n_keep:
            break
        if len(toks) != dim:
            return INVALID, None, None
        vals = [_parse_token(t, dtype) for t in toks]
        if any(v is None for v in vals):
            return INVALID, None, None
        try:
            words.append(w.decode("utf-8", errors))
        except UnicodeDecodeError:
            return INVALID, None, None
        values.append(vals)
    if len(words) < n_keep:
        return INVALID, None, None
    if limit is None and len(rows) > count and not desc["glove"]:
        return INVALID, None, None
    if limit is not None and (len(rows) != count and not desc["glove"] or any(
            len(t) != dim or any(_parse_token(x, dtype) is None for x in t)
            for _, t in rows[n_keep:])):
        status = EITHER   # what lies beyond the limit is not specified
    if len(set(words)) != len(words):
        if duplicates == "error":
            return INVALID, None, None
        seen, keep = set(), []
        for k, w in enumerate(words):
            if w not in seen:
                seen.add(w)
                keep.append(k)
        words = [words[k] for k in keep]
        values = [values[k] for k in keep]
    weight = np.array(values, dtype=dtype).reshape(len(words), dim)
    return status, words, weight


def gen_binary_file(rng):
    n = int(pick(rng, [1, 2, 3, 10]))
    dim = int(pick(rng, [1, 2, 4, 7]))
    words = []
    while len(words) < n:
        w = _word(rng)
        if w not in words:
            words.append(w)
    vecs = gen_floats(rng, (n, dim), F32, special_p=0.1)
    bwords = [w.encode() for w in words]
    count = n
    defect = None
    if rng.random() < 0.4:
        defect = pick(rng, ["truncate", "dup", "utf8", "count+", "count-"])
        if defect == "dup" and n > 1:
            bwords[1] = bwords[0]
        elif defect == "utf8":
            bwords[int(rng.integers(n))] += b"\xfe"
        elif defect == "count+":
            count = n + 1
        elif defect == "count-":
            count = n - 1 if n > 1 else n
        elif defect != "truncate":
            defect = None
    body = b"".join(w + b" " + v.astype("<f4").tobytes() + b"\n" for w, v in zip(bwords, vecs))
    data = f"{count} {dim}\n".encode() + body
    if defect == "truncate":
        cut = int(rng.integers(len(f"{count} {dim}\n"), len(data) - 1))
        data = data[:cut]
    return data, {"words": bwords, "vecs": vecs, "count": count, "dim": dim, "defect": defect}


def expect_binary(desc, dtype, limit, duplicates, errors):
    n_keep = desc["count"] if limit is None else min(desc["count"], limit)
    if desc["defect"] == "truncate":
        return (INVALID if limit is None else EITHER), None, None
    if n_keep > len(desc["words"]):
        return INVALID, None, None
    status = EITHER if desc["defect"] == "count-" else VALID
    words = []
    for w in desc["words"][:n_keep]:
        try:
            words.append(w.decode("utf-8", errors))
        except UnicodeDecodeError:
            return INVALID, None, None
    values = desc["vecs"][:n_keep].astype(dtype)
    if len(set(words)) != len(words):
        if duplicates == "error":
            return INVALID, None, None
        seen, keep = set(), []
        for k, w in enumerate(words):
            if w not in seen:
                seen.add(w)
                keep.append(k)
        words = [words[k] for k in keep]
        values = values[keep]
    return status, words, values


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        if not data:
            break
        v = int(rng.integers(5))
        i = int(rng.integers(len(data)))
        if v == 0:
            data[i] = int(rng.integers(256))
        elif v == 1:
            data.insert(i, int(pick(rng, [0, 9, 10, 13, 32, 45, 46, 48, 101, 255])))
        elif v == 2:
            del data[i:i + int(rng.integers(1, 8))]
        elif v == 3:
            data[i:i] = data[i:i + int(rng.integers(1, 16))]
        else:
            del data[i:]
    return bytes(data)


def sc_load_word2vec(ctx, rng):
    kind = pick(rng, ["text", "glove", "binary", "mutated", "random", "huge"],
                [40, 10, 20, 18, 6, 6])
    dtype = gen_dtype(rng)
    limit = None if rng.random() < 0.8 else int(rng.integers(0, 6))
    duplicates = "error" if rng.random() < 0.7 else "first"
    errors = "strict" if rng.random() < 0.8 else pick(rng, ["replace", "ignore"])
    binary = None
    no_header = False
    expect, words, weight = EITHER, None, None
    if kind in ("text", "glove"):
        data, desc = gen_text_file(rng, glove=kind == "glove")
        no_header = kind == "glove"
        binary = False if rng.random() < 0.7 or no_header else None
        expect, words, weight = expect_text(desc, dtype, limit, duplicates, errors)
    elif kind == "binary":
        data, desc = gen_binary_file(rng)
        binary = True if rng.random() < 0.8 else None
        expect, words, weight = expect_binary(desc, dtype, limit, duplicates, errors)
        if binary is None and expect == VALID:
            expect = EITHER   # format detection is a heuristic (documented "nearly always")
    elif kind == "mutated":
        data = mutate(rng, gen_text_file(rng)[0] if rng.random() < 0.6 else
                      gen_binary_file(rng)[0])
        binary = pick(rng, [None, True, False])
    elif kind == "random":
        data = rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
        if rng.random() < 0.5:
            data = b"%d %d\n" % (rng.integers(0, 5), rng.integers(1, 5)) + data
    else:
        count = int(pick(rng, [10**12, 10**15, 2**62, 10**30]))
        dim = int(pick(rng, [10**6, 10**9, 2**40]))
        data = f"{count} {dim}\nw 1 2\n".encode()
        binary = pick(rng, [None, False])
        expect = INVALID
    if limit is not None and kind in ("mutated", "random", "huge"):
        limit = None if kind == "huge" else limit
    path = _tmpfile(data)
    if rng.random() < 0.03:
        dtype = pick(rng, [np.float16, np.int32])
        expect = INVALID
    if binary is True and no_header:
        expect = INVALID

    def check(res):
        require(len(res.words) == res.weight.shape[0], "words and rows disagree")
        require(res.weight.ndim == 2 and res.weight.dtype == np.dtype(dtype),
                f"weight {res.weight.dtype}{res.weight.shape}")
        require(len(set(res.words)) == len(res.words), "duplicate words returned")
        if words is not None:
            require(list(res.words) == words, f"words {list(res.words)[:5]} != {words[:5]}")
            require_bits(res.weight, weight, "load_word2vec values")

    ctx.call("io.load_word2vec", expect,
             lambda: load_word2vec(path, binary=binary, no_header=no_header, limit=limit,
                                   dtype=dtype, errors=errors, duplicates=duplicates,
                                   n_threads=pick(rng, [None, 1, ctx.threads])),
             check, allowed=(ValueError, TypeError),
             note=f"({kind}, binary={binary}, limit={limit}, dup={duplicates}, "
                  f"errors={errors}; file {data[:120]!r})")


# =============================================================================================
# The driver
# =============================================================================================

SCENARIOS = [
    ("gather", 10, sc_gather),
    ("scatter_add", 10, sc_scatter_add),
    ("coalesce", 9, sc_coalesce),
    ("embedding_bag", 14, sc_embedding_bag),
    ("layers", 40, sc_layers),
    ("skipgram", 4, sc_skipgram),
    ("load_word2vec", 7, sc_load_word2vec),
]
SCENARIO_NAMES = [s[0] for s in SCENARIOS]

# Every function name the summary can show, in table order (the progress file stores the index).
FUNCTIONS = ["gather", "scatter_add", "coalesce", "embedding_bag", "Embedding.forward",
             "Embedding.backward", "Embedding.backward_and_step", "EmbeddingBag.forward",
             "EmbeddingBag.backward", "EmbeddingBag.backward_and_step", "SGD.step",
             "Adagrad.step", "RowWiseAdagrad.step", "Adam.step", "AdamW.step",
             "SkipGram.train_step", "CBOW.train_step", "io.load_word2vec"]


def select_scenarios(only, exclude):
    chosen = [s for s in SCENARIOS if (not only or s[0] in only) and s[0] not in exclude]
    if not chosen:
        raise SystemExit(f"no scenario left; scenarios are {SCENARIO_NAMES}")
    return chosen


def run_case(ctx, i, scenarios):
    if ctx.progress is not None:   # first of all: a crash from here on is this case's
        ctx.progress[0] = i
        ctx.progress[1] = 0
    if i in ctx.inject_crash:   # testing the crash handling: a real segfault
        import ctypes
        ctypes.string_at(0)
    rng = np.random.default_rng([ctx.seed, i])
    names, weights, fns = zip(*scenarios)
    k = pick(rng, range(len(fns)), weights)
    ctx.case = i
    ctx.scenario = names[k]
    if ctx.verbose:
        print(f"case {i}: {names[k]}", file=sys.stderr, flush=True)
    try:
        fns[k](ctx, rng)
    except Exception:  # noqa: BLE001 - a bug of the fuzzer itself
        ctx.record("(fuzzer)", "harness", traceback.format_exc())


def run_range(ctx, start, stop, scenarios, deadline=None, skip=(), save=None):
    """Run cases [start, stop) but those in skip; returns the first case not run (stop
    unless the time ran out). save(next_case) is called every 200 cases."""
    for i in range(start, stop):
        if deadline is not None and time.monotonic() > deadline:
            return i
        if save is not None and i > start and (i - start) % 200 == 0:
            save(i)
        if i not in skip:
            run_case(ctx, i, scenarios)
            ctx.cases += 1
    return stop


class _Progress:
    """A small file that a child writes its current case into (it survives a segfault)."""

    def __init__(self, path, create):
        if create:
            with open(path, "wb") as f:
                f.write(b"\xff" * 24)
        self.array = np.memmap(path, dtype=np.int64, mode="r+", shape=(3,))

    def read(self):
        return [int(v) for v in self.array]


def child_main(args, scenarios):
    global _TMPDIR
    if args.tmpdir:   # inside the parent's work directory, which the parent removes
        os.makedirs(args.tmpdir, exist_ok=True)
        _TMPDIR = args.tmpdir
    fastembed.set_num_threads(args.threads)
    progress = _Progress(args.progress_file, create=False).array if args.progress_file else None
    ctx = Ctx(args.seed, args.threads, verbose=args.verbose, skip_known=args.skip_known,
              progress=progress)
    ctx.names = {name: k + 1 for k, name in enumerate(FUNCTIONS)}
    ctx.inject_crash = {int(c) for c in args.inject_crash.split(",") if c}
    deadline = None if args.deadline is None else args.deadline
    skip = {int(c) for c in args.skip.split(",") if c} if args.skip else set()

    def save(next_case, final=False):
        """The counts so far (atomically): after a crash the parent reruns from here."""
        result = {"stats": {k: dict(v) for k, v in ctx.stats.items()},
                  "failures": ctx.failures, "next": next_case, "cases": ctx.cases,
                  "final": final}
        tmp = args.result_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f)
        os.replace(tmp, args.result_file)

    stopped = run_range(ctx, args.start, args.stop, scenarios,
                        None if deadline is None else time.monotonic() + (deadline - time.time()),
                        skip=skip, save=save)
    save(stopped, final=True)


def _child_cmd(args, start, stop, progress, result, deadline, skip=()):
    cmd = [sys.executable, os.path.abspath(__file__), "--seed", str(args.seed),
           "--threads", str(args.threads), "--child", "--start", str(start), "--stop",
           str(stop), "--progress-file", progress, "--result-file", result,
           "--tmpdir", os.path.join(os.path.dirname(progress), "files")]
    if deadline is not None:
        cmd += ["--deadline", repr(deadline)]
    if args.inject_crash:
        cmd += ["--inject-crash", args.inject_crash]
    if skip:
        cmd += ["--skip", ",".join(str(c) for c in sorted(skip))]
    if args.skip_known:
        cmd.append("--skip-known")
    for name in args.only:
        cmd += ["--only", name]
    for name in args.exclude:
        cmd += ["--exclude", name]
    return cmd


def run_in_children(args, scenarios, totals, failures):
    """Run the cases in K child processes, one after another; resume after a crash."""
    import shutil
    workdir = tempfile.mkdtemp(prefix="fastembed-fuzz-run-")
    try:
        return _run_children(args, totals, failures, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_children(args, totals, failures, workdir):
    K = max(1, args.subprocess_chunks)
    bounds = np.linspace(0, args.calls, K + 1).astype(int)
    deadline = None if args.time_limit is None else time.time() + args.time_limit
    progress_path = os.path.join(workdir, "progress")
    result_path = os.path.join(workdir, "result.json")
    alone_paths = (os.path.join(workdir, "progress-alone"),
                   os.path.join(workdir, "result-alone.json"))
    cases = 0
    for c in range(K):
        start, stop = int(bounds[c]), int(bounds[c + 1])
        skip = set()      # cases that crashed a child: the next child leaves them out
        restarts = 0
        while start < stop:
            restarts += 1
            if restarts > 200:
                totals["(driver)"]["crash"] += 1
                failures.append({"function": "(driver)", "kind": "crash", "case": start,
                                 "seed": args.seed, "scenario": "",
                                 "detail": f"gave up cases [{start}, {stop}) after 200 "
                                           f"crashed children"})
                break
            if deadline is not None and time.time() > deadline:
                return cases
            prog = _Progress(progress_path, create=True)
            if os.path.exists(result_path):
                os.unlink(result_path)
            proc = subprocess.run(_child_cmd(args, start, stop, progress_path, result_path,
                                             deadline, skip),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            res = None
            if os.path.exists(result_path):
                with open(result_path) as f:
                    res = json.load(f)     # final, or the counts saved before a crash
                _merge_stats(totals, res["stats"])
                failures.extend(res["failures"])
                cases += res["cases"]
            if proc.returncode == 0 and res is not None and res["final"]:
                if res["next"] < stop:      # the time limit ran out
                    return cases
                break
            case, fid, _ = prog.read()
            del prog
            name = FUNCTIONS[fid - 1] if 0 < fid <= len(FUNCTIONS) else "(between calls)"
            sig = -proc.returncode if proc.returncode < 0 else None
            how = (f"killed by signal {sig} ({_signame(sig)})" if sig
                   else f"exited with status {proc.returncode}")
            alone = ""
            if start <= case < stop:   # does the case crash on its own, in a fresh process?
                _Progress(alone_paths[0], create=True)
                again = subprocess.run(_child_cmd(args, case, case + 1, *alone_paths, None),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                alone = ("; it crashes alone too" if again.returncode != 0 else
                         "; it does NOT crash alone: memory corrupted by an earlier case of "
                         "this child?")
            detail = (f"child for cases [{start}, {stop}) {how} in case {case}{alone} "
                      f"(replay: python tests/fuzz.py --seed {args.seed} --replay {case})\n"
                      + proc.stderr.decode("utf-8", "replace")[-1500:])
            totals[name]["crash"] += 1
            totals[name]["calls"] += 1
            failures.append({"function": name, "kind": "crash", "case": case,
                             "seed": args.seed, "scenario": "", "detail": detail})
            cases += 1
            if not start <= case < stop or case in skip:   # no progress: give up the chunk
                totals["(driver)"]["crash"] += 1
                failures.append({"function": "(driver)", "kind": "crash", "case": case,
                                 "seed": args.seed, "scenario": "",
                                 "detail": f"no progress recorded; gave up cases "
                                           f"[{start}, {stop})"})
                break
            skip.add(case)
            # rerun the cases after the last save (their counts died with the child)
            start = res["next"] if res is not None else start
    return cases


def _signame(sig):
    import signal
    try:
        return signal.Signals(sig).name
    except (ValueError, TypeError):
        return "?"


def _merge_stats(totals, stats):
    for name, counts in stats.items():
        totals[name].update(counts)


COLUMNS = [("calls", "calls"), ("valid", "valid ok"), ("raised", "invalid raised"),
           ("wrong", "wrong"), ("unexpected", "unexpected exc"), ("crash", "crash")]


def summary(totals, failures, cases, seconds, args):
    names = [n for n in FUNCTIONS if n in totals] + sorted(n for n in totals
                                                          if n not in FUNCTIONS)
    width = max([len("function")] + [len(n) for n in names])
    lines = [f"fastembed fuzz: seed {args.seed}, {cases} cases, threads {args.threads}, "
             f"{seconds:.1f} s" + (" (--skip-known)" if args.skip_known else "")]
    head = f"{'function':<{width}}  " + "  ".join(f"{h:>{max(len(h), 7)}}" for _, h in COLUMNS)
    lines += [head, "-" * len(head)]
    total = Counter()
    for n in names:
        c = totals[n]
        total.update(c)
        lines.append(f"{n:<{width}}  " + "  ".join(f"{c.get(k, 0):>{max(len(h), 7)}}"
                                                      for k, h in COLUMNS))
    lines.append("-" * len(head))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{total.get(k, 0):>{max(len(h), 7)}}"
                                                     for k, h in COLUMNS))
    lonely = sum("does NOT crash alone" in f["detail"] for f in failures)
    if lonely:
        lines.append(f"{lonely} crash(es) did not recur when their case ran alone (memory "
                     f"corrupted by an earlier case of the same child)")
    if total.get("harness"):
        lines.append(f"fuzzer errors (bugs of tests/fuzz.py itself): {total['harness']}")
    bad = [f for f in failures]
    if bad:
        lines.append("")
        lines.append(f"{len(bad)} failure(s); the first of each kind and function:")
        seen = set()
        for f in bad:
            if f["kind"] == "crash":
                key = (f["function"], "crash", "alone too" in f["detail"],
                       f["detail"].split("signal ")[-1][:3])
            else:
                key = (f["function"], f["kind"], f["detail"].split(":")[0][:60])
            if key in seen:
                continue
            seen.add(key)
            first = f["detail"].strip().splitlines()
            lines.append(f"  [{f['kind']}] {f['function']} case {f['case']} "
                         f"(python tests/fuzz.py --seed {f['seed']} --replay {f['case']}"
                         f"{' --skip-known' if args.skip_known else ''}): "
                         f"{first[0][:300] if first else ''}")
            if len(seen) >= 40:
                lines.append("  ...")
                break
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=10000, help="number of fuzz cases")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="kernels' default thread count (set_num_threads); calls also pass "
                        "n_threads=None, 1, 2, -1 and this")
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop starting new cases after this many seconds")
    p.add_argument("--subprocess-chunks", type=int, default=0,
                   help="run the cases in K child processes (so a segfault is reported)")
    p.add_argument("--only", action="append", default=[], choices=SCENARIO_NAMES)
    p.add_argument("--exclude", action="append", default=[], choices=SCENARIO_NAMES)
    p.add_argument("--skip-known", action="store_true",
                   help="do not generate the inputs of the known bugs (KNOWN_BUGS)")
    p.add_argument("--replay", type=int, default=None, help="run this one case, verbosely")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--json", default=None, help="also write the counts and failures here")
    # internal: child processes
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--stop", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--progress-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--tmpdir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--skip", default="", help=argparse.SUPPRESS)
    p.add_argument("--inject-crash", default="", help=argparse.SUPPRESS)  # testing: segfault
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    # Fuzz-sized tables would make scatter_add run on one thread whatever n_threads says (it
    # is faster there); lift the rule so that the parallel row-ownership path is fuzzed too.
    from fastembed import functional
    functional._SCATTER_PARALLEL_MIN_TABLE_BYTES = 0
    functional._SCATTER_PARALLEL_MIN_WORK = 0
    scenarios = select_scenarios(args.only, args.exclude)
    if args.child:
        child_main(args, scenarios)
        return 0
    import faulthandler
    try:
        faulthandler.enable()
    except (AttributeError, ValueError, OSError):  # no real stderr (pytest's capture)
        pass
    fastembed.set_num_threads(args.threads)
    t0 = time.time()
    totals = defaultdict(Counter)
    failures = []
    if args.replay is not None:
        ctx = Ctx(args.seed, args.threads, verbose=True, skip_known=args.skip_known)
        run_case(ctx, args.replay, scenarios)
        _merge_stats(totals, ctx.stats)
        failures = ctx.failures
        for f in failures:
            print(f"--- {f['kind']} in {f['function']}:\n{f['detail']}", file=sys.stderr)
        cases = 1
    elif args.subprocess_chunks:
        cases = run_in_children(args, scenarios, totals, failures)
    else:
        ctx = Ctx(args.seed, args.threads, verbose=args.verbose, skip_known=args.skip_known)
        deadline = None if args.time_limit is None else time.monotonic() + args.time_limit
        run_range(ctx, 0, args.calls, scenarios, deadline)
        cases = ctx.cases
        _merge_stats(totals, ctx.stats)
        failures = ctx.failures
    seconds = time.time() - t0
    print(summary(totals, failures, cases, seconds, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "cases": cases, "seconds": seconds,
                       "stats": {k: dict(v) for k, v in totals.items()},
                       "failures": failures}, f, indent=1)
    bad = sum(c.get(k, 0) for c in totals.values()
              for k in ("wrong", "unexpected", "crash", "harness"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
