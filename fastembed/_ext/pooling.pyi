# Stubs for fastembed/_ext/pooling.pyx. The kernels trust their arguments: call them through
# fastembed.embedding_bag or fastembed.EmbeddingBag, which validate.
import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_Index = np.int32 | np.int64

MODES: dict[str, int]
SIMD_PATHS: tuple[str, ...]

def simd_path() -> str: ...
def set_simd_path(name: str) -> bool: ...

def bag_forward(weight: npt.NDArray[_Float], ids: npt.NDArray[_Index],
                offsets: npt.NDArray[np.int64], psw: npt.NDArray[_Float] | None, mode: int,
                padding_idx: int, out: npt.NDArray[_Float], denom: npt.NDArray[_Float],
                argmax: npt.NDArray[np.int64] | None, n_threads: int) -> None: ...
def bag_max_backward(argmax: npt.NDArray[np.int64], grad: npt.NDArray[_Float],
                     slot: npt.NDArray[np.int64], values: npt.NDArray[_Float],
                     n_threads: int) -> None: ...
