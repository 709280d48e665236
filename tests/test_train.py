"""Tests of fastembed.train: schedule, dataset, flattening, callbacks, checkpoints, resume.

The model under training is a real one, written here by the protocol: a bag-of-ids logistic
regression (an Embedding pooled by mean over the ids a random dropout kept, a weight vector,
sigmoid cross-entropy), with a hand-written backward, Adam on the table (optimizer state that
must survive a resume) and plain SGD on the dense part, drawing its dropout from the trainer's
rng (rng state that must survive a resume). The key test kills a training process with
SIGKILL mid-run and checks that resuming it reproduces an uninterrupted run bit for bit.
"""
from __future__ import annotations

import doctest
import io
import json
import logging
import math
import os
import pathlib
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from fastembed import Embedding, optim
import fastembed.train
from fastembed.train import (ArrayDataset, BatchedDataset, Trainer, flatten_state, load_checkpoint,
                             unflatten_state)

from conftest import assert_bitwise_equal

TESTS_DIR = pathlib.Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------
# The model, by the protocol
# ----------------------------------------------------------------------------------------

class BagLogReg:
    """p(y=1 | ids) = sigmoid(w . mean(E[kept ids]) + b), trained by hand.

    Forward: each id is dropped with probability ``drop`` (draws from the trainer's rng; the
    first id of a bag is always kept), the kept rows are averaged, ``z = pooled . w + b``.
    Loss: the mean of ``softplus(z) - y z``. Backward: ``dz = (sigmoid(z) - y) / B``,
    ``dw = pooled^T dz``, ``db = sum(dz)``, ``d pooled = dz w``, and each kept id's row gets
    ``d pooled / n_kept``. The table is updated by the optimizer (Adam), w and b by SGD.
    """

    def __init__(self, num_ids=40, dim=8, dtype=np.float64, seed=0, drop=0.25):
        self.dtype = np.dtype(dtype)
        self.embedding = Embedding(num_ids, dim, dtype=self.dtype, seed=seed)
        self.w = (np.random.default_rng(seed + 1).standard_normal(dim) * 0.1).astype(dtype)
        self.b = np.zeros(1, dtype=dtype)
        self.drop = drop

    def _pool(self, ids, keep):
        n = keep.sum(axis=1)
        scale = (keep / n[:, None]).astype(self.dtype)           # (B, L)
        emb = self.embedding(ids)                                 # (B, L, D)
        return (emb * scale[..., None]).sum(axis=1), scale, n

    def train_step(self, batch, *, lr, rng, optimizer):
        ids, y = batch
        keep = rng.random(ids.shape) >= self.drop                 # id dropout
        keep[:, 0] = True
        pooled, scale, n = self._pool(ids, keep)
        z = (pooled * self.w).sum(axis=1) + self.b[0]
        loss = np.mean(np.logaddexp(0, z) - y * z)
        dz = (1 / (1 + np.exp(-z)) - y) / len(y)
        dw = (pooled * dz[:, None]).sum(axis=0)
        db = dz.sum()
        dpooled = dz[:, None] * self.w                            # (B, D)
        self.embedding.backward(np.ascontiguousarray(dpooled[:, None, :] * scale[..., None]))
        optimizer.step()
        optimizer.zero_grad()
        self.w -= self.dtype.type(lr * 10) * dw
        self.b -= self.dtype.type(lr * 10) * db
        return {"loss": float(loss), "count": int(n.sum()), "bags": len(y)}

    def accuracy(self, ids, y):
        pooled, _, _ = self._pool(ids, np.ones(ids.shape, bool))
        z = (pooled * self.w).sum(axis=1) + self.b[0]
        return float(np.mean((z > 0) == (y > 0.5)))

    def state_dict(self):
        return {"embedding": self.embedding.weight.copy(), "w": self.w.copy(),
                "b": self.b.copy()}

    def load_state_dict(self, d):
        np.copyto(self.embedding.weight, d["embedding"])
        np.copyto(self.w, d["w"])
        np.copyto(self.b, d["b"])


def make_problem(n=128, length=5, num_ids=40, seed=0):
    rng = np.random.default_rng(seed + 100)
    ids = rng.integers(0, num_ids, size=(n, length))
    score = rng.standard_normal(num_ids)
    y = (score[ids].mean(axis=1) > 0).astype(np.float64)
    return ids, y


def make_run(checkpoint_dir=None, *, dtype=np.float64, n=128, batch_size=16, epochs=3,
             lr=0.05, seed=7, optimizer=True, **kwargs):
    """(trainer, model, optimizer) of the standard small run: 8 batches x 3 epochs."""
    ids, y = make_problem(n)
    model = BagLogReg(dtype=dtype)
    opt = optim.Adam(model.embedding, lr=lr) if optimizer else None
    data = ArrayDataset(ids, y.astype(dtype), batch_size=batch_size, seed=3)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("metrics", {"accuracy": lambda m: m.accuracy(ids, y)})
    trainer = Trainer(model, opt, data=data, epochs=epochs, lr=lr, seed=seed,
                      checkpoint_dir=checkpoint_dir, **kwargs)
    return trainer, model, opt


