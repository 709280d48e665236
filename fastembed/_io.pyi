# Stubs for fastembed/_io.pyx. Called by fastembed.io, which validates.
import numpy as np
import numpy.typing as npt

ERRORS: dict[int, str]

def parse_double(token: bytes) -> float: ...
def parse_text_block(buf: npt.NDArray[np.uint8], n: int,
                     out: npt.NDArray[np.float32] | npt.NDArray[np.float64], row0: int,
                     max_rows: int, word_off: npt.NDArray[np.int64],
                     word_len: npt.NDArray[np.int32], n_parts: int,
                     n_threads: int) -> tuple[int, int, int, int, int]: ...
def parse_binary_block(buf: npt.NDArray[np.uint8], n: int, final: bool,
                       out: npt.NDArray[np.float32] | npt.NDArray[np.float64], row0: int,
                       max_rows: int, word_off: npt.NDArray[np.int64],
                       word_len: npt.NDArray[np.int32]) -> tuple[int, int, int]: ...
def decode_words(buf: npt.NDArray[np.uint8], word_off: npt.NDArray[np.int64],
                 word_len: npt.NDArray[np.int32], count: int, encoding: str, errors: str,
                 words: list[str], index: dict[str, int], duplicates: list[int]) -> int: ...
