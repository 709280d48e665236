"""Lookups and pooled bags over chunked ``dask.array`` ids: ``fastembed.dask``.

An optional extra (``pip install "fastembed-layer[dask]"``): ``import fastembed`` never imports
dask. :func:`gather` and :func:`embedding_bag` build lazy dask arrays whose chunks are
computed by fastembed's kernels, one task per chunk of ids, on any dask scheduler: the local
threaded one, or a ``dask.distributed`` cluster.

The table goes to each worker once, never once per chunk:

- a **path** to a ``.npy`` table (as :func:`fastembed.io.save_npy` writes it), or a table
  that is a ``np.memmap`` (a :class:`~fastembed.vectors.Vectors` from
  ``load_npy(path, mmap_mode="r")``, say), is not shipped at all: the graph carries the path,
  and each worker process maps the file read-only itself, once, and keeps it in a small
  per-process cache keyed by path, size and modification time (a file that changes is
  mapped again). The path must name the same file on every worker: one machine, or a shared
  file system.
- an **in-memory** table is shared once per worker. With a ``dask.distributed`` client it is
  sent to every worker with ``client.scatter(..., broadcast=True)`` when the lookup is
  built, and each chunk's task refers to that one copy; such a graph must be computed on
  that client. A lookup over the same, unchanged table built while an earlier one is still
  referenced reuses its copy; once no graph refers to a copy, the workers drop it. So a loop
  that builds, computes and drops a lookup per batch sends the table each time: build one
  lookup over all the batches instead, or save the table with ``save_npy`` and pass its
  path. Without a client (dask's local schedulers) the table is one key of the graph, which
  every chunk's task reads. Either way the chunk tasks do not contain the table.

Threads: a dask worker runs one task per worker thread, so by default each chunk's kernel
runs on one OpenMP thread (``n_threads=1``); cores are used by running chunks in parallel.
Give ``n_threads`` more only when there are fewer worker threads than cores (one worker
process with one thread, say), and keep ``worker threads x n_threads`` at or below the cores.

Examples
--------
>>> import numpy as np, dask.array as da
>>> import fastembed.dask
>>> E = np.arange(10, dtype=np.float32).reshape(5, 2)
>>> ids = da.from_array(np.array([[4, 0, 1], [2, 2, 3]]), chunks=(1, 3))
>>> rows = fastembed.dask.gather(ids, E)                         # lazy, (2, 3, 2)
>>> bags = fastembed.dask.embedding_bag(ids, E, mode="max")      # lazy, (2, 2)
>>> rows.chunks, bags.chunks
(((1, 1), (3,), (2,)), ((1, 1), (2,)))
>>> y, pooled = da.compute(rows, bags, scheduler="threads")
>>> y[1]
array([[4., 5.],
       [4., 5.],
       [6., 7.]], dtype=float32)
>>> pooled
array([[8., 9.],
       [6., 7.]], dtype=float32)
"""
from __future__ import annotations

try:
    import dask
    import dask.array as da
    from dask.base import tokenize
except ImportError as _missing_dask:  # pragma: no cover - exercised in a subprocess without dask
    raise ImportError('fastembed.dask needs dask; install it with: '
                      'pip install "fastembed-layer[dask]"') from _missing_dask

import collections
import mmap
import os
import sys
import threading
import weakref
from typing import NamedTuple, Optional

import numpy as np

from ._bags import check_bag_weights, check_padding_idx
from ._validation import (FLOAT_DTYPES, check_bounds_mode, check_n_threads, check_table,
                          format_position)
from .functional import embedding_bag as _embedding_bag
from .functional import gather as _gather
from .nn import Embedding, EmbeddingBag
from .vectors import Vectors

__all__ = ["gather", "embedding_bag"]

_MODES = ("sum", "mean", "max")

# Files mapped per worker process (each holds a file descriptor and a mapping); the least
# recently used is dropped beyond this.
_FILE_CACHE_SIZE = 32

# Per-process state, on the driver and on every worker. ``_stats`` counts how often this
# process received an in-memory table ("received", by content token) and mapped a file
# ("opened", by path): the tests read it on the workers with ``client.run``.
_lock = threading.Lock()
_file_cache: collections.OrderedDict = collections.OrderedDict()
_stats: dict[str, collections.Counter] = {"received": collections.Counter(),
                                          "opened": collections.Counter()}
