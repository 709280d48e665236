"""Type stubs for the compiled word2vec kernel (``sgns.pyx``)."""
from typing import Optional

import numpy as np
import numpy.typing as npt

def sigmoid(x: float) -> float: ...
def softplus(x: float) -> float: ...
def uniform_rows(
    table: npt.NDArray[np.floating],
    rows: npt.NDArray[np.int64],
    seed: int,
    scale: float,
    n_threads: int,
) -> None: ...
def w2v_scratch_bytes(
    n_words: int,
    n_shards: int,
    round_words: int,
    max_period: int,
    window: int,
    negative: int,
    cbow: bool,
) -> int: ...
def w2v_step(
    syn0: npt.NDArray[np.floating],
    syn1neg: npt.NDArray[np.floating],
    words: npt.NDArray[np.int32],
    starts: npt.NDArray[np.int64],
    keep: npt.NDArray[np.uint32],
    subsample: bool,
    accept: npt.NDArray[np.uint64],
    alias: npt.NDArray[np.int32],
    window: int,
    negative: int,
    cbow: bool,
    alpha0: float,
    alpha1: float,
    seed: int,
    n_shards: int,
    round_words: int,
    hogwild: bool,
    slots: npt.NDArray[np.int32],
    count: npt.NDArray[np.int32],
    buf: npt.NDArray[np.uint8],
    touched: npt.NDArray[np.int64],
    cap_in: int,
    hot_in: npt.NDArray[np.int32],
    hot_out: npt.NDArray[np.int32],
    tier_end: npt.NDArray[np.int64],   # (2, n_tiers)
    hot_buf: npt.NDArray[np.uint8],
    max_period: int,
    loss: npt.NDArray[np.float64],
    pairs: npt.NDArray[np.int64],
    n_threads: int,
    record: bool = ...,
    rec_reduced: Optional[npt.NDArray[np.int32]] = ...,
    rec_neg: Optional[npt.NDArray[np.int32]] = ...,
    bag_ptr: Optional[npt.NDArray[np.int64]] = ...,
    bag_rows: Optional[npt.NDArray[np.int32]] = ...,
    bag_shift: Optional[npt.NDArray[np.float64]] = ...,
    scratch: Optional[npt.NDArray[np.uint8]] = ...,
) -> int: ...
