"""Writing a data drive back from parity (docs/format.md 19.7.6): :func:`write_drive` makes the directory ``target``
hold exactly the drive a :class:`~sneakernet.drive.parity.lost.LostDriveReader` reads (the same segments, manifest,
drive.json, catalog and B3SUMS, byte for byte), keeping what is already there and right.

It serves both ``rebuild`` (a lost drive onto a new, empty one) and ``repair`` (a present drive with damage: its
segments whose BLAKE3 is not the manifest's are written again, every chunk taken from the drive when it is intact
there, else rebuilt from parity; intact segments are not touched).

Write order, as pack's (section 13): each segment written again as ``sNNNNNN.seg.partial``, every chunk checked
against its ``stored_blake3`` before it is written and the whole segment against its record's BLAKE3 before it is
fsynced and renamed over the final name; then the manifest, the catalog and B3SUMS; drive.json last. A rebuild
stopped anywhere leaves a drive without drive.json (unfinished, as section 13 says) and, run again, keeps every
segment already in place; a segment with a chunk that cannot be rebuilt is never renamed, so no final name ever
holds a wrong byte.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import blake3

from ...errors import FormatError
from ...format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    DRIVE_LABEL_NAME,
    MANIFEST_NAME,
    PARTIAL_SUFFIX,
    SEALED_CATALOG_NAME,
    SEGMENTS_DIR,
    ChunkRecord,
    FileRecord,
    SegmentRecord,
    show_path,
)
from ...format.checksums import checksum_lines
from ...format.sealed import PublicChunk
from ...io.atomic import install, write_atomic, write_error
from ...output import versioned
from ...parity.rebuild import matches
from ..chunkmap import ChunkMap
from ..files import file_blake3, open_drive_file
from .lost import LostDriveReader


@dataclass
class RebuildResult:
    """What :func:`write_drive` did to one drive."""

    label: str
    path: str
    #: The drives its data was rebuilt from.
    sources: list[str] = field(default_factory=list)
    segments_kept: int = 0
    segments_written: int = 0
    #: Chunks written again: taken from the drive itself when intact there, else rebuilt from parity.
    chunks_rebuilt: int = 0
    #: Of those, chunks of the drive mended byte by byte where parity says they are wrong (repair: its damage
    #: and another drive's in one stripe).
    chunks_mended: int = 0
    bytes_written: int = 0
    #: The drive's other files written again (manifest, drive.json, catalog, B3SUMS), in write order.
    files_written: list[str] = field(default_factory=list)
    #: Chunks that no way of rebuilding gave with their recorded hash, and the files with bytes in them.
    chunks_lost: list[int] = field(default_factory=list)
    files_lost: list[str] = field(default_factory=list)
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result as ``--json`` prints it (docs/rebuild-result.schema.json)."""
        return versioned(dict(vars(self)))


def _file_digest(path: str) -> tuple[int, str] | None:
    """Size and BLAKE3 of the file at ``path``; None when it is missing or cannot be read."""
    try:
        return file_blake3(path)
    except OSError:
        return None


