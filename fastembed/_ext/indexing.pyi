# Stubs for the compiled kernels (fastembed/_ext/indexing.pyx). The kernels trust their arguments:
# call them through fastembed.functional, which validates.
from typing import Any

import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_Index = np.int32 | np.int64
_I64 = npt.NDArray[np.int64]

def find_first_invalid(ids: npt.NDArray[_Index], n_rows: int, n_threads: int) -> int: ...
def gather(weight: npt.NDArray[_Float], ids: npt.NDArray[_Index], out: npt.NDArray[_Float],
           n_threads: int, prefetch: bool = ...) -> None: ...
def gather_small(weight: Any, ids: Any, out: Any, n_threads: Any,
                 max_work: int) -> npt.NDArray[_Float] | None: ...
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
                   scale: npt.NDArray[_Float] | None,
                   n_threads: int) -> tuple[_I64, npt.NDArray[_Float], _I64]: ...
