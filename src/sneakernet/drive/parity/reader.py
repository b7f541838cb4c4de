"""Reading a parity drive strictly read-only (docs/format.md 19.7.4, 19.7.5): :class:`ParityDriveReader` (drive.json,
then the manifest, streamed with every rule of 19.7.5 and 19.9 checked; what one pass learned as a
:class:`ParityIndex`; its stored stream; its ``pblock`` hashes by stripe through :class:`PBlockLookup`, walked
forward, never all in memory). The one parity drive reader of verify, restore, rebuild and repair; role.py tells a
parity drive from a data drive by its drive.json before either is parsed."""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ...errors import FormatError, IntegrityError, NotADrive, UnfinishedDrive
from ...format import (
    CATALOG_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    READERS,
    ROLE_PARITY,
    DriveLabel,
    EndRecord,
    SegmentRecord,
    segment_name,
)
from ...format.parity import (
    CoversRecord,
    ParityHeader,
    ParityRecord,
    ParitySegmentRecord,
    PBlockRecord,
    parity_record_from_json,
)
from ...io.store import DriveStore, LocalStore
from ...parity.layout import stripe_count
from ..files import holds_shipment, stream_blake3
from ..reader import LABEL_LIMIT, _read_record_file
from ..role import label_bytes
from ..stream import StoredStream


@dataclass
class ParityIndex:
    """What one pass over a parity manifest learned, all of it small: header, covers, segments."""

    header: ParityHeader
    covers: list[CoversRecord]
    segments: list[ParitySegmentRecord]


class ParityDriveReader:
    """Reads one parity drive: drive.json first, then the manifest, record by record.

    Guarantee: :meth:`records` yields records of a manifest whose every line parsed and kept the order and bounds of
    19.7.5 and 19.9 so far; once consumed, the manifest was the one drive.json pins (size and BLAKE3), or a
    FormatError was raised."""

    def __init__(self, path: str, store: DriveStore | None = None) -> None:
        self.path = path
        #: The drive's files, read through its store (a local directory unless one is given).
        self.store: DriveStore = store if store is not None else LocalStore(path)
        root = self.store.stat("")
        if root is None or not stat.S_ISDIR(root.mode):
            what = "does not exist" if root is None else "is not a directory"
            raise NotADrive(f"{path} {what}: give a parity drive directory such as OUT/parity-0001")
        data = label_bytes(self.store)
        if data is None:
            if holds_shipment(path, self.store):
                raise UnfinishedDrive(
                    f"{path} is an unfinished drive: it has no {DRIVE_LABEL_NAME}, it was never finished"
                )
            raise NotADrive(f"{path} is not a sneakernet drive: it has no {DRIVE_LABEL_NAME}")
        if len(data) > LABEL_LIMIT:
            raise FormatError(f"{path}/{DRIVE_LABEL_NAME} is larger than any drive.json sneakernet writes")
        #: The bytes of drive.json, as B3SUMS hashes them.
        self.label_bytes = data
        self.label = DriveLabel.from_bytes(data, READERS)
        if self.label.role != ROLE_PARITY:
            raise FormatError(f"{path} is a data drive, not a parity drive")
        self.header: ParityHeader | None = None
        self.covers: list[CoversRecord] = []
        self.manifest_path = os.path.join(path, MANIFEST_NAME)
        self._index: ParityIndex | None = None

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def open(self, name: str) -> BinaryIO:
        """File ``name`` of the drive, opened for reading through its store (an OSError when it cannot be)."""
        return self.store.open(name)

    def hash_file(self, name: str) -> tuple[int, str]:
        """``(size, BLAKE3 hex)`` of file ``name`` of the drive, read whole (an OSError when it cannot be)."""
        with self.store.open(name) as handle:
            return stream_blake3(handle)

    @property
    def catalog(self) -> str:
        """The path of its copy of the shipment's catalog (byte-identical to the data drives')."""
        return self.file(CATALOG_NAME)

    def records(self, only: tuple[str, ...] | None = None) -> Iterator[ParityRecord]:
        """The header, the ``covers`` records, each segment's ``pblock`` records then its ``segment`` record, the end
        record; any record out of 19.7.5's order or 19.9's bounds is a FormatError where it stands. With ``only``
        (record types), just those records, parsed but not checked for order (which needs them all)."""
        what = f"the manifest of {self.path}"
        order = _Order(what)

        def own_header(raw: dict[str, Any]) -> ParityHeader:
            header = ParityHeader.from_json(raw)
            label = self.label
            if (header.shipment, header.drive, header.version, header.group, header.row) != (
                label.shipment,
                label.drive,
                label.version,
                label.group,
                label.row,
            ):
                raise FormatError(f"{what} belongs to another shipment, drive or version than its {DRIVE_LABEL_NAME}")
            self.header = order.header = header
            return header

        def checked(raw: dict[str, Any]) -> ParityRecord:
            return order.check(parity_record_from_json(raw))

        opener = functools.partial(self.store.open, MANIFEST_NAME)
        parse = parity_record_from_json if only is not None else checked
        size, digest = yield from _read_record_file(opener, what, only, own_header, parse)
        if (size, digest) != (self.label.manifest_size, self.label.manifest_blake3):
            raise IntegrityError(f"{what} does not match the BLAKE3 in its {DRIVE_LABEL_NAME}")
        if only is not None:
            return
        self.covers = order.covers
        if order.segments != self.label.segments or order.stored != self.label.stored_bytes:
            raise FormatError(f"{what} lists other segments than its {DRIVE_LABEL_NAME} counts")

    def index(self) -> ParityIndex:
        """The header, covers and segments, after one whole pass of :meth:`records` (which checks their order and
        counts against the header and drive.json)."""
        if self._index is None:
            segments = [r for r in self.records() if isinstance(r, ParitySegmentRecord)]
            assert self.header is not None
            self._index = ParityIndex(self.header, self.covers, segments)
        return self._index

    def stream(self) -> StoredStream:
        """Its stored stream: the parity blocks of its row, stripe after stripe."""
        segments = [SegmentRecord(s.name, s.size, s.blake3, s.blocks) for s in self.index().segments]
        return StoredStream(self.path, self.label.label, segments, self.store)

    def pblocks(self) -> PBlockLookup:
        return PBlockLookup(self)


