"""Lost data drives read through parity (docs/format.md 19.7.6, 19.7.7): :class:`ParitySet` (the parity drives
given beside a shipment's data drives, checked against them, by group) and :class:`LostDriveReader` (a data drive
that is not there, read as a :class:`~sneakernet.drive.reader.DriveReader`: its drive.json and manifest from a
parity drive's ``covered/`` copies, its chunks rebuilt from the other drives of its group, each checked against its
``stored_blake3`` before it is handed out, so that whatever reads drives (restore, rebuild) reads a lost one too).

Trust: a parity drive is used only as far as its ``covers`` records match the data drives given (their drive.json's
``manifest_blake3``); the covered copies are checked against those records; what a lost drive's manifest says is
then checked, as every drive's is, against the shipment's catalog by its reader (restore) and against the data
drives' catalog (rebuild). Parity bytes are never trusted: every rebuilt chunk must match its recorded hash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import blake3

from ...errors import FormatError, IntegrityError, UsageError
from ...format import (
    CATALOG_NAME,
    DRIVE_LABEL_NAME,
    INDEX_NAME,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    ChunkRecord,
    ManifestRecord,
    SealedRecord,
    SegmentRecord,
)
from ...format.container import read_records, type_prefix
from ...format.parity import CoversRecord, covered_index_name, covered_label_name, covered_manifest_name
from ...io.atomic import COPY_BLOCK, install
from ...parity.engine import ParityCode
from ...parity.rebuild import Group
from ..files import open_drive_file
from ..reader import DriveReader
from ..stream import StoredStream
from .chunkindex import ChunkIndex
from .reader import ParityDriveReader
from .rebuilder import Column, Rebuilder, Row

if TYPE_CHECKING:  # the crypt extra, for encrypted drives only
    from ...crypto.keys import ShipmentIdentity
    from ..keys import Unlock


def segments_of(reader: DriveReader) -> list[SegmentRecord]:
    return [r for r in reader.records(only=(SegmentRecord.TYPE,)) if isinstance(r, SegmentRecord)]


def _chunk_records(reader: DriveReader) -> Callable[[], Iterator[ManifestRecord]]:
    """A fresh walk over ``reader``'s chunk and segment records, each time it is called (for a ChunkIndex)."""
    return lambda: reader.records(only=(ChunkRecord.TYPE, SegmentRecord.TYPE))


class ParityGroup:
    """One parity group as given: its covers (columns), its parity drives by row, the data drives present."""

    def __init__(self, number: int, parity: list[ParityDriveReader]) -> None:
        self.number = number
        self.parity = parity
        first = parity[0].index()
        self.header = first.header
        self.covers = first.covers
        self.rows: dict[int, ParityDriveReader] = {}
        for reader in parity:
            index = reader.index()
            same = (index.header.data_drives, index.header.block_size, index.header.stripes, index.covers)
            if same != (self.header.data_drives, self.header.block_size, self.header.stripes, self.covers):
                raise FormatError(
                    f"{reader.label.label} ({reader.path}) and {parity[0].label.label} ({parity[0].path}) are parity "
                    f"drives of group {number} covering different data drives: they are of different packings"
                )
            if index.header.row in self.rows:
                raise UsageError(f"two parity drives of group {number} row {index.header.row} given: give one of each")
            self.rows[index.header.row] = reader
        self.group = Group(
            m=self.header.parity_drives,
            block_size=self.header.block_size,
            stored=tuple(c.stored_bytes for c in self.covers),
        )
        self.data: dict[int, DriveReader] = {}
        #: A data drive being repaired (drive number: its path and the chunk and segment records its covered
        #: manifest gives): read as it is, so that its damaged chunks can be mended byte by byte.
        self.damaged: dict[int, tuple[str, DriveReader]] = {}
        self._rebuilder: Rebuilder | None = None
        self._streams: list[StoredStream] = []

    def repairing(self, path: str, lost: LostDriveReader) -> None:
        """Read the drive ``lost`` reads from the copies as it is at ``path`` too (repair): its chunks that fail
        their hashes are then mended where parity says they are wrong when rebuilding them whole cannot be."""
        if self._rebuilder is not None:
            raise AssertionError("a drive to repair is given before the rebuild starts")
        self.damaged[lost.cover.drive] = (path, lost)

    def column_of(self, drive: int) -> int | None:
        return next((c.column for c in self.covers if c.drive == drive), None)

    def rebuilder(self) -> Rebuilder:
        """The rebuilder of this group's lost columns (the covered drives not given), made once."""
        if self._rebuilder is None:
            columns = []
            for cover in self.covers:
                reader = self.data.get(cover.drive)
                if cover.drive in self.damaged:
                    path, records = self.damaged[cover.drive]
                    self._streams.append(StoredStream(path, cover.label, segments_of(records)))
                    columns.append(Column(self._streams[-1], ChunkIndex(_chunk_records(records))))
                    continue
                if reader is None:
                    columns.append(Column(None))
                    continue
                stream = StoredStream(reader.path, reader.label.label, segments_of(reader))
                if stream.length != cover.stored_bytes:
                    raise FormatError(f"{reader.label.label} ({reader.path}) is not the drive parity covers")
                self._streams.append(stream)
                columns.append(Column(stream, ChunkIndex(_chunk_records(reader))))
            rows = []
            for row in range(self.group.m):
                parity = self.rows.get(row)
                if parity is None:
                    rows.append(Row(None))
                else:
                    self._streams.append(parity.stream())
                    rows.append(Row(self._streams[-1], parity.pblocks()))
            code = ParityCode(self.group.k, self.group.m)
            self._rebuilder = Rebuilder(self.group, code, columns, rows)
        return self._rebuilder

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        for reader in self.data.values():
            reader.close()


