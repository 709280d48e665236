"""Tests for fastembed.io: word2vec text/binary and GloVe files, .npy tables, gensim interop.

The parser's contract on numbers: every value is bitwise what NumPy gives for the token, i.e.
``np.float32(float(token))`` (the decimal string correctly rounded to double, then rounded to
float32: "double rounding", reproduced exactly) and ``float(token)`` for ``dtype=np.float64``.
It is checked on millions of random decimal strings and on strings built around exact float32
(and float64) midpoints, where double rounding and single rounding disagree.
"""
from __future__ import annotations

import decimal
import os
import re
import threading
import warnings
from decimal import Decimal

import numpy as np
import pytest
from conftest import assert_bitwise_equal
from reference import ref_read_word2vec_binary

import fastembed
from fastembed import io as fio
from fastembed.vectors import Vectors


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def load(path, **kw):
    return fio.load_word2vec(path, **kw)


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def text_file(path, lines, *, header=None, eol="\n", final_eol=True, encoding="utf-8"):
    """Write rows (str lines) with an optional header ``(count, dim)``."""
    out = []
    if header is not None:
        out.append(f"{header[0]} {header[1]}")
    out.extend(lines)
    body = eol.join(out) + (eol if final_eol else "")
    return write_bytes(path, body.encode(encoding))


def glove_lines(words, tokens):
    """One 'word tok tok ...' line per row of the 2-D token array."""
    return [w + " " + " ".join(row) for w, row in zip(words, tokens.tolist())]


def binary_file(path, words, weight, *, header=None, newline=True):
    """A word2vec binary file written by hand: 'V D\\n', then word, ' ', D float32 (LE)."""
    weight = np.asarray(weight, dtype="<f4")
    v, d = weight.shape if header is None else header
    parts = [f"{v} {d}\n".encode()]
    for w, row in zip(words, weight):
        parts.append(w.encode("utf-8") if isinstance(w, str) else w)
        parts.append(b" " + row.tobytes() + (b"\n" if newline else b""))
    return write_bytes(path, b"".join(parts))


def assert_error_at(excinfo, path, line):
    """The ValueError names the file and the 1-based line number ``line``."""
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    rest = msg.replace(str(path), "")
    # 'path:LINE: ...' (as compilers do) or '... line LINE ...' / '... lines 3 and LINE ...'
    assert re.search(rf"(?:^:|\blines?\s+(?:\d+\s+and\s+)?){line}(?!\d)", rest), \
        f"line {line} not named in: {msg}"


@pytest.fixture(autouse=True)
def _drop_big_files(request):
    """Delete this module's multi-megabyte files after each test (pytest keeps tmp dirs)."""
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is not None and tmp.is_dir():
        for p in tmp.iterdir():
            if p.is_file() and p.stat().st_size > (1 << 20):
                p.unlink()


# The reader's block size (fastembed.io reads files in blocks of this many bytes): the tests
# about block boundaries size their files from it, so they keep aiming past a boundary.
READ_BLOCK = max(1 << 20, int(getattr(fio, "_BLOCK", 1 << 24)))

_ROW_VALS = " ".join(f"{(j * 0.37) - 2:.6f}" for j in range(12)).encode()


def _rows_spanning(n_blocks):
    """Enough 12-value text rows to fill n_blocks read blocks."""
    return int(n_blocks * READ_BLOCK / (len(_ROW_VALS) + 8)) + 1


def f32_bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


# ------------------------------------------------------------------------------------------
# random decimal strings (vectorised) and strings around exact midpoints
# ------------------------------------------------------------------------------------------

_W = 25  # at most 25 significant digits


