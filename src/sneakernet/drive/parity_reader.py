"""Reading a parity drive strictly read-only (docs/format.md 19.7.4, 19.7.5): :class:`ParityDriveReader` (drive.json,
then the manifest, streamed with every rule of 19.7.5 and 19.9 checked, then parity blocks), and
:func:`is_parity_drive`, which tells a parity drive from a data drive by its drive.json before either is parsed."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError, NotADrive, UnfinishedDrive
from ..format import DRIVE_LABEL_NAME, MANIFEST_NAME, READERS, ROLE_PARITY, DriveLabel, EndRecord, segment_name
from ..format.fields import json_object
from ..format.parity import (
    CoversRecord,
    ParityHeader,
    ParityRecord,
    ParitySegmentRecord,
    PBlockRecord,
    is_parity_label,
    parity_record_from_json,
)
from ..parity.layout import stripe_count
from .files import holds_shipment, open_drive_file
from .reader import LABEL_LIMIT, _read_record_file


def _label_bytes(path: str) -> bytes | None:
    """drive.json's bytes (at most LABEL_LIMIT + 1), None when there is none or it cannot be read."""
    try:
        with open_drive_file(os.path.join(path, DRIVE_LABEL_NAME)) as handle:
            return handle.read(LABEL_LIMIT + 1)
    except OSError:
        return None


def is_parity_drive(path: str) -> bool:
    """Whether ``path``'s drive.json says it is a parity drive (False for anything else, a damaged one included:
    the data drive reader then says what is wrong)."""
    data = _label_bytes(path)
    if data is None or len(data) > LABEL_LIMIT:
        return False
    try:
        return is_parity_label(json_object(data, DRIVE_LABEL_NAME))
    except FormatError:
        return False


class ParityDriveReader:
    """Reads one parity drive: drive.json first, then the manifest, record by record.

    Guarantee: :meth:`records` yields records of a manifest whose every line parsed and kept the order and bounds of
    19.7.5 and 19.9 so far; once consumed, the manifest was the one drive.json pins (size and BLAKE3), or a
    FormatError was raised."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.isdir(path):
            what = "does not exist" if not os.path.lexists(path) else "is not a directory"
            raise NotADrive(f"{path} {what}: give a parity drive directory such as OUT/parity-0001")
        data = _label_bytes(path)
        if data is None:
            if holds_shipment(path):
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

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def records(self) -> Iterator[ParityRecord]:
        """The header, the ``covers`` records, each segment's ``pblock`` records then its ``segment`` record, the end
        record; any record out of 19.7.5's order or 19.9's bounds is a FormatError where it stands."""
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

        opener = functools.partial(open_drive_file, self.manifest_path)
        size, digest = yield from _read_record_file(opener, what, None, own_header, checked)
        self.covers = order.covers
        if (size, digest) != (self.label.manifest_size, self.label.manifest_blake3):
            raise FormatError(f"{what} does not match the BLAKE3 in its {DRIVE_LABEL_NAME}")
        if order.segments != self.label.segments or order.stored != self.label.stored_bytes:
            raise FormatError(f"{what} lists other segments than its {DRIVE_LABEL_NAME} counts")


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
