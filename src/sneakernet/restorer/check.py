"""Checking a drive before anything of it is written."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from ..drive import ChunkMap, DriveReader
from ..errors import FormatError
from ..format import (
    ChunkRecord,
    DirRecord,
    FileRecord,
    HardlinkRecord,
    LaneTable,
    ManifestHeader,
    SymlinkRecord,
    short_fingerprint,
)
from ..validate import ManifestCheck, Seen, seen_of
from .includes import Includes
from .journal import Journal

ENTRY_RECORDS = (FileRecord, DirRecord, SymlinkRecord, HardlinkRecord)


def shipment_named(reader: DriveReader) -> str:
    """A drive's shipment as a person can match it: its id, and the fingerprint when the drive carries the catalog."""
    from ..info import catalog_header

    try:
        header = catalog_header(reader)
    except FormatError:
        header = None
    known = f" (fingerprint {short_fingerprint(header.fingerprint)})" if header is not None else ""
    return reader.label.shipment + known


def validate_drive(reader: DriveReader, journal: Journal, includes: Includes | None = None) -> ChunkMap:
    """Read the whole manifest and refuse the drive (FormatError) if anything would be unsafe or wrong: every
    record through the validation verify runs too (validate.py: bounds, paths, chunks against their segments),
    no path twice, none inside a path that is not a directory, and the drive's entries exactly the catalog's for
    it (the catalog, indexed in the journal, names the one drive that finishes each path).

    With ``includes``, it also notes in the journal's ``aliases`` each file left out by the patterns that a
    wanted hard link names: its content is restored under the first such link's name instead, from whichever
    drive carries it (see :meth:`Journal.place_aliases`).
    """
    chunk_map = ChunkMap()
    expected = journal.manifest_of_catalog(reader.label.drive)
    if expected is None:
        raise FormatError(f"the catalog has no drive {reader.label.drive}")
    if reader.label.manifest_blake3 != expected:
        raise FormatError("its manifest is not the one the catalog names for this drive (a drive of another copy?)")
    if includes:
        journal.make_aliases()
    lanes, lane = catalog_lanes(journal, reader.label.drive)
    check = ManifestCheck(lanes)
    index = journal.catalog_index()

    def entries() -> Iterator[Seen]:
        for record in reader.records():
            if problems := check.check(record):
                raise FormatError(problems[0])
            if isinstance(record, ManifestHeader):
                chunk_map.header = record
            elif isinstance(record, ChunkRecord):
                chunk_map.add_chunk(record)
            elif isinstance(record, ENTRY_RECORDS):
                if isinstance(record, FileRecord):
                    chunk_map.piece_range(record)
                elif (
                    isinstance(record, HardlinkRecord)
                    and includes
                    and includes.wants(record.path)
                    and not includes.wants(record.target)
                ):
                    journal.add_alias(record.target, record.path)
                seen = seen_of(record)
                if seen is not None:
                    yield seen
        if problems := check.finish():
            raise FormatError(problems[0])

    for problem in itertools.chain(index.load_seen(entries()), index.compare(reader.label.drive, lane)):
        raise FormatError(problem)
    return chunk_map


def catalog_lanes(journal: Journal, drive: int) -> tuple[LaneTable | None, list[int] | None]:
    """Version 2: the catalog's data drives by lane, and the drives of ``drive``'s lane (None, None: version 1)."""
    positions: list[list[int]] | None = journal.get_json("lanes")
    if not positions:
        return None, None
    table = LaneTable()
    for number, (lane, seq) in enumerate(positions, 1):
        table.add(number, lane, seq)
    own = table.position(drive)
    return table, [n for n, (lane, _) in enumerate(positions, 1) if own is not None and lane == own[0]]