class _DriveWriter:
    def __init__(self, lost: LostDriveReader, target: str, result: RebuildResult, advance: Callable[[int], None]):
        self.lost = lost
        self.target = target
        self.result = result
        self.advance = advance

    def error(self, exc: OSError, doing: str) -> Exception:
        return write_error(
            exc,
            f"{self.target} is full ({exc.strerror}): the drive is left unfinished; give a drive as large as the "
            f"original {self.result.label} and run again",
            f"cannot {doing} on {self.target}: {exc.strerror}",
            too_large_is_full=True,
        )

    def segment(self, record: SegmentRecord, chunks: list[ChunkRecord]) -> None:
        """Make ``target`` hold segment ``record``: kept when it is there with its BLAKE3, else written again."""
        final = os.path.join(self.target, record.name)
        if _file_digest(final) == (record.size, record.blake3):
            self.result.segments_kept += 1
            self.advance(record.size)
            return
        partial = final + PARTIAL_SUFFIX
        try:
            existing = open_drive_file(final)
        except OSError:
            existing = None
        try:
            written = self._write(partial, record, chunks, existing)
        finally:
            if existing is not None:
                existing.close()
        if not written:
            with contextlib.suppress(OSError):
                os.remove(partial)
            return
        try:
            install(partial, final)
        except OSError as exc:
            raise self.error(exc, f"rename {partial}") from exc
        self.result.segments_written += 1

    def _write(self, partial: str, record: SegmentRecord, chunks: list[ChunkRecord], existing: Any) -> bool:
        """Write segment ``record`` as ``partial``; whether it is to be renamed into place: when whole, or, in a
        repair, when some damaged chunks were mended and the others that could not be are kept as they read
        (no byte that was not there before, and fewer wrong ones: a repair run again, once the drives around it
        are mended too, may mend the rest)."""
        hasher = blake3.blake3()
        position = 0
        lost = mended = 0
        kept_as_read = True
        try:
            with open(partial, "wb") as out:
                for chunk in chunks:
                    if chunk.offset != position:
                        raise FormatError(f"the chunks of {record.name} do not follow each other at byte {position}")
                    stored, rebuilt = self._chunk(chunk, existing)
                    if stored is None:
                        lost += 1
                        self.result.chunks_lost.append(chunk.id)
                        stored = self._as_read(chunk, existing)
                        if stored is None:
                            kept_as_read = False
                            stored = bytes(chunk.stored_size)  # keeps the offsets; this segment is never renamed
                    else:
                        mended += rebuilt
                    out.write(stored)
                    hasher.update(stored)
                    position += chunk.stored_size
                    self.advance(chunk.stored_size)
                if lost and not (kept_as_read and mended):
                    return False
                if not lost and (position != record.size or hasher.hexdigest() != record.blake3):
                    raise FormatError(f"the rebuilt {record.name} does not match its manifest's BLAKE3")
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise self.error(exc, f"write {partial}") from exc
        self.result.bytes_written += position
        return True

    def _chunk(self, chunk: ChunkRecord, existing: Any) -> tuple[bytes | None, bool]:
        """The chunk's stored bytes from the segment already there when they match, else rebuilt, or mended where
        parity says its bytes are wrong (checked); and whether they were rebuilt."""
        data = self._as_read(chunk, existing)
        if data is not None and matches(data, chunk.stored_size, chunk.stored_blake3):
            return data, False
        self.result.chunks_rebuilt += 1
        rebuilder = self.lost.group.rebuilder()
        mended = rebuilder.mended
        stored = rebuilder.stored(self.lost.column, *self._place(chunk))
        self.result.chunks_mended += rebuilder.mended - mended
        return stored, True

    @staticmethod
    def _as_read(chunk: ChunkRecord, existing: Any) -> bytes | None:
        """The chunk's bytes in the segment already there, None when there is none or they cannot all be read."""
        if existing is None:
            return None
        try:
            data = os.pread(existing.fileno(), chunk.stored_size, chunk.offset)
        except OSError:
            return None
        return data if len(data) == chunk.stored_size else None

    def _place(self, chunk: ChunkRecord) -> tuple[int, int, str]:
        return self.lost.stream_offset(chunk), chunk.stored_size, chunk.stored_blake3

    def copy(self, name: str, source: str) -> str:
        """Make ``target/name`` the bytes of ``source`` (written again only when they differ); its BLAKE3."""
        wanted = _file_digest(source)
        if wanted is None:
            raise FormatError(f"cannot read {source}")
        target = os.path.join(self.target, name)
        if _file_digest(target) != wanted:
            try:
                with open_drive_file(source) as handle:
                    write_atomic(target, handle.read())
            except OSError as exc:
                raise self.error(exc, f"write {name}") from exc
            self.result.files_written.append(name)
        return wanted[1]


