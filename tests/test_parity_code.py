"""The parity code of docs/format.md 19.7.3: the matrix against the spec's check values, every engine
bit-identical to a slow reference written from the spec alone, every loss pattern of up to m blocks rebuilt, and
the matrix's square submatrices nonsingular (decodability) over the ranges issue 15 names."""

from __future__ import annotations

import itertools
import os
import random
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.parity import engine as engine_module
from sneakernet.parity.engine import (
    Backend,
    NotRecoverable,
    ParityCode,
    ParityEngineMissing,
    installed_backends,
    load_backend,
)
from sneakernet.parity.matrix import MATRIX, MAX_COLUMNS, MAX_ROWS, decode_matrix, gf_inv, gf_mul, invert, mat_mul

np = pytest.importorskip("numpy")

# The check values of docs/format.md 19.7.3: columns 0 ... 11, then column 250.
CHECK_VALUES = {
    0: "01 01 01 01 01 01 01 01 01 01 01 01 | 01",
    1: "01 02 04 08 10 20 40 80 1d 3a 74 e8 | 6c",
    2: "01 f5 d2 c4 9a 71 f1 7f fc 87 c1 c6 | 4b",
    3: "01 bb a6 d7 c7 07 ce 82 4a 2f a5 9b | fd",
    4: "01 97 7f 9c 7c 18 bd a2 58 1a da 74 | d7",
    5: "01 2b 3f cf 73 2c d6 ed cb 74 15 78 | bc",
}


def clmul_mod(a: int, b: int) -> int:
    """a · b in GF(2^8) the slow way the spec says it: carry-less multiplication reduced modulo 0x11D."""
    product = 0
    for bit in range(8):
        if b >> bit & 1:
            product ^= a << bit
    for bit in range(15, 7, -1):
        if product >> bit & 1:
            product ^= 0x11D << (bit - 8)
    return product


def reference_multiply(coefficients: Sequence[Sequence[int]], inputs: Sequence[bytes]) -> list[bytes]:
    """Matrix times blocks, byte by byte in Python: the slow reference every engine must equal."""
    size = len(inputs[0]) if inputs else 0
    outputs = []
    for row in coefficients:
        out = bytearray(size)
        for coefficient, block in zip(row, inputs, strict=True):
            for i, byte in enumerate(block):
                out[i] ^= clmul_mod(coefficient, byte)
        outputs.append(bytes(out))
    return outputs


BACKENDS = installed_backends()
IDS = [backend.name for backend in BACKENDS]


def test_the_matrix_equals_the_spec_check_values() -> None:
    assert len(MATRIX) == MAX_ROWS == 6
    assert all(len(row) == MAX_COLUMNS == 251 for row in MATRIX)
    for row, text in CHECK_VALUES.items():
        first, last = text.split(" | ")
        assert MATRIX[row][:12] == tuple(bytes.fromhex(first))
        assert MATRIX[row][250] == int(last, 16)


def test_the_field_is_the_spec_field() -> None:
    for a in range(256):
        for b in range(256):
            assert gf_mul(a, b) == clmul_mod(a, b)
        if a:
            assert gf_mul(a, gf_inv(a)) == 1
    # The rows as the spec defines them, computed with the slow multiplication (the powers of 2 by repeated doubling).
    power = 1
    for c in range(MAX_COLUMNS):
        assert MATRIX[0][c] == 1 and MATRIX[1][c] == power
        inverse_power = next(x for x in range(1, 256) if clmul_mod(x, power) == 1)  # 2^(-c)
        for r in range(2, MAX_ROWS):
            y = 1 << (r - 1)
            denominator_inverse = next(x for x in range(1, 256) if clmul_mod(x, y ^ inverse_power) == 1)
            assert MATRIX[r][c] == clmul_mod(y ^ 1, denominator_inverse)
        power = clmul_mod(power, 2)


def test_inversion() -> None:
    rng = random.Random(15)
    for size in range(1, 7):
        columns = rng.sample(range(MAX_COLUMNS), size)
        square = [[MATRIX[r][c] for c in columns] for r in range(size)]
        identity = tuple(tuple(int(i == j) for j in range(size)) for i in range(size))
        assert mat_mul(square, invert(square)) == identity
    with pytest.raises(ValueError, match="singular"):
        invert([[1, 1], [1, 1]])


