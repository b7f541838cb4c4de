"""Where parity's blocks lie (docs/format.md 19.7.1, 19.7.2, 19.7.4): groups, stripes, zeros past a short drive's
end, the stripes a chunk overlaps, a parity drive's segments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sneakernet.parity.layout import (
    BLOCK_SIZE,
    check_block_size,
    groups,
    parity_segments,
    present_bytes,
    stripe_count,
    stripes_of,
)

MIB = 1 << 20


def test_block_sizes() -> None:
    for size in (64 << 10, BLOCK_SIZE, 64 * MIB):
        check_block_size(size)
    for size in (32 << 10, 128 * MIB, 3 * MIB, 0):
        with pytest.raises(ValueError, match="power of two"):
            check_block_size(size)


def test_groups_are_the_fewest_consecutive_and_as_equal_as_can_be() -> None:
    assert groups(0) == []
    assert groups(10) == [range(1, 11)]
    assert groups(251) == [range(1, 252)]
    assert groups(252) == [range(1, 127), range(127, 253)]
    assert groups(40, 10) == [range(1, 11), range(11, 21), range(21, 31), range(31, 41)]
    assert groups(11, 5) == [range(1, 5), range(5, 9), range(9, 12)]
    with pytest.raises(ValueError, match=r"1 \.\.\. 251"):
        groups(10, 252)


@given(st.integers(0, 2000), st.integers(1, 251))
def test_groups_cover_every_drive_once(drives: int, size: int) -> None:
    found = groups(drives, size)
    assert [d for group in found for d in group] == list(range(1, drives + 1))
    assert len(found) == -(-drives // size)
    assert all(len(group) <= size for group in found)
    assert max((len(g) for g in found), default=0) - min((len(g) for g in found), default=0) <= 1


def test_stripes_and_the_zeros_past_a_short_drive() -> None:
    assert stripe_count([], BLOCK_SIZE) == 0
    assert stripe_count([0, 0], BLOCK_SIZE) == 0
    assert stripe_count([1, 4 * MIB], BLOCK_SIZE) == 1
    assert stripe_count([4 * MIB + 1, 7], BLOCK_SIZE) == 2
    # A drive of 5 MiB in 4 MiB blocks: stripe 0 all its own bytes, stripe 1 its last MiB then zeros, then all zeros.
    assert [present_bytes(5 * MIB, s, BLOCK_SIZE) for s in range(3)] == [4 * MIB, MIB, 0]


def test_the_stripes_a_chunk_overlaps() -> None:
    assert stripes_of(0, 0, BLOCK_SIZE) == range(0)
    assert stripes_of(0, 1, BLOCK_SIZE) == range(1)
    assert stripes_of(4 * MIB - 1, 2, BLOCK_SIZE) == range(2)
    assert stripes_of(4 * MIB, 4 * MIB, BLOCK_SIZE) == range(1, 2)
    assert stripes_of(3 * MIB, 10 * MIB, BLOCK_SIZE) == range(4)


def test_a_parity_drives_segments() -> None:
    assert parity_segments(0, BLOCK_SIZE, 1024 * MIB) == []
    assert parity_segments(1907, BLOCK_SIZE, 1024 * MIB) == [256] * 7 + [115]
    assert parity_segments(512, BLOCK_SIZE, 1024 * MIB) == [256, 256]
    with pytest.raises(ValueError, match="multiple"):
        parity_segments(3, BLOCK_SIZE, 5 * MIB)
