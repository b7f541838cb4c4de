"""Rebuilding from parity (docs/format.md 19.7.6), the pure part: which columns of a stripe are lost, whether the
stripe can be rebuilt, which parity rows to solve it with (the lowest first, then the others when a rebuilt chunk
fails its hash), the lost blocks themselves, and a byte range of a lost column taken out of its rebuilt blocks.

A lost drive counts as lost only where it has bytes: past the end of its stored stream (its ``stored_bytes``, known
from the parity drive's ``covers`` record even when the drive is gone) its block is zeros, which are known. So a
shipment with more drives lost than parity rows may still rebuild the stripes where only few of them reach.

Nothing here says a rebuilt byte is right: the caller checks every chunk it takes from a rebuilt block against the
chunk's recorded ``stored_blake3`` (:func:`matches`) before it uses it, and counts a mismatch as one more loss.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import blake3

from .engine import ParityCode
from .isal import Block
from .layout import check_block_size, present_bytes, stripe_count, stripes_of


@dataclass(frozen=True)
class Group:
    """One parity group's shape as a rebuild sees it: ``k`` columns, ``m`` rows, the block size, and each column's
    stored stream length (``stored[c]`` for column c)."""

    m: int
    block_size: int
    stored: tuple[int, ...]

    def __post_init__(self) -> None:
        check_block_size(self.block_size)
        if not self.stored or any(length < 0 for length in self.stored):
            raise ValueError(f"a parity group has 1 or more columns of 0 or more bytes, not {list(self.stored)}")

    @property
    def k(self) -> int:
        return len(self.stored)

    @property
    def stripes(self) -> int:
        return stripe_count(self.stored, self.block_size)

    def reaches(self, column: int, stripe: int) -> bool:
        """Whether column ``column`` has stored bytes in stripe ``stripe`` (past its end it is zeros)."""
        return present_bytes(self.stored[column], stripe, self.block_size) > 0

    def lost_in(self, stripe: int, lost: Collection[int]) -> tuple[int, ...]:
        """The columns of ``lost`` whose block of ``stripe`` has stored bytes, in increasing order: the ones the
        stripe must rebuild (a lost column past its end is known zeros)."""
        return tuple(sorted(c for c in set(lost) if self.reaches(c, stripe)))


@dataclass(frozen=True)
class StripeLoss:
    """What one stripe has lost: the columns to rebuild and the parity rows that survive."""

    stripe: int
    columns: tuple[int, ...]
    rows: tuple[int, ...]

    @property
    def recoverable(self) -> bool:
        return len(self.columns) <= len(self.rows)

    def row_choices(self) -> Iterator[tuple[int, ...]]:
        """The sets of surviving rows that can solve the stripe, the lowest first (what 19.7.6 and SnapRAID use),
        then every other: a rebuilt chunk failing its hash with one set may be right with another (a damaged or
        hostile parity row whose own hashes match is found that way). None when the stripe is not recoverable;
        one empty set when nothing is lost."""
        if not self.recoverable:
            return iter(())
        return itertools.combinations(sorted(self.rows), len(self.columns))


def stripe_loss(
    group: Group, stripe: int, lost_columns: Collection[int], lost_rows: Collection[int] = ()
) -> StripeLoss:
    """Stripe ``stripe``'s loss when ``lost_columns`` (absent or damaged there) and ``lost_rows`` (absent, or whose
    block fails its ``pblock`` hash) are lost."""
    if not 0 <= stripe < group.stripes:
        raise ValueError(f"stripe {stripe} is outside 0 ... {group.stripes - 1}")
    rows = tuple(r for r in range(group.m) if r not in set(lost_rows))
    return StripeLoss(stripe, group.lost_in(stripe, lost_columns), rows)


def unrecoverable_stripes(group: Group, lost_columns: Collection[int], lost_rows: Collection[int] = ()) -> range:
    """The stripes that cannot be rebuilt when whole drives are lost (the same columns and rows in every stripe):
    those where more lost columns have bytes than rows survive. A column stops having bytes past its end and never
    starts again, so they are the first stripes, up to where the lost column with the (surviving + 1)-th longest
    stream ends; arithmetic only, however many stripes the group has."""
    surviving = group.m - len(set(lost_rows) & set(range(group.m)))
    ends = sorted((-(-group.stored[c] // group.block_size) for c in set(lost_columns)), reverse=True)
    return range(ends[surviving] if len(ends) > surviving else 0)


def rebuild_stripe(
    code: ParityCode,
    loss: StripeLoss,
    columns: Mapping[int, Block],
    rows: Mapping[int, Block],
    choice: Sequence[int] | None = None,
) -> dict[int, bytearray]:
    """The lost blocks of one stripe (``loss.columns``), solved from the surviving columns' blocks (every column not
    lost, zero blocks past a column's end included) and the parity blocks of ``choice`` (default: the lowest
    surviving rows). Only the lost columns that have bytes are rebuilt; ``columns`` must hold every other column."""
    chosen = tuple(loss.rows[: len(loss.columns)] if choice is None else choice)
    if len(chosen) != len(loss.columns) or not set(chosen) <= set(loss.rows):
        raise ValueError(f"rows {list(chosen)} cannot solve the lost columns {list(loss.columns)} of {list(loss.rows)}")
    surviving = {c: block for c, block in columns.items() if c not in loss.columns}
    if len(surviving) != code.k - len(loss.columns):
        missing = sorted(set(range(code.k)) - set(surviving) - set(loss.columns))
        raise ValueError(f"columns {missing} are neither lost nor given")
    if not loss.columns:
        return {}
    return code.reconstruct(surviving, {row: rows[row] for row in chosen})


def take_range(offset: int, size: int, block_size: int, blocks: Mapping[int, Block]) -> bytes:
    """The ``size`` bytes at stream offset ``offset`` of one column, out of its blocks by stripe (every stripe the
    range overlaps must be in ``blocks``)."""
    out = bytearray()
    for stripe in stripes_of(offset, size, block_size):
        start = max(offset, stripe * block_size) - stripe * block_size
        end = min(offset + size, (stripe + 1) * block_size) - stripe * block_size
        out += memoryview(blocks[stripe])[start:end]
    return bytes(out)


def matches(stored: Block, size: int, stored_blake3: str) -> bool:
    """Whether rebuilt stored bytes are the chunk's: its size and recorded BLAKE3 (19.7.6: the check before use)."""
    return memoryview(stored).nbytes == size and blake3.blake3(stored).hexdigest() == stored_blake3
