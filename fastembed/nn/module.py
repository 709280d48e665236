"""Module: the base class of fastembed's layers and models, and of the models you compose.

A module finds the :class:`~fastembed.nn.Parameter` objects and the child modules assigned
to its attributes, in assignment order, as ``torch.nn.Module`` does. From them it gives
``parameters()`` and ``named_parameters()`` (for an optimizer), ``zero_grad()``, and
``state_dict()`` / ``load_state_dict()`` (for checkpoints). It has no autograd: each piece
still writes its ``forward`` and ``backward``.

Examples
--------
>>> import numpy as np
>>> from fastembed import nn, optim
>>> class Model(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.bag = nn.EmbeddingBag(10, 4, mode="mean", seed=0)
...         self.linear = nn.Linear(4, 2, seed=0)
...     def forward(self, ids, offsets):
...         return self.linear(self.bag(ids, offsets))
...     def backward(self, grad_logits):
...         self.bag.backward(self.linear.backward(grad_logits))
>>> model = Model()
>>> [name for name, _ in model.named_parameters()]
['bag.weight', 'linear.weight', 'linear.bias']
>>> opt = optim.Adam(model.parameters(), lr=0.1)
>>> logits = model(np.array([1, 2, 3]), np.array([0, 2]))
>>> loss, grad = nn.softmax_cross_entropy(logits, np.array([0, 1]))
>>> model.backward(grad); opt.step(); opt.zero_grad()
>>> sorted(model.state_dict())
['bag.weight', 'linear.bias', 'linear.weight']
"""
from __future__ import annotations

import numpy as np

from .parameter import Parameter

__all__ = ["Module"]


def _is_property(obj, name):
    """Whether ``type(obj)`` defines ``name`` as a data descriptor (a property)."""
    return hasattr(getattr(type(obj), name, None), "__set__")


