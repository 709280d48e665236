"""The parameter protocol: nn.Parameter, nn.Module, and the optimizers that take Parameters.

Every trainable piece (Embedding, EmbeddingBag, Linear, a composed Module, the models) yields
Parameters from ``parameters()``; the optimizers take any iterable of them, layers and mixes;
``state_dict()`` / ``load_state_dict()`` work on a composed model; the fused
``backward_and_step`` finds the layer's Parameter in an optimizer given a parameter list.
"""
from __future__ import annotations

import base64
import copy
import pickle

import numpy as np
import pytest

import fastembed
from fastembed import nn, optim
from fastembed.models.classifier import BagClassifier
from fastembed.models.word2vec import CBOW, SkipGram
from fastembed.train import ArrayDataset, Trainer

OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.1),
    "RowWiseAdagrad": lambda p: optim.RowWiseAdagrad(p, lr=0.1),
    "Adam": lambda p: optim.Adam(p, lr=0.05),
    "AdamW": lambda p: optim.AdamW(p, lr=0.05, weight_decay=0.1),
}


def toy_bags(rng, n_docs, vocab=1000, dim_classes=2):
    """A separable task: class c documents draw their ids from the c-th half of the vocabulary
    (plus one id from anywhere, as noise). Returns (ids, offsets, labels)."""
    labels = rng.integers(0, dim_classes, size=n_docs)
    half = vocab // dim_classes
    docs = []
    for y in labels:
        n = int(rng.integers(3, 12))
        doc = rng.integers(y * half, (y + 1) * half, size=n)
        docs.append(np.append(doc, rng.integers(0, vocab)))
    offsets = np.cumsum([0] + [d.size for d in docs[:-1]]).astype(np.int64)
    return np.concatenate(docs).astype(np.int64), offsets, labels.astype(np.int64)


def batches(ids, offsets, labels, size):
    ends = np.append(offsets, ids.size)
    for lo in range(0, offsets.size, size):
        hi = min(lo + size, offsets.size)
        yield (ids[ends[lo]:ends[hi]], offsets[lo:hi] - ends[lo], labels[lo:hi])


class BagModel(nn.Module):
    """The composed model of the README: a bag of ids, then a linear layer."""

    def __init__(self, vocab=1000, dim=16, classes=2, seed=0):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean", seed=seed)
        self.linear = nn.Linear(dim, classes, seed=seed)

    def forward(self, ids, offsets):
        return self.linear(self.bag(ids, offsets))

    def backward(self, grad_logits):
        self.bag.backward(self.linear.backward(grad_logits))


# ---------------------------------------------------------------------------------------
# The issue's example
# ---------------------------------------------------------------------------------------

def test_the_issue_example_runs_and_converges():
    rng = np.random.default_rng(0)
    bag = fastembed.EmbeddingBag(1000, 16, mode="mean", seed=0)
    lin = fastembed.Linear(16, 2, seed=0)
    opt = fastembed.optim.Adam([*bag.parameters(), *lin.parameters()], lr=0.05)
    ids, offsets, labels = toy_bags(rng, 2000)
    losses = []
    for epoch in range(3):
        for b_ids, b_off, b_y in batches(ids, offsets, labels, 32):
            logits = lin(bag(b_ids, b_off))
            loss, grad = nn.softmax_cross_entropy(logits, b_y)
            bag.backward(lin.backward(grad))
            opt.step()
            opt.zero_grad()
            losses.append(loss)
    assert losses[0] > 0.6                     # about log 2 at the start
    assert np.mean(losses[-20:]) < 0.1
    test_ids, test_offsets, test_labels = toy_bags(np.random.default_rng(1), 500)
    accuracy = np.mean(lin(bag(test_ids, test_offsets)).argmax(axis=1) == test_labels)
    assert accuracy > 0.97