class ParitySet:
    """The parity drives given with (some of) a shipment's data drives, by group.

    Each parity drive must be of the data drives' shipment and its ``covers`` must pin exactly the data drives
    given (their manifests' BLAKE3), else it is refused (FormatError): a parity drive of another packing would
    rebuild nothing right. The data drives are opened again here, by path, so that the rebuild's reads never
    share a reader with its caller."""

    def __init__(self, data_paths: Sequence[str], parity: Sequence[ParityDriveReader]) -> None:
        self.groups: dict[int, ParityGroup] = {}
        by_group: dict[int, list[ParityDriveReader]] = {}
        for parity_reader in parity:
            by_group.setdefault(parity_reader.index().header.group, []).append(parity_reader)
        shipments = {parity_reader.label.shipment for parity_reader in parity}
        if len(shipments) > 1:
            raise UsageError("the parity drives given are of different shipments: give those of one shipment")
        for number, readers in sorted(by_group.items()):
            self.groups[number] = ParityGroup(number, readers)
        for path in data_paths:
            reader = DriveReader(path, public=True)  # parity is over the stored bytes: no key needed (19.8)
            if shipments and reader.label.shipment not in shipments:
                raise UsageError(f"{path} is a drive of shipment {reader.label.shipment}, the parity drives of another")
            for group in self.groups.values():
                column = group.column_of(reader.label.drive)
                if column is None:
                    continue
                if group.covers[column].manifest_blake3 != reader.label.manifest_blake3:
                    raise FormatError(
                        f"{group.parity[0].label.label} ({group.parity[0].path}) covers another {reader.label.label} "
                        f"than {path} (their manifests differ): it is parity of another packing"
                    )
                group.data[reader.label.drive] = reader

    def lost(self) -> list[tuple[ParityGroup, CoversRecord]]:
        """Every covered data drive not given, with its group, in drive order."""
        found = [(g, c) for g in self.groups.values() for c in g.covers if c.drive not in g.data]
        return sorted(found, key=lambda pair: pair[1].drive)

    def open_lost(
        self, group: ParityGroup, cover: CoversRecord, key: Unlock | ShipmentIdentity | None = None
    ) -> LostDriveReader:
        return LostDriveReader(group, cover, key)

    def close(self) -> None:
        for group in self.groups.values():
            group.close()


def sealed_files(manifest: str) -> list[SealedRecord]:
    """The ``sealed`` records of the data drive's manifest at ``manifest`` (a checked copy): its key files and its
    ``index.age``, none for a drive in the clear (docs/format.md 19.8.3)."""
    with open_drive_file(manifest) as handle:
        return [
            SealedRecord.from_json(raw)
            for raw in read_records(handle, f"the manifest {manifest}", (type_prefix(SealedRecord.TYPE),))
            if raw is not None and raw.get("type") == SealedRecord.TYPE
        ]


def sealed_index(manifest: str) -> SealedRecord | None:
    """The ``sealed`` record of ``index.age`` in the data drive's manifest at ``manifest``, None for a drive in the
    clear: what pins an encrypted drive's covered index (docs/format.md 19.7.4)."""
    return next((record for record in sealed_files(manifest) if record.name == INDEX_NAME), None)


