"""Filling drives in order with the chunk stream (:class:`ShipmentWriter`), then the catalog on every drive."""

from __future__ import annotations

import itertools
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from .._version import __version__
from ..chunks.stream import EncodedChunk, FileEnd, RawChunk
from ..drive import DriveWriter
from ..drive.catalog import catalog_entry
from ..drive.parity.accumulator import ParityAccumulator
from ..errors import DestinationError, OutOfSpace
from ..format import (
    FORMAT_VERSION_2,
    CatalogEntry,
    ChunkRecord,
    DriveLabel,
    EntryRecord,
    FileRecord,
    ManifestHeader,
    ManifestRecord,
    SegmentRecord,
    drive_label,
    segment_name,
    show_path,
)
from ..io.store import DriveStore, LocalStore
from ..options import PackOptions
from ..progress import NullProgress, Progress, begin_drive
from ..space.budget import RECORD_BOUND, DriveBudget, DriveSpace, Placement, record_bound
from ..space.fill import Fill, Manifest
from ..units import format_size
from .lane_resume import KeptDrive
from .resume import FinishedDrives, Replayed, replayed_records, store_bytes
from .targets import DriveSlot

if TYPE_CHECKING:  # the crypt extra is loaded only by an encrypted pack
    from ..drive.sealed import ShipmentSealing

log = logging.getLogger(__name__)


class Slots(Protocol):
    """Where drive number ``index`` goes (:class:`~sneakernet.packer.targets.DriveTargets`, or a lane's view of
    the same drives); None when no drive is left."""

    def slot(self, index: int, kept: int = 0) -> DriveSlot | None:
        """``kept``: bytes already on the drive that stay (a resumed pack's kept segments), counted as free."""
        ...


@dataclass(frozen=True)
class Lane:
    """The lane a writer fills (format version 2, docs/format.md 19.3): its number, and how it takes the number of
    every drive after its first (the first is the lane's own number) from the process that coordinates the pack."""

    lane: int
    take_number: Callable[[], int]


@dataclass
class _Piece:
    """The part of a file written to the current drive so far."""

    chunk: int
    chunk_offset: int
    offset: int
    length: int