def test_a_composed_module_converges_with_its_parameters_generator_and_fused_steps():
    rng = np.random.default_rng(2)
    model = BagModel(seed=1)
    opt = optim.Adam(model.parameters(), lr=0.05)  # a generator
    ids, offsets, labels = toy_bags(rng, 1500)
    for epoch in range(2):
        for b_ids, b_off, b_y in batches(ids, offsets, labels, 32):
            loss, grad = nn.softmax_cross_entropy(model(b_ids, b_off), b_y)
            model.bag.backward_and_step(model.linear.backward(grad), opt)
            opt.step()                              # the linear layer
            opt.zero_grad()
    test = toy_bags(np.random.default_rng(3), 500)
    assert np.mean(model(test[0], test[1]).argmax(axis=1) == test[2]) > 0.97
    assert loss < 0.1


# ---------------------------------------------------------------------------------------
# parameters(): Parameters, each once, in order
# ---------------------------------------------------------------------------------------

def test_every_piece_yields_parameters_in_order():
    emb, bag = nn.Embedding(5, 3), nn.EmbeddingBag(6, 3)
    lin, lin_nb = nn.Linear(3, 2), nn.Linear(3, 2, bias=False)
    for layer in (emb, bag):
        params = list(layer.parameters())
        assert params == [layer.parameter]
        assert isinstance(params[0], nn.Parameter) and params[0].sparse
        assert params[0].data is layer.weight and params[0].requires_grad
    assert list(lin.parameters()) == [lin.weight, lin.bias]
    assert not any(p.sparse for p in lin.parameters())
    assert list(lin_nb.parameters()) == [lin_nb.weight]
    assert list(nn.Pooling().parameters()) == []
    model = BagModel()
    assert list(model.parameters()) == [model.bag.parameter, model.linear.weight,
                                        model.linear.bias]
    iterator = model.parameters()
    assert next(iterator) is model.bag.parameter   # torch's next(model.parameters()) idiom
    for m in (SkipGram([5, 3, 2], dim=4), CBOW([5, 3, 2], dim=4),
              BagClassifier(5, 2, dim=3, bigram_buckets=2)):
        params = list(m.parameters())
        assert params and all(isinstance(p, nn.Parameter) for p in params)
        assert len({id(p) for p in params}) == len(params)


def test_a_shared_parameter_is_listed_once_under_its_first_name():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(7, 3)
            self.decoder = nn.Embedding(weight=self.encoder.weight)
            self.decoder.register_parameter("weight", self.encoder.parameter)

    model = Tied()
    assert [n for n, _ in model.named_parameters()] == ["encoder.weight"]
    assert list(model.state_dict()) == ["encoder.weight"]
    assert list(model.modules()) == [model, model.encoder, model.decoder]


def test_named_parameters_of_a_nested_model():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.words = nn.EmbeddingBag(10, 4)
            self.proj = nn.Linear(4, 4)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(np.ones((1, 4), np.float32), name="scale")
            self.encoder = Encoder()
            self.pool = nn.Pooling()
            self.head = nn.Linear(4, 3, bias=False)

    model = Model()
    assert [n for n, _ in model.named_parameters()] == [
        "scale", "encoder.words.weight", "encoder.proj.weight", "encoder.proj.bias",
        "head.weight"]
    assert [n for n, _ in model.named_children()] == ["encoder", "pool", "head"]
    assert [type(m).__name__ for m in model.modules()] == [
        "Model", "Encoder", "EmbeddingBag", "Linear", "Pooling", "Linear"]
    assert model.get_parameter("encoder.proj.bias") is model.encoder.proj.bias
    with pytest.raises(AttributeError, match="nothing"):
        model.get_parameter("encoder.nothing")
    with pytest.raises(AttributeError, match="nowhere"):
        model.get_parameter("nowhere.weight")
    assert "(encoder): Encoder(" in repr(model) and "(head): Linear(4, 3" in repr(model)