def copy_checked(source: str, target: str, size: int, digest: str) -> bool:
    """Copy ``source`` to ``target`` (as ``.partial``, fsynced, renamed) when its bytes are ``size`` bytes of BLAKE3
    ``digest``; False, nothing left, when they are not or cannot be read."""
    hasher = blake3.blake3()
    copied = 0
    partial = target + PARTIAL_SUFFIX
    try:
        with open_drive_file(source) as handle, open(partial, "wb") as out:
            while data := handle.read(COPY_BLOCK):
                hasher.update(data)
                copied += len(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError:
        copied = -1
    if copied != size or hasher.hexdigest() != digest:
        with contextlib.suppress(OSError):
            os.remove(partial)
        return False
    install(partial, target)
    return True


class LostDriveReader(DriveReader):
    """A data drive that is not there, read through its parity group: drive.json and manifest from a parity drive's
    ``covered/`` copies (checked against its ``covers`` record), every chunk rebuilt and checked before use.

    An encrypted drive's sealed index comes from the parity drive's ``covered/`` copy, its ``keys/`` files (the same on
    every drive of the shipment) from a data drive of the group given, each checked against the ``sealed`` records of
    its manifest: with ``key`` it reads as any encrypted drive read with its key, without it as its public records
    (which is all a rebuild needs: parity is over the stored bytes).

    ``path`` is the parity drive's (for messages and the checks on where a drive lies); the copies are kept in a
    private directory until :meth:`close`."""

    def __init__(self, group: ParityGroup, cover: CoversRecord, key: Unlock | ShipmentIdentity | None = None) -> None:
        self.group = group
        self.cover = cover
        self.column = cover.column
        self._staging = tempfile.mkdtemp(prefix=f"sneakernet-{cover.label}-")
        try:
            source = self._stage()
            #: The sealed and key files an encrypted drive's manifest pins, each staged beside it (in its order).
            self.sealed = self._stage_sealed(source)
            super().__init__(self._staging, key=key, public=key is None)
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        if self.label.drive != cover.drive or self.label.manifest_blake3 != cover.manifest_blake3:
            raise FormatError(f"the covered copy of {cover.label} on {source.path} is not the drive it covers")
        self.path = source.path
        #: The parity drives the chunks are rebuilt from, and the data drives read with them.
        self.sources = [r.label.label for r in group.rows.values()] + [r.label.label for r in group.data.values()]
        self._starts: dict[str, int] = {}
        start = 0
        for segment in segments_of(self):
            self._starts[segment.name] = start
            start += segment.size
        if start != cover.stored_bytes:
            raise FormatError(f"the covered manifest of {cover.label} does not add up to its stored_bytes")

    def _stage(self) -> ParityDriveReader:
        """The covered drive.json and manifest (and the catalog) of the first parity drive whose copies match the
        covers record; FormatError when none does."""
        cover = self.cover
        for reader in self.group.rows.values():
            label = os.path.join(self._staging, DRIVE_LABEL_NAME)
            manifest = os.path.join(self._staging, MANIFEST_NAME)
            if copy_checked(
                reader.file(covered_label_name(cover.label)), label, cover.drive_json_size, cover.drive_json_blake3
            ) and copy_checked(
                reader.file(covered_manifest_name(cover.label)), manifest, cover.manifest_size, cover.manifest_blake3
            ):
                if os.path.exists(reader.catalog):
                    shutil.copyfile(reader.catalog, os.path.join(self._staging, CATALOG_NAME))
                return reader
        raise FormatError(
            f"no parity drive given holds an intact copy of {cover.label}'s drive.json and manifest: it cannot be "
            "rebuilt"
        )

    def _stage_sealed(self, source: ParityDriveReader) -> list[SealedRecord]:
        """An encrypted drive's sealed index (the parity drive's covered copy) and key files (a data drive's of the
        group) staged beside its manifest, each checked against its ``sealed`` record; FormatError when one cannot
        be."""
        records = sealed_files(os.path.join(self._staging, MANIFEST_NAME))
        for record in records:
            target = os.path.join(self._staging, record.name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if record.name == INDEX_NAME:
                sources = [source.file(covered_index_name(self.cover.label))]
                sources += [r.file(covered_index_name(self.cover.label)) for r in self.group.rows.values()]
            else:  # the key files: the same bytes on every data drive of the shipment (19.8.1)
                sources = [reader.file(record.name) for reader in self.group.data.values()]
            if not any(copy_checked(path, target, record.size, record.blake3) for path in sources):
                where = "parity drive given" if record.name == INDEX_NAME else "data drive given of its group"
                raise FormatError(
                    f"no {where} holds an intact copy of {self.cover.label}'s {record.name}, which its encrypted "
                    "drive needs: it cannot be rebuilt"
                )
        return records

    def file(self, name: str) -> str:
        return os.path.join(self._staging, name)

    def stream_offset(self, chunk: ChunkRecord) -> int:
        """Where ``chunk`` lies in the drive's stored stream (FormatError for a segment its manifest lacks)."""
        start = self._starts.get(chunk.segment)
        if start is None:
            raise FormatError(f"chunk {chunk.id} of {self.cover.label} is in {chunk.segment}, which it does not have")
        return start + chunk.offset

    def _rebuilt(self, chunk: ChunkRecord) -> bytes | None:
        offset = self.stream_offset(chunk)
        return self.group.rebuilder().stored(self.column, offset, chunk.stored_size, chunk.stored_blake3)

    def read_stored(self, chunk: ChunkRecord) -> bytes:
        stored = self._rebuilt(chunk)
        if stored is None:
            raise IntegrityError(
                f"chunk {chunk.id} of {self.cover.label} cannot be rebuilt from parity (too many drives lost or "
                "damaged over it, or a parity drive is wrong)"
            )
        return stored

    def stored_matches(self, chunk: ChunkRecord) -> bool:
        return self._rebuilt(chunk) is not None

    def frame_problem(self, chunk: ChunkRecord) -> str | None:
        stored = self._rebuilt(chunk)
        if stored is None:
            return "chunk cannot be rebuilt from parity"
        problem = self.codec.frame_problem(memoryview(stored), chunk.raw_size)
        return None if problem is None else f"chunk {problem}"

    def close(self) -> None:
        super().close()
        shutil.rmtree(self._staging, ignore_errors=True)