class StopAt:
    def __init__(self, step):
        self.at = step

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            trainer.stop_training = True


class Recorder:
    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer):
        self.events.append(("begin", trainer.step))

    def on_step_end(self, trainer, step, logs):
        self.events.append(("step", step, dict(logs)))

    def on_epoch_end(self, trainer, epoch, logs):
        self.events.append(("epoch", epoch, dict(logs)))

    def on_train_end(self, trainer, history):
        self.events.append(("end", len(history)))


def assert_same_state(a, b, where="state"):
    """Equal nested states: same container and scalar types, arrays bitwise, floats by bits."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same_state(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}/{i}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), f"{where}: arrays differ"
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert struct.pack(">d", a) == struct.pack(">d", b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_run(model_a, opt_a, model_b, opt_b):
    assert_same_state(model_a.state_dict(), model_b.state_dict(), "model")
    if opt_a is not None:
        assert_same_state(opt_a.state_dict(), opt_b.state_dict(), "optimizer")


def assert_same_history(h1, h2):
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa
    assert_same_state(strip(h1), strip(h2), "history")


def checkpoint_steps(directory):
    return sorted(int(p.name[5:-4]) for p in pathlib.Path(directory).glob("ckpt-*.npz"))


@pytest.fixture(scope="module")
def reference():
    """An uninterrupted float64 run: its final model, optimizer and history."""
    trainer, model, opt = make_run()
    history = trainer.fit()
    return model, opt, history


# ----------------------------------------------------------------------------------------
# Learning-rate schedule
# ----------------------------------------------------------------------------------------

class LrRecorder:
    def __init__(self, optimizer=None):
        self.seen = []
        self.optimizer = optimizer

    def train_step(self, batch, *, lr, rng, optimizer):
        self.seen.append((lr, None if optimizer is None else optimizer.lr))
        return {"loss": 0.0, "count": len(batch)}


def test_linear_schedule_values():
    data = ArrayDataset(np.zeros(10), batch_size=2)                  # 5 batches per epoch
    layer = Embedding(3, 2)
    opt = optim.SGD(layer, lr=1.0)
    model = LrRecorder()
    trainer = Trainer(model, opt, data=data, epochs=2, lr=0.5, min_lr=0.1, progress=False)
    trainer.fit()
    expected = [0.5 - (0.5 - 0.1) * t / 10 for t in range(10)]
    assert [lr for lr, _ in model.seen] == expected
    assert [o for _, o in model.seen] == expected                    # optimizer.lr set too
    assert [trainer.lr_at(t) for t in range(10)] == expected
    assert trainer.lr_at(10) == pytest.approx(0.1)
    assert [h["lr"] for h in trainer.history] == [expected[4], expected[9]]


def test_default_min_lr_is_gensims_ratio_and_constant_schedule():
    data = ArrayDataset(np.zeros(4), batch_size=1)
    assert Trainer(LrRecorder(), data=data).min_lr == 0.0001            # 0.025 / 250
    assert Trainer(LrRecorder(), data=data, lr=1.0).min_lr == 1.0 / 250
    model = LrRecorder()
    Trainer(model, data=data, epochs=2, lr=0.3, schedule="constant", progress=False).fit()
    assert [lr for lr, _ in model.seen] == [0.3] * 8
    assert [o for _, o in model.seen] == [None] * 8                   # no optimizer


class LrEndRecorder:
    """A model whose train_step takes lr_end: it gets the rate of the next step there."""

    def __init__(self):
        self.seen = []

    def train_step(self, batch, *, lr, rng, optimizer, lr_end=None):
        self.seen.append((lr, lr_end))
        return {"loss": 0.0, "count": len(batch)}


def test_lr_end_is_the_next_steps_rate():
    data = ArrayDataset(np.zeros(10), batch_size=2)                  # 5 batches per epoch
    model = LrEndRecorder()
    trainer = Trainer(model, data=data, epochs=2, lr=0.5, min_lr=0.1, progress=False)
    trainer.fit()
    lrs = [lr for lr, _ in model.seen]
    ends = [end for _, end in model.seen]
    assert lrs == [trainer.lr_at(t) for t in range(10)]
    assert ends == [trainer.lr_at(t + 1) for t in range(10)]          # the linear schedule
    assert ends[:-1] == lrs[1:]                                       # continuous over steps
    assert ends[-1] == pytest.approx(0.1, abs=1e-15)                   # the last: min_lr
    # the constant schedule: lr_end = lr
    model = LrEndRecorder()
    Trainer(model, data=data, epochs=1, lr=0.3, schedule="constant", progress=False).fit()
    assert model.seen == [(0.3, 0.3)] * 5
    # a model without lr_end is called as before (LrRecorder's train_step would raise a
    # TypeError on an unexpected keyword)
    plain = LrRecorder()
    Trainer(plain, data=data, epochs=2, lr=0.5, min_lr=0.1, progress=False).fit()
    assert [lr for lr, _ in plain.seen] == lrs


def test_lr_end_across_a_resume_is_that_of_an_uninterrupted_run(tmp_path):
    data = ArrayDataset(np.zeros(10), batch_size=2)
    full = LrEndRecorder()
    Trainer(full, data=data, epochs=2, lr=0.5, min_lr=0.0, progress=False).fit()

    class Stateful(LrEndRecorder):
        def state_dict(self):
            return {"x": np.zeros(1)}

        def load_state_dict(self, state):
            pass

    first = Stateful()
    Trainer(first, data=data, epochs=2, lr=0.5, min_lr=0.0, progress=False,
            checkpoint_dir=tmp_path, callbacks=[StopAt(3)]).fit()
    assert max(checkpoint_steps(tmp_path)) == 3
    second = Stateful()
    Trainer(second, data=data, epochs=2, lr=0.5, min_lr=0.0, progress=False,
            checkpoint_dir=tmp_path).fit(resume=True)
    assert first.seen + second.seen == full.seen


class LossAt:
    """Reports ``value`` as the loss of step ``bad`` (0-based), 1.0 otherwise."""

    def __init__(self, bad, value):
        self.bad, self.value, self.calls = bad, value, 0

    def train_step(self, batch, *, lr, rng, optimizer):
        self.calls += 1
        return {"loss": self.value if self.calls == self.bad + 1 else 1.0, "count": len(batch)}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_a_non_finite_loss_stops_the_run_naming_the_step_and_the_rate(value):
    import re
    data = ArrayDataset(np.zeros(10), batch_size=2)                  # 5 batches per epoch
    recorder = Recorder()
    trainer = Trainer(LossAt(7, value), data=data, epochs=2, lr=0.5, min_lr=0.1,
                      progress=False, callbacks=[recorder])
    lr7 = trainer.lr_at(7)
    assert f"{lr7:.6g}" == "0.22"
    with pytest.raises(FloatingPointError, match=re.escape(
            f"at step 7 (epoch 1, batch 2) with lr={lr7:.6g}")):
        trainer.fit()
    assert trainer.step == 7                    # the failed step is not counted ...
    assert [e[1] for e in recorder.events if e[0] == "step"] == list(range(1, 8))
    assert len(trainer.history) == 1            # the first epoch ended, the second did not
    assert math.isfinite(trainer.history[0]["loss"])
    assert not any(e[0] == "end" for e in recorder.events)


@pytest.mark.parametrize("kwargs, error", [
    ({"lr": 0.0}, ValueError), ({"lr": float("nan")}, ValueError),
    ({"lr": 0.1, "min_lr": 0.2}, ValueError), ({"min_lr": -1e-3}, ValueError),
    ({"schedule": "cosine"}, ValueError), ({"epochs": 0}, ValueError),
    ({"epochs": 1.5}, TypeError), ({"seed": -1}, ValueError), ({"seed": None}, TypeError),
    ({"checkpoint_every": 5}, ValueError),                           # without checkpoint_dir
    ({"keep": 0}, ValueError), ({"progress": "yes"}, ValueError),
    ({"metrics": {"loss": len}}, ValueError), ({"metrics": {"acc": 3}}, TypeError),
])
def test_trainer_argument_errors(kwargs, error):
    with pytest.raises(error):
        Trainer(LrRecorder(), data=ArrayDataset(np.zeros(4), batch_size=1), **kwargs)


def test_trainer_protocol_errors(tmp_path):
    data = ArrayDataset(np.zeros(4), batch_size=1)
    with pytest.raises(TypeError, match="train_step"):
        Trainer(object(), data=data)
    with pytest.raises(TypeError, match="num_batches"):
        Trainer(LrRecorder(), data=np.zeros(4))
    with pytest.raises(TypeError, match="lr"):
        Trainer(LrRecorder(), object(), data=data)
    with pytest.raises(TypeError, match="state_dict"):
        Trainer(LrRecorder(), data=data, checkpoint_dir=tmp_path)

    class NoCount:
        def train_step(self, batch, *, lr, rng, optimizer):
            return {"loss": 1.0}
    with pytest.raises(TypeError, match="'loss' and 'count'"):
        Trainer(NoCount(), data=data, progress=False).fit()


# ----------------------------------------------------------------------------------------
# ArrayDataset
# ----------------------------------------------------------------------------------------

def test_array_dataset_covers_each_example_once_per_epoch_in_a_new_order():
    x = np.arange(10) * 10
    y = np.arange(10)
    data = ArrayDataset(x, y, batch_size=3, seed=5)
    assert len(data) == 10 and data.num_batches(0) == 4
    orders = []
    for epoch in range(3):
        batches = [data.batch(epoch, i) for i in range(data.num_batches(epoch))]
        assert [len(b[1]) for b in batches] == [3, 3, 3, 1]
        ys = np.concatenate([b[1] for b in batches])
        xs = np.concatenate([b[0] for b in batches])
        assert sorted(ys) == list(range(10)) and (xs == 10 * ys).all()
        np.testing.assert_array_equal(
            ys, np.random.default_rng([5, epoch]).permutation(10))
        orders.append(ys)
    assert not np.array_equal(orders[0], orders[1])
    # random access, deterministic: another instance, another access order, same batches
    other = ArrayDataset(x, y, batch_size=3, seed=5)
    for epoch, i in [(2, 1), (0, 3), (1, 0), (0, 3)]:
        np.testing.assert_array_equal(other.batch(epoch, i)[1], data.batch(epoch, i)[1])
    assert not np.array_equal(ArrayDataset(y, batch_size=10, seed=6).batch(0, 0), orders[0])


def test_array_dataset_options_and_errors():
    x = np.arange(10)
    plain = ArrayDataset(x, batch_size=4, shuffle=False)
    b = plain.batch(0, 1)
    assert isinstance(b, np.ndarray) and b.tolist() == [4, 5, 6, 7]   # one array: no tuple
    assert np.shares_memory(b, x)                                     # a view when unshuffled
    dropped = ArrayDataset(x, batch_size=4, drop_last=True)
    assert dropped.num_batches(0) == 2
    assert sorted(np.concatenate([dropped.batch(0, i) for i in range(2)]).tolist()) != list(x)
    with pytest.raises(IndexError):
        dropped.batch(0, 2)
    with pytest.raises(IndexError):
        plain.batch(0, -1)
    with pytest.raises(ValueError, match="same length"):
        ArrayDataset(x, np.arange(9), batch_size=2)
    with pytest.raises(ValueError):
        ArrayDataset(x, batch_size=0)
    with pytest.raises(ValueError):
        ArrayDataset(batch_size=2)
    with pytest.raises(ValueError, match="0-d"):
        ArrayDataset(np.float64(1.0), batch_size=1)
    with pytest.raises(ValueError):
        ArrayDataset(x, batch_size=2).batch(-1, 0)


def test_batched_dataset_bounds_order_and_checks():
    class Items(BatchedDataset):
        def take(self, items):
            return np.arange(len(self))[items]

    uneven = Items(6, bounds=[0, 1, 1, 6], shuffle=False)
    assert uneven.batch_size is None and uneven.num_batches() == 3
    assert [uneven.batch(0, i).tolist() for i in range(3)] == [[0], [], [1, 2, 3, 4, 5]]
    shuffled = Items(6, bounds=[0, 2, 6], seed=4)
    np.testing.assert_array_equal(np.concatenate([shuffled.batch(3, 0), shuffled.batch(3, 1)]),
                                  np.random.default_rng([4, 3]).permutation(6))
    order = shuffled.permutation(3)
    assert order is shuffled.permutation(3) and not order.flags.writeable  # cached, read-only
    with pytest.raises(TypeError, match="not both"):
        Items(6, batch_size=2, bounds=[0, 6])
    with pytest.raises(TypeError, match="not both"):
        Items(6, bounds=[0, 6], drop_last=True)
    for bad in ([], [1, 6], [0, 4, 2], [0, 7]):
        with pytest.raises(ValueError, match="bounds"):
            Items(6, bounds=bad)
    with pytest.raises(IndexError, match="epoch 0 has 3 batches"):
        uneven.batch(0, 3)
    with pytest.raises(NotImplementedError, match="take"):
        BatchedDataset(2, batch_size=1).batch(0, 0)


# ----------------------------------------------------------------------------------------
# flatten_state / unflatten_state
# ----------------------------------------------------------------------------------------

def _tricky_state():
    f64 = np.array([0.0, -0.0, np.inf, -np.inf, 1e-310, np.pi])
    nan_payload = np.array([0x7FF8000000000123, 0xFFF0000000000001], np.uint64).view(np.float64)
    return {
        "plain": [None, True, False, 0, -3, 2 ** 100, 1.0, -0.0, 1e-310, 0.1, "", "héllo/%"],
        "special floats": (math.inf, -math.inf, math.nan),
        "arrays": {
            "f64": f64, "nan payloads": nan_payload,
            "f32": np.arange(6, dtype=np.float32).reshape(2, 3) - np.float32(2.5),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "strided": np.arange(10.0)[::3],
            "i32": np.array([-1, 2 ** 31 - 1], np.int32), "bool": np.array([True, False]),
            "c128": np.array([1 + 2j]), "unicode": np.array(["a", "bé"]),
            "empty": np.zeros((0, 4), np.float32), "0-d": np.array(7.5),
            "f16": np.array([1.5], np.float16),
        },
        "numpy scalars": [np.float64(0.1), np.float32(-0.0), np.int64(-5), np.bool_(True),
                          np.str_("x")],
        "weird keys": {"": 1, "a/b": [2], "a%2Fb": (3,), "0": {}, "/": [], "x.npy": ()},
        "nested": [[[]], ({"t": ({},)},)],
    }


def test_flatten_round_trip_through_npz_is_exact(tmp_path):
    state = _tricky_state()
    flat = flatten_state(state, "s")
    assert all(key == "s" or key.startswith("s/") for key in flat)
    assert flat["s"].shape == () and flat["s"].dtype.kind == "U"
    path = tmp_path / "state.npz"
    np.savez(path, **flat)
    with np.load(path, allow_pickle=False) as npz:
        back = unflatten_state(npz, "s")
    assert_same_state(back, state)
    # the NaN floats keep their bits too, and arrays keep their memory layout
    assert struct.pack(">d", back["special floats"][2]) == struct.pack(">d", math.nan)
    assert back["arrays"]["fortran"].flags.f_contiguous
    assert isinstance(back["special floats"], tuple)
    assert isinstance(back["numpy scalars"][1], np.float32)
    # a bare array as the whole state
    flat = flatten_state(np.arange(3), "a")
    assert_same_state(unflatten_state(flat, "a"), np.arange(3))


def test_flatten_several_prefixes_share_one_file():
    flat = flatten_state({"x": np.ones(2)}, "model")
    flat.update(flatten_state({"x": np.zeros(2)}, "optimizer"))
    buf = io.BytesIO()
    np.savez(buf, **flat)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        assert unflatten_state(npz, "model")["x"].tolist() == [1, 1]
        assert unflatten_state(npz, "optimizer")["x"].tolist() == [0, 0]
        with pytest.raises(KeyError):
            unflatten_state(npz, "rng")


def test_flatten_restores_an_adam_state_into_a_fresh_optimizer():
    trainer, model, opt = make_run(epochs=1)
    trainer.fit()
    state = opt.state_dict()
    buf = io.BytesIO()
    np.savez(buf, **flatten_state(state, "opt"))
    buf.seek(0)
    fresh = optim.Adam(BagLogReg().embedding, lr=0.5)
    with np.load(buf, allow_pickle=False) as npz:
        fresh.load_state_dict(unflatten_state(npz, "opt"))
    assert_same_state(fresh.state_dict(), state)


@pytest.mark.parametrize("bad, error", [
    ({"a": np.array([object()])}, TypeError), ({1: 2}, TypeError), ({"s": {1, 2}}, TypeError),
    ([b"bytes"], TypeError),
])
def test_flatten_refuses_what_it_cannot_store_exactly(bad, error):
    with pytest.raises(error):
        flatten_state(bad, "p")


@pytest.mark.parametrize("prefix", ["", "a/b", None])
def test_flatten_prefix_errors(prefix):
    with pytest.raises(ValueError):
        flatten_state({}, prefix)


# ----------------------------------------------------------------------------------------
# History, callbacks, metrics, progress
# ----------------------------------------------------------------------------------------

def test_history_callbacks_and_metrics(reference):
    rec = Recorder()
    trainer, model, _ = make_run(callbacks=[rec, object()])    # an object without hooks too
    history = trainer.fit()
    assert history is trainer.history and len(history) == 3
    assert [h["epoch"] for h in history] == [0, 1, 2]
    for h in history:
        assert set(h) == {"epoch", "loss", "count", "steps", "seconds", "lr", "accuracy"}
        assert h["steps"] == 8 and h["seconds"] >= 0 and 0 <= h["accuracy"] <= 1
    assert history[-1]["accuracy"] > 0.6                      # it learns
    assert history[-1]["loss"] < history[0]["loss"]
    assert_same_history(history, reference[2])                # runs are reproducible
    kinds = [e[0] for e in rec.events]
    assert kinds == ["begin"] + (["step"] * 8 + ["epoch"]) * 3 + ["end"]
    steps = [e for e in rec.events if e[0] == "step"]
    assert [e[1] for e in steps] == list(range(1, 25))
    first = steps[0][2]
    assert {"loss", "count", "bags", "lr", "epoch", "batch"} <= set(first)
    assert first["lr"] == 0.05 and first["batch"] == 0 and first["bags"] == 16
    # the epoch's mean loss and summed count are those of its steps
    losses = [e[2]["loss"] for e in steps[:8]]
    assert history[0]["loss"] == sum(losses) / 8
    assert history[0]["count"] == sum(e[2]["count"] for e in steps[:8])
    epoch_logs = [e for e in rec.events if e[0] == "epoch"]
    assert [e[1] for e in epoch_logs] == [0, 1, 2] and epoch_logs[1][2] == history[1]
    assert trainer.step == 24 and trainer.epoch == 3 and trainer.batch == 0


def test_stop_training_from_callbacks():
    class StopAfterEpoch:
        def on_epoch_end(self, trainer, epoch, logs):
            trainer.stop_training = True
    trainer, _, _ = make_run(callbacks=[StopAfterEpoch()])
    assert len(trainer.fit()) == 1 and trainer.step == 8

    class StopAtBegin:
        def on_train_begin(self, trainer):
            trainer.stop_training = True
    trainer, _, _ = make_run(callbacks=[StopAtBegin()])
    assert trainer.fit() == [] and trainer.step == 0

    trainer, _, _ = make_run(callbacks=[StopAt(11)])
    assert len(trainer.fit()) == 1 and trainer.step == 11     # the partial epoch is not in it
    assert (trainer.epoch, trainer.batch) == (1, 3)


def test_progress_bar_on_a_non_terminal_is_short(capsys):
    trainer, _, _ = make_run(progress=True)
    trainer.fit()
    err = capsys.readouterr().err
    assert "epoch" in err and "step" in err
    assert len(err.splitlines()) <= 10 and err.count("\r") <= 10
    trainer, _, _ = make_run(progress=None)                   # auto: off when not a terminal
    trainer.fit()
    assert capsys.readouterr().err == ""


def test_docstring_examples():
    result = doctest.testmod(fastembed.train, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------

def test_checkpoint_contents(tmp_path):
    trainer, model, opt = make_run(tmp_path, checkpoint_every=5, keep=None)
    trainer.fit()
    # every 5 steps except where an epoch ends, and at every epoch end
    assert checkpoint_steps(tmp_path) == [5, 8, 10, 15, 16, 20, 24]
    path = tmp_path / "ckpt-000000010.npz"
    with np.load(path, allow_pickle=False) as npz:
        files = set(npz.files)
        state = json.loads(str(npz["trainer"][()]))
        assert npz["trainer"].shape == () and npz["trainer"].dtype.kind == "U"
    assert {"trainer", "model", "optimizer", "rng", "model/embedding", "model/w",
            "optimizer/state/0/state1"} <= files
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 10)
    assert state["config"] == {"epochs": 3, "lr": 0.05, "min_lr": 0.05 / 250,
                               "schedule": "linear", "seed": 7, "num_batches": [8, 8, 8]}
    assert len(state["history"]) == 1 and state["epoch_progress"]["steps"] == 2
    final = load_checkpoint(tmp_path / "ckpt-000000024.npz")
    assert_same_state(final["model"], model.state_dict())
    assert_same_state(final["optimizer"], opt.state_dict())
    assert final["rng"] == trainer.rng.bit_generator.state
    assert final["trainer"]["history"] == trainer.history
    assert trainer.last_checkpoint == tmp_path / "ckpt-000000024.npz"


def test_keep_rotates_old_checkpoints(tmp_path):
    trainer, _, _ = make_run(tmp_path / "two", checkpoint_every=3, keep=2)
    trainer.fit()
    assert checkpoint_steps(tmp_path / "two") == [21, 24]
    trainer, _, _ = make_run(tmp_path / "one", checkpoint_every=3, keep=1)
    trainer.fit()
    assert checkpoint_steps(tmp_path / "one") == [24]
    trainer, _, _ = make_run(tmp_path / "all", checkpoint_every=3, keep=None)
    trainer.fit()
    assert checkpoint_steps(tmp_path / "all") == [3, 6, 8, 9, 12, 15, 16, 18, 21, 24]


def test_save_checkpoint_from_a_callback(tmp_path, reference):
    class SaveAt:
        def on_step_end(self, trainer, step, logs):
            if step == 13:
                assert trainer.save_checkpoint() == tmp_path / "ckpt-000000013.npz"
            if step == 14:
                raise KeyboardInterrupt  # as Ctrl-C: no checkpoint of step 14

    trainer, _, _ = make_run(tmp_path, callbacks=[SaveAt()])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert checkpoint_steps(tmp_path) == [8, 13]
    trainer, model, opt = make_run(tmp_path)
    assert_same_history(trainer.fit(resume=True), reference[2])
    assert_same_run(model, opt, reference[0], reference[1])
    with pytest.raises(ValueError, match="checkpoint_dir"):
        make_run()[0].save_checkpoint()


def test_resume_from_the_end_of_an_epoch_before_its_epoch_end(tmp_path, reference):
    """A checkpoint saved after an epoch's last step, before on_epoch_end: resume ends it."""
    class SaveThenCrash:
        def on_step_end(self, trainer, step, logs):
            if step == 16:
                trainer.save_checkpoint()

        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:
                raise RuntimeError("crash before the epoch's checkpoint")

    trainer, _, _ = make_run(tmp_path, callbacks=[SaveThenCrash()])
    with pytest.raises(RuntimeError):
        trainer.fit()
    state = load_checkpoint(tmp_path / "ckpt-000000016.npz")["trainer"]
    assert (state["epoch"], state["batch"], len(state["history"])) == (1, 8, 1)
    trainer, model, opt = make_run(tmp_path)
    assert_same_history(trainer.fit(resume=True), reference[2])
    assert_same_run(model, opt, reference[0], reference[1])