def test_registration_follows_assignment():
    m = nn.Module()
    m.b = nn.Linear(2, 2)
    m.a = nn.Linear(2, 2)
    m.b = nn.Linear(2, 3)                    # re-assigned: keeps its place
    assert [n for n, _ in m.named_children()] == ["b", "a"]
    assert m.b.out_features == 3
    m.a = None                               # something else: unregistered
    assert [n for n, _ in m.named_children()] == ["b"]
    del m.b
    assert list(m.children()) == [] and list(m.parameters()) == []
    with pytest.raises(TypeError):
        m.register_parameter("x", np.zeros((2, 2)))
    with pytest.raises(ValueError):
        m.register_parameter("x.y", nn.Parameter(np.zeros((2, 2))))
    with pytest.raises(NotImplementedError):
        m()

    class Late(nn.Module):                   # attributes assigned before Module.__init__
        def __init__(self):
            self.linear = nn.Linear(2, 2)
            super().__init__()

    assert [n for n, _ in Late().named_parameters()] == ["linear.weight", "linear.bias"]


def test_frozen_parameters_are_left_out_of_parameters_but_saved():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.pretrained = nn.Embedding.from_pretrained(np.eye(4, dtype=np.float32))
            self.linear = nn.Linear(4, 2)

    model = Model()
    assert [n for n, _ in model.named_parameters()] == ["linear.weight", "linear.bias"]
    assert [n for n, _ in model.named_parameters(include_frozen=True)] == [
        "pretrained.weight", "linear.weight", "linear.bias"]
    assert list(model.state_dict()) == ["pretrained.weight", "linear.weight", "linear.bias"]
    model.linear.bias.requires_grad = False  # Linear computes no gradient for it
    model.linear(np.ones((1, 4), np.float32))
    model.linear.backward(np.ones((1, 2), np.float32))
    assert model.linear.bias.grad is None and model.linear.weight.grad is not None


