"""Reading a parity drive strictly read-only (docs/format.md 19.7.4, 19.7.5): :class:`ParityDriveReader` (drive.json,
then the manifest: header, ``covers``, ``pblock`` and ``segment`` records), its stored stream, its ``pblock`` hashes
by stripe (:class:`PBlockLookup`, walked forward, never all in memory), and :func:`drive_role`, which tells a parity
drive from a data drive by its drive.json before either's reader is opened."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import FormatError, IntegrityError, NotADrive
from ..format import CATALOG_NAME, DRIVE_LABEL_NAME, MANIFEST_NAME, ROLE_PARITY, DriveLabel, SegmentRecord
from ..format.parity import (
    PARITY_VERSION,
    CoversRecord,
    ParityHeader,
    ParityRecord,
    ParitySegmentRecord,
    PBlockRecord,
    is_parity_label,
    parity_record_from_json,
)
from .files import open_drive_file
from .reader import LABEL_LIMIT, _read_record_file
from .stream import StoredStream


def _label_bytes(path: str) -> bytes:
    label_path = os.path.join(path, DRIVE_LABEL_NAME)
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.lexists(path) else "is not a directory"
        raise NotADrive(f"{path} {what}: give a drive directory such as OUT/parity-0001")
    try:
        with open_drive_file(label_path) as handle:
            data = handle.read(LABEL_LIMIT + 1)
    except FileNotFoundError:
        raise NotADrive(f"{path} is not a finished sneakernet drive: it has no {DRIVE_LABEL_NAME}") from None
    except OSError as exc:
        raise FormatError(f"cannot read {label_path}: {exc.strerror}") from exc
    if len(data) > LABEL_LIMIT:
        raise FormatError(f"{label_path} is larger than any drive.json sneakernet writes")
    return data


def drive_role(path: str) -> str:
    """``"parity"`` when the drive at ``path`` is a parity drive by its drive.json, else ``"data"`` (whose reader
    then checks everything else, a missing or damaged drive.json included)."""
    try:
        raw: Any = json.loads(_label_bytes(path))
    except (FormatError, NotADrive, OSError, ValueError, RecursionError):
        return "data"
    return "parity" if is_parity_label(raw) else "data"


@dataclass
class ParityIndex:
    """What one pass over a parity manifest learned, all of it small: header, covers, segments."""

    header: ParityHeader
    covers: list[CoversRecord]
    segments: list[ParitySegmentRecord]


class ParityDriveReader:
    """Reads one parity drive: drive.json first (a parity drive's, version 2), then its manifest.

    Guarantee, as :class:`~sneakernet.drive.reader.DriveReader`'s: a caller that consumed every record of
    :meth:`records` has read the exact manifest drive.json names, or got a FormatError."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.label_bytes = _label_bytes(path)
        # Parity drives are version 2 over any data drives (19.7.7): read as such whatever the release reads else.
        self.label = DriveLabel.from_bytes(self.label_bytes, versions={PARITY_VERSION})
        if self.label.role != ROLE_PARITY:
            raise FormatError(f"{path} is not a parity drive: its {DRIVE_LABEL_NAME} says role {self.label.role!r}")
        self._index: ParityIndex | None = None

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def catalog(self) -> str:
        """The path of its copy of the shipment's catalog (byte-identical to the data drives')."""
        return self.file(CATALOG_NAME)

    def records(self, only: tuple[str, ...] | None = None) -> Iterator[ParityRecord]:
        """The manifest's header, then every record through the end record (with ``only``, those types)."""
        what = f"the manifest of {self.path}"

        def own_header(raw: dict[str, Any]) -> ParityHeader:
            header = ParityHeader.from_json(raw)
            if header.shipment != self.label.shipment or header.drive != self.label.drive:
                raise FormatError(f"{what} belongs to another shipment or drive than its {DRIVE_LABEL_NAME}")
            return header

        opener = functools.partial(open_drive_file, self.file(MANIFEST_NAME))
        size, digest = yield from _read_record_file(opener, what, only, own_header, parity_record_from_json)
        if size != self.label.manifest_size or digest != self.label.manifest_blake3:
            raise IntegrityError(f"{what} does not match the BLAKE3 in its {DRIVE_LABEL_NAME}")

    def index(self) -> ParityIndex:
        """The header, covers and segments, after a whole pass that checks the records' order and counts: covers
        for columns 0 ... k-1 in order with increasing drive numbers, one pblock per stripe in order, each
        segment's ``blocks`` those before it, the segments adding up to drive.json's ``stored_bytes``."""
        if self._index is not None:
            return self._index
        header: ParityHeader | None = None
        covers: list[CoversRecord] = []
        segments: list[ParitySegmentRecord] = []
        stripes = blocks = 0
        what = f"the manifest of {self.path}"
        for record in self.records():
            if isinstance(record, ParityHeader):
                header = record
            elif isinstance(record, CoversRecord):
                if record.column != len(covers) or (covers and record.drive <= covers[-1].drive) or stripes:
                    raise FormatError(f"{what} has covers records out of column order")
                covers.append(record)
            elif isinstance(record, PBlockRecord):
                if record.stripe != stripes:
                    raise FormatError(f"{what} has pblock {record.stripe} where stripe {stripes} comes")
                stripes += 1
                blocks += 1
            elif isinstance(record, ParitySegmentRecord):
                if record.blocks != blocks or record.size != blocks * self._block_size(header):
                    raise FormatError(f"{what} has segment {record.name} unlike the pblocks before it")
                segments.append(record)
                blocks = 0
        assert header is not None
        if len(covers) != header.data_drives:
            raise FormatError(f"{what} covers {len(covers)} data drives, its header says {header.data_drives}")
        if stripes != header.stripes or blocks:
            raise FormatError(f"{what} has {stripes} pblocks in its segments, its header says {header.stripes}")
        if sum(s.size for s in segments) != self.label.stored_bytes or len(segments) != self.label.segments:
            raise FormatError(f"the segments of {self.path} do not add up to its {DRIVE_LABEL_NAME}")
        longest = max((c.stored_bytes for c in covers), default=0)
        if -(-longest // header.block_size) != header.stripes:
            raise FormatError(f"{what} has {header.stripes} stripes, its covered drives need another count")
        self._index = ParityIndex(header, covers, segments)
        return self._index

    @staticmethod
    def _block_size(header: ParityHeader | None) -> int:
        if header is None:
            raise FormatError("a parity manifest's records come after its header")
        return header.block_size

    def stream(self) -> StoredStream:
        """Its stored stream: the parity blocks of its row, stripe after stripe."""
        segments = [SegmentRecord(s.name, s.size, s.blake3, s.blocks) for s in self.index().segments]
        return StoredStream(self.path, self.label.label, segments)

    def pblocks(self) -> PBlockLookup:
        return PBlockLookup(self)


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
