"""Reading the source tree into the chunk stream: :class:`SourceReader`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import blake3

from ..chunks.chunker import Chunker, is_large
from ..chunks.stream import FileEnd, RawChunk
from ..errors import SourceError
from ..format import DirRecord, EntryRecord, HardlinkRecord, Metadata, SkippedRecord, SymlinkRecord
from ..io.source import KIND_DIR, KIND_FILE, KIND_SYMLINK, FileStat, Source, SourceEntry, SourceFile, Unreadable
from ..options import PackOptions
from .summary import ReadTally, _show

#: Reasons recorded in skipped records and shown in warnings.
VANISHED = "vanished before it was read"
SPECIAL = "special file (FIFO, socket or device)"


@dataclass
class SourceReader:
    """Turns the spooled entries into an ordered stream of records, chunks and file ends.

    Order guarantees the writer relies on: a file's :class:`FileEnd` comes after the chunk holding its last
    bytes and before any later chunk; a group chunk comes before the ends of the files it holds.
    """

    source: Source
    options: PackOptions
    tally: ReadTally
    paths: dict[int, bytes] = field(default_factory=dict)
    on_bytes: Callable[[int], None] = lambda n: None
    _hardlinks: dict[tuple[int, int], bytes] = field(default_factory=dict)
    _pending_ends: list[FileEnd | HardlinkRecord] = field(default_factory=list)
    _chunker: Chunker | None = None

    def items(self, entries: Iterator[SourceEntry | Unreadable]) -> Iterator[EntryRecord | RawChunk | FileEnd]:
        chunker = self._chunker = Chunker(self.options.chunk_size)
        for index, entry in enumerate(entries):
            if isinstance(entry, Unreadable):
                self.tally.note_skipped(entry.path, f"unreadable: {entry.reason}")
                yield SkippedRecord(entry.path, f"unreadable: {entry.reason}")
            elif entry.kind == KIND_FILE:  # most entries are: a small one mostly yields nothing (its end waits)
                yield from self._file(index, entry, chunker)
            elif entry.kind == KIND_DIR:
                self.tally.dirs += 1
                yield DirRecord(entry.path, _meta(entry))
            elif entry.kind == KIND_SYMLINK:
                yield from self._symlink(entry)
            else:
                self.tally.note_skipped(entry.path, SPECIAL)
                yield SkippedRecord(entry.path, SPECIAL)
        yield from self._flush_group(chunker)

    def _drain_ends(self) -> Iterator[FileEnd | HardlinkRecord]:
        """The waiting file ends, each taken off the list as it is handed out (a replay may end between two)."""
        while self._pending_ends:
            yield self._pending_ends.pop(0)

    def _symlink(self, entry: SourceEntry) -> Iterator[EntryRecord]:
        try:
            target = self.source.readlink(entry.path)
        except FileNotFoundError:
            self.tally.note_skipped(entry.path, VANISHED)
            yield SkippedRecord(entry.path, VANISHED)
            return
        self.tally.symlinks += 1
        yield SymlinkRecord(entry.path, target, _meta(entry))

    def _flush_group(self, chunker: Chunker) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        yield from chunker.close_group()
        yield from self._drain_ends()

    def _file(self, index: int, entry: SourceEntry, chunker: Chunker) -> Iterable[EntryRecord | RawChunk | FileEnd]:
        """What file ``entry`` adds to the stream: a list for a small file (mostly empty), a generator for a large
        one. Plain functions down to the read, not generators: a generator per file and per level costs more than
        a small file's own syscalls."""
        if entry.nlink > 1:
            key = (entry.dev, entry.ino)
            if key in self._hardlinks:
                self.tally.hardlinks += 1
                link = HardlinkRecord(entry.path, self._hardlinks[key])
                if self._pending_ends:
                    # The target may be a small file still waiting for its group chunk: the link follows its record.
                    self._pending_ends.append(link)
                    return ()
                return (link,)
        return self._read_file(index, entry, chunker)

    def _read_file(
        self, index: int, entry: SourceEntry, chunker: Chunker
    ) -> Iterable[EntryRecord | RawChunk | FileEnd]:
        """Open the file and read it into the stream (its first name, for a hard-linked file): a small file here
        and now, a large one as the generator returned is consumed (which closes the file)."""
        try:
            file = self.source.open(entry.path)
        except FileNotFoundError:
            self.tally.note_skipped(entry.path, VANISHED)
            return (SkippedRecord(entry.path, VANISHED),)
        except OSError as exc:
            if not self.options.skip_unreadable:
                raise SourceError(
                    f"cannot read {_show(entry.path)}: {exc.strerror}; fix it or pack with --skip-unreadable"
                ) from exc
            self.tally.note_skipped(entry.path, f"unreadable: {exc.strerror}")
            return (SkippedRecord(entry.path, f"unreadable: {exc.strerror}"),)
        handed_over = False
        try:
            before = file.stat()
            if entry.nlink > 1:
                self._hardlinks[(entry.dev, entry.ino)] = entry.path
            self.paths[index] = entry.path
            self.tally.files += 1
            if is_large(before.st_size, self.options.chunk_size):
                handed_over = True
                return _closing(self._large_file(index, file, before, chunker), file)
            return self._small_file(index, file, before, chunker)
        finally:
            if not handed_over:
                file.close()

    def _small_file(
        self, index: int, file: SourceFile, before: FileStat, chunker: Chunker
    ) -> Iterable[RawChunk | FileEnd | HardlinkRecord]:
        size = before.st_size
        # Ask for one byte more than the size: getting it means the file grew while it was read.
        data = file.read(size + 1, size)
        grew = len(data) > size
        if grew:
            data = data[:size]
        self.on_bytes(len(data))
        if not data:
            return (self._end(index, file, before, 0, EMPTY_BLAKE3, grew),)
        end = self._end(index, file, before, len(data), None, grew, True)
        closed = chunker.add_small(index, data)
        if closed:
            return self._closed_group(closed, end)
        self._pending_ends.append(end)
        return ()

    def _closed_group(self, closed: list[RawChunk], end: FileEnd) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:
        """The group a small file closed, the ends of its files, then that file's end waits for the next group."""
        yield from closed
        yield from self._drain_ends()
        self._pending_ends.append(end)

    def _large_file(
        self, index: int, file: SourceFile, before: FileStat, chunker: Chunker, offset: int = 0,
        hasher: blake3.blake3 | None = None,
    ) -> Iterator[RawChunk | FileEnd | HardlinkRecord]:  # fmt: skip
        """Read a large file into chunks of its own, from ``offset`` (a resumed pack's replay ended inside it:
        ``hasher`` has hashed what lies before)."""
        if offset == 0:
            yield from self._flush_group(chunker)
        hasher = hasher or blake3.blake3()
        chunk_size = self.options.chunk_size
        while offset < before.st_size:
            data = file.read(min(chunk_size, before.st_size - offset))
            if not data:
                break
            hasher.update(data)
            self.on_bytes(len(data))
            yield from chunker.add_large_piece(index, offset, data)
            offset += len(data)
        grew = offset == before.st_size and bool(file.read_at(offset, 1))
        yield self._end(index, file, before, offset, hasher.hexdigest(), grew)

    def _end(
        self, index: int, file: SourceFile, before: FileStat, size: int, digest: str | None, grew: bool,
        with_chunk: bool = False,
    ) -> FileEnd:  # fmt: skip
        after = file.stat()
        changed = (
            grew
            or size != before.st_size
            or after.st_size != before.st_size
            or after.st_mtime_ns != before.st_mtime_ns
            # An object's version (io/remote.py's RemoteStat: its ETag or version id) tells a rewrite in the same
            # second; a local file's stat has none.
            or (type(after) is not os.stat_result and _version(after) != _version(before))
        )
        if changed:
            self.tally.note_changed(self.paths[index])
        self.tally.raw_bytes += size
        meta = Metadata(after.st_mode & 0o7777, after.st_mtime_ns, after.st_uid, after.st_gid)
        return FileEnd(index, size, digest, meta, changed, with_chunk)


EMPTY_BLAKE3 = blake3.blake3(b"").hexdigest()


def _version(stat: FileStat) -> object:
    return getattr(stat, "st_version", 0)


def _closing(items: Iterator[RawChunk | FileEnd | HardlinkRecord], file: SourceFile) -> Iterator[Any]:
    """``items``, then ``file`` closed (also when the consumer stops early)."""
    try:
        yield from items
    finally:
        file.close()


def _meta(entry: SourceEntry) -> Metadata:
    return Metadata(entry.mode, entry.mtime_ns, entry.uid, entry.gid)