# ---------------------------------------------------------------------------------------
# What the optimizers take
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_take_generators_layers_parameters_and_mixes(name):
    make = OPTIMIZERS[name]
    model = BagModel(vocab=20, dim=4)
    expected = [model.bag.parameter, model.linear.weight, model.linear.bias]
    for given in (model.parameters(), list(model.parameters()), tuple(model.parameters()),
                  model, [model.bag, model.linear], [model.bag, *model.linear.parameters()],
                  (p for p in expected)):
        opt = make(given)
        assert opt.params == expected and opt.layers is opt.params
        assert all(p in opt for p in expected)
    single = make(model.linear.weight)
    assert single.params == [model.linear.weight] and model.bag.parameter not in single


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_refuse_duplicates_and_what_they_cannot_train(name):
    make = OPTIMIZERS[name]
    model = BagModel(vocab=20, dim=4)
    p = model.linear.weight
    for given in ([p, p], [model.bag, model.bag.parameter], [model, model.linear],
                  (q for q in (p, model.linear.bias, p))):
        with pytest.raises(ValueError, match="given twice"):
            make(given)
    with pytest.raises(TypeError, match="ndarray"):
        make(np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="ndarray"):
        make([p, np.zeros((3, 2), np.float32)])
    with pytest.raises(TypeError):
        make(3)
    for empty in ([], (), iter([]), nn.Pooling()):
        with pytest.raises(ValueError, match="no parameters"):
            make(empty)
    read_only = np.zeros((3, 2), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        make(nn.Parameter(read_only))


def test_a_frozen_layer_is_accepted_and_trained_once_unfrozen():
    layer = nn.Embedding(weight=np.zeros((4, 2), np.float32), trainable=False)
    opt = optim.SGD(layer, lr=1.0)           # as before: a frozen layer may be given
    assert opt.params == [layer.parameter]
    layer([1])
    assert layer.backward(np.ones((1, 2), np.float32)) is None
    opt.step()
    assert not layer.weight.any()
    layer.trainable = True
    layer([1])
    layer.backward(np.ones((1, 2), np.float32))
    opt.step()
    np.testing.assert_array_equal(layer.weight[1], [-1, -1])


def test_the_public_fused_protocol_checks_before_changing_anything():
    table = nn.Parameter(np.ones((4, 2), np.float32), sparse=True)
    other = nn.Parameter(np.ones((4, 2), np.float32), sparse=True)
    opt = optim.Adam([table], lr=0.1)
    g = np.ones((3, 2), np.float32)
    cases = [
        (dict(param=other, grad=g, flat=np.array([0, 1, 2])), ValueError),
        (dict(param=table, grad=g.astype(np.float64), flat=np.array([0, 1, 2])), TypeError),
        (dict(param=table, grad=g, flat=np.array([0, 1, 4])), IndexError),
        (dict(param=table, grad=g, flat=np.array([0, -1, 2])), IndexError),
        (dict(param=table, grad=g, flat=np.array([0, 1])), ValueError),
        (dict(param=table, grad=g, flat=np.array([0.0, 1, 2])), TypeError),
        (dict(param=table, grad=g, flat=np.array([0, 1, 2]), src_row=np.array([0, 1, 3])),
         IndexError),
        (dict(param=table, grad=g, flat=np.array([0, 1, 2]),
              scale=np.ones(3, np.float64)), TypeError),
    ]
    for kwargs, exc in cases:
        with pytest.raises(exc):
            opt.fused_step(**kwargs)
    with pytest.raises(ValueError, match="not one of"):
        opt.step_parameter(other)
    table.accumulate(np.ones((4, 2), np.float32))
    with pytest.raises(RuntimeError, match="already holds"):
        opt.fused_step(table, g, np.array([0, 1, 2]))
    assert (table.data == 1).all() and opt.steps == [0]
    assert not any(s.any() for s in opt.state[0])
    table.zero_grad()
    with opt.lock, table.lock:                  # re-entrant: the protocol's own order
        opt.fused_step(table, g, np.array([2, 2, 0]), skip_row=0)
    assert opt.steps == [1] and (table.data[2] < 1).all() and (table.data[:2] == 1).all()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("config", ["emb", "bag_mean", "bag_max", "bag_sum_padding"])
def test_fused_step_through_a_parameter_list_equals_the_unfused_path(name, config):
    rng = np.random.default_rng(5)
    table = rng.standard_normal((50, 6)).astype(np.float32)

    def build():
        if config == "emb":
            layer = nn.Embedding(weight=table.copy())
        else:
            mode, _, padding = config[4:].partition("_")
            layer = nn.EmbeddingBag(weight=table.copy(), mode=mode,
                                    padding_idx=0 if padding else None)
        model = nn.Module()
        model.layer = layer
        model.linear = nn.Linear(6, 2, seed=0)
        return model, OPTIMIZERS[name](model.parameters())

    fused, fused_opt = build()
    plain, plain_opt = build()
    for step in range(4):
        ids = rng.integers(0, 50, size=(8, 5))
        grad = rng.standard_normal((8, 5, 6) if config == "emb" else (8, 6)).astype(
            np.float32)
        fused.layer(ids)
        fused.layer.backward_and_step(grad, fused_opt)
        plain.layer(ids)
        plain.layer.backward(grad)
        plain_opt.step()
        plain_opt.zero_grad()
        assert fused.layer.grad is None
    assert fused.layer.weight.tobytes() == plain.layer.weight.tobytes()
    for a, b in zip(fused_opt.state, plain_opt.state):
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert fused_opt.steps == plain_opt.steps == [4, 0, 0]


def test_backward_and_step_needs_the_layers_parameter_in_the_optimizer():
    bag = nn.EmbeddingBag(10, 3, mode="max", seed=0)
    opt = optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)
    before = bag.weight.copy()
    bag([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="not one of the optimizer's parameters"):
        bag.backward_and_step(np.ones((2, 3), np.float32), opt)
    assert bag.grad is None and (bag.weight == before).all()


# ---------------------------------------------------------------------------------------
# state_dict / load_state_dict of a composed model
# ---------------------------------------------------------------------------------------

def trained_model(seed=0, steps=5):
    rng = np.random.default_rng(seed)
    model = BagModel(vocab=100, dim=8, seed=seed)
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        ids, offsets, labels = toy_bags(rng, 16, vocab=100)
        _, grad = nn.softmax_cross_entropy(model(ids, offsets), labels)
        model.backward(grad)
        opt.step()
        opt.zero_grad()
    return model, opt


def test_state_dict_round_trip_is_bitwise():
    model, _ = trained_model(0)
    state = model.state_dict()
    assert list(state) == ["bag.weight", "linear.weight", "linear.bias"]
    assert all(type(a) is np.ndarray for a in state.values())
    assert state["bag.weight"] is not model.bag.weight       # copies
    fresh = BagModel(vocab=100, dim=8, seed=9)
    fresh.load_state_dict(state)
    for name, array in fresh.state_dict().items():
        assert array.tobytes() == state[name].tobytes()
    ids, offsets, _ = toy_bags(np.random.default_rng(4), 10, vocab=100)
    assert fresh(ids, offsets).tobytes() == model(ids, offsets).tobytes()
    state["linear.bias"][:] = 123                             # the model is not changed
    assert not (model.linear.bias.data == 123).any()


@pytest.mark.parametrize("change", ["missing", "unknown", "renamed", "shape", "dtype",
                                    "read-only"])
def test_load_state_dict_names_the_key_and_changes_nothing(change):
    model, _ = trained_model(0)
    before = model.state_dict()
    state, _ = trained_model(1)
    state = state.state_dict()
    key = "linear.weight"
    if change == "missing":
        del state[key]
    elif change == "unknown":
        key = "linear.scale"
        state[key] = np.zeros((2, 8), np.float32)
    elif change == "renamed":
        state["bag.table"] = state.pop("bag.weight")
        key = "bag.table"
    elif change == "shape":
        state[key] = np.zeros((2, 9), np.float32)
    elif change == "dtype":
        state[key] = state[key].astype(np.float64)
    else:
        model.linear.weight.data.flags.writeable = False
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        model.load_state_dict(state)
    for name, array in model.state_dict().items():
        assert array.tobytes() == before[name].tobytes(), name


def test_layers_keep_their_state_dict_keys():
    assert list(nn.Linear(3, 2).state_dict()) == ["weight", "bias"]
    assert list(nn.Linear(3, 2, bias=False).state_dict()) == ["weight"]
    assert list(nn.Embedding(4, 2).state_dict()) == ["weight"]
    assert list(nn.EmbeddingBag(4, 2).state_dict()) == ["weight"]
    assert nn.Pooling().state_dict() == {}
    layer = nn.Embedding(4, 2, seed=0)
    other = nn.Embedding(4, 2, seed=1)
    other.load_state_dict(layer.state_dict())
    assert other.weight.tobytes() == layer.weight.tobytes()


# ---------------------------------------------------------------------------------------
# Pickling and copying
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_composed_model_and_its_optimizer_copy_and_train_on(how):
    model, opt = trained_model(0)
    if how == "pickle":
        clone, clone_opt = pickle.loads(pickle.dumps((model, opt)))
    else:
        clone, clone_opt = copy.deepcopy((model, opt))
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert clone_opt.params == list(clone.parameters())       # the clone's own parameters
    assert clone.bag.parameter is clone.get_parameter("bag.weight")
    assert clone.bag.parameter.lock is not model.bag.parameter.lock
    assert clone_opt.lock is not opt.lock
    rng = np.random.default_rng(8)
    for _ in range(3):
        ids, offsets, labels = toy_bags(rng, 16, vocab=100)
        for m, o in ((model, opt), (clone, clone_opt)):
            _, grad = nn.softmax_cross_entropy(m(ids, offsets), labels)
            m.backward(grad)
            o.step()
            o.zero_grad()
    for name, array in model.state_dict().items():
        assert clone.state_dict()[name].tobytes() == array.tobytes()


# Pickled by fastembed before the parameter protocol (layers held plain tables, optimizers
# held layers): (Embedding of arange(6).reshape(3, 2) trained one Adam step on row 1,
# Linear(2, 1, init="zeros"), that Adam over [embedding, *linear.parameters()], a frozen
# EmbeddingBag of ones (2, 2)).
LEGACY_PICKLE = (
    "gASVUwUAAAAAAAAojBZmYXN0ZW1iZWQubm4uZW1iZWRkaW5nlIwJRW1iZWRkaW5nlJOUKYGUfZQojAxib3VuZHNf"
    "Y2hlY2uUjAVyYWlzZZSMBndlaWdodJSMFm51bXB5Ll9jb3JlLm11bHRpYXJyYXmUjAxfcmVjb25zdHJ1Y3SUk5SM"
    "BW51bXB5lIwHbmRhcnJheZSTlEsAhZRDAWKUh5RSlChLAUsDSwKGlGgLjAVkdHlwZZSTlIwCZjSUiYiHlFKUKEsD"
    "jAE8lE5OTkr/////Sv////9LAHSUYolDGAAAAAAAAIA/NDPzP5qZOUAAAIBAAACgQJR0lGKMC3BhZGRpbmdfaWR4"
    "lE6MCG1heF9ub3JtlE6MCW5vcm1fdHlwZZRHQAAAAAAAAACMEnNjYWxlX2dyYWRfYnlfZnJlcZSJjAl0cmFpbmFi"
    "bGWUiIwEZ3JhZJROjAltYXNrX3plcm+UiYwMaW5wdXRfbGVuZ3RolE6MCV9sYXN0X2lkc5RoCmgNSwCFlGgPh5RS"
    "lChLAUsBhZRoFIwCaTiUiYiHlFKUKEsDaBhOTk5K/////0r/////SwB0lGKJQwgBAAAAAAAAAJR0lGKMCV9sYXN0"
    "X2JhZJROdWKME2Zhc3RlbWJlZC5ubi5saW5lYXKUjAZMaW5lYXKUk5QpgZR9lCiMC2luX2ZlYXR1cmVzlEsCjAxv"
    "dXRfZmVhdHVyZXOUSwFoB4wWZmFzdGVtYmVkLm5uLnBhcmFtZXRlcpSMCVBhcmFtZXRlcpSTlCmBlH2UKGgHaApo"
    "DUsAhZRoD4eUUpQoSwFLAUsChpRoF4lDCAAAAAAAAAAAlHSUYowEbmFtZZRoB2ghTowFX3Jvd3OUaApoDUsAhZRo"
    "D4eUUpQoSwFLAYWUaCuJQwgAAAAAAAAAAJR0lGJ1YowEYmlhc5RoOSmBlH2UKGgHaApoDUsAhZRoD4eUUpQoSwFL"
    "AUsBhpRoF4lDBAAAAACUdJRiaEJoSmghTmhDaApoDUsAhZRoD4eUUpQoSwFLAYWUaCuJQwgAAAAAAAAAAJR0lGJ1"
    "YowCX3iUTnVijA9mYXN0ZW1iZWQub3B0aW2UjARBZGFtlJOUKYGUfZQojAJscpRHP7mZmZmZmZqMBWJldGFzlEc/"
    "7MzMzMzMzUc/7/fO2RaHK4aUjANlcHOURz5FeY7iMIw6jAZsYXllcnOUXZQoaANoOmhLZYwMY2hlY2tfZmluaXRl"
    "lIiMCW5fdGhyZWFkc5ROjAVzdGVwc5RdlChLAUsASwBljAVzdGF0ZZRdlChoCmgNSwCFlGgPh5RSlChLAUsDSwKG"
    "lGgXiUMYAAAAAAAAAADNzMw9zczMPQAAAAAAAAAAlHSUYmgKaA1LAIWUaA+HlFKUKEsBSwNLAoaUaBeJQxgAAAAA"
    "AAAAAG8SgzpvEoM6AAAAAAAAAACUdJRihpRoCmgNSwCFlGgPh5RSlChLAUsBSwKGlGgXiUMIAAAAAAAAAACUdJRi"
    "aApoDUsAhZRoD4eUUpQoSwFLAUsChpRoF4lDCAAAAAAAAAAAlHSUYoaUaApoDUsAhZRoD4eUUpQoSwFLAUsBhpRo"
    "F4lDBAAAAACUdJRiaApoDUsAhZRoD4eUUpQoSwFLAUsBhpRoF4lDBAAAAACUdJRihpRldWJoAIwMRW1iZWRkaW5n"
    "QmFnlJOUKYGUfZQoaAVoBmgHaApoDUsAhZRoD4eUUpQoSwFLAksChpRoF4lDEAAAgD8AAIA/AACAPwAAgD+UdJRi"
    "aBxOaB1OaB5HQAAAAAAAAABoH4loIIloIU6MBG1vZGWUjARtZWFulIwFX2xhc3SUTnVidJQu"
)


def test_pickles_of_the_former_layout_still_load():
    emb, lin, opt, frozen = pickle.loads(base64.b64decode(LEGACY_PICKLE))
    assert isinstance(emb.parameter, nn.Parameter) and emb.parameter.sparse
    assert list(emb.state_dict()) == ["weight"] and emb.trainable and emb.grad is None
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert not frozen.trainable and list(frozen.parameters()) == []
    assert opt.params[0] is emb.parameter and opt.params[1:] == [lin.weight, lin.bias]
    assert opt.steps == [1, 0, 0]
    np.testing.assert_array_equal(emb.weight[[0, 2]], [[0, 1], [4, 5]])
    emb([2])
    emb.backward_and_step(np.ones((1, 2), np.float32), opt)   # the fused path works
    assert opt.steps == [2, 0, 0] and (emb.weight[2] < [4, 5]).all()


# ---------------------------------------------------------------------------------------
# The models are built from the same pieces
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [SkipGram, CBOW])
def test_word2vec_models_expose_the_protocol(cls):
    model = cls([5, 3, 2, 1], dim=4, seed=1)
    assert isinstance(model, nn.Module)
    named = list(model.named_parameters())
    assert [n for n, _ in named] == ["syn0", "syn1neg"]
    assert all(p.sparse for _, p in named)
    assert named[0][1].data is model.syn0 and named[1][1].data is model.syn1neg
    assert list(model.state_dict()) == ["syn0", "syn1neg", "counts"]
    model.train_step((np.array([0, 1, 2, 3, 0]), np.array([0, 5])), lr=0.1,
                     rng=np.random.default_rng(0))
    twin = cls([5, 3, 2, 1], dim=4, seed=2)
    twin.load_state_dict(model.state_dict())
    assert twin.syn0.tobytes() == model.syn0.tobytes()
    assert twin.syn1neg.tobytes() == model.syn1neg.tobytes()
    twin.syn0 = np.zeros((4, 4), model.dtype)   # the attribute can still be replaced
    assert twin.get_parameter("syn0").data is twin.syn0
    clone = pickle.loads(pickle.dumps(model))
    assert clone.syn0.tobytes() == model.syn0.tobytes()
    assert [n for n, _ in clone.named_parameters()] == ["syn0", "syn1neg"]