def test_the_trainer_rng_drives_the_model(reference):
    """Sanity check of the test model: another seed gives other weights (so resume tests
    that compare weights do check that the rng state is restored)."""
    trainer, model, opt = make_run(seed=8)
    trainer.fit()
    with pytest.raises(AssertionError):
        assert_same_run(model, None, reference[0], None)


def test_a_failed_rename_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch,
                                                                reference):
    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    class BreakAt:
        def on_step_end(self, trainer, step, logs):
            if step == 9:
                monkeypatch.setattr(os, "replace", broken_replace)

    trainer, _, _ = make_run(tmp_path, checkpoint_every=3, callbacks=[BreakAt()])
    with pytest.raises(OSError, match="simulated"):
        trainer.fit()                                     # the save at step 9 fails
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000000003.npz", "ckpt-000000006.npz", "ckpt-000000008.npz"]  # no temp file
    assert load_checkpoint(tmp_path / "ckpt-000000008.npz")["trainer"]["step"] == 8
    trainer, model, opt = make_run(tmp_path, checkpoint_every=3)
    trainer.fit(resume=True)
    assert_same_run(model, opt, reference[0], reference[1])


def test_a_crash_while_writing_leaves_no_file_under_a_final_name(tmp_path, monkeypatch):
    trainer, _, _ = make_run(tmp_path, epochs=1)
    trainer.fit()

    def crash(fd):
        raise OSError("power cut (simulated)")
    monkeypatch.setattr(os, "fsync", crash)               # the data was written, not synced
    with pytest.raises(OSError, match="simulated"):
        trainer.save_checkpoint()
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000000008.npz"]


