"""The drives a plan fills: its chunks, their stored sizes estimated from the sample, placed on drives as pack's
ShipmentWriter places them (space/), with manifests estimated from record sizes (manifest.py)."""

from __future__ import annotations

import math

from ..chunks.compress import stored_size_bound
from ..errors import DestinationError
from ..format.sealed import TAG_SIZE
from ..space.budget import RECORD_BOUND, DriveBudget, DriveSpace
from ..space.fill import Fill
from ..units import format_size
from .manifest import CHUNK_LINE, END_LINE, HEADER_LINE, SEGMENT_LINE, ManifestEstimate
from .report import DriveFill
from .sample import Sample
from .walk import EVENT_LARGE, EVENT_RECORDS, EventSpool


class EstimatedFill:
    """Planned drives, filled by the one fill model (:class:`~sneakernet.space.fill.Fill`) with estimated chunk
    sizes and manifests; :attr:`drives` are the drives finished.

    It is fed batches of records and chunks, as pack writes them: the records of the entries between two chunks
    (directories, symlinks, the ends of the files of the chunk before) are one batch, checked for room at once.
    """

    def __init__(self, budget: DriveBudget, segment_size: int, drive_size: int, encrypted: bool = False) -> None:
        self.budget = budget
        #: An encrypted shipment's (docs/format.md 19.8): each chunk's tag, a public manifest and a sealed index.
        self.encrypted = encrypted
        self.drive_size = drive_size
        self.drives: list[DriveFill] = []
        self.fill = Fill(self, segment_size)
        self.manifest = ManifestEstimate()
        self.raw_bytes = 0
        #: The piece records of the files the last chunk holds, until their ends are written: a drive finished in
        #: between writes them (their bound is the fill's ``pieces_bound``).
        self.pieces_lines = 0
        #: Manifest bytes the open drive takes beside its data: see :meth:`_records_fit`.
        self.record_room = 0

    # --- the drives the fill fills (space.fill.Drives) ---

    def open_drive(self) -> tuple[DriveBudget, ManifestEstimate]:
        self.manifest = ManifestEstimate(copies=2 if self.encrypted else 1)
        self.manifest.add(HEADER_LINE)
        return self.budget, self.manifest

    def finish_drive(self, space: DriveSpace) -> None:
        if self.pieces_lines:
            self.manifest.add(self.pieces_lines)
        self.pieces_lines = 0
        if space.segments:
            self.manifest.add(SEGMENT_LINE)
        self.manifest.add(END_LINE)
        used = space.data_bytes + self.budget.overhead(space.segments, self.manifest.final_size())
        self.drives.append(
            DriveFill(
                len(self.drives) + 1, space.data_bytes, self.raw_bytes, space.segments, used, used / self.drive_size
            )
        )
        self.raw_bytes = 0

    def too_small(self) -> DestinationError:
        return DestinationError(
            f"drive size too small: a drive of {format_size(self.drive_size)} cannot take even one chunk "
            "with its records: use larger drives or a smaller --chunk-size"
        )

    # --- what the walk's events feed ---

    def _room(self, stored: int, extra: int) -> None:
        placement = self.fill.room(stored, extra)
        if placement is not None and placement.new_segment and placement.segment > 1:
            self.manifest.add(SEGMENT_LINE)
        space = self.fill.space
        assert space is not None
        self.record_room = self.budget.capacity - space.data_bytes - self.budget.overhead(space.segments, 0)

    def _records_fit(self, extra: int) -> bool:
        """Whether the fill takes ``extra`` record bytes without a new drive, as :meth:`Fill.room` decides it, from
        :attr:`record_room`: the drive's overhead is linear in its manifest bound (this runs for every batch)."""
        if self.fill.space is None:
            return False
        pending = self.manifest.unflushed + extra + self.fill.closing_bound()
        return self.manifest.base + pending + pending // 1024 <= self.record_room

    def records(self, lines: int, bound: int) -> None:
        """A batch of records taking ``lines`` bytes, at most ``bound``; it ends the open pieces."""
        if not self._records_fit(bound):
            self._room(0, bound)
        self.manifest.add(lines)
        self.fill.pieces_bound = self.pieces_lines = 0

    def chunk(self, stored: int, raw_size: int, pieces_bound: int, pieces_lines: int) -> None:
        """A chunk of ``stored`` bytes whose files' records take at most ``pieces_bound`` bytes (``pieces_lines``
        as the piece records of a drive finished before their ends)."""
        stored += TAG_SIZE if self.encrypted else 0
        self._room(stored, RECORD_BOUND + pieces_bound)
        self.manifest.add(CHUNK_LINE)
        self.raw_bytes += raw_size
        self.fill.pieces_bound, self.pieces_lines = pieces_bound, pieces_lines

    def close(self) -> None:
        if self.fill.space is None and not self.drives:
            self._room(0, 0)
        if self.fill.space is not None:
            self.fill.finish()


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
        # A large file's chunks are its own, chunk_size bytes each (chunks/chunker.py); a group is one chunk.
        step = chunk_size if kind == EVENT_LARGE else b
        for offset in range(0, b, step):
            raw_size = min(step, b - offset)
            estimate, stored_only = sample.estimate(a + offset, raw_size)
            bound = stored_size_bound(raw_size)
            stored = bound if stored_only else min(math.ceil(estimate), bound)
            stored_bytes += stored + (TAG_SIZE if estimated.encrypted else 0)
            estimated.chunk(stored, raw_size, c, d)
            worst.chunk(bound, raw_size, c, d)
    estimated.close()
    worst.close()
    return stored_bytes