def test_bag_classifier_exposes_the_protocol_with_its_former_keys(tmp_path):
    model = BagClassifier(6, 3, dim=4, bigram_buckets=2, seed=0)
    assert isinstance(model, nn.Module)
    assert [n for n, _ in model.named_parameters()] == ["embedding", "linear.weight",
                                                         "linear.bias"]
    assert model.embedding is model.bag.parameter and model.embedding.sparse
    assert list(model.children()) == [model.bag, model.linear]
    assert list(model.parameters()) == [model.bag.parameter, model.linear.weight,
                                        model.linear.bias]
    assert list(model.state_dict()) == ["embedding", "linear.weight", "linear.bias"]
    # the Trainer's checkpoints keep their keys: a run written before still resumes
    data = model.make_dataset((np.array([0, 1, 2, 3, 4, 5]), np.array([0, 2, 4])),
                              [0, 1, 2], batch_size=2)
    opt = optim.Adam(model.parameters(), lr=0.05)
    Trainer(model, opt, data=data, epochs=1, lr=0.05, checkpoint_dir=tmp_path,
            progress=False).fit()
    with np.load(next(tmp_path.glob("ckpt-*.npz")), allow_pickle=False) as npz:
        keys = set(npz.files)
    assert {"model/embedding", "model/linear.weight", "model/linear.bias",
            "optimizer/state/0/state1", "optimizer/state/2/state2"} <= keys


