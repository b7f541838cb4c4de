"""Resuming an interrupted pack: what the finished drives already hold, checked, and replayed.

A pack killed at any moment leaves finished drives (with drive.json) and at most one unfinished drive (without).
``pack --resume`` keeps the finished drives after re-reading and re-hashing every byte of them, clears the
unfinished one, and replays the source from the start without reading file contents: pack is deterministic, so
the replayed chunks and records must be exactly those on the finished drives (this is checked record by record,
and any difference means the source changed: the resume is refused). Packing then continues, for real, with the
first item that did not reach a finished drive, onto the drive after the last finished one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..chunks.stream import FileEnd, RawChunk
from ..drive import SHIPMENT_NAMES, DriveReader, file_blake3, header_and
from ..errors import DestinationError, SneakernetError, SourceError, UsageError
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    METHOD_STORE,
    PARTIAL_SUFFIX,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    EndRecord,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    ManifestRecord,
    SegmentRecord,
    SkippedRecord,
    SymlinkRecord,
    drive_label,
    show_path,
)
from .reader import SourceReader


@dataclass
class FinishedDrives:
    """The drives an interrupted pack finished, in order, and what the resumed pack takes over from them."""

    paths: list[str] = field(default_factory=list)
    labels: list[DriveLabel] = field(default_factory=list)
    #: Each drive's B3SUMS entries without the catalog's (which is written again at the end).
    checksums: list[list[tuple[str, str]]] = field(default_factory=list)
    header: ManifestHeader | None = None

    @property
    def shipment(self) -> str | None:
        return self.labels[0].shipment if self.labels else None


def find_finished(paths: Iterator[str], chunk_size: int, segment_size: int, level: int) -> FinishedDrives:
    """Walk the drives in order: every finished one is re-checked whole; stop at the first that is not finished.

    Raises :class:`DestinationError` when a finished drive is damaged, of another shipment, or was packed with
    other options (the resumed pack could not give the same chunks).
    """
    found = FinishedDrives()
    for index, path in enumerate(paths, 1):
        if not os.path.exists(os.path.join(path, "drive.json")):
            break
        try:
            reader = DriveReader(path)
            header, segments = header_and(reader.records(), ManifestHeader, SegmentRecord)
            _check_segments(reader, segments)
        except SneakernetError as exc:
            raise DestinationError(f"cannot resume: finished drive {path} does not check out ({exc})") from exc
        label = reader.label
        if label.drive != index or (found.shipment and label.shipment != found.shipment):
            raise DestinationError(f"cannot resume: {path} is not drive {index} of the interrupted shipment")
        if (header.chunk_size, header.segment_size) != (chunk_size, segment_size) or header.level not in (None, level):
            raise UsageError(
                f"cannot resume: {path} was packed with chunk size {header.chunk_size}, segment size "
                f"{header.segment_size}, level {header.level}: give the same options as the interrupted pack"
            )
        found.paths.append(path)
        found.labels.append(label)
        found.checksums.append(_checksums(path))
        found.header = found.header or header
    return found


def _check_segments(reader: DriveReader, segments: list[SegmentRecord]) -> None:
    """Every segment of a finished drive, read whole and hashed: only proven bytes are kept."""
    for segment in segments:
        if file_blake3(reader.file(segment.name)) != (segment.size, segment.blake3):
            raise DestinationError(f"segment {segment.name} does not match its BLAKE3")


def _checksums(path: str) -> list[tuple[str, str]]:
    with open(os.path.join(path, CHECKSUMS_NAME), encoding="ascii") as handle:
        lines = [line.rstrip("\n").split("  ", 1) for line in handle]
    return [(name, digest) for digest, name in lines if name != CATALOG_NAME]


def clear_unfinished(path: str) -> None:
    """Remove what an interrupted pack left on the drive it did not finish (only sneakernet's own files)."""
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        if name.removesuffix(PARTIAL_SUFFIX) in SHIPMENT_NAMES:
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)


