"""Resuming an interrupted pack: what the finished drives already hold, checked, and replayed.

A pack killed at any moment leaves finished drives (with drive.json) and at most one unfinished drive (without).
``pack --resume`` keeps the finished drives after re-reading and re-hashing every byte of them, clears the
unfinished one, and replays the source from the start without reading file contents: pack is deterministic, so
the replayed chunks and records must be exactly those on the finished drives (this is checked record by record,
and any difference means the source changed: the resume is refused). Packing then continues, for real, with the
first item that did not reach a finished drive, onto the drive after the last finished one.

All of the replay is here (:class:`ReplayingReader`, :func:`replay`, :func:`match`): reader.py reads live only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NamedTuple

import blake3

from ..chunks.chunker import Chunker, is_large
from ..chunks.stream import FileEnd, RawChunk
from ..drive import DriveReader, header_and
from ..errors import DestinationError, SneakernetError, SourceError, UsageError
from ..format import (
    CATALOG_NAME,
    CHECKSUMS_NAME,
    METHOD_STORE,
    ChunkRecord,
    DirRecord,
    DriveLabel,
    EndRecord,
    EntryRecord,
    FileRecord,
    HardlinkRecord,
    ManifestHeader,
    ManifestRecord,
    Metadata,
    SealedRecord,
    SegmentRecord,
    SkippedRecord,
    SymlinkRecord,
    drive_label,
    show_path,
)
from ..io.source import SourceEntry, SourceFile
from .reader import EMPTY_BLAKE3, SourceReader, _meta
from .summary import _show


@dataclass
class FinishedDrives:
    """The drives an interrupted pack finished, in order, and what the resumed pack takes over from them."""

    paths: list[str] = field(default_factory=list)
    labels: list[DriveLabel] = field(default_factory=list)
    #: Each drive's B3SUMS entries without the catalog's (which is written again at the end).
    checksums: list[list[tuple[str, str]]] = field(default_factory=list)
    header: ManifestHeader | None = None
    #: An encrypted shipment's identity, which their records are read with (docs/format.md 19.8.3).
    key: Any = field(default=None, repr=False)

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
        label, header, checksums = check_finished(path, chunk_size, segment_size, level)
        if label.version >= 2:
            raise UsageError(
                f"cannot resume: {path} was packed onto several drives at once: give the same --at-once as the "
                "interrupted pack"
            )
        if label.drive != index or (found.shipment and label.shipment != found.shipment):
            raise DestinationError(f"cannot resume: {path} is not drive {index} of the interrupted shipment")
        found.paths.append(path)
        found.labels.append(label)
        found.checksums.append(checksums)
        found.header = found.header or header
    return found


def check_finished(
    path: str, chunk_size: int, segment_size: int, level: int, key: Any = None
) -> tuple[DriveLabel, ManifestHeader, list[tuple[str, str]]]:
    """A finished drive re-read whole (manifest, every segment hashed, B3SUMS) and its options checked against the
    resumed pack's: its label, manifest header and B3SUMS entries but the catalog's. An encrypted drive is read with
    ``key`` (its sealed index read to its end, checked against the public manifest's ``sealed`` record)."""
    try:
        reader = DriveReader(path, key=key)
        header, segments = header_and(reader.records(), ManifestHeader, SegmentRecord)
        _check_segments(reader, segments)
    except SneakernetError as exc:
        raise DestinationError(f"cannot resume: finished drive {path} does not check out ({exc})") from exc
    check_options(path, header, chunk_size, segment_size, level)
    return reader.label, header, _checksums(reader)


def check_options(path: str, header: ManifestHeader, chunk_size: int, segment_size: int, level: int) -> None:
    """Refuse to resume onto a drive packed with other options: the resumed pack could not give the same chunks."""
    if (header.chunk_size, header.segment_size) != (chunk_size, segment_size) or header.level not in (None, level):
        raise UsageError(
            f"cannot resume: {path} was packed with chunk size {header.chunk_size}, segment size "
            f"{header.segment_size}, level {header.level}: give the same options as the interrupted pack"
        )


def _check_segments(reader: DriveReader, segments: list[SegmentRecord]) -> None:
    """Every segment of a finished drive, read whole and hashed: only proven bytes are kept."""
    for segment in segments:
        if reader.hash_file(segment.name) != (segment.size, segment.blake3):
            raise DestinationError(f"segment {segment.name} does not match its BLAKE3")


def _checksums(reader: DriveReader) -> list[tuple[str, str]]:
    """A finished drive's B3SUMS entries but the catalog's (written again at the end)."""
    try:
        sums = reader.checksums()
    except OSError as exc:
        raise DestinationError(f"cannot resume: cannot read {CHECKSUMS_NAME} of {reader.path}: {exc.strerror}") from exc
    if sums.problem is not None:
        raise DestinationError(f"cannot resume: finished drive {reader.path} does not check out ({sums.problem})")
    return [(name, digest) for name, digest in sums.entries if name != CATALOG_NAME]


def out_drive_paths(out: str) -> Iterator[str]:
    """``OUT/drive-0001``, ``OUT/drive-0002``, ... while they exist."""
    index = 1
    while os.path.isdir(path := os.path.join(out, drive_label(index))):
        yield path
        index += 1


# --- replaying ----------------------------------------------------------------------------------------------

Item = ChunkRecord | FileRecord | DirRecord | SymlinkRecord | HardlinkRecord | SkippedRecord


class Replayed(NamedTuple):
    """A record that stands for an item of the pack stream, with a function that reads a chunk's raw bytes back
    from its drive; ``kept``: a record of an unfinished drive's complete segments (lanes.py), which the writer
    writes again on that drive as the item is matched (finished drives' records are only matched)."""

    record: ManifestRecord
    read_back: Callable[[], bytes]
    kept: bool = False


def replayed_records(
    finished: FinishedDrives,
    on_record: Callable[[ManifestRecord, int], None],
    on_drive: Callable[[DriveLabel | None], None] | None = None,
) -> Iterator[Replayed]:
    """The records of the finished drives that stand for items of the pack stream, in order (chunks, final file
    records, directories, symlinks, hard links, skipped entries), each with a function that reads a chunk's raw
    bytes back from its drive; ``on_record`` sees every record with its drive number, ``on_drive`` each drive's
    label before its records and None after the last.

    Version 2 numbers chunks per drive (19.4) and a lane's stream across its drives: a chunk record is given with
    the lane's number (its id plus the chunks of the lane's drives before it), which the stream's chunk carries."""
    base = 0
    for path, label in zip(finished.paths, finished.labels, strict=True):
        reader = DriveReader(path, key=finished.key)
        if on_drive is not None:
            on_drive(label)
        chunks = 0
        for record in reader.records():
            on_record(record, label.drive)
            if isinstance(record, ManifestHeader | SegmentRecord | SealedRecord | EndRecord):
                continue  # an encrypted drive's sealed records pin its files: no item of the stream
            if isinstance(record, FileRecord) and not record.final:
                continue
            stored = record  # read back as the drive records it: an encrypted chunk's id is in its associated data
            if isinstance(record, ChunkRecord):
                chunks += 1
                if label.version >= 2:
                    record = replace(record, id=record.id + base)
            yield Replayed(record, partial(_read_back, reader, stored))
        base += chunks
    if on_drive is not None:
        on_drive(None)


def _read_back(reader: DriveReader, record: ManifestRecord) -> bytes:
    assert isinstance(record, ChunkRecord)
    return reader.read_chunk(record)  # by segment and offset: a lane's chunk number is not the drive's id


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
    reader: ReplayingReader,
    records: Iterator[Replayed],
    paths: dict[int, bytes],
    keep: Callable[[Any, ManifestRecord], None] | None = None,
) -> int:
    """Consume the stream's ``items`` that the finished drives already hold (their ``records``, see
    :func:`replayed_records`), checking each; then have ``reader`` go live. ``paths`` are the writer's paths of
    files still open. A record marked ``kept`` (an unfinished drive's complete segments) is handed with its item to
    ``keep`` once matched: the writer records it again on that drive. Returns the number of chunks replayed."""
    expected = next(records, None)
    reader.dry = expected is not None
    chunks = 0
    while expected is not None:
        item = next(items, None)
        if item is None:
            raise SourceError(
                "the source has fewer entries than the interrupted pack wrote: it changed; start over without --resume"
            )
        record, read_back = expected.record, expected.read_back
        match(item, record, paths)
        if expected.kept:
            assert keep is not None
            keep(item, record)
        if isinstance(item, RawChunk):
            chunks += 1
            reader.last_replayed = (item, read_back)
            if len(item.slices) == 1 and item.slices[0].chunk_offset == 0 and isinstance(record, ChunkRecord):
                reader.replayed_chunks.setdefault(item.slices[0].file_index, []).append(record.raw_blake3)
        elif isinstance(item, FileEnd):
            paths.pop(item.index, None)  # a kept record's file end was the writer's, which forgets its path itself
            reader.replayed_chunks.pop(item.index, None)
        expected = next(records, None)
    reader.go_live()
    return chunks


