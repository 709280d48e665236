"""Type stubs for the compiled subword kernel (``subwords.pyx``)."""
import numpy as np
import numpy.typing as npt

def fasttext_hash(data: bytes | npt.NDArray[np.uint8]) -> int: ...
def subword_rows(
    text: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    minn: int,
    maxn: int,
    bucket: int,
    base: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