def test_the_spec_check_value_of_the_whole_computation() -> None:
    """docs/format.md 19.7.3's worked stripe, read from the document so that it and the code cannot drift apart."""
    text = " ".join((Path(__file__).resolve().parent.parent / "docs" / "format.md").read_text(encoding="utf-8").split())
    found = dict(re.findall(r"(D_\d|P_\d) = `([0-9a-f ]+)`", text))
    data = [bytes.fromhex(found[f"D_{c}"]) for c in range(3)]
    expected = [bytes.fromhex(found[f"P_{j}"]) for j in range(6)]
    for backend in BACKENDS:
        assert ParityCode(3, 6, backend).encode(data) == expected
    assert reference_multiply([row[:3] for row in MATRIX], data) == expected


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
@pytest.mark.parametrize("size", [0, 1, 15, 16, 31, 32, 33, 63, 64, 65, 255, 4099])
def test_engines_equal_the_reference(backend: Backend, size: int) -> None:
    rng = random.Random(size)
    k, m = 7, 6
    data = [rng.randbytes(size) for _ in range(k)]
    expected = reference_multiply([row[:k] for row in MATRIX], data)
    code = ParityCode(k, m, backend)
    assert [bytes(block) for block in code.encode(data)] == expected
    # Read-only views at an offset and bytearrays are read in place, the same bytes.
    views = [memoryview(b"x" + block)[1:] for block in data]
    assert [bytes(block) for block in code.encode(views)] == expected


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_engines_are_bit_identical_on_random_blocks(backend: Backend) -> None:
    k, m, size = 10, 3, 1 << 16
    data = [os.urandom(size) for _ in range(k)]
    numpy_parity = ParityCode(k, m, load_backend("numpy")).encode(data)
    assert ParityCode(k, m, backend).encode(data) == numpy_parity
    # A decode matrix too (any coefficients, not only the encode rows).
    inputs, coefficients = decode_matrix(k, (2, 5, 9), (0, 1, 2))
    blocks = [data[i] if i < k else numpy_parity[i - k] for i in inputs]
    small = [block[:300] for block in blocks]
    outputs = [bytearray(300) for _ in coefficients]
    backend.multiply(coefficients, small, outputs)
    assert [bytes(out) for out in outputs] == reference_multiply(coefficients, small)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 6), st.integers(1, 12), st.integers(0, 80))
def test_every_engine_multiplies_any_matrix_as_the_reference(seed: int, rows: int, inputs: int, size: int) -> None:
    """Any coefficients (not only the encode and decode matrices), and multiply_add into blocks holding bytes."""
    rng = random.Random(seed)
    coefficients = tuple(tuple(rng.randrange(256) for _ in range(inputs)) for _ in range(rows))
    blocks = [rng.randbytes(size) for _ in range(inputs)]
    expected = reference_multiply(coefficients, blocks)
    start = [rng.randbytes(size) for _ in range(rows)]
    column = tuple(row[0] for row in coefficients)
    products = reference_multiply([[c] for c in column], blocks[:1])
    added = [bytes(a ^ b for a, b in zip(s, p, strict=True)) for s, p in zip(start, products, strict=True)]
    for backend in BACKENDS:
        outputs = [bytearray(size) for _ in range(rows)]
        backend.multiply(coefficients, blocks, outputs)
        assert [bytes(out) for out in outputs] == expected, backend.name
        targets = [bytearray(s) for s in start]
        backend.multiply_add(column, blocks[0], targets)
        assert [bytes(t) for t in targets] == added, backend.name