class _Order:
    """19.7.5's order and 19.9's bounds, checked record by record as the manifest streams."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.header: ParityHeader | None = None
        self.covers: list[CoversRecord] = []
        self.stripe = 0
        self.blocks = 0  # pblock records since the last segment record
        self.segments = 0
        self.stored = 0

    def fail(self, why: str) -> FormatError:
        return FormatError(f"{self.what} {why}")

    def check(self, record: ParityRecord) -> ParityRecord:
        header = self.header
        assert header is not None
        if isinstance(record, CoversRecord):
            if self.stripe or self.segments:
                raise self.fail("has a covers record after its parity blocks")
            if record.column != len(self.covers) or (self.covers and record.drive <= self.covers[-1].drive):
                raise self.fail("has covers records out of column or drive order")
            self.covers.append(record)
        elif isinstance(record, PBlockRecord):
            if len(self.covers) != header.data_drives:
                raise self.fail(f"covers {len(self.covers)} data drives, its header says {header.data_drives}")
            if record.stripe != self.stripe or record.stripe >= header.stripes:
                raise self.fail(f"has a pblock record for stripe {record.stripe} where stripe {self.stripe} is due")
            if self.stripe == 0 and header.stripes != stripe_count(
                (c.stored_bytes for c in self.covers), header.block_size
            ):
                raise self.fail("states a stripe count that is not that of the drives it covers")
            self.stripe += 1
            self.blocks += 1
        elif isinstance(record, ParitySegmentRecord):
            per_segment = header.segment_size // header.block_size
            last = self.stripe == header.stripes
            if record.name != segment_name(self.segments + 1) or record.blocks != self.blocks:
                raise self.fail(f"has a segment record {record.name} out of order or not after its own blocks")
            if not 0 < record.blocks <= per_segment or (record.blocks < per_segment and not last):
                raise self.fail(f"has a segment {record.name} of {record.blocks} blocks where {per_segment} are due")
            if record.size != record.blocks * header.block_size:
                raise self.fail(f"has a segment {record.name} whose size is not its blocks'")
            self.segments += 1
            self.stored += record.size
            self.blocks = 0
        elif isinstance(record, EndRecord):
            if len(self.covers) != header.data_drives:
                raise self.fail(f"covers {len(self.covers)} data drives, its header says {header.data_drives}")
            if self.stripe != header.stripes or self.blocks:
                raise self.fail(f"has {self.stripe} parity blocks in segments, its header says {header.stripes}")
            if not self.stripe and header.stripes != stripe_count(
                (c.stored_bytes for c in self.covers), header.block_size
            ):
                raise self.fail("states a stripe count that is not that of the drives it covers")
        return record


class PBlockLookup:
    """The ``pblock`` hash of a stripe, by walking the manifest forward (asked back, the walk starts again): memory
    holds one record, not 1.9 million of an 8 TB parity drive. A manifest that fails its own checks as the walk
    goes gives no hash (None) from there on: the block is then used unverified, and what is rebuilt from it is
    still checked chunk by chunk against the data drive's hashes."""

    def __init__(self, reader: ParityDriveReader) -> None:
        self.reader = reader
        self._walk: Iterator[ParityRecord] | None = None
        self._next = 0
        self._last: PBlockRecord | None = None

    def __call__(self, stripe: int) -> str | None:
        if self._last is not None and self._last.stripe == stripe:
            return self._last.blake3
        if self._walk is None or stripe < self._next:
            self._walk = self.reader.records(only=(PBlockRecord.TYPE,))
            self._next = 0
        try:
            for record in self._walk:
                if isinstance(record, PBlockRecord):
                    self._next = record.stripe + 1
                    if record.stripe == stripe:
                        self._last = record
                        return record.blake3
                    if record.stripe > stripe:
                        break
        except FormatError:
            self._walk = iter(())
        return None
