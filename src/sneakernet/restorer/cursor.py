"""Reading a drive's raw stream: the chunks' checked raw bytes for increasing ranges, read ahead on a pool."""

from __future__ import annotations

import errno
import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..drive import ChunkMap, DriveReader
from ..errors import DriveUnreadable, FormatError
from ..format import ChunkRecord

#: What a chunk read failing with these says: the drive itself fails (pulled out, a failing disk, a mount gone),
#: not one chunk. Its work stops there (DriveUnreadable) instead of failing each file after it in turn.
DEVICE_ERRORS = frozenset({errno.EIO, errno.ENXIO, errno.ENODEV, errno.ENOTCONN, errno.ESTALE, errno.ETIMEDOUT})


class ChunkCursor:
    """Hands out the raw bytes of a drive's chunks for increasing ranges.

    Each chunk read is checked (stored BLAKE3, a bounded decode, raw BLAKE3); a damaged one gives None. With
    ``prefetch`` (a thread pool), the next chunks are read, checked and decoded ahead on all cores while files are
    written; without it (a partial restore), only chunks that are asked for are read.
    """

    def __init__(
        self, reader: DriveReader, chunk_map: ChunkMap, prefetch: ThreadPoolExecutor | None = None, depth: int = 0
    ) -> None:
        self.reader = reader
        self.map = chunk_map
        self.records: Iterator[ChunkRecord] = (
            r for r in reader.records(only=(ChunkRecord.TYPE,)) if isinstance(r, ChunkRecord)
        )
        self.pool = prefetch
        self.depth = depth if prefetch else 0
        self.ahead: deque[tuple[ChunkRecord, Future[bytes | None] | None]] = deque()
        self.index = -1
        self.current: ChunkRecord | None = None
        self.future: Future[bytes | None] | None = None
        self.raw: bytes | None = None
        self.loaded = -1

    def slices(self, start: int, end: int) -> Iterator[tuple[int, memoryview | None]]:
        """``(position, bytes or None)`` covering ``[start, end)`` of the drive's raw stream, in order."""
        offsets = self.map.raw_offsets
        position = start
        while position < end:
            self._seek(position)
            chunk_start, chunk_end = offsets[self.index], offsets[self.index + 1]
            stop = min(end, chunk_end)
            raw = self._load()
            yield position, None if raw is None else memoryview(raw)[position - chunk_start : stop - chunk_start]
            position = stop

    def _seek(self, position: int) -> None:
        offsets = self.map.raw_offsets
        while self.index < 0 or offsets[self.index + 1] <= position:
            self.current, self.future = self.ahead.popleft() if self.ahead else (next(self.records), None)
            self.index += 1

    def _load(self) -> bytes | None:
        if self.loaded != self.index:
            assert self.current is not None
            self.raw = self.future.result() if self.future is not None else self._read(self.current)
            self.loaded = self.index
            self._top_up()
        return self.raw

    def _top_up(self) -> None:
        while self.pool is not None and len(self.ahead) < self.depth:
            record = next(self.records, None)
            if record is None:
                return
            self.ahead.append((record, self.pool.submit(self._read, record)))

    def _read(self, record: ChunkRecord) -> bytes | None:
        try:
            # Every byte restore uses is checked again in its file's whole-file BLAKE3.
            return self.reader.read_chunk(record, check_raw=False)
        except FormatError as exc:
            cause = exc.__cause__  # the reader's OSError, when reading failed (not the bytes read)
            if isinstance(cause, OSError) and cause.errno in DEVICE_ERRORS:
                raise DriveUnreadable(
                    f"reading {record.segment} on {self.reader.path} failed ({cause.strerror})"
                ) from cause
            return None


def windows(records: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """``records`` in lists of ``size`` (the last one shorter)."""
    while window := list(itertools.islice(records, size)):
        yield window
