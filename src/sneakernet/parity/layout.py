"""Where parity's blocks lie (docs/format.md 19.7.1, 19.7.2, 19.7.4): parity groups, stripes, a column's share of a
stripe, the stripes a chunk overlaps, a parity drive's segments. Arithmetic on sizes and offsets only."""

from __future__ import annotations

from collections.abc import Iterable

from .matrix import MAX_COLUMNS

#: The block size's bounds, and sneakernet's (19.7.2): a power of two.
MIN_BLOCK_SIZE = 64 << 10
MAX_BLOCK_SIZE = 64 << 20
BLOCK_SIZE = 4 << 20


def check_block_size(block_size: int) -> None:
    """Refuse a block size 19.7.2 does not allow: a power of two from 64 KiB to 64 MiB."""
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE or block_size & (block_size - 1):
        raise ValueError(f"a parity block is a power of two from 64 KiB to 64 MiB, not {block_size} bytes")


def groups(data_drives: int, group_size: int = MAX_COLUMNS) -> list[range]:
    """The parity groups of data drives 1 ... ``data_drives`` (19.7.1): the fewest groups of consecutive drive
    numbers of at most ``group_size`` drives each, as equal as they can be (the first ones one drive larger), so
    that rebuilding a drive of any group reads about as many drives."""
    if data_drives < 0:
        raise ValueError(f"a shipment has 0 or more data drives, not {data_drives}")
    if not 1 <= group_size <= MAX_COLUMNS:
        raise ValueError(f"a parity group has 1 ... {MAX_COLUMNS} data drives, not {group_size}")
    if data_drives == 0:
        return []
    count = -(-data_drives // group_size)
    base, larger = divmod(data_drives, count)
    found: list[range] = []
    first = 1
    for index in range(count):
        size = base + (1 if index < larger else 0)
        found.append(range(first, first + size))
        first += size
    return found


def stripe_count(stored_bytes: Iterable[int], block_size: int) -> int:
    """S = ceil(max(L) / B) over the group's data drives' stored stream lengths L (0 when every stream is empty)."""
    check_block_size(block_size)
    longest = max(stored_bytes, default=0)
    if longest < 0:
        raise ValueError(f"a stored stream has 0 or more bytes, not {longest}")
    return -(-longest // block_size)


def present_bytes(stored_bytes: int, stripe: int, block_size: int) -> int:
    """How many bytes of stripe ``stripe``'s block of a data drive with ``stored_bytes`` bytes come from its stream
    (from the block's start); the rest of the block, up to ``block_size``, counts as zeros and is never stored."""
    if stripe < 0:
        raise ValueError(f"stripes are numbered from 0, not {stripe}")
    return max(0, min(block_size, stored_bytes - stripe * block_size))


def stripes_of(offset: int, size: int, block_size: int) -> range:
    """The stripes that the ``size`` bytes at stream offset ``offset`` overlap: a chunk that fails its hash makes
    its column lost in each of them (19.7.6). Empty for an empty range."""
    if offset < 0 or size < 0:
        raise ValueError(f"a byte range has a non-negative offset and size, not {offset}, {size}")
    if size == 0:
        return range(0)
    return range(offset // block_size, (offset + size - 1) // block_size + 1)


def parity_segments(stripes: int, block_size: int, segment_size: int) -> list[int]:
    """The number of parity blocks in each of a parity drive's segment files (19.7.4): ``segment_size`` bytes each,
    a multiple of the block size, the last one shorter; none when there are no stripes."""
    check_block_size(block_size)
    if segment_size <= 0 or segment_size % block_size:
        raise ValueError(f"a parity segment is a positive multiple of the {block_size}-byte block, not {segment_size}")
    per_segment = segment_size // block_size
    full, rest = divmod(stripes, per_segment)
    return [per_segment] * full + ([rest] if rest else [])