def random_decimal_tokens(rng, n):
    """n random decimal strings (a NumPy str array), built byte by byte with NumPy.

    Mantissas of 1..25 digits, a decimal point anywhere (also '.5' and '5.') or none, 0..3
    leading zeros, signs '-'/'+'/none, exponents in [-50, 50] as 'e'/'E' with '+'/'-'/none
    signs, or no exponent at all.
    """
    nd = rng.integers(1, _W + 1, size=n)
    digits = rng.integers(ord("0"), ord("9") + 1, size=(n, _W), dtype=np.uint8)
    nonzero_first = rng.random(n) < 0.9
    digits[nonzero_first, 0] = rng.integers(ord("1"), ord("9") + 1, size=nonzero_first.sum(),
                                             dtype=np.uint8)
    nlead = np.where(rng.random(n) < 0.1, rng.integers(1, 4, size=n), 0)
    has_point = rng.random(n) < 0.8
    point = rng.integers(0, nd + 1)
    exp = rng.integers(-50, 51, size=n)
    exp_kind = rng.integers(0, 5, size=n)  # none, 'e', 'E', 'e' with '+', 'E' with '+'
    sign = rng.integers(0, 3, size=n)      # none, '-', '+'
    width = 1 + 3 + _W + 1 + 1 + 1 + 2
    buf = np.zeros((n, width), dtype=np.uint8)
    col = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)

    def put(mask, chars):
        r = rows[mask]
        buf[r, col[r]] = chars[mask] if np.ndim(chars) else chars
        col[r] += 1

    put(sign == 1, ord("-"))
    put(sign == 2, ord("+"))
    for k in range(3):
        put(nlead > k, ord("0"))
    for k in range(_W + 1):
        put(has_point & (point == k), ord("."))
        if k < _W:
            put(k < nd, digits[:, k])
    has_exp = exp_kind > 0
    put(has_exp & ((exp_kind == 1) | (exp_kind == 3)), ord("e"))
    put(has_exp & ((exp_kind == 2) | (exp_kind == 4)), ord("E"))
    put(has_exp & (exp_kind >= 3) & (exp >= 0), ord("+"))
    put(has_exp & (exp < 0), ord("-"))
    mag = np.abs(exp)
    put(has_exp & (mag >= 10), (mag // 10 + ord("0")).astype(np.uint8))
    put(has_exp, (mag % 10 + ord("0")).astype(np.uint8))
    return buf.view(f"S{width}").ravel().astype(str)


def midpoint_tokens(rng, n, ftype):
    """Decimal strings at, just above and just below exact midpoints of adjacent floats.

    The exact midpoint of two adjacent floats of ``ftype`` is written with 25+ significant
    digits and then moved by -1, 0 or +1 in its last digit. For float32 every such string
    rounds to the midpoint itself as a double, so ``np.float32(float(tok))`` rounds half to
    even, where a correctly rounded (single-rounding) parser would go up or down: these are
    exactly the double-rounding cases.
    """
    if ftype == np.float32:
        u = rng.integers(1, 0x7F7FFFFF, size=n, dtype=np.uint32)  # subnormals included
    else:
        lo = int(np.float64(1e-50).view(np.uint64))
        hi = int(np.float64(1e50).view(np.uint64))
        u = rng.integers(lo, hi, size=n, dtype=np.uint64)
    a = u.view(ftype).tolist()
    b = (u + 1).view(ftype).tolist()
    moves = rng.integers(-1, 2, size=n).tolist()
    pads = rng.integers(0, 4, size=n).tolist()
    negs = (rng.random(n) < 0.5).tolist()
    points = rng.integers(0, 30, size=n).tolist()
    echars = rng.choice(["e", "E", "e+"], size=n).tolist()
    toks = []
    with decimal.localcontext() as ctx:
        ctx.prec = 5000  # exact
        for x, y, move, pad, neg, pp, ech in zip(a, b, moves, pads, negs, points, echars):
            m = (Decimal(x) + Decimal(y)) / 2
            _, digs, e = m.as_tuple()
            d = "".join(map(str, digs))
            extra = max(0, 25 - len(d)) + pad
            d += "0" * extra
            e -= extra
            d = str(int(d) + move)
            pp = min(pp, len(d))
            e10 = e + len(d) - pp
            if ech == "e+" and e10 < 0:
                ech = "e"
            toks.append(("-" if neg else "") + d[:pp] + "." + d[pp:] + ech + str(e10))
    return np.array(toks), np.array(a, dtype=ftype), np.array(b, dtype=ftype)


def expected_f64(tokens):
    """float(tok) for each token: NumPy's str -> float64 cast (checked against float())."""
    return np.asarray(tokens).astype(np.float64)


def expected_f32(tokens):
    """np.float32(float(tok)): round to double, then to float32 (double rounding)."""
    with np.errstate(over="ignore"):
        return expected_f64(tokens).astype(np.float32)


def check_expected_forms(tokens, rng, k=3000):
    """Confirm on a sample that the vectorised expectations match np.float32(tok), float(tok)."""
    sample = tokens[rng.choice(tokens.size, size=min(k, tokens.size), replace=False)]
    with np.errstate(over="ignore"):
        one_by_one32 = np.array([np.float32(t) for t in sample.tolist()], dtype=np.float32)
        via_float = np.array([np.float32(float(t)) for t in sample.tolist()], dtype=np.float32)
    one_by_one64 = np.array([float(t) for t in sample.tolist()], dtype=np.float64)
    assert_bitwise_equal(expected_f32(sample), one_by_one32)
    assert_bitwise_equal(via_float, one_by_one32)
    assert_bitwise_equal(expected_f64(sample), one_by_one64)


ROWS, COLS = 20_000, 50


@pytest.fixture(scope="module")
def random_tokens():
    """2,000,000 random decimal strings (two 20,000 x 50 files' worth)."""
    rng = np.random.default_rng(20240611)
    toks = random_decimal_tokens(rng, 2 * ROWS * COLS).reshape(2, ROWS, COLS)
    check_expected_forms(toks.ravel(), rng)
    return toks


# ------------------------------------------------------------------------------------------
# numbers: bitwise what NumPy gives
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("part", [0, 1])
def test_random_decimals_float32_bitwise(tmp_path, random_tokens, part):
    toks = random_tokens[part]
    words = [f"w{i}" for i in range(ROWS)]
    path = text_file(tmp_path / "glove.txt", glove_lines(words, toks))
    v = load(path, no_header=True)
    assert v.words == words
    assert v.weight.dtype == np.float32 and v.weight.shape == (ROWS, COLS)
    assert_bitwise_equal(v.weight, expected_f32(toks))


def test_random_decimals_float64_bitwise(tmp_path, random_tokens):
    toks = random_tokens[1]
    words = [f"w{i}" for i in range(ROWS)]
    path = text_file(tmp_path / "vec.txt", glove_lines(words, toks), header=(ROWS, COLS))
    v = load(path, dtype=np.float64)
    assert v.weight.dtype == np.float64
    assert_bitwise_equal(v.weight, expected_f64(toks))


def test_float32_midpoints_double_rounding(tmp_path, rng):
    toks, a, b = midpoint_tokens(rng, 6000, np.float32)
    # self-check: each token's double is exactly the midpoint, so these are double-rounding
    # cases (half of the moved ones round away from where single rounding would go)
    mid = (a.astype(np.float64) + b.astype(np.float64)) / 2
    assert_bitwise_equal(np.abs(expected_f64(toks)), mid)
    check_expected_forms(toks, rng, k=1000)
    toks = toks.reshape(-1, 50)
    words = [f"m{i}" for i in range(toks.shape[0])]
    path = text_file(tmp_path / "mid.txt", glove_lines(words, toks))
    assert_bitwise_equal(load(path, no_header=True).weight, expected_f32(toks))
    # and as float64: each is float(tok)
    assert_bitwise_equal(load(path, no_header=True, dtype=np.float64).weight,
                         expected_f64(toks))


def test_float64_midpoints(tmp_path, rng):
    toks, _, _ = midpoint_tokens(rng, 3000, np.float64)
    toks = toks.reshape(-1, 30)
    words = [f"m{i}" for i in range(toks.shape[0])]
    path = text_file(tmp_path / "mid64.txt", glove_lines(words, toks))
    assert_bitwise_equal(load(path, no_header=True, dtype=np.float64).weight,
                         expected_f64(toks))
    assert_bitwise_equal(load(path, no_header=True).weight, expected_f32(toks))


SPECIAL_TOKENS = [
    # subnormals, their edges, underflow to (signed) zero
    "1e-40", "-1e-40", "1e-45", "1.4e-45", "1.401298464324817e-45", "7.006492321624085e-46",
    "7.0064923216240854e-46", "7e-46", "1e-46", "1e-50", "-1e-50", "1.1754942e-38",
    "1.17549435e-38", "5.877471754111438e-39",
    # largest float32, the overflow threshold, overflow to inf
    "3.4028234663852886e38", "3.4028235e38", "3.4028235677973366e38", "3.40282357e38",
    "3.4028236e38", "1e39", "-1e39", "1E+39",
    # zeros
    "0", "-0", "+0", "-0.0", "0.0", "-0e0", "0e-50", "-.0", "0.", "-0.E5", "000",
    # nan and infinities, any case
    "nan", "NaN", "NAN", "-nan", "+nan", "-NaN", "inf", "Inf", "INF", "-inf", "+inf",
    "infinity", "Infinity", "-Infinity", "+INFINITY",
    # decimal-point and exponent forms
    ".5", "5.", "-.5e-3", "+5.E2", "00001.5", "1E+05", "1e-0", "1e+0", "0e0", "1E5", "1e05",
    "-0001.000e-0002", "+123456789012345678901234567890", "0.1", "0.2", "0.3", "16777217",
    "16777216.000000001", "33554435",
]


def _special_grid(tokens, cols=7):
    toks = list(tokens)
    toks += ["1"] * (-len(toks) % cols)
    return np.array(toks).reshape(-1, cols)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_bitwise(tmp_path, dtype):
    toks = _special_grid(SPECIAL_TOKENS)
    words = [f"s{i}" for i in range(toks.shape[0])]
    path = text_file(tmp_path / "special.txt", glove_lines(words, toks), header=toks.shape)
    got = load(path, dtype=dtype).weight
    with np.errstate(over="ignore"):
        expected = np.array([[dtype(float(t)) for t in row] for row in toks.tolist()],
                            dtype=dtype)
    assert_bitwise_equal(got, expected)
    # spot checks of the contract spelled out
    flat = dict(zip(toks.ravel().tolist(), got.ravel().tolist()))
    assert np.signbit(flat["-0"]) and np.signbit(flat["-0.0"]) and not np.signbit(flat["0"])
    assert np.isnan(flat["-nan"]) and np.signbit(flat["-nan"])
    assert np.isnan(flat["nan"]) and not np.signbit(flat["nan"])
    assert flat["1e39"] == (np.inf if dtype == np.float32 else 1e39)
    if dtype == np.float32:
        assert flat["1e-45"] == np.float32(1.401298464324817e-45)  # smallest subnormal
        assert flat["1e-50"] == 0 and np.signbit(flat["-1e-50"])
        nan_bits = f32_bits([flat["nan"], flat["-nan"]])
        assert nan_bits.tolist() == [0x7FC00000, 0xFFC00000]


def test_long_tokens(tmp_path):
    """Tokens far longer than 25 digits, and huge exponents, as Python's float reads them."""
    toks = [
        "0." + "0" * 300 + "1e300",
        "1" + "0" * 400 + "e-400",
        "3." + "14159265358979323846" * 20,
        "-" + "9" * 60,
        "1e0000000000000000005",
        "1e-99999",
        "-1e99999",
        "0." + "0" * 45 + "14012984643248170709237295832899161312802619418765157717570682",
        "1" * 120 + "e-120",
    ]
    grid = np.array(toks).reshape(1, -1)
    path = text_file(tmp_path / "long.txt", glove_lines(["w"], grid))
    assert_bitwise_equal(load(path, no_header=True).weight, expected_f32(grid))
    assert_bitwise_equal(load(path, no_header=True, dtype=np.float64).weight,
                         expected_f64(grid))


# ------------------------------------------------------------------------------------------
# text syntax
# ------------------------------------------------------------------------------------------

def test_separators_line_endings_and_trailing_space(tmp_path):
    body = (b"3  2 \r\n"
            b"a 1 2\n"
            b"b\t3  \t 4 \r\n"
            b"c  \t5\t6")  # no final newline
    path = write_bytes(tmp_path / "sep.txt", body)
    v = load(path)
    assert v.words == ["a", "b", "c"]
    assert_bitwise_equal(v.weight, np.array([[1, 2], [3, 4], [5, 6]], np.float32))


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("final_eol", [True, False])
@pytest.mark.parametrize("trailing", ["", " "])
def test_line_ending_variants(tmp_path, eol, final_eol, trailing):
    rows = [f"w{i} {i}.5 -{i} 1e{i}{trailing}" for i in range(5)]
    path = text_file(tmp_path / "v.txt", rows, header=(5, 3), eol=eol, final_eol=final_eol)
    v = load(path)
    assert v.words == [f"w{i}" for i in range(5)]
    expected = np.array([[i + 0.5, -float(i), 10.0 ** i] for i in range(5)], np.float32)
    assert_bitwise_equal(v.weight, expected)
    # the same without the header, as GloVe
    path2 = text_file(tmp_path / "g.txt", rows, eol=eol, final_eol=final_eol)
    assert_bitwise_equal(load(path2, no_header=True).weight, expected)


def test_word2vec_c_style_text(tmp_path):
    """word2vec.c writes '%s ' then '%lf ' per value: a trailing space on every line."""
    lines = ["</s> 0.004003 0.004419 -0.003830 ", "the -0.052966 0.065283 0.006798 "]
    path = text_file(tmp_path / "w2v.txt", lines, header=(2, 3))
    v = load(path)
    assert v.words == ["</s>", "the"]
    assert_bitwise_equal(v.weight, expected_f32(np.array([l.split()[1:] for l in lines])))


def test_words_keep_non_separator_characters(tmp_path):
    """Only spaces and tabs separate tokens: other (Unicode) spacing belongs to the word."""
    words = ["a\u00a0b", "c\u2028d", "e\x0cf", "g\x0bh", "i\x85j", "k\u3000l", "日本", "😀"]
    lines = [f"{w} {i} {-i}" for i, w in enumerate(words)]
    path = text_file(tmp_path / "odd.txt", lines, header=(len(words), 2))
    v = load(path)
    assert v.words == words
    assert_bitwise_equal(v.weight, np.array([[i, -i] for i in range(len(words))], np.float32))


@pytest.mark.parametrize("binary", [False, True])
def test_loaded_words_can_be_saved_back(tmp_path, binary):
    """Whatever load_word2vec accepts as a word (no space, tab or newline in it), save_word2vec
    writes back, and reading gives the same words."""
    words = ["a\u00a0b", "c\u2028d", "e\x0cf", "k\u3000l", "i\x85j"]
    lines = [f"{w} {i} {-i}" for i, w in enumerate(words)]
    path = text_file(tmp_path / "odd.txt", lines, header=(len(words), 2))
    v = load(path)
    assert v.words == words
    out = tmp_path / "out.vec"
    fio.save_word2vec(out, v, binary=binary)
    again = load(out, binary=binary)
    assert again.words == words
    assert_bitwise_equal(again.weight, v.weight)


BAD_TOKENS = ["abc", "1e", "1.2.3", "0x1p3", "nan(1)", "1_0", "--1", "1e+", ".", "e5", "+",
              "infx", "1,5", "1e5.0", "in", "0x10", "1e1_0", "١٢", "１２", "infinit", "nanx",
              "-", "1e--5", "1e5e5", "+-1", "1.e", "e", "E1", "1\x002", "1\x0c2", "1\x0b2",
              "inf-", "0b1", "1d5", "1f"]


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("no_header", [False, True])
def test_rejects_non_numeric_token(tmp_path, token, no_header):
    rows = [f"w{i} {i} {i}.25 -{i}" for i in range(135)]
    rows.append(f"bad 1 {token} 3")
    rows += [f"z{i} 1 2 3" for i in range(5)]
    path = text_file(tmp_path / "bad.txt", rows,
                     header=None if no_header else (len(rows), 3))
    with pytest.raises(ValueError) as excinfo:
        load(path, no_header=no_header)
    assert_error_at(excinfo, path, 136 if no_header else 137)


def test_python_float_accepts_underscores_but_the_parser_does_not(tmp_path):
    assert float("1_0") == 10.0  # documented difference from Python's float()
    path = text_file(tmp_path / "u.txt", ["a 1_0 2"])
    with pytest.raises(ValueError) as excinfo:
        load(path, no_header=True)
    assert_error_at(excinfo, path, 1)


@pytest.mark.parametrize("kind", ["fewer", "more"])
@pytest.mark.parametrize("no_header", [False, True])
def test_rejects_ragged_rows(tmp_path, kind, no_header):
    rows = [f"w{i} 1 2 3" for i in range(140)]
    rows[136] = "r 1 2" if kind == "fewer" else "r 1 2 3 4"
    path = text_file(tmp_path / "ragged.txt", rows,
                     header=None if no_header else (len(rows), 3))
    with pytest.raises(ValueError) as excinfo:
        load(path, no_header=no_header)
    assert_error_at(excinfo, path, 137 if no_header else 138)


@pytest.mark.parametrize("binary", [None, False])
@pytest.mark.parametrize("dim", [2, 4])
def test_rejects_rows_disagreeing_with_header_dim(tmp_path, dim, binary):
    """A text file (binary=None detects it: the first row is valid text) whose rows have 3
    values under a header announcing 2 or 4: a text error on line 2, not a binary one."""
    rows = [f"w{i} 1 2 3" for i in range(4)]
    path = text_file(tmp_path / "dim.txt", rows, header=(4, dim))
    with pytest.raises(ValueError) as excinfo:
        load(path, binary=binary)
    assert_error_at(excinfo, path, 2)


@pytest.mark.parametrize("first_row", ["w 1 x 3", "w 1 2", "w 1 2 3 4", "w", "w 1 2 0x3"])
def test_errors_in_the_first_row_of_a_text_file(tmp_path, first_row):
    """Detection looks at the first row: valid text means text, so the error is a text
    error naming line 2 (not a byte offset of a binary reading)."""
    rows = [first_row] + [f"w{i} 1 2 3" for i in range(5)]
    path = text_file(tmp_path / "first.txt", rows, header=(6, 3))
    for binary in (None, False):
        with pytest.raises(ValueError) as excinfo:
            load(path, binary=binary)
        assert_error_at(excinfo, path, 2)


@pytest.mark.parametrize("count", [0, 3, 5, 1000])
def test_rejects_header_count_mismatch(tmp_path, count):
    rows = [f"w{i} 1 2" for i in range(4)]
    path = text_file(tmp_path / "count.txt", rows, header=(count, 2))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(path)


def test_rejects_header_count_short_by_a_whole_read_block(tmp_path):
    """The header announces exactly the rows of the first read block(s): the rows after
    them must still be noticed."""
    n = _rows_spanning(2.5)
    body = b"\n".join(b"w%d %s" % (i, _ROW_VALS) for i in range(n)) + b"\n"
    counts, start = [], 0
    for _ in range(2):  # the reader's blocks: whole lines of at most READ_BLOCK bytes
        start = body.rindex(b"\n", start, start + READ_BLOCK) + 1
        counts.append(body[:start].count(b"\n"))
    for count in counts + [n - 1]:
        path = write_bytes(tmp_path / "more.txt", b"%d %d\n" % (count, BIG_DIM) + body)
        with pytest.raises(ValueError, match=re.escape(str(path))):
            load(path)


@pytest.mark.parametrize("header", ["1000000000000 3", "3 1000000000000"])
@pytest.mark.parametrize("binary", [None, True])
def test_rejects_impossible_header_sizes(tmp_path, header, binary):
    """A header announcing more than the file can hold is a ValueError naming the file, not
    an attempt to allocate terabytes (MemoryError)."""
    path = write_bytes(tmp_path / "huge_header.txt", f"{header}\na 1 2 3\n".encode())
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(path, binary=binary)
    if header.endswith(" 3") and binary is None:
        assert load(path, limit=1).words == ["a"]  # limit: the count need not match


@pytest.mark.parametrize("header", ["3", "x 4", "3 4 5", "3 x"])
def test_rejects_bad_header(tmp_path, header):
    path = write_bytes(tmp_path / "h.txt", f"{header}\na 1 2 3 4\n".encode())
    with pytest.raises(ValueError) as excinfo:
        load(path, binary=False)
    assert_error_at(excinfo, path, 1)


@pytest.mark.parametrize("content", [b"", b"2 3\n", b"2 3", b"\n"])
@pytest.mark.parametrize("binary", [None, False])
def test_rejects_empty_and_header_only(tmp_path, content, binary):
    path = write_bytes(tmp_path / "empty.txt", content)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(path, binary=binary)


def test_rejects_empty_glove_file(tmp_path):
    path = write_bytes(tmp_path / "empty.txt", b"")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(path, no_header=True)


@pytest.mark.parametrize("line", ["b", "b ", "b\t", "b  \t "])
def test_rejects_word_without_values(tmp_path, line):
    path = text_file(tmp_path / "nv.txt", ["a 1 2", line, "c 3 4"], header=(3, 2))
    with pytest.raises(ValueError) as excinfo:
        load(path)
    assert_error_at(excinfo, path, 3)
    glove = text_file(tmp_path / "nv_glove.txt", [line, "c 3 4"])
    with pytest.raises(ValueError) as excinfo:
        load(glove, no_header=True)
    assert_error_at(excinfo, glove, 1)


def test_invalid_utf8_in_word(tmp_path):
    body = b"3 2\na 1 2\ncaf\xe9 3 4\nd 5 6\n"
    path = write_bytes(tmp_path / "latin1.txt", body)
    with pytest.raises(ValueError) as excinfo:
        load(path)
    assert_error_at(excinfo, path, 3)
    v = load(path, errors="replace")
    assert v.words == ["a", "caf\ufffd", "d"]
    assert_bitwise_equal(v.weight, np.array([[1, 2], [3, 4], [5, 6]], np.float32))
    v = load(path, encoding="latin-1")
    assert v.words == ["a", "café", "d"]


def test_detection_respects_encoding(tmp_path):
    """A latin-1 text file whose first word is not ASCII: a well-formed text first row (a
    word and dim numbers) is text, whatever bytes the word has."""
    body = "2 2\ncafé 1 2\nnaïve 3 4\n".encode("latin-1")
    path = write_bytes(tmp_path / "latin1.txt", body)
    v = load(path, encoding="latin-1")  # binary=None
    assert v.words == ["café", "naïve"]
    assert_bitwise_equal(v.weight, np.array([[1, 2], [3, 4]], np.float32))
    v = load(path, errors="replace")
    assert v.words == ["caf\ufffd", "na\ufffdve"]


def test_duplicates_error_names_word_and_both_lines(tmp_path):
    rows = [f"w{i} {i} 0" for i in range(60)]
    rows[52] = "w17 99 99"  # first on line 19 (header is line 1), again on line 54
    path = text_file(tmp_path / "dup.txt", rows, header=(60, 2))
    with pytest.raises(ValueError) as excinfo:
        load(path)
    msg = str(excinfo.value)
    assert "w17" in msg
    rest = msg.replace(str(path), "")
    assert re.search(r"(?<!\d)19(?!\d)", rest) and re.search(r"(?<!\d)54(?!\d)", rest), msg
    with pytest.raises(ValueError):
        load(path, duplicates="error")


def test_duplicates_first_keeps_first_and_warns_once(tmp_path):
    rows = ["a 1 1", "b 2 2", "a 3 3", "c 4 4", "b 5 5", "a 6 6", "d 7 7"]
    path = text_file(tmp_path / "dup.txt", rows, header=(7, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v = load(path, duplicates="first")
    user = [w for w in caught if issubclass(w.category, UserWarning)]
    assert len(user) == 1, [str(w.message) for w in caught]
    assert re.search(r"(?<!\d)3(?!\d)", str(user[0].message)), str(user[0].message)
    assert v.words == ["a", "b", "c", "d"]
    assert_bitwise_equal(v.weight, np.array([[1, 1], [2, 2], [4, 4], [7, 7]], np.float32))
    # binary files too
    bpath = binary_file(tmp_path / "dup.bin", [r.split()[0] for r in rows],
                        np.array([[float(x) for x in r.split()[1:]] for r in rows]))
    with pytest.warns(UserWarning):
        vb = load(bpath, binary=True, duplicates="first")
    assert vb.words == ["a", "b", "c", "d"]
    assert_bitwise_equal(vb.weight, v.weight)
    with pytest.raises(ValueError):
        load(bpath, binary=True)


def test_duplicates_bad_value(tmp_path):
    path = text_file(tmp_path / "v.txt", ["a 1"], header=(1, 1))
    with pytest.raises(ValueError):
        load(path, duplicates="last-wins-maybe")


# ------------------------------------------------------------------------------------------
# several threads: the earliest bad line wins; results identical to one thread
# ------------------------------------------------------------------------------------------

BIG_ROWS, BIG_DIM = 80_000, 12


def _big_rows():
    vals = " ".join(f"{(j * 0.37) - 2:.6f}" for j in range(BIG_DIM))
    return [f"w{i} {vals}" for i in range(BIG_ROWS)]


# (row index (0-based), kind) of each bad row; the expected line is the earliest's
ERROR_LAYOUTS = {
    "token-early-then-late": [(20_000, "token"), (45_000, "ragged"), (79_000, "token")],
    "late-chunk-only": [(70_000, "token"), (75_000, "ragged")],
    "ragged-first": [(41_000, "ragged"), (41_001, "token"), (60_000, "novalue")],
    "novalue-first": [(39_999, "novalue"), (40_000, "token")],
    "utf8-first": [(30_001, "utf8"), (50_000, "token"), (79_999, "ragged")],
    "duplicate-before-later-token": [(65_000, "dup"), (78_000, "token")],
    "token-before-later-duplicate": [(55_000, "token"), (65_000, "dup")],
    "last-row": [(79_999, "token")],
}


@pytest.mark.parametrize("layout", sorted(ERROR_LAYOUTS))
def test_earliest_error_wins_with_threads(tmp_path, layout):
    rows = [r.encode() for r in _big_rows()]
    bad = ERROR_LAYOUTS[layout]
    for row, kind in bad:
        rows[row] = {
            "token": b"bad 1 2 x3 " + b"4 " * (BIG_DIM - 3),
            "ragged": b"rag " + b"1 " * (BIG_DIM + 1),
            "novalue": b"lonely",
            "utf8": b"caf\xe9 " + b"1 " * BIG_DIM,
            "dup": b"w1234 " + b"1 " * BIG_DIM,
        }[kind]
    path = write_bytes(tmp_path / "big.txt",
                       f"{BIG_ROWS} {BIG_DIM}\n".encode() + b"\n".join(rows) + b"\n")
    first_line = min(row for row, _ in bad) + 2  # 1-based, after the header
    messages = []
    for n_threads in (2, 1):
        with pytest.raises(ValueError) as excinfo:
            load(path, n_threads=n_threads)
        assert_error_at(excinfo, path, first_line)
        messages.append(str(excinfo.value))
    assert messages[0] == messages[1]


# a file of 2.5 read blocks: line numbers must carry across blocks, the earliest error wins
HUGE_ROWS = _rows_spanning(2.5)

HUGE_LAYOUTS = {  # (fraction of the rows, kind)
    "third-block-only": [(0.97, "token")],
    "utf8-first-block": [(0.001, "utf8"), (0.97, "token")],
    "ragged-first-block": [(0.12, "ragged"), (0.97, "novalue")],
    "duplicate-later-block": [(0.88, "dup"), (0.99, "token")],
}


@pytest.mark.parametrize("layout", sorted(HUGE_LAYOUTS))
def test_earliest_error_wins_across_read_blocks(tmp_path, layout):
    rows = [b"w%d %s" % (i, _ROW_VALS) for i in range(HUGE_ROWS)]
    bad = [(int(f * HUGE_ROWS), kind) for f, kind in HUGE_LAYOUTS[layout]]
    for row, kind in bad:
        rows[row] = {
            "token": b"bad 1 2 x3 " + b"4 " * (BIG_DIM - 3),
            "ragged": b"rag " + b"1 " * (BIG_DIM + 1),
            "novalue": b"lonely",
            "utf8": b"caf\xe9 " + b"1 " * BIG_DIM,
            "dup": b"w5 " + b"1 " * BIG_DIM,
        }[kind]
    data = f"{HUGE_ROWS} {BIG_DIM}\n".encode() + b"\n".join(rows) + b"\n"
    assert len(data) > 2 * READ_BLOCK
    path = write_bytes(tmp_path / "huge.txt", data)
    with pytest.raises(ValueError) as excinfo:
        load(path, n_threads=2)
    assert_error_at(excinfo, path, min(row for row, _ in bad) + 2)


def _mixed_file(path, rng, rows=30_000, dim=10, binary=False):
    """Unicode words, tabs, runs of spaces, CRLF and LF, trailing spaces, random tokens."""
    toks = random_decimal_tokens(rng, rows * dim).reshape(rows, dim)
    stems = ["é", "日本", "😀", "naïve", "w"]
    words = [f"{stems[i % len(stems)]}{i}" for i in range(rows)]
    if binary:
        return binary_file(path, words, expected_f32(toks)), words
    seps = [" ", "\t", "  ", " \t "]
    eols = ["\n", "\r\n", " \n", "\t\r\n"]
    sep_i = rng.integers(0, len(seps), size=rows).tolist()
    eol_i = rng.integers(0, len(eols), size=rows).tolist()
    lines = [w + seps[s] + seps[s].join(r) + eols[e]
             for w, r, s, e in zip(words, toks.tolist(), sep_i, eol_i)]
    write_bytes(path, (f"{rows} {dim}\n" + "".join(lines)).encode())
    return path, words, toks


def test_threads_give_identical_results_text(tmp_path, rng):
    path, words, toks = _mixed_file(tmp_path / "mixed.txt", rng)
    one = load(path, n_threads=1)
    two = load(path, n_threads=2)
    assert one.words == two.words == words
    assert_bitwise_equal(one.weight, expected_f32(toks))
    assert_bitwise_equal(two.weight, one.weight)
    three = load(path, n_threads=3, dtype=np.float64)  # more threads than cores
    assert three.words == words
    assert_bitwise_equal(three.weight, expected_f64(toks))
    default = load(path)
    assert default.words == words
    assert_bitwise_equal(default.weight, one.weight)


def test_threads_give_identical_results_binary(tmp_path, rng):
    path, words = _mixed_file(tmp_path / "mixed.bin", rng, binary=True)
    one = load(path, binary=True, n_threads=1)
    two = load(path, binary=True, n_threads=2)
    assert one.words == two.words == words
    assert_bitwise_equal(two.weight, one.weight)


def test_progress_false_is_silent(tmp_path, rng, capfd):
    path, words, _ = _mixed_file(tmp_path / "p.txt", rng, rows=20_000, dim=5)
    capfd.readouterr()
    v = load(path, progress=False)
    out, err = capfd.readouterr()
    assert len(v) == len(words)
    assert out == "" and err == ""
    shown = load(path, progress=True)  # a progress bar, the same result
    assert shown.words == v.words
    assert_bitwise_equal(shown.weight, v.weight)


# ------------------------------------------------------------------------------------------
# limit
# ------------------------------------------------------------------------------------------

def test_limit_text(tmp_path):
    rows = [f"w{i} {i} {-i}" for i in range(50)]
    path = text_file(tmp_path / "v.txt", rows, header=(100, 2))  # header disagrees
    for n in (1, 10, 50):
        v = load(path, limit=n)
        assert v.words == [f"w{i}" for i in range(n)]
        assert_bitwise_equal(v.weight, np.array([[i, -i] for i in range(n)], np.float32))
    glove = text_file(tmp_path / "g.txt", rows)
    assert load(glove, no_header=True, limit=7).words == [f"w{i}" for i in range(7)]
    with pytest.raises(ValueError):
        load(path)  # without limit the header must agree
    assert load(path, limit=np.int64(3)).words == ["w0", "w1", "w2"]  # NumPy integers too
    with pytest.raises(ValueError, match="limit must be >= 0, got -1"):
        load(path, limit=-1)
    for bad in (1.5, True, "3"):
        with pytest.raises(TypeError, match="limit must be an int or None"):
            load(path, limit=bad)


def test_limit_ignores_what_follows(tmp_path):
    rows = [f"w{i} {i} {-i}" for i in range(20)]
    rows[15] = "bad 1 x"
    rows[17] = "w3 1 2"  # a duplicate, after the limit
    rows.append("ragged 1 2 3")
    path = text_file(tmp_path / "v.txt", rows, header=(21, 2))
    assert load(path, limit=10, n_threads=2).words == [f"w{i}" for i in range(10)]
    with pytest.raises(ValueError):
        load(path)


def test_limit_with_threads(tmp_path, rng):
    path, words, toks = _mixed_file(tmp_path / "m.txt", rng, rows=20_000, dim=4)
    for n in (1, 12_345, 20_000):
        one = load(path, limit=n, n_threads=1)
        two = load(path, limit=n, n_threads=2)
        assert one.words == two.words == words[:n]
        assert_bitwise_equal(two.weight, expected_f32(toks[:n]))


def test_limit_binary(tmp_path, rng):
    w = rng.standard_normal((10, 4)).astype(np.float32)
    words = [f"w{i}" for i in range(10)]
    path = binary_file(tmp_path / "v.bin", words[:6], w[:6], header=(10, 4))  # 6 of 10 rows
    v = load(path, binary=True, limit=5)
    assert v.words == words[:5]
    assert_bitwise_equal(v.weight, w[:5])
    assert load(path, limit=6).words == words[:6]  # detected as binary


# ------------------------------------------------------------------------------------------
# binary format
# ------------------------------------------------------------------------------------------

def _awkward_table(rng, n=40, dim=8):
    """Random floats plus values whose bytes are ' ', '\\n', '\\t', '\\r', 0 and specials."""
    w = rng.standard_normal((n, dim)).astype(np.float32)
    awkward = np.array([0x0A0A0A0A, 0x20202020, 0x0D0A0D0A, 0x09200A0D, 0x0000000A,
                        0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x00000001,
                        0x7F7FFFFF, 0x0A202020], dtype=np.uint32).view(np.float32)
    w.ravel()[: awkward.size] = awkward
    w[-1, :] = awkward[1]
    return w


@pytest.mark.parametrize("detect", [True, False])
def test_binary_roundtrip_bitwise(tmp_path, rng, detect):
    w = _awkward_table(rng)
    words = [f"w{i}" for i in range(len(w))]
    words[:4] = ["é", "日本", "😀", "x"]
    path = tmp_path / "v.bin"
    fio.save_word2vec(path, Vectors(words, w), binary=True)
    v = load(path, binary=None if detect else True)
    assert v.words == words
    assert_bitwise_equal(v.weight, w)


def test_binary_layout_exact(tmp_path):
    w = np.array([[1.5, -2.0], [0.0, 3.25]], np.float32)
    path = tmp_path / "v.bin"
    fio.save_word2vec(path, Vectors(["a", "日"], w), binary=True)
    data = path.read_bytes()
    head = b"2 2\n"
    row0 = b"a " + w[0].astype("<f4").tobytes()
    row1 = "日 ".encode() + w[1].astype("<f4").tobytes()
    assert data in (head + row0 + b"\n" + row1 + b"\n", head + row0 + row1)


# -- the text writer formats float32 in C: exactly the characters of "%.9g"

def ref_format_word2vec_text(words, table):
    """The word2vec text format of a float32 table, formatted by Python's "%.9g"."""
    fmt = " ".join(["%.9g"] * table.shape[1])
    lines = [f"{len(words)} {table.shape[1]}\n"]
    lines += [word + " " + fmt % tuple(row) + "\n" for word, row in zip(words, table.tolist())]
    return "".join(lines).encode("utf-8")


def _float32_ties():
    """float32 values whose exact decimal value is a tie at the ninth significant digit.

    m / 2**t for odd m has the decimal m * 5**t / 10**t, whose significant digits are those of
    m * 5**t, the last a 5: a tie when it has ten digits (t = 3 .. 14 for m < 2**24)."""
    ties = []
    for t in range(3, 15):
        lo, hi = -(-10**9 // 5**t), min((10**10 - 1) // 5**t, (1 << 24) - 1)
        odd = np.arange(lo | 1, hi + 1, 2, dtype=np.int64)
        odd = odd[np.linspace(0, odd.size - 1, min(odd.size, 600)).astype(np.int64)]
        assert all(len(str(int(m) * 5**t)) == 10 for m in odd)
        ties.append(odd / 2.0**t)
    return np.concatenate(ties).astype(np.float32)


def test_format_f32_is_printf_9g(rng):
    from fastembed._ext import textio

    bits = rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-23, 9.99e-24, 1e-45, 3.4028235e38,
               0.0001, 9.99999975e-05, 999999999.0, 999999936.0, 1e9, 123456789.0]
    powers = np.float32(10.0) ** np.arange(-45, 39, dtype=np.float32)
    near = np.concatenate([powers, np.nextafter(powers, np.float32(0)),
                           np.nextafter(powers, np.float32(np.inf))])
    ties = _float32_ties()
    assert ties.size > 10
    values = np.concatenate([bits.view(np.float32), np.array(special, np.float32), near, ties,
                             rng.standard_normal(20_000).astype(np.float32) * 0.1])
    values = np.concatenate([values, -values])
    for x in values.tolist():
        assert textio.format_f32(x) == "%.9g" % x, repr(x)
    # the snprintf path (builds without 128-bit integers, and values below 1e-23)
    for x in values[np.isfinite(values) & (values != 0)][::7].tolist():
        assert textio.format_f32(x, printf=True) == "%.9g" % x, repr(x)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n, dim", [(0, 4), (5, 0), (1, 1), (1000, 33)])
def test_save_word2vec_text_is_the_9g_text(n, dim, n_threads, tmp_path, monkeypatch, rng,
                                           restore_num_threads):
    fastembed.set_num_threads(n_threads)
    monkeypatch.setattr(fio, "_TEXT_WRITE_ROWS", 7)   # many blocks, and a last partial one
    words = [f"w{i}" + "日ü"[: i % 3] for i in range(n)]
    table = (rng.standard_normal((n, dim)) * rng.choice([1e-9, 0.1, 3.0, 1e12], (n, 1)))
    table = table.astype(np.float32)
    if n and dim:
        table[0, 0] = np.nan
        table[-1, -1] = -0.0
        table[n // 2, :3] = [np.inf, -np.inf, -1.4e-45][:dim]   # and a subnormal
    path = tmp_path / "v.txt"
    fio.save_word2vec(path, table, words)
    assert path.read_bytes() == ref_format_word2vec_text(words, table)
    if dim == 0:
        return   # a header of dim 0, which load_word2vec refuses
    again = fio.load_word2vec(path)
    assert again.words == words
    assert_bitwise_equal(again.weight, table)


def test_save_word2vec_array_and_words(tmp_path, rng):
    w = rng.standard_normal((5, 3)).astype(np.float32)
    words = list("abcde")
    for binary in (False, True):
        path = tmp_path / f"v{binary}"
        fio.save_word2vec(path, w, words, binary=binary)
        v = load(path, binary=binary)
        assert v.words == words
        assert_bitwise_equal(v.weight, w)


@pytest.mark.parametrize("newline", [True, False])
def test_binary_rows_with_and_without_newline(tmp_path, rng, newline):
    w = _awkward_table(rng, n=12, dim=5)
    words = [f"w{i}" for i in range(12)]
    path = binary_file(tmp_path / "v.bin", words, w, newline=newline)
    for binary in (True, None):
        v = load(path, binary=binary)
        assert v.words == words
        assert_bitwise_equal(v.weight, w)


def test_binary_to_float64(tmp_path, rng):
    w = _awkward_table(rng, n=6, dim=3)
    path = binary_file(tmp_path / "v.bin", [f"w{i}" for i in range(6)], w)
    v = load(path, binary=True, dtype=np.float64)
    assert_bitwise_equal(v.weight, w.astype(np.float64))


def test_binary_autodetect(tmp_path, rng):
    w = rng.standard_normal((4, 3)).astype(np.float32)
    words = ["日本", "é", "😀", "x"]
    tpath, bpath = tmp_path / "v.txt", tmp_path / "v.bin"
    fio.save_word2vec(tpath, Vectors(words, w))
    fio.save_word2vec(bpath, Vectors(words, w), binary=True)
    for path in (tpath, bpath):
        v = load(path)  # binary=None
        assert v.words == words
        assert_bitwise_equal(v.weight, w)
    with pytest.raises(ValueError):
        load(bpath, binary=False)


def test_binary_with_no_header_is_rejected(tmp_path):
    path = text_file(tmp_path / "g.txt", ["a 1 2"])
    with pytest.raises(ValueError):
        load(path, no_header=True, binary=True)
    assert load(path, no_header=True, binary=False).words == ["a"]
    assert load(path, no_header=True, binary=None).words == ["a"]


def test_binary_larger_than_a_read_block(tmp_path, rng):
    dim = 64
    n = int(1.5 * READ_BLOCK / (4 * dim + 8))  # rows straddle the reader's blocks
    w = rng.standard_normal((n, dim), dtype=np.float32)
    words = [f"w{i}" for i in range(n)]
    path = tmp_path / "big.bin"
    fio.save_word2vec(path, Vectors(words, w), binary=True)
    v = load(path)
    assert v.words == words
    assert_bitwise_equal(v.weight, w)
    data = path.read_bytes()
    assert len(data) > READ_BLOCK
    tag = b"w%d " % (n - 100)
    start = data.index(b"\n" + tag) + 1
    cut = start + len(tag) + 100
    short = write_bytes(tmp_path / "short.bin", data[:cut])
    with pytest.raises(ValueError) as excinfo:
        load(short, binary=True)
    msg = str(excinfo.value)
    assert str(short) in msg and any(start <= x <= cut for x in _offsets_in(msg, short)), msg


def _long_line(dim):
    vals = np.full(dim, 1.25, np.float32)
    vals[0], vals[-1] = -3.0, 7.5
    return b"long -3 " + b"1.25 " * (dim - 2) + b"7.5\n", vals


@pytest.mark.parametrize("no_header", [False, True])
def test_first_row_longer_than_64k(tmp_path, no_header):
    """A 100 kB first row (dim 20,000): the header, the dim and the format are found."""
    line, vals = _long_line(20_000)
    head = b"" if no_header else b"2 20000\n"
    path = write_bytes(tmp_path / "wide.txt", head + line + b"short " + b"0 " * 20_000)
    v = load(path, no_header=no_header)  # binary=None: detection must say text
    assert v.words == ["long", "short"]
    assert_bitwise_equal(v.weight[0], vals)
    assert_bitwise_equal(v.weight[1], np.zeros(20_000, np.float32))


@pytest.mark.parametrize("no_header", [False, True])
def test_text_line_longer_than_a_read_block(tmp_path, no_header):
    dim = READ_BLOCK // 5 + 100_000  # one line longer than the reader's block
    line, vals = _long_line(dim)
    head = b"" if no_header else b"2 %d\n" % dim
    path = write_bytes(tmp_path / "long.txt", head + line + b"short " + b"0 " * dim)
    v = load(path, no_header=no_header, binary=False)
    assert v.words == ["long", "short"]
    assert_bitwise_equal(v.weight[0], vals)


def test_binary_rows_beyond_the_header_count(tmp_path, rng):
    """As in text files, a header announcing fewer rows than the file holds is an error
    (limit= reads a prefix on purpose)."""
    w = rng.standard_normal((5, 2)).astype(np.float32)
    words = [f"w{i}" for i in range(5)]
    path = binary_file(tmp_path / "more.bin", words, w, header=(3, 2))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(path, binary=True)
    assert load(path, binary=True, limit=3).words == words[:3]


def _offsets_in(msg, path):
    return [int(x) for x in re.findall(r"\d+", msg.replace(str(path), ""))]


@pytest.mark.parametrize("where", ["vector", "word", "before-space", "after-header"])
def test_truncated_binary(tmp_path, rng, where):
    w = rng.standard_normal((5, 4)).astype(np.float32)
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    full = binary_file(tmp_path / "full.bin", words, w).read_bytes()
    row3 = full.index(b"\ndelta ") + 1  # offset where row 3 begins
    cut = {"vector": row3 + len(b"delta ") + 7,
           "word": row3 + 3,
           "before-space": row3 + len(b"delta"),
           "after-header": full.index(b"\n") + 1 + len(b"alp")}[where]
    path = write_bytes(tmp_path / "cut.bin", full[:cut])
    with pytest.raises(ValueError) as excinfo:
        load(path, binary=True)
    msg = str(excinfo.value)
    assert str(path) in msg, msg
    assert re.search(r"byte|offset", msg, re.I), msg
    lo = row3 if where != "after-header" else full.index(b"\n")
    assert any(lo <= x <= cut for x in _offsets_in(msg, path)), msg


def test_binary_invalid_utf8_word(tmp_path, rng):
    w = rng.standard_normal((3, 2)).astype(np.float32)
    path = binary_file(tmp_path / "v.bin", [b"a", b"caf\xe9", b"d"], w)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load(path, binary=True)
    v = load(path, binary=True, errors="replace")
    assert v.words == ["a", "caf\ufffd", "d"]
    assert_bitwise_equal(v.weight, w)


# ------------------------------------------------------------------------------------------
# the binary reader's two threads: a worker reads blocks of fio._BINARY_BLOCK bytes, finds
# the rows and copies the vectors; the calling thread makes the words' Python objects
# ------------------------------------------------------------------------------------------

def _pipeline_words(rng, n):
    """n distinct words of every kind the word decoder tells apart: ASCII (copied straight
    into a str), one character (CPython's cached str), non-ASCII UTF-8 (the codec), and
    words longer than the small blocks used below."""
    kinds = ["w{}", "{}", "é{}", "日本{}", "😀{}", "x" * 300 + "{}", "naïve{}"]
    words = [kinds[k].format(i) for i, k in enumerate(rng.integers(0, len(kinds), n))]
    words[:6] = ["a", "é", "b", "日", "Z", "😀"]  # single characters
    return words


@pytest.mark.parametrize("block", [1, 7, 64, 331, 4096])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("newline", [True, False])
def test_binary_blocks_of_any_size(tmp_path, rng, monkeypatch, block, n_threads, newline):
    """Rows and words cut anywhere by the block boundaries (down to 1 byte, which makes
    the buffer grow for every long row) read back exactly."""
    words = _pipeline_words(rng, 400)
    w = _awkward_table(rng, n=len(words), dim=5)
    path = binary_file(tmp_path / "v.bin", words, w, newline=newline)
    monkeypatch.setattr(fio, "_BINARY_BLOCK", block)
    for dtype in (np.float32, np.float64):
        v = load(path, binary=True, n_threads=n_threads, dtype=dtype)
        assert v.words == words
        assert v.index == {word: i for i, word in enumerate(words)}
        assert_bitwise_equal(v.weight, w.astype(dtype))


@pytest.mark.parametrize("block", [97, 1 << 12, 1 << 20])
def test_binary_threads_bitwise_equal(tmp_path, rng, monkeypatch, block):
    words = _pipeline_words(rng, 20_000)
    w = _awkward_table(rng, n=len(words), dim=12)
    path = binary_file(tmp_path / "v.bin", words, w)
    monkeypatch.setattr(fio, "_BINARY_BLOCK", block)
    one = load(path, binary=True, n_threads=1)
    two = load(path, binary=True, n_threads=2)
    assert one.words == two.words == words
    assert one.index == two.index
    assert_bitwise_equal(one.weight, w)
    assert_bitwise_equal(two.weight, w)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_binary_limit_across_blocks(tmp_path, rng, monkeypatch, n_threads):
    words = _pipeline_words(rng, 300)
    w = _awkward_table(rng, n=len(words), dim=3)
    data = binary_file(tmp_path / "v.bin", words, w).read_bytes()
    # after the rows kept: a bad word, a duplicate and a truncated row, all ignored
    path = write_bytes(tmp_path / "tail.bin", data + b"\xff\xfe " + bytes(12) + b"\n"
                       + words[0].encode() + b" " + bytes(12) + b"\nab ")
    monkeypatch.setattr(fio, "_BINARY_BLOCK", 256)
    for n in (0, 1, 5, 123, 300):
        v = load(path, binary=True, limit=n, n_threads=n_threads)
        assert v.words == words[:n]
        assert_bitwise_equal(v.weight, w[:n])
    with pytest.raises(ValueError, match="more"):  # without limit: more than announced
        load(path, binary=True, n_threads=n_threads)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_binary_non_ascii_compatible_and_other_encodings(tmp_path, rng, n_threads):
    """The ASCII shortcut only for codecs where ASCII bytes are those characters: under
    cp037 (EBCDIC) b'AB' is not 'AB'."""
    raw = [b"AB", b"a", b"caf\xe9", b"\xc1\xc2\xc3", b"plain", b"x"]
    w = rng.standard_normal((len(raw), 2)).astype(np.float32)
    path = binary_file(tmp_path / "v.bin", raw, w)
    for encoding in ("latin-1", "cp037", "ISO-8859-1", "cp1252"):
        v = load(path, binary=True, encoding=encoding, n_threads=n_threads)
        assert v.words == [b.decode(encoding) for b in raw], encoding
        assert_bitwise_equal(v.weight, w)
    with pytest.raises(ValueError, match="ascii"):
        load(path, binary=True, encoding="ascii", n_threads=n_threads)
    v = load(path, binary=True, encoding="ascii", errors="replace", n_threads=n_threads)
    assert v.words == [b.decode("ascii", "replace") for b in raw]
    for errors in ("replace", "ignore", "surrogateescape", "backslashreplace"):
        v = load(path, binary=True, errors=errors, n_threads=n_threads)
        assert v.words == [b.decode("utf-8", errors) for b in raw], errors
    with pytest.raises(LookupError):
        load(path, binary=True, encoding="no-such-codec", n_threads=n_threads)


def test_text_words_under_other_encodings(tmp_path):
    """Text files share the word decoder: ASCII words under latin-1 and cp1252."""
    body = "3 1\nplain 1\ncafé 2\nx 3\n"
    for encoding in ("latin-1", "cp1252"):
        path = write_bytes(tmp_path / "t.txt", body.encode(encoding))
        assert load(path, encoding=encoding).words == ["plain", "café", "x"]


def _error_of(path, **kw):
    with pytest.raises(ValueError) as excinfo:
        load(path, binary=True, **kw)
    return str(excinfo.value)


@pytest.mark.parametrize("block", [50, 1 << 20])
def test_binary_earliest_error_wins(tmp_path, rng, monkeypatch, block):
    """Whatever the threads and blocks: a bad word before a duplicate before a truncated end
    is reported as the bad word, and so on; the message is the same for 1 and 2 threads."""
    monkeypatch.setattr(fio, "_BINARY_BLOCK", block)
    words = [f"w{i}".encode() for i in range(40)]
    w = rng.standard_normal((40, 3)).astype(np.float32)

    def write(name, words_, cut=0):
        data = binary_file(tmp_path / name, words_, w).read_bytes()
        return write_bytes(tmp_path / name, data[:len(data) - cut])

    bad_then_dup = write("a.bin", words[:10] + [b"\xff"] + words[11:30] + [b"w3"]
                         + words[31:], cut=5)
    dup_then_bad = write("b.bin", words[:10] + [b"w3"] + words[11:30] + [b"\xff"]
                         + words[31:], cut=5)
    truncated = write("c.bin", words, cut=5)
    data = bad_then_dup.read_bytes()
    bad_at = data.index(b"\n\xff ") + 1
    for n_threads in (1, 2):
        msg = _error_of(bad_then_dup, n_threads=n_threads)
        assert "not valid utf-8" in msg and f"byte {bad_at}:" in msg, msg
        msg = _error_of(dup_then_bad, n_threads=n_threads)
        assert "'w3' appears twice (rows 4 and 11)" in msg, msg
        msg = _error_of(truncated, n_threads=n_threads)
        assert "ends inside vector 40 of 40" in msg, msg
    # duplicates="first" passes the duplicate, then meets the bad word
    msg = _error_of(dup_then_bad, duplicates="first")
    assert "not valid utf-8" in msg, msg


@pytest.mark.parametrize("n_threads", [1, 2])
def test_binary_vector_without_a_word_offset(tmp_path, rng, monkeypatch, n_threads):
    w = rng.standard_normal((30, 2)).astype(np.float32)
    data = binary_file(tmp_path / "v.bin", [f"w{i}" for i in range(30)], w).read_bytes()
    start = data.index(b"\nw17 ") + 1
    broken = data[:start] + data[start + 3:]  # row 17 now starts with its space
    path = write_bytes(tmp_path / "nw.bin", broken)
    for block in (16, 1 << 20):
        monkeypatch.setattr(fio, "_BINARY_BLOCK", block)
        msg = _error_of(path, n_threads=n_threads)
        assert f"byte {start}: a vector without a word" in msg, msg


_WORD_BYTES = [b"a", b"Z", b"x" * 40, b"\xc3\xa9", b"\xe6\x97\xa5", b"\xf0\x9f\x98\x80", b"-",
               b"\t", b"\x7f", b"q\r"]


@pytest.mark.parametrize("seed", range(6))
def test_binary_matches_a_plain_reader(tmp_path, monkeypatch, seed):
    """Random words (ASCII, multi-byte UTF-8, tabs, a carriage return inside), random
    vectors (any bit pattern, so any byte), rows with and without their newline, random
    block sizes and both thread counts: the same as the plain reader, bitwise."""
    rng = np.random.default_rng(seed)
    n, dim = int(rng.integers(1, 300)), int(rng.integers(1, 9))
    words = []
    while len(words) < n:
        parts = rng.choice(len(_WORD_BYTES), size=int(rng.integers(1, 4)))
        word = b"".join(_WORD_BYTES[k] for k in parts) + str(len(words)).encode()
        words.append(word)
    bits = rng.integers(0, 2**32, size=(n, dim), dtype=np.uint64).astype(np.uint32)
    table = bits.view(np.float32)
    newline = rng.random(n) < 0.7
    data = f"{n} {dim}\n".encode() + b"".join(
        w + b" " + row.astype("<f4").tobytes() + (b"\n" if nl else b"")
        for w, row, nl in zip(words, table, newline))
    path = write_bytes(tmp_path / "r.bin", data)
    ref_words, ref_table = ref_read_word2vec_binary(data)
    for block in (int(rng.integers(1, 64)), int(rng.integers(64, 4096)), 1 << 20):
        monkeypatch.setattr(fio, "_BINARY_BLOCK", block)
        for n_threads in (1, 2):
            v = load(path, binary=True, n_threads=n_threads)
            assert v.words == ref_words
            assert_bitwise_equal(v.weight, ref_table)


class _RecordingBar:
    def __init__(self, fail=False):
        self.total = 0
        self.closed = False
        self.fail = fail

    def update(self, n):
        if self.fail:
            raise RuntimeError("progress bar broke")
        self.total += n

    def close(self):
        self.closed = True


@pytest.mark.parametrize("n_threads", [1, 2])
def test_binary_progress_sees_every_byte(tmp_path, rng, monkeypatch, n_threads):
    words = [f"w{i}" for i in range(5000)]
    w = rng.standard_normal((5000, 8)).astype(np.float32)
    path = binary_file(tmp_path / "v.bin", words, w)
    body = os.path.getsize(path) - len(b"5000 8\n")
    bars = []
    monkeypatch.setattr(fio, "_progress_bar", lambda show, total, p: bars.append(
        _RecordingBar()) or bars[-1])
    monkeypatch.setattr(fio, "_BINARY_BLOCK", 4096)
    v = load(path, binary=True, n_threads=n_threads, progress=True)
    assert v.words == words
    assert bars[0].total == body and bars[0].closed


@pytest.mark.parametrize("n_threads", [1, 2])
def test_binary_exception_in_progress_propagates(tmp_path, rng, monkeypatch, n_threads):
    """An exception raised while the worker runs (here by the progress bar) stops both
    threads and reaches the caller: no hang, no half-built result."""
    path = binary_file(tmp_path / "v.bin", [f"w{i}" for i in range(3000)],
                       rng.standard_normal((3000, 4)).astype(np.float32))
    monkeypatch.setattr(fio, "_progress_bar", lambda show, total, p: _RecordingBar(True))
    monkeypatch.setattr(fio, "_BINARY_BLOCK", 1024)
    with pytest.raises(RuntimeError, match="progress bar broke"):
        load(path, binary=True, n_threads=n_threads, progress=True)
    assert not [t for t in threading.enumerate() if t.name == "fastembed-read-binary"]


# ------------------------------------------------------------------------------------------
# atomic writes
# ------------------------------------------------------------------------------------------

def _boom(*args, **kwargs):
    raise OSError("simulated failure in os.replace")


@pytest.mark.parametrize("binary", [False, True])
def test_save_word2vec_is_atomic(tmp_path, monkeypatch, rng, binary):
    path = tmp_path / "v.txt"
    fio.save_word2vec(path, Vectors(["old"], np.ones((1, 3), np.float32)), binary=binary)
    before = path.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    monkeypatch.setattr(os, "replace", _boom)
    new = Vectors([f"n{i}" for i in range(100)],
                  rng.standard_normal((100, 3)).astype(np.float32))
    with pytest.raises(OSError, match="simulated"):
        fio.save_word2vec(path, new, binary=binary)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing
    monkeypatch.undo()
    fio.save_word2vec(path, new, binary=binary)
    assert load(path).words == new.words


def test_save_npy_is_atomic(tmp_path, monkeypatch, rng):
    path = tmp_path / "v.npy"
    fio.save_npy(path, Vectors(["old"], np.ones((1, 3), np.float32)))
    vocab = tmp_path / "v.npy.vocab"
    before = path.read_bytes(), vocab.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    monkeypatch.setattr(os, "replace", _boom)
    new = Vectors([f"n{i}" for i in range(100)],
                  rng.standard_normal((100, 3)).astype(np.float32))
    with pytest.raises(OSError, match="simulated"):
        fio.save_npy(path, new)
    assert (path.read_bytes(), vocab.read_bytes()) == before
    assert sorted(os.listdir(tmp_path)) == listing


# ------------------------------------------------------------------------------------------
# text round trips
# ------------------------------------------------------------------------------------------

def _special_rows(dtype):
    finfo = np.finfo(dtype)
    return np.array([[0.0, -0.0, np.inf, -np.inf, np.nan, finfo.max, -finfo.max,
                      finfo.tiny, finfo.smallest_subnormal, -finfo.smallest_subnormal,
                      finfo.eps, 1 / 3]], dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_text_roundtrip_bitwise(tmp_path, rng, dtype):
    n, dim = 2000, 12
    if dtype == np.float32:
        bits = rng.integers(0, 0x7F800000, size=(n, dim), dtype=np.uint32)
    else:
        bits = rng.integers(0, 0x7FF0000000000000, size=(n, dim), dtype=np.uint64)
    w = bits.view(dtype).copy()  # every finite bit pattern, sub/normal, both signs
    w[rng.random((n, dim)) < 0.5] *= -1
    w[:500] = rng.standard_normal((500, dim)).astype(dtype)
    w[0] = _special_rows(dtype)
    words = [f"w{i}" for i in range(n)]
    path = tmp_path / "v.txt"
    fio.save_word2vec(path, Vectors(words, w))
    v = load(path, dtype=dtype)
    assert v.words == words
    assert_bitwise_equal(v.weight, w)


# ------------------------------------------------------------------------------------------
# .npy
# ------------------------------------------------------------------------------------------

UNICODE_WORDS = ["é", "café", "日本", "😀", "naïve", "Ω", "e\u0301", "👩‍👩‍👧"]


def test_npy_roundtrip(tmp_path, rng):
    w = rng.standard_normal((len(UNICODE_WORDS), 6)).astype(np.float32)
    path = tmp_path / "v.npy"
    fio.save_npy(path, Vectors(UNICODE_WORDS, w))
    assert path.exists() and (tmp_path / "v.npy.vocab").exists()
    assert_bitwise_equal(np.load(path), w)
    v = fio.load_npy(path)
    assert v.words == UNICODE_WORDS
    assert_bitwise_equal(np.asarray(v.weight), w)
    assert not isinstance(v.weight, np.memmap)
    w64 = w.astype(np.float64)
    fio.save_npy(path, Vectors(UNICODE_WORDS, w64))
    assert_bitwise_equal(np.asarray(fio.load_npy(path).weight), w64)


def test_npy_words_from_a_text_file_roundtrip(tmp_path):
    """Words a text file can hold (anything but spaces/tabs/newlines) survive .npy."""
    words = ["a\u00a0b", "c\u2028d", "e\x0cf", "g\x0bh", "i\x85j", "k\x1cl", "日本"]
    w = np.arange(2 * len(words), dtype=np.float32).reshape(-1, 2)
    path = tmp_path / "v.npy"
    fio.save_npy(path, Vectors(words, w))
    v = fio.load_npy(path)
    assert v.words == words


def test_npy_mmap_readonly(tmp_path, rng):
    w = rng.standard_normal((10, 4)).astype(np.float32)
    path = tmp_path / "v.npy"
    fio.save_npy(path, Vectors([f"w{i}" for i in range(10)], w))
    v = fio.load_npy(path, mmap_mode="r")
    assert isinstance(v.weight, np.memmap)
    assert not v.weight.flags.writeable
    with pytest.raises(ValueError):
        v.weight[0, 0] = 1.0
    assert_bitwise_equal(np.asarray(v.weight), w)
    assert v.most_similar("w3", topn=3)  # queries work on a memmap


@pytest.mark.parametrize("build", ["weight", "from_pretrained"])
def test_npy_mmap_rplus_training_persists(tmp_path, rng, build):
    V, D = 50, 8
    w = rng.standard_normal((V, D)).astype(np.float32)
    path = tmp_path / "v.npy"
    fio.save_npy(path, Vectors([f"w{i}" for i in range(V)], w))
    v = fio.load_npy(path, mmap_mode="r+")
    assert isinstance(v.weight, np.memmap) and v.weight.flags.writeable
    if build == "weight":
        layer = fastembed.Embedding(weight=v.weight)
    else:
        layer = fastembed.Embedding.from_pretrained(v.weight, freeze=False)
    assert layer.weight is v.weight
    opt = fastembed.optim.SGD(layer, lr=0.1)
    ids = np.array([3, 7, 7, 41], dtype=np.int64)
    for _ in range(3):
        out = layer(ids)
        layer.backward(np.ones_like(out))
        opt.step()
        opt.zero_grad()
    v.weight.flush()
    touched = np.unique(ids)
    after = np.load(path)
    assert_bitwise_equal(after, np.asarray(v.weight))
    untouched = np.setdiff1d(np.arange(V), touched)
    assert_bitwise_equal(after[untouched], w[untouched])
    assert (after[touched] != w[touched]).all()
    assert fio.load_npy(path).words == v.words


# ------------------------------------------------------------------------------------------
# Unicode words, Vectors API on loaded data
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("binary", [False, True])
def test_unicode_words_roundtrip(tmp_path, rng, binary):
    w = rng.standard_normal((len(UNICODE_WORDS), 5)).astype(np.float32)
    path = tmp_path / "u.vec"
    fio.save_word2vec(path, Vectors(UNICODE_WORDS, w), binary=binary)
    for b in (binary, None):
        v = load(path, binary=b)
        assert v.words == UNICODE_WORDS
        assert_bitwise_equal(v.weight, w)


def test_loaded_vectors_api(tmp_path):
    lines = ["king 1 0.1", "queen 0.9 0.2", "apple -0.1 1"]
    path = text_file(tmp_path / "v.txt", lines, header=(3, 2))
    v = load(path)
    assert isinstance(v, Vectors)
    assert len(v) == 3 and "queen" in v and "pear" not in v
    assert v.index == {"king": 0, "queen": 1, "apple": 2}
    assert_bitwise_equal(v["queen"], np.array([0.9, 0.2], np.float32))
    assert_bitwise_equal(v[["apple", "king"]], np.array([[-0.1, 1], [1, 0.1]], np.float32))
    assert [w for w, _ in v.most_similar("king", topn=2)] == ["queen", "apple"]
    assert round(v.similarity("king", "queen"), 4) == 0.9929
    assert v.weight.flags.c_contiguous and v.weight.flags.writeable


# ------------------------------------------------------------------------------------------
# gensim interop
# ------------------------------------------------------------------------------------------

@pytest.fixture
def gensim_kv():
    gensim = pytest.importorskip("gensim")
    return gensim.models.KeyedVectors


@pytest.fixture
def table(rng):
    n, dim = 300, 16
    w = rng.standard_normal((n, dim)).astype(np.float32)
    w[0, :3] = [-0.0, 1e-40, 3.4e38]
    words = [f"w{i}" for i in range(n)]
    words[1:1 + len(UNICODE_WORDS)] = UNICODE_WORDS
    return words, w


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_ours(tmp_path, gensim_kv, table, binary):
    words, w = table
    path = tmp_path / "ours.vec"
    fio.save_word2vec(path, Vectors(words, w), binary=binary)
    kv = gensim_kv.load_word2vec_format(str(path), binary=binary)
    assert list(kv.index_to_key) == words
    assert_bitwise_equal(kv.vectors, w)


@pytest.mark.parametrize("binary", [False, True])
def test_we_read_gensim(tmp_path, gensim_kv, table, binary):
    words, w = table
    kv = gensim_kv(w.shape[1])
    kv.add_vectors(words, w)
    path = tmp_path / "gensim.vec"
    kv.save_word2vec_format(str(path), binary=binary)
    v = load(path, binary=binary)
    assert v.words == words
    assert_bitwise_equal(v.weight, w)
    again = gensim_kv.load_word2vec_format(str(path), binary=binary)
    assert_bitwise_equal(v.weight, again.vectors)
    auto = load(path)  # detection
    assert auto.words == words
    assert_bitwise_equal(auto.weight, w)


def test_gensim_glove_no_header(tmp_path, gensim_kv, table):
    words, w = table
    ours = tmp_path / "ours.vec"
    fio.save_word2vec(ours, Vectors(words, w))
    glove = tmp_path / "glove.txt"
    glove.write_bytes(ours.read_bytes().split(b"\n", 1)[1])  # GloVe: no header
    kv = gensim_kv.load_word2vec_format(str(glove), binary=False, no_header=True)
    v = load(glove, no_header=True)
    assert list(kv.index_to_key) == v.words == words
    assert_bitwise_equal(kv.vectors, v.weight)
    assert_bitwise_equal(v.weight, w)
    # a hand-written GloVe file with GloVe's own number style
    lines = [f"{wd} " + " ".join(f"{x:.5f}" for x in row) for wd, row in zip(words, w.tolist())]
    hand = text_file(tmp_path / "hand.txt", lines)
    kv2 = gensim_kv.load_word2vec_format(str(hand), binary=False, no_header=True)
    v2 = load(hand, no_header=True)
    assert list(kv2.index_to_key) == v2.words == words
    assert_bitwise_equal(v2.weight, kv2.vectors)


# -- edge cases settled after review -------------------------------------------------------------

@pytest.mark.parametrize("body,no_header", [
    (b"2 2\na 1 2\nb 3 4\n\n", False),
    (b"2 2\na 1 2\nb 3 4\n \n\r\n", False),
    (b"a 1 2\nb 3 4\n\n\n", True),
    (b"a 1 2\nb 3 4\r\n \n", True),
])
def test_blank_lines_at_the_end_are_ignored(tmp_path, body, no_header):
    path = write_bytes(tmp_path / "blank.txt", body)
    v = load(path, no_header=no_header)
    assert v.words == ["a", "b"]
    assert_bitwise_equal(v.weight, np.array([[1, 2], [3, 4]], np.float32))


def test_blank_line_in_the_middle_is_an_error(tmp_path):
    path = write_bytes(tmp_path / "mid.txt", b"a 1 2\n\nb 3 4\n")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ":2: an empty line"):
        load(path, no_header=True)


@pytest.mark.parametrize("body", [b"0 3\n", b"0 3"])
def test_a_header_of_zero_vectors_is_an_empty_table(tmp_path, body):
    v = load(write_bytes(tmp_path / "empty.txt", body))
    assert len(v) == 0 and v.weight.shape == (0, 3)


def test_save_npy_keeps_the_pair_consistent_when_a_rename_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "t.npy")
    fio.save_npy(path, Vectors(["a", "b"], np.eye(2, dtype=np.float32)))
    real_replace = os.replace

    def failing_replace(src, dst):
        if dst == path:  # the table's rename, after the vocabulary's
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        fio.save_npy(path, Vectors(["x", "y"], 2 * np.eye(2, dtype=np.float32)))
    monkeypatch.setattr(os, "replace", real_replace)
    old = fio.load_npy(path)
    assert old.words == ["a", "b"]
    assert_bitwise_equal(old.weight, np.eye(2, dtype=np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.npy", "t.npy.vocab"]
