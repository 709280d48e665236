# Stubs for the compiled kernels (fastembed/_kernels.pyx). The kernels trust their arguments:
# call them through fastembed.functional, which validates.
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_Index = np.int32 | np.int64

def find_first_invalid(ids: npt.NDArray[_Index], n_rows: int, n_threads: int) -> int: ...
def gather(weight: npt.NDArray[_Float], ids: npt.NDArray[_Index], out: npt.NDArray[_Float],
           n_threads: int) -> None: ...
def group_by_row(ids: npt.NDArray[np.int64], n_rows: int, n_threads: int
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                            npt.NDArray[np.int64]]: ...
def segment_sum(grad: npt.NDArray[_Float], perm: npt.NDArray[np.int64],
                starts: npt.NDArray[np.int64], out: npt.NDArray[_Float],
                n_threads: int) -> None: ...
def scatter_add_grouped(table: npt.NDArray[_Float], grad: npt.NDArray[_Float],
                        perm: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                        starts: npt.NDArray[np.int64], n_threads: int) -> None: ...
def scatter_add_serial(table: npt.NDArray[_Float], ids: npt.NDArray[_Index],
                       grad: npt.NDArray[_Float]) -> None: ...