def lose_and_rebuild(code: ParityCode, data: list[bytes], parity: list[bytearray], lost: Sequence[int]) -> None:
    """Lose drives ``lost`` (columns 0 ... k-1, then rows as k + j), rebuild them, and check every byte."""
    k = code.k
    columns = {c: data[c] for c in range(k) if c not in lost}
    rows = {j: parity[j] for j in range(code.m) if k + j not in lost}
    rebuilt = code.reconstruct(columns, rows)
    assert sorted(rebuilt) == sorted(c for c in lost if c < k)
    for column, block in rebuilt.items():
        assert block == data[column]
    whole = [rebuilt.get(c, data[c]) for c in range(k)]
    lost_rows = [j for j in range(code.m) if k + j in lost]
    assert code.encode(whole, lost_rows) == [parity[j] for j in lost_rows]


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
@pytest.mark.parametrize(("k", "m"), [(1, 1), (1, 6), (2, 2), (5, 3), (10, 3), (4, 6), (9, 4)])
def test_every_loss_pattern_up_to_m_drives_rebuilds(backend: Backend, k: int, m: int) -> None:
    rng = random.Random(k * 10 + m)
    data = [rng.randbytes(97) for _ in range(k)]
    code = ParityCode(k, m, backend)
    parity = code.encode(data)
    for count in range(m + 1):
        for lost in itertools.combinations(range(k + m), count):
            lose_and_rebuild(code, data, parity, lost)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_accumulating_one_column_at_a_time_gives_the_parity(backend: Backend) -> None:
    k, m, size = 9, 4, 1000
    data = [os.urandom(size) for _ in range(k)]
    code = ParityCode(k, m, backend)
    parity = [bytearray(size) for _ in range(m)]
    order = list(range(k))
    random.Random(1).shuffle(order)
    for column in order:
        code.accumulate(parity, column, data[column])
    assert parity == code.encode(data)
    # A row computed alone (a parity drive added later) and a column taken out again (added twice).
    third = [bytearray(size)]
    for column in range(k):
        code.accumulate(third, column, memoryview(data[column]), rows=[2])
    assert third == code.encode(data, rows=[2])
    code.accumulate(parity, 4, data[4])
    assert parity == code.encode([*data[:4], bytes(size), *data[5:]])


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_into_the_callers_buffers(backend: Backend) -> None:
    """encode_into and reconstruct_into write into views of one buffer the caller keeps, stripe after stripe."""
    k, m, size = 6, 3, 513
    code = ParityCode(k, m, backend)
    buffer = bytearray(b"\xff" * (m * size))
    views = [memoryview(buffer)[j * size : (j + 1) * size] for j in range(m)]
    for seed in range(3):
        data = [random.Random(seed * 10 + c).randbytes(size) for c in range(k)]
        code.encode_into(data, views)
        assert [bytes(view) for view in views] == code.encode(data)
        assert code.lost({0: data[0], 2: data[2], 3: data[3], 5: data[5]}) == (1, 4)
        parity = code.encode(data)
        rebuilt = {1: bytearray(size), 4: bytearray(size)}
        code.reconstruct_into({0: data[0], 2: data[2], 3: data[3], 5: data[5]}, {1: parity[1], 2: parity[2]}, rebuilt)
        assert rebuilt == {1: data[1], 4: data[4]}
        with pytest.raises(ValueError, match="lost columns are"):
            code.reconstruct_into({c: data[c] for c in range(1, k)}, {0: parity[0]}, rebuilt)
    with pytest.raises(ValueError, match="output blocks"):
        code.encode_into([bytes(size)] * k, views[:2])
    with pytest.raises(ValueError, match="same size"):
        code.encode_into([bytes(size)] * k, [bytearray(size - 1)] * m)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_threads_share_one_engine(backend: Backend) -> None:
    """A writer encodes stripes on several threads with one ParityCode (ISA-L runs without the GIL): same bytes."""
    k, m, size = 8, 3, 1 << 15
    code = ParityCode(k, m, backend)
    stripes = [[random.Random(s * 100 + c).randbytes(size) for c in range(k)] for s in range(12)]
    expected = [code.encode(stripe) for stripe in stripes]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(code.encode, stripes)) == expected


def test_more_losses_than_parity_are_not_recoverable() -> None:
    code = ParityCode(4, 2, load_backend("numpy"))
    data = [bytes([c]) * 8 for c in range(4)]
    parity = code.encode(data)
    with pytest.raises(NotRecoverable, match="columns 0, 2 cannot be rebuilt"):
        code.reconstruct({1: data[1], 3: data[3]}, {1: parity[1]})
    with pytest.raises(ValueError, match="same size"):
        code.encode([b"ab", b"ab", b"abc", b"ab"])
    with pytest.raises(ValueError, match=r"1 \.\.\. 251"):
        ParityCode(252, 1, load_backend("numpy"))


