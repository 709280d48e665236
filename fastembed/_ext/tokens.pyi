"""Type stubs for the compiled token passes (``tokens.pyx``)."""
from typing import Iterable

import numpy as np
import numpy.typing as npt

def encode_sentences(
    sentences: list[Iterable[object]],
    index: dict[object, int],
    max_sentence_length: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...

def count_tokens(
    sentences: list[Iterable[object]],
    slots: dict[object, int],
    counts: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]: ...

def count_file(
    f: object,
    chunk_bytes: int = ...,
    eos: bool = ...,
) -> tuple[list[bytes], npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...

def encode_slots(
    slots: npt.NDArray[np.int32],
    lengths: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int32],
    max_sentence_length: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