def write_drive(
    lost: LostDriveReader, target: str, catalog: str | None, advance: Callable[[int], None] = lambda n: None
) -> RebuildResult:
    """Make ``target`` hold the drive ``lost`` reads, byte for byte (see the module's docstring), with a copy of the
    shipment's catalog ``catalog`` when the drive carried one (every drive of a pack with --out or several --drive
    does; with --swap the last)."""
    result = RebuildResult(lost.cover.label, target, sorted(lost.sources))
    try:
        os.makedirs(os.path.join(target, SEGMENTS_DIR), exist_ok=True)
    except OSError as exc:
        raise write_error(exc, f"{target} is full", f"cannot make {target}: {exc.strerror}") from exc
    writer = _DriveWriter(lost, target, result, advance)
    sums: list[tuple[str, str]] = []
    chunks: list[ChunkRecord] = []
    for record in lost.records(only=(ChunkRecord.TYPE, SegmentRecord.TYPE)):
        if isinstance(record, ChunkRecord | PublicChunk):  # an encrypted drive's public chunks: rebuilt keyless
            chunks.append(record)
        elif isinstance(record, SegmentRecord):
            writer.segment(record, chunks)
            sums.append((record.name, record.blake3))
            chunks = []
    if result.chunks_lost:
        result.files_lost = files_over(lost, set(result.chunks_lost))
        return result
    for sealed in lost.sealed:  # an encrypted drive's key files and sealed index, staged and checked (19.8.3)
        os.makedirs(os.path.dirname(os.path.join(target, sealed.name)), exist_ok=True)
        sums.append((sealed.name, writer.copy(sealed.name, lost.file(sealed.name))))
    sums.append((MANIFEST_NAME, writer.copy(MANIFEST_NAME, lost.file(MANIFEST_NAME))))
    label_digest = blake3.blake3(lost.label_bytes).hexdigest()
    sums.append((DRIVE_LABEL_NAME, label_digest))
    if catalog is not None:
        if lost.encrypted:  # catalog.age, byte-identical on every drive, before the public catalog that pins it
            sealed_catalog = os.path.join(os.path.dirname(catalog), SEALED_CATALOG_NAME)
            if not os.path.exists(sealed_catalog):
                raise FormatError(
                    f"{lost.cover.label} carried the sealed catalog ({SEALED_CATALOG_NAME}): give a data drive that "
                    "has it too"
                )
            sums.append((SEALED_CATALOG_NAME, writer.copy(SEALED_CATALOG_NAME, sealed_catalog)))
        sums.append((CATALOG_NAME, writer.copy(CATALOG_NAME, catalog)))
    checksums = checksum_lines(sums)
    if _file_digest(os.path.join(target, CHECKSUMS_NAME)) != (len(checksums), blake3.blake3(checksums).hexdigest()):
        try:
            write_atomic(os.path.join(target, CHECKSUMS_NAME), checksums)
        except OSError as exc:
            raise writer.error(exc, f"write {CHECKSUMS_NAME}") from exc
        result.files_written.append(CHECKSUMS_NAME)
    writer.copy(DRIVE_LABEL_NAME, lost.file(DRIVE_LABEL_NAME))  # last: now the drive is finished
    result.finished = True
    return result


def files_over(lost: LostDriveReader, bad: set[int]) -> list[str]:
    """The paths of the files with bytes in the chunks ``bad`` of the drive ``lost`` reads, in manifest order."""
    chunk_map = ChunkMap()
    found: list[str] = []
    for record in lost.records(only=(ChunkRecord.TYPE, FileRecord.TYPE)):
        if isinstance(record, ChunkRecord):
            chunk_map.add_chunk(record)
        elif isinstance(record, FileRecord) and record.length:
            assert chunk_map.first_chunk is not None
            start = record.chunk - chunk_map.first_chunk
            offsets = chunk_map.raw_offsets
            end_offset = offsets[start] + record.chunk_offset + record.length
            index = start
            while index < len(offsets) - 1 and offsets[index] < end_offset:
                if index + chunk_map.first_chunk in bad:
                    found.append(show_path(record.path))
                    break
                index += 1
    return found
