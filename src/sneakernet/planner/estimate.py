"""The drives a plan fills: its chunks, their stored sizes estimated from the sample, placed on drives as pack's
ShipmentWriter places them (space/), with manifests estimated from record sizes (manifest.py)."""

from __future__ import annotations

import math

from ..codec import stored_size_bound
from ..errors import DestinationError
from ..space.budget import RECORD_BOUND, DriveBudget, DriveSpace
from ..units import format_size
from .manifest import CHUNK_LINE, END_LINE, HEADER_LINE, SEGMENT_LINE, ManifestEstimate
from .report import DriveFill
from .sample import Sample
from .walk import EVENT_LARGE, EVENT_RECORDS, EventSpool


class EstimatedFill:
    """Drives filled in order as pack's ShipmentWriter fills them, with estimated chunk sizes.

    It is fed batches of records and chunks, as pack writes them: the records of the entries between two chunks
    (directories, symlinks, the ends of the files of the chunk before) are one batch, checked for room at once.
    """

    def __init__(self, budget: DriveBudget, segment_size: int, drive_size: int) -> None:
        self.budget = budget
        self.segment_size = segment_size
        self.drive_size = drive_size
        self.drives: list[DriveFill] = []
        self.space: DriveSpace | None = None
        self.manifest = ManifestEstimate()
        self.raw_bytes = 0
        #: The records (bound, lines) of the pieces of files the last chunk holds, until their ends are written:
        #: a drive finished in between writes a piece record for each.
        self.pieces_bound = 0
        self.pieces_lines = 0
        #: Manifest bytes the open drive takes beside its data: see :meth:`_records_fit`.
        self.record_room = 0

    def _room(self, stored: int, extra: int) -> None:
        for attempt in range(2):
            if self.space is None:
                self.space = DriveSpace(self.budget, self.segment_size)
                self.manifest = ManifestEstimate()
                self.manifest.add(HEADER_LINE)
            bound = self.manifest.size_bound(extra + self.pieces_bound + 2 * RECORD_BOUND)
            if stored:
                placement = self.space.place(stored, bound)
                if placement is not None:
                    if placement.new_segment and placement.segment > 1:
                        self.manifest.add(SEGMENT_LINE)
                    self._note_room(self.space)
                    return
            elif self.space.fits(bound):
                self._note_room(self.space)
                return
            if attempt == 1 or (self.space.empty and self.manifest.records <= 1):
                raise DestinationError(
                    f"drive size too small: a drive of {format_size(self.drive_size)} cannot take even one chunk "
                    "with its records: use larger drives or a smaller --chunk-size"
                )
            self._finish()

    def _note_room(self, space: DriveSpace) -> None:
        self.record_room = self.budget.capacity - space.data_bytes - self.budget.overhead(space.segments, 0)

    def _records_fit(self, extra: int) -> bool:
        """``space.fits(manifest.size_bound(...))`` as :meth:`_room` asks it, from :attr:`record_room`: the
        drive's overhead is linear in its manifest bound."""
        if self.space is None:
            return False
        pending = self.manifest.unflushed + extra + self.pieces_bound + 2 * RECORD_BOUND
        return self.manifest.base + pending + pending // 1024 <= self.record_room

    def records(self, lines: int, bound: int) -> None:
        """A batch of records taking ``lines`` bytes, at most ``bound``; it ends the open pieces."""
        if not self._records_fit(bound):
            self._room(0, bound)
        self.manifest.add(lines)
        self.pieces_bound = self.pieces_lines = 0

    def chunk(self, stored: int, raw_size: int, pieces_bound: int, pieces_lines: int) -> None:
        """A chunk of ``stored`` bytes whose files' records take at most ``pieces_bound`` bytes (``pieces_lines``
        as the piece records of a drive finished before their ends)."""
        self._room(stored, RECORD_BOUND + pieces_bound)
        self.manifest.add(CHUNK_LINE)
        self.raw_bytes += raw_size
        self.pieces_bound, self.pieces_lines = pieces_bound, pieces_lines

    def _finish(self) -> None:
        assert self.space is not None
        if self.pieces_lines:
            self.manifest.add(self.pieces_lines)
        self.pieces_bound = self.pieces_lines = 0
        if self.space.segments:
            self.manifest.add(SEGMENT_LINE)
        self.manifest.add(END_LINE)
        used = self.space.data_bytes + self.budget.overhead(self.space.segments, self.manifest.final_size())
        self.drives.append(
            DriveFill(
                len(self.drives) + 1, self.space.data_bytes, self.raw_bytes, self.space.segments, used,
                used / self.drive_size,
            )
        )  # fmt: skip
        self.space, self.raw_bytes = None, 0

    def close(self) -> None:
        if self.space is None and not self.drives:
            self._room(0, 0)
        if self.space is not None:
            self._finish()


def place(events: EventSpool, sample: Sample, fills: tuple[EstimatedFill, EstimatedFill], chunk_size: int) -> int:
    """Place the walk's chunks and records on both fills: the first with the sample's estimate of each chunk,
    the second as if nothing compressed. Returns the estimated stored bytes."""
    estimated, worst = fills
    stored_bytes = 0
    for kind, a, b, c, d in events:
        if kind == EVENT_RECORDS:
            estimated.records(a, b)
            worst.records(a, b)
            continue
        # A large file's chunks are its own, chunk_size bytes each (chunking.py); a group is one chunk.
        step = chunk_size if kind == EVENT_LARGE else b
        for offset in range(0, b, step):
            raw_size = min(step, b - offset)
            estimate, stored_only = sample.estimate(a + offset, raw_size)
            bound = stored_size_bound(raw_size)
            stored = bound if stored_only else min(math.ceil(estimate), bound)
            stored_bytes += stored
            estimated.chunk(stored, raw_size, c, d)
            worst.chunk(bound, raw_size, c, d)
    estimated.close()
    worst.close()
    return stored_bytes