def test_a_missing_engine_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "_loaded", {"isa-l": None, "numpy": None})
    with pytest.raises(ParityEngineMissing) as caught:
        load_backend()
    message = str(caught.value)
    assert "\n" not in message
    assert "'.[parity]'" in message and "libisal2" in message and "parity-numpy extra" in message
    assert caught.value.exit_code == 2


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 16),
    m=st.integers(0, 6),
    size=st.integers(0, 200),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_round_trip(k: int, m: int, size: int, seed: int, data: st.DataObject) -> None:
    rng = random.Random(seed)
    blocks = [rng.randbytes(size) for _ in range(k)]
    code = ParityCode(k, m, BACKENDS[0])
    parity = code.encode(blocks)
    lost = data.draw(st.lists(st.integers(0, k + m - 1), unique=True, max_size=m))
    lose_and_rebuild(code, blocks, parity, lost)


# Decodability: any x <= m lost columns are solved from any x surviving rows exactly when every x by x submatrix of
# the matrix's rows 0 ... m-1 and first k columns is nonsingular. Checked in batches with numpy's tables.

PRODUCTS = np.array([[gf_mul(a, b) for b in range(256)] for a in range(256)], dtype=np.uint8)
INVERSES = np.array([0] + [gf_inv(a) for a in range(1, 256)], dtype=np.uint8)
A = np.array(MATRIX, dtype=np.uint8)


def nonsingular(batch: np.ndarray) -> np.ndarray:
    """For a batch of x by x matrices (N, x, x) over GF(2^8), which are nonsingular (Gauss-Jordan on all at once)."""
    work = batch.copy()
    count, size, _ = work.shape
    ok = np.ones(count, dtype=bool)
    every = np.arange(count)
    for col in range(size):
        nonzero = work[:, col:, col] != 0
        ok &= nonzero.any(axis=1)
        pivot = col + nonzero.argmax(axis=1)
        pivot_rows = work[every, pivot].copy()
        work[every, pivot] = work[every, col]
        work[every, col] = pivot_rows
        work[:, col] = PRODUCTS[INVERSES[work[:, col, col]][:, None], work[:, col]]
        for row in range(size):
            if row != col:
                work[:, row] ^= PRODUCTS[work[:, row, col][:, None], work[:, col]]
    return ok


def all_decodable(k: int, m: int) -> int:
    """Check every square submatrix of rows < m and columns < k; returns how many were checked."""
    checked = 0
    for size in range(1, m + 1):
        column_sets = np.array(list(itertools.combinations(range(k), size)), dtype=np.intp)
        for rows in itertools.combinations(range(m), size):
            for start in range(0, len(column_sets), 500_000):
                chosen = column_sets[start : start + 500_000]
                batch = A[np.array(rows)][:, chosen].transpose(1, 0, 2)
                assert nonsingular(batch).all(), (rows, chosen[~nonsingular(batch)][:3])
                checked += len(chosen)
    return checked


def test_decodability_checker_finds_a_singular_matrix() -> None:
    assert list(nonsingular(np.array([[[1, 1], [1, 1]], [[1, 2], [1, 3]], [[0, 5], [7, 0]]], dtype=np.uint8))) == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(("k", "m"), [(60, 3), (12, 6)])
def test_every_loss_is_decodable(k: int, m: int) -> None:
    assert all_decodable(k, m) > 0


@pytest.mark.slow
@pytest.mark.parametrize(("k", "m"), [(MAX_COLUMNS, 3), (24, 6)])
def test_every_loss_is_decodable_over_the_issues_ranges(k: int, m: int) -> None:
    """Issue 15's ranges: m <= 3 with k up to 251 (2.6 million 3 x 3), m <= 6 with k <= 24: about 10 s, so
    run on its own: ``pytest -m slow tests/test_parity_code.py``."""
    assert all_decodable(k, m) > 0