def test_leftover_temp_files_are_ignored_and_cleaned_on_resume(tmp_path, reference):
    trainer, _, _ = make_run(tmp_path, callbacks=[StopAt(12)])
    trainer.fit()
    leftover = tmp_path / ".ckpt-000000015.npz.k2j4h1.tmp"     # as a killed writer leaves
    leftover.write_bytes(b"PK\x03\x04 half a zip")
    trainer, model, opt = make_run(tmp_path)
    trainer.fit(resume=True)
    assert not leftover.exists()
    assert_same_run(model, opt, reference[0], reference[1])


def test_fresh_start_refuses_a_directory_with_checkpoints(tmp_path):
    make_run(tmp_path, epochs=1)[0].fit()
    with pytest.raises(FileExistsError, match="resume=True"):
        make_run(tmp_path, epochs=1)[0].fit()


def test_resume_true_without_checkpoints_starts_fresh(tmp_path, caplog, reference):
    trainer, model, opt = make_run(tmp_path / "new")
    with caplog.at_level(logging.WARNING, logger="fastembed.train"):
        trainer.fit(resume=True)
    assert "starting a fresh run" in caplog.text
    assert_same_run(model, opt, reference[0], reference[1])
    # a finished run resumed again: nothing to do, same history
    trainer, model2, _ = make_run(tmp_path / "new")
    assert_same_history(trainer.fit(resume="latest"), reference[2])
    assert_same_state(model2.state_dict(), model.state_dict())


