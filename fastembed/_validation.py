"""Argument checks shared by the public functions and classes.

Every check runs before any kernel writes a byte, so that bad input raises and changes nothing.
Messages name the argument, the offending value and, for ids, its position.

The rules for scalar arguments (integers, seeds, real numbers, fractions, thread counts,
dtypes) are written once here, and every entry point uses them:

- a wrong *type* raises TypeError: ``"{name} must be an int, got str"``. Python ints, NumPy
  integers and objects with ``__index__`` are ints; bool (and ``numpy.bool_``) is not. Real
  numbers are ints and floats of any kind (NumPy's too), not bool;
- a right type with a wrong *value* raises ValueError: ``"{name} must be >= 1, got 0"``,
  ``"{name} must lie in [0, 1), got 1.5"``, ``"{name} must be a finite number, got nan"``.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from ._ext import indexing

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64_MAX = np.iinfo(np.int64).max


def check_table(weight, name="weight", *, writeable=False):
    """Check a (V, D) float32/float64 C-contiguous ndarray; never copy it."""
    if not isinstance(weight, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, got "
                        f"{type(weight).__name__}; fastembed never copies a table silently, "
                        f"so convert it yourself with np.ascontiguousarray({name}, dtype=...)")
    if weight.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_embeddings, embedding_dim), got shape "
                         f"{weight.shape}")
    if weight.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64 (native byte order), got "
                        f"{weight.dtype}")
    if not weight.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; fastembed never copies a table "
                         f"silently: pass np.ascontiguousarray({name})")
    if writeable and not weight.flags.writeable:
        raise ValueError(f"{name} is read-only and cannot be updated in place")
    return weight


def as_ids(ids, name="ids", *, strict=False):
    """Return (ids as an ndarray of its own shape, the same ids as contiguous int32/int64 1-D).

    Accepts any integer array-like. int32 and int64 pass through without a copy when
    contiguous; other integer types are converted exactly, except uint64 values of 2**63 or
    more: they wrap to negative int64 values, which every bounds check finds out of range,
    so that ``bounds_check="zero"`` and ``"warn"`` treat them as padding like any bad id
    (pass the first result as ``ids=`` to :func:`check_ids_in_range` and
    :func:`invalid_ids`, so that a message names such an id by its own value). ``strict``
    (offsets, which no bounds check follows): such a value raises IndexError instead.
    Booleans, floats and other types raise TypeError.
    """
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        arr = np.asarray(ids)
        if arr.size == 0 and arr.dtype == np.float64 and not hasattr(ids, "dtype"):
            arr = arr.astype(np.int64)  # an empty list or tuple: np.asarray([]) is float64
    kind = arr.dtype.kind
    if kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}"
                        + (" (booleans are not ids)" if kind == "b" else ""))
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if kind == "i" and arr.dtype.itemsize <= 4 or kind == "u" and arr.dtype.itemsize <= 2:
        target = np.int32
    else:
        target = np.int64
        if (strict and kind == "u" and arr.dtype.itemsize == 8 and arr.size
                and arr.max() > _INT64_MAX):
            pos = int(np.argmax(arr > _INT64_MAX))
            raise IndexError(f"{name}{format_position(pos, arr.shape)} = "
                             f"{arr.reshape(-1)[pos]} is out of range")
    flat = np.ascontiguousarray(arr.reshape(-1), dtype=target)
    return arr, flat


def format_position(pos, shape):
    if len(shape) == 0:
        return ""
    if len(shape) == 1:
        return f"[{pos}]"
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(pos, shape)) + "]"


def _id_value(flat, pos, ids):
    """The id at ``pos`` as the caller gave it (``ids``: as_ids' first result, or None)."""
    return int(flat[pos] if ids is None else ids.reshape(-1)[pos])


def check_ids_in_range(flat, shape, num_embeddings, n_threads, name="ids", *, ids=None):
    """Raise IndexError naming the first id outside [0, num_embeddings) and its position.

    ``num_embeddings`` None checks only that the ids are non-negative int64 values (below
    2**63). ``ids``: the ids as given (:func:`as_ids`' first result), for the value in the
    message: a uint64 id of 2**63 or more is a negative number in ``flat``.
    """
    if flat.size == 0:
        return
    # ids are at most int64: a bound above 2**63 excludes none of them
    limit = 2**63 if num_embeddings is None else min(num_embeddings, 2**63)
    pos = indexing.find_first_invalid(flat, limit, n_threads)
    if pos < 0:
        return
    value = _id_value(flat, pos, ids)
    where = f"{name}{format_position(pos, shape)} = {value}"
    if value < 0:
        bound = ("must be non-negative" if num_embeddings is None
                 else f"must lie in [0, {num_embeddings})")
        raise IndexError(f"{where} is negative; ids {bound}")
    if num_embeddings is None:
        raise IndexError(f"{where} is out of range; ids must lie in [0, 2**63)")
    raise IndexError(f"{where} is out of range for a table of {num_embeddings} rows; ids "
                     f"must lie in [0, {num_embeddings})")


BOUNDS_CHECKS = ("raise", "warn", "zero")


class BoundsCheckWarning(UserWarning):
    """Ids outside the table were treated as padding (``bounds_check="warn"``).

    Raised as a warning once per call site by every entry point that takes
    ``bounds_check="warn"``; the bad ids give zero rows and no gradient. Public as
    ``fastembed.BoundsCheckWarning``, so that it can be filtered or turned into an error.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> import fastembed
    >>> E = np.ones((3, 2), dtype=np.float32)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", fastembed.BoundsCheckWarning)
    ...     y = fastembed.gather(E, [0, 7], bounds_check="warn")
    >>> y
    array([[1., 1.],
           [0., 0.]], dtype=float32)
    >>> caught[0].category.__name__
    'BoundsCheckWarning'
    """


_warned_sites: set = set()  # call sites that have warned once


def check_bounds_mode(bounds_check):
    """The ``bounds_check`` argument, checked."""
    if bounds_check not in BOUNDS_CHECKS:
        raise ValueError(f"bounds_check must be 'raise', 'warn' or 'zero', got "
                         f"{bounds_check!r}")
    return bounds_check


def _user_frame():
    """The innermost frame outside the fastembed package: the call site to warn about."""
    import sys
    import types

    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("fastembed"):
        frame = frame.f_back
    return frame


def invalid_ids(flat, shape, num_embeddings, n_threads, bounds_check, name="ids", *,
                ids=None):
    """Check ids against a table of ``num_embeddings`` rows, following ``bounds_check``.

    - ``"raise"``: IndexError naming the first bad id and its position (returns None);
    - ``"warn"`` / ``"zero"``: returns None when every id is valid, else a boolean mask of
      the bad positions, which the caller treats as padding (zero output rows, no gradient).
      ``"warn"`` warns once per call site (the first line outside fastembed), naming the
      first bad id.

    The scan is the same parallel kernel in every mode; the mask is built only when a bad id
    exists. A uint64 id of 2**63 or more (negative in ``flat``, see :func:`as_ids`) is out of
    range like any other; ``ids``, the ids as given, lets the messages name its value.
    """
    if bounds_check == "raise":
        check_ids_in_range(flat, shape, num_embeddings, n_threads, name, ids=ids)
        return None
    if flat.size == 0:
        return None
    pos = indexing.find_first_invalid(flat, min(num_embeddings, 2**63), n_threads)
    if pos < 0:
        return None
    bad = (flat < 0) | (flat >= num_embeddings)
    if bounds_check == "warn":
        frame = _user_frame()
        site = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
        if site not in _warned_sites:
            _warned_sites.add(site)
            import warnings
            message = (f"{int(bad.sum())} of {flat.size} {name} lie outside [0, "
                       f"{num_embeddings}) (first: {name}{format_position(pos, shape)} = "
                       f"{_id_value(flat, pos, ids)}); treated as padding: zero output rows and no "
                       f"gradient (bounds_check='warn' warns once per call site)")
            if site is None:
                warnings.warn(message, BoundsCheckWarning, stacklevel=2)
            else:
                warnings.warn_explicit(message, BoundsCheckWarning, site[0], site[1],
                                       module=frame.f_globals.get("__name__"),
                                       registry=None)
    return bad


def _bounds(min, max, min_open=False, max_open=False):
    """The allowed range as a message says it: "be >= 1", "lie in [0, 1)"."""
    if min is not None and max is not None:
        return f"lie in {'(' if min_open else '['}{min}, {max}{')' if max_open else ']'}"
    if min is not None:
        return f"be {'>' if min_open else '>='} {min}"
    return f"be {'<' if max_open else '<='} {max}"


def check_int(value, name, *, min=None, max=None, allow_none=False):
    """``value`` as a Python int in ``[min, max]`` (either bound optional).

    Ints are Python ints, NumPy integers and objects with ``__index__``; bool is not one.
    ``allow_none``: None passes through (and the TypeError says "an int or None").

    Raises
    ------
    TypeError
        ``"{name} must be an int, got {type}"``.
    ValueError
        ``"{name} must be >= {min}, got {value}"``, ``"... <= {max} ..."`` or
        ``"{name} must lie in [{min}, {max}], got {value}"``.

    Examples
    --------
    >>> check_int(np.int8(3), "dim", min=1)
    3
    >>> check_int(True, "dim")
    Traceback (most recent call last):
    ...
    TypeError: dim must be an int, got bool
    >>> check_int(0, "dim", min=1)
    Traceback (most recent call last):
    ...
    ValueError: dim must be >= 1, got 0
    """
    if value is None and allow_none:
        return None
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, got "
                        f"{type(value).__name__}") from None
    if (min is not None and number < min) or (max is not None and number > max):
        raise ValueError(f"{name} must {_bounds(min, max)}, got {number}")
    return number


