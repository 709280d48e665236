# Stubs for fastembed/_ext/updates.pyx. Called by fastembed.optim, which validates.
from typing import Any

import numpy as np
import numpy.typing as npt

_Float = np.float32 | np.float64
_I64 = npt.NDArray[np.int64]

KINDS: dict[str, int]

def sparse_step(weight: npt.NDArray[_Float], rows: _I64, values: npt.NDArray[_Float],
                state1: npt.NDArray[_Float], state2: npt.NDArray[_Float],
                hyper: dict[str, Any], n_threads: int) -> None: ...
def fused_step(weight: npt.NDArray[_Float], rows: _I64, values: npt.NDArray[_Float],
               counts: _I64, divide_by_count: bool, skip_row: int,
               check_finite: bool, state1: npt.NDArray[_Float], state2: npt.NDArray[_Float],
               hyper: dict[str, Any], n_threads: int) -> int: ...