# Driver side: tables already scattered, by (client id, content token), while some graph
# still holds their future.
_scattered: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _FileTable(NamedTuple):
    """What the graph carries for a table opened by path: a few hundred bytes."""

    path: str                # absolute
    offset: int              # byte offset of row 0 in the file
    shape: tuple
    dtype: str
    header: Optional[tuple]  # a .npy file's (shape, dtype, data offset), checked again when
                             # a worker maps the file; None for a raw file
    size: int                # the file's size and mtime when the graph was built: they make
    mtime_ns: int            # the graph's keys differ for different versions of the file


class _SharedTable:
    """An in-memory table as one graph value; unpickling it counts as receiving it."""

    __slots__ = ("array", "token")

    def __init__(self, array, token):
        self.array = array
        self.token = token

    def __reduce__(self):
        return (_received, (self.array, self.token))

    def __dask_tokenize__(self):
        return self.token


def _received(array, token):
    with _lock:
        _stats["received"][token] += 1
    return _SharedTable(array, token)


def _worker_stats():
    """This process's counts of tables received and files mapped (for the tests)."""
    with _lock:
        return {"received": dict(_stats["received"]), "opened": dict(_stats["opened"]),
                "cached": [key[0] for key in _file_cache]}


# --------------------------------------------------------------------------- the driver


def _as_dask_ids(ids, name="ids"):
    """``ids`` as a dask array of integers (array-likes become a one-chunk dask array)."""
    if not isinstance(ids, da.Array):
        ids = da.asarray(ids)
    kind = ids.dtype.kind
    if kind not in "iu":
        hint = ""
        if kind == "f" and ids.ndim == 2:
            hint = ("; fastembed.dask's functions take the ids first and the table "
                    "second, unlike fastembed.gather(weight, ids)")
        raise TypeError(f"{name} must be integers, got dtype {ids.dtype}"
                        + (" (booleans are not ids)" if kind == "b" else "") + hint)
    return ids


def _mapped_file(array):
    """(absolute path, byte offset of ``array[0, 0]`` in it) if ``array`` maps a file, or None.

    ``array`` may be a ``np.memmap`` or any view of one (a slice of rows, ``np.asarray``).
    Copy-on-write maps (mode "c") are not: their changes never reach the file.
    """
    owner = None  # the np.memmap, which knows the file; its base is the mmap itself
    base = array
    while isinstance(base, np.ndarray):
        if owner is None and isinstance(base, np.memmap):
            owner = base
        base = base.base
    if (owner is None or owner.filename is None or not isinstance(base, mmap.mmap)
            or owner.mode in ("c", "copyonwrite")):
        return None
    filename, offset = owner.filename, owner.offset
    try:
        map_address = np.frombuffer(base, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):  # a closed map
        return None
    # np.memmap maps from the allocation-granularity boundary below its offset
    map_start = offset - offset % mmap.ALLOCATIONGRANULARITY
    file_offset = map_start + (array.ctypes.data - map_address)
    try:
        st = os.stat(filename)
    except OSError:  # the file is gone (a deleted temporary): ship the table instead
        return None
    if st.st_size < file_offset + array.nbytes:
        return None
    return os.path.abspath(filename), int(file_offset)


def _file_table(path, offset, shape, dtype, header):
    st = os.stat(path)
    return _FileTable(path, offset, tuple(int(n) for n in shape), np.dtype(dtype).str, header,
                      st.st_size, st.st_mtime_ns)