def check_positive_int(value, name, *, allow_none=False):
    """``value`` as a Python int >= 1: :func:`check_int` with ``min=1``."""
    return check_int(value, name, min=1, allow_none=allow_none)


def check_size(value, name):
    """``value`` as a Python int >= 0 (a size): :func:`check_int` with ``min=0``."""
    return check_int(value, name, min=0)


def check_seed(seed, name="seed"):
    """A seed that makes a run reproducible: an int >= 0 (:func:`check_int`)."""
    return check_int(seed, name, min=0)


def check_float(value, name, *, min=None, max=None, min_open=False, max_open=False,
                finite=True, allow_none=False):
    """``value`` as a Python float in the range that ``min`` and ``max`` bound.

    Real numbers are ints and floats, NumPy's too (``numbers.Real``); bool is not one. NaN is
    never allowed; infinities only with ``finite=False`` (and then within the bounds).
    ``min_open`` / ``max_open`` exclude the bound itself. ``allow_none``: None passes through.

    Raises
    ------
    TypeError
        ``"{name} must be a real number, got {type}"``.
    ValueError
        ``"{name} must be a finite number, got nan"``, ``"{name} must be > 0, got 0"``,
        ``"{name} must lie in [0, 1), got 1.5"``.

    Examples
    --------
    >>> check_float(np.float32(0.5), "lr", min=0, min_open=True)
    0.5
    >>> check_float("0.5", "lr")
    Traceback (most recent call last):
    ...
    TypeError: lr must be a real number, got str
    >>> check_float(0, "lr", min=0, min_open=True)
    Traceback (most recent call last):
    ...
    ValueError: lr must be > 0, got 0
    """
    if type(value) is float:  # the common case (hyper-parameters at every step), fast
        number = value
    elif value is None and allow_none:
        return None
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{' or None' if allow_none else ''}, "
                        f"got {type(value).__name__}")
    else:
        number = float(value)
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}number"
                         f"{'' if finite else ' (not NaN)'}, got {value}")
    if ((min is not None and (number <= min if min_open else number < min))
            or (max is not None and (number >= max if max_open else number > max))):
        raise ValueError(f"{name} must {_bounds(min, max, min_open, max_open)}, got {value}")
    return number


