# Stubs for fastembed/_ext/textio.pyx. Called by fastembed.io, which validates.
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

ERRORS: dict[int, str]
BIN_OK: int
BIN_TRUNCATED: int
BIN_NO_WORD: int
BIN_READ_ERROR: int
BIN_BAD_WORD: int
BIN_DUPLICATE: int

def parse_double(token: bytes) -> float: ...
def parse_text_block(buf: npt.NDArray[np.uint8], n: int,
                     out: npt.NDArray[np.float32] | npt.NDArray[np.float64], row0: int,
                     max_rows: int, word_off: npt.NDArray[np.int64],
                     word_len: npt.NDArray[np.int32], n_parts: int,
                     n_threads: int) -> tuple[int, int, int, int, int]: ...
def format_f32(x: float, printf: bool = False) -> str: ...
def format_rows(table: npt.NDArray[np.float32], words: bytes | npt.NDArray[np.uint8],
                word_off: npt.NDArray[np.int64], lo: int, hi: int,
                n_threads: int) -> bytes: ...
def new_index() -> dict[str, int]: ...
def decode_words(buf: npt.NDArray[np.uint8], word_off: npt.NDArray[np.int64],
                 word_len: npt.NDArray[np.int32], count: int, encoding: str, errors: str,
                 words: list[str], index: dict[str, int], duplicates: list[int]) -> int: ...
def read_binary(fd: int, start: int,
                out: npt.NDArray[np.float32] | npt.NDArray[np.float64], block_bytes: int,
                encoding: str, errors: str, words: list[str], index: dict[str, int],
                duplicates: list[int], stop_at_duplicate: bool,
                progress: Callable[[int], object] | None,
                n_threads: int) -> tuple[int, int, bytes | int | None]: ...
