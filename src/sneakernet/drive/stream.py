"""A data drive's stored stream (docs/format.md 19.7.2): its segment files, in order, as one byte range, every byte at
or past its end counting as zero. Parity is computed over it, and rebuilt into it.

:class:`StoredStream` reads it front to back in blocks, and checks each segment against the BLAKE3 its manifest
records as it passes (hash in the same pass as the read: parity is never finished over a damaged drive without
the damage being found). :meth:`StoredStream.read_at` reads any range (what a rebuild of one stripe needs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import BinaryIO

import blake3

from ..errors import FormatError, IntegrityError
from ..format import SegmentRecord
from ..io.store import DriveStore, LocalStore


class StoredStream:
    """The stored stream of the drive at ``path`` whose manifest lists ``segments`` (in order)."""

    def __init__(
        self, path: str, label: str, segments: Sequence[SegmentRecord], store: DriveStore | None = None
    ) -> None:
        self.path = path
        #: The drive's files, read through its store (a local directory unless one is given).
        self.store: DriveStore = store if store is not None else LocalStore(path)
        self.label = label
        self.segments = list(segments)
        #: The stream's length: the sum of its segments' sizes (``stored_bytes`` of its drive.json).
        self.length = sum(segment.size for segment in self.segments)
        self._starts: list[int] = []
        start = 0
        for segment in self.segments:
            self._starts.append(start)
            start += segment.size
        # The sequential reader's place: the segment open, its hasher, the bytes read of it.
        self._index = 0
        self._handle: BinaryIO | None = None
        self._hasher = blake3.blake3()
        self._read = 0

    def read_into(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with the stream's next bytes (zeros past its end); return how many came from the stream.
        Each segment's BLAKE3 and size are checked once its last byte is read: IntegrityError when they are not its
        manifest's, FormatError when it cannot be read."""
        filled = 0
        while filled < len(buffer) and self._index < len(self.segments):
            segment = self.segments[self._index]
            if self._handle is None:
                self._handle = self._open(segment)
                self._hasher = blake3.blake3()
                self._read = 0
            want = min(len(buffer) - filled, segment.size - self._read)
            target = buffer[filled : filled + want]
            got = self._readinto(self._handle, target, segment)
            if got < want:
                raise IntegrityError(
                    f"{segment.name} on {self.label} ({self.path}) is shorter than its manifest records: "
                    "the drive is damaged"
                )
            self._hasher.update(target)
            self._read += got
            filled += got
            if self._read == segment.size:
                self._end_segment(segment)
        buffer[filled:] = bytes(len(buffer) - filled)
        return filled

    def _end_segment(self, segment: SegmentRecord) -> None:
        assert self._handle is not None
        extra = self._handle.read(1)
        self._handle.close()
        self._handle = None
        self._index += 1
        if extra or self._hasher.hexdigest() != segment.blake3:
            raise IntegrityError(
                f"{segment.name} on {self.label} ({self.path}) is damaged (BLAKE3 mismatch): repair or re-pack "
                "that drive first, parity over it would keep the damage"
            )

    def check_end(self) -> None:
        """After the last :meth:`read_into`: every segment was read to its end, and so checked (empty ones too)."""
        while self._index < len(self.segments):
            segment = self.segments[self._index]
            if self._handle is None:
                self._handle = self._open(segment)
                self._hasher = blake3.blake3()
                self._read = 0
            if self._read != segment.size:
                raise AssertionError(f"{segment.name} of {self.label} was not read to its end")
            self._end_segment(segment)

    def read_at(self, offset: int, buffer: memoryview) -> int:
        """Fill ``buffer`` with the stream's bytes from ``offset`` on (zeros past its end), unchecked: the caller
        checks the chunks it takes from them. Return how many came from the stream; FormatError when a segment
        cannot be read or is shorter than its manifest records."""
        filled = 0
        index = self._segment_at(offset)
        while filled < len(buffer) and index < len(self.segments):
            segment = self.segments[index]
            within = offset + filled - self._starts[index]
            want = min(len(buffer) - filled, segment.size - within)
            with self._open(segment) as handle:
                handle.seek(within)
                got = self._readinto(handle, buffer[filled : filled + want], segment)
            if got < want:
                raise FormatError(f"{segment.name} on {self.label} ({self.path}) is shorter than its manifest records")
            filled += got
            index += 1
        buffer[filled:] = bytes(len(buffer) - filled)
        return filled

    def _segment_at(self, offset: int) -> int:
        """The index of the segment holding stream byte ``offset`` (len(segments) past the end)."""
        low, high = 0, len(self.segments)
        while low < high:
            middle = (low + high) // 2
            if self._starts[middle] + self.segments[middle].size <= offset:
                low = middle + 1
            else:
                high = middle
        return low

    def _open(self, segment: SegmentRecord) -> BinaryIO:
        try:
            return self.store.open(segment.name)
        except OSError as exc:
            raise FormatError(f"cannot read {segment.name} on {self.label} ({self.path}): {exc.strerror}") from exc

    def _readinto(self, handle: BinaryIO, target: memoryview, segment: SegmentRecord) -> int:
        """Read into all of ``target`` unless the file ends first (a short read is retried)."""
        done = 0
        try:
            while done < len(target):
                got = handle.readinto(target[done:])  # type: ignore[attr-defined]
                if not got:
                    break
                done += got
        except OSError as exc:
            raise FormatError(f"cannot read {segment.name} on {self.label} ({self.path}): {exc.strerror}") from exc
        return done

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