def _map_npy(path):
    """A .npy file mapped read-only, and its header: (shape, dtype, data offset)."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a .npy table ({exc})") from exc
    if not isinstance(mapped, np.ndarray):  # an .npz archive
        raise ValueError(f"{path}: expected a .npy file holding one table, got an archive")
    if not mapped.flags.c_contiguous:
        raise ValueError(f"{path}: the table is stored in Fortran order; fastembed needs "
                         f"C-contiguous rows (save np.ascontiguousarray(table))")
    offset = mapped.offset if isinstance(mapped, np.memmap) else 0
    return mapped, (tuple(int(n) for n in mapped.shape), mapped.dtype.str, int(offset))


def _is_npy(path):
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _npy_table(path):
    """Check a .npy table on the driver (mapping it, reading only its header); its spec."""
    path = os.path.abspath(os.fspath(path))
    mapped, header = _map_npy(path)
    if mapped.ndim != 2 or mapped.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{path}: expected a 2-D float32 or float64 table, got "
                         f"{mapped.dtype} of shape {mapped.shape}")
    return _file_table(path, header[2], mapped.shape, mapped.dtype, header)


def _unwrap(table):
    """The array behind ``table``, and the layer it came from (or None)."""
    layer = None
    if isinstance(table, (Embedding, EmbeddingBag)):
        layer = table
        if layer.max_norm is not None:
            raise ValueError("the layer has max_norm set, which renormalises looked-up rows "
                             "in place; fastembed.dask only reads tables: pass layer.weight "
                             "to look up the rows as they are")
        table = layer.weight
    elif isinstance(table, Vectors):
        table = table.weight
    return table, layer


def _inspect_table(table):
    """(shape, dtype, the table: a _FileTable or an ndarray, the layer or None), checked.

    Nothing is sent anywhere yet: :func:`_share` does that, once every argument is checked.
    """
    if isinstance(table, (str, os.PathLike)):
        spec = _npy_table(table)
        return spec.shape, np.dtype(spec.dtype), spec, None
    array, layer = _unwrap(table)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"table must be a numpy.ndarray, a path to a .npy table, a "
                        f"fastembed Vectors or a fastembed Embedding/EmbeddingBag, got "
                        f"{type(table).__name__}")
    check_table(array, "table")
    where = _mapped_file(array)
    if where is not None:
        path, offset = where
        header = _map_npy(path)[1] if _is_npy(path) else None
        spec = _file_table(path, offset, array.shape, array.dtype, header)
        return array.shape, array.dtype, spec, layer
    return array.shape, array.dtype, array, layer


def _share(source, client, array_expr=False):
    """The graph's stand-in for a table that :func:`_inspect_table` returned.

    A _FileTable (mapped by path on the workers) as it is; an in-memory table as a
    distributed Future of a _SharedTable broadcast to every worker, or without a client as a
    Delayed holding the _SharedTable as one key (the _SharedTable itself with
    ``array_expr``).
    """
    if isinstance(source, _FileTable):
        return source
    array = source
    client = _current_client() if client is None else client
    if client is None:
        # One key of the graph holds the table, by reference: the local schedulers never copy
        # it. Its name depends on the array's identity, which the graph keeps alive.
        shared = _SharedTable(array, tokenize(id(array), array.__array_interface__["data"],
                                              array.shape, array.dtype.str))
        if array_expr:
            # dask's experimental array expressions (array.query-planning) do not take a
            # Delayed into the graph: each task refers to the table instead, which the
            # local schedulers pass by reference, without copying it.
            return shared
        return dask.delayed(shared, name="fastembed-table-" + shared.token, pure=True)
    # A table is sent once while some graph still refers to its copy: the cache is keyed by
    # a hash of its bytes, so that a table changed in place is sent again. The copy itself
    # gets a new random key each time (hash=False): scattering again under the key of a
    # copy that the client is still releasing can stall distributed.
    token = tokenize(array.view(np.ndarray))  # the bytes: a memmap's token is its file's
    key = (client.id, token)
    future = _scattered.get(key)
    if future is None or future.status != "finished":
        future = client.scatter(_SharedTable(array, token), broadcast=True, hash=False)
        _scattered[key] = future
    return future


def _ref_token(ref):
    """A short deterministic token of the graph's stand-in for a table."""
    if isinstance(ref, _FileTable):
        return tokenize(tuple(ref))
    if isinstance(ref, _SharedTable):
        return ref.token
    return tokenize(ref.key)  # a Future or a Delayed


def _uses_array_expr(array):
    """True for dask's experimental array expressions (``array.query-planning``)."""
    return "_array_expr" in type(array).__module__


def _current_client():
    """The distributed Client that dask would compute on now, or None."""
    if "distributed" not in sys.modules:
        return None  # no client can exist without distributed imported
    try:
        scheduler = dask.base.get_scheduler()
    except (RuntimeError, ValueError):
        return None
    owner = getattr(scheduler, "__self__", None)
    from distributed import Client
    return owner if isinstance(owner, Client) else None


# --------------------------------------------------------------------------- the workers


def _materialise(table):
    """The ndarray behind a graph's stand-in for a table, on the process running a chunk."""
    if isinstance(table, _SharedTable):
        return table.array
    return _open_file(table)