class ShipmentWriter:
    """Fills drives in order with records and chunks: the one fill model (:class:`~sneakernet.space.fill.Fill`)
    decides when a drive is full, and this writer is the drives it fills (opened, finished, named in refusals)."""

    def __init__(
        self, targets: Slots, options: PackOptions, catalog_size: int, shipment: str, created: str,
        open_store: Callable[[str], DriveStore] = LocalStore, lane: Lane | None = None,
        catalog_lines: BinaryIO | None = None,
    ) -> None:  # fmt: skip
        self.targets = targets
        #: The store each drive is written through, from its path.
        self.open_store = open_store
        if lane is None and options.format_version >= 2:
            # Version 2 with one lane (the library's PackOptions(format_version=2)): drives numbered in order.
            lane = Lane(1, itertools.count(2).__next__)
        #: Set: format version 2, the lane this writer fills (docs/format.md 19.3-19.4); None: version 1, as ever.
        self.lane = lane
        #: The number taken for the next drive, when a piece had to name it before the drive opened (next_drive).
        self._next_number: int | None = None
        #: Chunks on the open drive (version 2 numbers chunks from 0 on every drive).
        self._drive_chunks = 0
        #: Pieces so far of each file spanning drives, until its final record (version 2's catalog counts them).
        self.piece_counts: dict[bytes, int] = {}
        #: Each drive's entry lines in :attr:`catalog_lines`, as (start, end) offsets by drive number: a lane's
        #: lines are merged with the other lanes' by drive number at the end.
        self.entry_ranges: dict[int, tuple[int, int]] = {}
        self._entries_from = 0
        self.options = options
        self.catalog_size = catalog_size
        self.shipment = shipment
        self.created = created
        self.labels: list[DriveLabel] = []
        self.checksums: list[list[tuple[str, str]]] = []
        self.drive: DriveWriter | None = None
        self.fill = Fill(self, options.segment_size)
        self.slot: DriveSlot | None = None
        self.pieces: dict[int, _Piece] = {}
        #: The first drive of each file whose pieces span drives, until its final record.
        self.first_drive: dict[bytes, int] = {}
        #: The catalog's entry lines, in order, as JSON Lines (uncompressed, in a temporary file).
        self.catalog_lines: BinaryIO = catalog_lines or tempfile.TemporaryFile(prefix="sneakernet-catalog-")  # noqa: SIM115
        self.paths: dict[int, bytes] = {}
        self.stored_raw_bytes = 0
        #: Each drive's size (before the reserve) by drive number, for the drives this run filled.
        self.sizes: dict[int, int] = {}
        #: Seconds each drive this run filled was open (from its first file to its label), by drive number.
        self.seconds: dict[int, float] = {}
        self._opened = 0.0
        #: Told which drive is being filled (the command line's bar names it).
        self.progress: Progress = NullProgress()
        #: An encrypted shipment's keys and sealing (docs/format.md 19.8; format version 2): each drive's writer
        #: seals its chunks and splits its records.
        self.sealing: ShipmentSealing | None = None
        #: pack --parity: the parity accumulated from every drive's stored bytes as they are written (19.10).
        self.parity: ParityAccumulator | None = None
        #: Called with each drive's writer and label once the drive is finished (a swapping pack keeps its
        #: manifest for the parity drives before the drive leaves the dock).
        self.on_finished: Callable[[DriveWriter, DriveLabel], None] | None = None
        #: A resumed lane's unfinished drive, while it is opened again and its kept records written again.
        self._reopen: KeptDrive | None = None
        self._keeping = False
        #: The finished drive whose records are being taken over (its catalog lines' range is closed at the next).
        self._absorbing: int | None = None

    def take_over(
        self, finished: FinishedDrives, kept: KeptDrive | None = None, next_number: int | None = None
    ) -> Iterator[Replayed]:
        """Continue after the drives an interrupted pack finished: their labels, checksums and catalog entries;
        returns the records to replay (see :func:`~sneakernet.packer.resume.replay`). A lane's records of its
        unfinished drive's complete segments (``kept``) follow, to be written again on that drive as they are
        matched (:meth:`keep`); ``next_number`` is the number the lane's next drive must take, when given."""
        self.labels = list(finished.labels)
        self.checksums = list(finished.checksums)
        replayed = replayed_records(finished, self._absorb, self._absorb_drive)
        return self._then_kept(replayed, kept, next_number)

    def _absorb(self, record: ManifestRecord, drive: int) -> None:
        """A finished drive's record, as its catalog entry (and, in version 2, the count of a file's pieces)."""
        if self.lane is not None and isinstance(record, FileRecord) and not record.final:
            self.piece_counts[record.path] = self.piece_counts.get(record.path, 0) + 1
        self._catalog(catalog_entry(record, drive, self.first_drive))
        self.stored_raw_bytes += store_bytes(record)

    def _absorb_drive(self, label: DriveLabel | None) -> None:
        """Where each finished drive's catalog lines start and end (a lane's are merged by drive number)."""
        if self._absorbing is not None:
            self.entry_ranges[self._absorbing] = (self._entries_from, self.catalog_lines.tell())
        self._absorbing = label.drive if label is not None else None
        self._entries_from = self.catalog_lines.tell()

    def _then_kept(
        self, replayed: Iterator[Replayed], kept: KeptDrive | None, next_number: int | None
    ) -> Iterator[Replayed]:
        chunks = 0
        for item in replayed:
            chunks += isinstance(item.record, ChunkRecord)
            yield item
        # A lane without a drive kept opens its first under its own number (_open_number): no pin is needed.
        self._next_number = next_number if self.labels else None
        if kept is None:
            return
        # The unfinished drive opens again under its number, its manifest written anew from the header up.
        self._reopen = kept
        self.fill.open()
        self._reopen, self._keeping = None, True
        for record in kept.records():
            if isinstance(record, SegmentRecord):
                assert self.drive is not None
                self.drive.keep_segment(record)
                continue
            if isinstance(record, ChunkRecord):
                if self.lane is not None:
                    record = replace(record, id=record.id + chunks)  # the lane's number of it, as replayed_records
                yield Replayed(record, partial(kept.read_back, record), True)
            else:
                yield Replayed(record, _no_chunk, True)
        self._keeping = False
        assert self.fill.space is not None
        # The kept segments are closed: the next chunk opens a segment of its own after them.
        self.fill.space.segment_used = self.options.segment_size

    def keep(self, item: object, record: ManifestRecord) -> None:
        """Write again, on the reopened drive, a record of its kept segments matched with its stream ``item``:
        a chunk is recorded (its bytes are in a kept segment), entries and file ends as when first written."""
        assert self._keeping and self.drive is not None and self.fill.space is not None
        if isinstance(record, ChunkRecord):
            assert isinstance(item, RawChunk)
            space = self.fill.space
            if space.segments == 0 or record.segment != segment_name(space.segments):
                space.segments, space.segment_used = space.segments + 1, 0
            space.segment_used += record.stored_size
            space.data_bytes += record.stored_size
            # Version 2 numbers chunks per drive (19.4); version 1's ids are the stream's, as recorded.
            chunk = replace(record, id=self._drive_chunks) if self.lane is not None else record
            self._drive_chunks += 1
            self.drive.keep_chunk(chunk)
            self.stored_raw_bytes += store_bytes(chunk)
            self._open_pieces(chunk.id, item)
        elif isinstance(record, FileRecord):
            assert isinstance(item, FileEnd) and record.size is not None and record.meta is not None
            written = self.end_file(FileEnd(item.index, record.size, record.blake3, record.meta, record.changed))
            if written != record:
                raise DestinationError(
                    f"cannot resume: {show_path(record.path)} on {self.drive.path} does not replay as it was written: "
                    "start over without --resume"
                )
        else:
            self.add_entry(cast(EntryRecord, record))  # a directory, symlink, hard link or skipped entry

    def _ensure_room(self, stored_size: int, extra_records: int) -> tuple[DriveWriter, Placement | None]:
        """Make the current drive take ``stored_size`` chunk bytes (0: no chunk) and ``extra_records`` manifest
        bytes, finishing it and opening the next when they do not fit (:meth:`Fill.room`)."""
        if self._keeping:
            assert self.drive is not None
            return self.drive, None  # kept records were written on this drive: they fit
        placement = self.fill.room(stored_size, extra_records)
        assert self.drive is not None
        return self.drive, placement

    def add_entry(self, record: EntryRecord) -> None:
        target = getattr(record, "target", b"")
        drive, _ = self._ensure_room(0, record_bound(len(record.path) + len(target)))
        drive.add_record(record)
        self._catalog(catalog_entry(record, drive.header.drive, self.first_drive))

    def add_chunk(self, chunk: EncodedChunk, raw: RawChunk) -> None:
        extra = RECORD_BOUND + sum(record_bound(len(self.paths[s.file_index])) for s in raw.slices)
        drive, placement = self._ensure_room(chunk.stored_size, extra)
        assert placement is not None
        if self.lane is not None:
            chunk = replace(chunk, id=self._drive_chunks)
        self._drive_chunks += 1
        record = drive.add_chunk(chunk, placement.new_segment)
        if chunk.method == "store":
            self.stored_raw_bytes += chunk.raw_size
        self._open_pieces(record.id, raw)

    def _open_pieces(self, chunk_id: int, raw: RawChunk) -> None:
        """The pieces of the files chunk ``chunk_id`` holds: opened on this drive, or grown."""
        for piece in raw.slices:
            open_piece = self.pieces.get(piece.file_index)
            if open_piece is None:
                self.pieces[piece.file_index] = _Piece(chunk_id, piece.chunk_offset, piece.file_offset, piece.length)
                self.fill.pieces_bound += record_bound(len(self.paths[piece.file_index]))
            else:
                open_piece.length += piece.length

    def end_file(self, end: FileEnd) -> FileRecord:
        path = self.paths[end.index]
        # Room first: should the drive fill here, the open piece is closed on it and the final record, empty,
        # goes on the next drive. An open piece's record is already counted in the fill's pieces_bound.
        drive, _ = self._ensure_room(0, 0 if end.index in self.pieces else record_bound(len(path)))
        del self.paths[end.index]
        piece = self.pieces.pop(end.index, None)
        if piece is None:
            piece = _Piece(-1, 0, end.size, 0)
        else:
            self.fill.pieces_bound -= record_bound(len(path))
        record = FileRecord(
            path, piece.offset, piece.length, piece.chunk, piece.chunk_offset, True,
            end.size, end.blake3, end.meta, end.changed,
        )  # fmt: skip
        drive.add_record(record)
        self._catalog(catalog_entry(record, drive.header.drive, self.first_drive))
        return record

    def _catalog(self, entry: CatalogEntry | None) -> None:
        """Spool the catalog's entry lines as entries are written: the catalog needs no second read of manifests."""
        if entry is not None:
            if self.lane is not None:
                # Version 2 counts a file's pieces (19.5): one per drive, the final one here.
                pieces = self.piece_counts.pop(entry.path, 0) + 1 if entry.kind == "file" else 1
                # Built, not dataclasses.replace'd: once per entry, replace's field walk was 1.5% of an encrypted
                # pack's CPU (bench/pack_crypto.py's mix, 5,589 files).
                entry = CatalogEntry(entry.path, entry.kind, entry.size, entry.first_drive, entry.last_drive, pieces)
            self.catalog_lines.write(entry.to_line())

    def finish(self) -> None:
        if self.drive is None:
            if self.labels:
                return  # a resumed pack whose finished drives already held everything
            self.fill.open()
        self.fill.finish()

    def abort(self) -> None:
        if self.drive is not None:
            self.drive.abort()
        self.catalog_lines.close()

    # --- the drives the fill fills (space.fill.Drives) ---

    def open_drive(self) -> tuple[DriveBudget, Manifest]:
        """Open drive ``len(labels) + 1`` in its slot; :class:`OutOfSpace` when no slot is left."""
        index = self._open_number()
        slot = self.targets.slot(index, self._reopen.kept_bytes if self._reopen else 0)
        if slot is None and self.lane is not None:
            raise OutOfSpace(
                f"lane {self.lane.lane} needs another drive and the drives given are used up (its drives so far are "
                "finished): give more or larger drives, or fewer --at-once, and pack again"
            )
        if slot is None:
            raise OutOfSpace(
                f"the {index - 1} drives given are full and data is left to pack; every one of them is finished: "
                "run the same pack with --resume and one more --drive PATH (or a larger drive) to go on"
            )
        header = ManifestHeader(
            shipment=self.shipment,
            drive=index,
            created=self.created,
            chunk_size=self.options.chunk_size,
            segment_size=self.options.segment_size,
            tool=f"sneakernet {__version__}",
            level=self.options.level,
        )
        if self.lane is not None:
            header = replace(header, version=FORMAT_VERSION_2, lane=self.lane.lane, lane_seq=len(self.labels) + 1)
        if self.sealing is not None:
            header = replace(header, cipher=self.sealing.cipher)
        self.slot = slot
        self._drive_chunks = 0
        self._entries_from = self.catalog_lines.tell()
        self.sizes[index] = slot.size
        self._opened = time.monotonic()
        log.info("%s: filling %s (room for %d bytes)", drive_label(index), slot.path, slot.capacity)
        begin_drive(self.progress, drive_label(index))
        feed = self.parity.column(index) if self.parity is not None else None
        self.drive = DriveWriter(
            self.open_store(slot.path), drive_label(index), header, self.options.segment_size, self.sealing, feed
        )
        return DriveBudget(slot.capacity, self.catalog_size), self.drive.records

    def finish_drive(self, space: DriveSpace) -> None:
        """Finish the open drive: the pieces of files that continue on the next drive, its manifest, its label."""
        assert self.drive is not None
        # Pieces of files that continue on the next drive end here; in version 2 each names that drive, whose
        # number is taken now (it opens next).
        next_drive = self._take_next_number() if self.pieces and self.lane is not None else None
        for index, piece in self.pieces.items():
            record = FileRecord(
                self.paths[index], piece.offset, piece.length, piece.chunk, piece.chunk_offset, False,
                next_drive=next_drive,
            )  # fmt: skip
            self.drive.add_record(record)
            self.first_drive.setdefault(record.path, self.drive.header.drive)
            if self.lane is not None:
                self.piece_counts[record.path] = self.piece_counts.get(record.path, 0) + 1
        self.pieces = {}
        self.entry_ranges[self.drive.header.drive] = (self._entries_from, self.catalog_lines.tell())
        self.labels.append(self.drive.finish())
        label = self.labels[-1]
        self.seconds[label.drive] = time.monotonic() - self._opened
        log.info(
            "%s finished at %s: %d segments, %d bytes stored for %d bytes of data",
            label.label, self.drive.path, label.segments, label.stored_bytes, label.raw_bytes,
        )  # fmt: skip
        self.checksums.append(self.drive.checksums)
        if self.on_finished is not None:
            self.on_finished(self.drive, label)
        self.drive = None

    def _open_number(self) -> int:
        """The number of the drive to open: the next in order (version 1); a lane's own number for its first
        drive, else the number taken for it already or the next free one (version 2, 19.3); a resumed lane's
        unfinished drive keeps its own."""
        if self._reopen is not None:
            return self._reopen.number
        if self.lane is None:
            return len(self.labels) + 1
        if not self.labels:
            return self.lane.lane
        number, self._next_number = self._take_next_number(), None
        return number

    def _take_next_number(self) -> int:
        """The next drive's number, taken from the coordinating process once (a lane only)."""
        assert self.lane is not None
        if self._next_number is None:
            self._next_number = self.lane.take_number()
        return self._next_number

    def too_small(self) -> DestinationError:
        assert self.slot is not None
        return DestinationError(
            f"{self.slot.path} cannot take even one chunk with its records in "
            f"{format_size(self.slot.capacity)}: use larger drives or a smaller --chunk-size"
        )


def _no_chunk() -> bytes:
    raise AssertionError("only a chunk's record reads bytes back")