def check_positive_float(value, name):
    """``value`` as a finite Python float > 0 (:func:`check_float`)."""
    return check_float(value, name, min=0, min_open=True)


def check_nonneg_float(value, name):
    """``value`` as a finite Python float >= 0 (:func:`check_float`)."""
    return check_float(value, name, min=0)


def check_fraction(value, name):
    """``value`` as a Python float in [0, 1) (:func:`check_float`)."""
    return check_float(value, name, min=0, max=1, max_open=True)


def check_n_threads(n_threads, name="n_threads", *, allow_none=True):
    """A thread count as the user gave it: None, or a non-zero int (:func:`check_int`).

    A positive count is a number of threads; a negative one counts back from the maximum
    (-1: all of them); None (where allowed) is the default. ``resolve_n_threads`` turns it
    into a number of threads.

    Raises
    ------
    TypeError
        ``"n_threads must be an int or None, got {type}"``.
    ValueError
        ``"n_threads must be a non-zero int (...), got 0"``.
    """
    if n_threads is None and allow_none:
        return None
    number = check_int(n_threads, name, allow_none=allow_none)
    if number == 0:
        raise ValueError(f"{name} must be a non-zero int (a count, or a negative one counted "
                         f"back from the maximum: -1 = all"
                         f"{'; None for the default' if allow_none else ''}), got 0")
    return number