def test_resume_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_dir"):
        make_run()[0].fit(resume=True)
    with pytest.raises(FileNotFoundError):
        make_run()[0].fit(resume=tmp_path / "missing.npz")
    with pytest.raises(TypeError):
        make_run()[0].fit(resume=3)


# ----------------------------------------------------------------------------------------
# Resume: bitwise equal to an uninterrupted run
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stop_at", [1, 5, 8, 13, 23])
def test_resume_after_stop_is_bitwise_equal(tmp_path, dtype, stop_at):
    ref_trainer, ref_model, ref_opt = make_run(dtype=dtype)
    ref_history = ref_trainer.fit()

    trainer, model, _ = make_run(tmp_path, dtype=dtype, checkpoint_every=4,
                                 callbacks=[StopAt(stop_at)])
    trainer.fit()
    assert trainer.step == stop_at
    assert max(checkpoint_steps(tmp_path)) == stop_at         # saved where it stopped
    with pytest.raises(AssertionError):                       # it did stop early
        assert_same_run(model, None, ref_model, None)

    trainer, model, opt = make_run(tmp_path, dtype=dtype, checkpoint_every=4)
    history = trainer.fit(resume=True)
    assert_same_run(model, opt, ref_model, ref_opt)
    assert_same_history(history, ref_history)
    assert trainer.rng.bit_generator.state == ref_trainer.rng.bit_generator.state