@dataclass
class ReplayingReader(SourceReader):
    """The reader of a resumed pack: it first replays what the finished drives already hold (:attr:`dry`), files
    neither opened nor read, chunks laid out from the sizes the scan found, until :func:`replay` has matched them
    all; :meth:`go_live` then ends the replay, and what follows is read for real."""

    dry: bool = False
    #: While replaying: the raw BLAKE3 of the finished drives' chunks of the large file in progress, and the
    #: last chunk replayed with a function that reads its bytes back from its drive.
    replayed_chunks: dict[int, list[str]] = field(default_factory=dict)
    last_replayed: tuple[RawChunk, Callable[[], bytes]] | None = None
    #: A small file added dry to the chunker's group whose end is not yet waiting: the chunker takes the file into
    #: the next group before the closed group's chunk is handed out, so a replay ending on that chunk finds the
    #: file in the group (dry) with its end still here.
    _dry_ends: dict[int, FileEnd] = field(default_factory=dict)

    def _read_file(
        self, index: int, entry: SourceEntry, chunker: Chunker
    ) -> Iterable[EntryRecord | RawChunk | FileEnd]:
        if self.dry:
            return self._dry_file(index, entry, chunker)
        return super()._read_file(index, entry, chunker)

    def _dry_file(
        self, index: int, entry: SourceEntry, chunker: Chunker
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        """A file as the finished drives hold it, from its scanned size: no open, no read."""
        if entry.nlink > 1:
            self._hardlinks[(entry.dev, entry.ino)] = entry.path
        self.paths[index] = entry.path
        self.tally.files += 1
        self.tally.raw_bytes += entry.size
        self.on_bytes(entry.size)
        meta = _meta(entry)
        if not is_large(entry.size, self.options.chunk_size):
            if entry.size == 0:
                yield FileEnd(index, 0, EMPTY_BLAKE3, meta, False)
                return
            self._dry_ends[index] = FileEnd(index, entry.size, None, meta, False)
            closed = chunker.add_small(index, entry.size)
            if closed:
                yield from closed
                yield from self._drain_ends()
            # Read for real by go_live if the replay ended on the chunk just handed out: that end then has its hash.
            self._pending_ends.append(self._dry_ends.pop(index))
            return
        yield from self._flush_group(chunker)
        offset = 0
        while offset < entry.size and self.dry:
            piece = min(self.options.chunk_size, entry.size - offset)
            yield from chunker.add_large_piece(index, offset, piece)
            offset += piece
        if self.dry:
            yield FileEnd(index, entry.size, None, meta, False)
            return
        # The replay ended inside this file: the rest is read for real, after hashing what came before.
        self.tally.raw_bytes -= entry.size
        file = self._open_unchanged(index, entry.size, entry.mtime_ns)
        try:
            hasher = self._hash_replayed(index, file, offset)
            yield from self._large_file(index, file, file.stat(), chunker, offset, hasher)
        finally:
            file.close()

    def _hash_replayed(self, index: int, file: SourceFile, offset: int) -> blake3.blake3:
        """Re-read the first ``offset`` bytes of a large file, which must be exactly what the finished drives hold
        (their chunks' raw BLAKE3), and return their hash so far."""
        hasher = blake3.blake3()
        position = 0
        for digest in self.replayed_chunks.pop(index, []):
            data = file.read(min(self.options.chunk_size, offset - position))
            if blake3.blake3(data).hexdigest() != digest:
                raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
            hasher.update(data)
            position += len(data)
        if position != offset:
            raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
        return hasher

    def go_live(self) -> None:
        """End the replay: what follows is read for real, and replayed files still to come are read now.

        Files whose bytes are in the last replayed chunk (on a finished drive) but whose final record is not must
        still be what that chunk holds.
        """
        self.dry = False
        if self._chunker is None:
            return  # nothing was replayed (a resumed lane that had written nothing to keep): all is read live
        for index in self._chunker.dry_files():
            data, end = self._read_whole(index)
            self._chunker.fill(index, data)
            self._replace_end(end)
        stored: dict[int, bytes] = {}
        if self.last_replayed is not None:
            chunk, read_back = self.last_replayed
            raw = read_back()
            stored = {s.file_index: raw[s.chunk_offset : s.chunk_offset + s.length] for s in chunk.slices}
        for item in list(self._pending_ends):
            if isinstance(item, FileEnd) and item.blake3 is None and not item.with_chunk:
                data, end = self._read_whole(item.index)
                if stored.get(item.index, data) != data:
                    raise SourceError(f"{_show(self.paths[item.index])} changed since the interrupted pack: start over")
                self._replace_end(end)

    def _replace_end(self, end: FileEnd) -> None:
        if end.index in self._dry_ends:
            self._dry_ends[end.index] = end
        self._pending_ends = [
            end if isinstance(item, FileEnd) and item.index == end.index else item for item in self._pending_ends
        ]

    def _read_whole(self, index: int) -> tuple[bytes, FileEnd]:
        """A replayed small file read for real; it must be as the scan saw it."""
        dry = self._dry_ends.get(index) or next(
            e for e in self._pending_ends if isinstance(e, FileEnd) and e.index == index
        )
        assert isinstance(dry, FileEnd)
        file = self._open_unchanged(index, dry.size, dry.meta.mtime_ns)
        try:
            data = file.read(dry.size + 1, dry.size)
            if len(data) != dry.size:
                raise SourceError(f"{_show(self.paths[index])} changed since the interrupted pack: start over")
            after = file.stat()
        finally:
            file.close()
        meta = Metadata(after.st_mode & 0o7777, after.st_mtime_ns, after.st_uid, after.st_gid)
        return data, FileEnd(index, dry.size, blake3.blake3(data).hexdigest(), meta, False)

    def _open_unchanged(self, index: int, size: int, mtime_ns: int) -> SourceFile:
        path = self.paths[index]
        try:
            file = self.source.open(path)
        except OSError as exc:
            raise SourceError(f"cannot read {_show(path)} ({exc.strerror}) to resume: start over") from exc
        st = file.stat()
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            file.close()
            raise SourceError(f"{_show(path)} changed since the interrupted pack: start over (without --resume)")
        return file
