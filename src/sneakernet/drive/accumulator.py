"""Parity accumulated while the data drives are written (docs/format.md 19.7.3, 19.10): :class:`ParityAccumulator`.

pack --parity M computes its parity in the same pass as the data: each data drive's writer hands the bytes it
stores, in order, to a :class:`ColumnFeed`, which adds every block of them into the parity rows, P_j ^= A[j][c]·D_c
(parity.engine's ``accumulate``: the coefficients do not depend on how many data drives there will be). The rows
are files in a local work directory, one per row, ``row-J.acc``, each at most as long as the longest data drive's
stored stream; the zeros past a shorter drive's end add nothing. Once every data drive is finished, the parity
drives are written from these files (packer/same_pass.py) exactly as ``sneakernet parity`` writes them.

Drives written at once (lanes: one process each) add into the same rows: each block's read, add and write is done
under a POSIX record lock over that block's range in every row file, so two lanes never lose each other's sum; the
order of the sums does not matter (XOR). A pack stopped while it adds leaves rows of unknown content: a resumed pack
does not trust them (it computes the parity again from the drives, packer/same_pass.py).

The work directory is scratch, like the lanes' spool, not a drive: its files are written with plain calls, never
fsynced, and removed once the parity drives are finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..parity.engine import ParityCode, load_backend
from ..parity.layout import BLOCK_SIZE
from ..parity.matrix import MAX_COLUMNS

#: The accumulator's files in its work directory: one per parity row.
ROW_NAME = "row-{row}.acc"


@dataclass(frozen=True)
class AccumulatorSpec:
    """Where parity accumulates and its shape, as plain data (a lane's process opens its own accumulator)."""

    path: str
    rows: int
    block_size: int = BLOCK_SIZE


class ParityAccumulator:
    """The m parity rows of one group, accumulated from the data drives' stored streams (drive number *n* is
    column *n* − 1: pack puts its data drives in one group while there are at most 251 of them)."""

    def __init__(self, spec: AccumulatorSpec) -> None:
        self.spec = spec
        os.makedirs(spec.path, exist_ok=True)
        self.code = ParityCode(MAX_COLUMNS, spec.rows, load_backend())
        self._files = [
            os.open(os.path.join(spec.path, ROW_NAME.format(row=row)), os.O_RDWR | os.O_CREAT, 0o600)
            for row in range(spec.rows)
        ]
        self._scratch = [bytearray(spec.block_size) for _ in range(spec.rows)]

    def column(self, drive: int) -> ColumnFeed | None:
        """The feed of data drive ``drive``'s stored stream; None for a drive past the one group's last column
        (such a shipment's parity is computed from the drives once they are written)."""
        if not 1 <= drive <= MAX_COLUMNS:
            return None
        return ColumnFeed(self, drive - 1)

    def add(self, column: int, stripe: int, block: memoryview) -> None:
        """P_j[stripe] ^= A[j][column]·block for every row j, ``block`` the column's bytes from the stripe's start
        (a whole block, or the drive's last, shorter piece: the rest counts as zeros)."""
        size = len(block)
        start = stripe * self.spec.block_size
        outputs = [memoryview(scratch)[:size] for scratch in self._scratch]
        for handle in self._files:
            fcntl.lockf(handle, fcntl.LOCK_EX, size, start)
        try:
            for handle, output in zip(self._files, outputs, strict=True):
                read = os.preadv(handle, [output], start)
                output[read:] = bytes(size - read)  # past the row's end so far: zeros
            self.code.accumulate(outputs, column, block)
            for handle, output in zip(self._files, outputs, strict=True):
                _pwrite_all(handle, output, start)
        finally:
            for handle in self._files:
                fcntl.lockf(handle, fcntl.LOCK_UN, size, start)

    def blocks(self, row: int, stripes: int) -> Iterator[memoryview]:
        """Row ``row``'s parity blocks 0 ... ``stripes`` − 1 in order, zeros where nothing was added (one buffer,
        reused: each block is valid until the next is asked for)."""
        block = self.spec.block_size
        buffer = memoryview(bytearray(block))
        handle = self._files[row]
        for stripe in range(stripes):
            read = os.preadv(handle, [buffer], stripe * block)
            buffer[read:] = bytes(block - read)
            yield buffer

    def close(self) -> None:
        for handle in self._files:
            os.close(handle)
        self._files = []


def empty_rows(spec: AccumulatorSpec) -> None:
    """Rows of length 0, before the first drive adds into them (a stopped run may have left some behind)."""
    os.makedirs(spec.path, exist_ok=True)
    for row in range(spec.rows):
        os.close(
            os.open(os.path.join(spec.path, ROW_NAME.format(row=row)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        )


def remove_rows(spec: AccumulatorSpec) -> None:
    """Delete the row files and the work directory (once the parity drives are finished)."""
    for row in range(spec.rows):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(spec.path, ROW_NAME.format(row=row)))
    with contextlib.suppress(OSError):  # not empty: something else the user keeps there
        os.rmdir(spec.path)


def _pwrite_all(handle: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(handle, data, offset)
        data = data[written:]
        offset += written


class ColumnFeed:
    """One data drive's stored stream, handed in order by its writer (:meth:`write`, then :meth:`close` when the
    drive is finished): cut into blocks at the stripes' bounds, each added to the rows as it fills."""

    def __init__(self, accumulator: ParityAccumulator, column: int) -> None:
        self.accumulator = accumulator
        self.column = column
        self._block = bytearray(accumulator.spec.block_size)
        self._filled = 0
        self._stripe = 0
        #: Bytes handed so far: the drive's stored_bytes once it is finished.
        self.fed = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        size = len(self._block)
        self.fed += len(view)
        while view:
            take = min(size - self._filled, len(view))
            self._block[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == size:
                self.accumulator.add(self.column, self._stripe, memoryview(self._block))
                self._stripe += 1
                self._filled = 0

    def close(self) -> None:
        """The drive's last, partial block (its stored stream's end: the rest of the stripe counts as zeros)."""
        if self._filled:
            self.accumulator.add(self.column, self._stripe, memoryview(self._block)[: self._filled])
            self._stripe += 1
            self._filled = 0