def _open_file(spec):
    try:
        st = os.stat(spec.path)
    except FileNotFoundError as exc:
        import socket
        raise FileNotFoundError(
            exc.errno, f"the table {spec.path} is not visible on {socket.gethostname()}: "
            f"each worker opens the file by its path, so it must be on every worker's file "
            f"system") from exc
    key = (spec.path, spec.offset, spec.shape, spec.dtype)
    stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _lock:  # mapped under the lock: two threads of a worker never map a file twice
        hit = _file_cache.get(key)
        if hit is not None and hit[0] == stamp:
            _file_cache.move_to_end(key)
            return hit[1]
        array = _map_file(spec)
        _file_cache[key] = (stamp, array)
        _file_cache.move_to_end(key)
        while len(_file_cache) > _FILE_CACHE_SIZE:
            _file_cache.popitem(last=False)
        _stats["opened"][spec.path] += 1
        return array


def _map_file(spec):
    dtype = np.dtype(spec.dtype)
    if spec.header is not None:
        # A .npy file may have been replaced by another table since the graph was built:
        # its rows are read only if the header is the one the graph was built for.
        array, header = _map_npy(spec.path)
        if header != spec.header:
            raise ValueError(f"{spec.path} changed since the dask graph was built: it now "
                             f"holds {np.dtype(header[1])} of shape {header[0]}, the graph "
                             f"expects {np.dtype(spec.header[1])} of shape "
                             f"{spec.header[0]}")
        if (spec.offset, spec.shape) == (header[2], header[0]):
            return array  # the whole table
    return np.memmap(spec.path, dtype=dtype, mode="r", offset=spec.offset, shape=spec.shape)


def _located(ids, num_embeddings, block_info):
    """An IndexError naming the bad id's global position in the dask array, or None."""
    flat = ids.reshape(-1)
    bad = (flat < 0) | (flat >= num_embeddings)
    if not bad.any():
        return None
    pos = int(np.argmax(bad))
    value = int(flat[pos])
    local = np.unravel_index(pos, ids.shape) if ids.ndim else ()
    info = (block_info or {}).get(0, {})
    location = info.get("array-location")
    chunk = tuple(info.get("chunk-location", ()))
    where_local = f"at {format_position(pos, ids.shape)} of chunk {chunk}"
    if ids.ndim == 0:  # 0-d ids are a single chunk
        where, suffix = "ids", ""
    elif location is not None and all(np.isfinite(start) for start, _ in location):
        index = tuple(int(start) + int(i) for (start, _), i in zip(location, local))
        where = "ids" + ("[" + ", ".join(map(str, index)) + "]" if index else "")
        suffix = f" ({where_local})"
    else:  # chunks of unknown size: only the position within the chunk is known
        where = "ids"
        suffix = f" ({where_local}; the chunk's offset is unknown)"
    if value < 0:
        message = f"{where} = {value} is negative; ids must lie in [0, {num_embeddings})"
    else:
        message = (f"{where} = {value} is out of range for a table of {num_embeddings} "
                   f"rows; ids must lie in [0, {num_embeddings})")
    return IndexError(message + suffix)


def _gather_block(ids, table, n_threads, bounds_check, block_info=None):
    weight = _materialise(table)
    try:
        return _gather(weight, ids, n_threads=n_threads, bounds_check=bounds_check)
    except IndexError:
        located = _located(ids, weight.shape[0], block_info)
        if located is None:
            raise
        raise located from None


def _bag_block(ids, table, weights, mode, padding_idx, n_threads, bounds_check,
               block_info=None):
    weight = _materialise(table)
    try:
        return _embedding_bag(weight, ids, mode=mode, per_sample_weights=weights,
                              padding_idx=padding_idx, n_threads=n_threads,
                              bounds_check=bounds_check)
    except IndexError:
        located = _located(ids, weight.shape[0], block_info)
        if located is None:
            raise
        raise located from None


# --------------------------------------------------------------------------- the API


