# Stubs for the compiled kernels (fastembed/_ext/indexing.pyx). The kernels trust their arguments:
# call them through fastembed.functional, which validates.
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_Index = np.int32 | np.int64
_I64 = npt.NDArray[np.int64]

PREFETCH: int
STREAM: int
STREAM_STORES: bool

def find_first_invalid(ids: npt.NDArray[_Index], n_rows: int, n_threads: int) -> int: ...
def gather(weight: npt.NDArray[_Float], ids: npt.NDArray[_Index], out: npt.NDArray[_Float],
           n_threads: int, mode: int = ...) -> None: ...
def gather_direct(weight: Any, ids: Any, out: Any, n_threads: Any, serial_work: int,
                  mode_of: Callable[[Any, int, int], int | None]
                  ) -> npt.NDArray[_Float] | None: ...
def scatter_add_small(out: Any, ids: Any, grad: Any, n_threads: Any,
                      max_work: int) -> npt.NDArray[_Float] | None: ...
def group_by_row(ids: _I64, max_id: int, n_threads: int) -> tuple[_I64, _I64, _I64]: ...
def segment_sum(grad: npt.NDArray[_Float], perm: _I64, starts: _I64,
                out: npt.NDArray[_Float], src_row: _I64 | None,
                scale: npt.NDArray[_Float] | None, n_threads: int) -> None: ...
def partition_by_owner(ids: npt.NDArray[_Index], bounds: _I64,
                       n_threads: int) -> tuple[_I64, _I64]: ...
def scatter_add_owned(table: npt.NDArray[_Float], ids: npt.NDArray[_Index],
                      grad: npt.NDArray[_Float], pos: _I64 | None, starts: _I64,
                      n_threads: int) -> None: ...
def coalesce_owned(ids: npt.NDArray[_Index], grad: npt.NDArray[_Float], pos: _I64 | None,
                   starts: _I64, bounds: _I64, src_row: _I64 | None,
                   scale: npt.NDArray[_Float] | None, n_threads: int,
                   values_buffer: npt.NDArray[_Float] | None = None
                   ) -> tuple[_I64, npt.NDArray[_Float], _I64]: ...
def force_vector_path(path: int) -> bool: ...
def owner_bounds(ids: npt.NDArray[_Index], num_embeddings: int, n_owners: int,
                 sample_min: int, sample_max: int, stride: int, cold_cost: float) -> _I64: ...
def values_array(buffer: npt.NDArray[_Float] | None, u: int, d: int,
                 dtype: Any) -> npt.NDArray[_Float]: ...
