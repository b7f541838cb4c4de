"""The one fill model: drives filled in order, each under its budget, with records and chunks as pack writes them.

pack feeds it real sizes (each chunk's stored bytes, its manifest's :class:`~sneakernet.format.container.RecordWriter`),
plan feeds it estimates (stored sizes from the sample, a manifest grown from record sizes); which drive a chunk
goes on, when a drive is finished and when a drive is too small for even one chunk are decided here alone, so
plan's drive count can differ from pack's only by its estimates. Pure logic, no I/O: the drives themselves (a
:class:`DriveWriter` or a planned drive) are the caller's, behind :class:`Drives`.
"""

from __future__ import annotations

from typing import Protocol

from .budget import RECORD_BOUND, DriveBudget, DriveSpace, Placement


class Manifest(Protocol):
    """What the fill asks of a drive's manifest: its records so far, and its size on disk grown by ``extra``."""

    @property
    def records(self) -> int: ...

    def size_bound(self, extra: int) -> int: ...


class Drives(Protocol):
    """The drives a :class:`Fill` fills, in order: it opens the next when the open one is full."""

    def open_drive(self) -> tuple[DriveBudget, Manifest]:
        """Open the next drive: its budget and its (empty) manifest."""
        ...

    def finish_drive(self, space: DriveSpace) -> None:
        """Finish the open drive, filled as ``space`` says."""
        ...

    def too_small(self) -> Exception:
        """The error raised when a drive, empty, cannot take even one chunk with its records."""
        ...


class Fill:
    """Makes room for chunks and records on the open drive, finishing it and opening the next when they do not fit.

    The manifest may still need, beyond what is written, the records of the open pieces (files with bytes on this
    drive whose final records are not written: :attr:`pieces_bound`), a segment record and the end record: every
    check reserves them.
    """

    def __init__(self, drives: Drives, segment_size: int) -> None:
        self.drives = drives
        self.segment_size = segment_size
        self.space: DriveSpace | None = None
        self.manifest: Manifest | None = None
        #: The record bounds of the open pieces, summed (the caller keeps it as pieces open and close).
        self.pieces_bound = 0

    def closing_bound(self) -> int:
        return self.pieces_bound + 2 * RECORD_BOUND

    def open(self) -> DriveSpace:
        """The open drive's space, opening the next drive if none is open."""
        if self.space is None:
            budget, self.manifest = self.drives.open_drive()
            self.space = DriveSpace(budget, self.segment_size)
        return self.space

    def room(self, stored_size: int, extra_records: int) -> Placement | None:
        """Make the open drive take ``stored_size`` chunk bytes (0: no chunk) and ``extra_records`` manifest bytes,
        finishing it and opening the next when they do not fit; the chunk's placement (None without a chunk).

        Raises :meth:`Drives.too_small` when an empty drive cannot take them.
        """
        for attempt in range(2):
            space = self.open()
            assert self.manifest is not None
            bound = self.manifest.size_bound(extra_records + self.closing_bound())
            if stored_size:
                placement = space.place(stored_size, bound)
                if placement is not None:
                    return placement
            elif space.fits(bound):
                return None
            if attempt == 1 or (space.empty and self.manifest.records <= 1):
                raise self.drives.too_small()
            self.finish()
        raise AssertionError("unreachable")

    def finish(self) -> None:
        """Finish the open drive; the next :meth:`room` opens another."""
        assert self.space is not None
        self.drives.finish_drive(self.space)
        self.space = self.manifest = None
        self.pieces_bound = 0