def gather(ids, table, *, n_threads=1, bounds_check=None, client=None):
    """Look up rows of a table for a chunked dask array of ids: ``table[ids]``, lazily.

    Each chunk of ``ids`` becomes one task that runs :func:`fastembed.gather` on it. The
    table is shared once per worker, not shipped with every chunk (see the module's
    documentation).

    Parameters
    ----------
    ids : dask.array.Array of int, any shape
        Row ids in ``[0, V)``, in chunks of any sizes (0-d and empty arrays work). Other
        integer array-likes become a dask array of one chunk.
    table : ndarray, str or os.PathLike, Vectors, Embedding or EmbeddingBag
        The (V, D) float32 or float64 table, C-contiguous: an ndarray (a ``np.memmap``, or a
        view of one, is opened by its file's path on each worker), the path of a ``.npy``
        table (:func:`fastembed.io.save_npy`; each worker maps it read-only), a
        :class:`~fastembed.vectors.Vectors` or a layer, whose ``weight`` is used. A layer with
        ``max_norm`` raises: it would renormalise rows in place.
    n_threads : int or None, default 1
        OpenMP threads for each chunk's kernel. One, because dask already runs one chunk per
        worker thread; see the module's documentation. None: OpenMP's default on the worker
        (``dask.distributed`` workers set ``OMP_NUM_THREADS=1``).
    bounds_check : {"raise", "warn", "zero"}, optional
        As in :func:`fastembed.gather`; None means "raise", or a layer's own setting. With
        "warn" the warning is issued where the chunk runs (the worker's log on a cluster).
    client : distributed.Client, optional
        The client to share an in-memory table through. None: the client dask would compute
        on now (the default client), if any; otherwise the table becomes one key of the
        graph. A graph that holds a client's copy of the table must be computed on that
        client.

    Returns
    -------
    dask.array.Array
        Shape ``ids.shape + (D,)``, chunks ``ids.chunks + ((D,),)``, the table's dtype.

    Raises
    ------
    TypeError
        Non-integer ids, or a table of the wrong type or dtype (at once).
    ValueError
        A table that is not 2-D or not C-contiguous, a file that is not a .npy table, a bad
        ``n_threads`` or ``bounds_check`` (at once); a .npy file whose shape or dtype changed
        before the chunks were computed.
    IndexError
        When computed: an id is negative or ``>= V``; the message names the first bad id of
        the chunk, its position in ``ids`` and the chunk.
    FileNotFoundError
        A table path that does not exist (at once), or not on a worker (when computed).

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import fastembed.dask
    >>> E = np.arange(8, dtype=np.float32).reshape(4, 2)
    >>> ids = da.from_array(np.array([[0, 3], [2, 2], [1, 0]]), chunks=(2, 2))
    >>> y = fastembed.dask.gather(ids, E)
    >>> y.shape, y.chunks
    ((3, 2, 2), ((2, 1), (2,), (2,)))
    >>> y.compute(scheduler="threads")[2]
    array([[2., 3.],
           [0., 1.]], dtype=float32)

    A table saved with :func:`fastembed.io.save_npy` is read by path, on each worker:

    >>> import os, tempfile
    >>> from fastembed.io import save_npy
    >>> path = os.path.join(tempfile.mkdtemp(), "table.npy")
    >>> save_npy(path, E, ["a", "b", "c", "d"])
    >>> fastembed.dask.gather(ids, path).compute(scheduler="threads")[2]
    array([[2., 3.],
           [0., 1.]], dtype=float32)
    >>> import shutil; shutil.rmtree(os.path.dirname(path))

    An id outside the table raises when the chunk holding it is computed:

    >>> bad = fastembed.dask.gather(da.from_array(np.array([0, 1, 9]), chunks=2), E)
    >>> bad.compute(scheduler="threads")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    IndexError: ids[2] = 9 is out of range ... (at [0] of chunk (1,))
    """
    ids = _as_dask_ids(ids)
    n_threads = check_n_threads(n_threads)
    if bounds_check is not None:
        check_bounds_mode(bounds_check)
    shape, dtype, source, layer = _inspect_table(table)
    if bounds_check is None:
        bounds_check = layer.bounds_check if layer is not None else "raise"
    dim = shape[1]
    ref = _share(source, client, _uses_array_expr(ids))
    name = "fastembed-gather-" + tokenize(ids.name, _ref_token(ref), n_threads, bounds_check)
    return da.map_blocks(_gather_block, ids, ref, n_threads, bounds_check,
                         chunks=ids.chunks + ((dim,),), new_axis=[ids.ndim], dtype=dtype,
                         meta=np.empty((0,) * (ids.ndim + 1), dtype=dtype), name=name)