def out_drive_paths(out: str) -> Iterator[str]:
    """``OUT/drive-0001``, ``OUT/drive-0002``, ... while they exist."""
    index = 1
    while os.path.isdir(path := os.path.join(out, drive_label(index))):
        yield path
        index += 1


# --- replaying ----------------------------------------------------------------------------------------------

Item = ChunkRecord | FileRecord | DirRecord | SymlinkRecord | HardlinkRecord | SkippedRecord


def replayed_records(
    finished: FinishedDrives, on_record: Callable[[ManifestRecord, int], None]
) -> Iterator[tuple[ManifestRecord, Callable[[], bytes]]]:
    """The records of the finished drives that stand for items of the pack stream, in order (chunks, final file
    records, directories, symlinks, hard links, skipped entries), each with a function that reads a chunk's raw
    bytes back from its drive; ``on_record`` sees every record with its drive number."""
    for path, label in zip(finished.paths, finished.labels, strict=True):
        reader = DriveReader(path)
        for record in reader.records():
            on_record(record, label.drive)
            if isinstance(record, ManifestHeader | SegmentRecord | EndRecord):
                continue
            if isinstance(record, FileRecord) and not record.final:
                continue
            yield record, partial(_read_back, reader, record)


def _read_back(reader: DriveReader, record: ManifestRecord) -> bytes:
    assert isinstance(record, ChunkRecord)
    return reader.read_chunk(record)


def match(item: object, record: ManifestRecord, paths: dict[int, bytes]) -> None:
    """Refuse the resume unless the replayed ``item`` is what the finished drive recorded."""
    same = False
    what = type(record).__name__
    if isinstance(item, RawChunk) and isinstance(record, ChunkRecord):
        same = item.id == record.id and item.raw_size == record.raw_size
        what = f"chunk {record.id}"
    elif isinstance(item, FileEnd) and isinstance(record, FileRecord):
        same = paths.get(item.index) == record.path and item.size == record.size
        same = same and record.meta is not None and item.meta.mtime_ns == record.meta.mtime_ns
        what = show_path(record.path)
    elif type(item) is type(record):
        same = item == record or (
            getattr(item, "path", None) == getattr(record, "path", b"")
            and not isinstance(item, SymlinkRecord | HardlinkRecord)
        )
        what = show_path(getattr(record, "path", b""))
    if not same:
        raise SourceError(
            f"the source changed since the interrupted pack (first difference at {what}): resuming would not give "
            "the same shipment; start over without --resume"
        )


def store_bytes(record: ManifestRecord) -> int:
    """Raw bytes a chunk record stored as is (for the summary)."""
    return record.raw_size if isinstance(record, ChunkRecord) and record.method == METHOD_STORE else 0


def replay(
    items: Iterator[Any],
    reader: SourceReader,
    records: Iterator[tuple[ManifestRecord, Callable[[], bytes]]],
    paths: dict[int, bytes],
) -> int:
    """Consume the stream's ``items`` that the finished drives already hold (their ``records``, see
    :func:`replayed_records`), checking each; then have ``reader`` go live. ``paths`` are the writer's paths of
    files still open. Returns the number of chunks replayed."""
    expected = next(records, None)
    reader.dry = expected is not None
    chunks = 0
    while expected is not None:
        item = next(items, None)
        if item is None:
            raise SourceError(
                "the source has fewer entries than the interrupted pack wrote: it changed; start over without --resume"
            )
        record, read_back = expected
        match(item, record, paths)
        if isinstance(item, RawChunk):
            chunks += 1
            reader.last_replayed = (item, read_back)
            if len(item.slices) == 1 and item.slices[0].chunk_offset == 0 and isinstance(record, ChunkRecord):
                reader.replayed_chunks.setdefault(item.slices[0].file_index, []).append(record.raw_blake3)
        elif isinstance(item, FileEnd):
            del paths[item.index]
            reader.replayed_chunks.pop(item.index, None)
        expected = next(records, None)
    reader.go_live()
    return chunks