def test_resume_after_an_exception_from_an_older_checkpoint(tmp_path, reference):
    class Crash:
        def on_step_end(self, trainer, step, logs):
            if step == 19:
                raise RuntimeError("crash")
    trainer, _, _ = make_run(tmp_path, checkpoint_every=5, keep=None, callbacks=[Crash()])
    with pytest.raises(RuntimeError):
        trainer.fit()
    assert checkpoint_steps(tmp_path) == [5, 8, 10, 15, 16]   # no checkpoint of step 19
    trainer, model, opt = make_run(tmp_path, checkpoint_every=5, keep=None)
    trainer.fit(resume=True)                                  # from step 16
    assert_same_run(model, opt, reference[0], reference[1])
    # an explicit, older checkpoint: later files are overwritten as the run reaches them
    trainer, model, opt = make_run(tmp_path, checkpoint_every=5, keep=2)
    trainer.fit(resume=tmp_path / "ckpt-000000005.npz")
    assert_same_run(model, opt, reference[0], reference[1])
    assert checkpoint_steps(tmp_path) == [20, 24]


def test_corrupt_checkpoints(tmp_path, reference):
    trainer, _, _ = make_run(tmp_path, callbacks=[StopAt(14)], checkpoint_every=5)
    trainer.fit()
    assert checkpoint_steps(tmp_path) == [8, 10, 14]
    newest = tmp_path / "ckpt-000000014.npz"
    newest.write_bytes(newest.read_bytes()[:-100])            # truncated
    garbage = tmp_path / "ckpt-000000012.npz"
    garbage.write_bytes(b"not a checkpoint at all")
    for bad in (newest, garbage):
        with pytest.raises(ValueError, match=bad.name):
            make_run(tmp_path, checkpoint_every=5)[0].fit(resume=bad)
    flipped = tmp_path / "flipped.npz"                        # one byte of an array changed
    data = bytearray((tmp_path / "ckpt-000000010.npz").read_bytes())
    table = load_checkpoint(tmp_path / "ckpt-000000010.npz")["model"]["embedding"]
    at = bytes(data).find(table.tobytes())
    assert at > 0
    data[at + 100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="flipped.npz"):
        load_checkpoint(flipped)
    flipped.unlink()

    trainer, model, opt = make_run(tmp_path, checkpoint_every=5)
    with pytest.warns(RuntimeWarning, match="unreadable") as warned:
        trainer.fit(resume=True)                              # falls back to step 10
    assert len(warned) == 2, [str(w.message) for w in warned]
    assert_same_run(model, opt, reference[0], reference[1])

    all_bad = tmp_path / "bad"
    all_bad.mkdir()
    (all_bad / "ckpt-000000003.npz").write_bytes(b"")
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="no readable"):
        make_run(all_bad)[0].fit(resume=True)