def embedding_bag(ids, table, *, mode=None, per_sample_weights=None, padding_idx=None,
                  n_threads=1, bounds_check=None, client=None):
    """Pooled lookups for a chunked dask array of bags: the sum, mean or max of each bag.

    Row ``b`` of ``ids`` is a bag; output row ``b`` pools ``table[ids[b]]``, as
    :func:`fastembed.embedding_bag` does with 2-D ids. The bags are split among tasks along
    the bag axis; the bag-length axis must be one chunk, and ``ids`` (and
    ``per_sample_weights``) are rechunked to one chunk along it if they are not, which moves
    data between workers: chunk the ids by rows to avoid that. The table is shared once per
    worker, not shipped with every chunk (see the module's documentation).

    Parameters
    ----------
    ids : dask.array.Array of int, shape (B, L)
        One bag of ``L`` ids per row, in ``[0, V)``. Other integer array-likes become a
        dask array of one chunk. Ragged bags: pad them with ``padding_idx``.
    table : ndarray, str or os.PathLike, Vectors, Embedding or EmbeddingBag
        The (V, D) float32 or float64 table, as in :func:`gather`. For a layer, options left
        at None (``mode``, ``padding_idx``, ``bounds_check``) take the layer's values.
    mode : {"sum", "mean", "max"}, optional
        The pooling; None means "mean" (or an ``EmbeddingBag``'s mode).
    per_sample_weights : dask.array.Array or array-like, shape (B, L), optional
        One weight per id, of the table's dtype, with "sum" (Σ wᵢxᵢ) or "mean"
        (Σ wᵢxᵢ / Σ wᵢ). Rechunked to the chunks of ``ids``.
    padding_idx : int, optional
        Ids equal to it are left out of the pooling and of the mean's count (negative values
        count from the end).
    n_threads : int or None, default 1
        OpenMP threads for each chunk's kernel, as in :func:`gather`.
    bounds_check : {"raise", "warn", "zero"}, optional
        As in :func:`fastembed.embedding_bag`; None means "raise" (or a layer's setting).
    client : distributed.Client, optional
        As in :func:`gather`.

    Returns
    -------
    dask.array.Array
        Shape (B, D), chunks ``(ids.chunks[0], (D,))``, the table's dtype. Empty bags (and
        bags of padding only) give zeros.

    Raises
    ------
    TypeError
        Non-integer ids, per-sample weights not of the table's dtype, a table of the wrong
        type or dtype (at once).
    ValueError
        ``ids`` not 2-D, an unknown ``mode``, ``per_sample_weights`` of the wrong shape or
        with "max", ``padding_idx`` outside ``[-V, V)``, a bad table (at once).
    IndexError, FileNotFoundError
        As in :func:`gather`: a bad id when computed, a missing table path.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> import fastembed.dask
    >>> E = np.arange(8, dtype=np.float32).reshape(4, 2)
    >>> ids = da.from_array(np.array([[0, 1, 3], [2, 0, 0], [3, 3, 0]]), chunks=(2, 2))
    >>> y = fastembed.dask.embedding_bag(ids, E, mode="sum", padding_idx=0)
    >>> y.chunks
    ((2, 1), (2,))
    >>> y.compute(scheduler="threads")
    array([[ 8., 10.],
           [ 4.,  5.],
           [12., 14.]], dtype=float32)
    """
    ids = _as_dask_ids(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be 2-D (bags, bag length), got shape {ids.shape}")
    n_threads = check_n_threads(n_threads)
    if bounds_check is not None:
        check_bounds_mode(bounds_check)
    if mode is not None and mode not in _MODES:
        raise ValueError(f"mode must be 'sum', 'mean' or 'max', got {mode!r}")
    shape, dtype, source, layer = _inspect_table(table)
    if layer is not None:
        mode = getattr(layer, "mode", "mean") if mode is None else mode
        padding_idx = layer.padding_idx if padding_idx is None else padding_idx
        bounds_check = layer.bounds_check if bounds_check is None else bounds_check
    mode = "mean" if mode is None else mode
    bounds_check = "raise" if bounds_check is None else bounds_check
    padding_idx = check_padding_idx(padding_idx, shape[0])
    if ids.numblocks[1] > 1:
        if any(np.isnan(c) for c in ids.chunks[1]):
            raise ValueError("the bag-length axis of ids has chunks of unknown size; call "
                             "ids.compute_chunk_sizes() first")
        ids = ids.rechunk({1: -1})
    weights = None
    if per_sample_weights is not None:
        weights = per_sample_weights
        if not isinstance(weights, da.Array):
            weights = da.asarray(weights)
        check_bag_weights(weights, mode, dtype, ids.shape)
        if weights.chunks != ids.chunks:
            weights = weights.rechunk(ids.chunks)
    dim = shape[1]
    ref = _share(source, client, _uses_array_expr(ids))
    name = "fastembed-bag-" + tokenize(ids.name, _ref_token(ref), None if weights is None
                                       else weights.name, mode, padding_idx, n_threads,
                                       bounds_check)
    return da.map_blocks(_bag_block, ids, ref, weights, mode, padding_idx, n_threads,
                         bounds_check, chunks=(ids.chunks[0], (dim,)), dtype=dtype,
                         meta=np.empty((0, 0), dtype=dtype), name=name)
