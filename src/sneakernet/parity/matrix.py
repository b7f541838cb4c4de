"""GF(2^8) and the parity code's matrix (docs/format.md 19.7.3), generated here, never pasted.

The field is GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D) and generator 2, the field of Linux
RAID-6, SnapRAID and ISA-L: addition is XOR, multiplication goes through the log and exp tables below. The matrix is
SnapRAID's extended Cauchy matrix, 6 rows by 251 columns: row 0 all ones (XOR), row 1 the powers of 2 (RAID-6's Q),
rows 2 to 5 Cauchy rows scaled so that their column 0 is 1. Its coefficients do not depend on how many data drives a
group has, so parity can be accumulated one data drive at a time and a row added later.

Everything here is small and pure Python on purpose: the tables are built once at import, and a decode matrix is
worked out once per loss pattern (x by x, x at most 6), never per byte. The per-byte work is the engine's
(:mod:`sneakernet.parity.engine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

#: The field's polynomial, x^8 + x^4 + x^3 + x^2 + 1.
POLYNOMIAL = 0x11D
#: The most parity rows (parity drives of a group) and data columns (data drives of a group) the matrix has.
MAX_ROWS = 6
MAX_COLUMNS = 251
#: The name a parity drive's manifest header gives this field and matrix (docs/format.md 19.7.5).
CODE_NAME = "gf256-0x11d-snapraid-cauchy"

Matrix = tuple[tuple[int, ...], ...]


def _tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """EXP[i] = 2^i for i in 0 ... 509 (doubled so that EXP[LOG[a] + LOG[b]] needs no modulo), and LOG[a] for
    a in 1 ... 255 (LOG[0] is unused: 0 has no logarithm)."""
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value <<= 1
        if value & 0x100:
            value ^= POLYNOMIAL
    for power in range(255, 510):
        exp[power] = exp[power - 255]
    return tuple(exp), tuple(log)


EXP, LOG = _tables()


def gf_mul(a: int, b: int) -> int:
    """a · b in GF(2^8)."""
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def gf_inv(a: int) -> int:
    """a^(-1) in GF(2^8); 0 has none."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def gf_pow2(exponent: int) -> int:
    """2^exponent for any integer exponent (negative ones too: 2 has order 255)."""
    return EXP[exponent % 255]


def _cauchy_matrix() -> Matrix:
    rows: list[tuple[int, ...]] = [tuple(1 for _ in range(MAX_COLUMNS))]
    rows.append(tuple(gf_pow2(c) for c in range(MAX_COLUMNS)))
    for r in range(2, MAX_ROWS):
        y = gf_pow2(r - 1)
        scale = y ^ 1  # 1 / (x_0 + y_r) with x_0 = 1, inverted: the factor that makes column 0 equal to 1
        rows.append(tuple(gf_mul(scale, gf_inv(y ^ gf_pow2(-c))) for c in range(MAX_COLUMNS)))
    return tuple(rows)


#: A[j][c]: the coefficient of data column c in parity row j (docs/format.md 19.7.3).
MATRIX: Matrix = _cauchy_matrix()


def encode_matrix(k: int, rows: Sequence[int]) -> Matrix:
    """The coefficients of the given parity rows over data columns 0 ... k-1 (ISA-L's encode matrix for them)."""
    check_shape(k, len(rows))
    for row in rows:
        if not 0 <= row < MAX_ROWS:
            raise ValueError(f"parity row {row} is outside 0 ... {MAX_ROWS - 1}")
    return tuple(MATRIX[row][:k] for row in rows)


def check_shape(k: int, m: int) -> None:
    """Refuse a group the matrix cannot describe: 1 <= k <= 251 data columns, 0 <= m <= 6 parity rows."""
    if not 1 <= k <= MAX_COLUMNS:
        raise ValueError(f"a parity group has 1 ... {MAX_COLUMNS} data drives, not {k}")
    if not 0 <= m <= MAX_ROWS:
        raise ValueError(f"a parity group has 0 ... {MAX_ROWS} parity drives, not {m}")


def invert(matrix: Sequence[Sequence[int]]) -> Matrix:
    """The inverse of a square matrix over GF(2^8), by Gauss-Jordan elimination; ValueError if it is singular
    (which no square submatrix of :data:`MATRIX` is)."""
    size = len(matrix)
    work = [[*row, *(1 if i == j else 0 for j in range(size))] for i, row in enumerate(matrix)]
    if any(len(row) != 2 * size for row in work):
        raise ValueError("only a square matrix has an inverse")
    for col in range(size):
        pivot = next((i for i in range(col, size) if work[i][col]), None)
        if pivot is None:
            raise ValueError("the matrix is singular")
        work[col], work[pivot] = work[pivot], work[col]
        factor = gf_inv(work[col][col])
        work[col] = [gf_mul(factor, value) for value in work[col]]
        for i in range(size):
            if i != col and work[i][col]:
                coefficient = work[i][col]
                work[i] = [a ^ gf_mul(coefficient, b) for a, b in zip(work[i], work[col], strict=True)]
    return tuple(tuple(row[size:]) for row in work)


def mat_mul(left: Sequence[Sequence[int]], right: Sequence[Sequence[int]]) -> Matrix:
    """left · right over GF(2^8)."""
    inner = len(right)
    if any(len(row) != inner for row in left):
        raise ValueError("the matrices' shapes do not match")
    width = len(right[0]) if right else 0
    result = []
    for row in left:
        out = [0] * width
        for i, coefficient in enumerate(row):
            if coefficient:
                for j, value in enumerate(right[i]):
                    out[j] ^= gf_mul(coefficient, value)
        result.append(tuple(out))
    return tuple(result)


@lru_cache(maxsize=256)
def decode_matrix(k: int, lost: tuple[int, ...], rows: tuple[int, ...]) -> tuple[tuple[int, ...], Matrix]:
    """How to solve the lost data columns from the surviving ones and the given parity rows.

    Returns ``(inputs, coefficients)``: ``inputs`` are the surviving columns 0 ... k-1 in increasing order followed
    by the rows (as ``k + row``, to tell them apart), and ``coefficients[i]`` gives lost column ``lost[i]`` as the sum
    of coefficient · input over them. With L the lost columns, S the surviving ones and R the rows (as many as L):
    P_R = A[R][S]·D_S ⊕ A[R][L]·D_L, so D_L = A[R][L]^(-1)·A[R][S]·D_S ⊕ A[R][L]^(-1)·P_R.
    """
    check_shape(k, len(rows))
    if len(rows) != len(lost):
        raise ValueError(f"{len(lost)} lost columns need as many parity rows, not {len(rows)}")
    if len(set(lost)) != len(lost) or any(not 0 <= c < k for c in lost):
        raise ValueError(f"lost columns {list(lost)} are not distinct columns of 0 ... {k - 1}")
    surviving = tuple(c for c in range(k) if c not in lost)
    square = [[MATRIX[r][c] for c in lost] for r in rows]
    inverse = invert(square)
    over_surviving = mat_mul(inverse, [[MATRIX[r][c] for c in surviving] for r in rows])
    coefficients = tuple(tuple(over_surviving[i]) + tuple(inverse[i]) for i in range(len(lost)))
    return (*surviving, *(k + r for r in rows)), coefficients
