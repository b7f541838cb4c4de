"""Parity accumulated while the data drives are written (docs/format.md 19.7.3, 19.10): :class:`ParityAccumulator`.

pack --parity M computes its parity in the same pass as the data: each data drive's writer hands the bytes it
stores, in order, to a :class:`ColumnFeed`, which has them added at their place in its stream into the parity rows,
P_j ^= A[j][c]·D_c (parity.engine's ``accumulate``: the coefficients do not depend on how many data drives there
will be; the sums are byte by byte, so the pieces need not be whole blocks). The rows
are files in a local work directory, one per row, ``row-J.acc``, each at most as long as the longest data drive's
stored stream; the zeros past a shorter drive's end add nothing. Once every data drive is finished, the parity
drives are written from these files (packer/same_pass.py) exactly as ``sneakernet parity`` writes them.

Drives written at once (lanes: one process each) add into the same rows: each piece's read, add and write is done
under a POSIX record lock over that piece's range in every row file, so two lanes never lose each other's sum; the
order of the sums does not matter (XOR). A pack stopped while it adds leaves rows of unknown content: a resumed pack
does not trust them (it computes the parity again from the drives, packer/same_pass.py).

Beside the rows, ``fed.pos`` says how far each column's bytes are added (one 8-byte count per column, written by
the thread that adds them, :data:`FINISHED` once the drive is), so that the packing process can write the stripes
every data drive has passed to the parity drives while the lanes go on (packer/ahead.py). Once every data drive is
finished the rows are *sealed* (:meth:`ParityAccumulator.seal`): each block's BLAKE3 is kept in ``row-J.b3``, and
every block written to a parity drive is checked against it (a row damaged or changed in the work directory after
that would otherwise become a wrong parity drive, whose own hashes would agree with it).

The work directory is scratch, like the lanes' spool, not a drive: its files are written with plain calls, never
fsynced, and removed once the parity drives are finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import blake3

from ...errors import DestinationError, IntegrityError
from ...parity.engine import ParityCode, load_backend
from ...parity.layout import BLOCK_SIZE
from ...parity.matrix import MAX_COLUMNS

#: The accumulator's files in its work directory: one per parity row.
ROW_NAME = "row-{row}.acc"
#: Each row's block digests once the rows are sealed (32 bytes of BLAKE3 per block, in stripe order).
SEAL_NAME = "row-{row}.b3"
#: How far each column's stored stream is added into the rows: MAX_COLUMNS little-endian signed 8-byte counts.
FED_NAME = "fed.pos"
#: A column's count once its drive is finished (every byte of it added).
FINISHED = (1 << 63) - 1
#: The records of a parity drive's blocks written ahead of the data drives' end (packer/ahead.py), by row.
AHEAD_NAME = "ahead-{row}.jsonl"
#: Pieces (a chunk's stored bytes each, at most about 4 MiB) waiting for the accumulator's thread: a bound on memory.
QUEUED = 4
#: Map the pages of a range at once (Linux), rather than fault them in one by one.
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)


@dataclass(frozen=True)
class AccumulatorSpec:
    """Where parity accumulates and its shape, as plain data (a lane's process opens its own accumulator)."""

    path: str
    rows: int
    block_size: int = BLOCK_SIZE


class ParityAccumulator:
    """The m parity rows of one group, accumulated from the data drives' stored streams (drive number *n* is
    column *n* − 1: pack puts its data drives in one group while there are at most 251 of them).

    The sums are done by a thread of the accumulator's own (ISA-L, pread and pwrite release the GIL), so that a
    drive's writer goes on while the bytes it handed are added: at most :data:`QUEUED` pieces wait, each a chunk's
    stored bytes (immutable: handed on without a copy)."""

    def __init__(self, spec: AccumulatorSpec, adding: bool = True) -> None:
        """Open the rows of ``spec``; to add into them (with their thread), or only to read their blocks."""
        self.spec = spec
        os.makedirs(spec.path, exist_ok=True)
        self.code = ParityCode(MAX_COLUMNS, spec.rows, load_backend())
        self._files = [
            os.open(os.path.join(spec.path, ROW_NAME.format(row=row)), os.O_RDWR | os.O_CREAT, 0o600)
            for row in range(spec.rows)
        ]
        self._fed_file = os.open(os.path.join(spec.path, FED_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fed_file).st_size < MAX_COLUMNS * 8:
            os.ftruncate(self._fed_file, MAX_COLUMNS * 8)
        self._fed_map = mmap.mmap(self._fed_file, MAX_COLUMNS * 8)
        #: One count per column, shared with the lanes' processes (aligned 8-byte stores: never seen half written).
        self._fed = memoryview(self._fed_map).cast("q")
        self._queue: queue.Queue[tuple[int, int, bytes | memoryview] | None] = queue.Queue(QUEUED)
        self._failed: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="sneakernet-parity-accumulator", daemon=True)
        if adding:
            self._worker.start()

    def column(self, drive: int) -> ColumnFeed | None:
        """The feed of data drive ``drive``'s stored stream; None for a drive past the one group's last column
        (such a shipment's parity is computed from the drives once they are written)."""
        if not 1 <= drive <= MAX_COLUMNS:
            return None
        return ColumnFeed(self, drive - 1)

    def feed(self, column: int, offset: int, data: bytes | memoryview) -> None:
        """Have bytes ``offset`` ... of column ``column``'s stream added into the rows (``data`` is not changed by
        the caller afterwards: bytes, or a view of bytes)."""
        self._raise_failure()
        self._queue.put((column, offset, data))

    def flush(self) -> None:
        """Return once every byte fed so far is added into the rows (its error raised here)."""
        self._queue.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failed is not None:
            if isinstance(self._failed, OSError):
                raise DestinationError(
                    f"cannot add to the parity in {self.spec.path}: {self._failed.strerror}"
                ) from self._failed
            raise self._failed

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._failed is None:
                    column, offset, data = item
                    self.add(column, offset, data)
                    self._fed[column] = offset + len(data)  # in order: the column's bytes before it are added
            except BaseException as exc:  # handed to the writer's thread at its next feed or flush
                self._failed = exc
            finally:
                self._queue.task_done()

    def add(self, column: int, offset: int, data: bytes | memoryview) -> None:
        """Row j's bytes ``offset`` ... ^= A[j][column]·data for every row j (past a row's end so far: zeros).

        Each row's range is summed in place, mapped into memory (no copy in and out, which cost more than the sums):
        first allocated on disk (posix_fallocate: a full disk is an error here, not a SIGBUS in the mapping later),
        then mapped and summed, all under a lock over the pages mapped in every row file, since lanes in other
        processes add into the same rows."""
        size = len(data)
        if not size:
            return
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        length = offset + size - start
        for handle in self._files:
            fcntl.lockf(handle, fcntl.LOCK_EX, length, start)
        try:
            maps = []
            try:
                for handle in self._files:
                    os.posix_fallocate(handle, start, length)
                    maps.append(mmap.mmap(handle, length, mmap.MAP_SHARED | _POPULATE, offset=start))
                views = [memoryview(mapped)[offset - start :] for mapped in maps]
                try:
                    self.code.accumulate(views, column, data)
                finally:
                    for view in views:
                        view.release()
            finally:
                for mapped in maps:
                    mapped.close()
        finally:
            for handle in self._files:
                fcntl.lockf(handle, fcntl.LOCK_UN, length, start)

    def finished(self, column: int) -> None:
        """Column ``column``'s drive is finished: every byte of it is in the rows (after :meth:`flush`)."""
        self._fed[column] = FINISHED

    def fed(self) -> list[int]:
        """How far each column's bytes are in the rows, by column (:data:`FINISHED` for a finished drive)."""
        return self._fed.tolist()

    def blocks(self, row: int, stripes: int, start: int = 0) -> Iterator[memoryview]:
        """Row ``row``'s parity blocks ``start`` ... ``stripes`` − 1 in order, zeros where nothing was added (one
        buffer, reused: each block is valid until the next is asked for)."""
        buffer = memoryview(bytearray(self.spec.block_size))
        for stripe in range(start, stripes):
            yield self.block(row, stripe, buffer)

    def block(self, row: int, stripe: int, buffer: memoryview) -> memoryview:
        """Row ``row``'s block ``stripe`` read into ``buffer`` (a block's size), zeros past what was added."""
        read = os.preadv(self._files[row], [buffer], stripe * self.spec.block_size)
        buffer[read:] = bytes(len(buffer) - read)
        return buffer

    def seal(self, stripes: int) -> None:
        """Every data drive is finished: keep each row's block digests (``row-J.b3``), which every block written to
        a parity drive is then checked against (:meth:`sealed`, :func:`check_block`)."""
        for row in range(self.spec.rows):
            path = os.path.join(self.spec.path, SEAL_NAME.format(row=row))
            with open(path, "wb") as digests:
                for block in self.blocks(row, stripes):
                    digests.write(blake3.blake3(block).digest())

    def sealed(self, row: int) -> Iterator[bytes]:
        """Row ``row``'s block digests as :meth:`seal` kept them, in stripe order (read as they are asked for)."""
        with open(os.path.join(self.spec.path, SEAL_NAME.format(row=row)), "rb") as digests:
            while digest := digests.read(32):
                yield digest

    def close(self) -> None:
        """Stop the thread (what is still queued is dropped: a closed accumulator's rows are not used unless
        :meth:`flush` returned) and close the row files."""
        if self._worker.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
                    self._queue.task_done()
            self._queue.put(None)
            self._worker.join()
        for handle in self._files:
            os.close(handle)
        self._files = []
        if self._fed_file >= 0:
            self._fed.release()
            self._fed_map.close()
            os.close(self._fed_file)
            self._fed_file = -1


def check_block(expected: bytes | None, written: str, row: int, stripe: int, spec: AccumulatorSpec) -> None:
    """A parity block written to a drive (its BLAKE3 ``written``) against the row's sealed digest ``expected``."""
    if expected is None or expected.hex() != written:
        raise IntegrityError(
            f"the parity row {row} in {spec.path} changed after the data drives were finished (stripe {stripe}): "
            "the work directory is damaged or in use by something else; its parity drive is left unfinished: "
            "run the same pack with --resume (it computes the parity from the data drives)"
        )


def empty_rows(spec: AccumulatorSpec) -> None:
    """Rows of length 0 and no column fed, before the first drive adds into them (a stopped run may have left
    some behind)."""
    os.makedirs(spec.path, exist_ok=True)
    for name in [ROW_NAME.format(row=row) for row in range(spec.rows)] + [FED_NAME]:
        os.close(os.open(os.path.join(spec.path, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def remove_rows(spec: AccumulatorSpec) -> None:
    """Delete the row files and the work directory (once the parity drives are finished)."""
    names = [name.format(row=row) for row in range(spec.rows) for name in (ROW_NAME, SEAL_NAME, AHEAD_NAME)]
    for name in [*names, FED_NAME]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(spec.path, name))
    with contextlib.suppress(OSError):  # not empty: something else the user keeps there
        os.rmdir(spec.path)


class ColumnFeed:
    """One data drive's stored stream, handed in order by its writer (:meth:`write`, then :meth:`close` when the
    drive is finished)."""

    def __init__(self, accumulator: ParityAccumulator, column: int) -> None:
        self.accumulator = accumulator
        self.column = column
        #: Bytes handed so far: the drive's stored_bytes once it is finished.
        self.fed = 0

    def write(self, data: bytes | memoryview) -> None:
        """The stream's next bytes (bytes, which the caller does not change afterwards)."""
        if data:
            # Added later, on the accumulator's thread: a buffer the caller may reuse is copied first.
            self.accumulator.feed(self.column, self.fed, data if isinstance(data, bytes) else bytes(data))
            self.fed += len(data)

    def close(self) -> None:
        """The drive is finished: once this returns, all of its bytes are in the rows."""
        self.accumulator.flush()
        self.accumulator.finished(self.column)