@pytest.mark.parametrize("change", [
    {"lr": 0.04}, {"epochs": 4}, {"seed": 8}, {"batch_size": 32}, {"schedule": "constant"},
    {"min_lr": 0.0}, {"optimizer": False},
])
def test_resume_refuses_an_incompatible_configuration(tmp_path, change):
    make_run(tmp_path, callbacks=[StopAt(10)])[0].fit()
    trainer, model, _ = make_run(tmp_path, **change)
    before = model.state_dict()
    with pytest.raises(ValueError, match="ckpt-000000010.npz"):
        trainer.fit(resume=True)
    assert_same_state(model.state_dict(), before)             # nothing was loaded


# ----------------------------------------------------------------------------------------
# The key test: SIGKILL mid-run, resume in a fresh process, bitwise equal
# ----------------------------------------------------------------------------------------

CHILD = """
import json, pathlib, sys, time
sys.path[:0] = [{tests_dir!r}, {package_root!r}]   # the parent's fastembed, whatever its path
import numpy as np
from test_train import make_run

cfg = json.loads(sys.argv[1])

class Slow:
    def on_step_end(self, trainer, step, logs):
        time.sleep(cfg["sleep"])

trainer, model, opt = make_run(cfg["ckpt"], batch_size=8, checkpoint_every=5,
                               callbacks=[Slow()] if cfg["sleep"] else [])
trainer.fit(resume=cfg["resume"])
np.savez(cfg["out"], **model.state_dict())
pathlib.Path(cfg["done"]).write_text("done")
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_mid_run_then_resume_in_a_new_process_is_bitwise_equal(tmp_path):
    script = tmp_path / "child.py"
    package_root = pathlib.Path(fastembed.train.__file__).resolve().parent.parent
    script.write_text(CHILD.format(tests_dir=str(TESTS_DIR), package_root=str(package_root)))
    ckpt = tmp_path / "ckpt"
    nb = 16                                                   # 128 examples / batches of 8

    def child(resume, sleep, tag):
        cfg = {"ckpt": str(ckpt), "resume": resume, "sleep": sleep,
               "out": str(tmp_path / f"{tag}.npz"), "done": str(tmp_path / f"{tag}.done")}
        log = open(tmp_path / f"{tag}.log", "wb")
        proc = subprocess.Popen([sys.executable, str(script), json.dumps(cfg)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp_path))
        log.close()
        return proc, cfg

    # 1. Train slowly (10 ms per step, 48 steps); kill once a checkpoint exists in the middle
    #    of the second epoch, i.e. well before the end.
    proc, cfg = child(None, 0.01, "first")
    deadline = time.monotonic() + 120
    while True:
        steps = checkpoint_steps(ckpt) if ckpt.exists() else []
        if any(s > nb and s % nb for s in steps):
            break
        assert proc.poll() is None, (tmp_path / "first.log").read_text()
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not pathlib.Path(cfg["done"]).exists()             # killed mid-run
    killed_at = max(checkpoint_steps(ckpt))
    assert killed_at < 3 * nb

    # 2. Resume in a fresh process, to the end.
    proc, cfg = child(True, 0, "second")
    assert proc.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()
    assert pathlib.Path(cfg["done"]).exists()

    # 3. The uninterrupted run, here.
    ref_trainer, ref_model, ref_opt = make_run(tmp_path / "ref", batch_size=8,
                                               checkpoint_every=5)
    ref_history = ref_trainer.fit()
    with np.load(cfg["out"], allow_pickle=False) as npz:
        for name, value in ref_model.state_dict().items():
            assert_bitwise_equal(npz[name], value)
    resumed = load_checkpoint(ckpt / "ckpt-000000048.npz")
    uninterrupted = load_checkpoint(tmp_path / "ref" / "ckpt-000000048.npz")
    assert_same_state(resumed["model"], uninterrupted["model"])
    assert_same_state(resumed["optimizer"], uninterrupted["optimizer"])
    assert resumed["rng"] == uninterrupted["rng"]
    assert_same_history(resumed["trainer"]["history"], ref_history)
    assert not list(ckpt.glob(".*.tmp"))