class Module:
    """Base class of the trainable pieces: it finds the Parameters and modules it holds.

    Assigning a :class:`~fastembed.nn.Parameter` or a Module to an attribute registers it
    under that name (assigning something else to the name unregisters it); the order of the
    first assignments is the order of :meth:`parameters`, :meth:`named_parameters`,
    :meth:`children` and :meth:`state_dict`, a module's own parameters before its children's.
    :class:`~fastembed.nn.Embedding`, :class:`~fastembed.nn.EmbeddingBag`,
    :class:`~fastembed.nn.Linear`, :class:`~fastembed.nn.Pooling` and the models of
    :mod:`fastembed.models` are Modules.

    ``module(*args)`` calls ``module.forward(*args)``. There is no autograd: a composed module
    writes its own ``backward`` from its children's.

    A Parameter held by several modules (tied weights) is listed once, under the first name
    found. Parameters with ``requires_grad=False`` (a frozen embedding table) are left out of
    :meth:`parameters` and :meth:`named_parameters` unless ``include_frozen=True``, so that
    an optimizer given ``model.parameters()`` spends no state on them; :meth:`state_dict` and
    :meth:`load_state_dict` cover them.

    Examples
    --------
    >>> import numpy as np
    >>> from fastembed import nn
    >>> class TwoTables(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.words = nn.Embedding(5, 2, seed=0)
    ...         self.scale = nn.Parameter(np.ones((1, 2), np.float32), name="scale")
    >>> m = TwoTables()
    >>> list(m.named_parameters())
    [('scale', Parameter('scale', shape=(1, 2), dtype=float32)),
     ('words.weight', Parameter('weight', shape=(5, 2), dtype=float32, sparse=True))]
    >>> m
    TwoTables(
      (words): Embedding(5, 2, dtype=float32)
    )
    """

    _parameters: dict[str, Parameter]  # name -> Parameter, in registration order
    _modules: dict[str, Module]  # name -> child module, in registration order

    def __init__(self):
        d = self.__dict__  # (kept if attributes were assigned before this call)
        d.setdefault("_parameters", {})
        d.setdefault("_modules", {})

    # -- registration ---------------------------------------------------------------------

    def _registries(self):
        d = self.__dict__
        if "_parameters" not in d:  # a subclass that did not call Module.__init__ (yet)
            Module.__init__(self)
        return d["_parameters"], d["_modules"]

    def __setattr__(self, name, value):
        # (on every attribute write, such as a layer's remembered ids: the common case, a
        # plain value under an unregistered name, costs two dict lookups)
        if isinstance(value, (Parameter, Module)):
            if not _is_property(self, name):  # not Embedding.weight's setter, say
                params, modules = self._registries()
                (params if isinstance(value, Parameter) else modules)[name] = value
                (modules if isinstance(value, Parameter) else params).pop(name, None)
        else:
            params, modules = self._registries()
            if (name in params or name in modules) and not _is_property(self, name):
                params.pop(name, None)  # something else under a registered name
                modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        params, modules = self._registries()
        params.pop(name, None)
        modules.pop(name, None)
        object.__delattr__(self, name)

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_parameters" not in state:  # pickled before modules existed: find them again
            Module.__init__(self)
            for name, value in state.items():
                if isinstance(value, (Parameter, Module)):
                    Module.__setattr__(self, name, value)

    def register_parameter(self, name, param):
        """Register ``param`` under ``name`` without making it an attribute.

        For a module that exposes something else under that name: an
        :class:`~fastembed.nn.Embedding`'s ``weight`` attribute is the table itself (an
        ndarray, as it always was), and its Parameter is registered as ``"weight"``.

        Parameters
        ----------
        name : str
            A name without dots.
        param : Parameter

        Raises
        ------
        TypeError
            ``param`` is not a Parameter.
        ValueError
            ``name`` is empty or holds a dot.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> m = nn.Module()
        >>> m.register_parameter("table", nn.Parameter(np.zeros((3, 2))))
        >>> [name for name, _ in m.named_parameters()]
        ['table']
        """
        if not isinstance(param, Parameter):
            raise TypeError(f"register_parameter takes a Parameter, got "
                            f"{type(param).__name__}")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"a parameter name must be a non-empty str without dots, got "
                             f"{name!r}")
        params, modules = self._registries()
        modules.pop(name, None)
        params[name] = param

    def get_parameter(self, target):
        """The Parameter registered under ``target``, a dotted name (``"linear.bias"``).

        Frozen parameters are found too.

        Parameters
        ----------
        target : str
            A name of :meth:`named_parameters` (with ``include_frozen=True``).

        Returns
        -------
        Parameter

        Raises
        ------
        AttributeError
            No such module or parameter.

        Examples
        --------
        >>> from fastembed import nn
        >>> m = nn.Module()
        >>> m.linear = nn.Linear(3, 2)
        >>> m.get_parameter("linear.bias")
        Parameter('bias', shape=(2, 1), dtype=float32)
        """
        *path, name = target.split(".")
        module = self
        for part in path:
            child = module._registries()[1].get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no module {part!r} (in "
                                     f"{target!r})")
            module = child
        param = module._registries()[0].get(name)
        if param is None:
            raise AttributeError(f"{type(module).__name__} has no parameter {name!r} (in "
                                 f"{target!r})")
        return param

    # -- traversal ------------------------------------------------------------------------

    def named_children(self):
        """The direct child modules with their attribute names, in assignment order.

        Yields
        ------
        (str, Module)

        Examples
        --------
        >>> from fastembed import nn
        >>> outer, inner = nn.Module(), nn.Module()
        >>> inner.linear = nn.Linear(2, 1)
        >>> outer.inner, outer.head = inner, nn.Linear(2, 1)
        >>> [name for name, _ in outer.named_children()]     # not inner.linear: not direct
        ['inner', 'head']
        """
        yield from self._registries()[1].items()

    def children(self):
        """The modules of :meth:`named_children`, without their names.

        Examples
        --------
        >>> from fastembed import nn
        >>> m = nn.Module()
        >>> m.pool, m.linear = nn.Pooling(), nn.Linear(2, 1)
        >>> list(m.children())
        [Pooling('mean'), Linear(2, 1, bias=True, dtype=float32)]
        """
        for _, module in self.named_children():
            yield module

    def modules(self):
        """This module and every module under it, depth first, each once.

        Yields
        ------
        Module

        Examples
        --------
        >>> from fastembed import nn
        >>> outer, inner = nn.Module(), nn.Module()
        >>> inner.linear = nn.Linear(2, 1)
        >>> outer.inner = inner
        >>> [type(m).__name__ for m in outer.modules()]
        ['Module', 'Module', 'Linear']
        """
        for _, module in self._named_modules(""):
            yield module

    def _named_modules(self, prefix, seen=None):
        seen = set() if seen is None else seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self._registries()[1].items():
            yield from child._named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def named_parameters(self, *, include_frozen=False):
        """The trainable Parameters with their dotted names (``"bag.weight"``), each once.

        A module's own parameters come first, then its children's, in assignment order.

        Parameters
        ----------
        include_frozen : bool, default False
            Also yield the frozen parameters (``requires_grad=False``).

        Yields
        ------
        (str, Parameter)

        Examples
        --------
        >>> from fastembed import nn
        >>> m = nn.Module()
        >>> m.embedding = nn.Embedding(10, 3)
        >>> m.linear = nn.Linear(3, 2)
        >>> for name, p in m.named_parameters():
        ...     print(name, p.shape, p.sparse)
        embedding.weight (10, 3) True
        linear.weight (2, 3) False
        linear.bias (2, 1) False
        """
        seen = set()
        for prefix, module in self._named_modules(""):
            for name, param in module._registries()[0].items():
                if id(param) not in seen and (include_frozen or param.requires_grad):
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self, *, include_frozen=False):
        """The trainable Parameters, each once, in the order of :meth:`named_parameters`.

        Give them to an optimizer: ``optim.Adam(model.parameters(), lr=...)``.

        Parameters
        ----------
        include_frozen : bool, default False
            As in :meth:`named_parameters`.

        Yields
        ------
        Parameter

        Examples
        --------
        >>> from fastembed import nn
        >>> list(nn.Linear(3, 2, bias=False).parameters())
        [Parameter('weight', shape=(2, 3), dtype=float32)]
        >>> frozen = nn.Embedding.from_pretrained(nn.Embedding(4, 2).weight)
        >>> list(frozen.parameters())
        []
        >>> list(frozen.parameters(include_frozen=True))
        [Parameter('weight', shape=(4, 2), dtype=float32, sparse=True, requires_grad=False)]
        """
        for _, param in self.named_parameters(include_frozen=include_frozen):
            yield param

    # -- gradients and state --------------------------------------------------------------

    def zero_grad(self):
        """Forget the accumulated gradient of every Parameter (frozen ones included).

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> layer = nn.Embedding(3, 2, seed=0)
        >>> _ = layer([1]); _ = layer.backward(np.ones((1, 2), np.float32))
        >>> layer.trainable = False             # frozen since: its gradient is forgotten too
        >>> layer.zero_grad()
        >>> layer.grad is None
        True
        """
        for _, param in self.named_parameters(include_frozen=True):
            param.zero_grad()

    def state_dict(self):
        """Copies of every Parameter's array, frozen ones included, by dotted name.

        Returns
        -------
        dict of str to ndarray
            In the order of :meth:`named_parameters`; plain arrays, ready for ``np.savez``
            and the :class:`~fastembed.train.Trainer`'s checkpoints.

        Examples
        --------
        >>> from fastembed import nn
        >>> state = nn.Linear(3, 2, init="zeros").state_dict()
        >>> {name: a.shape for name, a in state.items()}      # the bias is a column
        {'weight': (2, 3), 'bias': (2, 1)}
        """
        return {name: param.data.copy() for name, param in self.named_parameters(include_frozen=True)}

    def load_state_dict(self, state):
        """Copy the arrays of a :meth:`state_dict` into the Parameters, checked first.

        Every key, shape, dtype and target is checked before any array changes: on an error
        nothing has changed.

        Parameters
        ----------
        state : mapping of str to array-like
            Exactly the keys of :meth:`state_dict`, with the same shapes and dtypes (never
            cast).

        Raises
        ------
        ValueError
            Missing or unknown keys, or a value of another shape or dtype, or a read-only
            target array; the message names the key.

        Examples
        --------
        >>> import numpy as np
        >>> from fastembed import nn
        >>> a, b = nn.Linear(3, 2, seed=0), nn.Linear(3, 2, seed=1)
        >>> b.load_state_dict(a.state_dict())
        >>> bool((a.weight.data == b.weight.data).all())
        True
        >>> b.load_state_dict({"weight": np.zeros((2, 3), np.float32)})
        Traceback (most recent call last):
        ...
        ValueError: expected keys ['bias', 'weight'], got ['weight'] (missing ['bias'])
        """
        params = dict(self.named_parameters(include_frozen=True))
        if set(state) != set(params):
            missing = sorted(set(params) - set(state))
            unknown = sorted(set(state) - set(params))
            what = ", ".join(part for part in (f"missing {missing}" if missing else "",
                                               f"unknown {unknown}" if unknown else "") if part)
            raise ValueError(f"expected keys {sorted(params)}, got {sorted(state)} ({what})")
        arrays = {}
        for name, param in params.items():
            value = np.asarray(state[name])
            if value.shape != param.shape or value.dtype != param.dtype:
                raise ValueError(f"{name}: an array of shape {value.shape} and dtype "
                                 f"{value.dtype} does not fit the parameter's shape "
                                 f"{param.shape} and dtype {param.dtype}")
            if not param.data.flags.writeable:
                raise ValueError(f"{name}: the parameter's array is read-only")
            arrays[name] = value
        for name, param in params.items():
            np.copyto(param.data, arrays[name])

    # -- calls and display ----------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        forward = getattr(self, "forward", None)
        if forward is None:
            raise NotImplementedError(f"{type(self).__name__} has no forward() to call")
        return forward(*args, **kwargs)

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}()"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"