def test_a_composed_model_checkpoints_and_resumes_bitwise(tmp_path):
    class Model(BagModel):
        def train_step(self, batch, *, lr, rng, optimizer):
            ids, offsets, labels = batch
            loss, grad = nn.softmax_cross_entropy(self(ids, offsets), labels)
            self.bag.backward_and_step(self.linear.backward(grad), optimizer)
            optimizer.step()
            optimizer.zero_grad()
            return {"loss": loss, "count": labels.size}

    class Docs(ArrayDataset):
        def batch(self, epoch, index):
            rows = super().batch(epoch, index)
            ids = np.concatenate([np.flatnonzero(r) for r in rows[0]]).astype(np.int64)
            offsets = np.cumsum([0] + [int(r.sum()) for r in rows[0][:-1]]).astype(np.int64)
            return ids, offsets, rows[1]

    rng = np.random.default_rng(0)
    x = rng.random((64, 40)) < 0.2
    y = (x[:, :20].sum(axis=1) > x[:, 20:].sum(axis=1)).astype(np.int64)
    data = Docs(x, y, batch_size=8, seed=0)

    def run(ckpt, stop_at=None, resume=None):
        model = Model(vocab=40, dim=4, seed=3)
        opt = optim.AdamW(model.parameters(), lr=0.05)

        class Stop:
            def on_step_end(self, trainer, step, logs):
                trainer.stop_training = step == stop_at

        Trainer(model, opt, data=data, epochs=3, lr=0.05, checkpoint_dir=ckpt,
                callbacks=[Stop()], progress=False).fit(resume=resume)
        return model

    full = run(tmp_path / "full")
    run(tmp_path / "cut", stop_at=11)
    resumed = run(tmp_path / "cut", resume=True)
    for name, array in full.state_dict().items():
        assert resumed.state_dict()[name].tobytes() == array.tobytes(), name


# ---------------------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------------------

def test_parameter_flags_repr_and_dense_accumulation_over_a_sparse_gradient():
    p = nn.Parameter(np.zeros((3, 2), np.float32), name="table", sparse=True)
    assert repr(p) == "Parameter('table', shape=(3, 2), dtype=float32, sparse=True)"
    p.grad = fastembed.SparseGrad(np.array([1]), np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(p.dense_grad(), [[0, 0], [1, 1], [0, 0]])
    p.accumulate(np.full((3, 2), 2, np.float32))
    np.testing.assert_array_equal(p.grad.rows, [0, 1, 2])
    np.testing.assert_array_equal(p.grad.values, [[2, 2], [3, 3], [2, 2]])
    p.requires_grad = False
    assert "requires_grad=False" in repr(p)
    p.data = np.ones((5, 2), np.float32)        # replaced: the gradient rows follow
    p.zero_grad()
    p.accumulate(np.ones((5, 2), np.float32))
    np.testing.assert_array_equal(p.grad.rows, np.arange(5))
    clone = pickle.loads(pickle.dumps(p))
    assert clone.sparse and not clone.requires_grad and clone.lock is not p.lock