def check_grad(grad, ids_shape, dim, dtype, name="grad"):
    """Return grad as a C-contiguous (N, D) view or copy, after dtype and shape checks.

    ``dim`` or ``dtype`` None means "take it from grad" (coalesce has no table).
    """
    if not isinstance(grad, np.ndarray):
        grad = np.asarray(grad)
    if dtype is None:
        if grad.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {grad.dtype}")
    elif grad.dtype != dtype:
        raise TypeError(f"{name} must have the table's dtype {np.dtype(dtype)}, got "
                        f"{grad.dtype}; convert it with {name}.astype(np.{np.dtype(dtype)})")
    if dim is None:
        if grad.ndim != len(ids_shape) + 1:
            raise ValueError(f"{name} must have shape ids.shape + (embedding_dim,) = "
                             f"{tuple(ids_shape) + ('D',)}, got {grad.shape}")
        dim = grad.shape[-1]
    expected = tuple(ids_shape) + (dim,)
    if grad.shape != expected:
        raise ValueError(f"{name} must have shape ids.shape + (embedding_dim,) = {expected}, "
                         f"got {grad.shape}")
    n = int(np.prod(ids_shape, dtype=np.int64))
    return np.ascontiguousarray(grad).reshape(n, dim)


def check_out(out, shape, dtype, name="out"):
    """Check a preallocated output array: exact shape and dtype, C-contiguous, writeable."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def check_no_overlap(a, b, name_a, name_b):
    # For C-contiguous arrays (all we accept) the memory extents are intervals, so the cheap
    # bounds test is exact.
    if np.may_share_memory(a, b):
        raise ValueError(f"{name_a} and {name_b} must not share memory")


def as_rng(seed, name="seed"):
    """A numpy Generator from a seed: None, an int >= 0, or a Generator (used as is).

    Raises
    ------
    TypeError
        ``"seed must be None, an int or a numpy.random.Generator, got {type}"`` (a bool too).
    ValueError
        ``"seed must be >= 0, got {seed}"``.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    try:
        seed = check_seed(seed, name)
    except TypeError:
        raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got "
                        f"{type(seed).__name__}") from None
    return np.random.default_rng(seed)


def check_float_dtype(dtype, name="dtype"):
    """``dtype`` as a numpy dtype; TypeError unless it is float32 or float64.

    Anything ``numpy.dtype`` accepts names a dtype (None is float64, as there).
    """
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def as_float_array(x, name, dtype=None):
    """x as a float32/float64 ndarray (array-likes converted; ndarrays never cast silently).

    ``dtype`` given: an ndarray must already have it (TypeError otherwise); a list is
    converted to it. ``dtype`` None: float32 and float64 ndarrays pass, lists become float64.
    """
    if not isinstance(x, np.ndarray):
        x = np.asarray(x, dtype=dtype if dtype is not None else None)
        if dtype is None and x.dtype.kind in "biu":
            x = x.astype(np.float64)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {x.dtype}; convert it "
                        f"with {name}.astype(np.{np.dtype(dtype)})")
    return x
