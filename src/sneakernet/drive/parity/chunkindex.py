"""Where a data drive's chunks lie in its stored stream (docs/format.md 19.7.2), as parity sees them: each chunk at
stream offset (sizes of the segments before) + its ``offset``. :class:`ChunkIndex` walks a manifest's chunk and
segment records once, forward, and says which chunks overlap a range: what tells which column of a stripe is
damaged, without holding a drive's chunk list in memory."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ...errors import FormatError
from ...format import ChunkRecord, ManifestRecord, SegmentRecord
from ...format.sealed import PublicChunk


@dataclass(frozen=True)
class StreamChunk:
    """A chunk of a data drive where parity sees it: its bytes ``offset`` ... ``offset + size`` of the stream."""

    chunk: ChunkRecord | PublicChunk
    offset: int

    @property
    def end(self) -> int:
        return self.offset + self.chunk.stored_size


def stream_chunks(records: Iterable[ManifestRecord]) -> Iterator[StreamChunk]:
    """Each chunk of a manifest with its stream offset, in manifest order (which is stream order: segments are
    filled in order and a segment's record follows its last chunk, 6.2). A chunk outside the segment being filled,
    or past the end its record gives, is a FormatError."""
    start = 0  # where the segment being filled starts in the stream
    filling: str | None = None
    for record in records:
        if isinstance(record, ChunkRecord | PublicChunk):  # an encrypted drive read without its key: public chunks
            if filling is None:
                filling = record.segment
            if record.segment != filling:
                raise FormatError(f"chunk {record.id} is in {record.segment} before {filling} has its record")
            yield StreamChunk(record, start + record.offset)
        elif isinstance(record, SegmentRecord):
            if filling not in (None, record.name):
                raise FormatError(f"segment {record.name} has its record while {filling} is being filled")
            start += record.size
            filling = None


class ChunkIndex:
    """Which chunks of one data drive overlap a stream range, by walking its manifest forward once.

    ``records`` gives the manifest's records afresh each time it is called (``lambda: reader.records(only=...)``):
    asking for a range before the last one starts the walk again, so memory holds only the chunks over the ranges
    asked for, never the drive's chunk list. Not for several threads at once (the caller serializes)."""

    def __init__(self, records: Callable[[], Iterable[ManifestRecord]]) -> None:
        self._records = records
        self._walk: Iterator[StreamChunk] = iter(())
        self._window: deque[StreamChunk] = deque()
        self._started = False
        self._done = False
        self._first = 0  # the start of the last range asked for

    def overlapping(self, start: int, end: int) -> list[StreamChunk]:
        """The chunks with a byte in ``[start, end)``, in stream order."""
        if not self._started or start < self._first:
            self._walk = stream_chunks(self._records())
            self._window.clear()
            self._started, self._done = True, False
        self._first = start
        while self._window and self._window[0].end <= start:
            self._window.popleft()
        while not self._done and (not self._window or self._window[-1].end < end):
            found = next(self._walk, None)
            if found is None:
                self._done = True
            elif found.end > start:
                self._window.append(found)
        return [c for c in self._window if c.offset < end and c.end > start]
