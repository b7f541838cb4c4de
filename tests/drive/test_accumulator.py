"""drive/parity/accumulator.py: parity added up piece by piece, in any order of drives and cuts, is the parity encoded
stripe by stripe from the whole streams (docs/format.md 19.7.3, 19.10); a failure to add is one error, raised."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sneakernet.drive.parity.accumulator import AccumulatorSpec, ParityAccumulator, empty_rows
from sneakernet.errors import DestinationError
from sneakernet.parity.engine import ParityCode

BLOCK = 64 << 10


def encoded(streams: list[bytes], rows: int) -> list[bytes]:
    """Each row's stream as sneakernet parity computes it: every stripe's blocks encoded, streams zero-padded."""
    stripes = -(-max(len(s) for s in streams) // BLOCK)
    code = ParityCode(len(streams), rows)
    out = [bytearray() for _ in range(rows)]
    for s in range(stripes):
        blocks = [stream[s * BLOCK : (s + 1) * BLOCK].ljust(BLOCK, b"\0") for stream in streams]
        for row, block in enumerate(code.encode(blocks)):
            out[row] += block
    return [bytes(row) for row in out]


def cuts(length: int, rng: random.Random) -> list[tuple[int, int]]:
    """``length`` bytes cut into pieces of random sizes (some across block bounds, some tiny)."""
    pieces, at = [], 0
    while at < length:
        size = min(length - at, rng.choice([1, 7, 4096, BLOCK - 3, BLOCK, 3 * BLOCK + 5]))
        pieces.append((at, size))
        at += size
    return pieces


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 4 * BLOCK + 100), min_size=1, max_size=5),
    rows=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_pieces_in_any_order_give_the_encoded_parity(
    tmp_path_factory: pytest.TempPathFactory, lengths: list[int], rows: int, seed: int
) -> None:
    rng = random.Random(seed)
    streams = [rng.randbytes(length) for length in lengths]
    if not any(streams):
        return
    spec = AccumulatorSpec(str(tmp_path_factory.mktemp("rows")), rows, BLOCK)
    empty_rows(spec)
    accumulator = ParityAccumulator(spec)
    try:
        order = [(column, at, size) for column, s in enumerate(streams) for at, size in cuts(len(s), rng)]
        rng.shuffle(order)  # drives written at once: their pieces interleaved in any order (the sums commute)
        for column, at, size in order:
            accumulator.feed(column, at, streams[column][at : at + size])
        accumulator.flush()
        stripes = -(-max(lengths) // BLOCK)
        got = [b"".join(bytes(block) for block in accumulator.blocks(row, stripes)) for row in range(rows)]
    finally:
        accumulator.close()
    assert got == encoded(streams, rows)


def test_a_drive_past_the_one_group_is_not_fed(tmp_path: Path) -> None:
    spec = AccumulatorSpec(str(tmp_path / "rows"), 1, BLOCK)
    accumulator = ParityAccumulator(spec)
    try:
        assert accumulator.column(251) is not None
        assert accumulator.column(252) is None
    finally:
        accumulator.close()


def test_a_failed_sum_is_raised_at_the_drive_s_end_as_one_error(tmp_path: Path) -> None:
    spec = AccumulatorSpec(str(tmp_path / "rows"), 2, BLOCK)
    accumulator = ParityAccumulator(spec)
    try:
        feed = accumulator.column(1)
        assert feed is not None
        os.close(accumulator._files[1])  # the row file is gone under the accumulator (EBADF when it adds)
        feed.write(os.urandom(1000))
        with pytest.raises(DestinationError, match=r"cannot add to the parity in .*rows"):
            feed.close()
        accumulator._files[1] = os.open(os.devnull, os.O_RDONLY)  # closed again by close()
    finally:
        accumulator.close()
